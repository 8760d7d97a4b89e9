/*
 * Host tests for mm/ept.c, checked with the independent walker in ept_walker.h.
 *
 * Each scenario builds the identity EPT over an MTRR layout (OVMF-like ones and adversarial
 * ones) with the hypervisor's region at an unaligned place; the region is also the fake
 * physical window the pmm allocates tables (and the 0xFF page) from. Then:
 *   - every leaf is enumerated: the leaves tile [0, 2^min(phys_bits, 48)) exactly, with no
 *     misconfiguration; outside the region each maps to itself RWX with the MTRR type and
 *     IPAT clear; inside it each is a 4 KiB R+X leaf to the 0xFF page, WB, IPAT set;
 *   - each large leaf has a uniform type (mtrr_range_uniform and, below a bound, a
 *     per-4 KiB brute force), and each leaf is maximal (its parent-size block is either
 *     non-uniform or touches the region);
 *   - ew_walk() at every 1 GiB boundary, the region's edges +-1 page and random points gives
 *     the expected translation; addresses at or above the limit are not mapped;
 *   - table counts stay small.
 * ept_split/ept_try_merge are checked by walking before and after.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <arch/cpu.h>
#include <arch/ept.h>
#include <hw.h>
#include "mm/ept.h"
#include "mm/mtrr.h"
#include "mm/pmm.h"
#include "ept_walker.h"

#define GiB (1ULL << 30)
#define MiB (1ULL << 20)
#define KiB (1ULL << 10)
#define WIN_SIZE (8 * MiB + 20 * KiB)

static u64 rng = 0x243f6a8885a308d3ULL;
static u64 rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* ---- MTRR layouts ---- */

static void var(struct mtrr_state *s, u64 base, u64 size, u8 type)
{
	u64 amask = ((1ULL << s->phys_bits) - 1) & ~0xfffULL;
	u32 i = s->var_count++;

	s->var[i].base = (base & amask) | type;
	s->var[i].mask = (~(size - 1) & amask) | MTRR_PHYSMASK_VALID;
}

static void base_state(struct mtrr_state *s, u8 pb, u8 def)
{
	memset(s, 0, sizeof(*s));
	s->enabled = true;
	s->fixed_enabled = true;
	s->def_type = def;
	s->phys_bits = pb;
	memset(s->fixed, MT_WB, sizeof(s->fixed));
}

static void ovmf_fixed(struct mtrr_state *s)
{
	memset(&s->fixed[16], MT_UC, 8);  /* 0xA0000-0xBFFFF: legacy VGA */
	memset(&s->fixed[24], MT_WP, 64); /* 0xC0000-0xFFFFF: option ROMs, BIOS */
}

/* OVMF-like: WB default, UC hole for 32-bit MMIO at 3-4 GiB. */
static void mk_ovmf(struct mtrr_state *s, u8 pb)
{
	base_state(s, pb, MT_WB);
	ovmf_fixed(s);
	var(s, 0xc0000000, GiB, MT_UC);
}

/* UC default with WB RAM ranges (as much firmware programs it). */
static void mk_ucdef(struct mtrr_state *s, u8 pb)
{
	base_state(s, pb, MT_UC);
	ovmf_fixed(s);
	var(s, 0, 2 * GiB, MT_WB);
	var(s, 4 * GiB, 4 * GiB, MT_WB);
	var(s, 8 * GiB, 512 * MiB, MT_WB);
	var(s, 0x7fe00000, 2 * MiB, MT_UC); /* under the region in the scenarios that use it */
}

/* A UC page inside a GiB, a WC 4 KiB page via the fixed ranges, a WC 2 MiB, WT over WB. */
static void mk_adversarial(struct mtrr_state *s, u8 pb)
{
	base_state(s, pb, MT_WB);
	s->fixed[32] = MT_WC; /* 0xC8000 */
	var(s, 0x140123000, 4 * KiB, MT_UC);
	var(s, 0x200200000, 2 * MiB, MT_WC);
	var(s, 0x300000000, GiB, MT_WT);
	var(s, 0x200000000, 8 * GiB, MT_WB);
	var(s, 0x380000000 + 0x1000, 4 * KiB, MT_WP);
	var(s, 0x4c0000000, 4 * MiB, MT_UC); /* 2 MiB-aligned, two 2 MiB leaves */
}

