//! The restart delay of a runsv that keeps dying (runsv::backoff): none after a stable
//! run, else 100 ms doubling up to 5 s. A runsv only dies by itself when something is
//! badly wrong (its supervise/ cannot be created, the binary is broken, an OOM kill), so
//! the delay keeps a broken entry from costing more than a wake-up every few seconds.

use std::time::Duration;

pub use runsv::backoff::Backoff;
pub const MAX_DELAY: Duration = Duration::from_secs(5);

/// A runsv's delay, fresh.
pub fn runsv_backoff() -> Backoff {
    Backoff::up_to(MAX_DELAY)
}

/// `0.1s`, `2s` — for messages, as runsv words its reasons.
pub use runsv::duration::seconds;

#[cfg(test)]
mod tests {
    use super::*;

    /// The delay's steps are runsv::backoff's test, for this cap.
    #[test]
    fn a_runsv_is_restarted_after_at_most_5_seconds() {
        assert_eq!(runsv_backoff(), Backoff::up_to(Duration::from_secs(5)));
    }

    #[test]
    fn seconds_for_people() {
        assert_eq!(seconds(Duration::from_millis(100)), "0.1s");
        assert_eq!(seconds(Duration::from_secs(5)), "5s");
        assert_eq!(seconds(Duration::from_millis(1600)), "1.6s");
    }
}
