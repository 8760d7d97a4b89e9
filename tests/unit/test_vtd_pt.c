/*
 * Host tests for the DMA page tables (drivers/vtd_pt.c), checked with the independent walker
 * in vtd_walker.h against the test's own list of what is RAM:
 *   - every 4 KiB page below the top of RAM (+ 1 GiB) translates to itself read+write exactly
 *     when it is RAM outside the hypervisor's region or in an RMRR, and faults otherwise;
 *     the region (which is also where the tables live) never translates;
 *   - with and without 2 MiB leaves, 3- and 4-level tables;
 *   - protecting a page (prepare + read-only) makes that page alone read-only for DMA, in a
 *     2 MiB leaf too (split), and unprotecting restores it;
 *   - RAM beyond a 3-level table's reach is counted, not mapped; an RMRR over the region and
 *     exhaustion of the region are refused.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <hw.h>
#include "drivers/vtd_pt.h"
#include "mm/memmap.h"
#include "mm/pmm.h"
#include "vtd_walker.h"

#define MiB (1ULL << 20)
#define GiB (1ULL << 30)
#define WIN (FAKE_PHYS_BASE + 0x3000) /* the hypervisor's region: not 2 MiB aligned */
#define WIN_SIZE (16 * MiB)

static const struct tessel_mem_range layout[] = {
	{ 0x0, 0x9f, EFI_MT_CONVENTIONAL, 0 },
	{ 0x9f000, 1, EFI_MT_RESERVED, 0 },
	{ 0x100000, 0x700, EFI_MT_CONVENTIONAL, 0 },
	{ 0x800000, 8, EFI_MT_ACPI_NVS, 0 },
	{ 0x808000, 8, EFI_MT_CONVENTIONAL, 0 },
	{ 0x810000, (0x3f000000 - 0x810000) / 4096, EFI_MT_BS_DATA, 0 },
	{ 0x3f000000, 1, EFI_MT_MMIO, 0 },
	{ 0x3f001000, (0x7f800000 - 0x3f001000) / 4096, EFI_MT_CONVENTIONAL, 0 },
	{ 0x7f800000, 0x800, EFI_MT_RESERVED, 0 },
	{ 0x100000000ULL, 2 * GiB / 4096, EFI_MT_CONVENTIONAL, 0 },
};

static const struct dmar_rmrr rmrrs[] = {
	{ .base = 0x7f800000, .end = 0x7fa00000, .scope_count = 1 },  /* reserved memory */
	{ .base = 0x9f000, .end = 0xa0000, .scope_count = 1 },         /* a reserved page in low RAM */
};

/* The test's own answer: is the page at a RAM (by type), outside the region? */
static bool expect_ram(u64 a)
{
	if (a >= WIN && a < WIN + WIN_SIZE)
		return false;
	for (size_t i = 0; i < ARRAY_SIZE(layout); i++) {
		const struct tessel_mem_range *r = &layout[i];
		bool ram = r->type == EFI_MT_CONVENTIONAL || r->type == EFI_MT_BS_DATA || r->type == EFI_MT_ACPI_NVS;
		if (a >= r->base && a < r->base + r->pages * 4096)
			return ram;
	}
	return false;
}

static bool expect_rmrr(u64 a, u32 n)
{
	for (u32 i = 0; i < n; i++)
		if (a >= rmrrs[i].base && a < rmrrs[i].end)
			return true;
	return false;
}

static void setup_mem(const struct tessel_mem_range *l, u32 n)
{
	fake_reset();
	fake_phys_init(WIN, WIN_SIZE);
	pmm_init(hpa(WIN), WIN_SIZE);
	memmap_init(l, n, WIN, WIN_SIZE);
}

static struct vtd_pt build(u32 levels, bool large, u32 nrmrr)
{
	struct vtd_pt pt;
	struct vtd_pt_params p = { levels, large, rmrrs, nrmrr };
	u64 lost = 99;
	assert_int_equal(vtd_pt_build(&pt, &p, &lost), 0);
	assert_int_equal(lost, 0);
	assert_int_equal(pt.levels, levels);
	return pt;
}

/* Every page below 7 GiB against the expectation; returns the number of 2 MiB leaves seen. */
static u64 check_all(const struct vtd_pt *pt, u32 nrmrr, u64 ro_page)
{
	u64 big = 0;
	for (u64 a = 0; a < 7 * GiB; a += PAGE_SIZE) {
		struct vw_result r = vw_walk(pt->root.v, (int)pt->levels, 48, a + 0x123);
		bool want = expect_ram(a) || expect_rmrr(a, nrmrr);
		if (!want) {
			if (r.status != VW_NOT_PRESENT)
				fail_msg("page %llx: mapped (status %d), must not be", (unsigned long long)a, r.status);
			continue;
		}
		if (r.status != VW_OK)
			fail_msg("page %llx: not mapped (status %d level %d)", (unsigned long long)a, r.status, r.level);
		if (r.hpa != a + 0x123 || !r.r || r.w != (a != ro_page))
			fail_msg("page %llx: hpa %llx r%d w%d", (unsigned long long)a, (unsigned long long)r.hpa, r.r, r.w);
		if (r.page_size == SZ_2M && (a & (SZ_2M - 1)) == 0)
			big++;
	}
	return big;
}

