//! The `kmsg` log destination: runsv reads the service's output from two pipes it
//! holds for its whole life (stdout, stderr) and writes each line, prefixed with the
//! service name, to the kernel ring buffer — or to runsv's stderr where /dev/kmsg is
//! not writable (an unprivileged tree, a container). The service never blocks on a
//! slow reader: runsv reads whenever a pipe has data.
//!
//! stdout and stderr stay apart: in the kernel log by priority (`<6>` info for stdout,
//! `<3>` err for stderr, so `dmesg --level=err` shows a service's errors), on the
//! console by a `[stderr]` mark.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// The largest write /dev/kmsg takes (prefix and newline included): a longer one is
/// refused with EINVAL and the whole line would be lost. Longer lines are written in
/// pieces of this size, which also bounds the memory a line takes.
const RECORD_MAX: usize = 1024;

/// Which of the service's outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout = 0,
    Stderr = 1,
}

/// One pipe: its ends, its prefix and the line being assembled.
pub struct Pipe {
    pub read: OwnedFd,
    pub write: OwnedFd,
    prefix: Vec<u8>,
    partial: Vec<u8>,
}

pub struct Relay {
    pipes: [Pipe; 2],
    sink: Sink,
    /// Bytes a slow console has not taken yet.
    pending: Vec<u8>,
    /// Lines dropped since the console last took everything.
    dropped: u64,
    /// The console failed otherwise than by being full (its reader is gone): lines go
    /// nowhere rather than waiting for ever.
    broken: bool,
    name: String,
}

enum Sink {
    Kmsg(File),
    /// runsv's stderr (the console, a container's log), reopened as a description of
    /// its own so that it can be non-blocking without changing the one runsv shares
    /// with svdir and init.
    Console(File),
}

/// What waits for a slow console: at most this much, then lines are counted as
/// dropped instead of stalling the service or runsv.
const PENDING_MAX: usize = 64 * 1024;

impl Relay {
    pub fn new(name: &str) -> io::Result<Relay> {
        // RUNTREE_KMSG names a stand-in for /dev/kmsg (a file, appended to): tests on a
        // host do not write into its kernel log. std opens files close-on-exec.
        let opened = match std::env::var_os("RUNTREE_KMSG") {
            Some(path) => OpenOptions::new().append(true).open(path),
            None => OpenOptions::new().write(true).open("/dev/kmsg"),
        };
        // The kernel adds the timestamp.
        let (sink, prefixes) = match opened {
            Ok(file) => (
                Sink::Kmsg(file),
                [format!("<6>{name}: "), format!("<3>{name}: ")],
            ),
            Err(_) => (
                Sink::Console(console()?),
                [format!("{name}: "), format!("{name} [stderr]: ")],
            ),
        };
        let [out, err] = prefixes;
        Ok(Relay {
            pipes: [Pipe::new(out)?, Pipe::new(err)?],
            sink,
            pending: Vec::new(),
            dropped: 0,
            broken: false,
            name: name.to_string(),
        })
    }

    /// The console's fd while it has not taken everything: poll it for POLLOUT.
    pub fn waiting_fd(&self) -> Option<RawFd> {
        match &self.sink {
            Sink::Console(file)
                if !self.broken && (!self.pending.is_empty() || self.dropped > 0) =>
            {
                Some(file.as_raw_fd())
            }
            _ => None,
        }
    }

