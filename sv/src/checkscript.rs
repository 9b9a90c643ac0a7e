//! `./check`, the readiness probe of runit's `sv` (run by the waits of up, start,
//! restart, term, kill and check): exit 0 means up.

use crate::errno::{self, error_str};
use nix::errno::Errno;
use nix::libc;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{execv, fork, ForkResult};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Runs `dir/check` the way runit does and says whether it passed: `execve("check",
/// ["./check"])` in the service directory (so a script's `$0` is `check`, as under
/// runit), without testing executability first, with the environment inherited and
/// stdout **closed**. When it cannot be run at all that counts as success: runit's
/// child prints a warning and `_exit(0)`s. An absent `check` passes.
pub fn passes(dir: &Path, name: &str) -> bool {
    if let Err(error) = std::fs::metadata(dir.join("check")) {
        if error.kind() == std::io::ErrorKind::NotFound {
            return true;
        }
        eprintln!(
            "warning: unable to stat {name}/check: {}",
            error_str(errno::of_io(&error))
        );
        return false;
    }
    // Everything the child needs is prepared before fork: after it, only
    // async-signal-safe calls (chdir, close, signal, execv, write, _exit).
    let Ok(dir_c) = CString::new(dir.as_os_str().as_bytes().to_vec()) else {
        return true;
    };
    let program = c"check";
    let argv = [c"./check"];
    let prefix = format!("warning: unable to run {name}/check: ");
    // SAFETY: the child only makes async-signal-safe calls before execv or _exit.
    match unsafe { fork() } {
        Err(errno) => {
            eprintln!(
                "warning: unable to fork for {name}/check: {}",
                error_str(errno as i32)
            );
            false
        }
        Ok(ForkResult::Child) => {
            let errno = unsafe {
                // Rust ignores SIGPIPE; a C program like runit's sv leaves it default,
                // and the disposition is inherited through exec.
                libc::signal(libc::SIGPIPE, libc::SIG_DFL);
                if libc::chdir(dir_c.as_ptr()) == 0 {
                    libc::close(1);
                    let _ = execv(program, &argv);
                }
                *libc::__errno_location()
            };
            let text = error_str(errno);
            unsafe {
                libc::write(2, prefix.as_ptr().cast(), prefix.len());
                libc::write(2, text.as_ptr().cast(), text.len());
                libc::write(2, b"\n".as_ptr().cast(), 1);
                libc::_exit(0);
            }
        }
        Ok(ForkResult::Parent { child }) => loop {
            match waitpid(child, None) {
                Ok(WaitStatus::Exited(_, code)) => return code == 0,
                // runit tests `wait_exitcode(w)`, that is `w >> 8`, which is 0 for a
                // probe killed by a signal: it passes.
                Ok(_) => return true,
                Err(Errno::EINTR) => continue,
                Err(errno) => {
                    eprintln!(
                        "warning: unable to wait for child {name}/check: {}",
                        error_str(errno as i32)
                    );
                    return false;
                }
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::{write_script, SCRIPTS};

    fn script(dir: &Path, body: &str) {
        write_script(&dir.join("check"), body);
    }

    #[test]
    fn exit_status_decides() {
        let _scripts = SCRIPTS.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().unwrap();
        assert!(passes(dir.path(), "x"), "no check passes");
        script(dir.path(), "#!/bin/sh\nexit 0\n");
        assert!(passes(dir.path(), "x"));
        script(dir.path(), "#!/bin/sh\nexit 1\n");
        assert!(!passes(dir.path(), "x"));
        script(dir.path(), "#!/bin/sh\nkill -9 $$\n");
        assert!(
            passes(dir.path(), "x"),
            "killed by a signal is exit code 0 to runit"
        );
    }

    #[test]
    fn runs_in_the_service_directory_with_stdout_closed() {
        let _scripts = SCRIPTS.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().unwrap();
        script(
            dir.path(),
            "#!/bin/sh\necho \"$0\" > seen; test \"$0\" = check || exit 3\n\
             test -e marker || exit 4\ntest -e /proc/$$/fd/1 && exit 5\nexit 0\n",
        );
        std::fs::write(dir.path().join("marker"), "").unwrap();
        let ok = passes(dir.path(), "x");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("seen")).unwrap(),
            "check\n"
        );
        assert!(ok);
    }

    #[test]
    fn not_executable_counts_as_success() {
        let _scripts = SCRIPTS.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("check"), "exit 1\n").unwrap();
        assert!(passes(dir.path(), "x"));
    }
}
