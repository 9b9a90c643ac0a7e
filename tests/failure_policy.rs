//! What a service's failure does to the tree (runsv/src/failure.rs), with the real
//! svdir and runsv: a service crash-looping when the tree stops makes the stop exit 1
//! and is named, unless its `on_failure` (or the tree's `RUNTREE_ON_FAILURE`) is
//! `continue`; `on_failure: stop` stops the whole tree by itself. (Under init, a stop
//! of the tree is init's poweroff: tests/podman.rs.)

use nix::sys::signal::{kill, Signal};
use runtree::svdir_tree::Tree;
use runtree::{wait_state, Guard, ServiceState};
use std::path::Path;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

/// svdir with no runtree init above it (whatever the environment of the test run).
fn svdir(tree: &Tree, env: &[(&str, &str)]) -> Guard {
    let mut command = tree.svdir_command(&tree.scan(), env);
    command.env_remove("RUNTREE_INIT");
    if !env.iter().any(|(k, _)| *k == "RUNTREE_ON_FAILURE") {
        command.env_remove("RUNTREE_ON_FAILURE");
    }
    Guard::spawn(&mut command)
}

fn exit_code(guard: &mut Guard, tree: &Tree) -> i32 {
    let status = guard
        .wait_exit(WAIT)
        .unwrap_or_else(|| panic!("svdir did not exit within {WAIT:?}\n{}", tree.log()));
    status.code().unwrap_or(-1)
}

/// Waits until the service has failed at least once and waits to be started again
/// (a restart delay of 30 s keeps it there while the test goes on).
fn crash_looping(service: &Path, tree: &Tree) {
    let state = wait_state(service, WAIT, |s| {
        s.state == ServiceState::Respawn && s.last_exit.is_some_and(|e| !e.success())
    });
    assert!(state.is_some(), "never crash-looped\n{}", tree.log());
}

const CRASHING: &str =
    "exec: sh -c 'exit 3'\nlog: none\nrestart_delay: 30\nrestart_delay_max: 30\n";

#[test]
fn a_crash_loop_when_the_tree_stops_makes_the_stop_fail_and_is_named() {
    let tree = Tree::new();
    let crashy = tree.define("crashy", CRASHING);
    tree.link("crashy", "crashy");
    let optional = tree.define("optional", &format!("{CRASHING}on_failure: continue\n"));
    tree.link("optional", "optional");
    tree.sleeper("fine");
    tree.link("fine", "fine");
    let mut guard = svdir(&tree, &[]);
    crash_looping(&crashy, &tree);
    crash_looping(&optional, &tree);
    runtree::wait_running(&tree.path("defs/fine"), WAIT);
    kill(guard.pid(), Signal::SIGTERM).unwrap();
    assert_eq!(exit_code(&mut guard, &tree), 1, "{}", tree.log());
    let log = tree.log();
    // runsv said so as it happened (warn, the default), svdir at the stop.
    assert!(log.contains("crashy: failed: respawn (crash loop"), "{log}");
    assert!(
        log.contains("svdir: crashy: was failing when the stop began: respawn (crash loop"),
        "{log}"
    );
    assert!(log.contains("exited 3; restarting in 30s"), "{log}");
    // The optional one is named, not counted, and said nothing as it failed.
    assert!(
        log.contains("svdir: optional: was failing when the stop began: respawn (crash loop")
            && log.contains("(on_failure: continue: not counted)"),
        "{log}"
    );
    assert!(!log.contains("optional: failed:"), "{log}");
    assert!(
        log.contains("svdir: stopped 3 services; 1 ended in error or had to be killed"),
        "{log}"
    );
}

#[test]
fn continue_as_the_trees_default_counts_no_failure() {
    let tree = Tree::new();
    let crashy = tree.define("crashy", CRASHING);
    tree.link("crashy", "crashy");
    let mut guard = svdir(&tree, &[("RUNTREE_ON_FAILURE", "continue")]);
    crash_looping(&crashy, &tree);
    kill(guard.pid(), Signal::SIGTERM).unwrap();
    assert_eq!(exit_code(&mut guard, &tree), 0, "{}", tree.log());
    assert!(tree.log().contains("not counted"), "{}", tree.log());
}

#[test]
fn on_failure_stop_stops_the_whole_tree() {
    let tree = Tree::new();
    tree.sleeper("bystander");
    tree.link("bystander", "bystander");
    let critical = tree.define(
        "critical",
        "exec: sh -c 'exit 2'\nlog: none\nrestart_delay: 30\nrestart_delay_max: 30\non_failure: stop\n",
    );
    tree.link("critical", "critical");
    let mut guard = svdir(&tree, &[]);
    // Nobody signals svdir here: the failure does.
    assert_eq!(exit_code(&mut guard, &tree), 1, "{}", tree.log());
    let log = tree.log();
    assert!(
        log.contains("critical: failed: respawn (crash loop")
            && log.contains("on_failure is stop: asked svdir (pid"),
        "{log}"
    );
    assert!(log.contains("svdir: SIGTERM: stopping 2 services"), "{log}");
    assert!(
        log.contains("svdir: critical: was failing when the stop began"),
        "{log}"
    );
    let _ = critical;
}
