//! The bundled examples (examples/services) are valid service definitions, and
//! `examples/demo --check` brings each one to its expected state under the workspace's
//! binaries, in dependency order, and cleans up after itself.

use runsv::definition::{Form, LogDestination, Readiness, ServiceDefinition};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Every example, and the state `sv status` must show for it once the tree settles.
const EXPECTED: [(&str, &str); 4] = [
    ("hello-once", "ok"),
    ("web", "running"),
    ("counter", "running"),
    ("app", "running"),
];

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

fn load(name: &str) -> ServiceDefinition {
    let dir = examples().join("services").join(name);
    ServiceDefinition::load(&dir).unwrap_or_else(|e| panic!("examples/services/{name}: {e}"))
}

#[test]
fn every_example_service_is_listed_here() {
    let mut on_disk: Vec<String> = std::fs::read_dir(examples().join("services"))
        .expect("examples/services")
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = EXPECTED.iter().map(|(n, _)| n.to_string()).collect();
    listed.sort();
    assert_eq!(on_disk, listed, "examples/services and EXPECTED differ");
}

#[test]
fn example_definitions_load_and_show_what_they_teach() {
    let hello = load("hello-once");
    assert!(hello.oneshot);
    assert_eq!(hello.log, LogDestination::Console);

    let web = load("web");
    assert!(!web.oneshot);
    assert!(
        matches!(&web.readiness, Readiness::Test { command, .. } if command == &["test", "-e", "ready"]),
        "{:?}",
        web.readiness
    );
    assert_eq!(web.log, LogDestination::Console);

    let counter = load("counter");
    assert_eq!(counter.form, Form::Runit);
    assert!(counter.finish.is_some(), "counter has a finish script");
    assert!(
        matches!(counter.log, LogDestination::Service(_)),
        "{:?}",
        counter.log
    );

    let app = load("app");
    assert_eq!(app.after, ["web", "hello-once"]);
}

#[test]
fn demo_check_brings_every_example_to_its_expected_state() {
    // The demo uses these instead of building release binaries.
    runtree::binary("runsv");
    runtree::binary("sv");
    let mut demo = Command::new("bash");
    demo.arg(examples().join("demo"))
        .arg("--check")
        .env("RUNTREE_BIN_DIR", runtree::binary_dir())
        .env_remove("SVDIR");
    let (code, stdout, stderr) = runtree::run(&mut demo, Duration::from_secs(120));
    assert_eq!(
        code, 0,
        "examples/demo --check failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    for (name, state) in EXPECTED {
        let shown = stdout.lines().any(|line| {
            line.split(';').next().is_some_and(|main| {
                main.contains(&format!(": {name}: ")) && main.contains(&format!("[{state}"))
            })
        });
        assert!(
            shown,
            "`sv status` does not show {name} as {state}\nstdout:\n{stdout}\nstderr:\n{stderr}"
        );
    }
}
