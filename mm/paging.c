/*
 * Host page-table construction (Intel SDM Vol. 3A section 4.5, 4-level paging).
 * Identity map first, with the largest pages the processor has; then the core image at
 * its link address in 4 KiB pages so that each section gets its own permissions.
 */
#include <hw.h>
#include <arch/ept.h>
#include "paging.h"
#include "pmm.h"

static u64 *table_of(u64 entry) { return hpa_to_ptr(hpa(entry & PTE_ADDR)); }

/* Returns the next-level table under *e, allocating it if absent. */
static u64 *next_table(u64 *e)
{
	if (!(*e & PTE_P)) {
		hpa_t t = pmm_alloc_page();
		if (!t.v)
			return NULL;
		*e = t.v | PTE_P | PTE_W;
	}
	return table_of(*e);
}

static bool map_identity(u64 *pml4, u64 top, bool use_1g)
{
	u64 step = use_1g ? SZ_1G : SZ_2M;
	/* Executable: the loader's trampoline runs from here across the CR3 switch. */
	u64 flags = PTE_P | PTE_W | PTE_PS;
	for (u64 pa = 0; pa < top; pa += step) {
		u64 *pdpt = next_table(&pml4[PT_INDEX(pa, 4)]);
		if (!pdpt)
			return false;
		if (use_1g) {
			pdpt[PT_INDEX(pa, 3)] = pa | flags;
			continue;
		}
		u64 *pd = next_table(&pdpt[PT_INDEX(pa, 3)]);
		if (!pd)
			return false;
		pd[PT_INDEX(pa, 2)] = pa | flags;
	}
	return true;
}

static bool map_page(u64 *pml4, u64 va, u64 pa, u64 flags)
{
	u64 *pdpt = next_table(&pml4[PT_INDEX(va, 4)]);
	u64 *pd = pdpt ? next_table(&pdpt[PT_INDEX(va, 3)]) : NULL;
	u64 *pt = pd ? next_table(&pd[PT_INDEX(va, 2)]) : NULL;
	if (!pt)
		return false;
	pt[PT_INDEX(va, 1)] = pa | flags;
	return true;
}

hpa_t paging_build_host(const struct host_map_params *p)
{
	hpa_t root = pmm_alloc_page();
	if (!root.v)
		return hpa(0);
	u64 *pml4 = hpa_to_ptr(root);
	/* The identity map must stay in the lower half: the image lives at the top. */
	u64 top = MIN(ALIGN_UP(p->identity_top, p->use_1g ? SZ_1G : SZ_2M), 1ULL << 47);
	if (!map_identity(pml4, top, p->use_1g))
		return hpa(0);
	u64 nx = p->nx ? PTE_NX : 0;
	for (u64 off = 0; off < p->image_size; off += PAGE_SIZE) {
		u64 flags = PTE_P | PTE_G;
		if (off >= p->rodata_end)
			flags |= PTE_W | nx;
		else if (off >= p->text_size)
			flags |= nx;
		if (!map_page(pml4, p->image_va + off, p->image_pa + off, flags))
			return hpa(0);
	}
	return root;
}
