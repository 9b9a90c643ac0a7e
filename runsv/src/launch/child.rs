//! The child's side of a launch: what runs between the clone and exec — the session
//! leader of a service, waiting at the gate, the set-up steps, exec — and how a failed
//! step is reported to the parent. It shares runsv's memory (vfork-style clone) or a
//! copy of it (a service cloned by its leader): it makes only system calls on data
//! prepared before, never allocates or takes a lock.

use super::{describe_failure, Launch, Stdio, GO};
use crate::definition::controls::Resource;
use nix::errno::Errno;
use nix::libc;
use std::ffi::{CStr, CString};
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};

/// What the session leader of `Launch::start` reads, prepared before its clone.
pub(super) struct Leader<'a> {
    pub(super) context: &'a ChildContext<'a>,
    pub(super) gate_read: RawFd,
    pub(super) gate_write: RawFd,
    /// The write end of the exec report pipe.
    pub(super) report: RawFd,
    /// Where the leader leaves the service's pid (0: the clone failed, see `failure`).
    pub(super) service: &'a AtomicI32,
    pub(super) service_stack: *mut libc::c_void,
}

/// The leader: a session (and group) of its own, the service cloned into it as runsv's
/// child, its pid left for runsv; then it exits, and runsv resumes.
pub(super) extern "C" fn leader_entry(leader: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `leader` is the Leader the parent passed to clone, alive while the parent
    // is suspended; setsid, clone and _exit are plain system calls.
    unsafe {
        let leader = &*(leader as *const Leader);
        // Cannot fail: a new process leads no group yet.
        libc::setsid();
        if let Some(placement) = leader.context.launch.cgroup {
            // Born in the service's group: a fork (no CLONE_VM, no stack of its own)
            // whose child goes on here, in its own copy of the memory.
            match clone_into_cgroup(placement.dir) {
                0 => run_service(leader, Placed::Born),
                pid if pid > 0 => {
                    leader.service.store(pid as i32, Ordering::SeqCst);
                    libc::_exit(0)
                }
                // ENOSYS (before Linux 5.3), E2BIG or EINVAL (no CLONE_INTO_CGROUP
                // before 5.7), or a group the kernel refuses to start a process in
                // (its own words come from the write below): the clone and the write.
                _ => {}
            }
        }
        let pid = libc::clone(
            service_entry,
            leader.service_stack,
            libc::CLONE_PARENT | libc::SIGCHLD,
            leader as *const Leader as *mut libc::c_void,
        );
        if pid > 0 {
            leader.service.store(pid, Ordering::SeqCst);
        } else {
            let code = Step::Clone.number() << STEP_SHIFT | Errno::last() as i32;
            leader.context.failure.store(code, Ordering::SeqCst);
        }
        libc::_exit(0)
    }
}

/// The service, in its own copy of runsv's memory: waits at the gate, then sets up and
/// execs, reporting a failure through the pipe.
extern "C" fn service_entry(leader: *mut libc::c_void) -> libc::c_int {
    // SAFETY: this process's copy of the Leader its leader cloned it with.
    let leader = unsafe { &*(leader as *const Leader) };
    run_service(leader, Placed::Join)
}

fn run_service(leader: &Leader, placed: Placed) -> ! {
    await_go(leader.gate_read, leader.gate_write);
    leader
        .context
        .launch
        .child(leader.context, Report::Pipe(leader.report), placed)
}

/// Whether the child was born in its cgroup or joins it itself.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Placed {
    Born,
    Join,
}

/// clone3's arguments up to `cgroup` (CLONE_ARGS_SIZE_VER2), as the kernel reads them.
#[repr(C)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// A fork into the cgroup whose directory is `cgroup`, as runsv's child
/// (CLONE_PARENT): 0 in the child, its pid in the parent, -1 with errno on failure.
/// SAFETY (for the caller): the child returns here on a copy of the caller's stack,
/// as from fork; it must not return from the caller's frame.
unsafe fn clone_into_cgroup(cgroup: RawFd) -> libc::c_long {
    let args = CloneArgs {
        flags: libc::CLONE_PARENT as u64 | CLONE_INTO_CGROUP,
        pidfd: 0,
        child_tid: 0,
        parent_tid: 0,
        // clone3 refuses one with CLONE_PARENT: the child's is its parent's own
        // (SIGCHLD: runsv cloned the leader with it), as clone(2) silently does.
        exit_signal: 0,
        stack: 0,
        stack_size: 0,
        tls: 0,
        set_tid: 0,
        set_tid_size: 0,
        cgroup: cgroup as u64,
    };
    libc::syscall(
        libc::SYS_clone3,
        std::ptr::addr_of!(args),
        std::mem::size_of::<CloneArgs>(),
    )
}