/* Many overlapping ranges of all sizes and types, spread over the space. */
static void mk_many(struct mtrr_state *s, u8 pb)
{
	static const u8 types[] = { MT_UC, MT_WC, MT_WT, MT_WP, MT_WB };

	base_state(s, pb, MT_WB);
	rng = 0x1234567;
	for (u32 i = 0; i < MTRR_MAX_VAR; i++) {
		u32 order = 12 + (u32)(rnd() % (pb - 12 - 2));
		u64 size = 1ULL << order;

		var(s, (rnd() % (1ULL << pb)) & ~(size - 1), size, types[rnd() % 5]);
	}
}

/* Ranges above 512 GiB and at the very top of the space. */
static void mk_high(struct mtrr_state *s, u8 pb)
{
	base_state(s, pb, MT_WB);
	ovmf_fixed(s);
	var(s, 0xc0000000, GiB, MT_UC);
	var(s, 1ULL << 40, 16 * GiB, MT_WC);
	var(s, (1ULL << 40) + 3 * GiB + 5 * MiB, 4 * KiB, MT_UC);
	var(s, (1ULL << pb) - 4 * KiB, 4 * KiB, MT_UC);
	var(s, 700 * GiB, 2 * MiB, MT_UC);
}

static void mk_disabled(struct mtrr_state *s, u8 pb)
{
	mk_ovmf(s, pb);
	s->enabled = false;
}

/* ---- setup and the checker ---- */

struct env {
	struct mtrr_state mtrr;
	struct ept_params p;
	struct ept ept;
	u64 limit;
	unsigned maxphy; /* for the walker: the processor's MAXPHYADDR */
};

static void setup(struct env *e, void (*mk)(struct mtrr_state *, u8), u8 pb, bool has_1g,
		  u64 win)
{
	memset(e, 0, sizeof(*e));
	fake_reset();
	fake_phys_init(win, WIN_SIZE);
	pmm_init(hpa(win), WIN_SIZE);
	mk(&e->mtrr, pb);
	e->p.phys_bits = pb;
	e->p.has_1g = has_1g;
	e->p.mtrr = &e->mtrr;
	e->p.hv_base = win;
	e->p.hv_size = WIN_SIZE;
	e->p.ff_page = pmm_alloc_page();
	assert_true(e->p.ff_page.v != 0);
	memset(hpa_to_ptr(e->p.ff_page), 0xff, PAGE_SIZE);
	e->limit = 1ULL << MIN(pb, 48);
	e->maxphy = pb;
}

static bool in_hv(const struct env *e, u64 a, u64 size)
{
	return a < e->p.hv_base + e->p.hv_size && e->p.hv_base < a + size;
}

struct chk {
	struct env *e;
	u64 next;
	bool maximal;
	u64 brute_below;
	u64 leaves[4];
	u64 last_1g;
};

