//! Where a service's `supervise/` is, for every program: in the service directory
//! (runit's place, or wherever a `supervise` symlink there points), or, when the
//! service directory cannot be written (a read-only root, `podman run --read-only`),
//! under the state root: `ROOT/<the service directory's canonical path>/supervise`.
//!
//! ROOT is `RUNTREE_SUPERVISE_ROOT` (an absolute path), else `/run/runtree/supervise`
//! for root and `$XDG_RUNTIME_DIR/runtree/supervise` for anyone else (the directory
//! svdir publishes its scan directory in, runsv::published). The canonical path makes
//! the place unique for each service directory and the same whichever link it is
//! reached through (`/service/web` → `/etc/sv/web`); a `log/` service's is
//! `ROOT/…/web/log/supervise`.
//!
//! runsv creates the state root's only when it cannot create `supervise` in the
//! service directory (EROFS, EACCES, EPERM), with its parents. Readers (svdir, sv, a
//! dependent's runsv) take the service directory's own `supervise` entry when there is
//! one, else the state root's when that exists: a writable tree never looks further
//! than one stat. svdir's sync control, `.svdir` in the scan directory, moves the same
//! way (`ROOT/<the scan directory's canonical path>/.svdir`). See docs/supervise.md.

use crate::supervise::SuperviseDir;
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

/// Names another state root (absolute).
pub const ROOT_VARIABLE: &str = "RUNTREE_SUPERVISE_ROOT";
/// runsv's exit status when it can create its `supervise/` nowhere: svdir then leaves
/// the service in error instead of starting runsv again and again (docs/svdir.md).
pub const EXIT_NO_STATE: i32 = 112;

/// The state root, if there is one for this user.
pub fn root() -> Option<PathBuf> {
    if let Some(root) = std::env::var_os(ROOT_VARIABLE)
        .map(PathBuf::from)
        .filter(|root| root.is_absolute())
    {
        return Some(root);
    }
    crate::published::own_dir().map(|dir| dir.join("supervise"))
}

/// The state root's `supervise/` for the service directory `service_dir` (relative to
/// `base`, or to the working directory; empty for the directory itself). None without
/// a state root, or when the directory cannot be resolved.
pub fn fallback_at(base: Option<BorrowedFd>, service_dir: &Path) -> Option<PathBuf> {
    fallback_in(&root()?, base, service_dir)
}

fn fallback_in(root: &Path, base: Option<BorrowedFd>, service_dir: &Path) -> Option<PathBuf> {
    fallback_entry_in(root, base, service_dir, "supervise")
}

/// The state root's place for the entry `name` of the directory `dir`: what a
/// read-only directory cannot hold (`supervise`; svdir's `.svdir` of a scan directory).
pub fn fallback_entry(dir: &Path, name: &str) -> Option<PathBuf> {
    fallback_entry_in(&root()?, None, dir, name)
}

fn fallback_entry_in(
    root: &Path,
    base: Option<BorrowedFd>,
    service_dir: &Path,
    name: &str,
) -> Option<PathBuf> {
    let path = match base {
        Some(fd) => PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd())).join(service_dir),
        None if service_dir.as_os_str().is_empty() => PathBuf::from("."),
        None => service_dir.to_path_buf(),
    };
    let canonical = fs::canonicalize(path).ok()?;
    let inside = canonical.strip_prefix("/").ok()?;
    Some(root.join(inside).join(name))
}

/// See [`fallback_at`].
pub fn fallback(service_dir: &Path) -> Option<PathBuf> {
    fallback_at(None, service_dir)
}

/// The `supervise/` of the service directory `service_dir` (relative to `base`, or
/// to the working directory): the directory's own `supervise` when that entry exists
/// (a directory, or a symlink, dangling or not: runit's) or when the state root has
/// none for it; else the state root's. The own one is `service_dir/supervise` (as
/// relative as `service_dir`), the state root's an absolute path (which openat takes
/// whatever its base).
pub fn locate_at(base: Option<BorrowedFd>, service_dir: &Path) -> PathBuf {
    locate_in(root().as_deref(), base, service_dir)
}

fn locate_in(root: Option<&Path>, base: Option<BorrowedFd>, service_dir: &Path) -> PathBuf {
    locate_entry_in(root, base, service_dir, "supervise")
}

/// As [`locate`] for the entry `name` of the directory `dir` (svdir's `.svdir`).
pub fn locate_entry(dir: &Path, name: &str) -> PathBuf {
    locate_entry_in(root().as_deref(), None, dir, name)
}

