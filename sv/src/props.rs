//! Property tests of sv (issue #6): any command line parses as djb's getopt would or
//! is a usage error with runit's exit code; any supervise/ files probe as live, not
//! running or unreadable with runit's message; and sv run whole, in-process, on any
//! command line and services that exist or not, exits with a code runit documents.

use crate::args::{self, scan_ulong, Invocation, Usage, DEFAULT_WAIT, VERSION};
use crate::fake::{running, stamp, FakeSupervisor};
use crate::output::{Level, Message, Out};
use crate::service::{probe, Probe, Snapshot};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::Config;
use runsv::supervise::{FullState, Status, STATUS_LEN};
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::Cursor;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

/// `default` cases per property unless PROPTEST_CASES says (docs/fuzzing.md).
fn config(default: u32) -> Config {
    let mut config = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = default;
    }
    config
}

fn os(bytes: &[u8]) -> OsString {
    OsString::from_vec(bytes.to_vec())
}

// ---------------------------------------------------------------------------------------
// The command line.

/// An argument: runit's options and unknown ones, commands in full and by first letter,
/// service names, numbers of any size, bytes that are not UTF-8.
fn argument() -> impl Strategy<Value = OsString> {
    prop_oneof![
        6 => select(&[
            "-v", "-w", "-w0", "-w5", "-vw", "-vw3", "-wv", "-V", "-x", "-", "--", "--json",
            "--help", "-vV", "-h", "-ww", "-w-1",
        ][..]).prop_map(OsString::from),
        6 => select(&[
            "status", "s", "up", "u", "down", "d", "once", "o", "pause", "cont", "hup", "alarm",
            "interrupt", "quit", "1", "2", "term", "kill", "exit", "x", "e", "start", "stop",
            "restart", "reload", "shutdown", "try-restart", "check", "force-stop",
            "force-reload", "force-restart", "force-shutdown", "D", "T", "X", "E", "sync",
            "reconfigure", "sig", "bogus", "r", "f", "C", "U", "3", "stat", "sxyz",
        ][..]).prop_map(OsString::from),
        4 => select(&["web", "db", "nonexist", "web/log", "/abs/path", "./rel", ".hidden", "web/", ""][..])
            .prop_map(OsString::from),
        2 => prop_oneof![
            any::<u64>().prop_map(|n| n.to_string()),
            Just("99999999999999999999999999".to_string()),
            Just("18446744073709551616".to_string()),
            "[0-9]{1,30}[a-z]{0,2}",
        ].prop_map(OsString::from),
        1 => prop::collection::vec(any::<u8>(), 0..8).prop_map(|bytes| os(&bytes)),
        1 => prop::collection::vec(any::<u8>(), 0..6).prop_map(|bytes| os(&[b"-".as_slice(), &bytes].concat())),
        1 => any::<String>().prop_map(OsString::from),
    ]
}

fn program_name() -> impl Strategy<Value = OsString> {
    prop_oneof![
        4 => Just(OsString::from("sv")),
        2 => Just(OsString::from("/usr/bin/sv")),
        2 => select(&["/etc/init.d/web", "/etc/init.d/nonexist", "web", "sv2", "/sv/", ""][..])
            .prop_map(OsString::from),
        1 => prop::collection::vec(any::<u8>(), 0..12).prop_map(|bytes| os(&bytes)),
    ]
}

fn environment() -> impl Strategy<Value = (Option<OsString>, Option<OsString>)> {
    (
        prop::option::of(prop_oneof![
            select(&["0", "5", "", "abc", "12x", "99999999999999999999999"][..])
                .prop_map(OsString::from),
            prop::collection::vec(any::<u8>(), 0..6).prop_map(|bytes| os(&bytes)),
        ]),
        prop::option::of(
            select(&["/service", "/etc/service/", "", "rel", "/tmp/\u{ff}"][..])
                .prop_map(OsString::from),
        ),
    )
}

