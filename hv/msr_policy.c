/*
 * The guest's MSR policy table: see msr_policy.h and docs/MSR.md (generated from this table).
 *
 * How an MSR earns a place here. Pass through (no exit) only when neither a guest value can
 * make the processor write memory by host-physical address or act on the hypervisor while it
 * runs in root mode, nor does the hypervisor depend on the value; or when VMX switches the MSR
 * on every entry and exit (VMCS guest/host fields: SYSENTER_*, EFER, PAT, FS/GS base;
 * DEBUGCTL is saved on exit and cleared, SDM 27.5.1). Everything the guest needs but may not
 * set freely is virtualized by a handler. The rest is #GP: listed here when it deserves a
 * reason in the documentation, otherwise simply not listed (deny by default).
 *
 * Section numbers are those of the SDM edition the rest of Tessel cites (VMCS = chapter 24,
 * VM entry 26, VM exit 27, APIC 10, MTRR 11.11, debug 17, performance monitoring 18,
 * SMM 34, Intel PT 35); "Vol. 4" is the MSR volume (Table 2-2, architectural MSRs).
 */
#include <hw.h>
#include <arch/cpu.h>
#include <arch/msr.h>
#include <arch/vmcs_fields.h>
#include "mm/mtrr_guest.h"
#include "msr_policy.h"
#include "percpu.h"
#include "pin.h"
#include "vcpu.h"
#include "vmx_caps.h"
#include "vapic.h"
#include "vmcs.h"

/* ---- virtualized handlers (0: done; -EINVAL: the guest gets #GP(0)) ---- */

/* Reads as locked with VMX disabled: the guest has no VMX (CPUID.1:ECX[5] is hidden), and a
 * locked value cannot be written (SDM 23.7). */
static int feature_control_read(struct percpu *c, u32 msr, u64 *val)
{
	(void)c;
	(void)msr;
	*val = FEATURE_CONTROL_LOCK;
	return 0;
}

static int apic_base_write(struct percpu *c, u32 msr, u64 val)
{
	(void)msr;
	return vapic_apic_base_write(c, val);
}

static int virt_mtrr_read(struct percpu *c, u32 msr, u64 *val)
{
	(void)c;
	return mtrr_guest_read(msr, val);
}

static int virt_mtrr_write(struct percpu *c, u32 msr, u64 val)
{
	(void)c;
	return mtrr_guest_write(msr, val);
}

/* x2APIC ICR: INIT and SIPI are delivered by the hypervisor (hv/vapic.c); other IPIs go to
 * the real APIC unchanged. */
static int x2apic_icr_write(struct percpu *c, u32 msr, u64 val)
{
	if (vapic_icr_write(c, (u32)val, (u32)(val >> 32), true))
		return 0;
	return wrmsr_safe(msr, val) ? 0 : -EINVAL;
}

static bool cpuid_bit(u32 leaf, u32 sub, int reg, u32 bit)
{
	u32 r[4];
	cpuid_count(0, 0, &r[0], &r[1], &r[2], &r[3]);
	if (r[0] < leaf)
		return false;
	cpuid_count(leaf, sub, &r[0], &r[1], &r[2], &r[3]);
	return (r[reg] >> bit) & 1;
}

/*
 * IA32_DEBUGCTL (SDM 17.4.1). VMX loads the guest's value on entry and clears the MSR on exit
 * (SDM 27.5.1), so nothing the guest sets acts in root mode. What stays refused:
 * TR/BTS/BTINT/BTS_OFF_* (branch trace store writes the DS area, which the guest cannot set
 * and the hypervisor does not offer), FREEZE_PERFMON_ON_PMI and the LBR freeze bits (no PMU
 * is offered), and every bit the processor does not define: a reserved bit in the guest
 * field would fail the next VM entry (SDM 26.3.1.1). Bus-lock detection only where CPUID
 * enumerates it (CPUID.7.0:ECX[24]).
 */
u64 msr_policy_debugctl_allowed(void)
{
	u64 ok = DEBUGCTL_LBR | DEBUGCTL_BTF;
	if (cpuid_bit(7, 0, 2, 24))
		ok |= DEBUGCTL_BUS_LOCK_DETECT;
	return ok;
}

static int debugctl_write(struct percpu *c, u32 msr, u64 val)
{
	(void)c;
	(void)msr;
	if (val & ~msr_policy_debugctl_allowed())
		return -EINVAL;
	/* Not wrmsr: in root mode the MSR is the hypervisor's (0); the VMCS field is the guest's. */
	vmcs_write64(VMCS_GUEST_IA32_DEBUGCTL, val);
	return 0;
}

