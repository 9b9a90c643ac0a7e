//! The environment runtree's init started with (a container's `-e` and image `ENV`),
//! as init saves it: one file per variable in `/run/runtree/env/` (`RUNTREE_ENV_DIR`
//! names another), named after the variable and holding its value, exactly, without a
//! newline: s6-overlay's /run/s6/container_environment/, and for a one-line value
//! daemontools' envdir format (`chpst -e /run/runtree/env` in a runit `run`). init
//! writes it (init/src/environment.rs, with this module's `dir`); this is the reading
//! side, for a YAML service's `container_env` (docs/service-definition.md).

use crate::reader::{self, Links};
use std::path::{Path, PathBuf};

/// Where init saves its environment, unless `RUNTREE_ENV_DIR` says otherwise.
pub const DIR: &str = "/run/runtree/env";
pub const DIR_VARIABLE: &str = "RUNTREE_ENV_DIR";
/// At most this many variables are read: an environment is a few dozen.
pub const MAX_VARIABLES: usize = 4096;
/// The kernel's limit on one `NAME=value` string (MAX_ARG_STRLEN).
pub const MAX_VALUE: u64 = 128 * 1024;

/// The directory of the saved environment.
pub fn dir() -> PathBuf {
    std::env::var_os(DIR_VARIABLE)
        .map(PathBuf::from)
        .filter(|dir| dir.is_absolute())
        .unwrap_or_else(|| PathBuf::from(DIR))
}

/// What a service takes of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selection {
    All,
    Names(Vec<String>),
}

/// Whether `name` can be a saved variable: a file name, and a variable name.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['=', '/', '\0'])
}

/// The variables of `dir` that `selection` takes, in name order (a named list: in its
/// order). A variable that is not saved is left out, as is anything at its name that is
/// not a regular file of UTF-8 text within MAX_VALUE; no saved environment (a tree with
/// no runtree init) gives none.
pub fn read(dir: &Path, selection: &Selection) -> Vec<(String, String)> {
    let names: Vec<String> = match selection {
        Selection::Names(names) => names.clone(),
        Selection::All => {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return Vec::new();
            };
            let mut names: Vec<String> = entries
                .take(MAX_VARIABLES)
                .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
                .filter(|name| valid_name(name))
                .collect();
            names.sort();
            names
        }
    };
    names
        .into_iter()
        .filter(|name| valid_name(name))
        .filter_map(|name| {
            let bytes = reader::read(&dir.join(&name), MAX_VALUE, Links::Refuse).ok()?;
            let value = String::from_utf8(bytes).ok()?;
            (!value.contains('\0')).then_some((name, value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_or_the_named_ones_that_are_saved() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("FOO"), "bar").unwrap();
        std::fs::write(dir.path().join("MULTI"), "a\nb\n").unwrap();
        std::fs::create_dir(dir.path().join("SUBDIR")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("LINK")).unwrap();
        let var = |n: &str, v: &str| (n.to_string(), v.to_string());
        assert_eq!(
            read(dir.path(), &Selection::All),
            vec![var("FOO", "bar"), var("MULTI", "a\nb\n")]
        );
        assert_eq!(
            read(
                dir.path(),
                &Selection::Names(vec!["MULTI".into(), "NONE".into(), "FOO".into()])
            ),
            vec![var("MULTI", "a\nb\n"), var("FOO", "bar")]
        );
        assert_eq!(
            read(&dir.path().join("missing"), &Selection::All),
            Vec::<(String, String)>::new()
        );
        assert!(!valid_name("../x") && !valid_name("A=B") && valid_name("A_1"));
    }
}
