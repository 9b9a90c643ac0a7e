//! `runtree-bench`: measures runtree's supervisor, control tool and scanner side by side
//! with Debian's runit and s6 (and, for whole trees, daemontools), in one run on the same
//! machine, and prints a table. What each metric measures, and why the comparison is
//! fair: docs/bench.md. The supervisor metrics are in bench/metrics.rs, the scanner
//! metrics in bench/tree.rs, the log throughput in bench/logging.rs.
//!
//! ```text
//! cargo run --release --bin runtree-bench [-- --quick] [-- --only restart,control]
//! ```

mod cleanup;
mod flood;
mod logging;
mod metrics;
mod suite;
mod svlogd;
mod tree;

use metrics::{summary, Cell, Fleet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use suite::{Kind, Suite};
use tree::{number, Measured, ScanSuite, Scanner};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Metric {
    Memory,
    Restart,
    Control,
    Flood,
    Status,
    Bringup,
    Sync,
    Chain,
    Idle,
    Respawn,
    Stop,
    Storm,
    Logging,
}

impl Metric {
    const ALL: [Metric; 13] = [
        Metric::Memory,
        Metric::Restart,
        Metric::Control,
        Metric::Flood,
        Metric::Status,
        Metric::Bringup,
        Metric::Sync,
        Metric::Chain,
        Metric::Idle,
        Metric::Respawn,
        Metric::Stop,
        Metric::Storm,
        Metric::Logging,
    ];

    /// The name `--only` takes.
    fn key(self) -> &'static str {
        match self {
            Metric::Memory => "memory",
            Metric::Restart => "restart",
            Metric::Control => "control",
            Metric::Flood => "flood",
            Metric::Status => "status",
            Metric::Bringup => "bringup",
            Metric::Sync => "sync",
            Metric::Chain => "chain",
            Metric::Idle => "idle",
            Metric::Respawn => "respawn",
            Metric::Stop => "stop",
            Metric::Storm => "storm",
            Metric::Logging => "logging",
        }
    }
}

/// What a row's `met?` compares runtree's median with.
enum Goal {
    NoMoreThanRunit,
    /// No goal: the row is for information.
    Information,
    AtMost(f64),
    /// None at all (a count).
    Zero,
    /// At most this fraction of the best (smallest) median among the other columns.
    FractionOfBestPeer(f64),
}

/// A table column: the three suites, and daemontools where its scanner is compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Column {
    Runit,
    S6,
    Runtree,
    Daemontools,
}

impl Column {
    const ALL: [Column; 4] = [
        Column::Runit,
        Column::S6,
        Column::Runtree,
        Column::Daemontools,
    ];

    fn name(self) -> &'static str {
        match self {
            Column::Runit => "runit",
            Column::S6 => "s6",
            Column::Runtree => "runtree",
            Column::Daemontools => "daemontools",
        }
    }
}

impl From<Kind> for Column {
    fn from(kind: Kind) -> Column {
        match kind {
            Kind::Runit => Column::Runit,
            Kind::S6 => Column::S6,
            Kind::Runtree => Column::Runtree,
        }
    }
}

impl From<Scanner> for Column {
    fn from(scanner: Scanner) -> Column {
        match scanner {
            Scanner::Runit => Column::Runit,
            Scanner::S6 => Column::S6,
            Scanner::Runtree => Column::Runtree,
            Scanner::Daemontools => Column::Daemontools,
        }
    }
}

/// One line of the table.
struct Row {
    title: String,
    /// "ms", "KiB", or "" for counts.
    unit: &'static str,
    goal: Goal,
    cells: Vec<(Column, Cell)>,
    /// What an infinite sample stands for: a wait that timed out after this long.
    timeout: Option<Duration>,
    /// Notes attached to a column's cell.
    notes: Vec<(Column, String)>,
}

impl Row {
    fn new(title: String, unit: &'static str, goal: Goal) -> Row {
        Row {
            title,
            unit,
            goal,
            cells: Vec::new(),
            timeout: None,
            notes: Vec::new(),
        }
    }

