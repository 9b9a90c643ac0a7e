//! Taking over what a killed runsv left behind: the `run` it supervised (followed
//! through a pidfd, since it is no longer runsv's child) and the pipe between that
//! service and its logger (fetched from the processes themselves with pidfd_getfd, so
//! no line is lost and the logger stays connected).
//!
//! Everything here can fail (an old kernel without pidfd_getfd, a process that
//! redirected its own output, a ptrace restriction): the caller then stops the old
//! process before it starts a new one, so there are never two.

use nix::libc;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// A pidfd for `pid` (not necessarily a child): readable once the process has ended.
pub fn pidfd_open(pid: u32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: a fresh fd we own.
    Some(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// A copy of the process's fd `target` (close-on-exec, as pidfd_getfd makes it).
pub fn fd_of(pidfd: &OwnedFd, target: RawFd) -> Option<OwnedFd> {
    // SAFETY: pidfd_getfd returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), target, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: a fresh fd we own.
    Some(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// The pipe's identity, if `fd` is one end of a pipe.
pub fn pipe_identity(fd: &OwnedFd) -> Option<(u64, u64)> {
    let stat = nix::sys::stat::fstat(fd.as_raw_fd()).ok()?;
    (stat.st_mode & libc::S_IFMT == libc::S_IFIFO).then_some((stat.st_dev, stat.st_ino))
}

/// The other end of the pipe `fd` is one end of: a pipe opened through /proc is the
/// same pipe, in the mode asked for. `blocking` clears O_NONBLOCK after the open
/// (which is non-blocking so that it can never wait for a peer).
pub fn other_end(fd: &OwnedFd, write: bool, blocking: bool) -> Option<OwnedFd> {
    let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    let mode = if write {
        nix::fcntl::OFlag::O_WRONLY
    } else {
        nix::fcntl::OFlag::O_RDONLY
    };
    let flags = mode | nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK;
    let raw = nix::fcntl::open(path.as_str(), flags, nix::sys::stat::Mode::empty()).ok()?;
    // SAFETY: a fresh fd we own.
    let end = unsafe { OwnedFd::from_raw_fd(raw) };
    if blocking {
        let mut flags = nix::fcntl::OFlag::from_bits_truncate(
            nix::fcntl::fcntl(end.as_raw_fd(), nix::fcntl::FcntlArg::F_GETFL).ok()?,
        );
        flags.remove(nix::fcntl::OFlag::O_NONBLOCK);
        nix::fcntl::fcntl(end.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFL(flags)).ok()?;
    }
    Some(end)
}

/// A process that holds runsv's ends of the output pipes and does nothing else, so that
/// the pipes keep a reader (and a logger's pipe a writer) when runsv is killed: the
/// service's writes wait in the pipe (and block it once the pipe is full) instead of
/// killing it with SIGPIPE, and a logger sees no end of file, until the next runsv
/// takes the pipes from the keeper and moves on what waited. It never reads (it would take lines
/// away), sleeps with runsv's signals blocked, and ends by SIGKILL from the runsv that
/// exits or takes over — or by SIGTERM once its runsv is gone (see `keep`). Its pid
/// and start time are in `supervise/keeper`.
pub struct Keeper {
    pid: nix::unistd::Pid,
    /// Opened while the keeper was an unreaped child, so it names that process for
    /// good: a keeper that died and was reaped leaves a pid another process may get.
    pidfd: Option<OwnedFd>,
}

impl Keeper {
    /// Forks the keeper of `ends` and records it in `record` (supervise/keeper).
    pub fn start(ends: [RawFd; 2], record: &std::path::Path) -> Option<Keeper> {
        let runsv = nix::unistd::getpid().as_raw();
        // SAFETY: runsv is single-threaded; the child only makes system calls, then
        // sleeps until it is killed.
        match unsafe { nix::unistd::fork() } {
            Err(_) => None,
            Ok(nix::unistd::ForkResult::Child) => keep(ends, runsv),
            Ok(nix::unistd::ForkResult::Parent { child }) => {
                let pid = child.as_raw() as u32;
                let pidfd = pidfd_open(pid);
                let starttime = runsv::proc::start_time(pid).unwrap_or(0);
                let text = format!("{pid} {starttime}\n");
                let _ = runsv::supervise::write_atomically(record, text.as_bytes(), 0o644);
                Some(Keeper { pid: child, pidfd })
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.pid.as_raw() as u32
    }

    /// Ends it (runsv exits or hands over); the caller's reaping collects it. The
    /// caller drops a keeper it has reaped (see `pid`), so this one is still its
    /// child, alive or a zombie, whose pid nobody else can have; the pidfd makes that
    /// certain where the kernel has one (5.3).
    pub fn stop(self) {
        match &self.pidfd {
            Some(pidfd) => {
                pidfd_signal(pidfd, nix::sys::signal::Signal::SIGKILL);
            }
            None => {
                let _ = nix::sys::signal::kill(self.pid, nix::sys::signal::Signal::SIGKILL);
            }
        }
    }
}

/// Sends `signal` to the process `pidfd` names (never to another that got its pid);
/// false if it has ended.
pub fn pidfd_signal(pidfd: &OwnedFd, signal: nix::sys::signal::Signal) -> bool {
    // SAFETY: pidfd_send_signal with no siginfo returns 0 or -1.
    let result = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal as libc::c_int,
            std::ptr::null::<libc::siginfo_t>(),
            0u32,
        )
    };
    result == 0
}

/// Waits up to `timeout` for the process of `pidfd` to end; whether it has.
pub fn wait_ended(pidfd: &OwnedFd, timeout: std::time::Duration) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let millis = left.as_millis().min(i32::MAX as u128) as i32;
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        match poll(
            &mut fds,
            PollTimeout::try_from(millis).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(n) => return n > 0,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return false,
        }
    }
}

/// A pidfd for the process `pid` if it is the one that started at `starttime`: the
/// check comes after the open, so the pidfd names the very process checked.
pub fn verified_pidfd(pid: u32, starttime: u64) -> Option<OwnedFd> {
    if pid == 0 || starttime == 0 {
        return None;
    }
    let pidfd = pidfd_open(pid)?;
    (runsv::proc::start_time(pid) == Some(starttime)).then_some(pidfd)
}

/// Stops a process a killed predecessor left running (pid and start time as it
/// recorded them), and its group: `signal` and SIGCONT, then SIGKILL after `timeout`.
/// Returns once it is gone, or a second after SIGKILL.
pub fn stop_leftover(
    pid: u32,
    starttime: u64,
    signal: nix::sys::signal::Signal,
    timeout: std::time::Duration,
) {
    use nix::sys::signal::{killpg, Signal};
    let Some(pidfd) = verified_pidfd(pid, starttime) else {
        return; // gone already
    };
    let process = nix::unistd::Pid::from_raw(pid as i32);
    let send = |signal: Signal| {
        // The group it is in only while it is proven alive: then the group holds it
        // and is no other's (see `group_of`). Otherwise the process itself: once, as a
        // second TERM would run a trap twice.
        let alive = !wait_ended(&pidfd, std::time::Duration::ZERO);
        let group = runsv::launch::group_of(process).filter(|_| alive);
        if group.is_none_or(|group| killpg(group, signal).is_err()) {
            pidfd_signal(&pidfd, signal);
        }
    };
    send(signal);
    send(Signal::SIGCONT);
    if !wait_ended(&pidfd, timeout) {
        send(Signal::SIGKILL);
        wait_ended(&pidfd, std::time::Duration::from_secs(1));
    }
}

/// In the keeper: the two ends as fds 3 and 4, nothing else; then sleep until SIGTERM
/// finds `runsv` (the parent) gone.
///
/// Why TERM counts only then: while runsv lives, a TERM reaching the keeper is one sent
/// to runsv's whole group (svdir's stop does that) and is runsv's business; the keeper
/// dying would only make runsv fork another, mid-stop. Once runsv is gone nothing
/// will take the pipes back but a new runsv, which kills this one itself, so a TERM
/// can only come from someone ending everything — init's final sweep, which would
/// otherwise wait its whole grace and end in SIGKILL for a process that holds nothing
/// anyone still needs.
fn keep(ends: [RawFd; 2], runsv: libc::pid_t) -> ! {
    // SAFETY: plain system calls on fds this process owns.
    unsafe {
        // Copies above 10 first, so that neither lands on the other's target.
        let copies = [
            libc::fcntl(ends[0], libc::F_DUPFD, 10),
            libc::fcntl(ends[1], libc::F_DUPFD, 10),
        ];
        libc::dup2(copies[0], 3);
        libc::dup2(copies[1], 4);
        for fd in 0..3 {
            libc::close(fd);
        }
        libc::syscall(libc::SYS_close_range, 5u32, u32::MAX, 0u32);
        let name = b"runsv: keeper\0";
        libc::prctl(libc::PR_SET_NAME, name.as_ptr());
        // TERM, HUP and INT stay blocked as runsv left them (it reads them from a
        // signalfd): TERM is taken here, the others wait unread.
        let mut term: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut term);
        libc::sigaddset(&mut term, libc::SIGTERM);
        loop {
            if libc::sigwaitinfo(&term, std::ptr::null_mut()) == libc::SIGTERM
                && libc::getppid() != runsv
            {
                libc::_exit(0);
            }
        }
    }
}

/// The keeper a killed runsv left (recorded in `record`), if it still is that process:
/// its pid, after the checks that make the record trustworthy.
fn old_keeper(record: &std::path::Path) -> Option<u32> {
    // Like `state`, the record names a process to kill: only one runsv wrote counts
    // (not a link, owned by runsv's user).
    use std::io::Read;
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(record)
        .ok()?;
    if file.metadata().map(|m| m.uid()).ok() != Some(nix::unistd::geteuid().as_raw()) {
        return None;
    }
    let mut text = String::new();
    file.read_to_string(&mut text).ok()?;
    let mut fields = text.split_whitespace().map(|f| f.parse::<u64>().ok());
    let (Some(Some(pid)), Some(Some(starttime))) = (fields.next(), fields.next()) else {
        return None;
    };
    let pid = u32::try_from(pid).ok()?;
    (pid != 0 && runsv::proc::start_time(pid) == Some(starttime)).then_some(pid)
}

/// The old keeper's pid and a pidfd checked (after its open) to be that process.
fn old_keeper_pidfd(record: &std::path::Path) -> Option<(u32, OwnedFd)> {
    let pid = old_keeper(record)?;
    let pidfd = pidfd_open(pid)?;
    old_keeper(record).filter(|&again| again == pid)?;
    Some((pid, pidfd))
}

/// Kills the keeper a killed runsv left (recorded in `record`), if it still is that
/// process: its pipes are taken over (or its service was stopped) by now.
pub fn stop_old_keeper(record: &std::path::Path) {
    if let Some((_, pidfd)) = old_keeper_pidfd(record) {
        pidfd_signal(&pidfd, nix::sys::signal::Signal::SIGKILL);
    }
}

/// Copies of the two pipe ends the old keeper holds (its fds 3 and 4), if it lives and
/// they are open for reading (`true`) or writing (`false`) as `modes` says: what the
/// old runsv's output was (relay or tee) decides what they are, and an output of
/// another kind now cannot use them.
pub fn old_keeper_ends(record: &std::path::Path, modes: [bool; 2]) -> Option<[OwnedFd; 2]> {
    let (_, pidfd) = old_keeper_pidfd(record)?;
    let ends = [fd_of(&pidfd, 3)?, fd_of(&pidfd, 4)?];
    for (end, reading) in ends.iter().zip(modes) {
        pipe_identity(end)?;
        let flags = nix::fcntl::fcntl(end.as_raw_fd(), nix::fcntl::FcntlArg::F_GETFL).ok()?;
        let wanted = if reading {
            libc::O_RDONLY
        } else {
            libc::O_WRONLY
        };
        if flags & libc::O_ACCMODE != wanted {
            return None;
        }
    }
    Some(ends)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn the_other_end_of_a_pipe_is_the_same_pipe() {
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        let again = other_end(&write, false, true).expect("a read end through /proc");
        assert_eq!(pipe_identity(&again), pipe_identity(&read));
        drop(read);
        let mut writer = std::fs::File::from(write);
        writer.write_all(b"line\n").unwrap();
        drop(writer);
        let mut text = String::new();
        std::fs::File::from(again)
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "line\n");
    }

    #[test]
    fn a_regular_file_is_no_pipe() {
        let file = tempfile::tempfile().unwrap();
        assert_eq!(pipe_identity(&OwnedFd::from(file)), None);
    }

    #[test]
    fn an_fd_of_this_very_process() {
        let me = pidfd_open(std::process::id()).expect("pidfd of self");
        let (read, _write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        let copy = fd_of(&me, read.as_raw_fd()).expect("pidfd_getfd");
        assert_eq!(pipe_identity(&copy), pipe_identity(&read));
    }
}
