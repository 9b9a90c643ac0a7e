//! Reading a small file of a service directory (`supervise/state`) without ever
//! blocking: anyone who can write the directory can put a FIFO, a device or a huge file
//! where svdir expects a file runsv wrote, and a blocked read would hold up svdir's
//! whole event loop, the stop's deadline included.

use std::fs::File;
use std::io::Read;

/// Far above any state file runsv writes (a few hundred bytes).
const LIMIT: u64 = 64 * 1024;

/// The open flags: a FIFO opened this way returns at once (no writer needed), a
/// terminal does not become svdir's controlling terminal.
pub fn flags() -> nix::fcntl::OFlag {
    nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_NOCTTY
}

/// The text of `file`, opened with [`flags`], if it is a regular file of at most
/// `LIMIT` bytes in UTF-8; `None` for anything else.
pub fn text(file: File) -> Option<String> {
    let metadata = file.metadata().ok()?;
    if !metadata.file_type().is_file() {
        return None;
    }
    let mut bytes = Vec::new();
    file.take(LIMIT + 1).read_to_end(&mut bytes).ok()?;
    if bytes.len() as u64 > LIMIT {
        return None;
    }
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::{FromRawFd, OwnedFd};

    fn open(path: &std::path::Path) -> File {
        let fd = nix::fcntl::open(path, flags(), nix::sys::stat::Mode::empty()).unwrap();
        // SAFETY: a fresh fd we own.
        File::from(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    #[test]
    fn only_small_regular_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain");
        std::fs::write(&plain, "state=down\n").unwrap();
        assert_eq!(text(open(&plain)).as_deref(), Some("state=down\n"));
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        // Neither the open nor the read waits for a writer.
        assert_eq!(text(open(&fifo)), None);
        assert_eq!(text(open(std::path::Path::new("/dev/zero"))), None);
        let huge = dir.path().join("huge");
        File::create(&huge).unwrap().set_len(1 << 40).unwrap();
        assert_eq!(text(open(&huge)), None);
    }
}
