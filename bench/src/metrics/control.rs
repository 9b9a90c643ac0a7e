//! The control round trip (`control`): `down` and wait, `up` and wait, with each suite's
//! own tool.

use crate::command::run_timed;
use crate::interleave::{millis, Cell, Turn};
use crate::options::Metric;
use crate::suite::{on_one_service, Kind, Suite};
use crate::table::{Goal, Row};
use std::process::Command;
use std::time::{Duration, Instant};

/// `down` and wait, then `up` and wait, with each suite's own tool and its own waiting
/// (see `Suite::down_then_up`). Both commands must exit 0 and the service must run again.
pub fn control_round_trip(suites: &[&Suite], iterations: usize) -> Vec<(Kind, Cell)> {
    on_one_service(suites, iterations, "control", |suite, service| {
        let [mut down, mut up] = suite.down_then_up(&service.dir);
        let run = |command: &mut Command| {
            let ran = run_timed(command, Duration::from_secs(20))?;
            if ran.status.success() {
                Ok(ran.elapsed)
            } else {
                Err(format!("{} ({})", ran.describe(command), ran.status))
            }
        };
        // The status file is read after each command: a tool that reports success
        // before the supervisor's status file agrees misleads every script that
        // reads the status next (runit's sv, say). That is noted with the result.
        // The read is outside the timed spans, which are the two commands' own.
        let mut elapsed = run(&mut down)?;
        let mut problems = Vec::new();
        if suite.running_pid(&service.dir).is_some() {
            problems.push("after `down` returned, supervise/status still showed it running");
        }
        elapsed += run(&mut up)?;
        if suite.running_pid(&service.dir).is_none() {
            problems.push("after `up` returned, supervise/status did not show it running yet");
        }
        let warning = (!problems.is_empty()).then(|| problems.join("; "));
        service.up_since = Instant::now();
        Ok(Turn {
            value: millis(elapsed),
            warning,
        })
    })
}

/// The row of `control`.
pub fn rows(suites: &[&Suite], iterations: usize) -> Vec<(Metric, Row)> {
    crate::progress("measuring the control round trip");
    vec![(
        Metric::Control,
        Row::new(
            "control round trip (down -w, up -w)".into(),
            "ms",
            Goal::AtMost(10.0),
        )
        .suites(control_round_trip(suites, iterations)),
    )]
}
