//! Property tests of the two definition loaders (issue #6): whatever a service directory
//! holds, loading never panics, and every failure names the file, a line in it and the
//! cause. Near-valid files are generated together with what they must load to, so a
//! valid one is also checked value by value against a model written from the
//! documentation (docs/service-definition.md), not from the loader.

use super::test_support::{service, Fixture, GROUP, PASSWD};
use super::*;
use crate::props_support::config;
use proptest::prelude::*;
use proptest::sample::{select, subsequence, Index};
use std::fmt::Write as _;

// ---------------------------------------------------------------------------------------
// What every failure must look like.

/// A YAML error names the file and a line of it, with a message; its Display is
/// `PATH: line N: MESSAGE`. An error at the end of a file whose last line has no
/// newline is on the line after it: libyaml ends that line before it reports the end
/// of the stream. (A message may quote the text at fault, newlines and all.)
fn check_error_shape(
    error: &DefinitionError,
    path: &Path,
    bytes: &[u8],
) -> Result<(), TestCaseError> {
    prop_assert_eq!(&error.path, path, "{}", error);
    let Some(line) = error.line else {
        return Err(TestCaseError::fail(format!("no line in: {error}")));
    };
    let text = String::from_utf8_lossy(bytes);
    let unended =
        !text.is_empty() && !text.ends_with(['\n', '\r', '\u{85}', '\u{2028}', '\u{2029}']);
    let lines = yaml_lines(bytes) + usize::from(unended);
    prop_assert!(
        (1..=lines).contains(&line),
        "line {} of a file of {} lines: {}",
        line,
        lines,
        error
    );
    prop_assert!(
        !error.message.trim().is_empty(),
        "empty message: {:?}",
        error
    );
    let prefix = format!("{}: line {}: ", path.display(), line);
    prop_assert!(error.to_string().starts_with(&prefix), "{}", error);
    Ok(())
}

/// The lines of a file as the YAML parser counts them (libyaml, YAML 1.1): besides
/// `\n`, a lone `\r`, NEL, LINE SEPARATOR and PARAGRAPH SEPARATOR end a line too.
fn yaml_lines(bytes: &[u8]) -> usize {
    let text = String::from_utf8_lossy(bytes);
    let mut breaks = 0;
    let mut chars = text.chars().peekable();
    while let Some(character) = chars.next() {
        match character {
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}' => breaks += 1,
            _ => {}
        }
    }
    breaks + 1
}

/// Writes `service.yaml` (as bytes: they need not be UTF-8) into a fresh service
/// directory, with `extra` beside it, and loads it.
fn load_yaml(
    bytes: &[u8],
    extra: &[(&str, &str)],
) -> (Fixture, Result<ServiceDefinition, DefinitionError>) {
    let fixture = service(extra);
    fs::write(fixture.path("service.yaml"), bytes).unwrap();
    let loaded = fixture.load();
    (fixture, loaded)
}

// ---------------------------------------------------------------------------------------
// Arbitrary bytes.

/// Pieces of YAML and of service.yaml besides the keys, so that random text gets past
/// the first byte.
const TOKENS: &[&str] = &[
    "restart",
    ":",
    ": ",
    " ",
    "  ",
    "\n",
    "\r\n",
    "\t",
    "- ",
    "-",
    "[",
    "]",
    "{",
    "}",
    ",",
    "'",
    "\"",
    "#",
    "# c\n",
    "&a ",
    "*a",
    "!!str ",
    "!!binary ",
    "!foo ",
    "---\n",
    "...\n",
    "? ",
    "|\n",
    ">\n",
    "|-\n",
    "%YAML 1.2\n",
    "%TAG ! x\n",
    "true",
    "null",
    "~",
    "-1",
    "18446744073709551616",
    "1e999",
    ".inf",
    ".nan",
    "0x10",
    "0o7",
    "3.5",
    "\\",
    "\\0",
    "\\x41",
    "\\U0010ffff",
    "é",
    "\u{feff}",
    "\u{2028}",
    "\u{85}",
    "\0",
    "<<",
    "/bin/true",
    "sh -c 'x'",
    "TERM",
    "SIGKILL",
    "kmsg",
    "none",
    "console",
    "alice",
    "www",
    "=",
];

/// Bytes a service.yaml might hold by accident or malice.
fn yaml_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        prop::collection::vec(select([&KEYS[..], TOKENS].concat()), 0..48)
            .prop_map(|tokens| tokens.concat().into()),
        any::<String>().prop_map(String::into_bytes),
        // Deep nesting: the parser must refuse it, not overflow the stack.
        (
            select(&["[", "{", "- ", "[a, ", "{a: ", "? ", "exec: [", "- - "][..]),
            0usize..4000
        )
            .prop_map(|(piece, depth)| piece.repeat(depth).into_bytes()),
        // A plausible file, then damaged.
        (document(), mutations())
            .prop_map(|(document, edits)| mutate(document.text.into_bytes(), &edits)),
    ]
}

#[derive(Clone, Debug)]
enum Edit {
    Insert(Index, u8),
    Delete(Index, usize),
    Replace(Index, u8),
    DuplicateLine(Index),
}

