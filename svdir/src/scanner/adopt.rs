//! Adoption: a runsv found running on a service directory (svdir was restarted) is kept,
//! not started twice. It is not svdir's child, so its exit is seen through its
//! `supervise/lock` (an inotify watch, probes to confirm), and it is reached through a
//! directory fd kept since the adoption, so that it can still be told to exit once its
//! entry is gone.

use super::{identity, open_directory, Adopted, Id, Runsv, Service, Svdir};
use crate::locks;
use crate::place::Place;
use crate::spawn;
use runsv::control::supervisor_running;
use runsv::supervise::SuperviseDir;
use std::path::Path;
use std::time::Duration;

/// After a close of an adopted runsv's `supervise/lock` while `ok` still answers, the
/// probe is repeated after these delays: the kernel closes a dead process's files one
/// by one, so the lock can close a moment before `ok` loses its reader.
const RECHECK_DELAYS: [Duration; 4] = [
    Duration::from_millis(5),
    Duration::from_millis(20),
    Duration::from_millis(100),
    Duration::from_millis(500),
];
/// An adopted runsv whose lock cannot be watched is probed this often.
const UNWATCHED_PROBE: Duration = Duration::from_secs(5);
/// File descriptors kept free of adopted runsv's directory fds.
const FD_RESERVE: u64 = 64;

impl Svdir {
    /// Adopts the runsv running on `path`; false if it turned out to be gone.
    pub(super) fn adopt(&mut self, id: Id, path: &Path) -> bool {
        let supervise = SuperviseDir::of_service(path);
        let lock = supervise.lock();
        let watch = self.watch.watch_lock(&lock);
        // Probed again with the watch in place, so that an exit is never missed.
        if !supervisor_running(&supervise).unwrap_or(false) {
            if let Some(wd) = watch {
                self.watch.discard(wd);
            }
            return false;
        }
        // A directory fd per adopted runsv, within a budget that leaves room for
        // everything else svdir opens (beyond it, paths and /proc/locks are used).
        let held = self
            .services
            .values()
            .filter(|s| matches!(s.runsv, Runsv::Adopted(Adopted { dirfd: Some(_), .. })))
            .count() as u64;
        let dirfd = if held + FD_RESERVE < spawn::fd_limit() {
            open_directory(path).ok()
        } else {
            None
        };
        let adopted = Adopted {
            watch,
            lock: identity(&lock),
            dirfd,
            recheck: if watch.is_none() {
                Some((self.sys.now() + UNWATCHED_PROBE, RECHECK_DELAYS.len()))
            } else {
                None
            },
        };
        if let Some(wd) = watch {
            self.watch.keep(wd, id);
        }
        if let Some(service) = self.services.get_mut(&id) {
            if watch.is_none() {
                say!(
                    "{}: warning: unable to watch supervise/lock of the runsv adopted; probing it every {}s",
                    service.label(),
                    UNWATCHED_PROBE.as_secs()
                );
            }
            service.runsv = Runsv::Adopted(adopted);
            service.spawned_as = service.name.clone();
        }
        true
    }

    /// Where the service directory can be reached now: through the adopted runsv's
    /// directory fd, the entry, or the places it was reached from before (checked by
    /// identity).
    pub(super) fn locate(&self, id: Id) -> Option<Place> {
        let service = self.services.get(&id)?;
        if let Runsv::Adopted(Adopted {
            dirfd: Some(fd), ..
        }) = &service.runsv
        {
            if let Ok(fd) = fd.try_clone() {
                return Some(Place::Dir(fd));
            }
        }
        if service.present {
            return Some(Place::Path(self.resolution.dir.join(&service.name)));
        }
        [Some(&service.home), service.target.as_ref()]
            .into_iter()
            .flatten()
            .find(|path| identity(path) == Some(id))
            .cloned()
            .map(Place::Path)
    }

    /// Whether the adopted runsv of `id` still runs; if not, what follows (a new
    /// runsv, or the end of the service). `count`: probes already made since the
    /// last event.
    pub(super) fn check_adopted(&mut self, id: Id, count: usize) {
        let alive = self.adopted_alive(id);
        let now = self.sys.now();
        let Some(Service {
            runsv: Runsv::Adopted(adopted),
            ..
        }) = self.services.get_mut(&id)
        else {
            return;
        };
        if alive {
            adopted.recheck = match RECHECK_DELAYS.get(count) {
                Some(delay) => Some((now + *delay, count + 1)),
                None if adopted.watch.is_none() => Some((now + UNWATCHED_PROBE, count)),
                None => None,
            };
            return;
        }
        self.adopted_gone(id);
    }

    fn adopted_alive(&self, id: Id) -> bool {
        let Some(service) = self.services.get(&id) else {
            return false;
        };
        let Runsv::Adopted(adopted) = &service.runsv else {
            return false;
        };
        match self.locate(id) {
            // Cannot tell: assume it runs rather than start a second one.
            Some(place) => place.runsv_running().unwrap_or(true),
            None => adopted.lock.and_then(locks::holder).is_some(),
        }
    }

    pub(super) fn adopted_gone(&mut self, id: Id) {
        let Some(service) = self.services.get_mut(&id) else {
            return;
        };
        let old = std::mem::replace(&mut service.runsv, Runsv::None);
        if let Runsv::Adopted(Adopted {
            watch: Some(wd), ..
        }) = old
        {
            self.watch.drop_lock(wd, id);
        }
        if self.stop.is_some() {
            self.stop_gone(id);
            return;
        }
        if service.told {
            self.runsv_left(id);
            return;
        }
        say!("{}: its runsv is gone; starting a new one", service.label());
        self.start_runsv(id);
    }
}
