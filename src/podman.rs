//! A real container engine for tests/podman.rs and the bench's `container` metric:
//! podman with runc, running an image made of busybox-static, runtree's static
//! binaries (scripts/build-static: init, svdir, runsv in /sbin, sv in /bin) and what
//! the caller adds, imported with `podman import` (no registry is reachable here).
//!
//! These machines' hard limits are below podman's default ulimits, and crun refuses
//! their hybrid cgroup layout: every podman command gets a private configuration
//! (CONTAINERS_CONF), /etc untouched. Every container has a name unique to the process
//! and is removed by name when dropped; an image is removed when the process exits.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Engine {
    pub image: String,
    pub conf: PathBuf,
}

/// Why there is no image.
#[derive(Debug)]
pub enum BuildError {
    /// The engine cannot run here (not root, no podman, no busybox-static): a skip.
    Unavailable(String),
    /// Something that should work did not (the static build, the import): a failure.
    Failed(String),
}

/// Builds an image named `localhost/runtree-NAME-PID`: busybox with every applet,
/// the static binaries, then `populate` adds to the root directory.
pub fn build(
    name: &str,
    populate: impl FnOnce(&Path) -> Result<(), String>,
) -> Result<Engine, BuildError> {
    use BuildError::{Failed, Unavailable};
    if !nix::unistd::geteuid().is_root() {
        return Err(Unavailable("needs root for podman with runc".into()));
    }
    let busybox = Path::new("/bin/busybox");
    if !busybox.exists() {
        return Err(Unavailable(
            "no /bin/busybox (apt-get install busybox-static)".into(),
        ));
    }
    let workdir =
        std::env::temp_dir().join(format!("runtree-podman-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&workdir);
    std::fs::create_dir_all(&workdir).map_err(|e| Failed(format!("{}: {e}", workdir.display())))?;
    let conf = workdir.join("containers.conf");
    std::fs::write(
        &conf,
        "[containers]\ndefault_ulimits = [\"nofile=20000:20000\", \"nproc=32768:32768\"]\n\n[engine]\nruntime = \"runc\"\n",
    )
    .map_err(|e| Failed(e.to_string()))?;
    let version = Command::new("podman")
        .arg("--version")
        .env("CONTAINERS_CONF", &conf)
        .output();
    match version {
        Ok(out) if out.status.success() => {}
        _ => {
            return Err(Unavailable(
                "podman is not installed (apt-get install podman runc)".into(),
            ))
        }
    }
    let root = workdir.join("rootfs");
    for dir in ["bin", "sbin", "proc", "sys", "dev", "run", "tmp", "etc"] {
        std::fs::create_dir_all(root.join(dir)).map_err(|e| Failed(e.to_string()))?;
    }
    std::fs::copy(busybox, root.join("bin/busybox")).map_err(|e| Failed(e.to_string()))?;
    let list = Command::new(busybox)
        .arg("--list")
        .output()
        .map_err(|e| Failed(e.to_string()))?;
    for applet in String::from_utf8_lossy(&list.stdout).split_whitespace() {
        let link = root.join("bin").join(applet);
        if applet != "busybox" && !link.exists() {
            std::os::unix::fs::symlink("busybox", link).map_err(|e| Failed(e.to_string()))?;
        }
    }
    // The static binaries, as a user installs them. One build at a time: tests of one
    // process share the target directory.
    static BUILDING: Mutex<()> = Mutex::new(());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/build-static");
    let built = {
        let _one = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
        Command::new(&script)
            .arg(&root)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| Failed(format!("{}: {e}", script.display())))?
    };
    if !built.status.success() {
        return Err(Failed(format!(
            "scripts/build-static failed:\n{}",
            String::from_utf8_lossy(&built.stderr)
        )));
    }
    populate(&root).map_err(Failed)?;

    let image = format!("localhost/runtree-{name}-{}:latest", std::process::id());
    let tar = Command::new("tar")
        .args(["-C"])
        .arg(&root)
        .args(["-c", "."])
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| Failed(format!("tar: {e}")))?;
    let Some(tar_out) = tar.stdout else {
        return Err(Failed("tar: no stdout".into()));
    };
    let import = Command::new("timeout")
        .args(["-k", "5", "120", "podman", "import", "-", &image])
        .env("CONTAINERS_CONF", &conf)
        .stdin(tar_out)
        .output()
        .map_err(|e| Failed(format!("podman import: {e}")))?;
    if !import.status.success() {
        return Err(Failed(format!(
            "podman import failed: {}",
            String::from_utf8_lossy(&import.stderr)
        )));
    }
    remove_at_exit(&image, &conf);
    let _ = std::fs::remove_dir_all(&root);
    Ok(Engine { image, conf })
}

/// Writes `service/NAME/service.yaml` under `root`.
pub fn service(root: &Path, name: &str, yaml: &str) -> Result<(), String> {
    let dir = root.join("service").join(name);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    std::fs::write(dir.join("service.yaml"), yaml).map_err(|e| format!("{}: {e}", dir.display()))
}

