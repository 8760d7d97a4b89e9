/*
 * x86 instruction decoder (see insn.h for the contract). Owns the decoding algorithm of
 * SDM Vol. 2 chapter 2 (instruction format): legacy prefixes (2.1.1), REX (2.2.1), VEX
 * (2.3), EVEX (2.7), opcode maps (Appendix A), ModRM/SIB addressing (2.1.5, Tables 2-1..2-3)
 * and immediates. The opcode attribute tables are in insn_tables.c; the context-dependent
 * rules (ModRM.reg groups, A.4 x87, mode restrictions) are here. Pure: no global state, no
 * libc, so the same file runs in the hypervisor and in the host test against Zydis.
 */
#include "insn.h"
#include "insn_tables.h"

/* Prefix bytes, SDM Vol. 2 2.1.1. */
#define PFX_LOCK 0xf0
#define PFX_REPNE 0xf2
#define PFX_REP 0xf3
#define PFX_OPSIZE 0x66
#define PFX_ADDRSIZE 0x67
#define REX_W 0x08
#define REX_R 0x04
#define REX_X 0x02
#define REX_B 0x01

#define MODRM_MOD(m) ((m) >> 6)
#define MODRM_REG(m) (((m) >> 3) & 7)
#define MODRM_RM(m) ((m) & 7)

struct cur {
	const u8 *p;
	size_t lim; /* min(avail, INSN_MAX_LEN) */
	size_t pos;
};

static bool peek(const struct cur *c, size_t ahead, u8 *b)
{
	if (c->pos + ahead >= c->lim)
		return false;
	*b = c->p[c->pos + ahead];
	return true;
}

static bool next(struct cur *c, u8 *b)
{
	if (!peek(c, 0, b))
		return false;
	c->pos++;
	return true;
}

/* Little-endian n-byte field (n <= 8). */
static bool next_n(struct cur *c, unsigned n, u64 *v)
{
	u64 r = 0;
	for (unsigned i = 0; i < n; i++) {
		u8 b;
		if (!next(c, &b))
			return false;
		r |= (u64)b << (8 * i);
	}
	*v = r;
	return true;
}

static u8 pfx_bit(u8 mandatory)
{
	switch (mandatory) {
	case PFX_OPSIZE: return PFX_66;
	case PFX_REP: return PFX_F3;
	case PFX_REPNE: return PFX_F2;
	default: return PFX_NP;
	}
}

/* 0F 01 with mod == 3 (SDM Table A-6 group 7 and the instruction pages; AMD APM for SVM,
 * MONITORX, CLZERO, RDPRU, INVLPGB, SNP): bit n = ModRM byte 0xC0 + n is defined, one map
 * per selecting prefix (none, 66, F3, F2). */
#define G7_COMMON ((0xffULL << 0x18) | (0xffULL << 0x20) | (0xffULL << 0x30) | (0x33ULL << 0x38))
static const u64 grp7_reg[4] = {
	/* C0-C5 ENCLV VMCALL VMLAUNCH VMRESUME VMXOFF PCONFIG, C8-CB MONITOR MWAIT CLAC STAC,
	 * CF ENCLS, D0 D1 XGETBV XSETBV, D4-D7 VMFUNC XEND XTEST ENCLU, D8-DF SVM, E0-E7 SMSW,
	 * E8 SERIALIZE, EE EF RDPKRU WRPKRU, F0-F7 LMSW, F8-FF SWAPGS RDTSCP MONITORX MWAITX
	 * CLZERO RDPRU INVLPGB TLBSYNC */
	0x3fULL | 0xf00ULL | 0x8000ULL | 0x30000ULL | 0xf00000ULL | (0xffULL << 0x18) |
		(0xffULL << 0x20) | (0xc1ULL << 0x28) | (0xffULL << 0x30) | (0xffULL << 0x38),
	G7_COMMON | 0xf000ULL,                          /* 66: CC-CF TDCALL SEAMRET SEAMOPS SEAMCALL */
	G7_COMMON | (0xf5ULL << 0x28) | (0xc4ULL << 0x38), /* F3: SETSSBSY SAVEPREVSSP UIRET TESTUI
							     CLUI STUI, MCOMMIT RMPADJUST PSMASH */
	G7_COMMON | (0x03ULL << 0x28) | (0xc0ULL << 0x38), /* F2: XSUSLDTRK XRESLDTRK, RMPUPDATE
							     PVALIDATE */
};

