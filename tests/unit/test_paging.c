/*
 * Host tests for mm/paging.c: the hypervisor's own page tables, checked by walking them
 * independently (4-level paging, SDM Vol. 3A 4.5) over a firmware-like memory map and MTRR
 * layouts:
 *   - the identity map's leaves tile [0, top) exactly, each mapping to itself;
 *   - RAM and the hypervisor's region are mapped WB (PCD = PWT = 0); MMIO, holes and
 *     reserved ranges UC (PCD = PWT = 1); no leaf mixes the two;
 *   - no large leaf spans MTRR ranges of different types (brute force per 4 KiB below 8 GiB,
 *     mtrr_type at both ends and every 2 MiB above);
 *   - the local APIC's page is a 4 KiB UC leaf;
 *   - the core image keeps its per-section permissions at its link address.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include <arch/cpu.h>
#include <arch/ept.h>
#include <hw.h>
#include "mm/memmap.h"
#include "mm/mtrr.h"
#include "mm/paging.h"
#include "mm/pmm.h"

#define GiB (1ULL << 30)
#define MiB (1ULL << 20)
#define KiB (1ULL << 10)
#define WIN (FAKE_PHYS_BASE + 64 * MiB) /* the region: page tables come from here */
#define WIN_SIZE (6 * MiB)
#define APIC 0xfee00000ULL
#define IMAGE_VA 0xffffffff80000000ULL

static struct mtrr_state mtrr;

static void var(u64 base, u64 size, u8 type)
{
	u64 amask = ((1ULL << mtrr.phys_bits) - 1) & ~0xfffULL;
	u32 i = mtrr.var_count++;
	mtrr.var[i].base = (base & amask) | type;
	mtrr.var[i].mask = (~(size - 1) & amask) | MTRR_PHYSMASK_VALID;
}

/* OVMF-like MTRRs: WB default, legacy VGA UC, ROMs WP, the 32-bit MMIO hole UC, and an
 * awkward UC 4 KiB page inside RAM. */
static void mk_mtrr(void)
{
	memset(&mtrr, 0, sizeof(mtrr));
	mtrr.enabled = mtrr.fixed_enabled = true;
	mtrr.def_type = MT_WB;
	mtrr.phys_bits = 39;
	memset(mtrr.fixed, MT_WB, sizeof(mtrr.fixed));
	memset(&mtrr.fixed[16], MT_UC, 8);
	memset(&mtrr.fixed[24], MT_WP, 64);
	var(0xc0000000, GiB, MT_UC);
	var(0x40123000, 4 * KiB, MT_UC);
	var(0x180000000ULL, 2 * MiB, MT_WC);
}

/* RAM below 640 KiB, 1 MiB - 3 GiB less a reserved hole, and 4 GiB - 6 GiB around the region. */
static const struct tessel_mem_range map[] = {
	{ 0, 0x9f, EFI_MT_CONVENTIONAL, 0 },
	{ 0x100000, (0x7f000000 - 0x100000) >> 12, EFI_MT_CONVENTIONAL, 0 },
	{ 0x7f000000, 0x1000000 >> 12, EFI_MT_RESERVED, 0 },
	{ 0x80000000, (0xbfe00000 - 0x80000000) >> 12, EFI_MT_BS_DATA, 0 },
	{ FAKE_PHYS_BASE, (WIN - FAKE_PHYS_BASE) >> 12, EFI_MT_CONVENTIONAL, 0 },
	{ WIN + WIN_SIZE, (2 * GiB - 64 * MiB - WIN_SIZE) >> 12, EFI_MT_CONVENTIONAL, 0 },
};

static enum host_mem kind(u64 base, u64 len)
{
	int k = memmap_host_kind(base, len);
	return k == MEMMAP_ALL_RAM ? HOST_MEM_RAM : k == MEMMAP_NO_RAM ? HOST_MEM_IO : HOST_MEM_MIXED;
}

static u64 *table(u64 e) { return hpa_to_ptr(hpa(e & PTE_ADDR)); }

struct walk { u64 next, leaves, large, uc; bool apic_seen; };

