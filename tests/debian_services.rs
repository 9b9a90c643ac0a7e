//! Debian's own service directories (/etc/sv from runit-services and openssh-server)
//! under runtree's svdir, with runit's programs hidden: a PID, mount and network
//! namespace where every program of the runit package is runtree's build of the same
//! name, or a stub that records its call and fails; policy-rc.d there says yes; /run,
//! /var/log and /dev are the test's own (Debian's `supervise` links point into
//! /run/runit/supervise/, rsyslog creates /dev/log and writes /var/log/syslog).
//!
//! Each service must reach `run` with its daemon, take `sv hup` (seen in what the
//! daemon does), leave no process after `sv down`; ssh's log/ writes `current` through
//! runtree's svlogd with -tt stamps.

use runtree::{binary, run, wait_for, Guard};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);
const SERVICES: [&str; 4] = ["rsyslog", "dbus", "cron", "ssh"];

/// The runit package's programs: runtree's build of that name, or None for the stub.
const RUNIT_PROGRAMS: [(&str, Option<&str>); 11] = [
    ("/usr/bin/chpst", Some("chpst")),
    ("/usr/bin/svlogd", Some("svlogd")),
    ("/usr/bin/sv", Some("sv")),
    ("/usr/bin/runsv", Some("runsv")),
    ("/usr/bin/runsvdir", Some("svdir")),
    ("/usr/sbin/runsvchdir", Some("svchdir")),
    ("/usr/sbin/utmpset", Some("utmpset")),
    ("/sbin/runit", None),
    ("/sbin/runit-init", None),
    ("/usr/bin/cpsv", None),
    ("/usr/sbin/mk-runscript", None),
];

/// Sets up the namespace's mounts, then becomes svdir (as /usr/bin/runsvdir).
const SETUP: &str = r#"set -eu
T=$1
mount --bind "$T/run" /run
mount --bind "$T/varlog" /var/log
mount -t tmpfs -o mode=0755 devices /dev
mknod -m 666 /dev/null c 1 3; mknod -m 666 /dev/zero c 1 5; mknod -m 666 /dev/full c 1 7
mknod -m 666 /dev/random c 1 8; mknod -m 666 /dev/urandom c 1 9; mknod -m 666 /dev/tty c 5 0
ip link set lo up 2>/dev/null || true
while read -r path program; do
    [ -e "$path" ] || continue
    if [ "$program" = - ]; then mount --bind "$T/stub" "$path"; else mount --bind "$program" "$path"; fi
done < "$T/programs"
if [ -e /usr/sbin/policy-rc.d ]; then mount --bind "$T/policy-rc.d" /usr/sbin/policy-rc.d; fi
exec /usr/bin/runsvdir "$T/service" </dev/null >"$T/svdir.log" 2>&1
"#;

fn missing_prerequisite() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("needs root (namespaces, bind mounts)".into());
    }
    for path in SERVICES.iter().map(|s| format!("/etc/sv/{s}/run")).chain(
        [
            "/lib/runit/invoke-run",
            "/usr/sbin/rsyslogd",
            "/usr/sbin/cron",
            "/usr/sbin/sshd",
            "/usr/bin/dbus-daemon",
        ]
        .map(String::from),
    ) {
        if !Path::new(&path).exists() {
            return Some(format!(
                "{path} is missing (apt-get install runit-services cron rsyslog openssh-server dbus)"
            ));
        }
    }
    None
}

struct Tree {
    dir: tempfile::TempDir,
    guard: Guard,
    /// The host's pid of the namespace's PID 1 (svdir).
    init: u32,
}

