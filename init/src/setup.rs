//! What PID 1 sets up before anything else: which mode it runs in, the API
//! filesystems and the console (machine only), Ctrl-Alt-Del as SIGINT, a cgroup leaf
//! of its own (container only).

use crate::Mode;
use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{stat, Mode as Perm};
use nix::unistd::dup2;
use std::path::Path;

/// Decides the mode. `cad` is the result of reboot(RB_DISABLE_CAD), which init makes
/// anyway: it succeeds only for a process with CAP_SYS_BOOT in the initial PID
/// namespace, which is exactly "PID 1 of a machine". Inside a PID namespace the kernel
/// answers EINVAL, without CAP_SYS_BOOT (Docker's default) EPERM.
pub fn decide_mode(
    forced: Option<Mode>,
    env_mode: Option<&str>,
    container_env: bool,
    container_file: Option<&str>,
    cad: Result<(), Errno>,
) -> (Mode, String, Option<String>) {
    let mut warning = None;
    if let Some(mode) = forced {
        return (mode, "forced by the command line".into(), None);
    }
    match env_mode {
        Some("container") => {
            return (Mode::Container, "RUNTREE_MODE=container".into(), None);
        }
        Some("machine") => return (Mode::Machine, "RUNTREE_MODE=machine".into(), None),
        Some(other) => {
            warning = Some(format!(
                "ignoring RUNTREE_MODE={other}: expected container or machine"
            ))
        }
        None => {}
    }
    // reboot(2)'s answer is decisive where it is clear-cut; the runtimes' markers only
    // break the tie for an unexpected error.
    match cad {
        Ok(()) => return (Mode::Machine, "reboot(2) is available".into(), warning),
        Err(Errno::EINVAL) => {
            return (
                Mode::Container,
                "reboot(RB_DISABLE_CAD) says EINVAL: not the initial PID namespace".into(),
                warning,
            )
        }
        Err(Errno::EPERM) => {
            return (
                Mode::Container,
                "reboot(RB_DISABLE_CAD) says EPERM: no CAP_SYS_BOOT".into(),
                warning,
            )
        }
        Err(_) => {}
    }
    if container_env {
        return (
            Mode::Container,
            "the container environment variable is set".into(),
            warning,
        );
    }
    if let Some(file) = container_file {
        return (Mode::Container, format!("{file} exists"), warning);
    }
    let reason = format!(
        "reboot(RB_DISABLE_CAD) says {}; assuming a machine",
        cad.err().map(|e| e.desc()).unwrap_or("nothing")
    );
    (Mode::Machine, reason, warning)
}

/// Files container runtimes leave in the root: podman/buildah, Docker.
pub fn container_file() -> Option<&'static str> {
    ["/run/.containerenv", "/.dockerenv"]
        .into_iter()
        .find(|f| Path::new(f).exists())
}

/// Ctrl-Alt-Del then arrives as SIGINT instead of an immediate reboot by the kernel.
pub fn disable_cad() -> Result<(), Errno> {
    nix::sys::reboot::set_cad_enabled(false)
}

fn is_mountpoint(path: &Path) -> Result<bool, Errno> {
    let here = stat(path)?;
    let parent = stat(path.parent().unwrap_or(Path::new("/")))?;
    Ok(here.st_dev != parent.st_dev)
}

/// Mounts /proc, /sys, /sys/fs/cgroup (cgroup v2: each service gets a group of its own,
/// see runsv's cgroup.rs), /dev and /run where nothing is mounted yet. Only on a machine:
/// in a container, devtmpfs would be the host's, with every host device. Returns what
/// it did and what failed, for the log (the console is not open yet).
pub fn mount_api_filesystems() -> Vec<String> {
    let nosuid_nodev_noexec = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let table: [(&str, &str, MsFlags, Option<&str>); 5] = [
        ("/proc", "proc", nosuid_nodev_noexec, None),
        ("/sys", "sysfs", nosuid_nodev_noexec, None),
        ("/sys/fs/cgroup", "cgroup2", nosuid_nodev_noexec, None),
        ("/dev", "devtmpfs", MsFlags::MS_NOSUID, Some("mode=0755")),
        (
            "/run",
            "tmpfs",
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some("mode=0755"),
        ),
    ];
    let mut log = Vec::new();
    for (target, fstype, flags, data) in table {
        let path = Path::new(target);
        if !path.exists() {
            if let Err(e) = nix::unistd::mkdir(path, Perm::from_bits_truncate(0o755)) {
                log.push(format!("cannot create {target}: {}", e.desc()));
                continue;
            }
        }
        match is_mountpoint(path) {
            Ok(true) => continue,
            Ok(false) => {}
            Err(e) => {
                log.push(format!("cannot stat {target}: {}", e.desc()));
                continue;
            }
        }
        match mount(Some(fstype), path, Some(fstype), flags, data) {
            Ok(()) => log.push(format!("mounted {fstype} on {target}")),
            Err(e) => log.push(format!("cannot mount {fstype} on {target}: {}", e.desc())),
        }
    }
    log
}