static void check_leaf(struct walk *w, u64 va, u64 size, u64 e)
{
	assert_int_equal(va, w->next); /* tiling: no gap, no overlap */
	w->next = va + size;
	w->leaves++;
	assert_int_equal(e & PTE_ADDR & ~(size - 1), va); /* identity */
	bool uc = (e & (PTE_PCD | PTE_PWT)) == (PTE_PCD | PTE_PWT);
	assert_true(uc || !(e & (PTE_PCD | PTE_PWT)));
	enum host_mem k = kind(va, size);
	assert_int_not_equal(k, HOST_MEM_MIXED);
	assert_int_equal(uc, k == HOST_MEM_IO);
	w->uc += uc;
	if (va <= APIC && APIC < va + size) {
		assert_int_equal(size, 4 * KiB);
		assert_true(uc);
		w->apic_seen = true;
	}
	if (size == 4 * KiB)
		return;
	w->large++;
	u8 t0 = mtrr_type(&mtrr, va);
	u64 step = va + size <= 8 * GiB ? 4 * KiB : 2 * MiB;
	for (u64 a = va; a < va + size; a += step)
		if (mtrr_type(&mtrr, a) != t0) {
			print_error("leaf %llx+%llx spans MTRR types %u and %u (at %llx)\n", (unsigned long long)va,
				    (unsigned long long)size, t0, mtrr_type(&mtrr, a), (unsigned long long)a);
			fail();
		}
	assert_int_equal(mtrr_type(&mtrr, va + size - 1), t0);
}

static void walk(struct walk *w, u64 *t, u64 va, unsigned level, u64 top)
{
	u64 size = 1ULL << (12 + 9 * (level - 1));
	for (unsigned i = 0; i < 512 && va + i * size < top; i++) {
		u64 e = t[i], a = va + i * size;
		assert_true(e & PTE_P);
		if (level == 1 || (level < 4 && (e & PTE_PS)))
			check_leaf(w, a, size, e);
		else
			walk(w, table(e), a, level - 1, top);
	}
}

static hpa_t build(struct host_map_params *p)
{
	fake_reset();
	fake_phys_init(WIN, WIN_SIZE);
	pmm_init(hpa(WIN), WIN_SIZE);
	memmap_init(map, sizeof(map) / sizeof(map[0]), WIN, WIN_SIZE);
	mk_mtrr();
	memset(p, 0, sizeof(*p));
	p->identity_top = 512 * GiB;
	p->use_1g = true;
	p->nx = true;
	p->image_pa = WIN + MiB;
	p->image_va = IMAGE_VA;
	p->text_size = 8 * PAGE_SIZE;
	p->rodata_end = 12 * PAGE_SIZE;
	p->image_size = 20 * PAGE_SIZE;
	p->mtrr = &mtrr;
	p->apic_base = APIC;
	p->kind = kind;
	return paging_build_host(p);
}

static void identity_map_types(void **state, bool use_1g)
{
	(void)state;
	struct host_map_params p;
	hpa_t root = build(&p);
	if (!use_1g) {
		pmm_init(hpa(WIN), WIN_SIZE);
		p.use_1g = false;
		root = paging_build_host(&p);
	}
	assert_true(root.v != 0);
	struct walk w = { 0 };
	walk(&w, table(root.v), 0, 4, 512 * GiB);
	assert_int_equal(w.next, 512 * GiB);
	assert_true(w.apic_seen);
	assert_true(w.large > 0 && w.uc > 0);
	print_message("%s: %llu leaves, %llu large, %llu UC, %llu table pages\n", use_1g ? "1 GiB" : "2 MiB",
		      (unsigned long long)w.leaves, (unsigned long long)w.large, (unsigned long long)w.uc,
		      (unsigned long long)(pmm_total_count() - pmm_free_count()));
	fake_phys_fini();
}

static void test_identity_1g(void **state) { identity_map_types(state, true); }
static void test_identity_2m(void **state) { identity_map_types(state, false); }

/* The image at its link address: text RX, rodata R, data RW+NX. */
static void test_image_sections(void **state)
{
	(void)state;
	struct host_map_params p;
	hpa_t root = build(&p);
	assert_true(root.v != 0);
	for (u64 off = 0; off < p.image_size; off += PAGE_SIZE) {
		u64 va = IMAGE_VA + off;
		u64 *t = table(root.v);
		for (unsigned level = 4; level > 1; level--)
			t = table(t[PT_INDEX(va, level)]);
		u64 e = t[PT_INDEX(va, 1)];
		assert_int_equal(e & PTE_ADDR, p.image_pa + off);
		bool w = e & PTE_W, nx = e & PTE_NX;
		if (off < p.text_size)
			assert_true(!w && !nx);
		else if (off < p.rodata_end)
			assert_true(!w && nx);
		else
			assert_true(w && nx);
	}
	fake_phys_fini();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_identity_1g),
		cmocka_unit_test(test_identity_2m),
		cmocka_unit_test(test_image_sections),
	};
	return cmocka_run_group_tests_name("paging", tests, NULL, NULL);
}
