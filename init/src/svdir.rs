//! The one child init owns: svdir. Where its binary is, how it is started, and how
//! long to wait before starting it again.

use crate::config::CONTAINER_STOP_TIMEOUT;
use crate::signals;
use crate::Mode;
use nix::unistd::Pid;
pub use runsv::backoff::Backoff;
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The runsv processes and their services run on while svdir is down: what waits is
/// only the scan of new or removed entries, so the cap stays short.
const MAX_DELAY: Duration = Duration::from_secs(2);

/// PATH for svdir when init has none: the kernel starts init with only HOME and TERM.
pub use runsv::definition::DEFAULT_PATH;

/// svdir's restart delay (runsv::backoff): 0 after a healthy run, else 100 ms doubling
/// up to 2 s while svdir keeps dying quickly, so a broken svdir costs a wake-up every
/// 2 s instead of a hot loop.
pub fn backoff() -> Backoff {
    Backoff::up_to(MAX_DELAY)
}

/// The svdir to run: `RUNTREE_SVDIR`, else `svdir` beside init's own executable, else
/// plain `svdir` for a PATH search. Resolved at every start, so that an svdir installed
/// after boot (or replaced by an upgrade) is picked up.
pub fn binary(env_override: Option<PathBuf>, own_exe: Option<PathBuf>) -> PathBuf {
    if let Some(path) = env_override.filter(|p| !p.as_os_str().is_empty()) {
        return path;
    }
    if let Some(beside) = own_exe
        .as_deref()
        .and_then(Path::parent)
        .map(|dir| dir.join("svdir"))
        .filter(|p| p.is_file())
    {
        return beside;
    }
    PathBuf::from("svdir")
}

/// Starts `svdir SCANDIR` in a session of its own (so that a console's Ctrl-C or a
/// hang-up never reaches the tree), with stdin on /dev/null (services must not read
/// the console) and stdout/stderr inherited (the console, or the container's log).
///
/// svdir's own stop deadline (RUNTREE_STOP_DEADLINE, unless already set) is 9/10 of
/// init's shutdown timeout: svdir kills what is left and reports it before init would
/// have to kill svdir itself.
pub fn spawn(
    binary: &Path,
    scandir: &Path,
    shutdown_timeout: Duration,
    mode: Mode,
) -> std::io::Result<Pid> {
    let mut command = Command::new(binary);
    command.arg(scandir);
    // A runsv whose service fails with `on_failure: stop` asks PID 1 to stop the tree
    // (runsv::failure): only runtree's init may be asked, and this says it is there.
    command.env("RUNTREE_INIT", "1");
    if mode == Mode::Container {
        // What the tree does differently in a container (runsv/src/tree_env.rs): lines
        // meant for kmsg go to the container's log, and services' stop timeouts fit
        // the engine's grace unless the image says otherwise.
        command.env("RUNTREE_MODE", "container");
        if std::env::var_os("RUNTREE_STOP_TIMEOUT").is_none() {
            command.env("RUNTREE_STOP_TIMEOUT", CONTAINER_STOP_TIMEOUT);
        }
    }
    if std::env::var_os("RUNTREE_STOP_DEADLINE").is_none() {
        let deadline = shutdown_timeout.mul_f64(0.9);
        command.env(
            "RUNTREE_STOP_DEADLINE",
            format!("{:.3}", deadline.as_secs_f64()),
        );
    }
    match File::open("/dev/null") {
        Ok(null) => {
            command.stdin(Stdio::from(null));
        }
        // Without /dev/null svdir keeps init's stdin: better than not starting.
        Err(_) => {
            command.stdin(Stdio::inherit());
        }
    }
    if std::env::var_os("PATH").is_none() {
        command.env("PATH", DEFAULT_PATH);
    }
    // SAFETY: the closure runs between fork and exec and only makes async-signal-safe
    // calls (signal, sigprocmask, setsid), allocating nothing.
    unsafe {
        command.pre_exec(|| {
            signals::reset_for_child()?;
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            Ok(())
        });
    }
    let child = command.spawn()?;
    // The Child handle is dropped without waiting: init reaps every pid with
    // waitpid(-1), this one included.
    let raw = i32::try_from(child.id()).map_err(|_| std::io::Error::other("pid out of range"))?;
    Ok(Pid::from_raw(raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The delay's steps are runsv::backoff's test, for this cap.
    #[test]
    fn svdir_is_restarted_after_at_most_2_seconds() {
        assert_eq!(backoff(), Backoff::up_to(Duration::from_secs(2)));
    }

    #[test]
    fn binary_choice() {
        let dir = std::env::temp_dir().join(format!("init-svdir-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let init = dir.join("init");
        assert_eq!(
            binary(Some("/x/svdir".into()), Some(init.clone())),
            PathBuf::from("/x/svdir")
        );
        // No svdir beside init: PATH search.
        assert_eq!(binary(None, Some(init.clone())), PathBuf::from("svdir"));
        assert_eq!(binary(Some("".into()), None), PathBuf::from("svdir"));
        std::fs::write(dir.join("svdir"), "").unwrap();
        assert_eq!(binary(None, Some(init.clone())), dir.join("svdir"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
