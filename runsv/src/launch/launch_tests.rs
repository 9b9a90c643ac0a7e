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
