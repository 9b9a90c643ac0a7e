//! The entries of a scan directory as runit reads them: every name but the
//! dot-entries, and a service is one that is a directory or a symlink to one. svdir
//! scans with it, `sv status` without names lists with it.

use std::ffi::OsString;
use std::fs::{self, Metadata};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// One entry of a scan directory.
#[derive(Debug)]
pub struct ScanEntry {
    pub name: OsString,
    pub path: PathBuf,
    /// The entry itself is a symlink.
    pub is_link: bool,
    /// What the entry leads to (a symlink followed), or why that is not known.
    pub target: io::Result<Metadata>,
}

impl ScanEntry {
    /// Whether the entry leads to a directory: a service.
    pub fn is_service(&self) -> bool {
        self.target.as_ref().is_ok_and(Metadata::is_dir)
    }
}

/// Every entry of `dir` but the dot-entries, in the directory's order. An error while
/// reading, even midway (the directory went away under us), is the result: what was
/// read so far is not the truth.
pub fn entries(dir: &Path) -> io::Result<Vec<ScanEntry>> {
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if name.as_bytes().starts_with(b".") {
            continue;
        }
        let path = entry.path();
        entries.push(ScanEntry {
            name,
            is_link: entry.file_type().is_ok_and(|t| t.is_symlink()),
            target: fs::metadata(&path),
            path,
        });
    }
    Ok(entries)
}