/// In a container with a delegated cgroup v2 hierarchy, moves init out of the
/// namespace's root group into a leaf (`/init`, runsv::cgroup::enter_init_leaf), so
/// that svdir, started there, puts the tree beside it (`/runtree`) and can enable the
/// controllers the services' limits need on `/`. Never in machine mode: a machine's
/// PID 1 is in the real root group, where processes do not block controllers. Returns
/// the line for the log: the move, or the warning of a failure (nothing else
/// changes then: the limits needing a controller are refused, with that reason, as
/// without the move). Nothing when there was nothing to do.
pub fn enter_cgroup_leaf(mode: Mode) -> Option<String> {
    if mode == Mode::Machine {
        return None;
    }
    match runsv::cgroup::enter_init_leaf() {
        Ok(runsv::cgroup::InitLeaf::Moved { leaf, others }) => Some(format!(
            "moved to the cgroup {}{}: the tree's parent group must hold no process \
             to enable controllers",
            leaf.display(),
            match others {
                0 => String::new(),
                n => format!(" (and {n} other processes of its group)"),
            }
        )),
        Ok(runsv::cgroup::InitLeaf::Stayed(_)) => None,
        Err(e) => Some(format!(
            "warning: cannot leave the container's root cgroup: {e}: limits needing \
             a controller will be refused"
        )),
    }
}

/// Lets every line written to /dev/kmsg through: the kernel rate-limits writers of
/// /dev/kmsg (a burst of ten, then a few lines a second) unless printk_devkmsg is `on`,
/// and services log there by default. Returns what happened, for the log.
pub fn allow_devkmsg() -> String {
    const KNOB: &str = "/proc/sys/kernel/printk_devkmsg";
    let now = std::fs::read_to_string(KNOB).map(|v| v.trim().to_string());
    if now.as_deref().is_ok_and(|v| v == "on") {
        return format!("{KNOB} is on: no service line is rate-limited");
    }
    // Set on the kernel command line, it cannot be changed (EINVAL).
    match std::fs::write(KNOB, "on\n") {
        Ok(()) => format!("{KNOB} set to on: no service line is rate-limited"),
        Err(e) => format!(
            "cannot set {KNOB} to on (it is {}: {e}): the kernel may drop services' lines",
            now.unwrap_or_else(|e| format!("unreadable, {e}"))
        ),
    }
}

/// Puts /dev/console on fds 0–2. O_NOCTTY: as a session leader init would otherwise
/// acquire the console as its controlling terminal, and a Ctrl-C typed there would
/// become SIGINT to PID 1, which means reboot.
pub fn open_console() -> Result<(), Errno> {
    let fd = open(
        "/dev/console",
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Perm::empty(),
    )?;
    for target in 0..=2 {
        if fd != target {
            dup2(fd, target)?;
        }
    }
    if fd > 2 {
        let _ = nix::unistd::close(fd);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_beats_environment_beats_detection() {
        let (mode, _, _) = decide_mode(
            Some(Mode::Machine),
            Some("container"),
            true,
            Some("/.dockerenv"),
            Err(Errno::EINVAL),
        );
        assert_eq!(mode, Mode::Machine);
        let (mode, why, _) = decide_mode(None, Some("machine"), true, None, Err(Errno::EINVAL));
        assert_eq!(
            (mode, why.as_str()),
            (Mode::Machine, "RUNTREE_MODE=machine")
        );
        let (mode, _, _) = decide_mode(None, Some("container"), false, None, Ok(()));
        assert_eq!(mode, Mode::Container);
    }

    #[test]
    fn detection() {
        assert_eq!(
            decide_mode(None, None, false, None, Ok(())).0,
            Mode::Machine
        );
        assert_eq!(
            decide_mode(None, None, false, None, Err(Errno::EINVAL)).0,
            Mode::Container
        );
        assert_eq!(
            decide_mode(None, None, false, None, Err(Errno::EPERM)).0,
            Mode::Container
        );
        // reboot(2)'s answer beats the runtimes' markers…
        assert_eq!(decide_mode(None, None, true, None, Ok(())).0, Mode::Machine);
        // …which decide only when it is unclear.
        assert_eq!(
            decide_mode(None, None, true, None, Err(Errno::ENOSYS)).0,
            Mode::Container
        );
        assert_eq!(
            decide_mode(None, None, false, Some("/.dockerenv"), Err(Errno::ENOSYS)).0,
            Mode::Container
        );
        assert_eq!(
            decide_mode(None, None, false, None, Err(Errno::ENOSYS)).0,
            Mode::Machine
        );
    }

    /// A machine's PID 1 is in the real root group: it never moves (this test's own
    /// process would otherwise be moved, were it in a container).
    #[test]
    fn a_machine_never_leaves_its_cgroup() {
        assert_eq!(enter_cgroup_leaf(Mode::Machine), None);
    }

    #[test]
    fn bad_mode_variable_is_reported_and_ignored() {
        let (mode, _, warning) = decide_mode(None, Some("vm"), false, None, Ok(()));
        assert_eq!(mode, Mode::Machine);
        assert!(warning.unwrap().contains("RUNTREE_MODE=vm"));
    }
}
