//! chpst against runit's own (/usr/bin/chpst, Debian's runit), option by option on the
//! same inputs: the same effect seen from inside the program (ids, groups, limits,
//! environment, nice, root, session, open fds, locks), the same exit codes and the same
//! messages. Each of its other names too. Needs root and runit's chpst; says so and
//! passes nothing otherwise.

use runtree::WAIT;
use runtree::{binary, run, wait_for, Guard};
use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const RUNIT: &str = "/usr/bin/chpst";

type Outcome = (i32, String, String);

fn available() -> bool {
    if !nix::unistd::geteuid().is_root() || !Path::new(RUNIT).exists() {
        eprintln!("skipped: needs root and runit's {RUNIT}");
        return false;
    }
    true
}

/// The two programs under one name (`chpst`, `setlock`, …): symlinks in `dir` to
/// runit's and to ours, so both see the same argv[0] basename.
fn pair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let theirs = dir.join("runit").join(name);
    let ours = dir.join("runtree").join(name);
    for (link, target) in [(&theirs, PathBuf::from(RUNIT)), (&ours, binary("chpst"))] {
        fs::create_dir_all(link.parent().unwrap()).unwrap();
        if !link.exists() {
            symlink(target, link).unwrap();
        }
    }
    (theirs, ours)
}

/// Runs both with `args` (and `setup` applied to each command); their outcomes.
fn both_with(name: &str, args: &[&str], setup: impl Fn(&mut Command)) -> (Outcome, Outcome) {
    let dir = tempfile::tempdir().unwrap();
    let (theirs, ours) = pair(dir.path(), name);
    let outcome = |program: &Path| {
        let mut command = Command::new(program);
        command.args(args).current_dir(dir.path());
        setup(&mut command);
        run(&mut command, WAIT)
    };
    (outcome(&theirs), outcome(&ours))
}

fn both(name: &str, args: &[&str]) -> (Outcome, Outcome) {
    both_with(name, args, |_| {})
}

/// Asserts the same exit code, output and messages.
fn same(name: &str, args: &[&str]) -> Outcome {
    let (theirs, ours) = both(name, args);
    assert_eq!(ours, theirs, "{name} {args:?}: runtree's, then runit's");
    ours
}

/// The usage text differs (ours lists -C, Void's option); the rest must not.
fn same_usage_error(name: &str, args: &[&str]) {
    let (theirs, ours) = both(name, args);
    assert_eq!((ours.0, theirs.0), (100, 100), "{name} {args:?}");
    let problem = |s: &str| -> Vec<String> {
        s.lines()
            .filter(|l| !l.starts_with("usage: "))
            .map(String::from)
            .collect()
    };
    assert_eq!(problem(&ours.2), problem(&theirs.2), "{name} {args:?}");
    assert!(ours.2.contains(&format!("usage: {name} ")), "{}", ours.2);
    assert!(ours.2.ends_with("\n\n"), "a blank line ends runit's usage");
}

#[test]
fn usage_errors_exit_100_with_runits_messages() {
    runtree::skip_unless!(available());
    for args in [
        &[][..],
        &["-x", "true"],
        &["-u"],
        &["-m", "abc", "true"],
        &["-o", "4k", "true"],
        &["-n", "x", "true"],
        &["-l", "a", "-L", "b", "true"],
        &["-v"],
    ] {
        same_usage_error("chpst", args);
    }
}

#[test]
fn failures_exit_111_with_runits_messages() {
    runtree::skip_unless!(available());
    for args in [
        &["nonexistent-program"][..],
        &["./nonexistent"],
        &["/etc/passwd"],
        &["-b", "shown", "/nonexistent"],
        &["-u", "nosuchuser", "true"],
        &["-u", "root:nosuchgroup", "true"],
        &["-u", ":abc", "true"],
        &["-u", ":5", "true"],
        // A number is not an account name (no numeric fallback, as getpwnam).
        &["-u", "65534", "true"],
        &["-U", "nosuchuser", "true"],
        &["-e", "/nonexistent", "true"],
        &["-/", "/nonexistent", "true"],
        &["-L", "/nonexistent/lock", "true"],
    ] {
        let (code, _, stderr) = same("chpst", args);
        assert_eq!(code, 111, "{args:?}");
        assert!(stderr.starts_with("chpst: fatal: "), "{stderr}");
    }
}

