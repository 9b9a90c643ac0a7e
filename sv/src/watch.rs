//! What wakes a wait: directory notification (dnotify) on each waited-for service's
//! `supervise/` directory, and the `ok` FIFO held open for writing.
//!
//! Why not inotify: closing an inotify instance that holds a watch makes the kernel wait
//! for an SRCU grace period (fsnotify_destroy_group), 5–20 ms on the machines measured,
//! and a process cannot exit before its descriptors are closed. Every `sv -w` would pay
//! that after its answer was known. dnotify marks belong to the kernel's single dnotify
//! group, so closing one costs microseconds.
//!
//! - runsv replaces its files by rename: the new `status` or `state` arrives as a
//!   DN_CREATE (IN_MOVED_TO underneath) on the directory, delivered as a queued
//!   real-time signal that names the directory's fd, read here through a signalfd. A
//!   queue overflow falls back to SIGIO, which means "anything may have changed".
//! - Where runsv cannot make a new file (a full disk) it rewrites one in place and
//!   touches its times: a DN_ATTRIB. (Not DN_MODIFY: every line of a service's output
//!   modifies `tail`.)
//! - A supervisor that exits closes the reading end of its `ok` FIFO; the writing end
//!   sv holds then polls POLLERR. That covers both runsv dying during a wait and the
//!   end of an `exit` wait.
//!
//! The signals are blocked in the calling thread and directed to it alone
//! (F_SETOWN_EX), so they cannot reach another thread (a test harness's) and kill it.

use nix::libc;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use nix::sys::signalfd::SignalFd;
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

// From <linux/fcntl.h>; the libc crate does not export them for glibc targets.
const F_SETSIG: libc::c_int = 10;
const F_SETOWN_EX: libc::c_int = 15;
const F_OWNER_TID: libc::c_int = 0;
const DN_CREATE: libc::c_int = 0x4;
const DN_ATTRIB: libc::c_int = 0x20;
const SIGINFO_SIZE: usize = std::mem::size_of::<libc::signalfd_siginfo>();
const DN_MULTISHOT: libc::c_int = 0x8000_0000_u32 as libc::c_int;

#[repr(C)]
struct OwnerEx {
    kind: libc::c_int,
    pid: libc::pid_t,
}

pub struct Watcher {
    /// `None` when signals cannot be set up: every service then falls back to timers.
    signals: Option<SignalFd>,
    signal: libc::c_int,
    directories: Vec<Watched>,
}

/// One watched `supervise/` directory and the services waiting on it.
struct Watched {
    identity: (u64, u64),
    directory: OwnedFd,
    /// The writing end of `ok` while its supervisor runs.
    ok: Option<OwnedFd>,
    owners: Vec<usize>,
}

/// Which services saw a relevant change.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    pub changed: Vec<usize>,
    /// Their supervisor went away: watch again (a new one may have taken over).
    pub lost: Vec<usize>,
    /// The signal queue overflowed: anything may have changed.
    pub all: bool,
}

impl Watcher {
    /// Every wait sees supervisor exits: the `ok` FIFO reports them all.
    pub fn new() -> Watcher {
        let signal = libc::SIGRTMIN();
        let signals = Signal::try_from(libc::SIGIO).ok().and_then(|sigio| {
            let mut mask = runsv::signals::mask_of(&[sigio]);
            // SAFETY: sigaddset on a valid set; SIGRTMIN is a valid signal number that
            // nix's Signal enum cannot name.
            unsafe {
                libc::sigaddset(std::ptr::addr_of_mut!(mask).cast(), signal);
            }
            runsv::signals::receive(&mask).ok()
        });
        Watcher {
            signals,
            signal,
            directories: Vec::new(),
        }
    }

    /// Watches the `supervise/` directory of service `owner`; false when it cannot be
    /// (no such directory, no signals).
    pub fn watch(&mut self, owner: usize, supervise: &Path) -> bool {
        self.watch_directory(owner, supervise, "ok")
    }

    /// Watches `directory` for `owner`, and the life of whoever reads the FIFO `reader`
    /// in it (runsv's `ok`, svdir's `.svdir/control`).
    pub fn watch_directory(&mut self, owner: usize, directory: &Path, reader: &str) -> bool {
        let supervise = directory;
        if self.signals.is_none() {
            return false;
        }
        let Ok(path) = CString::new(supervise.as_os_str().as_bytes()) else {
            return false;
        };
        let Ok(stat) = nix::sys::stat::stat(path.as_c_str()) else {
            return false;
        };
        let identity = (stat.st_dev, stat.st_ino);
        let index = match self.directories.iter().position(|w| w.identity == identity) {
            Some(index) => index,
            None => {
                let Some(directory) = self.notify(&path) else {
                    return false;
                };
                self.directories.push(Watched {
                    identity,
                    directory,
                    ok: None,
                    owners: Vec::new(),
                });
                self.directories.len() - 1
            }
        };
        let watched = &mut self.directories[index];
        if !watched.owners.contains(&owner) {
            watched.owners.push(owner);
        }
        if watched.ok.is_none() {
            // ENXIO: no supervisor now; its status says so, and a new one is seen by
            // the files it writes.
            // Only a FIFO: a device there is never opened, a file never held.
            let path = supervise.join(reader);
            watched.ok = runsv::reader::hold_ok_at(None, &path).ok().flatten();
        }
        true
    }

