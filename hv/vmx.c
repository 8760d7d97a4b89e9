/*
 * Bringing one processor into VMX operation and launching it as a guest that continues
 * exactly where the loader called us: the guest state is the processor's own state at
 * that moment (segments read from the firmware's GDT), with RSP/RIP/RFLAGS/CR3 handed
 * over by the loader's trampoline (boot/launch.asm). SDM Vol. 3C chapters 23-26.
 */
#include <hw.h>
#include <arch/cpu.h>
#include <arch/msr.h>
#include <arch/vmx.h>
#include "lib/string.h"
#include "log.h"
#include "panic.h"
#include "spp/spp.h"
#include "spp/step.h"
#include "mm/mtrr_guest.h"
#include "traps.h"
#include "vmcs.h"
#include "vmx.h"
#include "vmx_caps.h"

struct vmx_global vmx_global;

struct seg_state { u16 sel; u64 base; u32 limit; u32 ar; };

/* Decode a descriptor of the current GDT into the VMCS segment format (Table 24-2). */
static struct seg_state read_segment(const struct desc_ptr *gdt, u16 sel, bool is_system)
{
	struct seg_state s = { .sel = sel, .base = 0, .limit = 0, .ar = SEG_AR_UNUSABLE };
	if ((sel & ~3U) == 0 || (sel & 4) || (u32)(sel & ~7U) + 7 > gdt->limit)
		return s;
	const u8 *table = (const u8 *)(uintptr_t)gdt->base;
	u64 d;
	memcpy(&d, table + (sel & ~7U), 8);
	s.limit = (u32)((d & 0xffff) | ((d >> 32) & 0xf0000));
	s.ar = (u32)(((d >> 40) & 0xff) | (((d >> 52) & 0xf) << 12));
	if (s.ar & SEG_AR_G)
		s.limit = (s.limit << 12) | 0xfff;
	s.base = ((d >> 16) & 0xffffff) | (((d >> 56) & 0xff) << 24);
	if (is_system) {
		u64 hi;
		memcpy(&hi, table + (sel & ~7U) + 8, 8);
		s.base |= (hi & 0xffffffff) << 32;
	} else {
		s.ar |= 1; /* accessed: the CPU set it when the register was loaded */
	}
	return s;
}

static void write_guest_segment(u32 sel_f, u32 base_f, u32 limit_f, u32 ar_f, struct seg_state s)
{
	vmcs_write_raw(sel_f, s.sel);
	vmcs_write_raw(base_f, s.base);
	vmcs_write_raw(limit_f, s.limit);
	vmcs_write_raw(ar_f, s.ar);
}

