//! The machine as a pure function: every state × event, and the rules in detail.

use super::*;

use super::sim::{Sim, T0};

/// The clocks `offset_ms` after the simulation's start.
fn at(offset_ms: u64) -> Now {
    super::sim::at(T0 + Duration::from_millis(offset_ms))
}

pub(super) fn longrun() -> Settings {
    Settings::default()
}

pub(super) fn oneshot() -> Settings {
    Settings {
        oneshot: true,
        ..Settings::default()
    }
}

pub(super) fn with_finish() -> Settings {
    Settings {
        has_finish: true,
        ..Settings::default()
    }
}

pub(super) fn notification() -> Settings {
    Settings {
        readiness: ReadinessKind::Notification,
        ..Settings::default()
    }
}

#[test]
fn a_fast_death_waits_with_a_doubling_capped_delay() {
    let mut h = Sim::new(
        Settings {
            restart_delay_max: Duration::from_secs(4),
            ..longrun()
        },
        Want::Up,
    );
    let mut delays = Vec::new();
    for _ in 0..5 {
        h.advance(200)
            .exit_process(Process::Run, ExitStatus::Exited(1));
        assert_eq!(h.state(), ServiceState::Respawn);
        let delay = h.machine.deadline().unwrap() - h.now;
        delays.push(delay.as_secs());
        h.fire_timer();
        assert_eq!(h.state(), ServiceState::Running);
    }
    assert_eq!(delays, [1, 2, 4, 4, 4]);
    assert_eq!(h.machine.full_state().restarts, 5);
    assert_eq!(
        h.machine.full_state().last_exit,
        Some(ExitStatus::Exited(1))
    );
}

#[test]
fn a_stable_run_restarts_at_once_and_resets_the_delay() {
    let mut h = Sim::new(longrun(), Want::Up);
    h.advance(100)
        .exit_process(Process::Run, ExitStatus::Exited(1));
    h.fire_timer();
    h.advance(100)
        .exit_process(Process::Run, ExitStatus::Exited(1));
    assert_eq!(
        h.machine.deadline().unwrap() - h.now,
        Duration::from_secs(2)
    );
    h.fire_timer();
    let old = h.machine.pid_of(Process::Run).unwrap();
    h.advance(1500)
        .exit_process(Process::Run, ExitStatus::Signaled(9));
    assert_eq!(h.state(), ServiceState::Running, "restarted at once");
    assert_ne!(h.machine.pid_of(Process::Run).unwrap(), old);
    h.advance(100)
        .exit_process(Process::Run, ExitStatus::Exited(1));
    assert_eq!(
        h.machine.deadline().unwrap() - h.now,
        Duration::from_secs(1),
        "the delay starts over"
    );
    assert_eq!(h.machine.reason(), "exited 1; restarting in 1s");
}

#[test]
fn restart_by_t_is_immediate_even_for_a_young_service() {
    let mut h = Sim::new(longrun(), Want::Up);
    h.advance(10).control(b't');
    assert!(h.signalled(Target::Group(Process::Run), Signal::SIGTERM));
    assert!(
        !h.signalled(Target::Group(Process::Run), Signal::SIGCONT),
        "want up: no CONT"
    );
    h.exit_process(Process::Run, ExitStatus::Signaled(15));
    assert_eq!(h.state(), ServiceState::Running);
}

#[test]
fn down_sends_the_stop_signal_then_cont_and_control_d_and_kills_at_the_timeout() {
    let mut h = Sim::new(
        Settings {
            stop_signal: Signal::SIGINT,
            stop_timeout: Duration::from_secs(3),
            ..longrun()
        },
        Want::Up,
    );
    h.control(b'd');
    assert_eq!(
        h.actions,
        vec![
            Action::Signal {
                target: Target::Group(Process::Run),
                signal: Signal::SIGINT,
                custom: Some(Control::Term)
            },
            Action::Signal {
                target: Target::Group(Process::Run),
                signal: Signal::SIGCONT,
                custom: None
            },
            Action::ControlScript(Control::Down),
        ]
    );
    let status = h.machine.status();
    assert_eq!((status.want, status.term_sent), (b'd', true));
    h.advance(2999).event(Event::Timer);
    assert!(h.actions.is_empty(), "not before the timeout");
    h.advance(1).event(Event::Timer);
    assert!(h.signalled(Target::Group(Process::Run), Signal::SIGKILL));
    assert_eq!(h.machine.reason(), "did not stop within 3s; sent SIGKILL");
    h.exit_process(Process::Run, ExitStatus::Signaled(9));
    assert_eq!(h.state(), ServiceState::Down);
    assert!(!h.machine.status().term_sent);
}

