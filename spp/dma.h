/* Sub-page protection and DMA remapping (spp/dma.c, docs/IOMMU.md). */
#ifndef SPP_DMA_H
#define SPP_DMA_H

#include <tessel/types.h>

struct percpu;

/* After HC_SPP_SET applied [gfn, gfn + n), under spp.lock: the DMA tables follow and the
 * IOTLBs are invalidated before this returns. Nothing to do without an active IOMMU. */
void spp_dma_changed(u64 gfn, u64 n);

/* Collect DMA fault records (log, HC_STATS dma_faults) and post a TESSEL_EV_DMA event for each
 * fault on a page with a protected sub-page, on behalf of vCPU c. Takes spp.lock. */
void spp_dma_poll(struct percpu *c);

#endif
