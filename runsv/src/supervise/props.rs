//! Property tests of the `supervise/` readers (issue #6): any bytes in `status` or
//! `state` (truncated, oversized, daemontools' 18 bytes, s6's 35, text, invalid UTF-8,
//! huge numbers, missing keys) decode to a value or to "bad format", never a panic, and
//! what runsv writes decodes back to itself.

use super::*;
use crate::props_support::config;
use proptest::prelude::*;
use proptest::sample::{select, Index};
use std::io::Cursor;

/// The largest Unix second a TAI64 label holds (the label is `2^62 + 10 + seconds`).
const MAX_SECONDS: u64 = u64::MAX - (1 << 62) - 10;

fn timestamp() -> impl Strategy<Value = Timestamp> {
    (
        prop_oneof![4 => 1_600_000_000u64..1_900_000_000, 1 => 0..=MAX_SECONDS],
        prop_oneof![4 => 0u32..1_000_000_000, 1 => Just(999_999_999)],
    )
        .prop_map(|(seconds, nanoseconds)| Timestamp {
            seconds,
            nanoseconds,
        })
}

fn run_state() -> impl Strategy<Value = RunState> {
    select(&[RunState::Down, RunState::Run, RunState::Finish][..])
}

fn status() -> impl Strategy<Value = Status> {
    (
        timestamp(),
        any::<u32>(),
        any::<bool>(),
        prop_oneof![select(&[b'u', b'd'][..]), any::<u8>()],
        any::<bool>(),
        run_state(),
    )
        .prop_map(|(since, pid, paused, want, term_sent, run_state)| Status {
            since,
            pid,
            paused,
            want,
            term_sent,
            run_state,
        })
}

fn exit_status() -> impl Strategy<Value = ExitStatus> {
    prop_oneof![
        any::<i32>().prop_map(ExitStatus::Exited),
        any::<i32>().prop_map(ExitStatus::Signaled),
    ]
}

fn reason() -> impl Strategy<Value = String> {
    prop_oneof![
        select(
            &[
                "",
                "exited 1; restarting in 4s",
                "waiting for db, cache",
                "two\nlines\r\nhere",
                "key=value=more",
                "status=00",
                "ünïcödé → ok",
            ][..]
        )
        .prop_map(String::from),
        ".{0,80}",
    ]
}

fn full_state() -> impl Strategy<Value = FullState> {
    (
        (
            select(&ServiceState::ALL[..]),
            select(&Want::ALL[..]),
            any::<u32>(),
            any::<u64>(),
        ),
        (
            timestamp(),
            prop::option::of(timestamp()),
            prop::option::of(exit_status()),
            any::<u32>(),
        ),
        (any::<bool>(), reason(), prop::option::of(status())),
    )
        .prop_map(
            |(
                (state, want, pid, starttime),
                (since, ready_since, last_exit, restarts),
                (oneshot, reason, status),
            )| FullState {
                state,
                want,
                pid,
                starttime,
                since,
                ready_since,
                last_exit,
                restarts,
                oneshot,
                reason,
                status,
            },
        )
}

/// What a decoded state holds of one that was encoded: the reason on one line.
fn as_written(state: &FullState) -> FullState {
    FullState {
        reason: state.reason.replace(['\n', '\r'], " "),
        ..state.clone()
    }
}

/// runit's status as it may be found: any bytes, and the formats of runit's peers.
fn status_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        // runit's length, with a state byte runit knows or does not.
        (prop::collection::vec(any::<u8>(), 19), 0u8..5).prop_map(|(mut bytes, state)| {
            bytes.push(state);
            bytes
        }),
        status().prop_map(|status| status.encode().to_vec()),
        // daemontools: the same first 18 bytes, want `u`, `d` or 0 (once).
        (status(), select(&[b'u', b'd', 0][..])).prop_map(|(status, want)| {
            let mut bytes = status.encode()[..18].to_vec();
            bytes[17] = want;
            bytes
        }),
        // s6: stamp, ready stamp, pid (u64 BE), wstat, flags.
        (
            timestamp(),
            timestamp(),
            any::<u64>(),
            any::<u16>(),
            any::<u8>()
        )
            .prop_map(|(stamp, ready, pid, wstat, flags)| {
                let mut bytes = stamp.to_tai64n().to_vec();
                bytes.extend(ready.to_tai64n());
                bytes.extend(pid.to_be_bytes());
                bytes.extend(wstat.to_be_bytes());
                bytes.push(flags);
                bytes
            }),
        // A status with more after it.
        (status(), prop::collection::vec(any::<u8>(), 1..32)).prop_map(|(status, tail)| {
            let mut bytes = status.encode().to_vec();
            bytes.extend(tail);
            bytes
        }),
    ]
}

