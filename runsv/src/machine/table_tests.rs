//! The machine's table, as s6-supervise's `actions[state][event]`: every state × every
//! event, with the state it leads to and the actions it asks for.

use super::machine_tests::{longrun, notification, oneshot, with_finish};
use super::sim::Sim;
use super::*;

/// A machine brought into `state` the way it happens in life.
fn in_state(state: ServiceState) -> Sim {
    use ServiceState::*;
    let mut h = match state {
        Down => Sim::new(longrun(), Want::Down),
        Waiting => {
            let mut h = Sim::new(longrun(), Want::Down);
            h.event(Event::Dependencies(Dependencies::Waiting(
                vec!["db".into()],
            )));
            h.control(b'u');
            h
        }
        Starting => Sim::new(notification(), Want::Up),
        Running => Sim::new(longrun(), Want::Up),
        Ok => {
            let mut h = Sim::new(oneshot(), Want::Up);
            h.exit_process(Process::Run, ExitStatus::Exited(0));
            h
        }
        Error => {
            let mut h = Sim::new(oneshot(), Want::Up);
            h.exit_process(Process::Run, ExitStatus::Exited(3));
            h
        }
        Respawn => {
            let mut h = Sim::new(longrun(), Want::Up);
            h.advance(100)
                .exit_process(Process::Run, ExitStatus::Exited(1));
            h
        }
        Finishing => {
            let mut h = Sim::new(with_finish(), Want::Up);
            h.advance(100)
                .exit_process(Process::Run, ExitStatus::Exited(1));
            h
        }
        Stopping => {
            let mut h = Sim::new(longrun(), Want::Up);
            h.control(b'd');
            h
        }
    };
    assert_eq!(h.state(), state, "setting up {state}");
    h.actions.clear();
    h
}

/// The events of the table, by column.
const EVENTS: [&str; 13] = [
    "u", "d", "o", "x", "t", "k", "h", "p", "exit", "timer", "ready", "depfail", "term",
];

fn apply(h: &mut Sim, event: &str) {
    match event {
        "exit" => {
            if let Some(pid) = h.machine.pid_of(Process::Run) {
                h.advance(100);
                h.event(Event::Exited {
                    pid,
                    status: ExitStatus::Exited(1),
                });
            } else {
                // A pid the machine does not own changes nothing.
                h.event(Event::Exited {
                    pid: 1,
                    status: ExitStatus::Exited(1),
                });
            }
        }
        "timer" => {
            h.fire_timer();
        }
        "ready" => {
            h.event(Event::Ready);
        }
        "depfail" => {
            h.event(Event::Dependencies(Dependencies::Failed {
                name: "db".into(),
                reason: "exited 1".into(),
            }));
        }
        "term" => {
            h.event(Event::Terminate);
        }
        control => {
            h.control(control.as_bytes()[0]);
        }
    }
}

