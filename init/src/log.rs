//! Messages on stderr: the console on a machine, the container's log otherwise.

use std::io::Write;

/// Writes `init: MSG` with a single write, so that lines from init and from services
/// sharing the console do not interleave mid-line. A failed write (console gone) is
/// dropped: there is nowhere else to report it.
pub fn line(msg: &str) {
    let text = format!("init: {msg}\n");
    let _ = std::io::stderr().write_all(text.as_bytes());
}

macro_rules! log {
    ($($arg:tt)*) => { $crate::log::line(&format!($($arg)*)) };
}
pub(crate) use log;

/// Sets O_APPEND on stdout and stderr where they are regular files (`init >log`, a
/// container's log file): init, svdir, every runsv and the services share that open
/// file description, and without O_APPEND they write at one shared offset and
/// overwrite each other's lines (runsv::shared_output says more; init has no
/// dependency on that library). Anything else is left as it is.
pub fn append_to_files() {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    use nix::sys::stat::{fstat, SFlag};
    for fd in [1, 2] {
        let regular = fstat(fd).is_ok_and(|stat| {
            SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFREG
        });
        if let (true, Ok(flags)) = (regular, fcntl(fd, FcntlArg::F_GETFL)) {
            let flags = OFlag::from_bits_truncate(flags);
            let _ = fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_APPEND));
        }
    }
}
