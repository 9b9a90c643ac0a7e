//! `runtree-bench`: measures runtree's supervisor and control tool side by side with
//! Debian's runit and s6, in one run on the same machine, and prints a table. What each
//! metric measures, and why the comparison is fair: docs/bench.md.
//!
//! ```text
//! cargo run --release --bin runtree-bench [-- --quick] [-- --only restart,control]
//! ```

#[path = "../bench/cleanup.rs"]
mod cleanup;
#[path = "../bench/metrics.rs"]
mod metrics;
#[path = "../bench/suite.rs"]
mod suite;

use metrics::{summary, Cell, Fleet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use suite::{Kind, Suite};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Metric {
    Memory,
    Restart,
    Control,
    Status,
}

impl Metric {
    const ALL: [Metric; 4] = [
        Metric::Memory,
        Metric::Restart,
        Metric::Control,
        Metric::Status,
    ];

    /// The name `--only` takes.
    fn key(self) -> &'static str {
        match self {
            Metric::Memory => "memory",
            Metric::Restart => "restart",
            Metric::Control => "control",
            Metric::Status => "status",
        }
    }

    fn title(self, fleet_size: usize) -> String {
        match self {
            Metric::Memory => "idle supervisor Private_Dirty (USS)".into(),
            Metric::Restart => "restart latency (SIGKILL → new process)".into(),
            Metric::Control => "control round trip (down -w, up -w)".into(),
            Metric::Status => format!("status of {fleet_size} services"),
        }
    }

    fn unit(self) -> &'static str {
        match self {
            Metric::Memory => "KiB",
            _ => "ms",
        }
    }

    fn goal(self) -> Goal {
        match self {
            Metric::Control => Goal::AtMost(10.0),
            _ => Goal::NoMoreThanRunit,
        }
    }
}

enum Goal {
    NoMoreThanRunit,
    AtMost(f64),
}

struct Options {
    quick: bool,
    only: Vec<Metric>,
    fleet_size: usize,
    build: bool,
}

const USAGE: &str = "\
usage: runtree-bench [--quick] [--only METRIC[,METRIC…]] [--services N] [--no-build]

Measures runit, s6 and runtree side by side (interleaved) and prints a table.
  --quick          fewer iterations: a smoke test of the harness, not a result
  --only METRICS   memory, restart, control, status (comma-separated or repeated)
  --services N     how many services each suite supervises for `status` (default 1000)
  --no-build       do not build runtree's runsv and sv first (they are built when the
                   bench was started by `cargo run`)
runtree's binaries: next to this program, or RUNTREE_BIN_DIR. See docs/bench.md.";

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        quick: false,
        only: Vec::new(),
        fleet_size: 1000,
        build: true,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => options.quick = true,
            "--no-build" => options.build = false,
            "--only" => {
                let list = args.next().ok_or("--only needs a metric")?;
                for key in list.split(',').filter(|k| !k.is_empty()) {
                    let metric = Metric::ALL
                        .into_iter()
                        .find(|m| m.key() == key)
                        .ok_or_else(|| format!("unknown metric {key:?}"))?;
                    options.only.push(metric);
                }
            }
            "--services" => {
                let n = args.next().ok_or("--services needs a number")?;
                options.fleet_size = n
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| format!("--services: not a positive number: {n}"))?;
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if options.only.is_empty() {
        options.only = Metric::ALL.to_vec();
    }
    Ok(options)
}

fn main() {
    let options = match parse_options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("runtree-bench: {message}\n{USAGE}");
            std::process::exit(100);
        }
    };
    if let Err(message) = cleanup::install() {
        eprintln!("runtree-bench: {message}");
        std::process::exit(111);
    }
    let code = match run(&options) {
        Ok(()) => 0,
        Err(message) => {
            eprintln!("runtree-bench: {message}");
            1
        }
    };
    cleanup::cleanup();
    std::process::exit(code);
}

