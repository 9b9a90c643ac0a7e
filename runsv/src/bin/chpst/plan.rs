//! What to change before the exec, read from chpst's options or from the command line
//! of one of its other names (envdir, envuidgid, pgrphack, setlock, setuidgid,
//! softlimit). Every name fills the same plan; `steps` carries it out in one order.

use crate::fail::usage;
use crate::getopt::{Getopt, Next};
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;

const CHPST_OPTIONS: &[u8] = b"u:U:b:e:m:d:o:p:f:c:r:t:/:C:n:l:L:vP012V";
pub const CHPST_USAGE: &str = " [-vVP012] [-u user[:group]] [-U user[:group]] [-b argv0] [-e dir] [-/ root] [-C pwd] [-n nice] [-l|-L lock] [-m n] [-d n] [-o n] [-p n] [-f n] [-c n] [-t n] prog";

/// A resource limit: the number asked for, or (`=` in softlimit, or a number too big
/// for a C long, as in runit) the hard limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    Hard,
    Value(u64),
}

/// The limits in the order runit sets them, so that an error names the same one first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resource {
    Data,
    Stack,
    MemLock,
    AddressSpace,
    OpenFiles,
    Processes,
    FileSize,
    Core,
    Resident,
    Cpu,
}

/// Who to become, as `-u`/`-U` (`user[:group…]` or `:uid:gid…`) or as setuidgid and
/// envuidgid take it (an account name only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub spec: Vec<u8>,
    pub with_groups: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lock {
    pub path: OsString,
    pub wait: bool,
    /// setlock -x: a lock held elsewhere, or a program that cannot run, exits 0.
    pub quiet: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub new_session: bool,
    pub env_dir: Option<OsString>,
    /// chpst -e skips subdirectories of the env dir (reporting them with -v); envdir
    /// fails on them.
    pub env_dir_skips_directories: bool,
    pub verbose: bool,
    pub root: Option<OsString>,
    pub working_directory: Option<OsString>,
    pub nice: i64,
    pub env_user: Option<Account>,
    pub set_user: Option<Account>,
    pub lock: Option<Lock>,
    pub close: [bool; 3],
    pub limits: Vec<(Resource, Limit)>,
    pub argv0: Option<OsString>,
    pub program: Vec<OsString>,
}

impl Plan {
    fn set_limit(&mut self, resource: Resource, limit: Limit) {
        self.limits.retain(|(r, _)| *r != resource);
        self.limits.push((resource, limit));
    }

    /// The limits in runit's order.
    pub fn ordered_limits(&self) -> Vec<(Resource, Limit)> {
        let mut limits = self.limits.clone();
        limits.sort_by_key(|(resource, _)| *resource as u8);
        limits
    }
}

/// djb's scan_ulong where the whole word must be digits: an empty word is 0, as in
/// runit; an overflow wraps, and what no longer fits a C long means the hard limit.
fn number(word: &[u8]) -> Option<u64> {
    word.iter().try_fold(0u64, |n, &b| {
        b.is_ascii_digit()
            .then(|| n.wrapping_mul(10).wrapping_add(u64::from(b - b'0')))
    })
}

fn limit_of(word: &[u8]) -> Option<Limit> {
    let n = number(word)?;
    Some(if n > i64::MAX as u64 {
        Limit::Hard
    } else {
        Limit::Value(n)
    })
}

fn nice_of(word: &[u8]) -> Option<i64> {
    let (sign, digits) = match word.split_first() {
        Some((b'-', rest)) => (-1, rest),
        Some((b'+', rest)) => (1, rest),
        _ => (1, word),
    };
    // As a C long: the value wraps rather than failing.
    number(digits).map(|n| (n as i64).wrapping_mul(sign))
}

/// The program's name as runit sees it: argv[0]'s last component, without a leading
/// `d` (so that daemontools' names with a d prefix select the same personality).
pub fn personality(argv0: &[u8]) -> &[u8] {
    let base = match argv0.iter().rposition(|&b| b == b'/') {
        Some(slash) => &argv0[slash + 1..],
        None => argv0,
    };
    base.strip_prefix(b"d").unwrap_or(base)
}

/// The plan for `args` (argv[0] included), by the name chpst was called by.
pub fn parse(args: &[OsString]) -> Plan {
    let argv0 = args.first().map(|a| a.as_bytes()).unwrap_or(b"chpst");
    let name = personality(argv0);
    match name {
        b"setuidgid" => account_and_child(args, name, false),
        b"envuidgid" => account_and_child(args, name, true),
        b"envdir" => envdir(args, name),
        b"pgrphack" => pgrphack(args, name),
        b"setlock" => setlock(args, name),
        b"softlimit" => softlimit(args, name),
        _ => chpst(args, name),
    }
}

