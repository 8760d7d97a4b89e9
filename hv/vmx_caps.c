/*
 * Reading and checking VMX capabilities (Intel SDM Vol. 3D Appendix A). Requirements are
 * listed one per line with the SDM name of the missing feature, so a user on an odd board
 * or emulator sees exactly what is missing.
 */
#include <hw.h>
#include <arch/cpu.h>
#include <arch/msr.h>
#include <arch/vmx.h>
#include "vmx_caps.h"

struct vmx_caps vmx_caps;

const char *vmx_basic_check(void)
{
	u32 a, b, c, d;
	cpuid_count(1, 0, &a, &b, &c, &d);
	if (!(c & CPUID1_ECX_VMX))
		return "CPUID.1:ECX.VMX[bit 5] is 0: this processor (or emulator) has no VMX";
	u64 fc = rdmsr(MSR_IA32_FEATURE_CONTROL);
	if (!(fc & FEATURE_CONTROL_LOCK)) {
		wrmsr(MSR_IA32_FEATURE_CONTROL, fc | FEATURE_CONTROL_LOCK | FEATURE_CONTROL_VMX_OUTSIDE_SMX);
		fc = rdmsr(MSR_IA32_FEATURE_CONTROL);
	}
	if (!(fc & FEATURE_CONTROL_VMX_OUTSIDE_SMX))
		return "VMX is locked off in IA32_FEATURE_CONTROL by the firmware (enable VT-x in the firmware setup)";
	return NULL;
}

void vmx_caps_read(struct vmx_caps *c)
{
	c->basic = rdmsr(MSR_IA32_VMX_BASIC);
	c->revision = VMX_BASIC_REVISION(c->basic);
	c->true_ctls = (c->basic & VMX_BASIC_TRUE_CTLS) != 0;
	c->pin = rdmsr(c->true_ctls ? MSR_IA32_VMX_TRUE_PINBASED_CTLS : MSR_IA32_VMX_PINBASED_CTLS);
	c->proc = rdmsr(c->true_ctls ? MSR_IA32_VMX_TRUE_PROCBASED_CTLS : MSR_IA32_VMX_PROCBASED_CTLS);
	c->exit = rdmsr(c->true_ctls ? MSR_IA32_VMX_TRUE_EXIT_CTLS : MSR_IA32_VMX_EXIT_CTLS);
	c->entry = rdmsr(c->true_ctls ? MSR_IA32_VMX_TRUE_ENTRY_CTLS : MSR_IA32_VMX_ENTRY_CTLS);
	c->misc = rdmsr(MSR_IA32_VMX_MISC);
	c->cr0_fixed0 = rdmsr(MSR_IA32_VMX_CR0_FIXED0);
	c->cr0_fixed1 = rdmsr(MSR_IA32_VMX_CR0_FIXED1);
	c->cr4_fixed0 = rdmsr(MSR_IA32_VMX_CR4_FIXED0);
	c->cr4_fixed1 = rdmsr(MSR_IA32_VMX_CR4_FIXED1);
	c->proc2 = vmx_allows(c->proc, PROC_ACTIVATE_SECONDARY) ? rdmsr(MSR_IA32_VMX_PROCBASED_CTLS2) : 0;
	bool has_ept_or_vpid = vmx_allows(c->proc2, PROC2_ENABLE_EPT) || vmx_allows(c->proc2, PROC2_ENABLE_VPID);
	c->ept_vpid = has_ept_or_vpid ? rdmsr(MSR_IA32_VMX_EPT_VPID_CAP) : 0;
	c->vmfunc = vmx_allows(c->proc2, PROC2_ENABLE_VMFUNC) ? rdmsr(MSR_IA32_VMX_VMFUNC) : 0;

	u32 a, b, cx, d;
	cpuid_count(0x80000000, 0, &a, &b, &cx, &d);
	u32 max_ext = a;
	c->phys_bits = 36;
	c->has_1g_host_pages = false;
	if (max_ext >= 0x80000008) {
		cpuid_count(0x80000008, 0, &a, &b, &cx, &d);
		c->phys_bits = (u8)(a & 0xff);
	}
	if (max_ext >= 0x80000001) {
		cpuid_count(0x80000001, 0, &a, &b, &cx, &d);
		c->has_1g_host_pages = (d & CPUID80000001_EDX_PDPE1GB) != 0;
	}
}

bool vmx_adjust_ctls(u64 allowed, u32 desired, u32 *out)
{
	u32 must1 = (u32)allowed, may1 = (u32)(allowed >> 32);
	*out = (desired | must1) & may1;
	return (desired & ~may1) == 0;
}

struct requirement {
	const u64 *msr; /* which allowed-settings word */
	u32 bit;
	const char *what;
};

