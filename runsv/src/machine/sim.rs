//! The one simulator of runsv's loop, for the unit tests and the property tests alike:
//! it performs the machine's actions in order, answers spawns at once (with fresh pids,
//! or failing, as told), and checks each action as the loop performs it, so a test
//! cannot pass on a machine that asks for something the loop could not do.

use super::*;
use std::collections::VecDeque;

/// The monotonic time every simulation starts at.
pub const T0: Duration = Duration::from_secs(1000);

/// The wall clock that goes with a monotonic time. Kept below the year 2100: a timer
/// a billion years away may be fired, but the status stamp of that moment need not be
/// representable.
pub fn at(monotonic: Duration) -> Now {
    Now {
        monotonic,
        wall: Timestamp {
            seconds: 1_700_000_000 + monotonic.as_secs().min(4_000_000_000),
            nanoseconds: monotonic.subsec_nanos(),
        },
    }
}

/// How the loop fares with a spawn the machine asked for.
#[derive(Clone, Copy, Debug)]
pub enum Spawn {
    Succeeds,
    Fails,
    /// run only: forked, pid published, then exec failed.
    ExecFails,
}

/// runsv's loop, as far as the machine can tell.
pub struct Sim {
    pub machine: Machine,
    pub now: Duration,
    next_pid: u32,
    /// The fate of each spawn, in turn (cycled).
    spawns: Vec<Spawn>,
    spawned: usize,
    /// The reasons failed spawns give, in turn (cycled).
    reasons: Vec<&'static str>,
    /// Report start times after `Spawned` (with `record_starttime`), as runsv may.
    pub starttime_later: bool,
    /// Every pid handed out, for exits of pids no longer owned.
    pub pids: Vec<u32>,
    /// Pids that were sent SIGKILL: the only ones sure to end.
    pub killed: Vec<u32>,
    pub exits_asked: usize,
    /// The actions performed for the last event, spawns' consequences included.
    pub actions: Vec<Action>,
    /// What happened, for failure messages.
    trace: Vec<String>,
}

impl Sim {
    /// A machine booted with every spawn succeeding.
    pub fn new(settings: Settings, want: Want) -> Sim {
        Sim::with(
            settings,
            want,
            vec![Spawn::Succeeds],
            vec!["spawn failed"],
            false,
        )
    }

    pub fn with(
        settings: Settings,
        want: Want,
        spawns: Vec<Spawn>,
        reasons: Vec<&'static str>,
        starttime_later: bool,
    ) -> Sim {
        let mut sim = Sim {
            machine: Machine::new(settings, want, at(T0)),
            now: T0,
            next_pid: 1000,
            spawns,
            spawned: 0,
            reasons,
            starttime_later,
            pids: Vec::new(),
            killed: Vec::new(),
            exits_asked: 0,
            actions: Vec::new(),
            trace: Vec::new(),
        };
        let actions = sim.machine.boot(at(T0));
        sim.trace.push(format!("boot -> {actions:?}"));
        sim.perform(actions);
        sim
    }

    /// Milliseconds since T0.
    pub fn now_ms(&self) -> u64 {
        (self.now - T0).as_millis() as u64
    }

    pub fn context(&self) -> String {
        format!(
            "\ntrace:\n  {}\nmachine {:?}\nnow {:?}",
            self.trace.join("\n  "),
            self.machine,
            self.now,
        )
    }

    /// Panics with the trace unless `condition` holds.
    pub fn ensure(&self, condition: bool, what: &str) {
        assert!(condition, "{what}{}", self.context());
    }

    /// The machine's answer to one event, not yet performed.
    pub fn on(&mut self, event: Event) -> Vec<Action> {
        self.trace.push(format!("{event:?}"));
        let actions = self.machine.on(at(self.now), event);
        if !actions.is_empty() {
            self.trace.push(format!("  -> {actions:?}"));
        }
        actions
    }

    /// One event, its actions performed.
    pub fn event(&mut self, event: Event) -> &mut Sim {
        self.actions.clear();
        let actions = self.on(event);
        self.perform(actions);
        self
    }

    /// A byte on `supervise/control`, decoded as the loop decodes it: a byte that is no
    /// command reaches no machine, and the loop does nothing for it.
    pub fn control(&mut self, byte: u8) -> &mut Sim {
        match Control::from_byte(byte) {
            Some(control) => self.event(Event::Control(control)),
            None => {
                self.actions.clear();
                self
            }
        }
    }

    pub fn advance(&mut self, ms: u64) -> &mut Sim {
        self.now = self.now.saturating_add(Duration::from_millis(ms));
        self
    }

    /// `process` ends with `status`.
    pub fn exit_process(&mut self, process: Process, status: ExitStatus) -> &mut Sim {
        let pid = self.machine.pid_of(process);
        self.ensure(pid.is_some(), &format!("{process:?} is not alive"));
        let pid = pid.unwrap_or_default();
        self.event(Event::Exited { pid, status })
    }

