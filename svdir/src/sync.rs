//! The sync control, `DIR/.svdir/`, through which `sv sync` asks for a rescan and waits
//! until it has been applied:
//!
//! - `lock`: a FIFO write-locked (a POSIX record lock, which children do not inherit)
//!   by svdir for its whole life: a second svdir on the same directory finds it taken
//!   and refuses to run. Being a FIFO, it never keeps the filesystem from being
//!   remounted read-only at shutdown;
//! - `control`: a FIFO (0600) that svdir holds open read-write; every byte `s` written
//!   to it is a sync request;
//! - `synced`: after reading every available byte, svdir rescans, applies the result
//!   (runsv spawned, runsv told to exit), then replaces `synced` atomically with the
//!   total number of `s` bytes processed so far and a newline. The count goes on from
//!   the value found at start-up, so it never goes back when svdir is restarted.

use runsv::supervise::write_atomically;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

pub use runsv::control::SYNC_DIRECTORY as DIRECTORY;

pub struct SyncControl {
    dir: PathBuf,
    _lock: File,
    fifo: File,
    count: u64,
}

#[derive(Debug)]
pub enum SetupError {
    /// Another svdir holds the lock.
    Busy,
    /// The directory or its files cannot be made (read-only, permissions): why.
    Unavailable(String),
}

impl SyncControl {
    /// Creates (or reuses) `.svdir` in the resolved scan directory and takes its lock.
    pub fn open(scan_dir: &Path) -> Result<SyncControl, SetupError> {
        let mut dir = runsv::state_dir::locate_entry(scan_dir, DIRECTORY);
        let unavailable = |what: &str, path: &Path, error: &io::Error| -> SetupError {
            SetupError::Unavailable(format!(
                "unable to {what} {}: {}",
                path.display(),
                crate::describe(error)
            ))
        };
        let mut created = fs::DirBuilder::new().mode(0o700).create(&dir);
        // A read-only scan directory (a container's read-only root): in the state root.
        if let Err(error) = &created {
            if dir == scan_dir.join(DIRECTORY) && runsv::state_dir::cannot_write_here(error) {
                if let Some(fallback) = runsv::state_dir::fallback_entry(scan_dir, DIRECTORY) {
                    created = runsv::state_dir::create(&fallback);
                    dir = fallback;
                }
            }
        }
        match created {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
                // Only a real directory: never follow a symlink planted in its place.
                match fs::symlink_metadata(&dir) {
                    Ok(m) if m.is_dir() => {}
                    Ok(_) => {
                        return Err(SetupError::Unavailable(format!(
                            "{} exists and is not a directory",
                            dir.display()
                        )))
                    }
                    Err(error) => return Err(unavailable("stat", &dir, &error)),
                }
            }
            Err(error) => return Err(unavailable("create", &dir, &error)),
        }
        let lock_path = dir.join("lock");
        let lock = take_lock(&dir, &lock_path).map_err(|error| {
            if matches!(
                error.raw_os_error(),
                Some(nix::libc::EAGAIN | nix::libc::EACCES)
            ) {
                SetupError::Busy
            } else {
                unavailable("lock", &lock_path, &error)
            }
        })?;
        let fifo_path = dir.join("control");
        match fs::symlink_metadata(&fifo_path) {
            Ok(m) if m.file_type().is_fifo() => {}
            Ok(_) => {
                // Something else took the name: a FIFO must be there.
                fs::remove_file(&fifo_path).map_err(|e| unavailable("remove", &fifo_path, &e))?;
                runsv::control::make_fifo(&fifo_path)
                    .map_err(|e| unavailable("create", &fifo_path, &e))?;
            }
            Err(_) => runsv::control::make_fifo(&fifo_path)
                .map_err(|e| unavailable("create", &fifo_path, &e))?,
        }
        let fifo = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOFOLLOW)
            .open(&fifo_path)
            .map_err(|e| unavailable("open", &fifo_path, &e))?;
        let count = runsv::control::synced_count(scan_dir);
        let mut control = SyncControl {
            dir,
            _lock: lock,
            fifo,
            count,
        };
        // Drain what a crashed predecessor left unread, and answer it.
        let pending = control.read_requests();
        control
            .acknowledge(pending)
            .map_err(|e| unavailable("write", &control.dir.join("synced"), &e))?;
        Ok(control)
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fifo.as_fd()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Reads every byte waiting in the FIFO; the number of sync requests (`s`) among them.
    pub fn read_requests(&mut self) -> u64 {
        let mut requests = 0;
        let mut buffer = [0u8; 512];
        loop {
            match self.fifo.read(&mut buffer) {
                Ok(0) => return requests,
                Ok(n) => {
                    requests += buffer
                        .get(..n)
                        .unwrap_or_default()
                        .iter()
                        .filter(|&&b| b == runsv::control::SYNC_REQUEST)
                        .count() as u64
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return requests,
            }
        }
    }

    /// Counts `requests` more as done and publishes the total in `synced`.
    pub fn acknowledge(&mut self, requests: u64) -> io::Result<()> {
        self.count += requests;
        write_atomically(
            &self.dir.join("synced"),
            format!("{}\n", self.count).as_bytes(),
            0o644,
        )
    }
}