fn mutations() -> impl Strategy<Value = Vec<Edit>> {
    let byte = prop_oneof![
        any::<u8>(),
        select(&[b'\n', b' ', b':', b'-', b'"', b'\'', b'#', b'[', b'{', 0xff, 0xc3, 0][..]),
    ];
    let edit = prop_oneof![
        (any::<Index>(), byte.clone()).prop_map(|(at, byte)| Edit::Insert(at, byte)),
        (any::<Index>(), 1usize..8).prop_map(|(at, length)| Edit::Delete(at, length)),
        (any::<Index>(), byte).prop_map(|(at, byte)| Edit::Replace(at, byte)),
        any::<Index>().prop_map(Edit::DuplicateLine),
    ];
    prop::collection::vec(edit, 1..4)
}

fn mutate(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for edit in edits {
        let length = bytes.len();
        match edit {
            Edit::Insert(at, byte) => bytes.insert(at.index(length + 1), *byte),
            Edit::Delete(_, _) | Edit::Replace(_, _) if length == 0 => {}
            Edit::Delete(at, count) => {
                let start = at.index(length);
                bytes.drain(start..(start + count).min(length));
            }
            Edit::Replace(at, byte) => bytes[at.index(length)] = *byte,
            Edit::DuplicateLine(at) => {
                let lines: Vec<&[u8]> = bytes.split_inclusive(|&b| b == b'\n').collect();
                if !lines.is_empty() {
                    let index = at.index(lines.len());
                    let mut copy = lines[index].to_vec();
                    if !copy.ends_with(b"\n") {
                        copy.insert(0, b'\n');
                    }
                    let offset: usize = lines[..=index].iter().map(|line| line.len()).sum();
                    bytes.splice(offset..offset, copy);
                }
            }
        }
    }
    bytes
}

// ---------------------------------------------------------------------------------------
// Near-valid documents: entries whose values are generated with what they must load as.

#[derive(Clone, Debug, PartialEq)]
enum Value {
    Command(Vec<String>),
    Bool(bool),
    Names(Vec<String>),
    Variables(Vec<(String, String)>),
    Seconds(Duration),
    Fd(i32),
    /// dir, user, group: the text as written.
    Text(String),
    Signal(Signal),
    Log(LogDestination),
}

#[derive(Clone, Debug, PartialEq)]
enum Expect {
    Valid(Value),
    /// The value is wrong for its key: the load fails at its line, naming the key.
    Invalid,
    /// Either outcome is right (the generator does not know); only the shape of an
    /// error is checked.
    Unknown,
}

#[derive(Clone, Debug)]
struct Entry {
    key: String,
    /// The value's YAML, on one line.
    value: String,
    expect: Expect,
}

#[derive(Clone, Debug)]
struct Document {
    text: String,
    /// Each entry with its 1-based line.
    entries: Vec<(Entry, usize)>,
    log_directory: bool,
    finish: bool,
    down: bool,
}

/// YAML's double-quoted form of any text: everything outside printable ASCII escaped,
/// so the scalar holds exactly `text`.
fn quoted(text: &str) -> String {
    let mut yaml = String::from("\"");
    for character in text.chars() {
        match character {
            '"' => yaml.push_str("\\\""),
            '\\' => yaml.push_str("\\\\"),
            ' '..='~' => yaml.push(character),
            other => write!(yaml, "\\U{:08x}", other as u32).unwrap(),
        }
    }
    yaml.push('"');
    yaml
}

/// A word as a shell would need it quoted to keep it whole.
fn shell_quoted(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./-=".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Text a YAML plain scalar can hold as it is and that YAML does not read as null.
fn plain_is_safe(text: &str) -> bool {
    let mut chars = text.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphanumeric() || "/_".contains(first))
        && chars.all(|c| c.is_ascii_alphanumeric() || "_./-= ".contains(c))
        && !text.ends_with(' ')
        && !matches!(text, "null" | "Null" | "NULL")
}

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => "[a-zA-Z0-9_./=-]{1,8}",
        1 => any::<String>(),
        1 => Just(String::new()),
    ]
}

/// What `exec` and `test` take.
fn command() -> BoxedStrategy<(String, Expect)> {
    let words = prop_oneof![9 => prop::collection::vec(word(), 1..5), 1 => Just(Vec::new())];
    let from_words = (words, any::<bool>()).prop_map(|(words, prefer_plain)| {
        let line = words
            .iter()
            .map(|word| shell_quoted(word))
            .collect::<Vec<_>>()
            .join(" ");
        let yaml = if prefer_plain && plain_is_safe(&line) {
            line
        } else {
            quoted(&line)
        };
        let expect = match words.first() {
            Some(program) if !program.is_empty() => Expect::Valid(Value::Command(words)),
            _ => Expect::Invalid,
        };
        (yaml, expect)
    });
    // Odd text: split_words itself is tested by words.rs; here the text reaches it
    // through YAML unchanged.
    let odd = ".{1,24}".prop_map(|text| {
        let expect = match split_words(&text) {
            Ok(words) if !words[0].is_empty() => Expect::Valid(Value::Command(words)),
            _ => Expect::Invalid,
        };
        (quoted(&text), expect)
    });
    let wrong = select(&["[a, b]", "{a: b}", "''", "\"  \"", "\"'\"", "\"a \\\\\""][..])
        .prop_map(|yaml| (yaml.to_string(), Expect::Invalid));
    prop_oneof![12 => from_words, 2 => odd, 1 => wrong].boxed()
}

fn boolean() -> BoxedStrategy<(String, Expect)> {
    prop_oneof![
        8 => any::<bool>().prop_map(|b| (b.to_string(), Expect::Valid(Value::Bool(b)))),
        1 => select(&["yes", "no", "on", "1", "0", "\"true\"", "[true]", "{a: 1}", "1.0"][..])
            .prop_map(|yaml| (yaml.to_string(), Expect::Invalid)),
    ]
    .boxed()
}

