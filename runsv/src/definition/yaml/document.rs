//! The mapping of `service.yaml`: its keys, each read by the rule of its value, and
//! where in the text a key stands.

use super::super::controls::{Limit, Resource};
use super::super::LogDestination;
use super::rule::{Parse, Refusal, Request, Rule, Scalar};
use super::values::{
    limit, After, ContainerEnv, Environ, ACCOUNT, BOOLEAN, BYTES, COMMAND, COUNT, CPU_SHARE,
    DIRECTORY, ENV_PATH, FILE_DESCRIPTOR, KILL_MODE, LOG, NICE, ON_FAILURE, POSITIVE_SECONDS,
    SECONDS, SIGNAL, TAIL_SIZE, UMASK, WEIGHT,
};
use nix::sys::signal::Signal;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess};
use serde::Deserialize;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Key {
    Exec,
    Oneshot,
    After,
    Environ,
    Test,
    TestInterval,
    ReadyFd,
    Dir,
    User,
    Group,
    StopSignal,
    StopTimeout,
    KillMode,
    RestartDelay,
    RestartDelayMax,
    Log,
    LogTail,
    ContainerEnv,
    OnFailure,
    MemoryMax,
    MemoryHigh,
    CpuWeight,
    CpuMax,
    PidsMax,
    IoWeight,
    Limit(Resource),
    Nice,
    Umask,
    EnvFile,
    EnvDir,
}

/// In the order the documentation presents them, which is also the order error messages
/// list them in.
const ALL_KEYS: [Key; 39] = [
    Key::Exec,
    Key::Oneshot,
    Key::After,
    Key::Environ,
    Key::Test,
    Key::TestInterval,
    Key::ReadyFd,
    Key::Dir,
    Key::User,
    Key::Group,
    Key::StopSignal,
    Key::StopTimeout,
    Key::KillMode,
    Key::RestartDelay,
    Key::RestartDelayMax,
    Key::Log,
    Key::LogTail,
    Key::ContainerEnv,
    Key::OnFailure,
    Key::MemoryMax,
    Key::MemoryHigh,
    Key::CpuWeight,
    Key::CpuMax,
    Key::PidsMax,
    Key::IoWeight,
    Key::Limit(Resource::Nofile),
    Key::Limit(Resource::Nproc),
    Key::Limit(Resource::Core),
    Key::Limit(Resource::Data),
    Key::Limit(Resource::Stack),
    Key::Limit(Resource::Fsize),
    Key::Limit(Resource::Rss),
    Key::Limit(Resource::As),
    Key::Limit(Resource::Memlock),
    Key::Limit(Resource::Cpu),
    Key::Nice,
    Key::Umask,
    Key::EnvFile,
    Key::EnvDir,
];

impl Key {
    pub(super) fn name(self) -> &'static str {
        match self {
            Key::Exec => "exec",
            Key::Oneshot => "oneshot",
            Key::After => "after",
            Key::Environ => "environ",
            Key::Test => "test",
            Key::TestInterval => "test_interval",
            Key::ReadyFd => "ready_fd",
            Key::Dir => "dir",
            Key::User => "user",
            Key::Group => "group",
            Key::StopSignal => "stop_signal",
            Key::StopTimeout => "stop_timeout",
            Key::KillMode => "kill_mode",
            Key::RestartDelay => "restart_delay",
            Key::RestartDelayMax => "restart_delay_max",
            Key::Log => "log",
            Key::LogTail => "log_tail",
            Key::ContainerEnv => "container_env",
            Key::OnFailure => "on_failure",
            Key::MemoryMax => "memory_max",
            Key::MemoryHigh => "memory_high",
            Key::CpuWeight => "cpu_weight",
            Key::CpuMax => "cpu_max",
            Key::PidsMax => "pids_max",
            Key::IoWeight => "io_weight",
            Key::Limit(resource) => resource.key(),
            Key::Nice => "nice",
            Key::Umask => "umask",
            Key::EnvFile => "env_file",
            Key::EnvDir => "env_dir",
        }
    }

    fn named(name: &str) -> Option<Key> {
        ALL_KEYS.into_iter().find(|key| key.name() == name)
    }
}

