//! The files of `supervise/`: the contract between runsv (which writes them) and every
//! program that reads or drives a service (sv, svdir, the runsv of a dependent, runit's
//! `sv`, daemontools' `svstat`). Their formats live here and nowhere else.
//!
//! runit-compatible files, byte for byte (see docs/supervise.md):
//! `control` and `ok` (FIFOs, 0600), `lock` (flock'd by runsv), `pid`, `stat` and the
//! 20-byte `status`. What runit cannot express is in `state`, a `key=value` text file.
//! Every file is replaced atomically: written as `X.new`, then swapped with `X` (or
//! renamed over it), see [`write_atomically`].

use crate::reader::{self, Cause, FileError, Links};
pub use crate::replace::{replace_file, write_atomically};
use crate::tai64n::Timestamp;
use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

pub const STATUS_LEN: usize = 20;

/// Where the files of one `supervise/` directory are.
#[derive(Clone, Debug)]
pub struct SuperviseDir {
    pub path: PathBuf,
}

impl SuperviseDir {
    /// The `supervise/` directory of a service directory: its own, or the state
    /// root's for a directory that cannot be written (crate::state_dir).
    pub fn of_service(service_dir: &Path) -> SuperviseDir {
        SuperviseDir {
            path: crate::state_dir::locate(service_dir),
        }
    }
    pub fn control(&self) -> PathBuf {
        self.path.join("control")
    }
    pub fn ok(&self) -> PathBuf {
        self.path.join("ok")
    }
    pub fn lock(&self) -> PathBuf {
        self.path.join("lock")
    }
    pub fn status(&self) -> PathBuf {
        self.path.join("status")
    }
    pub fn stat(&self) -> PathBuf {
        self.path.join("stat")
    }
    pub fn pid(&self) -> PathBuf {
        self.path.join("pid")
    }
    pub fn state(&self) -> PathBuf {
        self.path.join("state")
    }
    /// runtree's: `PID STARTTIME` of the process that holds the relay's pipes open.
    pub fn keeper(&self) -> PathBuf {
        self.path.join("keeper")
    }
    /// runtree's: the recent output of the service (see runsv::tail).
    pub fn tail(&self) -> PathBuf {
        self.path.join("tail")
    }
}

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

/// The full state of a service, beyond what runit's status can say.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ServiceState {
    /// Not wanted up.
    Down,
    /// Wanted up; waiting for dependencies (named in the reason).
    Waiting,
    /// Spawned; readiness not yet confirmed (a oneshot stays here until it exits).
    Starting,
    /// Up and ready.
    Running,
    /// A oneshot that exited 0.
    Ok,
    /// Cannot run; the reason says why.
    Error,
    /// Exited; a restart is scheduled.
    Respawn,
    /// `finish` is running.
    Finishing,
    /// The stop signal was sent; waiting for the process to exit.
    Stopping,
}

impl ServiceState {
    pub const ALL: [ServiceState; 9] = [
        ServiceState::Down,
        ServiceState::Waiting,
        ServiceState::Starting,
        ServiceState::Running,
        ServiceState::Ok,
        ServiceState::Error,
        ServiceState::Respawn,
        ServiceState::Finishing,
        ServiceState::Stopping,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ServiceState::Down => "down",
            ServiceState::Waiting => "waiting",
            ServiceState::Starting => "starting",
            ServiceState::Running => "running",
            ServiceState::Ok => "ok",
            ServiceState::Error => "error",
            ServiceState::Respawn => "respawn",
            ServiceState::Finishing => "finishing",
            ServiceState::Stopping => "stopping",
        }
    }

    pub fn from_name(name: &str) -> Option<ServiceState> {
        ServiceState::ALL.into_iter().find(|s| s.name() == name)
    }
}

impl fmt::Display for ServiceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    Exited(i32),
    Signaled(i32),
    /// A process runsv adopted from a killed predecessor ended: it was not runsv's
    /// child, so the kernel gave its exit status to whoever reaped it.
    Unknown,
}

impl ExitStatus {
    /// runit's `finish` arguments: the exit code or -1, and the signal number or 0.
    pub fn finish_arguments(self) -> (i32, i32) {
        match self {
            ExitStatus::Exited(code) => (code, 0),
            ExitStatus::Signaled(signal) => (-1, signal),
            ExitStatus::Unknown => (-1, 0),
        }
    }

    pub fn success(self) -> bool {
        self == ExitStatus::Exited(0)
    }

