//! runit's command table. sv looks at the first letter of the command only, except for
//! the full words below (`sv u`, `sv up` and `sv upwards` are all "up"); the upper-case
//! letters `D T X E` are the force-* forms.

use runsv::control::Control as RunsvControl;
use runsv::supervise::Status;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Print the status; never waits.
    Status,
    /// Write `acts` to `supervise/control`.
    Control,
    /// Write nothing; only wait (`check`).
    CheckOnly,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Waits {
    Never,
    /// Only with `-v` (or `-w`).
    IfVerbose,
    Always,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Command {
    pub kind: Kind,
    /// The control bytes sent, which are also the conditions a wait checks, in order
    /// (`C` is the condition of `check`, never sent).
    pub acts: &'static str,
    pub waits: Waits,
    /// On timeout print `kill:` instead of `timeout:` and send `k` (the force-* forms).
    pub kill_on_timeout: bool,
}

impl Command {
    const fn new(kind: Kind, acts: &'static str, waits: Waits, kill: bool) -> Command {
        Command {
            kind,
            acts,
            waits,
            kill_on_timeout: kill,
        }
    }

    pub fn waits(&self, verbose: bool) -> bool {
        match self.waits {
            Waits::Never => false,
            Waits::IfVerbose => verbose,
            Waits::Always => true,
        }
    }

    /// The first control byte: it decides send suppression and whether a dead runsv is
    /// fine (`x`: "ok: NAME: runsv not running").
    pub fn first(&self) -> u8 {
        self.acts.as_bytes()[0]
    }
}

/// `None` is a usage error. In LSB mode an `s…` word must be exactly one of
/// status/start/stop/shutdown.
pub fn dispatch(action: &[u8], lsb: bool) -> Option<Command> {
    use Kind::*;
    use Waits::*;
    let verbose = |acts| Some(Command::new(Control, acts, IfVerbose, false));
    let always = |acts| Some(Command::new(Control, acts, Always, false));
    let force = |acts| Some(Command::new(Control, acts, Always, true));
    match *action.first()? {
        b'x' | b'e' => verbose("x"),
        b'X' | b'E' => force("x"),
        b'D' => force("d"),
        b'T' => force("tc"),
        b't' if action == b"try-restart" => always("tc"),
        b'c' if action == b"check" => Some(Command::new(CheckOnly, "C", Always, false)),
        b's' => match action {
            b"shutdown" => always("x"),
            b"start" => always("u"),
            b"stop" => always("d"),
            b"status" => Some(Command::new(Status, "s", Never, false)),
            _ if lsb => None,
            _ => Some(Command::new(Status, "s", Never, false)),
        },
        b'r' => match action {
            b"restart" => always("tcu"),
            b"reload" => always("h"),
            _ => None,
        },
        b'f' => match action {
            b"force-reload" => force("tc"),
            b"force-restart" => force("tcu"),
            b"force-shutdown" => force("x"),
            b"force-stop" => force("d"),
            _ => None,
        },
        letter => verbose(single(letter)?),
    }
}

fn single(letter: u8) -> Option<&'static str> {
    // `x` and `R` are reached only through words (exit, `sv reconfigure`).
    match RunsvControl::from_byte(letter)? {
        RunsvControl::Exit | RunsvControl::Reconfigure => None,
        control => Some(control.letter()),
    }
}

/// runit skips the write when the want byte already equals the first byte to send,
/// except for `d` while no TERM was sent: `sv up` on a service wanted up writes
/// nothing, but `sv down` after `sv once` (want down, still running) sends `d`.
pub fn should_send(status: &Status, first: u8) -> bool {
    !(status.want == first && (first != b'd' || status.term_sent))
}

#[cfg(test)]
mod tests {
    use super::*;
    use runsv::supervise::RunState;
    use runsv::tai64n::Timestamp;

    fn acts(word: &str) -> Option<(&'static str, Waits, bool)> {
        dispatch(word.as_bytes(), false).map(|c| (c.acts, c.waits, c.kill_on_timeout))
    }

