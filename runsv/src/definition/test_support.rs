//! Service directories and account files for the definition tests.

use super::SystemFiles;
use std::fs;
use std::path::{Path, PathBuf};

pub(super) struct Fixture {
    // Held so the directory lives as long as the test needs it.
    _root: tempfile::TempDir,
    pub service: PathBuf,
    pub system_files: SystemFiles,
}

pub(super) const PASSWD: &str = "\
root:x:0:0:root:/root:/bin/sh
www:x:33:33:www-data:/var/www:/usr/sbin/nologin
alice:x:1000:1000:Alice:/home/alice:/bin/sh
";

pub(super) const GROUP: &str = "\
root:x:0:
www:x:33:
adm:x:4:alice
alice:x:1000:
audio:x:29:bob,alice
";

/// A service directory `web` holding `files`: a name ending in `/` is a directory, any
/// other a file with that content.
pub(super) fn service(files: &[(&str, &str)]) -> Fixture {
    let root = tempfile::tempdir().unwrap();
    let service = root.path().join("web");
    fs::create_dir(&service).unwrap();
    for (name, content) in files {
        match name.strip_suffix('/') {
            Some(directory) => fs::create_dir_all(service.join(directory)).unwrap(),
            None => fs::write(service.join(name), content).unwrap(),
        }
    }
    let passwd = root.path().join("passwd");
    let environment = root.path().join("env");
    let group = root.path().join("group");
    fs::write(&passwd, PASSWD).unwrap();
    fs::write(&group, GROUP).unwrap();
    Fixture {
        _root: root,
        service,
        system_files: SystemFiles {
            passwd,
            group,
            environment,
        },
    }
}

impl Fixture {
    pub fn path(&self, name: &str) -> PathBuf {
        self.service.join(name)
    }

    pub fn root(&self) -> &Path {
        self._root.path()
    }
}
