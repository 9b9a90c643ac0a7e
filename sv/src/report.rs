//! The `status` command: one line per service, its log's status after `; `, and in LSB
//! mode the exit code 0 (running), 3 (down) or 4 (status unreadable).

use crate::output::{Message, Out};
use crate::pending::Pending;
use crate::service::{self, Probe, Service, ServiceDir};
use crate::status;
use runsv::cgroup::{Usage, UsageReads};
use runsv::supervise::ServiceState;
use runsv::tai64n::Timestamp;
use std::io::Write;

/// What the main service's part of the line said, for LSB's exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shown {
    Running,
    Down,
    /// `down` could not be stat'ed: nothing was printed for the service.
    Unknown,
}

impl Shown {
    /// runit 2.1.2 took this from the log's part when there is a log (so a down service
    /// with a running log said "running"); this is the main service's, as in 2.3.0.
    pub fn lsb_code(self) -> i32 {
        match self {
            Shown::Running => 0,
            Shown::Down => 3,
            Shown::Unknown => 4,
        }
    }
}

/// The lines of one `sv status`, held until the cgroup usage they show has been read:
/// [`UsageReads`] reads the groups on a second thread while the next services are read,
/// so the lines are written at the end, in order, as one write (nothing runs in
/// between: no ./check, no waits).
pub struct Report {
    lines: Vec<Pending>,
    usages: UsageReads,
}

impl Report {
    /// A report of `services` services.
    pub fn new(services: usize) -> Report {
        Report {
            lines: Vec::with_capacity(services),
            usages: UsageReads::new(services),
        }
    }

    /// A message in place of a service's line (`fail: …`), counted now.
    pub fn message<W: Write>(&mut self, out: &mut Out<W>, name: &str, message: &Message) {
        out.count(message);
        self.lines.push(Pending::text(message.render(name)));
    }

    /// Writes every line, in order.
    pub fn finish<W: Write>(self, out: &mut Out<W>) {
        let usages = self.usages.finish();
        for line in &self.lines {
            out.line(&line.render(&usages));
        }
    }

    /// The status line of one service. `None` when the line could not be made (the
    /// message in its place says why); in LSB mode an unreadable status is exit code 4
    /// at once.
    pub fn print<W: Write>(
        &mut self,
        out: &mut Out<W>,
        service: &Service,
        dir: &ServiceDir,
        now: Timestamp,
    ) -> Result<Shown, Option<i32>> {
        let unentered = |errno| Message::fail_errno("unable to change to service directory", errno);
        let snapshot = match dir.probe(unentered) {
            Probe::Live(snapshot) => snapshot,
            Probe::NotRunning => {
                self.message(out, &service.name, &Message::not_running(b's'));
                return Err(None);
            }
            Probe::Unreadable(message) => {
                self.message(out, &service.name, &message);
                return Err(Some(4));
            }
        };
        let (mut line, shown) = self.part(&service.name, &service.name, dir, &snapshot, now);
        let log_name = format!("{}/log", service.name);
        let log_unentered = |errno| {
            Message::new(
                crate::output::Level::Warning,
                "unable to change directory",
                Some(errno),
            )
        };
        match dir.sub("log") {
            Err(nix::libc::ENOENT) => {}
            Err(errno) => {
                let message = log_unentered(errno);
                out.count(&message);
                line.push_str("; ");
                line.push_str(&message.render(&log_name));
            }
            Ok(log_dir) => {
                line.push_str("; ");
                match log_dir.probe(log_unentered) {
                    Probe::Live(log) => {
                        let (log_part, _) = self.part("log", &service.name, &log_dir, &log, now);
                        line.append(log_part);
                    }
                    // runit 2.1.2 went on to print the main service's status as the log's
                    // after this message; that line was wrong, so it is not reproduced.
                    Probe::Unreadable(message) => {
                        out.count(&message);
                        line.push_str(&message.render(&log_name));
                    }
                    Probe::NotRunning => {
                        let message = Message::not_running(b's');
                        out.count(&message);
                        line.push_str(&message.render(&log_name));
                    }
                }
            }
        }
        self.lines.push(line);
        Ok(shown)
    }

    /// One service's part of the line. `owner` names the service in the warning about
    /// `down`, as runit does (even for the log).
    fn part(
        &mut self,
        name: &str,
        owner: &str,
        dir: &ServiceDir,
        snapshot: &service::Snapshot,
        now: Timestamp,
    ) -> (Pending, Shown) {
        match dir.normally_up() {
            Ok(normally_up) => {
                let mut text = status::describe(
                    name,
                    &snapshot.status,
                    snapshot.state.as_ref(),
                    normally_up,
                    now,
                );
                // Why a service keeps failing is usually in what it said last.
                let failing = snapshot.state.as_ref().is_some_and(|state| {
                    matches!(state.state, ServiceState::Error | ServiceState::Respawn)
                });
                if failing && text.ends_with(']') {
                    if let Some(line) = dir.last_output() {
                        text.pop();
                        text.push_str(&format!("; last output: {line}]"));
                    }
                }
                let mut line = Pending::text(text);
                // Where the service is its cgroup: what is in it (one small read or two).
                if let Some(group) = &snapshot.cgroup {
                    line.push_usage(&mut self.usages, group, usage_text);
                }
                let shown = if snapshot.status.pid != 0 {
                    Shown::Running
                } else {
                    Shown::Down
                };
                (line, shown)
            }
            Err(errno) => {
                eprintln!(
                    "warning: unable to stat {owner}/down: {}",
                    crate::errno::error_str(errno)
                );
                (Pending::default(), Shown::Unknown)
            }
        }
    }
}

/// ` (cgroup: 3 processes, 12.5M)`: the service's group's processes and memory.
fn usage_text(usage: Usage) -> String {
    let mut text = String::from(" (cgroup");
    if let Some(processes) = usage.processes {
        let noun = if processes == 1 {
            "process"
        } else {
            "processes"
        };
        text.push_str(&format!(": {processes} {noun}"));
        if let Some(memory) = usage.memory {
            text.push_str(&format!(", {}", runsv::cgroup::human_bytes(memory)));
        }
    }
    text.push(')');
    text
}
