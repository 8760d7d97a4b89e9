/* The fake machine and boot shared by the fuzz harnesses (see fuzz_common.h). */
#include <sanitizer/asan_interface.h>
#include <string.h>

#include "fuzz_common.h"
#include "hv/vmcs.h"
#include "mm/memmap.h"
#include "mm/pmm.h"

/* The firmware's memory map, deliberately out of order; the region itself is LoaderData
 * (RAM by type) as the loader allocated it, so only hv_base/hv_size exclude it. */
static const struct tessel_mem_range fw_map[] = {
	{ W_BASE + MiB(34), (RAM_END - W_BASE - MiB(34)) >> 12, EFI_MT_CONVENTIONAL, 0 },
	{ W_BASE, MiB(16) >> 12, EFI_MT_CONVENTIONAL, 0 },
	{ W_BASE + MiB(16), MiB(4) >> 12, EFI_MT_BS_DATA, 0 },
	{ W_BASE + MiB(20), 4, EFI_MT_ACPI_NVS, 0 },
	{ MMIO_BASE, (MMIO_END - MMIO_BASE) >> 12, EFI_MT_MMIO, 0 },
	{ W_BASE + MiB(24), (MiB(2) + KiB(8)) >> 12, EFI_MT_RT_DATA, 0 },
	{ HV_BASE, HV_SIZE >> 12, EFI_MT_LOADER_DATA, 0 },
	{ HV_END, (W_BASE + MiB(32) - HV_END) >> 12, EFI_MT_CONVENTIONAL, 0 },
	{ RSVD_BASE, (RSVD_END - RSVD_BASE) >> 12, EFI_MT_RESERVED, 0 },
};

/* guest RAM: the ranges above, merged, minus the region */
const struct mrange ram[] = {
	{ W_BASE, W_BASE + MiB(20) + KiB(16) },
	{ W_BASE + MiB(24), HV_BASE },
	{ HV_END, W_BASE + MiB(32) },
	{ W_BASE + MiB(34), RAM_END },
};

bool model_is_ram(u64 gpa, u64 len)
{
	if (!len || gpa + len < gpa)
		return false;
	for (unsigned i = 0; i < NRAM; i++)
		if (gpa >= ram[i].start && gpa + len <= ram[i].end)
			return true;
	return false;
}

/* n pages from gfn, all RAM (overflow-safe). */
bool model_pages_ram(u64 gfn, u64 n)
{
	if (!n || gfn >= (1ULL << 52) || n >= (1ULL << 52))
		return false;
	return model_is_ram(gfn << PAGE_SHIFT, n << PAGE_SHIFT);
}

/* MTRRs: WB by default, UC over [20 MiB, 24 MiB) of the window, WC for one 4 KiB page. */
unsigned model_mt(u64 gpa)
{
	if (gpa >= UC_BASE && gpa < UC_BASE + MiB(4))
		return MT_UC;
	if (gpa >= WC_PAGE && gpa < WC_PAGE + PAGE_SIZE)
		return MT_WC;
	return MT_WB;
}

struct mtrr_state mtrr;
struct ept ept;
hpa_t ff_page;
struct percpu cpu, cpu1;
struct guest_regs regs;

/* The boot state put back before each input (see restore_baseline). */
u8 base_page[HV_PAGES]; /* 1: allocated at the baseline */
static struct { u64 addr; u8 data[PAGE_SIZE]; } base_tables[32];
static unsigned n_base_tables;
struct ept base_ept;
u64 base_free;
/* ---- guest memory access by the harness (RAM stays ASan-poisoned between calls) ---- */

u8 *gptr(u64 gpa) { return (u8 *)hpa_to_ptr(hpa(gpa)); }

/* [lo, hi) clamped to the window, widened to 8-byte granules. */
static bool granules(u64 gpa, u64 len, u64 *lo, u64 *hi)
{
	u64 end = gpa + len < gpa ? ~0ULL : gpa + len;
	*lo = ALIGN_DOWN(MAX(gpa, W_BASE), 8);
	*hi = ALIGN_UP(MIN(end, W_BASE + W_SIZE), 8);
	return len && *lo < *hi;
}

void set_poison(u64 gpa, u64 len, bool poison)
{
	u64 lo, hi;
	if (!granules(gpa, len, &lo, &hi))
		return;
	/* never the hypervisor's own memory */
	u64 parts[2][2] = { { lo, MIN(hi, HV_BASE) }, { MAX(lo, HV_END), hi } };
	for (int i = 0; i < 2; i++) {
		if (parts[i][0] >= parts[i][1])
			continue;
		if (poison)
			__asan_poison_memory_region(gptr(parts[i][0]), parts[i][1] - parts[i][0]);
		else
			__asan_unpoison_memory_region(gptr(parts[i][0]), parts[i][1] - parts[i][0]);
	}
}

void gread(u64 gpa, void *dst, u64 len)
{
	set_poison(gpa, len, false);
	memcpy(dst, gptr(gpa), len);
	set_poison(gpa, len, true);
}

void gwrite(u64 gpa, const void *src, u64 len)
{
	set_poison(gpa, len, false);
	memcpy(gptr(gpa), src, len);
	set_poison(gpa, len, true);
}
/* ---- independent walkers (SDM 28.3.2 for EPT; docs/SPP.md section 4 for the SPPT) ---- */


