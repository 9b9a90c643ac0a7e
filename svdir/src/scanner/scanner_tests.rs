//! svdir's own code driven through the `Sys` seam: a clock advanced by hand, runsvs
//! "started" and signals "sent" into a log (dinit's model: advance_time, look at the
//! last signal sent). The scan directory and the definitions are real files in a temp
//! dir; the pids are far above any pid_max, so nothing real is ever found or signalled.

use super::sys::Sys;
use super::*;
use nix::sys::signalfd::SigSet;
use runsv::supervise::ExitStatus;
use std::cell::{Cell, RefCell};
use std::ffi::OsStr;
use std::rc::Rc;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Call {
    Spawn(OsString, Pid),
    Kill(Pid, Signal),
    Killpg(Pid, Signal),
}

#[derive(Clone)]
struct Fake {
    now: Rc<Cell<Instant>>,
    calls: Rc<RefCell<Vec<Call>>>,
    next_pid: Rc<Cell<i32>>,
    group: Option<Pid>,
}

impl Fake {
    fn new(group: Option<Pid>) -> Fake {
        Fake {
            now: Rc::new(Cell::new(Instant::now())),
            calls: Rc::new(RefCell::new(Vec::new())),
            next_pid: Rc::new(Cell::new(1_000_000_000)),
            group,
        }
    }

    fn advance(&self, by: Duration) -> Instant {
        self.now.set(self.now.get() + by);
        self.now.get()
    }

    /// The calls made since the last look.
    fn take(&self) -> Vec<Call> {
        std::mem::take(&mut self.calls.borrow_mut())
    }
}

impl Sys for Fake {
    fn now(&self) -> Instant {
        self.now.get()
    }
    fn kill(&mut self, pid: Pid, signal: Signal) -> nix::Result<()> {
        self.calls.borrow_mut().push(Call::Kill(pid, signal));
        Ok(())
    }
    fn killpg(&mut self, group: Pid, signal: Signal) -> nix::Result<()> {
        self.calls.borrow_mut().push(Call::Killpg(group, signal));
        Ok(())
    }
    fn own_group(&self) -> Option<Pid> {
        self.group
    }
    fn spawn(&mut self, name: &OsStr, _: BorrowedFd<'_>) -> Result<Pid, Errno> {
        let pid = Pid::from_raw(self.next_pid.get());
        self.next_pid.set(pid.as_raw() + 1);
        self.calls
            .borrow_mut()
            .push(Call::Spawn(name.to_os_string(), pid));
        Ok(pid)
    }
    fn begin_batch(&mut self) {}
    fn end_batch(&mut self) {}
}

const DEADLINE: Duration = Duration::from_secs(8);

/// A scan directory with these entries (`name`, `service.yaml` or none), scanned once.
fn scanned(entries: &[(&str, Option<&str>)], fake: &Fake) -> (tempfile::TempDir, Svdir) {
    let root = tempfile::tempdir().unwrap();
    for (name, yaml) in entries {
        let dir = root.path().join(name);
        std::fs::create_dir(&dir).unwrap();
        if let Some(yaml) = yaml {
            std::fs::write(dir.join("service.yaml"), yaml).unwrap();
        }
    }
    let resolution = chain::resolve(root.path()).unwrap();
    let scan_fd = open_directory(&resolution.dir).unwrap();
    let signals = SignalFd::new(&SigSet::empty()).unwrap();
    let watch = watch::Watch::new().unwrap();
    let dir = root.path().to_path_buf();
    let sys = Box::new(fake.clone());
    let mut svdir = Svdir::new(sys, signals, dir, resolution, scan_fd, watch);
    svdir.stop_deadline = DEADLINE;
    svdir.rescan(true);
    (root, svdir)
}

