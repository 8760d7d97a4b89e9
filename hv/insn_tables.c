/*
 * Opcode attribute tables for the instruction decoder (hv/insn.c): which opcodes are
 * defined, whether they take a ModRM byte, which immediate, operand-size attributes and
 * which mandatory prefixes select them. Transcribed from Intel SDM Vol. 2 Appendix A
 * (Tables A-2 one-byte, A-3 two-byte 0F, A-4 0F38, A-5 0F3A, A-6 groups, A.4 x87) and the
 * VEX columns of the instruction pages; the few AMD additions that Intel leaves undefined
 * but that do not change instruction lengths (SSE4a, PREFETCH, SVM) are marked "AMD".
 * Group (ModRM.reg) validity and other context-dependent rules live in insn.c.
 */
#include "insn_tables.h"

#define V OPF_VALID
#define M (OPF_VALID | OPF_MODRM)
#define BY OPF_BYTE
#define LK OPF_LOCK
#define D64 OPF_D64
#define F64 OPF_F64
#define I64 OPF_I64
#define O64 OPF_O64
#define GRP OPF_GRP
#define MO OPF_MEMONLY
#define RO OPF_REGONLY
#define IB IMM_B
#define IW IMM_W
#define IZ IMM_Z
#define NP PFX_NP
#define P66 PFX_66
#define F3 PFX_F3
#define F2 PFX_F2
#define ALL4 (NP | P66 | F3 | F2)
#define N66 (NP | P66)
/* SSE-style entries: prefix masks for memory and register forms. */
#define S(p) (M | OPF_PMEM(p) | OPF_PREG(p))
#define SMR(pm, pr) (M | OPF_PMEM(pm) | OPF_PREG(pr))

/* ALU block (ADD/OR/ADC/SBB/AND/SUB/XOR): Eb,Gb Ev,Gv Gb,Eb Gv,Ev AL,Ib rAX,Iz */
#define ALU(b, lk) [(b)] = M | BY | (lk), [(b) + 1] = M | (lk), [(b) + 2] = M | BY, \
	[(b) + 3] = M, [(b) + 4] = V | BY | IB, [(b) + 5] = V | IZ
#define R2(b, v) [(b)] = (v), [(b) + 1] = (v)
#define R4(b, v) R2(b, v), R2((b) + 2, v)
#define R8(b, v) [(b)] = (v), [(b) + 1] = (v), [(b) + 2] = (v), [(b) + 3] = (v), \
	[(b) + 4] = (v), [(b) + 5] = (v), [(b) + 6] = (v), [(b) + 7] = (v)
#define R16(b, v) R8(b, v), R8((b) + 8, v)

/* SDM Vol. 2 Table A-2. Prefix bytes (26 2E 36 3E 40-4F(64) 64-67 F0 F2 F3) and the
 * escape 0F are handled by the decoder before the table is consulted. */
