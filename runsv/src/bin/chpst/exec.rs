//! runit's pathexec: a name with a slash is run as it is; a bare name is searched in
//! the PATH chpst itself was started with (not one an env dir sets: runit's pathexec
//! reads its own environment), `/bin:/usr/bin` without one, an empty entry meaning `.`.

use crate::environ::Changes;
use nix::errno::Errno;
use std::ffi::{CString, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;

/// Execs `program` (argv[0] replaced by `argv0` when given); returns only on failure.
pub fn run(program: &[OsString], argv0: Option<&OsString>, changes: &Changes) -> io::Error {
    let Some(file) = program.first() else {
        return io::Error::from_raw_os_error(nix::libc::ENOENT);
    };
    let c = |word: &OsString| CString::new(word.as_bytes()).ok();
    let mut argv: Option<Vec<CString>> = program.iter().map(c).collect();
    if let (Some(argv), Some(argv0)) = (argv.as_mut(), argv0) {
        match (argv.first_mut(), c(argv0)) {
            (Some(first), Some(name)) => *first = name,
            _ => return io::Error::from_raw_os_error(nix::libc::EINVAL),
        }
    }
    let Some(argv) = argv else {
        return io::Error::from_raw_os_error(nix::libc::EINVAL);
    };
    let environment = changes.apply();
    let execute = |path: &[u8]| -> Errno {
        match CString::new(path) {
            Ok(path) => match nix::unistd::execve(&path, &argv, &environment) {
                Err(errno) => errno,
                Ok(never) => match never {},
            },
            Err(_) => Errno::EINVAL,
        }
    };
    let file = file.as_bytes();
    if file.contains(&b'/') {
        return execute(file).into();
    }
    let search = std::env::var_os("PATH").unwrap_or_else(|| "/bin:/usr/bin".into());
    let mut remembered = None;
    for directory in search.as_bytes().split(|&b| b == b':') {
        let mut candidate = if directory.is_empty() {
            b".".to_vec()
        } else {
            directory.to_vec()
        };
        candidate.push(b'/');
        candidate.extend_from_slice(file);
        let errno = execute(&candidate);
        // As execvp: a missing file tries the next entry, a permission problem is kept
        // to report if nothing else runs, any other error stops the search.
        match errno {
            Errno::ENOENT => {}
            Errno::EACCES | Errno::EPERM | Errno::EISDIR => remembered = Some(errno),
            other => return other.into(),
        }
    }
    remembered.unwrap_or(Errno::ENOENT).into()
}
