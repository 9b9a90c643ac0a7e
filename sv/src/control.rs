//! Writing control bytes, as runit's `control()` does: probe the supervisor, skip the
//! write when it would change nothing (see `command::should_send`), then one
//! non-blocking write to `supervise/control`.

use crate::command::should_send;
use crate::output::{Message, Out};
use crate::service::{self, Probe, Service};
use runsv::control::{send_control, Control, ControlError};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sent {
    Written,
    /// The want byte already said so: nothing written, the wait still applies.
    Suppressed,
    /// A message was printed; the service takes no further part.
    Dropped,
}

/// `command_first` is the command's first control byte, which decides whether a dead
/// runsv is reported as `ok:` (exit, shutdown) or `fail:`.
pub fn send<W: std::io::Write>(
    out: &mut Out<W>,
    service: &Service,
    acts: &str,
    command_first: u8,
) -> Sent {
    let snapshot = match service::probe(&service.path) {
        Probe::Live(snapshot) => snapshot,
        Probe::NotRunning => {
            out.message(&service.name, &Message::not_running(command_first));
            return Sent::Dropped;
        }
        Probe::Unreadable(message) => {
            out.message(&service.name, &message);
            return Sent::Dropped;
        }
    };
    let first = acts.as_bytes()[0];
    // The want byte is trusted only from a status that is current: a stale one may say
    // "want up" of a service whose down was never recorded.
    if !should_send(&snapshot.status, first) && snapshot.current() {
        return Sent::Suppressed;
    }
    // The library refuses anything there but a FIFO: a device is never opened, a file
    // never written into.
    let Some(commands) = Control::parse(acts.as_bytes()) else {
        return Sent::Dropped;
    };
    let unable_to_write = "unable to write to supervise/control";
    let message = match send_control(&service.supervise(), &commands) {
        Ok(()) => return Sent::Written,
        Err(ControlError::NotFifo(found)) => Message::warning(format!(
            "unable to open supervise/control: is {}, not a FIFO",
            found.describe()
        )),
        Err(ControlError::Open(error)) if error.raw_os_error() == Some(nix::libc::ENXIO) => {
            Message::not_running(first)
        }
        Err(ControlError::Open(error)) => {
            Message::warning_errno("unable to open supervise/control", &error)
        }
        Err(ControlError::Short) => Message::warning(unable_to_write),
        Err(ControlError::Write(error)) => Message::warning_errno(unable_to_write, &error),
    };
    out.message(&service.name, &message);
    Sent::Dropped
}
