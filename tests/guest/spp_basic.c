/*
 * spp_basic.c: sub-page protection basics (ABI.md 1, 3, 4): feature flags, HC_SPP_SET/GET
 * round trips on one page and on the maximum page count, 1/2/4/8-byte probe writes at the
 * start, middle and end of every sub-page under complementary masks, sub-page-straddling
 * writes (precise in software mode; processor-defined in hardware mode, ABI.md 4.2) and
 * HC_SPP_LOCK. Built alone as spp_basic.efi, or included by spp_all.c.
 *
 * Locked pages stay locked (and one stays protected) until the platform resets, as the ABI
 * says; the program powers off at the end.
 */
#include "spp_util.h"

#define SPP_BASIC_POINTS 93

static void basic_flags(void)
{
	uint32_t f = spp.cpuid_flags;
	int hw = !!(f & TESSEL_F_SPP_HW), sw = !!(f & TESSEL_F_SPP_SW);
	sok(hw + sw == 1, "exactly one of TESSEL_F_SPP_HW / _SW is reported (CPUID EBX 0x%x: %s)", f,
	    hw ? "hardware" : sw ? "software" : "none");
	sok(f == spp.flags, "CPUID 0x40000001 EBX = HC_QUERY RCX (0x%x, 0x%x)", f, spp.flags);
	uint32_t need = TESSEL_F_LOCK | TESSEL_F_EVENTS | TESSEL_F_TRACK;
	sok((f & need) == need, "TESSEL_F_LOCK, _EVENTS and _TRACK are set (flags 0x%x)", f);
	sok(spp.cpuid_max == spp.max_pages && spp.max_pages >= 512,
	    "max pages per call: CPUID ECX %u = HC_QUERY RDX %llu, >= 512", spp.cpuid_max,
	    (unsigned long long)spp.max_pages);
}

static void basic_roundtrip1(void)
{
	static const uint32_t masks[] = { 0, 0xffffffffu, 0x55555555u, 0xaaaaaaaau, 1u, 0x80000000u,
					  0xfffffffeu, ~(1u << 17), 0x12345678u };
	uint8_t *p = spp_pages(1);
	uint32_t got = 0;
	int64_t g = get1(p, &got);
	sok(g == 0 && got == 0xffffffffu, "GET of a never-protected page reads 0xFFFFFFFF (status %lld, map 0x%08x)",
	    (long long)g, got);
	for (unsigned i = 0; i < sizeof(masks) / sizeof(masks[0]); i++) {
		int64_t s = set1(p, masks[i], 0);
		g = get1(p, &got);
		sok(s == 0 && g == 0 && got == masks[i], "SET/GET round trip of map 0x%08x (SET %lld, GET %lld -> 0x%08x)",
		    masks[i], (long long)s, (long long)g, got);
	}
	struct stats a, b, c;
	unprot(p, 1);
	stats_get(&a);
	int64_t s1 = set1(p, 0x55555555u, 0);
	stats_get(&b);
	int64_t s2 = set1(p, TESSEL_SPP_ALL_WRITABLE, 0);
	stats_get(&c);
	sok(s1 == 0 && s2 == 0 && sdelta(&a, &b, TESSEL_STAT_PAGES_PROTECTED) == 1 &&
		    sdelta(&a, &c, TESSEL_STAT_PAGES_PROTECTED) == 0,
	    "pages_protected +1 after protecting a page, back after 0xFFFFFFFF (deltas %lld, %lld)",
	    (long long)sdelta(&a, &b, TESSEL_STAT_PAGES_PROTECTED), (long long)sdelta(&a, &c, TESSEL_STAT_PAGES_PROTECTED));
	unprot(p, 1);
	spp_free(p, 1);
}

static uint32_t basic_mask_for(unsigned i)
{
	switch (i % 5) {
	case 0:
		return 0;
	case 1:
		return 0xffffffffu;
	case 2:
		return 0x55555555u;
	case 3:
		return 0xaaaaaaaau;
	}
	return 1u << (i % 32);
}

