//! runtree's svlogd against runit's (/usr/bin/svlogd), option by option, on the same
//! inputs: the same files with the same contents (timestamps aside), the same exit codes
//! and messages; and what runtree's does beyond runit's (SIGTERM writes out everything
//! read, a final line without a newline is kept).

use nix::sys::signal::{kill, Signal};
use runtree::{binary, wait_for, Guard};
use std::fs;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use runtree::svlogd::*;

#[test]
fn lines_and_modes_are_runits() {
    let mut input = numbered(50, 4);
    input.extend_from_slice(b"\n\ttab and \x01 control \xc3\xa9\n\n");
    let files = same_as_runit(&[], None, &input);
    let names: Vec<_> = files.iter().map(|f| (f.0.as_str(), f.1)).collect();
    // `current` is marked as closed cleanly by its x bit; `lock` is 0600.
    assert_eq!(names, [("current", 0o744), ("lock", 0o600)]);
    assert_eq!(files[0].2, input);
}

#[test]
fn replacement_and_line_length_are_runits() {
    let mut input = b"abc\x01\x7f\xff def bad\n".to_vec();
    input.extend_from_slice(&[b'x'; 150]);
    input.extend_from_slice(b"\x01tail\n");
    let files = same_as_runit(
        &["-r", ".", "-R", "ab", "-l", "100", "-b", "200"],
        None,
        &input,
    );
    assert!(
        files[0].2.starts_with(b"..c... def ..d\n"),
        "{:?}",
        files[0].2
    );
    // Past -l, the rest of a line is written as it came (runit's way).
    assert!(files[0].2.ends_with(b"xx\x01tail\n"));
    let files = same_as_runit(&["-R", "xyz"], None, b"axbyc\tz\n");
    assert_eq!(files[0].2, b"a_b_c__\n");
}

#[test]
fn rotation_by_size_and_count_is_runits() {
    let mut input = numbered(400, 6);
    input.extend_from_slice(&[b'z'; 3000]);
    input.extend_from_slice(b"\nend\n");
    let files = same_as_runit(&["-l", "100"], Some("s2000\nn3\n"), &input);
    let rotated: Vec<_> = files.iter().filter(|f| f.0.starts_with('@')).collect();
    assert_eq!(rotated.len(), 3, "n3 keeps three old files");
    assert!(rotated.iter().all(|f| f.0.ends_with(".s") && f.1 == 0o744));
    assert!(
        rotated.iter().all(|f| f.2.len() <= 2000),
        "s2000 is the most per file"
    );
    let kept: Vec<u8> = rotated.iter().flat_map(|f| f.2.clone()).collect();
    let current = &files.iter().find(|f| f.0 == "current").expect("current").2;
    assert!([kept, current.clone()].concat().ends_with(b"zzz\nend\n"));
}

#[test]
fn full_disk_count_n_and_no_limit() {
    // N only matters on a full disk; n0 keeps every old file, s0 never rotates. With
    // lines longer than s, files are cut at exactly s bytes, mid-line, as runit's.
    let files = same_as_runit(&[], Some("s500\nn0\nN2\n"), &numbered(200, 4));
    let sizes: Vec<_> = files
        .iter()
        .filter(|f| f.0 != "config" && f.0 != "lock")
        .map(|f| f.2.len())
        .collect();
    assert_eq!(sizes, [500, 500, 500, 500]);
    let files = same_as_runit(&[], Some("s0\n"), &numbered(200, 4));
    assert_eq!(files.len(), 3, "config, current, lock");
}

#[test]
fn verbose_messages_are_runits() {
    let files = same_as_runit(&["-v", "-l", "20"], Some("s100\nn2\n"), &numbered(40, 4));
    assert_eq!(files.iter().filter(|f| f.0.starts_with('@')).count(), 2);
}

#[test]
fn patterns_prefix_and_stderr_copies_are_runits() {
    let config = "-*debug*\n+*debug keep*\npPFX: \ne*error*\nE*error quiet*\n";
    let input = b"one\ndebug two\ndebug keep three\nan error four\nan error quiet five\n";
    let files = same_as_runit(&["-l", "10"], Some(config), input);
    let current = &files.iter().find(|f| f.0 == "current").expect("current").2;
    assert_eq!(
        String::from_utf8_lossy(current),
        "PFX: one\nPFX: debug keep three\nPFX: an error four\nPFX: an error quiet five\n"
    );
}

