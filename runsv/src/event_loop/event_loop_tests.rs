//! runsv's loop driven through the `Sys` seam: a clock advanced by hand, processes
//! "started" and signals "sent" into a log (dinit's model: advance_time, look at the
//! last signal sent). The service directory, its definition and `supervise/` are real
//! files in a temp dir; the pids are far above any pid_max, so nothing real is ever
//! signalled, and no test sleeps.

use super::sys::{Gated, Sys};
use super::*;
use crate::machine::{Now, Process, TEST_TIMEOUT};
use nix::poll::PollTimeout;
use nix::sys::signal::SigSet;
use nix::sys::signalfd::SfdFlags;
use nix::unistd::Pid;
use runsv::launch::Launch;
use runsv::supervise::{ExitStatus, FullState, ServiceState, SuperviseDir, Want};
use runsv::tai64n::Timestamp;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Call {
    /// A gated start (run, finish): the program and the pid it got.
    Start(String, Pid),
    /// A start that failed before any process existed.
    StartFailed(String),
    /// An immediate spawn (the readiness test).
    Spawn(String, Pid),
    Kill(Pid, Signal),
    Killpg(Pid, Signal),
}

struct State {
    now: Duration,
    calls: Vec<Call>,
    next_pid: i32,
    /// Children that have ended, for the next reap.
    ended: VecDeque<(Pid, ExitStatus)>,
    /// The next gated start fails with this reason, before a fork.
    start_fails: Option<String>,
    /// The next gated start forks, then its exec fails with this reason.
    exec_fails: Option<String>,
}

#[derive(Clone)]
struct Fake(Rc<RefCell<State>>);

impl Fake {
    fn new() -> Fake {
        Fake(Rc::new(RefCell::new(State {
            now: Duration::from_secs(1000),
            calls: Vec::new(),
            next_pid: 1_000_000_000,
            ended: VecDeque::new(),
            start_fails: None,
            exec_fails: None,
        })))
    }

    fn advance(&self, by: Duration) {
        self.0.borrow_mut().now += by;
    }

    fn advance_ms(&self, ms: u64) {
        self.advance(Duration::from_millis(ms));
    }

    /// The calls made since the last look.
    fn take(&self) -> Vec<Call> {
        std::mem::take(&mut self.0.borrow_mut().calls)
    }

    /// `pid` ends with `status`: the loop sees it at its next reap.
    fn end(&self, pid: Pid, status: ExitStatus) {
        self.0.borrow_mut().ended.push_back((pid, status));
    }

    fn fresh_pid(&self) -> Pid {
        let mut state = self.0.borrow_mut();
        state.next_pid += 1;
        Pid::from_raw(state.next_pid)
    }

    fn record(&self, call: Call) {
        self.0.borrow_mut().calls.push(call);
    }
}

struct FakeGate {
    pid: Pid,
    confirm: Result<(), String>,
}

impl Gated for FakeGate {
    fn pid(&self) -> Pid {
        self.pid
    }
    fn release(&mut self) {}
    fn confirm(self: Box<Self>) -> Result<(), String> {
        self.confirm
    }
}

impl Sys for Fake {
    fn now(&self) -> Now {
        let monotonic = self.0.borrow().now;
        Now {
            monotonic,
            wall: Timestamp {
                seconds: 1_700_000_000 + monotonic.as_secs(),
                nanoseconds: monotonic.subsec_nanos(),
            },
        }
    }
    fn kill(&mut self, pid: Pid, signal: Signal) -> nix::Result<()> {
        self.record(Call::Kill(pid, signal));
        Ok(())
    }
    fn killpg(&mut self, group: Pid, signal: Signal) -> nix::Result<()> {
        self.record(Call::Killpg(group, signal));
        Ok(())
    }
    fn start(&mut self, launch: &Launch) -> Result<Box<dyn Gated>, String> {
        let name = launch.name().to_string();
        let fails = self.0.borrow_mut().start_fails.take();
        if let Some(reason) = fails {
            self.record(Call::StartFailed(name));
            return Err(reason);
        }
        let pid = self.fresh_pid();
        self.record(Call::Start(name, pid));
        let exec_fails = self.0.borrow_mut().exec_fails.take();
        let confirm = match exec_fails {
            Some(reason) => Err(reason),
            None => Ok(()),
        };
        Ok(Box::new(FakeGate { pid, confirm }))
    }
    fn spawn(&mut self, launch: &Launch) -> Result<Pid, String> {
        let pid = self.fresh_pid();
        self.record(Call::Spawn(launch.name().to_string(), pid));
        Ok(pid)
    }
    fn reap(&mut self) -> Option<(Pid, ExitStatus)> {
        self.0.borrow_mut().ended.pop_front()
    }
    fn wait_child(&mut self, _: Pid, _: Duration) -> Option<ExitStatus> {
        Some(ExitStatus::Exited(0))
    }
}

