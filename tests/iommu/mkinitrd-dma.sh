#!/usr/bin/env bash
# mkinitrd-dma.sh OUT: the Linux guest for the iommu-linux-qemu group (docs/IOMMU.md): the same
# Debian cloud kernel as tools/linux/ (build/linux/, `make linux` first) with an initramfs of
# busybox, the virtio block modules from that kernel's package, and tests/iommu/init-dma,
# which reads and writes a virtio disk (its blocks go by DMA through the IOMMU Tessel
# programmed) and checks them. Also writes OUT/disk.img (4 MiB of a known pattern) and
# OUT/disk.md5 (its checksum). Uses `apt-get download` for the kernel package.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
lx=$root/build/linux
out=$(mkdir -p "$1" && cd "$1" && pwd)
[ -f "$lx/kernel-release" ] && [ -f "$lx/busybox" ] || { echo "mkinitrd-dma.sh: run 'make linux' first" >&2; exit 1; }
rel=$(cat "$lx/kernel-release")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download "linux-image-$rel" >/dev/null 2>&1) ||
	{ echo "mkinitrd-dma.sh: apt-get download linux-image-$rel failed" >&2; exit 1; }
dpkg-deb -x "$work"/linux-image-*.deb "$work/pkg"
mods=$work/pkg/lib/modules/$rel/kernel/drivers
mkdir -p "$work"/rd/{bin,proc,sys,dev,tmp,lib/mod}
cp "$lx/busybox" "$work/rd/bin/busybox"
cp "$here/init-dma" "$work/rd/init"
chmod +x "$work/rd/init"
# In load order (each module's depends= comes before it).
for m in virtio/virtio_ring virtio/virtio virtio/virtio_pci_modern_dev virtio/virtio_pci_legacy_dev \
	virtio/virtio_pci block/virtio_blk; do
	f=$mods/$m.ko
	[ -f "$f" ] || { echo "mkinitrd-dma.sh: no $m.ko in linux-image-$rel" >&2; exit 1; }
	cp "$f" "$work/rd/lib/mod/"
done
(cd "$work/rd" && find . | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -9) > "$out/initrd-dma.img"
cp "$lx/vmlinuz.efi" "$out/vmlinuz.efi"
# 4 MiB whose every 512-byte block starts with its own number: a misplaced block shows.
python3 - "$out/disk.img" <<'PY'
import sys
with open(sys.argv[1], 'wb') as f:
    for b in range(8192):
        head = b'TESSEL-DMA-BLOCK %08d ' % b
        f.write((head * (512 // len(head) + 1))[:512])
PY
md5sum "$out/disk.img" | cut -d' ' -f1 > "$out/disk.md5"
echo "mkinitrd-dma.sh: $out/initrd-dma.img, $out/disk.img"