const u32 insn_map_1byte[256] = {
	ALU(0x00, LK), [0x06] = V | I64, [0x07] = V | I64,
	ALU(0x08, LK), [0x0e] = V | I64,
	ALU(0x10, LK), [0x16] = V | I64, [0x17] = V | I64,
	ALU(0x18, LK), [0x1e] = V | I64, [0x1f] = V | I64,
	ALU(0x20, LK), [0x27] = V | I64,
	ALU(0x28, LK), [0x2f] = V | I64,
	ALU(0x30, LK), [0x37] = V | I64,
	ALU(0x38, 0), [0x3f] = V | I64,
	R16(0x40, V),                           /* INC/DEC r (REX in 64-bit mode) */
	R16(0x50, V | D64),                     /* PUSH/POP r */
	[0x60] = V | I64, [0x61] = V | I64,
	[0x62] = M | I64 | MO | GRP,            /* BOUND; EVEX (decoded before the table) */
	[0x63] = M,                             /* ARPL / MOVSXD (o64) */
	[0x68] = V | IZ | D64, [0x69] = M | IZ, [0x6a] = V | IB | D64, [0x6b] = M | IB,
	[0x6c] = V | BY, [0x6d] = V, [0x6e] = V | BY, [0x6f] = V,
	R16(0x70, V | IB | F64),                /* Jcc Jb */
	[0x80] = M | BY | IB | GRP | LK, [0x81] = M | IZ | GRP | LK,
	[0x82] = M | BY | IB | GRP | LK | I64, [0x83] = M | IB | GRP | LK,
	[0x84] = M | BY, [0x85] = M, [0x86] = M | BY | LK, [0x87] = M | LK,
	[0x88] = M | BY, [0x89] = M, [0x8a] = M | BY, [0x8b] = M,
	[0x8c] = M | GRP, [0x8d] = M | MO, [0x8e] = M | GRP, [0x8f] = M | D64 | GRP,
	R8(0x90, V),                            /* NOP/PAUSE, XCHG r, rAX */
	[0x98] = V, [0x99] = V, [0x9a] = V | IMM_AP | I64, [0x9b] = V,
	[0x9c] = V | D64, [0x9d] = V | D64, [0x9e] = V, [0x9f] = V,
	[0xa0] = V | BY | IMM_MOFFS, [0xa1] = V | IMM_MOFFS,
	[0xa2] = V | BY | IMM_MOFFS, [0xa3] = V | IMM_MOFFS,
	[0xa4] = V | BY, [0xa5] = V, [0xa6] = V | BY, [0xa7] = V,
	[0xa8] = V | BY | IB, [0xa9] = V | IZ,
	[0xaa] = V | BY, [0xab] = V, [0xac] = V | BY, [0xad] = V, [0xae] = V | BY, [0xaf] = V,
	R8(0xb0, V | BY | IB), R8(0xb8, V | IMM_V),
	[0xc0] = M | BY | IB | GRP, [0xc1] = M | IB | GRP,
	[0xc2] = V | IW | F64, [0xc3] = V | F64,
	[0xc4] = M | I64 | MO, [0xc5] = M | I64 | MO, /* LES/LDS; VEX decoded before */
	[0xc6] = M | BY | IB | GRP, [0xc7] = M | IZ | GRP,
	[0xc8] = V | IMM_WB | D64, [0xc9] = V | D64, [0xca] = V | IW, [0xcb] = V,
	[0xcc] = V, [0xcd] = V | IB, [0xce] = V | I64, [0xcf] = V,
	[0xd0] = M | BY | GRP, [0xd1] = M | GRP, [0xd2] = M | BY | GRP, [0xd3] = M | GRP,
	[0xd4] = V | IB | I64, [0xd5] = V | IB | I64,
	[0xd6] = V | I64,                       /* SALC (undocumented, reserved by Intel) */
	[0xd7] = V | BY,
	R8(0xd8, M | GRP),                      /* x87 escapes, A.4 */
	[0xe0] = V | IB | F64, [0xe1] = V | IB | F64, [0xe2] = V | IB | F64, [0xe3] = V | IB | F64,
	[0xe4] = V | BY | IB, [0xe5] = V | IB, [0xe6] = V | BY | IB, [0xe7] = V | IB,
	[0xe8] = V | IZ | F64, [0xe9] = V | IZ | F64, [0xea] = V | IMM_AP | I64,
	[0xeb] = V | IB | F64,
	[0xec] = V | BY, [0xed] = V, [0xee] = V | BY, [0xef] = V,
	[0xf1] = V, [0xf4] = V, [0xf5] = V,
	[0xf6] = M | BY | GRP | LK, [0xf7] = M | GRP | LK,
	[0xf8] = V, [0xf9] = V, [0xfa] = V, [0xfb] = V, [0xfc] = V, [0xfd] = V,
	[0xfe] = M | BY | GRP | LK, [0xff] = M | GRP | LK,
};