static unsigned pfx_index(u8 mp)
{
	return mp == PFX_66 ? 1 : mp == PFX_F3 ? 2 : mp == PFX_F2 ? 3 : 0;
}

struct ctx {
	struct insn *in;
	u32 e;          /* table entry, adjusted by group rules */
	u8 mp;          /* PFX_* bit of the selected mandatory prefix */
	u8 last_rep;    /* last of F2/F3 seen, or 0 */
};

/* ModRM.reg opcode extensions and other per-opcode rules of the legacy maps (SDM Vol. 2
 * Table A-6 and the A.4 x87 tables). Returns false when undefined. May adjust x->e. */
static bool legacy_group(struct ctx *x)
{
	struct insn *in = x->in;
	u8 reg = MODRM_REG(in->modrm), mod = in->mod, mr = in->modrm;
	bool mem = mod != 3, m64 = in->mode == INSN_MODE_64;

	if (in->map == 0) {
		switch (in->opcode) {
		case 0x80: case 0x81: case 0x82: case 0x83: /* group 1: CMP is not lockable */
			if (reg == 7)
				x->e &= ~OPF_LOCK;
			return true;
		case 0x8c: return reg <= 5;                 /* MOV Ev, Sreg */
		case 0x8e: return reg <= 5 && reg != 1;     /* MOV Sreg, Ew: not CS */
		case 0x8f: return reg == 0;                 /* group 1A: POP Ev */
		case 0xc6: case 0xc7:                       /* group 11: MOV / XABORT / XBEGIN */
			return reg == 0 || mr == 0xf8;
		case 0xf6: case 0xf7:                       /* group 3: TEST (/0, /1) has imm */
			if (reg <= 1)
				x->e = (x->e & ~IMM_MASK) | (in->opcode == 0xf6 ? IMM_B : IMM_Z);
			if (reg != 2 && reg != 3)
				x->e &= ~OPF_LOCK;
			return true;
		case 0xfe:
			return reg <= 1;                    /* group 4: INC/DEC Eb */
		case 0xff:                                  /* group 5 */
			if (reg >= 2)
				x->e &= ~OPF_LOCK;
			if (reg == 2 || reg == 4)
				x->e |= OPF_F64;            /* near CALL/JMP Ev */
			if (reg == 6)
				x->e |= OPF_D64;            /* PUSH Ev */
			if ((reg == 3 || reg == 5) && !mem)
				return false;               /* far CALL/JMP Mp */
			return reg != 7;
		case 0xd8: case 0xd9: case 0xda: case 0xdb:
		case 0xdc: case 0xdd: case 0xde: case 0xdf: {
			unsigned esc = in->opcode - 0xd8u;
			if (mem)
				return insn_x87_mem[esc] & (1u << reg);
			return (insn_x87_reg[esc] >> (mr - 0xc0u)) & 1;
		}
		default:
			return true;
		}
	}
	if (in->map == 2)
		return in->opcode != 0xd8 || reg <= 3; /* AESENC/DECWIDE128/256KL */
	if (in->map != 1)
		return true;
	switch (in->opcode) {
	case 0x00: return reg <= 5;                          /* group 6 */
	case 0x01:                                           /* group 7 */
		if (mem)
			return reg != 5 || x->mp == PFX_F3;  /* F3 /5: RSTORSSP */
		if (mr == 0xf8 && !m64)
			return false;                        /* SWAPGS is o64 */
		return (grp7_reg[pfx_index(x->mp)] >> (mr - 0xc0u)) & 1;
	case 0x0d:                                           /* PREFETCH(W) / reserved NOP */
	case 0x18: case 0x19: case 0x1a: case 0x1b:
	case 0x1c: case 0x1d: case 0x1e: case 0x1f:
		return true;                                 /* group 16 / reserved NOPs */
	case 0x20: case 0x22:
		/* MOV to/from CRn: mod is ignored, always a register operand (SDM MOV-CR);
		 * CR0, CR2-CR4 and CR8 exist, the others are #UD. */
		if (!(BIT(in->reg) & (BIT(0) | BIT(2) | BIT(3) | BIT(4) | BIT(8))))
			return false;
		goto movcr;
	case 0x21: case 0x23:
		if (in->reg > 7)
			return false;                        /* DR8-DR15: #UD (SDM MOV-DR) */
	movcr:
		in->mod = 3;
		in->rm = (u8)(MODRM_RM(mr) | ((in->rex & REX_B) ? 8 : 0));
		x->e |= OPF_F64;
		return true;
	case 0x71: case 0x72:                                /* groups 12, 13 */
		return !mem && (reg == 2 || reg == 4 || reg == 6);
	case 0x73:                                           /* group 14 */
		return !mem && (reg == 2 || reg == 6 || ((reg == 3 || reg == 7) && x->mp == PFX_66));
	case 0x78: case 0x79:
		if (x->mp == PFX_NP) {                       /* VMREAD / VMWRITE */
			x->e |= OPF_F64;
			return true;
		}
		/* AMD SSE4a EXTRQ (66, /0, ib ib) / INSERTQ (F2, ib ib) register forms. */
		if (mem || x->mp == PFX_F3)
			return false;
		if (in->opcode == 0x78) {
			if (x->mp == PFX_66 && reg != 0)
				return false;
			x->e = (x->e & ~IMM_MASK) | IMM_BB;
		}
		return true;
	case 0xae:                                           /* group 15 */
		if (mem) {
			if (x->mp == PFX_NP)
				return true;                 /* FXSAVE .. CLFLUSH */
			if (x->mp == PFX_66)
				return reg == 6 || reg == 7; /* CLWB, CLFLUSHOPT */
			if (x->mp == PFX_F3)
				return reg == 4 || reg == 6; /* PTWRITE, CLRSSBSY */
			return false;
		}
		if (x->mp == PFX_NP)
			return reg >= 5;                     /* LFENCE MFENCE SFENCE */
		if (x->mp == PFX_F3) /* RD/WR FS/GS BASE (o64), PTWRITE, INCSSP, UMONITOR */
			return reg == 4 || reg == 5 || reg == 6 || (reg <= 3 && m64);
		return reg == 6;                             /* TPAUSE (66), UMWAIT (F2) */
	case 0xb8: return x->mp == PFX_F3;                   /* POPCNT */
	case 0xba:                                           /* group 8 */
		if (reg == 4)
			x->e &= ~OPF_LOCK;
		return reg >= 4;
	case 0xc7:                                           /* group 9 */
		if (reg != 1)
			x->e &= ~OPF_LOCK;
		if (mem) {
			if (reg == 1)
				return true;                 /* CMPXCHG8B/16B */
			if (reg == 6)
				return x->mp != PFX_F2;      /* VMPTRLD, VMCLEAR, VMXON */
			/* XRSTORS XSAVEC XSAVES VMPTRST */
			return x->mp == PFX_NP && reg >= 3;
		}
		/* RDRAND, RDSEED (NP/66), SENDUIPI, RDPID (F3) */
		return (reg == 6 || reg == 7) && x->mp != PFX_F2;
	default:
		return true;
	}
}

