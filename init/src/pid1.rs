//! PID 1's event loop: one poll on a signalfd, with a timeout only while a timer is
//! armed (svdir's restart delay, a shutdown deadline). An idle init sleeps in poll(2)
//! with no timeout and makes no wake-ups.

use crate::config::{self, Config};
use crate::environment;
use crate::log::log;
use crate::main_program;
use crate::setup;
use crate::shutdown::{Effect, Shutdown, SvdirOutcome, KILL_WAIT};
use crate::signals::{self, Action, IgnoredOnce, Response};
use crate::svdir::{self, Backoff};
use crate::Mode;
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::reboot::{reboot, RebootMode};
use nix::sys::signal::{kill, Signal};
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

enum SvdirState {
    Running {
        pid: Pid,
        since: Instant,
    },
    /// Dead or never started; start it at `until`.
    Waiting {
        until: Instant,
    },
    /// Not to be started again (shutting down).
    Off,
}

struct Init {
    mode: Mode,
    /// PID 1 of the initial PID namespace (reboot(2) answered): its filesystems are
    /// the machine's own, to unmount at the end. Never true in a test's namespace.
    real_machine: bool,
    config: Config,
    sigfd: SignalFd,
    svdir: SvdirState,
    backoff: Backoff,
    shutdown: Option<Shutdown>,
    ignored: IgnoredOnce,
    main: Main,
}

/// The main program (`-- CMD`, main_program.rs).
enum Main {
    None,
    NotStarted(Vec<String>),
    Running(Pid),
    /// Exited before any stop began: its code becomes init's exit status.
    Exited(i32),
    /// Ended by a stop that began without it (`init 0`): the tree's status stands.
    Ended,
}

pub fn run(forced: Option<Mode>, ignored_args: Vec<String>, main: Vec<String>) -> ! {
    let blocked = signals::block();
    // Made in both modes: on a machine it is wanted, elsewhere its answer tells the mode.
    let cad = setup::disable_cad();
    let env_mode = std::env::var("RUNTREE_MODE").ok();
    let container_env = std::env::var_os("container").is_some_and(|v| !v.is_empty());
    let (mode, reason, mode_warning) = setup::decide_mode(
        forced,
        env_mode.as_deref(),
        container_env,
        setup::container_file(),
        cad,
    );

    // On a machine fds 0–2 may be closed until the console is opened, and the first
    // file opened would land on one of them: nothing opens a file before that point.
    let mut early = Vec::new();
    if mode == Mode::Machine {
        // In a container the runtime owns the session and the terminal, and Ctrl-C
        // from `docker run -it` must keep reaching init; only a machine's init needs a
        // session of its own.
        if let Err(e) = nix::unistd::setsid() {
            early.push(format!("setsid: {}", e.desc()));
        }
        early.extend(setup::mount_api_filesystems());
        early.push(setup::allow_devkmsg());
        if let Err(e) = setup::open_console() {
            early.push(format!("cannot open /dev/console: {}", e.desc()));
        }
    }
    crate::log::append_to_files();
    log!(
        "runtree init {} as PID 1 in {} mode ({reason})",
        env!("CARGO_PKG_VERSION"),
        mode.word()
    );
    if let Some(warning) = mode_warning {
        log!("{warning}");
    }
    if let Err(e) = blocked {
        log!("cannot block signals: {}", e.desc());
    }
    if mode == Mode::Machine {
        if let Err(e) = cad {
            log!(
                "reboot(RB_DISABLE_CAD): {}: Ctrl-Alt-Del reboots at once",
                e.desc()
            );
        }
    }
    for message in early {
        log!("{message}");
    }
    if !ignored_args.is_empty() {
        log!("ignoring arguments: {}", ignored_args.join(" "));
    }
    // Before svdir starts: it finds the tree from the group it starts in.
    if let Some(message) = setup::enter_cgroup_leaf(mode) {
        log!("{message}");
    }

    let cmdline = match mode {
        Mode::Machine => match std::fs::read_to_string("/proc/cmdline") {
            Ok(text) => Some(text),
            Err(e) => {
                log!("cannot read /proc/cmdline: {e}");
                None
            }
        },
        Mode::Container => None,
    };
    let (config, warnings) = config::resolve(mode, cmdline.as_deref(), |k| std::env::var(k).ok());
    for warning in warnings {
        log!("{warning}");
    }
    save_environment();
    crate::stopping::clear();

    let sigfd = open_signalfd();
    let mut init = Init {
        mode,
        real_machine: mode == Mode::Machine && cad.is_ok(),
        config,
        sigfd,
        svdir: SvdirState::Waiting {
            until: Instant::now(),
        },
        backoff: svdir::backoff(),
        shutdown: None,
        ignored: IgnoredOnce::default(),
        main: if main.is_empty() {
            Main::None
        } else {
            Main::NotStarted(main)
        },
    };
    init.run()
}

