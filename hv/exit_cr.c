/*
 * Control-register exits (reason 28, qualification Table 27-3). Only CR0/CR4 bits VMX
 * fixes are owned by the hypervisor (masks set in hv/vmx.c); a guest write that touches
 * them exits here. The guest's view lives in the read shadow; the real register keeps the
 * fixed bits. CR4.VMXE cannot be set by the guest (#GP, as on a processor without VMX).
 */
#include <hw.h>
#include <arch/cpu.h>
#include <arch/msr.h>
#include "exit.h"
#include "vcpu.h"
#include "vmcs.h"
#include "vmx_caps.h"

static void flush_guest_tlb(struct percpu *c)
{
	if (vmcs_read32(VMCS_CTRL_PROC_BASED2) & PROC2_ENABLE_VPID)
		invvpid(INVVPID_SINGLE_CONTEXT, (u16)(c->index + 1));
}

static bool guest_set_cr0(struct percpu *c, u64 val)
{
	if ((val >> 32) || ((val & CR0_PG) && !(val & CR0_PE)) || ((val & CR0_NW) && !(val & CR0_CD)))
		return false;
	u64 old = vmcs_readl(VMCS_GUEST_CR0);
	u64 efer = vmcs_read64(VMCS_GUEST_IA32_EFER);
	u64 cr4 = vmcs_readl(VMCS_GUEST_CR4);
	bool pg_on = (val & CR0_PG) && !(old & CR0_PG), pg_off = !(val & CR0_PG) && (old & CR0_PG);
	if (pg_on && (efer & EFER_LME)) {
		if (!(cr4 & CR4_PAE))
			return false;
		efer |= EFER_LMA;
	} else if (pg_off && (efer & EFER_LMA)) {
		efer &= ~EFER_LMA;
	}
	u64 real = (val | (vmx_caps.cr0_fixed0 & ~(CR0_PE | CR0_PG))) & vmx_caps.cr0_fixed1;
	vmcs_writel(VMCS_GUEST_CR0, real);
	vmcs_writel(VMCS_CTRL_CR0_READ_SHADOW, val);
	if (pg_on || pg_off) {
		vmcs_write64(VMCS_GUEST_IA32_EFER, efer);
		u32 entry = vmcs_read32(VMCS_CTRL_ENTRY);
		entry = (efer & EFER_LMA) ? entry | ENTRY_IA32E_MODE_GUEST : entry & ~ENTRY_IA32E_MODE_GUEST;
		vmcs_write32(VMCS_CTRL_ENTRY, entry);
	}
	flush_guest_tlb(c);
	return true;
}

static bool guest_set_cr4(struct percpu *c, u64 val)
{
	u64 allowed = vmx_caps.cr4_fixed1 & ~CR4_VMXE;
	if (val & ~allowed)
		return false;
	vmcs_writel(VMCS_GUEST_CR4, val | vmx_caps.cr4_fixed0 | CR4_VMXE);
	vmcs_writel(VMCS_CTRL_CR4_READ_SHADOW, val);
	flush_guest_tlb(c);
	return true;
}

void exit_cr_access(struct percpu *c)
{
	u64 q = vmcs_readl(VMCS_RO_EXIT_QUALIFICATION);
	unsigned cr = CR_QUAL_NUM(q), type = CR_QUAL_TYPE(q);
	bool ok;
	c->exit_qual = q;
	switch (type) {
	case 0: /* MOV to CR */
		if (cr == 0)
			ok = guest_set_cr0(c, vcpu_gpr(c, CR_QUAL_GPR(q)));
		else if (cr == 4)
			ok = guest_set_cr4(c, vcpu_gpr(c, CR_QUAL_GPR(q)));
		else
			vcpu_stop(c, "unexpected MOV to control register");
		break;
	case 2: /* CLTS */
		ok = guest_set_cr0(c, vmcs_readl(VMCS_CTRL_CR0_READ_SHADOW) & ~CR0_TS);
		break;
	case 3: { /* LMSW: loads bits 3:0, cannot clear PE */
		u64 shadow = vmcs_readl(VMCS_CTRL_CR0_READ_SHADOW);
		u64 src = CR_QUAL_LMSW_SRC(q) & 0xf;
		ok = guest_set_cr0(c, (shadow & ~0xeULL) | src | (shadow & CR0_PE));
		break;
	}
	default:
		vcpu_stop(c, "unexpected MOV from control register");
	}
	if (!ok) {
		vcpu_inject_gp0(c);
		return;
	}
	vcpu_skip_insn(c);
}
