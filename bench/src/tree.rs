//! Scanner-level measurements: whole trees (a scanner, one supervisor per service, the
//! services) of runit (`runsvdir`), s6 (`s6-svscan`), runtree (`svdir`) and, where its
//! peers are compared on the same thing, daemontools (`svscan`).
//!
//! Every tree is started the same way: the scanner on a fresh directory under the
//! bench's work directory, stdin and stdout on /dev/null, stderr to a log kept to
//! explain failures, in a process group of its own, with a `PATH` that finds that suite's
//! own supervisor first. The bench may poll (the supervisors may not); where an event
//! exists (a rewrite in `supervise/`) it is waited for with inotify, and a short poll
//! covers what inotify cannot see (an `exec`, a process exiting).
//!
//! Each tree is ended through the cleanup module: the scanner is asked to stop, then
//! SIGTERM/SIGKILL by its pid and the SIGKILL of whatever it left behind, which, the
//! bench being a child subreaper, can only be the bench's own descendants.

use crate::cleanup;
use crate::metrics::{Cell, Samples};
use crate::suite::{missing_programs, RUN_SCRIPT};
use nix::libc;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitid, waitpid, Id, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use runsv::supervise::{supervisor_running, RunState, Status, SuperviseDir};
use std::cell::Cell as Counter;
use std::ffi::OsString;
use std::fs::{self, File};
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The directories the peers' programs are found in; runtree's binary directory is put
/// before them for runtree's tree only, so that each scanner starts its own supervisor.
const SYSTEM_PATH: &str = "/usr/bin:/bin:/usr/sbin:/sbin";

/// runsvdir and svscan supervise at most 1000 entries.
pub const MAX_FLEET: usize = 1000;

/// `s6-svscan -c`: room for the largest fleet (the default, 500, is too small).
const S6_MAX_SERVICES: &str = "2000";

