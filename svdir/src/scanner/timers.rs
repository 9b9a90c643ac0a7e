//! What svdir waits for besides its descriptors: a runsv restart put off by its backoff,
//! the next probe of an adopted runsv, the stop's deadline. The time is an argument
//! (the loop reads the clock), so what is due when is unit-tested without sleeping.

use super::{Adopted, Id, Runsv, Service, Svdir};
use std::collections::HashMap;
use std::time::Instant;

/// What is due at `now`.
#[derive(Debug, Default, PartialEq, Eq)]
struct Due {
    /// Services whose runsv starts again now (not during the stop).
    restarts: Vec<Id>,
    /// Adopted runsvs to probe now, with how many probes were made.
    rechecks: Vec<(Id, usize)>,
}

fn due(services: &HashMap<Id, Service>, stopping: bool, now: Instant) -> Due {
    let mut due = Due::default();
    for (id, service) in services {
        match &service.runsv {
            Runsv::Delayed { until } if *until <= now && !stopping => due.restarts.push(*id),
            Runsv::Adopted(Adopted {
                recheck: Some((when, count)),
                ..
            }) if *when <= now => due.rechecks.push((*id, *count)),
            _ => {}
        }
    }
    due.restarts.sort_unstable();
    due.rechecks.sort_unstable();
    due
}

/// The earliest of the services' timers: `None`, an idle svdir, never wakes up.
fn earliest(services: &HashMap<Id, Service>, stopping: bool) -> Option<Instant> {
    services
        .values()
        .filter_map(|service| match &service.runsv {
            Runsv::Delayed { until } if !stopping => Some(*until),
            Runsv::Adopted(Adopted {
                recheck: Some((when, _)),
                ..
            }) => Some(*when),
            _ => None,
        })
        .min()
}

impl Svdir {
    /// When the loop must wake up even if nothing happens.
    pub(super) fn next_wakeup(&self) -> Option<Instant> {
        let stop = self.stop.as_ref().and_then(|stop| stop.wakeup());
        let services = earliest(&self.services, self.stop.is_some());
        match (services, stop) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Restarts and probes that are due (the stop's own times are the plan's).
    pub(super) fn handle_timers(&mut self, now: Instant) {
        let due = due(&self.services, self.stop.is_some(), now);
        for id in due.restarts {
            self.start_runsv(id);
        }
        for (id, count) in due.rechecks {
            self.check_adopted(id, count);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::runsvs::{respawn, Respawn};
    use super::*;
    use crate::backoff;
    use std::ffi::OsString;
    use std::path::PathBuf;
    use std::time::Duration;

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    fn service(runsv: Runsv) -> Service {
        let mut service = Service::new(OsString::from("a"), PathBuf::from("/service/a"));
        service.runsv = runsv;
        service
    }

    /// A runsv dying quickly again and again is restarted after a doubling delay, and
    /// at once after a stable run; the loop sleeps exactly until the restart is due.
    /// The clock is advanced by hand: no sleep, no process.
    #[test]
    fn a_runsv_dying_quickly_is_restarted_after_a_growing_delay() {
        let t0 = Instant::now();
        let id = (1, 1);
        let mut backoff = backoff::runsv_backoff();
        let mut now = t0;
        let mut delays = Vec::new();
        for _ in 0..8 {
            // Started at `now`, dead 10 ms later.
            let since = now;
            now += ms(10);
            let Respawn::At(until) = respawn(&mut backoff, since, now) else {
                panic!("a quick death restarts at once");
            };
            delays.push((until - now).as_millis());
            let services = HashMap::from([(id, service(Runsv::Delayed { until }))]);
            assert_eq!(earliest(&services, false), Some(until));
            assert_eq!(due(&services, false, until - ms(1)), Due::default());
            assert_eq!(due(&services, false, until).restarts, [id]);
            // During the stop nothing restarts, and nothing wakes svdir for it.
            assert_eq!(earliest(&services, true), None);
            assert_eq!(due(&services, true, until), Due::default());
            now = until;
        }
        assert_eq!(delays, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        // A run of 1 s resets it: the next start is immediate, and so is the next delay
        // back to its first step.
        assert_eq!(respawn(&mut backoff, now, now + ms(1000)), Respawn::Now);
        assert_eq!(
            respawn(&mut backoff, now + ms(1000), now + ms(1010)),
            Respawn::At(now + ms(1110))
        );
    }

    #[test]
    fn adopted_runsvs_are_probed_on_their_schedule_and_idle_means_no_timer() {
        let t0 = Instant::now();
        let adopted = |recheck| {
            service(Runsv::Adopted(Adopted {
                watch: None,
                lock: None,
                dirfd: None,
                recheck,
            }))
        };
        let services = HashMap::from([
            ((1, 1), adopted(Some((t0 + ms(20), 2)))),
            ((1, 2), adopted(None)),
            (
                (1, 3),
                service(Runsv::Child {
                    pid: nix::unistd::Pid::from_raw(7),
                    since: t0,
                }),
            ),
        ]);
        assert_eq!(earliest(&services, false), Some(t0 + ms(20)));
        // Probes go on during the stop: an adopted runsv's exit is seen through them.
        assert_eq!(earliest(&services, true), Some(t0 + ms(20)));
        assert_eq!(due(&services, true, t0 + ms(19)), Due::default());
        assert_eq!(due(&services, true, t0 + ms(20)).rechecks, [((1, 1), 2)]);
        let idle = HashMap::from([((1, 2), adopted(None))]);
        assert_eq!(earliest(&idle, false), None);
    }
}
