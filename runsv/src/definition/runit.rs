//! runit's form: an executable `run`, plus the few s6 files that say what runit cannot
//! (`notification-fd`, `down-signal`, `timeout-kill`).

use super::{
    notification_fd, read_definition_file, stop_signal, DefinitionError, DirectoryFacts,
    Environment, Form, LogDestination, Readiness, ServiceDefinition, DEFAULT_RESTART_DELAY,
    DEFAULT_RESTART_DELAY_MAX, DEFAULT_STOP_SIGNAL,
};
use crate::reader::MAX_SETTING;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub(super) fn load(
    directory: &Path,
    name: String,
    facts: DirectoryFacts,
) -> Result<ServiceDefinition, DefinitionError> {
    let readiness = match read_setting(directory, "notification-fd")? {
        Some(setting) => Readiness::NotificationFd(setting.parse(parse_notification_fd)?),
        None => Readiness::Immediate,
    };
    let stop_signal = match read_setting(directory, "down-signal")? {
        Some(setting) => setting.parse(stop_signal)?,
        None => DEFAULT_STOP_SIGNAL,
    };
    let stop_timeout = match read_setting(directory, "timeout-kill")? {
        Some(setting) => setting.parse(parse_timeout_kill)?,
        None => crate::tree_env::default_stop_timeout(),
    };
    Ok(ServiceDefinition {
        name,
        directory: directory.to_path_buf(),
        form: Form::Runit,
        command: vec!["./run".to_string()],
        oneshot: false,
        after: Vec::new(),
        environment: Environment::Inherit,
        readiness,
        working_directory: directory.to_path_buf(),
        credentials: None,
        controls: Default::default(),
        stop_signal,
        stop_timeout,
        // runit sends the service's output wherever runsv's own goes when there is no
        // log/; keeping that is what makes existing runit trees behave the same.
        log: match facts.log_directory {
            Some(log_directory) => LogDestination::Service(log_directory),
            None => LogDestination::Console,
        },
        log_tail: crate::tail::DEFAULT_CAPACITY,
        on_failure: None,
        kill_mode: Default::default(),
        restart_delay: DEFAULT_RESTART_DELAY,
        restart_delay_max: DEFAULT_RESTART_DELAY_MAX,
        finish: facts.finish,
        normally_down: facts.normally_down,
        limits: Default::default(),
    })
}

/// The content of one of the one-value files, with where it came from for errors.
struct Setting {
    path: PathBuf,
    text: String,
}

impl Setting {
    fn parse<T>(&self, parse: fn(&str) -> Result<T, String>) -> Result<T, DefinitionError> {
        let text = self.text.trim();
        let parsed = if text.is_empty() {
            Err("is empty; write the value, or remove the file for the default".to_string())
        } else {
            parse(text)
        };
        parsed.map_err(|message| DefinitionError {
            path: self.path.clone(),
            line: Some(1),
            message,
        })
    }
}

/// `None` when the file does not exist: s6 then uses its default, and so do we.
fn read_setting(directory: &Path, file_name: &str) -> Result<Option<Setting>, DefinitionError> {
    let path = directory.join(file_name);
    let Some(bytes) = read_definition_file(&path, MAX_SETTING)? else {
        return Ok(None);
    };
    match String::from_utf8(bytes) {
        Ok(text) => Ok(Some(Setting { path, text })),
        Err(_) => Err(DefinitionError {
            path,
            line: Some(1),
            message: "not valid UTF-8".to_string(),
        }),
    }
}

fn parse_notification_fd(text: &str) -> Result<i32, String> {
    let number = text
        .parse::<i64>()
        .map_err(|_| format!("`{text}` is not a file descriptor number"))?;
    notification_fd(number)
}

