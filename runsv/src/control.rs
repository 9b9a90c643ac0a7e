//! The control half of the `supervise/` contract: which bytes `supervise/control` takes,
//! how they are written, and how a live supervisor is proven (runit's probe of `ok`).
//! runsv, svdir and sv all go through here, so the FIFO is never opened in a way that
//! could block, write into a regular file or open a device.

use crate::reader::{self, Base, Kind, Links};
use crate::supervise::SuperviseDir;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{fstat, Mode};
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// A command of `supervise/control`: runit's bytes, plus `R` (runit has no reconfigure).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Control {
    Up,
    Down,
    Once,
    Pause,
    Continue,
    Hup,
    Alarm,
    Interrupt,
    Quit,
    User1,
    User2,
    Term,
    Kill,
    Exit,
    /// Read the definition again (`sv reconfigure`).
    Reconfigure,
}

/// The one table of bytes: both directions read it, so they cannot disagree.
const TABLE: [(Control, u8); 15] = [
    (Control::Up, b'u'),
    (Control::Down, b'd'),
    (Control::Once, b'o'),
    (Control::Pause, b'p'),
    (Control::Continue, b'c'),
    (Control::Hup, b'h'),
    (Control::Alarm, b'a'),
    (Control::Interrupt, b'i'),
    (Control::Quit, b'q'),
    (Control::User1, b'1'),
    (Control::User2, b'2'),
    (Control::Term, b't'),
    (Control::Kill, b'k'),
    (Control::Exit, b'x'),
    (Control::Reconfigure, b'R'),
];
/// The table with an address, so that a letter can be lent as a `&'static str`.
static BYTES: [(Control, u8); 15] = TABLE;

impl Control {
    pub const ALL: [Control; 15] = {
        let mut all = [Control::Up; 15];
        let mut i = 0;
        while i < TABLE.len() {
            all[i] = TABLE[i].0;
            i += 1;
        }
        all
    };

    /// The byte written to `supervise/control`.
    pub const fn byte(self) -> u8 {
        // Variants are declared in the table's order (a test checks it).
        TABLE[self as usize].1
    }

    /// The command of a byte read from `supervise/control`; `None` for one runsv ignores.
    pub fn from_byte(byte: u8) -> Option<Control> {
        BYTES
            .iter()
            .find(|(_, b)| *b == byte)
            .map(|(control, _)| *control)
    }

    /// The byte as a one-letter string (`"u"`), for command tables written as text.
    pub fn letter(self) -> &'static str {
        BYTES
            .iter()
            .find(|(control, _)| *control == self)
            .and_then(|(_, byte)| std::str::from_utf8(std::slice::from_ref(byte)).ok())
            .unwrap_or("")
    }

    /// The commands of a string of bytes; `None` if any byte is not a command.
    pub fn parse(bytes: &[u8]) -> Option<Vec<Control>> {
        bytes.iter().map(|&b| Control::from_byte(b)).collect()
    }
}

/// Why control bytes were not written.
#[derive(Debug)]
pub enum ControlError {
    /// Something other than a FIFO is there; it was not written to.
    NotFifo(Kind),
    /// The FIFO could not be opened: ENXIO means nobody reads it (no supervisor).
    Open(io::Error),
    Write(io::Error),
    /// Fewer bytes written than asked (a FIFO write under PIPE_BUF is all or nothing, so
    /// this is a FIFO swapped for something else).
    Short,
}

impl ControlError {
    /// The errno of a failed open or write.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            ControlError::Open(error) | ControlError::Write(error) => error.raw_os_error(),
            _ => None,
        }
    }

    /// Whether no supervisor reads the FIFO (ENXIO), or there is no FIFO at all.
    pub fn nobody_reads(&self) -> bool {
        matches!(
            self.raw_os_error(),
            Some(nix::libc::ENXIO | nix::libc::ENOENT)
        )
    }
}

impl fmt::Display for ControlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ControlError::NotFifo(found) => write!(f, "is {}, not a FIFO", found.describe()),
            ControlError::Open(error) | ControlError::Write(error) => write!(f, "{error}"),
            ControlError::Short => write!(f, "short write"),
        }
    }
}

impl std::error::Error for ControlError {}

impl From<ControlError> for io::Error {
    fn from(error: ControlError) -> io::Error {
        match error {
            ControlError::Open(inner) | ControlError::Write(inner) => inner,
            other => io::Error::new(io::ErrorKind::InvalidData, other.to_string()),
        }
    }
}

/// Writes `bytes` in one write to the FIFO at `fifo` (relative to `base`), never
/// waiting: a FIFO nobody reads is `Open(ENXIO)`. Anything else there is refused
/// unopened where a stat shows it (opening a device has effects of its own), and a
/// link is refused.
pub fn write_fifo_at(base: Base, fifo: &Path, bytes: &[u8]) -> Result<(), ControlError> {
    // A failed stat is left to the open to report, with its own errno.
    if let Ok(Some(found)) = reader::kind_at(base, fifo, Links::Refuse) {
        if found != Kind::Fifo {
            return Err(ControlError::NotFifo(found));
        }
    }
    let flags = OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = match openat(base.map(|fd| fd.as_raw_fd()), fifo, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(nix::errno::Errno::ELOOP) => return Err(ControlError::NotFifo(Kind::Symlink)),
        Err(errno) => return Err(ControlError::Open(errno.into())),
    };
    // SAFETY: openat just returned this fd; nothing else owns it.
    let mut file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    let opened = fstat(file.as_raw_fd()).map_err(|e| ControlError::Open(e.into()))?;
    match Kind::of(&opened) {
        Kind::Fifo => {}
        found => return Err(ControlError::NotFifo(found)),
    }
    // One write, as runit does: fewer than PIPE_BUF bytes go all or nothing.
    match file.write(bytes) {
        Ok(n) if n == bytes.len() => Ok(()),
        Ok(_) => Err(ControlError::Short),
        Err(error) => Err(ControlError::Write(error)),
    }
}

