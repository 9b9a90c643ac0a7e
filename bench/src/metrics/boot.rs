//! A real boot (`boot`, opt-in: `--only boot`): the same Debian 12 image
//! (src/debian_vm.rs: the cached debootstrap tree, with runtree and distro/debian
//! installed beside Debian's own systemd and runit) booted under qemu TCG by systemd,
//! Debian's runit and runtree, in turns (the order rotates each round), 3 boots each
//! (1 with --quick). For each boot:
//!
//! - kernel → init: when the initrd mounted the root (and so exec'd the init), on the
//!   guest's boot clock (the kernel log's line for it);
//! - init → sshd banner: the first `SSH-` read through the forwarded port (probed once
//!   a second, as each probe forks an sshd in the guest), less qemu start → the guest
//!   clock's zero (when the guest's /proc/uptime, printed over ssh, reached the host,
//!   less that uptime: the earliest of three) and kernel → init;
//! - init → all services ready (runtree): the last `ready` of `sv blame --json`, once
//!   `sv status` shows every service up;
//! - poweroff → qemu exit: from the start in the guest of the command that asks it
//!   (`poweroff`, `systemctl poweroff`, `/lib/runit/shutdown -h now`, run over ssh after
//!   a `cat /proc/uptime` that says when, on the host's clock through the boot offset)
//!   to qemu's exit; ssh's connection set-up is left out;
//! - poweroff → power down (guest): the same start to the kernel's `reboot: Power down`
//!   line on the console, both on the guest's clock (no boot offset, no qemu exit).
//!
//! Prints its own table (columns are inits, not supervisors) with medians and ranges.

use crate::table::number;
use runtree::debian_vm::{self, Init, Unavailable, Vm};
use std::time::{Duration, Instant};

const INITS: [Init; 3] = [Init::Systemd, Init::Runit, Init::Runtree];

#[derive(Default, Clone)]
struct Boot {
    kernel_to_init: Option<f64>,
    init_to_sshd: Option<f64>,
    init_to_ready: Option<f64>,
    poweroff: Option<f64>,
    power_down: Option<f64>,
    problem: Option<String>,
}

/// When the initrd mounted the real root, on the guest's boot clock, in seconds: the
/// kernel's `EXT4-fs (vda): mounted filesystem` line, just before the initrd execs the
/// init (PID 1's own start time is the initrd's /init: an exec keeps it).
fn init_start(vm: &Vm) -> Option<f64> {
    let (code, out, _) = vm.ssh(
        "dmesg | grep -m1 'EXT4-fs (vda): mounted filesystem'",
        Duration::from_secs(60),
    );
    if code != 0 {
        return None;
    }
    let stamp = out.split('[').nth(1)?.split(']').next()?;
    stamp.trim().parse().ok()
}

