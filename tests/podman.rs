//! runtree as PID 1 of a real engine's container: podman (with runc) runs an image
//! made of busybox-static, the static binaries (scripts/build-static) and a small tree
//! of services, built once per run of this file (src/podman.rs).
//!
//! Skipped with the reason printed where the engine cannot start (no podman, not
//! root, no busybox-static), unless `RUNTREE_PODMAN_REQUIRED=1` (CI sets it), which
//! turns a skip into a failure. Every container has a name unique to the run and is
//! removed by name (a Drop guard, so also when a check fails); the image is removed
//! when the test process exits.

use runtree::podman::{self, BuildError, Container, Engine};
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// podman's default: `podman stop` SIGKILLs the container this long after the signal.
const ENGINE_GRACE: Duration = Duration::from_secs(10);

/// The tree: setup (a oneshot) ← db ← web, each saying on the console when it starts
/// and when TERM stops it, and in /log/events (on the container's own layer, so it can
/// be read after the stop: the console's lines from different services can arrive out
/// of order; a read-only container mounts a tmpfs there). The others act only where the container asks (a file in /run) and sleep
/// otherwise: stubborn ignores TERM, crashy keeps exiting 1, critical (once web is up)
/// exits 2 with `on_failure: stop`; asks and plain say what FOO they got, asks taking it from the
/// container's environment.
fn populate(root: &Path) -> Result<(), String> {
    std::fs::create_dir_all(root.join("log")).map_err(|e| e.to_string())?;
    let longrun = |name: &str, after: &str| {
        podman::service(
            root,
            name,
            &format!(
                "exec: sh -c 'trap \"echo stop {name}; echo stop {name} >> /log/events; exit 0\" TERM; echo start {name}; echo start {name} >> /log/events; while :; do sleep 1; done'\n{after}"
            ),
        )
    };
    longrun("db", "after: [setup]\ntest: sh -c 'true'\n")?;
    longrun("web", "after: [db]\n")?;
    podman::service(
        root,
        "setup",
        "exec: sh -c 'echo start setup; echo start setup >> /log/events'\noneshot: true\n",
    )?;
    podman::service(
        root,
        "stubborn",
        "exec: sh -c 'test -e /run/stubborn || exec sleep 100000; trap \"echo stubborn ignores TERM\" TERM; echo start stubborn; while :; do sleep 1; done'\n",
    )?;
    podman::service(
        root,
        "crashy",
        "exec: sh -c 'test -e /run/crashy || exec sleep 100000; echo crashy exits 1; exit 1'\nrestart_delay: 0.5\n",
    )?;
    podman::service(
        root,
        "critical",
        "exec: sh -c 'test -e /run/critical || exec sleep 100000; echo critical exits 2; exit 2'\non_failure: stop\nrestart_delay: 30\nrestart_delay_max: 30\nafter: [web]\n",
    )?;
    let says_foo = |name: &str, extra: &str| {
        podman::service(
            root,
            name,
            &format!(
                "exec: sh -c 'echo \"{name} FOO=${{FOO-unset}}\"; exec sleep 100000'\n{extra}"
            ),
        )
    };
    says_foo("asks", "container_env: [FOO]\n")?;
    says_foo("plain", "")
}

/// Builds the image once; Err is the reason the engine cannot be used here.
fn engine() -> Result<&'static Engine, String> {
    static ENGINE: OnceLock<Result<Engine, String>> = OnceLock::new();
    ENGINE
        .get_or_init(|| match podman::build("test", populate) {
            Ok(engine) => Ok(engine),
            Err(BuildError::Unavailable(reason)) => Err(reason),
            Err(BuildError::Failed(reason)) => panic!("{reason}"),
        })
        .as_ref()
        .map_err(|reason| reason.clone())
}

