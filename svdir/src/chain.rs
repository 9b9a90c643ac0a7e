//! Where the scan directory really is. `DIR` may be a symlink, or a chain of them, as in
//! runit's runlevels (`/service` → `/etc/runit/runsvdir/current` → `default`): the
//! directory scanned is the end of the chain, and every directory that holds a link of
//! the chain is watched, so that retargeting any link (`svchdir`, runit's `runsvchdir`)
//! is seen at once.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

/// (st_dev, st_ino): what identifies a directory, whatever names lead to it.
pub type Id = (u64, u64);

/// The kernel's limit on symlinks followed in one path resolution.
const MAX_LINKS: usize = 40;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolution {
    /// The directory at the end of the chain, without any symlink in it.
    pub dir: PathBuf,
    pub id: Id,
    /// The symlinks met on the way, each as (its directory, symlink-free; its name).
    pub links: Vec<(PathBuf, OsString)>,
}

enum Step {
    Parent,
    Name(OsString),
}

fn steps(path: &Path) -> impl Iterator<Item = Step> + '_ {
    path.components().filter_map(|component| match component {
        Component::ParentDir => Some(Step::Parent),
        Component::Normal(name) => Some(Step::Name(name.to_owned())),
        Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
    })
}

/// Resolves an absolute `path` one component at a time, as the kernel does, noting the
/// symlinks on the way.
pub fn resolve(path: &Path) -> io::Result<Resolution> {
    let mut pending: VecDeque<Step> = steps(path).collect();
    let mut resolved = PathBuf::from("/");
    let mut links_met: Vec<(PathBuf, OsString)> = Vec::new();
    let mut links = 0;
    while let Some(step) = pending.pop_front() {
        match step {
            Step::Parent => {
                resolved.pop();
            }
            Step::Name(name) => {
                let candidate = resolved.join(&name);
                let metadata = fs::symlink_metadata(&candidate)?;
                if !metadata.file_type().is_symlink() {
                    resolved = candidate;
                    continue;
                }
                links += 1;
                if links > MAX_LINKS {
                    return Err(io::Error::from_raw_os_error(nix::libc::ELOOP));
                }
                let target = fs::read_link(&candidate)?;
                let link = (resolved.clone(), name);
                if !links_met.contains(&link) {
                    links_met.push(link);
                }
                if target.is_absolute() {
                    resolved = PathBuf::from("/");
                }
                for step in steps(&target).collect::<Vec<_>>().into_iter().rev() {
                    pending.push_front(step);
                }
            }
        }
    }
    let metadata = fs::metadata(&resolved)?;
    if !metadata.is_dir() {
        return Err(io::Error::from_raw_os_error(nix::libc::ENOTDIR));
    }
    Ok(Resolution {
        dir: resolved,
        id: (metadata.dev(), metadata.ino()),
        links: links_met,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn a_plain_directory_has_no_links() {
        let root = tempfile::tempdir().unwrap();
        let base = fs::canonicalize(root.path()).unwrap();
        let dir = base.join("scan");
        fs::create_dir(&dir).unwrap();
        let r = resolve(&dir).unwrap();
        assert_eq!(r.dir, dir);
        assert!(r.links.is_empty());
        let r = resolve(&base.join("scan/./../scan")).unwrap();
        assert_eq!(r.dir, dir);
    }

    #[test]
    fn a_runlevel_chain_names_every_link_parent() {
        let root = tempfile::tempdir().unwrap();
        let base = fs::canonicalize(root.path()).unwrap();
        let levels = base.join("etc/runsvdir");
        fs::create_dir_all(levels.join("default")).unwrap();
        fs::create_dir_all(levels.join("single")).unwrap();
        symlink("default", levels.join("current")).unwrap();
        symlink(levels.join("current"), base.join("service")).unwrap();
        let r = resolve(&base.join("service")).unwrap();
        assert_eq!(r.dir, levels.join("default"));
        assert_eq!(
            r.links,
            vec![
                (base.clone(), OsString::from("service")),
                (levels.clone(), OsString::from("current"))
            ]
        );
        let default_id = r.id;
        // runsvchdir's way: a new link renamed over the old one.
        symlink("single", levels.join("current.new")).unwrap();
        fs::rename(levels.join("current.new"), levels.join("current")).unwrap();
        let r = resolve(&base.join("service")).unwrap();
        assert_eq!(r.dir, levels.join("single"));
        assert_ne!(r.id, default_id);
    }

    #[test]
    fn relative_links_with_dot_dot_and_loops() {
        let root = tempfile::tempdir().unwrap();
        let base = fs::canonicalize(root.path()).unwrap();
        fs::create_dir_all(base.join("a/b")).unwrap();
        fs::create_dir_all(base.join("c")).unwrap();
        fs::create_dir_all(base.join("a/c")).unwrap();
        symlink("../c", base.join("a/b/up")).unwrap();
        let r = resolve(&base.join("a/b/up")).unwrap();
        assert_eq!(r.dir, base.join("a/c"));
        symlink("../../c", base.join("a/b/up2")).unwrap();
        assert_eq!(resolve(&base.join("a/b/up2")).unwrap().dir, base.join("c"));
        symlink("loop", base.join("loop")).unwrap();
        let error = resolve(&base.join("loop")).unwrap_err();
        assert_eq!(error.raw_os_error(), Some(nix::libc::ELOOP));
        fs::write(base.join("file"), "").unwrap();
        let error = resolve(&base.join("file")).unwrap_err();
        assert_eq!(error.raw_os_error(), Some(nix::libc::ENOTDIR));
        assert!(resolve(&base.join("missing")).is_err());
    }
}