/* ModRM/SIB memory operand (SDM Vol. 2 2.1.5 Tables 2-1 (16-bit), 2-2 (32-bit), 2-3 (SIB);
 * 2.2.1.6 RIP-relative addressing). */
static bool decode_mem(struct cur *c, struct insn *in)
{
	u8 mod = in->mod, rm = MODRM_RM(in->modrm);
	unsigned dsz = 0;

	in->has_mem = true;
	in->mem_scale = 1;
	if (in->addrsize == 2) {
		static const u8 base16[8] = { 3, 3, 5, 5, 6, 7, 5, 3 };         /* BX BX BP BP SI DI BP BX */
		static const u8 index16[8] = { 6, 7, 6, 7, INSN_REG_NONE, INSN_REG_NONE,
					       INSN_REG_NONE, INSN_REG_NONE }; /* SI DI SI DI */
		if (mod == 0 && rm == 6) {
			dsz = 2;
		} else {
			in->mem_base = base16[rm];
			in->mem_index = index16[rm];
			dsz = mod == 1 ? 1 : mod == 2 ? 2 : 0;
		}
	} else {
		u8 base = rm;
		if (rm == 4) {
			if (!next(c, &in->sib))
				return false;
			u8 idx = (u8)(((in->sib >> 3) & 7) | ((in->rex & REX_X) ? 8 : 0));
			base = in->sib & 7;
			in->mem_scale = (u8)(1u << (in->sib >> 6));
			if (idx != 4 || in->vsib)
				in->mem_index = idx;
			if (mod == 0 && base == 5) {
				dsz = 4; /* [index*scale + disp32], no base */
				base = INSN_REG_NONE;
			}
		} else if (mod == 0 && rm == 5) {
			dsz = 4;
			/* 64-bit mode: RIP-relative (EIP-relative with 67), else disp32. */
			base = in->mode == INSN_MODE_64 ? INSN_REG_RIP : INSN_REG_NONE;
		}
		if (base != INSN_REG_NONE && base != INSN_REG_RIP)
			base = (u8)(base | ((in->rex & REX_B) ? 8 : 0));
		in->mem_base = base;
		if (mod == 1)
			dsz = 1;
		else if (mod == 2)
			dsz = 4;
	}
	u64 d;
	if (!next_n(c, dsz, &d))
		return false;
	in->disp_size = (u8)dsz;
	if (dsz == 1)
		in->disp = (s8)d;
	else if (dsz == 2)
		in->disp = (s16)d;
	else if (dsz == 4)
		in->disp = (s32)d;
	return true;
}

