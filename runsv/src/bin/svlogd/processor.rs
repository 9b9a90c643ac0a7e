//! The processor (`!command` in `config`), run on each rotated file as runit runs it:
//! `sh -c command` in the log directory, standard input the rotated `@….u`, standard
//! output `@….t`, `state` on fd 4 and `newstate` on fd 5. When it exits 0, `@….t`
//! becomes `@….s`, `@….u` is removed and `newstate` becomes `state`; when it fails,
//! it runs again on the same file.

use crate::logdir::{file_name, RETRY};
use crate::signals::Signals;
use crate::{info, pausing, warn, warn_error};
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

pub struct Processor {
    child: Child,
    /// The rotated file it reads (`@….u`).
    input: PathBuf,
}

impl Processor {
    /// Starts the processor on `input`; None (with a warning) when it cannot be.
    pub fn start(
        dir: &Path,
        name: &str,
        command: &[u8],
        input: PathBuf,
        verbose: bool,
    ) -> Option<Processor> {
        if verbose {
            info(&format!("processing: {name}/{}", file_name(&input)));
        }
        match spawn(dir, command, &input) {
            Ok(child) => Some(Processor { child, input }),
            Err(error) => {
                warn_error("unable to run processor", name, &error);
                None
            }
        }
    }

    /// Whether it succeeded, once it has exited (`block`: waits for that).
    pub fn reap(&mut self, block: bool) -> Option<bool> {
        let status = if block {
            loop {
                match self.child.wait() {
                    Ok(status) => break Some(status),
                    Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => break None,
                }
            }
        } else {
            self.child.try_wait().ok().flatten()
        }?;
        Some(status.code() == Some(0) && status.signal().is_none())
    }

    /// After a failure: removes its output and runs it again on the same file.
    pub fn restart(self, dir: &Path, name: &str, command: &[u8]) -> Option<Processor> {
        warn(&format!("processor failed, restart: {name}"));
        let _ = fs::remove_file(with_suffix(&self.input, b't'));
        Processor::start(dir, name, command, self.input, false)
    }

    /// After a success: the output becomes the rotated file, the state is committed.
    pub fn complete(self, dir: &Path, name: &str, verbose: bool, signals: &mut Signals) {
        let output = with_suffix(&self.input, b't');
        let done = with_suffix(&self.input, b's');
        let mut retry = |what: &str, action: &mut dyn FnMut() -> io::Result<()>| loop {
            match action() {
                Ok(()) => return,
                Err(error) => {
                    pausing(what, name, &error);
                    signals.pause(RETRY);
                }
            }
        };
        retry("unable to rename processed", &mut || {
            fs::rename(&output, &done)
        });
        retry("unable to set mode of processed", &mut || {
            fs::set_permissions(&done, fs::Permissions::from_mode(0o744))
        });
        if fs::remove_file(&self.input).is_err() {
            warn(&format!(
                "unable to unlink: {name}/{}",
                file_name(&self.input)
            ));
        }
        retry("unable to rename state", &mut || {
            fs::rename(dir.join("newstate"), dir.join("state"))
        });
        if verbose {
            info(&format!("processed: {name}/{}", file_name(&done)));
        }
    }
}

fn with_suffix(path: &Path, suffix: u8) -> PathBuf {
    let mut name = path.as_os_str().as_bytes().to_vec();
    if let Some(last) = name.last_mut() {
        *last = suffix;
    }
    PathBuf::from(OsStr::from_bytes(&name))
}

/// An fd numbered above the ones the processor gets (0 to 5), so that moving one into
/// place never overwrites the other.
fn high(file: File) -> io::Result<OwnedFd> {
    let fd = nix::fcntl::fcntl(file.as_raw_fd(), nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(10))?;
    // SAFETY: fcntl just returned this new descriptor, owned by nothing else.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

fn spawn(dir: &Path, command: &[u8], input: &Path) -> io::Result<Child> {
    let stdin = File::open(input)?;
    let stdout = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(with_suffix(input, b't'))?;
    let state_path = dir.join("state");
    let state = match File::open(&state_path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            File::create(&state_path)?;
            File::open(&state_path)?
        }
        Err(error) => return Err(error),
    };
    let newstate = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(dir.join("newstate"))?;
    let (state, newstate) = (high(state)?, high(newstate)?);
    let (state_fd, newstate_fd) = (state.as_raw_fd(), newstate.as_raw_fd());
    let mut command_line = Command::new("/bin/sh");
    command_line
        .arg("-c")
        .arg(OsStr::from_bytes(command))
        .current_dir(dir)
        .stdin(stdin)
        .stdout(stdout);
    // SAFETY: only dup2, which is async-signal-safe, runs between fork and exec.
    unsafe {
        command_line.pre_exec(move || {
            nix::unistd::dup2(state_fd, 4)?;
            nix::unistd::dup2(newstate_fd, 5)?;
            Ok(())
        });
    }
    let child = command_line.spawn();
    drop((state, newstate));
    child
}
