//! runsv's event loop: one poll over a signalfd, the control FIFOs, the readiness pipe
//! and the log relay, with the machines' deadlines as its timeout. It turns what it
//! sees into machine events, performs the actions the machines return, and writes
//! `supervise/` after every event. It never sleeps: a restart delay is a deadline.
//!
//! This file holds the supervisor's state and how it starts; each room beside it owns
//! one part of the loop:
//! - dispatch.rs: the poll, the timers, and `event`/`perform` between machine and world;
//! - output.rs: where the service's output goes (log/, relay, inherited, /dev/null);
//! - control.rs: the control FIFOs, runsv's signals, readiness lines, dependencies
//!   and `sv reconfigure`;
//! - adopt.rs: what a killed predecessor left: its service, its keeper's pipes;
//! - spawn.rs: starting and signalling the services' processes;
//! - sys.rs: the clock and the process calls, the seam the unit tests replace
//!   (event_loop_tests.rs).

mod adopt;
// The cgroup hooks' bodies (tracking.rs does the work).
mod cgroup_hooks;
mod control;
mod dispatch;
mod output;
mod spawn;
mod sys;

#[cfg(test)]
mod event_loop_tests;

use crate::adoption;
use crate::dependency_watch::DependencyWatch;
use crate::service::{has_log_service, Service};
use crate::tracking::{self, Tracked};
use nix::libc;
use nix::sys::signal::Signal;
use nix::sys::signalfd::SignalFd;
use output::Output;
use runsv::launch::open_null;
use std::os::fd::{BorrowedFd, OwnedFd, RawFd};
use std::path::Path;
use std::time::Duration;
use sys::Sys;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Which {
    Main,
    Log,
}

struct Supervisor {
    /// The clock and the process calls (the real ones, or a test's).
    sys: Box<dyn Sys>,
    main: Service,
    log: Option<Service>,
    output: Option<Output>,
    null: OwnedFd,
    signals: SignalFd,
    /// The main service asked to exit and its log was told to drain.
    draining: bool,
    /// The states of the main service's `after:` dependencies, if it has any.
    dependencies: Option<DependencyWatch>,
    /// When to read the dependencies again if they cannot be watched.
    dependencies_poll: Option<Duration>,
    /// When to try again to write files that could not be written.
    rewrite: Option<Duration>,
    /// Holds the relay's pipes open for a runsv that is killed (see adoption.rs).
    keeper: Option<adoption::Keeper>,
    /// The cgroups of the main and log services (None: process groups; tracking.rs).
    main_group: Option<Tracked>,
    log_group: Option<Tracked>,
}

/// Runs the supervisor of `directory` until it is told to exit. Errors are runit's
/// fatal messages (exit 111).
pub fn run(directory: &Path) -> Result<(), String> {
    let unable = |e: std::io::Error| {
        format!(
            "unable to change to directory: {}",
            runsv::errno_text::describe(&e)
        )
    };
    let directory = std::path::absolute(directory).map_err(unable)?;
    std::env::set_current_dir(&directory).map_err(unable)?;
    ensure_standard_fds();
    runsv::launch::exact_modes();
    let signals = runsv::signals::receive(&runsv::signals::mask_of(&[
        Signal::SIGCHLD,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGINT,
    ]))?;
    // SAFETY: setting a disposition to SIG_IGN installs no handler code.
    unsafe {
        let _ = nix::sys::signal::signal(Signal::SIGPIPE, nix::sys::signal::SigHandler::SigIgn);
    }
    // supervise/ through the working directory, the service directory (see Service).
    let sys = Box::new(sys::Real::new());
    let mut supervisor = Supervisor::open(&directory, Path::new(""), signals, sys)?;
    // Free what loading the definitions used: an idle runsv should be small. (musl's
    // allocator returns freed memory by itself and has no malloc_trim.)
    // SAFETY: malloc_trim only returns free heap memory to the kernel.
    #[cfg(target_env = "gnu")]
    unsafe {
        libc::malloc_trim(0);
    }
    supervisor.start();
    supervisor.run_loop();
    // Empty by now (the service counted as down only once its group was): removed.
    for tracked in [supervisor.main_group.take(), supervisor.log_group.take()]
        .into_iter()
        .flatten()
    {
        tracked.group.remove();
    }
    Ok(())
}

