//! sv: controls and queries services through their `supervise/` directories, with
//! runit's commands, options, output and exit codes (see docs/sv.md).

mod app;
mod args;
mod blame;
mod checkscript;
mod command;
mod control;
mod discover;
mod errno;
mod health;
mod json;
mod log;
mod output;
mod pending;
mod raw_name;
mod report;
mod service;
mod status;
mod tree;
mod wait;
mod watch;

#[cfg(test)]
mod fake;
#[cfg(test)]
mod props;

fn main() {
    // runit's sv is a C program: a closed stdout ends it with SIGPIPE. Rust ignores the
    // signal by default, which would also be inherited by ./check through exec.
    // SAFETY: no other thread exists yet.
    unsafe {
        nix::libc::signal(nix::libc::SIGPIPE, nix::libc::SIG_DFL);
    }
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let code = app::main(&argv, |key| match std::env::var_os(key) {
        None if key == "SVDIR" => Some(discover::svdir()),
        value => value,
    });
    std::process::exit(code);
}
