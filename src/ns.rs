//! The harness of the PID 1 tests: init as PID 1 of a fresh PID + mount namespace
//! (`unshare --pid --fork --kill-child --mount-proc`), bounded by `timeout -k` outside
//! and by the tests' own deadlines, in one process group that the Guard kills. The
//! scan directory and the svdir binary are parameters: a shell stand-in that keeps
//! svdir's contract (tests/init_container.rs), or the real svdir (tests/init_tree.rs).
//! [`Ns::start_in_cgroup`] adds a cgroup namespace over a delegated group, as a
//! container engine with cgroupns=private gives (tests/init_cgroupns.rs).

use crate::{binary, wait_for, write_script, Guard};
use nix::unistd::Pid;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub const STANDIN: &str = r#"#!/bin/sh
# Stand-in svdir. $1 is the scan directory; markers go to $MARKERS.
m=$MARKERS
echo "start $$ scandir=$1 $(grep -E '^Sig(Blk|Ign)' /proc/$$/status | tr -d '\t' | tr '\n' ' ')" >> "$m/starts"
# Two "services"; b depends on a, so b stops first.
sleep 1000 & a=$!
sleep 1000 & b=$!
stop() {
    echo "stop-begin" >> "$m/events"
    kill $b; wait $b; echo "stopped b" >> "$m/events"
    kill $a; wait $a; echo "stopped a" >> "$m/events"
    exit "${STANDIN_EXIT:-0}"
}
if [ -n "$STANDIN_HANG" ]; then trap '' TERM; else trap stop TERM; fi
echo "ready $$" >> "$m/ready"
if [ -n "$STANDIN_ONSTART" ]; then sh -c "$STANDIN_ONSTART" & fi
# wait returns early only for a trapped signal, or when no child is left at all
# (after a sweep), where the sleep keeps this loop from spinning.
while :; do wait; sleep 1; done
"#;

pub fn root() -> bool {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root for PID namespaces (unshare)");
        return false;
    }
    if Command::new("unshare")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .map(|s| !s.success())
        .unwrap_or(true)
    {
        eprintln!("skipped: unshare (util-linux) is not installed");
        return false;
    }
    true
}

/// A namespace whose PID 1 is init.
pub struct Ns {
    pub guard: Guard,
    pub dir: tempfile::TempDir,
    pub started: Instant,
}

pub struct Setup<'a> {
    pub svdir: Option<&'a Path>,
    pub scandir: Option<&'a Path>,
    pub env: &'a [(&'a str, &'a str)],
}

impl Ns {
    pub fn start(setup: Setup) -> Ns {
        Ns::start_with_args(setup, &[])
    }

    /// As `start`, with `args` on init's command line.
    pub fn start_with_args(setup: Setup, args: &[&str]) -> Ns {
        Ns::launch(setup, args, None)
    }

    /// As `start`, in `group` (a cgroup v2 directory the test made) as its own cgroup
    /// namespace, with cgroup2 mounted at /sys/fs/cgroup in the test's mount namespace:
    /// init sees `group` as `/`, as in a container with a delegated hierarchy. The
    /// chain stays timeout → unshare → init (the shells before init exec).
    pub fn start_in_cgroup(setup: Setup, group: &Path) -> Ns {
        Ns::launch(setup, &[], Some(group))
    }