/// A runsv of a service directory holding `files` (`service.yaml`, `down`), started on
/// the fake's clock.
fn supervised(files: &[(&str, &str)], fake: &Fake) -> (tempfile::TempDir, Supervisor) {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let signals = SignalFd::with_flags(&SigSet::empty(), SfdFlags::SFD_CLOEXEC).unwrap();
    let sys = Box::new(fake.clone());
    let mut supervisor = Supervisor::open(dir.path(), dir.path(), signals, sys).unwrap();
    supervisor.start();
    (dir, supervisor)
}

/// `exec` with `log: none` (no relay, no keeper) and the other keys given.
fn yaml(keys: &str) -> String {
    format!("exec: /bin/sleep 1000\nlog: none\n{keys}")
}

/// A runsv on a fresh fake of a service `exec`ing sleep, with these other keys.
fn service(keys: &str) -> (Fake, tempfile::TempDir, Supervisor) {
    let fake = Fake::new();
    let (dir, supervisor) = supervised(&[("service.yaml", &yaml(keys))], &fake);
    (fake, dir, supervisor)
}

/// What runsv last wrote to supervise/state.
fn written(dir: &tempfile::TempDir) -> FullState {
    FullState::read(&SuperviseDir::of_service(dir.path()))
        .unwrap()
        .expect("a state file")
}

fn run_pid(supervisor: &Supervisor) -> Pid {
    let pid = supervisor.main.machine.pid_of(Process::Run).expect("run");
    Pid::from_raw(pid as i32)
}

fn millis(ms: i32) -> PollTimeout {
    PollTimeout::try_from(ms).unwrap()
}

#[test]
fn a_fast_death_restarts_once_its_growing_delay_is_over() {
    let (fake, dir, mut runsv) = service("restart_delay: 0.5\n");
    let first = run_pid(&runsv);
    assert_eq!(fake.take(), [Call::Start("/bin/sleep".into(), first)]);
    assert_eq!(written(&dir).state, ServiceState::Running);
    assert_eq!(
        runsv.poll_timeout(),
        PollTimeout::NONE,
        "running waits for ever"
    );

    fake.advance_ms(100);
    fake.end(first, ExitStatus::Exited(1));
    runsv.reap();
    assert_eq!(fake.take(), []);
    let state = written(&dir);
    assert_eq!(state.state, ServiceState::Respawn);
    assert_eq!(state.reason, "exited 1; restarting in 0.5s");
    assert_eq!(runsv.poll_timeout(), millis(500));

    fake.advance_ms(499);
    runsv.handle_timers();
    assert_eq!(fake.take(), [], "not a millisecond early");
    assert_eq!(runsv.poll_timeout(), millis(1));
    fake.advance_ms(1);
    runsv.handle_timers();
    let second = run_pid(&runsv);
    assert_eq!(fake.take(), [Call::Start("/bin/sleep".into(), second)]);
    assert_eq!(written(&dir).restarts, 1);

    // Dead fast again: twice the delay.
    fake.advance_ms(100);
    fake.end(second, ExitStatus::Signaled(11));
    runsv.reap();
    assert_eq!(written(&dir).reason, "killed by SIGSEGV; restarting in 1s");
    assert_eq!(runsv.poll_timeout(), millis(1000));
}

