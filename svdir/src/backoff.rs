//! The restart delay of a runsv that keeps dying: none after a stable run, else 100 ms
//! doubling up to 5 s. A runsv only dies by itself when something is badly wrong (its
//! supervise/ cannot be created, the binary is broken, an OOM kill), so the delay keeps
//! a broken entry from costing more than a wake-up every few seconds.

use std::time::Duration;

/// A run at least this long counts as stable: the next restart is immediate.
pub const STABLE_RUN: Duration = Duration::from_secs(1);
pub const FIRST_DELAY: Duration = Duration::from_millis(100);
pub const MAX_DELAY: Duration = Duration::from_secs(5);

#[derive(Clone, Debug)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff { next: FIRST_DELAY }
    }
}

impl Backoff {
    /// The delay before the next start of a runsv that ran for `ran_for`.
    pub fn after_exit(&mut self, ran_for: Duration) -> Duration {
        if ran_for >= STABLE_RUN {
            self.next = FIRST_DELAY;
            return Duration::ZERO;
        }
        let delay = self.next;
        self.next = (self.next * 2).min(MAX_DELAY);
        delay
    }
}

/// `0.1s`, `2s` — for messages, as runsv words its reasons.
pub use runsv::duration::seconds;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_caps_and_resets() {
        let mut b = Backoff::default();
        let quick = Duration::from_millis(10);
        let delays: Vec<u128> = (0..9).map(|_| b.after_exit(quick).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
        assert_eq!(b.after_exit(Duration::from_secs(1)), Duration::ZERO);
        assert_eq!(b.after_exit(quick), FIRST_DELAY);
    }

    #[test]
    fn seconds_for_people() {
        assert_eq!(seconds(Duration::from_millis(100)), "0.1s");
        assert_eq!(seconds(Duration::from_secs(5)), "5s");
        assert_eq!(seconds(Duration::from_millis(1600)), "1.6s");
    }
}
