//! The service definition: what a service directory says about how to run the service,
//! from `service.yaml` (the native form) or from runit's `run`/`finish`/`log/` files.

use crate::reader::{self, Links};
use nix::sys::signal::Signal;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub mod accounts;
pub mod controls;
mod nesting;
mod runit;
mod words;
mod yaml;

#[cfg(test)]
mod props;
#[cfg(test)]
mod test_support;

pub use controls::ProcessControls;
pub use words::split_words;

/// The PATH of a YAML service whose `environ` sets none: the usual system directories,
/// since an empty PATH would make every `exec` of a bare program name fail.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
pub const DEFAULT_STOP_SIGNAL: Signal = Signal::SIGTERM;
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_RESTART_DELAY: Duration = Duration::from_secs(1);
pub const DEFAULT_RESTART_DELAY_MAX: Duration = Duration::from_secs(60);
pub const DEFAULT_TEST_INTERVAL: Duration = Duration::from_millis(200);

/// Everything runsv needs to know to run one service, resolved at load time.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceDefinition {
    /// The service's name: the base name of its directory (U+FFFD where it is not UTF-8).
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
    /// Limits, nice, umask and environment files (YAML only; none for runit's form).
    pub controls: ProcessControls,
    pub stop_signal: Signal,
    /// After this long in `stopping`, the process group gets SIGKILL.
    pub stop_timeout: Duration,
    pub log: LogDestination,
    /// How many bytes of recent output runsv keeps in `supervise/tail` (0: none).
    pub log_tail: u64,
    /// The first delay before restarting a service that keeps dying within a second.
    pub restart_delay: Duration,
    /// The cap of the growing restart delay.
    pub restart_delay_max: Duration,
    /// runit's `./finish`, when the file is readable.
    pub finish: Option<PathBuf>,
    /// A `down` file exists: the service is normally down.
    pub normally_down: bool,
    /// What the service's failure does to the tree; None: the tree's default
    /// (`RUNTREE_ON_FAILURE`, see crate::failure).
    pub on_failure: Option<crate::failure::OnFailure>,
    /// Resource limits of the service's cgroup (YAML only; see cgroup/limits.rs).
    pub limits: crate::cgroup::Limits,
    /// What a stop signals: the service's group, or only its main process.
    pub kill_mode: KillMode,
}

/// What the stop signal (and the kill after `stop_timeout`) reaches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KillMode {
    /// Every process of the service: its cgroup, or else the process group it is in.
    /// The service is down once the cgroup is empty.
    #[default]
    Group,
    /// The main process alone (systemd's KillMode=process, runit's own way): what it
    /// started keeps running, and the service is down once that process has exited.
    /// For sshd, whose sessions are its children: `sv restart sshd` over ssh must not
    /// end the session typing it.
    Process,
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

/// Where users and groups are looked up. Tests point these at fixture files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SystemFiles {
    pub passwd: PathBuf,
    pub group: PathBuf,
    /// The environment init saved (crate::container_env), for `container_env`.
    pub environment: PathBuf,
}

impl Default for SystemFiles {
    fn default() -> SystemFiles {
        SystemFiles {
            passwd: PathBuf::from("/etc/passwd"),
            group: PathBuf::from("/etc/group"),
            environment: crate::container_env::dir(),
        }
    }
}

impl ServiceDefinition {
    /// Reads the definition of the service in `directory`.
    pub fn load(directory: &Path) -> Result<ServiceDefinition, DefinitionError> {
        ServiceDefinition::load_with(directory, &SystemFiles::default())
    }