/// In a child of `Launch::start`: waits at the gate until runsv sends the go byte;
/// exits 111, unexec'd, if runsv closes its end first (it was killed).
pub(super) fn await_go(gate_read: RawFd, gate_write: RawFd) {
    // SAFETY: close and read of fds this process owns, into a local byte; _exit is
    // async-signal-safe.
    unsafe {
        libc::close(gate_write);
        let mut byte = 0u8;
        let got = loop {
            let got = libc::read(gate_read, std::ptr::addr_of_mut!(byte).cast(), 1);
            if got >= 0 || Errno::last() != Errno::EINTR {
                break got;
            }
        };
        if got != 1 || byte != GO {
            libc::_exit(111);
        }
    }
}

impl Launch {
    /// In the child: set up and exec; on failure, report the step and errno and exit
    /// 111 (runit's code for a run that could not be exec'd). Every step that fails
    /// ends the child before exec: a service never runs with half its set-up.
    pub(super) fn child(&self, context: &ChildContext, report: Report, placed: Placed) -> ! {
        let (argv, envp, groups) = (context.argv, context.envp, context.groups);
        let mut report = report;
        let fail = |report: Report, step: Step| -> ! {
            let step = step.number();
            let errno = match Errno::last() as i32 {
                0 => libc::EIO,
                errno => errno,
            };
            let code = step << STEP_SHIFT | errno;
            match report {
                Report::Shared(failure) => failure.store(code, Ordering::SeqCst),
                Report::Pipe(fd) => {
                    let bytes = code.to_ne_bytes();
                    // SAFETY: write(2) of a local buffer.
                    unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
                }
            }
            // SAFETY: _exit is async-signal-safe and never returns.
            unsafe { libc::_exit(111) }
        };
        // SAFETY: each call is a plain system call on memory prepared before the clone.
        unsafe {
            // A service's session was made by its leader (see `leader_entry`).
            if context.new_session {
                libc::setsid();
            }
            // Into the service's group first: from here on, a stop of the group reaches
            // the child and all it starts.
            if let (Some(placement), Placed::Join) = (self.cgroup, placed) {
                if libc::write(placement.procs, b"0".as_ptr().cast(), 1) != 1 {
                    fail(report, Step::Cgroup);
                }
            }
            for signal in 1..32 {
                if signal != libc::SIGKILL && signal != libc::SIGSTOP {
                    libc::signal(signal, libc::SIG_DFL);
                }
            }
            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut empty);
            libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
            // runsv creates its files with umask 0 (see `exact_modes`); the service
            // gets the umask runsv was started with.
            let umask = self
                .controls
                .umask
                .unwrap_or_else(|| SERVICE_UMASK.load(Ordering::Relaxed));
            if umask != KEEP_UMASK {
                libc::umask(umask as libc::mode_t);
            }

            if let (Some((_, target)), Report::Pipe(fd)) = (self.extra_fd, report) {
                // The readiness fd's number must not clobber the report pipe.
                if fd == target {
                    report = Report::Pipe(libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3));
                }
            }
            for (number, source) in self.stdio.iter().enumerate() {
                if let Stdio::Fd(fd) = *source {
                    if libc::dup2(fd, number as RawFd) < 0 {
                        fail(report, Step::Dup2);
                    }
                }
            }
            // runsv's own fds are close-on-exec, but one it inherited may not be: the
            // service gets 0, 1, 2 and its readiness fd, nothing else of runsv's. Best
            // effort (Linux 5.11): an older kernel passes on what runsv inherited, as
            // runit does.
            libc::syscall(
                libc::SYS_close_range,
                3 as libc::c_uint,
                libc::c_uint::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            );
            if let Some((source, target)) = self.extra_fd {
                if source == target {
                    libc::fcntl(source, libc::F_SETFD, 0);
                } else if libc::dup2(source, target) < 0 {
                    fail(report, Step::Dup2);
                }
            }
            if libc::chdir(self.directory.as_ptr()) < 0 {
                fail(report, Step::Chdir);
            }
            // Before the user changes: raising a hard limit or the priority takes
            // runsv's privileges. Soft and hard limit alike, as the service asked.
            for &(resource, value) in &self.controls.limits {
                let limit = [value, value];
                let none = std::ptr::null::<[u64; 2]>();
                if libc::syscall(libc::SYS_prlimit64, 0, resource, &limit, none) < 0 {
                    fail(report, Step::Limit(resource));
                }
            }
            if let Some(nice) = self.controls.nice {
                if libc::syscall(libc::SYS_setpriority, libc::PRIO_PROCESS, 0, nice) < 0 {
                    fail(report, Step::Nice);
                }
            }
            if let Some(credentials) = &self.credentials {
                // Groups first, then the gid, then the uid: once the uid is not 0, the
                // process may no longer change its groups. Raw system calls: glibc's
                // wrappers would also change every other thread of the process
                // (setxid), and this child shares runsv's memory.
                if libc::syscall(id_calls::SETGROUPS, groups.len(), groups.as_ptr()) < 0 {
                    fail(report, Step::Setgroups);
                }
                if libc::syscall(id_calls::SETGID, credentials.gid) < 0 {
                    fail(report, Step::Setgid);
                }
                if libc::syscall(id_calls::SETUID, credentials.uid) < 0 {
                    fail(report, Step::Setuid);
                }
                // setuid to a user other than root cleared the permitted, effective
                // and ambient capabilities, unless a securebit of runsv's parent kept
                // them; the inheritable set it always keeps. Clear all three, so that
                // no capability of runsv's reaches the service, even through a
                // program with file capabilities.
                if credentials.uid != 0 {
                    let header = CapHeader {
                        version: CAPABILITY_VERSION_3,
                        pid: 0,
                    };
                    let none = [CapData::default(); 2];
                    if libc::syscall(libc::SYS_capset, &header, none.as_ptr()) < 0 {
                        fail(report, Step::Capset);
                    }
                }
            }
            match envp {
                Some(envp) => libc::execve(self.program.as_ptr(), argv.as_ptr(), envp.as_ptr()),
                None => libc::execv(self.program.as_ptr(), argv.as_ptr()),
            };
            fail(report, Step::Exec)
        }
    }
}