/// A service name: not empty, no `/`, not `.` or `..`, no NUL.
fn service_name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-zA-Z0-9_][a-zA-Z0-9_.@-]{0,10}",
        1 => any::<String>().prop_map(|text| {
            let name = text.replace(['/', '\0'], "_");
            if name.is_empty() || name == "." || name == ".." {
                format!("x{name}")
            } else {
                name
            }
        }),
    ]
}

fn after() -> BoxedStrategy<(String, Expect)> {
    let one =
        service_name().prop_map(|name| (quoted(&name), Expect::Valid(Value::Names(vec![name]))));
    let list = prop::collection::vec(service_name(), 0..5).prop_map(|names| {
        let yaml = format!(
            "[{}]",
            names
                .iter()
                .map(|n| quoted(n))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut unique: Vec<String> = Vec::new();
        for name in names {
            if !unique.contains(&name) {
                unique.push(name);
            }
        }
        (yaml, Expect::Valid(Value::Names(unique)))
    });
    let wrong = select(
        &[
            "\"a/b\"",
            "\"../etc\"",
            "\"\"",
            "\".\"",
            "\"..\"",
            "[ok, \"\"]",
            "[ok, \"x/y\"]",
            "{x: y}",
            "[a, [b]]",
            "\"a\\0b\"",
        ][..],
    )
    .prop_map(|yaml| (yaml.to_string(), Expect::Invalid));
    prop_oneof![3 => one, 6 => list, 1 => wrong].boxed()
}

fn environ() -> BoxedStrategy<(String, Expect)> {
    let name = prop_oneof![
        4 => "[A-Z_][A-Z0-9_]{0,6}",
        1 => any::<String>().prop_map(|text| format!("V{}", text.replace(['=', '\0'], "_"))),
    ];
    let value = prop_oneof![
        // Scalars YAML would read as numbers or booleans stay as written.
        2 => select(&["1.10", "0755", "42", "-3", "true", "0x1F", "1e3", ".inf", "yes"][..])
            .prop_map(|text| (text.to_string(), text.to_string())),
        3 => any::<String>().prop_map(|text| (quoted(&text), text)),
    ];
    let variables = prop::collection::vec((name, value), 0..5).prop_map(|pairs| {
        let yaml = format!(
            "{{{}}}",
            pairs
                .iter()
                .map(|(name, (yaml, _))| format!("{}: {}", quoted(name), yaml))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut seen: Vec<&str> = Vec::new();
        let mut expect = Expect::Valid(Value::Variables(
            pairs
                .iter()
                .map(|(name, (_, text))| (name.clone(), text.clone()))
                .collect(),
        ));
        for (name, (_, text)) in &pairs {
            if seen.contains(&name.as_str()) || text.contains('\0') {
                expect = Expect::Invalid;
            }
            seen.push(name);
        }
        (yaml, expect)
    });
    let wrong = select(
        &[
            "{A: 1, A: 2}",
            "{\"A=B\": 1}",
            "{\"\": 1}",
            "{A: {b: 1}}",
            "{A: [1, 2]}",
            "[A=1]",
            "A=1",
            "\"A=1\"",
        ][..],
    )
    .prop_map(|yaml| (yaml.to_string(), Expect::Invalid));
    prop_oneof![8 => variables, 1 => wrong].boxed()
}

/// A number of seconds; `may_be_zero` for stop_timeout only.
fn seconds(may_be_zero: bool) -> BoxedStrategy<(String, Expect)> {
    let whole = prop_oneof![4 => 0u64..200, 1 => any::<u64>()].prop_map(move |seconds| {
        let expect = if seconds == 0 && !may_be_zero {
            Expect::Invalid
        } else {
            Expect::Valid(Value::Seconds(Duration::from_secs(seconds)))
        };
        (seconds.to_string(), expect)
    });
    let decimal = (0u64..100_000, 1u32..1000).prop_map(|(seconds, millis)| {
        let text = format!("{seconds}.{millis:03}");
        let duration = Duration::from_secs_f64(text.parse().unwrap());
        (text, Expect::Valid(Value::Seconds(duration)))
    });
    let negative =
        prop_oneof![1i64..100, Just(i64::MAX)].prop_map(|n| (format!("-{n}"), Expect::Invalid));
    let wrong = select(
        &[
            ".inf", "-.inf", ".nan", "10s", "true", "\"10\"", "[1]", "-0.5", "{a: 1}", "1e400",
        ][..],
    )
    .prop_map(|yaml| (yaml.to_string(), Expect::Invalid));
    let odd = select(&["18446744073709551616", "-0", "0x10", "1e3", "+5", "0.0"][..])
        .prop_map(|yaml| (yaml.to_string(), Expect::Unknown));
    prop_oneof![8 => whole, 4 => decimal, 1 => negative, 1 => wrong, 1 => odd].boxed()
}

fn file_descriptor() -> BoxedStrategy<(String, Expect)> {
    let number = prop_oneof![6 => 3i64..100, 1 => -5i64..3, 1 => any::<i64>()].prop_map(|n| {
        let expect = match i32::try_from(n) {
            Ok(fd) if fd >= 3 => Expect::Valid(Value::Fd(fd)),
            _ => Expect::Invalid,
        };
        (n.to_string(), expect)
    });
    let beyond_i64 =
        (i64::MAX as u64 + 1..=u64::MAX).prop_map(|n| (n.to_string(), Expect::Invalid));
    let wrong = select(&["'3'", "3.5", "true", "[3]", ".inf"][..])
        .prop_map(|yaml| (yaml.to_string(), Expect::Invalid));
    prop_oneof![8 => number, 1 => beyond_i64, 1 => wrong].boxed()
}

fn directory_value() -> BoxedStrategy<(String, Expect)> {
    prop_oneof![
        "/?[a-z0-9_.]{1,8}(/[a-z0-9_.]{1,8}){0,3}"
            .prop_filter("YAML's null", |path| path != "null")
            .prop_map(|path| (path.clone(), Expect::Valid(Value::Text(path)))),
        any::<String>().prop_map(|text| {
            let expect = if text.is_empty() || text.contains('\0') {
                Expect::Invalid
            } else {
                Expect::Valid(Value::Text(text.clone()))
            };
            (quoted(&text), expect)
        }),
    ]
    .boxed()
}

/// The accounts of test_support's passwd and group files, as (name, uid, gid, home)
/// and (name, gid, members).
fn passwd_model() -> Vec<(String, u32, u32, String)> {
    PASSWD
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (
                fields[0].to_string(),
                fields[2].parse().unwrap(),
                fields[3].parse().unwrap(),
                fields[5].to_string(),
            )
        })
        .collect()
}

