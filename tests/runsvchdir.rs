//! svchdir installed as `runsvchdir` (a symlink, as scripts/build-static installs it):
//! the same level switch under runit's name, with runit's name in its messages and
//! runit's `$RUNSVDIR` honoured.

use runtree::svdir_tree::assert_runlevels;
use runtree::{binary, run};
use std::fs;
use std::os::unix::fs::symlink;
use std::process::Command;
use std::time::Duration;

#[test]
fn runsvchdir_is_svchdir_under_runits_name() {
    let dir = tempfile::tempdir().unwrap();
    let levels = dir.path().join("levels");
    fs::create_dir_all(levels.join("one")).unwrap();
    fs::create_dir_all(levels.join("two")).unwrap();
    symlink("one", levels.join("current")).unwrap();
    let runsvchdir = dir.path().join("runsvchdir");
    symlink(binary("svchdir"), &runsvchdir).unwrap();
    let call = |args: &[&str]| {
        run(
            Command::new(&runsvchdir)
                .args(args)
                .env_remove("RUNTREE_RUNSVDIR")
                .env("RUNSVDIR", &levels),
            Duration::from_secs(10),
        )
    };
    assert_eq!(call(&["two"]), (0, String::new(), String::new()));
    assert_runlevels(&levels, "two", "one");
    let (code, _, stderr) = call(&["two"]);
    assert_eq!((code, stderr.as_str()), (0, "runsvchdir: two: current.\n"));
    let (code, _, stderr) = call(&["nine"]);
    assert_eq!(code, 111);
    assert!(stderr.starts_with("runsvchdir: fatal: "), "{stderr}");
    let (code, _, stderr) = call(&[]);
    assert_eq!((code, stderr.as_str()), (100, "usage: runsvchdir LEVEL\n"));
}
