/*
 * Control-register exits (reason 28, qualification Table 27-3). The hypervisor owns the
 * CR0/CR4 bits VMX fixes (masks set in hv/vmx.c) and the bits the guest pinned (hv/pin.c,
 * ABI 1.2); a guest write that changes an owned bit exits here. The guest's view of an owned
 * bit lives in the read shadow; the real register keeps the fixed bits. CR4.VMXE cannot be
 * set by the guest (#GP, as on a processor without VMX). A write that would clear an armed
 * pinned bit takes effect with that bit kept set, and is reported (pin_report).
 */
#include <hw.h>
#include <arch/cpu.h>
#include <arch/msr.h>
#include "exit.h"
#include "mm/guest_mem.h"
#include "pin.h"
#include "vcpu.h"
#include "vmcs.h"
#include "vmx_caps.h"

static void flush_guest_tlb(struct percpu *c)
{
	if (vmcs_read32(VMCS_CTRL_PROC_BASED2) & PROC2_ENABLE_VPID)
		invvpid(INVVPID_SINGLE_CONTEXT, (u16)(c->index + 1));
}

/* PAE paging outside IA-32e mode: a MOV to CR0 or CR4 that enters it or changes how it
 * translates loads the four PDPTEs from CR3, and raises #GP(0), changing nothing, when a
 * present one has a reserved bit set (SDM Vol. 3A 4.4.1). With EPT, VM entry takes the
 * PDPTEs from the VMCS (SDM 26.3.2.4), so the hypervisor loads them where it emulates the
 * MOV. Reserved: bits 2:1, 8:5 and MAXPHYADDR..63 (SDM Table 4-8). */
static bool read_pdptes(u64 cr3, u64 pdpte[4])
{
	u64 rsvd = 0x1e6ULL | ~((1ULL << vmx_caps.phys_bits) - 1);
	if (guest_read_phys(cr3 & 0xffffffe0ULL, pdpte, 4 * sizeof(u64)))
		return false;
	for (unsigned i = 0; i < 4; i++)
		if ((pdpte[i] & 1) && (pdpte[i] & rsvd))
			return false;
	return true;
}

static void write_pdptes(const u64 pdpte[4])
{
	vmcs_write64(VMCS_GUEST_PDPTE0, pdpte[0]);
	vmcs_write64(VMCS_GUEST_PDPTE1, pdpte[1]);
	vmcs_write64(VMCS_GUEST_PDPTE2, pdpte[2]);
	vmcs_write64(VMCS_GUEST_PDPTE3, pdpte[3]);
}

/* Bits whose change reloads the PDPTEs in PAE paging (SDM 4.4.1). */
#define PDPTE_CR0_BITS (CR0_PG | CR0_CD | CR0_NW)
#define PDPTE_CR4_BITS (CR4_PAE | CR4_PGE | CR4_PSE | CR4_SMEP)

static bool pae_paging(u64 cr0, u64 cr4, u64 efer)
{
	return (cr0 & CR0_PG) && (cr4 & CR4_PAE) && !(efer & EFER_LMA);
}