/// The environment init started with, for services that ask for it (environment.rs).
/// A failure (a read-only /run) is reported: only those services miss it.
fn save_environment() {
    let dir = environment::dir();
    let variables: Vec<_> = std::env::vars_os().collect();
    match environment::save(&dir, &variables) {
        Ok((_, left_out)) if !left_out.is_empty() => log!(
            "environment saved in {}, except {} (not a file name)",
            dir.display(),
            left_out.join(", ")
        ),
        Ok(_) => {}
        Err(e) => log!(
            "cannot save the environment in {}: {e}: services asking for it get none",
            dir.display()
        ),
    }
}

/// Without a signalfd PID 1 could neither reap nor stop; it retries instead of
/// exiting (which would panic the kernel). Only EMFILE/ENOMEM make it fail at all.
fn open_signalfd() -> SignalFd {
    loop {
        match signals::open_fd() {
            Ok(fd) => return fd,
            Err(e) => {
                log!("cannot open a signalfd: {}; retrying in 1s", e.desc());
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }
}

fn seconds(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

impl Init {
    fn run(&mut self) -> ! {
        loop {
            self.wait();
            let signals = self.read_signals();
            let no_children = self.reap();
            for signo in signals {
                self.on_signal(signo);
            }
            self.run_timers();
            self.drive_shutdown(no_children);
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let svdir = match self.svdir {
            SvdirState::Waiting { until } => Some(until),
            _ => None,
        };
        let shutdown = self.shutdown.as_ref().and_then(Shutdown::deadline);
        match (svdir, shutdown) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn wait(&self) {
        let timeout = match self.next_deadline() {
            None => PollTimeout::NONE,
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                // Rounded up: waking a little early would only spin until the deadline.
                let millis = left.as_nanos().div_ceil(1_000_000);
                PollTimeout::try_from(millis).unwrap_or(PollTimeout::MAX)
            }
        };
        let mut fds = [PollFd::new(self.sigfd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => {
                // Not expected for one valid fd; pause so that a persistent error
                // cannot turn PID 1 into a busy loop.
                log!("poll: {}", e.desc());
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    fn read_signals(&mut self) -> Vec<i32> {
        let mut signals = Vec::new();
        loop {
            match self.sigfd.read_signal() {
                Ok(Some(info)) => signals.push(info.ssi_signo as i32),
                Ok(None) => break,
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    log!("reading the signalfd: {}", e.desc());
                    break;
                }
            }
        }
        signals
    }

    /// Reaps everything that has exited. Returns true when init has no child left.
    fn reap(&mut self) -> bool {
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => return false,
                Ok(status) => {
                    if let Some(pid) = status.pid() {
                        if matches!(self.svdir, SvdirState::Running { pid: p, .. } if p == pid) {
                            self.on_svdir_exit(status);
                        }
                        if matches!(self.main, Main::Running(p) if p == pid) {
                            if let Some(code) = main_program::code(status) {
                                self.main_exited(code);
                            }
                        }
                    }
                }
                Err(Errno::ECHILD) => return true,
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    log!("waitpid: {}", e.desc());
                    return false;
                }
            }
        }
    }

    fn on_signal(&mut self, signo: i32) {
        if let Main::Running(pid) = self.main {
            if main_program::forwarded(signo) {
                main_program::forward(pid, signo);
                return;
            }
        }
        match signals::response(signo, self.mode) {
            Response::Reap => {}
            Response::Ignore => {
                if self.ignored.first(signo) {
                    log!(
                        "ignoring {} (reported once per signal)",
                        signals::name(signo)
                    );
                }
            }
            Response::Shutdown(action) => self.request(action, signo),
        }
    }

    fn request(&mut self, action: Action, signo: i32) {
        self.request_for(action, &signals::name(signo));
    }

    /// The main program's end stops the tree (poweroff, in either mode).
    fn main_exited(&mut self, code: i32) {
        if self.shutdown.is_some() {
            log!("the main program exited {code}");
            self.main = Main::Ended;
            return;
        }
        self.main = Main::Exited(code);
        self.request_for(Action::Poweroff, &format!("the main program exited {code}"));
    }

    /// Starts the main program once, after svdir's first start (attempt).
    fn start_main(&mut self) {
        let Main::NotStarted(argv) = &self.main else {
            return;
        };
        match main_program::spawn(argv) {
            Ok(pid) => {
                log!("started the main program {} (pid {pid})", argv.join(" "));
                self.main = Main::Running(pid);
            }
            Err(e) => {
                log!("cannot start the main program {}: {e}", argv.join(" "));
                // A shell's code for a command that cannot be run.
                self.main_exited(127);
            }
        }
    }

    fn request_for(&mut self, action: Action, name: &str) {
        if let Some(shutdown) = &mut self.shutdown {
            if shutdown.action == action {
                log!("{name}: already stopping for {}", action.word());
            } else {
                log!(
                    "{name}: will {} instead of {} once everything is stopped",
                    action.word(),
                    shutdown.action.word()
                );
                shutdown.set_action(action);
            }
            return;
        }
        match self.mode {
            Mode::Machine => log!("{name}: {}", action.word()),
            Mode::Container => log!(
                "{name}: {} requested: stopping the container",
                action.word()
            ),
        }
        let svdir_running = matches!(self.svdir, SvdirState::Running { .. });
        if !svdir_running {
            log!("svdir is not running: no ordered stop of services");
        }
        let (shutdown, effects) = Shutdown::begin(
            action,
            svdir_running,
            Instant::now(),
            self.config.shutdown_timeout,
            self.config.kill_grace,
        );
        if !svdir_running {
            self.svdir = SvdirState::Off;
        }
        let mut shutdown = shutdown;
        if self.real_machine {
            shutdown.unmount_at_the_end();
        }
        self.shutdown = Some(shutdown);
        for effect in effects {
            self.apply(effect);
        }
    }

    fn on_svdir_exit(&mut self, status: WaitStatus) {
        let now = Instant::now();
        let ran_for = match self.svdir {
            SvdirState::Running { since, .. } => now.saturating_duration_since(since),
            _ => Duration::ZERO,
        };
        if let Some(shutdown) = &mut self.shutdown {
            self.svdir = SvdirState::Off;
            shutdown.svdir_exited(status);
            match shutdown.svdir_outcome() {
                SvdirOutcome::Clean => log!("svdir stopped every service cleanly"),
                SvdirOutcome::Failed(how) => {
                    log!("svdir {how}: a service ended in error or had to be killed")
                }
                // SIGKILLed at the deadline, already reported.
                _ => {}
            }
            return;
        }
        let delay = self.backoff.after_exit(ran_for);
        log!(
            "svdir {} after {}; restarting it in {}",
            describe(status),
            seconds(ran_for),
            seconds(delay)
        );
        self.svdir = SvdirState::Waiting { until: now + delay };
    }

    fn run_timers(&mut self) {
        if let SvdirState::Waiting { until } = self.svdir {
            if self.shutdown.is_none() && Instant::now() >= until {
                self.start_svdir();
                self.start_main();
            }
        }
    }

    fn start_svdir(&mut self) {
        let binary = svdir::binary(
            std::env::var_os("RUNTREE_SVDIR").map(PathBuf::from),
            std::env::current_exe().ok(),
        );
        let now = Instant::now();
        match svdir::spawn(
            &binary,
            &self.config.scandir,
            self.config.shutdown_timeout,
            self.mode,
        ) {
            Ok(pid) => {
                log!(
                    "started {} {} (pid {pid})",
                    binary.display(),
                    self.config.scandir.display()
                );
                self.svdir = SvdirState::Running { pid, since: now };
            }
            Err(e) => {
                let delay = self.backoff.after_exit(Duration::ZERO);
                log!(
                    "cannot start {}: {e}; retrying in {}",
                    binary.display(),
                    seconds(delay)
                );
                self.svdir = SvdirState::Waiting { until: now + delay };
            }
        }
    }

    fn drive_shutdown(&mut self, mut no_children: bool) {
        loop {
            let Some(shutdown) = &mut self.shutdown else {
                return;
            };
            let effects = shutdown.tick(Instant::now(), no_children);
            if effects.is_empty() {
                return;
            }
            for effect in effects {
                self.apply(effect);
            }
            // The effects may have ended processes or left none to wait for.
            no_children = self.reap();
        }
    }

    fn svdir_pid(&self) -> Option<Pid> {
        match self.svdir {
            SvdirState::Running { pid, .. } => Some(pid),
            _ => None,
        }
    }

    fn apply(&mut self, effect: Effect) {
        let deadline = seconds(self.config.shutdown_timeout);
        match effect {
            Effect::TermSvdir => {
                if let Some(shutdown) = &self.shutdown {
                    crate::stopping::announce(shutdown.action);
                }
                if let Some(pid) = self.svdir_pid() {
                    log!("stopping services: SIGTERM to svdir (pid {pid}), deadline {deadline}");
                    signal(pid, Signal::SIGTERM);
                    // A stopped svdir would never see the TERM.
                    signal(pid, Signal::SIGCONT);
                }
            }
            Effect::KillSvdir => {
                if let Some(pid) = self.svdir_pid() {
                    log!("svdir did not stop within {deadline}: SIGKILL to svdir (pid {pid})");
                    signal(pid, Signal::SIGKILL);
                }
                self.svdir = SvdirState::Off;
            }
            Effect::TermAll => {
                log!(
                    "sending TERM to all processes (grace {})",
                    seconds(self.config.kill_grace)
                );
                signal_all(Signal::SIGTERM);
                signal_all(Signal::SIGCONT);
            }
            Effect::KillAll => {
                log!("sending KILL to all processes (some outlived the grace)");
                signal_all(Signal::SIGKILL);
            }
            Effect::GaveUpWaiting => log!(
                "some processes outlived SIGKILL for {}; going on",
                seconds(KILL_WAIT)
            ),
            Effect::Unmount => {
                log!("unmounting filesystems");
                // Written back while every mount is still there: the unmounts then
                // have little left to flush.
                nix::unistd::sync();
                for line in crate::unmount::run() {
                    log!("{line}");
                }
            }
            Effect::Finish => self.finish(),
        }
    }

    fn finish(&mut self) -> ! {
        let (action, mut code) = match &self.shutdown {
            Some(s) => (s.action, s.exit_code()),
            None => (Action::Poweroff, 0),
        };
        // The container's program decides, as with tini and s6-overlay; the tree's
        // own stop status is in the log above.
        if let Main::Exited(main) = self.main {
            code = main;
        }
        if !matches!(self.main, Main::None) {
            main_program::record(code);
        }
        log!("all processes are gone; syncing disks");
        nix::unistd::sync();
        if self.mode == Mode::Machine {
            let (how, doing) = match action {
                Action::Poweroff => (RebootMode::RB_POWER_OFF, "powering off"),
                Action::Reboot => (RebootMode::RB_AUTOBOOT, "rebooting"),
                Action::Halt => (RebootMode::RB_HALT_SYSTEM, "halting"),
            };
            log!("{doing}");
            // Returns only on failure (inside a namespace the kernel ends PID 1 itself).
            if let Some(e) = reboot(how).err() {
                log!("reboot(2): {}", e.desc());
            }
        }
        log!("exiting with status {code} ({} requested)", action.word());
        std::process::exit(code)
    }
}

fn describe(status: WaitStatus) -> String {
    match status {
        WaitStatus::Exited(_, code) => format!("exited {code}"),
        WaitStatus::Signaled(_, signal, _) => format!("was killed by {}", signal.as_str()),
        other => format!("ended ({other:?})"),
    }
}

fn signal(pid: Pid, signal: Signal) {
    if let Err(e) = kill(pid, signal) {
        log!("kill({pid}, {}): {}", signal.as_str(), e.desc());
    }
}

/// kill(-1, sig): every process but init itself. Only as PID 1: from any other process
/// it would hit everything the caller may signal, which for root is the whole machine.
fn signal_all(signal: Signal) {
    if nix::unistd::getpid().as_raw() != 1 {
        log!("refusing kill(-1, {}): not PID 1", signal.as_str());
        return;
    }
    match kill(Pid::from_raw(-1), signal) {
        Ok(()) | Err(Errno::ESRCH) => {}
        Err(e) => log!("kill(-1, {}): {}", signal.as_str(), e.desc()),
    }
}
