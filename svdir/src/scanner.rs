//! svdir's state and its event loop: the services of the scan directory and their
//! runsv processes, kept in step with the directory (inotify), the runlevel chain
//! (inotify on the directories holding its links), dying runsv processes (signalfd),
//! sync requests (the FIFO), and the ordered stop.

use crate::backoff::{self, Backoff};
use crate::chain::{self, Id, Resolution};
use crate::deps;
use crate::locks;
use crate::offspring;
use crate::order::Plan;
use crate::place::Place;
use crate::scan::{self, Scan};
use crate::spawn::{self, find_runsv, Spawner};
use crate::sync::{SetupError, SyncControl};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};
use nix::sys::signal::{kill, killpg, SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::stat::Mode;
use nix::unistd::Pid;
use runsv::supervise::{supervisor_running, ExitStatus, ServiceState, SuperviseDir};
use runsv::tai64n::Timestamp;
use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub struct Options {
    /// The scan directory as given (absolute), perhaps a symlink chain.
    pub dir: PathBuf,
    pub stop_deadline: Duration,
}

/// Watched on the scan directory and on every directory holding a link of its chain.
fn directory_mask() -> AddWatchFlags {
    AddWatchFlags::IN_CREATE
        | AddWatchFlags::IN_DELETE
        | AddWatchFlags::IN_MOVED_FROM
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_DELETE_SELF
        | AddWatchFlags::IN_MOVE_SELF
        | AddWatchFlags::IN_DONT_FOLLOW
        | AddWatchFlags::IN_ONLYDIR
}

/// After a close of an adopted runsv's `supervise/lock` while `ok` still answers, the
/// probe is repeated after these delays: the kernel closes a dead process's files one
/// by one, so the lock can close a moment before `ok` loses its reader.
const RECHECK_DELAYS: [Duration; 4] = [
    Duration::from_millis(5),
    Duration::from_millis(20),
    Duration::from_millis(100),
    Duration::from_millis(500),
];
/// An adopted runsv whose lock cannot be watched is probed this often.
const UNWATCHED_PROBE: Duration = Duration::from_secs(5);
/// File descriptors kept free of adopted runsv's directory fds.
const FD_RESERVE: u64 = 64;
/// After the deadline's SIGKILLs, how long to wait for the killed runsv to be reaped.
const KILL_GRACE: Duration = Duration::from_secs(1);

enum Runsv {
    /// Our child.
    Child { pid: Pid, since: Instant },
    /// Found running (svdir was restarted): not our child; its death is seen through
    /// its `supervise/lock`.
    Adopted(Adopted),
    /// Died by itself; started again at this time.
    Delayed { until: Instant },
    /// Waiting for the runsv that another directory had under the same name (the
    /// entry was retargeted) to exit: never two services of one name at once.
    Queued,
    /// None, and none to start (told to exit, or the stop).
    None,
}

struct Adopted {
    /// The inotify watch on `supervise/lock` (IN_CLOSE_WRITE: runsv holds the lock open
    /// for writing all its life, so this fires when it exits).
    watch: Option<WatchDescriptor>,
    /// (st_dev, st_ino) of `supervise/lock`: finds the runsv in /proc/locks.
    lock: Option<Id>,
    /// The service directory (O_PATH), to reach the runsv after its entry is removed.
    dirfd: Option<OwnedFd>,
    /// The next probe: (when, how many were made).
    recheck: Option<(Instant, usize)>,
}

/// What a directory watch is for.
struct WatchRole {
    /// It is the scan directory.
    scan: bool,
    /// The names of the chain's links in it.
    links: Vec<OsString>,
}

struct Service {
    /// The entry's name (the first in byte order, when several lead to the directory).
    name: OsString,
    names: Vec<OsString>,
    /// In the scan directory (as of the last scan).
    present: bool,
    /// Where the entry was at the last scan, and the symlink's target if it was one:
    /// ways back to the directory once the entry is gone (checked by identity).
    home: PathBuf,
    target: Option<PathBuf>,
    runsv: Runsv,
    /// The name its runsv was started (or adopted) with: runsv finds its directory
    /// through it.
    spawned_as: OsString,
    /// Told to exit (removed, or the stop): never restarted.
    told: bool,
    backoff: Backoff,
    /// SIGKILLed at the stop deadline.
    killed: bool,
    /// In `error` when told to stop (`x` makes runsv write `down`): the reason, by label.
    errors: Vec<(String, String)>,
}

impl Service {
    fn label(&self) -> String {
        self.name.to_string_lossy().into_owned()
    }
}

struct Stop {
    ids: Vec<Id>,
    index: HashMap<Id, usize>,
    plan: Plan,
    deadline: Instant,
    /// When the stop began, on the clock of supervise/state: a SIGKILL recorded
    /// before it is not the stop's.
    began: Timestamp,
    /// Set once the deadline passed and the rest was killed: the end of the wait for
    /// the killed runsv processes.
    grace: Option<Instant>,
}

struct Svdir {
    dir: PathBuf,
    resolution: Resolution,
    scan_fd: OwnedFd,
    spawner: Spawner,
    signals: SignalFd,
    inotify: Inotify,
    /// Directory watches: the scan directory and the parents of the chain's links.
    dir_watches: HashMap<PathBuf, WatchDescriptor>,
    watch_roles: HashMap<WatchDescriptor, WatchRole>,
    /// Watches on adopted runsv's `supervise/lock`.
    lock_watches: HashMap<WatchDescriptor, Vec<Id>>,
    sync: Option<SyncControl>,
    /// A sync control replaced by a runlevel switch: answered after the rescan, then closed.
    retired_sync: Option<SyncControl>,
    sync_problem: Option<String>,
    sync_requests: u64,
    services: HashMap<Id, Service>,
    children: HashMap<Pid, Id>,
    /// Entries reported as skipped, with the reason reported.
    skipped: BTreeMap<OsString, String>,
    scan_problem: Option<String>,
    resolve_problem: Option<String>,
    need_scan: bool,
    need_resolve: bool,
    stop: Option<Stop>,
    stop_deadline: Duration,
}

/// Runs svdir; the exit status.
pub fn run(options: Options) -> i32 {
    match Svdir::start(options) {
        Ok(mut svdir) => svdir.run_loop(),
        Err(fatal) => {
            say!("fatal: {fatal}");
            111
        }
    }
}

fn open_directory(path: &Path) -> io::Result<OwnedFd> {
    let fd = nix::fcntl::open(
        path,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    // SAFETY: a fresh fd we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn identity(path: &Path) -> Option<Id> {
    fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

fn borrow(fd: RawFd) -> BorrowedFd<'static> {
    // SAFETY: every fd polled is owned by the Svdir, which outlives the poll.
    unsafe { BorrowedFd::borrow_raw(fd) }
}

/// `1 service`, `3 services`.
fn services(count: usize) -> String {
    if count == 1 {
        "1 service".to_string()
    } else {
        format!("{count} services")
    }
}

/// The pid of a service's runsv: svdir's child, or the holder of an adopted one's lock.
fn runsv_pid(service: &Service) -> Option<Pid> {
    match &service.runsv {
        Runsv::Child { pid, .. } => Some(*pid),
        Runsv::Adopted(adopted) => adopted
            .lock
            .and_then(locks::holder)
            .map(|p| Pid::from_raw(p as i32)),
        _ => None,
    }
}

fn lossy(name: &OsStr) -> String {
    name.to_string_lossy().into_owned()
}

impl Svdir {
    fn start(options: Options) -> Result<Svdir, String> {
        // Signals first, so that nothing is missed; the mask is reset in every child.
        let mut mask = SigSet::empty();
        for signal in [
            Signal::SIGCHLD,
            Signal::SIGTERM,
            Signal::SIGINT,
            Signal::SIGHUP,
        ] {
            mask.add(signal);
        }
        mask.thread_block()
            .map_err(|e| format!("unable to block signals: {e}"))?;
        for signal in mask.iter() {
            // An ignored signal never reaches the signalfd (and an ignored SIGCHLD
            // would reap our children behind our back).
            // SAFETY: setting a disposition to SIG_DFL installs no handler code.
            unsafe {
                let _ = nix::sys::signal::signal(signal, nix::sys::signal::SigHandler::SigDfl);
            }
        }
        let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
            .map_err(|e| format!("unable to create signalfd: {e}"))?;

        let dir = options.dir;
        let resolution = chain::resolve(&dir)
            .map_err(|e| format!("unable to scan {}: {}", dir.display(), crate::describe(&e)))?;
        let scan_fd = open_directory(&resolution.dir).map_err(|e| {
            format!(
                "unable to open {}: {}",
                resolution.dir.display(),
                crate::describe(&e)
            )
        })?;
        let (sync, sync_problem) = match SyncControl::open(&resolution.dir) {
            Ok(control) => {
                crate::publish::publish(&dir);
                (Some(control), None)
            }
            Err(SetupError::Busy) => {
                return Err(format!(
                    "{} is already scanned by another svdir",
                    dir.display()
                ))
            }
            Err(SetupError::Unavailable(why)) => {
                say!("warning: no sync control (sv sync will not work): {why}");
                (None, Some(why))
            }
        };
        let runsv = find_runsv().ok_or_else(|| {
            "unable to find runsv (beside svdir, or in PATH; RUNTREE_RUNSV names it)".to_string()
        })?;
        let nofile = spawn::raise_fd_limit();
        let spawner = Spawner::new(&runsv, nofile).map_err(|e| {
            format!(
                "unable to prepare {}: {}",
                runsv.display(),
                crate::describe(&e)
            )
        })?;
        let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)
            .map_err(|e| format!("unable to create an inotify instance: {e}"))?;
        let mut svdir = Svdir {
            dir,
            resolution,
            scan_fd,
            spawner,
            signals,
            inotify,
            dir_watches: HashMap::new(),
            watch_roles: HashMap::new(),
            lock_watches: HashMap::new(),
            sync,
            retired_sync: None,
            sync_problem,
            sync_requests: 0,
            services: HashMap::new(),
            children: HashMap::new(),
            skipped: BTreeMap::new(),
            scan_problem: None,
            resolve_problem: None,
            need_scan: false,
            need_resolve: false,
            stop: None,
            stop_deadline: options.stop_deadline,
        };
        // Watches before the first scan: a change during it is not missed.
        let began = Instant::now();
        svdir.update_watches();
        svdir.rescan(true);
        let took = began.elapsed();
        let adopted = svdir
            .services
            .values()
            .filter(|s| matches!(s.runsv, Runsv::Adopted(_)))
            .count();
        let location = if svdir.resolution.dir == svdir.dir {
            svdir.dir.display().to_string()
        } else {
            format!(
                "{} ({})",
                svdir.dir.display(),
                svdir.resolution.dir.display()
            )
        };
        say!(
            "scanning {location}: {}, {adopted} running runsv adopted ({} ms)",
            services(svdir.services.len()),
            took.as_millis()
        );
        Ok(svdir)
    }

    fn run_loop(&mut self) -> i32 {
        loop {
            if let Some(code) = self.stop_finished() {
                return code;
            }
            let timeout = self.poll_timeout();
            let signal_fd = self.signals.as_fd().as_raw_fd();
            let inotify_fd = self.inotify.as_fd().as_raw_fd();
            let sync_fd = self.sync.as_ref().map(|s| s.fd().as_raw_fd());
            let mut fds = vec![
                PollFd::new(borrow(signal_fd), PollFlags::POLLIN),
                PollFd::new(borrow(inotify_fd), PollFlags::POLLIN),
            ];
            if let Some(fd) = sync_fd {
                fds.push(PollFd::new(borrow(fd), PollFlags::POLLIN));
            }
            if let Err(errno) = poll(&mut fds, timeout) {
                if errno != Errno::EINTR {
                    // Only a lack of memory can get here: pause rather than spin.
                    say!("warning: poll: {errno}");
                    std::thread::sleep(Duration::from_millis(100));
                }
                continue;
            }
            let ready: Vec<bool> = fds
                .iter()
                .map(|fd| !fd.revents().unwrap_or(PollFlags::empty()).is_empty())
                .collect();
            drop(fds);
            if ready.first() == Some(&true) {
                self.handle_signals();
            }
            if ready.get(1) == Some(&true) {
                self.handle_inotify();
            }
            if ready.get(2) == Some(&true) {
                if let Some(sync) = self.sync.as_mut() {
                    self.sync_requests += sync.read_requests();
                }
            }
            self.handle_timers();
            if self.need_resolve {
                self.check_chain();
            }
            if self.need_scan || self.sync_requests > 0 {
                self.rescan(false);
            }
            self.answer_sync();
            self.advance_stop();
        }
    }

    // ----- time -----

    fn poll_timeout(&self) -> PollTimeout {
        let mut next: Option<Instant> = None;
        let mut consider = |t: Instant| {
            next = Some(next.map_or(t, |n| n.min(t)));
        };
        for service in self.services.values() {
            match &service.runsv {
                Runsv::Delayed { until } if self.stop.is_none() => consider(*until),
                Runsv::Adopted(Adopted {
                    recheck: Some((when, _)),
                    ..
                }) => consider(*when),
                _ => {}
            }
        }
        if let Some(stop) = &self.stop {
            consider(stop.grace.unwrap_or(stop.deadline));
        }
        match next {
            None => PollTimeout::NONE,
            Some(when) => {
                let wait = when.saturating_duration_since(Instant::now());
                // Round up, so that the timer is never early and the loop never spins.
                let millis = wait.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
                PollTimeout::try_from(millis).unwrap_or(PollTimeout::MAX)
            }
        }
    }

    fn handle_timers(&mut self) {
        let now = Instant::now();
        let mut restarts = Vec::new();
        let mut rechecks = Vec::new();
        for (id, service) in &self.services {
            match &service.runsv {
                Runsv::Delayed { until } if *until <= now && self.stop.is_none() => {
                    restarts.push(*id)
                }
                Runsv::Adopted(Adopted {
                    recheck: Some((when, count)),
                    ..
                }) if *when <= now => rechecks.push((*id, *count)),
                _ => {}
            }
        }
        for id in restarts {
            self.start_runsv(id);
        }
        for (id, count) in rechecks {
            self.check_adopted(id, count);
        }
        let Some(stop) = &self.stop else {
            return;
        };
        match stop.grace {
            None if stop.deadline <= now => self.kill_remaining(),
            Some(grace) if grace <= now => {
                let remaining: Vec<Id> = self.stop_remaining();
                for id in remaining {
                    if let Some(service) = self.services.get_mut(&id) {
                        say!(
                            "{}: runsv did not exit after SIGKILL; giving up on it",
                            service.label()
                        );
                        service.runsv = Runsv::None;
                    }
                    self.stop_gone(id);
                }
            }
            _ => {}
        }
    }

    // ----- signals and children -----

    fn handle_signals(&mut self) {
        while let Ok(Some(info)) = self.signals.read_signal() {
            match Signal::try_from(info.ssi_signo as i32) {
                Ok(Signal::SIGCHLD) => self.reap(),
                Ok(signal @ (Signal::SIGTERM | Signal::SIGINT | Signal::SIGHUP)) => {
                    self.begin_stop(signal)
                }
                _ => {}
            }
        }
        // SIGCHLD may be coalesced with one read before its children exit: reaping
        // again costs one system call.
        self.reap();
    }

    fn reap(&mut self) {
        while let Some((pid, status)) = runsv::launch::reap_one() {
            self.child_exited(pid, status);
        }
    }

    fn child_exited(&mut self, pid: Pid, status: ExitStatus) {
        let Some(id) = self.children.remove(&pid) else {
            return;
        };
        let stopping = self.stop.is_some();
        let Some(service) = self.services.get_mut(&id) else {
            return;
        };
        let since = match service.runsv {
            Runsv::Child { pid: p, since } if p == pid => since,
            _ => return,
        };
        service.runsv = Runsv::None;
        if stopping {
            if !service.told {
                say!("{}: runsv {status} during the stop", service.label());
            }
            self.stop_gone(id);
            return;
        }
        if service.told {
            self.runsv_left(id);
            return;
        }
        let delay = service.backoff.after_exit(since.elapsed());
        if delay.is_zero() {
            say!("{}: runsv {status}; starting a new one", service.label());
            self.start_runsv(id);
        } else {
            say!(
                "{}: runsv {status}; starting a new one in {}",
                service.label(),
                backoff::seconds(delay)
            );
            service.runsv = Runsv::Delayed {
                until: Instant::now() + delay,
            };
        }
    }

    /// The runsv of a service told to exit (its entry removed) is gone: forget the
    /// service, or start it again if its entry came back meanwhile.
    fn runsv_left(&mut self, id: Id) {
        let Some(service) = self.services.get_mut(&id) else {
            return;
        };
        let name = std::mem::take(&mut service.spawned_as);
        if service.present {
            service.told = false;
            service.backoff = Backoff::default();
            self.start_runsv(id);
        } else {
            self.services.remove(&id);
        }
        // A service queued behind this runsv's name may start now.
        let queued: Vec<Id> = self
            .services
            .iter()
            .filter(|(_, s)| matches!(s.runsv, Runsv::Queued) && s.name == name)
            .map(|(id, _)| *id)
            .collect();
        for id in queued {
            self.start_runsv(id);
        }
    }

    /// Whether a runsv told to exit still runs under `name` (other than `id`'s).
    fn name_busy(&self, name: &OsStr, id: Id) -> bool {
        self.services.iter().any(|(other, s)| {
            *other != id
                && s.told
                && s.spawned_as == name
                && matches!(s.runsv, Runsv::Child { .. } | Runsv::Adopted(_))
        })
    }

    // ----- inotify -----

    fn handle_inotify(&mut self) {
        loop {
            let events = match self.inotify.read_events() {
                Ok(events) if !events.is_empty() => events,
                _ => return,
            };
            for event in events {
                if event.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
                    // Events were lost: look at everything again.
                    self.need_scan = true;
                    self.need_resolve = true;
                    let adopted: Vec<Id> = self
                        .services
                        .iter()
                        .filter(|(_, s)| matches!(s.runsv, Runsv::Adopted(_)))
                        .map(|(id, _)| *id)
                        .collect();
                    for id in adopted {
                        self.check_adopted(id, 0);
                    }
                    continue;
                }
                if let Some(role) = self.watch_roles.get(&event.wd) {
                    let itself = event.mask.intersects(
                        AddWatchFlags::IN_DELETE_SELF
                            | AddWatchFlags::IN_MOVE_SELF
                            | AddWatchFlags::IN_IGNORED,
                    );
                    // An entry of the scan directory changed: rescan. The directory
                    // itself, or a link of the chain, changed: resolve the chain again
                    // (other names in a link's directory are none of svdir's business).
                    if role.scan {
                        self.need_scan = true;
                    }
                    let link_changed = event
                        .name
                        .as_ref()
                        .is_some_and(|name| role.links.contains(name));
                    if itself || link_changed {
                        self.need_resolve = true;
                    }
                    if event.mask.contains(AddWatchFlags::IN_IGNORED) {
                        self.watch_roles.remove(&event.wd);
                        self.dir_watches.retain(|_, wd| *wd != event.wd);
                    }
                    continue;
                }
                let Some(ids) = self.lock_watches.get(&event.wd).cloned() else {
                    continue;
                };
                if event.mask.contains(AddWatchFlags::IN_IGNORED) {
                    // The watch is gone (the file was deleted): probe from now on.
                    self.lock_watches.remove(&event.wd);
                    for id in &ids {
                        if let Some(Service {
                            runsv: Runsv::Adopted(adopted),
                            ..
                        }) = self.services.get_mut(id)
                        {
                            adopted.watch = None;
                        }
                    }
                }
                for id in ids {
                    self.check_adopted(id, 0);
                }
            }
        }
    }

    /// Watches the scan directory and the directories holding the chain's links; drops
    /// the watches no longer needed.
    fn update_watches(&mut self) {
        let mut wanted: Vec<(PathBuf, WatchRole)> = vec![(
            self.resolution.dir.clone(),
            WatchRole {
                scan: true,
                links: Vec::new(),
            },
        )];
        for (parent, name) in &self.resolution.links {
            match wanted.iter_mut().find(|(path, _)| path == parent) {
                Some((_, role)) => role.links.push(name.clone()),
                None => wanted.push((
                    parent.clone(),
                    WatchRole {
                        scan: false,
                        links: vec![name.clone()],
                    },
                )),
            }
        }
        let stale: Vec<PathBuf> = self
            .dir_watches
            .keys()
            .filter(|path| !wanted.iter().any(|(p, _)| p == *path))
            .cloned()
            .collect();
        for path in stale {
            if let Some(wd) = self.dir_watches.remove(&path) {
                self.watch_roles.remove(&wd);
                let _ = self.inotify.rm_watch(wd);
            }
        }
        for (path, role) in wanted {
            let wd = match self.dir_watches.get(&path) {
                Some(wd) => *wd,
                None => match self.inotify.add_watch(&path, directory_mask()) {
                    Ok(wd) => {
                        self.dir_watches.insert(path, wd);
                        wd
                    }
                    Err(errno) => {
                        say!(
                            "warning: unable to watch {}: {}; changes there are seen only by sv sync",
                            path.display(),
                            runsv::errno_text::runit_text(errno as i32)
                        );
                        continue;
                    }
                },
            };
            self.watch_roles.insert(wd, role);
        }
    }

    // ----- the runlevel chain -----

    fn check_chain(&mut self) {
        self.need_resolve = false;
        let resolution = match chain::resolve(&self.dir) {
            Ok(resolution) => resolution,
            Err(error) => {
                let problem = crate::describe(&error);
                if self.resolve_problem.as_ref() != Some(&problem) {
                    say!(
                        "warning: unable to resolve {}: {problem}; still scanning {}",
                        self.dir.display(),
                        self.resolution.dir.display()
                    );
                    self.resolve_problem = Some(problem);
                }
                return;
            }
        };
        self.resolve_problem = None;
        if resolution.id == self.resolution.id {
            // Same directory; a link or a directory of the chain may have been
            // replaced, so the watches are brought up to date all the same.
            self.resolution = resolution;
            self.update_watches();
            return;
        }
        if self.stop.is_some() {
            // The set of services is frozen during the stop.
            return;
        }
        let scan_fd = match open_directory(&resolution.dir) {
            Ok(fd) => fd,
            Err(error) => {
                say!(
                    "warning: unable to open {}: {}; still scanning {}",
                    resolution.dir.display(),
                    crate::describe(&error),
                    self.resolution.dir.display()
                );
                return;
            }
        };
        say!(
            "runlevel: {} now leads to {} (was {})",
            self.dir.display(),
            resolution.dir.display(),
            self.resolution.dir.display()
        );
        self.scan_fd = scan_fd;
        self.resolution = resolution;
        self.update_watches();
        // The old directory's lock is released once its pending requests are answered.
        if let Some(mut old) = self.sync.take() {
            self.sync_requests += old.read_requests();
            self.retired_sync = Some(old);
        }
        match SyncControl::open(&self.resolution.dir) {
            Ok(control) => {
                self.sync = Some(control);
                self.sync_problem = None;
            }
            Err(SetupError::Busy) => say!(
                "warning: {} is also scanned by another svdir; no sync control",
                self.resolution.dir.display()
            ),
            Err(SetupError::Unavailable(why)) => {
                if self.sync_problem.as_ref() != Some(&why) {
                    say!("warning: no sync control (sv sync will not work): {why}");
                }
                self.sync_problem = Some(why);
            }
        }
        self.scan_problem = None;
        self.skipped.clear();
        self.need_scan = true;
    }

    fn answer_sync(&mut self) {
        if self.sync_requests == 0 {
            self.retired_sync = None;
            return;
        }
        let requests = std::mem::take(&mut self.sync_requests);
        let control = match self.retired_sync.as_mut() {
            Some(old) => Some(old),
            None => self.sync.as_mut(),
        };
        if let Some(control) = control {
            if let Err(error) = control.acknowledge(requests) {
                say!(
                    "warning: unable to write {}/synced: {}",
                    control.dir().display(),
                    crate::describe(&error)
                );
            }
        }
        self.retired_sync = None;
    }

    // ----- scanning -----

    fn rescan(&mut self, initial: bool) {
        self.need_scan = false;
        if self.stop.is_some() {
            return;
        }
        let scan = match scan::scan(&self.resolution.dir) {
            Ok(scan) => scan,
            Err(error) => {
                let problem = crate::describe(&error);
                if self.scan_problem.as_ref() != Some(&problem) {
                    say!(
                        "warning: unable to read {}: {problem}",
                        self.resolution.dir.display()
                    );
                    self.scan_problem = Some(problem);
                }
                return;
            }
        };
        self.scan_problem = None;
        let Scan { entries, skipped } = scan;
        let mut aliases: Vec<(OsString, OsString)> = Vec::new();
        // Entries gone: their runsv is told to exit.
        let removed: Vec<Id> = self
            .services
            .iter()
            .filter(|(id, s)| s.present && !entries.contains_key(id))
            .map(|(id, _)| *id)
            .collect();
        for id in removed {
            if let Some(service) = self.services.get_mut(&id) {
                service.present = false;
                say!("{}: removed: telling its runsv to exit", service.label());
            }
            self.tell_exit(id);
        }
        self.spawner.begin_batch();
        for (id, entry) in entries {
            let home_of = |name: &OsStr| self.resolution.dir.join(name);
            let chosen = match self.services.get(&id) {
                Some(service) if entry.names.contains(&service.name) => service.name.clone(),
                _ => entry.names.first().cloned().unwrap_or_default(),
            };
            for name in &entry.names {
                if *name != chosen {
                    aliases.push((name.clone(), chosen.clone()));
                }
            }
            match self.services.get_mut(&id) {
                Some(service) => {
                    let name = chosen;
                    if service.present && name != service.name {
                        say!("{}: renamed to {}", service.label(), lossy(&name));
                    }
                    service.home = home_of(&name);
                    service.name = name;
                    service.names = entry.names;
                    service.target = entry.target;
                    if !service.present {
                        service.present = true;
                        if matches!(service.runsv, Runsv::None) {
                            // Told to exit and already gone: a new start.
                            self.runsv_left(id);
                        } else {
                            say!(
                                "{}: back: a new runsv starts once the old one has exited",
                                service.label()
                            );
                        }
                    }
                }
                None => {
                    let name = chosen;
                    self.services.insert(
                        id,
                        Service {
                            home: home_of(&name),
                            name,
                            names: entry.names,
                            present: true,
                            target: entry.target,
                            runsv: Runsv::None,
                            spawned_as: OsString::new(),
                            told: false,
                            backoff: Backoff::default(),
                            killed: false,
                            errors: Vec::new(),
                        },
                    );
                    self.start_runsv(id);
                    if !initial {
                        if let Some(service) = self.services.get(&id) {
                            let how = match service.runsv {
                                Runsv::Adopted(_) => "adopted its running runsv",
                                Runsv::Queued => {
                                    "starts once the old runsv of this name has exited"
                                }
                                _ => "runsv started",
                            };
                            say!("{}: new: {how}", service.label());
                        }
                    }
                }
            }
        }
        self.spawner.end_batch();
        self.report_skipped(skipped, aliases);
    }

    /// Reports each skipped entry once (again only if its reason changes).
    fn report_skipped(
        &mut self,
        mut now: BTreeMap<OsString, String>,
        aliases: Vec<(OsString, OsString)>,
    ) {
        for (alias, name) in aliases {
            now.insert(alias, format!("same service directory as {}", lossy(&name)));
        }
        for (name, why) in &now {
            if self.skipped.get(name) != Some(why) {
                say!("{}: skipped: {why}", lossy(name));
            }
        }
        self.skipped = now;
    }

    // ----- runsv processes -----

    /// Starts a runsv for the service, or adopts the one already running there.
    fn start_runsv(&mut self, id: Id) {
        let Some(service) = self.services.get(&id) else {
            return;
        };
        if !service.present || service.told || self.stop.is_some() {
            return;
        }
        let name = service.name.clone();
        if self.name_busy(&name, id) {
            if let Some(service) = self.services.get_mut(&id) {
                service.runsv = Runsv::Queued;
            }
            return;
        }
        let path = self.resolution.dir.join(&name);
        // runsv refuses to run twice on a directory (runit's probe of supervise/ok).
        if supervisor_running(&SuperviseDir::of_service(&path)).unwrap_or(false)
            && self.adopt(id, &path)
        {
            return;
        }
        let result = self.spawner.spawn(&name, self.scan_fd.as_fd());
        let Some(service) = self.services.get_mut(&id) else {
            return;
        };
        match result {
            Ok(pid) => {
                service.runsv = Runsv::Child {
                    pid,
                    since: Instant::now(),
                };
                service.spawned_as = name;
                self.children.insert(pid, id);
            }
            Err(errno) => {
                let delay = service.backoff.after_exit(Duration::ZERO);
                say!(
                    "{}: unable to start runsv: {}; trying again in {}",
                    service.label(),
                    runsv::errno_text::runit_text(errno as i32),
                    backoff::seconds(delay)
                );
                service.runsv = Runsv::Delayed {
                    until: Instant::now() + delay,
                };
            }
        }
    }

    /// Adopts the runsv running on `path`; false if it turned out to be gone.
    fn adopt(&mut self, id: Id, path: &Path) -> bool {
        let supervise = SuperviseDir::of_service(path);
        let lock = supervise.lock();
        let watch = self
            .inotify
            .add_watch(&lock, AddWatchFlags::IN_CLOSE_WRITE)
            .ok();
        // Probed again with the watch in place, so that an exit is never missed.
        if !supervisor_running(&supervise).unwrap_or(false) {
            if let Some(wd) = watch {
                if !self.lock_watches.contains_key(&wd) {
                    let _ = self.inotify.rm_watch(wd);
                }
            }
            return false;
        }
        // A directory fd per adopted runsv, within a budget that leaves room for
        // everything else svdir opens (beyond it, paths and /proc/locks are used).
        let held = self
            .services
            .values()
            .filter(|s| matches!(s.runsv, Runsv::Adopted(Adopted { dirfd: Some(_), .. })))
            .count() as u64;
        let dirfd = if held + FD_RESERVE < spawn::fd_limit() {
            open_directory(path).ok()
        } else {
            None
        };
        let adopted = Adopted {
            watch,
            lock: identity(&lock),
            dirfd,
            recheck: if watch.is_none() {
                Some((Instant::now() + UNWATCHED_PROBE, RECHECK_DELAYS.len()))
            } else {
                None
            },
        };
        if let Some(wd) = watch {
            self.lock_watches.entry(wd).or_default().push(id);
        }
        if let Some(service) = self.services.get_mut(&id) {
            if watch.is_none() {
                say!(
                    "{}: warning: unable to watch supervise/lock of the runsv adopted; probing it every {}s",
                    service.label(),
                    UNWATCHED_PROBE.as_secs()
                );
            }
            service.runsv = Runsv::Adopted(adopted);
            service.spawned_as = service.name.clone();
        }
        true
    }

    /// Where the service directory can be reached now: through the adopted runsv's
    /// directory fd, the entry, or the places it was reached from before (checked by
    /// identity).
    fn locate(&self, id: Id) -> Option<Place> {
        let service = self.services.get(&id)?;
        if let Runsv::Adopted(Adopted {
            dirfd: Some(fd), ..
        }) = &service.runsv
        {
            if let Ok(fd) = fd.try_clone() {
                return Some(Place::Dir(fd));
            }
        }
        if service.present {
            return Some(Place::Path(self.resolution.dir.join(&service.name)));
        }
        [Some(&service.home), service.target.as_ref()]
            .into_iter()
            .flatten()
            .find(|path| identity(path) == Some(id))
            .cloned()
            .map(Place::Path)
    }

    /// Whether the adopted runsv of `id` still runs; if not, what follows (a new
    /// runsv, or the end of the service). `count`: probes already made since the
    /// last event.
    fn check_adopted(&mut self, id: Id, count: usize) {
        let alive = self.adopted_alive(id);
        let Some(Service {
            runsv: Runsv::Adopted(adopted),
            ..
        }) = self.services.get_mut(&id)
        else {
            return;
        };
        if alive {
            adopted.recheck = match RECHECK_DELAYS.get(count) {
                Some(delay) => Some((Instant::now() + *delay, count + 1)),
                None if adopted.watch.is_none() => Some((Instant::now() + UNWATCHED_PROBE, count)),
                None => None,
            };
            return;
        }
        self.adopted_gone(id);
    }

    fn adopted_alive(&self, id: Id) -> bool {
        let Some(service) = self.services.get(&id) else {
            return false;
        };
        let Runsv::Adopted(adopted) = &service.runsv else {
            return false;
        };
        match self.locate(id) {
            // Cannot tell: assume it runs rather than start a second one.
            Some(place) => place.runsv_running().unwrap_or(true),
            None => adopted.lock.and_then(locks::holder).is_some(),
        }
    }

    fn adopted_gone(&mut self, id: Id) {
        let Some(service) = self.services.get_mut(&id) else {
            return;
        };
        let old = std::mem::replace(&mut service.runsv, Runsv::None);
        if let Runsv::Adopted(Adopted {
            watch: Some(wd), ..
        }) = old
        {
            if let Some(ids) = self.lock_watches.get_mut(&wd) {
                ids.retain(|i| *i != id);
                if ids.is_empty() {
                    self.lock_watches.remove(&wd);
                    let _ = self.inotify.rm_watch(wd);
                }
            }
        }
        if self.stop.is_some() {
            self.stop_gone(id);
            return;
        }
        if service.told {
            self.runsv_left(id);
            return;
        }
        say!("{}: its runsv is gone; starting a new one", service.label());
        self.start_runsv(id);
    }

    /// Tells the runsv of a service to exit: SIGTERM to our child (runsv takes it as
    /// `x`: stop the service, then exit), `x` on `supervise/control` for an adopted one.
    fn tell_exit(&mut self, id: Id) {
        let location = self.locate(id);
        let Some(service) = self.services.get_mut(&id) else {
            return;
        };
        service.told = true;
        match &service.runsv {
            Runsv::Child { pid, .. } => {
                let _ = kill(*pid, Signal::SIGTERM);
            }
            Runsv::Adopted(adopted) => {
                let sent = location.map(|place| place.send_exit());
                match sent {
                    Some(Ok(())) => {}
                    Some(Err(error))
                        if matches!(
                            error.raw_os_error(),
                            Some(nix::libc::ENXIO | nix::libc::ENOENT)
                        ) =>
                    {
                        // Nobody reads the control FIFO: the runsv is gone already.
                        self.adopted_gone(id);
                    }
                    _ => {
                        // Unreachable through its directory: SIGTERM to the process
                        // holding its lock.
                        let holder = adopted.lock.and_then(locks::holder);
                        match holder {
                            Some(pid) => {
                                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
                            }
                            None => {
                                say!(
                                    "{}: warning: unable to reach its runsv to tell it to exit",
                                    service.label()
                                );
                            }
                        }
                    }
                }
            }
            Runsv::Delayed { .. } | Runsv::Queued | Runsv::None => {
                service.runsv = Runsv::None;
                if self.stop.is_some() {
                    self.stop_gone(id);
                } else if !service.present {
                    self.services.remove(&id);
                }
            }
        }
    }

    // ----- the ordered stop -----

    fn begin_stop(&mut self, signal: Signal) {
        if self.stop.is_some() {
            return;
        }
        // The deadline counts from the signal: reading the definitions is part of it.
        let deadline = Instant::now() + self.stop_deadline;
        let mut ids: Vec<Id> = self.services.keys().copied().collect();
        ids.sort_by(|a, b| {
            let name = |id: &Id| self.services.get(id).map(|s| s.name.clone());
            name(a).cmp(&name(b))
        });
        let index: HashMap<Id, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
        // Names lead to services as the scan directory shows them now.
        let mut by_name: HashMap<OsString, usize> = HashMap::new();
        for (i, id) in ids.iter().enumerate() {
            if let Some(service) = self.services.get(id).filter(|s| s.present) {
                for name in &service.names {
                    by_name.insert(name.clone(), i);
                }
            }
        }
        let places: Vec<(usize, Place)> = ids
            .iter()
            .enumerate()
            .filter_map(|(i, id)| Some((i, self.locate(*id)?)))
            .collect();
        let bound = deps::bound(self.stop_deadline);
        let read = deps::read(places, bound);
        if read.late > 0 {
            say!(
                "warning: the definitions of {} not read within {}: they stop in no particular order",
                services(read.late),
                backoff::seconds(bound)
            );
        }
        // An invalid definition (or runit's form) has no dependencies; unknown names are
        // ignored.
        let mut edges = Vec::new();
        for (i, after) in read.after {
            for dependency in &after {
                if let Some(&d) = by_name.get(OsStr::new(dependency)) {
                    edges.push((i, d));
                }
            }
        }
        let plan = Plan::new(ids.len(), &edges);
        for cycle in plan.cycles() {
            let names: Vec<String> = cycle
                .iter()
                .filter_map(|&i| ids.get(i))
                .filter_map(|id| self.services.get(id))
                .map(Service::label)
                .collect();
            say!(
                "dependency cycle among {}: they stop together",
                names.join(", ")
            );
        }
        say!(
            "{}: stopping {} (deadline {})",
            signal.as_str(),
            services(ids.len()),
            backoff::seconds(self.stop_deadline)
        );
        let already_gone: Vec<usize> = ids
            .iter()
            .enumerate()
            .filter(|(_, id)| {
                self.services.get(id).is_none_or(|s| {
                    matches!(s.runsv, Runsv::None | Runsv::Delayed { .. } | Runsv::Queued)
                })
            })
            .map(|(i, _)| i)
            .collect();
        let mut stop = Stop {
            ids,
            index,
            plan,
            deadline,
            began: Timestamp::now(),
            grace: None,
        };
        for i in already_gone {
            stop.plan.mark_gone(i);
            if let Some(service) = stop.ids.get(i).and_then(|id| self.services.get_mut(id)) {
                service.runsv = Runsv::None;
            }
        }
        self.stop = Some(stop);
        self.advance_stop();
    }

    /// Tells every service that may stop now to stop.
    fn advance_stop(&mut self) {
        loop {
            let Some(stop) = self.stop.as_mut() else {
                return;
            };
            if stop.grace.is_some() {
                return;
            }
            let next: Vec<Id> = stop
                .plan
                .next()
                .into_iter()
                .filter_map(|i| stop.ids.get(i).copied())
                .collect();
            if next.is_empty() {
                return;
            }
            let next: Vec<Id> = next
                .into_iter()
                .filter(|id| self.services.get(id).is_some_and(|s| !s.told))
                .collect();
            // Every state is read before the first runsv is told: a runsv that has
            // been told wakes up and competes with svdir for the CPU.
            for &id in &next {
                self.note_errors(id);
            }
            self.tell_group(&next);
            for id in next {
                if self.services.get(&id).is_some_and(|s| !s.told) {
                    self.tell_exit(id);
                }
            }
        }
    }

    /// Tells every runsv of `wave` that is svdir's child to exit with one signal to
    /// svdir's process group, when that reaches exactly them: svdir leads its own group
    /// (as init and the bench start it; its runsv children are in it, their services
    /// are not), and every child runsv still to be told is in `wave` (no dependency
    /// holds one back). Otherwise, or if the signal fails, each is told on its own.
    ///
    /// Why: one SIGTERM per runsv means a thousand system calls, and every runsv woken
    /// by one competes with svdir for the CPU while it stops its service; on 2 cores,
    /// the last of 1000 signals left svdir over a second after the first. One kill of
    /// the group wakes them all in one call. svdir's own copy of the signal arrives on
    /// its signalfd and is ignored (a stop is under way).
    fn tell_group(&mut self, wave: &[Id]) {
        let children: Vec<Id> = wave
            .iter()
            .copied()
            .filter(|id| {
                self.services
                    .get(id)
                    .is_some_and(|s| matches!(s.runsv, Runsv::Child { .. }))
            })
            .collect();
        if children.len() < 2 {
            return;
        }
        let in_wave: std::collections::HashSet<Id> = wave.iter().copied().collect();
        let held_back = self.services.iter().any(|(id, s)| {
            matches!(s.runsv, Runsv::Child { .. }) && !s.told && !in_wave.contains(id)
        });
        let own_group = nix::unistd::getpgrp() == nix::unistd::getpid();
        if held_back || !own_group {
            return;
        }
        if killpg(nix::unistd::getpgrp(), Signal::SIGTERM).is_err() {
            return;
        }
        for id in children {
            if let Some(service) = self.services.get_mut(&id) {
                service.told = true;
            }
        }
    }

    /// Notes whether the service (or its logger) is in `error` as it is told to stop:
    /// runsv writes `down` once it has stopped, whatever the state before.
    fn note_errors(&mut self, id: Id) {
        let Some(place) = self.locate(id) else {
            return;
        };
        let Some(service) = self.services.get_mut(&id) else {
            return;
        };
        for (label, subdirectory) in [
            (service.label(), ""),
            (format!("{}/log", service.label()), "log/"),
        ] {
            if let Some(state) = place.state(subdirectory) {
                if state.state == ServiceState::Error {
                    service.errors.push((label, state.reason));
                }
            }
        }
    }

    fn stop_gone(&mut self, id: Id) {
        if let Some(stop) = self.stop.as_mut() {
            if let Some(&i) = stop.index.get(&id) {
                stop.plan.mark_gone(i);
            }
        }
    }

    fn stop_remaining(&self) -> Vec<Id> {
        let Some(stop) = &self.stop else {
            return Vec::new();
        };
        stop.ids
            .iter()
            .enumerate()
            .filter(|(i, _)| !stop.plan.is_gone(*i))
            .map(|(_, id)| *id)
            .collect()
    }

    /// The deadline: SIGKILL to every runsv still running and to its service's
    /// process group (and its logger's): those its `supervise/state` names, checked by
    /// pid and start time, and the children the runsv has (see offspring.rs), found
    /// while every runsv to be killed is stopped.
    fn kill_remaining(&mut self) {
        let remaining = self.stop_remaining();
        say!(
            "stop deadline ({}) reached: killing {}",
            backoff::seconds(self.stop_deadline),
            services(remaining.len())
        );
        let runsvs: Vec<(Id, Option<Pid>)> = remaining
            .iter()
            .map(|id| (*id, self.services.get(id).and_then(runsv_pid)))
            .collect();
        for pid in runsvs.iter().filter_map(|(_, pid)| *pid) {
            let _ = kill(pid, Signal::SIGSTOP);
        }
        let parents = runsvs
            .iter()
            .filter_map(|(_, pid)| pid.map(|p| p.as_raw() as u32))
            .collect();
        let children = offspring::children(&parents);
        for (id, runsv_pid) in runsvs {
            let location = self.locate(id);
            let mut killed_pids = Vec::new();
            if let Some(place) = &location {
                for subdirectory in ["", "log/"] {
                    if let Some(state) = place.state(subdirectory) {
                        if state.pid != 0
                            && runsv::launch::start_time(state.pid) == Some(state.starttime)
                        {
                            let pid = Pid::from_raw(state.pid as i32);
                            if killpg(pid, Signal::SIGKILL).is_err() {
                                let _ = kill(pid, Signal::SIGKILL);
                            }
                            killed_pids.push(state.pid);
                        }
                    }
                }
            }
            if let Some(runsv) = runsv_pid {
                let runsv = runsv.as_raw() as u32;
                for &child in children.get(&runsv).into_iter().flatten() {
                    if offspring::kill_child(runsv, child) && !killed_pids.contains(&child) {
                        killed_pids.push(child);
                    }
                }
                let _ = kill(Pid::from_raw(runsv as i32), Signal::SIGKILL);
            }
            let Some(service) = self.services.get_mut(&id) else {
                continue;
            };
            service.killed = true;
            let pids: Vec<String> = killed_pids.iter().map(u32::to_string).collect();
            say!(
                "{}: killed at the stop deadline (runsv {}, service {})",
                service.label(),
                runsv_pid.map_or("unknown".to_string(), |p| p.to_string()),
                if pids.is_empty() {
                    "none running".to_string()
                } else {
                    pids.join(" ")
                }
            );
            if !matches!(service.runsv, Runsv::Child { .. }) {
                // Not our child: nothing to reap.
                service.runsv = Runsv::None;
                self.stop_gone(id);
            }
        }
        if let Some(stop) = self.stop.as_mut() {
            stop.grace = Some(Instant::now() + KILL_GRACE);
        }
    }

    /// When every runsv is gone: the report, and the exit status.
    fn stop_finished(&mut self) -> Option<i32> {
        let stop = self.stop.as_ref()?;
        if !stop.plan.done() {
            return None;
        }
        let mut problems = 0;
        let ids = stop.ids.clone();
        let began = stop.began;
        for id in &ids {
            let location = self.locate(*id);
            let Some(service) = self.services.get(id) else {
                continue;
            };
            if service.killed {
                problems += 1;
                continue;
            }
            let mut bad = false;
            for (label, reason) in &service.errors {
                say!("{label}: ended in error: {reason}");
                bad = true;
            }
            let Some(place) = location else {
                if bad {
                    problems += 1;
                }
                continue;
            };
            for (label, subdirectory) in [
                (service.label(), ""),
                (format!("{}/log", service.label()), "log/"),
            ] {
                let Some(state) = place.state(subdirectory) else {
                    continue;
                };
                let noted = service.errors.iter().any(|(l, _)| *l == label);
                if state.state == ServiceState::Error && !noted {
                    say!("{label}: ended in error: {}", state.reason);
                    bad = true;
                } else if state.last_exit == Some(ExitStatus::Signaled(Signal::SIGKILL as i32))
                    && state.since >= began
                {
                    say!("{label}: had to be killed (SIGKILL after its stop timeout)");
                    bad = true;
                }
            }
            if bad {
                problems += 1;
            }
        }
        if problems == 0 {
            say!("stopped {} cleanly", services(ids.len()));
            Some(0)
        } else {
            say!(
                "stopped {}; {problems} ended in error or had to be killed",
                services(ids.len())
            );
            Some(1)
        }
    }
}
