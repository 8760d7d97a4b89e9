/*
 * The SPPT builder (see sppt.h). Entry formats, docs/SPP.md section 4 (the SDM's own SPP
 * section was not at hand; the facts come from Bochs 2.7 paging.cc and KVM's SPP series):
 *   L4/L3/L2: SPPT_VALID (bit 0) | next table's hpa in bits N-1:12; reserved: 11:1, 51:N,
 *             63:52, so reserved = ~(addr_mask | SPPT_VALID).
 *   L1:       bit 2i = sub-page i writable; odd bits (SPPT_LEAF_ODD_BITS) reserved.
 * Validity is checked before reserved bits, so a not-valid entry is a miss whatever else it
 * holds; an invalidated L2 entry keeps its address, which is how the leaf table survives
 * sppt_invalidate_2m() (KVM's lazy mode, docs/SPP.md section 7).
 */
#include "spp/sppt.h"

#include <arch/ept.h>
#include <hw.h>
#include "mm/pmm.h"

#define SPPT_INJECT_BIT  (1ULL << 1) /* reserved at every level (11:1 / odd bit 1) */
#define SPPT_2M_PAGES    512

static u64 *table(const struct sppt *t, u64 entry_or_hpa)
{
	return hpa_to_ptr(hpa(entry_or_hpa & t->addr_mask));
}

static u64 rsvd_nonleaf(const struct sppt *t) { return ~(t->addr_mask | SPPT_VALID); }

/* A zeroed table page (every non-leaf entry not valid), or hpa(0). A page the SPPT cannot
 * address (above MAXPHYADDR) would be a pmm/phys_bits mismatch: refuse it. */
static hpa_t table_alloc(struct sppt *t)
{
	hpa_t p = pmm_alloc_page();

	if (p.v && (p.v & ~t->addr_mask)) {
		pmm_free_page(p);
		return hpa(0);
	}
	if (p.v)
		t->pages++;
	return p;
}

static hpa_t leaf_table_alloc(struct sppt *t)
{
	hpa_t p = table_alloc(t);

	if (p.v) {
		u64 *v = hpa_to_ptr(p);

		for (u64 i = 0; i < PT_ENTRIES; i++)
			v[i] = SPPT_VECTOR_ALL;
	}
	return p;
}

int sppt_init(struct sppt *t, u8 phys_bits)
{
	*t = (struct sppt){ .phys_bits = phys_bits };
	if (phys_bits < 32 || phys_bits > 52)
		return -EINVAL;
	t->addr_mask = ((1ULL << phys_bits) - 1) & ~(PAGE_SIZE - 1);
	t->root = table_alloc(t);
	return t->root.v ? 0 : -ENOMEM;
}

static void free_tree(struct sppt *t, u64 tab_hpa, int level)
{
	u64 *tab = table(t, tab_hpa);

	for (u64 i = 0; level > 1 && i < PT_ENTRIES; i++)
		if (tab[i] & t->addr_mask)
			free_tree(t, tab[i], level - 1);
	pmm_free_page(hpa(tab_hpa & t->addr_mask));
	t->pages--;
}

void sppt_destroy(struct sppt *t)
{
	t->ndirty = 0;
	sppt_reclaim(t);
	if (t->root.v)
		free_tree(t, t->root.v, 4);
	t->root = hpa(0);
}

u64 sppt_vector(u32 map)
{
	u64 x = map;

	/* Interleave with zeros: each step moves the upper half of every field up by half
	 * the field width. */
	x = (x | x << 16) & 0x0000FFFF0000FFFFULL;
	x = (x | x << 8) & 0x00FF00FF00FF00FFULL;
	x = (x | x << 4) & 0x0F0F0F0F0F0F0F0FULL;
	x = (x | x << 2) & 0x3333333333333333ULL;
	x = (x | x << 1) & 0x5555555555555555ULL;
	return x;
}

u32 sppt_map(u64 vector)
{
	u64 x = vector & 0x5555555555555555ULL;

	x = (x | x >> 1) & 0x3333333333333333ULL;
	x = (x | x >> 2) & 0x0F0F0F0F0F0F0F0FULL;
	x = (x | x >> 4) & 0x00FF00FF00FF00FFULL;
	x = (x | x >> 8) & 0x0000FFFF0000FFFFULL;
	x = (x | x >> 16) & 0x00000000FFFFFFFFULL;
	return (u32)x;
}

/*
 * The L2 entry covering gpa, or NULL if the L4/L3 path is missing and alloc is false (or
 * allocation failed: *err = -ENOMEM). Missing L4/L3 entries are created valid, pointing to
 * zeroed tables; an L4/L3 entry that has a table is followed (and made valid if alloc).
 */
