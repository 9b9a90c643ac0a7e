//! Every process the bench starts is ended, however the bench ends: normally, on an
//! error, on a panic (the release profile aborts, so destructors would not run), or on
//! Ctrl-C, SIGTERM or SIGHUP.
//!
//! The bench makes itself a child subreaper. Every process it starts, directly or as a
//! descendant (s6 and runtree run services in sessions of their own, orphaned if their
//! supervisor dies), is therefore its own child until reaped. Cleaning up is: SIGTERM
//! to the supervisors, which stop their services the way each suite does; after a grace
//! period SIGKILL to every remaining child, found as the /proc entries whose parent is
//! the bench. A child's pid cannot be reused before the bench reaps it, so nothing but
//! the bench's own processes is ever signalled, and nothing is looked up by name.

use nix::libc;
use nix::sys::signal::{kill, sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::fs::File;
use std::io::Read;
use std::os::fd::IntoRawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

struct Registry {
    /// Supervisors still running, asked to stop (SIGTERM) before anything is killed.
    supervisors: Vec<Pid>,
    /// The bench's work directory, removed last.
    work_dir: Option<PathBuf>,
    done: bool,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    supervisors: Vec::new(),
    work_dir: None,
    done: false,
});

/// Write end of the pipe through which the signal handler wakes the cleanup thread.
static SIGNAL_PIPE: AtomicI32 = AtomicI32::new(-1);

fn registry() -> MutexGuard<'static, Registry> {
    // Nothing panics while holding the lock, but a poisoned lock must not stop cleanup.
    REGISTRY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

extern "C" fn on_signal(signal: libc::c_int) {
    let byte = signal as u8;
    // Only write(2) here: it is async-signal-safe; the cleanup thread does the work.
    // SAFETY: write(2) reads one byte from `byte`, which lives across the call; a bad
    // descriptor (the pipe not set up yet) only makes it fail with EBADF.
    unsafe {
        libc::write(
            SIGNAL_PIPE.load(Ordering::Relaxed),
            (&byte as *const u8).cast(),
            1,
        );
    }
}

/// Becomes a subreaper and arranges for `cleanup` to run on SIGINT, SIGTERM, SIGHUP and
/// panics. Call before starting any process.
pub fn install() -> Result<(), String> {
    nix::sys::prctl::set_child_subreaper(true)
        .map_err(|e| format!("prctl(PR_SET_CHILD_SUBREAPER): {e}"))?;
    let (read_end, write_end) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| format!("pipe2: {e}"))?;
    SIGNAL_PIPE.store(write_end.into_raw_fd(), Ordering::Relaxed);
    std::thread::spawn(move || {
        let mut pipe = File::from(read_end);
        let mut byte = [0u8];
        if pipe.read_exact(&mut byte).is_ok() {
            let name = Signal::try_from(i32::from(byte[0]))
                .map(|s| s.as_str())
                .unwrap_or("a signal");
            eprintln!("\nruntree-bench: {name}: stopping every process it started");
            cleanup();
            std::process::exit(128 + i32::from(byte[0]));
        }
    });
    // A handler (not a blocked mask and sigwait) because a blocked mask would be
    // inherited by every supervisor and service started; handlers are reset by exec.
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: `on_signal` does nothing but an async-signal-safe write(2).
        unsafe { sigaction(signal, &action) }.map_err(|e| format!("sigaction {signal}: {e}"))?;
    }
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default_hook(info);
        cleanup();
    }));
    Ok(())
}

pub fn set_work_dir(dir: PathBuf) {
    registry().work_dir = Some(dir);
}

pub fn register_supervisor(pid: Pid) {
    registry().supervisors.push(pid);
}

/// Stops these supervisors now (SIGTERM, then SIGKILL after `grace`) and ends whatever
/// they left behind; the other registered supervisors keep running.
pub fn stop_supervisors(pids: &[Pid], grace: Duration) {
    registry().supervisors.retain(|pid| !pids.contains(pid));
    for &pid in pids {
        let _ = kill(pid, Signal::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    let mut running: Vec<Pid> = pids.to_vec();
    while !running.is_empty() && Instant::now() < deadline {
        running.retain(|&pid| {
            matches!(
                waitpid(pid, Some(WaitPidFlag::WNOHANG)),
                Ok(WaitStatus::StillAlive)
            )
        });
        std::thread::sleep(Duration::from_millis(5));
    }
    for &pid in &running {
        let _ = kill(pid, Signal::SIGKILL);
        let _ = waitpid(pid, None);
    }
    // Services orphaned by a supervisor that had to be killed are now the bench's
    // children; everything else that is a child is a registered supervisor.
    let keep = registry().supervisors.clone();
    kill_children(|pid| !keep.contains(&pid));
}

/// Held for the whole of a cleanup, so that a second caller (the main thread finishing
/// while the signal thread cleans up) waits for the first instead of exiting under it.
static CLEANING: Mutex<()> = Mutex::new(());

/// Stops everything the bench started and removes its work directory. Idempotent; a
/// call during another thread's cleanup returns when that cleanup is done.
pub fn cleanup() {
    let _cleaning = CLEANING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let (supervisors, work_dir) = {
        let mut registry = registry();
        if registry.done {
            return;
        }
        registry.done = true;
        (
            std::mem::take(&mut registry.supervisors),
            registry.work_dir.take(),
        )
    };
    for &pid in &supervisors {
        let _ = kill(pid, Signal::SIGTERM);
    }
    // Each suite's supervisor stops its service on SIGTERM (runit: like `sv exit`; s6:
    // like `s6-svc -xd`); give them a moment before killing what remains.
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        reap_children();
        if children().is_empty() || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    kill_children(|_| true);
    if let Some(dir) = work_dir {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// SIGKILLs and reaps every child for which `select` holds, until none is left (bounded:
/// a child that forks while being killed is caught on a later round).
fn kill_children(select: impl Fn(Pid) -> bool) {
    for _ in 0..200 {
        let targets: Vec<Pid> = children().into_iter().filter(|&p| select(p)).collect();
        if targets.is_empty() {
            return;
        }
        for &pid in &targets {
            let _ = kill(pid, Signal::SIGKILL);
        }
        for &pid in &targets {
            let _ = waitpid(pid, None);
        }
    }
}

fn reap_children() {
    while let Ok(status) = waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
        if status == WaitStatus::StillAlive {
            break;
        }
    }
}

/// The bench's child processes (zombies included), from the parent field of
/// /proc/PID/stat.
pub fn children() -> Vec<Pid> {
    let me = std::process::id();
    runsv::proc::pids()
        .into_iter()
        .filter_map(|pid| {
            let ppid = runsv::proc::stat(pid)?.ppid;
            (ppid == me).then(|| Pid::from_raw(pid as i32))
        })
        .collect()
}
