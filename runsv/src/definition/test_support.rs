//! Service directories and account files for the definition tests.

use super::{
    DefinitionError, Environment, Form, LogDestination, Readiness, ServiceDefinition, SystemFiles,
    DEFAULT_PATH,
};
use nix::sys::signal::Signal;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub(super) struct Fixture {
    // Held so the directory lives as long as the test needs it.
    _root: tempfile::TempDir,
    pub service: PathBuf,
    pub system_files: SystemFiles,
}

pub(super) const PASSWD: &str = "\
root:x:0:0:root:/root:/bin/sh
www:x:33:33:www-data:/var/www:/usr/sbin/nologin
alice:x:1000:1000:Alice:/home/alice:/bin/sh
";

pub(super) const GROUP: &str = "\
root:x:0:
www:x:33:
adm:x:4:alice
alice:x:1000:
audio:x:29:bob,alice
";

/// A service directory `web` holding `files`: a name ending in `/` is a directory, any
/// other a file with that content.
pub(super) fn service(files: &[(&str, &str)]) -> Fixture {
    let root = tempfile::tempdir().unwrap();
    let service = root.path().join("web");
    fs::create_dir(&service).unwrap();
    for (name, content) in files {
        match name.strip_suffix('/') {
            Some(directory) => fs::create_dir_all(service.join(directory)).unwrap(),
            None => fs::write(service.join(name), content).unwrap(),
        }
    }
    let passwd = root.path().join("passwd");
    let environment = root.path().join("env");
    let group = root.path().join("group");
    fs::write(&passwd, PASSWD).unwrap();
    fs::write(&group, GROUP).unwrap();
    Fixture {
        _root: root,
        service,
        system_files: SystemFiles {
            passwd,
            group,
            environment,
        },
    }
}

impl Fixture {
    pub fn path(&self, name: &str) -> PathBuf {
        self.service.join(name)
    }

    pub fn root(&self) -> &Path {
        self._root.path()
    }

    pub fn load(&self) -> Result<ServiceDefinition, DefinitionError> {
        ServiceDefinition::load_with(&self.service, &self.system_files)
    }

    /// The definition, which must load.
    pub fn loaded(&self) -> ServiceDefinition {
        match self.load() {
            Ok(definition) => definition,
            Err(error) => panic!("{error}"),
        }
    }

    /// The error of a definition that must not load.
    pub fn error(&self) -> DefinitionError {
        match self.load() {
            Ok(definition) => panic!("expected an error, loaded {definition:?}"),
            Err(error) => error,
        }
    }

    /// What `web` is when its definition in `form` says nothing but its command: the
    /// YAML form gets a default PATH and logs to kmsg, runit's inherits runsv's
    /// environment and console.
    pub fn defaults(&self, form: Form) -> ServiceDefinition {
        let (environment, log) = match form {
            Form::Yaml(_) => (
                Environment::Exactly(vec![("PATH".to_string(), DEFAULT_PATH.to_string())]),
                LogDestination::Kmsg,
            ),
            Form::Runit => (Environment::Inherit, LogDestination::Console),
        };
        ServiceDefinition {
            name: "web".to_string(),
            directory: self.service.clone(),
            form,
            command: vec!["./run".to_string()],
            oneshot: false,
            after: vec![],
            environment,
            readiness: Readiness::Immediate,
            working_directory: self.service.clone(),
            credentials: None,
            controls: Default::default(),
            // The documented defaults, spelled out rather than the constants.
            stop_signal: Signal::SIGTERM,
            stop_timeout: Duration::from_secs(10),
            log,
            log_tail: crate::tail::DEFAULT_CAPACITY,
            on_failure: None,
            kill_mode: Default::default(),
            restart_delay: Duration::from_secs(1),
            restart_delay_max: Duration::from_secs(60),
            finish: None,
            normally_down: false,
            limits: Default::default(),
        }
    }
}