    /// As [`ServiceDefinition::load`], looking users and groups up in `system_files`.
    pub fn load_with(
        directory: &Path,
        system_files: &SystemFiles,
    ) -> Result<ServiceDefinition, DefinitionError> {
        match fs::metadata(directory) {
            Ok(metadata) if metadata.is_dir() => {}
            Ok(_) => return Err(directory_error(directory, "not a directory".to_string())),
            Err(error) => {
                return Err(directory_error(
                    directory,
                    format!("cannot read the service directory: {error}"),
                ))
            }
        }
        let name = service_name(directory)?;
        let yaml_path = directory.join("service.yaml");
        let has_yaml = entry_exists(&yaml_path)?;
        let has_run = entry_exists(&directory.join("run"))?;
        let facts = DirectoryFacts::read(directory)?;
        match (has_yaml, has_run) {
            (true, true) => Err(directory_error(
                directory,
                "both service.yaml and run define this service; remove one".to_string(),
            )),
            (true, false) => yaml::load(directory, &yaml_path, name, facts, system_files),
            (false, true) => runit::load(directory, name, facts),
            (false, false) => Err(directory_error(
                directory,
                "no service.yaml or run: nothing defines this service".to_string(),
            )),
        }
    }
}

/// What both forms take from the service directory besides their own definition files.
struct DirectoryFacts {
    /// Present when `finish` can be opened for reading: runit's own test, which does not
    /// ask for the execute bit.
    finish: Option<PathBuf>,
    log_directory: Option<PathBuf>,
    normally_down: bool,
}

impl DirectoryFacts {
    /// Nothing here is opened but `finish`, and that only once it is known to be a
    /// regular file: a FIFO or a device at any of these names never makes runsv wait.
    fn read(directory: &Path) -> Result<DirectoryFacts, DefinitionError> {
        let finish = directory.join("finish");
        let log = directory.join("log");
        let kind = |path: &Path| {
            reader::kind_at(None, path, Links::Follow).map_err(|error| DefinitionError {
                path: path.to_path_buf(),
                line: None,
                message: format!("cannot read: {}", error.reason()),
            })
        };
        let finish = match reader::open_regular(&finish, Links::Follow) {
            Ok(_) => Some(finish),
            // runit's test is "can be opened for reading": a dangling link, or a file
            // runsv may not read, is no finish; something that is not a file at all is
            // a mistake worth saying.
            Err(error) if matches!(error.cause, reader::Cause::Kind { .. }) => {
                return Err(DefinitionError {
                    path: finish,
                    line: None,
                    message: error.reason(),
                })
            }
            Err(_) => None,
        };
        Ok(DirectoryFacts {
            finish,
            // runit's rule: anything but a directory at `log` is no log service.
            log_directory: (kind(&log)? == Some(reader::Kind::Directory)).then_some(log),
            // Whatever `down` is, its presence is what counts (runit stats it).
            normally_down: kind(&directory.join("down"))?.is_some(),
        })
    }
}

/// The content of a definition file of at most `limit` bytes; anything but a regular
/// file is refused, and nothing waits.
fn read_definition_file(path: &Path, limit: u64) -> Result<Option<Vec<u8>>, DefinitionError> {
    match reader::read(path, limit, Links::Follow) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(error) if error.is_missing() => Ok(None),
        Err(error) => Err(DefinitionError {
            path: path.to_path_buf(),
            line: None,
            message: format!("cannot read: {}", error.reason()),
        }),
    }
}

fn directory_error(directory: &Path, message: String) -> DefinitionError {
    DefinitionError {
        path: directory.to_path_buf(),
        line: None,
        message,
    }
}

/// Whether the directory has an entry of this name; a dangling symlink counts, since it
/// shows the intent to define the service that way.
fn entry_exists(path: &Path) -> Result<bool, DefinitionError> {
    match fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(error) => Err(DefinitionError {
            path: path.to_path_buf(),
            line: None,
            message: error.to_string(),
        }),
    }
}

/// The directory's base name. Only a path that ends in `.` or `..` (runsv started as
/// `runsv .`) needs the file system to find it.
fn service_name(directory: &Path) -> Result<String, DefinitionError> {
    let ends_in_name = directory
        .components()
        .next_back()
        .is_some_and(|last| matches!(last, std::path::Component::Normal(_)));
    let resolved;
    let named = if ends_in_name {
        directory
    } else {
        resolved = fs::canonicalize(directory)
            .map_err(|error| directory_error(directory, error.to_string()))?;
        &resolved
    };
    match named.file_name() {
        // runit takes any name; one that is not UTF-8 is shown with U+FFFD for what
        // is not (nothing finds a service by this text: runsv and svdir go by the
        // directory, `after:` by its entry's name).
        Some(name) => Ok(name.to_string_lossy().into_owned()),
        None => Err(directory_error(
            directory,
            "the directory has no name to give the service".to_string(),
        )),
    }
}

