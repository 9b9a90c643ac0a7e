//! The loop itself, thin: one poll over every fd the other rooms wait on, with the
//! earliest deadline as its timeout; each ready fd goes to the room that owns it, then
//! the timers that are due. Between machine and world: `event` hands an event to a
//! machine, `perform` carries out the actions it returns, in order, and writes
//! `supervise/` after.

use super::output::Output;
use super::{borrow, Supervisor, Which};
use crate::machine::{Action, Event, Process};
use crate::tee::Wait;
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::collections::VecDeque;
use std::os::fd::{AsFd, AsRawFd, RawFd};

impl Supervisor {
    pub(super) fn boot(&mut self) {
        // The logger first, so the service's first line has a reader (runit).
        for which in [Which::Log, Which::Main] {
            let now = self.sys.now();
            let Some(service) = self.service(which) else {
                continue;
            };
            if service.adopted.is_some() {
                continue;
            }
            let actions = service.machine.boot(now);
            self.perform(which, actions);
        }
    }

    /// Both services have exited.
    pub(super) fn done(&self) -> bool {
        self.main.exited && self.log.as_ref().is_none_or(|log| log.exited)
    }

    pub(super) fn run_loop(&mut self) {
        loop {
            if self.done() {
                self.close_output();
                return;
            }
            let timeout = self.poll_timeout();
            let mut fds = vec![
                PollFd::new(self.signals.as_fd(), PollFlags::POLLIN),
                PollFd::new(borrow(self.main.control_fd()), PollFlags::POLLIN),
            ];
            let log_control = self.log.as_ref().map(|l| l.control_fd());
            let notification = self.main.notification.as_ref().map(|fd| fd.as_raw_fd());
            let [relay_out, relay_err] = match &self.output {
                Some(Output::Relay(relay)) => relay.read_fds().map(Some),
                _ => [None, None],
            };
            let (tee_input, tee_room) = match &self.output {
                Some(Output::Tee(tee)) => match tee.wait() {
                    Wait::Input(fd) => (Some(fd), None),
                    Wait::Room(fd) => (None, Some(fd)),
                    Wait::Done => (None, None),
                },
                _ => (None, None),
            };
            let dependencies = self.dependencies.as_ref().and_then(|d| d.fd());
            let adopted_main = self.main.adopted.as_ref().map(|(_, fd)| fd.as_raw_fd());
            let adopted_log = self
                .log
                .as_ref()
                .and_then(|l| l.adopted.as_ref())
                .map(|(_, fd)| fd.as_raw_fd());
            for fd in [
                log_control,
                notification,
                relay_out,
                relay_err,
                tee_input,
                dependencies,
                adopted_main,
                adopted_log,
            ]
            .into_iter()
            .flatten()
            {
                fds.push(PollFd::new(borrow(fd), PollFlags::POLLIN));
            }
            // A slow console that has lines waiting, a logger's full pipe: asked for
            // room, never waited on.
            let consoles = match &self.output {
                Some(Output::Relay(relay)) => relay.waiting_fds(),
                _ => [None, None],
            };
            for fd in consoles.into_iter().chain([tee_room]).flatten() {
                fds.push(PollFd::new(borrow(fd), PollFlags::POLLOUT));
            }
            // A held exit: cgroup.events raises POLLPRI when the group empties.
            let [main_events, log_events] = [&self.main_group, &self.log_group].map(|t| {
                t.as_ref()
                    .filter(|t| t.pending.is_some())
                    .map(|t| t.group.events_fd().as_raw_fd())
            });
            for fd in [main_events, log_events].into_iter().flatten() {
                fds.push(PollFd::new(borrow(fd), PollFlags::POLLPRI));
            }
            match poll(&mut fds, timeout) {
                Ok(_) => {}
                Err(Errno::EINTR) => continue,
                Err(_) => continue,
            }
            let ready: Vec<(RawFd, bool)> = fds
                .iter()
                .map(|fd| {
                    let events = fd.revents().unwrap_or(PollFlags::empty());
                    (fd.as_fd().as_raw_fd(), !events.is_empty())
                })
                .collect();
            drop(fds);
            for (fd, is_ready) in ready {
                if !is_ready {
                    continue;
                }
                if fd == self.signals.as_raw_fd() {
                    self.handle_signals();
                } else if fd == self.main.control_fd() {
                    self.handle_control(Which::Main);
                } else if Some(fd) == log_control {
                    self.handle_control(Which::Log);
                } else if Some(fd) == notification {
                    self.handle_notification();
                } else if Some(fd) == dependencies {
                    self.dependencies_changed(true);
                } else if Some(fd) == main_events {
                    self.group_changed(Which::Main);
                } else if Some(fd) == log_events {
                    self.group_changed(Which::Log);
                } else if Some(fd) == adopted_main {
                    self.adopted_ended(Which::Main);
                } else if Some(fd) == adopted_log {
                    self.adopted_ended(Which::Log);
                } else if Some(fd) == relay_out || Some(fd) == relay_err {
                    if let Some(Output::Relay(relay)) = &mut self.output {
                        relay.pump(fd);
                    }
                } else if Some(fd) == tee_input || Some(fd) == tee_room {
                    self.pump_tee();
                } else if consoles.contains(&Some(fd)) {
                    if let Some(Output::Relay(relay)) = &mut self.output {
                        relay.resume(fd);
                    }
                }
            }
            self.warn_output();
            self.handle_timers();
        }
    }

