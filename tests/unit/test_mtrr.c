/*
 * Host tests for mm/mtrr.c: a table of SDM Vol. 3A 11.11.4.1 precedence cases, every
 * fixed-range boundary, mtrr_read() over the fake MSR table, mtrr_type() against a second,
 * deliberately naive resolver written here from the SDM text, and mtrr_range_uniform()
 * against a brute-force per-4 KiB scan over a 16 MiB physical space.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <arch/cpu.h>
#include <arch/msr.h>
#include <hw.h>
#include "mm/mtrr.h"

#define GiB (1ULL << 30)
#define MiB (1ULL << 20)
#define KiB (1ULL << 10)

static const u8 valid_types[] = { MT_UC, MT_WC, MT_WT, MT_WP, MT_WB };

/* A variable range [base, base + size) of `type`, size a power of two, for phys_bits. */
static void add_var(struct mtrr_state *s, u64 base, u64 size, u8 type, bool valid)
{
	u64 amask = ((1ULL << s->phys_bits) - 1) & ~0xfffULL;
	u32 i = s->var_count++;

	s->var[i].base = (base & amask) | type;
	s->var[i].mask = (~(size - 1) & amask) | (valid ? MTRR_PHYSMASK_VALID : 0);
}

static void init_state(struct mtrr_state *s, u8 def, u8 phys_bits)
{
	memset(s, 0, sizeof(*s));
	s->enabled = true;
	s->def_type = def;
	s->phys_bits = phys_bits;
}

/* ---- a table of precedence cases ---- */

struct pcase { const char *what; u64 pa; u8 type; };

static void run_cases(const struct mtrr_state *s, const struct pcase *c, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		u8 t = mtrr_type(s, c[i].pa);

		if (t != c[i].type)
			fail_msg("%s: pa %#llx type %u, expected %u", c[i].what,
				 (unsigned long long)c[i].pa, t, c[i].type);
	}
}

static void overlap_state(struct mtrr_state *s, u8 phys_bits)
{
	init_state(s, MT_WP, phys_bits);
	add_var(s, 4 * GiB, GiB, MT_UC, true);
	add_var(s, 4 * GiB, GiB, MT_WB, true);         /* UC + WB */
	add_var(s, 8 * GiB, GiB, MT_WT, true);
	add_var(s, 8 * GiB, 2 * GiB, MT_WB, true);     /* WT + WB, then WB alone */
	add_var(s, 16 * GiB, GiB, MT_WB, true);
	add_var(s, 16 * GiB, 512 * MiB, MT_WB, true);  /* WB + WB */
	add_var(s, 32 * GiB, GiB, MT_WC, true);
	add_var(s, 32 * GiB, GiB, MT_WB, true);        /* WC + WB: undefined -> UC */
	add_var(s, 34 * GiB, 4 * KiB, MT_WT, true);    /* a single page */
	add_var(s, 36 * GiB, GiB, MT_UC, false);       /* not valid */
	add_var(s, 40 * GiB, 2 * GiB, MT_WC, true);
	add_var(s, 41 * GiB, 4 * MiB, MT_WC, true);    /* WC + WC */
	add_var(s, 41 * GiB, 2 * MiB, MT_WT, true);    /* WC + WC + WT: undefined -> UC */
	add_var(s, 48 * GiB, 16 * GiB, MT_WP, true);
	add_var(s, 50 * GiB, 8 * KiB, MT_UC, true);    /* UC inside WP */
}

