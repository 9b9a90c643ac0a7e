//! Running a command to completion, timed from its spawn to its exit.

use nix::libc;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::io::Read;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub struct Ran {
    /// From just before the spawn to the moment the process was seen to exit.
    pub elapsed: Duration,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    pub fn describe(&self, command: &Command) -> String {
        let program = std::path::Path::new(command.get_program())
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let args: Vec<String> = command
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        format!(
            "`{program} {}`: {}",
            args.join(" "),
            first_line(&self.stderr, &self.stdout)
        )
    }
}

pub fn first_line<'a>(preferred: &'a str, fallback: &'a str) -> &'a str {
    let text = if preferred.trim().is_empty() {
        fallback
    } else {
        preferred
    };
    text.lines().next().unwrap_or("").trim()
}

/// Runs a command to completion, capturing its output, and times it. The exit is waited
/// for through a pidfd, in the same poll as the output pipes: no sleep step blurs a
/// measurement of a few milliseconds, and a hung command is killed at `timeout` (it is
/// still unreaped then, so the kill cannot hit another process).
pub fn run_timed(command: &mut Command, timeout: Duration) -> Result<Ran, String> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let deadline = start + timeout;
    let mut child = command
        .spawn()
        .map_err(|e| format!("{:?}: {e}", command.get_program()))?;
    // SAFETY: pidfd_open takes a pid and flags, no pointer; the child is not reaped
    // yet, so its pid cannot name another process.
    let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, child.id() as libc::pid_t, 0) };
    if raw < 0 {
        let error = std::io::Error::last_os_error();
        let _ = child.kill();
        let _ = child.wait();
        return Err(format!("pidfd_open: {error}"));
    }
    // SAFETY: `raw` is a descriptor pidfd_open just returned (checked non-negative),
    // owned by nothing else.
    let pidfd = unsafe { OwnedFd::from_raw_fd(raw as i32) };
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let mut out = Vec::new();
    let mut err = Vec::new();
    let (mut out_open, mut err_open) = (true, true);
    let mut exited: Option<(ExitStatus, Duration)> = None;
    loop {
        if let (Some((status, elapsed)), false, false) = (exited, out_open, err_open) {
            return Ok(Ran {
                elapsed,
                status,
                stdout: String::from_utf8_lossy(&out).into_owned(),
                stderr: String::from_utf8_lossy(&err).into_owned(),
            });
        }
        let now = Instant::now();
        if now >= deadline {
            if exited.is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
            return Err(format!(
                "{:?} did not finish within {}s",
                command.get_program(),
                timeout.as_secs()
            ));
        }
        let wait = u16::try_from((deadline - now).as_millis()).unwrap_or(u16::MAX);
        let never = PollFlags::empty();
        let mut fds = [
            PollFd::new(
                pidfd.as_fd(),
                if exited.is_none() {
                    PollFlags::POLLIN
                } else {
                    never
                },
            ),
            PollFd::new(
                stdout.as_fd(),
                if out_open { PollFlags::POLLIN } else { never },
            ),
            PollFd::new(
                stderr.as_fd(),
                if err_open { PollFlags::POLLIN } else { never },
            ),
        ];
        match poll(&mut fds, PollTimeout::from(wait)) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(format!("poll: {e}")),
        }
        let ready = |fd: &PollFd| {
            fd.revents()
                .is_some_and(|r| r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP))
        };
        let [exit_fd, out_fd, err_fd] = &fds;
        let (exit_ready, out_ready, err_ready) = (ready(exit_fd), ready(out_fd), ready(err_fd));
        if exit_ready && exited.is_none() {
            let status = child.wait().map_err(|e| format!("wait: {e}"))?;
            exited = Some((status, start.elapsed()));
        }
        let mut chunk = [0u8; 65536];
        if out_ready && out_open {
            match stdout.read(&mut chunk) {
                Ok(0) | Err(_) => out_open = false,
                Ok(n) => out.extend_from_slice(&chunk[..n]),
            }
        }
        if err_ready && err_open {
            match stderr.read(&mut chunk) {
                Ok(0) | Err(_) => err_open = false,
                Ok(n) => err.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

/// The log a started program writes its stderr to, opened for appending: the runs of
/// a suite share one, read back for the reasons of failures.
pub fn append_log(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
}