static u64 *l2_entry(struct sppt *t, u64 gpa, bool alloc, int *err)
{
	u64 *tab = hpa_to_ptr(t->root);

	for (int level = 4; level > 2; level--) {
		u64 *e = &tab[PT_INDEX(gpa, level)];

		if (!(*e & t->addr_mask)) {
			hpa_t c;

			if (!alloc)
				return NULL;
			c = table_alloc(t);
			if (!c.v) {
				*err = -ENOMEM;
				return NULL;
			}
			atomic_store(e, c.v | SPPT_VALID);
		} else if (alloc && !(*e & SPPT_VALID)) {
			atomic_store(e, *e | SPPT_VALID);
		}
		tab = table(t, *e);
	}
	return &tab[PT_INDEX(gpa, 2)];
}

int sppt_prepare(struct sppt *t, u64 gfn)
{
	u64 gpa = gfn << PAGE_SHIFT, *l2;
	int err = 0;
	hpa_t leaf;

	if (gfn >= SPPT_GPA_LIMIT >> PAGE_SHIFT)
		return -EINVAL;
	l2 = l2_entry(t, gpa, true, &err);
	if (!l2)
		return err;
	if (*l2 & t->addr_mask)
		return 0;
	leaf = leaf_table_alloc(t);
	if (!leaf.v)
		return -ENOMEM;
	atomic_store(l2, leaf.v | SPPT_VALID);
	return 0;
}

/* gfn's leaf vector slot, whether or not its L2 entry is valid; NULL without a table. */
static u64 *leaf_slot(struct sppt *t, u64 gfn)
{
	u64 *l2;

	if (gfn >= SPPT_GPA_LIMIT >> PAGE_SHIFT)
		return NULL;
	l2 = l2_entry(t, gfn << PAGE_SHIFT, false, NULL);
	if (!l2 || !(*l2 & t->addr_mask))
		return NULL;
	return &table(t, *l2)[PT_INDEX(gfn << PAGE_SHIFT, 1)];
}

u64 *sppt_leaf_slot(struct sppt *t, u64 gfn)
{
	return leaf_slot(t, gfn);
}

void sppt_set(struct sppt *t, u64 gfn, u32 map)
{
	u64 *v = leaf_slot(t, gfn);

	if (v)
		atomic_store(v, sppt_vector(map));
}

/* The dirty record of block (gfn >> 9), or -1. */
static int dirty_find(const struct sppt *t, u64 block)
{
	for (u32 i = 0; i < t->ndirty; i++)
		if (t->dirty[i].block == block)
			return (int)i;
	return -1;
}

static void dirty_drop(struct sppt *t, int i)
{
	if (i < 0)
		return;
	for (u32 j = (u32)i; j + 1 < t->ndirty; j++)
		t->dirty[j] = t->dirty[j + 1];
	t->ndirty--;
}

void sppt_invalidate_2m(struct sppt *t, u64 gfn)
{
	u64 *l2;

	if (gfn >= SPPT_GPA_LIMIT >> PAGE_SHIFT)
		return;
	dirty_drop(t, dirty_find(t, gfn >> 9));
	l2 = l2_entry(t, gfn << PAGE_SHIFT, false, NULL);
	if (l2 && (*l2 & SPPT_VALID))
		atomic_store(l2, *l2 & ~SPPT_VALID);
}

void sppt_invalidate_range(struct sppt *t, u64 gfn, u64 n)
{
	u64 *l2, block = gfn >> 9, first = gfn & 511;
	int i;

	if (gfn >= SPPT_GPA_LIMIT >> PAGE_SHIFT || !n || n > SPPT_2M_PAGES - first)
		return;
	l2 = l2_entry(t, gfn << PAGE_SHIFT, false, NULL);
	if (!l2 || !(*l2 & t->addr_mask))
		return; /* no table: the fill builds all of it */
	i = dirty_find(t, block);
	if (i < 0 && (*l2 & SPPT_VALID)) {
		/* Current until now: start a record (dropping the oldest if all are taken). */
		if (t->ndirty == SPPT_DIRTY_MAX)
			dirty_drop(t, 0);
		i = (int)t->ndirty++;
		t->dirty[i].block = block;
		for (u32 w = 0; w < 8; w++)
			t->dirty[i].bits[w] = 0;
	}
	if (i >= 0) {
		/* Bits [first, first + n) of the 512, a word at a time. */
		for (u64 p = first, end = first + n; p < end;) {
			u64 lo = p & 63, cnt = MIN(64 - lo, end - p);

			t->dirty[i].bits[p >> 6] |= (cnt == 64 ? ~0ULL : ((1ULL << cnt) - 1)) << lo;
			p += cnt;
		}
	}
	if (*l2 & SPPT_VALID)
		atomic_store(l2, *l2 & ~SPPT_VALID);
}