static void test_overlaps(void **state)
{
	(void)state;
	struct mtrr_state s;
	static const struct pcase c[] = {
		{ "no match: default", 0, MT_WP },
		{ "no match: default", 3 * GiB + 5, MT_WP },
		{ "UC+WB -> UC", 4 * GiB, MT_UC },
		{ "UC+WB -> UC, last byte", 5 * GiB - 1, MT_UC },
		{ "past UC+WB", 5 * GiB, MT_WP },
		{ "WT+WB -> WT", 8 * GiB + 12345, MT_WT },
		{ "WT+WB -> WT, last byte", 9 * GiB - 1, MT_WT },
		{ "WB alone", 9 * GiB, MT_WB },
		{ "WB alone, last byte", 10 * GiB - 1, MT_WB },
		{ "WB+WB -> WB", 16 * GiB, MT_WB },
		{ "WB (one of two)", 16 * GiB + 512 * MiB, MT_WB },
		{ "WC+WB -> UC (our rule)", 32 * GiB + 7, MT_UC },
		{ "4K range", 34 * GiB, MT_WT },
		{ "4K range, last byte", 34 * GiB + 4095, MT_WT },
		{ "after 4K range", 34 * GiB + 4096, MT_WP },
		{ "before 4K range", 34 * GiB - 1, MT_WP },
		{ "invalid range ignored", 36 * GiB, MT_WP },
		{ "WC alone", 40 * GiB, MT_WC },
		{ "WC+WC+WT -> UC (our rule)", 41 * GiB + 4096, MT_UC },
		{ "WC+WC -> WC", 41 * GiB + 2 * MiB, MT_WC },
		{ "WC again", 42 * GiB - 1, MT_WC },
		{ "WP range", 48 * GiB, MT_WP },
		{ "UC inside WP", 50 * GiB + 4096, MT_UC },
		{ "after UC inside WP", 50 * GiB + 8192, MT_WP },
	};

	overlap_state(&s, 46);
	run_cases(&s, c, ARRAY_SIZE(c));
}

static void test_phys_bits(void **state)
{
	(void)state;
	struct mtrr_state s;

	/* phys_bits 36: a 1 GiB UC range at 4 GiB; masks hold bits 35:12 only. */
	init_state(&s, MT_WB, 36);
	add_var(&s, 4 * GiB, GiB, MT_UC, true);
	/* Bits above 36 in PHYSMASK would be reserved; set them anyway: they must not matter. */
	s.var[0].mask |= 0xfff0000000000000ULL;
	const struct pcase c36[] = {
		{ "in range", 4 * GiB + 1, MT_UC },
		{ "below", 4 * GiB - 1, MT_WB },
		{ "above", 5 * GiB, MT_WB },
		{ "last byte of the space", (1ULL << 36) - 1, MT_WB },
		{ "alias above 2^36 is not memory: default", (1ULL << 36) + 4 * GiB, MT_WB },
		{ "far above", 1ULL << 50, MT_WB },
	};
	run_cases(&s, c36, ARRAY_SIZE(c36));

	/* Default UC: above the limit also UC (default), inside a WB range below it WB. */
	init_state(&s, MT_UC, 39);
	add_var(&s, 0, 256 * GiB, MT_WB, true);
	const struct pcase c39[] = {
		{ "WB range", 255 * GiB, MT_WB },
		{ "default", 256 * GiB, MT_UC },
		{ "beyond 2^39", 1ULL << 39, MT_UC },
		{ "beyond 2^39 aliasing the WB range", (1ULL << 39) + GiB, MT_UC },
	};
	run_cases(&s, c39, ARRAY_SIZE(c39));

	/* A range covering the top of a 52-bit space. */
	init_state(&s, MT_WB, 52);
	add_var(&s, 1ULL << 51, 1ULL << 51, MT_UC, true);
	assert_int_equal(mtrr_type(&s, (1ULL << 52) - 1), MT_UC);
	assert_int_equal(mtrr_type(&s, (1ULL << 51) - 1), MT_WB);
	assert_int_equal(mtrr_type(&s, 1ULL << 52), MT_WB);
}

static void fixed_state(struct mtrr_state *s, bool fe)
{
	init_state(s, MT_WB, 46);
	s->fixed_enabled = fe;
	for (u32 i = 0; i < MTRR_FIXED_COUNT; i++)
		s->fixed[i] = valid_types[i % 5];
	add_var(s, 0, MiB, MT_UC, true); /* covers the fixed area for the FE=0 case */
}

/* First address of fixed range i (Table 11-9). */
static u64 fixed_start(u32 i)
{
	if (i < 8)
		return i * 0x10000ULL;
	if (i < 24)
		return 0x80000 + (i - 8) * 0x4000ULL;
	return 0xc0000 + (i - 24) * 0x1000ULL;
}

