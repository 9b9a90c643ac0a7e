//! The status line, byte for byte as runit's `svstatus_print` writes it:
//!
//! ```text
//! <run|down|finish>: NAME: [(pid P) ]Ns[, normally down|up][, paused][, want up|down][, got TERM]
//! ```
//!
//! followed, when runtree's runsv published a full state, by ` [STATE: REASON]`.

use runsv::supervise::{FullState, RunState, Status};
use runsv::tai64n::Timestamp;
use std::fmt::Write;

pub fn runit_text(name: &str, status: &Status, normally_up: bool, now: Timestamp) -> String {
    let running = status.pid != 0;
    let mut text = String::with_capacity(128);
    text.push_str(match status.run_state {
        RunState::Down => "down: ",
        RunState::Run => "run: ",
        RunState::Finish => "finish: ",
    });
    text.push_str(name);
    text.push_str(": ");
    // runit decides on the state byte here, and on the pid for the flags below.
    if status.run_state != RunState::Down {
        let _ = write!(text, "(pid {}) ", status.pid);
    }
    let _ = write!(text, "{}s", status.since.whole_seconds_until(now));
    if running && !normally_up {
        text.push_str(", normally down");
    }
    if !running && normally_up {
        text.push_str(", normally up");
    }
    if running && status.paused {
        text.push_str(", paused");
    }
    if !running && status.want == b'u' {
        text.push_str(", want up");
    }
    if running && status.want == b'd' {
        text.push_str(", want down");
    }
    if running && status.term_sent {
        text.push_str(", got TERM");
    }
    text
}

/// ` [STATE]`, ` [STATE: REASON]`, or ` [REASON]` when the reason already starts with
/// the state's name (`waiting for db, cache`).
#[cfg(test)]
pub fn state_suffix(state: &FullState) -> String {
    let mut text = String::new();
    push_state_suffix(&mut text, state);
    text
}

/// [`state_suffix`], added to `text` (a status line is built in one string).
fn push_state_suffix(text: &mut String, state: &FullState) {
    let name = state.state.name();
    let reason = state.reason.as_str();
    text.push_str(" [");
    if reason.is_empty() {
        text.push_str(name);
    } else if starts_with_word(reason, name) {
        text.push_str(reason);
    } else {
        text.push_str(name);
        text.push_str(": ");
        text.push_str(reason);
    }
    text.push(']');
}

fn starts_with_word(text: &str, word: &str) -> bool {
    text.strip_prefix(word)
        .is_some_and(|rest| !rest.starts_with(|c: char| c.is_alphanumeric() || c == '_'))
}

/// The runit text, then the full state when there is one.
pub fn describe(
    name: &str,
    status: &Status,
    state: Option<&FullState>,
    normally_up: bool,
    now: Timestamp,
) -> String {
    let mut text = runit_text(name, status, normally_up, now);
    if let Some(state) = state {
        push_state_suffix(&mut text, state);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use runsv::supervise::{ExitStatus, ServiceState, Want};

    const NOW: Timestamp = Timestamp {
        seconds: 1_000_027,
        nanoseconds: 100,
    };

    fn status(run_state: RunState, pid: u32, want: u8) -> Status {
        Status {
            since: Timestamp {
                seconds: 1_000_000,
                nanoseconds: 900_000_000,
            },
            pid,
            paused: false,
            want,
            term_sent: false,
            run_state,
        }
    }

    /// Lines from runit 2.1.2's transcript (reference 2.3), rebuilt from their status:
    /// each line's second word is the service's name.
    #[test]
    fn runits_transcript() {
        let run = |pid, want| status(RunState::Run, pid, want);
        let down = |want| status(RunState::Down, 0, want);
        let mut paused = run(8433, b'u');
        paused.paused = true;
        let lines = [
            (run(8433, b'u'), "run: foo: (pid 8433) 27s"),
            (run(8433, b'u'), "run: log: (pid 8433) 27s"),
            (down(b'd'), "down: foo: 27s, normally up"),
            (paused, "run: foo: (pid 8433) 27s, paused"),
            (run(10292, b'd'), "run: foo: (pid 10292) 27s, want down"),
            (down(b'u'), "down: fast: 27s, normally up, want up"),
            (
                status(RunState::Finish, 11371, b'd'),
                "finish: fin: (pid 11371) 27s, want down",
            ),
        ];
        for (status, line) in lines {
            let name = line.split(": ").nth(1).unwrap();
            assert_eq!(runit_text(name, &status, true, NOW), line);
        }
        // A service that is normally down.
        assert_eq!(
            runit_text("chk", &run(17940, b'u'), false, NOW),
            "run: chk: (pid 17940) 27s, normally down"
        );
    }

    #[test]
    fn every_flag_combination() {
        for run_state in [RunState::Down, RunState::Run, RunState::Finish] {
            for pid in [0u32, 42] {
                for bits in 0..16u8 {
                    let (normally_up, paused, want_up, term) =
                        (bits & 1 != 0, bits & 2 != 0, bits & 4 != 0, bits & 8 != 0);
                    let mut s = status(run_state, pid, if want_up { b'u' } else { b'd' });
                    s.paused = paused;
                    s.term_sent = term;
                    let mut expected = match run_state {
                        RunState::Down => "down: x: ".to_string(),
                        RunState::Run => "run: x: (pid PID) ".to_string(),
                        RunState::Finish => "finish: x: (pid PID) ".to_string(),
                    }
                    .replace("PID", &pid.to_string());
                    expected.push_str("27s");
                    let up = pid != 0;
                    let flags = [
                        (up && !normally_up, ", normally down"),
                        (!up && normally_up, ", normally up"),
                        (up && paused, ", paused"),
                        (!up && want_up, ", want up"),
                        (up && !want_up, ", want down"),
                        (up && term, ", got TERM"),
                    ];
                    for (shown, flag) in flags {
                        if shown {
                            expected.push_str(flag);
                        }
                    }
                    assert_eq!(runit_text("x", &s, normally_up, NOW), expected, "{s:?}");
                }
            }
        }
    }

    fn full(state: ServiceState, reason: &str) -> FullState {
        FullState {
            state,
            want: Want::Up,
            pid: 0,
            starttime: 0,
            since: Timestamp::default(),
            ready_since: None,
            last_exit: Some(ExitStatus::Exited(1)),
            restarts: 2,
            oneshot: false,
            reason: reason.into(),
            status: None,
        }
    }

    #[test]
    fn state_suffixes() {
        use ServiceState::{Error, Respawn, Running, Waiting};
        for (state, reason, suffix) in [
            (Running, "", " [running]"),
            (
                Respawn,
                "exited 1; restarting in 4s",
                " [respawn: exited 1; restarting in 4s]",
            ),
            // A reason that starts with the state's name is the whole text.
            (Waiting, "waiting for db, cache", " [waiting for db, cache]"),
            (Error, "errors everywhere", " [error: errors everywhere]"),
            (Error, "error", " [error]"),
        ] {
            assert_eq!(state_suffix(&full(state, reason)), suffix);
        }
    }

    #[test]
    fn the_briefs_example() {
        let down = status(RunState::Down, 0, b'u');
        let state = full(ServiceState::Respawn, "exited 1; restarting in 4s");
        let now = Timestamp {
            seconds: 1_000_003,
            nanoseconds: 0,
        };
        assert_eq!(
            describe("web", &down, Some(&state), true, now),
            "down: web: 3s, normally up, want up [respawn: exited 1; restarting in 4s]"
        );
        assert_eq!(
            describe("web", &down, None, true, now),
            "down: web: 3s, normally up, want up"
        );
    }
}