#define GUEST_SEG(name, s) \
	write_guest_segment(VMCS_GUEST_##name##_SEL, VMCS_GUEST_##name##_BASE, VMCS_GUEST_##name##_LIMIT, \
			    VMCS_GUEST_##name##_AR, s)

static void setup_guest_state(const struct tessel_launch *l, u64 cr0, u64 cr4, u64 fs_base, u64 gs_base)
{
	struct desc_ptr gdt, idt;
	sgdt(&gdt);
	sidt(&idt);

	GUEST_SEG(CS, read_segment(&gdt, read_cs(), false));
	GUEST_SEG(SS, read_segment(&gdt, read_ss(), false));
	GUEST_SEG(DS, read_segment(&gdt, read_ds(), false));
	GUEST_SEG(ES, read_segment(&gdt, read_es(), false));
	struct seg_state fs = read_segment(&gdt, read_fs(), false);
	struct seg_state gs = read_segment(&gdt, read_gs(), false);
	fs.base = fs_base;
	gs.base = gs_base;
	GUEST_SEG(FS, fs);
	GUEST_SEG(GS, gs);
	struct seg_state ldtr = read_segment(&gdt, sldt(), true);
	GUEST_SEG(LDTR, ldtr);
	struct seg_state tr = read_segment(&gdt, str(), true);
	if (tr.ar & SEG_AR_UNUSABLE) {
		/* Firmware runs without a TSS; VM entry requires a usable busy TSS (26.3.1.2). */
		tr = (struct seg_state){ .sel = 0, .base = 0, .limit = 0x67, .ar = SEG_AR_P | SEG_TYPE_TSS64_BUSY };
	}
	tr.ar |= 2; /* busy */
	GUEST_SEG(TR, tr);

	vmcs_writel(VMCS_GUEST_GDTR_BASE, gdt.base);
	vmcs_write32(VMCS_GUEST_GDTR_LIMIT, gdt.limit);
	vmcs_writel(VMCS_GUEST_IDTR_BASE, idt.base);
	vmcs_write32(VMCS_GUEST_IDTR_LIMIT, idt.limit);

	vmcs_writel(VMCS_GUEST_CR0, cr0);
	vmcs_writel(VMCS_GUEST_CR3, l->cr3);
	vmcs_writel(VMCS_GUEST_CR4, cr4 | CR4_VMXE);
	vmcs_writel(VMCS_GUEST_DR7, read_dr7());
	vmcs_writel(VMCS_GUEST_RSP, l->rsp);
	vmcs_writel(VMCS_GUEST_RIP, l->rip);
	vmcs_writel(VMCS_GUEST_RFLAGS, l->rflags);
	vmcs_write64(VMCS_GUEST_IA32_DEBUGCTL, rdmsr(MSR_IA32_DEBUGCTL));
	vmcs_write32(VMCS_GUEST_IA32_SYSENTER_CS, rdmsr(MSR_IA32_SYSENTER_CS));
	vmcs_writel(VMCS_GUEST_IA32_SYSENTER_ESP, rdmsr(MSR_IA32_SYSENTER_ESP));
	vmcs_writel(VMCS_GUEST_IA32_SYSENTER_EIP, rdmsr(MSR_IA32_SYSENTER_EIP));
	vmcs_write64(VMCS_GUEST_IA32_EFER, rdmsr(MSR_IA32_EFER));
	vmcs_write64(VMCS_GUEST_IA32_PAT, rdmsr(MSR_IA32_PAT));
	vmcs_write32(VMCS_GUEST_INTERRUPTIBILITY, 0);
	vmcs_write32(VMCS_GUEST_ACTIVITY_STATE, GUEST_ACTIVITY_ACTIVE);
	vmcs_writel(VMCS_GUEST_PENDING_DBG_EXC, 0);
	vmcs_write64(VMCS_GUEST_VMCS_LINK_PTR, ~0ULL);
}

static void setup_host_state(struct percpu *c)
{
	u64 tss = (u64)(uintptr_t)&c->tss;
	vmcs_writel(VMCS_HOST_CR0, read_cr0());
	vmcs_writel(VMCS_HOST_CR3, vmx_global.host_cr3.v);
	vmcs_writel(VMCS_HOST_CR4, read_cr4());
	vmcs_write16(VMCS_HOST_CS_SEL, HOST_SEL_CODE);
	vmcs_write16(VMCS_HOST_SS_SEL, HOST_SEL_DATA);
	vmcs_write16(VMCS_HOST_DS_SEL, HOST_SEL_DATA);
	vmcs_write16(VMCS_HOST_ES_SEL, HOST_SEL_DATA);
	vmcs_write16(VMCS_HOST_FS_SEL, 0);
	vmcs_write16(VMCS_HOST_GS_SEL, 0);
	vmcs_write16(VMCS_HOST_TR_SEL, HOST_SEL_TSS);
	vmcs_writel(VMCS_HOST_FS_BASE, 0);
	vmcs_writel(VMCS_HOST_GS_BASE, (u64)(uintptr_t)c);
	vmcs_writel(VMCS_HOST_TR_BASE, tss);
	vmcs_writel(VMCS_HOST_GDTR_BASE, (u64)(uintptr_t)c->gdt);
	vmcs_writel(VMCS_HOST_IDTR_BASE, (u64)(uintptr_t)host_idt);
	vmcs_write32(VMCS_HOST_IA32_SYSENTER_CS, 0);
	vmcs_writel(VMCS_HOST_IA32_SYSENTER_ESP, 0);
	vmcs_writel(VMCS_HOST_IA32_SYSENTER_EIP, 0);
	vmcs_write64(VMCS_HOST_IA32_EFER, rdmsr(MSR_IA32_EFER));
	vmcs_write64(VMCS_HOST_IA32_PAT, rdmsr(MSR_IA32_PAT));
	vmcs_writel(VMCS_HOST_RSP, c->stack_top);
	vmcs_writel(VMCS_HOST_RIP, (u64)(uintptr_t)vmx_exit_entry);
}

static bool setup_controls(struct percpu *c, u64 guest_efer, u64 guest_cr0, u64 guest_cr4)
{
	const struct vmx_caps *k = &vmx_caps;
	u32 pin, proc, proc2, exit, entry;
	bool ok = vmx_adjust_ctls(k->pin, PIN_NMI_EXITING | PIN_VIRTUAL_NMIS, &pin);
	ok &= vmx_adjust_ctls(k->proc, PROC_USE_MSR_BITMAPS | PROC_ACTIVATE_SECONDARY, &proc);
	u32 want2 = PROC2_ENABLE_EPT | PROC2_UNRESTRICTED_GUEST;
	/* Instructions that #UD in a guest unless their "enable" control is set. */
	const u32 optional2 = PROC2_ENABLE_RDTSCP | PROC2_ENABLE_INVPCID | PROC2_ENABLE_XSAVES | PROC2_ENABLE_USER_WAIT;
	want2 |= optional2 & (u32)(k->proc2 >> 32);
	if (vmx_has_vpid())
		want2 |= PROC2_ENABLE_VPID;
	want2 |= spp_proc2_bits();
	ok &= vmx_adjust_ctls(k->proc2, want2, &proc2);
	ok &= vmx_adjust_ctls(k->exit, EXIT_HOST_ADDR_SPACE_SIZE | EXIT_SAVE_DEBUG_CTLS | EXIT_SAVE_IA32_PAT |
				       EXIT_LOAD_IA32_PAT | EXIT_SAVE_IA32_EFER | EXIT_LOAD_IA32_EFER, &exit);
	u32 want_entry = ENTRY_LOAD_DEBUG_CTLS | ENTRY_LOAD_IA32_PAT | ENTRY_LOAD_IA32_EFER;
	if (guest_efer & EFER_LMA)
		want_entry |= ENTRY_IA32E_MODE_GUEST;
	ok &= vmx_adjust_ctls(k->entry, want_entry, &entry);
	if (!ok)
		return false;
	vmcs_write32(VMCS_CTRL_PIN_BASED, pin);
	vmcs_write32(VMCS_CTRL_PROC_BASED, proc);
	vmcs_write32(VMCS_CTRL_PROC_BASED2, proc2);
	vmcs_write32(VMCS_CTRL_EXIT, exit);
	vmcs_write32(VMCS_CTRL_ENTRY, entry);
	vmcs_write32(VMCS_CTRL_EXCEPTION_BITMAP, 0);
	vmcs_write32(VMCS_CTRL_PF_ERROR_MASK, 0);
	vmcs_write32(VMCS_CTRL_PF_ERROR_MATCH, 0);
	vmcs_write32(VMCS_CTRL_CR3_TARGET_COUNT, 0);
	vmcs_write32(VMCS_CTRL_EXIT_MSR_STORE_COUNT, 0);
	vmcs_write32(VMCS_CTRL_EXIT_MSR_LOAD_COUNT, 0);
	vmcs_write32(VMCS_CTRL_ENTRY_MSR_LOAD_COUNT, 0);
	vmcs_write32(VMCS_CTRL_ENTRY_INTR_INFO, 0);
	vmcs_write64(VMCS_CTRL_MSR_BITMAP, vmx_global.msr_bitmap.v);
	vmcs_write64(VMCS_CTRL_EPTP, vmx_global.eptp);
	if (proc2 & PROC2_ENABLE_VPID)
		vmcs_write16(VMCS_CTRL_VPID, c->index + 1);

	/* CR0/CR4 bits VMX fixes (Appendix A.7/A.8) are owned by the hypervisor; the guest reads
	 * its own view from the shadows. PE and PG are free with unrestricted guest. */
	c->cr0_guest_mask = ((k->cr0_fixed0 & ~(CR0_PE | CR0_PG)) | ~k->cr0_fixed1) & 0xffffffffULL;
	c->cr4_guest_mask = (k->cr4_fixed0 | ~k->cr4_fixed1) & 0xffffffffULL;
	vmcs_writel(VMCS_CTRL_CR0_MASK, c->cr0_guest_mask);
	vmcs_writel(VMCS_CTRL_CR0_READ_SHADOW, guest_cr0);
	vmcs_writel(VMCS_CTRL_CR4_MASK, c->cr4_guest_mask);
	vmcs_writel(VMCS_CTRL_CR4_READ_SHADOW, guest_cr4);
	return true;
}

void vmx_msr_bitmap_init(u8 *bitmap)
{
	/* Bitmap layout, SDM 24.6.9: read-low, read-high, write-low, write-high, 1 KiB each. */
	static const u32 intercepted[] = { MSR_IA32_FEATURE_CONTROL };
	memset(bitmap, 0, PAGE_SIZE);
	for (size_t i = 0; i < ARRAY_SIZE(intercepted); i++) {
		u32 m = intercepted[i];
		bitmap[m / 8] |= (u8)(1U << (m % 8));
		bitmap[2048 + m / 8] |= (u8)(1U << (m % 8));
	}
	/* x2APIC ICR writes: INIT and SIPI are delivered by the hypervisor (hv/vapic.c). */
	bitmap[2048 + MSR_X2APIC_ICR / 8] |= (u8)(1U << (MSR_X2APIC_ICR % 8));
	for (u32 m = MSR_IA32_VMX_FIRST; m <= MSR_IA32_VMX_LAST; m++) {
		bitmap[m / 8] |= (u8)(1U << (m % 8));
		bitmap[2048 + m / 8] |= (u8)(1U << (m % 8));
	}
	/* [mem helper, interim until the MSR policy table] MTRRs are virtualized (mm/mtrr_guest.c). */
	for (u32 m = MSR_IA32_MTRRCAP; m <= MSR_IA32_MTRR_DEF_TYPE; m++)
		if (mtrr_guest_is_mtrr(m)) {
			bitmap[m / 8] |= (u8)(1U << (m % 8));
			bitmap[2048 + m / 8] |= (u8)(1U << (m % 8));
		}
}

s64 vmx_cpu_start(struct percpu *c, const struct tessel_launch *l)
{
	/* Capture what the guest will continue with before anything here changes it. */
	u64 guest_cr0 = read_cr0(), guest_cr4 = read_cr4();
	u64 fs_base = rdmsr(MSR_IA32_FS_BASE), gs_base = rdmsr(MSR_IA32_GS_BASE);
	u64 efer = rdmsr(MSR_IA32_EFER);

	const char *why = vmx_basic_check(); /* also locks IA32_FEATURE_CONTROL on this CPU */
	if (why) {
		log_error("cpu %u: %s", c->index, why);
		return -ENODEV;
	}
	wrmsr(MSR_IA32_GS_BASE, (u64)(uintptr_t)c);

	/* CR0/CR4 as VMX operation requires (Appendix A.7/A.8), and OSXSAVE so the host can
	 * execute XSETBV for the guest. */
	u64 cr0 = (guest_cr0 | vmx_caps.cr0_fixed0) & vmx_caps.cr0_fixed1;
	u64 cr4 = (guest_cr4 | vmx_caps.cr4_fixed0 | CR4_VMXE) & vmx_caps.cr4_fixed1;
	u32 a, b, cx, d;
	cpuid_count(1, 0, &a, &b, &cx, &d);
	if (cx & CPUID1_ECX_XSAVE)
		cr4 |= CR4_OSXSAVE;
	write_cr0(cr0);
	write_cr4(cr4);

	*(u32 *)hpa_to_ptr(c->vmxon) = vmx_caps.revision;
	*(u32 *)hpa_to_ptr(c->vmcs) = vmx_caps.revision;
	if (!vmxon(c->vmxon)) {
		log_error("cpu %u: VMXON failed", c->index);
		goto fail_cr;
	}
	if (!vmclear(c->vmcs) || !vmptrld(c->vmcs)) {
		log_error("cpu %u: VMCLEAR/VMPTRLD failed", c->index);
		goto fail_vmxoff;
	}
	/* The guest's CR0 must itself satisfy the fixed bits (NE); its view stays in the shadow. */
	u64 guest_cr0_real = (guest_cr0 | (vmx_caps.cr0_fixed0 & ~(CR0_PE | CR0_PG))) & vmx_caps.cr0_fixed1;
	if (!setup_controls(c, efer, guest_cr0, guest_cr4)) {
		log_error("cpu %u: required VMX controls not allowed", c->index);
		goto fail_vmxoff;
	}
	spp_cpu_setup();
	setup_host_state(c);
	setup_guest_state(l, guest_cr0_real, guest_cr4, fs_base, gs_base);

	if (vmx_has_mtf()) {
		/* MTF self-test (spp/step.c): is the first exit an MTF exit? */
		vmcs_write32(VMCS_CTRL_PROC_BASED, vmcs_read32(VMCS_CTRL_PROC_BASED) | PROC_MONITOR_TRAP_FLAG);
		c->mtf_selftest = true;
	} else {
		spp_step_set_mtf(false);
	}
	c->launched = true;
	vmx_launch();
	c->launched = false;
	u64 err = 0;
	vmx_vmread(VMCS_RO_VM_INSN_ERROR, &err);
	log_error("cpu %u: VMLAUNCH failed, VM-instruction error %llu", c->index, (unsigned long long)err);
	vmcs_dump();
fail_vmxoff:
	vmxoff();
fail_cr:
	write_cr4(guest_cr4);
	write_cr0(guest_cr0);
	wrmsr(MSR_IA32_GS_BASE, gs_base);
	return -EIO;
}
