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
    /// Crash-looping when told to stop (runsv::failure::failure says how).
    Failing { part: Part, failure: String },
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
    /// Services whose failures do not count (`on_failure: continue`), in order.
    pub excused: Vec<usize>,
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
    /// Failed when told (runsv writes `down` once stopped, whatever it was before).
    noted: Vec<Vec<Problem>>,
    /// Their failures do not count in the exit status (`on_failure: continue`).
    excused: Vec<bool>,
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
            excused: vec![false; count],
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

    /// The state of a service as it is told to stop: in `error`, or crash-looping.
    pub fn told_state(&mut self, service: usize, part: Part, state: &FullState) {
        let problem = if state.state == ServiceState::Error {
            Problem::Error {
                part,
                reason: state.reason.clone(),
            }
        } else if let Some(failure) = runsv::failure::failing(state, self.began) {
            Problem::Failing { part, failure }
        } else {
            return;
        };
        if let Some(noted) = self.noted.get_mut(service) {
            noted.push(problem);
        }
    }

    /// The service never had a runsv that could run it (its runsv could create no
    /// `supervise/`): an error, for the report.
    pub fn never_ran(&mut self, service: usize, reason: String) {
        if let Some(noted) = self.noted.get_mut(service) {
            noted.push(Problem::Error {
                part: Part::Service,
                reason,
            });
        }
    }

    /// The service's failures do not count in the exit status (`on_failure: continue`).
    pub fn excuse(&mut self, service: usize) {
        if let Some(excused) = self.excused.get_mut(service) {
            *excused = true;
        }
    }

    /// The state of a service at the end (after `ReadFinal`).
    pub fn final_state(&mut self, service: usize, part: Part, state: &FullState) {
        let noted = self.noted.get(service).is_some_and(|n| {
            n.iter().any(|problem| match problem {
                Problem::Error { part: p, .. } | Problem::Failing { part: p, .. } => *p == part,
                Problem::HadToBeKilled(p) => *p == part,
            })
        });
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
        let mut excused = Vec::new();
        for i in 0..self.members.len() {
            if self.killed.get(i).copied().unwrap_or(false) {
                // Named when it was killed.
                failed += 1;
                continue;
            }
            let is_excused = self.excused.get(i).copied().unwrap_or(false);
            let mut counts = false;
            let mut any = false;
            for problem in self
                .noted
                .get(i)
                .into_iter()
                .flatten()
                .chain(self.ending.get(i).into_iter().flatten())
            {
                // A kill is the stop's problem, whatever the service's policy.
                counts |= !is_excused || matches!(problem, Problem::HadToBeKilled(_));
                any = true;
                problems.push((i, problem.clone()));
            }
            if counts {
                failed += 1;
            }
            if any && is_excused {
                excused.push(i);
            }
        }
        Report {
            services: self.members.len(),
            problems,
            failed,
            excused,
        }
    }
}

#[cfg(test)]
#[path = "stop_plan_tests.rs"]
mod tests;
