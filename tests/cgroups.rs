//! A service is its cgroup, on this machine (cgroup v2 at /sys/fs/cgroup or, on a hybrid
//! host, /sys/fs/cgroup/unified): a daemon that double-forks and leaves its session
//! is stopped with its service by `sv down`, by the removal of its entry and by svdir's
//! shutdown, 20 times over, leaving no process; `sv status` shows the group; a runsv
//! killed and restarted adopts the service, or stops what escaped through the group.
//! With `kill_mode: process` (sshd: its sessions are its children) a stop reaches the
//! main process alone, and the service is down once it has exited.
//!
//! Each test gives its tree a group of its own (RUNTREE_CGROUP=<mount>/runtree-test-…),
//! and removes it at the end; no other cgroup is touched. Skipped, with the reason,
//! where that is impossible (not root, no writable cgroup v2); `RUNTREE_CGROUP_REQUIRED=1`
//! makes a skip a failure. The limits (which need controllers) are tested in the VM:
//! tests/init_vm.rs.

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use runsv::supervise::ServiceState;
use runtree::{binary, control, wait_for, wait_state, write_script, Guard};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

fn skip(reason: &str) {
    runtree::skip("the cgroup tests are", "RUNTREE_CGROUP_REQUIRED", reason);
}

/// A cgroup of the test's own, removed (after killing what is left in it) on drop.
struct TestGroup {
    path: PathBuf,
}

impl TestGroup {
    fn new(tag: &str) -> Option<TestGroup> {
        if !nix::unistd::geteuid().is_root() {
            skip("not root: no cgroup can be created");
            return None;
        }
        match runtree::make_cgroup(&format!("runtree-test-{}-{tag}", std::process::id())) {
            Some(path) => Some(TestGroup { path }),
            None => {
                skip("no writable cgroup v2 hierarchy");
                None
            }
        }
    }

    /// The service groups runsv made (named `….service`).
    fn service_groups(&self) -> Vec<PathBuf> {
        let mut found: Vec<PathBuf> = std::fs::read_dir(&self.path)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.is_dir())
                    .filter(|p| p.to_string_lossy().ends_with(".service"))
                    .collect()
            })
            .unwrap_or_default();
        found.sort();
        found
    }
}

impl Drop for TestGroup {
    fn drop(&mut self) {
        if !runtree::remove_cgroup_tree(&self.path) {
            eprintln!("warning: could not remove {}", self.path.display());
        }
    }
}

/// A service whose run starts a daemon that double-forks and calls setsid (out of the
/// service's process group and session), then execs a process of its own: three
/// processes, each running `<dir>/bin/sleeper`, by which the test finds them.
fn daemon_service(scan: &Path, name: &str, marker: &Path) -> PathBuf {
    daemon_service_with(scan, name, marker, None)
}

/// The same, with a service.yaml (`exec: ./daemon`, the same script) and its other keys.
fn daemon_service_with(scan: &Path, name: &str, marker: &Path, yaml: Option<&str>) -> PathBuf {
    let bin = marker.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let sleeper = bin.join("sleeper");
    if !sleeper.exists() {
        let sleep = ["/bin/sleep", "/usr/bin/sleep"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("sleep");
        std::os::unix::fs::symlink(sleep, &sleeper).unwrap();
    }
    // Made beside the scan directory and moved in whole: svdir starts a runsv the
    // moment the entry appears.
    let staging = marker.join("staging").join(name);
    // With a service.yaml, the script is its `exec` (a `run` beside it would be refused).
    let script = if yaml.is_some() { "daemon" } else { "run" };
    write_script(
        &staging.join(script),
        &format!(
            "#!/bin/sh\n\
             setsid sh -c '\"$0\" 1000 & exec \"$0\" 1001' {s} </dev/null >/dev/null 2>&1 &\n\
             exec {s} 1002\n",
            s = sleeper.display()
        ),
    );
    if let Some(yaml) = yaml {
        std::fs::write(staging.join("service.yaml"), yaml).unwrap();
    }
    std::fs::create_dir_all(scan).unwrap();
    let service = scan.join(name);
    std::fs::rename(&staging, &service).unwrap();
    service
}

/// The pids of the processes running the marker's sleeper.
fn marked(marker: &Path) -> Vec<u32> {
    let prefix = marker.join("bin").join("sleeper");
    let prefix = prefix.to_string_lossy().into_owned();
    runsv::proc::pids()
        .into_iter()
        .filter(|&pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| {
                cmdline
                    .split(|&b| b == 0)
                    .next()
                    .is_some_and(|argv0| argv0 == prefix.as_bytes())
            }) && runsv::proc::stat(pid).is_some_and(|s| !s.zombie())
        })
        .collect()
}

