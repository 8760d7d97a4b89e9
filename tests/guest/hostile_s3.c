/*
 * hostile_s3.c: a guest kernel asks the chipset for ACPI S3 (suspend to RAM) behind the
 * OS's back, by writing SLP_TYP = S3 with SLP_EN to the PM1a control register. Real S3
 * powers the processors off: they come back at the firmware's waking vector outside VMX
 * operation, with the hypervisor's region plain RAM. Tessel refuses the write (hv/pm1.c,
 * docs/ABI.md section 8): the write never reaches the chipset, the instruction after it
 * runs, and PM1a_STS reads WAK_STS set (as after a wake) until the guest clears it, so
 * ACPICA's wait for the wake ends and the OS resumes as after a wake.
 *
 * Bochs 2.7's PIIX4 model (iodev/acpi.cc) treats SLP_TYP 1 with SLP_EN as suspend to RAM:
 * it logs "ACPI control: suspend to ram" and resets the whole machine, so without the
 * hypervisor's refusal nothing after the write runs. The platform is found the way Tessel's
 * loader finds it without ACPI tables (OVMF on Bochs installs none): the PIIX4 power
 * management function at PCI 00:01.3, its I/O base in register 0x40.
 *
 * Each way a write can reach the SLP_EN byte is tried: a 16-bit write, an 8-bit write of
 * the high byte, a 32-bit write that starts two ports below PM1a_CNT (its upper half is the
 * control register). Then the common hostile post-checks; the power-off at the end (S5,
 * SLP_TYP 0) must still reach the chipset.
 */
#include "guest.h"
#include "arch.h"
#include "hostile.h"

#define N_TESTS (11 + HOSTILE_POSTCHECK_POINTS)

#define SLP_EN      (1u << 13)
#define SLP_TYP(t)  ((uint16_t)((t) << 10))
#define SLP_TYP_S3  1 /* PIIX4: "suspend to RAM" (Bochs' and QEMU's DSDT _S3 package) */
#define WAK_STS     (1u << 15)

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

static uint32_t pci_read32(unsigned dev, unsigned fn, unsigned reg)
{
	out32(0xcf8, 0x80000000u | (dev << 11) | (fn << 8) | (reg & 0xfc));
	return in32(0xcfc);
}

static uint16_t pm1_sts, pm1_cnt;

/* Clears WAK_STS (write 1 to clear) and says whether it then reads clear. */
static int wak_clear(void)
{
	out16(pm1_sts, WAK_STS);
	return !(in16(pm1_sts) & WAK_STS);
}

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *st)
{
	guest_init(image, st);
	tap_plan(N_TESTS);
	tap_ok(tessel_present(), "the hypervisor is present");
	uint32_t id = pci_read32(1, 3, 0);
	uint32_t pmba = pci_read32(1, 3, 0x40) & 0xffc0;
	uint32_t pmiose = pci_read32(1, 3, 0x80) & 1;
	if (!tap_ok(id == 0x71138086 && pmba && pmiose, "PIIX4 power management at 00:01.3 (id %08x, I/O base %x, "
		    "enabled %u)", id, pmba, pmiose))
		tap_bail("no PIIX4 ACPI I/O block");
	pm1_sts = (uint16_t)pmba;
	pm1_cnt = (uint16_t)(pmba + 4);

	struct hostile_guard g;
	hostile_guard_setup(&g);

	uint16_t cnt = in16(pm1_cnt);
	tap_ok(wak_clear(), "before any sleep request PM1a_STS reads WAK_STS clear once cleared (PM1a_CNT %04x)", cnt);
	uint16_t keep = cnt & ~(SLP_EN | SLP_TYP(7));

	/* ACPICA's first write: SLP_TYP alone, which sleeps nothing and must reach the chipset. */
	out16(pm1_cnt, keep | SLP_TYP(SLP_TYP_S3));
	uint16_t typ = in16(pm1_cnt);
	tap_ok((typ & SLP_TYP(7)) == SLP_TYP(SLP_TYP_S3), "SLP_TYP = S3 without SLP_EN is written through "
	       "(PM1a_CNT reads %04x)", typ);

	serial_printf("# writing SLP_TYP = S3 with SLP_EN to PM1a_CNT (port %x) now\n", pm1_cnt);
	serial_flush();
	out16(pm1_cnt, keep | SLP_TYP(SLP_TYP_S3) | SLP_EN);
	tap_ok(1, "the instruction after the 16-bit S3 request runs (the machine did not sleep or reset)");
	uint16_t after = in16(pm1_cnt);
	tap_ok(!(after & SLP_EN), "PM1a_CNT reads SLP_EN clear after the refused request (%04x)", after);
	uint16_t sts = in16(pm1_sts);
	tap_ok(sts & WAK_STS, "PM1a_STS reads WAK_STS set after the refused request (%04x): ACPICA's wait ends", sts);
	int cleared = wak_clear();
	tap_ok(cleared, "writing 1 to WAK_STS clears it (PM1a_STS %04x)", in16(pm1_sts));

	/* The SLP_EN byte alone (port PM1a_CNT + 1, bits 8-15 of the register). */
	outb((uint16_t)(pm1_cnt + 1), (uint8_t)((keep | SLP_TYP(SLP_TYP_S3) | SLP_EN) >> 8));
	sts = in16(pm1_sts);
	tap_ok(sts & WAK_STS, "an 8-bit S3 request to PM1a_CNT+1 is refused too (PM1a_STS %04x)", sts);
	tap_ok(wak_clear(), "WAK_STS cleared again");

	/* A 32-bit write two ports below: PM1_EN gets the low half, PM1a_CNT the high half. */
	uint16_t en = in16((uint16_t)(pmba + 2));
	out32((uint16_t)(pmba + 2), en | ((uint32_t)(keep | SLP_TYP(SLP_TYP_S3) | SLP_EN) << 16));
	sts = in16(pm1_sts);
	tap_ok(sts & WAK_STS, "a 32-bit write at PM1a_CNT-2 carrying an S3 request is refused (PM1a_STS %04x)", sts);
	wak_clear();
	out16(pm1_cnt, keep); /* SLP_TYP back to S0, as ACPICA's acpi_leave_sleep_state_prep */

	hostile_postcheck(&g, "S3 requests");
	guest_finish();
}
