/*
 * Host tests: table memory comes back after protect/unprotect churn (issue 9 item m, issue
 * 12). A whole hypervisor over the fake layer (pmm, memmap, the EPT identity map with a
 * 1 GiB leaf, SPP in hardware-eager, hardware-lazy and software mode), driven through
 * hc_spp_set() as the guest would drive it:
 *
 *   - churn: protect one page in each 2 MiB block of a window, then unprotect it, block
 *     after block, for more blocks than the heap could hold tables for without reclamation:
 *     every call succeeds, and after each unprotect the free page count is back at its
 *     starting level (EPT tables merged back into large leaves, SPPT tables freed);
 *   - after unprotecting everything, every page of the window is mapped by the same leaf
 *     it had at boot (a 1 GiB leaf where there was one), identity, RWX, its MTRR type;
 *   - a block that still has a protected page stays split (4 KiB leaf, W clear), and its
 *     other pages unprotected do not merge it;
 *   - the region's 0xFF pages and a page whose leaf differs (as the xAPIC page does) are
 *     never merged over;
 *   - tables are freed only after an INVEPT (the fake counts them).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include <hw.h>
#include <machine.h>
#include <arch/cpu.h>
#include <arch/ept.h>
#include <arch/vmx.h>
#include <tessel/bootinfo.h>
#include <tessel/config.h>
#include "hv/abi.h"
#include "hv/hypercall.h"
#include "hv/percpu.h"
#include "hv/vmx_caps.h"
#include "mm/ept.h"
#include "mm/memmap.h"
#include "mm/mtrr.h"
#include "mm/pmm.h"
#include "spp/spp.h"

#define MiB(x) ((u64)(x) << 20)
#define GiB (1ULL << 30)
/* Guest RAM: [W_BASE, W_BASE + 112 MiB), straddling 5 GiB: the hypervisor's region (the
 * heap) sits below 5 GiB, the RAM above it starts out in a 1 GiB EPT leaf, and the churn
 * runs there (C_BLOCKS 2 MiB blocks from 5 GiB). The heap is small: the permission store
 * takes 40 pages at first, which leaves a few dozen for tables. */
#define W_BASE (5 * GiB - MiB(16))
#define W_SIZE MiB(112)
#define HV_BASE (W_BASE + 0x1000)
#define HV_SIZE (90 * PAGE_SIZE)
#define HV_END (HV_BASE + HV_SIZE)
#define MAP_GPA (W_BASE + MiB(8)) /* the guest's map buffer */
#define C_BASE (5 * GiB)
#define C_BLOCKS 48
#define PHYS_BITS 36

static const struct tessel_mem_range fw_map[] = {
	{ W_BASE, W_SIZE >> 12, EFI_MT_CONVENTIONAL, 0 },
};
static const struct fake_machine machine = { .hv_base = HV_BASE, .hv_size = HV_SIZE, .phys_bits = PHYS_BITS,
					     .fw_map = fw_map, .fw_count = ARRAY_SIZE(fw_map) };

static struct mtrr_state mtrr;
static struct ept ept;
static struct percpu cpu, cpu1;
static struct guest_regs regs;
static u64 free0;

static int setup_mode(int cfg_spp, int cfg_sppt)
{
	struct tessel_config cfg;

	fake_reset();
	fake_phys_init(W_BASE, W_SIZE);
	if (fake_machine_ept(&machine, &mtrr, &ept))
		return -1;

	memset(&vmx_caps, 0, sizeof(vmx_caps));
	vmx_caps.phys_bits = PHYS_BITS;
	vmx_caps.proc2 = (u64)PROC2_SUBPAGE_WRITE_PERM << 32;
	memset(&cpu, 0, sizeof(cpu));
	memset(&cpu1, 0, sizeof(cpu1));
	cpu.self = &cpu;
	cpu.regs = &regs;
	cpu.launched = true;
	cpu1.self = &cpu1;
	cpu1.index = 1;
	cpu1.launched = true;
	cpu1.wait_sipi = true; /* runs no guest code: the shootdown skips it */
	percpu_array[0] = &cpu;
	percpu_array[1] = &cpu1;
	percpu_count = 2;
	fake_cpu_local_set(&cpu);

	memset(&cfg, 0, sizeof(cfg));
	cfg.spp = cfg_spp;
	cfg.sppt = cfg_sppt;
	memset(&spp, 0, sizeof(spp));
	spp.lock = (spinlock_t)SPINLOCK_INIT;
	if (spp_init(&cfg, &ept, PHYS_BITS))
		return -1;
	free0 = pmm_free_count();
	return 0;
}