    fn suites(mut self, cells: Vec<(Kind, Cell)>) -> Row {
        self.cells = cells.into_iter().map(|(k, c)| (k.into(), c)).collect();
        self
    }

    fn scanners(mut self, cells: Vec<(Scanner, Cell)>, notes: &[(Scanner, String)]) -> Row {
        self.cells = cells.into_iter().map(|(s, c)| (s.into(), c)).collect();
        self.notes = notes
            .iter()
            .map(|(s, text)| ((*s).into(), text.clone()))
            .collect();
        self
    }
}

/// How long and how often the scanner metrics run.
struct TreePlan {
    fleet_size: usize,
    fleet_rounds: usize,
    /// Between the bring-up and the stop request.
    fleet_settle: Duration,
    sync_rounds: usize,
    sync_timeout: Duration,
    chain_length: usize,
    chain_rounds: usize,
    idle_services: usize,
    idle_rounds: usize,
    idle_window: Duration,
    respawn_rounds: usize,
    storm_services: usize,
    storm_window: Duration,
    storm_settle: Duration,
}

impl TreePlan {
    fn new(options: &Options) -> TreePlan {
        let size = options.fleet_size.min(tree::MAX_FLEET);
        if options.quick {
            TreePlan {
                fleet_size: size.min(100),
                fleet_rounds: 1,
                fleet_settle: Duration::from_millis(300),
                sync_rounds: 1,
                // runsvdir's 5 s poll plus its one-second same-second guard.
                sync_timeout: Duration::from_secs(6),
                chain_length: 20,
                chain_rounds: 1,
                idle_services: 100,
                idle_rounds: 1,
                idle_window: Duration::from_secs(2),
                respawn_rounds: 1,
                storm_services: 50,
                storm_window: Duration::from_secs(2),
                storm_settle: Duration::from_secs(1),
            }
        } else {
            TreePlan {
                fleet_size: size,
                fleet_rounds: 4,
                fleet_settle: Duration::from_secs(1),
                sync_rounds: 6,
                sync_timeout: Duration::from_secs(10),
                chain_length: 20,
                chain_rounds: 6,
                idle_services: 100,
                idle_rounds: 3,
                idle_window: Duration::from_secs(10),
                respawn_rounds: 6,
                storm_services: 200,
                storm_window: Duration::from_secs(20),
                storm_settle: Duration::from_secs(5),
            }
        }
    }
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
  --only METRICS   memory, restart, control, status (supervisors);
                   flood (runtree's control round trip under an output flood);
                   bringup, sync, chain, idle, respawn, stop, storm (scanners);
                   logging (log throughput)
                   (comma-separated or repeated)
  --services N     how many services for `status`, `bringup` and `stop` (default 1000;
                   at most 1000 for the scanners, 100 with --quick)
  --no-build       do not build runtree's runsv, sv and svdir first (they are built
                   when the bench was started by `cargo run`)
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
    let (runtree_bin, runtree_build, svdir_build) = if options.build {
        build_runtree(&runtree::binary_dir())
    } else {
        (runtree::binary_dir(), None, None)
    };
    let raised = tree::raise_limits();
    let work = make_work_dir()?;
    cleanup::set_work_dir(work.clone());

    let plan = TreePlan::new(options);
    print_header(options, &runtree_bin, &plan, &raised);

    let wanted = |metric| options.only.contains(&metric);
    let supervisor_metrics = [
        Metric::Memory,
        Metric::Restart,
        Metric::Control,
        Metric::Status,
    ];
    let scanner_metrics = [
        Metric::Bringup,
        Metric::Sync,
        Metric::Chain,
        Metric::Idle,
        Metric::Respawn,
        Metric::Stop,
        Metric::Storm,
    ];

