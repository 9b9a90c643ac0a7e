//! What a killed predecessor left behind, taken over at start (the mechanisms are in
//! adoption.rs): a service up and ready is adopted and followed through a pidfd; one
//! that cannot be is stopped before a new one starts; the output pipes come from its
//! keeper, and this runsv's own keeper holds them from then on.

use super::output::Output;
use super::{Supervisor, Which};
use crate::adoption;
use crate::relay::Stream;
use crate::service::Leftover;
use runsv::supervise::ExitStatus;
use std::os::fd::OwnedFd;
use std::path::Path;

impl Supervisor {
    /// Writes the current status of both services and opens their `supervise/ok`. A
    /// predecessor's leftover still to be stopped stays named in `state`.
    pub(super) fn announce(&mut self) {
        for which in [Which::Log, Which::Main] {
            if let Some(service) = self.service(which) {
                match service.left_running.take() {
                    Some(leftover) => {
                        service.write_files_stopping(&leftover);
                        service.left_running = Some(leftover);
                    }
                    None => service.write_files(),
                }
                service.announce();
            }
        }
    }

    /// A previous runsv of this directory was killed and its service lives on, up and
    /// ready: take it over. It keeps running, uninterrupted, with one copy; its pid,
    /// uptime, restart count and want stay; signals, stop and status work as before;
    /// runsv follows it through a pidfd and restarts it when it ends. Its output pipe
    /// (to the log service or the relay) is fetched from the processes themselves, so
    /// the logger stays connected and a restarted service writes into the same pipe.
    /// What cannot be adopted is left in `left_running`, to be stopped.
    pub(super) fn adopt_leftovers(&mut self, pipes_taken: bool) {
        let now = self.sys.now();
        for which in [Which::Log, Which::Main] {
            let Some(service) = self.service(which) else {
                continue;
            };
            if !service.left_running.as_ref().is_some_and(|l| l.adoptable()) {
                continue;
            }
            let Some(leftover) = service.left_running.take() else {
                continue;
            };
            // Where the service has a group, only a process in it is the service's.
            let member = self
                .group(which)
                .is_none_or(|t| t.group.contains(leftover.pid));
            let pidfd = match adoption::pidfd_open(leftover.pid) {
                Some(pidfd) if member && (pipes_taken || self.recover_output(which, &pidfd)) => {
                    pidfd
                }
                _ => {
                    if let Some(service) = self.service(which) {
                        service.left_running = Some(leftover);
                    }
                    continue;
                }
            };
            if let Some(service) = self.service(which) {
                service.machine.adopt(now, &leftover.previous);
                service.adopted = Some((leftover.pid, pidfd));
            }
        }
    }

    /// Takes the output pipes over from the keeper of a killed predecessor: its ends
    /// are runsv's ends, and the other ends are reopened through /proc. Whatever became
    /// of the service and the logger (adopted, stopped, dead), the bytes waiting in the
    /// pipes then reach the logger or the relay, in order. False when there is no
    /// keeper, or it kept pipes of another kind of output.
    pub(super) fn take_pipes_from_keeper(&mut self) -> bool {
        let record = self.main.supervise.keeper();
        match &mut self.output {
            Some(Output::Tee(tee)) => {
                // The service's pipe, read end; the logger's pipe, write end.
                let Some([(service_read, service_write), (logger_write, logger_read)]) =
                    keeper_pipes(&record, [true, false])
                else {
                    return false;
                };
                tee.replace_service_pipe(service_read, service_write);
                tee.replace_logger_pipe(logger_read, logger_write);
                true
            }
            Some(Output::Relay(relay)) => {
                let Some([(out, out_write), (err, err_write)]) =
                    keeper_pipes(&record, [true, true])
                else {
                    return false;
                };
                relay.replace(Stream::Stdout, out, out_write);
                relay.replace(Stream::Stderr, err, err_write);
                true
            }
            _ => false,
        }
    }

    /// The relay's pipes get a keeper of this runsv's; a killed predecessor's keeper is
    /// ended, now that its pipes are taken over (or its service was stopped).
    pub(super) fn start_keeper(&mut self) {
        adoption::stop_old_keeper(&self.main.supervise.keeper());
        self.replace_keeper();
    }

