//! One service's cgroup: opened (created) by runsv, a child born in it (clone3) or
//! placed in it between fork and exec, signalled and killed as a whole, empty when `cgroup.events` says so, its
//! OOM kills counted, its limits applied, removed once empty. (The tree and where it
//! lives: cgroup.rs.)

use super::*;
use nix::errno::Errno;
use nix::libc;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The group of one service: created on open, removed by [`Group::remove`] once empty.
pub struct Group {
    path: PathBuf,
    /// `cgroup.procs`, write-only: a child writes `0` into it before exec where it
    /// could not be born in the group.
    procs: File,
    /// The group's directory (O_PATH): clone3 creates a service in it
    /// (CLONE_INTO_CGROUP).
    dir: OwnedFd,
    /// `cgroup.events`, read for `populated` and polled (POLLPRI) for changes.
    events: File,
    /// `memory.events`, where the memory controller is on (its oom_kill count).
    memory_events: Option<File>,
}

impl Group {
    /// Creates (if needed) and opens the group at `path`. Errors name the file.
    pub fn open(path: PathBuf) -> Result<Group, String> {
        make_dir(&path)?;
        let dir = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| format!("unable to open {}: {e}", path.display()))?;
        let open = |name: &str, write: bool| {
            let file = path.join(name);
            OpenOptions::new()
                .read(!write)
                .write(write)
                .custom_flags(libc::O_CLOEXEC)
                .open(&file)
                .map_err(|e| format!("unable to open {}: {e}", file.display()))
        };
        let procs = open("cgroup.procs", true)?;
        let events = open("cgroup.events", false)?;
        let memory_events = open("memory.events", false).ok();
        Ok(Group {
            path,
            procs,
            dir: OwnedFd::from(dir),
            events,
            memory_events,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The fd a child writes `0` to, to join the group before it execs.
    pub fn procs_fd(&self) -> RawFd {
        self.procs.as_raw_fd()
    }

    /// The group's directory, for clone3's CLONE_INTO_CGROUP.
    pub fn dir_fd(&self) -> RawFd {
        self.dir.as_raw_fd()
    }

    /// `cgroup.events`, to poll for POLLPRI: it fires when `populated` changes. Reading
    /// it ([`Group::populated`]) re-arms it.
    pub fn events_fd(&self) -> BorrowedFd<'_> {
        self.events.as_fd()
    }

    /// Whether any process is in the group (`populated 1` in cgroup.events). A file
    /// that cannot be read counts as empty: nothing could ever be waited for.
    pub fn populated(&self) -> bool {
        let mut file = &self.events;
        let mut text = String::new();
        if file.seek(SeekFrom::Start(0)).is_err() || file.read_to_string(&mut text).is_err() {
            return false;
        }
        text.lines().any(|line| line == "populated 1")
    }

    /// The pids in the group.
    pub fn pids(&self) -> Vec<u32> {
        read_pids(&self.path.join("cgroup.procs"))
    }

    /// Sends `signal` to every process in the group; how many there were.
    pub fn signal(&self, signal: Signal) -> usize {
        if signal == Signal::SIGKILL {
            self.kill();
            return 0;
        }
        let pids = self.pids();
        for &pid in &pids {
            let _ = kill(Pid::from_raw(pid as i32), signal);
        }
        pids.len()
    }

    /// Kills every process in the group, those forking meanwhile too: `cgroup.kill`
    /// (Linux 5.14), else SIGKILL to each process until none is left (bounded).
    pub fn kill(&self) {
        if fs::write(self.path.join("cgroup.kill"), b"1").is_ok() {
            return;
        }
        for _ in 0..100 {
            let pids = self.pids();
            if pids.is_empty() {
                return;
            }
            for pid in pids {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
            }
        }
    }

    /// Waits up to `timeout` for the group to be empty; whether it is.
    pub fn wait_empty(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if !self.populated() {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            let millis = left.as_millis().clamp(1, i32::MAX as u128) as i32;
            let mut fds = [nix::poll::PollFd::new(
                self.events.as_fd(),
                nix::poll::PollFlags::POLLPRI,
            )];
            let timeout =
                nix::poll::PollTimeout::try_from(millis).unwrap_or(nix::poll::PollTimeout::MAX);
            match nix::poll::poll(&mut fds, timeout) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(_) => return !self.populated(),
            }
        }
    }

    /// Stops what is in the group: `signal`, then after `timeout` a kill; waits for it
    /// to be empty (a few seconds more at most). Whether it is.
    pub fn stop(&self, signal: Signal, timeout: Duration) -> bool {
        if !self.populated() {
            return true;
        }
        self.signal(signal);
        self.signal(Signal::SIGCONT);
        if self.wait_empty(timeout) {
            return true;
        }
        self.kill();
        self.wait_empty(Duration::from_secs(5))
    }

    /// Whether `pid` is in this group (/proc/PID/cgroup).
    pub fn contains(&self, pid: u32) -> bool {
        match group_of_pid(&pid.to_string()) {
            Some(group) => {
                let group = group.strip_prefix("/").unwrap_or(&group).to_path_buf();
                !group.as_os_str().is_empty() && self.path.ends_with(group)
            }
            None => false,
        }
    }

    /// How many times the OOM killer killed a process of the group (`oom_kill` in
    /// memory.events; 0 without the memory controller).
    pub fn oom_kills(&self) -> u64 {
        let Some(mut file) = self.memory_events.as_ref() else {
            return 0;
        };
        let mut text = String::new();
        if file.seek(SeekFrom::Start(0)).is_err() || file.read_to_string(&mut text).is_err() {
            return 0;
        }
        text.lines()
            .find_map(|line| line.strip_prefix("oom_kill "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Writes the service's limits (see cgroup/limits.rs); an error says which key
    /// could not be applied and why; the weights that could not be, as warnings.
    pub fn apply(&self, limits: &Limits) -> Result<Vec<String>, String> {
        limits.apply(&self.path)
    }

    /// Removes the group if it is empty (rmdir fails otherwise: nothing is lost).
    pub fn remove(self) -> bool {
        let Group {
            path,
            procs,
            dir,
            events,
            memory_events,
        } = self;
        drop((procs, dir, events, memory_events));
        fs::remove_dir(&path).is_ok()
    }
}

pub(super) fn read_pids(path: &Path) -> Vec<u32> {
    let mut text = String::new();
    if File::open(path)
        .and_then(|mut f| f.read_to_string(&mut text))
        .is_err()
    {
        return Vec::new();
    }
    text.lines().filter_map(|l| l.trim().parse().ok()).collect()
}

/// For tests and tools: writes `text` to a file of a group (limits, cgroup.kill).
pub fn write_file(group: &Path, name: &str, text: &str) -> io::Result<()> {
    let mut file = OpenOptions::new().write(true).open(group.join(name))?;
    file.write_all(text.as_bytes())
}