static int setup_hw_eager(void **s) { (void)s; return setup_mode(CFG_SPP_HW, CFG_SPPT_EAGER); }
static int setup_hw_lazy(void **s) { (void)s; return setup_mode(CFG_SPP_HW, CFG_SPPT_LAZY); }
static int setup_sw(void **s) { (void)s; return setup_mode(CFG_SPP_SW, CFG_SPPT_EAGER); }

static int teardown(void **s)
{
	(void)s;
	if (spp.mode == SPP_MODE_HW)
		sppt_destroy(&spp.sppt);
	spp_store_destroy(&spp.store);
	ept_destroy(&ept);
	return 0;
}

/* HC_SPP_SET of n pages from gfn, every page with map. */
static s64 set_pages(u64 gfn, u64 n, u32 map)
{
	u32 *buf = hpa_to_ptr(hpa(MAP_GPA));
	struct hc_args a = { .nr = HC_SPP_SET, .arg = { gfn, n, MAP_GPA, 0 } };

	for (u64 i = 0; i < n; i++)
		buf[i] = map;
	return hc_spp_set(&cpu, &a);
}

static u64 leaf(u64 gpa, int *level)
{
	u64 *e = ept_leaf(&ept, gpa, level);
	assert_non_null(e);
	return *e;
}

/* Table pages the idle cache may hold: per block its EPT table and (hardware) its SPPT
 * leaf table, plus the tables above them they share: the window's 1 GiB EPT table and
 * (hardware) the SPPT L3 and L2 tables. */
static u64 idle_bound(void)
{
	return spp.mode == SPP_MODE_HW ? 2 * SPP_IDLE_BLOCKS + 3 : SPP_IDLE_BLOCKS + 1;
}

static void drop_idle(void)
{
	spin_lock(&spp.lock);
	spp_reclaim_idle();
	spin_unlock(&spp.lock);
	assert_int_equal(spp.nidle, 0);
}

/* Blocks of the churn window mapped by a 4 KiB table. */
static u64 split_blocks(void)
{
	u64 n = 0;

	for (u64 b = 0; b < C_BLOCKS; b++) {
		int level;

		leaf(C_BASE + b * SZ_2M, &level);
		n += level == 1;
	}
	return n;
}

/* Every page of the window outside the region's block is back in the boot leaf. */
static void check_boot_leaves(void)
{
	for (u64 a = C_BASE; a < W_BASE + W_SIZE; a += SZ_2M) {
		int level;
		u64 e = leaf(a, &level);

		assert_int_equal(level, 3);
		assert_int_equal(e & EPT_ADDR_MASK, C_BASE);
		assert_int_equal(e & EPT_RWX, EPT_RWX);
		assert_int_equal((e >> EPT_MT_SHIFT) & 7, MT_WB);
		assert_int_equal(e & EPT_SPP, 0);
	}
}

/* One page in each block, protected then unprotected, block after block: without
 * reclamation each block keeps an EPT table (and an SPPT leaf table in hardware mode), and
 * the heap runs out after a few dozen blocks. Three rounds over every block. */