static bool check_leaf(void *ctx, const struct ew_result *r)
{
	struct chk *c = ctx;
	struct env *e = c->e;
	u64 a = r->page_gpa, size = r->page_size;
	u8 t;

	if (r->status != EW_OK)
		fail_msg("gpa %#llx level %d: %s", (unsigned long long)a, r->level, r->why);
	if (a != c->next)
		fail_msg("leaf at %#llx, expected the next at %#llx", (unsigned long long)a,
			 (unsigned long long)c->next);
	c->next = a + size;
	c->leaves[r->level]++;
	if (a + size > e->limit)
		fail_msg("leaf at %#llx passes the limit", (unsigned long long)a);
	if (in_hv(e, a, size)) {
		if (r->level != 1 || r->hpa != e->p.ff_page.v || r->perm != (EPT_R | EPT_X) ||
		    r->mt != MT_WB || !r->ipat)
			fail_msg("region page %#llx: level %d hpa %#llx perm %u mt %u ipat %d",
				 (unsigned long long)a, r->level, (unsigned long long)r->hpa,
				 r->perm, r->mt, r->ipat);
		assert_int_equal(*(const u8 *)hpa_to_ptr(hpa(r->hpa + (a & 0xfff))), 0xff);
		return true;
	}
	if (r->hpa != a || r->perm != 7 || r->ipat)
		fail_msg("gpa %#llx: hpa %#llx perm %u ipat %d", (unsigned long long)a,
			 (unsigned long long)r->hpa, r->perm, r->ipat);
	if (r->level == 3 && !e->p.has_1g)
		fail_msg("1 GiB leaf at %#llx without 1 GiB support", (unsigned long long)a);
	if (r->level == 1) {
		if (r->mt != mtrr_type(&e->mtrr, a))
			fail_msg("4K %#llx: mt %u, MTRR %u", (unsigned long long)a, r->mt,
				 mtrr_type(&e->mtrr, a));
	} else {
		if (!mtrr_range_uniform(&e->mtrr, a, size, &t) || t != r->mt)
			fail_msg("large leaf %#llx level %d type %u not uniform",
				 (unsigned long long)a, r->level, r->mt);
		for (u64 p = a; a < c->brute_below && p < a + size; p += PAGE_SIZE)
			if (mtrr_type(&e->mtrr, p) != r->mt)
				fail_msg("large leaf %#llx: page %#llx has type %u, leaf %u",
					 (unsigned long long)a, (unsigned long long)p,
					 mtrr_type(&e->mtrr, p), r->mt);
	}
	if (!c->maximal)
		return true;
	/* The parent-size block must have been impossible as one leaf. */
	if (r->level == 1 && IS_ALIGNED(a, SZ_2M) && !in_hv(e, a, SZ_2M) &&
	    mtrr_range_uniform(&e->mtrr, a, SZ_2M, &t))
		fail_msg("4K leaves at %#llx where a 2M leaf fits", (unsigned long long)a);
	if (r->level == 2 && e->p.has_1g && ALIGN_DOWN(a, SZ_1G) + 1 != c->last_1g) {
		c->last_1g = ALIGN_DOWN(a, SZ_1G) + 1;
		if (!in_hv(e, ALIGN_DOWN(a, SZ_1G), SZ_1G) &&
		    mtrr_range_uniform(&e->mtrr, ALIGN_DOWN(a, SZ_1G), SZ_1G, &t))
			fail_msg("2M leaves at %#llx where a 1G leaf fits", (unsigned long long)a);
	}
	return true;
}

static void expect_walk(struct env *e, u64 gpa)
{
	struct ew_result r;
	int st = ew_walk(e->ept.eptp, e->maxphy, gpa, &r);

	if (gpa >= e->limit) {
		if (st != EW_VIOLATION)
			fail_msg("gpa %#llx above the limit is mapped", (unsigned long long)gpa);
		return;
	}
	if (st != EW_OK)
		fail_msg("gpa %#llx: %s", (unsigned long long)gpa, r.why);
	if (in_hv(e, gpa, 1)) {
		if (r.hpa != e->p.ff_page.v + (gpa & 0xfff) || r.perm != 5 || r.mt != MT_WB || !r.ipat)
			fail_msg("region gpa %#llx: hpa %#llx perm %u", (unsigned long long)gpa,
				 (unsigned long long)r.hpa, r.perm);
		return;
	}
	if (r.hpa != gpa || r.perm != 7 || r.ipat || r.mt != mtrr_type(&e->mtrr, gpa))
		fail_msg("gpa %#llx: hpa %#llx perm %u mt %u (MTRR %u)", (unsigned long long)gpa,
			 (unsigned long long)r.hpa, r.perm, r.mt, mtrr_type(&e->mtrr, gpa));
}

