//! Reading the files of a service directory and of `supervise/` when anyone may have put
//! anything there: a FIFO, a socket or a device (whose open or read waits forever), a
//! huge or sparse file (whose size is a lie worth gigabytes), a link. Every program
//! (runsv, svdir, sv) opens those files through here and nowhere else, so that none of
//! them can be made to block or to allocate what a file claims.
//!
//! The rules: the type is checked with a stat before anything is opened (opening a
//! device can have effects of its own), the open is non-blocking (a FIFO swapped in
//! after the stat cannot hold it) and the opened file is checked again with fstat; every
//! read stops at a limit the caller gives, whatever the file's size says.

use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{fstat, fstatat, FileStat, Mode, SFlag};
use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// The largest `service.yaml` runsv reads: a definition is a few hundred bytes; this is
/// room for a long environment, and small enough that parsing it is instant.
pub const MAX_DEFINITION: u64 = 64 * 1024;
/// The largest one-value file (`notification-fd`, `down-signal`, `timeout-kill`).
pub const MAX_SETTING: u64 = 1024;
/// The largest file of `supervise/` read whole (`status`, `state`, `pid`, `stat`):
/// runsv writes none larger than a few hundred bytes.
pub const MAX_SUPERVISE_FILE: u64 = 4096;

/// What a path is, as far as the rules here care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Regular,
    Directory,
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
    Symlink,
    Other,
}

impl Kind {
    pub fn of(stat: &FileStat) -> Kind {
        let format = SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits());
        match format {
            SFlag::S_IFREG => Kind::Regular,
            SFlag::S_IFDIR => Kind::Directory,
            SFlag::S_IFIFO => Kind::Fifo,
            SFlag::S_IFSOCK => Kind::Socket,
            SFlag::S_IFCHR => Kind::CharDevice,
            SFlag::S_IFBLK => Kind::BlockDevice,
            SFlag::S_IFLNK => Kind::Symlink,
            _ => Kind::Other,
        }
    }

    /// `a FIFO`, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Kind::Regular => "a regular file",
            Kind::Directory => "a directory",
            Kind::Fifo => "a FIFO",
            Kind::Socket => "a socket",
            Kind::CharDevice => "a character device",
            Kind::BlockDevice => "a block device",
            Kind::Symlink => "a symbolic link",
            Kind::Other => "an unknown kind of file",
        }
    }
}

/// Why a file could not be read, with the file.
#[derive(Debug)]
pub struct FileError {
    pub path: PathBuf,
    pub cause: Cause,
}

#[derive(Debug)]
pub enum Cause {
    /// Not the kind of file expected (`expected` names it, for the message).
    Kind {
        found: Kind,
        expected: Kind,
    },
    /// Larger than the limit for this file.
    TooLarge {
        limit: u64,
    },
    Io(io::Error),
}

impl FileError {
    fn io(path: &Path, error: impl Into<io::Error>) -> FileError {
        FileError {
            path: path.to_path_buf(),
            cause: Cause::Io(error.into()),
        }
    }

    /// Whether the file does not exist (most files are optional).
    pub fn is_missing(&self) -> bool {
        matches!(&self.cause, Cause::Io(e) if e.kind() == io::ErrorKind::NotFound)
    }

    /// The errno of a failed system call, if that is the cause.
    pub fn raw_os_error(&self) -> Option<i32> {
        match &self.cause {
            Cause::Io(error) => error.raw_os_error(),
            _ => None,
        }
    }

    /// The cause alone, in runit's words for system errors (`file does not exist`).
    pub fn reason(&self) -> String {
        match &self.cause {
            Cause::Kind { found, expected } => {
                format!("is {}, not {}", found.describe(), expected.describe())
            }
            Cause::TooLarge { limit } => format!("is larger than {limit} bytes"),
            Cause::Io(error) => match error.raw_os_error() {
                Some(errno) => crate::errno_text::runit_text(errno).to_string(),
                None => error.to_string(),
            },
        }
    }
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.reason())
    }
}

impl std::error::Error for FileError {}