fn group_model() -> Vec<(String, u32, Vec<String>)> {
    GROUP
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            let members = fields[3]
                .split(',')
                .filter(|m| !m.is_empty())
                .map(String::from)
                .collect();
            (fields[0].to_string(), fields[2].parse().unwrap(), members)
        })
        .collect()
}

/// A user or group as written. Whether the account exists is decided later (the
/// model looks it up, as the loader does once every value has parsed); only text that
/// cannot be an account name at all is wrong here.
fn account_value(names: &'static [&'static str]) -> BoxedStrategy<(String, Expect)> {
    let named = select(names).prop_map(|name| {
        (
            name.to_string(),
            Expect::Valid(Value::Text(name.to_string())),
        )
    });
    let numeric = prop_oneof![0u64..2000, Just(u64::from(u32::MAX) + 1)]
        .prop_map(|id| (id.to_string(), Expect::Valid(Value::Text(id.to_string()))));
    let wrong = select(&["\"\"", "\"a:b\"", "\"a\\nb\"", "\"a\\0b\"", "[root]"][..])
        .prop_map(|yaml| (yaml.to_string(), Expect::Invalid));
    prop_oneof![4 => named, 2 => numeric, 1 => wrong].boxed()
}

fn user_value() -> BoxedStrategy<(String, Expect)> {
    account_value(&[
        "root", "www", "alice", "0", "33", "1000", "mallory", "-1", "adm",
    ])
}

fn group_value() -> BoxedStrategy<(String, Expect)> {
    account_value(&["root", "www", "adm", "alice", "audio", "wheel", "-1", "bob"])
}

/// The signal names of Linux, as documented for stop_signal.
const SIGNAL_NAMES: &[&str] = &[
    "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2",
    "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG",
    "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
];

/// A signal name in any of the forms people write (`term`, `SIGTERM`, ` Term `), and
/// the signal nix knows by that name.
fn signal_name() -> impl Strategy<Value = (String, Signal)> {
    (
        select(SIGNAL_NAMES),
        any::<bool>(),
        0u8..3,
        select(&["", " ", "\t"][..]),
    )
        .prop_map(|(name, prefixed, case, padding)| {
            let signal: Signal = format!("SIG{name}").parse().unwrap();
            let mut text = if prefixed {
                format!("SIG{name}")
            } else {
                name.to_string()
            };
            text = match case {
                0 => text,
                1 => text.to_ascii_lowercase(),
                _ => {
                    let mut chars = text.chars();
                    let first = chars.next().unwrap();
                    first.to_string() + &chars.as_str().to_ascii_lowercase()
                }
            };
            (format!("{padding}{text}{padding}"), signal)
        })
}

/// A signal number: valid when Linux has a standard signal of that number.
fn signal_number() -> impl Strategy<Value = (String, Option<Signal>)> {
    prop_oneof![4 => 1i64..32, 2 => -3i64..70, 1 => Just(i64::from(i32::MAX) + 1), 1 => Just(i64::MIN)]
        .prop_map(|n| (n.to_string(), i32::try_from(n).ok().and_then(|n| Signal::try_from(n).ok())))
}

fn stop_signal_value() -> BoxedStrategy<(String, Expect)> {
    prop_oneof![
        6 => signal_name().prop_map(|(text, signal)| (quoted(&text), Expect::Valid(Value::Signal(signal)))),
        3 => (signal_number(), any::<bool>()).prop_map(|((text, signal), quote)| {
            let yaml = if quote { quoted(&text) } else { text };
            let expect = signal.map_or(Expect::Invalid, |s| Expect::Valid(Value::Signal(s)));
            (yaml, expect)
        }),
        1 => select(&["SIGFOO", "TERMINATE", "\"\"", "SIG", "[TERM]", "SIGSIGTERM", "rtmin"][..])
            .prop_map(|yaml| (yaml.to_string(), Expect::Invalid)),
        1 => any::<String>().prop_map(|text| (quoted(&text), Expect::Unknown)),
    ]
    .boxed()
}

