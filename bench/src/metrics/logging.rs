//! Log throughput (`logging`): how fast a service's output gets through its supervisor
//! to a log, and what that costs the supervisor.
//!
//! One service writes N numbered lines as fast as it can (`seq 1 N`), then sleeps
//! without exiting (so that no restart writes them again). Four cases, each turn a fresh
//! directory, interleaved in rounds as the other metrics are:
//!
//! - runit: runit's `runsv` on a directory with `run` and `log/run`
//!   (`exec svlogd -tt ./main`): runsv holds the pipe between the two.
//! - s6: `s6-svscan` on a scan directory with that service, whose `log/run` is s6's own
//!   logger (`exec s6-log -b n2 s100000000 t ./main`): s6-svscan holds the pipe and starts
//!   an `s6-supervise` for the service and one for its logger.
//! - runtree, `log/`: runtree's `runsv` on the very same directory as runit's.
//! - runtree, kmsg: runtree's `runsv` on a `service.yaml` with the default destination;
//!   `RUNTREE_KMSG` points runsv at a file in the bench's directory instead of
//!   /dev/kmsg, so that a million lines do not go into this machine's kernel log.
//!
//! The time runs from just before the supervisor (or s6-svscan) is spawned to the moment
//! the bench has counted N lines in the logger's `current` (or the kmsg file): polled
//! every millisecond, reading only what was appended since the last look. Then the
//! supervisor's CPU time (utime + stime from /proc/PID/stat) is read, before it is
//! stopped.

use super::svlogd;
use crate::cleanup;
use crate::interleave::{interleave, Cell, Order};
use crate::options::{log_plan, Metric};
use crate::proc;
use crate::suite::Kind;
use crate::table::{Goal, Row};
use nix::unistd::Pid;
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The PATH every supervisor gets (svlogd, s6-log, seq, sleep and sh are in /usr/bin or
/// /bin); runtree's runsv is started by its full path.
const PATH: &str = "/usr/bin:/bin:/usr/sbin:/sbin";

/// The name of the service directory: runtree's kmsg records start with `svc: `.
const SERVICE: &str = "svc";

/// The file that stands in for /dev/kmsg, in each turn's directory.
const KMSG: &str = "kmsg";

/// svlogd's logger: `-tt` prefixes each line with a UTC timestamp. Its `config` holds
/// `s0` (no rotation), so that `current` keeps every line.
const SVLOGD_RUN: &str = "#!/bin/sh\nexec svlogd -tt ./main\n";

/// s6's logger, the same job: a TAI64N timestamp (`t`), `current` rotated only past
/// 100 MB (more than a million timestamped lines), two archives.
const S6_LOG_RUN: &str = "#!/bin/sh\nexec s6-log -b n2 s100000000 t ./main\n";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Case {
    /// runit's runsv with a `log/` service (svlogd).
    Runit,
    /// s6-svscan, s6-supervise, s6-log.
    S6,
    /// runtree's runsv with the same `log/` service as runit's.
    RuntreeLog,
    /// runtree's runsv, `service.yaml`, default destination (kmsg, into a file).
    RuntreeKmsg,
}

impl Case {
    const ALL: [Case; 4] = [Case::Runit, Case::S6, Case::RuntreeLog, Case::RuntreeKmsg];

    fn name(self) -> &'static str {
        match self {
            Case::Runit => "runit",
            Case::S6 => "s6",
            Case::RuntreeLog => "runtree-log",
            Case::RuntreeKmsg => "runtree-kmsg",
        }
    }

    fn kind(self) -> Kind {
        match self {
            Case::Runit => Kind::Runit,
            Case::S6 => Kind::S6,
            Case::RuntreeLog | Case::RuntreeKmsg => Kind::Runtree,
        }
    }
}

/// The results, one cell per suite and row. The kmsg rows have only runtree's cell.
pub struct Logging {
    /// Thousands of lines per second through a `log/` service.
    pub log_rate: Vec<(Kind, Cell)>,
    /// Thousands of lines per second through kmsg (runtree only).
    pub kmsg_rate: Vec<(Kind, Cell)>,
    /// The supervisor's CPU, ms per million lines, `log/` service.
    pub log_cpu: Vec<(Kind, Cell)>,
    /// runsv's CPU, ms per million lines, kmsg.
    pub kmsg_cpu: Vec<(Kind, Cell)>,
}

/// One turn's result.
struct Sample {
    elapsed: Duration,
    /// utime + stime of the supervisor (s6: s6-svscan and its two s6-supervise), in
    /// clock ticks.
    ticks: u64,
}

