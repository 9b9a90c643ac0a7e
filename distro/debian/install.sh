#!/bin/sh
# Turns a Debian 12 system (or a root tree of one, for an image) into a runtree system:
# installs the static runtree programs in ROOT/usr/local and the Debian service set of
# distro/debian/service in ROOT/etc/runtree/service, and prints the kernel command line
# that boots it. Nothing of Debian's packages is removed or overwritten: booting
# without that command line boots Debian's own init as before. See distro/debian/README.md.
#
# usage: distro/debian/install.sh [--bin DIR] [ROOT]
#   ROOT       the system's root (default /)
#   --bin DIR  prebuilt static programs (init, svdir, runsv, sv, svchdir, chpst, svlogd,
#              utmpset); default: build them with scripts/build-static
#
# What it changes in ROOT:
#   usr/local/sbin, usr/local/bin  runtree's programs (scripts/build-static's install),
#                    with poweroff, reboot, halt and shutdown -> init: root's PATH has
#                    /usr/local/sbin first, so those names reach runtree
#   etc/runtree/service/NAME   one directory per service, its `supervise` a symlink to
#                    /run/runtree/supervise/NAME (/run is a fresh tmpfs at each boot,
#                    and / may still be read-only when the supervisors start)
#   var/lib/runtree  the random seed's directory (0700)
#   etc/rsyslog.conf  imklog takes the lines runsv writes to /dev/kmsg for services
#                    (PermitNonKernelFacility): service output ends in /var/log once
#                    rsyslog runs, earlier lines included (the kernel buffer keeps them)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
bin=
while [ $# -gt 0 ]; do
    case $1 in
        --bin) bin=${2:?--bin needs a directory}; shift 2 ;;
        -h|--help) sed -n '2,/^set -eu/p' "$0" | sed '$d'; exit 0 ;;
        -*) echo "install.sh: unknown option $1" >&2; exit 100 ;;
        *) break ;;
    esac
done
root=${1:-/}
[ -d "$root/etc" ] || { echo "install.sh: $root/etc: not a system root" >&2; exit 111; }
[ -f "$root/etc/debian_version" ] || echo "install.sh: warning: $root is not Debian" >&2

# 1. The programs.
if [ -z "$bin" ]; then
    bin=$("$repo/scripts/build-static" | tail -n 1)
    case $bin in /*) ;; *) bin=$repo/$bin ;; esac
fi
for program in init svdir runsv svchdir utmpset sv chpst svlogd; do
    [ -x "$bin/$program" ] || { echo "install.sh: $bin/$program: missing" >&2; exit 111; }
done
mkdir -p "$root/usr/local/sbin" "$root/usr/local/bin"
for program in init svdir runsv svchdir utmpset; do
    install -m 0755 "$bin/$program" "$root/usr/local/sbin/$program"
done
for program in sv chpst svlogd; do
    install -m 0755 "$bin/$program" "$root/usr/local/bin/$program"
done
for name in poweroff reboot halt shutdown; do
    ln -sfn init "$root/usr/local/sbin/$name"
done
ln -sfn svchdir "$root/usr/local/sbin/runsvchdir"

# 2. The services.
scan=$root/etc/runtree/service
mkdir -p "$scan"
for dir in "$here"/service/*/; do
    name=$(basename "$dir")
    rm -rf "${scan:?}/$name"
    cp -R "$dir" "$scan/$name"
    ln -sfn "/run/runtree/supervise/$name" "$scan/$name/supervise"
done

# random-seed's state directory, made here rather than by a mkdir at the first boot.
mkdir -p "$root/var/lib/runtree"
chmod 0700 "$root/var/lib/runtree"

# 3. rsyslog: services' kernel-log lines into /var/log.
conf=$root/etc/rsyslog.conf
if [ -f "$conf" ] && ! grep -q 'PermitNonKernelFacility' "$conf"; then
    sed -i 's/^module(load="imklog")/module(load="imklog" PermitNonKernelFacility="on")/' "$conf"
fi

echo "installed runtree and $(ls "$here/service" | wc -l) services in $root"
echo "boot with: init=/usr/local/sbin/init runtree.scandir=/etc/runtree/service rw"
