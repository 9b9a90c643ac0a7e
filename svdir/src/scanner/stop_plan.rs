//! The ordered stop as a plan that does no I/O, as init's shutdown.rs: svdir's loop
//! feeds it the time, the runsv processes that are gone and the states it reads, and
//! performs the effects it returns (tell these runsvs to exit, kill these, exit with
//! this status). With the clock and the processes outside, the order, the deadline, the
//! grace after it and the exit status are unit-tested without a process or a sleep.
//!
//! Services are numbered `0..count` (svdir numbers them in name order, so the report
//! is in name order too).

use crate::order::Plan as Order;
use nix::sys::signal::Signal;
use runsv::supervise::{ExitStatus, FullState, ServiceState};
use runsv::tai64n::Timestamp;
use std::time::{Duration, Instant};

/// After the deadline's SIGKILLs, how long to wait for the killed runsv to be reaped.
pub const KILL_GRACE: Duration = Duration::from_secs(1);

/// What svdir has of a service's runsv when the stop begins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// svdir's child: its exit is reaped, and a SIGTERM to svdir's group reaches it.
    Child,
    /// Adopted (not svdir's child): nothing to reap, so it is gone once killed.
    Adopted,
    /// No runsv running (a restart pending, queued, none): gone from the start.
    None,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Member {
    pub kind: Kind,
    /// Told to exit before the stop (its entry was removed): never told again.
    pub told: bool,
}

/// The service itself, or its `log/` service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Service,
    Log,
}

impl Part {
    pub const BOTH: [Part; 2] = [Part::Service, Part::Log];

