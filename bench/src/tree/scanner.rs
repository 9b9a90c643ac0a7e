//! The four suites as trees: which scanner and supervisor each runs, how its service
//! directories are laid out, how it is started, and how its status file says running.

use super::running::Tree;
use super::setup::mark_top_directory;
use crate::cleanup;
use crate::suite::{missing_programs, RUN_SCRIPT};
use nix::libc;
use nix::unistd::Pid;
use runsv::control::supervisor_running;
use runsv::supervise::{RunState, Status, SuperviseDir};
use std::cell::Cell as Counter;
use std::ffi::OsString;
use std::fs::{self, File};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The directories the peers' programs are found in; runtree's binary directory is put
/// before them for runtree's tree only, so that each scanner starts its own supervisor.
const SYSTEM_PATH: &str = "/usr/bin:/bin:/usr/sbin:/sbin";

/// `s6-svscan -c`: room for the largest fleet (the default, 500, is too small).
const S6_MAX_SERVICES: &str = "2000";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scanner {
    Runit,
    S6,
    Runtree,
    Daemontools,
}

impl Scanner {
    /// The column order, and the order of the first interleaved round.
    pub const ALL: [Scanner; 4] = [
        Scanner::Runit,
        Scanner::S6,
        Scanner::Runtree,
        Scanner::Daemontools,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scanner::Runit => "runit",
            Scanner::S6 => "s6",
            Scanner::Runtree => "runtree",
            Scanner::Daemontools => "daemontools",
        }
    }

    pub fn scanner_name(self) -> &'static str {
        match self {
            Scanner::Runit => "runsvdir",
            Scanner::S6 => "s6-svscan",
            Scanner::Runtree => "svdir",
            Scanner::Daemontools => "svscan",
        }
    }

    pub fn supervisor_name(self) -> &'static str {
        match self {
            Scanner::Runit | Scanner::Runtree => "runsv",
            Scanner::S6 => "s6-supervise",
            Scanner::Daemontools => "supervise",
        }
    }
}

/// One suite as a tree: its scanner and what the metrics need to drive it.
pub struct ScanSuite {
    pub scanner: Scanner,
    program: PathBuf,
    /// runtree's runsv, to check that svdir starts it and not another `runsv`.
    pub supervisor: PathBuf,
    path_env: OsString,
    /// Where this suite's scan directories are created.
    root: PathBuf,
    /// The scanners' stderr (and so their supervisors' and services'), appended.
    log: PathBuf,
    /// Numbers the directories, so that no two trees share one.
    serial: Counter<u32>,
    /// Why this suite cannot be measured, if it cannot.
    pub unavailable: Option<String>,
}

/// What a service directory holds.
#[derive(Clone, Copy)]
pub enum Definition<'a> {
    /// The one `run` script of every measurement: `exec sleep 100000`.
    Plain,
    /// A dependency chain link, in the suite's own idiom, on the sibling named here.
    After(&'a str),
    /// A `run` that exits 1 at once, every time: the crash storm.
    Crash,
}

impl crate::interleave::Available for ScanSuite {
    fn unavailable(&self) -> Option<&str> {
        self.unavailable.as_deref()
    }
}

impl ScanSuite {
    pub fn new(scanner: Scanner, runtree_bin: &Path, work: &Path) -> ScanSuite {
        let usr = Path::new("/usr/bin");
        let (program, needed, supervisor): (PathBuf, Vec<PathBuf>, PathBuf) = match scanner {
            Scanner::Runit => (
                usr.join("runsvdir"),
                vec![usr.join("runsv"), usr.join("sv")],
                usr.join("runsv"),
            ),
            Scanner::S6 => (
                usr.join("s6-svscan"),
                vec![
                    usr.join("s6-supervise"),
                    usr.join("s6-svwait"),
                    usr.join("s6-svscanctl"),
                ],
                usr.join("s6-supervise"),
            ),
            Scanner::Runtree => (
                runtree_bin.join("svdir"),
                vec![runtree_bin.join("runsv")],
                runtree_bin.join("runsv"),
            ),
            Scanner::Daemontools => (
                usr.join("svscan"),
                vec![usr.join("supervise"), usr.join("svc")],
                usr.join("supervise"),
            ),
        };
        let programs: Vec<&Path> = std::iter::once(program.as_path())
            .chain(needed.iter().map(PathBuf::as_path))
            .collect();
        let unavailable = missing_programs(&programs, scanner == Scanner::Runtree, scanner.name());
        let path_env = match scanner {
            Scanner::Runtree => {
                let mut path = runtree_bin.as_os_str().to_owned();
                path.push(":");
                path.push(SYSTEM_PATH);
                path
            }
            _ => OsString::from(SYSTEM_PATH),
        };
        ScanSuite {
            scanner,
            program,
            supervisor,
            path_env,
            root: work.join(format!("tree-{}", scanner.name())),
            log: work.join(format!("tree-{}.stderr", scanner.name())),
            serial: Counter::new(0),
            unavailable,
        }
    }

