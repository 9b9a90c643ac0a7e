//! One log directory: its lock, `current`, rotation into `@TAI64N.s` (or `.u` for the
//! processor), the number of old files kept, and writes that wait out a full disk
//! instead of dropping anything.

use crate::config::Config;
use crate::processor::Processor;
use crate::signals::Signals;
use crate::stamp::tai64n_hex;
use crate::{info, pausing, warn, warn_error};
use runsv::tai64n::Timestamp;
use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long runit's svlogd waits before retrying what failed (a write to a full disk,
/// a rename): the same here.
pub const RETRY: Duration = Duration::from_secs(3);

/// The most of `config` read: runit reads it whole, but a log directory's file must
/// not make the logger read without bound.
const CONFIG_MAX: u64 = 64 * 1024;

/// Output is written when this much is waiting, and at the latest when a read's
/// worth of input has been handled.
const PENDING_MAX: usize = 64 * 1024;

pub struct LogDir {
    /// As given on the command line, for messages.
    pub name: String,
    path: PathBuf,
    pub open: Option<Open>,
}

pub struct Open {
    _lock: File,
    current: File,
    pub config: Config,
    /// Bytes of `current`, including those still in `pending`.
    size: u64,
    pending: Vec<u8>,
    /// When `current` is next rotated by age (`t`).
    pub rotate_at: Option<Instant>,
    processor: Option<Processor>,
    /// Whether the line being written goes here (its `+`/`-` patterns).
    pub selected: bool,
}

impl LogDir {
    pub fn new(name: &OsStr) -> LogDir {
        LogDir {
            name: name.to_string_lossy().into_owned(),
            path: PathBuf::from(name),
            open: None,
        }
    }

    fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Opens the directory as runit's `logdir_open` does: lock, config, `current`
    /// (a non-empty one not marked as cleanly closed, by its owner's x bit, is kept as
    /// an `@….u` file). Returns whether it is functional; warns when not.
    pub fn open(&mut self, verbose: bool, signals: &mut Signals) -> bool {
        match fs::metadata(&self.path) {
            Err(error) => {
                warn_error("unable to open log directory", &self.name, &error);
                return false;
            }
            Ok(meta) if !meta.is_dir() => {
                let error = io::Error::from_raw_os_error(nix::libc::ENOTDIR);
                warn_error("unable to change directory", &self.name, &error);
                return false;
            }
            Ok(_) => {}
        }
        let lock = match OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_CLOEXEC | nix::libc::O_NONBLOCK)
            .open(self.file("lock"))
            .and_then(regular)
            .and_then(|file| {
                fs2::FileExt::try_lock_exclusive(&file)
                    .map(|()| file)
                    .map_err(|error| match error.raw_os_error() {
                        Some(_) => error,
                        None => io::Error::from_raw_os_error(nix::libc::EAGAIN),
                    })
            }) {
            Ok(lock) => lock,
            Err(error) => {
                warn_error("unable to lock directory", &self.name, &error);
                return false;
            }
        };
        let config = match read_config(&self.file("config")) {
            Ok(Some(text)) => {
                if verbose {
                    info(&format!("read: {}/config", self.name));
                }
                Config::parse(&text)
            }
            Ok(None) => Config::default(),
            Err(error) => {
                warn_error("unable to read config", &self.name, &error);
                Config::default()
            }
        };
        for (line, why) in &config.refused {
            warn(&format!(
                "{}/config: {}: {why}",
                self.name,
                String::from_utf8_lossy(line)
            ));
        }
        let current_path = self.file("current");
        let mut appended = false;
        let mut size = 0;
        match fs::metadata(&current_path) {
            Ok(meta) if meta.len() > 0 && meta.permissions().mode() & 0o100 == 0 => {
                let saved = self.unused_name('u');
                retry(signals, "unable to rename current", &self.name, || {
                    fs::rename(&current_path, &saved)
                });
                remove_oldest(&self.path, &self.name, config.nmax, verbose);
            }
            Ok(meta) if !meta.is_file() => {
                // A FIFO or device would never take the lines: no retry can help.
                let error = io::Error::from_raw_os_error(nix::libc::EINVAL);
                warn_error("unable to open current", &self.name, &error);
                return false;
            }
            Ok(meta) => {
                appended = true;
                size = meta.len();
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => {
                warn_error("unable to stat current", &self.name, &error);
                return false;
            }
        }
        let current = retry(signals, "unable to open current", &self.name, || {
            open_current(&current_path)
        });
        let rotate_at =
            (config.tmax > 0).then(|| Instant::now() + Duration::from_secs(config.tmax));
        if verbose {
            let how = if appended { "append" } else { "new" };
            info(&format!("{how}: {}/current", self.name));
        }
        self.open = Some(Open {
            _lock: lock,
            current,
            config,
            size,
            pending: Vec::new(),
            rotate_at,
            processor: None,
            selected: true,
        });
        true
    }