/* SDM Vol. 2 Table A-3 (0F xx). */
const u32 insn_map_0f[256] = {
	[0x00] = M | GRP, [0x01] = M | GRP, [0x02] = M, [0x03] = M,
	[0x05] = V, [0x06] = V, [0x07] = V, [0x08] = V, [0x09] = V, [0x0b] = V,
	[0x0d] = M | GRP,                       /* PREFETCHW (/1), AMD PREFETCH */
	[0x10] = S(ALL4), [0x11] = S(ALL4),
	[0x12] = SMR(ALL4, NP | F3 | F2), [0x13] = SMR(N66, 0),
	[0x14] = S(N66), [0x15] = S(N66),
	[0x16] = SMR(N66 | F3, NP | F3), [0x17] = SMR(N66, 0),
	R8(0x18, M | GRP),                      /* prefetch / hint NOPs / MPX / CET */
	[0x20] = M | GRP, [0x21] = M | GRP, [0x22] = M | GRP, [0x23] = M | GRP, /* MOV CR/DR */
	[0x28] = S(N66), [0x29] = S(N66), [0x2a] = S(ALL4), [0x2b] = SMR(ALL4, 0),
	[0x2c] = S(ALL4), [0x2d] = S(ALL4), [0x2e] = S(N66), [0x2f] = S(N66),
	[0x30] = V, [0x31] = V, [0x32] = V, [0x33] = V, [0x34] = V, [0x35] = V,
	[0x37] = V | OPF_PREG(NP),               /* GETSEC */
	R16(0x40, M),                           /* CMOVcc */
	[0x50] = SMR(0, N66), [0x51] = S(ALL4), [0x52] = S(NP | F3), [0x53] = S(NP | F3),
	[0x54] = S(N66), [0x55] = S(N66), [0x56] = S(N66), [0x57] = S(N66),
	[0x58] = S(ALL4), [0x59] = S(ALL4), [0x5a] = S(ALL4), [0x5b] = S(N66 | F3),
	[0x5c] = S(ALL4), [0x5d] = S(ALL4), [0x5e] = S(ALL4), [0x5f] = S(ALL4),
	[0x60] = S(N66), [0x61] = S(N66), [0x62] = S(N66), [0x63] = S(N66),
	[0x64] = S(N66), [0x65] = S(N66), [0x66] = S(N66), [0x67] = S(N66),
	[0x68] = S(N66), [0x69] = S(N66), [0x6a] = S(N66), [0x6b] = S(N66),
	[0x6c] = S(P66), [0x6d] = S(P66), [0x6e] = S(N66), [0x6f] = S(N66 | F3),
	[0x70] = S(ALL4) | IB,
	[0x71] = S(N66) | IB | GRP, [0x72] = S(N66) | IB | GRP, [0x73] = S(N66) | IB | GRP,
	[0x74] = S(N66), [0x75] = S(N66), [0x76] = S(N66),
	[0x77] = V | OPF_PREG(NP),              /* EMMS (no ModRM) */
	[0x78] = M | GRP, [0x79] = M | GRP,     /* VMREAD/VMWRITE; AMD EXTRQ/INSERTQ */
	[0x7c] = S(P66 | F2), [0x7d] = S(P66 | F2), [0x7e] = S(N66 | F3), [0x7f] = S(N66 | F3),
	R16(0x80, V | IZ | F64),                /* Jcc Jz */
	R16(0x90, M | BY),                      /* SETcc Eb */
	[0xa0] = V | D64, [0xa1] = V | D64, [0xa2] = V, [0xa3] = M, [0xa4] = M | IB, [0xa5] = M,
	[0xa8] = V | D64, [0xa9] = V | D64, [0xaa] = V, [0xab] = M | LK, [0xac] = M | IB,
	[0xad] = M, [0xae] = M | GRP, [0xaf] = M,
	[0xb0] = M | BY | LK, [0xb1] = M | LK, [0xb2] = M | MO, [0xb3] = M | LK,
	[0xb4] = M | MO, [0xb5] = M | MO, [0xb6] = M, [0xb7] = M,
	[0xb8] = M | GRP,                       /* POPCNT (F3 only) */
	[0xb9] = M,                             /* UD1 Gv, Ev (defined to #UD, but decodable) */
	[0xba] = M | IB | GRP | LK, [0xbb] = M | LK, [0xbc] = M, [0xbd] = M, [0xbe] = M, [0xbf] = M,
	[0xc0] = M | BY | LK, [0xc1] = M | LK, [0xc2] = S(ALL4) | IB,
	[0xc3] = SMR(NP, 0) | OPF_OS66,          /* MOVNTI My, Gy */
	[0xc4] = S(N66) | IB, [0xc5] = SMR(0, N66) | IB, [0xc6] = S(N66) | IB,
	[0xc7] = M | GRP | LK,
	R8(0xc8, V),                            /* BSWAP */
	[0xd0] = S(P66 | F2), [0xd1] = S(N66), [0xd2] = S(N66), [0xd3] = S(N66),
	[0xd4] = S(N66), [0xd5] = S(N66), [0xd6] = SMR(P66, P66 | F3 | F2), [0xd7] = SMR(0, N66),
	[0xd8] = S(N66), [0xd9] = S(N66), [0xda] = S(N66), [0xdb] = S(N66),
	[0xdc] = S(N66), [0xdd] = S(N66), [0xde] = S(N66), [0xdf] = S(N66),
	[0xe0] = S(N66), [0xe1] = S(N66), [0xe2] = S(N66), [0xe3] = S(N66),
	[0xe4] = S(N66), [0xe5] = S(N66), [0xe6] = S(P66 | F3 | F2), [0xe7] = SMR(N66, 0),
	[0xe8] = S(N66), [0xe9] = S(N66), [0xea] = S(N66), [0xeb] = S(N66),
	[0xec] = S(N66), [0xed] = S(N66), [0xee] = S(N66), [0xef] = S(N66),
	[0xf0] = SMR(F2, 0), [0xf1] = S(N66), [0xf2] = S(N66), [0xf3] = S(N66),
	[0xf4] = S(N66), [0xf5] = S(N66), [0xf6] = S(N66), [0xf7] = SMR(0, N66),
	[0xf8] = S(N66), [0xf9] = S(N66), [0xfa] = S(N66), [0xfb] = S(N66),
	[0xfc] = S(N66), [0xfd] = S(N66), [0xfe] = S(N66),
	[0xff] = M,                             /* UD0 Gv, Ev */
};

