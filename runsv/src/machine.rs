//! The supervisor of one service as a pure state machine: `Machine::on(now, event)`
//! updates the machine and returns the actions the event loop must perform. It does no
//! I/O and reads no clock, so every state × event pair is unit-tested without processes.
//!
//! The event loop around it (runsv's main) turns signals, control bytes, the readiness
//! pipe and timers into events, performs the actions (spawning and signalling
//! processes), feeds their results back as events, and writes `supervise/` whenever
//! `status()` or `full_state()` changes.

use nix::sys::signal::Signal;
use runsv::dependencies::Dependencies;
use runsv::duration::seconds;
use runsv::supervise::{ExitStatus, FullState, RunState, ServiceState, Status, Want};
use runsv::tai64n::Timestamp;
use std::time::Duration;

/// A run shorter than this counts as "dying fast": the next start is delayed, with a
/// delay that doubles on each further fast death. A longer run restarts at once and
/// resets the delay. This is runit's rule, without its blocking sleep.
pub const STABLE_RUN: Duration = Duration::from_secs(1);

/// How long a readiness test may run before it is killed and counted as failed.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The shortest restart delay, whatever the definition says: a service that dies at
/// once with a delay of a nanosecond would keep runsv and the fork path busy (70% of a
/// CPU, measured); 10 ms bounds a crash loop to a few percent.
pub const MIN_RESTART_DELAY: Duration = Duration::from_millis(10);

/// The two clocks an event happens at: monotonic for timers and durations, wall for
/// what is written to `supervise/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Now {
    pub monotonic: Duration,
    pub wall: Timestamp,
}

impl Now {
    /// The monotonic time `delay` from now. A delay from the definition can be as long
    /// as a u64 of seconds (`stop_timeout: 18446744073709551615`): such a timer is
    /// never due, rather than an overflow that would abort runsv and orphan the service.
    fn after(self, delay: Duration) -> Duration {
        self.monotonic.saturating_add(delay)
    }
}

/// How the machine learns that the service is ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadinessKind {
    Immediate,
    /// A test command, retried every interval until it exits 0.
    Test {
        interval: Duration,
    },
    /// A line on the notification fd.
    Notification,
}

/// The parts of a service definition the machine decides with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub oneshot: bool,
    pub has_finish: bool,
    pub readiness: ReadinessKind,
    pub stop_signal: Signal,
    pub stop_timeout: Duration,
    pub restart_delay: Duration,
    pub restart_delay_max: Duration,
    /// A log subservice: `x` on its own control FIFO is ignored (runit).
    pub is_log: bool,
    /// The definition could not be loaded: every start ends in `error` with this text.
    pub invalid: Option<String>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            oneshot: false,
            has_finish: false,
            readiness: ReadinessKind::Immediate,
            stop_signal: Signal::SIGTERM,
            stop_timeout: Duration::from_secs(10),
            restart_delay: Duration::from_secs(1),
            restart_delay_max: Duration::from_secs(60),
            is_log: false,
            invalid: None,
        }
    }
}

