//! The whole tree as PID 1 runs it: init → the real svdir → one runsv per service,
//! in a fresh PID + mount namespace (see src/ns.rs). The services record what
//! happens to them in $MARKERS/events, one line each, appended in the order it
//! happens: `start NAME` when they really start, `stop NAME` when they are told to stop.
//!
//! The tree: setup (a oneshot) ← db ← web (ready by a test) ← app, and cache with no
//! relation to any of them. Needs root (unshare); says so and passes nothing otherwise.

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use runtree::ns::{children, root, Ns, Proc, Setup};
use runtree::{binary, run, wait_for, yaml_service};
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const BOOT: Duration = Duration::from_secs(20);

/// A longrun that records its start, and its stop when TERM comes.
fn longrun(scan: &Path, name: &str, extra: &str) {
    let yaml = format!(
        "exec: sh -c 'trap \"echo stop {name} >> $MARKERS/events; exit 0\" TERM; echo start {name} >> $MARKERS/events; while :; do sleep 1; done'\nlog: console\nenviron:\n  MARKERS: {markers}\n{extra}",
        markers = "${MARKERS}",
    );
    yaml_service(scan, name, &yaml);
}

/// Writes the example tree; the `${MARKERS}` placeholder is filled in by `fill`.
fn tree(scan: &Path, markers: &Path, stubborn: bool) {
    yaml_service(
        scan,
        "setup",
        "exec: sh -c 'echo start setup >> $MARKERS/events'\noneshot: true\nlog: console\nenviron:\n  MARKERS: ${MARKERS}\n",
    );
    // Ready once it has recorded its start: without a readiness test, `running` means
    // exec'd, and a dependent could record its own start first.
    longrun(
        scan,
        "db",
        "after: [setup]\ntest: sh -c 'grep -q \"start db\" $MARKERS/events'\ntest_interval: 0.05\n",
    );
    longrun(
        scan,
        "web",
        "after: [db]\ntest: sh -c 'grep -q \"start web\" $MARKERS/events'\ntest_interval: 0.05\n",
    );
    longrun(scan, "app", "after: [web]\n");
    longrun(scan, "cache", "");
    if stubborn {
        yaml_service(
            scan,
            "stubborn",
            "exec: sh -c 'trap \"\" TERM; echo start stubborn >> $MARKERS/events; while :; do sleep 1; done'\nstop_timeout: 0.5\nlog: console\nenviron:\n  MARKERS: ${MARKERS}\n",
        );
    }
    fill(scan, markers);
}

/// Replaces `${MARKERS}` in every definition (service.yaml has no variable expansion).
fn fill(scan: &Path, markers: &Path) {
    for entry in fs::read_dir(scan).unwrap().flatten() {
        let file = entry.path().join("service.yaml");
        if let Ok(text) = fs::read_to_string(&file) {
            let text = text.replace("${MARKERS}", &markers.display().to_string());
            // The test command reads $MARKERS from the environment it is given.
            fs::write(&file, text).unwrap();
        }
    }
}

/// Fields drop in order: the namespace goes before its scan directory.
struct Tree {
    ns: Ns,
    scan: std::path::PathBuf,
    _scan_parent: tempfile::TempDir,
}

impl Tree {
    /// Starts init on an empty scan directory, then moves the services in: their
    /// definitions need the markers directory, which exists only once the namespace
    /// does. svdir picks them up as they appear (in any order; `after:` sorts it out).
    /// The tree booted, once all its services run; None (the test is skipped, and
    /// says why) where PID namespaces cannot be made.
    fn running(stubborn: bool, env: &[(&str, &str)]) -> Option<Tree> {
        if !root() {
            return None;
        }
        let tree = Tree::boot(stubborn, env);
        tree.all_running();
        Some(tree)
    }

