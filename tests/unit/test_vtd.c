/*
 * Host tests for the VT-d driver and policy (drivers/vtd.c) against a model of a remapping
 * unit behind the fake MMIO layer (the registers of VT-d rev. 4.1 chapter 11 that the driver
 * uses, with the status bits the hardware sets), ACPI tables in fake physical memory and the
 * page allocator in the same window:
 *   - the enable sequence (queued invalidation off first, root table pointer, write-buffer
 *     flush where CAP.RWBF, global context and IOTLB invalidation, then translation) and the
 *     tables it points the unit at (walked with vtd_walker.h);
 *   - a unit that never completes a command fails the boot instead of hanging it;
 *   - iommu=auto|on|off without a DMAR, with a malformed DMAR, with registers in RAM;
 *   - a protection change makes the page read-only for DMA and is followed by an IOTLB
 *     invalidation before the call returns; no change, no invalidation;
 *   - fault records: read in order from FRI with wrap-around, cleared, counted, reported
 *     only for protected pages, overflow counted, the log rate-limited.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hw.h>
#include "drivers/vtd.h"
#include <arch/cpu.h>
#include <arch/ept.h>
#include "hv/log.h"
#include "mm/ept.h"
#include "mm/mtrr.h"
#include "ept_walker.h"
#include "hv/percpu.h"
#include "hv/stats.h"
#include "spp/dma.h"
#include "spp/spp.h"
#include "mm/memmap.h"
#include "mm/pmm.h"
#include "dmar_tables.h"
#include "vtd_walker.h"

#define MiB (1ULL << 20)
#define WIN FAKE_PHYS_BASE
#define WIN_SIZE (8 * MiB)
#define ACPI_AREA 0x10000ULL               /* ACPI tables in the window's first 64 KiB */
#define REGION (WIN + ACPI_AREA)           /* the hypervisor's region: the rest */
#define REGION_SIZE (WIN_SIZE - ACPI_AREA)
#define UNIT 0xfed90000ULL
#define IRO 0x50                           /* IOTLB registers at 0x500 */
#define FRO 0x40                           /* fault records at 0x400 */
#define NFR 4

/* ---- the unit model ---- */

static struct {
	u32 regs[0x1000 / 4];
	u32 gsts;
	u64 cap, ecap;
	u32 ver;
	bool stuck;
	char seq[256];
	int nseq;
	u64 reads;
} U;

static void seq(char c)
{
	if (U.nseq < (int)sizeof(U.seq) - 1)
		U.seq[U.nseq++] = c;
}

static u32 unit_rd(u64 off)
{
	U.reads++;
	switch (off) {
	case VTD_VER: return U.ver;
	case VTD_CAP: return (u32)U.cap;
	case VTD_CAP + 4: return (u32)(U.cap >> 32);
	case VTD_ECAP: return (u32)U.ecap;
	case VTD_ECAP + 4: return (u32)(U.ecap >> 32);
	case VTD_GSTS: return U.gsts;
	default: return U.regs[off / 4];
	}
}

