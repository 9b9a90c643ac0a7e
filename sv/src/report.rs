//! The `status` command: one line per service, its log's status after `; `, and in LSB
//! mode the exit code 0 (running), 3 (down) or 4 (status unreadable).

use crate::output::{exit_code, Message, Out};
use crate::service::{self, Probe, Service, ServiceDir};
use crate::status;
use runsv::supervise::ServiceState;
use runsv::tai64n::Timestamp;
use std::io::Write;

/// The fewest services a thread of `sv status` takes: below that, starting a thread
/// costs more than it saves.
const SERVICES_PER_THREAD: usize = 100;
/// The most threads `sv status` reads with.
const MAX_THREADS: usize = 4;

/// `sv status` of `services`, each line in the order given, and the exit code. A
/// long list is read by a few threads at once, each its share in order, and their
/// lines are written in order once all are done, as one thread would have: a
/// service's status is a dozen system calls, a thousand services' ten thousand, and
/// nothing ties one service's to another's. In LSB mode the first service's status
/// is the answer.
pub fn all<W: Write>(out: &mut Out<W>, services: &[Service], lsb: bool, now: Timestamp) -> i32 {
    // Nothing runs in between (no ./check, no waits): one write for all the lines.
    out.hold();
    if lsb {
        for service in services {
            match one(out, service, now) {
                Ok(shown) => return shown.lsb_code(),
                Err(Some(code)) => return code,
                Err(None) => {}
            }
        }
        return exit_code(out.failures());
    }
    let threads = threads_for(services.len());
    if threads <= 1 {
        for service in services {
            let _ = one(out, service, now);
        }
        return exit_code(out.failures());
    }
    let share = services.len().div_ceil(threads);
    let parts: Vec<Out<Vec<u8>>> = std::thread::scope(|scope| {
        let spawned: Vec<_> = services
            .chunks(share)
            .skip(1)
            .map(|chunk| {
                let thread = std::thread::Builder::new()
                    .spawn_scoped(scope, move || part_of(chunk, now))
                    .ok();
                (chunk, thread)
            })
            .collect();
        let first = part_of(&services[..share.min(services.len())], now);
        let mut parts = vec![first];
        for (chunk, thread) in spawned {
            // A thread that could not start (or died) leaves its share to this one:
            // reading a status changes nothing, so it may be read again.
            parts.push(match thread.map(|thread| thread.join()) {
                Some(Ok(part)) => part,
                _ => part_of(chunk, now),
            });
        }
        parts
    });
    for part in parts {
        out.absorb(part);
    }
    exit_code(out.failures())
}

/// The lines of `services`, made apart.
fn part_of(services: &[Service], now: Timestamp) -> Out<Vec<u8>> {
    let mut part = Out::part();
    for service in services {
        let _ = one(&mut part, service, now);
    }
    part
}

/// How many threads read the status of `services` services: one per processor this
/// process may run on, at most [`MAX_THREADS`], each with a fair share.
fn threads_for(services: usize) -> usize {
    let wanted = (services / SERVICES_PER_THREAD).clamp(1, MAX_THREADS);
    if wanted == 1 {
        return 1;
    }
    wanted.min(processors())
}

/// The processors this process may run on (its affinity mask): one system call, where
/// `std::thread::available_parallelism` also reads the cgroup's CPU quota, files
/// costing more than the threads would save at this size.
fn processors() -> usize {
    // SAFETY: a zeroed cpu_set_t is an empty set; sched_getaffinity writes at most its
    // size into it.
    unsafe {
        let mut set: nix::libc::cpu_set_t = std::mem::zeroed();
        if nix::libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) != 0 {
            return 1;
        }
        (nix::libc::CPU_COUNT(&set).max(1)) as usize
    }
}

/// One service's status line, or the message that it has none.
fn one<W: Write>(
    out: &mut Out<W>,
    service: &Service,
    now: Timestamp,
) -> Result<Shown, Option<i32>> {
    match ServiceDir::open(&service.path) {
        Ok(dir) => print(out, service, &dir, now),
        Err(errno) => {
            out.message(
                &service.name,
                &Message::fail_errno("unable to change to service directory", errno),
            );
            Err(None)
        }
    }
}

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