/// The processes a machine owns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Process {
    /// The service itself (`run` or `exec`).
    Run,
    /// runit's `./finish`, after run exits.
    Finish,
    /// The readiness test.
    Test,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The process alone (runit signals the pid for h a i q 1 2 p c).
    Process(Process),
    /// The process group of the process (stop and kill reach every descendant).
    Group(Process),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A byte from `supervise/control`.
    Control(u8),
    /// SIGTERM to runsv: the same as `x`.
    Terminate,
    /// Let the process end by itself (a logger whose input is closed), then exit; stop
    /// it after its stop timeout if it does not.
    Drain,
    /// The loop spawned the process asked for by `Action::Spawn`.
    Spawned {
        process: Process,
        pid: u32,
        starttime: u64,
    },
    /// The spawn failed; `reason` is for people (`unable to start ./run: ...`).
    SpawnFailed { process: Process, reason: String },
    /// The process reported as `Spawned` (forked, its pid already published in runit's
    /// files) could not exec; it has been reaped. Ends as `SpawnFailed` would have.
    ExecFailed {
        process: Process,
        pid: u32,
        reason: String,
    },
    /// A child of the machine was reaped.
    Exited { pid: u32, status: ExitStatus },
    /// A line arrived on the notification fd.
    Ready,
    /// The machine's deadline has come.
    Timer,
    /// The dependencies changed.
    Dependencies(Dependencies),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Spawn this process and report `Spawned` or `SpawnFailed`.
    Spawn(Process),
    /// Send a signal. With `custom`, run `control/<custom>` first if it is executable;
    /// if it exits 0 it has handled the command and the signal is not sent (runit).
    Signal {
        target: Target,
        signal: Signal,
        custom: Option<u8>,
    },
    /// Run `control/<c>` if it is executable, for its side effects only (`u` before
    /// each start, `d`/`x` after a stop; runit).
    ControlScript(u8),
    /// Stop reading the notification fd.
    CloseNotification,
    /// Want is exit and nothing runs: this supervisor is done.
    Exit,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ErrorCause {
    /// The run could not be spawned; retried while wanted up.
    Spawn,
    /// A oneshot exited non-zero; rerun only on request.
    Exit,
    /// Dependencies failed, unknown or cyclic; re-evaluated when they change.
    Dependency,
    /// The definition is invalid.
    Definition,
}

/// The supervisor of one service.
#[derive(Clone, Debug)]
pub struct Machine {
    pub settings: Settings,
    want: Want,
    state: ServiceState,
    reason: String,
    /// When `state` was entered.
    state_since: Timestamp,
    /// runit's status stamp: last start of run, or when the service became down.
    status_since: Timestamp,
    ready_since: Option<Timestamp>,
    run_pid: Option<u32>,
    run_starttime: u64,
    finish_pid: Option<u32>,
    finish_starttime: u64,
    test_pid: Option<u32>,
    /// Monotonic time of the last spawn of run.
    started_at: Duration,
    paused: bool,
    term_sent: bool,
    /// We asked the current run to stop (so its exit is not a failure to report).
    stop_requested: bool,
    last_exit: Option<ExitStatus>,
    restarts: u32,
    /// Consecutive runs shorter than STABLE_RUN (or failed spawns).
    fast_failures: u32,
    deadline: Option<Duration>,
    error_cause: Option<ErrorCause>,
    dependencies: Dependencies,
    exit_sent: bool,
}

impl Machine {
    /// A machine for a service that is down, wanted `want` (down when a `down` file
    /// exists). Call `on(now, Event::Control(b'u'))`-like events to drive it; `boot`
    /// performs the initial start when wanted up.
    pub fn new(settings: Settings, want: Want, now: Now) -> Machine {
        Machine {
            settings,
            want,
            state: ServiceState::Down,
            reason: String::new(),
            state_since: now.wall,
            status_since: now.wall,
            ready_since: None,
            run_pid: None,
            run_starttime: 0,
            finish_pid: None,
            finish_starttime: 0,
            test_pid: None,
            started_at: now.monotonic,
            paused: false,
            term_sent: false,
            stop_requested: false,
            last_exit: None,
            restarts: 0,
            fast_failures: 0,
            deadline: None,
            error_cause: None,
            dependencies: Dependencies::Satisfied,
            exit_sent: false,
        }
    }

    /// The first actions: start the service if it is wanted up.
    pub fn boot(&mut self, now: Now) -> Vec<Action> {
        let mut actions = Vec::new();
        if self.want == Want::Up {
            self.start(now, &mut actions);
        }
        actions
    }

    /// Instead of `boot`: takes over the `run` a killed predecessor left running and
    /// ready (`previous` is the state it published; the caller checked that pid and
    /// start time still match). The service goes on as if this machine had started
    /// it: same pid, uptime, restart count and want.
    pub fn adopt(&mut self, now: Now, previous: &FullState) {
        self.want = previous.want;
        self.run_pid = Some(previous.pid);
        self.run_starttime = previous.starttime;
        self.started_at = now.monotonic;
        if let Some(status) = previous.status {
            self.status_since = status.since;
            self.paused = status.paused;
        }
        self.ready_since = previous.ready_since.or(Some(now.wall));
        self.last_exit = previous.last_exit;
        self.restarts = previous.restarts;
        self.state = ServiceState::Running;
        self.state_since = previous.since;
        self.reason.clear();
    }

