//! The text runit prints for an errno after `fail:` and `warning:` messages: the
//! library's table (runsv::errno_text), which every runtree program shares.

pub use runsv::errno_text::runit_text as error_str;

/// The errno of an I/O error; an error without one (never from a system call) reads as
/// runit's catch-all.
pub fn of_io(error: &std::io::Error) -> i32 {
    error.raw_os_error().unwrap_or(-1)
}
