/*
 * spp_many.c: more protected pages than the permission store held before it could grow
 * (a fixed 65,536-page table allocated at boot): a guest that guards all of a large kernel's
 * page tables, or a VM-introspection user, needs more. The group boots with a larger heap=
 * and RAM. The program
 *   1. protects MANY pages (65,536 + 1,024) with 512-page SET calls, sub-page 0 of each page
 *      write-protected: every call must succeed (before the store grew: -ENOMEM once 65,536
 *      pages were protected);
 *   2. reads the map of the highest page back with GET and of a page from the first call;
 *   3. writes sub-page 0 of the highest page (denied: its bytes stay) and sub-page 1 (allowed:
 *      it lands);
 *   4. unprotects everything again (every call succeeds) and checks the write now lands.
 */
#include "spp_util.h"

#define MANY (65536u + 1024u)
#define POINTS 6

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *st)
{
	EFI_PHYSICAL_ADDRESS a = 0;
	static uint32_t maps[512];

	spp_start(image, st, POINTS);
	if (EFI_ERROR(uefi_call_wrapper(BS->AllocatePages, 4, AllocateAnyPages, EfiBootServicesData,
					(UINTN)MANY + 512, &a)))
		tap_bail("cannot allocate %u pages", MANY + 512);
	uint8_t *base = (uint8_t *)(uintptr_t)((a + 0x1fffffull) & ~0x1fffffull);
	tap_diag("%u pages from 0x%llx (%s)", MANY, (unsigned long long)gpa_of(base), spp_mode());

	unsigned bad = 0, done = 0;
	int64_t first_bad = 0;
	for (unsigned i = 0; i < 512; i++)
		maps[i] = 0xfffffffeu;
	for (unsigned p = 0; p < MANY; p += 512) {
		int64_t r = tessel_spp_set(gfn_of(base) + p, 512, gpa_of(maps), 0);
		if (r) {
			if (!bad++)
				first_bad = r, tap_diag("first failure at page %u: %lld", p, (long long)r);
		} else {
			done += 512;
		}
	}
	tap_ok(bad == 0 && done == MANY, "%u pages protected with %u SET calls (%u failed, first status %lld)", done,
	       MANY / 512, bad, (long long)first_bad);

	uint8_t *hi = base + (uint64_t)(MANY - 1) * PAGE;
	uint32_t m_hi = 0, m_lo = 0;
	int64_t g1 = get1(hi, &m_hi), g2 = get1(base + 5 * PAGE, &m_lo);
	tap_ok(g1 == 0 && m_hi == 0xfffffffeu, "GET of the highest page (%u): status %lld map 0x%x", MANY - 1,
	       (long long)g1, m_hi);
	tap_ok(g2 == 0 && m_lo == 0xfffffffeu, "GET of page 5: status %lld map 0x%x", (long long)g2, m_lo);

	uint8_t before = hi[0];
	probe_store(hi, (uint8_t)(before ^ 0x5a), 1);
	probe_store(hi + SUB, 0x77, 1);
	tap_ok(hi[0] == before && hi[SUB] == 0x77,
	       "highest page: a write to protected sub-page 0 is denied (0x%x, was 0x%x), one to sub-page 1 lands (0x%x)",
	       hi[0], before, hi[SUB]);

	bad = 0;
	for (unsigned i = 0; i < 512; i++)
		maps[i] = TESSEL_SPP_ALL_WRITABLE;
	for (unsigned p = 0; p < MANY; p += 512)
		bad += tessel_spp_set(gfn_of(base) + p, 512, gpa_of(maps), 0) != 0;
	tap_ok(bad == 0, "every page unprotected again (%u calls failed)", bad);
	probe_store(hi, 0x3c, 1);
	tap_ok(hi[0] == 0x3c && get1(hi, &m_hi) == 0 && m_hi == TESSEL_SPP_ALL_WRITABLE,
	       "the highest page is writable again (0x%x, map 0x%x)", hi[0], m_hi);
	guest_finish();
}
