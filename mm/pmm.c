/*
 * The physical page allocator (see pmm.h). Layout of the region after pmm_init():
 *
 *   [base, base + meta)      the bitmap: bit i set = page i of the managed area is in use
 *   [base + meta, end)       the managed pages, page i at first + i * PAGE_SIZE
 *
 * Allocation is first-fit from the lowest address, starting the scan at a hint (the lowest
 * index that might be free) and skipping full 64-bit words, so single-page allocation is
 * cheap while staying deterministic. Pages are zeroed after the lock is dropped: the page
 * already belongs to the caller.
 */
#include "mm/pmm.h"

#include <hw.h>
#include <tessel/spinlock.h>
#include "lib/string.h"

static struct {
	spinlock_t lock;
	u64 *bitmap;  /* reached via hpa_to_ptr(base) */
	u64 first;    /* hpa of managed page 0 */
	u64 total;    /* managed pages */
	u64 free;     /* free pages */
	u64 hint;     /* no free page below this index */
} pmm = { .lock = SPINLOCK_INIT };

static bool bit_test(u64 i) { return (pmm.bitmap[i / 64] >> (i % 64)) & 1; }
static void bit_set(u64 i) { pmm.bitmap[i / 64] |= 1ULL << (i % 64); }
static void bit_clear(u64 i) { pmm.bitmap[i / 64] &= ~(1ULL << (i % 64)); }

void pmm_init(hpa_t base, u64 size)
{
	u64 start = ALIGN_UP(base.v, PAGE_SIZE);
	u64 end = base.v + size < base.v ? ~0ULL : base.v + size; /* saturate on overflow */
	u64 pages, meta, total;

	end = ALIGN_DOWN(end, PAGE_SIZE);
	pmm.bitmap = NULL;
	pmm.first = pmm.total = pmm.free = pmm.hint = 0;
	if (end <= start)
		return;
	pages = (end - start) / PAGE_SIZE;
	/* Bitmap pages: enough bits for the pages that remain after the bitmap itself. */
	meta = (pages + PAGE_SIZE * 8) / (PAGE_SIZE * 8 + 1);
	if (meta == 0)
		meta = 1;
	if (pages <= meta)
		return;
	total = pages - meta;
	pmm.bitmap = hpa_to_ptr(hpa(start));
	memset(pmm.bitmap, 0, meta * PAGE_SIZE);
	/* Bits past the last page are marked used so scans never return them. */
	for (u64 i = total; i < meta * PAGE_SIZE * 8; i++)
		bit_set(i);
	pmm.first = start + meta * PAGE_SIZE;
	pmm.total = pmm.free = total;
}

/* Lowest free index >= from, or pmm.total. Lock held. */
static u64 next_free(u64 from)
{
	u64 words = (pmm.total + 63) / 64;

	for (u64 w = from / 64; w < words; w++) {
		u64 used = pmm.bitmap[w];

		if (w == from / 64)
			used |= (1ULL << (from % 64)) - 1;
		if (used != ~0ULL) {
			u64 i = w * 64 + (u64)__builtin_ctzll(~used);
			return i < pmm.total ? i : pmm.total;
		}
	}
	return pmm.total;
}

static hpa_t claim(u64 i, u64 n)
{
	for (u64 k = 0; k < n; k++)
		bit_set(i + k);
	pmm.free -= n;
	if (i == pmm.hint)
		pmm.hint = next_free(i + n);
	return hpa(pmm.first + i * PAGE_SIZE);
}

hpa_t pmm_alloc_pages(u64 n)
{
	hpa_t p = hpa(0);

	if (n == 0)
		return p;
	spin_lock(&pmm.lock);
	if (n <= pmm.free) {
		u64 i = next_free(pmm.hint);

		while (i + n <= pmm.total) {
			u64 run = 1;

			while (run < n && !bit_test(i + run))
				run++;
			if (run == n) {
				p = claim(i, n);
				break;
			}
			i = next_free(i + run);
		}
	}
	spin_unlock(&pmm.lock);
	if (p.v)
		memset(hpa_to_ptr(p), 0, n * PAGE_SIZE);
	return p;
}

hpa_t pmm_alloc_page(void) { return pmm_alloc_pages(1); }

/* Index of an allocatable page, or pmm.total for any other address. */
static u64 page_index(hpa_t p)
{
	if (!pmm.total || p.v < pmm.first || !IS_ALIGNED(p.v, PAGE_SIZE))
		return pmm.total;
	u64 i = (p.v - pmm.first) / PAGE_SIZE;
	return i < pmm.total ? i : pmm.total;
}

bool pmm_free_pages(hpa_t p, u64 n)
{
	u64 i = page_index(p);
	bool ok = true;

	if (n == 0 || i == pmm.total || n > pmm.total - i)
		return false;
	spin_lock(&pmm.lock);
	for (u64 k = 0; k < n && ok; k++)
		ok = bit_test(i + k);
	if (ok) {
		for (u64 k = 0; k < n; k++)
			bit_clear(i + k);
		pmm.free += n;
		if (i < pmm.hint)
			pmm.hint = i;
	}
	spin_unlock(&pmm.lock);
	return ok;
}

bool pmm_free_page(hpa_t p) { return pmm_free_pages(p, 1); }

u64 pmm_free_count(void) { return atomic_load(&pmm.free); }
u64 pmm_total_count(void) { return pmm.total; }
bool pmm_owns(hpa_t p) { return page_index(hpa(ALIGN_DOWN(p.v, PAGE_SIZE))) != pmm.total; }
