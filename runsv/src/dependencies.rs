//! `after:` — how runsv decides whether its dependencies let the service start.
//!
//! A dependency is a sibling entry of the service in the scan directory, named as in
//! `after:`. Its runsv publishes its state in `supervise/state`; runsv reads those files
//! (and watches them with inotify, in the event loop) instead of asking anyone: there is
//! no daemon in between, so a dependency's runsv restarting changes nothing here.
//!
//! - `running` (which, in runtree, means ready) or `ok` satisfies a dependency;
//! - `error` fails it: the dependent is in `error` too, with the dependency's reason;
//! - anything else, or no `supervise/state` yet, is waited for;
//! - a name with no entry in the scan directory is an unknown dependency (`error`);
//! - a path through `after:` lists that leads back to the service is a cycle (`error`,
//!   printed `a → b → a`). Each member of a cycle finds it by itself; services that
//!   merely depend on a member see that member in `error`, and nothing else waits on it.
//!
//! What counts is the state at the moment the service would start: a dependency that
//! goes down or restarts later does not stop its dependents.

use crate::definition::ServiceDefinition;
use crate::supervise::{FullState, ServiceState, SuperviseDir};
use std::collections::HashSet;
use std::path::Path;

/// Whether the service's dependencies allow it to start, as runsv last saw them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dependencies {
    Satisfied,
    /// Not yet running (ready) or ok: these names.
    Waiting(Vec<String>),
    /// A dependency is in `error`.
    Failed {
        name: String,
        reason: String,
    },
    /// No such service in the scan directory.
    Unknown(Vec<String>),
    /// The service is part of a dependency cycle, printed as `a → b → a`.
    Cycle(String),
}

/// A cycle through `me`, following `after:` lists as `load` reports them, as the names
/// on the path: `[me, b, me]`. `load` gives a service's `after:` list, or None if the
/// service does not exist or cannot be read (such a name ends the path).
pub fn find_cycle(
    me: &str,
    after: &[String],
    mut load: impl FnMut(&str) -> Option<Vec<String>>,
) -> Option<Vec<String>> {
    // Depth-first search from `me`'s dependencies, remembering the path; a service
    // already explored without reaching `me` never leads to it (memoised in `dead`).
    let mut dead: HashSet<String> = HashSet::new();
    let mut path: Vec<String> = vec![me.to_string()];
    let first: Vec<String> = after.to_vec();
    let mut stack: Vec<std::vec::IntoIter<String>> = vec![first.into_iter()];
    while let Some(next) = stack.last_mut().map(Iterator::next) {
        let Some(name) = next else {
            stack.pop();
            if let Some(finished) = path.pop() {
                if finished != me {
                    dead.insert(finished);
                }
            }
            continue;
        };
        if name == me {
            path.push(name);
            return Some(path);
        }
        if dead.contains(&name) || path.contains(&name) {
            // A cycle that does not pass through `me` is its members' business.
            continue;
        }
        match load(&name) {
            Some(list) => {
                path.push(name);
                stack.push(list.into_iter());
            }
            None => {
                dead.insert(name);
            }
        }
    }
    None
}

/// The `after:` list of the service `name` in `scan_dir`, if it has a valid definition.
pub fn after_of(scan_dir: &Path, name: &str) -> Option<Vec<String>> {
    if !is_entry_name(name) {
        return None;
    }
    ServiceDefinition::load(&scan_dir.join(name))
        .ok()
        .map(|definition| definition.after)
}

/// Whether `name` can be a scan directory entry (no path tricks in `after:`).
fn is_entry_name(name: &str) -> bool {
    !name.is_empty() && !name.starts_with('.') && !name.contains('/')
}

/// What one dependency's `supervise/state` says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DependencyState {
    Unknown,
    Waiting,
    Satisfied,
    Failed(String),
}

/// Reads the state of dependency `name` in `scan_dir`.
pub fn dependency_state(scan_dir: &Path, name: &str) -> DependencyState {
    let directory = scan_dir.join(name);
    if !is_entry_name(name) || !directory.is_dir() {
        return DependencyState::Unknown;
    }
    match FullState::read(&SuperviseDir::of_service(&directory)) {
        Ok(Some(state)) => match state.state {
            ServiceState::Running | ServiceState::Ok => DependencyState::Satisfied,
            ServiceState::Error => DependencyState::Failed(state.reason),
            _ => DependencyState::Waiting,
        },
        // Not supervised yet, or a state file being replaced: wait for the next event.
        Ok(None) | Err(_) => DependencyState::Waiting,
    }
}

