//! `Machine::on`: what each event does in each phase, as one match over (phase,
//! event), and what each phase does when its timer is due. The transitions several
//! cells share are in transitions.rs.

use super::phase::{Cause, Finish, Phase, Run};
use super::*;
use runsv::duration::seconds;

impl Machine {
    /// Handles one event; returns what the loop must do, in order.
    pub fn on(&mut self, now: Now, event: Event) -> Vec<Action> {
        let mut actions = Vec::new();
        self.step(now, event, &mut actions);
        if self.want == Want::Exit && self.phase.idle() && !self.exit_sent {
            self.exit_sent = true;
            actions.push(Action::Exit);
        }
        actions
    }

    fn step(&mut self, now: Now, event: Event, actions: &mut Vec<Action>) {
        use Control as C;
        use Event as E;
        use Phase as P;
        let phase = self.phase;
        let run = phase.run();
        match (phase, event) {
            // Control bytes: runit's meanings.
            (_, E::Control(C::Up)) => {
                self.want = Want::Up;
                if phase.idle() && phase != P::Waiting {
                    self.fast_failures = 0;
                    self.start(now, actions);
                }
            }
            (_, E::Control(C::Once)) => {
                self.want = Want::Down;
                if phase.idle() {
                    self.fast_failures = 0;
                    self.start(now, actions);
                }
            }
            (_, E::Control(C::Exit) | E::Terminate) if self.settings.is_log => {}
            (_, E::Control(C::Down)) => {
                self.want = Want::Down;
                self.down(now, actions);
            }
            (_, E::Control(C::Exit) | E::Terminate) => {
                self.want = Want::Exit;
                self.down(now, actions);
            }
            (
                P::Starting { run, .. } | P::Running { run, .. } | P::Stopping { run, .. },
                E::Control(C::Term),
            ) => self.stop(now, run, actions),
            (
                P::Starting { run, .. } | P::Running { run, .. } | P::Stopping { run, .. },
                E::Control(C::Kill),
            ) => {
                let run = Run {
                    stop_requested: true,
                    ..run
                };
                self.phase = phase.with_run(run);
                let kill = signal(Target::Group(Process::Run), Signal::SIGKILL, Some(C::Kill));
                actions.push(kill);
            }
            // runit leaves a hung finish alone and later runs finish a second time;
            // here `k` ends finish and the service goes down once.
            (
                P::Finishing {
                    finish: Some(_), ..
                },
                E::Control(C::Kill),
            ) => actions.push(signal(
                Target::Group(Process::Finish),
                Signal::SIGKILL,
                None,
            )),
            (_, E::Control(control @ (C::Pause | C::Continue))) => {
                self.paused = control == C::Pause;
                if run.is_some() {
                    let signal_ = if control == C::Pause {
                        Signal::SIGSTOP
                    } else {
                        Signal::SIGCONT
                    };
                    let custom = Some(control);
                    actions.push(signal(Target::Process(Process::Run), signal_, custom));
                }
            }
            (P::Starting { .. } | P::Running { .. } | P::Stopping { .. }, E::Control(control)) => {
                if let Some(signal_) = plain_signal(control) {
                    let custom = Some(control);
                    actions.push(signal(Target::Process(Process::Run), signal_, custom));
                }
            }
            // `R` (the loop's on the main service's FIFO; nothing on a log's) and the
            // signals with no process to receive them.
            (_, E::Control(_)) => {}

            // A logger whose input is closed: it ends by itself, or is stopped after
            // its stop timeout.
            (P::Starting { run, test, .. }, E::Drain) => {
                self.want = Want::Exit;
                let timer = Some(now.after(self.settings.stop_timeout));
                self.phase = P::Starting { run, test, timer };
            }
            (
                P::Running {
                    run, ready_since, ..
                },
                E::Drain,
            ) => {
                self.want = Want::Exit;
                let drain_at = Some(now.after(self.settings.stop_timeout));
                self.phase = P::Running {
                    run,
                    ready_since,
                    drain_at,
                };
            }
            (
                P::Stopping {
                    run, ready_since, ..
                },
                E::Drain,
            ) => {
                self.want = Want::Exit;
                let kill_at = Some(now.after(self.settings.stop_timeout));
                self.phase = P::Stopping {
                    run,
                    ready_since,
                    kill_at,
                };
            }
            (P::Finishing { .. }, E::Drain) => self.want = Want::Exit,
            (_, E::Drain) => {
                self.want = Want::Exit;
                self.settle_down(now);
            }

            // The loop's answers to `Spawn`.
            (
                _,
                E::Spawned {
                    process: Process::Run,
                    pid,
                    starttime,
                },
            ) if phase.idle() => self.run_spawned(now, pid, starttime, actions),
            (
                P::Finishing {
                    finish: None, ran, ..
                },
                E::Spawned {
                    process: Process::Finish,
                    pid,
                    starttime,
                },
            ) => {
                self.phase = P::Finishing {
                    finish: Some(Finish { pid, starttime }),
                    kill_at: Some(now.after(self.settings.stop_timeout)),
                    ran,
                };
            }
            (
                P::Starting { run, .. },
                E::Spawned {
                    process: Process::Test,
                    pid,
                    ..
                },
            ) => {
                self.phase = P::Starting {
                    run,
                    test: Some(pid),
                    timer: Some(now.after(TEST_TIMEOUT)),
                };
            }
            (_, E::Spawned { .. }) => {}
            (_, E::SpawnFailed { process, reason }) => {
                self.spawn_failed(now, process, reason, actions)
            }
            (
                _,
                E::ExecFailed {
                    process,
                    pid,
                    reason,
                },
            ) => {
                // Undoes `Spawned` for a process that never ran, then fails as a
                // spawn would.
                let ours = match (process, phase) {
                    (Process::Run, _) => run.is_some_and(|run| run.pid == pid),
                    (Process::Finish, _) => phase.finish().is_some_and(|f| f.pid == pid),
                    (Process::Test, P::Starting { test, .. }) => test == Some(pid),
                    (Process::Test, _) => false,
                };
                if !ours {
                    return;
                }
                match phase {
                    P::Finishing { ran, .. } => {
                        self.phase = P::Finishing {
                            finish: None,
                            kill_at: None,
                            ran,
                        }
                    }
                    P::Starting { run, .. } if process == Process::Test => {
                        self.phase = P::Starting {
                            run,
                            test: None,
                            timer: None,
                        }
                    }
                    _ => {}
                }
                self.spawn_failed(now, process, reason, actions);
            }

            // Exits.
            (_, E::Exited { pid, status }) if run.is_some_and(|run| run.pid == pid) => {
                self.run_exited(now, phase, status, actions)
            }
            (
                P::Finishing {
                    finish: Some(finish),
                    ran,
                    ..
                },
                E::Exited { pid, .. },
            ) if finish.pid == pid => self.became_down(now, ran, actions),
            (
                P::Starting {
                    run,
                    test: Some(test),
                    ..
                },
                E::Exited { pid, status },
            ) if test == pid => {
                let timer = phase.deadline();
                self.phase = P::Starting {
                    run,
                    test: None,
                    timer,
                };
                if status.success() {
                    self.become_ready(now);
                } else {
                    self.reason = format!("readiness test {status}");
                    self.schedule_test(now);
                }
            }
            (_, E::Exited { pid, .. }) => {
                if self.killed_test == Some(pid) {
                    self.killed_test = None;
                }
            }

            (P::Starting { .. }, E::Ready)
                if self.settings.readiness == ReadinessKind::Notification =>
            {
                self.become_ready(now);
                actions.push(Action::CloseNotification);
            }
            (_, E::Ready) => {}

            (_, E::Timer) if phase.deadline().is_some_and(|due| now.monotonic >= due) => {
                self.timer(now, actions)
            }
            (_, E::Timer) => {}

            (_, E::Dependencies(dependencies)) => {
                self.dependencies_changed(now, dependencies, actions)
            }

            // `sv reconfigure`: a changed definition restarts a running service with it,
            // or starts one wanted up; a start the new dependencies allow already uses
            // it.
            (
                _,
                E::Reconfigure {
                    settings,
                    dependencies,
                },
            ) => {
                self.settings = settings;
                if let Some(dependencies) = dependencies {
                    self.dependencies_changed(now, dependencies, actions);
                }
                if self.want != Want::Up || actions.contains(&Action::Spawn(Process::Run)) {
                    return;
                }
                match self.phase.run() {
                    Some(run) => self.stop(now, run, actions),
                    None if self.phase.idle() && self.phase != P::Waiting => {
                        self.fast_failures = 0;
                        self.start(now, actions);
                    }
                    None => {}
                }
            }
        }
    }

