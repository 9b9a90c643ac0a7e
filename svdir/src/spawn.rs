//! Starting `runsv NAME` cheaply: everything is prepared before fork, and the child
//! makes only async-signal-safe system calls — unblock every signal (svdir keeps its
//! signals blocked for the signalfd, and a mask is inherited across exec), every
//! ignored signal back to default (SIGPIPE, which the Rust runtime ignores, and any a
//! parent left ignored: that too survives exec), working directory = the scan directory,
//! stdin = /dev/null — then exec. The parent does not wait for the exec: a failed exec
//! prints the reason and exits 111, which svdir sees as any other quick death.

use nix::errno::Errno;
use nix::libc;
use nix::unistd::Pid;
use std::ffi::{CString, OsStr};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

pub struct Spawner {
    program: CString,
    argv0: CString,
    null: OwnedFd,
    /// Signals svdir found ignored at start (besides SIGPIPE): an ignored disposition
    /// survives exec, so the child sets them back to default.
    ignored: Vec<libc::c_int>,
    /// While a batch is being spawned: a pipe whose read end the children wait on
    /// before exec, so that forking the batch does not compete for the CPU with a
    /// thousand execs; closed by `end_batch`.
    barrier: Option<(OwnedFd, OwnedFd)>,
    batching: bool,
    /// svdir's own descriptor limit as it was given, restored in every child when svdir
    /// raised its own (`raise_fd_limit`): services keep the limit they would have had.
    nofile: Option<libc::rlimit>,
}

/// Raises svdir's soft limit on open files to the hard limit (it keeps a directory fd
/// per adopted runsv); returns the limit it had, for the children, if it changed it.
pub fn raise_fd_limit() -> Option<libc::rlimit> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return None;
    }
    if limit.rlim_cur >= limit.rlim_max {
        return None;
    }
    let raised = libc::rlimit {
        rlim_cur: limit.rlim_max,
        rlim_max: limit.rlim_max,
    };
    // SAFETY: setrlimit reads the struct it is given.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
        return None;
    }
    Some(limit)
}

/// The current soft limit on open files.
pub fn fd_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return 1024;
    }
    limit.rlim_cur
}

/// The kernel's `struct sigaction` is four words on every architecture this runs on,
/// the handler first; all zero is SIG_DFL with no flags and an empty mask.
type KernelSigaction = [libc::c_ulong; 4];
const KERNEL_SIGSET_BYTES: usize = 8;

/// The signals whose disposition is SIG_IGN, asked with the raw system call (glibc's
/// sigaction refuses 32 and 33, which a runtime may have left ignored).
fn ignored_signals() -> Vec<libc::c_int> {
    let mut ignored = vec![libc::SIGPIPE];
    for signo in 1..=libc::SIGRTMAX() {
        if signo == libc::SIGKILL || signo == libc::SIGSTOP || signo == libc::SIGPIPE {
            continue;
        }
        let mut old: KernelSigaction = [0; 4];
        // SAFETY: rt_sigaction with no new action only fills `old`, which is large
        // enough for the kernel's struct.
        let result = unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                signo,
                std::ptr::null::<libc::c_void>(),
                old.as_mut_ptr(),
                KERNEL_SIGSET_BYTES,
            )
        };
        if result == 0 && old[0] == libc::SIG_IGN as libc::c_ulong {
            ignored.push(signo);
        }
    }
    ignored
}

impl Spawner {
    pub fn new(program: &Path, nofile: Option<libc::rlimit>) -> std::io::Result<Spawner> {
        let program = CString::new(program.as_os_str().as_bytes())
            .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
        let argv0 =
            CString::new("runsv").map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
        let null = runsv::launch::open_null()?;
        Ok(Spawner {
            program,
            argv0,
            null,
            ignored: ignored_signals(),
            barrier: None,
            batching: false,
            nofile,
        })
    }

    /// Children spawned from now on wait for `end_batch` before they exec.
    pub fn begin_batch(&mut self) {
        self.batching = true;
    }

    /// Lets the children of the batch go on to exec.
    pub fn end_batch(&mut self) {
        self.batching = false;
        self.barrier = None;
    }

