//! svdir's inotify instance and what each of its watches is for: the scan directory and
//! the directories holding the links of the runlevel chain (entries added or removed, a
//! link replaced), and the `supervise/lock` of every adopted runsv (closed for writing
//! when that runsv exits, as it holds the lock open all its life). Events are turned
//! into what they mean for svdir, so the rest never sees a watch descriptor.

use super::Id;
use crate::chain::Resolution;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};
use std::collections::HashMap;
use std::ffi::OsString;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

/// Watched on the scan directory and on every directory holding a link of its chain.
fn directory_mask() -> AddWatchFlags {
    AddWatchFlags::IN_CREATE
        | AddWatchFlags::IN_DELETE
        | AddWatchFlags::IN_MOVED_FROM
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_DELETE_SELF
        | AddWatchFlags::IN_MOVE_SELF
        | AddWatchFlags::IN_DONT_FOLLOW
        | AddWatchFlags::IN_ONLYDIR
}

/// What a directory watch is for.
struct Role {
    /// It is the scan directory.
    scan: bool,
    /// The names of the chain's links in it.
    links: Vec<OsString>,
}

/// What the events read mean.
#[derive(Default)]
pub struct News {
    /// An entry of the scan directory changed.
    pub rescan: bool,
    /// The scan directory itself, or a link of the chain, changed.
    pub resolve: bool,
    /// Events were lost: every adopted runsv is to be probed.
    pub overflow: bool,
    /// Adopted runsvs whose lock was closed: to be probed.
    pub probe: Vec<Id>,
    /// Adopted runsvs whose lock watch is gone (the file was deleted): probed from now
    /// on, on a timer.
    pub unwatched: Vec<Id>,
}

pub struct Watch {
    inotify: Inotify,
    /// Directory watches: the scan directory and the parents of the chain's links.
    directories: HashMap<PathBuf, WatchDescriptor>,
    roles: HashMap<WatchDescriptor, Role>,
    /// Watches on adopted runsvs' `supervise/lock`, and the services behind each.
    locks: HashMap<WatchDescriptor, Vec<Id>>,
}

impl Watch {
    pub fn new() -> nix::Result<Watch> {
        Ok(Watch {
            inotify: Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)?,
            directories: HashMap::new(),
            roles: HashMap::new(),
            locks: HashMap::new(),
        })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.inotify.as_fd()
    }

    /// Every event available.
    pub fn read(&mut self) -> News {
        let mut news = News::default();
        loop {
            let events = match self.inotify.read_events() {
                Ok(events) if !events.is_empty() => events,
                _ => return news,
            };
            for event in events {
                if event.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
                    news.rescan = true;
                    news.resolve = true;
                    news.overflow = true;
                    continue;
                }
                if let Some(role) = self.roles.get(&event.wd) {
                    let itself = event.mask.intersects(
                        AddWatchFlags::IN_DELETE_SELF
                            | AddWatchFlags::IN_MOVE_SELF
                            | AddWatchFlags::IN_IGNORED,
                    );
                    // Other names in a link's directory are none of svdir's business.
                    news.rescan |= role.scan;
                    let link_changed = event
                        .name
                        .as_ref()
                        .is_some_and(|name| role.links.contains(name));
                    news.resolve |= itself || link_changed;
                    if event.mask.contains(AddWatchFlags::IN_IGNORED) {
                        self.roles.remove(&event.wd);
                        self.directories.retain(|_, wd| *wd != event.wd);
                    }
                    continue;
                }
                let Some(ids) = self.locks.get(&event.wd).cloned() else {
                    continue;
                };
                if event.mask.contains(AddWatchFlags::IN_IGNORED) {
                    self.locks.remove(&event.wd);
                    news.unwatched.extend(&ids);
                }
                news.probe.extend(ids);
            }
        }
    }

    /// Watches the scan directory and the directories holding the chain's links; drops
    /// the watches no longer needed.
    pub fn follow(&mut self, resolution: &Resolution) {
        let mut wanted: Vec<(PathBuf, Role)> = vec![(
            resolution.dir.clone(),
            Role {
                scan: true,
                links: Vec::new(),
            },
        )];
        for (parent, name) in &resolution.links {
            match wanted.iter_mut().find(|(path, _)| path == parent) {
                Some((_, role)) => role.links.push(name.clone()),
                None => wanted.push((
                    parent.clone(),
                    Role {
                        scan: false,
                        links: vec![name.clone()],
                    },
                )),
            }
        }
        let stale: Vec<PathBuf> = self
            .directories
            .keys()
            .filter(|path| !wanted.iter().any(|(p, _)| p == *path))
            .cloned()
            .collect();
        for path in stale {
            if let Some(wd) = self.directories.remove(&path) {
                self.roles.remove(&wd);
                let _ = self.inotify.rm_watch(wd);
            }
        }
        for (path, role) in wanted {
            let wd = match self.directories.get(&path) {
                Some(wd) => *wd,
                None => match self.inotify.add_watch(&path, directory_mask()) {
                    Ok(wd) => {
                        self.directories.insert(path, wd);
                        wd
                    }
                    Err(errno) => {
                        say!(
                            "warning: unable to watch {}: {}; changes there are seen only by sv sync",
                            path.display(),
                            runsv::errno_text::runit_text(errno as i32)
                        );
                        continue;
                    }
                },
            };
            self.roles.insert(wd, role);
        }
    }

    /// Starts watching an adopted runsv's lock (before the probe that proves it runs,
    /// so that its exit is never missed); `keep` or `drop_lock` follows.
    pub fn watch_lock(&mut self, lock: &Path) -> Option<WatchDescriptor> {
        self.inotify
            .add_watch(lock, AddWatchFlags::IN_CLOSE_WRITE)
            .ok()
    }

    /// The lock watched is `id`'s adopted runsv's.
    pub fn keep(&mut self, wd: WatchDescriptor, id: Id) {
        self.locks.entry(wd).or_default().push(id);
    }

    /// The runsv probed turned out to be gone: the watch is dropped, unless another
    /// service already shares it (the same lock, reached twice).
    pub fn discard(&mut self, wd: WatchDescriptor) {
        if !self.locks.contains_key(&wd) {
            let _ = self.inotify.rm_watch(wd);
        }
    }

    /// `id`'s adopted runsv is gone: its lock watch ends with its last service.
    pub fn drop_lock(&mut self, wd: WatchDescriptor, id: Id) {
        if let Some(ids) = self.locks.get_mut(&wd) {
            ids.retain(|i| *i != id);
            if ids.is_empty() {
                self.locks.remove(&wd);
                let _ = self.inotify.rm_watch(wd);
            }
        }
    }
}