/* SDM Vol. 2 Table A-4 (0F 38 xx). */
const u32 insn_map_0f38[256] = {
	R8(0x00, S(N66)), [0x08] = S(N66), [0x09] = S(N66), [0x0a] = S(N66), [0x0b] = S(N66),
	[0x10] = S(P66), [0x14] = S(P66), [0x15] = S(P66), [0x17] = S(P66),
	[0x1c] = S(N66), [0x1d] = S(N66), [0x1e] = S(N66),
	[0x20] = S(P66), [0x21] = S(P66), [0x22] = S(P66), [0x23] = S(P66),
	[0x24] = S(P66), [0x25] = S(P66), [0x28] = S(P66), [0x29] = S(P66),
	[0x2a] = SMR(P66, 0), [0x2b] = S(P66),
	[0x30] = S(P66), [0x31] = S(P66), [0x32] = S(P66), [0x33] = S(P66),
	[0x34] = S(P66), [0x35] = S(P66), [0x37] = S(P66),
	R8(0x38, S(P66)), [0x40] = S(P66), [0x41] = S(P66),
	[0x80] = SMR(P66, 0), [0x81] = SMR(P66, 0), [0x82] = SMR(P66, 0), /* INVEPT/VPID/PCID */
	[0xc8] = S(NP), [0xc9] = S(NP), [0xca] = S(NP), [0xcb] = S(NP), [0xcc] = S(NP),
	[0xcd] = S(NP), [0xcf] = S(P66),
	[0xd8] = SMR(F3, 0) | GRP,               /* Key Locker AESENC/DECWIDE128/256KL /0-/3 */
	[0xdb] = S(P66), [0xdc] = S(P66 | F3),   /* AESENC; AESENC128KL (m), LOADIWKEY (r) */
	[0xdd] = SMR(P66 | F3, P66), [0xde] = SMR(P66 | F3, P66), [0xdf] = SMR(P66 | F3, P66),
	[0xfa] = SMR(0, F3), [0xfb] = SMR(0, F3), /* ENCODEKEY128/256 */
	[0xf0] = SMR(N66 | F2, F2) | OPF_OS66, /* MOVBE Gy,My / CRC32 Gd,Eb */
	[0xf1] = SMR(N66 | F2, F2) | OPF_OS66, /* MOVBE My,Gy / CRC32 Gd,Ey */
	[0xf5] = SMR(P66, 0) | OPF_OS66,       /* WRUSSD/Q */
	[0xf6] = SMR(NP | P66 | F3, P66 | F3) | OPF_OS66, /* WRSSD/Q, ADCX, ADOX */
	[0xf8] = SMR(P66 | F3 | F2, 0),        /* MOVDIR64B, ENQCMDS, ENQCMD */
	[0xf9] = SMR(NP, 0) | OPF_OS66,        /* MOVDIRI */
};