/// The images outlive the containers (the tests share one): they go when the process
/// exits, with their configuration directories.
fn remove_at_exit(image: &str, conf: &Path) {
    static IMAGES: Mutex<Vec<(String, PathBuf)>> = Mutex::new(Vec::new());
    let mut images = IMAGES.lock().unwrap_or_else(|e| e.into_inner());
    let first = images.is_empty();
    images.push((image.to_string(), conf.to_path_buf()));
    extern "C" fn cleanup() {
        let images = IMAGES.lock().unwrap_or_else(|e| e.into_inner());
        for (image, conf) in images.iter() {
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
    if first {
        // SAFETY: registers a plain extern "C" function.
        unsafe {
            nix::libc::atexit(cleanup);
        }
    }
}

/// Runs `podman ARGS` bounded by `timeout`: (exit code, stdout, stderr); -1 when it
/// could not run or was killed.
pub fn podman(conf: &Path, args: &[&str], timeout: Duration) -> (i32, String, String) {
    let out = Command::new("timeout")
        .args(["-k", "5", &timeout.as_secs().to_string(), "podman"])
        .args(args)
        .env("CONTAINERS_CONF", conf)
        .stdin(Stdio::null())
        .output();
    match out {
        Ok(out) => (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ),
        Err(e) => (-1, String::new(), format!("podman: {e}")),
    }
}

/// One container, removed by name when dropped, its log followed (`podman logs -f`).
pub struct Container {
    pub name: String,
    pub conf: PathBuf,
    logs: Option<Child>,
    lines: mpsc::Receiver<String>,
    pub seen: Vec<String>,
}

impl Container {
    /// `podman run -d --name runtree-LABEL-PID EXTRA IMAGE COMMAND`.
    pub fn run(
        engine: &Engine,
        label: &str,
        extra: &[&str],
        command: &[&str],
    ) -> Result<Container, String> {
        let name = format!("runtree-{label}-{}", std::process::id());
        let mut args = vec!["run", "-d", "--name", &name];
        args.extend_from_slice(extra);
        args.push(&engine.image);
        args.extend_from_slice(command);
        let (code, _, err) = podman(&engine.conf, &args, Duration::from_secs(60));
        // Made first: whatever podman left is removed when it drops.
        let container = Container::follow(name, &engine.conf)?;
        if code != 0 {
            return Err(format!("podman run: {err}"));
        }
        Ok(container)
    }

    /// A container started otherwise (`podman run -it` in a terminal), by name: its
    /// removal and log.
    pub fn follow(name: String, conf: &Path) -> Result<Container, String> {
        let mut logs = Command::new("podman")
            .args(["logs", "-f", &name])
            .env("CONTAINERS_CONF", conf)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("podman logs -f: {e}"))?;
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
        Ok(Container {
            name,
            conf: conf.to_path_buf(),
            logs: Some(logs),
            lines,
            seen: Vec::new(),
        })
    }

    /// Waits for a log line containing `text`; all lines seen are kept.
    pub fn wait_line(&mut self, text: &str, timeout: Duration) -> bool {
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
    pub fn stop(&self) -> Result<Duration, String> {
        let started = Instant::now();
        let (code, _, err) = podman(&self.conf, &["stop", &self.name], Duration::from_secs(30));
        if code != 0 {
            return Err(format!("podman stop: {err}"));
        }
        Ok(started.elapsed())
    }

    /// `podman wait`: the exit code once the container has stopped by itself.
    pub fn wait(&self, timeout: Duration) -> Result<i32, String> {
        let (code, out, err) = podman(&self.conf, &["wait", &self.name], timeout);
        if code != 0 {
            return Err(format!("podman wait: {err}"));
        }
        out.trim()
            .parse()
            .map_err(|_| format!("podman wait said {out:?}"))
    }

    pub fn exit_code(&self) -> i32 {
        let (_, out, _) = podman(
            &self.conf,
            &["inspect", "--format", "{{.State.ExitCode}}", &self.name],
            Duration::from_secs(30),
        );
        out.trim().parse().unwrap_or(-1)
    }

    /// The host's pid of the container's PID 1, while it runs.
    pub fn host_pid(&self) -> Option<nix::unistd::Pid> {
        let (_, out, _) = podman(
            &self.conf,
            &["inspect", "--format", "{{.State.Pid}}", &self.name],
            Duration::from_secs(30),
        );
        out.trim()
            .parse()
            .ok()
            .filter(|&pid| pid > 0)
            .map(nix::unistd::Pid::from_raw)
    }

    /// `podman exec NAME ARGS`: (exit code, stdout + stderr).
    pub fn exec(&self, args: &[&str]) -> (i32, String) {
        let mut all = vec!["exec", &self.name];
        all.extend_from_slice(args);
        let (code, out, err) = podman(&self.conf, &all, Duration::from_secs(30));
        (code, format!("{out}{err}"))
    }

    /// Everything the container logged, after it stopped.
    pub fn all_logs(&mut self) -> String {
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

    /// The container's file `path`, copied out (also after it stopped); empty when it
    /// cannot be.
    pub fn file(&self, path: &str) -> String {
        let Ok(dir) = tempfile::tempdir() else {
            return String::new();
        };
        let copy = dir.path().join("copy");
        let target = copy.display().to_string();
        let (code, _, _) = podman(
            &self.conf,
            &["cp", &format!("{}:{path}", self.name), &target],
            Duration::from_secs(30),
        );
        if code != 0 {
            return String::new();
        }
        std::fs::read_to_string(&copy).unwrap_or_default()
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
