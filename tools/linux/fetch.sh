#!/usr/bin/env bash
# fetch.sh OUT: the Linux test guest, from Debian's packages: the cloud kernel (an EFI-stub
# image, started by the ACPI loader) and a busybox initramfs with tools/linux/init.
# Writes OUT/vmlinuz.efi, OUT/initrd.img, OUT/cmdline.txt. Needs apt-get and cpio.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(mkdir -p "$1" && cd "$1" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
# The kernel the cloud meta-package currently depends on (e.g. linux-image-6.1.0-NN-cloud-amd64).
find_pkg() { apt-cache depends linux-image-cloud-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9].*-cloud-amd64\)$/\1/p' | head -n 1; }
pkg=$(find_pkg)
if [ -z "$pkg" ]; then
	apt-get update -qq >/dev/null 2>&1 || true # package lists absent or stale
	pkg=$(find_pkg)
fi
[ -n "$pkg" ] || { echo "fetch.sh: no linux-image-*-cloud-amd64 in the package lists (apt-get update?)" >&2; exit 1; }
apt-get download "$pkg" busybox-static >/dev/null 2>&1 || { echo "fetch.sh: apt-get download $pkg busybox-static failed" >&2; exit 1; }
for d in *.deb; do dpkg-deb -x "$d" root; done
cp root/boot/vmlinuz-* "$out/vmlinuz.efi"
mkdir -p initrd/bin initrd/proc initrd/sys initrd/dev
cp root/bin/busybox initrd/bin/
cp "$here/init" initrd/init
(cd initrd && find . | cpio -o -H newc 2>/dev/null | gzip -9) > "$out/initrd.img"
# Bochs' TSC runs at ips (50 MHz in the harness); see tools/linux/README.md for each option.
echo 'initrd=\initrd.img console=ttyS0,115200 cryptomgr.notests clearcpuid=pku,avx512f tsc=reliable tsc_early_khz=50000 quiet' > "$out/cmdline.txt"
echo "fetch.sh: $pkg with busybox initramfs in $out"
