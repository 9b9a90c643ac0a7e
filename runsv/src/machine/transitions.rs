//! The transitions several cells of the table share: entering a phase, starting,
//! stopping, and the decision once run is over (down, ok/error, restart now or later).

use super::phase::{Cause, Ended, Phase, Run};
use super::table::signal;
use super::*;
use runsv::duration::seconds;

impl Machine {
    /// Moves to `phase`; the published `since` moves only when the state does.
    pub(super) fn enter(&mut self, now: Now, phase: Phase, reason: impl Into<String>) {
        if phase.state() != self.phase.state() {
            self.state_since = now.wall;
        }
        self.phase = phase;
        self.reason = reason.into();
    }

    /// `d` or `x`: stop run, or settle an idle service.
    pub(super) fn down(&mut self, now: Now, actions: &mut Vec<Action>) {
        if let Some(run) = self.phase.run() {
            self.stop(now, run, actions);
        } else if self.phase.idle() {
            self.settle_down(now);
        }
    }

    /// Nothing runs and the service is not wanted up: drop any pending restart. A
    /// oneshot's `ok`/`error` stays: it records what happened, and dependents rely on
    /// `ok`.
    pub(super) fn settle_down(&mut self, now: Now) {
        let keep = self.settings.oneshot
            && matches!(
                self.phase,
                Phase::Ok
                    | Phase::Error {
                        cause: Cause::Exit | Cause::Dependency | Cause::Definition
                    }
            );
        if !keep {
            self.enter(now, Phase::Down, "");
        }
    }

    /// Starts run if the dependencies and the definition allow it. The idle phase
    /// stays (its timer dropped) until the loop reports the spawn.
    pub(super) fn start(&mut self, now: Now, actions: &mut Vec<Action>) {
        if let Some(problem) = &self.settings.invalid {
            let reason = format!("invalid definition: {problem}");
            let cause = Cause::Definition;
            return self.enter(now, Phase::Error { cause }, reason);
        }
        let blocked = match &self.dependencies {
            Dependencies::Satisfied => None,
            Dependencies::Waiting(names) => {
                let reason = format!("waiting for {}", names.join(", "));
                return self.enter(now, Phase::Waiting, reason);
            }
            Dependencies::Failed { name, reason } => {
                Some(format!("dependency {name} failed: {reason}"))
            }
            Dependencies::Unknown(names) => {
                Some(format!("unknown dependency {}", names.join(", ")))
            }
            Dependencies::Cycle(cycle) => Some(format!("dependency cycle: {cycle}")),
        };
        if let Some(reason) = blocked {
            let cause = Cause::Dependency;
            return self.enter(now, Phase::Error { cause }, reason);
        }
        self.phase = match self.phase {
            Phase::Respawn { .. } => Phase::Respawn { until: None },
            Phase::Error {
                cause: Cause::Spawn { .. },
            } => Phase::Error {
                cause: Cause::Spawn { retry: None },
            },
            idle => idle,
        };
        actions.push(Action::ControlScript(Control::Up));
        actions.push(Action::Spawn(Process::Run));
    }

    pub(super) fn run_spawned(
        &mut self,
        now: Now,
        pid: u32,
        starttime: u64,
        actions: &mut Vec<Action>,
    ) {
        self.oom_killed = false;
        let run = Run {
            pid,
            starttime,
            started_at: now.monotonic,
            stop_requested: false,
        };
        self.status_since = now.wall;
        self.paused = false;
        let starting = Phase::Starting {
            run,
            test: None,
            timer: None,
        };
        match self.settings.readiness {
            ReadinessKind::Immediate if !self.settings.oneshot => {
                self.enter_running(now, run, None)
            }
            ReadinessKind::Test { .. } if !self.settings.oneshot => {
                self.enter(now, starting, "");
                actions.push(Action::Spawn(Process::Test));
            }
            _ => self.enter(now, starting, ""),
        }
    }

    pub(super) fn spawn_failed(
        &mut self,
        now: Now,
        process: Process,
        reason: String,
        actions: &mut Vec<Action>,
    ) {
        match (process, self.phase) {
            (Process::Run, _) => {
                self.last_exit = None;
                let (retry, reason) = if self.want == Want::Up {
                    self.fast_failures += 1;
                    let delay = self.backoff();
                    let reason = format!("{reason}; retrying in {}", seconds(delay));
                    (Some(now.after(delay)), reason)
                } else {
                    (None, reason)
                };
                let cause = Cause::Spawn { retry };
                self.enter(now, Phase::Error { cause }, reason);
                self.status_since = now.wall;
            }
            // Without a finish the service is simply down.
            (Process::Finish, Phase::Finishing { ran, .. }) => self.became_down(now, ran, actions),
            (Process::Test, Phase::Starting { .. }) => {
                self.reason = format!("readiness test: {reason}");
                self.schedule_test(now);
            }
            _ => {}
        }
    }

    pub(super) fn run_exited(
        &mut self,
        now: Now,
        phase: Phase,
        status: ExitStatus,
        actions: &mut Vec<Action>,
    ) {
        let Some(run) = phase.run() else {
            return;
        };
        self.last_exit = Some(status);
        self.paused = false;
        if let Phase::Starting {
            test: Some(test), ..
        } = phase
        {
            self.killed_test = Some(test);
        }
        if self.killed_test.is_some() {
            actions.push(signal(Target::Group(Process::Test), Signal::SIGKILL, None));
        }
        if self.settings.has_finish {
            let finishing = Phase::Finishing {
                finish: None,
                kill_at: None,
                ran: run.ended(),
            };
            let text = self.exit_text();
            self.enter(now, finishing, text);
            actions.push(Action::Spawn(Process::Finish));
        } else {
            self.became_down(now, run.ended(), actions);
        }
    }

