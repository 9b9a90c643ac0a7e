//! chpst's controls as service.yaml keys, end to end: a YAML service with `limit_*`,
//! `nice`, `umask`, `env_file` and `env_dir` reports what its shell sees, under the real
//! runsv; an env dir edited is read again at the next start; an env file that cannot
//! be read puts the service in `error` with the file named. Without cgroups, a weight
//! (`cpu_weight`) is a warning and the service runs, a bound (`pids_max`) an error.
//! `kill_mode: process` stops the main process alone (here in process-group mode; with
//! cgroups in tests/cgroups.rs).

use runtree::{binary, control, runsv, supervised, wait_error, wait_for, yaml_service, WAIT};
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

/// The service writes its report next to itself, then sleeps.
const REPORT: &str = "exec: sh -c 'echo \"$(ulimit -n) $(ulimit -c) $(nice) $(umask) \
                      $FROM_FILE|$QUOTED|$FROM_DIR|${GONE-unset}|$PATH\" > report.tmp; \
                      mv report.tmp report; exec sleep 1000'\nlog: none\n";

fn report(service: &Path) -> String {
    fs::read_to_string(service.join("report")).unwrap_or_default()
}

#[test]
fn a_yaml_service_gets_its_limits_nice_umask_and_environment_files() {
    let root = tempfile::tempdir().unwrap();
    let yaml = format!(
        "{REPORT}limit_nofile: 123\nlimit_core: 0\nnice: 7\numask: \"0027\"\n\
         env_file: app.env\nenv_dir: env\nenviron:\n  GONE: here\n  PATH: /usr/bin:/bin\n"
    );
    let service = yaml_service(root.path(), "controls", &yaml);
    fs::write(
        service.join("app.env"),
        "# settings\nFROM_FILE=file\nexport QUOTED=\"two words\"\n",
    )
    .unwrap();
    fs::create_dir(service.join("env")).unwrap();
    fs::write(service.join("env/FROM_DIR"), "dir\n").unwrap();
    fs::write(service.join("env/GONE"), "").unwrap();
    let _runsv = runsv(&service);
    assert!(
        wait_for(&[&service], WAIT, || !report(&service).is_empty()),
        "no report: {:?}",
        runtree::full_state(&service)
    );
    assert_eq!(
        report(&service),
        "123 0 7 0027 file|two words|dir|unset|/usr/bin:/bin\n"
    );

    // Read again at each start: an edit applies on the next one.
    fs::write(service.join("env/FROM_DIR"), "edited\n").unwrap();
    fs::remove_file(service.join("report")).unwrap();
    control(&service, "t");
    assert!(
        wait_for(&[&service], WAIT, || report(&service).contains("|edited|")),
        "not read again: {:?}",
        report(&service)
    );
}

#[test]
fn an_env_file_that_cannot_be_read_is_an_error_naming_it() {
    let root = tempfile::tempdir().unwrap();
    let yaml = format!("{REPORT}env_file: missing.env\n");
    let service = yaml_service(root.path(), "broken", &yaml);
    let _runsv = runsv(&service);
    let state = wait_error(&service, WAIT);
    let file = service.join("missing.env");
    assert!(
        state
            .reason
            .starts_with(&format!("env_file {}: ", file.display())),
        "{}",
        state.reason
    );
    assert!(!service.join("report").exists(), "the service never ran");
}

#[test]
fn without_cgroups_a_weight_is_a_warning_and_a_bound_an_error() {
    let root = tempfile::tempdir().unwrap();
    let weighted = yaml_service(
        root.path(),
        "weighted",
        &format!("{REPORT}cpu_weight: 10\nio_weight: 20\n"),
    );
    let stderr = root.path().join("weighted.stderr");
    let mut command = Command::new(binary("runsv"));
    command
        .arg(&weighted)
        .env("RUNTREE_CGROUP", "off")
        .stderr(Stdio::from(fs::File::create(&stderr).unwrap()));
    let _weighted = supervised(&mut command, &weighted);
    assert!(
        wait_for(&[&weighted], WAIT, || !report(&weighted).is_empty()),
        "the weighted service never ran: {:?}",
        runtree::full_state(&weighted)
    );
    let said = fs::read_to_string(&stderr).unwrap();
    assert!(
        said.contains("warning: cpu_weight, io_weight: no cgroup to apply them to"),
        "{said}"
    );

    let bound = yaml_service(root.path(), "bound", &format!("{REPORT}pids_max: 8\n"));
    let mut command = Command::new(binary("runsv"));
    command.arg(&bound).env("RUNTREE_CGROUP", "off");
    let _bound = supervised(&mut command, &bound);
    let state = wait_error(&bound, WAIT);
    assert!(
        state
            .reason
            .starts_with("pids_max: limits need a writable cgroup v2"),
        "{}",
        state.reason
    );
    assert!(
        !bound.join("report").exists(),
        "the bound service never ran"
    );
}

#[test]
fn kill_mode_process_leaves_what_the_service_started() {
    let root = tempfile::tempdir().unwrap();
    let script = "exec: sh -c 'sleep 1000 & echo $! > child; exec sleep 1001'\nlog: none\n";
    for (mode, child_survives) in [("group", false), ("process", true)] {
        let service = yaml_service(root.path(), mode, &format!("{script}kill_mode: {mode}\n"));
        let mut runsv = runsv(&service);
        assert!(
            wait_for(&[&service], WAIT, || fs::read_to_string(
                service.join("child")
            )
            .is_ok_and(|c| c.ends_with('\n'))),
            "{mode}: no child"
        );
        let child: u32 = fs::read_to_string(service.join("child"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        runsv.also_kill(child);
        control(&service, "d");
        runtree::wait_state(&service, WAIT, |s| s.state == runtree::ServiceState::Down)
            .unwrap_or_else(|| panic!("{mode}: never down"));
        // Down means the stop was delivered; a child killed by it is gone (or a zombie
        // until sh's reaper, init, takes it) once its group has been signalled.
        let alive = || runtree::alive(child);
        if child_survives {
            assert!(alive(), "{mode}: the child was stopped too");
        } else {
            assert!(
                wait_for(&[], WAIT, || !alive()),
                "{mode}: the child outlived the stop"
            );
        }
    }
}
