/*
 * Hypercalls that exist only in test builds (build/tessel-test.efi, compiled with
 * -DTESSEL_TEST_HOOKS): they let the system tests create conditions a correct guest cannot,
 * such as a corrupted SPPT entry. Release builds answer -ENOSYS for these numbers.
 *
 *   HC_TEST_SPPT_MISCONFIG (0x7e00): RBX = guest-physical address of a protected page,
 *   RCX = SPPT level to corrupt (1 = leaf vector: odd bits, 2 = the L2 entry: reserved bits).
 *   0, -ENODEV (not hardware SPP), -EINVAL (bad level, or no SPPT entry for that address).
 *
 *   HC_TEST_TABLE_MEM (0x7e01): RBX = 1: first give back the tables of the idle-block cache
 *   (spp_reclaim_idle, the reclamation hysteresis), RBX = 0: as they are. Returns 0 with
 *   RBX = free pages of the
 *   hypervisor's page allocator, RCX = EPT table pages, RDX = SPPT table pages (0 without
 *   hardware SPP): what a guest needs to see table memory return to its starting level after
 *   protect/unprotect churn (issue 9 item m).
 *
 *   HC_TEST_EPT_LEAF (0x7e02): RBX = guest-physical address. Returns 0 with RBX = the EPT
 *   leaf entry that maps it, RCX = its level (1 = 4 KiB, 2 = 2 MiB, 3 = 1 GiB), or -EINVAL if
 *   it is not mapped: lets a guest see the memory type its MTRR writes produced.
 *
 *   HC_TEST_VMCS_COUNT (0x7e03): no arguments. Returns 0 with RBX = VMREADs, RCX = VMWRITEs
 *   made so far (all CPUs, one unlocked counter: exact with one CPU). The benchmark takes the
 *   difference around one operation, less that of two calls in a row (make bench).
 *
 *   HC_TEST_ROOT_MSR (0x7e04): RBX = MSR index. Returns 0 with RBX = the MSR's value in root
 *   mode, read while handling the call, or -EINVAL if reading it faults: lets a guest see that
 *   root mode does not run with its IA32_SPEC_CTRL (hv/vmx.c setup_spec_ctrl).
 */
#include "hv/hypercall.h"
#include "mm/pmm.h"
#include "spp/spp.h"

#ifdef TESSEL_TEST_HOOKS
s64 hc_test_sppt_misconfig(struct percpu *c, struct hc_args *a)
{
	(void)c;
	if (spp.mode != SPP_MODE_HW)
		return -ENODEV;
	if (a->arg[1] != 1 && a->arg[1] != 2)
		return -EINVAL;
	spin_lock(&spp.lock);
	int r = sppt_inject_misconfig(&spp.sppt, a->arg[0], (int)a->arg[1]);
	spin_unlock(&spp.lock);
	if (!r)
		invept(INVEPT_ALL_CONTEXT, 0); /* the calling CPU is the one that will write */
	return r ? -EINVAL : 0;
}

s64 hc_test_table_mem(struct percpu *c, struct hc_args *a)
{
	(void)c;
	spin_lock(&spp.lock);
	if (a->arg[0] & 1)
		spp_reclaim_idle();
	a->out[0] = pmm_free_count();
	a->out[1] = spp.ept ? spp.ept->tables : 0;
	a->out[2] = spp.mode == SPP_MODE_HW ? spp.sppt.pages : 0;
	spin_unlock(&spp.lock);
	a->has_out = true;
	return 0;
}

s64 hc_test_ept_leaf(struct percpu *c, struct hc_args *a)
{
	int level = 0;
	u64 *e, v = 0;

	(void)c;
	if (!spp.ept)
		return -EINVAL;
	spin_lock(&spp.ept->lock);
	e = ept_leaf(spp.ept, a->arg[0], &level);
	if (e)
		v = *e;
	spin_unlock(&spp.ept->lock);
	if (!e)
		return -EINVAL;
	a->out[0] = v;
	a->out[1] = (u64)level;
	a->out[2] = 0;
	a->has_out = true;
	return 0;
}
u64 vmcs_test_reads, vmcs_test_writes;

s64 hc_test_vmcs_count(struct percpu *c, struct hc_args *a)
{
	(void)c;
	a->out[0] = vmcs_test_reads;
	a->out[1] = vmcs_test_writes;
	a->out[2] = 0;
	a->has_out = true;
	return 0;
}

s64 hc_test_root_msr(struct percpu *c, struct hc_args *a)
{
	u64 v;

	(void)c;
	if (a->arg[0] > 0xffffffffULL || !rdmsr_safe((u32)a->arg[0], &v))
		return -EINVAL;
	a->out[0] = v;
	a->out[1] = 0;
	a->out[2] = 0;
	a->has_out = true;
	return 0;
}
#endif
