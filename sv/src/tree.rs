//! The commands runit's sv does not have, which act on the tree rather than on one
//! supervisor's state: `sv sync` (ask svdir to rescan SVDIR now, and return once the
//! scan is applied) and `sv reconfigure NAME...` (ask runsv to read the definition
//! again).
//!
//! The sync protocol (docs/svdir.md): svdir holds `SVDIR/.svdir/control`, a FIFO; each
//! byte `s` read is a request; after reading them svdir rescans, applies the result, and
//! replaces `SVDIR/.svdir/synced` with the total number of requests it has served. sv
//! reads that number, writes `s`, and waits (see watch.rs) until the number has grown,
//! or until svdir closes the FIFO (it exited without answering).

use crate::output::{Message, Out};
use crate::service::{self, Service};
use crate::watch::Watcher;
use runsv::control::{send_control, Control};
use runsv::definition::ServiceDefinition;
use std::ffi::OsString;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

/// `sv sync`: 0 once the scan is applied, 1 when no svdir runs on SVDIR or it did not
/// answer within the wait time.
pub fn sync<W: Write>(svdir: &OsString, verbose: bool, wait: Duration, out: &mut Out<W>) -> i32 {
    let directory = Path::new(svdir);
    let name = directory.display().to_string();
    let control_dir = directory.join(runsv::control::SYNC_DIRECTORY);
    // Watch before asking, so the answer cannot be missed.
    let mut watcher = Watcher::new();
    let watched = watcher.watch_directory(0, &control_dir, "control");
    let before = runsv::control::synced_count(directory);
    let written = runsv::control::request_sync(directory);
    if let Err(error) = written {
        let message = if error.nobody_reads() {
            Message::fail("no svdir runs on this directory")
        } else {
            Message::fail_errno(
                "unable to write .svdir/control",
                crate::errno::of_io(&error.into()),
            )
        };
        out.message(&name, &message);
        return 1;
    }
    let deadline = Instant::now() + wait;
    loop {
        if runsv::control::synced_count(directory) > before {
            if verbose {
                out.message(&name, &Message::ok("synced"));
            }
            return 0;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            out.line(&format!("timeout: {name}: svdir did not answer"));
            out.fail();
            return 1;
        }
        // Unwatched, look again every 10 ms.
        let step = if watched {
            left
        } else {
            left.min(Duration::from_millis(10))
        };
        if !watcher.wait(Some(step)).lost.is_empty()
            && runsv::control::synced_count(directory) <= before
        {
            out.message(&name, &Message::fail("svdir exited before answering"));
            return 1;
        }
    }
}

/// `sv reconfigure NAME...`: checks each definition here, so an invalid one is reported
/// at once, then asks runsv to read it (runsv keeps the old one if it is invalid, and
/// says so in `sv status`). A changed definition restarts the service.
pub fn reconfigure<W: Write>(services: &[OsString], svdir: &OsString, out: &mut Out<W>) {
    for name in services {
        let service = Service::resolve(name, svdir);
        if let Err(errno) = service::enter(&service.path) {
            out.message(
                &service.name,
                &Message::fail_errno("unable to change to service directory", errno),
            );
            continue;
        }
        let refused = ServiceDefinition::load(&service.path).is_err_and(|error| {
            out.message(
                &service.name,
                &Message::fail(format!("new definition refused, old one kept: {error}")),
            );
            true
        });
        // runsv is still told, so that `sv status` shows the refusal too.
        let unsent = match send_control(&service.supervise(), &[Control::Reconfigure]) {
            Ok(()) => None,
            Err(error) if error.raw_os_error() == Some(nix::libc::ENXIO) => {
                Some(Message::fail("runsv not running"))
            }
            Err(error) => Some(Message::fail_errno(
                "unable to write supervise/control",
                crate::errno::of_io(&error.into()),
            )),
        };
        match unsent {
            // The exit code counts services: a refused one is counted already.
            Some(message) if refused => out.line(&message.render(&service.name)),
            Some(message) => out.message(&service.name, &message),
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn an_svdir_that_exits_before_answering_fails_the_sync_at_once() {
        let root = tempfile::tempdir().unwrap();
        // A stand-in svdir: reads the request, then goes away without answering.
        let control_dir = root.path().join(runsv::control::SYNC_DIRECTORY);
        std::fs::create_dir(&control_dir).unwrap();
        let mut reader = runsv::control::open_fifo(&control_dir.join("control"), false).unwrap();
        let stand_in = std::thread::spawn(move || {
            let mut fds = [nix::poll::PollFd::new(
                std::os::fd::AsFd::as_fd(&reader),
                nix::poll::PollFlags::POLLIN,
            )];
            nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(10_000u16)).unwrap();
            let mut byte = [0u8; 1];
            assert_eq!(reader.read(&mut byte).unwrap(), 1);
            assert_eq!(&byte, b"s");
        });
        let mut out = Out::new(Vec::new());
        let started = Instant::now();
        let code = sync(
            &root.path().as_os_str().to_owned(),
            false,
            Duration::from_secs(30),
            &mut out,
        );
        stand_in.join().unwrap();
        assert_eq!(code, 1);
        let text = String::from_utf8(out.into_inner()).unwrap();
        assert_eq!(
            text,
            format!(
                "fail: {}: svdir exited before answering\n",
                root.path().display()
            )
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "not the 30 s wait"
        );
    }
}