int vmx_caps_check(const struct vmx_caps *c, void (*report)(void *ctx, const char *reason), void *ctx)
{
	const struct requirement reqs[] = {
		{ &c->pin, PIN_NMI_EXITING, "pin-based control 'NMI exiting'" },
		{ &c->pin, PIN_VIRTUAL_NMIS, "pin-based control 'virtual NMIs'" },
		{ &c->proc, PROC_USE_MSR_BITMAPS, "processor-based control 'use MSR bitmaps'" },
		{ &c->proc, PROC_ACTIVATE_SECONDARY, "processor-based control 'activate secondary controls'" },
		{ &c->proc, PROC_NMI_WINDOW_EXITING, "processor-based control 'NMI-window exiting'" },
		{ &c->proc2, PROC2_ENABLE_EPT, "secondary control 'enable EPT'" },
		{ &c->proc2, PROC2_UNRESTRICTED_GUEST, "secondary control 'unrestricted guest'" },
		{ &c->exit, EXIT_HOST_ADDR_SPACE_SIZE, "exit control 'host address-space size'" },
		{ &c->exit, EXIT_SAVE_IA32_EFER | EXIT_LOAD_IA32_EFER, "exit controls 'save/load IA32_EFER'" },
		{ &c->exit, EXIT_SAVE_IA32_PAT | EXIT_LOAD_IA32_PAT, "exit controls 'save/load IA32_PAT'" },
		{ &c->entry, ENTRY_IA32E_MODE_GUEST, "entry control 'IA-32e mode guest'" },
		{ &c->entry, ENTRY_LOAD_IA32_EFER | ENTRY_LOAD_IA32_PAT, "entry controls 'load IA32_EFER/IA32_PAT'" },
	};
	int missing = 0;
	for (size_t i = 0; i < ARRAY_SIZE(reqs); i++) {
		if (!vmx_allows(*reqs[i].msr, reqs[i].bit)) {
			report(ctx, reqs[i].what);
			missing++;
		}
	}
	const struct { u64 bit; const char *what; } ept_reqs[] = {
		{ EPT_CAP_PWL4, "EPT page-walk length 4" },
		{ EPT_CAP_MT_WB, "EPT write-back paging-structure memory type" },
		{ EPT_CAP_2M, "EPT 2-MByte pages" },
		{ EPT_CAP_INVEPT, "INVEPT" },
		{ EPT_CAP_INVEPT_ALL, "INVEPT all-context" },
	};
	if (vmx_allows(c->proc2, PROC2_ENABLE_EPT)) {
		for (size_t i = 0; i < ARRAY_SIZE(ept_reqs); i++) {
			if (!(c->ept_vpid & ept_reqs[i].bit)) {
				report(ctx, ept_reqs[i].what);
				missing++;
			}
		}
	}
	/* No wait-for-SIPI activity state needed (older KVM and QEMU's named models lack it):
	 * a vCPU after INIT waits for its SIPI in root mode, hv/vapic.c. */
	if ((c->basic >> 50 & 0xf) != 6) {
		report(ctx, "write-back memory type for the VMCS (IA32_VMX_BASIC bits 53:50)");
		missing++;
	}
	return missing;
}

bool vmx_has_spp(void) { return vmx_allows(vmx_caps.proc2, PROC2_SUBPAGE_WRITE_PERM); }

bool vmx_has_vpid(void)
{
	return vmx_allows(vmx_caps.proc2, PROC2_ENABLE_VPID) && (vmx_caps.ept_vpid & VPID_CAP_INVVPID) &&
	       (vmx_caps.ept_vpid & VPID_CAP_INVVPID_SINGLE);
}

bool vmx_has_ept_1g(void) { return (vmx_caps.ept_vpid & EPT_CAP_1G) != 0; }

bool vmx_has_mtf(void) { return vmx_allows(vmx_caps.proc, PROC_MONITOR_TRAP_FLAG); }

bool vmx_has_desc_exiting(void) { return vmx_allows(vmx_caps.proc2, PROC2_DESC_TABLE_EXITING); }

/*
 * The control bits Tessel ever sets: statically in hv/vmx.c setup_controls(), or on the way
 * (interrupt and NMI windows, MTF and the preemption timer for single steps, external-interrupt
 * exiting while a step runs; hv/exit.c, spp/step.c). A new use of a control belongs here
 * (test_profiles checks the static setup against these masks).
 */
#define USED_PIN (PIN_EXT_INTR_EXITING | PIN_NMI_EXITING | PIN_VIRTUAL_NMIS | PIN_PREEMPTION_TIMER)
#define USED_PROC (PROC_INTR_WINDOW_EXITING | PROC_NMI_WINDOW_EXITING | PROC_USE_IO_BITMAPS | \
		   PROC_MONITOR_TRAP_FLAG | PROC_USE_MSR_BITMAPS | PROC_ACTIVATE_SECONDARY)
