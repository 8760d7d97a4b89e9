/*
 * Guest write emulator: the read-modify-write families with a memory destination. Owns
 * the flag computation of SDM Vol. 2 for ADD ADC SUB SBB AND OR XOR INC DEC NOT NEG (and
 * the CMP flags of CMPXCHG, the ADD flags of XADD), and XCHG, CMPXCHG, CMPXCHG8B/16B,
 * XADD, BTS/BTR/BTC and SETcc. Each instruction reads its operand once and writes it once
 * (BTS/BTR/BTC write the whole operand back, as the processor does).
 */
#include "hv/emulate_priv.h"

enum { ALU_ADD, ALU_OR, ALU_ADC, ALU_SBB, ALU_AND, ALU_SUB, ALU_XOR, ALU_CMP,
       ALU_INC, ALU_DEC, ALU_NOT, ALU_NEG };

/* ZF, SF and PF of a result (PF: even parity of the low byte, SDM Vol. 1 3.4.3.1). */
static u64 flags_szp(u64 res, unsigned size)
{
	u64 f = 0;
	u8 b = (u8)res;

	res &= emu_mask(size);
	if (!res)
		f |= FL_ZF;
	if (res >> (8 * size - 1))
		f |= FL_SF;
	b ^= b >> 4;
	if (!((0x6996u >> (b & 0xf)) & 1))
		f |= FL_PF;
	return f;
}

/*
 * The result of `op` on a (destination) and b (source) of `size` bytes, and its flags in
 * *rflags. SDM Vol. 2: ADD/ADC/SUB/SBB/CMP/NEG set OF SF ZF AF CF PF by the result;
 * AND/OR/XOR clear OF and CF, set SF ZF PF, AF is undefined (cleared here); INC/DEC leave
 * CF alone; NOT affects no flag; NEG sets CF = (source != 0).
 */
static u64 alu(unsigned op, u64 a, u64 b, unsigned size, u64 *rflags)
{
	u64 m = emu_mask(size), sb = 1ULL << (8 * size - 1), cin = *rflags & FL_CF;
	u64 res, f = 0, keep = FL_ARITH;

	a &= m;
	b &= m;
	if (op == ALU_NEG) { /* 0 - x with SUB's flags */
		b = a;
		a = 0;
		op = ALU_SUB;
	}
	switch (op) {
	case ALU_ADD: case ALU_ADC:
		if (op == ALU_ADD)
			cin = 0;
		res = (a + b + cin) & m;
		if (res < a || (cin && res == a))
			f |= FL_CF;
		if ((a ^ res) & (b ^ res) & sb)
			f |= FL_OF;
		f |= (a ^ b ^ res) & FL_AF;
		break;
	case ALU_SUB: case ALU_SBB: case ALU_CMP:
		if (op != ALU_SBB)
			cin = 0;
		res = (a - b - cin) & m;
		if (a < b || (cin && a == b))
			f |= FL_CF;
		if ((a ^ b) & (a ^ res) & sb)
			f |= FL_OF;
		f |= (a ^ b ^ res) & FL_AF;
		break;
	case ALU_OR: res = a | b; break;
	case ALU_AND: res = a & b; break;
	case ALU_XOR: res = a ^ b; break;
	case ALU_INC: case ALU_DEC:
		res = (op == ALU_INC ? a + 1 : a - 1) & m;
		if (op == ALU_INC ? res == sb : a == sb)
			f |= FL_OF;
		f |= (a ^ 1 ^ res) & FL_AF;
		keep &= ~FL_CF;
		f |= *rflags & FL_CF;
		break;
	default: /* ALU_NOT */
		return ~a & m;
	}
	*rflags = (*rflags & ~keep) | f | flags_szp(res, size);
	return res;
}

/* ADD..XOR Eb/Ev,Gb/Gv (00-31), group 1 (80-83), group 3 /2 /3 (F6 F7), group 4/5 /0 /1
 * (FE FF). CMP (38 39, 80-83 /7) never writes: -EOPNOTSUPP. */