int sppt_fill_2m(struct sppt *t, u64 gpa, u32 (*map_of)(void *ctx, u64 gfn), void *ctx)
{
	u64 *l2, *v, gfn0;
	int err = 0, d;
	hpa_t leaf;

	if (gpa >= SPPT_GPA_LIMIT)
		return -EINVAL;
	l2 = l2_entry(t, gpa, true, &err);
	if (!l2)
		return err;
	leaf = hpa(*l2 & t->addr_mask);
	gfn0 = ALIGN_DOWN(gpa, SZ_2M) >> PAGE_SHIFT;
	d = dirty_find(t, gfn0 >> 9);
	if (!leaf.v) {
		dirty_drop(t, d); /* cannot happen (unlink drops it); a new table is filled whole */
		d = -1;
		leaf = table_alloc(t); /* every vector is written below */
		if (!leaf.v)
			return -ENOMEM;
	}
	v = hpa_to_ptr(leaf);
	if (d >= 0) {
		/* Only the pages changed since the block's last fill; the others are current. */
		for (u32 w = 0; w < 8; w++)
			for (u64 b = t->dirty[d].bits[w]; b; b &= b - 1) {
				u64 i = w * 64 + (u64)__builtin_ctzll(b);

				atomic_store(&v[i], sppt_vector(map_of(ctx, gfn0 + i)));
			}
		dirty_drop(t, d);
	} else {
		for (u64 i = 0; i < SPPT_2M_PAGES; i++)
			atomic_store(&v[i], sppt_vector(map_of(ctx, gfn0 + i)));
	}
	/* Valid only now, after the table is complete; also drops reserved bits. */
	atomic_store(l2, leaf.v | SPPT_VALID);
	return 0;
}

int sppt_repair(struct sppt *t, u64 gpa, u32 (*map_of)(void *ctx, u64 gfn), void *ctx)
{
	u64 *tab = hpa_to_ptr(t->root), rsvd = rsvd_nonleaf(t), *v;
	int fixed = 0;

	if (gpa >= SPPT_GPA_LIMIT)
		return -EINVAL;
	for (int level = 4; level > 1; level--) {
		u64 *ep = &tab[PT_INDEX(gpa, level)], e = *ep;

		if (!(e & SPPT_VALID))
			return fixed; /* a miss from here on */
		if (!(e & t->addr_mask)) {
			/* Valid without a table: never written by this module. Make it a miss. */
			atomic_store(ep, 0);
			return fixed + 1;
		}
		if (e & rsvd) {
			e = (e & t->addr_mask) | SPPT_VALID;
			atomic_store(ep, e);
			fixed++;
		}
		tab = table(t, e);
	}
	v = &tab[PT_INDEX(gpa, 1)];
	if (*v & SPPT_LEAF_ODD_BITS) {
		atomic_store(v, sppt_vector(map_of(ctx, gpa >> PAGE_SHIFT)));
		fixed++;
	}
	return fixed;
}

int sppt_inject_misconfig(struct sppt *t, u64 gpa, int level)
{
	u64 *l2, *v;

	if (gpa >= SPPT_GPA_LIMIT || (level != 1 && level != 2))
		return -EINVAL;
	l2 = l2_entry(t, gpa, false, NULL);
	if (!l2 || !(*l2 & t->addr_mask))
		return -EFAULT;
	if (level == 2) {
		atomic_store(l2, *l2 | SPPT_INJECT_BIT);
		return 0;
	}
	v = &table(t, *l2)[PT_INDEX(gpa, 1)];
	atomic_store(v, *v | SPPT_INJECT_BIT);
	return 0;
}

/* Does the table hold any entry with a table address (valid or not)? */
static bool table_empty(const struct sppt *t, const u64 *tab)
{
	for (u64 i = 0; i < PT_ENTRIES; i++)
		if (tab[i] & t->addr_mask)
			return false;
	return true;
}

bool sppt_unlink_2m(struct sppt *t, u64 gfn)
{
	u64 gpa = gfn << PAGE_SHIFT, *path[5], *tab;

	/* Room for the leaf table and the L2 and L3 tables it may leave empty. */
	if (gfn >= SPPT_GPA_LIMIT >> PAGE_SHIFT || t->nretired + 3 > SPPT_RETIRE_MAX)
		return false;
	tab = hpa_to_ptr(t->root);
	for (int level = 4; level >= 2; level--) {
		path[level] = &tab[PT_INDEX(gpa, level)];
		if (!(*path[level] & t->addr_mask))
			return false;
		tab = table(t, *path[level]);
	}
	dirty_drop(t, dirty_find(t, gfn >> 9)); /* a new table is filled whole */
	/* A retired table is not written to after this: a CPU that still caches the entry
	 * above it reads what it had (vectors, or entries of tables retired with it), never a
	 * free-list link. The L2 and L3 tables follow when they hold nothing else (the root
	 * stays): with no protected page below them they would otherwise stay forever. */
	for (int level = 2; level <= 4; level++) {
		t->retired[t->nretired++] = hpa(*path[level] & t->addr_mask);
		atomic_store(path[level], 0);
		if (level == 4 || !table_empty(t, path[level] - PT_INDEX(gpa, level)))
			break;
	}
	return true;
}

u64 sppt_reclaim(struct sppt *t)
{
	u64 n = t->nretired;

	while (t->nretired) {
		pmm_free_page(t->retired[--t->nretired]);
		t->pages--;
	}
	return n;
}

u64 sppt_bytes(const struct sppt *t) { return t->pages << PAGE_SHIFT; }