fn run(options: &Options) -> Result<(), String> {
    let runtree_bin = runtree::binary_dir();
    let runtree_build = if options.build {
        build_runtree(&runtree_bin)
    } else {
        None
    };
    let work = make_work_dir()?;
    cleanup::set_work_dir(work.clone());

    print_header(options, &runtree_bin);

    let mut suites: Vec<Suite> = Kind::ALL
        .into_iter()
        .map(|kind| Suite::new(kind, &runtree_bin, &work))
        .collect();
    for suite in &mut suites {
        if suite.kind == Kind::Runtree && suite.unavailable.is_none() {
            suite.unavailable = runtree_build.clone();
        }
        if suite.unavailable.is_none() {
            if let Err(reason) = metrics::probe(suite) {
                suite.unavailable = Some(format!(
                    "{} does not run a service: {reason}",
                    suite.supervisor_name()
                ));
            }
        }
        if let Some(reason) = &suite.unavailable {
            println!("{}: n/a: {reason}", suite.name());
        }
    }
    let all: Vec<&Suite> = suites.iter().collect();
    let (iterations, samples) = if options.quick { (3, 4) } else { (15, 16) };
    let wanted = |metric| options.only.contains(&metric);
    let mut rows: Vec<(Metric, Vec<(Kind, Cell)>)> = Vec::new();

    if wanted(Metric::Restart) {
        progress("measuring restart latency");
        rows.push((Metric::Restart, metrics::restart_latency(&all, iterations)));
    }
    if wanted(Metric::Control) {
        progress("measuring the control round trip");
        rows.push((
            Metric::Control,
            metrics::control_round_trip(&all, iterations),
        ));
    }
    if wanted(Metric::Memory) || wanted(Metric::Status) {
        let size = if wanted(Metric::Status) {
            options.fleet_size
        } else {
            samples
        };
        let available: Vec<&Suite> = all
            .iter()
            .copied()
            .filter(|s| s.unavailable.is_none())
            .collect();
        // Two processes per service (supervisor and `sleep`); all suites at once when
        // the machine allows it, so that their status runs can be interleaved.
        let together = process_headroom() >= available.len() * size * 2 + 200;
        let groups: Vec<Vec<&Suite>> = if together {
            vec![all.clone()]
        } else {
            println!(
                "not enough free pids for {} services of every suite at once: \
                 one suite at a time (status runs not interleaved across suites)",
                size
            );
            all.iter().map(|&s| vec![s]).collect()
        };
        let mut memory = Vec::new();
        let mut status = Vec::new();
        for group in groups {
            progress(&format!("starting {size} services per suite"));
            let fleet = Fleet::start(&group, size);
            if wanted(Metric::Memory) {
                progress("measuring idle supervisor memory");
                memory.extend(fleet.private_dirty(&group, samples.min(size)));
            }
            if wanted(Metric::Status) {
                progress(&format!("measuring the status of {size} services"));
                status.extend(fleet.status_all(&group, iterations));
            }
            cleanup::stop_supervisors(&fleet.supervisors(), Duration::from_secs(10));
        }
        if wanted(Metric::Memory) {
            rows.push((Metric::Memory, memory));
        }
        if wanted(Metric::Status) {
            rows.push((Metric::Status, status));
        }
    }
    // Stop everything before printing: the table is the last thing the bench does.
    cleanup::cleanup();
    rows.sort_by_key(|(metric, _)| Metric::ALL.iter().position(|m| m == metric));
    print_table(&rows, options.fleet_size);
    Ok(())
}

fn progress(what: &str) {
    eprintln!("runtree-bench: {what}…");
}

/// When started by `cargo run`, makes sure runtree's runsv and sv next to the bench are
/// built from the current sources with the same profile (`cargo run --bin` builds only
/// the bench itself). Returns why runtree cannot be measured, if the build failed.
fn build_runtree(bin_dir: &Path) -> Option<String> {
    let cargo = std::env::var_os("CARGO")?;
    if std::env::var_os("RUNTREE_BIN_DIR").is_some() {
        return None;
    }
    let profile = bin_dir.file_name()?.to_str()?;
    let mut command = Command::new(cargo);
    command
        .args(["build", "--quiet", "-p", "runsv", "-p", "sv", "--bins"])
        .arg("--manifest-path")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"));
    match profile {
        "release" => command.arg("--release"),
        "debug" => &mut command,
        _ => return None,
    };
    eprintln!("runtree-bench: building runtree's runsv and sv ({profile})…");
    match command.status() {
        Ok(status) if status.success() => None,
        Ok(status) => Some(format!("cargo build of runsv and sv failed ({status})")),
        Err(e) => Some(format!("cannot run cargo: {e}")),
    }
}

fn make_work_dir() -> Result<PathBuf, String> {
    let base = std::env::temp_dir();
    for attempt in 0..100 {
        let dir = base.join(format!("runtree-bench.{}.{attempt}", std::process::id()));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(format!("{}: {e}", dir.display())),
        }
    }
    Err(format!("no free work directory in {}", base.display()))
}

/// How many more processes this user may start: the smallest of the kernel's pid and
/// thread limits and RLIMIT_NPROC, less what runs now.
fn process_headroom() -> usize {
    let read =
        |path: &str| -> Option<usize> { std::fs::read_to_string(path).ok()?.trim().parse().ok() };
    let running = std::fs::read_dir("/proc")
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| {
                    e.file_name()
                        .to_str()
                        .is_some_and(|n| n.parse::<u32>().is_ok())
                })
                .count()
        })
        .unwrap_or(0);
    let mut rlimit = nix::libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    let nproc = if unsafe { nix::libc::getrlimit(nix::libc::RLIMIT_NPROC, &mut rlimit) } == 0 {
        usize::try_from(rlimit.rlim_cur).unwrap_or(usize::MAX)
    } else {
        usize::MAX
    };
    let limit = [
        read("/proc/sys/kernel/pid_max"),
        read("/proc/sys/kernel/threads-max"),
        Some(nproc),
    ]
    .into_iter()
    .flatten()
    .min()
    .unwrap_or(usize::MAX);
    limit.saturating_sub(running)
}