/// The pid each service's runsv was spawned with.
fn spawned(calls: &[Call]) -> HashMap<String, Pid> {
    calls
        .iter()
        .filter_map(|call| match call {
            Call::Spawn(name, pid) => Some((name.to_string_lossy().into_owned(), *pid)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_runsv_dying_quickly_starts_again_once_its_delay_is_over() {
    let fake = Fake::new(None);
    let (_root, mut svdir) = scanned(&[("a", None)], &fake);
    let first = spawned(&fake.take())["a"];
    assert_eq!(svdir.next_wakeup(), None, "an idle svdir never wakes up");

    let died = fake.advance(Duration::from_millis(10));
    svdir.child_exited(first, ExitStatus::Exited(111));
    assert_eq!(fake.take(), []);
    let due = died + Duration::from_millis(100);
    assert_eq!(svdir.next_wakeup(), Some(due));
    svdir.handle_timers(fake.advance(Duration::from_millis(99)));
    assert_eq!(fake.take(), []);
    svdir.handle_timers(fake.advance(Duration::from_millis(1)));
    let second = spawned(&fake.take())["a"];
    assert_eq!(svdir.next_wakeup(), None);

    // Dying quickly again: twice the delay.
    let died = fake.advance(Duration::from_millis(10));
    svdir.child_exited(second, ExitStatus::Signaled(9));
    assert_eq!(svdir.next_wakeup(), Some(died + Duration::from_millis(200)));
    svdir.handle_timers(fake.advance(Duration::from_millis(200)));
    let third = spawned(&fake.take())["a"];

    // After a stable run, at once.
    fake.advance(Duration::from_secs(1));
    svdir.child_exited(third, ExitStatus::Exited(0));
    assert!(spawned(&fake.take()).contains_key("a"));
    assert_eq!(svdir.next_wakeup(), None);
}

#[test]
fn the_stop_tells_dependents_first_then_kills_at_the_deadline() {
    let fake = Fake::new(None);
    let (_root, mut svdir) = scanned(
        &[("a", None), ("b", Some("exec: sleep 1\nafter: [a]\n"))],
        &fake,
    );
    let pids = spawned(&fake.take());
    let began = fake.now();
    svdir.begin_stop(Signal::SIGTERM);
    assert_eq!(fake.take(), [Call::Kill(pids["b"], Signal::SIGTERM)]);
    assert_eq!(svdir.next_wakeup(), Some(began + DEADLINE));

    fake.advance(Duration::from_millis(50));
    svdir.child_exited(pids["b"], ExitStatus::Exited(0));
    svdir.advance_stop();
    assert_eq!(fake.take(), [Call::Kill(pids["a"], Signal::SIGTERM)]);

    // a's runsv never exits: nothing until the deadline, then stopped and killed.
    fake.advance(DEADLINE - Duration::from_millis(51));
    svdir.advance_stop();
    assert_eq!(fake.take(), []);
    let deadline = fake.advance(Duration::from_millis(1));
    svdir.advance_stop();
    assert_eq!(
        fake.take(),
        [
            Call::Kill(pids["a"], Signal::SIGSTOP),
            Call::Kill(pids["a"], Signal::SIGKILL),
        ]
    );
    assert_eq!(svdir.exit, None, "waiting for the killed runsv");
    assert_eq!(svdir.next_wakeup(), Some(deadline + stop_plan::KILL_GRACE));
    // Never reaped: given up after the grace; a was killed, so the stop failed.
    fake.advance(stop_plan::KILL_GRACE);
    svdir.advance_stop();
    assert_eq!(svdir.exit, Some(1));
}

#[test]
fn the_stop_tells_a_whole_wave_of_children_with_one_group_signal() {
    let group = Pid::from_raw(1_500_000_000);
    let fake = Fake::new(Some(group));
    let (_root, mut svdir) = scanned(&[("a", None), ("b", None), ("c", None)], &fake);
    let pids = spawned(&fake.take());
    svdir.begin_stop(Signal::SIGTERM);
    assert_eq!(fake.take(), [Call::Killpg(group, Signal::SIGTERM)]);
    for pid in pids.values() {
        svdir.child_exited(*pid, ExitStatus::Exited(0));
    }
    svdir.advance_stop();
    assert_eq!(svdir.exit, Some(0));
    assert_eq!(fake.take(), []);

    // Not leading its group: one signal each.
    let fake = Fake::new(None);
    let (_root, mut svdir) = scanned(&[("a", None), ("b", None), ("c", None)], &fake);
    let pids = spawned(&fake.take());
    svdir.begin_stop(Signal::SIGTERM);
    let mut told = fake.take();
    told.sort_by_key(|call| format!("{call:?}"));
    let mut expected: Vec<Call> = pids
        .values()
        .map(|pid| Call::Kill(*pid, Signal::SIGTERM))
        .collect();
    expected.sort_by_key(|call| format!("{call:?}"));
    assert_eq!(told, expected);
}