fn chpst(args: &[OsString], name: &[u8]) -> Plan {
    let bad = || -> ! { usage(name, CHPST_USAGE) };
    let mut plan = Plan::default();
    let mut getopt = Getopt::new(args);
    loop {
        let (letter, argument) = match getopt.next(CHPST_OPTIONS) {
            Next::Done => break,
            Next::Problem => bad(),
            Next::Option(letter, argument) => (letter, argument.unwrap_or(b"")),
        };
        let owned = || OsString::from(std::ffi::OsStr::from_bytes(argument));
        let account = || Account {
            spec: argument.to_vec(),
            with_groups: true,
        };
        let limit = || limit_of(argument).unwrap_or_else(|| bad());
        match letter {
            b'u' => plan.set_user = Some(account()),
            b'U' => plan.env_user = Some(account()),
            b'b' => plan.argv0 = Some(owned()),
            b'e' => {
                plan.env_dir = Some(owned());
                plan.env_dir_skips_directories = true;
            }
            b'm' => {
                let value = limit();
                for resource in [
                    Resource::Stack,
                    Resource::MemLock,
                    Resource::AddressSpace,
                    Resource::Data,
                ] {
                    plan.set_limit(resource, value);
                }
            }
            b'd' => plan.set_limit(Resource::Data, limit()),
            b'o' => plan.set_limit(Resource::OpenFiles, limit()),
            b'p' => plan.set_limit(Resource::Processes, limit()),
            b'f' => plan.set_limit(Resource::FileSize, limit()),
            b'c' => plan.set_limit(Resource::Core, limit()),
            b'r' => plan.set_limit(Resource::Resident, limit()),
            b't' => plan.set_limit(Resource::Cpu, limit()),
            b'/' => plan.root = Some(owned()),
            b'C' => plan.working_directory = Some(owned()),
            b'n' => plan.nice = nice_of(argument).unwrap_or_else(|| bad()),
            b'l' | b'L' => {
                if plan.lock.is_some() {
                    bad();
                }
                plan.lock = Some(Lock {
                    path: owned(),
                    wait: letter == b'l',
                    quiet: false,
                });
            }
            b'v' => plan.verbose = true,
            b'P' => plan.new_session = true,
            b'0' => plan.close[0] = true,
            b'1' => plan.close[1] = true,
            b'2' => plan.close[2] = true,
            _ => {
                // -V, as runit's: the version, then the usage.
                crate::fail::say(format!("runtree chpst {}", env!("CARGO_PKG_VERSION")).as_bytes());
                bad();
            }
        }
    }
    plan.program = args.get(getopt.index..).unwrap_or_default().to_vec();
    if plan.program.is_empty() {
        bad();
    }
    plan
}

/// `setuidgid account child` and `envuidgid account child`: no options at all.
fn account_and_child(args: &[OsString], name: &[u8], env_only: bool) -> Plan {
    let (Some(account), Some(_)) = (args.get(1), args.get(2)) else {
        usage(name, " account child");
    };
    let account = Account {
        spec: account.as_bytes().to_vec(),
        with_groups: false,
    };
    let mut plan = Plan {
        program: args[2..].to_vec(),
        ..Plan::default()
    };
    if env_only {
        plan.env_user = Some(account);
    } else {
        plan.set_user = Some(account);
    }
    plan
}

fn envdir(args: &[OsString], name: &[u8]) -> Plan {
    let (Some(dir), Some(_)) = (args.get(1), args.get(2)) else {
        usage(name, " dir child");
    };
    Plan {
        env_dir: Some(dir.clone()),
        program: args[2..].to_vec(),
        ..Plan::default()
    }
}

fn pgrphack(args: &[OsString], name: &[u8]) -> Plan {
    if args.len() < 2 {
        usage(name, " child");
    }
    Plan {
        new_session: true,
        program: args[1..].to_vec(),
        ..Plan::default()
    }
}

/// runit's setlock, whose defaults are the reverse of daemontools': without options it
/// does not wait for the lock, and -n makes it wait (measured on Debian's runit).
fn setlock(args: &[OsString], name: &[u8]) -> Plan {
    const USAGE: &str = " [ -nNxX ] file program [ arg ... ]";
    let mut wait = false;
    let mut quiet = false;
    let mut getopt = Getopt::new(args);
    loop {
        match getopt.next(b"nNxX") {
            Next::Done => break,
            Next::Option(b'n', _) => wait = true,
            Next::Option(b'N', _) => wait = false,
            Next::Option(b'x', _) => quiet = true,
            Next::Option(b'X', _) => quiet = false,
            _ => usage(name, USAGE),
        }
    }
    let rest = args.get(getopt.index..).unwrap_or_default();
    let [file, program @ ..] = rest else {
        usage(name, USAGE);
    };
    if program.is_empty() {
        usage(name, USAGE);
    }
    Plan {
        lock: Some(Lock {
            path: file.clone(),
            wait,
            quiet,
        }),
        program: program.to_vec(),
        ..Plan::default()
    }
}

