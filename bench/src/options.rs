//! The command line: which metrics to run, and how long and how often.

use crate::tree;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
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
    /// Opt-in (`--only boot`): boots a Debian VM nine times, tens of minutes.
    Boot,
    Container,
    Cgroups,
}

/// What a metric runs on (see [`Metric::runs`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runs {
    Supervisor,
    Scanner,
    Itself,
}

impl Metric {
    pub const ALL: [Metric; 15] = [
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
        Metric::Container,
        Metric::Cgroups,
    ];

    /// What the metric runs on: a probed supervisor, a scanner and its tree, or its own.
    pub fn runs(self) -> Runs {
        match self {
            Metric::Memory | Metric::Restart | Metric::Control | Metric::Status => Runs::Supervisor,
            Metric::Bringup
            | Metric::Sync
            | Metric::Chain
            | Metric::Idle
            | Metric::Respawn
            | Metric::Stop
            | Metric::Storm => Runs::Scanner,
            // The flood probes its own supervisors; logging runs the loggers alone; boot
            // and container run whole machines and containers, cgroups its own trees.
            Metric::Flood
            | Metric::Logging
            | Metric::Boot
            | Metric::Container
            | Metric::Cgroups => Runs::Itself,
        }
    }

    /// The name `--only` takes.
    pub fn key(self) -> &'static str {
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
            Metric::Boot => "boot",
            Metric::Container => "container",
            Metric::Cgroups => "cgroups",
        }
    }
}

/// How long and how often the scanner metrics run.
pub struct TreePlan {
    /// `--quick`: a smoke test of the harness.
    pub quick: bool,
    pub fleet_size: usize,
    pub fleet_rounds: usize,
    /// Between the bring-up and the stop request.
    pub fleet_settle: Duration,
    pub sync_rounds: usize,
    pub sync_timeout: Duration,
    pub chain_length: usize,
    pub chain_rounds: usize,
    pub idle_services: usize,
    pub idle_rounds: usize,
    pub idle_window: Duration,
    pub respawn_rounds: usize,
    pub storm_services: usize,
    pub storm_window: Duration,
    pub storm_settle: Duration,
}

impl TreePlan {
    pub fn new(options: &Options) -> TreePlan {
        let size = options.fleet_size.min(tree::MAX_FLEET);
        if options.quick {
            TreePlan {
                quick: true,
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
                quick: false,
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

pub struct Options {
    pub quick: bool,
    pub only: Vec<Metric>,
    pub fleet_size: usize,
    pub build: bool,
}

pub const USAGE: &str = "\
usage: runtree-bench [--quick] [--only METRIC[,METRIC…]] [--services N] [--no-build]

Measures runit, s6 and runtree side by side (interleaved) and prints a table.
  --quick          fewer iterations: a smoke test of the harness, not a result
  --only METRICS   memory, restart, control, status (supervisors);
                   flood (runtree's control round trip under an output flood);
                   bringup, sync, chain, idle, respawn, stop, storm (scanners);
                   logging (log throughput);
                   boot (a Debian VM booted by systemd, runit and runtree, 3 times
                   each: as root, tens of minutes; only when named)
                   container (runtree beside tini as a podman container's PID 1)
                   cgroups (runtree with cgroups on against off; root)
                   (comma-separated or repeated)
  --services N     how many services for `status`, `bringup` and `stop` (default 1000;
                   at most 1000 for the scanners, 100 with --quick)
  --no-build       do not build runtree's runsv, sv and svdir first (they are built
                   when the bench was started by `cargo run`)
runtree's binaries: next to this program, or RUNTREE_BIN_DIR. See docs/bench.md.";

pub fn parse_options() -> Result<Options, String> {
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
                        .chain([Metric::Boot])
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

/// Lines per turn, rounds (a multiple of the 4 cases, so that each holds each place in
/// a round equally often), and the longest a turn may take.
pub fn log_plan(quick: bool) -> (usize, usize, Duration) {
    if quick {
        (100_000, 4, Duration::from_secs(30))
    } else {
        (1_000_000, 8, Duration::from_secs(120))
    }
}
