#!/usr/bin/env bash
# fetch.sh OUT: the Linux test guest's parts from Debian's packages: the cloud kernel (an
# EFI-stub image, started by the ACPI loader) with its efivarfs module, busybox, and the matching linux-headers
# package (installed, for building tools/linux/driver). Writes OUT/vmlinuz.efi, OUT/busybox,
# OUT/efivarfs.ko
# and OUT/kernel-release (e.g. 6.1.0-56-cloud-amd64). Needs apt-get (root for the headers).
set -euo pipefail
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
rel=${pkg#linux-image-}
apt-get download "$pkg" busybox-static >/dev/null 2>&1 || { echo "fetch.sh: apt-get download $pkg busybox-static failed" >&2; exit 1; }
if [ ! -e "/usr/src/linux-headers-$rel/Makefile" ]; then
	echo "fetch.sh: installing linux-headers-$rel (to build the guest driver)"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "linux-headers-$rel" >/dev/null ||
		{ echo "fetch.sh: apt-get install linux-headers-$rel failed" >&2; exit 1; }
fi
for d in *.deb; do dpkg-deb -x "$d" root; done
cp root/boot/vmlinuz-* "$out/vmlinuz.efi"
cp root/bin/busybox "$out/busybox"
# efivarfs (a module in this kernel): /init reads EFI variables through the runtime services,
# which shows SetVirtualAddressMap worked with the hypervisor underneath.
efivarfs=$(find root/lib/modules -name 'efivarfs.ko*' | head -n 1)
[ -n "$efivarfs" ] || { echo "fetch.sh: no efivarfs module in $pkg" >&2; exit 1; }
case $efivarfs in
*.ko) cp "$efivarfs" "$out/efivarfs.ko" ;;
*.ko.xz) xz -dc "$efivarfs" > "$out/efivarfs.ko" ;;
*) echo "fetch.sh: cannot unpack $efivarfs" >&2; exit 1 ;;
esac
echo "$rel" > "$out/kernel-release"
echo "fetch.sh: $pkg and busybox in $out; headers in /usr/src/linux-headers-$rel"