static void unit_wr(u64 off, u32 v)
{
	u32 iotlb_hi = IRO * 16 + 8 + 4;
	if (off == VTD_GCMD) {
		/* One-shot bits are commands: written only to issue them. */
		if (v & VTD_GCMD_SRTP) {
			seq('R');
			if (!U.stuck)
				U.gsts |= VTD_GCMD_SRTP;
		}
		if (v & VTD_GCMD_WBF)
			seq('W');
		if ((v & VTD_GCMD_TE) && !(U.gsts & VTD_GCMD_TE)) {
			seq('T');
			if (!U.stuck)
				U.gsts |= VTD_GCMD_TE;
		}
		if (!(v & VTD_GCMD_TE) && (U.gsts & VTD_GCMD_TE)) {
			seq('t');
			U.gsts &= ~VTD_GCMD_TE;
		}
		if (!(v & VTD_GCMD_QIE) && (U.gsts & VTD_GCMD_QIE)) {
			seq('q');
			if (!U.stuck)
				U.gsts &= ~VTD_GCMD_QIE;
		}
		return;
	}
	if (off == VTD_CCMD + 4 && (v & BIT(31))) {
		seq(((v >> 29) & 3) == 1 ? 'C' : 'c');
		U.regs[off / 4] = U.stuck ? v : v & ~BIT(31);
		return;
	}
	if (off == iotlb_hi && (v & BIT(31))) {
		u32 g = (v >> 28) & 3;
		seq(g == 1 ? 'I' : g == 2 ? 'D' : 'P');
		if (g == 2)
			assert_int_equal(U.regs[(off - 4) / 4 + 0] , 0); /* IVA untouched */
		if (g == 2)
			assert_int_equal(v & 0xffff, VTD_DOMAIN_ID);
		U.regs[off / 4] = U.stuck ? v : ((v & ~BIT(31)) | g << 25); /* IAIG = granularity done */
		return;
	}
	if (off >= FRO * 16 && off < FRO * 16 + NFR * 16 && (off & 15) == 12) {
		if (v & BIT(31))
			U.regs[off / 4] &= ~BIT(31);
		return;
	}
	if (off == VTD_FSTS) {
		U.regs[off / 4] &= ~(v & 1);
		return;
	}
	U.regs[off / 4] = v;
}

static void unit_reset(void)
{
	memset(&U, 0, sizeof(U));
	U.ver = 0x10;
	/* SAGAW 39+48 bit, FRO, NFR - 1, SLLPS 2 MiB */
	U.cap = (6ULL << 8) | ((u64)FRO << 24) | ((u64)(NFR - 1) << 40) | (1ULL << 34);
	U.ecap = ((u64)IRO << 8) | VTD_ECAP_C | VTD_ECAP_QI;
	fake_mmio_set_device(UNIT, 0x1000, unit_rd, unit_wr);
}

/* ---- platform: memory map, region, ACPI ---- */

static const struct tessel_mem_range layout[] = {
	{ 0x0, 0x9f, EFI_MT_CONVENTIONAL, 0 },
	{ 0x100000, (0x80000000 - 0x100000) / 4096, EFI_MT_CONVENTIONAL, 0 },
	{ WIN, ACPI_AREA / 4096, EFI_MT_ACPI_RECLAIM, 0 },
	{ WIN + ACPI_AREA, REGION_SIZE / 4096, EFI_MT_CONVENTIONAL, 0 },
};

static u8 *phys(u64 pa) { return hpa_to_ptr(hpa(pa)); }
static void put32(u8 *p, u32 v) { for (int i = 0; i < 4; i++) p[i] = (u8)(v >> (8 * i)); }
static void put64(u8 *p, u64 v) { put32(p, (u32)v); put32(p + 4, (u32)(v >> 32)); }

static void checksum_at(u8 *p, u32 len, u32 at)
{
	u8 s = 0;
	p[at] = 0;
	for (u32 i = 0; i < len; i++)
		s = (u8)(s + p[i]);
	p[at] = (u8)(0 - s);
}

/* RSDP at WIN, XSDT at WIN+0x1000, DMAR (if given) at WIN+0x2000. */
static void acpi(const u8 *dmar, size_t len)
{
	u8 *r = phys(WIN);
	memset(r, 0, ACPI_AREA);
	memcpy(r, "RSD PTR ", 8);
	r[15] = 2;
	put32(r + 20, 36);
	put64(r + 24, WIN + 0x1000);
	checksum_at(r, 20, 8);
	checksum_at(r, 36, 32);
	u8 *x = phys(WIN + 0x1000);
	memcpy(x, "XSDT", 4);
	put32(x + 4, 44);
	put64(x + 36, dmar ? WIN + 0x2000 : 0);
	checksum_at(x, 44, 9);
	if (dmar)
		memcpy(phys(WIN + 0x2000), dmar, len);
}

