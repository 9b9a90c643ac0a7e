//! The control round trip while a service floods its output, against the idle round
//! trip, in one run: runtree's runsv must answer `sv` as fast whatever its service
//! writes (issue #12; goal: at most twice the idle round trip).
//!
//! Two services under runtree's runsv: `sleep` (idle) and `yes` (the flood, through the
//! kmsg relay, which costs runsv one record per two bytes; `RUNTREE_KMSG=/dev/null`
//! keeps it out of the host's kernel log). Each round times `sv -w 7 down` then
//! `sv -w 7 up` on both, alternating which goes first; the ratio is taken per round,
//! so that whatever else the machine does falls on both sides of it alike.

use crate::cleanup;
use crate::command::run_timed;
use crate::interleave::{interleave, Cell, Order, Samples, Turn};
use crate::options::Metric;
use crate::suite::Kind;
use crate::table::{Goal, Row};
use std::cell::RefCell;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub struct Flood {
    pub idle: Cell,
    pub flooding: Cell,
    /// flooding ÷ idle, per round.
    pub ratio: Cell,
}

pub fn round_trips(runtree_bin: &Path, work: &Path, rounds: usize) -> Flood {
    match measure(runtree_bin, work, rounds) {
        Ok((idle, flooding)) => {
            let ratio = idle.iter().zip(&flooding).map(|(i, f)| f / i).collect();
            let cell = |values| {
                Ok(Samples {
                    values,
                    warnings: Vec::new(),
                })
            };
            Flood {
                idle: cell(idle),
                flooding: cell(flooding),
                ratio: cell(ratio),
            }
        }
        Err(reason) => Flood {
            idle: Err(reason.clone()),
            flooding: Err(reason.clone()),
            ratio: Err(reason),
        },
    }
}

fn measure(runtree_bin: &Path, work: &Path, rounds: usize) -> Result<(Vec<f64>, Vec<f64>), String> {
    let root = work.join("flood");
    let sv = runtree_bin.join("sv");
    // The first failure ends the whole measurement: the rows compare the two services.
    let failed: RefCell<Option<String>> = RefCell::new(None);
    let fail = |reason: String| failed.borrow_mut().get_or_insert(reason).clone();
    let (mut cells, _) = interleave(
        &[
            ("idle", "exec: sleep 100000\n"),
            ("flooding", "exec: yes\n"),
        ],
        rounds,
        1,
        Order::Rotate,
        |(name, yaml)| {
            let earlier = failed.borrow().clone();
            match earlier {
                Some(reason) => Err(reason),
                None => start(runtree_bin, &root, name, yaml).map_err(fail),
            }
        },
        |_, dir| {
            let earlier = failed.borrow().clone();
            match earlier {
                Some(reason) => vec![Err(reason)],
                None => vec![down_then_up(&sv, dir).map(Turn::from).map_err(fail)],
            }
        },
    );
    if let Some(reason) = failed.into_inner() {
        return Err(reason);
    }
    let mut values = cells
        .pop()
        .unwrap_or_default()
        .into_iter()
        .map(|(_, cell)| cell.map(|samples| samples.values).unwrap_or_default());
    let idle = values.next().unwrap_or_default();
    let flooding = values.next().unwrap_or_default();
    Ok((idle, flooding))
}

/// A YAML service `name` under its own runsv, once it runs.
fn start(runtree_bin: &Path, root: &Path, name: &str, yaml: &str) -> Result<PathBuf, String> {
    let dir = root.join(name);
    fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    fs::write(dir.join("service.yaml"), yaml).map_err(|e| format!("writing {name}: {e}"))?;
    let child = crate::suite::start_runsv(runtree_bin, &dir, ("RUNTREE_KMSG", "/dev/null"))
        .map_err(|e| format!("starting runsv: {e}"))?;
    // Dropping the Child neither kills nor reaps it: cleanup owns it from here.
    cleanup::register_supervisor(nix::unistd::Pid::from_raw(child.id() as i32));
    let running = runtree::wait_state(&dir, Duration::from_secs(5), |s| {
        s.state == runsv::supervise::ServiceState::Running
    });
    running
        .map(|_| dir)
        .ok_or_else(|| format!("{name} did not come up under runsv"))
}

/// `sv -w 7 down` then `sv -w 7 up`, in milliseconds.
fn down_then_up(sv: &Path, dir: &Path) -> Result<f64, String> {
    let mut total = Duration::ZERO;
    for verb in ["down", "up"] {
        let mut command = Command::new(sv);
        command
            .args(["-w", "7", verb])
            .arg(dir)
            .env_remove("SVWAIT");
        let ran = run_timed(&mut command, Duration::from_secs(20))?;
        if !ran.status.success() {
            return Err(format!(
                "`sv -w 7 {verb}` failed ({}): {}",
                ran.status,
                ran.stdout.trim()
            ));
        }
        total += ran.elapsed;
    }
    Ok(total.as_secs_f64() * 1000.0)
}

/// The three rows of `flood` (`runtree_unavailable`: why runtree cannot be measured).
pub fn rows(
    runtree_bin: &Path,
    runtree_unavailable: Option<String>,
    work: &Path,
    rounds: usize,
) -> Vec<(Metric, Row)> {
    crate::progress("measuring the control round trip under an output flood");
    let Flood {
        idle,
        flooding,
        ratio,
    } = match runtree_unavailable {
        Some(reason) => Flood {
            idle: Err(reason.clone()),
            flooding: Err(reason.clone()),
            ratio: Err(reason),
        },
        None => round_trips(runtree_bin, work, rounds),
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
