//! Launching for real: the gate, errors before fork, exec and set-up failures named
//! with their errno, and what the started process gets.

use super::*;

#[test]
fn a_child_never_execs_without_the_go_byte() {
    let dir = tempfile::tempdir().unwrap();
    let command = ["sh".into(), "-c".into(), "touch ran".into()];
    let launch = Launch::new(&command, None, dir.path()).unwrap();
    let started = launch.start().unwrap();
    let pid = started.pid();
    // As when runsv is killed before it has published the pid: end of file.
    drop(started);
    let status = nix::sys::wait::waitpid(pid, None).unwrap();
    assert_eq!(status, nix::sys::wait::WaitStatus::Exited(pid, 111));
    assert!(!dir.path().join("ran").exists());
}

/// Where launching `program` in `directory` failed — before the fork (`new`) or in
/// the child (`spawn`) — and the message.
fn failure(
    program: &str,
    environment: Option<&[(String, String)]>,
    directory: &Path,
) -> (&'static str, String) {
    match Launch::new(&[program.into()], environment, directory) {
        Err(error) => ("new", error),
        Ok(launch) => ("spawn", launch.spawn().expect_err("the launch fails")),
    }
}

#[test]
fn a_missing_program_fails_before_fork() {
    assert_eq!(
        failure("no-such-program-xyz", Some(&[]), Path::new("/")),
        (
            "new",
            "unable to start no-such-program-xyz: No such file or directory (ENOENT)".into()
        )
    );
}

#[test]
fn exec_failure_reports_errno() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("not-executable"), "#!/bin/sh\n").unwrap();
    assert_eq!(
        failure("./not-executable", None, dir.path()),
        (
            "spawn",
            "unable to start ./not-executable: Permission denied (EACCES)".into()
        )
    );
}

#[test]
fn a_failed_set_up_step_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("gone");
    assert_eq!(
        failure("/bin/true", None, &missing),
        (
            "spawn",
            format!(
                "unable to start /bin/true: chdir to {}: No such file or directory (ENOENT)",
                missing.display()
            )
        )
    );
}

#[test]
fn a_spawned_process_runs_in_its_own_session_with_its_environment() {
    let dir = tempfile::tempdir().unwrap();
    let launch = Launch::new(
        &[
            "sh".into(),
            "-c".into(),
            "echo $FOO $$ $(cut -d' ' -f6 /proc/$$/stat) > out".into(),
        ],
        Some(&[("FOO".into(), "bar".into())]),
        dir.path(),
    )
    .unwrap();
    let pid = launch.spawn().unwrap();
    nix::sys::wait::waitpid(pid, None).unwrap();
    let out = std::fs::read_to_string(dir.path().join("out")).unwrap();
    let words: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(words[0], "bar");
    assert_eq!(words[1], words[2], "session leader: sid = pid");
}

#[test]
fn a_started_process_is_our_child_in_a_session_it_does_not_lead() {
    let dir = tempfile::tempdir().unwrap();
    let launch = Launch::new(
        &[
            "sh".into(),
            "-c".into(),
            "echo $$ $(cut -d' ' -f5,6 /proc/$$/stat) > out".into(),
        ],
        None,
        dir.path(),
    )
    .unwrap();
    let started = launch.start().unwrap();
    let pid = started.pid();
    started.confirm().unwrap();
    // Our child (CLONE_PARENT), so ours to reap.
    let status = nix::sys::wait::waitpid(pid, None).unwrap();
    assert_eq!(status, nix::sys::wait::WaitStatus::Exited(pid, 0));
    let out = std::fs::read_to_string(dir.path().join("out")).unwrap();
    let words: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(words[0], pid.to_string());
    assert_ne!(words[1], words[0], "no group leader");
    assert_eq!(words[1], words[2], "its group is its session's");
    let own_session = nix::unistd::getsid(None).unwrap().to_string();
    assert_ne!(words[2], own_session);
}

#[test]
fn a_limit_that_cannot_be_set_is_named_and_nothing_runs() {
    use crate::definition::controls::{Limit, Resource};
    let dir = tempfile::tempdir().unwrap();
    // Above fs.nr_open (1048576 by default): refused even to root.
    let controls = ProcessControls {
        limits: vec![(Resource::Nofile, Limit::At(1 << 40))],
        ..ProcessControls::default()
    };
    let launch = Launch::new(&["/bin/true".into()], None, dir.path())
        .unwrap()
        .controls(&controls);
    assert_eq!(
        launch.spawn().expect_err("the limit is refused"),
        "unable to start /bin/true: setting limit_nofile: Operation not permitted (EPERM)"
    );
}

/// A started service is in its cgroup before it runs a line of its own: born there
/// by clone3 (so already while it waits at its gate), or, where clone3 refuses (here a
/// directory that is no cgroup), by its own write of cgroup.procs before it execs.
/// Needs root and a writable cgroup v2 hierarchy.
#[test]
fn a_started_process_is_born_in_its_cgroup_or_joins_it() {
    use std::os::fd::AsRawFd;
    let mount = ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
        .into_iter()
        .map(Path::new)
        .find(|mount| crate::cgroup::on_cgroup2(mount));
    let (Some(mount), true) = (mount, nix::unistd::geteuid().is_root()) else {
        eprintln!("skipped: needs root and a cgroup v2 hierarchy");
        return;
    };
    let name = format!("runsv-launch-test-{}", std::process::id());
    let group = mount.join(&name);
    if let Err(error) = std::fs::create_dir(&group) {
        eprintln!("skipped: {}: {error}", group.display());
        return;
    }
    // Removed however the test ends (every process in it has been waited for).
    struct Removed<'a>(&'a Path);
    impl Drop for Removed<'_> {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir(self.0);
        }
    }
    let _removed = Removed(&group);
    let line = format!("0::/{name}");
    let membership = |pid: Pid| {
        std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
            .unwrap()
            .lines()
            .any(|l| l == line)
    };
    let dir = tempfile::tempdir().unwrap();
    let procs = std::fs::OpenOptions::new()
        .write(true)
        .open(group.join("cgroup.procs"))
        .unwrap();
    let group_dir = std::fs::File::open(&group).unwrap();
    let not_a_group = std::fs::File::open(dir.path()).unwrap();
    for (dir_fd, born) in [
        (group_dir.as_raw_fd(), true),
        (not_a_group.as_raw_fd(), false),
    ] {
        let command = ["sh".into(), "-c".into(), "cat /proc/$$/cgroup > out".into()];
        let launch = Launch::new(&command, None, dir.path())
            .unwrap()
            .cgroup(Some(Placement {
                procs: procs.as_raw_fd(),
                dir: dir_fd,
            }));
        let started = launch.start().unwrap();
        let pid = started.pid();
        let at_gate = membership(pid);
        started.confirm().unwrap();
        let status = nix::sys::wait::waitpid(pid, None).unwrap();
        assert_eq!(status, nix::sys::wait::WaitStatus::Exited(pid, 0));
        assert_eq!(at_gate, born, "in the group at the gate: {born}");
        let out = std::fs::read_to_string(dir.path().join("out")).unwrap();
        assert!(out.lines().any(|l| l == line), "ran outside {name}: {out}");
    }
}
