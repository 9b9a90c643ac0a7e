//! A crash storm (`storm`): the machine's CPU while services keep exiting at once.

use crate::interleave::Turn;
use crate::options::{Metric, TreePlan};
use crate::proc;
use crate::table::{Goal, Row};
use crate::tree::{age, interleave, Definition, Measured, ScanSuite};
use std::time::Duration;

/// `size` services whose `run` exits 1 at once, forever, under each scanner in turn
/// (one storm at a time: two would fight over the CPU). After `settle`, the CPU time
/// (ms) the whole machine spent over `window` (busy time of /proc/stat, all CPUs): the
/// tree, the crashing services and their restarts. Per-process accounting is counted in
/// 10 ms ticks and a supervisor that restarts a service now and then uses less than a
/// tick, so it reads 0; the machine's total is sampled at every tick and adds up. What
/// keeps it low is the restart delay: runit and s6 restart after a fixed second,
/// runtree's delay grows (1 s doubling to 60 s by default).
pub fn crash_storm(
    suites: &[&ScanSuite],
    size: usize,
    window: Duration,
    settle: Duration,
) -> Measured {
    // One round: every suite once, in column order.
    let (cells, _) = interleave(
        suites,
        1,
        1,
        |_| Ok(()),
        |suite, ()| vec![storm_turn(suite, size, window, settle).map(Turn::from)],
    );
    Measured {
        cells,
        notes: Vec::new(),
    }
}

fn storm_turn(
    suite: &ScanSuite,
    size: usize,
    window: Duration,
    settle: Duration,
) -> Result<f64, String> {
    let dir = suite
        .fresh_dir("storm")
        .map_err(|e| format!("creating the scan directory: {e}"))?;
    for i in 0..size {
        let name = format!("crash-{i:04}");
        suite
            .create_service(&dir, &name, Definition::Crash)
            .map_err(|e| format!("creating {name}: {e}"))?;
    }
    age(&dir)?;
    let tree = suite
        .start(&dir)
        .map_err(|e| format!("starting {}: {e}", suite.scanner.scanner_name()))?;
    std::thread::sleep(settle);
    let before = proc::machine_busy_ticks()?;
    std::thread::sleep(window);
    if !tree.alive() {
        return Err(tree.died());
    }
    let ticks = proc::machine_busy_ticks()?.saturating_sub(before);
    Ok(ticks as f64 * 1000.0 / proc::clock_ticks_per_second())
}

/// The row of `storm`.
pub fn rows(suites: &[&ScanSuite], plan: &TreePlan) -> Vec<(Metric, Row)> {
    crate::progress(&format!(
        "measuring a crash storm of {} services, one suite at a time",
        plan.storm_services
    ));
    let Measured { mut cells, notes } = crash_storm(
        suites,
        plan.storm_services,
        plan.storm_window,
        plan.storm_settle,
    );
    vec![(
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
    )]
}
