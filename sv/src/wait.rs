//! Waiting until each service reaches what the command asked for (`-v`, `-w`, and the
//! LSB-style commands), printing `ok:`, or `timeout:`/`kill:` at the deadline.
//!
//! runit re-checks every 420 ms. Here a condition is re-checked when the service's
//! `supervise/` changes (see `watch`), and on a timer only where no event can come:
//! - a failing `./check` is re-run every `CHECK_RETRY` (runit's cadence would be 420 ms);
//! - an `exit` wait re-probes every `EXIT_FALLBACK` besides the events: the close of
//!   `ok` and `lock` by an exiting runsv does raise events on Linux, but the fallback
//!   bounds the wait should a kernel or a supervisor's child holding `lock` not;
//! - a service whose directory cannot be watched is re-checked every `UNWATCHED_POLL`.
//!
//! Timestamps are compared at full precision, runsv's status stamp against sv's start:
//! runit compares whole seconds, so a `sv restart` in the same second as the service's
//! last start was "ok" before runsv had even read the command.

use crate::checkscript;
use crate::command::Command;
use crate::control;
use crate::output::{Message, Out};
use crate::service::{self, Probe, Service, Snapshot};
use crate::status;
use crate::watch::Watcher;
use runsv::supervise::{RunState, ServiceState};
use runsv::tai64n::Timestamp;
use std::io::Write;
use std::time::{Duration, Instant};

pub const CHECK_RETRY: Duration = Duration::from_millis(100);
pub const EXIT_FALLBACK: Duration = Duration::from_millis(100);
pub const UNWATCHED_POLL: Duration = Duration::from_millis(100);
/// How long a process must have been up for `up` to be reached. runit's sv samples
/// every 420 ms and so practically never sees a `run` that exits at once: it times
/// out. Seeing every change, sv would catch such a process in its first millisecond
/// and say `ok:`; it waits this long instead, for the same answer every time.
pub const UP_SETTLE: Duration = Duration::from_millis(100);

/// A service being waited for.
pub struct Target {
    /// Its position on the command line: the key of its inotify watch.
    pub index: usize,
    pub service: Service,
    /// Whether control bytes were written for it (rather than suppressed or none sent).
    pub sent: bool,
    pub watched: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Print `ok: ` and the status line.
    Satisfied(Snapshot),
    /// Print this message; the wait for this service is over.
    Ended(Message),
    /// Not yet; re-check on the next event, or after this long at the latest.
    Pending(Option<Duration>),
}

/// runit's `check()` for one service: every condition of `acts` must hold, in order.
/// With runtree's full state, `u` also needs the state running (up and ready) or, for a
/// oneshot, ok, and an `error` entered since sv started (or any `error` when nothing
/// was sent) ends the wait with `fail: NAME: REASON`; `d` also needs the state down,
/// ok or error with no pid.
pub fn evaluate(
    target: &Target,
    acts: &str,
    tstart: Timestamp,
    check: &mut dyn FnMut() -> bool,
) -> Verdict {
    let path = &target.service.path;
    if let Err(errno) = service::enter(path) {
        return Verdict::Ended(Message::fail_errno(
            "unable to change to service directory",
            errno,
        ));
    }
    let snapshot = match service::probe(path) {
        Probe::Live(snapshot) => snapshot,
        Probe::NotRunning => return Verdict::Ended(Message::not_running(acts.as_bytes()[0])),
        Probe::Unreadable(message) => return Verdict::Ended(message),
    };
    let status = &snapshot.status;
    let state = snapshot.state.as_ref();
    let up = status.pid != 0;
    if let Some(state) = state {
        let fresh = state.since >= tstart || !target.sent;
        if acts.contains('u') && state.state == ServiceState::Error && fresh {
            let reason = if state.reason.is_empty() {
                "error"
            } else {
                &state.reason
            };
            return Verdict::Ended(Message::fail(reason));
        }
    }
    for act in acts.bytes() {
        let holds = match act {
            b'x' => return Verdict::Pending(Some(EXIT_FALLBACK)),
            // runtree's runsv replaces `status` and `state` one after the other: a
            // condition on the state also needs the status to agree (the same process,
            // or none), so that the line printed with `ok:` is not half old.
            b'u' => match state {
                Some(s) if s.oneshot && s.state == ServiceState::Ok => true,
                Some(s) if s.state != ServiceState::Running || s.pid != status.pid => false,
                // Never "ok" from a state naming a process that is gone.
                Some(_) if !snapshot.current() => false,
                _ if !up || status.run_state != RunState::Run => false,
                _ => {
                    if let Some(left) = settling(status.since) {
                        return Verdict::Pending(Some(left));
                    }
                    if !check() {
                        return Verdict::Pending(Some(CHECK_RETRY));
                    }
                    true
                }
            },
            b'd' => {
                !up && status.run_state == RunState::Down
                    && state.is_none_or(|s| {
                        s.pid == 0
                            && matches!(
                                s.state,
                                ServiceState::Down | ServiceState::Ok | ServiceState::Error
                            )
                    })
            }
            // runit 2.1.2's `check`: a running service must pass ./check.
            b'C' => {
                if up && !check() {
                    return Verdict::Pending(Some(CHECK_RETRY));
                }
                true
            }
            b't' | b'k' => {
                if !up && status.want == b'd' {
                    true
                } else if tstart > status.since || !up || status.term_sent {
                    false
                } else if !check() {
                    return Verdict::Pending(Some(CHECK_RETRY));
                } else {
                    true
                }
            }
            b'o' => !((!up && tstart > status.since) || (up && status.want != b'd')),
            b'p' => !up || status.paused,
            b'c' => !up || !status.paused,
            _ => true,
        };
        if !holds {
            return Verdict::Pending(None);
        }
    }
    Verdict::Satisfied(snapshot)
}