/*
 * IA32_XSS (SDM Vol. 1 13.3; Vol. 4 Table 2-2). XRSTORS loads the supervisor state components
 * enabled in XSS into their MSRs: with bit 8 (PT) it would write IA32_RTIT_* and with bit 15
 * the LBR MSRs, around the #GP of the table. Only CET (11, 12), PASID (10) and UINTR (14) state
 * may be enabled, and only what the processor supports (the WRMSR itself checks that).
 * The hypervisor executes no XSAVES/XRSTORS, so the value is inert in root mode.
 */
u64 msr_policy_xss_allowed(void)
{
	return XSS_PASID | XSS_CET_U | XSS_CET_S | XSS_UINTR;
}

static int xss_write(struct percpu *c, u32 msr, u64 val)
{
	(void)c;
	if (val & ~msr_policy_xss_allowed())
		return -EINVAL;
	return wrmsr_safe(msr, val) ? 0 : -EINVAL;
}

/*
 * IA32_MISC_ENABLE (Vol. 4 Table 2-2). The MSR is not switched by VMX, so what the guest
 * writes holds in root mode too. Writable: fast strings, automatic thermal control, EIST,
 * MONITOR/MWAIT, the CPUID limit, xTPR messages, turbo disable, and clearing XD Bit Disable.
 * Setting XD Bit Disable would make the NX bit in the hypervisor's page tables a reserved bit
 * (SDM 4.1.4): the next root-mode page walk through one faults. Every other bit (the
 * read-only status bits: BTS/PEBS unavailable, performance monitoring available, ...) must be
 * written back unchanged.
 */
u64 msr_policy_misc_enable_writable(void)
{
	return MISC_ENABLE_FAST_STRING | MISC_ENABLE_TCC | MISC_ENABLE_EIST | MISC_ENABLE_MONITOR |
	       MISC_ENABLE_LIMIT_CPUID | MISC_ENABLE_XTPR_DISABLE | MISC_ENABLE_TURBO_DISABLE |
	       MISC_ENABLE_XD_DISABLE;
}

static int misc_enable_write(struct percpu *c, u32 msr, u64 val)
{
	(void)c;
	u64 cur;
	if (!rdmsr_safe(msr, &cur))
		return -EINVAL;
	if ((val ^ cur) & ~msr_policy_misc_enable_writable())
		return -EINVAL;
	if ((val & MISC_ENABLE_XD_DISABLE) && !(cur & MISC_ENABLE_XD_DISABLE))
		return -EINVAL;
	return wrmsr_safe(msr, val) ? 0 : -EINVAL;
}

/* ---- MSRs a guest may pin (HC_PIN_MSR, hv/pin.c) ----
 * Their writes always exit, pinned or not: a pin then needs no change of the MSR bitmap while
 * other processors run the guest with it (SDM 24.11.4). They are written seldom (boot, CPU
 * bring-up, resume), so the exit costs nothing measurable. A write the processor itself
 * would refuse raises #GP as without the pin; a valid write that a pin refuses is ignored
 * (hv/pin.c reports it). */

static bool cpuid_ext_bit(u32 leaf, int reg, u32 bit)
{
	u32 r[4];
	cpuid_count(0x80000000U, 0, &r[0], &r[1], &r[2], &r[3]);
	if (r[0] < leaf)
		return false;
	cpuid_count(leaf, 0, &r[0], &r[1], &r[2], &r[3]);
	return (r[reg] >> bit) & 1;
}

/* IA32_EFER bits a WRMSR may set on this processor (SDM Vol. 4 Table 2-2; CPUID.80000001H:
 * EDX[11] SYSCALL, [20] XD, [29] Intel 64). Any other bit: #GP(0). */
u64 msr_policy_efer_allowed(void)
{
	u64 ok = 0;
	if (cpuid_ext_bit(0x80000001U, 3, 11))
		ok |= EFER_SCE;
	if (cpuid_ext_bit(0x80000001U, 3, 20))
		ok |= EFER_NXE;
	if (cpuid_ext_bit(0x80000001U, 3, 29))
		ok |= EFER_LME | EFER_LMA;
	return ok;
}

/* IA32_EFER lives in the VMCS guest field (loaded on entry, saved on exit, SDM 24.4.1), so
 * a write is emulated into it: reserved bits #GP; LMA is the processor's and a write leaves
 * it as it is; LME cannot change while paging is on (#GP, SDM Vol. 3A 9.8.5); the VM-entry
 * checks on LMA/LME (SDM 26.3.1.1) therefore keep holding. A pinned NXE stays set. */