fn log_value() -> BoxedStrategy<(String, Expect)> {
    let known = select(
        &[
            ("kmsg", LogDestination::Kmsg),
            ("console", LogDestination::Console),
            ("none", LogDestination::Null),
        ][..],
    )
    .prop_map(|(name, log)| (name.to_string(), Expect::Valid(Value::Log(log))));
    let unknown = select(&["syslog", "KMSG", "\"\"", "[kmsg]", "null", "file"][..])
        .prop_map(|yaml| (yaml.to_string(), Expect::Invalid));
    prop_oneof![6 => known, 1 => unknown].boxed()
}

const KEYS: [&str; 15] = [
    "exec",
    "oneshot",
    "after",
    "environ",
    "test",
    "test_interval",
    "ready_fd",
    "dir",
    "user",
    "group",
    "stop_signal",
    "stop_timeout",
    "restart_delay",
    "restart_delay_max",
    "log",
];

fn value_for(key: &str) -> BoxedStrategy<(String, Expect)> {
    match key {
        "exec" | "test" => command(),
        "oneshot" => boolean(),
        "after" => after(),
        "environ" => environ(),
        "test_interval" | "restart_delay" | "restart_delay_max" => seconds(false),
        "stop_timeout" => seconds(true),
        "ready_fd" => file_descriptor(),
        "dir" => directory_value(),
        "user" => user_value(),
        "group" => group_value(),
        "stop_signal" => stop_signal_value(),
        "log" => log_value(),
        other => unreachable!("no values for {other}"),
    }
}

fn entry_for(key: &'static str) -> BoxedStrategy<Entry> {
    value_for(key)
        .prop_map(move |(value, expect)| Entry {
            key: key.to_string(),
            value,
            expect,
        })
        .boxed()
}

/// A key the loader does not know: a typo, another program's key, a case variant.
fn unknown_key_entry() -> impl Strategy<Value = Entry> {
    prop_oneof![
        "[a-z][a-z_]{0,12}".prop_filter("a known key", |key| !KEYS.contains(&key.as_str())),
        select(
            &[
                "EXEC",
                "Exec",
                "exec_",
                "restart",
                "enviorn",
                "\"\"",
                "1",
                "~",
                "\"exec \""
            ][..]
        )
        .prop_map(String::from),
    ]
    .prop_map(|key| Entry {
        key,
        value: "1".to_string(),
        expect: Expect::Invalid,
    })
}

/// A document of the real keys in random order (exec nearly always among them), maybe
/// with an unknown or repeated key, laid out with comments and blank lines.
fn document() -> impl Strategy<Value = Document> {
    let keys = subsequence(KEYS[1..].to_vec(), 0..=8).prop_shuffle();
    let entries = (keys, prop::bool::weighted(0.9), any::<Index>()).prop_flat_map(
        |(mut keys, with_exec, at)| {
            if with_exec {
                keys.insert(at.index(keys.len() + 1), "exec");
            }
            keys.into_iter().map(entry_for).collect::<Vec<_>>()
        },
    );
    let odd = prop_oneof![
        unknown_key_entry().prop_map(|entry| (entry, None)),
        any::<Index>().prop_map(|copied| (
            Entry {
                key: String::new(),
                value: String::new(),
                expect: Expect::Invalid
            },
            Some(copied)
        )),
    ];
    (
        entries,
        prop::option::weighted(0.15, (odd, any::<Index>())),
        prop::collection::vec((0usize..3, any::<bool>()), 10),
        (0u8..3, any::<bool>(), any::<bool>()),
        (prop::bool::weighted(0.15), any::<bool>(), any::<bool>()),
    )
        .prop_map(
            |(mut entries, odd, gaps, (header, footer, final_newline), (log, finish, down))| {
                if let Some(((mut entry, copied), at)) = odd {
                    if let Some(copied) = copied {
                        if entries.is_empty() {
                            entry = Entry {
                                key: "nonsense".to_string(),
                                value: "1".to_string(),
                                expect: Expect::Invalid,
                            };
                        } else {
                            // The same key again: whatever its value, a duplicate.
                            let original = &entries[copied.index(entries.len())];
                            entry = Entry {
                                key: original.key.clone(),
                                value: original.value.clone(),
                                expect: Expect::Invalid,
                            };
                        }
                    }
                    let position = at.index(entries.len() + 1);
                    // A duplicate must come after the key it repeats.
                    let position = match entries.iter().position(|e| e.key == entry.key) {
                        Some(first) => position.max(first + 1),
                        None => position,
                    };
                    entries.insert(position, entry);
                }
                render(
                    entries,
                    &gaps,
                    header,
                    footer,
                    final_newline,
                    log,
                    finish,
                    down,
                )
            },
        )
}

#[allow(clippy::too_many_arguments)]
fn render(
    entries: Vec<Entry>,
    gaps: &[(usize, bool)],
    header: u8,
    footer: bool,
    final_newline: bool,
    log_directory: bool,
    finish: bool,
    down: bool,
) -> Document {
    let mut lines: Vec<String> = Vec::new();
    match header {
        1 => lines.push("---".to_string()),
        2 => lines.extend(["%YAML 1.2".to_string(), "---".to_string()]),
        _ => {}
    }
    let mut placed = Vec::new();
    for (index, entry) in entries.into_iter().enumerate() {
        let (blank, comment) = gaps[index % gaps.len()];
        for _ in 0..blank {
            lines.push(if comment { "# a comment" } else { "" }.to_string());
        }
        let trailer = if comment { "  # why" } else { "" };
        lines.push(format!("{}: {}{}", entry.key, entry.value, trailer));
        placed.push((entry, lines.len()));
    }
    // `...` ends a document; alone, with none begun, it is a syntax error.
    if footer && !lines.is_empty() {
        lines.push("...".to_string());
    }
    let mut text = lines.join("\n");
    if final_newline && !text.is_empty() {
        text.push('\n');
    }
    Document {
        text,
        entries: placed,
        log_directory,
        finish,
        down,
    }
}

