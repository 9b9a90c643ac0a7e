//! The files of `supervise/`: the contract between runsv (which writes them) and every
//! program that reads or drives a service (sv, svdir, the runsv of a dependent, runit's
//! `sv`, daemontools' `svstat`). Their formats live here and nowhere else.
//!
//! runit-compatible files, byte for byte (see docs/supervise.md):
//! `control` and `ok` (FIFOs, 0600), `lock` (flock'd by runsv), `pid`, `stat` and the
//! 20-byte `status`. What runit cannot express is in `state`, a `key=value` text file.
//! Every file is replaced atomically: written as `X.new`, then swapped with `X` (or
//! renamed over it), see [`write_atomically`].
//!
//! This file owns where the files are and `state`; supervise/status.rs owns runit's
//! 20 bytes, and supervise/states.rs the words both use (state, want, exit status).

mod states;
mod status;

use crate::reader::{self, Links};
pub use crate::replace::{replace_file, write_atomically};
use crate::tai64n::Timestamp;
pub use states::{ExitStatus, ServiceState, Want};
pub use status::{RunState, Status, StatusError, STATUS_LEN};
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

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
}

/// One method per file of `supervise/`, returning its path: each name written once.
macro_rules! files {
    ($($(#[$doc:meta])* $method:ident => $name:literal,)*) => {
        impl SuperviseDir {
            $(
                $(#[$doc])*
                pub fn $method(&self) -> PathBuf {
                    self.path.join($name)
                }
            )*
        }
    };
}

files! {
    control => "control",
    ok => "ok",
    lock => "lock",
    status => "status",
    stat => "stat",
    pid => "pid",
    state => "state",
    /// runtree's: `PID STARTTIME` of the process that holds the relay's pipes open.
    keeper => "keeper",
    /// runtree's: the recent output of the service (see runsv::tail).
    tail => "tail",
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
mod supervise_tests;

#[cfg(test)]
mod props;
