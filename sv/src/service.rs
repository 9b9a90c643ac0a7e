//! Finding a service directory and reading what its supervisor published, with runit's
//! error messages.
//!
//! runit's sv `chdir`s into each service; sv keeps paths instead (no process-wide state
//! to restore, and the checks can run side by side in tests) and reproduces the errno a
//! `chdir` would have given.

use crate::errno;
use crate::output::Level;
use crate::output::Message;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fstatat, Mode};
use nix::unistd::{faccessat, AccessFlags};
use runsv::reader::{self, Links};
use runsv::supervise::{directory_of, FullState, Status, SuperviseDir, STATUS_LEN};
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug)]
pub struct Service {
    /// As given on the command line (or the entry of SVDIR), for messages.
    pub name: String,
    pub path: PathBuf,
}

impl Service {
    pub fn resolve(name: &OsStr, svdir: &OsStr) -> Service {
        Service {
            name: crate::raw_name::text(name),
            path: resolve(name, svdir),
        }
    }

    pub fn supervise(&self) -> SuperviseDir {
        SuperviseDir::of_service(&self.path)
    }

    pub fn log(&self) -> PathBuf {
        self.path.join("log")
    }
}

/// runit's rule: a name that does not start with `/` or `.`, is not empty and does not
/// end with `/` lives in SVDIR; any other name is taken relative to the current directory.
pub fn resolve(name: &OsStr, svdir: &OsStr) -> PathBuf {
    let bytes = name.as_bytes();
    let in_svdir =
        !bytes.is_empty() && bytes[0] != b'/' && bytes[0] != b'.' && bytes[bytes.len() - 1] != b'/';
    if !in_svdir {
        return PathBuf::from(name);
    }
    if svdir.is_empty() {
        // chdir("") fails with ENOENT in runit; keep the path empty so that it fails too.
        return PathBuf::new();
    }
    let mut path = OsString::from(svdir);
    if !svdir.as_bytes().ends_with(b"/") {
        path.push("/");
    }
    path.push(name);
    PathBuf::from(path)
}

/// The errno `chdir(path)` would fail with, if any.
pub fn enter(path: &Path) -> Result<(), i32> {
    // One syscall, as chdir would be: `path/.` fails with ENOTDIR for a file, ENOENT
    // when missing, and EACCES without search permission (root always has it).
    if path.as_os_str().is_empty() {
        return Err(nix::libc::ENOENT);
    }
    nix::unistd::access(&path.join("."), nix::unistd::AccessFlags::X_OK).map_err(|e| e as i32)
}

/// Whether the service is normally up (no `down` file); `Err` carries the errno of a
/// `stat` that failed otherwise than with ENOENT.
pub fn normally_up(path: &Path) -> Result<bool, i32> {
    match fs::metadata(path.join("down")) {
        Ok(_) => Ok(false),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(errno::of_io(&e)),
    }
}

/// What a live supervisor published: runit's status, and runtree's full state when its
/// runsv wrote one (a state file that cannot be read counts as absent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub status: Status,
    pub state: Option<FullState>,
    /// The service's cgroup, as its runsv names it in `state` (None: process groups).
    pub cgroup: Option<std::path::PathBuf>,
}