    #[cfg(test)]
    pub fn state(&self) -> ServiceState {
        self.state
    }
    pub fn settings(&self) -> &Settings {
        &self.settings
    }
    /// In `error` because run could not be spawned (retried while wanted up).
    #[cfg(test)]
    pub fn retries_spawn(&self) -> bool {
        self.state == ServiceState::Error && self.error_cause == Some(ErrorCause::Spawn)
    }
    pub fn want(&self) -> Want {
        self.want
    }
    #[cfg(test)]
    pub fn reason(&self) -> &str {
        &self.reason
    }
    pub fn deadline(&self) -> Option<Duration> {
        self.deadline
    }
    pub fn pid_of(&self, process: Process) -> Option<u32> {
        match process {
            Process::Run => self.run_pid,
            Process::Finish => self.finish_pid,
            Process::Test => self.test_pid,
        }
    }
    /// Whether `pid` is one of this machine's children.
    pub fn owns(&self, pid: u32) -> bool {
        [self.run_pid, self.finish_pid, self.test_pid].contains(&Some(pid))
    }

    /// runit's 20-byte status as it stands.
    pub fn status(&self) -> Status {
        let (pid, run_state) = match (self.run_pid, self.finish_pid) {
            (Some(pid), _) => (pid, RunState::Run),
            (None, Some(pid)) => (pid, RunState::Finish),
            (None, None) => (0, RunState::Down),
        };
        Status {
            since: self.status_since,
            pid,
            paused: self.paused,
            want: self.want.status_byte(),
            term_sent: self.term_sent,
            run_state,
        }
    }

    /// The `supervise/state` record as it stands.
    pub fn full_state(&self) -> FullState {
        let (pid, starttime) = match (self.run_pid, self.finish_pid) {
            (Some(pid), _) => (pid, self.run_starttime),
            (None, Some(pid)) => (pid, self.finish_starttime),
            (None, None) => (0, 0),
        };
        FullState {
            state: self.state,
            want: self.want,
            pid,
            starttime,
            since: self.state_since,
            ready_since: self.ready_since,
            last_exit: self.last_exit,
            restarts: self.restarts,
            oneshot: self.settings.oneshot,
            reason: self.reason.clone(),
            status: Some(self.status()),
        }
    }

    /// Handles one event; returns what the loop must do, in order.
    pub fn on(&mut self, now: Now, event: Event) -> Vec<Action> {
        let mut actions = Vec::new();
        match event {
            Event::Control(byte) => self.control(now, byte, &mut actions),
            Event::Terminate => self.control(now, b'x', &mut actions),
            Event::Drain => self.drain(now, &mut actions),
            Event::Spawned {
                process,
                pid,
                starttime,
            } => self.spawned(now, process, pid, starttime, &mut actions),
            Event::SpawnFailed { process, reason } => {
                self.spawn_failed(now, process, reason, &mut actions)
            }
            Event::ExecFailed {
                process,
                pid,
                reason,
            } => self.exec_failed(now, process, pid, reason, &mut actions),
            Event::Exited { pid, status } => self.exited(now, pid, status, &mut actions),
            Event::Ready => {
                if self.state == ServiceState::Starting
                    && self.settings.readiness == ReadinessKind::Notification
                {
                    self.become_ready(now);
                    actions.push(Action::CloseNotification);
                }
            }
            Event::Timer => self.timer(now, &mut actions),
            Event::Dependencies(dependencies) => {
                self.dependencies_changed(now, dependencies, &mut actions)
            }
        }
        self.exit_if_done(&mut actions);
        actions
    }

    fn set_state(&mut self, now: Now, state: ServiceState, reason: impl Into<String>) {
        let reason = reason.into();
        if self.state != state {
            self.state_since = now.wall;
        }
        self.state = state;
        self.reason = reason;
        if state != ServiceState::Error {
            self.error_cause = None;
        }
    }

    fn set_error(&mut self, now: Now, cause: ErrorCause, reason: String) {
        self.set_state(now, ServiceState::Error, reason);
        self.error_cause = Some(cause);
    }

