//! A keeper (runsv/src/adoption.rs: the process holding a service's output pipes while
//! no runsv runs) must not make init's final sweep wait its whole grace: once its
//! runsv is gone, SIGTERM ends it. While its runsv lives, a TERM (svdir's stop sends
//! one to runsv's whole group) leaves it alone.

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use runsv::control::supervisor_running;
use runsv::supervise::SuperviseDir;
use runtree::{alive, binary, wait_for, wait_running, Guard};
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

/// The keeper's pid, from supervise/keeper, if that process lives.
fn keeper(service: &Path) -> Option<u32> {
    let text = fs::read_to_string(service.join("supervise/keeper")).ok()?;
    let pid: u32 = text.split_whitespace().next()?.parse().ok()?;
    alive(pid).then_some(pid)
}

/// Whether `pid` has a SIGTERM pending (not yet taken by sigwaitinfo or a handler).
fn term_pending(pid: u32) -> bool {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let term_bit = 1u64 << (Signal::SIGTERM as u32 - 1);
    status
        .lines()
        .filter(|l| l.starts_with("SigPnd:") || l.starts_with("ShdPnd:"))
        .filter_map(|l| u64::from_str_radix(l.split_whitespace().nth(1)?, 16).ok())
        .any(|mask| mask & term_bit != 0)
}

#[test]
fn an_orphaned_keeper_ends_on_sigterm_and_a_supervised_one_does_not() {
    let root = tempfile::tempdir().unwrap();
    let kmsg = root.path().join("kmsg");
    fs::write(&kmsg, "").unwrap();
    let service = root.path().join("relayed");
    fs::create_dir_all(&service).unwrap();
    // Relayed output (to a stand-in for /dev/kmsg), so runsv starts a keeper.
    let marker = format!("{}", 4_000_000 + std::process::id());
    fs::write(
        service.join("service.yaml"),
        format!("exec: sleep {marker}\nlog: kmsg\n"),
    )
    .unwrap();
    let mut runsv = Guard::spawn(
        Command::new(binary("runsv"))
            .arg(&service)
            .env("RUNTREE_KMSG", &kmsg)
            .stdin(Stdio::null())
            .stdout(Stdio::null()),
    );
    let supervise = SuperviseDir::of_service(&service);
    assert!(wait_for(&[&service], WAIT, || supervisor_running(
        &supervise
    )
    .unwrap_or(false)));
    let pid = wait_running(&service, WAIT);
    runsv.kill_on_drop(pid);
    let supervise_dir = service.join("supervise");
    let mut found = None;
    assert!(wait_for(&[&supervise_dir], WAIT, || {
        found = keeper(&service);
        found.is_some()
    }));
    let Some(keeper_pid) = found else { return };
    let keeper = Pid::from_raw(keeper_pid as i32);

    // runsv alive: the TERM is taken and ignored, and the keeper stays.
    kill(keeper, Signal::SIGTERM).unwrap();
    assert!(
        wait_for(&[], WAIT, || !term_pending(keeper_pid)),
        "the keeper never took the TERM"
    );
    assert!(alive(keeper_pid), "a keeper whose runsv lives died of TERM");

    // runsv killed (as svdir does at its stop deadline): the keeper is on its own.
    kill(runsv.pid(), Signal::SIGKILL).unwrap();
    runsv.wait_exit(WAIT).expect("runsv killed");
    assert!(alive(keeper_pid), "the keeper outlives a killed runsv");
    kill(keeper, Signal::SIGTERM).unwrap();
    let ended = wait_for(&[], WAIT, || !alive(keeper_pid));
    if !ended {
        let _ = kill(keeper, Signal::SIGKILL);
    }
    assert!(ended, "an orphaned keeper outlived SIGTERM");
    // The service itself is killed by the Guard (its group).
}
