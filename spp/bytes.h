/*
 * Byte-precise protection (ABI 1.4, HC_SPP_PROTECT_BYTES): for a page in byte mode, the
 * bytes a guest asked to protect, one bit per byte. The sub-page map in the permission store
 * (spp/store.h) stays what the processor sees: every sub-page holding a protected byte is
 * write-protected there, so every write to it reaches the hypervisor, which completes the
 * bytes the mask leaves writable (spp/violation.c) and keeps the others. A page not in byte
 * mode protects its protected sub-pages whole, as in ABI 1.0.
 *
 * A fixed table of SPP_BYTES_PAGES pages, scanned linearly: it is consulted only on a write
 * that already exited to the hypervisor and touches a protected sub-page. All calls with
 * spp.lock held (or single-threaded in the host tests).
 */
#ifndef TESSEL_SPP_BYTES_H
#define TESSEL_SPP_BYTES_H

#include <hw.h>

#define SPP_BYTES_PAGES 256
#define SPP_BYTES_WORDS (PAGE_SIZE / 64)

struct spp_bytes {
	u32 n;                                   /* pages in byte mode: gfn[0..n-1] */
	u64 gfn[SPP_BYTES_PAGES];
	u64 mask[SPP_BYTES_PAGES][SPP_BYTES_WORDS]; /* bit b of page i: byte b protected */
};

/* The mask of gfn, or NULL when the page is not in byte mode. Inline for the common case of
 * no page in byte mode: the write-exit path asks on every exit (perf-budget groups). */
const u64 *spp_bytes_find(const struct spp_bytes *t, u64 gfn);
static inline const u64 *spp_bytes_mask(const struct spp_bytes *t, u64 gfn)
{
	return t->n ? spp_bytes_find(t, gfn) : NULL;
}

/* Room for `pages` more pages in byte mode? */
bool spp_bytes_room(const struct spp_bytes *t, u32 pages);

/*
 * Protects bytes [off, off + len) of gfn (off + len <= PAGE_SIZE). A page entering byte mode
 * starts with every byte of the sub-pages `map` protects (so nothing protected before becomes
 * writable). Returns 0, or -ENOMEM when the table is full (nothing changed).
 */
int spp_bytes_add(struct spp_bytes *t, u64 gfn, u32 map, unsigned off, unsigned len);

/* gfn leaves byte mode (HC_SPP_SET on it): its protected sub-pages are protected whole. */
void spp_bytes_drop(struct spp_bytes *t, u64 gfn);

/* Bit `off` of a page's mask. */
static inline bool spp_bytes_bit(const u64 *mask, u64 off)
{
	return (mask[off >> 6] >> (off & 63)) & 1;
}

/* Is byte `off` of a page protected, given the page's map and mask (NULL: not byte mode)? */
static inline bool spp_byte_protected(u32 map, const u64 *mask, unsigned off)
{
	if ((map >> (off >> 7)) & 1)
		return false;
	return !mask || spp_bytes_bit(mask, off);
}

#endif