static void test_churn_returns_memory(void **state)
{
	(void)state;
	u64 churned = 0;

	for (int round = 0; round < 3; round++) {
		for (u64 b = 0; b < C_BLOCKS; b++) {
			u64 gfn = (C_BASE + b * SZ_2M) / PAGE_SIZE + (b * 37) % 512;
			int level;
			s64 r = set_pages(gfn, 1, 0x0000ffff);

			if (r)
				fail_msg("round %d block %llu: protect returned %lld after %llu churned blocks, "
					 "%llu pages free of %llu at start", round, (unsigned long long)b, (long long)r,
					 (unsigned long long)churned, (unsigned long long)pmm_free_count(),
					 (unsigned long long)free0);
			u64 e = leaf(gfn << PAGE_SHIFT, &level);
			assert_int_equal(level, 1);
			assert_int_equal(e & EPT_W, 0);
			assert_int_equal(set_pages(gfn, 1, SPP_MAP_ALL), 0);
			e = leaf(gfn << PAGE_SHIFT, &level);
			assert_true(e & EPT_W);
			/* Hysteresis: the last SPP_IDLE_BLOCKS emptied blocks keep their tables,
			 * no more. */
			if (free0 - pmm_free_count() > idle_bound() || split_blocks() > SPP_IDLE_BLOCKS ||
			    spp.nidle > SPP_IDLE_BLOCKS)
				fail_msg("round %d block %llu: %llu pages free after unprotect, %llu at start, "
					 "%llu split blocks, %u idle (bound %u blocks, %llu pages)", round,
					 (unsigned long long)b, (unsigned long long)pmm_free_count(),
					 (unsigned long long)free0, (unsigned long long)split_blocks(), spp.nidle,
					 SPP_IDLE_BLOCKS, (unsigned long long)idle_bound());
			churned++;
		}
	}
	assert_int_equal(spp.nidle, SPP_IDLE_BLOCKS); /* the cache was used, and stayed bounded */
	drop_idle();
	assert_int_equal(pmm_free_count(), free0);
	check_boot_leaves();
}

/* Protect and unprotect one page of a block again and again: after the first protect the
 * block keeps its tables (no split, no merge, no table memory moving), and a page of
 * another block changes nothing there. */
static void test_hysteresis_keeps_block(void **state)
{
	(void)state;
	u64 gfn = C_BASE / PAGE_SIZE + 3;
	int level;

	assert_int_equal(set_pages(gfn, 1, 0xfffffffe), 0);
	u64 held = pmm_free_count(), tables = ept.tables;
	assert_int_equal(set_pages(gfn, 1, SPP_MAP_ALL), 0);
	assert_int_equal(spp.nidle, 1);
	assert_int_equal(pmm_free_count(), held); /* kept */
	for (int i = 0; i < 20; i++) {
		assert_int_equal(set_pages(gfn, 1, 0xfffffffe), 0);
		assert_int_equal(spp.nidle, 0);   /* live again: not idle */
		assert_int_equal(leaf(gfn << PAGE_SHIFT, &level) & EPT_W, 0);
		assert_int_equal(set_pages(gfn, 1, SPP_MAP_ALL), 0);
		assert_true(leaf(gfn << PAGE_SHIFT, &level) & EPT_W);
		assert_int_equal(pmm_free_count(), held);
		assert_int_equal(ept.tables, tables);
	}
	drop_idle();
	assert_int_equal(pmm_free_count(), free0);
	check_boot_leaves();
}

/* Blocks protected one page each until -ENOMEM; the idle cache full (warm) or empty. */
static u64 live_blocks_until_enomem(bool warm)
{
	u64 b = 0, base = C_BASE / PAGE_SIZE;

	if (warm)
		for (u64 k = 0; k < SPP_IDLE_BLOCKS; k++) {
			u64 g = base + (C_BLOCKS - 1 - k) * 512;
			assert_int_equal(set_pages(g, 1, 0), 0);
			assert_int_equal(set_pages(g, 1, SPP_MAP_ALL), 0);
		}
	if (warm)
		assert_int_equal(spp.nidle, SPP_IDLE_BLOCKS);
	for (; b < C_BLOCKS; b++) {
		u64 g = base + b * 512 + 7;
		u64 before = spp_store_protected_pages(&spp.store);
		s64 r = set_pages(g, 1, 0x0f0f0f0f);

		if (r == -ENOMEM) {
			u32 m, f;
			/* nothing changed: the page reads unprotected, its leaf is writable */
			spp_store_get(&spp.store, g, &m, &f);
			assert_int_equal(m, SPP_MAP_ALL);
			assert_int_equal(spp_store_protected_pages(&spp.store), before);
			u64 *e = ept_leaf(&ept, g << PAGE_SHIFT, NULL);
			assert_true(e && (*e & EPT_W));
			assert_int_equal(spp.nidle, 0); /* the cache was given up first */
			break;
		}
		assert_int_equal(r, 0);
	}
	return b;
}

