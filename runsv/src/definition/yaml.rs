//! The native form, `service.yaml`.
//!
//! Every error names the file, a line and the key. serde_yaml gives a position only to an
//! error raised while it deserializes a node, so each key's value is checked inside its
//! own visitor: a bad value is reported at the value's line (the key's line in the usual
//! `key: value` layout, the item's line inside a list or map). Checks that involve more
//! than one key, or the system's user database, run after parsing and report the line of
//! the key at fault, found by parsing again and stopping at that key.

use super::accounts;
use super::{
    notification_fd, split_words, stop_signal, Credentials, DefinitionError, DirectoryFacts,
    Environment, Form, LogDestination, Readiness, ServiceDefinition, SystemFiles, DEFAULT_PATH,
    DEFAULT_RESTART_DELAY, DEFAULT_RESTART_DELAY_MAX, DEFAULT_STOP_SIGNAL, DEFAULT_TEST_INTERVAL,
};
use nix::sys::signal::Signal;
use serde::de::{
    self, Deserialize, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor,
};
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Key {
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
    RestartDelay,
    RestartDelayMax,
    Log,
    LogTail,
}

/// In the order the documentation presents them, which is also the order error messages
/// list them in.
const ALL_KEYS: [Key; 16] = [
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
    Key::RestartDelay,
    Key::RestartDelayMax,
    Key::Log,
    Key::LogTail,
];

impl Key {
    fn name(self) -> &'static str {
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
            Key::RestartDelay => "restart_delay",
            Key::RestartDelayMax => "restart_delay_max",
            Key::Log => "log",
            Key::LogTail => "log_tail",
        }
    }

    fn named(name: &str) -> Option<Key> {
        ALL_KEYS.into_iter().find(|key| key.name() == name)
    }
}

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

    let mut variables = document.environ.unwrap_or_default();
    let mut add_unless_set = |name: &str, value: &str| {
        if !variables.iter().any(|(set, _)| set == name) {
            variables.push((name.to_string(), value.to_string()));
        }
    };
    add_unless_set("PATH", DEFAULT_PATH);
    if let Some(credentials) = &credentials {
        add_unless_set("HOME", &credentials.home.to_string_lossy());
        add_unless_set("USER", &credentials.user_name);
        add_unless_set("LOGNAME", &credentials.user_name);
    }

    let working_directory = match document.dir {
        Some(dir) => directory.join(dir),
        None => directory.to_path_buf(),
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
    })
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

/// The values of `service.yaml`, each checked on its own.
struct Document {
    /// In file order, to find the keys a later check is about.
    keys: Vec<Key>,
    exec: Vec<String>,
    oneshot: Option<bool>,
    after: Option<Vec<String>>,
    environ: Option<Vec<(String, String)>>,
    test: Option<Vec<String>>,
    test_interval: Option<Duration>,
    ready_fd: Option<i32>,
    dir: Option<PathBuf>,
    user: Option<String>,
    group: Option<String>,
    stop_signal: Option<Signal>,
    stop_timeout: Option<Duration>,
    restart_delay: Option<Duration>,
    restart_delay_max: Option<Duration>,
    log: Option<LogDestination>,
    log_tail: Option<u64>,
}