static u8 calc_opsize(const struct insn *in, u32 e, bool opsize_66)
{
	if (e & OPF_BYTE)
		return 1;
	if (in->mode == INSN_MODE_64) {
		if (in->rex & REX_W)
			return 8;
		if (e & OPF_F64)
			return 8;
		if (e & OPF_D64)
			return opsize_66 ? 2 : 8;
		return opsize_66 ? 2 : 4;
	}
	if (e & OPF_F64 && in->map == 1 && (in->opcode & 0xfc) == 0x20)
		return 4; /* MOV CR/DR: 32-bit outside 64-bit mode regardless of 66 */
	return (in->mode == INSN_MODE_16) != opsize_66 ? 2 : 4;
}

static bool read_imm(struct cur *c, struct insn *in, unsigned kind)
{
	unsigned n = 0;
	switch (kind) {
	case IMM_B: n = 1; break;
	case IMM_W: n = 2; break;
	case IMM_Z: n = in->opsize == 2 ? 2 : 4; break;
	case IMM_V: n = in->opsize; break;
	case IMM_AP: n = in->opsize == 2 ? 4 : 6; break;
	case IMM_WB: n = 3; break;
	case IMM_BB: n = 2; break;
	case IMM_MOFFS: {
		u64 a;
		if (!next_n(c, in->addrsize, &a))
			return false;
		in->has_mem = true;
		in->mem_scale = 1;
		in->disp = (s64)a;
		in->disp_size = in->addrsize;
		return true;
	}
	default: return true;
	}
	in->imm_size = (u8)n;
	return next_n(c, n, &in->imm);
}

