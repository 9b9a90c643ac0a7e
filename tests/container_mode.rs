//! What a runsv does differently under a container's init, which passes
//! `RUNTREE_MODE=container` and `RUNTREE_STOP_TIMEOUT` down the tree
//! (runsv/src/tree_env.rs): lines meant for kmsg go to the container's log (the host's
//! kernel log is writable under `--privileged`), and a service's stop timeout defaults
//! to what the environment says.

use runsv::control::{send_control, Control};
use runsv::supervise::SuperviseDir;
use runtree::service::{kmsg_file, wait_text};
use runtree::yaml_service;
use runtree::{binary, wait_running, wait_state, Guard, ServiceState, WAIT};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// runsv on `service` with `env` and neither tree setting inherited, its stderr to
/// `stderr` beside the service; once the service runs.
fn runsv(service: &Path, env: &[(&str, &std::ffi::OsStr)]) -> (Guard, PathBuf) {
    let stderr = service.with_file_name("stderr");
    let mut command = Command::new(binary("runsv"));
    command
        .arg(service)
        .env_remove("RUNTREE_MODE")
        .env_remove("RUNTREE_STOP_TIMEOUT")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&stderr).unwrap());
    let mut guard = Guard::spawn(&mut command);
    let pid = wait_running(service, WAIT);
    guard.also_kill(pid);
    (guard, stderr)
}

#[test]
fn in_a_container_kmsg_lines_go_to_the_log_even_where_kmsg_is_writable() {
    let root = tempfile::tempdir().unwrap();
    // A writable stand-in for /dev/kmsg, as --privileged makes the host's.
    let kmsg = kmsg_file(root.path());
    let service = yaml_service(
        root.path(),
        "chatty",
        "exec: sh -c 'echo hello from chatty; exec sleep 100000'\n",
    );
    let env = [
        ("RUNTREE_MODE", "container".as_ref()),
        ("RUNTREE_KMSG", kmsg.as_os_str()),
    ];
    let (_runsv, stderr) = runsv(&service, &env);
    // The line reaches the log.
    wait_text(root.path(), &stderr, |text| {
        text.contains("chatty: hello from chatty\n")
    });
    assert_eq!(
        fs::read_to_string(&kmsg).unwrap(),
        "",
        "a line went to kmsg"
    );
}

#[test]
fn the_default_stop_timeout_comes_from_the_environment() {
    let root = tempfile::tempdir().unwrap();
    let service = yaml_service(
        root.path(),
        "stubborn",
        "exec: sh -c 'trap \"\" TERM; while :; do sleep 1; done'\nlog: none\n",
    );
    let _runsv = runsv(&service, &[("RUNTREE_STOP_TIMEOUT", "300ms".as_ref())]);
    let asked = Instant::now();
    send_control(&SuperviseDir::of_service(&service), &[Control::Down]).unwrap();
    // With the 10 s default this would still be stopping when the wait ends.
    let down = wait_state(&service, Duration::from_secs(5), |s| {
        s.state == ServiceState::Down
    });
    let took = asked.elapsed();
    assert!(
        down.is_some(),
        "not killed within 5 s: the timeout was not taken"
    );
    assert!(took >= Duration::from_millis(300), "{took:?}");
}
