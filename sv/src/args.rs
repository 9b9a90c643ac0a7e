//! runit's command line: `sv [-v] [-w sec] command service ...`, or, when the program is
//! called by another name (a symlink `/etc/init.d/NAME` → sv), LSB mode:
//! `NAME [-w sec] command`, where the one service is NAME.
//!
//! The options follow djb's getopt, which runit uses: options end at the first argument
//! that does not start with `-`, at a lone `-`, or at any argument starting with `--`
//! (so `sv --foo status x` is `sv status x`); letters may be bundled (`-vw5`).

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

/// runit's compiled-in default is `/service/` (Debian patches it to `/etc/service/`).
pub const DEFAULT_SVDIR: &str = "/service";
/// Seconds a wait lasts unless `SVWAIT` or `-w` says otherwise.
pub const DEFAULT_WAIT: u64 = 7;
/// What `-V` prints before the usage, in the form of runit's `$Id$` line.
pub const VERSION: &str = concat!("$Id: runtree sv ", env!("CARGO_PKG_VERSION"), " $");

#[derive(Debug, PartialEq, Eq)]
pub struct Invocation {
    /// The basename of argv[0]: `sv`, or the service name in LSB mode.
    pub progname: String,
    pub lsb: bool,
    pub verbose: bool,
    pub wait_seconds: u64,
    pub svdir: OsString,
    pub action: Vec<u8>,
    /// In LSB mode, only the program's name.
    pub services: Vec<OsString>,
}

/// A command line that ends in the usage message (stderr, then exit 100, or 2 in LSB mode).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Usage {
    pub progname: String,
    pub lsb: bool,
    /// A line printed before the usage: getopt's complaint, or the version.
    pub preamble: Option<String>,
}

/// argv[0]'s basename, and the usage of the program it names: `sv`, or by any other
/// name (a link `/etc/init.d/NAME`) LSB mode.
pub fn program(argv: &[OsString]) -> (&OsStr, Usage) {
    let argv0 = argv.first().map(|a| a.as_bytes()).unwrap_or_default();
    let basename = argv0.rsplit(|&b| b == b'/').next().unwrap_or_default();
    let progname = String::from_utf8_lossy(basename).into_owned();
    let usage = Usage {
        lsb: progname != "sv",
        progname,
        preamble: None,
    };
    (OsStr::from_bytes(basename), usage)
}

impl Usage {
    /// This usage with a line before it.
    pub fn with(&self, preamble: Option<String>) -> Usage {
        Usage {
            preamble,
            ..self.clone()
        }
    }

    /// The bytes runit writes to stderr (its usage ends in two newlines: strerr adds one).
    pub fn text(&self) -> String {
        let mut text = String::new();
        if let Some(line) = &self.preamble {
            text.push_str(line);
            text.push('\n');
        }
        let synopsis = if self.lsb {
            " [-w sec] command"
        } else {
            " [-v] [-w sec] command service ..."
        };
        text.push_str(&format!("usage: {}{}\n\n", self.progname, synopsis));
        text
    }

    pub fn exit_code(&self) -> i32 {
        if self.lsb {
            2
        } else {
            100
        }
    }
}

pub fn parse(
    argv: &[OsString],
    env: impl Fn(&str) -> Option<OsString>,
) -> Result<Invocation, Usage> {
    let (basename, base) = program(argv);
    let (progname, lsb) = (base.progname.clone(), base.lsb);
    let usage = |preamble: Option<String>| base.with(preamble);

    let mut wait_seconds = env("SVWAIT").map_or(DEFAULT_WAIT, |v| scan_ulong(v.as_bytes()));
    let svdir = env("SVDIR").unwrap_or_else(|| DEFAULT_SVDIR.into());
    let mut verbose = false;
    let mut json = false;

    let mut index = 1;
    'options: while let Some(arg) = argv.get(index) {
        let bytes = arg.as_bytes();
        if bytes.len() < 2 || bytes[0] != b'-' {
            break;
        }
        index += 1;
        // Ours, not runit's: `sv --json status` means what `sv status --json` does
        // (where runit's getopt would take `--json` for the end of the options).
        if bytes == b"--json" && !lsb {
            json = true;
            continue;
        }
        if bytes[1] == b'-' {
            break;
        }
        for (at, &letter) in bytes.iter().enumerate().skip(1) {
            match letter {
                b'v' => verbose = true,
                b'w' => {
                    let value = if at + 1 < bytes.len() {
                        &bytes[at + 1..]
                    } else if let Some(next) = argv.get(index) {
                        index += 1;
                        next.as_bytes()
                    } else {
                        return Err(usage(Some(format!(
                            "{progname}: option requires an argument -- w"
                        ))));
                    };
                    wait_seconds = scan_ulong(value);
                    // runit: `case 'w'` falls through into `case 'v'`.
                    verbose = true;
                    continue 'options;
                }
                b'V' => return Err(usage(Some(VERSION.to_string()))),
                other => {
                    return Err(usage(Some(format!(
                        "{progname}: illegal option -- {}",
                        char::from(other)
                    ))))
                }
            }
        }
    }

    let Some(action) = argv.get(index) else {
        return Err(usage(None));
    };
    let mut services = if lsb {
        vec![basename.to_owned()]
    } else {
        argv[index + 1..].to_vec()
    };
    // Handed on as `status` takes it, among the names (app.rs).
    if json {
        services.push("--json".into());
    }
    Ok(Invocation {
        progname,
        lsb,
        verbose,
        wait_seconds,
        svdir,
        action: action.as_bytes().to_vec(),
        services,
    })
}

