//! utmpset against runit's own (/usr/sbin/utmpset) on the same utmp files. Both write
//! the fixed paths /var/run/utmp and /var/log/wtmp, so each comparison runs in a
//! private mount namespace (`unshare --mount`) with scratch tmpfs mounts on /run and
//! /var/log: the machine's own files are never touched. Needs root and runit's
//! utmpset; says so and passes nothing otherwise.

use runtree::{binary, run};
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const RUNIT: &str = "/usr/sbin/utmpset";
const RECORD: usize = 384;
const SECONDS: std::ops::Range<usize> = 340..344;

fn available() -> bool {
    if !nix::unistd::geteuid().is_root() || !Path::new(RUNIT).exists() {
        eprintln!("skipped: needs root and runit's {RUNIT}");
        return false;
    }
    true
}

/// A glibc `struct utmp` record.
fn record(kind: i16, pid: i32, line: &str, user: &str, host: &str, seconds: i32) -> Vec<u8> {
    let mut r = vec![0u8; RECORD];
    r[0..2].copy_from_slice(&kind.to_ne_bytes());
    r[4..8].copy_from_slice(&pid.to_ne_bytes());
    r[8..8 + line.len()].copy_from_slice(line.as_bytes());
    r[40..44].copy_from_slice(b"id00");
    r[44..44 + user.len()].copy_from_slice(user.as_bytes());
    r[76..76 + host.len()].copy_from_slice(host.as_bytes());
    r[SECONDS].copy_from_slice(&seconds.to_ne_bytes());
    r[344..348].copy_from_slice(&123456i32.to_ne_bytes());
    r
}

/// What one program did: exit code, stderr, and the files afterwards.
#[derive(Debug, PartialEq, Eq)]
struct Result {
    code: i32,
    stderr: String,
    utmp: Option<Vec<u8>>,
    wtmp: Option<Vec<u8>>,
}

const SCRIPT: &str = r#"
set -e
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /var/log
shift
n=0
for prog in "$RUNIT" "$OURS"; do
    rm -f /run/utmp /var/log/wtmp
    if [ -f "$S/utmp.in" ]; then cp "$S/utmp.in" /run/utmp; fi
    if [ -f "$S/wtmp.in" ]; then cp "$S/wtmp.in" /var/log/wtmp; fi
    set +e; "$prog" "$@" 2> "$S/err.$n"; echo $? > "$S/rc.$n"; set -e
    if [ -f /run/utmp ]; then cp /run/utmp "$S/utmp.$n"; fi
    if [ -f /var/log/wtmp ]; then cp /var/log/wtmp "$S/wtmp.$n"; fi
    n=$((n+1))
done
"#;

/// Runs runit's utmpset, then ours, each on a fresh copy of `utmp` and `wtmp`.
fn compare(utmp: Option<&[u8]>, wtmp: Option<&[u8]>, args: &[&str]) -> (Result, Result) {
    let scratch = tempfile::tempdir().unwrap();
    let s = scratch.path();
    if let Some(utmp) = utmp {
        fs::write(s.join("utmp.in"), utmp).unwrap();
    }
    if let Some(wtmp) = wtmp {
        fs::write(s.join("wtmp.in"), wtmp).unwrap();
    }
    let (code, _, stderr) = run(
        Command::new("timeout")
            .args([
                "-k", "5", "30", "unshare", "--mount", "sh", "-c", SCRIPT, "sh", "-",
            ])
            .args(args)
            .env("S", s)
            .env("RUNIT", RUNIT)
            .env("OURS", binary("utmpset")),
        Duration::from_secs(40),
    );
    assert_eq!(code, 0, "namespace script: {stderr}");
    let result = |n: usize| Result {
        code: fs::read_to_string(s.join(format!("rc.{n}")))
            .unwrap()
            .trim()
            .parse()
            .unwrap(),
        stderr: fs::read_to_string(s.join(format!("err.{n}"))).unwrap(),
        utmp: fs::read(s.join(format!("utmp.{n}"))).ok(),
        wtmp: fs::read(s.join(format!("wtmp.{n}"))).ok(),
    };
    (result(0), result(1))
}

fn now() -> i32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i32
}

/// The logout time of the record at `index`, which must be close to now; then the
/// records with their times zeroed, since the two programs ran at different moments.
fn without_times(file: &[u8], changed: &[usize]) -> Vec<u8> {
    let mut file = file.to_vec();
    for index in changed {
        let field = index * RECORD + SECONDS.start..index * RECORD + SECONDS.end;
        let seconds = i32::from_ne_bytes(file[field.clone()].try_into().unwrap());
        assert!(
            (now() - seconds).abs() < 60,
            "logout time {seconds} is not now"
        );
        file[field].fill(0);
    }
    file
}