/// djb's getopt as docs/sv.md describes it, and what it makes of the command line.
fn getopt_model(
    argv: &[OsString],
    svwait: Option<&OsStr>,
    svdir: Option<&OsStr>,
) -> Result<Invocation, Usage> {
    let (basename, base) = args::program(argv);
    let (progname, lsb) = (base.progname.clone(), base.lsb);
    let usage = |preamble: Option<String>| base.with(preamble);
    // A number is its leading digits (none: 0), capped at the largest u64.
    let seconds = |text: &[u8]| -> u64 {
        let digits: String = text
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .map(|&b| char::from(b))
            .collect();
        let digits = digits.trim_start_matches('0');
        if digits.is_empty() {
            0
        } else {
            digits.parse().unwrap_or(u64::MAX)
        }
    };
    let mut wait_seconds = svwait.map_or(DEFAULT_WAIT, |v| seconds(v.as_bytes()));
    let mut verbose = false;
    let mut json = false;
    let mut rest = argv.iter().skip(1).peekable();
    while let Some(arg) = rest.peek() {
        let bytes = arg.as_bytes();
        // Options end at a word without a dash, at a lone dash (which is the command)…
        if bytes.len() < 2 || bytes[0] != b'-' {
            break;
        }
        rest.next();
        // (`--json` is ours: status's --json, moved behind the names.)
        if bytes == b"--json" && !lsb {
            json = true;
            continue;
        }
        // …and at a word starting with `--`, which is dropped.
        if bytes[1] == b'-' {
            break;
        }
        for (at, letter) in bytes[1..].iter().enumerate() {
            match letter {
                b'v' => verbose = true,
                b'w' => {
                    let attached = &bytes[at + 2..];
                    let value = if !attached.is_empty() {
                        attached.to_vec()
                    } else {
                        match rest.next() {
                            Some(next) => next.as_bytes().to_vec(),
                            None => {
                                return Err(usage(Some(format!(
                                    "{progname}: option requires an argument -- w"
                                ))))
                            }
                        }
                    };
                    wait_seconds = seconds(&value);
                    verbose = true;
                    break;
                }
                b'V' => return Err(usage(Some(VERSION.to_string()))),
                other => {
                    return Err(usage(Some(format!(
                        "{progname}: illegal option -- {}",
                        char::from(*other)
                    ))))
                }
            }
        }
    }
    let Some(action) = rest.next() else {
        return Err(usage(None));
    };
    Ok(Invocation {
        progname,
        lsb,
        verbose,
        wait_seconds,
        svdir: svdir.map_or_else(|| OsString::from("/service"), OsStr::to_owned),
        action: action.as_bytes().to_vec(),
        services: if lsb {
            vec![basename.to_owned()]
        } else {
            rest.cloned()
                .chain(json.then(|| OsString::from("--json")))
                .collect()
        },
    })
}

// ---------------------------------------------------------------------------------------
// supervise/ as sv may find it.

#[derive(Clone, Debug)]
enum File {
    Absent,
    Bytes(Vec<u8>),
    Directory,
}

#[derive(Clone, Debug)]
enum Supervisor {
    /// The service directory does not exist.
    NoDirectory,
    /// A directory without supervise/.
    NoSupervise,
    /// supervise/ exists, nobody reads `ok`.
    Stopped,
    /// A live supervisor's files.
    Live { status: File, state: File },
}

/// Bytes a status file may hold: runit's, its peers', damaged, foreign.
fn status_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..48),
        (prop::collection::vec(any::<u8>(), 19), 0u8..4).prop_map(|(mut bytes, state)| {
            bytes.push(state);
            bytes
        }),
        (any::<u32>(), any::<u64>())
            .prop_map(|(pid, seconds)| running(pid, stamp(seconds >> 3)).encode().to_vec()),
        // daemontools (18 bytes) and s6 (35 bytes).
        (any::<u32>(), select(&[b'u', b'd', 0][..])).prop_map(|(pid, want)| {
            let mut bytes = running(pid, stamp(1_700_000_000)).encode()[..18].to_vec();
            bytes[17] = want;
            bytes
        }),
        prop::collection::vec(any::<u8>(), 35),
        (any::<u32>(), prop::collection::vec(any::<u8>(), 1..30)).prop_map(|(pid, tail)| {
            let mut bytes = running(pid, stamp(1_700_000_000)).encode().to_vec();
            bytes.extend(tail);
            bytes
        }),
    ]
}