static void platform(const u8 *dmar, size_t len)
{
	fake_reset();
	fake_io_output_clear();
	fake_phys_init(WIN, WIN_SIZE);
	pmm_init(hpa(REGION), REGION_SIZE);
	memmap_init(layout, ARRAY_SIZE(layout), REGION, REGION_SIZE);
	log_init(FAKE_SERIAL_PORT, CFG_LOG_DEBUG);
	unit_reset();
	acpi(dmar, len);
	memset(&iommu, 0, sizeof(iommu)); /* no state from an earlier test */
}

static int init(u32 mode)
{
	struct tessel_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.iommu = mode;
	return iommu_init(&cfg, WIN);
}

static int count(const char *hay, const char *needle)
{
	int n = 0;
	for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
		n++;
	return n;
}

static void teardown(void)
{
	fake_mmio_set_device(0, 0, NULL, NULL);
	fake_phys_fini();
}

/* ---- tests ---- */

static void test_enable(void **state)
{
	(void)state;
	platform(qemu_q35_aw48_edu, sizeof(qemu_q35_aw48_edu));
	assert_int_equal(init(CFG_IOMMU_ON), 0);
	assert_true(iommu.active);
	U.seq[U.nseq] = 0;
	assert_string_equal(U.seq, "RCIT"); /* root pointer, context + IOTLB global, translation */
	/* The guest's root tables no longer list the DMAR. */
	u64 tpa;
	u32 tlen;
	char terr[DMAR_ERR_MAX];
	assert_int_equal(acpi_find_table(WIN, "DMAR", &tpa, &tlen, terr, sizeof(terr)), -ENODEV);
	assert_true(strstr(fake_io_output(), "DMAR hidden from the guest"));
	assert_true(strstr(fake_io_output(), "iommu: DMA remapping on 1 unit (on, 4-level tables"));
	/* The unit's root table: every bus -> the context table -> every devfn -> the tables. */
	u64 rt = (u64)U.regs[VTD_RTADDR / 4] | (u64)U.regs[VTD_RTADDR / 4 + 1] << 32;
	assert_int_equal(rt, iommu.root.v);
	assert_true(pmm_owns(iommu.root) && pmm_owns(iommu.context));
	const u64 *root = hpa_to_ptr(hpa(rt));
	for (int bus = 0; bus < 256; bus++)
		assert_int_equal(root[2 * bus], iommu.context.v | 1);
	const u64 *ctx = hpa_to_ptr(iommu.context);
	for (int devfn = 0; devfn < 256; devfn++) {
		assert_int_equal(ctx[2 * devfn] & ~0xfffULL, iommu.pt.root.v);
		assert_int_equal(ctx[2 * devfn] & 0xf, 1);              /* present, TT = 00, FPD = 0 */
		assert_int_equal(ctx[2 * devfn + 1], (VTD_DOMAIN_ID << 8) | 2); /* DID 1, 48-bit */
	}
	/* What a device sees through them. */
	u64 slpt = ctx[0] & ~0xfffULL;
	struct vw_result r = vw_walk(slpt, 4, 48, 0x12345678);
	assert_true(r.status == VW_OK && r.hpa == 0x12345678 && r.w);
	assert_int_equal(vw_walk(slpt, 4, 48, REGION).status, VW_NOT_PRESENT);
	assert_int_equal(vw_walk(slpt, 4, 48, rt).status, VW_NOT_PRESENT); /* its own tables */
	assert_int_equal(vw_walk(slpt, 4, 48, UNIT).status, VW_NOT_PRESENT); /* MMIO */
	assert_int_equal(vw_walk(slpt, 4, 48, WIN + 0x2000).status, VW_OK); /* ACPI memory is RAM */
	teardown();

	/* A unit that needs write-buffer flushes gets one before invalidating. */
	platform(qemu_q35_aw48_edu, sizeof(qemu_q35_aw48_edu));
	U.cap |= VTD_CAP_RWBF;
	assert_int_equal(init(CFG_IOMMU_AUTO), 0);
	U.seq[U.nseq] = 0;
	assert_string_equal(U.seq, "RWCIT");
	teardown();

	/* Firmware left queued invalidation and translation on: QI off first, TE not toggled. */
	platform(qemu_q35_aw48_edu, sizeof(qemu_q35_aw48_edu));
	U.gsts = VTD_GCMD_QIE | VTD_GCMD_TE;
	assert_int_equal(init(CFG_IOMMU_AUTO), 0);
	U.seq[U.nseq] = 0;
	assert_string_equal(U.seq, "qRCI");
	assert_true(U.gsts & VTD_GCMD_TE);
	teardown();

	/* Only 39-bit tables: three levels. */
	platform(qemu_q35_aw48_edu, sizeof(qemu_q35_aw48_edu));
	U.cap &= ~(0x1fULL << 8);
	U.cap |= 2ULL << 8;
	assert_int_equal(init(CFG_IOMMU_AUTO), 0);
	assert_int_equal(iommu.pt.levels, 3);
	assert_int_equal(((const u64 *)hpa_to_ptr(iommu.context))[1] & 7, 1);
	teardown();
}

