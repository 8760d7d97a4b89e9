/* Guest register access, RIP advance and event injection for exit handlers. */
#include <arch/cpu.h>
#include <arch/vmx.h>
#include "log.h"
#include "panic.h"
#include "vcpu.h"
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

#define PENDING_DBG_BS (1ULL << 14) /* SDM Table 24-4: single-step pending */

void vcpu_skip_bytes(struct percpu *c, u64 len)
{
	(void)c;
	vmcs_writel(VMCS_GUEST_RIP, vmcs_readl(VMCS_GUEST_RIP) + len);
	u32 intr = vmcs_read32(VMCS_GUEST_INTERRUPTIBILITY);
	if (intr & (GUEST_INTR_BLOCK_STI | GUEST_INTR_BLOCK_MOV_SS))
		vmcs_write32(VMCS_GUEST_INTERRUPTIBILITY, intr & ~(GUEST_INTR_BLOCK_STI | GUEST_INTR_BLOCK_MOV_SS));
	if (vmcs_readl(VMCS_GUEST_RFLAGS) & RFLAGS_TF)
		vmcs_writel(VMCS_GUEST_PENDING_DBG_EXC, vmcs_readl(VMCS_GUEST_PENDING_DBG_EXC) | PENDING_DBG_BS);
}

void vcpu_skip_insn(struct percpu *c)
{
	vcpu_skip_bytes(c, vmcs_read32(VMCS_RO_EXIT_INSN_LEN));
}

void vcpu_inject_exception(struct percpu *c, u8 vector, bool has_error, u32 error)
{
	u32 info = INTR_INFO_VALID | INTR_TYPE_HW_EXCEPTION | vector;
	if (has_error) {
		info |= INTR_INFO_DELIVER_CODE;
		vmcs_write32(VMCS_CTRL_ENTRY_EXC_ERROR_CODE, error);
	}
	vmcs_write32(VMCS_CTRL_ENTRY_INTR_INFO, info);
	c->event_injected = true;
}

unsigned vcpu_cpl(void)
{
	if (vmcs_readl(VMCS_GUEST_RFLAGS) & RFLAGS_VM)
		return 3;
	if (!(vmcs_readl(VMCS_GUEST_CR0) & CR0_PE))
		return 0;
	return SEG_AR_DPL(vmcs_read32(VMCS_GUEST_SS_AR));
}

__noreturn void vcpu_stop(struct percpu *c, const char *why)
{
	c->halted = true;
	log_error("stopping this vCPU: %s (exit reason %u)", why, c->exit_reason);
	vmcs_dump();
	cpu_stop();
}
