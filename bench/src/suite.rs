//! The three suites under test, reduced to what the bench does with them: start a
//! supervisor on a service directory, read the pid of the running service from the
//! supervisor's own status file, and build the control and status commands a user of
//! that suite would type.

use crate::cleanup;
use crate::interleave::{self, settle, Available, Cell, Turn};
use nix::unistd::Pid;
use runsv::supervise::{RunState, Status};
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A service must have run this long before it is killed or stopped: runit's runsv
/// sleeps a blocking second before restarting a service that ran less than 1 s, and
/// the restart latency and the control round trip are meant to measure the supervisor,
/// not its crash-loop throttle. 1.2 s leaves a margin over the moment the bench saw the
/// process, which is a little after it started.
pub const MIN_UPTIME: Duration = Duration::from_millis(1200);

/// The one service every suite runs, in every measurement: an idle process whose
/// restart costs nothing of its own.
pub const RUN_SCRIPT: &str = "#!/bin/sh\nexec sleep 100000\n";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Runit,
    S6,
    Runtree,
}

impl Kind {
    /// The column order of the table, and of the first interleaved round.
    pub const ALL: [Kind; 3] = [Kind::Runit, Kind::S6, Kind::Runtree];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Runit => "runit",
            Kind::S6 => "s6",
            Kind::Runtree => "runtree",
        }
    }
}

pub struct Suite {
    pub kind: Kind,
    /// runsv, s6-supervise, or runtree's runsv.
    supervisor: PathBuf,
    /// sv (runit's or runtree's), or s6-svc.
    control: PathBuf,
    /// sv again, or s6-svstat.
    status: PathBuf,
    /// Where this suite's service directories are created.
    root: PathBuf,
    /// The supervisors' stderr, kept to explain a failure.
    log: PathBuf,
    /// Why this suite cannot be measured, if it cannot.
    pub unavailable: Option<String>,
}

/// One supervised service directory.
pub struct Service {
    pub dir: PathBuf,
    pub supervisor: Pid,
    /// When the bench last saw a new process of the service come up.
    pub up_since: Instant,
}

impl Available for Suite {
    fn unavailable(&self) -> Option<&str> {
        self.unavailable.as_deref()
    }
}

impl Suite {
    pub fn new(kind: Kind, runtree_bin: &Path, work: &Path) -> Suite {
        let usr = Path::new("/usr/bin");
        let (supervisor, control, status) = match kind {
            Kind::Runit => (usr.join("runsv"), usr.join("sv"), usr.join("sv")),
            Kind::S6 => (
                usr.join("s6-supervise"),
                usr.join("s6-svc"),
                usr.join("s6-svstat"),
            ),
            Kind::Runtree => (
                runtree_bin.join("runsv"),
                runtree_bin.join("sv"),
                runtree_bin.join("sv"),
            ),
        };
        let unavailable = missing_programs(
            &[&supervisor, &control, &status],
            kind == Kind::Runtree,
            kind.name(),
        );
        let root = work.join(kind.name());
        Suite {
            kind,
            supervisor,
            control,
            status,
            log: work.join(format!("{}.stderr", kind.name())),
            root,
            unavailable,
        }
    }