static void test_stuck_unit(void **state)
{
	(void)state;
	platform(qemu_q35_aw48_edu, sizeof(qemu_q35_aw48_edu));
	U.stuck = true;
	assert_int_equal(init(CFG_IOMMU_ON), -EOPNOTSUPP);
	assert_false(iommu.active);
	assert_true(strstr(fake_io_output(), "did not complete a command"));
	teardown();
	platform(qemu_q35_aw48_edu, sizeof(qemu_q35_aw48_edu));
	U.stuck = true;
	assert_int_equal(init(CFG_IOMMU_AUTO), 0);
	assert_false(iommu.active);
	assert_true(strstr(fake_io_output(), "iommu: a VT-d unit did not complete a command: DMA is not remapped"));
	teardown();
	/* A unit that enables but then cannot be invalidated: translation is turned off again. */
	platform(qemu_q35_aw48_edu, sizeof(qemu_q35_aw48_edu));
	U.gsts = VTD_GCMD_TE; /* on from the firmware: the enable path skips TE and reaches the invalidation */
	U.stuck = true;
	assert_int_equal(init(CFG_IOMMU_ON), -EOPNOTSUPP);
	assert_false(U.gsts & VTD_GCMD_TE);
	teardown();
}

static void test_policy(void **state)
{
	(void)state;
	/* No DMAR. */
	platform(NULL, 0);
	assert_int_equal(init(CFG_IOMMU_AUTO), 0);
	assert_false(iommu.active);
	assert_int_equal(count(fake_io_output(), "\n"), 1);
	assert_true(strstr(fake_io_output(), "iommu: no DMAR table (no VT-d): DMA is not remapped"));
	assert_int_equal(U.reads, 0);
	teardown();
	platform(NULL, 0);
	assert_int_equal(init(CFG_IOMMU_ON), -EOPNOTSUPP);
	assert_true(strstr(fake_io_output(), "iommu=on: no DMAR table (no VT-d): refusing to start"));
	teardown();
	/* off: no table read, no register touched, a warning. */
	platform(qemu_q35_aw48_edu, sizeof(qemu_q35_aw48_edu));
	assert_int_equal(init(CFG_IOMMU_OFF), 0);
	assert_false(iommu.active);
	assert_int_equal(U.reads, 0);
	assert_true(strstr(fake_io_output(), "iommu=off: DMA is not remapped"));
	teardown();

	/* A malformed DMAR: the parser's reason, nothing programmed. */
	u8 bad[sizeof(qemu_q35_aw48_edu)];
	memcpy(bad, qemu_q35_aw48_edu, sizeof(bad));
	bad[9] ^= 1;
	platform(bad, sizeof(bad));
	assert_int_equal(init(CFG_IOMMU_ON), -EOPNOTSUPP);
	assert_true(strstr(fake_io_output(), "iommu=on: DMAR: bad checksum: refusing to start"));
	assert_int_equal(U.reads, 0);
	teardown();

	/* Register base in RAM (a valid table that lies): refused before any access. */
	memcpy(bad, qemu_q35_aw48_edu, sizeof(bad));
	put64(bad + 56, 0x10000000);
	checksum_at(bad, sizeof(bad), 9);
	platform(bad, sizeof(bad));
	assert_int_equal(init(CFG_IOMMU_AUTO), 0);
	assert_false(iommu.active);
	assert_true(strstr(fake_io_output(), "a DRHD's registers overlap RAM or the hypervisor's region"));
	assert_int_equal(U.reads, 0);
	teardown();

	/* Nothing answering at the address, or no usable table format. */
	platform(qemu_q35_aw48_edu, sizeof(qemu_q35_aw48_edu));
	U.ver = ~0U;
	assert_int_equal(init(CFG_IOMMU_ON), -EOPNOTSUPP);
	assert_true(strstr(fake_io_output(), "no VT-d registers at the DMAR's address"));
	teardown();
	platform(qemu_q35_aw48_edu, sizeof(qemu_q35_aw48_edu));
	U.cap &= ~(0x1fULL << 8);
	assert_int_equal(init(CFG_IOMMU_ON), -EOPNOTSUPP);
	assert_true(strstr(fake_io_output(), "no 3-level (39-bit) second-level tables"));
	assert_int_equal(U.nseq, 0);                                /* no command issued */
	teardown();
}

