//! The ordered stop as svdir performs it: the set of services frozen, their `after:`
//! lists read (deps.rs, bounded), then the effects that the plan (stop_plan.rs) returns
//! carried out — runsvs told to exit, states read for the report, runsvs and services
//! killed at the deadline (offspring.rs finds them), the report and the exit status.

use super::runsvs::runsv_pid;
use super::stop_plan::{Effect, Kind, Member, Part, Problem, Report, StopPlan};
use super::{services, Id, Runsv, Service, Svdir};
use crate::backoff;
use crate::deps;
use crate::offspring;
use crate::place::Place;
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use runsv::tai64n::Timestamp;
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::time::Instant;

/// Why a service whose runsv exited EXIT_NO_STATE never ran, for the report.
pub(super) const NO_STATE: &str =
    "its runsv could create supervise/ nowhere (see runsv's message): nothing ran";

pub(super) struct Stopping {
    plan: StopPlan,
    /// The services by their number in the plan (name order), and back.
    ids: Vec<Id>,
    index: HashMap<Id, usize>,
}

impl Stopping {
    pub(super) fn wakeup(&self) -> Option<Instant> {
        self.plan.wakeup()
    }
}

impl Svdir {
    pub(super) fn begin_stop(&mut self, signal: Signal) {
        if self.stop.is_some() {
            return;
        }
        // The deadline counts from the signal: reading the definitions is part of it.
        let deadline = self.sys.now() + self.stop_deadline;
        let mut ids: Vec<Id> = self.services.keys().copied().collect();
        ids.sort_by(|a, b| {
            let name = |id: &Id| self.services.get(id).map(|s| s.name.clone());
            name(a).cmp(&name(b))
        });
        let index: HashMap<Id, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
        let (edges, excused) = self.stop_edges(&ids);
        let members: Vec<Member> = ids
            .iter()
            .map(|id| {
                let service = self.services.get(id);
                Member {
                    kind: match service.map(|s| &s.runsv) {
                        Some(Runsv::Child { .. }) => Kind::Child,
                        Some(Runsv::Adopted(_)) => Kind::Adopted,
                        _ => Kind::None,
                    },
                    told: service.is_some_and(|s| s.told),
                }
            })
            .collect();
        let own_group = self.sys.own_group().is_some();
        let mut plan = StopPlan::new(
            members.clone(),
            &edges,
            deadline,
            Timestamp::now(),
            own_group,
        );
        for i in excused {
            plan.excuse(i);
        }
        for (i, (id, member)) in ids.iter().zip(&members).enumerate() {
            if member.kind == Kind::None {
                if let Some(service) = self.services.get_mut(id) {
                    if matches!(service.runsv, Runsv::Failed) {
                        plan.never_ran(i, NO_STATE.to_string());
                    }
                    service.runsv = Runsv::None;
                }
            }
        }
        for cycle in plan.cycles() {
            let names: Vec<String> = cycle
                .iter()
                .filter_map(|&i| ids.get(i))
                .filter_map(|id| self.services.get(id))
                .map(Service::label)
                .collect();
            say!(
                "dependency cycle among {}: they stop together",
                names.join(", ")
            );
        }
        say!(
            "{}: stopping {} (deadline {})",
            signal.as_str(),
            services(ids.len()),
            backoff::seconds(self.stop_deadline)
        );
        self.stop = Some(Stopping { plan, ids, index });
        self.advance_stop();
    }

    /// The dependencies among `ids` (as (dependent, dependency) indices): `after:` of
    /// each definition, read under the bound of deps.rs. An invalid definition (or
    /// runit's form) has none; unknown names are ignored.
    /// Also which services' failures do not count (`on_failure: continue`).
    fn stop_edges(&self, ids: &[Id]) -> (Vec<(usize, usize)>, Vec<usize>) {
        // Names lead to services as the scan directory shows them now.
        let mut by_name: HashMap<OsString, usize> = HashMap::new();
        for (i, id) in ids.iter().enumerate() {
            if let Some(service) = self.services.get(id).filter(|s| s.present) {
                for name in &service.names {
                    by_name.insert(name.clone(), i);
                }
            }
        }
        let places: Vec<(usize, Place)> = ids
            .iter()
            .enumerate()
            .filter_map(|(i, id)| Some((i, self.locate(*id)?)))
            .collect();
        let bound = deps::bound(self.stop_deadline);
        let read = deps::read(places, bound);
        if read.late > 0 {
            say!(
                "warning: the definitions of {} not read within {}: they stop in no particular order",
                services(read.late),
                backoff::seconds(bound)
            );
        }
        let mut edges = Vec::new();
        let mut excused = Vec::new();
        for (i, stopping) in read.after {
            for dependency in &stopping.after {
                if let Some(&d) = by_name.get(OsStr::new(dependency)) {
                    edges.push((i, d));
                }
            }
            if stopping.excused {
                excused.push(i);
            }
        }
        (edges, excused)
    }

