//! The services directory when `SVDIR` is not set: the scan directory of the running
//! tree (published by svdir, see runsv::published), else runit's default /service if
//! it exists, else Debian's /etc/service if it exists, else /service.

use std::ffi::OsString;
use std::path::Path;

pub const FALLBACKS: [&str; 2] = [crate::args::DEFAULT_SVDIR, "/etc/service"];

pub fn svdir() -> OsString {
    if let Some(dir) = runsv::published::running_scan_dir() {
        return dir.into_os_string();
    }
    FALLBACKS
        .iter()
        .find(|dir| Path::new(dir).is_dir())
        .unwrap_or(&FALLBACKS[0])
        .into()
}
