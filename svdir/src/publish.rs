//! Publishing the scan directory for `sv` without `SVDIR` (runsv::published has the
//! format). Called once svdir holds its scan directory's sync lock, so that a second
//! svdir refused on the same directory never replaces or removes the file. The first
//! live svdir keeps the file: another one (a test's, a user's by hand) started later
//! does not take it over; it takes over a file whose svdir is gone.

use runsv::published;
use runsv::replace::write_atomically;
use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The file this svdir wrote, and what it wrote there: withdrawn at exit if unchanged.
static PUBLISHED: Mutex<Option<(PathBuf, Vec<u8>)>> = Mutex::new(None);

/// Publishes `scan_dir` unless a live svdir already has. Failures are told, once, and
/// cost nothing else: sv then falls back to /service and /etc/service.
pub fn publish(scan_dir: &Path) {
    let Some(dir) = published::own_dir() else {
        return;
    };
    // /run/runtree is the machine's (or container's): root publishes there only for the
    // tree its init started (svdir is PID 1, or PID 1's child), never for one started
    // by hand or by a test beside it.
    let parent = nix::unistd::getppid().as_raw();
    if nix::unistd::geteuid().is_root() && parent > 1 {
        return;
    }
    let file = dir.join(published::FILE_NAME);
    if let Some(other) = published::read(&file) {
        if other != scan_dir && published::is_live(&other) {
            return;
        }
    }
    let contents = published::contents(scan_dir);
    let written = fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(&dir)
        .and_then(|()| write_atomically(&file, &contents, 0o644));
    match written {
        Ok(()) => {
            if let Ok(mut published) = PUBLISHED.lock() {
                *published = Some((file, contents));
            }
        }
        Err(error) => say!(
            "warning: unable to publish the scan directory in {} (sv needs SVDIR): {}",
            file.display(),
            crate::describe(&error)
        ),
    }
}

/// Removes the published file if it still names this svdir's directory.
pub fn withdraw() {
    let Ok(mut published) = PUBLISHED.lock() else {
        return;
    };
    if let Some((file, contents)) = published.take() {
        if fs::read(&file).is_ok_and(|found| found == contents) {
            let _ = fs::remove_file(&file);
        }
    }
}
