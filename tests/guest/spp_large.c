/*
 * spp_large.c: protecting one page inside a 2 MiB-aligned block (which the hypervisor's EPT
 * may map with a large leaf): the neighbours in the same 2 MiB stay writable, the protected
 * sub-pages are enforced, HC_STATS pages_protected follows what the test protected and, with
 * hardware SPP, sppt_pages > 0. It also prints, in hardware mode, how spp_misses moved (the
 * sppt=lazy group checks that line: misses are counted only when the SPPT is built lazily).
 * Built alone as spp_large.efi, or included by spp_all.c.
 */
#include "spp_util.h"

#define SPP_LARGE_POINTS 6

static void suite_large(void)
{
	suite_begin("large", SPP_LARGE_POINTS);
	uint8_t *blk = spp_block2m();
	if (!blk) {
		suite_end();
		return;
	}
	uint8_t *m = blk + 256 * PAGE;
	uint8_t *nb[4] = { m - PAGE, m + PAGE, blk, blk + 511 * PAGE };
	static const unsigned nb_off[4] = { 4088, 0, 8, 4080 };
	pat_fill(m, PAGE, 0x61);
	struct stats a, b, c, d;
	stats_get(&a);
	int64_t s = set1(m, 0xffff0000u, 0); /* bytes 0..2047 protected */
	stats_get(&b);
	sok(s == 0 && sdelta(&a, &b, TESSEL_STAT_PAGES_PROTECTED) == 1,
	    "protecting page 256 of a 2 MiB block: status %lld, pages_protected +%lld", (long long)s,
	    (long long)sdelta(&a, &b, TESSEL_STAT_PAGES_PROTECTED));
	if (spp.hw)
		sok(b.v[TESSEL_STAT_SPPT_PAGES] > 0, "hardware SPP: sppt_pages > 0 (%llu)",
		    (unsigned long long)b.v[TESSEL_STAT_SPPT_PAGES]);
	else
		sskip("software mode has no SPPT", "sppt_pages > 0 (software mode: %llu)",
		      (unsigned long long)b.v[TESSEL_STAT_SPPT_PAGES]);
	/* protected write first (docs/SPP.md section 10, bug 1), then the writable half */
	uint64_t old = *(volatile uint64_t *)(m + 1000);
	probe_store(m + 1000, ~old, 8);
	probe_store(m + 3000, 0x0123456789abcdefull, 8);
	sok(*(volatile uint64_t *)(m + 1000) == old && *(volatile uint64_t *)(m + 3000) == 0x0123456789abcdefull,
	    "in the protected page: a write to a protected sub-page is denied, one to a writable sub-page lands");
	unsigned bad = 0;
	for (int i = 0; i < 4; i++) {
		uint64_t v = 0x5500000000000055ull | ((uint64_t)i << 16);
		probe_store(nb[i] + nb_off[i], v, 8);
		bad += *(volatile uint64_t *)(nb[i] + nb_off[i]) != v;
	}
	stats_get(&c);
	sok(bad == 0, "its neighbours in the same 2 MiB (pages 255, 257, 0, 511) stay writable (%u writes lost)", bad);
	tap_diag("neighbour writes: ept_violations +%llu, spp_denied +%llu, emulated_writes +%llu since protecting",
		 (unsigned long long)sdelta(&b, &c, TESSEL_STAT_EPT_VIOLATIONS),
		 (unsigned long long)sdelta(&b, &c, TESSEL_STAT_SPP_DENIED),
		 (unsigned long long)sdelta(&b, &c, TESSEL_STAT_EMULATED_WRITES));
	if (spp.hw) {
		tap_diag("hardware SPP: spp_misses +%llu while protecting and writing (sppt_pages %llu)",
			 (unsigned long long)sdelta(&a, &c, TESSEL_STAT_SPP_MISSES),
			 (unsigned long long)c.v[TESSEL_STAT_SPPT_PAGES]);
		sok(sdelta(&a, &c, TESSEL_STAT_SPP_MISCONFIGS) == 0,
		    "hardware SPP: no SPP misconfiguration without the test hook (+%llu)",
		    (unsigned long long)sdelta(&a, &c, TESSEL_STAT_SPP_MISCONFIGS));
	} else {
		tap_diag("software mode: spp_misses and spp_misconfigs exist only with hardware SPP (%llu, %llu)",
			 (unsigned long long)c.v[TESSEL_STAT_SPP_MISSES], (unsigned long long)c.v[TESSEL_STAT_SPP_MISCONFIGS]);
		sskip("software mode", "no SPP misconfiguration without the test hook");
	}
	s = set1(m, TESSEL_SPP_ALL_WRITABLE, 0);
	stats_get(&d);
	probe_store(m + 1000, 0x7777777777777777ull, 8);
	sok(s == 0 && sdelta(&a, &d, TESSEL_STAT_PAGES_PROTECTED) == 0 &&
		    *(volatile uint64_t *)(m + 1000) == 0x7777777777777777ull,
	    "after unprotecting: pages_protected back (delta %lld), the formerly protected bytes are writable",
	    (long long)sdelta(&a, &d, TESSEL_STAT_PAGES_PROTECTED));
	suite_end();
}

#ifndef SPP_ALL
EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *st)
{
	spp_start(image, st, SPP_LARGE_POINTS);
	suite_large();
	guest_finish();
}
#endif
