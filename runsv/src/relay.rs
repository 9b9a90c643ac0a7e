//! The `kmsg` and `console` log destinations: runsv reads the service's output from
//! two pipes it holds for its whole life (stdout, stderr) and writes it on a whole line
//! at a time. With `kmsg`, each line is prefixed with the service name and becomes a
//! record in the kernel ring buffer — or a line on runsv's stderr where /dev/kmsg is
//! not writable (an unprivileged tree, a container). With `console`, lines go as the
//! service wrote them to runsv's stdout and stderr. Every line is also kept in
//! `supervise/tail` (see runsv::tail). The service never blocks on a slow reader:
//! runsv reads whenever a pipe has data.
//!
//! stdout and stderr stay apart: in the kernel log by priority (`<6>` info for stdout,
//! `<3>` err for stderr, so `dmesg --level=err` shows a service's errors), on the
//! console by a `[stderr]` mark (with `kmsg`) or by going to runsv's stderr (with
//! `console`).

use runsv::tail::TailWriter;
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

/// Where the relay sends lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The kernel log, prefixed; the console, prefixed, where /dev/kmsg is not
    /// writable.
    Kmsg,
    /// runsv's own stdout and stderr, as the service wrote them (`log: console`).
    Console,
}

/// One pipe: its ends, its prefix and the line being assembled.
pub struct Pipe {
    pub read: OwnedFd,
    pub write: OwnedFd,
    prefix: Vec<u8>,
    partial: Vec<u8>,
    /// Which of the relay's destinations its lines go to.
    destination: usize,
    /// Writers (`run`, then `finish`, …) ended with this many bytes still in the
    /// pipe, nearest first: once they are read, an unterminated last line is ended.
    ends_after: Vec<usize>,
}

pub struct Relay {
    // Boxed: the relay is one variant of runsv's output, beside much smaller ones.
    pipes: Box<[Pipe; 2]>,
    destinations: Vec<Destination>,
    /// The recent output, whole lines, kept in supervise/tail.
    tail: TailWriter,
    /// Lines for the tail, written once per read.
    for_tail: Vec<u8>,
    /// The record being written (kept, so that a line costs no allocation).
    line: Vec<u8>,
    name: String,
    /// A warning for runsv to print (the tail could not be written).
    pub warning: Option<String>,
}

struct Destination {
    file: File,
    kmsg: bool,
    /// Bytes a slow console has not taken yet.
    pending: Vec<u8>,
    /// Whole lines for the console, written together once per read: one write per
    /// line would cost a flood a system call every few bytes.
    batch: Vec<u8>,
    /// Lines dropped since the console last took everything.
    dropped: u64,
    /// The console failed otherwise than by being full (its reader is gone): lines go
    /// nowhere rather than waiting for ever.
    broken: bool,
}

/// What waits for a slow console: at most this much, then lines are counted as
/// dropped instead of stalling the service or runsv.
const PENDING_MAX: usize = 64 * 1024;

/// What one turn of runsv's loop reads from one of the service's pipes. Small enough
/// that the records it makes (a `yes` makes one per two bytes) are written in about a
/// millisecond, so a control byte or a signal never waits longer than that.
const SHARE: usize = 4 * 1024;

/// What a flush reads at most: what a pipe holds, several times over.
const FLUSH_MAX: usize = 1024 * 1024;

impl Relay {
    pub fn new(name: &str, mode: Mode, tail: TailWriter) -> io::Result<Relay> {
        let kmsg = match mode {
            // A container's kmsg is the host's kernel log (writable with --privileged):
            // no place for a container's services. Their lines go, prefixed and whole,
            // to the container's log instead.
            Mode::Kmsg if runsv::tree_env::in_container() => None,
            // RUNTREE_KMSG names a stand-in for /dev/kmsg (a file, appended to): tests
            // on a host do not write into its kernel log. std opens files
            // close-on-exec.
            Mode::Kmsg => match std::env::var_os("RUNTREE_KMSG") {
                Some(path) => OpenOptions::new().append(true).open(path).ok(),
                None => OpenOptions::new().write(true).open("/dev/kmsg").ok(),
            },
            Mode::Console => None,
        };
        let (destinations, prefixes, routes) = match (mode, kmsg) {
            // The kernel adds the timestamp.
            (_, Some(file)) => (
                vec![Destination::new(file, true)],
                [format!("<6>{name}: "), format!("<3>{name}: ")],
                [0, 0],
            ),
            (Mode::Kmsg, None) => (
                vec![Destination::new(console(2)?, false)],
                [format!("{name}: "), format!("{name} [stderr]: ")],
                [0, 0],
            ),
            (Mode::Console, None) => (
                vec![
                    Destination::new(console(1)?, false),
                    Destination::new(console(2)?, false),
                ],
                [String::new(), String::new()],
                [0, 1],
            ),
        };
        let [out, err] = prefixes;
        Ok(Relay {
            pipes: Box::new([Pipe::new(out, routes[0])?, Pipe::new(err, routes[1])?]),
            destinations,
            tail,
            for_tail: Vec::new(),
            line: Vec::new(),
            name: name.to_string(),
            warning: None,
        })
    }

