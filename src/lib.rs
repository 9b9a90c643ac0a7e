//! Support for runtree's end-to-end tests and its bench command: where the built
//! binaries are, event-driven waiting on files, and guards that clean up every process
//! a test starts (by the pid or process group it created, never by name).

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use std::fs;
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use runsv::supervise::{FullState, ServiceState, Status, SuperviseDir};

pub mod debian_vm;
pub mod ns;
pub mod podman;
pub mod service;
pub mod svdir_tree;
pub mod svlogd;
pub mod trace;

/// How long an end-to-end test waits for anything to happen.
pub const WAIT: Duration = Duration::from_secs(10);

/// Status text with what changes from run to run masked: a number of seconds after a
/// space (`12s`) becomes `Ns`, and with `pids`, `(pid 123)` becomes `(pid P)`.
pub fn mask_status(text: &str, pids: bool) -> String {
    let mut result = String::new();
    let mut digits = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        if !digits.is_empty() {
            if pids && c == ')' && result.ends_with("(pid ") {
                result.push('P');
            } else if c == 's' && result.ends_with(' ') {
                result.push('N');
            } else {
                result.push_str(&digits);
            }
            digits.clear();
        }
        result.push(c);
    }
    result + &digits
}

/// Ends the test at once (it is skipped) unless `$ready`: a prerequisite the machine
/// may lack (root, a program), checked by a function that says what is missing.
#[macro_export]
macro_rules! skip_unless {
    ($ready:expr) => {
        if !$ready {
            return;
        }
    };
}

/// Whether the test runs as root; where it does not, says that it is skipped and why
/// it `needs` root.
pub fn as_root(needs: &str) -> bool {
    let root = nix::unistd::geteuid().is_root();
    if !root {
        eprintln!("skipped: {needs}");
    }
    root
}

