#!/usr/bin/env bash
# mkinitrd.sh OUT: packs OUT/initrd.img (gzip cpio, newc) from tools/linux/init, OUT/busybox,
# OUT/efivarfs.ko, OUT/driver/tessel.ko (debug info stripped) and OUT/tessel-conform, and writes OUT/cmdline.txt.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(cd "$1" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work"/{bin,proc,sys,dev,tmp,lib/tessel}
cp "$out/busybox" "$work/bin/busybox"
cp "$here/init" "$work/init"
cp "$out/tessel-conform" "$work/bin/tessel-conform"
strip --strip-debug -o "$work/lib/tessel/tessel.ko" "$out/driver/tessel.ko"
cp "$out/efivarfs.ko" "$work/lib/tessel/efivarfs.ko"
(cd "$work" && find . | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -9) > "$out/initrd.img"
# Bochs' TSC runs at ips (50 MHz in the harness); see tools/linux/README.md for each option.
echo 'initrd=\initrd.img console=ttyS0,115200 cryptomgr.notests clearcpuid=pku,avx512f tsc=reliable tsc_early_khz=50000 quiet' > "$out/cmdline.txt"
sed 's/ quiet$/ quiet tessel_init=s3/' "$out/cmdline.txt" > "$out/cmdline-s3.txt"
