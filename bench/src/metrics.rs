//! The four measurements. Each runs its iterations interleaved across the suites
//! (runit, s6, runtree, then s6, runtree, runit, …) so that whatever else the machine
//! does during the run falls on all of them alike, and each goes through the same code for
//! every suite: only the commands and the status-file decoding differ (see suite.rs).

use crate::suite::{Kind, Service, Suite};
use nix::libc;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::io::Read;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A service must have run this long before it is killed or stopped: runit's runsv
/// sleeps a blocking second before restarting a service that ran less than 1 s, and
/// the restart latency and the control round trip are meant to measure the supervisor,
/// not its crash-loop throttle. 1.2 s leaves a margin over the moment the bench saw the
/// process, which is a little after it started.
const MIN_UPTIME: Duration = Duration::from_millis(1200);

/// One suite's result for one metric: the samples, or why there are none.
pub type Cell = Result<Samples, String>;

#[derive(Default)]
pub struct Samples {
    pub values: Vec<f64>,
    /// Something wrong seen in some rounds that did not prevent the measurement (a
    /// command that reported success before the status file agreed, say), with the
    /// number of rounds it was seen in.
    pub warnings: Vec<(String, usize)>,
}

/// The result of one turn.
struct Turn {
    value: f64,
    warning: Option<String>,
}

impl From<f64> for Turn {
    fn from(value: f64) -> Turn {
        Turn {
            value,
            warning: None,
        }
    }
}

/// A suite's part in an interleaved measurement.
struct Lane<'a, S> {
    suite: &'a Suite,
    state: S,
    outcome: Cell,
}

/// Prepares one lane per suite (a suite that is unavailable, or whose preparation
/// fails, gets its reason as the outcome), runs `iterations` rounds giving every
/// remaining suite one turn per round, and returns the cells in the order of `suites`.
/// A suite whose turn fails drops out with the reason.
fn interleave<'a, S>(
    suites: &[&'a Suite],
    iterations: usize,
    mut prepare: impl FnMut(&'a Suite) -> Result<S, String>,
    mut turn: impl FnMut(&'a Suite, &mut S) -> Result<Turn, String>,
) -> Vec<(Kind, Cell)> {
    let mut lanes: Vec<Lane<'a, Option<S>>> = suites
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
                    outcome: Ok(Samples::default()),
                },
                Err(reason) => Lane {
                    suite,
                    state: None,
                    outcome: Err(reason),
                },
            }
        })
        .collect();
    let count = lanes.len().max(1);
    for round in 0..iterations {
        // Each round starts one suite later, so that over the run every suite comes
        // after every other equally often: a turn right after s6's one-second restart
        // wait, say, finds the CPU idle and a little slower to wake.
        for i in 0..count {
            let Some(lane) = lanes.get_mut((round + i) % count) else {
                continue;
            };
            let (Ok(samples), Some(state)) = (&mut lane.outcome, &mut lane.state) else {
                continue;
            };
            match turn(lane.suite, state) {
                Ok(Turn { value, warning }) => {
                    samples.values.push(value);
                    if let Some(warning) = warning {
                        match samples.warnings.iter_mut().find(|(w, _)| *w == warning) {
                            Some((_, count)) => *count += 1,
                            None => samples.warnings.push((warning, 1)),
                        }
                    }
                }
                Err(reason) => lane.outcome = Err(reason),
            }
        }
    }
    lanes
        .into_iter()
        .map(|lane| (lane.suite.kind, lane.outcome))
        .collect()
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn settle(since: Instant, uptime: Duration) {
    if let Some(rest) = uptime.checked_sub(since.elapsed()) {
        std::thread::sleep(rest);
    }
}