    /// `exit 3` or `signal 9`: the form of the `last_exit` field.
    pub fn to_field(self) -> String {
        match self {
            ExitStatus::Exited(code) => format!("exit {code}"),
            ExitStatus::Signaled(signal) => format!("signal {signal}"),
            ExitStatus::Unknown => "unknown".to_string(),
        }
    }

    pub fn parse_field(text: &str) -> Option<ExitStatus> {
        if text == "unknown" {
            return Some(ExitStatus::Unknown);
        }
        let (kind, number) = text.split_once(' ')?;
        let number = number.parse().ok()?;
        match kind {
            "exit" => Some(ExitStatus::Exited(number)),
            "signal" => Some(ExitStatus::Signaled(number)),
            _ => None,
        }
    }
}

impl fmt::Display for ExitStatus {
    /// For people: `exited 3`, `killed by SIGKILL`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ExitStatus::Exited(code) => write!(f, "exited {code}"),
            ExitStatus::Signaled(signal) => match crate::signals::name_of(signal) {
                Some(name) => write!(f, "killed by SIG{name}"),
                None => write!(f, "killed by signal {signal}"),
            },
            ExitStatus::Unknown => write!(f, "ended (exit status unknown: adopted)"),
        }
    }
}

/// What the service is wanted to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Want {
    Up,
    Down,
    /// runsv exits once the service is down.
    Exit,
}

impl Want {
    pub fn name(self) -> &'static str {
        match self {
            Want::Up => "up",
            Want::Down => "down",
            Want::Exit => "exit",
        }
    }
    pub fn from_name(name: &str) -> Option<Want> {
        match name {
            "up" => Some(Want::Up),
            "down" => Some(Want::Down),
            "exit" => Some(Want::Exit),
            _ => None,
        }
    }
    /// The byte of runit's status: want exit is stored as `d`.
    pub fn status_byte(self) -> u8 {
        match self {
            Want::Up => b'u',
            Want::Down | Want::Exit => b'd',
        }
    }
}

/// `supervise/state`: one `key=value` per line, in this order; readers ignore keys they
/// do not know, so fields can be added. See docs/supervise.md.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FullState {
    pub state: ServiceState,
    pub want: Want,
    /// The pid of `run` (or of `finish` while finishing); 0 when none.
    pub pid: u32,
    /// Field 22 of `/proc/PID/stat` (clock ticks after boot) of that pid, so a reader can
    /// tell the process from a later one that reused the pid; 0 when unknown.
    pub starttime: u64,
    /// When the current state was entered.
    pub since: Timestamp,
    /// When the service last became ready (running), if it is up and ready.
    pub ready_since: Option<Timestamp>,
    /// How the last `run` ended.
    pub last_exit: Option<ExitStatus>,
    /// How many times `run` was started again by runsv itself.
    pub restarts: u32,
    pub oneshot: bool,
    /// For people: why the service is in this state (empty when there is nothing to say).
    pub reason: String,
    /// The runit status written together with this state (the same 20 bytes as
    /// `supervise/status`), so that a reader needs one file, not two that may be read
    /// on either side of a change. `None` in a file that lacks it.
    pub status: Option<Status>,
}

impl FullState {
    pub fn encode(&self) -> String {
        let optional = |t: Option<Timestamp>| t.map(Timestamp::to_decimal).unwrap_or_default();
        format!(
            "state={}\nwant={}\npid={}\nstarttime={}\nsince={}\nready_since={}\nlast_exit={}\nrestarts={}\noneshot={}\nreason={}\nstatus={}\n",
            self.state,
            self.want.name(),
            self.pid,
            self.starttime,
            self.since.to_decimal(),
            optional(self.ready_since),
            self.last_exit.map(ExitStatus::to_field).unwrap_or_default(),
            self.restarts,
            self.oneshot as u8,
            one_line(&self.reason),
            self.status.map(|s| hex(&s.encode())).unwrap_or_default(),
        )
    }

