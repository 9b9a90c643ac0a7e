//! The environment the program gets: chpst's own, changed by an env dir (`-e`, envdir)
//! and by `-U`/envuidgid, as runit's pathexec_env does it.

use crate::fail::{describe, fatal_on, say, warn, EXIT_FATAL};
use runsv::env_files::{envdir_value as value_of, first_line};
use std::ffi::{CString, OsStr};
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::OpenOptionsExt;

/// Changes in the order made: set NAME to a value, or remove it (`None`).
#[derive(Default)]
pub struct Changes(Vec<(Vec<u8>, Option<Vec<u8>>)>);

impl Changes {
    pub fn set(&mut self, name: &[u8], value: Option<&[u8]>) {
        self.0.push((name.to_vec(), value.map(<[u8]>::to_vec)));
    }

    /// chpst's environment with the changes applied, for execve(2).
    pub fn apply(&self) -> Vec<CString> {
        let mut environment: Vec<Vec<u8>> = std::env::vars_os()
            .map(|(name, value)| {
                let mut entry = name.into_vec();
                entry.push(b'=');
                entry.extend_from_slice(value.as_bytes());
                entry
            })
            .collect();
        for (name, value) in &self.0 {
            // A file named `A=B` replaces A, as in runit: the name ends at the first `=`.
            let key = name.split(|&b| b == b'=').next().unwrap_or(name);
            environment
                .retain(|entry| !(entry.starts_with(key) && entry.get(key.len()) == Some(&b'=')));
            if let Some(value) = value {
                let mut entry = name.clone();
                entry.push(b'=');
                entry.extend_from_slice(value);
                environment.push(entry);
            }
        }
        environment
            .into_iter()
            .filter_map(|entry| CString::new(entry).ok())
            .collect()
    }
}

fn named(dir: &OsStr, name: &[u8]) -> Vec<u8> {
    let mut path = dir.as_bytes().to_vec();
    path.push(b'/');
    path.extend_from_slice(name);
    path
}

/// runit's `unable to read DIR/NAME: ERROR` (no colon after `read`, unlike its others).
fn unreadable(dir: &OsStr, name: &[u8], error: &io::Error) -> Vec<u8> {
    let mut line = b"unable to read ".to_vec();
    line.extend_from_slice(&named(dir, name));
    line.extend_from_slice(format!(": {}", describe(error)).as_bytes());
    line
}

/// Every file of `dir` not starting with a dot becomes a change. `skip_directories` is
/// chpst -e's leniency (reported with -v); envdir fails on a subdirectory.
pub fn read_dir(dir: &OsStr, skip_directories: bool, verbose: bool, changes: &mut Changes) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => fatal_on("unable to switch to directory", dir.as_bytes(), &e),
    };
    let mut names = Vec::new();
    for entry in entries {
        match entry {
            Ok(entry) => names.push(entry.file_name().into_vec()),
            Err(e) => fatal_on("unable to read directory", dir.as_bytes(), &e),
        }
    }
    for name in names.into_iter().filter(|n| !n.starts_with(b".")) {
        // O_NONBLOCK as runit's open_read: a FIFO in the directory reads as empty
        // instead of blocking.
        let content = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NONBLOCK)
            .open(OsStr::from_bytes(&named(dir, &name)))
            .and_then(|mut file| first_line(&mut file));
        let content = match content {
            Ok(content) => content,
            // A dangling symlink reads as an empty file (runit's openreadclose treats
            // it as absent, leaving whatever the previous file held: not reproduced).
            Err(e) if e.raw_os_error() == Some(nix::libc::ENOENT) => Vec::new(),
            Err(e) if e.raw_os_error() == Some(nix::libc::EISDIR) && skip_directories => {
                if verbose {
                    warn(&unreadable(dir, &name, &e));
                }
                continue;
            }
            Err(e) => {
                let mut line = b"chpst: fatal: ".to_vec();
                line.extend_from_slice(&unreadable(dir, &name, &e));
                say(&line);
                std::process::exit(EXIT_FATAL);
            }
        };
        changes.set(&name, value_of(&content).as_deref());
    }
}