int emu_do_alu(struct emu *e)
{
	const struct insn *in = e->in;
	u8 op = in->opcode, ext = in->modrm >> 3 & 7;
	unsigned kind, sz = in->opsize;
	u64 src = 0, old = 0, res, la;

	if (op < 0x40) {
		if ((op & 7) > 1 || op >> 3 == ALU_CMP)
			return -EOPNOTSUPP;
		kind = op >> 3;
		src = in->has_mem ? emu_reg(e, in->reg, sz) : 0;
	} else if (op >= 0x80 && op <= 0x83) {
		if (ext == ALU_CMP)
			return -EOPNOTSUPP;
		kind = ext;
		/* 83: Ib sign-extended to the operand size; 81: Iz (imm32 sign-extended for 64). */
		src = emu_sext(in->imm, in->imm_size);
	} else if (op == 0xf6 || op == 0xf7) {
		if (ext != 2 && ext != 3)
			return -EOPNOTSUPP;
		kind = ext == 2 ? ALU_NOT : ALU_NEG;
	} else {
		if (ext > 1)
			return -EOPNOTSUPP;
		kind = ext == 0 ? ALU_INC : ALU_DEC;
	}
	if (!in->has_mem)
		return -EOPNOTSUPP;
	la = emu_mem_la(e);
	if (emu_read(e, la, &old, sz))
		return -EFAULT;
	res = alu(kind, old, src, sz, &e->r.rflags);
	return emu_write(e, la, &res, sz);
}

/* SETcc condition (SDM Vol. 2 Appendix B.1.4.7, Table B-1): bit 0 negates. */
static bool cond(unsigned cc, u64 f)
{
	bool r;

	switch (cc >> 1) {
	case 0: r = f & FL_OF; break;
	case 1: r = f & FL_CF; break;
	case 2: r = f & FL_ZF; break;
	case 3: r = f & (FL_CF | FL_ZF); break;
	case 4: r = f & FL_SF; break;
	case 5: r = f & FL_PF; break;
	case 6: r = !(f & FL_SF) != !(f & FL_OF); break;
	default: r = (f & FL_ZF) || !(f & FL_SF) != !(f & FL_OF); break;
	}
	return r ^ (cc & 1);
}

/* CMPXCHG8B m64 / CMPXCHG16B m128 (SDM Vol. 2 "CMPXCHG8B/CMPXCHG16B"): only ZF changes;
 * the destination is written either way (with its old value on failure). */
static int cmpxchg_dbl(struct emu *e)
{
	unsigned h = e->in->opsize == 8 ? 8 : 4; /* half size */
	u64 la = emu_mem_la(e), m = emu_mask(h), old[2] = { 0, 0 }, nv[2];
	bool eq;
	int rc;

	if (h == 8 && (la & 15))
		return -EMU_GP;
	if (h == 8) {
		rc = emu_read(e, la, old, 16);
	} else {
		rc = emu_read(e, la, old, 8);
		old[1] = old[0] >> 32;
		old[0] &= m;
	}
	if (rc)
		return rc;
	eq = old[0] == (e->r.gpr[GPR_RAX] & m) && old[1] == (e->r.gpr[GPR_RDX] & m);
	if (eq) {
		nv[0] = e->r.gpr[GPR_RBX] & m;
		nv[1] = e->r.gpr[GPR_RCX] & m;
	} else {
		nv[0] = old[0];
		nv[1] = old[1];
	}
	if (h == 4)
		nv[0] |= nv[1] << 32;
	if ((rc = emu_write(e, la, nv, 2 * h)))
		return rc;
	e->r.rflags &= ~FL_ZF;
	if (eq) {
		e->r.rflags |= FL_ZF;
	} else {
		emu_set_reg(e, GPR_RAX, h, old[0]);
		emu_set_reg(e, GPR_RDX, h, old[1]);
	}
	return 0;
}

/*
 * BTS/BTR/BTC (SDM Vol. 2 "BTS" etc., and "BT" for the addressing): with a register bit
 * offset the offset is signed and selects operand-sized units at EA + size * (offset >>
 * log2(bits)) in the address size; with an immediate it is taken modulo the operand size.
 * CF = the old bit.
 */
