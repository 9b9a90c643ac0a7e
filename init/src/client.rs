//! `init 0`, `init 6`, `init halt` from any process but PID 1: one signal to PID 1.
//! Nothing else is needed: PID 1 answers with the whole ordered stop.

use crate::cli::EXIT_ERROR;
use crate::signals::Action;
use nix::sys::signal::kill;
use nix::unistd::Pid;

pub fn request(action: Action) -> i32 {
    match kill(Pid::from_raw(1), action.signal()) {
        Ok(()) => 0,
        Err(e) => {
            crate::log::line(&format!("unable to signal PID 1: {}", e.desc()));
            EXIT_ERROR
        }
    }
}
