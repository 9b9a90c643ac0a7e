//! svlogd: runit's logger. Reads lines from standard input and appends them to one or
//! more log directories, with runit's options, `config` file, rotation, processor and
//! on-disk format (see docs/svlogd.md). Unlike runit's, it writes out every line it has
//! read before exiting on SIGTERM, and never drops a final line without a newline.

// A binary's modules are looked up beside its root (src/bin/): the paths name the
// program's own directory.
#[path = "svlogd/config.rs"]
mod config;
#[path = "svlogd/logdir.rs"]
mod logdir;
#[path = "svlogd/options.rs"]
mod options;
#[path = "svlogd/processor.rs"]
mod processor;
#[path = "svlogd/signals.rs"]
mod signals;
#[path = "svlogd/stamp.rs"]
mod stamp;

use logdir::LogDir;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use options::Options;
use runsv::tai64n::Timestamp;
use signals::Signals;
use stamp::Stamper;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

/// The longest runit's svlogd sleeps in one poll when no `t` rotation is due sooner.
const MAX_WAIT: Duration = Duration::from_secs(2744);

/// After SIGTERM, how long the rest of a line already begun may take to arrive before
/// the part read is written out on its own.
const LINE_REST_WAIT: Duration = Duration::from_secs(1);

fn say(text: &str) {
    // Nothing useful can be done when stderr is gone; logging goes on.
    let _ = writeln!(io::stderr(), "svlogd: {text}");
}

pub fn info(text: &str) {
    say(&format!("info: {text}"));
}

pub fn warn(text: &str) {
    say(&format!("warning: {text}"));
}

pub fn warn_error(what: &str, name: &str, error: &io::Error) {
    warn(&format!(
        "{what}: {name}: {}",
        runsv::errno_text::describe(error)
    ));
}

pub fn pausing(what: &str, name: &str, error: &io::Error) {
    say(&format!(
        "pausing: {what}: {name}: {}",
        runsv::errno_text::describe(error)
    ));
}

fn fatal(text: &str) -> ! {
    say(&format!("fatal: {text}"));
    std::process::exit(111);
}

fn main() {
    let args: Vec<_> = std::env::args_os().collect();
    let progname = args
        .first()
        .map(|arg| arg.to_string_lossy().into_owned())
        .unwrap_or_else(|| "svlogd".into());
    let options = match options::parse(&progname, args.get(1..).unwrap_or_default()) {
        Ok(options) => options,
        Err(usage) => {
            let _ = io::stderr().write_all(usage.0.as_bytes());
            std::process::exit(111);
        }
    };
    let signals = match Signals::new(options.verbose) {
        Ok(signals) => signals,
        Err(error) => fatal(&error),
    };
    // As runit's: reads never block, so signals are seen while input is idle.
    let stdin = io::stdin();
    let _ = nix::fcntl::fcntl(
        stdin.as_raw_fd(),
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    );
    let mut logger = Logger::new(options, signals);
    logger.reopen();
    logger.run();
}

/// The line being read: its first `linemax` bytes (replaced as `-r`/`-R` say) and
/// whether more followed them.
struct Line {
    head: Vec<u8>,
    stamp: Vec<u8>,
    started: bool,
    /// The head has been written; the rest of the line goes straight to the
    /// directories that took the head.
    overflow: bool,
}

struct Logger {
    options: Options,
    signals: Signals,
    dirs: Vec<LogDir>,
    stamper: Stamper,
    line: Line,
}

impl Logger {
    fn new(options: Options, signals: Signals) -> Logger {
        let dirs = options.dirs.iter().map(|d| LogDir::new(d)).collect();
        Logger {
            stamper: Stamper::new(options.stamp),
            line: Line {
                head: Vec::with_capacity(options.linemax),
                stamp: Vec::with_capacity(32),
                started: false,
                overflow: false,
            },
            options,
            signals,
            dirs,
        }
    }

    /// Closes and opens every directory (at start and on SIGHUP), re-reading configs.
    fn reopen(&mut self) {
        let mut functional = false;
        for dir in &mut self.dirs {
            dir.close(self.options.verbose, &mut self.signals);
            functional |= dir.open(self.options.verbose, &mut self.signals);
        }
        if !functional {
            fatal("no functional log directories.");
        }
    }

    fn flush(&mut self) {
        for dir in &mut self.dirs {
            dir.flush(&mut self.signals);
        }
    }

    fn run(&mut self) {
        let mut buffer = vec![0u8; self.options.buflen];
        loop {
            self.signals.drain();
            let pending = std::mem::take(&mut self.signals.pending);
            if pending.chld {
                for dir in &mut self.dirs {
                    dir.check_processor(self.options.verbose, &mut self.signals);
                }
            }
            if pending.alrm {
                for dir in &mut self.dirs {
                    dir.rotate(self.options.verbose, &mut self.signals);
                }
            }
            if pending.hup {
                self.reopen();
            }
            if pending.term {
                self.finish_line();
                break;
            }
            let wait = self.rotate_due();
            let stdin = io::stdin();
            let mut fds = [
                PollFd::new(stdin.as_fd(), PollFlags::POLLIN),
                PollFd::new(self.signals.fd(), PollFlags::POLLIN),
            ];
            let millis = i32::try_from(wait.as_millis()).unwrap_or(i32::MAX);
            let millis = PollTimeout::try_from(millis).unwrap_or(PollTimeout::MAX);
            if poll(&mut fds, millis).unwrap_or(0) <= 0 {
                continue;
            }
            // Signals first: a SIGHUP sent before a line was written applies to that
            // line.
            let ready = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
            if ready(&fds[1]) || !ready(&fds[0]) {
                continue;
            }
            match nix::unistd::read(stdin.as_raw_fd(), &mut buffer) {
                Ok(0) => break,
                Ok(n) => {
                    self.process(&buffer[..n]);
                    self.flush();
                }
                Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => {}
                Err(error) => {
                    warn(&format!(
                        "unable to read standard input: {}",
                        runsv::errno_text::runit_text(error as i32)
                    ));
                    break;
                }
            }
        }
        // End of input, SIGTERM or a read error: a line begun is kept, with a newline.
        if self.line.started {
            self.end_line();
        }
        let verbose = self.options.verbose;
        for dir in &mut self.dirs {
            dir.close(verbose, &mut self.signals);
        }
        std::process::exit(0);
    }

