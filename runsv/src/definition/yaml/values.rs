//! What each key of `service.yaml` takes: one [`Rule`] per kind of value, with the
//! wording of its errors.

use super::super::controls::{check_nice, parse_limit, parse_umask, Limit, Resource, Unit};
use super::super::{notification_fd, split_words, stop_signal, LogDestination};
use super::rule::{Parse, Refusal, Request, Rule, Scalar};
use nix::sys::signal::Signal;
use serde::de::{MapAccess, SeqAccess};
use std::collections::HashSet;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// A scalar taken as written (`1.10` stays `1.10`, `0755` stays `0755`), then checked.
pub(super) struct Text<T> {
    expecting: &'static str,
    parse: fn(&str) -> Result<T, String>,
}

impl<T> Text<T> {
    const fn new(expecting: &'static str, parse: fn(&str) -> Result<T, String>) -> Text<T> {
        Text { expecting, parse }
    }
}

impl<T> Rule for Text<T> {
    type Value = T;
    const REQUEST: Request = Request::AsWritten;
    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str(self.expecting)
    }
    fn take(&self, scalar: Scalar<'_>) -> Result<T, Refusal> {
        match scalar {
            Scalar::Text(text) => Ok((self.parse)(text)?),
            _ => Err(Refusal::WrongType),
        }
    }
}

pub(super) const COMMAND: Text<Vec<String>> = Text::new("a command line", parse_command);
pub(super) const DIRECTORY: Text<PathBuf> = Text::new("a directory path", parse_directory);
pub(super) const ACCOUNT: Text<String> = Text::new("a name or a number", parse_account);
pub(super) const SIGNAL: Text<Signal> = Text::new("a signal name or number", stop_signal);
pub(super) const LOG: Text<LogDestination> = Text::new("kmsg, console or none", parse_log);
const SERVICE_NAME: Text<String> = Text::new("a service name", parse_service_name);
const VARIABLE_VALUE: Text<String> = Text::new("a string, number or boolean", parse_variable_value);
pub(super) const ON_FAILURE: Text<crate::failure::OnFailure> =
    Text::new("continue, warn or stop", parse_on_failure);
pub(super) const BYTES: Text<u64> = Text::new(
    "a size such as 64M or 1G",
    crate::cgroup::limits::parse_bytes,
);
pub(super) const WEIGHT: Text<u32> = Text::new(
    "a weight from 1 to 10000",
    crate::cgroup::limits::parse_weight,
);
pub(super) const CPU_SHARE: Text<u64> = Text::new(
    "a CPU share such as 50% or 1.5",
    crate::cgroup::limits::parse_cpu_max,
);
pub(super) const COUNT: Text<u64> =
    Text::new("a number of processes", crate::cgroup::limits::parse_count);
pub(super) const UMASK: Text<u32> = Text::new("an octal umask such as 022", parse_umask);
pub(super) const ENV_PATH: Text<PathBuf> = Text::new("a path", parse_path);

/// The rule of a `limit_*` key: as written, so that `64M` and `4096` are read alike.
pub(super) fn limit(resource: Resource) -> Text<Limit> {
    match resource.unit() {
        Unit::Count => Text::new("a number or unlimited", |text| {
            parse_limit(Unit::Count, text)
        }),
        Unit::Bytes => Text::new(
            "a number of bytes (K, M, G or T allowed) or unlimited",
            |text| parse_limit(Unit::Bytes, text),
        ),
        Unit::Seconds => Text::new("a number of seconds or unlimited", |text| {
            parse_limit(Unit::Seconds, text)
        }),
    }
}

fn parse_command(text: &str) -> Result<Vec<String>, String> {
    let words = split_words(text)?;
    if words[0].is_empty() {
        return Err("the program name is empty".to_string());
    }
    Ok(words)
}

fn parse_directory(text: &str) -> Result<PathBuf, String> {
    if text.is_empty() {
        return Err("is empty; leave dir out to run in the service directory".to_string());
    }
    if text.contains('\0') {
        return Err("a path cannot contain a NUL character".to_string());
    }
    Ok(PathBuf::from(text))
}

fn parse_path(text: &str) -> Result<PathBuf, String> {
    if text.is_empty() {
        return Err("is empty".to_string());
    }
    if text.contains('\0') {
        return Err("a path cannot contain a NUL character".to_string());
    }
    Ok(PathBuf::from(text))
}

fn parse_account(text: &str) -> Result<String, String> {
    if text.is_empty() {
        return Err("is empty".to_string());
    }
    if text.contains([':', '\n', '\0']) {
        return Err(format!("`{text}` cannot be a user or group name"));
    }
    Ok(text.to_string())
}

