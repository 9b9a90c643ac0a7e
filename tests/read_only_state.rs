//! Service directories on a read-only file system (a container's `--read-only` root):
//! each runsv keeps its `supervise/` in the state root instead (runsv/src/state_dir.rs),
//! and svdir, sv and a dependent's runsv find it there. Where no `supervise/` can be
//! made at all, the service is in error, its runsv is not started again and again, and
//! the tree's stop says so and exits 1.
//!
//! svdir runs in a private mount namespace where the scan directory is a read-only bind
//! mount of itself (`unshare --mount`: needs root; says so and passes otherwise). The
//! test reads the same directories from outside, where they are writable: only the
//! state root can tell it where the state is.

use nix::sys::signal::{kill, Signal};
use runtree::svdir_tree::Tree;
use runtree::{binary, run, wait_for, wait_running, Guard};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

/// One state root for the whole run, set once in this process's environment too: the
/// library's readers (wait_running, full_state) find the state through it.
fn state_root() -> &'static Path {
    static ROOT: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    ROOT.get_or_init(|| {
        let root = tempfile::tempdir().unwrap();
        std::env::set_var("RUNTREE_SUPERVISE_ROOT", root.path());
        root
    })
    .path()
}

fn can_run() -> bool {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root for a private mount namespace (unshare --mount)");
        return false;
    }
    true
}

/// svdir on the tree's scan directory, with `read_only` bound read-only onto itself
/// (each of them) first.
fn svdir_read_only(tree: &Tree, read_only: &[&Path], state_root: &Path) -> Guard {
    let mut script = String::from("set -e\n");
    for path in read_only {
        let p = path.display();
        script.push_str(&format!(
            "mount --bind '{p}' '{p}'\nmount -o remount,bind,ro '{p}'\n"
        ));
    }
    script.push_str("exec \"$0\" \"$1\"\n");
    let svdir = binary("svdir");
    let mut wrapped = Command::new("unshare");
    wrapped
        .args([
            "--mount",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
            &script,
        ])
        .arg(&svdir)
        .arg(tree.scan())
        .env("RUNTREE_SUPERVISE_ROOT", state_root)
        .env_remove("RUNTREE_INIT")
        .env_remove("RUNTREE_ON_FAILURE")
        .stdin(std::process::Stdio::null());
    // svdir's output goes where the tree's svdir would write it.
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(tree.path("svdir.log"))
        .unwrap();
    wrapped.stdout(log.try_clone().unwrap()).stderr(log);
    Guard::spawn(&mut wrapped)
}

fn sv(args: &[&str], svdir: &Path, state_root: &Path) -> (i32, String) {
    let (code, out, err) = run(
        Command::new(binary("sv"))
            .args(args)
            .env("SVDIR", svdir)
            .env("RUNTREE_SUPERVISE_ROOT", state_root),
        WAIT,
    );
    (code, format!("{out}{err}"))
}

#[test]
fn state_moves_to_the_state_root_and_everything_finds_it() {
    if !can_run() {
        return;
    }
    let tree = Tree::new();
    let state_root = state_root();
    let db = tree.define("db", "exec: sleep 1000\nlog: none\ntest: 'true'\n");
    let web = tree.define("web", "exec: sleep 1000\nlog: none\nafter: [db]\n");
    tree.link("db", "db");
    tree.link("web", "web");
    let mut guard = svdir_read_only(&tree, &[&tree.path("defs"), &tree.scan()], state_root);
    let db_pid = wait_running(&db, WAIT);
    let web_pid = wait_running(&web, WAIT);
    guard
        .extra_groups
        .push(nix::unistd::Pid::from_raw(db_pid as i32));
    guard
        .extra_groups
        .push(nix::unistd::Pid::from_raw(web_pid as i32));
    let canonical = std::fs::canonicalize(&db).unwrap();
    let kept = state_root
        .join(canonical.strip_prefix("/").unwrap())
        .join("supervise/state");
    assert!(kept.is_file(), "no state at {}", kept.display());
    assert!(
        !db.join("supervise").exists(),
        "nothing in the read-only directory"
    );
    let (code, text) = sv(&["status", "web", "db"], &tree.scan(), state_root);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.starts_with(&format!("run: web: (pid {web_pid})"))
            && text.contains(&format!("run: db: (pid {db_pid})")),
        "{text}"
    );
    let (code, text) = sv(&["health"], &tree.scan(), state_root);
    assert_eq!(code, 0, "{text}");
    // svdir's sync control moved too.
    let (code, text) = sv(&["sync"], &tree.scan(), state_root);
    assert_eq!(code, 0, "{text}");
    assert!(!tree.log().contains("no sync control"), "{}", tree.log());
    // Control works through the state root as well.
    let (code, text) = sv(&["-w", "10", "restart", "web"], &tree.scan(), state_root);
    assert_eq!(code, 0, "{text}");
    kill(guard.pid(), Signal::SIGTERM).unwrap();
    let status = guard.wait_exit(WAIT).expect("svdir exits");
    assert_eq!(status.code(), Some(0), "{}", tree.log());
    assert!(
        tree.log().contains("stopped 2 services cleanly"),
        "{}",
        tree.log()
    );
}

#[test]
fn no_state_anywhere_is_an_error_once_and_a_failed_stop() {
    if !can_run() {
        return;
    }
    let tree = Tree::new();
    let state_root = state_root();
    tree.define("web", "exec: sleep 1000\nlog: none\n");
    tree.link("web", "web");
    // The state root is read-only too, in svdir's namespace only.
    let mut guard = svdir_read_only(
        &tree,
        &[&tree.path("defs"), &tree.scan(), state_root],
        state_root,
    );
    let log = tree.path("svdir.log");
    assert!(
        wait_for(&[&log], WAIT, || tree.log().contains("not started again")),
        "{}",
        tree.log()
    );
    kill(guard.pid(), Signal::SIGTERM).unwrap();
    let status = guard.wait_exit(WAIT).expect("svdir exits");
    let text = tree.log();
    assert_eq!(status.code(), Some(1), "{text}");
    // runsv's reasons, once: no retry loop.
    assert_eq!(
        text.matches("fatal: unable to mkdir supervise: read-only file system; nor ")
            .count(),
        1,
        "{text}"
    );
    assert!(
        text.contains("svdir: web: error: runsv exited 112: it can create supervise/ nowhere"),
        "{text}"
    );
    assert!(
        text.contains("svdir: web: ended in error: its runsv could create supervise/ nowhere"),
        "{text}"
    );
    assert!(!text.contains("cleanly"), "{text}");
}
