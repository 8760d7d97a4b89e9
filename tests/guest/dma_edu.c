/*
 * dma_edu.c: DMA protection with VT-d, driven through QEMU's edu PCI device (1234:11e8,
 * docs/specs/edu.rst in QEMU: DMA source 0x80, destination 0x88, count 0x90, command 0x98
 * with bit 0 start and bit 1 direction "edu to RAM"; a 4 KiB buffer at 0x40000 in the
 * device's DMA space; addresses limited to 28 bits by default).
 *
 * Run by the iommu-edu group: QEMU q35 with -device intel-iommu before -device edu, TCG (no
 * VMX), build/tessel-test.efi with iommu=on, so the core programs the IOMMU without a
 * hypervisor (include/tessel/iommu_test.h) and this program reaches it through the test
 * channel (page protection as HC_SPP_SET sets it, fault collection). Everything it checks is
 * memory a device wrote or did not write, and the fault records the IOMMU kept.
 */
#include "guest.h"
#include "arch.h"
#include <tessel/iommu_test.h>

#define EDU_DMA_SRC 0x80
#define EDU_DMA_DST 0x88
#define EDU_DMA_CNT 0x90
#define EDU_DMA_CMD 0x98
#define EDU_CMD_START 1
#define EDU_CMD_TO_RAM 2
#define EDU_BUF 0x40000ULL
#define LEN 256

static volatile uint8_t *edu;
static uint16_t edu_sid;
static tessel_iommu_test_fn test_call;

