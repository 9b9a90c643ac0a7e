//! A service is its cgroup: where a cgroup v2 hierarchy is writable, every service runs
//! in a group of its own, so that a stop reaches every process it started (double-forked
//! and setsid'd ones too), "down" means the group is empty, and limits apply to the
//! whole service. This module owns everything about cgroups that runtree programs do:
//!
//! - finding the hierarchy and the tree's subtree ([`Tree::find`]): `RUNTREE_CGROUP`
//!   (`off`, `auto` or the absolute path of the tree's group), else the cgroup2 mount
//!   (/sys/fs/cgroup, /sys/fs/cgroup/unified on a hybrid host, a delegated one in a
//!   container) and this process's own group: the tree is `<own>/runtree`, or the parent
//!   of `supervisors` when this process already is in one, or `<parent>/runtree` when it
//!   is in the leaf a container's init made for itself (`init`, [`enter_init_leaf`]);
//! - the layout: `<tree>/supervisors` holds svdir and the runsvs; each service directory
//!   has a group named after its absolute path (`<tree>/service-web.service`), its
//!   `log/` another (`<tree>/service-web-log.service`): siblings, as cgroup v2 allows
//!   processes only in leaves once controllers are enabled;
//! - placing a child (clone3 creates it in the group's directory, [`Group::dir_fd`];
//!   where it cannot, the child writes `0` to the group's `cgroup.procs` between fork
//!   and exec: [`Group::procs_fd`]), signalling and killing the group (`cgroup.kill` where the
//!   kernel has it), emptiness from `cgroup.events` (pollable: POLLPRI on change),
//!   `memory.events` oom_kill, limits (cgroup/limits.rs), and the status read
//!   ([`usage`]).
//!
//! Where nothing is writable (an unprivileged tree, most tests), `Tree::find` is None
//! and every program works with process groups, as before.

mod group;
pub mod limits;
mod usage;

#[cfg(test)]
mod cgroup_tests;

pub use group::{write_file, Group};
pub use limits::Limits;
pub use usage::{group_in_state, human_bytes, state_field, usage, Slot, Usage, UsageReads, Usages};

use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// `off`, `auto` (the default) or the absolute path of the tree's group.
pub const VARIABLE: &str = "RUNTREE_CGROUP";

/// The group of svdir and the runsvs inside a tree.
pub const SUPERVISORS: &str = "supervisors";

/// The tree's group under the group of the program that sets it up.
const TREE: &str = "runtree";

/// The leaf a container's init moves into ([`enter_init_leaf`]); svdir, started there,
/// puts the tree beside it (`<parent>/runtree`), not in it.
pub const INIT: &str = "init";

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
        for here in own_dirs() {
            let tree = match here.file_name() {
                Some(name) if name == SUPERVISORS => here.parent().map(Path::to_path_buf),
                // Started by a container's init in its leaf: that group must stay a leaf
                // (the tree's services need their parents free of processes), so the
                // tree goes beside it, where it would have been without the move.
                Some(name) if name == INIT => here.parent().map(|p| p.join(TREE)),
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

/// What [`enter_init_leaf`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum InitLeaf {
    /// This process is now in `leaf`, with `others` processes of its old group moved
    /// there too.
    Moved { leaf: PathBuf, others: usize },
    /// Nothing to do, and why.
    Stayed(&'static str),
}

/// For init in a container: leaves its group for a leaf of its own (`<own>/init`), so
/// that the tree's parent can enable controllers. cgroup v2 lets a group other than
/// the hierarchy's real root enable controllers for its children only while it holds
/// no process (the no-internal-process rule), and a container's namespace root is
/// not the real root: with init in it, every limit would be refused. The processes
/// already beside init (a `podman exec` that came first) move too, as Docker's dind
/// script does; those that come later are kept out by the kernel once the controllers
/// are on (EBUSY), and runc and crun then put them in init's group (docs/cgroups.md).
/// Nothing happens with `RUNTREE_CGROUP=off`, without a writable cgroup v2 hierarchy
/// holding this process's group, or in the real root (a machine's PID 1).
/// Errors name the file.
pub fn enter_init_leaf() -> Result<InitLeaf, String> {
    if std::env::var_os(VARIABLE).is_some_and(|v| v == "off") {
        return Ok(InitLeaf::Stayed("RUNTREE_CGROUP=off"));
    }
    match own_dirs()
        .into_iter()
        .find(|own| writable(&own.join("cgroup.procs")))
    {
        Some(own) => init_leaf_in(&own),
        None => Ok(InitLeaf::Stayed("no writable cgroup v2 hierarchy")),
    }
}

fn init_leaf_in(own: &Path) -> Result<InitLeaf, String> {
    // The real root has no cgroup.type (nor any other file the kernel keeps off it).
    if !own.join("cgroup.type").exists() {
        return Ok(InitLeaf::Stayed("in the hierarchy's root group"));
    }
    if own.file_name().is_some_and(|name| name == INIT) {
        return Ok(InitLeaf::Stayed("already in a leaf of its own"));
    }
    let leaf = own.join(INIT);
    make_dir(&leaf)?;
    let procs = leaf.join("cgroup.procs");
    fs::write(&procs, b"0").map_err(|e| format!("unable to write {}: {e}", procs.display()))?;
    // Pids outside this PID namespace show as 0; one that has exited meanwhile fails.
    let others = group::read_pids(&own.join("cgroup.procs"))
        .into_iter()
        .filter(|&pid| pid != 0 && fs::write(&procs, pid.to_string()).is_ok())
        .count();
    Ok(InitLeaf::Moved { leaf, others })
}

/// This process's group's directory on each cgroup2 mount that shows it, the usual
/// mounts first.
fn own_dirs() -> Vec<PathBuf> {
    let Some(own) = own_group() else {
        return Vec::new();
    };
    mounts()
        .into_iter()
        .map(|mount| mount.join(own.strip_prefix("/").unwrap_or(&own)))
        // Not there: the mount of another cgroup namespace.
        .filter(|here| here.is_dir())
        .collect()
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
