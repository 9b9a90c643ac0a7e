//! The clock and the process system calls the scanner's decisions depend on, behind one
//! trait, as dinit's tests put its base process calls: the tests drive svdir's own code
//! with a clock they advance by hand and look at the signals it sent and the runsvs it
//! started, without a process, a signal or a sleep.

use crate::spawn::Spawner;
use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use std::ffi::OsStr;
use std::os::fd::BorrowedFd;
use std::time::Instant;

pub(super) trait Sys {
    fn now(&self) -> Instant;
    fn kill(&mut self, pid: Pid, signal: Signal) -> nix::Result<()>;
    fn killpg(&mut self, group: Pid, signal: Signal) -> nix::Result<()>;
    /// svdir's process group, when svdir leads it (its runsv children are in it).
    fn own_group(&self) -> Option<Pid>;
    /// `runsv NAME` in `directory` (see spawn.rs), within a batch if one is open.
    fn spawn(&mut self, name: &OsStr, directory: BorrowedFd<'_>) -> Result<Pid, Errno>;
    fn begin_batch(&mut self);
    fn end_batch(&mut self);
}

/// The real thing.
pub(super) struct Real {
    pub spawner: Spawner,
}

impl Sys for Real {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn kill(&mut self, pid: Pid, signal: Signal) -> nix::Result<()> {
        nix::sys::signal::kill(pid, signal)
    }

    fn killpg(&mut self, group: Pid, signal: Signal) -> nix::Result<()> {
        nix::sys::signal::killpg(group, signal)
    }

    fn own_group(&self) -> Option<Pid> {
        let group = nix::unistd::getpgrp();
        (group == nix::unistd::getpid()).then_some(group)
    }

    fn spawn(&mut self, name: &OsStr, directory: BorrowedFd<'_>) -> Result<Pid, Errno> {
        self.spawner.spawn(name, directory)
    }

    fn begin_batch(&mut self) {
        self.spawner.begin_batch();
    }

    fn end_batch(&mut self) {
        self.spawner.end_batch();
    }
}
