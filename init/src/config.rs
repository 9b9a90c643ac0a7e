//! Settings: scan directory, shutdown deadline, kill grace.
//!
//! Precedence, highest first: the kernel command line (`runtree.KEY=`, read only as
//! PID 1 of a machine, because in a container /proc/cmdline is the host's), then the
//! environment (`RUNTREE_KEY`), then the default. The kernel command line wins because
//! it is what an operator edits at the boot prompt to rescue a machine whose image sets
//! the environment; a container has only the environment.

use crate::Mode;
use std::path::PathBuf;
use std::time::Duration;

pub const DEFAULT_SCANDIR: &str = "/service";
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(90);
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(3);
/// A container engine SIGKILLs everything 10 s after its stop signal (podman, Docker):
/// the whole stop must fit with a margin. Services get 3 s each to stop (a service's
/// own `stop_timeout` still counts), svdir's ordered stop 5 s in all (it kills what is
/// left at 9/10 of that), the sweep a 2 s grace: at worst 5 + 2 s and a SIGKILL, 3 s
/// before the engine's. s6-overlay's defaults are 3 s + 3 s for the same reason.
pub const CONTAINER_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);
pub const CONTAINER_KILL_GRACE: Duration = Duration::from_secs(2);
pub const CONTAINER_STOP_TIMEOUT: &str = "3";
/// Longest accepted duration: anything above is a typo, and would overflow nothing but
/// would keep a machine from powering off for days.
const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub scandir: PathBuf,
    /// Global deadline for svdir's ordered stop, after which init kills svdir and sweeps.
    pub shutdown_timeout: Duration,
    /// Time between `kill(-1, SIGTERM)` and `kill(-1, SIGKILL)`.
    pub kill_grace: Duration,
}

/// Reads the settings. `cmdline` is the kernel command line (None in a container);
/// `env` looks up an environment variable. Invalid values are reported in the returned
/// warnings and replaced by the next source down, never fatal.
pub fn resolve(
    mode: Mode,
    cmdline: Option<&str>,
    env: impl Fn(&str) -> Option<String>,
) -> (Config, Vec<String>) {
    let words = cmdline.map(kernel_words).unwrap_or_default();
    let mut warnings = Vec::new();
    let lookup = |key: &str, var: &str| -> Vec<(String, String)> {
        let mut found = Vec::new();
        // The last occurrence on the kernel command line wins, as for kernel parameters.
        if let Some(value) = words.iter().rev().find_map(|w| {
            w.strip_prefix(&format!("runtree.{key}="))
                .map(str::to_string)
        }) {
            found.push((format!("runtree.{key}"), value));
        }
        if let Some(value) = env(var) {
            found.push((var.to_string(), value));
        }
        found
    };
    let scandir_sources = lookup("scandir", "RUNTREE_SCANDIR");
    let timeout_sources = lookup("shutdown_timeout", "RUNTREE_SHUTDOWN_TIMEOUT");
    let grace_sources = lookup("kill_grace", "RUNTREE_KILL_GRACE");

    let mut scandir = PathBuf::from(DEFAULT_SCANDIR);
    for (source, value) in scandir_sources {
        if value.starts_with('/') {
            scandir = PathBuf::from(value);
            break;
        }
        warnings.push(format!(
            "ignoring {source}={value}: the scan directory must be an absolute path"
        ));
    }
    let mut duration = |sources: Vec<(String, String)>, default: Duration| {
        for (source, value) in sources {
            match parse_duration(&value) {
                Some(d) => return d,
                None => warnings.push(format!(
                    "ignoring {source}={value}: not a duration (seconds, e.g. 90, 2.5, 500ms)"
                )),
            }
        }
        default
    };
    let (default_timeout, default_grace) = match mode {
        Mode::Machine => (DEFAULT_SHUTDOWN_TIMEOUT, DEFAULT_KILL_GRACE),
        Mode::Container => (CONTAINER_SHUTDOWN_TIMEOUT, CONTAINER_KILL_GRACE),
    };
    let shutdown_timeout = duration(timeout_sources, default_timeout);
    let kill_grace = duration(grace_sources, default_grace);
    (
        Config {
            scandir,
            shutdown_timeout,
            kill_grace,
        },
        warnings,
    )
}

