//! "Exactly one copy, whatever is killed when": runsv (or its keeper) SIGKILLed in each
//! window where it is responsible for a process, and the next runsv must find that
//! process and adopt it or stop it before starting another. The windows are hit
//! exactly by stopping runsv with ptrace at the system call that opens them, and at
//! random by a storm of kills. Every wait is bounded and event-driven; every process
//! started is owned by a Guard, and every copy of a service is found by a command line
//! unique to the test and killed by its pid.

use nix::libc;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use runsv::control::{send_control, Control};
use runsv::supervise::SuperviseDir;
use runtree::service::{processes_running, relayed_service, runsv_kmsg, script_service};
use runtree::service::{signal, wait_text};
use runtree::svdir_tree::{runsv_children, svdir_writing_to};
use runtree::yaml_service;
use runtree::{alive, binary, full_state, run, wait_for, wait_state, write_script, Guard};
use runtree::{control, supervised, supervisor_up, ServiceState, Status, WAIT};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn runsv_command(service: &Path) -> Command {
    let mut command = Command::new(binary("runsv"));
    command
        .arg(service)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    command
}

fn runsv(service: &Path) -> Guard {
    supervised(&mut runsv_command(service), service)
}

/// A command line no other test (or run) uses: `sleep <this>`.
fn marker(test: u32, index: u32) -> String {
    format!("{}{test:02}{index:04}", 1_000 + std::process::id())
}

fn copies(marker: &str) -> Vec<u32> {
    processes_running(&["sleep", marker])
}

/// Kills every copy of `sleep marker` (processes this test started), however many.
fn kill_copies(marker: &str) {
    for pid in copies(marker) {
        let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
    }
}

/// Waits until the service runs one process, named by its state, and no other copy
/// exists; the copies seen if that never happens.
fn one_copy(service: &Path, marker: &str) -> Result<u32, String> {
    let mut seen = (None, Vec::new());
    let settled = wait_for(&[&service.join("supervise")], WAIT, || {
        seen = (full_state(service), copies(marker));
        matches!(&seen, (Some(s), c) if s.state == ServiceState::Running && c == &[s.pid])
    });
    match (settled, seen) {
        (true, (Some(state), _)) => Ok(state.pid),
        (_, (state, copies)) => Err(format!("copies {copies:?}, state {state:?}")),
    }
}

use runtree::trace;

/// What `trace::until_started` follows: the leader's vfork and its fork of the process.
const TRACE_STARTS: libc::c_int =
    libc::PTRACE_O_TRACEFORK | libc::PTRACE_O_TRACEVFORK | libc::PTRACE_O_TRACEVFORKDONE;

/// A service that starts only on `u` (so that ptrace is in place before runsv starts
/// it), and its runsv, seized.
fn traced_start(root: &Path, name: &str, marker: &str) -> (PathBuf, Guard) {
    let service = yaml_service(root, name, &format!("exec: sleep {marker}\nlog: none\n"));
    fs::write(service.join("down"), "").unwrap();
    let guard = runsv(&service);
    trace::seize(guard.pid(), TRACE_STARTS | libc::PTRACE_O_TRACESYSGOOD);
    control(&service, "u");
    (service, guard)
}

/// After the kill: the killed runsv's child either exits or (the bug) execs.
fn child_settled(child: Pid, marker: &str) -> bool {
    let sleeping = || {
        fs::read(format!("/proc/{child}/cmdline"))
            .is_ok_and(|c| c == format!("sleep\0{marker}\0").as_bytes())
    };
    wait_for(&[], WAIT, || !alive(child.as_raw() as u32) || sleeping())
}

/// The next runsv (wanted up now), and the one copy it runs.
fn next_runsv_runs_one_copy(service: &Path, marker: &str) -> Guard {
    fs::remove_file(service.join("down")).unwrap();
    let mut next = runsv(service);
    let result = one_copy(service, marker);
    kill_copies_unless(&result, marker);
    let pid = result.unwrap_or_else(|e| panic!("{}: not one copy: {e}", service.display()));
    next.also_kill(pid);
    next
}

fn kill_copies_unless(result: &Result<u32, String>, marker: &str) {
    if result.is_err() {
        kill_copies(marker);
    }
}

