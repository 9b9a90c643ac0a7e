//! svdir under attack: restarted while its children are still being forked, stopped
//! while one runsv never answers, and fed names that are not UTF-8. Real binaries on
//! temp dirs; every wait is bounded and event-driven; every process started is owned by
//! a Guard (its own process group, killed on drop) and every service seen is added to
//! its extra groups.

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use runtree::svdir_tree::Tree;
use runtree::WAIT;
use runtree::{alive, binary, wait_for, write_script, Guard};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The inode of `.svdir/synced`: svdir replaces it (rename) once it holds the lock.
fn synced_inode(scan: &Path) -> Option<u64> {
    fs::metadata(scan.join(".svdir/synced"))
        .ok()
        .map(|m| m.ino())
}

/// svdir SIGKILLed just after it took the scan directory's lock, while it forks a batch
/// of 60 runsv, and restarted at once, 100 times: every new svdir must get the lock.
/// Today's flock is shared by every child forked before its exec, so a child still
/// between fork and exec when svdir dies keeps the directory locked.
#[test]
fn an_svdir_killed_while_spawning_and_restarted_at_once_always_gets_the_lock() {
    let tree = Tree::new();
    for i in 0..60 {
        fs::create_dir_all(tree.scan().join(format!("s{i:02}"))).unwrap();
    }
    // A runsv that exits at once: every svdir has the whole batch to fork.
    let env = [("RUNTREE_RUNSV", "/bin/true")];
    let mut previous: Option<Guard> = None;
    let mut refused = 0;
    for round in 0..100 {
        let before = synced_inode(&tree.scan());
        let mut svdir = Guard::spawn(&mut tree.svdir_command(&tree.scan(), &env));
        let mut exited = None;
        let locked = wait_for(&[&tree.scan().join(".svdir")], WAIT, || {
            if let Ok(Some(status)) = svdir.child.try_wait() {
                exited = Some(status);
                return true;
            }
            synced_inode(&tree.scan()).is_some_and(|ino| Some(ino) != before)
        });
        assert!(locked, "round {round}: svdir neither locked nor exited");
        // Only now is the predecessor's group cleaned up: its children had all the
        // time they needed to hold the lock.
        drop(previous.take());
        if let Some(status) = exited {
            assert_eq!(status.code(), Some(111), "round {round}: {}", tree.log());
            refused += 1;
            continue;
        }
        kill(svdir.pid(), Signal::SIGKILL).unwrap();
        svdir.child.wait().unwrap();
        previous = Some(svdir);
    }
    drop(previous);
    assert_eq!(
        refused,
        0,
        "svdir restarts refused with 111 out of 100:\n{}",
        tree.log()
            .lines()
            .filter(|l| l.contains("fatal"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// A runit-form service `scan/NAME` running `sleep 1000`.
fn sleeper(tree: &Tree, name: &str) -> PathBuf {
    let dir = tree.scan().join(name);
    write_script(&dir.join("run"), "#!/bin/sh\nexec sleep 1000\n");
    dir
}

/// The runsv children of svdir whose first argument is `name`.
fn runsv_child(svdir: Pid, name: &str) -> Option<u32> {
    for entry in fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<i32>().ok());
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if ppid == Some(svdir.as_raw())
            && cmdline == [b"runsv\0".as_slice(), name.as_bytes(), b"\0"].concat()
        {
            return Some(pid);
        }
    }
    None
}

/// The ordered stop holds its deadline while one runsv never answers: it is SIGSTOPped
/// and its `supervise/state` replaced by a FIFO (which svdir read with a blocking open),
/// and another service's definition has a FIFO at `finish` (which loading the
/// definition for `after:` opened, blocking). Today svdir blocks in the first read and
/// never tells anyone to stop: every service stays up. Now it stops the healthy ones,
/// kills the stuck one at the deadline (found as its runsv's child: its state file
/// cannot be read), and exits 1 within the deadline and a margin.
#[test]
fn the_stop_holds_its_deadline_whatever_one_runsv_does() {
    let tree = Tree::new();
    let healthy = [sleeper(&tree, "h1"), sleeper(&tree, "h2")];
    let stuck = sleeper(&tree, "stuck");
    let blocked = tree.scan().join("blocked");
    fs::create_dir_all(&blocked).unwrap();
    fs::write(
        blocked.join("service.yaml"),
        "exec: sleep 1000\nlog: none\n",
    )
    .unwrap();
    nix::unistd::mkfifo(
        &blocked.join("finish"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    let deadline = Duration::from_secs(3);
    let mut svdir =
        Guard::spawn(&mut tree.svdir_command(&tree.scan(), &[("RUNTREE_STOP_DEADLINE", "3")]));
    let mut pids = Vec::new();
    for service in healthy.iter().chain([&stuck]) {
        let pid = runtree::wait_running(service, WAIT);
        svdir.kill_on_drop(pid);
        pids.push(pid);
    }
    let stuck_runsv = runsv_child(svdir.pid(), "stuck").expect("runsv stuck");
    kill(Pid::from_raw(stuck_runsv as i32), Signal::SIGSTOP).unwrap();
    let state = stuck.join("supervise/state");
    fs::remove_file(&state).unwrap();
    nix::unistd::mkfifo(&state, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let runsvs: Vec<u32> = ["h1", "h2", "stuck", "blocked"]
        .iter()
        .filter_map(|name| runsv_child(svdir.pid(), name))
        .collect();
    assert_eq!(runsvs.len(), 4, "{}", tree.log());

    let began = Instant::now();
    kill(svdir.pid(), Signal::SIGTERM).unwrap();
    let status = svdir.wait_exit(deadline + Duration::from_secs(3));
    let took = began.elapsed();
    // Whatever happened, the stuck runsv must not outlive the test stopped.
    let _ = kill(Pid::from_raw(stuck_runsv as i32), Signal::SIGKILL);
    let status = status.unwrap_or_else(|| {
        panic!(
            "svdir still stopping after {took:?} (deadline {deadline:?}):\n{}",
            tree.log()
        )
    });
    assert_eq!(status.code(), Some(1), "{}", tree.log());
    let log = tree.log();
    assert!(
        log.contains("svdir: stuck: killed at the stop deadline"),
        "{log}"
    );
    for pid in pids.iter().chain(&runsvs) {
        assert!(!alive(*pid), "process {pid} outlived the stop:\n{log}");
    }
    eprintln!("stop took {took:?} (deadline {deadline:?})");
}

/// Runs `command` to completion within `timeout`; (exit code, stdout bytes).
fn output(command: &mut Command, timeout: Duration) -> (i32, Vec<u8>) {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut guard = Guard::spawn(command);
    let status = guard
        .wait_exit(timeout)
        .unwrap_or_else(|| panic!("{command:?} did not finish within {timeout:?}"));
    let mut stdout = Vec::new();
    use std::io::Read;
    guard
        .child
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut stdout)
        .unwrap();
    (status.code().unwrap_or(-1), stdout)
}

/// A service directory name that is not UTF-8 works end to end, as under runit: svdir
/// starts its runsv, runsv runs it (runit form and YAML), `sv status` and `sv down`
/// print the name's bytes as runit's sv does, and the stop is clean. Today runsv
/// refuses the definition ("the directory's name is not valid UTF-8") and sv prints
/// U+FFFD.
#[test]
fn a_name_that_is_not_utf8_works_end_to_end() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let tree = Tree::new();
    let runit_name = OsStr::from_bytes(b"caf\xe9");
    let yaml_name = OsStr::from_bytes(b"y\xff\xfe");
    let runit_dir = tree.scan().join(runit_name);
    write_script(&runit_dir.join("run"), "#!/bin/sh\nexec sleep 1000\n");
    let yaml_dir = tree.scan().join(yaml_name);
    fs::create_dir_all(&yaml_dir).unwrap();
    fs::write(
        yaml_dir.join("service.yaml"),
        "exec: sleep 1000\nlog: none\n",
    )
    .unwrap();
    let mut svdir = Guard::spawn(&mut tree.svdir_command(&tree.scan(), &[]));
    let mut pids = Vec::new();
    for dir in [&runit_dir, &yaml_dir] {
        let state = runtree::wait_state(dir, WAIT, |s| {
            s.state == runtree::ServiceState::Running && s.pid != 0
        });
        let state = state.unwrap_or_else(|| {
            panic!(
                "{} never running: {:?}\n{}",
                dir.display(),
                runtree::full_state(dir),
                tree.log()
            )
        });
        svdir.kill_on_drop(state.pid);
        pids.push(state.pid);
    }

    let sv = |args: &[&OsStr]| {
        output(
            Command::new(binary("sv"))
                .args(args)
                .env("SVDIR", tree.scan()),
            WAIT,
        )
    };
    let (code, stdout) = sv(&[OsStr::new("status"), runit_name]);
    assert_eq!(code, 0);
    let prefix = [
        b"run: caf\xe9: (pid ".as_slice(),
        pids[0].to_string().as_bytes(),
    ]
    .concat();
    assert!(
        stdout.starts_with(&prefix),
        "{:?}",
        String::from_utf8_lossy(&stdout)
    );
    // Every service of SVDIR, by its entry's name.
    let (code, stdout) = sv(&[OsStr::new("status")]);
    assert_eq!(code, 0);
    let expected = [
        b"run: y\xff\xfe: (pid ".as_slice(),
        pids[1].to_string().as_bytes(),
    ]
    .concat();
    assert!(
        stdout
            .split(|&b| b == b'\n')
            .any(|line| line.starts_with(&expected)),
        "{:?}",
        String::from_utf8_lossy(&stdout)
    );
    let (code, stdout) = sv(&[
        OsStr::new("-w"),
        OsStr::new("5"),
        OsStr::new("down"),
        runit_name,
    ]);
    assert_eq!(code, 0, "{:?}", String::from_utf8_lossy(&stdout));
    assert!(
        stdout.starts_with(b"ok: down: caf\xe9: "),
        "{:?}",
        String::from_utf8_lossy(&stdout)
    );
    assert!(!alive(pids[0]));

    kill(svdir.pid(), Signal::SIGTERM).unwrap();
    let status = svdir.wait_exit(WAIT).expect("svdir stopped");
    assert_eq!(status.code(), Some(0), "{}", tree.log());
    assert!(!alive(pids[1]));
}
