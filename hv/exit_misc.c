/*
 * Smaller exit families: XSETBV (55), INVD/WBINVD (13/54), INIT (3) and SIPI (4),
 * triple fault (2), task switch (9), and the VMX instructions, which do not exist for the
 * guest (#UD).
 */
#include <hw.h>
#include <arch/cpu.h>
#include <arch/msr.h>
#include "exit.h"
#include "log.h"
#include "panic.h"
#include "pin.h"
#include "drivers/platform.h"
#include "vcpu.h"
#include "vmcs.h"
#include "vmx_caps.h"

#define XCR0_X87     (1ULL << 0)
#define XCR0_SSE     (1ULL << 1)
#define XCR0_AVX     (1ULL << 2)
#define XCR0_BNDREGS (1ULL << 3)
#define XCR0_BNDCSR  (1ULL << 4)
#define XCR0_AVX512  (7ULL << 5)
#define XCR0_TILECFG (1ULL << 17)
#define XCR0_TILEDATA (1ULL << 18)

/* SDM Vol. 2C XSETBV: the #GP(0) conditions the instruction itself checks. */
static bool xcr0_valid(u64 v)
{
	u32 a, b, c, d;
	cpuid_count(0xd, 0, &a, &b, &c, &d);
	u64 supported = ((u64)d << 32) | a;
	if ((v & ~supported) || !(v & XCR0_X87))
		return false;
	if ((v & XCR0_AVX) && !(v & XCR0_SSE))
		return false;
	if (!!(v & XCR0_BNDREGS) != !!(v & XCR0_BNDCSR))
		return false;
	if ((v & XCR0_AVX512) && ((v & XCR0_AVX512) != XCR0_AVX512 || !(v & XCR0_AVX)))
		return false;
	if (!!(v & XCR0_TILECFG) != !!(v & XCR0_TILEDATA))
		return false;
	return true;
}

void exit_xsetbv(struct percpu *c)
{
	u32 idx = (u32)c->regs->gpr[GPR_CX];
	u64 v = (c->regs->gpr[GPR_DX] << 32) | (u32)c->regs->gpr[GPR_AX];
	/* The host never changes XCR0, so the guest's value stays in force after the exit. */
	if (vcpu_cpl() != 0 || idx != 0 || !xcr0_valid(v) || !xsetbv_safe(idx, v)) {
		vcpu_inject_gp0(c);
		return;
	}
	vcpu_skip_insn(c);
}

void exit_invd(struct percpu *c)
{
	/* INVD would drop the hypervisor's own dirty lines too: write them back instead. */
	wbinvd();
	vcpu_skip_insn(c);
}