    /// Carries out what the plan says until it has nothing more to say for now.
    pub(super) fn advance_stop(&mut self) {
        loop {
            let Some(stop) = self.stop.as_mut() else {
                return;
            };
            let effects = stop.plan.tick(self.sys.now());
            if effects.is_empty() {
                return;
            }
            for effect in effects {
                self.perform(effect);
            }
        }
    }

    fn perform(&mut self, effect: Effect) {
        let Some(stop) = &self.stop else {
            return;
        };
        let ids = |list: &[usize]| -> Vec<(usize, Id)> {
            list.iter()
                .filter_map(|&i| Some((i, *stop.ids.get(i)?)))
                .collect()
        };
        match effect {
            Effect::Tell { services, group } => {
                let wave = ids(&services);
                self.tell_wave(&wave, group);
            }
            Effect::Kill(services) => {
                let remaining = ids(&services);
                self.kill_remaining(&remaining);
            }
            Effect::GiveUp(services) => {
                for (_, id) in ids(&services) {
                    if let Some(service) = self.services.get_mut(&id) {
                        say!(
                            "{}: runsv did not exit after SIGKILL; giving up on it",
                            service.label()
                        );
                        service.runsv = Runsv::None;
                    }
                }
            }
            Effect::ReadFinal(services) => {
                for (i, id) in ids(&services) {
                    self.read_states(i, id, StopPlan::final_state);
                }
            }
            Effect::Exit(report) => {
                let labels: Vec<String> = stop
                    .ids
                    .iter()
                    .map(|id| {
                        self.services
                            .get(id)
                            .map(Service::label)
                            .unwrap_or_default()
                    })
                    .collect();
                self.exit = Some(say_report(&report, &labels));
            }
        }
    }

    /// Reads the service's and its logger's states into the plan.
    fn read_states(
        &mut self,
        i: usize,
        id: Id,
        into: fn(&mut StopPlan, usize, Part, &runsv::supervise::FullState),
    ) {
        let Some(place) = self.locate(id) else {
            return;
        };
        let Some(stop) = self.stop.as_mut() else {
            return;
        };
        for part in Part::BOTH {
            if let Some(state) = place.state(part.subdirectory()) {
                into(&mut stop.plan, i, part, &state);
            }
        }
    }

    /// Tells every runsv of `wave` to exit, after reading every state: a runsv that has
    /// been told wakes up and competes with svdir for the CPU. With `group`, svdir's
    /// children among them are told with one SIGTERM to svdir's process group (svdir's
    /// own copy arrives on its signalfd and changes nothing, a stop being under way).
    fn tell_wave(&mut self, wave: &[(usize, Id)], group: bool) {
        for &(i, id) in wave {
            self.read_states(i, id, StopPlan::told_state);
        }
        let by_group = group
            && match self.sys.own_group() {
                Some(own) => self.sys.killpg(own, Signal::SIGTERM).is_ok(),
                None => false,
            };
        if by_group {
            for (_, id) in wave {
                if let Some(service) = self.services.get_mut(id) {
                    if matches!(service.runsv, Runsv::Child { .. }) {
                        service.told = true;
                    }
                }
            }
        }
        for &(_, id) in wave {
            if self.services.get(&id).is_some_and(|s| !s.told) {
                self.tell_exit(id);
            }
        }
    }

    /// Its runsv exited EXIT_NO_STATE during the stop: it never ran.
    pub(super) fn stop_never_ran(&mut self, id: Id) {
        if let Some(stop) = self.stop.as_mut() {
            if let Some(&i) = stop.index.get(&id) {
                stop.plan.never_ran(i, NO_STATE.to_string());
            }
        }
    }

