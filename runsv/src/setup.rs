//! What a service's directory and definition get from their surroundings before runsv
//! supervises it: a `supervise/` through a link into a /run that may still be empty, or
//! in the state root when the directory is read-only, and, for YAML services, the
//! tree's `SVDIR`; and what a failure of the service does to the tree.

use runsv::definition::{Environment, ServiceDefinition};
use runsv::errno_text;
use runsv::failure::OnFailure;
use runsv::state_dir;
use runsv::supervise::SuperviseDir;
use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

/// The service's `supervise/` (`own` is the service directory relative to runsv's),
/// created: where readers look first (runsv::state_dir::locate), else, when the
/// service directory cannot be written, the state root's. A `supervise/` that can be
/// made nowhere ends runsv with EXIT_NO_STATE after the reasons, and the failure
/// policy applied: svdir then leaves the service in error rather than start runsv
/// again and again.
pub fn supervise_dir(
    own: &Path,
    label: &str,
    on_failure: OnFailure,
) -> Result<SuperviseDir, String> {
    let supervise = SuperviseDir::of_service(own);
    let own_error = match make_supervise_dir(&supervise.path) {
        Ok(()) => return Ok(supervise),
        Err(error)
            if supervise.path == own.join("supervise") && state_dir::cannot_write_here(&error) =>
        {
            error
        }
        Err(error) => {
            return Err(format!(
                "unable to mkdir {}: {}",
                shown(&supervise.path),
                errno_text::describe(&error)
            ))
        }
    };
    let Some(fallback) = state_dir::fallback(own) else {
        no_state(
            label,
            on_failure,
            &format!(
                "unable to mkdir supervise: {}, and no state root to keep it in (set {})",
                errno_text::describe(&own_error),
                state_dir::ROOT_VARIABLE
            ),
        );
    };
    match state_dir::create(&fallback) {
        Ok(()) => Ok(SuperviseDir { path: fallback }),
        Err(error) => no_state(
            label,
            on_failure,
            &format!(
                "unable to mkdir supervise: {}; nor {}: {}",
                errno_text::describe(&own_error),
                fallback.display(),
                errno_text::describe(&error)
            ),
        ),
    }
}

fn shown(path: &Path) -> String {
    path.display().to_string()
}

/// The service cannot have a state anywhere: nothing can run it.
fn no_state(label: &str, on_failure: OnFailure, reason: &str) -> ! {
    eprintln!("runsv {label}: fatal: {reason}");
    // warn would only say it again.
    if on_failure == OnFailure::Stop {
        apply_failure_policy(label, on_failure, &format!("error: {reason}"));
    }
    std::process::exit(state_dir::EXIT_NO_STATE);
}

/// What `on_failure` does when the service fails (`failure` says how).
pub fn apply_failure_policy(label: &str, on_failure: OnFailure, failure: &str) {
    match on_failure {
        OnFailure::Continue => {}
        OnFailure::Warn => eprintln!("runsv {label}: failed: {failure}"),
        OnFailure::Stop => {
            let outcome = match runsv::failure::request_tree_stop() {
                Ok(done) => done,
                Err(problem) => format!("cannot stop the tree: {problem}"),
            };
            eprintln!("runsv {label}: failed: {failure}; on_failure is stop: {outcome}");
        }
    }
}

/// `supervise` may be a dangling symlink to where the files should go (read-only
/// service directories): create its target then (runit). Unlike runit's, with its
/// missing parents (0755, as `mkdir -p`): Debian's links point into /run/runit/supervise/,
/// which nothing else creates on a fresh /run when runtree replaces runit.
pub fn make_supervise_dir(path: &Path) -> io::Result<()> {
    let target = match fs::read_link(path) {
        Ok(target) if !path.exists() => {
            let target = path.parent().map(|p| p.join(&target)).unwrap_or(target);
            if let Some(parent) = target.parent() {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o755)
                    .create(parent)?;
            }
            target
        }
        _ => path.to_path_buf(),
    };
    match fs::DirBuilder::new().mode(0o700).create(&target) {
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        result => result,
    }
}

/// A YAML service's environment is only what it names besides PATH; `SVDIR` (which
/// svdir sets for every runsv, and runit-form services inherit) is added unless it
/// names one, so that `sv NAME` in it finds its siblings as under runit-form services.
pub fn add_svdir(definition: &mut ServiceDefinition) {
    let Environment::Exactly(variables) = &mut definition.environment else {
        return;
    };
    let Some(svdir) = std::env::var_os("SVDIR").and_then(|v| v.into_string().ok()) else {
        return;
    };
    if !variables.iter().any(|(name, _)| name == "SVDIR") {
        variables.push(("SVDIR".to_string(), svdir));
    }
}
