//! runsv: supervises one service directory — `runsv DIR`, as runit's runsv.
//!
//! Exit codes (runit's): 0 when told to exit (`x`, SIGTERM), 1 for a usage error, 111
//! for a fatal error at start-up (another runsv holds the lock, the directory is
//! missing, …).

/// runsv's messages: one line on stderr in one write(2). std's eprintln! writes each
/// piece of the format on its own, and the runsvs of a tree share the console (a
/// container's log): theirs came out interleaved mid-line ("runsv runsv /service/web:
/// fatal: …"). Defined before the modules, it is the eprintln! they all use.
macro_rules! eprintln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut line = format!($($arg)*);
        line.push('\n');
        let _ = std::io::stderr().write_all(line.as_bytes());
    }};
}

mod adoption;
mod dependency_watch;
mod event_loop;
mod machine;
mod relay;
mod service;
mod setup;
mod tee;
mod tracking;

#[cfg(test)]
mod props_support;

use std::path::PathBuf;
use std::process::exit;

fn main() {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let [directory] = args.as_slice() else {
        eprintln!("usage: runsv dir");
        exit(1);
    };
    let directory = PathBuf::from(directory);
    // Started alone with its output in a file, runsv and its service share it as they
    // would under svdir.
    runsv::shared_output::append_to_files();
    if let Err(fatal) = event_loop::run(&directory) {
        eprintln!("runsv {}: fatal: {fatal}", directory.display());
        exit(111);
    }
}
