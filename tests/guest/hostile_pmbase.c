/*
 * hostile_pmbase.c: a guest kernel owns the chipset's PCI configuration space and tries to
 * get around the hypervisor's S3 refusal (hv/pm1.c intercepts the PM1 registers at the ports
 * the loader found) by moving the ACPI PM I/O block elsewhere: it rewrites the PIIX4 power
 * management function's base register (PCI 00:01.3, PMBA at 0x40, PMIOSE bit 0 of 0x80)
 * through configuration mechanism #1 (address at 0xCF8, data at 0xCFC-0xCFF), then writes
 * SLP_TYP = S3 with SLP_EN to PM1a_CNT at the new, unintercepted port.
 *
 * Bochs 2.7's PIIX4 (iodev/acpi.cc) moves its PM handlers whenever PMBA changes, and on
 * SUS_TYP 1 with SUS_EN resets the whole machine ("ACPI control: suspend to ram"): without
 * the guard nothing after that write runs. Tessel keeps the function's PM base and its enable
 * bit (hv/pmbase.c, docs/ABI.md section 8): the writes leave them as they were (every other
 * bit written goes through), the moved port stays unclaimed, and the S3 request at the old
 * port is still refused. Then the common hostile post-checks.
 */
#include "guest.h"
#include "arch.h"
#include "hostile.h"

#define N_TESTS (14 + HOSTILE_POSTCHECK_POINTS)

#define SLP_EN     (1u << 13)
#define SLP_TYP_S3 (1u << 10) /* PIIX4 SUS_TYP 1: suspend to RAM */
#define WAK_STS    (1u << 15)
#define NEW_BASE   0x9000u    /* 64-byte aligned; nothing in Bochs' PC decodes it */