#[test]
fn every_state_times_every_event() {
    // Rows: the state before; columns: EVENTS; cells: the state after and every action
    // the loop performed, in order (its spawns succeed at once; see `brief`).
    let table: [(ServiceState, [&str; 13]); 9] = [
        (
            ServiceState::Down,
            [
                "running: ctl-u run",
                "down",
                "running: ctl-u run",
                "down: exit",
                "down",
                "down",
                "down",
                "down",
                "down",
                "down",
                "down",
                "down",
                "down: exit",
            ],
        ),
        (
            ServiceState::Waiting,
            [
                "waiting",
                "down",
                "waiting",
                "down: exit",
                "waiting",
                "waiting",
                "waiting",
                "waiting",
                "waiting",
                "waiting",
                "waiting",
                "error",
                "down: exit",
            ],
        ),
        (
            ServiceState::Starting,
            [
                "starting",
                "stopping: TERM>>run(t) CONT>>run ctl-d",
                "starting",
                "stopping: TERM>>run(t) CONT>>run ctl-x",
                "stopping: TERM>>run(t)",
                "starting: KILL>>run(k)",
                "starting: HUP>run(h)",
                "starting: STOP>run(p)",
                "respawn",
                "starting",
                "running: close-notify",
                "starting",
                "stopping: TERM>>run(t) CONT>>run ctl-x",
            ],
        ),
        (
            ServiceState::Running,
            [
                "running",
                "stopping: TERM>>run(t) CONT>>run ctl-d",
                "running",
                "stopping: TERM>>run(t) CONT>>run ctl-x",
                "stopping: TERM>>run(t)",
                "running: KILL>>run(k)",
                "running: HUP>run(h)",
                "running: STOP>run(p)",
                "respawn",
                "running",
                "running",
                "running",
                "stopping: TERM>>run(t) CONT>>run ctl-x",
            ],
        ),
        (
            ServiceState::Ok,
            [
                "starting: ctl-u run",
                "ok",
                "starting: ctl-u run",
                "ok: exit",
                "ok",
                "ok",
                "ok",
                "ok",
                "ok",
                "ok",
                "ok",
                "ok",
                "ok: exit",
            ],
        ),
        (
            ServiceState::Error,
            [
                "starting: ctl-u run",
                "error",
                "starting: ctl-u run",
                "error: exit",
                "error",
                "error",
                "error",
                "error",
                "error",
                "error",
                "error",
                "error",
                "error: exit",
            ],
        ),
        (
            ServiceState::Respawn,
            [
                "running: ctl-u run",
                "down",
                "running: ctl-u run",
                "down: exit",
                "respawn",
                "respawn",
                "respawn",
                "respawn",
                "respawn",
                "running: ctl-u run",
                "respawn",
                "respawn",
                "down: exit",
            ],
        ),
        (
            ServiceState::Finishing,
            [
                "finishing",
                "finishing",
                "finishing",
                "finishing",
                "finishing",
                "finishing: KILL>>finish",
                "finishing",
                "finishing",
                "finishing",
                "finishing: KILL>>finish",
                "finishing",
                "finishing",
                "finishing",
            ],
        ),
        (
            ServiceState::Stopping,
            [
                "stopping",
                "stopping: TERM>>run(t) CONT>>run ctl-d",
                "stopping",
                "stopping: TERM>>run(t) CONT>>run ctl-x",
                "stopping: TERM>>run(t) CONT>>run ctl-d",
                "stopping: KILL>>run(k)",
                "stopping: HUP>run(h)",
                "stopping: STOP>run(p)",
                "down",
                "stopping: KILL>>run",
                "stopping",
                "stopping",
                "stopping: TERM>>run(t) CONT>>run ctl-x",
            ],
        ),
    ];
    for (state, row) in table {
        for (event, expected) in EVENTS.iter().zip(row) {
            let mut h = in_state(state);
            apply(&mut h, event);
            assert_eq!(cell(&h), expected, "{state} × {event}");
            // Invariants in every cell: runit's pid and state byte agree with the
            // processes the machine owns.
            let status = h.machine.status();
            assert_eq!(
                status.pid != 0,
                status.run_state != RunState::Down,
                "{state} × {event}"
            );
            assert_eq!(h.machine.full_state().pid, status.pid);
        }
    }
}

/// An action in the table's shorthand: `ctl-u`, `run` (spawn), `TERM>>run(t)` (to the
/// group, with control/t first), `HUP>run` (to the process), `close-notify`, `exit`.
fn brief(action: &Action) -> String {
    match action {
        Action::Spawn(process) => format!("{process:?}").to_lowercase(),
        Action::Signal {
            target,
            signal,
            custom,
        } => {
            let (to, process) = match target {
                Target::Process(p) => (">", p),
                Target::Group(p) => (">>", p),
            };
            let custom = custom
                .map(|c| format!("({})", c.letter()))
                .unwrap_or_default();
            let name = signal.as_str().trim_start_matches("SIG");
            format!(
                "{name}{to}{}{custom}",
                format!("{process:?}").to_lowercase()
            )
        }
        Action::ControlScript(c) => format!("ctl-{}", c.letter()),
        Action::CloseNotification => "close-notify".into(),
        Action::Exit => "exit".into(),
    }
}

/// A cell of the table: the state after, and the actions if any (`running: ctl-u run`).
fn cell(h: &Sim) -> String {
    let actions: Vec<String> = h.actions.iter().map(brief).collect();
    if actions.is_empty() {
        h.state().to_string()
    } else {
        format!("{}: {}", h.state(), actions.join(" "))
    }
}
