//! The clock and the process calls runsv's loop depends on, behind one trait, as
//! svdir's scanner/sys.rs and dinit's tests (baseproc-sys.h) put them: the unit tests
//! (event_loop_tests.rs) drive the loop's own code with a clock they advance by hand
//! and read the signals it sent and the processes it started — no process, no signal,
//! no sleep. Restart delays, stop deadlines and the poll's timeout all come from
//! `now()`; everything else the loop touches (FIFOs, pipes, files) is real.

use crate::adoption;
use crate::machine::Now;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use runsv::launch::{Launch, Started};
use runsv::supervise::ExitStatus;
use runsv::tai64n::Timestamp;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

pub(super) trait Sys {
    /// The monotonic clock (since runsv started) and the wall clock.
    fn now(&self) -> Now;
    fn kill(&mut self, pid: Pid, signal: Signal) -> nix::Result<()>;
    /// Signals the whole process group `member` is in (see `runsv::launch::group_of`).
    fn killpg(&mut self, member: Pid, signal: Signal) -> nix::Result<()>;
    /// `run` or `finish`, forked and held at its gate until released (Launch::start).
    fn start(&mut self, launch: &Launch) -> Result<Box<dyn Gated>, String>;
    /// A readiness test or a control script, exec'd when this returns (Launch::spawn).
    fn spawn(&mut self, launch: &Launch) -> Result<Pid, String>;
    /// A child that has ended, if any, without waiting.
    fn reap(&mut self) -> Option<(Pid, ExitStatus)>;
    /// Waits up to `timeout` for the child `pid`, then kills its group; reaps it.
    fn wait_child(&mut self, pid: Pid, timeout: Duration) -> Option<ExitStatus>;
}

/// A process started behind its gate (see `runsv::launch::Started`).
pub(super) trait Gated {
    fn pid(&self) -> Pid;
    /// Lets it exec.
    fn release(&mut self);
    /// Whether exec succeeded; the OS's reason if not (the child is reaped then).
    fn confirm(self: Box<Self>) -> Result<(), String>;
}

impl Gated for Started {
    fn pid(&self) -> Pid {
        Started::pid(self)
    }
    fn release(&mut self) {
        Started::release(self)
    }
    fn confirm(self: Box<Self>) -> Result<(), String> {
        Started::confirm(*self)
    }
}

/// The real thing.
pub(super) struct Real {
    /// When runsv started: monotonic time 0.
    origin: Instant,
}

impl Real {
    pub(super) fn new() -> Real {
        Real {
            origin: Instant::now(),
        }
    }
}

impl Sys for Real {
    fn now(&self) -> Now {
        Now {
            monotonic: self.origin.elapsed(),
            wall: Timestamp::now(),
        }
    }

    fn kill(&mut self, pid: Pid, signal: Signal) -> nix::Result<()> {
        nix::sys::signal::kill(pid, signal)
    }

    fn killpg(&mut self, member: Pid, signal: Signal) -> nix::Result<()> {
        let group = runsv::launch::group_of(member).ok_or(nix::errno::Errno::ESRCH)?;
        nix::sys::signal::killpg(group, signal)
    }

    fn start(&mut self, launch: &Launch) -> Result<Box<dyn Gated>, String> {
        Ok(Box::new(launch.start()?))
    }

    fn spawn(&mut self, launch: &Launch) -> Result<Pid, String> {
        launch.spawn()
    }

    fn reap(&mut self) -> Option<(Pid, ExitStatus)> {
        runsv::launch::reap_one()
    }

    fn wait_child(&mut self, pid: Pid, timeout: Duration) -> Option<ExitStatus> {
        if !wait_gone(pid.as_raw() as u32, timeout) {
            let _ = self.killpg(pid, Signal::SIGKILL);
        }
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => Some(ExitStatus::Exited(code)),
            Ok(WaitStatus::Signaled(_, signal, _)) => Some(ExitStatus::Signaled(signal as i32)),
            _ => None,
        }
    }
}

/// Waits until a process (not necessarily our child) is gone; whether it went in time.
fn wait_gone(pid: u32, timeout: Duration) -> bool {
    let Some(pidfd) = adoption::pidfd_open(pid) else {
        return true; // already gone
    };
    let millis = timeout.as_millis().min(i32::MAX as u128) as i32;
    let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
    let timeout = PollTimeout::try_from(millis).unwrap_or(PollTimeout::MAX);
    matches!(poll(&mut fds, timeout), Ok(n) if n > 0)
}