    /// Writes out everything, waits for the processor, and marks `current` as cleanly
    /// closed (mode 0744), as runit's `logdir_close`.
    pub fn close(&mut self, verbose: bool, signals: &mut Signals) {
        self.wait_processor(verbose, signals, false);
        let Some(open) = self.open.as_mut() else {
            return;
        };
        if verbose {
            info(&format!("close: {}", self.name));
        }
        flush(open, &self.path, &self.name, signals);
        retry(
            signals,
            "unable to fsync current logfile",
            &self.name,
            || open.current.sync_all(),
        );
        retry(signals, "unable to set mode of current", &self.name, || {
            open.current
                .set_permissions(fs::Permissions::from_mode(0o744))
        });
        self.open = None;
    }

    /// Appends bytes of a line to `current`, rotating first where runit would: when
    /// `current` has reached its size (`s`), so that no file exceeds it.
    pub fn put(&mut self, mut bytes: &[u8], verbose: bool, signals: &mut Signals) {
        while !bytes.is_empty() {
            let Some(open) = self.open.as_mut() else {
                return;
            };
            let sizemax = open.config.sizemax;
            let take = if sizemax == 0 {
                bytes.len()
            } else if open.size >= sizemax {
                self.rotate(verbose, signals);
                continue;
            } else {
                bytes
                    .len()
                    .min(usize::try_from(sizemax - open.size).unwrap_or(usize::MAX))
            };
            open.pending.extend_from_slice(&bytes[..take]);
            open.size += take as u64;
            bytes = &bytes[take..];
            if open.pending.len() >= PENDING_MAX {
                flush(open, &self.path, &self.name, signals);
            }
        }
    }

    /// After a line's newline: rotates when fewer than `linemax` bytes are left before
    /// the size limit, as runit does, so that files end with whole lines.
    pub fn line_end(&mut self, linemax: usize, verbose: bool, signals: &mut Signals) {
        let Some(open) = self.open.as_ref() else {
            return;
        };
        let sizemax = open.config.sizemax;
        let linemax = linemax as u64;
        if sizemax > 0 && sizemax >= linemax && open.size >= sizemax - linemax {
            self.rotate(verbose, signals);
        }
    }

    pub fn flush(&mut self, signals: &mut Signals) {
        if let Some(open) = self.open.as_mut() {
            flush(open, &self.path, &self.name, signals);
        }
    }

    /// A name `@TAI64N.x` that no file has yet.
    fn unused_name(&self, suffix: char) -> PathBuf {
        loop {
            let mut name = Vec::with_capacity(27);
            tai64n_hex(Timestamp::now(), &mut name);
            name.push(b'.');
            name.push(suffix as u8);
            let path = self.path.join(OsStr::from_bytes(&name));
            if fs::symlink_metadata(&path).is_err() {
                return path;
            }
        }
    }