impl Supervisor {
    /// Loads the service at `directory` (and its log/) and takes over their
    /// `supervise/`, reached through `here` (see `Service::open`).
    fn open(
        directory: &Path,
        here: &Path,
        signals: SignalFd,
        sys: Box<dyn Sys>,
    ) -> Result<Supervisor, String> {
        let now = sys.now();
        let mut main = Service::open(directory, here, false, now)?;
        let log_directory = directory.join("log");
        let mut log = if has_log_service(directory, main.definition.as_ref()) {
            Some(Service::open(&log_directory, here, true, now)?)
        } else {
            None
        };
        let tree = tracking::tree(&main.label);
        let main_group = tree
            .as_ref()
            .and_then(|tree| Tracked::open(tree, directory, &main.label));
        let log_group = match (&tree, &log) {
            (Some(tree), Some(log)) => Tracked::open(tree, &log_directory, &log.label),
            _ => None,
        };
        main.cgroup = main_group.as_ref().map(|t| t.group.path().to_path_buf());
        if let Some(log) = &mut log {
            log.cgroup = log_group.as_ref().map(|t| t.group.path().to_path_buf());
        }
        let null = open_null().map_err(|e| format!("unable to open /dev/null: {e}"))?;
        let output = Some(Output::open(&main, log.is_some(), directory)?);
        let dependencies = main
            .definition
            .as_ref()
            .and_then(|d| DependencyWatch::new(&main.directory, &d.after));
        Ok(Supervisor {
            sys,
            main,
            log,
            output,
            null,
            signals,
            draining: false,
            dependencies,
            dependencies_poll: None,
            rewrite: None,
            keeper: None,
            main_group,
            log_group,
        })
    }

    /// Everything before the first poll: what a killed predecessor left running is
    /// adopted where it can be (the output pipes come from its keeper, so what waits in
    /// them is never lost) and stopped where it cannot; then the services boot.
    fn start(&mut self) {
        let pipes_taken = self.take_pipes_from_keeper();
        self.adopt_leftovers(pipes_taken);
        self.start_keeper();
        // runsv announces itself (opens supervise/ok) once a status is written.
        // Normally that is the state boot (or adoption) leads to, so the files are
        // written once; when a killed predecessor's service must be stopped first,
        // which may take its stop timeout, runsv says so at once instead.
        let leftovers = self.main.left_running.is_some()
            || self.log.as_ref().is_some_and(|l| l.left_running.is_some());
        if leftovers {
            self.announce();
        }
        self.replace_leftovers();
        self.clear_groups();
        // The machine learns the dependencies' states before it may start the service.
        self.dependencies_changed(false);
        self.boot();
        if !leftovers {
            self.announce();
        }
    }

    fn service(&mut self, which: Which) -> Option<&mut Service> {
        match which {
            Which::Main => Some(&mut self.main),
            Which::Log => self.log.as_mut(),
        }
    }
}

fn borrow(fd: RawFd) -> BorrowedFd<'static> {
    // SAFETY: the fds polled are owned by the Supervisor, which outlives every poll.
    unsafe { BorrowedFd::borrow_raw(fd) }
}

/// Opens /dev/null on any of fds 0–2 that is closed, so that pipes runsv creates never
/// take those numbers.
fn ensure_standard_fds() {
    for fd in 0..3 {
        // SAFETY: fcntl(F_GETFD) only queries.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
            if let Ok(null) = nix::fcntl::open(
                "/dev/null",
                nix::fcntl::OFlag::O_RDWR,
                nix::sys::stat::Mode::empty(),
            ) {
                if null != fd {
                    let _ = nix::unistd::dup2(null, fd);
                    let _ = nix::unistd::close(null);
                }
            }
        }
    }
}
