//! Writing control bytes, as runit's `control()` does: probe the supervisor, skip the
//! write when it would change nothing (see `command::should_send`), then one
//! non-blocking write to `supervise/control`.

use crate::command::should_send;
use crate::output::{Message, Out};
use crate::service::{self, Probe, Service};
use runsv::reader;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

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
    // Looked at before it is opened: a device there is never opened, a file never
    // written into.
    let control = service.supervise().control();
    if let Ok(Some(found)) = reader::kind_at(None, &control, reader::Links::Refuse) {
        if found != reader::Kind::Fifo {
            let text = format!(
                "unable to open supervise/control: is {}, not a FIFO",
                found.describe()
            );
            out.message(&service.name, &Message::warning(text));
            return Sent::Dropped;
        }
    }
    let fifo = OpenOptions::new()
        .write(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOFOLLOW)
        .open(control);
    let mut fifo = match fifo {
        Ok(fifo) => fifo,
        Err(error) if error.raw_os_error() == Some(nix::libc::ENXIO) => {
            out.message(&service.name, &Message::not_running(first));
            return Sent::Dropped;
        }
        Err(error) => {
            let message = Message::warning_errno("unable to open supervise/control", &error);
            out.message(&service.name, &message);
            return Sent::Dropped;
        }
    };
    // One write, as runit does: a FIFO write of fewer than PIPE_BUF bytes is all or
    // nothing.
    match fifo.write(acts.as_bytes()) {
        Ok(n) if n == acts.len() => Sent::Written,
        Ok(_) => {
            out.message(
                &service.name,
                &Message::warning("unable to write to supervise/control"),
            );
            Sent::Dropped
        }
        Err(error) => {
            let message = Message::warning_errno("unable to write to supervise/control", &error);
            out.message(&service.name, &message);
            Sent::Dropped
        }
    }
}
