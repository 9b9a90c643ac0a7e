//! The way from a service to its `log/` service, through runsv so that runsv keeps the
//! tail of the output (`supervise/tail`, for `sv log`) without ever holding a byte
//! that exists nowhere else.
//!
//! Two pipes: the service writes into the first, the logger reads the second, and
//! runsv holds both ends of both for its whole life, so a restart of either side loses
//! nothing (runit's guarantee). runsv moves the bytes across with the kernel's pipe
//! operations: `tee` copies what waits in the first pipe into a private third pipe
//! without taking it away, runsv reads that copy into the tail, then `splice` moves the
//! bytes themselves into the logger's pipe. If runsv is killed at any point, each byte
//! is either still in the service's pipe or already in the logger's; the next runsv
//! (or the keeper in between, see adoption.rs) holds both pipes, so nothing is lost.
//! At worst, the tail holds a few bytes twice.
//!
//! A logger that does not keep up fills its pipe; runsv then stops moving bytes and the
//! service's pipe fills, and the service blocks, as with runit: a log service is the
//! place where nothing may be dropped.

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::libc;
use runsv::tail::TailWriter;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// How much one round moves at most (a default pipe's capacity).
const ROUND: usize = 64 * 1024;

pub struct Tee {
    /// The service's pipe: runsv's read end (non-blocking) and the end the service gets.
    pub service_read: OwnedFd,
    pub service_write: Option<OwnedFd>,
    /// The logger's pipe: the end the logger gets (blocking) and runsv's write end
    /// (non-blocking).
    pub logger_read: OwnedFd,
    pub logger_write: Option<OwnedFd>,
    /// runsv's private pipe for the copy `tee` makes.
    copy: (OwnedFd, OwnedFd),
    /// Bytes at the head of the service's pipe that are in the tail already but not
    /// yet in the logger's pipe.
    copied: usize,
    /// The service's pipe has no writer left and is empty (after `close_service_end`).
    at_end: bool,
    tail: TailWriter,
    buffer: Vec<u8>,
    /// A pipe operation failed unexpectedly: nothing is moved any more.
    stuck: bool,
    /// A warning for runsv to print (as the relay's).
    pub warning: Option<String>,
}

/// What the tee waits for.
pub enum Wait {
    /// Bytes from the service.
    Input(RawFd),
    /// Room in the logger's pipe.
    Room(RawFd),
    /// Nothing more will come.
    Done,
}

