/*
 * The IOMMU test channel (test builds only; docs/IOMMU.md "Testing without VMX").
 *
 * QEMU's TCG has no VMX, so the hypervisor cannot start there, but QEMU has an emulated VT-d
 * and the edu DMA device. With build/tessel-test.efi and iommu=on on a machine without VMX,
 * the loader has the core program the IOMMU exactly as it does at hypervisor start
 * (CORE_OP_IOMMU_ONLY: the same drivers/vtd*.c code), and then publishes this UEFI
 * configuration table so that a test program can do what a guest's HC_SPP_SET and HC_STATS
 * would do to the DMA side: change a page's protection and collect faults.
 *
 * Plain fixed-width types only: included by the core, the loader and guest test programs.
 */
#ifndef TESSEL_IOMMU_TEST_H
#define TESSEL_IOMMU_TEST_H

#include <stdint.h>

#define TESSEL_IOMMU_TEST_GUID \
	{ 0x5f0c1d2e, 0x7a43, 0x4f61, { 0x8b, 0x2c, 0x90, 0x1e, 0x44, 0xd3, 0x6a, 0x17 } }
#define TESSEL_IOMMU_TEST_MAGIC 0x54534554554d4d49ULL /* "IMMUTEST" */

enum tessel_iommu_test_op {
	TESSEL_IOMMU_TEST_PROTECT = 1, /* page gfn: arg != 0: has a protected sub-page; 0: none */
	TESSEL_IOMMU_TEST_POLL = 2,    /* collect fault records into the counters below */
};

struct tessel_iommu_test_req {
	uint64_t op;
	uint64_t gfn;
	uint64_t arg;
	/* out (every op): */
	int64_t status;
	uint64_t faults;           /* what HC_STATS reports as dma_faults */
	uint64_t faults_protected; /* faults on the region or a page with a protected sub-page */
	uint64_t events;           /* faults that would have been posted as TESSEL_EV_DMA events */
	uint64_t last_event_sid;   /* source ID and page of the last of those */
	uint64_t last_event_addr;
	uint64_t last_sid;         /* source ID, page, reason and type (1 = read) of the last fault */
	uint64_t last_addr;
	uint64_t last_reason;
	uint64_t last_read;
	uint64_t region_base;      /* the hypervisor's region (no DMA mapping) */
	uint64_t region_size;
};

/* The function the loader publishes: runs req in the core; returns req->status. System V
 * calling convention (the loader and the test programs are GNU-EFI programs built alike). */
typedef int64_t (*tessel_iommu_test_fn)(struct tessel_iommu_test_req *req);

struct tessel_iommu_test_table {
	uint64_t magic;
	tessel_iommu_test_fn call;
};

#endif