static inline void out16(uint16_t port, uint16_t v) { __asm__ __volatile__("outw %0, %1" : : "a"(v), "Nd"(port)); }
static inline void out32(uint16_t port, uint32_t v) { __asm__ __volatile__("outl %0, %1" : : "a"(v), "Nd"(port)); }
static inline uint16_t in16(uint16_t port)
{
	uint16_t v;
	__asm__ __volatile__("inw %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}
static inline uint32_t in32(uint16_t port)
{
	uint32_t v;
	__asm__ __volatile__("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

#define PM_FN(reg) (0x80000000u | (1u << 11) | (3u << 8) | ((reg) & 0xfc)) /* 00:01.3 */

static uint32_t cfg_read32(unsigned reg)
{
	out32(0xcf8, PM_FN(reg));
	return in32(0xcfc);
}

/* Puts PMBA back (a no-op when the write was refused). */
static void restore(uint32_t pmba)
{
	out32(0xcf8, PM_FN(0x40));
	out32(0xcfc, pmba);
}

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *st)
{
	guest_init(image, st);
	tap_plan(N_TESTS);
	tap_ok(tessel_present(), "the hypervisor is present");
	uint32_t id = cfg_read32(0);
	uint32_t pmba = cfg_read32(0x40);
	uint32_t misc = cfg_read32(0x80);
	uint16_t base = (uint16_t)(pmba & 0xffc0);
	if (!tap_ok(id == 0x71138086 && base && (misc & 1) && base != NEW_BASE,
		    "PIIX4 power management at 00:01.3 (id %08x, PMBA %08x, PMREGMISC %08x)", id, pmba, misc))
		tap_bail("no PIIX4 ACPI I/O block");
	tap_ok(in16(NEW_BASE + 4) == 0xffff, "port %x (the would-be PM1a_CNT) is unclaimed before the attack",
	       NEW_BASE + 4);

	struct hostile_guard g;
	hostile_guard_setup(&g);

	/* Other registers of the same function still take writes: the interrupt line (0x3C). */
	uint32_t intr = cfg_read32(0x3c);
	out32(0xcf8, PM_FN(0x3c));
	outb(0xcfc, (uint8_t)(intr ^ 0x05));
	uint32_t intr2 = cfg_read32(0x3c);
	out32(0xcf8, PM_FN(0x3c));
	outb(0xcfc, (uint8_t)intr);
	tap_ok((intr2 & 0xff) == ((intr ^ 0x05) & 0xff) && cfg_read32(0x3c) == intr,
	       "a byte write to the function's interrupt line goes through (%08x -> %08x, restored)", intr, intr2);

	/* Each access width the data port takes; after each, PMBA is written back as it was. */
	serial_printf("# moving PMBA from %x to %x through CF8/CFC\n", base, NEW_BASE);
	serial_flush();
	out32(0xcf8, PM_FN(0x40));
	out32(0xcfc, NEW_BASE | 1);
	uint32_t r = cfg_read32(0x40);
	tap_ok(r == pmba, "a 32-bit write of PMBA = %x is refused: PMBA reads %08x (was %08x)", NEW_BASE | 1, r, pmba);
	restore(pmba);
	out32(0xcf8, PM_FN(0x40));
	out16(0xcfc, NEW_BASE | 1);
	r = cfg_read32(0x40);
	tap_ok(r == pmba, "a 16-bit write to PMBA is refused: PMBA reads %08x", r);
	restore(pmba);
	out32(0xcf8, PM_FN(0x40));
	outb(0xcfd, NEW_BASE >> 8);
	r = cfg_read32(0x40);
	tap_ok(r == pmba, "an 8-bit write to PMBA's high byte (port CFD) is refused: PMBA reads %08x", r);
	restore(pmba);
	/* The address latched last counts: aim at another register first, then at PMBA. */
	out32(0xcf8, PM_FN(0x3c));
	out32(0xcf8, PM_FN(0x40));
	outb(0xcfc, 0xc1);
	r = cfg_read32(0x40);
	tap_ok(r == pmba, "an 8-bit write to PMBA's low byte is refused: PMBA reads %08x", r);
	restore(pmba);

	/* PMIOSE (0x80 bit 0) is kept; the other bytes of that dword go through (0x81 in Bochs). */
	out32(0xcf8, PM_FN(0x80));
	out32(0xcfc, (misc & ~0xff01u) | 0x5a00u);
	r = cfg_read32(0x80);
	tap_ok((r & 1) && (r & 0xff00) == 0x5a00, "a 32-bit write clearing PMIOSE keeps it set, the byte beside it "
	       "takes the write (PMREGMISC reads %08x)", r);
	out32(0xcf8, PM_FN(0x80));
	out32(0xcfc, misc);
	tap_ok(cfg_read32(0x80) == misc, "PMREGMISC restored (%08x)", cfg_read32(0x80));

	/* The attack as a kernel would do it: move, enable, sleep at the new port. */
	out32(0xcf8, PM_FN(0x40));
	out32(0xcfc, NEW_BASE | 1);
	out32(0xcf8, PM_FN(0x80));
	out32(0xcfc, misc | 1);
	tap_ok(in16(NEW_BASE + 4) == 0xffff, "after PMBA = %x and PMIOSE = 1, port %x is still unclaimed: the PM "
	       "block did not move (PMBA %08x)", NEW_BASE | 1, NEW_BASE + 4, cfg_read32(0x40));
	serial_printf("# writing SLP_TYP = S3 with SLP_EN to port %x (the moved PM1a_CNT) now\n", NEW_BASE + 4);
	serial_flush();
	out16(NEW_BASE + 4, SLP_TYP_S3 | SLP_EN);
	tap_ok(1, "the instruction after the S3 request at the moved port runs (the machine did not sleep or reset)");

	/* The block at its old place is still the one intercepted. */
	uint16_t cnt = in16((uint16_t)(base + 4)) & ~(SLP_EN | (7u << 10));
	out16((uint16_t)(base + 4), cnt | SLP_TYP_S3 | SLP_EN);
	uint16_t sts = in16(base);
	tap_ok(sts != 0xffff && (sts & WAK_STS), "an S3 request at the PM block's own port %x is still refused "
	       "(PM1a_STS %04x)", base + 4, sts);
	out16(base, WAK_STS);
	out16((uint16_t)(base + 4), cnt);
	restore(pmba);
	tap_ok(cfg_read32(0x40) == pmba && (cfg_read32(0x80) & 1), "PMBA %08x and PMIOSE unchanged at the end",
	       cfg_read32(0x40));

	hostile_postcheck(&g, "PM base moves");
	guest_finish();
}
