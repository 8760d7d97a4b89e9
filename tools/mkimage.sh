#!/usr/bin/env bash
# mkimage.sh OUT.img: a bootable raw disk image for a USB stick or a virtual disk (make image).
# GPT with one EFI system partition (FAT32) holding:
#   \EFI\BOOT\BOOTX64.EFI    Tessel (build/tessel.efi): the default boot program of removable media
#   \EFI\BOOT\tessel.cfg     its configuration (TESSEL_CFG in the environment replaces the default)
#   \EFI\tessel\demo.efi     the demo guest, \EFI\tessel\tesselctl.efi the UEFI shell tool
# Built with the packaged tools only (sgdisk from gdisk, mtools); no root, no loop devices.
# The size is 130 x 16 x 63 sectors (about 64 MiB): whole cylinders, so Bochs takes the
# geometry as it is. Write it to a stick with: dd if=build/tessel.img of=/dev/sdX bs=4M conv=fsync
set -euo pipefail
out=${1:?usage: mkimage.sh OUT.img}
root=$(cd "$(dirname "$0")/.." && pwd)
for f in build/tessel.efi build/tools/demo.efi build/tools/tesselctl.efi; do
	[ -f "$root/$f" ] || { echo "mkimage: $f missing (make all first)" >&2; exit 2; }
done
command -v sgdisk >/dev/null || { echo "mkimage: sgdisk missing (apt-get install gdisk)" >&2; exit 2; }
command -v mformat >/dev/null || { echo "mkimage: mtools missing (apt-get install mtools)" >&2; exit 2; }

sectors=$((130 * 16 * 63))
first=2048
tmp=$out.tmp
rm -f "$tmp"
truncate -s $((sectors * 512)) "$tmp"
# Partition 1 from sector 2048 to the last usable sector, type EF00 (EFI system partition).
sgdisk --clear --new=1:$first:0 --typecode=1:ef00 --change-name=1:'Tessel ESP' "$tmp" >/dev/null
last=$(sgdisk --info=1 "$tmp" | sed -n 's/^Last sector: \([0-9]*\).*/\1/p')
[ -n "$last" ] || { echo "mkimage: could not read the partition's end" >&2; exit 1; }
part="$tmp@@$((first * 512))"
export MTOOLS_SKIP_CHECK=1
mformat -i "$part" -F -T $((last - first + 1)) -h 16 -s 63 -v TESSEL ::
mmd -i "$part" ::/EFI ::/EFI/BOOT ::/EFI/tessel
mcopy -i "$part" "$root/build/tessel.efi" ::/EFI/BOOT/BOOTX64.EFI
mcopy -i "$part" "$root/build/tools/demo.efi" ::/EFI/tessel/demo.efi
mcopy -i "$part" "$root/build/tools/tesselctl.efi" ::/EFI/tessel/tesselctl.efi
cfg=${TESSEL_CFG:-$(printf '%s\n' \
	'# tessel.cfg: one key=value per line (docs/CONFIG.md).' \
	'# To start an installed OS under Tessel, copy its boot loader from the internal' \
	"# disk's ESP onto this one and name it, e.g. next=\\EFI\\debian\\grubx64.efi" \
	'next=\EFI\tessel\demo.efi')}
printf '%s\n' "$cfg" | sed 's/\r*$/\r/' > "$tmp.cfg"
mcopy -i "$part" "$tmp.cfg" ::/EFI/BOOT/tessel.cfg
rm -f "$tmp.cfg"
sgdisk --verify "$tmp" >/dev/null || { echo "mkimage: sgdisk --verify failed" >&2; exit 1; }
mv "$tmp" "$out"
echo "mkimage: $out ($((sectors * 512 / 1048576)) MiB, GPT, FAT32 ESP)"