/// djb's scan_ulong: the leading decimal digits, 0 when there are none (`-w abc` is 0).
pub fn scan_ulong(text: &[u8]) -> u64 {
    text.iter()
        .take_while(|b| b.is_ascii_digit())
        .fold(0u64, |n, b| {
            n.saturating_mul(10).saturating_add(u64::from(b - b'0'))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    fn no_env(_: &str) -> Option<OsString> {
        None
    }

    #[test]
    fn plain_command() {
        let inv = parse(&args(&["/usr/bin/sv", "up", "a", "b"]), no_env).unwrap();
        assert!(!inv.lsb && !inv.verbose);
        assert_eq!(inv.wait_seconds, 7);
        assert_eq!(inv.svdir, OsString::from("/service"));
        assert_eq!(inv.action, b"up");
        assert_eq!(inv.services, args(&["a", "b"]));
    }

    #[test]
    fn w_implies_v_and_bundles() {
        for argv in [
            &["sv", "-w", "5", "up", "x"][..],
            &["sv", "-w5", "up", "x"],
            &["sv", "-vw5", "up", "x"],
            &["sv", "-vw", "5", "up", "x"],
        ] {
            let inv = parse(&args(argv), no_env).unwrap();
            assert!(inv.verbose, "{argv:?}");
            assert_eq!(inv.wait_seconds, 5, "{argv:?}");
        }
        // -w takes the rest of its argument: "5v" scans as 5.
        assert_eq!(
            parse(&args(&["sv", "-w5v", "s", "x"]), no_env)
                .unwrap()
                .wait_seconds,
            5
        );
        assert_eq!(
            parse(&args(&["sv", "-w", "abc", "s", "x"]), no_env)
                .unwrap()
                .wait_seconds,
            0
        );
    }

    #[test]
    fn environment() {
        let env = |key: &str| match key {
            "SVWAIT" => Some(OsString::from("12")),
            "SVDIR" => Some(OsString::from("/tmp/sv")),
            _ => None,
        };
        let inv = parse(&args(&["sv", "status", "x"]), env).unwrap();
        assert_eq!(inv.wait_seconds, 12);
        assert_eq!(inv.svdir, OsString::from("/tmp/sv"));
        assert_eq!(
            parse(&args(&["sv", "-w", "3", "status", "x"]), env)
                .unwrap()
                .wait_seconds,
            3
        );
    }

    #[test]
    fn options_end_like_djb_getopt() {
        let inv = parse(&args(&["sv", "--", "status", "x"]), no_env).unwrap();
        assert_eq!(inv.action, b"status");
        assert_eq!(inv.services, args(&["x"]));
        // --json before the command is status's --json, not the end of the options.
        let inv = parse(&args(&["sv", "--json", "-v", "status", "x"]), no_env).unwrap();
        assert_eq!(inv.action, b"status");
        assert!(inv.verbose);
        assert_eq!(inv.services, args(&["x", "--json"]));
        let inv = parse(&args(&["sv", "up", "-v", "x"]), no_env).unwrap();
        assert!(!inv.verbose);
        assert_eq!(inv.services, args(&["-v", "x"]));
        // A lone "-" is the command (and then a usage error, from dispatch).
        assert_eq!(
            parse(&args(&["sv", "-", "x"]), no_env).unwrap().action,
            b"-"
        );
    }

    #[test]
    fn usage_errors() {
        let usage = parse(&args(&["sv"]), no_env).unwrap_err();
        assert_eq!(
            usage.text(),
            "usage: sv [-v] [-w sec] command service ...\n\n"
        );
        assert_eq!(usage.exit_code(), 100);
        let usage = parse(&args(&["sv", "-z", "s", "x"]), no_env).unwrap_err();
        assert_eq!(
            usage.text(),
            "sv: illegal option -- z\nusage: sv [-v] [-w sec] command service ...\n\n"
        );
        let usage = parse(&args(&["sv", "-v", "-w"]), no_env).unwrap_err();
        assert_eq!(
            usage.preamble.as_deref(),
            Some("sv: option requires an argument -- w")
        );
        let usage = parse(&args(&["sv", "-V"]), no_env).unwrap_err();
        assert!(usage.text().starts_with("$Id: runtree sv "));
        assert!(parse(&args(&["sv", "--help"]), no_env).is_err());
    }

    #[test]
    fn lsb_mode() {
        let inv = parse(
            &args(&["/etc/init.d/web", "-w", "3", "stop", "ignored"]),
            no_env,
        )
        .unwrap();
        assert!(inv.lsb && inv.verbose);
        assert_eq!(inv.progname, "web");
        assert_eq!(inv.services, args(&["web"]));
        let usage = parse(&args(&["/etc/init.d/web"]), no_env).unwrap_err();
        assert_eq!(usage.text(), "usage: web [-w sec] command\n\n");
        assert_eq!(usage.exit_code(), 2);
    }
}
