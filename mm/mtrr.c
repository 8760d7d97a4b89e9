/*
 * MTRR snapshot and memory-type resolution (see mtrr.h).
 *
 * Precedence (Intel SDM Vol. 3A 11.11.4.1, "MTRR Precedences"):
 *   1. IA32_MTRR_DEF_TYPE.E = 0: every address is UC.
 *   2. FE = 1 (and MTRRCAP.FIX) and the address is below 1 MiB: the fixed-range type.
 *   3. Otherwise the variable ranges: a range matches when (pa & mask) == (base & mask).
 *      No match: the default type. One match: its type. Several: UC if any is UC; WT if
 *      they are all WT or WB; their type if they are all the same. The SDM leaves every
 *      other overlap undefined; we resolve it to UC, the type that is never wrong for
 *      correctness (only slower).
 * Two further choices, also documented in mtrr.h:
 *   - Addresses at or above 2^MAXPHYADDR are not memory; they get the default type.
 *   - Reserved type encodings (2, 3, 7, >= 8) cannot be programmed (WRMSR #GPs, 11.11.2.3);
 *     if one shows up anyway it is treated as UC.
 *
 * mtrr_range_uniform() reasons about aligned power-of-two blocks: over a block of 2^k bytes
 * a variable range matches everywhere, nowhere, or partly, and only mask bits below k can
 * make it "partly". A block is uniform when every combination of its partly-matching
 * ranges gives the same type; otherwise it is halved. Page granularity ends the recursion
 * (masks have no bits below 12), and a non-uniform block is reported as soon as two
 * different types are seen.
 */
#include "mm/mtrr.h"

#include <arch/cpu.h>
#include <arch/msr.h>
#include <hw.h>
#include "lib/string.h"

#define TYPE_MIXED MT_INVALID
#define PHYS_BITS_MIN 20 /* keeps the fixed-range area below the physical limit */
#define PHYS_BITS_MAX 52 /* the architectural MAXPHYADDR limit */

static const u32 fixed_msrs[11] = {
	MSR_IA32_MTRR_FIX64K_00000, MSR_IA32_MTRR_FIX16K_80000, MSR_IA32_MTRR_FIX16K_A0000,
	MSR_IA32_MTRR_FIX4K_C0000 + 0, MSR_IA32_MTRR_FIX4K_C0000 + 1, MSR_IA32_MTRR_FIX4K_C0000 + 2,
	MSR_IA32_MTRR_FIX4K_C0000 + 3, MSR_IA32_MTRR_FIX4K_C0000 + 4, MSR_IA32_MTRR_FIX4K_C0000 + 5,
	MSR_IA32_MTRR_FIX4K_C0000 + 6, MSR_IA32_MTRR_FIX4K_C0000 + 7,
};

void mtrr_read(struct mtrr_state *s, u8 phys_bits)
{
	u64 cap, def;

	memset(s, 0, sizeof(*s));
	s->phys_bits = phys_bits;
	if (!rdmsr_safe(MSR_IA32_MTRRCAP, &cap)) {
		s->enabled = true;
		s->def_type = MT_WB;
		return;
	}
	def = rdmsr(MSR_IA32_MTRR_DEF_TYPE);
	s->enabled = def & MTRR_DEF_E;
	s->def_type = (u8)(def & MTRR_DEF_TYPE_MASK);
	s->fixed_enabled = (def & MTRR_DEF_FE) && (cap & MTRRCAP_FIX);
	if (cap & MTRRCAP_FIX) {
		for (u32 m = 0; m < ARRAY_SIZE(fixed_msrs); m++) {
			u64 v = rdmsr(fixed_msrs[m]);

			for (u32 j = 0; j < 8; j++)
				s->fixed[m * 8 + j] = (u8)(v >> (8 * j));
		}
	}
	s->var_count = (u32)MIN(cap & MTRRCAP_VCNT_MASK, (u64)MTRR_MAX_VAR);
	for (u32 i = 0; i < s->var_count; i++) {
		s->var[i].base = rdmsr(MSR_IA32_MTRR_PHYSBASE0 + 2 * i);
		s->var[i].mask = rdmsr(MSR_IA32_MTRR_PHYSMASK0 + 2 * i);
	}
}

static u8 clean_type(u64 t)
{
	switch (t) {
	case MT_UC: case MT_WC: case MT_WT: case MT_WP: case MT_WB:
		return (u8)t;
	default:
		return MT_UC;
	}
}

static u32 phys_bits(const struct mtrr_state *s)
{
	return MIN(MAX((u32)s->phys_bits, (u32)PHYS_BITS_MIN), (u32)PHYS_BITS_MAX);
}

/* Address bits an MTRR mask may hold: MAXPHYADDR-1:12. */
static u64 addr_bits(const struct mtrr_state *s)
{
	return (BIT(phys_bits(s)) - 1) & PAGE_MASK;
}