impl Snapshot {
    /// Whether the process the state names is still the one that was started (same pid,
    /// same start time): a state runsv could not rewrite (a full disk, before runsv's
    /// in-place fallback) may name one long gone, and nothing sv does may rest on it.
    /// Without a state, or a start time, there is nothing to check.
    pub fn current(&self) -> bool {
        match &self.state {
            Some(state) if state.pid != 0 && state.starttime != 0 => {
                runsv::proc::start_time(state.pid) == Some(state.starttime)
            }
            _ => true,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Probe {
    Live(Snapshot),
    /// Nobody holds `supervise/ok` open.
    NotRunning,
    /// A warning, counted in the exit code.
    Unreadable(Message),
}

/// runit's `svstatus_get`: probe `supervise/ok`, then read the first 20 bytes of
/// `supervise/status` (runit reads with one `read(2)` of 20 bytes, so a longer file is
/// accepted and a shorter one, like daemontools' 18 bytes, is "bad format").
pub fn probe(dir: &Path) -> Probe {
    match ServiceDir::open(dir) {
        Ok(dir) => {
            dir.probe(|errno| Message::fail_errno("unable to change to service directory", errno))
        }
        Err(errno) => Probe::Unreadable(Message::new(
            Level::Warning,
            "unable to open supervise/ok",
            Some(errno),
        )),
    }
}

/// A service directory held open (O_PATH) while its files are read: each is then a
/// short lookup relative to it, not the whole path again (`sv status` of a thousand
/// services spent a tenth of its time walking paths).
pub struct ServiceDir {
    fd: OwnedFd,
}

impl ServiceDir {
    /// The errno is the one `chdir` gives for a missing directory or a file; a
    /// directory without search permission is found when something in it is opened
    /// (O_PATH asks for none), and reported then as `chdir` would.
    pub fn open(path: &Path) -> Result<ServiceDir, i32> {
        ServiceDir::open_at(None, path)
    }

    /// The subdirectory `name` (`log`).
    pub fn sub(&self, name: &str) -> Result<ServiceDir, i32> {
        ServiceDir::open_at(Some(self.fd.as_raw_fd()), Path::new(name))
    }

    fn open_at(base: Option<RawFd>, path: &Path) -> Result<ServiceDir, i32> {
        if path.as_os_str().is_empty() {
            return Err(nix::libc::ENOENT);
        }
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let fd = openat(base, path, flags, Mode::empty()).map_err(|e| e as i32)?;
        // SAFETY: openat just returned this fd; nothing else owns it.
        Ok(ServiceDir {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// The last line of output in the service's tail (supervise/tail), shortened to
    /// something a status line can show; None when there is none or it is unreadable
    /// (it is private to runsv's user).
    pub fn last_output(&self) -> Option<String> {
        /// Enough for a line a person reads in a status.
        const SHOWN: usize = 200;
        let tail = self.supervise().join("tail");
        let file = runsv::tail::open_at(Some(self.fd.as_fd()), &tail).ok()??;
        let snapshot = runsv::tail::Snapshot::read_last(&file, 1024).ok()??;
        let line = String::from_utf8_lossy(snapshot.last_line()?);
        let line: String = line
            .trim()
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        if line.is_empty() {
            return None;
        }
        match line.char_indices().nth(SHOWN) {
            Some((cut, _)) => Some(format!("{}…", &line[..cut])),
            None => Some(line),
        }
    }

    /// Its `supervise/`: relative to the directory, or the state root's (an absolute
    /// path, which openat takes as it is) for a read-only one (runsv::state_dir).
    fn supervise(&self) -> PathBuf {
        runsv::state_dir::locate_at(Some(self.fd.as_fd()), Path::new(""))
    }

    /// Its `supervise/` and runit's probe of the `ok` in it. The own `supervise/ok` is
    /// tried first: where it is found the own `supervise` exists, which is what
    /// [`runsv::state_dir`] would pick, so a writable tree costs no lookup of the state
    /// root nor a stat of `supervise` itself. Only where it is missing is the state
    /// root's asked for.
    fn probe_ok(&self) -> (PathBuf, Result<bool, reader::FileError>) {
        let base = Some(self.fd.as_fd());
        let own = PathBuf::from("supervise");
        let running = reader::supervisor_running_at(base, &own.join("ok"));
        let missing = |result: &Result<bool, reader::FileError>| {
            matches!(
                result,
                Err(e) if matches!(e.raw_os_error(), Some(nix::libc::ENOENT | nix::libc::ENOTDIR))
            )
        };
        if !missing(&running) {
            return (own, running);
        }
        let located = self.supervise();
        if located == own {
            return (own, running);
        }
        let running = reader::supervisor_running_at(base, &located.join("ok"));
        (located, running)
    }

    /// Whether the directory may be searched, as `chdir` would check: the cause of an
    /// EACCES inside it is either this or the file's own permissions.
    fn searchable(&self) -> Result<(), i32> {
        faccessat(
            Some(self.fd.as_raw_fd()),
            ".",
            AccessFlags::X_OK,
            AtFlags::empty(),
        )
        .map_err(|e| e as i32)
    }

    /// See [`probe`]. `unentered` is the message for a directory that cannot be
    /// searched (the service's and its log's differ, as in runit).
    pub fn probe(&self, unentered: impl Fn(i32) -> Message) -> Probe {
        let base = Some(self.fd.as_fd());
        let (supervise, running) = self.probe_ok();
        match running {
            Ok(true) => {}
            Ok(false) => return Probe::NotRunning,
            Err(e) => {
                if e.raw_os_error() == Some(nix::libc::EACCES) {
                    if let Err(errno) = self.searchable() {
                        return Probe::Unreadable(unentered(errno));
                    }
                }
                return Probe::Unreadable(file_warning("unable to open supervise/ok", &e));
            }
        }
        // runtree's runsv writes its status into `state` too, after `status`: one file
        // to read, and never a status from before a change beside a state from after it.
        let state_bytes = reader::read_at(
            base,
            &supervise.join("state"),
            reader::MAX_SUPERVISE_FILE,
            Links::Refuse,
        )
        .ok();
        // A `supervise` link into another service's supervise/ shows that service's
        // process as this one's: the state says whose it is.
        if let Some(owner) = state_bytes.as_deref().and_then(directory_of) {
            let this = nix::sys::stat::fstat(self.fd.as_raw_fd()).ok();
            if this.is_some_and(|this| (this.st_dev, this.st_ino) != owner) {
                return Probe::Unreadable(Message::warning(
                    "supervise/ belongs to another service directory (is supervise a link?)",
                ));
            }
        }
        let cgroup = state_bytes
            .as_deref()
            .and_then(runsv::cgroup::group_in_state);
        let state = state_bytes
            .and_then(|bytes| FullState::read_from(&mut std::io::Cursor::new(bytes)).ok());
        if let Some(status) = state.as_ref().and_then(|state| state.status) {
            return Probe::Live(Snapshot {
                status,
                state,
                cgroup,
            });
        }
        let (mut file, opened) =
            match reader::open_regular_stat_at(base, &supervise.join("status"), Links::Refuse) {
                Ok(opened) => opened,
                // runit opens a directory and fails to read it: its words for that.
                Err(reader::FileError {
                    cause:
                        reader::Cause::Kind {
                            found: reader::Kind::Directory,
                            ..
                        },
                    ..
                }) => {
                    return Probe::Unreadable(Message::new(
                        Level::Warning,
                        "unable to read supervise/status",
                        Some(nix::libc::EISDIR),
                    ))
                }
                Err(e) => {
                    return Probe::Unreadable(file_warning("unable to open supervise/status", &e))
                }
            };
        // One read(2) of 20 bytes, as runit: a longer file is accepted, and never read on;
        // but one larger than any supervisor writes (a huge sparse file) is no status.
        if u64::try_from(opened.st_size).is_ok_and(|size| size > reader::MAX_SUPERVISE_FILE) {
            return Probe::Unreadable(Message::warning(format!(
                "unable to read supervise/status: is larger than {} bytes",
                reader::MAX_SUPERVISE_FILE
            )));
        }
        let mut bytes = [0u8; STATUS_LEN];
        let read = match file.read(&mut bytes) {
            Ok(n) => n,
            Err(e) => {
                return Probe::Unreadable(Message::warning_errno(
                    "unable to read supervise/status",
                    &e,
                ))
            }
        };
        // The state byte runit does not know (3 and up) also reads as "bad format" here,
        // where runit would print a line without its `run:`/`down:` prefix.
        let status = match Status::decode(&bytes[..read]) {
            Ok(status) => status,
            Err(_) => {
                return Probe::Unreadable(Message::warning(
                    "unable to read supervise/status: bad format",
                ))
            }
        };
        Probe::Live(Snapshot {
            status,
            state,
            cgroup,
        })
    }

    /// See [`normally_up`].
    pub fn normally_up(&self) -> Result<bool, i32> {
        match fstatat(Some(self.fd.as_raw_fd()), "down", AtFlags::empty()) {
            Ok(_) => Ok(false),
            Err(nix::errno::Errno::ENOENT) => Ok(true),
            Err(e) => Err(e as i32),
        }
    }
}

/// `WHAT: CAUSE` for a file that could not be opened: runit's words for a system
/// error, and what the file is when it is not the kind expected.
fn file_warning(what: &str, error: &reader::FileError) -> Message {
    match error.raw_os_error() {
        Some(errno) => Message::new(Level::Warning, what, Some(errno)),
        None => Message::warning(format!("{what}: {}", error.reason())),
    }
}

/// Every entry of SVDIR that is a directory or a symlink to one, without dot-entries,
/// sorted by name: the services of `sv status` without arguments.
pub fn list(svdir: &OsStr) -> std::io::Result<Vec<OsString>> {
    let mut names: Vec<OsString> = runsv::scan_dir::entries(Path::new(svdir))?
        .into_iter()
        .filter(|entry| entry.is_service())
        .map(|entry| entry.name)
        .collect();
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    Ok(names)
}

/// The services named, or every service of the scan directory when none is (`sv
/// blame`, `sv health`); `Err` once the scan directory could not be read, as said on
/// stderr in sv's words.
pub fn named_or_all(names: &[OsString], svdir: &OsStr) -> Result<Vec<OsString>, ()> {
    if !names.is_empty() {
        return Ok(names.to_vec());
    }
    list(svdir).map_err(|error| {
        eprintln!(
            "fatal: unable to read {}: {}",
            svdir.to_string_lossy(),
            crate::errno::error_str(crate::errno::of_io(&error))
        );
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolved(name: &str, svdir: &str) -> PathBuf {
        resolve(OsStr::new(name), OsStr::new(svdir))
    }

    #[test]
    fn name_resolution() {
        assert_eq!(resolved("web", "/service"), PathBuf::from("/service/web"));
        assert_eq!(
            resolved("web", "/etc/service/"),
            PathBuf::from("/etc/service/web")
        );
        assert_eq!(
            resolved("web/log", "/service"),
            PathBuf::from("/service/web/log")
        );
        assert_eq!(resolved("/srv/web", "/service"), PathBuf::from("/srv/web"));
        assert_eq!(resolved("./web", "/service"), PathBuf::from("./web"));
        assert_eq!(resolved(".web", "/service"), PathBuf::from(".web"));
        assert_eq!(resolved("web/", "/service"), PathBuf::from("web/"));
        assert_eq!(resolved("", "/service"), PathBuf::from(""));
        assert_eq!(resolved("web", ""), PathBuf::from(""));
        assert_eq!(resolved("web", "rel"), PathBuf::from("rel/web"));
    }

    #[test]
    fn enter_gives_chdirs_errno() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(enter(dir.path()), Ok(()));
        assert_eq!(enter(&dir.path().join("missing")), Err(nix::libc::ENOENT));
        let file = dir.path().join("file");
        fs::write(&file, "").unwrap();
        assert_eq!(enter(&file), Err(nix::libc::ENOTDIR));
        assert_eq!(enter(&file.join("x")), Err(nix::libc::ENOTDIR));
        assert_eq!(enter(Path::new("")), Err(nix::libc::ENOENT));
    }

    #[test]
    fn listing_skips_dot_entries_and_files() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b", "a", ".hidden", "c"] {
            fs::create_dir(dir.path().join(name)).unwrap();
        }
        fs::write(dir.path().join("file"), "").unwrap();
        std::os::unix::fs::symlink(dir.path().join("a"), dir.path().join("link")).unwrap();
        std::os::unix::fs::symlink("/nonexistent", dir.path().join("dangling")).unwrap();
        let names = list(dir.path().as_os_str()).unwrap();
        assert_eq!(names, ["a", "b", "c", "link"].map(OsString::from));
    }

    #[test]
    fn probe_without_supervisor() {
        let dir = tempfile::tempdir().unwrap();
        match probe(dir.path()) {
            Probe::Unreadable(message) => assert_eq!(
                message.render("x"),
                "warning: x: unable to open supervise/ok: file does not exist"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_status_inside_the_state_file_wins() {
        use crate::fake::{down, full, running, stamp, FakeSupervisor};
        use runsv::supervise::ServiceState;
        let dir = tempfile::tempdir().unwrap();
        let fake = FakeSupervisor::new(dir.path(), down(b'd', stamp(100)));
        // An older runsv: no status in the state file, so `status` is read.
        fake.set_state(&full(ServiceState::Down, 0, stamp(100), ""));
        match probe(dir.path()) {
            Probe::Live(snapshot) => assert_eq!(snapshot.status, down(b'd', stamp(100))),
            other => panic!("{other:?}"),
        }
        // runtree's runsv: the state carries the status written with it, newer than a
        // `status` file read a moment before it was replaced.
        let mut state = full(ServiceState::Running, 42, stamp(200), "");
        state.status = Some(running(42, stamp(200)));
        fake.set_state(&state);
        match probe(dir.path()) {
            Probe::Live(snapshot) => {
                assert_eq!(snapshot.status, running(42, stamp(200)));
                assert_eq!(snapshot.state, Some(state));
            }
            other => panic!("{other:?}"),
        }
    }
}