static void basic_roundtrip_max(void)
{
	uint8_t *blk = spp_block2m();
	unsigned n = 512;
	if (spp.max_pages != 512)
		tap_diag("max pages is %llu; the multi-page round trip uses 512 pages",
			 (unsigned long long)spp.max_pages);
	if (!blk) {
		for (int i = 0; i < 5; i++)
			sok(0, "multi-page round trip: no 2 MiB block");
		return;
	}
	unsigned prot = 0;
	for (unsigned i = 0; i < n; i++) {
		spp_map[i] = basic_mask_for(i);
		prot += spp_map[i] != 0xffffffffu;
	}
	struct stats a, b, c;
	stats_get(&a);
	int64_t s = tessel_spp_set(gfn_of(blk), n, gpa_of(spp_map), 0);
	stats_get(&b);
	sok(s == 0, "SET of %u pages (the maximum) returns 0 (got %lld)", n, (long long)s);
	mem_set(spp_map, 0x5a, n * 4);
	int64_t g = tessel_spp_get(gfn_of(blk), n, gpa_of(spp_map));
	unsigned bad = 0, first = ~0u;
	for (unsigned i = 0; i < n; i++)
		if (spp_map[i] != basic_mask_for(i) && !bad++)
			first = i;
	sok(g == 0 && bad == 0, "GET of %u pages returns every map (status %lld, %u wrong, first #%u = 0x%08x)", n,
	    (long long)g, bad, first, first < n ? spp_map[first] : 0);
	sok(sdelta(&a, &b, TESSEL_STAT_PAGES_PROTECTED) == prot, "pages_protected grew by %u (got %lld)", prot,
	    (long long)sdelta(&a, &b, TESSEL_STAT_PAGES_PROTECTED));
	mem_set(spp_map, 0x5a, 100 * 4);
	g = tessel_spp_get(gfn_of(blk) + 200, 100, gpa_of(spp_map));
	bad = 0;
	for (unsigned i = 0; i < 100; i++)
		bad += spp_map[i] != basic_mask_for(200 + i);
	sok(g == 0 && bad == 0, "GET of pages 200..299 of the block (status %lld, %u wrong)", (long long)g, bad);
	for (unsigned i = 0; i < n; i++)
		spp_map[i] = TESSEL_SPP_ALL_WRITABLE;
	s = tessel_spp_set(gfn_of(blk), n, gpa_of(spp_map), 0);
	stats_get(&c);
	mem_set(spp_map, 0, n * 4);
	g = tessel_spp_get(gfn_of(blk), n, gpa_of(spp_map));
	bad = 0;
	for (unsigned i = 0; i < n; i++)
		bad += spp_map[i] != 0xffffffffu;
	sok(s == 0 && g == 0 && bad == 0 && sdelta(&a, &c, TESSEL_STAT_PAGES_PROTECTED) == 0,
	    "SET 0xFFFFFFFF on %u pages unprotects all (SET %lld, GET %lld, %u still protected, pages_protected delta %lld)",
	    n, (long long)s, (long long)g, bad, (long long)sdelta(&a, &c, TESSEL_STAT_PAGES_PROTECTED));
}

/* Protects p with `mask` after filling it (and exp) with a pattern. */
static int64_t basic_arm(uint8_t *p, uint8_t *exp, uint32_t mask, uint8_t seed)
{
	unprot(p, 1);
	pat_fill(p, PAGE, seed);
	mem_copy(exp, p, PAGE);
	return set1(p, mask, 0);
}