    fn run_alive(&self) -> bool {
        self.run_pid.is_some()
    }

    /// Neither run nor finish is alive.
    fn idle(&self) -> bool {
        self.run_pid.is_none() && self.finish_pid.is_none()
    }

    fn control(&mut self, now: Now, byte: u8, actions: &mut Vec<Action>) {
        match byte {
            b'u' => {
                self.want = Want::Up;
                if self.idle() && self.state != ServiceState::Waiting {
                    self.fast_failures = 0;
                    self.start(now, actions);
                }
            }
            b'd' => {
                self.want = Want::Down;
                if self.run_alive() {
                    self.stop(now, actions);
                } else if self.idle() {
                    self.settle_down(now);
                }
            }
            b'o' => {
                self.want = Want::Down;
                if self.idle() {
                    self.fast_failures = 0;
                    self.start(now, actions);
                }
            }
            b'x' => {
                if self.settings.is_log {
                    return;
                }
                self.want = Want::Exit;
                if self.run_alive() {
                    self.stop(now, actions);
                } else if self.idle() {
                    self.settle_down(now);
                }
            }
            b't' if self.run_alive() => self.stop(now, actions),
            b'k' => {
                if self.run_alive() {
                    self.stop_requested = true;
                    actions.push(Action::Signal {
                        target: Target::Group(Process::Run),
                        signal: Signal::SIGKILL,
                        custom: Some(b'k'),
                    });
                } else if self.finish_pid.is_some() {
                    // runit leaves a hung finish alone and later runs finish a second
                    // time; here `k` ends finish and the service goes down once.
                    actions.push(Action::Signal {
                        target: Target::Group(Process::Finish),
                        signal: Signal::SIGKILL,
                        custom: None,
                    });
                }
            }
            b'p' | b'c' => {
                self.paused = byte == b'p';
                if self.run_alive() {
                    let signal = if byte == b'p' {
                        Signal::SIGSTOP
                    } else {
                        Signal::SIGCONT
                    };
                    actions.push(Action::Signal {
                        target: Target::Process(Process::Run),
                        signal,
                        custom: Some(byte),
                    });
                }
            }
            b'h' | b'a' | b'i' | b'q' | b'1' | b'2' if self.run_alive() => {
                let signal = match byte {
                    b'h' => Signal::SIGHUP,
                    b'a' => Signal::SIGALRM,
                    b'i' => Signal::SIGINT,
                    b'q' => Signal::SIGQUIT,
                    b'1' => Signal::SIGUSR1,
                    _ => Signal::SIGUSR2,
                };
                actions.push(Action::Signal {
                    target: Target::Process(Process::Run),
                    signal,
                    custom: Some(byte),
                });
            }
            _ => {}
        }
    }

    /// Nothing runs and the service is not wanted up: drop any pending restart.
    /// A oneshot's `ok`/`error` stays: it records what happened, and dependents rely
    /// on `ok`.
    fn settle_down(&mut self, now: Now) {
        self.deadline = None;
        let keep = self.settings.oneshot
            && matches!(self.state, ServiceState::Ok | ServiceState::Error)
            && self.error_cause != Some(ErrorCause::Spawn);
        if !keep {
            self.set_state(now, ServiceState::Down, "");
        }
    }

    fn drain(&mut self, now: Now, actions: &mut Vec<Action>) {
        self.want = Want::Exit;
        if self.run_alive() {
            self.deadline = Some(now.after(self.settings.stop_timeout));
        } else if self.idle() {
            self.settle_down(now);
        }
        let _ = actions;
    }