impl Tree {
    fn start() -> Tree {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path();
        for sub in ["run", "varlog/runit/ssh", "service"] {
            fs::create_dir_all(t.join(sub)).unwrap();
        }
        for name in SERVICES {
            std::os::unix::fs::symlink(format!("/etc/sv/{name}"), t.join("service").join(name))
                .unwrap();
        }
        let stub = format!(
            "#!/bin/sh\necho \"runit's $0 called: $*\" >&2\necho \"$0 $*\" >> {}\nexit 111\n",
            t.join("stub-calls").display()
        );
        runtree::write_script(&t.join("stub"), &stub);
        runtree::write_script(&t.join("policy-rc.d"), "#!/bin/sh\nexit 0\n");
        let programs: String = RUNIT_PROGRAMS
            .iter()
            .map(|(path, ours)| match ours {
                Some(name) => format!("{path} {}\n", binary(name).display()),
                None => format!("{path} -\n"),
            })
            .collect();
        fs::write(t.join("programs"), programs).unwrap();
        let guard = Guard::spawn(
            Command::new("unshare")
                .args(["--pid", "--fork", "--kill-child", "--mount-proc", "--net"])
                .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
                .arg(SETUP)
                .arg("sh")
                .arg(t)
                .env_remove("SVDIR")
                .stdin(Stdio::null()),
        );
        let children = format!("/proc/{0}/task/{0}/children", guard.pid());
        let mut init = 0;
        assert!(
            wait_for(&[], WAIT, || {
                init = fs::read_to_string(&children)
                    .ok()
                    .and_then(|c| c.split_whitespace().next()?.parse().ok())
                    .unwrap_or(0);
                init != 0
            }),
            "the namespace never started"
        );
        Tree { dir, guard, init }
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    /// A command run in the namespace (its PID, mount and network namespaces).
    fn inside(&self, program: &str, args: &[&str]) -> (i32, String, String) {
        run(
            Command::new("nsenter")
                .arg("-t")
                .arg(self.init.to_string())
                .args(["-p", "-m", "-n", "--", program])
                .args(args)
                .env_remove("SVDIR"),
            WAIT,
        )
    }

    fn sv(&self, args: &[&str]) -> (i32, String, String) {
        self.inside("/usr/bin/sv", args)
    }

    fn context(&self) -> String {
        format!(
            "svdir's log:\n{}\nsv status:\n{}",
            fs::read_to_string(self.path("svdir.log")).unwrap_or_default(),
            self.sv(&["status", "rsyslog", "dbus", "cron", "ssh"]).1
        )
    }

    /// The service's pid (the namespace's numbering) and its command line.
    fn daemon(&self, name: &str) -> (String, String) {
        let pid = fs::read_to_string(self.path(&format!("run/runit/supervise/{name}/pid")))
            .unwrap_or_default()
            .trim()
            .to_string();
        let (_, cmdline, _) = self.inside("cat", &[&format!("/proc/{pid}/cmdline")]);
        (pid, cmdline.replace('\0', " "))
    }

    /// Waits until `file` (under the tree) contains `text`.
    fn wait_text(&self, file: &str, text: &str) -> bool {
        let path = self.path(file);
        let parent = path.parent().unwrap().to_path_buf();
        wait_for(&[&parent, &path], WAIT, || {
            fs::read_to_string(&path).is_ok_and(|t| t.contains(text))
        })
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        // svdir's ordered stop, then the namespace ends with it.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.init as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.guard.wait_exit(Duration::from_secs(20));
    }
}

#[test]
fn debian_services_run_under_runtree_with_runit_hidden() {
    if let Some(reason) = missing_prerequisite() {
        eprintln!("skipped: {reason}");
        return;
    }
    let tree = Tree::start();
    let expected = [
        ("rsyslog", "rsyslogd"),
        ("dbus", "dbus-daemon"),
        ("cron", "cron -f"),
        ("ssh", "sshd -D"),
    ];
    let supervise = tree.path("run/runit/supervise");
    for (name, _) in expected {
        let dir = runtree::SuperviseDir {
            path: supervise.join(name),
        };
        assert!(
            wait_for(&[&supervise, &dir.path], WAIT, || {
                runsv::control::supervisor_running(&dir).unwrap_or(false)
            }),
            "{name}: no runsv\n{}",
            tree.context()
        );
    }
    for (name, daemon) in expected {
        // dbus has a check: up waits for its socket.
        let (code, out, err) = tree.sv(&["-w", "25", "up", name]);
        assert_eq!(code, 0, "{name}: {out}{err}\n{}", tree.context());
        let (pid, cmdline) = tree.daemon(name);
        assert!(
            cmdline.contains(daemon),
            "{name}: pid {pid} runs {cmdline:?}, not {daemon}\n{}",
            tree.context()
        );
    }

    // sv hup reaches each daemon: seen in what it does on SIGHUP.
    let _ = fs::remove_file(tree.path("varlog/syslog"));
    tree.sv(&["hup", "rsyslog"]);
    assert!(
        tree.wait_text("varlog/syslog", "rsyslogd was HUPed"),
        "rsyslog did not reopen its files\n{}",
        tree.context()
    );
    tree.sv(&["hup", "dbus"]);
    assert!(
        tree.wait_text("varlog/syslog", "Reloaded configuration"),
        "dbus did not reload\n{}",
        tree.context()
    );
    // cron acts on SIGHUP (closes its syslog connection) only at its next minute; until
    // then the signal shows as a wake-up of a process otherwise asleep until that minute.
    let (cron, _) = tree.daemon("cron");
    let switches = || {
        let (_, status, _) = tree.inside("cat", &[&format!("/proc/{cron}/status")]);
        status
            .lines()
            .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
            .and_then(|n| n.trim().parse::<u64>().ok())
    };
    let before = switches().expect("cron's status");
    tree.sv(&["hup", "cron"]);
    assert!(
        wait_for(&[], WAIT, || switches().is_some_and(|n| n > before)),
        "cron never woke for its SIGHUP\n{}",
        tree.context()
    );
    assert_eq!(tree.daemon("cron").0, cron, "cron restarted on SIGHUP");
    tree.sv(&["hup", "ssh"]);
    assert!(
        tree.wait_text("varlog/runit/ssh/current", "Received SIGHUP"),
        "sshd did not restart itself\n{}",
        tree.context()
    );

    // ssh's log/: runtree's svlogd, -tt stamps (`YYYY-MM-DD_HH:MM:SS.xxxxx `).
    let current = fs::read_to_string(tree.path("varlog/runit/ssh/current")).unwrap();
    for line in current.lines() {
        let bytes = line.as_bytes();
        assert!(
            bytes.len() > 26 && bytes[10] == b'_' && bytes[19] == b'.' && bytes[25] == b' ',
            "not a -tt line: {line:?}"
        );
    }

    for (name, daemon) in expected {
        let (pid, _) = tree.daemon(name);
        let (code, out, err) = tree.sv(&["-w", "15", "down", name]);
        assert_eq!(code, 0, "{name}: {out}{err}\n{}", tree.context());
        let (_, left, _) = tree.inside("ps", &["-e", "-o", "pid=,args="]);
        assert!(
            !left.lines().any(|l| l.contains(daemon)),
            "{name} (was pid {pid}) left processes:\n{left}"
        );
    }
    let calls = fs::read_to_string(tree.path("stub-calls")).unwrap_or_default();
    assert!(calls.is_empty(), "runit's programs were called:\n{calls}");
}
