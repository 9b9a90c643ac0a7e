#!/bin/bash
# Builds (once per machine) the Debian 12 root filesystem, kernel and initrd that the
# Debian VM test (tests/debian_vm.rs) and `runtree-bench --only boot` boot, and prints
# the cache directory. Nothing of runtree is in it: the image of each boot is made from
# this pristine tree (see image.sh), so one cache serves runtree, systemd and runit.
#
# usage: rootfs.sh           (as root)
# env:   RUNTREE_DEBIAN_CACHE  cache directory (default /var/cache/runtree-test/bookworm)
# exit:  0 ready (path on stdout), 77 cannot build here ("SKIP: why" on stdout),
#        anything else: a failure.
#
# The cache holds rootfs/ (debootstrap's tree, with an initrd that knows the root is
# ext4), vmlinuz, initrd.img and a stamp written last: a build that was interrupted is
# redone, never used half-made. Several builders at once: one builds, the others wait.
set -euo pipefail
CACHE=${RUNTREE_DEBIAN_CACHE:-/var/cache/runtree-test/bookworm}
skip() { echo "SKIP: $*"; exit 77; }

[ "$(id -u)" -eq 0 ] || skip "debootstrap needs root"
# The package list is part of the stamp: changing it rebuilds the cache.
PACKAGES=systemd,udev,ifupdown,isc-dhcp-client,openssh-server,cron,rsyslog,runit,runit-init,runit-services,initscripts,procps,iproute2,linux-image-amd64,kmod,e2fsprogs,util-linux-extra
STAMP="bookworm minbase $PACKAGES v1"

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9
if [ -f "$CACHE/stamp" ] && [ "$(cat "$CACHE/stamp")" = "$STAMP" ]; then
    echo "$CACHE"
    exit 0
fi
command -v debootstrap >/dev/null || skip "debootstrap is not installed (apt-get install debootstrap)"

# The host's own mirror (a CI machine may only reach that one).
mirror=$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null |
    grep -v security | head -n 1 || true)
if [ -z "$mirror" ]; then
    mirror=$(awk '$1 == "deb" && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
fi
mirror=${mirror:-http://deb.debian.org/debian}

rm -rf "$CACHE/rootfs" "$CACHE/stamp" "$CACHE/vmlinuz" "$CACHE/initrd.img"
# Daemons installed into the tree must not start on this host while debootstrap runs.
debootstrap --variant=minbase --include="$PACKAGES" bookworm "$CACHE/rootfs" "$mirror" \
    >"$CACHE/debootstrap.log" 2>&1 || {
    tail -n 20 "$CACHE/debootstrap.log" >&2
    echo "rootfs.sh: debootstrap failed (log: $CACHE/debootstrap.log)" >&2
    exit 1
}
R=$CACHE/rootfs
# The initrd's fsck hook cannot find the root's type from inside a chroot: say it.
sed -i 's/^#\?FSTYPE=.*/FSTYPE=ext4/' "$R/etc/initramfs-tools/initramfs.conf"
grep -q '^FSTYPE=ext4' "$R/etc/initramfs-tools/initramfs.conf" ||
    echo FSTYPE=ext4 >>"$R/etc/initramfs-tools/initramfs.conf"
# Only what a virtio machine needs in the initrd: a smaller initrd unpacks faster
# under TCG (MODULES=dep would look at the host's devices from inside the chroot).
printf 'virtio_pci\nvirtio_blk\nvirtio_net\next4\n' >>"$R/etc/initramfs-tools/modules"
sed -i 's/^MODULES=.*/MODULES=list/' "$R/etc/initramfs-tools/initramfs.conf"
chroot "$R" update-initramfs -u -k all >"$CACHE/initramfs.log" 2>&1 || {
    tail -n 20 "$CACHE/initramfs.log" >&2
    echo "rootfs.sh: update-initramfs failed (log: $CACHE/initramfs.log)" >&2
    exit 1
}
cp "$(ls "$R"/boot/vmlinuz-* | sort -V | tail -n 1)" "$CACHE/vmlinuz"
cp "$(ls "$R"/boot/initrd.img-* | sort -V | tail -n 1)" "$CACHE/initrd.img"
# The guest's own copies are not needed to boot (qemu loads them) and take 60 MB.
rm -f "$R"/boot/initrd.img-*
rm -rf "$R"/var/cache/apt/archives/*.deb "$R"/var/lib/apt/lists/*
echo "$STAMP" >"$CACHE/stamp"
echo "$CACHE"
