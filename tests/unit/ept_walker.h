/*
 * An independent EPT walker for the host tests, written from Intel SDM Vol. 3C 28.3.2
 * ("EPT Translation Mechanism", Tables 28-1..28-6) and 28.3.3.1 ("EPT Misconfigurations"),
 * not from mm/ept.c. It decodes raw 64-bit entries with its own masks so that a mistake in
 * include/arch/ept.h or mm/ept.c cannot cancel itself out. Tables are read through
 * hpa_to_ptr() (the fake physical window). Header-only; used by tests only.
 *
 * ew_walk() translates one guest-physical address the way the processor does with a 4-level
 * EPT: it reports an EPT violation for a not-present entry (bits 2:0 clear) and a
 * misconfiguration for reserved bits, W without R, execute-only entries (we assume no
 * execute-only support) and reserved memory types. Permissions are the AND over all levels.
 * ew_for_each_leaf() visits every present leaf in ascending guest-physical order.
 */
#ifndef TESTS_EPT_WALKER_H
#define TESTS_EPT_WALKER_H

#include <hw.h>

enum { EW_OK, EW_VIOLATION, EW_MISCONFIG };

struct ew_result {
	int status;
	const char *why;  /* for a misconfiguration or violation */
	u64 hpa;          /* translated address */
	u64 page_gpa;     /* first gpa of the leaf's page */
	u64 page_size;
	unsigned perm;    /* bit 0 read, 1 write, 2 execute (ANDed over the walk) */
	unsigned mt;      /* leaf bits 5:3 */
	bool ipat;        /* leaf bit 6 */
	int level;        /* 1 = 4 KiB PTE, 2 = 2 MiB PDE, 3 = 1 GiB PDPTE */
};

static inline u64 ew_bits(unsigned hi, unsigned lo) /* mask of bits hi:lo */
{
	return (hi >= 63 ? ~0ULL : ((1ULL << (hi + 1)) - 1)) & ~((1ULL << lo) - 1);
}

static inline const u64 *ew_table(u64 addr) { return (const u64 *)hpa_to_ptr(hpa(addr)); }

/* Checks one entry at `level` (4 = PML4E); leaf tells whether it maps a page. */
static inline const char *ew_check(u64 e, int level, bool leaf, unsigned maxphy)
{
	unsigned rwx = e & 7;

	if ((rwx & 2) && !(rwx & 1))
		return "write without read";
	if (rwx == 4)
		return "execute-only";
	if (maxphy < 52 && (e & ew_bits(51, maxphy)))
		return "address bits above MAXPHYADDR";
	if (!leaf) {
		if (e & ew_bits(7, 3))
			return "reserved bits 7:3 in a non-leaf entry";
		return NULL;
	}
	unsigned mt = (e >> 3) & 7;
	if (mt == 2 || mt == 3 || mt == 7)
		return "reserved memory type";
	if (level == 3 && (e & ew_bits(29, 12)))
		return "reserved bits 29:12 in a 1 GiB leaf";
	if (level == 2 && (e & ew_bits(20, 12)))
		return "reserved bits 20:12 in a 2 MiB leaf";
	return NULL;
}

static inline const char *ew_check_eptp(u64 eptp, unsigned maxphy)
{
	unsigned mt = eptp & 7;

	if (mt != 0 && mt != 6)
		return "EPTP memory type";
	if (((eptp >> 3) & 7) != 3)
		return "EPTP walk length is not 4";
	if (eptp & ew_bits(11, 7))
		return "EPTP reserved bits 11:7";
	if (maxphy < 64 && (eptp & ew_bits(63, maxphy)))
		return "EPTP address above MAXPHYADDR";
	return NULL;
}

static inline int ew_walk(u64 eptp, unsigned maxphy, u64 gpa, struct ew_result *r)
{
	u64 addr = eptp & ew_bits(maxphy - 1, 12);
	unsigned perm = 7;

	*r = (struct ew_result){ .status = EW_MISCONFIG };
	if ((r->why = ew_check_eptp(eptp, maxphy)))
		return r->status;
	if (gpa >> 48) {
		r->status = EW_VIOLATION;
		r->why = "gpa beyond 48 bits";
		return r->status;
	}
	for (int level = 4; level >= 1; level--) {
		unsigned shift = 12 + 9 * (unsigned)(level - 1);
		u64 e = ew_table(addr)[(gpa >> shift) & 511];
		bool leaf = level == 1 || ((level == 3 || level == 2) && (e & (1ULL << 7)));

		if ((e & 7) == 0) {
			r->status = EW_VIOLATION;
			r->why = "not present";
			r->level = level;
			return r->status;
		}
		if ((r->why = ew_check(e, level, leaf, maxphy))) {
			r->level = level;
			return r->status;
		}
		perm &= e & 7;
		if (leaf) {
			u64 size = 1ULL << shift;

			r->status = EW_OK;
			r->level = level;
			r->page_size = size;
			r->page_gpa = gpa & ~(size - 1);
			r->hpa = (e & ew_bits(maxphy - 1, shift)) | (gpa & (size - 1));
			r->perm = perm;
			r->mt = (e >> 3) & 7;
			r->ipat = (e >> 6) & 1;
			return r->status;
		}
		addr = e & ew_bits(maxphy - 1, 12);
	}
	return r->status; /* unreachable */
}

/* Callback per leaf: r describes the whole page at r->page_gpa (r->hpa = its first byte).
 * A misconfigured entry is reported with status EW_MISCONFIG. Return false to stop. */
typedef bool (*ew_leaf_fn)(void *ctx, const struct ew_result *r);

static inline bool ew_visit(u64 addr, int level, u64 base, unsigned perm, unsigned maxphy,
			    ew_leaf_fn fn, void *ctx)
{
	const u64 *t = ew_table(addr);
	unsigned shift = 12 + 9 * (unsigned)(level - 1);

	for (u64 i = 0; i < 512; i++) {
		u64 e = t[i], gpa = base + (i << shift);
		bool leaf = level == 1 || ((level == 3 || level == 2) && (e & (1ULL << 7)));
		struct ew_result r = { .status = EW_MISCONFIG, .level = level, .page_gpa = gpa };

		if ((e & 7) == 0)
			continue;
		if ((r.why = ew_check(e, level, leaf, maxphy))) {
			if (!fn(ctx, &r))
				return false;
			continue;
		}
		if (!leaf) {
			if (!ew_visit(e & ew_bits(maxphy - 1, 12), level - 1, gpa, perm & e & 7,
				      maxphy, fn, ctx))
				return false;
			continue;
		}
		r.status = EW_OK;
		r.page_size = 1ULL << shift;
		r.hpa = e & ew_bits(maxphy - 1, shift);
		r.perm = perm & e & 7;
		r.mt = (e >> 3) & 7;
		r.ipat = (e >> 6) & 1;
		if (!fn(ctx, &r))
			return false;
	}
	return true;
}

static inline bool ew_for_each_leaf(u64 eptp, unsigned maxphy, ew_leaf_fn fn, void *ctx)
{
	if (ew_check_eptp(eptp, maxphy))
		return false;
	return ew_visit(eptp & ew_bits(maxphy - 1, 12), 4, 0, 7, maxphy, fn, ctx);
}

#endif
