/*
 * What guest-physical memory is: RAM (per the firmware's memory map at boot), the
 * hypervisor's region (never guest RAM), or anything else (MMIO, reserved, holes).
 */
#ifndef MM_MEMMAP_H
#define MM_MEMMAP_H

#include <tessel/bootinfo.h>
#include <tessel/types.h>

void memmap_init(const struct tessel_mem_range *ranges, u32 count, u64 hv_base, u64 hv_size);
/* Every byte of [gpa, gpa+len) is guest RAM (not the hypervisor's region). */
bool memmap_is_ram(u64 gpa, u64 len);
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
/* Highest RAM address + 1. */
u64 memmap_ram_top(void);

#endif
