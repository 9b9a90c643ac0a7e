//! Which signal means what to PID 1, and how signals reach the event loop.
//!
//! Every catchable asynchronous signal is blocked and read from a signalfd: for PID 1
//! the kernel drops a signal whose disposition is the default, but queues a blocked
//! one, so blocking is what makes `kill -USR2 1` arrive at all (in a namespace and on
//! a machine alike). The synchronous signals are left alone (see `unblockable`).

use crate::Mode;
use nix::libc;
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Poweroff,
    Reboot,
    Halt,
}

impl Action {
    pub fn word(self) -> &'static str {
        match self {
            Action::Poweroff => "poweroff",
            Action::Reboot => "reboot",
            Action::Halt => "halt",
        }
    }

    /// The signal a client (`init 0`, `init 6`, `init halt`) sends to PID 1. These are
    /// busybox init's and sinit's, and mean the same in both modes.
    pub fn signal(self) -> Signal {
        match self {
            Action::Poweroff => Signal::SIGUSR2,
            Action::Reboot => Signal::SIGINT,
            Action::Halt => Signal::SIGUSR1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Response {
    Reap,
    Shutdown(Action),
    Ignore,
}

/// The signal table (docs/init.md shows the same table; keep them together).
pub fn response(signo: i32, mode: Mode) -> Response {
    match Signal::try_from(signo) {
        Ok(Signal::SIGCHLD) => Response::Reap,
        // A container runtime's `stop` is SIGTERM; on a machine SIGTERM to PID 1 means
        // reboot, as with busybox init.
        Ok(Signal::SIGTERM) => Response::Shutdown(match mode {
            Mode::Container => Action::Poweroff,
            Mode::Machine => Action::Reboot,
        }),
        // Ctrl-Alt-Del once reboot(RB_DISABLE_CAD) is in force; Ctrl-C of `docker run -it`.
        Ok(Signal::SIGINT) => Response::Shutdown(Action::Reboot),
        Ok(Signal::SIGUSR1) => Response::Shutdown(Action::Halt),
        Ok(Signal::SIGUSR2) | Ok(Signal::SIGPWR) => Response::Shutdown(Action::Poweroff),
        // What podman (and anything that takes `/sbin/init` for systemd) stops a
        // container with. On a machine it stays ignored: nothing there sends it to us.
        _ if signo == SYSTEMD_HALT && mode == Mode::Container => {
            Response::Shutdown(Action::Poweroff)
        }
        // Everything else, real-time signals included, is ignored (and logged once):
        // PID 1 has no use for job control, terminal or timer signals, and SIGHUP from a
        // vanished console must not do anything.
        _ => Response::Ignore,
    }
}

/// Signals that stay unblocked. The fault signals (SEGV, BUS, ILL, FPE, TRAP, SYS) are
/// raised by the faulting instruction itself; blocking them would only turn a fault
/// into a hang. SIGABRT is what `abort()` raises. Sent by another process to PID 1 with
/// the default disposition, the kernel discards all of them.
fn unblockable(signal: Signal) -> bool {
    matches!(
        signal,
        Signal::SIGSEGV
            | Signal::SIGBUS
            | Signal::SIGILL
            | Signal::SIGFPE
            | Signal::SIGTRAP
            | Signal::SIGSYS
            | Signal::SIGABRT
            | Signal::SIGKILL
            | Signal::SIGSTOP
    )
}

pub fn blocked_set() -> SigSet {
    // sigfillset also covers the real-time signals, which nix's enum cannot name.
    let mut set = SigSet::all();
    for signal in Signal::iterator() {
        if unblockable(signal) {
            set.remove(signal);
        }
    }
    set
}

/// The first real-time signal as glibc, systemd, Go (so podman and Docker) and
/// kill(1) number them. musl's SIGRTMIN is 35 (it keeps one more for itself), but a
/// sender does not know which C library the image has: the 37 podman sends for
/// systemd's "SIGRTMIN+3" is 37 whatever we were linked with, so names and meanings
/// count from here, never from our own libc's SIGRTMIN.
const RTMIN_AS_SENDERS_COUNT: i32 = 34;

/// systemd's SIGRTMIN+3 ("halt"): the stop signal podman uses for a container whose
/// command is /sbin/init.
pub const SYSTEMD_HALT: i32 = RTMIN_AS_SENDERS_COUNT + 3;

/// A signal's name, with its number where the name alone could mislead: real-time
/// names depend on who counts (see RTMIN_AS_SENDERS_COUNT).
pub fn name(signo: i32) -> String {
    match Signal::try_from(signo) {
        Ok(signal) => signal.as_str().to_string(),
        Err(_) if (RTMIN_AS_SENDERS_COUNT..=libc::SIGRTMAX()).contains(&signo) => {
            let offset = signo - RTMIN_AS_SENDERS_COUNT;
            if signo == libc::SIGRTMAX() {
                format!("SIGRTMAX ({signo})")
            } else if offset == 0 {
                format!("SIGRTMIN ({signo})")
            } else {
                format!("SIGRTMIN+{offset} ({signo})")
            }
        }
        // 32 and 33 (and 34 under musl): the C library's own, never sent by anyone
        // else; the number says it all.
        Err(_) => format!("signal {signo}"),
    }
}

/// Remembers which ignored signals were already reported, so that a flood of SIGWINCH
/// or SIGHUP cannot fill the console.
#[derive(Default)]
pub struct IgnoredOnce(u128);

impl IgnoredOnce {
    /// Whether this is the first time `signo` is ignored.
    pub fn first(&mut self, signo: i32) -> bool {
        let Ok(bit) = u32::try_from(signo) else {
            return false;
        };
        let Some(mask) = 1u128.checked_shl(bit) else {
            return false;
        };
        let first = self.0 & mask == 0;
        self.0 |= mask;
        first
    }
}

/// Blocks the set: from here on a signal to PID 1 waits to be read instead of being
/// dropped. Done first thing, before the console exists to read from a signalfd.
pub fn block() -> nix::Result<()> {
    blocked_set().thread_set_mask()
}

/// A non-blocking signalfd for the blocked set.
pub fn open_fd() -> nix::Result<SignalFd> {
    SignalFd::with_flags(
        &blocked_set(),
        SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC,
    )
}

/// For a child between fork and exec: an empty mask and default dispositions, so
/// svdir starts as if the kernel had started it. Only async-signal-safe calls.
pub fn reset_for_child() -> std::io::Result<()> {
    // The raw system call, because glibc's sigaction refuses the two real-time signals
    // it reserves (32, 33), and a runtime that started init with them ignored would
    // pass that on. A zeroed kernel sigaction is SIG_DFL, no flags, empty mask, in
    // every architecture's layout.
    let default_action: [libc::c_ulong; 4] = [0; 4];
    for signo in 1..=libc::SIGRTMAX() {
        if signo == libc::SIGKILL || signo == libc::SIGSTOP {
            continue;
        }
        // SAFETY: rt_sigaction with a valid, fully initialised struct and no old-action
        // pointer; a failure leaves that one signal as it was.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                signo,
                default_action.as_ptr(),
                std::ptr::null_mut::<libc::c_void>(),
                KERNEL_SIGSET_BYTES,
            );
        }
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
        .map_err(std::io::Error::from)
}

/// The kernel's sigset_t size (_NSIG / 8) on x86_64, aarch64, riscv64 and the others
/// with 64 signals.
const KERNEL_SIGSET_BYTES: libc::size_t = 8;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        use Response::*;
        let c = Mode::Container;
        let m = Mode::Machine;
        assert_eq!(response(libc::SIGCHLD, c), Reap);
        assert_eq!(response(libc::SIGTERM, c), Shutdown(Action::Poweroff));
        assert_eq!(response(libc::SIGTERM, m), Shutdown(Action::Reboot));
        // podman's default stop signal for /sbin/init, whatever libc we were built with.
        assert_eq!(response(37, c), Shutdown(Action::Poweroff));
        assert_eq!(response(37, m), Ignore);
        for mode in [c, m] {
            assert_eq!(response(libc::SIGINT, mode), Shutdown(Action::Reboot));
            assert_eq!(response(libc::SIGUSR1, mode), Shutdown(Action::Halt));
            assert_eq!(response(libc::SIGUSR2, mode), Shutdown(Action::Poweroff));
            assert_eq!(response(libc::SIGPWR, mode), Shutdown(Action::Poweroff));
            for ignored in [
                libc::SIGHUP,
                libc::SIGQUIT,
                libc::SIGALRM,
                libc::SIGTSTP,
                libc::SIGTTIN,
                libc::SIGTTOU,
                libc::SIGWINCH,
                libc::SIGCONT,
                libc::SIGPIPE,
                libc::SIGURG,
                libc::SIGRTMIN(),
                36,
                38,
                libc::SIGRTMAX(),
            ] {
                assert_eq!(response(ignored, mode), Ignore, "{}", name(ignored));
            }
        }
    }

    #[test]
    fn client_signals_map_back_to_their_action() {
        for action in [Action::Poweroff, Action::Reboot, Action::Halt] {
            for mode in [Mode::Container, Mode::Machine] {
                assert_eq!(
                    response(action.signal() as i32, mode),
                    Response::Shutdown(action)
                );
            }
        }
    }

    #[test]
    fn blocked_set_leaves_faults_alone() {
        let set = blocked_set();
        assert!(set.contains(Signal::SIGTERM));
        assert!(set.contains(Signal::SIGCHLD));
        assert!(set.contains(Signal::SIGHUP));
        assert!(set.contains(Signal::SIGPWR));
        assert!(!set.contains(Signal::SIGSEGV));
        assert!(!set.contains(Signal::SIGABRT));
    }

    #[test]
    fn names() {
        assert_eq!(name(libc::SIGTERM), "SIGTERM");
        // Counted as the senders count, not from this libc's SIGRTMIN (35 under musl,
        // where counting from it named podman's 37 "SIGRTMIN+2").
        assert_eq!(name(37), "SIGRTMIN+3 (37)");
        assert_eq!(name(34), "SIGRTMIN (34)");
        assert_eq!(name(libc::SIGRTMAX()), "SIGRTMAX (64)");
        assert_eq!(name(33), "signal 33");
    }

    #[test]
    fn ignored_logged_once() {
        let mut once = IgnoredOnce::default();
        assert!(once.first(libc::SIGHUP));
        assert!(!once.first(libc::SIGHUP));
        assert!(once.first(libc::SIGWINCH));
        assert!(once.first(64));
        assert!(!once.first(64));
        assert!(!once.first(-1));
        assert!(!once.first(200));
    }
}
