//! init's side of the shutdown, as a state machine that does no I/O: the event loop
//! feeds it time, svdir's exit and whether any child is left, and performs the effects
//! it returns. Keeping the clock outside makes every phase and deadline unit-testable.
//!
//! Phases: svdir stops the services (TERM to svdir, global deadline) → TERM to every
//! process, grace → KILL to every process, reap → (a machine's filesystems unmounted or
//! remounted read-only) → finish (sync, reboot(2) or exit).

use crate::signals::Action;
use nix::sys::wait::WaitStatus;
use std::time::{Duration, Instant};

/// How long to wait for processes to disappear after SIGKILL. Only a process stuck in
/// uninterruptible sleep (a dead NFS server) outlives SIGKILL; the machine must still
/// power off.
pub const KILL_WAIT: Duration = Duration::from_secs(5);

/// Container exit statuses, by the first phase that went wrong.
pub const EXIT_CLEAN: i32 = 0;
pub const EXIT_SERVICES_FAILED: i32 = 1;
pub const EXIT_SVDIR_KILLED: i32 = 2;
pub const EXIT_SURVIVORS_KILLED: i32 = 3;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SvdirOutcome {
    /// TERM sent, not exited yet.
    Pending,
    /// Exited 0: every service stopped cleanly.
    Clean,
    /// Exited otherwise; the text says how.
    Failed(String),
    /// Was not running when the stop began (crashing, or never started).
    NotRunning,
    /// Still running at the deadline, and SIGKILLed.
    Killed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Services { deadline: Instant },
    Term { deadline: Instant },
    Kill { deadline: Instant },
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    TermSvdir,
    KillSvdir,
    TermAll,
    KillAll,
    /// Some processes outlived SIGKILL for KILL_WAIT; finishing anyway.
    GaveUpWaiting,
    /// Unmount what can be, remount the rest read-only: nothing is left to write.
    Unmount,
    Finish,
}

#[derive(Debug)]
pub struct Shutdown {
    pub action: Action,
    phase: Phase,
    svdir: SvdirOutcome,
    killed_survivors: bool,
    grace: Duration,
    unmount: bool,
}

impl Shutdown {
    pub fn begin(
        action: Action,
        svdir_running: bool,
        now: Instant,
        timeout: Duration,
        grace: Duration,
    ) -> (Shutdown, Vec<Effect>) {
        let mut shutdown = Shutdown {
            action,
            phase: Phase::Services {
                deadline: now + timeout,
            },
            svdir: SvdirOutcome::Pending,
            killed_survivors: false,
            grace,
            unmount: false,
        };
        if svdir_running {
            (shutdown, vec![Effect::TermSvdir])
        } else {
            shutdown.svdir = SvdirOutcome::NotRunning;
            let effects = shutdown.enter_term(now);
            (shutdown, effects)
        }
    }

    /// The end unmounts filesystems first (PID 1 of a real machine only).
    pub fn unmount_at_the_end(&mut self) {
        self.unmount = true;
    }

    fn end(&mut self, mut effects: Vec<Effect>) -> Vec<Effect> {
        self.phase = Phase::Done;
        if self.unmount {
            effects.push(Effect::Unmount);
        }
        effects.push(Effect::Finish);
        effects
    }

    /// A later request changes what happens at the end, without restarting the stop.
    pub fn set_action(&mut self, action: Action) {
        self.action = action;
    }

    #[cfg(test)]
    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn svdir_outcome(&self) -> &SvdirOutcome {
        &self.svdir
    }

    pub fn svdir_exited(&mut self, status: WaitStatus) {
        if self.svdir != SvdirOutcome::Pending {
            return;
        }
        self.svdir = match status {
            WaitStatus::Exited(_, 0) => SvdirOutcome::Clean,
            WaitStatus::Exited(_, code) => SvdirOutcome::Failed(format!("exited {code}")),
            WaitStatus::Signaled(_, signal, _) => {
                SvdirOutcome::Failed(format!("killed by {}", signal.as_str()))
            }
            other => SvdirOutcome::Failed(format!("{other:?}")),
        };
    }

