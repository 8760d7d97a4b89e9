/*
 * Platform reset: the PCI reset control register 0xCF9 (full reset), then the 8042
 * keyboard controller's pulse-reset command, then halt. Both are present on the i440FX/
 * PIIX and Q35 chipsets Bochs and QEMU emulate, and on PC hardware.
 */
#include <hw.h>
#include "platform.h"

__noreturn void platform_reset(void)
{
	outb(0xcf9, 0x02);
	outb(0xcf9, 0x06);
	for (int i = 0; i < 100000; i++)
		if (!(inb(0x64) & 0x02))
			break;
	outb(0x64, 0xfe);
	for (;;) {
		irq_disable();
		cpu_halt();
	}
}
