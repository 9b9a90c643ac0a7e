//! init as PID 1 of a qemu VM: a Debian kernel, an initramfs with static builds of
//! init, svdir, runsv and sv, busybox, and the services of tests/vm/rootfs/etc/sv:
//! setup (a oneshot) ← db ← web (ready by a test) ← zz-check, a oneshot that leaves
//! orphans to PID 1, prints `sv status`, then runs `init 0` (or `init 6` when the
//! kernel command line says VMTEST_ACTION=6). The VM must power off (or reboot) by
//! itself, with the services started in order and stopped in reverse on the console.
//! tests/vm/run.sh does the fetching, packing and booting. tests/vm/cgroups holds the
//! limits, tests/vm/container a container (init in container mode) inside the VM.
//!
//! Skipped, with the reason printed, where qemu, busybox-static or a kernel cannot be
//! had; `RUNTREE_VM_REQUIRED=1` turns such a skip into a failure (for CI, which installs
//! them). `RUNTREE_VM_BIN_DIR` names a directory of prebuilt static binaries instead.

use runtree::{static_binaries, target_root};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn skip(reason: &str) {
    runtree::skip("the VM test is", "RUNTREE_VM_REQUIRED", reason);
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false)
}

/// The test's rootfs overlay: tests/vm/rootfs plus svdir, runsv and sv in /sbin.
fn rootfs(template: &Path, bin: &Path, out: &Path) -> PathBuf {
    let root = out.join("rootfs");
    let copied = Command::new("cp")
        .arg("-a")
        .arg(template)
        .arg(&root)
        .status()
        .expect("cp");
    assert!(copied.success(), "cp -a {}", template.display());
    std::fs::create_dir_all(root.join("sbin")).expect("sbin");
    for program in ["svdir", "runsv", "sv"] {
        std::fs::copy(bin.join(program), root.join("sbin").join(program))
            .unwrap_or_else(|e| panic!("{program}: {e}"));
    }
    root
}

fn assert_in_order(console: &str, lines: &[&str]) {
    let mut at = 0;
    for line in lines {
        match console[at..].find(line) {
            Some(found) => at += found + line.len(),
            None => panic!("{line:?} missing or out of order in the console:\n{console}"),
        }
    }
}

/// Boots the VM with extra kernel command-line words; returns the console, or None
/// when the test was skipped.
fn boot(extra: &[&str]) -> Option<String> {
    boot_tree("rootfs", extra)
}