fn state_text() -> impl Strategy<Value = Vec<u8>> {
    let valid = (
        select(&runsv::supervise::ServiceState::ALL[..]),
        any::<u32>(),
        any::<bool>(),
        prop::option::of(any::<u32>()),
        ".{0,60}",
    )
        .prop_map(|(service_state, pid, oneshot, status_pid, reason)| {
            let mut state = crate::fake::full(service_state, pid, stamp(1_700_000_000), &reason);
            state.oneshot = oneshot;
            state.status = status_pid.map(|pid| running(pid, stamp(1_700_000_000)));
            state.encode().into_bytes()
        });
    prop_oneof![
        4 => valid.clone(),
        // Damaged: cut short, or with junk after it, or a byte changed.
        2 => (valid.clone(), any::<prop::sample::Index>()).prop_map(|(bytes, at)| bytes[..at.index(bytes.len() + 1)].to_vec()),
        1 => (valid.clone(), prop::collection::vec(any::<u8>(), 0..1100)).prop_map(|(mut bytes, tail)| {
            bytes.extend(tail);
            bytes
        }),
        1 => (valid, any::<prop::sample::Index>(), any::<u8>()).prop_map(|(mut bytes, at, byte)| {
            let at = at.index(bytes.len());
            bytes[at] = byte;
            bytes
        }),
        1 => prop::collection::vec(any::<u8>(), 0..200),
    ]
}

fn file(bytes: impl Strategy<Value = Vec<u8>>) -> impl Strategy<Value = File> {
    prop_oneof![
        1 => Just(File::Absent),
        1 => Just(File::Directory),
        6 => bytes.prop_map(File::Bytes),
    ]
}

fn supervisor() -> impl Strategy<Value = Supervisor> {
    prop_oneof![
        1 => Just(Supervisor::NoDirectory),
        1 => Just(Supervisor::NoSupervise),
        1 => Just(Supervisor::Stopped),
        6 => (file(status_bytes()), file(state_text()))
            .prop_map(|(status, state)| Supervisor::Live { status, state }),
    ]
}

fn place(path: &Path, file: &File) {
    let _ = fs::remove_file(path);
    match file {
        File::Absent => {}
        File::Bytes(bytes) => fs::write(path, bytes).unwrap(),
        File::Directory => fs::create_dir(path).unwrap(),
    }
}

/// Sets up `dir` as `supervisor` says; the fake must live while sv looks.
fn set_up(dir: &Path, supervisor: &Supervisor) -> Option<FakeSupervisor> {
    match supervisor {
        Supervisor::NoDirectory => None,
        Supervisor::NoSupervise => {
            fs::create_dir_all(dir).unwrap();
            None
        }
        Supervisor::Stopped => {
            let mut fake = FakeSupervisor::new(dir, running(1, stamp(1)));
            fake.stop();
            Some(fake)
        }
        Supervisor::Live { status, state } => {
            let fake = FakeSupervisor::new(dir, running(1, stamp(1)));
            place(&fake.supervise().status(), status);
            place(&fake.supervise().state(), state);
            Some(fake)
        }
    }
}

/// runit's probe, with runtree's state file first (docs/sv.md, service.rs).
fn probe_model(supervisor: &Supervisor) -> Probe {
    let warning = |text: &str, errno| Probe::Unreadable(Message::new(Level::Warning, text, errno));
    let (status, state) = match supervisor {
        Supervisor::NoDirectory | Supervisor::NoSupervise => {
            return warning("unable to open supervise/ok", Some(nix::libc::ENOENT))
        }
        Supervisor::Stopped => return Probe::NotRunning,
        Supervisor::Live { status, state } => (status, state),
    };
    let state = match state {
        File::Bytes(bytes) => FullState::read_from(&mut Cursor::new(bytes)).ok(),
        File::Absent | File::Directory => None,
    };
    if let Some(status) = state.as_ref().and_then(|state| state.status) {
        return Probe::Live(Snapshot {
            status,
            state,
            cgroup: None,
        });
    }
    match status {
        File::Absent => warning("unable to open supervise/status", Some(nix::libc::ENOENT)),
        File::Directory => warning("unable to read supervise/status", Some(nix::libc::EISDIR)),
        // One read of 20 bytes, as runit does: a longer file is read in part.
        File::Bytes(bytes) => match Status::decode(&bytes[..bytes.len().min(STATUS_LEN)]) {
            Ok(status) => Probe::Live(Snapshot {
                status,
                state,
                cgroup: None,
            }),
            Err(_) => warning("unable to read supervise/status: bad format", None),
        },
    }
}