static u64 check_ept(struct env *e, bool maximal, u64 brute_below)
{
	struct chk c = { .e = e, .maximal = maximal, .brute_below = brute_below };
	u64 walks = 0, hv_end = e->p.hv_base + e->p.hv_size;

	assert_true(ew_for_each_leaf(e->ept.eptp, e->maxphy, check_leaf, &c));
	assert_int_equal(c.next, e->limit);
	for (u64 g = 0; g < e->limit; g += GiB, walks += 2) {
		expect_walk(e, g);
		expect_walk(e, g + GiB - 1);
	}
	for (int i = 0; i < 20000; i++, walks++)
		expect_walk(e, rnd() & (e->limit - 1));
	for (int d = -2; d <= 2; d++, walks += 2) {
		expect_walk(e, e->p.hv_base + (u64)d * PAGE_SIZE);
		expect_walk(e, hv_end + (u64)d * PAGE_SIZE);
	}
	expect_walk(e, e->limit - 1);
	expect_walk(e, e->limit);
	expect_walk(e, e->limit + 12345);
	return walks + 3;
}

/* ---- scenarios ---- */

struct scenario {
	const char *name;
	void (*mk)(struct mtrr_state *, u8);
	u8 phys_bits;
	bool has_1g;
	u64 win;          /* the region (and fake window) base */
	u64 max_tables;   /* 0: no bound checked */
};

static const struct scenario scenarios[] = {
	{ "ovmf-39-1g", mk_ovmf, 39, true, 0x7fe35000, 64 },
	{ "ovmf-36-2m", mk_ovmf, 36, false, 0xbff00000, 0 },
	{ "ucdef-40-1g", mk_ucdef, 40, true, 0x7fe35000, 64 },
	{ "ucdef-36-1g", mk_ucdef, 36, true, 0x123456000, 64 },
	{ "adversarial-36-1g", mk_adversarial, 36, true, 0x7fe35000, 64 },
	{ "adversarial-39-2m", mk_adversarial, 39, false, 0x123456000, 0 },
	{ "many-40-1g", mk_many, 40, true, 0xbff00000, 0 },
	{ "many-36-2m", mk_many, 36, false, 0x3ff6fb000, 0 },
	{ "high-46-1g", mk_high, 46, true, 0x8000003000, 200 },
	{ "disabled-46-1g", mk_disabled, 46, true, (1ULL << 46) - 8 * MiB - 0x8000, 200 },
	{ "ovmf-52-1g (clamped to 48)", mk_ovmf, 52, true, 0x123456000, 600 },
};

static void test_scenarios(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(scenarios); i++) {
		const struct scenario *sc = &scenarios[i];
		struct env e;
		u64 free_before;

		setup(&e, sc->mk, sc->phys_bits, sc->has_1g, sc->win);
		free_before = pmm_free_count();
		assert_int_equal(ept_build_identity(&e.ept, &e.p), 0);
		assert_int_equal(e.ept.tables, free_before - pmm_free_count());
		assert_int_equal(e.ept.eptp, ept_make_eptp(e.ept.pml4, false));
		check_ept(&e, true, sc->phys_bits <= 36 ? e.limit : 8 * GiB);
		if (sc->max_tables && e.ept.tables >= sc->max_tables)
			fail_msg("%s: %llu tables", sc->name, (unsigned long long)e.ept.tables);
		print_message("  %-28s %4llu tables\n", sc->name, (unsigned long long)e.ept.tables);
		ept_destroy(&e.ept);
		assert_int_equal(e.ept.tables, 0);
		assert_int_equal(pmm_free_count(), free_before);
	}
}

