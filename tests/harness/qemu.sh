#!/usr/bin/env bash
# qemu.sh NAME [options]: boots a fresh ESP in QEMU TCG + OVMF (the machine without VMX) and
# collects COM1 in build/run/NAME/serial.log. Options: see runlib.sh (--model is ignored:
# QEMU runs -cpu max, which has no VMX under TCG). -no-reboot makes a guest reset end QEMU.
# QEMU_EXTRA (environment): more QEMU arguments, e.g. "-device intel-iommu -device edu".
set -euo pipefail
. "$(dirname "$0")/runlib.sh"
run_parse "$@"
run_mkesp
cd "$RUN"
qemu-system-x86_64 -machine q35 -cpu max -smp "$CPUS" -m "$MEM" -bios /usr/share/ovmf/OVMF.fd \
	-drive "format=raw,file=$(if [ -n "$DISK" ]; then echo disk.img; else echo fat:rw:esp; fi)" -display none -serial file:serial.log -net none \
	-no-reboot -monitor none ${QEMU_EXTRA:-} </dev/null >qemu.out 2>&1 &
run_watch $!