/// The values of `service.yaml`, each checked on its own.
#[derive(Default)]
pub(super) struct Document {
    /// In file order, to find the keys a later check is about.
    pub keys: Vec<Key>,
    pub exec: Vec<String>,
    pub oneshot: Option<bool>,
    pub after: Option<Vec<String>>,
    pub environ: Option<Vec<(String, String)>>,
    pub test: Option<Vec<String>>,
    pub test_interval: Option<Duration>,
    pub ready_fd: Option<i32>,
    pub dir: Option<PathBuf>,
    pub user: Option<String>,
    pub group: Option<String>,
    pub stop_signal: Option<Signal>,
    pub stop_timeout: Option<Duration>,
    pub restart_delay: Option<Duration>,
    pub restart_delay_max: Option<Duration>,
    pub log: Option<LogDestination>,
    pub log_tail: Option<u64>,
    pub container_env: Option<crate::container_env::Selection>,
    pub on_failure: Option<crate::failure::OnFailure>,
    pub kill_mode: Option<crate::definition::KillMode>,
    pub limits: crate::cgroup::Limits,
    /// Each resource once (a key appears once), in file order.
    pub rlimits: Vec<(Resource, Limit)>,
    pub nice: Option<i32>,
    pub umask: Option<u32>,
    pub env_file: Option<PathBuf>,
    pub env_dir: Option<PathBuf>,
}

/// Parses the text, or gives the 1-based line and message of the first error.
pub(super) fn parse(text: &str) -> Result<Document, (usize, String)> {
    // serde_yaml hands values to the visitors before it has read the rest of the document,
    // so a syntax error could otherwise be reported as the odd value it cut short
    // (`log: none` followed by a mis-indented line reads as `log: none oneshot`).
    for (index, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
        if index == 0 {
            IgnoredAny::deserialize(document).map_err(describe_yaml_error)?;
            continue;
        }
        return match Parse(SecondDocument).deserialize(document) {
            Err(error) if error.to_string().contains(SECOND_DOCUMENT) => Err((
                error.location().map_or(1, |location| location.line()),
                "a second YAML document; a service.yaml holds one mapping".to_string(),
            )),
            Err(error) => Err(describe_yaml_error(error)),
            Ok(()) => Err((1, "a second YAML document".to_string())),
        };
    }
    Parse(Mapping)
        .deserialize(serde_yaml::Deserializer::from_str(text))
        .map_err(describe_yaml_error)
        // A file without keys has no mapping to point into: serde_yaml places the empty
        // one at the end of the file, but the fault is the whole file's.
        .map_err(|(line, message)| {
            if message == EMPTY_FILE {
                (1, message)
            } else {
                (line, message)
            }
        })
}

const EMPTY_FILE: &str = "empty: exec is required";

/// serde_yaml's messages end in the position, which DefinitionError already shows.
fn describe_yaml_error(error: serde_yaml::Error) -> (usize, String) {
    let text = error.to_string();
    match error.location() {
        Some(location) => {
            let suffix = format!(" at line {} column {}", location.line(), location.column());
            (location.line(), text.replacen(&suffix, "", 1))
        }
        None => (1, text),
    }
}

/// Parses `text` again, stopping with an error at `key`: the error's position is the
/// key's, which serde_yaml offers no other way to learn. Only used once the text is known
/// to parse, and to hold `key`.
pub(super) fn line_of_key(text: &str, key: Key) -> usize {
    let Some(document) = serde_yaml::Deserializer::from_str(text).next() else {
        return 1;
    };
    match Parse(KeyLocator(key)).deserialize(document) {
        Err(error) => error.location().map_or(1, |location| location.line()),
        Ok(()) => 1,
    }
}

/// Reads the keys as the document does, refusing `key` as one seen before: every key of
/// a text that parsed is known and once, so the first error stands at `key`.
struct KeyLocator(Key);

impl Rule for KeyLocator {
    type Value = ();
    fn request(&self) -> Request {
        Request::Mapping
    }
    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a mapping")
    }
    fn take_map<'de, A: MapAccess<'de>>(&self, mut map: A) -> Result<(), A::Error> {
        let seen = [self.0];
        while map.next_key_seed(Parse(KeyName { seen: &seen }))?.is_some() {
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }
}

const SECOND_DOCUMENT: &str = "no second document";

/// Fails on whatever the second document holds, to learn where it starts.
struct SecondDocument;

impl Rule for SecondDocument {
    type Value = ();
    fn request(&self) -> Request {
        Request::Resolved
    }
    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str(SECOND_DOCUMENT)
    }
}

/// The whole file: a mapping of the keys above.
struct Mapping;

