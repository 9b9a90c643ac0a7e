//! The `after:` lists the ordered stop needs, read on a thread of their own under a time
//! bound. Loading a definition opens files of the service directory (service.yaml,
//! finish, …) and the user database; any of them may be a FIFO or on a file system that
//! never answers. Read on svdir's one thread, one such file held up the whole stop: no
//! service was told to stop and the deadline never fired. Whatever the thread is stuck
//! on, svdir goes on once the bound has passed, and the services not read by then stop
//! without an order of their own (as runit-form services do); a stuck thread is left to
//! die with svdir, which exits at the end of the stop.

use crate::place::Place;
use runsv::definition::ServiceDefinition;
use runsv::failure::OnFailure;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The most the reading may take: a quarter of the stop deadline, at most 2 s (a
/// thousand definitions load in a few tens of milliseconds).
pub fn bound(stop_deadline: Duration) -> Duration {
    (stop_deadline / 4).min(Duration::from_secs(2))
}

/// What the stop needs of one definition.
#[derive(Debug, PartialEq, Eq)]
pub struct Stopping {
    pub after: Vec<String>,
    /// Its failures do not count in the exit status (`on_failure: continue`).
    pub excused: bool,
}

/// What was read: of each service by its index, and how many were not read in time.
pub struct Read {
    pub after: Vec<(usize, Stopping)>,
    pub late: usize,
}

/// Reads `after:` and `on_failure:` of each `(index, place)`. The places move to the
/// thread: a directory fd must stay open while its `/proc/self/fd` path is used.
pub fn read(directories: Vec<(usize, Place)>, bound: Duration) -> Read {
    read_with(directories, bound, after)
}

/// `after:` and `on_failure:` of one service. Only a service.yaml can name
/// dependencies or a policy: without one the definition is not loaded (the tree's
/// default policy applies); an invalid one has neither.
fn after(directory: &Path) -> Stopping {
    let definition = match std::fs::symlink_metadata(directory.join("service.yaml")) {
        Ok(_) => ServiceDefinition::load(directory).ok(),
        Err(_) => None,
    };
    let own = definition.as_ref().and_then(|d| d.on_failure);
    Stopping {
        excused: OnFailure::or_tree_default(own) == OnFailure::Continue,
        after: definition.map(|d| d.after).unwrap_or_default(),
    }
}

fn read_with(
    directories: Vec<(usize, Place)>,
    bound: Duration,
    load: fn(&Path) -> Stopping,
) -> Read {
    let total = directories.len();
    let (sender, receiver) = mpsc::channel();
    let reader = std::thread::Builder::new()
        .name("after".to_string())
        .spawn(move || {
            for (index, place) in directories {
                if sender.send((index, load(&place.path()))).is_err() {
                    return;
                }
            }
        });
    if reader.is_err() {
        // No thread (no memory, no task left): no order rather than a risk of blocking.
        return Read {
            after: Vec::new(),
            late: total,
        };
    }
    let until = Instant::now() + bound;
    let mut after = Vec::with_capacity(total);
    while after.len() < total {
        let left = until.saturating_duration_since(Instant::now());
        match receiver.recv_timeout(left) {
            Ok(read) => after.push(read),
            Err(_) => break,
        }
    }
    Read {
        late: total - after.len(),
        after,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn place(path: &Path) -> Place {
        Place::Path(path.to_path_buf())
    }

    #[test]
    fn after_lists_and_what_is_not_loaded() {
        let root = tempfile::tempdir().unwrap();
        let write = |name: &str, yaml: &str| -> PathBuf {
            let dir = root.path().join(name);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("service.yaml"), yaml).unwrap();
            dir
        };
        let a = write("a", "exec: sleep 1\nafter: [b]\n");
        assert_eq!(after(&a).after, ["b"]);
        assert!(!after(&a).excused);
        let optional = write("optional", "exec: sleep 1\non_failure: continue\n");
        assert!(after(&optional).excused);
        let runit = root.path().join("runit");
        std::fs::create_dir_all(&runit).unwrap();
        assert!(after(&runit).after.is_empty());
        // A FIFO at finish (the load opens it) or at service.yaml: not loaded, at once.
        let fifo = |path: PathBuf| {
            nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap()
        };
        let hostile = write("hostile", "exec: a\nafter: [b]\n");
        fifo(hostile.join("finish"));
        assert!(after(&hostile).after.is_empty());
        let yaml = root.path().join("yaml");
        std::fs::create_dir_all(&yaml).unwrap();
        fifo(yaml.join("service.yaml"));
        assert!(after(&yaml).after.is_empty());
    }

    /// Stands for a load that never returns (a file system that does not answer).
    fn stuck_on_b(directory: &Path) -> Stopping {
        while directory.ends_with("b") {
            std::thread::park();
        }
        Stopping {
            after: vec![directory.display().to_string()],
            excused: false,
        }
    }

    #[test]
    fn a_load_that_never_returns_costs_only_the_bound() {
        let began = Instant::now();
        let read = read_with(
            vec![
                (0, place(Path::new("a"))),
                (1, place(Path::new("b"))),
                (2, place(Path::new("c"))),
            ],
            Duration::from_millis(200),
            stuck_on_b,
        );
        let took = began.elapsed();
        assert!(took >= Duration::from_millis(200) && took < Duration::from_secs(2));
        assert_eq!(
            read.after,
            vec![(
                0,
                Stopping {
                    after: vec!["a".to_string()],
                    excused: false
                }
            )]
        );
        assert_eq!(read.late, 2);
    }
}
