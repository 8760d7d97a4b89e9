/*
 * Helpers exit handlers use on the current vCPU: guest registers, instruction skipping,
 * event injection, CPL. Handlers decide whether RIP advances.
 */
#ifndef HV_VCPU_H
#define HV_VCPU_H

#include <arch/cpu.h>
#include <arch/msr.h>
#include <arch/vmx.h>
#include "percpu.h"
#include "vmcs.h"

u64 vcpu_gpr(struct percpu *c, unsigned reg);
void vcpu_set_gpr(struct percpu *c, unsigned reg, u64 v);
/* Advance RIP past the exiting instruction, ending STI/MOV-SS blocking and raising the
 * single-step trap when RFLAGS.TF is set, as the instruction itself would have. Inline:
 * every instruction exit takes this path. */
#define PENDING_DBG_BS (1ULL << 14) /* SDM Table 24-4: single-step pending */

/* RIP after an instruction that ended past a 64 KiB boundary: outside 64-bit mode the
 * instruction pointer wraps at the code segment's size (EIP at 2^32, IP at 2^16; SDM Vol. 1
 * 3.5 and 3.6), and VM entry refuses a RIP above 2^32 there (SDM 26.3.1.4). */
u64 vcpu_rip_wrap(u64 rip);

/* The instruction at RIP completed (it was skipped or emulated): what the processor does at the
 * end of every instruction. RF is cleared (SDM Vol. 3B 18.3.1.1): an exit an instruction
 * causes saves RF as it was before it (SDM Vol. 3C 28.3.3), and left set it would suppress the
 * instruction breakpoint of the next instruction (Xen's update_guest_eip clears it too). With
 * TF set, the single-step trap is pending (BS). One VMREAD; a VMWRITE only if RF was set. */
static inline void vcpu_complete_rflags(void)
{
	u64 fl = vmcs_readl(VMCS_GUEST_RFLAGS);
	if (unlikely(fl & RFLAGS_RF))
		vmcs_writel(VMCS_GUEST_RFLAGS, fl & ~RFLAGS_RF);
	if (fl & RFLAGS_TF)
		vmcs_writel(VMCS_GUEST_PENDING_DBG_EXC, vmcs_readl(VMCS_GUEST_PENDING_DBG_EXC) | PENDING_DBG_BS);
}

static inline void vcpu_skip_bytes(struct percpu *c, u64 len)
{
	(void)c;
	u64 old = vmcs_readl(VMCS_GUEST_RIP), rip = old + len;
	if (unlikely((rip ^ old) >> 16))
		rip = vcpu_rip_wrap(rip);
	vmcs_writel(VMCS_GUEST_RIP, rip);
	u32 intr = vmcs_read32(VMCS_GUEST_INTERRUPTIBILITY);
	if (intr & (GUEST_INTR_BLOCK_STI | GUEST_INTR_BLOCK_MOV_SS))
		vmcs_write32(VMCS_GUEST_INTERRUPTIBILITY, intr & ~(GUEST_INTR_BLOCK_STI | GUEST_INTR_BLOCK_MOV_SS));
	vcpu_complete_rflags();
}

/* The same when the caller knows RIP (it read it on this exit and did not change it). */
static inline void vcpu_skip_from(struct percpu *c, u64 old, u64 len)
{
	(void)c;
	u64 rip = old + len;
	if (unlikely((rip ^ old) >> 16))
		rip = vcpu_rip_wrap(rip);
	vmcs_writel(VMCS_GUEST_RIP, rip);
	u32 intr = vmcs_read32(VMCS_GUEST_INTERRUPTIBILITY);
	if (intr & (GUEST_INTR_BLOCK_STI | GUEST_INTR_BLOCK_MOV_SS))
		vmcs_write32(VMCS_GUEST_INTERRUPTIBILITY, intr & ~(GUEST_INTR_BLOCK_STI | GUEST_INTR_BLOCK_MOV_SS));
	vcpu_complete_rflags();
}

static inline void vcpu_skip_insn(struct percpu *c)
{
	vcpu_skip_bytes(c, vmcs_read32(VMCS_RO_EXIT_INSN_LEN));
}

/* The exit's IDT-vectoring information field (SDM 24.9.3): read-only and fixed for the
 * exit, so read at most once per exit (vmx_handle_exit clears idt_vectoring_read). */
static inline u32 vcpu_idt_vectoring(struct percpu *c)
{
	if (!c->idt_vectoring_read) {
		c->idt_vectoring = vmcs_read32(VMCS_RO_IDT_VECTORING_INFO);
		c->idt_vectoring_read = true;
	}
	return c->idt_vectoring;
}

/* The guest runs 64-bit code: IA32_EFER.LMA and CS.L (SDM 5.2.1). */
static inline bool vcpu_long_mode(void)
{
	return (vmcs_read64(VMCS_GUEST_IA32_EFER) & EFER_LMA) &&
	       (vmcs_read32(VMCS_GUEST_CS_AR) & SEG_AR_L);
}

