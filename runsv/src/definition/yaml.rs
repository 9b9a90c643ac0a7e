//! The native form, `service.yaml`.
//!
//! Every error names the file, a line and the key. Each key's value is checked while it
//! is parsed (yaml/rule.rs), so a bad value is reported at the value's line (the key's line in
//! the usual `key: value` layout, the item's line inside a list or map). Checks that
//! involve more than one key, or the system's user database, run after parsing and report
//! the line of the key at fault, found by parsing again and stopping at that key.

mod document;
mod rule;
mod values;

use super::accounts;
use super::{
    Credentials, DefinitionError, DirectoryFacts, Environment, Form, LogDestination,
    ProcessControls, Readiness, ServiceDefinition, SystemFiles, DEFAULT_PATH,
    DEFAULT_RESTART_DELAY, DEFAULT_RESTART_DELAY_MAX, DEFAULT_STOP_SIGNAL, DEFAULT_TEST_INTERVAL,
};
use document::{line_of_key, parse, Key};
use std::fs;
use std::io;
use std::path::Path;

pub(super) fn load(
    directory: &Path,
    yaml_path: &Path,
    name: String,
    facts: DirectoryFacts,
    system_files: &SystemFiles,
) -> Result<ServiceDefinition, DefinitionError> {
    let text = read_text(yaml_path)?;
    if let Some(line) = super::nesting::too_deep(&text) {
        return Err(DefinitionError {
            path: yaml_path.to_path_buf(),
            line: Some(line),
            message: format!(
                "nested deeper than {} levels of [ and {{; refused unparsed, as parsing \
                 such nesting takes time growing with the square of its depth",
                super::nesting::MAX_DEPTH
            ),
        });
    }
    let document = parse(&text).map_err(|(line, message)| DefinitionError {
        path: yaml_path.to_path_buf(),
        line: Some(line),
        message,
    })?;
    let problem = |key: Key, message: String| DefinitionError {
        path: yaml_path.to_path_buf(),
        line: Some(line_of_key(&text, key)),
        message: format!("{}: {}", key.name(), message),
    };

    let oneshot = document.oneshot.unwrap_or(false);
    let readiness = match (document.test, document.ready_fd) {
        (Some(_), Some(_)) => {
            let later = if line_of_key(&text, Key::Test) > line_of_key(&text, Key::ReadyFd) {
                Key::Test
            } else {
                Key::ReadyFd
            };
            return Err(problem(
                later,
                "test and ready_fd both define readiness; keep one".to_string(),
            ));
        }
        (Some(command), None) => Readiness::Test {
            command,
            interval: document.test_interval.unwrap_or(DEFAULT_TEST_INTERVAL),
        },
        (None, Some(fd)) => Readiness::NotificationFd(fd),
        (None, None) => {
            if document.test_interval.is_some() {
                return Err(problem(
                    Key::TestInterval,
                    "has no effect without test".to_string(),
                ));
            }
            Readiness::Immediate
        }
    };
    if oneshot {
        for key in [Key::Test, Key::ReadyFd] {
            if document.keys.contains(&key) {
                return Err(problem(
                    key,
                    "readiness does not apply to a oneshot, which is done when it exits"
                        .to_string(),
                ));
            }
        }
    }

    let restart_delay = document.restart_delay.unwrap_or(DEFAULT_RESTART_DELAY);
    let restart_delay_max = document
        .restart_delay_max
        .unwrap_or(DEFAULT_RESTART_DELAY_MAX);
    if restart_delay_max < restart_delay {
        let (key, message) = if document.restart_delay_max.is_some() {
            (
                Key::RestartDelayMax,
                format!(
                    "{}s is less than restart_delay ({}s)",
                    restart_delay_max.as_secs_f64(),
                    restart_delay.as_secs_f64()
                ),
            )
        } else {
            (
                Key::RestartDelay,
                format!(
                    "{}s is more than restart_delay_max ({}s by default); set that too",
                    restart_delay.as_secs_f64(),
                    restart_delay_max.as_secs_f64()
                ),
            )
        };
        return Err(problem(key, message));
    }

    let log = match (facts.log_directory, document.log) {
        (Some(_), Some(_)) => {
            return Err(problem(
                Key::Log,
                "conflicts with the log/ directory; remove one of them".to_string(),
            ))
        }
        (Some(log_directory), None) => LogDestination::Service(log_directory),
        (None, Some(log)) => log,
        (None, None) => LogDestination::Kmsg,
    };

    let credentials = match (document.user, document.group) {
        (None, None) => None,
        (None, Some(_)) => {
            return Err(problem(
                Key::Group,
                "needs user: give the user to run as, and group to override its primary group"
                    .to_string(),
            ))
        }
        (Some(user), group) => Some(
            resolve_credentials(&user, group.as_deref(), system_files)
                .map_err(|(key, message)| problem(key, message))?,
        ),
    };

    // environ first, then the account's variables, then what the service takes of the
    // container's environment, then the default PATH: each only where nothing before it
    // set the variable. (PATH stays where it always was in the list.)
    let saved = document
        .container_env
        .as_ref()
        .map(|selection| crate::container_env::read(&system_files.environment, selection))
        .unwrap_or_default();
    let variables = with_defaults(
        document.environ.unwrap_or_default(),
        credentials.as_ref(),
        &saved,
    );

    let working_directory = match document.dir {
        Some(dir) => directory.join(dir),
        None => directory.to_path_buf(),
    };
    let controls = ProcessControls {
        limits: document.rlimits,
        nice: document.nice,
        umask: document.umask,
        env_file: document.env_file.map(|file| directory.join(file)),
        env_dir: document.env_dir.map(|dir| directory.join(dir)),
    };

    Ok(ServiceDefinition {
        name,
        directory: directory.to_path_buf(),
        form: Form::Yaml(yaml_path.to_path_buf()),
        command: document.exec,
        oneshot,
        after: document.after.unwrap_or_default(),
        environment: Environment::Exactly(variables),
        readiness,
        working_directory,
        credentials,
        controls,
        stop_signal: document.stop_signal.unwrap_or(DEFAULT_STOP_SIGNAL),
        stop_timeout: document
            .stop_timeout
            .unwrap_or_else(crate::tree_env::default_stop_timeout),
        log,
        log_tail: document.log_tail.unwrap_or(crate::tail::DEFAULT_CAPACITY),
        restart_delay,
        restart_delay_max,
        finish: facts.finish,
        normally_down: facts.normally_down,
        on_failure: document.on_failure,
        kill_mode: document.kill_mode.unwrap_or_default(),
        limits: document.limits,
    })
}