// ---------------------------------------------------------------------------------------
// sv run whole.

/// Runs sv in-process as `main` does, with this environment; returns the exit code
/// and stdout.
fn run_sv(argv: &[OsString], env: &[(&str, OsString)]) -> (i32, String) {
    let lookup = |key: &str| env.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone());
    match args::parse(argv, lookup) {
        Err(usage) => (usage.exit_code(), String::new()),
        Ok(invocation) => {
            let mut out = Out::new(Vec::new());
            let code = crate::app::run(&invocation, &mut out);
            (
                code,
                String::from_utf8_lossy(&out.into_inner()).into_owned(),
            )
        }
    }
}

/// An argument for a whole run: as `argument`, but a wait is never longer than 0
/// seconds (the fake supervisors never act on what sv writes).
fn run_argument() -> impl Strategy<Value = OsString> {
    argument().prop_map(|arg| {
        let bytes = arg.as_bytes();
        let is_number = bytes.first().is_some_and(u8::is_ascii_digit);
        let has_wait =
            bytes.starts_with(b"-") && !bytes.starts_with(b"--") && bytes.contains(&b'w');
        if has_wait {
            // `-w` ends its letters: what follows it is its value, here 0.
            let at = bytes.iter().position(|&b| b == b'w').unwrap();
            os(&[&bytes[..=at], b"0".as_slice()].concat())
        } else if is_number && scan_ulong(bytes) > 0 {
            OsString::from("0")
        } else {
            arg
        }
    })
}

/// runit's options, each with its value, that keep a wait at 0 seconds.
const RUN_OPTIONS: &[&[&str]] = &[
    &["-v"],
    &["-w0"],
    &["-vw0"],
    &["-w", "0"],
    &["-w", "x"],
    &["--"],
];

/// A command line for a whole run: mostly well formed (options, a command, services),
/// sometimes not at all.
fn run_command_line() -> impl Strategy<Value = Vec<OsString>> {
    let argv0 = prop_oneof![
        8 => Just(OsString::from("sv")),
        1 => select(&["/etc/init.d/web", "/etc/init.d/db", "/etc/init.d/nonexist"][..]).prop_map(OsString::from),
        1 => program_name(),
    ];
    let option = prop_oneof![
        4 => select(RUN_OPTIONS)
            .prop_map(|words| words.iter().map(OsString::from).collect::<Vec<_>>()),
        1 => run_argument().prop_map(|arg| vec![arg]),
    ];
    let command = prop_oneof![
        9 => select(&[
            "status", "s", "up", "down", "once", "pause", "cont", "hup", "alarm", "interrupt",
            "quit", "1", "2", "term", "kill", "exit", "start", "stop", "restart", "reload",
            "shutdown", "try-restart", "check", "force-stop", "force-reload", "force-restart",
            "force-shutdown", "D", "T", "X", "E", "sync", "reconfigure", "bogus",
        ][..]).prop_map(OsString::from),
        1 => run_argument(),
    ];
    let service = prop_oneof![
        8 => select(&["web", "db", "nonexist", "web/log", "db/log", "--json", "", "web/"][..])
            .prop_map(OsString::from),
        1 => run_argument(),
    ];
    (
        argv0,
        prop::collection::vec(option, 0..3),
        command,
        prop::collection::vec(service, 0..4),
    )
        .prop_map(|(argv0, options, command, services)| {
            let mut argv = vec![argv0];
            argv.extend(options.into_iter().flatten());
            argv.push(command);
            argv.extend(services);
            argv
        })
}

/// The lines sv prints on stdout begin with one of these (docs/sv.md, Output), or
/// belong to `--json`'s array.
const LINE_STARTS: &[&str] = &[
    "ok: ",
    "fail: ",
    "warning: ",
    "timeout: ",
    "kill: ",
    "run: ",
    "down: ",
    "finish: ",
    "[",
    "]",
    "{",
];