/// What the loader must make of a document: a definition, or an error at one of
/// these (line, message prefix) places.
enum Outcome {
    Loads(Box<ServiceDefinition>),
    FailsAt(Vec<(usize, String)>),
    /// Some value's fate is unknown to the generator.
    Either,
}

fn entry_value<'a>(document: &'a Document, key: &str) -> Option<(&'a Value, usize)> {
    document
        .entries
        .iter()
        .find(|(entry, _)| entry.key == key)
        .map(|(entry, line)| match &entry.expect {
            Expect::Valid(value) => (value, *line),
            _ => unreachable!("only asked once every value is valid"),
        })
}

/// The rules of docs/service-definition.md, as a model.
fn expected(document: &Document, fixture: &Fixture) -> Outcome {
    // Values are checked in file order; the first bad key or value is the error.
    let mut seen: Vec<&str> = Vec::new();
    for (entry, line) in &document.entries {
        let known = KEYS.contains(&entry.key.as_str());
        if !known {
            return Outcome::FailsAt(vec![(*line, "unknown key".to_string())]);
        }
        if seen.contains(&entry.key.as_str()) {
            return Outcome::FailsAt(vec![(*line, format!("duplicate key `{}`", entry.key))]);
        }
        seen.push(&entry.key);
        match entry.expect {
            Expect::Valid(_) => {}
            Expect::Invalid => return Outcome::FailsAt(vec![(*line, entry.key.clone())]),
            Expect::Unknown => return Outcome::Either,
        }
    }
    let Some(first) = document.entries.first() else {
        return Outcome::FailsAt(vec![(1, "empty: exec is required".to_string())]);
    };
    let Some((Value::Command(command), _)) = entry_value(document, "exec") else {
        return Outcome::FailsAt(vec![(first.1, "exec is missing".to_string())]);
    };
    let value = |key: &str| entry_value(document, key);
    let fails = |keys: &[&str]| {
        Outcome::FailsAt(
            keys.iter()
                .filter_map(|key| value(key).map(|(_, line)| (line, format!("{key}: "))))
                .collect(),
        )
    };

    let oneshot = matches!(value("oneshot"), Some((Value::Bool(true), _)));
    let readiness = match (value("test"), value("ready_fd"), value("test_interval")) {
        (Some(_), Some(_), _) => return fails(&["test", "ready_fd"]),
        (Some((Value::Command(command), _)), None, interval) => Readiness::Test {
            command: command.clone(),
            interval: match interval {
                Some((Value::Seconds(interval), _)) => *interval,
                _ => DEFAULT_TEST_INTERVAL,
            },
        },
        // test_interval beside ready_fd is accepted (and does nothing).
        (None, Some((Value::Fd(fd), _)), _) => Readiness::NotificationFd(*fd),
        (None, None, Some(_)) => return fails(&["test_interval"]),
        (None, None, None) => Readiness::Immediate,
        other => unreachable!("{other:?}"),
    };
    if oneshot && (value("test").is_some() || value("ready_fd").is_some()) {
        return fails(&["test", "ready_fd"]);
    }
    let seconds = |key: &str, default: Duration| match value(key) {
        Some((Value::Seconds(seconds), _)) => *seconds,
        _ => default,
    };
    let restart_delay = seconds("restart_delay", DEFAULT_RESTART_DELAY);
    let restart_delay_max = seconds("restart_delay_max", DEFAULT_RESTART_DELAY_MAX);
    if restart_delay_max < restart_delay {
        return fails(&["restart_delay", "restart_delay_max"]);
    }
    let log = match (document.log_directory, value("log")) {
        (true, Some(_)) => return fails(&["log"]),
        (true, None) => LogDestination::Service(fixture.path("log")),
        (false, Some((Value::Log(log), _))) => log.clone(),
        _ => LogDestination::Kmsg,
    };
    let text = |key: &str| match value(key) {
        Some((Value::Text(text), _)) => Some(text.clone()),
        _ => None,
    };
    let credentials = match (text("user"), text("group")) {
        (None, None) => None,
        (None, Some(_)) => return fails(&["group"]),
        (Some(user), group) => {
            let passwd = passwd_model();
            let account = passwd
                .iter()
                .find(|(name, ..)| *name == user)
                .or_else(|| passwd.iter().find(|(_, uid, ..)| uid.to_string() == user));
            let Some((name, uid, primary, home)) = account else {
                return fails(&["user"]);
            };
            let groups = group_model();
            let gid = match group {
                None => *primary,
                Some(group) => match groups.iter().find(|(name, ..)| *name == group) {
                    Some((_, gid, _)) => *gid,
                    None => match group.parse() {
                        Ok(gid) => gid,
                        Err(_) => return fails(&["group"]),
                    },
                },
            };
            let mut supplementary_groups = vec![gid];
            for (_, group_gid, members) in &groups {
                if members.contains(name) && !supplementary_groups.contains(group_gid) {
                    supplementary_groups.push(*group_gid);
                }
            }
            Some(Credentials {
                user_name: name.clone(),
                uid: *uid,
                gid,
                supplementary_groups,
                home: PathBuf::from(home),
            })
        }
    };
    // The defaults themselves are the loader's (their cases: yaml_tests.rs).
    let environ = match value("environ") {
        Some((Value::Variables(variables), _)) => variables.clone(),
        _ => Vec::new(),
    };
    let variables = super::yaml::with_defaults(environ, credentials.as_ref(), &[]);
    Outcome::Loads(Box::new(ServiceDefinition {
        name: "web".to_string(),
        directory: fixture.service.clone(),
        form: Form::Yaml(fixture.path("service.yaml")),
        command: command.clone(),
        oneshot,
        after: match value("after") {
            Some((Value::Names(names), _)) => names.clone(),
            _ => Vec::new(),
        },
        environment: Environment::Exactly(variables),
        readiness,
        working_directory: match text("dir") {
            Some(dir) => fixture.service.join(dir),
            None => fixture.service.clone(),
        },
        credentials,
        controls: Default::default(),
        stop_signal: match value("stop_signal") {
            Some((Value::Signal(signal), _)) => *signal,
            _ => DEFAULT_STOP_SIGNAL,
        },
        stop_timeout: seconds("stop_timeout", DEFAULT_STOP_TIMEOUT),
        log,
        log_tail: crate::tail::DEFAULT_CAPACITY,
        on_failure: None,
        kill_mode: Default::default(),
        restart_delay,
        restart_delay_max,
        finish: document.finish.then(|| fixture.path("finish")),
        normally_down: document.down,
        limits: Default::default(),
    }))
}

