//! `sv reconfigure NAME`: runsv reads the definition again. Changed → the service is
//! restarted with the new one; unchanged → nothing happens; invalid → the old one stays
//! in force, sv says why, and so does `sv status`.

use runtree::WAIT;
use runtree::{binary, full_state, run, wait_state, Guard, ServiceState};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn sv(scan: &Path, args: &[&str]) -> (i32, String, String) {
    run(
        Command::new(binary("sv")).args(args).env("SVDIR", scan),
        WAIT,
    )
}

fn write_definition(service: &Path, yaml: &str) {
    fs::create_dir_all(service).unwrap();
    // Replaced atomically, as an editor or a deploy tool would.
    fs::write(service.join("service.yaml.new"), yaml).unwrap();
    fs::rename(
        service.join("service.yaml.new"),
        service.join("service.yaml"),
    )
    .unwrap();
}

/// The service `web`, defined by `yaml`, in a scan directory of its own, under a
/// runsv started there as svdir starts it (`runsv web`).
fn web(yaml: &str) -> (tempfile::TempDir, PathBuf, Guard) {
    let scan = tempfile::tempdir().unwrap();
    let service = scan.path().join("web");
    write_definition(&service, yaml);
    let runsv = Guard::spawn(
        Command::new(binary("runsv"))
            .arg("web")
            .current_dir(scan.path()),
    );
    (scan, service, runsv)
}

/// Waits until the service runs as a process other than `other_than`.
fn running(service: &Path, other_than: u32) -> runsv::supervise::FullState {
    runtree::service::wait_restarted(service, other_than)
}

fn environ_of(pid: u32) -> Vec<String> {
    fs::read(format!("/proc/{pid}/environ"))
        .unwrap_or_default()
        .split(|b| *b == 0)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect()
}

#[test]
fn a_changed_definition_restarts_the_service_with_it_and_an_unchanged_one_does_nothing() {
    let (scan, service, _runsv) = web("exec: sleep 1000\nenviron:\n  COLOUR: red\nlog: none\n");
    let first = running(&service, 0);
    assert!(environ_of(first.pid).contains(&"COLOUR=red".to_string()));

    // Unchanged: the same process goes on.
    let (code, out, _) = sv(scan.path(), &["reconfigure", "web"]);
    assert_eq!((code, out.as_str()), (0, ""));
    let (_, status, _) = sv(scan.path(), &["status", "web"]);
    assert!(
        status.starts_with(&format!("run: web: (pid {})", first.pid)),
        "{status}"
    );

    // A new environment and a new command: restarted with both.
    write_definition(
        &service,
        "exec: sleep 2000\nenviron:\n  COLOUR: blue\nlog: none\n",
    );
    let (code, out, _) = sv(scan.path(), &["reconfigure", "web"]);
    assert_eq!((code, out.as_str()), (0, ""));
    let second = running(&service, first.pid);
    assert!(environ_of(second.pid).contains(&"COLOUR=blue".to_string()));
    let cmdline = fs::read(format!("/proc/{}/cmdline", second.pid)).unwrap();
    assert_eq!(cmdline, b"sleep\x002000\x00");
}

#[test]
fn an_invalid_definition_is_refused_and_the_old_one_keeps_running() {
    let (scan, service, _runsv) = web("exec: sleep 1000\nlog: none\n");
    let first = running(&service, 0);
    write_definition(
        &service,
        "exec: sleep 1000\nlog: none\nrestart_delay: soon\n",
    );
    let (code, out, _) = sv(scan.path(), &["reconfigure", "web"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.starts_with("fail: web: new definition refused, old one kept: "),
        "{out}"
    );
    assert!(out.contains("line 3"), "{out}");
    let refused = wait_state(&service, WAIT, |s| s.reason.contains("refused"))
        .unwrap_or_else(|| panic!("{:?}", full_state(&service)));
    assert_eq!(refused.state, ServiceState::Running);
    assert_eq!(refused.pid, first.pid, "the service was not restarted");
    let (_, status, _) = sv(scan.path(), &["status", "web"]);
    assert!(
        status.contains("[running: new definition refused, old one kept: "),
        "{status}"
    );

    // Fixed: the refusal is gone and, the definition being the old one, nothing restarts.
    write_definition(&service, "exec: sleep 1000\nlog: none\n");
    let (code, _, _) = sv(scan.path(), &["reconfigure", "web"]);
    assert_eq!(code, 0);
    let fixed = wait_state(&service, WAIT, |s| s.reason.is_empty()).unwrap();
    assert_eq!(fixed.pid, first.pid);
}

#[test]
fn a_service_in_error_for_its_definition_starts_once_it_is_fixed() {
    let (scan, service, _runsv) = web("exec: sleep 1000\nlgo: none\n");
    runtree::wait_error(&service, WAIT);
    write_definition(&service, "exec: sleep 1000\nlog: none\n");
    let (code, _, _) = sv(scan.path(), &["reconfigure", "web"]);
    assert_eq!(code, 0);
    running(&service, 0);
}

#[test]
fn reconfigure_without_runsv_fails() {
    let scan = tempfile::tempdir().unwrap();
    write_definition(&scan.path().join("web"), "exec: sleep 1000\n");
    fs::create_dir_all(scan.path().join("web/supervise")).unwrap();
    nix::unistd::mkfifo(
        &scan.path().join("web/supervise/control"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    let (code, out, _) = sv(scan.path(), &["reconfigure", "web"]);
    assert_eq!((code, out.as_str()), (1, "fail: web: runsv not running\n"));
}