    /// Starts run if the dependencies and the definition allow it.
    fn start(&mut self, now: Now, actions: &mut Vec<Action>) {
        self.deadline = None;
        if let Some(problem) = &self.settings.invalid {
            let reason = format!("invalid definition: {problem}");
            self.set_error(now, ErrorCause::Definition, reason);
            return;
        }
        match &self.dependencies {
            Dependencies::Satisfied => {}
            Dependencies::Waiting(names) => {
                let reason = format!("waiting for {}", names.join(", "));
                self.set_state(now, ServiceState::Waiting, reason);
                return;
            }
            Dependencies::Failed { name, reason } => {
                let reason = format!("dependency {name} failed: {reason}");
                self.set_error(now, ErrorCause::Dependency, reason);
                return;
            }
            Dependencies::Unknown(names) => {
                let reason = format!("unknown dependency {}", names.join(", "));
                self.set_error(now, ErrorCause::Dependency, reason);
                return;
            }
            Dependencies::Cycle(cycle) => {
                let reason = format!("dependency cycle: {cycle}");
                self.set_error(now, ErrorCause::Dependency, reason);
                return;
            }
        }
        actions.push(Action::ControlScript(b'u'));
        actions.push(Action::Spawn(Process::Run));
    }

    fn spawned(
        &mut self,
        now: Now,
        process: Process,
        pid: u32,
        starttime: u64,
        actions: &mut Vec<Action>,
    ) {
        match process {
            Process::Run => {
                self.run_pid = Some(pid);
                self.run_starttime = starttime;
                self.started_at = now.monotonic;
                self.status_since = now.wall;
                self.paused = false;
                self.term_sent = false;
                self.stop_requested = false;
                self.ready_since = None;
                self.deadline = None;
                match self.settings.readiness {
                    ReadinessKind::Immediate if !self.settings.oneshot => {
                        self.set_state(now, ServiceState::Running, "");
                        self.ready_since = Some(now.wall);
                    }
                    ReadinessKind::Test { .. } if !self.settings.oneshot => {
                        self.set_state(now, ServiceState::Starting, "");
                        actions.push(Action::Spawn(Process::Test));
                    }
                    _ => self.set_state(now, ServiceState::Starting, ""),
                }
            }
            Process::Finish => {
                self.finish_pid = Some(pid);
                self.finish_starttime = starttime;
                self.deadline = Some(now.after(self.settings.stop_timeout));
                let reason = self.last_exit.map(|e| e.to_string()).unwrap_or_default();
                self.set_state(now, ServiceState::Finishing, reason);
            }
            Process::Test => {
                self.test_pid = Some(pid);
                self.deadline = Some(now.after(TEST_TIMEOUT));
            }
        }
    }

    fn spawn_failed(
        &mut self,
        now: Now,
        process: Process,
        reason: String,
        actions: &mut Vec<Action>,
    ) {
        match process {
            Process::Run => {
                self.last_exit = None;
                if self.want == Want::Up {
                    self.fast_failures += 1;
                    let delay = self.backoff();
                    self.deadline = Some(now.after(delay));
                    let reason = format!("{reason}; retrying in {}", seconds(delay));
                    self.set_error(now, ErrorCause::Spawn, reason);
                } else {
                    self.set_error(now, ErrorCause::Spawn, reason);
                }
                self.status_since = now.wall;
            }
            // Without a finish the service is simply down.
            Process::Finish => self.became_down(now, actions),
            Process::Test => {
                if self.state == ServiceState::Starting {
                    self.reason = format!("readiness test: {reason}");
                    self.schedule_test(now);
                }
            }
        }
    }

    /// Records the start time of a process reported as `Spawned` without one (runsv
    /// reads it from /proc after it has published the pid, not before).
    #[cfg(test)]
    pub fn record_starttime(&mut self, process: Process, pid: u32, starttime: u64) {
        match process {
            Process::Run if self.run_pid == Some(pid) => self.run_starttime = starttime,
            Process::Finish if self.finish_pid == Some(pid) => self.finish_starttime = starttime,
            _ => {}
        }
    }

    /// Undoes `spawned` for a process that never ran, then fails as a spawn would.
    fn exec_failed(
        &mut self,
        now: Now,
        process: Process,
        pid: u32,
        reason: String,
        actions: &mut Vec<Action>,
    ) {
        let slot = match process {
            Process::Run => &mut self.run_pid,
            Process::Finish => &mut self.finish_pid,
            Process::Test => &mut self.test_pid,
        };
        if *slot != Some(pid) {
            return;
        }
        *slot = None;
        match process {
            Process::Run => {
                self.run_starttime = 0;
                self.ready_since = None;
            }
            Process::Finish => self.finish_starttime = 0,
            Process::Test => {}
        }
        self.deadline = None;
        self.spawn_failed(now, process, reason, actions);
    }