#[test]
fn runsv_killed_between_fork_and_publishing_the_pid_leaves_no_copy() {
    let root = tempfile::tempdir().unwrap();
    let marker = marker(1, 0);
    let (service, mut first) = traced_start(root.path(), "a", &marker);
    let child = trace::until_started(first.pid());
    // runsv stands right after the start: nothing of the child is published yet.
    kill(first.pid(), Signal::SIGKILL).unwrap();
    first.wait_exit(WAIT).expect("runsv reaped");
    assert!(
        child_settled(child, &marker),
        "the child neither exited nor ran"
    );
    let _next = next_runsv_runs_one_copy(&service, &marker);
}

#[test]
fn runsv_killed_as_it_starts_finish_leaves_no_finish_unrecorded() {
    let root = tempfile::tempdir().unwrap();
    let marker = marker(5, 0);
    // run ends at once; finish runs long (until its stop timeout).
    let service = root.path().join("a");
    write_script(&service.join("run"), "#!/bin/sh\nexit 0\n");
    write_script(
        &service.join("finish"),
        &format!("#!/bin/sh\nexec sleep {marker}\n"),
    );
    fs::write(service.join("down"), "").unwrap();
    let mut first = runsv(&service);
    let supervisor = first.pid();
    trace::seize(supervisor, TRACE_STARTS);
    control(&service, "u");
    trace::until_started(supervisor);
    trace::resume(supervisor, false, 0);
    // The next process is finish, started once run has ended.
    let finish = trace::until_started(supervisor);
    kill(supervisor, Signal::SIGKILL).unwrap();
    first.wait_exit(WAIT).expect("runsv reaped");
    assert!(child_settled(finish, &marker));
    // The next runsv runs run, then its own finish: the only one.
    fs::remove_file(service.join("down")).unwrap();
    let mut next = runsv(&service);
    let state = wait_state(&service, WAIT, |s| {
        s.state == ServiceState::Finishing && s.pid != 0
    });
    let copies = copies(&marker);
    kill_copies(&marker);
    let state = state.expect("finishing");
    next.also_kill(state.pid);
    assert_eq!(copies, [state.pid], "one finish, the recorded one");
}

#[cfg(target_arch = "x86_64")]
#[test]
fn runsv_killed_after_publishing_the_pid_before_the_go_byte_leaves_no_copy() {
    let root = tempfile::tempdir().unwrap();
    let marker = marker(2, 0);
    let (service, mut first) = traced_start(root.path(), "a", &marker);
    let runsv = first.pid();
    let child = trace::until_started(runsv);
    // If runsv never stops where this test expects, the watchdog ends the wait.
    let (done, watchdog) = std::sync::mpsc::channel::<()>();
    let dog = std::thread::spawn(move || {
        if watchdog.recv_timeout(WAIT).is_err() {
            let _ = kill(runsv, Signal::SIGKILL);
        }
    });
    // On to the go byte: a one-byte write to the pipe runsv shares with the child.
    let mut entering = true;
    let mut at_go_byte = false;
    let mut reaped = false;
    trace::resume(runsv, true, 0);
    loop {
        let status = trace::wait(runsv);
        if !libc::WIFSTOPPED(status) {
            reaped = true;
            break;
        }
        let signal = libc::WSTOPSIG(status);
        if signal == libc::SIGTRAP | 0x80 {
            if entering {
                let (number, fd, length) = trace::syscall(runsv);
                if number == libc::SYS_write
                    && length == 1
                    && trace::pipe_shared_with(runsv, fd, child)
                {
                    at_go_byte = true;
                    break;
                }
            }
            entering = !entering;
            trace::resume(runsv, true, 0);
        } else {
            trace::resume(runsv, true, signal);
        }
    }
    let _ = done.send(());
    dog.join().unwrap();
    let published = full_state(&service);
    if reaped {
        // (By the waitpid above: its Guard has nothing left to kill or reap.)
        std::mem::forget(first);
    } else {
        first.kill();
    }
    if !at_go_byte {
        kill_copies(&marker);
        panic!("runsv released its child without a go byte");
    }
    // What runsv wrote before it let the child go names the child.
    let published = published.expect("a state");
    assert_eq!(
        (published.pid, published.state),
        (child.as_raw() as u32, ServiceState::Starting)
    );
    assert!(published.starttime != 0);
    assert!(child_settled(child, &marker));
    let _next = next_runsv_runs_one_copy(&service, &marker);
}

