//! The `kmsg` log destination: runsv reads the service's output from a pipe it holds
//! for its whole life and writes each line, prefixed with the service name, to the
//! kernel ring buffer — or to runsv's stderr where /dev/kmsg is not writable (an
//! unprivileged tree, a container). The service never blocks on a slow reader: runsv
//! reads whenever the pipe has data.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// The largest write /dev/kmsg takes (prefix and newline included): a longer one is
/// refused with EINVAL and the whole line would be lost. Longer lines are written in
/// pieces of this size, which also bounds the memory a line takes.
const RECORD_MAX: usize = 1024;

pub struct Relay {
    pub read: OwnedFd,
    pub write: OwnedFd,
    sink: Sink,
    prefix: Vec<u8>,
    partial: Vec<u8>,
}

enum Sink {
    Kmsg(File),
    Stderr,
}

impl Relay {
    pub fn new(name: &str) -> io::Result<Relay> {
        let (read, write) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)?;
        // Only the read end is non-blocking; the service's writes may block briefly
        // like on any pipe, never on runsv's behalf.
        let flags = nix::fcntl::fcntl(write.as_raw_fd(), nix::fcntl::FcntlArg::F_GETFL)?;
        let mut flags = nix::fcntl::OFlag::from_bits_truncate(flags);
        flags.remove(nix::fcntl::OFlag::O_NONBLOCK);
        nix::fcntl::fcntl(write.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFL(flags))?;
        // std opens files close-on-exec.
        // RUNTREE_KMSG names a stand-in for /dev/kmsg (a file, appended to): tests on a
        // host do not write into its kernel log.
        let kmsg = std::env::var_os("RUNTREE_KMSG");
        let opened = match &kmsg {
            Some(path) => OpenOptions::new().append(true).open(path),
            None => OpenOptions::new().write(true).open("/dev/kmsg"),
        };
        let (sink, prefix) = match opened {
            // <6>: level "info"; the kernel adds the timestamp.
            Ok(file) => (Sink::Kmsg(file), format!("<6>{name}: ")),
            Err(_) => (Sink::Stderr, format!("{name}: ")),
        };
        Ok(Relay {
            read,
            write,
            sink,
            prefix: prefix.into_bytes(),
            partial: Vec::new(),
        })
    }

    pub fn read_fd(&self) -> RawFd {
        self.read.as_raw_fd()
    }

    /// Moves what the pipe holds to the sink, a whole line at a time.
    pub fn pump(&mut self) {
        let mut buffer = [0u8; 4096];
        loop {
            match nix::unistd::read(self.read.as_raw_fd(), &mut buffer) {
                Ok(0) => break,
                Ok(n) => {
                    for &byte in &buffer[..n] {
                        if byte == b'\n' {
                            self.emit();
                        } else {
                            self.partial.push(byte);
                            if self.partial.len() >= self.piece() {
                                self.emit();
                            }
                        }
                    }
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => break,
            }
        }
    }

    /// How much of a line fits in one record beside the prefix and the newline.
    fn piece(&self) -> usize {
        RECORD_MAX.saturating_sub(self.prefix.len() + 1).max(1)
    }

    /// Writes what is left of an unterminated last line (the service or runsv exited).
    pub fn flush(&mut self) {
        self.pump();
        if !self.partial.is_empty() {
            self.emit();
        }
    }

    fn emit(&mut self) {
        let mut line = Vec::with_capacity(self.prefix.len() + self.partial.len() + 1);
        line.extend_from_slice(&self.prefix);
        line.append(&mut self.partial);
        line.push(b'\n');
        // A lost line is better than a blocked supervisor: errors are not retried.
        let _ = match &mut self.sink {
            Sink::Kmsg(file) => file.write(&line),
            Sink::Stderr => io::stderr().write(&line),
        };
    }
}
