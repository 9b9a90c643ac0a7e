//! `supervise/times`: when the service's current `run` was spawned, when its exec
//! succeeded, and when it became ready (`running`, or `ok` for a oneshot), in seconds
//! since boot. runsv writes it (atomically, at each of the three moments); `sv blame`
//! reads it to tell where the boot time went.
//!
//! The clock is CLOCK_BOOTTIME, the clock of `/proc/uptime`: it starts as the kernel
//! boots and is never set, so times from different services (and from the kernel's
//! own log) compare, whatever hwclock or NTP do to the wall clock during the boot.
//!
//! Format, one `key=value` per line, readers ignoring unknown keys:
//! ```text
//! pid=412
//! spawn=3.101234567
//! exec=3.103456789
//! ready=3.250000000
//! ```
//! A key without a value (`ready=`) has not happened yet for this `run`.

use crate::reader::{self, Links};
use crate::replace::write_atomically;
use crate::supervise::SuperviseDir;
use std::path::PathBuf;
use std::time::Duration;

/// The file's name inside `supervise/`.
pub const FILE: &str = "times";
/// More than any file runsv writes; a bigger one is not ours.
const LIMIT: u64 = 4096;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Times {
    /// The `run` process these times are of (0 before the first).
    pub pid: u32,
    pub spawn: Option<Duration>,
    pub exec: Option<Duration>,
    pub ready: Option<Duration>,
}

/// Now, since boot (CLOCK_BOOTTIME); None only where the kernel lacks the clock.
pub fn now() -> Option<Duration> {
    let time = nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME).ok()?;
    Some(Duration::new(
        u64::try_from(time.tv_sec()).ok()?,
        u32::try_from(time.tv_nsec()).ok()?,
    ))
}

fn seconds(time: Option<Duration>) -> String {
    time.map(|t| format!("{}.{:09}", t.as_secs(), t.subsec_nanos()))
        .unwrap_or_default()
}

fn parse_seconds(text: &str) -> Option<Duration> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if fraction.len() > 9 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let nanos = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<9}").parse().ok()?
    };
    Some(Duration::new(whole.parse().ok()?, nanos))
}

impl Times {
    /// A `run` just forked.
    pub fn spawned(pid: u32, at: Option<Duration>) -> Times {
        Times {
            pid,
            spawn: at,
            exec: None,
            ready: None,
        }
    }

    pub fn encode(&self) -> String {
        format!(
            "pid={}\nspawn={}\nexec={}\nready={}\n",
            self.pid,
            seconds(self.spawn),
            seconds(self.exec),
            seconds(self.ready)
        )
    }

    /// None when the text is not such a file (no pid line); a bad time is absent.
    pub fn decode(text: &str) -> Option<Times> {
        let mut times = Times::default();
        let mut pid = None;
        for line in text.lines() {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            match key {
                "pid" => pid = value.parse().ok(),
                "spawn" => times.spawn = parse_seconds(value),
                "exec" => times.exec = parse_seconds(value),
                "ready" => times.ready = parse_seconds(value),
                _ => {}
            }
        }
        times.pid = pid?;
        Some(times)
    }

    pub fn path(supervise: &SuperviseDir) -> PathBuf {
        supervise.path.join(FILE)
    }

    pub fn write(&self, supervise: &SuperviseDir) -> std::io::Result<()> {
        write_atomically(&Times::path(supervise), self.encode().as_bytes(), 0o644)
    }

    /// Reads a service's times: bounded, never through a symlink, never blocking on a
    /// FIFO planted in the file's place (reader.rs).
    pub fn read(supervise: &SuperviseDir) -> Option<Times> {
        let bytes = reader::read(&Times::path(supervise), LIMIT, Links::Refuse).ok()?;
        Times::decode(std::str::from_utf8(&bytes).ok()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_missing_moments() {
        let times = Times {
            pid: 412,
            spawn: Some(Duration::new(3, 101_234_567)),
            exec: Some(Duration::new(3, 103_456_789)),
            ready: None,
        };
        let text = times.encode();
        assert_eq!(
            text,
            "pid=412\nspawn=3.101234567\nexec=3.103456789\nready=\n"
        );
        assert_eq!(Times::decode(&text), Some(times));
    }

    #[test]
    fn foreign_text_is_refused_or_read_leniently() {
        assert_eq!(Times::decode(""), None);
        assert_eq!(Times::decode("garbage"), None);
        let t = Times::decode("pid=7\nspawn=1.5\nexec=x\nready=2\nfuture=1\n").unwrap();
        assert_eq!(t.spawn, Some(Duration::from_millis(1500)));
        assert_eq!(t.exec, None);
        assert_eq!(t.ready, Some(Duration::from_secs(2)));
        assert_eq!(parse_seconds("1.1234567890"), None);
        assert_eq!(parse_seconds("-1"), None);
    }

    #[test]
    fn the_clock_is_the_one_of_proc_uptime() {
        let before = now().unwrap();
        let uptime: f64 = std::fs::read_to_string("/proc/uptime")
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let after = now().unwrap();
        // /proc/uptime has two decimals.
        assert!(
            uptime >= before.as_secs_f64() - 0.011,
            "{uptime} {before:?}"
        );
        assert!(uptime <= after.as_secs_f64() + 0.011, "{uptime} {after:?}");
    }

    #[test]
    fn written_and_read_back_but_never_through_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let supervise = SuperviseDir {
            path: dir.path().to_path_buf(),
        };
        assert_eq!(Times::read(&supervise), None);
        let times = Times::spawned(9, Some(Duration::from_secs(1)));
        times.write(&supervise).unwrap();
        assert_eq!(Times::read(&supervise), Some(times));
        let other = tempfile::tempdir().unwrap();
        std::fs::rename(dir.path().join(FILE), other.path().join(FILE)).unwrap();
        std::os::unix::fs::symlink(other.path().join(FILE), dir.path().join(FILE)).unwrap();
        assert_eq!(Times::read(&supervise), None);
    }
}
