/*
 * Guest write emulator, entry point (see emulate.h for the contract and the documented
 * choices). Owns the dispatch by opcode, the commit of the working register copy, the
 * plain stores (MOV, MOVNTI) and the stack writers (PUSH, CALL). The arithmetic and
 * atomic families live in emulate_alu.c, strings in emulate_str.c, vector stores in
 * emulate_sse.c. Pure: no global state; guest vector registers come from hw.h.
 */
#include <arch/cpu.h>
#include "hv/emulate_priv.h"

/* MOV r/m, r (88 89), MOV r/m, imm (C6 C7 /0: imm32 sign-extended for 64-bit), MOV moffs,
 * AL/eAX (A2 A3), MOVNTI m, r (0F C3). SDM Vol. 2 "MOV", "MOVNTI". */
static int do_store(struct emu *e, u64 val)
{
	u64 la = emu_mem_la(e);
	return emu_write(e, la, &val, e->in->opsize);
}

/* Stack address size: SDM Vol. 1 6.2.3 (SS.B outside 64-bit mode; 64 bits in 64-bit mode). */
static unsigned stack_size(const struct emu *e)
{
	if (e->in->mode == INSN_MODE_64)
		return 8;
	if (e->r.stack_size == 2 || e->r.stack_size == 4)
		return e->r.stack_size;
	return e->in->mode == INSN_MODE_32 ? 4 : 2;
}

/* PUSH of `size` bytes at SS:rSP - size (SDM Vol. 2 "PUSH": the value is computed before
 * rSP is decremented). rSP is updated in the stack address size. */
static int push(struct emu *e, u64 val, unsigned size)
{
	unsigned ss = stack_size(e);
	u64 sp = (e->r.gpr[GPR_RSP] - size) & emu_mask(ss);
	int rc = emu_write(e, emu_linear(e, INSN_SEG_SS, sp), &val, size);

	if (rc)
		return rc;
	if (ss == 2)
		e->r.gpr[GPR_RSP] = (e->r.gpr[GPR_RSP] & ~0xffffULL) | sp;
	else
		e->r.gpr[GPR_RSP] = sp;
	return 0;
}

/* The r/m source of PUSH/CALL Ev: a register, or memory read at the address computed
 * with the old rSP. */
static int read_rm(struct emu *e, u64 *v)
{
	const struct insn *in = e->in;
	*v = 0;
	if (!in->has_mem) {
		*v = emu_reg(e, in->rm, in->opsize);
		return 0;
	}
	return emu_read(e, emu_mem_la(e), v, in->opsize);
}

/* Near CALL (SDM Vol. 2 "CALL"): push the next IP in the operand size, then jump; with a
 * 16- or 32-bit operand size the target is truncated to it. */
static int call(struct emu *e, u64 target)
{
	unsigned sz = e->in->opsize;
	/* In 64-bit mode a non-canonical target is #GP(0) before anything is pushed (SDM Vol. 2A
	 * CALL, 64-bit mode exceptions); a VM entry with such a RIP would fail (SDM 26.3.1.4). */
	if (e->in->mode == INSN_MODE_64) {
		unsigned bits = (e->r.cr4 & CR4_LA57) ? 57 : 48;
		if ((u64)((s64)(target << (64 - bits)) >> (64 - bits)) != target)
			return -EMU_GP;
	}
	int rc = push(e, e->next_rip & emu_mask(sz), sz);

	if (rc)
		return rc;
	e->r.rip = target & emu_mask(sz);
	e->rip_set = true;
	return 0;
}

/* Lockable forms must have a memory destination; everything else rejects LOCK (#UD,
 * SDM Vol. 3A 9.1.2.2 / Vol. 2 "LOCK"). */
static int no_lock(const struct emu *e)
{
	return e->in->lock ? -EINVAL : 0;
}