    /// The console can take more: what waits first, then the count of what was lost.
    pub fn resume(&mut self) {
        let Sink::Console(file) = &mut self.sink else {
            return;
        };
        while !self.pending.is_empty() {
            match file.write(&self.pending) {
                Ok(0) => return,
                Ok(n) => {
                    self.pending.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => {
                    self.broken = true;
                    self.pending.clear();
                    return;
                }
            }
        }
        if self.dropped > 0 {
            let note = format!(
                "{}: {} lines dropped: the console was too slow\n",
                self.name, self.dropped
            );
            self.dropped = 0;
            self.send(note.into_bytes());
        }
    }

    /// The read ends, for the poll set.
    pub fn read_fds(&self) -> [RawFd; 2] {
        [
            self.pipes[0].read.as_raw_fd(),
            self.pipes[1].read.as_raw_fd(),
        ]
    }

    /// The write end the service gets as `stream`.
    pub fn write_fd(&self, stream: Stream) -> RawFd {
        self.pipes[stream as usize].write.as_raw_fd()
    }

    /// Takes the pipe of `stream` over from an adopted process (see adoption.rs).
    pub fn replace(&mut self, stream: Stream, read: OwnedFd, write: OwnedFd) {
        let pipe = &mut self.pipes[stream as usize];
        (pipe.read, pipe.write) = (read, write);
    }

    /// The read end of `stream`'s pipe.
    pub fn read_end(&self, stream: Stream) -> &OwnedFd {
        &self.pipes[stream as usize].read
    }

    /// Moves what the pipe whose read end is `fd` holds to the sink, a whole line at a
    /// time.
    pub fn pump(&mut self, fd: RawFd) {
        for index in 0..2 {
            if self.pipes[index].read.as_raw_fd() == fd {
                self.pump_pipe(index);
            }
        }
    }

    fn pump_pipe(&mut self, index: usize) {
        let mut buffer = [0u8; 4096];
        loop {
            let read = nix::unistd::read(self.pipes[index].read.as_raw_fd(), &mut buffer);
            match read {
                Ok(0) => break,
                Ok(n) => {
                    for &byte in &buffer[..n] {
                        let pipe = &mut self.pipes[index];
                        if byte == b'\n' {
                            self.emit(index);
                        } else {
                            pipe.partial.push(byte);
                            if pipe.partial.len() >= pipe.piece() {
                                self.emit(index);
                            }
                        }
                    }
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => break,
            }
        }
    }

    /// Writes what is left of unterminated last lines (the service or runsv exited).
    pub fn flush(&mut self) {
        for index in 0..2 {
            self.pump_pipe(index);
            if !self.pipes[index].partial.is_empty() {
                self.emit(index);
            }
        }
    }

    fn emit(&mut self, index: usize) {
        let pipe = &mut self.pipes[index];
        let mut line = Vec::with_capacity(pipe.prefix.len() + pipe.partial.len() + 1);
        line.extend_from_slice(&pipe.prefix);
        line.append(&mut pipe.partial);
        line.push(b'\n');
        self.send(line);
    }

    /// One whole line to the sink. The kernel log never blocks (and a write it refuses
    /// is not retried); the console may: what it does not take waits, bounded, and a
    /// line that does not fit is counted as dropped.
    fn send(&mut self, line: Vec<u8>) {
        let file = match &mut self.sink {
            Sink::Kmsg(file) => {
                let _ = file.write(&line);
                return;
            }
            Sink::Console(file) => file,
        };
        if self.broken {
            return;
        }
        let mut written = 0;
        if self.pending.is_empty() && self.dropped == 0 {
            while written < line.len() {
                match file.write(&line[written..]) {
                    Ok(0) => break,
                    Ok(n) => written += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(_) => {
                        self.broken = true;
                        return;
                    }
                }
            }
        }
        let rest = &line[written..];
        if rest.is_empty() {
            return;
        }
        // A line is kept whole or not at all (once begun, its end must follow).
        if written > 0 || (self.dropped == 0 && self.pending.len() + rest.len() <= PENDING_MAX) {
            self.pending.extend_from_slice(rest);
        } else {
            self.dropped += 1;
        }
    }
}

/// runsv's stderr as a new, non-blocking open file description (through /proc, which
/// reopens pipes, terminals and files alike); stderr itself where that fails (a
/// socket), blocking as before.
fn console() -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    match OpenOptions::new()
        .append(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open("/proc/self/fd/2")
    {
        Ok(file) => Ok(file),
        Err(_) => {
            let fd = nix::unistd::dup(2)?;
            // SAFETY: dup returned a new fd that nothing else owns.
            Ok(unsafe { <File as std::os::fd::FromRawFd>::from_raw_fd(fd) })
        }
    }
}

impl Pipe {
    fn new(prefix: String) -> io::Result<Pipe> {
        let (read, write) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)?;
        // Only the read end is non-blocking; the service's writes may block briefly
        // like on any pipe, never on runsv's behalf.
        let flags = nix::fcntl::fcntl(write.as_raw_fd(), nix::fcntl::FcntlArg::F_GETFL)?;
        let mut flags = nix::fcntl::OFlag::from_bits_truncate(flags);
        flags.remove(nix::fcntl::OFlag::O_NONBLOCK);
        nix::fcntl::fcntl(write.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFL(flags))?;
        Ok(Pipe {
            read,
            write,
            prefix: prefix.into_bytes(),
            partial: Vec::new(),
        })
    }

    /// How much of a line fits in one record beside the prefix and the newline.
    fn piece(&self) -> usize {
        RECORD_MAX.saturating_sub(self.prefix.len() + 1).max(1)
    }
}
