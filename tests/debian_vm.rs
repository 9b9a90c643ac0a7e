//! A real Debian 12 booted by runtree: the cached debootstrap tree with runtree and the
//! Debian service set (distro/debian) installed, Debian's kernel and initrd, qemu TCG
//! (src/debian_vm.rs). Checks what an admin would: sshd answers on the forwarded port,
//! `sv status` shows every service up (`running`, or `ok` for a oneshot), a login prompt
//! on the serial console, `sv blame` over ssh, `sv restart sshd` over ssh keeps the
//! session typing it, `poweroff` over ssh ends qemu within
//! seconds, and the disk is clean afterwards (`e2fsck -fn`: nothing to recover).
//!
//! Needs root (debootstrap; the first run on a machine fills /var/cache/runtree-test in
//! about 3 minutes) and qemu, ssh, e2fsprogs; skipped with the reason otherwise, a
//! failure with `RUNTREE_VM_REQUIRED=1` (CI). `RUNTREE_VM_BIN_DIR` names prebuilt
//! static programs.

use runtree::debian_vm::{self, Init, Unavailable};
use std::time::{Duration, Instant};

fn skip(reason: &str) {
    runtree::skip("the Debian VM test is", "RUNTREE_VM_REQUIRED", reason);
}

/// The services of distro/debian/service: each must be up.
fn shipped_services() -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("distro/debian/service");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// (name, state) of every service in `sv status --json` output.
fn states(json: &str) -> Vec<(String, String)> {
    let field = |object: &str, key: &str| -> String {
        let marker = format!("\"{key}\":\"");
        object
            .find(&marker)
            .map(|at| {
                let rest = &object[at + marker.len()..];
                rest[..rest.find('"').unwrap_or(0)].to_string()
            })
            .unwrap_or_default()
    };
    json.split("{\"name\":")
        .skip(1)
        .map(|object| {
            let object = format!("{{\"name\":{object}");
            (field(&object, "name"), field(&object, "state"))
        })
        .collect()
}

#[test]
#[cfg(target_arch = "x86_64")]
fn debian_boots_with_runtree_and_powers_off_clean() {
    if !nix::unistd::geteuid().is_root() {
        skip("needs root (debootstrap)");
        return;
    }
    let started = Instant::now();
    let bin = runtree::static_binaries().unwrap_or_else(|e| panic!("{e}"));
    let image = match debian_vm::prepare(&bin) {
        Ok(image) => image,
        Err(Unavailable::Skip(reason)) => {
            skip(&reason);
            return;
        }
        Err(Unavailable::Failed(why)) => panic!("{why}"),
    };
    let prepared = started.elapsed();
    let mut vm = image.boot(Init::Runtree, "runtree").unwrap();
    let banner = vm.wait_banner(Duration::from_secs(480));
    assert!(
        banner.is_some(),
        "sshd never answered on port {}; console:\n{}",
        vm.port,
        vm.console()
    );

    // Every shipped service up. Oneshots end `ok`; the getties and daemons run.
    let expected = shipped_services();
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let (code, out, err) = vm.ssh(
            "SVDIR=/etc/runtree/service sv status --json",
            Duration::from_secs(60),
        );
        assert!(code == 0 || code == 1, "sv status: {code} {out}{err}");
        seen = states(&out);
        let up = |(_, state): &(String, String)| state == "running" || state == "ok";
        if seen.len() == expected.len() && seen.iter().all(up) {
            break;
        }
        // Services still starting (getty after udev, say): look again in a moment.
        std::thread::sleep(Duration::from_secs(2));
    }
    let names: Vec<String> = seen.iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(names, expected, "{seen:?}");
    for (name, state) in &seen {
        assert!(
            state == "running" || state == "ok",
            "{name} is {state}: {seen:?}\nconsole:\n{}",
            vm.console()
        );
    }
    let (_, status_text, _) = vm.ssh("sv status /etc/runtree/service/*", Duration::from_secs(60));
    let (code, blame, err) = vm.ssh(
        "SVDIR=/etc/runtree/service sv blame",
        Duration::from_secs(60),
    );
    assert_eq!(code, 0, "sv blame: {blame}{err}");
    assert!(blame.contains("critical path"), "{blame}");

    // `sv restart sshd` typed over ssh: the session typing it lives on (kill_mode:
    // process), and the new sshd answers.
    let (_, before, _) = vm.ssh(
        "cat /run/runtree/supervise/sshd/pid",
        Duration::from_secs(60),
    );
    let (code, out, err) = vm.ssh(
        "SVDIR=/etc/runtree/service sv restart sshd; echo session-survived",
        Duration::from_secs(60),
    );
    assert!(
        out.contains("session-survived"),
        "sv restart sshd ended the session ({code}): {out}{err}"
    );
    // The new sshd takes a moment to listen in the slow guest: ask until it answers.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut after = String::new();
    while Instant::now() < deadline {
        let (code, out, _) = vm.ssh(
            "cat /run/runtree/supervise/sshd/pid",
            Duration::from_secs(60),
        );
        after = out;
        if code == 0 && !after.trim().is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    assert!(
        !after.trim().is_empty() && after != before,
        "sshd not restarted: {before:?} then {after:?}"
    );

    let console = vm.console();
    assert!(
        console.contains("runtree-vm login:"),
        "no login prompt on the serial console:\n{console}"
    );

    let asked = Instant::now();
    // The connection may end with the machine: only qemu's exit is judged.
    let _ = vm.ssh("poweroff", Duration::from_secs(30));
    let exited = vm.wait_exit(asked, Duration::from_secs(30));
    let console = vm.console();
    let Some((status, took)) = exited else {
        panic!("qemu still runs 30 s after poweroff; console:\n{console}");
    };
    assert!(status.success(), "qemu: {status:?}\n{console}");
    // Seconds: ssh's connection set-up, then mostly networking's `ifdown -a` (a DHCP
    // release by a fresh dhclient); about 10 s when the VM gets a quarter of a loaded
    // CPU. The bench (`--only boot`) measures it from the command's start in the guest.
    assert!(
        took < Duration::from_secs(20),
        "poweroff took {took:?}\n{console}"
    );
    let (clean, fsck) = vm.fsck();
    assert!(
        clean,
        "the disk needs repair after poweroff:\n{fsck}\nconsole:\n{console}"
    );
    assert!(
        !console.contains("stays writable"),
        "init could not make a filesystem read-only:\n{console}"
    );
    eprintln!(
        "prepared in {prepared:?}; sshd banner {:?} after qemu start; poweroff→exit {took:?}\n{status_text}\n{blame}\n{console}",
        banner.unwrap_or_default()
    );
}
