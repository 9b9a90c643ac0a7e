//! runsv's event loop: one poll over a signalfd, the control FIFOs, the readiness pipe
//! and the log relay, with the machines' deadlines as its timeout. It turns what it
//! sees into machine events, performs the actions the machines return, and writes
//! `supervise/` after every event. It never sleeps: a restart delay is a deadline.

use crate::adoption;
use crate::dependency_watch::{DependencyWatch, FALLBACK_INTERVAL};
use crate::machine::{Action, Event, Now, Process, Target};
use crate::relay::{Mode, Relay, Stream};
use crate::service::{has_log_service, Leftover, Reconfigured, Service, REWRITE_INTERVAL};
use crate::tee::{Tee, Wait};
use crate::tracking::{self, Tracked};

// The cgroup hooks' bodies (tracking.rs does the work).
mod cgroup_hooks;
use nix::errno::Errno;
use nix::libc;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, killpg, SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use runsv::definition::{LogDestination, Readiness};
use runsv::dependencies::Dependencies;
use runsv::launch::{open_null, start_time, Launch, Stdio};
use runsv::supervise::ExitStatus;
use runsv::tai64n::Timestamp;
use std::collections::VecDeque;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a `control/<c>` script may run before it is killed: runit waits for it
/// forever, blind to everything else.
const CONTROL_SCRIPT_TIMEOUT: Duration = Duration::from_secs(5);

/// The control byte of `sv reconfigure` (runit has no `R`).
const RECONFIGURE: u8 = runsv::control::Control::Reconfigure.byte();

/// The control bytes read in one turn at most: a FIFO's capacity.
const CONTROL_SHARE: usize = 64 * 1024;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Which {
    Main,
    Log,
}

/// Where the main service's output goes.
enum Output {
    /// Through runsv to the `log/` service.
    Tee(Tee),
    Relay(Relay),
    Inherit,
    Null,
}

struct Supervisor {
    origin: Instant,
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
    let directory = std::path::absolute(directory).map_err(|e| {
        format!(
            "unable to change to directory: {}",
            runsv::errno_text::describe(&e)
        )
    })?;
    std::env::set_current_dir(&directory).map_err(|e| {
        format!(
            "unable to change to directory: {}",
            runsv::errno_text::describe(&e)
        )
    })?;
    ensure_standard_fds();
    runsv::launch::exact_modes();

    let mut mask = SigSet::empty();
    for signal in [
        Signal::SIGCHLD,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGINT,
    ] {
        mask.add(signal);
    }
    mask.thread_block()
        .map_err(|e| format!("unable to block signals: {e}"))?;
    // SAFETY: setting a disposition to SIG_IGN installs no handler code.
    unsafe {
        let _ = nix::sys::signal::signal(Signal::SIGPIPE, nix::sys::signal::SigHandler::SigIgn);
    }
    let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(|e| format!("unable to create signalfd: {e}"))?;

    let origin = Instant::now();
    let now = Now {
        monotonic: Duration::ZERO,
        wall: Timestamp::now(),
    };
    let main = Service::open(&directory, false, now)?;
    let log_directory = directory.join("log");
    let log = if has_log_service(&directory, main.definition.as_ref()) {
        Some(Service::open(&log_directory, true, now)?)
    } else {
        None
    };
    let null = open_null().map_err(|e| format!("unable to open /dev/null: {e}"))?;
    let tail = runsv::tail::TailWriter::new(
        main.supervise.tail(),
        main.definition
            .as_ref()
            .map_or(runsv::tail::DEFAULT_CAPACITY, |d| d.log_tail),
    );
    let yaml = main
        .definition
        .as_ref()
        .is_some_and(|d| matches!(d.form, runsv::definition::Form::Yaml(_)));
    let relay = |mode, tail| {
        Relay::new(&main.machine_name(&directory), mode, tail)
            .map(Output::Relay)
            .map_err(|e| format!("unable to create pipe for the log relay: {e}"))
    };
    let output = Some(match (&log, main.definition.as_ref().map(|d| &d.log)) {
        (Some(_), _) => Tee::new(tail)
            .map(Output::Tee)
            .map_err(|e| format!("unable to create pipe for log service: {e}"))?,
        (None, Some(LogDestination::Kmsg)) => relay(Mode::Kmsg, tail)?,
        // A runit `run` without log/ writes straight to runsv's output, as with runit.
        (None, Some(LogDestination::Console)) if yaml => relay(Mode::Console, tail)?,
        (None, Some(LogDestination::Null)) => Output::Null,
        _ => Output::Inherit,
    });
    let dependencies = main
        .definition
        .as_ref()
        .and_then(|d| DependencyWatch::new(&main.directory, &d.after));
    let tree = tracking::tree(&main.label);
    let main_group = tree
        .as_ref()
        .and_then(|tree| Tracked::open(tree, &directory, &main.label));
    let log_group = match (&tree, &log) {
        (Some(tree), Some(log)) => Tracked::open(tree, &log_directory, &log.label),
        _ => None,
    };
    let mut main = main;
    let mut log = log;
    main.cgroup = main_group.as_ref().map(|t| t.group.path().to_path_buf());
    if let Some(log) = &mut log {
        log.cgroup = log_group.as_ref().map(|t| t.group.path().to_path_buf());
    }
    let mut supervisor = Supervisor {
        origin,
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
    };
    // Free what loading the definitions used: an idle runsv should be small. (musl's
    // allocator returns freed memory by itself and has no malloc_trim.)
    // SAFETY: malloc_trim only returns free heap memory to the kernel.
    #[cfg(target_env = "gnu")]
    unsafe {
        libc::malloc_trim(0);
    }
    // What a killed predecessor left running is adopted where it can be; the output
    // pipes come from its keeper, so what waits in them is never lost.
    let pipes_taken = supervisor.take_pipes_from_keeper();
    supervisor.adopt_leftovers(pipes_taken);
    supervisor.start_keeper();
    // runsv announces itself (opens supervise/ok) once a status is written. Normally
    // that is the state boot (or adoption) leads to, so the files are written once;
    // when a killed predecessor's service must be stopped first, which may take its
    // stop timeout, runsv says so at once instead.
    let leftovers = supervisor.main.left_running.is_some()
        || supervisor
            .log
            .as_ref()
            .is_some_and(|l| l.left_running.is_some());
    if leftovers {
        supervisor.announce();
    }
    supervisor.replace_leftovers();
    supervisor.clear_groups();
    // The machine learns the dependencies' states before it may start the service.
    supervisor.dependencies_changed(false);
    supervisor.boot();
    if !leftovers {
        supervisor.announce();
    }
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

trait MachineName {
    fn machine_name(&self, directory: &Path) -> String;
}

impl MachineName for Service {
    fn machine_name(&self, directory: &Path) -> String {
        self.definition
            .as_ref()
            .map(|d| d.name.clone())
            .unwrap_or_else(|| {
                directory
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            })
    }
}

impl Supervisor {
    fn now(&self) -> Now {
        Now {
            monotonic: self.origin.elapsed(),
            wall: Timestamp::now(),
        }
    }