/// How much longer a process up since `since` must stay up to count as up (None: long
/// enough already, or a stamp in the future, after the clock went back, which says
/// nothing about how long it ran).
fn settling(since: Timestamp) -> Option<Duration> {
    let now = Timestamp::now();
    let stamp = |t: Timestamp| Duration::new(t.seconds, t.nanoseconds);
    let age = stamp(now).checked_sub(stamp(since))?;
    UP_SETTLE.checked_sub(age).filter(|left| !left.is_zero())
}

/// The status line of a wait's `ok:`/`timeout:`/`kill:` (the service alone, no log).
fn line(service: &Service, snapshot: &Snapshot) -> String {
    match service::normally_up(&service.path) {
        Ok(normally_up) => status::describe(
            &service.name,
            &snapshot.status,
            snapshot.state.as_ref(),
            normally_up,
            Timestamp::now(),
        ),
        Err(errno) => {
            eprintln!(
                "warning: unable to stat {}/down: {}",
                service.name,
                crate::errno::error_str(errno)
            );
            String::new()
        }
    }
}

struct Pending {
    target: Target,
    /// Re-check on the next pass (an event arrived, or it was never checked).
    dirty: bool,
    /// Re-check when this passes, event or not.
    due: Option<Instant>,
}

/// Waits for every target, until `deadline` (`None`: for ever).
pub fn run<W: Write>(
    out: &mut Out<W>,
    watcher: &mut Watcher,
    targets: Vec<Target>,
    command: &Command,
    tstart: Timestamp,
    deadline: Option<Instant>,
) {
    let mut pending: Vec<Pending> = targets
        .into_iter()
        .map(|target| Pending {
            target,
            dirty: true,
            due: None,
        })
        .collect();
    while !pending.is_empty() {
        let now = Instant::now();
        let timed_out = deadline.is_some_and(|d| now >= d);
        pending.retain_mut(|p| {
            if !(p.dirty || timed_out || p.due.is_some_and(|due| now >= due)) {
                return true;
            }
            p.dirty = false;
            if !p.target.watched {
                p.target.watched =
                    watcher.watch(p.target.index, &p.target.service.supervise().path);
            }
            let (path, name) = (&p.target.service.path, &p.target.service.name);
            let mut check = || checkscript::passes(path, name);
            match evaluate(&p.target, command.acts, tstart, &mut check) {
                Verdict::Satisfied(snapshot) => {
                    out.line(&format!("ok: {}", line(&p.target.service, &snapshot)));
                    false
                }
                Verdict::Ended(message) => {
                    out.message(name, &message);
                    false
                }
                Verdict::Pending(retry) => {
                    let retry = match (retry, p.target.watched) {
                        (Some(r), false) => Some(r.min(UNWATCHED_POLL)),
                        (None, false) => Some(UNWATCHED_POLL),
                        (retry, true) => retry,
                    };
                    p.due = retry.map(|r| Instant::now() + r);
                    true
                }
            }
        });
        if timed_out {
            for p in pending.drain(..) {
                time_out(out, &p.target.service, command);
            }
            break;
        }
        if pending.is_empty() {
            break;
        }
        let wake = pending
            .iter()
            .filter_map(|p| p.due)
            .chain(deadline)
            .min()
            .map(|at| at.saturating_duration_since(Instant::now()));
        let changes = watcher.wait(wake);
        for p in pending.iter_mut() {
            let index = p.target.index;
            if changes.all || changes.changed.contains(&index) {
                p.dirty = true;
            }
            if changes.lost.contains(&index) {
                p.target.watched = false;
                p.dirty = true;
            }
        }
    }
}

