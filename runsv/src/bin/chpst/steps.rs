//! Carries out a plan in runit's order: new session, env dir, chroot, working directory,
//! nice, `-U`, `-u`, lock, closing fds, limits, exec. The order matters: the account is
//! looked up inside the new root, the lock file is opened as the new user, and the
//! limits apply to the program only.

use crate::environ::{self, Changes};
use crate::fail::{fatal, fatal_on, fatal_x};
use crate::ids::{self, Failure, Ids};
use crate::plan::{Account, Limit, Lock, Plan, Resource};
use nix::libc;
use nix::sys::resource as rlimit;
use nix::unistd::{Gid, Uid};
use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::process::exit;

pub fn run(plan: &Plan) -> ! {
    let mut changes = Changes::default();
    if plan.new_session {
        // Fails only for a process-group leader, which runit ignores too.
        let _ = nix::unistd::setsid();
    }
    if let Some(dir) = &plan.env_dir {
        environ::read_dir(
            dir,
            plan.env_dir_skips_directories,
            plan.verbose,
            &mut changes,
        );
    }
    if let Some(root) = &plan.root {
        if let Err(errno) = nix::unistd::chdir(root.as_os_str()) {
            fatal_on("unable to change directory", root.as_bytes(), &errno.into());
        }
        if let Err(errno) = nix::unistd::chroot(".") {
            fatal("unable to change root directory", &errno.into());
        }
    }
    if let Some(directory) = &plan.working_directory {
        if let Err(errno) = nix::unistd::chdir(directory.as_os_str()) {
            fatal_on(
                "unable to change directory",
                directory.as_bytes(),
                &errno.into(),
            );
        }
    }
    if plan.nice != 0 {
        set_nice(plan.nice);
    }
    if let Some(account) = &plan.env_user {
        let ids = lookup(account);
        let gid = ids.gids.first().copied().unwrap_or(0);
        changes.set(b"GID", Some(gid.to_string().as_bytes()));
        changes.set(b"UID", Some(ids.uid.to_string().as_bytes()));
    }
    if let Some(account) = &plan.set_user {
        become_user(&lookup(account));
    }
    if let Some(lock) = &plan.lock {
        take_lock(lock);
    }
    for (fd, name) in [(0, "stdin"), (1, "stdout"), (2, "stderr")] {
        if plan.close[fd as usize] {
            if let Err(errno) = nix::unistd::close(fd) {
                fatal(&format!("unable to close {name}"), &errno.into());
            }
        }
    }
    for (resource, limit) in plan.ordered_limits() {
        set_limit(resource, limit);
    }
    let error = crate::exec::run(&plan.program, plan.argv0.as_ref(), &changes);
    if plan.lock.as_ref().is_some_and(|lock| lock.quiet) {
        exit(0);
    }
    let shown = plan.argv0.as_ref().or(plan.program.first());
    let shown = shown.map(|name| name.as_bytes()).unwrap_or(b"");
    fatal_on("unable to run", shown, &error);
}

fn set_nice(increment: i64) {
    let increment = increment.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
    // nice(2) may rightly return -1: only errno tells a failure.
    nix::errno::Errno::clear();
    // SAFETY: nice has no memory effects.
    let result = unsafe { libc::nice(increment) };
    if result == -1 && nix::errno::Errno::last_raw() != 0 {
        fatal("unable to set nice level", &io::Error::last_os_error());
    }
}

fn lookup(account: &Account) -> Ids {
    match ids::resolve(account, ids::read_file) {
        Ok(ids) => ids,
        Err(Failure::Invalid) => fatal_x("invalid uid/gids", account.spec.get(1..).unwrap_or(b"")),
        Err(Failure::Unknown) if account.with_groups => {
            fatal_x("unknown user/group", &account.spec)
        }
        Err(Failure::Unknown) => fatal_x("unknown account", &account.spec),
        Err(Failure::Files(problem)) if account.with_groups => fatal_x(
            "unable to get password/group file entry",
            problem.as_bytes(),
        ),
        Err(Failure::Files(problem)) => {
            fatal_x("unable to get password file entry", problem.as_bytes())
        }
    }
}

/// Groups first, then the gid, then the uid: once the uid is dropped, neither of the
/// others could be changed any more.
fn become_user(ids: &Ids) {
    let gids: Vec<Gid> = ids.gids.iter().map(|&g| Gid::from_raw(g)).collect();
    if let Err(errno) = nix::unistd::setgroups(&gids) {
        fatal("unable to setgroups", &errno.into());
    }
    let gid = ids.gids.first().copied().unwrap_or(0);
    if let Err(errno) = nix::unistd::setgid(Gid::from_raw(gid)) {
        fatal("unable to setgid", &errno.into());
    }
    if let Err(errno) = nix::unistd::setuid(Uid::from_raw(ids.uid)) {
        fatal("unable to setuid", &errno.into());
    }
}

/// The lock stays held by the open descriptor, which the program inherits (it is not
/// close-on-exec): the lock lasts as long as the program.
fn take_lock(lock: &Lock) {
    let failed = |what: &str, error: io::Error| -> ! {
        if lock.quiet {
            exit(0);
        }
        fatal_on(what, lock.path.as_bytes(), &error);
    };
    let Ok(path) = CString::new(lock.path.as_bytes()) else {
        failed(
            "unable to open lock",
            io::Error::from_raw_os_error(libc::EINVAL),
        );
    };
    // SAFETY: a valid C string; the descriptor is deliberately left open for the program.
    let fd = unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_WRONLY | libc::O_NONBLOCK | libc::O_APPEND | libc::O_CREAT,
            0o600,
        )
    };
    if fd == -1 {
        failed("unable to open lock", io::Error::last_os_error());
    }
    let operation = if lock.wait {
        libc::LOCK_EX
    } else {
        libc::LOCK_EX | libc::LOCK_NB
    };
    loop {
        // SAFETY: flock on a descriptor this process owns.
        if unsafe { libc::flock(fd, operation) } == 0 {
            return;
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            failed("unable to lock", error);
        }
    }
}

fn resource_id(resource: Resource) -> rlimit::Resource {
    match resource {
        Resource::Data => rlimit::Resource::RLIMIT_DATA,
        Resource::Stack => rlimit::Resource::RLIMIT_STACK,
        Resource::MemLock => rlimit::Resource::RLIMIT_MEMLOCK,
        Resource::AddressSpace => rlimit::Resource::RLIMIT_AS,
        Resource::OpenFiles => rlimit::Resource::RLIMIT_NOFILE,
        Resource::Processes => rlimit::Resource::RLIMIT_NPROC,
        Resource::FileSize => rlimit::Resource::RLIMIT_FSIZE,
        Resource::Core => rlimit::Resource::RLIMIT_CORE,
        Resource::Resident => rlimit::Resource::RLIMIT_RSS,
        Resource::Cpu => rlimit::Resource::RLIMIT_CPU,
    }
}

/// Sets the soft limit only, never above the hard one: a number over the hard limit
/// (or `=`) means the hard limit, as in runit.
fn set_limit(resource: Resource, limit: Limit) {
    let id = resource_id(resource);
    let (_, hard) = match rlimit::getrlimit(id) {
        Ok(limits) => limits,
        Err(errno) => fatal("unable to getrlimit()", &errno.into()),
    };
    let soft = match limit {
        Limit::Value(value) if value <= hard => value,
        _ => hard,
    };
    if let Err(errno) = rlimit::setrlimit(id, soft, hard) {
        fatal("unable to setrlimit()", &errno.into());
    }
}