/// Sends commands to the supervisor of `supervise/` at `supervise` (relative to `base`).
pub fn send_control_at(
    base: Base,
    supervise: &Path,
    commands: &[Control],
) -> Result<(), ControlError> {
    let bytes: Vec<u8> = commands.iter().map(|c| c.byte()).collect();
    write_fifo_at(base, &supervise.join("control"), &bytes)
}

/// Sends commands to the supervisor of a `supervise/` directory.
pub fn send_control(supervise: &SuperviseDir, commands: &[Control]) -> Result<(), ControlError> {
    send_control_at(None, &supervise.path, commands)
}

/// Whether a supervisor holds this `supervise/` open: runit's probe of `ok` (see
/// [`reader::supervisor_running_at`]); anything but a FIFO at `ok` is an error.
pub fn supervisor_running(supervise: &SuperviseDir) -> io::Result<bool> {
    Ok(reader::supervisor_running_at(None, &supervise.ok())?)
}

/// Creates a FIFO at `path` with runit's mode (0600), keeping one already there: what
/// is there is checked by whoever opens it ([`open_fifo`]).
pub fn make_fifo(path: &Path) -> io::Result<()> {
    match nix::unistd::mkfifo(path, Mode::from_bits_truncate(0o600)) {
        Ok(()) | Err(nix::errno::Errno::EEXIST) => Ok(()),
        Err(errno) => Err(errno.into()),
    }
}

/// The reading end of the FIFO at `path` (made if missing), as a supervisor holds
/// `control` and `ok` and svdir its sync FIFO: opened at once whether or not anyone
/// writes (O_NONBLOCK); `read_write` also opens it for writing, so that it never reads
/// end-of-file. A link or anything but a FIFO there is refused: it must not make the
/// holder open something elsewhere (a device, another service's FIFO) or read a file
/// as commands.
pub fn open_fifo(path: &Path, read_write: bool) -> io::Result<File> {
    make_fifo(path)?;
    let fifo = OpenOptions::new()
        .read(true)
        .write(read_write)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC | nix::libc::O_NOFOLLOW)
        .open(path)?;
    if !fifo.metadata()?.file_type().is_fifo() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a FIFO"));
    }
    Ok(fifo)
}

/// The sync protocol (docs/svdir.md): the directory of the scan directory through which
/// `sv sync` asks svdir for a rescan (in the state root for a read-only scan directory,
/// crate::state_dir).
pub const SYNC_DIRECTORY: &str = ".svdir";
/// The byte `sv sync` writes to `SYNC_DIRECTORY/control`: one request.
pub const SYNC_REQUEST: u8 = b's';

/// How many sync requests svdir has served on the scan directory `scan_dir` (its
/// `synced`); 0 when unknown. Bounded: anything may be there.
pub fn synced_count(scan_dir: &Path) -> u64 {
    let path = crate::state_dir::locate_entry(scan_dir, SYNC_DIRECTORY).join("synced");
    reader::read(&path, reader::MAX_SETTING, Links::Refuse)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(0)
}

/// Asks the svdir of `scan_dir` for a rescan; `nobody_reads` when none runs there.
pub fn request_sync(scan_dir: &Path) -> Result<(), ControlError> {
    let fifo = crate::state_dir::locate_entry(scan_dir, SYNC_DIRECTORY).join("control");
    write_fifo_at(None, &fifo, &[SYNC_REQUEST])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn every_command_has_one_byte_and_back() {
        for (i, control) in Control::ALL.into_iter().enumerate() {
            assert_eq!(control as usize, i, "declared in the table's order");
            assert_eq!(Control::from_byte(control.byte()), Some(control));
            assert_eq!(control.letter().as_bytes(), [control.byte()]);
        }
        assert_eq!(Control::Reconfigure.byte(), b'R');
        assert_eq!(Control::from_byte(b'C'), None);
        assert_eq!(
            Control::parse(b"tcu"),
            Some(vec![Control::Term, Control::Continue, Control::Up])
        );
    }

    #[test]
    fn only_a_read_fifo_takes_commands() {
        let dir = tempfile::tempdir().unwrap();
        let supervise = dir.path();
        let err = send_control_at(None, supervise, &[Control::Up]).unwrap_err();
        assert!(err.nobody_reads(), "missing: {err}");
        std::fs::write(supervise.join("control"), b"").unwrap();
        let err = send_control_at(None, supervise, &[Control::Up]).unwrap_err();
        assert_eq!(err.to_string(), "is a regular file, not a FIFO");
        assert_eq!(std::fs::read(supervise.join("control")).unwrap(), b"");
        std::fs::remove_file(supervise.join("control")).unwrap();
        make_fifo(&supervise.join("control")).unwrap();
        let err = send_control_at(None, supervise, &[Control::Up]).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(nix::libc::ENXIO));
        let mut reader = open_fifo(&supervise.join("control"), false).unwrap();
        send_control_at(None, supervise, &[Control::Term, Control::Exit]).unwrap();
        let mut got = [0u8; 2];
        reader.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"tx");
    }
}
