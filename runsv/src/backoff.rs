//! The restart delay of a child that keeps dying young, for the two supervisors of a
//! supervisor: init restarting svdir, svdir restarting a runsv. None after a run of at
//! least STABLE_RUN (runit's rule for a service), else 100 ms doubling up to a cap each
//! owner picks, so a broken child costs a wake-up every few seconds, never a hot loop.

use std::time::Duration;

/// A run at least this long counts as stable: the next restart is immediate.
pub const STABLE_RUN: Duration = Duration::from_secs(1);
pub const FIRST_DELAY: Duration = Duration::from_millis(100);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    /// A fresh delay (the first quick death waits FIRST_DELAY) growing up to `max`.
    pub const fn up_to(max: Duration) -> Backoff {
        Backoff {
            next: FIRST_DELAY,
            max,
        }
    }

    /// The delay before the next start of a child that ran for `ran_for`.
    pub fn after_exit(&mut self, ran_for: Duration) -> Duration {
        if ran_for >= STABLE_RUN {
            self.next = FIRST_DELAY;
            return Duration::ZERO;
        }
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The caps of init's (svdir, 2 s) and svdir's (a runsv, 5 s).
    #[test]
    fn grows_caps_and_resets() {
        let quick = Duration::from_millis(10);
        for (max, expected) in [
            (2, [100, 200, 400, 800, 1600, 2000, 2000, 2000, 2000]),
            (5, [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]),
        ] {
            let mut b = Backoff::up_to(Duration::from_secs(max));
            let delays: Vec<u128> = (0..9).map(|_| b.after_exit(quick).as_millis()).collect();
            assert_eq!(delays, expected, "up to {max}s");
            assert_eq!(b.after_exit(STABLE_RUN), Duration::ZERO);
            assert_eq!(b.after_exit(quick), FIRST_DELAY);
            assert_eq!(b.after_exit(Duration::from_secs(3600)), Duration::ZERO);
            assert_eq!(b.after_exit(Duration::from_millis(999)), FIRST_DELAY);
        }
    }
}
