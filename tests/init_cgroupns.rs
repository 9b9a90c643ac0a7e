//! init as a container's PID 1 over a delegated cgroup v2 group (docs/cgroups.md, "In a
//! container"): the test makes a group under this machine's cgroup2 mount, and init
//! runs in a fresh PID + mount + cgroup namespace rooted at it, with cgroup2 mounted at
//! /sys/fs/cgroup (src/ns.rs's `start_in_cgroup`), as podman or docker with
//! cgroupns=private give it. There init leaves the namespace's root group for `/init`,
//! and the real svdir puts the tree beside it: svdir and the runsvs in
//! `/runtree/supervisors`, a service in `/runtree/<name>.service`, `/` empty, also after
//! init restarted svdir; a stop and a removal still leave the service's group empty.
//! With `RUNTREE_CGROUP=off` init stays where it is.
//!
//! This host's v2 hierarchy (/sys/fs/cgroup/unified, beside v1 controllers) offers no
//! controller to enable, so the limits themselves are tested in the VM
//! (tests/init_vm.rs). Needs root, unshare with --cgroup and a writable cgroup v2
//! hierarchy; skipped with the reason otherwise (`RUNTREE_CGROUP_REQUIRED=1` makes a
//! skip a failure). Every group the test made is removed at the end.

use nix::sys::signal::{kill, Signal};
use runsv::supervise::ServiceState;
use runtree::ns::{children, root, Ns, Proc, Setup};
use runtree::{binary, control, wait_for, wait_state, write_script};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

fn skip(reason: &str) {
    runtree::skip("the cgroup tests are", "RUNTREE_CGROUP_REQUIRED", reason);
}

/// The group the test delegates to its container, removed with everything in it (its
/// processes killed first) on drop.
struct Delegated {
    path: PathBuf,
}

impl Delegated {
    fn new(tag: &str) -> Option<Delegated> {
        if !root() {
            return None;
        }
        let help = Command::new("unshare")
            .arg("--help")
            .stderr(Stdio::null())
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        if !help.contains("--cgroup") {
            skip("this unshare cannot make a cgroup namespace (--cgroup)");
            return None;
        }
        match runtree::make_cgroup(&format!("runtree-test-{}-{tag}", std::process::id())) {
            Some(path) => Some(Delegated { path }),
            None => {
                skip("no writable cgroup v2 hierarchy");
                None
            }
        }
    }

    /// The pids in the group at `relative` (as the container names it, from `/`).
    fn procs(&self, relative: &str) -> Vec<u32> {
        let file = self
            .path
            .join(relative.trim_start_matches('/'))
            .join("cgroup.procs");
        let mut pids: Vec<u32> = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
            .lines()
            .filter_map(|l| l.parse().ok())
            .collect();
        pids.sort_unstable();
        pids
    }

    fn has(&self, relative: &str) -> bool {
        self.path.join(relative.trim_start_matches('/')).is_dir()
    }
}

impl Drop for Delegated {
    fn drop(&mut self) {
        if !runtree::remove_cgroup_tree(&self.path) {
            eprintln!("warning: could not remove {}", self.path.display());
        }
    }
}

/// A runit-style service whose run starts a daemon that double-forks and calls setsid,
/// then execs a process of its own: three processes running `<dir>/bin/sleeper`.
fn daemon_service(scan: &Path, dir: &Path, name: &str) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let sleeper = bin.join("sleeper");
    if !sleeper.exists() {
        let sleep = ["/bin/sleep", "/usr/bin/sleep"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("sleep");
        std::os::unix::fs::symlink(sleep, &sleeper).unwrap();
    }
    let service = scan.join(name);
    write_script(
        &service.join("run"),
        &format!(
            "#!/bin/sh\n\
             setsid sh -c '\"$0\" 1000 & exec \"$0\" 1001' {s} </dev/null >/dev/null 2>&1 &\n\
             exec {s} 1002\n",
            s = sleeper.display()
        ),
    );
    service
}

/// The pids (as this test sees them) of the processes running the sleeper of `dir`.
fn marked(dir: &Path) -> Vec<u32> {
    let sleeper = dir.join("bin").join("sleeper");
    let sleeper = sleeper.to_string_lossy().into_owned();
    let mut pids: Vec<u32> = runsv::proc::pids()
        .into_iter()
        .filter(|&pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|cmdline| cmdline.split(|&b| b == 0).next() == Some(sleeper.as_bytes()))
                && runsv::proc::stat(pid).is_some_and(|s| !s.zombie())
        })
        .collect();
    pids.sort_unstable();
    pids
}

fn wait_marked(dir: &Path, count: usize) -> Vec<u32> {
    let mut seen = Vec::new();
    let held = wait_for(&[], WAIT, || {
        seen = marked(dir);
        seen.len() == count
    });
    assert!(held, "expected {count} daemon processes, found {seen:?}");
    seen
}

fn named(parent: nix::unistd::Pid, comm: &str) -> Vec<Proc> {
    children(parent)
        .into_iter()
        .filter(|p| p.comm == comm)
        .collect()
}

fn raw(proc: &Proc) -> u32 {
    proc.pid.as_raw() as u32
}

