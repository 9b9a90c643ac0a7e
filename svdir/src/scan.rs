//! One look at the scan directory: which service directories it holds, by identity.
//! Each entry is a directory or a symlink to one, identified by the (st_dev, st_ino) of
//! its target (runit's rule): renaming an entry changes nothing, and two entries for
//! the same directory are one service. Dot-entries are skipped silently, anything else
//! that is not a directory is skipped with a reason.

use crate::chain::Id;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Every name leading to this directory, sorted.
    pub names: Vec<OsString>,
    /// Where the first symlink among the names points (made absolute), if it is one:
    /// a way back to the directory once the entry is removed.
    pub target: Option<PathBuf>,
}

#[derive(Debug, Default)]
pub struct Scan {
    pub entries: BTreeMap<Id, Entry>,
    /// Entries skipped, with why (`not a directory`, `file does not exist`, …).
    pub skipped: BTreeMap<OsString, String>,
}

/// Reads `dir` (the resolved scan directory).
pub fn scan(dir: &Path) -> io::Result<Scan> {
    let mut result = Scan::default();
    for entry in runsv::scan_dir::entries(dir)? {
        let metadata = match &entry.target {
            Ok(metadata) => metadata,
            Err(error) => {
                result.skipped.insert(entry.name, crate::describe(error));
                continue;
            }
        };
        if !metadata.is_dir() {
            result
                .skipped
                .insert(entry.name, "not a directory".to_string());
            continue;
        }
        let slot = result
            .entries
            .entry((metadata.dev(), metadata.ino()))
            .or_insert_with(|| Entry {
                names: Vec::new(),
                target: None,
            });
        slot.names.push(entry.name);
        if entry.is_link && slot.target.is_none() {
            slot.target = fs::read_link(&entry.path).ok().map(|t| dir.join(t));
        }
    }
    for entry in result.entries.values_mut() {
        entry.names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn directories_links_and_skipped_entries() {
        let (scan_root, elsewhere) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let scan_dir = scan_root.path();
        for dir in ["a", ".hidden"] {
            fs::create_dir(scan_dir.join(dir)).unwrap();
        }
        symlink(elsewhere.path(), scan_dir.join("b")).unwrap();
        symlink("a", scan_dir.join("alias")).unwrap();
        symlink("/nonexistent", scan_dir.join("dangling")).unwrap();
        fs::write(scan_dir.join("file"), "").unwrap();
        let result = scan(scan_dir).unwrap();
        assert_eq!(result.entries.len(), 2);
        let names: Vec<Vec<OsString>> = result.entries.values().map(|e| e.names.clone()).collect();
        assert!(names.contains(&vec![OsString::from("a"), OsString::from("alias")]));
        assert!(names.contains(&vec![OsString::from("b")]));
        let b = result
            .entries
            .values()
            .find(|e| e.names == [OsString::from("b")])
            .unwrap();
        assert_eq!(b.target.as_deref(), Some(elsewhere.path()));
        assert_eq!(
            result.skipped.keys().cloned().collect::<Vec<_>>(),
            ["dangling", "file"].map(OsString::from)
        );
        assert_eq!(result.skipped[&OsString::from("file")], "not a directory");
        assert_eq!(
            result.skipped[&OsString::from("dangling")],
            "file does not exist"
        );
        assert!(scan(&scan_dir.join("missing")).is_err());
    }
}