    let mut suites: Vec<Suite> = Kind::ALL
        .into_iter()
        .map(|kind| Suite::new(kind, &runtree_bin, &work))
        .collect();
    for suite in &mut suites {
        if suite.kind == Kind::Runtree && suite.unavailable.is_none() {
            suite.unavailable = runtree_build.clone();
        }
        // A probe costs a second or so; only when a supervisor metric will run.
        if suite.unavailable.is_none() && supervisor_metrics.into_iter().any(wanted) {
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
    let mut scan_suites: Vec<ScanSuite> = Vec::new();
    if scanner_metrics.into_iter().any(wanted) {
        for scanner in Scanner::ALL {
            let mut suite = ScanSuite::new(scanner, &runtree_bin, &work);
            if scanner == Scanner::Runtree && suite.unavailable.is_none() {
                suite.unavailable = runtree_build.clone().or(svdir_build.clone());
            }
            if suite.unavailable.is_none() {
                if let Err(reason) = tree::probe(&suite) {
                    suite.unavailable = Some(reason);
                }
            }
            if let Some(reason) = &suite.unavailable {
                println!(
                    "{} ({}): n/a: {reason}",
                    suite.name(),
                    scanner.scanner_name()
                );
            }
            scan_suites.push(suite);
        }
    }
    let all: Vec<&Suite> = suites.iter().collect();
    let (iterations, samples) = if options.quick { (3, 4) } else { (15, 16) };
    let mut rows: Vec<(Metric, Row)> = Vec::new();

    if wanted(Metric::Restart) {
        progress("measuring restart latency");
        rows.push((
            Metric::Restart,
            Row::new(
                "restart latency (SIGKILL → new process)".into(),
                "ms",
                Goal::NoMoreThanRunit,
            )
            .suites(metrics::restart_latency(&all, iterations)),
        ));
    }
    if wanted(Metric::Control) {
        progress("measuring the control round trip");
        rows.push((
            Metric::Control,
            Row::new(
                "control round trip (down -w, up -w)".into(),
                "ms",
                Goal::AtMost(10.0),
            )
            .suites(metrics::control_round_trip(&all, iterations)),
        ));
    }
    if wanted(Metric::Flood) {
        progress("measuring the control round trip under an output flood");
        rows.extend(flood_rows(
            &runtree_bin,
            runtree_build.clone(),
            &work,
            iterations,
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
            rows.push((
                Metric::Memory,
                Row::new(
                    "idle supervisor Private_Dirty (USS)".into(),
                    "KiB",
                    Goal::NoMoreThanRunit,
                )
                .suites(memory),
            ));
        }
        if wanted(Metric::Status) {
            rows.push((
                Metric::Status,
                Row::new(
                    format!("status of {} services", options.fleet_size),
                    "ms",
                    Goal::NoMoreThanRunit,
                )
                .suites(status),
            ));
        }
    }
    rows.extend(run_tree_metrics(options, &plan, &scan_suites));
    if wanted(Metric::Logging) {
        rows.extend(run_logging(
            options,
            &runtree_bin,
            runtree_build.clone(),
            &work,
        ));
    }
    // Stop everything before printing: the table is the last thing the bench does.
    cleanup::cleanup();
    rows.sort_by_key(|(metric, _)| Metric::ALL.iter().position(|m| m == metric));
    let rows: Vec<Row> = rows.into_iter().map(|(_, row)| row).collect();
    print_table(&rows);
    Ok(())
}

/// The scanner metrics (tree.rs): whole trees of runit, s6, runtree and, where its
/// peers are compared on it, daemontools.
fn run_tree_metrics(
    options: &Options,
    plan: &TreePlan,
    suites: &[ScanSuite],
) -> Vec<(Metric, Row)> {
    let wanted = |metric| options.only.contains(&metric);
    let with_daemontools: Vec<&ScanSuite> = suites.iter().collect();
    let without_daemontools: Vec<&ScanSuite> = suites
        .iter()
        .filter(|s| s.scanner != Scanner::Daemontools)
        .collect();
    let quick = if options.quick { ", --quick" } else { "" };
    let mut rows = Vec::new();

    if wanted(Metric::Bringup) || wanted(Metric::Stop) {
        let size = plan.fleet_size;
        progress(&format!(
            "measuring bring-up and stop of {size} services under each scanner"
        ));
        let (Measured { mut cells, notes }, floor) = tree::bringup_and_stop(
            &with_daemontools,
            size,
            plan.fleet_rounds,
            plan.fleet_settle,
        );
        let mut bringup_notes = notes.clone();
        if let Some((median, low, high)) = metrics::summary(&floor) {
            bringup_notes.push((
                Scanner::Daemontools,
                format!(
                    "the floor: the same {size} run scripts spawned by the bench itself, \
                     no scanner or supervisor, until all are exec'd: {} ms ({}–{}, n={})",
                    number(median),
                    number(low),
                    number(high),
                    floor.len()
                ),
            ));
        }
        let stop = cells.pop().unwrap_or_default();
        let bringup = cells.pop().unwrap_or_default();
        if wanted(Metric::Bringup) {
            rows.push((
                Metric::Bringup,
                Row::new(
                    format!("bring-up of {size} services (scanner start → all running)"),
                    "ms",
                    Goal::FractionOfBestPeer(0.7),
                )
                .scanners(bringup, &bringup_notes),
            ));
        }
        if wanted(Metric::Stop) {
            rows.push((
                Metric::Stop,
                Row::new(
                    format!("stop of {size} services (request → no service process)"),
                    "ms",
                    Goal::FractionOfBestPeer(0.8),
                )
                .scanners(stop, &notes),
            ));
        }
    }
    if wanted(Metric::Sync) {
        progress("measuring sync latency (new entry, no trigger)");
        let Measured { mut cells, notes } =
            tree::sync_latency(&without_daemontools, plan.sync_rounds, plan.sync_timeout);
        let mut row = Row::new(
            "sync: symlink into scan dir → running (no trigger)".into(),
            "ms",
            Goal::AtMost(10.0),
        )
        .scanners(cells.pop().unwrap_or_default(), &notes);
        row.timeout = Some(plan.sync_timeout);
        rows.push((Metric::Sync, row));
    }
    if wanted(Metric::Chain) {
        let length = plan.chain_length;
        progress(&format!("measuring a dependency chain of {length}"));
        let Measured { mut cells, notes } =
            tree::dependency_chain(&without_daemontools, length, plan.chain_rounds);
        let order = cells.pop().unwrap_or_default();
        let time = cells.pop().unwrap_or_default();
        rows.push((
            Metric::Chain,
            Row::new(
                format!("dependency chain of {length} (scanner start → all running)"),
                "ms",
                Goal::AtMost(100.0),
            )
            .scanners(time, &notes),
        ));
        rows.push((
            Metric::Chain,
            Row::new(
                format!(
                    "chain of {length}: started before their dependency (of {})",
                    length - 1
                ),
                "",
                Goal::Zero,
            )
            .scanners(order, &[]),
        ));
    }
    if wanted(Metric::Idle) {
        let seconds = plan.idle_window.as_secs();
        progress(&format!(
            "measuring context switches of idle trees over {seconds} s"
        ));
        let Measured { mut cells, notes } = tree::idle_switches(
            &with_daemontools,
            plan.idle_services,
            plan.idle_rounds,
            plan.idle_window,
            // daemontools' supervise sleeps a second after each start; let every
            // start-up wake-up pass before the window opens.
            if options.quick {
                Duration::from_millis(1500)
            } else {
                Duration::from_secs(2)
            },
        );
        rows.push((
            Metric::Idle,
            Row::new(
                format!(
                    "idle: context switches in {seconds} s, scanner + {} supervisors{quick}",
                    plan.idle_services
                ),
                "",
                Goal::Zero,
            )
            .scanners(cells.pop().unwrap_or_default(), &notes),
        ));
    }
    if wanted(Metric::Storm) {
        progress(&format!(
            "measuring a crash storm of {} services, one suite at a time",
            plan.storm_services
        ));
        let Measured { mut cells, notes } = tree::crash_storm(
            &without_daemontools,
            plan.storm_services,
            plan.storm_window,
            plan.storm_settle,
        );
        rows.push((
            Metric::Storm,
            Row::new(
                format!(
                    "crash storm: machine CPU in {} s, {} services exiting at once ({} s in)",
                    plan.storm_window.as_secs(),
                    plan.storm_services,
                    plan.storm_settle.as_secs()
                ),
                "ms",
                Goal::NoMoreThanRunit,
            )
            .scanners(cells.pop().unwrap_or_default(), &notes),
        ));
    }
    if wanted(Metric::Respawn) {
        progress("measuring the respawn of a killed supervisor");
        let Measured { mut cells, notes } =
            tree::supervisor_respawn(&without_daemontools, plan.respawn_rounds);
        rows.push((
            Metric::Respawn,
            Row::new(
                "respawn of a SIGKILLed supervisor".into(),
                "ms",
                Goal::AtMost(10.0),
            )
            .scanners(cells.pop().unwrap_or_default(), &notes),
        ));
    }
    rows
}

/// runtree's control round trip with its service idle and flooding (flood.rs).
fn flood_rows(
    runtree_bin: &Path,
    runtree_build: Option<String>,
    work: &Path,
    rounds: usize,
) -> Vec<(Metric, Row)> {
    let flood::Flood {
        idle,
        flooding,
        ratio,
    } = match runtree_build {
        Some(reason) => flood::Flood {
            idle: Err(reason.clone()),
            flooding: Err(reason.clone()),
            ratio: Err(reason),
        },
        None => flood::round_trips(runtree_bin, work, rounds),
    };
    let row = |title: &str, unit, goal, cell| {
        let row = Row::new(title.into(), unit, goal).suites(vec![(Kind::Runtree, cell)]);
        (Metric::Flood, row)
    };
    vec![
        row(
            "control round trip, service idle (sleep)",
            "ms",
            Goal::Information,
            idle,
        ),
        row(
            "control round trip, service flooding (yes → kmsg)",
            "ms",
            Goal::Information,
            flooding,
        ),
        row(
            "flooding ÷ idle round trip, per round",
            "×",
            Goal::AtMost(2.0),
            ratio,
        ),
    ]
}

/// Log throughput (logging.rs): a million lines through a `log/` service under runit,
/// s6 and runtree, and through runtree's kmsg relay.
fn run_logging(
    options: &Options,
    runtree_bin: &Path,
    runtree_build: Option<String>,
    work: &Path,
) -> Vec<(Metric, Row)> {
    let (lines, rounds, timeout) = log_plan(options.quick);
    progress(&format!(
        "measuring log throughput: {lines} lines, {rounds} rounds"
    ));
    let logging::Logging {
        log_rate,
        kmsg_rate,
        log_cpu,
        kmsg_cpu,
    } = logging::log_throughput(
        runtree_bin,
        runtree_build.clone(),
        work,
        lines,
        rounds,
        timeout,
    );
    progress("measuring svlogd alone, runit's and runtree's");
    let svlogd =
        svlogd::svlogd_throughput(runtree_bin, runtree_build, work, lines, rounds, timeout);
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

/// Lines per turn, rounds (a multiple of the 4 cases, so that each holds each place in
/// a round equally often), and the longest a turn may take.
fn log_plan(quick: bool) -> (usize, usize, Duration) {
    if quick {
        (100_000, 4, Duration::from_secs(30))
    } else {
        (1_000_000, 8, Duration::from_secs(120))
    }
}

fn progress(what: &str) {
    eprintln!("runtree-bench: {what}…");
}

/// When started by `cargo run`, makes sure runtree's runsv, sv and svdir are built from
/// the current sources (`cargo run --bin` builds only the bench itself). A release run
/// measures the static build runtree is installed as (scripts/build-static: static,
/// non-PIE, so no dynamic loader and no relocated pages per process), in
/// target/TRIPLE/release; a debug run, the debug binaries beside the bench. Returns the
/// directory, why runtree cannot be measured at all, and why its scanner cannot, if a
/// build failed: svdir is built on its own, so that a scanner that does not compile
/// leaves the supervisor metrics measurable.
fn build_runtree(bin_dir: &Path) -> (PathBuf, Option<String>, Option<String>) {
    let unchanged = (bin_dir.to_path_buf(), None, None);
    let Some(cargo) = std::env::var_os("CARGO") else {
        return unchanged;
    };
    if std::env::var_os("RUNTREE_BIN_DIR").is_some() {
        return unchanged;
    }
    let Some(profile) = bin_dir.file_name().and_then(|p| p.to_str()) else {
        return unchanged;
    };
    if profile != "release" && profile != "debug" {
        return unchanged;
    }
    let triple = runtree::static_target();
    let (target_dir, built_dir) = match (profile, bin_dir.parent()) {
        ("release", Some(target_dir)) => (
            target_dir.to_path_buf(),
            target_dir.join(&triple).join("release"),
        ),
        _ => (PathBuf::new(), bin_dir.to_path_buf()),
    };
    let static_build = profile == "release" && !target_dir.as_os_str().is_empty();
    let build = |packages: &[&str]| -> Option<String> {
        let mut command = Command::new(&cargo);
        command.args(["build", "--quiet"]);
        for package in packages {
            command.args(["-p", package]);
        }
        command
            .arg("--bins")
            .arg("--manifest-path")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml"));
        if profile == "release" {
            command.arg("--release");
        }
        if static_build {
            // With an explicit --target, RUSTFLAGS reach only the target's crates, not
            // build scripts and proc-macros (which cannot be static).
            command
                .args(["--target", &triple])
                .arg("--target-dir")
                .arg(&target_dir)
                .env("RUSTFLAGS", STATIC_RUSTFLAGS)
                .env_remove("CARGO_ENCODED_RUSTFLAGS");
        }
        eprintln!(
            "runtree-bench: building runtree's {} ({profile}{})…",
            packages.join(", "),
            if static_build { ", static" } else { "" }
        );
        match command.status() {
            Ok(status) if status.success() => None,
            Ok(status) => Some(format!(
                "cargo build of {} failed ({status})",
                packages.join(" and ")
            )),
            Err(e) => Some(format!("cannot run cargo: {e}")),
        }
    };
    let supervisors = build(&["runsv", "sv"]);
    let scanner = build(&["svdir"]);
    (built_dir, supervisors, scanner)
}

/// The flags of scripts/build-static.
const STATIC_RUSTFLAGS: &str = "-C target-feature=+crt-static -C relocation-model=static";

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

fn print_header(options: &Options, runtree_bin: &Path, plan: &TreePlan, raised: &[String]) {
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
        "suites: runit {}, s6 {}, daemontools {}, runtree {}",
        package_version("runit"),
        package_version("s6"),
        package_version("daemontools"),
        runtree_bin.display()
    );
    if !raised.is_empty() {
        println!(
            "soft limits raised to the hard limits: {}",
            raised.join(", ")
        );
    }
    if options.quick {
        println!(
            "--quick: 3 iterations (4 memory samples) per suite; scanners: 1 round, \
             {} services for bring-up and stop, {} s idle window, {} s sync timeout; \
             log throughput: {} lines, {} rounds: a smoke test, not a result",
            plan.fleet_size,
            plan.idle_window.as_secs(),
            plan.sync_timeout.as_secs(),
            log_plan(true).0,
            log_plan(true).1
        );
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

/// A value of a row: a count without decimals, an infinite sample as `>TIMEOUT`.
fn value_text(value: f64, row: &Row) -> String {
    if value.is_infinite() {
        return match row.timeout {
            Some(timeout) => format!(">{} s", timeout.as_secs()),
            None => "∞".into(),
        };
    }
    if row.unit.is_empty() && value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        number(value)
    }
}

fn median_of(row: &Row, column: Column) -> Option<f64> {
    row.cells
        .iter()
        .find(|(c, _)| *c == column)
        .and_then(|(_, cell)| cell.as_ref().ok())
        .and_then(|samples| summary(&samples.values))
        .map(|(median, _, _)| median)
}

fn print_table(rows: &[Row]) {
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
    // daemontools gets a column only when a row measured it.
    let columns: Vec<Column> = Column::ALL
        .into_iter()
        .filter(|&column| {
            column != Column::Daemontools
                || rows
                    .iter()
                    .any(|row| row.cells.iter().any(|(c, _)| *c == column))
        })
        .collect();
    let mut header = vec!["metric".to_string()];
    header.extend(columns.iter().map(|c| c.name().to_string()));
    header.extend(["goal".to_string(), "met?".to_string()]);
    let mut table: Vec<Vec<String>> = vec![header];
    for row in rows {
        let unit = if row.unit.is_empty() {
            String::new()
        } else {
            format!(" {}", row.unit)
        };
        let mut text_of = |column: Column| {
            let mut text = match row.cells.iter().find(|(c, _)| *c == column) {
                Some((_, Ok(samples))) => match summary(&samples.values) {
                    Some((median, min, max)) => {
                        let n = samples.values.len();
                        let mut text = if min.is_infinite() {
                            format!("{} (n={n}, all timed out)", value_text(median, row))
                        } else {
                            // A timed-out median carries no unit: `>10 s`.
                            let median_unit = if median.is_finite() {
                                unit.as_str()
                            } else {
                                ""
                            };
                            format!(
                                "{}{median_unit} ({}–{}, n={n})",
                                value_text(median, row),
                                value_text(min, row),
                                value_text(max, row),
                            )
                        };
                        for (warning, rounds) in &samples.warnings {
                            let marker = note(&format!(
                                "{}: {warning} (in {rounds} of {} rounds)",
                                column.name(),
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
                // Not part of this row (daemontools beside a supervisor metric, say).
                None => "—".to_string(),
            };
            for (c, extra) in &row.notes {
                if *c == column {
                    text.push(' ');
                    text.push_str(&note(&format!("{}: {extra}", column.name())));
                }
            }
            text
        };
        let mut line = vec![row.title.clone()];
        line.extend(columns.iter().map(|&c| text_of(c)));
        let ours = median_of(row, Column::Runtree);
        let (goal, met) = match row.goal {
            Goal::NoMoreThanRunit => (
                "≤ runit".to_string(),
                match (ours, median_of(row, Column::Runit)) {
                    (Some(ours), Some(theirs)) => verdict(ours <= theirs),
                    _ => "n/a".into(),
                },
            ),
            Goal::Information => ("—".to_string(), "—".to_string()),
            Goal::Zero => (
                "= 0".to_string(),
                ours.map_or("n/a".into(), |ours| verdict(ours == 0.0)),
            ),
            Goal::AtMost(limit) => (
                format!("≤ {}{unit}", number(limit)),
                ours.map_or("n/a".into(), |ours| verdict(ours <= limit)),
            ),
            Goal::FractionOfBestPeer(fraction) => {
                let best = columns
                    .iter()
                    .filter(|&&c| c != Column::Runtree)
                    .filter_map(|&c| median_of(row, c))
                    .min_by(f64::total_cmp);
                (
                    format!("≤ {fraction}× best peer"),
                    match (ours, best) {
                        (Some(ours), Some(best)) => verdict(ours <= fraction * best),
                        _ => "n/a".into(),
                    },
                )
            }
        };
        line.extend([goal, met]);
        table.push(line);
    }
    let widths: Vec<usize> = (0..table[0].len())
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