/* CPL is SS.DPL (SDM 5.5). VM entry makes this hold in every mode the guest can be in:
 * SS.DPL must be 0 with CR0.PE = 0 (unrestricted guest) and 3 in virtual-8086 mode
 * (SDM 26.3.1.2), so one VMREAD answers. */
static inline unsigned vcpu_cpl(void)
{
	return SEG_AR_DPL(vmcs_read32(VMCS_GUEST_SS_AR));
}

/* The same from CS's access rights when they say it: for a non-conforming code segment
 * (types 9 and 11, S = 1) CS.DPL is the CPL - every load of such a CS sets CPL to its DPL,
 * and VM entry requires CS.DPL = SS.DPL for them (SDM 26.3.1.2). Otherwise SS.DPL. */
static inline unsigned vcpu_cpl_cs(u32 cs_ar)
{
	if ((cs_ar & 0x1f) == 0x19 || (cs_ar & 0x1f) == 0x1b)
		return SEG_AR_DPL(cs_ar);
	return vcpu_cpl();
}

/* Inject an event (VM-entry interruption-information format, SDM 24.8.3) with its error
 * code; the error code is dropped in real mode (CR0.PE = 0), where VM entry requires it. */
void vcpu_inject_event(struct percpu *c, u32 info, u32 error);
/* A hardware exception; has_error is ignored in real mode (see vcpu_inject_event). */
void vcpu_inject_exception(struct percpu *c, u8 vector, bool has_error, u32 error);
/* The exception an emulator status stands for (hv/emulate.h: -EINVAL #UD, -EMU_GP #GP(0),
 * -EMU_NM #NM), injected; false for any other status (the caller decides). */
bool vcpu_inject_emu_fault(struct percpu *c, int status);
/* The guest's view of CR0/CR4: the bits it owns from the guest field, the bits the
 * hypervisor owns from the read shadow (SDM 25.3). */
u64 vcpu_guest_cr0(const struct percpu *c);
u64 vcpu_guest_cr4(const struct percpu *c);
static inline void vcpu_inject_ud(struct percpu *c) { vcpu_inject_exception(c, 6, false, 0); }
static inline void vcpu_inject_gp0(struct percpu *c) { vcpu_inject_exception(c, 13, true, 0); }
/* Stop this vCPU after an unexpected exit: dump the VMCS, halt the CPU forever. */
__noreturn void vcpu_stop(struct percpu *c, const char *why);

/* Guest paging state and instruction decoding at the current RIP (hv/exit_ept.c). */
struct guest_paging;
struct insn;
struct emu_regs;
void vcpu_emu_load(struct percpu *c, struct emu_regs *r);
/* The same for the decoded instruction `in` at `rip` (known to the caller): the segment
 * bases, CR0/CR4/XCR0 the emulator will not look at for it are not read (64-bit mode: only
 * an FS/GS override uses a base; only 0F-map and VEX/EVEX stores check CR0/CR4/XCR0). */
void vcpu_emu_load_for(struct percpu *c, struct emu_regs *r, const struct insn *in, u64 rip);
void vcpu_emu_commit_gprs(struct percpu *c, const struct emu_regs *r);
/* Registers, flags and RIP after an emulated instruction; a REP that is not finished keeps
 * RIP on itself and is not "complete" (no STI-blocking end, no single-step trap). */
void vcpu_emu_commit(struct percpu *c, const struct emu_regs *r, u64 old_rip);
void vcpu_guest_paging(struct guest_paging *p);
int vcpu_decode_current(struct insn *in);
/* The same with what the caller already read: the paging state, the decoding mode (see
 * vcpu_insn_mode), RIP and the CPL. Decodings are cached per CPU, keyed by the bytes
 * fetched now (hv/exit_ept.c). */
enum insn_mode;
enum insn_mode vcpu_insn_mode(void);
enum insn_mode vcpu_insn_mode_paging(const struct guest_paging *p);
enum insn_mode vcpu_insn_mode_cs(const struct guest_paging *p, u32 cs_ar);
/* The paging state for fetch walks only, from the EFER the caller read: in IA-32e mode CR0
 * is not read (PG = PE = 1 there; WP matters to writes only) and CR4 only where VMX lets
 * LA57 be 1. Returns true when p->cr0 is that stand-in: the caller reads CR0 into it before
 * any walk for a write (CR0.WP). Outside IA-32e mode: vcpu_guest_paging, false. */
bool vcpu_guest_paging_fetch(struct guest_paging *p, u64 efer);
int vcpu_decode_at(struct insn *in, const struct guest_paging *p, enum insn_mode mode, u64 rip, unsigned cpl);

#endif