#[test]
fn runsv_killed_while_it_stops_a_leftover_hands_the_leftover_on() {
    let root = tempfile::tempdir().unwrap();
    let marker = marker(3, 0);
    // Never ready (so a new runsv stops it rather than adopting it), and slow to
    // stop: it notes each TERM and lives on until SIGKILL, stop_timeout later.
    let service = script_service(
        root.path(),
        "a",
        "test: \"false\"\ntest_interval: 0.05\nstop_timeout: 2\nlog: none\n",
        &format!("#!/bin/sh\ntrap 'echo term >> terms' TERM\nwhile :; do sleep {marker} & wait $!; done\n"),
    );
    let terms = service.join("terms");
    let shells = || processes_running(&["/bin/sh", "./script"]);
    let cleanup = |guard: &mut Guard, pid: u32| guard.also_kill(pid);
    let mut first = runsv(&service);
    let leftover = wait_state(&service, WAIT, |s| {
        s.state == ServiceState::Starting && s.pid != 0
    })
    .expect("starting")
    .pid;
    cleanup(&mut first, leftover);
    // Its trap is set once it has started its sleep.
    assert!(wait_for(&[], WAIT, || copies(&marker).len() == 1));
    first.kill();
    // The second runsv stops the leftover; it is killed while it waits for it.
    let mut second = runsv(&service);
    cleanup(&mut second, leftover);
    assert!(
        wait_for(&[&service], WAIT, || fs::read_to_string(&terms)
            .is_ok_and(|t| t.lines().count() == 1)),
        "the leftover never got TERM"
    );
    second.kill();
    assert!(alive(leftover));
    // The third must know it: a new copy only once the leftover is gone.
    let mut third = runsv(&service);
    cleanup(&mut third, leftover);
    let new = wait_state(&service, WAIT, |s| s.pid != 0 && s.pid != leftover)
        .expect("a new copy")
        .pid;
    cleanup(&mut third, new);
    let leftover_alive = alive(leftover);
    let running: Vec<u32> = shells();
    kill_copies(&marker);
    assert!(
        !leftover_alive,
        "a new copy ({new}) started beside the leftover ({leftover}): {running:?}"
    );
    assert_eq!(
        fs::read_to_string(&terms).unwrap().lines().count(),
        2,
        "the third runsv stopped it as well"
    );
}

/// The keeper's pid, from supervise/keeper, if that process lives.
fn keeper(service: &Path) -> Option<u32> {
    let text = fs::read_to_string(service.join("supervise/keeper")).ok()?;
    let mut fields = text.split_whitespace();
    let pid: u32 = fields.next()?.parse().ok()?;
    let starttime: u64 = fields.next()?.parse().ok()?;
    (runsv::proc::start_time(pid) == Some(starttime) && alive(pid)).then_some(pid)
}

#[test]
fn a_killed_keeper_is_replaced_so_the_next_runsv_kill_still_adopts() {
    let root = tempfile::tempdir().unwrap();
    // Relayed output (to a stand-in for /dev/kmsg): a numbered line on each SIGHUP.
    let (service, kmsg) = relayed_service(
        root.path(),
        "relayed",
        "#!/bin/sh\nn=0\ntrap 'n=$((n+1)); echo line-$n; echo $n > said' HUP\necho 0 > said\nwhile :; do sleep 1 & wait $!; done\n",
    );
    let start = || runsv_kmsg(&service, &kmsg);
    let said = |n: &str| {
        wait_for(&[&service], WAIT, || {
            fs::read_to_string(service.join("said")).is_ok_and(|t| t.trim() == n)
        })
    };
    let mut first = start();
    let pid = runtree::wait_running(&service, WAIT);
    first.also_kill(pid);
    let hup = || signal(pid, Signal::SIGHUP);
    assert!(said("0"), "its trap is set");
    hup();
    assert!(said("1"));
    let old_keeper = keeper(&service).expect("a keeper");
    signal(old_keeper, Signal::SIGKILL);
    let replaced = wait_for(&[&service.join("supervise")], WAIT, || {
        keeper(&service).is_some_and(|k| k != old_keeper)
    });
    // Then runsv is killed, and the service writes while no runsv runs.
    first.kill();
    hup();
    let wrote = said("2");
    let mut second = start();
    second.also_kill(pid);
    let state = runtree::wait_running(&service, WAIT);
    second.also_kill(state);
    assert!(wrote && alive(pid), "the service died writing (SIGPIPE)");
    assert_eq!(state, pid, "adopted, not restarted");
    assert!(replaced, "the killed keeper was never replaced");
    // The line written meanwhile arrives.
    wait_text(root.path(), &kmsg, |text| text.contains("line-2"));
}