#[test]
fn several_directories_each_with_its_config() {
    for program in loggers() {
        let work = tempfile::tempdir().expect("tempdir");
        for (name, config) in [("a", "-*b*\n"), ("b", "-*\n+*b*\npB:")] {
            fs::create_dir(work.path().join(name)).expect("mkdir");
            fs::write(work.path().join(name).join("config"), config).expect("config");
        }
        let (code, _) = feed(&program, &["a", "b"], work.path(), b"a1\nb2\na3\nb4\n");
        assert_eq!(code, 0);
        let read = |name: &str| fs::read_to_string(work.path().join(name).join("current")).unwrap();
        assert_eq!(read("a"), "a1\na3\n", "{program:?}");
        assert_eq!(read("b"), "B:b2\nB:b4\n", "{program:?}");
    }
}

#[test]
fn timestamps_have_runits_formats() {
    type Valid = fn(&str) -> bool;
    let checks: [(&str, Valid); 3] = [
        ("-t", |s| {
            s.len() == 25 && s.starts_with("@4000") && s[1..].bytes().all(|b| b.is_ascii_hexdigit())
        }),
        ("-tt", |s| {
            s.len() == 25 && &s[10..11] == "_" && &s[19..20] == "."
        }),
        ("-ttt", |s| {
            s.len() == 25 && &s[10..11] == "T" && &s[13..14] == ":"
        }),
    ];
    for program in loggers() {
        for (option, valid) in checks {
            let work = tempfile::tempdir().expect("tempdir");
            fs::create_dir(work.path().join("log")).expect("mkdir");
            let (code, _) = feed(&program, &[option, "log"], work.path(), b"x\n\nlast\n");
            assert_eq!(code, 0);
            let current = fs::read_to_string(work.path().join("log/current")).unwrap();
            let lines: Vec<_> = current.lines().collect();
            assert_eq!(lines.len(), 3);
            for (line, text) in lines.iter().zip(["x", "", "last"]) {
                let (stamp, rest) = line.split_at(25);
                assert!(valid(stamp), "{program:?} {option}: {line:?}");
                assert_eq!(rest, format!(" {text}"));
            }
        }
    }
}

#[test]
fn processor_runs_on_rotated_files_as_runits() {
    let config = "s100\n!tr a-z A-Z; cat <&4 >/dev/null; echo processed >&5\n";
    let files = same_as_runit(&["-l", "10"], Some(config), &numbered(30, 4));
    let rotated: Vec<_> = files.iter().filter(|f| f.0.starts_with('@')).collect();
    assert!(rotated.len() >= 3);
    assert!(
        rotated.iter().all(|f| f.0.ends_with(".s")),
        "no .u or .t is left"
    );
    assert!(rotated[0].2.starts_with(b"LINE 0000\n"));
    let state = files.iter().find(|f| f.0 == "state").expect("state");
    assert_eq!(state.2, b"processed\n");
}