impl From<FileError> for io::Error {
    fn from(error: FileError) -> io::Error {
        match error.cause {
            Cause::Io(inner) => inner,
            _ => io::Error::new(io::ErrorKind::InvalidData, error.to_string()),
        }
    }
}

/// Where a relative path is looked up: from the working directory (`None`) or from a
/// directory held open.
pub type Base<'a> = Option<BorrowedFd<'a>>;

/// Whether symbolic links are followed: yes in a service definition (an administrator's
/// `service.yaml -> /etc/…` is normal), never in `supervise/`, where runsv makes none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Links {
    Follow,
    Refuse,
}

fn stat_flags(links: Links) -> nix::fcntl::AtFlags {
    match links {
        Links::Follow => nix::fcntl::AtFlags::empty(),
        Links::Refuse => nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    }
}

/// What is at `path` without opening it; `Ok(None)` when nothing is.
pub fn kind_at(base: Base, path: &Path, links: Links) -> Result<Option<Kind>, FileError> {
    match fstatat(base.map(|fd| fd.as_raw_fd()), path, stat_flags(links)) {
        Ok(stat) => Ok(Some(Kind::of(&stat))),
        Err(nix::errno::Errno::ENOENT) => Ok(None),
        Err(errno) => Err(FileError::io(path, errno)),
    }
}

/// Opens a regular file for reading; anything else is refused, unopened where the stat
/// already shows it, and nothing here waits.
pub fn open_regular_at(base: Base, path: &Path, links: Links) -> Result<File, FileError> {
    open_regular_stat_at(base, path, links).map(|(file, _)| file)
}

/// [`open_regular_at`], with what the fstat of the opened file found: its size spares
/// a caller another fstat, and a reader the read that only finds the end.
pub fn open_regular_stat_at(
    base: Base,
    path: &Path,
    links: Links,
) -> Result<(File, FileStat), FileError> {
    let refuse = |found| FileError {
        path: path.to_path_buf(),
        cause: Cause::Kind {
            found,
            expected: Kind::Regular,
        },
    };
    let raw_base = base.map(|fd| fd.as_raw_fd());
    let found = fstatat(raw_base, path, stat_flags(links)).map_err(|e| FileError::io(path, e))?;
    if Kind::of(&found) != Kind::Regular {
        return Err(refuse(Kind::of(&found)));
    }
    let mut flags = OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC | OFlag::O_NOCTTY;
    if links == Links::Refuse {
        flags |= OFlag::O_NOFOLLOW;
    }
    let fd = openat(raw_base, path, flags, Mode::empty()).map_err(|e| match e {
        // O_NOFOLLOW's answer for a link made since the stat.
        nix::errno::Errno::ELOOP if links == Links::Refuse => refuse(Kind::Symlink),
        e => FileError::io(path, e),
    })?;
    // SAFETY: openat just returned this fd; nothing else owns it.
    let file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    let opened = fstat(file.as_raw_fd()).map_err(|e| FileError::io(path, e))?;
    if Kind::of(&opened) != Kind::Regular {
        return Err(refuse(Kind::of(&opened)));
    }
    Ok((file, opened))
}

/// [`open_regular_at`] from the working directory.
pub fn open_regular(path: &Path, links: Links) -> Result<File, FileError> {
    open_regular_at(None, path, links)
}

/// The whole content of a regular file of at most `limit` bytes.
pub fn read_at(base: Base, path: &Path, limit: u64, links: Links) -> Result<Vec<u8>, FileError> {
    let (file, opened) = open_regular_stat_at(base, path, links)?;
    let size = u64::try_from(opened.st_size).ok();
    read_to_limit(file, limit, size).map_err(|cause| FileError {
        path: path.to_path_buf(),
        cause,
    })
}

/// [`read_at`] from the working directory.
pub fn read(path: &Path, limit: u64, links: Links) -> Result<Vec<u8>, FileError> {
    read_at(None, path, limit, links)
}

/// What [`read_bounded`] reads first: more than any supervise/ file holds.
const FIRST_READ: u64 = 1024;

/// Reads an opened file to its end, refusing it past `limit` bytes. The size is not
/// asked first: a file may grow while it is read, and a sparse one may say anything.
pub fn read_bounded(file: File, limit: u64) -> Result<Vec<u8>, Cause> {
    read_to_limit(file, limit, None)
}

