//! Starting a process with a clean state: a session and process group of its own, an
//! empty signal mask and default dispositions, the chosen fds, working directory, user
//! and environment — and learning whether exec itself failed, with the OS's reason.
//!
//! A service (`run`, `finish`: [`Launch::start`]) is a member of its session's process
//! group, not its leader, as under runit: a short-lived leader creates the session and
//! clones the service into it as runsv's own child (CLONE_PARENT), then exits. So
//! `exec setsid prog` and `chpst -P` in `run` keep the supervised pid (util-linux
//! `setsid` forks when its caller leads a group, and setsid(2) fails for a leader),
//! while runsv's stop still reaches the whole group the service is in ([`group_of`]).
//!
//! Everything the child needs is prepared before the clone; between it and exec the
//! child makes only system calls (no allocation, no locks): it shares runsv's memory.
//! This file is the parent's side (preparing, forking or cloning, the gate, learning
//! the outcome); launch/child.rs is the child's.

mod child;

use crate::definition::{Credentials, ProcessControls};
use child::{child_entry, describe_child_failure, leader_entry, ChildArrays, Leader};
use nix::errno::Errno;
use nix::libc;
use nix::unistd::Pid;
use std::ffi::{CString, OsStr, OsString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};

pub use child::exact_modes;

/// The PATH a YAML service gets when its `environ` names none.
// The one PATH a service gets when it has none; defined with the service definition.
pub use crate::definition::DEFAULT_PATH;

/// Where a child's standard fd comes from.
#[derive(Clone, Copy, Debug)]
pub enum Stdio {
    /// runsv's own fd of the same number.
    Inherit,
    /// This fd of runsv's (a pipe end or /dev/null).
    Fd(RawFd),
}

/// A process to start, prepared before fork.
pub struct Launch {
    program: CString,
    /// For messages: the program as the definition names it.
    display: String,
    argv: Vec<CString>,
    /// `None`: runsv's own environment.
    envp: Option<Vec<CString>>,
    directory: CString,
    credentials: Option<Credentials>,
    stdio: [Stdio; 3],
    /// (runsv's fd, the fd number the child sees it as): the readiness pipe.
    extra_fd: Option<(RawFd, RawFd)>,
    /// The service's group: the child is born in it, or joins it before exec.
    cgroup: Option<Placement>,
    controls: Controls,
}

/// A service's cgroup as a child is placed in it: clone3 creates the child in the
/// group's directory (CLONE_INTO_CGROUP, Linux 5.7), which costs the kernel no
/// migration; where it cannot (an older kernel, a vfork-style child), the child writes
/// `0` to the group's `cgroup.procs` before anything else.
#[derive(Clone, Copy, Debug)]
pub struct Placement {
    pub procs: RawFd,
    pub dir: RawFd,
}

/// The service's limits, nice and umask, as the child's system calls take them.
#[derive(Default)]
struct Controls {
    /// (RLIMIT_ number, soft and hard limit).
    limits: Vec<(libc::c_int, u64)>,
    nice: Option<i32>,
    umask: Option<u32>,
}

