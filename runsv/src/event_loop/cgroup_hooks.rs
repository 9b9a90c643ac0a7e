//! The event loop's side of "a service is its cgroup" (runsv/src/tracking.rs): the
//! groups of the main and log services, the exit of run or finish held until the
//! group is empty, and what a killed predecessor left in a group stopped at start.
//! Apart from these methods the loop only calls them: in `send` (a stop reaches the
//! group), `prepare` (placement and limits), `reap` and the poll (cgroup.events).

use super::{Supervisor, Which};
use crate::machine::{Event, Process};
use crate::tracking::Tracked;
use runsv::supervise::ExitStatus;

impl Supervisor {
    /// What a killed predecessor left in the groups of services not adopted is stopped
    /// before they start (see Tracked::clear).
    pub(super) fn clear_groups(&mut self) {
        for which in [Which::Log, Which::Main] {
            let Some(service) = self.service(which) else {
                continue;
            };
            // kill_mode: process: what the last run left (sshd's sessions) stays.
            if service.adopted.is_some() || service.kills_main_only() {
                continue;
            }
            let label = service.label.clone();
            let settings = service.machine.settings();
            let (signal, timeout) = (settings.stop_signal, settings.stop_timeout);
            if let Some(tracked) = self.group(which) {
                tracked.clear(&label, signal, timeout);
            }
        }
    }

    pub(super) fn group(&self, which: Which) -> Option<&Tracked> {
        match which {
            Which::Main => self.main_group.as_ref(),
            Which::Log => self.log_group.as_ref(),
        }
    }

    pub(super) fn group_mut(&mut self, which: Which) -> Option<&mut Tracked> {
        match which {
            Which::Main => self.main_group.as_mut(),
            Which::Log => self.log_group.as_mut(),
        }
    }

    /// run or finish exited (or an adopted run ended). With a group still holding
    /// processes of the service, the exit waits until it is empty (see tracking.rs);
    /// what remains gets the stop signal, unless it was sent already, and is killed
    /// after the stop timeout. With kill_mode: process the exit is the service's end.
    pub(super) fn exited(&mut self, which: Which, pid: u32, status: ExitStatus) {
        let now = self.sys.now().monotonic;
        let Some(service) = self.service(which) else {
            return;
        };
        let machine = &service.machine;
        let ours = [Process::Run, Process::Finish]
            .into_iter()
            .any(|p| machine.pid_of(p) == Some(pid));
        let ours = ours && !service.kills_main_only();
        let stopping = machine.status().term_sent;
        let settings = machine.settings();
        let (signal, kill_at) = (
            settings.stop_signal,
            now.saturating_add(settings.stop_timeout),
        );
        if ours {
            if let Some(tracked) = self.group_mut(which) {
                if tracked.hold(pid, status, (!stopping).then_some(signal), kill_at) {
                    return;
                }
            }
        }
        self.deliver_exit(which, pid, status);
    }

    pub(super) fn deliver_exit(&mut self, which: Which, pid: u32, status: ExitStatus) {
        let oom = self.group(which).is_some_and(|t| t.oom_killed());
        if let (true, Some(service)) = (oom, self.service(which)) {
            service.machine.note_oom_kill();
        }
        self.event(which, Event::Exited { pid, status });
    }

    /// cgroup.events changed: a held exit is reported once the group is empty.
    pub(super) fn group_changed(&mut self, which: Which) {
        if let Some((pid, status)) = self.group_mut(which).and_then(|t| t.emptied()) {
            self.deliver_exit(which, pid, status);
        }
    }
}
