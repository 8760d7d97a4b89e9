/*
 * Descriptor-table exits (reasons 46 and 47), on while a descriptor-table register is
 * pinned on this vCPU (HC_PIN_DT, ABI 1.3; hv/pin.c). The control makes LGDT, LIDT, SGDT,
 * SIDT (46) and LLDT, LTR, SLDT, STR (47) exit in every mode (SDM 25.1.3); the hypervisor
 * completes each one as the processor would (SDM Vol. 2 for each instruction):
 *  - the faults that come before the exit are the processor's (#UD for a register operand
 *    of LGDT..SIDT and for LLDT..STR in real and virtual-8086 mode, #GP(0) for CPL > 0 on
 *    the loads and, with CR4.UMIP, on the stores); the rest are raised here: #GP(0)/#SS(0)
 *    for a segment limit or type, a non-canonical address or base, #PF from the guest's
 *    paging, #GP(selector)/#NP(selector) for LLDT/LTR descriptors;
 *  - the operand is found by decoding the instruction at RIP (hv/insn.c) rather than from
 *    the instruction-information field: Bochs 2.7 fills bits 31:28 of that field with a
 *    register number, not the instruction identity (SDM Table 28-10), and leaves the
 *    operand-size bit 0; the decoder gives identity, operand size, address size, segment and
 *    RIP-relative addressing in every mode. An instruction that no longer decodes as one of
 *    these eight (another vCPU rewrote it) is not skipped: the guest runs what is there;
 *  - stores (SGDT/SIDT/SLDT/STR to memory, LTR's busy bit) go through spp_emulated_store,
 *    so they obey sub-page protection like any emulated write;
 *  - LGDT/LIDT ask pin_dt_filter: a refused load is ignored (no #GP, the instruction
 *    completes), as HC_PIN_MSR ignores a refused WRMSR and HC_PIN_CR keeps pinned bits.
 * Operand layout (SDM Vol. 2 LGDT/SGDT): 2-byte limit, then the base: 8 bytes in 64-bit
 * mode; else 4 bytes, of which LGDT with a 16-bit operand size uses the low 24. SGDT/SIDT
 * outside 64-bit mode store all 32 base bits whatever the operand size.
 */
#include <hw.h>
#include <arch/cpu.h>
#include <arch/msr.h>
#include <arch/vmx.h>
#include "exit.h"
#include "insn.h"
#include "log.h"
#include "mm/guest_mem.h"
#include "pin.h"
#include "spp/spp.h"
#include "vcpu.h"
#include "vmcs.h"

/* Segment fields by register number (ES, CS, SS, DS, FS, GS: SDM Appendix B encodings). */
#define SEG_BASE(s)  (VMCS_GUEST_ES_BASE + 2 * (s))
#define SEG_LIMIT(s) (VMCS_GUEST_ES_LIMIT + 2 * (s))
#define SEG_AR(s)    (VMCS_GUEST_ES_AR + 2 * (s))

static bool canonical(u64 la)
{
	unsigned bits = (vmcs_readl(VMCS_GUEST_CR4) & CR4_LA57) ? 57 : 48;
	s64 v = (s64)(la << (64 - bits)) >> (64 - bits);
	return (u64)v == la;
}

static unsigned mem_seg(const struct insn *in)
{
	if (in->seg != INSN_REG_NONE)
		return in->seg;
	return (in->mem_base == GPR_SP || in->mem_base == GPR_BP) ? INSN_SEG_SS : INSN_SEG_DS;
}

/* The linear address of the memory operand for an access of `size` bytes, with the checks
 * the processor makes (SDM Vol. 3A 5.3, 3.4.5.1). 0, or the vector to raise with error 0. */