impl Launch {
    /// Prepares `command` (program and arguments) to run in `directory`. The program
    /// is looked up in the PATH of `environment` (or runsv's own) unless it names a
    /// path. Errors are for people: `unable to start sshd: No such file or directory
    /// (ENOENT)`.
    pub fn new(
        command: &[String],
        environment: Option<&[(String, String)]>,
        directory: &Path,
    ) -> Result<Launch, String> {
        let Some(first) = command.first() else {
            return Err("empty command".to_string());
        };
        let path_variable = match environment {
            Some(vars) => vars
                .iter()
                .find(|(k, _)| k == "PATH")
                .map(|(_, v)| OsString::from(v))
                .unwrap_or_else(|| OsString::from(DEFAULT_PATH)),
            None => std::env::var_os("PATH").unwrap_or_else(|| OsString::from(DEFAULT_PATH)),
        };
        let program = if first.contains('/') {
            // Relative to the directory it runs in, as a shell there would see it.
            PathBuf::from(first)
        } else {
            search_path(first, &path_variable, directory)
                .ok_or_else(|| describe_failure(first, Errno::ENOENT))?
        };
        let argv = command
            .iter()
            .map(|a| c_string(a.as_bytes()))
            .collect::<Result<Vec<_>, _>>()?;
        let envp = match environment {
            Some(vars) => Some(
                vars.iter()
                    .map(|(k, v)| c_string(format!("{k}={v}").as_bytes()))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            None => None,
        };
        Ok(Launch {
            program: c_string(program.as_os_str().as_bytes())?,
            display: first.clone(),
            argv,
            envp,
            directory: c_string(directory.as_os_str().as_bytes())?,
            credentials: None,
            stdio: [Stdio::Inherit; 3],
            extra_fd: None,
            cgroup: None,
            controls: Controls::default(),
        })
    }

    pub fn credentials(mut self, credentials: Option<Credentials>) -> Launch {
        self.credentials = credentials;
        self
    }

    /// Limits, nice and umask the process gets (the environment files are read into
    /// the environment given to `new`).
    pub fn controls(mut self, controls: &ProcessControls) -> Launch {
        self.controls = Controls {
            limits: controls
                .limits
                .iter()
                .map(|(resource, limit)| (resource.number(), limit.raw()))
                .collect(),
            nice: controls.nice,
            umask: controls.umask,
        };
        self
    }

    pub fn stdio(mut self, stdin: Stdio, stdout: Stdio, stderr: Stdio) -> Launch {
        self.stdio = [stdin, stdout, stderr];
        self
    }

    /// Places the child in the cgroup runsv holds open (see cgroup.rs), before
    /// anything of the service runs.
    pub fn cgroup(mut self, placement: Option<Placement>) -> Launch {
        self.cgroup = placement;
        self
    }

    pub fn extra_fd(mut self, source: RawFd, target: RawFd) -> Launch {
        self.extra_fd = Some((source, target));
        self
    }

    /// The program as the command names it (`./run`, `sleep`), as messages show it.
    pub fn name(&self) -> &str {
        &self.display
    }

    /// Starts the process and returns at once, while it waits at its gate: runsv
    /// publishes the new pid in runit's files meanwhile, releases it, then learns from
    /// [`Started::confirm`] whether exec succeeded.
    ///
    /// Two steps, so that the process is no group leader (see the top of this file):
    /// a vfork-style leader (CLONE_VM | CLONE_VFORK, as in [`Launch::spawn`]) calls
    /// setsid, clones the process with CLONE_PARENT (runsv's child, so runsv gets its
    /// SIGCHLD and reaps it), leaves its pid in memory the two share, and exits; runsv
    /// resumes then (and reaps the leader, here or in its loop). With a cgroup, the
    /// leader's clone is clone3's, into the group (see [`Placement`]). The process is a copy
    /// (no CLONE_VM): it must run on while runsv publishes; its exec's outcome comes
    /// through a pipe.
    pub fn start(&self) -> Result<Started, String> {
        let (report_read, report_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| describe_failure(&self.display, e))?;
        // The gate: the child waits until runsv has published its pid and start time,
        // and execs only on the go byte. A runsv killed before that (its end closed,
        // end of file) must not leave a service nobody's files name: the child exits.
        // Waiting also keeps the exec, often on runsv's own CPU, from delaying what
        // `sv` and other readers are waiting for.
        let (gate_read, gate_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| describe_failure(&self.display, e))?;
        let arrays = ChildArrays::of(self);
        let failure = AtomicI32::new(0);
        let service = AtomicI32::new(0);
        let context = arrays.context(self, &failure, false);
        let mut leader_stack = vec![0u8; LEADER_STACK];
        let mut service_stack = vec![0u8; CHILD_STACK];
        let leader = Leader {
            context: &context,
            gate_read: gate_read.as_raw_fd(),
            gate_write: gate_write.as_raw_fd(),
            report: report_write.as_raw_fd(),
            service: &service,
            service_stack: stack_top(&mut service_stack),
        };
        // SAFETY: the leader runs on `leader_stack` while runsv is suspended (until it
        // exits: CLONE_VFORK); it reads `leader` and writes only `service` and
        // `failure`. The process it clones has its own copy of all of it.
        let pid = unsafe {
            libc::clone(
                leader_entry,
                stack_top(&mut leader_stack),
                libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
                std::ptr::addr_of!(leader) as *mut libc::c_void,
            )
        };
        if pid < 0 {
            return Err(describe_failure(&self.display, Errno::last()));
        }
        // Exiting (CLONE_VFORK resumed runsv as it began to): collected here if it is
        // done, else by runsv's loop, which ignores a pid that is none of its
        // processes. Not waited for: on a busy machine that wait cost a wake-up.
        let _ = nix::sys::wait::waitpid(
            Pid::from_raw(pid),
            Some(nix::sys::wait::WaitPidFlag::WNOHANG),
        );
        drop(report_write);
        match service.load(Ordering::SeqCst) {
            0 => Err(describe_child_failure(
                &self.display,
                &self.directory,
                self.user_name(),
                failure.load(Ordering::SeqCst),
            )),
            service => Ok(Started {
                pid: Pid::from_raw(service),
                gate: Some(gate_write),
                report: report_read,
                display: self.display.clone(),
                directory: self.directory.clone(),
                user: self.user_name().map(str::to_string),
            }),
        }
    }

    /// Starts the process and returns its pid once exec has succeeded, or the OS's
    /// reason exec (or the set-up before it) failed; the failed child is reaped here.
    ///
    /// The child is a vfork-style clone (CLONE_VM | CLONE_VFORK, on a stack of its own,
    /// as glibc's posix_spawn does): no copy of runsv's page tables, and runsv resumes
    /// the moment the child's exec has replaced its memory, which is how it knows exec
    /// succeeded, without a pipe. A failing child leaves its step and errno in
    /// `failure`, memory the two share, before it exits.
    pub fn spawn(&self) -> Result<Pid, String> {
        let arrays = ChildArrays::of(self);
        let failure = AtomicI32::new(0);
        let context = arrays.context(self, &failure, true);
        let mut stack = vec![0u8; CHILD_STACK];
        let top = stack_top(&mut stack);
        // SAFETY: the child runs child_entry on `stack`, which outlives it as the parent
        // is suspended until the child has exec'd or exited (CLONE_VFORK); it reads
        // `context` and writes only `failure`.
        let pid = unsafe {
            libc::clone(
                child_entry,
                top,
                libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
                std::ptr::addr_of!(context) as *mut libc::c_void,
            )
        };
        if pid < 0 {
            return Err(describe_failure(&self.display, Errno::last()));
        }
        let child = Pid::from_raw(pid);
        match failure.load(Ordering::SeqCst) {
            0 => Ok(child),
            code => {
                let _ = nix::sys::wait::waitpid(child, None);
                Err(describe_child_failure(
                    &self.display,
                    &self.directory,
                    self.user_name(),
                    code,
                ))
            }
        }
    }

    fn user_name(&self) -> Option<&str> {
        self.credentials.as_ref().map(|c| c.user_name.as_str())
    }
}

/// Enough for the system calls the child makes (its frames are small and it calls
/// nothing that allocates); allocated per start and freed once the child has exec'd.
const CHILD_STACK: usize = 32 * 1024;

/// The leader of [`Launch::start`] makes two system calls and a clone.
const LEADER_STACK: usize = 16 * 1024;

/// Where a child's stack starts: it grows down from the end of `stack`, which the ABI
/// wants 16-byte aligned.
fn stack_top(stack: &mut [u8]) -> *mut libc::c_void {
    ((stack.as_mut_ptr() as usize + stack.len()) & !15) as *mut libc::c_void
}

/// The byte that lets a child of [`Launch::start`] exec.
const GO: u8 = b'G';

/// A process forked by [`Launch::start`], whose exec may still be under way.
pub struct Started {
    pid: Pid,
    /// Open until the child may go on to exec (see `start`).
    gate: Option<OwnedFd>,
    report: OwnedFd,
    display: String,
    directory: CString,
    user: Option<String>,
}

impl Started {
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// Lets the child go on to exec (runsv has published what it had to): the go byte.
    /// Without it (runsv killed first, or `Started` dropped) the child exits unexec'd.
    pub fn release(&mut self) {
        if let Some(gate) = self.gate.take() {
            // EPIPE: the child is gone already; confirm sees it.
            while let Err(Errno::EINTR) = nix::unistd::write(&gate, &[GO]) {}
        }
    }

