//! runsv's side of "a service is its cgroup" (the library's cgroup.rs does the cgroup
//! work): the group of the main service and of its log service, the exit of `run` (or
//! `finish`) held back until the group is empty, the kill of what remains after the
//! stop timeout, limits before each start, and the OOM kill as the reason.
//!
//! The machine (machine.rs) knows nothing of cgroups: to it, `run` simply ends later —
//! when its last process has. Where there is no group (no writable cgroup v2, or
//! `RUNTREE_CGROUP=off`), nothing here is used and runsv works with process groups.

use nix::sys::signal::Signal;
use runsv::cgroup::{Group, Limits, Tree};
use runsv::launch::Placement;
use runsv::supervise::ExitStatus;
use std::path::Path;
use std::time::Duration;

/// The tree this runsv's services belong to, with runsv moved into its supervisors'
/// group; None in process-group mode.
pub fn tree(label: &str) -> Option<Tree> {
    let tree = Tree::find()?;
    if let Err(error) = tree.join() {
        eprintln!("runsv {label}: warning: {error}");
    }
    Some(tree)
}

/// One service's group, and what runsv waits for in it.
pub struct Tracked {
    pub group: Group,
    /// `run` or `finish` exited while processes it started remain: its pid and status,
    /// reported to the machine once the group is empty.
    pub pending: Option<(u32, ExitStatus)>,
    /// When what remains is killed (monotonic, since runsv's origin).
    pub kill_at: Option<Duration>,
    /// memory.events' oom_kill when run was started.
    oom_at_start: u64,
    /// Limits were written for an earlier start: a start without them resets them.
    limits_applied: bool,
    /// A weight that could not be applied was reported: once per runsv, not per start.
    weight_warned: bool,
}

impl Tracked {
    /// The group of the service at `directory` (absolute); None, with a warning, when
    /// it cannot be made (the service then runs in a process group).
    pub fn open(tree: &Tree, directory: &Path, label: &str) -> Option<Tracked> {
        match Group::open(tree.group_path(directory)) {
            Ok(group) => Some(Tracked {
                group,
                pending: None,
                kill_at: None,
                oom_at_start: 0,
                limits_applied: false,
                weight_warned: false,
            }),
            Err(error) => {
                eprintln!("runsv {label}: warning: {error}; using a process group");
                None
            }
        }
    }

    /// Where a child of the service is placed (see launch.rs).
    pub fn placement(&self) -> Placement {
        Placement {
            procs: self.group.procs_fd(),
            dir: self.group.dir_fd(),
        }
    }

    /// Before `run` starts: its limits written (a bound that fails stops the start,
    /// with the reason; a weight that fails is a warning, once), and the OOM count
    /// noted.
    pub fn prepare_run(&mut self, limits: &Limits, label: &str) -> Result<(), String> {
        if !limits.is_empty() || self.limits_applied {
            for warning in self.group.apply(limits)? {
                if !self.weight_warned {
                    eprintln!("runsv {label}: warning: {warning}; starting without it");
                }
            }
            self.weight_warned |= limits.cpu_weight.is_some() || limits.io_weight.is_some();
            self.limits_applied = !limits.is_empty();
        }
        self.oom_at_start = self.group.oom_kills();
        Ok(())
    }

    /// `pid` (run or finish) exited. If the group still holds processes, the exit is
    /// held: they get `signal` (None when the stop signal was already sent to the
    /// group) and are killed at `kill_at`. Whether it was held.
    pub fn hold(
        &mut self,
        pid: u32,
        status: ExitStatus,
        signal: Option<Signal>,
        kill_at: Duration,
    ) -> bool {
        if !self.group.populated() {
            return false;
        }
        self.pending = Some((pid, status));
        if let Some(signal) = signal {
            self.group.signal(signal);
            self.group.signal(Signal::SIGCONT);
        }
        self.kill_at = Some(kill_at);
        true
    }

    /// cgroup.events changed (or was due to be checked): the held exit, once the group
    /// is empty.
    pub fn emptied(&mut self) -> Option<(u32, ExitStatus)> {
        if self.pending.is_none() || self.group.populated() {
            return None;
        }
        self.kill_at = None;
        self.pending.take()
    }

    /// The kill is due: everything left in the group gets SIGKILL.
    pub fn timer(&mut self, now: Duration) {
        if self.kill_at.is_some_and(|due| due <= now) {
            self.kill_at = None;
            self.group.kill();
        }
    }

    /// Whether the OOM killer killed a process of the service since run started.
    pub fn oom_killed(&self) -> bool {
        self.group.oom_kills() > self.oom_at_start
    }

    /// What a killed runsv left in the group when nothing is adopted (a daemon whose
    /// run had died, processes that escaped their process group): stopped before the
    /// service starts again, so it never runs twice.
    pub fn clear(&self, label: &str, signal: Signal, timeout: Duration) {
        if !self.group.populated() {
            return;
        }
        let count = self.group.pids().len();
        eprintln!(
            "runsv {label}: warning: stopping {count} process(es) left in {} by a previous runsv",
            self.group.path().display()
        );
        if !self.group.stop(signal, timeout) {
            eprintln!(
                "runsv {label}: warning: {} is not empty after SIGKILL",
                self.group.path().display()
            );
        }
    }
}
