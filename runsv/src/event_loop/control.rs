//! What tells runsv to act, besides its timers: the control FIFOs (bytes decoded here,
//! once, into `Control`s), runit's `control/<c>` scripts, runsv's own signals (SIGCHLD:
//! reap; SIGTERM: exit), the readiness pipe, the dependencies' states, and `sv
//! reconfigure`, which re-reads the definition here and hands the machine the result.

use super::{Supervisor, Which};
use crate::dependency_watch::{DependencyWatch, FALLBACK_INTERVAL};
use crate::machine::Event;
use crate::service::Reconfigured;
use nix::errno::Errno;
use nix::sys::signal::Signal;
use runsv::control::Control;
use runsv::dependencies::Dependencies;
use runsv::launch::{Launch, Stdio};
use runsv::supervise::ExitStatus;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a `control/<c>` script may run before it is killed: runit waits for it
/// forever, blind to everything else.
const CONTROL_SCRIPT_TIMEOUT: Duration = Duration::from_secs(5);

/// The control bytes read in one turn at most: a FIFO's capacity.
const CONTROL_SHARE: usize = 64 * 1024;

impl Supervisor {
    pub(super) fn handle_control(&mut self, which: Which) {
        let Some(service) = self.service(which) else {
            return;
        };
        // All that waits, bounded: a byte written behind a flood (`x` behind a
        // thousand `R`) is seen in this turn, not a thousand turns later.
        let mut bytes = Vec::new();
        while bytes.len() < CONTROL_SHARE {
            let read = service.read_control();
            if read.is_empty() {
                break;
            }
            bytes.extend(read);
        }
        self.controls(which, &bytes);
    }

    /// Bytes read from a service's control FIFO. A byte that is no command is ignored,
    /// as by runit.
    pub(super) fn controls(&mut self, which: Which, bytes: &[u8]) {
        if self.service(which).is_none_or(|s| s.exited) {
            // Draining after `x`: nothing can bring it back.
            return;
        }
        // Reconfiguring re-reads and parses the definition, the one costly control:
        // however many `R` came, it is done once, after the other bytes.
        let mut reconfigure = false;
        for control in bytes.iter().filter_map(|&byte| Control::from_byte(byte)) {
            if control == Control::Reconfigure && which == Which::Main {
                reconfigure = true;
            } else {
                self.event(which, Event::Control(control));
            }
        }
        if reconfigure && !self.main.exited {
            self.reconfigure();
        }
    }

    /// Runs `control/<c>` if it is executable; `Some(true)` if it exited 0. It runs to
    /// completion (bounded by a timeout), like runit, with stdout to the log.
    pub(super) fn control_script(&mut self, c: Control) -> Option<bool> {
        use std::os::unix::fs::PermissionsExt;
        let relative = format!("control/{}", c.letter());
        // Relative to runsv's working directory, the service directory.
        let path = PathBuf::from(&relative);
        let mode = std::fs::metadata(&path).ok()?.permissions().mode();
        if mode & 0o100 == 0 {
            return None;
        }
        let (stdin, stdout, _) = self.stdio(Which::Main);
        let launch = Launch::new(
            &[format!("./{relative}")],
            self.main.environment(),
            Path::new("."),
        )
        .ok()?
        .stdio(stdin, stdout, Stdio::Inherit);
        let pid = self.sys.spawn(&launch).ok()?;
        let status = self.sys.wait_child(pid, CONTROL_SCRIPT_TIMEOUT);
        Some(status == Some(ExitStatus::Exited(0)))
    }

    pub(super) fn handle_signals(&mut self) {
        while let Ok(Some(info)) = self.signals.read_signal() {
            match Signal::try_from(info.ssi_signo as i32) {
                Ok(Signal::SIGCHLD) => self.reap(),
                Ok(Signal::SIGTERM) if !self.main.exited => {
                    self.event(Which::Main, Event::Terminate)
                }
                // runit dies of these, orphaning the service; runsv ignores them.
                _ => {}
            }
        }
    }

    /// Every child that has ended goes to the machine that owns it; a keeper that
    /// died is replaced.
    pub(super) fn reap(&mut self) {
        while let Some((pid, status)) = self.sys.reap() {
            let pid = pid.as_raw() as u32;
            if self.keeper.as_ref().is_some_and(|k| k.pid() == pid) {
                self.keeper = None;
                self.replace_keeper();
                continue;
            }
            let which = if self.main.machine.owns(pid) {
                Which::Main
            } else if self.log.as_ref().is_some_and(|l| l.machine.owns(pid)) {
                Which::Log
            } else {
                continue;
            };
            self.flush_relay(which, pid);
            self.exited(which, pid, status);
        }
    }

    /// `sv reconfigure`: the definition is read again here; what a change means for
    /// the service is the machine's (`Event::Reconfigure`). An unchanged or refused one
    /// may still change the reason shown.
    fn reconfigure(&mut self) {
        let before_after = self.main.definition.as_ref().map(|d| d.after.clone());
        match self.main.reconfigure() {
            Reconfigured::Unchanged | Reconfigured::Refused => self.main.write_files(),
            Reconfigured::Changed(settings) => {
                let after = self.main.definition.as_ref().map(|d| d.after.clone());
                let dependencies = (after != before_after).then(|| {
                    self.dependencies =
                        after.and_then(|after| DependencyWatch::new(&self.main.directory, &after));
                    self.dependencies_poll = None;
                    self.read_dependencies(false)
                        .unwrap_or(Dependencies::Satisfied)
                });
                self.event(
                    Which::Main,
                    Event::Reconfigure {
                        settings,
                        dependencies,
                    },
                );
            }
        }
    }

    /// Reads the dependencies again (after an inotify event, or on the fallback timer)
    /// and tells the main machine.
    pub(super) fn dependencies_changed(&mut self, event: bool) {
        if let Some(dependencies) = self.read_dependencies(event) {
            self.event(Which::Main, Event::Dependencies(dependencies));
        }
    }

    /// How the dependencies stand, if the service has any.
    fn read_dependencies(&mut self, event: bool) -> Option<Dependencies> {
        let watch = self.dependencies.as_mut()?;
        let dependencies = if event {
            watch.changed()
        } else {
            watch.evaluate()
        };
        self.dependencies_poll = watch
            .polling()
            .then(|| self.sys.now().monotonic + FALLBACK_INTERVAL);
        Some(dependencies)
    }

    pub(super) fn handle_notification(&mut self) {
        let Some(fd) = &self.main.notification else {
            return;
        };
        let mut buffer = [0u8; 512];
        match nix::unistd::read(fd.as_raw_fd(), &mut buffer) {
            Ok(0) => self.main.notification = None,
            Ok(n) if buffer[..n].contains(&b'\n') => {
                self.main.notification = None;
                self.event(Which::Main, Event::Ready);
            }
            Ok(_) | Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
            Err(_) => self.main.notification = None,
        }
    }
}
