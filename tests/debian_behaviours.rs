//! Where runtree behaved unlike runit for Debian's service directories (issue 13):
//! `sv` without SVDIR, SVDIR in services' environment, `supervise` links into a /run
//! that is empty at boot, and `sv -w up` of a `run` that exits at once.

use runtree::{binary, run, wait_for, wait_running, wait_state, write_script, Guard};
use runtree::{full_state, ServiceState};
use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

fn root() -> bool {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root for a private mount namespace (unshare, nsenter)");
        return false;
    }
    true
}

/// svdir on `scan` as PID 1 of PID and mount namespaces of its own whose /run is `run`
/// (a root svdir publishes in /run only as its system's tree, and what it publishes is
/// then the test's and nobody else's). Also the host's pid of that svdir.
fn svdir_with_private_run(scan: &Path, run: &Path) -> (Guard, u32) {
    let guard = Guard::spawn(
        Command::new("unshare")
            .args(["--pid", "--fork", "--kill-child", "--mount-proc"])
            .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
            .arg(r#"mount --bind "$1" /run && exec "$2" "$3""#)
            .arg("sh")
            .arg(run)
            .arg(binary("svdir"))
            .arg(scan)
            .env_remove("SVDIR")
            .stdin(Stdio::null()),
    );
    let children = format!("/proc/{0}/task/{0}/children", guard.pid());
    let mut svdir = 0;
    assert!(wait_for(&[], WAIT, || {
        svdir = fs::read_to_string(&children)
            .ok()
            .and_then(|c| c.split_whitespace().next()?.parse().ok())
            .unwrap_or(0);
        svdir != 0
    }));
    (guard, svdir)
}

/// `sv ARGS` in svdir's namespaces, without SVDIR.
fn sv_inside(svdir: u32, args: &[&str]) -> (i32, String, String) {
    run(
        Command::new("nsenter")
            .arg("-t")
            .arg(svdir.to_string())
            .args(["-p", "-m", "--"])
            .arg(binary("sv"))
            .args(args)
            .env_remove("SVDIR"),
        WAIT,
    )
}

#[test]
fn sv_without_svdir_finds_the_running_tree_and_services_get_svdir() {
    runtree::skip_unless!(root());
    let dir = tempfile::tempdir().unwrap();
    let scan = dir.path().join("service");
    let run_dir = dir.path().join("run");
    fs::create_dir_all(scan.join("plain")).unwrap();
    fs::create_dir_all(scan.join("native")).unwrap();
    fs::create_dir(&run_dir).unwrap();
    write_script(
        &scan.join("plain/run"),
        "#!/bin/sh\necho \"$SVDIR\" > ../plain.svdir\nexec sleep 1000\n",
    );
    fs::write(
        scan.join("native/service.yaml"),
        "exec: sh -c 'echo \"$SVDIR\" > ../native.svdir; exec sleep 1000'\nlog: none\n",
    )
    .unwrap();
    let (mut guard, svdir) = svdir_with_private_run(&scan, &run_dir);
    wait_running(&scan.join("plain"), WAIT);
    wait_running(&scan.join("native"), WAIT);

    let published = run_dir.join("runtree/scandir");
    assert!(
        wait_for(&[&run_dir], WAIT, || published.exists()),
        "nothing published in /run/runtree"
    );
    assert_eq!(
        fs::read_to_string(&published).unwrap(),
        format!("{}\n", scan.display())
    );
    for name in ["plain", "native"] {
        let file = scan.join(format!("{name}.svdir"));
        assert!(wait_for(&[&scan], WAIT, || fs::read_to_string(&file)
            .is_ok_and(|t| t.ends_with('\n'))));
        assert_eq!(
            fs::read_to_string(&file).unwrap(),
            format!("{}\n", scan.display()),
            "SVDIR in {name}'s environment"
        );
    }

    let (code, out, err) = sv_inside(svdir, &["status", "plain"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("run: plain: (pid "), "{out}{err}");
    // Debian's invoke-run: `sv d NAME` with no SVDIR, from anywhere.
    let (code, out, err) = sv_inside(svdir, &["d", "native"]);
    assert_eq!(code, 0, "{out}{err}");
    wait_state(&scan.join("native"), WAIT, |s| {
        s.state == ServiceState::Down
    })
    .unwrap_or_else(|| panic!("native not down: {:?}", full_state(&scan.join("native"))));

    // A svdir that is gone is not followed: the file is withdrawn at its exit, and a
    // stale one (a killed svdir's) names a directory nobody scans.
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(svdir as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    guard
        .wait_exit(WAIT)
        .expect("svdir's namespace never ended");
    assert!(!published.exists(), "published file left behind");
}

/// A service directory with a `supervise` link to `target`, as Debian's.
fn debian_style(scan: &Path, name: &str, target: &Path, run: &str) {
    let dir = scan.join(name);
    fs::create_dir_all(&dir).unwrap();
    write_script(&dir.join("run"), run);
    symlink(target, dir.join("supervise")).unwrap();
}

fn runsv(scan: &Path, name: &str) -> Guard {
    Guard::spawn(
        Command::new(binary("runsv"))
            .arg(name)
            .current_dir(scan)
            .stdin(Stdio::null()),
    )
}

#[test]
fn a_supervise_link_into_a_missing_directory_tree_is_created_whole() {
    let dir = tempfile::tempdir().unwrap();
    let scan = dir.path().join("service");
    let target = dir.path().join("run/runit/supervise/db");
    debian_style(&scan, "db", &target, "#!/bin/sh\nexec sleep 1000\n");
    let _db = runsv(&scan, "db");
    wait_running(&scan.join("db"), WAIT);
    assert!(target.join("status").exists());
}

#[test]
fn a_dependent_starts_once_its_dependencys_dangling_supervise_link_comes_to_life() {
    let dir = tempfile::tempdir().unwrap();
    let scan = dir.path().join("service");
    // The link's target appears only with db's runsv (its parent exists: runit's runsv
    // could create it too, so only the watch is on trial here).
    let target = dir.path().join("run/runit/supervise/db");
    fs::create_dir_all(target.parent().unwrap()).unwrap();
    debian_style(&scan, "db", &target, "#!/bin/sh\nexec sleep 1000\n");
    fs::create_dir_all(scan.join("app")).unwrap();
    fs::write(
        scan.join("app/service.yaml"),
        "exec: sleep 1000\nafter: [db]\nlog: none\n",
    )
    .unwrap();
    let _app = runsv(&scan, "app");
    wait_state(&scan.join("app"), WAIT, |s| {
        s.state == ServiceState::Waiting
    })
    .unwrap_or_else(|| panic!("app not waiting: {:?}", full_state(&scan.join("app"))));
    let _db = runsv(&scan, "db");
    wait_running(&scan.join("db"), WAIT);
    wait_running(&scan.join("app"), WAIT);
}

#[test]
fn sv_w_up_of_a_run_that_exits_at_once_times_out_as_runit_s() {
    let dir = tempfile::tempdir().unwrap();
    let scan = dir.path().join("service");
    fs::create_dir_all(scan.join("quits")).unwrap();
    write_script(&scan.join("quits/run"), "#!/bin/sh\nexit 1\n");
    fs::write(scan.join("quits/down"), "").unwrap();
    let _runsv = runsv(&scan, "quits");
    assert!(wait_for(&[&scan.join("quits")], WAIT, || scan
        .join("quits/supervise/status")
        .exists()));
    let (code, out, err) = run(
        Command::new(binary("sv"))
            .args(["-w", "2", "up", "quits"])
            .env("SVDIR", &scan),
        WAIT,
    );
    assert!(out.starts_with("timeout: "), "{out}{err}");
    assert_eq!(code, 1, "{out}{err}");
}

#[test]
fn an_unprivileged_tree_is_found_through_xdg_runtime_dir() {
    runtree::skip_unless!(root());
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    const NOBODY: u32 = 65534;
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let scan = dir.path().join("service");
    let xdg = dir.path().join("xdg");
    fs::create_dir_all(scan.join("plain")).unwrap();
    fs::create_dir(&xdg).unwrap();
    write_script(&scan.join("plain/run"), "#!/bin/sh\nexec sleep 1000\n");
    for path in [&scan, &scan.join("plain"), &xdg] {
        nix::unistd::chown(
            path.as_path(),
            Some(nix::unistd::Uid::from_raw(NOBODY)),
            Some(nix::unistd::Gid::from_raw(NOBODY)),
        )
        .unwrap();
    }
    let as_nobody = |command: &mut Command| {
        command
            .uid(NOBODY)
            .gid(NOBODY)
            .env("XDG_RUNTIME_DIR", &xdg)
            .env_remove("SVDIR")
            .stdin(Stdio::null());
    };
    let mut svdir = Command::new(binary("svdir"));
    svdir.arg(&scan);
    as_nobody(&mut svdir);
    let _svdir = Guard::spawn(&mut svdir);
    wait_running(&scan.join("plain"), WAIT);
    let published = xdg.join("runtree/scandir");
    assert!(wait_for(&[&xdg], WAIT, || published.exists()));
    assert_eq!(
        fs::read_to_string(&published).unwrap(),
        format!("{}\n", scan.display())
    );
    let mut sv = Command::new(binary("sv"));
    sv.args(["status", "plain"]);
    as_nobody(&mut sv);
    let (code, out, err) = run(&mut sv, WAIT);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("run: plain: (pid "), "{out}{err}");
}
