//! runit's wording of system errors (`file does not exist`, `temporary failure`, …), so
//! that messages of runsv and sv read exactly like runit's where runit defines them.

use std::io;

/// runit's (djb's `error_str`) text for an errno.
pub fn runit_text(errno: i32) -> &'static str {
    use nix::libc::*;
    match errno {
        0 => "no error",
        EINTR => "interrupted system call",
        ENOMEM => "out of memory",
        ENOENT => "file does not exist",
        ETXTBSY => "text busy",
        EIO => "input/output error",
        EEXIST => "file already exists",
        ETIMEDOUT => "timed out",
        EINPROGRESS => "operation in progress",
        EAGAIN => "temporary failure",
        EPIPE => "broken pipe",
        EPERM => "permission denied",
        EACCES => "access denied",
        ENXIO => "device not configured",
        EPROTO => "protocol error",
        EISDIR => "is a directory",
        ECONNREFUSED => "connection refused",
        ENOTDIR => "not a directory",
        ESRCH => "no such process",
        E2BIG => "argument list too long",
        ENOEXEC => "exec format error",
        EBADF => "file descriptor not open",
        ECHILD => "no child processes",
        EDEADLK => "operation would cause deadlock",
        EFAULT => "bad address",
        ENOTBLK => "not a block device",
        EBUSY => "device busy",
        EXDEV => "cross-device link",
        ENODEV => "device does not support operation",
        EINVAL => "invalid argument",
        ENFILE => "system cannot open more files",
        EMFILE => "process cannot open more files",
        ENOTTY => "not a tty",
        EFBIG => "file too big",
        ENOSPC => "out of disk space",
        ESPIPE => "unseekable descriptor",
        EROFS => "read-only file system",
        EMLINK => "too many links",
        EDOM => "input out of range",
        ERANGE => "output out of range",
        ELOOP => "symbolic link loop",
        ENAMETOOLONG => "file name too long",
        ENOTEMPTY => "directory not empty",
        _ => "error",
    }
}

/// runit's text for an I/O error.
pub fn describe(error: &io::Error) -> &'static str {
    runit_text(error.raw_os_error().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    #[test]
    fn matches_runits_wording() {
        assert_eq!(super::runit_text(nix::libc::ENOENT), "file does not exist");
        assert_eq!(
            super::runit_text(nix::libc::EWOULDBLOCK),
            "temporary failure"
        );
        assert_eq!(super::runit_text(nix::libc::EACCES), "access denied");
    }
}
