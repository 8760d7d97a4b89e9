/*
 * I/O instruction exits (reason 30): the reset ports, the ACPI PM1 sleep registers
 * (hv/pm1.c: a sleep request the hypervisor would not survive, S3, is refused) and, when
 * the chipset's ACPI base register is known, PCI configuration mechanism #1 (hv/pmbase.c:
 * that register keeps its value). Only these
 * ports are in the I/O bitmap (vmx_io_bitmap_init); every other port goes to the hardware
 * without an exit.
 *
 * A guest resets the machine through the chipset's reset control register 0xCF9, the fast
 * reset bit 0 of port 0x92 or the keyboard controller's pulse-reset command 0xFE at port 0x64.
 * On a PC chipset the soft ones - 0xCF9 with RST_CPU (bit 2) set and SYS_RST (bit 1) and
 * FULL_RST (bit 3) clear, port 0x92 bit 0, the keyboard controller's reset - assert INIT# to
 * every processor (Intel PCH datasheets, "Reset Control Register", "RCIN#", "INIT#"): the
 * BSP restarts at the reset vector, the APs wait for a SIPI. Tessel does exactly that with
 * virtual INITs (hv/vapic.c), so the firmware runs again on the BSP with the hypervisor
 * still underneath it, not bypassed; letting the write through would reach the hardware
 * (a real INIT# does come back to the hypervisor as INIT VM exits, but Bochs 2.7 wedges every
 * CPU that takes one, see vapic.h). A hard or full reset (0xCF9 with SYS_RST or FULL_RST,
 * e.g. 0x06, 0x0E) resets the platform: the hypervisor does it itself (drivers/platform.c),
 * logged, as for a triple fault. Everything else written to or read from these ports -
 * A20 in port 0x92, keyboard controller commands and status, the 32-bit PCI configuration
 * address at 0xCF8 that overlaps 0xCF9 - is passed to the hardware unchanged.
 *
 * Not covered: string I/O (OUTS/INS) to these ports is dropped (logged), and the keyboard
 * controller's other reset path (command 0xD1 then an output-port value with bit 0 clear)
 * is passed through.
 */
#include <hw.h>
#include <arch/vmx.h>
#include "drivers/platform.h"
#include "exit.h"
#include "log.h"
#include "pm1.h"
#include "pmbase.h"
#include "vapic.h"
#include "vcpu.h"
#include "vmcs.h"

#define PORT_KBC_CMD  0x64
#define PORT_SYSCTL_A 0x92
#define PORT_RST_CNT  0xcf9
#define RST_CNT_SYS   (1U << 1)
#define RST_CNT_CPU   (1U << 2)
#define RST_CNT_FULL  (1U << 3)
#define KBC_PULSE_RESET 0xfe

/* Exit qualification for I/O instructions (SDM Vol. 3C Table 27-5, as numbered elsewhere in this tree). */
#define IOQ_SIZE(q)  ((unsigned)((q) & 7) + 1)
#define IOQ_IN       (1U << 3)
#define IOQ_STRING   (1U << 4)
#define IOQ_PORT(q)  ((u16)((q) >> 16))

static void set_bit(u8 *a, u16 port)
{
	a[port / 8] |= (u8)(1U << (port % 8));
}

/* Bitmap A covers ports 0-7FFF, B 8000-FFFF (SDM Vol. 3C 24.6.4); the reset ports are in A. */
void vmx_io_bitmap_init(u8 *a, u8 *b)
{
	for (unsigned i = 0; i < 4096; i++)
		a[i] = b[i] = 0;
	set_bit(a, PORT_KBC_CMD);
	set_bit(a, PORT_SYSCTL_A);
	set_bit(a, PORT_RST_CNT);
	pm1_io_bitmap(a, b);
	pmbase_io_bitmap(a);
}

/* Which reset a one-byte OUT asks for: 0 none, 1 soft (INIT# to every CPU), 2 platform. */
static int reset_kind(u16 port, u8 v)
{
	if (port == PORT_RST_CNT && (v & RST_CNT_CPU))
		return (v & (RST_CNT_SYS | RST_CNT_FULL)) ? 2 : 1;
	if (port == PORT_SYSCTL_A && (v & 1) && !(inb(PORT_SYSCTL_A) & 1))
		return 1; /* fast reset on the 0 -> 1 edge of bit 0 */
	if (port == PORT_KBC_CMD && v == KBC_PULSE_RESET)
		return 1;
	return 0;
}

void exit_io(struct percpu *c)
{
	u64 q = vmcs_readl(VMCS_RO_EXIT_QUALIFICATION);
	u16 port = IOQ_PORT(q);
	unsigned size = IOQ_SIZE(q);
	if (q & IOQ_STRING) {
		log_warn_rl("string I/O at port %x (reset, PM1 or PCI configuration ports): dropped", port);
		vcpu_skip_insn(c);
		return;
	}
	u64 *rax = &c->regs->gpr[GPR_AX];
	if (q & IOQ_IN) {
		u32 v = pm1_in(port, size, port_in(port, size));
		if (size == 4)
			*rax = v; /* a 32-bit destination zero-extends (SDM Vol. 1 3.4.1.1) */
		else if (size == 2)
			*rax = (*rax & ~0xffffULL) | v;
		else
			*rax = (*rax & ~0xffULL) | v;
		vcpu_skip_insn(c);
		return;
	}
	u32 v = (u32)*rax;
	if (pm1_out(port, size, v)) {
		vcpu_skip_insn(c); /* refused: nothing reaches the chipset */
		return;
	}
	if (pmbase_out(port, size, v)) {
		vcpu_skip_insn(c); /* PCI configuration: done, the ACPI PM base kept (hv/pmbase.c) */
		return;
	}
	int kind = size == 1 ? reset_kind(port, (u8)v) : 0;
	vcpu_skip_insn(c);
	if (kind == 2) {
		log_info("guest wrote %x to port %x: platform reset, done by the hypervisor", v & 0xff, port);
		platform_reset();
	}
	if (kind == 1) {
		log_info("guest wrote %x to port %x: soft reset, INIT to every vCPU (the BSP restarts at the reset vector)",
			 v & 0xff, port);
		if (port == PORT_SYSCTL_A)
			outb(port, (u8)(v & ~1U)); /* the other bits (A20) still take effect */
		vapic_init_all(c);
		return;
	}
	port_out(port, size, v);
}
