//! Floods end to end: a service writing as fast as it can, `R` written as fast as it
//! can, a definition nested as deep as it can be. Whatever floods, runsv keeps
//! answering control bytes, signals and child exits.

use runsv::control::{send_control, Control};
use runsv::supervise::SuperviseDir;
use runtree::service::runit_service;
use runtree::svdir_tree::svdir_writing_to;
use runtree::{
    binary, full_state, run, supervised, wait_error, wait_for, wait_running, wait_state,
};
use runtree::{yaml_service, Guard, ServiceState, WAIT};
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a flooded runsv may take to answer: generous for a busy 2-core machine,
/// far below the forever it takes when the relay never returns to poll.
const PROMPT: Duration = Duration::from_secs(5);

/// runsv of `service`, its output (console and kmsg stand-in) thrown away so the flood
/// costs no disk; returned once it holds supervise/ok.
fn runsv(service: &Path) -> Guard {
    let mut command = Command::new(binary("runsv"));
    command
        .arg(service)
        .env("RUNTREE_KMSG", "/dev/null")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    supervised(&mut command, service)
}

fn sv(args: &[&str], service: &Path) -> (i32, String, String, Duration) {
    let started = Instant::now();
    let (code, out, err) = run(Command::new(binary("sv")).args(args).arg(service), WAIT);
    (code, out, err, started.elapsed())
}

/// Control, status and SIGTERM under the flood of `service`'s output.
fn answers_while_flooding(service: &Path) {
    let mut runsv = runsv(service);
    wait_running(service, WAIT);
    let (code, out, err, _) = sv(&["status"], service);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("run: "), "{out}");
    let (code, out, err, took) = sv(&["-w", "5", "down"], service);
    assert_eq!(code, 0, "sv -w 5 down under a flood: {out}{err}");
    assert!(took < PROMPT, "sv -w 5 down took {took:?}");
    let (code, out, err, took) = sv(&["-w", "5", "up"], service);
    assert_eq!(code, 0, "sv -w 5 up: {out}{err}");
    assert!(took < PROMPT, "sv -w 5 up took {took:?}");
    // The flood is back; SIGTERM ends runsv (after stopping the service).
    wait_running(service, WAIT);
    let pid = full_state(service).map(|s| s.pid).unwrap_or(0);
    nix::sys::signal::kill(runsv.pid(), nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = runsv.wait_exit(PROMPT);
    assert!(status.is_some(), "runsv outlived SIGTERM under a flood");
    assert!(
        pid != 0 && !runtree::alive(pid),
        "the flooding service survived"
    );
}

#[test]
fn a_flood_to_the_console_leaves_runsv_answering() {
    let root = tempfile::tempdir().unwrap();
    let service = yaml_service(root.path(), "yes", "exec: yes\nlog: console\n");
    answers_while_flooding(&service);
}

#[test]
fn a_flood_to_kmsg_leaves_runsv_answering() {
    let root = tempfile::tempdir().unwrap();
    let service = yaml_service(root.path(), "yes", "exec: yes\n");
    answers_while_flooding(&service);
}

/// A valid service.yaml of about 1 MB: every `R` re-reads and parses all of it.
fn big_definition() -> String {
    let mut text = String::from("exec: sleep 1000\nenviron:\n");
    let mut i = 0;
    while text.len() < 1 << 20 {
        text.push_str(&format!("  KEY_{i}: value-{i}-{}\n", "x".repeat(40)));
        i += 1;
    }
    text
}

#[test]
fn a_flood_of_reconfigure_does_not_starve_exit() {
    let root = tempfile::tempdir().unwrap();
    let service = yaml_service(root.path(), "big", &big_definition());
    let mut runsv = runsv(&service);
    let supervise = SuperviseDir::of_service(&service);
    // Fill the control FIFO with R and keep it full.
    let stop = Arc::new(AtomicBool::new(false));
    let flooder = {
        let stop = stop.clone();
        let supervise = supervise.clone();
        std::thread::spawn(move || {
            let burst = vec![Control::Reconfigure; 4096];
            while !stop.load(Ordering::Relaxed) {
                // EAGAIN (full) is expected; the loop is bounded by `stop`.
                let _ = send_control(&supervise, &burst);
                std::thread::yield_now();
            }
        })
    };
    // `x` behind whatever R waits: it gets in as soon as runsv reads, then must be
    // honoured within a turn, not after every R before it.
    let started = Instant::now();
    let mut sent = false;
    while !sent && started.elapsed() < WAIT {
        sent = send_control(&supervise, &[Control::Exit]).is_ok();
        if !sent {
            std::thread::yield_now();
        }
    }
    assert!(sent, "the control FIFO never had room for x");
    let exited = runsv.wait_exit(WAIT);
    stop.store(true, Ordering::Relaxed);
    flooder.join().unwrap();
    assert!(
        exited.is_some(),
        "runsv did not honour x under a flood of R"
    );
    assert!(
        started.elapsed() < PROMPT,
        "x took {:?} under a flood of R",
        started.elapsed()
    );
}

