//! init as PID 1 of a fresh PID + mount namespace (`unshare --pid --fork --kill-child
//! --mount-proc`), with a stand-in svdir: a shell script that keeps svdir's contract
//! (started as `svdir SCANDIR`; on SIGTERM stops its "services" in order, then exits
//! 0 for a clean stop or 1 for an error). The harness takes the scan directory and the
//! svdir path as parameters, so the real svdir can take the stand-in's place.
//!
//! Needs root (unshare). Every run is bounded by `timeout -k` outside and by the
//! test's own deadlines; everything runs in one process group that the Guard kills.

use nix::sys::signal::{kill, Signal};
use runtree::ns::{children, context_switches, root, Ns, Setup};
use runtree::wait_for;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn events(ns: &Ns) -> Vec<String> {
    ns.marker("events").lines().map(str::to_string).collect()
}

fn assert_ordered_stop(ns: &Ns) {
    assert_eq!(
        events(ns),
        vec!["stop-begin", "stopped b", "stopped a"],
        "{}",
        ns.report()
    );
    let log = ns.log();
    let phases = [
        "stopping services: SIGTERM to svdir",
        "sending TERM to all processes",
        "syncing disks",
        "exiting with status",
    ];
    let mut at = 0;
    for phase in phases {
        let found = log[at..]
            .find(phase)
            .unwrap_or_else(|| panic!("phase {phase:?} missing or out of order\n{log}"));
        at += found + phase.len();
    }
}

#[test]
fn starts_svdir_clean_and_idle_then_sigterm_stops_in_order() {
    runtree::skip_unless!(root());
    let scandir = tempfile::tempdir().expect("tempdir");
    let mut ns = Ns::start(Setup {
        svdir: None,
        scandir: Some(scandir.path()),
        env: &[],
    });
    ns.wait_lines("ready", 1, Duration::from_secs(10));
    let log = ns.log();
    assert!(
        log.contains("in container mode (reboot(RB_DISABLE_CAD) says EINVAL"),
        "container detection:\n{log}"
    );
    let start = ns.marker("starts");
    assert!(
        start.contains(&format!("scandir={} ", scandir.path().display())),
        "svdir got the scan directory: {start}"
    );
    assert!(
        start.contains("SigBlk:0000000000000000") && start.contains("SigIgn:0000000000000000"),
        "svdir starts with an empty mask and default dispositions: {start}"
    );

    // Idle: nothing happens, so init must not wake up at all.
    let init = ns.init_pid();
    let before = context_switches(init);
    std::thread::sleep(Duration::from_millis(1500));
    let after = context_switches(init);
    assert_eq!(before, after, "an idle init woke up\n{}", ns.report());

    kill(init, Signal::SIGTERM).expect("SIGTERM to init");
    ns.assert_exit(0, Duration::from_secs(20));
    assert_ordered_stop(&ns);
    assert!(!ns.log().contains("sending KILL"), "{}", ns.report());
}

