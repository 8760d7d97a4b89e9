/* The per-CPU area table and the "which CPU am I" lookup used outside exit handling. */
#include <arch/msr.h>
#include "percpu.h"

struct percpu *percpu_array[TESSEL_MAX_CPUS];
u32 percpu_count;

int percpu_current_index(void)
{
	u64 gs = rdmsr(MSR_IA32_GS_BASE);
	for (u32 i = 0; i < percpu_count; i++)
		if (percpu_array[i] && (u64)(uintptr_t)percpu_array[i] == gs)
			return (int)i;
	return -1;
}
