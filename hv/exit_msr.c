/*
 * RDMSR/WRMSR exits (reasons 31/32). The MSR bitmap (hv/vmx.c) makes only the MSRs below
 * exit, plus every MSR outside the bitmap's two ranges (SDM 24.6.9):
 * - IA32_FEATURE_CONTROL reads as locked with VMX disabled (the guest has no VMX) and
 *   cannot be written (#GP, as for any locked value);
 * - the IA32_VMX_* capability MSRs do not exist for the guest (#GP).
 * Anything else is performed on the guest's behalf; a #GP it raises is the guest's.
 */
#include <hw.h>
#include <arch/msr.h>
#include "exit.h"
#include "mm/mtrr_guest.h"
#include "vapic.h"
#include "vcpu.h"

static bool msr_is_vmx(u32 msr) { return msr >= MSR_IA32_VMX_FIRST && msr <= MSR_IA32_VMX_LAST; }

void exit_rdmsr(struct percpu *c)
{
	u32 msr = (u32)c->regs->gpr[GPR_CX];
	u64 v;
	if (msr == MSR_IA32_FEATURE_CONTROL) {
		v = FEATURE_CONTROL_LOCK;
	} else if (mtrr_guest_is_mtrr(msr)) { /* [mem helper, interim] virtual MTRRs */
		if (mtrr_guest_read(msr, &v)) {
			vcpu_inject_gp0(c);
			return;
		}
	} else if (msr_is_vmx(msr) || !rdmsr_safe(msr, &v)) {
		vcpu_inject_gp0(c);
		return;
	}
	c->regs->gpr[GPR_AX] = (u32)v;
	c->regs->gpr[GPR_DX] = v >> 32;
	vcpu_skip_insn(c);
}

void exit_wrmsr(struct percpu *c)
{
	u32 msr = (u32)c->regs->gpr[GPR_CX];
	u64 v = (c->regs->gpr[GPR_DX] << 32) | (u32)c->regs->gpr[GPR_AX];
	if (msr == MSR_X2APIC_ICR && vapic_icr_write(c, (u32)v, (u32)(v >> 32), true)) {
		vcpu_skip_insn(c);
		return;
	}
	if (mtrr_guest_is_mtrr(msr)) { /* [mem helper, interim] virtual MTRRs, never the host's */
		if (mtrr_guest_write(msr, v))
			vcpu_inject_gp0(c);
		else
			vcpu_skip_insn(c);
		return;
	}
	if (msr == MSR_IA32_FEATURE_CONTROL || msr_is_vmx(msr) || !wrmsr_safe(msr, v)) {
		vcpu_inject_gp0(c);
		return;
	}
	vcpu_skip_insn(c);
}