fn softlimit(args: &[OsString], name: &[u8]) -> Plan {
    const USAGE: &str = " [-a allbytes] [-c corebytes] [-d databytes] [-f filebytes] [-l lockbytes] [-m membytes] [-o openfiles] [-p processes] [-r residentbytes] [-s stackbytes] [-t cpusecs] child";
    let mut plan = Plan::default();
    let mut getopt = Getopt::new(args);
    loop {
        let (letter, argument) = match getopt.next(b"a:c:d:f:l:m:o:p:r:s:t:") {
            Next::Done => break,
            Next::Option(letter, argument) => (letter, argument.unwrap_or(b"")),
            Next::Problem => usage(name, USAGE),
        };
        // runit answers a bad number with chpst's usage, under softlimit's name.
        let value = if argument == b"=" {
            Limit::Hard
        } else {
            limit_of(argument).unwrap_or_else(|| usage(name, CHPST_USAGE))
        };
        let resources: &[Resource] = match letter {
            b'a' => &[Resource::AddressSpace],
            b'c' => &[Resource::Core],
            b'd' => &[Resource::Data],
            b'f' => &[Resource::FileSize],
            b'l' => &[Resource::MemLock],
            b'm' => &[
                Resource::Data,
                Resource::Stack,
                Resource::MemLock,
                Resource::AddressSpace,
            ],
            b'o' => &[Resource::OpenFiles],
            b'p' => &[Resource::Processes],
            b'r' => &[Resource::Resident],
            b's' => &[Resource::Stack],
            _ => &[Resource::Cpu],
        };
        for resource in resources {
            plan.set_limit(*resource, value);
        }
    }
    plan.program = args.get(getopt.index..).unwrap_or_default().to_vec();
    if plan.program.is_empty() {
        usage(name, USAGE);
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(words: &[&str]) -> Plan {
        parse(&words.iter().map(OsString::from).collect::<Vec<_>>())
    }

    #[test]
    fn numbers_as_runit_scans_them() {
        assert_eq!(number(b""), Some(0));
        assert_eq!(number(b"042"), Some(42));
        assert_eq!(number(b"4k"), None);
        assert_eq!(limit_of(b"9223372036854775808"), Some(Limit::Hard));
        assert_eq!(nice_of(b"-5"), Some(-5));
        assert_eq!(nice_of(b"+5"), Some(5));
        assert_eq!(nice_of(b"x"), None);
    }

    #[test]
    fn names_select_personalities_after_the_last_slash_and_a_leading_d() {
        assert_eq!(personality(b"/usr/bin/chpst"), b"chpst");
        assert_eq!(personality(b"denvdir"), b"envdir");
        assert_eq!(personality(b"/x/setlock"), b"setlock");
    }

    #[test]
    fn chpst_options_fill_the_plan() {
        let p = plan(&[
            "chpst", "-u", "a:b", "-m", "100", "-o5", "-n", "-3", "-P2", "prog", "-v",
        ]);
        assert_eq!(p.set_user.as_ref().unwrap().spec, b"a:b");
        assert_eq!(p.nice, -3);
        assert!(p.new_session && p.close[2] && !p.verbose);
        assert_eq!(
            p.program,
            vec![OsString::from("prog"), OsString::from("-v")]
        );
        assert_eq!(
            p.ordered_limits(),
            vec![
                (Resource::Data, Limit::Value(100)),
                (Resource::Stack, Limit::Value(100)),
                (Resource::MemLock, Limit::Value(100)),
                (Resource::AddressSpace, Limit::Value(100)),
                (Resource::OpenFiles, Limit::Value(5)),
            ]
        );
    }

    #[test]
    fn personalities_fill_the_same_plan() {
        let p = plan(&["setlock", "-nx", "f", "prog"]);
        assert_eq!(
            p.lock,
            Some(Lock {
                path: "f".into(),
                wait: true,
                quiet: true
            })
        );
        let p = plan(&["softlimit", "-m", "=", "-o", "7", "prog"]);
        assert!(p.limits.contains(&(Resource::AddressSpace, Limit::Hard)));
        assert!(p.limits.contains(&(Resource::OpenFiles, Limit::Value(7))));
        let p = plan(&["envuidgid", "nobody", "env"]);
        assert!(p.env_user.is_some_and(|a| !a.with_groups));
        assert!(plan(&["pgrphack", "x"]).new_session);
        assert_eq!(plan(&["envdir", "d", "x"]).env_dir, Some("d".into()));
    }
}