static int efer_write(struct percpu *c, u32 msr, u64 val)
{
	u64 old = vmcs_read64(VMCS_GUEST_IA32_EFER);
	if (val & ~msr_policy_efer_allowed())
		return -EINVAL;
	if (((val ^ old) & EFER_LME) && (vcpu_guest_cr0(c) & CR0_PG))
		return -EINVAL;
	pin_msr_filter(c, msr, old, &val); /* reports the value as the guest wrote it */
	val = (val & ~EFER_LMA) | (old & EFER_LMA);
	vmcs_write64(VMCS_GUEST_IA32_EFER, val);
	return 0;
}

/* IA32_SYSENTER_CS/EIP: VMCS guest fields (SDM 24.4.1), loaded on every entry. WRMSR #GPs on
 * a non-canonical SYSENTER_EIP (SDM Vol. 2B WRMSR), which VM entry also requires
 * (26.3.1.1); canonical for the processor's linear-address width. */
static int sysenter_write(struct percpu *c, u32 msr, u64 val)
{
	if (msr == MSR_IA32_SYSENTER_CS) {
		if (!pin_msr_filter(c, msr, vmcs_read32(VMCS_GUEST_IA32_SYSENTER_CS), &val))
			return 0;
		vmcs_write32(VMCS_GUEST_IA32_SYSENTER_CS, (u32)val);
		return 0;
	}
	unsigned bits = (vmx_caps.cr4_fixed1 & CR4_LA57) ? 57 : 48;
	if ((u64)((s64)(val << (64 - bits)) >> (64 - bits)) != val)
		return -EINVAL;
	if (!pin_msr_filter(c, msr, vmcs_readl(VMCS_GUEST_IA32_SYSENTER_EIP), &val))
		return 0;
	vmcs_writel(VMCS_GUEST_IA32_SYSENTER_EIP, val);
	return 0;
}

/* IA32_STAR, LSTAR, CSTAR, FMASK: not switched by VMX and unused by the hypervisor, so the
 * processor's MSR is the guest's. The processor checks the value (non-canonical LSTAR/CSTAR:
 * #GP); a pinned one is then put back. */
static int syscall_write(struct percpu *c, u32 msr, u64 val)
{
	u64 old;
	if (!rdmsr_safe(msr, &old) || !wrmsr_safe(msr, val))
		return -EINVAL;
	if (!pin_msr_filter(c, msr, old, &val))
		wrmsr(msr, old);
	return 0;
}

/* ---- the table ---- */

#define E(f, l, r, w, rf, wf, n, s, y) \
	{ .first = (f), .last = (l), .rd = (r), .wr = (w), .read = (rf), .write = (wf), .name = (n), .sdm = (s), .why = (y) }
/* both directions pass through */
#define PASS(f, l, n, s, y) E(f, l, MSR_PASS, MSR_PASS, NULL, NULL, n, s, y)
/* read passes through, write #GP */
#define RO(f, l, n, s, y) E(f, l, MSR_PASS, MSR_GP, NULL, NULL, n, s, y)
/* both #GP (listed to document the reason) */
#define DENY(f, l, n, s, y) E(f, l, MSR_GP, MSR_GP, NULL, NULL, n, s, y)
#define MTRR(f, l, n) \
	E(f, l, MSR_VIRT, MSR_VIRT, virt_mtrr_read, virt_mtrr_write, n, "SDM 11.11", \
	  "guest view (mm/mtrr_guest.c): writes change EPT memory types, never the host's MTRRs")

#define PMU_WHY "no PMU is offered (CPUID.0AH hidden); counters with PEBS could write the DS area in root mode"
#define PT_WHY "Intel PT is hidden (CPUID.7.0:EBX[25], leaf 14H): without PT-uses-GPA its output goes to host-physical addresses"
#define LBR_WHY "LBRs belong to the hidden PMU (no perf LBR); arch LBR is hidden (CPUID.7.0:EDX[19])"

