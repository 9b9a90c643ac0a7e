//! What sv reads of a service's cgroup: the `cgroup=` line runsv writes to
//! supervise/state, and the group's process count and memory, in one small read where
//! the controllers allow (see docs/cgroups.md).

use super::*;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::Mode;
use std::fs::{self, File};
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

/// The `cgroup=PATH` line of supervise/state.
pub fn state_field(path: &Path) -> String {
    format!("{STATE_FIELD}{}\n", path.display())
}

/// The group a state file names, if any.
pub fn group_in_state(state: &[u8]) -> Option<PathBuf> {
    let text = std::str::from_utf8(state).ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix(STATE_FIELD))
        .filter(|path| path.starts_with('/'))
        .map(PathBuf::from)
}

/// What `sv status` shows of a group.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub processes: Option<u64>,
    /// Bytes (memory.current), where the memory controller is on.
    pub memory: Option<u64>,
}

/// A group's processes and memory: `pids.current` (or the lines of `cgroup.procs`
/// without the pids controller) and `memory.current` where the memory controller is on
/// — one small read per controller, no lookup of a file that is not there: which
/// controllers a tree's groups have is read once per tree (its
/// `cgroup.subtree_control`), as a lookup in cgroupfs costs as much as a read. The
/// files are opened relative to the tree's directory, held open for the life of the
/// process: a path of six components walked for each of a thousand services cost as
/// much as the read.
pub fn usage(group: &Path) -> Usage {
    let tree = tree_of(group);
    let name = match (&tree.fd, group.file_name()) {
        (Some(_), Some(name)) => PathBuf::from(name),
        _ => group.to_path_buf(),
    };
    let base = tree.fd.as_ref().map(|fd| fd.as_raw_fd());
    let number = |file: &str| -> Option<u64> {
        let mut buffer = [0u8; 32];
        let n = read_some(base, &name.join(file), &mut buffer)?;
        std::str::from_utf8(&buffer[..n]).ok()?.trim().parse().ok()
    };
    let processes = if tree.pids {
        number("pids.current")
    } else {
        count_lines(base, &name.join("cgroup.procs"))
    };
    Usage {
        processes,
        memory: if tree.memory {
            number("memory.current")
        } else {
            None
        },
    }
}

/// The usage of many groups, for a status of many services: read on a thread of its
/// own while the caller reads the rest of each service's status, because opening a
/// cgroup file is the dearest part of a status line (about 10 µs of the kernel's,
/// against about 25 µs for everything else a line reads): done in line, it made
/// `sv status` of 1000 services a third slower with cgroups than without. Both threads
/// make the same system calls as one would; the second only overlaps them. A short list
/// reads in line (a thread costs more than a few reads), as does a list whose thread
/// could not be started.
pub struct UsageReads {
    /// How many groups were asked for: the next slot.
    asked: usize,
    /// How many services the status reads: whether a thread pays.
    services: usize,
    reader: Reader,
}

enum Reader {
    /// Nothing asked yet: a tree without cgroups starts no thread.
    NotYet,
    InLine(Vec<Usage>),
    Thread {
        /// Groups asked for since the last batch was sent.
        batch: Vec<PathBuf>,
        batches: std::sync::mpsc::Sender<Vec<PathBuf>>,
        read: std::thread::JoinHandle<Vec<Usage>>,
    },
}

/// Groups go to the thread this many at a time: one wake-up of the thread per batch
/// instead of one per group (a wake-up costs about what a read does).
const BATCH: usize = 32;

/// Where a group's usage will be once [`UsageReads::finish`] returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot(usize);

/// From how many services a status reads its groups on a second thread.
const THREAD_FROM: usize = 16;

impl UsageReads {
    /// Reads for a status of `services` services.
    pub fn new(services: usize) -> UsageReads {
        UsageReads {
            asked: 0,
            services,
            reader: Reader::NotYet,
        }
    }

    fn start(services: usize) -> Reader {
        let thread = || {
            let (batches, asked) = std::sync::mpsc::channel::<Vec<PathBuf>>();
            let read = std::thread::Builder::new()
                .name("cgroup usage".into())
                .spawn(move || asked.iter().flatten().map(|group| usage(&group)).collect())
                .ok()?;
            Some(Reader::Thread {
                batch: Vec::with_capacity(BATCH),
                batches,
                read,
            })
        };
        (services >= THREAD_FROM)
            .then(thread)
            .flatten()
            .unwrap_or(Reader::InLine(Vec::new()))
    }

