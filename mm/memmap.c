/*
 * Guest RAM as the firmware described it when the hypervisor started. The ranges are
 * kept sorted and merged so a lookup is a binary search. UEFI types that are RAM the OS
 * may use (loader/boot/runtime code and data, conventional, ACPI reclaim/NVS, persistent)
 * count as RAM; reserved, unusable and MMIO do not.
 */
#include "memmap.h"

#define MEMMAP_MAX TESSEL_MAX_MEM_RANGES

static struct { u64 start, end; } ram[MEMMAP_MAX];
static u32 ram_count;
static u64 hv_start, hv_end;
static struct { u64 start, end; } hidden[MEMMAP_HIDDEN_MAX];
static u32 hidden_count;

static bool type_is_ram(u32 t)
{
	switch (t) {
	case EFI_MT_LOADER_CODE: case EFI_MT_LOADER_DATA: case EFI_MT_BS_CODE: case EFI_MT_BS_DATA:
	case EFI_MT_RT_CODE: case EFI_MT_RT_DATA: case EFI_MT_CONVENTIONAL: case EFI_MT_ACPI_RECLAIM:
	case EFI_MT_ACPI_NVS: case EFI_MT_PERSISTENT:
		return true;
	default:
		return false;
	}
}

void memmap_init(const struct tessel_mem_range *ranges, u32 count, u64 hv_base, u64 hv_size)
{
	hv_start = hv_base;
	hv_end = hv_base + hv_size;
	hidden_count = 0;
	ram_count = 0;
	for (u32 i = 0; i < count && ram_count < MEMMAP_MAX; i++) {
		if (!type_is_ram(ranges[i].type) || !ranges[i].pages)
			continue;
		u64 s = ranges[i].base, e = s + ranges[i].pages * PAGE_SIZE;
		/* insertion sort: the firmware's map is nearly sorted already */
		u32 j = ram_count++;
		while (j > 0 && ram[j - 1].start > s) {
			ram[j] = ram[j - 1];
			j--;
		}
		ram[j].start = s;
		ram[j].end = e;
	}
	u32 out = 0;
	for (u32 i = 0; i < ram_count; i++) {
		if (out && ram[i].start <= ram[out - 1].end) {
			ram[out - 1].end = MAX(ram[out - 1].end, ram[i].end);
			continue;
		}
		ram[out++] = ram[i];
	}
	ram_count = out;
}

bool memmap_in_hv(u64 gpa, u64 len)
{
	if (!len)
		return false;
	if (gpa < hv_end && gpa + len > hv_start)
		return true;
	for (u32 i = 0; i < hidden_count; i++)
		if (gpa < hidden[i].end && gpa + len > hidden[i].start)
			return true;
	return false;
}

bool memmap_hide(u64 base, u64 size)
{
	if (hidden_count >= MEMMAP_HIDDEN_MAX || !size || base + size < base)
		return false;
	hidden[hidden_count].start = base;
	hidden[hidden_count].end = base + size;
	hidden_count++;
	return true;
}

bool memmap_is_ram(u64 gpa, u64 len)
{
	if (!len || gpa + len < gpa || memmap_in_hv(gpa, len))
		return false;
	/* Guest page walks ask about the same range again and again: try the last hit first.
	 * The table never changes after boot, so a racy read of the index is harmless. */
	static u32 last;
	u32 l = __atomic_load_n(&last, __ATOMIC_RELAXED);
	if (l < ram_count && ram[l].start <= gpa && gpa + len <= ram[l].end)
		return true;
	u32 lo = 0, hi = ram_count;
	while (lo < hi) {
		u32 mid = (lo + hi) / 2;
		if (ram[mid].end <= gpa)
			lo = mid + 1;
		else
			hi = mid;
	}
	bool ok = lo < ram_count && ram[lo].start <= gpa && gpa + len <= ram[lo].end;
	if (ok)
		__atomic_store_n(&last, lo, __ATOMIC_RELAXED);
	return ok;
}

u64 memmap_ram_top(void)
{
	return ram_count ? ram[ram_count - 1].end : 0;
}