/// Asserts where the tree's processes are: init alone in `/init`, svdir and the runsvs
/// in `/runtree/supervisors`, nothing in `/`, no tree inside init's leaf. svdir's pid.
fn assert_layout(group: &Delegated, ns: &Ns) -> nix::unistd::Pid {
    let init = ns.init_pid();
    let report = || ns.report();
    assert_eq!(group.procs("/"), Vec::<u32>::new(), "{}", report());
    assert_eq!(
        group.procs("/init"),
        vec![init.as_raw() as u32],
        "{}",
        report()
    );
    assert!(!group.has("/init/runtree"), "{}", report());
    let svdir = named(init, "svdir");
    assert_eq!(svdir.len(), 1, "{svdir:?}\n{}", report());
    let supervisors = group.procs("/runtree/supervisors");
    // A runsv whose svdir was killed is init's child, adopted by the next svdir.
    let mut runsvs = named(svdir[0].pid, "runsv");
    runsvs.extend(named(init, "runsv"));
    assert!(!runsvs.is_empty(), "{}", report());
    for process in svdir.iter().chain(&runsvs) {
        assert!(
            supervisors.contains(&raw(process)),
            "{process:?} not in /runtree/supervisors ({supervisors:?})\n{}",
            report()
        );
    }
    svdir[0].pid
}

#[test]
fn init_moves_to_a_leaf_and_the_tree_goes_beside_it() {
    let Some(group) = Delegated::new("tree") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let scan = dir.path().join("service");
    std::fs::create_dir(&scan).unwrap();
    let service = daemon_service(&scan, dir.path(), "daemon");
    let mut ns = Ns::start_in_cgroup(
        Setup {
            svdir: Some(&binary("svdir")),
            scandir: Some(&scan),
            env: &[("RUNTREE_CGROUP", "auto")],
        },
        &group.path,
    );
    runtree::wait_running(&service, WAIT);
    let daemon = wait_marked(dir.path(), 3);
    ns.assert_logged("in container mode");
    ns.assert_logged("init: moved to the cgroup /sys/fs/cgroup/init: ");

    // The service is in its group under /runtree, and its runsv says so (the path as
    // the container sees it).
    let name = runsv::cgroup::group_name(&service);
    let relative = format!("/runtree/{name}");
    assert_eq!(group.procs(&relative), daemon, "{}", ns.report());
    let state = std::fs::read(runsv::state_dir::locate(&service).join("state")).unwrap();
    assert_eq!(
        runsv::cgroup::group_in_state(&state),
        Some(PathBuf::from(format!("/sys/fs/cgroup{relative}")))
    );
    let svdir = assert_layout(&group, &ns);

    // svdir killed: init starts it again in its own leaf, and the new one finds the
    // same tree (beside the leaf, not in it).
    kill(svdir, Signal::SIGKILL).unwrap();
    let init = ns.init_pid();
    let restarted = wait_for(&[], WAIT, || {
        named(init, "svdir").iter().any(|p| p.pid != svdir)
            && !group
                .procs("/runtree/supervisors")
                .contains(&(svdir.as_raw() as u32))
    });
    assert!(restarted, "svdir not restarted\n{}", ns.report());
    // The new svdir has joined the supervisors once it has started a runsv there.
    let joined = wait_for(&[], WAIT, || {
        named(init, "svdir")
            .first()
            .is_some_and(|s| group.procs("/runtree/supervisors").contains(&raw(s)))
    });
    assert!(
        joined,
        "new svdir not in /runtree/supervisors\n{}",
        ns.report()
    );
    assert_layout(&group, &ns);
    assert_eq!(group.procs(&relative), daemon, "{}", ns.report());

    // Down: nothing of the service is left, its group is empty.
    control(&service, "d");
    wait_state(&service, WAIT, |s| s.state == ServiceState::Down).expect("down");
    assert_eq!(marked(dir.path()), Vec::<u32>::new());
    assert_eq!(group.procs(&relative), Vec::<u32>::new());

    // Up, then removed from the scan directory: its runsv stops it and removes the group.
    control(&service, "u");
    runtree::wait_running(&service, WAIT);
    wait_marked(dir.path(), 3);
    std::fs::rename(&service, dir.path().join("removed")).unwrap();
    let removed = wait_for(&[], WAIT, || !group.has(&relative));
    assert!(removed, "{relative} left\n{}", ns.report());
    assert_eq!(marked(dir.path()), Vec::<u32>::new());
    assert_eq!(group.procs("/"), Vec::<u32>::new());

    ns.assert_stops(Signal::SIGTERM, 0);
    assert!(!ns.log().contains("warning"), "{}", ns.report());
}

#[test]
fn with_cgroups_off_init_stays_in_its_group() {
    let Some(group) = Delegated::new("off") else {
        return;
    };
    // The stand-in svdir (src/ns.rs): only init's own move is in question.
    let mut ns = Ns::start_in_cgroup(
        Setup {
            svdir: None,
            scandir: None,
            env: &[("RUNTREE_CGROUP", "off")],
        },
        &group.path,
    );
    ns.wait_lines("ready", 1, WAIT);
    let init = ns.init_pid().as_raw() as u32;
    assert!(group.procs("/").contains(&init), "{}", ns.report());
    assert!(!group.has("/init"), "{}", ns.report());
    assert!(!ns.log().contains("cgroup"), "{}", ns.report());
    ns.assert_stops(Signal::SIGTERM, 0);
}
