//! The supervisor of one service as a pure state machine: `Machine::on(now, event)`
//! updates the machine and returns the actions the event loop must perform. It does no
//! I/O and reads no clock, so every state × event pair is unit-tested without processes.
//! Its state is a `Phase` (phase.rs) that holds the processes and timer of each state;
//! `on` is one match over (phase, event), s6-supervise's `actions[state][event]`
//! (table.rs).
//!
//! The event loop around it (runsv's main) turns signals, control bytes, the readiness
//! pipe and timers into events, performs the actions (spawning and signalling
//! processes), feeds their results back as events, and writes `supervise/` whenever
//! `status()` or `full_state()` changes.

use nix::sys::signal::Signal;
use runsv::control::Control;
mod phase;
mod table;
mod transitions;

#[cfg(test)]
use phase::{Cause, Finish};
use phase::{Phase, Run};
use runsv::dependencies::Dependencies;
#[cfg(test)]
use runsv::supervise::ServiceState;
use runsv::supervise::{ExitStatus, FullState, RunState, Status, Want};
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
    /// A command from `supervise/control`, decoded where the FIFO is read (a byte that
    /// is no command never becomes an event). `R` on the main service's FIFO is the
    /// loop's: it re-reads the definition and sends `Reconfigure`.
    Control(Control),
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
    /// `sv reconfigure` loaded a changed definition (or a new reason it is invalid):
    /// these settings are in force from now on. `dependencies`, when `after:` changed,
    /// is how the new list stands.
    Reconfigure {
        settings: Settings,
        dependencies: Option<Dependencies>,
    },
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
        custom: Option<Control>,
    },
    /// Run `control/<c>` if it is executable, for its side effects only (`u` before
    /// each start, `d`/`x` after a stop; runit).
    ControlScript(Control),
    /// Stop reading the notification fd.
    CloseNotification,
    /// Want is exit and nothing runs: this supervisor is done.
    Exit,
}

/// The supervisor of one service.
#[derive(Clone, Debug)]
pub struct Machine {
    settings: Settings,
    want: Want,
    phase: Phase,
    reason: String,
    /// When the published state was entered.
    state_since: Timestamp,
    /// runit's status stamp: last start of run, or when the service became down.
    status_since: Timestamp,
    /// runit's paused flag: `p` sets it whether or not run lives, as runit does.
    paused: bool,
    last_exit: Option<ExitStatus>,
    restarts: u32,
    /// Consecutive runs shorter than STABLE_RUN (or failed spawns).
    fast_failures: u32,
    dependencies: Dependencies,
    exit_sent: bool,
    /// A readiness test sent SIGKILL when its run ended or was stopped, until it is
    /// reaped: it outlives the phase that started it.
    killed_test: Option<u32>,
    /// The OOM killer killed a process of this run (its cgroup said so): the reason
    /// says that rather than the bare SIGKILL.
    oom_killed: bool,
}

