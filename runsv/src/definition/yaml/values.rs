//! What each key of `service.yaml` takes, with the wording of its errors: one generic
//! rule for every single scalar ([`Typed`]: the form it is read in and its check), and a
//! [`Rule`] of its own for each value that is a list or a mapping.

use super::super::controls::{check_nice, parse_limit, parse_umask, Limit, Resource, Unit};
use super::super::{notification_fd, split_words, stop_signal, LogDestination};
use super::rule::{Parse, Refusal, Request, Rule, Scalar};
use nix::sys::signal::Signal;
use serde::de::{MapAccess, SeqAccess};
use std::collections::HashSet;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// One scalar, read in its form and then checked: the rule of every key whose value is a
/// single scalar (commands, paths, names, signals, sizes, counts, limits, seconds, file
/// descriptors, booleans). The check's message is the error's, at the value's line.
pub(super) struct Typed<T> {
    expecting: &'static str,
    form: Form<T>,
}

/// The form a scalar is read in, with the check that makes it a value.
enum Form<T> {
    /// As written: resolving it would make `1.10` the float 1.1 and `0755` the integer 755.
    Text(fn(&str) -> Result<T, String>),
    /// A whole number; one beyond i64 is taken as i64::MAX, out of every range here.
    Integer(fn(i64) -> Result<T, String>),
    /// A non-negative number of seconds, whole or not.
    Seconds(fn(Duration) -> Result<T, String>),
    /// `true` or `false` (not `yes`, not `1`).
    Boolean(fn(bool) -> T),
}

// By hand: derived, they would ask T to be Copy, where only fn pointers are copied.
impl<T> Clone for Typed<T> {
    fn clone(&self) -> Typed<T> {
        *self
    }
}
impl<T> Copy for Typed<T> {}
impl<T> Clone for Form<T> {
    fn clone(&self) -> Form<T> {
        *self
    }
}
impl<T> Copy for Form<T> {}

impl<T> Typed<T> {
    const fn text(expecting: &'static str, parse: fn(&str) -> Result<T, String>) -> Typed<T> {
        Typed {
            expecting,
            form: Form::Text(parse),
        }
    }
    const fn integer(expecting: &'static str, check: fn(i64) -> Result<T, String>) -> Typed<T> {
        Typed {
            expecting,
            form: Form::Integer(check),
        }
    }
}

impl<T> Rule for Typed<T> {
    type Value = T;
    fn request(&self) -> Request {
        match self.form {
            Form::Text(_) => Request::AsWritten,
            Form::Integer(_) | Form::Seconds(_) => Request::Resolved,
            Form::Boolean(_) => Request::Boolean,
        }
    }
    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str(self.expecting)
    }
    fn take(&self, scalar: Scalar<'_>) -> Result<T, Refusal> {
        match (&self.form, scalar) {
            (Form::Text(parse), Scalar::Text(text)) => Ok(parse(text)?),
            (Form::Integer(check), Scalar::Signed(number)) => Ok(check(number)?),
            (Form::Integer(check), Scalar::Unsigned(number)) => {
                Ok(check(i64::try_from(number).unwrap_or(i64::MAX))?)
            }
            (Form::Boolean(value), Scalar::Bool(boolean)) => Ok(value(boolean)),
            (Form::Seconds(check), scalar) => Ok(check(seconds(scalar)?)?),
            _ => Err(Refusal::WrongType),
        }
    }
}

pub(super) const COMMAND: Typed<Vec<String>> = Typed::text("a command line", parse_command);
pub(super) const DIRECTORY: Typed<PathBuf> = Typed::text("a directory path", |text| {
    parse_path(
        text,
        "is empty; leave dir out to run in the service directory",
    )
});
pub(super) const ENV_PATH: Typed<PathBuf> =
    Typed::text("a path", |text| parse_path(text, "is empty"));
pub(super) const ACCOUNT: Typed<String> = Typed::text("a name or a number", parse_account);
pub(super) const SIGNAL: Typed<Signal> = Typed::text("a signal name or number", stop_signal);
pub(super) const LOG: Typed<LogDestination> = Typed::text("kmsg, console or none", parse_log);
const SERVICE_NAME: Typed<String> = Typed::text("a service name", parse_service_name);
const VARIABLE_VALUE: Typed<String> =
    Typed::text("a string, number or boolean", parse_variable_value);
pub(super) const KILL_MODE: Typed<crate::definition::KillMode> =
    Typed::text("group or process", parse_kill_mode);
pub(super) const ON_FAILURE: Typed<crate::failure::OnFailure> =
    Typed::text("continue, warn or stop", parse_on_failure);
pub(super) const BYTES: Typed<u64> = Typed::text(
    "a size such as 64M or 1G",
    crate::cgroup::limits::parse_bytes,
);
pub(super) const WEIGHT: Typed<u32> = Typed::text(
    "a weight from 1 to 10000",
    crate::cgroup::limits::parse_weight,
);
pub(super) const CPU_SHARE: Typed<u64> = Typed::text(
    "a CPU share such as 50% or 1.5",
    crate::cgroup::limits::parse_cpu_max,
);
pub(super) const COUNT: Typed<u64> =
    Typed::text("a number of processes", crate::cgroup::limits::parse_count);
pub(super) const UMASK: Typed<u32> = Typed::text("an octal umask such as 022", parse_umask);
/// `ready_fd`, by the rule of s6's `notification-fd`.
pub(super) const FILE_DESCRIPTOR: Typed<i32> =
    Typed::integer("a file descriptor number, 3 or more", notification_fd);