#[test]
fn finish_gets_runits_arguments_and_k_during_finish_does_not_run_it_twice() {
    let mut h = Sim::new(with_finish(), Want::Up);
    h.control(b'k');
    assert!(h.signalled(Target::Group(Process::Run), Signal::SIGKILL));
    h.exit_process(Process::Run, ExitStatus::Signaled(9));
    assert_eq!(h.state(), ServiceState::Finishing);
    assert_eq!(
        h.machine.full_state().last_exit.unwrap().finish_arguments(),
        (-1, 9)
    );
    assert_eq!(h.machine.status().run_state, RunState::Finish);
    h.control(b'k');
    assert!(h.signalled(Target::Group(Process::Finish), Signal::SIGKILL));
    h.exit_process(Process::Finish, ExitStatus::Signaled(9));
    let spawned_finish = h.actions.contains(&Action::Spawn(Process::Finish));
    assert!(!spawned_finish, "finish runs once");
    // k was a stop request: the service comes back at once.
    assert_eq!(h.state(), ServiceState::Running);
}

#[test]
fn a_oneshot_ends_ok_or_error_and_runs_again_only_when_asked() {
    let mut h = Sim::new(oneshot(), Want::Up);
    assert_eq!(h.state(), ServiceState::Starting);
    h.exit_process(Process::Run, ExitStatus::Exited(0));
    assert_eq!(h.state(), ServiceState::Ok);
    assert_eq!(h.machine.want(), Want::Down, "so that sv up runs it again");
    h.advance(10_000).event(Event::Timer);
    assert_eq!(h.state(), ServiceState::Ok, "never restarted by itself");
    h.control(b'u');
    assert_eq!(h.state(), ServiceState::Starting);
    h.exit_process(Process::Run, ExitStatus::Exited(4));
    assert_eq!(h.state(), ServiceState::Error);
    assert_eq!(h.machine.reason(), "exited 4");
    h.control(b'o');
    assert_eq!(h.state(), ServiceState::Starting);
}

#[test]
fn an_unexecutable_binary_is_an_error_retried_on_the_growing_delay() {
    let mut h = Sim::new(longrun(), Want::Down);
    h.machine.on(at(0), Event::Control(Control::Up));
    let actions = h.machine.on(
        at(0),
        Event::SpawnFailed {
            process: Process::Run,
            reason: "unable to start ./run: file does not exist".into(),
        },
    );
    assert!(actions.is_empty());
    assert_eq!(h.state(), ServiceState::Error);
    assert_eq!(
        h.machine.reason(),
        "unable to start ./run: file does not exist; retrying in 1s"
    );
    assert_eq!(h.machine.deadline(), Some(T0 + Duration::from_secs(1)));
    let retry = h.machine.on(at(1000), Event::Timer);
    assert_eq!(
        retry,
        vec![
            Action::ControlScript(Control::Up),
            Action::Spawn(Process::Run)
        ]
    );
    h.machine.on(
        at(1000),
        Event::SpawnFailed {
            process: Process::Run,
            reason: "unable to start ./run: access denied".into(),
        },
    );
    assert_eq!(
        h.machine.deadline(),
        Some(T0 + Duration::from_secs(3)),
        "1 s, then 2 s"
    );
    h.machine.on(at(1500), Event::Control(Control::Down));
    assert_eq!(h.state(), ServiceState::Down);
    assert_eq!(h.machine.deadline(), None);
}

/// A longrun wanted up whose readiness is a test run every 200 ms.
fn wanted_up_with_a_readiness_test() -> Sim {
    Sim::new(
        Settings {
            readiness: ReadinessKind::Test {
                interval: Duration::from_millis(200),
            },
            ..longrun()
        },
        Want::Up,
    )
}

