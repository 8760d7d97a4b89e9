/*
 * Triple fault: the hypervisor must log it and reset the platform (ABI.md section 6).
 * First boot: mark CMOS byte 0x7e, then fault with no usable IDT (interrupts off, IDT
 * limit 0, INT3 -> #GP -> #DF -> shutdown). Second boot (after the reset): the mark is
 * there, so the platform was reset and the firmware, hypervisor and this program came up
 * again; report TAP, clear the mark, power off. CMOS RAM survives a platform reset.
 */
#include "arch.h"
#include "guest.h"
#include <tessel.h>

#define CMOS_MARK_INDEX 0x7e
#define CMOS_MARK 0xa5

static uint8_t cmos_read(uint8_t idx)
{
	outb(0x70, idx);
	return inb(0x71);
}

static void cmos_write(uint8_t idx, uint8_t v)
{
	outb(0x70, idx);
	outb(0x71, v);
}

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *st)
{
	guest_init(image, st);
	if (cmos_read(CMOS_MARK_INDEX) == CMOS_MARK) {
		cmos_write(CMOS_MARK_INDEX, 0);
		tap_plan(2);
		tap_ok(1, "the platform was reset after the triple fault (second boot)");
		tap_ok(tessel_present(), "the hypervisor runs again after the reset");
		guest_finish();
	}
	cmos_write(CMOS_MARK_INDEX, CMOS_MARK);
	serial_printf("# triplefault: first boot, triple-faulting now\n");
	static const struct x86_dtr null_idt = { 0, 0 };
	cpu_cli();
	lidt(&null_idt);
	__asm__ __volatile__("int3");
	serial_printf("# triplefault: still running after the fault?\n");
	cmos_write(CMOS_MARK_INDEX, 0);
	tap_plan(1);
	tap_ok(0, "the triple fault did not stop the guest");
	guest_finish();
}
