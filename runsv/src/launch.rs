//! Starting a process with a clean state: its own session and process group, an empty
//! signal mask and default dispositions, the chosen fds, working directory, user and
//! environment — and learning whether exec itself failed, with the OS's reason.
//!
//! Everything the child needs is prepared before the clone; between it and exec the
//! child makes only system calls (no allocation, no locks): it shares runsv's memory.

use crate::definition::Credentials;
use nix::errno::Errno;
use nix::libc;
use nix::unistd::Pid;
use std::ffi::{CStr, CString, OsStr, OsString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};

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
    /// The `cgroup.procs` of the service's group: the child joins it before exec.
    cgroup: Option<RawFd>,
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
        })
    }

    pub fn credentials(mut self, credentials: Option<Credentials>) -> Launch {
        self.credentials = credentials;
        self
    }

    pub fn stdio(mut self, stdin: Stdio, stdout: Stdio, stderr: Stdio) -> Launch {
        self.stdio = [stdin, stdout, stderr];
        self
    }

    pub fn extra_fd(mut self, source: RawFd, target: RawFd) -> Launch {
        self.extra_fd = Some((source, target));
        self
    }

    /// Places the child in the cgroup whose `cgroup.procs` runsv holds open as
    /// `procs` (see cgroup.rs), before anything of the service runs.
    pub fn cgroup(mut self, procs: Option<RawFd>) -> Launch {
        self.cgroup = procs;
        self
    }

    /// Forks the process and returns at once, while the child execs: runsv publishes
    /// the new pid in runit's files meanwhile, then learns from [`Started::confirm`]
    /// whether exec succeeded. (A forked child, not a vfork-style one: the parent must
    /// run on while the child is still before its exec.)
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
        let unused = AtomicI32::new(0);
        let context = arrays.context(self, &unused);
        // SAFETY: runsv is single-threaded; the child only makes system calls on data
        // prepared above, then execs or _exits.
        match unsafe { nix::unistd::fork() } {
            Err(errno) => Err(describe_failure(&self.display, errno)),
            Ok(nix::unistd::ForkResult::Child) => {
                // SAFETY: close and read of fds this process owns, into a local byte;
                // _exit is async-signal-safe.
                unsafe {
                    libc::close(gate_write.as_raw_fd());
                    let mut byte = 0u8;
                    let got = loop {
                        let got = libc::read(
                            gate_read.as_raw_fd(),
                            std::ptr::addr_of_mut!(byte).cast(),
                            1,
                        );
                        if got >= 0 || Errno::last() != Errno::EINTR {
                            break got;
                        }
                    };
                    if got != 1 || byte != GO {
                        libc::_exit(111);
                    }
                }
                self.child(&context, Report::Pipe(report_write.as_raw_fd()))
            }
            Ok(nix::unistd::ForkResult::Parent { child }) => Ok(Started {
                pid: child,
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
        let context = arrays.context(self, &failure);
        let mut stack = vec![0u8; CHILD_STACK];
        // The stack grows down from its end, which the ABI wants 16-byte aligned.
        let top = (stack.as_mut_ptr() as usize + stack.len()) & !15;
        // SAFETY: the child runs child_entry on `stack`, which outlives it as the parent
        // is suspended until the child has exec'd or exited (CLONE_VFORK); it reads
        // `context` and writes only `failure`.
        let pid = unsafe {
            libc::clone(
                child_entry,
                top as *mut libc::c_void,
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

    /// In the child: set up and exec; on failure, report the step and errno and exit
    /// 111 (runit's code for a run that could not be exec'd). Every step that fails
    /// ends the child before exec: a service never runs with half its set-up.
    fn child(&self, context: &ChildContext, report: Report) -> ! {
        let (argv, envp, groups) = (context.argv, context.envp, context.groups);
        let mut report = report;
        let fail = |report: Report, step: Step| -> ! {
            let errno = match Errno::last() as i32 {
                0 => libc::EIO,
                errno => errno,
            };
            let code = (step as i32) << STEP_SHIFT | errno;
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
            libc::setsid();
            // Into the service's group first: from here on, a stop of the group reaches
            // the child and all it starts.
            if let Some(procs) = self.cgroup {
                if libc::write(procs, b"0".as_ptr().cast(), 1) != 1 {
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
            let umask = SERVICE_UMASK.load(Ordering::Relaxed);
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

    fn user_name(&self) -> Option<&str> {
        self.credentials.as_ref().map(|c| c.user_name.as_str())
    }
}

/// What the child reported, for people: `unable to start sleep: setuid to user daemon:
/// Operation not permitted (EPERM)`, naming the step that failed unless it was exec.
fn describe_child_failure(
    display: &str,
    directory: &CStr,
    user: Option<&str>,
    code: i32,
) -> String {
    let errno = Errno::from_raw(code & ((1 << STEP_SHIFT) - 1));
    let user = user.unwrap_or_default();
    let step = match code >> STEP_SHIFT {
        s if s == Step::Dup2 as i32 => "dup2".to_string(),
        s if s == Step::Chdir as i32 => format!("chdir to {}", directory.to_string_lossy()),
        s if s == Step::Setgroups as i32 => format!("setgroups for user {user}"),
        s if s == Step::Setgid as i32 => format!("setgid for user {user}"),
        s if s == Step::Setuid as i32 => format!("setuid to user {user}"),
        s if s == Step::Capset as i32 => format!("dropping the capabilities of user {user}"),
        s if s == Step::Cgroup as i32 => "joining the service's cgroup".to_string(),
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
    Exec = 0,
    Dup2,
    Chdir,
    Setgroups,
    Setgid,
    Setuid,
    Capset,
    Cgroup,
}

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

/// Enough for the system calls the child makes (its frames are small and it calls
/// nothing that allocates); allocated per start and freed once the child has exec'd.
const CHILD_STACK: usize = 32 * 1024;

/// How the child tells the parent that exec failed, and why.
#[derive(Clone, Copy)]
enum Report<'a> {
    /// Memory shared with a parent suspended until exec (the vfork-style clone).
    Shared(&'a AtomicI32),
    /// The write end of a close-on-exec pipe (fork): exec closes it, a failure writes
    /// the step and errno into it first.
    Pipe(RawFd),
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

/// The pointer arrays exec and setgroups take, built before the fork or clone (the
/// child must not allocate).
struct ChildArrays {
    argv: Vec<*const libc::c_char>,
    envp: Option<Vec<*const libc::c_char>>,
    groups: Vec<libc::gid_t>,
}

impl ChildArrays {
    fn of(launch: &Launch) -> ChildArrays {
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

    fn context<'a>(&'a self, launch: &'a Launch, failure: &'a AtomicI32) -> ChildContext<'a> {
        ChildContext {
            launch,
            argv: &self.argv,
            envp: self.envp.as_deref(),
            groups: &self.groups,
            failure,
        }
    }
}

/// What the child reads, prepared before the clone.
struct ChildContext<'a> {
    launch: &'a Launch,
    argv: &'a [*const libc::c_char],
    envp: Option<&'a [*const libc::c_char]>,
    groups: &'a [libc::gid_t],
    failure: &'a AtomicI32,
}

extern "C" fn child_entry(context: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `context` is the ChildContext the parent passed to clone, alive while the
    // parent is suspended.
    let context = unsafe { &*(context as *const ChildContext) };
    context
        .launch
        .child(context, Report::Shared(context.failure))
}

fn pointer_array(strings: &[CString]) -> Vec<*const libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
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
mod tests {
    use super::*;

    #[test]
    fn a_child_never_execs_without_the_go_byte() {
        let dir = tempfile::tempdir().unwrap();
        let command = ["sh".into(), "-c".into(), "touch ran".into()];
        let launch = Launch::new(&command, None, dir.path()).unwrap();
        let started = launch.start().unwrap();
        let pid = started.pid();
        // As when runsv is killed before it has published the pid: end of file.
        drop(started);
        let status = nix::sys::wait::waitpid(pid, None).unwrap();
        assert_eq!(status, nix::sys::wait::WaitStatus::Exited(pid, 111));
        assert!(!dir.path().join("ran").exists());
    }

    #[test]
    fn a_missing_program_fails_before_fork() {
        let error = Launch::new(&["no-such-program-xyz".into()], Some(&[]), Path::new("/"))
            .err()
            .expect("not found");
        assert_eq!(
            error,
            "unable to start no-such-program-xyz: No such file or directory (ENOENT)"
        );
    }

    #[test]
    fn exec_failure_reports_errno() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("not-executable");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        let launch = Launch::new(&["./not-executable".into()], None, dir.path()).unwrap();
        let error = launch.spawn().expect_err("exec fails");
        assert_eq!(
            error,
            "unable to start ./not-executable: Permission denied (EACCES)"
        );
    }

    #[test]
    fn a_failed_set_up_step_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("gone");
        let launch = Launch::new(&["/bin/true".into()], None, &missing).unwrap();
        let error = launch.spawn().expect_err("chdir fails");
        assert_eq!(
            error,
            format!(
                "unable to start /bin/true: chdir to {}: No such file or directory (ENOENT)",
                missing.display()
            )
        );
    }

    #[test]
    fn a_spawned_process_runs_in_its_own_session_with_its_environment() {
        let dir = tempfile::tempdir().unwrap();
        let launch = Launch::new(
            &[
                "sh".into(),
                "-c".into(),
                "echo $FOO $$ $(cut -d' ' -f6 /proc/$$/stat) > out".into(),
            ],
            Some(&[("FOO".into(), "bar".into())]),
            dir.path(),
        )
        .unwrap();
        let pid = launch.spawn().unwrap();
        nix::sys::wait::waitpid(pid, None).unwrap();
        let out = std::fs::read_to_string(dir.path().join("out")).unwrap();
        let words: Vec<&str> = out.split_whitespace().collect();
        assert_eq!(words[0], "bar");
        assert_eq!(words[1], words[2], "session leader: sid = pid");
    }
}
