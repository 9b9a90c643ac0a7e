//! `sv status --json [services…]`: a JSON array with one object per service, written by
//! hand (a dozen fields do not need a serializer). stdout stays pure JSON: a service
//! that cannot be read is an object `{"name","path","error"}`, and counts in the exit
//! code as its `fail:`/`warning:` line would.
//!
//! Fields (null where the supervisor does not say, e.g. runit's runsv without a state
//! file): name, path, state, want, pid (null when no process), since (unix seconds with
//! fraction), normally ("up"/"down"), paused, got_term, last_exit ("exit N"/"signal N"),
//! restarts, reason, oneshot, tracking ("cgroup" or "process group"), cgroup (its path),
//! processes and memory (bytes; null without a cgroup or the controller), log (the same
//! object for `log/`, or null).

use crate::output::{Level, Message, Out};
use crate::pending::Pending;
use crate::service::{self, Probe, Service, Snapshot};
use runsv::cgroup::{Usage, UsageReads};
use runsv::supervise::RunState;
use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};

pub fn print<W: Write>(out: &mut Out<W>, services: &[Service]) {
    // The groups' usage is read on a second thread while the next services are read
    // (crate::pending): the objects are written once it has all been read.
    let mut reads = UsageReads::new(services.len());
    let mut objects = Vec::with_capacity(services.len());
    for service in services {
        objects.push(object(out, service, &mut reads));
    }
    let usages = reads.finish();
    let objects: Vec<String> = objects.iter().map(|o| o.render(&usages)).collect();
    if objects.is_empty() {
        out.line("[]");
    } else {
        out.line(&format!("[\n{}\n]", objects.join(",\n")));
    }
}

fn object<W: Write>(out: &mut Out<W>, service: &Service, reads: &mut UsageReads) -> Pending {
    let path = absolute(&service.path);
    if let Err(errno) = service::enter(&service.path) {
        let message = Message::fail_errno("unable to change to service directory", errno);
        return error_object(out, &service.name, &path, &message);
    }
    let snapshot = match service::probe(&service.path) {
        Probe::Live(snapshot) => snapshot,
        Probe::NotRunning => {
            return error_object(out, &service.name, &path, &Message::not_running(b's'))
        }
        Probe::Unreadable(message) => return error_object(out, &service.name, &path, &message),
    };
    let log_dir = service.log();
    let log = match service::enter(&log_dir) {
        Err(nix::libc::ENOENT) => Pending::text("null".to_string()),
        Err(errno) => {
            let message = Message::new(Level::Warning, "unable to change directory", Some(errno));
            error_object(out, "log", &absolute(&log_dir), &message)
        }
        Ok(()) => match service::probe(&log_dir) {
            Probe::Live(log) => fields("log", &absolute(&log_dir), &log_dir, &log, None, reads),
            Probe::NotRunning => {
                error_object(out, "log", &absolute(&log_dir), &Message::not_running(b's'))
            }
            Probe::Unreadable(message) => error_object(out, "log", &absolute(&log_dir), &message),
        },
    };
    fields(
        &service.name,
        &path,
        &service.path,
        &snapshot,
        Some(log),
        reads,
    )
}

fn error_object<W: Write>(out: &mut Out<W>, name: &str, path: &Path, message: &Message) -> Pending {
    out.count(message);
    Pending::text(format!(
        "{{\"name\":{},\"path\":{},\"error\":{}}}",
        string(name),
        string(&path.to_string_lossy()),
        string(&message.detail())
    ))
}

