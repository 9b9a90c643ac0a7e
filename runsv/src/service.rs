//! One supervised service directory inside runsv (the main service, or its `log/`):
//! its definition, its state machine, and its `supervise/` directory — the lock held
//! for runsv's life, the two FIFOs, and the status files rewritten on every change.

use crate::machine::{Machine, Now, Settings};
use crate::setup;
use runsv::boot_times::{self, Times};
use runsv::definition::{Environment, ServiceDefinition};
use runsv::errno_text;
use runsv::failure::OnFailure;
use runsv::reader::Links;
use runsv::supervise::{FullState, ServiceState, SuperviseDir, Want};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

mod leftover;
mod loading;

use leftover::left_running;
pub use leftover::Leftover;
pub use loading::has_log_service;
use loading::{relocate, settings_of};

pub struct Service {
    /// For messages: `/service/web` or `/service/web/log`.
    pub label: String,
    pub directory: PathBuf,
    pub definition: Option<ServiceDefinition>,
    pub machine: Machine,
    pub supervise: SuperviseDir,
    pub control: File,
    _ok: File,
    _lock: File,
    written: Written,
    /// The read end of the readiness pipe while the service may still notify.
    pub notification: Option<OwnedFd>,
    /// The machine asked to exit.
    pub exited: bool,
    /// What a killed predecessor left running; read under the lock, before this
    /// runsv overwrites supervise/state.
    pub left_running: Option<Leftover>,
    /// A process adopted from a killed predecessor (not runsv's child): its pid and a
    /// pidfd, readable once it has ended.
    pub adopted: Option<(u32, OwnedFd)>,
    /// Why the last `sv reconfigure` was refused (the old definition stays in force);
    /// shown in the state file's reason while nothing else has one.
    pub reconfigure_error: Option<String>,
    /// What supervise/times says (runsv::boot_times): spawn, exec, ready of this run.
    times: Times,
    /// The service directory relative to runsv's (`""`, or `log`).
    own: PathBuf,
    /// What a failure of the service does to the tree (runsv::failure).
    on_failure: OnFailure,
    /// The last failure acted on, by state and since: each is acted on once.
    failure_seen: Option<(ServiceState, runsv::tai64n::Timestamp)>,
    /// The service's cgroup, named in `state` for sv (None: process-group mode).
    pub cgroup: Option<PathBuf>,
    /// In process-group mode, the weights (cpu_weight, io_weight) that cannot apply
    /// were reported: once per runsv, not at each start.
    pub weights_warned: bool,
}

/// What `sv reconfigure` found.
#[derive(Debug, PartialEq, Eq)]
pub enum Reconfigured {
    Unchanged,
    /// The new definition is invalid: the old one stays.
    Refused,
    /// The new definition is in force, with these settings for the machine (which
    /// restarts the service with them: `Event::Reconfigure`).
    Changed(Settings),
}

/// What was last written, so that only changes are written.
#[derive(Default)]
struct Written {
    pid: Option<u32>,
    stat: Option<String>,
    state: Option<String>,
    status: Option<[u8; 20]>,
    /// The last write failed (and that was said once, on stderr).
    failed: bool,
}

