/*
 * The EPT builder and the operations that reshape it (see ept.h). Tables are 4 KiB pages
 * from the pmm; entries follow Intel SDM Vol. 3C 28.3.2 (Tables 28-1..28-6):
 *   non-leaf: table address | R | W | X (bits 7:3 reserved, so no type, no bit 7);
 *   leaf:     page address | permissions | memory type in 5:3 | IPAT in 6 | bit 7 set in a
 *             PDPTE (1 GiB) or PDE (2 MiB).
 * An entry with bits 2:0 clear is not present.
 */
#include "mm/ept.h"

#include <arch/cpu.h>
#include <arch/ept.h>
#include <hw.h>
#include "lib/string.h"
#include "mm/pmm.h"

#define EPT_NONLEAF EPT_RWX
#define EPT_FF_LEAF (EPT_R | EPT_X | ((u64)MT_WB << EPT_MT_SHIFT) | EPT_IGNORE_PAT)
#define EPT_AD (EPT_ACCESSED | EPT_DIRTY)

struct build {
	struct ept *ept;
	const struct ept_params *p;
	u64 limit;   /* first guest-physical address not mapped */
	u64 hv_end;
};

static u64 *table(u64 entry_or_hpa) { return hpa_to_ptr(hpa(entry_or_hpa & EPT_ADDR_MASK)); }
static bool present(u64 e) { return e & EPT_RWX; }
static bool is_leaf(u64 e, int level) { return level == 1 || (level <= 3 && (e & EPT_LARGE)); }

static hpa_t table_alloc(struct ept *ept)
{
	hpa_t t = pmm_alloc_page(); /* zeroed: every entry starts not present */

	if (t.v)
		ept->tables++;
	return t;
}

static bool touches_hv(const struct build *b, u64 a, u64 size)
{
	return b->p->hv_size && a < b->hv_end && b->p->hv_base < a + size;
}

static u64 leaf_4k(const struct build *b, u64 a)
{
	if (touches_hv(b, a, PAGE_SIZE))
		return b->p->ff_page.v | EPT_FF_LEAF;
	return a | EPT_RWX | ((u64)mtrr_type(b->p->mtrr, a) << EPT_MT_SHIFT);
}

/* Fills the zeroed table tab at `level` covering [base, base + 512 * EPT_LEVEL_SIZE(level)). */
static int build_table(struct build *b, u64 *tab, int level, u64 base)
{
	u64 sz = EPT_LEVEL_SIZE(level);

	for (u64 i = 0; i < PT_ENTRIES; i++) {
		u64 a = base + i * sz;
		bool may_leaf = level == 2 || (level == 3 && b->p->has_1g);
		u8 type;
		hpa_t child;
		int r;

		if (a >= b->limit)
			break;
		if (level == 1) {
			tab[i] = leaf_4k(b, a);
			continue;
		}
		if (may_leaf && sz <= b->limit - a && !touches_hv(b, a, sz) &&
		    mtrr_range_uniform(b->p->mtrr, a, sz, &type)) {
			tab[i] = a | EPT_RWX | ((u64)type << EPT_MT_SHIFT) | EPT_LARGE;
			continue;
		}
		child = table_alloc(b->ept);
		if (!child.v)
			return -ENOMEM;
		tab[i] = child.v | EPT_NONLEAF; /* linked first so a failed build frees it */
		r = build_table(b, table(child.v), level - 1, a);
		if (r)
			return r;
	}
	return 0;
}

static void free_tree(struct ept *ept, u64 tab_hpa, int level)
{
	u64 *tab = table(tab_hpa);

	for (u64 i = 0; level > 1 && i < PT_ENTRIES; i++)
		if (present(tab[i]) && !is_leaf(tab[i], level))
			free_tree(ept, tab[i] & EPT_ADDR_MASK, level - 1);
	pmm_free_page(hpa(tab_hpa));
	ept->tables--;
}

u64 ept_make_eptp(hpa_t pml4, bool ad)
{
	return (pml4.v & EPT_ADDR_MASK) | EPTP_MT_WB | EPTP_WALK_4 | (ad ? EPTP_AD_ENABLE : 0);
}