static void outl(uint16_t port, uint32_t v) { __asm__ __volatile__("outl %0, %1" : : "a"(v), "Nd"(port)); }
static uint32_t inl(uint16_t port)
{
	uint32_t v;
	__asm__ __volatile__("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static uint32_t pci_read(uint32_t bdf, uint32_t off)
{
	outl(0xcf8, 0x80000000u | bdf << 8 | (off & 0xfc));
	return inl(0xcfc);
}

static void pci_write(uint32_t bdf, uint32_t off, uint32_t v)
{
	outl(0xcf8, 0x80000000u | bdf << 8 | (off & 0xfc));
	outl(0xcfc, v);
}

static int find_edu(void)
{
	for (uint32_t bdf = 0; bdf < 256 * 8; bdf++) { /* bus 0 only: q35's root bus */
		if (pci_read(bdf, 0) != 0x11e81234)
			continue;
		uint32_t bar = pci_read(bdf, 0x10) & ~0xfu;
		pci_write(bdf, 4, pci_read(bdf, 4) | 0x6); /* memory space + bus master */
		edu = (volatile uint8_t *)(uintptr_t)bar;
		edu_sid = (uint16_t)bdf;
		return 1;
	}
	return 0;
}

static void wr64(uint32_t off, uint64_t v) { *(volatile uint64_t *)(edu + off) = v; }
static uint64_t rd64(uint32_t off) { return *(volatile uint64_t *)(edu + off); }

/* One transfer; returns 0 when the device reports it done. */
static int edu_dma(uint64_t src, uint64_t dst, uint64_t len, int to_ram)
{
	wr64(EDU_DMA_SRC, src);
	wr64(EDU_DMA_DST, dst);
	wr64(EDU_DMA_CNT, len);
	wr64(EDU_DMA_CMD, EDU_CMD_START | (to_ram ? EDU_CMD_TO_RAM : 0));
	for (int i = 0; i < 2000; i++) {
		if (!(rd64(EDU_DMA_CMD) & EDU_CMD_START))
			return 0;
		BS->Stall(1000);
	}
	return -1;
}

static int to_edu(const void *p, uint64_t len) { return edu_dma((uintptr_t)p, EDU_BUF, len, 0); }
static int from_edu(void *p, uint64_t len) { return edu_dma(EDU_BUF, (uintptr_t)p, len, 1); }

static struct tessel_iommu_test_req call(uint64_t op, uint64_t gfn, uint64_t arg)
{
	struct tessel_iommu_test_req r = { .op = op, .gfn = gfn, .arg = arg };
	test_call(&r);
	return r;
}

static struct tessel_iommu_test_req poll(void) { return call(TESSEL_IOMMU_TEST_POLL, 0, 0); }

static void fill(void *p, uint8_t seed)
{
	for (int i = 0; i < LEN; i++)
		((uint8_t *)p)[i] = (uint8_t)(seed + i * 7);
}

/* Does the guest still find a DMAR table through the ACPI 2.0 RSDP's XSDT? */
static int dmar_visible(void)
{
	EFI_GUID acpi20 = ACPI_20_TABLE_GUID;
	const uint8_t *rsdp = NULL;
	for (UINTN i = 0; i < ST->NumberOfTableEntries; i++)
		if (!CompareGuid(&ST->ConfigurationTable[i].VendorGuid, &acpi20))
			rsdp = ST->ConfigurationTable[i].VendorTable;
	if (!rsdp)
		return 0;
	const uint8_t *xsdt = (const uint8_t *)(uintptr_t)*(const uint64_t *)(rsdp + 24);
	uint32_t len = *(const uint32_t *)(xsdt + 4);
	for (uint32_t off = 36; off + 8 <= len; off += 8) {
		const uint8_t *t = (const uint8_t *)(uintptr_t)*(const uint64_t *)(xsdt + off);
		if (t && !CompareMem(t, "DMAR", 4))
			return 1;
	}
	return 0;
}

static int uniform(const uint8_t *p, int n)
{
	for (int i = 1; i < n; i++)
		if (p[i] != p[0])
			return 0;
	return 1;
}

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *systab)
{
	guest_init(image, systab);
	tap_plan(16);
	EFI_GUID guid = TESSEL_IOMMU_TEST_GUID;
	for (UINTN i = 0; i < ST->NumberOfTableEntries; i++) {
		const struct tessel_iommu_test_table *t = ST->ConfigurationTable[i].VendorTable;
		if (!CompareGuid(&ST->ConfigurationTable[i].VendorGuid, &guid) && t->magic == TESSEL_IOMMU_TEST_MAGIC)
			test_call = t->call;
	}
	if (!test_call)
		tap_bail("no IOMMU test channel (needs tessel-test.efi, iommu=on, a VT-d unit, no VMX)");
	if (!find_edu())
		tap_bail("no edu device (1234:11e8) on bus 0");
	tap_diag("edu at %02x:%02x.%u, BAR0 %lx", edu_sid >> 8, (edu_sid >> 3) & 31, edu_sid & 7,
		 (unsigned long)(uintptr_t)edu);

	/* Three pages below 256 MiB (edu's default DMA mask). */
	EFI_PHYSICAL_ADDRESS pa = 0x0fffffff;
	if (EFI_ERROR(BS->AllocatePages(AllocateMaxAddress, EfiBootServicesData, 3, &pa)))
		tap_bail("cannot allocate DMA pages");
	uint8_t *src = (uint8_t *)(uintptr_t)pa, *dst = src + 4096, *prot = src + 8192;
	uint8_t save[LEN], want[LEN];
	struct tessel_iommu_test_req r0 = poll(), r;
	tap_diag("region %lx-%lx, faults before: %lu", (unsigned long)r0.region_base,
		 (unsigned long)(r0.region_base + r0.region_size), (unsigned long)r0.faults);

	/* 1: ordinary RAM, both directions. */
	fill(src, 1);
	SetMem(dst, LEN, 0);
	int e = to_edu(src, LEN) | from_edu(dst, LEN);
	r = poll();
	tap_ok(!e && !CompareMem(src, dst, LEN), "DMA from RAM to the device and back to RAM works");
	tap_ok(r.faults == r0.faults, "no fault for DMA to ordinary RAM (%lu)", (unsigned long)r.faults);

	/* 2: a page with a protected sub-page is read-only for DMA. */
	fill(prot, 50);
	CopyMem(save, prot, LEN);
	r = call(TESSEL_IOMMU_TEST_PROTECT, (uintptr_t)prot >> 12, 1);
	tap_ok(r.status == 0, "page %lx marked as having a protected sub-page", (unsigned long)(uintptr_t)prot);
	fill(src, 100);
	e = to_edu(src, LEN) | from_edu(prot, LEN);
	r = poll();
	tap_ok(!e && !CompareMem(prot, save, LEN), "a DMA write into that page is blocked (memory unchanged)");
	tap_ok(r.faults == r0.faults + 1 && r.last_sid == edu_sid && r.last_addr == (uintptr_t)prot && !r.last_read,
	       "the fault is recorded: source %04lx (edu %04x), page %lx, write, reason %lu",
	       (unsigned long)r.last_sid, edu_sid, (unsigned long)r.last_addr, (unsigned long)r.last_reason);
	tap_ok(r.events == r0.events + 1 && r.last_event_addr == (uintptr_t)prot && r.last_event_sid == edu_sid,
	       "... and reported as a protected-page event (%lu)", (unsigned long)r.events);
	SetMem(dst, LEN, 0);
	e = to_edu(prot, LEN) | from_edu(dst, LEN);
	r = poll();
	tap_ok(!e && !CompareMem(dst, save, LEN) && r.faults == r0.faults + 1,
	       "a DMA read of that page still works (read-only, not absent)");

	/* 3: unprotected again, the same write lands. */
	r = call(TESSEL_IOMMU_TEST_PROTECT, (uintptr_t)prot >> 12, 0);
	e = to_edu(src, LEN) | from_edu(prot, LEN);
	r = poll();
	tap_ok(r.status == 0 && !e && !CompareMem(prot, src, LEN) && r.faults == r0.faults + 1,
	       "after unprotecting, the DMA write lands (the IOTLB was invalidated)");

	/* 4: the hypervisor's region: no DMA mapping. Nothing runs there without VMX, so the
	 * program can read it directly to see whether the device changed it. */
	uint8_t *region = (uint8_t *)(uintptr_t)(r0.region_base + 0x1000);
	tap_ok(r0.region_base && r0.region_base + r0.region_size <= 0x10000000ULL,
	       "the region is within edu's 28-bit DMA reach");
	CopyMem(save, region, LEN);
	e = to_edu(src, LEN) | from_edu(region, LEN);
	r = poll();
	tap_ok(!e && !CompareMem(region, save, LEN), "a DMA write into the hypervisor's region is blocked");
	tap_ok(r.faults == r0.faults + 2 && r.last_sid == edu_sid && r.last_addr == (uintptr_t)region && !r.last_read,
	       "... and recorded (source %04lx, page %lx)", (unsigned long)r.last_sid, (unsigned long)r.last_addr);
	tap_ok(r.events == r0.events + 1, "... without a protected-page event");

	/* 5: reading the region returns nothing of it. */
	fill(want, 200);
	CopyMem(src, want, LEN);
	SetMem(dst, LEN, 0x5a);
	e = to_edu(src, LEN) | to_edu(region, LEN) | from_edu(dst, LEN);
	r = poll();
	tap_diag("read-back of the region: %02x %02x %02x %02x ... (region holds %02x %02x %02x %02x ...)", dst[0],
		 dst[1], dst[2], dst[3], region[0], region[1], region[2], region[3]);
	tap_ok(!e && CompareMem(dst, region, LEN) && (uniform(dst, LEN) || !CompareMem(dst, want, LEN)),
	       "a DMA read of the region returns none of its bytes");
	tap_ok(r.faults == r0.faults + 3 && r.last_read && r.last_addr == (uintptr_t)region,
	       "... and is recorded as a read fault");
	tap_ok(r.faults_protected == r0.faults_protected + 3, "every fault counted (%lu, %lu on protected memory)",
	       (unsigned long)r.faults, (unsigned long)r.faults_protected);
	tap_ok(!dmar_visible(), "the DMAR table is gone from the XSDT the OS reads");
	guest_finish();
}
