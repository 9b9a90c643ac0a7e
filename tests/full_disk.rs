//! A full disk under supervise/: runsv cannot make a new file there, and `sv` must not
//! act on, or report success from, a status runsv could not rewrite. The disk is a small
//! tmpfs mounted in a private mount namespace of the test's own thread (root only), so
//! nothing outside the test sees it.

use nix::libc;
use runtree::WAIT;
use runtree::{alive, binary, run, write_script};
use std::ffi::CString;
use std::fs;
use std::io::Write;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::Command;

/// Fills the file system at `dir`: its inodes, then its blocks.
fn fill(dir: &Path) {
    let mut count = 0;
    while fs::File::create(dir.join(format!("filler{count}"))).is_ok() {
        count += 1;
    }
    let mut filler = fs::OpenOptions::new()
        .append(true)
        .open(dir.join("filler0"))
        .unwrap();
    let block = [0u8; 4096];
    while filler.write_all(&block).is_ok() {}
}

/// Waits until `pid` (not a child of this process) has exited, through a pidfd.
fn wait_gone(pid: u32) {
    // SAFETY: pidfd_open(2) by its system call; the fd is owned at once.
    let fd = unsafe { nix::libc::syscall(nix::libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return; // already gone
    }
    // SAFETY: the system call just returned this fd.
    let pidfd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let mut fds = [nix::poll::PollFd::new(
        std::os::fd::AsFd::as_fd(&pidfd),
        nix::poll::PollFlags::POLLIN,
    )];
    nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(10_000u16)).unwrap();
    assert!(!alive(pid), "{pid} still runs");
}

/// mount(2), by libc (nix is built here without its mount feature).
fn mount(source: &str, target: &Path, kind: &str, flags: libc::c_ulong, data: &str) {
    let c = |text: &[u8]| CString::new(text).unwrap();
    let (source, target) = (c(source.as_bytes()), c(target.as_os_str().as_bytes()));
    let (kind, data) = (c(kind.as_bytes()), c(data.as_bytes()));
    // SAFETY: NUL-terminated strings that outlive the call.
    let result = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            kind.as_ptr(),
            flags,
            data.as_ptr().cast(),
        )
    };
    assert_eq!(result, 0, "mount: {}", std::io::Error::last_os_error());
}

fn with_the_disk_full(root: &Path) {
    // SAFETY: unshare(2) of this thread's mount namespace; nothing is shared with it.
    let result = unsafe { libc::unshare(libc::CLONE_NEWNS) };
    assert_eq!(result, 0, "unshare: {}", std::io::Error::last_os_error());
    // Nothing mounted from here on propagates to the machine.
    mount(
        "none",
        Path::new("/"),
        "",
        libc::MS_REC | libc::MS_PRIVATE,
        "",
    );
    let service = root.join("a");
    write_script(&service.join("run"), "#!/bin/sh\nexec sleep 1000\n");
    let supervise = service.join("supervise");
    fs::create_dir(&supervise).unwrap();
    mount(
        "tmpfs",
        &supervise,
        "tmpfs",
        0,
        "size=256k,nr_inodes=32,mode=0700",
    );
    let _runsv = runtree::runsv(&service);
    let first = runtree::wait_running(&service, WAIT);

    fill(&supervise);
    let sv = || Command::new(binary("sv"));
    let (code, _, _) = run(sv().arg("down").arg(&service), WAIT);
    assert_eq!(code, 0);
    wait_gone(first);

    // Down, though runsv could not write a new status file: `up` must reach runsv and
    // `ok:` name a process that runs.
    let (code, stdout, stderr) = run(sv().args(["-w", "5", "up"]).arg(&service), WAIT);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let pid: u32 = stdout
        .split("(pid ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("no pid in {stdout:?}"));
    assert_ne!(pid, first, "ok: from the stale status: {stdout}");
    assert!(alive(pid), "ok: names {pid}, which does not run: {stdout}");
}

#[test]
fn with_the_disk_full_sv_up_starts_the_service_and_reports_only_what_runs() {
    runtree::skip_unless!(runtree::as_root("mounting a tmpfs needs root"));
    let root = tempfile::tempdir().unwrap();
    let path = root.path().to_path_buf();
    // A thread of its own: the mount namespace is left with it.
    let outcome = std::thread::spawn(move || with_the_disk_full(&path)).join();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
