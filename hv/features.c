/* Feature flags, decided once at boot (the SPP module sets the SPP bits it provides). */
#include <hw.h>
#include <arch/cpu.h>
#include <arch/msr.h>
#include "abi.h"
#include "features.h"
#include "vmx_caps.h"

static u32 features;

/* Pinning (ABI 1.2) needs no SPP and no IOMMU: always offered. Descriptor-table register
 * pinning (1.3) needs descriptor-table exiting (hv/pin.c). */
u32 tessel_features(void) { return features | TESSEL_F_PIN | (vmx_has_desc_exiting() ? TESSEL_F_PIN_DT : 0); }
void tessel_features_set(u32 flags) { features = flags; }

/*
 * Intel's "machine check error on page size change" (CVE-2018-12207, "iTLB multihit"): an
 * instruction fetch that hits two TLB entries of different page sizes for one address can
 * raise a machine check. The rule, as Linux's (arch/x86/kernel/cpu/common.c):
 *  - not an Intel processor: not affected;
 *  - IA32_ARCH_CAPABILITIES (MSR 10AH, enumerated by CPUID.(EAX=7,ECX=0):EDX[29]) bit 6
 *    PSCHANGE_MC_NO set: not affected (Ice Lake and later; a nested hypervisor that
 *    handles the erratum itself, as KVM does, reports it too);
 *  - family 6 Atom and Xeon Phi cores documented as free of it (Bonnell, Saltwell,
 *    Silvermont, Airmont, Goldmont, Goldmont Plus, Knights Landing/Mill): not affected;
 *  - anything else, including an absent or unreadable MSR: affected.
 */
static const u8 no_multihit_models[] = {
	0x1c, 0x26,             /* Bonnell */
	0x27, 0x35, 0x36,       /* Saltwell */
	0x37, 0x4a, 0x4d,       /* Silvermont */
	0x4c, 0x5a, 0x75,       /* Airmont */
	0x5c, 0x5f, 0x7a,       /* Goldmont, Goldmont Plus */
	0x57, 0x85,             /* Knights Landing, Knights Mill */
};

bool vmx_pschange_mc_affected(void)
{
	u32 a, b, c, d, max;
	u64 cap;

	cpuid_count(0, 0, &max, &b, &c, &d);
	if (b != 0x756e6547 || d != 0x49656e69 || c != 0x6c65746e) /* "GenuineIntel" */
		return false;
	if (max >= 7) {
		cpuid_count(7, 0, &a, &b, &c, &d);
		if ((d & (1U << 29)) && rdmsr_safe(MSR_IA32_ARCH_CAPABILITIES, &cap) &&
		    (cap & ARCH_CAP_PSCHANGE_MC_NO))
			return false;
	}
	cpuid_count(1, 0, &a, &b, &c, &d);
	u32 family = (a >> 8) & 0xf, model = ((a >> 4) & 0xf) | (family == 6 || family == 15 ? ((a >> 12) & 0xf0) : 0);
	if (family == 6)
		for (unsigned i = 0; i < sizeof(no_multihit_models); i++)
			if (model == no_multihit_models[i])
				return false;
	return true;
}

/*
 * IA32_SPEC_CTRL exists where CPUID.(EAX=7,ECX=0):EDX enumerates IBRS/IBPB, STIBP or SSBD.
 * Root mode runs with IBRS set where the processor has enhanced IBRS (IA32_ARCH_CAPABILITIES
 * bit 1 IBRS_ALL): set once, it keeps predictions trained in a less privileged predictor mode,
 * VMX non-root operation included, from steering root mode's indirect branches. Without
 * enhanced IBRS the host value is 0 (legacy IBRS would have to be set on every exit, and the
 * hypervisor is not built with retpolines: docs/SECURITY.md, "Side channels").
 */
bool spec_ctrl_host_value(u64 *host)
{
	u32 a, b, c, d;
	u64 cap;

	*host = 0;
	cpuid_count(0, 0, &a, &b, &c, &d);
	if (a < 7)
		return false;
	cpuid_count(7, 0, &a, &b, &c, &d);
	if (!(d & (CPUID7_EDX_IBRS_IBPB | CPUID7_EDX_STIBP | CPUID7_EDX_SSBD)))
		return false;
	if ((d & CPUID7_EDX_ARCH_CAP) && rdmsr_safe(MSR_IA32_ARCH_CAPABILITIES, &cap) && (cap & ARCH_CAP_IBRS_ALL))
		*host = SPEC_CTRL_IBRS;
	return true;
}
