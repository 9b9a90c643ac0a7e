//! `sv log [-f] SERVICE...`: the recent output of services, from the tail runsv keeps
//! in `supervise/tail` whatever the output's destination (see runsv::tail); with `-f`,
//! the output as it comes, until sv is interrupted.
//!
//! Following reads the tail by its offsets, so it shows every byte once and in order;
//! if the service writes faster than sv reads, more than the tail holds, sv says how
//! much it missed instead of silently skipping.

use crate::service::Service;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use runsv::supervise::SuperviseDir;
use runsv::tail::{self, Snapshot};
use std::ffi::OsString;
use std::io::Write;
use std::path::Path;

/// Exit codes: 0 printed (possibly nothing: the service wrote nothing yet), 1 a
/// service directory that does not exist or a tail that cannot be read, 100 usage.
pub fn main(arguments: &[OsString], svdir: &OsString) -> i32 {
    let follow = arguments.first().is_some_and(|a| a == "-f");
    let names = &arguments[usize::from(follow)..];
    if names.is_empty() || (follow && names.len() != 1) {
        eprintln!("usage: sv log [-f] service ...  (-f follows one service)");
        return 100;
    }
    let services: Vec<Service> = names
        .iter()
        .map(|name| Service::resolve(name, svdir))
        .collect();
    // A name that is no service directory is an error, as for every sv command (with
    // runit's words), not an empty log.
    let mut code = 0;
    let services: Vec<Service> = services
        .into_iter()
        .filter(|service| match std::fs::metadata(&service.path) {
            Ok(metadata) if metadata.is_dir() => true,
            Ok(_) => {
                eprintln!(
                    "fail: {}: unable to change to service directory: not a directory",
                    service.name
                );
                code = 1;
                false
            }
            Err(e) => {
                eprintln!(
                    "fail: {}: unable to change to service directory: {}",
                    service.name,
                    crate::errno::error_str(crate::errno::of_io(&e))
                );
                code = 1;
                false
            }
        })
        .collect();
    if services.is_empty() {
        return code;
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if follow {
        return self::follow(&services[0], &mut out);
    }
    for service in &services {
        if services.len() > 1 {
            let _ = writeln!(out, "==> {} <==", service.name);
        }
        match read_all(&service.supervise().tail()) {
            Ok(bytes) => {
                let _ = out.write_all(&bytes);
                if bytes.last().is_some_and(|&b| b != b'\n') {
                    let _ = out.write_all(b"\n");
                }
            }
            Err(message) => {
                eprintln!("fail: {}: {message}", service.name);
                code = 1;
            }
        }
    }
    let _ = out.flush();
    code
}

/// What the tail holds; nothing when there is no tail (no output yet, or a runit
/// service without log/ whose output goes to the console unseen by runsv).
fn read_all(path: &Path) -> Result<Vec<u8>, String> {
    let file = match tail::open(path) {
        Ok(Some(file)) => file,
        Ok(None) => return Ok(Vec::new()),
        Err(e) => return Err(format!("unable to read supervise/tail: {e}")),
    };
    match Snapshot::read(&file) {
        Ok(Some(snapshot)) => Ok(snapshot.bytes),
        Ok(None) => Err("supervise/tail is not a runtree tail".into()),
        Err(e) => Err(format!("unable to read supervise/tail: {e}")),
    }
}

/// Prints what the tail holds, then what is added to it, for ever. An event on the
/// supervise/ directory (the tail written, or replaced) wakes it; nothing polls.
fn follow(service: &Service, out: &mut impl Write) -> i32 {
    let supervise: SuperviseDir = service.supervise();
    let path = supervise.tail();
    let inotify = match Inotify::init(InitFlags::IN_CLOEXEC) {
        Ok(inotify) => inotify,
        Err(e) => {
            eprintln!("fatal: {}: unable to watch: {e}", service.name);
            return 1;
        }
    };
    let watched = AddWatchFlags::IN_MODIFY
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_CREATE
        | AddWatchFlags::IN_DELETE_SELF;
    // The directory may not exist yet (runsv not started): watch its parent until it
    // does.
    let mut watching_supervise = inotify.add_watch(&supervise.path, watched).is_ok();
    if !watching_supervise {
        if let Err(e) = inotify.add_watch(
            &service.path,
            AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO,
        ) {
            eprintln!(
                "fatal: {}: unable to watch {}: {e}",
                service.name,
                service.path.display()
            );
            return 1;
        }
    }
    let mut position: Option<u64> = None;
    loop {
        if !watching_supervise {
            watching_supervise = inotify.add_watch(&supervise.path, watched).is_ok();
        }
        let read = tail::open(&path).and_then(|file| match file {
            Some(file) => Snapshot::read_from(&file, position.unwrap_or(0)),
            None => Ok(None),
        });
        match read {
            Ok(Some(snapshot)) => {
                if let Some(at) = position {
                    if snapshot.end < at {
                        // A new tail (supervise/ made again): its offsets start over,
                        // and all of it is new.
                        position = None;
                        continue;
                    }
                    if snapshot.begin > at {
                        eprintln!(
                            "warning: {}: {} bytes of output were overwritten before they could be read",
                            service.name,
                            snapshot.begin - at
                        );
                    }
                }
                if out.write_all(&snapshot.bytes).is_err() || out.flush().is_err() {
                    return 0; // the reader went away
                }
                position = Some(snapshot.end);
            }
            // No tail yet, or not one (being replaced): wait for the next change.
            Ok(None) => {}
            Err(e) => {
                eprintln!(
                    "fatal: {}: unable to read supervise/tail: {e}",
                    service.name
                );
                return 1;
            }
        }
        // Wait for the next change; events are only a wake-up, the file says what
        // changed.
        if inotify.read_events().is_err() {
            eprintln!("fatal: {}: unable to watch", service.name);
            return 1;
        }
    }
}