/// Runs `command`, which sets up what a test needs, to its end: its output if it exits
/// 0, else why not (`what` failed, and its stderr).
pub fn succeeded(command: &mut Command, what: &str) -> Result<std::process::Output, String> {
    let output = command.output().map_err(|e| format!("{what}: {e}"))?;
    if output.status.success() {
        return Ok(output);
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    Err(format!("{what} failed ({}):\n{stderr}", output.status))
}

/// Whether a test's prerequisite is there. Where it is not, the test is to be skipped,
/// and this says so (`missing`); but CI installs every prerequisite, so there it fails
/// the test instead, naming what installs it (`installed_by`).
pub fn prerequisite(present: bool, missing: &str, installed_by: &str) -> bool {
    if present {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{missing}: {installed_by} installs it");
    }
    eprintln!("SKIPPED: {missing}");
    false
}

/// The directory holding the workspace's built binaries (`target/debug` when run by
/// `cargo test`, `target/release` for a release build of the bench command).
pub fn binary_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("RUNTREE_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir
}

/// The target triple of runtree's static build (scripts/build-static does the same):
/// musl where the toolchain has that target installed, else glibc. A static glibc
/// program spends about half a millisecond at every start in its cache detection
/// (cpuid, which traps in a VM): measured here, 562 µs per spawn and exit of runsv
/// against 87 µs with musl; an idle runsv keeps 36 KiB private instead of 72.
pub fn static_target() -> String {
    let arch = std::env::consts::ARCH;
    let musl = format!("{arch}-unknown-linux-musl");
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let installed = Command::new(rustc)
        .args(["--print", "sysroot"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_string())
        .is_some_and(|sysroot| {
            Path::new(&sysroot)
                .join("lib/rustlib")
                .join(&musl)
                .join("lib")
                .is_dir()
        });
    if installed {
        musl
    } else {
        format!("{arch}-unknown-linux-gnu")
    }
}

/// The path of one of the workspace's binaries (runsv, sv, svdir, init).
pub fn binary(name: &str) -> PathBuf {
    let path = binary_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: build the workspace first (cargo build --workspace)",
        path.display()
    );
    path
}

/// A new cgroup named `name` on the machine's writable cgroup v2 hierarchy
/// (/sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid host), for a test or the
/// bench; None where there is none (not root, no cgroup2).
pub fn make_cgroup(name: &str) -> Option<PathBuf> {
    ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
        .into_iter()
        .filter(|mount| runsv::cgroup::on_cgroup2(Path::new(mount)))
        .map(|mount| Path::new(mount).join(name))
        .find(|path| fs::create_dir(path).is_ok())
}

/// Kills everything in the cgroup at `path` and its subtree (cgroup.kill), then removes
/// the groups, deepest first; whether all are gone. For the groups a test or the bench
/// made for itself: rmdir succeeds once the killed processes are gone (a few ms).
pub fn remove_cgroup_tree(path: &Path) -> bool {
    let _ = fs::write(path.join("cgroup.kill"), "1");
    let children: Vec<PathBuf> = fs::read_dir(path)
        .map(|e| {
            e.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    // Every child tried, even after a failure.
    let children_gone = children
        .iter()
        .filter(|child| !remove_cgroup_tree(child))
        .count()
        == 0;
    let removed = wait_for(&[], Duration::from_secs(5), || {
        fs::remove_dir(path).is_ok() || !path.exists()
    });
    children_gone && removed
}

/// A test that cannot run here: skipped, saying why, unless `variable=1` asks for
/// `what` (CI sets it where it installed what the tests need), where it fails.
pub fn skip(what: &str, variable: &str, reason: &str) {
    if std::env::var(variable).as_deref() == Ok("1") {
        panic!("{what} required ({variable}=1) but cannot run: {reason}");
    }
    eprintln!("skipped: {reason}");
}

/// Waits until `condition` holds, re-checking it whenever something changes in one of
/// `watched` (directories or files, through inotify) — no polling interval. Returns
/// whether it held before `timeout`.
pub fn wait_for(watched: &[&Path], timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let inotify =
        Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK).expect("inotify_init");
    let mask = AddWatchFlags::IN_CREATE
        | AddWatchFlags::IN_MODIFY
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_MOVED_FROM
        | AddWatchFlags::IN_DELETE
        | AddWatchFlags::IN_ATTRIB
        | AddWatchFlags::IN_CLOSE_WRITE;
    for path in watched {
        // A path that does not exist yet is watched through its parent.
        let target = if path.exists() {
            path.to_path_buf()
        } else {
            path.parent().unwrap_or(path).to_path_buf()
        };
        let _ = inotify.add_watch(&target, mask);
    }
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        // Wake at least every 50 ms as well: a file created inside a directory that did
        // not exist when the watch was set is only seen this way. The condition, not the
        // timer, decides.
        let wait = (deadline - now).min(Duration::from_millis(50));
        let mut fds = [nix::poll::PollFd::new(
            inotify.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        let millis = u16::try_from(wait.as_millis()).unwrap_or(u16::MAX);
        let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(millis));
        let _ = inotify.read_events();
    }
}

/// Reads a service's full state, if there is one.
pub fn full_state(service: &Path) -> Option<FullState> {
    FullState::read(&SuperviseDir::of_service(service))
        .ok()
        .flatten()
}

/// Reads a service's runit status, if there is one.
pub fn status(service: &Path) -> Option<Status> {
    Status::read(&SuperviseDir::of_service(service)).ok()
}

/// Waits until the service's full state satisfies `condition`.
pub fn wait_state(
    service: &Path,
    timeout: Duration,
    mut condition: impl FnMut(&FullState) -> bool,
) -> Option<FullState> {
    let supervise = runsv::state_dir::locate(service);
    let mut last = None;
    let held = wait_for(&[&supervise, service], timeout, || {
        last = full_state(service);
        last.as_ref().is_some_and(&mut condition)
    });
    if held {
        last
    } else {
        None
    }
}

/// Waits until the service is running (up and ready) with a pid; that pid. Panics with
/// the last state seen if it does not within `timeout`.
pub fn wait_running(service: &Path, timeout: Duration) -> u32 {
    wait_state(service, timeout, |s| {
        s.state == ServiceState::Running && s.pid != 0
    })
    .unwrap_or_else(|| {
        panic!(
            "{} never running: {:?}",
            service.display(),
            full_state(service)
        )
    })
    .pid
}

/// Waits until the service is in error (its definition or its start refused); that
/// state, whose reason says why. Panics with the last state seen if it is not within
/// `timeout`.
pub fn wait_error(service: &Path, timeout: Duration) -> FullState {
    wait_state(service, timeout, |s| s.state == ServiceState::Error).unwrap_or_else(|| {
        panic!(
            "{} never in error: {:?}",
            service.display(),
            full_state(service)
        )
    })
}

/// A service `name` in `root` defined by a service.yaml of `yaml`.
pub fn yaml_service(root: &Path, name: impl AsRef<Path>, yaml: &str) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).expect("create service directory");
    std::fs::write(dir.join("service.yaml"), yaml).expect("write service.yaml");
    dir
}

