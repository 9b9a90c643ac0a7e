//! Many idle supervised services per suite, started directly (no scanner): what the
//! memory and status metrics (memory.rs, status.rs) measure.

use crate::options::Metric;
use crate::suite::{Kind, Service, Suite};
use crate::table::{Goal, Row};
use nix::unistd::Pid;
use std::time::Duration;

/// Many idle supervised services per suite: the memory of idle supervisors and the
/// status of all services.
pub struct Fleet {
    /// Per suite (in the order given): its services, or why it has none.
    lanes: Vec<(Kind, Result<Vec<Service>, String>)>,
}

impl Fleet {
    /// Starts `size` services under each suite (directly, one supervisor each, no
    /// scanner) and waits until all run, then for one more second so that every
    /// supervisor is idle.
    pub fn start(suites: &[&Suite], size: usize) -> Fleet {
        let lanes = suites
            .iter()
            .map(|suite| {
                let services = match &suite.unavailable {
                    Some(reason) => Err(reason.clone()),
                    None => Fleet::start_one_suite(suite, size),
                };
                (suite.kind, services)
            })
            .collect();
        std::thread::sleep(Duration::from_secs(1));
        Fleet { lanes }
    }

    fn start_one_suite(suite: &Suite, size: usize) -> Result<Vec<Service>, String> {
        let mut services = Vec::with_capacity(size);
        for i in 0..size {
            let name = format!("fleet-{i:04}");
            let dir = suite
                .create_service(&name)
                .map_err(|e| format!("creating {name}: {e}"))?;
            services.push(
                suite
                    .start(&dir)
                    .map_err(|e| format!("starting {} #{}: {e}", suite.supervisor_name(), i + 1))?,
            );
        }
        // Generous: a loaded 2-core machine starts 1000 supervisors and services in a
        // few seconds.
        let timeout = Duration::from_secs(30 + size as u64 / 20);
        suite.wait_running(&mut services, timeout)?;
        Ok(services)
    }

    pub fn services(&self, kind: Kind) -> Result<&[Service], String> {
        let (_, services) = self
            .lanes
            .iter()
            .find(|(k, _)| *k == kind)
            .expect("a lane per suite");
        services.as_deref().map_err(Clone::clone)
    }

    /// Every supervisor of the fleet, to stop it before another phase.
    pub fn supervisors(&self) -> Vec<Pid> {
        self.lanes
            .iter()
            .filter_map(|(_, services)| services.as_ref().ok())
            .flatten()
            .map(|service| service.supervisor)
            .collect()
    }
}

/// The rows of `memory` and `status`, which share a fleet: `fleet_size` services per
/// suite for the status (only `samples` when memory alone is wanted).
pub fn rows(
    all: &[&Suite],
    fleet_size: usize,
    samples: usize,
    iterations: usize,
    wanted: impl Fn(Metric) -> bool,
) -> Vec<(Metric, Row)> {
    let mut rows = Vec::new();
    let size = if wanted(Metric::Status) {
        fleet_size
    } else {
        samples
    };
    let available: Vec<&Suite> = all
        .iter()
        .copied()
        .filter(|s| s.unavailable.is_none())
        .collect();
    // Two processes per service (supervisor and `sleep`); all suites at once when
    // the machine allows it, so that their status runs can be interleaved.
    let together = crate::host::process_headroom() >= available.len() * size * 2 + 200;
    let groups: Vec<Vec<&Suite>> = if together {
        vec![all.to_vec()]
    } else {
        println!(
            "not enough free pids for {} services of every suite at once: \
             one suite at a time (status runs not interleaved across suites)",
            size
        );
        all.iter().map(|&s| vec![s]).collect()
    };
    let mut memory = Vec::new();
    let mut status = Vec::new();
    for group in groups {
        crate::progress(&format!("starting {size} services per suite"));
        let fleet = Fleet::start(&group, size);
        if wanted(Metric::Memory) {
            crate::progress("measuring idle supervisor memory");
            memory.extend(fleet.private_dirty(&group, samples.min(size)));
        }
        if wanted(Metric::Status) {
            crate::progress(&format!("measuring the status of {size} services"));
            status.extend(fleet.status_all(&group, iterations));
        }
        crate::cleanup::stop_supervisors(&fleet.supervisors(), Duration::from_secs(10));
    }
    if wanted(Metric::Memory) {
        rows.push((
            Metric::Memory,
            Row::new(
                "idle supervisor Private_Dirty (USS)".into(),
                "KiB",
                Goal::NoMoreThanRunit,
            )
            .suites(memory),
        ));
    }
    if wanted(Metric::Status) {
        rows.push((
            Metric::Status,
            Row::new(
                format!("status of {} services", fleet_size),
                "ms",
                Goal::NoMoreThanRunit,
            )
            .suites(status),
        ));
    }
    rows
}