    /// The readiness test failed: the next one after the interval. A drained logger
    /// (want exit while starting) keeps the drain's timer: a retry sooner would stop
    /// it before its stop timeout.
    pub(super) fn schedule_test(&mut self, now: Now) {
        if self.want == Want::Exit {
            return;
        }
        if let (ReadinessKind::Test { interval }, Phase::Starting { run, test, .. }) =
            (self.settings.readiness, self.phase)
        {
            let timer = Some(now.after(interval));
            self.phase = Phase::Starting { run, test, timer };
        }
    }

    /// Only the readiness test's timer ends here; a drained logger that becomes ready
    /// keeps the drain's, or nothing would stop one that ignores its closed input.
    pub(super) fn become_ready(&mut self, now: Now) {
        let Phase::Starting { run, timer, .. } = self.phase else {
            return;
        };
        let drain_at = if self.want == Want::Exit { timer } else { None };
        self.enter_running(now, run, drain_at);
    }

    /// Up and ready from now on (a drained logger keeps its deadline in `drain_at`).
    fn enter_running(&mut self, now: Now, run: Run, drain_at: Option<Duration>) {
        let ready_since = now.wall;
        self.enter(
            now,
            Phase::Running {
                run,
                ready_since,
                drain_at,
            },
            "",
        );
    }

    /// run (and finish) are over: decide between down, ok/error, a restart now, or a
    /// restart later.
    pub(super) fn became_down(&mut self, now: Now, ran: Ended, actions: &mut Vec<Action>) {
        self.status_since = now.wall;
        let ran_for = now.monotonic.saturating_sub(ran.started_at);
        let exit = self.last_exit;
        let exit_text = self.exit_text();
        if self.settings.oneshot && !ran.stop_requested {
            // A oneshot that ended by itself: record the outcome; it runs again only
            // when asked (`u`/`o`), so want becomes down.
            if self.want == Want::Up {
                self.want = Want::Down;
            }
            return match exit {
                Some(status) if status.success() => self.enter(now, Phase::Ok, ""),
                _ => self.enter(now, Phase::Error { cause: Cause::Exit }, exit_text),
            };
        }
        match self.want {
            Want::Down | Want::Exit => self.enter(now, Phase::Down, ""),
            Want::Up if ran.stop_requested || ran_for >= STABLE_RUN => {
                // Asked to restart (`t`), or it had been up a while: at once. The state
                // between the exit and the new start (runsv publishes it) says so.
                if ran_for >= STABLE_RUN {
                    self.fast_failures = 0;
                }
                self.restarts += 1;
                let reason = if ran.stop_requested {
                    runsv::failure::RESTARTING_AS_ASKED.to_string()
                } else {
                    format!("{exit_text}; restarting now")
                };
                self.enter(now, Phase::Respawn { until: None }, reason);
                self.start(now, actions);
            }
            Want::Up => {
                self.fast_failures += 1;
                let delay = self.backoff();
                let reason = format!("{exit_text}; restarting in {}", seconds(delay));
                let until = Some(now.after(delay));
                self.enter(now, Phase::Respawn { until }, reason);
            }
        }
    }

    /// The growing delay: restart_delay doubled per consecutive fast failure, capped,
    /// and never below MIN_RESTART_DELAY.
    pub(super) fn backoff(&self) -> Duration {
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
    pub(super) fn stop(&mut self, now: Now, run: Run, actions: &mut Vec<Action>) {
        let run = Run {
            stop_requested: true,
            ..run
        };
        if let Phase::Starting {
            test: Some(test), ..
        } = self.phase
        {
            self.killed_test = Some(test);
        }
        actions.push(signal(
            Target::Group(Process::Run),
            self.settings.stop_signal,
            Some(Control::Term),
        ));
        if self.killed_test.is_some() {
            actions.push(signal(Target::Group(Process::Test), Signal::SIGKILL, None));
        }
        if self.want != Want::Up {
            actions.push(signal(Target::Group(Process::Run), Signal::SIGCONT, None));
            let script = if self.want == Want::Exit {
                Control::Exit
            } else {
                Control::Down
            };
            actions.push(Action::ControlScript(script));
        }
        match self.phase {
            // Again: the signals go out again, the kill timer stays as it was.
            Phase::Stopping { .. } => self.phase = self.phase.with_run(run),
            phase => {
                let ready_since = phase.ready_since();
                let kill_at = Some(now.after(self.settings.stop_timeout));
                self.enter(
                    now,
                    Phase::Stopping {
                        run,
                        ready_since,
                        kill_at,
                    },
                    "",
                );
            }
        }
    }

    pub(super) fn dependencies_changed(
        &mut self,
        now: Now,
        dependencies: Dependencies,
        actions: &mut Vec<Action>,
    ) {
        if self.dependencies == dependencies {
            return;
        }
        self.dependencies = dependencies;
        let blocked = matches!(
            self.phase,
            Phase::Waiting
                | Phase::Error {
                    cause: Cause::Dependency
                }
        );
        if blocked && self.want == Want::Up {
            self.start(now, actions);
        }
    }
}