/// s6's `notification-fd` and the YAML `ready_fd` share one rule.
fn notification_fd(number: i64) -> Result<i32, String> {
    if number < 3 {
        return Err(format!(
            "must be 3 or more (0, 1 and 2 are the service's standard input, output and error), not {number}"
        ));
    }
    i32::try_from(number).map_err(|_| format!("{number} is too large for a file descriptor"))
}

fn stop_signal(text: &str) -> Result<Signal, String> {
    crate::signals::parse(text).ok_or_else(|| {
        format!(
            "unknown signal `{}`; use a name such as TERM, INT, HUP, QUIT, USR1, or a number",
            text.trim()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::test_support::service;
    use super::*;

    fn load(fixture_directory: &Path, system_files: &SystemFiles) -> DefinitionError {
        let result = ServiceDefinition::load_with(fixture_directory, system_files);
        result.expect_err("a definition that must not load")
    }

    #[test]
    fn both_forms_or_neither_is_an_error_naming_the_directory() {
        for (files, fragment) in [
            (
                &[("service.yaml", "exec: /bin/true\n"), ("run", "")][..],
                "both service.yaml and run define this service",
            ),
            (
                &[("finish", ""), ("log/", "")][..],
                "no service.yaml or run",
            ),
        ] {
            let fixture = service(files);
            let error = fixture.error();
            assert_eq!(error.path, fixture.service);
            assert_eq!(error.line, None);
            assert!(error.message.contains(fragment), "{error}");
        }
    }

    #[test]
    fn a_missing_directory_or_a_file_is_an_error() {
        let fixture = service(&[("run", "")]);
        let missing = fixture.root().join("absent");
        let error = load(&missing, &fixture.system_files);
        assert_eq!(error.path, missing);
        assert!(
            error
                .message
                .starts_with("cannot read the service directory"),
            "{error}"
        );
        let file = fixture.path("run");
        let error = load(&file, &fixture.system_files);
        assert_eq!(error.path, file);
        assert_eq!(error.message, "not a directory");
    }

    #[test]
    fn a_dangling_run_symlink_still_selects_the_runit_form() {
        let fixture = service(&[]);
        std::os::unix::fs::symlink("/nonexistent/run", fixture.path("run")).unwrap();
        let definition =
            ServiceDefinition::load_with(&fixture.service, &fixture.system_files).unwrap();
        assert_eq!(definition.form, Form::Runit);
    }

    #[test]
    fn the_name_is_the_base_name_even_for_paths_ending_in_dots() {
        let fixture = service(&[("run", ""), ("log/", "")]);
        for directory in [
            fixture.service.clone(),
            fixture.service.join("."),
            fixture.service.join("log/.."),
        ] {
            let definition =
                ServiceDefinition::load_with(&directory, &fixture.system_files).unwrap();
            assert_eq!(definition.name, "web", "for {}", directory.display());
            assert_eq!(definition.directory, directory);
        }
    }

    #[test]
    fn errors_display_as_path_line_message() {
        let with_line = DefinitionError {
            path: PathBuf::from("/service/a/service.yaml"),
            line: Some(3),
            message: "exec: empty command".to_string(),
        };
        assert_eq!(
            with_line.to_string(),
            "/service/a/service.yaml: line 3: exec: empty command"
        );
        let without_line = DefinitionError {
            line: None,
            ..with_line
        };
        assert_eq!(
            without_line.to_string(),
            "/service/a/service.yaml: exec: empty command"
        );
    }

    #[test]
    fn load_reads_the_real_system_files() {
        // root is in every /etc/passwd this runs on; its home proves the file was read.
        let fixture = service(&[("service.yaml", "exec: /bin/true\nuser: root\n")]);
        let definition = ServiceDefinition::load(&fixture.service).unwrap();
        let credentials = definition.credentials.unwrap();
        assert_eq!(credentials.uid, 0);
        assert_eq!(credentials.user_name, "root");
    }
}