int ept_build_identity(struct ept *ept, const struct ept_params *p)
{
	struct build b = { .ept = ept, .p = p };
	u32 bits;
	int r;

	memset(ept, 0, sizeof(*ept));
	ept->lock = (spinlock_t)SPINLOCK_INIT;
	if (!p->mtrr || p->phys_bits < 12 || p->phys_bits > 52)
		return -EINVAL;
	if (!IS_ALIGNED(p->hv_base, PAGE_SIZE) || !IS_ALIGNED(p->hv_size, PAGE_SIZE) ||
	    p->hv_base + p->hv_size < p->hv_base)
		return -EINVAL;
	/* The 0xFF page must be hypervisor memory, or the guest could write it via the
	 * identity map and change what it reads back from the hidden region. */
	if (!p->ff_page.v || !IS_ALIGNED(p->ff_page.v, PAGE_SIZE) ||
	    p->ff_page.v < p->hv_base || p->ff_page.v - p->hv_base >= p->hv_size)
		return -EINVAL;
	bits = MIN((u32)p->phys_bits, (u32)EPT_MAX_PHYS_BITS);
	b.limit = BIT(bits);
	b.hv_end = p->hv_base + p->hv_size;
	ept->has_1g = p->has_1g;
	ept->pml4 = table_alloc(ept);
	if (!ept->pml4.v)
		return -ENOMEM;
	r = build_table(&b, table(ept->pml4.v), 4, 0);
	if (r) {
		ept_destroy(ept);
		return r;
	}
	ept->eptp = ept_make_eptp(ept->pml4, false);
	return 0;
}

void ept_destroy(struct ept *ept)
{
	/* Unlinked tables are unreachable from the root: free them. A merge's table holds
	 * leaves only; a split's may hold the tables it split further down. */
	for (u32 i = 0; i < ept->npending; i++) {
		if (ept->pending[i].split) {
			free_tree(ept, ept->pending[i].table.v, ept->pending[i].size == SZ_2M ? 1 : 2);
			continue;
		}
		pmm_free_page(ept->pending[i].table);
		ept->tables--;
	}
	ept->npending = 0;
	if (ept->pml4.v)
		free_tree(ept, ept->pml4.v, 4);
	ept->pml4 = hpa(0);
	ept->eptp = 0;
}

u64 *ept_leaf(struct ept *ept, u64 gpa, int *level)
{
	u64 *tab;

	if (!ept->pml4.v || gpa >> EPT_MAX_PHYS_BITS)
		return NULL;
	tab = table(ept->pml4.v);
	for (int l = 4; l >= 1; l--) {
		u64 *e = &tab[PT_INDEX(gpa, l)];

		if (!present(*e))
			return NULL;
		if (is_leaf(*e, l)) {
			if (level)
				*level = l;
			return e;
		}
		tab = table(*e);
	}
	return NULL; /* unreachable: level 1 entries are leaves */
}

/* Fills table ct with the 512 leaves that repeat the level-l leaf `old` one level down. */
static void fill_split(u64 *ct, u64 old, int l)
{
	u64 base = old & EPT_ADDR_MASK, sub = EPT_LEVEL_SIZE(l - 1);
	u64 attr = old & ~(EPT_ADDR_MASK | EPT_LARGE | EPT_SPP);

	for (u64 i = 0; i < PT_ENTRIES; i++)
		ct[i] = (base + i * sub) | attr | (l - 1 >= 2 ? EPT_LARGE : 0);
}

int ept_split(struct ept *ept, u64 gpa, int level)
{
	u64 *tab, *unlinked_at = NULL;
	hpa_t top = hpa(0);
	int top_level = 0;

	if (level < 1 || level > 3)
		return -EINVAL;
	if (!ept->pml4.v || gpa >> EPT_MAX_PHYS_BITS)
		return -EFAULT;
	tab = table(ept->pml4.v);
	for (int l = 4; l > level; l--) {
		u64 *e = &tab[PT_INDEX(gpa, l)];
		u64 old = *e;
		hpa_t child;

		if (!present(old))
			return -EFAULT;
		if (!is_leaf(old, l)) {
			tab = table(old);
			continue;
		}
		if (ept->bbm && !top.v && ept->npending == EPT_MERGE_MAX)
			return -ENOMEM; /* the caller finishes what is pending first */
		child = table_alloc(ept);
		if (!child.v) {
			if (top.v) /* nothing was linked: give the unlinked subtree back */
				free_tree(ept, top.v, top_level);
			return -ENOMEM;
		}
		fill_split(table(child.v), old, l);
		if (!ept->bbm || top.v) {
			/* No page size a processor can have cached changes: linked at once (below an
			 * unlinked table, nothing can have cached it). */
			atomic_store(e, child.v | EPT_NONLEAF);
		} else {
			/* Break before make: linked by ept_merge_finish(), after the caller's
			 * shootdown (mm/ept.h). */
			top = child;
			top_level = l - 1;
			unlinked_at = e;
		}
		tab = table(child.v);
	}
	if (top.v) {
		u64 size = EPT_LEVEL_SIZE(top_level + 1);

		ept->pending[ept->npending].entry = unlinked_at;
		ept->pending[ept->npending].leaf = top.v | EPT_NONLEAF;
		ept->pending[ept->npending].gpa = ALIGN_DOWN(gpa, size);
		ept->pending[ept->npending].size = size;
		ept->pending[ept->npending].table = top;
		ept->pending[ept->npending].split = true;
		ept->npending++;
		atomic_store(unlinked_at, 0);
		return 0;
	}
	return ept_leaf(ept, gpa, NULL) ? 0 : -EFAULT; /* e.g. above the limit, under a present PML4E */
}