/// What the child reported, for people: `unable to start sleep: setuid to user daemon:
/// Operation not permitted (EPERM)`, naming the step that failed unless it was exec.
pub(super) fn describe_child_failure(
    display: &str,
    directory: &CStr,
    user: Option<&str>,
    code: i32,
) -> String {
    let errno = Errno::from_raw(code & ((1 << STEP_SHIFT) - 1));
    let user = user.unwrap_or_default();
    let step = match code >> STEP_SHIFT {
        0 => return describe_failure(display, errno),
        s if s == Step::Dup2.number() => "dup2".to_string(),
        s if s == Step::Chdir.number() => format!("chdir to {}", directory.to_string_lossy()),
        s if s == Step::Setgroups.number() => format!("setgroups for user {user}"),
        s if s == Step::Setgid.number() => format!("setgid for user {user}"),
        s if s == Step::Setuid.number() => format!("setuid to user {user}"),
        s if s == Step::Capset.number() => format!("dropping the capabilities of user {user}"),
        s if s == Step::Clone.number() => "clone into its session".to_string(),
        s if s == Step::Nice.number() => "setting nice".to_string(),
        s if s >= LIMIT_STEPS => match Resource::of_number(s - LIMIT_STEPS) {
            Some(resource) => format!("setting {}", resource.key()),
            None => "setting a limit".to_string(),
        },
        s if s == Step::Cgroup.number() => "joining the service's cgroup".to_string(),
        _ => return describe_failure(display, errno),
    };
    format!(
        "unable to start {display}: {step}: {} ({errno:?})",
        errno.desc()
    )
}

/// The set-up step that failed in the child, reported above the errno's bits.
#[derive(Clone, Copy)]
enum Step {
    Exec,
    Dup2,
    Chdir,
    Setgroups,
    Setgid,
    Setuid,
    Capset,
    Clone,
    Nice,
    /// setrlimit of this RLIMIT_ number.
    Limit(libc::c_int),
    Cgroup,
}