fn time_out<W: Write>(out: &mut Out<W>, service: &Service, command: &Command) {
    let prefix = if command.kill_on_timeout {
        "kill: "
    } else {
        "timeout: "
    };
    match service::probe(&service.path) {
        Probe::Live(snapshot) => {
            out.fail();
            out.line(&format!("{prefix}{}", line(service, &snapshot)));
        }
        Probe::NotRunning => {
            let message = Message::not_running(command.first());
            out.count(&message);
            out.line(&format!("{prefix}{}", message.render(&service.name)));
        }
        Probe::Unreadable(message) => {
            out.count(&message);
            out.line(&format!("{prefix}{}", message.render(&service.name)));
        }
    }
    if command.kill_on_timeout {
        control::send(out, service, "k", command.first());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::{down, full, running, stamp, FakeSupervisor};
    use runsv::supervise::ServiceState::*;

    const TSTART: Timestamp = Timestamp {
        seconds: 1_000,
        nanoseconds: 500_000_000,
    };

    fn target(fake: &FakeSupervisor, sent: bool) -> Target {
        Target {
            index: 0,
            service: Service {
                name: "x".into(),
                path: fake.dir.clone(),
            },
            sent,
            watched: true,
        }
    }

    fn verdict(fake: &FakeSupervisor, acts: &str, check: bool) -> Verdict {
        evaluate(&target(fake, true), acts, TSTART, &mut || check)
    }

    fn satisfied(v: &Verdict) -> bool {
        matches!(v, Verdict::Satisfied(_))
    }

    #[test]
    fn runit_conditions() {
        let dir = tempfile::tempdir().unwrap();
        let fake = FakeSupervisor::new(dir.path(), running(7, stamp(999)));
        assert!(satisfied(&verdict(&fake, "u", true)));
        assert_eq!(
            verdict(&fake, "u", false),
            Verdict::Pending(Some(CHECK_RETRY))
        );
        assert_eq!(verdict(&fake, "d", true), Verdict::Pending(None));
        assert!(
            satisfied(&verdict(&fake, "h", false)),
            "hup has no condition"
        );
        assert_eq!(
            verdict(&fake, "x", true),
            Verdict::Pending(Some(EXIT_FALLBACK))
        );
        assert_eq!(verdict(&fake, "p", true), Verdict::Pending(None));
        assert!(satisfied(&verdict(&fake, "c", true)));
        assert_eq!(
            verdict(&fake, "C", false),
            Verdict::Pending(Some(CHECK_RETRY))
        );
        assert!(satisfied(&verdict(&fake, "C", true)));

        fake.set_status(down(b'd', stamp(999)));
        assert!(satisfied(&verdict(&fake, "d", true)));
        assert!(
            satisfied(&verdict(&fake, "C", false)),
            "check passes a down service"
        );
        assert!(!satisfied(&verdict(&fake, "tcu", true)));
        assert!(
            satisfied(&verdict(&fake, "t", true)),
            "down and want down: t holds"
        );
        assert!(satisfied(&verdict(&fake, "p", true)));

        let mut finishing = running(8, stamp(999));
        finishing.run_state = RunState::Finish;
        fake.set_status(finishing);
        assert_eq!(verdict(&fake, "u", true), Verdict::Pending(None));
        assert_eq!(verdict(&fake, "d", true), Verdict::Pending(None));
    }

    #[test]
    fn restart_compares_stamps_at_full_precision() {
        let dir = tempfile::tempdir().unwrap();
        // Started in the same second as sv, but before it: runit 2.1.2 said "ok" here.
        let earlier = Timestamp {
            seconds: TSTART.seconds,
            nanoseconds: 100,
        };
        let fake = FakeSupervisor::new(dir.path(), running(7, earlier));
        assert_eq!(verdict(&fake, "tcu", true), Verdict::Pending(None));
        let later = Timestamp {
            seconds: TSTART.seconds,
            nanoseconds: 900_000_000,
        };
        fake.set_status(running(9, later));
        assert!(satisfied(&verdict(&fake, "tcu", true)));
        assert_eq!(
            verdict(&fake, "tcu", false),
            Verdict::Pending(Some(CHECK_RETRY))
        );
        let mut term = running(9, later);
        term.term_sent = true;
        fake.set_status(term);
        assert_eq!(verdict(&fake, "t", true), Verdict::Pending(None));
    }

    #[test]
    fn once() {
        let dir = tempfile::tempdir().unwrap();
        let fake = FakeSupervisor::new(dir.path(), running(7, stamp(999)));
        assert_eq!(
            verdict(&fake, "o", true),
            Verdict::Pending(None),
            "still want up"
        );
        let mut once = running(7, stamp(999));
        once.want = b'd';
        fake.set_status(once);
        assert!(satisfied(&verdict(&fake, "o", true)));
        fake.set_status(down(
            b'd',
            Timestamp {
                seconds: 1_000,
                nanoseconds: 1,
            },
        ));
        assert_eq!(
            verdict(&fake, "o", true),
            Verdict::Pending(None),
            "down before sv"
        );
        fake.set_status(down(b'd', stamp(1_001)));
        assert!(
            satisfied(&verdict(&fake, "o", true)),
            "ran and exited since"
        );
    }

    #[test]
    fn dead_supervisor() {
        let dir = tempfile::tempdir().unwrap();
        let mut fake = FakeSupervisor::new(dir.path(), running(7, stamp(999)));
        fake.stop();
        let ended = |message| Verdict::Ended(message);
        assert_eq!(
            verdict(&fake, "x", true),
            ended(Message::ok("runsv not running"))
        );
        assert_eq!(
            verdict(&fake, "u", true),
            ended(Message::fail("runsv not running"))
        );
        std::fs::remove_dir_all(dir.path()).unwrap();
        assert_eq!(
            verdict(&fake, "u", true),
            Verdict::Ended(Message::fail_errno(
                "unable to change to service directory",
                nix::libc::ENOENT
            ))
        );
    }

    #[test]
    fn runtree_states_for_up() {
        let dir = tempfile::tempdir().unwrap();
        let fake = FakeSupervisor::new(dir.path(), running(7, stamp(1_001)));
        // Running in runit's eyes, but not ready yet.
        fake.set_state(&full(Starting, 7, stamp(1_001), ""));
        assert_eq!(verdict(&fake, "u", true), Verdict::Pending(None));
        fake.set_state(&full(Running, 7, stamp(1_001), ""));
        assert!(satisfied(&verdict(&fake, "u", true)));
        assert_eq!(
            verdict(&fake, "u", false),
            Verdict::Pending(Some(CHECK_RETRY))
        );
        // The state already says running, the status is not rewritten yet.
        fake.set_status(down(b'd', stamp(999)));
        assert_eq!(verdict(&fake, "u", true), Verdict::Pending(None));
        fake.set_status(running(6, stamp(999)));
        assert_eq!(
            verdict(&fake, "u", true),
            Verdict::Pending(None),
            "another process"
        );
        fake.set_status(running(7, stamp(1_001)));

        fake.set_status(down(b'u', stamp(1_001)));
        let mut oneshot = full(Ok, 0, stamp(1_001), "");
        oneshot.oneshot = true;
        fake.set_state(&oneshot);
        assert!(satisfied(&verdict(&fake, "u", true)));
        oneshot.oneshot = false;
        fake.set_state(&oneshot);
        assert_eq!(verdict(&fake, "u", true), Verdict::Pending(None));

        fake.set_state(&full(Error, 0, stamp(1_001), "binary missing: /bin/nope"));
        let missing = Verdict::Ended(Message::fail("binary missing: /bin/nope"));
        for sent in ["u", "tcu"] {
            assert_eq!(verdict(&fake, sent, true), missing, "{sent}");
        }
        // An error from before sv started may be what the command is about to clear...
        fake.set_state(&full(Error, 0, stamp(999), "dependency db failed"));
        assert_eq!(verdict(&fake, "u", true), Verdict::Pending(None));
        // ...unless nothing was sent (want already up): then nothing will change it.
        let unsent = target(&fake, false);
        assert_eq!(
            evaluate(&unsent, "u", TSTART, &mut || true),
            Verdict::Ended(Message::fail("dependency db failed"))
        );
        fake.set_state(&full(Error, 0, stamp(1_001), ""));
        assert_eq!(
            verdict(&fake, "u", true),
            Verdict::Ended(Message::fail("error"))
        );
    }

    #[test]
    fn runtree_states_for_down() {
        let dir = tempfile::tempdir().unwrap();
        let fake = FakeSupervisor::new(dir.path(), down(b'd', stamp(1_001)));
        fake.set_state(&full(Stopping, 7, stamp(1_001), ""));
        assert_eq!(verdict(&fake, "d", true), Verdict::Pending(None));
        for state in [Down, Ok, Error] {
            fake.set_state(&full(state, 0, stamp(1_001), ""));
            assert!(satisfied(&verdict(&fake, "d", true)), "{state:?}");
        }
        fake.set_state(&full(Respawn, 0, stamp(1_001), "exited 1"));
        assert_eq!(verdict(&fake, "d", true), Verdict::Pending(None));
        // The state already says down, the status still shows the process.
        fake.set_state(&full(Down, 0, stamp(1_001), ""));
        let mut stopping = running(7, stamp(999));
        stopping.want = b'd';
        stopping.term_sent = true;
        fake.set_status(stopping);
        assert_eq!(verdict(&fake, "d", true), Verdict::Pending(None));
    }
}
