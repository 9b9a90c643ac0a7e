//! svchdir: switches the runlevel, as runit's `runsvchdir` — `svchdir LEVEL`.
//!
//! In the runlevel directory (`/etc/runit/runsvdir`, or `$RUNTREE_RUNSVDIR`), LEVEL must
//! be a directory; the symlink `current` is then replaced atomically by one to LEVEL
//! (`current.new` is made, then renamed over `current`: there is no moment without a
//! `current`), and `previous` is set to what `current` pointed to. svdir, watching the
//! directories of its scan directory's symlink chain, switches at once: services in
//! both levels keep running, the others start or stop.
//!
//! Exit codes (runit's): 0 done (or LEVEL already current), 100 usage, 111 error.
//!
//! Installed also as `runsvchdir` (a symlink: one program, and no second copy to build);
//! its messages carry the name it was called by, and as runit's it also honours
//! `$RUNSVDIR` (after `$RUNTREE_RUNSVDIR`).

use std::ffi::OsString;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::exit;

const DEFAULT_RUNSVDIR: &str = "/etc/runit/runsvdir";

/// The name called by: `svchdir`, or `runsvchdir` through its symlink.
fn name() -> String {
    std::env::args_os()
        .next()
        .map(PathBuf::from)
        .and_then(|argv0| argv0.file_name().map(|n| n.to_string_lossy().into_owned()))
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "svchdir".to_string())
}

fn say(line: &str) {
    let _ = io::stderr().write_all(format!("{}: {line}\n", name()).as_bytes());
}

fn fatal(line: &str) -> ! {
    say(&format!("fatal: {line}"));
    exit(111);
}

fn usage() -> ! {
    let _ = io::stderr().write_all(format!("usage: {} LEVEL\n", name()).as_bytes());
    exit(100);
}

fn describe(error: &io::Error) -> String {
    match error.raw_os_error() {
        Some(errno) => runsv::errno_text::runit_text(errno).to_string(),
        None => error.to_string(),
    }
}

fn main() {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let [level] = args.as_slice() else {
        usage();
    };
    if level.is_empty() || level.as_bytes().starts_with(b"-") {
        usage();
    }
    // `single/` (a shell's completion) names the level `single`.
    let mut level = level.as_bytes();
    while let Some(stripped) = level.strip_suffix(b"/").filter(|s| !s.is_empty()) {
        level = stripped;
    }
    let level = OsString::from(std::ffi::OsStr::from_bytes(level));
    let runsvdir = std::env::var_os("RUNTREE_RUNSVDIR")
        .filter(|d| !d.is_empty())
        .or_else(|| std::env::var_os("RUNSVDIR").filter(|d| !d.is_empty()))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_RUNSVDIR));
    match switch(&runsvdir, Path::new(&level)) {
        Ok(Outcome::AlreadyCurrent) => {
            say(&format!("{}: current.", level.to_string_lossy()));
        }
        Ok(Outcome::Switched) => {}
        Err(message) => fatal(&message),
    }
}

enum Outcome {
    Switched,
    AlreadyCurrent,
}

fn switch(runsvdir: &Path, level: &Path) -> Result<Outcome, String> {
    let name = level.to_string_lossy();
    // A level is a name in the runlevel directory, not a path elsewhere; `current`,
    // `previous` and dot-names are reserved.
    let reserved = ["current", "previous", "current.new", "previous.new"];
    if level.as_os_str().as_bytes().contains(&b'/')
        || level.as_os_str().as_bytes().starts_with(b".")
        || reserved.iter().any(|r| level.as_os_str() == *r)
    {
        return Err(format!("{name}: not a runlevel name"));
    }
    let path = runsvdir.join(level);
    let metadata = std::fs::metadata(&path).map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            format!("{}: does not exist", path.display())
        } else {
            format!("unable to stat {}: {}", path.display(), describe(&e))
        }
    })?;
    if !metadata.is_dir() {
        return Err(format!("{}: not a directory", path.display()));
    }
    let current = runsvdir.join("current");
    if let Ok(now) = std::fs::metadata(&current) {
        if (now.dev(), now.ino()) == (metadata.dev(), metadata.ino()) {
            return Ok(Outcome::AlreadyCurrent);
        }
    }
    let old_target = match std::fs::read_link(&current) {
        Ok(target) => Some(target),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(format!(
                "unable to read the link {}: {}",
                current.display(),
                describe(&e)
            ))
        }
    };
    replace_link(runsvdir, "current", level)?;
    if let Some(target) = old_target {
        replace_link(runsvdir, "previous", &target)?;
    }
    Ok(Outcome::Switched)
}

/// `NAME.new` → target, renamed over `NAME`: the link changes in one step.
fn replace_link(dir: &Path, name: &str, target: &Path) -> Result<(), String> {
    let link = dir.join(name);
    let new = dir.join(format!("{name}.new"));
    match std::fs::remove_file(&new) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(format!(
                "unable to remove {}: {}",
                new.display(),
                describe(&e)
            ))
        }
    }
    symlink(target, &new).map_err(|e| {
        format!(
            "unable to create {} -> {}: {}",
            new.display(),
            target.display(),
            describe(&e)
        )
    })?;
    std::fs::rename(&new, &link).map_err(|e| {
        let _ = std::fs::remove_file(&new);
        format!(
            "unable to move {} to {}: {}",
            new.display(),
            link.display(),
            describe(&e)
        )
    })
}