fn load_document(document: &Document) -> (Fixture, Result<ServiceDefinition, DefinitionError>) {
    let mut extra = Vec::new();
    if document.log_directory {
        extra.push(("log/", ""));
    }
    if document.finish {
        extra.push(("finish", "#!/bin/sh\n"));
    }
    if document.down {
        extra.push(("down", ""));
    }
    load_yaml(document.text.as_bytes(), &extra)
}

// ---------------------------------------------------------------------------------------
// runit's form: the one-value files s6 added.

/// The content of one setting file, with what it must load as.
#[derive(Clone, Debug)]
enum SettingValue {
    NotificationFd(i32),
    Signal(Signal),
    Timeout(Duration),
}

type Setting = Option<(Vec<u8>, Result<SettingValue, Expect>)>;

/// Blanks around a value, which the loader trims.
fn padded(text: String) -> impl Strategy<Value = Vec<u8>> {
    let padding = select(&["", " ", "\n", "\t", " \r\n", "\n\n"][..]);
    (padding.clone(), padding)
        .prop_map(move |(before, after)| format!("{before}{text}{after}").into_bytes())
}

fn arbitrary_setting() -> impl Strategy<Value = (Vec<u8>, Result<SettingValue, Expect>)> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..24),
        any::<String>().prop_map(String::into_bytes),
    ]
    .prop_map(|bytes| {
        // Not UTF-8, or nothing but blanks: wrong whatever the file.
        let expect =
            if std::str::from_utf8(&bytes).is_err() || bytes.iter().all(u8::is_ascii_whitespace) {
                Expect::Invalid
            } else {
                Expect::Unknown
            };
        (bytes, Err(expect))
    })
}

fn notification_fd_file() -> impl Strategy<Value = Setting> {
    let number = prop_oneof![3 => -3i64..64, 1 => any::<i64>()].prop_flat_map(|n| {
        let expect = match i32::try_from(n) {
            Ok(fd) if fd >= 3 => Ok(SettingValue::NotificationFd(fd)),
            _ => Err(Expect::Invalid),
        };
        padded(n.to_string()).prop_map(move |bytes| (bytes, expect.clone()))
    });
    let wrong = select(&["three", "3.0", "0x3", "+", "99999999999999999999", "3 4"][..])
        .prop_map(|text| (text.as_bytes().to_vec(), Err(Expect::Invalid)));
    prop::option::of(prop_oneof![4 => number, 1 => wrong, 2 => arbitrary_setting()])
}

fn down_signal_file() -> impl Strategy<Value = Setting> {
    let name = signal_name()
        .prop_map(|(text, signal)| (text.into_bytes(), Ok(SettingValue::Signal(signal))));
    let number = signal_number().prop_map(|(text, signal)| {
        (
            text.into_bytes(),
            signal.map(SettingValue::Signal).ok_or(Expect::Invalid),
        )
    });
    let wrong = select(&["TERMINATE", "SIGFOO", "SIG", "15x", "TERM HUP"][..])
        .prop_map(|text| (text.as_bytes().to_vec(), Err(Expect::Invalid)));
    prop::option::of(prop_oneof![3 => name, 2 => number, 1 => wrong, 2 => arbitrary_setting()])
}

fn timeout_kill_file() -> impl Strategy<Value = Setting> {
    let number = prop_oneof![3 => 0u64..100_000, 1 => any::<u64>()].prop_flat_map(|ms| {
        let timeout = if ms == 0 {
            DEFAULT_STOP_TIMEOUT
        } else {
            Duration::from_millis(ms)
        };
        padded(ms.to_string()).prop_map(move |bytes| (bytes, Ok(SettingValue::Timeout(timeout))))
    });
    let wrong = select(&["-5", "10s", "1.5", "18446744073709551616", "", "\n", "0x10"][..])
        .prop_map(|text| (text.as_bytes().to_vec(), Err(Expect::Invalid)));
    prop::option::of(prop_oneof![4 => number, 1 => wrong, 2 => arbitrary_setting()])
}