#[test]
fn users_groups_and_their_order_as_runit() {
    runtree::skip_unless!(available());
    for args in [
        &["-u", "nobody", "id"][..],
        &["-u", "nobody:adm:tty:nogroup", "id"],
        &["-u", ":4242:7:8:9", "id"],
        &["-u", ":4242:", "id"],
        &["-u", "daemon:adm", "sh", "-c", "id -u; id -g; id -G"],
    ] {
        let (code, out, _) = same("chpst", args);
        assert_eq!(code, 0, "{args:?}");
        assert!(!out.is_empty());
    }
    let (_, out, _) = same("chpst", &["-u", "nobody", "id", "-G"]);
    // Only the account's own group: runit does not add the groups listing the user.
    assert_eq!(out.split_whitespace().count(), 1, "{out}");
    let (theirs, ours) = both("chpst", &["-U", "nobody:adm:tty", "env"]);
    let ids = |o: &Outcome| {
        let mut v: Vec<String> =
            o.1.lines()
                .filter(|l| l.starts_with("UID=") || l.starts_with("GID="))
                .map(String::from)
                .collect();
        v.sort();
        v
    };
    assert_eq!(ids(&ours), ids(&theirs));
    assert_eq!(ids(&ours).len(), 2);
}

/// The environment a program sees, sorted, without `_` (the shell's own).
fn environment(outcome: &Outcome) -> Vec<String> {
    let mut lines: Vec<String> = outcome
        .1
        .split('\0')
        .filter(|l| !l.is_empty() && !l.starts_with("_="))
        .map(String::from)
        .collect();
    lines.sort();
    lines
}

#[test]
fn env_dirs_as_runit_reads_them() {
    runtree::skip_unless!(available());
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join("env");
    fs::create_dir(&env).unwrap();
    fs::write(env.join("SPACES"), "a b \t\nsecond line\n").unwrap();
    fs::write(env.join("NUL"), b"x\0y\nz").unwrap();
    fs::write(env.join("GONE"), "").unwrap();
    fs::write(env.join("EMPTY"), "\n").unwrap();
    fs::write(env.join(".hidden"), "never\n").unwrap();
    fs::write(env.join("PATH"), "/nonexistent\n").unwrap();
    let env_text = env.to_str().unwrap();
    let preset = |command: &mut Command| {
        command.env("GONE", "was set").env("KEPT", "as it was");
    };
    // env -0: values with newlines survive the comparison. PATH from the env dir reaches
    // the program, but the program is still found through chpst's own PATH.
    let (theirs, ours) = both_with("chpst", &["-e", env_text, "env", "-0"], preset);
    assert_eq!(ours.0, 0, "{}", ours.2);
    assert_eq!(environment(&ours), environment(&theirs));
    let seen = environment(&ours);
    for expected in [
        "SPACES=a b",
        "NUL=x\ny",
        "EMPTY=",
        "KEPT=as it was",
        "PATH=/nonexistent",
    ] {
        assert!(
            seen.contains(&expected.to_string()),
            "{expected} in {seen:?}"
        );
    }
    assert!(!seen
        .iter()
        .any(|l| l.starts_with("GONE=") || l.contains("never")));

    // A subdirectory: chpst -e skips it (saying so with -v), envdir fails on it.
    fs::create_dir(env.join("SUBDIR")).unwrap();
    let (theirs, ours) = both_with("chpst", &["-e", env_text, "env", "-0"], preset);
    assert_eq!(environment(&ours), environment(&theirs));
    let (code, _, stderr) = same("chpst", &["-v", "-e", env_text, "true"]);
    assert_eq!(code, 0);
    assert!(
        stderr.starts_with("chpst: warning: unable to read "),
        "{stderr}"
    );
    let (code, _, stderr) = same("envdir", &[env_text, "true"]);
    assert_eq!(code, 111);
    assert!(stderr.ends_with("SUBDIR: is a directory\n"), "{stderr}");
    same("envdir", &["/nonexistent", "true"]);
}

