//! runtree as PID 1 of a real engine's container: podman (with runc) runs an image
//! made of busybox-static, the static binaries (scripts/build-static) and a small tree
//! of services, built once per run of this file with `podman import`.
//!
//! Skipped with the reason printed where the engine cannot start (no podman, not
//! root, no busybox-static), unless `RUNTREE_PODMAN_REQUIRED=1` (CI sets it), which
//! turns a skip into a failure. Every container has a name unique to the run and is
//! removed by name (a Drop guard, so also when a check fails); the image is removed
//! when the test process exits.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// podman's default: `podman stop` SIGKILLs the container this long after the signal.
const ENGINE_GRACE: Duration = Duration::from_secs(10);

/// The tree: setup (a oneshot) ← db ← web, each saying on the console when it starts
/// and when TERM stops it, and in /events (on the container's own layer, so it can
/// be read after the stop: the console's lines from different services can arrive out
/// of order); stubborn (only where the container asks) ignores TERM.
fn service(root: &Path, name: &str, yaml: &str) {
    let dir = root.join("service").join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("service.yaml"), yaml).unwrap();
}

fn longrun(root: &Path, name: &str, after: &str) {
    service(
        root,
        name,
        &format!(
            "exec: sh -c 'trap \"echo stop {name}; echo stop {name} >> /events; exit 0\" TERM; echo start {name}; echo start {name} >> /events; while :; do sleep 1; done'\n{after}"
        ),
    );
}

struct Engine {
    image: String,
    conf: PathBuf,
}

/// Builds the image once; Err is the reason the engine cannot be used here.
fn engine() -> Result<&'static Engine, String> {
    static ENGINE: OnceLock<Result<Engine, String>> = OnceLock::new();
    ENGINE
        .get_or_init(build)
        .as_ref()
        .map_err(|reason| reason.clone())
}

fn skip(reason: &str) {
    if std::env::var("RUNTREE_PODMAN_REQUIRED").as_deref() == Ok("1") {
        panic!(
            "the podman tests are required (RUNTREE_PODMAN_REQUIRED=1) but cannot run: {reason}"
        );
    }
    eprintln!("skipped: {reason}");
}

