//! svdir under attack: restarted while its children are still being forked, stopped
//! while one runsv never answers, and fed names that are not UTF-8. Real binaries on
//! temp dirs; every wait is bounded and event-driven; every process started is owned by
//! a Guard (its own process group, killed on drop) and every service seen is added to
//! its extra groups.

use nix::sys::signal::{kill, Signal};
use runtree::{binary, wait_for, Guard};
use std::fs::{self, OpenOptions};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

struct Tree {
    root: tempfile::TempDir,
}

impl Tree {
    fn new() -> Tree {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("scan")).unwrap();
        Tree { root }
    }
    fn path(&self, relative: &str) -> PathBuf {
        self.root.path().join(relative)
    }
    fn scan(&self) -> PathBuf {
        self.path("scan")
    }
    fn log(&self) -> String {
        String::from_utf8_lossy(&fs::read(self.path("svdir.log")).unwrap_or_default()).into_owned()
    }
    /// `svdir scan`, its output appended to svdir.log, with `env` added.
    fn svdir_command(&self, env: &[(&str, &str)]) -> Command {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path("svdir.log"))
            .unwrap();
        let mut command = Command::new(binary("svdir"));
        command
            .arg(self.scan())
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        command
    }
}

/// The inode of `.svdir/synced`: svdir replaces it (rename) once it holds the lock.
fn synced_inode(scan: &Path) -> Option<u64> {
    fs::metadata(scan.join(".svdir/synced"))
        .ok()
        .map(|m| m.ino())
}

/// svdir SIGKILLed just after it took the scan directory's lock, while it forks a batch
/// of 60 runsv, and restarted at once, 100 times: every new svdir must get the lock.
/// Today's flock is shared by every child forked before its exec, so a child still
/// between fork and exec when svdir dies keeps the directory locked.
#[test]
fn an_svdir_killed_while_spawning_and_restarted_at_once_always_gets_the_lock() {
    let tree = Tree::new();
    for i in 0..60 {
        fs::create_dir_all(tree.scan().join(format!("s{i:02}"))).unwrap();
    }
    // A runsv that exits at once: every svdir has the whole batch to fork.
    let env = [("RUNTREE_RUNSV", "/bin/true")];
    let mut previous: Option<Guard> = None;
    let mut refused = 0;
    for round in 0..100 {
        let before = synced_inode(&tree.scan());
        let mut svdir = Guard::spawn(&mut tree.svdir_command(&env));
        let mut exited = None;
        let locked = wait_for(&[&tree.scan().join(".svdir")], WAIT, || {
            if let Ok(Some(status)) = svdir.child.try_wait() {
                exited = Some(status);
                return true;
            }
            synced_inode(&tree.scan()).is_some_and(|ino| Some(ino) != before)
        });
        assert!(locked, "round {round}: svdir neither locked nor exited");
        // Only now is the predecessor's group cleaned up: its children had all the
        // time they needed to hold the lock.
        drop(previous.take());
        if let Some(status) = exited {
            assert_eq!(status.code(), Some(111), "round {round}: {}", tree.log());
            refused += 1;
            continue;
        }
        kill(svdir.pid(), Signal::SIGKILL).unwrap();
        svdir.child.wait().unwrap();
        previous = Some(svdir);
    }
    drop(previous);
    assert_eq!(
        refused,
        0,
        "svdir restarts refused with 111 out of 100:\n{}",
        tree.log()
            .lines()
            .filter(|l| l.contains("fatal"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
