//! Settings the whole tree takes from init through the environment: init passes them
//! to svdir, and every runsv inherits them. Read where they apply, at each use, so a
//! runsv started by hand (no init above it) simply gets the defaults.

use crate::definition::DEFAULT_STOP_TIMEOUT;
use std::time::Duration;

/// `RUNTREE_MODE=container`: init sets it for svdir when it runs as a container's
/// PID 1 (or the operator does).
pub fn in_container() -> bool {
    std::env::var_os("RUNTREE_MODE").is_some_and(|m| m == "container")
}

/// A service's stop timeout when its definition names none: `RUNTREE_STOP_TIMEOUT`
/// (seconds, fractional allowed, optional `s`/`ms`), else 10 s. In a container init
/// sets 3 s, so that a stop fits the engine's 10 s grace (docs/init.md).
pub fn default_stop_timeout() -> Duration {
    std::env::var("RUNTREE_STOP_TIMEOUT")
        .ok()
        .and_then(|v| parse_seconds(&v))
        .unwrap_or(DEFAULT_STOP_TIMEOUT)
}

/// Seconds, possibly fractional, with an optional `s` or `ms` suffix; more than 0 (0
/// would mean SIGKILL with the stop signal: not a timeout anyone wants), at most a day.
pub fn parse_seconds(text: &str) -> Option<Duration> {
    crate::duration::parse(text)
        .filter(|duration| !duration.is_zero() && *duration <= Duration::from_secs(24 * 3600))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_timeouts_are_more_than_0_and_at_most_a_day() {
        assert_eq!(parse_seconds("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_seconds("2.5s"), Some(Duration::from_millis(2500)));
        assert_eq!(parse_seconds("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_seconds("86400"), Some(Duration::from_secs(86400)));
        for refused in ["0", "-1", "soon", "1e9", "86401"] {
            assert_eq!(parse_seconds(refused), None, "{refused}");
        }
    }
}
