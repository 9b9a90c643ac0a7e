//! The environment init started with (a container's `-e` and image `ENV`), saved for
//! the tree: one file per variable in `/run/runtree/env/` (`RUNTREE_ENV_DIR` names
//! another), named after it and holding its value exactly, as s6-overlay keeps
//! /run/s6/container_environment/. A YAML service takes it with `container_env`
//! (runsv::container_env reads it, and names the directory), a runit `run` with
//! `chpst -e /run/runtree/env`. The directory is root's alone (0700, files 0600):
//! variables often carry secrets.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Where to save it: `RUNTREE_ENV_DIR`, else /run/runtree/env.
pub use runsv::container_env::dir;

/// Whether a variable can be saved under its name: a file name (no `/`, not `.`/`..`).
fn savable(name: &[u8]) -> bool {
    !name.is_empty() && name != b"." && name != b".." && !name.contains(&b'/')
}

/// Saves `variables` in `dir`, replacing what a previous init left there. Returns how
/// many were saved, and the names left out (not a file name).
pub fn save(dir: &Path, variables: &[(OsString, OsString)]) -> io::Result<(usize, Vec<String>)> {
    // 0700 with its missing parents 0755, as runsv makes its state root.
    runsv::state_dir::create(dir)?;
    // A restarted container's /run may still hold the last run's variables.
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if fs::symlink_metadata(&path)?.is_dir() {
            fs::remove_dir_all(&path)?;
        } else {
            fs::remove_file(&path)?;
        }
    }
    let mut saved = 0;
    let mut left_out = Vec::new();
    for (name, value) in variables {
        if !savable(name.as_bytes()) {
            left_out.push(name.to_string_lossy().into_owned());
            continue;
        }
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(dir.join(name))?;
        io::Write::write_all(&mut file, value.as_bytes())?;
        saved += 1;
    }
    Ok((saved, left_out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_file_per_variable_and_nothing_stale() {
        let scratch = std::env::temp_dir().join(format!("init-env-test-{}", std::process::id()));
        let dir = scratch.join("run/runtree/env");
        let var = |n: &str, v: &str| (OsString::from(n), OsString::from(v));
        save(&dir, &[var("OLD", "1")]).unwrap();
        let (saved, left_out) = save(
            &dir,
            &[var("FOO", "bar"), var("MULTI", "a\nb\n"), var("A/B", "x")],
        )
        .unwrap();
        assert_eq!((saved, left_out), (2, vec!["A/B".to_string()]));
        assert_eq!(fs::read_to_string(dir.join("FOO")).unwrap(), "bar");
        assert_eq!(fs::read_to_string(dir.join("MULTI")).unwrap(), "a\nb\n");
        assert!(!dir.join("OLD").exists());
        fs::remove_dir_all(&scratch).unwrap();
    }
}