const u64 *table_at(u64 addr, const char *what)
{
	if (addr < HV_BASE || addr >= HV_END || (addr & 0xfff))
		fail("%s table at 0x%llx is not a page of the hypervisor's region", what, (unsigned long long)addr);
	return (const u64 *)hpa_to_ptr(hpa(addr));
}

/* The EPT leaf for gpa and its level (1 = 4 KiB), or 0 if not present. */
u64 ept_walk(u64 gpa, int *level)
{
	u64 addr = ept.eptp & BITS(51, 12);
	for (int l = 4; l >= 1; l--) {
		u64 e = table_at(addr, "EPT")[(gpa >> (12 + 9 * (l - 1))) & 511];
		*level = l;
		if (!(e & 7))
			return 0;
		if (l == 1 || (l <= 3 && (e & E_PS)))
			return e;
		addr = e & BITS(PHYS_BITS - 1, 12);
	}
	return 0;
}
/* ---- (re)initialisation: a fresh hypervisor per input ---- */

/*
 * Booting costs more than a typical input, so the part that does not depend on the input
 * (pmm, memmap, the 0xFF page, the EPT identity map: what hv/main.c does before spp_init) is
 * done once and put back before each input: every region page that was not allocated at
 * that point is freed again (pmm_free_page refuses free ones), and the EPT tables that
 * existed then get their contents back. The pmm allocates lowest-address-first, so the
 * following spp_init and every later allocation see exactly what a fresh boot would.
 */

static void collect_tables(u64 addr, int level)
{
	if (n_base_tables == ARRAY_SIZE(base_tables))
		fail("init: more EPT tables than expected");
	const u64 *t = table_at(addr, "EPT");
	base_tables[n_base_tables].addr = addr;
	memcpy(base_tables[n_base_tables++].data, t, PAGE_SIZE);
	base_page[(addr - HV_BASE) >> PAGE_SHIFT] = 1;
	for (int i = 0; i < 512 && level > 1; i++)
		if ((t[i] & 7) && !(level <= 3 && (t[i] & E_PS)))
			collect_tables(t[i] & BITS(PHYS_BITS - 1, 12), level - 1);
}

void init_once(void)
{
	fake_reset();
	fake_phys_init(W_BASE, W_SIZE);
	set_poison(W_BASE, W_SIZE, true); /* guest RAM, MMIO hole and reserved range */

	mtrr = (struct mtrr_state){ .enabled = true, .def_type = MT_WB, .var_count = 2, .phys_bits = PHYS_BITS };
	mtrr.var[0].base = UC_BASE | MT_UC;
	mtrr.var[0].mask = (~(MiB(4) - 1) & BITS(PHYS_BITS - 1, 0)) | MTRR_PHYSMASK_VALID;
	mtrr.var[1].base = WC_PAGE | MT_WC;
	mtrr.var[1].mask = (~(PAGE_SIZE - 1) & BITS(PHYS_BITS - 1, 0)) | MTRR_PHYSMASK_VALID;

	fake_vmcs_set(VMCS_RO_EXIT_INSN_LEN, 3);
	fake_vmcs_set(VMCS_GUEST_CR0, CR0_PE | CR0_PG | CR0_NE);

	pmm_init(hpa(HV_BASE), HV_SIZE);
	memmap_init(fw_map, ARRAY_SIZE(fw_map), HV_BASE, HV_SIZE);
	ff_page = pmm_alloc_page();
	if (!ff_page.v)
		fail("init: no page for the 0xFF page");
	memset(hpa_to_ptr(ff_page), 0xff, PAGE_SIZE);
	struct ept_params ep = { .phys_bits = PHYS_BITS, .has_1g = true, .mtrr = &mtrr,
				 .hv_base = HV_BASE, .hv_size = HV_SIZE, .ff_page = ff_page };
	int r = ept_build_identity(&ept, &ep);
	if (r)
		fail("init: ept_build_identity: %d", r);
	base_ept = ept;
	base_page[(ff_page.v - HV_BASE) >> PAGE_SHIFT] = 1;
	for (u64 p = HV_BASE; p < HV_END; p += PAGE_SIZE) /* the pmm's bitmap */
		if (!pmm_owns(hpa(p)))
			base_page[(p - HV_BASE) >> PAGE_SHIFT] = 1;
	collect_tables(ept.eptp & BITS(51, 12), 4);
	base_free = pmm_free_count();
	u64 nbase = 0;
	for (u64 i = 0; i < HV_PAGES; i++)
		nbase += base_page[i];
	if (base_free + nbase != HV_PAGES)
		fail("init: %llu free + %llu accounted pages != %llu region pages", (unsigned long long)base_free,
		     (unsigned long long)nbase, (unsigned long long)HV_PAGES);
}

void restore_baseline(void)
{
	for (u64 i = 0; i < HV_PAGES; i++)
		if (!base_page[i])
			pmm_free_page(hpa(HV_BASE + (i << PAGE_SHIFT)));
	if (pmm_free_count() != base_free)
		fail("pmm: %llu pages free after freeing everything, %llu at boot",
		     (unsigned long long)pmm_free_count(), (unsigned long long)base_free);
	for (unsigned i = 0; i < n_base_tables; i++)
		memcpy(hpa_to_ptr(hpa(base_tables[i].addr)), base_tables[i].data, PAGE_SIZE);
	ept = base_ept;
}
