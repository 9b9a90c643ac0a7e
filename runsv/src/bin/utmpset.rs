//! utmpset: logs a terminal line out of utmp (and wtmp with `-w`), as runit's utmpset —
//! `utmpset [-w] line`, run by a getty service's `finish` so that `who` stops listing
//! a session whose getty was restarted.
//!
//! The files are glibc's (`/var/run/utmp`, `/var/log/wtmp`) in glibc's record layout,
//! which is what every program that reads them on Linux expects. Exit codes (runit's):
//! 0 done, 1 usage, 111 a file cannot be opened or locked, no utmp entry for the line,
//! or the wtmp record cannot be written.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

// chpst's getopt: utmpset uses the letters only, not the arguments.
#[allow(dead_code)]
#[path = "chpst/getopt.rs"]
mod getopt;

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::process::exit;

const UTMP: &str = "/var/run/utmp";
const WTMP: &str = "/var/log/wtmp";

/// glibc's `struct utmp` on Linux (64-bit and 32-bit alike): 384 bytes.
const RECORD: usize = 384;
const TYPE: usize = 0;
const LINE: std::ops::Range<usize> = 8..40;
const USER: std::ops::Range<usize> = 44..76;
const HOST: std::ops::Range<usize> = 76..332;
const SECONDS: std::ops::Range<usize> = 340..344;
const DEAD_PROCESS: i16 = 8;

fn say(line: &[u8]) {
    let mut out = line.to_vec();
    out.push(b'\n');
    let _ = io::stderr().write_all(&out);
}

fn die(line: &[u8]) -> ! {
    say(line);
    exit(111);
}

fn fatal(what: &str, error: &io::Error) -> ! {
    let text = runsv::errno_text::describe(error);
    die(format!("utmpset: fatal: {what}: {text}").as_bytes());
}

fn now() -> i32 {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // The record's field is 32 bits wide, as glibc writes it.
    seconds as i32
}

fn lock(file: &File) -> io::Result<()> {
    loop {
        // SAFETY: flock on a descriptor this process owns.
        if unsafe { nix::libc::flock(file.as_raw_fd(), nix::libc::LOCK_EX) } == 0 {
            return Ok(());
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

/// The line a record names: its `ut_line` up to the first NUL.
fn line_of(record: &[u8; RECORD]) -> &[u8] {
    let field = &record[LINE];
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    &field[..end]
}

/// Marks the first login record of `line` dead, in place: no user, no host, the time of
/// the logout. Whether there was one.
fn utmp_logout(line: &[u8]) -> bool {
    let mut file = match OpenOptions::new().read(true).write(true).open(UTMP) {
        Ok(file) => file,
        Err(e) => fatal(&format!("unable to open {UTMP}"), &e),
    };
    if let Err(e) = lock(&file) {
        fatal(&format!("unable to lock: {UTMP}"), &e);
    }
    let mut record = [0u8; RECORD];
    loop {
        if file.read_exact(&mut record).is_err() {
            return false;
        }
        if record[USER.start] == 0 || line_of(&record) != line {
            continue;
        }
        record[USER].fill(0);
        record[HOST].fill(0);
        record[SECONDS].copy_from_slice(&now().to_ne_bytes());
        record[TYPE..TYPE + 2].copy_from_slice(&DEAD_PROCESS.to_ne_bytes());
        return file.seek(SeekFrom::Current(-(RECORD as i64))).is_ok()
            && file.write_all(&record).is_ok();
    }
}

/// Appends a logout record for `line`; a partial write is cut off again, so that the
/// file stays a whole number of records.
fn wtmp_logout(line: &[u8]) -> io::Result<()> {
    let file = match OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(WTMP)
    {
        Ok(file) => file,
        Err(e) => fatal(&format!("unable to open {WTMP}"), &e),
    };
    if let Err(e) = lock(&file) {
        fatal(&format!("unable to lock {WTMP}"), &e);
    }
    let size = file.metadata()?.len();
    let mut record = [0u8; RECORD];
    // runit keeps two bytes short of the field for a line longer than it.
    let kept = if line.len() > LINE.len() {
        LINE.len() - 2
    } else {
        line.len()
    };
    record[LINE.start..LINE.start + kept].copy_from_slice(&line[..kept]);
    record[SECONDS].copy_from_slice(&now().to_ne_bytes());
    record[TYPE..TYPE + 2].copy_from_slice(&DEAD_PROCESS.to_ne_bytes());
    let mut writer = &file;
    match writer.write(&record) {
        Ok(RECORD) => Ok(()),
        outcome => {
            let _ = file.set_len(size);
            Err(outcome
                .err()
                .unwrap_or_else(|| io::Error::from(io::ErrorKind::WriteZero)))
        }
    }
}

fn main() {
    let args: Vec<OsString> = std::env::args_os().collect();
    let program = args
        .first()
        .map(|a| a.as_bytes().to_vec())
        .unwrap_or_default();
    let usage = || -> ! {
        let mut line = b"usage: ".to_vec();
        line.extend_from_slice(&program);
        line.extend_from_slice(b" [-w] line\n");
        say(&line);
        exit(1);
    };
    let mut wtmp = false;
    let mut options = getopt::Getopt::new(&args);
    loop {
        match options.next(b"wV") {
            getopt::Next::Done => break,
            getopt::Next::Option(b'w', _) => wtmp = true,
            getopt::Next::Option(_, _) => {
                say(format!("runtree utmpset {}", env!("CARGO_PKG_VERSION")).as_bytes());
                usage();
            }
            getopt::Next::Problem => usage(),
        }
    }
    let Some(line) = args.get(options.index) else {
        usage();
    };
    let line = line.as_bytes();
    let unable = |file: &str, reason: &str| -> ! {
        let mut message = b"utmpset: warning: unable to logout line ".to_vec();
        message.extend_from_slice(line);
        message.extend_from_slice(format!(" in {file}: {reason}").as_bytes());
        die(&message);
    };
    if !utmp_logout(line) {
        unable("utmp", "no such entry");
    }
    if wtmp {
        if let Err(e) = wtmp_logout(line) {
            unable("wtmp", runsv::errno_text::describe(&e));
        }
    }
}
