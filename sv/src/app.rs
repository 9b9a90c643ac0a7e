//! One run of sv: parse, dispatch, act on every service in order (printing failures as
//! they come), then wait for all of them at once when the command waits.

use crate::args::{self, Invocation, Usage};
use crate::command::{dispatch, Kind};
use crate::control::{self, Sent};
use crate::output::{exit_code, Message, Out};
use crate::service::{self, Service, ServiceDir};
use crate::wait::{self, Target};
use crate::watch::Watcher;
use crate::{json, report, tree};
use runsv::tai64n::Timestamp;
use std::ffi::OsString;
use std::io::Write;
use std::time::{Duration, Instant};

/// Exit code of a fatal error (runit: 100, or 151 in LSB mode).
fn fatal_code(lsb: bool) -> i32 {
    if lsb {
        151
    } else {
        100
    }
}

pub fn main(argv: &[OsString], env: impl Fn(&str) -> Option<OsString>) -> i32 {
    let invocation = match args::parse(argv, env) {
        Ok(invocation) => invocation,
        Err(usage) => return usage_error(&usage),
    };
    // Buffered beyond the line: `Out` flushes each line unless told to hold them.
    let stdout = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
    let mut out = Out::new(stdout);
    let code = run(&invocation, &mut out);
    out.flush();
    code
}

fn usage_error(usage: &Usage) -> i32 {
    eprint!("{}", usage.text());
    usage.exit_code()
}

pub fn run<W: Write>(invocation: &Invocation, out: &mut Out<W>) -> i32 {
    // Taken before anything is sent: the waits compare runsv's stamps against it.
    let tstart = Timestamp::now();
    let started = Instant::now();
    let usage = || {
        usage_error(&Usage {
            progname: invocation.progname.clone(),
            lsb: invocation.lsb,
            preamble: None,
        })
    };
    // runtree's own commands. (runit reads `sync` as `status`, `health` as `hup`, and
    // has no `reconfigure`, `log` or `blame`.)
    if !invocation.lsb {
        match invocation.action.as_slice() {
            b"sync" => {
                let wait = Duration::from_secs(invocation.wait_seconds);
                return tree::sync(&invocation.svdir, invocation.verbose, wait, out);
            }
            b"blame" => {
                out.flush();
                return crate::blame::main(&invocation.services, &invocation.svdir);
            }
            b"log" => {
                out.flush();
                return crate::log::main(&invocation.services, &invocation.svdir);
            }
            b"health" => {
                return crate::health::run(
                    &invocation.services,
                    &invocation.svdir,
                    invocation.wait_seconds,
                    out,
                );
            }
            b"reconfigure" if !invocation.services.is_empty() => {
                tree::reconfigure(&invocation.services, &invocation.svdir, out);
                return exit_code(out.failures());
            }
            _ => {}
        }
    }
    let Some(command) = dispatch(&invocation.action, invocation.lsb) else {
        return usage();
    };
    let mut names = invocation.services.clone();
    let mut json = false;
    if command.kind == Kind::Status && !invocation.lsb {
        let before = names.len();
        names.retain(|name| name != "--json");
        json = names.len() != before;
        if names.is_empty() {
            names = match service::list(&invocation.svdir) {
                Ok(names) => names,
                Err(error) => {
                    eprintln!(
                        "fatal: unable to read {}: {}",
                        invocation.svdir.to_string_lossy(),
                        crate::errno::error_str(crate::errno::of_io(&error))
                    );
                    return fatal_code(invocation.lsb);
                }
            };
        }
    } else if names.is_empty() {
        return usage();
    }
    let services: Vec<Service> = names
        .iter()
        .map(|name| Service::resolve(name, &invocation.svdir))
        .collect();

    if command.kind == Kind::Status {
        if json {
            json::print(out, &services);
            return exit_code(out.failures());
        }
        return status(out, &services, invocation.lsb, tstart);
    }

    let waits = command.waits(invocation.verbose);
    let mut watcher = waits.then(Watcher::new);
    let mut targets = Vec::new();
    for (index, service) in services.into_iter().enumerate() {
        if let Err(errno) = service::enter(&service.path) {
            out.message(&service.name, &unable_to_enter(errno));
            continue;
        }
        // The watch exists before anything is written, so no change is missed.
        let watched = watcher
            .as_mut()
            .is_some_and(|w| w.watch(index, &service.supervise().path));
        let sent = match command.kind {
            Kind::Control => match control::send(out, &service, command.acts, command.first()) {
                Sent::Dropped => continue,
                Sent::Written => true,
                Sent::Suppressed => false,
            },
            _ => false,
        };
        targets.push(Target {
            index,
            service,
            sent,
            watched,
        });
    }
    if let Some(watcher) = watcher.as_mut() {
        let deadline = started.checked_add(Duration::from_secs(invocation.wait_seconds));
        wait::run(out, watcher, targets, &command, tstart, deadline);
    }
    exit_code(out.failures())
}