static int one_byte(struct emu *e)
{
	const struct insn *in = e->in;
	u8 op = in->opcode, ext = in->modrm >> 3 & 7;
	u64 v;
	int rc;

	if (op < 0x40 || (op >= 0x80 && op <= 0x83) || op == 0xf6 || op == 0xf7 || op == 0xfe ||
	    (op == 0xff && ext <= 1))
		return emu_do_alu(e);
	if (op == 0x86 || op == 0x87)
		return emu_do_atomic(e);
	if (op == 0xa4 || op == 0xa5 || op == 0xaa || op == 0xab)
		return emu_do_string(e);

	switch (op) {
	case 0x88: case 0x89:
		if (!in->has_mem)
			return -EOPNOTSUPP;
		if ((rc = no_lock(e)))
			return rc;
		return do_store(e, emu_reg(e, in->reg, in->opsize));
	case 0xc6: case 0xc7:
		if (!in->has_mem || ext != 0)
			return -EOPNOTSUPP;
		if ((rc = no_lock(e)))
			return rc;
		return do_store(e, emu_sext(in->imm, in->imm_size));
	case 0xa2: case 0xa3:
		if ((rc = no_lock(e)))
			return rc;
		return do_store(e, emu_reg(e, GPR_RAX, in->opsize));
	case 0x50: case 0x51: case 0x52: case 0x53: case 0x54: case 0x55: case 0x56: case 0x57:
		if ((rc = no_lock(e)))
			return rc;
		/* PUSH rSP pushes the value before the decrement. */
		return push(e, emu_reg(e, (op & 7u) | ((in->rex & 1) ? 8u : 0u), in->opsize),
			    in->opsize);
	case 0x68: case 0x6a:
		if ((rc = no_lock(e)))
			return rc;
		return push(e, emu_sext(in->imm, in->imm_size), in->opsize);
	case 0xe8:
		if ((rc = no_lock(e)))
			return rc;
		return call(e, e->next_rip + emu_sext(in->imm, in->imm_size));
	case 0xff:
		if (ext != 2 && ext != 6)
			return -EOPNOTSUPP;
		if ((rc = no_lock(e)))
			return rc;
		if ((rc = read_rm(e, &v)))
			return rc;
		return ext == 2 ? call(e, v) : push(e, v, in->opsize);
	default:
		return -EOPNOTSUPP;
	}
}

/* The 0F opcodes two_byte hands to emu_do_atomic, and the store rows of emu_do_sse (its
 * first switch): every other 0F opcode is -EOPNOTSUPP at once (emu_covers). */
static bool two_byte_atomic(u8 op)
{
	return (op >= 0x90 && op <= 0x9f) || op == 0xab || op == 0xb3 || op == 0xbb || op == 0xba ||
	       op == 0xb0 || op == 0xb1 || op == 0xc0 || op == 0xc1 || op == 0xc7;
}

static bool sse_store_row(u8 op)
{
	return op == 0x11 || op == 0x13 || op == 0x17 || op == 0x29 || op == 0x2b || op == 0x7e || op == 0x7f ||
	       op == 0xd6 || op == 0xe7;
}

bool emu_covers(const struct insn *in)
{
	if (in->evex || in->map > 1)
		return false;
	if (in->map == 0)
		return true;
	return in->vex ? sse_store_row(in->opcode)
		       : two_byte_atomic(in->opcode) || in->opcode == 0xc3 || sse_store_row(in->opcode);
}

static int two_byte(struct emu *e)
{
	const struct insn *in = e->in;
	u8 op = in->opcode;
	int rc;

	if (two_byte_atomic(op))
		return emu_do_atomic(e);
	if (op == 0xc3) {
		if (!in->has_mem)
			return -EOPNOTSUPP;
		if ((rc = no_lock(e)))
			return rc;
		return do_store(e, emu_reg(e, in->reg, in->opsize));
	}
	return emu_do_sse(e);
}

int emu_write_insn(struct emu_regs *regs, const struct insn *in, const struct emu_mem *mem)
{
	static const u64 ip_mask[INSN_MODE_64 + 1] = {
		[INSN_MODE_16] = 0xffff, [INSN_MODE_32] = 0xffffffff, [INSN_MODE_64] = ~0ULL,
	};
	struct emu e;
	int rc;

	if (in->evex || in->mode > INSN_MODE_64 || !ip_mask[in->mode])
		return -EOPNOTSUPP;
	e.r = *regs;
	e.in = in;
	e.mem = mem;
	e.next_rip = (regs->rip + in->len) & ip_mask[in->mode];
	e.rip_set = false;
	e.partial = false;

	if (in->vex)
		rc = in->map == 1 ? emu_do_sse(&e) : -EOPNOTSUPP;
	else if (in->map == 0)
		rc = one_byte(&e);
	else if (in->map == 1)
		rc = two_byte(&e);
	else
		rc = -EOPNOTSUPP;

	if (rc == 0) {
		if (!e.rip_set)
			e.r.rip = e.next_rip;
		e.r.rip &= ip_mask[in->mode];
		*regs = e.r;
	} else if (e.partial) {
		*regs = e.r; /* REP progress before a fault; RIP stays on the instruction */
	}
	return rc;
}