/// The object of a readable service; `log` is the log's object (or `null`), absent for
/// the log itself.
fn fields(
    name: &str,
    path: &Path,
    dir: &Path,
    snapshot: &Snapshot,
    log: Option<Pending>,
    reads: &mut UsageReads,
) -> Pending {
    let status = &snapshot.status;
    let full = snapshot.state.as_ref();
    let state = match full {
        Some(full) => full.state.name(),
        None => match status.run_state {
            RunState::Run => "running",
            RunState::Finish => "finishing",
            RunState::Down => "down",
        },
    };
    let want = match full {
        Some(full) => full.want.name(),
        None if status.want == b'u' => "up",
        None => "down",
    };
    let pid = full.map_or(status.pid, |f| f.pid);
    let since = full.map_or(status.since, |f| f.since);
    let normally = match service::normally_up(dir) {
        Ok(true) => string("up"),
        Ok(false) => string("down"),
        Err(_) => "null".to_string(),
    };
    let mut text = String::with_capacity(256);
    let _ = write!(
        text,
        "{{\"name\":{},\"path\":{},\"state\":{},\"want\":{},\"pid\":{},\"since\":{}.{:09},\
         \"normally\":{},\"paused\":{},\"got_term\":{},\"last_exit\":{},\"restarts\":{},\
         \"reason\":{},\"oneshot\":{}",
        string(name),
        string(&path.to_string_lossy()),
        string(state),
        string(want),
        if pid == 0 {
            "null".to_string()
        } else {
            pid.to_string()
        },
        since.seconds,
        since.nanoseconds,
        normally,
        status.paused,
        status.term_sent,
        full.and_then(|f| f.last_exit)
            .map_or("null".to_string(), |e| string(&e.to_field())),
        full.map_or("null".to_string(), |f| f.restarts.to_string()),
        full.map_or("null".to_string(), |f| string(&f.reason)),
        full.map_or("null".to_string(), |f| f.oneshot.to_string()),
    );
    let _ = write!(
        text,
        ",\"tracking\":{},\"cgroup\":{},",
        string(runsv::cgroup::mode_name(snapshot.cgroup.is_some())),
        snapshot
            .cgroup
            .as_ref()
            .map_or("null".to_string(), |g| string(&g.to_string_lossy())),
    );
    let mut object = Pending::text(text);
    match &snapshot.cgroup {
        Some(group) => object.push_usage(reads, group, usage_fields),
        None => object.push_str(&usage_fields(Usage::default())),
    }
    if let Some(log) = log {
        object.push_str(",\"log\":");
        object.append(log);
    }
    object.push_str("}");
    object
}

/// `"processes":3,"memory":12345`: null where not known.
fn usage_fields(usage: Usage) -> String {
    let number = |n: Option<u64>| n.map_or("null".to_string(), |n| n.to_string());
    format!(
        "\"processes\":{},\"memory\":{}",
        number(usage.processes),
        number(usage.memory)
    )
}

/// A path as seen from `/`, without resolving symlinks (the path the user named).
fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_path_buf();
    }
    match std::env::current_dir() {
        Ok(cwd) => cwd.join(path),
        Err(_) => path.to_path_buf(),
    }
}

/// A JSON string literal: `"` and `\` escaped, control characters as `\n`-style or
/// `\u00XX` escapes, everything else (UTF-8 included) as is.
pub fn string(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            '\r' => quoted.push_str("\\r"),
            '\t' => quoted.push_str("\\t"),
            '\u{8}' => quoted.push_str("\\b"),
            '\u{c}' => quoted.push_str("\\f"),
            // JSON is UTF-8: a byte of a name that is not becomes U+FFFD.
            c if crate::raw_name::byte(c).is_some() => quoted.push('\u{fffd}'),
            c if (c as u32) < 0x20 => {
                let _ = write!(quoted, "\\u{:04x}", c as u32);
            }
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(string("web"), "\"web\"");
        assert_eq!(string("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(string("l1\nl2\tx\r"), "\"l1\\nl2\\tx\\r\"");
        assert_eq!(string("\u{1}\u{1f}\u{8}\u{c}"), "\"\\u0001\\u001f\\b\\f\"");
        assert_eq!(string("dépendance ✓"), "\"dépendance ✓\"");
        assert_eq!(string("\u{7f}/"), "\"\u{7f}/\"");
    }
}