impl Tee {
    pub fn new(tail: TailWriter) -> nix::Result<Tee> {
        let (service_read, service_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
        set_nonblocking(&service_read)?;
        let (logger_read, logger_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
        set_nonblocking(&logger_write)?;
        let copy = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
        Ok(Tee {
            service_read,
            service_write: Some(service_write),
            logger_read,
            logger_write: Some(logger_write),
            copy,
            copied: 0,
            at_end: false,
            tail,
            buffer: Vec::new(),
            stuck: false,
            warning: None,
        })
    }

    /// What to poll for.
    pub fn wait(&self) -> Wait {
        match &self.logger_write {
            None => Wait::Done,
            Some(_) if self.stuck || (self.at_end && self.copied == 0) => Wait::Done,
            Some(write) if self.copied > 0 => Wait::Room(write.as_raw_fd()),
            Some(_) => Wait::Input(self.service_read.as_raw_fd()),
        }
    }

    /// Moves what it can, without waiting, up to a share of `ROUND` bytes: a fast
    /// logger behind a service writing as fast as it can would otherwise keep runsv
    /// here for ever. What is left keeps its fd ready for the next turn of the loop.
    /// What went wrong on the way is left in `warning` (the tail could not be written:
    /// the bytes still reach the logger).
    pub fn pump(&mut self) {
        if self.stuck {
            return;
        }
        let Some(logger) = self.logger_write.as_ref().map(|fd| fd.as_raw_fd()) else {
            return;
        };
        let mut moved_total = 0;
        loop {
            if self.copied == 0 {
                if moved_total >= ROUND {
                    return;
                }
                // SAFETY: tee on two pipe fds this struct owns.
                let teed = unsafe {
                    libc::tee(
                        self.service_read.as_raw_fd(),
                        self.copy.1.as_raw_fd(),
                        ROUND,
                        libc::SPLICE_F_NONBLOCK,
                    )
                };
                match teed {
                    0 => {
                        // No writer and nothing left: only after close_service_end,
                        // or when the pipe was never the service's.
                        self.at_end = self.service_write.is_none();
                        return;
                    }
                    n if n > 0 => {
                        self.copied = n as usize;
                        self.take_copy();
                    }
                    _ => match Errno::last() {
                        Errno::EINTR => continue,
                        Errno::EAGAIN => return, // nothing waits
                        errno => return self.stuck("tee", errno),
                    },
                }
            }
            // SAFETY: splice between two pipe fds this struct owns.
            let moved = unsafe {
                libc::splice(
                    self.service_read.as_raw_fd(),
                    std::ptr::null_mut(),
                    logger,
                    std::ptr::null_mut(),
                    self.copied,
                    libc::SPLICE_F_NONBLOCK | libc::SPLICE_F_MOVE,
                )
            };
            match moved {
                n if n > 0 => {
                    moved_total += n as usize;
                    self.copied -= (n as usize).min(self.copied);
                }
                0 => return,
                _ => match Errno::last() {
                    Errno::EINTR => continue,
                    // The logger's pipe is full: wait for room.
                    Errno::EAGAIN => return,
                    // EPIPE cannot be (runsv holds the logger's read end).
                    errno => return self.stuck("splice", errno),
                },
            }
        }
    }

    /// A pipe operation failed in a way pipes never should: rather than retry it at
    /// every wake-up (a busy loop), runsv stops moving output; the service blocks once
    /// its pipe is full, and the warning says why.
    fn stuck(&mut self, operation: &str, errno: Errno) {
        self.stuck = true;
        self.warning = Some(format!(
            "{operation} to the log service failed: {errno}; output is no longer passed on"
        ));
    }

    /// Reads the copy `tee` made into the tail.
    fn take_copy(&mut self) {
        self.buffer.resize(self.copied, 0);
        let mut have = 0;
        while have < self.copied {
            match nix::unistd::read(self.copy.0.as_raw_fd(), &mut self.buffer[have..]) {
                Ok(0) => break,
                Ok(n) => have += n,
                Err(Errno::EINTR) => continue,
                Err(_) => break,
            }
        }
        let result = self.tail.append(&self.buffer[..have]);
        self.buffer.clear();
        self.buffer.shrink_to(4096);
        if let Some(warning) = self.tail.report(result) {
            self.warning = Some(warning);
        }
    }

    /// The service is down for good: runsv lets go of its end, so that once the last
    /// byte is moved, the logger can be given its end of file.
    pub fn close_service_end(&mut self) {
        self.service_write = None;
    }

    /// Everything is moved: the logger's pipe is closed on runsv's side.
    pub fn close_logger_end(&mut self) {
        self.logger_write = None;
    }

    /// The ends a keeper holds while no runsv runs: a reader for the service, a writer
    /// for the logger.
    pub fn keeper_ends(&self) -> Option<[RawFd; 2]> {
        let write = self.logger_write.as_ref()?;
        Some([self.service_read.as_raw_fd(), write.as_raw_fd()])
    }

    /// The service's pipe, taken over from an adopted service.
    pub fn replace_service_pipe(&mut self, read: OwnedFd, write: OwnedFd) {
        self.service_read = read;
        self.service_write = Some(write);
        self.copied = 0;
    }

    /// The logger's pipe, taken over from an adopted logger.
    pub fn replace_logger_pipe(&mut self, read: OwnedFd, write: OwnedFd) {
        self.logger_read = read;
        self.logger_write = Some(write);
    }
}

fn set_nonblocking(fd: &OwnedFd) -> nix::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg};
    let flags = OFlag::from_bits_truncate(fcntl(fd.as_raw_fd(), FcntlArg::F_GETFL)?);
    fcntl(fd.as_raw_fd(), FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}
