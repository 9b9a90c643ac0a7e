//! The runsv of each service: starting one (or adopting the one already there), seeing
//! it die (SIGCHLD) and starting another after its backoff, telling it to exit, and
//! what follows its exit when it was told to (the service forgotten, or started again
//! under a name that another runsv held).

use super::{Id, Runsv, Service, Svdir};
use crate::backoff::{self, Backoff};
use crate::locks;
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use runsv::control::supervisor_running;
use runsv::supervise::{ExitStatus, SuperviseDir};
use std::ffi::OsStr;
use std::time::{Duration, Instant};

/// When a runsv that died by itself starts again.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Respawn {
    Now,
    At(Instant),
}

/// A runsv started at `since` died at `now`: at once after a stable run, else after
/// the backoff's delay.
pub(super) fn respawn(backoff: &mut Backoff, since: Instant, now: Instant) -> Respawn {
    let delay = backoff.after_exit(now.saturating_duration_since(since));
    if delay.is_zero() {
        Respawn::Now
    } else {
        Respawn::At(now + delay)
    }
}

impl Svdir {
    pub(super) fn reap(&mut self) {
        while let Some((pid, status)) = runsv::launch::reap_one() {
            self.child_exited(pid, status);
        }
    }

    pub(super) fn child_exited(&mut self, pid: Pid, status: ExitStatus) {
        let Some(id) = self.children.remove(&pid) else {
            return;
        };
        let stopping = self.stop.is_some();
        let Some(service) = self.services.get_mut(&id) else {
            return;
        };
        let since = match service.runsv {
            Runsv::Child { pid: p, since } if p == pid => since,
            _ => return,
        };
        service.runsv = Runsv::None;
        if stopping {
            if !service.told {
                say!("{}: runsv {status} during the stop", service.label());
            }
            if status == ExitStatus::Exited(runsv::state_dir::EXIT_NO_STATE) {
                self.stop_never_ran(id);
            }
            self.stop_gone(id);
            return;
        }
        if service.told {
            self.runsv_left(id);
            return;
        }
        if status == ExitStatus::Exited(runsv::state_dir::EXIT_NO_STATE) {
            say!(
                "{}: error: runsv {status}: it can create supervise/ nowhere, so nothing can run; \
                 not started again until the entry is replaced",
                service.label()
            );
            service.runsv = Runsv::Failed;
            return;
        }
        let now = self.sys.now();
        match respawn(&mut service.backoff, since, now) {
            Respawn::Now => {
                say!("{}: runsv {status}; starting a new one", service.label());
                self.start_runsv(id);
            }
            Respawn::At(until) => {
                say!(
                    "{}: runsv {status}; starting a new one in {}",
                    service.label(),
                    backoff::seconds(until - now)
                );
                service.runsv = Runsv::Delayed { until };
            }
        }
    }

    /// The runsv of a service told to exit (its entry removed) is gone: forget the
    /// service, or start it again if its entry came back meanwhile.
    pub(super) fn runsv_left(&mut self, id: Id) {
        let Some(service) = self.services.get_mut(&id) else {
            return;
        };
        let name = std::mem::take(&mut service.spawned_as);
        if service.present {
            service.told = false;
            service.backoff = backoff::runsv_backoff();
            self.start_runsv(id);
        } else {
            self.services.remove(&id);
        }
        // A service queued behind this runsv's name may start now.
        let queued: Vec<Id> = self
            .services
            .iter()
            .filter(|(_, s)| matches!(s.runsv, Runsv::Queued) && s.name == name)
            .map(|(id, _)| *id)
            .collect();
        for id in queued {
            self.start_runsv(id);
        }
    }

    /// Whether a runsv told to exit still runs under `name` (other than `id`'s).
    fn name_busy(&self, name: &OsStr, id: Id) -> bool {
        self.services.iter().any(|(other, s)| {
            *other != id
                && s.told
                && s.spawned_as == name
                && matches!(s.runsv, Runsv::Child { .. } | Runsv::Adopted(_))
        })
    }

    /// Starts a runsv for the service, or adopts the one already running there.
    pub(super) fn start_runsv(&mut self, id: Id) {
        let Some(service) = self.services.get(&id) else {
            return;
        };
        if !service.present || service.told || self.stop.is_some() {
            return;
        }
        let name = service.name.clone();
        if self.name_busy(&name, id) {
            if let Some(service) = self.services.get_mut(&id) {
                service.runsv = Runsv::Queued;
            }
            return;
        }
        let path = self.resolution.dir.join(&name);
        // runsv refuses to run twice on a directory (runit's probe of supervise/ok).
        if supervisor_running(&SuperviseDir::of_service(&path)).unwrap_or(false)
            && self.adopt(id, &path)
        {
            return;
        }
        let result = self
            .sys
            .spawn(&name, std::os::fd::AsFd::as_fd(&self.scan_fd));
        let now = self.sys.now();
        let Some(service) = self.services.get_mut(&id) else {
            return;
        };
        match result {
            Ok(pid) => {
                service.runsv = Runsv::Child { pid, since: now };
                service.spawned_as = name;
                self.children.insert(pid, id);
            }
            Err(errno) => {
                let delay = service.backoff.after_exit(Duration::ZERO);
                say!(
                    "{}: unable to start runsv: {}; trying again in {}",
                    service.label(),
                    runsv::errno_text::runit_text(errno as i32),
                    backoff::seconds(delay)
                );
                service.runsv = Runsv::Delayed { until: now + delay };
            }
        }
    }

    /// Tells the runsv of a service to exit: SIGTERM to our child (runsv takes it as
    /// `x`: stop the service, then exit), `x` on `supervise/control` for an adopted one.
    pub(super) fn tell_exit(&mut self, id: Id) {
        let location = self.locate(id);
        let Some(service) = self.services.get_mut(&id) else {
            return;
        };
        service.told = true;
        match &service.runsv {
            Runsv::Child { pid, .. } => {
                let _ = self.sys.kill(*pid, Signal::SIGTERM);
            }
            Runsv::Adopted(adopted) => {
                let sent = location.map(|place| place.send_exit());
                match sent {
                    Some(Ok(())) => {}
                    Some(Err(error)) if error.nobody_reads() => {
                        // Nobody reads the control FIFO: the runsv is gone already.
                        self.adopted_gone(id);
                    }
                    _ => {
                        // Unreachable through its directory: SIGTERM to the process
                        // holding its lock.
                        let holder = adopted.lock.and_then(locks::holder);
                        match holder {
                            Some(pid) => {
                                let _ = self.sys.kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
                            }
                            None => {
                                say!(
                                    "{}: warning: unable to reach its runsv to tell it to exit",
                                    service.label()
                                );
                            }
                        }
                    }
                }
            }
            Runsv::Delayed { .. } | Runsv::Queued | Runsv::None | Runsv::Failed => {
                service.runsv = Runsv::None;
                if self.stop.is_some() {
                    self.stop_gone(id);
                } else if !service.present {
                    self.services.remove(&id);
                }
            }
        }
    }
}

/// The pid of a service's runsv: svdir's child, or the holder of an adopted one's lock.
pub(super) fn runsv_pid(service: &Service) -> Option<Pid> {
    match &service.runsv {
        Runsv::Child { pid, .. } => Some(*pid),
        Runsv::Adopted(adopted) => adopted
            .lock
            .and_then(locks::holder)
            .map(|p| Pid::from_raw(p as i32)),
        _ => None,
    }
}
