//! Property tests of the machine (issue #6): random sequences of events on random
//! settings, fed the way runsv's loop feeds them (spawns answered at once, in action
//! order; nothing but timers and exits after `Exit`). The machine never panics, its
//! invariants hold after every event, and once told to exit it gets there, with SIGKILL
//! if nothing ends by itself, asking for `Exit` exactly once.

use super::*;
use crate::props_support::config;
use proptest::prelude::*;
use proptest::sample::{select, Index};
use std::collections::VecDeque;

const T0: Duration = Duration::from_secs(1000);

/// The wall clock that goes with a monotonic time. Kept below the year 2100: a timer
/// a billion years away may be fired, but the status stamp of that moment need not be
/// representable.
fn at(monotonic: Duration) -> Now {
    Now {
        monotonic,
        wall: Timestamp {
            seconds: 1_700_000_000 + monotonic.as_secs().min(4_000_000_000),
            nanoseconds: monotonic.subsec_nanos(),
        },
    }
}

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
}

/// How the loop fares with a spawn the machine asked for.
#[derive(Clone, Copy, Debug)]
enum Spawn {
    Succeeds,
    Fails,
    /// run only: forked, pid published, then exec failed.
    ExecFails,
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

/// runsv's loop, as far as the machine can tell: spawns get fresh pids (or fail, as
/// the case says), and the loop's rules on what it still delivers after `Exit` hold.
struct Driver {
    machine: Machine,
    now: Duration,
    next_pid: u32,
    spawns: Vec<Spawn>,
    spawned: usize,
    reasons: Vec<&'static str>,
    /// Every pid the driver handed out, for exits of pids no longer owned.
    pids: Vec<u32>,
    /// Pids that were sent SIGKILL: the only ones sure to end.
    killed: Vec<u32>,
    exits_asked: usize,
    /// What happened, for the failure message.
    trace: Vec<String>,
}

fn fail(message: String) -> TestCaseError {
    TestCaseError::fail(message)
}

impl Driver {
    fn new(case: &Case) -> Result<Driver, TestCaseError> {
        let mut driver = Driver {
            machine: Machine::new(case.settings.clone(), case.want, at(T0)),
            now: T0,
            next_pid: 1000,
            spawns: case.spawns.clone(),
            spawned: 0,
            reasons: case.reasons.clone(),
            pids: Vec::new(),
            killed: Vec::new(),
            exits_asked: 0,
            trace: Vec::new(),
        };
        let actions = driver.machine.boot(at(T0));
        driver.perform(actions)?;
        driver.check_state()?;
        Ok(driver)
    }

    fn context(&self) -> String {
        format!(
            "\ntrace:\n  {}\nstate {} want {:?} reason {:?} run {:?} finish {:?} test {:?} deadline {:?} now {:?}",
            self.trace.join("\n  "),
            self.machine.state,
            self.machine.want,
            self.machine.reason,
            self.machine.run_pid,
            self.machine.finish_pid,
            self.machine.test_pid,
            self.machine.deadline,
            self.now,
        )
    }

    fn ensure(&self, condition: bool, what: &str) -> Result<(), TestCaseError> {
        if condition {
            Ok(())
        } else {
            Err(fail(format!("{what}{}", self.context())))
        }
    }

    fn on(&mut self, event: Event) -> Vec<Action> {
        self.trace.push(format!("{event:?}"));
        let actions = self.machine.on(at(self.now), event);
        if !actions.is_empty() {
            self.trace.push(format!("  -> {actions:?}"));
        }
        actions
    }

    fn alive(&self) -> Vec<(Process, u32)> {
        [Process::Run, Process::Finish, Process::Test]
            .into_iter()
            .filter_map(|process| self.machine.pid_of(process).map(|pid| (process, pid)))
            .collect()
    }

    fn next_spawn(&mut self) -> Spawn {
        let spawn = self.spawns[self.spawned % self.spawns.len()];
        self.spawned += 1;
        spawn
    }

    fn reason(&self) -> String {
        self.reasons[self.spawned % self.reasons.len()].to_string()
    }

    fn fresh_pid(&mut self) -> u32 {
        self.next_pid += 1;
        self.pids.push(self.next_pid);
        self.next_pid
    }