#[test]
fn a_fifo_in_the_log_directory_never_blocks() {
    // runit's svlogd hangs on a FIFO `config` and retries a FIFO `current` forever;
    // runtree's refuses them at once.
    let work = tempfile::tempdir().expect("tempdir");
    for name in ["a", "b"] {
        fs::create_dir(work.path().join(name)).unwrap();
    }
    nix::unistd::mkfifo(&work.path().join("a/config"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    nix::unistd::mkfifo(
        &work.path().join("b/current"),
        nix::sys::stat::Mode::S_IRWXU,
    )
    .unwrap();
    let (code, stderr) = feed(&binary("svlogd"), &["a", "b"], work.path(), b"line\n");
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stderr,
        "svlogd: warning: unable to read config: a: invalid argument\n\
         svlogd: warning: unable to open current: b: invalid argument\n"
    );
    assert_eq!(
        fs::read_to_string(work.path().join("a/current")).unwrap(),
        "line\n"
    );
}

#[test]
fn a_current_not_closed_cleanly_is_kept_as_u_file() {
    for program in loggers() {
        let work = tempfile::tempdir().expect("tempdir");
        let log = work.path().join("log");
        fs::create_dir(&log).expect("mkdir");
        fs::write(log.join("current"), "from a crash\n").expect("current");
        fs::set_permissions(log.join("current"), fs::Permissions::from_mode(0o644)).unwrap();
        let (code, _) = feed(&program, &["log"], work.path(), b"new\n");
        assert_eq!(code, 0);
        let files = files(&log);
        let names: Vec<_> = files.iter().map(|f| f.0.as_str()).collect();
        assert_eq!(names, ["@….u", "current", "lock"], "{program:?}");
        assert_eq!(files[0].2, b"from a crash\n");
        assert_eq!(files[1].2, b"new\n");
    }
}

#[test]
fn usage_and_errors_are_runits() {
    let cases: [&[&str]; 6] = [
        &[],
        &["-x", "log"],
        &["-r"],
        &["-r", "ab", "log"],
        &["-b", "10", "log"],
        &["-l", "2000", "log"],
    ];
    let work = tempfile::tempdir().expect("tempdir");
    fs::write(work.path().join("file"), "").unwrap();
    fs::create_dir(work.path().join("locked")).unwrap();
    let lock = fs::File::create(work.path().join("locked/lock")).unwrap();
    let _held = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusiveNonblock)
        .map_err(|(_, e)| e)
        .expect("hold the lock");
    let mut runs: Vec<Vec<(i32, String)>> = Vec::new();
    for program in loggers() {
        let mut outputs = Vec::new();
        // runit names itself by argv[0]: both are started as plain `svlogd`.
        let command = |args: &[&str]| {
            let mut command = Command::new(&program);
            std::os::unix::process::CommandExt::arg0(&mut command, "svlogd");
            command.args(args).current_dir(work.path());
            let (code, _, stderr) = runtree::run(&mut command, TIMEOUT);
            (code, stderr)
        };
        for args in cases {
            outputs.push(command(args));
        }
        outputs.push(command(&["missing"]));
        outputs.push(command(&["file"]));
        outputs.push(command(&["locked"]));
        outputs.push(command(&["missing", "file"]));
        runs.push(outputs);
    }
    let usage = "usage: svlogd [-ttv] [-r c] [-R abc] [-l len] [-b buflen] dir ...\n\n";
    assert_eq!(runs[0][0], (111, usage.to_string()));
    assert_eq!(
        runs[0][1].1,
        format!("svlogd: illegal option -- x\n{usage}")
    );
    assert_eq!(
        runs[0][6].1,
        "svlogd: warning: unable to open log directory: missing: file does not exist\n\
         svlogd: fatal: no functional log directories.\n"
    );
    assert_eq!(
        runs[0][8].1,
        "svlogd: warning: unable to lock directory: locked: temporary failure\n\
         svlogd: fatal: no functional log directories.\n"
    );
    for run in &runs[1..] {
        assert_eq!(&runs[0], run);
    }
}

#[test]
fn sighup_rereads_config_and_reopens() {
    for program in loggers() {
        let mut logger = Running::start(&program, &["-v"], None);
        logger.write("before\n");
        logger.wait_current("before\n");
        fs::write(logger.log().join("config"), "pNEW:\n").unwrap();
        logger.signal(Signal::SIGHUP);
        logger.wait_stderr("info: read: log/config", 1);
        logger.write("after\n");
        let (code, files) = logger.finish();
        assert_eq!(code, 0);
        let current = &files.iter().find(|f| f.0 == "current").expect("current").2;
        assert_eq!(
            String::from_utf8_lossy(current),
            "before\nNEW:after\n",
            "{program:?}"
        );
    }
}

#[test]
fn sigalrm_rotates() {
    for program in loggers() {
        let mut logger = Running::start(&program, &[], None);
        logger.write("first\n");
        logger.wait_current("first\n");
        logger.signal(Signal::SIGALRM);
        logger.wait_rotated();
        logger.write("second\n");
        let (code, files) = logger.finish();
        assert_eq!(code, 0);
        let contents: Vec<_> = files
            .iter()
            .map(|f| (f.0.as_str(), f.2.as_slice()))
            .collect();
        assert_eq!(
            contents,
            [
                ("@….s", &b"first\n"[..]),
                ("current", b"second\n"),
                ("lock", b"")
            ],
            "{program:?}"
        );
    }
}

