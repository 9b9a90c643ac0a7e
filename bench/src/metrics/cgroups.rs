//! cgroups on against off, runtree alone (issue #16; goal: on within 10% of off):
//! restart latency under runsv, bring-up of a fleet under svdir, and the status of that
//! fleet — each with `RUNTREE_CGROUP` set to a group of the bench's own (on) and to
//! `off` (process groups), alternating which goes first, in one run; the ratio is taken
//! per round, so that whatever else the machine does falls on both sides alike. Needs
//! root and a writable cgroup v2 hierarchy (else `n/a`); the bench's group is removed
//! at the end.

use crate::command::run_timed;
use crate::interleave::{millis, Cell, Samples};
use crate::options::{Metric, TreePlan};
use crate::suite::{start_runsv, Kind, MIN_UPTIME, RUN_SCRIPT};
use crate::table::{Goal, Row};
use crate::tree::{populate, wait_all_running, ScanSuite, Scanner};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use runsv::supervise::ServiceState;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

const VARIABLE: &str = runsv::cgroup::VARIABLE;

/// A cgroup of the bench's own: every process left in it is killed and every group
/// removed on drop.
struct BenchGroup {
    path: PathBuf,
}

impl BenchGroup {
    fn new() -> Result<BenchGroup, String> {
        if !nix::unistd::geteuid().is_root() {
            return Err("needs root (a cgroup of the bench's own)".into());
        }
        runtree::make_cgroup(&format!("runtree-bench-{}", std::process::id()))
            .map(|path| BenchGroup { path })
            .ok_or_else(|| "no writable cgroup v2 hierarchy".into())
    }
}

impl Drop for BenchGroup {
    fn drop(&mut self) {
        runtree::remove_cgroup_tree(&self.path);
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Off,
    On,
}

/// Per metric: the samples with cgroups off, on, and on ÷ off per round.
#[derive(Default)]
struct Pair {
    off: Vec<f64>,
    on: Vec<f64>,
}

impl Pair {
    fn push(&mut self, mode: Mode, value: f64) {
        match mode {
            Mode::Off => self.off.push(value),
            Mode::On => self.on.push(value),
        }
    }

