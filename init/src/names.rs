//! init called as `poweroff`, `reboot`, `halt` or `shutdown` (symlinks to init, as
//! runit-init and busybox install them): the same request as `init 0|6|halt`, with
//! the options scripts pass to these names.
//!
//! - `poweroff|reboot|halt [-f] [-n] [-p] [-d] [-i] [-h] [-w]`: `-f` skips init and
//!   calls reboot(2) at once (after sync(2), unless `-n`), as busybox and sysvinit do
//!   when init itself is broken; `-p` makes halt power off (sysvinit); `-d`, `-i`,
//!   `-h`, `-w` are sysvinit's no-ops here (wtmp, interfaces, disks) and are accepted
//!   so that scripts written for it keep working.
//! - `shutdown [-h|-P|-r|-H] now|+0 [message…]`: only an immediate shutdown; a later
//!   time is a usage error rather than a shutdown at the wrong moment.

use crate::cli::{EXIT_ERROR, EXIT_USAGE};
use crate::log::line;
use crate::signals::Action;
use nix::sys::reboot::{reboot, RebootMode};

#[derive(Debug, PartialEq, Eq)]
pub enum Request {
    /// Ask PID 1, as `init 0|6|halt`.
    Ask(Action),
    /// `-f`: reboot(2) now, with or without sync(2) first.
    Force {
        action: Action,
        sync: bool,
    },
    Usage(String),
}

/// The action a program name stands for, if it is one of these names.
pub fn action_of(name: &str) -> Option<Action> {
    match name {
        "poweroff" => Some(Action::Poweroff),
        "reboot" => Some(Action::Reboot),
        "halt" => Some(Action::Halt),
        _ => None,
    }
}

/// `poweroff`, `reboot`, `halt` and their options.
pub fn parse_direct(mut action: Action, args: &[String]) -> Request {
    let mut force = false;
    let mut sync = true;
    for arg in args {
        let Some(letters) = arg.strip_prefix('-').filter(|l| !l.is_empty()) else {
            return Request::Usage(format!("unexpected argument: {arg}"));
        };
        for letter in letters.chars() {
            match letter {
                'f' => force = true,
                'n' => sync = false,
                'p' if action == Action::Halt => action = Action::Poweroff,
                'p' | 'd' | 'i' | 'h' | 'w' => {}
                other => return Request::Usage(format!("unknown option: -{other}")),
            }
        }
    }
    if force {
        Request::Force { action, sync }
    } else {
        Request::Ask(action)
    }
}

/// `shutdown`: the action from its flags (poweroff by default, as systemd's), and a
/// time that must be now.
pub fn parse_shutdown(args: &[String]) -> Request {
    let mut action = Action::Poweroff;
    let mut words = args.iter();
    let time = loop {
        let Some(arg) = words.next() else {
            return Request::Usage("say when: only `shutdown now` is supported".to_string());
        };
        let Some(letters) = arg.strip_prefix('-').filter(|l| !l.is_empty()) else {
            break arg;
        };
        for letter in letters.chars() {
            action = match letter {
                'h' | 'P' => Action::Poweroff,
                'r' => Action::Reboot,
                'H' => Action::Halt,
                other => return Request::Usage(format!("unknown option: -{other}")),
            };
        }
    };
    // The rest is a message for logged-in users, which nothing here broadcasts.
    match time.as_str() {
        "now" | "+0" => Request::Ask(action),
        other => Request::Usage(format!(
            "cannot shut down at {other}: only `now` (or +0) is supported"
        )),
    }
}

pub fn usage(name: &str) -> String {
    if name == "shutdown" {
        "usage: shutdown [-h|-P|-r|-H] now [message]".to_string()
    } else {
        format!("usage: {name} [-f] [-n]")
    }
}

/// Runs `name` (not PID 1): asks PID 1, or forces; the exit code.
pub fn run(name: &str, args: &[String]) -> i32 {
    let request = match action_of(name) {
        Some(action) => parse_direct(action, args),
        None => parse_shutdown(args),
    };
    match request {
        Request::Ask(action) => crate::client::request(action),
        Request::Force { action, sync } => force(name, action, sync),
        Request::Usage(problem) => {
            line(&format!("{name}: {problem}"));
            eprintln!("{}", usage(name));
            EXIT_USAGE
        }
    }
}

/// `-f`: what init would do at the very end of a shutdown, without the shutdown.
pub fn force(name: &str, action: Action, sync: bool) -> i32 {
    if sync {
        nix::unistd::sync();
    }
    let how = match action {
        Action::Poweroff => RebootMode::RB_POWER_OFF,
        Action::Reboot => RebootMode::RB_AUTOBOOT,
        Action::Halt => RebootMode::RB_HALT_SYSTEM,
    };
    // Returns only on failure (in a PID namespace the kernel ends that namespace's init).
    match reboot(how) {
        Ok(never) => match never {},
        Err(e) => {
            line(&format!("{name}: reboot(2): {}", e.desc()));
            EXIT_ERROR
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::words;

    #[test]
    fn names_ask_init_and_minus_f_forces() {
        assert_eq!(action_of("reboot"), Some(Action::Reboot));
        assert_eq!(action_of("init"), None);
        assert_eq!(
            parse_direct(Action::Poweroff, &[]),
            Request::Ask(Action::Poweroff)
        );
        assert_eq!(
            parse_direct(Action::Reboot, &words(&["-fn"])),
            Request::Force {
                action: Action::Reboot,
                sync: false
            }
        );
        assert_eq!(
            parse_direct(Action::Halt, &words(&["-d", "-p", "-i"])),
            Request::Ask(Action::Poweroff)
        );
        assert!(matches!(
            parse_direct(Action::Halt, &words(&["-z"])),
            Request::Usage(_)
        ));
        assert!(matches!(
            parse_direct(Action::Halt, &words(&["now"])),
            Request::Usage(_)
        ));
    }

    #[test]
    fn shutdown_takes_now_only() {
        assert_eq!(
            parse_shutdown(&words(&["-r", "now"])),
            Request::Ask(Action::Reboot)
        );
        assert_eq!(
            parse_shutdown(&words(&["-h", "+0", "going", "down"])),
            Request::Ask(Action::Poweroff)
        );
        assert_eq!(
            parse_shutdown(&words(&["-H", "now"])),
            Request::Ask(Action::Halt)
        );
        assert!(matches!(parse_shutdown(&words(&["-r"])), Request::Usage(_)));
        assert!(matches!(
            parse_shutdown(&words(&["-r", "+5"])),
            Request::Usage(_)
        ));
        assert!(matches!(parse_shutdown(&words(&["-c"])), Request::Usage(_)));
    }
}
