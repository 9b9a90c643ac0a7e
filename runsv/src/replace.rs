//! How runsv replaces a file of `supervise/`: atomically ([`write_atomically`]), and on a
//! disk where that is impossible, in a way that still never leaves a file saying what is
//! no longer true ([`replace_file`]). The formats themselves are in `supervise`.

use crate::reader::{self, Links};
use nix::libc;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Replaces `path` atomically: writes `path.new`, then swaps it with `path`
/// (`renameat2(RENAME_EXCHANGE)`) and removes the old file, now at `path.new`; where
/// there is no `path` yet, or the filesystem cannot exchange, renames it over `path`.
///
/// `path.new` is always a new file (O_EXCL, which never follows a link): opening
/// whatever is there, such as a symlink planted in supervise/, would truncate and write
/// the file it points to. A leftover (from a write that failed, or planted) is removed
/// first: unlink removes a link, not its target. The exchange (or rename) replaces
/// `path` itself, a link there included, so nothing is written through one.
///
/// Why an exchange: ext4 treats a rename over an existing file as "replace via rename"
/// and, to protect programs that do not fsync, allocates the new file's blocks and
/// starts writing them at once (`auto_da_alloc`); the old file's blocks are then freed
/// (a discard, on a disk mounted with `discard`). For files that are rewritten at every
/// change and worthless after a crash, that is all waste: measured on a stop of 1000
/// services, it was most of runsv's time outside inode allocation. An exchange and an
/// unlink show readers the same thing (the old file, then the new one, never a partial
/// one), and a file that lived a short time is removed before it ever reached the disk.
pub fn write_atomically(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let mut new_name = path.as_os_str().to_owned();
    new_name.push(".new");
    let new_path = PathBuf::from(new_name);
    let create = || {
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&new_path)
    };
    let mut file = match create() {
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
            fs::remove_file(&new_path)?;
            create()?
        }
        result => result?,
    };
    file.write_all(contents)?;
    drop(file);
    match exchange(&new_path, path) {
        // The old file is at `path.new` now; readers that have it open keep it.
        Ok(()) => match fs::remove_file(&new_path) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
            _ => Ok(()),
        },
        // No `path` yet (ENOENT), or no exchange here (EINVAL: a filesystem without
        // it; ENOSYS: a kernel without renameat2): a plain rename. A missing
        // `path.new` fails the rename too.
        Err(error)
            if matches!(
                error.raw_os_error(),
                Some(libc::ENOENT | libc::EINVAL | libc::ENOSYS)
            ) =>
        {
            fs::rename(&new_path, path)
        }
        Err(error) => Err(error),
    }
}

/// runsv's way to replace a file of supervise/: [`write_atomically`]; where that fails
/// (a full disk, out of inodes: it needs a new file), the file is overwritten in place,
/// which needs no new block; and where that fails too, it is removed: a file runsv
/// could not rewrite must not go on saying what is no longer true (`sv` suppresses a
/// command, or reports success, from what it reads). The atomic write's error is
/// returned even when the file was made current in place, so that the caller says so
/// and tries the atomic write again (an in-place write can be read half done).
pub fn replace_file(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let error = match write_atomically(path, contents, mode) {
        Ok(()) => return Ok(()),
        Err(error) => error,
    };
    if overwrite_in_place(path, contents).is_err() {
        match fs::remove_file(path) {
            Err(removal) if removal.kind() != io::ErrorKind::NotFound => return Err(removal),
            _ => {}
        }
    }
    Err(error)
}

/// Writes `contents` over the start of the regular file at `path` with one pwrite, never
/// shrinking it (a truncation could free the block a retry needs): a shorter text is
/// padded with newlines, which every reader of these files skips.
fn overwrite_in_place(path: &Path, contents: &[u8]) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::FileExt;
    if reader::kind_at(None, path, Links::Refuse)? != Some(reader::Kind::Regular) {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    let file = fs::OpenOptions::new()
        .write(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC)
        .open(path)?;
    let metadata = file.metadata()?;
    if !metadata.file_type().is_file() {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    let mut bytes = contents.to_vec();
    let old = usize::try_from(metadata.len()).unwrap_or(usize::MAX);
    if bytes.len() < old {
        bytes.resize(old, b'\n');
    }
    file.write_all_at(&bytes, 0)?;
    // A rename is what tells a waiting `sv` (dnotify) that a file changed; none happened,
    // so a change of times does (DN_ATTRIB), which needs no space either.
    let now = nix::sys::time::TimeSpec::UTIME_NOW;
    nix::sys::stat::futimens(file.as_raw_fd(), &now, &now)?;
    Ok(())
}

/// `renameat2(a, b, RENAME_EXCHANGE)`, by its system call: C libraries other than
/// glibc (musl, for the static build) have no wrapper for it.
fn exchange(a: &Path, b: &Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let a = std::ffi::CString::new(a.as_os_str().as_bytes())?;
    let b = std::ffi::CString::new(b.as_os_str().as_bytes())?;
    // SAFETY: two NUL-terminated paths that live across the call.
    let result = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
