/*
 * Cross-CPU EPT invalidation ("shootdown"). After a change that can narrow guest write
 * permissions (EPT W, bit 61, the SPPT), every processor must drop translations cached
 * for the EPT before the hypercall returns (SDM 28.4.3; docs/SPP.md section 7).
 *
 * The initiator bumps a generation, INVEPTs itself, and sends an NMI to every other
 * processor that can be running guest code. NMIs exit (NMI exiting is on), so the target
 * takes a VM exit even if its guest has interrupts disabled; its NMI exit path sees the
 * request, INVEPTs and acknowledges by storing the generation. Processors in
 * wait-for-SIPI or stopped run no guest code and are skipped: they flush before their next
 * VM entry (vapic_check_init).
 *
 * The target acknowledges only after its INVEPT (the acknowledgement is the generation it
 * saw), and the initiator waits for that acknowledgement, never for the request flag: a
 * cleared request says nothing about whether the INVEPT has run yet. The wait is robust
 * against a guest that did anything on its CPU: the NMI is sent again from time to time
 * (it can be held off while the target handles another NMI) and a target that went to
 * wait-for-SIPI or stopped is no longer waited for (it flushes before entering again).
 * Which NMIs were the hypervisor's (not delivered to the guest) is decided in hv/vapic.c.
 */
#include <hw.h>
#include <arch/vmx.h>
#include "hv/log.h"
#include "hv/percpu.h"
#include "hv/pin.h"
#include "hv/vapic.h"
#include "hv/vmcs.h"
#include "hv/vmx.h"
#include "spp/spp.h"

#define FLUSH_RESEND_SPINS (1ULL << 20)

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
	if (!__atomic_exchange_n(&flush_req[c->index], false, __ATOMIC_SEQ_CST))
		return false;
	/* The generation is read before the INVEPT: it covers every change made before it. */
	u64 gen = __atomic_load_n(&flush_gen, __ATOMIC_SEQ_CST);
	invept_local();
	/* A CR pin (hv/pin.c) rides on the shootdown: the masks are in place before the ack.
	 * Safe also when the NMI interrupted root mode: only this CPU writes its CR masks and
	 * shadows, and a shadow written here holds the guest's view, as any later write does. */
	pin_sync(c);
	__atomic_store_n(&flush_ack[c->index], gen, __ATOMIC_SEQ_CST);
	return true;
}

void spp_flush_all_cpus(void)
{
	struct percpu *me = this_cpu();
	static bool sent[TESSEL_MAX_CPUS]; /* under spp.lock, like every shootdown */
	u64 gen = __atomic_add_fetch(&flush_gen, 1, __ATOMIC_SEQ_CST);
	invept_local();
	for (u32 i = 0; i < percpu_count; i++) {
		struct percpu *t = percpu_array[i];
		/* A CPU found in wait-for-SIPI here clears wait_sipi later, then flushes. */
		sent[i] = t != me && percpu_runs_guest(t);
		if (!sent[i])
			continue;
		__atomic_store_n(&flush_req[i], true, __ATOMIC_SEQ_CST);
		vapic_send_nmi(t);
	}
	for (u32 i = 0; i < percpu_count; i++) {
		struct percpu *t = percpu_array[i];
		if (!sent[i])
			continue;
		u64 spins = 0;
		while (__atomic_load_n(&flush_ack[i], __ATOMIC_SEQ_CST) < gen && percpu_runs_guest(t)) {
			cpu_relax();
			if (++spins % FLUSH_RESEND_SPINS)
				continue;
			if (spins == FLUSH_RESEND_SPINS * 64)
				log_warn("shootdown: cpu %u has not acknowledged; still waiting", i);
			__atomic_store_n(&flush_req[i], true, __ATOMIC_SEQ_CST);
			vapic_send_nmi(t);
		}
	}
}