    fn service(&mut self, which: Which) -> Option<&mut Service> {
        match which {
            Which::Main => Some(&mut self.main),
            Which::Log => self.log.as_mut(),
        }
    }

    /// Writes the current status of both services and opens their `supervise/ok`. A
    /// predecessor's leftover still to be stopped stays named in `state`.
    fn announce(&mut self) {
        for which in [Which::Log, Which::Main] {
            if let Some(service) = self.service(which) {
                match service.left_running.take() {
                    Some(leftover) => {
                        service.write_files_stopping(&leftover);
                        service.left_running = Some(leftover);
                    }
                    None => service.write_files(),
                }
                service.announce();
            }
        }
    }

    /// A previous runsv of this directory was killed and its service lives on, up and
    /// ready: take it over. It keeps running, uninterrupted, with one copy; its pid,
    /// uptime, restart count and want stay; signals, stop and status work as before;
    /// runsv follows it through a pidfd and restarts it when it ends. Its output pipe
    /// (to the log service or the relay) is fetched from the processes themselves, so
    /// the logger stays connected and a restarted service writes into the same pipe.
    /// What cannot be adopted is left in `left_running`, to be stopped.
    fn adopt_leftovers(&mut self, pipes_taken: bool) {
        let now = self.now();
        for which in [Which::Log, Which::Main] {
            let Some(service) = self.service(which) else {
                continue;
            };
            if !service.left_running.as_ref().is_some_and(|l| l.adoptable()) {
                continue;
            }
            let Some(leftover) = service.left_running.take() else {
                continue;
            };
            // Where the service has a group, only a process in it is the service's.
            let member = self
                .group(which)
                .is_none_or(|t| t.group.contains(leftover.pid));
            let pidfd = match adoption::pidfd_open(leftover.pid) {
                Some(pidfd) if member && (pipes_taken || self.recover_output(which, &pidfd)) => {
                    pidfd
                }
                _ => {
                    if let Some(service) = self.service(which) {
                        service.left_running = Some(leftover);
                    }
                    continue;
                }
            };
            if let Some(service) = self.service(which) {
                service.machine.adopt(now, &leftover.previous);
                service.adopted = Some((leftover.pid, pidfd));
            }
        }
    }

    /// Takes the output pipes over from the keeper of a killed predecessor: its ends
    /// are runsv's ends, and the other ends are reopened through /proc. Whatever became
    /// of the service and the logger (adopted, stopped, dead), the bytes waiting in the
    /// pipes then reach the logger or the relay, in order. False when there is no
    /// keeper, or it kept pipes of another kind of output.
    fn take_pipes_from_keeper(&mut self) -> bool {
        let record = self.main.supervise.keeper();
        match &mut self.output {
            Some(Output::Tee(tee)) => {
                // The service's pipe, read end; the logger's pipe, write end.
                let Some([service_read, logger_write]) =
                    adoption::old_keeper_ends(&record, [true, false])
                else {
                    return false;
                };
                let (Some(service_write), Some(logger_read)) = (
                    adoption::other_end(&service_read, true, true),
                    adoption::other_end(&logger_write, false, true),
                ) else {
                    return false;
                };
                tee.replace_service_pipe(service_read, service_write);
                tee.replace_logger_pipe(logger_read, logger_write);
                true
            }
            Some(Output::Relay(relay)) => {
                let Some([out, err]) = adoption::old_keeper_ends(&record, [true, true]) else {
                    return false;
                };
                let (Some(out_write), Some(err_write)) = (
                    adoption::other_end(&out, true, true),
                    adoption::other_end(&err, true, true),
                ) else {
                    return false;
                };
                relay.replace(Stream::Stdout, out, out_write);
                relay.replace(Stream::Stderr, err, err_write);
                true
            }
            _ => false,
        }
    }

