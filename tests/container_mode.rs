//! What a runsv does differently under a container's init, which passes
//! `RUNTREE_MODE=container` and `RUNTREE_STOP_TIMEOUT` down the tree
//! (runsv/src/tree_env.rs): lines meant for kmsg go to the container's log (the host's
//! kernel log is writable under `--privileged`), and a service's stop timeout defaults
//! to what the environment says.

use runsv::control::{send_control, Control};
use runsv::supervise::SuperviseDir;
use runtree::{binary, wait_for, wait_running, wait_state, Guard, ServiceState};
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(10);

fn runsv(service: &Path, env: &[(&str, &std::ffi::OsStr)], stderr: &Path) -> Guard {
    let mut command = Command::new(binary("runsv"));
    command
        .arg(service)
        .env_remove("RUNTREE_MODE")
        .env_remove("RUNTREE_STOP_TIMEOUT")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(stderr).unwrap());
    for (key, value) in env {
        command.env(key, value);
    }
    Guard::spawn(&mut command)
}

#[test]
fn in_a_container_kmsg_lines_go_to_the_log_even_where_kmsg_is_writable() {
    let root = tempfile::tempdir().unwrap();
    // A writable stand-in for /dev/kmsg, as --privileged makes the host's.
    let kmsg = root.path().join("kmsg");
    fs::write(&kmsg, "").unwrap();
    let stderr = root.path().join("stderr");
    let service = root.path().join("chatty");
    fs::create_dir_all(&service).unwrap();
    fs::write(
        service.join("service.yaml"),
        "exec: sh -c 'echo hello from chatty; exec sleep 100000'\n",
    )
    .unwrap();
    let mut guard = runsv(
        &service,
        &[
            ("RUNTREE_MODE", "container".as_ref()),
            ("RUNTREE_KMSG", kmsg.as_os_str()),
        ],
        &stderr,
    );
    let pid = wait_running(&service, WAIT);
    guard.kill_on_drop(pid);
    assert!(
        wait_for(&[root.path()], WAIT, || fs::read_to_string(&stderr)
            .is_ok_and(|t| t.contains("chatty: hello from chatty\n"))),
        "the line never reached the log: {:?}",
        fs::read_to_string(&stderr)
    );
    assert_eq!(
        fs::read_to_string(&kmsg).unwrap(),
        "",
        "a line went to kmsg"
    );
}

#[test]
fn the_default_stop_timeout_comes_from_the_environment() {
    let root = tempfile::tempdir().unwrap();
    let stderr = root.path().join("stderr");
    let service = root.path().join("stubborn");
    fs::create_dir_all(&service).unwrap();
    fs::write(
        service.join("service.yaml"),
        "exec: sh -c 'trap \"\" TERM; while :; do sleep 1; done'\nlog: none\n",
    )
    .unwrap();
    let mut guard = runsv(
        &service,
        &[("RUNTREE_STOP_TIMEOUT", "300ms".as_ref())],
        &stderr,
    );
    let pid = wait_running(&service, WAIT);
    guard.kill_on_drop(pid);
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
