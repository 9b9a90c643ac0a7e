//! Where a service directory is reached: its path, or — for a runsv svdir adopted, once
//! the entry may be gone — a directory fd kept since the adoption, used with openat.

use runsv::control::{send_control_at, Control, ControlError};
use runsv::reader::{self, Cause, FileError, Links};
use runsv::state_dir;
use runsv::supervise::FullState;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;

pub enum Place {
    Dir(OwnedFd),
    Path(PathBuf),
}

impl Place {
    /// Where relative paths are looked up: the directory fd, or the working directory
    /// for a path (which is then joined to it).
    fn base(&self) -> (reader::Base<'_>, PathBuf) {
        match self {
            Place::Dir(dir) => (Some(dir.as_fd()), PathBuf::new()),
            Place::Path(path) => (None, path.clone()),
        }
    }

    /// runit's probe, proving a live runsv (see `reader::supervisor_running_at`): no
    /// `ok`, or anything there but a FIFO, is no runsv.
    pub fn runsv_running(&self) -> io::Result<bool> {
        let (base, path) = self.base();
        let supervise = state_dir::locate_at(base, &path);
        match reader::supervisor_running_at(base, &supervise.join("ok")) {
            Ok(running) => Ok(running),
            Err(error) if error.is_missing() => Ok(false),
            Err(FileError {
                cause: Cause::Kind { .. },
                ..
            }) => Ok(false),
            Err(error) => Err(error.into()),
        }
    }

    /// Writes `x` to `supervise/control`: the runsv stops the service, then exits.
    pub fn send_exit(&self) -> Result<(), ControlError> {
        let (base, path) = self.base();
        send_control_at(base, &state_dir::locate_at(base, &path), &[Control::Exit])
    }

    /// The full state of the service (`""`) or of its logger (`"log/"`).
    /// Bounded, and never waiting on whatever is there instead of a file.
    pub fn state(&self, subdirectory: &str) -> Option<FullState> {
        let (base, path) = self.base();
        let service = path.join(subdirectory.trim_end_matches('/'));
        let relative = state_dir::locate_at(base, &service).join("state");
        let bytes =
            reader::read_at(base, &relative, reader::MAX_SUPERVISE_FILE, Links::Refuse).ok()?;
        FullState::decode(std::str::from_utf8(&bytes).ok()?)
    }

    /// A path to the directory, for what takes only paths (loading the definition).
    pub fn path(&self) -> PathBuf {
        match self {
            Place::Dir(dir) => PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd())),
            Place::Path(path) => path.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::fcntl::OFlag;
    use nix::sys::stat::Mode;
    use runsv::control::{make_fifo, open_fifo};
    use runsv::supervise::SuperviseDir;
    use std::os::fd::FromRawFd;

    #[test]
    fn a_directory_fd_reaches_the_files_after_the_entry_is_gone() {
        let root = tempfile::tempdir().unwrap();
        let service = root.path().join("a");
        let supervise = SuperviseDir::of_service(&service);
        std::fs::create_dir_all(&supervise.path).unwrap();
        for fifo in [supervise.ok(), supervise.control()] {
            make_fifo(&fifo).unwrap();
        }
        let fd =
            nix::fcntl::open(&service, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty()).unwrap();
        // SAFETY: a fresh fd we own.
        let place = Place::Dir(unsafe { OwnedFd::from_raw_fd(fd) });
        std::fs::rename(&service, root.path().join("moved")).unwrap();
        assert!(!place.runsv_running().unwrap());
        assert!(place.send_exit().is_err(), "nobody reads control");
        let moved = SuperviseDir::of_service(&root.path().join("moved"));
        let reader = open_fifo(&moved.control(), false).unwrap();
        place.send_exit().unwrap();
        drop(reader);
        let _ok = open_fifo(&moved.ok(), false).unwrap();
        assert!(place.runsv_running().unwrap());
        assert!(place.state("").is_none());
        let missing = Place::Path(root.path().join("missing"));
        assert!(!missing.runsv_running().unwrap());
    }

    #[test]
    fn a_regular_file_at_ok_is_no_runsv() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("supervise")).unwrap();
        std::fs::write(root.path().join("supervise/ok"), b"").unwrap();
        let place = Place::Path(root.path().to_path_buf());
        assert!(!place.runsv_running().unwrap());
    }
}