static void test_fixed(void **state)
{
	(void)state;
	struct mtrr_state s;

	fixed_state(&s, true);
	for (u32 i = 0; i < MTRR_FIXED_COUNT; i++) {
		u64 end = i + 1 < MTRR_FIXED_COUNT ? fixed_start(i + 1) : MiB;

		assert_int_equal(mtrr_type(&s, fixed_start(i)), valid_types[i % 5]);
		assert_int_equal(mtrr_type(&s, end - 1), valid_types[i % 5]);
		assert_int_equal(mtrr_type(&s, (fixed_start(i) + end) / 2), valid_types[i % 5]);
	}
	/* The 11 MSRs' outer boundaries, by address. */
	assert_int_equal(mtrr_type(&s, 0x7ffff), valid_types[7 % 5]);
	assert_int_equal(mtrr_type(&s, 0x80000), valid_types[8 % 5]);
	assert_int_equal(mtrr_type(&s, 0x9ffff), valid_types[15 % 5]);
	assert_int_equal(mtrr_type(&s, 0xa0000), valid_types[16 % 5]);
	assert_int_equal(mtrr_type(&s, 0xbffff), valid_types[23 % 5]);
	assert_int_equal(mtrr_type(&s, 0xc0000), valid_types[24 % 5]);
	for (u32 m = 0; m < 8; m++) {
		u64 a = 0xc0000 + m * 0x8000ULL;

		assert_int_equal(mtrr_type(&s, a), valid_types[(24 + 8 * m) % 5]);
		assert_int_equal(mtrr_type(&s, a + 0x7fff), valid_types[(31 + 8 * m) % 5]);
	}
	assert_int_equal(mtrr_type(&s, 0xfffff), valid_types[87 % 5]);
	/* 1 MiB and up: variable ranges and default, the fixed ranges no longer apply. */
	assert_int_equal(mtrr_type(&s, MiB), MT_WB);
	/* FE = 0: the variable UC range covers [0, 1 MiB). */
	fixed_state(&s, false);
	assert_int_equal(mtrr_type(&s, 0), MT_UC);
	assert_int_equal(mtrr_type(&s, 0xc0000), MT_UC);
	assert_int_equal(mtrr_type(&s, 0xfffff), MT_UC);
	assert_int_equal(mtrr_type(&s, MiB), MT_WB);
	/* E = 0: UC everywhere, whatever FE and the ranges say. */
	fixed_state(&s, true);
	s.enabled = false;
	assert_int_equal(mtrr_type(&s, 0x10000), MT_UC);
	assert_int_equal(mtrr_type(&s, 8 * GiB), MT_UC);
	s.def_type = MT_WB;
	assert_int_equal(mtrr_type(&s, 8 * GiB), MT_UC);
	u8 t = 0xee;
	assert_true(mtrr_range_uniform(&s, 0, ~0ULL, &t));
	assert_int_equal(t, MT_UC);
}

static void test_reserved_types(void **state)
{
	(void)state;
	struct mtrr_state s;

	init_state(&s, 2, 40); /* reserved default type */
	assert_int_equal(mtrr_type(&s, GiB), MT_UC);
	init_state(&s, MT_WB, 40);
	add_var(&s, GiB, GiB, 3, true);
	assert_int_equal(mtrr_type(&s, GiB), MT_UC);
	assert_int_equal(mtrr_type(&s, 0), MT_WB);
}

/* ---- mtrr_read over the fake MSR table ---- */

