/*
 * Bringing one processor into VMX operation and launching it as a guest that continues
 * exactly where the loader called us: the guest state is the processor's own state at
 * that moment (segments read from the firmware's GDT), with RSP/RIP/RFLAGS/CR3 handed
 * over by the loader's trampoline (boot/launch.asm). SDM Vol. 3C chapters 23-26.
 */
#include <hw.h>
#include <tessel/bootinfo.h>
#include <arch/cpu.h>
#include <arch/msr.h>
#include <arch/vmx.h>
#include "lib/string.h"
#include "entry_check.h"
#include "features.h"
#include "log.h"
#include "msr_policy.h"
#include "panic.h"
#include "pin.h"
#include "spp/spp.h"
#include "spp/step.h"
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

/* The reset ports exit (hv/exit_io.c): a guest's reset goes through the hypervisor. */
static void setup_io_bitmaps(void)
{
	vmcs_write64(VMCS_CTRL_IO_BITMAP_A, vmx_global.io_bitmap_a.v);
	vmcs_write64(VMCS_CTRL_IO_BITMAP_B, vmx_global.io_bitmap_b.v);
}

/*
 * IA32_SPEC_CTRL passes through to the guest (docs/MSR.md: its kernel writes it on hot
 * paths). Left at that, root mode would run with whatever the guest kernel last wrote: a
 * guest that clears IBRS turns enhanced IBRS off for the hypervisor too, and its training of
 * the branch predictors then steers the hypervisor's indirect branches. So VMX switches the
 * MSR: every VM exit stores the guest's value in this vCPU's area (SDM 27.4) and loads the
 * host's (27.6), every VM entry loads the guest's back (26.4), in hardware, also on
 * hv/entry.asm's fast path. The guest starts with the value it had when Tessel took over.
 */
static void setup_spec_ctrl(struct percpu *c)
{
	struct vmx_msr_entry *area = hpa_to_ptr(c->msr_area);
	u64 host;

	if (!spec_ctrl_host_value(&host))
		return;
	area[0] = (struct vmx_msr_entry){ .index = MSR_IA32_SPEC_CTRL, .value = rdmsr(MSR_IA32_SPEC_CTRL) };
	area[1] = (struct vmx_msr_entry){ .index = MSR_IA32_SPEC_CTRL, .value = host };
	c->spec_ctrl_switched = true;
	vmcs_write64(VMCS_CTRL_EXIT_MSR_STORE_ADDR, c->msr_area.v);
	vmcs_write32(VMCS_CTRL_EXIT_MSR_STORE_COUNT, 1);
	vmcs_write64(VMCS_CTRL_EXIT_MSR_LOAD_ADDR, c->msr_area.v + sizeof(*area));
	vmcs_write32(VMCS_CTRL_EXIT_MSR_LOAD_COUNT, 1);
	vmcs_write64(VMCS_CTRL_ENTRY_MSR_LOAD_ADDR, c->msr_area.v);
	vmcs_write32(VMCS_CTRL_ENTRY_MSR_LOAD_COUNT, 1);
}

