//! A running tree: its scanner's pid, how it died if it did, how its users stop it, and
//! its supervisors among the scanner's children.

use super::scanner::Scanner;
use crate::cleanup;
use crate::proc::{children_of, last_argument};
use crate::suite::failure_lines;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running scanner. Dropping it stops the tree and removes its directory.
pub struct Tree {
    pub scanner: Scanner,
    pub pid: Pid,
    pub dir: PathBuf,
    pub log: PathBuf,
    pub log_offset: u64,
}

impl Tree {
    pub fn alive(&self) -> bool {
        runtree::alive(self.pid.as_raw() as u32)
    }

    /// The scanner's exit, read without reaping it (so that its pid stays ours).
    pub fn exit_status(&self) -> Option<WaitStatus> {
        match waitid(
            Id::Pid(self.pid),
            WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT,
        ) {
            Ok(WaitStatus::StillAlive) | Err(_) => None,
            Ok(status) => Some(status),
        }
    }

    /// "svdir exited (status 1): <its last stderr lines>"
    pub fn died(&self) -> String {
        let how = match self.exit_status() {
            Some(WaitStatus::Exited(_, code)) => format!("exit status {code}"),
            Some(WaitStatus::Signaled(_, signal, _)) => format!("killed by {signal}"),
            _ => "gone".into(),
        };
        format!(
            "{} exited ({how}){}",
            self.scanner.scanner_name(),
            self.log_excerpt()
        )
    }

    /// What the tree wrote to stderr since it started: a Rust panic's message, else the
    /// last two lines.
    pub fn log_excerpt(&self) -> String {
        let bytes = fs::read(&self.log).unwrap_or_default();
        let start = usize::try_from(self.log_offset)
            .unwrap_or(0)
            .min(bytes.len());
        let text = String::from_utf8_lossy(&bytes[start..]);
        failure_lines(&text).map_or_else(String::new, |lines| format!(": {lines}"))
    }

    /// The request that stops the whole tree, as each suite's user would make it (see
    /// docs/bench.md): runit: SIGHUP to runsvdir (TERM to every runsv, which stops its
    /// service and exits; SIGTERM would make runsvdir exit alone); s6: SIGTERM to
    /// s6-svscan (= `s6-svscanctl -t`); runtree: SIGTERM to svdir; daemontools, whose
    /// svscan cannot stop anything: SIGTERM to svscan (it dies), then `svc -dx` on every
    /// service. Returns the `svc` process, to be reaped once it is done.
    pub fn request_stop(&self, names: &[String]) -> Result<Option<Child>, String> {
        let signal = match self.scanner {
            Scanner::Runit => Signal::SIGHUP,
            _ => Signal::SIGTERM,
        };
        kill(self.pid, signal)
            .map_err(|e| format!("kill {} {}: {e}", signal, self.scanner.scanner_name()))?;
        if self.scanner != Scanner::Daemontools {
            return Ok(None);
        }
        Command::new("/usr/bin/svc")
            .arg("-dx")
            .args(names)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map(Some)
            .map_err(|e| format!("svc -dx: {e}"))
    }

    /// The supervisors: the scanner's children (of any of its threads).
    pub fn children(&self) -> Vec<u32> {
        children_of(self.pid.as_raw() as u32)
    }

    /// The live supervisor of the entry `name`: a child of the scanner whose last
    /// argument names it (`runsv NAME`, `s6-supervise NAME`, `supervise NAME`).
    pub fn supervisor_of(&self, name: &str) -> Option<u32> {
        self.children().into_iter().find(|&pid| {
            last_argument(pid).is_some_and(|arg| {
                Path::new(&arg).file_name().is_some_and(|n| n == name) && runtree::alive(pid)
            })
        })
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        if self.alive() {
            let signal = match self.scanner {
                Scanner::Runit => Signal::SIGHUP,
                _ => Signal::SIGTERM,
            };
            let _ = kill(self.pid, signal);
        }
        // SIGTERM, up to 10 s, SIGKILL; then every orphan left behind.
        cleanup::stop_supervisors(&[self.pid], Duration::from_secs(10));
        let _ = fs::remove_dir_all(&self.dir);
    }
}