fn wait_marked(marker: &Path, count: usize) -> Vec<u32> {
    let mut seen = Vec::new();
    let held = wait_for(&[], WAIT, || {
        seen = marked(marker);
        seen.len() == count
    });
    assert!(held, "expected {count} daemon processes, found {seen:?}");
    seen
}

fn sv(args: &[&str], service: &Path) -> String {
    let (code, stdout, stderr) =
        runtree::run(Command::new(binary("sv")).args(args).arg(service), WAIT);
    assert!(code == 0, "sv {args:?}: {code}\n{stdout}{stderr}");
    stdout
}

#[test]
fn nothing_a_service_started_survives_down_removal_or_shutdown() {
    let Some(group) = TestGroup::new("svdir") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let scan = dir.path().join("service");
    let daemon = daemon_service(&scan, "daemon", dir.path());
    let mut svdir = Guard::spawn_in_session(
        Command::new(binary("svdir"))
            .arg(&scan)
            .env("RUNTREE_CGROUP", &group.path),
    );
    wait_state(&daemon, WAIT, |s| s.state == ServiceState::Running).expect("daemon running");
    wait_marked(dir.path(), 3);

    // sv status: the group's processes, the mode; --json the same.
    let status = sv(&["status"], &daemon);
    assert!(status.contains("(cgroup: 3 processes"), "{status}");
    let json = sv(&["status", "--json"], &daemon);
    assert!(json.contains("\"tracking\":\"cgroup\""), "{json}");
    assert!(json.contains("\"processes\":3"), "{json}");

    // 20 up/down cycles: down means every process is gone, at once.
    for cycle in 0..20 {
        control(&daemon, "d");
        wait_state(&daemon, WAIT, |s| s.state == ServiceState::Down).expect("down");
        let left = marked(dir.path());
        assert!(left.is_empty(), "cycle {cycle}: left running: {left:?}");
        control(&daemon, "u");
        wait_state(&daemon, WAIT, |s| s.state == ServiceState::Running).expect("up");
        wait_marked(dir.path(), 3);
    }
    assert_eq!(
        group.service_groups().len(),
        1,
        "{:?}",
        group.service_groups()
    );

    // Removal from the scan directory: its runsv stops everything and removes the group.
    std::fs::rename(&daemon, dir.path().join("removed")).unwrap();
    let removed = wait_for(&[], WAIT, || group.service_groups().is_empty());
    assert!(removed, "group left: {:?}", group.service_groups());
    assert_eq!(marked(dir.path()), Vec::<u32>::new());

    // svdir's shutdown.
    let other = daemon_service(&scan, "other", dir.path());
    wait_state(&other, WAIT, |s| s.state == ServiceState::Running).expect("other running");
    wait_marked(dir.path(), 3);
    kill(svdir.pid(), Signal::SIGTERM).unwrap();
    assert!(svdir.wait_exit(WAIT).is_some(), "svdir did not stop");
    assert_eq!(marked(dir.path()), Vec::<u32>::new());
    assert!(
        group.service_groups().is_empty(),
        "{:?}",
        group.service_groups()
    );
}

