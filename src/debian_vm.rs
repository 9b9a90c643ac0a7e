//! A real Debian 12 in qemu (TCG), for tests/debian_vm.rs and `runtree-bench --only
//! boot`: the cached debootstrap tree (tests/debian/rootfs.sh), an image with runtree
//! and distro/debian installed (tests/debian/image.sh), and a machine booted from a
//! copy of it with ssh forwarded to a local port, its serial console in a file.
//! Times are measured on the host's monotonic clock from qemu's start, and matched to
//! the guest's boot clock (CLOCK_BOOTTIME, what /proc/uptime and supervise/times use)
//! by reading /proc/uptime over ssh.

use crate::{run, Guard};
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The inits the same image boots, by their `init=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Init {
    Runtree,
    Systemd,
    Runit,
}

impl Init {
    pub fn name(self) -> &'static str {
        match self {
            Init::Runtree => "runtree",
            Init::Systemd => "systemd",
            Init::Runit => "runit",
        }
    }
    fn cmdline(self) -> &'static str {
        match self {
            Init::Runtree => "init=/usr/local/sbin/init runtree.scandir=/etc/runtree/service",
            Init::Systemd => "init=/lib/systemd/systemd",
            Init::Runit => "init=/lib/runit/runit-init",
        }
    }
    /// What an admin types over ssh to power the machine off.
    pub fn poweroff(self) -> &'static str {
        match self {
            // /usr/local/sbin comes first in root's PATH: runtree's init by that name.
            Init::Runtree => "poweroff",
            Init::Systemd => "systemctl poweroff",
            Init::Runit => "/lib/runit/shutdown -h now",
        }
    }
}

/// Why the VM cannot run here (a skip), or a failure of the harness.
#[derive(Debug)]
pub enum Unavailable {
    Skip(String),
    Failed(String),
}

fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/debian")
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false)
}

/// The pristine image (built once per call), its ssh key and the kernel to boot.
pub struct Image {
    pub dir: tempfile::TempDir,
    pub cache: PathBuf,
    pub image: PathBuf,
    pub key: PathBuf,
}

/// Builds (or reuses) the cached Debian tree and makes an image with the static
/// programs of `bin` installed.
pub fn prepare(bin: &Path) -> Result<Image, Unavailable> {
    for program in [
        "qemu-system-x86_64",
        "ssh",
        "ssh-keygen",
        "mke2fs",
        "e2fsck",
    ] {
        if !on_path(program) {
            return Err(Unavailable::Skip(format!("{program} is not installed")));
        }
    }
    let mut rootfs = Command::new("bash");
    rootfs.arg(scripts().join("rootfs.sh"));
    let (code, stdout, stderr) = run(&mut rootfs, Duration::from_secs(900));
    match code {
        0 => {}
        77 => {
            return Err(Unavailable::Skip(
                stdout.trim().trim_start_matches("SKIP: ").to_string(),
            ))
        }
        _ => return Err(Unavailable::Failed(format!("rootfs.sh: {stdout}{stderr}"))),
    }
    let cache = PathBuf::from(stdout.lines().last().unwrap_or("").trim());
    let dir = tempfile::tempdir().map_err(|e| Unavailable::Failed(format!("tempdir: {e}")))?;
    let key = dir.path().join("key");
    let (code, out, err) = run(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key),
        Duration::from_secs(30),
    );
    if code != 0 {
        return Err(Unavailable::Failed(format!("ssh-keygen: {out}{err}")));
    }
    let image = dir.path().join("disk.img");
    let (code, out, err) = run(
        Command::new("bash")
            .arg(scripts().join("image.sh"))
            .arg(&cache)
            .arg(bin)
            .arg(key.with_extension("pub"))
            .arg(&image),
        Duration::from_secs(300),
    );
    if code != 0 {
        return Err(Unavailable::Failed(format!("image.sh: {out}{err}")));
    }
    Ok(Image {
        dir,
        cache,
        image,
        key,
    })
}

/// A booted (or booting) machine.
pub struct Vm {
    pub qemu: Guard,
    pub started: Instant,
    pub port: u16,
    pub console: PathBuf,
    pub disk: PathBuf,
    key: PathBuf,
}

fn free_port() -> std::io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

impl Image {
    /// Boots a copy of the image (named `name` in the image's directory) with `init`.
    pub fn boot(&self, init: Init, name: &str) -> Result<Vm, String> {
        let disk = self.dir.path().join(format!("{name}.img"));
        let console = self.dir.path().join(format!("{name}.console"));
        let (code, _, err) = run(
            Command::new("cp")
                .arg("--sparse=always")
                .arg(&self.image)
                .arg(&disk),
            Duration::from_secs(120),
        );
        if code != 0 {
            return Err(format!("cp {}: {err}", self.image.display()));
        }
        let port = free_port().map_err(|e| format!("no free port: {e}"))?;
        let append = format!(
            "root=/dev/vda rw console=ttyS0 net.ifnames=0 quiet {}",
            init.cmdline()
        );
        let mut command = Command::new("qemu-system-x86_64");
        command
            .args(["-accel", "tcg", "-m", "1024", "-smp", "1"])
            .args([
                "-nodefaults",
                "-no-user-config",
                "-display",
                "none",
                "-no-reboot",
            ])
            .arg("-serial")
            .arg(format!("file:{}", console.display()))
            .arg("-kernel")
            .arg(self.cache.join("vmlinuz"))
            .arg("-initrd")
            .arg(self.cache.join("initrd.img"))
            .args(["-append", &append])
            .arg("-drive")
            .arg(format!("file={},format=raw,if=virtio", disk.display()))
            .arg("-netdev")
            .arg(format!("user,id=n,hostfwd=tcp:127.0.0.1:{port}-:22"))
            .args(["-device", "virtio-net-pci,netdev=n,romfile="])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let started = Instant::now();
        let qemu = Guard::spawn(&mut command);
        Ok(Vm {
            qemu,
            started,
            port,
            console,
            disk,
            key: self.key.clone(),
        })
    }
}

impl Vm {
    pub fn console(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.console).unwrap_or_default()).replace('\r', "")
    }

    /// One probe: connect and read sshd's banner. slirp accepts a connection whether or
    /// not the guest listens, and closes it when the guest does not answer.
    fn banner(&self) -> bool {
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_secs(2)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(3)));
        let mut buffer = [0u8; 4];
        stream.read_exact(&mut buffer).is_ok() && &buffer == b"SSH-"
    }

    /// Waits until sshd sends its banner: when, since qemu started. Probes at most once
    /// a second (each probe forks an sshd in the slow guest); gives up when qemu exits.
    pub fn wait_banner(&mut self, timeout: Duration) -> Option<Duration> {
        let deadline = self.started + timeout;
        while Instant::now() < deadline {
            let probe = Instant::now();
            if self.banner() {
                return Some(self.started.elapsed());
            }
            if let Ok(Some(_)) = self.qemu.child.try_wait() {
                return None;
            }
            let next = probe + Duration::from_secs(1);
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
        }
        None
    }

    /// Runs a command in the guest as root; (exit code, stdout, stderr).
    pub fn ssh(&self, command: &str, timeout: Duration) -> (i32, String, String) {
        run(&mut self.ssh_command(command), timeout)
    }

    /// `ssh` as root into the guest, running `command`.
    fn ssh_command(&self, command: &str) -> Command {
        let mut ssh = Command::new("ssh");
        ssh.args([
            "-q",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
        ])
        .args([
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "ConnectTimeout=20",
        ])
        .arg("-i")
        .arg(&self.key)
        .args(["-p", &self.port.to_string(), "root@127.0.0.1", command]);
        ssh
    }

    /// The guest's boot clock zero on the host's clock, as time since qemu's start: ssh
    /// prints the guest's /proc/uptime, and the host notes when that line arrives. It
    /// arrives after it was read, never before, so each estimate is late by the way back
    /// (the guest's ssh, slirp: milliseconds) and the earliest of three is kept. The
    /// middle of the whole round trip, taken before, was off by up to half a second under
    /// TCG: most of an ssh round trip is the key exchange before the command runs, and
    /// its length depends on how busy the guest still is, so the error differed between
    /// inits.
    pub fn boot_offset(&self) -> Option<Duration> {
        (0..3).filter_map(|_| self.uptime_arrival()).min()
    }

    /// One estimate of the boot offset: when `cat /proc/uptime` over ssh printed its
    /// line, on the host's clock, less the uptime it printed.
    fn uptime_arrival(&self) -> Option<Duration> {
        use std::io::BufRead;
        let mut child = self
            .ssh_command("cat /proc/uptime")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let stdout = child.stdout.take()?;
        let started = self.started;
        let (sender, arrived) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let read = std::io::BufReader::new(stdout).read_line(&mut line);
            let _ = sender.send((read.map(|_| line), started.elapsed()));
        });
        let received = arrived.recv_timeout(Duration::from_secs(60));
        if received.is_err() {
            let _ = child.kill();
        }
        let _ = child.wait();
        let (Ok(line), at) = received.ok()? else {
            return None;
        };
        let uptime: f64 = line.split_whitespace().next()?.parse().ok()?;
        at.checked_sub(Duration::from_secs_f64(uptime))
    }

    /// Waits for qemu to exit; its exit status and when, since `since`.
    pub fn wait_exit(
        &mut self,
        since: Instant,
        timeout: Duration,
    ) -> Option<(std::process::ExitStatus, Duration)> {
        let status = self.qemu.wait_exit(timeout)?;
        Some((status, since.elapsed()))
    }

    /// `e2fsck -fn` of the disk after qemu exited: (clean, its output).
    pub fn fsck(&self) -> (bool, String) {
        let (code, out, err) = run(
            Command::new("e2fsck").arg("-fn").arg(&self.disk),
            Duration::from_secs(120),
        );
        (code == 0, format!("{out}{err}"))
    }
}
