//! The container's main program: `init [options] -- CMD ARGS...`. CMD runs in the
//! foreground with init's stdin and terminal, gets the signals init is sent, and when
//! it exits the tree stops and init exits with CMD's code (128+n for a signal), as
//! tini and s6-overlay do. The code is also written to EXIT_CODE_FILE.

use crate::log::log;
use crate::signals;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::WaitStatus;
use nix::unistd::Pid;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// Where init's exit code is kept for whoever looks after the container is gone (a
/// volume on /run, a debugging shell): s6-overlay's convention, under our name.
/// `RUNTREE_EXIT_CODE_FILE` names another file.
pub const EXIT_CODE_FILE: &str = "/run/runtree/exitcode";

/// Signals passed on to CMD instead of being acted on: what an engine or a terminal
/// sends to "the container's program". SIGUSR2 and SIGPWR (`init 0`, a UPS) still
/// stop the tree directly; the stop's sweep then ends CMD too.
pub fn forwarded(signo: i32) -> bool {
    signo == signals::SYSTEMD_HALT
        || matches!(
            Signal::try_from(signo),
            Ok(Signal::SIGTERM
                | Signal::SIGINT
                | Signal::SIGHUP
                | Signal::SIGQUIT
                | Signal::SIGUSR1
                | Signal::SIGWINCH)
        )
}

/// The container's exit code for CMD's wait status.
pub fn code(status: WaitStatus) -> Option<i32> {
    match status {
        WaitStatus::Exited(_, code) => Some(code),
        WaitStatus::Signaled(_, signal, _) => Some(128 + signal as i32),
        _ => None,
    }
}

/// Starts CMD in a process group of its own, which becomes the terminal's foreground
/// group when stdin is a terminal: Ctrl-C then reaches CMD alone (not init, which
/// would forward it a second time), as with tini.
pub fn spawn(argv: &[String]) -> std::io::Result<Pid> {
    let Some((program, args)) = argv.split_first() else {
        return Err(std::io::Error::other("no command after --"));
    };
    let mut command = Command::new(program);
    command.args(args);
    if std::env::var_os("PATH").is_none() {
        command.env("PATH", crate::svdir::DEFAULT_PATH);
    }
    // SAFETY: only async-signal-safe calls between fork and exec. SIGTTOU is still
    // blocked here (init's mask), so tcsetpgrp from the new group is not stopped.
    unsafe {
        command.pre_exec(|| {
            nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0))
                .map_err(std::io::Error::from)?;
            if nix::unistd::isatty(0).unwrap_or(false) {
                let _ = nix::libc::tcsetpgrp(0, nix::libc::getpid());
            }
            signals::reset_for_child()
        });
    }
    let child = command.spawn()?;
    let raw = i32::try_from(child.id()).map_err(|_| std::io::Error::other("pid out of range"))?;
    Ok(Pid::from_raw(raw))
}

pub fn forward(pid: Pid, signo: i32) {
    // SAFETY: kill with a live child's pid and a signal number from the kernel.
    let sent = unsafe { nix::libc::kill(pid.as_raw(), signo) };
    if sent != 0 {
        log!(
            "passing {} to the main program (pid {pid}): {}",
            signals::name(signo),
            std::io::Error::last_os_error()
        );
    }
    // A stopped CMD would never see it.
    let _ = kill(pid, Signal::SIGCONT);
}

/// Records the code in EXIT_CODE_FILE (with its parents); a failure is reported.
pub fn record(code: i32) {
    let path = std::env::var_os("RUNTREE_EXIT_CODE_FILE")
        .filter(|p| !p.is_empty())
        .map_or_else(|| std::path::PathBuf::from(EXIT_CODE_FILE), Into::into);
    let written = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::write(&path, format!("{code}\n")));
    if let Err(e) = written {
        log!("cannot write {}: {e}", path.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        let pid = Pid::from_raw(5);
        assert_eq!(code(WaitStatus::Exited(pid, 3)), Some(3));
        assert_eq!(
            code(WaitStatus::Signaled(pid, Signal::SIGTERM, false)),
            Some(143)
        );
        assert_eq!(code(WaitStatus::Stopped(pid, Signal::SIGSTOP)), None);
    }

    #[test]
    fn what_is_passed_on() {
        assert!(forwarded(nix::libc::SIGTERM));
        assert!(forwarded(nix::libc::SIGINT));
        assert!(forwarded(37));
        assert!(!forwarded(nix::libc::SIGUSR2));
        assert!(!forwarded(nix::libc::SIGCHLD));
        assert!(!forwarded(nix::libc::SIGPWR));
    }
}