static bool setup_controls(struct percpu *c, u64 guest_efer, u64 guest_cr0, u64 guest_cr4)
{
	const struct vmx_caps *k = &vmx_caps;
	u32 pin, proc, proc2, exit, entry;
	bool ok = vmx_adjust_ctls(k->pin, PIN_NMI_EXITING | PIN_VIRTUAL_NMIS, &pin);
	ok &= vmx_adjust_ctls(k->proc, PROC_USE_MSR_BITMAPS | PROC_USE_IO_BITMAPS | PROC_ACTIVATE_SECONDARY, &proc);
	u32 want2 = PROC2_ENABLE_EPT | PROC2_UNRESTRICTED_GUEST;
	/* Instructions that #UD in a guest unless their "enable" control is set. */
	const u32 optional2 = PROC2_ENABLE_RDTSCP | PROC2_ENABLE_INVPCID | PROC2_ENABLE_XSAVES | PROC2_ENABLE_USER_WAIT;
	want2 |= optional2 & (u32)(k->proc2 >> 32);
	if (vmx_has_vpid())
		want2 |= PROC2_ENABLE_VPID;
	want2 |= spp_proc2_bits();
	ok &= vmx_adjust_ctls(k->proc2, want2, &proc2);
	/* Intel PT is hidden from the guest and its MSRs #GP (hv/msr_policy.c); where offered,
	 * VMX also clears IA32_RTIT_CTL on every exit and loads 0 on every entry (SDM 27.5.1,
	 * 26.3.2.1), so a trace the firmware left running never covers root mode. */
	u32 want_exit = EXIT_HOST_ADDR_SPACE_SIZE | EXIT_SAVE_DEBUG_CTLS | EXIT_SAVE_IA32_PAT | EXIT_LOAD_IA32_PAT |
			EXIT_SAVE_IA32_EFER | EXIT_LOAD_IA32_EFER;
	want_exit |= EXIT_CLEAR_IA32_RTIT_CTL & (u32)(k->exit >> 32);
	ok &= vmx_adjust_ctls(k->exit, want_exit, &exit);
	u32 want_entry = ENTRY_LOAD_DEBUG_CTLS | ENTRY_LOAD_IA32_PAT | ENTRY_LOAD_IA32_EFER;
	want_entry |= ENTRY_LOAD_IA32_RTIT_CTL & (u32)(k->entry >> 32);
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
	if (entry & ENTRY_LOAD_IA32_RTIT_CTL)
		vmcs_write64(VMCS_GUEST_IA32_RTIT_CTL, 0); /* the only value a guest without PT has */
	vmcs_write32(VMCS_CTRL_EXCEPTION_BITMAP, 0);
	vmcs_write32(VMCS_CTRL_PF_ERROR_MASK, 0);
	vmcs_write32(VMCS_CTRL_PF_ERROR_MATCH, 0);
	vmcs_write32(VMCS_CTRL_CR3_TARGET_COUNT, 0);
	vmcs_write32(VMCS_CTRL_EXIT_MSR_STORE_COUNT, 0);
	vmcs_write32(VMCS_CTRL_EXIT_MSR_LOAD_COUNT, 0);
	vmcs_write32(VMCS_CTRL_ENTRY_MSR_LOAD_COUNT, 0);
	setup_spec_ctrl(c);
	vmcs_write32(VMCS_CTRL_ENTRY_INTR_INFO, 0);
	vmcs_write64(VMCS_CTRL_MSR_BITMAP, vmx_global.msr_bitmap.v);
	setup_io_bitmaps();
	vmcs_write64(VMCS_CTRL_EPTP, vmx_global.eptp);
	if (proc2 & PROC2_ENABLE_VPID)
		vmcs_write16(VMCS_CTRL_VPID, c->index + 1);

	/* CR0/CR4 bits VMX fixes (Appendix A.7/A.8) are owned by the hypervisor; the guest reads
	 * its own view from the shadows. PE and PG are free with unrestricted guest. */
	c->cr0_guest_mask = ((k->cr0_fixed0 & ~(CR0_PE | CR0_PG)) | ~k->cr0_fixed1) & 0xffffffffULL;
	c->cr4_guest_mask = (k->cr4_fixed0 | ~k->cr4_fixed1) & 0xffffffffULL;
	/* Pinned bits (hv/pin.c) are owned on every vCPU; the shadows below hold the full view. */
	c->cr0_guest_mask |= pin_cr_mask(0);
	c->cr4_guest_mask |= pin_cr_mask(4);
	vmcs_writel(VMCS_CTRL_CR0_MASK, c->cr0_guest_mask);
	vmcs_writel(VMCS_CTRL_CR0_READ_SHADOW, guest_cr0);
	vmcs_writel(VMCS_CTRL_CR4_MASK, c->cr4_guest_mask);
	vmcs_writel(VMCS_CTRL_CR4_READ_SHADOW, guest_cr4);
	return true;
}

void vmx_msr_bitmap_init(u8 *bitmap)
{
	/* Generated from the MSR policy table (hv/msr_policy.c, docs/MSR.md): every MSR exits
	 * except the directions the table passes through. */
	msr_policy_bitmap(bitmap);
}

