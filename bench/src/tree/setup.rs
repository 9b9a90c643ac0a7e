//! Laying out and starting a tree of plain services, and waiting until all of them run.

use super::running::Tree;
use super::scanner::{Definition, ScanSuite, Scanner};
use nix::libc;
use std::fs::{self, File};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// failing early if the scanner dies. Polls (1 ms) through the services in order,
/// waiting only on the first one not yet up, so each pass is cheap.
pub fn wait_all_running(
    suite: &ScanSuite,
    tree: &Tree,
    services: &[PathBuf],
    timeout: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let mut next = 0;
    let mut checked = Instant::now();
    while next < services.len() {
        if suite.running_pid(&services[next]).is_some() {
            next += 1;
            continue;
        }
        let now = Instant::now();
        if now >= deadline || (now - checked >= Duration::from_millis(50) && !tree.alive()) {
            let what = if tree.alive() {
                format!("not all running after {} s", timeout.as_secs())
            } else {
                tree.died()
            };
            let up = services
                .iter()
                .filter(|s| suite.running_pid(s).is_some())
                .count();
            return Err(format!(
                "{what}: {up} of {} services came up{}",
                services.len(),
                if tree.alive() {
                    tree.log_excerpt()
                } else {
                    String::new()
                }
            ));
        }
        if now - checked >= Duration::from_millis(50) {
            checked = now;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

/// Marks `dir` a top of directory hierarchies for ext2/3/4's inode allocator (`chattr
/// +T`), where it can: each directory made in it then starts in a block group of its
/// own choosing instead of the parent's. Without this, every turn's tree is allocated in
/// the block group where the previous turns' trees were just deleted, and ext4 without
/// a journal skips each inode deleted in the last minutes (`recently_deleted`, one
/// buffer lookup per inode, from the start of the group at every allocation): a
/// thousand services' files then cost seconds of kernel time, in proportion to how many
/// the previous suite deleted. A boot allocates among no such inodes. Best effort:
/// other filesystems have no such flag.
pub fn mark_top_directory(dir: &Path) {
    const FS_TOPDIR_FL: libc::c_int = 0x0002_0000;
    let Ok(file) = File::open(dir) else { return };
    let mut flags: libc::c_int = 0;
    // SAFETY: both ioctls take a pointer to an int, which lives across the calls.
    unsafe {
        if libc::ioctl(file.as_raw_fd(), libc::FS_IOC_GETFLAGS, &mut flags) == 0 {
            flags |= FS_TOPDIR_FL;
            libc::ioctl(file.as_raw_fd(), libc::FS_IOC_SETFLAGS, &flags);
        }
    }
}

/// Creates `count` plain services `svc-0000`… in `dir`; returns their directories.
pub fn populate(suite: &ScanSuite, dir: &Path, count: usize) -> Result<Vec<PathBuf>, String> {
    let services = (0..count)
        .map(|i| {
            let name = format!("svc-{i:04}");
            suite
                .create_service(dir, &name, Definition::Plain)
                .map_err(|e| format!("creating {name}: {e}"))
        })
        .collect::<Result<Vec<PathBuf>, String>>()?;
    age(dir)?;
    Ok(services)
}

/// Sets the scan directory's mtime a minute back, as for a directory set up before
/// its scanner starts (at boot, say). runsvdir sleeps a second before its first scan
/// if the directory changed within the current second, which the bench's own set-up
/// would otherwise always trigger.
pub fn age(dir: &Path) -> Result<(), String> {
    let past = std::time::SystemTime::now() - Duration::from_secs(60);
    File::open(dir)
        .and_then(|file| file.set_times(fs::FileTimes::new().set_modified(past)))
        .map_err(|e| format!("setting the mtime of {}: {e}", dir.display()))
}

/// A tree of `count` plain services, started and all running.
pub fn start_tree(
    suite: &ScanSuite,
    label: &str,
    count: usize,
) -> Result<(Tree, Vec<PathBuf>), String> {
    let dir = suite
        .fresh_dir(label)
        .map_err(|e| format!("creating the scan directory: {e}"))?;
    let services = populate(suite, &dir, count)?;
    let tree = suite
        .start(&dir)
        .map_err(|e| format!("starting {}: {e}", suite.scanner.scanner_name()))?;
    let timeout = Duration::from_secs(30 + count as u64 / 20);
    wait_all_running(suite, &tree, &services, timeout)?;
    Ok((tree, services))
}

/// Checks that the scanner runs a service at all, and (for runtree) that the
/// supervisor it started is runtree's runsv, so that a scanner that does not work yet
/// shows as `n/a` with the reason instead of failing every metric.
pub fn probe(suite: &ScanSuite) -> Result<(), String> {
    let (tree, _) = start_tree(suite, "probe", 1).map_err(|reason| {
        format!(
            "{} does not run a service: {reason}",
            suite.scanner.scanner_name()
        )
    })?;
    if suite.scanner == Scanner::Runtree {
        let expected = fs::canonicalize(&suite.supervisor).unwrap_or_default();
        for child in tree.children() {
            let exe = fs::read_link(format!("/proc/{child}/exe")).unwrap_or_default();
            if exe != expected {
                return Err(format!(
                    "svdir started {}, not runtree's runsv ({})",
                    exe.display(),
                    expected.display()
                ));
            }
        }
    }
    Ok(())
}
