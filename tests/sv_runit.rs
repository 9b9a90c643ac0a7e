//! Our sv against runit's: Debian's /usr/bin/runsv supervises services in temp
//! directories, and every command is run with runit's /usr/bin/sv and with ours; output
//! and exit codes must be the same.
//!
//! Two ways of comparing:
//! - `status` of one service, with both programs in the same wall-clock second (a run
//!   that straddles a second boundary is taken again): byte-identical, pids and
//!   seconds included.
//! - commands that change state run at the same moment on twin services (the same
//!   service in two SVDIRs, each with its own runsv); the pids then legitimately
//!   differ, and so may the seconds counter (runit's sv answers up to 420 ms later), so
//!   both are masked: `(pid P)`, `Ns`.

use runsv::control::supervisor_running;
use runsv::supervise::{RunState, Status, SuperviseDir};
use runtree::{binary, control, run, supervisor_up, wait_for, write_script, Guard};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const RUNIT_SV: &str = "/usr/bin/sv";
const RUNIT_RUNSV: &str = "/usr/bin/runsv";
const DAEMONTOOLS_SUPERVISE: &str = "/usr/bin/supervise";
const WAIT: Duration = Duration::from_secs(15);

/// Whether runit is installed; when it is not, says so (CI installs it, so there a
/// missing runit fails the test instead of skipping it).
fn runit_installed() -> bool {
    let runit = Path::new(RUNIT_SV).exists() && Path::new(RUNIT_RUNSV).exists();
    let missing = format!("runit is not installed ({RUNIT_RUNSV}, {RUNIT_SV})");
    runtree::prerequisite(runit, &missing, ".ci/run")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sv {
    Runit,
    Ours,
}

impl Sv {
    fn program(self) -> PathBuf {
        match self {
            Sv::Runit => PathBuf::from(RUNIT_SV),
            Sv::Ours => binary("sv"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Outcome {
    fn masked(&self) -> Outcome {
        Outcome {
            code: self.code,
            stdout: mask(&self.stdout),
            stderr: mask(&self.stderr),
        }
    }
}

/// Runs `program args…` with SVDIR set and SVWAIT unset.
fn exec(program: &Path, svdir: &Path, args: &[&str]) -> Outcome {
    let mut command = Command::new(program);
    command.args(args).env("SVDIR", svdir).env_remove("SVWAIT");
    let (code, stdout, stderr) = run(&mut command, Duration::from_secs(60));
    Outcome {
        code,
        stdout,
        stderr,
    }
}

fn sv(which: Sv, svdir: &Path, args: &[&str]) -> Outcome {
    exec(&which.program(), svdir, args)
}

/// `(pid 123)` → `(pid P)`, and `12s` after a space → `Ns`.
fn mask(text: &str) -> String {
    runtree::mask_status(text, true)
}

fn unix_second() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Returns once the wall-clock second has changed. runit's sv counts a status stamped in
/// the second it started as a change it caused (its same-second race, which runtree's sv
/// does not have): a command run in the same second as the previous change gets an
/// answer from runit that depends on where the second boundary falls. This is a wait for
/// the clock, which is what runit looks at, not for an event.
fn after_this_second() {
    let second = unix_second();
    while unix_second() == second {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Runs both programs on the same service within one wall-clock second, so that even
/// the seconds counters must agree.
fn same_moment(svdir: &Path, args: &[&str]) -> (Outcome, Outcome) {
    for _ in 0..5 {
        let second = unix_second();
        let runit = sv(Sv::Runit, svdir, args);
        let ours = sv(Sv::Ours, svdir, args);
        if unix_second() == second {
            return (runit, ours);
        }
    }
    panic!("five runs of {args:?} straddled a second boundary");
}

/// Asserts byte-identical output and exit code; returns runit's output.
#[track_caller]
fn assert_same(svdir: &Path, args: &[&str]) -> Outcome {
    let (runit, ours) = same_moment(svdir, args);
    assert_eq!(
        ours, runit,
        "sv {args:?}: ours (left) differs from runit's (right)"
    );
    runit
}

/// A service directory: executable scripts (`run`, `finish`, `check`, `log/run`) and
/// plain files (`down`).
fn service(svdir: &Path, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = svdir.join(name);
    fs::create_dir_all(&dir).unwrap();
    for (file, body) in files {
        if *file == "down" {
            fs::write(dir.join(file), body).unwrap();
        } else {
            write_script(&dir.join(file), body);
        }
    }
    dir
}

const SLEEPER: &str = "#!/bin/sh\nexec sleep 1000\n";
const LOGGER: &str = "#!/bin/sh\nexec cat >/dev/null\n";

fn status_of(dir: &Path) -> Option<Status> {
    Status::read(&SuperviseDir::of_service(dir)).ok()
}

/// Waits until the service's status satisfies `condition`.
#[track_caller]
fn settle(dir: &Path, what: &str, condition: impl Fn(&Status) -> bool) {
    let supervise = dir.join("supervise");
    assert!(
        wait_for(&[&supervise, dir], WAIT, || status_of(dir)
            .is_some_and(|s| condition(&s))),
        "{}: never {what}: {:?}",
        dir.display(),
        status_of(dir)
    );
}

type Condition = fn(&Status) -> bool;

fn is_up(s: &Status) -> bool {
    s.pid != 0 && s.run_state == RunState::Run
}

fn is_down(s: &Status) -> bool {
    s.pid == 0 && s.run_state == RunState::Down
}

/// runit's runsv on `dir`, once it holds `supervise/ok` and (unless `down` exists) the
/// service and its log run.
fn runsv(dir: &Path) -> Guard {
    let mut command = Command::new(RUNIT_RUNSV);
    command.arg(dir).stdin(Stdio::null());
    let guard = Guard::spawn(&mut command);
    let supervise = SuperviseDir::of_service(dir);
    assert!(
        wait_for(&[dir, &supervise.path], WAIT, || supervisor_up(dir)),
        "runsv {} did not come up",
        dir.display()
    );
    if !dir.join("down").exists() {
        settle(dir, "up", is_up);
    }
    if dir.join("log").is_dir() {
        settle(&dir.join("log"), "up", is_up);
    }
    guard
}

fn runsv_gone(dir: &Path) -> bool {
    let supervise = SuperviseDir::of_service(dir);
    wait_for(&[&supervise.path], WAIT, || {
        !supervisor_running(&supervise).unwrap_or(true)
    })
}

/// The same services in two SVDIRs, each with its own runsv: runit's sv drives the
/// first, ours the second, at the same time.
struct Twins {
    // Fields drop in order: the supervisors go before their directories.
    guards: Vec<Guard>,
    svdirs: [PathBuf; 2],
    _root: tempfile::TempDir,
}

impl Twins {
    fn new() -> Twins {
        let root = tempfile::tempdir().unwrap();
        let svdirs = [root.path().join("runit"), root.path().join("ours")];
        for dir in &svdirs {
            fs::create_dir(dir).unwrap();
        }
        Twins {
            guards: Vec::new(),
            svdirs,
            _root: root,
        }
    }

    fn add(&mut self, name: &str, files: &[(&str, &str)]) {
        for svdir in self.svdirs.clone() {
            let dir = service(&svdir, name, files);
            self.guards.push(runsv(&dir));
        }
    }

    fn dirs(&self, name: &str) -> [PathBuf; 2] {
        [self.svdirs[0].join(name), self.svdirs[1].join(name)]
    }

    /// Runs the command on both twins at once; asserts the same exit code and output,
    /// pids and seconds masked. Returns runit's (masked) outcome.
    #[track_caller]
    fn same(&self, args: &[&str]) -> Outcome {
        let (runit, ours) = std::thread::scope(|scope| {
            let runit = scope.spawn(|| sv(Sv::Runit, &self.svdirs[0], args));
            let ours = scope.spawn(|| sv(Sv::Ours, &self.svdirs[1], args));
            (runit.join().unwrap(), ours.join().unwrap())
        });
        assert_eq!(
            ours.masked(),
            runit.masked(),
            "sv {args:?}: ours (left) differs from runit's (right): {ours:?} / {runit:?}"
        );
        runit.masked()
    }

    /// Waits until both twins of `name` satisfy `condition`.
    #[track_caller]
    fn settle(&self, name: &str, what: &str, condition: impl Fn(&Status) -> bool) {
        for dir in self.dirs(name) {
            settle(&dir, what, &condition);
        }
    }
}

fn outcome(code: i32, stdout: &str) -> Outcome {
    Outcome {
        code,
        stdout: stdout.to_string(),
        stderr: String::new(),
    }
}

#[test]
fn status_lines_are_runits() {
    runtree::skip_unless!(runit_installed());
    let root = tempfile::tempdir().unwrap();
    let svdir = root.path();
    let foo = service(svdir, "foo", &[("run", SLEEPER), ("log/run", LOGGER)]);
    let nd = service(svdir, "nd", &[("run", SLEEPER), ("down", "")]);
    let fin = service(
        svdir,
        "fin",
        &[("run", SLEEPER), ("finish", "#!/bin/sh\nexec sleep 4\n")],
    );
    let sig = service(svdir, "sig", &[("run", SLEEPER)]);
    let flap = service(svdir, "flap", &[("run", "#!/bin/sh\nsleep 0.1\nexit 1\n")]);
    // `log` is a file, not a directory; `idle` never had a supervisor.
    let lf = service(svdir, "lf", &[("run", SLEEPER), ("down", "")]);
    fs::write(lf.join("log"), "").unwrap();
    service(svdir, "idle", &[("run", SLEEPER)]);
    let _guards: Vec<Guard> = [&foo, &nd, &fin, &sig, &lf]
        .iter()
        .map(|d| runsv(d))
        .collect();
    let _flap = {
        let mut command = Command::new(RUNIT_RUNSV);
        command.arg(&flap).stdin(Stdio::null());
        Guard::spawn(&mut command)
    };

    let out = assert_same(svdir, &["status", "foo"]);
    assert!(out.stdout.starts_with("run: foo: (pid "), "{out:?}");
    assert!(out.stdout.contains("; run: log: (pid "), "{out:?}");
    assert_same(svdir, &["status", "foo/log"]);
    let absolute = foo.to_str().unwrap();
    assert_same(svdir, &["status", absolute]);
    assert_same(svdir, &["status", &format!("{absolute}/")]);
    assert_eq!(
        assert_same(svdir, &["status", "nonexist"]),
        outcome(
            1,
            "fail: nonexist: unable to change to service directory: file does not exist\n"
        )
    );
    assert_eq!(
        assert_same(svdir, &["status", "foo", "nonexist", "nd", "./x"]).code,
        2
    );

    assert_eq!(assert_same(svdir, &["status", "lf"]).code, 1);
    let out = assert_same(svdir, &["status", "lf", "idle"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stdout.ends_with(
            "s; warning: lf/log: unable to change directory: not a directory\n\
         warning: idle: unable to open supervise/ok: file does not exist\n"
        ),
        "{out:?}"
    );

    // normally down, down and then up
    let out = assert_same(svdir, &["status", "nd"]);
    assert!(out.stdout.starts_with("down: nd: "), "{out:?}");
    control(&nd, "u");
    settle(&nd, "up", is_up);
    assert!(assert_same(svdir, &["status", "nd"])
        .stdout
        .ends_with("s, normally down\n"));

    // paused, then want down (once)
    control(&sig, "p");
    settle(&sig, "paused", |s| s.paused);
    assert!(assert_same(svdir, &["status", "sig"])
        .stdout
        .ends_with("s, paused\n"));
    control(&sig, "co");
    settle(&sig, "want down", |s| !s.paused && s.want == b'd');
    assert!(assert_same(svdir, &["status", "sig"])
        .stdout
        .ends_with("s, want down\n"));

    // finishing
    control(&fin, "d");
    // runit's runsv writes a status with no pid before the one with finish's pid.
    settle(&fin, "finishing", |s| {
        s.run_state == RunState::Finish && s.pid != 0
    });
    let out = assert_same(svdir, &["status", "fin"]);
    assert!(out.stdout.starts_with("finish: fin: (pid "), "{out:?}");

    // down, with the log still running
    control(&foo, "d");
    settle(&foo, "down", is_down);
    let out = assert_same(svdir, &["status", "foo"]);
    assert!(out.stdout.starts_with("down: foo: "), "{out:?}");
    assert!(
        out.stdout.contains("s, normally up; run: log: (pid "),
        "{out:?}"
    );

    // down and want up: flap exits after 0.1 s and runsv waits out its one second.
    let mut seen = false;
    for _ in 0..5 {
        settle(&flap, "down, want up", |s| is_down(s) && s.want == b'u');
        let (runit, ours) = same_moment(svdir, &["status", "flap"]);
        if runit == ours && runit.stdout.ends_with("s, normally up, want up\n") {
            seen = true;
            break;
        }
    }
    assert!(seen, "never the same `down …, want up` line from both");

    // runsv not running
    control(&sig, "x");
    assert!(runsv_gone(&sig));
    assert_eq!(
        assert_same(svdir, &["status", "sig"]),
        outcome(1, "fail: sig: runsv not running\n")
    );
}

#[test]
fn a_daemontools_status_is_bad_format() {
    runtree::skip_unless!(runit_installed());
    if !Path::new(DAEMONTOOLS_SUPERVISE).exists() {
        eprintln!("SKIPPED: daemontools is not installed ({DAEMONTOOLS_SUPERVISE})");
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let dir = service(root.path(), "d", &[("run", SLEEPER)]);
    let mut command = Command::new(DAEMONTOOLS_SUPERVISE);
    command.arg(&dir).stdin(Stdio::null());
    let _supervise = Guard::spawn(&mut command);
    let status = dir.join("supervise/status");
    // daemontools writes its status before it opens `ok`: wait for both.
    let ok_has_reader = || supervisor_up(&dir);
    assert!(wait_for(&[&dir, &dir.join("supervise")], WAIT, || {
        fs::metadata(&status).is_ok_and(|m| m.len() == 18) && ok_has_reader()
    }));
    assert_eq!(
        assert_same(root.path(), &["status", "d"]),
        outcome(
            1,
            "warning: d: unable to read supervise/status: bad format\n"
        )
    );
    assert_same(root.path(), &["status", dir.to_str().unwrap()]);
    assert_eq!(assert_same(root.path(), &["-v", "up", "d"]).code, 1);
}

/// A service that survives every signal command but TERM and KILL.
const STUBBORN: &str = "#!/bin/sh\ntrap '' HUP INT QUIT USR1 USR2 ALRM\nexec sleep 1000\n";

#[test]
fn commands_with_and_without_v_are_runits() {
    runtree::skip_unless!(runit_installed());
    let mut twins = Twins::new();
    twins.add("foo", &[("run", STUBBORN), ("log/run", LOGGER)]);
    // Let it run for more than a second, so that runsv restarts it at once (runsv waits
    // a second after a run that lasted less).
    std::thread::sleep(Duration::from_millis(1100));

    for (args, expected) in [
        (
            &["-v", "pause", "foo"][..],
            "ok: run: foo: (pid P) Ns, paused\n",
        ),
        (&["-v", "cont", "foo"], "ok: run: foo: (pid P) Ns\n"),
        (&["-v", "hup", "foo"], "ok: run: foo: (pid P) Ns\n"),
        (&["-v", "alarm", "foo"], "ok: run: foo: (pid P) Ns\n"),
        (&["-v", "interrupt", "foo"], "ok: run: foo: (pid P) Ns\n"),
        (&["-v", "quit", "foo"], "ok: run: foo: (pid P) Ns\n"),
        (&["-v", "1", "foo"], "ok: run: foo: (pid P) Ns\n"),
        (&["-v", "2", "foo"], "ok: run: foo: (pid P) Ns\n"),
        (&["-v", "down", "foo"], "ok: down: foo: Ns, normally up\n"),
        (&["-v", "up", "foo"], "ok: run: foo: (pid P) Ns\n"),
        (
            &["-v", "once", "foo"],
            "ok: run: foo: (pid P) Ns, want down\n",
        ),
        // want down: term stops it for good. (runit's sv takes a status changed in the
        // second it started as already answered: see `after_this_second` below.)
        (&["-v", "term", "foo"], "ok: down: foo: Ns, normally up\n"),
        (&["-v", "up", "foo"], "ok: run: foo: (pid P) Ns\n"),
    ] {
        if args[1] == "term" {
            after_this_second();
        }
        assert_eq!(twins.same(args), outcome(0, expected), "{args:?}");
    }
    std::thread::sleep(Duration::from_millis(1100));
    for args in [&["-v", "term", "foo"][..], &["-v", "kill", "foo"]] {
        assert_eq!(
            twins.same(args),
            outcome(0, "ok: run: foo: (pid P) Ns\n"),
            "{args:?}"
        );
    }

    // Without -v: nothing printed, and the effect is the same on both.
    let steps: [(&str, &str, Condition); 8] = [
        ("pause", "paused", |s| s.paused),
        ("cont", "continued", |s| !s.paused),
        ("hup", "up", is_up),
        ("once", "want down", |s| is_up(s) && s.want == b'd'),
        ("down", "down", is_down),
        ("up", "up", is_up),
        ("term", "restarted", |s| is_up(s) && !s.term_sent),
        ("kill", "up", is_up),
    ];
    for (command, what, condition) in steps {
        assert_eq!(twins.same(&[command, "foo"]), outcome(0, ""), "{command}");
        twins.settle("foo", what, condition);
    }
    let [runit_foo, our_foo] = twins.dirs("foo");
    assert_eq!(
        mask(&sv(Sv::Runit, &twins.svdirs[0], &["status", "foo"]).stdout),
        mask(&sv(Sv::Runit, &twins.svdirs[1], &["status", "foo"]).stdout)
    );
    std::thread::sleep(Duration::from_millis(1100));

    // The LSB-style words always wait.
    assert_eq!(
        twins.same(&["stop", "foo"]),
        outcome(0, "ok: down: foo: Ns, normally up\n")
    );
    assert_eq!(
        twins.same(&["start", "foo"]),
        outcome(0, "ok: run: foo: (pid P) Ns\n")
    );
    std::thread::sleep(Duration::from_millis(1100));
    for command in [
        "restart",
        "try-restart",
        "force-reload",
        "force-restart",
        "reload",
    ] {
        assert_eq!(
            twins.same(&[command, "foo"]),
            outcome(0, "ok: run: foo: (pid P) Ns\n"),
            "{command}"
        );
        std::thread::sleep(Duration::from_millis(1100));
    }

    // exit, without and with a runsv
    assert_eq!(twins.same(&["exit", "foo"]), outcome(0, ""));
    assert!(runsv_gone(&runit_foo) && runsv_gone(&our_foo));
    for args in [
        &["exit", "foo"][..],
        &["-v", "exit", "foo"],
        &["shutdown", "foo"],
    ] {
        assert_eq!(
            twins.same(args),
            outcome(0, "ok: foo: runsv not running\n"),
            "{args:?}"
        );
    }
    assert_eq!(
        twins.same(&["up", "foo"]),
        outcome(1, "fail: foo: runsv not running\n")
    );
    assert_eq!(
        twins.same(&["-v", "down", "foo"]),
        outcome(1, "fail: foo: runsv not running\n")
    );

    twins.add("bar", &[("run", SLEEPER)]);
    assert_eq!(
        twins.same(&["shutdown", "bar"]),
        outcome(0, "ok: bar: runsv not running\n")
    );
    twins.add("baz", &[("run", SLEEPER), ("log/run", LOGGER)]);
    assert_eq!(
        twins.same(&["-v", "exit", "baz"]),
        outcome(0, "ok: baz: runsv not running\n")
    );
}

#[test]
fn timeouts_kill_and_check_are_runits() {
    runtree::skip_unless!(runit_installed());
    let mut twins = Twins::new();
    twins.add(
        "ign",
        &[("run", "#!/bin/sh\ntrap '' TERM\nexec sleep 1000\n")],
    );
    twins.add("chk", &[("run", SLEEPER), ("check", "#!/bin/sh\nexit 1\n")]);

    // A service that ignores TERM: stop times out, force-stop kills.
    let out = twins.same(&["-w", "1", "stop", "ign"]);
    assert_eq!(
        out,
        outcome(1, "timeout: run: ign: (pid P) Ns, want down, got TERM\n")
    );
    let out = twins.same(&["-w", "1", "force-stop", "ign"]);
    assert_eq!(
        out,
        outcome(1, "kill: run: ign: (pid P) Ns, want down, got TERM\n")
    );
    twins.settle("ign", "killed", is_down);
    assert_eq!(
        twins.same(&["-w", "1", "up", "ign"]),
        outcome(0, "ok: run: ign: (pid P) Ns\n")
    );
    let out = twins.same(&["-w", "1", "force-shutdown", "ign"]);
    assert_eq!(
        out,
        outcome(1, "kill: run: ign: (pid P) Ns, want down, got TERM\n")
    );
    for dir in twins.dirs("ign") {
        assert!(runsv_gone(&dir));
    }

    // A failing ./check: up, check and restart time out.
    for args in [
        &["-w", "1", "check", "chk"][..],
        &["-w", "1", "up", "chk"],
        &["-w", "1", "-v", "term", "chk"],
    ] {
        assert_eq!(
            twins.same(args),
            outcome(1, "timeout: run: chk: (pid P) Ns\n"),
            "{args:?}"
        );
    }
    // Failures add up: timeout, missing directory, dead runsv.
    let out = twins.same(&["-w", "1", "check", "chk", "nonexist", "ign"]);
    assert_eq!(
        out,
        outcome(
            3,
            "fail: nonexist: unable to change to service directory: file does not exist\n\
             fail: ign: runsv not running\n\
             timeout: run: chk: (pid P) Ns\n"
        )
    );
    // check passes a down service at once, ./check or not.
    for dir in twins.dirs("chk") {
        control(&dir, "d");
        settle(&dir, "down", is_down);
    }
    assert_eq!(
        twins.same(&["check", "chk"]),
        outcome(0, "ok: down: chk: Ns, normally up\n")
    );
}

#[test]
fn lsb_mode_is_runits() {
    runtree::skip_unless!(runit_installed());
    let mut twins = Twins::new();
    twins.add("web", &[("run", SLEEPER)]);
    twins.add("logged", &[("run", SLEEPER), ("log/run", LOGGER)]);
    // /etc/init.d/NAME → sv, for each program.
    let links: Vec<PathBuf> = [Sv::Runit, Sv::Ours]
        .iter()
        .zip(&twins.svdirs)
        .map(|(which, svdir)| {
            let dir = svdir.parent().unwrap().join(format!("init.d-{which:?}"));
            fs::create_dir_all(&dir).unwrap();
            for name in ["web", "logged", "nonexist"] {
                std::os::unix::fs::symlink(which.program(), dir.join(name)).unwrap();
            }
            dir
        })
        .collect();
    let lsb = |name: &str, args: &[&str]| -> Outcome {
        let (runit, ours) = std::thread::scope(|scope| {
            let runit = scope.spawn(|| exec(&links[0].join(name), &twins.svdirs[0], args).masked());
            let ours = scope.spawn(|| exec(&links[1].join(name), &twins.svdirs[1], args).masked());
            (runit.join().unwrap(), ours.join().unwrap())
        });
        assert_eq!(ours, runit, "{name} {args:?}: ours (left), runit's (right)");
        runit
    };
    // What web says, command after command.
    let web = |args: &[&str], code, stdout: &str| {
        assert_eq!(lsb("web", args), outcome(code, stdout), "{args:?}");
    };
    web(&["status"], 0, "run: web: (pid P) Ns\n");
    web(&["stop"], 0, "ok: down: web: Ns, normally up\n");
    web(&["status"], 3, "down: web: Ns, normally up\n");
    web(&["up", "ignored", "args"], 0, "");
    twins.settle("web", "up", is_up);
    web(&["-w", "5", "restart"], 0, "ok: run: web: (pid P) Ns\n");
    let usage = Outcome {
        code: 2,
        stdout: String::new(),
        stderr: "usage: web [-w sec] command\n\n".into(),
    };
    assert_eq!(lsb("web", &["sig"]), usage);
    assert_eq!(lsb("web", &["stat"]), usage);
    assert_eq!(lsb("web", &[]), usage);
    assert_eq!(lsb("web", &["bogus"]), usage);
    assert_eq!(
        lsb("nonexist", &["status"]),
        outcome(
            1,
            "fail: nonexist: unable to change to service directory: file does not exist\n"
        )
    );
    assert_eq!(lsb("logged", &["status"]).code, 0);
    web(&["shutdown"], 0, "ok: web: runsv not running\n");
    web(&["status"], 1, "fail: web: runsv not running\n");

    // runit 2.1.2 returns the log's code (0: running) for a down service whose log
    // runs; ours returns the service's own, 3, as runit 2.3.0 does.
    for dir in twins.dirs("logged") {
        control(&dir, "d");
        settle(&dir, "down", is_down);
    }
    let runit = exec(&links[0].join("logged"), &twins.svdirs[0], &["status"]);
    let ours = exec(&links[1].join("logged"), &twins.svdirs[1], &["status"]);
    assert_eq!((runit.code, ours.code), (0, 3));
    assert_eq!(mask(&ours.stdout), mask(&runit.stdout));
}

#[test]
fn usage_errors_are_runits() {
    runtree::skip_unless!(runit_installed());
    let root = tempfile::tempdir().unwrap();
    let usage = "usage: sv [-v] [-w sec] command service ...\n\n";
    for args in [
        &[][..],
        &["bogus", "x"],
        &["up"],
        &["-v", "down"],
        &["r", "x"],
        &["f", "x"],
        &["force", "x"],
        &["C", "x"],
        &["", "x"],
        &["-", "x"],
        &["--help"],
        &["-w", "3", "-v"],
    ] {
        assert_eq!(
            assert_same(root.path(), args),
            Outcome {
                code: 100,
                stdout: String::new(),
                stderr: usage.into()
            },
            "{args:?}"
        );
    }
    for (args, complaint) in [
        (&["-z", "status", "x"][..], "sv: illegal option -- z\n"),
        (&["-vx", "status", "x"], "sv: illegal option -- x\n"),
        (&["-w"], "sv: option requires an argument -- w\n"),
    ] {
        assert_eq!(
            assert_same(root.path(), args).stderr,
            format!("{complaint}{usage}")
        );
    }
    // -V: the version line differs, the usage and the exit code do not.
    for which in [Sv::Runit, Sv::Ours] {
        let out = sv(which, root.path(), &["-V"]);
        assert_eq!(out.code, 100);
        assert!(out.stderr.starts_with("$Id: "), "{which:?}: {out:?}");
        assert!(
            out.stderr.ends_with(&format!("$\n{usage}")),
            "{which:?}: {out:?}"
        );
    }
    // Options end at `--` (and at anything starting with it, but our own `--json`,
    // which is status's: docs/sv.md), and -w implies -v.
    for args in [
        &["--", "status", "x"][..],
        &["--verbose", "status", "x"],
        &["-vw5", "status", "x"],
        &["-w5v", "status", "x"],
        &["-w", "abc", "status", "x"],
        &["status", ""],
        &["up", "-v", "x"],
    ] {
        assert_ne!(assert_same(root.path(), args).code, 100, "{args:?}");
    }
}

#[test]
fn exit_codes_count_failures_up_to_99() {
    runtree::skip_unless!(runit_installed());
    let root = tempfile::tempdir().unwrap();
    let names: Vec<String> = (0..120).map(|i| format!("missing{i}")).collect();
    let mut args = vec!["status"];
    args.extend(names.iter().take(5).map(String::as_str));
    assert_eq!(assert_same(root.path(), &args).code, 5);
    let mut args = vec!["up"];
    args.extend(names.iter().map(String::as_str));
    assert_eq!(assert_same(root.path(), &args).code, 99);
}
