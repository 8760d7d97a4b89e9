/*
 * Host tests for spp/sppt.c, checked with the independent walker in sppt_walker.h against a
 * reference model of the permissions (a sorted array of gfn -> map in this file).
 *
 *   - sppt_vector/sppt_map: bit i <-> bit 2i, no odd bits, round trips, odd bits ignored;
 *   - eager (prepare + set) and lazy (invalidate + fill, also after several invalidations and
 *     model changes) over random and clustered pages: every protected page's every sub-page
 *     has the model's permission, every other page of a built block reads all-writable;
 *   - MISS (level 2) after invalidate; MISCONFIG at levels 2 and 1 after injection (and at
 *     levels 4/3 for bits 51:N and 63:52 written by hand), repaired by sppt_repair with the
 *     right count; reserved bits in a not-valid entry still read as a miss;
 *   - -ENOMEM from a small pmm region leaves every earlier page correct and the failed one a
 *     miss, and accounts every page;
 *   - table page counts: a dense 2 MiB region costs one leaf table plus its path (4 pages
 *     with the root); 512 pages one per GiB cost 2 tables each plus root and one L3; the
 *     bytes per protected page are printed;
 *   - unlink/reclaim of leaf tables and destroy return every page to the pmm.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arch/ept.h>
#include <hw.h>
#include "mm/pmm.h"
#include "spp/sppt.h"
#include "spp/store.h"
#include "sppt_walker.h"

#define MiB (1ULL << 20)
#define GiB (1ULL << 30)
#define WIN (FAKE_PHYS_BASE + 0x5000)
#define WIN_SIZE (16 * MiB)
#define PB 40

static u64 rng;
static u64 rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static u32 rnd_map(void)
{
	switch (rnd() % 6) {
	case 0: return 0;
	case 1: return (u32)rnd() | 1; /* random, never SPP_MAP_ALL in practice */
	case 2: return ~(1u << (rnd() % 32));
	case 3: return 1u << (rnd() % 32);
	default: return (u32)rnd() == SPP_MAP_ALL ? 0 : (u32)rnd() & 0x7fffffff;
	}
}

/* ---- the reference model: sorted gfn -> map, protected pages only ---- */

#define MAXP 8192
static struct { u64 n; u64 gfn[MAXP]; u32 map[MAXP]; } M;

