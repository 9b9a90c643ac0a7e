//! A service is its cgroup: where a cgroup v2 hierarchy is writable, every service runs
//! in a group of its own, so that a stop reaches every process it started (double-forked
//! and setsid'd ones too), "down" means the group is empty, and limits apply to the
//! whole service. This module owns everything about cgroups that runtree programs do:
//!
//! - finding the hierarchy and the tree's subtree ([`Tree::find`]): `RUNTREE_CGROUP`
//!   (`off`, `auto` or the absolute path of the tree's group), else the cgroup2 mount
//!   (/sys/fs/cgroup, /sys/fs/cgroup/unified on a hybrid host, a delegated one in a
//!   container) and this process's own group: the tree is `<own>/runtree`, or the parent
//!   of `supervisors` when this process already is in one;
//! - the layout: `<tree>/supervisors` holds svdir and the runsvs; each service directory
//!   has a group named after its absolute path (`<tree>/service-web.service`), its
//!   `log/` another (`<tree>/service-web-log.service`): siblings, as cgroup v2 allows
//!   processes only in leaves once controllers are enabled;
//! - placing a child (it writes `0` to the group's `cgroup.procs` between fork and exec:
//!   [`Group::procs_fd`]), signalling and killing the group (`cgroup.kill` where the
//!   kernel has it), emptiness from `cgroup.events` (pollable: POLLPRI on change),
//!   `memory.events` oom_kill, limits (cgroup/limits.rs), and the status read
//!   ([`usage`]).
//!
//! Where nothing is writable (an unprivileged tree, most tests), `Tree::find` is None
//! and every program works with process groups, as before.

pub mod limits;

pub use limits::Limits;

use nix::errno::Errno;
use nix::libc;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// `off`, `auto` (the default) or the absolute path of the tree's group.
pub const VARIABLE: &str = "RUNTREE_CGROUP";

/// The group of svdir and the runsvs inside a tree.
pub const SUPERVISORS: &str = "supervisors";

/// The tree's group under the group of the program that sets it up.
const TREE: &str = "runtree";

/// The controllers runtree enables for the services, where the parent offers them.
const CONTROLLERS: [&str; 4] = ["cpu", "io", "memory", "pids"];

/// statfs(2)'s magic number of cgroup2.
pub const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

/// The `cgroup=` line runsv appends to supervise/state: where sv reads the usage.
const STATE_FIELD: &str = "cgroup=";

/// How a tree tracks its services: shown by `sv status`.
pub fn mode_name(cgroup: bool) -> &'static str {
    if cgroup {
        "cgroup"
    } else {
        "process group"
    }
}

/// The runtree subtree of a writable cgroup v2 hierarchy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tree {
    path: PathBuf,
}

impl Tree {
    /// The tree this process belongs to, created if needed; None where no cgroup v2
    /// hierarchy is writable or `RUNTREE_CGROUP=off`.
    pub fn find() -> Option<Tree> {
        match std::env::var_os(VARIABLE) {
            Some(value) if value == "off" => None,
            Some(value) if !value.is_empty() && value != "auto" => {
                let path = PathBuf::from(value);
                if path.is_absolute() {
                    Tree::at(path)
                } else {
                    None
                }
            }
            _ => Tree::auto(),
        }
    }

    /// A tree at `path`, created if needed, if it is a writable cgroup2 directory.
    pub fn at(path: PathBuf) -> Option<Tree> {
        match fs::create_dir(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(_) => return None,
        }
        if !on_cgroup2(&path) || !writable(&path.join("cgroup.procs")) {
            return None;
        }
        Some(Tree { path })
    }

