/*
 * VT-d second-level page tables for DMA (VT-d specification rev. 4.1, section 3.7 and 9.8):
 * the one address space every device under Tessel's IOMMU units sees.
 *
 * It is an identity map of guest RAM (the firmware's memory map, mm/memmap.c's notion of
 * RAM) and of the RMRR ranges, read+write, with
 *   - no mapping at all for the hypervisor's region (a DMA there faults, reads included),
 *   - no mapping for anything that is not RAM (MMIO: no peer-to-peer DMA),
 *   - 4 KiB leaves read-only for every page that has a protected sub-page: an IOMMU has no
 *     sub-page granularity, so a device can then write none of the page, writable sub-pages
 *     included (such a write faults and is reported).
 * 2 MiB leaves are used where a whole aligned block is RAM and the unit supports them;
 * vtd_pt_prepare() splits one before a page in it changes.
 *
 * Entries (VT-d 9.8, Table 9-x "Second-level paging entries"): bit 0 Read, bit 1 Write,
 * bit 7 Page Size (in a PDE/PDPE: this entry is a leaf), bits 51:12 address. Tables are 4 KiB
 * pages from the page allocator, reached through hpa_to_ptr().
 */
#ifndef DRIVERS_VTD_PT_H
#define DRIVERS_VTD_PT_H

#include <tessel/types.h>
#include "drivers/dmar.h"

#define VTD_SL_R     BIT(0)
#define VTD_SL_W     BIT(1)
#define VTD_SL_PS    BIT(7)
#define VTD_SL_ADDR  0x000ffffffffff000ULL

struct vtd_pt {
	hpa_t root;     /* the top-level table (SLPTPTR of the context entries) */
	u32 levels;     /* 3 (39-bit AGAW) or 4 (48-bit AGAW) */
	bool large;     /* 2 MiB leaves allowed (CAP.SLLPS bit 0) */
	u64 tables;     /* table pages in use */
	u64 limit;      /* first address the tables cannot map: 2^(12 + 9 * levels) */
	bool flush;     /* the unit does not snoop its table walks (ECAP.C = 0): write back */
};

struct vtd_pt_params {
	u32 levels;
	bool large;
	const struct dmar_rmrr *rmrrs;
	u32 rmrr_count;
};

/*
 * Build the map; memmap_init() must have run (it knows RAM and the hypervisor's region).
 * Returns 0, -ENOMEM (the partial tables stay allocated: boot then fails), or -EINVAL
 * (an RMRR overlaps the hypervisor's region, or levels is not 3 or 4). RAM at or above the
 * tables' limit is left unmapped and counted in *unmapped (pages), if not NULL.
 */
int vtd_pt_build(struct vtd_pt *pt, const struct vtd_pt_params *p, u64 *unmapped);

/* Make sure the page at gpa has its own 4 KiB leaf (split a 2 MiB one). 0, -ENOMEM, or
 * -ENODEV when the page is not DMA-mapped at all (nothing to protect). */
int vtd_pt_prepare(struct vtd_pt *pt, u64 gpa);

/* Set the page's leaf read-only (writable = false) or read+write; only after a successful
 * vtd_pt_prepare() for the page (a page without a 4 KiB leaf is left alone). Cannot fail.
 * The caller invalidates the IOTLB afterwards. Returns true if the entry changed. */
bool vtd_pt_set_writable(struct vtd_pt *pt, u64 gpa, bool writable);

/* The same for the 2 MiB leaf that maps gpa, if it is mapped by one (false otherwise): the
 * fallback when a block cannot be split for lack of memory. */
bool vtd_pt_set_block_writable(struct vtd_pt *pt, u64 gpa, bool writable);

#endif