fn locate_entry_in(
    root: Option<&Path>,
    base: Option<BorrowedFd>,
    service_dir: &Path,
    name: &str,
) -> PathBuf {
    let own = service_dir.join(name);
    if entry_exists_at(base, &own) {
        return own;
    }
    match root.and_then(|root| fallback_entry_in(root, base, service_dir, name)) {
        Some(fallback) if fs::symlink_metadata(&fallback).is_ok_and(|m| m.is_dir()) => fallback,
        _ => own,
    }
}

/// See [`locate_at`].
pub fn locate(service_dir: &Path) -> PathBuf {
    locate_at(None, service_dir)
}

/// Whether anything is at `path` (a stat that fails otherwise than "not there", an
/// unsearchable directory say, counts as something: the caller then fails on it with
/// the reason, as runit would).
fn entry_exists_at(base: Option<BorrowedFd>, path: &Path) -> bool {
    let fd = base.map(|fd| fd.as_raw_fd());
    match nix::sys::stat::fstatat(fd, path, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(_) => true,
        Err(nix::errno::Errno::ENOENT | nix::errno::Errno::ENOTDIR) => false,
        Err(_) => true,
    }
}

/// Whether a failure to create `supervise` in the service directory means "this
/// directory cannot be written here": the state root is tried then.
pub fn cannot_write_here(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(nix::libc::EROFS | nix::libc::EACCES | nix::libc::EPERM)
    )
}

/// Creates the state root's `supervise/` (or `.svdir`) 0700, and its missing parents
/// 0755.
pub fn create(fallback: &Path) -> io::Result<()> {
    if let Some(parent) = fallback.parent() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(parent)?;
    }
    match fs::DirBuilder::new().mode(0o700).create(fallback) {
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        result => result,
    }
}

/// The `directory=DEV:INO` line of the state file of the service directory
/// `service_dir`: the directory's own identity wherever its `supervise/` is.
pub fn directory_field(service_dir: &Path) -> String {
    crate::supervise::directory_field(&SuperviseDir {
        path: service_dir.join("supervise"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn the_own_supervise_wins_then_the_state_roots_then_the_own_again() {
        let scratch = tempfile::tempdir().unwrap();
        let root = scratch.path().join("state");
        let service = scratch.path().join("sv/web");
        fs::create_dir_all(&service).unwrap();
        let canonical = fs::canonicalize(&service).unwrap();
        let expected = root
            .join(canonical.strip_prefix("/").unwrap())
            .join("supervise");
        let root_path = root.as_path();
        let root = Some(root_path);
        let locate = |dir: &Path| locate_in(root, None, dir);
        // Neither exists: the own one (what runsv tries first).
        assert_eq!(locate(&service), service.join("supervise"));
        assert_eq!(locate_in(None, None, &service), service.join("supervise"));
        let fallback = |dir: &Path| fallback_in(root_path, None, dir);
        assert_eq!(fallback(&service), Some(expected.clone()));
        // Through a link to the directory: the same place.
        let link = scratch.path().join("link");
        std::os::unix::fs::symlink(&service, &link).unwrap();
        assert_eq!(fallback(&link), Some(expected.clone()));
        create(&expected).unwrap();
        assert_eq!(locate(&service), expected);
        assert_eq!(locate(&link), expected);
        // Through a directory fd and a relative path.
        let dir = fs::File::open(scratch.path().join("sv")).unwrap();
        assert_eq!(
            locate_in(root, Some(dir.as_fd()), Path::new("web")),
            expected
        );
        // An own entry, even a dangling link, is runit's and wins.
        std::os::unix::fs::symlink("/nonexistent/x", service.join("supervise")).unwrap();
        assert_eq!(locate(&service), service.join("supervise"));
    }

    #[test]
    fn created_with_parents_and_exact_modes() {
        use std::os::unix::fs::PermissionsExt;
        let scratch = tempfile::tempdir().unwrap();
        let target = scratch.path().join("a/b/supervise");
        create(&target).unwrap();
        create(&target).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&target) & 0o077, 0, "supervise/ is private");
        assert!(mode(&scratch.path().join("a/b")) & 0o700 == 0o700);
        assert!(cannot_write_here(&io::Error::from_raw_os_error(
            nix::libc::EROFS
        )));
        assert!(!cannot_write_here(&io::Error::from_raw_os_error(
            nix::libc::ENOSPC
        )));
    }
}
