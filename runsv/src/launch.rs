//! Starting a process with a clean state: its own session and process group, an empty
//! signal mask and default dispositions, the chosen fds, working directory, user and
//! environment — and learning whether exec itself failed, with the OS's reason.
//!
//! Everything the child needs is prepared before fork; between fork and exec the child
//! makes only system calls (no allocation), as required after fork.

use crate::definition::Credentials;
use nix::errno::Errno;
use nix::libc;
use nix::unistd::{fork, ForkResult, Pid};
use std::ffi::{CString, OsStr, OsString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

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

    /// Forks and execs. Returns the pid once exec has succeeded, or the OS's reason
    /// exec (or the set-up before it) failed; the failed child is reaped here.
    pub fn spawn(&self) -> Result<Pid, String> {
        let (report_read, report_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| describe_failure(&self.display, e))?;
        let argv: Vec<*const libc::c_char> = pointer_array(&self.argv);
        let envp: Option<Vec<*const libc::c_char>> = self.envp.as_ref().map(|e| pointer_array(e));
        let groups: Vec<libc::gid_t> = self
            .credentials
            .as_ref()
            .map(|c| c.supplementary_groups.clone())
            .unwrap_or_default();
        // SAFETY: runsv is single-threaded; the child only makes system calls on data
        // prepared above, then execs or _exits.
        match unsafe { fork() } {
            Err(errno) => Err(describe_failure(&self.display, errno)),
            Ok(ForkResult::Child) => {
                self.child(report_write.as_raw_fd(), &argv, envp.as_deref(), &groups)
            }
            Ok(ForkResult::Parent { child }) => {
                drop(report_write);
                let mut bytes = [0u8; 4];
                let mut got = 0;
                loop {
                    match nix::unistd::read(report_read.as_raw_fd(), &mut bytes[got..]) {
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
                if got == bytes.len() {
                    let _ = nix::sys::wait::waitpid(child, None);
                    Err(describe_failure(
                        &self.display,
                        Errno::from_raw(i32::from_ne_bytes(bytes)),
                    ))
                } else {
                    Ok(child)
                }
            }
        }
    }

    /// In the child, after fork: set up and exec; on failure, write the errno to
    /// `report` and exit 111 (runit's code for a run that could not be exec'd).
    fn child(
        &self,
        report: RawFd,
        argv: &[*const libc::c_char],
        envp: Option<&[*const libc::c_char]>,
        groups: &[libc::gid_t],
    ) -> ! {
        let mut report = report;
        // SAFETY: plain system calls in the child.
        let fail = |report: RawFd| -> ! {
            let bytes = (Errno::last() as i32).to_ne_bytes();
            unsafe {
                libc::write(report, bytes.as_ptr().cast(), bytes.len());
                libc::_exit(111)
            }
        };
        // SAFETY: each call is a plain system call on memory prepared before fork.
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

            if let Some((_, target)) = self.extra_fd {
                // The readiness fd's number must not clobber the report pipe.
                if report == target {
                    report = libc::fcntl(report, libc::F_DUPFD_CLOEXEC, 3);
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
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
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
