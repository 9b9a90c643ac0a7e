//! svdir end to end: the real svdir, runsv and svchdir binaries on scan directories in
//! temp dirs. Every wait is bounded and event-driven (inotify on the files concerned);
//! every process started is owned by a Guard (its own process group, killed on drop),
//! and the services seen are added to the guards' extra groups, so nothing outlives a
//! failed test.

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use runsv::control::{request_sync, synced_count, SYNC_DIRECTORY};
use runsv::supervise::ExitStatus;
use runtree::service::signal;
use runtree::svdir_tree::{assert_runlevels, runsv_children, Tree};
use runtree::{
    alive, binary, control, full_state, run, supervisor_up, wait_for, wait_state, write_script,
    Guard, ServiceState, WAIT,
};
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{symlink, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Asks svdir for a rescan through `.svdir/control` and waits until `synced` says it
/// was applied; waits first for an svdir to hold the FIFO open.
fn sync(scan: &Path) {
    let dir = scan.join(SYNC_DIRECTORY);
    let fifo = dir.join("control");
    assert!(
        wait_for(&[&dir, scan], WAIT, || {
            runsv::reader::supervisor_running_at(None, &fifo).unwrap_or(false)
        }),
        "no svdir holds {}",
        fifo.display()
    );
    let before = synced_count(scan);
    request_sync(scan).unwrap();
    assert!(
        wait_for(&[&dir], WAIT, || synced_count(scan) > before),
        "synced never went past {before}"
    );
}

/// Waits until the service runs; its pid, added to the guard's groups for cleanup.
fn running(service: &Path, guard: &mut Guard) -> u32 {
    let pid = runtree::wait_running(service, WAIT);
    guard.also_kill(pid);
    pid
}

/// Waits until svdir `svdir` runs a runsv for the entry `service` other than `old`,
/// and that runsv holds supervise/ok.
fn replaced(svdir: Pid, service: &Path, old: u32) -> bool {
    let name = service.file_name().and_then(|n| n.to_str()).unwrap_or("");
    wait_for(&[&service.join("supervise")], WAIT, || {
        runsv_children(svdir).get(name).is_some_and(|p| *p != old) && runsv_alive(service)
    })
}

fn runsv_alive(service: &Path) -> bool {
    supervisor_up(service)
}

/// Waits until the service's runsv is gone and its process `pid` is dead.
fn wait_gone(service: &Path, pid: u32) {
    assert!(
        wait_for(&[&service.join("supervise"), service], WAIT, || {
            !runsv_alive(service) && !alive(pid)
        }),
        "{}: runsv or service (pid {pid}) still there: {:?}",
        service.display(),
        full_state(service)
    );
}

/// The runsv supervising `name`, whoever its parent is: the process named `runsv NAME`
/// holding the service's supervise/ open (its cwd is the service directory).
fn runsv_of(service: &Path) -> Option<u32> {
    let target = fs::canonicalize(service).ok()?;
    for pid in runsv::proc::pids() {
        let Some(argv) = runtree::argv(pid).filter(|_| alive(pid)) else {
            continue;
        };
        if argv.first().is_some_and(|a| a == "runsv")
            && fs::read_link(format!("/proc/{pid}/cwd")).ok().as_deref() == Some(target.as_path())
        {
            return Some(pid);
        }
    }
    None
}

#[test]
fn an_added_entry_runs_and_a_removed_one_stops_with_its_runsv() {
    let tree = Tree::new();
    let a = tree.linked_sleeper("a");
    tree.sleeper("b");
    let mut svdir = tree.svdir();
    let a_pid = running(&a, &mut svdir);
    let b = tree.link("b", "b");
    let b_pid = running(&b, &mut svdir);
    let children = runsv_children(svdir.pid());
    assert_eq!(children.len(), 2, "{children:?}");
    // Removing the entry stops the service and its runsv; the other is untouched.
    fs::remove_file(&b).unwrap();
    let b_dir = tree.path("defs/b");
    wait_gone(&b_dir, b_pid);
    // runsv writes through the directory it is in, so the entry's removal does not
    // keep it from recording the stop.
    let b_state = wait_state(&b_dir, WAIT, |s| {
        s.state == ServiceState::Down && s.pid == 0
    });
    assert!(b_state.is_some(), "{:?}", full_state(&b_dir));
    assert!(!tree.log().contains("unable to write"), "{}", tree.log());
    assert!(alive(a_pid));
    assert_eq!(full_state(&a).unwrap().pid, a_pid);
    sync(&tree.scan());
    assert_eq!(
        runsv_children(svdir.pid()).keys().collect::<Vec<_>>(),
        ["a"],
        "the removed entry's runsv is not restarted"
    );
    tree.assert_logged("svdir: b: removed");
    tree.assert_stops(&mut svdir, Signal::SIGTERM, 0);
    assert!(!alive(a_pid));
}

#[test]
fn a_renamed_entry_keeps_its_runsv_and_service() {
    let tree = Tree::new();
    let a = tree.linked_sleeper("a");
    let mut svdir = tree.svdir();
    let pid = running(&a, &mut svdir);
    let runsv = runsv_children(svdir.pid());
    fs::rename(&a, tree.scan().join("renamed")).unwrap();
    sync(&tree.scan());
    let renamed = tree.scan().join("renamed");
    assert_eq!(full_state(&renamed).unwrap().pid, pid);
    // The runsv still writes its files after the rename: a restart shows up there.
    control(&renamed, "t");
    let restarted = wait_state(&renamed, WAIT, |s| {
        s.state == ServiceState::Running && s.pid != pid && s.pid != 0
    });
    assert!(
        restarted.is_some(),
        "{:?}\n{}",
        full_state(&renamed),
        tree.log()
    );
    let pid = restarted.map(|s| s.pid).unwrap_or(0);
    assert!(alive(pid));
    let now = runsv_children(svdir.pid());
    assert_eq!(
        now.values().collect::<Vec<_>>(),
        runsv.values().collect::<Vec<_>>(),
        "same runsv"
    );
    tree.assert_logged("svdir: a: renamed to renamed");
    // Two entries for one directory are one service.
    symlink(tree.path("defs/a"), tree.scan().join("alias")).unwrap();
    sync(&tree.scan());
    assert_eq!(runsv_children(svdir.pid()).len(), 1);
    tree.assert_logged("svdir: alias: skipped: same service directory as renamed");
    assert!(alive(pid));
}

#[test]
fn a_retargeted_symlink_stops_the_old_directory_and_starts_the_new() {
    let tree = Tree::new();
    tree.sleeper("one");
    tree.sleeper("two");
    let entry = tree.link("web", "one");
    let mut svdir = tree.svdir();
    let first = running(&entry, &mut svdir);
    // ln -s two web.new && mv web.new web
    let new = tree.scan().join(".web.new");
    symlink(tree.path("defs/two"), &new).unwrap();
    fs::rename(&new, &entry).unwrap();
    let two = tree.path("defs/two");
    let second = running(&two, &mut svdir);
    assert_ne!(first, second);
    wait_gone(&tree.path("defs/one"), first);
    // Never two services under one name: the new one waited for the old one's runsv.
    tree.assert_logged("svdir: web: new: starts once the old runsv of this name has exited");
    sync(&tree.scan());
    assert_eq!(runsv_children(svdir.pid()).len(), 1);
    assert_eq!(full_state(&two).unwrap().pid, second);
}

#[test]
fn fifty_entries_added_at_once_all_run() {
    let tree = Tree::new();
    let mut svdir = tree.svdir();
    sync(&tree.scan());
    // Prepared aside, then moved in one rename each.
    let staging = tree.path("staging");
    fs::create_dir_all(&staging).unwrap();
    let names: Vec<String> = (0..50).map(|i| format!("s{i:02}")).collect();
    for name in &names {
        tree.sleeper(name);
        symlink(tree.path("defs").join(name), staging.join(name)).unwrap();
    }
    let start = Instant::now();
    for name in &names {
        fs::rename(staging.join(name), tree.scan().join(name)).unwrap();
    }
    for name in &names {
        running(&tree.scan().join(name), &mut svdir);
    }
    let took = start.elapsed();
    assert_eq!(runsv_children(svdir.pid()).len(), 50);
    eprintln!("50 services running {took:?} after their entries appeared");
    tree.assert_stops(&mut svdir, Signal::SIGTERM, 0);
    tree.assert_logged("svdir: stopped 50 services cleanly");
}

#[test]
fn an_empty_directory_then_populated() {
    let tree = Tree::new();
    let mut svdir = tree.svdir();
    sync(&tree.scan());
    tree.assert_logged("scanning");
    assert!(runsv_children(svdir.pid()).is_empty());
    // A directory made in place (under a dot-name, then renamed) and a symlink.
    let hidden = tree.scan().join(".x");
    fs::create_dir(&hidden).unwrap();
    fs::write(hidden.join("service.yaml"), "exec: sleep 1000\nlog: none\n").unwrap();
    sync(&tree.scan());
    assert!(
        runsv_children(svdir.pid()).is_empty(),
        "dot-entries are skipped"
    );
    fs::rename(&hidden, tree.scan().join("x")).unwrap();
    let y = tree.linked_sleeper("y");
    running(&tree.scan().join("x"), &mut svdir);
    running(&y, &mut svdir);
}

#[test]
fn a_runlevel_switch_keeps_common_services_and_swaps_the_others() {
    let tree = Tree::new();
    for name in ["a", "b", "c"] {
        tree.sleeper(name);
    }
    let levels = tree.path("levels");
    for (level, names) in [("one", ["a", "b"]), ("two", ["b", "c"])] {
        fs::create_dir_all(levels.join(level)).unwrap();
        for name in names {
            symlink(tree.path("defs").join(name), levels.join(level).join(name)).unwrap();
        }
    }
    symlink("one", levels.join("current")).unwrap();
    let service = tree.path("service");
    symlink(levels.join("current"), &service).unwrap();
    let mut svdir = tree.svdir_on(&service, &[]);
    let a_pid = running(&service.join("a"), &mut svdir);
    let b_pid = running(&service.join("b"), &mut svdir);
    assert!(levels.join("one/.svdir/control").exists());
    let runsv_b = runsv_of(&service.join("b")).unwrap();

    let levels_text = levels.to_str().unwrap();
    let (code, _, stderr) = run(
        Command::new(binary("svchdir"))
            .arg("two")
            .env("RUNTREE_RUNSVDIR", levels_text),
        WAIT,
    );
    assert_eq!((code, stderr.as_str()), (0, ""));
    assert_runlevels(&levels, "two", "one");

    let c_pid = running(&tree.path("defs/c"), &mut svdir);
    wait_gone(&tree.path("defs/a"), a_pid);
    // b is in both levels: same runsv, same process.
    assert_eq!(full_state(&service.join("b")).unwrap().pid, b_pid);
    assert_eq!(runsv_of(&service.join("b")), Some(runsv_b));
    assert!(alive(b_pid) && alive(c_pid));
    // The sync control moved to the new directory.
    sync(&levels.join("two"));
    let mut children: Vec<String> = runsv_children(svdir.pid()).into_keys().collect();
    children.sort();
    assert_eq!(children, ["b", "c"]);
    tree.assert_logged("svdir: runlevel: ");

    // Back again, by the name runsvchdir users type.
    let (code, _, _) = run(
        Command::new(binary("svchdir"))
            .arg("one/")
            .env("RUNTREE_RUNSVDIR", levels_text),
        WAIT,
    );
    assert_eq!(code, 0);
    running(&tree.path("defs/a"), &mut svdir);
    wait_gone(&tree.path("defs/c"), c_pid);
    assert_eq!(full_state(&service.join("b")).unwrap().pid, b_pid);
    tree.assert_stops(&mut svdir, Signal::SIGTERM, 0);
}

#[test]
fn svchdir_errors_and_usage() {
    let tree = Tree::new();
    let levels = tree.path("levels");
    fs::create_dir_all(levels.join("default")).unwrap();
    fs::write(levels.join("file"), "").unwrap();
    let svchdir = |args: &[&str]| {
        run(
            Command::new(binary("svchdir"))
                .args(args)
                .env("RUNTREE_RUNSVDIR", &levels),
            WAIT,
        )
    };
    assert_eq!(svchdir(&[]).0, 100);
    assert_eq!(svchdir(&["a", "b"]).0, 100);
    let (code, _, stderr) = svchdir(&["missing"]);
    assert_eq!(code, 111);
    assert!(
        stderr.starts_with("svchdir: fatal: ") && stderr.contains("does not exist"),
        "{stderr}"
    );
    let (code, _, stderr) = svchdir(&["file"]);
    assert_eq!(code, 111);
    assert!(stderr.contains("not a directory"), "{stderr}");
    assert_eq!(svchdir(&["../x"]).0, 111);
    // First switch: no previous.
    assert_eq!(svchdir(&["default"]), (0, String::new(), String::new()));
    assert!(!levels.join("previous").exists());
    let (code, _, stderr) = svchdir(&["default"]);
    assert_eq!((code, stderr.as_str()), (0, "svchdir: default: current.\n"));
}

#[test]
fn a_killed_runsv_is_replaced_and_the_others_are_untouched() {
    let tree = Tree::new();
    let a = tree.linked_sleeper("a");
    let b = tree.linked_sleeper("b");
    let mut svdir = tree.svdir();
    let a_pid = running(&a, &mut svdir);
    let b_pid = running(&b, &mut svdir);
    let before = runsv_children(svdir.pid());
    let old = before["a"];
    svdir.also_kill(a_pid);
    signal(old, Signal::SIGKILL);
    // A new runsv, which adopts the service its killed predecessor left running.
    let svdir_pid = svdir.pid();
    assert!(
        replaced(svdir_pid, &a, old),
        "a's runsv never replaced\n{}",
        tree.log()
    );
    let adopted = full_state(&a).unwrap();
    assert_eq!(adopted.state, ServiceState::Running);
    assert_eq!(adopted.pid, a_pid, "the same process goes on: adopted");
    assert_eq!(adopted.restarts, 0);
    assert!(alive(a_pid));
    let after = runsv_children(svdir.pid());
    assert_ne!(after["a"], old);
    assert_eq!(after["b"], before["b"]);
    assert_eq!(full_state(&b).unwrap().pid, b_pid);
    tree.assert_logged("svdir: a: runsv killed by SIGKILL; starting a new one");
}

#[test]
fn a_runsv_killed_again_and_again_never_interrupts_its_service() {
    let tree = Tree::new();
    // Its own command line, to count the copies of the service in /proc.
    let marker = format!("{}", 2_000_000 + std::process::id());
    tree.define("a", &format!("exec: sleep {marker}\nlog: none\n"));
    let a = tree.link("a", "a");
    let mut svdir = tree.svdir();
    let pid = running(&a, &mut svdir);
    let copies = || {
        runsv::proc::pids()
            .into_iter()
            .filter(|p| {
                fs::read(format!("/proc/{p}/cmdline"))
                    .is_ok_and(|c| c == format!("sleep\0{marker}\0").as_bytes())
            })
            .count()
    };
    let svdir_pid = svdir.pid();
    // Five rounds by default: svdir's restart delay grows while runsv keeps dying
    // (0.1 s, doubling), which is the point of it; RUNTREE_KILL_ROUNDS runs more.
    let rounds: u32 = std::env::var("RUNTREE_KILL_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(5);
    for round in 1..=rounds {
        let old = runsv_children(svdir_pid)["a"];
        signal(old, Signal::SIGKILL);
        assert!(
            replaced(svdir_pid, &a, old),
            "round {round}: no new runsv\n{}",
            tree.log()
        );
        let state = full_state(&a).unwrap();
        assert_eq!(
            (state.state, state.pid, state.restarts),
            (ServiceState::Running, pid, 0),
            "round {round}: adopted, not restarted"
        );
        assert_eq!(copies(), 1, "round {round}: one copy");
        assert_eq!(
            runsv_children(svdir_pid).len(),
            1,
            "round {round}: one runsv"
        );
    }
    // Still fully supervised: down stops it.
    control(&a, "d");
    assert!(wait_for(&[], WAIT, || !alive(pid)));
    assert_eq!(copies(), 0);
}

#[test]
fn a_crash_storm_disturbs_nothing_else() {
    let tree = Tree::new();
    // 100 services that exit at once, forever, beside one that runs.
    let crashing: Vec<PathBuf> = (0..100)
        .map(|i| {
            let name = format!("crash-{i:03}");
            tree.define(
                &name,
                "exec: sh -c 'exit 1'\nlog: none\nrestart_delay: 0.2\n",
            );
            tree.link(&name, &name)
        })
        .collect();
    let steady = tree.linked_sleeper("steady");
    let mut svdir = tree.svdir();
    let pid = running(&steady, &mut svdir);
    // Each has crashed and been restarted by the growing delay at least twice.
    for service in &crashing {
        let state = wait_state(service, WAIT, |s| s.restarts >= 2)
            .unwrap_or_else(|| panic!("{}: {:?}", service.display(), full_state(service)));
        assert_eq!(state.last_exit, Some(ExitStatus::Exited(1)));
    }
    assert_eq!(
        full_state(&steady).unwrap().pid,
        pid,
        "the steady one never moved"
    );
    assert!(alive(pid));
    // sv status answers for all of them, with the reason of each crash.
    let mut command = Command::new(binary("sv"));
    command.arg("status").env("SVDIR", tree.scan());
    let (code, out, err) = run(&mut command, WAIT);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 101, "{out}");
    // Each crash is waiting for its restart with the reason, or caught in the moment
    // between a restart and its next exit.
    let crashes: Vec<&&str> = lines.iter().filter(|l| l.contains(" crash-")).collect();
    assert_eq!(crashes.len(), 100, "{out}");
    for line in crashes {
        assert!(
            line.contains("[respawn: exited 1; restarting in")
                || line.contains("[error:")
                || line.ends_with("[running]")
                || line.ends_with("[starting]"),
            "{line}"
        );
    }
    assert!(out.contains("[respawn: exited 1; restarting in"), "{out}");
    assert!(
        lines.iter().any(|l| l.starts_with("run: steady: (pid ")),
        "{out}"
    );
    // Only one runsv per service, however often their services die.
    assert_eq!(runsv_children(svdir.pid()).len(), 101);
}

#[test]
fn a_runsv_that_keeps_dying_is_restarted_with_a_growing_delay() {
    let tree = Tree::new();
    tree.sleeper("good");
    let broken = tree.sleeper("broken");
    // runsv cannot make supervise/ there: it exits 111 at once.
    fs::write(broken.join("supervise"), "").unwrap();
    tree.link("good", "good");
    tree.link("broken", "broken");
    let mut svdir = tree.svdir();
    let good = running(&tree.scan().join("good"), &mut svdir);
    let log = tree.path("svdir.log");
    assert!(
        wait_for(&[&log], WAIT, || tree
            .log()
            .contains("starting a new one in 0.4s")),
        "{}",
        tree.log()
    );
    let text = tree.log();
    let first = text
        .find("broken: runsv exited 111; starting a new one in 0.1s")
        .unwrap();
    let second = text
        .find("broken: runsv exited 111; starting a new one in 0.2s")
        .unwrap();
    assert!(first < second, "{text}");
    assert!(alive(good));
    tree.assert_stops(&mut svdir, Signal::SIGTERM, 0);
}

#[test]
fn a_restarted_svdir_adopts_the_running_runsv() {
    let tree = Tree::new();
    for name in ["a", "b", "c"] {
        tree.sleeper(name);
        tree.link(name, name);
    }
    let mut first = tree.svdir();
    let mut pids = HashMap::new();
    for name in ["a", "b", "c"] {
        pids.insert(name, running(&tree.scan().join(name), &mut first));
    }
    let runsv = runsv_children(first.pid());
    kill(first.pid(), Signal::SIGKILL).unwrap();
    first.child.wait().unwrap();
    let mut second = tree.svdir();
    second
        .extra_groups
        .extend(first.extra_groups.iter().copied());
    sync(&tree.scan());
    tree.assert_logged("3 services, 3 running runsv adopted (");
    // Nothing restarted, nothing doubled.
    for (name, pid) in &pids {
        assert_eq!(
            full_state(&tree.scan().join(name)).unwrap().pid,
            *pid,
            "{name}"
        );
        assert!(alive(*pid));
        assert!(alive(runsv[*name]));
    }
    assert!(runsv_children(second.pid()).is_empty());
    // A removed entry's adopted runsv is told to exit (through supervise/control).
    fs::remove_file(tree.scan().join("a")).unwrap();
    wait_gone(&tree.path("defs/a"), pids["a"]);
    let runsv_a = runsv["a"];
    assert!(wait_for(
        &[&tree.path("defs/a/supervise")],
        WAIT,
        || !alive(runsv_a)
    ));
    // An adopted runsv that dies is replaced by a child of the new svdir, which in
    // turn adopts the service.
    second.also_kill(pids["b"]);
    kill(Pid::from_raw(runsv["b"] as i32), Signal::SIGKILL).unwrap();
    let b = tree.scan().join("b");
    let second_pid = second.pid();
    assert!(
        wait_for(&[&b.join("supervise")], WAIT, || {
            runsv_children(second_pid).contains_key("b") && runsv_alive(&b)
        }),
        "b's runsv not replaced\n{}",
        tree.log()
    );
    let new_b = full_state(&b).unwrap().pid;
    assert_eq!(new_b, pids["b"], "b's service adopted, not restarted");
    assert_eq!(
        runsv_children(second.pid()).keys().collect::<Vec<_>>(),
        ["b"]
    );
    assert!(alive(pids["c"]));
    // The ordered stop reaches the adopted runsv too.
    tree.assert_stops(&mut second, Signal::SIGTERM, 0);
    assert!(!alive(pids["c"]) && !alive(new_b));
    assert!(!runsv_alive(&tree.scan().join("c")));
}

/// A service that writes `date +%s%N` to `stopped` when it gets SIGTERM.
fn marker_service(tree: &Tree, name: &str, after: &[&str]) -> PathBuf {
    let dir = tree.define(
        name,
        &format!("exec: ./run.sh\nlog: none\nafter: [{}]\n", after.join(", ")),
    );
    write_script(
        &dir.join("run.sh"),
        "#!/bin/sh\ntrap 'date +%s%N > stopped; exit 0' TERM\nwhile :; do sleep 1 & wait $!; done\n",
    );
    tree.link(name, name);
    dir
}

#[test]
fn sigterm_stops_dependents_before_their_dependencies() {
    let tree = Tree::new();
    let a = marker_service(&tree, "a", &[]);
    let b = marker_service(&tree, "b", &["a"]);
    let c = marker_service(&tree, "c", &["b"]);
    let d = marker_service(&tree, "d", &[]);
    let mut svdir = tree.svdir();
    for dir in [&a, &b, &c, &d] {
        running(dir, &mut svdir);
    }
    tree.assert_stops(&mut svdir, Signal::SIGTERM, 0);
    let stamp = |dir: &Path| -> u128 {
        fs::read_to_string(dir.join("stopped"))
            .unwrap_or_else(|_| panic!("{} did not see TERM", dir.display()))
            .trim()
            .parse()
            .unwrap()
    };
    let (ta, tb, tc) = (stamp(&a), stamp(&b), stamp(&c));
    assert!(tc < tb && tb < ta, "c {tc} < b {tb} < a {ta}");
    stamp(&d);
    tree.assert_logged("svdir: SIGTERM: stopping 4 services");
    tree.assert_logged("svdir: stopped 4 services cleanly");
    for dir in [&a, &b, &c, &d] {
        assert!(!runsv_alive(dir));
    }
}

#[test]
fn a_dependency_cycle_does_not_hang_the_stop() {
    let tree = Tree::new();
    let a = marker_service(&tree, "a", &["b"]);
    let b = marker_service(&tree, "b", &["a"]);
    let c = marker_service(&tree, "c", &["a"]);
    let mut svdir = tree.svdir();
    sync(&tree.scan());
    svdir.signal(Signal::SIGINT);
    // runsv itself puts the members of a cycle in error (and their dependents): then
    // the stop reports them and exits 1. What matters here is that it ends.
    let code = svdir.exit_code();
    let log = tree.log();
    assert!(
        code == 0 || (code == 1 && log.contains("ended in error: dependency")),
        "{log}"
    );
    tree.assert_logged("dependency cycle among a, b: they stop together");
    for dir in [&a, &b, &c] {
        assert!(!runsv_alive(dir));
    }
}

/// `defs/stubborn`, linked: a service that ignores TERM, stopped at `stop_timeout`.
fn stubborn(tree: &Tree, stop_timeout: &str) -> PathBuf {
    let yaml = format!("exec: ./run.sh\nlog: none\nstop_timeout: {stop_timeout}\n");
    let stubborn = tree.define("stubborn", &yaml);
    write_script(
        &stubborn.join("run.sh"),
        "#!/bin/sh\ntrap '' TERM\nwhile :; do sleep 1; done\n",
    );
    tree.link("stubborn", "stubborn");
    stubborn
}

#[test]
fn a_service_killed_after_its_stop_timeout_makes_the_stop_exit_1() {
    let tree = Tree::new();
    let stubborn = stubborn(&tree, "0.3");
    tree.linked_sleeper("fine");
    let mut svdir = tree.svdir();
    let pid = running(&stubborn, &mut svdir);
    running(&tree.path("defs/fine"), &mut svdir);
    tree.assert_stops(&mut svdir, Signal::SIGHUP, 1);
    assert!(!alive(pid));
    assert_eq!(
        full_state(&stubborn).unwrap().last_exit,
        Some(ExitStatus::Signaled(9))
    );
    let log = tree.log();
    tree.assert_logged("svdir: stubborn: had to be killed");
    assert!(!log.contains("svdir: fine:"), "{log}");
    tree.assert_logged("svdir: stopped 2 services; 1 ended in error or had to be killed");
}

#[test]
fn the_global_deadline_kills_what_is_left() {
    let tree = Tree::new();
    let stubborn = stubborn(&tree, "60");
    let mut svdir = tree.svdir_on(&tree.scan(), &[("RUNTREE_STOP_DEADLINE", "0.5")]);
    let pid = running(&stubborn, &mut svdir);
    let runsv = runsv_of(&stubborn).unwrap();
    let start = Instant::now();
    tree.assert_stops(&mut svdir, Signal::SIGTERM, 1);
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(!alive(pid) && !alive(runsv));
    tree.assert_logged("svdir: stop deadline (0.5s) reached: killing 1 service");
    tree.assert_logged(&format!(
        "svdir: stubborn: killed at the stop deadline (runsv {runsv}, service {pid})"
    ));
}

#[test]
fn bad_entries_do_not_stop_the_others() {
    let tree = Tree::new();
    tree.linked_sleeper("good");
    fs::write(tree.scan().join("file"), "").unwrap();
    symlink("/nonexistent/service", tree.scan().join("dangling")).unwrap();
    let broken = tree.define("broken", "exec: sleep 1000\nno_such_key: 1\n");
    tree.link("broken", "broken");
    let mut svdir = tree.svdir();
    running(&tree.scan().join("good"), &mut svdir);
    let state = runtree::wait_error(&broken, WAIT);
    assert!(state.reason.contains("no_such_key"), "{}", state.reason);
    sync(&tree.scan());
    tree.assert_logged("svdir: file: skipped: not a directory");
    tree.assert_logged("svdir: dangling: skipped: file does not exist");
    // Reported once, not at every scan.
    sync(&tree.scan());
    assert_eq!(tree.log().matches("file: skipped").count(), 1);
    // A broken entry added later changes nothing either.
    fs::create_dir(tree.scan().join("empty")).unwrap();
    sync(&tree.scan());
    assert!(
        svdir.child.try_wait().unwrap().is_none(),
        "svdir still runs"
    );
    // A service in error makes the stop exit 1, naming it.
    tree.assert_stops(&mut svdir, Signal::SIGTERM, 1);
    tree.assert_logged("svdir: broken: ended in error: ");
}

#[test]
fn a_second_svdir_on_the_same_directory_exits_111() {
    let tree = Tree::new();
    let svdir = tree.svdir();
    sync(&tree.scan());
    let (code, _, stderr) = run(Command::new(binary("svdir")).arg(tree.scan()), WAIT);
    assert_eq!(code, 111);
    assert_eq!(
        stderr,
        format!(
            "svdir: fatal: {} is already scanned by another svdir\n",
            tree.scan().display()
        )
    );
    drop(svdir);
    let (code, _, stderr) = run(
        Command::new(binary("svdir")).arg(tree.path("missing")),
        WAIT,
    );
    assert_eq!(code, 111);
    assert!(
        stderr.starts_with("svdir: fatal: unable to scan "),
        "{stderr}"
    );
    let (code, _, _) = run(Command::new(binary("svdir")).arg("--bogus"), WAIT);
    assert_eq!(code, 100);
    let (code, stdout, _) = run(Command::new(binary("svdir")).arg("--help"), WAIT);
    assert_eq!(code, 0);
    assert!(stdout.starts_with("usage: svdir"));
}

/// A regular `.svdir/lock` left by an older svdir is replaced by the FIFO, and the
/// directory stays exclusive across the change.
#[test]
fn an_older_regular_lock_file_is_replaced_and_still_excludes() {
    let tree = Tree::new();
    fs::create_dir(tree.scan().join(SYNC_DIRECTORY)).unwrap();
    let lock = tree.scan().join(".svdir/lock");
    fs::write(&lock, "").unwrap();
    let svdir = tree.svdir();
    sync(&tree.scan());
    use std::os::unix::fs::FileTypeExt;
    assert!(fs::symlink_metadata(&lock).unwrap().file_type().is_fifo());
    let (code, _, stderr) = run(Command::new(binary("svdir")).arg(tree.scan()), WAIT);
    assert_eq!(code, 111, "{stderr}");
    drop(svdir);
}

/// svdir holds nothing open for writing in its scan directory's filesystem: with
/// svdir running, that filesystem can be remounted read-only (as init does with `/`
/// at shutdown). A tmpfs in a private mount namespace stands for `/`.
#[test]
fn a_running_svdir_does_not_keep_its_filesystem_writable() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root for a mount namespace");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("remount.sh");
    write_script(
        &script,
        r#"#!/bin/sh
set -e
mnt=$1; svdir=$2
mount -t tmpfs scratch "$mnt"
mkdir "$mnt/scan"
"$svdir" "$mnt/scan" & pid=$!
i=0
while [ ! -e "$mnt/scan/.svdir/synced" ]; do
    i=$((i+1)); [ $i -lt 500 ] || { echo "svdir never started"; kill $pid; exit 1; }
    sleep 0.01
done
if mount -o remount,ro "$mnt" 2>&1; then echo remounted; else echo "remount failed"; fi
kill $pid; wait $pid || true
"#,
    );
    let mnt = dir.path().join("mnt");
    fs::create_dir(&mnt).unwrap();
    let (code, stdout, stderr) = run(
        Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh"])
            .arg(&script)
            .arg(&mnt)
            .arg(binary("svdir")),
        WAIT,
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(stdout.trim(), "remounted", "{stderr}");
}

#[test]
fn the_sync_fifo_answers_after_applying_the_scan() {
    let tree = Tree::new();
    let mut svdir = tree.svdir();
    sync(&tree.scan());
    let synced = tree.scan().join(".svdir/synced");
    let count = || {
        fs::read_to_string(&synced)
            .unwrap()
            .trim()
            .parse::<u64>()
            .unwrap()
    };
    let before = count();
    tree.linked_sleeper("a");
    sync(&tree.scan());
    assert!(count() > before);
    // The runsv exists once synced says so.
    assert_eq!(runsv_children(svdir.pid()).len(), 1);
    running(&tree.scan().join("a"), &mut svdir);
    // Several requests at once are all counted.
    let mut fifo = OpenOptions::new()
        .write(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(tree.scan().join(".svdir/control"))
        .unwrap();
    let before = count();
    fifo.write_all(b"sss").unwrap();
    assert!(wait_for(&[&synced], WAIT, || count() == before + 3));
    // The count survives a restart of svdir.
    svdir.signal(Signal::SIGTERM);
    assert_eq!(svdir.exit_code(), 0);
    let _again = tree.svdir();
    sync(&tree.scan());
    assert_eq!(count(), before + 4);
}

#[test]
fn an_idle_svdir_makes_no_wake_ups() {
    let tree = Tree::new();
    tree.linked_sleeper("a");
    let mut svdir = tree.svdir();
    running(&tree.scan().join("a"), &mut svdir);
    sync(&tree.scan());
    let switches = || {
        let status = fs::read_to_string(format!("/proc/{}/status", svdir.pid())).unwrap();
        status
            .lines()
            .filter(|l| l.contains("ctxt_switches"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    // Let the start-up settle (runsv writing its files does not concern svdir).
    std::thread::sleep(Duration::from_millis(200));
    let before = switches();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(switches(), before, "svdir woke up while idle");
}

#[test]
fn runsv_gets_a_clean_signal_mask_and_the_scan_directory_as_cwd() {
    let tree = Tree::new();
    let a = tree.linked_sleeper("a");
    // svdir started with a soft limit on open files below the hard one.
    let mut command = Command::new(binary("svdir"));
    command
        .arg(tree.scan())
        .stdin(Stdio::null())
        .stderr(File::create(tree.path("svdir.log")).unwrap());
    // SAFETY: only getrlimit and setrlimit between fork and exec.
    unsafe {
        use std::os::unix::process::CommandExt;
        command.pre_exec(|| {
            let mut limit = nix::libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            nix::libc::getrlimit(nix::libc::RLIMIT_NOFILE, &mut limit);
            limit.rlim_cur = limit.rlim_max.min(256);
            nix::libc::setrlimit(nix::libc::RLIMIT_NOFILE, &limit);
            Ok(())
        });
    }
    let mut svdir = Guard::spawn(&mut command);
    running(&a, &mut svdir);
    let runsv = runsv_children(svdir.pid())["a"];
    let status = fs::read_to_string(format!("/proc/{runsv}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap()
            .trim()
            .to_string()
    };
    // runsv blocks its own four (HUP INT TERM CHLD) and ignores PIPE; nothing else
    // leaks from svdir.
    assert_eq!(field("SigBlk:"), "0000000000014003");
    assert_eq!(field("SigIgn:"), "0000000000001000");
    assert_eq!(
        fs::read_link(format!("/proc/{runsv}/cwd")).unwrap(),
        fs::canonicalize(tree.path("defs/a")).unwrap()
    );
    assert_eq!(runtree::argv(runsv).unwrap(), ["runsv", "a"]);
    // svdir raises its own limit on open files; runsv gets the one svdir was given.
    let open_files = |pid: u32| -> Vec<String> {
        fs::read_to_string(format!("/proc/{pid}/limits"))
            .unwrap()
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .unwrap()
            .split_whitespace()
            .skip(3)
            .take(2)
            .map(str::to_string)
            .collect()
    };
    let svdir_limit = open_files(svdir.pid().as_raw() as u32);
    let runsv_limit = open_files(runsv);
    assert_eq!(runsv_limit[1], svdir_limit[1]);
    assert_eq!(svdir_limit[0], svdir_limit[1], "raised to the hard limit");
    if svdir_limit[1].parse::<u64>().is_ok_and(|hard| hard > 256) {
        assert_eq!(runsv_limit[0], "256");
    }
}

#[test]
fn sv_sync_returns_once_the_scan_is_applied_and_fails_without_svdir() {
    let tree = Tree::new();
    let sv = |args: &[&str]| {
        run(
            Command::new(binary("sv"))
                .args(args)
                .env("SVDIR", tree.scan()),
            WAIT,
        )
    };
    let scan = tree.scan().display().to_string();
    // Nobody scans the directory yet.
    let (code, out, _) = sv(&["sync"]);
    assert_eq!(
        (code, out),
        (
            1,
            format!("fail: {scan}: no svdir runs on this directory\n")
        )
    );
    let mut svdir = tree.svdir();
    sync(&tree.scan());
    // Added, then synced: the runsv exists when sv returns.
    tree.linked_sleeper("a");
    let (code, out, err) = sv(&["-v", "sync"]);
    assert_eq!(
        (code, out.as_str()),
        (0, format!("ok: {scan}: synced\n").as_str()),
        "{err}"
    );
    assert_eq!(runsv_children(svdir.pid()).len(), 1, "{}", tree.log());
    running(&tree.scan().join("a"), &mut svdir);
    // Removed, then synced: its runsv was told to go.
    fs::remove_file(tree.scan().join("a")).unwrap();
    let (code, _, _) = sv(&["sync"]);
    assert_eq!(code, 0);
    tree.assert_logged("svdir: a: removed");
}

/// A process's autogroup, `/proc/PID/autogroup`: its name and nice.
fn autogroup(pid: &str) -> Option<(String, i32)> {
    let text = fs::read_to_string(format!("/proc/{pid}/autogroup")).ok()?;
    let mut words = text.split_whitespace();
    let name = words.next()?.to_string();
    (words.next()? == "nice").then_some(())?;
    Some((name, words.next()?.parse().ok()?))
}

/// With autogroup scheduling each session is one share of the CPU: svdir leading its
/// own session (as init starts it) gives its tree the weight of nice -20, its runsv
/// shares it, the service has a session of normal weight; an svdir in its caller's
/// session leaves that session's weight alone.
#[test]
fn svdir_leading_its_session_weighs_its_tree_above_the_services() {
    let Some(caller) = autogroup("self") else {
        eprintln!("skipped: this kernel has no autogroup scheduling");
        return;
    };
    runtree::skip_unless!(runtree::as_root(
        "raising a weight needs CAP_SYS_NICE (root)"
    ));
    let tree = Tree::new();
    let a = tree.linked_sleeper("a");
    let mut svdir = tree.svdir_in_session();
    let service = running(&a, &mut svdir);
    let runsv = runsv_children(svdir.pid())["a"];
    let svdir_group = autogroup(&svdir.pid().to_string()).unwrap();
    assert_eq!(svdir_group.1, -20, "{svdir_group:?}");
    assert_eq!(autogroup(&runsv.to_string()).unwrap(), svdir_group);
    let service_group = autogroup(&service.to_string()).unwrap();
    assert_ne!(service_group.0, svdir_group.0);
    assert_eq!(service_group.1, 0, "{service_group:?}");
    drop(svdir);
    wait_gone(&a, service);

    let mut svdir = tree.svdir();
    let service = running(&a, &mut svdir);
    assert_eq!(autogroup(&svdir.pid().to_string()).unwrap(), caller);
    assert_eq!(autogroup("self").unwrap(), caller);
    assert_eq!(autogroup(&service.to_string()).unwrap().1, 0);
}