    /// The relay's pipes get a keeper of this runsv's; a killed predecessor's keeper is
    /// ended, now that its pipes are taken over (or its service was stopped).
    fn start_keeper(&mut self) {
        adoption::stop_old_keeper(&self.main.supervise.keeper());
        self.replace_keeper();
    }

    /// Starts a keeper (again: one that died is replaced at once, or the next kill of
    /// runsv would leave the pipes without a reader and the service to SIGPIPE).
    fn replace_keeper(&mut self) {
        let record = self.main.supervise.keeper();
        let ends = match &self.output {
            Some(Output::Relay(relay)) => Some(relay.read_fds()),
            Some(Output::Tee(tee)) => tee.keeper_ends(),
            _ => None,
        };
        if let Some(ends) = ends {
            self.keeper = adoption::Keeper::start(ends, &record);
        }
    }

    /// Re-establishes the pipe between the service and its logger (or the relay)
    /// from the adopted process's own end of it: stdin for the logger, stdout for the
    /// service. False when it cannot be done (the process must then be stopped).
    fn recover_output(&mut self, which: Which, pidfd: &OwnedFd) -> bool {
        match (&mut self.output, which) {
            (Some(Output::Tee(tee)), Which::Log) => {
                let Some(input) = adoption::fd_of(pidfd, 0) else {
                    return false;
                };
                if adoption::pipe_identity(&input).is_none() {
                    // The logger reads something else: a new one will get our pipe.
                    return true;
                }
                let Some(runsv_end) = adoption::other_end(&input, true, false) else {
                    return false;
                };
                tee.replace_logger_pipe(input, runsv_end);
                true
            }
            (Some(Output::Tee(tee)), Which::Main) => {
                let Some(output) = adoption::fd_of(pidfd, 1) else {
                    return false;
                };
                if adoption::pipe_identity(&output).is_none() {
                    return true; // it writes elsewhere by its own choice
                }
                let Some(runsv_end) = adoption::other_end(&output, false, false) else {
                    return false;
                };
                tee.replace_service_pipe(runsv_end, output);
                true
            }
            (Some(Output::Relay(relay)), Which::Main) => {
                for (stream, fd) in [(Stream::Stdout, 1), (Stream::Stderr, 2)] {
                    let Some(output) = adoption::fd_of(pidfd, fd) else {
                        return false;
                    };
                    if adoption::pipe_identity(&output).is_none() {
                        continue; // it writes elsewhere by its own choice
                    }
                    if stream == Stream::Stderr
                        && adoption::pipe_identity(&output)
                            == adoption::pipe_identity(relay.read_end(Stream::Stdout))
                    {
                        continue; // 2>&1: already taken over as stdout
                    }
                    let Some(read) = adoption::other_end(&output, false, false) else {
                        return false;
                    };
                    relay.replace(stream, read, output);
                }
                true
            }
            _ => true,
        }
    }

    /// A previous runsv of this directory was killed and its service lives on, but
    /// cannot be adopted: stop it (pid and start time identify it for sure) before
    /// starting a new one, so the service never runs twice.
    fn replace_leftovers(&mut self) {
        for which in [Which::Log, Which::Main] {
            let Some(service) = self.service(which) else {
                continue;
            };
            let Some(Leftover { pid, previous }) = service.left_running.take() else {
                continue;
            };
            let signal = service.machine.settings().stop_signal;
            let timeout = service.machine.settings().stop_timeout;
            eprintln!(
                "runsv {}: warning: stopping pid {pid}, left running by a previous runsv",
                service.label
            );
            // `state` names it until here (see announce); what boot writes next
            // replaces that.
            adoption::stop_leftover(pid, previous.starttime, signal, timeout);
        }
    }

    /// Reads the dependencies again (after an inotify event, or on the fallback timer)
    /// and tells the main machine.
    fn dependencies_changed(&mut self, event: bool) {
        if let Some(dependencies) = self.read_dependencies(event) {
            self.event(Which::Main, Event::Dependencies(dependencies));
        }
    }

    /// How the dependencies stand, if the service has any.
    fn read_dependencies(&mut self, event: bool) -> Option<Dependencies> {
        let watch = self.dependencies.as_mut()?;
        let dependencies = if event {
            watch.changed()
        } else {
            watch.evaluate()
        };
        self.dependencies_poll = watch
            .polling()
            .then(|| self.origin.elapsed() + FALLBACK_INTERVAL);
        Some(dependencies)
    }