/// A failed write: the file in supervise/ and why.
type WriteResult = Result<(), (&'static str, io::Error)>;

/// Replaces supervise/`name` (at `path`) with `contents` unless `last` says it already
/// holds `value`; `value` is recorded only once written, so a failed write is retried.
fn replace<T: PartialEq + Clone>(
    path: &Path,
    name: &'static str,
    value: &T,
    contents: &[u8],
    last: &mut Option<T>,
) -> WriteResult {
    if last.as_ref() == Some(value) {
        return Ok(());
    }
    runsv::supervise::replace_file(path, contents, 0o644).map_err(|e| (name, e))?;
    *last = Some(value.clone());
    Ok(())
}

/// How often files that could not be written are tried again.
pub const REWRITE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

impl Service {
    /// kill_mode: process: a stop reaches run (or finish) alone, and its exit is the
    /// service's end, whatever it started still running.
    pub fn kills_main_only(&self) -> bool {
        self.definition
            .as_ref()
            .is_some_and(|d| d.kill_mode == runsv::definition::KillMode::Process)
    }

    /// Loads the definition (an invalid one still gives a service, in `error` with the
    /// reason, so that sv shows why) and takes over `supervise/`, reached through
    /// `here`: the main service's directory as runsv reaches it (`""`, its working
    /// directory, in runsv; the directory itself in tests).
    pub fn open(directory: &Path, here: &Path, is_log: bool, now: Now) -> Result<Service, String> {
        let label = directory.display().to_string();
        let (definition, invalid) = match ServiceDefinition::load(directory) {
            Ok(mut definition) => {
                relocate(&mut definition, directory, is_log);
                setup::add_svdir(&mut definition);
                (Some(definition), None)
            }
            Err(error) => {
                eprintln!("runsv {label}: warning: {error}");
                (None, Some(error.to_string()))
            }
        };
        // Only its presence counts (runit stats it): never opened, so nothing there waits.
        let normally_down = matches!(
            runsv::reader::kind_at(None, &directory.join("down"), Links::Follow),
            Ok(Some(_))
        );
        let settings = settings_of(definition.as_ref(), is_log, invalid);
        // Through the working directory (runsv is inside the service directory), as
        // runit does: the files stay reachable when the entry is renamed or removed
        // while runsv runs on (a removed entry is stopped: its final state is written).
        let own = if is_log {
            here.join("log")
        } else {
            here.to_path_buf()
        };
        let on_failure = OnFailure::or_tree_default(definition.as_ref().and_then(|d| d.on_failure));
        let supervise = setup::supervise_dir(&own, &label, on_failure)?;
        // O_NOFOLLOW: a link planted at supervise/lock must not make runsv create or
        // open a file elsewhere; O_NONBLOCK: nor a FIFO there make it wait forever.
        let lock = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
            .open(supervise.lock())
            .map_err(|e| unable_to_open(&supervise.lock(), directory, &e))?;
        fs2::FileExt::try_lock_exclusive(&lock).map_err(|e| {
            let mut message = format!(
                "unable to lock {}: {}",
                relative(&supervise.lock(), directory),
                errno_text::describe(&e)
            );
            // A `supervise` link into another service's supervise/ is the likely cause,
            // and what a person needs to see to fix it.
            if let Ok(target) = fs::read_link(&supervise.path) {
                message.push_str(&format!(
                    " (supervise is a link to {}, which another runsv supervises)",
                    target.display()
                ));
            }
            message
        })?;
        let control = runsv::control::open_fifo(&supervise.control(), true)
            .map_err(|e| unable_to_open(&supervise.control(), directory, &e))?;
        let left_running = left_running(&supervise);
        let want = if normally_down { Want::Down } else { Want::Up };
        let machine = Machine::new(settings, want, now);
        let service = Service {
            label,
            directory: directory.to_path_buf(),
            definition,
            machine,
            supervise,
            control,
            _ok: File::open("/dev/null").map_err(|e| e.to_string())?,
            _lock: lock,
            written: Written::default(),
            notification: None,
            exited: false,
            left_running,
            adopted: None,
            reconfigure_error: None,
            times: Times::default(),
            own,
            on_failure,
            failure_seen: None,
            cgroup: None,
            weights_warned: false,
        };
        // `ok` is made now (a failure is fatal, as in runit) but opened only once the
        // first state is written (see `announce`), so that a client that finds runsv
        // alive always finds a status to read, and the files are written once at start.
        if let Err(errno) = nix::unistd::mkfifo(
            &service.supervise.ok(),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        ) {
            if errno != nix::errno::Errno::EEXIST {
                return Err(format!(
                    "unable to mkfifo {}: {}",
                    relative(&service.supervise.ok(), directory),
                    errno_text::describe(&io::Error::from(errno))
                ));
            }
            // Already there: it must be a FIFO, not a link to somewhere else. A regular
            // file (left by a copy, or planted) is replaced, as runit runs the service
            // whatever `ok` is: under the lock, supervise/ is this runsv's.
            let ok = service.supervise.ok();
            if fs::symlink_metadata(&ok).is_ok_and(|meta| meta.file_type().is_file()) {
                fs::remove_file(&ok)
                    .and_then(|()| {
                        nix::unistd::mkfifo(&ok, nix::sys::stat::Mode::from_bits_truncate(0o600))
                            .map_err(io::Error::from)
                    })
                    .map_err(|e| unable_to_open(&ok, directory, &e))?;
            }
            fs::symlink_metadata(&ok)
                .and_then(|meta| must_be_fifo(&meta))
                .map_err(|e| unable_to_open(&ok, directory, &e))?;
        }
        Ok(service)
    }

    /// Opens `supervise/ok` for reading, which tells clients that runsv is running (they
    /// probe it with a non-blocking open for writing). Called after the first state is
    /// written. A failure is reported, not fatal: the service is already supervised.
    pub fn announce(&mut self) {
        match runsv::control::open_fifo(&self.supervise.ok(), false) {
            Ok(ok) => self._ok = ok,
            Err(error) => eprintln!(
                "runsv {}: warning: unable to open {}: {}",
                self.label,
                self.supervise.ok().display(),
                errno_text::describe(&error)
            ),
        }
    }

    /// The service's environment: `None` for runsv's own.
    pub fn environment(&self) -> Option<&[(String, String)]> {
        match self.definition.as_ref().map(|d| &d.environment) {
            Some(Environment::Exactly(vars)) => Some(vars),
            _ => None,
        }
    }

    /// Rewrites the files of `supervise/` that changed: pid and stat, then runit's
    /// 20-byte status (a runit reader woken by it finds pid and stat current), then the
    /// full state last (a reader of the state, such as a dependent's runsv, finds every
    /// other file current).
    pub fn write_files(&mut self) {
        let result = self.write(true, true);
        self.report_write(result);
    }

    /// Only `state`, which carries everything (the runit status included): the exit
    /// before an immediate restart, at the cost of one file.
    pub fn write_state_file(&mut self) {
        let result = self.write(false, true);
        self.report_write(result);
    }

    /// Whether the files last written show a process (that has since exited, when a
    /// new one is about to start).
    pub fn published_a_process(&self) -> bool {
        self.written.pid.is_some_and(|pid| pid != 0)
    }

    /// Writes each file whose content changed, runit's if `runit`, then `state` if
    /// `state` (last, so a reader of `state` sees the others current).
    fn write(&mut self, runit: bool, state: bool) -> WriteResult {
        let mut result = Ok(());
        if runit {
            result = result.and(self.write_runit());
        }
        if state {
            result = result.and(self.write_state());
        }
        result
    }

    fn write_runit(&mut self) -> WriteResult {
        let status = self.machine.status();
        let stat = status.stat_line(self.machine.want() == Want::Exit);
        let pid_text = match status.pid {
            0 => String::new(),
            pid => format!("{pid}\n"),
        };
        let encoded = status.encode();
        let (written, supervise) = (&mut self.written, &self.supervise);
        // All three are tried whatever the others gave.
        let pid = replace(
            &supervise.pid(),
            "pid",
            &status.pid,
            pid_text.as_bytes(),
            &mut written.pid,
        );
        let stat = replace(
            &supervise.stat(),
            "stat",
            &stat,
            stat.as_bytes(),
            &mut written.stat,
        );
        let status = replace(
            &supervise.status(),
            "status",
            &encoded,
            &encoded,
            &mut written.status,
        );
        pid.and(stat).and(status)
    }

    /// Before a new `run` may exec (see `Launch::start`): runit's files and `state`
    /// name it, pid and start time, so that a runsv killed from here on leaves its
    /// successor a record of it. `state` says `starting` until exec is confirmed: a
    /// successor replaces such a process rather than adopting one that may never exec.
    pub fn publish_unconfirmed(&mut self) {
        let runit = self.write_runit();
        let mut full_state = self.machine.full_state();
        if full_state.state == ServiceState::Running {
            full_state.state = ServiceState::Starting;
        }
        if full_state.state == ServiceState::Starting && full_state.pid != self.times.pid {
            self.set_times(Times::spawned(full_state.pid, boot_times::now()));
        }
        let state = self.write_state_record(full_state);
        self.report_write(runit.and(state));
    }

    /// While runsv stops what a killed predecessor left (`leftover`): runit's files as
    /// the machine has them, and a `state` that still names that process, `stopping`,
    /// so that a runsv killed meanwhile leaves its successor the same duty.
    pub fn write_files_stopping(&mut self, leftover: &Leftover) {
        let runit = self.write_runit();
        let mut full_state = self.machine.full_state();
        full_state.state = ServiceState::Stopping;
        full_state.pid = leftover.pid;
        full_state.starttime = leftover.previous.starttime;
        full_state.reason = format!(
            "stopping pid {}, left running by a previous runsv",
            leftover.pid
        );
        let state = self.write_state_record(full_state);
        self.report_write(runit.and(state));
    }

    fn write_state(&mut self) -> WriteResult {
        let full_state = self.machine.full_state();
        self.write_state_record(full_state)
    }

    /// The `run` published by `publish_unconfirmed` has exec'd.
    pub fn exec_confirmed(&mut self) {
        if self.times.exec.is_none() {
            let times = Times {
                exec: boot_times::now(),
                ..self.times
            };
            self.set_times(times);
        }
    }

    /// supervise/times is for people (`sv blame`): a failed write is not reported
    /// beyond what `state` already reports, and never stops anything.
    fn set_times(&mut self, times: Times) {
        self.times = times;
        let _ = times.write(&self.supervise);
    }

    fn write_state_record(&mut self, mut full_state: FullState) -> WriteResult {
        let became_ready = match full_state.state {
            ServiceState::Running => full_state.pid == self.times.pid,
            ServiceState::Ok => true,
            _ => false,
        };
        if became_ready && self.times.spawn.is_some() && self.times.ready.is_none() {
            let times = Times {
                ready: boot_times::now(),
                ..self.times
            };
            self.set_times(times);
        }
        if let (Some(error), true) = (&self.reconfigure_error, full_state.reason.is_empty()) {
            full_state.reason = format!("new definition refused, old one kept: {error}");
        }
        self.on_failure_of(&full_state);
        let mut state = full_state.encode();
        state.push_str(&runsv::state_dir::directory_field(&self.own));
        if let Some(group) = &self.cgroup {
            state.push_str(&runsv::cgroup::state_field(group));
        }
        let path = self.supervise.state();
        replace(
            &path,
            "state",
            &state,
            state.as_bytes(),
            &mut self.written.state,
        )
    }

    /// Applies the failure policy to a state about to be published, once per failure
    /// (runsv::failure): `warn` and `stop` say it, `stop` asks for the tree's stop.
    fn on_failure_of(&mut self, full_state: &FullState) {
        let Some(failure) = runsv::failure::failure(full_state) else {
            return;
        };
        let key = (full_state.state, full_state.since);
        if self.failure_seen == Some(key) {
            return;
        }
        self.failure_seen = Some(key);
        setup::apply_failure_policy(&self.label, self.on_failure, &failure);
    }

    /// Whether the last write failed (a full disk, a read-only or broken supervise/):
    /// the loop then writes again on a timer, as well as on the next change.
    pub fn write_failed(&self) -> bool {
        self.written.failed
    }

    fn report_write(&mut self, result: WriteResult) {
        match result {
            Ok(()) => {
                if self.written.failed {
                    eprintln!("runsv {}: supervise/ is written again", self.label);
                }
                self.written.failed = false
            }
            Err((file, error)) if !self.written.failed => {
                self.written.failed = true;
                eprintln!(
                    "runsv {}: warning: unable to write supervise/{file}: {}; retrying every {}s",
                    self.label,
                    errno_text::describe(&error),
                    REWRITE_INTERVAL.as_secs()
                );
            }
            Err(_) => {}
        }
    }

    /// Reads what is waiting on the control FIFO (it never reaches EOF: runsv holds
    /// it open for writing too).
    pub fn read_control(&mut self) -> Vec<u8> {
        let mut buffer = [0u8; 64];
        match self.control.read(&mut buffer) {
            Ok(n) => buffer[..n].to_vec(),
            Err(_) => Vec::new(),
        }
    }

    /// Reads the definition again (`sv reconfigure`). A valid new one replaces the old
    /// one (the machine's settings are the caller's to pass on); an invalid one is refused
    /// and reported.
    pub fn reconfigure(&mut self) -> Reconfigured {
        // Where the directory is now (the entry may have been renamed since): runsv is
        // inside it, and getcwd follows.
        let is_log = self.machine.settings().is_log;
        let directory = match std::env::current_dir() {
            Ok(cwd) if is_log => cwd.join("log"),
            Ok(cwd) => cwd,
            Err(_) => self.directory.clone(),
        };
        let loaded = ServiceDefinition::load(&directory).map(|mut definition| {
            if let Some(old) = &self.definition {
                definition.name = old.name.clone();
            }
            relocate(&mut definition, &directory, is_log);
            setup::add_svdir(&mut definition);
            definition
        });
        match loaded {
            Err(error) => {
                eprintln!(
                    "runsv {}: warning: new definition refused: {error}",
                    self.label
                );
                if self.definition.is_none() {
                    // Nothing to keep: the error the machine shows is simply updated.
                    let mut settings = self.machine.settings().clone();
                    settings.invalid = Some(error.to_string());
                    return Reconfigured::Changed(settings);
                }
                self.reconfigure_error = Some(error.to_string());
                Reconfigured::Refused
            }
            Ok(definition) => {
                self.reconfigure_error = None;
                if self.definition.as_ref() == Some(&definition) {
                    return Reconfigured::Unchanged;
                }
                let settings = settings_of(Some(&definition), is_log, None);
                self.definition = Some(definition);
                Reconfigured::Changed(settings)
            }
        }
    }

    pub fn control_fd(&self) -> i32 {
        self.control.as_raw_fd()
    }
}

fn must_be_fifo(meta: &fs::Metadata) -> io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    if meta.file_type().is_fifo() {
        Ok(())
    } else if meta.file_type().is_symlink() {
        Err(io::Error::from_raw_os_error(nix::libc::ELOOP))
    } else {
        Err(io::Error::new(io::ErrorKind::InvalidInput, "not a FIFO"))
    }
}

/// `unable to open supervise/lock: CAUSE`; a link at that name (O_NOFOLLOW's ELOOP) is
/// said so.
fn unable_to_open(path: &Path, directory: &Path, error: &io::Error) -> String {
    let cause = match error.raw_os_error() {
        Some(nix::libc::ELOOP) => "a symbolic link: runsv follows none in supervise/".into(),
        Some(_) => errno_text::describe(error).to_string(),
        None => error.to_string(),
    };
    format!("unable to open {}: {cause}", relative(path, directory))
}

/// `supervise/lock` for messages, as runit words them.
fn relative(path: &Path, directory: &Path) -> String {
    path.strip_prefix(directory)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| path.display().to_string())
}