/* -ENOMEM depends on the blocks that hold protected pages, not on the idle cache. */
static void test_enomem_ignores_idle_cache(void **state)
{
	u64 cold = live_blocks_until_enomem(false);

	teardown(state);
	assert_int_equal(setup_mode(spp.mode == SPP_MODE_HW ? CFG_SPP_HW : CFG_SPP_SW,
				    spp.lazy ? CFG_SPPT_LAZY : CFG_SPPT_EAGER), 0);
	u64 warm = live_blocks_until_enomem(true);
	print_message("blocks protected before -ENOMEM: %llu with an empty idle cache, %llu with a full one\n",
		      (unsigned long long)cold, (unsigned long long)warm);
	assert_true(cold > 0 && cold < C_BLOCKS); /* the heap did run out */
	assert_int_equal(warm, cold);
}

/* Fail injection by exhaustion: with 0, 1, 2, ... free heap pages left, a SET that needs a
 * split and an SPPT path either succeeds or returns -ENOMEM and changes
 * nothing (maps, protected count, EPT leaves, free memory once the filler is released). */
static void test_enomem_sweep(void **state)
{
	(void)state;
	static hpa_t filler[128];
	u64 base = C_BASE / PAGE_SIZE + 2 * 512;
	u64 n = 300, ok_at = ~0ULL;

	for (u64 k = 0; k < 64 && ok_at == ~0ULL; k++) {
		u64 nf = 0;
		while (pmm_free_count() > k && nf < ARRAY_SIZE(filler))
			filler[nf++] = pmm_alloc_page();
		u64 free_before = pmm_free_count(), prot = spp_store_protected_pages(&spp.store);
		u64 cap = spp_store_capacity(&spp.store);
		s64 r = set_pages(base, n, 0x3);
		if (r == 0) {
			ok_at = k;
		} else {
			assert_int_equal(r, -ENOMEM);
			assert_int_equal(spp_store_protected_pages(&spp.store), prot);
			for (u64 i = 0; i < n; i += 37) {
				u32 m, f;
				spp_store_get(&spp.store, base + i, &m, &f);
				assert_int_equal(m, SPP_MAP_ALL);
				u64 *e = ept_leaf(&ept, (base + i) << PAGE_SHIFT, NULL);
				assert_true(e && (*e & EPT_W));
			}
			/* A store that grew stays grown (invisible to the guest). Of the tables, only
			 * upper levels a partial prepare linked may stay (the 1 GiB EPT table, SPPT
			 * L3/L2: ept_split/sppt_prepare keep them, reused by the next SET); they are
			 * gone at the end (below). */
			if (spp_store_capacity(&spp.store) == cap && free_before - pmm_free_count() > 3)
				fail_msg("k=%llu: %llu free after the failed SET, %llu before (mode %d)",
					 (unsigned long long)k, (unsigned long long)pmm_free_count(),
					 (unsigned long long)free_before, spp.mode);
		}
		while (nf)
			pmm_free_page(filler[--nf]);
	}
	assert_true(ok_at != ~0ULL);
	print_message("a 300-page SET in a fresh block succeeds from %llu free pages on\n",
		      (unsigned long long)ok_at);
	assert_int_equal(set_pages(base, n, SPP_MAP_ALL), 0);
	drop_idle();
	assert_int_equal(pmm_free_count(), free0);
	check_boot_leaves();
}

/* N pages spread over M blocks protected in one go (several calls), then unprotected:
 * memory returns to its starting level only at the end, and every leaf to its boot size. */
