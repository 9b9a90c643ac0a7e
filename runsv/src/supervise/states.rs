//! The words of `supervise/state` that sv, svdir and runsv share: the state a service
//! is in, what it is wanted to be, and how its process ended — each with its name in
//! the file and for people.

use std::fmt;

/// The full state of a service, beyond what runit's status can say.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ServiceState {
    /// Not wanted up.
    Down,
    /// Wanted up; waiting for dependencies (named in the reason).
    Waiting,
    /// Spawned; readiness not yet confirmed (a oneshot stays here until it exits).
    Starting,
    /// Up and ready.
    Running,
    /// A oneshot that exited 0.
    Ok,
    /// Cannot run; the reason says why.
    Error,
    /// Exited; a restart is scheduled.
    Respawn,
    /// `finish` is running.
    Finishing,
    /// The stop signal was sent; waiting for the process to exit.
    Stopping,
}

impl ServiceState {
    pub const ALL: [ServiceState; 9] = [
        ServiceState::Down,
        ServiceState::Waiting,
        ServiceState::Starting,
        ServiceState::Running,
        ServiceState::Ok,
        ServiceState::Error,
        ServiceState::Respawn,
        ServiceState::Finishing,
        ServiceState::Stopping,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ServiceState::Down => "down",
            ServiceState::Waiting => "waiting",
            ServiceState::Starting => "starting",
            ServiceState::Running => "running",
            ServiceState::Ok => "ok",
            ServiceState::Error => "error",
            ServiceState::Respawn => "respawn",
            ServiceState::Finishing => "finishing",
            ServiceState::Stopping => "stopping",
        }
    }

    pub fn from_name(name: &str) -> Option<ServiceState> {
        ServiceState::ALL.into_iter().find(|s| s.name() == name)
    }
}

impl fmt::Display for ServiceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    Exited(i32),
    Signaled(i32),
    /// A process runsv adopted from a killed predecessor ended: it was not runsv's
    /// child, so the kernel gave its exit status to whoever reaped it.
    Unknown,
}

impl ExitStatus {
    /// runit's `finish` arguments: the exit code or -1, and the signal number or 0.
    pub fn finish_arguments(self) -> (i32, i32) {
        match self {
            ExitStatus::Exited(code) => (code, 0),
            ExitStatus::Signaled(signal) => (-1, signal),
            ExitStatus::Unknown => (-1, 0),
        }
    }

    pub fn success(self) -> bool {
        self == ExitStatus::Exited(0)
    }

    /// `exit 3` or `signal 9`: the form of the `last_exit` field.
    pub fn to_field(self) -> String {
        match self {
            ExitStatus::Exited(code) => format!("exit {code}"),
            ExitStatus::Signaled(signal) => format!("signal {signal}"),
            ExitStatus::Unknown => "unknown".to_string(),
        }
    }

    pub fn parse_field(text: &str) -> Option<ExitStatus> {
        if text == "unknown" {
            return Some(ExitStatus::Unknown);
        }
        let (kind, number) = text.split_once(' ')?;
        let number = number.parse().ok()?;
        match kind {
            "exit" => Some(ExitStatus::Exited(number)),
            "signal" => Some(ExitStatus::Signaled(number)),
            _ => None,
        }
    }
}

impl fmt::Display for ExitStatus {
    /// For people: `exited 3`, `killed by SIGKILL`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ExitStatus::Exited(code) => write!(f, "exited {code}"),
            ExitStatus::Signaled(signal) => match crate::signals::name_of(signal) {
                Some(name) => write!(f, "killed by SIG{name}"),
                None => write!(f, "killed by signal {signal}"),
            },
            ExitStatus::Unknown => write!(f, "ended (exit status unknown: adopted)"),
        }
    }
}

/// What the service is wanted to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Want {
    Up,
    Down,
    /// runsv exits once the service is down.
    Exit,
}

impl Want {
    pub const ALL: [Want; 3] = [Want::Up, Want::Down, Want::Exit];

    pub fn name(self) -> &'static str {
        match self {
            Want::Up => "up",
            Want::Down => "down",
            Want::Exit => "exit",
        }
    }
    pub fn from_name(name: &str) -> Option<Want> {
        Want::ALL.into_iter().find(|w| w.name() == name)
    }
    /// The byte of runit's status: want exit is stored as `d`.
    pub fn status_byte(self) -> u8 {
        match self {
            Want::Up => b'u',
            Want::Down | Want::Exit => b'd',
        }
    }
}