    fn boot(stubborn: bool, env: &[(&str, &str)]) -> Tree {
        let scan_parent = tempfile::tempdir().unwrap();
        let scan = scan_parent.path().join("service");
        fs::create_dir(&scan).unwrap();
        let ns = Ns::start(Setup {
            svdir: Some(&binary("svdir")),
            scandir: Some(&scan),
            env,
        });
        let staging = scan_parent.path().join("staging");
        tree(&staging, &ns.markers(), stubborn);
        for entry in fs::read_dir(&staging).unwrap().flatten() {
            fs::rename(entry.path(), scan.join(entry.file_name())).unwrap();
        }
        Tree {
            ns,
            scan,
            _scan_parent: scan_parent,
        }
    }

    fn sv(&self, args: &[&str]) -> (i32, String, String) {
        run(
            Command::new(binary("sv"))
                .args(args)
                .env("SVDIR", &self.scan),
            Duration::from_secs(10),
        )
    }

    fn events(&self) -> Vec<String> {
        self.ns
            .marker("events")
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn wait_event(&self, line: &str, timeout: Duration) {
        let markers = self.ns.markers();
        let held = wait_for(&[&markers], timeout, || {
            self.events().iter().any(|l| l == line)
        });
        assert!(
            held,
            "never saw {line:?} in {timeout:?}: {:?}\n{}",
            self.events(),
            self.ns.report()
        );
    }

    /// Asserts that the events `order` happened in that order.
    fn assert_order(&self, order: &[&str]) {
        for pair in order.windows(2) {
            assert!(
                self.position(pair[0]) < self.position(pair[1]),
                "{} before {}: {:?}\n{}",
                pair[0],
                pair[1],
                self.events(),
                self.ns.report()
            );
        }
    }

    /// Sends init SIGTERM; its exit code, once it has exited.
    fn stop(&mut self) -> i32 {
        self.ns.signal_init(Signal::SIGTERM);
        self.ns.wait_exit(Duration::from_secs(30))
    }

    fn position(&self, line: &str) -> usize {
        self.events()
            .iter()
            .position(|l| l == line)
            .unwrap_or_else(|| panic!("no {line:?} in {:?}", self.events()))
    }

    fn svdir(&self) -> Proc {
        let init = self.ns.init_pid();
        children(init)
            .into_iter()
            .find(|p| p.comm == "svdir")
            .unwrap_or_else(|| panic!("svdir not found\n{}", self.ns.report()))
    }

    /// The pids of the service processes (the children of every runsv under svdir).
    fn service_pids(&self) -> Vec<(String, Pid)> {
        let mut pids = Vec::new();
        for runsv in children(self.svdir().pid) {
            for service in children(runsv.pid) {
                pids.push((runsv.comm.clone(), service.pid));
            }
        }
        pids.sort_by_key(|(_, pid)| pid.as_raw());
        pids
    }

    /// Adds a service to the running tree (`${MARKERS}` filled in as for the others).
    fn add(&self, name: &str, yaml: &str) {
        let staging = self._scan_parent.path().join("staging");
        let dir = staging.join(name);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("service.yaml"), yaml).unwrap();
        fill(&staging, &self.ns.markers());
        fs::rename(&dir, self.scan.join(name)).unwrap();
    }

    fn happened(&self, event: &str) -> bool {
        self.events().iter().any(|e| e == event)
    }

    fn all_running(&self) {
        for name in ["cache", "app"] {
            self.wait_event(&format!("start {name}"), BOOT);
        }
    }
}