static u64 prot_gfn = ~0ULL;
static bool is_prot(u64 gfn) { return gfn == prot_gfn; }
static bool prot_2m(u64 gfn) { return prot_gfn != ~0ULL && (gfn >> 9) == (prot_gfn >> 9); }

static void test_pages_changed(void **state)
{
	(void)state;
	platform(qemu_q35_aw48_edu, sizeof(qemu_q35_aw48_edu));
	assert_int_equal(init(CFG_IOMMU_ON), 0);
	u64 slpt = iommu.pt.root.v;
	U.nseq = 0;
	prot_gfn = 0x40123;
	iommu_pages_changed(prot_gfn, 1, is_prot, prot_2m);
	U.seq[U.nseq] = 0;
	assert_string_equal(U.seq, "D"); /* one domain-selective IOTLB invalidation, waited for */
	struct vw_result r = vw_walk(slpt, 4, 48, 0x40123abc);
	assert_true(r.status == VW_OK && r.r && !r.w && r.hpa == 0x40123abc);
	assert_true(vw_walk(slpt, 4, 48, 0x40124000).w);
	assert_true(vw_walk(slpt, 4, 48, 0x40122000).w);
	/* The same state again: no change, no invalidation. */
	U.nseq = 0;
	iommu_pages_changed(prot_gfn, 1, is_prot, prot_2m);
	assert_int_equal(U.nseq, 0);
	/* A range including the protected page and a page of the region (not DMA-mapped). */
	U.nseq = 0;
	u64 was = prot_gfn;
	prot_gfn = ~0ULL;
	iommu_pages_changed(was - 1, 3, is_prot, prot_2m);
	U.seq[U.nseq] = 0;
	assert_string_equal(U.seq, "D");
	assert_true(vw_walk(slpt, 4, 48, 0x40123abc).w);
	U.nseq = 0;
	prot_gfn = REGION >> 12;
	iommu_pages_changed(prot_gfn, 1, is_prot, prot_2m);
	assert_int_equal(U.nseq, 0);
	assert_int_equal(vw_walk(slpt, 4, 48, REGION).status, VW_NOT_PRESENT);
	prot_gfn = ~0ULL;
	teardown();
}

/* No page left to split a 2 MiB leaf: the whole block becomes read-only (never weaker), and
 * writable again once its last protected page is unprotected. */