static void basic_probes(uint32_t mask, uint8_t seed)
{
	static const unsigned sizes[] = { 1, 2, 4, 8 };
	uint8_t *p = spp_pages(1), *exp = spp_pages(1);
	if (!p || !exp) {
		for (int i = 0; i < 32; i++)
			sok(0, "probes: out of memory");
		return;
	}
	int64_t s = basic_arm(p, exp, mask, seed);
	if (s)
		tap_diag("SET 0x%08x failed: %lld", mask, (long long)s);
	for (unsigned sp = 0; sp < 32; sp++) {
		int allowed = (mask >> sp) & 1;
		unsigned bad = 0, bad_off = 0, bad_size = 0, diffs = 0, first = 0;
		for (unsigned si = 0; si < 4; si++) {
			unsigned size = sizes[si];
			unsigned pos[3] = { 0, 64 - size / 2 - 1, SUB - size };
			for (unsigned k = 0; k < 3; k++) {
				unsigned off = sp * SUB + pos[k];
				uint64_t v = 0;
				for (unsigned b = 0; b < size; b++)
					v |= (uint64_t)(uint8_t)~exp[off + b] << (8 * b);
				probe_store(p + off, v, size);
				if (allowed)
					for (unsigned b = 0; b < size; b++)
						exp[off + b] = (uint8_t)(v >> (8 * b));
				unsigned d = mem_diff(p, exp, PAGE, &first);
				if (d) {
					if (!bad++) {
						bad_off = off;
						bad_size = size;
						diffs = d;
						tap_diag("mask 0x%08x: %u-byte write at +0x%x: %u bytes differ, first +0x%x "
							 "(0x%02x, expected 0x%02x)",
							 mask, size, off, d, first, p[first], exp[first]);
					}
					/* resynchronise: the page must match exp again */
					s = set1(p, TESSEL_SPP_ALL_WRITABLE, 0);
					mem_copy(p, exp, PAGE);
					s |= set1(p, mask, 0);
				}
			}
		}
		if (bad)
			sok(0, "map 0x%08x, sub-page %2u (%s): %u of 12 probes wrong (first: %u bytes at +0x%x, %u bytes differ)",
			    mask, sp, allowed ? "writable" : "protected", bad, bad_size, bad_off, diffs);
		else
			sok(1, "map 0x%08x, sub-page %2u (%s): 1/2/4/8-byte writes at start, middle, end %s", mask, sp,
			    allowed ? "writable" : "protected", allowed ? "land, nothing else changes" : "change nothing");
	}
	unprot(p, 1);
	spp_free(p, 1);
	spp_free(exp, 1);
}

/* Writes straddling two sub-pages (ABI.md 4.2). */
static void basic_straddle(void)
{
	uint8_t *p = spp_pages(1), *exp = spp_pages(1);
	/* sub-page 1 protected, 0 and 2 writable */
	int64_t s = basic_arm(p, exp, ~(1u << 1), 0x31);
	/* writable -> protected: 8 bytes at 124..131 */
	probe_store(p + 124, 0x1122334455667788ull, 8);
	int precise = p[124] == 0x88 && p[127] == 0x55 && mem_diff(p + 128, exp + 128, PAGE - 128, NULL) == 0 &&
		      mem_diff(p, exp, 124, NULL) == 0;
	int all = p[124] == 0x88 && p[131] == 0x11 && mem_diff(p + 132, exp + 132, PAGE - 132, NULL) == 0;
	if (spp.sw)
		sok(s == 0 && precise, "software mode: an 8-byte write from a writable into a protected sub-page writes "
				       "exactly its 4 writable bytes");
	else
		sok(s == 0 && (precise || all), "hardware mode: a write from a writable into a protected sub-page is "
						"either precise or wholly performed (ABI.md 4.2: processor decides; %s)",
		    precise ? "precise" : all ? "wholly written" : "neither");
	/* protected -> writable: 8 bytes at 252..259 */
	unprot(p, 1);
	mem_copy(p, exp, PAGE);
	s |= set1(p, ~(1u << 1), 0);
	probe_store(p + 252, 0x1122334455667788ull, 8);
	int prec2 = p[256] == 0x44 && p[259] == 0x11 && mem_diff(p, exp, 256, NULL) == 0 &&
		    mem_diff(p + 260, exp + 260, PAGE - 260, NULL) == 0;
	int none = mem_diff(p, exp, PAGE, NULL) == 0;
	if (spp.sw)
		sok(s == 0 && prec2, "software mode: an 8-byte write from a protected into a writable sub-page writes "
				     "exactly its 4 writable bytes");
	else
		sok(s == 0 && (prec2 || none), "hardware mode: a write from a protected into a writable sub-page "
					       "changes no protected byte (%s)",
		    prec2 ? "writable part written" : none ? "nothing written" : "PROTECTED BYTES CHANGED");
	unprot(p, 1);
	spp_free(p, 1);
	spp_free(exp, 1);
}

