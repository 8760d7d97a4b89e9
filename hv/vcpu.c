/* Guest register access, RIP advance and event injection for exit handlers. */
#include <hw.h>
#include <arch/cpu.h>
#include <arch/msr.h>
#include <arch/vmx.h>
#include "log.h"
#include "panic.h"
#include "vcpu.h"
#include "emulate.h"
#include "insn.h"
#include "vmcs.h"

u64 vcpu_gpr(struct percpu *c, unsigned reg)
{
	if (reg == GPR_SP)
		return vmcs_readl(VMCS_GUEST_RSP);
	return c->regs->gpr[reg & 15];
}

void vcpu_set_gpr(struct percpu *c, unsigned reg, u64 v)
{
	if (reg == GPR_SP)
		vmcs_writel(VMCS_GUEST_RSP, v);
	else
		c->regs->gpr[reg & 15] = v;
}

/*
 * The one place an exception or a re-injected event goes into the VM-entry
 * interruption-information field. SDM 26.2.1.3: "deliver error code" must be 0 when
 * "unrestricted guest" is 1 and guest CR0.PE is 0 (real mode pushes no error code, SDM
 * 20.1.4); a set bit would make the VM entry itself fail. Without unrestricted guest,
 * CR0.PE is always 1 (the CR0 fixed bits), so testing PE alone is the same rule.
 */
/* Fault-class exceptions (SDM Vol. 3A Table 6-1): #DE #BR #UD #NM #TS #NP #SS #GP #PF #MF
 * #AC #XM #VE #CP. #DB is a fault or a trap by cause, #BP and #OF are traps, #DF and #MC aborts. */
#define FAULT_VECTORS ((1U << 0) | (1U << 5) | (1U << 6) | (1U << 7) | (1U << 10) | (1U << 11) | \
		       (1U << 12) | (1U << 13) | (1U << 14) | (1U << 16) | (1U << 17) | (1U << 19) | \
		       (1U << 20) | (1U << 21))

void vcpu_inject_event(struct percpu *c, u32 info, u32 error)
{
	if ((info & INTR_INFO_DELIVER_CODE) && !(vmcs_readl(VMCS_GUEST_CR0) & CR0_PE))
		info &= ~INTR_INFO_DELIVER_CODE;
	/* The processor delivers a fault with RF = 1 in the RFLAGS image it pushes (SDM Vol. 3A
	 * 17.3.1.1), so a guest's handler returns past an instruction breakpoint at the faulting
	 * instruction; VM entry pushes the guest RFLAGS field as it is (SDM 26.6.1.2). */
	if ((info & INTR_TYPE_MASK) == INTR_TYPE_HW_EXCEPTION && ((FAULT_VECTORS >> (info & 31)) & 1) &&
	    (info & INTR_VECTOR_MASK) < 32)
		vmcs_writel(VMCS_GUEST_RFLAGS, vmcs_readl(VMCS_GUEST_RFLAGS) | RFLAGS_RF);
	if (info & INTR_INFO_DELIVER_CODE)
		vmcs_write32(VMCS_CTRL_ENTRY_EXC_ERROR_CODE, error);
	vmcs_write32(VMCS_CTRL_ENTRY_INTR_INFO, info);
	c->event_injected = true;
}

void vcpu_inject_exception(struct percpu *c, u8 vector, bool has_error, u32 error)
{
	u32 info = INTR_INFO_VALID | INTR_TYPE_HW_EXCEPTION | vector;
	vcpu_inject_event(c, has_error ? info | INTR_INFO_DELIVER_CODE : info, error);
}

u64 vcpu_rip_wrap(u64 rip)
{
	if (vcpu_long_mode())
		return rip;
	return (vmcs_read32(VMCS_GUEST_CS_AR) & SEG_AR_DB) ? (u32)rip : (rip & 0xffff);
}

bool vcpu_inject_emu_fault(struct percpu *c, int status)
{
	if (status == -EINVAL)
		vcpu_inject_ud(c);
	else if (status == -EMU_GP)
		vcpu_inject_gp0(c);
	else if (status == -EMU_NM)
		vcpu_inject_exception(c, VEC_NM, false, 0);
	else
		return false;
	return true;
}

u64 vcpu_guest_cr0(const struct percpu *c)
{
	return (vmcs_readl(VMCS_GUEST_CR0) & ~c->cr0_guest_mask) |
	       (vmcs_readl(VMCS_CTRL_CR0_READ_SHADOW) & c->cr0_guest_mask);
}

