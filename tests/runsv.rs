//! runsv end to end: the real binary on service directories in temp dirs, driven
//! through its control FIFO and observed through supervise/ (the formats come from the
//! runsv library; sv is tested on top of this in tests/sv_runtree.rs).

use nix::sys::signal::Signal;
use runsv::supervise::{ExitStatus, RunState};
use runtree::service::{
    kill_runsv, kmsg_file, processes_running, read, relayed_service, replace_runsv, runit_service,
    runsv_kmsg, signal, sleeper, sv, wait_gone, wait_in, wait_restarted, wait_status, wait_text,
    SLEEP,
};
use runtree::yaml_service;
use runtree::{
    alive, binary, control, full_state, run, runsv, status, supervised, supervisor_up, wait_for,
    wait_state, write_script, Guard, ServiceState, WAIT,
};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn wait_running(service: &Path) -> u32 {
    runtree::wait_running(service, WAIT)
}

/// A service that prints a numbered line each time it is asked (SIGHUP), so that the
/// test decides when lines are written.
const HUP_LINES: &str =
    "#!/bin/sh\nn=0\ntrap 'n=$((n+1)); echo line-$n' HUP\nwhile :; do sleep 1 & wait $!; done\n";

#[test]
fn supervise_files_are_runits() {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let sleeper = sleeper();
    let (service, pid) = (&sleeper.service, sleeper.pid);
    let supervise = service.join("supervise");
    let mode = |name: &str| {
        fs::metadata(supervise.join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!(
        fs::metadata(&supervise).unwrap().permissions().mode() & 0o7777,
        0o700
    );
    for fifo in ["control", "ok"] {
        assert!(fs::metadata(supervise.join(fifo))
            .unwrap()
            .file_type()
            .is_fifo());
        assert_eq!(mode(fifo), 0o600, "{fifo}");
    }
    assert_eq!(mode("lock"), 0o600);
    assert_eq!(mode("status"), 0o644);
    assert_eq!(read(&supervise.join("pid")), format!("{pid}\n"));
    assert_eq!(read(&supervise.join("stat")), "run\n");
    let status = status(service).unwrap();
    assert_eq!(
        (status.pid, status.want, status.run_state),
        (pid, b'u', RunState::Run)
    );
    assert_eq!(fs::read(supervise.join("status")).unwrap().len(), 20);
    // The service is in a session and process group of its own, as a member, not
    // their leader (as under runit: `exec setsid` and `chpst -P` keep its pid).
    let stat = runsv::proc::stat(pid).expect("/proc/PID/stat");
    assert_ne!(stat.pgrp, pid, "no group leader");
    assert_eq!(stat.session, stat.pgrp, "the group of its session's leader");
    let runsv_session = nix::unistd::getsid(Some(sleeper.runsv.pid()))
        .unwrap()
        .as_raw() as u32;
    assert_ne!(stat.session, runsv_session, "not runsv's session");
}

#[test]
fn a_second_runsv_on_the_same_directory_exits_111() {
    let sleeper = sleeper();
    let service = &sleeper.service;
    let (code, _, stderr) = run(Command::new(binary("runsv")).arg(service), WAIT);
    assert_eq!(code, 111);
    assert_eq!(
        stderr,
        format!(
            "runsv {}: fatal: unable to lock supervise/lock: temporary failure\n",
            service.display()
        )
    );
    let (code, _, stderr) = run(&mut Command::new(binary("runsv")), WAIT);
    assert_eq!((code, stderr.as_str()), (1, "usage: runsv dir\n"));
    let missing = sleeper.root.path().join("none");
    let (code, _, stderr) = run(Command::new(binary("runsv")).arg(missing), WAIT);
    assert_eq!(code, 111);
    assert!(
        stderr.ends_with("fatal: unable to change to directory: file does not exist\n"),
        "{stderr}"
    );
}

#[test]
fn down_up_once_and_exit() {
    let mut sleeper = sleeper();
    let (service, first) = (&sleeper.service, sleeper.pid);
    control(service, "d");
    let state = wait_in(service, ServiceState::Down);
    assert_eq!(state.last_exit, Some(ExitStatus::Signaled(15)));
    assert!(!alive(first));
    assert_eq!(read(&service.join("supervise/pid")), "");
    assert_eq!(read(&service.join("supervise/stat")), "down\n");
    control(service, "u");
    let second = wait_running(service);
    assert_ne!(first, second);
    control(service, "o");
    wait_state(service, WAIT, |s| s.want == runsv::supervise::Want::Down).unwrap();
    assert_eq!(read(&service.join("supervise/stat")), "run, want down\n");
    control(service, "t");
    wait_in(service, ServiceState::Down);
    // `o` on a down service runs it once.
    control(service, "o");
    let third = wait_running(service);
    control(service, "k");
    let state = wait_in(service, ServiceState::Down);
    assert_eq!(state.last_exit, Some(ExitStatus::Signaled(9)));
    assert!(!alive(third));
    control(service, "x");
    let exited = sleeper.runsv.wait_exit(WAIT);
    assert!(exited.is_some_and(|s| s.success()), "runsv exits 0 on x");
}

#[test]
fn sigterm_to_runsv_stops_the_service_and_exits() {
    let mut sleeper = sleeper();
    nix::sys::signal::kill(sleeper.runsv.pid(), Signal::SIGTERM).unwrap();
    assert!(sleeper.runsv.wait_exit(WAIT).is_some_and(|s| s.success()));
    assert!(!alive(sleeper.pid));
    // HUP and INT do not kill runsv (they kill runit's).
}

#[test]
fn hup_and_int_do_not_kill_runsv() {
    let mut sleeper = sleeper();
    for signal in [Signal::SIGHUP, Signal::SIGINT] {
        nix::sys::signal::kill(sleeper.runsv.pid(), signal).unwrap();
    }
    // A control byte sent after the signals is answered: runsv is alive and serving.
    control(&sleeper.service, "p");
    let paused = wait_status(&sleeper.service, |s| s.paused);
    assert!(sleeper.runsv.child.try_wait().unwrap().is_none());
    assert_eq!(paused.pid, sleeper.pid);
}

#[test]
fn signal_bytes_reach_the_service() {
    let root = tempfile::tempdir().unwrap();
    // The service records each signal it gets.
    let service = runit_service(
        root.path(),
        "a",
        "#!/bin/sh\nfor s in HUP ALRM INT QUIT USR1 USR2 CONT; do trap \"echo $s >> got\" $s; done\n\
         echo ready > started\nwhile :; do sleep 0.05; done\n",
    );
    let _runsv = runsv(&service);
    wait_running(&service);
    let got = service.join("got");
    wait_text(&service, &service.join("started"), |text| text == "ready\n");
    for (byte, name) in [
        ("h", "HUP"),
        ("a", "ALRM"),
        ("i", "INT"),
        ("q", "QUIT"),
        ("1", "USR1"),
        ("2", "USR2"),
    ] {
        control(&service, byte);
        wait_text(&service, &got, |got| got.lines().any(|l| l == name));
    }
    control(&service, "p");
    wait_status(&service, |s| s.paused);
    assert_eq!(read(&service.join("supervise/stat")), "run, paused\n");
    control(&service, "c");
    wait_text(&service, &got, |got| got.lines().any(|l| l == "CONT"));
    assert!(!status(&service).unwrap().paused);
}

#[test]
fn custom_control_scripts_replace_signals() {
    let root = tempfile::tempdir().unwrap();
    let service = runit_service(
        root.path(),
        "a",
        "#!/bin/sh\ntrap 'echo HUP >> got' HUP\nwhile :; do sleep 0.05; done\n",
    );
    // control/h handles hup (exit 0: no signal); control/u runs before every start.
    for (letter, exit) in [("h", "exit 0\n"), ("u", ""), ("d", "")] {
        write_script(
            &service.join("control").join(letter),
            &format!("#!/bin/sh\necho custom-{letter} >> got\n{exit}"),
        );
    }
    let _runsv = runsv(&service);
    wait_running(&service);
    let got = service.join("got");
    assert!(read(&got).contains("custom-u"));
    control(&service, "h");
    wait_text(&service, &got, |got| got.contains("custom-h"));
    control(&service, "d");
    wait_in(&service, ServiceState::Down);
    let log = read(&got);
    assert!(log.contains("custom-d"), "{log}");
    assert!(
        !log.contains("HUP"),
        "the script replaced the signal: {log}"
    );
}

#[test]
fn a_service_that_ran_a_second_restarts_at_once_a_fast_one_waits() {
    let sleeper = sleeper();
    let (root, service, first) = (&sleeper.root, &sleeper.service, sleeper.pid);
    // The scenario needs a run of more than a second.
    std::thread::sleep(Duration::from_millis(1100));
    // Every replacement of `state` is an event of its own (renames are never merged).
    use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
    let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK).unwrap();
    inotify
        .add_watch(&service.join("supervise"), AddWatchFlags::IN_MOVED_TO)
        .unwrap();
    signal(first, Signal::SIGKILL);
    let again = wait_restarted(service, first);
    assert_eq!(again.restarts, 1);
    assert_eq!(again.last_exit, Some(ExitStatus::Signaled(9)));
    let mut states = 0;
    while let Ok(events) = inotify.read_events() {
        states += events
            .iter()
            .filter(|e| e.name.as_deref() == Some(std::ffi::OsStr::new("state")))
            .count();
    }
    assert!(
        states >= 2,
        "the exit is published before the restart, then the new process ({states} writes)"
    );

    let fast = runit_service(root.path(), "fast", "#!/bin/sh\nexit 3\n");
    let _fast = runsv(&fast);
    let state = wait_in(&fast, ServiceState::Respawn);
    assert_eq!(state.reason, "exited 3; restarting in 1s");
    assert_eq!(state.last_exit, Some(ExitStatus::Exited(3)));
    // Control bytes are answered during the delay (runit sleeps through them).
    let asked = Instant::now();
    control(&fast, "d");
    wait_in(&fast, ServiceState::Down);
    assert!(
        asked.elapsed() < Duration::from_millis(900),
        "answered during the restart delay"
    );
    control(&fast, "u");
    let second = wait_state(&fast, WAIT, |s| {
        s.state == ServiceState::Respawn && s.reason.contains("in 1s")
    })
    .unwrap();
    let later = wait_state(&fast, WAIT, |s| s.reason.contains("restarting in 2s")).unwrap();
    assert!(
        later.restarts > second.restarts,
        "the delay grows while it keeps dying"
    );
}

#[test]
fn finish_gets_runits_arguments() {
    let root = tempfile::tempdir().unwrap();
    // Services that log their starts, and their finishes with its arguments.
    let logging = |name: &str, then: &str| {
        let dir = runit_service(
            root.path(),
            name,
            &format!("#!/bin/sh\necho started >> events\n{then}\n"),
        );
        write_script(
            &dir.join("finish"),
            "#!/bin/sh\necho \"finish $1 $2\" >> events\n",
        );
        dir
    };
    let service = logging("a", "exec sleep 1000");
    let _runsv = runsv(&service);
    wait_running(&service);
    control(&service, "d");
    wait_in(&service, ServiceState::Down);
    control(&service, "u");
    wait_running(&service);
    control(&service, "k");
    wait_state(&service, WAIT, |s| {
        s.state == ServiceState::Running
            && read(&service.join("events")).matches("finish").count() == 2
    })
    .unwrap();
    let exit_3 = logging("b", "exit 3");
    write_script(&exit_3.join("down"), "");
    let _b = runsv(&exit_3);
    control(&exit_3, "o");
    wait_state(&exit_3, WAIT, |_| {
        read(&exit_3.join("events")).contains("finish")
    })
    .unwrap();
    wait_in(&exit_3, ServiceState::Down);
    assert_eq!(
        read(&service.join("events"))
            .lines()
            .filter(|l| l.starts_with("finish"))
            .collect::<Vec<_>>(),
        ["finish -1 15", "finish -1 9"]
    );
    assert_eq!(read(&exit_3.join("events")), "started\nfinish 3 0\n");
}

#[test]
fn k_during_a_hung_finish_ends_it_and_finish_runs_once() {
    let root = tempfile::tempdir().unwrap();
    let service = runit_service(root.path(), "a", SLEEP);
    write_script(
        &service.join("finish"),
        "#!/bin/sh\necho finish >> events\nexec sleep 1000\n",
    );
    let _runsv = runsv(&service);
    wait_running(&service);
    control(&service, "d");
    let finishing = wait_in(&service, ServiceState::Finishing);
    // The state is written last: status and stat are current once it is.
    assert_eq!(status(&service).unwrap().run_state, RunState::Finish);
    assert_eq!(read(&service.join("supervise/stat")), "finish, want down\n");
    // finish is finishing from its spawn on; let it write its line first.
    wait_text(&service, &service.join("events"), |events| {
        events == "finish\n"
    });
    control(&service, "k");
    wait_in(&service, ServiceState::Down);
    assert!(!alive(finishing.pid));
    assert_eq!(read(&service.join("events")), "finish\n", "finish ran once");
}

#[test]
fn a_oneshot_is_ok_or_error_and_runs_again_on_up() {
    let root = tempfile::tempdir().unwrap();
    let good = yaml_service(
        root.path(),
        "good",
        "exec: sh -c 'echo ran >> runs'\noneshot: true\n",
    );
    let bad = yaml_service(root.path(), "bad", "exec: sh -c 'exit 4'\noneshot: true\n");
    let _g = runsv(&good);
    let _b = runsv(&bad);
    let ok = wait_in(&good, ServiceState::Ok);
    assert_eq!(ok.last_exit, Some(ExitStatus::Exited(0)));
    let error = wait_in(&bad, ServiceState::Error);
    assert_eq!(error.reason, "exited 4");
    assert_eq!(read(&good.join("runs")), "ran\n");
    // Never restarted by itself; `u` runs it again.
    assert_eq!(status(&good).unwrap().want, b'd');
    control(&good, "u");
    wait_state(&good, WAIT, |s| {
        s.state == ServiceState::Ok && read(&good.join("runs")) == "ran\nran\n"
    })
    .unwrap();
}

#[test]
fn a_binary_that_cannot_run_is_an_error_with_the_os_reason() {
    let root = tempfile::tempdir().unwrap();
    let missing = yaml_service(root.path(), "missing", "exec: /nonexistent/daemon --flag\n");
    let not_executable = runit_service(root.path(), "noexec", SLEEP);
    use std::os::unix::fs::PermissionsExt;
    let mode =
        |mode| fs::set_permissions(not_executable.join("run"), fs::Permissions::from_mode(mode));
    mode(0o644).unwrap();
    let _m = runsv(&missing);
    let _n = runsv(&not_executable);
    let state = wait_in(&missing, ServiceState::Error);
    assert_eq!(
        state.reason,
        "unable to start /nonexistent/daemon: No such file or directory (ENOENT); retrying in 1s"
    );
    let state = wait_in(&not_executable, ServiceState::Error);
    assert_eq!(
        state.reason,
        "unable to start ./run: Permission denied (EACCES); retrying in 1s"
    );
    // Retried on the growing delay, not in a hot loop; once fixed, it runs.
    mode(0o755).unwrap();
    wait_running(&not_executable);
    let state = wait_state(&missing, WAIT, |s| s.reason.contains("retrying in 2s")).unwrap();
    assert_eq!(state.state, ServiceState::Error);
}

#[test]
fn readiness_by_test_command() {
    let root = tempfile::tempdir().unwrap();
    let service = yaml_service(
        root.path(),
        "web",
        "exec: sh -c 'sleep 0.3; touch ready; exec sleep 1000'\ntest: test -e ready\ntest_interval: 0.05\nlog: none\n",
    );
    let _runsv = runsv(&service);
    let starting = wait_in(&service, ServiceState::Starting);
    assert!(starting.pid != 0 && starting.ready_since.is_none());
    let running = wait_in(&service, ServiceState::Running);
    assert!(
        service.join("ready").exists(),
        "running only once the test passed"
    );
    assert!(running.ready_since.is_some());
}

#[test]
fn readiness_by_notification_fd() {
    let root = tempfile::tempdir().unwrap();
    let service = runit_service(
        root.path(),
        "n",
        "#!/bin/sh\nsleep 0.2\necho ready >&3\nexec sleep 1000\n",
    );
    fs::write(service.join("notification-fd"), "3\n").unwrap();
    let _runsv = runsv(&service);
    wait_in(&service, ServiceState::Starting);
    let running = wait_in(&service, ServiceState::Running);
    assert!(running.ready_since.is_some());
}

#[test]
fn the_stop_timeout_kills_the_whole_group() {
    let root = tempfile::tempdir().unwrap();
    // The service and a child both ignore TERM; the child would survive a kill of the pid.
    let service = yaml_service(
        root.path(),
        "stubborn",
        "exec: sh -c \"trap '' TERM; sh -c 'trap \\\"\\\" TERM; echo $$ > child; exec sleep 1000' & exec sleep 1000\"\nstop_timeout: 0.5\nlog: none\n",
    );
    write_script(&service.join("noop"), "");
    let _runsv = runsv(&service);
    wait_running(&service);
    assert!(wait_for(&[&service], WAIT, || !read(
        &service.join("child")
    )
    .is_empty()));
    let child: u32 = read(&service.join("child")).trim().parse().unwrap();
    assert!(alive(child));
    let asked = Instant::now();
    control(&service, "d");
    let stopping = wait_in(&service, ServiceState::Stopping);
    assert_eq!(stopping.reason, "");
    let down = wait_in(&service, ServiceState::Down);
    assert!(
        asked.elapsed() >= Duration::from_millis(500),
        "not before the timeout"
    );
    assert_eq!(down.last_exit, Some(ExitStatus::Signaled(9)));
    assert!(wait_gone(child), "the group got SIGKILL");
}

/// `exec setsid prog` and `exec chpst -P prog` in `run` keep the supervised pid, as under
/// runit: the service is no group leader, so util-linux setsid does not fork (its parent
/// would exit at once and be restarted in a loop) and setsid(2) succeeds. The pid
/// runsv published goes on to run the program, in a session it leads, and `sv down`
/// stops it there.
#[test]
fn exec_setsid_and_chpst_p_keep_the_supervised_pid() {
    let root = tempfile::tempdir().unwrap();
    let chpst = binary("chpst");
    for (name, run) in [
        ("setsid", "exec setsid sleep 1000".to_string()),
        ("chpst", format!("exec {} -P sleep 1000", chpst.display())),
    ] {
        let service = runit_service(root.path(), name, &format!("#!/bin/sh\n{run}\n"));
        let mut guard = runsv(&service);
        let pid = wait_running(&service);
        guard.also_kill(pid);
        let cmdline = || fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        // The very pid runsv published execs sleep: nothing forked it away.
        assert!(
            wait_for(&[], WAIT, || cmdline() == b"sleep\x001000\x00"),
            "{name}: {pid} runs {:?}",
            String::from_utf8_lossy(&cmdline())
        );
        let stat = runsv::proc::stat(pid).expect("/proc/PID/stat");
        assert_eq!(
            (stat.session, stat.pgrp),
            (pid, pid),
            "{name}: leads its session"
        );
        let state = full_state(&service).unwrap();
        assert_eq!(
            (state.state, state.pid, state.restarts),
            (ServiceState::Running, pid, 0),
            "{name}: no restart"
        );
        assert_eq!(read(&service.join("supervise/pid")), format!("{pid}\n"));
        control(&service, "d");
        let down = wait_in(&service, ServiceState::Down);
        assert_eq!(down.last_exit, Some(ExitStatus::Signaled(15)), "{name}");
        assert!(!alive(pid), "{name}: sleep stopped");
    }
}

#[test]
fn a_killed_runsvs_service_is_adopted_not_restarted_nor_duplicated() {
    let root = tempfile::tempdir().unwrap();
    // A command line unique to this test, to count the copies of the service.
    let marker = format!("{}", 1_000_000 + std::process::id());
    let service = runit_service(
        root.path(),
        "a",
        &format!("#!/bin/sh\nexec sleep {marker}\n"),
    );
    let mut first = runsv(&service);
    let pid = wait_running(&service);
    let before = full_state(&service).unwrap();
    kill_runsv(&mut first, pid);
    assert!(alive(pid), "the service outlives a killed runsv");
    let mut second = runsv(&service);
    second.also_kill(pid);
    let adopted = full_state(&service).unwrap();
    assert_eq!(adopted.state, ServiceState::Running);
    assert_eq!(adopted.pid, pid, "the same process, not a new one");
    assert_eq!(adopted.starttime, before.starttime);
    assert_eq!(adopted.restarts, before.restarts, "no restart counted");
    assert_eq!(
        processes_running(&["sleep", &marker]),
        [pid],
        "exactly one copy"
    );
    let status = status(&service).unwrap();
    assert_eq!((status.pid, status.run_state), (pid, RunState::Run));

    // Signals reach it; its end is seen (through a pidfd) and it is restarted.
    control(&service, "k");
    let restarted = wait_restarted(&service, pid);
    assert_eq!(restarted.last_exit, Some(ExitStatus::Unknown));
    assert_eq!(restarted.restarts, before.restarts + 1);
    assert!(!alive(pid));
    // `running` comes once ./run is exec'd; its `exec sleep` follows a moment later.
    assert!(
        wait_for(&[], WAIT, || processes_running(&["sleep", &marker])
            == [restarted.pid]),
        "{:?}",
        processes_running(&["sleep", &marker])
    );

    // And down/up work on what it runs now.
    control(&service, "d");
    wait_in(&service, ServiceState::Down);
    assert!(processes_running(&["sleep", &marker]).is_empty());
}

#[test]
fn an_adopted_service_stops_on_down() {
    let root = tempfile::tempdir().unwrap();
    let service = runit_service(root.path(), "a", SLEEP);
    let mut first = runsv(&service);
    let pid = wait_running(&service);
    let _second = replace_runsv(&mut first, pid, || runsv(&service));
    assert_eq!(full_state(&service).unwrap().pid, pid);
    control(&service, "d");
    let down = wait_in(&service, ServiceState::Down);
    assert_eq!(down.pid, 0);
    assert!(wait_gone(pid), "the adopted process was stopped");
}

#[test]
fn a_service_that_cannot_be_adopted_is_stopped_before_a_new_one_starts() {
    let root = tempfile::tempdir().unwrap();
    // Still starting (its readiness test never passes) when its runsv is killed:
    // runsv cannot follow a readiness it did not start, so it does not adopt it.
    let service = yaml_service(
        root.path(),
        "a",
        "exec: sleep 1000\ntest: \"false\"\ntest_interval: 0.05\n",
    );
    let mut first = runsv(&service);
    let starting = wait_in(&service, ServiceState::Starting);
    kill_runsv(&mut first, starting.pid);
    assert!(alive(starting.pid));
    let _second = runsv(&service);
    assert!(wait_gone(starting.pid), "the old copy was stopped");
    let again = wait_state(&service, WAIT, |s| s.pid != 0 && s.pid != starting.pid).unwrap();
    assert_eq!(again.state, ServiceState::Starting);
}

/// A `log/` service that appends each line it reads to `lines` in the service
/// directory, whose path it returns.
fn line_logger(service: &Path) -> PathBuf {
    write_script(
        &service.join("log/run"),
        "#!/bin/sh\nwhile IFS= read -r line; do echo \"$line\" >> ../lines; done\n",
    );
    service.join("lines")
}

#[test]
fn output_written_while_no_runsv_runs_reaches_a_new_logger_even_from_a_stopped_copy() {
    let root = tempfile::tempdir().unwrap();
    // Still starting when its runsv is killed, so the next runsv stops it rather than
    // adopting it; it says something when asked (HUP) and when stopped (TERM).
    let service = yaml_service(
        root.path(),
        "a",
        "exec: >-\n  sh -c 'exec 2>/dev/null; echo before; trap \"echo asked\" HUP; trap \"echo stopped; exit 0\" TERM;\n  while :; do sleep 1 & wait $!; done'\ntest: \"false\"\ntest_interval: 0.05\n",
    );
    let lines = line_logger(&service);
    let mut first = runsv(&service);
    let starting = wait_in(&service, ServiceState::Starting);
    let logger = runtree::wait_running(&service.join("log"), WAIT);
    assert!(wait_for(&[&service], WAIT, || read(&lines) == "before\n"));
    kill_runsv(&mut first, starting.pid);
    // The logger dies too, while no runsv runs: nothing reads the service's pipe now
    // but the keeper, which only holds it.
    signal(logger, Signal::SIGKILL);
    assert!(wait_for(&[], WAIT, || !alive(logger)));
    signal(starting.pid, Signal::SIGHUP);
    let _second = runsv(&service);
    // The old copy is stopped (and says so), a new logger gets what waited, and the
    // new copy starts.
    assert!(
        wait_for(&[&service], WAIT, || read(&lines)
            == "before\nasked\nstopped\nbefore\n"),
        "{:?}",
        read(&lines)
    );
    assert!(!alive(starting.pid));
}

#[test]
fn an_adopted_service_keeps_its_logger_and_loses_no_line() {
    let root = tempfile::tempdir().unwrap();
    // Prints a numbered line each time it is asked (SIGHUP), so the test decides when
    // lines are written: before, while and after its runsv is killed.
    let service = runit_service(root.path(), "a", HUP_LINES);
    let lines = line_logger(&service);
    let count = || read(&lines).lines().count();
    let ask = |pid: u32| {
        signal(pid, Signal::SIGHUP);
    };
    let arrived = |expect: usize| {
        assert!(
            wait_for(&[&service], WAIT, || count() >= expect),
            "line {expect} never arrived: {:?}",
            read(&lines)
        );
    };
    let hup = |pid: u32, expect: usize| {
        ask(pid);
        arrived(expect);
    };
    let mut first = runsv(&service);
    let pid = wait_running(&service);
    let logger = runtree::wait_running(&service.join("log"), WAIT);
    hup(pid, 1);
    first.also_kill(logger);
    kill_runsv(&mut first, pid);
    // Written while no runsv runs: it waits in the service's pipe, which the keeper
    // holds open, and goes on to the logger once the next runsv runs.
    ask(pid);
    let mut second = runsv(&service);
    arrived(2);
    second.also_kill(pid);
    second.also_kill(logger);
    assert_eq!(full_state(&service).unwrap().pid, pid);
    assert_eq!(full_state(&service.join("log")).unwrap().pid, logger);
    hup(pid, 3);
    // A restarted service writes into the same pipe, to the same logger.
    control(&service, "k");
    let next = wait_restarted(&service, pid);
    hup(next.pid, 4);
    assert_eq!(full_state(&service.join("log")).unwrap().pid, logger);
    // Each line exactly once, in order (the restarted run counts from 1 again).
    assert_eq!(read(&lines), "line-1\nline-2\nline-3\nline-1\n");
}

#[test]
fn an_adopted_service_writes_on_into_the_relay() {
    let root = tempfile::tempdir().unwrap();
    // A YAML service's output goes through runsv's relay.
    let (service, kmsg) = relayed_service(root.path(), "relayed", HUP_LINES);
    let start = |service: &Path| runsv_kmsg(service, &kmsg);
    let hup = |pid: u32, expect: &str| {
        signal(pid, Signal::SIGHUP);
        wait_text(root.path(), &kmsg, |text| text.contains(expect));
    };
    let mut first = start(&service);
    let pid = wait_running(&service);
    hup(pid, "relayed: line-1\n");
    let _second = replace_runsv(&mut first, pid, || start(&service));
    assert_eq!(full_state(&service).unwrap().pid, pid, "adopted");
    hup(pid, "relayed: line-2\n");
    assert_eq!(read(&kmsg), "<6>relayed: line-1\n<6>relayed: line-2\n");
    assert!(alive(pid));
}

#[test]
fn an_invalid_definition_is_an_error_shown_in_the_state() {
    let root = tempfile::tempdir().unwrap();
    let service = yaml_service(root.path(), "bad", "exec: /bin/true\nexce: typo\n");
    let _runsv = runsv(&service);
    let state = wait_in(&service, ServiceState::Error);
    assert!(
        state.reason.starts_with("invalid definition: "),
        "{}",
        state.reason
    );
    assert!(state.reason.contains("line 2"), "{}", state.reason);
    assert!(state.reason.contains("exce"), "{}", state.reason);
}

/// `sv ARGS` on its own, stdout to `output`: a follower (`sv log -f`).
fn sv_to_file(args: &[&str], output: &Path) -> Guard {
    let file = fs::File::create(output).unwrap();
    Guard::spawn(
        Command::new(binary("sv"))
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(file),
    )
}

#[test]
fn log_lines_survive_50_restarts_of_the_service_and_10_of_the_logger() {
    let root = tempfile::tempdir().unwrap();
    // Each run writes 2000 numbered lines as fast as `seq` can, then dies; it is
    // restarted after 10 ms. The fiftieth run then sleeps, so that stopping it cuts no
    // run short. The tail is large enough for all of it, so `sv log` must show every
    // line too.
    const RUNS: usize = 50;
    const LINES: usize = 2000;
    const PER_LOGGER: usize = 10_000;
    let service = yaml_service(
        root.path(),
        "chatty",
        &format!(
            "exec: sh -c 'n=$(cat runs 2>/dev/null || echo 0); echo $((n+1)) > runs; seq -f \"$n-%g\" 1 {LINES}; [ $n -lt {last} ] || exec sleep 1000; exit 1'\n\
             restart_delay: 0.01\nrestart_delay_max: 0.01\nlog_tail: 4194304\n",
            last = RUNS - 1
        ),
    );
    // Each logger takes exactly 10000 lines (`sed -u` reads no further than it prints)
    // and exits, after a second so that it is restarted at once: ten loggers for the
    // 100000 lines. What this tests is that runsv holds the pipes, so nothing written
    // while no logger runs is lost.
    write_script(
        &service.join("log/run"),
        &format!("#!/bin/sh\nsed -u {PER_LOGGER}q >> ../lines\nsleep 1\n"),
    );
    let _runsv = runsv(&service);
    wait_running(&service.join("log"));
    let followed = root.path().join("followed");
    let mut follower = sv_to_file(&["log", "-f", service.to_str().unwrap()], &followed);
    let expected: Vec<String> = (0..RUNS)
        .flat_map(|n| (1..=LINES).map(move |i| format!("{n}-{i}")))
        .collect();
    let count = |path: &Path| read(path).lines().count();
    assert!(
        wait_for(&[&service], Duration::from_secs(60), || count(
            &service.join("lines")
        ) >= expected.len()),
        "lines lost: {} of {}",
        count(&service.join("lines")),
        expected.len()
    );
    control(&service, "d");
    wait_in(&service, ServiceState::Down);
    assert_eq!(read(&service.join("runs")).trim(), RUNS.to_string());
    let loggers = full_state(&service.join("log"))
        .map(|s| s.restarts)
        .unwrap_or(0);
    assert!(loggers >= 9, "the logger was restarted {loggers} times");
    let lines = read(&service.join("lines"));
    let got: Vec<&str> = lines.lines().collect();
    assert_eq!(got.len(), expected.len());
    assert!(got == expected, "every line, once, in order, at the logger");

    // The same lines through `sv log -f`, which followed all along, and `sv log`.
    assert!(
        wait_for(&[root.path()], WAIT, || count(&followed) >= expected.len()),
        "sv log -f showed {} of {} lines",
        count(&followed),
        expected.len()
    );
    let _ = nix::sys::signal::kill(follower.pid(), nix::sys::signal::Signal::SIGTERM);
    follower.wait_exit(WAIT);
    let followed = read(&followed);
    let got: Vec<&str> = followed.lines().collect();
    assert_eq!(got.len(), expected.len());
    assert!(
        got == expected,
        "every line, once, in order, through sv log -f"
    );
    // Some 790 kB: to a file, not a pipe that is read only once sv has exited.
    let shown = root.path().join("shown");
    let mut sv_log = sv_to_file(&["log", service.to_str().unwrap()], &shown);
    let exit = sv_log.wait_exit(WAIT).expect("sv log ends");
    assert!(exit.success(), "{exit:?}");
    let shown = read(&shown);
    let got: Vec<&str> = shown.lines().collect();
    assert_eq!(got.len(), expected.len());
    assert!(
        got == expected,
        "every line, once, in order, through sv log"
    );
}

#[test]
fn sv_log_and_status_show_recent_output_whatever_the_destination() {
    let root = tempfile::tempdir().unwrap();
    let kmsg = kmsg_file(root.path());
    // A service that says why it fails, on stderr, and keeps failing.
    let failing =
        "exec: >-\n  sh -c 'echo starting; echo \"cannot bind: address in use\" >&2; exit 3'\n\
                   restart_delay: 30\n";
    let kmsg_service = yaml_service(root.path(), "to-kmsg", failing);
    let console_service = yaml_service(
        root.path(),
        "to-console",
        &format!("{failing}log: console\n"),
    );
    let logged_service = yaml_service(root.path(), "to-log", failing);
    write_script(
        &logged_service.join("log/run"),
        "#!/bin/sh\nexec cat > ../logged\n",
    );
    let console_out = root.path().join("console.out");
    let mut console_runsv = Command::new(binary("runsv"));
    console_runsv
        .arg(&console_service)
        .stdout(fs::File::create(&console_out).unwrap());
    let _runsvs = [
        runsv_kmsg(&kmsg_service, &kmsg),
        supervised(&mut console_runsv, &console_service),
        runsv(&logged_service),
    ];
    let sv = |args: &[&str]| run(Command::new(binary("sv")).args(args), WAIT);
    for service in [&kmsg_service, &console_service, &logged_service] {
        let name = service.to_str().unwrap();
        wait_state(service, WAIT, |s| s.state == ServiceState::Respawn)
            .unwrap_or_else(|| panic!("{name}: {:?}", full_state(service)));
        // Both lines are written before the exit is seen: the last one is whole.
        assert!(
            wait_for(&[service], WAIT, || sv(&["log", name]).1
                == "starting\ncannot bind: address in use\n"),
            "{name}: sv log: {:?}",
            sv(&["log", name])
        );
        let (_, status, _) = sv(&["status", name]);
        assert!(
            status.contains("; last output: cannot bind: address in use]"),
            "{status}"
        );
    }
    // A name that is no service directory is an error, not an empty log.
    let missing = root.path().join("missing");
    let (code, shown, error) = sv(&["log", missing.to_str().unwrap()]);
    assert_eq!((code, shown.as_str()), (1, ""));
    assert!(
        error.ends_with("unable to change to service directory: file does not exist\n"),
        "{error}"
    );
    // The destinations got the lines too.
    assert_eq!(
        read(&kmsg),
        "<6>to-kmsg: starting\n<3>to-kmsg: cannot bind: address in use\n"
    );
    assert_eq!(read(&console_out), "starting\n");
    assert_eq!(
        read(&logged_service.join("logged")),
        "starting\ncannot bind: address in use\n"
    );
}

#[test]
fn the_tail_outlives_the_runsv_that_wrote_it() {
    let root = tempfile::tempdir().unwrap();
    let (service, kmsg) = relayed_service(
        root.path(),
        "talker",
        "#!/bin/sh\necho \"hello from $$\"\nexec sleep 1000\n",
    );
    let mut first = runsv_kmsg(&service, &kmsg);
    let pid = wait_running(&service);
    let name = service.to_str().unwrap();
    let sv_log = || run(Command::new(binary("sv")).args(["log", name]), WAIT).1;
    assert!(wait_for(&[&service], WAIT, || sv_log()
        == format!("hello from {pid}\n")));
    let _second = replace_runsv(&mut first, pid, || runsv_kmsg(&service, &kmsg));
    // The adopted service is restarted; the new one's line follows the old one's.
    control(&service, "k");
    let new_pid = wait_state(&service, WAIT, |s| {
        s.state == ServiceState::Running && s.pid != pid
    })
    .expect("restarted")
    .pid;
    assert!(
        wait_for(&[&service], WAIT, || sv_log()
            == format!("hello from {pid}\nhello from {new_pid}\n")),
        "{:?}",
        sv_log()
    );
}

#[test]
fn runits_sv_and_daemontools_svstat_read_runtree_status() {
    if !Path::new("/usr/bin/sv").exists() || !Path::new("/usr/bin/svstat").exists() {
        eprintln!("skipped: runit's sv or daemontools' svstat not installed");
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let service = runit_service(root.path(), "a", SLEEP);
    write_script(
        &service.join("log/run"),
        "#!/bin/sh\nexec cat > /dev/null\n",
    );
    let _runsv = runsv(&service);
    let pid = wait_running(&service);
    let log_pid = wait_running(&service.join("log"));
    let runit_sv = |args: &[&str]| run(Command::new("/usr/bin/sv").args(args).arg(&service), WAIT);
    let (code, out, _) = runit_sv(&["status"]);
    assert_eq!(code, 0);
    let expected = |p: u32, lp: u32| {
        format!(
            "run: {}: (pid {p}) 0s; run: log: (pid {lp}) 0s\n",
            service.display()
        )
    };
    assert_eq!(out.replace(" 1s", " 0s"), expected(pid, log_pid));
    let (code, out, _) = runit_sv(&["-w", "5", "down"]);
    assert_eq!(code, 0, "{out}");
    // runit's `ok:` line shows the service only, not its log.
    assert_eq!(
        out.replace(" 1s", " 0s"),
        format!("ok: down: {}: 0s, normally up\n", service.display())
    );
    let (code, out, _) = run(Command::new("/usr/bin/svstat").arg(&service), WAIT);
    assert_eq!(code, 0);
    assert!(
        out.starts_with(&format!("{}: down ", service.display()))
            && out.ends_with("seconds, normally up\n"),
        "{out}"
    );
    let (code, out, _) = runit_sv(&["-w", "5", "up"]);
    assert_eq!(code, 0, "{out}");
    let pid = status(&service).unwrap().pid;
    assert!(
        out.starts_with(&format!("ok: run: {}: (pid {pid}) ", service.display())),
        "{out}"
    );
    let (_, out, _) = run(Command::new("/usr/bin/svstat").arg(&service), WAIT);
    assert!(
        out.starts_with(&format!("{}: up (pid {pid}) ", service.display())),
        "{out}"
    );
    let (code, out, _) = runit_sv(&["-w", "5", "exit"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out,
        format!("ok: {}: runsv not running\n", service.display())
    );
}

#[test]
fn files_that_cannot_be_written_are_retried_and_supervision_goes_on() {
    let root = tempfile::tempdir().unwrap();
    let service = runit_service(root.path(), "a", SLEEP);
    let log = root.path().join("stderr");
    let mut command = Command::new(binary("runsv"));
    command
        .arg(&service)
        .stderr(fs::File::create(&log).unwrap());
    let _runsv = Guard::spawn(&mut command);
    let pid = wait_running(&service);
    // A directory where runsv writes state.new: every write of `state` fails (as on
    // a full disk or a read-only file system, which root would not see as such).
    let blocker = service.join("supervise/state.new");
    fs::create_dir(&blocker).unwrap();
    control(&service, "d");
    // Supervision goes on: the service is stopped, and runit's files still follow.
    assert!(wait_for(&[], WAIT, || !alive(pid)), "d was obeyed");
    assert!(wait_for(&[&service.join("supervise")], WAIT, || {
        status(&service).is_some_and(|s| s.pid == 0)
    }));
    // Not stale: where no new file can be made, the old one is rewritten in place.
    assert!(wait_for(&[&service.join("supervise")], WAIT, || {
        full_state(&service).is_some_and(|s| s.state == ServiceState::Down)
    }));
    assert!(wait_for(&[root.path()], WAIT, || read(&log)
        .contains("warning: unable to write supervise/state: ")));
    // Once the cause is gone, the state is written again without any new event.
    fs::remove_dir(&blocker).unwrap();
    assert!(
        wait_for(&[root.path()], WAIT, || read(&log)
            .contains("supervise/ is written again")),
        "{}",
        read(&log)
    );
    let state = wait_in(&service, ServiceState::Down);
    assert_eq!(state.pid, 0);
}

#[test]
fn at_the_fd_limit_a_start_fails_with_the_cause_and_is_retried() {
    if !Path::new("/usr/bin/prlimit").exists() {
        eprintln!("SKIPPED: util-linux's prlimit is not installed");
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let service = runit_service(root.path(), "a", SLEEP);
    let runsv_guard = runsv(&service);
    let first = wait_running(&service);
    let runsv_pid = runsv_guard.pid().as_raw();
    // Only the soft limit: raising it back needs no privilege.
    let prlimit = |limit: usize| {
        let (code, _, err) = run(
            Command::new("/usr/bin/prlimit")
                .arg(format!("--pid={runsv_pid}"))
                .arg(format!("--nofile={limit}:")),
            WAIT,
        );
        assert_eq!(code, 0, "prlimit: {err}");
    };
    // One fd number to spare below the limit: enough to write a file, not for the
    // pipe a start needs. (The limit bounds fd numbers, not their count.)
    let open: Vec<usize> = fs::read_dir(format!("/proc/{runsv_pid}/fd"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    let second_free = (0..).filter(|n| !open.contains(n)).nth(1).unwrap();
    prlimit(second_free);
    signal(first, Signal::SIGKILL);
    let failed = wait_in(&service, ServiceState::Error);
    assert!(
        failed
            .reason
            .contains("Too many open files (EMFILE); retrying in"),
        "{}",
        failed.reason
    );
    // runsv is still there and answers.
    assert!(supervisor_up(&service));
    // Once fds are available again, the retry starts it.
    prlimit(1024);
    let again = wait_state(&service, WAIT, |s| {
        s.state == ServiceState::Running && s.pid != first
    })
    .unwrap();
    assert!(alive(again.pid));
}

/// Runs `exec` as the oneshot YAML service `name`, its output relayed to a stand-in
/// for /dev/kmsg, until it is ok and the relayed text satisfies `done`; that text.
fn relayed_to_kmsg(name: &str, exec: &str, done: impl Fn(&str) -> bool) -> String {
    let root = tempfile::tempdir().unwrap();
    let kmsg = kmsg_file(root.path());
    let yaml = format!("exec: {exec}\noneshot: true\n");
    let service = yaml_service(root.path(), name, &yaml);
    let _runsv = runsv_kmsg(&service, &kmsg);
    wait_in(&service, ServiceState::Ok);
    wait_text(root.path(), &kmsg, done);
    read(&kmsg)
}

#[test]
fn the_kmsg_relay_splits_long_lines_at_the_record_limit_and_keeps_a_last_partial_line() {
    // A 3000-character line, then a last line without a newline; a oneshot, so
    // nothing follows that could end that line.
    let text = relayed_to_kmsg(
        "talker",
        "sh -c 'printf \"%03000d\\n\" 0; printf \"last words\"'",
        |text| text.ends_with("last words\n"),
    );
    let records: Vec<&str> = text.lines().collect();
    for record in &records {
        // /dev/kmsg refuses a write of more than 1024 bytes (the line would be lost).
        assert!(record.len() < 1024, "a record of {} bytes", record.len());
        assert!(record.starts_with("<6>talker: "), "{record}");
    }
    let body: String = records[..records.len() - 1]
        .iter()
        .map(|r| &r["<6>talker: ".len()..])
        .collect();
    assert_eq!(body, "0".repeat(3000), "the long line, whole, in order");
    assert_eq!(records.last(), Some(&"<6>talker: last words"));
}

#[test]
fn the_kmsg_relay_keeps_stdout_and_stderr_apart_by_priority() {
    let text = relayed_to_kmsg("both", "sh -c 'echo to out; echo to err >&2'", |text| {
        text.lines().count() == 2
    });
    let mut records: Vec<&str> = text.lines().collect();
    records.sort();
    // <3> is the kernel's "err" level, <6> "info": `dmesg --level=err` shows stderr.
    assert_eq!(records, ["<3>both: to err", "<6>both: to out"]);
}

#[test]
fn a_console_nobody_reads_blocks_neither_the_service_nor_runsv_and_drops_are_counted() {
    use std::io::Read;
    use std::os::fd::AsFd;
    let root = tempfile::tempdir().unwrap();
    let lines = 200_000;
    let service = yaml_service(
        root.path(),
        "talker",
        &format!(
            "exec: sh -c 'i=1; while [ $i -le {lines} ]; do echo line-$i; i=$((i+1)); done'\noneshot: true\n"
        ),
    );
    // runsv's stderr is a pipe nobody reads (yet), and it has no kmsg: its relay
    // writes to that console, which fills at once.
    let (console_read, console_write) = nix::unistd::pipe().unwrap();
    let mut command = Command::new(binary("runsv"));
    command
        .arg(&service)
        .env("RUNTREE_KMSG", root.path().join("no/such/kmsg"))
        .stderr(std::process::Stdio::from(console_write));
    let _runsv = Guard::spawn(&mut command);
    // The service writes everything and ends, though nobody reads the console.
    let done = wait_state(&service, Duration::from_secs(60), |s| {
        s.state == ServiceState::Ok
    });
    assert!(done.is_some(), "{:?}", full_state(&service));
    // And runsv answers meanwhile.
    let (code, out, err) = sv(&["status", service.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("[ok]"), "{out}");
    // Now the console reads: what waited comes first, then the count of the rest.
    let mut console = fs::File::from(console_read);
    let mut text = String::new();
    let deadline = Instant::now() + WAIT;
    while !text.contains("lines dropped") && Instant::now() < deadline {
        let mut fds = [nix::poll::PollFd::new(
            console.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(1000u16));
        let mut buffer = [0u8; 65536];
        if let Ok(n) = console.read(&mut buffer) {
            text.push_str(&String::from_utf8_lossy(&buffer[..n]));
        }
    }
    let note = text
        .lines()
        .find(|l| l.contains("lines dropped"))
        .unwrap_or_else(|| panic!("no drop count in {} bytes", text.len()));
    let dropped: usize = note
        .strip_prefix("talker: ")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{note}"));
    let delivered: Vec<&str> = text
        .lines()
        .take_while(|l| !l.contains("lines dropped"))
        .collect();
    // Whole lines, in order, from the first; every line delivered or counted.
    for (i, line) in delivered.iter().enumerate() {
        assert_eq!(*line, format!("talker: line-{}", i + 1));
    }
    assert!(dropped > 0);
    assert_eq!(delivered.len() + dropped, lines, "{note}");
}

#[test]
fn a_chatty_service_outlives_its_killed_runsv_without_losing_a_line() {
    let root = tempfile::tempdir().unwrap();
    // Writes a numbered line every few ms, and its count to a file the test can watch.
    let (service, kmsg) = relayed_service(
        root.path(),
        "chatty",
        "#!/bin/sh\ni=0\nwhile :; do i=$((i+1)); echo tick-$i; echo $i > count.new; mv count.new count; sleep 0.005; done\n",
    );
    let count = || {
        read(&service.join("count"))
            .trim()
            .parse::<u32>()
            .unwrap_or(0)
    };
    let start = || runsv_kmsg(&service, &kmsg);
    let mut first = start();
    let pid = wait_running(&service);
    assert!(wait_for(&[&service], WAIT, || count() >= 5));
    kill_runsv(&mut first, pid);
    // It goes on writing while no runsv runs: the keeper holds the pipe open, so its
    // lines wait there instead of killing it with SIGPIPE.
    let at_kill = count();
    assert!(
        wait_for(&[&service], WAIT, || count() >= at_kill + 20),
        "the service stopped writing at {} (killed by SIGPIPE?)",
        count()
    );
    let mut second = start();
    second.also_kill(pid);
    // Adopted, never restarted.
    assert_eq!(
        full_state(&service).unwrap().pid,
        pid,
        "adopted, never restarted"
    );
    let target = format!("chatty: tick-{}\n", count() + 20);
    wait_text(root.path(), &kmsg, |text| text.contains(&target));
    // Every line once, in order, across both runsv.
    let ticks: Vec<u32> = read(&kmsg)
        .lines()
        .filter_map(|l| l.strip_prefix("<6>chatty: tick-")?.parse().ok())
        .collect();
    let expected: Vec<u32> = (1..=ticks.len() as u32).collect();
    assert_eq!(ticks, expected, "no line lost or doubled");
    assert!(alive(pid));
}

#[test]
fn when_fork_fails_with_eagain_the_cause_is_in_the_state_and_the_start_retried() {
    // RLIMIT_NPROC does not bind root: runsv runs as nobody, allowed no process beyond
    // those nobody already has and runsv itself.
    if !nix::unistd::geteuid().is_root()
        || !Path::new("/usr/bin/prlimit").exists()
        || !Path::new("/usr/bin/setpriv").exists()
    {
        eprintln!("SKIPPED: needs root, prlimit and setpriv (util-linux)");
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let service = runit_service(root.path(), "a", SLEEP);
    let nobody = nix::unistd::Uid::from_raw(65534);
    let group = nix::unistd::Gid::from_raw(65534);
    for path in [root.path(), &service, &service.join("run")] {
        nix::unistd::chown(path, Some(nobody), Some(group)).unwrap();
    }
    let theirs = fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            use std::os::unix::fs::MetadataExt;
            e.file_name()
                .to_str()
                .is_some_and(|n| n.parse::<u32>().is_ok())
                && e.metadata().is_ok_and(|m| m.uid() == 65534)
        })
        .count();
    let mut command = Command::new("/usr/bin/prlimit");
    command
        .arg(format!("--nproc={}:", theirs + 1))
        .args([
            "/usr/bin/setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
        ])
        .arg(binary("runsv"))
        .arg(&service);
    let _runsv = Guard::spawn(&mut command);
    let failed = wait_state(&service, WAIT, |s| {
        s.state == ServiceState::Error && s.reason.contains("(EAGAIN)")
    })
    .unwrap_or_else(|| panic!("{:?}", full_state(&service)));
    assert_eq!(
        failed.reason,
        "unable to start ./run: Try again (EAGAIN); retrying in 1s"
    );
    assert!(supervisor_up(&service));
    // Retried on the growing delay, without a hot loop.
    wait_state(&service, WAIT, |s| s.reason.ends_with("retrying in 2s"))
        .unwrap_or_else(|| panic!("{:?}", full_state(&service)));
}
