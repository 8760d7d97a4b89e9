/*
 * Cross-CPU EPT invalidation ("shootdown"). After a change that can narrow guest write
 * permissions (EPT W, bit 61, the SPPT), every processor must drop translations cached
 * for the EPT before the hypercall returns (SDM 28.4.3; SPP-FACTS.md section 7).
 *
 * The initiator bumps a generation, INVEPTs itself, and sends an NMI to every other
 * processor that can be running guest code. NMIs exit (NMI exiting is on), so the target
 * takes a VM exit even if its guest has interrupts disabled; its NMI exit path sees the
 * request, INVEPTs and acknowledges by storing the generation. Processors in
 * wait-for-SIPI or stopped run no guest code and are skipped: they flush before their next
 * VM entry (exit_sipi). The initiator waits for every acknowledgement.
 *
 * An NMI that was a flush request is not delivered to the guest. A genuine NMI arriving
 * at the same moment may merge with ours (NMIs do not queue): that one is lost. This is
 * the same window every NMI-IPI user has; it is documented in docs/ARCHITECTURE.md.
 */
#include <hw.h>
#include <arch/vmx.h>
#include "drivers/apic.h"
#include "hv/log.h"
#include "hv/percpu.h"
#include "hv/vmcs.h"
#include "hv/vmx.h"
#include "spp/spp.h"

static volatile u64 flush_gen;
static volatile u64 flush_ack[TESSEL_MAX_CPUS];
static volatile bool flush_req[TESSEL_MAX_CPUS];

static void invept_local(void)
{
	invept(INVEPT_ALL_CONTEXT, 0);
}

bool spp_flush_nmi(void)
{
	struct percpu *c = this_cpu();
	if (!__atomic_load_n(&flush_req[c->index], __ATOMIC_ACQUIRE))
		return false;
	__atomic_store_n(&flush_req[c->index], false, __ATOMIC_RELAXED);
	invept_local();
	__atomic_store_n(&flush_ack[c->index], __atomic_load_n(&flush_gen, __ATOMIC_ACQUIRE), __ATOMIC_RELEASE);
	return true;
}

void spp_flush_all_cpus(void)
{
	struct percpu *me = this_cpu();
	u64 gen = __atomic_add_fetch(&flush_gen, 1, __ATOMIC_SEQ_CST);
	invept_local();
	for (u32 i = 0; i < percpu_count; i++) {
		struct percpu *t = percpu_array[i];
		if (t == me || !percpu_runs_guest(t))
			continue;
		__atomic_store_n(&flush_req[i], true, __ATOMIC_RELEASE);
		if (!apic_send_nmi(t->apic_id))
			log_warn("shootdown: cpu %u's APIC is disabled", i);
	}
	for (u32 i = 0; i < percpu_count; i++) {
		struct percpu *t = percpu_array[i];
		if (t == me || !percpu_runs_guest(t))
			continue;
		u64 spins = 0;
		while (__atomic_load_n(&flush_ack[i], __ATOMIC_ACQUIRE) < gen && __atomic_load_n(&flush_req[i], __ATOMIC_ACQUIRE)) {
			cpu_relax();
			if (++spins == (1ULL << 26))
				log_warn("shootdown: still waiting for cpu %u", i);
		}
	}
}