    /// Asks for the usage of `group`.
    pub fn ask(&mut self, group: &Path) -> Slot {
        let slot = Slot(self.asked);
        self.asked += 1;
        if let Reader::NotYet = self.reader {
            self.reader = Self::start(self.services);
        }
        match &mut self.reader {
            Reader::NotYet => {}
            Reader::InLine(read) => read.push(usage(group)),
            Reader::Thread { batch, batches, .. } => {
                batch.push(group.to_path_buf());
                if batch.len() == BATCH {
                    // A reader gone shows at the end (finish).
                    let _ = batches.send(std::mem::replace(batch, Vec::with_capacity(BATCH)));
                }
            }
        }
        slot
    }

    /// The usage of every group asked for, by slot.
    pub fn finish(self) -> Usages {
        let read = match self.reader {
            Reader::NotYet => Vec::new(),
            Reader::InLine(read) => read,
            Reader::Thread {
                batch,
                batches,
                read,
            } => {
                // The last batch is read here, while the thread ends the one before.
                drop(batches);
                let last: Vec<Usage> = batch.iter().map(|group| usage(group)).collect();
                // A thread that died (a read cannot panic, but if it did) leaves its
                // groups' usage unknown, as an unreadable group's is.
                let sent = self.asked - batch.len();
                let mut read = read.join().unwrap_or_else(|_| vec![Usage::default(); sent]);
                read.extend(last);
                read
            }
        };
        Usages(read)
    }
}

/// What [`UsageReads`] read.
pub struct Usages(Vec<Usage>);

impl Usages {
    pub fn get(&self, slot: Slot) -> Usage {
        self.0.get(slot.0).copied().unwrap_or_default()
    }
}

/// Opens a cgroup file (non-blocking: the path comes from a state file, and whatever
/// is there must not hold sv) and reads it once into `buffer`; the file is closed on
/// return.
fn read_some(base: Option<RawFd>, path: &Path, buffer: &mut [u8]) -> Option<usize> {
    let flags = OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC | OFlag::O_NOCTTY;
    let fd = openat(base, path, flags, Mode::empty()).ok()?;
    // SAFETY: openat just returned this fd; nothing else owns it.
    let mut file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    file.read(buffer).ok()
}

/// The number of lines of `cgroup.procs`, read 4 KiB at a time: a service's few pids
/// take one read. A cgroup file is a seq_file, whose read fills what it is asked for
/// while there is more (up to a page): a short read is its end.
fn count_lines(base: Option<RawFd>, path: &Path) -> Option<u64> {
    let flags = OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC | OFlag::O_NOCTTY;
    let fd = openat(base, path, flags, Mode::empty()).ok()?;
    // SAFETY: openat just returned this fd; nothing else owns it.
    let mut file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    let mut buffer = [0u8; 4096];
    let mut lines = 0u64;
    // Bounded as before: 1 MiB of pids is a quarter million processes.
    for _ in 0..256 {
        let n = file.read(&mut buffer).ok()?;
        lines += buffer[..n].iter().filter(|&&b| b == b'\n').count() as u64;
        if n < buffer.len() {
            break;
        }
    }
    Some(lines)
}

/// What is known of the groups under one parent (a tree): its directory held open
/// and whether its groups have the pids and memory controllers.
struct Tree {
    parent: PathBuf,
    fd: Option<OwnedFd>,
    pids: bool,
    memory: bool,
}

/// The tree `group` is in, opened and read once per parent for the life of the
/// process (sv reads a few trees at most: a service's and its log's are one).
fn tree_of(group: &Path) -> std::rc::Rc<Tree> {
    use std::cell::RefCell;
    use std::rc::Rc;
    thread_local! {
        static KNOWN: RefCell<Vec<Rc<Tree>>> = const { RefCell::new(Vec::new()) };
    }
    let parent = group.parent().unwrap_or(group);
    KNOWN.with(|known| {
        if let Some(tree) = known.borrow().iter().find(|tree| tree.parent == parent) {
            return tree.clone();
        }
        let enabled = fs::read_to_string(parent.join("cgroup.subtree_control")).unwrap_or_default();
        let has = |name: &str| enabled.split_whitespace().any(|c| c == name);
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let fd = (group.parent().is_some() && group.file_name().is_some())
            .then(|| openat(None, parent, flags, Mode::empty()).ok())
            .flatten()
            // SAFETY: openat just returned this fd; nothing else owns it.
            .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) });
        let tree = Rc::new(Tree {
            parent: parent.to_path_buf(),
            fd,
            pids: has("pids"),
            memory: has("memory"),
        });
        known.borrow_mut().push(tree.clone());
        tree
    })
}

/// `12.3M`: bytes for people.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "K", "M", "G", "T"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else {
        format!("{value:.1}{}", UNITS[unit])
    }
}
