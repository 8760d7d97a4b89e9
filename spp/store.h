/*
 * The sub-page permission store: for every guest page (gfn) whose permissions differ from
 * the default, its 32-bit write map (bit j = 1: bytes [128j, 128j + 127] writable,
 * SPP_MAP_ALL = unprotected, ABI.md section 3) and its LOCKED and TRACK flags; plus, per
 * 2 MiB block (gfn >> 9), how many of its pages are protected (map != SPP_MAP_ALL), which
 * tells the caller when an EPT large page must be split or may be merged back and which
 * SPPT leaf tables are needed. This is the source of truth the EPT bit 61 / SPPT state and
 * the software fallback are derived from.
 *
 * Sparse and growable: a page has an entry iff its map is not SPP_MAP_ALL or it is
 * locked, so memory grows with protected and locked pages, never with guest RAM. Two
 * open-addressing hash tables (linear probing, Fibonacci hashing, deletion by backward
 * shift so no tombstones accumulate) live in one run of pmm pages, allocated at init and
 * replaced by a larger run when spp_store_grow() is asked for more room:
 * page slots (a u64 tag = gfn | flags | used, and a u32 map) and 2 MiB block slots (one u64,
 * block << 10 | count). Both have slots = power of two >= 1.5 x capacity, so the load stays
 * at or below 2/3 and a lookup costs a multiply, a shift and a probe or two.
 *
 * Range operations come in check/apply pairs so a hypercall can validate everything first
 * and then apply without a failure path (ABI.md section 2: a failed call changes nothing).
 *
 * Not thread-safe: the caller holds its lock across check and apply.
 * gfn values must stay below 2^SPP_GFN_BITS (any 64-bit guest-physical address qualifies);
 * range functions return -EINVAL otherwise, single-page ones treat the page as unknown.
 */
#ifndef SPP_STORE_H
#define SPP_STORE_H

#include <tessel/types.h>

#define SPP_MAP_ALL     0xFFFFFFFFu
#define SPP_PAGE_LOCKED (1u << 0)
#define SPP_PAGE_TRACK  (1u << 1)

#define SPP_GFN_BITS    52
#define SPP_GFN_LIMIT   (1ULL << SPP_GFN_BITS)
#define SPP_STORE_MAX_CAPACITY (1ULL << 28) /* entries; keeps the table sizes in range */

struct spp_store {
	u64 *tag;        /* page slots: gfn | SPP_SLOT_* bits, 0 = empty */
	u32 *map;        /* page slots: write map */
	u64 *blk;        /* block slots: block << 10 | protected count, 0 = empty */
	u64 slot_mask;   /* slots - 1 (both tables have the same number of slots) */
	u32 hash_shift;  /* 64 - log2(slots) */
	u64 capacity;    /* page entries allowed */
	u64 entries;     /* page entries in use */
	u64 protected_pages;
	hpa_t mem;       /* the pmm run holding all three arrays */
	u64 mem_pages;
};

/* Allocates the tables for up to capacity_entries page entries (1..SPP_STORE_MAX_CAPACITY):
 * 0, -EINVAL (capacity out of range) or -ENOMEM. The store starts empty. */
int spp_store_init(struct spp_store *s, u64 capacity_entries);
/* Returns the tables to the pmm; the store is empty (and unusable) afterwards. */
void spp_store_destroy(struct spp_store *s);

/* Current map and flags of gfn: unknown pages read map SPP_MAP_ALL, flags 0. */
void spp_store_get(const struct spp_store *s, u64 gfn, u32 *map, u32 *flags);

/*
 * Would SET of n pages from gfn with maps[0..n-1] and flags (SPP_PAGE_TRACK or 0) succeed?
 * -EINVAL for other flag bits or a range beyond SPP_GFN_LIMIT; -EPERM if any page is locked
 * (takes precedence); -ENOMEM if the new entries would not fit (pages that become
 * unprotected count as freeing nothing); else 0. n = 0 is 0. Changes nothing.
 */
int spp_store_check_set(const struct spp_store *s, u64 gfn, u64 n, const u32 *maps, u32 flags);

/*
 * Applies a SET that spp_store_check_set() accepted (undefined otherwise). For every page,
 * in ascending order, after the page (and its block count) is updated, calls
 * cb(ctx, gfn, old_map, new_map, new_flags) if cb is not NULL, also when nothing changed.
 * A page set to SPP_MAP_ALL loses its TRACK flag and its entry; any other map takes TRACK
 * from flags. cb may read the store (spp_store_get, spp_store_count_2m) but not change it.
 */
void spp_store_apply_set(struct spp_store *s, u64 gfn, u64 n, const u32 *maps, u32 flags,
			 void (*cb)(void *ctx, u64 gfn, u32 old_map, u32 new_map, u32 new_flags),
			 void *ctx);

/* As spp_store_apply_set without a callback, for the hypercall's hot path. Returns
 * SPP_APPLY_NARROWED if some page lost write permission on some sub-page, SPP_APPLY_CHANGED
 * if some page's map changed. A locked page (excluded by check_set) keeps its map, and
 * maps[k] is overwritten with it, so maps[] reads as the maps now in force. */
#define SPP_APPLY_NARROWED 1u
#define SPP_APPLY_CHANGED  2u
u32 spp_store_apply_set_bulk(struct spp_store *s, u64 gfn, u64 n, u32 *maps, u32 flags);

/* Would LOCK of n pages from gfn fit? -EINVAL (range), -ENOMEM or 0. Changes nothing. */
int spp_store_check_lock(const struct spp_store *s, u64 gfn, u64 n);
/* Applies a checked LOCK: every page keeps its map and TRACK flag and becomes LOCKED
 * (unprotected pages get an entry so they stay unprotected). Locking twice is harmless. */
void spp_store_apply_lock(struct spp_store *s, u64 gfn, u64 n);

/* The maps of n pages from gfn into out[0..n-1] (unknown pages SPP_MAP_ALL): one block
 * lookup per 2 MiB and page lookups only for blocks with protected pages. */
void spp_store_get_range(const struct spp_store *s, u64 gfn, u64 n, u32 *out);
u32 spp_store_map(const struct spp_store *s, u64 gfn); /* one page's map */

/*
 * Makes room for at least `want` page entries (protected or locked pages): moves everything
 * into larger tables from the pmm (capacity doubled, or exactly `want` when the heap has no
 * room for the double) and frees the old ones. 0 (also when there is room already) or
 * -ENOMEM (want above SPP_STORE_MAX_CAPACITY or no memory): then nothing changed. Lookups
 * stay O(1): the load factor stays at or below 2/3 at every size.
 */
int spp_store_grow(struct spp_store *s, u64 want);

u64 spp_store_count_2m(const struct spp_store *s, u64 gfn); /* protected pages in gfn's 2 MiB block */
u64 spp_store_protected_pages(const struct spp_store *s);
u64 spp_store_entries(const struct spp_store *s);          /* protected or locked pages */
u64 spp_store_capacity(const struct spp_store *s);
u64 spp_store_bytes(const struct spp_store *s);            /* pmm memory it holds */

/* Calls fn for every protected page in gfn's 2 MiB block (ascending gfn). fn must not
 * change the store. */
void spp_store_for_each_2m(const struct spp_store *s, u64 gfn,
			   void (*fn)(void *ctx, u64 gfn, u32 map, u32 flags), void *ctx);

#endif