/// Combines the states of all dependencies: a cycle first, then unknown names, then
/// the first failed one, then those still waited for.
pub fn combine(cycle: Option<&[String]>, states: &[(String, DependencyState)]) -> Dependencies {
    if let Some(cycle) = cycle {
        return Dependencies::Cycle(cycle.join(" → "));
    }
    let unknown: Vec<String> = states
        .iter()
        .filter(|(_, s)| *s == DependencyState::Unknown)
        .map(|(name, _)| name.clone())
        .collect();
    if !unknown.is_empty() {
        return Dependencies::Unknown(unknown);
    }
    if let Some((name, DependencyState::Failed(reason))) = states
        .iter()
        .find(|(_, s)| matches!(s, DependencyState::Failed(_)))
    {
        return Dependencies::Failed {
            name: name.clone(),
            reason: reason.clone(),
        };
    }
    let waiting: Vec<String> = states
        .iter()
        .filter(|(_, s)| *s == DependencyState::Waiting)
        .map(|(name, _)| name.clone())
        .collect();
    if waiting.is_empty() {
        Dependencies::Satisfied
    } else {
        Dependencies::Waiting(waiting)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn graph(edges: &[(&str, &[&str])]) -> HashMap<String, Vec<String>> {
        edges
            .iter()
            .map(|(name, after)| {
                (
                    name.to_string(),
                    after.iter().map(|s| s.to_string()).collect(),
                )
            })
            .collect()
    }

    fn cycle_of(edges: &[(&str, &[&str])], me: &str) -> Option<String> {
        let g = graph(edges);
        find_cycle(me, &g[me], |name| g.get(name).cloned()).map(|path| path.join(" → "))
    }

    #[test]
    fn no_cycle_in_a_chain_or_a_diamond() {
        let chain: &[(&str, &[&str])] = &[("a", &[]), ("b", &["a"]), ("c", &["b"])];
        assert_eq!(cycle_of(chain, "c"), None);
        let diamond: &[(&str, &[&str])] = &[
            ("db", &[]),
            ("left", &["db"]),
            ("right", &["db"]),
            ("app", &["left", "right"]),
        ];
        assert_eq!(cycle_of(diamond, "app"), None);
    }

    #[test]
    fn every_member_finds_a_two_and_a_three_cycle() {
        let two: &[(&str, &[&str])] = &[("a", &["b"]), ("b", &["a"])];
        assert_eq!(cycle_of(two, "a").as_deref(), Some("a → b → a"));
        assert_eq!(cycle_of(two, "b").as_deref(), Some("b → a → b"));
        let three: &[(&str, &[&str])] = &[("a", &["b"]), ("b", &["c"]), ("c", &["a"])];
        assert_eq!(cycle_of(three, "a").as_deref(), Some("a → b → c → a"));
        assert_eq!(cycle_of(three, "c").as_deref(), Some("c → a → b → c"));
        let own: &[(&str, &[&str])] = &[("a", &["a"])];
        assert_eq!(cycle_of(own, "a").as_deref(), Some("a → a"));
    }

    #[test]
    fn depending_on_a_cycle_is_not_being_in_one() {
        let edges: &[(&str, &[&str])] = &[("a", &["b"]), ("b", &["a"]), ("app", &["a", "x"])];
        assert_eq!(cycle_of(edges, "app"), None);
    }

    #[test]
    fn a_cycle_behind_a_shared_dependency_is_found() {
        // Reaching `shared` first by a dead end must not hide the way back through it.
        let edges: &[(&str, &[&str])] = &[
            ("me", &["x", "y"]),
            ("x", &["shared"]),
            ("y", &["me"]),
            ("shared", &[]),
        ];
        assert_eq!(cycle_of(edges, "me").as_deref(), Some("me → y → me"));
    }

    #[test]
    fn combine_orders_cycle_unknown_failed_waiting() {
        use DependencyState::*;
        let states = vec![
            ("a".to_string(), Waiting),
            ("b".to_string(), Failed("exit 1".into())),
            ("c".to_string(), Unknown),
            ("d".to_string(), Satisfied),
        ];
        let cycle = vec!["x".to_string(), "y".to_string(), "x".to_string()];
        assert_eq!(
            combine(Some(&cycle), &states),
            Dependencies::Cycle("x → y → x".into())
        );
        assert_eq!(
            combine(None, &states),
            Dependencies::Unknown(vec!["c".into()])
        );
        assert_eq!(
            combine(None, &states[..2]),
            Dependencies::Failed {
                name: "b".into(),
                reason: "exit 1".into()
            }
        );
        assert_eq!(
            combine(None, &states[..1]),
            Dependencies::Waiting(vec!["a".into()])
        );
        assert_eq!(combine(None, &states[3..]), Dependencies::Satisfied);
        assert_eq!(combine(None, &[]), Dependencies::Satisfied);
    }

    #[test]
    fn states_are_read_from_the_dependencys_supervise_state() {
        use DependencyState::{Failed, Satisfied, Unknown, Waiting};
        let scan = tempfile::tempdir().unwrap();
        let state_of = |name: &str| dependency_state(scan.path(), name);
        assert_eq!(state_of("db"), Unknown);
        assert_eq!(state_of("../etc"), Unknown);
        std::fs::create_dir_all(scan.path().join("db/supervise")).unwrap();
        assert_eq!(state_of("db"), Waiting);
        for (state, reason, seen) in [
            ("starting", "", Waiting),
            ("running", "", Satisfied),
            ("ok", "", Satisfied),
            ("error", "exit 3", Failed("exit 3".into())),
        ] {
            std::fs::write(
                scan.path().join("db/supervise/state"),
                format!("state={state}\nwant=up\npid=0\nstarttime=0\nsince=1.000000000\nready_since=\nlast_exit=\nrestarts=0\noneshot=0\nreason={reason}\n"),
            )
            .unwrap();
            assert_eq!(state_of("db"), seen, "{state}");
        }
    }
}