    fn boot(&mut self) {
        // The logger first, so the service's first line has a reader (runit).
        for which in [Which::Log, Which::Main] {
            let now = self.now();
            let Some(service) = self.service(which) else {
                continue;
            };
            if service.adopted.is_some() {
                continue;
            }
            let actions = service.machine.boot(now);
            self.perform(which, actions);
        }
    }

    fn run_loop(&mut self) {
        loop {
            if self.main.exited && self.log.as_ref().is_none_or(|log| log.exited) {
                if let Some(Output::Relay(relay)) = &mut self.output {
                    relay.flush();
                }
                self.warn_output();
                if let Some(keeper) = self.keeper.take() {
                    keeper.stop();
                }
                return;
            }
            let timeout = self.poll_timeout();
            let mut fds = vec![
                PollFd::new(self.signals.as_fd(), PollFlags::POLLIN),
                PollFd::new(borrow(self.main.control_fd()), PollFlags::POLLIN),
            ];
            let log_control = self.log.as_ref().map(|l| l.control_fd());
            let notification = self.main.notification.as_ref().map(|fd| fd.as_raw_fd());
            let [relay_out, relay_err] = match &self.output {
                Some(Output::Relay(relay)) => relay.read_fds().map(Some),
                _ => [None, None],
            };
            let (tee_input, tee_room) = match &self.output {
                Some(Output::Tee(tee)) => match tee.wait() {
                    Wait::Input(fd) => (Some(fd), None),
                    Wait::Room(fd) => (None, Some(fd)),
                    Wait::Done => (None, None),
                },
                _ => (None, None),
            };
            let dependencies = self.dependencies.as_ref().and_then(|d| d.fd());
            let adopted_main = self.main.adopted.as_ref().map(|(_, fd)| fd.as_raw_fd());
            let adopted_log = self
                .log
                .as_ref()
                .and_then(|l| l.adopted.as_ref())
                .map(|(_, fd)| fd.as_raw_fd());
            for fd in [
                log_control,
                notification,
                relay_out,
                relay_err,
                tee_input,
                dependencies,
                adopted_main,
                adopted_log,
            ]
            .into_iter()
            .flatten()
            {
                fds.push(PollFd::new(borrow(fd), PollFlags::POLLIN));
            }
            // A slow console that has lines waiting, a logger's full pipe: asked for
            // room, never waited on.
            let consoles = match &self.output {
                Some(Output::Relay(relay)) => relay.waiting_fds(),
                _ => [None, None],
            };
            for fd in consoles.into_iter().chain([tee_room]).flatten() {
                fds.push(PollFd::new(borrow(fd), PollFlags::POLLOUT));
            }
            // A held exit: cgroup.events raises POLLPRI when the group empties.
            let [main_events, log_events] = [&self.main_group, &self.log_group].map(|t| {
                t.as_ref()
                    .filter(|t| t.pending.is_some())
                    .map(|t| t.group.events_fd().as_raw_fd())
            });
            for fd in [main_events, log_events].into_iter().flatten() {
                fds.push(PollFd::new(borrow(fd), PollFlags::POLLPRI));
            }
            match poll(&mut fds, timeout) {
                Ok(_) => {}
                Err(Errno::EINTR) => continue,
                Err(_) => continue,
            }
            let ready: Vec<(RawFd, bool)> = fds
                .iter()
                .map(|fd| {
                    let events = fd.revents().unwrap_or(PollFlags::empty());
                    (fd.as_fd().as_raw_fd(), !events.is_empty())
                })
                .collect();
            drop(fds);
            for (fd, is_ready) in ready {
                if !is_ready {
                    continue;
                }
                if fd == self.signals.as_raw_fd() {
                    self.handle_signals();
                } else if fd == self.main.control_fd() {
                    self.handle_control(Which::Main);
                } else if Some(fd) == log_control {
                    self.handle_control(Which::Log);
                } else if Some(fd) == notification {
                    self.handle_notification();
                } else if Some(fd) == dependencies {
                    self.dependencies_changed(true);
                } else if Some(fd) == main_events {
                    self.group_changed(Which::Main);
                } else if Some(fd) == log_events {
                    self.group_changed(Which::Log);
                } else if Some(fd) == adopted_main {
                    self.adopted_ended(Which::Main);
                } else if Some(fd) == adopted_log {
                    self.adopted_ended(Which::Log);
                } else if Some(fd) == relay_out || Some(fd) == relay_err {
                    if let Some(Output::Relay(relay)) = &mut self.output {
                        relay.pump(fd);
                    }
                } else if Some(fd) == tee_input || Some(fd) == tee_room {
                    self.pump_tee();
                } else if consoles.contains(&Some(fd)) {
                    if let Some(Output::Relay(relay)) = &mut self.output {
                        relay.resume(fd);
                    }
                }
            }
            self.warn_output();
            self.handle_timers();
        }
    }