/// s6 reads milliseconds and takes 0 as "never SIGKILL"; runtree always escalates in the
/// end, so 0 means the default instead of waiting forever on a stuck service.
fn parse_timeout_kill(text: &str) -> Result<Duration, String> {
    match text.parse::<u64>() {
        Ok(0) => Ok(crate::tree_env::default_stop_timeout()),
        Ok(milliseconds) => Ok(Duration::from_millis(milliseconds)),
        Err(_) => Err(format!("`{text}` is not a number of milliseconds")),
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{service, Fixture};
    use super::*;
    use nix::sys::signal::Signal;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    fn definition(fixture: &Fixture) -> ServiceDefinition {
        fixture.loaded()
    }

    fn error(fixture: &Fixture) -> DefinitionError {
        fixture.error()
    }

    #[test]
    fn a_bare_run_gets_runits_behaviour() {
        let fixture = service(&[("run", "#!/bin/sh\nexec sleep 1\n")]);
        assert_eq!(definition(&fixture), fixture.defaults(Form::Runit));
    }

    #[test]
    fn a_run_that_is_not_executable_still_loads() {
        let fixture = service(&[("run", "not a program")]);
        fs::set_permissions(fixture.path("run"), fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(definition(&fixture).command, ["./run"]);
    }

    #[test]
    fn finish_down_and_log_are_honoured() {
        let fixture = service(&[("run", ""), ("finish", ""), ("down", ""), ("log/", "")]);
        let loaded = definition(&fixture);
        assert_eq!(loaded.finish, Some(fixture.path("finish")));
        assert!(loaded.normally_down);
        assert_eq!(loaded.log, LogDestination::Service(fixture.path("log")));
    }

    #[test]
    fn finish_counts_only_when_it_can_be_opened() {
        let fixture = service(&[("run", "")]);
        std::os::unix::fs::symlink("/nonexistent/finish", fixture.path("finish")).unwrap();
        assert_eq!(definition(&fixture).finish, None);
    }

    #[test]
    fn a_log_file_that_is_not_a_directory_is_not_a_log_service() {
        let fixture = service(&[("run", ""), ("log", "")]);
        assert_eq!(definition(&fixture).log, LogDestination::Console);
    }

    #[test]
    fn s6_notification_fd_gives_fd_readiness() {
        let fixture = service(&[("run", ""), ("notification-fd", "4\n")]);
        assert_eq!(definition(&fixture).readiness, Readiness::NotificationFd(4));
    }

    #[test]
    fn s6_down_signal_and_timeout_kill_set_how_it_stops() {
        let fixture = service(&[
            ("run", ""),
            ("down-signal", "SIGHUP\n"),
            ("timeout-kill", "2500\n"),
        ]);
        let loaded = definition(&fixture);
        assert_eq!(loaded.stop_signal, Signal::SIGHUP);
        assert_eq!(loaded.stop_timeout, Duration::from_millis(2500));

        let fixture = service(&[("run", ""), ("down-signal", "3"), ("timeout-kill", "0")]);
        let loaded = definition(&fixture);
        assert_eq!(loaded.stop_signal, Signal::SIGQUIT);
        assert_eq!(loaded.stop_timeout, Duration::from_secs(10));
    }

    #[test]
    fn bad_s6_files_are_errors_naming_the_file_at_line_1() {
        let cases = [
            ("notification-fd", "2\n", "must be 3 or more"),
            (
                "notification-fd",
                "three",
                "`three` is not a file descriptor number",
            ),
            ("notification-fd", "\n", "is empty"),
            ("down-signal", "TERMINATE\n", "unknown signal `TERMINATE`"),
            (
                "timeout-kill",
                "10s",
                "`10s` is not a number of milliseconds",
            ),
            ("timeout-kill", "-5", "`-5` is not a number of milliseconds"),
        ];
        for (file, content, expected) in cases {
            let fixture = service(&[("run", ""), (file, content)]);
            let error = error(&fixture);
            assert_eq!(error.path, fixture.path(file), "{error}");
            assert_eq!(error.line, Some(1), "{error}");
            assert!(error.message.contains(expected), "{file}: {error}");
        }
    }

    #[test]
    fn an_unreadable_s6_file_is_an_error_not_a_default() {
        let fixture = service(&[("run", "")]);
        fs::create_dir(fixture.path("down-signal")).unwrap();
        let error = error(&fixture);
        assert_eq!(error.path, fixture.path("down-signal"));
        assert!(error.message.starts_with("cannot read"), "{error}");
    }

    #[test]
    fn a_fifo_at_any_definition_file_is_refused_naming_it() {
        for file in ["finish", "notification-fd", "down-signal", "timeout-kill"] {
            let fixture = service(&[("run", "")]);
            nix::unistd::mkfifo(
                &fixture.path(file),
                nix::sys::stat::Mode::from_bits_truncate(0o600),
            )
            .unwrap();
            let error = error(&fixture);
            assert_eq!(error.path, fixture.path(file), "{error}");
            assert!(
                error.message.ends_with("is a FIFO, not a regular file"),
                "{error}"
            );
        }
        // `down` and `log` are never opened: a FIFO there is only present, or no log/.
        let fixture = service(&[("run", "")]);
        for file in ["down", "log"] {
            nix::unistd::mkfifo(
                &fixture.path(file),
                nix::sys::stat::Mode::from_bits_truncate(0o600),
            )
            .unwrap();
        }
        let loaded = definition(&fixture);
        assert!(loaded.normally_down);
        assert_eq!(loaded.log, LogDestination::Console);
    }

    #[test]
    fn a_huge_setting_is_refused_unread() {
        let fixture = service(&[("run", "")]);
        fs::File::create(fixture.path("timeout-kill"))
            .unwrap()
            .set_len(1 << 40)
            .unwrap();
        let error = error(&fixture);
        assert_eq!(error.path, fixture.path("timeout-kill"));
        assert_eq!(error.message, "cannot read: is larger than 1024 bytes");
    }
}
