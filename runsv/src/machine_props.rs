//! Property tests of the machine (issue #6), and the faults they found.

use super::*;

const T0: Duration = Duration::from_secs(1000);

/// The wall clock that goes with a monotonic time. Kept below the year 2100: a timer
/// a billion years away may be fired, but the status stamp of that moment need not be
/// representable.
fn at(monotonic: Duration) -> Now {
    Now {
        monotonic,
        wall: Timestamp {
            seconds: 1_700_000_000 + monotonic.as_secs().min(4_000_000_000),
            nanoseconds: monotonic.subsec_nanos(),
        },
    }
}

/// Found by the event-sequence property: `stop_timeout: 18446744073709551615` (any
/// u64 of seconds loads) made `sv down` abort runsv with "overflow when adding
/// durations" once it had run a second, leaving the service running without a
/// supervisor. Every delay of the definition now saturates into a timer never due.
#[test]
fn delays_of_u64_max_seconds_make_timers_that_never_fire_instead_of_overflowing() {
    let forever = Duration::from_secs(u64::MAX);
    let settings = Settings {
        has_finish: true,
        readiness: ReadinessKind::Test { interval: forever },
        stop_timeout: forever,
        restart_delay: forever,
        restart_delay_max: forever,
        ..Settings::default()
    };
    let later = |seconds| at(T0 + Duration::from_secs(seconds));
    let mut machine = Machine::new(settings, Want::Up, later(0));
    assert_eq!(
        machine.boot(later(0)),
        vec![Action::ControlScript(b'u'), Action::Spawn(Process::Run)]
    );
    let spawned = |process, pid| Event::Spawned {
        process,
        pid,
        starttime: 0,
    };
    assert_eq!(
        machine.on(later(17), spawned(Process::Run, 10)),
        vec![Action::Spawn(Process::Test)]
    );
    machine.on(later(17), spawned(Process::Test, 11));
    // The readiness test fails: the next one is never due.
    let failed = Event::Exited {
        pid: 11,
        status: ExitStatus::Exited(1),
    };
    machine.on(later(18), failed);
    assert_eq!(machine.deadline(), Some(Duration::MAX));
    // `sv down`: the stop timer, then finish's timer, are never due.
    machine.on(later(19), Event::Control(b'd'));
    assert_eq!(machine.state(), ServiceState::Stopping);
    assert_eq!(machine.deadline(), Some(Duration::MAX));
    let killed = Event::Exited {
        pid: 10,
        status: ExitStatus::Signaled(15),
    };
    assert_eq!(
        machine.on(later(20), killed),
        vec![Action::Spawn(Process::Finish)]
    );
    machine.on(later(20), spawned(Process::Finish, 12));
    assert_eq!(machine.state(), ServiceState::Finishing);
    assert_eq!(machine.deadline(), Some(Duration::MAX));
    assert!(machine.on(later(21), Event::Timer).is_empty());
    // Up again, dying fast: the restart delay is never due either.
    machine.on(later(22), Event::Control(b'u'));
    let finished = Event::Exited {
        pid: 12,
        status: ExitStatus::Exited(0),
    };
    assert_eq!(
        machine.on(later(22), finished),
        vec![Action::ControlScript(b'u'), Action::Spawn(Process::Run)]
    );
}

/// Found by the event-sequence property: a logger drained while still starting lost
/// its drain timer when it became ready (a notification line, or its readiness test
/// passing), so one that ignores its closed input was never stopped and runsv never
/// exited; and a readiness test failing during the drain replaced that timer with the
/// test's shorter retry, stopping the logger before its stop timeout.
#[test]
fn a_drained_logger_keeps_its_drain_timer_through_readiness() {
    let stop_timeout = Duration::from_secs(5);
    let log = |readiness| Settings {
        readiness,
        stop_timeout,
        is_log: true,
        ..Settings::default()
    };
    let spawned = |process, pid| Event::Spawned {
        process,
        pid,
        starttime: 0,
    };
    let drain_deadline = T0 + Duration::from_secs(1) + stop_timeout;
    let test = ReadinessKind::Test {
        interval: Duration::from_millis(200),
    };
    for (readiness, ready) in [
        (ReadinessKind::Notification, Event::Ready),
        (
            test,
            Event::Exited {
                pid: 11,
                status: ExitStatus::Exited(0),
            },
        ),
        (
            test,
            Event::Exited {
                pid: 11,
                status: ExitStatus::Exited(1),
            },
        ),
    ] {
        let mut machine = Machine::new(log(readiness), Want::Up, at(T0));
        machine.boot(at(T0));
        machine.on(at(T0), spawned(Process::Run, 10));
        machine.on(at(T0), spawned(Process::Test, 11));
        assert_eq!(machine.state(), ServiceState::Starting);
        machine.on(at(T0 + Duration::from_secs(1)), Event::Drain);
        machine.on(at(T0 + Duration::from_secs(2)), ready.clone());
        assert_eq!(machine.deadline(), Some(drain_deadline), "{ready:?}");
        let stop = machine.on(at(drain_deadline), Event::Timer);
        assert!(
            stop.contains(&Action::Signal {
                target: Target::Group(Process::Run),
                signal: Signal::SIGTERM,
                custom: Some(b't'),
            }),
            "{ready:?}: {stop:?}"
        );
    }
}
