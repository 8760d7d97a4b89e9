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
 * post-checks (tests/guest/lib/hostile.h). An idle AP in Bochs 2.7 parks before the BSP's
 * next ICR exit, so part 4 repeats the sequence while the AP sits in a long hypercall (its
 * kick NMI lands in root mode): there both SIPIs arrive before it parks, as they do on
 * hardware with a busy or nested target.
 */
#include "arch.h"
#include "guest.h"
#include "hostile.h"
#include "spp_util.h"
#include <tessel.h>

#define SIPI_POINTS 9
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

/* 16-bit code that counts its start, then calls HC_SPP_SET on 512 pages ([0x804] = first
 * gfn of a 2 MiB block) in a loop, alternating between the maps at [0x808] and [0x80c]
 * (protect, unprotect: each call splits or merges the block's EPT, ~100k instructions), and
 * counting the calls at [0x810]: an AP that spends nearly all its time in root mode, inside
 * a long hypercall. The last status is at [0x814]. */
static const uint8_t tramp_busy[] = {
	0x8c, 0xc8,                               /* mov ax, cs */
	0x8e, 0xd8,                               /* mov ds, ax */
	0xf0, 0xff, 0x06, 0x00, 0x08,             /* lock inc word [0x800] */
	0x66, 0xb8, 0x10, 0x00, 0x00, 0x00,       /* .loop: mov eax, HC_SPP_SET */
	0x66, 0x8b, 0x1e, 0x04, 0x08,             /* mov ebx, [0x804] */
	0x66, 0xb9, 0x00, 0x02, 0x00, 0x00,       /* mov ecx, 512 */
	0x66, 0x8b, 0x16, 0x08, 0x08,             /* mov edx, [0x808] */
	0x66, 0x87, 0x16, 0x0c, 0x08,             /* xchg edx, [0x80c] */
	0x66, 0x89, 0x16, 0x08, 0x08,             /* mov [0x808], edx */
	0x66, 0x31, 0xf6,                         /* xor esi, esi */
	0xf0, 0x66, 0xff, 0x06, 0x10, 0x08,       /* lock inc dword [0x810] */
	0x0f, 0x01, 0xc1,                         /* vmcall */
	0x66, 0xa3, 0x14, 0x08,                   /* mov [0x814], eax: the status */
	0xeb, 0xce,                               /* jmp .loop */
};

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
				  : uefi_call_wrapper(BS->AllocatePages, 4, AllocateMaxAddress, EfiBootServicesData, 4, &b);
	int ok = !EFI_ERROR(st) && b + 0x4000 <= 0xa0000;
	sok(ok, "an AP (%u) and four trampoline pages below 1 MiB (%llx, status %llx)", ap, (unsigned long long)b,
	    (unsigned long long)st);
	if (!ok) {
		for (int i = 1; i < SIPI_POINTS; i++)
			sok(0, "skipped: no AP or no pages");
		return;
	}
	uint64_t pa = b, pb = b + 0x1000, pt = b + 0x2000, pmap = b + 0x3000;
	mem_set((void *)(uintptr_t)pa, 0, 0x4000);
	mem_copy((void *)(uintptr_t)pt, tramp_busy, sizeof(tramp_busy));
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

	/* 4. The same back-to-back INIT-SIPI-SIPI while the AP is inside a long hypercall: its
	 * kick NMI lands in root mode, so it parks only when the hypercall returns, usually after
	 * both SIPIs were sent. The first must have been latched (hv/vapic.c); a hypervisor that
	 * drops SIPIs arriving before the target parked leaves the AP stopped. Three rounds. */
	EFI_PHYSICAL_ADDRESS blk = 0xffffffff;
	st = uefi_call_wrapper(BS->AllocatePages, 4, AllocateMaxAddress, EfiBootServicesData, 1024, &blk);
	uint64_t gfn = ((blk + 0x1fffff) & ~0x1fffffull) >> 12;
	uint32_t *maps = (uint32_t *)(uintptr_t)pmap;
	for (unsigned i = 0; i < 512; i++) {
		maps[i] = 0x7fffffff;        /* protect sub-page 31 */
		maps[512 + i] = 0xffffffff; /* unprotect */
	}
	*(volatile uint32_t *)(uintptr_t)(pt + 0x804) = (uint32_t)gfn;
	*(volatile uint32_t *)(uintptr_t)(pt + 0x808) = (uint32_t)pmap;
	*(volatile uint32_t *)(uintptr_t)(pt + 0x80c) = (uint32_t)pmap + 2048;
	volatile uint32_t *calls = (volatile uint32_t *)(uintptr_t)(pt + 0x810);
	int busy_ok = !EFI_ERROR(st), starts_ok = busy_ok, second_ok = busy_ok;
	for (unsigned round = 0; round < 3 && busy_ok; round++) {
		*counter(pt) = 0;
		*calls = 0;
		*(volatile int32_t *)(uintptr_t)(pt + 0x814) = -1;
		icr_send(id, ICR_INIT_ASSERT);
		uefi_call_wrapper(BS->Stall, 1, 10000);
		icr_send(id, ICR_SIPI | (uint32_t)(pt >> 12));
		for (unsigned i = 0; i < 3000 && *calls < 3; i++)
			uefi_call_wrapper(BS->Stall, 1, 1000);
		int32_t hc_status = *(volatile int32_t *)(uintptr_t)(pt + 0x814);
		busy_ok = *counter(pt) == 1 && *calls >= 3 && hc_status == 0;
		if (!busy_ok) {
			tap_diag("round %u: the busy AP did not loop (%u starts, %u calls, status %d)", round,
				 *counter(pt), *calls, hc_status);
			break;
		}
		*counter(pa) = 0;
		*counter(pb) = 0;
		uint32_t c0 = *calls;
		icr_send(id, ICR_INIT_ASSERT);
		icr_send(id, ICR_SIPI | (uint32_t)(pa >> 12));
		icr_send(id, ICR_SIPI | (uint32_t)(pb >> 12));
		uint32_t c1 = *calls;
		na = wait_count(pa, 1, 3000);
		uefi_call_wrapper(BS->Stall, 1, 100000);
		na = *counter(pa);
		nb = *counter(pb);
		tap_diag("round %u: %u starts at A, %u at B; hypercalls begun while the BSP sent INIT-SIPI-SIPI: %u",
			 round, na, nb, c1 - c0);
		starts_ok &= na == 1;
		second_ok &= nb == 0;
	}
	sok(busy_ok, "the AP loops in HC_SPP_SET(512 pages) from real mode, three times");
	sok(busy_ok && starts_ok, "INIT-SIPI-SIPI during a hypercall: the AP started at the first SIPI's vector once, each time");
	sok(busy_ok && second_ok, "and the second SIPI was ignored each time");
	mp_ran = 0;
	s = mp_run_on(ap, mp_probe, NULL, 5000000);
	sok(!EFI_ERROR(s) && mp_ran, "MP services run a procedure on the AP again (status %llx, ran %d)",
	    (unsigned long long)s, mp_ran);
	if (!EFI_ERROR(st)) {
		tessel_spp_set(gfn, 512, (uint64_t)(uintptr_t)(maps + 512), 0);
		uefi_call_wrapper(BS->FreePages, 2, blk, 1024);
	}
	uefi_call_wrapper(BS->FreePages, 2, b, 4);
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