    /// The consoles that have not taken everything: poll them for POLLOUT.
    pub fn waiting_fds(&self) -> [Option<RawFd>; 2] {
        let mut fds = [None, None];
        for (slot, destination) in fds.iter_mut().zip(&self.destinations) {
            if !destination.kmsg
                && !destination.broken
                && (!destination.pending.is_empty() || destination.dropped > 0)
            {
                *slot = Some(destination.file.as_raw_fd());
            }
        }
        fds
    }

    /// The console `fd` can take more: what waits first, then the count of what was
    /// lost.
    pub fn resume(&mut self, fd: RawFd) {
        let name = self.name.clone();
        for destination in &mut self.destinations {
            if destination.file.as_raw_fd() == fd {
                destination.resume(&name);
            }
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
        pipe.ends_after.clear();
    }

    /// The read end of `stream`'s pipe.
    pub fn read_end(&self, stream: Stream) -> &OwnedFd {
        &self.pipes[stream as usize].read
    }

    /// Moves one share of what the pipe whose read end is `fd` holds to the
    /// destination, a whole line at a time. One share, not all: a service that writes
    /// as fast as runsv reads would otherwise keep runsv here for ever, deaf to control
    /// bytes and signals. What is left waits in the pipe (the service blocks when it is
    /// full) and keeps the fd ready for the next turn of the loop.
    pub fn pump(&mut self, fd: RawFd) {
        for index in 0..2 {
            if self.pipes[index].read.as_raw_fd() == fd {
                self.pump_pipe(index, SHARE);
            }
        }
    }

    /// Reads up to `limit` bytes of pipe `index` (less once it is empty).
    fn pump_pipe(&mut self, index: usize, limit: usize) {
        let mut buffer = [0u8; SHARE];
        let mut taken = 0;
        while taken < limit {
            // Up to the end of an ended writer's bytes, not past it.
            let before_end = self.pipes[index].ends_after.first().copied();
            let want = buffer
                .len()
                .min(limit - taken)
                .min(before_end.unwrap_or(usize::MAX));
            let read = nix::unistd::read(self.pipes[index].read.as_raw_fd(), &mut buffer[..want]);
            match read {
                Ok(0) => break,
                Ok(n) => {
                    taken += n;
                    self.split(index, &buffer[..n]);
                    let pipe = &mut self.pipes[index];
                    pipe.ends_after
                        .iter_mut()
                        .for_each(|left| *left = left.saturating_sub(n));
                    if pipe.ends_after.first() == Some(&0) {
                        pipe.ends_after.retain(|&left| left > 0);
                        self.end_line(index);
                    }
                    self.write_tail();
                    for destination in &mut self.destinations {
                        destination.commit();
                    }
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => break,
            }
        }
    }

    /// Cuts what was read into lines (and lines into records of at most a piece),
    /// keeping an unterminated end for the next read.
    fn split(&mut self, index: usize, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let pipe = &mut self.pipes[index];
            let room = pipe.piece().saturating_sub(pipe.partial.len()).max(1);
            let window = &bytes[..bytes.len().min(room)];
            match window.iter().position(|&b| b == b'\n') {
                Some(newline) => {
                    self.emit(index, &window[..newline]);
                    bytes = &bytes[newline + 1..];
                }
                None if window.len() == room => {
                    self.emit(index, window);
                    // A line of exactly a piece ends here: its newline makes no
                    // empty record.
                    let after = usize::from(bytes.get(room) == Some(&b'\n'));
                    bytes = &bytes[room + after..];
                }
                None => {
                    pipe.partial.extend_from_slice(window);
                    bytes = &[];
                }
            }
        }
    }

    /// The service's process ended: its last line reaches the log even without a
    /// newline, once what it wrote before is relayed. That is not done here: the
    /// pipe may hold 64 KiB, tens of thousands of records, and runsv has an exit to
    /// handle; the bytes waiting now are counted, and the line is ended when the
    /// relay has read that many (see pump_pipe).
    pub fn writer_ended(&mut self) {
        for index in 0..2 {
            let mut waiting: nix::libc::c_int = 0;
            // SAFETY: FIONREAD writes one int, the number of bytes in the pipe.
            let queried = unsafe {
                nix::libc::ioctl(
                    self.pipes[index].read.as_raw_fd(),
                    nix::libc::FIONREAD,
                    &mut waiting,
                )
            };
            match usize::try_from(waiting) {
                Ok(waiting) if queried == 0 && waiting > 0 => {
                    self.pipes[index].ends_after.push(waiting);
                }
                // Nothing waits (or it cannot be known): the line ends now.
                _ => {
                    self.pipes[index].ends_after.clear();
                    self.end_line(index);
                }
            }
        }
        self.write_tail();
        for destination in &mut self.destinations {
            destination.commit();
        }
    }

    fn end_line(&mut self, index: usize) {
        if !self.pipes[index].partial.is_empty() {
            self.emit(index, &[]);
        }
    }

    /// Writes what is left of unterminated last lines (the service or runsv exited).
    /// What waits in the pipes is read first, bounded: a process the service left
    /// behind may still be writing as fast as it can.
    pub fn flush(&mut self) {
        for index in 0..2 {
            self.pump_pipe(index, FLUSH_MAX);
            self.pipes[index].ends_after.clear();
            self.end_line(index);
        }
        self.write_tail();
        for destination in &mut self.destinations {
            destination.commit();
        }
    }

    fn write_tail(&mut self) {
        if self.for_tail.is_empty() {
            return;
        }
        let result = self.tail.append(&self.for_tail);
        self.for_tail.clear();
        if let Some(warning) = self.tail.report(result) {
            self.warning = Some(warning);
        }
    }

    /// One record: what waits of the line, then `rest`.
    fn emit(&mut self, index: usize, rest: &[u8]) {
        let pipe = &mut self.pipes[index];
        let line = &mut self.line;
        line.clear();
        line.extend_from_slice(&pipe.prefix);
        line.extend_from_slice(&pipe.partial);
        line.extend_from_slice(rest);
        line.push(b'\n');
        self.for_tail.extend_from_slice(&line[pipe.prefix.len()..]);
        pipe.partial.clear();
        self.destinations[pipe.destination].send(line);
    }
}

impl Destination {
    fn new(file: File, kmsg: bool) -> Destination {
        Destination {
            file,
            kmsg,
            pending: Vec::new(),
            batch: Vec::new(),
            dropped: 0,
            broken: false,
        }
    }