static void test_split_fallback(void **state)
{
	(void)state;
	platform(qemu_q35_aw48_edu, sizeof(qemu_q35_aw48_edu));
	assert_int_equal(init(CFG_IOMMU_ON), 0);
	u64 slpt = iommu.pt.root.v;
	assert_int_equal(vw_walk(slpt, 4, 48, 0x40123000).page_size, SZ_2M);
	while (pmm_alloc_page().v)
		;
	prot_gfn = 0x40123;
	U.nseq = 0;
	iommu_pages_changed(prot_gfn, 1, is_prot, prot_2m);
	assert_int_equal(U.nseq, 1);
	struct vw_result r = vw_walk(slpt, 4, 48, 0x40123000);
	assert_true(r.status == VW_OK && r.page_size == SZ_2M && !r.w);
	assert_false(vw_walk(slpt, 4, 48, 0x40000000).w); /* the whole block */
	assert_true(vw_walk(slpt, 4, 48, 0x40200000).w);  /* the next one is not */
	prot_gfn = ~0ULL;
	iommu_pages_changed(0x40123, 1, is_prot, prot_2m);
	assert_true(vw_walk(slpt, 4, 48, 0x40123000).w);
	assert_true(vw_walk(slpt, 4, 48, 0x40000000).w);
	teardown();
}

static u32 reported;
static u64 reported_addr;
static void report(void *ctx, const struct vtd_fault *f)
{
	(void)ctx;
	reported++;
	reported_addr = f->addr;
}

/* Fault record i: F, type, reason, source ID, page. */
static void record(u32 i, u16 sid, u64 addr, u8 reason, bool read)
{
	u32 off = FRO * 16 + i * 16;
	U.regs[off / 4] = (u32)addr | 0x123; /* low bits are reserved: ignored */
	U.regs[off / 4 + 1] = (u32)(addr >> 32);
	U.regs[off / 4 + 2] = sid;
	U.regs[off / 4 + 3] = BIT(31) | (read ? BIT(30) : 0) | reason;
}

static void test_faults(void **state)
{
	(void)state;
	platform(qemu_q35_aw48_edu, sizeof(qemu_q35_aw48_edu));
	assert_int_equal(init(CFG_IOMMU_ON), 0);
	fake_io_output_clear();
	prot_gfn = 0x40123;
	/* Two records from FRI = 3: 3, then wrap to 0. */
	record(3, 0x0028, 0x40123000, 5, false);
	record(0, 0x00fa, REGION + 0x5000, 6, true);
	U.regs[VTD_FSTS / 4] = VTD_FSTS_PPF | 3 << 8 | VTD_FSTS_PFO;
	reported = 0;
	assert_int_equal(iommu_poll_faults(is_prot, report, NULL), 2);
	assert_int_equal(iommu.faults, 2);
	assert_int_equal(iommu.faults_protected, 2);
	assert_int_equal(reported, 1); /* only the protected page is an event */
	assert_int_equal(reported_addr, 0x40123000);
	assert_int_equal(iommu.dropped, 1);
	assert_int_equal(U.regs[VTD_FSTS / 4] & VTD_FSTS_PFO, 0);
	for (u32 i = 0; i < NFR; i++)
		assert_int_equal(U.regs[(FRO * 16 + i * 16 + 12) / 4] & BIT(31), 0); /* all cleared */
	assert_true(strstr(fake_io_output(), "DMA write fault: source 00:05.0 address 40123000 reason 5 (protected sub-page)"));
	assert_true(strstr(fake_io_output(), "DMA read fault: source 00:1f.2 address 100015000 reason 6 (hypervisor region)"));
	assert_true(strstr(fake_io_output(), "dropped fault records"));
	assert_int_equal(iommu.last_fault.sid, 0x00fa);

	/* Nothing pending: nothing read beyond FSTS. */
	U.regs[VTD_FSTS / 4] = 0;
	assert_int_equal(iommu_poll_faults(is_prot, report, NULL), 0);

	/* A device flooding faults: the log keeps 32 lines (then every 1024th), the counter all. */
	fake_io_output_clear();
	for (int k = 0; k < 100; k++) {
		record(0, 0x0028, 0x50000000, 5, false);
		U.regs[VTD_FSTS / 4] = VTD_FSTS_PPF;
		iommu_poll_faults(is_prot, report, NULL);
	}
	assert_int_equal(iommu.faults, 102);
	assert_int_equal(count(fake_io_output(), "DMA write fault"), 30);
	prot_gfn = ~0ULL;
	teardown();
}

/* The glue to sub-page protection (spp/dma.c): the store decides what is read-only, faults on
 * protected pages become TESSEL_EV_DMA events in the ring, HC_STATS reports dma_faults. */