/// Opens `lock` (a FIFO, made if missing) and takes its record lock. A FIFO because a
/// write lock needs a descriptor open for writing, and one on a regular file would
/// keep the filesystem of the scan directory (`/` on most machines) from being
/// remounted read-only at shutdown (EBUSY); a FIFO's writers do not count. A regular
/// `lock` left by an older svdir is locked first, then replaced by the FIFO while
/// held, so that two svdirs starting across the change cannot both win.
fn take_lock(dir: &Path, lock_path: &Path) -> io::Result<File> {
    let open = |path: &Path| {
        OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC)
            .open(path)
    };
    match fs::symlink_metadata(lock_path) {
        Ok(m) if m.file_type().is_fifo() => {}
        Ok(m) if m.is_file() => {
            let old = open(lock_path)?;
            lock_for_this_process(&old)?;
            let fresh = dir.join("lock.new");
            let _ = fs::remove_file(&fresh);
            runsv::control::make_fifo(&fresh)?;
            fs::rename(&fresh, lock_path)?;
            // Held until the FIFO is locked: whoever opened the old file meanwhile
            // finds it taken.
            let lock = open(lock_path)?;
            lock_for_this_process(&lock)?;
            drop(old);
            return Ok(lock);
        }
        Ok(_) => {
            return Err(io::Error::other(
                "exists and is neither a FIFO nor a regular file",
            ))
        }
        Err(_) => runsv::control::make_fifo(lock_path)?,
    }
    let lock = open(lock_path)?;
    lock_for_this_process(&lock)?;
    Ok(lock)
}

/// A POSIX record lock (`fcntl(F_SETLK)`) on the whole file, not a flock: a flock
/// belongs to the open file description, which every child forked to become a runsv
/// shares until its exec closes the descriptor, so an svdir killed while a child was
/// between fork and exec left the directory locked and a restarted svdir exited 111
/// (51 of 100 restarts while spawning 60 runsv). A record lock belongs to the process:
/// fork does not pass it on, and the kernel drops it as svdir dies. Its one trap —
/// closing any descriptor of the file drops it — is why nothing else in svdir opens
/// `lock`.
fn lock_for_this_process(file: &File) -> io::Result<()> {
    // SAFETY: an all-zero flock struct is valid; the fields that matter are set below.
    let mut whole: nix::libc::flock = unsafe { std::mem::zeroed() };
    whole.l_type = nix::libc::F_WRLCK as _;
    whole.l_whence = nix::libc::SEEK_SET as _;
    whole.l_start = 0;
    whole.l_len = 0;
    // SAFETY: fcntl on an fd we own, with a struct that lives through the call.
    if unsafe { nix::libc::fcntl(file.as_raw_fd(), nix::libc::F_SETLK, &whole) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn requests_are_counted_and_published() {
        let root = tempfile::tempdir().unwrap();
        let mut control = SyncControl::open(root.path()).unwrap();
        let synced = root.path().join(".svdir/synced");
        assert_eq!(fs::read_to_string(&synced).unwrap(), "0\n");
        let mut writer = OpenOptions::new()
            .write(true)
            .custom_flags(nix::libc::O_NONBLOCK)
            .open(root.path().join(".svdir/control"))
            .unwrap();
        writer.write_all(b"ssxs").unwrap();
        assert_eq!(control.read_requests(), 3);
        assert_eq!(control.read_requests(), 0);
        control.acknowledge(3).unwrap();
        assert_eq!(fs::read_to_string(&synced).unwrap(), "3\n");
        // A record lock is the process's own, so a second svdir (refused with Busy) can
        // only be another process: tests/svdir.rs, a_second_svdir_…_exits_111.
        drop(control);
        // The next one goes on counting from what it finds.
        let control = SyncControl::open(root.path()).unwrap();
        assert_eq!(control.count, 3);
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &str| {
            fs::metadata(root.path().join(p))
                .unwrap()
                .permissions()
                .mode()
                & 0o7777
        };
        assert_eq!(mode(".svdir"), 0o700);
        assert_eq!(mode(".svdir/control"), 0o600);
        assert_eq!(mode(".svdir/synced"), 0o644);
        assert!(fs::symlink_metadata(root.path().join(".svdir/lock"))
            .unwrap()
            .file_type()
            .is_fifo());
    }

    #[test]
    fn an_old_regular_lock_file_becomes_a_fifo_and_still_excludes() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir(root.path().join(DIRECTORY)).unwrap();
        let lock = root.path().join(".svdir/lock");
        fs::write(&lock, "").unwrap();
        let control = SyncControl::open(root.path()).unwrap();
        assert!(fs::symlink_metadata(&lock).unwrap().file_type().is_fifo());
        // That a second svdir finds it taken: tests/svdir.rs.
        drop(control);
        assert!(SyncControl::open(root.path()).is_ok());
    }
}