/// A supervisor is killed only after it has run this long: s6-svscan HEAD restarts a
/// supervisor at its last spawn + 1 s, and runtree may throttle a supervisor that keeps
/// dying; the metric is the reaction to a death, not a crash-loop throttle (as in the
/// restart latency of services).
const MIN_SUPERVISOR_UPTIME: Duration = Duration::from_millis(1200);

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
    supervisor: PathBuf,
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
enum Definition<'a> {
    /// The one `run` script of every measurement: `exec sleep 100000`.
    Plain,
    /// A dependency chain link, in the suite's own idiom, on the sibling named here.
    After(&'a str),
    /// A `run` that exits 1 at once, every time: the crash storm.
    Crash,
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
    fn fresh_dir(&self, label: &str) -> io::Result<PathBuf> {
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
    fn create_service(
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
    fn start(&self, dir: &Path) -> io::Result<Tree> {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
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
    fn supervisor_probe(&self, service: &Path, lock: Option<&File>) -> bool {
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

/// A running scanner. Dropping it stops the tree and removes its directory.
pub struct Tree {
    scanner: Scanner,
    pid: Pid,
    dir: PathBuf,
    log: PathBuf,
    log_offset: u64,
}

impl Tree {
    fn alive(&self) -> bool {
        runtree::alive(self.pid.as_raw() as u32)
    }

    /// The scanner's exit, read without reaping it (so that its pid stays ours).
    fn exit_status(&self) -> Option<WaitStatus> {
        match waitid(
            Id::Pid(self.pid),
            WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT,
        ) {
            Ok(WaitStatus::StillAlive) | Err(_) => None,
            Ok(status) => Some(status),
        }
    }

    /// "svdir exited (status 1): <its last stderr lines>"
    fn died(&self) -> String {
        let how = match self.exit_status() {
            Some(WaitStatus::Exited(_, code)) => format!("exit status {code}"),
            Some(WaitStatus::Signaled(_, signal, _)) => format!("killed by {signal}"),
            _ => "gone".into(),
        };
        format!(
            "{} exited ({how}){}",
            self.scanner.scanner_name(),
            self.log_excerpt()
        )
    }

    /// What the tree wrote to stderr since it started: a Rust panic's message, else the
    /// last two lines.
    fn log_excerpt(&self) -> String {
        let bytes = fs::read(&self.log).unwrap_or_default();
        let start = usize::try_from(self.log_offset)
            .unwrap_or(0)
            .min(bytes.len());
        let text = String::from_utf8_lossy(&bytes[start..]);
        let all: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .collect();
        let lines: &[&str] = match all.iter().rposition(|l| l.contains("panicked at")) {
            Some(i) => &all[i..(i + 2).min(all.len())],
            None => &all[all.len().saturating_sub(2)..],
        };
        if lines.is_empty() {
            String::new()
        } else {
            format!(": {}", lines.join(" "))
        }
    }

    /// The request that stops the whole tree, as each suite's user would make it (see
    /// docs/bench.md): runit: SIGHUP to runsvdir (TERM to every runsv, which stops its
    /// service and exits; SIGTERM would make runsvdir exit alone); s6: SIGTERM to
    /// s6-svscan (= `s6-svscanctl -t`); runtree: SIGTERM to svdir; daemontools, whose
    /// svscan cannot stop anything: SIGTERM to svscan (it dies), then `svc -dx` on every
    /// service. Returns the `svc` process, to be reaped once it is done.
    fn request_stop(&self, names: &[String]) -> Result<Option<Child>, String> {
        let signal = match self.scanner {
            Scanner::Runit => Signal::SIGHUP,
            _ => Signal::SIGTERM,
        };
        kill(self.pid, signal)
            .map_err(|e| format!("kill {} {}: {e}", signal, self.scanner.scanner_name()))?;
        if self.scanner != Scanner::Daemontools {
            return Ok(None);
        }
        Command::new("/usr/bin/svc")
            .arg("-dx")
            .args(names)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map(Some)
            .map_err(|e| format!("svc -dx: {e}"))
    }

    /// The supervisors: the scanner's children (of any of its threads).
    fn children(&self) -> Vec<u32> {
        children_of(self.pid.as_raw() as u32)
    }

    /// The live supervisor of the entry `name`: a child of the scanner whose last
    /// argument names it (`runsv NAME`, `s6-supervise NAME`, `supervise NAME`).
    fn supervisor_of(&self, name: &str) -> Option<u32> {
        self.children().into_iter().find(|&pid| {
            last_argument(pid).is_some_and(|arg| {
                Path::new(&arg).file_name().is_some_and(|n| n == name) && runtree::alive(pid)
            })
        })
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        if self.alive() {
            let signal = match self.scanner {
                Scanner::Runit => Signal::SIGHUP,
                _ => Signal::SIGTERM,
            };
            let _ = kill(self.pid, signal);
        }
        // SIGTERM, up to 10 s, SIGKILL; then every orphan left behind.
        cleanup::stop_supervisors(&[self.pid], Duration::from_secs(10));
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// The child pids of `pid`, from /proc/PID/task/*/children.
pub fn children_of(pid: u32) -> Vec<u32> {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut children = Vec::new();
    for task in tasks.filter_map(Result::ok) {
        if let Ok(text) = fs::read_to_string(task.path().join("children")) {
            children.extend(
                text.split_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok()),
            );
        }
    }
    children
}

fn last_argument(pid: u32) -> Option<String> {
    let bytes = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    bytes
        .split(|&b| b == 0)
        .rfind(|arg| !arg.is_empty())
        .map(|arg| String::from_utf8_lossy(arg).into_owned())
}

/// Field 22 of /proc/PID/stat (start time after boot, in clock ticks), for a process
/// that is not a zombie.
fn live_start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let mut fields = rest.split_whitespace();
    if fields.next()? == "Z" {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

fn comm_is(pid: u32, name: &str) -> bool {
    fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|comm| comm.trim_end() == name)
}

/// The pid holding a POSIX write lock on the file (s6-supervise on supervise/lock).
fn posix_lock_holder(file: &File) -> Option<i32> {
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = libc::F_WRLCK as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    let result = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETLK, &mut lock) };
    (result == 0 && lock.l_type != libc::F_UNLCK as libc::c_short).then_some(lock.l_pid)
}

/// Voluntary plus non-voluntary context switches of every thread of `pid`.
fn context_switches(pid: u32) -> Option<u64> {
    let tasks = fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut total = 0;
    for task in tasks.filter_map(Result::ok) {
        let Ok(text) = fs::read_to_string(task.path().join("status")) else {
            continue;
        };
        for line in text.lines() {
            if let Some(rest) = line
                .strip_prefix("voluntary_ctxt_switches:")
                .or_else(|| line.strip_prefix("nonvoluntary_ctxt_switches:"))
            {
                total += rest.trim().parse::<u64>().unwrap_or(0);
            }
        }
    }
    Some(total)
}

/// Waits until `condition` holds (true) or `timeout` passes (false). The condition is
/// checked again at every inotify event in `dirs` (each watched from the moment it
/// exists, so a directory created later is caught: the watch is set before the check),
/// and every `interval` in any case. `mask` must not include events the condition
/// itself causes in those directories (IN_OPEN when it reads a file there).
fn wait_until(
    dirs: &[PathBuf],
    mask: AddWatchFlags,
    timeout: Duration,
    interval: Duration,
    condition: impl FnMut() -> bool,
) -> bool {
    seen_at(dirs, mask, timeout, interval, condition).is_some()
}

/// As `wait_until`, but when the condition held: the moment it was first seen true.
/// A time measured to that moment leaves out the wait's own end: closing an inotify
/// instance that held a watch waits for an SRCU grace period in the kernel, 5–20 ms on
/// this machine, which a measurement taken after the wait would include.
fn seen_at(
    dirs: &[PathBuf],
    mask: AddWatchFlags,
    timeout: Duration,
    interval: Duration,
    mut condition: impl FnMut() -> bool,
) -> Option<Instant> {
    let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK).ok();
    let mut watched = vec![false; dirs.len()];
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(inotify) = &inotify {
            for (dir, done) in dirs.iter().zip(watched.iter_mut()) {
                if !*done {
                    *done = inotify.add_watch(dir, mask).is_ok();
                }
            }
        }
        if condition() {
            return Some(Instant::now());
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        let wait = (deadline - now).min(interval);
        match &inotify {
            Some(inotify) => {
                let mut fds = [PollFd::new(inotify.as_fd(), PollFlags::POLLIN)];
                // Sub-millisecond intervals are rounded up by poll's millisecond timeout.
                let millis = u16::try_from(wait.as_millis().max(1)).unwrap_or(u16::MAX);
                let _ = poll(&mut fds, PollTimeout::from(millis));
                let _ = inotify.read_events();
            }
            None => std::thread::sleep(wait),
        }
    }
}

/// The files of supervise/ being rewritten (status.new written and renamed), or the
/// directory appearing; not IN_OPEN, which reading the status file would cause.
fn rewrite_events() -> AddWatchFlags {
    AddWatchFlags::IN_CREATE
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_CLOSE_WRITE
        | AddWatchFlags::IN_ATTRIB
        | AddWatchFlags::IN_MODIFY
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn settle(since: Instant, uptime: Duration) {
    if let Some(rest) = uptime.checked_sub(since.elapsed()) {
        std::thread::sleep(rest);
    }
}

/// The result of one turn for one output.
pub struct Turn {
    pub value: f64,
    pub warning: Option<String>,
}

impl From<f64> for Turn {
    fn from(value: f64) -> Turn {
        Turn {
            value,
            warning: None,
        }
    }
}

/// Per output of a measurement, a cell per suite.
pub type Cells = Vec<Vec<(Scanner, Cell)>>;

/// The results of a measurement: per output, a cell per suite; and notes to print under
/// the table, attached to a suite's cell.
pub struct Measured {
    pub cells: Cells,
    pub notes: Vec<(Scanner, String)>,
}

struct Lane<'a, S> {
    suite: &'a ScanSuite,
    state: Option<S>,
    outcomes: Vec<Cell>,
}

/// Like the interleaving of the supervisor metrics (metrics.rs), with several outputs
/// per turn: prepares one lane per suite, runs `rounds` rounds giving every suite a turn
/// per round, the order rotating from round to round. An output whose turn fails drops
/// out with the reason; a lane runs as long as one of its outputs does. Returns the
/// cells (per output) and the lanes' states, for what the caller still needs from them;
/// dropping the states ends their trees.
fn interleave<'a, S>(
    suites: &[&'a ScanSuite],
    rounds: usize,
    outputs: usize,
    mut prepare: impl FnMut(&'a ScanSuite) -> Result<S, String>,
    mut turn: impl FnMut(&'a ScanSuite, &mut S) -> Vec<Result<Turn, String>>,
) -> (Cells, Vec<(Scanner, Option<S>)>) {
    let mut lanes: Vec<Lane<'a, S>> = suites
        .iter()
        .map(|&suite| {
            let prepared = match &suite.unavailable {
                Some(reason) => Err(reason.clone()),
                None => prepare(suite),
            };
            match prepared {
                Ok(state) => Lane {
                    suite,
                    state: Some(state),
                    outcomes: (0..outputs).map(|_| Ok(Samples::default())).collect(),
                },
                Err(reason) => Lane {
                    suite,
                    state: None,
                    outcomes: (0..outputs).map(|_| Err(reason.clone())).collect(),
                },
            }
        })
        .collect();
    let count = lanes.len().max(1);
    for round in 0..rounds {
        for i in 0..count {
            let Some(lane) = lanes.get_mut((round + i) % count) else {
                continue;
            };
            let Some(state) = &mut lane.state else {
                continue;
            };
            if lane.outcomes.iter().all(Result::is_err) {
                continue;
            }
            let results = turn(lane.suite, state);
            for (outcome, result) in lane.outcomes.iter_mut().zip(results) {
                let Ok(samples) = outcome else { continue };
                match result {
                    Ok(Turn { value, warning }) => {
                        samples.values.push(value);
                        if let Some(warning) = warning {
                            match samples.warnings.iter_mut().find(|(w, _)| *w == warning) {
                                Some((_, n)) => *n += 1,
                                None => samples.warnings.push((warning, 1)),
                            }
                        }
                    }
                    Err(reason) => *outcome = Err(reason),
                }
            }
        }
    }
    let mut cells: Cells = (0..outputs).map(|_| Vec::new()).collect();
    let mut states = Vec::new();
    for lane in lanes {
        for (k, outcome) in lane.outcomes.into_iter().enumerate() {
            cells[k].push((lane.suite.scanner, outcome));
        }
        states.push((lane.suite.scanner, lane.state));
    }
    (cells, states)
}

/// Waits until every service in `services` runs a process (its status file says so),
/// failing early if the scanner dies. Polls (1 ms) through the services in order,
/// waiting only on the first one not yet up, so each pass is cheap.
fn wait_all_running(
    suite: &ScanSuite,
    tree: &Tree,
    services: &[PathBuf],
    timeout: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let mut next = 0;
    let mut checked = Instant::now();
    while next < services.len() {
        if suite.running_pid(&services[next]).is_some() {
            next += 1;
            continue;
        }
        let now = Instant::now();
        if now >= deadline || (now - checked >= Duration::from_millis(50) && !tree.alive()) {
            let what = if tree.alive() {
                format!("not all running after {} s", timeout.as_secs())
            } else {
                tree.died()
            };
            let up = services
                .iter()
                .filter(|s| suite.running_pid(s).is_some())
                .count();
            return Err(format!(
                "{what}: {up} of {} services came up{}",
                services.len(),
                if tree.alive() {
                    tree.log_excerpt()
                } else {
                    String::new()
                }
            ));
        }
        if now - checked >= Duration::from_millis(50) {
            checked = now;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

/// Marks `dir` a top of directory hierarchies for ext2/3/4's inode allocator (`chattr
/// +T`), where it can: each directory made in it then starts in a block group of its
/// own choosing instead of the parent's. Without this, every turn's tree is allocated in
/// the block group where the previous turns' trees were just deleted, and ext4 without
/// a journal skips each inode deleted in the last minutes (`recently_deleted`, one
/// buffer lookup per inode, from the start of the group at every allocation): a
/// thousand services' files then cost seconds of kernel time, in proportion to how many
/// the previous suite deleted. A boot allocates among no such inodes. Best effort:
/// other filesystems have no such flag.
fn mark_top_directory(dir: &Path) {
    const FS_TOPDIR_FL: libc::c_int = 0x0002_0000;
    let Ok(file) = File::open(dir) else { return };
    let mut flags: libc::c_int = 0;
    // SAFETY: both ioctls take a pointer to an int, which lives across the calls.
    unsafe {
        if libc::ioctl(file.as_raw_fd(), libc::FS_IOC_GETFLAGS, &mut flags) == 0 {
            flags |= FS_TOPDIR_FL;
            libc::ioctl(file.as_raw_fd(), libc::FS_IOC_SETFLAGS, &flags);
        }
    }
}

/// Creates `count` plain services `svc-0000`… in `dir`; returns their directories.
fn populate(suite: &ScanSuite, dir: &Path, count: usize) -> Result<Vec<PathBuf>, String> {
    let services = (0..count)
        .map(|i| {
            let name = format!("svc-{i:04}");
            suite
                .create_service(dir, &name, Definition::Plain)
                .map_err(|e| format!("creating {name}: {e}"))
        })
        .collect::<Result<Vec<PathBuf>, String>>()?;
    age(dir)?;
    Ok(services)
}

/// Sets the scan directory's mtime a minute back, as for a directory set up before
/// its scanner starts (at boot, say). runsvdir sleeps a second before its first scan
/// if the directory changed within the current second, which the bench's own set-up
/// would otherwise always trigger.
fn age(dir: &Path) -> Result<(), String> {
    let past = std::time::SystemTime::now() - Duration::from_secs(60);
    File::open(dir)
        .and_then(|file| file.set_times(fs::FileTimes::new().set_modified(past)))
        .map_err(|e| format!("setting the mtime of {}: {e}", dir.display()))
}

/// A tree of `count` plain services, started and all running.
fn start_tree(
    suite: &ScanSuite,
    label: &str,
    count: usize,
) -> Result<(Tree, Vec<PathBuf>), String> {
    let dir = suite
        .fresh_dir(label)
        .map_err(|e| format!("creating the scan directory: {e}"))?;
    let services = populate(suite, &dir, count)?;
    let tree = suite
        .start(&dir)
        .map_err(|e| format!("starting {}: {e}", suite.scanner.scanner_name()))?;
    let timeout = Duration::from_secs(30 + count as u64 / 20);
    wait_all_running(suite, &tree, &services, timeout)?;
    Ok((tree, services))
}

/// Checks that the scanner runs a service at all, and (for runtree) that the
/// supervisor it started is runtree's runsv, so that a scanner that does not work yet
/// shows as `n/a` with the reason instead of failing every metric.
pub fn probe(suite: &ScanSuite) -> Result<(), String> {
    let (tree, _) = start_tree(suite, "probe", 1).map_err(|reason| {
        format!(
            "{} does not run a service: {reason}",
            suite.scanner.scanner_name()
        )
    })?;
    if suite.scanner == Scanner::Runtree {
        let expected = fs::canonicalize(&suite.supervisor).unwrap_or_default();
        for child in tree.children() {
            let exe = fs::read_link(format!("/proc/{child}/exe")).unwrap_or_default();
            if exe != expected {
                return Err(format!(
                    "svdir started {}, not runtree's runsv ({})",
                    exe.display(),
                    expected.display()
                ));
            }
        }
    }
    Ok(())
}

/// Raises the soft limits on open files and processes to the hard limits: a tree of
/// 1000 services is 2000 processes, and a scanner may hold a descriptor per supervisor.
/// Returns what was raised, for the header.
pub fn raise_limits() -> Vec<String> {
    let mut raised = Vec::new();
    for (resource, name) in [
        (libc::RLIMIT_NOFILE, "open files"),
        (libc::RLIMIT_NPROC, "processes"),
    ] {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if unsafe { libc::getrlimit(resource, &mut limit) } != 0 || limit.rlim_cur >= limit.rlim_max
        {
            continue;
        }
        let old = limit.rlim_cur;
        limit.rlim_cur = limit.rlim_max;
        if unsafe { libc::setrlimit(resource, &limit) } == 0 {
            let max = if limit.rlim_max == libc::RLIM_INFINITY {
                "unlimited".to_string()
            } else {
                limit.rlim_max.to_string()
            };
            raised.push(format!("{name} {old} → {max}"));
        }
    }
    raised
}

// ---------------------------------------------------------------------------------
// bring-up and stop of a fleet

/// Per round and suite: `size` services in a fresh directory; the time from the
/// scanner's spawn to every service running (output 0); one second later, the time
/// from the suite's stop request to the last of those service processes gone
/// (output 1).
///
/// Also, once per round (after runtree's turn), the floor under every suite: the same
/// `size` run scripts spawned by the bench itself, with no scanner or supervisor, two
/// spawning threads (one per core here): the time until every one has been exec'd.
/// That is what "running" means for the suites too (a pid in the status file), so a
/// supervisor's own share of a bring-up is its time above the floor. Returned as the
/// second value: the floor's samples in ms.
pub fn bringup_and_stop(
    suites: &[&ScanSuite],
    size: usize,
    rounds: usize,
    settle_time: Duration,
) -> (Measured, Vec<f64>) {
    let floor = std::cell::RefCell::new(Vec::new());
    let (cells, _) = interleave(
        suites,
        rounds,
        2,
        |_| Ok(()),
        |suite, ()| {
            let turn = fleet_turn(suite, size, settle_time);
            if suite.scanner == Scanner::Runtree {
                if let Ok(ms) = spawn_floor(suite, size) {
                    floor.borrow_mut().push(ms);
                }
            }
            turn
        },
    );
    (
        Measured {
            cells,
            notes: Vec::new(),
        },
        floor.into_inner(),
    )
}

/// The `size` run scripts of a fresh fleet directory spawned directly (two threads),
/// in ms until all are exec'd; then each is killed and reaped.
fn spawn_floor(suite: &ScanSuite, size: usize) -> Result<f64, String> {
    let dir = suite
        .fresh_dir("floor")
        .map_err(|e| format!("creating the directory: {e}"))?;
    let services = populate(suite, &dir, size)?;
    std::thread::sleep(Duration::from_millis(200));
    let spawn_all = |part: &[PathBuf]| -> Vec<Child> {
        part.iter()
            .filter_map(|service| {
                Command::new("./run")
                    .current_dir(service)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .process_group(0)
                    .spawn()
                    .ok()
            })
            .collect()
    };
    let start = Instant::now();
    let (first, second) = services.split_at(services.len() / 2);
    let mut children = std::thread::scope(|scope| {
        let other = scope.spawn(|| spawn_all(second));
        let mut mine = spawn_all(first);
        mine.extend(other.join().unwrap_or_default());
        mine
    });
    let elapsed = millis(start.elapsed());
    let spawned = children.len();
    for child in &mut children {
        let group = Pid::from_raw(child.id() as i32);
        let _ = nix::sys::signal::killpg(group, Signal::SIGKILL);
        let _ = child.wait();
    }
    let _ = fs::remove_dir_all(&dir);
    if spawned != size {
        return Err(format!("{spawned} of {size} spawned"));
    }
    Ok(elapsed)
}

fn fleet_turn(suite: &ScanSuite, size: usize, settle_time: Duration) -> Vec<Result<Turn, String>> {
    let failed = |reason: String| vec![Err(reason.clone()), Err(reason)];
    let dir = match suite.fresh_dir("fleet") {
        Ok(dir) => dir,
        Err(e) => return failed(format!("creating the scan directory: {e}")),
    };
    let services = match populate(suite, &dir, size) {
        Ok(services) => services,
        Err(reason) => return failed(reason),
    };
    let names: Vec<String> = (0..size).map(|i| format!("svc-{i:04}")).collect();
    // Let the directory writes settle so that they do not land in the measurement.
    std::thread::sleep(Duration::from_millis(200));

    let start = Instant::now();
    let tree = match suite.start(&dir) {
        Ok(tree) => tree,
        Err(e) => return failed(format!("starting {}: {e}", suite.scanner.scanner_name())),
    };
    let timeout = Duration::from_secs(30 + size as u64 / 20);
    if let Err(reason) = wait_all_running(suite, &tree, &services, timeout) {
        return failed(reason);
    }
    let bringup = millis(start.elapsed());

    // The pids to watch for the stop, with their start times (so that a reused pid is
    // not mistaken for a service still running).
    let mut pids: Vec<(u32, u64)> = Vec::with_capacity(size);
    for service in &services {
        if let Some(pid) = suite.running_pid(service) {
            if let Some(start_time) = live_start_time(pid) {
                pids.push((pid, start_time));
            }
        }
    }
    std::thread::sleep(settle_time);

    let start = Instant::now();
    let stop = match tree.request_stop(&names) {
        Ok(helper) => {
            let result = {
                let _observer = Observer::prioritised();
                wait_gone(&pids, Duration::from_secs(60))
            };
            let elapsed = millis(start.elapsed());
            if let Some(mut helper) = helper {
                let _ = helper.wait();
            }
            result.map(|()| elapsed)
        }
        Err(reason) => Err(reason),
    };
    let stop = stop.map(|value| {
        let mut warning = None;
        if suite.scanner == Scanner::Runtree {
            // svdir exits once everything is stopped: 0 if clean, 1 if something had
            // to be killed. Not part of the time; noted if it is not a clean 0.
            let exited = wait_until(
                &[],
                AddWatchFlags::empty(),
                Duration::from_secs(5),
                Duration::from_millis(5),
                || tree.exit_status().is_some(),
            );
            warning = match tree.exit_status() {
                _ if !exited => Some("svdir still ran 5 s after its services were gone".into()),
                Some(WaitStatus::Exited(_, 0)) => None,
                Some(WaitStatus::Exited(_, code)) => {
                    Some(format!("svdir exited {code} after the stop"))
                }
                Some(other) => Some(format!("svdir ended with {other:?} after the stop")),
                None => None,
            };
        }
        Turn { value, warning }
    });
    drop(tree);
    vec![Ok(bringup.into()), stop]
}

/// The bench's thread, for the time of a wait, first in line for the CPU
/// (SCHED_FIFO, priority 1, not inherited by children) where it may be (root): a stop
/// of 1000 services keeps both cores busy with the supervisors' final writes, and a
/// watcher that waits its turn for the CPU notices the last service's end late, by up
/// to hundreds of milliseconds, whoever the suite is. Restored when dropped; where it
/// cannot be set, nothing changes.
struct Observer {
    previous: Option<(libc::c_int, libc::sched_param)>,
}

impl Observer {
    fn prioritised() -> Observer {
        // SAFETY: plain system calls on this thread's own scheduling.
        unsafe {
            let policy = libc::sched_getscheduler(0);
            // Zeroed, not a literal: musl's sched_param has more fields than glibc's.
            let mut param: libc::sched_param = std::mem::zeroed();
            if policy < 0 || libc::sched_getparam(0, &mut param) != 0 {
                return Observer { previous: None };
            }
            let mut first: libc::sched_param = std::mem::zeroed();
            first.sched_priority = 1;
            let set =
                libc::sched_setscheduler(0, libc::SCHED_FIFO | libc::SCHED_RESET_ON_FORK, &first);
            Observer {
                previous: (set == 0).then_some((policy, param)),
            }
        }
    }
}

impl Drop for Observer {
    fn drop(&mut self) {
        if let Some((policy, param)) = self.previous {
            // SAFETY: as above.
            unsafe {
                libc::sched_setscheduler(0, policy, &param);
            }
        }
    }
}

/// Waits until none of these processes runs (gone, a zombie, or the pid taken by
/// another process). Polls the first one still running, every millisecond.
fn wait_gone(pids: &[(u32, u64)], timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let mut next = 0;
    while next < pids.len() {
        let (pid, start_time) = pids[next];
        if live_start_time(pid) != Some(start_time) {
            next += 1;
            continue;
        }
        if Instant::now() >= deadline {
            let left = pids[next..]
                .iter()
                .filter(|&&(pid, t)| live_start_time(pid) == Some(t))
                .count();
            return Err(format!(
                "{left} of {} service processes still ran {} s after the stop request",
                pids.len(),
                timeout.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// sync latency

struct SyncLane {
    tree: Tree,
    /// Where the new services are created: `.available` in the scan directory, which
    /// every scanner skips (a dot entry), so that the tree's end removes it too.
    available: PathBuf,
    serial: usize,
    /// s6 only: the same, followed at once by `s6-svscanctl -a`.
    triggered: Vec<f64>,
    triggered_error: Option<String>,
}

/// A tree with 3 services; per turn, a new service directory is made outside the scan
/// directory, and the time is taken from the `symlink` into the scan directory to the
/// new service running. No suite gets a trigger; a suite that does not notice within
/// `timeout` gets an infinite sample (shown as `> timeout`). For s6, each turn also
/// measures the same with `s6-svscanctl -a` run right after the symlink (in a note).
pub fn sync_latency(suites: &[&ScanSuite], rounds: usize, timeout: Duration) -> Measured {
    let (cells, states) = interleave(
        suites,
        rounds,
        1,
        |suite| {
            let (tree, _) = start_tree(suite, "sync", 3)?;
            let available = tree.dir.join(".available");
            fs::create_dir(&available)
                .map_err(|e| format!("creating {}: {e}", available.display()))?;
            Ok(SyncLane {
                tree,
                available,
                serial: 0,
                triggered: Vec::new(),
                triggered_error: None,
            })
        },
        |suite, lane| {
            let plain = sync_turn(suite, lane, timeout, false);
            if suite.scanner == Scanner::S6 && lane.triggered_error.is_none() {
                match sync_turn(suite, lane, timeout, true) {
                    Ok(value) => lane.triggered.push(value),
                    Err(reason) => lane.triggered_error = Some(reason),
                }
            }
            vec![plain.map(Turn::from)]
        },
    );
    let mut notes = Vec::new();
    for (scanner, state) in &states {
        let Some(lane) = state else { continue };
        if *scanner != Scanner::S6 {
            continue;
        }
        let text = match (&lane.triggered_error, crate::metrics::summary(&lane.triggered)) {
            (Some(reason), _) => format!("with `s6-svscanctl -a`: failed: {reason}"),
            (None, Some((median, min, max))) => format!(
                "s6-svscan scans only when told to; with `s6-svscanctl -a SCANDIR` run right after the symlink: {} ({}–{} ms, n={})",
                duration_text(median),
                number(min),
                number(max),
                lane.triggered.len()
            ),
            (None, None) => continue,
        };
        notes.push((Scanner::S6, text));
    }
    Measured { cells, notes }
}

fn sync_turn(
    suite: &ScanSuite,
    lane: &mut SyncLane,
    timeout: Duration,
    trigger: bool,
) -> Result<f64, String> {
    lane.serial += 1;
    let name = format!("new-{}", lane.serial);
    let target = suite
        .create_service(&lane.available, &name, Definition::Plain)
        .map_err(|e| format!("creating {name}: {e}"))?;
    let link = lane.tree.dir.join(&name);
    let watched = [target.clone(), target.join("supervise")];
    // Let the directory writes settle so that they do not land in the measurement.
    std::thread::sleep(Duration::from_millis(50));
    let start = Instant::now();
    std::os::unix::fs::symlink(&target, &link)
        .map_err(|e| format!("symlink {}: {e}", link.display()))?;
    let mut control = None;
    if trigger {
        control = Some(
            Command::new("/usr/bin/s6-svscanctl")
                .arg("-a")
                .arg(&lane.tree.dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("s6-svscanctl: {e}"))?,
        );
    }
    let seen = seen_at(
        &watched,
        rewrite_events(),
        timeout,
        Duration::from_millis(2),
        || suite.running_pid(&target).is_some(),
    );
    let running = seen.is_some();
    let elapsed = millis(seen.unwrap_or_else(Instant::now) - start);
    if let Some(mut control) = control {
        let _ = control.wait();
    }
    if !lane.tree.alive() {
        return Err(lane.tree.died());
    }
    if running {
        Ok(elapsed)
    } else if trigger {
        Err(format!(
            "not running {} s after `s6-svscanctl -a`",
            timeout.as_secs()
        ))
    } else {
        // Not seen: take the entry away again, so that a later scan does not start
        // it along with the next one.
        let _ = fs::remove_file(&link);
        Ok(f64::INFINITY)
    }
}

// ---------------------------------------------------------------------------------
// dependency chain

/// A chain of `length` services, each after the previous one, in each suite's idiom
/// (see `Definition::After`). Per turn: a fresh directory, the time from the scanner's
/// spawn to every service's own program (`sleep`) running (output 0), and how many
/// services started their program before their dependency did (output 1).
pub fn dependency_chain(suites: &[&ScanSuite], length: usize, rounds: usize) -> Measured {
    let (cells, _) = interleave(
        suites,
        rounds,
        2,
        |_| Ok(()),
        |suite, ()| match chain_turn(suite, length) {
            Ok((elapsed, out_of_order)) => vec![Ok(elapsed.into()), Ok(out_of_order.into())],
            Err(reason) => vec![Err(reason.clone()), Err(reason)],
        },
    );
    Measured {
        cells,
        notes: Vec::new(),
    }
}

fn chain_turn(suite: &ScanSuite, length: usize) -> Result<(f64, f64), String> {
    let dir = suite
        .fresh_dir("chain")
        .map_err(|e| format!("creating the scan directory: {e}"))?;
    let names: Vec<String> = (1..=length).map(|i| format!("s{i:02}")).collect();
    for (i, name) in names.iter().enumerate() {
        let definition = match i {
            0 => Definition::Plain,
            _ => Definition::After(&names[i - 1]),
        };
        suite
            .create_service(&dir, name, definition)
            .map_err(|e| format!("creating {name}: {e}"))?;
    }
    age(&dir)?;
    std::thread::sleep(Duration::from_millis(50));

    let start = Instant::now();
    let tree = suite
        .start(&dir)
        .map_err(|e| format!("starting {}: {e}", suite.scanner.scanner_name()))?;
    // When each service's program is first seen running: its supervisor (the child of
    // the scanner named after it) has a child that has exec'd `sleep` (a run script
    // still waiting for its dependency is `sh`). The process tree rather than the
    // status files, so that the order of a supervisor's own file writes (runtree's runsv
    // writes `state`, which its dependents watch, before `status`) cannot enter. One
    // pass over the chain per millisecond, from the last service to the first: a
    // dependency is checked after its dependent, so a dependent seen in a pass whose
    // dependency had already started sees it in the same pass. Order is judged by pass
    // (a dependent seen in an earlier pass than its dependency started first); the
    // time is that of the check that saw it.
    let mut started: Vec<Option<(usize, Duration)>> = vec![None; length];
    let mut supervisors: Vec<Option<u32>> = vec![None; length];
    let deadline = start + Duration::from_secs(30);
    let mut pass = 0;
    loop {
        pass += 1;
        if supervisors.iter().any(Option::is_none) {
            for child in tree.children() {
                let Some(arg) = last_argument(child) else {
                    continue;
                };
                let name = Path::new(&arg).file_name().unwrap_or_default();
                if let Some(i) = names.iter().position(|n| name == n.as_str()) {
                    supervisors[i].get_or_insert(child);
                }
            }
        }
        for (supervisor, seen) in supervisors.iter().zip(started.iter_mut()).rev() {
            let Some(supervisor) = supervisor else {
                continue;
            };
            if seen.is_none()
                && children_of(*supervisor)
                    .into_iter()
                    .any(|pid| comm_is(pid, "sleep"))
            {
                *seen = Some((pass, start.elapsed()));
            }
        }
        if started.iter().all(Option::is_some) {
            break;
        }
        if Instant::now() >= deadline || !tree.alive() {
            let up = started.iter().filter(|s| s.is_some()).count();
            let what = if tree.alive() {
                "not all running after 30 s".to_string()
            } else {
                tree.died()
            };
            let first = names[started.iter().position(Option::is_none).unwrap_or(0)].clone();
            return Err(format!(
                "{what}: {up} of {length} came up, not {first}{}",
                if tree.alive() {
                    tree.log_excerpt()
                } else {
                    String::new()
                }
            ));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let seen: Vec<(usize, Duration)> = started.into_iter().flatten().collect();
    let elapsed = seen.iter().map(|&(_, t)| t).max().unwrap_or_default();
    let out_of_order = seen.windows(2).filter(|pair| pair[1].0 < pair[0].0).count();
    drop(tree);
    Ok((millis(elapsed), out_of_order as f64))
}

// ---------------------------------------------------------------------------------
// idle context switches

/// All suites at once, `size` idle services each: for each of `rounds` windows of
/// `window`, the context switches (voluntary + non-voluntary, every thread) of the
/// scanner and of each of its children (the supervisors), from /proc/PID/task/*/status
/// at the start and at the end of the window. The suites run side by side rather than
/// in turns: an idle process switches only when it wakes itself, so the others cannot
/// add to its count, and the windows are long.
pub fn idle_switches(
    suites: &[&ScanSuite],
    size: usize,
    rounds: usize,
    window: Duration,
    settle_time: Duration,
) -> Measured {
    let mut lanes: Vec<(Scanner, Result<Tree, String>)> = suites
        .iter()
        .map(|suite| {
            let tree = match &suite.unavailable {
                Some(reason) => Err(reason.clone()),
                None => start_tree(suite, "idle", size).map(|(tree, _)| tree),
            };
            (suite.scanner, tree)
        })
        .collect();
    std::thread::sleep(settle_time);
    let mut outcomes: Vec<Cell> = lanes
        .iter()
        .map(|(_, tree)| match tree {
            Ok(_) => Ok(Samples::default()),
            Err(reason) => Err(reason.clone()),
        })
        .collect();
    for _ in 0..rounds {
        let before: Vec<Option<Vec<(u32, u64)>>> = lanes
            .iter()
            .map(|(_, tree)| tree.as_ref().ok().map(tree_switches))
            .collect();
        std::thread::sleep(window);
        for ((lane, outcome), before) in lanes.iter().zip(outcomes.iter_mut()).zip(before) {
            let (Ok(tree), Some(before)) = (&lane.1, before) else {
                continue;
            };
            if outcome.is_err() {
                continue;
            }
            if !tree.alive() {
                *outcome = Err(tree.died());
                continue;
            }
            let after = tree_switches(tree);
            let mut total = 0;
            let mut changed = after.len() != before.len();
            for (pid, count) in &before {
                match after.iter().find(|(p, _)| p == pid) {
                    Some((_, later)) => total += later.saturating_sub(*count),
                    None => changed = true,
                }
            }
            let Ok(samples) = outcome else { continue };
            samples.values.push(total as f64);
            if changed {
                let warning = format!(
                    "the set of {} processes changed during the window",
                    tree.scanner.supervisor_name()
                );
                match samples.warnings.iter_mut().find(|(w, _)| *w == warning) {
                    Some((_, n)) => *n += 1,
                    None => samples.warnings.push((warning, 1)),
                }
            }
        }
    }
    let cells = lanes
        .iter()
        .map(|(scanner, _)| *scanner)
        .zip(outcomes)
        .collect();
    // End the trees one by one (each Drop stops its tree).
    lanes.clear();
    Measured {
        cells: vec![cells],
        notes: Vec::new(),
    }
}

// ---------------------------------------------------------------------------------
// crash storm

/// `size` services whose `run` exits 1 at once, forever, under each scanner in turn
/// (one storm at a time: two would fight over the CPU). After `settle`, the CPU time
/// (ms) the whole machine spent over `window` (busy time of /proc/stat, all CPUs): the
/// tree, the crashing services and their restarts. Per-process accounting is counted in
/// 10 ms ticks and a supervisor that restarts a service now and then uses less than a
/// tick, so it reads 0; the machine's total is sampled at every tick and adds up. What
/// keeps it low is the restart delay: runit and s6 restart after a fixed second,
/// runtree's delay grows (1 s doubling to 60 s by default).
pub fn crash_storm(
    suites: &[&ScanSuite],
    size: usize,
    window: Duration,
    settle: Duration,
) -> Measured {
    let mut cells = Vec::new();
    for suite in suites {
        let cell = match &suite.unavailable {
            Some(reason) => Err(reason.clone()),
            None => storm_turn(suite, size, window, settle),
        };
        cells.push((
            suite.scanner,
            cell.map(|ms| Samples {
                values: vec![ms],
                warnings: Vec::new(),
            }),
        ));
    }
    Measured {
        cells: vec![cells],
        notes: Vec::new(),
    }
}

fn storm_turn(
    suite: &ScanSuite,
    size: usize,
    window: Duration,
    settle: Duration,
) -> Result<f64, String> {
    let dir = suite
        .fresh_dir("storm")
        .map_err(|e| format!("creating the scan directory: {e}"))?;
    for i in 0..size {
        let name = format!("crash-{i:04}");
        suite
            .create_service(&dir, &name, Definition::Crash)
            .map_err(|e| format!("creating {name}: {e}"))?;
    }
    age(&dir)?;
    let tree = suite
        .start(&dir)
        .map_err(|e| format!("starting {}: {e}", suite.scanner.scanner_name()))?;
    std::thread::sleep(settle);
    let before = machine_busy_ticks()?;
    std::thread::sleep(window);
    if !tree.alive() {
        return Err(tree.died());
    }
    let ticks = machine_busy_ticks()?.saturating_sub(before);
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { nix::libc::sysconf(nix::libc::_SC_CLK_TCK) }.max(1) as f64;
    Ok(ticks as f64 * 1000.0 / per_second)
}

/// Busy clock ticks of all CPUs since boot: user, nice, system, irq and softirq of the
/// first line of /proc/stat.
fn machine_busy_ticks() -> Result<u64, String> {
    let stat = fs::read_to_string("/proc/stat").map_err(|e| format!("/proc/stat: {e}"))?;
    let line = stat.lines().next().unwrap_or_default();
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq
    Ok([0, 1, 2, 5, 6]
        .iter()
        .map(|&i| fields.get(i).copied().unwrap_or(0))
        .sum())
}

/// (pid, context switches) of the scanner and of each of its children.
fn tree_switches(tree: &Tree) -> Vec<(u32, u64)> {
    std::iter::once(tree.pid.as_raw() as u32)
        .chain(tree.children())
        .filter_map(|pid| context_switches(pid).map(|count| (pid, count)))
        .collect()
}

// ---------------------------------------------------------------------------------
// respawn of a killed supervisor

struct RespawnLane {
    tree: Tree,
    names: Vec<String>,
    /// When each service's supervisor was last (re)started.
    spawned: Vec<Instant>,
    next: usize,
}

/// A tree with 3 services; per turn, SIGKILL to the supervisor of one of them (in
/// rotation, each having run ≥ 1.2 s) and the time until a new supervisor holds that
/// service directory: a new child of the scanner for that entry whose `supervise/ok`
/// FIFO has a reader (runit, runtree) or which holds the fcntl lock on
/// `supervise/lock` (s6, which has no `ok`). Checked at each event in `supervise/`
/// (the new supervisor opening its files) and every millisecond.
pub fn supervisor_respawn(suites: &[&ScanSuite], rounds: usize) -> Measured {
    let (cells, _) = interleave(
        suites,
        rounds,
        1,
        |suite| {
            let (tree, _) = start_tree(suite, "respawn", 3)?;
            let now = Instant::now();
            Ok(RespawnLane {
                tree,
                names: (0..3).map(|i| format!("svc-{i:04}")).collect(),
                spawned: vec![now; 3],
                next: 0,
            })
        },
        |suite, lane| vec![respawn_turn(suite, lane).map(Turn::from)],
    );
    Measured {
        cells,
        notes: Vec::new(),
    }
}

fn respawn_turn(suite: &ScanSuite, lane: &mut RespawnLane) -> Result<f64, String> {
    let index = lane.next % lane.names.len();
    lane.next += 1;
    let name = lane.names[index].clone();
    let service = lane.tree.dir.join(&name);
    settle(lane.spawned[index], MIN_SUPERVISOR_UPTIME);
    let old = lane.tree.supervisor_of(&name).ok_or_else(|| {
        format!(
            "no {} for {name} among {}'s children",
            suite.scanner.supervisor_name(),
            suite.scanner.scanner_name()
        )
    })?;
    let old_service = suite.running_pid(&service);
    // s6: held open across the wait, so that checking the lock opens nothing.
    let lock = match suite.scanner {
        Scanner::S6 => Some(
            File::open(service.join("supervise/lock"))
                .map_err(|e| format!("{name}/supervise/lock: {e}"))?,
        ),
        _ => None,
    };
    let supervise = service.join("supervise");
    let mask = rewrite_events() | AddWatchFlags::IN_OPEN;
    let start = Instant::now();
    kill(Pid::from_raw(old as i32), Signal::SIGKILL).map_err(|e| format!("kill {old}: {e}"))?;
    let seen = seen_at(
        &[supervise],
        mask,
        Duration::from_secs(10),
        Duration::from_millis(1),
        || {
            suite.supervisor_probe(&service, lock.as_ref())
                && lane.tree.supervisor_of(&name).is_some_and(|pid| pid != old)
        },
    );
    let back = seen.is_some();
    let elapsed = millis(seen.unwrap_or_else(Instant::now) - start);
    lane.spawned[index] = Instant::now();
    if !lane.tree.alive() {
        return Err(lane.tree.died());
    }
    if !back {
        return Err(format!(
            "no new {} for {name} within 10 s of SIGKILL{}",
            suite.scanner.supervisor_name(),
            lane.tree.log_excerpt()
        ));
    }
    // runit and s6 leave the killed supervisor's service running and start a second
    // copy; runtree may adopt it. A copy that is not the supervised one is ended here
    // (it is the bench's child now, the bench being a subreaper).
    let _ = wait_until(
        &[service.join("supervise")],
        rewrite_events(),
        Duration::from_secs(5),
        Duration::from_millis(5),
        || suite.running_pid(&service).is_some(),
    );
    if let Some(orphan) = old_service {
        let supervised = suite.running_pid(&service);
        if supervised != Some(orphan) && is_my_child(orphan) {
            let orphan = Pid::from_raw(orphan as i32);
            let _ = kill(orphan, Signal::SIGKILL);
            let _ = waitpid(orphan, None);
        }
    }
    Ok(elapsed)
}

fn is_my_child(pid: u32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
        == Some(std::process::id())
}

// ---------------------------------------------------------------------------------
// formatting helpers shared with the table

/// `12.3` with as many decimals as the magnitude deserves.
pub fn number(value: f64) -> String {
    if value < 10.0 {
        format!("{value:.2}")
    } else if value < 100.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.0}")
    }
}

fn duration_text(ms: f64) -> String {
    format!("{} ms", number(ms))
}