/// Boots the VM with the rootfs template tests/vm/`template`.
fn boot_tree(template: &str, extra: &[&str]) -> Option<String> {
    if !on_path("qemu-system-x86_64") {
        skip("qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)");
        return None;
    }
    let started = Instant::now();
    let bin = match static_binaries() {
        Ok(bin) => bin,
        Err(e) => panic!("{e}"),
    };
    let init = bin.join("init");
    let built = started.elapsed();
    let vm = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("vm");
    let out = tempfile::tempdir().expect("tempdir");
    let cache = std::env::var_os("VMTEST_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_root().join("vmtest").join("kernel"));
    let mut command = Command::new("timeout");
    command
        .args(["-k", "5", "150", "bash"])
        .arg(vm.join("run.sh"))
        .arg(&init)
        .arg(rootfs(&vm.join(template), &bin, out.path()))
        .arg(out.path())
        .args(["runtree.scandir=/etc/sv", "runtree.kill_grace=2"])
        .args(extra)
        .env("VMTEST_CACHE", &cache)
        .env("VM_TIMEOUT", "60");
    let (code, stdout, stderr) = runtree::run(&mut command, Duration::from_secs(160));
    if code == 77 {
        skip(stdout.trim().trim_start_matches("SKIP: "));
        return None;
    }
    assert_eq!(code, 0, "run.sh failed\n{stdout}\n{stderr}");
    let console = std::fs::read_to_string(out.path().join("console.log"))
        .unwrap_or_default()
        .replace('\r', "");
    let qemu_rc = std::fs::read_to_string(out.path().join("qemu.rc")).unwrap_or_default();
    eprintln!(
        "{} (static build {built:?}, total {:?})\n{console}",
        stdout.trim(),
        started.elapsed()
    );
    // 124: the VM did not power off (or reboot, with -no-reboot) before the timeout.
    assert_eq!(qemu_rc.trim(), "0", "qemu exit status\n{console}");
    assert!(!console.contains("Kernel panic"), "{console}");
    Some(console)
}

/// What every boot shows before the stop request.
const BOOT: &[&str] = &[
    "init: runtree init",
    "as PID 1 in machine mode (reboot(2) is available)",
    "init: mounted proc on /proc",
    "init: mounted sysfs on /sys",
    "init: mounted devtmpfs on /dev",
    "init: mounted tmpfs on /run",
    "init: /proc/sys/kernel/printk_devkmsg set to on: no service line is rate-limited",
    "init: started /sbin/svdir /etc/sv",
    "service setup: done",
    "service db: running",
    "service web: running",
    "VMTEST zombies=0",
    "VMTEST kmsg lines=500",
    "VMTEST status: run: db: (pid ",
    "VMTEST status: run: web: (pid ",
];

/// The ordered stop, whatever the final action: web depends on db, so it stops first.
const STOP: &[&str] = &[
    "init: stopping services: SIGTERM to svdir",
    "service web: stopping",
    "service db: stopping",
    "init: svdir stopped every service cleanly",
    "init: sending TERM to all processes (grace 2.0s)",
    "init: unmounting filesystems",
    // Deepest first; other mounts (cgroup2, /run) may stand between the two.
    "init: unmounted /mnt/outer/inner ",
    " /mnt/outer ",
    "init: all processes are gone; syncing disks",
];

/// Boots with `kernel_args` and asserts the console shows the boot, `request` (as init
/// words it), the ordered stop, then `end`.
fn assert_boots_and_stops(kernel_args: &[&str], request: &str, end: [&str; 2]) {
    let Some(console) = boot(kernel_args) else {
        return;
    };
    let mut expected = BOOT.to_vec();
    expected.push(request);
    expected.extend(STOP);
    expected.extend(end);
    assert_in_order(&console, &expected);
}

#[test]
#[cfg(target_arch = "x86_64")]
fn vm_init_0_stops_in_order_and_powers_off() {
    let end = ["init: powering off", "reboot: Power down"];
    assert_boots_and_stops(&[], "init: SIGUSR2: poweroff", end);
}

#[test]
#[cfg(target_arch = "x86_64")]
fn vm_init_6_stops_in_order_and_reboots() {
    // Unknown key=value words without a dot reach init (and so svdir) as environment.
    let end = ["init: rebooting", "reboot: Restarting system"];
    assert_boots_and_stops(&["VMTEST_ACTION=6"], "init: SIGINT: reboot", end);
}

/// What follows `prefix` on the console line that has it (`VMTEST mount: …`).
fn console_value(console: &str, prefix: &str) -> String {
    console
        .lines()
        .find_map(|l| {
            l.split_once(prefix)
                .map(|(_, rest)| rest.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no {prefix:?} in the console:\n{console}"))
}

/// A service is its cgroup (tests/vm/cgroups): init mounts cgroup2, svdir makes the
/// tree's groups and enables the controllers, and each limit of service.yaml holds —
/// memory_max OOM-kills `hog` (its state says so), pids_max makes a fork fail inside
/// `forker`, cpu_max holds `spinner` near 20% of the CPU — and `sv down` leaves none of
/// the double-forked, setsid'd daemon `escaper` running.
#[test]
#[cfg(target_arch = "x86_64")]
fn vm_cgroups_hold_limits_and_stop_everything() {
    let Some(console) = boot_tree("cgroups", &[]) else {
        return;
    };
    let line = |prefix: &str| console_value(&console, prefix);
    assert_eq!(line("VMTEST mount:"), "/sys/fs/cgroup cgroup2");
    let controllers = line("VMTEST controllers:");
    for controller in ["cpu", "memory", "pids"] {
        assert!(controllers.contains(controller), "{controllers}");
    }
    // memory_max: the OOM killer, named as the reason.
    let hog = console
        .lines()
        .find(|l| l.contains("VMTEST status: ") && l.contains(": hog: "))
        .unwrap_or_else(|| panic!("no hog status:\n{console}"));
    assert!(hog.contains("killed by the OOM killer"), "{hog}");
    assert!(!line("VMTEST hog oom_kill:").ends_with(" 0"), "{console}");
    // pids_max: a fork failed inside the service.
    let forker = line("VMTEST forker stderr:");
    assert!(forker.contains("fork"), "{forker}");
    assert!(!forker.contains("all forks succeeded"), "{forker}");
    // cpu_max 20%: near its quota (TCG timing is coarse: 10 to 30%).
    let share: u32 = line("VMTEST spinner share:")
        .trim_end_matches('%')
        .parse()
        .unwrap_or_else(|_| panic!("share:\n{console}"));
    assert!(
        (10..=30).contains(&share),
        "spinner at {share}%:\n{console}"
    );
    // The escape test.
    assert_eq!(line("VMTEST escaper before:"), "3", "{console}");
    assert_eq!(line("VMTEST escaper left:"), "0", "{console}");
    assert_eq!(line("VMTEST json:"), "\"tracking\":\"cgroup\"", "{console}");
    assert_in_order(
        &console,
        &[
            "init: mounted cgroup2 on /sys/fs/cgroup",
            // hog's last run was OOM-killed: svdir says a service ended in error.
            "svdir: stopped 5 services",
            "init: all processes are gone; syncing disks",
            "reboot: Power down",
        ],
    );
}

/// A container in the VM (tests/vm/container): runtree's init in container mode, PID 1
/// of a namespace over a delegated group whose parent enabled cpu, memory and pids.
/// init leaves the container's root group for `init`, svdir puts the tree beside it,
/// the root group is left empty and enables the controllers, and the bounds of
/// `limited` (memory, pids, cpu) are applied. Then what a later `podman exec` meets:
/// the kernel refuses a process in the root group (EBUSY) and the controllers stay on.
#[test]
#[cfg(target_arch = "x86_64")]
fn vm_container_init_leaves_its_cgroup_and_limits_apply() {
    let Some(console) = boot_tree("container", &[]) else {
        return;
    };
    let line = |prefix: &str| console_value(&console, prefix);
    // The delegated group, as the container sees it (no cgroup namespace here).
    let init = line("VMTEST ctr init cgroup:");
    let root = init
        .strip_suffix("/init")
        .unwrap_or_else(|| panic!("init not in a leaf named init: {init}\n{console}"));
    assert!(root.ends_with("/ctr"), "{console}");
    assert_eq!(line("VMTEST ctr root procs:"), "0", "{console}");
    for key in [
        "VMTEST ctr root controllers:",
        "VMTEST ctr root controllers after:",
    ] {
        let controllers = line(key);
        for controller in ["cpu", "memory", "pids"] {
            assert!(controllers.contains(controller), "{key} {controllers}");
        }
    }
    assert_eq!(
        line("VMTEST ctr svdir cgroup:"),
        format!("{root}/runtree/supervisors"),
        "{console}"
    );
    let group = format!("/sys/fs/cgroup{root}/runtree/etc-ctr-limited.service");
    assert_eq!(line("VMTEST ctr limited cgroup:"), group, "{console}");
    assert_eq!(line("VMTEST ctr limited memory.max:"), "33554432");
    assert_eq!(line("VMTEST ctr limited pids.max:"), "16");
    assert_eq!(line("VMTEST ctr limited cpu.max:"), "50000 100000");
    assert!(
        line("VMTEST ctr status:").starts_with("run: limited:"),
        "{console}"
    );
    assert_eq!(line("VMTEST ctr join root:"), "refused", "{console}");
    assert!(
        line("VMTEST ctr join root error:").contains("busy"),
        "{console}"
    );
    assert_eq!(line("VMTEST ctr root procs after:"), "0", "{console}");
    assert_in_order(
        &console,
        &[
            "as PID 1 in container mode",
            "init: moved to the cgroup /sys/fs/cgroup",
            "VMTEST ctr init cgroup:",
            "reboot: Power down",
        ],
    );
    assert!(!console.contains("init: warning"), "{console}");
}
