#!/usr/bin/env bash
# boot.sh NAME tessel|native INIT [bochs.sh options...]: boots the Linux guest of build/linux/
# in Bochs (2 CPUs, 512 MiB, the IA32_MISC_ENABLE fix; README.md here says why) with
# tessel_init=INIT added to the kernel command line. tessel: chain-loaded by Tessel (extra
# tessel.cfg lines from CFG); native: no hypervisor, the ACPI loader is the boot file. Runs in
# build/run/NAME/ like every bochs.sh run. Used by make run-linux and make bench; the test
# groups (tests/harness/groups_linux.py) describe the same boot to systest.py.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
name=${1:?usage: $0 NAME tessel|native INIT [bochs.sh options]} how=${2:?} init=${3:?}
shift 3
lx=build/linux
for f in build/tessel.efi $lx/acpi-loader.efi $lx/vmlinuz.efi $lx/initrd.img $lx/cmdline.txt; do
	[ -f "$f" ] || { echo "$0: $f missing (make all linux)" >&2; exit 2; }
done
inputs=build/run/.inputs/$name
mkdir -p "$inputs"
sed "s/ quiet\$/ quiet tessel_init=$init/" $lx/cmdline.txt > "$inputs/cmdline.txt"
args=(--mem 512 --cpus 2 --msrs tools/linux/msrs-misc-enable.def --no-tests
	--copy "$lx/acpi-loader.efi=acpi-loader.efi" --copy "$lx/vmlinuz.efi=vmlinuz.efi"
	--copy "$lx/initrd.img=initrd.img" --copy "$inputs/cmdline.txt=cmdline.txt")
case $how in
tessel) args+=(--cfg-text "$(printf 'next=\\acpi-loader.efi\n%s' "${CFG:-}")") ;;
native) args+=(--boot "$lx/acpi-loader.efi") ;;
*) echo "$0: tessel or native, not $how" >&2; exit 2 ;;
esac
exec tests/harness/bochs.sh "$name" "${args[@]}" "$@"