/// Whether a supervisor holds the service's `supervise/ok` (false if unreadable).
pub fn supervisor_up(service: &Path) -> bool {
    runsv::control::supervisor_running(&SuperviseDir::of_service(service)).unwrap_or(false)
}

/// Starts `command` (a runsv of `service`, or a command that execs one) and waits until
/// it holds supervise/ok.
pub fn supervised(command: &mut Command, service: &Path) -> Guard {
    let guard = Guard::spawn(command);
    let supervise = SuperviseDir::of_service(service);
    assert!(
        wait_for(&[service, &supervise.path], WAIT, || supervisor_up(service)),
        "runsv {} did not come up",
        service.display()
    );
    guard
}

/// Our runsv on `service`, once it holds supervise/ok.
pub fn runsv(service: &Path) -> Guard {
    supervised(Command::new(binary("runsv")).arg(service), service)
}

/// Writes control bytes (`"tcu"`) to the service's supervise/control.
pub fn control(service: &Path, bytes: &str) {
    let commands = runsv::control::Control::parse(bytes.as_bytes())
        .unwrap_or_else(|| panic!("{bytes:?}: not control bytes"));
    runsv::control::send_control(&SuperviseDir::of_service(service), &commands)
        .expect("write control");
}

/// A process started by a test, in a process group of its own. Dropping it sends
/// SIGTERM, waits up to 5 s, then SIGKILLs the group and reaps it.
pub struct Guard {
    pub child: Child,
    /// Extra process groups to kill on drop (services that setsid'd away).
    pub extra_groups: Vec<Pid>,
}

impl Guard {
    pub fn spawn(command: &mut Command) -> Guard {
        command.process_group(0);
        Guard::started(command)
    }

    /// Like `spawn`, in a session of its own (as init starts svdir), which is also a
    /// process group of its own.
    pub fn spawn_in_session(command: &mut Command) -> Guard {
        // SAFETY: setsid is async-signal-safe and allocates nothing.
        unsafe {
            command.pre_exec(|| {
                nix::unistd::setsid()
                    .map(drop)
                    .map_err(std::io::Error::from)
            });
        }
        Guard::started(command)
    }

    fn started(command: &mut Command) -> Guard {
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {command:?}: {e}"));
        Guard {
            child,
            extra_groups: Vec::new(),
        }
    }

    /// Sends `signal` to the process.
    pub fn signal(&self, signal: Signal) {
        kill(self.pid(), signal).expect("signal a process of the test");
    }

    /// Waits (up to [`WAIT`]) for the process to exit by itself; its exit code, -1
    /// when a signal ended it.
    pub fn exit_code(&mut self) -> i32 {
        let status = self
            .wait_exit(WAIT)
            .unwrap_or_else(|| panic!("process {} did not exit within {WAIT:?}", self.pid()));
        status.code().unwrap_or(-1)
    }

