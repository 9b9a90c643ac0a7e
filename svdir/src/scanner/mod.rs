//! svdir's state and its event loop: the services of the scan directory and their
//! runsv processes, kept in step with the directory and the runlevel chain (watch.rs,
//! apply.rs, level.rs), dying runsv processes (runsvs.rs, adopt.rs, timers.rs), sync
//! requests, and the ordered stop (stop.rs, planned by stop_plan.rs). The loop here only
//! waits on its three descriptors and hands each event to the module that owns it; the
//! clock, signals and spawning go through sys.rs, so that tests.rs can drive it all.

mod adopt;
mod apply;
mod level;
mod runsvs;
mod stop;
mod stop_plan;
mod sys;
mod timers;
mod watch;

#[cfg(test)]
mod scanner_tests;

use crate::backoff::{self, Backoff};
use crate::chain::{self, Resolution};
use crate::spawn::{self, find_runsv, Spawner};
use crate::sync::{SetupError, SyncControl};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::inotify::WatchDescriptor;
use nix::sys::signal::Signal;
use nix::sys::signalfd::SignalFd;
use nix::sys::stat::Mode;
use nix::unistd::Pid;
use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::chain::Id;

pub struct Options {
    /// The scan directory as given (absolute), perhaps a symlink chain.
    pub dir: PathBuf,
    pub stop_deadline: Duration,
}

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
    /// Its runsv could create the service's `supervise/` nowhere (it exited
    /// runsv::state_dir::EXIT_NO_STATE): not started again until the entry is
    /// replaced, and an error in the stop's report.
    Failed,
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
}

impl Service {
    fn new(name: OsString, home: PathBuf) -> Service {
        Service {
            name,
            names: Vec::new(),
            present: true,
            home,
            target: None,
            runsv: Runsv::None,
            spawned_as: OsString::new(),
            told: false,
            backoff: backoff::runsv_backoff(),
        }
    }

    fn label(&self) -> String {
        self.name.to_string_lossy().into_owned()
    }
}

struct Svdir {
    dir: PathBuf,
    resolution: Resolution,
    scan_fd: OwnedFd,
    /// The clock, signals and spawning (a fake one in tests).
    sys: Box<dyn sys::Sys>,
    signals: SignalFd,
    watch: watch::Watch,
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
    stop: Option<stop::Stopping>,
    stop_deadline: Duration,
    /// Set when the stop is over: svdir's exit status.
    exit: Option<i32>,
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
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

fn borrow(fd: RawFd) -> BorrowedFd<'static> {
    // SAFETY: every fd polled is owned by the Svdir, which outlives the poll.
    unsafe { BorrowedFd::borrow_raw(fd) }
}

/// Reports a problem once: `say` is called only when it is not the one `last` holds,
/// and `last` remembers it (a problem that persists is not repeated at every rescan).
fn report_once(last: &mut Option<String>, problem: String, say: impl FnOnce(&str)) {
    if last.as_deref() != Some(problem.as_str()) {
        say(&problem);
        *last = Some(problem);
    }
}

/// `1 service`, `3 services`.
fn services(count: usize) -> String {
    if count == 1 {
        "1 service".to_string()
    } else {
        format!("{count} services")
    }
}

fn lossy(name: &OsStr) -> String {
    name.to_string_lossy().into_owned()
}

impl Svdir {
    /// An svdir on `resolution` (of `dir`) before its first scan: no service, nothing
    /// pending, no sync control, the default stop deadline. Its seams first: the
    /// system calls and the signals, which the tests fake.
    fn new(
        sys: Box<dyn sys::Sys>,
        signals: SignalFd,
        dir: PathBuf,
        resolution: Resolution,
        scan_fd: OwnedFd,
        watch: watch::Watch,
    ) -> Svdir {
        Svdir {
            dir,
            resolution,
            scan_fd,
            sys,
            signals,
            watch,
            sync: None,
            retired_sync: None,
            sync_problem: None,
            sync_requests: 0,
            services: HashMap::new(),
            children: HashMap::new(),
            skipped: BTreeMap::new(),
            scan_problem: None,
            resolve_problem: None,
            need_scan: false,
            need_resolve: false,
            stop: None,
            stop_deadline: crate::DEFAULT_STOP_DEADLINE,
            exit: None,
        }
    }

    fn start(options: Options) -> Result<Svdir, String> {
        // Signals first, so that nothing is missed; the mask is reset in every child.
        let mask = runsv::signals::mask_of(&[
            Signal::SIGCHLD,
            Signal::SIGTERM,
            Signal::SIGINT,
            Signal::SIGHUP,
        ]);
        let signals = runsv::signals::receive(&mask)?;
        for signal in mask.iter() {
            // An ignored signal never reaches the signalfd (and an ignored SIGCHLD
            // would reap our children behind our back).
            // SAFETY: setting a disposition to SIG_DFL installs no handler code.
            unsafe {
                let _ = nix::sys::signal::signal(signal, nix::sys::signal::SigHandler::SigDfl);
            }
        }

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
        let watch = watch::Watch::new()
            .map_err(|e| format!("unable to create an inotify instance: {e}"))?;
        let sys = Box::new(sys::Real { spawner });
        let mut svdir = Svdir::new(sys, signals, dir, resolution, scan_fd, watch);
        svdir.stop_deadline = options.stop_deadline;
        (svdir.sync, svdir.sync_problem) = (sync, sync_problem);
        // Watches before the first scan: a change during it is not missed.
        let began = Instant::now();
        svdir.watch.follow(&svdir.resolution);
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
            if let Some(code) = self.exit {
                return code;
            }
            let timeout = timeout(self.next_wakeup(), self.sys.now());
            let signal_fd = self.signals.as_fd().as_raw_fd();
            let inotify_fd = self.watch.fd().as_raw_fd();
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
            self.handle_timers(self.sys.now());
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

    fn handle_inotify(&mut self) {
        let news = self.watch.read();
        self.need_scan |= news.rescan;
        self.need_resolve |= news.resolve;
        if news.overflow {
            let adopted: Vec<Id> = self
                .services
                .iter()
                .filter(|(_, s)| matches!(s.runsv, Runsv::Adopted(_)))
                .map(|(id, _)| *id)
                .collect();
            for id in adopted {
                self.check_adopted(id, 0);
            }
        }
        for id in &news.unwatched {
            if let Some(Service {
                runsv: Runsv::Adopted(adopted),
                ..
            }) = self.services.get_mut(id)
            {
                adopted.watch = None;
            }
        }
        for id in news.probe {
            self.check_adopted(id, 0);
        }
    }
}

/// poll(2)'s timeout for a wake-up at `when`, rounded up so that a timer is never
/// early and the loop never spins.
fn timeout(when: Option<Instant>, now: Instant) -> PollTimeout {
    match when {
        None => PollTimeout::NONE,
        Some(when) => {
            let wait = when.saturating_duration_since(now);
            let millis = wait.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
            PollTimeout::try_from(millis).unwrap_or(PollTimeout::MAX)
        }
    }
}