    fn poll_timeout(&self) -> PollTimeout {
        let now = self.origin.elapsed();
        let deadlines = [
            self.main.machine.deadline(),
            self.log.as_ref().and_then(|l| l.machine.deadline()),
            self.dependencies_poll,
            self.rewrite,
            self.main_group.as_ref().and_then(|t| t.kill_at),
            self.log_group.as_ref().and_then(|t| t.kill_at),
        ];
        match deadlines.into_iter().flatten().min() {
            None => PollTimeout::NONE,
            Some(deadline) => {
                // Round up, so the timer is never early and the loop never spins.
                let millis = deadline.saturating_sub(now).as_micros().div_ceil(1000);
                PollTimeout::try_from(millis.min(i32::MAX as u128) as i32)
                    .unwrap_or(PollTimeout::MAX)
            }
        }
    }

    fn event(&mut self, which: Which, event: Event) {
        let now = self.now();
        let Some(service) = self.service(which) else {
            return;
        };
        let actions = service.machine.on(now, event);
        self.perform(which, actions);
    }

    fn handle_signals(&mut self) {
        while let Ok(Some(info)) = self.signals.read_signal() {
            match Signal::try_from(info.ssi_signo as i32) {
                Ok(Signal::SIGCHLD) => self.reap(),
                Ok(Signal::SIGTERM) if !self.main.exited => {
                    self.event(Which::Main, Event::Terminate)
                }
                // runit dies of these, orphaning the service; runsv ignores them.
                _ => {}
            }
        }
    }

    fn reap(&mut self) {
        while let Some((pid, status)) = runsv::launch::reap_one() {
            let pid = pid.as_raw() as u32;
            if self.keeper.as_ref().is_some_and(|k| k.pid() == pid) {
                self.keeper = None;
                self.replace_keeper();
                continue;
            }
            let which = if self.main.machine.owns(pid) {
                Which::Main
            } else if self.log.as_ref().is_some_and(|l| l.machine.owns(pid)) {
                Which::Log
            } else {
                continue;
            };
            self.flush_relay(which, pid);
            self.exited(which, pid, status);
        }
    }

    /// `run` or `finish` of the main service ended: its last line reaches the log even
    /// without a newline (it does not wait for the next run's first line to end it).
    fn flush_relay(&mut self, which: Which, pid: u32) {
        let ours = [Process::Run, Process::Finish]
            .into_iter()
            .any(|p| self.main.machine.pid_of(p) == Some(pid));
        if which == Which::Main && ours {
            if let Some(Output::Relay(relay)) = &mut self.output {
                relay.writer_ended();
            }
        }
    }

    /// An adopted process ended. It was not runsv's child: whoever reaped it has its
    /// exit status.
    fn adopted_ended(&mut self, which: Which) {
        let Some(service) = self.service(which) else {
            return;
        };
        let Some((pid, _pidfd)) = service.adopted.take() else {
            return;
        };
        self.flush_relay(which, pid);
        self.exited(which, pid, ExitStatus::Unknown);
    }

    fn handle_control(&mut self, which: Which) {
        let Some(service) = self.service(which) else {
            return;
        };
        // All that waits, bounded: a byte written behind a flood (`x` behind a
        // thousand `R`) is seen in this turn, not a thousand turns later.
        let mut bytes = Vec::new();
        while bytes.len() < CONTROL_SHARE {
            let read = service.read_control();
            if read.is_empty() {
                break;
            }
            bytes.extend(read);
        }
        if service.exited {
            // Draining after `x`: nothing can bring it back.
            return;
        }
        // Reconfiguring re-reads and parses the definition, the one costly control:
        // however many `R` came, it is done once, after the other bytes.
        let mut reconfigure = false;
        for byte in bytes {
            if byte == RECONFIGURE && which == Which::Main {
                reconfigure = true;
            } else {
                self.event(which, Event::Control(byte));
            }
        }
        if reconfigure && !self.main.exited {
            self.reconfigure();
        }
    }

    /// `sv reconfigure`: the definition is read again here; what a change means for
    /// the service is the machine's (`Event::Reconfigure`). An unchanged or refused one
    /// may still change the reason shown.
    fn reconfigure(&mut self) {
        let before_after = self.main.definition.as_ref().map(|d| d.after.clone());
        match self.main.reconfigure() {
            Reconfigured::Unchanged | Reconfigured::Refused => self.main.write_files(),
            Reconfigured::Changed(settings) => {
                let after = self.main.definition.as_ref().map(|d| d.after.clone());
                let dependencies = (after != before_after).then(|| {
                    self.dependencies =
                        after.and_then(|after| DependencyWatch::new(&self.main.directory, &after));
                    self.dependencies_poll = None;
                    self.read_dependencies(false)
                        .unwrap_or(Dependencies::Satisfied)
                });
                self.event(
                    Which::Main,
                    Event::Reconfigure {
                        settings,
                        dependencies,
                    },
                );
            }
        }
    }

    fn handle_notification(&mut self) {
        let Some(fd) = &self.main.notification else {
            return;
        };
        let mut buffer = [0u8; 512];
        match nix::unistd::read(fd.as_raw_fd(), &mut buffer) {
            Ok(0) => self.main.notification = None,
            Ok(n) if buffer[..n].contains(&b'\n') => {
                self.main.notification = None;
                self.event(Which::Main, Event::Ready);
            }
            Ok(_) | Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
            Err(_) => self.main.notification = None,
        }
    }