static int bitop(struct emu *e, unsigned ext, bool is_imm)
{
	const struct insn *in = e->in;
	unsigned sz = in->opsize, bits = 8 * sz;
	u64 off = insn_mem_offset(in, e->r.gpr, e->next_rip), old = 0, la;
	u64 bit;

	if (is_imm) {
		bit = in->imm & (bits - 1);
	} else {
		s64 b = (s64)emu_sext(emu_reg(e, in->reg, sz), sz);
		unsigned lg = sz == 2 ? 4 : sz == 4 ? 5 : 6;
		off = (off + (u64)((b >> lg) * (s64)sz)) & emu_mask(in->addrsize);
		bit = (u64)b & (bits - 1);
	}
	la = emu_linear(e, emu_mem_seg(e), off);
	if (emu_read(e, la, &old, sz))
		return -EFAULT;
	/* The instruction writes its whole operand back (a read-modify-write of sz bytes), so
	 * the store covers every operand byte: protected ones are kept and reported. */
	u64 val = old, m = 1ULL << bit;
	if (ext == 5)
		val |= m;
	else if (ext == 6)
		val &= ~m;
	else
		val ^= m;
	if (emu_write(e, la, &val, sz))
		return -EFAULT;
	e->r.rflags = (e->r.rflags & ~FL_CF) | ((old >> bit) & 1);
	return 0;
}

/* XCHG (86 87), CMPXCHG (0F B0 B1), XADD (0F C0 C1), CMPXCHG8B/16B (0F C7 /1), BTS BTR BTC
 * (0F AB B3 BB, 0F BA /5-/7), SETcc (0F 90-9F). */
int emu_do_atomic(struct emu *e)
{
	const struct insn *in = e->in;
	u8 op = in->opcode, ext = in->modrm >> 3 & 7;
	unsigned sz = in->opsize;
	u64 la, old = 0, src, res;
	bool lockable = true;
	int rc;

	if (!in->has_mem)
		return -EOPNOTSUPP;
	if (in->map == 1 && op >= 0x90 && op <= 0x9f) {
		lockable = false;
	} else if (in->map == 1 && op == 0xba) {
		if (ext < 5)
			return -EOPNOTSUPP;
	} else if (in->map == 1 && op == 0xc7) {
		if (ext != 1)
			return -EOPNOTSUPP;
	}
	if (in->lock && !lockable)
		return -EINVAL;

	if (in->map == 1) {
		switch (op) {
		case 0xab: return bitop(e, 5, false);
		case 0xb3: return bitop(e, 6, false);
		case 0xbb: return bitop(e, 7, false);
		case 0xba: return bitop(e, ext, true);
		case 0xc7: return cmpxchg_dbl(e);
		case 0xb0: case 0xb1: case 0xc0: case 0xc1: break;
		default: { /* SETcc */
			u8 v = cond(op & 0xf, e->r.rflags);
			return emu_write(e, emu_mem_la(e), &v, 1);
		}
		}
	}
	la = emu_mem_la(e);
	src = emu_reg(e, in->reg, sz);
	if ((rc = emu_read(e, la, &old, sz)))
		return rc;
	if (in->map == 0) { /* XCHG */
		if ((rc = emu_write(e, la, &src, sz)))
			return rc;
		emu_set_reg(e, in->reg, sz, old);
		return 0;
	}
	if (op == 0xc0 || op == 0xc1) { /* XADD: TEMP = SRC + DEST; SRC = DEST; DEST = TEMP */
		res = alu(ALU_ADD, old, src, sz, &e->r.rflags);
		if ((rc = emu_write(e, la, &res, sz)))
			return rc;
		emu_set_reg(e, in->reg, sz, old);
		return 0;
	}
	/* CMPXCHG: flags of CMP accumulator, DEST; equal: DEST = SRC, else the accumulator is
	 * loaded and DEST is written with its own value. */
	alu(ALU_CMP, emu_reg(e, GPR_RAX, sz), old, sz, &e->r.rflags);
	if (e->r.rflags & FL_ZF)
		return emu_write(e, la, &src, sz);
	if ((rc = emu_write(e, la, &old, sz)))
		return rc;
	emu_set_reg(e, GPR_RAX, sz, old);
	return 0;
}