#[test]
fn a_stop_sends_the_stop_signal_then_sigkill_at_its_deadline() {
    let (fake, dir, mut runsv) = service("stop_signal: INT\nstop_timeout: 2\n");
    let pid = run_pid(&runsv);
    fake.take();

    runsv.controls(Which::Main, b"d");
    assert_eq!(
        fake.take(),
        [
            Call::Killpg(pid, Signal::SIGINT),
            Call::Killpg(pid, Signal::SIGCONT)
        ]
    );
    assert_eq!(written(&dir).state, ServiceState::Stopping);
    assert_eq!(runsv.poll_timeout(), millis(2000));

    fake.advance_ms(1999);
    runsv.handle_timers();
    assert_eq!(fake.take(), []);
    fake.advance_ms(1);
    runsv.handle_timers();
    assert_eq!(fake.take(), [Call::Killpg(pid, Signal::SIGKILL)]);
    assert_eq!(written(&dir).reason, "did not stop within 2s; sent SIGKILL");
    assert_eq!(
        runsv.poll_timeout(),
        PollTimeout::NONE,
        "nothing left to time"
    );

    fake.end(pid, ExitStatus::Signaled(9));
    runsv.reap();
    let state = written(&dir);
    assert_eq!((state.state, state.want), (ServiceState::Down, Want::Down));
    assert_eq!(fake.take(), [], "down stays down");
    assert_eq!(runsv.poll_timeout(), PollTimeout::NONE);
}

#[test]
fn an_idle_runsv_never_wakes_and_a_deadline_is_never_early() {
    let fake = Fake::new();
    let files = [
        ("service.yaml", yaml("restart_delay: 0.01\n")),
        ("down", String::new()),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(n, t)| (*n, t.as_str())).collect();
    let (dir, mut runsv) = supervised(&files, &fake);
    assert_eq!(fake.take(), [], "normally down");
    assert_eq!(written(&dir).state, ServiceState::Down);
    assert_eq!(runsv.poll_timeout(), PollTimeout::NONE);
    fake.advance(Duration::from_secs(3600));
    runsv.handle_timers();
    assert_eq!(fake.take(), []);

    runsv.controls(Which::Main, b"u");
    let pid = run_pid(&runsv);
    assert_eq!(fake.take(), [Call::Start("/bin/sleep".into(), pid)]);
    fake.end(pid, ExitStatus::Exited(1));
    runsv.reap();
    // 10 ms from now; a wait of 9.6 ms is rounded up, never down to an early wake.
    fake.advance(Duration::from_micros(400));
    assert_eq!(runsv.poll_timeout(), millis(10));
    fake.advance(Duration::from_micros(9_599));
    assert_eq!(runsv.poll_timeout(), millis(1));
    runsv.handle_timers();
    assert_eq!(fake.take(), []);
    fake.advance(Duration::from_micros(1));
    runsv.handle_timers();
    assert_eq!(
        fake.take(),
        [Call::Start("/bin/sleep".into(), run_pid(&runsv))]
    );
}