static void test_spread_then_unprotect(void **state)
{
	(void)state;
	const u64 m = 16, per = 5; /* 16 split blocks (+ SPPT leaves) fit the heap */
	u64 inv0;

	for (u64 b = 0; b < m; b++)
		for (u64 k = 0; k < per; k++)
			assert_int_equal(set_pages((C_BASE + b * SZ_2M) / PAGE_SIZE + k * 97, 1, 0x1), 0);
	assert_true(pmm_free_count() < free0);
	/* unprotect all but one page of the first block: that block stays split */
	for (u64 b = 0; b < m; b++)
		for (u64 k = (b == 0); k < per; k++)
			assert_int_equal(set_pages((C_BASE + b * SZ_2M) / PAGE_SIZE + k * 97, 1, SPP_MAP_ALL), 0);
	assert_true(pmm_free_count() < free0);
	int level;
	u64 gfn0 = C_BASE / PAGE_SIZE;
	assert_int_equal(leaf(gfn0 << PAGE_SHIFT, &level) & EPT_W, 0);
	assert_int_equal(level, 1);
	leaf((gfn0 + 97) << PAGE_SHIFT, &level);
	assert_int_equal(level, 1);
	drop_idle();
	leaf(C_BASE + SZ_2M, &level);
	assert_int_equal(level, 2); /* merged back to 2 MiB; the 1 GiB table holds the split block */
	inv0 = fake_invept_count();
	assert_int_equal(set_pages(gfn0, 512, SPP_MAP_ALL), 0);
	assert_true(pmm_free_count() < free0); /* idle cache */
	drop_idle();
	assert_true(fake_invept_count() > inv0); /* freed only after an INVEPT */
	assert_int_equal(pmm_free_count(), free0);
	check_boot_leaves();
}

/* The region's block (0xFF pages) and a block with a leaf that differs (the xAPIC page is
 * write-protected this way) are never merged, whatever is unprotected there. */
static void test_no_merge_over_special_leaves(void **state)
{
	(void)state;
	u64 apic = C_BASE + 7 * SZ_2M + 5 * PAGE_SIZE;
	u64 gfn_hv_block = HV_END / PAGE_SIZE + 1; /* RAM in the region's last block */
	int level;

	spin_lock(&ept.lock);
	assert_int_equal(ept_split(&ept, apic, 1), 0);
	*ept_leaf(&ept, apic, NULL) &= ~EPT_W;
	spin_unlock(&ept.lock);
	u64 free1 = pmm_free_count();

	assert_int_equal(set_pages(apic / PAGE_SIZE + 3, 1, 0), 0);
	assert_int_equal(set_pages(apic / PAGE_SIZE + 3, 1, SPP_MAP_ALL), 0);
	drop_idle();
	assert_int_equal(leaf(apic, &level) & EPT_W, 0);
	assert_int_equal(level, 1);
	assert_int_equal(pmm_free_count(), free1);

	assert_int_equal(set_pages(gfn_hv_block, 1, 0), 0);
	assert_int_equal(set_pages(gfn_hv_block, 1, SPP_MAP_ALL), 0);
	drop_idle();
	u64 e = leaf(HV_BASE, &level);
	assert_int_equal(level, 1);
	assert_int_equal(e & EPT_W, 0);
	assert_int_not_equal(e & EPT_ADDR_MASK, HV_BASE); /* still the 0xFF page */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_churn_returns_memory, setup_hw_eager, teardown),
		cmocka_unit_test_setup_teardown(test_churn_returns_memory, setup_hw_lazy, teardown),
		cmocka_unit_test_setup_teardown(test_churn_returns_memory, setup_sw, teardown),
		cmocka_unit_test_setup_teardown(test_spread_then_unprotect, setup_hw_eager, teardown),
		cmocka_unit_test_setup_teardown(test_spread_then_unprotect, setup_hw_lazy, teardown),
		cmocka_unit_test_setup_teardown(test_spread_then_unprotect, setup_sw, teardown),
		cmocka_unit_test_setup_teardown(test_no_merge_over_special_leaves, setup_hw_eager, teardown),
		cmocka_unit_test_setup_teardown(test_no_merge_over_special_leaves, setup_sw, teardown),
		cmocka_unit_test_setup_teardown(test_hysteresis_keeps_block, setup_hw_eager, teardown),
		cmocka_unit_test_setup_teardown(test_hysteresis_keeps_block, setup_hw_lazy, teardown),
		cmocka_unit_test_setup_teardown(test_hysteresis_keeps_block, setup_sw, teardown),
		cmocka_unit_test_setup_teardown(test_enomem_ignores_idle_cache, setup_hw_eager, teardown),
		cmocka_unit_test_setup_teardown(test_enomem_ignores_idle_cache, setup_sw, teardown),
		cmocka_unit_test_setup_teardown(test_enomem_sweep, setup_hw_eager, teardown),
		cmocka_unit_test_setup_teardown(test_enomem_sweep, setup_hw_lazy, teardown),
		cmocka_unit_test_setup_teardown(test_enomem_sweep, setup_sw, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
