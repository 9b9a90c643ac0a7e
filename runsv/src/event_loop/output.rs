//! Where the main service's output goes, chosen once at start: through runsv to the
//! `log/` service (tee.rs), to the kernel log or the console (relay.rs), runsv's own
//! output, or /dev/null. This room gives each process its stdio, moves the bytes on
//! when the poll says so, ends the logger's input when the service is done, and says
//! once what went wrong passing output on.

use super::{Supervisor, Which};
use crate::machine::Event;
use crate::relay::{Mode, Relay, Stream};
use crate::service::Service;
use crate::tee::{Tee, Wait};
use runsv::definition::{Form, LogDestination};
use runsv::launch::Stdio;
use std::os::fd::AsRawFd;
use std::path::Path;

/// Where the main service's output goes.
pub(super) enum Output {
    /// Through runsv to the `log/` service.
    Tee(Tee),
    Relay(Relay),
    Inherit,
    Null,
}

impl Output {
    /// The output `main`'s definition asks for (`has_log`: a log service runs beside
    /// it), with its pipes.
    pub(super) fn open(main: &Service, has_log: bool, directory: &Path) -> Result<Output, String> {
        let definition = main.definition.as_ref();
        let tail = runsv::tail::TailWriter::new(
            main.supervise.tail(),
            definition.map_or(runsv::tail::DEFAULT_CAPACITY, |d| d.log_tail),
        );
        let yaml = is_yaml(main);
        let relay = |mode, tail| {
            Relay::new(&machine_name(main, directory), mode, tail)
                .map(Output::Relay)
                .map_err(|e| format!("unable to create pipe for the log relay: {e}"))
        };
        Ok(match (has_log, definition.map(|d| &d.log)) {
            (true, _) => Tee::new(tail)
                .map(Output::Tee)
                .map_err(|e| format!("unable to create pipe for log service: {e}"))?,
            (false, Some(LogDestination::Kmsg)) => relay(Mode::Kmsg, tail)?,
            // A runit `run` without log/ writes straight to runsv's output, as with runit.
            (false, Some(LogDestination::Console)) if yaml => relay(Mode::Console, tail)?,
            (false, Some(LogDestination::Null)) => Output::Null,
            _ => Output::Inherit,
        })
    }
}

/// The service's name for the relay's prefix: its definition's, or its directory's.
fn machine_name(service: &Service, directory: &Path) -> String {
    service
        .definition
        .as_ref()
        .map(|d| d.name.clone())
        .unwrap_or_else(|| {
            directory
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
}

fn is_yaml(service: &Service) -> bool {
    service
        .definition
        .as_ref()
        .is_some_and(|d| matches!(d.form, Form::Yaml(_)))
}

impl Supervisor {
    /// stdin, stdout and stderr of a service's run and finish.
    pub(super) fn stdio(&self, which: Which) -> (Stdio, Stdio, Stdio) {
        let null = Stdio::Fd(self.null.as_raw_fd());
        if which == Which::Log {
            let input = match &self.output {
                Some(Output::Tee(tee)) => Stdio::Fd(tee.logger_read.as_raw_fd()),
                _ => null,
            };
            return (input, Stdio::Inherit, Stdio::Inherit);
        }
        let yaml = is_yaml(&self.main);
        let out = match &self.output {
            Some(Output::Tee(tee)) => match &tee.service_write {
                Some(write) => Stdio::Fd(write.as_raw_fd()),
                None => null,
            },
            Some(Output::Relay(relay)) => Stdio::Fd(relay.write_fd(Stream::Stdout)),
            Some(Output::Null) => null,
            Some(Output::Inherit) | None => Stdio::Inherit,
        };
        // runit gives only stdout to the log; a YAML service's stderr goes along, to
        // the relay's stderr pipe when it relays (its lines stay apart).
        let err = match &self.output {
            Some(Output::Relay(relay)) if yaml => Stdio::Fd(relay.write_fd(Stream::Stderr)),
            _ if yaml => out,
            _ => Stdio::Inherit,
        };
        (null, out, err)
    }

    /// The main service is down for good: the logger gets its end of file after the
    /// last line (see pump_tee), and ends by itself.
    pub(super) fn drain_log(&mut self) {
        if let Some(Output::Tee(tee)) = &mut self.output {
            tee.close_service_end();
        }
        self.pump_tee();
        if self.log.is_some() {
            self.event(Which::Log, Event::Drain);
        }
    }

    /// Moves the service's output on to the logger. Once the service's pipe is closed
    /// and empty, runsv's end of the logger's pipe is closed too — and the keeper's,
    /// which holds one — so the logger reads its end of file.
    pub(super) fn pump_tee(&mut self) {
        let Some(Output::Tee(tee)) = &mut self.output else {
            return;
        };
        tee.pump();
        if self.draining && matches!(tee.wait(), Wait::Done) {
            tee.close_logger_end();
            if let Some(keeper) = self.keeper.take() {
                keeper.stop();
            }
        }
    }

    /// Prints what went wrong passing the output on (the tail could not be written, a
    /// pipe operation failed), once.
    pub(super) fn warn_output(&mut self) {
        let warning = match &mut self.output {
            Some(Output::Relay(relay)) => relay.warning.take(),
            Some(Output::Tee(tee)) => tee.warning.take(),
            _ => None,
        };
        if let Some(warning) = warning {
            eprintln!("runsv {}: warning: {warning}", self.main.label);
        }
    }

    /// `run` or `finish` of the main service ended: its last line reaches the log even
    /// without a newline (it does not wait for the next run's first line to end it).
    pub(super) fn flush_relay(&mut self, which: Which, pid: u32) {
        use crate::machine::Process;
        let ours = [Process::Run, Process::Finish]
            .into_iter()
            .any(|p| self.main.machine.pid_of(p) == Some(pid));
        if which == Which::Main && ours {
            if let Some(Output::Relay(relay)) = &mut self.output {
                relay.writer_ended();
            }
        }
    }

    /// Both services are done: the relay's last lines go out, a last warning is said,
    /// and the keeper, with nothing left to keep, ends.
    pub(super) fn close_output(&mut self) {
        if let Some(Output::Relay(relay)) = &mut self.output {
            relay.flush();
        }
        self.warn_output();
        if let Some(keeper) = self.keeper.take() {
            keeper.stop();
        }
    }
}
