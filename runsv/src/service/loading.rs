//! What runsv makes of a service's definition when it loads it: the machine's
//! settings, whether a `log/` service goes with it, and its paths made relative to
//! runsv's working directory.

use crate::machine::{ReadinessKind, Settings};
use runsv::definition::{LogDestination, Readiness, ServiceDefinition};
use std::path::Path;

pub(super) fn settings_of(
    definition: Option<&ServiceDefinition>,
    is_log: bool,
    invalid: Option<String>,
) -> Settings {
    let Some(definition) = definition else {
        return Settings {
            is_log,
            invalid,
            ..Settings::default()
        };
    };
    Settings {
        oneshot: definition.oneshot,
        has_finish: definition.finish.is_some() && !is_log,
        readiness: match &definition.readiness {
            Readiness::Immediate => ReadinessKind::Immediate,
            Readiness::Test { interval, .. } => ReadinessKind::Test {
                interval: *interval,
            },
            Readiness::NotificationFd(_) => ReadinessKind::Notification,
        },
        stop_signal: definition.stop_signal,
        stop_timeout: definition.stop_timeout,
        restart_delay: definition.restart_delay,
        restart_delay_max: definition.restart_delay_max,
        is_log,
        invalid,
    }
}

/// Whether the definition sends output to a `log/` service.
pub fn has_log_service(directory: &Path, definition: Option<&ServiceDefinition>) -> bool {
    match definition {
        Some(d) => matches!(d.log, LogDestination::Service(_)),
        None => directory.join("log").is_dir(),
    }
}

/// Makes the definition's paths relative to runsv's working directory (the service
/// directory): the service keeps starting if its entry is renamed while runsv runs,
/// as with runit, whose runsv only ever uses relative paths.
pub(super) fn relocate(definition: &mut ServiceDefinition, directory: &Path, is_log: bool) {
    let base = if is_log {
        Path::new("log")
    } else {
        Path::new(".")
    };
    let rebase = |path: &Path| match path.strip_prefix(directory) {
        Ok(rest) if rest.as_os_str().is_empty() => base.to_path_buf(),
        Ok(rest) => base.join(rest),
        Err(_) => path.to_path_buf(),
    };
    definition.working_directory = rebase(&definition.working_directory);
    definition.directory = rebase(&definition.directory);
    // finish runs in the service's own directory: `./finish` there.
    definition.finish = definition.finish.as_deref().map(|finish| {
        finish
            .strip_prefix(directory)
            .map(|rest| Path::new(".").join(rest))
            .unwrap_or_else(|_| finish.to_path_buf())
    });
}
