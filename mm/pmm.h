/*
 * The physical page allocator: hands out 4 KiB host-physical pages of the hypervisor's own
 * region (the contiguous block the loader allocated from UEFI). One bitmap, kept in the
 * first pages of the region itself; lowest-address-first, so the same sequence of calls
 * always returns the same pages. SMP-safe (one spinlock). Pages are reached through
 * hpa_to_ptr().
 *
 * hpa(0) means failure. It can never be a real allocation: the bitmap occupies the first
 * page of the region, so even a region starting at physical 0 never hands out page 0.
 */
#ifndef MM_PMM_H
#define MM_PMM_H

#include <tessel/types.h>

/* Takes over [base, base + size), shrunk inward to page boundaries; forgets any earlier state.
 * Not SMP-safe: call once at boot before any other CPU allocates. */
void pmm_init(hpa_t base, u64 size);

hpa_t pmm_alloc_page(void);       /* a zeroed page, or hpa(0) when none is left */
hpa_t pmm_alloc_pages(u64 n);     /* n contiguous zeroed pages, or hpa(0) */

/* Returns false (and changes nothing) for an address the allocator did not hand out: outside
 * the region, not page-aligned, in the bitmap, or already free (a double free). Any false
 * return is a hypervisor bug the caller should report. */
bool pmm_free_page(hpa_t p);
bool pmm_free_pages(hpa_t p, u64 n); /* all-or-nothing: every page must be allocated */

u64 pmm_free_count(void);   /* pages currently free */
u64 pmm_total_count(void);  /* pages the allocator manages (the region minus the bitmap) */
bool pmm_owns(hpa_t p);     /* p lies in an allocatable page of the region */

#endif