#[test]
fn deep_yaml_nesting_is_refused_at_once_with_the_line_and_cause() {
    let root = tempfile::tempdir().unwrap();
    // As deep as fits in service.yaml's 64 KiB limit: 32k levels took serde_yaml 6 s.
    let depth = 32_000;
    let text = format!(
        "exec: sleep 1000\n# deep\nafter: {}{}\n",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let service = yaml_service(root.path(), "deep", &text);
    let started = Instant::now();
    let _runsv = runsv(&service);
    let state = wait_error(&service, WAIT);
    assert!(started.elapsed() < PROMPT, "took {:?}", started.elapsed());
    let yaml = service.join("service.yaml");
    assert!(
        state
            .reason
            .contains(&format!("{}: line 3: nested deeper than", yaml.display())),
        "{}",
        state.reason
    );
    // And a reconfigure to it is refused as quickly, the old definition kept.
    fs::write(&yaml, "exec: sleep 1000\n").unwrap();
    let (code, out, err, _) = sv(&["reconfigure"], &service);
    assert_eq!(code, 0, "{out}{err}");
    wait_running(&service, WAIT);
    fs::write(
        &yaml,
        format!("exec: sleep 1000\nenviron: {}\n", "{a: ".repeat(depth / 2)),
    )
    .unwrap();
    let (code, out, err, took) = sv(&["reconfigure"], &service);
    assert!(took < PROMPT, "{took:?} {code} {out}{err}");
    let state = wait_state(&service, WAIT, |s| s.reason.contains("nested deeper than"))
        .unwrap_or_else(|| panic!("refusal not shown: {:?}", full_state(&service)));
    assert_eq!(state.state, ServiceState::Running, "{state:?}");
}

/// Writes `lines` lines `NAME line-I`, each with one write.
fn chatter(name: &str, lines: usize) -> String {
    format!("i=1; while [ $i -le {lines} ]; do echo \"{name} line-$i\"; i=$((i+1)); done")
}

#[test]
fn services_sharing_svdirs_plain_file_output_lose_no_line() {
    let root = tempfile::tempdir().unwrap();
    let scan = root.path().join("scan");
    fs::create_dir(&scan).unwrap();
    let (services, lines) = (16, 500);
    let mut names = Vec::new();
    for i in 0..services {
        // Half relay their output (runsv reopens the file to write it), half write
        // straight into the file description they inherit from svdir.
        let name = format!("s{i}");
        if i % 2 == 0 {
            let yaml = format!(
                "exec: sh -c '{}'\noneshot: true\nlog: console\n",
                chatter(&name, lines)
            );
            yaml_service(&scan, &name, &yaml);
        } else {
            let run = format!("#!/bin/sh\n{}\nexec sleep 1000\n", chatter(&name, lines));
            runit_service(&scan, &name, &run);
        }
        names.push(name);
    }
    // `svdir scan >log 2>&1`: one description, no O_APPEND.
    let log = root.path().join("log");
    let svdir = Guard::spawn_in_session(&mut svdir_writing_to(&scan, &log));
    let expected = services * lines;
    let count = || {
        fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(" line-"))
            .count()
    };
    // Lines overwritten never come back: wait for all, or time out and compare.
    wait_for(&[root.path()], Duration::from_secs(30), || {
        count() >= expected
    });
    drop(svdir);
    let text = fs::read_to_string(&log).unwrap();
    let mut seen = std::collections::HashMap::new();
    for line in text.lines().filter(|l| l.contains("line-")) {
        *seen.entry(line.to_string()).or_insert(0) += 1;
    }
    let mut missing = 0;
    for name in &names {
        for j in 1..=lines {
            match seen.remove(&format!("{name} line-{j}")) {
                Some(1) => {}
                Some(n) => panic!("{name} line-{j} {n} times"),
                None => missing += 1,
            }
        }
    }
    assert_eq!(missing, 0, "{missing} of {expected} lines lost");
    // Anything else with a line number is a line broken by another writer.
    assert!(
        seen.is_empty(),
        "broken lines: {:?}",
        seen.keys().take(5).collect::<Vec<_>>()
    );
}
