/*
 * Shared by test_entry_check.c and test_profiles.c: loads a VMX capability profile
 * (tests/data/vmx_profiles) into the fake hardware layer, puts the fake processor in the
 * state the loader leaves it in (UEFI long mode, flat 64-bit GDT, interrupts off), and runs
 * the real VMCS setup, hv/vmx.c vmx_cpu_start(), up to VMLAUNCH. vmx_launch() is this
 * file's stub: it records the VMCS as VMLAUNCH would see it, runs the entry checker on it
 * and returns ("VMLAUNCH failed"), so vmx_cpu_start() unwinds as on a real failure; the
 * fake VMCS keeps its contents for the test to check and change.
 */
#ifndef TESTS_PROFILE_SETUP_H
#define TESTS_PROFILE_SETUP_H

#include <hw.h>
#include <arch/cpu.h>
#include <arch/msr.h>
#include <arch/vmx.h>
#include <tessel/bootinfo.h>
#include <tessel/config.h>
#include "hv/entry_check.h"
#include "hv/percpu.h"
#include "hv/traps.h"
#include "hv/vcpu.h"
#include "hv/vmcs.h"
#include "hv/vmx.h"
#include "hv/vmx_caps.h"
#include "mm/ept.h"
#include "mm/pmm.h"
#include "tests/data/vmx_profiles/vmx_profiles.h"

#define PS_PHYS_BASE FAKE_PHYS_BASE
#define PS_PHYS_SIZE (64 * PAGE_SIZE)

/* What the UEFI firmware leaves (OVMF-like): long mode with paging, CR4 PAE/MCE/PGE/
 * OSFXSR/OSXMMEXCPT, EFER LME/LMA/NXE, a GDT with a flat data (0x30) and 64-bit code
 * (0x38) descriptor, no TSS and no LDT. */
#define PS_GUEST_CR0 (CR0_PG | CR0_AM | CR0_WP | CR0_NE | CR0_ET | CR0_MP | CR0_PE)
#define PS_GUEST_CR4 (CR4_PAE | CR4_MCE | CR4_PGE | CR4_OSFXSR | CR4_OSXMMEXCPT | CR4_DE)
#define PS_GUEST_EFER (EFER_LME | EFER_LMA | EFER_NXE)
#define PS_GUEST_PAT 0x0007040600070406ULL

static u64 ps_gdt[8] __aligned(16);
static u64 ps_idt[32] __aligned(16);
static struct percpu ps_cpu;
static struct guest_regs ps_regs;
static struct tessel_launch ps_launch;
static const struct vmx_profile *ps_profile;
/* Fill every VMCS field with this before the setup: VMCLEAR does not zero a VMCS (its
 * data format is the processor's, SDM 24.2), so the setup must write every field the
 * processor reads. 0 leaves the fake's zeroed VMCS. */
static u64 ps_vmcs_fill;
/* Non-NULL: the setup runs as an AP (index 1) whose capability MSRs are the profile's while
 * the BSP's capabilities (read at core init, deciding the VMCS setup for every CPU) are
 * these: what vmx_cpu_start() sees on the other core type of a hybrid part. */
static const struct vmx_caps *ps_bsp_caps;

/* Filled by the vmx_launch() stub. */
static unsigned ps_launches;
static struct entry_check_result ps_launch_result;

int vmx_launch(struct launch_jmp *j)
{
	(void)j;
	ps_launches++;
	entry_check(&vmx_caps, &ps_launch_result);
	return 0; /* as a failed VMLAUNCH: vmx_cpu_start() then leaves VMX and returns */
}

/* Symbols hv/traps.c (HOST_IDTR_BASE = host_idt) takes from the linker script and
 * hv/trap_stubs.asm: empty on the host. */
const u64 trap_stubs[256];
const struct extable_entry __ex_table_start[1], __ex_table_end[1];

/* HOST_RIP: never executed on the host. */
void vmx_exit_entry(void);
void vmx_exit_entry(void) {}

/* IA32_SPEC_CTRL for the following setups: not enumerated while ps_cpuid7_edx is 0, else
 * CPUID.(7,0):EDX, the OS's IA32_SPEC_CTRL and (with CPUID7_EDX_ARCH_CAP) ARCH_CAPABILITIES. */
static u32 ps_cpuid7_edx;
static u64 ps_spec_ctrl, ps_arch_cap;