    /// Where its `supervise/` is, relative to the service directory.
    pub fn subdirectory(self) -> &'static str {
        match self {
            Part::Service => "",
            Part::Log => "log/",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// In `error` when told to stop, or at the end.
    Error { part: Part, reason: String },
    /// Its final state records a SIGKILL from this stop (after its stop timeout).
    HadToBeKilled(Part),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub services: usize,
    /// One line each, by service, in service order.
    pub problems: Vec<(usize, Problem)>,
    /// Services that ended in error or had to be killed (at the deadline included).
    pub failed: usize,
}

impl Report {
    /// svdir's exit status.
    pub fn code(&self) -> i32 {
        if self.failed == 0 {
            0
        } else {
            1
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Read the state of each (reported back with `told_state`), then tell each runsv
    /// to exit; `group`: the children among them with one SIGTERM to svdir's process
    /// group (each on its own if that fails).
    Tell {
        services: Vec<usize>,
        group: bool,
    },
    /// The deadline passed: SIGKILL these runsvs and their services.
    Kill(Vec<usize>),
    /// Killed, and not reaped within `KILL_GRACE`: give up on them.
    GiveUp(Vec<usize>),
    /// Every runsv is gone: read the final states of these (reported back with
    /// `final_state`) before the next tick.
    ReadFinal(Vec<usize>),
    Exit(Report),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Telling,
    /// After the deadline's kills, until the killed runsvs are reaped.
    Grace {
        until: Instant,
    },
    /// The final states are being read.
    Final,
    Done,
}

#[derive(Debug)]
pub struct StopPlan {
    order: Order,
    members: Vec<Member>,
    /// Told by this stop (or before it).
    told: Vec<bool>,
    killed: Vec<bool>,
    /// In `error` when told (runsv writes `down` once stopped, whatever it was before).
    noted: Vec<Vec<(Part, String)>>,
    ending: Vec<Vec<Problem>>,
    deadline: Instant,
    /// When the stop began on the clock of supervise/state: a SIGKILL recorded before
    /// it is not this stop's.
    began: Timestamp,
    /// svdir leads its process group, so one signal to it reaches its runsv children.
    own_group: bool,
    phase: Phase,
}

impl StopPlan {
    /// `edges`: (dependent, dependency) pairs, as `order::Plan` takes them.
    pub fn new(
        members: Vec<Member>,
        edges: &[(usize, usize)],
        deadline: Instant,
        began: Timestamp,
        own_group: bool,
    ) -> StopPlan {
        let count = members.len();
        let mut order = Order::new(count, edges);
        for (i, member) in members.iter().enumerate() {
            if member.kind == Kind::None {
                order.mark_gone(i);
            }
        }
        StopPlan {
            order,
            told: members.iter().map(|m| m.told).collect(),
            members,
            killed: vec![false; count],
            noted: vec![Vec::new(); count],
            ending: vec![Vec::new(); count],
            deadline,
            began,
            own_group,
            phase: Phase::Telling,
        }
    }

    /// The cycles of the dependency graph, for messages.
    pub fn cycles(&self) -> Vec<Vec<usize>> {
        self.order.cycles()
    }

    /// The runsv of `service` is gone (reaped, or an adopted one found gone).
    pub fn gone(&mut self, service: usize) {
        self.order.mark_gone(service);
    }

    /// The state of a service as it is told to stop.
    pub fn told_state(&mut self, service: usize, part: Part, state: &FullState) {
        if state.state == ServiceState::Error {
            if let Some(noted) = self.noted.get_mut(service) {
                noted.push((part, state.reason.clone()));
            }
        }
    }

    /// The state of a service at the end (after `ReadFinal`).
    pub fn final_state(&mut self, service: usize, part: Part, state: &FullState) {
        let noted = self
            .noted
            .get(service)
            .is_some_and(|n| n.iter().any(|(p, _)| *p == part));
        let problem = if state.state == ServiceState::Error && !noted {
            Problem::Error {
                part,
                reason: state.reason.clone(),
            }
        } else if state.last_exit == Some(ExitStatus::Signaled(Signal::SIGKILL as i32))
            && state.since >= self.began
        {
            Problem::HadToBeKilled(part)
        } else {
            return;
        };
        if let Some(ending) = self.ending.get_mut(service) {
            ending.push(problem);
        }
    }

    /// When the loop must wake up even if nothing happens.
    pub fn wakeup(&self) -> Option<Instant> {
        match self.phase {
            Phase::Telling => Some(self.deadline),
            Phase::Grace { until } => Some(until),
            Phase::Final | Phase::Done => None,
        }
    }

    fn remaining(&self) -> Vec<usize> {
        (0..self.members.len())
            .filter(|&i| !self.order.is_gone(i))
            .collect()
    }

    /// What to do now. Called until it returns nothing: each call gives one step.
    pub fn tick(&mut self, now: Instant) -> Vec<Effect> {
        match self.phase {
            Phase::Done => return Vec::new(),
            Phase::Final => {
                self.phase = Phase::Done;
                return vec![Effect::Exit(self.report())];
            }
            Phase::Telling | Phase::Grace { .. } if self.order.done() => {
                self.phase = Phase::Final;
                let unkilled = (0..self.members.len())
                    .filter(|&i| !self.killed.get(i).copied().unwrap_or(false))
                    .collect();
                return vec![Effect::ReadFinal(unkilled)];
            }
            Phase::Grace { until } => {
                if now < until {
                    return Vec::new();
                }
                let remaining = self.remaining();
                for &i in &remaining {
                    self.order.mark_gone(i);
                }
                return vec![Effect::GiveUp(remaining)];
            }
            Phase::Telling => {}
        }
        if now >= self.deadline {
            let remaining = self.remaining();
            for &i in &remaining {
                if let Some(killed) = self.killed.get_mut(i) {
                    *killed = true;
                }
                // Not svdir's child: nothing to reap, so nothing to wait for.
                if self.members.get(i).is_some_and(|m| m.kind != Kind::Child) {
                    self.order.mark_gone(i);
                }
            }
            self.phase = Phase::Grace {
                until: now + KILL_GRACE,
            };
            return vec![Effect::Kill(remaining)];
        }
        loop {
            let ready = self.order.next();
            if ready.is_empty() {
                return Vec::new();
            }
            let wave: Vec<usize> = ready
                .into_iter()
                .filter(|&i| !self.told.get(i).copied().unwrap_or(true))
                .collect();
            if wave.is_empty() {
                continue;
            }
            let group = self.by_group(&wave);
            for &i in &wave {
                if let Some(told) = self.told.get_mut(i) {
                    *told = true;
                }
            }
            return vec![Effect::Tell {
                services: wave,
                group,
            }];
        }
    }

    /// Whether one SIGTERM to svdir's process group tells exactly the children of
    /// `wave`: svdir leads its group (its runsv children are in it, their services
    /// are not), the wave has more than one child, and no child outside it is still
    /// to be told (no dependency holds one back).
    ///
    /// Why: one SIGTERM per runsv means a thousand system calls, and every runsv
    /// woken by one competes with svdir for the CPU while it stops its service; on 2
    /// cores the last of 1000 signals left svdir over a second after the first.
    fn by_group(&self, wave: &[usize]) -> bool {
        let is_child = |i: usize| self.members.get(i).is_some_and(|m| m.kind == Kind::Child);
        let children = wave.iter().filter(|&&i| is_child(i)).count();
        let held_back = (0..self.members.len()).any(|i| {
            is_child(i)
                && !self.order.is_gone(i)
                && !self.told.get(i).copied().unwrap_or(true)
                && !wave.contains(&i)
        });
        self.own_group && children >= 2 && !held_back
    }

    fn report(&self) -> Report {
        let mut problems = Vec::new();
        let mut failed = 0;
        for i in 0..self.members.len() {
            if self.killed.get(i).copied().unwrap_or(false) {
                // Named when it was killed.
                failed += 1;
                continue;
            }
            let before = problems.len();
            for (part, reason) in self.noted.get(i).into_iter().flatten() {
                problems.push((
                    i,
                    Problem::Error {
                        part: *part,
                        reason: reason.clone(),
                    },
                ));
            }
            for problem in self.ending.get(i).into_iter().flatten() {
                problems.push((i, problem.clone()));
            }
            if problems.len() > before {
                failed += 1;
            }
        }
        Report {
            services: self.members.len(),
            problems,
            failed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use runsv::supervise::Want;

    const DEADLINE: Duration = Duration::from_secs(90);

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    const fn member(kind: Kind, told: bool) -> Member {
        Member { kind, told }
    }
    const CHILD: Member = member(Kind::Child, false);
    const ADOPTED: Member = member(Kind::Adopted, false);

    fn state(state: ServiceState, last_exit: Option<ExitStatus>, since: Timestamp) -> FullState {
        FullState {
            state,
            want: Want::Down,
            pid: 0,
            starttime: 0,
            since,
            ready_since: None,
            last_exit,
            restarts: 0,
            oneshot: false,
            reason: if state == ServiceState::Error {
                "broken".to_string()
            } else {
                String::new()
            },
            status: None,
        }
    }

    fn at(seconds: u64) -> Timestamp {
        Timestamp {
            seconds,
            nanoseconds: 0,
        }
    }

    /// A stop begun at `t0` (wall clock: second 1000) in svdir's own process group.
    fn plan(members: Vec<Member>, edges: &[(usize, usize)], t0: Instant) -> StopPlan {
        StopPlan::new(members, edges, t0 + DEADLINE, at(1000), true)
    }

    fn tell(services: &[usize], group: bool) -> Vec<Effect> {
        vec![Effect::Tell {
            services: services.to_vec(),
            group,
        }]
    }

    fn clean(services: usize) -> Vec<Effect> {
        vec![Effect::Exit(Report {
            services,
            problems: Vec::new(),
            failed: 0,
        })]
    }

    #[test]
    fn dependents_are_told_first_and_a_clean_stop_exits_0() {
        let t0 = Instant::now();
        // 1 after 0, 2 after 1.
        let mut p = plan(vec![CHILD, CHILD, CHILD], &[(1, 0), (2, 1)], t0);
        assert_eq!(p.wakeup(), Some(t0 + DEADLINE));
        assert_eq!(p.tick(t0), tell(&[2], false));
        assert_eq!(p.tick(t0), vec![]);
        p.gone(2);
        assert_eq!(p.tick(t0 + ms(10)), tell(&[1], false));
        p.gone(1);
        assert_eq!(p.tick(t0 + ms(20)), tell(&[0], false));
        assert_eq!(p.tick(t0 + ms(20)), vec![]);
        p.gone(0);
        assert_eq!(p.tick(t0 + ms(30)), vec![Effect::ReadFinal(vec![0, 1, 2])]);
        assert_eq!(p.wakeup(), None);
        p.final_state(0, Part::Service, &state(ServiceState::Down, None, at(1001)));
        assert_eq!(p.tick(t0 + ms(30)), clean(3));
        assert_eq!(p.tick(t0 + ms(30)), vec![]);
    }

    #[test]
    fn nothing_to_stop_exits_at_once() {
        let t0 = Instant::now();
        let mut p = plan(Vec::new(), &[], t0);
        assert_eq!(p.tick(t0), vec![Effect::ReadFinal(vec![])]);
        assert_eq!(p.tick(t0), clean(0));
    }

    #[test]
    fn one_signal_to_the_group_only_when_it_reaches_exactly_the_wave() {
        let t0 = Instant::now();
        // Unrelated children: the whole group at once.
        let mut p = plan(vec![CHILD, CHILD, CHILD], &[], t0);
        assert_eq!(p.tick(t0), tell(&[0, 1, 2], true));

        // A child held back by its dependent: one each.
        let mut p = plan(vec![CHILD, CHILD, CHILD], &[(1, 0)], t0);
        assert_eq!(p.tick(t0), tell(&[1, 2], false));
        p.gone(1);
        // A single child is told on its own.
        assert_eq!(p.tick(t0), tell(&[0], false));

        // Adopted runsvs are not in svdir's group: they do not count as children.
        let mut p = plan(vec![CHILD, ADOPTED, ADOPTED], &[], t0);
        assert_eq!(p.tick(t0), tell(&[0, 1, 2], false));
        let mut p = plan(vec![CHILD, CHILD, ADOPTED], &[], t0);
        assert_eq!(p.tick(t0), tell(&[0, 1, 2], true));

        // Not leading its group, svdir never signals it.
        let mut p = StopPlan::new(vec![CHILD, CHILD], &[], t0 + DEADLINE, at(1000), false);
        assert_eq!(p.tick(t0), tell(&[0, 1], false));
    }

    #[test]
    fn a_runsv_told_before_the_stop_or_already_gone_is_not_told_again() {
        let t0 = Instant::now();
        let removed = member(Kind::Child, true);
        let none = member(Kind::None, false);
        // 0 after 1 and 2: 1 (already told) and 2 (no runsv) do not hold anything up,
        // and a child told before is not held back.
        let mut p = plan(vec![CHILD, removed, none, CHILD], &[(0, 1), (0, 2)], t0);
        assert_eq!(p.tick(t0), tell(&[0, 3], true));
        p.gone(0);
        // 1 is ready in the order, but was told already.
        assert_eq!(p.tick(t0), vec![]);
        p.gone(3);
        p.gone(1);
        assert_eq!(p.tick(t0), vec![Effect::ReadFinal(vec![0, 1, 2, 3])]);
    }

    #[test]
    fn a_cycle_is_told_together() {
        let t0 = Instant::now();
        let mut p = plan(vec![CHILD, CHILD, CHILD], &[(0, 1), (1, 0), (2, 0)], t0);
        assert_eq!(p.cycles(), vec![vec![0, 1]]);
        assert_eq!(p.tick(t0), tell(&[2], false));
        p.gone(2);
        assert_eq!(p.tick(t0), tell(&[0, 1], true));
    }

    #[test]
    fn the_deadline_kills_what_is_left_and_waits_a_grace_for_children() {
        let t0 = Instant::now();
        // 1 after 0; 1 never exits, 2 (adopted) neither.
        let mut p = plan(vec![CHILD, CHILD, ADOPTED], &[(1, 0)], t0);
        assert_eq!(p.tick(t0), tell(&[1, 2], false));
        assert_eq!(p.tick(t0 + DEADLINE - ms(1)), vec![]);
        let t1 = t0 + DEADLINE;
        assert_eq!(p.tick(t1), vec![Effect::Kill(vec![0, 1, 2])]);
        // Nothing is told after the deadline; the adopted one has nothing to reap.
        assert_eq!(p.wakeup(), Some(t1 + KILL_GRACE));
        assert_eq!(p.tick(t1), vec![]);
        p.gone(0);
        assert_eq!(p.tick(t1 + ms(5)), vec![]);
        p.gone(1);
        assert_eq!(p.tick(t1 + ms(10)), vec![Effect::ReadFinal(vec![])]);
        assert_eq!(
            p.tick(t1 + ms(10)),
            vec![Effect::Exit(Report {
                services: 3,
                problems: Vec::new(),
                failed: 3,
            })]
        );
    }

    #[test]
    fn a_killed_runsv_never_reaped_is_given_up_after_the_grace() {
        let t0 = Instant::now();
        let mut p = plan(vec![CHILD, CHILD], &[], t0);
        assert_eq!(p.tick(t0), tell(&[0, 1], true));
        p.gone(0);
        let t1 = t0 + DEADLINE + ms(3);
        assert_eq!(p.tick(t1), vec![Effect::Kill(vec![1])]);
        assert_eq!(p.tick(t1 + KILL_GRACE - ms(1)), vec![]);
        assert_eq!(p.tick(t1 + KILL_GRACE), vec![Effect::GiveUp(vec![1])]);
        assert_eq!(p.tick(t1 + KILL_GRACE), vec![Effect::ReadFinal(vec![0])]);
        let Some(Effect::Exit(report)) = p.tick(t1 + KILL_GRACE).pop() else {
            panic!("no exit");
        };
        assert_eq!((report.failed, report.code()), (1, 1));
    }

    #[test]
    fn errors_when_told_and_at_the_end_and_kills_after_the_stop_timeout() {
        let t0 = Instant::now();
        let mut p = plan(vec![CHILD, CHILD, CHILD, CHILD], &[], t0);
        assert_eq!(p.tick(t0), tell(&[0, 1, 2, 3], true));
        let error = state(ServiceState::Error, None, at(999));
        let down = state(ServiceState::Down, None, at(1001));
        // 0 in error when told (its final state says down: runsv wrote that after x).
        p.told_state(0, Part::Service, &error);
        p.told_state(0, Part::Log, &down);
        p.told_state(1, Part::Service, &down);
        for i in 0..4 {
            p.gone(i);
        }
        assert_eq!(p.tick(t0), vec![Effect::ReadFinal(vec![0, 1, 2, 3])]);
        p.final_state(0, Part::Service, &down);
        // 1's logger ended in error; 2 was SIGKILLed by runsv during this stop; 3 was
        // SIGKILLed once before the stop began, which is not this stop's.
        p.final_state(1, Part::Log, &error);
        let sigkill = Some(ExitStatus::Signaled(9));
        p.final_state(
            2,
            Part::Service,
            &state(ServiceState::Down, sigkill, at(1000)),
        );
        p.final_state(
            3,
            Part::Service,
            &state(ServiceState::Down, sigkill, at(999)),
        );
        let broken = |part| Problem::Error {
            part,
            reason: "broken".to_string(),
        };
        let problems = vec![
            (0, broken(Part::Service)),
            (1, broken(Part::Log)),
            (2, Problem::HadToBeKilled(Part::Service)),
        ];
        let report = Report {
            services: 4,
            problems,
            failed: 3,
        };
        assert_eq!(p.tick(t0), vec![Effect::Exit(report)]);
    }

    #[test]
    fn an_error_noted_when_told_is_reported_once() {
        let t0 = Instant::now();
        let mut p = plan(vec![CHILD], &[], t0);
        p.tick(t0);
        let error = state(ServiceState::Error, None, at(999));
        p.told_state(0, Part::Service, &error);
        p.gone(0);
        p.tick(t0);
        p.final_state(0, Part::Service, &error);
        let Some(Effect::Exit(report)) = p.tick(t0).pop() else {
            panic!("no exit");
        };
        assert_eq!(report.problems.len(), 1);
        assert_eq!(report.failed, 1);
    }
}
