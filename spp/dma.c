/*
 * Sub-page protection and DMA (docs/IOMMU.md): the glue between the permission store and the
 * IOMMU's tables (drivers/vtd.c). An IOMMU maps whole pages, so a page with any protected
 * sub-page is read-only for devices: a DMA write into its writable sub-pages is refused too,
 * and reported like a write into a protected one.
 */
#include <hw.h>
#include "drivers/vtd.h"
#include "hv/percpu.h"
#include "spp/dma.h"
#include "spp/spp.h"

/* Under spp.lock (both callers hold it). */
static bool page_protected(u64 gfn)
{
	u32 map, flags;
	spp_store_get(&spp.store, gfn, &map, &flags);
	return map != SPP_MAP_ALL;
}

static bool block_protected(u64 gfn)
{
	return spp_store_count_2m(&spp.store, gfn) != 0;
}

void spp_dma_changed(u64 gfn, u64 n)
{
	iommu_pages_changed(gfn, n, page_protected, block_protected);
}

static void post(void *ctx, const struct vtd_fault *f)
{
	/* The IOMMU reports the page, not the bytes: gpa = page, gla = source ID, no RIP. */
	spp_post_event(ctx, f->addr, 0, f->sid, TESSEL_EV_DMA, 0);
}

void spp_dma_poll(struct percpu *c)
{
	if (!__atomic_load_n(&iommu.active, __ATOMIC_RELAXED))
		return;
	spin_lock(&spp.lock);
	iommu_poll_faults(spp.mode == SPP_MODE_NONE ? NULL : page_protected, post, c);
	spin_unlock(&spp.lock);
}