static u64 m_pos(u64 gfn) /* first index with gfn[i] >= gfn */
{
	u64 lo = 0, hi = M.n;

	while (lo < hi) {
		u64 mid = (lo + hi) / 2;
		if (M.gfn[mid] < gfn)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static u32 m_map(u64 gfn)
{
	u64 i = m_pos(gfn);
	return i < M.n && M.gfn[i] == gfn ? M.map[i] : SPP_MAP_ALL;
}

static void m_set(u64 gfn, u32 map)
{
	u64 i = m_pos(gfn);
	bool have = i < M.n && M.gfn[i] == gfn;

	if (map == SPP_MAP_ALL) {
		if (have) {
			memmove(&M.gfn[i], &M.gfn[i + 1], (M.n - i - 1) * sizeof(u64));
			memmove(&M.map[i], &M.map[i + 1], (M.n - i - 1) * sizeof(u32));
			M.n--;
		}
		return;
	}
	if (!have) {
		assert_true(M.n < MAXP);
		memmove(&M.gfn[i + 1], &M.gfn[i], (M.n - i) * sizeof(u64));
		memmove(&M.map[i + 1], &M.map[i], (M.n - i) * sizeof(u32));
		M.gfn[i] = gfn;
		M.n++;
	}
	M.map[i] = map;
}

static u64 map_of_calls;
static u32 map_of(void *ctx, u64 gfn)
{
	(void)ctx;
	map_of_calls++;
	return m_map(gfn);
}

/* ---- setup and checks ---- */

static void setup_window(u64 size)
{
	fake_reset();
	fake_phys_init(WIN, size);
	pmm_init(hpa(WIN), size);
	memset(&M, 0, sizeof(M));
	rng = 0x9e3779b97f4a7c15ULL;
	map_of_calls = 0;
}

static u64 used_pages(void) { return pmm_total_count() - pmm_free_count(); }

/* Every sub-page of gfn reads the model's map (a protected page is walked once per
 * sub-page). */
static void check_page(const struct sppt *t, u64 gfn)
{
	u32 want = m_map(gfn);
	struct sw_result r;

	if (want == SPP_MAP_ALL) {
		/* One walk: the walker's vector is every sub-page's permission. */
		if (sw_walk(t->root.v, t->phys_bits, gfn << 12 | (rnd() & 0xfff), &r) != SW_OK)
			fail_msg("unprotected gfn %#llx: status %d at level %d",
				 (unsigned long long)gfn, r.status, r.level);
		assert_int_equal(r.vector, 0x5555555555555555ULL);
		return;
	}
	for (u64 i = 0; i < 32; i++) {
		u64 gpa = gfn << 12 | i << 7 | (rnd() & 127);

		if (sw_walk(t->root.v, t->phys_bits, gpa, &r) != SW_OK)
			fail_msg("gfn %#llx sub-page %llu: status %d at level %d", (unsigned long long)gfn,
				 (unsigned long long)i, r.status, r.level);
		if (r.writable != ((want >> i) & 1))
			fail_msg("gfn %#llx sub-page %llu: writable %d, map %#x", (unsigned long long)gfn,
				 (unsigned long long)i, r.writable, want);
	}
	assert_int_equal(r.vector, sppt_vector(want));
}

static void check_block(const struct sppt *t, u64 gfn)
{
	u64 g0 = gfn & ~511ULL;

	for (u64 g = g0; g < g0 + 512; g++)
		check_page(t, g);
}

static void check_model(const struct sppt *t)
{
	for (u64 i = 0; i < M.n; i++)
		check_page(t, M.gfn[i]);
}

static int status_at(const struct sppt *t, u64 gpa, int *level)
{
	struct sw_result r;

	sw_walk(t->root.v, t->phys_bits, gpa, &r);
	if (level)
		*level = r.level;
	return r.status;
}

/* A random page: anywhere below 2^48 or clustered around a few bases. */
static u64 rnd_gfn(void)
{
	static const u64 bases[] = { 0x100, 0x3ff00, 0x7ffff000ULL >> 12, (1ULL << 36) - 1600 };

	if (rnd() % 3 == 0)
		return rnd() & ((1ULL << 36) - 1);
	return bases[rnd() % 4] + rnd() % 1500;
}

/* ---- tests ---- */

static void test_vector(void **state)
{
	(void)state;
	assert_int_equal(sppt_vector(0), 0);
	assert_int_equal(sppt_vector(SPP_MAP_ALL), SPPT_VECTOR_ALL);
	assert_int_equal(sppt_map(SPPT_VECTOR_ALL), SPP_MAP_ALL);
	assert_int_equal(sppt_map(~SPPT_VECTOR_ALL), 0);
	for (int i = 0; i < 32; i++)
		assert_int_equal(sppt_vector(1u << i), 1ULL << (2 * i));
	rng = 12345;
	for (int k = 0; k < 100000; k++) {
		u32 m = (u32)rnd();
		u64 v = sppt_vector(m);

		assert_int_equal(v & SPPT_LEAF_ODD_BITS, 0);
		for (int i = 0; i < 32; i++)
			assert_int_equal((v >> (2 * i)) & 1, (m >> i) & 1);
		assert_int_equal(sppt_map(v), m);
		assert_int_equal(sppt_map(v | (rnd() & SPPT_LEAF_ODD_BITS)), m);
	}
}

static void test_init(void **state)
{
	struct sppt t;
	int level;

	(void)state;
	setup_window(WIN_SIZE);
	assert_int_equal(sppt_init(&t, 31), -EINVAL);
	assert_int_equal(sppt_init(&t, 53), -EINVAL);
	assert_int_equal(sppt_init(&t, PB), 0);
	assert_int_equal(t.pages, 1);
	assert_int_equal(sppt_bytes(&t), 4096);
	assert_true(IS_ALIGNED(t.root.v, PAGE_SIZE));
	assert_int_equal(status_at(&t, 0x1234567, &level), SW_MISS);
	assert_int_equal(level, 4);
	assert_int_equal(sppt_prepare(&t, SPPT_GPA_LIMIT >> 12), -EINVAL);
	assert_int_equal(sppt_fill_2m(&t, SPPT_GPA_LIMIT, map_of, NULL), -EINVAL);
	assert_int_equal(sppt_repair(&t, SPPT_GPA_LIMIT, map_of, NULL), -EINVAL);
	assert_int_equal(sppt_inject_misconfig(&t, 0, 2), -EFAULT);
	assert_int_equal(sppt_inject_misconfig(&t, 0, 3), -EINVAL);
	sppt_set(&t, 5, 0); /* no path: nothing happens */
	sppt_invalidate_2m(&t, 5);
	assert_int_equal(t.pages, 1);
	sppt_destroy(&t);
	assert_int_equal(used_pages(), 0);
}

static void eager_set(struct sppt *t, u64 gfn, u32 map)
{
	assert_int_equal(sppt_prepare(t, gfn), 0);
	m_set(gfn, map);
	sppt_set(t, gfn, map);
}

static void test_eager_random(void **state)
{
	static u64 blocks[MAXP];
	u64 nb = 0;
	struct sppt t;

	(void)state;
	setup_window(WIN_SIZE);
	assert_int_equal(sppt_init(&t, PB), 0);
	for (int k = 0; k < 3000; k++) {
		u64 g = rnd_gfn();
		u32 m = rnd() % 8 == 0 ? SPP_MAP_ALL : rnd_map();

		eager_set(&t, g, m);
		blocks[nb++] = g;
		if (k % 500 == 0)
			check_model(&t);
	}
	/* Re-set and unprotect some pages. */
	for (u64 i = 0; i < M.n; i += 3) {
		u64 g = M.gfn[i];

		eager_set(&t, g, i % 2 ? SPP_MAP_ALL : rnd_map());
	}
	check_model(&t);
	for (u64 i = 0; i < nb; i += 7)
		check_block(&t, blocks[i]);
	/* A page in no prepared block is a miss. */
	assert_int_equal(status_at(&t, (1ULL << 47) + 0x1000, NULL), SW_MISS);
	assert_int_equal(used_pages(), t.pages);
	sppt_destroy(&t);
	assert_int_equal(used_pages(), 0);
}

static void test_lazy_random(void **state)
{
	static u64 blocks[MAXP];
	u64 nb = 0, pages;
	struct sppt t;
	int level;

	(void)state;
	setup_window(WIN_SIZE);
	assert_int_equal(sppt_init(&t, PB), 0);
	for (int k = 0; k < 2000; k++)
		m_set(rnd_gfn(), rnd_map());
	/* Fill every block holding a protected page, on a "miss" at a random offset. */
	for (u64 i = 0; i < M.n; i++) {
		u64 b = M.gfn[i] >> 9;

		if (nb && blocks[nb - 1] == b)
			continue;
		blocks[nb++] = b;
		assert_int_equal(status_at(&t, M.gfn[i] << 12, NULL), SW_MISS);
		map_of_calls = 0;
		assert_int_equal(sppt_fill_2m(&t, b << 21 | (rnd() & (SZ_2M - 1)), map_of, NULL), 0);
		assert_int_equal(map_of_calls, 512);
	}
	for (u64 i = 0; i < nb; i++)
		check_block(&t, blocks[i] << 9);
	pages = t.pages;

	/* Rounds of changes: each changed block is invalidated (some several times), read as a
	 * miss at level 2 everywhere, then filled again, reusing its leaf table. */
	for (int round = 0; round < 5; round++) {
		for (int k = 0; k < 300; k++) {
			u64 b = blocks[rnd() % nb], g = b << 9 | (rnd() % 512);

			m_set(g, rnd() % 4 == 0 ? SPP_MAP_ALL : rnd_map());
			sppt_invalidate_2m(&t, g);
			if (k % 3 == 0)
				sppt_invalidate_2m(&t, g ^ 1);
			for (u64 p = 0; p < 512; p += 97) {
				assert_int_equal(status_at(&t, (b << 9 | p) << 12, &level), SW_MISS);
				assert_int_equal(level, 2);
			}
		}
		for (u64 i = 0; i < nb; i++)
			if (status_at(&t, blocks[i] << 21, NULL) == SW_MISS)
				assert_int_equal(sppt_fill_2m(&t, blocks[i] << 21 | 0x777, map_of, NULL), 0);
		for (u64 i = 0; i < nb; i++)
			check_block(&t, blocks[i] << 9);
		assert_int_equal(t.pages, pages);
	}
	/* Prepare keeps an invalidated block invalid; set writes a vector a fill overrides. */
	sppt_invalidate_2m(&t, blocks[0] << 9);
	assert_int_equal(sppt_prepare(&t, blocks[0] << 9), 0);
	sppt_set(&t, blocks[0] << 9, 0x12345678);
	assert_int_equal(status_at(&t, blocks[0] << 21, NULL), SW_MISS);
	assert_int_equal(sppt_fill_2m(&t, blocks[0] << 21, map_of, NULL), 0);
	check_block(&t, blocks[0] << 9);
	assert_int_equal(used_pages(), t.pages);
	sppt_destroy(&t);
	assert_int_equal(used_pages(), 0);
}

/* Lazy refill from the dirty record (sppt_invalidate_range): after a fill, a change of k
 * pages makes the next fill call map_of for those k pages only; a mix of ranges, whole-block
 * invalidations, more blocks than records (evictions: whole refill) and an unlinked table
 * always ends in exactly the model's vectors. */
static void test_lazy_dirty_refill(void **state)
{
	static u64 blocks[64];
	u64 nb = SPPT_DIRTY_MAX + 4, changed; /* more blocks than records */
	struct sppt t;

	(void)state;
	setup_window(WIN_SIZE);
	assert_int_equal(sppt_init(&t, PB), 0);
	for (u64 i = 0; i < nb; i++) {
		blocks[i] = 0x300 + i * 3;
		assert_int_equal(sppt_prepare(&t, blocks[i] << 9), 0);
		map_of_calls = 0;
		assert_int_equal(sppt_fill_2m(&t, blocks[i] << 21, map_of, NULL), 0);
		assert_int_equal(map_of_calls, 512); /* no record: whole */
	}
	/* One page changed: one map_of call. */
	u64 g = blocks[0] << 9 | 17;
	m_set(g, 0x1);
	sppt_invalidate_range(&t, g, 1);
	assert_int_equal(status_at(&t, g << 12, NULL), SW_MISS);
	map_of_calls = 0;
	assert_int_equal(sppt_fill_2m(&t, g << 12, map_of, NULL), 0);
	assert_int_equal(map_of_calls, 1);
	check_block(&t, g);
	/* Two ranges in one block accumulate; an invalidate_2m on top means whole. */
	m_set(g + 1, 0x2);
	m_set(g + 300, 0x3);
	sppt_invalidate_range(&t, g + 1, 1);
	sppt_invalidate_range(&t, g + 300, 5);
	map_of_calls = 0;
	assert_int_equal(sppt_fill_2m(&t, g << 12, map_of, NULL), 0);
	assert_int_equal(map_of_calls, 6);
	check_block(&t, g);
	sppt_invalidate_range(&t, g, 2);
	sppt_invalidate_2m(&t, g);
	map_of_calls = 0;
	assert_int_equal(sppt_fill_2m(&t, g << 12, map_of, NULL), 0);
	assert_int_equal(map_of_calls, 512);
	/* Random rounds over more blocks than records. */
	for (int round = 0; round < 30; round++) {
		changed = 0;
		for (int k = 0; k < 60; k++) {
			u64 b = blocks[rnd() % nb], p = rnd() % 512, n = 1 + rnd() % (512 - p);

			if (n > 8 && rnd() % 8)
				n = 1 + rnd() % 8;
			for (u64 j = 0; j < n; j++)
				m_set(b << 9 | (p + j), rnd() % 2 == 0 ? SPP_MAP_ALL : rnd_map());
			if (rnd() % 20 == 0)
				sppt_invalidate_2m(&t, b << 9);
			else
				sppt_invalidate_range(&t, b << 9 | p, n);
			changed += n;
		}
		assert_true(t.ndirty <= SPPT_DIRTY_MAX);
		map_of_calls = 0;
		for (u64 i = 0; i < nb; i++)
			if (status_at(&t, blocks[i] << 21, NULL) == SW_MISS)
				assert_int_equal(sppt_fill_2m(&t, blocks[i] << 21 | 0x5000, map_of, NULL), 0);
		assert_int_equal(t.ndirty, 0);
		for (u64 i = 0; i < nb; i++)
			check_block(&t, blocks[i] << 9);
	}
	/* An unlinked block's record goes with its table: the new table is filled whole. */
	m_set(blocks[1] << 9 | 5, 0x7);
	sppt_invalidate_range(&t, blocks[1] << 9 | 5, 1);
	for (u64 j = 0; j < 512; j++)
		m_set(blocks[1] << 9 | j, SPP_MAP_ALL);
	assert_true(sppt_unlink_2m(&t, blocks[1] << 9));
	sppt_reclaim(&t);
	m_set(blocks[1] << 9 | 9, 0x9);
	map_of_calls = 0;
	assert_int_equal(sppt_fill_2m(&t, blocks[1] << 21, map_of, NULL), 0);
	assert_int_equal(map_of_calls, 512);
	check_block(&t, blocks[1] << 9);
	sppt_destroy(&t);
	assert_int_equal(used_pages(), 0);
}

static void test_misconfig(void **state)
{
	struct sppt t;
	u64 g = 0x12345, gpa = g << 12 | 0x280, other = (g ^ 7) << 12;
	u64 *root, *l3;
	int level;

	(void)state;
	setup_window(WIN_SIZE);
	assert_int_equal(sppt_init(&t, PB), 0);
	m_set(g, 0xdeadbeef);
	m_set(g ^ 7, 0x0000ffff);
	assert_int_equal(sppt_fill_2m(&t, gpa, map_of, NULL), 0);
	check_block(&t, g);
	assert_int_equal(sppt_repair(&t, gpa, map_of, NULL), 0);

	/* Level 2: every page of the block is misconfigured. */
	assert_int_equal(sppt_inject_misconfig(&t, gpa, 2), 0);
	assert_int_equal(status_at(&t, gpa, &level), SW_MISCONFIG);
	assert_int_equal(level, 2);
	assert_int_equal(status_at(&t, other, &level), SW_MISCONFIG);
	assert_int_equal(sppt_repair(&t, gpa, map_of, NULL), 1);
	check_block(&t, g);

	/* Level 1: only that page. */
	assert_int_equal(sppt_inject_misconfig(&t, gpa, 1), 0);
	assert_int_equal(status_at(&t, gpa, &level), SW_MISCONFIG);
	assert_int_equal(level, 1);
	check_page(&t, g ^ 7);
	assert_int_equal(sppt_repair(&t, gpa, map_of, NULL), 1);
	check_block(&t, g);

	/* Both levels at once. */
	assert_int_equal(sppt_inject_misconfig(&t, gpa, 1), 0);
	assert_int_equal(sppt_inject_misconfig(&t, gpa, 2), 0);
	assert_int_equal(sppt_repair(&t, gpa, map_of, NULL), 2);
	check_block(&t, g);
	assert_int_equal(sppt_repair(&t, gpa, map_of, NULL), 0);

	/* Reserved bits written by hand: 63:52 in L4, 51:MAXPHYADDR and 11:1 in L3. */
	root = hpa_to_ptr(t.root);
	root[PT_INDEX(gpa, 4)] |= 1ULL << 60;
	assert_int_equal(status_at(&t, gpa, &level), SW_MISCONFIG);
	assert_int_equal(level, 4);
	l3 = hpa_to_ptr(hpa(root[PT_INDEX(gpa, 4)] & t.addr_mask));
	l3[PT_INDEX(gpa, 3)] |= 1ULL << PB | 1ULL << 11;
	assert_int_equal(sppt_repair(&t, gpa, map_of, NULL), 2);
	check_block(&t, g);

	/* A not-valid entry with reserved bits is a miss, and nothing to repair. */
	sppt_invalidate_2m(&t, g);
	assert_int_equal(sppt_inject_misconfig(&t, gpa, 2), 0);
	assert_int_equal(status_at(&t, gpa, &level), SW_MISS);
	assert_int_equal(level, 2);
	assert_int_equal(sppt_repair(&t, gpa, map_of, NULL), 0);
	assert_int_equal(sppt_fill_2m(&t, gpa, map_of, NULL), 0); /* also drops the junk */
	check_block(&t, g);
	assert_int_equal(t.pages, 4);
	sppt_destroy(&t);
	assert_int_equal(used_pages(), 0);
}

/* Prepares pages until the pmm runs dry; after every failure all earlier pages still read
 * correctly, the failed one is a miss, and every allocated page is accounted for. */
static void test_enomem(void **state)
{
	struct sppt t;
	int fails = 0, ok = 0;

	(void)state;
	setup_window(24 * PAGE_SIZE); /* 1 bitmap page + 23 */
	assert_int_equal(sppt_init(&t, PB), 0);
	for (int k = 0; k < 200; k++) {
		u64 g = k % 2 ? rnd() & ((1ULL << 36) - 1) : (rnd() % 16) << 18 | (rnd() % 512);
		int r = sppt_prepare(&t, g);

		assert_int_equal(used_pages(), t.pages);
		if (r == 0) {
			u32 m = rnd_map();

			m_set(g, m);
			sppt_set(&t, g, m);
			ok++;
		} else {
			assert_int_equal(r, -ENOMEM);
			fails++;
			sppt_set(&t, g, 0); /* no table: must not write anywhere */
			if (m_map(g) == SPP_MAP_ALL && status_at(&t, g << 12, NULL) != SW_MISS)
				fail_msg("failed gfn %#llx does not miss", (unsigned long long)g);
			check_model(&t);
		}
	}
	assert_true(fails > 0 && ok > 0);
	assert_int_equal(pmm_free_count(), 0);

	/* fill_2m: the path exists but no page for the leaf: the block stays a miss. */
	{
		u64 g = 0;

		for (u64 i = 0; i < M.n && !g; i++)
			if (status_at(&t, (M.gfn[i] ^ 512) << 12, NULL) == SW_MISS)
				g = M.gfn[i] ^ 512;
		assert_true(g != 0);
		m_set(g, 0);
		assert_int_equal(sppt_fill_2m(&t, g << 12, map_of, NULL), -ENOMEM);
		assert_int_equal(status_at(&t, g << 12, NULL), SW_MISS);
		m_set(g, SPP_MAP_ALL);
	}
	check_model(&t);
	assert_int_equal(used_pages(), t.pages);
	sppt_destroy(&t);
	assert_int_equal(used_pages(), 0);
}

static void test_counts(void **state)
{
	struct sppt t;
	u64 base = 0x40000 + 512 * 3; /* a 2 MiB block at 1 GiB + 6 MiB */
	double dense, scattered;

	(void)state;
	setup_window(WIN_SIZE);

	/* Dense, lazy: every page of one block protected. */
	assert_int_equal(sppt_init(&t, PB), 0);
	for (u64 i = 0; i < 512; i++)
		m_set(base + i, (u32)i);
	assert_int_equal(sppt_fill_2m(&t, base << 12, map_of, NULL), 0);
	assert_int_equal(t.pages, 4); /* root, L3, L2, one leaf */
	check_block(&t, base);
	dense = (double)sppt_bytes(&t) / 512;
	/* The neighbouring block shares the path: one more leaf. */
	assert_int_equal(sppt_fill_2m(&t, (base + 512) << 12, map_of, NULL), 0);
	assert_int_equal(t.pages, 5);
	sppt_destroy(&t);

	/* Dense, eager. */
	assert_int_equal(sppt_init(&t, PB), 0);
	for (u64 i = 0; i < 512; i++) {
		assert_int_equal(sppt_prepare(&t, base + i), 0);
		sppt_set(&t, base + i, (u32)i);
	}
	assert_int_equal(t.pages, 4);
	check_block(&t, base);
	sppt_destroy(&t);

	/* Scattered: 512 pages, one per GiB (all under one L4 entry). */
	memset(&M, 0, sizeof(M));
	assert_int_equal(sppt_init(&t, PB), 0);
	for (u64 i = 0; i < 512; i++) {
		u64 g = (i << 18) + 0x1234;

		assert_int_equal(sppt_prepare(&t, g), 0);
		m_set(g, 0);
		sppt_set(&t, g, 0);
	}
	assert_int_equal(t.pages, 1 + 1 + 512 * 2);
	check_model(&t);
	scattered = (double)sppt_bytes(&t) / 512;
	print_message("SPPT bytes per protected page: dense 2 MiB block %.0f, "
		      "512 pages one per GiB %.0f\n", dense, scattered);
	sppt_destroy(&t);
	assert_int_equal(used_pages(), 0);
}

static void test_unlink_reclaim(void **state)
{
	struct sppt t;
	u64 free0;

	(void)state;
	setup_window(WIN_SIZE);
	assert_int_equal(sppt_init(&t, PB), 0);
	m_set(0x777, 0x1);
	assert_int_equal(sppt_fill_2m(&t, 0x777000, map_of, NULL), 0);
	assert_int_equal(sppt_fill_2m(&t, 0x777000 + SZ_2M, map_of, NULL), 0);
	assert_int_equal(t.pages, 5);
	free0 = pmm_free_count();
	assert_false(sppt_unlink_2m(&t, 0x777 + 5 * 512)); /* no leaf table there */
	m_set(0x777, SPP_MAP_ALL);
	assert_true(sppt_unlink_2m(&t, 0x777));
	assert_int_equal(status_at(&t, 0x777000, NULL), SW_MISS);
	check_page(&t, 0x777 + 512);
	assert_int_equal(t.pages, 5);           /* still held until reclaim */
	assert_int_equal(pmm_free_count(), free0);
	assert_int_equal(sppt_reclaim(&t), 1);
	assert_int_equal(t.pages, 4);
	assert_int_equal(pmm_free_count(), free0 + 1);
	assert_false(sppt_unlink_2m(&t, 0x777)); /* gone */
	/* A new fill builds a fresh leaf. */
	m_set(0x777, 0x3);
	assert_int_equal(sppt_fill_2m(&t, 0x777000, map_of, NULL), 0);
	check_block(&t, 0x777);

	/* A block alone under its L4 entry: its leaf, L2 and L3 tables all go (3 pages), the
	 * root stays; a walk there is a miss at level 4. */
	u64 far = 600 * GiB;
	u64 pages = t.pages;
	assert_int_equal(sppt_fill_2m(&t, far, map_of, NULL), 0);
	assert_int_equal(t.pages, pages + 3);
	assert_true(sppt_unlink_2m(&t, far >> 12));
	assert_int_equal(sppt_reclaim(&t), 3);
	assert_int_equal(t.pages, pages);
	assert_int_equal(status_at(&t, far, NULL), SW_MISS);
	assert_int_equal(((u64 *)hpa_to_ptr(t.root))[1], 0);
	check_block(&t, 0x777); /* the other GiB is untouched */

	/* The retire list is bounded: an unlink needs room for 3 tables. */
	for (u64 i = 0; i < SPPT_RETIRE_MAX; i++)
		assert_int_equal(sppt_fill_2m(&t, (100 + i) << 21, map_of, NULL), 0);
	for (u64 i = 0; i < SPPT_RETIRE_MAX - 2; i++)
		assert_true(sppt_unlink_2m(&t, (100 + i) << 9));
	assert_false(sppt_unlink_2m(&t, 0x777));
	assert_int_equal(sppt_reclaim(&t), SPPT_RETIRE_MAX - 2);
	assert_true(sppt_unlink_2m(&t, 0x777));
	sppt_destroy(&t); /* frees the retired one too */
	assert_int_equal(used_pages(), 0);
}

/* MAXPHYADDR 52: no reserved address bits, tables still walk. */
static void test_phys52(void **state)
{
	struct sppt t;

	(void)state;
	setup_window(WIN_SIZE);
	assert_int_equal(sppt_init(&t, 52), 0);
	for (int k = 0; k < 200; k++)
		eager_set(&t, rnd_gfn(), rnd_map());
	check_model(&t);
	sppt_destroy(&t);
	assert_int_equal(used_pages(), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vector),
		cmocka_unit_test(test_init),
		cmocka_unit_test(test_eager_random),
		cmocka_unit_test(test_lazy_random),
		cmocka_unit_test(test_misconfig),
		cmocka_unit_test(test_enomem),
		cmocka_unit_test(test_counts),
		cmocka_unit_test(test_unlink_reclaim),
		cmocka_unit_test(test_lazy_dirty_refill),
		cmocka_unit_test(test_phys52),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