    pub fn name(&self) -> &'static str {
        self.scanner.name()
    }

    /// A new, empty directory `LABEL-N` of this suite.
    pub fn fresh_dir(&self, label: &str) -> io::Result<PathBuf> {
        let n = self.serial.get() + 1;
        self.serial.set(n);
        let dir = self.root.join(format!("{label}-{n}"));
        if !self.root.exists() {
            fs::create_dir_all(&self.root)?;
            mark_top_directory(&self.root);
        }
        fs::create_dir(&dir)?;
        Ok(dir)
    }

    /// Creates the service directory `parent/name`.
    pub fn create_service(
        &self,
        parent: &Path,
        name: &str,
        definition: Definition,
    ) -> io::Result<PathBuf> {
        let dir = parent.join(name);
        fs::create_dir(&dir)?;
        let script = |body: String| -> io::Result<()> {
            let run = dir.join("run");
            fs::write(&run, body)?;
            fs::set_permissions(&run, fs::Permissions::from_mode(0o755))
        };
        match (definition, self.scanner) {
            (Definition::Plain, _) => script(RUN_SCRIPT.to_string())?,
            (Definition::Crash, _) => script("#!/bin/sh\nexit 1\n".to_string())?,
            // runit's idiom: `sv start` sends `u` to the dependency and waits (7 s) until
            // it runs; it fails at once if no runsv supervises it yet, and runsv restarts
            // the script a second later.
            (Definition::After(previous), Scanner::Runit | Scanner::Daemontools) => {
                script(format!(
                    "#!/bin/sh\n/usr/bin/sv start ../{previous} >/dev/null || exit 1\nexec sleep 100000\n"
                ))?
            }
            // s6 without s6-rc: wait for the dependency's `u` event (up) in its fifodir;
            // it fails if no s6-supervise has made that fifodir yet.
            (Definition::After(previous), Scanner::S6) => script(format!(
                "#!/bin/sh\n/usr/bin/s6-svwait -u ../{previous} || exit 1\nexec sleep 100000\n"
            ))?,
            // runtree's own form: runsv starts the service once the dependency's
            // supervise/state says running.
            (Definition::After(previous), Scanner::Runtree) => fs::write(
                dir.join("service.yaml"),
                format!("exec: sleep 100000\nafter: [{previous}]\nlog: none\n"),
            )?,
        }
        Ok(dir)
    }

    /// Starts the scanner on `dir` as an init starts it: in a session of its own (which
    /// is also a process group of its own, so that a Ctrl-C in the terminal reaches the
    /// bench, which then stops everything in order). With autogroup scheduling a
    /// session is what the kernel shares the CPU between, so the tree competes with its
    /// services as it would at boot, not as a part of the bench's session.
    pub fn start(&self, dir: &Path) -> io::Result<Tree> {
        let log = crate::command::append_log(&self.log)?;
        let log_offset = log.metadata().map(|m| m.len()).unwrap_or(0);
        let mut command = Command::new(&self.program);
        if self.scanner == Scanner::S6 {
            // s6-svscan 2.11 supervises at most 500 services unless told otherwise
            // (its tables are sized at start); a user with 1000 services raises it.
            command.args(["-c", S6_MAX_SERVICES]);
        }
        command
            .arg(dir)
            .env("PATH", &self.path_env)
            .env_remove("SVDIR")
            .env_remove("SVWAIT")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        // SAFETY: setsid is async-signal-safe and allocates nothing.
        unsafe {
            command.pre_exec(|| nix::unistd::setsid().map(drop).map_err(io::Error::from));
        }
        let child = command.spawn()?;
        let pid = Pid::from_raw(child.id() as i32);
        // Dropping the Child neither kills nor reaps it: the Tree and cleanup own it.
        cleanup::register_supervisor(pid);
        Ok(Tree {
            scanner: self.scanner,
            pid,
            dir: dir.to_path_buf(),
            log: self.log.clone(),
            log_offset,
        })
    }

    /// The pid of the service's running process, from its supervisor's status file:
    /// runit's 20 bytes (runtree writes the same), s6's 35, daemontools' 18.
    pub fn running_pid(&self, service: &Path) -> Option<u32> {
        running_pid(self.scanner, service)
    }

    /// Whether a supervisor holds `service` (runit, runtree, daemontools: the `ok` FIFO
    /// has a reader; s6, which has no `ok`: `supervise/lock` is fcntl-locked).
    pub fn supervisor_probe(&self, service: &Path, lock: Option<&File>) -> bool {
        match self.scanner {
            Scanner::S6 => lock.is_some_and(|file| posix_lock_holder(file).is_some()),
            _ => supervisor_running(&SuperviseDir::of_service(service)).unwrap_or(false),
        }
    }
}

/// See `ScanSuite::running_pid`.
fn running_pid(scanner: Scanner, service: &Path) -> Option<u32> {
    let bytes = fs::read(service.join("supervise/status")).ok()?;
    let pid = match scanner {
        Scanner::Runit | Scanner::Runtree => {
            let status = Status::decode(&bytes).ok()?;
            (status.run_state == RunState::Run).then_some(status.pid)?
        }
        Scanner::S6 => {
            // pid: u64 big-endian at 24; flags at 34, bit 1 = finishing.
            if bytes.len() != 35 || bytes[34] & 2 != 0 {
                return None;
            }
            u32::try_from(u64::from_be_bytes(bytes[24..32].try_into().ok()?)).ok()?
        }
        Scanner::Daemontools => {
            // pid: u32 little-endian at 12; 0 when down.
            if bytes.len() != 18 {
                return None;
            }
            u32::from_le_bytes(bytes[12..16].try_into().ok()?)
        }
    };
    (pid != 0).then_some(pid)
}

/// The pid holding a POSIX write lock on the file (s6-supervise on supervise/lock).
fn posix_lock_holder(file: &File) -> Option<i32> {
    // SAFETY: flock is a plain C struct, for which all zero bytes are a valid value.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = libc::F_WRLCK as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    // SAFETY: F_GETLK takes a pointer to a flock, which lives across the call; the
    // descriptor is the open file's.
    let result = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETLK, &mut lock) };
    (result == 0 && lock.l_type != libc::F_UNLCK as libc::c_short).then_some(lock.l_pid)
}
