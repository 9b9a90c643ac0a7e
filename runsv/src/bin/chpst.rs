//! chpst: runs a program with a changed process state, as runit's chpst — and, by the
//! name it is called by, as envdir, envuidgid, pgrphack, setlock, setuidgid and
//! softlimit. Options, order of the changes, messages and exit codes are runit's
//! (docs/chpst.md): 100 for a usage error, 111 for a failure, else the program's own.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

// A binary's root looks for modules beside itself; the parts live in chpst/.

#[path = "chpst/environ.rs"]
mod environ;
#[path = "chpst/exec.rs"]
mod exec;
#[path = "chpst/fail.rs"]
mod fail;
#[path = "chpst/getopt.rs"]
mod getopt;
#[path = "chpst/ids.rs"]
mod ids;
#[path = "chpst/plan.rs"]
mod plan;
#[path = "chpst/steps.rs"]
mod steps;

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    steps::run(&plan::parse(&args));
}