#[test]
fn a_readiness_test_is_retried_until_it_passes() {
    let mut h = wanted_up_with_a_readiness_test();
    assert_eq!(h.state(), ServiceState::Starting);
    assert!(
        h.machine.pid_of(Process::Test).is_some(),
        "first test at once"
    );
    h.advance(5)
        .exit_process(Process::Test, ExitStatus::Exited(1));
    assert_eq!(h.machine.reason(), "readiness test exited 1");
    assert_eq!(h.machine.deadline(), Some(T0 + Duration::from_millis(205)));
    h.fire_timer();
    assert!(h.machine.pid_of(Process::Test).is_some(), "retried");
    h.exit_process(Process::Test, ExitStatus::Exited(0));
    assert_eq!(h.state(), ServiceState::Running);
    assert!(h.machine.full_state().ready_since.is_some());
}

#[test]
fn a_hung_readiness_test_is_killed() {
    let mut h = wanted_up_with_a_readiness_test();
    h.fire_timer();
    assert!(h.signalled(Target::Group(Process::Test), Signal::SIGKILL));
}

#[test]
fn notification_readiness() {
    let mut h = Sim::new(notification(), Want::Up);
    assert_eq!(h.state(), ServiceState::Starting);
    h.event(Event::Ready);
    assert_eq!(h.state(), ServiceState::Running);
    assert_eq!(h.actions, vec![Action::CloseNotification]);
}

#[test]
fn exit_waits_for_finish_and_exits_once() {
    let mut h = Sim::new(with_finish(), Want::Up);
    h.control(b'x');
    assert!(!h.exited());
    assert!(h.actions.contains(&Action::ControlScript(Control::Exit)));
    h.exit_process(Process::Run, ExitStatus::Signaled(15));
    assert_eq!(h.state(), ServiceState::Finishing);
    assert!(!h.exited());
    h.exit_process(Process::Finish, ExitStatus::Exited(0));
    assert!(h.exited());
    assert_eq!(h.state(), ServiceState::Down);
    h.control(b'x');
    assert_eq!(h.exits_asked, 1, "Exit is asked for once");
}

#[test]
fn a_log_ignores_x_but_drains() {
    let mut h = Sim::new(
        Settings {
            is_log: true,
            stop_timeout: Duration::from_secs(2),
            ..longrun()
        },
        Want::Up,
    );
    h.control(b'x');
    assert_eq!((h.state(), h.exited()), (ServiceState::Running, false));
    h.event(Event::Drain);
    assert!(h.actions.is_empty(), "no signal: it ends by itself on EOF");
    h.exit_process(Process::Run, ExitStatus::Exited(0));
    assert!(h.exited());
    // One that ignores EOF is stopped after its stop timeout.
    let mut h = Sim::new(
        Settings {
            is_log: true,
            ..longrun()
        },
        Want::Up,
    );
    h.event(Event::Drain).fire_timer();
    assert!(h.signalled(Target::Group(Process::Run), Signal::SIGTERM));
}

#[test]
fn pause_and_continue_set_runits_flag_and_signal_the_process() {
    let mut h = Sim::new(longrun(), Want::Up);
    h.control(b'p');
    assert!(h.signalled(Target::Process(Process::Run), Signal::SIGSTOP));
    assert!(h.machine.status().paused);
    h.control(b'c');
    assert!(h.signalled(Target::Process(Process::Run), Signal::SIGCONT));
    assert!(!h.machine.status().paused);
    for (byte, signal) in [
        (b'h', Signal::SIGHUP),
        (b'a', Signal::SIGALRM),
        (b'i', Signal::SIGINT),
        (b'q', Signal::SIGQUIT),
        (b'1', Signal::SIGUSR1),
        (b'2', Signal::SIGUSR2),
    ] {
        h.control(byte);
        assert_eq!(
            h.actions,
            vec![Action::Signal {
                target: Target::Process(Process::Run),
                signal,
                custom: Control::from_byte(byte)
            }]
        );
    }
    h.control(b'z');
    assert!(h.actions.is_empty(), "unknown bytes are ignored");
}