static void test_read(void **state)
{
	(void)state;
	static const u32 fixed[11] = { 0x250, 0x258, 0x259, 0x268, 0x269, 0x26a, 0x26b,
				       0x26c, 0x26d, 0x26e, 0x26f };
	struct mtrr_state s;

	fake_reset();
	fake_msr_set(MSR_IA32_MTRRCAP, 10 | MTRRCAP_FIX | MTRRCAP_WC);
	fake_msr_set(MSR_IA32_MTRR_DEF_TYPE, MTRR_DEF_E | MTRR_DEF_FE | MT_WB);
	for (u32 m = 0; m < 11; m++) {
		u64 v = 0;

		for (u32 j = 0; j < 8; j++)
			v |= (u64)valid_types[(m * 8 + j) % 5] << (8 * j);
		fake_msr_set(fixed[m], v);
	}
	for (u32 i = 0; i < 10; i++) {
		fake_msr_set(0x200 + 2 * i, (u64)(i + 1) * GiB | valid_types[i % 5]);
		fake_msr_set(0x201 + 2 * i, (~(GiB - 1) & 0xfffffffff000ULL) | (i % 3 ? 0x800 : 0));
	}
	mtrr_read(&s, 46);
	assert_true(s.enabled);
	assert_true(s.fixed_enabled);
	assert_int_equal(s.def_type, MT_WB);
	assert_int_equal(s.phys_bits, 46);
	assert_int_equal(s.var_count, 10);
	for (u32 i = 0; i < MTRR_FIXED_COUNT; i++)
		assert_int_equal(s.fixed[i], valid_types[i % 5]);
	for (u32 i = 0; i < 10; i++) {
		assert_int_equal(s.var[i].base, fake_msr_get(0x200 + 2 * i));
		assert_int_equal(s.var[i].mask, fake_msr_get(0x201 + 2 * i));
	}
	assert_int_equal(fake_msr_gp_count(), 0);
	/* Range 1 (2 GiB, WC, valid) and range 3 (4 GiB, UC, invalid: i % 3 == 0). */
	assert_int_equal(mtrr_type(&s, 2 * GiB), MT_WC);
	assert_int_equal(mtrr_type(&s, 4 * GiB), MT_WB);
	assert_int_equal(mtrr_type(&s, 0xc0000), valid_types[24 % 5]);

	/* No FIX capability: FE is ignored and the fixed MSRs are never read. */
	fake_reset();
	fake_msr_set(MSR_IA32_MTRRCAP, 2);
	fake_msr_set(MSR_IA32_MTRR_DEF_TYPE, MTRR_DEF_E | MTRR_DEF_FE | MT_UC);
	for (u32 i = 0; i < 4; i++)
		fake_msr_set(0x200 + i, 0);
	mtrr_read(&s, 39);
	assert_true(s.enabled);
	assert_false(s.fixed_enabled);
	assert_int_equal(s.var_count, 2);
	assert_int_equal(fake_msr_gp_count(), 0);
	assert_int_equal(mtrr_type(&s, 0), MT_UC);

	/* E = 0 with FE = 1. */
	fake_msr_set(MSR_IA32_MTRR_DEF_TYPE, MTRR_DEF_FE | MT_WB);
	mtrr_read(&s, 39);
	assert_false(s.enabled);
	assert_int_equal(mtrr_type(&s, GiB), MT_UC);

	/* VCNT above MTRR_MAX_VAR is clamped (and only those pairs are read). */
	fake_reset();
	fake_msr_set(MSR_IA32_MTRRCAP, 40);
	fake_msr_set(MSR_IA32_MTRR_DEF_TYPE, MTRR_DEF_E | MT_WB);
	for (u32 i = 0; i < 2 * MTRR_MAX_VAR; i++)
		fake_msr_set(0x200 + i, 0);
	mtrr_read(&s, 39);
	assert_int_equal(s.var_count, MTRR_MAX_VAR);
	assert_int_equal(fake_msr_gp_count(), 0);

	/* No MTRRs at all (IA32_MTRRCAP #GPs): WB everywhere, PAT decides. */
	fake_reset();
	mtrr_read(&s, 39);
	assert_true(s.enabled);
	assert_int_equal(s.var_count, 0);
	assert_int_equal(mtrr_type(&s, 0), MT_WB);
	assert_int_equal(mtrr_type(&s, 5 * GiB), MT_WB);
}

/* ---- randomised checks against a naive resolver and a brute-force scan ---- */