/// [`read_bounded`], told the size an fstat of the opened regular file gave: a read
/// that comes back short once that much is in is the end (a regular file's read is
/// short only there), so a supervise/ file takes one read, not a second that returns
/// nothing (`sv status` of a thousand services reads a thousand). The size only ends
/// the reading early; the limit still bounds it, whatever the size says.
fn read_to_limit(mut file: File, limit: u64, size: Option<u64>) -> Result<Vec<u8>, Cause> {
    let cap = usize::try_from(limit.saturating_add(1)).unwrap_or(usize::MAX);
    // Room for a whole supervise/ file at once (from an empty Vec, read_to_end probes
    // with 32 bytes and grows: five reads for a 300-byte state file).
    let mut bytes = vec![0u8; cap.min(FIRST_READ as usize)];
    let mut filled = 0;
    loop {
        if filled == bytes.len() {
            if filled >= cap {
                break;
            }
            let grown = bytes.len().saturating_mul(2).min(cap);
            bytes.resize(grown, 0);
        }
        let n = match file.read(&mut bytes[filled..]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Cause::Io(e)),
        };
        filled += n;
        let short = filled < bytes.len();
        if short && size.is_some_and(|size| filled as u64 >= size) {
            break;
        }
    }
    bytes.truncate(filled);
    if bytes.len() as u64 > limit {
        return Err(Cause::TooLarge { limit });
    }
    Ok(bytes)
}

/// Whether a supervisor holds `ok` (a path such as `supervise/ok`) open: runit's probe,
/// an `open(ok, O_WRONLY|O_NONBLOCK)` that fails with ENXIO when nobody reads the FIFO.
/// Only a FIFO can prove that: anything else there (a regular file opens for writing
/// whether or not a runsv exists) is an error naming what it is, and a link is refused.
///
/// The write end is closed at once, unread and unwritten: the open is all there is to
/// guard, and the stat before it does (a device is never opened). The fstat after it
/// that [`hold_ok_at`] adds, for a caller that keeps the fd, would only catch a FIFO
/// replaced since the stat by a file runsv never makes there, in a window of
/// microseconds, by the one user who may write in supervise/ (and could as well write
/// the state): `sv status` of a thousand services probes a thousand.
pub fn supervisor_running_at(base: Base, ok: &Path) -> Result<bool, FileError> {
    Ok(open_ok_at(base, ok)?.is_some())
}

/// The probe of [`supervisor_running_at`], keeping the write end it opened (`None`
/// when nobody reads): whoever holds it learns of the supervisor's exit by POLLERR,
/// so the opened file is checked again to be a FIFO.
pub fn hold_ok_at(base: Base, ok: &Path) -> Result<Option<OwnedFd>, FileError> {
    let Some(fd) = open_ok_at(base, ok)? else {
        return Ok(None);
    };
    let opened = fstat(fd.as_raw_fd()).map_err(|e| FileError::io(ok, e))?;
    match Kind::of(&opened) {
        Kind::Fifo => Ok(Some(fd)),
        found => Err(not_fifo(ok, found)),
    }
}

fn not_fifo(ok: &Path, found: Kind) -> FileError {
    FileError {
        path: ok.to_path_buf(),
        cause: Cause::Kind {
            found,
            expected: Kind::Fifo,
        },
    }
}