const struct msr_policy_entry msr_policy[] = {
	PASS(MSR_IA32_TIME_STAMP_COUNTER, MSR_IA32_TIME_STAMP_COUNTER, "IA32_TIME_STAMP_COUNTER", "SDM 17.17",
	     "the guest's clock; the hypervisor does not use the TSC; no memory access"),
	RO(MSR_IA32_PLATFORM_ID, MSR_IA32_PLATFORM_ID, "IA32_PLATFORM_ID", "SDM 9.11.5",
	   "read-only identification (Linux's microcode driver reads it)"),
	E(MSR_IA32_APIC_BASE, MSR_IA32_APIC_BASE, MSR_PASS, MSR_VIRT, NULL, apic_base_write, "IA32_APIC_BASE",
	  "SDM 10.4.4", "writes go to hv/vapic.c: the hypervisor's NMI/IPI paths need the APIC enabled at a known base"),
	RO(MSR_SMI_COUNT, MSR_SMI_COUNT, "MSR_SMI_COUNT", "Vol. 4 Table 2-20",
	   "read-only counter Linux reads (turbostat, SMI accounting)"),
	E(MSR_IA32_FEATURE_CONTROL, MSR_IA32_FEATURE_CONTROL, MSR_VIRT, MSR_GP, feature_control_read, NULL,
	  "IA32_FEATURE_CONTROL", "SDM 23.7", "reads as locked with VMX off: the guest has no VMX; locked, so writes #GP"),
	PASS(MSR_IA32_TSC_ADJUST, MSR_IA32_TSC_ADJUST, "IA32_TSC_ADJUST", "SDM 17.17.3",
	     "the guest's clock (Linux checks and repairs it at boot); the hypervisor does not use the TSC"),
	PASS(MSR_IA32_SPEC_CTRL, MSR_IA32_SPEC_CTRL, "IA32_SPEC_CTRL", "Vol. 4 Table 2-2",
	     "speculation controls the guest kernel needs fast; VMX switches it at every exit and entry (hv/vmx.c setup_spec_ctrl), so root mode runs with the host value, IBRS with enhanced IBRS"),
	PASS(MSR_IA32_PRED_CMD, MSR_IA32_PRED_CMD, "IA32_PRED_CMD", "Vol. 4 Table 2-2",
	     "IBPB command (write-only); a barrier, harmless to the hypervisor"),
	E(MSR_IA32_BIOS_UPDT_TRIG, MSR_IA32_BIOS_UPDT_TRIG, MSR_GP, MSR_IGNORE, NULL, NULL, "IA32_BIOS_UPDT_TRIG",
	  "SDM 9.11.6", "no microcode updates in VMX non-root operation: write ignored (logged), as KVM does; write-only"),
	PASS(MSR_IA32_BIOS_SIGN_ID, MSR_IA32_BIOS_SIGN_ID, "IA32_BIOS_SIGN_ID", "SDM 9.11.7.1",
	     "microcode revision (write 0, CPUID(1), read); no side effects"),
	DENY(MSR_IA32_SMM_MONITOR_CTL, MSR_IA32_SMM_MONITOR_CTL, "IA32_SMM_MONITOR_CTL", "SDM 34.15.5",
	     "the SMM transfer monitor is the platform's, not the guest's"),
	DENY(MSR_IA32_SMBASE, MSR_IA32_SMBASE, "IA32_SMBASE", "SDM 34.11", "exists only in SMM; the SMRAM base is the platform's"),
	DENY(MSR_IA32_PMC0, MSR_IA32_PMC0 + 7, "IA32_PMC0..7", "SDM 18.2", PMU_WHY),
	RO(MSR_PLATFORM_INFO, MSR_PLATFORM_INFO, "MSR_PLATFORM_INFO", "Vol. 4 Table 2-12",
	   "read-only ratios and CPUID-faulting support that Linux reads"),
	PASS(MSR_IA32_UMWAIT_CONTROL, MSR_IA32_UMWAIT_CONTROL, "IA32_UMWAIT_CONTROL", "Vol. 4 Table 2-2",
	     "UMWAIT/TPAUSE limits (enabled by the VM-execution control); no memory access"),
	RO(MSR_PKG_CST_CONFIG_CONTROL, MSR_PKG_CST_CONFIG_CONTROL, "MSR_PKG_CST_CONFIG_CONTROL", "Vol. 4 Table 2-20",
	   "intel_idle reads the C-state limits; writes (and their lock bit) stay the platform's"),
	RO(MSR_IA32_MPERF, MSR_IA32_APERF, "IA32_MPERF, IA32_APERF", "SDM 14.2",
	   "frequency feedback Linux reads often (kept fast); writing would only skew the guest's own view, refused"),
	MTRR(MSR_IA32_MTRRCAP, MSR_IA32_MTRRCAP, "IA32_MTRRCAP"),
	RO(MSR_IA32_ARCH_CAPABILITIES, MSR_IA32_ARCH_CAPABILITIES, "IA32_ARCH_CAPABILITIES", "Vol. 4 Table 2-2",
	   "read-only vulnerability enumeration the guest kernel needs for its mitigations"),
	PASS(MSR_IA32_FLUSH_CMD, MSR_IA32_FLUSH_CMD, "IA32_FLUSH_CMD", "Vol. 4 Table 2-2",
	     "L1D flush command (write-only); harmless"),
	PASS(MSR_IA32_TSX_CTRL, MSR_IA32_MCU_OPT_CTRL, "IA32_TSX_CTRL, IA32_MCU_OPT_CTRL", "Vol. 4 Table 2-2",
	     "mitigation controls (TSX disable, SRBDS); only restrict the processor"),
	PASS(MSR_MISC_FEATURES_ENABLES, MSR_MISC_FEATURES_ENABLES, "MSR_MISC_FEATURES_ENABLES", "Vol. 4 Table 2-12",
	     "CPUID faulting for the guest's user space; CPUID exits unconditionally in VMX non-root mode"),
	E(MSR_IA32_SYSENTER_CS, MSR_IA32_SYSENTER_CS, MSR_PASS, MSR_VIRT, NULL, sysenter_write, "IA32_SYSENTER_CS",
	  "SDM 24.4.1, 24.5", "switched by VMX (VMCS fields); writes exit so HC_PIN_MSR can pin it (docs/ABI.md)"),
	PASS(MSR_IA32_SYSENTER_ESP, MSR_IA32_SYSENTER_ESP, "IA32_SYSENTER_ESP", "SDM 24.4.1, 24.5",
	     "switched by VMX on every entry and exit (guest and host VMCS fields)"),
	E(MSR_IA32_SYSENTER_EIP, MSR_IA32_SYSENTER_EIP, MSR_PASS, MSR_VIRT, NULL, sysenter_write, "IA32_SYSENTER_EIP",
	  "SDM 24.4.1, 24.5", "switched by VMX (VMCS fields); writes exit so HC_PIN_MSR can pin it; non-canonical #GP"),
	RO(MSR_IA32_MCG_CAP, MSR_IA32_MCG_CAP, "IA32_MCG_CAP", "SDM 15.3.1.1",
	   "the guest is the machine's OS and handles its machine checks (read-only)"),
	PASS(MSR_IA32_MCG_STATUS, MSR_IA32_MCG_CTL, "IA32_MCG_STATUS, IA32_MCG_CTL", "SDM 15.3.1",
	     "the guest handles machine checks (#MC is delivered to it); no memory access"),
	DENY(MSR_IA32_PERFEVTSEL0, MSR_IA32_PERFEVTSEL0 + 7, "IA32_PERFEVTSEL0..7", "SDM 18.2", PMU_WHY),
	RO(MSR_IA32_PERF_STATUS, MSR_IA32_PERF_STATUS, "IA32_PERF_STATUS", "SDM 14.1", "read-only P-state status"),
	PASS(MSR_IA32_PERF_CTL, MSR_IA32_THERM_STATUS, "IA32_PERF_CTL, IA32_CLOCK_MODULATION, IA32_THERM_INTERRUPT/STATUS",
	     "SDM 14.1, 14.7", "power and thermal management the guest kernel does as the machine's OS; no memory access"),
	E(MSR_IA32_MISC_ENABLE, MSR_IA32_MISC_ENABLE, MSR_PASS, MSR_VIRT, NULL, misc_enable_write, "IA32_MISC_ENABLE",
	  "Vol. 4 Table 2-2; SDM 4.1.4",
	  "not switched by VMX: only the feature bits Linux toggles may change; setting XD Bit Disable would fault the hypervisor's NX page tables"),
	RO(MSR_TEMPERATURE_TARGET, MSR_TEMPERATURE_TARGET, "MSR_TEMPERATURE_TARGET", "Vol. 4 Table 2-12",
	   "read-only (coretemp)"),
	RO(MSR_TURBO_RATIO_LIMIT, MSR_TURBO_RATIO_LIMIT, "MSR_TURBO_RATIO_LIMIT", "Vol. 4 Table 2-20",
	   "read-only turbo ratios Linux reads for frequency invariance"),
	PASS(MSR_IA32_ENERGY_PERF_BIAS, MSR_IA32_PACKAGE_THERM_INTERRUPT,
	     "IA32_ENERGY_PERF_BIAS, IA32_PACKAGE_THERM_STATUS/INTERRUPT", "SDM 14.3.4, 14.8",
	     "power and thermal management; no memory access"),
	DENY(MSR_LBR_SELECT, MSR_LBR_TOS, "MSR_LBR_SELECT, MSR_LBR_TOS", "SDM 17.4.8", LBR_WHY),
	E(MSR_IA32_DEBUGCTL, MSR_IA32_DEBUGCTL, MSR_PASS, MSR_VIRT, NULL, debugctl_write, "IA32_DEBUGCTL",
	  "SDM 17.4.1, 26.3.1.1, 27.5.1",
	  "written to the VMCS guest field (cleared on VM exit); BTS/BTINT/TR, freeze and reserved bits #GP"),
	DENY(MSR_LER_FROM_IP, MSR_LER_TO_IP, "MSR_LER_FROM_IP, MSR_LER_TO_IP", "SDM 17.4.8", LBR_WHY),
	DENY(MSR_IA32_SMRR_PHYSBASE, MSR_IA32_SMRR_PHYSMASK, "IA32_SMRR_PHYSBASE/MASK", "SDM 11.11.2.4",
	     "SMM range registers: the platform's"),
	MTRR(MSR_IA32_MTRR_PHYSBASE0, MSR_IA32_MTRR_PHYSBASE0 + 2 * 32 - 1, "IA32_MTRR_PHYSBASE0..PHYSMASK31"),
	MTRR(MSR_IA32_MTRR_FIX64K_00000, MSR_IA32_MTRR_FIX64K_00000, "IA32_MTRR_FIX64K_00000"),
	MTRR(MSR_IA32_MTRR_FIX16K_80000, MSR_IA32_MTRR_FIX16K_A0000, "IA32_MTRR_FIX16K_80000, _A0000"),
	MTRR(MSR_IA32_MTRR_FIX4K_C0000, MSR_IA32_MTRR_FIX4K_C0000 + 7, "IA32_MTRR_FIX4K_C0000.._F8000"),
	PASS(MSR_IA32_PAT, MSR_IA32_PAT, "IA32_PAT", "SDM 24.4.1, 24.5",
	     "switched by VMX on every entry and exit; the guest's memory types combine with EPT's"),
	PASS(MSR_IA32_MC0_CTL2, MSR_IA32_MC0_CTL2 + 31, "IA32_MC0_CTL2..MC31_CTL2", "SDM 15.3.2.5",
	     "corrected-error interrupt control; the guest handles machine checks"),
	MTRR(MSR_IA32_MTRR_DEF_TYPE, MSR_IA32_MTRR_DEF_TYPE, "IA32_MTRR_DEF_TYPE"),
	DENY(MSR_IA32_FIXED_CTR0, MSR_IA32_FIXED_CTR0 + 2, "IA32_FIXED_CTR0..2", "SDM 18.2.2", PMU_WHY),
	DENY(MSR_IA32_PERF_CAPABILITIES, MSR_IA32_PERF_CAPABILITIES, "IA32_PERF_CAPABILITIES", "SDM 18.4.1",
	     "hidden with the PMU (CPUID.1:ECX[15] PDCM cleared)"),
	DENY(MSR_IA32_FIXED_CTR_CTRL, MSR_IA32_PERF_GLOBAL_OVF_CTRL,
	     "IA32_FIXED_CTR_CTRL, IA32_PERF_GLOBAL_STATUS/CTRL/OVF_CTRL", "SDM 18.2.2", PMU_WHY),
	DENY(MSR_IA32_PEBS_ENABLE, MSR_IA32_PEBS_ENABLE, "IA32_PEBS_ENABLE", "SDM 18.4.4.1",
	     "PEBS records are written to the DS area, also after a VM exit (root mode): never enabled by a guest"),
	DENY(MSR_IA32_PEBS_LD_LAT, MSR_IA32_PEBS_FRONTEND, "MSR_PEBS_LD_LAT, MSR_PEBS_FRONTEND", "SDM 18.3.4.4", PMU_WHY),
	PASS(MSR_IA32_MC0_CTL, MSR_IA32_MC0_CTL + 4 * 32 - 1, "IA32_MC0_CTL..MC31_MISC", "SDM 15.3.2",
	     "machine-check banks: the guest is the machine's OS and must clear and read them"),
	DENY(MSR_IA32_VMX_FIRST, MSR_IA32_VMX_LAST, "IA32_VMX_BASIC..IA32_VMX_PROCBASED_CTLS3", "SDM A.1",
	     "the guest has no VMX (CPUID.1:ECX[5] hidden)"),
	DENY(MSR_IA32_A_PMC0, MSR_IA32_A_PMC0 + 7, "IA32_A_PMC0..7", "SDM 18.2.5", PMU_WHY),
	PASS(MSR_IA32_MCG_EXT_CTL, MSR_IA32_MCG_EXT_CTL, "IA32_MCG_EXT_CTL", "SDM 15.3.1.5",
	     "local machine-check enable; the guest handles machine checks"),
	DENY(MSR_IA32_RTIT_OUTPUT_BASE, MSR_IA32_RTIT_OUTPUT_MASK_PTRS, "IA32_RTIT_OUTPUT_BASE, _MASK_PTRS",
	     "SDM 35.2.7, 35.5", PT_WHY),
	DENY(MSR_IA32_RTIT_CTL, MSR_IA32_RTIT_CTL, "IA32_RTIT_CTL", "SDM 35.2.7, 35.5", PT_WHY),
	DENY(MSR_IA32_RTIT_STATUS, MSR_IA32_RTIT_CR3_MATCH, "IA32_RTIT_STATUS, _CR3_MATCH", "SDM 35.2.7", PT_WHY),
	DENY(MSR_IA32_RTIT_ADDR0_A, MSR_IA32_RTIT_ADDR0_A + 7, "IA32_RTIT_ADDR0_A..ADDR3_B", "SDM 35.2.7", PT_WHY),
	DENY(MSR_IA32_DS_AREA, MSR_IA32_DS_AREA, "IA32_DS_AREA", "SDM 17.4.9, 18.4.4",
	     "the BTS/PEBS buffer's linear address, used also by PEBS assists in root mode: never the guest's"),
	RO(MSR_PPERF, MSR_PPERF, "MSR_PPERF", "Vol. 4 Table 2-39",
	   "read-only productive-performance counter (intel_pstate)"),
	DENY(MSR_LBR_NHM_FROM, MSR_LBR_NHM_FROM + 31, "MSR_LASTBRANCH_0..31_FROM_IP", "SDM 17.4.8", LBR_WHY),
	PASS(MSR_IA32_U_CET, MSR_IA32_U_CET, "IA32_U_CET", "SDM Vol. 1 18.2",
	     "user-mode CET; acts only with CR4.CET, which the host CR4 (VMCS) does not set"),
	PASS(MSR_IA32_S_CET, MSR_IA32_S_CET, "IA32_S_CET", "SDM Vol. 1 18.2",
	     "supervisor CET; acts only with CR4.CET, which the host CR4 (VMCS) does not set"),
	PASS(MSR_IA32_PL0_SSP, MSR_IA32_INTERRUPT_SSP_TABLE_ADDR, "IA32_PL0..3_SSP, IA32_INTERRUPT_SSP_TABLE_ADDR",
	     "SDM Vol. 1 18.2", "shadow-stack pointers; inert without CR4.CET (root mode has it clear)"),
	DENY(MSR_LBR_NHM_TO, MSR_LBR_NHM_TO + 31, "MSR_LASTBRANCH_0..31_TO_IP", "SDM 17.4.8", LBR_WHY),
	PASS(MSR_IA32_TSC_DEADLINE, MSR_IA32_TSC_DEADLINE, "IA32_TSC_DEADLINE", "SDM 10.5.4.1",
	     "the guest's APIC timer; must stay fast"),
	PASS(MSR_IA32_PKRS, MSR_IA32_PKRS, "IA32_PKRS", "SDM 4.6.2",
	     "supervisor protection keys; act only with CR4.PKS, clear in the host CR4"),
	PASS(MSR_IA32_PM_ENABLE, MSR_IA32_PM_ENABLE + 7, "IA32_PM_ENABLE, IA32_HWP_*", "SDM 14.4",
	     "hardware P-states: power management by the machine's OS; no memory access"),
	PASS(MSR_IA32_X2APIC_BASE, MSR_X2APIC_ICR - 1, "x2APIC registers 800H-82FH", "SDM 10.12.1.2",
	     "the guest's own local APIC (EOI, TPR, ...): must stay fast"),
	E(MSR_X2APIC_ICR, MSR_X2APIC_ICR, MSR_PASS, MSR_VIRT, NULL, x2apic_icr_write, "x2APIC ICR (830H)",
	  "SDM 10.12.9", "INIT and SIPI are delivered by the hypervisor (hv/vapic.c); other IPIs are written unchanged"),
	PASS(MSR_X2APIC_ICR + 1, MSR_IA32_X2APIC_LAST, "x2APIC registers 831H-8FFH", "SDM 10.12.1.2",
	     "the guest's own local APIC (LVT, timer, self-IPI): must stay fast"),
	E(MSR_IA32_XSS, MSR_IA32_XSS, MSR_PASS, MSR_VIRT, NULL, xss_write, "IA32_XSS", "SDM Vol. 1 13.3",
	  "XRSTORS would load PT/LBR/HWP state into their MSRs: only CET, PASID and UINTR state may be enabled"),
	DENY(MSR_IA32_LBR_INFO_0, MSR_IA32_LBR_INFO_0 + 31, "MSR_LBR_INFO_0..31", "SDM 17.4.8", LBR_WHY),
	DENY(MSR_IA32_LBR_CTL, MSR_IA32_LBR_DEPTH, "IA32_LBR_CTL, IA32_LBR_DEPTH", "SDM 17.1 (arch LBR)", LBR_WHY),
	DENY(MSR_IA32_LBR_FROM_IP_0, MSR_IA32_LBR_FROM_IP_0 + 31, "IA32_LBR_0..31_FROM_IP", "SDM 17.1 (arch LBR)",
	     LBR_WHY),
	DENY(MSR_IA32_LBR_TO_IP_0, MSR_IA32_LBR_TO_IP_0 + 31, "IA32_LBR_0..31_TO_IP", "SDM 17.1 (arch LBR)", LBR_WHY),
	E(MSR_IA32_EFER, MSR_IA32_EFER, MSR_PASS, MSR_VIRT, NULL, efer_write, "IA32_EFER", "SDM 24.4.1, 24.5, 9.8.5",
	  "switched by VMX; writes exit (emulated into the VMCS field) so HC_PIN_MSR can pin NXE"),
	E(MSR_IA32_STAR, MSR_IA32_FMASK, MSR_PASS, MSR_VIRT, NULL, syscall_write,
	  "IA32_STAR, IA32_LSTAR, IA32_CSTAR, IA32_FMASK", "SDM 5.8.8",
	  "SYSCALL targets; the hypervisor executes no SYSCALL/SYSRET; writes exit so HC_PIN_MSR can pin them"),
	PASS(MSR_IA32_FS_BASE, MSR_IA32_GS_BASE, "IA32_FS_BASE, IA32_GS_BASE", "SDM 24.4.1, 24.5",
	     "switched by VMX (segment base fields); must stay fast"),
	PASS(MSR_IA32_KERNEL_GS_BASE, MSR_IA32_KERNEL_GS_BASE, "IA32_KERNEL_GS_BASE", "SDM 5.8.8",
	     "used only by SWAPGS, which the hypervisor never executes; must stay fast"),
	PASS(MSR_IA32_TSC_AUX, MSR_IA32_TSC_AUX, "IA32_TSC_AUX", "SDM 17.17.2",
	     "RDTSCP/RDPID signature (Linux's CPU number); the hypervisor does not read it"),
};
const size_t msr_policy_count = ARRAY_SIZE(msr_policy);
_Static_assert(ARRAY_SIZE(msr_policy) <= MSR_POLICY_MAX_ROWS, "raise MSR_POLICY_MAX_ROWS");

