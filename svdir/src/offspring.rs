//! The processes a runsv started, found through `/proc` by their parent: at the stop
//! deadline svdir must kill a service whose runsv never answered, and the pid runsv
//! published in `supervise/state` is not to be relied on then (the file may be a FIFO
//! or stale while runsv is stopped or stuck). A child of the runsv is proven to be its
//! by its parent pid, checked just before the kill while the runsv is stopped: a
//! stopped parent reaps nothing, so the pid cannot be reused in between.

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use std::collections::{HashMap, HashSet};

/// `(ppid, pgid)` from `/proc/PID/stat`, unless the process is gone or a zombie.
fn parent_and_group(pid: u32) -> Option<(u32, u32)> {
    let stat = runsv::proc::stat(pid).filter(|stat| !stat.zombie())?;
    Some((stat.ppid, stat.pgrp))
}

/// The children of each of `parents`, in one pass over `/proc`.
pub fn children(parents: &HashSet<u32>) -> HashMap<u32, Vec<u32>> {
    let mut found: HashMap<u32, Vec<u32>> = HashMap::new();
    if parents.is_empty() {
        return found;
    }
    for pid in runsv::proc::pids() {
        if let Some((ppid, _)) = parent_and_group(pid) {
            if parents.contains(&ppid) {
                found.entry(ppid).or_default().push(pid);
            }
        }
    }
    found
}

/// SIGKILL to `child` and, unless it is in runsv's (svdir's) own group, to the group it
/// is in (a service's: runsv gives it a session) — only while `child` is still a child
/// of `parent`. The parent should be stopped (SIGSTOP): then the killed child stays a
/// zombie, unreaped, so its pid cannot be reused, nor its group lose it, until the
/// group is killed.
pub fn kill_child(parent: u32, child: u32) -> bool {
    let Some((ppid, pgid)) = parent_and_group(child) else {
        return false;
    };
    if ppid != parent {
        return false;
    }
    let pid = Pid::from_raw(child as i32);
    let parents_group = parent_and_group(parent).map(|(_, group)| group);
    if Some(pgid) != parents_group && pgid as i32 != nix::unistd::getpgrp().as_raw() {
        let _ = killpg(Pid::from_raw(pgid as i32), Signal::SIGKILL);
    }
    kill(pid, Signal::SIGKILL).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_and_kills_a_child_and_its_group() {
        use std::os::unix::process::CommandExt;
        let mut child = std::process::Command::new("sleep")
            .arg("100")
            .process_group(0)
            .spawn()
            .unwrap();
        let me = std::process::id();
        let pid = child.id();
        let found = children(&HashSet::from([me]));
        assert!(
            found.get(&me).is_some_and(|c| c.contains(&pid)),
            "{found:?}"
        );
        assert!(!kill_child(me + 1, pid), "not a child of that parent");
        assert!(kill_child(me, pid));
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9));
    }
}