    /// Performs actions in order, as the loop does; a spawn's result is an event whose
    /// actions join the queue.
    fn perform(&mut self, actions: Vec<Action>) -> Result<(), TestCaseError> {
        let mut queue: VecDeque<Action> = actions.into();
        while let Some(action) = queue.pop_front() {
            self.check_action(&action)?;
            match action {
                Action::Spawn(process) => {
                    let spawn = self.next_spawn();
                    let reason = self.reason();
                    match (process, spawn) {
                        (_, Spawn::Succeeds)
                        | (Process::Finish | Process::Test, Spawn::ExecFails) => {
                            let pid = self.fresh_pid();
                            let starttime = u64::from(pid) * 3;
                            let more = self.on(Event::Spawned {
                                process,
                                pid,
                                starttime: 0,
                            });
                            self.machine.record_starttime(process, pid, starttime);
                            queue.extend(more);
                        }
                        (_, Spawn::Fails) => {
                            queue.extend(self.on(Event::SpawnFailed { process, reason }));
                        }
                        (Process::Run, Spawn::ExecFails) => {
                            let pid = self.fresh_pid();
                            // What followed from the spawn (a readiness test) is void:
                            // the loop drops those actions.
                            let _ = self.on(Event::Spawned {
                                process,
                                pid,
                                starttime: 0,
                            });
                            queue.extend(self.on(Event::ExecFailed {
                                process,
                                pid,
                                reason,
                            }));
                        }
                    }
                }
                Action::Signal {
                    target: Target::Process(process) | Target::Group(process),
                    signal: Signal::SIGKILL,
                    ..
                } => {
                    if let Some(pid) = self.machine.pid_of(process) {
                        self.killed.push(pid);
                    }
                }
                Action::Exit => self.exits_asked += 1,
                Action::Signal { .. } | Action::ControlScript(_) | Action::CloseNotification => {}
            }
        }
        Ok(())
    }

    /// What must hold of an action when the loop performs it.
    fn check_action(&self, action: &Action) -> Result<(), TestCaseError> {
        let m = &self.machine;
        self.ensure(
            self.exits_asked == 0,
            &format!("{action:?} after the machine asked to exit"),
        )?;
        match action {
            Action::Spawn(Process::Run) => {
                self.ensure(
                    m.run_pid.is_none() && m.finish_pid.is_none(),
                    "Spawn(Run) while run or finish is alive",
                )?;
                self.ensure(m.want != Want::Exit, "Spawn(Run) while want is exit")?;
                self.ensure(
                    m.settings.invalid.is_none(),
                    "Spawn(Run) of an invalid definition",
                )?;
            }
            Action::Spawn(Process::Finish) => {
                self.ensure(
                    m.finish_pid.is_none() && m.run_pid.is_none(),
                    "Spawn(Finish) while finish or run is alive",
                )?;
                self.ensure(m.settings.has_finish, "Spawn(Finish) without a finish")?;
            }
            Action::Spawn(Process::Test) => {
                self.ensure(m.run_pid.is_some(), "Spawn(Test) without run")?;
                self.ensure(
                    matches!(m.settings.readiness, ReadinessKind::Test { .. })
                        && !m.settings.oneshot,
                    "Spawn(Test) without a readiness test",
                )?;
                // A restart at once after run's exit may come before the old test,
                // killed with run, is reaped: the machine then forgets that pid, which
                // can do no harm once it was sent SIGKILL.
                self.ensure(
                    m.test_pid.is_none() || self.killed(m.test_pid),
                    "Spawn(Test) while a test is alive and not killed",
                )?;
            }
            Action::Signal { target, custom, .. } => {
                let (Target::Process(process) | Target::Group(process)) = target;
                self.ensure(
                    m.pid_of(*process).is_some(),
                    &format!("{action:?} to a process that is not alive"),
                )?;
                self.ensure(
                    custom.is_none_or(|c| b"tkpchaiq12".contains(&c)),
                    &format!("{action:?}: no such control script"),
                )?;
            }
            Action::ControlScript(c) => {
                self.ensure(b"udx".contains(c), &format!("{action:?}"))?;
            }
            Action::CloseNotification => {
                self.ensure(
                    m.settings.readiness == ReadinessKind::Notification,
                    "CloseNotification without notification readiness",
                )?;
            }
            Action::Exit => {
                self.ensure(m.want == Want::Exit, "Exit while not wanted exit")?;
                self.ensure(
                    m.run_pid.is_none() && m.finish_pid.is_none(),
                    "Exit while run or finish is alive",
                )?;
            }
        }
        Ok(())
    }

    fn killed(&self, pid: Option<u32>) -> bool {
        pid.is_some_and(|pid| self.killed.contains(&pid))
    }

