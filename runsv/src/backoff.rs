//! The restart delay of a child that keeps dying young, for the two supervisors of a
//! supervisor: init restarting svdir, svdir restarting a runsv. None after a run of at
//! least STABLE_RUN (runit's rule for a service), else 100 ms doubling up to a cap each
//! owner picks, so a broken child costs a wake-up every few seconds, never a hot loop.

use std::time::Duration;

/// A run at least this long counts as stable: the next restart is immediate.
pub const STABLE_RUN: Duration = Duration::from_secs(1);
pub const FIRST_DELAY: Duration = Duration::from_millis(100);

#[derive(Clone, Debug)]
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

    #[test]
    fn a_stable_run_resets_and_a_run_just_short_of_it_does_not() {
        let mut b = Backoff::up_to(Duration::from_secs(1));
        let quick = Duration::from_millis(10);
        let delays: Vec<u128> = (0..6).map(|_| b.after_exit(quick).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(
            b.after_exit(STABLE_RUN - Duration::from_millis(1)),
            Duration::from_secs(1)
        );
        assert_eq!(b.after_exit(STABLE_RUN), Duration::ZERO);
        assert_eq!(b.after_exit(quick), FIRST_DELAY);
    }
}
