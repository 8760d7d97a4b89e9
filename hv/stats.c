/* Summing per-CPU statistics into the HC_STATS record. */
#include "drivers/vtd.h"
#include "percpu.h"
#include "stats.h"

u64 stat_counters[TESSEL_MAX_CPUS][STAT_COUNT];

__attribute__((weak)) u64 stats_gauge(enum stat s)
{
	(void)s;
	return 0;
}

void stats_snapshot(u64 out[STAT_COUNT])
{
	for (unsigned s = 0; s < STAT_COUNT; s++) {
		u64 sum = 0;
		for (u32 i = 0; i < percpu_count; i++)
			sum += __atomic_load_n(&stat_counters[i][s], __ATOMIC_RELAXED);
		out[s] = sum;
	}
	u64 exits = 0;
	for (u32 i = 0; i < percpu_count; i++)
		exits += percpu_array[i] ? percpu_array[i]->exits : 0;
	out[STAT_EXITS] = exits;
	out[STAT_PAGES_PROTECTED] = stats_gauge(STAT_PAGES_PROTECTED);
	out[STAT_SPPT_PAGES] = stats_gauge(STAT_SPPT_PAGES);
	out[STAT_DMA_FAULTS] = __atomic_load_n(&iommu.faults, __ATOMIC_RELAXED);
}