static void ps_load_profile(const struct vmx_profile *p)
{
	ps_profile = p;
	fake_msr_set(MSR_IA32_FEATURE_CONTROL, 0x5); /* locked, VMX outside SMX */
	fake_msr_set(MSR_IA32_VMX_BASIC, p->basic);
	fake_msr_set(MSR_IA32_VMX_PINBASED_CTLS, p->pin);
	fake_msr_set(MSR_IA32_VMX_PROCBASED_CTLS, p->proc);
	fake_msr_set(MSR_IA32_VMX_EXIT_CTLS, p->exit);
	fake_msr_set(MSR_IA32_VMX_ENTRY_CTLS, p->entry);
	fake_msr_set(MSR_IA32_VMX_MISC, p->misc);
	fake_msr_set(MSR_IA32_VMX_CR0_FIXED0, p->cr0f0);
	fake_msr_set(MSR_IA32_VMX_CR0_FIXED1, p->cr0f1);
	fake_msr_set(MSR_IA32_VMX_CR4_FIXED0, p->cr4f0);
	fake_msr_set(MSR_IA32_VMX_CR4_FIXED1, p->cr4f1);
	fake_msr_set(MSR_IA32_VMX_VMCS_ENUM, p->vmcs_enum);
	if (p->basic & VMX_BASIC_TRUE_CTLS) {
		fake_msr_set(MSR_IA32_VMX_TRUE_PINBASED_CTLS, p->true_pin);
		fake_msr_set(MSR_IA32_VMX_TRUE_PROCBASED_CTLS, p->true_proc);
		fake_msr_set(MSR_IA32_VMX_TRUE_EXIT_CTLS, p->true_exit);
		fake_msr_set(MSR_IA32_VMX_TRUE_ENTRY_CTLS, p->true_entry);
	}
	if (p->proc2) {
		fake_msr_set(MSR_IA32_VMX_PROCBASED_CTLS2, p->proc2);
		fake_msr_set(MSR_IA32_VMX_EPT_VPID_CAP, p->ept_vpid);
		fake_msr_set(MSR_IA32_VMX_VMFUNC, p->vmfunc);
	}
	fake_cpuid_set(1, FAKE_CPUID_ANY_SUB, 0x000706e5, 0, (1U << 5) /* VMX */, 0);
	if (ps_cpuid7_edx) {
		fake_cpuid_set(0, FAKE_CPUID_ANY_SUB, 7, 0x756e6547, 0x6c65746e, 0x49656e69);
		fake_cpuid_set(7, 0, 0, 0, 0, ps_cpuid7_edx);
		fake_msr_set(MSR_IA32_SPEC_CTRL, ps_spec_ctrl);
		if (ps_cpuid7_edx & CPUID7_EDX_ARCH_CAP)
			fake_msr_set(MSR_IA32_ARCH_CAPABILITIES, ps_arch_cap);
	}
	fake_cpuid_set(0x80000000, FAKE_CPUID_ANY_SUB, 0x80000008, 0, 0, 0);
	fake_cpuid_set(0x80000001, FAKE_CPUID_ANY_SUB, 0, 0, 0, p->pdpe1gb ? (1U << 26) : 0);
	fake_cpuid_set(0x80000008, FAKE_CPUID_ANY_SUB, 0x3000U | p->phys_bits, 0, 0, 0);
	vmx_caps_read(&vmx_caps);
}

/* Loader state and per-CPU pages; then the real setup. Returns vmx_cpu_start()'s result
 * (always negative here: the stub VMLAUNCH "fails"). */
static s64 ps_setup_common(const struct vmx_profile *p, u64 dr7);
static s64 ps_setup(const struct vmx_profile *p) { fake_reset(); return ps_setup_common(p, 0x400); }
/* The same, but with the DR7 the test set before (fake_reset() would clear it). */
static __unused s64 ps_setup_keep_regs(const struct vmx_profile *p)
{
	u64 dr7 = fake_cr_get(FAKE_DR7);
	fake_reset();
	return ps_setup_common(p, dr7);
}

