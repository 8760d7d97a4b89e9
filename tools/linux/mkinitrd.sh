#!/usr/bin/env bash
# mkinitrd.sh OUT: packs OUT/initrd.img (gzip cpio, newc) from tools/linux/init, OUT/busybox,
# OUT/efivarfs.ko, OUT/driver/tessel.ko and tessel_guard.ko (debug info stripped), the guard's
# malicious test module OUT/evil/tessel_evil.ko (lib/tessel/test/: this initramfs is a test
# one), tools/linux/tessel-guard-demo and OUT/tessel-conform, and writes OUT/cmdline.txt
# (and the -s3, -guard, -guard-opt variants).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(cd "$1" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work"/{bin,proc,sys,dev,tmp,lib/tessel/test}
cp "$out/busybox" "$work/bin/busybox"
cp "$here/init" "$work/init"
cp "$out/tessel-conform" "$work/bin/tessel-conform"
strip --strip-debug -o "$work/lib/tessel/tessel.ko" "$out/driver/tessel.ko"
strip --strip-debug -o "$work/lib/tessel/tessel_guard.ko" "$out/driver/tessel_guard.ko"
strip --strip-debug -o "$work/lib/tessel/test/tessel_evil.ko" "$out/evil/tessel_evil.ko"
cp "$here/tessel-guard-demo" "$work/bin/tessel-guard-demo"
cp "$out/efivarfs.ko" "$work/lib/tessel/efivarfs.ko"
(cd "$work" && find . | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -9) > "$out/initrd.img"
# Bochs' TSC runs at ips (50 MHz in the harness); see tools/linux/README.md for each option.
echo 'initrd=\initrd.img console=ttyS0,115200 cryptomgr.notests clearcpuid=pku,avx512f tsc=reliable tsc_early_khz=50000 quiet' > "$out/cmdline.txt"
sed 's/ quiet$/ quiet tessel_init=s3/' "$out/cmdline.txt" > "$out/cmdline-s3.txt"
sed 's/ quiet$/ quiet tessel_init=guard/' "$out/cmdline.txt" > "$out/cmdline-guard.txt"
# linux-guard-sw: the guard with its opt-in options too (tools/linux/init passes them on).
sed 's/ quiet$/ quiet tessel_init=guard tessel_guard.guard_gdt=1 tessel_guard.guard_text=1/' "$out/cmdline.txt" > "$out/cmdline-guard-opt.txt"