/* Coverage beyond 512 GiB, explicitly: the classic 512 GiB pitfall. */
static void test_beyond_512g(void **state)
{
	(void)state;
	struct env e;
	struct ew_result r;
	int level = 0;

	setup(&e, mk_high, 46, true, 0x8000003000);
	assert_int_equal(ept_build_identity(&e.ept, &e.p), 0);
	static const u64 pts[] = { 512 * GiB, 512 * GiB + 4096, 1ULL << 40, (1ULL << 40) + 16 * GiB,
				   (1ULL << 45) + 77 * GiB + 123, (1ULL << 46) - 4096 - 1,
				   (1ULL << 46) - 1, 700 * GiB + 5 };
	for (size_t i = 0; i < ARRAY_SIZE(pts); i++) {
		assert_int_equal(ew_walk(e.ept.eptp, 46, pts[i], &r), EW_OK);
		assert_int_equal(r.hpa, pts[i]);
		assert_int_equal(r.mt, mtrr_type(&e.mtrr, pts[i]));
		assert_non_null(ept_leaf(&e.ept, pts[i], &level));
	}
	assert_int_equal(ew_walk(e.ept.eptp, 46, (1ULL << 40) + 5, &r), EW_OK);
	assert_int_equal(r.mt, MT_WC);
	assert_int_equal(r.level, 3);
	assert_int_equal(ew_walk(e.ept.eptp, 46, (1ULL << 46) - 1, &r), EW_OK);
	assert_int_equal(r.mt, MT_UC);
	assert_int_equal(r.level, 1);
	assert_int_equal(ew_walk(e.ept.eptp, 46, 700 * GiB, &r), EW_OK);
	assert_int_equal(r.level, 2);
	assert_int_equal(r.mt, MT_UC);
	assert_null(ept_leaf(&e.ept, 1ULL << 46, &level));
	assert_null(ept_leaf(&e.ept, 1ULL << 48, &level));
	ept_destroy(&e.ept);
}

/* ---- split and merge ---- */

#define NSNAP 6000
static u64 snap_gpa[NSNAP];
static struct ew_result snap[NSNAP];
static size_t nsnap;

static void snap_add(struct env *e, u64 gpa)
{
	if (nsnap < NSNAP) {
		snap_gpa[nsnap] = gpa;
		ew_walk(e->ept.eptp, e->maxphy, gpa, &snap[nsnap++]);
	}
}

static void snap_take(struct env *e, const u64 *around, size_t n)
{
	nsnap = 0;
	for (size_t i = 0; i < n; i++)
		for (u64 g = ALIGN_DOWN(around[i], SZ_2M); g < ALIGN_DOWN(around[i], SZ_2M) + SZ_2M;
		     g += PAGE_SIZE)
			snap_add(e, g + (g >> 12) % PAGE_SIZE);
	while (nsnap < NSNAP)
		snap_add(e, rnd() & (e->limit - 1));
}

static void snap_compare(struct env *e)
{
	for (size_t i = 0; i < nsnap; i++) {
		struct ew_result r;

		ew_walk(e->ept.eptp, e->maxphy, snap_gpa[i], &r);
		if (r.status != snap[i].status || r.hpa != snap[i].hpa || r.perm != snap[i].perm ||
		    r.mt != snap[i].mt || r.ipat != snap[i].ipat)
			fail_msg("gpa %#llx changed translation", (unsigned long long)snap_gpa[i]);
	}
}

static u64 veto_gpa;
static u64 keep_one(void *ctx, u64 gpa)
{
	(void)ctx;
	return gpa == veto_gpa;
}

