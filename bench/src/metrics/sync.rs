//! Sync latency (`sync`): a new entry in the scan directory, no trigger, until its
//! service runs.

use crate::interleave::{millis, summary, Turn};
use crate::options::{Metric, TreePlan};
use crate::table::number;
use crate::table::{Goal, Row};
use crate::tree::{interleave, start_tree, Definition, Measured, ScanSuite, Scanner, Tree};
use crate::wait::{rewrite_events, seen_at};
use std::fs;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct SyncLane {
    tree: Tree,
    /// Where the new services are created: `.available` in the scan directory, which
    /// every scanner skips (a dot entry), so that the tree's end removes it too.
    available: PathBuf,
    serial: usize,
    /// s6 only: the same, followed at once by `s6-svscanctl -a`.
    triggered: Vec<f64>,
    triggered_error: Option<String>,
}

/// A tree with 3 services; per turn, a new service directory is made outside the scan
/// directory, and the time is taken from the `symlink` into the scan directory to the
/// new service running. No suite gets a trigger; a suite that does not notice within
/// `timeout` gets an infinite sample (shown as `> timeout`). For s6, each turn also
/// measures the same with `s6-svscanctl -a` run right after the symlink (in a note).
pub fn sync_latency(suites: &[&ScanSuite], rounds: usize, timeout: Duration) -> Measured {
    let (cells, states) = interleave(
        suites,
        rounds,
        1,
        |suite| {
            let (tree, _) = start_tree(suite, "sync", 3)?;
            let available = tree.dir.join(".available");
            fs::create_dir(&available)
                .map_err(|e| format!("creating {}: {e}", available.display()))?;
            Ok(SyncLane {
                tree,
                available,
                serial: 0,
                triggered: Vec::new(),
                triggered_error: None,
            })
        },
        |suite, lane| {
            let plain = sync_turn(suite, lane, timeout, false);
            if suite.scanner == Scanner::S6 && lane.triggered_error.is_none() {
                match sync_turn(suite, lane, timeout, true) {
                    Ok(value) => lane.triggered.push(value),
                    Err(reason) => lane.triggered_error = Some(reason),
                }
            }
            vec![plain.map(Turn::from)]
        },
    );
    let mut notes = Vec::new();
    for (scanner, state) in &states {
        let Some(lane) = state else { continue };
        if *scanner != Scanner::S6 {
            continue;
        }
        let text = match (&lane.triggered_error, summary(&lane.triggered)) {
            (Some(reason), _) => format!("with `s6-svscanctl -a`: failed: {reason}"),
            (None, Some((median, min, max))) => format!(
                "s6-svscan scans only when told to; with `s6-svscanctl -a SCANDIR` run right after the symlink: {} ({}–{} ms, n={})",
                duration_text(median),
                number(min),
                number(max),
                lane.triggered.len()
            ),
            (None, None) => continue,
        };
        notes.push((Scanner::S6, text));
    }
    Measured { cells, notes }
}

fn sync_turn(
    suite: &ScanSuite,
    lane: &mut SyncLane,
    timeout: Duration,
    trigger: bool,
) -> Result<f64, String> {
    lane.serial += 1;
    let name = format!("new-{}", lane.serial);
    let target = suite
        .create_service(&lane.available, &name, Definition::Plain)
        .map_err(|e| format!("creating {name}: {e}"))?;
    let link = lane.tree.dir.join(&name);
    let watched = [target.clone(), target.join("supervise")];
    // Let the directory writes settle so that they do not land in the measurement.
    std::thread::sleep(Duration::from_millis(50));
    let start = Instant::now();
    std::os::unix::fs::symlink(&target, &link)
        .map_err(|e| format!("symlink {}: {e}", link.display()))?;
    let mut control = None;
    if trigger {
        control = Some(
            Command::new("/usr/bin/s6-svscanctl")
                .arg("-a")
                .arg(&lane.tree.dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("s6-svscanctl: {e}"))?,
        );
    }
    let seen = seen_at(
        &watched,
        rewrite_events(),
        timeout,
        Duration::from_millis(2),
        || suite.running_pid(&target).is_some(),
    );
    let running = seen.is_some();
    let elapsed = millis(seen.unwrap_or_else(Instant::now) - start);
    if let Some(mut control) = control {
        let _ = control.wait();
    }
    if !lane.tree.alive() {
        return Err(lane.tree.died());
    }
    if running {
        Ok(elapsed)
    } else if trigger {
        Err(format!(
            "not running {} s after `s6-svscanctl -a`",
            timeout.as_secs()
        ))
    } else {
        // Not seen: take the entry away again, so that a later scan does not start
        // it along with the next one.
        let _ = fs::remove_file(&link);
        Ok(f64::INFINITY)
    }
}

fn duration_text(ms: f64) -> String {
    format!("{} ms", number(ms))
}

/// The row of `sync`.
pub fn rows(suites: &[&ScanSuite], plan: &TreePlan) -> Vec<(Metric, Row)> {
    crate::progress("measuring sync latency (new entry, no trigger)");
    let Measured { mut cells, notes } = sync_latency(suites, plan.sync_rounds, plan.sync_timeout);
    let mut row = Row::scanner_ms(
        "sync: symlink into scan dir → running (no trigger)",
        Goal::AtMost(10.0),
        cells.pop().unwrap_or_default(),
        &notes,
    );
    row.timeout = Some(plan.sync_timeout);
    vec![(Metric::Sync, row)]
}