fn parse_log(text: &str) -> Result<LogDestination, String> {
    match text {
        "kmsg" => Ok(LogDestination::Kmsg),
        "console" => Ok(LogDestination::Console),
        "none" => Ok(LogDestination::Null),
        other => Err(format!(
            "unknown destination `{other}`; use kmsg, console or none (or a log/ directory)"
        )),
    }
}

fn parse_on_failure(text: &str) -> Result<crate::failure::OnFailure, String> {
    crate::failure::OnFailure::parse(text).ok_or_else(|| {
        format!(
            "unknown policy `{text}`; use {}",
            crate::failure::OnFailure::WORDS
        )
    })
}

fn parse_service_name(text: &str) -> Result<String, String> {
    if text.is_empty() {
        return Err("a service name cannot be empty".to_string());
    }
    if text.contains('/') {
        return Err(format!(
            "`{text}` contains `/`; name a sibling service by its directory's name"
        ));
    }
    if text == "." || text == ".." || text.contains('\0') {
        return Err(format!("`{text}` cannot be a service name"));
    }
    Ok(text.to_string())
}

fn parse_variable_value(text: &str) -> Result<String, String> {
    if text.contains('\0') {
        return Err("a value cannot contain a NUL character".to_string());
    }
    Ok(text.to_string())
}

/// `true` or `false`, worded as serde words a `bool`.
pub(super) struct Boolean;

impl Rule for Boolean {
    type Value = bool;
    const REQUEST: Request = Request::Boolean;
    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a boolean")
    }
    fn take(&self, scalar: Scalar<'_>) -> Result<bool, Refusal> {
        match scalar {
            Scalar::Bool(value) => Ok(value),
            _ => Err(Refusal::WrongType),
        }
    }
}

/// `after: name` or `after: [a, b]`. The single name is resolved, so `after: 42` is
/// refused where `after: [42]` names `42`.
pub(super) struct After;

impl Rule for After {
    type Value = Vec<String>;
    const REQUEST: Request = Request::Resolved;
    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a service name or a list of service names")
    }
    fn take(&self, scalar: Scalar<'_>) -> Result<Vec<String>, Refusal> {
        match scalar {
            Scalar::Text(name) => Ok(vec![parse_service_name(name)?]),
            Scalar::Null => {
                Err("has no value; give a service name, a list of names, or leave after out".into())
            }
            _ => Err(Refusal::WrongType),
        }
    }
    fn take_list<'de, A: SeqAccess<'de>>(&self, mut items: A) -> Result<Vec<String>, A::Error> {
        let mut names: Vec<String> = Vec::new();
        while let Some(name) = items.next_element_seed(Parse(SERVICE_NAME))? {
            // Naming a dependency twice says nothing more; keeping one keeps the graph
            // that svdir builds simple.
            if !names.contains(&name) {
                names.push(name);
            }
        }
        Ok(names)
    }
}

/// `container_env: all`, or a list of variable names (kept once each, in order).
pub(super) struct ContainerEnv;

impl Rule for ContainerEnv {
    type Value = crate::container_env::Selection;
    const REQUEST: Request = Request::Resolved;
    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("`all` or a list of variable names")
    }
    fn take(&self, scalar: Scalar<'_>) -> Result<Self::Value, Refusal> {
        match scalar {
            Scalar::Text("all") => Ok(crate::container_env::Selection::All),
            Scalar::Text(other) => {
                Err(format!("`{other}` is not `all`; name variables in a list: [{other}]").into())
            }
            _ => Err(Refusal::WrongType),
        }
    }
    fn take_list<'de, A: SeqAccess<'de>>(&self, mut items: A) -> Result<Self::Value, A::Error> {
        let mut names: Vec<String> = Vec::new();
        while let Some(name) = items.next_element_seed(Parse(SAVED_VARIABLE))? {
            if !names.contains(&name) {
                names.push(name);
            }
        }
        Ok(crate::container_env::Selection::Names(names))
    }
}

const SAVED_VARIABLE: Text<String> = Text {
    expecting: "a variable name",
    parse: parse_saved_variable,
};

fn parse_saved_variable(text: &str) -> Result<String, String> {
    if crate::container_env::valid_name(text) {
        Ok(text.to_string())
    } else {
        Err(format!(
            "`{text}` cannot be a variable name (it must be non-empty, without `=` or `/`)"
        ))
    }
}

/// `environ`, in file order.
pub(super) struct Environ;

