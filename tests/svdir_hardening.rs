//! svdir under attack: restarted while its children are still being forked, stopped
//! while one runsv never answers, and fed names that are not UTF-8. Real binaries on
//! temp dirs; every wait is bounded and event-driven; every process started is owned by
//! a Guard (its own process group, killed on drop) and every service seen is added to
//! its extra groups.

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use runsv::control::make_fifo;
use runtree::service::{runit_service, signal, SLEEP};
use runtree::svdir_tree::{runsv_children, Tree};
use runtree::WAIT;
use runtree::{alive, binary, run_bytes, wait_for, yaml_service, Guard};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
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
    let scan = tree.scan();
    let healthy = [
        runit_service(&scan, "h1", SLEEP),
        runit_service(&scan, "h2", SLEEP),
    ];
    let stuck = runit_service(&scan, "stuck", SLEEP);
    let blocked = yaml_service(&scan, "blocked", "exec: sleep 1000\nlog: none\n");
    make_fifo(&blocked.join("finish")).unwrap();
    let deadline = Duration::from_secs(3);
    let mut svdir =
        Guard::spawn(&mut tree.svdir_command(&tree.scan(), &[("RUNTREE_STOP_DEADLINE", "3")]));
    let mut pids = Vec::new();
    for service in healthy.iter().chain([&stuck]) {
        let pid = runtree::wait_running(service, WAIT);
        svdir.also_kill(pid);
        pids.push(pid);
    }
    let stuck_runsv = runsv_children(svdir.pid())
        .get("stuck")
        .copied()
        .expect("runsv stuck");
    signal(stuck_runsv, Signal::SIGSTOP);
    let state = stuck.join("supervise/state");
    fs::remove_file(&state).unwrap();
    make_fifo(&state).unwrap();
    let runsvs: Vec<u32> = ["h1", "h2", "stuck", "blocked"]
        .iter()
        .filter_map(|name| runsv_children(svdir.pid()).get(*name).copied())
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
    tree.assert_logged("svdir: stuck: killed at the stop deadline");
    for pid in pids.iter().chain(&runsvs) {
        assert!(!alive(*pid), "process {pid} outlived the stop:\n{log}");
    }
    eprintln!("stop took {took:?} (deadline {deadline:?})");
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
    let runit_dir = runit_service(&tree.scan(), runit_name, SLEEP);
    let yaml_dir = yaml_service(&tree.scan(), yaml_name, "exec: sleep 1000\nlog: none\n");
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
        svdir.also_kill(state.pid);
        pids.push(state.pid);
    }

    // sv exits 0, and its line of the service starts with `start`, the name's bytes
    // as runit's sv prints them.
    let shows = |args: &[&OsStr], start: &[u8]| {
        let mut command = Command::new(binary("sv"));
        command.args(args).env("SVDIR", tree.scan());
        let (code, stdout, _) = run_bytes(&mut command, WAIT);
        let text = String::from_utf8_lossy(&stdout);
        assert_eq!(code, 0, "{text:?}");
        let mut lines = stdout.split(|&b| b == b'\n');
        // Of one name, the first line; of every service of SVDIR, one of them.
        let shown = match args.last() {
            Some(&name) if name == runit_name => lines.next().is_some_and(|l| l.starts_with(start)),
            _ => lines.any(|line| line.starts_with(start)),
        };
        assert!(shown, "{text:?}");
    };
    let run_line =
        |name: &[u8], pid: u32| [b"run: ", name, b": (pid ", pid.to_string().as_bytes()].concat();
    shows(
        &[OsStr::new("status"), runit_name],
        &run_line(b"caf\xe9", pids[0]),
    );
    shows(&[OsStr::new("status")], &run_line(b"y\xff\xfe", pids[1]));
    let down = ["-w", "5", "down"].map(OsStr::new);
    shows(&[&down[..], &[runit_name]].concat(), b"ok: down: caf\xe9: ");
    assert!(!alive(pids[0]));

    tree.assert_stops(&mut svdir, Signal::SIGTERM, 0);
    assert!(!alive(pids[1]));
}