static bool guest_set_cr0(struct percpu *c, u64 want)
{
	/* Pinning first: the processor sees the value with the armed bits kept (as Linux's own
	 * pinning does), and the architectural checks below apply to that value. */
	u64 val = pin_cr_filter(0, vcpu_guest_cr0(c), want);
	if ((val >> 32) || ((val & CR0_PG) && !(val & CR0_PE)) || ((val & CR0_NW) && !(val & CR0_CD)))
		return false;
	u64 old = vmcs_readl(VMCS_GUEST_CR0), oldv = vcpu_guest_cr0(c);
	u64 efer = vmcs_read64(VMCS_GUEST_IA32_EFER);
	u64 cr4 = vmcs_readl(VMCS_GUEST_CR4);
	bool pg_on = (val & CR0_PG) && !(old & CR0_PG), pg_off = !(val & CR0_PG) && (old & CR0_PG);
	/* SDM Vol. 2B MOV CR: #GP(0) for clearing PG in 64-bit mode (leaving IA-32e mode
	 * goes through compatibility mode) and for clearing WP while CR4.CET is set. */
	if (pg_off && (efer & EFER_LMA) && (vmcs_read32(VMCS_GUEST_CS_AR) & SEG_AR_L))
		return false;
	if (!(val & CR0_WP) && (cr4 & CR4_CET))
		return false;
	if (pg_on && (efer & EFER_LME)) {
		if (!(cr4 & CR4_PAE))
			return false;
		efer |= EFER_LMA;
	} else if (pg_off && (efer & EFER_LMA)) {
		efer &= ~EFER_LMA;
	}
	u64 pdpte[4];
	bool load = pae_paging(val, cr4, efer) && ((val ^ oldv) & PDPTE_CR0_BITS);
	if (load && !read_pdptes(vmcs_readl(VMCS_GUEST_CR3), pdpte))
		return false;
	u64 real = (val | (vmx_caps.cr0_fixed0 & ~(CR0_PE | CR0_PG))) & vmx_caps.cr0_fixed1;
	vmcs_writel(VMCS_GUEST_CR0, real);
	vmcs_writel(VMCS_CTRL_CR0_READ_SHADOW, val);
	if (load)
		write_pdptes(pdpte);
	if (pg_on || pg_off) {
		vmcs_write64(VMCS_GUEST_IA32_EFER, efer);
		u32 entry = vmcs_read32(VMCS_CTRL_ENTRY);
		entry = (efer & EFER_LMA) ? entry | ENTRY_IA32E_MODE_GUEST : entry & ~ENTRY_IA32E_MODE_GUEST;
		vmcs_write32(VMCS_CTRL_ENTRY, entry);
	}
	flush_guest_tlb(c);
	if (val != want)
		pin_report(c, 0, want);
	return true;
}

static bool guest_set_cr4(struct percpu *c, u64 want)
{
	u64 allowed = vmx_caps.cr4_fixed1 & ~CR4_VMXE;
	u64 old = vcpu_guest_cr4(c), cr0 = vcpu_guest_cr0(c), efer = vmcs_read64(VMCS_GUEST_IA32_EFER);
	u64 val = pin_cr_filter(4, old, want); /* as for CR0 */
	if (val & ~allowed)
		return false;
	/* SDM Vol. 2B MOV CR, #GP(0): clearing PAE in IA-32e mode; changing LA57 in IA-32e
	 * mode; setting PCIDE outside IA-32e mode or with CR3[11:0] != 0; setting CET while
	 * CR0.WP is clear. */
	if (efer & EFER_LMA) {
		if (!(val & CR4_PAE) || ((val ^ old) & CR4_LA57))
			return false;
	}
	if ((val & CR4_PCIDE) && !(old & CR4_PCIDE) &&
	    (!(efer & EFER_LMA) || (vmcs_readl(VMCS_GUEST_CR3) & 0xfff)))
		return false;
	if ((val & CR4_CET) && !(cr0 & CR0_WP))
		return false;
	u64 pdpte[4];
	bool load = pae_paging(cr0, val, efer) && ((val ^ old) & PDPTE_CR4_BITS);
	if (load && !read_pdptes(vmcs_readl(VMCS_GUEST_CR3), pdpte))
		return false;
	vmcs_writel(VMCS_GUEST_CR4, val | vmx_caps.cr4_fixed0 | CR4_VMXE);
	vmcs_writel(VMCS_CTRL_CR4_READ_SHADOW, val);
	if (load)
		write_pdptes(pdpte);
	flush_guest_tlb(c);
	if (val != want)
		pin_report(c, 4, want);
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
	/* CLTS and LMSW change part of CR0; the rest is the guest's view, not the read shadow,
	 * which is stale for the bits the guest owns (it changes them without an exit). */
	case 2: /* CLTS */
		ok = guest_set_cr0(c, vcpu_guest_cr0(c) & ~CR0_TS);
		break;
	case 3: { /* LMSW: loads bits 3:0, cannot clear PE (SDM Vol. 2A LMSW) */
		u64 cur = vcpu_guest_cr0(c);
		u64 src = CR_QUAL_LMSW_SRC(q) & 0xf;
		ok = guest_set_cr0(c, (cur & ~0xeULL) | src | (cur & CR0_PE));
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