static int operand_la(struct percpu *c, const struct insn *in, u64 rip, unsigned size, bool write, u64 *la)
{
	u64 gpr[16];
	for (unsigned i = 0; i < 16; i++)
		gpr[i] = c->regs->gpr[i];
	gpr[GPR_SP] = vmcs_readl(VMCS_GUEST_RSP);
	u64 off = insn_mem_offset(in, gpr, rip + in->len);
	unsigned s = mem_seg(in);
	int fault = s == INSN_SEG_SS ? VEC_SS : VEC_GP;
	if (in->mode == INSN_MODE_64) {
		u64 base = s == INSN_SEG_FS ? vmcs_readl(VMCS_GUEST_FS_BASE) :
			   s == INSN_SEG_GS ? vmcs_readl(VMCS_GUEST_GS_BASE) : 0;
		u64 a = base + off;
		if (!canonical(a) || !canonical(a + size - 1))
			return fault;
		*la = a;
		return 0;
	}
	u32 ar = (u32)vmcs_read_raw(SEG_AR(s)), limit = (u32)vmcs_read_raw(SEG_LIMIT(s));
	if (vmcs_readl(VMCS_GUEST_CR0) & CR0_PE) {
		if (ar & SEG_AR_UNUSABLE)
			return fault;
		bool code = ar & 8;
		if (write ? (code || !(ar & 2)) : (code && !(ar & 2)))
			return fault; /* a write to code or read-only data, a read of execute-only code */
	}
	u64 last = off + size - 1;
	if (!(ar & 8) && (ar & 4)) { /* expand-down data: valid offsets are limit+1 .. top */
		u64 top = (ar & SEG_AR_DB) ? 0xffffffffULL : 0xffffULL;
		if (off <= limit || last > top)
			return fault;
	} else if (last > limit) {
		return fault;
	}
	*la = (u32)(vmcs_read_raw(SEG_BASE(s)) + off);
	return 0;
}

static void inject_pf(struct percpu *c, u64 la, u32 pfec)
{
	write_cr2(la);
	vcpu_inject_exception(c, VEC_PF, true, pfec);
}

/* Stores the instruction's result; false when it faulted (injected) or stored nothing. */
static bool store(struct percpu *c, const struct guest_paging *p, u32 access, u64 la, const void *buf, unsigned n,
		  u64 rip)
{
	u32 pfec = 0;
	u64 fla = 0;
	int r = spp_emulated_store(c, p, access, la, buf, n, rip, &pfec, &fla);
	if (r == -EFAULT) {
		inject_pf(c, fla, pfec);
		return false;
	}
	if (r)
		log_warn_rl("descriptor-table store at %llx (rip %llx) is not to RAM: discarded", (unsigned long long)la,
			    (unsigned long long)rip);
	return true;
}

/* Reads the operand; false when it faulted (injected) or is not RAM (then the instruction
 * is skipped and logged: nothing is loaded). */
static bool load(struct percpu *c, const struct guest_paging *p, u32 access, u64 la, void *buf, unsigned n, u64 rip)
{
	u32 pfec = 0;
	u64 fla = 0;
	int r = guest_read_linear(p, la, buf, n, access, &pfec, &fla);
	if (r == -EFAULT) {
		inject_pf(c, fla, pfec);
		return false;
	}
	if (r) {
		log_warn_rl("descriptor-table operand at %llx (rip %llx) is not RAM: instruction skipped",
			    (unsigned long long)la, (unsigned long long)rip);
		vcpu_skip_insn(c);
		return false;
	}
	return true;
}

