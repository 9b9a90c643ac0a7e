//! runit's wording of system errors (`file does not exist`, `temporary failure`, …), so
//! that messages of every runtree program read exactly like runit's.
//!
//! runit does not use strerror(3): it carries djb's `error_str`, a chain of comparisons
//! with its own wording. Scripts match on these strings, so they are copied here, in the
//! chain's order: where two names share a value on Linux (EAGAIN and EWOULDBLOCK,
//! EDEADLK and EDEADLOCK, EOPNOTSUPP and ENOTSUP), the first entry wins, as it does in
//! runit; an errno the chain does not know is runit's "unknown error".

use nix::libc::*;
use std::io;

const TABLE: &[(i32, &str)] = &[
    (0, "no error"),
    (EINTR, "interrupted system call"),
    (ENOMEM, "out of memory"),
    (ENOENT, "file does not exist"),
    (ETXTBSY, "text busy"),
    (EIO, "input/output error"),
    (EEXIST, "file already exists"),
    (ETIMEDOUT, "timed out"),
    (EINPROGRESS, "operation in progress"),
    (EAGAIN, "temporary failure"),
    (EWOULDBLOCK, "input/output would block"),
    (EPIPE, "broken pipe"),
    (EPERM, "permission denied"),
    (EACCES, "access denied"),
    (ENXIO, "device not configured"),
    (EPROTO, "protocol error"),
    (EISDIR, "is a directory"),
    (ECONNREFUSED, "connection refused"),
    (ENOTDIR, "not a directory"),
    (ESRCH, "no such process"),
    (E2BIG, "argument list too long"),
    (ENOEXEC, "exec format error"),
    (EBADF, "file descriptor not open"),
    (ECHILD, "no child processes"),
    (EDEADLK, "operation would cause deadlock"),
    (EFAULT, "bad address"),
    (ENOTBLK, "not a block device"),
    (EBUSY, "device busy"),
    (EXDEV, "cross-device link"),
    (ENODEV, "device does not support operation"),
    (EINVAL, "invalid argument"),
    (ENFILE, "system cannot open more files"),
    (EMFILE, "process cannot open more files"),
    (ENOTTY, "not a tty"),
    (EFBIG, "file too big"),
    (ENOSPC, "out of disk space"),
    (ESPIPE, "unseekable descriptor"),
    (EROFS, "read-only file system"),
    (EMLINK, "too many links"),
    (EDOM, "input out of range"),
    (ERANGE, "output out of range"),
    (EALREADY, "operation already in progress"),
    (ENOTSOCK, "not a socket"),
    (EDESTADDRREQ, "destination address required"),
    (EMSGSIZE, "message too long"),
    (EPROTOTYPE, "incorrect protocol type"),
    (ENOPROTOOPT, "protocol not available"),
    (EPROTONOSUPPORT, "protocol not supported"),
    (ESOCKTNOSUPPORT, "socket type not supported"),
    (EOPNOTSUPP, "operation not supported"),
    (EPFNOSUPPORT, "protocol family not supported"),
    (EAFNOSUPPORT, "address family not supported"),
    (EADDRINUSE, "address already used"),
    (EADDRNOTAVAIL, "address not available"),
    (ENETDOWN, "network down"),
    (ENETUNREACH, "network unreachable"),
    (ENETRESET, "network reset"),
    (ECONNABORTED, "connection aborted"),
    (ECONNRESET, "connection reset"),
    (ENOBUFS, "out of buffer space"),
    (EISCONN, "already connected"),
    (ENOTCONN, "not connected"),
    (ESHUTDOWN, "socket shut down"),
    (ETOOMANYREFS, "too many references"),
    (ELOOP, "symbolic link loop"),
    (ENAMETOOLONG, "file name too long"),
    (EHOSTDOWN, "host down"),
    (EHOSTUNREACH, "host unreachable"),
    (ENOTEMPTY, "directory not empty"),
    (EUSERS, "too many users"),
    (EDQUOT, "disk quota exceeded"),
    (ESTALE, "stale NFS file handle"),
    (EREMOTE, "too many levels of remote in path"),
    (ENOLCK, "no locks available"),
    (ENOSYS, "system call not available"),
    (ENOSTR, "not a stream device"),
    (ETIME, "timer expired"),
    (ENOSR, "out of stream resources"),
    (ENOMSG, "no message of desired type"),
    (EBADMSG, "bad message type"),
    (EIDRM, "identifier removed"),
    (ENONET, "machine not on network"),
    (ENOLINK, "link severed"),
    (EADV, "advertise error"),
    (ESRMNT, "srmount error"),
    (ECOMM, "communication error"),
    (EMULTIHOP, "multihop attempted"),
    (EREMCHG, "remote address changed"),
];

/// runit's (djb's `error_str`) text for an errno.
pub fn runit_text(errno: i32) -> &'static str {
    TABLE
        .iter()
        .find(|(value, _)| *value == errno)
        .map_or("unknown error", |(_, text)| text)
}

/// runit's text for an I/O error.
pub fn describe(error: &io::Error) -> &'static str {
    runit_text(error.raw_os_error().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_runits_wording() {
        assert_eq!(runit_text(ENOENT), "file does not exist");
        assert_eq!(runit_text(EWOULDBLOCK), "temporary failure");
        assert_eq!(runit_text(EACCES), "access denied");
        assert_eq!(runit_text(EPERM), "permission denied");
        assert_eq!(runit_text(ENOTDIR), "not a directory");
        assert_eq!(runit_text(ENXIO), "device not configured");
        assert_eq!(runit_text(-1), "unknown error");
    }

    #[test]
    fn first_alias_wins() {
        // EWOULDBLOCK is EAGAIN on Linux; runit's chain tests EAGAIN first.
        assert_eq!(runit_text(EWOULDBLOCK), "temporary failure");
        assert_eq!(runit_text(ENOTSUP), "operation not supported");
    }
}