/* Memory access width of the forms the EPT write emulator handles (0 = not computed). */
static u16 calc_memsize(const struct insn *in)
{
	u8 op = in->opcode, reg = MODRM_REG(in->modrm), mp = in->mandatory;
	u16 vl = in->vex ? (u16)(16u << in->vex_l) : 16;

	if (!in->has_mem && !(in->map == 0 && ((op & 0xfc) == 0xa4 || (op & 0xfe) == 0xaa)))
		return 0;
	if (in->evex)
		return 0;
	if (in->map == 0) {
		if (op < 0x40 && (op & 7) < 4)
			return in->opsize;                           /* ALU Eb/Ev */
		switch (op) {
		case 0x80: case 0x81: case 0x82: case 0x83: case 0x84: case 0x85:
		case 0x86: case 0x87: case 0x88: case 0x89: case 0x8a: case 0x8b:
		case 0xa0: case 0xa1: case 0xa2: case 0xa3: case 0xa4: case 0xa5:
		case 0xaa: case 0xab: case 0xc0: case 0xc1: case 0xc6: case 0xc7:
		case 0xd0: case 0xd1: case 0xd2: case 0xd3: case 0xf6: case 0xf7: case 0xfe:
			return in->opsize;
		case 0xff:
			return reg == 3 || reg == 5 ? 0 : in->opsize;
		case 0xd9:
			if (reg == 6) /* FNSTENV: 14 bytes with 16-bit operand size, else 28 */
				return in->opsize == 2 ? 14 : 28;
			return 0;
		default: return 0;
		}
	}
	if (in->map != 1)
		return 0;
	switch (op) {
	case 0x90: case 0x91: case 0x92: case 0x93: case 0x94: case 0x95: case 0x96: case 0x97:
	case 0x98: case 0x99: case 0x9a: case 0x9b: case 0x9c: case 0x9d: case 0x9e: case 0x9f:
		return in->vex ? 0 : 1;                              /* SETcc (VEX: KMOV etc.) */
	case 0xab: case 0xb3: case 0xbb: case 0xba: case 0xb0: case 0xb1:
	case 0xc0: case 0xc1: case 0xc3:
		return in->opsize;
	case 0xc7:
		return reg == 1 ? (u16)(in->opsize == 8 ? 16 : 8) : 0;
	case 0x11:
		return mp == PFX_REP ? 4 : mp == PFX_REPNE ? 8 : vl; /* MOVSS / MOVSD / MOVUP* */
	case 0x13: case 0x17: case 0xd6:
		return 8;
	case 0x2b:                                   /* MOVNTPS/PD; AMD MOVNTSS/SD */
		return mp == PFX_REP ? 4 : mp == PFX_REPNE ? 8 : vl;
	case 0x29: case 0xe7:
		return mp == 0 && op == 0xe7 && !in->vex ? 8 : vl;  /* MOVNTQ is 8 */
	case 0x7e:
		return mp == PFX_REP ? 0 : (in->rex & REX_W) ? 8 : 4;
	case 0x7f:
		return mp == 0 && !in->vex ? 8 : vl;
	case 0xae:
		return !in->vex && reg == 0 ? 512 : 0;               /* FXSAVE */
	default:
		return 0;
	}
}

static void vex_rex(struct insn *in, bool r, bool x, bool b, bool w)
{
	/* Outside 64-bit mode the register-extension bits are ignored (2.3.5.3). */
	in->rex = (u8)(0x40 | (w ? REX_W : 0));
	if (in->mode == INSN_MODE_64)
		in->rex |= (u8)((r ? REX_R : 0) | (x ? REX_X : 0) | (b ? REX_B : 0));
}

/* VEX (SDM Vol. 2 2.3.5, Figure 2-9) and EVEX (2.7.1, Figure 2-11) prefixes. Returns the
 * immediate kind, or -1. */
static int decode_vex(struct cur *c, struct insn *in, u8 first)
{
	u8 b1 = 0, b2 = 0, b3 = 0;
	if (!next(c, &b1))
		return -1;
	if (first == 0xc5) {
		in->map = 1;
		vex_rex(in, !(b1 & 0x80), false, false, false);
		in->vex_vvvv = (u8)((~b1 >> 3) & 0xf);
		in->vex_l = (b1 >> 2) & 1;
		b2 = b1;
	} else if (first == 0xc4) {
		if (!next(c, &b2))
			return -1;
		in->map = b1 & 0x1f;
		if (in->map < 1 || in->map > 3)
			return -1;
		vex_rex(in, !(b1 & 0x80), !(b1 & 0x40), !(b1 & 0x20), b2 & 0x80);
		in->vex_w = b2 >> 7;
		in->vex_vvvv = (u8)((~b2 >> 3) & 0xf);
		in->vex_l = (b2 >> 2) & 1;
	} else {
		/* EVEX P0 = R X B R' 0 m m m, P1 = W vvvv 1 pp, P2 = z L'L b V' aaa. */
		if (!next(c, &b2) || !next(c, &b3))
			return -1;
		in->evex = true;
		in->map = b1 & 7;
		if ((b1 & 0x08) || !(b2 & 0x04) || in->map == 0 || in->map == 4 || in->map == 7)
			return -1;
		vex_rex(in, !(b1 & 0x80), !(b1 & 0x40), !(b1 & 0x20), b2 & 0x80);
		in->vex_w = b2 >> 7;
		in->vex_vvvv = (u8)((~b2 >> 3) & 0xf);
		in->vex_l = (b3 >> 5) & 3;
	}
	in->vex = first != 0x62;
	static const u8 pp_pfx[4] = { 0, PFX_OPSIZE, PFX_REP, PFX_REPNE };
	in->mandatory = pp_pfx[b2 & 3];
	if (!next(c, &in->opcode))
		return -1;
	if (in->vex && !(insn_vex_pp[in->map - 1][in->opcode] & (1u << (b2 & 3))))
		return -1;
	if (in->map == 3)
		return IMM_B;
	if (in->map == 1) {
		switch (in->opcode) {
		case 0x70: case 0x71: case 0x72: case 0x73: case 0xc2: case 0xc4: case 0xc5: case 0xc6:
			return IMM_B;
		}
	}
	return IMM_NONE;
}