    /// SIGKILLs the process and reaps it.
    pub fn kill(&mut self) {
        kill(self.pid(), Signal::SIGKILL).expect("SIGKILL a process of the test");
        self.wait_exit(WAIT).expect("a SIGKILLed process exits");
    }

    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    /// Kills on drop the process group the service `pid` is in now (runsv's services are
    /// members of their session's group, not its leaders), and the group `pid` would
    /// lead if it made one later (setsid): what a failing test leaves is stopped.
    pub fn also_kill(&mut self, pid: u32) {
        let pid = Pid::from_raw(pid as i32);
        if let Some(group) = runsv::launch::group_of(pid) {
            self.extra_groups.push(group);
        }
        self.extra_groups.push(pid);
    }

    /// Waits for the process to exit on its own, up to `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            // The child is ours: a pidfd would avoid this 5 ms step, but std's Child
            // owns the pid; the step bounds latency only, correctness is try_wait's.
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let pid = self.pid();
        if let Ok(None) = self.child.try_wait() {
            let _ = kill(pid, Signal::SIGTERM);
            if self.wait_exit(Duration::from_secs(5)).is_none() {
                let _ = killpg(pid, Signal::SIGKILL);
                let _ = self.child.wait();
            }
        }
        let _ = killpg(pid, Signal::SIGKILL);
        for group in &self.extra_groups {
            let _ = killpg(*group, Signal::SIGKILL);
        }
    }
}

/// Runs a command to completion with a timeout; returns (exit code, stdout, stderr).
pub fn run(command: &mut Command, timeout: Duration) -> (i32, String, String) {
    let (code, stdout, stderr) = run_bytes(command, timeout);
    let text = |bytes: Vec<u8>| String::from_utf8_lossy(&bytes).into_owned();
    (code, text(stdout), text(stderr))
}

/// `run`, with the output as it was written (a name need not be UTF-8).
pub fn run_bytes(command: &mut Command, timeout: Duration) -> (i32, Vec<u8>, Vec<u8>) {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut guard = Guard::spawn(command);
    let status = guard
        .wait_exit(timeout)
        .unwrap_or_else(|| panic!("{command:?} did not finish within {timeout:?}"));
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    use std::io::Read;
    if let Some(mut out) = guard.child.stdout.take() {
        let _ = out.read_to_end(&mut stdout);
    }
    if let Some(mut err) = guard.child.stderr.take() {
        let _ = err.read_to_end(&mut stderr);
    }
    use std::os::unix::process::ExitStatusExt;
    let code = status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    (code, stdout, stderr)
}

/// Writes an executable script.
pub fn write_script(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create script dir");
    }
    std::fs::write(path, body).expect("write script");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod script");
}

/// A process's command line, split into its arguments (lossy); None when it is gone.
pub fn argv(pid: u32) -> Option<Vec<String>> {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let argv = cmdline
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    Some(argv)
}

/// Whether a process exists (and is not a zombie).
pub use runsv::proc::alive;

/// Where this test run keeps its built artifacts: the target directory.
pub fn target_root() -> PathBuf {
    let dir = binary_dir();
    dir.parent().map(Path::to_path_buf).unwrap_or(dir)
}

/// The static builds of init, svdir, runsv, sv, chpst, svlogd… (the VM tests'): a static init: `+crt-static` with an explicit --target (without it RUSTFLAGS would
/// reach build scripts and proc-macros too), in a target directory of its own so that
/// it never waits on the lock of the cargo running this test.
pub fn static_binaries() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("RUNTREE_VM_BIN_DIR") {
        return Ok(PathBuf::from(path));
    }
    // The build runtree is installed as: musl where the toolchain has it (CI adds it).
    let target = static_target();
    let target = target.as_str();
    let dir = target_root().join("vmtest").join("cargo");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let output = Command::new(cargo)
        .args([
            "build",
            "--quiet",
            "--release",
            "-p",
            "init",
            "-p",
            "svdir",
            "-p",
            "runsv",
            "-p",
            "sv",
            "--target",
            target,
        ])
        .arg("--manifest-path")
        .arg(&manifest)
        .env("CARGO_TARGET_DIR", &dir)
        .env(
            "RUSTFLAGS",
            "-C target-feature=+crt-static -C relocation-model=static",
        )
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "static build failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(dir.join(target).join("release"))
}
