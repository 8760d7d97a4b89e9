/*
 * Host tests for mm/pmm.c: allocation order, zeroing, exhaustion, contiguous runs,
 * frees (including double and foreign frees), determinism, bitmap sizing, concurrency.
 * The physical window is the fake one (tests/fake), poisoned with 0xA5 at setup.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <string.h>

#include <hw.h>
#include "mm/pmm.h"

#define BASE (FAKE_PHYS_BASE + 0x123000) /* an unaligned-to-2M window */

static void setup_window(u64 base, u64 size)
{
	fake_reset();
	fake_phys_init(base, size);
	pmm_init(hpa(base), size);
}

static bool page_is(hpa_t p, u8 v)
{
	const u8 *b = hpa_to_ptr(p);

	for (u64 i = 0; i < PAGE_SIZE; i++)
		if (b[i] != v)
			return false;
	return true;
}

static void test_init_counts(void **state)
{
	(void)state;
	setup_window(BASE, 64 * PAGE_SIZE);
	/* One bitmap page, 63 managed pages. */
	assert_int_equal(pmm_total_count(), 63);
	assert_int_equal(pmm_free_count(), 63);
	assert_false(pmm_owns(hpa(BASE)));           /* the bitmap */
	assert_true(pmm_owns(hpa(BASE + PAGE_SIZE)));
	assert_true(pmm_owns(hpa(BASE + 63 * PAGE_SIZE + 5)));
	assert_false(pmm_owns(hpa(BASE + 64 * PAGE_SIZE)));
}

static void test_unaligned_init(void **state)
{
	(void)state;
	fake_reset();
	fake_phys_init(BASE, 16 * PAGE_SIZE);
	pmm_init(hpa(BASE + 100), 15 * PAGE_SIZE);
	/* Shrinks inward to [BASE + 4K, BASE + 60K): 14 pages, one of them the bitmap. */
	assert_int_equal(pmm_total_count(), 13);
	hpa_t p = pmm_alloc_page();
	assert_int_equal(p.v, BASE + 2 * PAGE_SIZE);
	assert_true(IS_ALIGNED(p.v, PAGE_SIZE));
}

static void test_tiny_region(void **state)
{
	(void)state;
	setup_window(BASE, PAGE_SIZE);
	assert_int_equal(pmm_total_count(), 0);
	assert_int_equal(pmm_alloc_page().v, 0);
	assert_false(pmm_free_page(hpa(BASE)));
	pmm_init(hpa(BASE), 100); /* less than a page */
	assert_int_equal(pmm_total_count(), 0);
	assert_int_equal(pmm_alloc_pages(1).v, 0);
}

static void test_alloc_zeroed_ordered(void **state)
{
	(void)state;
	setup_window(BASE, 32 * PAGE_SIZE);
	for (u64 i = 0; i < 31; i++) {
		hpa_t p = pmm_alloc_page();

		assert_int_equal(p.v, BASE + (1 + i) * PAGE_SIZE); /* lowest first */
		assert_true(page_is(p, 0));
		memset(hpa_to_ptr(p), 0x5a, PAGE_SIZE); /* dirty it for the reuse check */
	}
	assert_int_equal(pmm_free_count(), 0);
	assert_int_equal(pmm_alloc_page().v, 0);     /* exhausted: fails, not silently */
	assert_int_equal(pmm_alloc_pages(2).v, 0);
	assert_true(pmm_free_page(hpa(BASE + 7 * PAGE_SIZE)));
	assert_int_equal(pmm_free_count(), 1);
	hpa_t p = pmm_alloc_page();
	assert_int_equal(p.v, BASE + 7 * PAGE_SIZE);
	assert_true(page_is(p, 0));                  /* re-zeroed */
}

static void test_bad_frees(void **state)
{
	(void)state;
	setup_window(BASE, 16 * PAGE_SIZE);
	hpa_t p = pmm_alloc_page();
	u64 before;

	assert_true(pmm_free_page(p));
	before = pmm_free_count();
	assert_false(pmm_free_page(p));                          /* double free */
	assert_false(pmm_free_page(hpa(BASE)));                  /* the bitmap page */
	assert_false(pmm_free_page(hpa(BASE - PAGE_SIZE)));      /* below */
	assert_false(pmm_free_page(hpa(BASE + 16 * PAGE_SIZE))); /* above */
	assert_false(pmm_free_page(hpa(0)));
	p = pmm_alloc_page();
	assert_false(pmm_free_page(hpa(p.v + 8)));               /* unaligned */
	assert_false(pmm_free_pages(p, 0));
	assert_false(pmm_free_pages(p, 2));                      /* second page is free */
	assert_int_equal(pmm_free_count(), before - 1);
	assert_true(pmm_free_pages(p, 1));
	assert_int_equal(pmm_free_count(), before);
}