    /// Time moves on to the deadline (if any), and the timer event comes.
    pub fn fire_timer(&mut self) -> &mut Sim {
        if let Some(deadline) = self.machine.deadline() {
            self.now = self.now.max(deadline);
        }
        self.event(Event::Timer)
    }

    pub fn state(&self) -> ServiceState {
        self.machine.state()
    }

    pub fn exited(&self) -> bool {
        self.exits_asked > 0
    }

    /// Whether the last event's actions sent `signal` to `target`.
    pub fn signalled(&self, target: Target, signal: Signal) -> bool {
        self.actions.iter().any(|a| {
            matches!(a, Action::Signal { target: t, signal: s, .. } if *t == target && *s == signal)
        })
    }

    /// The live processes of the machine.
    pub fn alive(&self) -> Vec<(Process, u32)> {
        [Process::Run, Process::Finish, Process::Test]
            .into_iter()
            .filter_map(|process| self.machine.pid_of(process).map(|pid| (process, pid)))
            .collect()
    }

    pub fn was_killed(&self, pid: Option<u32>) -> bool {
        pid.is_some_and(|pid| self.killed.contains(&pid))
    }

    fn next_spawn(&mut self) -> (Spawn, String) {
        let spawn = self.spawns[self.spawned % self.spawns.len()];
        let reason = self.reasons[self.spawned % self.reasons.len()].to_string();
        self.spawned += 1;
        (spawn, reason)
    }

    fn fresh_pid(&mut self) -> u32 {
        self.next_pid += 1;
        self.pids.push(self.next_pid);
        self.next_pid
    }

    /// Performs actions in order, as the loop does; a spawn's result is an event whose
    /// actions join the queue.
    pub fn perform(&mut self, actions: Vec<Action>) {
        let mut queue: VecDeque<Action> = actions.into();
        while let Some(action) = queue.pop_front() {
            self.check_action(&action);
            self.actions.push(action.clone());
            match action {
                Action::Spawn(process) => {
                    let (spawn, reason) = self.next_spawn();
                    match (process, spawn) {
                        (_, Spawn::Succeeds)
                        | (Process::Finish | Process::Test, Spawn::ExecFails) => {
                            let pid = self.fresh_pid();
                            let starttime = if self.starttime_later { 0 } else { 7 };
                            let more = self.on(Event::Spawned {
                                process,
                                pid,
                                starttime,
                            });
                            if self.starttime_later {
                                self.machine
                                    .record_starttime(process, pid, u64::from(pid) * 3);
                            }
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
    }

    /// What must hold of an action when the loop performs it.
    fn check_action(&self, action: &Action) {
        let m = &self.machine;
        let settings = m.settings();
        let run = m.pid_of(Process::Run);
        let finish = m.pid_of(Process::Finish);
        self.ensure(
            self.exits_asked == 0,
            &format!("{action:?} after the machine asked to exit"),
        );
        match action {
            Action::Spawn(Process::Run) => {
                self.ensure(
                    run.is_none() && finish.is_none(),
                    "Spawn(Run) while run or finish is alive",
                );
                self.ensure(m.want() != Want::Exit, "Spawn(Run) while want is exit");
                self.ensure(
                    settings.invalid.is_none(),
                    "Spawn(Run) of an invalid definition",
                );
            }
            Action::Spawn(Process::Finish) => {
                self.ensure(
                    finish.is_none() && run.is_none(),
                    "Spawn(Finish) while finish or run is alive",
                );
                self.ensure(settings.has_finish, "Spawn(Finish) without a finish");
            }
            Action::Spawn(Process::Test) => {
                self.ensure(run.is_some(), "Spawn(Test) without run");
                self.ensure(
                    matches!(settings.readiness, ReadinessKind::Test { .. }) && !settings.oneshot,
                    "Spawn(Test) without a readiness test",
                );
                // A restart at once after run's exit may come before the old test,
                // killed with run, is reaped: that one can do no harm once it was sent
                // SIGKILL.
                let test = m.pid_of(Process::Test);
                self.ensure(
                    test.is_none() || self.was_killed(test),
                    "Spawn(Test) while a test is alive and not killed",
                );
            }
            Action::Signal { target, custom, .. } => {
                let (Target::Process(process) | Target::Group(process)) = target;
                self.ensure(
                    m.pid_of(*process).is_some(),
                    &format!("{action:?} to a process that is not alive"),
                );
                self.ensure(
                    custom.is_none_or(|c| b"tkpchaiq12".contains(&c.byte())),
                    &format!("{action:?}: no such control script"),
                );
            }
            Action::ControlScript(c) => {
                self.ensure(b"udx".contains(&c.byte()), &format!("{action:?}"));
            }
            Action::CloseNotification => {
                self.ensure(
                    settings.readiness == ReadinessKind::Notification,
                    "CloseNotification without notification readiness",
                );
            }
            Action::Exit => {
                self.ensure(m.want() == Want::Exit, "Exit while not wanted exit");
                self.ensure(
                    run.is_none() && finish.is_none(),
                    "Exit while run or finish is alive",
                );
            }
        }
    }
}