#[derive(Clone, Debug)]
enum LineEdit {
    Drop(Index),
    Duplicate(Index),
    /// The value of a line replaced.
    Value(Index, String),
    Insert(Index, String),
    Swap(Index, Index),
}

fn odd_value() -> impl Strategy<Value = String> {
    prop_oneof![
        select(
            &[
                "",
                "-1",
                "+5",
                "18446744073709551616",
                "99999999999999999999999999",
                "4294967296",
                "1.5.5",
                "1.",
                ".5",
                "1.1234567890",
                "exit",
                "exit x",
                "signal 99999999999",
                "running\r",
                "zz",
                "400000006b025ee509311894f120000000750001",
                "400000006b025ee509311894f1200000007500",
                "400000006b025ee509311894f1200000007500ff",
            ][..]
        )
        .prop_map(String::from),
        ".{0,40}",
        any::<u64>().prop_map(|n| n.to_string()),
    ]
}

fn line_edits() -> impl Strategy<Value = Vec<LineEdit>> {
    let edit = prop_oneof![
        any::<Index>().prop_map(LineEdit::Drop),
        any::<Index>().prop_map(LineEdit::Duplicate),
        (any::<Index>(), odd_value()).prop_map(|(at, value)| LineEdit::Value(at, value)),
        (
            any::<Index>(),
            prop_oneof![
                select(&["future=1", "", "=", "no equals sign", "state", "#comment"][..])
                    .prop_map(String::from),
                ".{0,30}",
            ]
        )
            .prop_map(|(at, line)| LineEdit::Insert(at, line)),
        (any::<Index>(), any::<Index>()).prop_map(|(a, b)| LineEdit::Swap(a, b)),
    ];
    prop::collection::vec(edit, 0..5)
}

fn edit_lines(text: &str, edits: &[LineEdit]) -> String {
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    for edit in edits {
        let count = lines.len();
        match edit {
            LineEdit::Insert(at, line) => lines.insert(at.index(count + 1), line.clone()),
            _ if count == 0 => {}
            LineEdit::Drop(at) => {
                lines.remove(at.index(count));
            }
            LineEdit::Duplicate(at) => {
                let line = lines[at.index(count)].clone();
                lines.insert(at.index(count), line);
            }
            LineEdit::Value(at, value) => {
                let line = &mut lines[at.index(count)];
                let key = line.split('=').next().unwrap_or("").to_string();
                *line = format!("{key}={value}");
            }
            LineEdit::Swap(a, b) => lines.swap(a.index(count), b.index(count)),
        }
    }
    lines.iter().map(|line| format!("{line}\n")).collect()
}

/// The value of the last line with this key, as decode reads it (a later line wins).
fn last_value<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.split('\n')
        .rev()
        .filter_map(|line| line.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, value)| value)
}

/// A reader that is interrupted by a signal before it gives anything.
struct Interrupted<R> {
    inner: R,
    interrupted: bool,
}

impl<R: Read> Read for Interrupted<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        if !self.interrupted {
            self.interrupted = true;
            return Err(io::Error::from(io::ErrorKind::Interrupted));
        }
        self.inner.read(buffer)
    }
}

