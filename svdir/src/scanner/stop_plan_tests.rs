//! The ordered stop's plan, unit-tested: order, deadline, grace and exit status
//! without a process or a sleep.

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
        excused: Vec::new(),
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
            excused: Vec::new(),
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
        excused: Vec::new(),
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

#[test]
fn a_crash_loop_when_told_fails_the_stop_unless_the_service_is_excused() {
    let t0 = Instant::now();
    let mut p = plan(vec![CHILD, CHILD, CHILD, CHILD], &[], t0);
    p.excuse(1);
    p.excuse(3);
    assert_eq!(p.tick(t0), tell(&[0, 1, 2, 3], true));
    let mut looping = state(ServiceState::Respawn, Some(ExitStatus::Exited(1)), at(999));
    looping.reason = "exit 1; restarting in 4s".to_string();
    looping.restarts = 5;
    // 0 and 1 crash-loop, 2 restarts as asked (no failure); 3 is excused and fine.
    p.told_state(0, Part::Service, &looping);
    p.told_state(1, Part::Service, &looping);
    let mut asked = looping.clone();
    asked.reason = runsv::failure::RESTARTING_AS_ASKED.to_string();
    p.told_state(2, Part::Service, &asked);
    for i in 0..4 {
        p.gone(i);
    }
    p.tick(t0);
    let Some(Effect::Exit(report)) = p.tick(t0).pop() else {
        panic!("no exit");
    };
    let failing = Problem::Failing {
        part: Part::Service,
        failure: "respawn (crash loop, 5 restarts): exit 1; restarting in 4s".to_string(),
    };
    assert_eq!(report.problems, vec![(0, failing.clone()), (1, failing)]);
    assert_eq!((report.failed, report.code()), (1, 1));
    assert_eq!(report.excused, vec![1]);
}

#[test]
fn a_service_that_never_ran_fails_the_stop() {
    let t0 = Instant::now();
    let mut p = plan(vec![member(Kind::None, false), CHILD], &[], t0);
    p.never_ran(0, "no supervise/".to_string());
    assert_eq!(p.tick(t0), tell(&[1], false));
    p.gone(1);
    p.tick(t0);
    let Some(Effect::Exit(report)) = p.tick(t0).pop() else {
        panic!("no exit");
    };
    assert_eq!((report.failed, report.code()), (1, 1));
    // Excused, it does not count.
    let mut p = plan(vec![member(Kind::None, false)], &[], t0);
    p.never_ran(0, "no supervise/".to_string());
    p.excuse(0);
    p.tick(t0);
    let Some(Effect::Exit(report)) = p.tick(t0).pop() else {
        panic!("no exit");
    };
    assert_eq!((report.failed, report.code()), (0, 0));
}
