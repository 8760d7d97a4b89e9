/*
 * EPT violations (reason 48) and misconfigurations (49).
 *
 * The hypervisor's region is mapped to the guest as a read-only page of 0xFF bytes
 * (mm/ept.c), so reads see 0xFF and a write lands here: it is discarded by decoding the
 * writing instruction and moving RIP past it (ABI.md section 6). The VM-exit
 * instruction-length field is not defined for EPT violations (SDM 27.2.5), hence the
 * decoder. A write by event delivery (an IDT or stack in the region) gives a double
 * fault instead. The processor's accessed/dirty-flag writes to guest paging structures are
 * handled on their own (exit_paging_write). Any other violation is a hypervisor bug or an
 * unsupported access: it is diagnosed on the log and the vCPU stops; never silent.
 */
#include <hw.h>
#include <arch/cpu.h>
#include <arch/msr.h>
#include <arch/vmx.h>
#include "emulate.h"
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
#include "vmx_caps.h"

/* Each CPU's last guest walk (mm/guest_mem.h struct walk_cache: verified entry by entry). */
static struct walk_cache walk_caches[TESSEL_MAX_CPUS];

void vcpu_guest_paging(struct guest_paging *p)
{
	p->wc = &walk_caches[this_cpu()->index];
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

bool vcpu_guest_paging_fetch(struct guest_paging *p, u64 efer)
{
	if (!(efer & EFER_LMA)) {
		vcpu_guest_paging(p);
		return false;
	}
	p->wc = &walk_caches[this_cpu()->index];
	p->efer = efer;
	p->cr3 = vmcs_readl(VMCS_GUEST_CR3);
	/* IA-32e mode has CR4.PAE = 1; of CR4 the walk only looks at LA57, which is 0 wherever
	 * VMX fixes it to 0 (IA32_VMX_CR4_FIXED1, SDM A.8: VM entry refuses a guest CR4 with it). */
	p->cr4 = (vmx_caps.cr4_fixed1 & CR4_LA57) ? vmcs_readl(VMCS_GUEST_CR4) : CR4_PAE;
	/* IA-32e mode has CR0.PG = PE = 1; WP is left out (0) and says nothing for a fetch. */
	p->cr0 = CR0_PE | CR0_PG;
	return true;
}

enum insn_mode vcpu_insn_mode(void)
{
	if (vcpu_long_mode())
		return INSN_MODE_64;
	u32 cs_ar = vmcs_read32(VMCS_GUEST_CS_AR);
	if (!(vmcs_readl(VMCS_GUEST_CR0) & CR0_PE) || (vmcs_readl(VMCS_GUEST_RFLAGS) & RFLAGS_VM))
		return INSN_MODE_16;
	return (cs_ar & SEG_AR_DB) ? INSN_MODE_32 : INSN_MODE_16;
}

/* The same from paging state the caller read (EFER, CR0): CS and RFLAGS are still read. */
enum insn_mode vcpu_insn_mode_paging(const struct guest_paging *p)
{
	return vcpu_insn_mode_cs(p, vmcs_read32(VMCS_GUEST_CS_AR));
}

/* The same with CS's access rights too; RFLAGS is read outside IA-32e mode only. */
enum insn_mode vcpu_insn_mode_cs(const struct guest_paging *p, u32 cs_ar)
{
	if ((p->efer & EFER_LMA) && (cs_ar & SEG_AR_L))
		return INSN_MODE_64;
	if (!(p->cr0 & CR0_PE) || (vmcs_readl(VMCS_GUEST_RFLAGS) & RFLAGS_VM))
		return INSN_MODE_16;
	return (cs_ar & SEG_AR_DB) ? INSN_MODE_32 : INSN_MODE_16;
}

/*
 * The last instruction each CPU decoded, keyed by its bytes and mode: the decoder is a pure
 * function of (bytes, mode), so when the bytes just fetched at RIP begin with the cached
 * instruction's bytes the cached decoding is exactly what decoding them again would give.
 * The key is what was fetched now, through the guest's current translation, so a changed
 * CR3, a remapped page, code rewritten by another vCPU or a mode change can only make it
 * miss, never return another instruction's decoding. Only successful decodings are kept.
 */
struct insn_cache {
	u8 bytes[INSN_MAX_LEN];
	u8 mode;
	struct insn in;
};
static struct insn_cache insn_cache[TESSEL_MAX_CPUS];

static bool insn_cache_hit(const struct insn_cache *ic, const u8 *bytes, size_t avail, enum insn_mode mode)
{
	unsigned len = ic->in.len;
	if (ic->mode != mode || !len || len > avail)
		return false;
	/* The first len bytes, as two overlapping 8-byte words (bytes 0-7 and 7-14), masked. */
	u64 a, b;
	__builtin_memcpy(&a, bytes, 8);
	__builtin_memcpy(&b, ic->bytes, 8);
	u64 mask = len >= 8 ? ~0ULL : (1ULL << (8 * len)) - 1;
	if ((a ^ b) & mask)
		return false;
	if (len <= 8)
		return true;
	__builtin_memcpy(&a, bytes + INSN_MAX_LEN - 8, 8);
	__builtin_memcpy(&b, ic->bytes + INSN_MAX_LEN - 8, 8);
	mask = len - 7 >= 8 ? ~0ULL : (1ULL << (8 * (len - 7))) - 1; /* bytes 7 .. len-1 */
	return !((a ^ b) & mask);
}

int vcpu_decode_at(struct insn *in, const struct guest_paging *p, enum insn_mode mode, u64 rip, unsigned cpl)
{
	u64 la = mode == INSN_MODE_64 ? rip : (u32)(vmcs_readl(VMCS_GUEST_CS_BASE) + rip);
	u8 bytes[INSN_MAX_LEN];
	u32 access = GACC_FETCH | (cpl == 3 ? GACC_USER : 0);
	/* The instruction may end on the next page; take what is fetchable. */
	size_t first = MIN((size_t)INSN_MAX_LEN, (size_t)(PAGE_SIZE - (la & (PAGE_SIZE - 1))));
	u32 pfec;
	u64 fault_la, gpa;
	size_t avail = first;
	if (first == INSN_MAX_LEN && !guest_walk(p, la, access, &gpa, &pfec) && memmap_is_ram(gpa, INSN_MAX_LEN)) {
		/* The usual case: all 15 bytes on one page of RAM. Two overlapping 8-byte loads. */
		const u8 *src = hpa_to_ptr(hpa(gpa));
		u64 lo, hi;
		__builtin_memcpy(&lo, src, 8);
		__builtin_memcpy(&hi, src + INSN_MAX_LEN - 8, 8);
		__builtin_memcpy(bytes, &lo, 8);
		__builtin_memcpy(bytes + INSN_MAX_LEN - 8, &hi, 8);
		goto fetched;
	}
	if (guest_read_linear(p, la, bytes, first, access, &pfec, &fault_la))
		return -EFAULT;
	if (first < INSN_MAX_LEN &&
	    !guest_read_linear(p, la + first, bytes + first, INSN_MAX_LEN - first, access, &pfec, &fault_la))
		avail = INSN_MAX_LEN;
	for (size_t i = avail; i < INSN_MAX_LEN; i++)
		bytes[i] = 0; /* insn_cache_hit reads whole words (and masks these off) */
fetched:;
	struct insn_cache *ic = &insn_cache[this_cpu()->index];
	if (insn_cache_hit(ic, bytes, avail, mode)) {
		*in = ic->in;
		return 0;
	}
	if (insn_decode(in, bytes, avail, mode))
		return -EINVAL;
	for (unsigned i = 0; i < in->len; i++)
		ic->bytes[i] = bytes[i];
	ic->mode = (u8)mode;
	ic->in = *in;
	return 0;
}

/* Decode the instruction at the guest's CS:RIP. 0 or a negative errno. */
int vcpu_decode_current(struct insn *in)
{
	struct guest_paging p;
	vcpu_guest_paging(&p);
	return vcpu_decode_at(in, &p, vcpu_insn_mode(), vmcs_readl(VMCS_GUEST_RIP), vcpu_cpl());
}

/* ---- the processor's own writes to guest paging structures ---- */

#define PTE_P  (1ULL << 0)
#define PTE_PS (1ULL << 7)
#define PTE_A  (1ULL << 5)
#define PTE_D  (1ULL << 6)
#define PT_ADDR_64 0x000ffffffffff000ULL

/* Reads one entry of the walk if it is guest RAM (hypervisor memory is not). */
static bool walk_entry(u64 gpa, unsigned size, u64 *e)
{
	if (!memmap_is_ram(gpa, size))
		return false;
	*e = size == 8 ? __atomic_load_n((const u64 *)hpa_to_ptr(hpa(gpa)), __ATOMIC_RELAXED)
		       : __atomic_load_n((const u32 *)hpa_to_ptr(hpa(gpa)), __ATOMIC_RELAXED);
	return true;
}

/*
 * Finds the paging-structure entry at entry_gpa on the guest's walk for gla: its size (4 or
 * 8 bytes) and whether it maps the page (a leaf, the only kind with a dirty flag, SDM
 * 4.8). False if the walk (as the guest's tables are now) does not use that address.
 * PAE PDPTEs are loaded at MOV CR3 and get no accessed-flag writes from walks.
 */
static bool find_walk_entry(const struct guest_paging *p, u64 gla, u64 entry_gpa, unsigned *size, bool *leaf)
{
	u64 e, table;
	int top;
	if (!(p->cr0 & CR0_PG))
		return false;
	if (p->efer & EFER_LMA) {
		top = (p->cr4 & CR4_LA57) ? 5 : 4;
		table = p->cr3 & PT_ADDR_64;
	} else if (p->cr4 & CR4_PAE) {
		u64 pdpte = p->pdpte[(gla >> 30) & 3];
		if (!(pdpte & PTE_P))
			return false;
		top = 2;
		table = pdpte & PT_ADDR_64;
	} else {
		u32 la = (u32)gla;
		u64 a = (p->cr3 & 0xfffff000ULL) + ((la >> 22) & 1023) * 4;
		if (!walk_entry(a, 4, &e) || !(e & PTE_P))
			return false;
		bool big = (e & PTE_PS) && (p->cr4 & CR4_PSE);
		*size = 4;
		if ((entry_gpa & ~3ULL) == a) {
			*leaf = big;
			return true;
		}
		if (big)
			return false;
		*leaf = true;
		return (entry_gpa & ~3ULL) == (e & 0xfffff000ULL) + ((la >> 12) & 1023) * 4;
	}
	*size = 8;
	for (int level = top; level >= 1; level--) {
		u64 a = table + ((gla >> (12 + 9 * (level - 1))) & 511) * 8;
		if (!walk_entry(a, 8, &e) || !(e & PTE_P))
			return false;
		bool is_leaf = level == 1 || (level <= 3 && (e & PTE_PS));
		if ((entry_gpa & ~7ULL) == a) {
			*leaf = is_leaf;
			return true;
		}
		if (is_leaf)
			return false;
		table = e & PT_ADDR_64;
	}
	return false;
}

/* A frame or a paging-structure write by the processor could not land: as on hardware when
 * delivering an event faults, a double fault; when the event was a double fault, a triple
 * fault (SDM 6.15, interrupt 8). */
static void processor_write_failed(struct percpu *c)
{
	u32 vec = vmcs_read32(VMCS_RO_IDT_VECTORING_INFO);
	if ((vec & INTR_INFO_VALID) && (vec & INTR_TYPE_MASK) == INTR_TYPE_HW_EXCEPTION &&
	    (vec & INTR_VECTOR_MASK) == VEC_DF) {
		exit_triple_fault(c);
		return;
	}
	vcpu_inject_exception(c, VEC_DF, true, 0);
}

/*
 * EPT qualification bit 7 = 1, bit 8 = 0 (SDM 28.3.3.2, Table 28-7): the access was to a
 * paging-structure entry during translation, not to the linear address the instruction
 * used. The only writes of that kind are the processor's accessed/dirty-flag updates
 * (SDM 4.8), so nothing of the instruction at RIP has happened yet: it must neither be
 * emulated nor skipped. The hypervisor sets the flag the processor was setting (accessed
 * first; on a leaf already accessed, dirty) and resumes; the instruction then runs
 * natively, exiting again if it needs the dirty flag too. Where that flag may land is
 * decided by the sub-page permissions (spp_paging_write); if it may not, the access cannot
 * complete: a double fault, as for an event frame on protected bytes (ABI.md section 7).
 */
static void exit_paging_write(struct percpu *c, u64 gpa)
{
	struct guest_paging p;
	vcpu_guest_paging(&p);
	u64 gla = vmcs_readl(VMCS_RO_GUEST_LINEAR_ADDR);
	unsigned size;
	bool leaf;
	if (!find_walk_entry(&p, gla, gpa, &size, &leaf)) {
		/* Not on the walk from CR3 as the tables are now: they changed meanwhile (another
		 * vCPU), or the processor walked from a cached paging-structure entry (SDM 4.10.3)
		 * that no longer matches memory. Drop this vCPU's cached translations, so the
		 * access walks again from CR3 instead of exiting here forever. (Without VPID,
		 * every VM entry already does that, SDM 28.3.3.3.) */
		if (vmcs_read32(VMCS_CTRL_PROC_BASED2) & PROC2_ENABLE_VPID)
			invvpid(INVVPID_SINGLE_CONTEXT, (u16)(c->index + 1));
		return;
	}
	u64 ea = gpa & ~(u64)(size - 1), e = 0;
	if (!walk_entry(ea, size, &e))
		return;
	u64 bits = !(e & PTE_A) ? PTE_A : (leaf && !(e & PTE_D)) ? PTE_D : 0;
	if (!bits)
		return; /* set meanwhile: nothing left to write */
	if (spp_paging_write(c, ea, size, (u32)bits, gla))
		return;
	log_debug_rl("accessed/dirty update of the guest paging entry at %llx cannot land: #DF",
		     (unsigned long long)ea);
	processor_write_failed(c);
}

/* A write into the hypervisor's region by the instruction at RIP (ABI.md section 6): the
 * instruction is emulated with its region writes discarded, so it has every other effect it
 * has natively (a PUSH moves RSP, a string op advances its registers) and raises what it
 * raises natively in the guest's state (#UD, #GP, #NM: the emulator checks CR0/CR4/XCR0 for
 * SSE/AVX). An instruction the emulator does not cover, or one that also writes outside the
 * region, is skipped whole: its writes to the region are discarded either way. */
struct region_wctx { struct guest_paging paging; u32 access; bool other; };

static int region_read(void *vctx, u64 la, void *buf, unsigned n)
{
	struct region_wctx *w = vctx;
	u32 pfec;
	u64 fla;
	return guest_read_linear(&w->paging, la, buf, n, w->access, &pfec, &fla) ? -EFAULT : 0;
}

static int region_write(void *vctx, u64 la, const void *buf, unsigned n)
{
	struct region_wctx *w = vctx;
	(void)buf;
	while (n) {
		unsigned chunk = (unsigned)MIN((u64)n, PAGE_SIZE - (la & (PAGE_SIZE - 1)));
		u64 gpa;
		u32 pfec;
		if (guest_walk(&w->paging, la, GACC_WRITE | w->access, &gpa, &pfec) || !memmap_in_hv(gpa, chunk)) {
			w->other = true;
			return -EFAULT;
		}
		la += chunk;
		n -= chunk;
	}
	return 0;
}

static void discard_region_write(struct percpu *c, const struct insn *in)
{
	struct region_wctx w = { .access = vcpu_cpl() == 3 ? GACC_USER : 0 };
	vcpu_guest_paging(&w.paging);
	struct emu_regs regs = { 0 };
	vcpu_emu_load(c, &regs);
	u64 rip = regs.rip;
	struct emu_mem mem = { region_read, region_write, &w };
	int r = emu_write_insn(&regs, in, &mem);
	if (r == 0)
		vcpu_emu_commit(c, &regs, rip);
	else if (!vcpu_inject_emu_fault(c, r))
		vcpu_skip_bytes(c, in->len);
}

void exit_ept_violation(struct percpu *c)
{
	u64 q = vmcs_readl(VMCS_RO_EXIT_QUALIFICATION);
	u64 gpa = vmcs_read64(VMCS_RO_GUEST_PHYS_ADDR);
	c->exit_qual = q;
	stat_inc(STAT_EPT_VIOLATIONS);
	/* SDM 27.2.3: NMI unblocking due to IRET while the violation happened. */
	if ((q & EPT_QUAL_NMI_UNBLOCK) && !(vcpu_idt_vectoring(c) & INTR_INFO_VALID))
		vmcs_write32(VMCS_GUEST_INTERRUPTIBILITY, vmcs_read32(VMCS_GUEST_INTERRUPTIBILITY) | GUEST_INTR_BLOCK_NMI);
	if ((q & EPT_QUAL_WRITE) && (q & EPT_QUAL_GLA_VALID) && !(q & EPT_QUAL_GLA_XLATE)) {
		exit_paging_write(c, gpa);
		return;
	}
	if ((q & EPT_QUAL_WRITE) && (vcpu_idt_vectoring(c) & INTR_INFO_VALID) &&
	    vapic_is_apic_page(gpa)) {
		/* An event frame pushed onto the local APIC's page (a stack pointed there): the
		 * instruction at RIP did not write it, and a frame in APIC registers cannot land. */
		log_debug_rl("event delivery onto the APIC page at %llx: #DF", (unsigned long long)gpa);
		processor_write_failed(c);
		return;
	}
	if ((q & EPT_QUAL_WRITE) && vapic_handle_ept_write(c, gpa))
		return;
	if (spp_handle_ept_violation(c, gpa, q))
		return;
	/* A merge back into a large leaf had this range unlinked, or finished
	 * since the access (mm/ept.h ept_try_merge): the access is simply retried. */
	if (spp.ept && ept_violation_stale(spp.ept, gpa, q & 7) /* bits 2:0 = R W X */)
		return;

	if ((q & EPT_QUAL_WRITE) && memmap_in_hv(gpa, 1)) {
		if (vcpu_idt_vectoring(c) & INTR_INFO_VALID) {
			/* The processor was pushing an event frame (an IDT or stack pointed into the
			 * region), not running the instruction at RIP: nothing to skip, and the frame
			 * cannot land (ABI.md section 7). */
			log_debug_rl("event delivery onto hypervisor memory at %llx: #DF", (unsigned long long)gpa);
			processor_write_failed(c);
			return;
		}
		struct insn in;
		if (vcpu_decode_current(&in)) {
			log_warn_rl("write to hypervisor memory at %llx by an undecodable instruction at %llx: #UD",
				    (unsigned long long)gpa, (unsigned long long)vmcs_readl(VMCS_GUEST_RIP));
			vcpu_inject_ud(c);
			return;
		}
		log_debug_rl("discarded a write to hypervisor memory at %llx", (unsigned long long)gpa);
		discard_region_write(c, &in);
		return;
	}
	log_error_rl("EPT violation: GPA %llx, qualification %llx (%s%s%s), RIP %llx",
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