    pub(super) fn stop_gone(&mut self, id: Id) {
        if let Some(stop) = self.stop.as_mut() {
            if let Some(&i) = stop.index.get(&id) {
                stop.plan.gone(i);
            }
        }
    }

    /// The deadline: SIGKILL to every runsv still running and to its service's
    /// process group (and its logger's): those its `supervise/state` names, checked by
    /// pid and start time, and the children the runsv has (see offspring.rs), found
    /// while every runsv to be killed is stopped.
    fn kill_remaining(&mut self, remaining: &[(usize, Id)]) {
        say!(
            "stop deadline ({}) reached: killing {}",
            backoff::seconds(self.stop_deadline),
            services(remaining.len())
        );
        let runsvs: Vec<(Id, Option<Pid>)> = remaining
            .iter()
            .map(|(_, id)| (*id, self.services.get(id).and_then(runsv_pid)))
            .collect();
        for pid in runsvs.iter().filter_map(|(_, pid)| *pid) {
            let _ = self.sys.kill(pid, Signal::SIGSTOP);
        }
        let parents = runsvs
            .iter()
            .filter_map(|(_, pid)| pid.map(|p| p.as_raw() as u32))
            .collect();
        let children = offspring::children(&parents);
        for (id, runsv_pid) in runsvs {
            let location = self.locate(id);
            let mut killed_pids = Vec::new();
            if let Some(place) = &location {
                for part in Part::BOTH {
                    if let Some(state) = place.state(part.subdirectory()) {
                        if state.pid != 0
                            && runsv::proc::start_time(state.pid) == Some(state.starttime)
                        {
                            let pid = Pid::from_raw(state.pid as i32);
                            // The group the service is in (a member, not its leader).
                            if let Some(group) = runsv::launch::group_of(pid) {
                                let _ = self.sys.killpg(group, Signal::SIGKILL);
                            }
                            let _ = self.sys.kill(pid, Signal::SIGKILL);
                            killed_pids.push(state.pid);
                        }
                    }
                }
            }
            if let Some(runsv) = runsv_pid {
                let runsv = runsv.as_raw() as u32;
                for &child in children.get(&runsv).into_iter().flatten() {
                    if offspring::kill_child(runsv, child) && !killed_pids.contains(&child) {
                        killed_pids.push(child);
                    }
                }
                let _ = self.sys.kill(Pid::from_raw(runsv as i32), Signal::SIGKILL);
            }
            let Some(service) = self.services.get_mut(&id) else {
                continue;
            };
            let pids: Vec<String> = killed_pids.iter().map(u32::to_string).collect();
            say!(
                "{}: killed at the stop deadline (runsv {}, service {})",
                service.label(),
                runsv_pid.map_or("unknown".to_string(), |p| p.to_string()),
                if pids.is_empty() {
                    "none running".to_string()
                } else {
                    pids.join(" ")
                }
            );
            if !matches!(service.runsv, Runsv::Child { .. }) {
                // Not our child: nothing to reap (the plan counts it gone).
                service.runsv = Runsv::None;
            }
        }
    }
}

/// The stop's last lines; the exit status.
fn say_report(report: &Report, labels: &[String]) -> i32 {
    for (i, problem) in &report.problems {
        let service = labels.get(*i).map(String::as_str).unwrap_or_default();
        let label = |part: &Part| match part {
            Part::Service => service.to_string(),
            Part::Log => format!("{service}/log"),
        };
        let excused = if report.excused.contains(i) {
            " (on_failure: continue: not counted)"
        } else {
            ""
        };
        match problem {
            Problem::Error { part, reason } => {
                say!("{}: ended in error: {reason}{excused}", label(part))
            }
            Problem::Failing { part, failure } => say!(
                "{}: was failing when the stop began: {failure}{excused}",
                label(part)
            ),
            Problem::HadToBeKilled(part) => say!(
                "{}: had to be killed (SIGKILL after its stop timeout)",
                label(part)
            ),
        }
    }
    if report.failed == 0 {
        say!("stopped {} cleanly", services(report.services));
    } else {
        say!(
            "stopped {}; {} ended in error or had to be killed",
            services(report.services),
            report.failed
        );
    }
    report.code()
}