    #[test]
    fn first_letter_dispatch() {
        use Waits::*;
        for (word, expected) in [
            ("up", "u"),
            ("u", "u"),
            ("upwards", "u"),
            ("down", "d"),
            ("once", "o"),
            ("pause", "p"),
            ("cont", "c"),
            ("continue", "c"),
            ("hup", "h"),
            ("alarm", "a"),
            ("interrupt", "i"),
            ("quit", "q"),
            ("1", "1"),
            ("2", "2"),
            ("term", "t"),
            ("kill", "k"),
            ("exit", "x"),
            ("e", "x"),
            ("x", "x"),
            ("try", "t"),
        ] {
            assert_eq!(acts(word), Some((expected, IfVerbose, false)), "{word}");
        }
    }

    #[test]
    fn full_words() {
        use Waits::*;
        assert_eq!(acts("start"), Some(("u", Always, false)));
        assert_eq!(acts("stop"), Some(("d", Always, false)));
        assert_eq!(acts("shutdown"), Some(("x", Always, false)));
        assert_eq!(acts("restart"), Some(("tcu", Always, false)));
        assert_eq!(acts("reload"), Some(("h", Always, false)));
        assert_eq!(acts("try-restart"), Some(("tc", Always, false)));
        assert_eq!(acts("force-stop"), Some(("d", Always, true)));
        assert_eq!(acts("force-reload"), Some(("tc", Always, true)));
        assert_eq!(acts("force-restart"), Some(("tcu", Always, true)));
        assert_eq!(acts("force-shutdown"), Some(("x", Always, true)));
        assert_eq!(acts("D"), Some(("d", Always, true)));
        assert_eq!(acts("Down"), Some(("d", Always, true)));
        assert_eq!(acts("T"), Some(("tc", Always, true)));
        assert_eq!(acts("X"), Some(("x", Always, true)));
        assert_eq!(acts("E"), Some(("x", Always, true)));
        let check = dispatch(b"check", false).unwrap();
        assert_eq!(
            (check.kind, check.acts, check.waits),
            (Kind::CheckOnly, "C", Always)
        );
    }

    #[test]
    fn status_and_usage() {
        for word in ["status", "s", "stat", "sxyz"] {
            assert_eq!(dispatch(word.as_bytes(), false).unwrap().kind, Kind::Status);
        }
        assert_eq!(dispatch(b"status", true).unwrap().kind, Kind::Status);
        assert_eq!(dispatch(b"stat", true), None);
        assert_eq!(dispatch(b"sig", true), None);
        assert_eq!(dispatch(b"start", true).unwrap().acts, "u");
        for word in ["", "bogus", "r", "rest", "f", "force", "C", "U", "-", "3"] {
            assert_eq!(dispatch(word.as_bytes(), false), None, "{word:?}");
        }
    }

    #[test]
    fn status_never_waits_even_verbose() {
        let status = dispatch(b"status", false).unwrap();
        assert!(!status.waits(true));
        let up = dispatch(b"up", false).unwrap();
        assert!(up.waits(true) && !up.waits(false));
        assert!(dispatch(b"start", false).unwrap().waits(false));
    }

    fn status(want: u8, term_sent: bool) -> Status {
        Status {
            since: Timestamp::default(),
            pid: 1,
            paused: false,
            want,
            term_sent,
            run_state: RunState::Run,
        }
    }

    #[test]
    fn send_suppression() {
        assert!(!should_send(&status(b'u', false), b'u'));
        assert!(should_send(&status(b'd', false), b'u'));
        // `sv down` after `once` (want d, no TERM yet) still sends.
        assert!(should_send(&status(b'd', false), b'd'));
        assert!(!should_send(&status(b'd', true), b'd'));
        assert!(should_send(&status(b'u', true), b'd'));
        for first in [b't', b'o', b'x', b'k', b'p', b'c', b'h'] {
            assert!(should_send(&status(b'u', false), first));
            assert!(should_send(&status(b'd', true), first));
        }
    }
}
