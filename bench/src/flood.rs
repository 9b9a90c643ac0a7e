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
use crate::metrics::{run_timed, Cell, Samples};
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
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
    let idle = start(runtree_bin, &root, "idle", "exec: sleep 100000\n")?;
    let flooding = start(runtree_bin, &root, "flooding", "exec: yes\n")?;
    let sv = runtree_bin.join("sv");
    let (mut idle_ms, mut flood_ms) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let order = if round % 2 == 0 {
            [(&idle, false), (&flooding, true)]
        } else {
            [(&flooding, true), (&idle, false)]
        };
        for (dir, floods) in order {
            let ms = down_then_up(&sv, dir)?;
            if floods {
                flood_ms.push(ms);
            } else {
                idle_ms.push(ms);
            }
        }
    }
    Ok((idle_ms, flood_ms))
}

/// A YAML service `name` under its own runsv, once it runs.
fn start(runtree_bin: &Path, root: &Path, name: &str, yaml: &str) -> Result<PathBuf, String> {
    let dir = root.join(name);
    fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    fs::write(dir.join("service.yaml"), yaml).map_err(|e| format!("writing {name}: {e}"))?;
    let child = Command::new(runtree_bin.join("runsv"))
        .arg(&dir)
        .env("RUNTREE_KMSG", "/dev/null")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
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
