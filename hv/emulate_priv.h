/*
 * Internal to the write emulator (hv/emulate*.c): the per-call state and the small
 * operand helpers the instruction families share. Not for other modules.
 */
#ifndef HV_EMULATE_PRIV_H
#define HV_EMULATE_PRIV_H

#include "hv/emulate.h"

/* RFLAGS bits (SDM Vol. 1 3.4.3). */
#define FL_CF BIT(0)
#define FL_PF BIT(2)
#define FL_AF BIT(4)
#define FL_ZF BIT(6)
#define FL_SF BIT(7)
#define FL_DF BIT(10)
#define FL_OF BIT(11)
#define FL_ARITH (FL_CF | FL_PF | FL_AF | FL_ZF | FL_SF | FL_OF)

#define GPR_RAX 0
#define GPR_RCX 1
#define GPR_RDX 2
#define GPR_RBX 3
#define GPR_RSP 4
#define GPR_RSI 6
#define GPR_RDI 7

struct emu {
	struct emu_regs r;         /* working copy, committed by emu_write_insn() */
	const struct insn *in;
	const struct emu_mem *mem;
	u64 next_rip;
	bool rip_set;              /* the handler set r.rip (CALL, unfinished REP) */
	bool partial;              /* -EFAULT after REP progress: commit r anyway */
};

static inline u64 emu_mask(unsigned size)
{
	return size >= 8 ? ~0ULL : (1ULL << (8 * size)) - 1;
}

static inline u64 emu_sext(u64 v, unsigned size)
{
	unsigned sh = 64 - 8 * size;
	return size >= 8 ? v : (u64)((s64)(v << sh) >> sh);
}

/* General register n of `size` bytes; byte registers 4-7 are AH CH DH BH without REX. */
static inline u64 emu_reg(const struct emu *e, unsigned n, unsigned size)
{
	if (size == 1 && n >= 4 && n < 8 && !e->in->rex)
		return (e->r.gpr[n - 4] >> 8) & 0xff;
	return e->r.gpr[n] & emu_mask(size);
}

/* A write of 4 bytes zero-extends to 64 (SDM Vol. 1 3.4.1.1); 1 and 2 bytes merge. */
static inline void emu_set_reg(struct emu *e, unsigned n, unsigned size, u64 v)
{
	u64 *g;
	if (size == 1 && n >= 4 && n < 8 && !e->in->rex) {
		g = &e->r.gpr[n - 4];
		*g = (*g & ~0xff00ULL) | ((v & 0xff) << 8);
		return;
	}
	g = &e->r.gpr[n];
	if (size >= 4)
		*g = v & emu_mask(size);
	else
		*g = (*g & ~emu_mask(size)) | (v & emu_mask(size));
}

/* Segment base + offset; outside 64-bit mode linear addresses wrap at 4 GiB. */
static inline u64 emu_linear(const struct emu *e, unsigned seg, u64 off)
{
	if (e->in->mode == INSN_MODE_64)
		return seg >= INSN_SEG_FS ? off + e->r.seg_base[seg] : off;
	return (u32)(off + e->r.seg_base[seg]);
}

/* Segment of the explicit memory operand: the override, else SS for rSP/rBP bases. */
static inline unsigned emu_mem_seg(const struct emu *e)
{
	if (e->in->seg != INSN_REG_NONE)
		return e->in->seg;
	return e->in->mem_base == GPR_RSP || e->in->mem_base == 5 ? INSN_SEG_SS : INSN_SEG_DS;
}

static inline u64 emu_mem_la(const struct emu *e)
{
	return emu_linear(e, emu_mem_seg(e), insn_mem_offset(e->in, e->r.gpr, e->next_rip));
}

static inline int emu_read(struct emu *e, u64 la, void *buf, unsigned n)
{
	return e->mem->read(e->mem->ctx, la, buf, n) ? -EFAULT : 0;
}

static inline int emu_write(struct emu *e, u64 la, const void *buf, unsigned n)
{
	return e->mem->write(e->mem->ctx, la, buf, n) ? -EFAULT : 0;
}

/* Family handlers: 0, or a negative code as emu_write_insn() returns. */
int emu_do_alu(struct emu *e);      /* emulate_alu.c: RMW ALU, INC/DEC, NOT/NEG */
int emu_do_atomic(struct emu *e);   /* emulate_alu.c: XCHG, CMPXCHG*, XADD, BTx, SETcc */
int emu_do_string(struct emu *e);   /* emulate_str.c: MOVS, STOS */
int emu_do_sse(struct emu *e);      /* emulate_sse.c: SSE/AVX stores */

#endif
