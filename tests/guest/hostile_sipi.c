/*
 * hostile_sipi.c: INIT-SIPI-SIPI with the shortest delays (issue 10, INIT/SIPI).
 *
 * The BSP sends the AP INIT, SIPI (vector A), SIPI (vector B) back to back through its own
 * ICR (x2APIC MSR 0x830 or the xAPIC page, whichever mode the firmware left), without the
 * 10 ms / 200 us waits of the MP specification. The hypervisor delivers them (hv/vapic.c):
 * the AP parks when its kick NMI arrives, which may be after both SIPIs were sent; a SIPI
 * sent after the INIT must be latched, and only the first one counts (SDM Vol. 3A 8.4.4.1,
 * 10.6.1). Each vector's page holds a few bytes of real-mode code that count its starts and
 * halt. Then a SIPI without an INIT must start nothing, and the firmware's MP services must
 * get the AP back (they wake it with INIT-SIPI-SIPI of their own). Ends with the common
 * post-checks (tests/guest/lib/hostile.h). Bochs 2.7 usually lets the AP park before the
 * BSP's next ICR exit, so the latching race itself is reproduced by the unit test
 * (tests/unit/test_vapic.c), not here.
 */
#include "arch.h"
#include "guest.h"
#include "hostile.h"
#include "spp_util.h"
#include <tessel.h>

#define SIPI_POINTS 5
#define POINTS (SIPI_POINTS + HOSTILE_POSTCHECK_POINTS)

#define MSR_APIC_BASE 0x1bu
#define APIC_EXTD (1ull << 10)
#define X2APIC_ICR 0x830u
#define XAPIC_ICR_LO 0x300u
#define XAPIC_ICR_HI 0x310u
#define ICR_INIT_ASSERT 0x4500u /* INIT, level assert, edge, physical */
#define ICR_SIPI 0x4600u
#define COUNT_OFF 0x800u

/* 16-bit code at CS = page >> 4, IP = 0: count this start at [COUNT_OFF], then halt. */
static const uint8_t tramp[] = {
	0x8c, 0xc8,                   /* mov ax, cs */
	0x8e, 0xd8,                   /* mov ds, ax */
	0xf0, 0xff, 0x06, 0x00, 0x08, /* lock inc word [0x800] */
	0xfa,                         /* cli */
	0xf4,                         /* hlt */
	0xeb, 0xfd,                   /* jmp back to the hlt */
};

static void icr_send(uint32_t apic_id, uint32_t lo)
{
	uint64_t base = rdmsr(MSR_APIC_BASE);
	if (base & APIC_EXTD) {
		wrmsr(X2APIC_ICR, ((uint64_t)apic_id << 32) | lo);
		return;
	}
	volatile uint32_t *mmio = (volatile uint32_t *)(uintptr_t)(base & ~0xfffull & 0xffffffffffull);
	mmio[XAPIC_ICR_HI / 4] = apic_id << 24;
	mmio[XAPIC_ICR_LO / 4] = lo;
}

static volatile uint16_t *counter(uint64_t page)
{
	return (volatile uint16_t *)(uintptr_t)(page + COUNT_OFF);
}

/* Waits up to ms milliseconds for the count at page to reach want. */
static uint16_t wait_count(uint64_t page, uint16_t want, unsigned ms)
{
	for (unsigned i = 0; i < ms && *counter(page) < want; i++)
		uefi_call_wrapper(BS->Stall, 1, 1000);
	return *counter(page);
}

static volatile int mp_ran;
static void mp_probe(void *arg)
{
	(void)arg;
	mp_ran = 1;
}

static void sipi_tests(void)
{
	unsigned ap = ~0u;
	for (unsigned i = 0; i < mp_count(); i++)
		if (i != mp_bsp()) {
			ap = i;
			break;
		}
	EFI_PHYSICAL_ADDRESS b = 0x9ffff;
	EFI_STATUS st = ap == ~0u ? EFI_NOT_FOUND
				  : uefi_call_wrapper(BS->AllocatePages, 4, AllocateMaxAddress, EfiBootServicesData, 2, &b);
	int ok = !EFI_ERROR(st) && b + 0x2000 <= 0xa0000;
	sok(ok, "an AP (%u) and two trampoline pages below 1 MiB (%llx, status %llx)", ap, (unsigned long long)b,
	    (unsigned long long)st);
	if (!ok) {
		for (int i = 1; i < SIPI_POINTS; i++)
			sok(0, "skipped: no AP or no pages");
		return;
	}
	uint64_t pa = b, pb = b + 0x1000;
	mem_set((void *)(uintptr_t)pa, 0, 0x2000);
	mem_copy((void *)(uintptr_t)pa, tramp, sizeof(tramp));
	mem_copy((void *)(uintptr_t)pb, tramp, sizeof(tramp));
	__asm__ __volatile__("wbinvd" ::: "memory");
	uint32_t id = mp_apic_id(ap);
	tap_diag("AP %u, APIC ID %u, %s mode, vectors %llx and %llx", ap, id,
		 (rdmsr(MSR_APIC_BASE) & APIC_EXTD) ? "x2APIC" : "xAPIC", (unsigned long long)(pa >> 12),
		 (unsigned long long)(pb >> 12));

	/* 1. INIT, SIPI A, SIPI B: nothing in between. */
	icr_send(id, ICR_INIT_ASSERT);
	icr_send(id, ICR_SIPI | (uint32_t)(pa >> 12));
	icr_send(id, ICR_SIPI | (uint32_t)(pb >> 12));
	uint16_t na = wait_count(pa, 1, 3000);
	uefi_call_wrapper(BS->Stall, 1, 100000); /* time for a wrong second start */
	na = *counter(pa);
	uint16_t nb = *counter(pb);
	sok(na == 1, "INIT-SIPI-SIPI back to back: the AP started at the first SIPI's vector once (%u starts)", na);
	sok(nb == 0, "the second SIPI was ignored (%u starts at its vector)", nb);

	/* 2. A SIPI with no INIT before it: the AP (halted in the guest) does not start. */
	icr_send(id, ICR_SIPI | (uint32_t)(pb >> 12));
	nb = wait_count(pb, 1, 300);
	sok(nb == 0 && *counter(pa) == 1, "a SIPI without an INIT starts nothing (%u, %u starts)", *counter(pa), nb);

	/* 3. The firmware's MP services get the AP back (their own INIT-SIPI-SIPI). */
	mp_ran = 0;
	EFI_STATUS s = mp_run_on(ap, mp_probe, NULL, 5000000);
	sok(!EFI_ERROR(s) && mp_ran, "MP services run a procedure on the AP again (status %llx, ran %d)",
	    (unsigned long long)s, mp_ran);
	uefi_call_wrapper(BS->FreePages, 2, b, 2);
}

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *st)
{
	spp_start(image, st, POINTS);
	struct hostile_guard g;
	hostile_guard_setup(&g);
	suite_begin("hostile-sipi", SIPI_POINTS);
	sipi_tests();
	suite_end();
	hostile_postcheck(&g, "INIT-SIPI-SIPI back to back, a stray SIPI");
	guest_finish();
}