/// The engine, or None where it cannot run here: the test is then skipped, saying why
/// (or fails, where RUNTREE_PODMAN_REQUIRED=1 asks for these tests).
fn usable_engine() -> Option<&'static Engine> {
    let reason = match engine() {
        Ok(engine) => return Some(engine),
        Err(reason) => reason,
    };
    runtree::skip("the podman tests are", "RUNTREE_PODMAN_REQUIRED", &reason);
    None
}

fn run(engine: &Engine, label: &str, extra: &[&str], command: &[&str]) -> Container {
    Container::run(engine, label, extra, command).unwrap_or_else(|e| panic!("{e}"))
}

fn events(c: &Container) -> Vec<String> {
    c.file("/log/events").lines().map(str::to_string).collect()
}

#[test]
fn ordered_start_then_podman_stop_with_its_default_signal_is_quick_clean_and_ordered() {
    let Some(engine) = usable_engine() else {
        return;
    };
    let started = Instant::now();
    let mut c = run(engine, "order", &[], &["/sbin/init"]);
    assert!(
        c.wait_line("start web", Duration::from_secs(60)),
        "never started:\n{}",
        c.seen.join("\n")
    );
    let up = started.elapsed();
    let took = c.stop().unwrap();
    let code = c.exit_code();
    let logs = c.all_logs();
    let events = events(&c);
    assert_eq!(
        events,
        [
            "start setup",
            "start db",
            "start web",
            "stop web",
            "stop db"
        ],
        "{logs}"
    );
    eprintln!("podman run to all started: {up:?}; podman stop: {took:?}");
    assert_eq!(code, 0, "{logs}");
    assert!(took < ENGINE_GRACE / 2, "podman stop took {took:?}\n{logs}");
    assert!(
        logs.contains("SIGRTMIN+3 (37): poweroff requested"),
        "{logs}"
    );
    assert!(!logs.contains("sending KILL"), "{logs}");
}

#[test]
fn a_service_ignoring_term_still_ends_within_the_grace_with_a_non_zero_exit() {
    let Some(engine) = usable_engine() else {
        return;
    };
    let mut c = run(
        engine,
        "stubborn",
        &[],
        &["/bin/sh", "-c", "touch /run/stubborn; exec /sbin/init"],
    );
    assert!(
        c.wait_line("start stubborn", Duration::from_secs(60))
            && c.wait_line("start web", Duration::from_secs(60)),
        "never started:\n{}",
        c.seen.join("\n")
    );
    // Not /sbin/init as the command: podman sends SIGTERM here.
    let took = c.stop().unwrap();
    let code = c.exit_code();
    let logs = c.all_logs();
    eprintln!("podman stop with a service ignoring TERM: {took:?}, exit {code}");
    assert!(
        took < ENGINE_GRACE - Duration::from_secs(2),
        "podman stop took {took:?}: the engine's SIGKILL, not init, ended it\n{logs}"
    );
    assert_ne!(code, 0, "{logs}");
    assert_ne!(code, 137, "SIGKILLed by the engine\n{logs}");
    assert!(logs.contains("init: SIGTERM: poweroff requested"), "{logs}");
    assert!(logs.contains("stubborn"), "{logs}");
    assert!(logs.contains("init: exiting with status"), "{logs}");
}

#[test]
fn the_main_program_runs_and_its_exit_code_is_the_containers() {
    let Some(engine) = usable_engine() else {
        return;
    };
    // It waits for the tree (web up: sv says run, and web has recorded its start), then exits 3: the tree stops, init exits 3.
    let mut c = run(
        engine,
        "main",
        &[],
        &[
            "/sbin/init",
            "--",
            "sh",
            "-c",
            "until sv status web | grep -q '^run:' && grep -q 'start web' /log/events; do sleep 0.1; done; echo main $((1+2)) >> /log/events; exit 3",
        ],
    );
    let code = c.wait(Duration::from_secs(60));
    let logs = c.all_logs();
    assert_eq!(code, Ok(3), "{logs}");
    assert_eq!(c.exit_code(), 3, "{logs}");
    assert!(logs.contains("the main program exited 3"), "{logs}");
    assert_eq!(
        events(&c),
        [
            "start setup",
            "start db",
            "start web",
            "main 3",
            "stop web",
            "stop db"
        ],
        "{logs}"
    );
}