#[test]
fn a_restarted_runsv_adopts_the_service_or_stops_what_escaped() {
    let Some(group) = TestGroup::new("adopt") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let scan = dir.path().join("service");
    let service = daemon_service(&scan, "daemon", dir.path());
    let start = || {
        let mut command = Command::new(binary("runsv"));
        command.arg(&service).env("RUNTREE_CGROUP", &group.path);
        runtree::supervised(&mut command, &service)
    };

    // Killed while the service runs: the next runsv adopts it (same pid), and its stop
    // still reaches the daemon, found through the group.
    let first = start();
    let pid = runtree::wait_running(&service, WAIT);
    wait_marked(dir.path(), 3);
    kill(first.pid(), Signal::SIGKILL).unwrap();
    drop(first);
    let second = start();
    assert_eq!(runtree::wait_running(&service, WAIT), pid, "adopted");
    control(&service, "d");
    wait_state(&service, WAIT, |s| s.state == ServiceState::Down).expect("down");
    assert_eq!(marked(dir.path()), Vec::<u32>::new());

    // Killed, and then its run dies too: only the escaped daemon is left, which no
    // pid or process group names. The next runsv finds it in the group and stops it
    // before it starts the service again.
    control(&service, "u");
    let pid = runtree::wait_running(&service, WAIT);
    let old = wait_marked(dir.path(), 3);
    kill(second.pid(), Signal::SIGKILL).unwrap();
    drop(second);
    kill(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
    let escaped: Vec<u32> = old.iter().copied().filter(|&p| p != pid).collect();
    wait_marked(dir.path(), 2);
    let third = start();
    // (The killed run may still be a zombie, not yet reaped by whoever inherited it:
    // the new runsv may take it over for a moment, until its pidfd says it ended.)
    let new = wait_state(&service, WAIT, |s| {
        s.state == ServiceState::Running && s.pid != pid
    })
    .expect("running again, in a new process")
    .pid;
    assert!(runtree::alive(new));
    let now = wait_marked(dir.path(), 3);
    for pid in escaped {
        assert!(!now.contains(&pid), "escaped {pid} still running: {now:?}");
    }
    control(&service, "x");
    let mut third = third;
    assert!(third.wait_exit(WAIT).is_some(), "runsv did not exit");
    assert_eq!(marked(dir.path()), Vec::<u32>::new());
    assert!(
        group.service_groups().is_empty(),
        "{:?}",
        group.service_groups()
    );
}

#[test]
fn kill_mode_process_stops_the_main_process_alone() {
    let Some(group) = TestGroup::new("killmode") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let scan = dir.path().join("service");
    let service = daemon_service_with(
        &scan,
        "sshd",
        dir.path(),
        Some("exec: ./daemon\nkill_mode: process\nlog: none\n"),
    );
    let mut command = Command::new(binary("runsv"));
    command.arg(&service).env("RUNTREE_CGROUP", &group.path);
    let mut runsv = runtree::supervised(&mut command, &service);
    let main = runtree::wait_running(&service, WAIT);
    let started = wait_marked(dir.path(), 3);

    // Down as soon as the main process has exited; the "sessions" it started stay, in
    // the service's group.
    control(&service, "d");
    wait_state(&service, WAIT, |s| s.state == ServiceState::Down).expect("down");
    let sessions: Vec<u32> = started.iter().copied().filter(|&p| p != main).collect();
    assert_eq!(wait_marked(dir.path(), 2), sessions);
    let status = sv(&["status"], &service);
    assert!(status.contains("(cgroup: 2 processes"), "{status}");

    // Up again beside them: the new run does not stop them.
    control(&service, "u");
    let again = wait_state(&service, WAIT, |s| {
        s.state == ServiceState::Running && s.pid != main
    })
    .expect("running again")
    .pid;
    let now = wait_marked(dir.path(), 5);
    assert!(sessions.iter().all(|p| now.contains(p)), "{now:?}");
    assert!(now.contains(&again));
    control(&service, "x");
    assert!(runsv.wait_exit(WAIT).is_some(), "runsv did not exit");
    // What is left is killed with the test's group (TestGroup's drop).
}

/// `sv status` of many services reads their groups on a second thread (runsv's
/// UsageReads, from 16 services, 32 groups a batch, the last batch in line): each line
/// still shows its own service's group, in the order asked, as a status of that service
/// alone does (which reads in line); `--json` the same. 40 services: one batch through
/// the thread, the rest in line.
#[test]
fn a_status_of_many_services_shows_each_ones_group() {
    let Some(group) = TestGroup::new("many") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let scan = dir.path().join("service");
    let staging = dir.path().join("staging");
    // Service i runs i % 3 + 1 processes: neighbours differ, so a line given another's
    // count shows.
    let count = |i: usize| i % 3 + 1;
    let services: Vec<PathBuf> = (0..40)
        .map(|i| {
            let name = format!("s{i:02}");
            write_script(
                &staging.join(&name).join("run"),
                &format!(
                    "#!/bin/sh\ni=1\nwhile [ $i -lt {} ]; do sleep 1000 & i=$((i+1)); done\nexec sleep 1000\n",
                    count(i)
                ),
            );
            scan.join(name)
        })
        .collect();
    std::fs::create_dir_all(&scan).unwrap();
    for service in &services {
        let name = service.file_name().unwrap();
        std::fs::rename(staging.join(name), service).unwrap();
    }
    let _svdir = Guard::spawn_in_session(
        Command::new(binary("svdir"))
            .arg(&scan)
            .env("RUNTREE_CGROUP", &group.path),
    );
    // Every group holds its processes (read by the library in line, not through sv).
    let settled = wait_for(&[], WAIT, || {
        services.iter().enumerate().all(|(i, service)| {
            std::fs::read(service.join("supervise/state"))
                .ok()
                .and_then(|state| runsv::cgroup::group_in_state(&state))
                .is_some_and(|g| runsv::cgroup::usage(&g).processes == Some(count(i) as u64))
        }) && services.iter().all(|s| runtree::supervisor_up(s))
    });
    assert!(settled, "the services' groups did not fill");

    let args: Vec<&Path> = services.iter().map(PathBuf::as_path).collect();
    let (code, all, stderr) =
        runtree::run(Command::new(binary("sv")).arg("status").args(&args), WAIT);
    assert_eq!(code, 0, "{all}{stderr}");
    let lines: Vec<&str> = all.lines().collect();
    assert_eq!(lines.len(), services.len(), "{all}");
    for (i, (line, service)) in lines.iter().zip(&services).enumerate() {
        let noun = if count(i) == 1 {
            "process"
        } else {
            "processes"
        };
        assert!(
            line.starts_with(&format!("run: {}:", service.display()))
                && line.ends_with(&format!("(cgroup: {} {noun})", count(i))),
            "line {i}: {line}\n{all}"
        );
        let alone = sv(&["status"], service);
        assert_eq!(
            runtree::mask_status(line, false),
            runtree::mask_status(alone.trim_end(), false),
            "service {i}"
        );
    }
    // --json reads the same way: each object's processes are its own service's.
    let (code, json, stderr) = runtree::run(
        Command::new(binary("sv"))
            .args(["status", "--json"])
            .args(&args),
        WAIT,
    );
    assert_eq!(code, 0, "{json}{stderr}");
    let objects: Vec<(String, String)> = json
        .split("{\"name\":")
        .skip(1)
        .map(|object| {
            let name = object.split(',').next().unwrap_or_default().to_string();
            let processes = object
                .split("\"processes\":")
                .nth(1)
                .and_then(|rest| rest.split(',').next())
                .unwrap_or_default()
                .to_string();
            (name, processes)
        })
        .collect();
    let expected: Vec<(String, String)> = services
        .iter()
        .enumerate()
        .map(|(i, s)| (format!("\"{}\"", s.display()), count(i).to_string()))
        .collect();
    assert_eq!(objects, expected, "{json}");
}