static void test_split_merge(void **state)
{
	(void)state;
	struct env e;
	int level = 0;
	u64 *leaf;
	const u64 p1 = 5 * GiB + 0x123, p2 = 0x2345678, p3 = 0x7fe35000 + 0x10000;
	const u64 around[] = { p1, p2, p3 };
	u64 t0;

	setup(&e, mk_ovmf, 39, true, 0x7fe35000);
	assert_int_equal(ept_build_identity(&e.ept, &e.p), 0);
	t0 = e.ept.tables;
	snap_take(&e, around, ARRAY_SIZE(around));

	assert_non_null(leaf = ept_leaf(&e.ept, p1, &level));
	assert_int_equal(level, 3);
	assert_int_equal(ept_split(&e.ept, p1, 3), 0); /* already small enough */
	assert_int_equal(e.ept.tables, t0);
	assert_int_equal(ept_split(&e.ept, p1, 2), 0);
	assert_non_null(ept_leaf(&e.ept, p1, &level));
	assert_int_equal(level, 2);
	assert_int_equal(ept_split(&e.ept, p1, 1), 0);
	assert_non_null(ept_leaf(&e.ept, p1, &level));
	assert_int_equal(level, 1);
	assert_int_equal(e.ept.tables, t0 + 2);
	assert_int_equal(ept_split(&e.ept, p2, 1), 0); /* a 2 MiB leaf */
	assert_non_null(ept_leaf(&e.ept, p2, &level));
	assert_int_equal(level, 1);
	assert_int_equal(e.ept.tables, t0 + 3);
	assert_int_equal(ept_split(&e.ept, p3, 1), 0); /* region pages are 4 KiB already */
	assert_int_equal(e.ept.tables, t0 + 3);
	assert_int_equal(ept_split(&e.ept, 9 * GiB + 17, 1), 0); /* 1 GiB -> 4 KiB in one call */
	assert_int_equal(e.ept.tables, t0 + 5);
	assert_int_equal(ept_split(&e.ept, 1ULL << 39, 1), -EFAULT);
	assert_int_equal(ept_split(&e.ept, p1, 0), -EINVAL);
	assert_int_equal(ept_split(&e.ept, p1, 4), -EINVAL);
	snap_compare(&e);
	check_ept(&e, false, 8 * GiB);

	/* Merge back: refused where not uniform, vetoed by keep, else restored. */
	assert_false(ept_try_merge(&e.ept, 0, 2, NULL, NULL));  /* fixed ranges differ */
	assert_false(ept_try_merge(&e.ept, 0, 3, NULL, NULL));
	assert_false(ept_try_merge(&e.ept, p3, 2, NULL, NULL)); /* the region */
	assert_false(ept_try_merge(&e.ept, p1, 1, NULL, NULL));
	veto_gpa = ALIGN_DOWN(p1, SZ_2M) + 77 * PAGE_SIZE;
	assert_false(ept_try_merge(&e.ept, p1, 2, keep_one, NULL));
	assert_false(ept_try_merge(&e.ept, p1, 3, NULL, NULL)); /* its PD still holds a table */
	leaf = ept_leaf(&e.ept, p1 + PAGE_SIZE, &level);
	*leaf |= EPT_ACCESSED;
	veto_gpa = 1; /* no 4 KiB gpa is 1 */
	assert_true(ept_try_merge(&e.ept, p1, 2, keep_one, NULL));
	/* Unlinked: not present (an access retries) until finished, the table still held. */
	assert_null(ept_leaf(&e.ept, p1, &level));
	assert_true(ept_violation_stale(&e.ept, p1 + 5, EPT_R));
		assert_int_equal(e.ept.tables, t0 + 5);
	assert_int_equal(ept_merge_finish(&e.ept), 1);
	assert_int_equal(e.ept.tables, t0 + 4);
	assert_false(ept_violation_stale(&e.ept, p1 + 5, 0));
	assert_true(ept_violation_stale(&e.ept, p1 + 5, EPT_RWX)); /* merged meanwhile */
	assert_non_null(leaf = ept_leaf(&e.ept, p1, &level));
	assert_int_equal(level, 2);
	assert_true(*leaf & EPT_ACCESSED);
	*leaf &= ~EPT_ACCESSED;
	/* Cancelled: the table is linked back, nothing else changes. */
	assert_true(ept_try_merge(&e.ept, p2, 2, NULL, NULL));
	assert_null(ept_leaf(&e.ept, p2, &level));
	ept_merge_cancel(&e.ept);
	assert_non_null(ept_leaf(&e.ept, p2, &level));
	assert_int_equal(level, 1);
	assert_int_equal(ept_merge_finish(&e.ept), 0);
	assert_int_equal(e.ept.tables, t0 + 4);
	assert_true(ept_try_merge(&e.ept, p2, 2, NULL, NULL));
	assert_true(ept_try_merge(&e.ept, 9 * GiB, 2, NULL, NULL));
	assert_false(ept_try_merge(&e.ept, 9 * GiB, 3, NULL, NULL)); /* one entry is unlinked */
	assert_int_equal(ept_merge_finish(&e.ept), 2);
	assert_true(ept_try_merge(&e.ept, p1, 3, NULL, NULL));
	assert_true(ept_try_merge(&e.ept, 9 * GiB, 3, NULL, NULL));
	assert_int_equal(e.ept.tables, t0 + 2); /* unlinked, not yet freed */
	assert_int_equal(ept_merge_finish(&e.ept), 2);
	assert_non_null(ept_leaf(&e.ept, p1, &level));
	assert_int_equal(level, 3);
	assert_int_equal(e.ept.tables, t0);
	snap_compare(&e);
	check_ept(&e, true, 8 * GiB); /* maximal again */

	/* 4 KiB leaves with the SPP bit set cannot become one large leaf. */
	assert_int_equal(ept_split(&e.ept, p2, 1), 0);
	for (u64 g = ALIGN_DOWN(p2, SZ_2M); g < ALIGN_DOWN(p2, SZ_2M) + SZ_2M; g += PAGE_SIZE)
		*ept_leaf(&e.ept, g, NULL) |= EPT_SPP;
	assert_false(ept_try_merge(&e.ept, p2, 2, NULL, NULL));
	ept_destroy(&e.ept);
	assert_int_equal(e.ept.tables, 0);
}