/// The host's view of the processes in the container, from inside: `PID STATE` of each
/// (a zombie's state is Z), and the whole command line of each.
fn processes(c: &Container) -> Vec<(char, String)> {
    let (_, text) = c.exec(&[
        "sh",
        "-c",
        "for p in /proc/[0-9]*; do s=$(cat $p/stat 2>/dev/null) || continue; \
         echo \"${s##*) } $(tr '\\0' ' ' < $p/cmdline 2>/dev/null)\"; done",
    ]);
    text.lines()
        .filter_map(|line| {
            // The state, the other stat fields, then the command line: the test looks
            // for words in the rest.
            let state = line.chars().next()?;
            Some((state, line.split_once(' ')?.1.to_string()))
        })
        .collect()
}

#[test]
fn the_containers_environment_reaches_a_service_that_asks_for_it_and_orphans_are_reaped() {
    let Some(engine) = usable_engine() else {
        return;
    };
    let mut c = run(engine, "env", &["-e", "FOO=bar"], &["/sbin/init"]);
    assert!(
        c.wait_line("asks FOO=bar", Duration::from_secs(60))
            && c.wait_line("plain FOO=unset", Duration::from_secs(60)),
        "{}",
        c.seen.join("\n")
    );
    // Kept where services and sv read it: one file per variable.
    assert_eq!(
        c.exec(&["cat", "/run/runtree/env/FOO"]),
        (0, "bar".to_string())
    );
    // Twenty orphans, reparented to init when their shell exits at once.
    let (code, text) = c.exec(&[
        "sh",
        "-c",
        "for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do (sleep 0.3 &); done",
    ]);
    assert_eq!(code, 0, "{text}");
    // Once they have exited, no zombie is left: init reaped them all.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let last = processes(&c);
        let orphans = last.iter().any(|(_, cmd)| cmd.contains("sleep 0.3"));
        let zombies = last.iter().filter(|(state, _)| *state == 'Z').count();
        if !orphans && zombies == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "zombies or orphans left: {last:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let took = c.stop().unwrap();
    assert_eq!(c.exit_code(), 0, "{}", c.all_logs());
    assert!(took < ENGINE_GRACE / 2, "{took:?}");
}

