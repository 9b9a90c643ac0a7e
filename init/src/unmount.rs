//! The last thing a machine's init does before reboot(2): unmount every filesystem it
//! can, deepest first, and remount the rest (`/` always) read-only, so that no disk is
//! left needing fsck or journal recovery. The order is planned from
//! /proc/self/mountinfo by pure functions (tested below); `run` performs the plan and
//! returns the lines for the log, naming every filesystem that stayed writable and why.
//!
//! Only PID 1 of the initial PID namespace calls this (pid1.rs checks): a forced
//! machine mode inside a test's namespace must never remount the host's disks, which a
//! remount would (the read-only flag of a remount belongs to the filesystem, not to the
//! namespace's view of it).

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub point: String,
    pub fstype: String,
    pub source: String,
}

/// Filesystems without a disk under them: whatever state they are left in, nothing
/// needs recovery at the next boot, so failing to unmount them is not reported.
const VIRTUAL: &[&str] = &[
    "proc",
    "sysfs",
    "devtmpfs",
    "devpts",
    "tmpfs",
    "ramfs",
    "rootfs",
    "cgroup",
    "cgroup2",
    "securityfs",
    "debugfs",
    "tracefs",
    "pstore",
    "bpf",
    "mqueue",
    "hugetlbfs",
    "configfs",
    "fusectl",
    "efivarfs",
    "binfmt_misc",
    "autofs",
    "nsfs",
];

/// Mount points left alone: the kernel's own views that init and the console use to
/// the end. What is mounted below them (/dev/pts, /sys/fs/cgroup) is unmounted.
const KEPT: &[&str] = &["/", "/proc", "/sys", "/dev"];

impl Mount {
    pub fn is_virtual(&self) -> bool {
        VIRTUAL.contains(&self.fstype.as_str())
    }

    fn depth(&self) -> usize {
        self.point.split('/').filter(|c| !c.is_empty()).count()
    }
}

/// mountinfo escapes space, tab, newline and backslash as \ooo.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'\\' {
            if let Some(code) = bytes
                .get(i + 1..i + 4)
                .and_then(|d| std::str::from_utf8(d).ok())
                .and_then(|d| u8::from_str_radix(d, 8).ok())
            {
                out.push(code);
                i += 4;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses /proc/self/mountinfo (proc(5)): `id parent major:minor root point options
/// [optional fields] - fstype source super-options`. Lines it cannot read are skipped.
pub fn parse(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split(' ');
            let point = fields.nth(4)?;
            let mut rest = fields.skip_while(|f| *f != "-");
            rest.next()?;
            let fstype = rest.next()?;
            let source = rest.next().unwrap_or("");
            Some(Mount {
                point: unescape(point),
                fstype: unescape(fstype),
                source: unescape(source),
            })
        })
        .collect()
}

/// The unmount order: deepest mount point first; at equal depth the later mount first
/// (a mount stacked over another at the same point comes later in mountinfo).
/// `/`, /proc, /sys and /dev are not in it.
pub fn order(mounts: &[Mount]) -> Vec<Mount> {
    let mut planned: Vec<(usize, &Mount)> = mounts
        .iter()
        .enumerate()
        .filter(|(_, m)| !KEPT.contains(&m.point.as_str()))
        .collect();
    planned.sort_by(|(ia, a), (ib, b)| b.depth().cmp(&a.depth()).then(ib.cmp(ia)));
    planned.into_iter().map(|(_, m)| m.clone()).collect()
}

/// What is still mounted after the unmount passes and must be made read-only: every
/// remaining disk filesystem, `/` first of all, deepest last (a parent read-only does
/// not stop a child's remount, but `/` is the one that matters most).
pub fn to_remount(left: &[Mount]) -> Vec<Mount> {
    let mut out: Vec<Mount> = left
        .iter()
        .filter(|m| !m.is_virtual() || m.point == "/")
        .cloned()
        .collect();
    out.sort_by_key(|m| (m.point != "/", m.depth()));
    out.dedup_by(|a, b| a.point == b.point);
    out
}

fn describe(m: &Mount) -> String {
    format!("{} ({} {})", m.point, m.fstype, m.source)
}