void exit_gdtr_idtr(struct percpu *c)
{
	struct insn in;
	u64 rip = vmcs_readl(VMCS_GUEST_RIP);
	if (vcpu_decode_current(&in) || in.map != 1 || in.opcode != 0x01 || !in.has_mem || in.vex || in.evex ||
	    ((in.modrm >> 3) & 7) > 3)
		return; /* not LGDT/LIDT/SGDT/SIDT any more: the guest runs what is at RIP now */
	unsigned op = (in.modrm >> 3) & 7; /* 0 SGDT, 1 SIDT, 2 LGDT, 3 LIDT */
	unsigned reg = (op & 1) ? 0 : 1;   /* 0 IDTR, 1 GDTR (hv/pin.h order) */
	unsigned cpl = vcpu_cpl();
	bool m64 = in.mode == INSN_MODE_64;
	unsigned size = m64 ? 10 : 6;
	if (op >= 2 && cpl != 0) {
		vcpu_inject_gp0(c);
		return;
	}
	u64 la;
	int v = operand_la(c, &in, rip, size, op < 2, &la);
	if (v) {
		vcpu_inject_exception(c, (u8)v, true, 0);
		return;
	}
	struct guest_paging p;
	vcpu_guest_paging(&p);
	u32 access = cpl == 3 ? GACC_USER : 0;
	u8 buf[10];
	if (op < 2) {
		u16 limit = (u16)vmcs_read_raw(reg ? VMCS_GUEST_GDTR_LIMIT : VMCS_GUEST_IDTR_LIMIT);
		u64 base = vmcs_read_raw(reg ? VMCS_GUEST_GDTR_BASE : VMCS_GUEST_IDTR_BASE);
		if (!m64)
			base = (u32)base;
		__builtin_memcpy(buf, &limit, 2);
		__builtin_memcpy(buf + 2, &base, size - 2);
		if (store(c, &p, access, la, buf, size, rip))
			vcpu_skip_insn(c);
		return;
	}
	if (!load(c, &p, access, la, buf, size, rip))
		return;
	u16 limit;
	u64 base = 0;
	__builtin_memcpy(&limit, buf, 2);
	__builtin_memcpy(&base, buf + 2, size - 2);
	if (m64 && !canonical(base)) {
		vcpu_inject_gp0(c);
		return;
	}
	if (!m64 && in.opsize == 2)
		base &= 0xffffffULL;
	u8 seen = __atomic_load_n(&c->dt_pin_seen, __ATOMIC_SEQ_CST);
	if (pin_dt_filter(c, reg, base, limit)) {
		vmcs_write_raw(reg ? VMCS_GUEST_GDTR_BASE : VMCS_GUEST_IDTR_BASE, base);
		vmcs_write_raw(reg ? VMCS_GUEST_GDTR_LIMIT : VMCS_GUEST_IDTR_LIMIT, limit);
		pin_dt_loaded(c, seen);
	}
	vcpu_skip_insn(c);
}

/* LLDT/LTR's descriptor checks (SDM Vol. 2 LLDT, LTR): 0 or the vector (error = selector). */
static int load_system_seg(struct percpu *c, const struct guest_paging *p, bool ltr, u16 sel, u64 rip)
{
	bool lma = vmcs_read64(VMCS_GUEST_IA32_EFER) & EFER_LMA;
	unsigned dsize = lma ? 16 : 8;
	if (sel & 4)
		return VEC_GP;
	if ((u64)(sel & ~7U) + dsize - 1 > (u32)vmcs_read32(VMCS_GUEST_GDTR_LIMIT))
		return VEC_GP;
	u64 la = vmcs_readl(VMCS_GUEST_GDTR_BASE) + (sel & ~7U);
	if (!lma)
		la = (u32)la;
	u64 d[2] = { 0, 0 };
	if (!load(c, p, 0, la, d, dsize, rip))
		return -1;
	u32 type = (u32)(d[0] >> 40) & 0xf;
	bool sys = !((d[0] >> 44) & 1), present = (d[0] >> 47) & 1;
	bool ok = sys && (ltr ? (type == 9 || (!lma && type == 1)) : type == 2);
	if (!ok)
		return VEC_GP;
	if (!present)
		return VEC_NP;
	u64 base = ((d[0] >> 16) & 0xffffffULL) | (((d[0] >> 56) & 0xff) << 24);
	if (lma) {
		base |= (d[1] & 0xffffffffULL) << 32;
		if (((d[1] >> 40) & 0x1f) || !canonical(base))
			return VEC_GP;
	}
	u32 limit = (u32)(d[0] & 0xffff) | (u32)(((d[0] >> 48) & 0xf) << 16);
	if ((d[0] >> 55) & 1)
		limit = (limit << 12) | 0xfff;
	u32 ar = (u32)(d[0] >> 40) & 0xf0ff;
	if (ltr) {
		u8 tb = (u8)(d[0] >> 40) | 2; /* busy (SDM Vol. 2 LTR: "the TSS is marked busy") */
		if (!store(c, p, 0, la + 5, &tb, 1, rip))
			return -1;
		ar |= 2;
		vmcs_write16(VMCS_GUEST_TR_SEL, sel);
		vmcs_writel(VMCS_GUEST_TR_BASE, base);
		vmcs_write32(VMCS_GUEST_TR_LIMIT, limit);
		vmcs_write32(VMCS_GUEST_TR_AR, ar);
	} else {
		vmcs_write16(VMCS_GUEST_LDTR_SEL, sel);
		vmcs_writel(VMCS_GUEST_LDTR_BASE, base);
		vmcs_write32(VMCS_GUEST_LDTR_LIMIT, limit);
		vmcs_write32(VMCS_GUEST_LDTR_AR, ar);
	}
	return 0;
}

