//! runtree's init: PID 1 of a machine or a container. It reaps every process, keeps
//! svdir running, and on poweroff/reboot/halt has svdir stop the services in order,
//! then sweeps what is left and powers off (machine) or exits (container).
//! As any other process it is the client `init 0|6|halt`, and by the names `poweroff`,
//! `reboot`, `halt` and `shutdown` the programs of those names. See docs/init.md.
//!
//! Modules by what they own: `pid1` the event loop, `signals` the signal table and
//! signalfd, `svdir` the one child, `shutdown` the stop sequence, `setup` what PID 1
//! prepares at boot, `config` the settings, `client` and `cli` the command line,
//! `names` the other names, `main_program` the container's `-- CMD`, `environment` the
//! environment saved for the services, `unmount` a machine's filesystems at the end.

// PID 1 must not die: on top of the workspace's lints (no unwrap, expect or panic),
// nothing outside the tests may index out of bounds or reach an unreachable!.
#![cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::unreachable, clippy::todo)
)]

mod cli;
mod client;
mod config;
mod environment;
mod log;
mod main_program;
mod names;
mod pid1;
mod setup;
mod shutdown;
mod signals;
mod stopping;
mod svdir;
mod unmount;

use cli::Invocation;

/// The command-line words of a test, as init receives them.
#[cfg(test)]
fn words(list: &[&str]) -> Vec<String> {
    list.iter().map(|w| w.to_string()).collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Machine,
    Container,
}

impl Mode {
    pub fn word(self) -> &'static str {
        match self {
            Mode::Machine => "machine",
            Mode::Container => "container",
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let is_pid1 = nix::unistd::getpid().as_raw() == 1;
    // Called by another name (a symlink), init is that program's client. PID 1 is always
    // init, whatever it is called: it must never refuse to boot.
    let name = std::env::args_os()
        .next()
        .map(|argv0| {
            let argv0 = std::path::PathBuf::from(argv0);
            argv0
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
        .unwrap_or_default();
    if !is_pid1 && (names::action_of(&name).is_some() || name == "shutdown") {
        std::process::exit(names::run(&name, &args));
    }
    match cli::parse(&args, is_pid1) {
        Invocation::Pid1 {
            mode,
            ignored,
            main,
        } => pid1::run(mode, ignored, main),
        Invocation::Request(action) => std::process::exit(client::request(action)),
        Invocation::Help => {
            println!("{}", cli::USAGE);
        }
        Invocation::Usage(problem) => {
            log::line(&problem);
            eprintln!("{}", cli::USAGE);
            std::process::exit(cli::EXIT_USAGE);
        }
    }
}