// ---------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(256))]

    /// Whatever bytes service.yaml holds: a definition, or an error naming the file and
    /// a line; bytes that are not UTF-8 are reported at the line they are on.
    #[test]
    fn service_yaml_of_any_bytes_loads_or_fails_naming_file_and_line(bytes in yaml_bytes()) {
        let (fixture, loaded) = load_yaml(&bytes, &[]);
        let path = fixture.path("service.yaml");
        match (loaded, std::str::from_utf8(&bytes)) {
            (Ok(definition), Ok(_)) => {
                prop_assert_eq!(&definition.form, &Form::Yaml(path));
                prop_assert!(!definition.command.is_empty());
                prop_assert!(!definition.command[0].is_empty());
            }
            (Ok(definition), Err(_)) => {
                return Err(TestCaseError::fail(format!("loaded bytes that are not UTF-8: {definition:?}")));
            }
            (Err(error), utf8) => {
                check_error_shape(&error, &path, &bytes)?;
                if let Err(invalid) = utf8 {
                    let before = &bytes[..invalid.valid_up_to()];
                    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
                    prop_assert_eq!(error.line, Some(line));
                    prop_assert_eq!(error.message.as_str(), "not valid UTF-8");
                }
            }
        }
    }

    /// A near-valid service.yaml (real keys in any order, right and wrong values,
    /// unknown and repeated keys, comments, document markers) loads to exactly the
    /// values it gives, or fails at the line of the first key at fault, naming it.
    #[test]
    fn near_valid_service_yaml_loads_its_values_or_fails_at_the_key_at_fault(document in document()) {
        let (fixture, loaded) = load_document(&document);
        let path = fixture.path("service.yaml");
        if let Err(error) = &loaded {
            check_error_shape(error, &path, document.text.as_bytes())?;
        }
        match (expected(&document, &fixture), loaded) {
            (Outcome::Loads(expected), Ok(definition)) => {
                prop_assert_eq!(definition, *expected);
            }
            (Outcome::Loads(expected), Err(error)) => {
                return Err(TestCaseError::fail(format!("expected {expected:?}, got error {error}")));
            }
            (Outcome::FailsAt(places), Err(error)) => {
                let matched = places.iter().any(|(line, fragment)| {
                    error.line == Some(*line) && error.message.contains(fragment.as_str())
                });
                prop_assert!(matched, "expected an error at one of {:?}, got: {}", places, error);
            }
            (Outcome::FailsAt(places), Ok(definition)) => {
                return Err(TestCaseError::fail(format!("expected an error at one of {places:?}, loaded {definition:?}")));
            }
            (Outcome::Either, _) => {}
        }
    }

    /// runit's form with any `notification-fd`, `down-signal` and `timeout-kill`
    /// contents: the values they give, or an error naming the first bad file, at line 1.
    #[test]
    fn runit_setting_files_load_their_values_or_fail_naming_the_file(
        notification in notification_fd_file(),
        down_signal in down_signal_file(),
        timeout_kill in timeout_kill_file(),
    ) {
        let fixture = service(&[("run", "#!/bin/sh\n")]);
        let files = [
            ("notification-fd", &notification),
            ("down-signal", &down_signal),
            ("timeout-kill", &timeout_kill),
        ];
        for (name, setting) in &files {
            if let Some((bytes, _)) = setting {
                fs::write(fixture.path(name), bytes).unwrap();
            }
        }
        let loaded = fixture.load();

        // The files are read in this order: the first bad one is the error.
        let mut outcome = Ok(fixture.defaults(Form::Runit));
        for (name, setting) in &files {
            let Some((_, expect)) = setting else { continue };
            match (expect, &mut outcome) {
                (Ok(value), Ok(definition)) => match value {
                    SettingValue::NotificationFd(fd) => {
                        definition.readiness = Readiness::NotificationFd(*fd)
                    }
                    SettingValue::Signal(signal) => definition.stop_signal = *signal,
                    SettingValue::Timeout(timeout) => definition.stop_timeout = *timeout,
                },
                (Err(Expect::Invalid), Ok(_)) => outcome = Err(Some(fixture.path(name))),
                (Err(_), Ok(_)) => outcome = Err(None),
                (_, Err(_)) => {}
            }
        }

        if let Err(error) = &loaded {
            prop_assert!(files.iter().any(|(name, _)| error.path == fixture.path(name)), "{}", error);
            prop_assert_eq!(error.line, Some(1), "{}", error);
            prop_assert!(!error.message.trim().is_empty());
            let prefix = format!("{}: line 1: ", error.path.display());
            prop_assert!(error.to_string().starts_with(&prefix), "{}", error);
        }
        match (outcome, loaded) {
            (Ok(expected), loaded) => prop_assert_eq!(loaded, Ok(expected)),
            (Err(Some(path)), Err(error)) => prop_assert_eq!(error.path, path),
            (Err(Some(path)), Ok(definition)) => {
                return Err(TestCaseError::fail(format!(
                    "expected an error naming {}, loaded {definition:?}",
                    path.display()
                )));
            }
            (Err(None), _) => {}
        }
    }
}