    /// The phase's timer is due.
    fn timer(&mut self, now: Now, actions: &mut Vec<Action>) {
        let kill = |process| signal(Target::Group(process), Signal::SIGKILL, None);
        match self.phase {
            Phase::Respawn { .. } => {
                self.restarts += 1;
                self.start(now, actions);
            }
            Phase::Error {
                cause: Cause::Spawn { .. },
            } => {
                let cause = Cause::Spawn { retry: None };
                self.phase = Phase::Error { cause };
                if self.want == Want::Up {
                    self.start(now, actions);
                }
            }
            Phase::Stopping {
                run, ready_since, ..
            } => {
                self.reason = format!(
                    "did not stop within {}; sent SIGKILL",
                    seconds(self.settings.stop_timeout)
                );
                let kill_at = None;
                self.phase = Phase::Stopping {
                    run,
                    ready_since,
                    kill_at,
                };
                actions.push(kill(Process::Run));
            }
            Phase::Finishing { finish, ran, .. } => {
                self.reason = format!(
                    "finish did not end within {}; sent SIGKILL",
                    seconds(self.settings.stop_timeout)
                );
                let kill_at = None;
                self.phase = Phase::Finishing {
                    finish,
                    kill_at,
                    ran,
                };
                if finish.is_some() {
                    actions.push(kill(Process::Finish));
                }
            }
            // A drained logger that did not end by itself.
            Phase::Starting { run, .. } | Phase::Running { run, .. } if self.want == Want::Exit => {
                self.stop(now, run, actions)
            }
            Phase::Starting { run, test, .. } => {
                self.phase = Phase::Starting {
                    run,
                    test,
                    timer: None,
                };
                match test {
                    // A hung readiness test.
                    Some(_) => actions.push(kill(Process::Test)),
                    None => {
                        if let ReadinessKind::Test { .. } = self.settings.readiness {
                            actions.push(Action::Spawn(Process::Test));
                        }
                    }
                }
            }
            Phase::Running {
                run, ready_since, ..
            } => {
                let drain_at = None;
                self.phase = Phase::Running {
                    run,
                    ready_since,
                    drain_at,
                };
            }
            Phase::Down | Phase::Waiting | Phase::Ok | Phase::Error { .. } => {}
        }
    }
}

pub(super) fn signal(target: Target, signal: Signal, custom: Option<Control>) -> Action {
    Action::Signal {
        target,
        signal,
        custom,
    }
}

/// The signals runit sends the process alone for a command (after the command's
/// control script, if any).
fn plain_signal(control: Control) -> Option<Signal> {
    match control {
        Control::Hup => Some(Signal::SIGHUP),
        Control::Alarm => Some(Signal::SIGALRM),
        Control::Interrupt => Some(Signal::SIGINT),
        Control::Quit => Some(Signal::SIGQUIT),
        Control::User1 => Some(Signal::SIGUSR1),
        Control::User2 => Some(Signal::SIGUSR2),
        _ => None,
    }
}