static void test_identity_4k(void **state)
{
	(void)state;
	setup_mem(layout, ARRAY_SIZE(layout));
	struct vtd_pt pt = build(4, false, ARRAY_SIZE(rmrrs));
	assert_int_equal(check_all(&pt, ARRAY_SIZE(rmrrs), ~0ULL), 0);
	/* The region holds the tables and is itself absent: a device can neither read nor write it. */
	for (u64 a = WIN; a < WIN + WIN_SIZE; a += PAGE_SIZE)
		assert_int_equal(vw_walk(pt.root.v, 4, 48, a).status, VW_NOT_PRESENT);
	fake_phys_fini();
}

static void test_identity_2m(void **state)
{
	(void)state;
	setup_mem(layout, ARRAY_SIZE(layout));
	struct vtd_pt pt = build(4, true, ARRAY_SIZE(rmrrs));
	u64 big = check_all(&pt, ARRAY_SIZE(rmrrs), ~0ULL);
	assert_true(big > 2000); /* most of 4 GiB of RAM in 2 MiB leaves */
	/* Far fewer tables than 4 KiB leaves would need (one per 2 MiB of RAM). */
	assert_true(pt.tables < 64);
	fake_phys_fini();
}

static void test_three_levels(void **state)
{
	(void)state;
	setup_mem(layout, ARRAY_SIZE(layout));
	struct vtd_pt pt = build(3, true, ARRAY_SIZE(rmrrs));
	check_all(&pt, ARRAY_SIZE(rmrrs), ~0ULL);
	fake_phys_fini();

	/* RAM above 512 GiB is out of a 3-level table's reach: counted, not mapped. */
	struct tessel_mem_range hi[ARRAY_SIZE(layout) + 1];
	memcpy(hi, layout, sizeof(layout));
	hi[ARRAY_SIZE(layout)] = (struct tessel_mem_range){ 512 * GiB, 16, EFI_MT_CONVENTIONAL, 0 };
	setup_mem(hi, ARRAY_SIZE(hi));
	struct vtd_pt_params p = { 3, true, rmrrs, 0 };
	u64 lost = 0;
	assert_int_equal(vtd_pt_build(&pt, &p, &lost), 0);
	assert_int_equal(lost, 16);
	assert_int_equal(vw_walk(pt.root.v, 3, 48, 512 * GiB).status, VW_NOT_PRESENT);
	fake_phys_fini();
}

static void test_protect(void **state)
{
	(void)state;
	for (int large = 0; large < 2; large++) {
		setup_mem(layout, ARRAY_SIZE(layout));
		struct vtd_pt pt = build(4, large, ARRAY_SIZE(rmrrs));
		/* A page inside a 2 MiB leaf (when large) and one next to the region. */
		const u64 pages[] = { 0x40123000, WIN + WIN_SIZE, 0x808000 };
		for (size_t i = 0; i < ARRAY_SIZE(pages); i++) {
			u64 t0 = pt.tables;
			assert_int_equal(vtd_pt_prepare(&pt, pages[i]), 0);
			assert_true(pt.tables - t0 <= 1);
			assert_true(vtd_pt_set_writable(&pt, pages[i], false));
			assert_false(vtd_pt_set_writable(&pt, pages[i], false)); /* no change */
			check_all(&pt, ARRAY_SIZE(rmrrs), pages[i]);
			assert_true(vtd_pt_set_writable(&pt, pages[i], true));
			check_all(&pt, ARRAY_SIZE(rmrrs), ~0ULL);
		}
		/* Pages that are not DMA-mapped: nothing to protect, nothing changes. */
		assert_int_equal(vtd_pt_prepare(&pt, WIN), -ENODEV);
		assert_int_equal(vtd_pt_prepare(&pt, 0x3f000000), -ENODEV);
		assert_int_equal(vtd_pt_prepare(&pt, 1ULL << 50), -ENODEV);
		assert_false(vtd_pt_set_writable(&pt, WIN, false));
		assert_int_equal(vw_walk(pt.root.v, 4, 48, WIN).status, VW_NOT_PRESENT);
		fake_phys_fini();
	}
}

static void test_refusals(void **state)
{
	(void)state;
	setup_mem(layout, ARRAY_SIZE(layout));
	struct vtd_pt pt;
	struct dmar_rmrr bad = { .base = WIN + WIN_SIZE - PAGE_SIZE, .end = WIN + WIN_SIZE + PAGE_SIZE, .scope_count = 1 };
	struct vtd_pt_params p = { 4, true, &bad, 1 };
	u64 before = pmm_free_count();
	assert_int_equal(vtd_pt_build(&pt, &p, NULL), -EINVAL);
	assert_int_equal(pmm_free_count(), before); /* refused before allocating */
	p = (struct vtd_pt_params){ 5, true, NULL, 0 };
	assert_int_equal(vtd_pt_build(&pt, &p, NULL), -EINVAL);
	fake_phys_fini();

	/* A region too small for 4 KiB leaves over 6 GiB: -ENOMEM, not a crash. */
	fake_reset();
	fake_phys_init(WIN, 64 * PAGE_SIZE);
	pmm_init(hpa(WIN), 64 * PAGE_SIZE);
	memmap_init(layout, ARRAY_SIZE(layout), WIN, 64 * PAGE_SIZE);
	p = (struct vtd_pt_params){ 4, false, NULL, 0 };
	assert_int_equal(vtd_pt_build(&pt, &p, NULL), -ENOMEM);
	fake_phys_fini();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_identity_4k),
		cmocka_unit_test(test_identity_2m),
		cmocka_unit_test(test_three_levels),
		cmocka_unit_test(test_protect),
		cmocka_unit_test(test_refusals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