    fn exited(&mut self, now: Now, pid: u32, status: ExitStatus, actions: &mut Vec<Action>) {
        if self.run_pid == Some(pid) {
            self.run_pid = None;
            self.run_starttime = 0;
            self.last_exit = Some(status);
            self.term_sent = false;
            self.paused = false;
            self.ready_since = None;
            if self.test_pid.is_some() {
                actions.push(Action::Signal {
                    target: Target::Group(Process::Test),
                    signal: Signal::SIGKILL,
                    custom: None,
                });
            }
            if self.settings.has_finish {
                actions.push(Action::Spawn(Process::Finish));
            } else {
                self.became_down(now, actions);
            }
        } else if self.finish_pid == Some(pid) {
            self.finish_pid = None;
            self.finish_starttime = 0;
            self.became_down(now, actions);
        } else if self.test_pid == Some(pid) {
            self.test_pid = None;
            if self.state == ServiceState::Starting {
                if status.success() {
                    self.become_ready(now);
                } else {
                    self.reason = format!("readiness test {status}");
                    self.schedule_test(now);
                }
            }
        }
    }

    fn schedule_test(&mut self, now: Now) {
        // A drained logger (want exit while starting) keeps the drain's timer: a retry
        // sooner would stop it before its stop timeout.
        if self.want == Want::Exit {
            return;
        }
        if let ReadinessKind::Test { interval } = self.settings.readiness {
            self.deadline = Some(now.after(interval));
        }
    }

    fn become_ready(&mut self, now: Now) {
        // Only the readiness test's timer ends here; a drained logger that becomes ready
        // keeps the drain's, or nothing would stop one that ignores its closed input.
        if self.want != Want::Exit {
            self.deadline = None;
        }
        self.ready_since = Some(now.wall);
        self.set_state(now, ServiceState::Running, "");
    }

    /// run (and finish) are over: decide between down, ok/error, a restart now, or a
    /// restart later.
    fn became_down(&mut self, now: Now, actions: &mut Vec<Action>) {
        self.status_since = now.wall;
        self.deadline = None;
        let ran_for = now.monotonic.saturating_sub(self.started_at);
        let exit = self.last_exit;
        let exit_text = exit.map(|e| e.to_string()).unwrap_or_default();
        if self.settings.oneshot && !self.stop_requested {
            // A oneshot that ended by itself: record the outcome; it runs again only
            // when asked (`u`/`o`), so want becomes down.
            if self.want == Want::Up {
                self.want = Want::Down;
            }
            match exit {
                Some(status) if status.success() => self.set_state(now, ServiceState::Ok, ""),
                _ => self.set_error(now, ErrorCause::Exit, exit_text),
            }
            return;
        }
        match self.want {
            Want::Down | Want::Exit => self.set_state(now, ServiceState::Down, ""),
            Want::Up if self.stop_requested || ran_for >= STABLE_RUN => {
                // Asked to restart (`t`), or it had been up a while: at once. The state
                // between the exit and the new start (runsv publishes it) says so.
                if ran_for >= STABLE_RUN {
                    self.fast_failures = 0;
                }
                self.restarts += 1;
                let reason = if self.stop_requested {
                    "restarting as asked".to_string()
                } else {
                    format!("{exit_text}; restarting now")
                };
                self.set_state(now, ServiceState::Respawn, reason);
                self.start(now, actions);
            }
            Want::Up => {
                self.fast_failures += 1;
                let delay = self.backoff();
                self.deadline = Some(now.after(delay));
                let reason = format!("{exit_text}; restarting in {}", seconds(delay));
                self.set_state(now, ServiceState::Respawn, reason);
            }
        }
    }

    /// The growing delay: restart_delay doubled per consecutive fast failure, capped,
    /// and never below MIN_RESTART_DELAY.
    fn backoff(&self) -> Duration {
        let doublings = self.fast_failures.saturating_sub(1).min(31);
        let delay = self
            .settings
            .restart_delay
            .checked_mul(1u32 << doublings)
            .unwrap_or(self.settings.restart_delay_max);
        delay
            .min(self.settings.restart_delay_max)
            .max(MIN_RESTART_DELAY)
    }

