//! runit's 20-byte `supervise/status`, byte for byte, and the one line of
//! `supervise/stat` it gives.

use super::SuperviseDir;
use crate::reader::{self, Cause, FileError, Links};
use crate::tai64n::Timestamp;
use std::io;

pub const STATUS_LEN: usize = 20;

/// What the process slot of runit's status holds (byte 19).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunState {
    Down = 0,
    Run = 1,
    Finish = 2,
}

/// runit's 20-byte `supervise/status`.
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 12 | TAI64N of the last start of `run`, or of becoming down |
/// | 12 | 4 | pid, little-endian (of `finish` while finishing), 0 when down |
/// | 16 | 1 | paused flag |
/// | 17 | 1 | want: `u` or `d` (want exit is stored as `d`) |
/// | 18 | 1 | term flag: SIGTERM sent and the process not yet reaped |
/// | 19 | 1 | 0 down, 1 run, 2 finish |
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status {
    pub since: Timestamp,
    pub pid: u32,
    pub paused: bool,
    /// The raw want byte: `b'u'` or `b'd'`.
    pub want: u8,
    pub term_sent: bool,
    pub run_state: RunState,
}

#[derive(Debug, PartialEq, Eq)]
pub enum StatusError {
    /// The file exists but is not 20 bytes (a daemontools status is 18), or has an
    /// unknown state byte: runit's `sv` calls this "bad format".
    BadFormat,
    Io(io::ErrorKind),
    /// Not a regular file, or larger than any status: the reason, for messages.
    Refused(String),
}

impl Status {
    pub fn encode(&self) -> [u8; STATUS_LEN] {
        let mut bytes = [0u8; STATUS_LEN];
        bytes[..12].copy_from_slice(&self.since.to_tai64n());
        bytes[12..16].copy_from_slice(&self.pid.to_le_bytes());
        bytes[16] = self.paused as u8;
        bytes[17] = self.want;
        bytes[18] = self.term_sent as u8;
        bytes[19] = self.run_state as u8;
        bytes
    }

    pub fn decode(bytes: &[u8]) -> Result<Status, StatusError> {
        if bytes.len() != STATUS_LEN {
            return Err(StatusError::BadFormat);
        }
        let mut stamp = [0u8; 12];
        stamp.copy_from_slice(&bytes[..12]);
        let mut pid = [0u8; 4];
        pid.copy_from_slice(&bytes[12..16]);
        let run_state = match bytes[19] {
            0 => RunState::Down,
            1 => RunState::Run,
            2 => RunState::Finish,
            _ => return Err(StatusError::BadFormat),
        };
        Ok(Status {
            since: Timestamp::from_tai64n(&stamp),
            pid: u32::from_le_bytes(pid),
            paused: bytes[16] != 0,
            want: bytes[17],
            term_sent: bytes[18] != 0,
            run_state,
        })
    }

    pub fn read(supervise: &SuperviseDir) -> Result<Status, StatusError> {
        let path = supervise.status();
        match reader::read(&path, reader::MAX_SUPERVISE_FILE, Links::Refuse) {
            Ok(bytes) => Status::decode(&bytes),
            Err(FileError {
                cause: Cause::Io(error),
                ..
            }) => Err(StatusError::Io(error.kind())),
            Err(error) => Err(StatusError::Refused(error.reason())),
        }
    }

    /// The one line of `supervise/stat`, e.g. `finish, want down`. `want_exit` is the
    /// distinction the status byte cannot carry.
    pub fn stat_line(&self, want_exit: bool) -> String {
        let mut line = String::from(match self.run_state {
            RunState::Down => "down",
            RunState::Run => "run",
            RunState::Finish => "finish",
        });
        if self.paused {
            line.push_str(", paused");
        }
        if self.term_sent {
            line.push_str(", got TERM");
        }
        if self.run_state != RunState::Down {
            if want_exit {
                line.push_str(", want exit");
            } else if self.want == b'd' {
                line.push_str(", want down");
            }
        }
        line.push('\n');
        line
    }
}