    /// Opens `directory` and asks for a signal on every name created in it (renamed
    /// into it too), directed at this thread and naming the fd.
    fn notify(&self, directory: &CString) -> Option<OwnedFd> {
        // SAFETY: open(2) of a NUL-terminated path; the fd is owned at once.
        let fd = unsafe {
            libc::open(
                directory.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return None;
        }
        // SAFETY: fd was just opened and is owned by nobody else.
        let directory = unsafe { OwnedFd::from_raw_fd(fd) };
        let owner = OwnerEx {
            kind: F_OWNER_TID,
            pid: nix::unistd::gettid().as_raw(),
        };
        // SAFETY: fcntl(2) on an fd we own, with an argument of the documented type.
        let ok = unsafe {
            libc::fcntl(fd, F_SETSIG, self.signal) == 0
                && libc::fcntl(fd, libc::F_NOTIFY, DN_CREATE | DN_ATTRIB | DN_MULTISHOT) == 0
                && libc::fcntl(fd, F_SETOWN_EX, std::ptr::addr_of!(owner)) == 0
        };
        ok.then_some(directory)
    }

    /// Waits until an event arrives or `timeout` passes (`None`: no limit), and reports
    /// the relevant changes (possibly none: a timeout, an event on another name).
    pub fn wait(&mut self, timeout: Option<Duration>) -> Changes {
        let Some(signals) = &self.signals else {
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
        let supervisors: Vec<usize> = (0..self.directories.len())
            .filter(|&i| self.directories[i].ok.is_some())
            .collect();
        let mut fds = vec![PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
        for &i in &supervisors {
            if let Some(ok) = &self.directories[i].ok {
                // No events asked for: POLLERR (no reader left) is always reported.
                fds.push(PollFd::new(ok.as_fd(), PollFlags::empty()));
            }
        }
        match poll(&mut fds, millis) {
            Ok(n) if n > 0 => {}
            _ => return Changes::default(),
        }
        let gone: Vec<usize> = supervisors
            .iter()
            .zip(&fds[1..])
            .filter(|(_, fd)| fd.revents().is_some_and(|r| !r.is_empty()))
            .map(|(&i, _)| i)
            .collect();
        drop(fds);
        let mut changes = Changes::default();
        let mut fired: Vec<RawFd> = Vec::new();
        // One write_files of runsv raises a signal per name created: read them in
        // batches, not one read(2) each.
        let mut batch = [0u8; 32 * SIGINFO_SIZE];
        loop {
            // SAFETY: read(2) into a buffer we own, of its length.
            let n =
                unsafe { libc::read(signals.as_raw_fd(), batch.as_mut_ptr().cast(), batch.len()) };
            if n <= 0 {
                break;
            }
            for info in batch[..n as usize].chunks_exact(SIGINFO_SIZE) {
                // SAFETY: the kernel wrote whole signalfd_siginfo structs; the chunk is
                // exactly one, read unaligned from the byte buffer.
                let info: libc::signalfd_siginfo =
                    unsafe { std::ptr::read_unaligned(info.as_ptr().cast()) };
                if info.ssi_signo as libc::c_int == self.signal {
                    fired.push(info.ssi_fd);
                } else {
                    changes.all = true;
                }
            }
            if (n as usize) < batch.len() {
                break;
            }
        }
        for watched in &self.directories {
            if fired.contains(&watched.directory.as_raw_fd()) {
                add_all(&mut changes.changed, &watched.owners);
            }
        }
        for i in gone {
            let watched = &mut self.directories[i];
            watched.ok = None;
            add_all(&mut changes.changed, &watched.owners);
            add_all(&mut changes.lost, &watched.owners);
        }
        changes
    }
}

fn add_all(list: &mut Vec<usize>, owners: &[usize]) {
    for &owner in owners {
        if !list.contains(&owner) {
            list.push(owner);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// Collects changes for up to five seconds, until `done` says enough.
    fn collect(watcher: &mut Watcher, done: impl Fn(&Changes) -> bool) -> Changes {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut all = Changes::default();
        while Instant::now() < deadline && !done(&all) {
            let changes = watcher.wait(Some(Duration::from_millis(500)));
            add_all(&mut all.changed, &changes.changed);
            add_all(&mut all.lost, &changes.lost);
            all.all |= changes.all;
        }
        all
    }

    #[test]
    fn a_rename_into_the_directory_wakes_its_owners() {
        let dir = tempfile::tempdir().unwrap();
        let mut watcher = Watcher::new();
        assert!(watcher.watch(3, dir.path()));
        assert!(watcher.watch(5, dir.path()), "same directory, second owner");
        assert_eq!(watcher.directories.len(), 1, "one watch per directory");
        std::fs::write(dir.path().join("status.new"), b"x").unwrap();
        std::fs::rename(dir.path().join("status.new"), dir.path().join("status")).unwrap();
        let mut changes = collect(&mut watcher, |c| !c.changed.is_empty());
        changes.changed.sort();
        assert_eq!(changes.changed, [3, 5]);
        assert!(!watcher.watch(1, &dir.path().join("missing")));
    }

    #[test]
    fn only_the_watched_directory_wakes_its_owner() {
        let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let mut watcher = Watcher::new();
        assert!(watcher.watch(1, one.path()));
        assert!(watcher.watch(2, two.path()));
        std::fs::write(two.path().join("state"), b"x").unwrap();
        let changes = collect(&mut watcher, |c| !c.changed.is_empty());
        assert_eq!(changes.changed, [2]);
    }

    #[test]
    fn the_reader_of_ok_closing_is_a_lost_supervisor() {
        let dir = tempfile::tempdir().unwrap();
        let ok = dir.path().join("ok");
        let reader = runsv::control::open_fifo(&ok, false).unwrap();
        let mut watcher = Watcher::new();
        assert!(watcher.watch(7, dir.path()));
        assert!(watcher.directories[0].ok.is_some(), "ok opened for writing");
        drop(reader);
        let changes = collect(&mut watcher, |c| !c.lost.is_empty());
        assert_eq!(changes.lost, [7]);
        assert_eq!(changes.changed, [7]);
    }
}
