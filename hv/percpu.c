/* The per-CPU area table and the "which CPU am I" lookup used outside exit handling. */
#include <arch/msr.h>
#include "percpu.h"
#include "spp/step.h"

struct percpu *percpu_array[TESSEL_MAX_CPUS];
u32 percpu_count;
volatile bool percpu_gs_ready;

void lock_depth_add(int d)
{
	if (!percpu_gs_ready)
		return;
	struct percpu *c = this_cpu();
	if (!c)
		return; /* host tests: a thread that plays no CPU */
	/* Same-CPU ordering against the NMI handler is all that matters here. */
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	c->locks_held += (u32)d;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	if (c->locks_held == 0 && c->pause_deferred) {
		c->pause_deferred = false;
		spp_step_pause_deferred(c);
	}
}

int percpu_current_index(void)
{
	u64 gs = rdmsr(MSR_IA32_GS_BASE);
	for (u32 i = 0; i < percpu_count; i++)
		if (percpu_array[i] && (u64)(uintptr_t)percpu_array[i] == gs)
			return (int)i;
	return -1;
}
