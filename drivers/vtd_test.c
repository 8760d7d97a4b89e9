/*
 * The IOMMU test channel's core side (include/tessel/iommu_test.h). Compiled into every
 * build; does anything only in test builds (TESSEL_TEST_HOOKS), else -ENOSYS.
 */
#include <hw.h>
#include <tessel/bootinfo.h>
#include <tessel/iommu_test.h>
#include "drivers/vtd.h"
#include "drivers/vtd_test.h"
#include "hv/log.h"
#include "mm/memmap.h"
#include "mm/pmm.h"

#ifdef TESSEL_TEST_HOOKS

#define TEST_PROTECTED_MAX 16
static u64 test_protected[TEST_PROTECTED_MAX];
static u32 test_protected_count;
static struct tessel_boot_info *test_bi;
static u64 events, last_event_sid, last_event_addr;

static bool is_protected(u64 gfn)
{
	for (u32 i = 0; i < test_protected_count; i++)
		if (test_protected[i] == gfn)
			return true;
	return false;
}

static bool protected_in_2m(u64 gfn)
{
	for (u32 i = 0; i < test_protected_count; i++)
		if ((test_protected[i] >> 9) == (gfn >> 9))
			return true;
	return false;
}

static void report(void *ctx, const struct vtd_fault *f)
{
	(void)ctx;
	events++;
	last_event_sid = f->sid;
	last_event_addr = f->addr;
}

s64 iommu_only_init(struct tessel_boot_info *bi)
{
	if (bi->magic != TESSEL_BOOTINFO_MAGIC || bi->version != TESSEL_BOOTINFO_VERSION || bi->size != sizeof(*bi))
		return -EINVAL;
	test_bi = bi;
	log_init(bi->serial_port, bi->config.log_level);
	log_info("Tessel core (test build): IOMMU only, without VMX; region %llx-%llx",
		 (unsigned long long)bi->region_base, (unsigned long long)(bi->region_base + bi->region_size));
	pmm_init(hpa(bi->free_base), bi->region_base + bi->region_size - bi->free_base);
	memmap_init(bi->mem, bi->mem_count, bi->region_base, bi->region_size);
	s64 r = iommu_init(&bi->config, bi->acpi_rsdp);
	if (r)
		return r;
	return iommu.active ? 0 : -ENODEV;
}

s64 iommu_test_op(struct tessel_iommu_test_req *req)
{
	if (!test_bi || !iommu.active)
		return req->status = -ENODEV;
	switch (req->op) {
	case TESSEL_IOMMU_TEST_PROTECT: {
		bool was = is_protected(req->gfn);
		if (req->arg && !was) {
			if (test_protected_count == TEST_PROTECTED_MAX)
				return req->status = -ENOMEM;
			test_protected[test_protected_count++] = req->gfn;
		} else if (!req->arg && was) {
			for (u32 i = 0; i < test_protected_count; i++)
				if (test_protected[i] == req->gfn)
					test_protected[i] = test_protected[--test_protected_count];
		}
		iommu_pages_changed(req->gfn, 1, is_protected, protected_in_2m);
		req->status = 0;
		break;
	}
	case TESSEL_IOMMU_TEST_POLL:
		iommu_poll_faults(is_protected, report, NULL);
		req->status = 0;
		break;
	default:
		req->status = -EINVAL;
		break;
	}
	req->faults = iommu.faults;
	req->faults_protected = iommu.faults_protected;
	req->events = events;
	req->last_event_sid = last_event_sid;
	req->last_event_addr = last_event_addr;
	req->last_sid = iommu.last_fault.sid;
	req->last_addr = iommu.last_fault.addr;
	req->last_reason = iommu.last_fault.reason;
	req->last_read = iommu.last_fault.read;
	req->region_base = test_bi->region_base;
	req->region_size = test_bi->region_size;
	return req->status;
}

#else

s64 iommu_only_init(struct tessel_boot_info *bi)
{
	(void)bi;
	return -ENOSYS;
}

s64 iommu_test_op(struct tessel_iommu_test_req *req)
{
	(void)req;
	return -ENOSYS;
}

#endif
