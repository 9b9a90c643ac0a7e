//! The service definition: what a service directory says about how to run the service,
//! from `service.yaml` (the native form) or from runit's `run`/`finish`/`log/` files.

use nix::sys::signal::Signal;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Everything runsv needs to know to run one service, resolved at load time.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceDefinition {
    /// The service's name: the base name of its directory.
    pub name: String,
    /// The service directory, as given to runsv.
    pub directory: PathBuf,
    pub form: Form,
    /// The program and its arguments. runit form: `["./run"]`.
    pub command: Vec<String>,
    pub oneshot: bool,
    /// Names of the services this one starts after (siblings in the scan directory).
    pub after: Vec<String>,
    pub environment: Environment,
    pub readiness: Readiness,
    /// Where the command runs. Default: the service directory.
    pub working_directory: PathBuf,
    /// Who the command runs as; `None`: as runsv's own user.
    pub credentials: Option<Credentials>,
    pub stop_signal: Signal,
    /// After this long in `stopping`, the process group gets SIGKILL.
    pub stop_timeout: Duration,
    pub log: LogDestination,
    /// The first delay before restarting a service that keeps dying within a second.
    pub restart_delay: Duration,
    /// The cap of the growing restart delay.
    pub restart_delay_max: Duration,
    /// runit's `./finish`, when the file is readable.
    pub finish: Option<PathBuf>,
    /// A `down` file exists: the service is normally down.
    pub normally_down: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Form {
    /// Defined by this `service.yaml`.
    Yaml(PathBuf),
    /// Defined by runit's `run` script.
    Runit,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Environment {
    /// runit form: runsv's own environment, unchanged.
    Inherit,
    /// YAML form: exactly these variables (`environ`, plus a default PATH when it has none).
    Exactly(Vec<(String, String)>),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Readiness {
    /// Ready as soon as it is spawned.
    Immediate,
    /// Ready when this command exits 0; it is retried every `interval` until then.
    Test {
        command: Vec<String>,
        interval: Duration,
    },
    /// Ready when the service writes a line to this fd (s6's `notification-fd`).
    NotificationFd(i32),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub user_name: String,
    pub uid: u32,
    pub gid: u32,
    pub supplementary_groups: Vec<u32>,
    pub home: PathBuf,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogDestination {
    /// runit's `log/` subservice, fed through a pipe runsv holds for its whole life.
    Service(PathBuf),
    /// Lines to the kernel ring buffer, prefixed with the service name; to runsv's
    /// stderr where `/dev/kmsg` is not writable.
    Kmsg,
    /// The service inherits runsv's stdout and stderr.
    Console,
    /// /dev/null.
    Null,
}

/// A definition that cannot be used, with where and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DefinitionError {
    /// The file (or directory) at fault.
    pub path: PathBuf,
    /// 1-based line, when the fault is inside a file.
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for DefinitionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(
                f,
                "{}: line {}: {}",
                self.path.display(),
                line,
                self.message
            ),
            None => write!(f, "{}: {}", self.path.display(), self.message),
        }
    }
}

impl std::error::Error for DefinitionError {}

impl ServiceDefinition {
    /// Reads the definition of the service in `directory`.
    pub fn load(directory: &Path) -> Result<ServiceDefinition, DefinitionError> {
        let _ = directory;
        unimplemented!("parser being written")
    }
}