    /// One whole line. The kernel log never blocks (and a write it refuses is not
    /// retried); the console may: lines are batched for `commit`, and once the console
    /// has fallen behind, what it does not take waits, bounded, and a line that does
    /// not fit is counted as dropped.
    fn send(&mut self, line: &[u8]) {
        if self.kmsg {
            let _ = self.file.write(line);
            return;
        }
        if self.broken {
            return;
        }
        if self.pending.is_empty() && self.dropped == 0 {
            self.batch.extend_from_slice(line);
            return;
        }
        // A line is kept whole or not at all.
        if self.dropped == 0 && self.pending.len() + line.len() <= PENDING_MAX {
            self.pending.extend_from_slice(line);
        } else {
            self.dropped += 1;
        }
    }

    /// Writes the lines batched since the last read. What the console does not take
    /// waits, whole lines included (they are few: one read's worth), so that a line
    /// once begun is ended.
    fn commit(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let mut written = 0;
        while written < self.batch.len() {
            match self.file.write(&self.batch[written..]) {
                Ok(0) => break,
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    self.broken = true;
                    break;
                }
            }
        }
        if !self.broken {
            self.pending.extend_from_slice(&self.batch[written..]);
        }
        self.batch.clear();
        self.batch.shrink_to(2 * SHARE);
    }

    /// The console can take more: what waits first, then the count of what was lost.
    fn resume(&mut self, name: &str) {
        while !self.pending.is_empty() {
            match self.file.write(&self.pending) {
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
                "{name}: {} lines dropped: the console was too slow\n",
                self.dropped
            );
            self.dropped = 0;
            self.send(note.as_bytes());
            self.commit();
        }
    }
}

/// runsv's `fd` (1 or 2) as a new, non-blocking open file description (through /proc,
/// which reopens pipes, terminals and files alike); a plain copy of it where that fails
/// (a socket), blocking as before.
fn console(fd: RawFd) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    match OpenOptions::new()
        .append(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(format!("/proc/self/fd/{fd}"))
    {
        Ok(file) => Ok(file),
        Err(_) => {
            let fd = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(3))?;
            // SAFETY: fcntl returned a new fd that nothing else owns.
            Ok(unsafe { <File as std::os::fd::FromRawFd>::from_raw_fd(fd) })
        }
    }
}

impl Pipe {
    fn new(prefix: String, destination: usize) -> io::Result<Pipe> {
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
            destination,
            ends_after: Vec::new(),
        })
    }

    /// How much of a line fits in one record beside the prefix and the newline.
    fn piece(&self) -> usize {
        RECORD_MAX.saturating_sub(self.prefix.len() + 1).max(1)
    }
}
