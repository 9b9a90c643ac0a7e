//! What the command line asks for: run as PID 1, or ask PID 1 to shut down.

use crate::signals::Action;
use crate::Mode;

pub const USAGE: &str = "\
usage: init [--container | --machine] [-- CMD ARGS...]
                                         run as PID 1 (the kernel or the container runtime starts it);
                                         with CMD, run it as the main program: when it exits the
                                         tree stops and init exits with its code
       init 0 | poweroff                 ask PID 1 to stop every service and power off
       init 6 | reboot                   ask PID 1 to stop every service and reboot
       init halt                         ask PID 1 to stop every service and halt
       poweroff|reboot|halt [-f], shutdown -h|-r now   the same, called by those names
exit codes (as a client): 0 asked, 100 usage error, 111 PID 1 could not be signalled";

/// Exit code of a usage error. runit-init exits 0 there, which hides typos in scripts
/// (`init O` would "succeed"); 100 is runit's usage code elsewhere (sv, chpst).
pub const EXIT_USAGE: i32 = 100;
/// Exit code when PID 1 cannot be signalled: runit-init's error code.
pub const EXIT_ERROR: i32 = 111;

#[derive(Debug, PartialEq, Eq)]
pub enum Invocation {
    /// Run as PID 1. `ignored` are words PID 1 does not understand: the kernel hands
    /// bare command-line words (`single`, `quiet` after `--`) to init, and PID 1 must
    /// not refuse to boot over them.
    Pid1 {
        mode: Option<Mode>,
        ignored: Vec<String>,
        /// `-- CMD ARGS...`: the main program (main_program.rs); empty for none.
        main: Vec<String>,
    },
    Request(Action),
    Help,
    Usage(String),
}

pub fn parse(args: &[String], is_pid1: bool) -> Invocation {
    if is_pid1 {
        let mut mode = None;
        let mut ignored = Vec::new();
        let mut main = Vec::new();
        for (at, arg) in args.iter().enumerate() {
            match arg.as_str() {
                "--container" => mode = Some(Mode::Container),
                "--machine" => mode = Some(Mode::Machine),
                "--" => {
                    main = args.get(at + 1..).unwrap_or_default().to_vec();
                    break;
                }
                other => ignored.push(other.to_string()),
            }
        }
        return Invocation::Pid1 {
            mode,
            ignored,
            main,
        };
    }
    let Some(first) = args.first() else {
        return Invocation::Usage("not PID 1: say what to ask PID 1 for".to_string());
    };
    let request = match first.as_str() {
        "-h" | "--help" => return Invocation::Help,
        "0" | "poweroff" => Action::Poweroff,
        "6" | "reboot" => Action::Reboot,
        "halt" => Action::Halt,
        "--container" | "--machine" => {
            return Invocation::Usage(format!("{first} is only meaningful as PID 1"))
        }
        other => return Invocation::Usage(format!("unknown request: {other}")),
    };
    if let Some(extra) = args.get(1) {
        return Invocation::Usage(format!("unexpected argument: {extra}"));
    }
    Invocation::Request(request)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::words as args;

    #[test]
    fn client_requests() {
        for (word, action) in [
            ("0", Action::Poweroff),
            ("poweroff", Action::Poweroff),
            ("6", Action::Reboot),
            ("reboot", Action::Reboot),
            ("halt", Action::Halt),
        ] {
            assert_eq!(
                parse(&args(&[word]), false),
                Invocation::Request(action),
                "{word}"
            );
        }
    }

    #[test]
    fn client_usage_errors() {
        for words in [
            &[][..],
            &["1"],
            &["S"],
            &["O"],
            &["0", "now"],
            &["--container"],
            &["--bogus"],
        ] {
            assert!(
                matches!(parse(&args(words), false), Invocation::Usage(_)),
                "{words:?}"
            );
        }
        assert_eq!(parse(&args(&["--help"]), false), Invocation::Help);
        assert_eq!(parse(&args(&["-h"]), false), Invocation::Help);
    }

    #[test]
    fn pid1_takes_mode_flags_and_ignores_the_rest() {
        assert_eq!(
            parse(&args(&[]), true),
            Invocation::Pid1 {
                mode: None,
                ignored: vec![],
                main: vec![]
            }
        );
        assert_eq!(
            parse(&args(&["--container"]), true),
            Invocation::Pid1 {
                mode: Some(Mode::Container),
                ignored: vec![],
                main: vec![]
            }
        );
        // The last flag wins, and a runlevel word from the kernel is not an error.
        assert_eq!(
            parse(&args(&["--container", "single", "--machine"]), true),
            Invocation::Pid1 {
                mode: Some(Mode::Machine),
                ignored: vec!["single".to_string()],
                main: vec![]
            }
        );
        // As PID 1, "0" is a kernel argument, never a request to shut down at boot.
        assert_eq!(
            parse(&args(&["0"]), true),
            Invocation::Pid1 {
                mode: None,
                ignored: vec!["0".to_string()],
                main: vec![]
            }
        );
        // Everything after `--` is the main program, flags included.
        assert_eq!(
            parse(
                &args(&["--container", "--", "sh", "-c", "exit 3", "--machine"]),
                true
            ),
            Invocation::Pid1 {
                mode: Some(Mode::Container),
                ignored: vec![],
                main: args(&["sh", "-c", "exit 3", "--machine"])
            }
        );
    }
}
