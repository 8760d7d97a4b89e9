/*
 * Hypervisor statistics: the HC_STATS record (ABI.md section 3). Event counters are kept
 * per CPU (no shared cache line on the exit path) and summed on request; gauges such as
 * pages_protected are owned by their module and read through stats_gauge().
 */
#ifndef HV_STATS_H
#define HV_STATS_H

#include <tessel/types.h>
#include "percpu.h"

enum stat {
	STAT_EXITS, STAT_HYPERCALLS, STAT_SPP_DENIED, STAT_SPP_TRACKED, STAT_SPP_MISSES,
	STAT_SPP_MISCONFIGS, STAT_EPT_VIOLATIONS, STAT_EMULATED_WRITES, STAT_PAGES_PROTECTED,
	STAT_SPPT_PAGES, STAT_EVENTS_DROPPED,
	STAT_DMA_FAULTS, /* ABI 1.1: DMA faults the IOMMU recorded (drivers/vtd.c) */
	STAT_PIN_DENIED, /* ABI 1.2: guest CR/MSR writes a pin refused (hv/pin.c) */
	STAT_COUNT
};

extern u64 stat_counters[][STAT_COUNT];
/* hv/entry.asm's HC_NOP fast path counts STAT_HYPERCALLS in a row of STAT_COUNT counters. */
_Static_assert(STAT_HYPERCALLS == 1 && STAT_COUNT == 13, "hv/entry.asm: STAT_HYPERCALLS_OFF, STAT_ROW_BYTES");
#define stat_inc(s) (stat_counters[this_cpu()->index][(s)]++)
/* Sum of every CPU's counters and the current gauges, in ABI order. */
void stats_snapshot(u64 out[STAT_COUNT]);
/* Gauges are provided by their owners (spp/); weak default 0. */
u64 stats_gauge(enum stat s);

#endif