    /// Stop signal (or `control/t`) to the group; when the service is not to come
    /// back, CONT so a stopped process can act on it, and `control/d` or `control/x`.
    fn stop(&mut self, now: Now, actions: &mut Vec<Action>) {
        self.stop_requested = true;
        self.term_sent = true;
        actions.push(Action::Signal {
            target: Target::Group(Process::Run),
            signal: self.settings.stop_signal,
            custom: Some(b't'),
        });
        if self.test_pid.is_some() {
            actions.push(Action::Signal {
                target: Target::Group(Process::Test),
                signal: Signal::SIGKILL,
                custom: None,
            });
        }
        if self.want != Want::Up {
            actions.push(Action::Signal {
                target: Target::Group(Process::Run),
                signal: Signal::SIGCONT,
                custom: None,
            });
            let script = if self.want == Want::Exit { b'x' } else { b'd' };
            actions.push(Action::ControlScript(script));
        }
        if self.state != ServiceState::Stopping {
            self.deadline = Some(now.after(self.settings.stop_timeout));
            self.set_state(now, ServiceState::Stopping, "");
        }
    }

    fn timer(&mut self, now: Now, actions: &mut Vec<Action>) {
        match self.deadline {
            Some(deadline) if now.monotonic >= deadline => {}
            _ => return,
        }
        self.deadline = None;
        match self.state {
            ServiceState::Respawn => {
                self.restarts += 1;
                self.start(now, actions);
            }
            ServiceState::Error
                if self.error_cause == Some(ErrorCause::Spawn) && self.want == Want::Up =>
            {
                self.start(now, actions);
            }
            ServiceState::Stopping if self.run_alive() => {
                let reason = format!(
                    "did not stop within {}; sent SIGKILL",
                    seconds(self.settings.stop_timeout)
                );
                self.reason = reason;
                actions.push(Action::Signal {
                    target: Target::Group(Process::Run),
                    signal: Signal::SIGKILL,
                    custom: None,
                });
            }
            ServiceState::Finishing if self.finish_pid.is_some() => {
                self.reason = format!(
                    "finish did not end within {}; sent SIGKILL",
                    seconds(self.settings.stop_timeout)
                );
                actions.push(Action::Signal {
                    target: Target::Group(Process::Finish),
                    signal: Signal::SIGKILL,
                    custom: None,
                });
            }
            ServiceState::Starting | ServiceState::Running
                if self.want == Want::Exit && self.run_alive() =>
            {
                // A drained logger that did not end by itself.
                self.stop(now, actions);
            }
            ServiceState::Starting if self.test_pid.is_some() => {
                actions.push(Action::Signal {
                    target: Target::Group(Process::Test),
                    signal: Signal::SIGKILL,
                    custom: None,
                });
            }
            ServiceState::Starting if self.run_alive() => {
                if let ReadinessKind::Test { .. } = self.settings.readiness {
                    actions.push(Action::Spawn(Process::Test));
                }
            }
            _ => {}
        }
    }

    fn dependencies_changed(
        &mut self,
        now: Now,
        dependencies: Dependencies,
        actions: &mut Vec<Action>,
    ) {
        if self.dependencies == dependencies {
            return;
        }
        self.dependencies = dependencies;
        let blocked =
            self.state == ServiceState::Waiting || self.error_cause == Some(ErrorCause::Dependency);
        if blocked && self.idle() && self.want == Want::Up {
            self.start(now, actions);
        }
    }

    fn exit_if_done(&mut self, actions: &mut Vec<Action>) {
        if self.want == Want::Exit && self.idle() && !self.exit_sent {
            let spawning = actions
                .iter()
                .any(|a| matches!(a, Action::Spawn(Process::Finish)));
            if !spawning {
                self.exit_sent = true;
                self.deadline = None;
                actions.push(Action::Exit);
            }
        }
    }
}

#[cfg(test)]
mod sim;

#[cfg(test)]
mod table_tests;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod props;