#[test]
fn dependencies_gate_the_start_and_failures_propagate() {
    let mut h = Sim::new(longrun(), Want::Down);
    h.event(Event::Dependencies(Dependencies::Waiting(vec![
        "db".into(),
        "cache".into(),
    ])));
    h.control(b'u');
    assert_eq!(h.state(), ServiceState::Waiting);
    assert_eq!(h.machine.reason(), "waiting for db, cache");
    h.event(Event::Dependencies(Dependencies::Failed {
        name: "db".into(),
        reason: "exited 1".into(),
    }));
    assert_eq!(h.state(), ServiceState::Error);
    assert_eq!(h.machine.reason(), "dependency db failed: exited 1");
    h.event(Event::Dependencies(Dependencies::Unknown(vec![
        "dbx".into()
    ])));
    assert_eq!(h.machine.reason(), "unknown dependency dbx");
    h.event(Event::Dependencies(Dependencies::Cycle("a → b → a".into())));
    assert_eq!(h.machine.reason(), "dependency cycle: a → b → a");
    h.event(Event::Dependencies(Dependencies::Satisfied));
    assert_eq!(
        h.state(),
        ServiceState::Running,
        "starts by itself once it recovers"
    );
    h.event(Event::Dependencies(Dependencies::Waiting(
        vec!["db".into()],
    )));
    assert_eq!(
        h.state(),
        ServiceState::Running,
        "a dependency going down later stops nothing"
    );
}

#[test]
fn an_invalid_definition_is_an_error_on_every_start() {
    let mut h = Sim::new(
        Settings {
            invalid: Some("service.yaml: line 2: unknown key `exce`".into()),
            ..longrun()
        },
        Want::Up,
    );
    assert_eq!(h.state(), ServiceState::Error);
    assert_eq!(
        h.machine.reason(),
        "invalid definition: service.yaml: line 2: unknown key `exce`"
    );
    h.control(b'x');
    assert!(h.exited());
}

#[test]
fn the_status_stamp_follows_runit() {
    let mut h = Sim::new(with_finish(), Want::Up);
    let started = h.machine.status().since;
    h.advance(2000).control(b'p');
    assert_eq!(h.machine.status().since, started, "pause does not move it");
    h.exit_process(Process::Run, ExitStatus::Exited(0));
    assert_eq!(
        h.machine.status().since,
        started,
        "finishing since run start"
    );
    h.advance(500)
        .exit_process(Process::Finish, ExitStatus::Exited(0));
    // Ran 2.5 s: restarted at once, so the stamp is the new start.
    assert_eq!(h.machine.status().since, at(2500).wall);
}

#[test]
fn an_exec_that_fails_after_the_pid_was_published_ends_as_a_failed_spawn() {
    let mut h = Sim::new(longrun(), Want::Down);
    h.control(b'u');
    let pid = h.machine.pid_of(Process::Run).expect("spawned");
    assert_eq!(h.state(), ServiceState::Running);
    // Another pid's report changes nothing.
    let other = h.machine.on(
        at(0),
        Event::ExecFailed {
            process: Process::Run,
            pid: pid + 1,
            reason: "unable to start ./run: file does not exist".into(),
        },
    );
    assert!(other.is_empty());
    assert_eq!(h.machine.pid_of(Process::Run), Some(pid));
    let actions = h.machine.on(
        at(0),
        Event::ExecFailed {
            process: Process::Run,
            pid,
            reason: "unable to start ./run: file does not exist".into(),
        },
    );
    assert!(actions.is_empty());
    assert_eq!(h.machine.pid_of(Process::Run), None);
    assert_eq!(h.state(), ServiceState::Error);
    assert_eq!(
        h.machine.reason(),
        "unable to start ./run: file does not exist; retrying in 1s"
    );
    let status = h.machine.status();
    assert_eq!((status.pid, status.run_state), (0, RunState::Down));
    assert_eq!(h.machine.full_state().starttime, 0);
    assert_eq!(h.machine.deadline(), Some(T0 + Duration::from_secs(1)));
}

#[test]
fn a_finish_that_cannot_exec_leaves_the_service_down() {
    let mut h = Sim::new(
        Settings {
            has_finish: true,
            ..longrun()
        },
        Want::Up,
    );
    h.control(b'd');
    h.exit_process(Process::Run, ExitStatus::Signaled(15));
    let finish = h.machine.pid_of(Process::Finish).expect("finish spawned");
    assert_eq!(h.state(), ServiceState::Finishing);
    h.event(Event::ExecFailed {
        process: Process::Finish,
        pid: finish,
        reason: "unable to start ./finish: access denied".into(),
    });
    assert_eq!(h.machine.pid_of(Process::Finish), None);
    assert_eq!(h.state(), ServiceState::Down);
}