#[test]
fn services_start_in_dependency_order_and_sigterm_stops_them_in_reverse() {
    let Some(mut tree) = Tree::running(false, &[]) else {
        return;
    };
    // init starts svdir in a session of its own, which svdir gives the tree's CPU
    // weight (autogroup nice -20, docs/svdir.md); the services keep their own, normal
    // one. (A runsv's keeper, a copy of runsv holding its pipes, stays in the tree.)
    let autogroup = |pid: Pid| std::fs::read_to_string(format!("/proc/{pid}/autogroup"));
    if let Ok(group) = autogroup(tree.svdir().pid) {
        assert!(group.trim_end().ends_with(" nice -20"), "svdir: {group}");
        let mut services = 0;
        for (_, pid) in tree.service_pids() {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if comm.starts_with("runsv") {
                continue;
            }
            let service_group = autogroup(pid).unwrap_or_default();
            assert!(
                service_group.trim_end().ends_with(" nice 0"),
                "{comm}: {service_group}"
            );
            assert_ne!(service_group, group);
            services += 1;
        }
        assert!(services >= 4, "{:?}", tree.service_pids());
    }
    tree.assert_order(&["start setup", "start db", "start web", "start app"]);
    assert_eq!(tree.stop(), 0, "{}", tree.ns.report());
    tree.assert_order(&["stop app", "stop web", "stop db"]);
    assert!(tree.happened("stop cache"));
}

#[test]
fn a_service_ignoring_term_is_killed_at_its_timeout_and_the_exit_status_says_so() {
    let Some(mut tree) = Tree::running(true, &[]) else {
        return;
    };
    tree.wait_event("start stubborn", BOOT);
    assert_eq!(tree.stop(), 1, "{}", tree.ns.report());
    assert!(
        tree.ns.log().contains("stubborn"),
        "svdir names the service it had to kill\n{}",
        tree.ns.report()
    );
}

#[test]
fn svdir_killed_is_restarted_and_no_service_restarts_or_runs_twice() {
    let Some(mut tree) = Tree::running(false, &[]) else {
        return;
    };
    let before = tree.service_pids();
    let starts_before = tree.events().len();
    // Ten times in a row (issue #6), each time as soon as the new svdir serves.
    for round in 1..=10 {
        let first = tree.svdir();
        kill(first.pid, Signal::SIGKILL).unwrap();
        // init restarts svdir (after a delay that grows while it keeps dying); the new
        // one adopts the running runsv processes instead of starting new ones.
        let held = wait_for(&[], Duration::from_secs(20), || {
            children(tree.ns.init_pid())
                .iter()
                .any(|p| p.comm == "svdir" && p.pid != first.pid)
        });
        assert!(
            held,
            "round {round}: svdir was not restarted\n{}",
            tree.ns.report()
        );
        // Once the new svdir has applied a scan, it has done whatever it would do.
        // (Until it has set up .svdir/control, sv sync says that no svdir runs there.)
        let control = tree.scan.join(".svdir");
        let mut last = (0, String::new(), String::new());
        let synced = wait_for(&[&control], Duration::from_secs(10), || {
            last = tree.sv(&["sync"]);
            last.0 == 0
        });
        assert!(synced, "round {round}: {last:?}\n{}", tree.ns.report());
    }
    let init = tree.ns.init_pid();
    // Adopted runsv processes are init's children now; new ones would be svdir's.
    let mut runsv = children(init)
        .into_iter()
        .filter(|p| p.comm == "runsv")
        .collect::<Vec<_>>();
    let svdir = tree.svdir();
    runsv.extend(
        children(svdir.pid)
            .into_iter()
            .filter(|p| p.comm == "runsv"),
    );
    // cache, setup, db, web, app: one runsv each, no more.
    assert_eq!(runsv.len(), 5, "{}", tree.ns.report());
    let mut after: Vec<Pid> = runsv
        .iter()
        .flat_map(|r| children(r.pid).into_iter().map(|s| s.pid))
        .collect();
    after.sort_by_key(|p| p.as_raw());
    let before: Vec<Pid> = before.into_iter().map(|(_, pid)| pid).collect();
    assert_eq!(after, before, "the services kept their pids");
    assert_eq!(tree.events().len(), starts_before, "{:?}", tree.events());
    let code = tree.stop();
    assert!(code == 0 || code == 1, "{}", tree.ns.report());
    assert!(tree.happened("stop db"));
}

