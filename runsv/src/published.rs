//! The scan directory of the running tree, published by svdir so that `sv` without
//! `SVDIR` finds it (Debian's scripts call `sv d NAME` with no SVDIR, and its sv's
//! default, /etc/service, is not upstream's /service). See docs/svdir.md.
//!
//! The file is `scandir` in `/run/runtree/` for root, in `$XDG_RUNTIME_DIR/runtree/`
//! for anyone else (nothing is published without one): the scan directory's absolute
//! path, as svdir was given it (runlevel links kept), and a newline. It counts only
//! while a svdir scans that directory: while its sync FIFO, `.svdir/control`, has a
//! reader. A file left by a svdir that was killed is therefore ignored, and replaced
//! by the next svdir.

use crate::reader::{self, Links};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

pub const FILE_NAME: &str = "scandir";
pub const SYSTEM_DIR: &str = "/run/runtree";
/// A path longer than PATH_MAX is no scan directory.
const LIMIT: u64 = 4096;

/// Where this user's svdir publishes: /run/runtree for root, else
/// `$XDG_RUNTIME_DIR/runtree` (absolute only), else nowhere.
pub fn own_dir() -> Option<PathBuf> {
    if nix::unistd::geteuid().is_root() {
        return Some(PathBuf::from(SYSTEM_DIR));
    }
    std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join("runtree"))
}

/// The files `sv` reads, in order: this user's own, then the system's (a user without
/// a tree of their own still reaches the machine's).
pub fn files() -> Vec<PathBuf> {
    let system = Path::new(SYSTEM_DIR).join(FILE_NAME);
    let mut files: Vec<PathBuf> = own_dir().map(|d| d.join(FILE_NAME)).into_iter().collect();
    if !files.contains(&system) {
        files.push(system);
    }
    files
}

/// Whether a svdir scans `scan_dir` now: its sync FIFO has a reader.
pub fn is_live(scan_dir: &Path) -> bool {
    let control =
        crate::state_dir::locate_entry(scan_dir, crate::control::SYNC_DIRECTORY).join("control");
    matches!(reader::supervisor_running_at(None, &control), Ok(true))
}

/// The scan directory named in `file`, if it is one (an absolute path on one line).
pub fn read(file: &Path) -> Option<PathBuf> {
    let bytes = reader::read(file, LIMIT, Links::Follow).ok()?;
    let line = bytes.strip_suffix(b"\n")?;
    if line.first() != Some(&b'/') || line.contains(&b'\n') || line.contains(&0) {
        return None;
    }
    Some(PathBuf::from(OsStr::from_bytes(line)))
}

/// The scan directory of a running svdir, from the first published file that names one.
pub fn running_scan_dir() -> Option<PathBuf> {
    files()
        .iter()
        .filter_map(|file| read(file))
        .find(|dir| is_live(dir))
}

/// The file's contents for `scan_dir`.
pub fn contents(scan_dir: &Path) -> Vec<u8> {
    let mut bytes = scan_dir.as_os_str().as_bytes().to_vec();
    bytes.push(b'\n');
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_absolute_path_on_one_line_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(FILE_NAME);
        let read_text = |text: &str| {
            std::fs::write(&file, text).unwrap();
            read(&file)
        };
        assert_eq!(read_text("/service\n"), Some(PathBuf::from("/service")));
        assert_eq!(read_text("/a b/c\n"), Some(PathBuf::from("/a b/c")));
        // No newline, a relative path, two lines, nothing.
        for text in ["/service", "service\n", "/a\n/b\n", "\n"] {
            assert_eq!(read_text(text), None, "{text:?}");
        }
        assert_eq!(
            read(&file.with_extension("none")),
            None,
            "a missing file names nothing"
        );
    }

    #[test]
    fn a_directory_without_a_svdir_is_not_live() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!is_live(dir.path()));
        std::fs::create_dir(dir.path().join(".svdir")).unwrap();
        nix::unistd::mkfifo(
            &dir.path().join(".svdir/control"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        assert!(!is_live(dir.path()), "a FIFO nobody reads");
    }
}