s64 vmx_cpu_start(struct percpu *c, const struct tessel_launch *l)
{
	c->spec_ctrl_switched = false; /* no MSR switched (yet) */
	/* Capture what the guest will continue with before anything here changes it. */
	u64 guest_cr0 = read_cr0(), guest_cr4 = read_cr4();
	u64 fs_base = rdmsr(MSR_IA32_FS_BASE), gs_base = rdmsr(MSR_IA32_GS_BASE);
	u64 efer = rdmsr(MSR_IA32_EFER);
	/* This CPU's per-CPU area, before anything here can take a lock: from the first start
	 * (the BSP's) on, locks are counted per CPU through GS (include/tessel/spinlock.h). */
	wrmsr(MSR_IA32_GS_BASE, (u64)(uintptr_t)c);
	__atomic_store_n(&percpu_gs_ready, true, __ATOMIC_SEQ_CST);

	/* Intel PT is never the guest's (hv/msr_policy.c): stop a trace the firmware may have left
	 * running, before VMXON, which #GPs with TraceEn set where IA32_VMX_MISC[14] is 0
	 * (SDM 23.7, 35.5.1). */
	u32 ma, mb, mc, md;
	cpuid_count(0, 0, &ma, &mb, &mc, &md);
	if (ma >= 7) {
		cpuid_count(7, 0, &ma, &mb, &mc, &md);
		if (mb & CPUID7_EBX_PT)
			(void)wrmsr_safe(MSR_IA32_RTIT_CTL, 0);
	}

	const char *why = vmx_basic_check(); /* also locks IA32_FEATURE_CONTROL on this CPU */
	if (why) {
		log_error("cpu %u: %s", c->index, why);
		goto fail_gs;
	}
	/* The BSP's capabilities (read at core init) decided the controls, the EPT and the SPP
	 * mode for every CPU: this one must have the same. */
	struct vmx_caps mine;
	vmx_caps_read(&mine);
	const char *differs = vmx_caps_differ(&mine, &vmx_caps);
	if (differs) {
		log_error("cpu %u: VMX capabilities differ from the bootstrap processor's: %s", c->index, differs);
		goto fail_gs;
	}

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
	/* Every XSAVES/XRSTORS of the guest consults the XSS-exiting bitmap when "enable
	 * XSAVES/XRSTORS" is 1 (SDM 25.1.3). VMCLEAR does not zero a VMCS (its data format is
	 * the processor's, SDM 24.2), so it is written here: none of them exits. */
	if (vmcs_read32(VMCS_CTRL_PROC_BASED2) & PROC2_ENABLE_XSAVES)
		vmcs_write64(VMCS_CTRL_XSS_EXIT_BITMAP, 0);
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
	if (entry_check_enabled) {
		/* check=entry: the checks a real processor makes, before Bochs (which skips
		 * most of them) gets to accept this VMCS. */
		struct entry_check_result res;
		if (entry_check(&vmx_caps, &res)) {
			log_error("cpu %u: the VMCS fails %u VM-entry check(s) before VMLAUNCH", c->index, res.count);
			entry_check_explain();
			log_error("cpu %u: not launching: VM-entry check %s (SDM Vol. 3C %s)", c->index,
				  entry_rule_name(res.first), entry_rule_sdm(res.first));
			goto fail_vmxoff;
		}
	}
#ifdef TESSEL_TEST_FAIL_ENTRY
	/* Test build (build/tessel-failentry-*.efi): make this CPU's first VM entry fail with a
	 * VM exit, as an invalid guest state would on silicon (RFLAGS bit 1 must be 1, SDM
	 * 26.3.1.4), to show the start is all-or-nothing. After check=entry's checks, so that
	 * the processor itself refuses the entry. */
	if (c->index == TESSEL_TEST_FAIL_ENTRY)
		vmcs_writel(VMCS_GUEST_RFLAGS, l->rflags & ~RFLAGS_FIXED);
#endif
	c->launched = true;
	c->entered = false;
	if (vmx_launch(&c->launch_jmp)) {
		/* Back from vmx_first_entry_failed(): the exit loaded the host state. */
		c->launched = false;
		goto fail_vmxoff;
	}
	c->launched = false;
	u64 err = 0;
	vmx_vmread(VMCS_RO_VM_INSN_ERROR, &err);
	log_error("cpu %u: VMLAUNCH failed, VM-instruction error %llu", c->index, (unsigned long long)err);
	entry_check_explain(); /* name the rules the processor may have refused */
	vmcs_dump();
fail_vmxoff:
	/* A failed first entry's exit loaded the host's IA32_SPEC_CTRL: the OS's again. */
	if (c->spec_ctrl_switched)
		wrmsr(MSR_IA32_SPEC_CTRL, ((struct vmx_msr_entry *)hpa_to_ptr(c->msr_area))[0].value);
	vmxoff();
fail_cr:
	write_cr4(guest_cr4);
	write_cr0(guest_cr0);
	wrmsr(MSR_IA32_GS_BASE, gs_base);
	return -EIO;
fail_gs:
	wrmsr(MSR_IA32_GS_BASE, gs_base);
	return -ENODEV;
}