    pub fn name(&self) -> &'static str {
        self.kind.name()
    }

    pub fn supervisor_name(&self) -> &'static str {
        match self.kind {
            Kind::Runit | Kind::Runtree => "runsv",
            Kind::S6 => "s6-supervise",
        }
    }

    /// Creates the service directory `name` (the same `run` script for every suite).
    pub fn create_service(&self, name: &str) -> io::Result<PathBuf> {
        let dir = self.root.join(name);
        fs::create_dir_all(&dir)?;
        let run = dir.join("run");
        fs::write(&run, RUN_SCRIPT)?;
        fs::set_permissions(&run, fs::Permissions::from_mode(0o755))?;
        Ok(dir)
    }

    /// Starts this suite's supervisor on `dir`, exactly as its scanner would
    /// (`runsv DIR`, `s6-supervise DIR`), in a process group of its own so that a Ctrl-C
    /// in the terminal reaches the bench, which then stops everything in order.
    pub fn start(&self, dir: &Path) -> io::Result<Service> {
        let log = crate::command::append_log(&self.log)?;
        let child = Command::new(&self.supervisor)
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .process_group(0)
            .spawn()?;
        let pid = Pid::from_raw(child.id() as i32);
        // Dropping the Child neither kills nor reaps it: cleanup owns it from here.
        cleanup::register_supervisor(pid);
        Ok(Service {
            dir: dir.to_path_buf(),
            supervisor: pid,
            up_since: Instant::now(),
        })
    }

    /// The pid of the service's running `run` process, from the supervisor's status
    /// file: runit's 20-byte record (runtree writes the same one), or s6's 35-byte one.
    /// `None` while nothing runs, or while `finish` does.
    pub fn running_pid(&self, dir: &Path) -> Option<u32> {
        let bytes = fs::read(dir.join("supervise/status")).ok()?;
        match self.kind {
            Kind::Runit | Kind::Runtree => {
                let status = Status::decode(&bytes).ok()?;
                (status.run_state == RunState::Run && status.pid != 0).then_some(status.pid)
            }
            Kind::S6 => {
                // pid: u64 big-endian at 24; flags at 34, bit 1 = finishing.
                if bytes.len() != 35 || bytes[34] & 2 != 0 {
                    return None;
                }
                let pid = u64::from_be_bytes(bytes[24..32].try_into().ok()?);
                u32::try_from(pid).ok().filter(|&pid| pid != 0)
            }
        }
    }

    /// Waits until every service runs a process (polling every 20 ms: this is set-up,
    /// not a measurement). On failure, says how many came up and what the supervisors
    /// printed.
    pub fn wait_running(&self, services: &mut [Service], timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let mut pending: Vec<usize> = (0..services.len()).collect();
        loop {
            pending.retain(|&i| {
                if self.running_pid(&services[i].dir).is_some() {
                    services[i].up_since = Instant::now();
                    false
                } else {
                    true
                }
            });
            if pending.is_empty() {
                return Ok(());
            }
            let dead = pending
                .iter()
                .find(|&&i| !runtree::alive(services[i].supervisor.as_raw() as u32));
            if dead.is_some() || Instant::now() >= deadline {
                let what = match dead {
                    Some(_) => format!("{} exited", self.supervisor_name()),
                    None => format!("no service process after {}s", timeout.as_secs()),
                };
                return Err(format!(
                    "{what}: {} of {} services came up{}",
                    services.len() - pending.len(),
                    services.len(),
                    self.log_excerpt()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What the supervisors wrote to stderr that explains a failure, for error
    /// messages: a Rust panic's message, else the last two lines.
    pub fn log_excerpt(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        failure_lines(&text).map_or_else(String::new, |lines| format!(" ({lines})"))
    }

    /// `down` and wait until down (finish done), then `up` and wait until up: the two
    /// commands a user types, with the suite's own waiting.
    pub fn down_then_up(&self, dir: &Path) -> [Command; 2] {
        match self.kind {
            Kind::Runit | Kind::Runtree => ["down", "up"].map(|verb| {
                let mut command = Command::new(&self.control);
                command
                    .args(["-w", "7", verb])
                    .arg(dir)
                    .env_remove("SVWAIT");
                command
            }),
            // -wD ("down and ready": finish done) is what `sv -w down` waits for; -wu,
            // not -wU: without notification-fd s6-svc degrades -wU to -wu with a warning.
            Kind::S6 => [["-wD", "-d"], ["-wu", "-u"]].map(|flags| {
                let mut command = Command::new(&self.control);
                command.args(["-T", "7000"]).args(flags).arg(dir);
                command
            }),
        }
    }

    /// The status of every service in `dirs`: one `sv status` (runit, runtree), or, since
    /// s6-svstat takes one directory, the shell loop an s6 user writes.
    pub fn status_all(&self, dirs: &[PathBuf]) -> Command {
        match self.kind {
            Kind::Runit | Kind::Runtree => {
                let mut command = Command::new(&self.status);
                command.arg("status").args(dirs).env_remove("SVDIR");
                command
            }
            Kind::S6 => {
                let mut command = Command::new("/bin/sh");
                command
                    .arg("-c")
                    .arg(format!(
                        "for d do {} \"$d\" || exit; done",
                        self.status.display()
                    ))
                    .arg("s6-status")
                    .args(dirs);
                command
            }
        }
    }

    /// How each line of `status_all` output begins for a running service.
    pub fn running_line_prefix(&self) -> &'static str {
        match self.kind {
            Kind::Runit | Kind::Runtree => "run: ",
            Kind::S6 => "up ",
        }
    }
}

/// The lines of a log that explain a failure: a Rust panic's message, else the last
/// two lines; `None` if it is empty.
pub fn failure_lines(text: &str) -> Option<String> {
    let all: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect();
    let lines: &[&str] = match all.iter().rposition(|l| l.contains("panicked at")) {
        Some(i) => &all[i..(i + 2).min(all.len())],
        None => &all[all.len().saturating_sub(2)..],
    };
    (!lines.is_empty()).then(|| lines.join(" "))
}

/// Why a suite cannot be measured: which of its programs are missing and how to get
/// them (runtree's are built; the peers' come from the Debian package `package`).
pub fn missing_programs(programs: &[&Path], runtree: bool, package: &str) -> Option<String> {
    let missing: Vec<String> = programs
        .iter()
        .filter(|path| !path.exists())
        .map(|path| path.display().to_string())
        .collect();
    if missing.is_empty() {
        None
    } else if runtree {
        Some(format!(
            "{} missing (cargo build --release --workspace)",
            missing.join(", ")
        ))
    } else {
        Some(format!(
            "{} missing (apt-get install {package})",
            missing.join(", ")
        ))
    }
}

/// The interleaving of the supervisor metrics: a lane per suite (an unavailable suite,
/// or one whose preparation fails, gets the reason), rotating, one output. Returns the
/// cells in the order of `suites`.
pub fn interleave<'a, S>(
    suites: &[&'a Suite],
    iterations: usize,
    prepare: impl FnMut(&'a Suite) -> Result<S, String>,
    mut turn: impl FnMut(&'a Suite, &mut S) -> Result<Turn, String>,
) -> Vec<(Kind, Cell)> {
    let (mut cells, _) =
        interleave::interleave_suites(suites, iterations, 1, prepare, |suite, state| {
            vec![turn(suite, state)]
        });
    cells
        .pop()
        .unwrap_or_default()
        .into_iter()
        .map(|(suite, cell)| (suite.kind, cell))
        .collect()
}

/// [`interleave`] on one service `name` under each suite, which has run at least
/// [`MIN_UPTIME`] before each turn (a service that just started is treated as crashing).
pub fn on_one_service<'a>(
    suites: &[&'a Suite],
    iterations: usize,
    name: &str,
    mut turn: impl FnMut(&'a Suite, &mut Service) -> Result<Turn, String>,
) -> Vec<(Kind, Cell)> {
    interleave(
        suites,
        iterations,
        |suite| start_one(suite, name),
        |suite, service| {
            settle(service.up_since, MIN_UPTIME);
            turn(suite, service)
        },
    )
}

/// Starts one service named `name` under `suite` and waits until it runs.
pub fn start_one(suite: &Suite, name: &str) -> Result<Service, String> {
    let dir = suite
        .create_service(name)
        .map_err(|e| format!("creating {name}: {e}"))?;
    let mut service = suite
        .start(&dir)
        .map_err(|e| format!("starting {}: {e}", suite.supervisor_name()))?;
    suite.wait_running(std::slice::from_mut(&mut service), Duration::from_secs(5))?;
    Ok(service)
}

/// Checks that the suite's supervisor runs a service at all, so that a supervisor that
/// does not work yet shows as `n/a` with the reason instead of failing every metric.
pub fn probe(suite: &Suite) -> Result<(), String> {
    start_one(suite, "probe").map(|_| ())
}

/// Starts runtree's `runsv DIR` with `variable` set, quiet, in a process group of its
/// own (as Suite::start does, so that a Ctrl-C reaches the bench first): for a metric
/// that runs one runsv under a setting of its own.
pub fn start_runsv(runtree_bin: &Path, dir: &Path, variable: (&str, &str)) -> io::Result<Child> {
    Command::new(runtree_bin.join("runsv"))
        .arg(dir)
        .env(variable.0, variable.1)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
}
