/*
 * x86 instruction decoder. Owns the decoding of one guest instruction (legacy prefixes,
 * REX, VEX, EVEX, the one-byte, 0F, 0F38 and 0F3A opcode maps, ModRM/SIB, displacement
 * and immediate) into struct insn, and the effective-address computation for its memory
 * operand. Used to skip (exact length) and later emulate the guest write that caused an
 * EPT violation. No knowledge of guest state beyond what the caller passes in.
 *
 * Scope: everything Intel defines in SDM Vol. 2 Appendix A for the legacy maps, plus the
 * AMD extensions that do not change lengths. AMD 3DNow! (0F 0F) and XOP (8F with
 * map_select >= 8) are rejected (-1). VEX/EVEX instructions get exact lengths and
 * operands; their opcode validity is checked per map/prefix only, not per L/W/vvvv.
 */
#ifndef HV_INSN_H
#define HV_INSN_H

#include <tessel/types.h>

enum insn_mode { INSN_MODE_16 = 2, INSN_MODE_32 = 4, INSN_MODE_64 = 8 };

#define INSN_MAX_LEN 15 /* SDM Vol. 2 2.3.11: longer is #GP */
#define INSN_REG_NONE 0xff
#define INSN_REG_RIP 16

/* Segment register numbers (SDM Vol. 2 Appendix B, Table B-6 "sreg" encoding), insn.seg. */
#define INSN_SEG_ES 0
#define INSN_SEG_CS 1
#define INSN_SEG_SS 2
#define INSN_SEG_DS 3
#define INSN_SEG_FS 4
#define INSN_SEG_GS 5

struct insn {
	u8 len;      /* total length in bytes */
	u8 mode;     /* enum insn_mode it was decoded in */
	u8 opsize;   /* effective operand size in bytes: 1,2,4,8 (1 for byte forms) */
	u8 addrsize; /* effective address size in bytes: 2,4,8 */
	u8 map;      /* 0 = one-byte, 1 = 0F, 2 = 0F38, 3 = 0F3A (VEX/EVEX: mmmmm; EVEX 5/6) */
	u8 opcode;   /* opcode byte in that map */
	u8 rex;      /* REX byte or 0 (VEX/EVEX: a synthesized 0x40|W|R|X|B) */
	bool lock, rep, repne, opsize_prefix, addrsize_prefix;
	/* Effective segment override (INSN_SEG_*) or INSN_REG_NONE. In 64-bit mode only FS/GS
	 * overrides count; ES/CS/SS/DS prefixes are ignored there (SDM Vol. 1 3.3.7.1). */
	u8 seg;
	u8 mandatory;            /* mandatory prefix selecting the opcode: 0, 0x66, 0xF3, 0xF2 */
	bool vex, evex;          /* VEX / EVEX encoded */
	u8 vex_l, vex_w, vex_vvvv; /* from VEX/EVEX (vex_l is L'L for EVEX; vvvv un-inverted) */
	bool has_modrm;
	u8 modrm, sib;
	/* reg and rm include REX.R/REX.B (or VEX/EVEX R/B) (0-15); rm only meaningful when
	 * mod==3. EVEX R'/X (registers 16-31) are not folded in. */
	u8 mod, reg, rm;
	bool has_mem;    /* a memory operand (ModRM with mod != 3, or moffs forms A0-A3) */
	bool vsib;       /* mem_index names a vector register (VEX/EVEX gather/scatter) */
	u8 mem_base;     /* 0-15, INSN_REG_RIP, or INSN_REG_NONE */
	u8 mem_index;    /* 0-15 or INSN_REG_NONE */
	u8 mem_scale;    /* 1,2,4,8 */
	/* Sign-extended displacement; moffs: the absolute address, zero-extended. For EVEX the
	 * raw disp8 is stored, NOT the disp8*N compressed value (SDM Vol. 2 2.7.5): the EVEX
	 * tuple-type tables are not modelled, so insn_mem_offset() is wrong for EVEX disp8. */
	s64 disp;
	u8 disp_size;    /* bytes of displacement as encoded (0,1,2,4,8) */
	u8 imm_size;     /* bytes of immediate (total, e.g. ENTER has 3) */
	u64 imm;         /* immediate as encoded, zero-extended to 64 bits */
	/* Bytes the explicit memory operand accesses, for the forms the emulator handles
	 * (MOV/ALU/XCHG/CMPXCHG/XADD/BTx/SETcc/MOVNTI/MOVS/STOS/FF/SSE stores/FXSAVE/FNSTENV);
	 * 0 when not computed (or variable, e.g. XSAVE). */
	u16 memsize;
};

/* Decode at most `avail` bytes. Returns 0 or a negative value (-1 invalid/undefined opcode
 * or truncated/too long; never reads beyond avail). */
int insn_decode(struct insn *out, const u8 *bytes, size_t avail, enum insn_mode mode);

/* Effective address (offset within the segment, before adding the segment base), given
 * the 16 GPRs in the order RAX,RCX,RDX,RBX,RSP,RBP,RSI,RDI,R8..R15 and the address of the
 * next instruction (for RIP-relative). Truncated to addrsize. Returns 0 without a memory
 * operand. VSIB (vector index) operands are not computed (the index is a vector). */
u64 insn_mem_offset(const struct insn *in, const u64 gpr[16], u64 next_rip);

#endif