/// Starts one service named `name` under `suite` and waits until it runs.
fn start_one(suite: &Suite, name: &str) -> Result<Service, String> {
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

/// SIGKILL of a service that has run ≥ 1 s → its new process is up.
///
/// The new process is detected the same way for every suite: inotify on the service's
/// `supervise/` directory wakes the bench at each rewrite of `status` (every suite
/// writes `status.new` and renames it), and the pid in it is compared with the killed
/// one. No polling interval enters the measurement.
pub fn restart_latency(suites: &[&Suite], iterations: usize) -> Vec<(Kind, Cell)> {
    interleave(
        suites,
        iterations,
        |suite| start_one(suite, "restart"),
        |suite, service| {
            settle(service.up_since, MIN_UPTIME);
            let old = suite
                .running_pid(&service.dir)
                .ok_or("the service was not running before the kill")?;
            let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)
                .map_err(|e| format!("inotify_init: {e}"))?;
            inotify
                .add_watch(
                    &service.dir.join("supervise"),
                    AddWatchFlags::IN_MOVED_TO
                        | AddWatchFlags::IN_CLOSE_WRITE
                        | AddWatchFlags::IN_CREATE,
                )
                .map_err(|e| format!("inotify_add_watch: {e}"))?;
            let start = Instant::now();
            // The service is a descendant of the bench (a subreaper) and still running,
            // so this pid is the service's.
            kill(Pid::from_raw(old as i32), Signal::SIGKILL)
                .map_err(|e| format!("kill {old}: {e}"))?;
            let deadline = start + Duration::from_secs(10);
            loop {
                if let Some(pid) = suite.running_pid(&service.dir) {
                    if pid != old && runtree::alive(pid) {
                        let elapsed = start.elapsed();
                        service.up_since = Instant::now();
                        return Ok(millis(elapsed).into());
                    }
                }
                let now = Instant::now();
                if now >= deadline {
                    return Err(format!(
                        "no new process within 10 s of SIGKILL{}",
                        suite.log_excerpt()
                    ));
                }
                let wait = u16::try_from((deadline - now).as_millis()).unwrap_or(u16::MAX);
                let mut fds = [PollFd::new(inotify.as_fd(), PollFlags::POLLIN)];
                let _ = poll(&mut fds, PollTimeout::from(wait));
                let _ = inotify.read_events();
            }
        },
    )
}

/// `down` and wait, then `up` and wait, with each suite's own tool and its own waiting
/// (see `Suite::down_then_up`). Both commands must exit 0 and the service must run again.
pub fn control_round_trip(suites: &[&Suite], iterations: usize) -> Vec<(Kind, Cell)> {
    interleave(
        suites,
        iterations,
        |suite| start_one(suite, "control"),
        |suite, service| {
            settle(service.up_since, MIN_UPTIME);
            let [mut down, mut up] = suite.down_then_up(&service.dir);
            let run = |command: &mut Command| {
                let ran = run_timed(command, Duration::from_secs(20))?;
                if ran.status.success() {
                    Ok(ran.elapsed)
                } else {
                    Err(format!("{} ({})", ran.describe(command), ran.status))
                }
            };
            // The status file is read after each command: a tool that reports success
            // before the supervisor's status file agrees misleads every script that
            // reads the status next (runit's sv, say). That is noted with the result.
            // The read is outside the timed spans, which are the two commands' own.
            let mut elapsed = run(&mut down)?;
            let mut problems = Vec::new();
            if suite.running_pid(&service.dir).is_some() {
                problems.push("after `down` returned, supervise/status still showed it running");
            }
            elapsed += run(&mut up)?;
            if suite.running_pid(&service.dir).is_none() {
                problems.push("after `up` returned, supervise/status did not show it running yet");
            }
            let warning = (!problems.is_empty()).then(|| problems.join("; "));
            service.up_since = Instant::now();
            Ok(Turn {
                value: millis(elapsed),
                warning,
            })
        },
    )
}

/// Many idle supervised services per suite: the memory of idle supervisors and the
/// status of all services.
pub struct Fleet {
    /// Per suite (in the order given): its services, or why it has none.
    lanes: Vec<(Kind, Result<Vec<Service>, String>)>,
}

