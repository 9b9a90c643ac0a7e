//! What a service's failure means to the tree: which states are failures, the policy
//! (`on_failure` in service.yaml, `RUNTREE_ON_FAILURE` for every service that does not
//! say; s6-overlay's S6_BEHAVIOUR_IF_STAGE2_FAILS), and how a runsv asks for the whole
//! tree to stop. runsv applies the policy as a failure happens; svdir counts failures
//! in its stop's exit status. See docs/service-definition.md.

use crate::supervise::{ExitStatus, FullState, ServiceState};
use crate::tai64n::Timestamp;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::time::Duration;

/// The tree's default policy, for services whose definition names none.
pub const VARIABLE: &str = "RUNTREE_ON_FAILURE";
/// Set by runtree's init (PID 1) in the environment it starts svdir with: a runsv asks
/// it, not svdir, to stop the tree.
pub const INIT_VARIABLE: &str = "RUNTREE_INIT";
/// Set by svdir for its runsv children: its pid, for a tree with no runtree init.
pub const SVDIR_VARIABLE: &str = "RUNTREE_SVDIR_PID";
/// The reason of a restart asked for (`sv restart`): no failure, whatever the exit.
pub const RESTARTING_AS_ASKED: &str = "restarting as asked";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnFailure {
    /// The tree goes on; the failure is not reported and does not count in the exit
    /// status of the tree's stop (an optional service).
    Continue,
    /// The tree goes on; the failure is reported as it happens and makes the exit
    /// status of the tree's stop non-zero. The default.
    Warn,
    /// The whole tree stops (a container exits), with a non-zero status.
    Stop,
}

impl OnFailure {
    pub const WORDS: &'static str = "continue, warn or stop";

    pub fn parse(text: &str) -> Option<OnFailure> {
        match text {
            "continue" => Some(OnFailure::Continue),
            "warn" => Some(OnFailure::Warn),
            "stop" => Some(OnFailure::Stop),
            _ => None,
        }
    }

    pub fn word(self) -> &'static str {
        match self {
            OnFailure::Continue => "continue",
            OnFailure::Warn => "warn",
            OnFailure::Stop => "stop",
        }
    }

    /// `RUNTREE_ON_FAILURE`, else `warn`; an unknown word is `warn` too (the reason is
    /// for the caller to report: see [`tree_default_problem`]).
    pub fn tree_default() -> OnFailure {
        std::env::var(VARIABLE)
            .ok()
            .and_then(|word| OnFailure::parse(word.trim()))
            .unwrap_or(OnFailure::Warn)
    }

    /// A definition's own policy, else the tree's.
    pub fn or_tree_default(own: Option<OnFailure>) -> OnFailure {
        own.unwrap_or_else(OnFailure::tree_default)
    }
}

/// What is wrong with `RUNTREE_ON_FAILURE`, if anything.
pub fn tree_default_problem() -> Option<String> {
    let word = std::env::var(VARIABLE).ok()?;
    match OnFailure::parse(word.trim()) {
        Some(_) => None,
        None => Some(format!(
            "ignoring {VARIABLE}={word}: expected {}; using warn",
            OnFailure::WORDS
        )),
    }
}

/// Whether the state is a failure, and which: `error` (the reason says why), or
/// `respawn` after a run that ended with a failure nobody asked for (a crash loop).
/// None for anything else.
pub fn failure(state: &FullState) -> Option<String> {
    match state.state {
        ServiceState::Error => Some(format!("error: {}", state.reason)),
        ServiceState::Respawn
            if state.last_exit.is_some_and(failed)
                && !state.reason.starts_with(RESTARTING_AS_ASKED) =>
        {
            let restarts = match state.restarts {
                0 => String::new(),
                1 => ", 1 restart".to_string(),
                n => format!(", {n} restarts"),
            };
            Some(format!("respawn (crash loop{restarts}): {}", state.reason))
        }
        _ => None,
    }
}

/// A run shorter than this after a failure is still part of the crash loop (runsv's
/// machine counts such a run as "dying fast": its STABLE_RUN).
pub const YOUNG_RUN: Duration = Duration::from_secs(1);

/// A failed run: not a success, and known (an adopted process's end is not).
fn failed(exit: ExitStatus) -> bool {
    !exit.success() && exit != ExitStatus::Unknown
}

/// Whether the service is failing as the tree's stop sees it at `now`: [`failure`], or
/// a longrun started again less than YOUNG_RUN ago after a failed run, caught between
/// two crashes of a loop. (A SIGTERM is left out there: with the reason gone, it is
/// most likely `sv restart`'s.)
pub fn failing(state: &FullState, now: Timestamp) -> Option<String> {
    if let Some(failure) = failure(state) {
        return Some(failure);
    }
    let exit = state.last_exit?;
    let young = matches!(state.state, ServiceState::Starting | ServiceState::Running)
        && state.restarts > 0
        && failed(exit)
        && exit != ExitStatus::Signaled(Signal::SIGTERM as i32)
        && elapsed(state.since, now) < YOUNG_RUN;
    young.then(|| {
        format!(
            "{} again {} after it {exit} (crash loop, {} restarts)",
            state.state,
            crate::duration::seconds(elapsed(state.since, now)),
            state.restarts
        )
    })
}