    /// How long the poll may wait: until the earliest deadline, or for ever.
    pub(super) fn poll_timeout(&self) -> PollTimeout {
        let now = self.sys.now().monotonic;
        let deadlines = [
            self.main.machine.deadline(),
            self.log.as_ref().and_then(|l| l.machine.deadline()),
            self.dependencies_poll,
            self.rewrite,
            self.main_group.as_ref().and_then(|t| t.kill_at),
            self.log_group.as_ref().and_then(|t| t.kill_at),
        ];
        match deadlines.into_iter().flatten().min() {
            None => PollTimeout::NONE,
            Some(deadline) => {
                // Round up, so the timer is never early and the loop never spins.
                let millis = deadline.saturating_sub(now).as_micros().div_ceil(1000);
                PollTimeout::try_from(millis.min(i32::MAX as u128) as i32)
                    .unwrap_or(PollTimeout::MAX)
            }
        }
    }

    pub(super) fn handle_timers(&mut self) {
        let now = self.sys.now().monotonic;
        if self.dependencies_poll.is_some_and(|due| due <= now) {
            self.dependencies_changed(false);
        }
        for tracked in [&mut self.main_group, &mut self.log_group]
            .into_iter()
            .flatten()
        {
            tracked.timer(now);
        }
        if self.rewrite.is_some_and(|due| due <= now) {
            self.rewrite = None;
            for which in [Which::Log, Which::Main] {
                if let Some(service) = self.service(which) {
                    service.write_files();
                }
            }
        }
        // Supervision goes on whatever the disk says; the files follow when they can.
        let failed =
            self.main.write_failed() || self.log.as_ref().is_some_and(|l| l.write_failed());
        if failed && self.rewrite.is_none() {
            self.rewrite = Some(now + crate::service::REWRITE_INTERVAL);
        }
        for which in [Which::Log, Which::Main] {
            let due = self
                .service(which)
                .and_then(|s| s.machine.deadline())
                .is_some_and(|deadline| deadline <= now);
            if due {
                self.event(which, Event::Timer);
            }
        }
    }

    pub(super) fn event(&mut self, which: Which, event: Event) {
        let now = self.sys.now();
        let Some(service) = self.service(which) else {
            return;
        };
        let actions = service.machine.on(now, event);
        self.perform(which, actions);
    }

    /// Performs actions in order; the results of spawns go back to the machine as
    /// events, and their actions join the queue. The files are written after.
    pub(super) fn perform(&mut self, which: Which, actions: Vec<Action>) {
        let mut queue: VecDeque<Action> = actions.into();
        let mut signalled = false;
        while let Some(action) = queue.pop_front() {
            signalled |= matches!(action, Action::Signal { .. });
            let event = match action {
                Action::Spawn(process @ (Process::Run | Process::Finish)) => {
                    let actions = self.start_gated(which, process);
                    queue.extend(actions);
                    None
                }
                Action::Spawn(process) => Some(self.spawn(which, process)),
                Action::Signal {
                    target,
                    signal,
                    custom,
                } => {
                    let handled = custom.is_some_and(|c| {
                        which == Which::Main && self.control_script(c) == Some(true)
                    });
                    if !handled {
                        self.send(which, target, signal);
                    }
                    None
                }
                Action::ControlScript(c) => {
                    if which == Which::Main {
                        self.control_script(c);
                    }
                    None
                }
                Action::CloseNotification => {
                    self.main.notification = None;
                    None
                }
                Action::Exit => {
                    if let Some(service) = self.service(which) {
                        service.exited = true;
                    }
                    None
                }
            };
            if let Some(event) = event {
                let now = self.sys.now();
                if let Some(service) = self.service(which) {
                    queue.extend(service.machine.on(now, event));
                }
            }
        }
        if signalled {
            // The signal is out; the files can wait for one turn of the scheduler. When
            // svdir stops a tree, every runsv wakes at once: each one that writes its
            // files (a new inode each, slow on a busy ext4) before the others have
            // signalled their services delays them all. Measured on 2 cores, 1000
            // services: the last service got its signal ~900 ms after the first
            // without this, ~70 ms with it. Nothing else changes: the same files, in
            // the same order, written before runsv waits again.
            std::thread::yield_now();
        }
        if let Some(service) = self.service(which) {
            service.write_files();
        }
        if which == Which::Main && self.main.exited && !self.draining {
            self.draining = true;
            self.drain_log();
        }
    }
}