    /// runit's `rotate`: waits for a processor still running, renames a non-empty
    /// `current` to `@….s` (`@….u` for the processor), starts a new `current`, removes
    /// the oldest files beyond `n`, starts the processor.
    pub fn rotate(&mut self, verbose: bool, signals: &mut Signals) {
        self.wait_processor(verbose, signals, true);
        let has_processor = match self.open.as_ref() {
            Some(open) => open.config.processor.is_some(),
            None => return,
        };
        let saved = self.unused_name(if has_processor { 'u' } else { 's' });
        let (path, name) = (self.path.clone(), self.name.clone());
        let Some(open) = self.open.as_mut() else {
            return;
        };
        if open.config.tmax > 0 && open.rotate_at.is_some_and(|at| at <= Instant::now()) {
            open.rotate_at = Some(Instant::now() + Duration::from_secs(open.config.tmax));
        }
        if open.size == 0 {
            return;
        }
        flush(open, &path, &name, signals);
        retry(signals, "unable to fsync current logfile", &name, || {
            open.current.sync_all()
        });
        retry(signals, "unable to set mode of current", &name, || {
            open.current
                .set_permissions(fs::Permissions::from_mode(0o744))
        });
        if verbose {
            info(&format!(
                "rename: {name}/current {} {}",
                file_name(&saved),
                open.size
            ));
        }
        let current_path = path.join("current");
        retry(signals, "unable to rename current", &name, || {
            fs::rename(&current_path, &saved)
        });
        open.current = retry(signals, "unable to create new current", &name, || {
            open_current(&current_path)
        });
        open.size = 0;
        remove_oldest(&path, &name, open.config.nmax, verbose);
        if let Some(command) = open.config.processor.clone() {
            open.processor = Processor::start(&path, &name, &command, saved, verbose);
        }
    }

    /// Reaps a processor that has exited (`block`: waits for it), completing its work
    /// or restarting it as runit does. When `until_done`, waits until one run succeeds.
    pub fn wait_processor(&mut self, verbose: bool, signals: &mut Signals, until_done: bool) {
        let (path, name) = (self.path.clone(), self.name.clone());
        let Some(open) = self.open.as_mut() else {
            return;
        };
        while let Some(mut processor) = open.processor.take() {
            match processor.reap(true) {
                Some(true) => processor.complete(&path, &name, verbose, signals),
                Some(false) if until_done => {
                    let command = open.config.processor.clone().unwrap_or_default();
                    open.processor = processor.restart(&path, &name, &command);
                }
                _ => {}
            }
        }
    }

    /// On SIGCHLD: completes or restarts a processor that has exited, without waiting.
    pub fn check_processor(&mut self, verbose: bool, signals: &mut Signals) {
        let (path, name) = (self.path.clone(), self.name.clone());
        let Some(open) = self.open.as_mut() else {
            return;
        };
        let Some(mut processor) = open.processor.take() else {
            return;
        };
        match processor.reap(false) {
            None => open.processor = Some(processor),
            Some(true) => processor.complete(&path, &name, verbose, signals),
            Some(false) => {
                let command = open.config.processor.clone().unwrap_or_default();
                open.processor = processor.restart(&path, &name, &command);
            }
        }
    }
}

/// Writes what is pending; on a full disk first removes old files down to `N` (as
/// runit), then waits and retries: a line is never dropped.
fn flush(open: &mut Open, path: &Path, name: &str, signals: &mut Signals) {
    let mut written = 0;
    while written < open.pending.len() {
        match open.current.write(&open.pending[written..]) {
            Ok(0) => {
                let error = io::Error::from_raw_os_error(nix::libc::ENOSPC);
                pausing("unable to write to current", name, &error);
                signals.pause(RETRY);
            }
            Ok(n) => written += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => {
                let full = error.raw_os_error() == Some(nix::libc::ENOSPC);
                if full
                    && open.config.nmin < open.config.nmax
                    && remove_for_space(path, name, open.config.nmin)
                {
                    continue;
                }
                pausing("unable to write to current", name, &error);
                signals.pause(RETRY);
            }
        }
    }
    open.pending.clear();
}

