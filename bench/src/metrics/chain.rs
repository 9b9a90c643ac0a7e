//! A dependency chain (`chain`): how long until all run, and how many started before
//! their dependency did.

use crate::interleave::millis;
use crate::options::{Metric, TreePlan};
use crate::proc::{children_of, comm_is, last_argument};
use crate::table::{Goal, Row};
use crate::tree::{age, interleave, Definition, Measured, ScanSuite};
use std::path::Path;
use std::time::{Duration, Instant};

/// A chain of `length` services, each after the previous one, in each suite's idiom
/// (see `Definition::After`). Per turn: a fresh directory, the time from the scanner's
/// spawn to every service's own program (`sleep`) running (output 0), and how many
/// services started their program before their dependency did (output 1).
pub fn dependency_chain(suites: &[&ScanSuite], length: usize, rounds: usize) -> Measured {
    let (cells, _) = interleave(
        suites,
        rounds,
        2,
        |_| Ok(()),
        |suite, ()| match chain_turn(suite, length) {
            Ok((elapsed, out_of_order)) => vec![Ok(elapsed.into()), Ok(out_of_order.into())],
            Err(reason) => vec![Err(reason.clone()), Err(reason)],
        },
    );
    Measured {
        cells,
        notes: Vec::new(),
    }
}

fn chain_turn(suite: &ScanSuite, length: usize) -> Result<(f64, f64), String> {
    let dir = suite
        .fresh_dir("chain")
        .map_err(|e| format!("creating the scan directory: {e}"))?;
    let names: Vec<String> = (1..=length).map(|i| format!("s{i:02}")).collect();
    for (i, name) in names.iter().enumerate() {
        let definition = match i {
            0 => Definition::Plain,
            _ => Definition::After(&names[i - 1]),
        };
        suite
            .create_service(&dir, name, definition)
            .map_err(|e| format!("creating {name}: {e}"))?;
    }
    age(&dir)?;
    std::thread::sleep(Duration::from_millis(50));

    let start = Instant::now();
    let tree = suite
        .start(&dir)
        .map_err(|e| format!("starting {}: {e}", suite.scanner.scanner_name()))?;
    // When each service's program is first seen running: its supervisor (the child of
    // the scanner named after it) has a child that has exec'd `sleep` (a run script
    // still waiting for its dependency is `sh`). The process tree rather than the
    // status files, so that the order of a supervisor's own file writes (runtree's runsv
    // writes `state`, which its dependents watch, before `status`) cannot enter. One
    // pass over the chain per millisecond, from the last service to the first: a
    // dependency is checked after its dependent, so a dependent seen in a pass whose
    // dependency had already started sees it in the same pass. Order is judged by pass
    // (a dependent seen in an earlier pass than its dependency started first); the
    // time is that of the check that saw it.
    let mut started: Vec<Option<(usize, Duration)>> = vec![None; length];
    let mut supervisors: Vec<Option<u32>> = vec![None; length];
    let deadline = start + Duration::from_secs(30);
    let mut pass = 0;
    loop {
        pass += 1;
        if supervisors.iter().any(Option::is_none) {
            for child in tree.children() {
                let Some(arg) = last_argument(child) else {
                    continue;
                };
                let name = Path::new(&arg).file_name().unwrap_or_default();
                if let Some(i) = names.iter().position(|n| name == n.as_str()) {
                    supervisors[i].get_or_insert(child);
                }
            }
        }
        for (supervisor, seen) in supervisors.iter().zip(started.iter_mut()).rev() {
            let Some(supervisor) = supervisor else {
                continue;
            };
            if seen.is_none()
                && children_of(*supervisor)
                    .into_iter()
                    .any(|pid| comm_is(pid, "sleep"))
            {
                *seen = Some((pass, start.elapsed()));
            }
        }
        if started.iter().all(Option::is_some) {
            break;
        }
        if Instant::now() >= deadline || !tree.alive() {
            let up = started.iter().filter(|s| s.is_some()).count();
            let what = if tree.alive() {
                "not all running after 30 s".to_string()
            } else {
                tree.died()
            };
            let first = names[started.iter().position(Option::is_none).unwrap_or(0)].clone();
            return Err(format!(
                "{what}: {up} of {length} came up, not {first}{}",
                if tree.alive() {
                    tree.log_excerpt()
                } else {
                    String::new()
                }
            ));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let seen: Vec<(usize, Duration)> = started.into_iter().flatten().collect();
    let elapsed = seen.iter().map(|&(_, t)| t).max().unwrap_or_default();
    let out_of_order = seen.windows(2).filter(|pair| pair[1].0 < pair[0].0).count();
    drop(tree);
    Ok((millis(elapsed), out_of_order as f64))
}

/// The two rows of `chain`: the time, and the order.
pub fn rows(suites: &[&ScanSuite], plan: &TreePlan) -> Vec<(Metric, Row)> {
    let length = plan.chain_length;
    crate::progress(&format!("measuring a dependency chain of {length}"));
    let Measured { mut cells, notes } = dependency_chain(suites, length, plan.chain_rounds);
    let order = cells.pop().unwrap_or_default();
    let time = cells.pop().unwrap_or_default();
    vec![
        (
            Metric::Chain,
            Row::scanner_ms(
                format!("dependency chain of {length} (scanner start → all running)"),
                Goal::AtMost(100.0),
                time,
                &notes,
            ),
        ),
        (
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
        ),
    ]
}