u64 *ept_pending_table(struct ept *ept, const u64 *entry)
{
	for (u32 i = 0; i < ept->npending; i++)
		if (ept->pending[i].entry == entry && ept->pending[i].split)
			return table(ept->pending[i].table.v);
	return NULL;
}

bool ept_try_merge(struct ept *ept, u64 gpa, int level, u64 (*keep)(void *ctx, u64 gpa), void *ctx)
{
	u64 *tab, *e = NULL, *ct, first, attr, ad = 0, sub, gbase, old;

	if (level < 2 || level > 3 || (level == 3 && !ept->has_1g) || !ept->pml4.v ||
	    gpa >> EPT_MAX_PHYS_BITS || ept->npending == EPT_MERGE_MAX)
		return false;
	tab = table(ept->pml4.v);
	for (int l = 4; l >= level; l--) {
		e = &tab[PT_INDEX(gpa, l)];
		if (!present(*e) || is_leaf(*e, l))
			return false;
		tab = table(*e);
	}
	ct = tab;
	sub = EPT_LEVEL_SIZE(level - 1);
	gbase = ALIGN_DOWN(gpa, EPT_LEVEL_SIZE(level));
	first = ct[0];
	attr = first & ~(EPT_ADDR_MASK | EPT_AD);
	if (!present(first) || !is_leaf(first, level - 1) || (first & EPT_SPP) ||
	    !IS_ALIGNED(first & EPT_ADDR_MASK, EPT_LEVEL_SIZE(level)))
		return false;
	for (u64 i = 0; i < PT_ENTRIES; i++) {
		u64 c = ct[i];

		if ((c & ~(EPT_ADDR_MASK | EPT_AD)) != attr ||
		    (c & EPT_ADDR_MASK) != (first & EPT_ADDR_MASK) + i * sub)
			return false;
		if (keep && keep(ctx, gbase + i * sub))
			return false;
		ad |= c & EPT_AD;
	}
	old = *e;
	ept->pending[ept->npending].entry = e;
	ept->pending[ept->npending].leaf = (first & EPT_ADDR_MASK) | attr | ad | EPT_LARGE;
	ept->pending[ept->npending].gpa = gbase;
	ept->pending[ept->npending].size = EPT_LEVEL_SIZE(level);
	ept->pending[ept->npending].table = hpa(old & EPT_ADDR_MASK);
	ept->pending[ept->npending].split = false;
	ept->npending++;
	/* Not present until ept_merge_finish(): the table is no longer reachable for a walk
	 * that starts after the caller's INVEPT, and no CPU can combine a cached 4 KiB
	 * translation with the new large one. The table itself is left intact, so a CPU that
	 * still caches this entry reads the translations it had. */
	atomic_store(e, 0);
	return true;
}

u64 ept_merge_finish(struct ept *ept)
{
	u64 n = ept->npending;

	for (u32 i = 0; i < ept->npending; i++) {
		atomic_store(ept->pending[i].entry, ept->pending[i].leaf);
		if (ept->pending[i].split)
			continue; /* its table is now linked */
		pmm_free_page(ept->pending[i].table);
		ept->tables--;
	}
	ept->npending = 0;
	return n;
}

void ept_merge_cancel(struct ept *ept)
{
	u32 k = 0;

	for (u32 i = 0; i < ept->npending; i++) {
		if (ept->pending[i].split) {
			ept->pending[k++] = ept->pending[i]; /* its caller finishes it (mm/ept.h) */
			continue;
		}
		atomic_store(ept->pending[i].entry, ept->pending[i].table.v | EPT_NONLEAF);
	}
	ept->npending = k;
}

bool ept_violation_stale(struct ept *ept, u64 gpa, u64 access)
{
	bool r = false;
	u64 *e;

	access &= EPT_RWX;
	spin_lock(&ept->lock);
	for (u32 i = 0; i < ept->npending && !r; i++)
		r = gpa - ept->pending[i].gpa < ept->pending[i].size;
	if (!r && access) {
		e = ept_leaf(ept, gpa, NULL);
		r = e && (*e & access) == access;
		if (r)
			invept(INVEPT_ALL_CONTEXT, 0);
	}
	spin_unlock(&ept->lock);
	return r;
}