#[test]
fn limits_as_runit_sets_them() {
    runtree::skip_unless!(available());
    // Every limit the program has, soft and hard, as the kernel reports them.
    let report = "cat /proc/self/limits";
    for args in [
        &["-o", "17", "-c", "0", "-t", "33", "sh", "-c", report][..],
        &[
            "-m",
            "300000000",
            "-f",
            "1000",
            "-p",
            "99",
            "-r",
            "777777",
            "sh",
            "-c",
            report,
        ],
        &["-d", "400000000", "-c", "", "sh", "-c", report],
        // Over the hard limit, or too big for a C long: the hard limit.
        &[
            "-o",
            "99999999999",
            "-c",
            "18446744073709551615",
            "sh",
            "-c",
            report,
        ],
    ] {
        let (code, out, _) = same("chpst", args);
        assert_eq!(code, 0, "{args:?}");
        assert!(out.contains("Max open files"), "{out}");
    }
    let (_, out, _) = same("chpst", &["-o", "17", "sh", "-c", "ulimit -n"]);
    assert_eq!(out, "17\n");
    for args in [
        &["-o", "23", "-m", "=", "-s", "500000", "sh", "-c", report][..],
        &[
            "-a",
            "300000000",
            "-l",
            "65536",
            "-t",
            "=",
            "sh",
            "-c",
            report,
        ],
    ] {
        assert_eq!(same("softlimit", args).0, 0, "{args:?}");
    }
    same_usage_error("softlimit", &["-z", "true"]);
    same_usage_error("softlimit", &[]);
    // runit answers a bad number with chpst's usage, under softlimit's name.
    let (theirs, ours) = both("softlimit", &["-o", "x", "true"]);
    assert_eq!((ours.0, theirs.0), (100, 100));
}

#[test]
fn nice_root_session_argv0_and_closed_fds_as_runit() {
    runtree::skip_unless!(available());
    for args in [
        &["-n", "5", "nice"][..],
        &["-n", "-3", "nice"],
        &["-n", "+2", "nice"],
    ] {
        let (code, _, _) = same("chpst", args);
        assert_eq!(code, 0);
    }
    assert_eq!(same("chpst", &["-n", "-3", "nice"]).1, "-3\n");

    // A root with its own account files: -u is looked up inside it, after the chroot.
    let root = tempfile::tempdir().unwrap();
    fs::create_dir_all(root.path().join("bin")).unwrap();
    fs::create_dir_all(root.path().join("etc")).unwrap();
    fs::copy("/bin/busybox", root.path().join("bin/busybox")).unwrap();
    fs::write(
        root.path().join("etc/passwd"),
        "inner:x:4242:4343::/:/bin/sh\n",
    )
    .unwrap();
    fs::write(root.path().join("etc/group"), "g:x:4444:\n").unwrap();
    let root_text = root.path().to_str().unwrap();
    let script = "echo $(pwd) $(id -u) $(id -G); ls /";
    let (code, out, _) = same(
        "chpst",
        &[
            "-/",
            root_text,
            "-u",
            "inner:g",
            "/bin/busybox",
            "sh",
            "-c",
            script,
        ],
    );
    assert_eq!(code, 0);
    assert_eq!(out, "/ 4242 4444\nbin\netc\n");

    // -P: a session of its own (chpst is started by a shell, so it is no group leader).
    let sid = "read -r stat < /proc/self/stat; set -- $stat; echo $1 $6";
    let dir = tempfile::tempdir().unwrap();
    let (theirs, ours) = pair(dir.path(), "chpst");
    let session = |program: &Path, flag: &str| {
        let (code, out, _) = run(
            Command::new("sh")
                .args(["-c", "\"$0\" $1 sh -c \"$2\"; true"])
                .args([program.as_os_str(), flag.as_ref(), sid.as_ref()]),
            WAIT,
        );
        assert_eq!(code, 0);
        let words: Vec<String> = out.split_whitespace().map(String::from).collect();
        assert_eq!(words.len(), 2, "{out}");
        words[0] == words[1]
    };
    for program in [&theirs, &ours] {
        assert!(!session(program, "-v"), "without -P, the shell's session");
        assert!(
            session(program, "-P"),
            "{} -P: the program leads its session",
            program.display()
        );
    }

    let (_, out, _) = same(
        "chpst",
        &[
            "-b",
            "shown-name",
            "sh",
            "-c",
            "tr '\\0' ' ' < /proc/$$/cmdline",
        ],
    );
    assert!(out.starts_with("shown-name -c "), "{out}");

    let open_fds =
        "for f in 0 1 2; do [ -e /proc/$$/fd/$f ] && printf \"$f \" >> \"$OUT\"; done; true";
    for flags in ["-0", "-1", "-2", "-012"] {
        let outputs: Vec<String> = [&theirs, &ours]
            .iter()
            .map(|program| {
                let out = dir.path().join("fds");
                let _ = fs::remove_file(&out);
                let (code, _, _) = run(
                    Command::new(program)
                        .args([flags, "sh", "-c", open_fds])
                        .env("OUT", &out),
                    WAIT,
                );
                assert_eq!(code, 0);
                fs::read_to_string(&out).unwrap_or_default()
            })
            .collect();
        assert_eq!(outputs[1], outputs[0], "{flags}");
    }
}

