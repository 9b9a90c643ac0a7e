//! Signal names as people write them in service definitions (`TERM`, `SIGTERM`, `15`),
//! and the signalfd through which every runtree program takes its signals.

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

const NAMES: &[(&str, Signal)] = &[
    ("HUP", Signal::SIGHUP),
    ("INT", Signal::SIGINT),
    ("QUIT", Signal::SIGQUIT),
    ("ILL", Signal::SIGILL),
    ("TRAP", Signal::SIGTRAP),
    ("ABRT", Signal::SIGABRT),
    ("BUS", Signal::SIGBUS),
    ("FPE", Signal::SIGFPE),
    ("KILL", Signal::SIGKILL),
    ("USR1", Signal::SIGUSR1),
    ("SEGV", Signal::SIGSEGV),
    ("USR2", Signal::SIGUSR2),
    ("PIPE", Signal::SIGPIPE),
    ("ALRM", Signal::SIGALRM),
    ("TERM", Signal::SIGTERM),
    ("STKFLT", Signal::SIGSTKFLT),
    ("CHLD", Signal::SIGCHLD),
    ("CONT", Signal::SIGCONT),
    ("STOP", Signal::SIGSTOP),
    ("TSTP", Signal::SIGTSTP),
    ("TTIN", Signal::SIGTTIN),
    ("TTOU", Signal::SIGTTOU),
    ("URG", Signal::SIGURG),
    ("XCPU", Signal::SIGXCPU),
    ("XFSZ", Signal::SIGXFSZ),
    ("VTALRM", Signal::SIGVTALRM),
    ("PROF", Signal::SIGPROF),
    ("WINCH", Signal::SIGWINCH),
    ("IO", Signal::SIGIO),
    ("PWR", Signal::SIGPWR),
    ("SYS", Signal::SIGSYS),
];

/// The set of `signals`.
pub fn mask_of(signals: &[Signal]) -> SigSet {
    let mut mask = SigSet::empty();
    for signal in signals {
        mask.add(*signal);
    }
    mask
}

/// Blocks `mask` in this thread and opens a signalfd for it (non-blocking,
/// close-on-exec): a program then waits for its signals and everything else in one
/// poll(2), and a signal never interrupts a write half-way. Children inherit the mask:
/// each program resets it in what it starts. The error names the step that failed.
pub fn receive(mask: &SigSet) -> Result<SignalFd, String> {
    mask.thread_block()
        .map_err(|e| format!("unable to block signals: {e}"))?;
    SignalFd::with_flags(mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(|e| format!("unable to create signalfd: {e}"))
}

/// `TERM`, `SIGTERM`, `term` or `15`.
pub fn parse(text: &str) -> Option<Signal> {
    let text = text.trim();
    if let Ok(number) = text.parse::<i32>() {
        return Signal::try_from(number).ok();
    }
    let upper = text.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    NAMES.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
}

/// `TERM` for 15.
pub fn name_of(number: i32) -> Option<&'static str> {
    NAMES
        .iter()
        .find(|(_, s)| *s as i32 == number)
        .map(|(n, _)| *n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_numbers_and_prefixes() {
        assert_eq!(parse("TERM"), Some(Signal::SIGTERM));
        assert_eq!(parse("sigkill"), Some(Signal::SIGKILL));
        assert_eq!(parse("1"), Some(Signal::SIGHUP));
        assert_eq!(parse("TERMINATE"), None);
        assert_eq!(parse("99"), None);
        assert_eq!(name_of(9), Some("KILL"));
        assert_eq!(name_of(64), None);
    }
}