static void test_contiguous(void **state)
{
	(void)state;
	setup_window(BASE, 65 * PAGE_SIZE); /* 64 managed pages */
	hpa_t pages[64];

	assert_int_equal(pmm_alloc_pages(0).v, 0);
	assert_int_equal(pmm_alloc_pages(65).v, 0);
	for (int i = 0; i < 64; i++)
		pages[i] = pmm_alloc_page();
	/* Free every other page: 32 free, but no two adjacent. */
	for (int i = 0; i < 64; i += 2)
		assert_true(pmm_free_page(pages[i]));
	assert_int_equal(pmm_free_count(), 32);
	assert_int_equal(pmm_alloc_pages(2).v, 0);
	assert_int_equal(pmm_free_count(), 32);
	/* Free page 41: pages 40, 41, 42 form the first run of three. */
	assert_true(pmm_free_page(pages[41]));
	hpa_t run = pmm_alloc_pages(3);
	assert_int_equal(run.v, pages[40].v);
	for (int i = 0; i < 3; i++)
		assert_true(page_is(hpa(run.v + (u64)i * PAGE_SIZE), 0));
	assert_int_equal(pmm_alloc_page().v, pages[0].v); /* lowest single page still first */
	assert_true(pmm_free_pages(run, 3));
	/* A run that only fits at the very end of the region. */
	setup_window(BASE, 65 * PAGE_SIZE);
	hpa_t big = pmm_alloc_pages(64);
	assert_int_equal(big.v, BASE + PAGE_SIZE);
	assert_int_equal(pmm_free_count(), 0);
	assert_true(pmm_free_pages(big, 64));
	assert_int_equal(pmm_free_count(), 64);
}

static void run_sequence(u64 *out, int n)
{
	hpa_t held[16] = { 0 };

	setup_window(BASE, 48 * PAGE_SIZE);
	for (int i = 0; i < n; i++) {
		int slot = (i * 7) % 16;

		if (held[slot].v) {
			assert_true(pmm_free_pages(held[slot], (u64)slot % 3 + 1));
			held[slot] = hpa(0);
		}
		held[slot] = pmm_alloc_pages((u64)slot % 3 + 1);
		out[i] = held[slot].v;
	}
}

static void test_deterministic(void **state)
{
	(void)state;
	u64 a[200], b[200];

	run_sequence(a, 200);
	run_sequence(b, 200);
	assert_memory_equal(a, b, sizeof(a));
}

static void test_two_bitmap_pages(void **state)
{
	(void)state;
	/* 32770 pages need two bitmap pages (one page maps 32768). */
	u64 pages = 32770;
	u64 n = 0;
	hpa_t p, last = hpa(0);

	setup_window(BASE, pages * PAGE_SIZE);
	assert_int_equal(pmm_total_count(), pages - 2);
	while ((p = pmm_alloc_page()).v) {
		assert_true(p.v > last.v);
		last = p;
		n++;
	}
	assert_int_equal(n, pages - 2);
	assert_int_equal(last.v, BASE + (pages - 1) * PAGE_SIZE);
	assert_true(pmm_free_page(last));
	assert_int_equal(pmm_alloc_page().v, last.v);
}

#define THREAD_ROUNDS 2000
static void *hammer(void *arg)
{
	u64 *bad = arg;
	hpa_t mine[4];

	for (int r = 0; r < THREAD_ROUNDS; r++) {
		for (int i = 0; i < 4; i++) {
			mine[i] = pmm_alloc_page();
			if (!mine[i].v)
				(*bad)++;
			else
				*(volatile u64 *)hpa_to_ptr(mine[i]) = (u64)(uintptr_t)arg;
		}
		for (int i = 0; i < 4; i++) {
			if (mine[i].v && *(volatile u64 *)hpa_to_ptr(mine[i]) != (u64)(uintptr_t)arg)
				(*bad)++; /* someone else got the same page */
			if (mine[i].v && !pmm_free_page(mine[i]))
				(*bad)++;
		}
	}
	return NULL;
}

static void test_concurrent(void **state)
{
	(void)state;
	pthread_t t[2];
	u64 bad[2] = { 0, 0 };

	setup_window(BASE, 16 * PAGE_SIZE);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, hammer, &bad[i]), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(bad[0] + bad[1], 0);
	assert_int_equal(pmm_free_count(), pmm_total_count());
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_counts),
		cmocka_unit_test(test_unaligned_init),
		cmocka_unit_test(test_tiny_region),
		cmocka_unit_test(test_alloc_zeroed_ordered),
		cmocka_unit_test(test_bad_frees),
		cmocka_unit_test(test_contiguous),
		cmocka_unit_test(test_deterministic),
		cmocka_unit_test(test_two_bitmap_pages),
		cmocka_unit_test(test_concurrent),
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);

	fake_phys_fini();
	return r;
}