    /// Waits until the child has exec'd (Ok) or failed to (the OS's reason; the child
    /// is reaped here). Releases it first if that was not done.
    pub fn confirm(mut self) -> Result<(), String> {
        self.release();
        let mut bytes = [0u8; 4];
        let mut got = 0;
        loop {
            match nix::unistd::read(self.report.as_raw_fd(), &mut bytes[got..]) {
                Ok(0) => break,
                Ok(n) => {
                    got += n;
                    if got == bytes.len() {
                        break;
                    }
                }
                Err(Errno::EINTR) => continue,
                Err(_) => break,
            }
        }
        if got < bytes.len() {
            return Ok(());
        }
        let _ = nix::sys::wait::waitpid(self.pid, None);
        Err(describe_child_failure(
            &self.display,
            &self.directory,
            self.user.as_deref(),
            i32::from_ne_bytes(bytes),
        ))
    }
}

fn c_string(bytes: &[u8]) -> Result<CString, String> {
    CString::new(bytes).map_err(|_| "a NUL byte in the command or environment".to_string())
}

/// The first executable regular file named `name` in the PATH directories; relative
/// PATH entries are taken relative to the directory the program will run in.
fn search_path(name: &str, path: &OsStr, directory: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let mut found_not_executable = None;
    for entry in std::env::split_paths(path) {
        let entry = if entry.as_os_str().is_empty() {
            directory.to_path_buf()
        } else if entry.is_relative() {
            directory.join(entry)
        } else {
            entry
        };
        let candidate = entry.join(name);
        if let Ok(meta) = std::fs::metadata(&candidate) {
            if meta.is_file() {
                if meta.permissions().mode() & 0o111 != 0 {
                    return Some(candidate);
                }
                found_not_executable.get_or_insert(candidate);
            }
        }
    }
    // Like execvp: a file found but not executable is reported by exec (EACCES).
    found_not_executable
}

/// `unable to start ./run: No such file or directory (ENOENT)`.
pub fn describe_failure(program: &str, errno: Errno) -> String {
    format!("unable to start {program}: {} ({errno:?})", errno.desc())
}

/// Reaps one child that has ended, if any, without blocking: its pid and how it ended.
/// Callers loop until None; stopped or continued children are skipped.
pub fn reap_one() -> Option<(nix::unistd::Pid, crate::supervise::ExitStatus)> {
    use crate::supervise::ExitStatus;
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    loop {
        return match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) => Some((pid, ExitStatus::Exited(code))),
            Ok(WaitStatus::Signaled(pid, signal, _)) => {
                Some((pid, ExitStatus::Signaled(signal as i32)))
            }
            Ok(WaitStatus::StillAlive) | Err(_) => None,
            Ok(_) => continue,
        };
    }
}

// The parser lives in `proc`; re-exported because runsv's event loop names it here.
pub use crate::proc::start_time;

/// The process group `member` is in, to signal it whole — unless it is the caller's own
/// group (runsv's, svdir's), which no signal meant for a service may reach. A service
/// is in its session's group, or in the group it made (`setsid`, `setpgid`): either way
/// only the service's own processes can be in it, since a group can be joined only from
/// inside its session. The caller makes sure `member` is the process it means (a child
/// not yet reaped, or a process checked through a pidfd).
pub fn group_of(member: Pid) -> Option<Pid> {
    let group = nix::unistd::getpgid(Some(member)).ok()?;
    (group != nix::unistd::getpgrp() && group.as_raw() > 1).then_some(group)
}

/// /dev/null opened read-write, close-on-exec.
pub fn open_null() -> std::io::Result<OwnedFd> {
    let fd = nix::fcntl::open(
        "/dev/null",
        nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    // SAFETY: a fresh fd we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod launch_tests;