impl Machine {
    /// A machine for a service that is down, wanted `want` (down when a `down` file
    /// exists). `boot` performs the initial start when wanted up.
    pub fn new(settings: Settings, want: Want, now: Now) -> Machine {
        Machine {
            settings,
            want,
            phase: Phase::Down,
            reason: String::new(),
            state_since: now.wall,
            status_since: now.wall,
            paused: false,
            last_exit: None,
            restarts: 0,
            fast_failures: 0,
            dependencies: Dependencies::Satisfied,
            exit_sent: false,
            killed_test: None,
            oom_killed: false,
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
        if let Some(status) = previous.status {
            self.status_since = status.since;
            self.paused = status.paused;
        }
        self.last_exit = previous.last_exit;
        self.restarts = previous.restarts;
        self.phase = Phase::Running {
            run: Run {
                pid: previous.pid,
                starttime: previous.starttime,
                started_at: now.monotonic,
                stop_requested: false,
            },
            ready_since: previous.ready_since.unwrap_or(now.wall),
            drain_at: None,
        };
        self.state_since = previous.since;
        self.reason.clear();
    }

    /// Before the `Exited` of run: the OOM killer killed a process of the service.
    pub fn note_oom_kill(&mut self) {
        self.oom_killed = true;
    }

    /// How the last run ended, for people: `exited 1`, `killed by the OOM killer`.
    fn exit_text(&self) -> String {
        match self.last_exit {
            _ if self.oom_killed => "killed by the OOM killer".to_string(),
            Some(status) => status.to_string(),
            None => String::new(),
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }
    #[cfg(test)]
    pub fn state(&self) -> ServiceState {
        self.phase.state()
    }
    pub fn want(&self) -> Want {
        self.want
    }
    #[cfg(test)]
    pub fn reason(&self) -> &str {
        &self.reason
    }
    /// In `error` because run could not be spawned (retried while wanted up).
    #[cfg(test)]
    pub fn retries_spawn(&self) -> bool {
        matches!(
            self.phase,
            Phase::Error {
                cause: Cause::Spawn { .. }
            }
        )
    }
    /// When the loop must send `Event::Timer`.
    pub fn deadline(&self) -> Option<Duration> {
        self.phase.deadline()
    }
    pub fn pid_of(&self, process: Process) -> Option<u32> {
        match (process, self.phase) {
            (Process::Run, phase) => phase.run().map(|run| run.pid),
            (Process::Finish, phase) => phase.finish().map(|finish| finish.pid),
            (
                Process::Test,
                Phase::Starting {
                    test: Some(pid), ..
                },
            ) => Some(pid),
            (Process::Test, _) => self.killed_test,
        }
    }
    /// Whether `pid` is one of this machine's children.
    pub fn owns(&self, pid: u32) -> bool {
        [Process::Run, Process::Finish, Process::Test]
            .into_iter()
            .any(|process| self.pid_of(process) == Some(pid))
            || self.killed_test == Some(pid)
    }

    /// runit's 20-byte status as it stands.
    pub fn status(&self) -> Status {
        let (pid, run_state) = match (self.phase.run(), self.phase.finish()) {
            (Some(run), _) => (run.pid, RunState::Run),
            (None, Some(finish)) => (finish.pid, RunState::Finish),
            (None, None) => (0, RunState::Down),
        };
        Status {
            since: self.status_since,
            pid,
            paused: self.paused,
            want: self.want.status_byte(),
            term_sent: matches!(self.phase, Phase::Stopping { .. }),
            run_state,
        }
    }

    /// The `supervise/state` record as it stands.
    pub fn full_state(&self) -> FullState {
        let (pid, starttime) = match (self.phase.run(), self.phase.finish()) {
            (Some(run), _) => (run.pid, run.starttime),
            (None, Some(finish)) => (finish.pid, finish.starttime),
            (None, None) => (0, 0),
        };
        FullState {
            state: self.phase.state(),
            want: self.want,
            pid,
            starttime,
            since: self.state_since,
            ready_since: self.phase.ready_since(),
            last_exit: self.last_exit,
            restarts: self.restarts,
            oneshot: self.settings.oneshot,
            reason: self.reason.clone(),
            status: Some(self.status()),
        }
    }

    /// Records the start time of a process reported as `Spawned` without one (runsv
    /// may read it from /proc after it has published the pid, not before).
    #[cfg(test)]
    pub fn record_starttime(&mut self, process: Process, pid: u32, starttime: u64) {
        match (process, self.phase) {
            (Process::Run, phase) => {
                if let Some(run) = phase.run().filter(|run| run.pid == pid) {
                    self.phase = phase.with_run(Run { starttime, ..run });
                }
            }
            (
                Process::Finish,
                Phase::Finishing {
                    finish: Some(finish),
                    kill_at,
                    ran,
                },
            ) if finish.pid == pid => {
                self.phase = Phase::Finishing {
                    finish: Some(Finish { pid, starttime }),
                    kill_at,
                    ran,
                };
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod sim;

#[cfg(test)]
mod table_tests;

#[cfg(test)]
mod machine_tests;

#[cfg(test)]
mod props;
