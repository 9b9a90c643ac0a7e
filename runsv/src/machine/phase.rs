//! What the service is doing, as one value: each phase holds exactly the processes and
//! the timer it waits on, so a `running` without a pid, a `respawn` that still owns a
//! run, or a timer in `down` cannot be written down at all.

use runsv::supervise::ServiceState;
use runsv::tai64n::Timestamp;
use std::time::Duration;

/// The service's `run`, while it lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    pub pid: u32,
    /// From /proc (0 until known): with the pid, it identifies the process for a
    /// successor runsv.
    pub starttime: u64,
    /// Monotonic time of the spawn: a short run counts as dying fast.
    pub started_at: Duration,
    /// runsv asked it to stop (`t`, `d`, `x`, `k`): its end is no failure to report.
    pub stop_requested: bool,
}

impl Run {
    /// What decides the next step once run is over, kept through finish.
    pub fn ended(self) -> Ended {
        Ended {
            started_at: self.started_at,
            stop_requested: self.stop_requested,
        }
    }
}

/// A run that has exited, as far as the decision after finish needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ended {
    pub started_at: Duration,
    pub stop_requested: bool,
}

/// runit's `./finish` while it lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Finish {
    pub pid: u32,
    pub starttime: u64,
}

/// Why the service is in `error`: it decides what gets it out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// run could not be spawned; retried at `retry` while wanted up (None: not
    /// retried, or the retry's spawn is under way).
    Spawn { retry: Option<Duration> },
    /// A oneshot exited non-zero; rerun only on request.
    Exit,
    /// Dependencies failed, unknown or cyclic; re-evaluated when they change.
    Dependency,
    /// The definition is invalid.
    Definition,
}

/// The phases of runsv's `actions[phase][event]` table (see table.rs). The idle ones
/// (no process) may also be waiting for the loop's answer to `Spawn(Run)`, which comes
/// before any other event: supervise/ keeps showing them until then.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Not wanted up, and nothing runs.
    Down,
    /// Wanted up; dependencies not yet up (the reason names them).
    Waiting,
    /// run is up, readiness not yet seen. `test` is the readiness test while it runs.
    /// `timer`: with want exit (a drained logger), when run is stopped; otherwise when
    /// a hung test is killed or the next test runs.
    Starting {
        run: Run,
        test: Option<u32>,
        timer: Option<Duration>,
    },
    /// run is up and ready. `drain_at`: a drained logger is stopped then.
    Running {
        run: Run,
        ready_since: Timestamp,
        drain_at: Option<Duration>,
    },
    /// The stop signal was sent; SIGKILL at `kill_at` (None once sent).
    Stopping {
        run: Run,
        ready_since: Option<Timestamp>,
        kill_at: Option<Duration>,
    },
    /// run is over and `finish` runs (None while its spawn is under way); SIGKILL at
    /// `kill_at` (None once sent).
    Finishing {
        finish: Option<Finish>,
        kill_at: Option<Duration>,
        ran: Ended,
    },
    /// run exited; it starts again at `until` (None: at once, the spawn under way).
    Respawn {
        until: Option<Duration>,
    },
    /// A oneshot that exited 0.
    Ok,
    Error {
        cause: Cause,
    },
}

impl Phase {
    /// The state published in `supervise/state`.
    pub fn state(&self) -> ServiceState {
        match self {
            Phase::Down => ServiceState::Down,
            Phase::Waiting => ServiceState::Waiting,
            Phase::Starting { .. } => ServiceState::Starting,
            Phase::Running { .. } => ServiceState::Running,
            Phase::Stopping { .. } => ServiceState::Stopping,
            Phase::Finishing { .. } => ServiceState::Finishing,
            Phase::Respawn { .. } => ServiceState::Respawn,
            Phase::Ok => ServiceState::Ok,
            Phase::Error { .. } => ServiceState::Error,
        }
    }

    /// run, in the phases it lives in.
    pub fn run(&self) -> Option<Run> {
        match *self {
            Phase::Starting { run, .. }
            | Phase::Running { run, .. }
            | Phase::Stopping { run, .. } => Some(run),
            _ => None,
        }
    }

    pub fn finish(&self) -> Option<Finish> {
        match *self {
            Phase::Finishing { finish, .. } => finish,
            _ => None,
        }
    }

    /// Neither run nor finish lives (or is being spawned as finish).
    pub fn idle(&self) -> bool {
        matches!(
            self,
            Phase::Down | Phase::Waiting | Phase::Respawn { .. } | Phase::Ok | Phase::Error { .. }
        )
    }

    /// When the phase's timer is due.
    pub fn deadline(&self) -> Option<Duration> {
        match *self {
            Phase::Starting { timer, .. } => timer,
            Phase::Running { drain_at, .. } => drain_at,
            Phase::Stopping { kill_at, .. } | Phase::Finishing { kill_at, .. } => kill_at,
            Phase::Respawn { until } => until,
            Phase::Error {
                cause: Cause::Spawn { retry },
            } => retry,
            Phase::Down | Phase::Waiting | Phase::Ok | Phase::Error { .. } => None,
        }
    }

    /// Since when run has been ready.
    pub fn ready_since(&self) -> Option<Timestamp> {
        match *self {
            Phase::Running { ready_since, .. } => Some(ready_since),
            Phase::Stopping { ready_since, .. } => ready_since,
            _ => None,
        }
    }

    /// The same phase with run replaced (its start time learnt, a stop requested).
    pub fn with_run(self, new: Run) -> Phase {
        match self {
            Phase::Starting { test, timer, .. } => Phase::Starting {
                run: new,
                test,
                timer,
            },
            Phase::Running {
                ready_since,
                drain_at,
                ..
            } => Phase::Running {
                run: new,
                ready_since,
                drain_at,
            },
            Phase::Stopping {
                ready_since,
                kill_at,
                ..
            } => Phase::Stopping {
                run: new,
                ready_since,
                kill_at,
            },
            other => other,
        }
    }
}
