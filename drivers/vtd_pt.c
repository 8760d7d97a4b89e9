/*
 * The DMA address space (drivers/vtd_pt.h). Entries are written with single 64-bit stores,
 * so a unit walking the tables concurrently sees either the old or the new entry.
 */
#include <hw.h>
#include "drivers/vtd_pt.h"
#include "lib/string.h"
#include "mm/memmap.h"
#include "mm/pmm.h"

#define ENTRIES 512
#define MAP_HAS_TABLE 1 /* map_page: a 2 MiB request where a table of 4 KiB leaves exists */

static u64 *table(u64 e) { return hpa_to_ptr(hpa(e & VTD_SL_ADDR)); }
static unsigned idx(u64 a, u32 level) { return (unsigned)((a >> (12 + 9 * (level - 1))) & (ENTRIES - 1)); }

static void store(u64 *slot, u64 v)
{
	__atomic_store_n(slot, v, __ATOMIC_RELEASE);
}

/* The entry at `level` (1 = PTE) for a, creating intermediate tables down to that level.
 * Returns NULL on -ENOMEM, or when a leaf above `level` already covers a (*leaf_above set). */
static u64 *walk_create(struct vtd_pt *pt, u64 a, u32 level, bool *leaf_above)
{
	u64 *t = hpa_to_ptr(pt->root);
	*leaf_above = false;
	for (u32 l = pt->levels; l > level; l--) {
		u64 *e = &t[idx(a, l)];
		if (!*e) {
			hpa_t n = pmm_alloc_page();
			if (!n.v)
				return NULL;
			pt->tables++;
			store(e, n.v | VTD_SL_R | VTD_SL_W);
		} else if (*e & VTD_SL_PS) {
			*leaf_above = true;
			return NULL;
		}
		t = table(*e);
	}
	return &t[idx(a, level)];
}

/* Map a at `level` (1: 4 KiB, 2: 2 MiB). Returns 0 (also when a larger leaf already covers a),
 * -ENOMEM, or MAP_HAS_TABLE. */
static int map_page(struct vtd_pt *pt, u64 a, u32 level)
{
	bool above;
	u64 *e = walk_create(pt, a, level, &above);
	if (!e)
		return above ? 0 : -ENOMEM;
	if (!*e)
		store(e, a | VTD_SL_R | VTD_SL_W | (level > 1 ? VTD_SL_PS : 0));
	else if (level > 1 && !(*e & VTD_SL_PS))
		return MAP_HAS_TABLE;
	return 0;
}

/* Identity-map every page of [start, end) (4 KiB aligned), with 2 MiB leaves where allowed. */
static int map_range(struct vtd_pt *pt, u64 start, u64 end)
{
	u64 a = start;
	while (a < end) {
		if (pt->large && IS_ALIGNED(a, SZ_2M) && a + SZ_2M <= end) {
			int r = map_page(pt, a, 2);
			if (r != MAP_HAS_TABLE) {
				if (r)
					return r;
				a += SZ_2M;
				continue;
			}
		}
		int r = map_page(pt, a, 1);
		if (r)
			return r;
		a += PAGE_SIZE;
	}
	return 0;
}

