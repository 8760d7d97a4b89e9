/*
 * CPUID (exit reason 10). The processor's answers pass through with what a guest of
 * Tessel must see instead (docs/ABI.md section 1): VMX hidden, the hypervisor bit set,
 * the 0x40000000 leaves; and OSXSAVE/OSPKE reflecting the guest's CR4, not the host's.
 */
#include <hw.h>
#include <arch/cpu.h>
#include "abi.h"
#include "exit.h"
#include "features.h"
#include "vcpu.h"
#include "vmcs.h"

void exit_cpuid(struct percpu *c)
{
	u32 leaf = (u32)c->regs->gpr[GPR_AX], sub = (u32)c->regs->gpr[GPR_CX];
	u32 a = 0, b = 0, cx = 0, d = 0;

	if ((leaf & 0xf0000000U) == 0x40000000U) {
		if (leaf == TESSEL_CPUID_BASE) {
			a = TESSEL_CPUID_MAX;
			b = TESSEL_SIG_EBX;
			cx = TESSEL_SIG_ECX;
			d = TESSEL_SIG_EDX;
		} else if (leaf == TESSEL_CPUID_FEATURES) {
			a = TESSEL_ABI_VERSION;
			b = tessel_features();
			cx = TESSEL_MAX_PAGES_PER_CALL;
		}
	} else {
		cpuid_count(leaf, sub, &a, &b, &cx, &d);
		u64 cr4 = vmcs_readl(VMCS_CTRL_CR4_READ_SHADOW);
		if (leaf == 1) {
			cx &= ~(CPUID1_ECX_VMX | CPUID1_ECX_OSXSAVE);
			cx |= CPUID1_ECX_HYPERVISOR;
			if (cr4 & CR4_OSXSAVE)
				cx |= CPUID1_ECX_OSXSAVE;
		} else if (leaf == 7 && sub == 0) {
			cx &= ~CPUID7_ECX_OSPKE;
			if (cr4 & CR4_PKE)
				cx |= CPUID7_ECX_OSPKE;
		}
	}
	c->regs->gpr[GPR_AX] = a;
	c->regs->gpr[GPR_BX] = b;
	c->regs->gpr[GPR_CX] = cx;
	c->regs->gpr[GPR_DX] = d;
	vcpu_skip_insn(c);
}
