//! `after:` end to end: real runsv processes, one per entry of a temp scan directory
//! (started in the scan directory as `runsv NAME`, exactly as svdir starts them), each
//! waiting for its dependencies through inotify on their supervise/ directories. The
//! start order is observed through a file every service appends its name to when it
//! really starts.

use runtree::yaml_service;
use runtree::WAIT;
use runtree::{binary, full_state, run, wait_for, wait_state, Guard, ServiceState};
use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// Fields drop in order: the supervisors are stopped before the directory goes.
struct Tree {
    runsv: Vec<Guard>,
    scan: tempfile::TempDir,
}

impl Tree {
    fn new() -> Tree {
        Tree {
            scan: tempfile::tempdir().unwrap(),
            runsv: Vec::new(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.scan.path().join(name)
    }

    /// A longrun that records its start in `../started`, then sleeps. It is ready
    /// (`running`) once the record is written, so that the order of the records is the
    /// order of the starts: without a readiness test a service is `running` as soon as
    /// it is spawned, and its dependents may well print before it does.
    fn longrun(&self, name: &str, extra: &str) {
        self.yaml(
            name,
            &format!(
                "exec: sh -c 'echo {name} >> ../started; exec sleep 1000'\ntest: grep -qx {name} ../started\ntest_interval: 0.02\nlog: none\n{extra}"
            ),
        );
    }

    fn yaml(&self, name: &str, yaml: &str) {
        yaml_service(self.scan.path(), name, yaml);
    }

    /// Starts the runsv of each name, in the order given.
    fn start(&mut self, names: &[&str]) {
        for name in names {
            let guard = Guard::spawn(
                Command::new(binary("runsv"))
                    .arg(name)
                    .current_dir(self.scan.path()),
            );
            self.runsv.push(guard);
        }
    }

    fn started(&self) -> Vec<String> {
        fs::read_to_string(self.path("started"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn wait(&self, name: &str, state: ServiceState) -> runsv::supervise::FullState {
        let dir = self.path(name);
        wait_state(&dir, WAIT, |s| s.state == state)
            .unwrap_or_else(|| panic!("{name} never {state}: {:?}", full_state(&dir)))
    }

    fn wait_reason(&self, name: &str, state: ServiceState, reason: &str) {
        let dir = self.path(name);
        let found = wait_state(&dir, WAIT, |s| s.state == state && s.reason == reason);
        assert!(
            found.is_some(),
            "{name}: wanted {state} ({reason}), have {:?}",
            full_state(&dir)
        );
    }

    fn sv(&self, args: &[&str]) -> (i32, String, String) {
        run(
            Command::new(binary("sv"))
                .args(args)
                .env("SVDIR", self.scan.path()),
            WAIT,
        )
    }
}

fn position(order: &[String], name: &str) -> usize {
    order
        .iter()
        .position(|n| n == name)
        .unwrap_or_else(|| panic!("{name} never started: {order:?}"))
}

#[test]
fn a_chain_starts_in_order_whatever_order_the_supervisors_start_in() {
    let mut tree = Tree::new();
    tree.longrun("a", "");
    tree.longrun("b", "after: [a]\n");
    tree.longrun("c", "after: [b]\n");
    // The last of the chain is supervised first: it must wait, and say for what.
    tree.start(&["c"]);
    tree.wait_reason("c", ServiceState::Waiting, "waiting for b");
    tree.start(&["b"]);
    tree.wait_reason("b", ServiceState::Waiting, "waiting for a");
    tree.wait_reason("c", ServiceState::Waiting, "waiting for b");
    let (_, out, _) = tree.sv(&["status", "c"]);
    assert!(out.contains("[waiting for b]"), "{out}");
    tree.start(&["a"]);
    tree.wait("c", ServiceState::Running);
    assert_eq!(tree.started(), ["a", "b", "c"]);
}

#[test]
fn a_diamond_starts_its_sides_after_the_base_and_the_top_last() {
    let mut tree = Tree::new();
    tree.longrun("db", "");
    tree.longrun("left", "after: [db]\n");
    tree.longrun("right", "after: [db]\n");
    tree.longrun("app", "after: [left, right]\n");
    tree.start(&["app", "left", "right"]);
    tree.wait_reason("app", ServiceState::Waiting, "waiting for left, right");
    tree.start(&["db"]);
    tree.wait("app", ServiceState::Running);
    let order = tree.started();
    assert_eq!(order.len(), 4, "{order:?}");
    assert_eq!(position(&order, "db"), 0, "{order:?}");
    assert_eq!(position(&order, "app"), 3, "{order:?}");
}

#[test]
fn a_oneshot_runs_before_the_longrun_that_needs_it() {
    let mut tree = Tree::new();
    tree.yaml(
        "setup",
        "exec: sh -c 'sleep 0.2; echo setup >> ../started'\noneshot: true\nlog: none\n",
    );
    tree.longrun("web", "after: [setup]\n");
    tree.start(&["web", "setup"]);
    tree.wait("web", ServiceState::Running);
    tree.wait("setup", ServiceState::Ok);
    assert_eq!(tree.started(), ["setup", "web"]);
}

#[test]
fn a_failed_oneshot_fails_its_dependents_until_it_is_fixed_and_run_again() {
    let mut tree = Tree::new();
    tree.yaml(
        "setup",
        "exec: sh -c 'test -e fixed'\noneshot: true\nlog: none\n",
    );
    tree.longrun("web", "after: [setup]\n");
    tree.longrun("app", "after: [web]\n");
    tree.start(&["app", "web", "setup"]);
    tree.wait("setup", ServiceState::Error);
    tree.wait_reason(
        "web",
        ServiceState::Error,
        "dependency setup failed: exited 1",
    );
    tree.wait_reason(
        "app",
        ServiceState::Error,
        "dependency web failed: dependency setup failed: exited 1",
    );
    assert!(tree.started().is_empty(), "{:?}", tree.started());
    // Fix it and run it again: its dependents start by themselves.
    fs::write(tree.path("setup/fixed"), "").unwrap();
    let (code, _, err) = tree.sv(&["up", "setup"]);
    assert_eq!(code, 0, "{err}");
    tree.wait("app", ServiceState::Running);
    assert_eq!(tree.started(), ["web", "app"]);
}

#[test]
fn a_dependency_whose_binary_is_missing_fails_its_dependents_with_its_reason() {
    let mut tree = Tree::new();
    tree.yaml("db", "exec: /nonexistent/db-server\nlog: none\n");
    tree.longrun("app", "after: [db]\n");
    tree.start(&["db", "app"]);
    let db = tree.wait("db", ServiceState::Error);
    assert!(db.reason.contains("No such file"), "{}", db.reason);
    let app = tree.wait("app", ServiceState::Error);
    assert_eq!(app.reason, format!("dependency db failed: {}", db.reason));
}

#[test]
fn an_unknown_dependency_that_appears_later_lets_the_service_start() {
    let mut tree = Tree::new();
    tree.longrun("app", "after: [db]\n");
    tree.start(&["app"]);
    tree.wait_reason("app", ServiceState::Error, "unknown dependency db");
    tree.longrun("db", "");
    tree.start(&["db"]);
    tree.wait("app", ServiceState::Running);
    assert_eq!(tree.started(), ["db", "app"]);
}

#[test]
fn cycles_are_errors_that_hold_up_nothing_outside_them() {
    let mut tree = Tree::new();
    tree.longrun("a", "after: [b]\n");
    tree.longrun("b", "after: [a]\n");
    tree.longrun("x", "after: [y]\n");
    tree.longrun("y", "after: [z]\n");
    tree.longrun("z", "after: [x]\n");
    tree.longrun("healthy", "");
    tree.longrun("beside", "after: [healthy]\n");
    tree.start(&["a", "b", "x", "y", "z", "healthy", "beside"]);
    tree.wait("beside", ServiceState::Running);
    tree.wait_reason("a", ServiceState::Error, "dependency cycle: a → b → a");
    tree.wait_reason("b", ServiceState::Error, "dependency cycle: b → a → b");
    tree.wait_reason("x", ServiceState::Error, "dependency cycle: x → y → z → x");
    tree.wait_reason("y", ServiceState::Error, "dependency cycle: y → z → x → y");
    tree.wait_reason("z", ServiceState::Error, "dependency cycle: z → x → y → z");
    let order = tree.started();
    assert_eq!(order, ["healthy", "beside"]);
}

#[test]
fn readiness_gates_dependents() {
    let mut tree = Tree::new();
    tree.yaml(
        "db",
        "exec: sh -c 'echo db >> ../started; exec sleep 1000'\ntest: test -e ready\ntest_interval: 0.05\nlog: none\n",
    );
    tree.longrun("app", "after: [db]\n");
    tree.start(&["db", "app"]);
    tree.wait("db", ServiceState::Starting);
    tree.wait_reason("app", ServiceState::Waiting, "waiting for db");
    assert!(wait_for(&[tree.scan.path()], WAIT, || tree.started() == ["db"]));
    fs::write(tree.path("db/ready"), "").unwrap();
    tree.wait("app", ServiceState::Running);
    assert_eq!(tree.started(), ["db", "app"]);
}

#[test]
fn a_dependency_going_down_later_does_not_stop_its_dependents() {
    let mut tree = Tree::new();
    tree.longrun("db", "");
    tree.longrun("app", "after: [db]\n");
    tree.start(&["db", "app"]);
    let app = tree.wait("app", ServiceState::Running);
    let (code, _, err) = tree.sv(&["-w", "5", "down", "db"]);
    assert_eq!(code, 0, "{err}");
    tree.wait("db", ServiceState::Down);
    // app's runsv has seen db go down (its state file changed); app runs on.
    let (_, out, _) = tree.sv(&["status", "app"]);
    assert!(out.starts_with("run: app:"), "{out}");
    assert_eq!(full_state(&tree.path("app")).map(|s| s.pid), Some(app.pid));
}

#[test]
fn services_without_a_relation_start_in_parallel() {
    // Twenty services that each take 0.3 s to become ready, all depended on by one:
    // in sequence that would be 6 s; in parallel, well under.
    let mut tree = Tree::new();
    let mut names = Vec::new();
    for i in 0..20 {
        let name = format!("s{i}");
        tree.yaml(
            &name,
            "exec: sh -c 'sleep 0.3; touch ready; exec sleep 1000'\ntest: test -e ready\ntest_interval: 0.05\nlog: none\n",
        );
        names.push(name);
    }
    tree.longrun("top", &format!("after: [{}]\n", names.join(", ")));
    let mut all: Vec<&str> = names.iter().map(String::as_str).collect();
    all.push("top");
    let began = std::time::Instant::now();
    tree.start(&all);
    tree.wait("top", ServiceState::Running);
    let took = began.elapsed();
    assert!(
        took < Duration::from_secs(4),
        "20 independent services took {took:?}: not started in parallel"
    );
    assert!(wait_for(&[], WAIT, || tree.started() == ["top"]));
}