fn unable_to_enter(errno: i32) -> Message {
    Message::fail_errno("unable to change to service directory", errno)
}

fn status<W: Write>(out: &mut Out<W>, services: &[Service], lsb: bool, now: Timestamp) -> i32 {
    let mut report = report::Report::new(if lsb { 1 } else { services.len() });
    let mut code = None;
    for service in services {
        let dir = match ServiceDir::open(&service.path) {
            Ok(dir) => dir,
            Err(errno) => {
                report.message(out, &service.name, &unable_to_enter(errno));
                continue;
            }
        };
        match report.print(out, service, &dir, now) {
            Ok(shown) if lsb => code = Some(shown.lsb_code()),
            Err(Some(unreadable)) if lsb => code = Some(unreadable),
            _ => {}
        }
        if code.is_some() {
            break;
        }
    }
    // Nothing runs in between (no ./check, no waits): one write for all the lines.
    out.hold();
    report.finish(out);
    code.unwrap_or_else(|| exit_code(out.failures()))
}

/// Runs sv in-process on a command line, with `SVDIR`, for tests.
#[cfg(test)]
pub fn run_captured(argv: &[&str], svdir: &std::ffi::OsStr) -> (i32, String) {
    let argv: Vec<OsString> = argv.iter().map(OsString::from).collect();
    let invocation = args::parse(&argv, |key| (key == "SVDIR").then(|| svdir.to_owned()))
        .expect("valid command line");
    let mut out = Out::new(Vec::new());
    let code = run(&invocation, &mut out);
    (code, String::from_utf8(out.into_inner()).unwrap())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::{down, full, running, stamp, FakeSupervisor};
    use runsv::supervise::{write_atomically, ServiceState, Status};
    use std::path::Path;
    use std::time::Duration;

    fn sv(svdir: &Path, args: &[&str]) -> (i32, String) {
        let mut argv = vec!["sv"];
        argv.extend_from_slice(args);
        let (code, text) = run_captured(&argv, svdir.as_os_str());
        // `12s` → `Ns`: the seconds counter depends on when the test runs.
        (code, runtree::mask_status(&text, false))
    }

    fn now() -> runsv::tai64n::Timestamp {
        runsv::tai64n::Timestamp::now()
    }

    #[test]
    fn status_appends_the_full_state_of_service_and_log() {
        let svdir = tempfile::tempdir().unwrap();
        let web = svdir.path().join("web");
        let main = FakeSupervisor::new(&web, down(b'u', stamp(1)));
        let mut respawn = full(
            ServiceState::Respawn,
            0,
            stamp(1),
            "exited 1; restarting in 4s",
        );
        respawn.restarts = 3;
        main.set_state(&respawn);
        let log = FakeSupervisor::new(&web.join("log"), running(12, stamp(1)));
        log.set_state(&full(ServiceState::Running, 12, stamp(1), ""));
        assert_eq!(
            sv(svdir.path(), &["status", "web"]),
            (
                0,
                "down: web: Ns, normally up, want up [respawn: exited 1; restarting in Ns]; \
                 run: log: (pid 12) Ns [running]\n"
                    .to_string()
            )
        );
        // A runit supervisor (no state file): exactly runit's text.
        std::fs::remove_file(main.supervise().state()).unwrap();
        std::fs::remove_file(log.supervise().state()).unwrap();
        assert_eq!(
            sv(svdir.path(), &["s", "web"]).1,
            "down: web: Ns, normally up, want up; run: log: (pid 12) Ns\n"
        );
    }

    #[test]
    fn status_of_a_failing_service_shows_its_last_output() {
        let svdir = tempfile::tempdir().unwrap();
        let web = svdir.path().join("web");
        let main = FakeSupervisor::new(&web, down(b'u', stamp(1)));
        let mut tail = runsv::tail::TailWriter::new(main.supervise().tail(), 4096);
        tail.append(b"starting\nbind: Address in use\n").unwrap();
        main.set_state(&full(ServiceState::Error, 0, stamp(1), "exited 1"));
        assert_eq!(
            sv(svdir.path(), &["status", "web"]).1,
            "down: web: Ns, normally up, want up [error: exited 1; last output: bind: Address in use]\n"
        );
        // A healthy service's status does not read its output.
        main.set_state(&full(ServiceState::Down, 0, stamp(1), ""));
        assert_eq!(
            sv(svdir.path(), &["status", "web"]).1,
            "down: web: Ns, normally up, want up [down]\n"
        );
    }

    #[test]
    fn status_without_services_lists_svdir() {
        let svdir = tempfile::tempdir().unwrap();
        let _b = FakeSupervisor::new(&svdir.path().join("b"), running(2, stamp(1)));
        let _a = FakeSupervisor::new(&svdir.path().join("a"), down(b'd', stamp(1)));
        let bad = svdir.path().join("c");
        let _c = FakeSupervisor::new(&bad, running(3, stamp(1)));
        write_atomically(&bad.join("supervise/status"), &[0u8; 18], 0o644).unwrap();
        std::fs::create_dir(svdir.path().join(".hidden")).unwrap();
        std::fs::write(svdir.path().join("file"), "").unwrap();
        std::fs::write(svdir.path().join("a/down"), "").unwrap();
        assert_eq!(
            sv(svdir.path(), &["status"]),
            (
                1,
                "down: a: Ns\nrun: b: (pid 2) Ns\n\
                 warning: c: unable to read supervise/status: bad format\n"
                    .to_string()
            )
        );
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(sv(empty.path(), &["status"]), (0, String::new()));
        assert_eq!(
            sv(empty.path(), &["status", "--json"]),
            (0, "[]\n".to_string())
        );
        assert_eq!(
            sv(empty.path(), &["--json", "status"]),
            (0, "[]\n".to_string())
        );
    }

    #[test]
    fn json_status() {
        let svdir = tempfile::tempdir().unwrap();
        let db = FakeSupervisor::new(&svdir.path().join("db"), down(b'u', stamp(5)));
        let mut error = full(ServiceState::Error, 0, stamp(7), "exec \"db\": not found");
        error.last_exit = Some(runsv::supervise::ExitStatus::Exited(127));
        db.set_state(&error);
        let _web = FakeSupervisor::new(&svdir.path().join("web"), running(9, stamp(6)));
        let (code, text) = run_captured(
            &["sv", "status", "--json", "db", "web", "nonexist"],
            svdir.path().as_os_str(),
        );
        let root = svdir.path().to_string_lossy();
        assert_eq!(code, 1);
        assert_eq!(
            text,
            format!(
                "[\n\
                 {{\"name\":\"db\",\"path\":\"{root}/db\",\"state\":\"error\",\"want\":\"up\",\
                 \"pid\":null,\"since\":7.000000000,\"normally\":\"up\",\"paused\":false,\
                 \"got_term\":false,\"last_exit\":\"exit 127\",\"restarts\":0,\
                 \"reason\":\"exec \\\"db\\\": not found\",\"oneshot\":false,\
                 \"tracking\":\"process group\",\"cgroup\":null,\"processes\":null,\
                 \"memory\":null,\"log\":null}},\n\
                 {{\"name\":\"web\",\"path\":\"{root}/web\",\"state\":\"running\",\"want\":\"up\",\
                 \"pid\":9,\"since\":6.000000000,\"normally\":\"up\",\"paused\":false,\
                 \"got_term\":false,\"last_exit\":null,\"restarts\":null,\"reason\":null,\
                 \"oneshot\":null,\"tracking\":\"process group\",\"cgroup\":null,\
                 \"processes\":null,\"memory\":null,\"log\":null}},\n\
                 {{\"name\":\"nonexist\",\"path\":\"{root}/nonexist\",\
                 \"error\":\"unable to change to service directory: file does not exist\"}}\n\
                 ]\n"
            )
        );
    }

    #[test]
    fn lsb_exit_codes() {
        let svdir = tempfile::tempdir().unwrap();
        let lsb = |name: &str, command: &str| {
            let argv0 = format!("/etc/init.d/{name}");
            run_captured(&[&argv0, command], svdir.path().as_os_str())
        };
        let up = FakeSupervisor::new(&svdir.path().join("up"), running(4, stamp(1)));
        assert_eq!(lsb("up", "status").0, 0);
        let _down = FakeSupervisor::new(&svdir.path().join("down"), down(b'd', stamp(1)));
        assert_eq!(lsb("down", "status").0, 3);
        // A running log does not make a down service "running" (runit 2.1.2 said 0).
        let _log = FakeSupervisor::new(&svdir.path().join("down/log"), running(5, stamp(1)));
        assert_eq!(lsb("down", "status").0, 3);
        write_atomically(&up.supervise().status(), &[0u8; 18], 0o644).unwrap();
        assert_eq!(lsb("up", "status").0, 4);
        let mut dead = FakeSupervisor::new(&svdir.path().join("dead"), down(b'd', stamp(1)));
        dead.stop();
        assert_eq!(
            lsb("dead", "status"),
            (1, "fail: dead: runsv not running\n".into())
        );
        assert_eq!(lsb("nonexist", "status").0, 1);
        assert_eq!(lsb("down", "sig").0, 2);
        assert_eq!(lsb("down", "bogus").0, 2);
    }

    #[test]
    fn usage_and_send_suppression() {
        let svdir = tempfile::tempdir().unwrap();
        assert_eq!(sv(svdir.path(), &["up"]).0, 100);
        assert_eq!(sv(svdir.path(), &["bogus", "x"]).0, 100);
        let mut fake = FakeSupervisor::new(&svdir.path().join("x"), running(3, stamp(1)));
        assert_eq!(sv(svdir.path(), &["up", "x"]), (0, String::new()));
        assert_eq!(fake.received(), "", "already wanted up: nothing written");
        assert_eq!(
            sv(svdir.path(), &["-w", "0", "restart", "x", "nonexist"]).0,
            2
        );
        assert_eq!(fake.received(), "tcu");
        let mut once = running(3, stamp(1));
        once.want = b'd';
        fake.set_status(once);
        sv(svdir.path(), &["down", "x"]);
        assert_eq!(fake.received(), "d", "down after once still sends");
        once.term_sent = true;
        fake.set_status(once);
        sv(svdir.path(), &["down", "x"]);
        assert_eq!(fake.received(), "");
        fake.stop();
        assert_eq!(
            sv(svdir.path(), &["hup", "x"]),
            (1, "fail: x: runsv not running\n".to_string())
        );
        assert_eq!(
            sv(svdir.path(), &["exit", "x"]),
            (0, "ok: x: runsv not running\n".to_string())
        );
    }

    /// Writes `status` (and `state`) into a fake supervisor's directory after a delay,
    /// as a runsv acting on the command would.
    fn later(fake: &FakeSupervisor, status: Status, state: Option<runsv::supervise::FullState>) {
        let supervise = fake.supervise();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(150));
            if let Some(state) = state {
                write_atomically(&supervise.state(), state.encode().as_bytes(), 0o644).unwrap();
            }
            write_atomically(&supervise.status(), &status.encode(), 0o644).unwrap();
        });
    }

    #[test]
    fn up_waits_for_running_and_ready() {
        let svdir = tempfile::tempdir().unwrap();
        let mut fake = FakeSupervisor::new(&svdir.path().join("x"), down(b'd', stamp(1)));
        fake.set_state(&full(ServiceState::Down, 0, stamp(1), ""));
        let future = runsv::tai64n::Timestamp {
            seconds: now().seconds + 100,
            nanoseconds: 0,
        };
        later(
            &fake,
            running(42, future),
            Some(full(ServiceState::Running, 42, future, "")),
        );
        let started = Instant::now();
        assert_eq!(
            sv(svdir.path(), &["-w", "20", "up", "x"]),
            (0, "ok: run: x: (pid 42) Ns [running]\n".to_string())
        );
        assert!(started.elapsed() < Duration::from_secs(20));
        assert_eq!(fake.received(), "u");
    }

    #[test]
    fn an_error_ends_the_wait_at_once() {
        let svdir = tempfile::tempdir().unwrap();
        let fake = FakeSupervisor::new(&svdir.path().join("x"), down(b'd', stamp(1)));
        let mut error = full(ServiceState::Error, 0, now(), "dependency db failed");
        error.since.seconds += 100;
        later(&fake, down(b'u', error.since), Some(error));
        assert_eq!(
            sv(svdir.path(), &["-w", "20", "start", "x"]),
            (1, "fail: x: dependency db failed\n".to_string())
        );
    }

    #[test]
    fn force_stop_kills_on_timeout() {
        let svdir = tempfile::tempdir().unwrap();
        let mut fake = FakeSupervisor::new(&svdir.path().join("x"), running(7, stamp(1)));
        assert_eq!(
            sv(svdir.path(), &["-w", "0", "force-stop", "x"]),
            (1, "kill: run: x: (pid 7) Ns\n".to_string())
        );
        assert_eq!(fake.received(), "dk");
        assert_eq!(
            sv(svdir.path(), &["-w", "0", "stop", "x"]),
            (1, "timeout: run: x: (pid 7) Ns\n".to_string())
        );
    }

    #[test]
    fn exit_waits_for_the_supervisor_to_go() {
        let svdir = tempfile::tempdir().unwrap();
        let mut fake = FakeSupervisor::new(&svdir.path().join("x"), running(7, stamp(1)));
        let control = fake.received();
        assert_eq!(control, "");
        let handle = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(150));
            fake.stop();
            fake
        });
        assert_eq!(
            sv(svdir.path(), &["-w", "20", "shutdown", "x"]),
            (0, "ok: x: runsv not running\n".to_string())
        );
        let mut fake = handle.join().unwrap();
        assert_eq!(fake.received(), "x");
    }
}