/// `environ` and what a YAML service gets unless it sets it: a PATH, and with a user
/// HOME, USER and LOGNAME.
pub(super) fn with_defaults(
    mut variables: Vec<(String, String)>,
    credentials: Option<&Credentials>,
    saved: &[(String, String)],
) -> Vec<(String, String)> {
    let mut add_unless_set = |name: &str, value: &str| {
        if !variables.iter().any(|(set, _)| set == name) {
            variables.push((name.to_string(), value.to_string()));
        }
    };
    let saved_path = saved.iter().find(|(name, _)| name == "PATH");
    add_unless_set("PATH", saved_path.map_or(DEFAULT_PATH, |(_, path)| path));
    if let Some(credentials) = credentials {
        add_unless_set("HOME", &credentials.home.to_string_lossy());
        add_unless_set("USER", &credentials.user_name);
        add_unless_set("LOGNAME", &credentials.user_name);
    }
    for (name, value) in saved {
        add_unless_set(name, value);
    }
    variables
}

fn read_text(path: &Path) -> Result<String, DefinitionError> {
    let bytes =
        super::read_definition_file(path, crate::reader::MAX_DEFINITION)?.ok_or_else(|| {
            DefinitionError {
                path: path.to_path_buf(),
                line: None,
                message: "cannot read: file does not exist".to_string(),
            }
        })?;
    String::from_utf8(bytes).map_err(|error| {
        let valid = &error.as_bytes()[..error.utf8_error().valid_up_to()];
        DefinitionError {
            path: path.to_path_buf(),
            line: Some(line_number_at(valid)),
            message: "not valid UTF-8".to_string(),
        }
    })
}

fn line_number_at(preceding: &[u8]) -> usize {
    preceding.iter().filter(|&&byte| byte == b'\n').count() + 1
}

fn resolve_credentials(
    user: &str,
    group: Option<&str>,
    system_files: &SystemFiles,
) -> Result<Credentials, (Key, String)> {
    let passwd_text = fs::read_to_string(&system_files.passwd).map_err(|error| {
        (
            Key::User,
            format!("cannot read {}: {}", system_files.passwd.display(), error),
        )
    })?;
    let entry = accounts::find_user(&passwd_text, &system_files.passwd, user)
        .map_err(|message| (Key::User, message))?;
    // Without /etc/group (minimal containers), numeric groups still work and no
    // supplementary group can be listed; any other read failure is worth reporting.
    let group_text = match fs::read_to_string(&system_files.group) {
        Ok(text) => text,
        Err(error) if error.kind() == io::ErrorKind::NotFound => String::new(),
        Err(error) => {
            let key = if group.is_some() {
                Key::Group
            } else {
                Key::User
            };
            return Err((
                key,
                format!("cannot read {}: {}", system_files.group.display(), error),
            ));
        }
    };
    let gid = match group {
        Some(group) => accounts::find_group_id(&group_text, &system_files.group, group)
            .map_err(|message| (Key::Group, message))?,
        None => entry.gid,
    };
    let supplementary_groups =
        accounts::supplementary_groups(&group_text, &system_files.group, &entry.name, gid)
            .map_err(|message| (Key::User, message))?;
    Ok(Credentials {
        user_name: entry.name,
        uid: entry.uid,
        gid,
        supplementary_groups,
        home: entry.home,
    })
}

#[cfg(test)]
#[path = "yaml_tests.rs"]
mod tests;