/* SDM Vol. 2 Table A-5 (0F 3A xx): every entry has an imm8. */
const u32 insn_map_0f3a[256] = {
	[0x08] = S(P66) | IB, [0x09] = S(P66) | IB, [0x0a] = S(P66) | IB, [0x0b] = S(P66) | IB,
	[0x0c] = S(P66) | IB, [0x0d] = S(P66) | IB, [0x0e] = S(P66) | IB, [0x0f] = S(N66) | IB,
	[0x14] = S(P66) | IB, [0x15] = S(P66) | IB, [0x16] = S(P66) | IB, [0x17] = S(P66) | IB,
	[0x20] = S(P66) | IB, [0x21] = S(P66) | IB, [0x22] = S(P66) | IB,
	[0x40] = S(P66) | IB, [0x41] = S(P66) | IB, [0x42] = S(P66) | IB, [0x44] = S(P66) | IB,
	[0x60] = S(P66) | IB, [0x61] = S(P66) | IB, [0x62] = S(P66) | IB, [0x63] = S(P66) | IB,
	[0xcc] = S(NP) | IB, [0xce] = S(P66) | IB, [0xcf] = S(P66) | IB, [0xdf] = S(P66) | IB,
};

/* VEX-encoded opcodes (SDM Vol. 2 chapter 2.3 and the VEX rows of the instruction pages),
 * mask of valid VEX.pp per opcode, maps 0F, 0F38, 0F3A. */
#define A4 (NP | P66 | F3 | F2)
const u8 insn_vex_pp[3][256] = {
	[0] = {
		[0x10] = A4, [0x11] = A4, [0x12] = A4, [0x13] = N66, [0x14] = N66, [0x15] = N66,
		[0x16] = N66 | F3, [0x17] = N66, [0x28] = N66, [0x29] = N66, [0x2a] = F3 | F2,
		[0x2b] = N66, [0x2c] = F3 | F2, [0x2d] = F3 | F2, [0x2e] = N66, [0x2f] = N66,
		[0x41] = N66, [0x42] = N66, [0x44] = N66, [0x45] = N66, [0x46] = N66, [0x47] = N66,
		[0x4a] = N66, [0x4b] = N66,
		[0x50] = N66, [0x51] = A4, [0x52] = NP | F3, [0x53] = NP | F3,
		[0x54] = N66, [0x55] = N66, [0x56] = N66, [0x57] = N66,
		[0x58] = A4, [0x59] = A4, [0x5a] = A4, [0x5b] = N66 | F3,
		[0x5c] = A4, [0x5d] = A4, [0x5e] = A4, [0x5f] = A4,
		R8(0x60, P66), R4(0x68, P66), [0x6c] = P66, [0x6d] = P66, [0x6e] = P66,
		[0x6f] = P66 | F3,
		[0x70] = P66 | F3 | F2, [0x71] = P66, [0x72] = P66, [0x73] = P66,
		[0x74] = P66, [0x75] = P66, [0x76] = P66, [0x77] = NP,
		[0x7c] = P66 | F2, [0x7d] = P66 | F2, [0x7e] = P66 | F3, [0x7f] = P66 | F3,
		[0x90] = N66, [0x91] = N66, [0x92] = N66 | F2, [0x93] = N66 | F2,
		[0x98] = N66, [0x99] = N66,
		[0xae] = NP, [0xc2] = A4, [0xc4] = P66, [0xc5] = P66, [0xc6] = N66,
		[0xd0] = P66 | F2, [0xd1] = P66, R2(0xd2, P66), R4(0xd4, P66), R8(0xd8, P66),
		R4(0xe0, P66), R2(0xe4, P66), [0xe6] = P66 | F3 | F2, [0xe7] = P66, R8(0xe8, P66),
		[0xf0] = F2, [0xf1] = P66, R2(0xf2, P66), R4(0xf4, P66), R4(0xf8, P66),
		R2(0xfc, P66), [0xfe] = P66,
	},
	[1] = {
		R16(0x00, P66), [0x13] = P66, [0x16] = P66, [0x17] = P66,
		[0x18] = P66, [0x19] = P66, [0x1a] = P66, [0x1c] = P66, [0x1d] = P66, [0x1e] = P66,
		R16(0x20, P66), R16(0x30, P66), [0x40] = P66, [0x41] = P66,
		[0x45] = P66, [0x46] = P66, [0x47] = P66,
		[0x50] = P66, [0x51] = P66, [0x52] = P66, [0x53] = P66,
		[0x58] = P66, [0x59] = P66, [0x5a] = P66, [0x78] = P66, [0x79] = P66,
		[0x8c] = P66, [0x8e] = P66, [0x90] = P66, [0x91] = P66, [0x92] = P66, [0x93] = P66,
		R8(0x96, P66), [0x9e] = P66, [0x9f] = P66, R8(0xa6, P66), [0xae] = P66, [0xaf] = P66,
		R8(0xb6, P66), [0xbe] = P66, [0xbf] = P66,
		[0xcf] = P66, [0xdc] = P66, [0xdd] = P66, [0xde] = P66, [0xdf] = P66,
		[0xf2] = NP, [0xf3] = NP, [0xf5] = NP | F3 | F2, [0xf6] = F2, [0xf7] = A4,
	},
	[2] = {
		[0x00] = P66, [0x01] = P66, [0x02] = P66, [0x04] = P66, [0x05] = P66, [0x06] = P66,
		R8(0x08, P66), [0x14] = P66, [0x15] = P66, [0x16] = P66, [0x17] = P66,
		[0x18] = P66, [0x19] = P66, [0x1d] = P66, [0x20] = P66, [0x21] = P66, [0x22] = P66,
		[0x30] = P66, [0x31] = P66, [0x32] = P66, [0x33] = P66, [0x38] = P66, [0x39] = P66,
		[0x40] = P66, [0x41] = P66, [0x42] = P66, [0x44] = P66, [0x46] = P66,
		[0x4a] = P66, [0x4b] = P66, [0x4c] = P66,
		[0x60] = P66, [0x61] = P66, [0x62] = P66, [0x63] = P66,
		[0xce] = P66, [0xcf] = P66, [0xdf] = P66, [0xf0] = F2,
		/* AMD FMA4 and VPERMIL2PS/PD (is4 operand in the imm8) */
		[0x48] = P66, [0x49] = P66, R4(0x5c, P66), R8(0x68, P66), R8(0x78, P66),
	},
};