    fn enter_term(&mut self, now: Instant) -> Vec<Effect> {
        self.phase = Phase::Term {
            deadline: now + self.grace,
        };
        vec![Effect::TermAll]
    }

    /// Advances the phases. `no_children` is true once waitpid reports ECHILD: every
    /// process init could wait for is gone.
    pub fn tick(&mut self, now: Instant, no_children: bool) -> Vec<Effect> {
        // One arm per (phase, what happened), the first that applies wins.
        match self.phase {
            Phase::Services { .. } if self.svdir != SvdirOutcome::Pending => self.enter_term(now),
            Phase::Services { deadline } if now >= deadline => {
                self.svdir = SvdirOutcome::Killed;
                let mut effects = vec![Effect::KillSvdir];
                effects.extend(self.enter_term(now));
                effects
            }
            // Once every process is gone the sweep is over, in either of its phases.
            Phase::Term { .. } | Phase::Kill { .. } if no_children => self.end(Vec::new()),
            Phase::Term { deadline } if now >= deadline => {
                self.killed_survivors = true;
                self.phase = Phase::Kill {
                    deadline: now + KILL_WAIT,
                };
                vec![Effect::KillAll]
            }
            Phase::Kill { deadline } if now >= deadline => self.end(vec![Effect::GaveUpWaiting]),
            // Nothing is due yet, or all is done.
            Phase::Services { .. } | Phase::Term { .. } | Phase::Kill { .. } | Phase::Done => {
                Vec::new()
            }
        }
    }

    /// When the loop must wake up even if nothing happens.
    pub fn deadline(&self) -> Option<Instant> {
        match self.phase {
            Phase::Services { deadline } | Phase::Term { deadline } | Phase::Kill { deadline } => {
                Some(deadline)
            }
            Phase::Done => None,
        }
    }

