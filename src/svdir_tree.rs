//! The tree of the svdir tests: a temp dir holding service definitions (`defs/`), a
//! scan directory (`scan/`) and svdir's output (`svdir.log`).

use crate::{binary, Guard};
use std::fs::{self, OpenOptions};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A temp dir holding service definitions (`defs/`), a scan directory (`scan/`) and
/// svdir's output (`svdir.log`).
pub struct Tree {
    pub root: tempfile::TempDir,
}

impl Default for Tree {
    fn default() -> Tree {
        Tree::new()
    }
}

impl Tree {
    pub fn new() -> Tree {
        let root = tempfile::tempdir().expect("svdir tree");
        fs::create_dir_all(root.path().join("defs")).expect("svdir tree");
        fs::create_dir_all(root.path().join("scan")).expect("svdir tree");
        Tree { root }
    }
    pub fn path(&self, relative: &str) -> PathBuf {
        self.root.path().join(relative)
    }
    pub fn scan(&self) -> PathBuf {
        self.path("scan")
    }
    /// `defs/NAME` with a service.yaml.
    pub fn define(&self, name: &str, yaml: &str) -> PathBuf {
        let dir = self.path("defs").join(name);
        fs::create_dir_all(&dir).expect("svdir tree");
        fs::write(dir.join("service.yaml"), yaml).expect("svdir tree");
        dir
    }
    /// `defs/NAME`: a long-running service.
    pub fn sleeper(&self, name: &str) -> PathBuf {
        self.define(name, "exec: sleep 1000\nlog: none\n")
    }
    /// `scan/NAME` → `defs/TARGET`.
    pub fn link(&self, name: &str, target: &str) -> PathBuf {
        let link = self.scan().join(name);
        symlink(self.path("defs").join(target), &link).expect("svdir tree");
        link
    }
    /// svdir's output so far (lossy: a test looks for words in it).
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&fs::read(self.path("svdir.log")).unwrap_or_default()).into_owned()
    }
    pub fn svdir(&self) -> Guard {
        self.svdir_on(&self.scan(), &[])
    }
    /// svdir as init starts it: leading a session of its own.
    pub fn svdir_in_session(&self) -> Guard {
        Guard::spawn_in_session(&mut self.svdir_command(&self.scan(), &[]))
    }
    pub fn svdir_on(&self, dir: &Path, env: &[(&str, &str)]) -> Guard {
        Guard::spawn(&mut self.svdir_command(dir, env))
    }
    /// `svdir DIR` with `env` added, its output appended to svdir.log.
    pub fn svdir_command(&self, dir: &Path, env: &[(&str, &str)]) -> Command {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path("svdir.log"))
            .expect("svdir tree");
        let mut command = Command::new(binary("svdir"));
        command
            .arg(dir)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("svdir tree"))
            .stderr(log);
        command
    }
}