#[test]
fn logs_the_first_entry_of_the_line_out_of_utmp_and_wtmp_as_runit() {
    runtree::skip_unless!(available());
    let utmp = [
        record(7, 10, "tty1", "alice", "host1", 1000),
        record(7, 11, "tty2", "bob", "host2", 1001),
        record(7, 12, "tty2", "carol", "host3", 1002),
    ]
    .concat();
    let old_wtmp = record(7, 9, "tty5", "dave", "", 999);
    let (theirs, ours) = compare(Some(&utmp), Some(&old_wtmp), &["-w", "tty2"]);
    assert_eq!((ours.code, ours.stderr.as_str()), (0, ""));
    assert_eq!((theirs.code, theirs.stderr.as_str()), (0, ""));
    let (our_utmp, their_utmp) = (ours.utmp.unwrap(), theirs.utmp.unwrap());
    assert_eq!(
        without_times(&our_utmp, &[1]),
        without_times(&their_utmp, &[1])
    );
    // bob's record: dead, no user, no host; pid, line and the rest kept.
    let bob = &our_utmp[RECORD..2 * RECORD];
    assert_eq!(i16::from_ne_bytes([bob[0], bob[1]]), 8);
    assert_eq!(&bob[4..8], &11i32.to_ne_bytes());
    assert!(bob[44..332].iter().all(|&b| b == 0));
    assert_eq!(&bob[8..12], b"tty2");
    assert_eq!(&our_utmp[..RECORD], &utmp[..RECORD]);
    assert_eq!(&our_utmp[2 * RECORD..], &utmp[2 * RECORD..]);

    let (our_wtmp, their_wtmp) = (ours.wtmp.unwrap(), theirs.wtmp.unwrap());
    assert_eq!(our_wtmp.len(), 2 * RECORD);
    assert_eq!(
        without_times(&our_wtmp, &[1]),
        without_times(&their_wtmp, &[1])
    );
    assert_eq!(&our_wtmp[..RECORD], &old_wtmp[..]);

    // Without -w, wtmp is left alone; a missing one is created with -w.
    let (theirs, ours) = compare(Some(&utmp), None, &["tty1"]);
    assert_eq!((ours.code, ours.wtmp.is_none()), (0, true));
    assert_eq!(
        without_times(&ours.utmp.unwrap(), &[0]),
        without_times(&theirs.utmp.unwrap(), &[0])
    );
    let (theirs, ours) = compare(Some(&utmp), None, &["-w", "tty1"]);
    assert_eq!(ours.code, 0);
    assert_eq!(
        without_times(&ours.wtmp.unwrap(), &[0]),
        without_times(&theirs.wtmp.unwrap(), &[0])
    );
}

#[test]
fn failures_as_runit() {
    runtree::skip_unless!(available());
    let utmp = [
        record(7, 10, "tty1", "alice", "h", 1000),
        // A record without a user is not a login: nothing to log out.
        record(6, 11, "tty3", "", "", 1001),
    ]
    .concat();
    for args in [&["tty9"][..], &["-w", "tty9"], &["tty3"]] {
        let (theirs, ours) = compare(Some(&utmp), None, args);
        assert_eq!(ours, theirs, "{args:?}");
        assert_eq!(ours.code, 111);
        assert!(
            ours.stderr.ends_with("in utmp: no such entry\n"),
            "{}",
            ours.stderr
        );
        assert_eq!(ours.utmp.as_deref(), Some(&utmp[..]), "unchanged");
        assert!(ours.wtmp.is_none(), "no wtmp record without a utmp entry");
    }
    let (theirs, ours) = compare(None, None, &["tty1"]);
    assert_eq!(ours, theirs);
    assert_eq!(
        ours.stderr,
        "utmpset: fatal: unable to open /var/run/utmp: file does not exist\n"
    );
}

#[test]
fn usage_as_runit() {
    runtree::skip_unless!(available());
    for args in [&[][..], &["-x", "tty1"], &["-w"]] {
        let (code, _, theirs) = run(Command::new(RUNIT).args(args), Duration::from_secs(10));
        let (our_code, _, ours) = run(
            Command::new(binary("utmpset")).args(args),
            Duration::from_secs(10),
        );
        assert_eq!((our_code, code), (1, 1), "{args:?}");
        // The usage names the program as called, which differs; the rest must not.
        let ours = ours.replace(&binary("utmpset").display().to_string(), "PROGRAM");
        assert_eq!(ours, theirs.replace(RUNIT, "PROGRAM"), "{args:?}");
    }
}