static void test_split_enomem(void **state)
{
	(void)state;
	struct env e;
	int level = 0;
	hpa_t *held = malloc(sizeof(hpa_t) * WIN_SIZE / PAGE_SIZE);
	size_t n = 0;

	setup(&e, mk_ovmf, 39, true, 0x7fe35000);
	assert_int_equal(ept_build_identity(&e.ept, &e.p), 0);
	u64 t0 = e.ept.tables;
	snap_take(&e, (const u64[]){ 5 * GiB }, 1);
	while ((held[n] = pmm_alloc_page()).v)
		n++;
	assert_int_equal(ept_split(&e.ept, 5 * GiB, 1), -ENOMEM);
	assert_non_null(ept_leaf(&e.ept, 5 * GiB, &level));
	assert_int_equal(level, 3);
	assert_int_equal(e.ept.tables, t0);
	/* With one page, the 1 GiB -> 2 MiB step succeeds and the next fails. */
	assert_true(pmm_free_page(held[--n]));
	assert_int_equal(ept_split(&e.ept, 5 * GiB, 1), -ENOMEM);
	assert_non_null(ept_leaf(&e.ept, 5 * GiB, &level));
	assert_int_equal(level, 2);
	snap_compare(&e);
	while (n)
		assert_true(pmm_free_page(held[--n]));
	free(held);
	assert_int_equal(ept_split(&e.ept, 5 * GiB, 1), 0);
	snap_compare(&e);
	ept_destroy(&e.ept);
}

