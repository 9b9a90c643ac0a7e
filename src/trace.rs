//! ptrace of one runsv, by the test's thread (the tracer must be one thread): runsv
//! stops right after it starts `run` (or `finish`), or at a chosen system call, and is
//! SIGKILLed there. PTRACE_O_EXITKILL: if the test dies, so does runsv.

use nix::libc;
use nix::unistd::Pid;
use std::fs;

pub fn seize(pid: Pid, options: libc::c_int) {
    // SAFETY: ptrace on a pid, no memory passed but the option bits.
    let result = unsafe {
        libc::ptrace(
            libc::PTRACE_SEIZE,
            pid.as_raw(),
            0,
            (options | libc::PTRACE_O_EXITKILL) as libc::c_long,
        )
    };
    assert_eq!(result, 0, "PTRACE_SEIZE: {}", nix::errno::Errno::last());
}

/// The next stop or end of a tracee: waitpid's raw status.
pub fn wait(pid: Pid) -> libc::c_int {
    let mut status = 0;
    // SAFETY: waitpid into a local.
    let result = unsafe { libc::waitpid(pid.as_raw(), &mut status, libc::__WALL) };
    assert_eq!(
        result,
        pid.as_raw(),
        "waitpid: {}",
        nix::errno::Errno::last()
    );
    status
}

/// Resumes a stopped tracee, with `signal` (0: none), to its next system call
/// boundary if `syscalls`.
pub fn resume(pid: Pid, syscalls: bool, signal: libc::c_int) {
    let request = if syscalls {
        libc::PTRACE_SYSCALL
    } else {
        libc::PTRACE_CONT
    };
    // SAFETY: ptrace on a stopped tracee.
    unsafe { libc::ptrace(request, pid.as_raw(), 0, signal as libc::c_long) };
}

pub fn detach(pid: Pid) {
    // SAFETY: ptrace on a stopped tracee.
    unsafe { libc::ptrace(libc::PTRACE_DETACH, pid.as_raw(), 0, 0) };
}

/// The pid of the child a fork event reports.
pub fn event_message(pid: Pid) -> u32 {
    let mut message: libc::c_ulong = 0;
    // SAFETY: PTRACE_GETEVENTMSG writes one unsigned long.
    unsafe {
        libc::ptrace(
            libc::PTRACE_GETEVENTMSG,
            pid.as_raw(),
            0,
            &mut message as *mut libc::c_ulong,
        )
    };
    message as u32
}

#[cfg(target_arch = "x86_64")]
/// (system call number, first argument, third argument) at a system call stop.
pub fn syscall(pid: Pid) -> (i64, i64, i64) {
    // SAFETY: PTRACE_GETREGS fills a user_regs_struct.
    let mut regs: libc::user_regs_struct = unsafe { std::mem::zeroed() };
    unsafe {
        libc::ptrace(
            libc::PTRACE_GETREGS,
            pid.as_raw(),
            0,
            &mut regs as *mut libc::user_regs_struct,
        )
    };
    (regs.orig_rax as i64, regs.rdi as i64, regs.rdx as i64)
}

/// Runs runsv `pid` (seized with PTRACE_O_TRACEFORK) until its next fork (or
/// vfork-style clone, with PTRACE_O_TRACEVFORK); the child's pid, left stopped
/// and traced.
pub fn until_fork(pid: Pid) -> Pid {
    loop {
        let status = wait(pid);
        assert!(
            libc::WIFSTOPPED(status),
            "runsv ended before it forked: {status:#x}"
        );
        let fork = [libc::PTRACE_EVENT_FORK, libc::PTRACE_EVENT_VFORK]
            .iter()
            .any(|event| status >> 8 == (libc::SIGTRAP | (event << 8)));
        if fork {
            return Pid::from_raw(event_message(pid) as i32);
        }
        let signal = libc::WSTOPSIG(status);
        resume(pid, false, if signal == libc::SIGTRAP { 0 } else { signal });
    }
}

/// Runs runsv (seized with PTRACE_O_TRACEVFORK, PTRACE_O_TRACEVFORKDONE and
/// PTRACE_O_TRACEFORK) until it has started `run` or `finish` the way the launcher
/// does: a vfork-style session leader that clones the process as runsv's child, then
/// exits. The process is released to run on (to its gate), untraced, and returned;
/// runsv is left stopped where it resumes after the leader, the process created and
/// nothing of it published yet.
pub fn until_started(runsv: Pid) -> Pid {
    let leader = until_fork(runsv);
    // The leader starts in an event stop (seized tracer), then forks the process.
    let process = loop {
        let status = wait(leader);
        assert!(libc::WIFSTOPPED(status), "leader: {status:#x}");
        if status >> 8 == (libc::SIGTRAP | (libc::PTRACE_EVENT_FORK << 8)) {
            break Pid::from_raw(event_message(leader) as i32);
        }
        let signal = libc::WSTOPSIG(status);
        let event_stop = status >> 16 != 0;
        resume(
            leader,
            false,
            if event_stop || signal == libc::SIGTRAP {
                0
            } else {
                signal
            },
        );
    };
    release_child(process);
    detach(leader);
    resume(runsv, false, 0);
    loop {
        let status = wait(runsv);
        assert!(libc::WIFSTOPPED(status), "runsv: {status:#x}");
        if status >> 8 == (libc::SIGTRAP | (libc::PTRACE_EVENT_VFORK_DONE << 8)) {
            // VFORK_DONE is reported inside clone: runsv is taken on to that call's
            // syscall-exit stop, so that a caller tracing system calls next meets an
            // entry first (counting the clone's exit as an entry would shift every
            // later entry/exit pair by one, and a write be seen only once done).
            finish_syscall(runsv);
            return process;
        }
        let signal = libc::WSTOPSIG(status);
        resume(
            runsv,
            false,
            if signal == libc::SIGTRAP { 0 } else { signal },
        );
    }
}

/// Resumes runsv, stopped in a system call, to that call's syscall-exit stop.
fn finish_syscall(runsv: Pid) {
    resume(runsv, true, 0);
    loop {
        let status = wait(runsv);
        assert!(libc::WIFSTOPPED(status), "runsv: {status:#x}");
        let signal = libc::WSTOPSIG(status);
        let event_stop = status >> 16 != 0;
        if !event_stop && signal & 0x7f == libc::SIGTRAP {
            return;
        }
        resume(
            runsv,
            true,
            if event_stop || signal == libc::SIGTRAP {
                0
            } else {
                signal
            },
        );
    }
}

/// Lets a traced child (stopped at its start) run on, untraced.
pub fn release_child(child: Pid) {
    let status = wait(child);
    assert!(libc::WIFSTOPPED(status), "child: {status:#x}");
    detach(child);
}

/// Whether runsv's fd `fd` is a pipe `other` also has open.
pub fn pipe_shared_with(runsv: Pid, fd: i64, other: Pid) -> bool {
    let Ok(link) = fs::read_link(format!("/proc/{runsv}/fd/{fd}")) else {
        return false;
    };
    link.to_string_lossy().starts_with("pipe:")
        && fs::read_dir(format!("/proc/{other}/fd"))
            .map(|fds| {
                fds.flatten()
                    .any(|fd| fs::read_link(fd.path()).ok().as_ref() == Some(&link))
            })
            .unwrap_or(false)
}
