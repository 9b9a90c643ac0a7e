//! The status of every service of a fleet (`status`): one query, each suite's own.

use super::fleet::Fleet;
use crate::command::{first_line, run_timed};
use crate::interleave::{millis, Cell};
use crate::suite::{interleave, Kind, Suite};
use std::path::PathBuf;
use std::time::Duration;

impl Fleet {
    /// The time of one status query over every service of the fleet.
    pub fn status_all(&self, suites: &[&Suite], iterations: usize) -> Vec<(Kind, Cell)> {
        interleave(
            suites,
            iterations,
            |suite| {
                self.services(suite.kind).map(|services| {
                    services
                        .iter()
                        .map(|s| s.dir.clone())
                        .collect::<Vec<PathBuf>>()
                })
            },
            |suite, dirs| {
                let mut command = suite.status_all(dirs);
                let ran = run_timed(&mut command, Duration::from_secs(120))?;
                let prefix = suite.running_line_prefix();
                let running = ran
                    .stdout
                    .lines()
                    .filter(|line| line.starts_with(prefix))
                    .count();
                if !ran.status.success() || running != dirs.len() {
                    return Err(format!(
                        "status printed {running} of {} running services ({}): {}",
                        dirs.len(),
                        ran.status,
                        first_line(&ran.stderr, &ran.stdout)
                    ));
                }
                Ok(millis(ran.elapsed).into())
            },
        )
    }
}