pub(super) const NICE: Typed<i32> = Typed::integer("a nice value from -20 to 19", check_nice);
/// `log_tail`: bytes of recent output runsv keeps (0: none).
pub(super) const TAIL_SIZE: Typed<u64> =
    Typed::integer("a number of bytes, from 0 to 67108864 (64 MiB)", tail_size);
pub(super) const BOOLEAN: Typed<bool> = Typed {
    expecting: "a boolean",
    form: Form::Boolean(|value| value),
};
pub(super) const SECONDS: Typed<Duration> = Typed {
    expecting: SECONDS_EXPECTED,
    form: Form::Seconds(Ok),
};
pub(super) const POSITIVE_SECONDS: Typed<Duration> = Typed {
    expecting: SECONDS_EXPECTED,
    form: Form::Seconds(|duration| {
        if duration.is_zero() {
            return Err("must be more than 0 seconds".to_string());
        }
        Ok(duration)
    }),
};
const SECONDS_EXPECTED: &str = "a number of seconds, such as 10 or 0.5";
const SAVED_VARIABLE: Typed<String> = Typed::text("a variable name", parse_saved_variable);

/// The rule of a `limit_*` key: as written, so that `64M` and `4096` are read alike.
pub(super) fn limit(resource: Resource) -> Typed<Limit> {
    match resource.unit() {
        Unit::Count => Typed::text("a number or unlimited", |text| {
            parse_limit(Unit::Count, text)
        }),
        Unit::Bytes => Typed::text(
            "a number of bytes (K, M, G or T allowed) or unlimited",
            |text| parse_limit(Unit::Bytes, text),
        ),
        Unit::Seconds => Typed::text("a number of seconds or unlimited", |text| {
            parse_limit(Unit::Seconds, text)
        }),
    }
}

/// A number of seconds, integer or not, 0 or more.
fn seconds(scalar: Scalar<'_>) -> Result<Duration, Refusal> {
    match scalar {
        Scalar::Unsigned(seconds) => Ok(Duration::from_secs(seconds)),
        Scalar::Signed(seconds) => u64::try_from(seconds)
            .map(Duration::from_secs)
            .map_err(|_| format!("must not be negative, got {seconds} seconds").into()),
        Scalar::Float(seconds) if seconds < 0.0 => {
            Err(format!("must not be negative, got {seconds} seconds").into())
        }
        Scalar::Float(seconds) => Duration::try_from_secs_f64(seconds)
            .map_err(|_| format!("{seconds} is not a usable number of seconds").into()),
        _ => Err(Refusal::WrongType),
    }
}

/// More than this is not a tail: sv log reads it whole.
const TAIL_MAX: u64 = 64 * 1024 * 1024;

fn tail_size(bytes: i64) -> Result<u64, String> {
    let bytes = u64::try_from(bytes).map_err(|_| "must be 0 or more bytes")?;
    if bytes > TAIL_MAX {
        return Err("must be at most 67108864 bytes (64 MiB)".to_string());
    }
    Ok(bytes)
}

fn parse_command(text: &str) -> Result<Vec<String>, String> {
    let words = split_words(text)?;
    if words[0].is_empty() {
        return Err("the program name is empty".to_string());
    }
    Ok(words)
}

/// A path, not empty (`empty` says so in the key's words), without NUL.
fn parse_path(text: &str, empty: &str) -> Result<PathBuf, String> {
    if text.is_empty() {
        return Err(empty.to_string());
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

fn parse_kill_mode(text: &str) -> Result<crate::definition::KillMode, String> {
    match text {
        "group" => Ok(crate::definition::KillMode::Group),
        "process" => Ok(crate::definition::KillMode::Process),
        other => Err(format!("unknown mode `{other}`; use group or process")),
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

/// `after: name` or `after: [a, b]`. The single name is resolved, so `after: 42` is
/// refused where `after: [42]` names `42`.
pub(super) struct After;

impl Rule for After {
    type Value = Vec<String>;
    fn request(&self) -> Request {
        Request::Resolved
    }
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
    fn take_list<'de, A: SeqAccess<'de>>(&self, items: A) -> Result<Vec<String>, A::Error> {
        // Naming a dependency twice says nothing more; keeping one keeps the graph that
        // svdir builds simple.
        distinct(items, SERVICE_NAME)
    }
}

/// `container_env: all`, or a list of variable names (kept once each, in order).
pub(super) struct ContainerEnv;

impl Rule for ContainerEnv {
    type Value = crate::container_env::Selection;
    fn request(&self) -> Request {
        Request::Resolved
    }
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
    fn take_list<'de, A: SeqAccess<'de>>(&self, items: A) -> Result<Self::Value, A::Error> {
        distinct(items, SAVED_VARIABLE).map(crate::container_env::Selection::Names)
    }
}

/// A list's names by `rule`, each kept once, in order.
fn distinct<'de, A: SeqAccess<'de>>(
    mut items: A,
    rule: Typed<String>,
) -> Result<Vec<String>, A::Error> {
    let mut names: Vec<String> = Vec::new();
    while let Some(name) = items.next_element_seed(Parse(rule))? {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    Ok(names)
}

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
    fn request(&self) -> Request {
        Request::Mapping
    }
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
    fn request(&self) -> Request {
        Request::AsWritten
    }
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
