//! The tree of the svdir tests: a temp dir holding service definitions (`defs/`), a
//! scan directory (`scan/`) and svdir's output (`svdir.log`).

use crate::{binary, Guard};
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// `svdir SCAN >LOG 2>&1`: its output to the file `log` (created), through one open
/// file description without O_APPEND, as a shell's redirection makes it.
pub fn svdir_writing_to(scan: &Path, log: &Path) -> Command {
    let file = fs::File::create(log).expect("svdir's log");
    let mut command = Command::new(binary("svdir"));
    command
        .arg(scan)
        .stdin(Stdio::null())
        .stdout(file.try_clone().expect("svdir's log"))
        .stderr(file);
    command
}

/// The live runsv children of svdir `svdir`, by the name of their entry (runsv's
/// argument).
pub fn runsv_children(svdir: Pid) -> HashMap<String, u32> {
    let mut children = HashMap::new();
    for pid in runsv::proc::pids() {
        let Some(stat) = runsv::proc::stat(pid) else {
            continue;
        };
        if stat.zombie() || stat.ppid != svdir.as_raw() as u32 {
            continue;
        }
        if let Some([program, name]) = crate::argv(pid).as_deref() {
            if program == "runsv" {
                children.insert(name.clone(), pid);
            }
        }
    }
    children
}

/// Asserts that the runlevels in `levels` (runsvchdir's) are `current`, after
/// `previous`.
pub fn assert_runlevels(levels: &Path, current: &str, previous: &str) {
    for (link, level) in [("current", current), ("previous", previous)] {
        let target = fs::read_link(levels.join(link)).ok();
        assert_eq!(target.as_deref(), Some(Path::new(level)), "{link}");
    }
}

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
    /// `defs/NAME`, a long-running service, and `scan/NAME` → it.
    pub fn linked_sleeper(&self, name: &str) -> PathBuf {
        self.sleeper(name);
        self.link(name, name)
    }

    /// `scan/NAME` → `defs/TARGET`.
    pub fn link(&self, name: &str, target: &str) -> PathBuf {
        let link = self.scan().join(name);
        symlink(self.path("defs").join(target), &link).expect("svdir tree");
        link
    }
    /// Asserts that svdir's output holds `text`.
    pub fn assert_logged(&self, text: &str) {
        let log = self.log();
        assert!(log.contains(text), "{text:?} not in svdir's output:\n{log}");
    }

    /// svdir's output so far (lossy: a test looks for words in it).
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&fs::read(self.path("svdir.log")).unwrap_or_default()).into_owned()
    }
    /// Sends svdir `signal`, and asserts that it exits with `code` (its output shown if
    /// not).
    pub fn assert_stops(&self, svdir: &mut Guard, signal: Signal, code: i32) {
        svdir.signal(signal);
        assert_eq!(svdir.exit_code(), code, "{}", self.log());
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