/// Splits a kernel command line the way the kernel does: on spaces, with double quotes
/// grouping (`runtree.scandir="/my services"`), the quotes themselves removed.
/// Everything after a lone `--` belongs to init's argv, not to parameters.
pub fn kernel_words(cmdline: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in cmdline.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any {
                    if word == "--" {
                        return words;
                    }
                    words.push(std::mem::take(&mut word));
                    any = false;
                }
            }
            c => {
                word.push(c);
                any = true;
            }
        }
    }
    if any && word != "--" {
        words.push(word);
    }
    words
}

/// Seconds, possibly fractional, with an optional `s` or `ms` suffix (runsv::duration's
/// reading, as every runtree program reads a duration), up to MAX_DURATION.
pub fn parse_duration(text: &str) -> Option<Duration> {
    runsv::duration::parse(text).filter(|duration| *duration <= MAX_DURATION)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// An environment of `KEY=VALUE` words, each key read as `RUNTREE_KEY`.
    fn env(words: &str) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = words
            .split_whitespace()
            .filter_map(|word| word.split_once('='))
            .map(|(key, value)| (format!("RUNTREE_{key}"), value.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    const fn secs(seconds: u64) -> Duration {
        Duration::from_secs(seconds)
    }

    const fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    /// The last `runtree.scandir` counts; after `--` the words are init's arguments,
    /// not parameters.
    const KERNEL: &str = "console=ttyS0 runtree.scandir=/a quiet runtree.scandir=/b \
                          runtree.kill_grace=1.5 -- runtree.shutdown_timeout=5";
    const INVALID: &str = "runtree.scandir=relative runtree.shutdown_timeout=soon";

    #[test]
    fn kernel_command_line_then_environment_then_default() {
        use Mode::{Container, Machine};
        // (mode, kernel command line, `RUNTREE_`-less environment, the settings as
        // `scandir shutdown_timeout kill_grace`, warnings)
        let cases = [
            (Machine, None, "", "/service 90s 3s", 0),
            (Container, None, "", "/service 5s 2s", 0),
            (
                Container,
                None,
                "SHUTDOWN_TIMEOUT=20 KILL_GRACE=1",
                "/service 20s 1s",
                0,
            ),
            (
                Machine,
                None,
                "SCANDIR=/sv SHUTDOWN_TIMEOUT=10 KILL_GRACE=500ms",
                "/sv 10s 500ms",
                0,
            ),
            (
                Machine,
                Some(KERNEL),
                "SCANDIR=/env SHUTDOWN_TIMEOUT=7",
                "/b 7s 1.5s",
                0,
            ),
            (
                Machine,
                Some(INVALID),
                "SCANDIR=/env KILL_GRACE=-1",
                "/env 90s 3s",
                3,
            ),
        ];
        for (mode, cmdline, environment, expected, warned) in cases {
            let (read, warnings) = resolve(mode, cmdline, env(environment));
            let settings = format!(
                "{} {:?} {:?}",
                read.scandir.display(),
                read.shutdown_timeout,
                read.kill_grace
            );
            assert_eq!(settings, expected, "{cmdline:?} {environment}");
            assert_eq!(warnings.len(), warned, "{warnings:?}");
            if cmdline == Some(INVALID) {
                assert!(warnings[0].contains("runtree.scandir=relative"));
            }
        }
    }

    #[test]
    fn container_defaults_fit_an_engines_10s_grace() {
        let (read, _) = resolve(Mode::Container, None, env(""));
        assert!(read.shutdown_timeout + read.kill_grace < secs(10));
    }

    #[test]
    fn quoted_kernel_words() {
        assert_eq!(
            kernel_words("a  runtree.scandir=\"/my services\" b\n"),
            vec!["a", "runtree.scandir=/my services", "b"]
        );
        assert_eq!(kernel_words("x -- y"), vec!["x"]);
        assert_eq!(kernel_words(""), Vec::<String>::new());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Some(secs(90)));
        assert_eq!(parse_duration("2.5s"), Some(ms(2500)));
        assert_eq!(parse_duration("250ms"), Some(ms(250)));
        assert_eq!(parse_duration("0"), Some(Duration::ZERO));
        for refused in ["", "-3", "NaN", "inf", "1e9", "ten"] {
            assert_eq!(parse_duration(refused), None, "{refused}");
        }
    }
}