#define USED_PROC2 (PROC2_ENABLE_EPT | PROC2_ENABLE_RDTSCP | PROC2_ENABLE_VPID | PROC2_UNRESTRICTED_GUEST | \
		    PROC2_ENABLE_INVPCID | PROC2_ENABLE_XSAVES | PROC2_SUBPAGE_WRITE_PERM | PROC2_ENABLE_USER_WAIT | \
		    PROC2_DESC_TABLE_EXITING)
#define USED_EXIT (EXIT_SAVE_DEBUG_CTLS | EXIT_HOST_ADDR_SPACE_SIZE | EXIT_SAVE_IA32_PAT | EXIT_LOAD_IA32_PAT | \
		   EXIT_SAVE_IA32_EFER | EXIT_LOAD_IA32_EFER | EXIT_CLEAR_IA32_RTIT_CTL)
#define USED_ENTRY (ENTRY_LOAD_DEBUG_CTLS | ENTRY_IA32E_MODE_GUEST | ENTRY_LOAD_IA32_PAT | ENTRY_LOAD_IA32_EFER | \
		    ENTRY_LOAD_IA32_RTIT_CTL)
/* IA32_VMX_MISC: preemption-timer rate (4:0), LMA store (5), activity states (8:6), PT in VMX
 * (14), VMWRITE to exit-information fields (29), injection with instruction length 0 (30). */
#define USED_MISC (0x1fULL | VMX_MISC_UG_STORES_LMA | (7ULL << 6) | (1ULL << 14) | (1ULL << 29) | (1ULL << 30))
/* IA32_VMX_EPT_VPID_CAP: the walk length, memory types, leaf sizes and invalidations used. */
#define USED_EPT_VPID (EPT_CAP_PWL4 | EPT_CAP_MT_UC | EPT_CAP_MT_WB | EPT_CAP_2M | EPT_CAP_1G | EPT_CAP_INVEPT | \
		       EPT_CAP_AD | EPT_CAP_INVEPT_SINGLE | EPT_CAP_INVEPT_ALL | VPID_CAP_INVVPID | \
		       VPID_CAP_INVVPID_SINGLE | VPID_CAP_INVVPID_ALL)

u32 vmx_used_ctls(unsigned word)
{
	static const u32 used[] = { USED_PIN, USED_PROC, USED_PROC2, USED_EXIT, USED_ENTRY };
	return word < ARRAY_SIZE(used) ? used[word] : 0;
}

/* Allowed settings agree where Tessel's setup can tell: every must-be-1 bit (the setup sets
 * them all), and the may-be-1 bits of the controls it uses. */
static bool ctls_differ(u64 a, u64 b, u32 used)
{
	return (u32)a != (u32)b || ((a >> 32) & used) != ((b >> 32) & used);
}

const char *vmx_caps_differ(const struct vmx_caps *a, const struct vmx_caps *b)
{
#define DIFF(cond, what) if (cond) return what
	DIFF(a->basic != b->basic, "IA32_VMX_BASIC (VMCS revision, memory type, TRUE controls)");
	DIFF(a->true_ctls != b->true_ctls, "IA32_VMX_BASIC bit 55 (TRUE control MSRs)");
	DIFF(ctls_differ(a->pin, b->pin, USED_PIN), "pin-based controls (IA32_VMX_[TRUE_]PINBASED_CTLS)");
	DIFF(ctls_differ(a->proc, b->proc, USED_PROC), "processor-based controls (IA32_VMX_[TRUE_]PROCBASED_CTLS)");
	DIFF(ctls_differ(a->proc2, b->proc2, USED_PROC2), "secondary processor-based controls (IA32_VMX_PROCBASED_CTLS2)");
	DIFF(ctls_differ(a->exit, b->exit, USED_EXIT), "VM-exit controls (IA32_VMX_[TRUE_]EXIT_CTLS)");
	DIFF(ctls_differ(a->entry, b->entry, USED_ENTRY), "VM-entry controls (IA32_VMX_[TRUE_]ENTRY_CTLS)");
	DIFF((a->misc ^ b->misc) & USED_MISC, "IA32_VMX_MISC");
	DIFF((a->ept_vpid ^ b->ept_vpid) & USED_EPT_VPID, "EPT and VPID capabilities (IA32_VMX_EPT_VPID_CAP)");
	DIFF(a->cr0_fixed0 != b->cr0_fixed0, "IA32_VMX_CR0_FIXED0");
	DIFF(a->cr0_fixed1 != b->cr0_fixed1, "IA32_VMX_CR0_FIXED1");
	DIFF(a->cr4_fixed0 != b->cr4_fixed0, "IA32_VMX_CR4_FIXED0");
	DIFF(a->cr4_fixed1 != b->cr4_fixed1, "IA32_VMX_CR4_FIXED1");
	DIFF(a->phys_bits != b->phys_bits, "MAXPHYADDR (CPUID 0x80000008)");
	DIFF(a->has_1g_host_pages != b->has_1g_host_pages, "1 GiB pages (CPUID 0x80000001)");
#undef DIFF
	return NULL;
}
