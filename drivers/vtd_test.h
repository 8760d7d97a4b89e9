/* The IOMMU test channel's core side (include/tessel/iommu_test.h); -ENOSYS outside test builds. */
#ifndef DRIVERS_VTD_TEST_H
#define DRIVERS_VTD_TEST_H

#include <tessel/bootinfo.h>
#include <tessel/iommu_test.h>
#include <tessel/types.h>

/* CORE_OP_IOMMU_ONLY: page allocator, memory map and iommu_init, nothing of VMX. 0 when DMA
 * remapping is on, else a negative errno. */
s64 iommu_only_init(struct tessel_boot_info *bi);
/* CORE_OP_IOMMU_TEST. */
s64 iommu_test_op(struct tessel_iommu_test_req *req);

#endif
