//! Idle trees (`idle`): context switches of the scanner and its supervisors over a
//! window in which nothing happens.

use crate::interleave::{Cell, Samples};
use crate::options::{Metric, TreePlan};
use crate::proc::context_switches;
use crate::table::{Goal, Row};
use crate::tree::{start_tree, Measured, ScanSuite, Scanner, Tree};
use std::time::Duration;

/// All suites at once, `size` idle services each: for each of `rounds` windows of
/// `window`, the context switches (voluntary + non-voluntary, every thread) of the
/// scanner and of each of its children (the supervisors), from /proc/PID/task/*/status
/// at the start and at the end of the window. The suites run side by side rather than
/// in turns: an idle process switches only when it wakes itself, so the others cannot
/// add to its count, and the windows are long.
pub fn idle_switches(
    suites: &[&ScanSuite],
    size: usize,
    rounds: usize,
    window: Duration,
    settle_time: Duration,
) -> Measured {
    let mut lanes: Vec<(Scanner, Result<Tree, String>)> = suites
        .iter()
        .map(|suite| {
            let tree = match &suite.unavailable {
                Some(reason) => Err(reason.clone()),
                None => start_tree(suite, "idle", size).map(|(tree, _)| tree),
            };
            (suite.scanner, tree)
        })
        .collect();
    std::thread::sleep(settle_time);
    let mut outcomes: Vec<Cell> = lanes
        .iter()
        .map(|(_, tree)| match tree {
            Ok(_) => Ok(Samples::default()),
            Err(reason) => Err(reason.clone()),
        })
        .collect();
    for _ in 0..rounds {
        let before: Vec<Option<Vec<(u32, u64)>>> = lanes
            .iter()
            .map(|(_, tree)| tree.as_ref().ok().map(tree_switches))
            .collect();
        std::thread::sleep(window);
        for ((lane, outcome), before) in lanes.iter().zip(outcomes.iter_mut()).zip(before) {
            let (Ok(tree), Some(before)) = (&lane.1, before) else {
                continue;
            };
            if outcome.is_err() {
                continue;
            }
            if !tree.alive() {
                *outcome = Err(tree.died());
                continue;
            }
            let after = tree_switches(tree);
            let mut total = 0;
            let mut changed = after.len() != before.len();
            for (pid, count) in &before {
                match after.iter().find(|(p, _)| p == pid) {
                    Some((_, later)) => total += later.saturating_sub(*count),
                    None => changed = true,
                }
            }
            let Ok(samples) = outcome else { continue };
            samples.values.push(total as f64);
            if changed {
                let warning = format!(
                    "the set of {} processes changed during the window",
                    tree.scanner.supervisor_name()
                );
                samples.warn(warning);
            }
        }
    }
    let cells = lanes
        .iter()
        .map(|(scanner, _)| *scanner)
        .zip(outcomes)
        .collect();
    // End the trees one by one (each Drop stops its tree).
    lanes.clear();
    Measured {
        cells: vec![cells],
        notes: Vec::new(),
    }
}

/// (pid, context switches) of the scanner and of each of its children.
fn tree_switches(tree: &Tree) -> Vec<(u32, u64)> {
    std::iter::once(tree.pid.as_raw() as u32)
        .chain(tree.children())
        .filter_map(|pid| context_switches(pid).map(|count| (pid, count)))
        .collect()
}

/// The row of `idle`.
pub fn rows(suites: &[&ScanSuite], plan: &TreePlan) -> Vec<(Metric, Row)> {
    let seconds = plan.idle_window.as_secs();
    crate::progress(&format!(
        "measuring context switches of idle trees over {seconds} s"
    ));
    let Measured { mut cells, notes } = idle_switches(
        suites,
        plan.idle_services,
        plan.idle_rounds,
        plan.idle_window,
        // daemontools' supervise sleeps a second after each start; let every
        // start-up wake-up pass before the window opens.
        if plan.quick {
            Duration::from_millis(1500)
        } else {
            Duration::from_secs(2)
        },
    );
    let quick = if plan.quick { ", --quick" } else { "" };
    vec![(
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
    )]
}
