//! The stop half of a fleet turn (`stop`): the suite's own stop request, and the time
//! until none of the services' processes runs.

use crate::interleave::{millis, Turn};
use crate::proc;
use crate::tree::{ScanSuite, Scanner, Tree};
use crate::wait::wait_until;
use nix::libc;
use nix::sys::inotify::AddWatchFlags;
use nix::sys::wait::WaitStatus;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// After `settle_time`, the suite's stop request to a running tree, and the time until
/// none of the services' processes runs; for runtree, a warning if svdir did not then
/// exit cleanly.
pub fn stop_turn(
    suite: &ScanSuite,
    tree: &Tree,
    services: &[PathBuf],
    names: &[String],
    settle_time: Duration,
) -> Result<Turn, String> {
    let size = services.len();
    // The pids to watch for the stop, with their start times (so that a reused pid is
    // not mistaken for a service still running).
    let mut pids: Vec<(u32, u64)> = Vec::with_capacity(size);
    for service in services {
        if let Some(pid) = suite.running_pid(service) {
            if let Some(start_time) = proc::live_start_time(pid) {
                pids.push((pid, start_time));
            }
        }
    }
    std::thread::sleep(settle_time);

    let start = Instant::now();
    let stop = match tree.request_stop(names) {
        Ok(helper) => {
            let result = {
                let _observer = Observer::prioritised();
                wait_gone(&pids, Duration::from_secs(60))
            };
            let elapsed = millis(start.elapsed());
            if let Some(mut helper) = helper {
                let _ = helper.wait();
            }
            result.map(|()| elapsed)
        }
        Err(reason) => Err(reason),
    };
    stop.map(|value| {
        let mut warning = None;
        if suite.scanner == Scanner::Runtree {
            // svdir exits once everything is stopped: 0 if clean, 1 if something had
            // to be killed. Not part of the time; noted if it is not a clean 0.
            let exited = wait_until(
                &[],
                AddWatchFlags::empty(),
                Duration::from_secs(5),
                Duration::from_millis(5),
                || tree.exit_status().is_some(),
            );
            warning = match tree.exit_status() {
                _ if !exited => Some("svdir still ran 5 s after its services were gone".into()),
                Some(WaitStatus::Exited(_, 0)) => None,
                Some(WaitStatus::Exited(_, code)) => {
                    Some(format!("svdir exited {code} after the stop"))
                }
                Some(other) => Some(format!("svdir ended with {other:?} after the stop")),
                None => None,
            };
        }
        Turn { value, warning }
    })
}

/// The bench's thread, for the time of a wait, first in line for the CPU
/// (SCHED_FIFO, priority 1, not inherited by children) where it may be (root): a stop
/// of 1000 services keeps both cores busy with the supervisors' final writes, and a
/// watcher that waits its turn for the CPU notices the last service's end late, by up
/// to hundreds of milliseconds, whoever the suite is. Restored when dropped; where it
/// cannot be set, nothing changes.
struct Observer {
    previous: Option<(libc::c_int, libc::sched_param)>,
}

impl Observer {
    fn prioritised() -> Observer {
        // SAFETY: plain system calls on this thread's own scheduling.
        unsafe {
            let policy = libc::sched_getscheduler(0);
            // Zeroed, not a literal: musl's sched_param has more fields than glibc's.
            let mut param: libc::sched_param = std::mem::zeroed();
            if policy < 0 || libc::sched_getparam(0, &mut param) != 0 {
                return Observer { previous: None };
            }
            let mut first: libc::sched_param = std::mem::zeroed();
            first.sched_priority = 1;
            let set =
                libc::sched_setscheduler(0, libc::SCHED_FIFO | libc::SCHED_RESET_ON_FORK, &first);
            Observer {
                previous: (set == 0).then_some((policy, param)),
            }
        }
    }
}

impl Drop for Observer {
    fn drop(&mut self) {
        if let Some((policy, param)) = self.previous {
            // SAFETY: as above.
            unsafe {
                libc::sched_setscheduler(0, policy, &param);
            }
        }
    }
}

/// Waits until none of these processes runs (gone, a zombie, or the pid taken by
/// another process). Polls the first one still running, every millisecond.
fn wait_gone(pids: &[(u32, u64)], timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let mut next = 0;
    while next < pids.len() {
        let (pid, start_time) = pids[next];
        if proc::live_start_time(pid) != Some(start_time) {
            next += 1;
            continue;
        }
        if Instant::now() >= deadline {
            let left = pids[next..]
                .iter()
                .filter(|&&(pid, t)| proc::live_start_time(pid) == Some(t))
                .count();
            return Err(format!(
                "{left} of {} service processes still ran {} s after the stop request",
                pids.len(),
                timeout.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}