    /// `None` when the text is not a state file (a field missing or malformed).
    pub fn decode(text: &str) -> Option<FullState> {
        let mut state = None;
        let mut want = None;
        let mut pid = None;
        let mut starttime = 0;
        let mut since = None;
        let mut ready_since = None;
        let mut last_exit = None;
        let mut restarts = 0;
        let mut oneshot = false;
        let mut reason = String::new();
        let mut status = None;
        // Split by bytes (sv decodes a thousand of these for one `sv status`): `=` and
        // `\n` are ASCII, so every piece is a valid str.
        let mut rest = text;
        while !rest.is_empty() {
            let end = rest.bytes().position(|b| b == b'\n').unwrap_or(rest.len());
            let line = &rest[..end];
            rest = rest.get(end + 1..).unwrap_or("");
            let Some(equals) = line.bytes().position(|b| b == b'=') else {
                continue;
            };
            let (key, value) = (&line[..equals], &line[equals + 1..]);
            match key {
                "state" => state = ServiceState::from_name(value),
                "want" => want = Want::from_name(value),
                "pid" => pid = value.parse().ok(),
                "starttime" => starttime = value.parse().unwrap_or(0),
                "since" => since = Timestamp::parse_decimal(value),
                "ready_since" => ready_since = Timestamp::parse_decimal(value),
                "last_exit" => last_exit = ExitStatus::parse_field(value),
                "restarts" => restarts = value.parse().unwrap_or(0),
                "oneshot" => oneshot = value == "1",
                "reason" => reason = value.to_string(),
                "status" => status = unhex(value).and_then(|b| Status::decode(&b).ok()),
                _ => {}
            }
        }
        Some(FullState {
            state: state?,
            want: want?,
            pid: pid?,
            starttime,
            since: since?,
            ready_since,
            last_exit,
            restarts,
            oneshot,
            reason,
            status,
        })
    }

    /// `Ok(None)` when there is no state file (a runit or daemontools supervisor).
    pub fn read(supervise: &SuperviseDir) -> io::Result<Option<FullState>> {
        match reader::open_regular(&supervise.state(), Links::Refuse) {
            Ok(mut file) => FullState::read_from(&mut file).map(Some),
            Err(error) if error.is_missing() => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    /// Reads and decodes an opened state file.
    pub fn read_from(file: &mut impl Read) -> io::Result<FullState> {
        // `sv status` reads a thousand of these: one read into a buffer that holds any
        // state runsv writes (a short read of a regular file is its end), no fstat.
        let mut buffer = [0u8; 1024];
        let mut length = 0;
        loop {
            match file.read(&mut buffer[length..]) {
                Ok(0) => break,
                Ok(n) => {
                    length += n;
                    if length < buffer.len() {
                        break;
                    }
                    // Larger than any state runsv writes: not a state file.
                    return Err(io::Error::new(io::ErrorKind::InvalidData, "too large"));
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
        std::str::from_utf8(&buffer[..length])
            .ok()
            .and_then(FullState::decode)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad format"))
    }
}

/// The `directory=DEV:INO` line runsv adds to its state: which service directory this
/// supervise/ belongs to, so that a reader that came through a `supervise` link into
/// another service's supervise/ can tell (see [`directory_of`]). Empty when the
/// directory cannot be stat'd.
pub fn directory_field(supervise: &SuperviseDir) -> String {
    use std::os::unix::fs::MetadataExt;
    let directory = match supervise.path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    match fs::metadata(directory) {
        Ok(meta) => format!("directory={}:{}\n", meta.dev(), meta.ino()),
        Err(_) => String::new(),
    }
}

/// The `(st_dev, st_ino)` a state file names as its service directory, if it does.
pub fn directory_of(state: &[u8]) -> Option<(u64, u64)> {
    let text = std::str::from_utf8(state).ok()?;
    let value = text
        .lines()
        .find_map(|line| line.strip_prefix("directory="))?;
    let (dev, ino) = value.split_once(':')?;
    Some((dev.parse().ok()?, ino.parse().ok()?))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The 20 bytes of a `status=` field.
fn unhex(text: &str) -> Option<[u8; STATUS_LEN]> {
    let digits = text.as_bytes();
    if digits.len() != 2 * STATUS_LEN {
        return None;
    }
    let nibble = |d: u8| (d as char).to_digit(16).map(|v| v as u8);
    let mut bytes = [0u8; STATUS_LEN];
    for (byte, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(bytes)
}

fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
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
            0x40, 0x00, 0x00, 0x00, 0x6b, 0x02, 0x5e, 0xe5, 0x09, 0x31, 0x18, 0x94, 0xf1, 0x20,
            0x00, 0x00, 0x00, 0x75, 0x00, 0x01,
        ];
        assert_eq!(sample_status().encode(), runit);
        assert_eq!(Status::decode(&runit), Ok(sample_status()));
    }

    #[test]
    fn finishing_status_matches_runit() {
        // runit while finish runs (after sv kill): pid of finish, state byte 2.
        let runit: [u8; 20] = [
            0x40, 0x00, 0x00, 0x00, 0x6b, 0x02, 0x5f, 0x6a, 0x14, 0x1b, 0x64, 0x6c, 0x6b, 0x2c,
            0x00, 0x00, 0x00, 0x75, 0x00, 0x02,
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
}

#[cfg(test)]
#[path = "supervise_props.rs"]
mod props;
