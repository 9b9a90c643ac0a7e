//! What a service's directory and definition get from their surroundings before runsv
//! supervises it: a `supervise/` through a link into a /run that may still be empty,
//! and, for YAML services, the tree's `SVDIR`.

use runsv::definition::{Environment, ServiceDefinition};
use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

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
