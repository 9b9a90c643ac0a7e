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
use std::ffi::{CString, OsStr, OsString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};

/// The PATH a YAML service gets when its `environ` names none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

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

    /// Forks the process and returns at once, while the child execs: runsv publishes
    /// the new pid in runit's files meanwhile, then learns from [`Started::confirm`]
    /// whether exec succeeded. (A forked child, not a vfork-style one: the parent must
    /// run on while the child is still before its exec.)
    pub fn start(&self) -> Result<Started, String> {
        let (report_read, report_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| describe_failure(&self.display, e))?;
        let argv: Vec<*const libc::c_char> = pointer_array(&self.argv);
        let envp: Option<Vec<*const libc::c_char>> = self.envp.as_ref().map(|e| pointer_array(e));
        let groups: Vec<libc::gid_t> = self
            .credentials
            .as_ref()
            .map(|c| c.supplementary_groups.clone())
            .unwrap_or_default();
        let unused = AtomicI32::new(0);
        let context = ChildContext {
            launch: self,
            argv: &argv,
            envp: envp.as_deref(),
            groups: &groups,
            failure: &unused,
        };
        // SAFETY: runsv is single-threaded; the child only makes system calls on data
        // prepared above, then execs or _exits.
        match unsafe { nix::unistd::fork() } {
            Err(errno) => Err(describe_failure(&self.display, errno)),
            Ok(nix::unistd::ForkResult::Child) => {
                self.child(&context, Report::Pipe(report_write.as_raw_fd()))
            }
            Ok(nix::unistd::ForkResult::Parent { child }) => Ok(Started {
                pid: child,
                report: report_read,
                display: self.display.clone(),
            }),
        }
    }

    /// Starts the process and returns its pid once exec has succeeded, or the OS's
    /// reason exec (or the set-up before it) failed; the failed child is reaped here.
    ///
    /// The child is a vfork-style clone (CLONE_VM | CLONE_VFORK, on a stack of its own,
    /// as glibc's posix_spawn does): no copy of runsv's page tables, and runsv resumes
    /// the moment the child's exec has replaced its memory, which is how it knows exec
    /// succeeded, without a pipe. A failing child leaves its errno in `failure`, memory
    /// the two share, before it exits.
    pub fn spawn(&self) -> Result<Pid, String> {
        let argv: Vec<*const libc::c_char> = pointer_array(&self.argv);
        let envp: Option<Vec<*const libc::c_char>> = self.envp.as_ref().map(|e| pointer_array(e));
        let groups: Vec<libc::gid_t> = self
            .credentials
            .as_ref()
            .map(|c| c.supplementary_groups.clone())
            .unwrap_or_default();
        let failure = AtomicI32::new(0);
        let context = ChildContext {
            launch: self,
            argv: &argv,
            envp: envp.as_deref(),
            groups: &groups,
            failure: &failure,
        };
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
            errno => {
                let _ = nix::sys::wait::waitpid(child, None);
                Err(describe_failure(&self.display, Errno::from_raw(errno)))
            }
        }
    }

    /// In the child: set up and exec; on failure, report the errno and exit 111
    /// (runit's code for a run that could not be exec'd).
    fn child(&self, context: &ChildContext, report: Report) -> ! {
        let (argv, envp, groups) = (context.argv, context.envp, context.groups);
        let mut report = report;
        let fail = |report: Report| -> ! {
            let errno = match Errno::last() as i32 {
                0 => libc::EIO,
                errno => errno,
            };
            match report {
                Report::Shared(failure) => failure.store(errno, Ordering::SeqCst),
                Report::Pipe(fd) => {
                    let bytes = errno.to_ne_bytes();
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
            for signal in 1..32 {
                if signal != libc::SIGKILL && signal != libc::SIGSTOP {
                    libc::signal(signal, libc::SIG_DFL);
                }
            }
            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut empty);
            libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());

            if let (Some((_, target)), Report::Pipe(fd)) = (self.extra_fd, report) {
                // The readiness fd's number must not clobber the report pipe.
                if fd == target {
                    report = Report::Pipe(libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3));
                }
            }
            for (number, source) in self.stdio.iter().enumerate() {
                if let Stdio::Fd(fd) = *source {
                    if libc::dup2(fd, number as RawFd) < 0 {
                        fail(report);
                    }
                }
            }
            if let Some((source, target)) = self.extra_fd {
                if source == target {
                    libc::fcntl(source, libc::F_SETFD, 0);
                } else if libc::dup2(source, target) < 0 {
                    fail(report);
                }
            }
            if libc::chdir(self.directory.as_ptr()) < 0 {
                fail(report);
            }
            if let Some(credentials) = &self.credentials {
                if libc::setgroups(groups.len(), groups.as_ptr()) < 0
                    || libc::setgid(credentials.gid) < 0
                    || libc::setuid(credentials.uid) < 0
                {
                    fail(report);
                }
            }
            match envp {
                Some(envp) => libc::execve(self.program.as_ptr(), argv.as_ptr(), envp.as_ptr()),
                None => libc::execv(self.program.as_ptr(), argv.as_ptr()),
            };
            fail(report)
        }
    }
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
    /// the errno into it first.
    Pipe(RawFd),
}

/// A process forked by [`Launch::start`], whose exec may still be under way.
pub struct Started {
    pid: Pid,
    report: OwnedFd,
    display: String,
}

impl Started {
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// Waits until the child has exec'd (Ok) or failed to (the OS's reason; the child
    /// is reaped here).
    pub fn confirm(self) -> Result<(), String> {
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
        Err(describe_failure(
            &self.display,
            Errno::from_raw(i32::from_ne_bytes(bytes)),
        ))
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

/// Field 22 of /proc/PID/stat: when the process started, in clock ticks after boot.
/// With the pid, it names a process for good (a pid alone can be reused).
pub fn start_time(pid: u32) -> Option<u64> {
    use std::io::Read;
    // One read: the whole line is well under a page, and procfs returns it at once.
    let mut file = std::fs::File::open(format!("/proc/{pid}/stat")).ok()?;
    let mut buffer = [0u8; 1024];
    let length = file.read(&mut buffer).ok()?;
    let stat = std::str::from_utf8(&buffer[..length]).ok()?;
    // The command name (field 2) may contain spaces and parentheses: skip past the last ')'.
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(19)?.parse().ok()
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
mod tests {
    use super::*;

    #[test]
    fn start_time_of_this_process() {
        let me = std::process::id();
        let first = start_time(me).expect("own start time");
        assert_eq!(start_time(me), Some(first));
        assert_eq!(start_time(u32::MAX), None);
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
