//! Service directories for the end-to-end tests: writing one, starting and stopping
//! its runsv, waiting for its states, signalling its processes, and reading what it
//! wrote. Every test that drives a service goes through these, so that a test says
//! what it checks rather than how to get there.

use crate::{binary, full_state, runsv, supervised, wait_for, wait_state, write_script, Guard};
use crate::{FullState, ServiceState, Status, WAIT};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A `run` that runs until it is stopped.
pub const SLEEP: &str = "#!/bin/sh\nexec sleep 1000\n";

/// A runit-form service `name` in `root`, defined by `run`.
pub fn runit_service(root: &Path, name: impl AsRef<Path>, run: &str) -> PathBuf {
    let dir = root.join(name);
    write_script(&dir.join("run"), run);
    dir
}

/// A file's text, or "" when it cannot be read (yet).
pub fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

/// Waits until the service is in `state`; that state. Panics with the last state seen
/// if it is not within [`WAIT`].
pub fn wait_in(service: &Path, state: ServiceState) -> FullState {
    wait_state(service, WAIT, |s| s.state == state).unwrap_or_else(|| {
        panic!(
            "{} never {state}: {:?}",
            service.display(),
            full_state(service)
        )
    })
}

/// Waits until the service's runit status satisfies `condition`; that status.
pub fn wait_status(service: &Path, condition: impl Fn(&Status) -> bool) -> Status {
    let mut last = None;
    let held = wait_for(&[&service.join("supervise")], WAIT, || {
        last = crate::status(service);
        last.as_ref().is_some_and(&condition)
    });
    match last {
        Some(status) if held => status,
        _ => panic!("{}: status never as awaited: {last:?}", service.display()),
    }
}

/// Waits until the service runs again, as a process other than `old`.
pub fn wait_restarted(service: &Path, old: u32) -> FullState {
    wait_state(service, WAIT, |s| {
        s.state == ServiceState::Running && s.pid != old && s.pid != 0
    })
    .unwrap_or_else(|| {
        panic!(
            "{} never ran again after {old}: {:?}",
            service.display(),
            full_state(service)
        )
    })
}

/// Waits until the text of `file` (in `dir`, which is watched) satisfies `condition`;
/// panics with the text otherwise.
pub fn wait_text(dir: &Path, file: &Path, condition: impl Fn(&str) -> bool) {
    assert!(
        wait_for(&[dir], WAIT, || condition(&read(file))),
        "{}: {:?}",
        file.display(),
        read(file)
    );
}

/// Waits until process `pid` is gone (or a zombie).
pub fn wait_gone(pid: u32) -> bool {
    wait_for(&[], WAIT, || !crate::alive(pid))
}

/// Sends `signal` to process `pid`, which must exist.
pub fn signal(pid: u32, signal: Signal) {
    kill(Pid::from_raw(pid as i32), signal)
        .unwrap_or_else(|e| panic!("kill {pid} with {signal}: {e}"));
}

/// An empty file in `root` to stand in for /dev/kmsg.
pub fn kmsg_file(root: &Path) -> PathBuf {
    let kmsg = root.join("kmsg");
    fs::write(&kmsg, "").expect("write the kmsg stand-in");
    kmsg
}

/// The YAML service `name` in `root` whose `exec` is `script`, a file of its own
/// (`./script`); `yaml` holds its other keys.
pub fn script_service(root: &Path, name: &str, yaml: &str, script: &str) -> PathBuf {
    let service = crate::yaml_service(root, name, &format!("exec: ./script\n{yaml}"));
    write_script(&service.join("script"), script);
    service
}

/// The YAML service `name` in `root` running `script` (see [`script_service`]), its
/// output relayed to a stand-in for /dev/kmsg: (the service, the stand-in).
pub fn relayed_service(root: &Path, name: &str, script: &str) -> (PathBuf, PathBuf) {
    (script_service(root, name, "", script), kmsg_file(root))
}

/// runsv with a stand-in for /dev/kmsg (the relay's records go to that file).
pub fn runsv_kmsg(service: &Path, kmsg: &Path) -> Guard {
    let mut command = Command::new(binary("runsv"));
    command.arg(service).env("RUNTREE_KMSG", kmsg);
    supervised(&mut command, service)
}

/// SIGKILLs a runsv and waits until it is gone; its service's group (`service_pid`)
/// joins `guard`'s, so that a failing test still stops it.
pub fn kill_runsv(guard: &mut Guard, service_pid: u32) {
    guard.also_kill(service_pid);
    guard.kill();
}

/// Kills `guard`'s runsv (see [`kill_runsv`]) and starts the next with `start`, which
/// also stops the service (`service_pid`) when the test ends.
pub fn replace_runsv(guard: &mut Guard, service_pid: u32, start: impl FnOnce() -> Guard) -> Guard {
    kill_runsv(guard, service_pid);
    let mut next = start();
    next.also_kill(service_pid);
    next
}

/// The pids of live processes whose command line is exactly `argv`.
pub fn processes_running(argv: &[&str]) -> Vec<u32> {
    let wanted: Vec<u8> = argv
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    runsv::proc::pids()
        .into_iter()
        .filter(|pid| crate::alive(*pid))
        .filter(|pid| fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == wanted))
        .collect()
}

/// `sv ARGS` run to its end: (exit code, stdout, stderr).
pub fn sv(args: &[&str]) -> (i32, String, String) {
    crate::run(Command::new(binary("sv")).args(args), WAIT)
}

/// A runit service `a` that sleeps, in a temp dir of its own, supervised and running.
pub struct Sleeper {
    pub root: tempfile::TempDir,
    pub service: PathBuf,
    pub runsv: Guard,
    /// The service's pid.
    pub pid: u32,
}

/// A [`Sleeper`], once it runs.
pub fn sleeper() -> Sleeper {
    let root = tempfile::tempdir().expect("tempdir");
    let service = runit_service(root.path(), "a", SLEEP);
    let runsv = runsv(&service);
    let pid = crate::wait_running(&service, WAIT);
    Sleeper {
        root,
        service,
        runsv,
        pid,
    }
}