static u64 rng_state;
static u64 rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* The SDM rules written out plainly, with a list instead of a set. */
static u8 naive_type(const struct mtrr_state *s, u64 pa)
{
	u8 matched[MTRR_MAX_VAR];
	u32 n = 0;
	bool uc = false, wt = false, wb = false, other = false, same = true;
	u64 amask = ((1ULL << s->phys_bits) - 1) & ~0xfffULL;

	if (!s->enabled)
		return MT_UC;
	if (pa >= (1ULL << s->phys_bits))
		return s->def_type;
	if (s->fixed_enabled && pa < 0x100000) {
		if (pa < 0x80000)
			return s->fixed[pa / 0x10000];
		if (pa < 0xc0000)
			return s->fixed[8 + (pa - 0x80000) / 0x4000];
		return s->fixed[24 + (pa - 0xc0000) / 0x1000];
	}
	for (u32 i = 0; i < s->var_count; i++) {
		if (!(s->var[i].mask & 0x800))
			continue;
		if (((pa ^ s->var[i].base) & s->var[i].mask & amask) == 0)
			matched[n++] = s->var[i].base & 0xff;
	}
	if (n == 0)
		return s->def_type;
	for (u32 i = 0; i < n; i++) {
		uc |= matched[i] == MT_UC;
		wt |= matched[i] == MT_WT;
		wb |= matched[i] == MT_WB;
		other |= matched[i] != MT_WT && matched[i] != MT_WB && matched[i] != MT_UC;
		same &= matched[i] == matched[0];
	}
	if (uc)
		return MT_UC;
	if (same)
		return matched[0];
	if (wt && wb && !other)
		return MT_WT;
	return MT_UC;
}

#define SMALL_BITS 24
#define SMALL_PAGES (2ULL << (SMALL_BITS - 12)) /* twice the space: includes beyond-limit */

static void random_state(struct mtrr_state *s)
{
	init_state(s, valid_types[rnd() % 5], SMALL_BITS);
	s->fixed_enabled = rnd() % 2;
	u8 ft = valid_types[rnd() % 5];
	for (u32 i = 0; i < MTRR_FIXED_COUNT; i++)
		s->fixed[i] = rnd() % 8 ? ft : valid_types[rnd() % 5];
	u32 n = (u32)(rnd() % 9);
	for (u32 i = 0; i < n; i++) {
		u32 order = 12 + (u32)(rnd() % (SMALL_BITS - 11));
		u64 size = 1ULL << order;
		u64 base = (rnd() << 12) & ~(size - 1);

		add_var(s, base, size, valid_types[rnd() % 5], rnd() % 10 != 0);
		if (rnd() % 10 == 0) /* a non-contiguous mask: legal to program, odd to use */
			s->var[i].mask ^= 1ULL << (12 + rnd() % (SMALL_BITS - 12));
	}
}

static void test_random_type(void **state)
{
	(void)state;
	struct mtrr_state s;

	rng_state = 0x9e3779b97f4a7c15ULL;
	for (int st = 0; st < 300; st++) {
		random_state(&s);
		for (int q = 0; q < 2000; q++) {
			u64 pa = rnd() % (SMALL_PAGES * PAGE_SIZE);

			if (mtrr_type(&s, pa) != naive_type(&s, pa))
				fail_msg("state %d pa %#llx: %u vs naive %u", st,
					 (unsigned long long)pa, mtrr_type(&s, pa), naive_type(&s, pa));
		}
	}
}

static void check_uniform(const struct mtrr_state *s, const u8 *page_type, u64 base, u64 size)
{
	u64 first = base / PAGE_SIZE, last = (base + size - 1) / PAGE_SIZE;
	bool exp = true;
	u8 t = 0xee;

	for (u64 p = first; p <= last; p++)
		if (page_type[p] != page_type[first])
			exp = false;
	bool got = mtrr_range_uniform(s, base, size, &t);
	if (got != exp || (got && t != page_type[first]))
		fail_msg("range [%#llx, +%#llx): uniform %d type %u, brute force %d type %u",
			 (unsigned long long)base, (unsigned long long)size, got, t, exp,
			 page_type[first]);
}

static void test_random_uniform(void **state)
{
	(void)state;
	static u8 page_type[SMALL_PAGES];
	struct mtrr_state s;
	u64 space = SMALL_PAGES * PAGE_SIZE;

	rng_state = 0x0123456789abcdefULL;
	for (int st = 0; st < 300; st++) {
		random_state(&s);
		for (u64 p = 0; p < SMALL_PAGES; p++)
			page_type[p] = mtrr_type(&s, p * PAGE_SIZE);
		/* Every aligned power-of-two block of the space, 4 KiB to 32 MiB. */
		for (u64 size = PAGE_SIZE; size <= space; size <<= 1)
			for (u64 a = 0; a < space; a += size)
				check_uniform(&s, page_type, a, size);
		/* Random byte ranges, including unaligned ends. */
		for (int q = 0; q < 500; q++) {
			u64 base = rnd() % space;
			u64 size = 1 + rnd() % (space - base);

			if (q % 2)
				size = 1 + size % (4 * MiB);
			if (base + size > space)
				size = space - base;
			check_uniform(&s, page_type, base, size);
		}
	}
}

