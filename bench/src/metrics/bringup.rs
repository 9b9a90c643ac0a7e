//! Bring-up and stop of a fleet (`bringup`, `stop`): one tree per turn, timed from the
//! scanner's spawn to every service running, then from the stop request to the last
//! service gone (stop.rs); and the floor under every suite, the run scripts spawned by
//! the bench itself.

use super::stop;
use crate::interleave::summary;
use crate::interleave::{millis, Turn};
use crate::options::{Metric, TreePlan};
use crate::table::{number, Goal, Row};
use crate::tree::{interleave, populate, wait_all_running, Measured, ScanSuite, Scanner};
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Per round and suite: `size` services in a fresh directory; the time from the
/// scanner's spawn to every service running (output 0); one second later, the time
/// from the suite's stop request to the last of those service processes gone
/// (output 1).
///
/// Also, once per round (after runtree's turn), the floor under every suite: the same
/// `size` run scripts spawned by the bench itself, with no scanner or supervisor, two
/// spawning threads (one per core here): the time until every one has been exec'd.
/// That is what "running" means for the suites too (a pid in the status file), so a
/// supervisor's own share of a bring-up is its time above the floor. Returned as the
/// second value: the floor's samples in ms.
pub fn bringup_and_stop(
    suites: &[&ScanSuite],
    size: usize,
    rounds: usize,
    settle_time: Duration,
) -> (Measured, Vec<f64>) {
    let floor = std::cell::RefCell::new(Vec::new());
    let (cells, _) = interleave(
        suites,
        rounds,
        2,
        |_| Ok(()),
        |suite, ()| {
            let turn = fleet_turn(suite, size, settle_time);
            if suite.scanner == Scanner::Runtree {
                if let Ok(ms) = spawn_floor(suite, size) {
                    floor.borrow_mut().push(ms);
                }
            }
            turn
        },
    );
    (
        Measured {
            cells,
            notes: Vec::new(),
        },
        floor.into_inner(),
    )
}

/// The `size` run scripts of a fresh fleet directory spawned directly (two threads),
/// in ms until all are exec'd; then each is killed and reaped.
fn spawn_floor(suite: &ScanSuite, size: usize) -> Result<f64, String> {
    let dir = suite
        .fresh_dir("floor")
        .map_err(|e| format!("creating the directory: {e}"))?;
    let services = populate(suite, &dir, size)?;
    std::thread::sleep(Duration::from_millis(200));
    let spawn_all = |part: &[PathBuf]| -> Vec<Child> {
        part.iter()
            .filter_map(|service| {
                Command::new("./run")
                    .current_dir(service)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .process_group(0)
                    .spawn()
                    .ok()
            })
            .collect()
    };
    let start = Instant::now();
    let (first, second) = services.split_at(services.len() / 2);
    let mut children = std::thread::scope(|scope| {
        let other = scope.spawn(|| spawn_all(second));
        let mut mine = spawn_all(first);
        mine.extend(other.join().unwrap_or_default());
        mine
    });
    let elapsed = millis(start.elapsed());
    let spawned = children.len();
    for child in &mut children {
        let group = Pid::from_raw(child.id() as i32);
        let _ = nix::sys::signal::killpg(group, Signal::SIGKILL);
        let _ = child.wait();
    }
    let _ = fs::remove_dir_all(&dir);
    if spawned != size {
        return Err(format!("{spawned} of {size} spawned"));
    }
    Ok(elapsed)
}

fn fleet_turn(suite: &ScanSuite, size: usize, settle_time: Duration) -> Vec<Result<Turn, String>> {
    let failed = |reason: String| vec![Err(reason.clone()), Err(reason)];
    let dir = match suite.fresh_dir("fleet") {
        Ok(dir) => dir,
        Err(e) => return failed(format!("creating the scan directory: {e}")),
    };
    let services = match populate(suite, &dir, size) {
        Ok(services) => services,
        Err(reason) => return failed(reason),
    };
    let names: Vec<String> = (0..size).map(|i| format!("svc-{i:04}")).collect();
    // Let the directory writes settle so that they do not land in the measurement.
    std::thread::sleep(Duration::from_millis(200));

    let start = Instant::now();
    let tree = match suite.start(&dir) {
        Ok(tree) => tree,
        Err(e) => return failed(format!("starting {}: {e}", suite.scanner.scanner_name())),
    };
    let timeout = Duration::from_secs(30 + size as u64 / 20);
    if let Err(reason) = wait_all_running(suite, &tree, &services, timeout) {
        return failed(reason);
    }
    let bringup = millis(start.elapsed());

    let stop = stop::stop_turn(suite, &tree, &services, &names, settle_time);
    drop(tree);
    vec![Ok(bringup.into()), stop]
}

/// The rows of `bringup` and `stop`, which one measurement gives.
pub fn rows(
    suites: &[&ScanSuite],
    plan: &TreePlan,
    wanted: impl Fn(Metric) -> bool,
) -> Vec<(Metric, Row)> {
    let size = plan.fleet_size;
    crate::progress(&format!(
        "measuring bring-up and stop of {size} services under each scanner"
    ));
    let (Measured { mut cells, notes }, floor) =
        bringup_and_stop(suites, size, plan.fleet_rounds, plan.fleet_settle);
    let mut bringup_notes = notes.clone();
    if let Some((median, low, high)) = summary(&floor) {
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
    let mut rows = Vec::new();
    let mut row = |metric, title: String, goal, cells, notes: &[(Scanner, String)]| {
        if wanted(metric) {
            rows.push((metric, Row::scanner_ms(title, goal, cells, notes)));
        }
    };
    row(
        Metric::Bringup,
        format!("bring-up of {size} services (scanner start → all running)"),
        Goal::FractionOfBestPeer(0.7),
        bringup,
        &bringup_notes,
    );
    row(
        Metric::Stop,
        format!("stop of {size} services (request → no service process)"),
        Goal::FractionOfBestPeer(0.8),
        stop,
        &notes,
    );
    rows
}
