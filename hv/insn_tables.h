/*
 * Internal to the instruction decoder (hv/insn.c): the encoding of the per-opcode
 * attribute words in hv/insn_tables.c. One u32 per opcode per map; 0 means undefined.
 */
#ifndef HV_INSN_TABLES_H
#define HV_INSN_TABLES_H

#include <tessel/types.h>

/* Immediate kinds (SDM Vol. 2 A.2.1 "Codes for Addressing Method", A.2.2 operand types). */
#define IMM_NONE 0
#define IMM_B 1     /* Ib / Jb */
#define IMM_W 2     /* Iw */
#define IMM_Z 3     /* Iz / Jz: 2 bytes with 16-bit operand size, else 4 */
#define IMM_V 4     /* Iv: 2, 4 or 8 bytes (MOV r, imm: B8+r) */
#define IMM_AP 5    /* Ap: ptr16:16 / ptr16:32 */
#define IMM_MOFFS 6 /* Ob/Ov: address-size offset (A0-A3) */
#define IMM_WB 7    /* Iw, Ib (ENTER) */
#define IMM_BB 8    /* Ib, Ib (AMD EXTRQ/INSERTQ) */
#define IMM_MASK 0xf

#define OPF_MODRM BIT(4)   /* ModRM byte follows the opcode */
#define OPF_BYTE BIT(5)    /* operand size is 1 byte (Eb/Gb/AL forms) */
#define OPF_D64 BIT(6)     /* 64-bit default operand size in 64-bit mode (A.2.5 "d64") */
#define OPF_F64 BIT(7)     /* 64-bit forced operand size in 64-bit mode (A.2.5 "f64") */
#define OPF_I64 BIT(8)     /* invalid in 64-bit mode (A.2.5 "i64") */
#define OPF_O64 BIT(9)     /* valid only in 64-bit mode (A.2.5 "o64") */
#define OPF_GRP BIT(10)    /* ModRM.reg opcode extension group or special case, see insn.c */
#define OPF_LOCK BIT(11)   /* LOCK allowed when the destination is memory (Vol. 3 8.1.2.2) */
#define OPF_MEMONLY BIT(12) /* ModRM.mod == 3 is undefined */
#define OPF_REGONLY BIT(13) /* ModRM.mod != 3 is undefined */
#define OPF_VALID BIT(14)
#define OPF_OS66 BIT(15)   /* 66 is operand size even though the prefix masks are selective */
/* Mandatory-prefix masks (SDM Vol. 2 2.1.2 / A.3 "mandatory prefixes") for mod != 3 and for
 * mod == 3 (or no ModRM). Both zero: a legacy instruction, prefixes are not selective. */
#define PFX_NP 1
#define PFX_66 2
#define PFX_F3 4
#define PFX_F2 8
#define OPF_PMEM(m) ((u32)(m) << 16)
#define OPF_PREG(m) ((u32)(m) << 20)
#define OPF_PMEM_OF(e) (((e) >> 16) & 0xf)
#define OPF_PREG_OF(e) (((e) >> 20) & 0xf)

extern const u32 insn_map_1byte[256];
extern const u32 insn_map_0f[256];
extern const u32 insn_map_0f38[256];
extern const u32 insn_map_0f3a[256];
/* VEX maps 1-3: mask of valid pp values (PFX_*) per opcode. */
extern const u8 insn_vex_pp[3][256];
/* x87 escapes D8-DF (A.4): valid ModRM.reg for memory forms, valid ModRM C0-FF bytes. */
extern const u8 insn_x87_mem[8];
extern const u64 insn_x87_reg[8];

#endif
