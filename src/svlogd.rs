//! What tests/svlogd.rs needs to run both svlogds side by side: feeding input, reading a
//! log directory back, a logger kept running on a pipe.

use crate::{binary, wait_for, Guard};
use nix::sys::signal::{kill, Signal};
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

pub const RUNIT: &str = "/usr/bin/svlogd";
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// Both loggers, runtree's first; runit's only when its package is installed.
pub fn loggers() -> Vec<PathBuf> {
    let mut list = vec![binary("svlogd")];
    if Path::new(RUNIT).exists() {
        list.push(PathBuf::from(RUNIT));
    } else {
        eprintln!("runit's svlogd is not installed: checking runtree's alone");
    }
    list
}

/// Runs a logger on `input` to its end; (exit code, stderr).
pub fn feed(program: &Path, args: &[&str], cwd: &Path, input: &[u8]) -> (i32, String) {
    let stderr = cwd.join("stderr");
    let mut guard = Guard::spawn(
        Command::new(program)
            .args(args)
            .current_dir(cwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&stderr).expect("stderr file")),
    );
    let mut stdin = guard.child.stdin.take().expect("stdin");
    stdin.write_all(input).expect("feed the logger");
    drop(stdin);
    let status = guard
        .wait_exit(TIMEOUT)
        .expect("the logger exits at end of input");
    let text = fs::read_to_string(&stderr).unwrap_or_default();
    (status.code().unwrap_or(-1), text)
}

/// A directory's files as (name with the timestamp masked, mode, contents), rotated
/// files in order of their names (that is, of age).
pub fn files(dir: &Path) -> Vec<(String, u32, Vec<u8>)> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("read log dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let path = dir.join(&name);
            let mode = fs::metadata(&path).expect("stat").permissions().mode() & 0o7777;
            let masked = if name.len() == 27 && name.starts_with('@') {
                format!("@…{}", &name[25..])
            } else {
                name
            };
            (masked, mode, fs::read(&path).expect("read"))
        })
        .collect()
}

/// Runs each logger in a fresh directory holding `log` (with `config`), on the same
/// input; asserts the same exit code, stderr (the directory's name masked) and files.
pub fn same_as_runit(
    args: &[&str],
    config: Option<&str>,
    input: &[u8],
) -> Vec<(String, u32, Vec<u8>)> {
    let mut results = Vec::new();
    for program in loggers() {
        let work = tempfile::tempdir().expect("tempdir");
        let log = work.path().join("log");
        fs::create_dir(&log).expect("mkdir log");
        if let Some(config) = config {
            fs::write(log.join("config"), config).expect("config");
        }
        let mut full_args: Vec<&str> = args.to_vec();
        full_args.push("log");
        let (code, stderr) = feed(&program, &full_args, work.path(), input);
        results.push((program, code, mask_names(&stderr), files(&log)));
    }
    let (first, rest) = results.split_first().expect("runtree's svlogd");
    for other in rest {
        assert_eq!(
            first.1, other.1,
            "exit codes of {:?} and {:?}",
            first.0, other.0
        );
        assert_eq!(
            first.2, other.2,
            "stderr of {:?} and {:?}",
            first.0, other.0
        );
        assert_eq!(first.3, other.3, "files of {:?} and {:?}", first.0, other.0);
    }
    assert_eq!(first.1, 0, "stderr: {}", first.2);
    first.3.clone()
}

/// Text with every rotated file's name (`@` and 24 hex digits) masked as `@…`.
pub fn mask_names(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('@') {
        out.push_str(&rest[..at]);
        let name = rest[at + 1..].get(..24);
        if name.is_some_and(|n| n.bytes().all(|b| b.is_ascii_hexdigit())) {
            out.push_str("@…");
            rest = &rest[at + 25..];
        } else {
            out.push('@');
            rest = &rest[at + 1..];
        }
    }
    out.push_str(rest);
    out
}

pub fn numbered(count: usize, width: usize) -> Vec<u8> {
    let mut text = Vec::new();
    for i in 0..count {
        text.extend_from_slice(format!("line {i:0width$}\n").as_bytes());
    }
    text
}

/// A logger started on a pipe the test keeps writing to, stderr in a file.
pub struct Running {
    pub guard: Guard,
    stdin: Option<std::process::ChildStdin>,
    work: tempfile::TempDir,
}

impl Running {
    pub fn start(program: &Path, args: &[&str], config: Option<&str>) -> Running {
        let work = tempfile::tempdir().expect("tempdir");
        fs::create_dir(work.path().join("log")).expect("mkdir");
        if let Some(config) = config {
            fs::write(work.path().join("log/config"), config).expect("config");
        }
        let mut guard = Guard::spawn(
            Command::new(program)
                .args(args)
                .arg("log")
                .current_dir(work.path())
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(fs::File::create(work.path().join("stderr")).expect("stderr")),
        );
        let stdin = guard.child.stdin.take();
        Running { guard, stdin, work }
    }

    pub fn log(&self) -> PathBuf {
        self.work.path().join("log")
    }

    pub fn write(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin
            .write_all(text.as_bytes())
            .expect("write to the logger");
    }

    pub fn current(&self) -> String {
        fs::read_to_string(self.log().join("current")).unwrap_or_default()
    }

    pub fn wait_current(&self, text: &str) {
        let log = self.log();
        assert!(
            wait_for(&[&log.join("current"), &log], TIMEOUT, || self
                .current()
                .contains(text)),
            "{text:?} never reached current: {:?}",
            self.current()
        );
    }

    pub fn wait_stderr(&self, text: &str, count: usize) {
        let path = self.work.path().join("stderr");
        let seen = || {
            fs::read_to_string(&path)
                .unwrap_or_default()
                .matches(text)
                .count()
                >= count
        };
        assert!(
            wait_for(&[&path], TIMEOUT, seen),
            "{text:?} never on stderr"
        );
    }

    /// Waits until the log directory holds a rotated file (`@….s`).
    pub fn wait_rotated(&self) {
        let log = self.log();
        let rotated = || {
            fs::read_dir(&log).is_ok_and(|mut files| {
                files.any(|f| f.is_ok_and(|f| f.file_name().to_string_lossy().ends_with(".s")))
            })
        };
        assert!(
            wait_for(&[&log], TIMEOUT, rotated),
            "{} never rotated",
            log.display()
        );
    }

    pub fn signal(&self, signal: Signal) {
        kill(self.guard.pid(), signal).expect("signal the logger");
    }

    pub fn finish(mut self) -> (i32, Vec<(String, u32, Vec<u8>)>) {
        drop(self.stdin.take());
        let status = self
            .guard
            .wait_exit(TIMEOUT)
            .expect("exits at end of input");
        (status.code().unwrap_or(-1), files(&self.log()))
    }
}