#[test]
fn rotation_by_age() {
    for program in loggers() {
        let mut logger = Running::start(&program, &[], Some("t1\n"));
        logger.write("aged\n");
        // t1: a second after its first line, current is rotated.
        logger.wait_rotated();
        let (_, files) = logger.finish();
        assert_eq!(files[0].2, b"aged\n");
    }
}

/// Writes `count` numbered lines into a pipe the logger reads, TERMs it at once, and
/// returns what reached `current` and what it left in the pipe.
fn term_while_busy(program: &Path, count: usize) -> (Vec<String>, Vec<String>) {
    let work = tempfile::tempdir().expect("tempdir");
    fs::create_dir(work.path().join("log")).expect("mkdir");
    let (read_end, write_end) = nix::unistd::pipe().expect("pipe");
    // The test keeps a copy of the read end: what the logger has not read stays there.
    let spare = read_end.try_clone().expect("dup");
    let mut guard = Guard::spawn(
        Command::new(program)
            .arg("log")
            .current_dir(work.path())
            .stdin(Stdio::from(read_end))
            .stderr(Stdio::null()),
    );
    let log = work.path().join("log");
    assert!(wait_for(&[&log], TIMEOUT, || log.join("current").exists()));
    let mut pipe = fs::File::from(write_end);
    let mut input = String::new();
    for i in 0..count {
        input.push_str(&format!("{i:014}\n"));
    }
    pipe.write_all(input.as_bytes()).expect("fill the pipe");
    kill(guard.pid(), Signal::SIGTERM).expect("TERM");
    let status = guard.wait_exit(TIMEOUT).expect("exits on TERM");
    assert!(status.success(), "{status:?}");
    let written = fs::read_to_string(log.join("current")).unwrap_or_default();
    drop(pipe);
    let mut left = String::new();
    let mut spare = fs::File::from(spare);
    nix::fcntl::fcntl(
        spare.as_raw_fd(),
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::empty()),
    )
    .unwrap();
    spare.read_to_string(&mut left).expect("read what is left");
    let lines = |s: &str| s.lines().map(str::to_string).collect::<Vec<_>>();
    (lines(&written), lines(&left))
}

#[test]
fn sigterm_writes_out_everything_read() {
    // 16-byte lines: every read of a 1024-byte buffer ends at a line's end, where
    // runit's svlogd drops the line when TERMed.
    let program = binary("svlogd");
    for round in 0..5 {
        let (written, left) = term_while_busy(&program, 3000);
        let all: Vec<String> = (0..3000).map(|i| format!("{i:014}")).collect();
        let seen = [written.clone(), left.clone()].concat();
        assert_eq!(
            seen,
            all,
            "round {round}: {} written, {} left",
            written.len(),
            left.len()
        );
    }
}

/// runit's svlogd loses a line when TERMed while busy (not asserted in the suite: how
/// often depends on timing). `cargo test --test svlogd -- --ignored` shows it.
#[test]
#[ignore]
fn runits_svlogd_loses_a_line_on_term() {
    let mut lost = 0;
    for _ in 0..5 {
        let (written, left) = term_while_busy(Path::new(RUNIT), 3000);
        lost += 3000 - written.len() - left.len();
    }
    assert!(lost > 0, "runit's svlogd lost nothing this time");
}

#[test]
fn a_last_line_without_newline_is_kept() {
    // runit's svlogd drops it; runtree's writes it, with a newline.
    let work = tempfile::tempdir().expect("tempdir");
    fs::create_dir(work.path().join("log")).expect("mkdir");
    let (code, _) = feed(&binary("svlogd"), &["log"], work.path(), b"one\ntwo");
    assert_eq!(code, 0);
    assert_eq!(
        fs::read_to_string(work.path().join("log/current")).unwrap(),
        "one\ntwo\n"
    );
}