int vtd_pt_build(struct vtd_pt *pt, const struct vtd_pt_params *p, u64 *unmapped)
{
	memset(pt, 0, sizeof(*pt));
	if (p->levels != 3 && p->levels != 4)
		return -EINVAL;
	pt->levels = p->levels;
	pt->large = p->large;
	pt->limit = 1ULL << (12 + 9 * p->levels);
	for (u32 i = 0; i < p->rmrr_count; i++)
		if (memmap_in_hv(p->rmrrs[i].base, p->rmrrs[i].end - p->rmrrs[i].base))
			return -EINVAL;
	pt->root = pmm_alloc_page();
	if (!pt->root.v)
		return -ENOMEM;
	pt->tables = 1;

	/* RAM: 2 MiB blocks up to the top of RAM, looking inside only the blocks that are not
	 * wholly RAM (asking memmap page by page would be slow on large machines). */
	u64 top = ALIGN_UP(memmap_ram_top(), SZ_2M), lost = 0;
	for (u64 b = 0; b < top; b += SZ_2M) {
		if (b >= pt->limit) {
			for (u64 a = b; a < b + SZ_2M; a += PAGE_SIZE)
				lost += memmap_is_ram(a, PAGE_SIZE);
			continue;
		}
		if (memmap_is_ram(b, SZ_2M)) {
			int r = map_range(pt, b, b + SZ_2M);
			if (r)
				return r;
			continue;
		}
		for (u64 a = b; a < b + SZ_2M; a += PAGE_SIZE) {
			if (!memmap_is_ram(a, PAGE_SIZE))
				continue;
			int r = map_page(pt, a, 1);
			if (r)
				return r;
		}
	}
	/* RMRRs: memory the firmware says devices use on their own (USB legacy emulation,
	 * graphics stolen memory); it is often reserved, not RAM. */
	for (u32 i = 0; i < p->rmrr_count; i++) {
		u64 s = p->rmrrs[i].base, e = MIN(p->rmrrs[i].end, pt->limit);
		if (s < e) {
			int r = map_range(pt, s, e);
			if (r)
				return r;
		}
	}
	if (unmapped)
		*unmapped = lost;
	return 0;
}

/* The leaf entry for gpa and its level, or NULL if not mapped. */
static u64 *lookup(struct vtd_pt *pt, u64 gpa, u32 *level)
{
	if (gpa >= pt->limit || !pt->root.v)
		return NULL;
	u64 *t = hpa_to_ptr(pt->root);
	for (u32 l = pt->levels; l >= 1; l--) {
		u64 *e = &t[idx(gpa, l)];
		if (!*e)
			return NULL;
		if (l == 1 || (*e & VTD_SL_PS)) {
			*level = l;
			return e;
		}
		t = table(*e);
	}
	return NULL;
}

int vtd_pt_prepare(struct vtd_pt *pt, u64 gpa)
{
	u32 level;
	u64 *e = lookup(pt, gpa, &level);
	if (!e)
		return -ENODEV;
	if (level == 1)
		return 0;
	if (level != 2)
		return -EINVAL; /* the builder makes no 1 GiB leaves */
	hpa_t n = pmm_alloc_page();
	if (!n.v)
		return -ENOMEM;
	u64 *t = hpa_to_ptr(n);
	u64 base = *e & VTD_SL_ADDR & ~(SZ_2M - 1);
	u64 perm = *e & (VTD_SL_R | VTD_SL_W);
	for (unsigned i = 0; i < ENTRIES; i++)
		t[i] = (base + i * PAGE_SIZE) | perm;
	pt->tables++;
	/* The same translations, now in 4 KiB pieces: no invalidation needed for correctness. */
	store(e, n.v | VTD_SL_R | VTD_SL_W);
	return 0;
}

/* Sets or clears W in the leaf for gpa if it is at `want_level`; true if it changed. */
static bool set_leaf_writable(struct vtd_pt *pt, u64 gpa, u32 want_level, bool writable)
{
	u32 level;
	u64 *e = lookup(pt, gpa, &level);
	if (!e || level != want_level)
		return false;
	u64 v = writable ? (*e | VTD_SL_W) : (*e & ~VTD_SL_W);
	if (v == *e)
		return false;
	store(e, v);
	return true;
}

bool vtd_pt_set_writable(struct vtd_pt *pt, u64 gpa, bool writable)
{
	return set_leaf_writable(pt, gpa, 1, writable);
}

bool vtd_pt_set_block_writable(struct vtd_pt *pt, u64 gpa, bool writable)
{
	return set_leaf_writable(pt, gpa, 2, writable);
}