proptest! {
    #![proptest_config(config(512))]

    /// Any command line and environment: a usage error with runit's code (100, or 2
    /// when called by another name), or the invocation djb's getopt reads from it.
    #[test]
    fn any_command_line_parses_as_djb_getopt_or_is_a_usage_error(
        argv0 in program_name(),
        rest in prop::collection::vec(argument(), 0..7),
        (svwait, svdir) in environment(),
    ) {
        let mut argv = vec![argv0];
        argv.extend(rest);
        let env = |key: &str| match key {
            "SVWAIT" => svwait.clone(),
            "SVDIR" => svdir.clone(),
            _ => None,
        };
        let parsed = args::parse(&argv, env);
        let model = getopt_model(&argv, svwait.as_deref(), svdir.as_deref());
        prop_assert_eq!(&parsed, &model);
        if let Err(usage) = parsed {
            prop_assert_eq!(usage.exit_code(), if usage.lsb { 2 } else { 100 });
            let text = usage.text();
            let expected_usage = format!("usage: {}", usage.progname);
            prop_assert!(text.contains(&expected_usage), "{}", text);
            prop_assert!(text.ends_with("\n\n"), "{:?}", text);
        }
    }

    /// Whatever a service's supervise/ holds (status and state of any bytes, or
    /// missing, or directories; no supervisor; no directory): the probe is live with
    /// what the files say, not running, or unreadable with runit's warning.
    #[test]
    fn probe_of_any_supervise_files_is_live_not_running_or_unreadable(supervisor in supervisor()) {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("web");
        let _fake = set_up(&dir, &supervisor);
        prop_assert_eq!(probe(&dir), probe_model(&supervisor));
    }

    /// sv run whole on a scan directory of live, stopped, broken and missing services,
    /// with any command line: it returns, with a code runit documents, and prints only
    /// lines of runit's kinds.
    #[test]
    fn sv_on_any_command_line_exits_with_a_documented_code(
        argv in run_command_line(),
        web in supervisor(),
        db in supervisor(),
        log in prop::option::of(supervisor()),
    ) {
        let svdir = tempfile::tempdir().unwrap();
        let _web = set_up(&svdir.path().join("web"), &web);
        let _db = set_up(&svdir.path().join("db"), &db);
        let _log = match (&web, &log) {
            (Supervisor::NoDirectory, _) | (_, None) => None,
            (_, Some(log)) => set_up(&svdir.path().join("web/log"), log),
        };
        let env = [("SVDIR", svdir.path().as_os_str().to_owned()), ("SVWAIT", OsString::from("0"))];
        let (code, stdout) = run_sv(&argv, &env);

        let invocation = args::parse(&argv, |key| env.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone()));
        match &invocation {
            Ok(invocation) if invocation.lsb => {
                prop_assert!([0, 1, 2, 3, 4, 151].contains(&code), "LSB exit {}: {:?}", code, stdout);
            }
            Ok(invocation) => {
                prop_assert!((0..=100).contains(&code), "exit {}: {:?}", code, stdout);
                // One count per service at most: status without names lists SVDIR's
                // two entries.
                let services = invocation.services.len().max(2) as i32;
                prop_assert!(code == 100 || code <= services, "exit {} for {:?}: {:?}", code, invocation.services, stdout);
            }
            Err(usage) => prop_assert_eq!(code, usage.exit_code()),
        }
        // A service name is printed as given: one with a newline spans lines.
        let one_line_names = argv.iter().all(|arg| !arg.as_bytes().contains(&b'\n'));
        for line in stdout.lines().filter(|_| one_line_names) {
            prop_assert!(
                LINE_STARTS.iter().any(|start| line.starts_with(start)),
                "unexpected line {:?} in {:?}", line, stdout
            );
        }
    }
}

/// Found by the property above: `sv reconfigure` counted a service twice in the exit
/// code when its definition was refused and its runsv could not be told either, so
/// `sv reconfigure web other` could exit 3 for two services.
#[test]
fn reconfigure_counts_each_failed_service_once() {
    let svdir = tempfile::tempdir().unwrap();
    fs::create_dir(svdir.path().join("web")).unwrap();
    let argv: Vec<OsString> = ["sv", "reconfigure", "web", "nonexist"]
        .map(OsString::from)
        .to_vec();
    let (code, stdout) = run_sv(&argv, &[("SVDIR", svdir.path().as_os_str().to_owned())]);
    assert_eq!(
        stdout,
        format!(
            "fail: web: new definition refused, old one kept: {}/web: no service.yaml or run: \
             nothing defines this service\n\
             fail: web: unable to write supervise/control: file does not exist\n\
             fail: nonexist: unable to change to service directory: file does not exist\n",
            svdir.path().display()
        )
    );
    assert_eq!(code, 2);
}