/// A logger on a 64 KiB tmpfs seen only by it (a private mount namespace), after
/// `setup` (shell, in the mount, where `log/` exists) has filled it. Returns the logger,
/// the mount as seen from here (through its /proc/PID/root), and its stderr file.
fn logger_on_a_full_disk(work: &Path, setup: &str) -> (Guard, PathBuf, PathBuf) {
    let mnt = work.join("mnt");
    fs::create_dir(&mnt).unwrap();
    let script = format!(
        "mount -t tmpfs -o size=64k none {mnt} && cd {mnt} && mkdir log && {setup} && \
         exec {svlogd} log",
        mnt = mnt.display(),
        svlogd = binary("svlogd").display()
    );
    let stderr = work.join("stderr");
    let guard = Guard::spawn(
        Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", &script])
            .stdin(Stdio::piped())
            .stderr(fs::File::create(&stderr).unwrap()),
    );
    let inside = PathBuf::from(format!("/proc/{}/root{}", guard.pid(), mnt.display()));
    assert!(wait_for(&[&mnt], TIMEOUT, || inside
        .join("log/lock")
        .exists()));
    (guard, inside, stderr)
}

/// Waits until `log/current` in `dir` holds exactly `input`.
fn wait_current(dir: &Path, input: &[u8]) {
    let current = dir.join("log/current");
    assert!(
        wait_for(&[&dir.join("log")], TIMEOUT, || fs::read(&current)
            .is_ok_and(|text| text == input)),
        "the lines never got through"
    );
}

fn root_for_tmpfs() -> bool {
    let root = nix::unistd::geteuid().is_root();
    if !root {
        eprintln!("skipped: needs root to mount a small tmpfs in a mount namespace");
    }
    root
}

#[test]
fn a_full_disk_loses_no_line() {
    runtree::skip_unless!(root_for_tmpfs());
    let work = tempfile::tempdir().expect("tempdir");
    let fill = "(dd if=/dev/zero of=filler bs=4k 2>/dev/null; true)";
    let (mut guard, inside, stderr) = logger_on_a_full_disk(work.path(), fill);
    let mut stdin = guard.child.stdin.take().unwrap();
    let input = numbered(500, 6);
    stdin.write_all(&input).unwrap();
    let paused = || {
        fs::read_to_string(&stderr)
            .unwrap_or_default()
            .contains("svlogd: pausing: unable to write to current: log: out of disk space")
    };
    assert!(
        wait_for(&[&stderr], TIMEOUT, paused),
        "never paused on the full disk"
    );
    fs::remove_file(inside.join("filler")).expect("free the disk");
    // Once the disk has room, the lines get through.
    wait_current(&inside, &input);
    drop(stdin);
    assert!(guard.wait_exit(TIMEOUT).expect("exits").success());
}

#[test]
fn a_full_disk_deletes_old_files_down_to_big_n() {
    runtree::skip_unless!(root_for_tmpfs());
    let work = tempfile::tempdir().expect("tempdir");
    // Two old files: the older one fills the disk. n5 N1: on ENOSPC, runit's rule
    // deletes the oldest while more than one remains, and the lines go through.
    let (old, newer) = ("@400000000000000000000001.s", "@400000000000000000000002.s");
    let setup = format!(
        "printf 'n5\\nN1\\n' >log/config && echo kept >log/{newer} && \
         (dd if=/dev/zero of=log/{old} bs=4k 2>/dev/null; true)"
    );
    let (mut guard, inside, stderr) = logger_on_a_full_disk(work.path(), &setup);
    let mut stdin = guard.child.stdin.take().unwrap();
    let input = numbered(500, 6);
    stdin.write_all(&input).unwrap();
    wait_current(&inside, &input);
    let log = inside.join("log");
    assert!(!log.join(old).exists(), "the oldest file is deleted");
    assert_eq!(fs::read_to_string(log.join(newer)).unwrap(), "kept\n");
    drop(stdin);
    assert!(guard.wait_exit(TIMEOUT).expect("exits").success());
    assert_eq!(
        fs::read_to_string(&stderr).unwrap(),
        format!("svlogd: warning: out of disk space, delete: log/{old}\n")
    );
}