/// Parses the text, or gives the 1-based line and message of the first error.
fn parse(text: &str) -> Result<Document, (usize, String)> {
    // serde_yaml hands values to the visitors before it has read the rest of the document,
    // so a syntax error could otherwise be reported as the odd value it cut short
    // (`log: none` followed by a mis-indented line reads as `log: none oneshot`).
    for (index, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
        if index == 0 {
            IgnoredAny::deserialize(document).map_err(describe_yaml_error)?;
            continue;
        }
        return match SecondDocument.deserialize(document) {
            Err(error) if error.to_string().contains(SECOND_DOCUMENT) => Err((
                error.location().map_or(1, |location| location.line()),
                "a second YAML document; a service.yaml holds one mapping".to_string(),
            )),
            Err(error) => Err(describe_yaml_error(error)),
            Ok(()) => Err((1, "a second YAML document".to_string())),
        };
    }
    DocumentVisitor
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
fn line_of_key(text: &str, key: Key) -> usize {
    let Some(document) = serde_yaml::Deserializer::from_str(text).next() else {
        return 1;
    };
    match KeyLocator(key.name()).deserialize(document) {
        Err(error) => error.location().map_or(1, |location| location.line()),
        Ok(()) => 1,
    }
}

struct KeyLocator(&'static str);

impl<'de> DeserializeSeed<'de> for KeyLocator {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for KeyLocator {
    type Value = ();
    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a mapping")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key_seed(StopAtKey(self.0))?.is_some() {
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }
}

struct StopAtKey(&'static str);

impl<'de> DeserializeSeed<'de> for StopAtKey {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for StopAtKey {
    type Value = ();
    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a key")
    }
    fn visit_str<E: de::Error>(self, key: &str) -> Result<(), E> {
        if key == self.0 {
            Err(E::custom("found"))
        } else {
            Ok(())
        }
    }
}

const SECOND_DOCUMENT: &str = "no second document";

/// Fails on whatever the second document holds, to learn where it starts.
struct SecondDocument;

impl<'de> DeserializeSeed<'de> for SecondDocument {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for SecondDocument {
    type Value = ();
    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str(SECOND_DOCUMENT)
    }
}

struct DocumentVisitor;

impl<'de> DeserializeSeed<'de> for DocumentVisitor {
    type Value = Document;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Document, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for DocumentVisitor {
    type Value = Document;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a mapping of keys, such as `exec: /usr/bin/program`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Document, A::Error> {
        let mut keys = Vec::new();
        let mut exec = None;
        let mut oneshot = None;
        let mut after = None;
        let mut environ = None;
        let mut test = None;
        let mut test_interval = None;
        let mut ready_fd = None;
        let mut dir = None;
        let mut user = None;
        let mut group = None;
        let mut stop_signal_value = None;
        let mut stop_timeout = None;
        let mut restart_delay = None;
        let mut restart_delay_max = None;
        let mut log = None;
        let mut log_tail = None;

        while let Some(key) = map.next_key_seed(KeySeed { seen: &keys })? {
            keys.push(key);
            match key {
                Key::Exec => exec = Some(map.next_value_seed(COMMAND)?),
                Key::Oneshot => oneshot = Some(map.next_value::<bool>()?),
                Key::After => after = Some(map.next_value_seed(AfterSeed)?),
                Key::Environ => environ = Some(map.next_value_seed(EnvironSeed)?),
                Key::Test => test = Some(map.next_value_seed(COMMAND)?),
                Key::TestInterval => {
                    test_interval = Some(map.next_value_seed(Seconds { may_be_zero: false })?)
                }
                Key::ReadyFd => ready_fd = Some(map.next_value_seed(FileDescriptor)?),
                Key::Dir => dir = Some(map.next_value_seed(DIRECTORY)?),
                Key::User => user = Some(map.next_value_seed(ACCOUNT)?),
                Key::Group => group = Some(map.next_value_seed(ACCOUNT)?),
                Key::StopSignal => stop_signal_value = Some(map.next_value_seed(SIGNAL)?),
                Key::StopTimeout => {
                    stop_timeout = Some(map.next_value_seed(Seconds { may_be_zero: true })?)
                }
                // A zero first delay would never grow: a service that keeps dying would
                // be restarted in a busy loop.
                Key::RestartDelay => {
                    restart_delay = Some(map.next_value_seed(Seconds { may_be_zero: false })?)
                }
                Key::RestartDelayMax => {
                    restart_delay_max = Some(map.next_value_seed(Seconds { may_be_zero: false })?)
                }
                Key::Log => log = Some(map.next_value_seed(LOG)?),
                Key::LogTail => log_tail = Some(map.next_value_seed(TailSize)?),
            }
        }

        // Raised here, the error points at the start of the mapping.
        let Some(exec) = exec else {
            return Err(de::Error::custom(if keys.is_empty() {
                EMPTY_FILE
            } else {
                "exec is missing; it is the one required key"
            }));
        };
        Ok(Document {
            keys,
            exec,
            oneshot,
            after,
            environ,
            test,
            test_interval,
            ready_fd,
            dir,
            user,
            group,
            stop_signal: stop_signal_value,
            stop_timeout,
            restart_delay,
            restart_delay_max,
            log,
            log_tail,
        })
    }
}

struct KeySeed<'a> {
    seen: &'a [Key],
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Key;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Key, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = Key;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        write!(formatter, "a key name ({})", accepted_keys())
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<Key, E> {
        match Key::named(name) {
            Some(key) if self.seen.contains(&key) => {
                Err(E::custom(format!("duplicate key `{name}`")))
            }
            Some(key) => Ok(key),
            None => {
                let suggestion = ALL_KEYS
                    .into_iter()
                    .map(Key::name)
                    .filter(|known| edit_distance(known, name) <= 2)
                    .min_by_key(|known| edit_distance(known, name))
                    .map(|known| format!(" (did you mean `{known}`?)"))
                    .unwrap_or_default();
                Err(E::custom(format!(
                    "unknown key `{name}`{suggestion}; accepted keys: {}",
                    accepted_keys()
                )))
            }
        }
    }
}

fn accepted_keys() -> String {
    ALL_KEYS.map(Key::name).join(", ")
}

/// Levenshtein distance, for suggesting the key a typo meant.
fn edit_distance(a: &str, b: &str) -> usize {
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

/// A scalar taken as written (`1.10` stays `1.10`, `0755` stays `0755`), then checked.
struct Text<T> {
    expecting: &'static str,
    parse: fn(&str) -> Result<T, String>,
}

impl<T> Clone for Text<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Text<T> {}

impl<'de, T> DeserializeSeed<'de> for Text<T> {
    type Value = T;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<T, D::Error> {
        // deserialize_str hands any scalar over as its source text, where deserialize_any
        // would have turned `1.10` into the float 1.1.
        deserializer.deserialize_str(self)
    }
}

impl<'de, T> Visitor<'de> for Text<T> {
    type Value = T;
    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str(self.expecting)
    }
    fn visit_str<E: de::Error>(self, text: &str) -> Result<T, E> {
        (self.parse)(text).map_err(E::custom)
    }
}

const COMMAND: Text<Vec<String>> = Text {
    expecting: "a command line",
    parse: parse_command,
};
const DIRECTORY: Text<PathBuf> = Text {
    expecting: "a directory path",
    parse: parse_directory,
};
const ACCOUNT: Text<String> = Text {
    expecting: "a name or a number",
    parse: parse_account,
};
const SIGNAL: Text<Signal> = Text {
    expecting: "a signal name or number",
    parse: stop_signal,
};
const LOG: Text<LogDestination> = Text {
    expecting: "kmsg, console or none",
    parse: parse_log,
};
const SERVICE_NAME: Text<String> = Text {
    expecting: "a service name",
    parse: parse_service_name,
};
const VARIABLE_NAME: Text<String> = Text {
    expecting: "a variable name",
    parse: parse_variable_name,
};
const VARIABLE_VALUE: Text<String> = Text {
    expecting: "a string, number or boolean",
    parse: parse_variable_value,
};

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

fn parse_variable_name(text: &str) -> Result<String, String> {
    if text.is_empty() || text.contains(['=', '\0']) {
        return Err(format!(
            "`{text}` cannot be a variable name (it must be non-empty, without `=`)"
        ));
    }
    Ok(text.to_string())
}

fn parse_variable_value(text: &str) -> Result<String, String> {
    if text.contains('\0') {
        return Err("a value cannot contain a NUL character".to_string());
    }
    Ok(text.to_string())
}

/// `after: name` or `after: [a, b]`.
struct AfterSeed;

impl<'de> DeserializeSeed<'de> for AfterSeed {
    type Value = Vec<String>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for AfterSeed {
    type Value = Vec<String>;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a service name or a list of service names")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<Self::Value, E> {
        parse_service_name(name)
            .map(|name| vec![name])
            .map_err(E::custom)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Err(E::custom(
            "has no value; give a service name, a list of names, or leave after out",
        ))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<Self::Value, A::Error> {
        let mut names: Vec<String> = Vec::new();
        while let Some(name) = items.next_element_seed(SERVICE_NAME)? {
            // Naming a dependency twice says nothing more; keeping one keeps the graph
            // that svdir builds simple.
            if !names.contains(&name) {
                names.push(name);
            }
        }
        Ok(names)
    }
}

/// `environ`, in file order.
struct EnvironSeed;

impl<'de> DeserializeSeed<'de> for EnvironSeed {
    type Value = Vec<(String, String)>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EnvironSeed {
    type Value = Vec<(String, String)>;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a mapping of variable names to values")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut variables: Vec<(String, String)> = Vec::new();
        // A set beside the list: searching the list for each name is quadratic, and
        // a big `environ` made every `sv reconfigure` take seconds.
        let mut names = std::collections::HashSet::new();
        while let Some(name) = map.next_key_seed(UniqueVariableName { set: &names })? {
            let value = map.next_value_seed(VARIABLE_VALUE)?;
            names.insert(name.clone());
            variables.push((name, value));
        }
        Ok(variables)
    }
}

struct UniqueVariableName<'a> {
    set: &'a std::collections::HashSet<String>,
}

impl<'de> DeserializeSeed<'de> for UniqueVariableName<'_> {
    type Value = String;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<String, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for UniqueVariableName<'_> {
    type Value = String;
    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        VARIABLE_NAME.expecting(formatter)
    }
    fn visit_str<E: de::Error>(self, text: &str) -> Result<String, E> {
        let name = parse_variable_name(text).map_err(E::custom)?;
        if self.set.contains(&name) {
            return Err(E::custom(format!("`{name}` is set twice")));
        }
        Ok(name)
    }
}

/// A non-negative number of seconds, integer or not.
struct Seconds {
    may_be_zero: bool,
}

impl Seconds {
    fn check<E: de::Error>(self, duration: Duration) -> Result<Duration, E> {
        if duration.is_zero() && !self.may_be_zero {
            return Err(E::custom("must be more than 0 seconds"));
        }
        Ok(duration)
    }
}

impl<'de> DeserializeSeed<'de> for Seconds {
    type Value = Duration;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Duration, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seconds {
    type Value = Duration;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a number of seconds, such as 10 or 0.5")
    }

    fn visit_u64<E: de::Error>(self, seconds: u64) -> Result<Duration, E> {
        self.check(Duration::from_secs(seconds))
    }

    fn visit_i64<E: de::Error>(self, seconds: i64) -> Result<Duration, E> {
        match u64::try_from(seconds) {
            Ok(seconds) => self.visit_u64(seconds),
            Err(_) => Err(E::custom(format!(
                "must not be negative, got {seconds} seconds"
            ))),
        }
    }

    fn visit_f64<E: de::Error>(self, seconds: f64) -> Result<Duration, E> {
        if seconds < 0.0 {
            return Err(E::custom(format!(
                "must not be negative, got {seconds} seconds"
            )));
        }
        match Duration::try_from_secs_f64(seconds) {
            Ok(duration) => self.check(duration),
            Err(_) => Err(E::custom(format!(
                "{seconds} is not a usable number of seconds"
            ))),
        }
    }
}

struct FileDescriptor;

impl<'de> DeserializeSeed<'de> for FileDescriptor {
    type Value = i32;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<i32, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for FileDescriptor {
    type Value = i32;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a file descriptor number, 3 or more")
    }

    fn visit_i64<E: de::Error>(self, number: i64) -> Result<i32, E> {
        notification_fd(number).map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, number: u64) -> Result<i32, E> {
        notification_fd(i64::try_from(number).unwrap_or(i64::MAX)).map_err(E::custom)
    }
}

/// `log_tail`: bytes of recent output runsv keeps (0: none).
struct TailSize;

/// More than this is not a tail: sv log reads it whole.
const TAIL_MAX: u64 = 64 * 1024 * 1024;

impl<'de> DeserializeSeed<'de> for TailSize {
    type Value = u64;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<u64, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TailSize {
    type Value = u64;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a number of bytes, from 0 to 67108864 (64 MiB)")
    }

    fn visit_i64<E: de::Error>(self, number: i64) -> Result<u64, E> {
        match u64::try_from(number) {
            Ok(bytes) => self.visit_u64(bytes),
            Err(_) => Err(E::custom("must be 0 or more bytes")),
        }
    }

    fn visit_u64<E: de::Error>(self, number: u64) -> Result<u64, E> {
        if number > TAIL_MAX {
            return Err(E::custom("must be at most 67108864 bytes (64 MiB)"));
        }
        Ok(number)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{service, Fixture};
    use super::*;

    fn strings(words: &[&str]) -> Vec<String> {
        words.iter().map(|word| word.to_string()).collect()
    }

    fn variables(pairs: &[(&str, &str)]) -> Environment {
        Environment::Exactly(
            pairs
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
        )
    }

    fn fixture_with(yaml: &str, extra: &[(&str, &str)]) -> Fixture {
        let mut files = vec![("service.yaml", yaml)];
        files.extend_from_slice(extra);
        service(&files)
    }

    fn load_fixture(fixture: &Fixture) -> Result<ServiceDefinition, DefinitionError> {
        ServiceDefinition::load_with(&fixture.service, &fixture.system_files)
    }

    fn loads(yaml: &str) -> ServiceDefinition {
        match load_fixture(&fixture_with(yaml, &[])) {
            Ok(definition) => definition,
            Err(error) => panic!("{error}"),
        }
    }

    /// Asserts that `yaml` fails at `line` with a message naming `key` and holding
    /// `fragment`.
    fn fails_at(yaml: &str, line: usize, key: &str, fragment: &str) {
        fails_in(&fixture_with(yaml, &[]), line, key, fragment);
    }

    fn fails_in(fixture: &Fixture, line: usize, key: &str, fragment: &str) {
        let error = match load_fixture(fixture) {
            Ok(definition) => panic!("expected an error, loaded {definition:?}"),
            Err(error) => error,
        };
        assert_eq!(error.path, fixture.path("service.yaml"), "{error}");
        assert_eq!(error.line, Some(line), "wrong line in: {error}");
        assert!(
            error.message.contains(key),
            "key `{key}` not named in: {error}"
        );
        assert!(
            error.message.contains(fragment),
            "`{fragment}` missing from: {error}"
        );
    }

    #[test]
    fn exec_alone_gets_every_default() {
        let fixture = fixture_with("exec: /usr/sbin/sshd -D -e\n", &[]);
        assert_eq!(
            load_fixture(&fixture),
            Ok(ServiceDefinition {
                name: "web".to_string(),
                directory: fixture.service.clone(),
                form: Form::Yaml(fixture.path("service.yaml")),
                command: strings(&["/usr/sbin/sshd", "-D", "-e"]),
                oneshot: false,
                after: vec![],
                environment: variables(&[("PATH", DEFAULT_PATH)]),
                readiness: Readiness::Immediate,
                working_directory: fixture.service.clone(),
                credentials: None,
                stop_signal: Signal::SIGTERM,
                stop_timeout: Duration::from_secs(10),
                log: LogDestination::Kmsg,
                log_tail: crate::tail::DEFAULT_CAPACITY,
                restart_delay: Duration::from_secs(1),
                restart_delay_max: Duration::from_secs(60),
                finish: None,
                normally_down: false,
            })
        );
    }

    #[test]
    fn every_key_at_once() {
        let fixture = fixture_with(
            "\
# a comment before the keys
exec: /usr/bin/redis-server --port 6380
oneshot: false
after: [network, syslogd]
environ:
  LANG: C.UTF-8
  PATH: /opt/bin
test: redis-cli -p 6380 ping
test_interval: 0.5
dir: data
user: www
group: adm
stop_signal: SIGINT
stop_timeout: 30
restart_delay: 0.25
restart_delay_max: 120
log: console
",
            &[("finish", "#!/bin/sh\n"), ("down", "")],
        );
        assert_eq!(
            load_fixture(&fixture),
            Ok(ServiceDefinition {
                name: "web".to_string(),
                directory: fixture.service.clone(),
                form: Form::Yaml(fixture.path("service.yaml")),
                command: strings(&["/usr/bin/redis-server", "--port", "6380"]),
                oneshot: false,
                after: strings(&["network", "syslogd"]),
                environment: variables(&[
                    ("LANG", "C.UTF-8"),
                    ("PATH", "/opt/bin"),
                    ("HOME", "/var/www"),
                    ("USER", "www"),
                    ("LOGNAME", "www"),
                ]),
                readiness: Readiness::Test {
                    command: strings(&["redis-cli", "-p", "6380", "ping"]),
                    interval: Duration::from_millis(500),
                },
                working_directory: fixture.service.join("data"),
                credentials: Some(Credentials {
                    user_name: "www".to_string(),
                    uid: 33,
                    gid: 4,
                    supplementary_groups: vec![4],
                    home: PathBuf::from("/var/www"),
                }),
                stop_signal: Signal::SIGINT,
                stop_timeout: Duration::from_secs(30),
                log: LogDestination::Console,
                log_tail: crate::tail::DEFAULT_CAPACITY,
                restart_delay: Duration::from_millis(250),
                restart_delay_max: Duration::from_secs(120),
                finish: Some(fixture.path("finish")),
                normally_down: true,
            })
        );
    }

    #[test]
    fn exec_is_split_like_a_shell_would() {
        assert_eq!(
            loads("exec: sh -c 'echo \"$HOME\"; exit 3' \"a b\" c\\ d\n").command,
            strings(&["sh", "-c", "echo \"$HOME\"; exit 3", "a b", "c d"])
        );
        assert_eq!(
            loads("exec: >\n  /bin/prog\n  --flag\n").command,
            strings(&["/bin/prog", "--flag"])
        );
        assert_eq!(loads("exec: 42\n").command, strings(&["42"]));
    }

    #[test]
    fn exec_errors_point_at_exec() {
        fails_at(
            "oneshot: true\nexec: \"'' arg\"\n",
            2,
            "exec",
            "the program name is empty",
        );
        fails_at("oneshot: true\nexec: ''\n", 2, "exec", "empty command");
        fails_at("oneshot: true\nexec: \"\"\n", 2, "exec", "empty command");
        fails_at("oneshot: true\nexec: \"   \"\n", 2, "exec", "empty command");
        fails_at("oneshot: true\nexec:\n", 2, "exec", "empty command");
        fails_at(
            "\n\nexec: \"echo 'unbalanced\"\n",
            3,
            "exec",
            "unterminated single quote (opened at character 6)",
        );
        fails_at("exec: [a, b]\n", 1, "exec", "invalid type: sequence");
        fails_at("exec: {a: b}\n", 1, "exec", "invalid type: map");
    }

    #[test]
    fn a_missing_exec_points_at_the_start_of_the_mapping() {
        fails_at(
            "# service\n\noneshot: true\nlog: none\n",
            3,
            "exec",
            "exec is missing",
        );
    }

    #[test]
    fn an_empty_file_is_an_error_at_line_1() {
        fails_at("", 1, "exec", "empty");
        fails_at("# nothing here\n\n", 1, "exec", "empty");
        fails_at("---\n", 1, "exec", "empty");
    }

    #[test]
    fn document_markers_around_the_one_document_are_fine() {
        assert_eq!(
            loads("%YAML 1.2\n---\nexec: a\n...\n").command,
            strings(&["a"])
        );
    }

    #[test]
    fn a_file_that_is_not_a_mapping_is_an_error() {
        fails_at("- exec\n- /bin/true\n", 1, "exec", "invalid type: sequence");
        fails_at("/bin/true\n", 1, "exec", "invalid type: string");
    }

    #[test]
    fn a_second_document_is_an_error_at_its_start() {
        fails_at(
            "exec: /bin/true\n---\nexec: /bin/false\n",
            3,
            "service.yaml",
            "a second YAML document",
        );
    }

    #[test]
    fn yaml_syntax_errors_give_their_line() {
        let fixture = fixture_with("exec: /bin/true\nlog: none\n  oneshot: true\n", &[]);
        let error = load_fixture(&fixture).unwrap_err();
        assert_eq!(error.line, Some(3), "{error}");
        assert!(
            error.message.contains("mapping values are not allowed"),
            "{error}"
        );
        assert!(!error.message.contains("at line 3"), "{error}");

        let fixture = fixture_with("exec: /bin/true\nlog: 'none\n", &[]);
        let error = load_fixture(&fixture).unwrap_err();
        assert_eq!(error.line, Some(3), "{error}");
        assert!(error.message.contains("quoted scalar"), "{error}");
    }

    #[test]
    fn invalid_utf8_is_an_error_at_its_line() {
        let fixture = service(&[]);
        fs::write(fixture.path("service.yaml"), b"exec: a\n\nlog: \xff\n").unwrap();
        let error = load_fixture(&fixture).unwrap_err();
        assert_eq!(error.line, Some(3));
        assert_eq!(error.message, "not valid UTF-8");
    }

    #[test]
    fn log_tail_is_a_size_in_bytes() {
        assert_eq!(loads("exec: a\n").log_tail, crate::tail::DEFAULT_CAPACITY);
        assert_eq!(loads("exec: a\nlog_tail: 0\n").log_tail, 0);
        assert_eq!(loads("exec: a\nlog_tail: 1048576\n").log_tail, 1 << 20);
        fails_at("exec: a\nlog_tail: -1\n", 2, "log_tail", "0 or more");
        fails_at("exec: a\nlog_tail: 67108865\n", 2, "log_tail", "at most");
        fails_at("exec: a\nlog_tail: 1M\n", 2, "log_tail", "number of bytes");
    }

    #[test]
    fn unknown_keys_are_named_with_the_accepted_ones() {
        fails_at(
            "exec: /bin/true\n\nrestart: always\n",
            3,
            "`restart`",
            "accepted keys: exec, oneshot, after, environ, test, test_interval, ready_fd, dir, \
             user, group, stop_signal, stop_timeout, restart_delay, restart_delay_max, log, log_tail",
        );
        fails_at(
            "exec: /bin/true\nenviorn: {}\n",
            2,
            "`enviorn`",
            "did you mean `environ`?",
        );
        let fixture = fixture_with("exec: /bin/true\nrestart: always\n", &[]);
        let error = load_fixture(&fixture).unwrap_err();
        assert!(!error.message.contains("did you mean"), "{error}");
    }

    #[test]
    fn keys_in_a_flow_mapping_are_found_too() {
        fails_at(
            "{exec: /bin/true,\n nonsense: 1}\n",
            2,
            "nonsense",
            "unknown key",
        );
    }

    #[test]
    fn a_duplicate_key_is_an_error_at_its_second_occurrence() {
        fails_at("exec: a\nlog: none\nexec: b\n", 3, "exec", "duplicate key");
    }

    #[test]
    fn oneshot_is_a_boolean() {
        assert!(loads("exec: a\noneshot: true\n").oneshot);
        assert!(!loads("exec: a\noneshot: false\n").oneshot);
        fails_at(
            "exec: a\noneshot: yes\n",
            2,
            "oneshot",
            "expected a boolean",
        );
        fails_at("exec: a\noneshot: 1\n", 2, "oneshot", "expected a boolean");
    }

    #[test]
    fn after_takes_a_name_or_a_list() {
        assert_eq!(
            loads("exec: a\nafter: network\n").after,
            strings(&["network"])
        );
        assert_eq!(
            loads("exec: a\nafter:\n  - network\n  - syslogd\n  - network\n").after,
            strings(&["network", "syslogd"])
        );
        assert_eq!(loads("exec: a\nafter: []\n").after, Vec::<String>::new());
    }

    #[test]
    fn after_errors_point_at_the_bad_name() {
        fails_at(
            "exec: a\nafter:\n  - network\n  - ../etc\n",
            4,
            "after",
            "contains `/`",
        );
        fails_at("exec: a\nafter: [ok, '']\n", 2, "after", "cannot be empty");
        fails_at("exec: a\nafter: a/b\n", 2, "after", "contains `/`");
        fails_at(
            "exec: a\nafter: ..\n",
            2,
            "after",
            "cannot be a service name",
        );
        fails_at("exec: a\nafter: {x: y}\n", 2, "after", "invalid type: map");
        fails_at("exec: a\nafter:\n", 2, "after", "has no value");
    }

    #[test]
    fn environ_keeps_file_order_and_scalars_as_written() {
        assert_eq!(
            loads(
                "exec: a\nenviron:\n  ZED: last\n  VERSION: 1.10\n  DEBUG: true\n  \
                 MODE: 0755\n  EMPTY: ''\n  PATH: /bin\n"
            )
            .environment,
            variables(&[
                ("ZED", "last"),
                ("VERSION", "1.10"),
                ("DEBUG", "true"),
                ("MODE", "0755"),
                ("EMPTY", ""),
                ("PATH", "/bin"),
            ])
        );
        assert_eq!(
            loads("exec: a\nenviron: {}\n").environment,
            variables(&[("PATH", DEFAULT_PATH)])
        );
    }

    #[test]
    fn environ_errors_point_at_the_variable() {
        fails_at(
            "exec: a\nenviron:\n  GOOD: 1\n  NESTED:\n    inner: 2\n",
            5,
            "environ.NESTED",
            "invalid type: map",
        );
        fails_at(
            "exec: a\nenviron:\n  LIST: [1, 2]\n",
            3,
            "environ.LIST",
            "invalid type: sequence",
        );
        fails_at(
            "exec: a\nenviron:\n  A=B: 1\n",
            3,
            "environ",
            "`A=B` cannot be a variable name",
        );
        fails_at(
            "exec: a\nenviron:\n  A: 1\n  A: 2\n",
            4,
            "environ",
            "`A` is set twice",
        );
        fails_at(
            "exec: a\nenviron: [A=1]\n",
            2,
            "environ",
            "invalid type: sequence",
        );
        fails_at(
            "exec: a\nenviron: A=1\n",
            2,
            "environ",
            "invalid type: string",
        );
    }

    #[test]
    fn a_user_adds_home_user_and_logname_unless_environ_sets_them() {
        assert_eq!(
            loads("exec: a\nuser: alice\nenviron:\n  HOME: /srv\n  LOGNAME: al\n").environment,
            variables(&[
                ("HOME", "/srv"),
                ("LOGNAME", "al"),
                ("PATH", DEFAULT_PATH),
                ("USER", "alice"),
            ])
        );
    }

    #[test]
    fn user_resolves_credentials_from_the_account_files() {
        assert_eq!(
            loads("exec: a\nuser: alice\n").credentials,
            Some(Credentials {
                user_name: "alice".to_string(),
                uid: 1000,
                gid: 1000,
                supplementary_groups: vec![1000, 4, 29],
                home: PathBuf::from("/home/alice"),
            })
        );
        let by_uid = loads("exec: a\nuser: 33\n").credentials.unwrap();
        assert_eq!((by_uid.user_name.as_str(), by_uid.uid), ("www", 33));
    }

    #[test]
    fn group_replaces_the_primary_group() {
        let credentials = loads("exec: a\nuser: alice\ngroup: www\n")
            .credentials
            .unwrap();
        assert_eq!(credentials.gid, 33);
        assert_eq!(credentials.supplementary_groups, vec![33, 4, 29]);
        let numeric = loads("exec: a\nuser: alice\ngroup: 4242\n")
            .credentials
            .unwrap();
        assert_eq!(numeric.gid, 4242);
    }

    #[test]
    fn account_errors_point_at_user_or_group() {
        fails_at(
            "exec: a\n\nuser: mallory\n",
            3,
            "user",
            "no user `mallory` in",
        );
        fails_at("exec: a\nuser: 4242\n", 2, "user", "no user with uid 4242");
        fails_at(
            "exec: a\nuser: alice\ngroup: wheel\n",
            3,
            "group",
            "no group `wheel` in",
        );
        fails_at("exec: a\ngroup: adm\n", 2, "group", "needs user");
        fails_at("exec: a\nuser: ''\n", 2, "user", "is empty");
        fails_at(
            "exec: a\nuser: 'a:b'\n",
            2,
            "user",
            "cannot be a user or group name",
        );
    }

    #[test]
    fn an_unreadable_passwd_is_an_error_at_user() {
        let mut fixture = fixture_with("exec: a\nuser: alice\n", &[]);
        fixture.system_files.passwd = fixture.root().join("no-passwd");
        fails_in(&fixture, 2, "user", "cannot read");
    }

    #[test]
    fn a_missing_group_file_leaves_only_the_primary_group() {
        let mut fixture = fixture_with("exec: a\nuser: alice\n", &[]);
        fixture.system_files.group = fixture.root().join("no-group");
        let credentials = load_fixture(&fixture).unwrap().credentials.unwrap();
        assert_eq!(credentials.supplementary_groups, vec![1000]);
    }

    #[test]
    fn test_gives_polled_readiness() {
        assert_eq!(
            loads("exec: a\ntest: pg_isready -q\n").readiness,
            Readiness::Test {
                command: strings(&["pg_isready", "-q"]),
                interval: Duration::from_millis(200),
            }
        );
        assert_eq!(
            loads("exec: a\ntest_interval: 2\ntest: check\n").readiness,
            Readiness::Test {
                command: strings(&["check"]),
                interval: Duration::from_secs(2),
            }
        );
    }

    #[test]
    fn ready_fd_gives_notification_readiness() {
        assert_eq!(
            loads("exec: a\nready_fd: 3\n").readiness,
            Readiness::NotificationFd(3)
        );
    }

    #[test]
    fn readiness_errors_point_at_the_key_at_fault() {
        fails_at(
            "exec: a\ntest: \"''\"\n",
            2,
            "test",
            "the program name is empty",
        );
        fails_at("exec: a\ntest: ' '\n", 2, "test", "empty command");
        fails_at(
            "exec: a\ntest: check\nready_fd: 3\n",
            3,
            "ready_fd",
            "both define readiness",
        );
        fails_at(
            "exec: a\nready_fd: 3\n\ntest: check\n",
            4,
            "test",
            "both define readiness",
        );
        fails_at(
            "exec: a\noneshot: true\ntest: check\n",
            3,
            "test",
            "oneshot",
        );
        fails_at(
            "exec: a\nready_fd: 5\noneshot: true\n",
            2,
            "ready_fd",
            "oneshot",
        );
        fails_at(
            "exec: a\ntest_interval: 1\n",
            2,
            "test_interval",
            "without test",
        );
        fails_at(
            "exec: a\ntest: c\ntest_interval: 0\n",
            3,
            "test_interval",
            "more than 0",
        );
        fails_at("exec: a\nready_fd: 2\n", 2, "ready_fd", "must be 3 or more");
        fails_at(
            "exec: a\nready_fd: -1\n",
            2,
            "ready_fd",
            "must be 3 or more",
        );
        fails_at(
            "exec: a\nready_fd: 99999999999\n",
            2,
            "ready_fd",
            "too large",
        );
        fails_at(
            "exec: a\nready_fd: '3'\n",
            2,
            "ready_fd",
            "invalid type: string",
        );
        fails_at(
            "exec: a\nready_fd: 3.5\n",
            2,
            "ready_fd",
            "invalid type: floating point",
        );
    }

    #[test]
    fn dir_is_relative_to_the_service_directory() {
        let fixture = fixture_with("exec: a\ndir: /var/lib/web\n", &[]);
        assert_eq!(
            load_fixture(&fixture).unwrap().working_directory,
            PathBuf::from("/var/lib/web")
        );
        let fixture = fixture_with("exec: a\ndir: ../shared\n", &[]);
        assert_eq!(
            load_fixture(&fixture).unwrap().working_directory,
            fixture.service.join("../shared")
        );
        fails_at("exec: a\ndir: ''\n", 2, "dir", "is empty");
    }

    #[test]
    fn stop_signal_takes_names_in_any_form_and_numbers() {
        for (text, signal) in [
            ("TERM", Signal::SIGTERM),
            ("SIGQUIT", Signal::SIGQUIT),
            ("hup", Signal::SIGHUP),
            ("9", Signal::SIGKILL),
            ("'10'", Signal::SIGUSR1),
        ] {
            assert_eq!(
                loads(&format!("exec: a\nstop_signal: {text}\n")).stop_signal,
                signal,
                "{text}"
            );
        }
        fails_at(
            "exec: a\nstop_signal: SIGFOO\n",
            2,
            "stop_signal",
            "unknown signal `SIGFOO`",
        );
        fails_at(
            "exec: a\nstop_signal: 0\n",
            2,
            "stop_signal",
            "unknown signal `0`",
        );
    }

    #[test]
    fn durations_are_seconds_as_integers_or_decimals() {
        let loaded = loads("exec: a\nstop_timeout: 0\nrestart_delay: 0.1\nrestart_delay_max: 5\n");
        assert_eq!(loaded.stop_timeout, Duration::ZERO);
        assert_eq!(loaded.restart_delay, Duration::from_millis(100));
        assert_eq!(loaded.restart_delay_max, Duration::from_secs(5));
    }

    #[test]
    fn bad_durations_point_at_their_key() {
        fails_at(
            "exec: a\nstop_timeout: -1\n",
            2,
            "stop_timeout",
            "must not be negative",
        );
        fails_at(
            "exec: a\nstop_timeout: -0.5\n",
            2,
            "stop_timeout",
            "must not be negative",
        );
        fails_at(
            "exec: a\nstop_timeout: 10s\n",
            2,
            "stop_timeout",
            "invalid type: string",
        );
        fails_at(
            "exec: a\nstop_timeout: true\n",
            2,
            "stop_timeout",
            "invalid type: boolean",
        );
        fails_at(
            "exec: a\nstop_timeout: .inf\n",
            2,
            "stop_timeout",
            "not a usable number",
        );
        fails_at(
            "exec: a\nstop_timeout: .nan\n",
            2,
            "stop_timeout",
            "not a usable number",
        );
        fails_at(
            "exec: a\nrestart_delay: 0\n",
            2,
            "restart_delay",
            "more than 0",
        );
        fails_at(
            "exec: a\nrestart_delay_max: 0\n",
            2,
            "restart_delay_max",
            "more than 0",
        );
    }

    #[test]
    fn restart_delay_max_must_not_be_below_restart_delay() {
        fails_at(
            "exec: a\nrestart_delay_max: 2\nrestart_delay: 5\n",
            2,
            "restart_delay_max",
            "2s is less than restart_delay (5s)",
        );
        fails_at(
            "exec: a\n\nrestart_delay: 90\n",
            3,
            "restart_delay",
            "more than restart_delay_max (60s by default)",
        );
        let loaded = loads("exec: a\nrestart_delay: 90\nrestart_delay_max: 90\n");
        assert_eq!(loaded.restart_delay, Duration::from_secs(90));
    }

    #[test]
    fn log_names_a_destination() {
        assert_eq!(loads("exec: a\nlog: kmsg\n").log, LogDestination::Kmsg);
        assert_eq!(
            loads("exec: a\nlog: console\n").log,
            LogDestination::Console
        );
        assert_eq!(loads("exec: a\nlog: none\n").log, LogDestination::Null);
        fails_at(
            "exec: a\nlog: syslog\n",
            2,
            "log",
            "unknown destination `syslog`",
        );
    }

    #[test]
    fn a_log_directory_is_the_log_and_conflicts_with_the_log_key() {
        let fixture = fixture_with("exec: a\n", &[("log/", "")]);
        assert_eq!(
            load_fixture(&fixture).unwrap().log,
            LogDestination::Service(fixture.path("log"))
        );
        let fixture = fixture_with("exec: a\n\nlog: console\n", &[("log/", "")]);
        fails_in(&fixture, 3, "log", "conflicts with the log/ directory");
    }

    #[test]
    fn the_message_leads_with_the_key_and_holds_no_second_position() {
        let fixture = fixture_with("exec: a\noneshot: 7\n", &[]);
        let error = load_fixture(&fixture).unwrap_err();
        assert_eq!(
            error.message,
            "oneshot: invalid type: integer `7`, expected a boolean"
        );
        assert_eq!(
            error.to_string(),
            format!(
                "{}: line 2: oneshot: invalid type: integer `7`, expected a boolean",
                fixture.path("service.yaml").display()
            )
        );
    }

    #[test]
    fn edit_distance_counts_single_character_edits() {
        assert_eq!(edit_distance("environ", "enviorn"), 2);
        assert_eq!(edit_distance("log", "logs"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("exec", "exec"), 0);
    }
}
