#!/bin/bash
# Makes the disk image the Debian VM test and the boot bench boot: the cached Debian 12
# tree (rootfs.sh), configured as a small VM (fstab, DHCP on eth0, a host name, root's
# ssh key), with runtree and the Debian service set installed by distro/debian/install.sh,
# as an ext4 image made without mounting anything (mke2fs -d).
#
# usage: image.sh CACHE BIN PUBKEY IMAGE
#   CACHE   rootfs.sh's cache directory
#   BIN     static runtree programs (scripts/build-static's output directory)
#   PUBKEY  an ssh public key, authorized for root
#   IMAGE   the image file to write (2 GiB, sparse)
set -euo pipefail
CACHE=${1:?cache} BIN=${2:?bin dir} PUBKEY=${3:?public key} IMAGE=${4:?image}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/runtree-image.XXXXXX")
trap 'rm -rf "$work"' EXIT
R=$work/root
cp -a "$CACHE/rootfs" "$R"

cat >"$R/etc/fstab" <<'EOF'
# <file system> <mount point> <type> <options> <dump> <pass>
/dev/vda / ext4 defaults,errors=remount-ro 0 1
EOF
echo runtree-vm >"$R/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\truntree-vm\n' >"$R/etc/hosts"
cat >"$R/etc/network/interfaces" <<'EOF'
auto lo
iface lo inet loopback

auto eth0
iface eth0 inet dhcp
EOF
install -d -m 0700 "$R/root/.ssh"
install -m 0600 "$PUBKEY" "$R/root/.ssh/authorized_keys"
# DNS lookups of the client's address would wait for a resolver the VM may not reach.
echo 'UseDNS no' >"$R/etc/ssh/sshd_config.d/runtree-test.conf"

"$here/../../distro/debian/install.sh" --bin "$BIN" "$R" >/dev/null
rm -f "$IMAGE"
mke2fs -q -t ext4 -L root -d "$R" "$IMAGE" 2G
