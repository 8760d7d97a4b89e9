#!/usr/bin/env bash
# bochs.sh NAME [options]: boots a fresh ESP in Bochs 2.7 + OVMF (the VMX/EPT/SPP machine)
# and collects COM1 in build/run/NAME/serial.log. Options: see runlib.sh. Bochs specifics
# (EMULATORS.md): vvfat ESP, sdl2 display with SDL_VIDEODRIVER=dummy, the built-in debugger
# told to continue ("c") from a command file, `clock: sync=none` so emulated time and RDTSC
# follow the instruction count. Example:
#   tests/harness/bochs.sh foundation --cfg-text 'next=\tests\foundation.efi' --until '^1\.\.'
set -euo pipefail
. "$(dirname "$0")/runlib.sh"
run_parse "$@"
run_mkesp
cat > "$RUN/bochsrc" <<BXRC
plugin_ctrl: serial=true, unmapped=true, biosdev=true, extfpuirq=true, parallel=false, speaker=false, e1000=false, es1370=false, sb16=false, usb_uhci=false, usb_ohci=false, usb_ehci=false, usb_xhci=false, voodoo=false, busmouse=false
config_interface: textconfig
display_library: sdl2
memory: guest=$MEM, host=$MEM
romimage: file="/usr/share/ovmf/OVMF.fd", address=0xffe00000, options=none
vgaromimage: file="/usr/share/bochs/VGABIOS-lgpl-latest"
boot: disk
ata0: enabled=true, ioaddr1=0x1f0, ioaddr2=0x3f0, irq=14
$(if [ -n "$DISK" ]; then echo 'ata0-master: type=disk, path="disk.img", mode=flat, cylinders=130, heads=16, spt=63'; else echo 'ata0-master: type=disk, path="esp", mode=vvfat'; fi)
pci: enabled=1, chipset=i440fx
vga: extension=vbe, update_freq=5, realtime=0
cpu: count=$CPUS, quantum=32, ips=50000000, model=$MODEL, reset_on_triple_fault=0, ignore_bad_msrs=1${MSRS:+, msrs="$MSRS"}
clock: sync=none, time0=local, rtc_sync=0
log: bochs.log
debug: action=ignore
info: action=report
error: action=report
panic: action=fatal
$(if [ -n "$SERIAL_PORT" ]; then echo "com1: enabled=true, mode=socket-server, dev=\"127.0.0.1:$SERIAL_PORT\""; else echo 'com1: enabled=true, mode=file, dev="serial.log"'; fi)
port_e9_hack: enabled=1
BXRC
printf 'c\nquit\n' > "$RUN/dbgcmds"
cd "$RUN"
SDL_VIDEODRIVER=dummy bochs -q -rc dbgcmds -f bochsrc </dev/null >bochs.out 2>&1 &
run_watch $!