#[test]
fn a_start_time_recorded_later_is_the_processs_own() {
    let mut h = Sim::new(longrun(), Want::Up);
    let pid = h.machine.pid_of(Process::Run).expect("running");
    h.machine.record_starttime(Process::Run, pid + 1, 99);
    assert_eq!(
        h.machine.full_state().starttime,
        7,
        "another pid's is ignored"
    );
    h.machine.record_starttime(Process::Run, pid, 1234);
    assert_eq!(h.machine.full_state().starttime, 1234);
}

#[test]
fn between_an_exit_and_the_immediate_restart_the_state_is_respawn() {
    let mut h = Sim::new(longrun(), Want::Up);
    let pid = h.machine.pid_of(Process::Run).expect("running");
    h.advance(1500);
    // What runsv publishes before it forks the new run: the exit, not a pid-less
    // `running`.
    let actions = h.machine.on(
        at(h.now_ms()),
        Event::Exited {
            pid,
            status: ExitStatus::Signaled(9),
        },
    );
    assert!(actions.contains(&Action::Spawn(Process::Run)));
    let state = h.machine.full_state();
    assert_eq!(state.state, ServiceState::Respawn);
    assert_eq!(state.pid, 0);
    assert_eq!(state.reason, "killed by SIGKILL; restarting now");
    assert_eq!(state.last_exit, Some(ExitStatus::Signaled(9)));
}

#[test]
fn reconfigure_restarts_a_running_service_with_the_new_settings() {
    let mut h = Sim::new(longrun(), Want::Up);
    let old = h.machine.pid_of(Process::Run).expect("running");
    let settings = Settings {
        stop_signal: Signal::SIGINT,
        ..notification()
    };
    h.event(Event::Reconfigure {
        settings: settings.clone(),
        dependencies: None,
    });
    assert_eq!(h.machine.settings(), &settings);
    assert_eq!(
        h.actions,
        vec![Action::Signal {
            target: Target::Group(Process::Run),
            signal: Signal::SIGINT,
            custom: Some(Control::Term)
        }],
        "stopped with the new stop signal, to come back at once"
    );
    h.exit_process(Process::Run, ExitStatus::Signaled(2));
    assert_ne!(h.machine.pid_of(Process::Run), Some(old));
    assert_eq!(h.state(), ServiceState::Starting, "the new readiness");
}

#[test]
fn reconfigure_starts_a_service_in_error_for_its_definition_and_leaves_one_wanted_down() {
    let invalid = Settings {
        invalid: Some("service.yaml: line 1: bad".into()),
        ..longrun()
    };
    let mut h = Sim::new(invalid.clone(), Want::Up);
    assert_eq!(h.state(), ServiceState::Error);
    h.event(Event::Reconfigure {
        settings: longrun(),
        dependencies: None,
    });
    assert_eq!(h.state(), ServiceState::Running);

    let mut h = Sim::new(longrun(), Want::Down);
    h.event(Event::Reconfigure {
        settings: invalid,
        dependencies: None,
    });
    assert!(h.actions.is_empty());
    assert_eq!(h.state(), ServiceState::Down);
    h.control(b'u');
    assert_eq!(
        h.state(),
        ServiceState::Error,
        "the new settings are in force"
    );
}

#[test]
fn reconfigure_with_new_dependencies_applies_them_and_starts_once() {
    let mut h = Sim::new(longrun(), Want::Down);
    h.event(Event::Dependencies(Dependencies::Failed {
        name: "db".into(),
        reason: "exited 1".into(),
    }));
    h.control(b'u');
    assert_eq!(h.state(), ServiceState::Error);
    // `after:` no longer names db: it starts, with the new settings, once.
    h.event(Event::Reconfigure {
        settings: longrun(),
        dependencies: Some(Dependencies::Satisfied),
    });
    assert_eq!(
        h.actions,
        vec![
            Action::ControlScript(Control::Up),
            Action::Spawn(Process::Run)
        ]
    );
    assert_eq!(h.state(), ServiceState::Running);
    // New dependencies not up yet: a running service restarts and waits for them.
    h.event(Event::Reconfigure {
        settings: longrun(),
        dependencies: Some(Dependencies::Waiting(vec!["cache".into()])),
    });
    h.exit_process(Process::Run, ExitStatus::Signaled(15));
    assert_eq!(h.state(), ServiceState::Waiting);
    assert_eq!(h.machine.reason(), "waiting for cache");
}
