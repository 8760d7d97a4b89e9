/*
 * MTRR state and memory-type resolution (Intel SDM Vol. 3A section 11.11). The state is a
 * snapshot of the MSRs, read once at boot; the EPT builder asks it for the type of an
 * address or of a whole range. Types use the MT_* encodings of include/arch/cpu.h.
 */
#ifndef MM_MTRR_H
#define MM_MTRR_H

#include <tessel/types.h>

#define MTRR_MAX_VAR 32
#define MTRR_FIXED_COUNT 88 /* 8 x 64 KiB + 16 x 16 KiB + 64 x 4 KiB, covering [0, 1 MiB) */
#define MTRR_FIXED_END 0x100000ULL

/* IA32_MTRRCAP (Figure 11-5) and IA32_MTRR_DEF_TYPE (Figure 11-6) */
#define MTRRCAP_VCNT_MASK 0xffULL
#define MTRRCAP_FIX (1ULL << 8)
#define MTRRCAP_WC (1ULL << 10)
#define MTRR_DEF_TYPE_MASK 0xffULL
#define MTRR_DEF_FE (1ULL << 10)
#define MTRR_DEF_E (1ULL << 11)
/* IA32_MTRR_PHYSBASEn / PHYSMASKn (Figure 11-7) */
#define MTRR_PHYSBASE_TYPE_MASK 0xffULL
#define MTRR_PHYSMASK_VALID (1ULL << 11)

struct mtrr_state {
	bool enabled;       /* IA32_MTRR_DEF_TYPE.E */
	bool fixed_enabled; /* IA32_MTRR_DEF_TYPE.FE and IA32_MTRRCAP.FIX */
	u8 def_type;        /* IA32_MTRR_DEF_TYPE bits 7:0 */
	u8 fixed[MTRR_FIXED_COUNT]; /* one type per fixed range, in address order */
	u32 var_count;      /* pairs present (IA32_MTRRCAP.VCNT, at most MTRR_MAX_VAR) */
	struct {
		u64 base;   /* IA32_MTRR_PHYSBASEn as read: address bits and type in bits 7:0 */
		u64 mask;   /* IA32_MTRR_PHYSMASKn as read: address bits and V in bit 11 */
	} var[MTRR_MAX_VAR];
	u8 phys_bits;       /* MAXPHYADDR (CPUID 0x80000008 EAX[7:0]) */
};

/* Snapshot the MTRR MSRs. Where IA32_MTRRCAP cannot be read (no MTRRs), the state says
 * "enabled, default WB, no ranges": with EPT memory type WB and IPAT=0 the guest's PAT alone
 * then decides the effective type, as it does on a processor without MTRRs. */
void mtrr_read(struct mtrr_state *s, u8 phys_bits);

/* The type of the byte at pa. Addresses at or above 2^phys_bits are not memory; they get the
 * default type (UC when the MTRRs are disabled). */
u8 mtrr_type(const struct mtrr_state *s, u64 pa);

/* True, with *type set, if every byte of [base, base + size) has the same type. False for an
 * empty range or one that wraps past 2^64. Cost grows with the number of variable ranges and
 * address bits, not with the size of the range. */
bool mtrr_range_uniform(const struct mtrr_state *s, u64 base, u64 size, u8 *type);

#endif
