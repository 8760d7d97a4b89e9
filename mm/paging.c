/*
 * Host page-table construction (Intel SDM Vol. 3A section 4.5, 4-level paging).
 * Identity map first, with the largest pages the memory types allow (paging.h); then the
 * core image at its link address in 4 KiB pages so that each section gets its own
 * permissions.
 */
#include <hw.h>
#include <arch/ept.h>
#include "mtrr.h"
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

static enum host_mem kind_of(const struct host_map_params *p, u64 base, u64 len)
{
	return p->kind ? p->kind(base, len) : HOST_MEM_RAM;
}

/* May [pa, pa + size) be one page of the identity map? */
static bool large_ok(const struct host_map_params *p, u64 pa, u64 size)
{
	u8 type;
	if (p->apic_base && (p->apic_base & ~(PAGE_SIZE - 1)) - pa < size)
		return false;
	if (p->mtrr && !mtrr_range_uniform(p->mtrr, pa, size, &type))
		return false;
	return kind_of(p, pa, size) != HOST_MEM_MIXED;
}

/* Identity-map [pa, pa + size of one entry of this level) into entry e (level 3: 1 GiB,
 * 2: 2 MiB, 1: 4 KiB), as one page where large_ok() allows, else through a table. */
static bool map_identity_entry(const struct host_map_params *p, u64 *e, u64 pa, unsigned level)
{
	u64 size = 1ULL << (12 + 9 * (level - 1));
	/* Executable: the loader's trampoline runs from here across the CR3 switch. */
	u64 flags = PTE_P | PTE_W;
	if (level == 1 || ((level == 2 || p->use_1g) && large_ok(p, pa, size))) {
		if (kind_of(p, pa, size) != HOST_MEM_RAM)
			flags |= PTE_PCD | PTE_PWT;
		*e = pa | flags | (level > 1 ? PTE_PS : 0);
		return true;
	}
	u64 *t = next_table(e);
	if (!t)
		return false;
	for (unsigned i = 0; i < 512; i++)
		if (!map_identity_entry(p, &t[i], pa + i * (size / 512), level - 1))
			return false;
	return true;
}

static bool map_identity(u64 *pml4, const struct host_map_params *p, u64 top)
{
	for (u64 pa = 0; pa < top; pa += SZ_1G) {
		u64 *pdpt = next_table(&pml4[PT_INDEX(pa, 4)]);
		if (!pdpt || !map_identity_entry(p, &pdpt[PT_INDEX(pa, 3)], pa, 3))
			return false;
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
	u64 top = MIN(ALIGN_UP(p->identity_top, SZ_1G), 1ULL << 47);
	if (!map_identity(pml4, p, top))
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
