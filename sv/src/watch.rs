//! What wakes a wait: inotify on each waited-for service's `supervise/` directory.
//!
//! runsv replaces its files by rename, so a new `status` or `state` arrives as
//! IN_MOVED_TO (IN_CREATE or IN_CLOSE_WRITE for a writer that does not rename). A
//! supervisor that exits closes its `lock` (IN_CLOSE_WRITE) and, for `exit` waits,
//! the reading end of the `ok` FIFO (IN_CLOSE_NOWRITE, only asked for then: sv's own
//! reads of `status` raise it too). Events on other names (`stat`, `pid`, `*.new`,
//! `control`, sv's own probes of `ok`) wake the poll but are not reported.

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, InotifyEvent, WatchDescriptor};
use std::collections::HashMap;
use std::os::fd::AsFd;
use std::path::Path;
use std::time::Duration;

pub struct Watcher {
    /// `None` when inotify is unavailable: every service then falls back to timers.
    inotify: Option<Inotify>,
    mask: AddWatchFlags,
    owners: HashMap<WatchDescriptor, Vec<usize>>,
}

/// Which services saw a relevant change.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    pub changed: Vec<usize>,
    /// Their watch is gone (the directory was removed or moved).
    pub lost: Vec<usize>,
    /// The event queue overflowed: anything may have changed.
    pub all: bool,
}

impl Watcher {
    pub fn new(exit_events: bool) -> Watcher {
        let mut mask = AddWatchFlags::IN_MOVED_TO
            | AddWatchFlags::IN_CREATE
            | AddWatchFlags::IN_CLOSE_WRITE
            | AddWatchFlags::IN_DELETE
            | AddWatchFlags::IN_DELETE_SELF
            | AddWatchFlags::IN_MOVE_SELF
            | AddWatchFlags::IN_ONLYDIR;
        if exit_events {
            mask |= AddWatchFlags::IN_CLOSE_NOWRITE;
        }
        Watcher {
            inotify: Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK).ok(),
            mask,
            owners: HashMap::new(),
        }
    }

    /// Watches the `supervise/` directory of service `owner`; false when it cannot be
    /// (no inotify, no such directory, the watch limit reached).
    pub fn watch(&mut self, owner: usize, supervise: &Path) -> bool {
        let Some(inotify) = &self.inotify else {
            return false;
        };
        match inotify.add_watch(supervise, self.mask) {
            Ok(wd) => {
                let owners = self.owners.entry(wd).or_default();
                if !owners.contains(&owner) {
                    owners.push(owner);
                }
                true
            }
            Err(_) => false,
        }
    }

    /// Waits until an event arrives or `timeout` passes (`None`: no limit), and reports
    /// the relevant changes (possibly none: a timeout, a signal, an irrelevant event).
    pub fn wait(&mut self, timeout: Option<Duration>) -> Changes {
        let Some(inotify) = &self.inotify else {
            if let Some(timeout) = timeout {
                std::thread::sleep(timeout);
            }
            return Changes::default();
        };
        let millis = timeout.map_or(PollTimeout::NONE, |t| {
            // Rounded up, so that a wait never returns just before its deadline and
            // spins on a zero timeout.
            let ms = t.as_nanos().div_ceil(1_000_000);
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
        });
        let mut fds = [PollFd::new(inotify.as_fd(), PollFlags::POLLIN)];
        if !matches!(poll(&mut fds, millis), Ok(n) if n > 0) {
            return Changes::default();
        }
        let events = inotify.read_events().unwrap_or_default();
        self.sort(events)
    }

    fn sort(&mut self, events: Vec<InotifyEvent>) -> Changes {
        let mut changes = Changes::default();
        for event in events {
            if event.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
                changes.all = true;
                continue;
            }
            let gone = event.mask.intersects(
                AddWatchFlags::IN_IGNORED
                    | AddWatchFlags::IN_DELETE_SELF
                    | AddWatchFlags::IN_MOVE_SELF,
            );
            let name = event.name.as_ref().and_then(|n| n.to_str()).unwrap_or("");
            if !gone && !relevant(event.mask, name) {
                continue;
            }
            let owners = if event.mask.contains(AddWatchFlags::IN_IGNORED) {
                self.owners.remove(&event.wd).unwrap_or_default()
            } else {
                self.owners.get(&event.wd).cloned().unwrap_or_default()
            };
            for owner in owners {
                let list = if gone {
                    &mut changes.lost
                } else {
                    &mut changes.changed
                };
                if !list.contains(&owner) {
                    list.push(owner);
                }
            }
        }
        changes
    }
}

fn relevant(mask: AddWatchFlags, name: &str) -> bool {
    match name {
        "status" | "state" => mask.intersects(
            AddWatchFlags::IN_MOVED_TO
                | AddWatchFlags::IN_CREATE
                | AddWatchFlags::IN_CLOSE_WRITE
                | AddWatchFlags::IN_DELETE,
        ),
        "ok" => mask.intersects(AddWatchFlags::IN_CLOSE_NOWRITE | AddWatchFlags::IN_DELETE),
        "lock" => mask.contains(AddWatchFlags::IN_CLOSE_WRITE),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_files_that_carry_state() {
        let moved = AddWatchFlags::IN_MOVED_TO;
        assert!(relevant(moved, "status"));
        assert!(relevant(moved, "state"));
        assert!(!relevant(moved, "stat"));
        assert!(!relevant(moved, "pid"));
        assert!(!relevant(AddWatchFlags::IN_CLOSE_WRITE, "status.new"));
        // sv's own probe opens `ok` for writing; only the reader's close matters.
        assert!(!relevant(AddWatchFlags::IN_CLOSE_WRITE, "ok"));
        assert!(relevant(AddWatchFlags::IN_CLOSE_NOWRITE, "ok"));
        assert!(!relevant(AddWatchFlags::IN_CLOSE_NOWRITE, "status"));
        assert!(relevant(AddWatchFlags::IN_CLOSE_WRITE, "lock"));
        assert!(!relevant(AddWatchFlags::IN_CLOSE_WRITE, "control"));
    }

    #[test]
    fn a_rename_into_the_directory_wakes_its_owners() {
        let dir = tempfile::tempdir().unwrap();
        let mut watcher = Watcher::new(false);
        assert!(watcher.watch(3, dir.path()));
        assert!(watcher.watch(5, dir.path()), "same directory, second owner");
        std::fs::write(dir.path().join("status.new"), b"x").unwrap();
        std::fs::rename(dir.path().join("status.new"), dir.path().join("status")).unwrap();
        let mut changed = Vec::new();
        for _ in 0..10 {
            let changes = watcher.wait(Some(Duration::from_secs(5)));
            changed.extend(changes.changed);
            if !changed.is_empty() {
                break;
            }
        }
        changed.sort();
        assert_eq!(changed, [3, 5]);
        assert!(!watcher.watch(1, &dir.path().join("missing")));
    }

    #[test]
    fn removal_is_reported_as_lost() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("supervise");
        std::fs::create_dir(&sub).unwrap();
        let mut watcher = Watcher::new(false);
        assert!(watcher.watch(0, &sub));
        std::fs::remove_dir(&sub).unwrap();
        let mut lost = Vec::new();
        for _ in 0..10 {
            lost.extend(watcher.wait(Some(Duration::from_secs(5))).lost);
            if !lost.is_empty() {
                break;
            }
        }
        assert_eq!(lost, [0]);
    }
}