/// What the logging measurements run, on what, and for how long.
pub struct LogRun<'a> {
    pub runtree_bin: &'a Path,
    /// Why runtree cannot be measured (its build failed), if so.
    pub runtree_unavailable: Option<String>,
    /// Where each turn gets a directory of its own.
    pub work: &'a Path,
    /// Lines per turn.
    pub lines: usize,
    pub rounds: usize,
    /// How long a turn may take.
    pub timeout: Duration,
}

/// Runs `rounds` rounds of the four cases, `lines` lines each.
pub fn log_throughput(run: &LogRun) -> Logging {
    let root = run.work.join("logging");
    let usr = Path::new("/usr/bin");
    let svlogd = usr.join("svlogd");
    let runtree_runsv = run.runtree_bin.join("runsv");
    let mut turn_number = 0;
    let (mut cells, _) = interleave(
        &Case::ALL,
        run.rounds,
        2,
        Order::Pendulum,
        |case| {
            // The programs, and where the missing ones come from (svlogd is runit's,
            // also in runtree's lane).
            let (program, needed, hint): (PathBuf, Vec<&Path>, &str) = match case {
                Case::Runit => (
                    usr.join("runsv"),
                    vec![Path::new("/usr/bin/runsv"), &svlogd],
                    "apt-get install runit",
                ),
                Case::S6 => (
                    usr.join("s6-svscan"),
                    vec![
                        Path::new("/usr/bin/s6-svscan"),
                        Path::new("/usr/bin/s6-supervise"),
                        Path::new("/usr/bin/s6-log"),
                    ],
                    "apt-get install s6",
                ),
                Case::RuntreeLog => (
                    runtree_runsv.clone(),
                    vec![&runtree_runsv, &svlogd],
                    "cargo build --release --workspace; svlogd: apt-get install runit",
                ),
                Case::RuntreeKmsg => (
                    runtree_runsv.clone(),
                    vec![&runtree_runsv],
                    "cargo build --release --workspace",
                ),
            };
            let missing: Vec<String> = needed
                .iter()
                .filter(|path| !path.exists())
                .map(|path| path.display().to_string())
                .collect();
            match &run.runtree_unavailable {
                Some(reason) if case.kind() == Kind::Runtree => Err(reason.clone()),
                _ if !missing.is_empty() => Err(format!("{} missing ({hint})", missing.join(", "))),
                _ => Ok(program),
            }
        },
        |case, program| {
            turn_number += 1;
            let dir = root.join(format!("{}-{turn_number}", case.name()));
            let outcome = turn(case, program, &dir, run.lines, run.timeout);
            // The lines take tens of megabytes: each turn's directory goes at once.
            let _ = fs::remove_dir_all(&dir);
            match outcome {
                Ok(Sample { elapsed, ticks }) => {
                    let cpu_ms = ticks as f64 * 1000.0 / proc::clock_ticks_per_second();
                    vec![
                        Ok((run.lines as f64 / elapsed.as_secs_f64() / 1000.0).into()),
                        Ok((cpu_ms * 1_000_000.0 / run.lines as f64).into()),
                    ]
                }
                Err(reason) => vec![Err(reason.clone()), Err(reason)],
            }
        },
    );
    let cpu = cells.pop().unwrap_or_default();
    let rate = cells.pop().unwrap_or_default();
    let mut logging = Logging {
        log_rate: Vec::new(),
        kmsg_rate: Vec::new(),
        log_cpu: Vec::new(),
        kmsg_cpu: Vec::new(),
    };
    for ((case, rate), (_, cpu)) in rate.into_iter().zip(cpu) {
        let kind = case.kind();
        if case == Case::RuntreeKmsg {
            logging.kmsg_rate.push((kind, rate));
            logging.kmsg_cpu.push((kind, cpu));
        } else {
            logging.log_rate.push((kind, rate));
            logging.log_cpu.push((kind, cpu));
        }
    }
    logging
}

/// The service's `run` (runit form) and, for the kmsg case, the program its
/// `service.yaml` runs: the lines, then an idle process that keeps the output open and
/// is never restarted.
fn writer_script(lines: usize) -> String {
    format!("#!/bin/sh\nseq 1 {lines}\nexec sleep 1000000\n")
}

