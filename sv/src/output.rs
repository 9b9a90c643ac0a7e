//! sv's messages and its exit code. Like runit's sv, every `ok:`, `fail:`, `warning:`,
//! `timeout:` and status line goes to stdout, one flushed line at a time; only usage,
//! fatal errors and warnings about `down` and `check` go to stderr.

use crate::errno::{self, error_str};
use std::io::Write;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Ok,
    Fail,
    Warning,
}

/// `fail: NAME: text[: strerror]` and its kin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub level: Level,
    pub text: String,
    pub errno: Option<i32>,
}

impl Message {
    pub fn new(level: Level, text: impl Into<String>, errno: Option<i32>) -> Message {
        Message {
            level,
            text: text.into(),
            errno,
        }
    }
    pub fn fail(text: impl Into<String>) -> Message {
        Message::new(Level::Fail, text, None)
    }
    pub fn fail_errno(text: impl Into<String>, errno: i32) -> Message {
        Message::new(Level::Fail, text, Some(errno))
    }
    pub fn warning(text: impl Into<String>) -> Message {
        Message::new(Level::Warning, text, None)
    }
    pub fn warning_errno(text: impl Into<String>, error: &std::io::Error) -> Message {
        Message::new(Level::Warning, text, Some(errno::of_io(error)))
    }
    pub fn ok(text: impl Into<String>) -> Message {
        Message::new(Level::Ok, text, None)
    }

    /// runit prints "runsv not running" as a success for `exit`/`shutdown`.
    pub fn not_running(first_act: u8) -> Message {
        if first_act == b'x' {
            Message::ok("runsv not running")
        } else {
            Message::fail("runsv not running")
        }
    }

    /// The text after `NAME: ` (what `--json` puts in `error`).
    pub fn detail(&self) -> String {
        match self.errno {
            Some(errno) => format!("{}: {}", self.text, error_str(errno)),
            None => self.text.clone(),
        }
    }

    pub fn render(&self, name: &str) -> String {
        let prefix = match self.level {
            Level::Ok => "ok: ",
            Level::Fail => "fail: ",
            Level::Warning => "warning: ",
        };
        format!("{prefix}{name}: {}", self.detail())
    }

    /// Whether it counts in the exit code.
    pub fn counts(&self) -> bool {
        self.level != Level::Ok
    }
}

/// stdout, and the count of services that failed.
pub struct Out<W: Write> {
    writer: W,
    failures: u32,
    /// Lines are kept until `flush` (one write for `sv status` of a thousand
    /// services) instead of being flushed one by one.
    held: bool,
}

impl<W: Write> Out<W> {
    pub fn new(writer: W) -> Out<W> {
        Out {
            writer,
            failures: 0,
            held: false,
        }
    }

    /// Writes one line and flushes it, so that lines interleave with stderr and with the
    /// output of `./check` in the order they happened.
    pub fn line(&mut self, text: &str) {
        // A closed stdout is not a reason to stop controlling services: runit's sv would
        // die of SIGPIPE (which main restores), anything else is ignored as runit does.
        let _ = self.writer.write_all(&crate::raw_name::bytes(text));
        let _ = self.writer.write_all(b"\n");
        if !self.held {
            let _ = self.writer.flush();
        }
    }

    /// Holds lines back until `flush`: for output nothing else interleaves with.
    pub fn hold(&mut self) {
        self.held = true;
    }

    pub fn flush(&mut self) {
        self.held = false;
        let _ = self.writer.flush();
    }

    pub fn message(&mut self, name: &str, message: &Message) {
        self.count(message);
        self.line(&message.render(name));
    }

    pub fn count(&mut self, message: &Message) {
        if message.counts() {
            self.fail();
        }
    }

    pub fn fail(&mut self) {
        self.failures += 1;
    }

    pub fn failures(&self) -> u32 {
        self.failures
    }

    #[cfg(test)]
    pub fn into_inner(self) -> W {
        self.writer
    }
}

/// Normal mode: the number of failed services, at most 99 (100 is usage or fatal).
pub fn exit_code(failures: u32) -> i32 {
    failures.min(99) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_in_runits_words() {
        let m = Message::fail_errno("unable to change to service directory", nix::libc::ENOENT);
        assert_eq!(
            m.render("nonexist"),
            "fail: nonexist: unable to change to service directory: file does not exist"
        );
        assert_eq!(
            Message::not_running(b'u').render("sig"),
            "fail: sig: runsv not running"
        );
        assert_eq!(
            Message::not_running(b'x').render("sig"),
            "ok: sig: runsv not running"
        );
        assert!(!Message::not_running(b'x').counts());
        assert_eq!(
            Message::warning("unable to read supervise/status: bad format").render("/tmp/d"),
            "warning: /tmp/d: unable to read supervise/status: bad format"
        );
    }

    #[test]
    fn exit_code_is_capped() {
        assert_eq!(exit_code(0), 0);
        assert_eq!(exit_code(3), 3);
        assert_eq!(exit_code(99), 99);
        assert_eq!(exit_code(100), 99);
        assert_eq!(exit_code(5000), 99);
    }

    #[test]
    fn counting() {
        let mut out = Out::new(Vec::new());
        out.message("a", &Message::ok("runsv not running"));
        out.message("b", &Message::fail("runsv not running"));
        out.message("c", &Message::warning("x"));
        assert_eq!(out.failures(), 2);
        let text = String::from_utf8(out.into_inner()).unwrap();
        assert_eq!(
            text,
            "ok: a: runsv not running\nfail: b: runsv not running\nwarning: c: x\n"
        );
    }
}
