//! `sv health [SERVICE...]` (runtree's; not runit's `h`, which is hup): whether every
//! service wanted up is up and ready, for a container engine's HEALTHCHECK
//! (`podman run --health-cmd 'sv health'`). Without names, every service of the scan
//! directory. One line per service (and `log/` service): `ok: NAME: …` or
//! `fail: NAME: …`. Exit 0 when all are healthy, else 1 (an engine reserves 2).
//!
//! Healthy: `running`; `ok` (a oneshot done); down when not wanted up (`sv down`, a
//! `down` file). Unhealthy: `error`, `respawn` (a crash loop), no runsv, and any other
//! state (waiting, starting, stopping, finishing, down but wanted up) once it has
//! lasted longer than the wait time (`-w`, SVWAIT, 7 s by default): a service whose
//! dependencies or readiness never come. `sv check` stays runit's.

use crate::output::{Level, Message, Out};
use crate::service::{self, Probe, Service, ServiceDir, Snapshot};
use runsv::supervise::{RunState, ServiceState, Want};
use runsv::tai64n::Timestamp;
use std::ffi::{OsStr, OsString};
use std::io::Write;

pub const EXIT_HEALTHY: i32 = 0;
pub const EXIT_UNHEALTHY: i32 = 1;
/// Fatal: the scan directory cannot be read (sv's fatal code).
pub const EXIT_FATAL: i32 = 100;

pub fn run<W: Write>(names: &[OsString], svdir: &OsStr, grace: u64, out: &mut Out<W>) -> i32 {
    let Ok(names) = service::named_or_all(names, svdir) else {
        return EXIT_FATAL;
    };
    let now = Timestamp::now();
    let mut healthy = true;
    for name in &names {
        let service = Service::resolve(name, svdir);
        for (label, message) in check(&service, grace, now) {
            healthy &= message.level == Level::Ok;
            out.line(&message.render(&label));
        }
    }
    if healthy {
        EXIT_HEALTHY
    } else {
        EXIT_UNHEALTHY
    }
}

/// The verdicts on the service and, if it has one, its `log/` service.
fn check(service: &Service, grace: u64, now: Timestamp) -> Vec<(String, Message)> {
    let unentered = |errno| Message::fail_errno("unable to change to service directory", errno);
    let dir = match ServiceDir::open(&service.path) {
        Ok(dir) => dir,
        Err(errno) => return vec![(service.name.clone(), unentered(errno))],
    };
    let mut verdicts = vec![(
        service.name.clone(),
        verdict(dir.probe(unentered), grace, now),
    )];
    if let Ok(log) = dir.sub("log") {
        let unentered = |errno| Message::fail_errno("unable to change to log directory", errno);
        verdicts.push((
            format!("{}/log", service.name),
            verdict(log.probe(unentered), grace, now),
        ));
    }
    verdicts
}

fn verdict(probe: Probe, grace: u64, now: Timestamp) -> Message {
    match probe {
        Probe::Live(snapshot) => judge(&snapshot, grace, now),
        Probe::NotRunning => Message::fail("runsv not running"),
        Probe::Unreadable(message) => Message {
            level: Level::Fail,
            ..message
        },
    }
}

/// Healthy or not, by the full state (runit's status alone where runsv wrote none).
pub fn judge(snapshot: &Snapshot, grace: u64, now: Timestamp) -> Message {
    let Some(state) = &snapshot.state else {
        let status = &snapshot.status;
        return match (status.run_state, status.want) {
            (RunState::Run, _) => Message::ok("run"),
            (RunState::Down, b'd') => Message::ok("down, as wanted"),
            _ => Message::fail("not running, want up"),
        };
    };
    let reason = |text: &str| {
        if state.reason.is_empty() {
            text.to_string()
        } else {
            format!("{text}: {}", state.reason)
        }
    };
    if !snapshot.current() {
        return Message::fail("its state names a process that is gone (runsv cannot write?)");
    }
    match state.state {
        ServiceState::Running => Message::ok("running"),
        ServiceState::Ok => Message::ok("ok (done)"),
        ServiceState::Down if state.want != Want::Up => Message::ok("down, as wanted"),
        ServiceState::Error => Message::fail(reason("error")),
        ServiceState::Respawn => Message::fail(reason("respawn")),
        other => {
            let lasted = state.since.whole_seconds_until(now);
            let word = if other == ServiceState::Down {
                "down, want up".to_string()
            } else {
                other.to_string()
            };
            if lasted <= grace {
                Message::ok(format!("{word} for {lasted}s (at most {grace}s)"))
            } else {
                Message::fail(reason(&format!("{word} for {lasted}s")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::{down, full, running, stamp, FakeSupervisor};

    fn health(svdir: &std::path::Path, args: &[&str]) -> (i32, String) {
        let mut argv = vec!["sv"];
        argv.extend_from_slice(args);
        crate::app::run_captured(&argv, svdir.as_os_str())
    }

    #[test]
    fn every_wanted_service_must_be_up_and_ready() {
        let svdir = tempfile::tempdir().unwrap();
        let now = Timestamp::now();
        let web = FakeSupervisor::new(&svdir.path().join("web"), running(9, stamp(1)));
        web.set_state(&full(ServiceState::Running, 9, stamp(1), ""));
        let off = FakeSupervisor::new(&svdir.path().join("off"), down(b'd', stamp(1)));
        let mut down_state = full(ServiceState::Down, 0, stamp(1), "");
        down_state.want = Want::Down;
        off.set_state(&down_state);
        let setup = FakeSupervisor::new(&svdir.path().join("setup"), down(b'd', stamp(1)));
        let mut done = full(ServiceState::Ok, 0, stamp(1), "");
        done.want = Want::Down;
        setup.set_state(&done);
        // Starting for a moment: fine within the wait.
        let db = FakeSupervisor::new(&svdir.path().join("db"), running(8, now));
        db.set_state(&full(ServiceState::Starting, 8, now, ""));
        let (code, text) = health(svdir.path(), &["health"]);
        assert_eq!(code, 0, "{text}");
        assert!(text.contains("ok: web: running\n"), "{text}");
        assert!(
            text.contains("ok: db: starting for 0s (at most 7s)\n"),
            "{text}"
        );
        assert!(text.contains("ok: off: down, as wanted\n"), "{text}");
        assert!(text.contains("ok: setup: ok (done)\n"), "{text}");

        // Starting too long, a crash loop, an error, no runsv: each fails.
        db.set_state(&full(ServiceState::Starting, 8, stamp(1), "testing"));
        assert_eq!(health(svdir.path(), &["-w", "5", "health", "db"]).0, 1);
        let mut looping = full(ServiceState::Respawn, 0, now, "exit 1; restarting in 2s");
        looping.restarts = 4;
        web.set_state(&looping);
        let (code, text) = health(svdir.path(), &["health", "web"]);
        assert_eq!(
            (code, text.as_str()),
            (1, "fail: web: respawn: exit 1; restarting in 2s\n")
        );
        web.set_state(&full(ServiceState::Error, 0, now, "exit 3"));
        assert_eq!(
            health(svdir.path(), &["health", "web", "off"]),
            (
                1,
                "fail: web: error: exit 3\nok: off: down, as wanted\n".to_string()
            )
        );
        let mut gone = FakeSupervisor::new(&svdir.path().join("gone"), running(7, stamp(1)));
        gone.stop();
        assert_eq!(
            health(svdir.path(), &["health", "gone"]),
            (1, "fail: gone: runsv not running\n".to_string())
        );
    }
}