    /// Forks `runsv NAME` with `directory` (the scan directory) as working directory.
    pub fn spawn(&mut self, name: &OsStr, directory: BorrowedFd<'_>) -> Result<Pid, Errno> {
        if self.batching && self.barrier.is_none() {
            // Without a barrier (no fds left) the batch simply is not held back.
            self.barrier = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ok();
        }
        let argument = CString::new(name.as_bytes()).map_err(|_| Errno::EINVAL)?;
        let argv: [*const libc::c_char; 3] =
            [self.argv0.as_ptr(), argument.as_ptr(), std::ptr::null()];
        let mut prefix = b"svdir: ".to_vec();
        prefix.extend_from_slice(name.as_bytes());
        prefix.extend_from_slice(b": unable to start runsv: ");
        // SAFETY: sigemptyset initialises the set it is given.
        let empty = unsafe {
            let mut set = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
            libc::sigemptyset(set.as_mut_ptr());
            set.assume_init()
        };
        let child = Child {
            program: &self.program,
            argv: &argv,
            directory: directory.as_raw_fd(),
            null: self.null.as_raw_fd(),
            empty: &empty,
            prefix: &prefix,
            ignored: &self.ignored,
            nofile: self.nofile.as_ref(),
            barrier: self
                .barrier
                .as_ref()
                .map(|(read, write)| (read.as_raw_fd(), write.as_raw_fd())),
        };
        // SAFETY: svdir has a single thread; the child only makes async-signal-safe
        // system calls on memory prepared before the fork, then execs or _exits.
        match unsafe { libc::fork() } {
            -1 => Err(Errno::last()),
            0 => child.exec(),
            pid => Ok(Pid::from_raw(pid)),
        }
    }
}

struct Child<'a> {
    program: &'a CString,
    argv: &'a [*const libc::c_char; 3],
    directory: RawFd,
    null: RawFd,
    empty: &'a libc::sigset_t,
    prefix: &'a [u8],
    ignored: &'a [libc::c_int],
    nofile: Option<&'a libc::rlimit>,
    barrier: Option<(RawFd, RawFd)>,
}

impl Child<'_> {
    fn exec(&self) -> ! {
        // SAFETY: see `spawn`: only system calls, no allocation, no locks.
        unsafe {
            if let Some((read, write)) = self.barrier {
                // EOF once svdir and every child of the batch closed the write end.
                libc::close(write);
                let mut byte = 0u8;
                while libc::read(read, (&mut byte as *mut u8).cast(), 1) < 0
                    && *libc::__errno_location() == libc::EINTR
                {}
                libc::close(read);
            }
            libc::sigprocmask(libc::SIG_SETMASK, self.empty, std::ptr::null_mut());
            if let Some(limit) = self.nofile {
                libc::setrlimit(libc::RLIMIT_NOFILE, limit);
            }
            let default: KernelSigaction = [0; 4];
            for &signo in self.ignored {
                libc::syscall(
                    libc::SYS_rt_sigaction,
                    signo,
                    default.as_ptr(),
                    std::ptr::null_mut::<libc::c_void>(),
                    KERNEL_SIGSET_BYTES,
                );
            }
            if libc::fchdir(self.directory) != 0 {
                self.fail(b"chdir to the scan directory: ");
            }
            if libc::dup2(self.null, 0) < 0 {
                self.fail(b"stdin: ");
            }
            libc::execv(self.program.as_ptr(), self.argv.as_ptr());
            self.fail(b"");
        }
    }

    /// Writes `svdir: NAME: unable to start runsv: WHAT ERRNO-TEXT` in one write, and
    /// exits 111.
    fn fail(&self, what: &[u8]) -> ! {
        // SAFETY: __errno_location is async-signal-safe.
        let errno = unsafe { *libc::__errno_location() };
        let text = runsv::errno_text::runit_text(errno).as_bytes();
        let mut line = [0u8; 1024];
        let mut length = 0;
        for part in [self.prefix, what, text, b"\n"] {
            for &byte in part {
                if let Some(slot) = line.get_mut(length) {
                    *slot = byte;
                    length += 1;
                }
            }
        }
        // SAFETY: writing our own stack buffer to fd 2, then leaving without unwinding.
        unsafe {
            libc::write(2, line.as_ptr().cast(), length);
            libc::_exit(111)
        }
    }
}

/// The runsv to run: `RUNTREE_RUNSV`, else `runsv` beside svdir's own executable, else
/// the first `runsv` in PATH (relative PATH entries are skipped).
pub fn find_runsv() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("RUNTREE_RUNSV").filter(|p| !p.is_empty()) {
        // Absolute: the child changes to the scan directory before it execs.
        let path = PathBuf::from(path);
        return Some(std::path::absolute(&path).unwrap_or(path));
    }
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("runsv")))
        .filter(|path| is_executable(path));
    if beside.is_some() {
        return beside;
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join("runsv"))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