/// runtree: waits (up to `timeout`) until every service is running or ok; then the
/// last ready time of `sv blame --json`.
fn all_ready(vm: &Vm, timeout: Duration) -> Result<f64, String> {
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    while Instant::now() < deadline {
        let (_, status, _) = vm.ssh(
            "SVDIR=/etc/runtree/service sv status --json",
            Duration::from_secs(60),
        );
        let states: Vec<&str> = status
            .split("\"state\":\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .collect();
        if !states.is_empty() && states.iter().all(|s| *s == "running" || *s == "ok") {
            let (_, blame, _) = vm.ssh(
                "SVDIR=/etc/runtree/service sv blame --json",
                Duration::from_secs(60),
            );
            return blame
                .split("\"ready\":")
                .skip(1)
                .filter_map(|rest| rest.split([',', '}']).next()?.parse::<f64>().ok())
                .reduce(f64::max)
                .ok_or_else(|| format!("no ready time in {blame}"));
        }
        last = status;
        std::thread::sleep(Duration::from_secs(2));
    }
    Err(format!("not every service up: {last}"))
}

fn one_boot(image: &debian_vm::Image, init: Init, name: &str) -> Boot {
    let mut boot = Boot::default();
    let mut vm = match image.boot(init, name) {
        Ok(vm) => vm,
        Err(e) => {
            boot.problem = Some(e);
            return boot;
        }
    };
    let Some(banner) = vm.wait_banner(Duration::from_secs(600)) else {
        boot.problem = Some(format!(
            "no sshd banner; console tail: {}",
            tail(&vm.console())
        ));
        return boot;
    };
    let offset = vm.boot_offset();
    let start = init_start(&vm);
    boot.kernel_to_init = start;
    if let (Some(offset), Some(start)) = (offset, start) {
        boot.init_to_sshd = Some(banner.as_secs_f64() - offset.as_secs_f64() - start);
    }
    if init == Init::Runtree {
        match all_ready(&vm, Duration::from_secs(300)) {
            Ok(ready) => boot.init_to_ready = start.map(|s| ready - s),
            Err(e) => boot.problem = Some(e),
        }
    }
    // From the moment the command starts in the guest (its /proc/uptime, on the host's
    // clock through the boot offset): ssh's own connection set-up, a second or more of
    // key exchange under TCG and the same for every init, is not the machine's.
    let sent = Instant::now();
    let (_, out, _) = vm.ssh(
        &format!("cat /proc/uptime; exec {}", init.poweroff()),
        Duration::from_secs(60),
    );
    let uptime = out
        .split_whitespace()
        .next()
        .and_then(|uptime| uptime.parse::<f64>().ok());
    let in_guest = uptime
        .zip(offset)
        .map(|(uptime, offset)| vm.started + offset + Duration::from_secs_f64(uptime));
    let asked = in_guest.map_or(sent, |at| at.max(sent));
    match vm.wait_exit(asked, Duration::from_secs(120)) {
        Some((_, took)) => boot.poweroff = Some(took.as_secs_f64()),
        None => boot.problem = Some("qemu still ran 120 s after poweroff".into()),
    }
    // The same span on the guest's own clock, to the kernel's last line: no boot offset,
    // no qemu exit in it.
    boot.power_down = uptime.zip(power_down_at(&vm.console())).map(|(u, d)| d - u);
    boot
}

/// The kernel's `[ 39.865137] reboot: Power down` on the console: when, on the guest's
/// boot clock.
fn power_down_at(console: &str) -> Option<f64> {
    let line = console
        .lines()
        .rev()
        .find(|l| l.contains("reboot: Power down"))?;
    let stamp = line.split('[').nth(1)?.split(']').next()?;
    stamp.trim().parse().ok()
}

fn tail(console: &str) -> String {
    let lines: Vec<&str> = console.lines().rev().take(5).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
}

fn cell(values: &[f64]) -> String {
    if values.is_empty() {
        return "n/a".into();
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    let (low, high) = (sorted[0], sorted[sorted.len() - 1]);
    format!("{} s ({}–{})", number(median), number(low), number(high))
}

/// Runs the boots and prints the table (or why it cannot run).
pub fn run(quick: bool) {
    if !nix::unistd::geteuid().is_root() {
        println!("boot: n/a: needs root (debootstrap, as tests/debian_vm.rs)");
        return;
    }
    let bin = match runtree::static_binaries() {
        Ok(bin) => bin,
        Err(e) => {
            println!("boot: n/a: {e}");
            return;
        }
    };
    crate::progress("boot: preparing the Debian image");
    let image = match debian_vm::prepare(&bin) {
        Ok(image) => image,
        Err(Unavailable::Skip(reason)) | Err(Unavailable::Failed(reason)) => {
            println!("boot: n/a: {reason}");
            return;
        }
    };
    let rounds = if quick { 1 } else { 3 };
    let mut results: Vec<(Init, Boot)> = Vec::new();
    for round in 0..rounds {
        for turn in 0..INITS.len() {
            let init = INITS[(round + turn) % INITS.len()];
            crate::progress(&format!("boot: round {}, {}", round + 1, init.name()));
            let boot = one_boot(&image, init, &format!("{}-{round}", init.name()));
            if let Some(problem) = &boot.problem {
                println!("boot: {} round {}: {problem}", init.name(), round + 1);
            }
            results.push((init, boot));
        }
    }
    let column = |init: Init, pick: fn(&Boot) -> Option<f64>| -> String {
        let values: Vec<f64> = results
            .iter()
            .filter(|(i, _)| *i == init)
            .filter_map(|(_, b)| pick(b))
            .collect();
        cell(&values)
    };
    type Pick = fn(&Boot) -> Option<f64>;
    let metrics: [(&str, Pick); 5] = [
        ("kernel → init", |b| b.kernel_to_init),
        ("init → sshd banner", |b| b.init_to_sshd),
        ("init → all services ready", |b| b.init_to_ready),
        ("poweroff → qemu exit", |b| b.poweroff),
        ("poweroff → power down (guest)", |b| b.power_down),
    ];
    println!();
    println!("Debian 12 boot under qemu TCG, {rounds} boot(s) each, median (min–max):");
    println!(
        "| {:<29} | {:<22} | {:<22} | {:<22} |",
        "metric", "systemd", "runit (Debian)", "runtree"
    );
    println!("|{:-<31}|{:-<24}|{:-<24}|{:-<24}|", "", "", "", "");
    for (title, pick) in metrics {
        println!(
            "| {:<29} | {:<22} | {:<22} | {:<22} |",
            title,
            column(Init::Systemd, pick),
            column(Init::Runit, pick),
            column(Init::Runtree, pick)
        );
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_power_down_stamp_is_read_from_the_console() {
        let console = "init: powering off\n[   39.865137] reboot: Power down\n";
        assert_eq!(super::power_down_at(console), Some(39.865137));
        assert_eq!(super::power_down_at("init: powering off\n"), None);
    }
}