#[test]
fn reaps_a_burst_of_1000_orphans() {
    runtree::skip_unless!(root());
    let mut ns = Ns::simple(&[(
        "STANDIN_ONSTART",
        // Each `(sleep 1 &)` leaves a sleep whose parent is gone: an orphan for PID 1.
        "i=0; while [ $i -lt 1000 ]; do (sleep 1 &); i=$((i+1)); done; echo done >> $MARKERS/burst",
    )]);
    ns.wait_lines("ready", 1, Duration::from_secs(10));
    let init = ns.init_pid();
    ns.wait_lines("burst", 1, Duration::from_secs(40));
    let orphans = children(init).iter().filter(|p| p.comm == "sleep").count();
    assert!(
        orphans > 0,
        "the orphans were not reparented to the namespace's init"
    );
    // Once they have all exited, none may be left as a zombie: only svdir remains.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut left = children(init);
    while Instant::now() < deadline {
        left = children(init);
        if left.len() == 1 && left[0].state != 'Z' && left[0].comm == "svdir" {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        left.len() == 1 && left[0].comm == "svdir",
        "init's children after the burst ({orphans} orphans seen): {left:?}"
    );
    kill(init, Signal::SIGTERM).expect("SIGTERM to init");
    ns.assert_exit(0, Duration::from_secs(20));
}

#[test]
fn svdir_killed_is_restarted_after_a_delay() {
    runtree::skip_unless!(root());
    let mut ns = Ns::simple(&[]);
    ns.wait_lines("ready", 1, Duration::from_secs(10));
    let init = ns.init_pid();
    let svdir = children(init)
        .into_iter()
        .find(|p| p.comm == "svdir")
        .unwrap_or_else(|| panic!("svdir not found\n{}", ns.report()));
    kill(svdir.pid, Signal::SIGKILL).expect("SIGKILL svdir");
    let killed = Instant::now();
    ns.wait_lines("ready", 2, Duration::from_secs(10));
    let delay = killed.elapsed();
    // It ran for less than 1 s, so the first restart waits 100 ms.
    assert!(
        delay >= Duration::from_millis(90) && delay < Duration::from_secs(8),
        "restart after {delay:?}\n{}",
        ns.report()
    );
    ns.assert_logged("svdir was killed by SIGKILL after ");
    ns.assert_logged("restarting it in 0.1s");
    assert_eq!(ns.marker("starts").lines().count(), 2);

    // The first svdir's services are orphans now; the sweep ends them with TERM.
    kill(init, Signal::SIGTERM).expect("SIGTERM to init");
    ns.assert_exit(0, Duration::from_secs(20));
    assert_ordered_stop(&ns);
}

#[test]
fn svdir_reporting_an_error_makes_status_1() {
    runtree::skip_unless!(root());
    let mut ns = Ns::simple(&[("STANDIN_EXIT", "1")]);
    ns.wait_lines("ready", 1, Duration::from_secs(10));
    ns.assert_stops(Signal::SIGTERM, 1);
    assert_ordered_stop(&ns);
    ns.assert_logged("svdir exited 1: a service ended in error");
}

#[test]
fn svdir_missing_its_deadline_is_killed_and_makes_status_2() {
    runtree::skip_unless!(root());
    let mut ns = Ns::simple(&[
        ("STANDIN_HANG", "1"),
        ("RUNTREE_SHUTDOWN_TIMEOUT", "1"),
        ("RUNTREE_KILL_GRACE", "10"),
    ]);
    ns.wait_lines("ready", 1, Duration::from_secs(10));
    // The deadline, then a sweep that ends early: the hung svdir's sleeps obey TERM.
    ns.assert_stops_within(2, Duration::from_millis(900)..Duration::from_secs(6));
    ns.assert_logged("svdir did not stop within 1.0s");
}

#[test]
fn processes_ignoring_term_are_killed_after_the_grace_and_make_status_3() {
    runtree::skip_unless!(root());
    let mut ns = Ns::simple(&[
        (
            "STANDIN_ONSTART",
            "exec sh -c 'trap \"\" TERM; echo >> $MARKERS/stubborn; exec sleep 1000'",
        ),
        ("RUNTREE_SHUTDOWN_TIMEOUT", "60"),
        ("RUNTREE_KILL_GRACE", "1"),
    ]);
    ns.wait_lines("stubborn", 1, Duration::from_secs(10));
    // About the grace (1 s), nowhere near the global deadline (60 s).
    ns.assert_stops_within(3, Duration::from_millis(900)..Duration::from_secs(8));
    assert_ordered_stop(&ns);
    ns.assert_logged("sending KILL to all processes");
}

#[test]
fn sweep_returns_as_soon_as_nothing_is_left() {
    runtree::skip_unless!(root());
    // A leftover outside svdir's care that obeys TERM: the sweep must not sit out the
    // 30 s grace.
    let mut ns = Ns::simple(&[
        ("STANDIN_ONSTART", "sleep 1000 & echo >> $MARKERS/leftover"),
        ("RUNTREE_KILL_GRACE", "30"),
    ]);
    ns.wait_lines("leftover", 1, Duration::from_secs(10));
    ns.assert_stops_within(0, Duration::ZERO..Duration::from_secs(8));
    assert!(!ns.log().contains("sending KILL"), "{}", ns.report());
}

#[test]
fn init_0_from_inside_stops_in_order_and_exits_0() {
    runtree::skip_unless!(root());
    let mut ns = Ns::simple(&[("STANDIN_ONSTART", "\"$INIT\" 0")]);
    ns.assert_exit(0, Duration::from_secs(20));
    assert_ordered_stop(&ns);
    ns.assert_logged("SIGUSR2: poweroff requested: stopping the container");
    ns.assert_logged("exiting with status 0 (poweroff requested)");
}

#[test]
fn init_6_and_halt_are_accepted_too() {
    runtree::skip_unless!(root());
    for (word, signal, action) in [("6", "SIGINT", "reboot"), ("halt", "SIGUSR1", "halt")] {
        let onstart = format!("\"$INIT\" {word}");
        let mut ns = Ns::simple(&[("STANDIN_ONSTART", &onstart)]);
        ns.assert_exit(0, Duration::from_secs(20));
        assert_ordered_stop(&ns);
        ns.assert_logged(&format!("{signal}: {action} requested"));
    }
}

#[test]
fn client_errors_unprivileged_and_usage() {
    runtree::skip_unless!(root());
    if Command::new("setpriv")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_err()
    {
        eprintln!("skipped: setpriv (util-linux) is not installed");
        return;
    }
    // Inside the namespace PID 1 is our init: these clients can only ever reach it.
    let onstart = r#"
        setpriv --reuid=65534 --regid=65534 --clear-groups "$INIT" 0 > $MARKERS/perm.out 2>&1
        echo $? > $MARKERS/perm.rc
        "$INIT" bogus > $MARKERS/usage.out 2>&1; echo $? > $MARKERS/usage.rc
        "$INIT" > /dev/null 2>&1; echo $? > $MARKERS/noargs.rc
        "$INIT" --help > $MARKERS/help.out 2>&1; echo $? > $MARKERS/help.rc
        echo done >> $MARKERS/clients
    "#;
    let mut ns = Ns::simple(&[("STANDIN_ONSTART", onstart)]);
    ns.wait_lines("clients", 1, Duration::from_secs(10));
    assert_eq!(ns.marker("perm.rc").trim(), "111", "{}", ns.report());
    assert_eq!(
        ns.marker("perm.out").trim(),
        "init: unable to signal PID 1: Operation not permitted"
    );
    assert_eq!(ns.marker("usage.rc").trim(), "100");
    assert!(ns.marker("usage.out").contains("unknown request: bogus"));
    assert!(ns.marker("usage.out").contains("usage: init"));
    assert_eq!(ns.marker("noargs.rc").trim(), "100");
    assert_eq!(ns.marker("help.rc").trim(), "0");
    assert!(ns.marker("help.out").contains("init 0 | poweroff"));
    // None of them started a shutdown.
    assert!(!ns.log().contains("requested"), "{}", ns.report());
    ns.assert_stops(Signal::SIGTERM, 0);
}

#[test]
fn podmans_stop_signal_for_sbin_init_stops_the_container_in_order() {
    runtree::skip_unless!(root());
    let mut ns = Ns::simple(&[]);
    ns.wait_lines("ready", 1, Duration::from_secs(10));
    // systemd's SIGRTMIN+3, 37 as podman sends it: a number, whatever libc the image has.
    // SAFETY: kill with a valid pid and signal number.
    let sent = unsafe { nix::libc::kill(ns.init_pid().as_raw(), 37) };
    assert_eq!(sent, 0, "signal 37 to init");
    ns.assert_exit(0, Duration::from_secs(20));
    ns.assert_logged("SIGRTMIN+3 (37): poweroff requested: stopping the container");
    assert_ordered_stop(&ns);
}

fn with_main(args: &[&str]) -> Ns {
    let mut full = vec!["--"];
    full.extend_from_slice(args);
    Ns::start_with_args(
        Setup {
            svdir: None,
            scandir: None,
            env: &[],
        },
        &full,
    )
}

#[test]
fn main_program_exit_code_is_the_containers_after_an_ordered_stop() {
    runtree::skip_unless!(root());
    // The main program waits for the tree (the stand-in's ready marker), then exits 3.
    let mut ns = with_main(&[
        "sh",
        "-c",
        "while ! [ -s $MARKERS/ready ]; do sleep 0.05; done; exit 3",
    ]);
    ns.assert_exit(3, Duration::from_secs(30));
    ns.assert_logged("the main program exited 3: poweroff requested: stopping the container");
    assert_ordered_stop(&ns);
    assert_eq!(ns.marker("exitcode"), "3\n");
}

#[test]
fn signals_to_init_reach_the_main_program_and_its_signal_makes_the_code() {
    runtree::skip_unless!(root());
    // TERM is caught and becomes exit 7; INT (Ctrl-C) kills it: 128 + 2.
    for (signal, code) in [(Signal::SIGTERM, 7), (Signal::SIGINT, 130)] {
        let mut ns = with_main(&[
            "sh",
            "-c",
            "trap 'exit 7' TERM; echo up >> $MARKERS/main; while :; do sleep 0.05; done",
        ]);
        ns.wait_lines("main", 1, Duration::from_secs(10));
        ns.wait_lines("ready", 1, Duration::from_secs(10));
        ns.signal_init(signal);
        ns.assert_exit(code, Duration::from_secs(30));
        ns.assert_logged(&format!("the main program exited {code}"));
        // It was passed on, not taken as a stop request of init's own.
        assert!(
            !ns.log().contains(&format!("{}: ", signal.as_str())),
            "{}",
            ns.report()
        );
        assert_ordered_stop(&ns);
    }
}

#[test]
fn a_main_program_that_cannot_run_is_127() {
    runtree::skip_unless!(root());
    let mut ns = with_main(&["/nonexistent/program"]);
    ns.assert_exit(127, Duration::from_secs(30));
    ns.assert_logged("cannot start the main program");
}

#[test]
fn ignored_signals_are_reported_once_and_change_nothing() {
    runtree::skip_unless!(root());
    // SIGCONT goes first and alone: the kernel discards pending stop signals (TSTP,
    // TTIN, TTOU) when a SIGCONT is sent, and a pending SIGCONT when one of them is.
    let onstart = "kill -CONT 1; sleep 0.3; for s in HUP HUP QUIT ALRM TSTP TTIN TTOU WINCH PIPE 34 64; do kill -$s 1; done; echo >> $MARKERS/sent";
    let mut ns = Ns::simple(&[("STANDIN_ONSTART", onstart)]);
    ns.wait_lines("sent", 1, Duration::from_secs(10));
    let log_path = ns.dir.path().join("init.log");
    let held = wait_for(&[&log_path], Duration::from_secs(5), || {
        ns.log().contains("ignoring SIGRTMAX (64)")
    });
    assert!(held, "{}", ns.report());
    let log = ns.log();
    assert_eq!(log.matches("ignoring SIGHUP").count(), 1, "{log}");
    assert!(log.contains("ignoring SIGRTMIN (34)"), "{log}");
    for name in [
        "SIGQUIT", "SIGALRM", "SIGTSTP", "SIGWINCH", "SIGCONT", "SIGPIPE",
    ] {
        assert!(log.contains(&format!("ignoring {name}")), "{name}\n{log}");
    }
    assert!(!log.contains("requested"), "{log}");
    assert_eq!(ns.marker("starts").lines().count(), 1);
    ns.assert_stops(Signal::SIGTERM, 0);
}

#[test]
fn missing_svdir_is_retried_and_stop_still_completes() {
    runtree::skip_unless!(root());
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("no-such-svdir");
    let mut ns = Ns::start(Setup {
        svdir: Some(&missing),
        scandir: None,
        env: &[],
    });
    let log_path = ns.dir.path().join("init.log");
    let held = wait_for(&[&log_path], Duration::from_secs(10), || {
        ns.log().contains("retrying in 0.1s")
    });
    assert!(held, "{}", ns.report());
    ns.signal_init(Signal::SIGTERM);
    // No svdir ever stopped the services: not a clean stop.
    ns.assert_exit(1, Duration::from_secs(20));
    ns.assert_logged("svdir is not running");
}
