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

__noreturn void vcpu_stop(struct percpu *c, const char *why)
{
	c->halted = true;
	log_error("stopping this vCPU: %s (exit reason %u)", why, c->exit_reason);
	vmcs_dump();
	cpu_stop();
}