    fn handle_timers(&mut self) {
        let now = self.origin.elapsed();
        if self.dependencies_poll.is_some_and(|due| due <= now) {
            self.dependencies_changed(false);
        }
        for tracked in [&mut self.main_group, &mut self.log_group]
            .into_iter()
            .flatten()
        {
            tracked.timer(now);
        }
        if self.rewrite.is_some_and(|due| due <= now) {
            self.rewrite = None;
            for which in [Which::Log, Which::Main] {
                if let Some(service) = self.service(which) {
                    service.write_files();
                }
            }
        }
        // Supervision goes on whatever the disk says; the files follow when they can.
        let failed =
            self.main.write_failed() || self.log.as_ref().is_some_and(|l| l.write_failed());
        if failed && self.rewrite.is_none() {
            self.rewrite = Some(now + REWRITE_INTERVAL);
        }
        for which in [Which::Log, Which::Main] {
            let due = self
                .service(which)
                .and_then(|s| s.machine.deadline())
                .is_some_and(|deadline| deadline <= now);
            if due {
                self.event(which, Event::Timer);
            }
        }
    }

    /// Performs actions in order; the results of spawns go back to the machine as
    /// events, and their actions join the queue. The files are written after.
    fn perform(&mut self, which: Which, actions: Vec<Action>) {
        let mut queue: VecDeque<Action> = actions.into();
        let mut signalled = false;
        while let Some(action) = queue.pop_front() {
            signalled |= matches!(action, Action::Signal { .. });
            let event = match action {
                Action::Spawn(process @ (Process::Run | Process::Finish)) => {
                    let actions = self.start_gated(which, process);
                    queue.extend(actions);
                    None
                }
                Action::Spawn(process) => Some(self.spawn(which, process)),
                Action::Signal {
                    target,
                    signal,
                    custom,
                } => {
                    let handled = custom.is_some_and(|c| {
                        which == Which::Main && self.control_script(c) == Some(true)
                    });
                    if !handled {
                        self.send(which, target, signal);
                    }
                    None
                }
                Action::ControlScript(c) => {
                    if which == Which::Main {
                        self.control_script(c);
                    }
                    None
                }
                Action::CloseNotification => {
                    self.main.notification = None;
                    None
                }
                Action::Exit => {
                    if let Some(service) = self.service(which) {
                        service.exited = true;
                    }
                    None
                }
            };
            if let Some(event) = event {
                let now = self.now();
                if let Some(service) = self.service(which) {
                    queue.extend(service.machine.on(now, event));
                }
            }
        }
        if signalled {
            // The signal is out; the files can wait for one turn of the scheduler. When
            // svdir stops a tree, every runsv wakes at once: each one that writes its
            // files (a new inode each, slow on a busy ext4) before the others have
            // signalled their services delays them all. Measured on 2 cores, 1000
            // services: the last service got its signal ~900 ms after the first
            // without this, ~70 ms with it. Nothing else changes: the same files, in
            // the same order, written before runsv waits again.
            std::thread::yield_now();
        }
        if let Some(service) = self.service(which) {
            service.write_files();
        }
        if which == Which::Main && self.main.exited && !self.draining {
            self.draining = true;
            self.drain_log();
        }
    }

    /// The main service is down for good: the logger gets its end of file after the
    /// last line (see pump_tee), and ends by itself.
    fn drain_log(&mut self) {
        if let Some(Output::Tee(tee)) = &mut self.output {
            tee.close_service_end();
        }
        self.pump_tee();
        if self.log.is_some() {
            self.event(Which::Log, Event::Drain);
        }
    }

    /// Moves the service's output on to the logger. Once the service's pipe is closed
    /// and empty, runsv's end of the logger's pipe is closed too — and the keeper's,
    /// which holds one — so the logger reads its end of file.
    fn pump_tee(&mut self) {
        let Some(Output::Tee(tee)) = &mut self.output else {
            return;
        };
        tee.pump();
        if self.draining && matches!(tee.wait(), Wait::Done) {
            tee.close_logger_end();
            if let Some(keeper) = self.keeper.take() {
                keeper.stop();
            }
        }
    }

    /// Prints what went wrong passing the output on (the tail could not be written, a
    /// pipe operation failed), once.
    fn warn_output(&mut self) {
        let warning = match &mut self.output {
            Some(Output::Relay(relay)) => relay.warning.take(),
            Some(Output::Tee(tee)) => tee.warning.take(),
            _ => None,
        };
        if let Some(warning) = warning {
            eprintln!("runsv {}: warning: {warning}", self.main.label);
        }
    }

