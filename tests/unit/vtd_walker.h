/*
 * An independent VT-d second-level walker for the host tests, written from the VT-d
 * specification rev. 4.1 section 3.7 ("Second-Stage Translation") and 9.8 ("Second-Stage
 * Paging Entries"), not from drivers/vtd_pt.c: raw 64-bit entries, its own masks.
 *
 * vw_walk() translates one DMA address with a 3- or 4-level table: an entry with R = W = 0 is
 * not present (the request faults); bit 7 (PS) in a level-2 or level-3 entry makes it a leaf;
 * PS in a level-4 entry and address bits at or above the address width are reserved (a
 * fault too). Permissions are the AND of R and W over the walk.
 */
#ifndef TESTS_VTD_WALKER_H
#define TESTS_VTD_WALKER_H

#include <hw.h>

enum { VW_OK, VW_NOT_PRESENT, VW_RESERVED };

struct vw_result {
	int status;
	u64 hpa;
	u64 page_size;
	bool r, w;
	int level;
};

static inline struct vw_result vw_walk(u64 root, int levels, unsigned haw, u64 a)
{
	struct vw_result res = { VW_NOT_PRESENT, 0, 0, true, true, 0 };
	u64 addr_mask = ((haw >= 64 ? ~0ULL : (1ULL << haw) - 1)) & ~0xfffULL;
	if (levels < 64 / 9 && (a >> (12 + 9 * levels)))
		return res; /* beyond the input address width */
	const u64 *t = (const u64 *)hpa_to_ptr(hpa(root));
	for (int l = levels; l >= 1; l--) {
		unsigned shift = 12 + 9 * (unsigned)(l - 1);
		u64 e = t[(a >> shift) & 511];
		if (!(e & 3)) {
			res.status = VW_NOT_PRESENT;
			res.level = l;
			return res;
		}
		if ((e & 0x000fffffffffffffULL & ~addr_mask & ~0xfffULL) || (l == 4 && (e & 0x80))) {
			res.status = VW_RESERVED;
			res.level = l;
			return res;
		}
		res.r = res.r && (e & 1);
		res.w = res.w && (e & 2);
		if (l == 1 || ((l == 2 || l == 3) && (e & 0x80))) {
			u64 size = 1ULL << shift;
			res.status = VW_OK;
			res.page_size = size;
			res.hpa = (e & addr_mask & ~(size - 1)) | (a & (size - 1));
			res.level = l;
			return res;
		}
		t = (const u64 *)hpa_to_ptr(hpa(e & addr_mask));
	}
	return res;
}

#endif