static void test_spp_glue(void **state)
{
	(void)state;
	platform(qemu_q35_aw48_edu, sizeof(qemu_q35_aw48_edu));
	assert_int_equal(init(CFG_IOMMU_ON), 0);
	assert_int_equal(spp_store_init(&spp.store, 64), 0);
	spp.mode = SPP_MODE_SW;
	u64 gfn = 0x40123, slpt = iommu.pt.root.v;
	u32 map = 0xfffffffe; /* sub-page 0 protected */
	assert_int_equal(spp_store_check_set(&spp.store, gfn, 1, &map, 0), 0);
	spp_store_apply_set(&spp.store, gfn, 1, &map, 0, NULL, NULL);
	U.nseq = 0;
	spp_dma_changed(gfn - 1, 3);
	U.seq[U.nseq] = 0;
	assert_string_equal(U.seq, "D");
	assert_false(vw_walk(slpt, 4, 48, gfn << 12).w);
	assert_true(vw_walk(slpt, 4, 48, (gfn + 1) << 12).w);

	/* A ring of 4 entries in RAM (the ACPI area of the window). */
	u64 ring = WIN + 0x8000;
	memset(phys(ring), 0, 4096);
	spp.ring_gpa = ring;
	spp.ring_capacity = 4;
	spp.ring_head = 0;
	spp.ring_vector = 0;
	((u32 *)phys(ring))[2] = 4;
	struct percpu cpu;
	memset(&cpu, 0, sizeof(cpu));
	cpu.apic_id = 7;
	record(0, 0x0028, gfn << 12, 5, false);          /* protected page: event */
	record(1, 0x0028, (gfn + 1) << 12, 5, false);    /* ordinary page: no event */
	U.regs[VTD_FSTS / 4] = VTD_FSTS_PPF;
	spp_dma_poll(&cpu);
	const u8 *r = phys(ring);
	assert_int_equal(*(const u32 *)r, 1); /* head */
	const u8 *e = r + 64;
	assert_int_equal(*(const u64 *)e, gfn << 12);       /* gpa: the page */
	assert_int_equal(*(const u64 *)(e + 8), 0);         /* rip */
	assert_int_equal(*(const u64 *)(e + 16), 0x0028);   /* gla: source ID */
	assert_int_equal(*(const u32 *)(e + 24), 7);        /* vcpu */
	assert_int_equal(*(const u16 *)(e + 28), TESSEL_EV_DMA);
	assert_int_equal(*(const u16 *)(e + 30), 0);
	u64 rec[STAT_COUNT];
	stats_snapshot(rec);
	assert_int_equal(rec[STAT_DMA_FAULTS], 2);
	assert_int_equal(STAT_DMA_FAULTS, 11); /* appended after events_dropped (ABI 1.1) */

	/* Unprotect: writable again, one more invalidation. */
	map = 0xffffffff;
	spp_store_apply_set(&spp.store, gfn, 1, &map, 0, NULL, NULL);
	U.nseq = 0;
	spp_dma_changed(gfn, 1);
	assert_int_equal(U.nseq, 1);
	assert_true(vw_walk(slpt, 4, 48, gfn << 12).w);
	spp.ring_gpa = 0;
	spp.mode = SPP_MODE_NONE;
	spp_store_destroy(&spp.store);
	teardown();
}

/* The units' register pages in the guest's EPT: a read-only page of zeros, writes discarded
 * (hidden like the region); the pages around them untouched. */
