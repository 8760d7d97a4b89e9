/*
 * EPT violations (reason 48) and misconfigurations (49).
 *
 * The hypervisor's region is mapped to the guest as a read-only page of 0xFF bytes
 * (mm/ept.c), so reads see 0xFF and a write lands here: it is discarded by decoding the
 * writing instruction and moving RIP past it (ABI.md section 6). The VM-exit
 * instruction-length field is not defined for EPT violations (SDM 27.2.5), hence the
 * decoder. Any other violation is a hypervisor bug or an unsupported access: it is
 * diagnosed on the log and the vCPU stops; never silent.
 */
#include <hw.h>
#include <arch/cpu.h>
#include <arch/msr.h>
#include <arch/vmx.h>
#include "exit.h"
#include "insn.h"
#include "log.h"
#include "mm/guest_mem.h"
#include "mm/memmap.h"
#include "spp/spp.h"
#include "stats.h"
#include "vapic.h"
#include "vcpu.h"
#include "vmcs.h"

void vcpu_guest_paging(struct guest_paging *p)
{
	p->cr0 = vmcs_readl(VMCS_GUEST_CR0);
	p->cr3 = vmcs_readl(VMCS_GUEST_CR3);
	p->cr4 = vmcs_readl(VMCS_GUEST_CR4);
	p->efer = vmcs_read64(VMCS_GUEST_IA32_EFER);
	if ((p->cr0 & CR0_PG) && (p->cr4 & CR4_PAE) && !(p->efer & EFER_LMA)) {
		p->pdpte[0] = vmcs_read64(VMCS_GUEST_PDPTE0);
		p->pdpte[1] = vmcs_read64(VMCS_GUEST_PDPTE1);
		p->pdpte[2] = vmcs_read64(VMCS_GUEST_PDPTE2);
		p->pdpte[3] = vmcs_read64(VMCS_GUEST_PDPTE3);
	}
}

static enum insn_mode vcpu_insn_mode(void)
{
	if (vcpu_long_mode())
		return INSN_MODE_64;
	u32 cs_ar = vmcs_read32(VMCS_GUEST_CS_AR);
	if (!(vmcs_readl(VMCS_GUEST_CR0) & CR0_PE) || (vmcs_readl(VMCS_GUEST_RFLAGS) & RFLAGS_VM))
		return INSN_MODE_16;
	return (cs_ar & SEG_AR_DB) ? INSN_MODE_32 : INSN_MODE_16;
}

/* Decode the instruction at the guest's CS:RIP. 0 or a negative errno. */
int vcpu_decode_current(struct insn *in)
{
	struct guest_paging p;
	vcpu_guest_paging(&p);
	enum insn_mode mode = vcpu_insn_mode();
	u64 rip = vmcs_readl(VMCS_GUEST_RIP);
	u64 la = mode == INSN_MODE_64 ? rip : (u32)(vmcs_readl(VMCS_GUEST_CS_BASE) + rip);
	u8 bytes[INSN_MAX_LEN];
	u32 access = GACC_FETCH | (vcpu_cpl() == 3 ? GACC_USER : 0);
	/* The instruction may end on the next page; take what is fetchable. */
	size_t first = MIN((size_t)INSN_MAX_LEN, (size_t)(PAGE_SIZE - (la & (PAGE_SIZE - 1))));
	u32 pfec;
	u64 fault_la;
	if (guest_read_linear(&p, la, bytes, first, access, &pfec, &fault_la))
		return -EFAULT;
	size_t avail = first;
	if (first < INSN_MAX_LEN &&
	    !guest_read_linear(&p, la + first, bytes + first, INSN_MAX_LEN - first, access, &pfec, &fault_la))
		avail = INSN_MAX_LEN;
	return insn_decode(in, bytes, avail, mode) ? -EINVAL : 0;
}

void exit_ept_violation(struct percpu *c)
{
	u64 q = vmcs_readl(VMCS_RO_EXIT_QUALIFICATION);
	u64 gpa = vmcs_read64(VMCS_RO_GUEST_PHYS_ADDR);
	c->exit_qual = q;
	stat_inc(STAT_EPT_VIOLATIONS);
	/* SDM 27.2.3: NMI unblocking due to IRET while the violation happened. */
	if ((q & EPT_QUAL_NMI_UNBLOCK) && !(vmcs_read32(VMCS_RO_IDT_VECTORING_INFO) & INTR_INFO_VALID))
		vmcs_write32(VMCS_GUEST_INTERRUPTIBILITY, vmcs_read32(VMCS_GUEST_INTERRUPTIBILITY) | GUEST_INTR_BLOCK_NMI);
	if ((q & EPT_QUAL_WRITE) && vapic_handle_ept_write(c, gpa))
		return;
	if (spp_handle_ept_violation(c, gpa, q))
		return;
	/* [mem helper] A merge back into a large leaf had this range unlinked, or finished
	 * since the access (mm/ept.h ept_try_merge): the access is simply retried. */
	if (spp.ept && ept_violation_stale(spp.ept, gpa, q & 7) /* bits 2:0 = R W X */)
		return;

	if ((q & EPT_QUAL_WRITE) && memmap_in_hv(gpa, 1)) {
		struct insn in;
		if (vcpu_decode_current(&in)) {
			log_warn("write to hypervisor memory at %llx by an undecodable instruction at %llx: #UD",
				 (unsigned long long)gpa, (unsigned long long)vmcs_readl(VMCS_GUEST_RIP));
			vcpu_inject_ud(c);
			return;
		}
		log_debug("discarded a write to hypervisor memory at %llx", (unsigned long long)gpa);
		vcpu_skip_bytes(c, in.len);
		return;
	}
	log_error("EPT violation: GPA %llx, qualification %llx (%s%s%s), RIP %llx",
		  (unsigned long long)gpa, (unsigned long long)q, (q & EPT_QUAL_READ) ? "read " : "",
		  (q & EPT_QUAL_WRITE) ? "write " : "", (q & EPT_QUAL_FETCH) ? "fetch" : "",
		  (unsigned long long)vmcs_readl(VMCS_GUEST_RIP));
	vcpu_stop(c, "EPT violation outside the hypervisor's region");
}

void exit_ept_misconfig(struct percpu *c)
{
	u64 gpa = vmcs_read64(VMCS_RO_GUEST_PHYS_ADDR);
	log_error("EPT misconfiguration at GPA %llx: the hypervisor built a bad EPT entry",
		  (unsigned long long)gpa);
	vcpu_stop(c, "EPT misconfiguration");
}