fn elapsed(since: Timestamp, now: Timestamp) -> Duration {
    let at = |t: Timestamp| Duration::new(t.seconds, t.nanoseconds.min(999_999_999));
    at(now).saturating_sub(at(since))
}

/// Asks for the whole tree to stop, as `on_failure: stop` does: runtree's init (PID 1,
/// which says so in `RUNTREE_INIT`) gets `init 0`'s SIGUSR2, and stops everything in
/// order; with no such init, the svdir this runsv is a child of gets SIGTERM. Says
/// what it did, or why it could not.
pub fn request_tree_stop() -> Result<String, String> {
    if std::env::var_os(INIT_VARIABLE).is_some_and(|v| v == "1") {
        return kill(Pid::from_raw(1), Signal::SIGUSR2)
            .map(|()| "asked init to stop the tree".to_string())
            .map_err(|e| format!("cannot signal init: {}", e.desc()));
    }
    let parent = nix::unistd::getppid();
    let svdir = std::env::var(SVDIR_VARIABLE)
        .ok()
        .and_then(|pid| pid.trim().parse::<i32>().ok());
    if svdir == Some(parent.as_raw()) && parent.as_raw() > 1 {
        return kill(parent, Signal::SIGTERM)
            .map(|()| format!("asked svdir (pid {parent}) to stop the tree"))
            .map_err(|e| format!("cannot signal svdir: {}", e.desc()));
    }
    Err("neither runtree's init nor svdir is above this runsv: nothing to stop".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supervise::Want;

    fn state(state: ServiceState, last_exit: Option<ExitStatus>, reason: &str) -> FullState {
        FullState {
            state,
            want: Want::Up,
            pid: 0,
            starttime: 0,
            since: Timestamp::now(),
            ready_since: None,
            last_exit,
            restarts: 3,
            oneshot: false,
            reason: reason.to_string(),
            status: None,
        }
    }

    #[test]
    fn failures() {
        let exit1 = Some(ExitStatus::Exited(1));
        assert_eq!(
            failure(&state(ServiceState::Error, exit1, "exit 1")).as_deref(),
            Some("error: exit 1")
        );
        assert_eq!(
            failure(&state(
                ServiceState::Respawn,
                exit1,
                "exit 1; restarting in 2s"
            ))
            .as_deref(),
            Some("respawn (crash loop, 3 restarts): exit 1; restarting in 2s")
        );
        // A clean exit, or a restart asked for, is no failure; nor is any other state.
        let exit0 = Some(ExitStatus::Exited(0));
        assert_eq!(failure(&state(ServiceState::Respawn, exit0, "")), None);
        let term = Some(ExitStatus::Signaled(15));
        assert_eq!(
            failure(&state(ServiceState::Respawn, term, RESTARTING_AS_ASKED)),
            None
        );
        for s in [
            ServiceState::Running,
            ServiceState::Down,
            ServiceState::Starting,
        ] {
            assert_eq!(failure(&state(s, exit1, "")), None);
        }
    }

    #[test]
    fn caught_between_two_crashes_at_the_stop() {
        let exit1 = Some(ExitStatus::Exited(1));
        let mut running = state(ServiceState::Running, exit1, "");
        running.since = Timestamp {
            seconds: 100,
            nanoseconds: 0,
        };
        let at = |seconds, nanoseconds| Timestamp {
            seconds,
            nanoseconds,
        };
        assert_eq!(
            failing(&running, at(100, 300_000_000)).as_deref(),
            Some("running again 0.3s after it exited 1 (crash loop, 3 restarts)")
        );
        // A run that has lasted, a TERM (sv restart), a first run: no loop.
        assert_eq!(failing(&running, at(101, 0)), None);
        let mut termed = running.clone();
        termed.last_exit = Some(ExitStatus::Signaled(15));
        assert_eq!(failing(&termed, at(100, 1)), None);
        let mut first = running.clone();
        first.restarts = 0;
        assert_eq!(failing(&first, at(100, 1)), None);
        let mut adopted = state(ServiceState::Respawn, Some(ExitStatus::Unknown), "");
        adopted.reason = "ended; restarting now".to_string();
        assert_eq!(failing(&adopted, at(100, 1)), None);
    }

    #[test]
    fn words() {
        for policy in [OnFailure::Continue, OnFailure::Warn, OnFailure::Stop] {
            assert_eq!(OnFailure::parse(policy.word()), Some(policy));
        }
        assert_eq!(OnFailure::parse("ignore"), None);
    }
}
