//! `sv blame` end to end: the real svdir and runsv start a small dependency chain, runsv
//! records each service's spawn, exec and ready times since boot in supervise/times,
//! and `sv blame` (text and --json) prints them with the chain that ended last.

use runsv::boot_times::Times;
use runsv::supervise::SuperviseDir;
use runtree::svdir_tree::Tree;
use runtree::{binary, run, wait_state, ServiceState, WAIT};
use std::process::Command;
use std::time::Duration;

fn times(service: &std::path::Path) -> Times {
    Times::read(&SuperviseDir::of_service(service))
        .unwrap_or_else(|| panic!("no supervise/times in {}", service.display()))
}

#[test]
fn runsv_records_the_times_and_sv_blame_shows_the_critical_path() {
    let tree = Tree::new();
    let flag = tree.path("db-ready");
    // setup: a oneshot that takes a moment; db: ready by a test once it has written its
    // flag; web: after both; quick: independent, ready at once.
    tree.define("setup", "exec: sleep 0.3\noneshot: true\nlog: none\n");
    tree.define(
        "db",
        &format!(
            "exec: sh -c 'sleep 0.2; touch {0}; exec sleep 1000'\nafter: [setup]\ntest: test -e {0}\nlog: none\n",
            flag.display()
        ),
    );
    tree.define("web", "exec: sleep 1000\nafter: [db, setup]\nlog: none\n");
    tree.sleeper("quick");
    let boot_before = runsv::boot_times::now().unwrap();
    let _svdir = tree.svdir();
    for name in ["setup", "db", "web", "quick"] {
        tree.link(name, name);
    }
    let scan = tree.scan();
    let web = wait_state(&scan.join("web"), WAIT, |s| {
        s.state == ServiceState::Running
    });
    assert!(web.is_some(), "web never running: {}", tree.log());

    let [setup, db, web, quick] = ["setup", "db", "web", "quick"].map(|n| times(&scan.join(n)));
    for (name, t) in [("setup", setup), ("db", db), ("web", web), ("quick", quick)] {
        let (spawn, exec, ready) = (t.spawn.unwrap(), t.exec.unwrap(), t.ready.unwrap());
        assert!(
            boot_before <= spawn && spawn <= exec && exec <= ready,
            "{name}: {t:?}"
        );
    }
    // The oneshot's ready is its successful end; its dependents start after it.
    assert!(setup.ready.unwrap() - setup.spawn.unwrap() >= Duration::from_millis(300));
    assert!(
        db.spawn.unwrap() >= setup.ready.unwrap(),
        "{setup:?} {db:?}"
    );
    // db is ready only once its test passed, 0.2 s after its start.
    assert!(db.ready.unwrap() - db.spawn.unwrap() >= Duration::from_millis(200));
    assert!(web.spawn.unwrap() >= db.ready.unwrap(), "{db:?} {web:?}");

    let sv = || {
        let mut command = Command::new(binary("sv"));
        command.env("SVDIR", &scan);
        command
    };
    let (code, stdout, stderr) = run(sv().arg("blame"), WAIT);
    assert_eq!(code, 0, "{stdout}{stderr}");
    // Without an svdir that is PID 1's child (this one is the test's), no first line
    // about it; the table's header comes first.
    let lines: Vec<&str> = stdout
        .lines()
        .skip_while(|l| l.starts_with("svdir started "))
        .collect();
    assert!(lines[0].starts_with("service "), "{stdout}");
    let order: Vec<&str> = lines[1..5]
        .iter()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(order, ["quick", "setup", "db", "web"], "{stdout}");
    let path_at = lines
        .iter()
        .position(|l| l.starts_with("critical path"))
        .unwrap_or_else(|| panic!("no critical path:\n{stdout}"));
    let path: Vec<&str> = lines[path_at + 1..]
        .iter()
        .map(|l| l.split_whitespace().nth(1).unwrap())
        .collect();
    assert_eq!(path, ["setup", "db", "web"], "{stdout}");

    let (code, json, stderr) = run(sv().args(["blame", "--json"]), WAIT);
    assert_eq!(code, 0, "{stderr}");
    assert!(json.starts_with("{\"clock\":\"CLOCK_BOOTTIME\""), "{json}");
    assert!(
        json.contains("\"critical_path\":[\"setup\",\"db\",\"web\"]"),
        "{json}"
    );
    assert!(
        json.contains(&format!(
            "{{\"name\":\"web\",\"pid\":{},\"spawn\":{:.6},",
            web.pid,
            web.spawn.unwrap().as_secs_f64()
        )),
        "{json}"
    );
    // One service asked for: its row only.
    let (code, stdout, _) = run(sv().args(["blame", "db"]), WAIT);
    assert_eq!(code, 0);
    let lines = stdout.lines().filter(|l| !l.starts_with("svdir started "));
    assert_eq!(lines.count(), 1 + 1 + 2, "{stdout}");
}

#[test]
fn sv_blame_without_any_times_says_so_and_fails() {
    let tree = Tree::new();
    std::fs::create_dir_all(tree.scan().join("idle")).unwrap();
    let (code, stdout, stderr) = run(
        Command::new(binary("sv"))
            .env("SVDIR", tree.scan())
            .arg("blame"),
        WAIT,
    );
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stderr.contains("no service has supervise/times"),
        "{stderr}"
    );
    assert!(stdout.contains("idle "), "{stdout}");
}