static void test_build_errors(void **state)
{
	(void)state;
	struct env e;
	struct ept_params p;
	u64 free_before;

	/* 46 bits without 1 GiB leaves needs 64 Ki page directories: far more than the pool. */
	setup(&e, mk_ovmf, 46, false, 0x123456000);
	free_before = pmm_free_count();
	assert_int_equal(ept_build_identity(&e.ept, &e.p), -ENOMEM);
	assert_int_equal(pmm_free_count(), free_before);
	assert_int_equal(e.ept.tables, 0);
	assert_int_equal(e.ept.pml4.v, 0);
	/* A pool too small even for the tables of 1 GiB leaves. */
	e.p.has_1g = true;
	hpa_t hog = pmm_alloc_pages(pmm_free_count() - 3);
	assert_true(hog.v != 0);
	assert_int_equal(ept_build_identity(&e.ept, &e.p), -ENOMEM);
	assert_int_equal(pmm_free_count(), 3);
	for (u64 i = 0; i < free_before - 3; i++)
		assert_true(pmm_free_page(hpa(hog.v + i * PAGE_SIZE)));

	p = e.p;
	p.ff_page = hpa(0x1000); /* outside the region */
	assert_int_equal(ept_build_identity(&e.ept, &p), -EINVAL);
	p = e.p;
	p.ff_page = hpa(e.p.ff_page.v + 8);
	assert_int_equal(ept_build_identity(&e.ept, &p), -EINVAL);
	p = e.p;
	p.hv_base += 0x800;
	assert_int_equal(ept_build_identity(&e.ept, &p), -EINVAL);
	p = e.p;
	p.hv_size = 0;
	assert_int_equal(ept_build_identity(&e.ept, &p), -EINVAL); /* ff_page not inside */
	p = e.p;
	p.phys_bits = 11;
	assert_int_equal(ept_build_identity(&e.ept, &p), -EINVAL);
	p = e.p;
	p.mtrr = NULL;
	assert_int_equal(ept_build_identity(&e.ept, &p), -EINVAL);
	assert_int_equal(pmm_free_count(), free_before);
	/* Level-3 merges need 1 GiB leaves: refused on an EPT built without them. */
	setup(&e, mk_ovmf, 36, false, 0x123456000);
	assert_int_equal(ept_build_identity(&e.ept, &e.p), 0);
	assert_false(ept_try_merge(&e.ept, 5 * GiB, 3, NULL, NULL));
	/* Above 2^36 but under the present PML4 entry 0: not mapped, at any level. */
	for (int l = 1; l <= 3; l++)
		assert_int_equal(ept_split(&e.ept, 1ULL << 37, l), -EFAULT);
	assert_null(ept_leaf(&e.ept, 1ULL << 37, NULL));
	ept_destroy(&e.ept);
}

static void test_eptp(void **state)
{
	(void)state;
	assert_int_equal(ept_make_eptp(hpa(0x12345000), false), 0x12345000 | 6 | (3 << 3));
	assert_int_equal(ept_make_eptp(hpa(0x12345000), true), 0x12345000 | 6 | (3 << 3) | 0x40);
	assert_null(ew_check_eptp(ept_make_eptp(hpa(0xfffff000), true), 36));
}

/* The walker itself must catch the errors it exists to catch. */
static void test_walker_catches(void **state)
{
	(void)state;
	struct env e;
	struct ew_result r;
	int level;
	u64 *leaf, save;

	setup(&e, mk_ovmf, 39, true, 0x7fe35000);
	assert_int_equal(ept_build_identity(&e.ept, &e.p), 0);
	leaf = ept_leaf(&e.ept, 5 * GiB, &level);
	save = *leaf;
	*leaf |= 1ULL << 20; /* reserved in a 1 GiB leaf */
	assert_int_equal(ew_walk(e.ept.eptp, 39, 5 * GiB, &r), EW_MISCONFIG);
	*leaf = (save & ~EPT_MT_MASK) | (2ULL << EPT_MT_SHIFT);
	assert_int_equal(ew_walk(e.ept.eptp, 39, 5 * GiB, &r), EW_MISCONFIG);
	*leaf = save & ~EPT_R;
	assert_int_equal(ew_walk(e.ept.eptp, 39, 5 * GiB, &r), EW_MISCONFIG);
	*leaf = save | (1ULL << 40); /* above MAXPHYADDR 39 */
	assert_int_equal(ew_walk(e.ept.eptp, 39, 5 * GiB, &r), EW_MISCONFIG);
	*leaf = save & ~EPT_RWX;
	assert_int_equal(ew_walk(e.ept.eptp, 39, 5 * GiB, &r), EW_VIOLATION);
	*leaf = save;
	assert_int_equal(ew_walk(e.ept.eptp, 39, 5 * GiB, &r), EW_OK);
	assert_int_equal(ew_walk(e.ept.eptp | 0x100, 39, 5 * GiB, &r), EW_MISCONFIG);
	ept_destroy(&e.ept);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_eptp),
		cmocka_unit_test(test_walker_catches),
		cmocka_unit_test(test_scenarios),
		cmocka_unit_test(test_beyond_512g),
		cmocka_unit_test(test_split_merge),
		cmocka_unit_test(test_split_enomem),
		cmocka_unit_test(test_build_errors),
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);

	fake_phys_fini();
	return r;
}