static void test_hide_registers(void **state)
{
	(void)state;
	platform(qemu_q35_aw48_edu, sizeof(qemu_q35_aw48_edu));
	struct mtrr_state m;
	memset(&m, 0, sizeof(m));
	m.enabled = true;
	m.def_type = MT_WB;
	m.phys_bits = 39;
	struct ept ept;
	struct ept_params p = { .phys_bits = 39, .has_1g = true, .mtrr = &m, .hv_base = REGION, .hv_size = REGION_SIZE };
	p.ff_page = pmm_alloc_page();
	memset(hpa_to_ptr(p.ff_page), 0xff, PAGE_SIZE);
	assert_int_equal(ept_build_identity(&ept, &p), 0);
	struct ew_result r;
	assert_int_equal(ew_walk(ept.eptp, 39, UNIT, &r), EW_OK);
	assert_int_equal(r.hpa, UNIT); /* before: the guest reaches the unit */
	assert_int_equal(iommu_hide_registers(&ept), 0); /* not active yet: nothing */
	assert_int_equal(ew_walk(ept.eptp, 39, UNIT, &r), EW_OK);
	assert_int_equal(r.hpa, UNIT);

	assert_int_equal(init(CFG_IOMMU_ON), 0);
	assert_int_equal(iommu_hide_registers(&ept), 0);
	assert_int_equal(ew_walk(ept.eptp, 39, UNIT + 0x1c, &r), EW_OK);
	assert_true(r.hpa != UNIT + 0x1c && pmm_owns(hpa(r.hpa & ~0xfffULL)));
	assert_int_equal(r.perm, EPT_R | EPT_X); /* no write */
	assert_int_equal(r.level, 1);
	const u8 *z = hpa_to_ptr(hpa(r.hpa & ~0xfffULL));
	for (int i = 0; i < 4096; i++)
		assert_int_equal(z[i], 0);
	assert_true(memmap_in_hv(UNIT, 1));
	assert_false(memmap_in_hv(UNIT + 0x1000, 1));
	assert_int_equal(ew_walk(ept.eptp, 39, UNIT + 0x1000, &r), EW_OK);
	assert_int_equal(r.hpa, UNIT + 0x1000);
	assert_int_equal(r.perm, EPT_R | EPT_W | EPT_X);
	assert_int_equal(ew_walk(ept.eptp, 39, UNIT - 0x1000, &r), EW_OK);
	assert_int_equal(r.hpa, UNIT - 0x1000);
	teardown();
}

/* With EPT page-size changes breaking before make (mm/ept.h, ept->bbm) the split of the
 * unit's 1 GiB leaf is pending until a shootdown; before any processor runs as a guest it is
 * finished at once, and the registers are hidden all the same. */
static void test_hide_registers_bbm(void **state)
{
	(void)state;
	platform(qemu_q35_aw48_edu, sizeof(qemu_q35_aw48_edu));
	struct mtrr_state m;
	memset(&m, 0, sizeof(m));
	m.enabled = true;
	m.def_type = MT_WB;
	m.phys_bits = 39;
	struct ept ept;
	struct ept_params p = { .phys_bits = 39, .has_1g = true, .mtrr = &m, .hv_base = REGION, .hv_size = REGION_SIZE };
	p.ff_page = pmm_alloc_page();
	memset(hpa_to_ptr(p.ff_page), 0xff, PAGE_SIZE);
	assert_int_equal(ept_build_identity(&ept, &p), 0);
	ept.bbm = true;
	assert_int_equal(init(CFG_IOMMU_ON), 0);
	assert_int_equal(iommu_hide_registers(&ept), 0);
	assert_int_equal(ept.npending, 0);
	struct ew_result r;
	assert_int_equal(ew_walk(ept.eptp, 39, UNIT + 0x1c, &r), EW_OK);
	assert_true(r.hpa != UNIT + 0x1c && pmm_owns(hpa(r.hpa & ~0xfffULL)));
	assert_int_equal(r.perm, EPT_R | EPT_X);
	assert_int_equal(r.level, 1);
	assert_int_equal(ew_walk(ept.eptp, 39, UNIT + 0x1000, &r), EW_OK);
	assert_int_equal(r.hpa, UNIT + 0x1000);
	teardown();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hide_registers_bbm),
		cmocka_unit_test(test_enable),
		cmocka_unit_test(test_stuck_unit),
		cmocka_unit_test(test_policy),
		cmocka_unit_test(test_pages_changed),
		cmocka_unit_test(test_split_fallback),
		cmocka_unit_test(test_faults),
		cmocka_unit_test(test_spp_glue),
		cmocka_unit_test(test_hide_registers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