#[test]
fn init_0_from_inside_stops_the_tree_in_order() {
    let Some(mut tree) = Tree::running(false, &[]) else {
        return;
    };
    // A service's stop can tell the shutdown from `sv down`: init says which it is.
    tree.add(
        "announce",
        "exec: sh -c 'trap \"echo shutdown said \\$(cat $MARKERS/shutdown) >> $MARKERS/events; exit 0\" TERM; \
         echo start announce >> $MARKERS/events; while :; do sleep 1; done'\nlog: console\n\
         environ:\n  MARKERS: ${MARKERS}\n",
    );
    let shutdown_file = tree.ns.markers().join("shutdown");
    tree.wait_event("start announce", BOOT);
    assert!(
        !shutdown_file.exists(),
        "a shutdown announced while running"
    );
    // `init 0` run by a process inside the namespace (nsenter into init's namespaces).
    let init = tree.ns.init_pid();
    let (code, out, err) = run(
        Command::new("nsenter")
            .args(["-t", &init.to_string(), "-p", "-m", "--"])
            .arg(binary("init"))
            .arg("0"),
        Duration::from_secs(10),
    );
    assert_eq!(code, 0, "{out}{err}");
    let code = tree.ns.wait_exit(Duration::from_secs(30));
    assert_eq!(code, 0, "{}", tree.ns.report());
    assert!(tree.position("stop app") < tree.position("stop db"));
    assert!(
        tree.happened("shutdown said poweroff"),
        "{:?}",
        tree.events()
    );
}

#[test]
fn the_environment_init_started_with_reaches_a_service_that_asks_for_it() {
    if !root() {
        return;
    }
    let mut tree = Tree::boot(false, &[("FOO", "bar baz")]);
    tree.all_running();
    for (name, asks) in [("asks", "container_env: [FOO]\n"), ("plain", "")] {
        tree.add(
            name,
            &format!(
                "exec: sh -c 'echo \"{name} FOO=${{FOO-unset}}\" >> $MARKERS/events; exec sleep 1000'\n\
                 log: console\nenviron:\n  MARKERS: ${{MARKERS}}\n{asks}"
            ),
        );
    }
    tree.wait_event("asks FOO=bar baz", BOOT);
    tree.wait_event("plain FOO=unset", BOOT);
    // Saved one file per variable, where sv and the services can read it.
    let saved = tree.ns.dir.path().join("env/FOO");
    assert_eq!(fs::read_to_string(&saved).unwrap(), "bar baz");
    kill(tree.ns.init_pid(), Signal::SIGTERM).unwrap();
    assert_eq!(
        tree.ns.wait_exit(Duration::from_secs(30)),
        0,
        "{}",
        tree.ns.report()
    );
}

#[test]
fn on_failure_stop_has_init_stop_the_whole_tree_with_a_failure_status() {
    if !root() {
        return;
    }
    let mut tree = Tree::boot(false, &[]);
    tree.all_running();
    tree.add(
        "critical",
        "exec: sh -c 'echo start critical >> $MARKERS/events; exit 4'\nlog: console\n\
         restart_delay: 30\nrestart_delay_max: 30\non_failure: stop\n\
         environ:\n  MARKERS: ${MARKERS}\n",
    );
    // Nobody signals init: the failure does, and everything stops in order.
    let code = tree.ns.wait_exit(Duration::from_secs(30));
    let log = tree.ns.log();
    assert_eq!(code, 1, "{}", tree.ns.report());
    assert!(
        log.contains("critical: failed: respawn (crash loop): exited 4")
            && log.contains("on_failure is stop: asked init to stop the tree"),
        "{}",
        tree.ns.report()
    );
    assert!(log.contains("init: SIGUSR2: poweroff requested"), "{log}");
    assert!(
        log.contains("svdir: critical: was failing when the stop began"),
        "{log}"
    );
    assert!(tree.position("stop app") < tree.position("stop db"));
}
