//! What a killed predecessor left running: found through the state it published and
//! proven by the process's start time, for runsv to adopt or stop.

use runsv::reader::Links;
use runsv::supervise::{FullState, ServiceState, SuperviseDir};

/// A process a killed predecessor left running, and the state it published.
pub struct Leftover {
    pub pid: u32,
    pub previous: FullState,
}

impl Leftover {
    /// Whether it is `run` up and ready (not `finish`, not a `run` still starting,
    /// whose readiness this runsv could not follow): only that can be adopted.
    pub fn adoptable(&self) -> bool {
        self.previous.state == ServiceState::Running
    }
}

/// The process a previous runsv of this directory left running, if it is still the
/// same process: the pid and its start time from /proc must both match, so a reused
/// pid is never mistaken for it.
///
/// runsv adopts or stops that process, so the file must be one a runsv wrote: not a link
/// (to another service's state) and owned by runsv's user (not planted by another user
/// allowed to write in supervise/).
pub(super) fn left_running(supervise: &SuperviseDir) -> Option<Leftover> {
    let mut file = runsv::reader::open_regular(&supervise.state(), Links::Refuse).ok()?;
    let owner = std::os::unix::fs::MetadataExt::uid(&file.metadata().ok()?);
    if owner != nix::unistd::geteuid().as_raw() {
        return None;
    }
    let previous = FullState::read_from(&mut file).ok()?;
    if previous.pid == 0 || previous.starttime == 0 {
        return None;
    }
    let alive = runsv::proc::start_time(previous.pid) == Some(previous.starttime);
    alive.then_some(Leftover {
        pid: previous.pid,
        previous,
    })
}