impl Fleet {
    /// Starts `size` services under each suite (directly, one supervisor each, no
    /// scanner) and waits until all run, then for one more second so that every
    /// supervisor is idle.
    pub fn start(suites: &[&Suite], size: usize) -> Fleet {
        let lanes = suites
            .iter()
            .map(|suite| {
                let services = match &suite.unavailable {
                    Some(reason) => Err(reason.clone()),
                    None => Fleet::start_one_suite(suite, size),
                };
                (suite.kind, services)
            })
            .collect();
        std::thread::sleep(Duration::from_secs(1));
        Fleet { lanes }
    }

    fn start_one_suite(suite: &Suite, size: usize) -> Result<Vec<Service>, String> {
        let mut services = Vec::with_capacity(size);
        for i in 0..size {
            let name = format!("fleet-{i:04}");
            let dir = suite
                .create_service(&name)
                .map_err(|e| format!("creating {name}: {e}"))?;
            services.push(
                suite
                    .start(&dir)
                    .map_err(|e| format!("starting {} #{}: {e}", suite.supervisor_name(), i + 1))?,
            );
        }
        // Generous: a loaded 2-core machine starts 1000 supervisors and services in a
        // few seconds.
        let timeout = Duration::from_secs(30 + size as u64 / 20);
        suite.wait_running(&mut services, timeout)?;
        Ok(services)
    }

    fn services(&self, kind: Kind) -> Result<&[Service], String> {
        let (_, services) = self
            .lanes
            .iter()
            .find(|(k, _)| *k == kind)
            .expect("a lane per suite");
        services.as_deref().map_err(Clone::clone)
    }

    /// Every supervisor of the fleet, to stop it before another phase.
    pub fn supervisors(&self) -> Vec<Pid> {
        self.lanes
            .iter()
            .filter_map(|(_, services)| services.as_ref().ok())
            .flatten()
            .map(|service| service.supervisor)
            .collect()
    }

    /// Private_Dirty of `samples` idle supervisors per suite, spread over the fleet.
    pub fn private_dirty(&self, suites: &[&Suite], samples: usize) -> Vec<(Kind, Cell)> {
        interleave(
            suites,
            samples,
            |suite| self.services(suite.kind).map(|services| (services, 0usize)),
            |_, (services, taken)| {
                let service = &services[*taken * services.len() / samples];
                *taken += 1;
                private_dirty_kib(service.supervisor).map(Turn::from)
            },
        )
    }

    /// The time of one status query over every service of the fleet.
    pub fn status_all(&self, suites: &[&Suite], iterations: usize) -> Vec<(Kind, Cell)> {
        interleave(
            suites,
            iterations,
            |suite| {
                self.services(suite.kind).map(|services| {
                    services
                        .iter()
                        .map(|s| s.dir.clone())
                        .collect::<Vec<PathBuf>>()
                })
            },
            |suite, dirs| {
                let mut command = suite.status_all(dirs);
                let ran = run_timed(&mut command, Duration::from_secs(120))?;
                let prefix = suite.running_line_prefix();
                let running = ran
                    .stdout
                    .lines()
                    .filter(|line| line.starts_with(prefix))
                    .count();
                if !ran.status.success() || running != dirs.len() {
                    return Err(format!(
                        "status printed {running} of {} running services ({}): {}",
                        dirs.len(),
                        ran.status,
                        first_line(&ran.stderr, &ran.stdout)
                    ));
                }
                Ok(millis(ran.elapsed).into())
            },
        )
    }
}

