/*
 * Guest RAM as the firmware described it when the hypervisor started. The ranges are
 * kept sorted and merged (as they are added, so any number of descriptors that make up at
 * most MEMMAP_MAX runs fits) and a lookup is a binary search. tessel_mem_type_is_ram()
 * (bootinfo.h) says which UEFI types count as RAM.
 */
#include "memmap.h"
#include "hv/log.h"

#define MEMMAP_MAX TESSEL_MAX_MEM_RANGES

static struct { u64 start, end; } ram[MEMMAP_MAX];
static u32 ram_count;
static u64 hv_start, hv_end;
static struct { u64 start, end; } hidden[MEMMAP_HIDDEN_MAX];
static u32 hidden_count;
/* ram[i] as a window when none of it is the region or hidden, else size 0 (memmap.h). */
struct memmap_window memmap_clean[MEMMAP_MAX];
u32 memmap_hot;
u32 memmap_gen;

static void clean_update(void)
{
	for (u32 i = 0; i < MEMMAP_MAX; i++) {
		bool ok = i < ram_count && !memmap_in_hv(ram[i].start, ram[i].end - ram[i].start);
		memmap_clean[i].start = ok ? ram[i].start : 0;
		memmap_clean[i].size = ok ? ram[i].end - ram[i].start : 0;
	}
}

/* Adds [s, e) to the sorted, merged table. The table only fills up if the RAM really is
 * in more than MEMMAP_MAX separate runs; then the range is left out (and counted). */
static bool add_ram(u64 s, u64 e)
{
	u32 i = ram_count;
	while (i > 0 && ram[i - 1].end >= s) /* the firmware's map is nearly sorted: scan back */
		i--;
	if (i < ram_count && ram[i].start <= e) {
		/* Overlaps or touches ram[i]: grow it, then swallow what it now reaches. */
		ram[i].start = MIN(ram[i].start, s);
		ram[i].end = MAX(ram[i].end, e);
		u32 k = i + 1;
		while (k < ram_count && ram[k].start <= ram[i].end) {
			ram[i].end = MAX(ram[i].end, ram[k].end);
			k++;
		}
		for (u32 j = k; j < ram_count; j++)
			ram[i + 1 + (j - k)] = ram[j];
		ram_count -= k - i - 1;
		return true;
	}
	if (ram_count == MEMMAP_MAX)
		return false;
	for (u32 j = ram_count; j > i; j--)
		ram[j] = ram[j - 1];
	ram[i].start = s;
	ram[i].end = e;
	ram_count++;
	return true;
}

void memmap_init(const struct tessel_mem_range *ranges, u32 count, u64 hv_base, u64 hv_size)
{
	hv_start = hv_base;
	hv_end = hv_base + hv_size;
	hidden_count = 0;
	__atomic_add_fetch(&memmap_gen, 1, __ATOMIC_SEQ_CST);
	ram_count = 0;
	u32 dropped = 0;
	for (u32 i = 0; i < count; i++) {
		if (!tessel_mem_type_is_ram(ranges[i].type) || !ranges[i].pages)
			continue;
		u64 s = ranges[i].base, e = s + ranges[i].pages * PAGE_SIZE;
		if (!add_ram(s, e))
			dropped++;
	}
	clean_update();
	if (dropped)
		log_warn("memory map: RAM in more than %u separate runs: %u range%s left out "
			 "(treated as not RAM: no sub-page protection, no emulated access)",
			 MEMMAP_MAX, dropped, dropped == 1 ? "" : "s");
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
	clean_update();
	__atomic_add_fetch(&memmap_gen, 1, __ATOMIC_SEQ_CST);
	return true;
}

/* Index of the first RAM range that ends after gpa (ram_count if none): binary search. */
static u32 first_ending_after(u64 gpa)
{
	u32 lo = 0, hi = ram_count;
	while (lo < hi) {
		u32 mid = (lo + hi) / 2;
		if (ram[mid].end <= gpa)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

bool memmap_is_ram_slow(u64 gpa, u64 len)
{
	if (!len || gpa + len < gpa || memmap_in_hv(gpa, len))
		return false;
	/* Guest page walks ask about the same few ranges again and again (the page tables',
	 * the code's, the data's): try the last four hits first. The table never changes after
	 * boot, so racy reads of the indexes are harmless (each is checked before use). */
	static u32 recent[4], next;
	for (unsigned k = 0; k < 4; k++) {
		u32 l = __atomic_load_n(&recent[k], __ATOMIC_RELAXED);
		if (l < ram_count && ram[l].start <= gpa && gpa + len <= ram[l].end) {
			if (memmap_clean[l].size)
				__atomic_store_n(&memmap_hot, l, __ATOMIC_RELAXED);
			return true;
		}
	}
	u32 lo = first_ending_after(gpa);
	bool ok = lo < ram_count && ram[lo].start <= gpa && gpa + len <= ram[lo].end;
	if (ok) {
		__atomic_store_n(&recent[__atomic_fetch_add(&next, 1, __ATOMIC_RELAXED) & 3], lo, __ATOMIC_RELAXED);
		if (memmap_clean[lo].size)
			__atomic_store_n(&memmap_hot, lo, __ATOMIC_RELAXED);
	}
	return ok;
}

u64 memmap_ram_top(void)
{
	return ram_count ? ram[ram_count - 1].end : 0;
}

/* Bytes of [base, end) that are RAM or the hypervisor's region (the two never overlap: the
 * region is reserved in the firmware's map). */
static u64 host_ram_bytes(u64 base, u64 end)
{
	u64 n = 0;
	for (u32 i = first_ending_after(base); i < ram_count && ram[i].start < end; i++)
		n += MIN(ram[i].end, end) - MAX(ram[i].start, base);
	if (hv_start < end && hv_end > base)
		n += MIN(hv_end, end) - MAX(hv_start, base);
	return n;
}

int memmap_host_kind(u64 base, u64 len)
{
	if (!len || base + len < base)
		return MEMMAP_MIXED;
	u64 n = host_ram_bytes(base, base + len);
	return n == len ? MEMMAP_ALL_RAM : n == 0 ? MEMMAP_NO_RAM : MEMMAP_MIXED;
}