static void basic_lock(void)
{
	uint8_t *l = spp_pages(1), *q = spp_pages(2);
	if (!l || !q) {
		for (int i = 0; i < 7; i++)
			sok(0, "lock: out of memory");
		return;
	}
	pat_fill(l, PAGE, 0x77);
	int64_t s = set1(l, 0xffff0000u, 0);
	int64_t k = tessel_spp_lock(gfn_of(l), 1);
	sok(s == 0 && k == 0, "HC_SPP_LOCK of a protected page returns 0 (SET %lld, LOCK %lld)", (long long)s,
	    (long long)k);
	s = set1(l, TESSEL_SPP_ALL_WRITABLE, 0);
	sok(s == -TESSEL_EPERM, "SET on a locked page returns -EPERM (got %lld)", (long long)s);
	uint32_t m = 0;
	int64_t g = get1(l, &m);
	sok(g == 0 && m == 0xffff0000u, "GET of a locked page still works and shows the frozen map (%lld, 0x%08x)",
	    (long long)g, m);
	k = tessel_spp_lock(gfn_of(l), 1);
	sok(k == 0, "locking a locked page succeeds (got %lld)", (long long)k);
	probe_store(l + 8, 0, 8);
	probe_store(l + 2048 + 8, 0, 8);
	sok(l[8] == pat_byte(8, 0x77) && l[15] == pat_byte(15, 0x77) && l[2048 + 8] == 0 && l[2048 + 15] == 0,
	    "a locked page keeps its permissions: protected write denied, writable write lands");
	/* q[1]: an unprotected page, locked; q[0] a free page before it */
	k = tessel_spp_lock(gfn_of(q + PAGE), 1);
	s = set1(q + PAGE, 0, 0);
	g = get1(q + PAGE, &m);
	sok(k == 0 && s == -TESSEL_EPERM && g == 0 && m == 0xffffffffu,
	    "an unprotected locked page refuses SET with -EPERM and stays unprotected (LOCK %lld, SET %lld, GET 0x%08x)",
	    (long long)k, (long long)s, m);
	spp_map[0] = 0;
	spp_map[1] = 0;
	s = tessel_spp_set(gfn_of(q), 2, gpa_of(spp_map), 0);
	g = get1(q, &m);
	sok(s == -TESSEL_EPERM && g == 0 && m == 0xffffffffu,
	    "a 2-page SET that includes a locked page fails with -EPERM and changes neither page (SET %lld, map 0x%08x)",
	    (long long)s, m);
	unprot(q, 1);
	/* l and q[1] stay locked until reset (ABI.md 3); they are never freed. */
}

static void suite_basic(void)
{
	suite_begin("basic", SPP_BASIC_POINTS);
	basic_flags();
	basic_roundtrip1();
	basic_roundtrip_max();
	basic_probes(0x55555555u, 0x11);
	basic_probes(0xaaaaaaaau, 0x5d);
	basic_straddle();
	basic_lock();
	suite_end();
}

#ifndef SPP_ALL
EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *st)
{
	spp_start(image, st, SPP_BASIC_POINTS);
	suite_basic();
	guest_finish();
}
#endif
