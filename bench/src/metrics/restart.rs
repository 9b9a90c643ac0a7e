//! Restart latency (`restart`): SIGKILL of a service to its new process, under each
//! suite's supervisor started directly.

use crate::interleave::{millis, Cell};
use crate::options::Metric;
use crate::suite::{on_one_service, Kind, Suite};
use crate::table::{Goal, Row};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

/// SIGKILL of a service that has run ≥ 1 s → its new process is up.
///
/// The new process is detected the same way for every suite: inotify on the service's
/// `supervise/` directory wakes the bench at each rewrite of `status` (every suite
/// writes `status.new` and renames it), and the pid in it is compared with the killed
/// one. No polling interval enters the measurement.
pub fn restart_latency(suites: &[&Suite], iterations: usize) -> Vec<(Kind, Cell)> {
    on_one_service(suites, iterations, "restart", |suite, service| {
        let old = suite
            .running_pid(&service.dir)
            .ok_or("the service was not running before the kill")?;
        let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)
            .map_err(|e| format!("inotify_init: {e}"))?;
        inotify
            .add_watch(
                &service.dir.join("supervise"),
                AddWatchFlags::IN_MOVED_TO
                    | AddWatchFlags::IN_CLOSE_WRITE
                    | AddWatchFlags::IN_CREATE,
            )
            .map_err(|e| format!("inotify_add_watch: {e}"))?;
        let start = Instant::now();
        // The service is a descendant of the bench (a subreaper) and still running,
        // so this pid is the service's.
        kill(Pid::from_raw(old as i32), Signal::SIGKILL).map_err(|e| format!("kill {old}: {e}"))?;
        let deadline = start + Duration::from_secs(10);
        loop {
            if let Some(pid) = suite.running_pid(&service.dir) {
                if pid != old && runtree::alive(pid) {
                    let elapsed = start.elapsed();
                    service.up_since = Instant::now();
                    return Ok(millis(elapsed).into());
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(format!(
                    "no new process within 10 s of SIGKILL{}",
                    suite.log_excerpt()
                ));
            }
            let wait = u16::try_from((deadline - now).as_millis()).unwrap_or(u16::MAX);
            let mut fds = [PollFd::new(inotify.as_fd(), PollFlags::POLLIN)];
            let _ = poll(&mut fds, PollTimeout::from(wait));
            let _ = inotify.read_events();
        }
    })
}

/// The row of `restart`.
pub fn rows(suites: &[&Suite], iterations: usize) -> Vec<(Metric, Row)> {
    crate::progress("measuring restart latency");
    vec![(
        Metric::Restart,
        Row::new(
            "restart latency (SIGKILL → new process)".into(),
            "ms",
            Goal::NoMoreThanRunit,
        )
        .suites(restart_latency(suites, iterations)),
    )]
}
