//! Idle supervisor memory (`memory`): Private_Dirty of a sample of a fleet's
//! supervisors.

use super::fleet::Fleet;
use crate::interleave::{Cell, Turn};
use crate::suite::{interleave, Kind, Suite};
use nix::unistd::Pid;

impl Fleet {
    /// Private_Dirty of `samples` idle supervisors per suite, spread over the fleet.
    pub fn private_dirty(&self, suites: &[&Suite], samples: usize) -> Vec<(Kind, Cell)> {
        interleave(
            suites,
            samples,
            |suite| self.services(suite.kind).map(|services| (services, 0usize)),
            |_, (services, taken)| {
                let service = &services[*taken * services.len() / samples];
                *taken += 1;
                private_dirty_kib(service.supervisor).map(Turn::from)
            },
        )
    }
}

/// `Private_Dirty` of /proc/PID/smaps_rollup, in KiB: the memory this process alone has
/// written, which is what each further supervisor costs. RSS and PSS would mostly count
/// the shared C library.
fn private_dirty_kib(pid: Pid) -> Result<f64, String> {
    let path = format!("/proc/{pid}/smaps_rollup");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    text.lines()
        .find_map(|line| line.strip_prefix("Private_Dirty:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("{path}: no Private_Dirty line"))
}