    /// Starts a keeper (again: one that died is replaced at once, or the next kill of
    /// runsv would leave the pipes without a reader and the service to SIGPIPE).
    pub(super) fn replace_keeper(&mut self) {
        let record = self.main.supervise.keeper();
        let ends = match &self.output {
            Some(Output::Relay(relay)) => Some(relay.read_fds()),
            Some(Output::Tee(tee)) => tee.keeper_ends(),
            _ => None,
        };
        if let Some(ends) = ends {
            self.keeper = adoption::Keeper::start(ends, &record);
        }
    }

    /// Re-establishes the pipe between the service and its logger (or the relay)
    /// from the adopted process's own end of it: stdin for the logger, stdout for the
    /// service. False when it cannot be done (the process must then be stopped).
    fn recover_output(&mut self, which: Which, pidfd: &OwnedFd) -> bool {
        match (&mut self.output, which) {
            (Some(Output::Tee(tee)), Which::Log) => {
                let Some(input) = adoption::fd_of(pidfd, 0) else {
                    return false;
                };
                if adoption::pipe_identity(&input).is_none() {
                    // The logger reads something else: a new one will get our pipe.
                    return true;
                }
                let Some(runsv_end) = adoption::other_end(&input, true, false) else {
                    return false;
                };
                tee.replace_logger_pipe(input, runsv_end);
                true
            }
            (Some(Output::Tee(tee)), Which::Main) => {
                let Some(output) = adoption::fd_of(pidfd, 1) else {
                    return false;
                };
                if adoption::pipe_identity(&output).is_none() {
                    return true; // it writes elsewhere by its own choice
                }
                let Some(runsv_end) = adoption::other_end(&output, false, false) else {
                    return false;
                };
                tee.replace_service_pipe(runsv_end, output);
                true
            }
            (Some(Output::Relay(relay)), Which::Main) => {
                for (stream, fd) in [(Stream::Stdout, 1), (Stream::Stderr, 2)] {
                    let Some(output) = adoption::fd_of(pidfd, fd) else {
                        return false;
                    };
                    if adoption::pipe_identity(&output).is_none() {
                        continue; // it writes elsewhere by its own choice
                    }
                    if stream == Stream::Stderr
                        && adoption::pipe_identity(&output)
                            == adoption::pipe_identity(relay.read_end(Stream::Stdout))
                    {
                        continue; // 2>&1: already taken over as stdout
                    }
                    let Some(read) = adoption::other_end(&output, false, false) else {
                        return false;
                    };
                    relay.replace(stream, read, output);
                }
                true
            }
            _ => true,
        }
    }

    /// A previous runsv of this directory was killed and its service lives on, but
    /// cannot be adopted: stop it (pid and start time identify it for sure) before
    /// starting a new one, so the service never runs twice.
    pub(super) fn replace_leftovers(&mut self) {
        for which in [Which::Log, Which::Main] {
            let Some(service) = self.service(which) else {
                continue;
            };
            let Some(Leftover { pid, previous }) = service.left_running.take() else {
                continue;
            };
            let signal = service.machine.settings().stop_signal;
            let timeout = service.machine.settings().stop_timeout;
            eprintln!(
                "runsv {}: warning: stopping pid {pid}, left running by a previous runsv",
                service.label
            );
            // `state` names it until here (see announce); what boot writes next
            // replaces that.
            adoption::stop_leftover(pid, previous.starttime, signal, timeout);
        }
    }

    /// An adopted process ended. It was not runsv's child: whoever reaped it has its
    /// exit status.
    pub(super) fn adopted_ended(&mut self, which: Which) {
        let Some(service) = self.service(which) else {
            return;
        };
        let Some((pid, _pidfd)) = service.adopted.take() else {
            return;
        };
        self.flush_relay(which, pid);
        self.exited(which, pid, ExitStatus::Unknown);
    }
}

/// The two pipe ends a killed predecessor's keeper holds (open for reading or writing,
/// as `reading` says), each with the pipe's other end reopened through /proc: the
/// pipes whole, as (the keeper's end, the other end).
fn keeper_pipes(record: &Path, reading: [bool; 2]) -> Option<[(OwnedFd, OwnedFd); 2]> {
    let [first, second] = adoption::old_keeper_ends(record, reading)?;
    // The other end of a read end is a write end, and the other way round.
    let first_other = adoption::other_end(&first, reading[0], true)?;
    let second_other = adoption::other_end(&second, reading[1], true)?;
    Some([(first, first_other), (second, second_other)])
}