#[test]
fn a_read_only_root_keeps_the_state_under_run() {
    let Some(engine) = usable_engine() else {
        return;
    };
    let mut c = run(
        engine,
        "readonly",
        &["--read-only", "--tmpfs", "/log"],
        &["/sbin/init"],
    );
    assert!(
        c.wait_line("start web", Duration::from_secs(60)),
        "never started:\n{}",
        c.seen.join("\n")
    );
    let (code, text) = c.exec(&["sv", "status", "web", "db"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.starts_with("run: web: (pid "), "{text}");
    let (code, text) = c.exec(&["ls", "/run/runtree/supervise/service/web/supervise/state"]);
    assert_eq!(code, 0, "{text}");
    // sv finds the tree (published, with its sync control under /run too).
    let (code, text) = c.exec(&["sv", "sync"]);
    assert_eq!(code, 0, "{text}");
    let took = c.stop().unwrap();
    let logs = c.all_logs();
    assert_eq!(c.exit_code(), 0, "{logs}");
    assert!(took < ENGINE_GRACE / 2, "{took:?}\n{logs}");
    assert!(!logs.contains("fatal"), "{logs}");
    assert!(logs.contains("stopped 8 services cleanly"), "{logs}");
}

#[test]
fn a_read_only_root_with_no_writable_run_is_an_error_and_a_failed_exit() {
    let Some(engine) = usable_engine() else {
        return;
    };
    let mut c = run(
        engine,
        "nostate",
        // Not taken for systemd, which would get a tmpfs on /run whatever the rest says.
        &[
            "--read-only",
            "--read-only-tmpfs=false",
            "--systemd=false",
            "--tmpfs",
            "/log",
        ],
        &["/sbin/init"],
    );
    // Nothing can run. critical's failure (its runsv's: on_failure: stop) ends the
    // container at once, so some runsvs are told to exit before they get as far.
    let code = c.wait(Duration::from_secs(60));
    let logs = c.all_logs();
    assert_eq!(code, Ok(1), "{logs}");
    let mut failed = 0;
    for service in [
        "setup", "db", "web", "stubborn", "crashy", "critical", "asks", "plain",
    ] {
        let fatal = format!(
            "/service/{service}: fatal: unable to mkdir supervise: read-only file system; \
             nor /run/runtree/supervise/service/{service}/supervise"
        );
        match logs.matches(&fatal).count() {
            0 => continue,
            1 => failed += 1,
            _ => panic!("{service}: more than once: a retry loop\n{logs}"),
        }
        assert!(
            logs.contains(&format!(
                "svdir: {service}: ended in error: its runsv could create supervise/ nowhere"
            )),
            "{service}\n{logs}"
        );
    }
    assert!(failed >= 1, "{logs}");
    assert!(
        logs.contains(&format!(
            "svdir: stopped 8 services; {failed} ended in error or had to be killed"
        )),
        "{logs}"
    );
    assert!(logs.contains("init: exiting with status 1"), "{logs}");
    assert!(!logs.contains("cleanly"), "{logs}");
    assert!(
        !logs.contains("runsv runsv"),
        "lines interleaved mid-line\n{logs}"
    );
}

#[test]
fn a_crash_loop_at_the_stop_is_a_non_zero_exit_naming_the_service() {
    let Some(engine) = usable_engine() else {
        return;
    };
    let mut c = run(
        engine,
        "crashy",
        &[],
        &["/bin/sh", "-c", "touch /run/crashy; exec /sbin/init"],
    );
    assert!(
        c.wait_line(
            "crashy: failed: respawn (crash loop",
            Duration::from_secs(60)
        ) && c.wait_line("start web", Duration::from_secs(60)),
        "{}",
        c.seen.join("\n")
    );
    c.stop().unwrap();
    let logs = c.all_logs();
    assert_eq!(c.exit_code(), 1, "{logs}");
    // Caught waiting for its restart, or running again a moment after a crash.
    let line = logs
        .lines()
        .find(|l| l.contains("svdir: crashy: was failing when the stop began: "))
        .unwrap_or_else(|| panic!("crashy not named\n{logs}"));
    assert!(line.contains("crash loop"), "{logs}");
}

#[test]
fn on_failure_stop_ends_the_container_with_a_failure_status() {
    let Some(engine) = usable_engine() else {
        return;
    };
    let mut c = run(
        engine,
        "critical",
        &[],
        &["/bin/sh", "-c", "touch /run/critical; exec /sbin/init"],
    );
    // Nobody stops it: the failure does.
    let code = c.wait(Duration::from_secs(60));
    let logs = c.all_logs();
    assert_eq!(code, Ok(1), "{logs}");
    assert!(
        logs.contains("critical: failed: respawn (crash loop): exited 2")
            && logs.contains("on_failure is stop: asked init to stop the tree"),
        "{logs}"
    );
    assert!(logs.contains("init: SIGUSR2: poweroff requested"), "{logs}");
    let events = events(&c);
    let at = |line: &str| events.iter().position(|e| e == line);
    assert!(
        at("stop web").is_some() && at("stop web") < at("stop db"),
        "{events:?}\n{logs}"
    );
}

#[test]
fn the_health_command_tells_the_engine_when_a_service_crash_loops() {
    let Some(engine) = usable_engine() else {
        return;
    };
    let mut c = run(
        engine,
        "health",
        &[
            "--health-cmd",
            "sv health",
            "--health-interval",
            "disable",
            "--health-retries",
            "1",
        ],
        &["/sbin/init"],
    );
    assert!(
        c.wait_line("start web", Duration::from_secs(60)),
        "{}",
        c.seen.join("\n")
    );
    let check = || {
        podman::podman(
            &c.conf,
            &["healthcheck", "run", &c.name],
            Duration::from_secs(30),
        )
    };
    let (code, out, err) = check();
    assert_eq!(code, 0, "{out}{err}");
    // crashy now crashes at every start.
    assert_eq!(c.exec(&["touch", "/run/crashy"]).0, 0);
    c.exec(&["sv", "-w", "1", "restart", "crashy"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = check();
    while last.0 == 0 {
        assert!(Instant::now() < deadline, "still healthy: {last:?}");
        std::thread::sleep(Duration::from_millis(200));
        last = check();
    }
    assert_eq!(last.0, 1, "{last:?}");
    let (_, status, _) = podman::podman(
        &c.conf,
        &[
            "inspect",
            "--format",
            "{{.State.Health.Status}} {{json .State.Health.Log}}",
            &c.name,
        ],
        Duration::from_secs(30),
    );
    assert!(status.starts_with("unhealthy"), "{status}");
    assert!(status.contains("fail: crashy: respawn"), "{status}");
    assert!(status.contains("ok: web: running"), "{status}");
}

/// Removes a container by name when dropped.
struct Removed<'a>(&'a Engine, String);

impl Drop for Removed<'_> {
    fn drop(&mut self) {
        podman::podman(
            &self.0.conf,
            &["rm", "-f", &self.1],
            Duration::from_secs(60),
        );
    }
}

#[test]
fn ctrl_c_in_podman_run_it_stops_cleanly_with_the_main_programs_code() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Command, Stdio};
    let Some(engine) = usable_engine() else {
        return;
    };
    // The main program decides: one ends on INT with 0, one is killed by it (130).
    for (label, main, expected) in [
        (
            "tty-trap",
            "trap \"echo main got INT; exit 0\" INT; echo main ready; while :; do sleep 0.1; done",
            0,
        ),
        ("tty-killed", "echo main ready; exec sleep 100000", 130),
    ] {
        let name = format!("runtree-{label}-{}", std::process::id());
        let _removed = Removed(engine, name.clone());
        // A terminal for `podman run -it`: script(1) opens a pty; what the test writes
        // to its stdin is typed there.
        let command = format!(
            "podman run -it --name {name} {} /sbin/init -- sh -c '{main}'",
            engine.image
        );
        let mut script = Command::new("timeout")
            .args(["-k", "5", "60", "script", "-qfec", &command, "/dev/null"])
            .env("CONTAINERS_CONF", &engine.conf)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("script");
        let stdout = script.stdout.take().unwrap();
        let (send, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        let mut seen = Vec::new();
        let mut wait_for = |text: &str| {
            let deadline = Instant::now() + Duration::from_secs(60);
            while !seen.iter().any(|l: &String| l.contains(text)) {
                let left = deadline.saturating_duration_since(Instant::now());
                match lines.recv_timeout(left) {
                    Ok(line) => seen.push(line),
                    Err(_) => panic!("{label}: never saw {text:?}:\n{}", seen.join("\n")),
                }
            }
        };
        wait_for("main ready");
        wait_for("start web");
        script
            .stdin
            .as_mut()
            .unwrap()
            .write_all(b"\x03")
            .expect("Ctrl-C");
        let status = script.wait().expect("script");
        wait_for("exiting with status");
        let text = seen.join("\n");
        assert_eq!(status.code(), Some(expected), "{label}:\n{text}");
        let (_, code, _) = podman::podman(
            &engine.conf,
            &["inspect", "--format", "{{.State.ExitCode}}", &name],
            Duration::from_secs(30),
        );
        assert_eq!(code.trim(), expected.to_string(), "{label}:\n{text}");
        assert!(
            text.contains(&format!("the main program exited {expected}")),
            "{label}:\n{text}"
        );
        assert!(
            text.contains("stopped every service cleanly"),
            "{label}:\n{text}"
        );
    }
}