    /// What must hold between events: what runsv writes to supervise/ is consistent
    /// and decodes back, and a timer is set whenever something waits on one.
    fn check_state(&self) -> Result<(), TestCaseError> {
        let m = &self.machine;
        let status = m.status();
        let full = m.full_state();
        self.ensure(
            Status::decode(&status.encode()) == Ok(status),
            &format!("status does not round-trip: {status:?}"),
        )?;
        let mut normalised = full.clone();
        normalised.reason = full.reason.replace(['\n', '\r'], " ");
        self.ensure(
            FullState::decode(&full.encode()).as_ref() == Some(&normalised),
            &format!("state does not round-trip: {:?}", full.encode()),
        )?;
        self.ensure(full.status == Some(status), "state holds another status")?;
        self.ensure(
            full.pid == status.pid,
            "state and status disagree on the pid",
        )?;
        self.ensure(
            full.want == m.want && status.want == m.want.status_byte(),
            "want",
        )?;
        let expected_run_state = match (m.run_pid, m.finish_pid) {
            (Some(_), _) => RunState::Run,
            (None, Some(_)) => RunState::Finish,
            (None, None) => RunState::Down,
        };
        self.ensure(status.run_state == expected_run_state, "runit's state byte")?;
        self.ensure(
            (status.pid != 0) == (status.run_state != RunState::Down),
            "a pid without a process, or a process without a pid",
        )?;
        self.ensure(self.exits_asked <= 1, "Exit asked for twice")?;

        use ServiceState::{
            Down, Error, Finishing, Ok as Done, Respawn, Running, Starting, Stopping, Waiting,
        };
        let state = m.state;
        let run = m.run_pid.is_some();
        let finish = m.finish_pid.is_some();
        match state {
            Running | Starting | Stopping => {
                self.ensure(run && !finish, "a running state without run")?
            }
            Finishing => self.ensure(finish && !run, "finishing without finish")?,
            Down | Waiting | Done | Error | Respawn => {
                self.ensure(!run && !finish, "a process alive in a state without one")?
            }
        }
        self.ensure(
            state != Running || m.ready_since.is_some(),
            "running without ready_since",
        )?;
        self.ensure(m.ready_since.is_none() || run, "ready_since without run")?;
        self.ensure(
            state != Done || m.settings.oneshot,
            "ok is a oneshot's state",
        )?;

        // Timers.
        let deadline = m.deadline.is_some();
        self.ensure(
            state != Respawn || deadline,
            "respawn without a restart timer",
        )?;
        self.ensure(
            state != Stopping || deadline || self.killed(m.run_pid),
            "stopping without a kill timer",
        )?;
        self.ensure(
            state != Finishing || deadline || self.killed(m.finish_pid),
            "finishing without a kill timer",
        )?;
        self.ensure(
            !(state == Error && m.error_cause == Some(ErrorCause::Spawn) && m.want == Want::Up)
                || deadline,
            "a failed spawn, wanted up, without a retry timer",
        )?;
        if state == Starting
            && matches!(m.settings.readiness, ReadinessKind::Test { .. })
            && !m.settings.oneshot
        {
            self.ensure(
                deadline || m.test_pid.is_some(),
                "a readiness test neither running nor scheduled",
            )?;
        }
        self.ensure(
            !(m.want == Want::Exit && run) || deadline || self.killed(m.run_pid),
            "wanted exit, run alive, and nothing will stop it",
        )?;
        self.ensure(
            !matches!(state, Down | Waiting | Done) || !deadline,
            "a timer in a state that waits for nothing",
        )?;
        Ok(())
    }

