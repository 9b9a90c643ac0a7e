//! Waiting for something on disk: inotify on the directories where it shows, with a
//! short poll as the safety net for what inotify cannot see.

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Waits until `condition` holds (true) or `timeout` passes (false). The condition is
/// checked again at every inotify event in `dirs` (each watched from the moment it
/// exists, so a directory created later is caught: the watch is set before the check),
/// and every `interval` in any case. `mask` must not include events the condition
/// itself causes in those directories (IN_OPEN when it reads a file there).
pub fn wait_until(
    dirs: &[PathBuf],
    mask: AddWatchFlags,
    timeout: Duration,
    interval: Duration,
    condition: impl FnMut() -> bool,
) -> bool {
    seen_at(dirs, mask, timeout, interval, condition).is_some()
}

/// As `wait_until`, but when the condition held: the moment it was first seen true.
/// A time measured to that moment leaves out the wait's own end: closing an inotify
/// instance that held a watch waits for an SRCU grace period in the kernel, 5–20 ms on
/// this machine, which a measurement taken after the wait would include.
pub fn seen_at(
    dirs: &[PathBuf],
    mask: AddWatchFlags,
    timeout: Duration,
    interval: Duration,
    mut condition: impl FnMut() -> bool,
) -> Option<Instant> {
    let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK).ok();
    let mut watched = vec![false; dirs.len()];
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(inotify) = &inotify {
            for (dir, done) in dirs.iter().zip(watched.iter_mut()) {
                if !*done {
                    *done = inotify.add_watch(dir, mask).is_ok();
                }
            }
        }
        if condition() {
            return Some(Instant::now());
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        let wait = (deadline - now).min(interval);
        match &inotify {
            Some(inotify) => {
                let mut fds = [PollFd::new(inotify.as_fd(), PollFlags::POLLIN)];
                // Sub-millisecond intervals are rounded up by poll's millisecond timeout.
                let millis = u16::try_from(wait.as_millis().max(1)).unwrap_or(u16::MAX);
                let _ = poll(&mut fds, PollTimeout::from(millis));
                let _ = inotify.read_events();
            }
            None => std::thread::sleep(wait),
        }
    }
}

/// The files of supervise/ being rewritten (status.new written and renamed), or the
/// directory appearing; not IN_OPEN, which reading the status file would cause.
pub fn rewrite_events() -> AddWatchFlags {
    AddWatchFlags::IN_CREATE
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_CLOSE_WRITE
        | AddWatchFlags::IN_ATTRIB
        | AddWatchFlags::IN_MODIFY
}