int insn_decode(struct insn *out, const u8 *bytes, size_t avail, enum insn_mode mode)
{
	struct insn in = { 0 };
	struct cur c = { bytes, avail < INSN_MAX_LEN ? avail : INSN_MAX_LEN, 0 };
	struct ctx x = { &in, 0, PFX_NP, 0 };
	bool m64 = mode == INSN_MODE_64;
	u8 b;

	if (mode != INSN_MODE_16 && mode != INSN_MODE_32 && mode != INSN_MODE_64)
		return -1;
	in.mode = (u8)mode;
	in.seg = in.mem_base = in.mem_index = INSN_REG_NONE;

	/* Legacy prefixes in any order and number (2.1.1); a REX prefix only counts when it
	 * immediately precedes the opcode (2.2.1), otherwise it is ignored. */
	for (;;) {
		if (!peek(&c, 0, &b))
			return -1;
		switch (b) {
		case PFX_LOCK: in.lock = true; break;
		case PFX_REPNE: in.repne = true; x.last_rep = b; break;
		case PFX_REP: in.rep = true; x.last_rep = b; break;
		case PFX_OPSIZE: in.opsize_prefix = true; break;
		case PFX_ADDRSIZE: in.addrsize_prefix = true; break;
		case 0x26: case 0x2e: case 0x36: case 0x3e:
			if (!m64)
				in.seg = (u8)((b >> 3) & 3); /* 26 ES, 2E CS, 36 SS, 3E DS */
			break;
		case 0x64: case 0x65:
			in.seg = (u8)(INSN_SEG_FS + (b & 1));
			break;
		default:
			if (m64 && (b & 0xf0) == 0x40) {
				c.pos++;
				in.rex = b;
				continue;
			}
			goto opcode;
		}
		in.rex = 0;
		c.pos++;
	}
opcode:
	if (m64)
		in.addrsize = in.addrsize_prefix ? 4 : 8;
	else
		in.addrsize = (mode == INSN_MODE_16) != in.addrsize_prefix ? 2 : 4;

	int imm_kind;
	if (!next(&c, &b))
		return -1;
	u8 nb = 0;
	bool has_nb = peek(&c, 0, &nb);
	if ((b == 0xc4 || b == 0xc5 || b == 0x62) && (m64 || (has_nb && nb >= 0xc0))) {
		/* VEX/EVEX; outside 64-bit mode only when the would-be ModRM has mod == 3
		 * (LES/LDS/BOUND need memory). 66/F2/F3/LOCK/REX before them are #UD (2.3.2). */
		if (in.lock || in.rep || in.repne || in.opsize_prefix || in.rex)
			return -1;
		imm_kind = decode_vex(&c, &in, b);
		if (imm_kind < 0)
			return -1;
		x.e = OPF_VALID | OPF_MODRM;
		if (in.map == 1 && in.opcode == 0x77)
			x.e = OPF_VALID; /* VZEROUPPER/VZEROALL: no ModRM */
		/* VSIB: gathers/scatters (0F38 90-93, A0-A3, C6/C7) index a vector register. */
		if (in.map == 2 && ((in.opcode & 0xfc) == 0x90 || (in.opcode & 0xfc) == 0xa0 ||
				    in.opcode == 0xc6 || in.opcode == 0xc7))
			in.vsib = true;
	} else if (b == 0x8f && has_nb && (nb & 0x1f) >= 8) {
		return -1; /* AMD XOP: not supported */
	} else {
		if (b == 0x0f) {
			if (!next(&c, &b))
				return -1;
			if (b == 0x38 || b == 0x3a) {
				in.map = b == 0x38 ? 2 : 3;
				if (!next(&c, &b))
					return -1;
			} else if (b == 0x0f) {
				return -1; /* AMD 3DNow!: not supported */
			} else {
				in.map = 1;
			}
		}
		in.opcode = b;
		static const u32 *const maps[4] = { insn_map_1byte, insn_map_0f, insn_map_0f38,
						    insn_map_0f3a };
		x.e = maps[in.map][b];
		if (!(x.e & OPF_VALID))
			return -1;
		if ((x.e & OPF_I64) && m64)
			return -1;
		if ((x.e & OPF_O64) && !m64)
			return -1;
		/* Mandatory prefix: the last F2/F3 wins, else 66 (2.1.2, A.3). Only the
		 * selective (SSE-style) entries and the groups look at it. */
		if (in.map)
			in.mandatory = x.last_rep ? x.last_rep : in.opsize_prefix ? PFX_OPSIZE : 0;
		imm_kind = (int)(x.e & IMM_MASK);
	}
	x.mp = pfx_bit(in.mandatory);

	if (x.e & OPF_MODRM) {
		if (!next(&c, &in.modrm))
			return -1;
		in.has_modrm = true;
		in.mod = MODRM_MOD(in.modrm);
		in.reg = (u8)(MODRM_REG(in.modrm) | ((in.rex & REX_R) ? 8 : 0));
		in.rm = (u8)(MODRM_RM(in.modrm) | ((in.rex & REX_B) ? 8 : 0));
	}
	if (!in.vex && !in.evex) {
		u8 pm = in.has_modrm && in.mod != 3 ? OPF_PMEM_OF(x.e) : OPF_PREG_OF(x.e);
		if ((OPF_PMEM_OF(x.e) | OPF_PREG_OF(x.e)) && !(pm & x.mp))
			return -1;
		if ((x.e & OPF_MEMONLY) && in.mod == 3)
			return -1;
		if ((x.e & OPF_GRP) && !legacy_group(&x))
			return -1;
		imm_kind = (int)(x.e & IMM_MASK);
	}
	bool sel = (OPF_PMEM_OF(x.e) | OPF_PREG_OF(x.e)) && !(x.e & OPF_OS66);
	bool os66 = in.opsize_prefix && !(sel && in.mandatory == PFX_OPSIZE) && !in.vex && !in.evex;
	if (in.vex || in.evex)
		in.opsize = in.vex_w ? 8 : 4;
	else
		in.opsize = calc_opsize(&in, x.e, os66);
	/* "y" operands (A.2.2): 32 or 64 bits, never 16: MOVNTI, CMPXCHG8B/16B. */
	if (in.map == 1 && (in.opcode == 0xc3 || (in.opcode == 0xc7 && MODRM_REG(in.modrm) == 1)))
		in.opsize = (in.rex & REX_W) ? 8 : 4;

	if (in.has_modrm && in.mod != 3 && !decode_mem(&c, &in))
		return -1;
	if (!read_imm(&c, &in, (unsigned)imm_kind))
		return -1;
	if (in.lock && !((x.e & OPF_LOCK) && in.has_modrm && in.mod != 3))
		return -1; /* #UD: LOCK on a non-lockable form (Vol. 3 8.1.2.2) */

	in.len = (u8)c.pos;
	in.memsize = calc_memsize(&in);
	*out = in;
	return 0;
}

u64 insn_mem_offset(const struct insn *in, const u64 gpr[16], u64 next_rip)
{
	u64 a = (u64)in->disp;
	if (!in->has_mem || in->vsib)
		return 0;
	if (in->mem_base == INSN_REG_RIP)
		a += next_rip;
	else if (in->mem_base < 16)
		a += gpr[in->mem_base];
	if (in->mem_index < 16)
		a += gpr[in->mem_index] * in->mem_scale;
	if (in->addrsize == 2)
		return a & 0xffff;
	if (in->addrsize == 4)
		return a & 0xffffffffULL;
	return a;
}