    fn cells(self) -> [Cell; 3] {
        let ratio = self
            .on
            .iter()
            .zip(&self.off)
            .map(|(on, off)| on / off)
            .collect();
        let cell = |values| {
            Ok(Samples {
                values,
                warnings: Vec::new(),
            })
        };
        [cell(self.off), cell(self.on), cell(ratio)]
    }
}

/// The order of the two modes in round `round`.
fn order(round: usize) -> [Mode; 2] {
    if round.is_multiple_of(2) {
        [Mode::Off, Mode::On]
    } else {
        [Mode::On, Mode::Off]
    }
}

fn setting(mode: Mode, group: &BenchGroup) -> String {
    match mode {
        Mode::Off => "off".into(),
        Mode::On => group.path.display().to_string(),
    }
}

/// Restart latency under each mode's runsv: SIGKILL of a service that ran ≥ 1.2 s →
/// its new process in the status.
fn restarts(
    runtree_bin: &Path,
    work: &Path,
    group: &BenchGroup,
    rounds: usize,
) -> Result<Pair, String> {
    let mut supervisors: Vec<(Mode, PathBuf, Child, Instant)> = Vec::new();
    let result = (|| {
        for mode in [Mode::Off, Mode::On] {
            let dir = work.join(match mode {
                Mode::Off => "cgroups-restart-off",
                Mode::On => "cgroups-restart-on",
            });
            fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            runtree::write_script(&dir.join("run"), RUN_SCRIPT);
            let child = start_runsv(runtree_bin, &dir, (VARIABLE, &setting(mode, group)))
                .map_err(|e| format!("starting runsv: {e}"))?;
            supervisors.push((mode, dir.clone(), child, Instant::now()));
            runtree::wait_state(&dir, Duration::from_secs(10), |s| {
                s.state == ServiceState::Running
            })
            .ok_or("the service did not come up under runsv")?;
        }
        let mut pair = Pair::default();
        for round in 0..rounds {
            for mode in order(round) {
                let Some((_, dir, _, up_since)) = supervisors.iter_mut().find(|(m, ..)| *m == mode)
                else {
                    continue;
                };
                crate::interleave::settle(*up_since, MIN_UPTIME);
                let old = runtree::full_state(dir).map(|s| s.pid).unwrap_or(0);
                if old == 0 {
                    return Err("the service was not running before the kill".into());
                }
                let start = Instant::now();
                kill(Pid::from_raw(old as i32), Signal::SIGKILL)
                    .map_err(|e| format!("kill {old}: {e}"))?;
                runtree::wait_state(dir, Duration::from_secs(10), |s| s.pid != old && s.pid != 0)
                    .ok_or("no new process within 10 s of SIGKILL")?;
                pair.push(mode, millis(start.elapsed()));
                *up_since = Instant::now();
            }
        }
        Ok(pair)
    })();
    // runsv stops its service on SIGTERM and exits (its group emptied and removed).
    for (_, dir, mut child, _) in supervisors {
        let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
        let _ = child.wait();
        let _ = fs::remove_dir_all(dir);
    }
    result
}

/// Bring-up of `size` services under svdir (scanner start → all running), then the
/// status of all of them (`sv status` of every directory, 3 samples), in each mode.
fn fleets(
    runtree_bin: &Path,
    work: &Path,
    group: &BenchGroup,
    size: usize,
    rounds: usize,
) -> Result<(Pair, Pair), String> {
    let suite = ScanSuite::new(Scanner::Runtree, runtree_bin, work);
    if let Some(reason) = &suite.unavailable {
        return Err(reason.clone());
    }
    let before = std::env::var_os(VARIABLE);
    let mut bringup = Pair::default();
    let mut status = Pair::default();
    let result = (|| {
        for round in 0..rounds {
            for mode in order(round) {
                // svdir inherits the bench's environment (tree/scanner.rs); the bench
                // runs one thing at a time here.
                std::env::set_var(VARIABLE, setting(mode, group));
                let dir = suite
                    .fresh_dir("cgroups")
                    .map_err(|e| format!("creating the scan directory: {e}"))?;
                let services = populate(&suite, &dir, size)?;
                std::thread::sleep(Duration::from_millis(200));
                let start = Instant::now();
                let tree = suite
                    .start(&dir)
                    .map_err(|e| format!("starting svdir: {e}"))?;
                wait_all_running(&suite, &tree, &services, Duration::from_secs(60))?;
                bringup.push(mode, millis(start.elapsed()));
                // A runsv publishes its service's pid a moment before it opens
                // supervise/ok, where sv looks for it: the status waits for both.
                let announced = runtree::wait_for(&[], Duration::from_secs(30), || {
                    services.iter().all(|s| runtree::supervisor_up(s))
                });
                if !announced {
                    return Err("not every runsv opened supervise/ok".into());
                }
                for _ in 0..3 {
                    let mut command = Command::new(runtree_bin.join("sv"));
                    command.arg("status").args(&services).env_remove("SVDIR");
                    let ran = run_timed(&mut command, Duration::from_secs(60))?;
                    let running = ran
                        .stdout
                        .lines()
                        .filter(|l| l.starts_with("run: "))
                        .count();
                    if running != size {
                        let other = ran.stdout.lines().find(|l| !l.starts_with("run: "));
                        return Err(format!(
                            "cgroups {}: sv status showed {running} of {size} running: {}",
                            setting(mode, group),
                            other.unwrap_or_default()
                        ));
                    }
                    status.push(mode, millis(ran.elapsed));
                }
                // SIGTERM to svdir: every service stopped, every group emptied.
                drop(tree);
            }
        }
        Ok(())
    })();
    match before {
        Some(value) => std::env::set_var(VARIABLE, value),
        None => std::env::remove_var(VARIABLE),
    }
    result.map(|()| (bringup, status))
}

/// The status samples are three per round: their ratio pairs each on with its off.
pub fn rows(
    runtree_bin: &Path,
    runtree_unavailable: Option<String>,
    work: &Path,
    plan: &TreePlan,
    iterations: usize,
) -> Vec<(Metric, Row)> {
    crate::progress("measuring runtree with cgroups on and off");
    let size = plan.fleet_size;
    let measured = runtree_unavailable
        .map_or_else(BenchGroup::new, Err)
        .and_then(|group| {
            let restart = restarts(runtree_bin, work, &group, iterations)?;
            let (bringup, status) = fleets(runtree_bin, work, &group, size, plan.fleet_rounds)?;
            Ok([restart, bringup, status])
        });
    let titles = [
        "restart latency (SIGKILL → new process)".to_string(),
        format!("bring-up of {size} services (svdir start → all running)"),
        format!("status of {size} services (one sv status)"),
    ];
    let mut rows = Vec::new();
    let pairs: Vec<Option<Pair>> = match measured {
        Ok(pairs) => pairs.into_iter().map(Some).collect(),
        Err(reason) => {
            for title in &titles {
                let row = Row::new(format!("{title}, cgroups on ÷ off"), "×", Goal::AtMost(1.1))
                    .suites(vec![(Kind::Runtree, Err(reason.clone()))]);
                rows.push((Metric::Cgroups, row));
            }
            return rows;
        }
    };
    for (title, pair) in titles.iter().zip(pairs.into_iter().flatten()) {
        let [off, on, ratio] = pair.cells();
        for (suffix, unit, goal, cell) in [
            (
                ", cgroups off (process groups)",
                "ms",
                Goal::Information,
                off,
            ),
            (", cgroups on", "ms", Goal::Information, on),
            (
                ", cgroups on ÷ off, per round",
                "×",
                Goal::AtMost(1.1),
                ratio,
            ),
        ] {
            let row = Row::new(format!("{title}{suffix}"), unit, goal)
                .suites(vec![(Kind::Runtree, cell)]);
            rows.push((Metric::Cgroups, row));
        }
    }
    rows
}