proptest! {
    #![proptest_config(config(512))]

    /// runit's 20 bytes with a state byte of 0, 1 or 2 decode field by field; any
    /// other length or state byte (daemontools' 18, s6's 35, text) is "bad format".
    #[test]
    fn status_decode_takes_exactly_runits_20_bytes(bytes in status_bytes()) {
        match Status::decode(&bytes) {
            Ok(status) => {
                prop_assert_eq!(bytes.len(), STATUS_LEN);
                prop_assert_eq!(status.run_state as u8, bytes[19]);
                prop_assert_eq!(status.pid, u32::from_le_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]));
                prop_assert_eq!(status.paused, bytes[16] != 0);
                prop_assert_eq!(status.want, bytes[17]);
                prop_assert_eq!(status.term_sent, bytes[18] != 0);
                prop_assert!(status.since.nanoseconds < 1_000_000_000);
                // Decoding what it encodes gives it back.
                prop_assert_eq!(Status::decode(&status.encode()), Ok(status));
            }
            Err(error) => {
                prop_assert_eq!(error, StatusError::BadFormat);
                prop_assert!(bytes.len() != STATUS_LEN || bytes[19] > 2);
            }
        }
    }

    /// Every status runsv can write decodes back to itself.
    #[test]
    fn status_encode_round_trips(status in status()) {
        prop_assert_eq!(Status::decode(&status.encode()), Ok(status));
    }

    /// Every state runsv can write decodes back to itself (its reason on one line),
    /// and so does what that decodes to.
    #[test]
    fn full_state_encode_round_trips(state in full_state()) {
        let text = state.encode();
        let decoded = FullState::decode(&text);
        prop_assert_eq!(decoded.as_ref(), Some(&as_written(&state)));
        let decoded = decoded.unwrap();
        prop_assert_eq!(FullState::decode(&decoded.encode()), Some(decoded));
    }

    /// A state file damaged line by line (lines dropped, doubled, swapped, added, or
    /// given odd values) decodes when its last state, want, pid and since lines are
    /// good, and to nothing otherwise; a decoded one is stable.
    #[test]
    fn full_state_decode_of_damaged_text_needs_its_four_keys(state in full_state(), edits in line_edits()) {
        let text = edit_lines(&state.encode(), &edits);
        let decoded = FullState::decode(&text);
        let required = [
            last_value(&text, "state").and_then(ServiceState::from_name).is_some(),
            last_value(&text, "want").and_then(Want::from_name).is_some(),
            last_value(&text, "pid").and_then(|v| v.parse::<u32>().ok()).is_some(),
            last_value(&text, "since").and_then(Timestamp::parse_decimal).is_some(),
        ];
        prop_assert_eq!(decoded.is_some(), required.iter().all(|&good| good), "{:?}", text);
        if let Some(decoded) = decoded {
            prop_assert_eq!(Some(decoded.state.name()), last_value(&text, "state"));
            prop_assert_eq!(Some(decoded.want.name()), last_value(&text, "want"));
            prop_assert!(decoded.since.nanoseconds < 1_000_000_000);
            if let Some(ready_since) = decoded.ready_since {
                prop_assert!(ready_since.nanoseconds < 1_000_000_000);
            }
            prop_assert_eq!(FullState::decode(&decoded.encode()), Some(as_written(&decoded)));
        }
    }

    /// Any text at all: decode gives a state or nothing.
    #[test]
    fn full_state_decode_of_any_text_is_a_state_or_nothing(text in prop_oneof![
        ".{0,300}",
        prop::collection::vec(
            prop_oneof![
                select(&["state=", "want=", "pid=", "since=", "status=", "running", "up", "\n", "=", "0", "1.5", "-", "9999999999999999999999"][..]).prop_map(String::from),
                ".{0,5}",
            ],
            0..40,
        ).prop_map(|pieces| pieces.concat()),
    ]) {
        if let Some(state) = FullState::decode(&text) {
            prop_assert_eq!(FullState::decode(&state.encode()), Some(as_written(&state)));
        }
    }

    /// read_from takes a state file of up to 1023 bytes, valid UTF-8 that decodes, even
    /// after an interrupted read; anything else is InvalidData. The files themselves,
    /// read through a supervise/ directory, read the same.
    #[test]
    fn state_and_status_files_of_any_bytes_read_as_their_decode(
        bytes in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..1500),
            (full_state(), prop::collection::vec(any::<u8>(), 0..1200)).prop_map(|(state, tail)| {
                let mut bytes = state.encode().into_bytes();
                bytes.extend(tail);
                bytes
            }),
            (full_state(), 0usize..1100).prop_map(|(state, padding)| {
                let mut state = state;
                state.reason = "r".repeat(padding);
                state.encode().into_bytes()
            }),
            status_bytes(),
        ],
    ) {
        let expected = if bytes.len() < 1024 {
            std::str::from_utf8(&bytes).ok().and_then(FullState::decode)
        } else {
            None
        };
        for interrupt_first in [false, true] {
            let read = FullState::read_from(&mut Interrupted {
                inner: Cursor::new(&bytes),
                interrupted: !interrupt_first,
            });
            match (&read, &expected) {
                (Ok(state), Some(expected)) => prop_assert_eq!(state, expected),
                (Err(error), None) => prop_assert_eq!(error.kind(), io::ErrorKind::InvalidData),
                _ => prop_assert!(false, "read {:?}, decode {:?}", read, expected),
            }
        }

        let directory = tempfile::tempdir().unwrap();
        let supervise = SuperviseDir::of_service(directory.path());
        fs::create_dir(&supervise.path).unwrap();
        prop_assert_eq!(Status::read(&supervise), Err(StatusError::Io(io::ErrorKind::NotFound)));
        prop_assert!(matches!(FullState::read(&supervise), Ok(None)));
        fs::write(supervise.status(), &bytes).unwrap();
        fs::write(supervise.state(), &bytes).unwrap();
        prop_assert_eq!(Status::read(&supervise), Status::decode(&bytes));
        match FullState::read(&supervise) {
            Ok(Some(state)) => prop_assert_eq!(Some(state), expected),
            Ok(None) => prop_assert!(false, "a file that exists read as absent"),
            Err(error) => {
                prop_assert_eq!(error.kind(), io::ErrorKind::InvalidData);
                prop_assert_eq!(expected, None);
            }
        }
    }
}
