/*
 * VMCALL exits (reason 18) and the hypercall table. The CPL check comes first: from
 * CPL > 0 the status is -EPERM and nothing else happens. Unknown numbers (including any
 * with bits above the table) give -ENOSYS. RIP always moves past VMCALL.
 */
#include <hw.h>
#include <tessel/bootinfo.h>
#include "abi.h"
#include "exit.h"
#include "features.h"
#include "hypercall.h"
#include "lib/string.h"
#include "mm/guest_mem.h"
#include "mm/memmap.h"
#include "pin.h"
#include "stats.h"
#include "spp/dma.h"
#include "spp/spp.h"
#include "vcpu.h"

static s64 hc_nop(struct percpu *c, struct hc_args *a)
{
	(void)c;
	(void)a;
	return 0;
}

static s64 hc_query(struct percpu *c, struct hc_args *a)
{
	(void)c;
	a->out[0] = TESSEL_ABI_VERSION;
	a->out[1] = tessel_features();
	a->out[2] = TESSEL_MAX_PAGES_PER_CALL;
	a->has_out = true;
	return 0;
}

/* HC_STATS: RBX = buffer GPA (8-byte aligned), RCX = its size. The whole stated buffer
 * must be guest RAM; min(RCX, record size) bytes are written. */
static s64 hc_stats(struct percpu *c, struct hc_args *a)
{
	(void)c;
	u64 gpa = a->arg[0], size = a->arg[1];
	u64 rec[STAT_COUNT];
	if (gpa & 7)
		return -EFAULT;
	if (size && !memmap_is_ram(gpa, size))
		return -EFAULT;
	stats_snapshot(rec);
	u64 n = MIN(size, sizeof(rec));
	s64 r = 0;
	spin_lock(&spp.lock);
	/* The hypervisor's writes into guest buffers obey sub-page protection. */
	if (n && (!spp_gpa_writable(gpa, n) || guest_write_phys(gpa, rec, n)))
		r = -EFAULT;
	spin_unlock(&spp.lock);
	if (r)
		return r;
	a->out[0] = sizeof(rec);
	a->out[1] = a->arg[1];
	a->out[2] = a->arg[2];
	a->has_out = true;
	return 0;
}

__attribute__((weak)) s64 hc_spp_set(struct percpu *c, struct hc_args *a)
{
	(void)c;
	(void)a;
	return -ENODEV;
}
__attribute__((weak)) s64 hc_spp_get(struct percpu *c, struct hc_args *a)
{
	(void)c;
	(void)a;
	return -ENODEV;
}
__attribute__((weak)) s64 hc_spp_lock(struct percpu *c, struct hc_args *a)
{
	(void)c;
	(void)a;
	return -ENODEV;
}
__attribute__((weak)) s64 hc_spp_protect_bytes(struct percpu *c, struct hc_args *a)
{
	(void)c;
	(void)a;
	return -ENODEV;
}
__attribute__((weak)) s64 hc_events_setup(struct percpu *c, struct hc_args *a)
{
	(void)c;
	(void)a;
	return -ENOSYS;
}


static const hypercall_fn hypercalls[HC_TABLE_SIZE] = {
	[HC_NOP] = hc_nop,
	[HC_QUERY] = hc_query,
	[HC_SPP_SET] = hc_spp_set,
	[HC_SPP_GET] = hc_spp_get,
	[HC_SPP_LOCK] = hc_spp_lock,
	[HC_SPP_PROTECT_BYTES] = hc_spp_protect_bytes, /* ABI 1.4 */
	[HC_EVENTS_SETUP] = hc_events_setup,
	[HC_STATS] = hc_stats,
	[HC_PIN_CR] = hc_pin_cr,   /* hv/pin.c */
	[HC_PIN_MSR] = hc_pin_msr, /* hv/pin.c */
	[HC_PIN_DT] = hc_pin_dt,   /* hv/pin.c, ABI 1.3 */
};

hypercall_fn hc_loader_hook;

s64 hypercall_dispatch(struct percpu *c, struct hc_args *a, unsigned cpl)
{
	a->has_out = false;
	if (cpl != 0)
		return -EPERM;
	if (unlikely(a->nr == TESSEL_HC_LOADER_LEAVE || a->nr == TESSEL_HC_LOADER_SEAL)) {
		hypercall_fn h = __atomic_load_n(&hc_loader_hook, __ATOMIC_ACQUIRE);
		return h ? h(c, a) : -ENOSYS;
	}
	/* DMA faults are collected when the guest calls (docs/IOMMU.md: no interrupt of ours). */
	spp_dma_poll(c);
#ifdef TESSEL_TEST_HOOKS
	if (a->nr == HC_TEST_SPPT_MISCONFIG)
		return hc_test_sppt_misconfig(c, a);
	if (a->nr == HC_TEST_TABLE_MEM) /* spp/test_hooks.c */
		return hc_test_table_mem(c, a);
	if (a->nr == HC_TEST_EPT_LEAF) /* spp/test_hooks.c */
		return hc_test_ept_leaf(c, a);
	if (a->nr == HC_TEST_VMCS_COUNT) /* spp/test_hooks.c */
		return hc_test_vmcs_count(c, a);
	if (a->nr == HC_TEST_ROOT_MSR) /* spp/test_hooks.c */
		return hc_test_root_msr(c, a);
#endif
	if (a->nr >= ARRAY_SIZE(hypercalls) || !hypercalls[a->nr])
		return -ENOSYS;
	return hypercalls[a->nr](c, a);
}

void exit_vmcall(struct percpu *c)
{
	struct guest_regs *r = c->regs;
	stat_inc(STAT_HYPERCALLS);
	unsigned cpl = vcpu_cpl();
	if (r->gpr[GPR_AX] == HC_NOP && cpl == 0) {
		/* The lean path of the call a guest uses to probe and to measure a round trip: no
		 * arguments to marshal, no results, no table. What hypercall_dispatch does for
		 * every call still happens (the CPL check above, the DMA-fault poll). */
		spp_dma_poll(c);
		r->gpr[GPR_AX] = 0;
		vcpu_skip_insn(c);
		return;
	}
	struct hc_args a; /* out[] is only read when a handler sets has_out */
	a.nr = r->gpr[GPR_AX];
	a.arg[0] = r->gpr[GPR_BX];
	a.arg[1] = r->gpr[GPR_CX];
	a.arg[2] = r->gpr[GPR_DX];
	a.arg[3] = r->gpr[GPR_SI];
	s64 status = hypercall_dispatch(c, &a, cpl);
	r->gpr[GPR_AX] = (u64)status;
	if (status == 0 && a.has_out) {
		r->gpr[GPR_BX] = a.out[0];
		r->gpr[GPR_CX] = a.out[1];
		r->gpr[GPR_DX] = a.out[2];
	}
	vcpu_skip_insn(c);
}
