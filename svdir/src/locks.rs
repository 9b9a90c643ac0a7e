//! Who holds a flock: `/proc/locks` names the process that took each lock. svdir needs
//! this only for a runsv it adopted (not its child, so its pid is unknown) that it can
//! no longer reach through its directory, or that must be killed at the stop deadline:
//! the runsv is the process holding the flock on its `supervise/lock`.

use crate::chain::Id;

/// The pid holding a FLOCK on the file `(st_dev, st_ino)`, if `/proc/locks` shows one.
pub fn holder(file: Id) -> Option<u32> {
    let text = std::fs::read_to_string("/proc/locks").ok()?;
    holder_in(&text, file)
}

/// The glibc encoding of a dev_t.
fn major_minor(dev: u64) -> (u64, u64) {
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    (major, minor)
}

/// Lines look like `3: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF`; a process
/// waiting for a lock is listed as `3: -> FLOCK …` and is skipped.
fn holder_in(text: &str, (dev, ino): Id) -> Option<u32> {
    let (major, minor) = major_minor(dev);
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [_, kind, _, _, pid, file, ..] = fields.as_slice() else {
            continue;
        };
        if *kind != "FLOCK" {
            continue;
        }
        let mut parts = file.split(':');
        let (Some(maj), Some(min), Some(inode)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let matches = u64::from_str_radix(maj, 16).ok() == Some(major)
            && u64::from_str_radix(min, 16).ok() == Some(minor)
            && inode.parse::<u64>().ok() == Some(ino);
        if matches {
            return pid.parse().ok().filter(|&p| p > 0);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn parses_proc_locks_lines() {
        let dev = (8 << 8) | 1; // 08:01
        let text = "1: POSIX  ADVISORY  WRITE 99 08:01:77 0 EOF\n\
                    2: FLOCK  ADVISORY  WRITE 1234 08:01:77 0 EOF\n\
                    2: -> FLOCK  ADVISORY  WRITE 555 08:01:77 0 EOF\n\
                    3: FLOCK  ADVISORY  WRITE 42 00:2a:77 0 EOF\n";
        assert_eq!(holder_in(text, (dev, 77)), Some(1234));
        assert_eq!(holder_in(text, (0x2a, 77)), Some(42));
        assert_eq!(holder_in(text, (dev, 78)), None);
    }

    #[test]
    fn finds_our_own_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let file = std::fs::File::create(&path).unwrap();
        let m = std::fs::metadata(&path).unwrap();
        assert_eq!(holder((m.dev(), m.ino())), None);
        // SAFETY: flock on an fd we own.
        assert_eq!(
            unsafe { nix::libc::flock(file.as_raw_fd(), nix::libc::LOCK_EX) },
            0
        );
        assert_eq!(holder((m.dev(), m.ino())), Some(std::process::id()));
    }
}