static s64 ps_setup_common(const struct vmx_profile *p, u64 dr7)
{
	fake_phys_init(PS_PHYS_BASE, PS_PHYS_SIZE);
	pmm_init(hpa(PS_PHYS_BASE), PS_PHYS_SIZE);
	ps_load_profile(p);
	if (ps_bsp_caps)
		vmx_caps = *ps_bsp_caps;
	if (ps_vmcs_fill)
		for (u32 f = 0; f < FAKE_VMCS_FIELDS; f++)
			fake_vmcs_set(f, ps_vmcs_fill);

	memset(ps_gdt, 0, sizeof(ps_gdt));
	ps_gdt[6] = 0x00cf93000000ffffULL; /* 0x30: flat data */
	ps_gdt[7] = 0x00af9b000000ffffULL; /* 0x38: 64-bit code */
	struct desc_ptr gdtr = { sizeof(ps_gdt) - 1, (u64)(uintptr_t)ps_gdt };
	struct desc_ptr idtr = { sizeof(ps_idt) - 1, (u64)(uintptr_t)ps_idt };
	fake_lgdt(&gdtr);
	fake_lidt(&idtr);
	fake_seg_set(FAKE_CS, 0x38);
	fake_seg_set(FAKE_SS, 0x30);
	fake_seg_set(FAKE_DS, 0x30);
	fake_seg_set(FAKE_ES, 0x30);
	fake_seg_set(FAKE_FS, 0x30);
	fake_seg_set(FAKE_GS, 0x30);
	fake_cr_set(FAKE_CR0, PS_GUEST_CR0);
	fake_cr_set(FAKE_CR4, PS_GUEST_CR4);
	fake_cr_set(FAKE_DR7, dr7);
	fake_msr_set(MSR_IA32_EFER, PS_GUEST_EFER);
	fake_msr_set(MSR_IA32_PAT, PS_GUEST_PAT);
	fake_msr_set(MSR_IA32_DEBUGCTL, 0);
	fake_msr_set(MSR_IA32_SYSENTER_CS, 0);
	fake_msr_set(MSR_IA32_SYSENTER_ESP, 0);
	fake_msr_set(MSR_IA32_SYSENTER_EIP, 0);
	fake_msr_set(MSR_IA32_FS_BASE, 0);
	fake_msr_set(MSR_IA32_GS_BASE, 0);

	memset(&ps_cpu, 0, sizeof(ps_cpu));
	memset(&ps_regs, 0, sizeof(ps_regs));
	ps_cpu.self = &ps_cpu;
	ps_cpu.regs = &ps_regs;
	ps_cpu.index = ps_bsp_caps ? 1 : 0;
	ps_cpu.vmxon = pmm_alloc_page();
	ps_cpu.vmcs = pmm_alloc_page();
	ps_cpu.msr_area = pmm_alloc_page();
	ps_cpu.stack_top = (u64)(uintptr_t)hpa_to_ptr(pmm_alloc_page()) + PAGE_SIZE;
	percpu_array[0] = &ps_cpu;
	percpu_count = 1;

	vmx_global.msr_bitmap = pmm_alloc_page();
	vmx_msr_bitmap_init(hpa_to_ptr(vmx_global.msr_bitmap));
	vmx_global.host_cr3 = pmm_alloc_page();
	vmx_global.eptp = ept_make_eptp(pmm_alloc_page(), false);

	ps_launch = (struct tessel_launch){ .rsp = 0x7ff00f80ULL, .rip = 0x7fe12345ULL, .rflags = RFLAGS_FIXED | RFLAGS_IF,
					    .cr3 = 0x7fc01000ULL };
	ps_launches = 0;
	memset(&ps_launch_result, 0, sizeof(ps_launch_result));
	s64 r = vmx_cpu_start(&ps_cpu, &ps_launch);
	fake_cpu_local_set(&ps_cpu);
	return r;
}

static void ps_teardown(void)
{
	fake_phys_fini();
	percpu_count = 0;
	percpu_array[0] = NULL;
}

/* A readable list of the failed rules, for assertion messages. */
static const char *ps_failed_rules(const struct entry_check_result *r)
{
	static char buf[1024];
	size_t o = 0;
	buf[0] = '\0';
	for (u32 i = 0; i < ER_COUNT && o + 80 < sizeof(buf); i++)
		if (entry_check_failed(r, (enum entry_rule)i))
			o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s(%s) ", entry_rule_name((enum entry_rule)i),
					      entry_rule_sdm((enum entry_rule)i));
	return buf;
}

#define assert_entry_ok(res, what) \
	do { \
		if ((res)->count) \
			fail_msg("%s: %s fails %u VM-entry check(s): %s", ps_profile->name, (what), (res)->count, \
				 ps_failed_rules(res)); \
	} while (0)

#endif
