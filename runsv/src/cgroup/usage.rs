//! What sv reads of a service's cgroup: the `cgroup=` line runsv writes to
//! supervise/state, and the group's process count and memory, in one small read where
//! the controllers allow (see docs/cgroups.md).

use super::*;
use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};

/// The `cgroup=PATH` line of supervise/state.
pub fn state_field(path: &Path) -> String {
    format!("{STATE_FIELD}{}\n", path.display())
}

/// The group a state file names, if any.
pub fn group_in_state(state: &[u8]) -> Option<PathBuf> {
    let text = std::str::from_utf8(state).ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix(STATE_FIELD))
        .filter(|path| path.starts_with('/'))
        .map(PathBuf::from)
}

/// What `sv status` shows of a group.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub processes: Option<u64>,
    /// Bytes (memory.current), where the memory controller is on.
    pub memory: Option<u64>,
}

/// A group's processes and memory: `pids.current` (or the lines of `cgroup.procs`
/// without the pids controller) and `memory.current` where the memory controller is on
/// — one small read per controller, no lookup of a file that is not there: which
/// controllers a tree's groups have is read once per tree (its
/// `cgroup.subtree_control`), as a lookup in cgroupfs costs as much as a read.
pub fn usage(group: &Path) -> Usage {
    let (pids, memory) = controllers_of_parent(group);
    let number = |name: &str| -> Option<u64> {
        let mut buffer = [0u8; 32];
        let mut file = File::open(group.join(name)).ok()?;
        let n = file.read(&mut buffer).ok()?;
        std::str::from_utf8(&buffer[..n]).ok()?.trim().parse().ok()
    };
    let processes = if pids {
        number("pids.current")
    } else {
        // One read for a service's few pids (an empty Vec would probe with 32 bytes).
        let mut text = Vec::with_capacity(512);
        File::open(group.join("cgroup.procs"))
            .and_then(|file| file.take(1 << 20).read_to_end(&mut text))
            .ok()
            .map(|_| text.iter().filter(|&&b| b == b'\n').count() as u64)
    };
    Usage {
        processes,
        memory: if memory {
            number("memory.current")
        } else {
            None
        },
    }
}

/// Whether the groups under `group`'s parent have the pids and memory controllers,
/// remembered per parent for the life of the process.
fn controllers_of_parent(group: &Path) -> (bool, bool) {
    use std::cell::RefCell;
    thread_local! {
        static KNOWN: RefCell<Vec<(PathBuf, (bool, bool))>> = const { RefCell::new(Vec::new()) };
    }
    let parent = group.parent().unwrap_or(group).to_path_buf();
    KNOWN.with(|known| {
        if let Some((_, found)) = known.borrow().iter().find(|(p, _)| *p == parent) {
            return *found;
        }
        let enabled = fs::read_to_string(parent.join("cgroup.subtree_control")).unwrap_or_default();
        let has = |name: &str| enabled.split_whitespace().any(|c| c == name);
        let found = (has("pids"), has("memory"));
        known.borrow_mut().push((parent, found));
        found
    })
}

/// `12.3M`: bytes for people.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "K", "M", "G", "T"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else {
        format!("{value:.1}{}", UNITS[unit])
    }
}