const struct msr_policy_entry *msr_policy_find(u32 msr)
{
	size_t lo = 0, hi = ARRAY_SIZE(msr_policy);
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct msr_policy_entry *e = &msr_policy[mid];
		if (msr < e->first)
			hi = mid;
		else if (msr > e->last)
			lo = mid + 1;
		else
			return e;
	}
	return NULL;
}

/* SDM 24.6.9: read bitmap for 0-1FFFH at offset 0, for C0000000H-C0001FFFH at 1024; the write
 * bitmaps at 2048 and 3072. MSRs outside both ranges always exit. */
static void bitmap_clear(u8 *bitmap, u32 msr, bool write)
{
	u32 off;
	if (msr <= 0x1fffU)
		off = msr;
	else if (msr >= 0xc0000000U && msr <= 0xc0001fffU)
		off = 0x2000U + (msr - 0xc0000000U);
	else
		return;
	bitmap[(write ? 2048 : 0) + off / 8] &= (u8) ~(1U << (off % 8));
}

void msr_policy_bitmap(u8 *bitmap)
{
	for (size_t i = 0; i < PAGE_SIZE; i++)
		bitmap[i] = 0xff;
	for (size_t i = 0; i < ARRAY_SIZE(msr_policy); i++) {
		const struct msr_policy_entry *e = &msr_policy[i];
		for (u32 m = e->first;; m++) {
			if (e->rd == MSR_PASS)
				bitmap_clear(bitmap, m, false);
			if (e->wr == MSR_PASS)
				bitmap_clear(bitmap, m, true);
			if (m == e->last)
				break;
		}
	}
}

const char *msr_act_name(unsigned act, bool write)
{
	switch (act) {
	case MSR_PASS:
		return "pass through";
	case MSR_VIRT:
		return write ? "virtualized (handler)" : "virtualized";
	case MSR_GP:
		return "#GP";
	case MSR_IGNORE:
		return "ignored";
	default:
		return "?";
	}
}
