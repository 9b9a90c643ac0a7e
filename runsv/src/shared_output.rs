//! stdout and stderr as one file shared by many writers.
//!
//! svdir, every runsv and every runit-form service write to the same open file
//! description: svdir's stdout and stderr, inherited. When that is a regular file
//! opened without O_APPEND (`svdir /service >log`, a container's log file), all of them
//! write at one shared offset that each write advances only after it lands, so two
//! writers at once write at the same place and one line overwrites the other; and the
//! relay, which reopens the file on a description of its own (see relay.rs), appends
//! where the others then overwrite it. With O_APPEND on the shared description, every
//! write goes to the end of the file as one piece, whoever makes it.

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::stat::{fstat, SFlag};

/// Sets O_APPEND on stdout and stderr where they are regular files. Anything else (a
/// terminal, a pipe, /dev/null, a closed fd) is left as it is; a failure is harmless
/// (the file keeps its old behaviour), so it is not reported.
pub fn append_to_files() {
    for fd in [1, 2] {
        let regular = fstat(fd).is_ok_and(|stat| {
            SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFREG
        });
        if !regular {
            continue;
        }
        if let Ok(flags) = fcntl(fd, FcntlArg::F_GETFL) {
            let flags = OFlag::from_bits_truncate(flags);
            if !flags.contains(OFlag::O_APPEND) {
                let _ = fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_APPEND));
            }
        }
    }
}