u64 vcpu_guest_cr4(const struct percpu *c)
{
	return (vmcs_readl(VMCS_GUEST_CR4) & ~c->cr4_guest_mask) |
	       (vmcs_readl(VMCS_CTRL_CR4_READ_SHADOW) & c->cr4_guest_mask);
}

__noreturn void vcpu_stop(struct percpu *c, const char *why)
{
	c->halted = true;
	log_error("stopping this vCPU: %s (exit reason %u)", why, c->exit_reason);
	vmcs_dump();
	cpu_stop();
}

/* Guest registers for the instruction emulator, and back once it has run. */
static void emu_load(struct percpu *c, struct emu_regs *r, bool long_mode, bool fs_gs, bool simd)
{
	for (unsigned i = 0; i < 16; i++)
		r->gpr[i] = c->regs->gpr[i];
	r->gpr[GPR_SP] = vmcs_readl(VMCS_GUEST_RSP);
	r->rflags = vmcs_readl(VMCS_GUEST_RFLAGS);
	r->loaded_rsp = r->gpr[GPR_SP];
	r->loaded_rflags = r->rflags;
	/* In 64-bit mode only FS and GS have bases (SDM 3.2.4): skip the other four VMREADs. */
	if (!long_mode) {
		r->seg_base[0] = vmcs_readl(VMCS_GUEST_ES_BASE);
		r->seg_base[1] = vmcs_readl(VMCS_GUEST_CS_BASE);
		r->seg_base[2] = vmcs_readl(VMCS_GUEST_SS_BASE);
		r->seg_base[3] = vmcs_readl(VMCS_GUEST_DS_BASE);
		r->stack_size = (vmcs_read32(VMCS_GUEST_SS_AR) & SEG_AR_DB) ? 4 : 2; /* ignored in 64-bit mode */
	}
	if (!long_mode || fs_gs) {
		r->seg_base[4] = vmcs_readl(VMCS_GUEST_FS_BASE);
		r->seg_base[5] = vmcs_readl(VMCS_GUEST_GS_BASE);
	}
	if (simd) {
		r->cr0 = vmcs_readl(VMCS_GUEST_CR0);
		r->cr4 = vmcs_readl(VMCS_GUEST_CR4);
		/* XCR0 is the guest's while the hypervisor runs (hv/exit_misc.c never changes it);
		 * XGETBV needs CR4.OSXSAVE, which the host has whenever the guest can have it. */
		r->xcr0 = (r->cr4 & CR4_OSXSAVE) ? xgetbv(0) : 0;
	}
}

/* Guest registers for the instruction emulator, and back once it has run. */
void vcpu_emu_load(struct percpu *c, struct emu_regs *r)
{
	emu_load(c, r, vcpu_long_mode(), true, true);
	r->rip = vmcs_readl(VMCS_GUEST_RIP);
}

void vcpu_emu_load_for(struct percpu *c, struct emu_regs *r, const struct insn *in, u64 rip)
{
	bool long_mode = in->mode == INSN_MODE_64; /* decoded in 64-bit mode: EFER.LMA and CS.L */
	emu_load(c, r, long_mode, in->seg == INSN_SEG_FS || in->seg == INSN_SEG_GS,
		 in->map != 0 || in->vex || in->evex);
	r->rip = rip;
}

void vcpu_emu_commit_gprs(struct percpu *c, const struct emu_regs *r)
{
	for (unsigned i = 0; i < 16; i++)
		if (i != GPR_SP)
			c->regs->gpr[i] = r->gpr[i];
	if (r->gpr[GPR_SP] != r->loaded_rsp) /* most stores leave RSP alone: no VMWRITE */
		vmcs_writel(VMCS_GUEST_RSP, r->gpr[GPR_SP]);
}

void vcpu_emu_commit(struct percpu *c, const struct emu_regs *r, u64 old_rip)
{
	vcpu_emu_commit_gprs(c, r);
	if (r->rflags != r->loaded_rflags)
		vmcs_writel(VMCS_GUEST_RFLAGS, r->rflags);
	/* A REP string instruction that is not finished leaves RIP on itself: it continues at
	 * the next entry, and is not complete (no STI-blocking end, no single-step trap). */
	if (r->rip == old_rip)
		return;
	/* The instruction completed: same RIP/STI/TF rules as a skipped instruction. */
	vcpu_skip_bytes(c, r->rip - old_rip);
}

