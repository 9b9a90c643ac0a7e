//! The files against runit's own: status bytes from runit's dumps, stat lines, and the
//! state file's round trip.

use super::*;

fn sample_status() -> Status {
    Status {
        since: Timestamp {
            seconds: 0x6b02_5ee5 - 10,
            nanoseconds: 0x0931_1894,
        },
        pid: 8433,
        paused: false,
        want: b'u',
        term_sent: false,
        run_state: RunState::Run,
    }
}

#[test]
fn status_is_byte_identical_to_runits_dump() {
    // xxd of a runit 2.1.2 status: running, want up, pid 0x20f1 = 8433.
    let runit: [u8; 20] = [
        0x40, 0x00, 0x00, 0x00, 0x6b, 0x02, 0x5e, 0xe5, 0x09, 0x31, 0x18, 0x94, 0xf1, 0x20, 0x00,
        0x00, 0x00, 0x75, 0x00, 0x01,
    ];
    assert_eq!(sample_status().encode(), runit);
    assert_eq!(Status::decode(&runit), Ok(sample_status()));
}

#[test]
fn finishing_status_matches_runit() {
    // runit while finish runs (after sv kill): pid of finish, state byte 2.
    let runit: [u8; 20] = [
        0x40, 0x00, 0x00, 0x00, 0x6b, 0x02, 0x5f, 0x6a, 0x14, 0x1b, 0x64, 0x6c, 0x6b, 0x2c, 0x00,
        0x00, 0x00, 0x75, 0x00, 0x02,
    ];
    let status = Status::decode(&runit).unwrap();
    assert_eq!(status.pid, 0x2c6b);
    assert_eq!(status.run_state, RunState::Finish);
    assert_eq!(status.encode(), runit);
}

#[test]
fn daemontools_status_is_bad_format() {
    assert_eq!(Status::decode(&[0u8; 18]), Err(StatusError::BadFormat));
    let mut bad = sample_status().encode();
    bad[19] = 7;
    assert_eq!(Status::decode(&bad), Err(StatusError::BadFormat));
}

#[test]
fn stat_line_follows_runit() {
    let mut status = sample_status();
    assert_eq!(status.stat_line(false), "run\n");
    status.run_state = RunState::Finish;
    status.want = b'd';
    assert_eq!(status.stat_line(false), "finish, want down\n");
    status.paused = true;
    status.term_sent = true;
    status.run_state = RunState::Run;
    assert_eq!(status.stat_line(true), "run, paused, got TERM, want exit\n");
    status.run_state = RunState::Down;
    status.paused = false;
    status.term_sent = false;
    assert_eq!(status.stat_line(false), "down\n");
}

#[test]
fn full_state_round_trips() {
    let state = FullState {
        state: ServiceState::Respawn,
        want: Want::Up,
        pid: 0,
        starttime: 0,
        since: Timestamp {
            seconds: 5,
            nanoseconds: 7,
        },
        ready_since: None,
        last_exit: Some(ExitStatus::Signaled(9)),
        restarts: 3,
        oneshot: false,
        reason: "killed by SIGKILL;\nrestarting in 2s".into(),
        status: Some(Status {
            since: Timestamp {
                seconds: 4,
                nanoseconds: 9,
            },
            pid: 0,
            paused: false,
            want: b'u',
            term_sent: true,
            run_state: RunState::Down,
        }),
    };
    let text = state.encode();
    assert!(text.contains("reason=killed by SIGKILL; restarting in 2s\n"));
    assert!(text.contains("last_exit=signal 9\n"));
    let decoded = FullState::decode(&text).unwrap();
    assert_eq!(decoded.reason, "killed by SIGKILL; restarting in 2s");
    assert_eq!(decoded.last_exit, state.last_exit);
    assert_eq!(decoded.since, state.since);
    assert_eq!(decoded.status, state.status);
    let without: String = text
        .lines()
        .filter(|l| !l.starts_with("status="))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(
        FullState::decode(&without).unwrap().status,
        None,
        "older files"
    );
    assert_eq!(FullState::decode("state=up\n"), None);
}