#[test]
fn a_readiness_test_is_retried_after_its_interval_and_killed_when_it_hangs() {
    let (fake, dir, mut runsv) = service("test: /bin/true probe\ntest_interval: 0.5\n");
    let run = run_pid(&runsv);
    let calls = fake.take();
    let Some(Call::Spawn(_, test)) = calls.get(1).cloned() else {
        panic!("no test spawned: {calls:?}");
    };
    assert_eq!(
        calls,
        [
            Call::Start("/bin/sleep".into(), run),
            Call::Spawn("/bin/true".into(), test)
        ]
    );
    assert_eq!(written(&dir).state, ServiceState::Starting);
    assert_eq!(
        runsv.poll_timeout(),
        millis(TEST_TIMEOUT.as_millis() as i32)
    );

    fake.advance_ms(30);
    fake.end(test, ExitStatus::Exited(1));
    runsv.reap();
    assert_eq!(written(&dir).reason, "readiness test exited 1");
    assert_eq!(runsv.poll_timeout(), millis(500));
    fake.advance_ms(500);
    runsv.handle_timers();
    let calls = fake.take();
    let [Call::Spawn(_, hung)] = calls.as_slice() else {
        panic!("no second test: {calls:?}");
    };
    let hung = *hung;

    fake.advance(TEST_TIMEOUT);
    runsv.handle_timers();
    assert_eq!(fake.take(), [Call::Killpg(hung, Signal::SIGKILL)]);
    fake.end(hung, ExitStatus::Signaled(9));
    runsv.reap();
    assert_eq!(written(&dir).reason, "readiness test killed by SIGKILL");
    fake.advance_ms(500);
    runsv.handle_timers();
    let calls = fake.take();
    let [Call::Spawn(_, third)] = calls.as_slice() else {
        panic!("no third test: {calls:?}");
    };
    fake.end(*third, ExitStatus::Exited(0));
    runsv.reap();
    assert_eq!(written(&dir).state, ServiceState::Running);
    assert_eq!(runsv.poll_timeout(), PollTimeout::NONE);
}

#[test]
fn a_run_that_cannot_start_is_retried_after_the_delay() {
    let fake = Fake::new();
    fake.0.borrow_mut().start_fails = Some("unable to start /bin/sleep: fork".into());
    let (dir, mut runsv) = supervised(&[("service.yaml", &yaml("restart_delay: 2\n"))], &fake);
    assert_eq!(fake.take(), [Call::StartFailed("/bin/sleep".into())]);
    let state = written(&dir);
    assert_eq!(state.state, ServiceState::Error);
    assert_eq!(
        state.reason,
        "unable to start /bin/sleep: fork; retrying in 2s"
    );
    assert_eq!(runsv.poll_timeout(), millis(2000));

    // Forked, but exec failed: the same, with the delay doubled.
    fake.0.borrow_mut().exec_fails = Some("unable to start /bin/sleep: EACCES".into());
    fake.advance_ms(2000);
    runsv.handle_timers();
    let calls = fake.take();
    assert!(matches!(calls.as_slice(), [Call::Start(_, _)]), "{calls:?}");
    let state = written(&dir);
    assert_eq!(state.state, ServiceState::Error);
    assert_eq!(
        state.reason,
        "unable to start /bin/sleep: EACCES; retrying in 4s"
    );
    assert_eq!(state.pid, 0, "the process that never ran is not shown");
    assert_eq!(runsv.poll_timeout(), millis(4000));

    fake.advance_ms(4000);
    runsv.handle_timers();
    assert_eq!(
        fake.take(),
        [Call::Start("/bin/sleep".into(), run_pid(&runsv))]
    );
    assert_eq!(written(&dir).state, ServiceState::Running);
}

#[test]
fn control_bytes_are_decoded_once_and_unknown_ones_ignored() {
    let (fake, dir, mut runsv) = service("");
    let pid = run_pid(&runsv);
    fake.take();
    let before = written(&dir);
    runsv.controls(Which::Main, b"z?\n\0");
    assert_eq!(fake.take(), []);
    assert_eq!(written(&dir), before, "unknown bytes change nothing");

    // One read: a signal, then exit.
    runsv.controls(Which::Main, b"hx");
    assert_eq!(
        fake.take(),
        [
            Call::Kill(pid, Signal::SIGHUP),
            Call::Killpg(pid, Signal::SIGTERM),
            Call::Killpg(pid, Signal::SIGCONT)
        ]
    );
    assert_eq!(written(&dir).want, Want::Exit);
    assert!(!runsv.done());
    fake.end(pid, ExitStatus::Signaled(15));
    runsv.reap();
    assert!(runsv.done(), "down and told to exit: runsv ends");
    // After `x`, nothing brings it back.
    runsv.controls(Which::Main, b"u");
    assert_eq!(fake.take(), []);
    assert_eq!(written(&dir).state, ServiceState::Down);
}
