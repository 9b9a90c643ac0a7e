//! runit's messages and exit codes: `chpst: fatal: …` and 111 for every failure (whatever
//! name chpst was called by), `usage: NAME …` followed by a blank line and 100.

use std::io::{self, Write};
use std::process::exit;

pub const EXIT_USAGE: i32 = 100;
pub const EXIT_FATAL: i32 = 111;

/// runit's wording of an error (`file does not exist`, `temporary failure`, …).
pub fn describe(error: &io::Error) -> &'static str {
    runsv::errno_text::describe(error)
}

pub fn say(line: &[u8]) {
    let mut out = Vec::with_capacity(line.len() + 1);
    out.extend_from_slice(line);
    out.push(b'\n');
    // Nothing to do when stderr is gone (`-2` closed it): the exit code still tells.
    let _ = io::stderr().write_all(&out);
}

/// A failure with a system error: `chpst: fatal: WHAT: ERROR`.
pub fn fatal(what: &str, error: &io::Error) -> ! {
    say(format!("chpst: fatal: {what}: {}", describe(error)).as_bytes());
    exit(EXIT_FATAL);
}

/// A failure about a named thing: `chpst: fatal: WHAT: NAME: ERROR`.
pub fn fatal_on(what: &str, name: &[u8], error: &io::Error) -> ! {
    let mut line = format!("chpst: fatal: {what}: ").into_bytes();
    line.extend_from_slice(name);
    line.extend_from_slice(format!(": {}", describe(error)).as_bytes());
    say(&line);
    exit(EXIT_FATAL);
}

/// A failure without a system error: `chpst: fatal: WHAT: DETAIL`.
pub fn fatal_x(what: &str, detail: &[u8]) -> ! {
    let mut line = format!("chpst: fatal: {what}: ").into_bytes();
    line.extend_from_slice(detail);
    say(&line);
    exit(EXIT_FATAL);
}

pub fn warn(line: &[u8]) {
    let mut out = b"chpst: warning: ".to_vec();
    out.extend_from_slice(line);
    say(&out);
}

pub fn usage(program: &[u8], synopsis: &str) -> ! {
    let mut line = b"usage: ".to_vec();
    line.extend_from_slice(program);
    line.extend_from_slice(synopsis.as_bytes());
    line.push(b'\n');
    say(&line);
    exit(EXIT_USAGE);
}