    /// One op, as the loop would deliver it.
    fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let exited = self.exits_asked > 0;
        let before = (self.machine.full_state(), self.machine.deadline);
        let actions = match op {
            // After Exit the loop reads no more control bytes and ignores SIGTERM; a
            // log is drained once.
            Op::Control(_) | Op::Terminate | Op::Drain if exited => return Ok(()),
            Op::Control(byte) => self.on(Event::Control(*byte)),
            Op::Terminate => self.on(Event::Terminate),
            Op::Drain => self.on(Event::Drain),
            Op::Advance(millis) => {
                self.now = self.now.saturating_add(Duration::from_millis(*millis));
                return Ok(());
            }
            Op::Timer => {
                let due = self.machine.deadline.is_some_and(|d| d <= self.now);
                let actions = self.on(Event::Timer);
                if !due {
                    self.ensure(
                        actions.is_empty()
                            && (self.machine.full_state(), self.machine.deadline) == before,
                        "a timer before its deadline changed something",
                    )?;
                }
                actions
            }
            Op::FireTimer => {
                if let Some(deadline) = self.machine.deadline {
                    self.now = self.now.max(deadline);
                }
                self.on(Event::Timer)
            }
            Op::Ready => self.on(Event::Ready),
            Op::Dependencies(dependencies) => self.on(Event::Dependencies(dependencies.clone())),
            Op::Exit(which, status) => {
                let alive = self.alive();
                if alive.is_empty() {
                    return Ok(());
                }
                let (_, pid) = alive[which.index(alive.len())];
                self.on(Event::Exited {
                    pid,
                    status: *status,
                })
            }
            Op::ExitUnowned(pid, status) => {
                let pid = match self.pids.first() {
                    // An old pid of ours, or any.
                    Some(_) if pid % 2 == 0 => self.pids[(*pid as usize / 2) % self.pids.len()],
                    _ => *pid,
                };
                if self.machine.owns(pid) {
                    return Ok(());
                }
                let actions = self.on(Event::Exited {
                    pid,
                    status: *status,
                });
                self.ensure(
                    actions.is_empty()
                        && (self.machine.full_state(), self.machine.deadline) == before,
                    "the exit of a pid not owned changed something",
                )?;
                actions
            }
        };
        self.perform(actions)?;
        self.check_state()
    }

    /// Tells the machine to exit (SIGTERM, or the drain of a log) and lets only time
    /// pass, ending only the processes that were sent SIGKILL: it must get to `Exit`.
    fn wind_down(&mut self) -> Result<(), TestCaseError> {
        if self.exits_asked == 0 {
            let event = if self.machine.settings.is_log {
                Event::Drain
            } else {
                Event::Terminate
            };
            let actions = self.on(event);
            self.perform(actions)?;
            self.check_state()?;
        }
        for _ in 0..20 {
            if self.exits_asked > 0 {
                break;
            }
            let doomed = self
                .alive()
                .into_iter()
                .find(|(_, pid)| self.killed.contains(pid));
            if let Some((_, pid)) = doomed {
                let actions = self.on(Event::Exited {
                    pid,
                    status: ExitStatus::Signaled(9),
                });
                self.perform(actions)?;
            } else if let Some(deadline) = self.machine.deadline {
                self.now = self.now.max(deadline);
                let actions = self.on(Event::Timer);
                self.perform(actions)?;
            } else {
                return Err(fail(format!(
                    "stuck: wanted exit, no timer, nothing killed{}",
                    self.context()
                )));
            }
            self.check_state()?;
        }
        self.ensure(self.exits_asked == 1, "never asked to exit")?;
        self.ensure(
            matches!(
                self.machine.state,
                ServiceState::Down | ServiceState::Ok | ServiceState::Error
            ),
            "exited in a state other than down, ok or error",
        )?;
        // Whatever still comes (a late timer, the exit of a killed readiness test)
        // asks for nothing more.
        let leftovers: Vec<u32> = self.alive().into_iter().map(|(_, pid)| pid).collect();
        for pid in leftovers {
            let actions = self.on(Event::Exited {
                pid,
                status: ExitStatus::Signaled(9),
            });
            self.ensure(actions.is_empty(), "actions after Exit")?;
        }
        self.now = self.now.saturating_add(Duration::from_secs(3600));
        let actions = self.on(Event::Timer);
        self.ensure(actions.is_empty(), "actions after Exit")?;
        Ok(())
    }
}

proptest! {
    #![proptest_config(config(512))]

    /// Any sequence of events on any settings: no panic, the invariants after every
    /// event, and a clean exit at the end.
    #[test]
    fn any_event_sequence_keeps_the_invariants_and_ends_in_one_exit(case in case()) {
        let mut driver = Driver::new(&case)?;
        for op in &case.ops {
            driver.apply(op)?;
        }
        driver.wind_down()?;
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
        vec![Action::ControlScript(b'u'), Action::Spawn(Process::Run)]
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
    machine.on(later(19), Event::Control(b'd'));
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
    machine.on(later(22), Event::Control(b'u'));
    let finished = Event::Exited {
        pid: 12,
        status: ExitStatus::Exited(0),
    };
    assert_eq!(
        machine.on(later(22), finished),
        vec![Action::ControlScript(b'u'), Action::Spawn(Process::Run)]
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
                custom: Some(b't'),
            }),
            "{ready:?}: {stop:?}"
        );
    }
}