    fn auto() -> Option<Tree> {
        let own = own_group()?;
        for mount in mounts() {
            let here = mount.join(own.strip_prefix("/").unwrap_or(&own));
            if !here.is_dir() {
                continue; // the mount of another cgroup namespace
            }
            let tree = match here.file_name() {
                Some(name) if name == SUPERVISORS => here.parent().map(Path::to_path_buf),
                _ => Some(here.join(TREE)),
            };
            if let Some(tree) = tree.and_then(Tree::at) {
                return Some(tree);
            }
        }
        None
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Moves this process into `<tree>/supervisors` and enables the controllers the
    /// services' limits need (on the tree's parent, where it may, and on the tree).
    /// Errors name the file.
    pub fn join(&self) -> Result<(), String> {
        let supervisors = self.path.join(SUPERVISORS);
        // A runsv started by svdir is there already, and svdir has enabled the
        // controllers: a thousand runsvs then cost no migration and no cgroupfs write.
        if own_group().is_some_and(|own| {
            let own = own.strip_prefix("/").unwrap_or(&own).to_path_buf();
            !own.as_os_str().is_empty() && supervisors.ends_with(&own)
        }) {
            return Ok(());
        }
        make_dir(&supervisors)?;
        let procs = supervisors.join("cgroup.procs");
        fs::write(&procs, b"0").map_err(|e| format!("unable to write {}: {e}", procs.display()))?;
        // Out of the parent now: the parent may enable controllers for its children only
        // without processes of its own (the root excepted). Best effort: what cannot be
        // enabled shows as the reason of a service whose limit needs it.
        if let Some(parent) = self.path.parent() {
            enable_controllers(parent);
        }
        enable_controllers(&self.path);
        Ok(())
    }

    /// The group of the service at `directory` (absolute): `<tree>/<escaped>.service`.
    pub fn group_path(&self, directory: &Path) -> PathBuf {
        self.path.join(group_name(directory))
    }

    /// The tree's CPU weight, for all of svdir, the runsvs and their short-lived
    /// helpers together (where the cpu controller is on): the autogroup weight's
    /// counterpart. Best effort.
    pub fn set_supervisors_weight(&self, weight: u32) -> bool {
        fs::write(
            self.path.join(SUPERVISORS).join("cpu.weight"),
            weight.to_string(),
        )
        .is_ok()
    }
}

/// Enables each of CONTROLLERS that `group` offers and has not enabled yet.
fn enable_controllers(group: &Path) {
    let offered = fs::read_to_string(group.join("cgroup.controllers")).unwrap_or_default();
    let enabled = fs::read_to_string(group.join("cgroup.subtree_control")).unwrap_or_default();
    for controller in CONTROLLERS {
        let has = |list: &str| list.split_whitespace().any(|c| c == controller);
        if has(&offered) && !has(&enabled) {
            let _ = fs::write(
                group.join("cgroup.subtree_control"),
                format!("+{controller}"),
            );
        }
    }
}

fn make_dir(path: &Path) -> Result<(), String> {
    match fs::create_dir(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(format!("unable to create {}: {e}", path.display())),
    }
}

// f_type's width differs between libcs and targets: the cast is needed on some.
#[allow(clippy::unnecessary_cast)]
pub fn on_cgroup2(path: &Path) -> bool {
    nix::sys::statfs::statfs(path)
        .is_ok_and(|s| s.filesystem_type().0 as i64 == CGROUP2_SUPER_MAGIC)
}

fn writable(path: &Path) -> bool {
    nix::unistd::access(path, nix::unistd::AccessFlags::W_OK).is_ok()
}

/// This process's cgroup v2 path (`0::/a/b` in /proc/self/cgroup), from its
/// namespace's root.
fn own_group() -> Option<PathBuf> {
    group_of_pid("self")
}

fn group_of_pid(pid: &str) -> Option<PathBuf> {
    let text = crate::reader::read(
        Path::new(&format!("/proc/{pid}/cgroup")),
        64 * 1024,
        crate::reader::Links::Follow,
    )
    .ok()?;
    let text = String::from_utf8_lossy(&text).into_owned();
    text.lines()
        .find_map(|line| line.strip_prefix("0::"))
        .map(PathBuf::from)
}

/// The cgroup2 mount points, the usual places first.
fn mounts() -> Vec<PathBuf> {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut found: Vec<PathBuf> = text
        .lines()
        .filter_map(|line| {
            // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS ... - FSTYPE SOURCE SUPER
            let (before, after) = line.split_once(" - ")?;
            if after.split_whitespace().next()? != "cgroup2" {
                return None;
            }
            let mut fields = before.split_whitespace();
            let root = fields.nth(3)?;
            let point = fields.next()?;
            // A bind mount of a subtree would put our own path elsewhere.
            (root == "/").then(|| PathBuf::from(unescape_mount(point)))
        })
        .collect();
    let rank = |p: &PathBuf| match p.to_str() {
        Some("/sys/fs/cgroup") => 0,
        Some("/sys/fs/cgroup/unified") => 1,
        _ => 2,
    };
    found.sort_by_key(rank);
    found.dedup();
    found
}

/// mountinfo writes space, tab, newline and backslash as `\ooo`.
fn unescape_mount(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let digits = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (bytes[i], digits) {
            (b'\\', Some(d)) => {
                let value = d.iter().fold(0u32, |v, b| v * 8 + u32::from(b - b'0'));
                out.push(value as u8);
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The group's name for a service directory: its absolute path, escaped as systemd
/// escapes unit names (`/` → `-`, anything but `[A-Za-z0-9_.:]` → `\xHH`), then
/// `.service` (no clash with `supervisors` or an interface file). Unique per directory,
/// so trees sharing a parent (tests, nested trees) never share a group. A path too long
/// for a name keeps its end and a hash of the whole.
pub fn group_name(directory: &Path) -> String {
    let bytes = directory.as_os_str().as_bytes();
    let trimmed = bytes.strip_prefix(b"/").unwrap_or(bytes);
    let mut name = String::with_capacity(trimmed.len() + 8);
    for (index, &byte) in trimmed.iter().enumerate() {
        match byte {
            b'/' => name.push('-'),
            b'.' if index == 0 => name.push_str("\\x2e"),
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' | b':' => name.push(byte as char),
            _ => name.push_str(&format!("\\x{byte:02x}")),
        }
    }
    // NAME_MAX is 255.
    const KEEP: usize = 200;
    if name.len() > KEEP + 40 {
        let hash = fnv1a(bytes);
        let tail = &name[name.len() - KEEP..];
        name = format!("{hash:016x}~{tail}");
    }
    name.push_str(".service");
    name
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// The group of one service: created on open, removed by [`Group::remove`] once empty.
pub struct Group {
    path: PathBuf,
    /// `cgroup.procs`, write-only: a child writes `0` into it before exec.
    procs: File,
    /// `cgroup.events`, read for `populated` and polled (POLLPRI) for changes.
    events: File,
    /// `memory.events`, where the memory controller is on (its oom_kill count).
    memory_events: Option<File>,
}

impl Group {
    /// Creates (if needed) and opens the group at `path`. Errors name the file.
    pub fn open(path: PathBuf) -> Result<Group, String> {
        make_dir(&path)?;
        let open = |name: &str, write: bool| {
            let file = path.join(name);
            OpenOptions::new()
                .read(!write)
                .write(write)
                .custom_flags(libc::O_CLOEXEC)
                .open(&file)
                .map_err(|e| format!("unable to open {}: {e}", file.display()))
        };
        let procs = open("cgroup.procs", true)?;
        let events = open("cgroup.events", false)?;
        let memory_events = open("memory.events", false).ok();
        Ok(Group {
            path,
            procs,
            events,
            memory_events,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The fd a child writes `0` to, to join the group before it execs.
    pub fn procs_fd(&self) -> RawFd {
        self.procs.as_raw_fd()
    }

    /// `cgroup.events`, to poll for POLLPRI: it fires when `populated` changes. Reading
    /// it ([`Group::populated`]) re-arms it.
    pub fn events_fd(&self) -> BorrowedFd<'_> {
        self.events.as_fd()
    }

    /// Whether any process is in the group (`populated 1` in cgroup.events). A file
    /// that cannot be read counts as empty: nothing could ever be waited for.
    pub fn populated(&self) -> bool {
        let mut file = &self.events;
        let mut text = String::new();
        if file.seek(SeekFrom::Start(0)).is_err() || file.read_to_string(&mut text).is_err() {
            return false;
        }
        text.lines().any(|line| line == "populated 1")
    }

    /// The pids in the group.
    pub fn pids(&self) -> Vec<u32> {
        read_pids(&self.path.join("cgroup.procs"))
    }

    /// Sends `signal` to every process in the group; how many there were.
    pub fn signal(&self, signal: Signal) -> usize {
        if signal == Signal::SIGKILL {
            self.kill();
            return 0;
        }
        let pids = self.pids();
        for &pid in &pids {
            let _ = kill(Pid::from_raw(pid as i32), signal);
        }
        pids.len()
    }

    /// Kills every process in the group, those forking meanwhile too: `cgroup.kill`
    /// (Linux 5.14), else SIGKILL to each process until none is left (bounded).
    pub fn kill(&self) {
        if fs::write(self.path.join("cgroup.kill"), b"1").is_ok() {
            return;
        }
        for _ in 0..100 {
            let pids = self.pids();
            if pids.is_empty() {
                return;
            }
            for pid in pids {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
            }
        }
    }

    /// Waits up to `timeout` for the group to be empty; whether it is.
    pub fn wait_empty(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if !self.populated() {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            let millis = left.as_millis().clamp(1, i32::MAX as u128) as i32;
            let mut fds = [nix::poll::PollFd::new(
                self.events.as_fd(),
                nix::poll::PollFlags::POLLPRI,
            )];
            let timeout =
                nix::poll::PollTimeout::try_from(millis).unwrap_or(nix::poll::PollTimeout::MAX);
            match nix::poll::poll(&mut fds, timeout) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(_) => return !self.populated(),
            }
        }
    }

    /// Stops what is in the group: `signal`, then after `timeout` a kill; waits for it
    /// to be empty (a few seconds more at most). Whether it is.
    pub fn stop(&self, signal: Signal, timeout: Duration) -> bool {
        if !self.populated() {
            return true;
        }
        self.signal(signal);
        self.signal(Signal::SIGCONT);
        if self.wait_empty(timeout) {
            return true;
        }
        self.kill();
        self.wait_empty(Duration::from_secs(5))
    }

    /// Whether `pid` is in this group (/proc/PID/cgroup).
    pub fn contains(&self, pid: u32) -> bool {
        match group_of_pid(&pid.to_string()) {
            Some(group) => {
                let group = group.strip_prefix("/").unwrap_or(&group).to_path_buf();
                !group.as_os_str().is_empty() && self.path.ends_with(group)
            }
            None => false,
        }
    }

    /// How many times the OOM killer killed a process of the group (`oom_kill` in
    /// memory.events; 0 without the memory controller).
    pub fn oom_kills(&self) -> u64 {
        let Some(mut file) = self.memory_events.as_ref() else {
            return 0;
        };
        let mut text = String::new();
        if file.seek(SeekFrom::Start(0)).is_err() || file.read_to_string(&mut text).is_err() {
            return 0;
        }
        text.lines()
            .find_map(|line| line.strip_prefix("oom_kill "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Writes the service's limits (see cgroup/limits.rs); an error says which key
    /// could not be applied and why.
    pub fn apply(&self, limits: &Limits) -> Result<(), String> {
        limits.apply(&self.path)
    }

    /// Removes the group if it is empty (rmdir fails otherwise: nothing is lost).
    pub fn remove(self) -> bool {
        let Group {
            path,
            procs,
            events,
            memory_events,
        } = self;
        drop((procs, events, memory_events));
        fs::remove_dir(&path).is_ok()
    }
}

fn read_pids(path: &Path) -> Vec<u32> {
    let mut text = String::new();
    if File::open(path)
        .and_then(|mut f| f.read_to_string(&mut text))
        .is_err()
    {
        return Vec::new();
    }
    text.lines().filter_map(|l| l.trim().parse().ok()).collect()
}

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
/// `cgroup.subtree_control`), as a lookup in cgroupfs costs as much as a read.
pub fn usage(group: &Path) -> Usage {
    let (pids, memory) = controllers_of_parent(group);
    let number = |name: &str| -> Option<u64> {
        let mut buffer = [0u8; 32];
        let mut file = File::open(group.join(name)).ok()?;
        let n = file.read(&mut buffer).ok()?;
        std::str::from_utf8(&buffer[..n]).ok()?.trim().parse().ok()
    };
    let processes = if pids {
        number("pids.current")
    } else {
        let mut text = Vec::new();
        File::open(group.join("cgroup.procs"))
            .and_then(|file| file.take(1 << 20).read_to_end(&mut text))
            .ok()
            .map(|_| text.iter().filter(|&&b| b == b'\n').count() as u64)
    };
    Usage {
        processes,
        memory: if memory {
            number("memory.current")
        } else {
            None
        },
    }
}

/// Whether the groups under `group`'s parent have the pids and memory controllers,
/// remembered per parent for the life of the process.
fn controllers_of_parent(group: &Path) -> (bool, bool) {
    use std::cell::RefCell;
    thread_local! {
        static KNOWN: RefCell<Vec<(PathBuf, (bool, bool))>> = const { RefCell::new(Vec::new()) };
    }
    let parent = group.parent().unwrap_or(group).to_path_buf();
    KNOWN.with(|known| {
        if let Some((_, found)) = known.borrow().iter().find(|(p, _)| *p == parent) {
            return *found;
        }
        let enabled = fs::read_to_string(parent.join("cgroup.subtree_control")).unwrap_or_default();
        let has = |name: &str| enabled.split_whitespace().any(|c| c == name);
        let found = (has("pids"), has("memory"));
        known.borrow_mut().push((parent, found));
        found
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

/// For tests and tools: writes `text` to a file of a group (limits, cgroup.kill).
pub fn write_file(group: &Path, name: &str, text: &str) -> io::Result<()> {
    let mut file = OpenOptions::new().write(true).open(group.join(name))?;
    file.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_names_are_escaped_paths() {
        assert_eq!(group_name(Path::new("/service/web")), "service-web.service");
        assert_eq!(
            group_name(Path::new("/service/web/log")),
            "service-web-log.service"
        );
        assert_eq!(
            group_name(Path::new("/srv/my-app/.x y")),
            "srv-my\\x2dapp-.x\\x20y.service"
        );
        assert_eq!(group_name(Path::new("/.hidden")), "\\x2ehidden.service");
        let long = format!("/{}", "a/".repeat(300));
        let name = group_name(Path::new(&long));
        assert!(name.len() < 255, "{}", name.len());
        assert_ne!(name, group_name(Path::new(&format!("/b{long}"))));
    }

    #[test]
    fn the_state_field_round_trips() {
        let field = state_field(Path::new("/sys/fs/cgroup/runtree/a.service"));
        let state = format!("state=running\n{field}directory=1:2\n");
        assert_eq!(
            group_in_state(state.as_bytes()),
            Some(PathBuf::from("/sys/fs/cgroup/runtree/a.service"))
        );
        assert_eq!(group_in_state(b"state=running\n"), None);
    }

    #[test]
    fn mount_points_are_unescaped() {
        assert_eq!(unescape_mount("/a\\040b"), "/a b");
        assert_eq!(unescape_mount("/sys/fs/cgroup"), "/sys/fs/cgroup");
    }

    #[test]
    fn bytes_for_people() {
        assert_eq!(human_bytes(512), "512B");
        assert_eq!(human_bytes(1536), "1.5K");
        assert_eq!(human_bytes(64 << 20), "64.0M");
    }
}
