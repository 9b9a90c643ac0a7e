//! The signals svlogd acts on (TERM, HUP, ALRM, CHLD), received through a signalfd so
//! that the main loop waits on standard input and signals in one poll, and a signal
//! never interrupts a write half-way.

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use nix::sys::signalfd::SignalFd;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

/// Signals received and not yet acted on.
#[derive(Default)]
pub struct Pending {
    pub term: bool,
    pub hup: bool,
    pub alrm: bool,
    pub chld: bool,
}

pub struct Signals {
    fd: SignalFd,
    pub pending: Pending,
    verbose: bool,
}

impl Signals {
    pub fn new(verbose: bool) -> Result<Signals, String> {
        let fd = runsv::signals::receive(&runsv::signals::mask_of(&[
            Signal::SIGTERM,
            Signal::SIGHUP,
            Signal::SIGALRM,
            Signal::SIGCHLD,
        ]))?;
        Ok(Signals {
            fd,
            pending: Pending::default(),
            verbose,
        })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Notes every signal that has arrived.
    pub fn drain(&mut self) {
        while let Ok(Some(info)) = self.fd.read_signal() {
            let (flag, name) = match Signal::try_from(info.ssi_signo as i32) {
                Ok(Signal::SIGTERM) => (&mut self.pending.term, "sigterm"),
                Ok(Signal::SIGHUP) => (&mut self.pending.hup, "sighangup"),
                Ok(Signal::SIGALRM) => (&mut self.pending.alrm, "sigalarm"),
                Ok(Signal::SIGCHLD) => (&mut self.pending.chld, "sigchild"),
                _ => continue,
            };
            *flag = true;
            if self.verbose {
                crate::info(&format!("{name} received."));
            }
        }
    }

    /// Waits `duration` (a pause before retrying a write or a rename), noting the
    /// signals that arrive meanwhile; they are acted on once the pause is over.
    pub fn pause(&mut self, duration: Duration) {
        let deadline = std::time::Instant::now() + duration;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return;
            }
            let millis = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
            let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
            let _ = poll(&mut fds, PollTimeout::from(millis));
            self.drain();
        }
    }
}