impl Rule for Environ {
    type Value = Vec<(String, String)>;
    const REQUEST: Request = Request::Mapping;
    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a mapping of variable names to values")
    }
    fn take_map<'de, A: MapAccess<'de>>(&self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut variables: Vec<(String, String)> = Vec::new();
        // A set beside the list: searching the list for each name is quadratic, and
        // a big `environ` made every `sv reconfigure` take seconds.
        let mut names = HashSet::new();
        while let Some(name) = map.next_key_seed(Parse(VariableName { set: &names }))? {
            let value = map.next_value_seed(Parse(VARIABLE_VALUE))?;
            names.insert(name.clone());
            variables.push((name, value));
        }
        Ok(variables)
    }
}

/// A name of `environ`, not one of those already `set`.
struct VariableName<'a> {
    set: &'a HashSet<String>,
}

impl Rule for VariableName<'_> {
    type Value = String;
    const REQUEST: Request = Request::AsWritten;
    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a variable name")
    }
    fn take(&self, scalar: Scalar<'_>) -> Result<String, Refusal> {
        let Scalar::Text(name) = scalar else {
            return Err(Refusal::WrongType);
        };
        if name.is_empty() || name.contains(['=', '\0']) {
            return Err(format!(
                "`{name}` cannot be a variable name (it must be non-empty, without `=`)"
            )
            .into());
        }
        if self.set.contains(name) {
            return Err(format!("`{name}` is set twice").into());
        }
        Ok(name.to_string())
    }
}

/// A non-negative number of seconds, integer or not.
pub(super) struct Seconds {
    may_be_zero: bool,
}

pub(super) const SECONDS: Seconds = Seconds { may_be_zero: true };
pub(super) const POSITIVE_SECONDS: Seconds = Seconds { may_be_zero: false };

impl Rule for Seconds {
    type Value = Duration;
    const REQUEST: Request = Request::Resolved;
    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a number of seconds, such as 10 or 0.5")
    }
    fn take(&self, scalar: Scalar<'_>) -> Result<Duration, Refusal> {
        let duration = match scalar {
            Scalar::Unsigned(seconds) => Duration::from_secs(seconds),
            Scalar::Signed(seconds) => match u64::try_from(seconds) {
                Ok(seconds) => Duration::from_secs(seconds),
                Err(_) => return Err(format!("must not be negative, got {seconds} seconds").into()),
            },
            Scalar::Float(seconds) if seconds < 0.0 => {
                return Err(format!("must not be negative, got {seconds} seconds").into())
            }
            Scalar::Float(seconds) => Duration::try_from_secs_f64(seconds)
                .map_err(|_| format!("{seconds} is not a usable number of seconds"))?,
            _ => return Err(Refusal::WrongType),
        };
        if duration.is_zero() && !self.may_be_zero {
            return Err("must be more than 0 seconds".into());
        }
        Ok(duration)
    }
}

/// `ready_fd`, by the rule of s6's `notification-fd`.
pub(super) struct FileDescriptor;

impl Rule for FileDescriptor {
    type Value = i32;
    const REQUEST: Request = Request::Resolved;
    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a file descriptor number, 3 or more")
    }
    fn take(&self, scalar: Scalar<'_>) -> Result<i32, Refusal> {
        match scalar {
            Scalar::Signed(number) => Ok(notification_fd(number)?),
            Scalar::Unsigned(number) => {
                Ok(notification_fd(i64::try_from(number).unwrap_or(i64::MAX))?)
            }
            _ => Err(Refusal::WrongType),
        }
    }
}

/// `nice`: an integer from -20 to 19.
pub(super) struct Nice;

impl Rule for Nice {
    type Value = i32;
    const REQUEST: Request = Request::Resolved;
    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a nice value from -20 to 19")
    }
    fn take(&self, scalar: Scalar<'_>) -> Result<i32, Refusal> {
        match scalar {
            Scalar::Signed(value) => Ok(check_nice(value)?),
            Scalar::Unsigned(value) => Ok(check_nice(i64::try_from(value).unwrap_or(i64::MAX))?),
            _ => Err(Refusal::WrongType),
        }
    }
}

/// `log_tail`: bytes of recent output runsv keeps (0: none).
pub(super) struct TailSize;

/// More than this is not a tail: sv log reads it whole.
const TAIL_MAX: u64 = 64 * 1024 * 1024;

impl Rule for TailSize {
    type Value = u64;
    const REQUEST: Request = Request::Resolved;
    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a number of bytes, from 0 to 67108864 (64 MiB)")
    }
    fn take(&self, scalar: Scalar<'_>) -> Result<u64, Refusal> {
        let bytes = match scalar {
            Scalar::Unsigned(bytes) => bytes,
            Scalar::Signed(bytes) => u64::try_from(bytes).map_err(|_| "must be 0 or more bytes")?,
            _ => return Err(Refusal::WrongType),
        };
        if bytes > TAIL_MAX {
            return Err("must be at most 67108864 bytes (64 MiB)".into());
        }
        Ok(bytes)
    }
}
