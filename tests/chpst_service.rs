//! chpst where runit's scripts use it: in a service's `run`, under runtree's runsv, as
//! Debian's shared log/run does (`exec chpst -u USER … prog`). chpst execs, so the
//! supervised pid is the program itself, running as the user with the limits, nice
//! level and environment asked for, and `sv down` stops it. Needs root.

use runtree::{alive, binary_dir, control, runsv, wait_for, wait_state, write_script};
use runtree::{ServiceState, WAIT};
use std::fs;
use std::os::unix::fs::PermissionsExt;

#[test]
fn exec_chpst_in_run_keeps_the_supervised_pid_with_the_changed_state() {
    runtree::skip_unless!(runtree::as_root("needs root (chpst -u)"));
    let root = tempfile::tempdir().unwrap();
    // The program runs as nobody: it must reach the directory it reports into.
    fs::set_permissions(root.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let out = root.path().join("out");
    fs::create_dir(&out).unwrap();
    fs::set_permissions(&out, fs::Permissions::from_mode(0o777)).unwrap();
    let service = root.path().join("svc");
    fs::create_dir_all(service.join("env")).unwrap();
    fs::write(service.join("env/GREETING"), "hello\n").unwrap();
    write_script(
        &service.join("run"),
        &format!(
            "#!/bin/sh\nPATH={bin}:$PATH\nexec chpst -u nobody -o 64 -n 3 -e ./env sh -c '\
             echo \"$(id -u) $(ulimit -n) $(nice) $GREETING\" > {out}/report.tmp; \
             mv {out}/report.tmp {out}/report; exec sleep 1000'\n",
            bin = binary_dir().display(),
            out = out.display(),
        ),
    );
    let _runsv = runsv(&service);
    let report = out.join("report");
    assert!(
        wait_for(&[&out], WAIT, || report.exists()),
        "the service never reported"
    );
    // -n 3 is relative to the niceness this test runs at.
    let own = unsafe { nix::libc::getpriority(nix::libc::PRIO_PROCESS, 0) };
    assert_eq!(
        fs::read_to_string(&report).unwrap(),
        format!("65534 64 {} hello\n", own + 3)
    );
    let pid = runtree::wait_running(&service, WAIT);
    // The supervised pid is the program: run exec'd chpst, chpst exec'd sh, sh sleep.
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(
        status.lines().any(|l| l.starts_with("Name:\tsleep")),
        "{status}"
    );
    assert!(
        status.lines().any(|l| l.starts_with("Uid:\t65534\t")),
        "{status}"
    );

    control(&service, "d");
    assert!(wait_state(&service, WAIT, |s| s.state == ServiceState::Down).is_some());
    assert!(
        wait_for(&[], WAIT, || !alive(pid)),
        "{pid} survived sv down"
    );
}