    fn send(&mut self, which: Which, target: Target, signal: Signal) {
        let Some(service) = self.service(which) else {
            return;
        };
        let (process, group) = match target {
            Target::Process(p) => (p, false),
            Target::Group(p) => (p, true),
        };
        let Some(pid) = service.machine.pid_of(process) else {
            return;
        };
        // With a group, a stop or kill of run or finish reaches all the service's
        // processes; run itself may already be reaped, its exit held (tracking.rs).
        if let Some(tracked) = self.group(which) {
            if group && process != Process::Test {
                tracked.group.signal(signal);
                return;
            }
            if tracked.pending.is_some_and(|(held, _)| held == pid) {
                return;
            }
        }
        let Some(service) = self.service(which) else {
            return;
        };
        // An adopted process is no child of runsv's: once ended, whoever reaped it
        // freed its pid. It is signalled only while its pidfd proves it alive.
        if let Some((_, pidfd)) = service.adopted.as_ref().filter(|(p, _)| *p == pid) {
            if adoption::wait_ended(pidfd, Duration::ZERO) {
                return;
            }
        }
        let pid = Pid::from_raw(pid as i32);
        // Every process runsv starts leads its own group, so pgid = pid; a process
        // that left its group is still reached directly.
        if !group || killpg(pid, signal).is_err() {
            let _ = kill(pid, signal);
        }
    }

    fn spawn(&mut self, which: Which, process: Process) -> Event {
        let launched = self
            .prepare(which, process)
            .and_then(|(launch, notification)| {
                let pid = launch.spawn()?;
                self.keep_notification(which, notification);
                Ok(pid.as_raw() as u32)
            });
        match launched {
            Ok(pid) => Event::Spawned {
                process,
                pid,
                starttime: start_time(pid).unwrap_or(0),
            },
            Err(reason) => Event::SpawnFailed { process, reason },
        }
    }

    /// Starts `run` (or `finish`) and publishes its pid (runit's files, and `state`:
    /// `starting` for a run) before its exec (the child waits for that), then waits
    /// for the exec: a restart is seen as soon as runit's runsv would show it, the
    /// full state says `running` only once exec succeeded, and a runsv killed at any
    /// point leaves a record of every process it started (a `finish` unrecorded would
    /// run on beside the next runsv's `run`). Returns the machine's actions.
    fn start_gated(&mut self, which: Which, process: Process) -> Vec<Action> {
        // Every state change is written: the exit that led to this restart is
        // published (in `state`, which holds it all) before the new process replaces
        // it; runit's files go from the old pid to the new one, as in runit.
        if let Some(service) = self.service(which) {
            if process == Process::Run && service.published_a_process() {
                service.write_state_file();
            }
        }
        let prepared = self.prepare(which, process);
        let started = prepared.and_then(|(launch, notification)| {
            let started = launch.start()?;
            self.keep_notification(which, notification);
            Ok(started)
        });
        let now = self.now();
        let Some(service) = self.service(which) else {
            return Vec::new();
        };
        let mut started = match started {
            Ok(started) => started,
            Err(reason) => {
                let event = Event::SpawnFailed { process, reason };
                return service.machine.on(now, event);
            }
        };
        let pid = started.pid().as_raw() as u32;
        // Fixed at the fork: the child's exec does not change it.
        let starttime = start_time(pid).unwrap_or(0);
        let spawned = Event::Spawned {
            process,
            pid,
            starttime,
        };
        let actions = service.machine.on(now, spawned);
        service.publish_unconfirmed();
        // The child waited for this (see Launch::start); it may exec now.
        started.release();
        match started.confirm() {
            Ok(()) => actions,
            Err(reason) => {
                // What followed from the spawn (a readiness test) is void.
                if process == Process::Run {
                    service.notification = None;
                }
                let failed = Event::ExecFailed {
                    process,
                    pid,
                    reason,
                };
                service.machine.on(now, failed)
            }
        }
    }

    fn keep_notification(&mut self, which: Which, notification: Option<(OwnedFd, OwnedFd)>) {
        if let (Some((read, _write)), Some(service)) = (notification, self.service(which)) {
            // Our copy of the write end closes here, so EOF means the service closed it.
            service.notification = Some(read);
        }
    }