    /// The container's exit status: the first phase that went wrong decides.
    pub fn exit_code(&self) -> i32 {
        match self.svdir {
            SvdirOutcome::Failed(_) | SvdirOutcome::NotRunning => EXIT_SERVICES_FAILED,
            SvdirOutcome::Killed => EXIT_SVDIR_KILLED,
            SvdirOutcome::Clean | SvdirOutcome::Pending if self.killed_survivors => {
                EXIT_SURVIVORS_KILLED
            }
            SvdirOutcome::Clean | SvdirOutcome::Pending => EXIT_CLEAN,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::signal::Signal;
    use nix::unistd::Pid;

    const T: Duration = Duration::from_secs(90);
    const G: Duration = Duration::from_secs(3);

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    /// svdir's exit with `code`.
    fn exited(code: i32) -> WaitStatus {
        WaitStatus::Exited(Pid::from_raw(2), code)
    }

    /// A poweroff whose svdir ends with `status` at once: at t0 the sweep sends TERM.
    fn sweeping(status: WaitStatus) -> (Shutdown, Instant) {
        let t0 = Instant::now();
        let (mut s, _) = Shutdown::begin(Action::Poweroff, true, t0, T, G);
        s.svdir_exited(status);
        assert_eq!(s.tick(t0, false), vec![Effect::TermAll]);
        (s, t0)
    }

    #[test]
    fn clean_stop_finishes_as_soon_as_nothing_is_left() {
        let t0 = Instant::now();
        let (mut s, effects) = Shutdown::begin(Action::Poweroff, true, t0, T, G);
        assert_eq!(effects, vec![Effect::TermSvdir]);
        assert_eq!(s.deadline(), Some(t0 + T));
        assert_eq!(s.tick(t0 + secs(1), false), vec![]);
        s.svdir_exited(exited(0));
        assert_eq!(s.tick(t0 + secs(2), false), vec![Effect::TermAll]);
        assert_eq!(s.deadline(), Some(t0 + secs(2) + G));
        // Everything left exits on TERM well before the grace ends.
        assert_eq!(s.tick(t0 + secs(2), true), vec![Effect::Finish]);
        assert_eq!(s.phase(), Phase::Done);
        assert_eq!(s.exit_code(), EXIT_CLEAN);
        assert_eq!(s.tick(t0 + secs(100), true), vec![]);
    }

    #[test]
    fn svdir_failure_is_status_1() {
        let (mut s, t0) = sweeping(exited(1));
        assert_eq!(s.tick(t0, true), vec![Effect::Finish]);
        assert_eq!(s.exit_code(), EXIT_SERVICES_FAILED);
        assert_eq!(s.svdir_outcome(), &SvdirOutcome::Failed("exited 1".into()));

        let crashed = WaitStatus::Signaled(Pid::from_raw(2), Signal::SIGSEGV, true);
        let (s, _) = sweeping(crashed);
        assert_eq!(s.exit_code(), EXIT_SERVICES_FAILED);
    }

    #[test]
    fn hung_svdir_is_killed_at_the_deadline() {
        let t0 = Instant::now();
        let (mut s, _) = Shutdown::begin(Action::Reboot, true, t0, T, G);
        assert_eq!(s.tick(t0 + T - secs(1), false), vec![]);
        assert_eq!(
            s.tick(t0 + T, false),
            vec![Effect::KillSvdir, Effect::TermAll]
        );
        // The SIGKILLed svdir's exit does not overwrite what happened.
        s.svdir_exited(WaitStatus::Signaled(
            Pid::from_raw(2),
            Signal::SIGKILL,
            false,
        ));
        assert_eq!(s.tick(t0 + T, true), vec![Effect::Finish]);
        assert_eq!(s.exit_code(), EXIT_SVDIR_KILLED);
    }

    #[test]
    fn survivors_of_term_are_killed_after_the_grace() {
        let (mut s, t0) = sweeping(exited(0));
        assert_eq!(s.tick(t0 + G - secs(1), false), vec![]);
        assert_eq!(s.tick(t0 + G, false), vec![Effect::KillAll]);
        assert_eq!(s.deadline(), Some(t0 + G + KILL_WAIT));
        assert_eq!(s.tick(t0 + G, true), vec![Effect::Finish]);
        assert_eq!(s.exit_code(), EXIT_SURVIVORS_KILLED);
    }

    #[test]
    fn unkillable_processes_do_not_block_the_end() {
        let t0 = Instant::now();
        let (mut s, _) = Shutdown::begin(Action::Poweroff, false, t0, T, G);
        assert_eq!(s.tick(t0 + G, false), vec![Effect::KillAll]);
        assert_eq!(
            s.tick(t0 + G + KILL_WAIT, false),
            vec![Effect::GaveUpWaiting, Effect::Finish]
        );
    }

    #[test]
    fn svdir_not_running_goes_straight_to_the_sweep() {
        let t0 = Instant::now();
        let (mut s, effects) = Shutdown::begin(Action::Halt, false, t0, T, G);
        assert_eq!(effects, vec![Effect::TermAll]);
        assert_eq!(s.tick(t0, true), vec![Effect::Finish]);
        assert_eq!(s.exit_code(), EXIT_SERVICES_FAILED);
    }

    #[test]
    fn a_machine_unmounts_after_the_sweep_and_before_the_end() {
        let t0 = Instant::now();
        let (mut s, _) = Shutdown::begin(Action::Poweroff, true, t0, T, G);
        s.unmount_at_the_end();
        s.svdir_exited(WaitStatus::Exited(Pid::from_raw(2), 0));
        assert_eq!(s.tick(t0, false), vec![Effect::TermAll]);
        assert_eq!(s.tick(t0, true), vec![Effect::Unmount, Effect::Finish]);
        // Even when some process could not be killed: what can be unmounted is.
        let (mut s, _) = Shutdown::begin(Action::Reboot, false, t0, T, G);
        s.unmount_at_the_end();
        assert_eq!(s.tick(t0 + G, false), vec![Effect::KillAll]);
        assert_eq!(
            s.tick(t0 + G + KILL_WAIT, false),
            vec![Effect::GaveUpWaiting, Effect::Unmount, Effect::Finish]
        );
    }

    #[test]
    fn first_failing_phase_decides() {
        let (mut s, t0) = sweeping(exited(1));
        assert_eq!(s.tick(t0 + G, false), vec![Effect::KillAll]);
        assert_eq!(s.exit_code(), EXIT_SERVICES_FAILED);
        s.set_action(Action::Reboot);
        assert_eq!(s.action, Action::Reboot);
    }
}