void exit_ldtr_tr(struct percpu *c)
{
	struct insn in;
	u64 rip = vmcs_readl(VMCS_GUEST_RIP);
	if (vcpu_decode_current(&in) || in.map != 1 || in.opcode != 0x00 || in.vex || in.evex ||
	    ((in.modrm >> 3) & 7) > 3)
		return; /* not SLDT/STR/LLDT/LTR any more */
	unsigned op = (in.modrm >> 3) & 7; /* 0 SLDT, 1 STR, 2 LLDT, 3 LTR */
	unsigned cpl = vcpu_cpl();
	if (op >= 2 && cpl != 0) {
		vcpu_inject_gp0(c);
		return;
	}
	struct guest_paging p;
	vcpu_guest_paging(&p);
	u32 access = cpl == 3 ? GACC_USER : 0;
	u64 la = 0;
	if (in.has_mem) {
		int v = operand_la(c, &in, rip, 2, op < 2, &la);
		if (v) {
			vcpu_inject_exception(c, (u8)v, true, 0);
			return;
		}
	}
	if (op < 2) {
		u16 sel = op == 0 ? vmcs_read16(VMCS_GUEST_LDTR_SEL) : vmcs_read16(VMCS_GUEST_TR_SEL);
		if (!in.has_mem) {
			/* A register destination: 16-bit operand size writes the low 16 bits, 32 and
			 * 64 bits zero-extend (SDM Vol. 2 SLDT/STR). */
			u64 old = vcpu_gpr(c, in.rm);
			vcpu_set_gpr(c, in.rm, in.opsize == 2 ? (old & ~0xffffULL) | sel : sel);
		} else if (!store(c, &p, access, la, &sel, 2, rip)) {
			return;
		}
		vcpu_skip_insn(c);
		return;
	}
	u16 sel;
	if (!in.has_mem)
		sel = (u16)vcpu_gpr(c, in.rm);
	else if (!load(c, &p, access, la, &sel, 2, rip))
		return;
	if ((sel & 0xfffc) == 0) {
		if (op == 3) {
			vcpu_inject_gp0(c);
			return;
		}
		/* A null selector makes LDTR unusable (SDM Vol. 2 LLDT; VMX: AR bit 16). */
		vmcs_write16(VMCS_GUEST_LDTR_SEL, sel);
		vmcs_write32(VMCS_GUEST_LDTR_AR, SEG_AR_UNUSABLE);
		vcpu_skip_insn(c);
		return;
	}
	int v = load_system_seg(c, &p, op == 3, sel, rip);
	if (v < 0)
		return; /* faulted (#PF injected) or skipped */
	if (v) {
		vcpu_inject_exception(c, (u8)v, true, sel & 0xfffc);
		return;
	}
	vcpu_skip_insn(c);
}
