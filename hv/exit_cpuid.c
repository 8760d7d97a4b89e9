/*
 * CPUID (exit reason 10). The processor's answers pass through with what a guest of
 * Tessel must see instead (docs/ABI.md section 1): VMX hidden, the hypervisor bit set,
 * the 0x40000000 leaves; and OSXSAVE/OSPKE reflecting the guest's CR4, not the host's.
 *
 * Hidden with the MSRs the policy refuses (hv/msr_policy.c, docs/MSR.md), so that a guest
 * kernel does not try them:
 * - Intel PT: CPUID.7.0:EBX[25] and leaf 14H (SDM 35.3.1);
 * - the PMU: leaf 0AH (architectural performance monitoring, SDM 18.2), PDCM
 *   (IA32_PERF_CAPABILITIES), DS/DTES64/DS-CPL (the DS save area: BTS and PEBS), arch LBR
 *   (CPUID.7.0:EDX[19], leaf 1CH);
 * - the XSAVE supervisor components of those features: PT (8), HDC (13), LBR (15), HWP (16)
 *   in CPUID.(0DH,1):ECX and their sub-leaves of leaf 0DH (IA32_XSS refuses them too).
 */
#include <hw.h>
#include <arch/cpu.h>
#include "abi.h"
#include "exit.h"
#include "features.h"
#include "vcpu.h"
#include "vmcs.h"

#define XSS_HIDDEN ((1U << 8) | (1U << 13) | (1U << 15) | (1U << 16))

/* The feature bits and leaves hidden for the MSR policy (see above). */
static void cpuid_hide(u32 leaf, u32 sub, u32 *a, u32 *b, u32 *c, u32 *d)
{
	switch (leaf) {
	case 1:
		*c &= ~(CPUID1_ECX_DTES64 | CPUID1_ECX_DS_CPL | CPUID1_ECX_PDCM);
		*d &= ~CPUID1_EDX_DS;
		break;
	case 7:
		if (sub == 0) {
			*b &= ~CPUID7_EBX_PT;
			*d &= ~CPUID7_EDX_ARCH_LBR;
		}
		break;
	case 0xa:  /* architectural performance monitoring */
	case 0x14: /* Intel PT */
	case 0x1c: /* architectural LBR */
	case 0x23: /* architectural performance monitoring extended */
		*a = *b = *c = *d = 0;
		break;
	case 0xd:
		if (sub == 1)
			*c &= ~XSS_HIDDEN;
		else if (sub < 32 && (XSS_HIDDEN >> sub) & 1)
			*a = *b = *c = *d = 0;
		break;
	default:
		break;
	}
}

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
		/* The guest's CR4 (SDM 25.3, 24.6.6): the bits it owns are in the guest CR4 field
		 * (a MOV to CR4 that changes only those does not exit, so the read shadow keeps
		 * whatever it held); the bits the hypervisor owns read from the shadow. */
		u64 cr4 = vcpu_guest_cr4(c);
		cpuid_hide(leaf, sub, &a, &b, &cx, &d);
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
