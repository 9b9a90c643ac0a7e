//! `/run/runtree/shutdown`: what the machine is doing once init stops the tree
//! (`poweroff`, `reboot` or `halt` and a newline), for a service's stop to tell a
//! shutdown from `sv down` — as `systemctl is-system-running` says `stopping`. distro/
//! debian's networking skips the DHCP release when it is there: the machine is going
//! away, and the server keeps the lease either way. Removed when init starts (a
//! container's /run may outlive the previous run). `RUNTREE_SHUTDOWN_FILE` names
//! another file (tests).

use crate::log::log;
use crate::signals::Action;
use std::path::PathBuf;

const SHUTDOWN_FILE: &str = "/run/runtree/shutdown";

fn path() -> PathBuf {
    std::env::var_os("RUNTREE_SHUTDOWN_FILE")
        .filter(|p| !p.is_empty())
        .map_or_else(|| PathBuf::from(SHUTDOWN_FILE), PathBuf::from)
}

/// At start: no shutdown is under way.
pub fn clear() {
    let _ = std::fs::remove_file(path());
}

/// Before the services are stopped: says which shutdown it is (a failure is reported;
/// the shutdown goes on).
pub fn announce(action: Action) {
    let path = path();
    let written = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::write(&path, format!("{}\n", action.word())));
    if let Err(e) = written {
        log!("cannot write {}: {e}", path.display());
    }
}