/// Unmounts, remounts read-only, and returns what to log.
pub fn run() -> Vec<String> {
    let mut log = Vec::new();
    let text = match std::fs::read_to_string("/proc/self/mountinfo") {
        Ok(text) => text,
        Err(e) => {
            log.push(format!(
                "cannot read /proc/self/mountinfo: {e}; remounting / read-only only"
            ));
            String::new()
        }
    };
    let mounts = parse(&text);
    let mut pending = order(&mounts);
    let mut unmounted = Vec::new();
    let mut failures: Vec<(Mount, Errno)> = Vec::new();
    // A mount may be busy only because one below it was still there (a bind mount
    // over a subdirectory mounted later, say): repeat while a pass makes progress.
    loop {
        failures.clear();
        let before = pending.len();
        let mut still = Vec::new();
        for m in pending {
            match umount2(m.point.as_str(), MntFlags::empty()) {
                Ok(()) => unmounted.push(m.point.clone()),
                // Gone with its parent (or never a mount point as seen from here).
                Err(Errno::EINVAL) | Err(Errno::ENOENT) => {}
                Err(e) => {
                    failures.push((m.clone(), e));
                    still.push(m);
                }
            }
        }
        pending = still;
        if pending.is_empty() || pending.len() == before {
            break;
        }
    }
    if !unmounted.is_empty() {
        log.push(format!("unmounted {}", unmounted.join(" ")));
    }
    let mut left: Vec<Mount> = pending;
    left.push(
        mounts
            .iter()
            .rev()
            .find(|m| m.point == "/")
            .cloned()
            .unwrap_or(Mount {
                point: "/".into(),
                fstype: "?".into(),
                source: "?".into(),
            }),
    );
    let mut read_only = Vec::new();
    for m in to_remount(&left) {
        let flags = MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
        match mount(
            None::<&str>,
            m.point.as_str(),
            None::<&str>,
            flags,
            None::<&str>,
        ) {
            Ok(()) => read_only.push(m.point.clone()),
            // A tmpfs or an initramfs left writable loses nothing.
            Err(_) if m.is_virtual() => {}
            Err(e) => {
                let unmount = failures
                    .iter()
                    .find(|(f, _)| f.point == m.point)
                    .map(|(_, e)| format!("cannot unmount it: {}; ", e.desc()))
                    .unwrap_or_default();
                log.push(format!(
                    "{} stays writable: {unmount}cannot remount it read-only: {}",
                    describe(&m),
                    e.desc()
                ));
            }
        }
    }
    if !read_only.is_empty() {
        log.push(format!("remounted read-only {}", read_only.join(" ")));
    }
    log
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
23 22 0:21 / /proc rw,nosuid,nodev,noexec shared:2 - proc proc rw
24 22 0:22 / /sys rw shared:3 - sysfs sysfs rw
25 22 0:5 / /dev rw,nosuid - devtmpfs udev rw,size=4096k
26 25 0:23 / /dev/pts rw - devpts devpts rw,gid=5,mode=620
27 22 0:24 / /run rw,nosuid,nodev - tmpfs tmpfs rw,mode=755
28 27 0:25 / /run/lock rw - tmpfs tmpfs rw,size=5120k
29 22 254:16 / /srv/my\\040data rw shared:9 - ext4 /dev/vdb rw
30 29 254:32 / /srv/my\\040data/deep rw - xfs /dev/vdc rw
31 29 0:26 / /srv/my\\040data rw - tmpfs tmpfs rw
";

    #[test]
    fn parses_mountinfo_with_optional_fields_and_escapes() {
        let mounts = parse(SAMPLE);
        assert_eq!(mounts.len(), 10);
        assert_eq!(
            mounts[0],
            Mount {
                point: "/".into(),
                fstype: "ext4".into(),
                source: "/dev/vda".into()
            }
        );
        assert_eq!(mounts[7].point, "/srv/my data");
        assert_eq!(mounts[8].fstype, "xfs");
        assert!(mounts[1].is_virtual() && !mounts[7].is_virtual());
        // A line cut short is skipped, not a panic.
        assert_eq!(parse("1 2 3\n\n22 1 0:1 / /x rw - ext4").len(), 1);
    }

    #[test]
    fn deepest_first_and_stacked_mounts_top_first() {
        let points: Vec<String> = order(&parse(SAMPLE)).into_iter().map(|m| m.point).collect();
        assert_eq!(points[1..3], ["/srv/my data", "/srv/my data"]);
        let order = order(&parse(SAMPLE));
        assert_eq!(
            (order[1].fstype.as_str(), order[2].fstype.as_str()),
            ("tmpfs", "ext4")
        );
        assert_eq!(
            points,
            [
                "/srv/my data/deep",
                // the tmpfs stacked over the disk at the same point goes first
                "/srv/my data",
                "/srv/my data",
                "/run/lock",
                "/dev/pts",
                "/run",
            ]
        );
    }

    #[test]
    fn root_and_busy_disks_are_remounted_virtual_ones_are_not() {
        let mounts = parse(SAMPLE);
        let left = vec![
            mounts[8].clone(), // xfs, deep
            mounts[5].clone(), // tmpfs /run
            mounts[7].clone(), // ext4
            mounts[0].clone(), // /
        ];
        let points: Vec<String> = to_remount(&left).into_iter().map(|m| m.point).collect();
        assert_eq!(points, ["/", "/srv/my data", "/srv/my data/deep"]);
    }
}