/// Repeats `action` until it succeeds, saying why it pauses: runit's answer to errors
/// that losing log lines would be the only other way out of.
fn retry<T>(
    signals: &mut Signals,
    what: &str,
    name: &str,
    mut action: impl FnMut() -> io::Result<T>,
) -> T {
    loop {
        match action() {
            Ok(value) => return value,
            Err(error) => {
                pausing(what, name, &error);
                signals.pause(RETRY);
            }
        }
    }
}

fn open_current(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_CLOEXEC | nix::libc::O_NONBLOCK)
        .open(path)
        .and_then(regular)?;
    file.set_permissions(fs::Permissions::from_mode(0o644))?;
    Ok(file)
}

/// Refuses a FIFO or a device where a regular file belongs: opened without blocking
/// (a FIFO with no reader would hang the logger), never written.
fn regular(file: File) -> io::Result<File> {
    if file.metadata()?.is_file() {
        Ok(file)
    } else {
        Err(io::Error::from_raw_os_error(nix::libc::EINVAL))
    }
}

/// The config file's contents; None when there is none. A FIFO or device is refused
/// (opened without blocking, never read).
fn read_config(path: &Path) -> io::Result<Option<Vec<u8>>> {
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC)
        .open(path)
    {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error),
    };
    let file = regular(file)?;
    let mut text = Vec::new();
    file.take(CONFIG_MAX).read_to_end(&mut text)?;
    Ok(Some(text))
}

pub fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The rotated files of a directory (`@` + 24 hex digits + `.` + a letter), by name.
fn rotated_files(path: &Path, name: &str) -> Vec<OsString> {
    let mut found = Vec::new();
    match fs::read_dir(path) {
        Ok(entries) => {
            for entry in entries.flatten() {
                let file = entry.file_name();
                let bytes = file.as_bytes();
                if bytes.len() == 27 && bytes[0] == b'@' {
                    found.push(file);
                }
            }
        }
        Err(error) => warn_error("unable to read directory", name, &error),
    }
    found
}

/// runit's `rmoldest`: removes a processor's leftover `.t` files, and the oldest old
/// file when there are more than `n` (0: keep all).
fn remove_oldest(path: &Path, name: &str, nmax: u64, verbose: bool) {
    let mut kept = Vec::new();
    for file in rotated_files(path, name) {
        if file.as_bytes()[26] == b't' {
            if let Err(error) = fs::remove_file(path.join(&file)) {
                warn_error(
                    "unable to unlink processor leftover",
                    &file.to_string_lossy(),
                    &error,
                );
            }
        } else {
            kept.push(file);
        }
    }
    if nmax > 0 && kept.len() as u64 > nmax {
        if let Some(oldest) = kept.iter().min() {
            if verbose {
                info(&format!("delete: {name}/{}", oldest.to_string_lossy()));
            }
            if let Err(error) = fs::remove_file(path.join(oldest)) {
                warn_error("unable to unlink oldest logfile", name, &error);
            }
        }
    }
}

/// On a full disk: removes the oldest old file while more than `N` remain. Whether one
/// was removed (then the write is retried at once).
fn remove_for_space(path: &Path, name: &str, nmin: u64) -> bool {
    let files = rotated_files(path, name);
    if files.len() as u64 <= nmin {
        return false;
    }
    let Some(oldest) = files.iter().min() else {
        return false;
    };
    warn(&format!(
        "out of disk space, delete: {name}/{}",
        oldest.to_string_lossy()
    ));
    match fs::remove_file(path.join(oldest)) {
        Ok(()) => true,
        Err(error) => {
            warn_error("unable to unlink oldest logfile", name, &error);
            false
        }
    }
}
