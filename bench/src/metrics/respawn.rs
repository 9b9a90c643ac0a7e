//! The respawn of a SIGKILLed supervisor (`respawn`): until a new one holds the service.

use crate::interleave::{millis, settle, Turn};
use crate::options::{Metric, TreePlan};
use crate::proc;
use crate::table::{Goal, Row};
use crate::tree::{interleave, start_tree, Measured, ScanSuite, Scanner, Tree};
use crate::wait::{rewrite_events, seen_at, wait_until};
use nix::sys::inotify::AddWatchFlags;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use std::fs::File;
use std::time::{Duration, Instant};

/// A supervisor is killed only after it has run this long: s6-svscan HEAD restarts a
/// supervisor at its last spawn + 1 s, and runtree may throttle a supervisor that keeps
/// dying; the metric is the reaction to a death, not a crash-loop throttle (as in the
/// restart latency of services).
const MIN_SUPERVISOR_UPTIME: Duration = Duration::from_millis(1200);

struct RespawnLane {
    tree: Tree,
    names: Vec<String>,
    /// When each service's supervisor was last (re)started.
    spawned: Vec<Instant>,
    next: usize,
}

/// A tree with 3 services; per turn, SIGKILL to the supervisor of one of them (in
/// rotation, each having run ≥ 1.2 s) and the time until a new supervisor holds that
/// service directory: a new child of the scanner for that entry whose `supervise/ok`
/// FIFO has a reader (runit, runtree) or which holds the fcntl lock on
/// `supervise/lock` (s6, which has no `ok`). Checked at each event in `supervise/`
/// (the new supervisor opening its files) and every millisecond.
pub fn supervisor_respawn(suites: &[&ScanSuite], rounds: usize) -> Measured {
    let (cells, _) = interleave(
        suites,
        rounds,
        1,
        |suite| {
            let (tree, _) = start_tree(suite, "respawn", 3)?;
            let now = Instant::now();
            Ok(RespawnLane {
                tree,
                names: (0..3).map(|i| format!("svc-{i:04}")).collect(),
                spawned: vec![now; 3],
                next: 0,
            })
        },
        |suite, lane| vec![respawn_turn(suite, lane).map(Turn::from)],
    );
    Measured {
        cells,
        notes: Vec::new(),
    }
}

fn respawn_turn(suite: &ScanSuite, lane: &mut RespawnLane) -> Result<f64, String> {
    let index = lane.next % lane.names.len();
    lane.next += 1;
    let name = lane.names[index].clone();
    let service = lane.tree.dir.join(&name);
    settle(lane.spawned[index], MIN_SUPERVISOR_UPTIME);
    let old = lane.tree.supervisor_of(&name).ok_or_else(|| {
        format!(
            "no {} for {name} among {}'s children",
            suite.scanner.supervisor_name(),
            suite.scanner.scanner_name()
        )
    })?;
    let old_service = suite.running_pid(&service);
    // s6: held open across the wait, so that checking the lock opens nothing.
    let lock = match suite.scanner {
        Scanner::S6 => Some(
            File::open(service.join("supervise/lock"))
                .map_err(|e| format!("{name}/supervise/lock: {e}"))?,
        ),
        _ => None,
    };
    let supervise = service.join("supervise");
    let mask = rewrite_events() | AddWatchFlags::IN_OPEN;
    let start = Instant::now();
    kill(Pid::from_raw(old as i32), Signal::SIGKILL).map_err(|e| format!("kill {old}: {e}"))?;
    let seen = seen_at(
        &[supervise],
        mask,
        Duration::from_secs(10),
        Duration::from_millis(1),
        || {
            suite.supervisor_probe(&service, lock.as_ref())
                && lane.tree.supervisor_of(&name).is_some_and(|pid| pid != old)
        },
    );
    let back = seen.is_some();
    let elapsed = millis(seen.unwrap_or_else(Instant::now) - start);
    lane.spawned[index] = Instant::now();
    if !lane.tree.alive() {
        return Err(lane.tree.died());
    }
    if !back {
        return Err(format!(
            "no new {} for {name} within 10 s of SIGKILL{}",
            suite.scanner.supervisor_name(),
            lane.tree.log_excerpt()
        ));
    }
    // runit and s6 leave the killed supervisor's service running and start a second
    // copy; runtree may adopt it. A copy that is not the supervised one is ended here
    // (it is the bench's child now, the bench being a subreaper).
    let _ = wait_until(
        &[service.join("supervise")],
        rewrite_events(),
        Duration::from_secs(5),
        Duration::from_millis(5),
        || suite.running_pid(&service).is_some(),
    );
    if let Some(orphan) = old_service {
        let supervised = suite.running_pid(&service);
        if supervised != Some(orphan) && proc::is_my_child(orphan) {
            let orphan = Pid::from_raw(orphan as i32);
            let _ = kill(orphan, Signal::SIGKILL);
            let _ = waitpid(orphan, None);
        }
    }
    Ok(elapsed)
}

/// The row of `respawn`.
pub fn rows(suites: &[&ScanSuite], plan: &TreePlan) -> Vec<(Metric, Row)> {
    crate::progress("measuring the respawn of a killed supervisor");
    let Measured { mut cells, notes } = supervisor_respawn(suites, plan.respawn_rounds);
    vec![(
        Metric::Respawn,
        Row::scanner_ms(
            "respawn of a SIGKILLed supervisor",
            Goal::AtMost(10.0),
            cells.pop().unwrap_or_default(),
            &notes,
        ),
    )]
}