/* x87 (SDM Vol. 2 A.4, Tables A-7..A-22). Memory forms: valid ModRM.reg per escape. */
const u8 insn_x87_mem[8] = {
	0xff,                   /* D8 */
	0xfd,                   /* D9: /1 reserved */
	0xff,                   /* DA */
	0xaf,                   /* DB: /4 /6 reserved */
	0xff,                   /* DC */
	0xdf,                   /* DD: /5 reserved */
	0xff,                   /* DE */
	0xff,                   /* DF */
};

/* Register forms: bit n set = ModRM byte 0xC0+n is defined. '*': the aliases and 8087/287
 * leftovers Intel does not list but every x87 since the 387 executes (as in AMD's manual). */
const u64 insn_x87_reg[8] = {
	~0ULL,                                            /* D8: all */
	0x00000000000000ffULL | (1ULL << 0x10) |          /* D9: FLD ST(i), FXCH, FNOP */
		0x000000000000ff00ULL |
		(0xffULL << 0x18) |                           /* FSTP1* (D8-DF) */
		(0x33ULL << 0x20) | (0x7fULL << 0x28) |       /* E0 E1 E4 E5, E8-EE */
		(0xffffULL << 0x30),                          /* F0-FF */
	0x00000000ffffffffULL | (1ULL << 0x29),           /* DA: FCMOVcc, FUCOMPP */
	0x00000000ffffffffULL | (0x1fULL << 0x20) |       /* DB: FCMOVNcc, FENI* FDISI* FNCLEX
							     FNINIT FSETPM* (E0-E4) */
		(0xffffULL << 0x28),                          /* FUCOMI, FCOMI */
	~0ULL,                                            /* DC: all */
	0x0000ffffffffffffULL,                            /* DD: FFREE, FXCH4*, FST, FSTP, FUCOM(P) */
	0x00ffffffULL | (1ULL << 0x19) |                  /* DE: FADDP, FMULP, FCOMP5*, FCOMPP, */
		(0xffffffffULL << 0x20),                      /* FSUB(R)P, FDIV(R)P */
	0xffffffffULL | (1ULL << 0x20) |                  /* DF: FFREEP*, FXCH7*, FSTP8/9*, */
		(0xffffULL << 0x28),                          /* FNSTSW AX, FUCOMIP, FCOMIP */
};