impl Rule for Mapping {
    type Value = Document;
    fn request(&self) -> Request {
        Request::Mapping
    }

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a mapping of keys, such as `exec: /usr/bin/program`")
    }

    fn take_map<'de, A: MapAccess<'de>>(&self, mut map: A) -> Result<Document, A::Error> {
        let mut document = Document::default();
        while let Some(key) = map.next_key_seed(Parse(KeyName {
            seen: &document.keys,
        }))? {
            document.keys.push(key);
            let d = &mut document;
            match key {
                Key::Exec => d.exec = map.next_value_seed(Parse(COMMAND))?,
                Key::Oneshot => d.oneshot = value(&mut map, BOOLEAN)?,
                Key::After => d.after = value(&mut map, After)?,
                Key::Environ => d.environ = value(&mut map, Environ)?,
                Key::Test => d.test = value(&mut map, COMMAND)?,
                Key::TestInterval => d.test_interval = value(&mut map, POSITIVE_SECONDS)?,
                Key::ReadyFd => d.ready_fd = value(&mut map, FILE_DESCRIPTOR)?,
                Key::Dir => d.dir = value(&mut map, DIRECTORY)?,
                Key::User => d.user = value(&mut map, ACCOUNT)?,
                Key::Group => d.group = value(&mut map, ACCOUNT)?,
                Key::StopSignal => d.stop_signal = value(&mut map, SIGNAL)?,
                Key::StopTimeout => d.stop_timeout = value(&mut map, SECONDS)?,
                Key::KillMode => d.kill_mode = value(&mut map, KILL_MODE)?,
                // A zero first delay would never grow: a service that keeps dying would
                // be restarted in a busy loop.
                Key::RestartDelay => d.restart_delay = value(&mut map, POSITIVE_SECONDS)?,
                Key::RestartDelayMax => d.restart_delay_max = value(&mut map, POSITIVE_SECONDS)?,
                Key::Log => d.log = value(&mut map, LOG)?,
                Key::LogTail => d.log_tail = value(&mut map, TAIL_SIZE)?,
                Key::ContainerEnv => d.container_env = value(&mut map, ContainerEnv)?,
                Key::OnFailure => d.on_failure = value(&mut map, ON_FAILURE)?,
                Key::MemoryMax => d.limits.memory_max = value(&mut map, BYTES)?,
                Key::MemoryHigh => d.limits.memory_high = value(&mut map, BYTES)?,
                Key::CpuWeight => d.limits.cpu_weight = value(&mut map, WEIGHT)?,
                Key::CpuMax => d.limits.cpu_max = value(&mut map, CPU_SHARE)?,
                Key::PidsMax => d.limits.pids_max = value(&mut map, COUNT)?,
                Key::IoWeight => d.limits.io_weight = value(&mut map, WEIGHT)?,
                Key::Limit(resource) => {
                    let limit = map.next_value_seed(Parse(limit(resource)))?;
                    d.rlimits.push((resource, limit));
                }
                Key::Nice => d.nice = value(&mut map, NICE)?,
                Key::Umask => d.umask = value(&mut map, UMASK)?,
                Key::EnvFile => d.env_file = value(&mut map, ENV_PATH)?,
                Key::EnvDir => d.env_dir = value(&mut map, ENV_PATH)?,
            }
        }
        // Raised here, the error points at the start of the mapping.
        if !document.keys.contains(&Key::Exec) {
            return Err(de::Error::custom(if document.keys.is_empty() {
                EMPTY_FILE
            } else {
                "exec is missing; it is the one required key"
            }));
        }
        Ok(document)
    }
}

fn value<'de, A: MapAccess<'de>, R: Rule>(
    map: &mut A,
    rule: R,
) -> Result<Option<R::Value>, A::Error> {
    map.next_value_seed(Parse(rule)).map(Some)
}

/// A key of the mapping: known, and not `seen` before.
struct KeyName<'a> {
    seen: &'a [Key],
}

impl Rule for KeyName<'_> {
    type Value = Key;
    fn request(&self) -> Request {
        Request::AsWritten
    }

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        write!(formatter, "a key name ({})", accepted_keys())
    }

    fn take(&self, scalar: Scalar<'_>) -> Result<Key, Refusal> {
        let Scalar::Text(name) = scalar else {
            return Err(Refusal::WrongType);
        };
        match Key::named(name) {
            Some(key) if self.seen.contains(&key) => Err(format!("duplicate key `{name}`").into()),
            Some(key) => Ok(key),
            None => {
                let suggestion = ALL_KEYS
                    .into_iter()
                    .map(Key::name)
                    .filter(|known| edit_distance(known, name) <= 2)
                    .min_by_key(|known| edit_distance(known, name))
                    .map(|known| format!(" (did you mean `{known}`?)"))
                    .unwrap_or_default();
                Err(format!(
                    "unknown key `{name}`{suggestion}; accepted keys: {}",
                    accepted_keys()
                )
                .into())
            }
        }
    }
}

fn accepted_keys() -> String {
    ALL_KEYS.map(Key::name).join(", ")
}

/// Levenshtein distance, for suggesting the key a typo meant.
pub(super) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, a_char) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, b_char) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(a_char != *b_char);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}
