//! Property tests of the machine (issue #6): random sequences of events on random
//! settings, fed the way runsv's loop feeds them (spawns answered at once, in action
//! order; nothing but timers and exits after `Exit`). The machine never panics, its
//! invariants hold after every event, and once told to exit it gets there, with SIGKILL
//! if nothing ends by itself, asking for `Exit` exactly once.

use super::sim::{at, Sim, Spawn, T0};
use super::*;
use crate::props_support::config;
use proptest::prelude::*;
use proptest::sample::{select, Index};

/// What happens to a service, in the terms of the loop around the machine.
#[derive(Clone, Debug)]
enum Op {
    Control(u8),
    Terminate,
    Drain,
    /// Time passes (milliseconds).
    Advance(u64),
    /// The loop wakes up now, due or not.
    Timer,
    /// The loop wakes up at the deadline.
    FireTimer,
    Ready,
    Dependencies(Dependencies),
    /// One of the live processes ends by itself.
    Exit(Index, ExitStatus),
    /// A pid the machine does not own (an old one, or any).
    ExitUnowned(u32, ExitStatus),
    /// `sv reconfigure` with a changed definition (and perhaps a changed `after:`).
    Reconfigure(Box<Settings>, Option<Dependencies>),
}

#[derive(Clone, Debug)]
struct Case {
    settings: Settings,
    want: Want,
    ops: Vec<Op>,
    spawns: Vec<Spawn>,
    reasons: Vec<&'static str>,
}

fn duration(millis: std::ops::Range<u64>) -> impl Strategy<Value = Duration> {
    prop_oneof![
        8 => millis.prop_map(Duration::from_millis),
        // service.yaml accepts any number of seconds a u64 holds.
        1 => select(&[u64::MAX, u64::MAX / 2, 1 << 40][..]).prop_map(Duration::from_secs),
    ]
}

fn settings() -> impl Strategy<Value = Settings> {
    let readiness = prop_oneof![
        Just(ReadinessKind::Immediate),
        duration(1..5000).prop_map(|interval| ReadinessKind::Test { interval }),
        Just(ReadinessKind::Notification),
    ];
    let delays = (
        duration(1..5000),
        prop_oneof![duration(0..60_000), Just(Duration::MAX)],
    )
        .prop_map(|(delay, extra)| (delay, delay.saturating_add(extra)));
    (
        (any::<bool>(), any::<bool>(), readiness),
        select(
            &[
                Signal::SIGTERM,
                Signal::SIGINT,
                Signal::SIGHUP,
                Signal::SIGKILL,
            ][..],
        ),
        duration(0..20_000),
        delays,
        prop::bool::weighted(0.25),
        prop::option::weighted(0.05, Just("service.yaml: line 1: bad".to_string())),
    )
        .prop_map(
            |(
                (oneshot, has_finish, readiness),
                stop_signal,
                stop_timeout,
                delays,
                is_log,
                invalid,
            )| {
                // Only what runsv can be given (service.rs, settings_of): an invalid
                // definition has the defaults; a log runs no finish; a oneshot has no
                // readiness (the loader refuses test and ready_fd with oneshot).
                if invalid.is_some() {
                    return Settings {
                        is_log,
                        invalid,
                        ..Settings::default()
                    };
                }
                Settings {
                    oneshot,
                    has_finish: has_finish && !is_log,
                    readiness: if oneshot {
                        ReadinessKind::Immediate
                    } else {
                        readiness
                    },
                    stop_signal,
                    stop_timeout,
                    restart_delay: delays.0,
                    restart_delay_max: delays.1,
                    is_log,
                    invalid,
                }
            },
        )
}

fn exit_status() -> impl Strategy<Value = ExitStatus> {
    prop_oneof![
        3 => Just(ExitStatus::Exited(0)),
        2 => (1i32..256).prop_map(ExitStatus::Exited),
        1 => any::<i32>().prop_map(ExitStatus::Exited),
        2 => (1i32..65).prop_map(ExitStatus::Signaled),
        1 => any::<i32>().prop_map(ExitStatus::Signaled),
    ]
}

