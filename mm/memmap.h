/*
 * What guest-physical memory is: RAM (per the firmware's memory map at boot), the
 * hypervisor's region (never guest RAM), or anything else (MMIO, reserved, holes).
 */
#ifndef MM_MEMMAP_H
#define MM_MEMMAP_H

#include <tessel/bootinfo.h>
#include <tessel/types.h>

void memmap_init(const struct tessel_mem_range *ranges, u32 count, u64 hv_base, u64 hv_size);
/* Every byte of [gpa, gpa+len) is guest RAM (not the hypervisor's region). Inline: guest
 * page walks ask at every level. The RAM ranges that hold no byte of the region or of a
 * hidden range are kept as windows (fixed once the guest runs: memmap_init, memmap_hide);
 * the last window a lookup hit answers first, anything else takes the full lookup. */
struct memmap_window { u64 start, size; };
extern struct memmap_window memmap_clean[];
extern u32 memmap_hot;
bool memmap_is_ram_slow(u64 gpa, u64 len);
static inline bool memmap_is_ram(u64 gpa, u64 len)
{
	const struct memmap_window *w = &memmap_clean[__atomic_load_n(&memmap_hot, __ATOMIC_RELAXED)];
	u64 off = gpa - w->start;
	if (off < w->size && len - 1 < w->size - off) /* inside, len >= 1, no wrap */
		return true;
	return memmap_is_ram_slow(gpa, len);
}
/* Any byte of [gpa, gpa+len) is in the hypervisor's region, or in a range hidden like it
 * (memmap_hide). */
bool memmap_in_hv(u64 gpa, u64 len);
/* For the host's own mappings (mm/paging.c): is [base, base+len) all RAM or the hypervisor's
 * region (MEMMAP_ALL_RAM), none of it (MEMMAP_NO_RAM: MMIO, holes, reserved), or a mix? */
enum { MEMMAP_ALL_RAM, MEMMAP_NO_RAM, MEMMAP_MIXED };
int memmap_host_kind(u64 base, u64 len);
/* Treat [base, base+size) like the region from now on (the VT-d units' register pages,
 * docs/IOMMU.md): the guest's writes there are discarded. At most MEMMAP_HIDDEN_MAX ranges;
 * returns false when full. memmap_init() forgets them. */
#define MEMMAP_HIDDEN_MAX 16
bool memmap_hide(u64 base, u64 size);
/* Counts the changes memmap_hide makes (a cached guest walk from before one is not used). */
extern u32 memmap_gen;
/* Highest RAM address + 1. */
u64 memmap_ram_top(void);

#endif
