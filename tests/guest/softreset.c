/*
 * Soft reset through the chipset's reset control register (port 0xCF9, RST_CPU set, SYS_RST
 * clear: INIT# to every processor). Under Tessel the write must not reach the hardware and
 * must not hang: the hypervisor turns it into a virtual INIT of every vCPU, and the BSP
 * restarts at the reset vector under the hypervisor (hv/exit_io.c, docs/ABI.md section 7).
 * The instruction after the OUT must never run. OVMF's warm-reset path does not come back up
 * on Bochs 2.7, so the group ends at the hypervisor's log line of the BSP's first VM exit
 * after the INIT (where the firmware's reset path runs).
 */
#include "arch.h"
#include "guest.h"
#include <tessel.h>

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *st)
{
	guest_init(image, st);
	serial_printf("# softreset: hypervisor %s, writing 4 to port CF9 now\n", tessel_present() ? "present" : "absent");
	serial_flush();
	cpu_cli();
	outb(0xcf9, 0x04);
	serial_printf("softreset: still running after the reset request\n");
	power_off();
}