fn dependencies() -> impl Strategy<Value = Dependencies> {
    prop_oneof![
        3 => Just(Dependencies::Satisfied),
        2 => Just(Dependencies::Waiting(vec!["db".into()])),
        1 => Just(Dependencies::Waiting(vec!["db".into(), "cache".into()])),
        1 => Just(Dependencies::Failed { name: "db".into(), reason: "exited 1".into() }),
        1 => Just(Dependencies::Unknown(vec!["dbx".into()])),
        1 => Just(Dependencies::Cycle("a → b → a".into())),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    // Exit comes rarely (x, SIGTERM, a drain), so that most of a sequence happens
    // before it: after Exit the loop delivers little.
    prop_oneof![
        20 => select(&b"udotkpchaiq12"[..]).prop_map(Op::Control),
        6 => any::<u8>().prop_map(Op::Control),
        1 => Just(Op::Control(b'x')),
        1 => Just(Op::Terminate),
        1 => Just(Op::Drain),
        8 => (0u64..3000).prop_map(Op::Advance),
        2 => (0u64..100_000).prop_map(Op::Advance),
        6 => Just(Op::Timer),
        12 => Just(Op::FireTimer),
        6 => Just(Op::Ready),
        6 => dependencies().prop_map(Op::Dependencies),
        18 => (any::<Index>(), exit_status()).prop_map(|(which, status)| Op::Exit(which, status)),
        3 => (prop_oneof![1u32..1100, any::<u32>()], exit_status())
            .prop_map(|(pid, status)| Op::ExitUnowned(pid, status)),
        2 => (settings(), prop::option::of(dependencies()))
            .prop_map(|(settings, dependencies)| Op::Reconfigure(Box::new(settings), dependencies)),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (
        settings(),
        select(&[Want::Up, Want::Down][..]),
        prop::collection::vec(op(), 0..60),
        prop::collection::vec(
            prop_oneof![6 => Just(Spawn::Succeeds), 1 => Just(Spawn::Fails), 1 => Just(Spawn::ExecFails)],
            1..16,
        ),
        prop::collection::vec(
            select(&[
                "unable to start ./run: file does not exist",
                "unable to start ./run: access denied",
                "two\nlines\r",
                "",
            ][..]),
            1..4,
        ),
    )
        .prop_map(|(settings, want, ops, spawns, reasons)| Case {
            settings,
            want,
            ops,
            spawns,
            reasons,
        })
}

/// What must hold between events: what runsv writes to supervise/ is consistent and
/// decodes back, and a timer is set whenever something waits on one.
fn check_state(sim: &Sim) {
    let m = &sim.machine;
    let status = m.status();
    let full = m.full_state();
    sim.ensure(
        Status::decode(&status.encode()) == Ok(status),
        &format!("status does not round-trip: {status:?}"),
    );
    let mut normalised = full.clone();
    normalised.reason = full.reason.replace(['\n', '\r'], " ");
    sim.ensure(
        FullState::decode(&full.encode()).as_ref() == Some(&normalised),
        &format!("state does not round-trip: {:?}", full.encode()),
    );
    sim.ensure(full.status == Some(status), "state holds another status");
    sim.ensure(
        full.pid == status.pid,
        "state and status disagree on the pid",
    );
    sim.ensure(
        full.want == m.want() && status.want == m.want().status_byte(),
        "want",
    );
    let run_pid = m.pid_of(Process::Run);
    let finish_pid = m.pid_of(Process::Finish);
    let expected_run_state = match (run_pid, finish_pid) {
        (Some(_), _) => RunState::Run,
        (None, Some(_)) => RunState::Finish,
        (None, None) => RunState::Down,
    };
    sim.ensure(status.run_state == expected_run_state, "runit's state byte");
    sim.ensure(
        (status.pid != 0) == (status.run_state != RunState::Down),
        "a pid without a process, or a process without a pid",
    );
    sim.ensure(sim.exits_asked <= 1, "Exit asked for twice");

    use ServiceState::{
        Down, Error, Finishing, Ok as Done, Respawn, Running, Starting, Stopping, Waiting,
    };
    let settings = m.settings();
    let state = m.state();
    let run = run_pid.is_some();
    let finish = finish_pid.is_some();
    match state {
        Running | Starting | Stopping => sim.ensure(run && !finish, "a running state without run"),
        Finishing => sim.ensure(finish && !run, "finishing without finish"),
        Down | Waiting | Done | Error | Respawn => {
            sim.ensure(!run && !finish, "a process alive in a state without one")
        }
    }
    sim.ensure(
        state != Running || full.ready_since.is_some(),
        "running without ready_since",
    );
    sim.ensure(full.ready_since.is_none() || run, "ready_since without run");
    sim.ensure(state != Done || settings.oneshot, "ok is a oneshot's state");

    // Timers.
    let deadline = m.deadline().is_some();
    sim.ensure(
        state != Respawn || deadline,
        "respawn without a restart timer",
    );
    sim.ensure(
        state != Stopping || deadline || sim.was_killed(run_pid),
        "stopping without a kill timer",
    );
    sim.ensure(
        state != Finishing || deadline || sim.was_killed(finish_pid),
        "finishing without a kill timer",
    );
    sim.ensure(
        !(m.retries_spawn() && m.want() == Want::Up) || deadline,
        "a failed spawn, wanted up, without a retry timer",
    );
    if state == Starting
        && matches!(settings.readiness, ReadinessKind::Test { .. })
        && !settings.oneshot
    {
        sim.ensure(
            deadline || m.pid_of(Process::Test).is_some(),
            "a readiness test neither running nor scheduled",
        );
    }
    sim.ensure(
        !(m.want() == Want::Exit && run) || deadline || sim.was_killed(run_pid),
        "wanted exit, run alive, and nothing will stop it",
    );
    sim.ensure(
        !matches!(state, Down | Waiting | Done) || !deadline,
        "a timer in a state that waits for nothing",
    );
}

/// One op, as the loop would deliver it.
fn apply(sim: &mut Sim, op: &Op) {
    let exited = sim.exited();
    let before = (sim.machine.full_state(), sim.machine.deadline());
    sim.actions.clear();
    let actions = match op {
        // After Exit the loop reads no more control bytes and ignores SIGTERM; a log
        // is drained once.
        Op::Control(_) | Op::Terminate | Op::Drain if exited => return,
        // A byte that is no command never reaches the machine (the loop decodes it).
        Op::Control(byte) => match Control::from_byte(*byte) {
            Some(control) => sim.on(Event::Control(control)),
            None => return,
        },
        Op::Terminate => sim.on(Event::Terminate),
        Op::Drain => sim.on(Event::Drain),
        Op::Advance(millis) => {
            sim.advance(*millis);
            return;
        }
        Op::Timer => {
            let due = sim.machine.deadline().is_some_and(|d| d <= sim.now);
            let actions = sim.on(Event::Timer);
            if !due {
                sim.ensure(
                    actions.is_empty()
                        && (sim.machine.full_state(), sim.machine.deadline()) == before,
                    "a timer before its deadline changed something",
                );
            }
            actions
        }
        Op::FireTimer => {
            if let Some(deadline) = sim.machine.deadline() {
                sim.now = sim.now.max(deadline);
            }
            sim.on(Event::Timer)
        }
        Op::Ready => sim.on(Event::Ready),
        Op::Dependencies(dependencies) => sim.on(Event::Dependencies(dependencies.clone())),
        Op::Reconfigure(settings, dependencies) => {
            // A log stays a log (service.rs), and runs no finish. Wanted not up, the
            // service is not restarted: what it runs keeps the oneshot and readiness
            // it started with, while the machine already holds the new ones, which the
            // invariants (read from the settings) cannot tell apart. Those two change
            // here only when the reconfigure restarts the service.
            let current = sim.machine.settings().clone();
            let up = sim.machine.want() == Want::Up;
            let settings = Settings {
                is_log: current.is_log,
                has_finish: settings.has_finish && !current.is_log,
                oneshot: if up {
                    settings.oneshot
                } else {
                    current.oneshot
                },
                readiness: if up {
                    settings.readiness
                } else {
                    current.readiness
                },
                ..(**settings).clone()
            };
            sim.on(Event::Reconfigure {
                settings,
                dependencies: dependencies.clone(),
            })
        }
        Op::Exit(which, status) => {
            let alive = sim.alive();
            if alive.is_empty() {
                return;
            }
            let (_, pid) = alive[which.index(alive.len())];
            sim.on(Event::Exited {
                pid,
                status: *status,
            })
        }
        Op::ExitUnowned(pid, status) => {
            let pid = match sim.pids.first() {
                // An old pid of ours, or any.
                Some(_) if pid % 2 == 0 => sim.pids[(*pid as usize / 2) % sim.pids.len()],
                _ => *pid,
            };
            if sim.machine.owns(pid) {
                return;
            }
            let actions = sim.on(Event::Exited {
                pid,
                status: *status,
            });
            sim.ensure(
                actions.is_empty() && (sim.machine.full_state(), sim.machine.deadline()) == before,
                "the exit of a pid not owned changed something",
            );
            actions
        }
    };
    sim.perform(actions);
    check_state(sim);
}

/// Tells the machine to exit (SIGTERM, or the drain of a log) and lets only time pass,
/// ending only the processes that were sent SIGKILL: it must get to `Exit`.
fn wind_down(sim: &mut Sim) {
    if !sim.exited() {
        let event = if sim.machine.settings().is_log {
            Event::Drain
        } else {
            Event::Terminate
        };
        sim.event(event);
        check_state(sim);
    }
    for _ in 0..20 {
        if sim.exited() {
            break;
        }
        let doomed = sim
            .alive()
            .into_iter()
            .find(|(_, pid)| sim.killed.contains(pid));
        if let Some((_, pid)) = doomed {
            sim.event(Event::Exited {
                pid,
                status: ExitStatus::Signaled(9),
            });
        } else if sim.machine.deadline().is_some() {
            sim.fire_timer();
        } else {
            sim.ensure(false, "stuck: wanted exit, no timer, nothing killed");
        }
        check_state(sim);
    }
    sim.ensure(sim.exits_asked == 1, "never asked to exit");
    sim.ensure(
        matches!(
            sim.state(),
            ServiceState::Down | ServiceState::Ok | ServiceState::Error
        ),
        "exited in a state other than down, ok or error",
    );
    // Whatever still comes (a late timer, the exit of a killed readiness test) asks
    // for nothing more.
    let leftovers: Vec<u32> = sim.alive().into_iter().map(|(_, pid)| pid).collect();
    for pid in leftovers {
        let actions = sim.on(Event::Exited {
            pid,
            status: ExitStatus::Signaled(9),
        });
        sim.ensure(actions.is_empty(), "actions after Exit");
    }
    sim.now = sim.now.saturating_add(Duration::from_secs(3600));
    let actions = sim.on(Event::Timer);
    sim.ensure(actions.is_empty(), "actions after Exit");
}

proptest! {
    #![proptest_config(config(512))]

    /// Any sequence of events on any settings: no panic, the invariants after every
    /// event, and a clean exit at the end.
    #[test]
    fn any_event_sequence_keeps_the_invariants_and_ends_in_one_exit(case in case()) {
        let mut sim = Sim::with(
            case.settings.clone(),
            case.want,
            case.spawns.clone(),
            case.reasons.clone(),
            true,
        );
        check_state(&sim);
        for op in &case.ops {
            apply(&mut sim, op);
        }
        wind_down(&mut sim);
    }
}

/// Found by the event-sequence property: `stop_timeout: 18446744073709551615` (any
/// u64 of seconds loads) made `sv down` abort runsv with "overflow when adding
/// durations" once it had run a second, leaving the service running without a
/// supervisor. Every delay of the definition now saturates into a timer never due.
#[test]
fn delays_of_u64_max_seconds_make_timers_that_never_fire_instead_of_overflowing() {
    let forever = Duration::from_secs(u64::MAX);
    let settings = Settings {
        has_finish: true,
        readiness: ReadinessKind::Test { interval: forever },
        stop_timeout: forever,
        restart_delay: forever,
        restart_delay_max: forever,
        ..Settings::default()
    };
    let later = |seconds| at(T0 + Duration::from_secs(seconds));
    let mut machine = Machine::new(settings, Want::Up, later(0));
    assert_eq!(
        machine.boot(later(0)),
        vec![
            Action::ControlScript(Control::Up),
            Action::Spawn(Process::Run)
        ]
    );
    let spawned = |process, pid| Event::Spawned {
        process,
        pid,
        starttime: 0,
    };
    assert_eq!(
        machine.on(later(17), spawned(Process::Run, 10)),
        vec![Action::Spawn(Process::Test)]
    );
    machine.on(later(17), spawned(Process::Test, 11));
    // The readiness test fails: the next one is never due.
    let failed = Event::Exited {
        pid: 11,
        status: ExitStatus::Exited(1),
    };
    machine.on(later(18), failed);
    assert_eq!(machine.deadline(), Some(Duration::MAX));
    // `sv down`: the stop timer, then finish's timer, are never due.
    machine.on(later(19), Event::Control(Control::Down));
    assert_eq!(machine.state(), ServiceState::Stopping);
    assert_eq!(machine.deadline(), Some(Duration::MAX));
    let killed = Event::Exited {
        pid: 10,
        status: ExitStatus::Signaled(15),
    };
    assert_eq!(
        machine.on(later(20), killed),
        vec![Action::Spawn(Process::Finish)]
    );
    machine.on(later(20), spawned(Process::Finish, 12));
    assert_eq!(machine.state(), ServiceState::Finishing);
    assert_eq!(machine.deadline(), Some(Duration::MAX));
    assert!(machine.on(later(21), Event::Timer).is_empty());
    // Up again, dying fast: the restart delay is never due either.
    machine.on(later(22), Event::Control(Control::Up));
    let finished = Event::Exited {
        pid: 12,
        status: ExitStatus::Exited(0),
    };
    assert_eq!(
        machine.on(later(22), finished),
        vec![
            Action::ControlScript(Control::Up),
            Action::Spawn(Process::Run)
        ]
    );
}

/// Found by the event-sequence property: a logger drained while still starting lost
/// its drain timer when it became ready (a notification line, or its readiness test
/// passing), so one that ignores its closed input was never stopped and runsv never
/// exited; and a readiness test failing during the drain replaced that timer with the
/// test's shorter retry, stopping the logger before its stop timeout.
#[test]
fn a_drained_logger_keeps_its_drain_timer_through_readiness() {
    let stop_timeout = Duration::from_secs(5);
    let log = |readiness| Settings {
        readiness,
        stop_timeout,
        is_log: true,
        ..Settings::default()
    };
    let spawned = |process, pid| Event::Spawned {
        process,
        pid,
        starttime: 0,
    };
    let drain_deadline = T0 + Duration::from_secs(1) + stop_timeout;
    let test = ReadinessKind::Test {
        interval: Duration::from_millis(200),
    };
    for (readiness, ready) in [
        (ReadinessKind::Notification, Event::Ready),
        (
            test,
            Event::Exited {
                pid: 11,
                status: ExitStatus::Exited(0),
            },
        ),
        (
            test,
            Event::Exited {
                pid: 11,
                status: ExitStatus::Exited(1),
            },
        ),
    ] {
        let mut machine = Machine::new(log(readiness), Want::Up, at(T0));
        machine.boot(at(T0));
        machine.on(at(T0), spawned(Process::Run, 10));
        machine.on(at(T0), spawned(Process::Test, 11));
        assert_eq!(machine.state(), ServiceState::Starting);
        machine.on(at(T0 + Duration::from_secs(1)), Event::Drain);
        machine.on(at(T0 + Duration::from_secs(2)), ready.clone());
        assert_eq!(machine.deadline(), Some(drain_deadline), "{ready:?}");
        let stop = machine.on(at(drain_deadline), Event::Timer);
        assert!(
            stop.contains(&Action::Signal {
                target: Target::Group(Process::Run),
                signal: Signal::SIGTERM,
                custom: Some(Control::Term),
            }),
            "{ready:?}: {stop:?}"
        );
    }
}