static void set_real_mode_seg(u32 sel_f, u32 base_f, u32 limit_f, u32 ar_f, u16 sel, u64 base, u32 ar)
{
	vmcs_write_raw(sel_f, sel);
	vmcs_write_raw(base_f, base);
	vmcs_write_raw(limit_f, 0xffff);
	vmcs_write_raw(ar_f, ar);
}
#define REAL_SEG(name, sel, base, ar) \
	set_real_mode_seg(VMCS_GUEST_##name##_SEL, VMCS_GUEST_##name##_BASE, VMCS_GUEST_##name##_LIMIT, \
			  VMCS_GUEST_##name##_AR, sel, base, ar)

/*
 * The processor state after INIT (SDM Vol. 3A Table 9-1), in the VMCS and, for what VMX does
 * not switch, in the registers of this CPU (the target runs this itself): DR0-DR3 = 0 and
 * DR6 = FFFF0FF0H (MOV DR does not exit, so they are the guest's own). The x87/MMX/SSE
 * state and MXCSR are left as they are, as INIT does (SDM 9.1.1: "the internal caches,
 * MSRs, MTRRs, and x87 FPU/MMX/SSE state are left unchanged"); XCR0 goes back to 1
 * (Table 9-1). The local APIC reset is hv/vapic.c's (vapic_init_reset_apic).
 */
void vcpu_init_state(struct percpu *c)
{
	const u64 cr0 = CR0_ET | CR0_CD | CR0_NW;
	vmcs_writel(VMCS_CTRL_CR0_READ_SHADOW, cr0);
	vmcs_writel(VMCS_GUEST_CR0, (cr0 | (vmx_caps.cr0_fixed0 & ~(CR0_PE | CR0_PG))) & vmx_caps.cr0_fixed1);
	vmcs_writel(VMCS_CTRL_CR4_READ_SHADOW, 0);
	vmcs_writel(VMCS_GUEST_CR4, vmx_caps.cr4_fixed0 | CR4_VMXE);
	vmcs_writel(VMCS_GUEST_CR3, 0);
	vmcs_write64(VMCS_GUEST_IA32_EFER, 0);
	vmcs_write32(VMCS_CTRL_ENTRY, vmcs_read32(VMCS_CTRL_ENTRY) & ~ENTRY_IA32E_MODE_GUEST);
	REAL_SEG(CS, 0xf000, 0xffff0000ULL, 0x9b);
	REAL_SEG(SS, 0, 0, 0x93);
	REAL_SEG(DS, 0, 0, 0x93);
	REAL_SEG(ES, 0, 0, 0x93);
	REAL_SEG(FS, 0, 0, 0x93);
	REAL_SEG(GS, 0, 0, 0x93);
	REAL_SEG(LDTR, 0, 0, 0x82);
	REAL_SEG(TR, 0, 0, 0x8b);
	vmcs_writel(VMCS_GUEST_GDTR_BASE, 0);
	vmcs_write32(VMCS_GUEST_GDTR_LIMIT, 0xffff);
	vmcs_writel(VMCS_GUEST_IDTR_BASE, 0);
	vmcs_write32(VMCS_GUEST_IDTR_LIMIT, 0xffff);
	vmcs_writel(VMCS_GUEST_RIP, 0xfff0);
	vmcs_writel(VMCS_GUEST_RSP, 0);
	vmcs_writel(VMCS_GUEST_RFLAGS, RFLAGS_FIXED);
	vmcs_writel(VMCS_GUEST_DR7, 0x400);
	write_dr0_3(0);
	write_dr6(0xffff0ff0ULL);
	vmcs_write64(VMCS_GUEST_IA32_DEBUGCTL, 0);
	vmcs_writel(VMCS_GUEST_PENDING_DBG_EXC, 0);
	vmcs_write32(VMCS_GUEST_INTERRUPTIBILITY, 0);
	vmcs_write32(VMCS_GUEST_ACTIVITY_STATE, GUEST_ACTIVITY_ACTIVE);
	vmcs_write32(VMCS_CTRL_ENTRY_INTR_INFO, 0);
	vmcs_write32(VMCS_CTRL_PROC_BASED, vmcs_read32(VMCS_CTRL_PROC_BASED) &
		     ~(PROC_INTR_WINDOW_EXITING | PROC_NMI_WINDOW_EXITING));
	for (unsigned r = 0; r < 16; r++)
		c->regs->gpr[r] = 0;
	u32 a, b, cx, d;
	cpuid_count(1, 0, &a, &b, &cx, &d);
	c->regs->gpr[GPR_DX] = a; /* processor signature, as after reset */
	if (read_cr4() & CR4_OSXSAVE)
		xsetbv(0, XCR0_X87); /* INIT resets XCR0 */
	if (vmcs_read32(VMCS_CTRL_PROC_BASED2) & PROC2_ENABLE_VPID)
		invvpid(INVVPID_SINGLE_CONTEXT, (u16)(c->index + 1));
	c->nmi_pending = false;
	c->pending_vector = 0;
	c->event_injected = true; /* nothing may be injected into the INIT state */
	pin_dt_init(c); /* INIT disarms descriptor-table register pins (hv/pin.c) */
}

/* A SIPI starts the processor in real mode at vector << 12 (SDM Vol. 3A 9.4.4). */
void vcpu_sipi_state(struct percpu *c, u8 vector)
{
	(void)c;
	REAL_SEG(CS, (u16)(vector << 8), (u64)vector << 12, 0x9b);
	vmcs_writel(VMCS_GUEST_RIP, 0);
	vmcs_write32(VMCS_GUEST_ACTIVITY_STATE, GUEST_ACTIVITY_ACTIVE);
	vmcs_write32(VMCS_GUEST_INTERRUPTIBILITY, 0);
	vmcs_writel(VMCS_GUEST_PENDING_DBG_EXC, 0);
	log_info_rl("SIPI: the guest starts this CPU in real mode at %llx", (unsigned long long)vector << 12);
}

/* A real INIT VM exit takes the same path as a virtual INIT (hv/vapic.c): a new INIT cycle
 * in which only a SIPI sent from now on counts. */
void exit_init_signal(struct percpu *c)
{
	__atomic_store_n(&c->vsipi_vector, -1, __ATOMIC_SEQ_CST);
	__atomic_store_n(&c->vinit_pending, true, __ATOMIC_SEQ_CST);
}

/* Only reachable if a vCPU were in the wait-for-SIPI activity state, which Tessel never
 * uses (hv/vapic.c explains why); kept so such an exit is handled, not fatal. */
void exit_sipi(struct percpu *c)
{
	vcpu_sipi_state(c, (u8)vmcs_readl(VMCS_RO_EXIT_QUALIFICATION));
	c->wait_sipi = false;
	invept(INVEPT_ALL_CONTEXT, 0);
}

void exit_triple_fault(struct percpu *c)
{
	log_error("guest triple fault at RIP %llx: resetting the platform",
		  (unsigned long long)vmcs_readl(VMCS_GUEST_RIP));
	vmcs_dump();
	(void)c;
	platform_reset();
}

#define TS_QUAL_SOURCE(q) (((q) >> 30) & 3) /* SDM Table 27-2: 0 CALL, 1 IRET, 2 JMP, 3 IDT task gate */
#define TS_SOURCE_TASK_GATE 3

/*
 * Task switches (exit reason 9, unconditional in VMX non-root operation, SDM 25.1.2). A
 * 64-bit guest cannot switch tasks; a 32-bit protected-mode guest can, through CALL/JMP to
 * a TSS or task gate, IRET with NT = 1, or a task gate in the IDT. Tessel does not emulate
 * hardware task switching (KVM does; Jailhouse treats the exit as fatal for the cell). The
 * guest sees the switch fail, never the vCPU stop (ABI.md section 7): an instruction that
 * would switch tasks raises #GP(0) and does not execute; an event whose IDT entry is a task
 * gate cannot be delivered, so the guest gets a double fault, and a double fault through
 * a task gate a triple fault (the platform resets).
 */
void exit_task_switch(struct percpu *c)
{
	u64 q = vmcs_readl(VMCS_RO_EXIT_QUALIFICATION);
	u32 vec = vmcs_read32(VMCS_RO_IDT_VECTORING_INFO);
	c->exit_qual = q;
	log_warn_rl("task switch to TSS selector %x (source %u) at RIP %llx: not supported, the guest gets a fault",
		    (unsigned)(q & 0xffff), (unsigned)TS_QUAL_SOURCE(q), (unsigned long long)vmcs_readl(VMCS_GUEST_RIP));
	if (TS_QUAL_SOURCE(q) != TS_SOURCE_TASK_GATE || !(vec & INTR_INFO_VALID)) {
		vcpu_inject_gp0(c);
		return;
	}
	if ((vec & INTR_TYPE_MASK) == INTR_TYPE_HW_EXCEPTION && (vec & INTR_VECTOR_MASK) == VEC_DF) {
		exit_triple_fault(c);
		return;
	}
	vcpu_inject_exception(c, VEC_DF, true, 0);
}

void exit_vmx_insn(struct percpu *c)
{
	vcpu_inject_ud(c);
}