fn write_executable(path: &Path, text: &str) -> Result<(), String> {
    fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn make_dir(path: &Path) -> Result<(), String> {
    fs::create_dir_all(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Lays out the case's directory under `dir`. Returns the directory the supervisor is
/// started on, and the file whose lines are counted.
fn prepare(case: Case, dir: &Path, lines: usize) -> Result<(PathBuf, PathBuf), String> {
    let writer = writer_script(lines);
    match case {
        Case::Runit | Case::RuntreeLog => {
            let service = dir.join(SERVICE);
            make_dir(&service.join("log/main"))?;
            write_executable(&service.join("run"), &writer)?;
            write_executable(&service.join("log/run"), SVLOGD_RUN)?;
            let config = service.join("log/main/config");
            fs::write(&config, "s0\n").map_err(|e| format!("{}: {e}", config.display()))?;
            let current = service.join("log/main/current");
            Ok((service, current))
        }
        Case::S6 => {
            let scan = dir.join("scan");
            let service = scan.join(SERVICE);
            make_dir(&service.join("log/main"))?;
            write_executable(&service.join("run"), &writer)?;
            write_executable(&service.join("log/run"), S6_LOG_RUN)?;
            let current = service.join("log/main/current");
            Ok((scan, current))
        }
        Case::RuntreeKmsg => {
            let service = dir.join(SERVICE);
            make_dir(&service)?;
            write_executable(&service.join("lines"), &writer)?;
            let yaml = service.join("service.yaml");
            // Default `log`: kmsg.
            fs::write(&yaml, "exec: ./lines\n").map_err(|e| format!("{}: {e}", yaml.display()))?;
            Ok((service, dir.join(KMSG)))
        }
    }
}

/// One turn: start, count the lines as they arrive, read the CPU, stop.
fn turn(
    case: Case,
    program: &Path,
    dir: &Path,
    lines: usize,
    timeout: Duration,
) -> Result<Sample, String> {
    let (target, counted) = prepare(case, dir, lines)?;
    let create = |path: &Path| File::create(path).map_err(|e| format!("{}: {e}", path.display()));
    // Every case gets it, though only runtree's runsv reads RUNTREE_KMSG: nothing of
    // the bench's reaches this machine's kernel log (in the `log/` case it stays
    // empty). runsv appends to it and does not create it.
    let kmsg = dir.join(KMSG);
    create(&kmsg)?;
    let stderr_path = dir.join("stderr");
    let stderr = create(&stderr_path)?;
    let mut command = Command::new(program);
    command
        .arg(&target)
        .env_clear()
        .env("PATH", PATH)
        .env("RUNTREE_KMSG", &kmsg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    // A session of its own, as runsvdir, s6-svscan and svdir start a supervisor (so
    // that, with the kernel's autogroups, the bench's own process is not in the same
    // scheduling group as a suite's logger and service).
    // SAFETY: the closure runs in the child between fork and exec, and calls only
    // setsid, which is async-signal-safe and allocates nothing.
    unsafe {
        command.pre_exec(|| {
            nix::unistd::setsid()
                .map(drop)
                .map_err(std::io::Error::from)
        });
    }
    let start = Instant::now();
    let child = command
        .spawn()
        .map_err(|e| format!("{}: {e}", program.display()))?;
    let pid = Pid::from_raw(child.id() as i32);
    // Dropping the Child neither kills nor reaps it: cleanup owns it from here.
    cleanup::register_supervisor(pid);
    let waited = wait_for_lines(&counted, lines, pid, start, timeout);
    let elapsed = start.elapsed();
    // Read before anything is stopped: the CPU the supervisor spent on the lines.
    let supervisor = pid.as_raw() as u32;
    let ticks = match case {
        // s6-svscan (which holds the pipe) and its two s6-supervise.
        Case::S6 => Ok(proc::children_of(supervisor)
            .into_iter()
            .chain([supervisor])
            .filter_map(proc::cpu_ticks)
            .sum()),
        _ => proc::cpu_ticks(supervisor)
            .ok_or_else(|| format!("/proc/{supervisor}/stat: unreadable")),
    };
    cleanup::stop_supervisors(&[pid], Duration::from_secs(10));
    let excerpt = || {
        let text = fs::read_to_string(&stderr_path).unwrap_or_default();
        let last: Vec<&str> = text.lines().rev().take(2).collect();
        if last.is_empty() {
            String::new()
        } else {
            format!(
                " ({})",
                last.into_iter().rev().collect::<Vec<_>>().join(" ")
            )
        }
    };
    match waited {
        Ok(count) if count == lines => {}
        Ok(count) => {
            return Err(format!(
                "{}: {count} lines where {lines} were written",
                counted.display()
            ))
        }
        Err(reason) => return Err(format!("{reason}{}", excerpt())),
    }
    let last = last_line(&counted)?;
    if !ends_with_number(&last, lines) {
        return Err(format!(
            "{}: the last line is {last:?}, not number {lines}",
            counted.display()
        ));
    }
    Ok(Sample {
        elapsed,
        ticks: ticks?,
    })
}

/// Counts the lines of `path` as they are appended, every millisecond, until there are
/// `lines`; returns the count. Fails if the supervisor exits or `timeout` passes.
fn wait_for_lines(
    path: &Path,
    lines: usize,
    supervisor: Pid,
    start: Instant,
    timeout: Duration,
) -> Result<usize, String> {
    let mut file: Option<File> = None;
    let mut count = 0;
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        if file.is_none() {
            // The logger creates `current` once it runs.
            file = File::open(path).ok();
        }
        if let Some(file) = &mut file {
            loop {
                match file.read(&mut buffer) {
                    Ok(0) => break,
                    Ok(n) => count += count_newlines(&buffer[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(format!("{}: {e}", path.display())),
                }
            }
        }
        if count >= lines {
            return Ok(count);
        }
        if !runtree::alive(supervisor.as_raw() as u32) {
            return Err(format!(
                "the supervisor exited after {count} of {lines} lines"
            ));
        }
        if start.elapsed() >= timeout {
            return Err(format!(
                "{count} of {lines} lines after {} s",
                timeout.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn count_newlines(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b == b'\n').count()
}

/// The last line of a file (without its newline), from its last 256 bytes.
fn last_line(path: &Path) -> Result<String, String> {
    let mut file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let size = file
        .seek(SeekFrom::End(0))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    file.seek(SeekFrom::Start(size.saturating_sub(256)))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let text = String::from_utf8_lossy(&tail);
    Ok(text
        .trim_end_matches('\n')
        .rsplit('\n')
        .next()
        .unwrap_or("")
        .to_string())
}

/// Whether a logged line (a timestamp or a `svc: ` prefix, then the text) is the
/// number `n`.
fn ends_with_number(line: &str, n: usize) -> bool {
    line.rsplit(' ').next() == Some(n.to_string().as_str())
}

/// The rows of `logging`: a million lines through a `log/` service under runit, s6 and
/// runtree, and through runtree's kmsg relay; and svlogd alone (svlogd.rs).
pub fn rows(
    quick: bool,
    runtree_bin: &Path,
    runtree_build: Option<String>,
    work: &Path,
) -> Vec<(Metric, Row)> {
    let (lines, rounds, timeout) = log_plan(quick);
    crate::progress(&format!(
        "measuring log throughput: {lines} lines, {rounds} rounds"
    ));
    let run = LogRun {
        runtree_bin,
        runtree_unavailable: runtree_build,
        work,
        lines,
        rounds,
        timeout,
    };
    let Logging {
        log_rate,
        kmsg_rate,
        log_cpu,
        kmsg_cpu,
    } = log_throughput(&run);
    crate::progress("measuring svlogd alone, runit's and runtree's");
    let svlogd = svlogd::svlogd_throughput(&run);
    let count = if lines % 1_000_000 == 0 {
        format!("{}M", lines / 1_000_000)
    } else {
        format!("{}k", lines / 1000)
    };
    vec![
        (
            Metric::Logging,
            Row::new(
                format!("{count} lines/s through a log/ service (svlogd; s6: s6-log)"),
                "k lines/s",
                Goal::Information,
            )
            .suites(log_rate),
        ),
        (
            Metric::Logging,
            Row::new(
                format!("{count} lines/s through kmsg (RUNTREE_KMSG file)"),
                "k lines/s",
                Goal::Information,
            )
            .suites(kmsg_rate),
        ),
        (
            Metric::Logging,
            Row::new(
                "supervisor CPU per million lines, log/ (10 ms ticks)".into(),
                "ms",
                Goal::Information,
            )
            .suites(log_cpu),
        ),
        (
            Metric::Logging,
            Row::new(
                "runsv CPU per million lines, kmsg (10 ms ticks)".into(),
                "ms",
                Goal::Information,
            )
            .suites(kmsg_cpu),
        ),
        (
            Metric::Logging,
            Row::new(
                format!("svlogd -tt alone, {count} lines from a pipe, per million"),
                "ms",
                Goal::NoMoreThanRunit,
            )
            .suites(svlogd),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_number_after_a_timestamp_or_prefix() {
        assert!(ends_with_number(
            "2026-11-30_23:45:55.49793 1000000",
            1_000_000
        ));
        assert!(ends_with_number(
            "@400000006b0e0ae12ca00792 1000000",
            1_000_000
        ));
        assert!(ends_with_number("<6>svc: 100000", 100_000));
        assert!(!ends_with_number("<6>svc: 99999", 100_000));
    }

    #[test]
    fn newlines_are_counted() {
        assert_eq!(count_newlines(b"1\n2\n3"), 2);
        assert_eq!(count_newlines(b""), 0);
    }
}