/// Prints the status line of one service. `None` when the line could not be printed
/// (the message said why); in LSB mode an unreadable status is exit code 4 at once.
pub fn print<W: Write>(
    out: &mut Out<W>,
    service: &Service,
    dir: &ServiceDir,
    now: Timestamp,
) -> Result<Shown, Option<i32>> {
    let unentered = |errno| Message::fail_errno("unable to change to service directory", errno);
    let snapshot = match dir.probe(unentered) {
        Probe::Live(snapshot) => snapshot,
        Probe::NotRunning => {
            out.message(&service.name, &Message::not_running(b's'));
            return Err(None);
        }
        Probe::Unreadable(message) => {
            out.message(&service.name, &message);
            return Err(Some(4));
        }
    };
    let (mut line, shown) = part(out, &service.name, &service.name, dir, &snapshot, now);
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
                    line.push_str(&part(out, "log", &service.name, &log_dir, &log, now).0)
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
    out.line(&line);
    Ok(shown)
}

/// One service's part of the line. `owner` names the service in the warning about
/// `down`, as runit does (even for the log).
fn part<W: Write>(
    out: &mut Out<W>,
    name: &str,
    owner: &str,
    dir: &ServiceDir,
    snapshot: &service::Snapshot,
    now: Timestamp,
) -> (String, Shown) {
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
            // Where the service is its cgroup: what is in it (one small read or two).
            if let Some(group) = &snapshot.cgroup {
                text.push_str(&usage_text(group));
            }
            let shown = if snapshot.status.pid != 0 {
                Shown::Running
            } else {
                Shown::Down
            };
            (text, shown)
        }
        Err(errno) => {
            out.warn(&format!(
                "warning: unable to stat {owner}/down: {}",
                crate::errno::error_str(errno)
            ));
            (String::new(), Shown::Unknown)
        }
    }
}

/// ` (cgroup: 3 processes, 12.5M)`: the service's group's processes and memory.
fn usage_text(group: &std::path::Path) -> String {
    let usage = runsv::cgroup::usage(group);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::{down, running, stamp, FakeSupervisor};

    /// The status of a list long enough for threads reads as one thread's would: every
    /// line in the order given, the failures counted once.
    #[test]
    fn threads_keep_the_order_and_the_count() {
        let root = tempfile::tempdir().unwrap();
        let count = 3 * SERVICES_PER_THREAD + 7;
        let mut fakes = Vec::new();
        let services: Vec<Service> = (0..count)
            .map(|i| {
                let dir = root.path().join(format!("s{i:04}"));
                match i % 4 {
                    0 => fakes.push(FakeSupervisor::new(
                        &dir,
                        running(1000 + i as u32, stamp(5)),
                    )),
                    1 => fakes.push(FakeSupervisor::new(&dir, down(b'd', stamp(5)))),
                    // A directory without a supervisor: "runsv not running", a failure.
                    2 => std::fs::create_dir(&dir).unwrap(),
                    // Nothing: "unable to change to service directory", a failure.
                    _ => {}
                }
                Service::resolve(dir.as_os_str(), std::ffi::OsStr::new("/nonexistent"))
            })
            .collect();
        assert!(threads_for(count) > 1 || processors() == 1);
        let now = stamp(10);
        let mut alone = Out::new(Vec::new());
        for service in &services {
            let _ = one(&mut alone, service, now);
        }
        let mut out = Out::new(Vec::new());
        let code = all(&mut out, &services, false, now);
        assert_eq!(code, exit_code(alone.failures()));
        assert_eq!(out.failures(), (count / 2) as u32);
        let text = String::from_utf8(out.into_inner()).unwrap();
        assert_eq!(text, String::from_utf8(alone.into_inner()).unwrap());
        assert_eq!(text.lines().count(), count);
        assert!(text.lines().nth(4).unwrap().starts_with("run: "));
        assert!(text.lines().nth(7).unwrap().contains("unable to change"));
    }

    #[test]
    fn short_lists_stay_on_one_thread() {
        assert_eq!(threads_for(0), 1);
        assert_eq!(threads_for(SERVICES_PER_THREAD), 1);
        assert!(threads_for(100 * SERVICES_PER_THREAD) <= MAX_THREADS);
        assert!(processors() >= 1);
    }
}