static void test_uniform_edges(void **state)
{
	(void)state;
	struct mtrr_state s;
	u8 t = 0xee;

	init_state(&s, MT_WB, 46);
	assert_false(mtrr_range_uniform(&s, 0, 0, &t));            /* empty */
	assert_false(mtrr_range_uniform(&s, ~0ULL - 10, 100, &t)); /* wraps */
	assert_true(mtrr_range_uniform(&s, 0, ~0ULL, &t));        /* the whole space */
	assert_int_equal(t, MT_WB);
	assert_true(mtrr_range_uniform(&s, ~0ULL, 1, &t));         /* the last byte */
	add_var(&s, (1ULL << 46) - PAGE_SIZE, PAGE_SIZE, MT_UC, true);
	assert_false(mtrr_range_uniform(&s, 0, ~0ULL, &t));
	assert_false(mtrr_range_uniform(&s, 1ULL << 45, 1ULL << 45, &t));
	assert_true(mtrr_range_uniform(&s, 1ULL << 45, (1ULL << 45) - PAGE_SIZE, &t));
	assert_int_equal(t, MT_WB);
	/* Beyond the physical limit: default type, however the range aliases. */
	assert_true(mtrr_range_uniform(&s, 1ULL << 46, 1ULL << 46, &t));
	assert_int_equal(t, MT_WB);
	/* A byte range inside one page is uniform. */
	assert_true(mtrr_range_uniform(&s, (1ULL << 46) - 100, 10, &t));
	assert_int_equal(t, MT_UC);
	/* Blocks that straddle the end of the fixed-range area at 1 MiB. */
	init_state(&s, MT_WB, 40);
	s.fixed_enabled = true;
	memset(s.fixed, MT_WB, sizeof(s.fixed));
	assert_true(mtrr_range_uniform(&s, 0, 2 * MiB, &t));
	assert_int_equal(t, MT_WB);
	assert_true(mtrr_range_uniform(&s, 0xc0000, GiB, &t));
	s.fixed[87] = MT_WP;
	assert_false(mtrr_range_uniform(&s, 0, 2 * MiB, &t));
	assert_false(mtrr_range_uniform(&s, 0xff000, 0x2000, &t));
	assert_true(mtrr_range_uniform(&s, 0xff000, 0x1000, &t));
	assert_int_equal(t, MT_WP);
	assert_true(mtrr_range_uniform(&s, MiB, GiB - MiB, &t));
	s.fixed[87] = MT_WB;
	s.def_type = MT_UC;
	assert_false(mtrr_range_uniform(&s, 0, 2 * MiB, &t));
	assert_true(mtrr_range_uniform(&s, 0, MiB, &t));
	assert_int_equal(t, MT_WB);
	/* A UC page inside a GiB makes the GiB and its 2 MiB non-uniform, not its neighbours. */
	overlap_state(&s, 46);
	assert_false(mtrr_range_uniform(&s, 50 * GiB, GiB, &t));
	assert_false(mtrr_range_uniform(&s, 50 * GiB, 2 * MiB, &t));
	assert_true(mtrr_range_uniform(&s, 50 * GiB + 2 * MiB, 2 * MiB, &t));
	assert_int_equal(t, MT_WP);
	assert_true(mtrr_range_uniform(&s, 8 * GiB, GiB, &t));
	assert_int_equal(t, MT_WT);
	assert_false(mtrr_range_uniform(&s, 8 * GiB, 2 * GiB, &t));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_overlaps),
		cmocka_unit_test(test_phys_bits),
		cmocka_unit_test(test_fixed),
		cmocka_unit_test(test_reserved_types),
		cmocka_unit_test(test_read),
		cmocka_unit_test(test_random_type),
		cmocka_unit_test(test_random_uniform),
		cmocka_unit_test(test_uniform_edges),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