fn print_header(options: &Options, runtree_bin: &Path) {
    let command_line: Vec<String> = std::env::args().collect();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("runtree-bench: {}", command_line.join(" "));
    println!("machine: nproc {cores}, kernel {}, {cpu}", kernel.trim());
    println!(
        "suites: runit {}, s6 {}, runtree {}",
        package_version("runit"),
        package_version("s6"),
        runtree_bin.display()
    );
    if options.quick {
        println!("--quick: 3 iterations (4 memory samples) per suite: a smoke test, not a result");
    }
    println!();
}

fn package_version(package: &str) -> String {
    Command::new("dpkg-query")
        .args(["-W", "-f", "${Version}", package])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
        .unwrap_or_else(|| "(version unknown)".into())
}

/// `12.3` with as many decimals as the magnitude deserves.
fn number(value: f64) -> String {
    if value < 10.0 {
        format!("{value:.2}")
    } else if value < 100.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.0}")
    }
}

fn print_table(rows: &[(Metric, Vec<(Kind, Cell)>)], fleet_size: usize) {
    // Reasons for `n/a` go under the table as numbered notes, so that the table stays
    // readable; the same reason gets the same number.
    let mut notes: Vec<String> = Vec::new();
    let mut note = |reason: &str| {
        let index = match notes.iter().position(|n| n == reason) {
            Some(index) => index,
            None => {
                notes.push(reason.to_string());
                notes.len() - 1
            }
        };
        format!("[{}]", index + 1)
    };
    let mut table: Vec<[String; 6]> = vec![[
        "metric".into(),
        "runit".into(),
        "s6".into(),
        "runtree".into(),
        "goal".into(),
        "met?".into(),
    ]];
    for (metric, cells) in rows {
        let unit = metric.unit();
        let median_of = |kind: Kind| {
            cells
                .iter()
                .find(|(k, _)| *k == kind)
                .and_then(|(_, cell)| cell.as_ref().ok())
                .and_then(|samples| summary(&samples.values))
                .map(|(median, _, _)| median)
        };
        let mut text_of = |kind: Kind| match cells.iter().find(|(k, _)| *k == kind) {
            Some((_, Ok(samples))) => match summary(&samples.values) {
                Some((median, min, max)) => {
                    let mut text = format!(
                        "{} {unit} ({}–{}, n={})",
                        number(median),
                        number(min),
                        number(max),
                        samples.values.len()
                    );
                    for (warning, rounds) in &samples.warnings {
                        let marker = note(&format!(
                            "{}: {warning} (in {rounds} of {} rounds)",
                            kind.name(),
                            samples.values.len()
                        ));
                        text.push(' ');
                        text.push_str(&marker);
                    }
                    text
                }
                None => format!("n/a {}", note("no samples")),
            },
            Some((_, Err(reason))) => format!("n/a {}", note(reason)),
            None => format!("n/a {}", note("not measured")),
        };
        let (goal, met) = match metric.goal() {
            Goal::NoMoreThanRunit => (
                "≤ runit".to_string(),
                match (median_of(Kind::Runtree), median_of(Kind::Runit)) {
                    (Some(ours), Some(theirs)) => verdict(ours <= theirs),
                    _ => "n/a".into(),
                },
            ),
            Goal::AtMost(limit) => (
                format!("≤ {} {unit}", number(limit)),
                match median_of(Kind::Runtree) {
                    Some(ours) => verdict(ours <= limit),
                    None => "n/a".into(),
                },
            ),
        };
        table.push([
            metric.title(fleet_size),
            text_of(Kind::Runit),
            text_of(Kind::S6),
            text_of(Kind::Runtree),
            goal,
            met,
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|c| {
            table
                .iter()
                .map(|row| row[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for (i, row) in table.iter().enumerate() {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, &width)| format!("{cell:<width$}"))
            .collect();
        println!("| {} |", cells.join(" | "));
        if i == 0 {
            let rule: Vec<String> = widths.iter().map(|&w| "-".repeat(w)).collect();
            println!("|-{}-|", rule.join("-|-"));
        }
    }
    println!("\nmedian (min–max, n = samples); medians are compared with the goal.");
    for (i, reason) in notes.iter().enumerate() {
        println!("[{}] {reason}", i + 1);
    }
}

fn verdict(met: bool) -> String {
    if met { "yes" } else { "NO" }.into()
}