fn build() -> Result<Engine, String> {
    if !nix::unistd::geteuid().is_root() {
        return Err("needs root for podman with runc".into());
    }
    let busybox = Path::new("/bin/busybox");
    if !busybox.exists() {
        return Err("no /bin/busybox (apt-get install busybox-static)".into());
    }
    let workdir = std::env::temp_dir().join(format!("runtree-podman-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&workdir);
    std::fs::create_dir_all(&workdir).map_err(|e| format!("{}: {e}", workdir.display()))?;
    // These machines' hard limits are below podman's default ulimits, and crun refuses
    // their hybrid cgroup layout: a private configuration, /etc untouched.
    let conf = workdir.join("containers.conf");
    std::fs::write(
        &conf,
        "[containers]\ndefault_ulimits = [\"nofile=20000:20000\", \"nproc=32768:32768\"]\n\n[engine]\nruntime = \"runc\"\n",
    )
    .map_err(|e| e.to_string())?;
    let version = Command::new("podman")
        .arg("--version")
        .env("CONTAINERS_CONF", &conf)
        .output();
    match version {
        Ok(out) if out.status.success() => {}
        _ => return Err("podman is not installed (apt-get install podman runc)".into()),
    }

    let root = workdir.join("rootfs");
    for dir in ["bin", "sbin", "proc", "sys", "dev", "run", "tmp", "etc"] {
        std::fs::create_dir_all(root.join(dir)).map_err(|e| e.to_string())?;
    }
    std::fs::copy(busybox, root.join("bin/busybox")).map_err(|e| e.to_string())?;
    let list = Command::new(busybox)
        .arg("--list")
        .output()
        .map_err(|e| e.to_string())?;
    for applet in String::from_utf8_lossy(&list.stdout).split_whitespace() {
        let link = root.join("bin").join(applet);
        if applet != "busybox" && !link.exists() {
            std::os::unix::fs::symlink("busybox", link).map_err(|e| e.to_string())?;
        }
    }
    // The static binaries, as a user installs them (init, svdir, runsv in sbin, sv in bin).
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/build-static");
    let mut build = Command::new(&script);
    build.arg(&root).stdin(Stdio::null());
    if let Err(failed) = runtree::succeeded(&mut build, "scripts/build-static") {
        panic!("{failed}");
    }
    longrun(&root, "db", "after: [setup]\ntest: sh -c 'true'\n");
    longrun(&root, "web", "after: [db]\n");
    service(
        &root,
        "setup",
        "exec: sh -c 'echo start setup; echo start setup >> /events'\noneshot: true\n",
    );
    // Stubborn only where the container makes /run/stubborn first; elsewhere a sleep
    // that TERM ends.
    service(
        &root,
        "stubborn",
        "exec: sh -c 'test -e /run/stubborn || exec sleep 100000; trap \"echo stubborn ignores TERM\" TERM; echo start stubborn; while :; do sleep 1; done'\n",
    );

    let image = format!("localhost/runtree-test-{}:latest", std::process::id());
    let tar = Command::new("tar")
        .args(["-C"])
        .arg(&root)
        .args(["-c", "."])
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("tar: {e}"))?;
    let Some(tar_out) = tar.stdout else {
        return Err("tar: no stdout".into());
    };
    let mut import = Command::new("timeout");
    import
        .args(["-k", "5", "120", "podman", "import", "-", &image])
        .env("CONTAINERS_CONF", &conf)
        .stdin(tar_out);
    runtree::succeeded(&mut import, "podman import")?;
    remove_image_at_exit(&image, &conf);
    let _ = std::fs::remove_dir_all(&root);
    Ok(Engine { image, conf })
}

/// The image outlives every test (they share it): it goes when the process exits.
fn remove_image_at_exit(image: &str, conf: &Path) {
    static CLEANUP: OnceLock<(String, PathBuf)> = OnceLock::new();
    let _ = CLEANUP.set((image.to_string(), conf.to_path_buf()));
    extern "C" fn cleanup() {
        if let Some((image, conf)) = CLEANUP.get() {
            let _ = Command::new("timeout")
                .args(["-k", "5", "60", "podman", "rmi", "-f", image])
                .env("CONTAINERS_CONF", conf)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            if let Some(dir) = conf.parent() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }
    // SAFETY: registers a plain extern "C" function.
    unsafe {
        nix::libc::atexit(cleanup);
    }
}

/// One running container, removed by name when dropped.
struct Container {
    name: String,
    conf: PathBuf,
    logs: Option<Child>,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

fn podman(conf: &Path, args: &[&str], timeout: Duration) -> (i32, String, String) {
    let out = Command::new("timeout")
        .args(["-k", "5", &timeout.as_secs().to_string(), "podman"])
        .args(args)
        .env("CONTAINERS_CONF", conf)
        .stdin(Stdio::null())
        .output()
        .expect("podman");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

impl Container {
    /// `podman run -d` of the image with `/sbin/init` as the command (so podman takes
    /// it for systemd and stops it with SIGRTMIN+3), `extra` before the image.
    /// `podman run` of `command` in the image, for the test `test`; None (the test is
    /// skipped, and says why) where the engine cannot be used.
    fn run(test: &str, command: &[&str]) -> Option<Container> {
        let engine = match engine() {
            Ok(engine) => engine,
            Err(reason) => {
                skip(&reason);
                return None;
            }
        };
        Some(Container::started(engine, test, command))
    }

    fn started(engine: &Engine, test: &str, command: &[&str]) -> Container {
        let name = format!("runtree-{test}-{}", std::process::id());
        let mut args = vec!["run", "-d", "--name", &name];
        args.push(&engine.image);
        args.extend_from_slice(command);
        let (code, _, err) = podman(&engine.conf, &args, Duration::from_secs(60));
        assert_eq!(code, 0, "podman run: {err}");
        let mut logs = Command::new("podman")
            .args(["logs", "-f", &name])
            .env("CONTAINERS_CONF", &engine.conf)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("podman logs -f");
        let (send, lines) = mpsc::channel();
        for stream in [
            logs.stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            logs.stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let send = send.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if send.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        Container {
            name,
            conf: engine.conf.clone(),
            logs: Some(logs),
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a log line containing `text`; all lines seen are kept.
    fn wait_line(&mut self, text: &str, timeout: Duration) -> bool {
        if self.seen.iter().any(|l| l.contains(text)) {
            return true;
        }
        let deadline = Instant::now() + timeout;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let found = line.contains(text);
                    self.seen.push(line);
                    if found {
                        return true;
                    }
                }
                Err(_) => return false,
            }
        }
        false
    }

    /// `podman stop` with the default signal and grace; how long it took.
    fn stop(&self) -> Duration {
        let started = Instant::now();
        let (code, _, err) = podman(&self.conf, &["stop", &self.name], Duration::from_secs(30));
        assert_eq!(code, 0, "podman stop: {err}");
        started.elapsed()
    }

    fn exit_code(&self) -> i32 {
        let (_, out, _) = podman(
            &self.conf,
            &["inspect", "--format", "{{.State.ExitCode}}", &self.name],
            Duration::from_secs(30),
        );
        out.trim().parse().unwrap_or(-1)
    }

    /// Everything the container logged, after it stopped.
    fn all_logs(&mut self) -> String {
        // `podman logs -f` ends with the container; drain what it sent.
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => break,
            }
        }
        self.seen.join("\n")
    }

    /// The container's /events, one event a line, in the order they happened.
    fn events(&self) -> Vec<String> {
        let dir = tempfile::tempdir().expect("tempdir");
        let copy = dir.path().join("events");
        let target = copy.display().to_string();
        let (code, _, err) = podman(
            &self.conf,
            &["cp", &format!("{}:/events", self.name), &target],
            Duration::from_secs(30),
        );
        assert_eq!(code, 0, "podman cp: {err}");
        std::fs::read_to_string(&copy)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = podman(
            &self.conf,
            &["rm", "-f", &self.name],
            Duration::from_secs(60),
        );
        if let Some(mut logs) = self.logs.take() {
            let _ = logs.kill();
            let _ = logs.wait();
        }
    }
}

#[test]
fn ordered_start_then_podman_stop_with_its_default_signal_is_quick_clean_and_ordered() {
    let Some(mut c) = Container::run("order", &["/sbin/init"]) else {
        return;
    };
    // From `podman run -d` returning (the image is built before, once for all tests).
    let started = Instant::now();
    assert!(
        c.wait_line("start web", Duration::from_secs(60)),
        "never started:\n{}",
        c.seen.join("\n")
    );
    let up = started.elapsed();
    let took = c.stop();
    let code = c.exit_code();
    let logs = c.all_logs();
    let events = c.events();
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
    eprintln!("podman run -d to all started: {up:?}; podman stop: {took:?}");
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
    let Some(mut c) = Container::run(
        "stubborn",
        &["/bin/sh", "-c", "touch /run/stubborn; exec /sbin/init"],
    ) else {
        return;
    };
    assert!(
        c.wait_line("start stubborn", Duration::from_secs(60))
            && c.wait_line("start web", Duration::from_secs(60)),
        "never started:\n{}",
        c.seen.join("\n")
    );
    // Not /sbin/init as the command: podman sends SIGTERM here.
    let took = c.stop();
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
    // It waits for the tree (web up: sv says run, and web has recorded its start), then exits 3: the tree stops, init exits 3.
    let Some(mut c) = Container::run("main", &[
            "/sbin/init",
            "--",
            "sh",
            "-c",
            "until sv status web | grep -q '^run:' && grep -q 'start web' /events; do sleep 0.1; done; echo main $((1+2)) >> /events; exit 3",
        ],
    ) else {
        return;
    };
    let (code, out, err) = podman(&c.conf, &["wait", &c.name], Duration::from_secs(60));
    assert_eq!(code, 0, "podman wait: {err}");
    let logs = c.all_logs();
    assert_eq!(out.trim(), "3", "{logs}");
    assert_eq!(c.exit_code(), 3, "{logs}");
    assert!(logs.contains("the main program exited 3"), "{logs}");
    assert_eq!(
        c.events(),
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
