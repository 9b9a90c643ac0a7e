//! The YAML form's unit tests: every key's values and errors, at the line at fault.

use super::super::test_support::{service, Fixture};
use super::document::edit_distance;
use super::*;
use nix::sys::signal::Signal;
use std::path::PathBuf;
use std::time::Duration;

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

fn loads(yaml: &str) -> ServiceDefinition {
    fixture_with(yaml, &[]).loaded()
}

/// Asserts that `yaml` fails at `line` with a message naming `key` and holding
/// `fragment`.
fn fails_at(yaml: &str, line: usize, key: &str, fragment: &str) {
    fails_in(&fixture_with(yaml, &[]), line, key, fragment);
}

fn fails_in(fixture: &Fixture, line: usize, key: &str, fragment: &str) {
    let error = fixture.error();
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

/// Every error names its key (or what stands for it) and the line at fault.
#[test]
fn errors_name_the_key_at_the_line_at_fault() {
    // (service.yaml, line, key, a fragment of the message)
    #[rustfmt::skip]
    let cases = [
        // exec errors point at exec
        ("oneshot: true\nexec: \"'' arg\"\n", 2, "exec", "the program name is empty"),
        ("oneshot: true\nexec: ''\n", 2, "exec", "empty command"),
        ("oneshot: true\nexec: \"\"\n", 2, "exec", "empty command"),
        ("oneshot: true\nexec: \"   \"\n", 2, "exec", "empty command"),
        ("oneshot: true\nexec:\n", 2, "exec", "empty command"),
        ("\n\nexec: \"echo 'unbalanced\"\n", 3, "exec", "unterminated single quote (opened at character 6)"),
        ("exec: [a, b]\n", 1, "exec", "invalid type: sequence"),
        ("exec: {a: b}\n", 1, "exec", "invalid type: map"),
        // a missing exec points at the start of the mapping
        ("# service\n\noneshot: true\nlog: none\n", 3, "exec", "exec is missing"),
        // an empty file is an error at line 1
        ("", 1, "exec", "empty"),
        ("# nothing here\n\n", 1, "exec", "empty"),
        ("---\n", 1, "exec", "empty"),
        // a file that is not a mapping is an error
        ("- exec\n- /bin/true\n", 1, "exec", "invalid type: sequence"),
        ("/bin/true\n", 1, "exec", "invalid type: string"),
        // a second document is an error at its start
        ("exec: /bin/true\n---\nexec: /bin/false\n", 3, "service.yaml", "a second YAML document"),
        // log tail is a size in bytes
        ("exec: a\nlog_tail: -1\n", 2, "log_tail", "0 or more"),
        ("exec: a\nlog_tail: 67108865\n", 2, "log_tail", "at most"),
        ("exec: a\nlog_tail: 1M\n", 2, "log_tail", "number of bytes"),
        // unknown keys are named with the accepted ones
        ("exec: /bin/true\n\nrestart: always\n", 3, "`restart`", "accepted keys: exec, oneshot, after, environ, test, test_interval, ready_fd, dir, \
          user, group, stop_signal, stop_timeout, kill_mode, restart_delay, restart_delay_max, log, log_tail, \
          container_env, on_failure, memory_max, memory_high, cpu_weight, cpu_max, pids_max, io_weight, \
          limit_nofile, limit_nproc, limit_core, limit_data, limit_stack, limit_fsize, limit_rss, \
          limit_as, limit_memlock, limit_cpu, nice, umask, env_file, env_dir"),
        ("exec: /bin/true\nenviorn: {}\n", 2, "`enviorn`", "did you mean `environ`?"),
        // keys in a flow mapping are found too
        ("{exec: /bin/true,\n nonsense: 1}\n", 2, "nonsense", "unknown key"),
        // a duplicate key is an error at its second occurrence
        ("exec: a\nlog: none\nexec: b\n", 3, "exec", "duplicate key"),
        // oneshot is a boolean
        ("exec: a\noneshot: yes\n", 2, "oneshot", "expected a boolean"),
        ("exec: a\noneshot: 1\n", 2, "oneshot", "expected a boolean"),
        // after errors point at the bad name
        ("exec: a\nafter:\n  - network\n  - ../etc\n", 4, "after", "contains `/`"),
        ("exec: a\nafter: [ok, '']\n", 2, "after", "cannot be empty"),
        ("exec: a\nafter: a/b\n", 2, "after", "contains `/`"),
        ("exec: a\nafter: ..\n", 2, "after", "cannot be a service name"),
        ("exec: a\nafter: {x: y}\n", 2, "after", "invalid type: map"),
        ("exec: a\nafter:\n", 2, "after", "has no value"),
        // environ errors point at the variable
        ("exec: a\nenviron:\n  GOOD: 1\n  NESTED:\n    inner: 2\n", 5, "environ.NESTED", "invalid type: map"),
        ("exec: a\nenviron:\n  LIST: [1, 2]\n", 3, "environ.LIST", "invalid type: sequence"),
        ("exec: a\nenviron:\n  A=B: 1\n", 3, "environ", "`A=B` cannot be a variable name"),
        ("exec: a\nenviron:\n  A: 1\n  A: 2\n", 4, "environ", "`A` is set twice"),
        ("exec: a\nenviron: [A=1]\n", 2, "environ", "invalid type: sequence"),
        ("exec: a\nenviron: A=1\n", 2, "environ", "invalid type: string"),
        // account errors point at user or group
        ("exec: a\n\nuser: mallory\n", 3, "user", "no user `mallory` in"),
        ("exec: a\nuser: 4242\n", 2, "user", "no user with uid 4242"),
        ("exec: a\nuser: alice\ngroup: wheel\n", 3, "group", "no group `wheel` in"),
        ("exec: a\ngroup: adm\n", 2, "group", "needs user"),
        ("exec: a\nuser: ''\n", 2, "user", "is empty"),
        ("exec: a\nuser: 'a:b'\n", 2, "user", "cannot be a user or group name"),
        // readiness errors point at the key at fault
        ("exec: a\ntest: \"''\"\n", 2, "test", "the program name is empty"),
        ("exec: a\ntest: ' '\n", 2, "test", "empty command"),
        ("exec: a\ntest: check\nready_fd: 3\n", 3, "ready_fd", "both define readiness"),
        ("exec: a\nready_fd: 3\n\ntest: check\n", 4, "test", "both define readiness"),
        ("exec: a\noneshot: true\ntest: check\n", 3, "test", "oneshot"),
        ("exec: a\nready_fd: 5\noneshot: true\n", 2, "ready_fd", "oneshot"),
        ("exec: a\ntest_interval: 1\n", 2, "test_interval", "without test"),
        ("exec: a\ntest: c\ntest_interval: 0\n", 3, "test_interval", "more than 0"),
        ("exec: a\nready_fd: 2\n", 2, "ready_fd", "must be 3 or more"),
        ("exec: a\nready_fd: -1\n", 2, "ready_fd", "must be 3 or more"),
        ("exec: a\nready_fd: 99999999999\n", 2, "ready_fd", "too large"),
        ("exec: a\nready_fd: '3'\n", 2, "ready_fd", "invalid type: string"),
        ("exec: a\nready_fd: 3.5\n", 2, "ready_fd", "invalid type: floating point"),
        // dir is relative to the service directory
        ("exec: a\ndir: ''\n", 2, "dir", "is empty"),
        // bad durations point at their key
        ("exec: a\nstop_timeout: -1\n", 2, "stop_timeout", "must not be negative"),
        ("exec: a\nkill_mode: session\n", 2, "kill_mode", "unknown mode `session`; use group or process"),
        ("exec: a\nstop_timeout: -0.5\n", 2, "stop_timeout", "must not be negative"),
        ("exec: a\nstop_timeout: 10s\n", 2, "stop_timeout", "invalid type: string"),
        ("exec: a\nstop_timeout: true\n", 2, "stop_timeout", "invalid type: boolean"),
        ("exec: a\nstop_timeout: .inf\n", 2, "stop_timeout", "not a usable number"),
        ("exec: a\nstop_timeout: .nan\n", 2, "stop_timeout", "not a usable number"),
        ("exec: a\nrestart_delay: 0\n", 2, "restart_delay", "more than 0"),
        ("exec: a\nrestart_delay_max: 0\n", 2, "restart_delay_max", "more than 0"),
        // restart delay max must not be below restart delay
        ("exec: a\nrestart_delay_max: 2\nrestart_delay: 5\n", 2, "restart_delay_max", "2s is less than restart_delay (5s)"),
        ("exec: a\n\nrestart_delay: 90\n", 3, "restart_delay", "more than restart_delay_max (60s by default)"),
        // log names a destination
        ("exec: a\nlog: syslog\n", 2, "log", "unknown destination `syslog`"),
    ];
    for (yaml, line, key, fragment) in cases {
        fails_at(yaml, line, key, fragment);
    }
}

#[test]
fn exec_alone_gets_every_default() {
    let fixture = fixture_with("exec: /usr/sbin/sshd -D -e\n", &[]);
    assert_eq!(
        fixture.load(),
        Ok(ServiceDefinition {
            command: strings(&["/usr/sbin/sshd", "-D", "-e"]),
            ..fixture.defaults(Form::Yaml(fixture.path("service.yaml")))
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
        fixture.load(),
        Ok(ServiceDefinition {
            command: strings(&["/usr/bin/redis-server", "--port", "6380"]),
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
            controls: ProcessControls::default(),
            stop_signal: Signal::SIGINT,
            stop_timeout: Duration::from_secs(30),
            log: LogDestination::Console,
            restart_delay: Duration::from_millis(250),
            restart_delay_max: Duration::from_secs(120),
            finish: Some(fixture.path("finish")),
            normally_down: true,
            ..fixture.defaults(Form::Yaml(fixture.path("service.yaml")))
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
fn document_markers_around_the_one_document_are_fine() {
    assert_eq!(
        loads("%YAML 1.2\n---\nexec: a\n...\n").command,
        strings(&["a"])
    );
}

#[test]
fn yaml_syntax_errors_give_their_line() {
    let fixture = fixture_with("exec: /bin/true\nlog: none\n  oneshot: true\n", &[]);
    let error = fixture.load().unwrap_err();
    assert_eq!(error.line, Some(3), "{error}");
    assert!(
        error.message.contains("mapping values are not allowed"),
        "{error}"
    );
    assert!(!error.message.contains("at line 3"), "{error}");

    let fixture = fixture_with("exec: /bin/true\nlog: 'none\n", &[]);
    let error = fixture.load().unwrap_err();
    assert_eq!(error.line, Some(3), "{error}");
    assert!(error.message.contains("quoted scalar"), "{error}");
}

#[test]
fn invalid_utf8_is_an_error_at_its_line() {
    let fixture = service(&[]);
    fs::write(fixture.path("service.yaml"), b"exec: a\n\nlog: \xff\n").unwrap();
    let error = fixture.load().unwrap_err();
    assert_eq!(error.line, Some(3));
    assert_eq!(error.message, "not valid UTF-8");
}

#[test]
fn log_tail_is_a_size_in_bytes() {
    assert_eq!(loads("exec: a\n").log_tail, crate::tail::DEFAULT_CAPACITY);
    assert_eq!(loads("exec: a\nlog_tail: 0\n").log_tail, 0);
    assert_eq!(loads("exec: a\nlog_tail: 1048576\n").log_tail, 1 << 20);
}

#[test]
fn limits_are_read_and_a_bad_one_is_named() {
    let definition = loads(
        "exec: /bin/true\nmemory_max: 64M\nmemory_high: 48M\ncpu_weight: 50\n\
         cpu_max: 25%\npids_max: 16\nio_weight: 200\n",
    );
    assert_eq!(
        definition.limits,
        crate::cgroup::Limits {
            memory_max: Some(64 << 20),
            memory_high: Some(48 << 20),
            cpu_weight: Some(50),
            cpu_max: Some(25_000),
            pids_max: Some(16),
            io_weight: Some(200),
        }
    );
    fails_at(
        "exec: /bin/true\npids_max: 0\n",
        2,
        "pids_max",
        "`0` is not a number of processes, 1 or more",
    );
}

#[test]
fn unknown_keys_are_named_with_the_accepted_ones() {
    let fixture = fixture_with("exec: /bin/true\nrestart: always\n", &[]);
    let error = fixture.load().unwrap_err();
    assert!(!error.message.contains("did you mean"), "{error}");
}

#[test]
fn oneshot_is_a_boolean() {
    assert!(loads("exec: a\noneshot: true\n").oneshot);
    assert!(!loads("exec: a\noneshot: false\n").oneshot);
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
fn an_unreadable_passwd_is_an_error_at_user() {
    let mut fixture = fixture_with("exec: a\nuser: alice\n", &[]);
    fixture.system_files.passwd = fixture.root().join("no-passwd");
    fails_in(&fixture, 2, "user", "cannot read");
}

#[test]
fn a_missing_group_file_leaves_only_the_primary_group() {
    let mut fixture = fixture_with("exec: a\nuser: alice\n", &[]);
    fixture.system_files.group = fixture.root().join("no-group");
    let credentials = fixture.load().unwrap().credentials.unwrap();
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
fn dir_is_relative_to_the_service_directory() {
    let fixture = fixture_with("exec: a\ndir: /var/lib/web\n", &[]);
    assert_eq!(
        fixture.load().unwrap().working_directory,
        PathBuf::from("/var/lib/web")
    );
    let fixture = fixture_with("exec: a\ndir: ../shared\n", &[]);
    assert_eq!(
        fixture.load().unwrap().working_directory,
        fixture.service.join("../shared")
    );
}

#[test]
fn stop_signal_takes_names_in_any_form_and_numbers() {
    for (text, signal) in [
        ("TERM", Ok(Signal::SIGTERM)),
        ("SIGQUIT", Ok(Signal::SIGQUIT)),
        ("hup", Ok(Signal::SIGHUP)),
        ("9", Ok(Signal::SIGKILL)),
        ("'10'", Ok(Signal::SIGUSR1)),
        ("SIGFOO", Err("unknown signal `SIGFOO`")),
        ("0", Err("unknown signal `0`")),
    ] {
        let yaml = format!("exec: a\nstop_signal: {text}\n");
        match signal {
            Ok(signal) => assert_eq!(loads(&yaml).stop_signal, signal, "{text}"),
            Err(fragment) => fails_at(&yaml, 2, "stop_signal", fragment),
        }
    }
}

#[test]
fn durations_are_seconds_as_integers_or_decimals() {
    let loaded = loads("exec: a\nstop_timeout: 0\nrestart_delay: 0.1\nrestart_delay_max: 5\n");
    assert_eq!(loaded.stop_timeout, Duration::ZERO);
    assert_eq!(loaded.restart_delay, Duration::from_millis(100));
    assert_eq!(loaded.restart_delay_max, Duration::from_secs(5));
}

#[test]
fn restart_delay_max_must_not_be_below_restart_delay() {
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
}

#[test]
fn a_log_directory_is_the_log_and_conflicts_with_the_log_key() {
    let fixture = fixture_with("exec: a\n", &[("log/", "")]);
    assert_eq!(
        fixture.load().unwrap().log,
        LogDestination::Service(fixture.path("log"))
    );
    let fixture = fixture_with("exec: a\n\nlog: console\n", &[("log/", "")]);
    fails_in(&fixture, 3, "log", "conflicts with the log/ directory");
}

#[test]
fn the_message_leads_with_the_key_and_holds_no_second_position() {
    let fixture = fixture_with("exec: a\noneshot: 7\n", &[]);
    let error = fixture.load().unwrap_err();
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

/// The exact wording of each kind of value's errors, serde's for a value of the wrong
/// form included: what users see in `sv status` and the logs.
#[test]
fn every_kind_of_value_words_its_errors_exactly() {
    for (yaml, line, message) in [
        (
            "exec: a\noneshot: yes\n",
            2,
            "oneshot: invalid type: string \"yes\", expected a boolean",
        ),
        (
            "exec: a\nafter: 42\n",
            2,
            "after: invalid type: integer `42`, expected a service name or a list of service names",
        ),
        (
            "exec: a\nafter: [a, [b]]\n",
            2,
            "after[1]: invalid type: sequence, expected a service name",
        ),
        (
            "exec: a\nenviron: x\n",
            2,
            "environ: invalid type: string \"x\", expected a mapping of variable names to values",
        ),
        (
            "exec: a\nenviron:\n  K: [1]\n",
            3,
            "environ.K: invalid type: sequence, expected a string, number or boolean",
        ),
        (
            "exec: a\nenviron: {[1]: x}\n",
            2,
            "environ: invalid type: sequence, expected a variable name",
        ),
        (
            "exec: a\ntest_interval: true\n",
            2,
            "test_interval: invalid type: boolean `true`, expected a number of seconds, \
             such as 10 or 0.5",
        ),
        (
            "exec: a\nstop_timeout: ~\n",
            2,
            "stop_timeout: invalid type: unit value, expected a number of seconds, \
             such as 10 or 0.5",
        ),
        (
            "exec: a\nready_fd: x\n",
            2,
            "ready_fd: invalid type: string \"x\", expected a file descriptor number, 3 or more",
        ),
        (
            "exec: a\nlog_tail: 3.5\n",
            2,
            "log_tail: invalid type: floating point `3.5`, expected a number of bytes, \
             from 0 to 67108864 (64 MiB)",
        ),
        (
            "exec: a\ndir: [1]\n",
            2,
            "dir: invalid type: sequence, expected a directory path",
        ),
        (
            "exec: a\nstop_signal: {a: 1}\n",
            2,
            "stop_signal: invalid type: map, expected a signal name or number",
        ),
        (
            "exec: a\nlog: [1]\n",
            2,
            "log: invalid type: sequence, expected kmsg, console or none",
        ),
        (
            "exec: a\nuser: {a: 1}\n",
            2,
            "user: invalid type: map, expected a name or a number",
        ),
        (
            "exec: a\n[1]: x\n",
            2,
            "invalid type: sequence, expected a key name (exec, oneshot, after, environ, test, \
             test_interval, ready_fd, dir, user, group, stop_signal, stop_timeout, kill_mode, \
             restart_delay, restart_delay_max, log, log_tail, container_env, on_failure, memory_max, memory_high, \
             cpu_weight, cpu_max, pids_max, io_weight, limit_nofile, limit_nproc, limit_core, \
             limit_data, limit_stack, limit_fsize, limit_rss, limit_as, limit_memlock, limit_cpu, nice, \
             umask, env_file, env_dir)",
        ),
        (
            "exec: a\nstop_timeout: !foo 3\n",
            2,
            "stop_timeout: invalid type: enum, expected a number of seconds, such as 10 or 0.5",
        ),
        (
            "exec: a\noneshot: !!str 5\n",
            2,
            "oneshot: invalid type: string \"5\", expected a boolean",
        ),
        (
            "exec: a\nafter: -.inf\n",
            2,
            "after: invalid type: floating point `-inf`, \
             expected a service name or a list of service names",
        ),
        (
            "exec: a\nready_fd: 18446744073709551616\n",
            2,
            "ready_fd: invalid type: integer `18446744073709551616` as u128, \
             expected a file descriptor number, 3 or more",
        ),
        (
            "exec: a\nafter: ~\n",
            2,
            "after: has no value; give a service name, a list of names, or leave after out",
        ),
        (
            "exec: a\nenviron: {A: 1, A: 2}\n",
            2,
            "environ: `A` is set twice",
        ),
        (
            "[]",
            1,
            "invalid type: sequence, expected a mapping of keys, such as `exec: /usr/bin/program`",
        ),
        (
            "exec: a\n---\n[1]\n",
            3,
            "a second YAML document; a service.yaml holds one mapping",
        ),
        (
            "exec: a\ntest: [x]\n",
            2,
            "test: invalid type: sequence, expected a command line",
        ),
        (
            "exec: a\nrestart_delay: -0\n",
            2,
            "restart_delay: must be more than 0 seconds",
        ),
        (
            "exec: a\non_failure: restart\n",
            2,
            "on_failure: unknown policy `restart`; use continue, warn or stop",
        ),
        (
            "exec: a\ncontainer_env: FOO\n",
            2,
            "container_env: `FOO` is not `all`; name variables in a list: [FOO]",
        ),
        (
            "exec: a\ncontainer_env: [A, B/C]\n",
            2,
            "container_env[1]: `B/C` cannot be a variable name (it must be non-empty, without `=` or `/`)",
        ),
        (
            "exec: a\nlog_tail: ~\n",
            2,
            "log_tail: invalid type: unit value, expected a number of bytes, \
             from 0 to 67108864 (64 MiB)",
        ),
    ] {
        let error = fixture_with(yaml, &[]).error();
        assert_eq!(
            (error.line, error.message.as_str()),
            (Some(line), message),
            "{yaml:?}"
        );
    }
}

#[test]
fn container_env_takes_the_saved_variables_asked_for_and_environ_wins() {
    let with = |yaml: &str| {
        let fixture = fixture_with(yaml, &[]);
        let saved = &fixture.system_files.environment;
        std::fs::create_dir_all(saved).unwrap();
        for (name, value) in [
            ("FOO", "bar"),
            ("PATH", "/opt/bin"),
            ("HOME", "/root"),
            ("LANG", "C"),
        ] {
            std::fs::write(saved.join(name), value).unwrap();
        }
        fixture.load().unwrap().environment
    };
    assert_eq!(
        with("exec: a\n"),
        variables(&[("PATH", DEFAULT_PATH)]),
        "nothing unless asked"
    );
    assert_eq!(
        with("exec: a\ncontainer_env: [FOO, MISSING]\n"),
        variables(&[("PATH", DEFAULT_PATH), ("FOO", "bar")])
    );
    assert_eq!(
        with("exec: a\ncontainer_env: all\nenviron: {LANG: C.UTF-8}\nuser: www\n"),
        variables(&[
            ("LANG", "C.UTF-8"),
            ("PATH", "/opt/bin"),
            ("HOME", "/var/www"),
            ("USER", "www"),
            ("LOGNAME", "www"),
            ("FOO", "bar"),
        ])
    );
}

#[test]
fn chpsts_controls_as_keys() {
    use crate::definition::controls::{Limit, Resource};
    let fixture = fixture_with(
        "\
exec: sleep 1
limit_nofile: 4096
limit_core: unlimited
limit_as: 2G
limit_cpu: 30
nice: -5
umask: 027
env_file: conf/env
env_dir: /etc/app/env
",
        &[],
    );
    let definition = fixture.load().unwrap();
    assert_eq!(
        definition.controls,
        ProcessControls {
            limits: vec![
                (Resource::Nofile, Limit::At(4096)),
                (Resource::Core, Limit::Unlimited),
                (Resource::As, Limit::At(2 << 30)),
                (Resource::Cpu, Limit::At(30)),
            ],
            nice: Some(-5),
            umask: Some(0o27),
            env_file: Some(fixture.service.join("conf/env")),
            env_dir: Some(PathBuf::from("/etc/app/env")),
        }
    );
    assert_eq!(loads("exec: x\n").controls, ProcessControls::default());
    assert_eq!(
        loads("exec: x\numask: \"0022\"\nnice: 19\n").controls.umask,
        Some(0o22)
    );
}

#[test]
fn on_failure_is_read() {
    for (word, policy) in [
        ("continue", crate::failure::OnFailure::Continue),
        ("warn", crate::failure::OnFailure::Warn),
        ("stop", crate::failure::OnFailure::Stop),
    ] {
        let fixture = fixture_with(&format!("exec: a\non_failure: {word}\n"), &[]);
        assert_eq!(fixture.load().unwrap().on_failure, Some(policy));
    }
}

#[test]
fn kill_mode_is_read() {
    use crate::definition::KillMode;
    for (yaml, mode) in [
        ("exec: a\n", KillMode::Group),
        ("exec: a\nkill_mode: group\n", KillMode::Group),
        ("exec: a\nkill_mode: process\n", KillMode::Process),
    ] {
        assert_eq!(fixture_with(yaml, &[]).load().unwrap().kill_mode, mode);
    }
}

#[test]
fn chpsts_controls_refuse_bad_values_at_their_line() {
    fails_at(
        "exec: x\nlimit_nofile: 4k\n",
        2,
        "limit_nofile",
        "`4k` is not a number or `unlimited`",
    );
    fails_at(
        "exec: x\n\nlimit_stack: 8Q\n",
        3,
        "limit_stack",
        "unknown size suffix `Q`",
    );
    fails_at(
        "exec: x\nlimit_cpu: -1\n",
        2,
        "limit_cpu",
        "not a number of seconds",
    );
    fails_at(
        "exec: x\nnice: 20\n",
        2,
        "nice",
        "must be from -20 to 19, not 20",
    );
    fails_at(
        "exec: x\nnice: high\n",
        2,
        "nice",
        "expected a nice value from -20 to 19",
    );
    fails_at("exec: x\numask: 0o22\n", 2, "umask", "not an octal umask");
    fails_at("exec: x\numask: 999\n", 2, "umask", "not an octal umask");
    fails_at("exec: x\nenv_dir: ''\n", 2, "env_dir", "is empty");
    fails_at("exec: x\nenv_file: [a]\n", 2, "env_file", "expected a path");
    fails_at(
        "exec: x\nlimit_nofile: 1\nlimit_nofile: 2\n",
        3,
        "limit_nofile",
        "duplicate key",
    );
    fails_at(
        "exec: x\nlimit_nofle: 1\n",
        2,
        "limit_nofle",
        "did you mean `limit_nofile`?",
    );
}