/// The stat that refuses anything but a FIFO unopened, then the non-blocking open for
/// writing (`None`: ENXIO, nobody reads).
fn open_ok_at(base: Base, ok: &Path) -> Result<Option<OwnedFd>, FileError> {
    let raw_base = base.map(|fd| fd.as_raw_fd());
    // A device or a regular file is not opened at all: opening has effects of its own.
    match kind_at(base, ok, Links::Refuse)? {
        None => return Err(FileError::io(ok, nix::errno::Errno::ENOENT)),
        Some(Kind::Fifo) => {}
        Some(found) => return Err(not_fifo(ok, found)),
    }
    // O_NOCTTY: should a terminal replace the FIFO after the stat, it does not become
    // sv's controlling terminal.
    let flags = OFlag::O_WRONLY
        | OFlag::O_NONBLOCK
        | OFlag::O_CLOEXEC
        | OFlag::O_NOFOLLOW
        | OFlag::O_NOCTTY;
    match openat(raw_base, ok, flags, Mode::empty()) {
        // SAFETY: openat just returned this fd; nothing else owns it.
        Ok(fd) => Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) })),
        Err(nix::errno::Errno::ENXIO) => Ok(None),
        Err(nix::errno::Errno::ELOOP) => Err(not_fifo(ok, Kind::Symlink)),
        Err(errno) => Err(FileError::io(ok, errno)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn a_fifo_a_socket_and_a_device_are_refused_without_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        crate::control::make_fifo(&fifo).unwrap();
        let socket = dir.path().join("socket");
        let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        for (path, kind) in [
            (fifo.as_path(), "a FIFO"),
            (socket.as_path(), "a socket"),
            (Path::new("/dev/null"), "a character device"),
            (dir.path(), "a directory"),
        ] {
            let error = read(path, 10, Links::Follow).unwrap_err();
            assert_eq!(
                error.to_string(),
                format!("{}: is {kind}, not a regular file", path.display())
            );
        }
    }

    #[test]
    fn reads_are_bounded_whatever_the_size_says() {
        let dir = tempfile::tempdir().unwrap();
        let sparse = dir.path().join("sparse");
        File::create(&sparse).unwrap().set_len(1 << 40).unwrap();
        let error = read(&sparse, 64, Links::Refuse).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("{}: is larger than 64 bytes", sparse.display())
        );
        let small = dir.path().join("small");
        std::fs::write(&small, b"0123").unwrap();
        assert_eq!(read(&small, 4, Links::Refuse).unwrap(), b"0123");
        assert!(read(&small, 3, Links::Refuse).is_err());
        assert!(read(&dir.path().join("missing"), 3, Links::Refuse)
            .unwrap_err()
            .is_missing());
    }

    /// Past the first read's buffer and up to the limit, a file is read whole; one byte
    /// more is too large, whatever size the first reads found.
    #[test]
    fn whole_files_around_the_first_read_and_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        for size in [0, 1, 299, 1023, 1024, 1025, 3000, 4096] {
            let content: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            std::fs::write(&path, &content).unwrap();
            assert_eq!(read(&path, 4096, Links::Refuse).unwrap(), content, "{size}");
            let file = File::open(&path).unwrap();
            assert_eq!(read_bounded(file, 4096).unwrap(), content, "{size}");
            if size > 0 {
                let error = read(&path, size as u64 - 1, Links::Refuse).unwrap_err();
                assert!(matches!(error.cause, Cause::TooLarge { .. }), "{size}");
            }
        }
    }

    #[test]
    fn links_are_followed_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("target"), b"x").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink("target", &link).unwrap();
        assert_eq!(read(&link, 4, Links::Follow).unwrap(), b"x");
        let error = read(&link, 4, Links::Refuse).unwrap_err();
        assert!(error
            .to_string()
            .ends_with("is a symbolic link, not a regular file"));
    }

    #[test]
    fn only_a_fifo_with_a_reader_proves_a_supervisor() {
        let dir = tempfile::tempdir().unwrap();
        let base = File::open(dir.path()).unwrap();
        let ok = Path::new("ok");
        let at = Some(base.as_fd());
        assert!(supervisor_running_at(at, ok).unwrap_err().is_missing());
        std::fs::write(dir.path().join("ok"), b"").unwrap();
        assert_eq!(
            supervisor_running_at(at, ok).unwrap_err().reason(),
            "is a regular file, not a FIFO"
        );
        std::fs::remove_file(dir.path().join("ok")).unwrap();
        crate::control::make_fifo(&dir.path().join("ok")).unwrap();
        assert!(!supervisor_running_at(at, ok).unwrap());
        let _reader = crate::control::open_fifo(&dir.path().join("ok"), false).unwrap();
        assert!(supervisor_running_at(at, ok).unwrap());
    }
}