#[test]
fn a_restart_delay_below_the_floor_does_not_make_a_hot_loop() {
    let root = tempfile::tempdir().unwrap();
    let service = yaml_service(
        root.path(),
        "crash",
        "exec: /bin/false\nrestart_delay: 0.000000001\nrestart_delay_max: 0.000000001\nlog: none\n",
    );
    let _runsv = runsv(&service);
    let restarts = || full_state(&service).map_or(0, |s| s.restarts);
    assert!(wait_for(&[&service.join("supervise")], WAIT, || restarts() >= 3));
    // A measurement window, not a wait for an event: 10 ms apart at least, so at
    // most ~100 restarts in a second (hundreds more without the floor).
    let (before, start) = (restarts(), Instant::now());
    std::thread::sleep(Duration::from_secs(1));
    let per_second = f64::from(restarts() - before) / start.elapsed().as_secs_f64();
    assert!(per_second <= 105.0, "{per_second:.0} restarts per second");
    let state = full_state(&service).unwrap();
    assert!(
        state.reason.contains("restarting in 0.01s") || state.state != ServiceState::Respawn,
        "{state:?}"
    );
}

/// Deterministic pseudo-random numbers (no crate for this).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % bound
    }
}

#[test]
fn a_storm_of_term_then_kill_leaves_one_copy_per_service() {
    // RUNTREE_STORM_FULL=1: the 500 kills over 200 services.
    let full = std::env::var_os("RUNTREE_STORM_FULL").is_some_and(|v| v == "1");
    let (services, kills) = if full { (200, 500) } else { (40, 100) };
    let root = tempfile::tempdir().unwrap();
    let scan = root.path().join("scan");
    let markers: Vec<String> = (0..services).map(|i| marker(4, i)).collect();
    // A service that exits on TERM (sleep does), its output relayed (a keeper too).
    let names: Vec<String> = (0..services).map(|i| format!("s{i:03}")).collect();
    let dirs: Vec<PathBuf> = names
        .iter()
        .zip(&markers)
        .map(|(name, m)| {
            let yaml = format!("exec: sleep {m}\nlog: console\nrestart_delay: 0.01\n");
            yaml_service(&scan, name, &yaml)
        })
        .collect();
    let log = root.path().join("svdir.log");
    let mut svdir = Guard::spawn(&mut svdir_writing_to(&scan, &log));
    for dir in &dirs {
        let pid = runtree::wait_running(dir, WAIT);
        svdir.also_kill(pid);
    }
    let mut random = Lcg(u64::from(std::process::id()));
    let mut killed: Vec<Option<u32>> = vec![None; services as usize];
    let started = Instant::now();
    for k in 0..kills {
        let i = k % services as usize;
        // Its runsv, restarted by svdir since the last kill.
        let mut runsv = None;
        let up = wait_for(&[&dirs[i].join("supervise")], WAIT, || {
            runsv = runsv_children(svdir.pid()).get(&names[i]).copied();
            runsv.is_some() && runsv != killed[i] && supervisor_up(&dirs[i])
        });
        let Some(runsv) = runsv.filter(|_| up) else {
            panic!("{}: no runsv after {:?}", names[i], killed[i]);
        };
        let _ = send_control(&SuperviseDir::of_service(&dirs[i]), &[Control::Term]);
        // The kill lands 0–4 ms after the TERM: the delay is the experiment.
        std::thread::sleep(Duration::from_micros(random.next(4_001)));
        let _ = kill(Pid::from_raw(runsv as i32), Signal::SIGKILL);
        killed[i] = Some(runsv);
    }
    eprintln!("{kills} kills in {:?}", started.elapsed());
    // Settled: each service runs one process, which its state names.
    let check = |i: usize| {
        let (state, copies) = (full_state(&dirs[i]), copies(&markers[i]));
        match state {
            Some(s) if s.state == ServiceState::Running && copies == [s.pid] => Ok(s.pid),
            state => Err(format!("copies {copies:?}, state {state:?}")),
        }
    };
    wait_for(&[&scan], WAIT, || (0..dirs.len()).all(|i| check(i).is_ok()));
    let mut duplicated = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        match check(i) {
            Ok(pid) => {
                svdir.also_kill(pid);
                // sv status names it.
                let mut command = Command::new(binary("sv"));
                command.arg("status").arg(dir);
                let (_, out, _) = run(&mut command, WAIT);
                assert!(out.contains(&format!("(pid {pid})")), "{out}");
                let status = Status::read(&SuperviseDir::of_service(dir)).unwrap();
                assert_eq!(status.pid, pid);
            }
            Err(copies) => duplicated.push(format!("{}: {copies}", names[i])),
        }
    }
    for marker in &markers {
        // Whatever is not the one supervised copy (nothing, unless the test failed).
        if copies(marker).len() > 1 {
            kill_copies(marker);
        }
    }
    eprintln!(
        "storm: {} of {services} services ended with other than one copy",
        duplicated.len()
    );
    assert!(duplicated.is_empty(), "{duplicated:#?}");
}

