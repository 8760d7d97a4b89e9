/*
 * An independent SPPT walker for the host tests, written from docs/SPP.md section 4 (SPPT
 * format; Bochs 2.7 paging.cc spp_walk and the KVM SPP documentation), not from spp/sppt.c.
 * It decodes raw entries with its own masks, so a mistake in include/arch/ept.h or
 * spp/sppt.c cannot cancel itself out. Tables are read through hpa_to_ptr() (the fake
 * physical window). Header-only; used by tests only.
 *
 * sw_walk() does what the processor does for an SPP-eligible write to gpa:
 *   - four levels, indices gpa bits 47:39, 38:30, 29:21, 20:12;
 *   - a non-leaf entry with bit 0 clear is an SPP miss (checked first: junk in a not-valid
 *     entry does not matter);
 *   - a valid non-leaf entry with any of bits 11:1, 51:MAXPHYADDR or 63:52 set is an SPP
 *     misconfiguration; otherwise bits MAXPHYADDR-1:12 address the next table;
 *   - the leaf is a 64-bit vector: an odd bit set is a misconfiguration (per SDM/KVM; Bochs
 *     2.7 ignores it, docs/SPP.md section 10 item 2), else bit 2i grants writes to the
 *     128-byte sub-page i = gpa bits 11:7.
 */
#ifndef TESTS_SPPT_WALKER_H
#define TESTS_SPPT_WALKER_H

#include <hw.h>

enum { SW_OK, SW_MISS, SW_MISCONFIG };

struct sw_result {
	int status;
	int level;        /* level of the entry that missed or was misconfigured (4..1) */
	u64 vector;       /* the leaf, when status is SW_OK */
	bool writable;    /* gpa's sub-page may be written (SW_OK only) */
};

static inline u64 sw_bits(unsigned hi, unsigned lo) /* mask of bits hi:lo */
{
	return (hi >= 63 ? ~0ULL : ((1ULL << (hi + 1)) - 1)) & ~((1ULL << lo) - 1);
}

static inline int sw_walk(u64 root, unsigned maxphy, u64 gpa, struct sw_result *r)
{
	u64 addr = root;

	*r = (struct sw_result){ .status = SW_MISCONFIG };
	for (int level = 4; level >= 2; level--) {
		unsigned shift = 12 + 9 * (unsigned)(level - 1);
		const u64 *tab = (const u64 *)hpa_to_ptr(hpa(addr));
		u64 e = tab[(gpa >> shift) & 0x1ff];
		u64 rsvd = sw_bits(11, 1) | sw_bits(63, 52) | (maxphy < 52 ? sw_bits(51, maxphy) : 0);

		r->level = level;
		if (!(e & 1)) {
			r->status = SW_MISS;
			return r->status;
		}
		if (e & rsvd)
			return r->status;
		addr = e & sw_bits(maxphy - 1, 12);
	}
	r->level = 1;
	r->vector = ((const u64 *)hpa_to_ptr(hpa(addr)))[(gpa >> 12) & 0x1ff];
	for (unsigned b = 1; b < 64; b += 2)
		if (r->vector & (1ULL << b))
			return r->status;
	r->status = SW_OK;
	r->writable = (r->vector >> (2 * ((gpa >> 7) & 31))) & 1;
	return r->status;
}

#endif
