//! Messages on stderr: the console on a machine, the container's log otherwise.

use std::io::Write;

/// Writes `init: MSG` with a single write, so that lines from init and from services
/// sharing the console do not interleave mid-line. A failed write (console gone) is
/// dropped: there is nowhere else to report it.
pub fn line(msg: &str) {
    let text = format!("init: {msg}\n");
    let _ = std::io::stderr().write_all(text.as_bytes());
}

macro_rules! log {
    ($($arg:tt)*) => { $crate::log::line(&format!($($arg)*)) };
}
pub(crate) use log;