    fn launch(setup: Setup, args: &[&str], cgroup: Option<&Path>) -> Ns {
        let dir = tempfile::tempdir().expect("tempdir");
        let markers = dir.path().join("markers");
        std::fs::create_dir(&markers).expect("markers dir");
        let standin = dir.path().join("svdir");
        write_script(&standin, STANDIN);
        let scandir = setup
            .scandir
            .map(Path::to_path_buf)
            .unwrap_or_else(|| dir.path().join("service"));
        let svdir = setup.svdir.unwrap_or(&standin);
        let log = File::create(dir.path().join("init.log")).expect("log");
        let mut command = Command::new("timeout");
        command.args([
            "-k",
            "5",
            "60",
            "unshare",
            "--pid",
            "--fork",
            "--kill-child",
        ]);
        command.arg("--mount-proc");
        if let Some(group) = cgroup {
            // PID 1 joins the group (`0`: the writer itself), makes it the root of a new
            // cgroup namespace and mounts cgroup2 there, all before it becomes init
            // (each shell execs): only the container's processes are in the group, as
            // with an engine's; unshare's own process stays out of it.
            command
                .args([
                    "sh",
                    "-c",
                    r#"echo 0 > "$0/cgroup.procs" && exec unshare --cgroup sh -c 'mount -t cgroup2 cgroup2 /sys/fs/cgroup && exec "$0" "$@"' "$@""#,
                ])
                .arg(group);
        }
        command
            .arg(binary("init"))
            .args(args)
            .env("RUNTREE_SVDIR", svdir)
            .env("RUNTREE_SCANDIR", &scandir)
            .env("MARKERS", &markers)
            .env("INIT", binary("init"))
            .env_remove("RUNTREE_MODE")
            .env_remove("RUNTREE_SHUTDOWN_TIMEOUT")
            .env_remove("RUNTREE_KILL_GRACE")
            .env("RUNTREE_EXIT_CODE_FILE", markers.join("exitcode"))
            // Never the machine's /run: init saves its environment here.
            .env("RUNTREE_ENV_DIR", dir.path().join("env"))
            // Nor the machine's /run/runtree/shutdown.
            .env("RUNTREE_SHUTDOWN_FILE", markers.join("shutdown"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        for (key, value) in setup.env {
            command.env(key, value);
        }
        let guard = Guard::spawn(&mut command);
        Ns {
            guard,
            dir,
            started: Instant::now(),
        }
    }

    pub fn simple(env: &[(&str, &str)]) -> Ns {
        Ns::start(Setup {
            svdir: None,
            scandir: None,
            env,
        })
    }

    pub fn markers(&self) -> PathBuf {
        self.dir.path().join("markers")
    }

    pub fn marker(&self, name: &str) -> String {
        std::fs::read_to_string(self.markers().join(name)).unwrap_or_default()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("init.log")).unwrap_or_default()
    }

    /// Waits until marker file `name` has at least `lines` lines.
    pub fn wait_lines(&self, name: &str, lines: usize, timeout: Duration) {
        let markers = self.markers();
        let held = wait_for(&[&markers], timeout, || {
            self.marker(name).lines().count() >= lines
        });
        assert!(
            held,
            "marker {name} never reached {lines} lines in {timeout:?}\n{}",
            self.report()
        );
    }

    /// init's pid as seen from here: timeout → unshare → init.
    pub fn init_pid(&self) -> Pid {
        let unshare = children(self.guard.pid())
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("unshare not found\n{}", self.report()));
        let init = children(unshare.pid)
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("init not found\n{}", self.report()));
        init.pid
    }

    pub fn wait_exit(&mut self, timeout: Duration) -> i32 {
        let status = self
            .guard
            .wait_exit(timeout)
            .unwrap_or_else(|| panic!("init did not exit within {timeout:?}\n{}", self.report()));
        status
            .code()
            .unwrap_or_else(|| panic!("no exit code: {status:?}\n{}", self.report()))
    }

    /// Sends `signal` to init.
    pub fn signal_init(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(self.init_pid(), signal)
            .unwrap_or_else(|e| panic!("{signal} to init: {e}\n{}", self.report()));
    }

    /// Asserts that init exits with `code` within `timeout`.
    pub fn assert_exit(&mut self, code: i32, timeout: Duration) {
        assert_eq!(self.wait_exit(timeout), code, "{}", self.report());
    }

    /// Sends init `signal`, and asserts that it exits with `code` within 20 s.
    pub fn assert_stops(&mut self, signal: nix::sys::signal::Signal, code: i32) {
        self.signal_init(signal);
        self.assert_exit(code, Duration::from_secs(20));
    }

    /// Sends init SIGTERM, and asserts that it exits with `code` after a time within
    /// `took` (and at the latest 10 s after its end).
    pub fn assert_stops_within(&mut self, code: i32, took: std::ops::Range<Duration>) {
        self.signal_init(nix::sys::signal::Signal::SIGTERM);
        let sent = Instant::now();
        self.assert_exit(code, took.end + Duration::from_secs(10));
        let elapsed = sent.elapsed();
        assert!(
            took.contains(&elapsed),
            "took {elapsed:?}\n{}",
            self.report()
        );
    }

    /// Asserts that init's log holds `text`.
    pub fn assert_logged(&self, text: &str) {
        assert!(
            self.log().contains(text),
            "{text:?} not in the log\n{}",
            self.report()
        );
    }

    pub fn report(&self) -> String {
        format!(
            "--- init.log ({:?} since start)\n{}--- starts\n{}--- events\n{}",
            self.started.elapsed(),
            self.log(),
            self.marker("starts"),
            self.marker("events")
        )
    }
}

#[derive(Debug)]
pub struct Proc {
    pub pid: Pid,
    pub state: char,
    pub comm: String,
}

/// The children of `parent`, from /proc (this kernel has no /proc/PID/task/*/children):
/// runsv::proc's stat, and the name from /proc/PID/comm (the same 15 bytes stat holds).
pub fn children(parent: Pid) -> Vec<Proc> {
    runsv::proc::pids()
        .into_iter()
        .filter_map(|pid| {
            let stat = runsv::proc::stat(pid)?;
            if i64::from(stat.ppid) != i64::from(parent.as_raw()) {
                return None;
            }
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
            Some(Proc {
                pid: Pid::from_raw(i32::try_from(pid).ok()?),
                state: stat.state,
                comm: comm.trim_end_matches('\n').to_string(),
            })
        })
        .collect()
}

pub fn context_switches(pid: Pid) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .filter(|l| l.contains("ctxt_switches"))
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum()
}
