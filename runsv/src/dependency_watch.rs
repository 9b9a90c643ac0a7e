//! Watches the `supervise/` directories of the service's dependencies (and the scan
//! directory, for names that appear or vanish) with one inotify instance, so runsv
//! learns of every state change at once and an idle tree makes no wake-ups. What the
//! states mean is the library's business (runsv::dependencies).

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};
use runsv::dependencies::Dependencies;
use runsv::dependencies::{after_of, combine, dependency_state, find_cycle, DependencyState};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Without inotify (no instance could be created), the dependencies are read again on
/// this interval: slower, but a service never waits forever.
pub const FALLBACK_INTERVAL: Duration = Duration::from_secs(1);

pub struct DependencyWatch {
    /// None when inotify is unavailable (see FALLBACK_INTERVAL).
    inotify: Option<Inotify>,
    scan_dir: PathBuf,
    me: String,
    after: Vec<String>,
    /// The watch on the scan directory: its events are entries coming and going.
    scan_watch: Option<WatchDescriptor>,
    cycle: Option<Vec<String>>,
    last: Option<Dependencies>,
}

impl DependencyWatch {
    /// For the service at `service_path` (as given to runsv, made absolute but with its
    /// symlinks kept: its parent is the scan directory its dependencies live in).
    /// None when the service has no dependencies.
    pub fn new(service_path: &Path, after: &[String]) -> Option<DependencyWatch> {
        if after.is_empty() {
            return None;
        }
        let scan_dir = service_path
            .parent()
            .unwrap_or(Path::new("/"))
            .to_path_buf();
        let me = service_path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        let inotify = match Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK) {
            Ok(inotify) => Some(inotify),
            Err(error) => {
                eprintln!(
                    "runsv {}: warning: unable to watch dependencies (inotify: {error}); reading them every second",
                    service_path.display()
                );
                None
            }
        };
        Some(DependencyWatch {
            inotify,
            scan_dir,
            me,
            after: after.to_vec(),
            scan_watch: None,
            cycle: None,
            last: None,
        })
    }

    pub fn fd(&self) -> Option<RawFd> {
        self.inotify.as_ref().map(|i| i.as_fd().as_raw_fd())
    }

    pub fn polling(&self) -> bool {
        self.inotify.is_none()
    }

    /// Reads every dependency's state (renewing the watches first, so that no change
    /// between reading and watching is missed) and combines them.
    pub fn evaluate(&mut self) -> Dependencies {
        self.watch();
        let states: Vec<(String, DependencyState)> = self
            .after
            .iter()
            .map(|name| (name.clone(), dependency_state(&self.scan_dir, name)))
            .collect();
        // The cycle analysis reads the definitions of everything reachable: done at
        // start, when entries come or go, and whenever something looks wrong (a cycle
        // seen before, or a failed dependency, which a new cycle would look like).
        let suspicious = self.last.is_none()
            || matches!(self.last, Some(Dependencies::Cycle(_)))
            || states
                .iter()
                .any(|(_, s)| matches!(s, DependencyState::Failed(_)));
        if suspicious {
            self.find_cycle();
        }
        let result = combine(self.cycle.as_deref(), &states);
        self.last = Some(result.clone());
        result
    }

    /// Called when the inotify fd is readable: drains it and evaluates again.
    pub fn changed(&mut self) -> Dependencies {
        let mut entries_changed = false;
        if let Some(inotify) = &self.inotify {
            while let Ok(events) = inotify.read_events() {
                if events.is_empty() {
                    break;
                }
                entries_changed |= events.iter().any(|e| Some(e.wd) == self.scan_watch);
            }
        }
        if entries_changed {
            self.last = None;
        }
        self.evaluate()
    }

    fn find_cycle(&mut self) {
        let scan_dir = self.scan_dir.clone();
        self.cycle = find_cycle(&self.me, &self.after, |name| after_of(&scan_dir, name));
    }

    fn watch(&mut self) {
        let Some(inotify) = &self.inotify else {
            return;
        };
        let entries = AddWatchFlags::IN_CREATE
            | AddWatchFlags::IN_DELETE
            | AddWatchFlags::IN_MOVED_FROM
            | AddWatchFlags::IN_MOVED_TO
            | AddWatchFlags::IN_ONLYDIR;
        self.scan_watch = inotify.add_watch(&self.scan_dir, entries).ok();
        for name in &self.after {
            let directory = self.scan_dir.join(name);
            // The entry's directory, for `supervise/` appearing; then `supervise/`, where
            // the state file is renamed into place at every change.
            let _ = inotify.add_watch(
                &directory,
                AddWatchFlags::IN_CREATE | AddWatchFlags::IN_ONLYDIR,
            );
            let supervise = directory.join("supervise");
            let on_the_way = |path: &Path| {
                // A missing directory raises nothing where it will appear: watch the
                // deepest existing directory on the way there, and go deeper at each
                // event.
                if let Some(existing) = deepest_existing(path) {
                    let _ = inotify.add_watch(
                        &existing,
                        AddWatchFlags::IN_CREATE
                            | AddWatchFlags::IN_MOVED_TO
                            | AddWatchFlags::IN_ONLYDIR,
                    );
                }
            };
            let watched = inotify
                .add_watch(
                    &supervise,
                    AddWatchFlags::IN_MOVED_TO | AddWatchFlags::IN_ONLYDIR,
                )
                .is_ok();
            if watched {
                continue;
            }
            match std::fs::read_link(&supervise) {
                // A dangling `supervise` link (Debian's, into /run).
                Ok(target) => on_the_way(&directory.join(target)),
                // No `supervise` (yet): its runsv may keep it in the state root (a
                // read-only directory, runsv::state_dir), which may not exist yet either.
                // Only where a state root is in use: a writable tree never has one, and
                // is never woken by what happens on the way to it (in /run).
                Err(_) if runsv::state_dir::root().is_some_and(|root| root.is_dir()) => {
                    if let Some(fallback) = runsv::state_dir::fallback(&directory) {
                        let in_root = inotify.add_watch(
                            &fallback,
                            AddWatchFlags::IN_MOVED_TO | AddWatchFlags::IN_ONLYDIR,
                        );
                        if in_root.is_err() {
                            on_the_way(&fallback);
                        }
                    }
                }
                Err(_) => {}
            }
        }
    }
}

/// The deepest directory of `path` that exists.
fn deepest_existing(path: &Path) -> Option<PathBuf> {
    let mut path = path.to_path_buf();
    while !path.is_dir() {
        path = path.parent()?.to_path_buf();
    }
    Some(path)
}