impl Step {
    fn number(self) -> i32 {
        match self {
            Step::Exec => 0,
            Step::Dup2 => 1,
            Step::Chdir => 2,
            Step::Setgroups => 3,
            Step::Setgid => 4,
            Step::Setuid => 5,
            Step::Capset => 6,
            Step::Clone => 7,
            Step::Nice => 8,
            Step::Cgroup => 9,
            Step::Limit(resource) => LIMIT_STEPS + resource,
        }
    }
}

/// A failed limit is reported as this plus its RLIMIT_ number.
const LIMIT_STEPS: i32 = 16;

/// errno values fit below this bit; the step goes above.
const STEP_SHIFT: u32 = 16;

/// The calls that take 32-bit ids: on 32-bit x86 and arm, the plain numbers are the
/// old calls with 16-bit ids.
#[cfg(any(target_arch = "x86", target_arch = "arm"))]
mod id_calls {
    pub use nix::libc::{
        SYS_setgid32 as SETGID, SYS_setgroups32 as SETGROUPS, SYS_setuid32 as SETUID,
    };
}
#[cfg(not(any(target_arch = "x86", target_arch = "arm")))]
mod id_calls {
    pub use nix::libc::{SYS_setgid as SETGID, SYS_setgroups as SETGROUPS, SYS_setuid as SETUID};
}

/// capset(2)'s header and one of its two 32-bit halves (version 3: 64 capabilities).
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// The umask services get; `KEEP_UMASK` until runsv calls [`exact_modes`].
static SERVICE_UMASK: AtomicU32 = AtomicU32::new(KEEP_UMASK);
const KEEP_UMASK: u32 = u32::MAX;

/// Sets runsv's umask to 0, so that the files it creates get exactly the modes it asks
/// for (supervise/ 0700, its FIFOs and lock 0600: runit's), whatever umask it was
/// started with; every process it starts gets that umask back.
pub fn exact_modes() {
    // SAFETY: umask(2) cannot fail.
    let started_with = unsafe { libc::umask(0) };
    SERVICE_UMASK.store(started_with as u32, Ordering::Relaxed);
}

/// How the child tells the parent that exec failed, and why.
#[derive(Clone, Copy)]
pub(super) enum Report<'a> {
    /// Memory shared with a parent suspended until exec (the vfork-style clone).
    Shared(&'a AtomicI32),
    /// The write end of a close-on-exec pipe (fork): exec closes it, a failure writes
    /// the step and errno into it first.
    Pipe(RawFd),
}

/// The pointer arrays exec and setgroups take, built before the fork or clone (the
/// child must not allocate).
pub(super) struct ChildArrays {
    argv: Vec<*const libc::c_char>,
    envp: Option<Vec<*const libc::c_char>>,
    groups: Vec<libc::gid_t>,
}

impl ChildArrays {
    pub(super) fn of(launch: &Launch) -> ChildArrays {
        ChildArrays {
            argv: pointer_array(&launch.argv),
            envp: launch.envp.as_ref().map(|e| pointer_array(e)),
            groups: launch
                .credentials
                .as_ref()
                .map(|c| c.supplementary_groups.clone())
                .unwrap_or_default(),
        }
    }

    pub(super) fn context<'a>(
        &'a self,
        launch: &'a Launch,
        failure: &'a AtomicI32,
        new_session: bool,
    ) -> ChildContext<'a> {
        ChildContext {
            launch,
            argv: &self.argv,
            envp: self.envp.as_deref(),
            groups: &self.groups,
            failure,
            new_session,
        }
    }
}

/// What the child reads, prepared before the clone.
pub(super) struct ChildContext<'a> {
    launch: &'a Launch,
    argv: &'a [*const libc::c_char],
    envp: Option<&'a [*const libc::c_char]>,
    groups: &'a [libc::gid_t],
    failure: &'a AtomicI32,
    /// setsid first (a readiness test, a control script); a service is in the session
    /// its leader made.
    new_session: bool,
}

pub(super) extern "C" fn child_entry(context: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `context` is the ChildContext the parent passed to clone, alive while the
    // parent is suspended.
    let context = unsafe { &*(context as *const ChildContext) };
    context
        .launch
        .child(context, Report::Shared(context.failure), Placed::Join)
}

fn pointer_array(strings: &[CString]) -> Vec<*const libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}