    /// Builds run, finish or the readiness test of a service, and the readiness pipe
    /// (read, write) it needs.
    #[allow(clippy::type_complexity)]
    fn prepare(
        &mut self,
        which: Which,
        process: Process,
    ) -> Result<(Launch, Option<(OwnedFd, OwnedFd)>), String> {
        let null = self.null.as_raw_fd();
        let (stdin, stdout, stderr) = self.stdio(which);
        let (service, mut tracked) = match which {
            Which::Main => (&mut self.main, self.main_group.as_mut()),
            Which::Log => (
                self.log.as_mut().ok_or("no log service")?,
                self.log_group.as_mut(),
            ),
        };
        let definition = service.definition.as_ref().ok_or("invalid definition")?;
        if process == Process::Run {
            match tracked.as_deref_mut() {
                Some(tracked) => tracked.prepare_run(&definition.limits)?,
                None if !definition.limits.is_empty() => {
                    return Err(format!(
                        "{}: limits need a writable cgroup v2 hierarchy, and this tree \
                         tracks its services by process group",
                        definition.limits.keys()
                    ))
                }
                None => {}
            }
        }
        let procs = tracked.map(|t| t.procs_fd());
        let environment = service.environment();
        let directory = &definition.working_directory;
        let mut notification = None;
        let launch = match process {
            Process::Run => {
                let launch = Launch::new(&definition.command, environment, directory)?
                    .credentials(definition.credentials.clone())
                    .stdio(stdin, stdout, stderr)
                    .cgroup(procs);
                if let Readiness::NotificationFd(number) = definition.readiness {
                    let (read, write) = nix::unistd::pipe2(
                        nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK,
                    )
                    .map_err(|e| format!("unable to create the readiness pipe: {e}"))?;
                    let launch = launch.extra_fd(write.as_raw_fd(), number);
                    notification = Some((read, write));
                    launch
                } else {
                    launch
                }
            }
            Process::Finish => {
                let finish = definition.finish.as_ref().ok_or("no finish")?;
                let (code, signal) = service
                    .machine
                    .full_state()
                    .last_exit
                    .map(ExitStatus::finish_arguments)
                    .unwrap_or((-1, 0));
                let command = [
                    finish.display().to_string(),
                    code.to_string(),
                    signal.to_string(),
                ];
                Launch::new(&command, environment, &definition.directory)?
                    .credentials(definition.credentials.clone())
                    .stdio(stdin, stdout, stderr)
                    .cgroup(procs)
            }
            Process::Test => {
                let Readiness::Test { command, .. } = &definition.readiness else {
                    return Err("no readiness test".into());
                };
                Launch::new(command, environment, directory)?
                    .credentials(definition.credentials.clone())
                    .stdio(Stdio::Fd(null), Stdio::Fd(null), Stdio::Fd(null))
                    .cgroup(procs)
            }
        };
        Ok((launch, notification))
    }

    /// stdin, stdout and stderr of a service's run and finish.
    fn stdio(&self, which: Which) -> (Stdio, Stdio, Stdio) {
        let null = Stdio::Fd(self.null.as_raw_fd());
        if which == Which::Log {
            let input = match &self.output {
                Some(Output::Tee(tee)) => Stdio::Fd(tee.logger_read.as_raw_fd()),
                _ => null,
            };
            return (input, Stdio::Inherit, Stdio::Inherit);
        }
        let yaml = self
            .main
            .definition
            .as_ref()
            .is_some_and(|d| matches!(d.form, runsv::definition::Form::Yaml(_)));
        let out = match &self.output {
            Some(Output::Tee(tee)) => match &tee.service_write {
                Some(write) => Stdio::Fd(write.as_raw_fd()),
                None => null,
            },
            Some(Output::Relay(relay)) => Stdio::Fd(relay.write_fd(Stream::Stdout)),
            Some(Output::Null) => null,
            Some(Output::Inherit) | None => Stdio::Inherit,
        };
        // runit gives only stdout to the log; a YAML service's stderr goes along, to
        // the relay's stderr pipe when it relays (its lines stay apart).
        let err = match &self.output {
            Some(Output::Relay(relay)) if yaml => Stdio::Fd(relay.write_fd(Stream::Stderr)),
            _ if yaml => out,
            _ => Stdio::Inherit,
        };
        (null, out, err)
    }

    /// Runs `control/<c>` if it is executable; `Some(true)` if it exited 0. It runs to
    /// completion (bounded by a timeout), like runit, with stdout to the log.
    fn control_script(&mut self, c: u8) -> Option<bool> {
        use std::os::unix::fs::PermissionsExt;
        let relative = format!("control/{}", c as char);
        // Relative to runsv's working directory, the service directory.
        let path = PathBuf::from(&relative);
        let mode = std::fs::metadata(&path).ok()?.permissions().mode();
        if mode & 0o100 == 0 {
            return None;
        }
        let (stdin, stdout, _) = self.stdio(Which::Main);
        let launch = Launch::new(
            &[format!("./{relative}")],
            self.main.environment(),
            Path::new("."),
        )
        .ok()?
        .stdio(stdin, stdout, Stdio::Inherit);
        let pid = launch.spawn().ok()?;
        let status = wait_child(pid, CONTROL_SCRIPT_TIMEOUT);
        Some(status == Some(ExitStatus::Exited(0)))
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

/// Waits until a process (not necessarily our child) is gone; whether it went in time.
fn wait_gone(pid: u32, timeout: Duration) -> bool {
    let Some(pidfd) = adoption::pidfd_open(pid) else {
        return true; // already gone
    };
    let millis = timeout.as_millis().min(i32::MAX as u128) as i32;
    let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
    matches!(poll(&mut fds, PollTimeout::try_from(millis).unwrap_or(PollTimeout::MAX)), Ok(n) if n > 0)
}

/// Waits for our child `pid` up to `timeout`, then kills its group; reaps it.
fn wait_child(pid: Pid, timeout: Duration) -> Option<ExitStatus> {
    if !wait_gone(pid.as_raw() as u32, timeout) {
        let _ = killpg(pid, Signal::SIGKILL);
    }
    match waitpid(pid, None) {
        Ok(WaitStatus::Exited(_, code)) => Some(ExitStatus::Exited(code)),
        Ok(WaitStatus::Signaled(_, signal, _)) => Some(ExitStatus::Signaled(signal as i32)),
        _ => None,
    }
}