/// The part of `a_keeper_that_died_is_never_signalled_again` that runs inside a PID
/// namespace of its own (PID 1 there is this test binary), where the test can give
/// a process the pid of a dead keeper (ns_last_pid) without racing the machine.
#[test]
fn in_pid_namespace_keeper_pid_reuse() {
    if std::env::var_os("RUNTREE_IN_PID_NS").is_none() {
        return; // run by the test below, inside its namespace
    }
    let root = tempfile::tempdir().unwrap();
    let service = yaml_service(root.path(), "a", "exec: sleep 1000\nlog: console\n");
    let mut supervisor = runsv(&service);
    let pid = runtree::wait_running(&service, WAIT);
    supervisor.also_kill(pid);
    let dead = keeper(&service).expect("a keeper");
    signal(dead, Signal::SIGKILL);
    // Reaped by runsv (its child); a replacement, if any, is started at once.
    assert!(wait_for(&[], WAIT, || !Path::new(&format!("/proc/{dead}")).exists()));
    wait_for(
        &[&service.join("supervise")],
        Duration::from_secs(2),
        || keeper(&service).is_some_and(|k| k != dead),
    );
    fs::write("/proc/sys/kernel/ns_last_pid", format!("{}", dead - 1)).unwrap();
    let mut victim = Guard::spawn(Command::new("sleep").arg("1000"));
    assert_eq!(victim.pid().as_raw() as u32, dead, "the victim got the pid");
    // runsv exits: it ends its keeper.
    control(&service, "x");
    if supervisor.wait_exit(WAIT).is_none() {
        panic!("runsv did not exit: {:?}", full_state(&service));
    }
    assert!(
        victim.child.try_wait().unwrap().is_none(),
        "runsv killed the process that reused its dead keeper's pid"
    );
}

#[test]
fn a_keeper_that_died_is_never_signalled_again() {
    runtree::skip_unless!(runtree::ns::root());
    let exe = std::env::current_exe().unwrap();
    let mut command = Command::new("unshare");
    command
        .args(["--pid", "--fork", "--mount-proc", "--"])
        .arg(exe)
        .args([
            "--exact",
            "in_pid_namespace_keeper_pid_reuse",
            "--nocapture",
        ])
        .env("RUNTREE_IN_PID_NS", "1")
        .env("RUNTREE_BIN_DIR", runtree::binary_dir());
    let (code, out, err) = run(&mut command, Duration::from_secs(60));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("1 passed"), "{out}\n{err}");
}
