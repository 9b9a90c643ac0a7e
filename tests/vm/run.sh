#!/bin/bash
# Boots a static init in a throw-away qemu VM (Debian kernel + an initramfs, TCG) and
# leaves the serial console in OUT/console.log and qemu's exit status in OUT/qemu.rc.
#
# usage: run.sh INIT ROOTFS OUT [kernel command line words]
#   INIT    static init binary; becomes /sbin/init (and /init)
#   ROOTFS  directory copied over the initramfs (a stand-in svdir, service dirs, ...)
#   OUT     directory for console.log, qemu.rc, initramfs.cpio.gz
# env: VMTEST_CACHE  where the extracted kernel is kept (default: $HOME/.cache/vmtest)
#      VM_TIMEOUT    seconds before the VM is killed (default 60)
#      VM_ACCEL      auto|kvm|tcg (default auto: KVM only on a real VMX/SVM host)
# exit: 0 booted (whatever the guest did: judge console.log), 77 cannot run here
#       (reason on stdout, "SKIP: ..."), anything else: a harness failure.
#
# The kernel is never installed: the Debian package is downloaded and unpacked, or an
# already installed /boot/vmlinuz-*-amd64 is reused. Installing linux-image-amd64 would
# pull udev, initramfs-tools and systemd upgrades onto the host.
set -euo pipefail
INIT=${1:?static init binary}
ROOTFS=${2:?rootfs overlay dir}
OUT=${3:?output dir}
shift 3
EXTRA="$*"
CACHE=${VMTEST_CACHE:-$HOME/.cache/vmtest}
skip() { echo "SKIP: $*"; exit 77; }

command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)"
BUSYBOX=$(command -v busybox || true)
[ -x /bin/busybox ] && BUSYBOX=/bin/busybox
[ -n "$BUSYBOX" ] || skip "busybox is not installed (apt-get install busybox-static)"
# A dynamically linked busybox cannot run in an initramfs without its libraries.
if ldd "$BUSYBOX" >/dev/null 2>&1; then skip "$BUSYBOX is dynamically linked (apt-get install busybox-static)"; fi
command -v cpio >/dev/null || skip "cpio is not installed"

mkdir -p "$CACHE" "$OUT"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/runtree-vm.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# 1. Kernel: an uncompressed ELF vmlinux boots about twice as fast under TCG (PVH
#    entry, no decompressor running in emulation); the bzImage is the fallback.
unpack_vmlinux() { # bzImage -> $CACHE/vmlinux, when xz is there
    command -v xz >/dev/null || return 1
    local off
    off=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$1" | awk -F: 'NR==1{print $1}')
    [ -n "$off" ] || return 1
    tail -c +$((off + 1)) "$1" > "$WORK/vmlinux.xz"
    xz -dc --single-stream "$WORK/vmlinux.xz" > "$CACHE/vmlinux.tmp" 2>/dev/null || return 1
    mv "$CACHE/vmlinux.tmp" "$CACHE/vmlinux"
}
# Several VM tests may start at once on an empty cache: one fetches, the others wait.
exec 9>"$CACHE/.lock"
flock 9
if [ ! -s "$CACHE/vmlinux" ] && [ ! -s "$CACHE/vmlinuz" ]; then
    installed=$(ls /boot/vmlinuz-*-amd64 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -n "$installed" ] && [ -r "$installed" ]; then
        cp "$installed" "$CACHE/vmlinuz.tmp" && mv "$CACHE/vmlinuz.tmp" "$CACHE/vmlinuz"
    else
        command -v apt-get >/dev/null || skip "no kernel in $CACHE or /boot, and no apt-get to fetch one"
        kpkg() { apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ && !p {print $2; p=1}'; }
        pkg=$(kpkg)
        # Stale lists: the kernel ABI in the name changes and old packages leave the mirror.
        if [ -z "$pkg" ] || ! (cd "$WORK" && apt-get download -qq -o APT::Sandbox::User=root "$pkg" >/dev/null 2>&1); then
            apt-get update -qq >/dev/null 2>&1 || true
            pkg=$(kpkg)
            [ -n "$pkg" ] || skip "cannot resolve the Debian kernel package (linux-image-amd64)"
            (cd "$WORK" && apt-get download -qq -o APT::Sandbox::User=root "$pkg" >/dev/null 2>&1) \
                || skip "cannot download $pkg"
        fi
        dpkg-deb --fsys-tarfile "$WORK"/"$pkg"_*.deb | tar -x -C "$WORK" --wildcards './boot/vmlinuz-*'
        cp "$WORK"/boot/vmlinuz-* "$CACHE/vmlinuz.tmp" && mv "$CACHE/vmlinuz.tmp" "$CACHE/vmlinuz"
        rm -rf "$WORK"/*.deb "$WORK/boot"
    fi
    unpack_vmlinux "$CACHE/vmlinuz" || true
fi
flock -u 9
KERNEL=$CACHE/vmlinux
[ -s "$KERNEL" ] || KERNEL=$CACHE/vmlinuz

# 2. initramfs: busybox applets in /bin (but not its init), our init as /sbin/init.
R=$WORK/root
mkdir -p "$R"/{bin,sbin,dev,proc,sys,run,tmp,etc,root}
cp "$BUSYBOX" "$R/bin/busybox"
for a in $("$R/bin/busybox" --list); do
    case $a in busybox|init|linuxrc) ;; *) ln -sf busybox "$R/bin/$a" ;; esac
done
install -m 0755 "$INIT" "$R/sbin/init"
ln -s sbin/init "$R/init"
cp -a "$ROOTFS"/. "$R"/
if [ "$(id -u)" = 0 ]; then
    mknod -m 600 "$R/dev/console" c 5 1
    mknod -m 666 "$R/dev/null" c 1 3
fi
(cd "$R" && find . -print0 | cpio --null -o -H newc --owner=0:0 --quiet | gzip -1) > "$OUT/initramfs.cpio.gz"

# 3. Accelerator: these machines' /dev/kvm is kvm_pvm, where stock kernels hang.
accel=${VM_ACCEL:-auto}
if [ "$accel" = auto ]; then
    if [ -w /dev/kvm ] && grep -qwE 'vmx|svm' /proc/cpuinfo && [ ! -d /sys/module/kvm_pvm ]; then
        accel=kvm
    else
        accel=tcg
    fi
fi

# 4. Boot. stdin must be open (/dev/null): a closed one breaks -serial stdio. The
#    console is written raw to a file (CRLF line ends; the reader strips them).
set +e
timeout -k 5 "${VM_TIMEOUT:-60}" qemu-system-x86_64 -accel "$accel" -m 256 -smp 1 \
    -display none -monitor none -serial "file:$OUT/console.log" -nic none -no-reboot \
    -kernel "$KERNEL" -initrd "$OUT/initramfs.cpio.gz" \
    -append "console=ttyS0 panic=-1 quiet $EXTRA" </dev/null > "$OUT/qemu.out" 2>&1
rc=$?
set -e
echo "$rc" > "$OUT/qemu.rc"
echo "accel=$accel kernel=$KERNEL qemu_rc=$rc"