/// Holds an exclusive flock on `path` while alive (the lock goes with the descriptor).
fn hold(path: &Path) -> fs::File {
    let file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    assert_eq!(
        unsafe { nix::libc::flock(file.as_raw_fd(), nix::libc::LOCK_EX) },
        0
    );
    file
}

/// Whether a process waits for a flock (its request is listed as blocked in /proc/locks).
fn waits_for_lock(pid: u32) -> bool {
    fs::read_to_string("/proc/locks")
        .unwrap_or_default()
        .lines()
        .any(|l| l.contains("->") && l.split_whitespace().nth(5) == Some(&pid.to_string()))
}

#[test]
fn locks_as_runit_takes_them() {
    runtree::skip_unless!(available());
    let dir = tempfile::tempdir().unwrap();
    let lock = dir.path().join("lock");
    let lock_text = lock.to_str().unwrap();
    // Created 0600; held by the program while it runs (flock -n on it fails inside).
    let inside = "flock -n \"$0\" true; echo $?";
    let (code, out, _) = same("chpst", &["-L", lock_text, "sh", "-c", inside, lock_text]);
    assert_eq!((code, out.as_str()), (0, "1\n"));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(&lock).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let held = hold(&lock);
    let (code, _, stderr) = same("chpst", &["-L", lock_text, "true"]);
    assert_eq!(code, 111);
    assert!(stderr.ends_with("lock: temporary failure\n"), "{stderr}");
    // setlock: runit's defaults are daemontools' reversed: no wait unless -n.
    assert_eq!(same("setlock", &[lock_text, "true"]).0, 111);
    assert_eq!(
        same("setlock", &["-x", lock_text, "false"]),
        (0, String::new(), String::new())
    );
    same_usage_error("setlock", &[lock_text]);
    same_usage_error("setlock", &["-q", lock_text, "true"]);
    drop(held);

    // -l and setlock -n wait for the lock, and run once it is free.
    let (theirs, ours) = pair(dir.path(), "chpst");
    let (set_theirs, set_ours) = pair(dir.path(), "setlock");
    for (program, flag) in [
        (&theirs, "-l"),
        (&ours, "-l"),
        (&set_theirs, "-n"),
        (&set_ours, "-n"),
    ] {
        let held = hold(&lock);
        let mut waiter = Guard::spawn(
            Command::new(program)
                .args([flag, lock_text, "true"])
                .stdin(Stdio::null()),
        );
        let pid = waiter.child.id();
        assert!(
            wait_for(&[], WAIT, || waits_for_lock(pid)),
            "{} {flag} never waited for the lock",
            program.display()
        );
        assert!(waiter.child.try_wait().unwrap().is_none());
        drop(held);
        let status = waiter.wait_exit(WAIT).expect("runs once the lock is free");
        assert_eq!(status.code(), Some(0), "{}", program.display());
    }
}

#[test]
fn every_other_name_as_runit() {
    runtree::skip_unless!(available());
    assert_eq!(same("setuidgid", &["nobody", "id"]).0, 0);
    let (code, _, stderr) = same("setuidgid", &["nobody:nogroup", "id"]);
    assert_eq!(
        (code, stderr.as_str()),
        (111, "chpst: fatal: unknown account: nobody:nogroup\n")
    );
    let (theirs, ours) = both("envuidgid", &["nobody", "env", "-0"]);
    assert_eq!(environment(&ours), environment(&theirs));
    assert!(environment(&ours).contains(&"UID=65534".to_string()));
    let group_of = "read -r stat < /proc/self/stat; set -- $stat; [ $1 = $5 ] && echo leader";
    let dir = tempfile::tempdir().unwrap();
    let outputs: Vec<Outcome> = [
        pair(dir.path(), "pgrphack").0,
        pair(dir.path(), "pgrphack").1,
    ]
    .iter()
    .map(|p| {
        run(
            Command::new("sh")
                .arg("-c")
                .arg(format!("\"{}\" sh -c '{group_of}'; true", p.display())),
            WAIT,
        )
    })
    .collect();
    assert_eq!(outputs[1], outputs[0]);
    assert_eq!(outputs[1].1, "leader\n");
    // A leading d is dropped from the name, as in runit (daemontools' d-prefixed names).
    assert_eq!(same("dsetuidgid", &["nobody", "id", "-u"]).1, "65534\n");
    for name in [
        "setuidgid",
        "envuidgid",
        "envdir",
        "pgrphack",
        "setlock",
        "softlimit",
    ] {
        let (theirs, ours) = both(name, &[]);
        assert_eq!(ours, theirs, "{name} without arguments");
        assert_eq!(ours.0, 100);
    }
}
