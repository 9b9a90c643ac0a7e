//! The runlevel chain and the sync control: when the chain of links leading to the scan
//! directory changes, svdir follows it to the new directory (its watches, its
//! `.svdir` sync control) and rescans; `sv sync` requests are answered once the rescan
//! they asked for is applied.

use super::{open_directory, report_once, Svdir};
use crate::chain;
use crate::sync::{SetupError, SyncControl};

impl Svdir {
    pub(super) fn check_chain(&mut self) {
        self.need_resolve = false;
        let resolution = match chain::resolve(&self.dir) {
            Ok(resolution) => resolution,
            Err(error) => {
                let (dir, scanned) = (&self.dir, &self.resolution.dir);
                report_once(
                    &mut self.resolve_problem,
                    crate::describe(&error),
                    |problem| {
                        say!(
                            "warning: unable to resolve {}: {problem}; still scanning {}",
                            dir.display(),
                            scanned.display()
                        )
                    },
                );
                return;
            }
        };
        self.resolve_problem = None;
        if resolution.id == self.resolution.id {
            // Same directory; a link or a directory of the chain may have been
            // replaced, so the watches are brought up to date all the same.
            self.resolution = resolution;
            self.watch.follow(&self.resolution);
            return;
        }
        if self.stop.is_some() {
            // The set of services is frozen during the stop.
            return;
        }
        let scan_fd = match open_directory(&resolution.dir) {
            Ok(fd) => fd,
            Err(error) => {
                say!(
                    "warning: unable to open {}: {}; still scanning {}",
                    resolution.dir.display(),
                    crate::describe(&error),
                    self.resolution.dir.display()
                );
                return;
            }
        };
        say!(
            "runlevel: {} now leads to {} (was {})",
            self.dir.display(),
            resolution.dir.display(),
            self.resolution.dir.display()
        );
        self.scan_fd = scan_fd;
        self.resolution = resolution;
        self.watch.follow(&self.resolution);
        // The old directory's lock is released once its pending requests are answered.
        if let Some(mut old) = self.sync.take() {
            self.sync_requests += old.read_requests();
            self.retired_sync = Some(old);
        }
        match SyncControl::open(&self.resolution.dir) {
            Ok(control) => {
                self.sync = Some(control);
                self.sync_problem = None;
            }
            Err(SetupError::Busy) => say!(
                "warning: {} is also scanned by another svdir; no sync control",
                self.resolution.dir.display()
            ),
            Err(SetupError::Unavailable(why)) => report_once(&mut self.sync_problem, why, |why| {
                say!("warning: no sync control (sv sync will not work): {why}")
            }),
        }
        self.scan_problem = None;
        self.skipped.clear();
        self.need_scan = true;
    }

    pub(super) fn answer_sync(&mut self) {
        if self.sync_requests == 0 {
            self.retired_sync = None;
            return;
        }
        let requests = std::mem::take(&mut self.sync_requests);
        let control = match self.retired_sync.as_mut() {
            Some(old) => Some(old),
            None => self.sync.as_mut(),
        };
        if let Some(control) = control {
            if let Err(error) = control.acknowledge(requests) {
                say!(
                    "warning: unable to write {}/synced: {}",
                    control.dir().display(),
                    crate::describe(&error)
                );
            }
        }
        self.retired_sync = None;
    }
}