    /// Rotates the directories whose `t` has passed; how long until the next one.
    fn rotate_due(&mut self) -> Duration {
        let now = Instant::now();
        let mut wait = MAX_WAIT;
        for dir in &mut self.dirs {
            let due = dir.open.as_ref().and_then(|open| open.rotate_at);
            if due.is_some_and(|at| at <= now) {
                dir.rotate(self.options.verbose, &mut self.signals);
            }
            if let Some(at) = dir.open.as_ref().and_then(|open| open.rotate_at) {
                wait = wait.min(at.saturating_duration_since(now));
            }
        }
        wait
    }

    /// After SIGTERM with a line begun: reads the rest of that line (a byte at a time,
    /// so that nothing after it is taken from the pipe) if it comes soon.
    fn finish_line(&mut self) {
        let deadline = Instant::now() + LINE_REST_WAIT;
        let stdin = io::stdin();
        let mut byte = [0u8; 1];
        while self.line.started {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            let mut fds = [PollFd::new(stdin.as_fd(), PollFlags::POLLIN)];
            let millis = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
            if poll(&mut fds, PollTimeout::from(millis)).unwrap_or(0) <= 0 {
                continue;
            }
            match nix::unistd::read(stdin.as_raw_fd(), &mut byte) {
                Ok(1) => self.process(&byte),
                Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => {}
                _ => return,
            }
        }
    }

    /// Splits input into lines as runit's svlogd does: the first `linemax` bytes of a
    /// line are examined (replaced, matched, stamped); the rest is passed on as is.
    fn process(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if !self.line.started {
                self.line.started = true;
                self.line.stamp.clear();
                if self.stamper.enabled() {
                    self.stamper.put(Timestamp::now(), &mut self.line.stamp);
                }
            }
            if self.line.overflow {
                let end = data.iter().position(|&b| b == b'\n');
                let rest = &data[..end.unwrap_or(data.len())];
                self.each_selected(|dir, verbose, signals| dir.put(rest, verbose, signals));
                match end {
                    Some(end) => {
                        self.end_line();
                        data = &data[end + 1..];
                    }
                    None => data = &[],
                }
                continue;
            }
            let room = self.options.linemax - self.line.head.len();
            let window = &data[..room.min(data.len())];
            match window.iter().position(|&b| b == b'\n') {
                Some(end) => {
                    self.append(&window[..end]);
                    self.end_line();
                    data = &data[end + 1..];
                }
                None => {
                    self.append(window);
                    data = &data[window.len()..];
                    if self.line.head.len() == self.options.linemax {
                        self.write_head(false);
                        self.line.overflow = true;
                    }
                }
            }
        }
    }

    fn append(&mut self, bytes: &[u8]) {
        match self.options.replacement {
            None => self.line.head.extend_from_slice(bytes),
            Some(replacement) => {
                let replace = &self.options.replace;
                self.line.head.extend(bytes.iter().map(|&b| {
                    if !(32..=126).contains(&b) || replace.contains(&b) {
                        replacement
                    } else {
                        b
                    }
                }));
            }
        }
    }

    /// Ends the line: writes its head if not yet written, then the newline.
    fn end_line(&mut self) {
        if !self.line.overflow {
            self.write_head(true);
        }
        let linemax = self.options.linemax;
        self.each_selected(|dir, verbose, signals| {
            dir.put(b"\n", verbose, signals);
            dir.line_end(linemax, verbose, signals);
        });
        self.line.head.clear();
        self.line.started = false;
        self.line.overflow = false;
    }

    /// Decides where the line goes (patterns) and writes its stamp, prefix and head
    /// there; `e` patterns copy it to stderr (`...` marks a line cut at `linemax`).
    fn write_head(&mut self, complete: bool) {
        let verbose = self.options.verbose;
        for dir in &mut self.dirs {
            let Some(open) = dir.open.as_mut() else {
                continue;
            };
            let (selected, to_stderr) = if open.config.patterns.is_empty() {
                (true, false)
            } else {
                open.config.select(&self.line.head)
            };
            open.selected = selected;
            if to_stderr {
                let mut copy = self.line.stamp.clone();
                copy.extend_from_slice(&open.config.prefix);
                copy.extend_from_slice(&self.line.head);
                if !complete {
                    copy.extend_from_slice(b"...");
                }
                copy.push(b'\n');
                let _ = io::stderr().write_all(&copy);
            }
            if selected {
                let prefix = std::mem::take(&mut open.config.prefix);
                dir.put(&self.line.stamp, verbose, &mut self.signals);
                dir.put(&prefix, verbose, &mut self.signals);
                dir.put(&self.line.head, verbose, &mut self.signals);
                if let Some(open) = dir.open.as_mut() {
                    open.config.prefix = prefix;
                }
            }
        }
    }

    fn each_selected(&mut self, mut action: impl FnMut(&mut LogDir, bool, &mut Signals)) {
        let verbose = self.options.verbose;
        for dir in &mut self.dirs {
            if dir.open.as_ref().is_some_and(|open| open.selected) {
                action(dir, verbose, &mut self.signals);
            }
        }
    }
}