/* Fixed-range index of pa < 1 MiB (Table 11-9), and the size of that range. */
static u32 fixed_index(u64 pa, u64 *size)
{
	if (pa < 0x80000) {
		*size = 0x10000;
		return (u32)(pa >> 16);
	}
	if (pa < 0xc0000) {
		*size = 0x4000;
		return 8 + (u32)((pa - 0x80000) >> 14);
	}
	*size = 0x1000;
	return 24 + (u32)((pa - 0xc0000) >> 12);
}

/* The type a set of matching variable-range types (bit t = type t matched) resolves to. */
static u8 combine(u32 set, u8 def)
{
	if (!set)
		return def;
	if (set & BIT(MT_UC))
		return MT_UC;
	if (set == (BIT(MT_WT) | BIT(MT_WB)))
		return MT_WT;
	if ((set & (set - 1)) == 0)
		return (u8)__builtin_ctz(set);
	return MT_UC; /* undefined by the SDM: our choice */
}

static bool var_valid(const struct mtrr_state *s, u32 i)
{
	return s->var[i].mask & MTRR_PHYSMASK_VALID;
}

u8 mtrr_type(const struct mtrr_state *s, u64 pa)
{
	u64 amask = addr_bits(s);
	u32 set = 0;

	if (!s->enabled)
		return MT_UC;
	if (pa >> phys_bits(s))
		return clean_type(s->def_type);
	if (s->fixed_enabled && pa < MTRR_FIXED_END) {
		u64 sz;
		return clean_type(s->fixed[fixed_index(pa, &sz)]);
	}
	for (u32 i = 0; i < s->var_count && i < MTRR_MAX_VAR; i++) {
		u64 m = s->var[i].mask & amask;

		if (var_valid(s, i) && (pa & m) == (s->var[i].base & m))
			set |= (u32)BIT(clean_type(s->var[i].base & MTRR_PHYSBASE_TYPE_MASK));
	}
	return combine(set, clean_type(s->def_type));
}

/* Type of the aligned block [a, a + 2^k), or TYPE_MIXED. Precondition: 12 <= k <= 63. */
static u8 block_type(const struct mtrr_state *s, u64 a, u32 k)
{
	u64 size = BIT(k), limit = BIT(phys_bits(s)), amask = addr_bits(s);
	u32 full = 0, part = 0;
	u8 def = clean_type(s->def_type), t, t2;

	if (a >= limit)
		return def;
	if (size > limit - a)
		goto split; /* straddles 2^MAXPHYADDR */
	if (s->fixed_enabled && a < MTRR_FIXED_END) {
		u64 step;

		if (size > MTRR_FIXED_END - a)
			goto split;
		t = clean_type(s->fixed[fixed_index(a, &step)]);
		for (u64 pa = a; pa < a + size; pa += step)
			if (clean_type(s->fixed[fixed_index(pa, &step)]) != t)
				return TYPE_MIXED;
		return t;
	}
	for (u32 i = 0; i < s->var_count && i < MTRR_MAX_VAR; i++) {
		u64 m = s->var[i].mask & amask, hi = m & ~(size - 1);

		if (!var_valid(s, i) || (a & hi) != (s->var[i].base & hi))
			continue;
		if (m & (size - 1))
			part |= (u32)BIT(clean_type(s->var[i].base & MTRR_PHYSBASE_TYPE_MASK));
		else
			full |= (u32)BIT(clean_type(s->var[i].base & MTRR_PHYSBASE_TYPE_MASK));
	}
	/* Uniform if every subset of the partly-matching types resolves alike. */
	t = combine(full, def);
	for (u32 sub = part; sub; sub = (sub - 1) & part)
		if (combine(full | sub, def) != t)
			goto split;
	return t;
split:
	if (k <= PAGE_SHIFT)
		return TYPE_MIXED; /* unreachable: masks have no bits below 12 */
	t = block_type(s, a, k - 1);
	if (t == TYPE_MIXED)
		return t;
	t2 = block_type(s, a + size / 2, k - 1);
	return t == t2 ? t : TYPE_MIXED;
}

bool mtrr_range_uniform(const struct mtrr_state *s, u64 base, u64 size, u8 *type)
{
	/* Types are per 4 KiB page, so the range widens to whole pages: [a, last + 4 KiB). */
	u64 a = ALIGN_DOWN(base, PAGE_SIZE), last;
	u8 first = TYPE_MIXED;

	if (size == 0 || base + size - 1 < base)
		return false;
	if (!s->enabled) {
		*type = MT_UC;
		return true;
	}
	last = ALIGN_DOWN(base + size - 1, PAGE_SIZE);
	for (;;) {
		u32 k = a ? (u32)__builtin_ctzll(a) : 63;
		u8 t;

		while (k > PAGE_SHIFT && BIT(k) - PAGE_SIZE > last - a)
			k--;
		t = block_type(s, a, k);
		if (t == TYPE_MIXED || (first != TYPE_MIXED && t != first))
			return false;
		first = t;
		if (last - a == BIT(k) - PAGE_SIZE)
			break;
		a += BIT(k);
	}
	*type = first;
	return true;
}