/// `Private_Dirty` of /proc/PID/smaps_rollup, in KiB: the memory this process alone has
/// written, which is what each further supervisor costs. RSS and PSS would mostly count
/// the shared C library.
fn private_dirty_kib(pid: Pid) -> Result<f64, String> {
    let path = format!("/proc/{pid}/smaps_rollup");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    text.lines()
        .find_map(|line| line.strip_prefix("Private_Dirty:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("{path}: no Private_Dirty line"))
}

pub struct Ran {
    /// From just before the spawn to the moment the process was seen to exit.
    pub elapsed: Duration,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    fn describe(&self, command: &Command) -> String {
        let program = std::path::Path::new(command.get_program())
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let args: Vec<String> = command
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        format!(
            "`{program} {}`: {}",
            args.join(" "),
            first_line(&self.stderr, &self.stdout)
        )
    }
}

fn first_line<'a>(preferred: &'a str, fallback: &'a str) -> &'a str {
    let text = if preferred.trim().is_empty() {
        fallback
    } else {
        preferred
    };
    text.lines().next().unwrap_or("").trim()
}

/// Runs a command to completion, capturing its output, and times it. The exit is waited
/// for through a pidfd, in the same poll as the output pipes: no sleep step blurs a
/// measurement of a few milliseconds, and a hung command is killed at `timeout` (it is
/// still unreaped then, so the kill cannot hit another process).
pub fn run_timed(command: &mut Command, timeout: Duration) -> Result<Ran, String> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let deadline = start + timeout;
    let mut child = command
        .spawn()
        .map_err(|e| format!("{:?}: {e}", command.get_program()))?;
    let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, child.id() as libc::pid_t, 0) };
    if raw < 0 {
        let error = std::io::Error::last_os_error();
        let _ = child.kill();
        let _ = child.wait();
        return Err(format!("pidfd_open: {error}"));
    }
    let pidfd = unsafe { OwnedFd::from_raw_fd(raw as i32) };
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let mut out = Vec::new();
    let mut err = Vec::new();
    let (mut out_open, mut err_open) = (true, true);
    let mut exited: Option<(ExitStatus, Duration)> = None;
    loop {
        if let (Some((status, elapsed)), false, false) = (exited, out_open, err_open) {
            return Ok(Ran {
                elapsed,
                status,
                stdout: String::from_utf8_lossy(&out).into_owned(),
                stderr: String::from_utf8_lossy(&err).into_owned(),
            });
        }
        let now = Instant::now();
        if now >= deadline {
            if exited.is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
            return Err(format!(
                "{:?} did not finish within {}s",
                command.get_program(),
                timeout.as_secs()
            ));
        }
        let wait = u16::try_from((deadline - now).as_millis()).unwrap_or(u16::MAX);
        let never = PollFlags::empty();
        let mut fds = [
            PollFd::new(
                pidfd.as_fd(),
                if exited.is_none() {
                    PollFlags::POLLIN
                } else {
                    never
                },
            ),
            PollFd::new(
                stdout.as_fd(),
                if out_open { PollFlags::POLLIN } else { never },
            ),
            PollFd::new(
                stderr.as_fd(),
                if err_open { PollFlags::POLLIN } else { never },
            ),
        ];
        match poll(&mut fds, PollTimeout::from(wait)) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(format!("poll: {e}")),
        }
        let ready = |fd: &PollFd| {
            fd.revents()
                .is_some_and(|r| r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP))
        };
        let [exit_fd, out_fd, err_fd] = &fds;
        let (exit_ready, out_ready, err_ready) = (ready(exit_fd), ready(out_fd), ready(err_fd));
        if exit_ready && exited.is_none() {
            let status = child.wait().map_err(|e| format!("wait: {e}"))?;
            exited = Some((status, start.elapsed()));
        }
        let mut chunk = [0u8; 65536];
        if out_ready && out_open {
            match stdout.read(&mut chunk) {
                Ok(0) | Err(_) => out_open = false,
                Ok(n) => out.extend_from_slice(&chunk[..n]),
            }
        }
        if err_ready && err_open {
            match stderr.read(&mut chunk) {
                Ok(0) | Err(_) => err_open = false,
                Ok(n) => err.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

/// Median, minimum and maximum.
pub fn summary(values: &[f64]) -> Option<(f64, f64, f64)> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let median = if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    };
    Some((median, sorted[0], sorted[n - 1]))
}
