/*
 * The sub-page permission store (see store.h): two linear-probing hash tables in one pmm run.
 *
 *   page slot:  tag = gfn (bits 51:0) | SLOT_TRACK (61) | SLOT_LOCKED (62) | SLOT_USED (63),
 *               map = the 32-bit write map; tag 0 = empty.
 *   block slot: BLK_USED (63) | block (bits 62:20) | locked pages (19:10) | protected
 *               pages (9:0); 0 = empty. An entry exists iff either count is not 0.
 *
 * Keys hash by Fibonacci hashing (multiply by 2^64 / golden ratio, keep the top bits), which
 * spreads consecutive gfns over the table, so a 512-page SET does not build one long probe
 * run. Deletion moves later members of the cluster back (Knuth 6.4, Algorithm R) instead of
 * leaving tombstones, so lookups never slow down as pages are protected and unprotected.
 *
 * Sizing: slots >= 1.5 x capacity + 2. The page table holds at most capacity entries; the
 * block table at most one entry per page entry plus one transient entry (counts 0) while
 * apply_set/apply_lock walk a block, so both always keep an empty slot and every probe
 * terminates.
 *
 * Cost: the per-block locked count lets check_set answer with one block lookup per 2 MiB
 * when the range holds no locked page and the store has room for n new entries (the usual
 * case), instead of a lookup per page. apply_set does one page lookup per page and one block
 * lookup per block whose count changes. No division anywhere.
 */
#include "spp/store.h"

#include <hw.h>
#include "lib/string.h"
#include "mm/pmm.h"

#define SLOT_USED   (1ULL << 63)
#define SLOT_LOCKED (1ULL << 62)
#define SLOT_TRACK  (1ULL << 61)
#define SLOT_GFN    (SPP_GFN_LIMIT - 1)

#define BLK_USED    (1ULL << 63)
#define BLK_PROT    0x3FFULL          /* protected pages, bits 9:0 */
#define BLK_LOCK_SHIFT 10
#define BLK_LOCK    (0x3FFULL << BLK_LOCK_SHIFT)
#define BLK_SHIFT   20                /* the block number, bits 62:20 */
#define BLK_COUNTS  (BLK_PROT | BLK_LOCK)
#define BLK_PAGES_SHIFT 9 /* 512 pages per 2 MiB block */

#define HASH_MUL    0x9E3779B97F4A7C15ULL
#define MIN_SLOTS   64

static inline u64 home(const struct spp_store *s, u64 key) { return (key * HASH_MUL) >> s->hash_shift; }

static inline u32 tag_flags(u64 t)
{
	return (t & SLOT_LOCKED ? SPP_PAGE_LOCKED : 0) | (t & SLOT_TRACK ? SPP_PAGE_TRACK : 0);
}

/* The slot holding gfn, or the empty slot that ends its probe run (tag 0). Takes the table
 * fields as values so a loop can keep them in registers across its own stores. */
static inline u64 probe(const u64 *tag, u64 mask, u32 shift, u64 gfn)
{
	u64 want = gfn | SLOT_USED, i = (gfn * HASH_MUL) >> shift, t;

	while ((t = tag[i]) && (t & ~(SLOT_LOCKED | SLOT_TRACK)) != want)
		i = (i + 1) & mask;
	return i;
}

static inline u64 page_find(const struct spp_store *s, u64 gfn)
{
	return probe(s->tag, s->slot_mask, s->hash_shift, gfn);
}

static inline u64 blk_find(const struct spp_store *s, u64 block)
{
	u64 want = BLK_USED | block << BLK_SHIFT, i = home(s, block), w;

	while ((w = s->blk[i]) && (w & ~BLK_COUNTS) != want)
		i = (i + 1) & s->slot_mask;
	return i;
}

static inline u64 slot_key(u64 w, bool pages)
{
	return pages ? w & SLOT_GFN : (w & ~BLK_USED) >> BLK_SHIFT;
}

/* Empties slot i of the page (pages) or block table. A later member j of the cluster moves
 * into the hole iff its home is not in the cyclic range (i, j]: then it stays reachable. */
static inline __attribute__((always_inline)) void slot_delete(struct spp_store *s, bool pages, u64 i)
{
	u64 *w = pages ? s->tag : s->blk;
	u64 mask = s->slot_mask, j = i;

	for (;;) {
		j = (j + 1) & mask;
		if (!w[j])
			break;
		u64 h = home(s, slot_key(w[j], pages));
		if (((j - h) & mask) >= ((j - i) & mask)) {
			w[i] = w[j];
			if (pages)
				s->map[i] = s->map[j];
			i = j;
		}
	}
	w[i] = 0;
}

static inline bool range_ok(u64 gfn, u64 n) { return gfn < SPP_GFN_LIMIT && n <= SPP_GFN_LIMIT - gfn; }

int spp_store_init(struct spp_store *s, u64 capacity_entries)
{
	u64 want = capacity_entries + (capacity_entries >> 1) + 2, slots = MIN_SLOTS;
	u32 bits = 6;
	u64 bytes;

	BUILD_BUG_ON((1ULL << 6) != MIN_SLOTS);
	memset(s, 0, sizeof(*s));
	if (capacity_entries == 0 || capacity_entries > SPP_STORE_MAX_CAPACITY)
		return -EINVAL;
	while (slots < want) {
		slots <<= 1;
		bits++;
	}
	bytes = slots * (sizeof(u64) + sizeof(u64) + sizeof(u32));
	s->mem_pages = ALIGN_UP(bytes, PAGE_SIZE) >> PAGE_SHIFT;
	s->mem = pmm_alloc_pages(s->mem_pages); /* zeroed: every slot empty */
	if (!s->mem.v) {
		s->mem_pages = 0;
		return -ENOMEM;
	}
	s->tag = hpa_to_ptr(s->mem);
	s->blk = s->tag + slots;
	s->map = (u32 *)(s->blk + slots);
	s->slot_mask = slots - 1;
	s->hash_shift = 64 - bits;
	s->capacity = capacity_entries;
	return 0;
}

void spp_store_destroy(struct spp_store *s)
{
	if (s->mem.v)
		pmm_free_pages(s->mem, s->mem_pages);
	memset(s, 0, sizeof(*s));
}

void spp_store_get(const struct spp_store *s, u64 gfn, u32 *map, u32 *flags)
{
	u64 i, t;

	*map = SPP_MAP_ALL;
	*flags = 0;
	if (gfn >= SPP_GFN_LIMIT)
		return;
	i = page_find(s, gfn);
	t = s->tag[i];
	if (t) {
		*map = s->map[i];
		*flags = tag_flags(t);
	}
}

/* Does any page of [gfn, gfn + n) (n > 0) lie in a block with a locked page? */
static bool range_may_be_locked(const struct spp_store *s, u64 gfn, u64 n)
{
	u64 last = (gfn + n - 1) >> BLK_PAGES_SHIFT;

	for (u64 b = gfn >> BLK_PAGES_SHIFT; b <= last; b++)
		if (s->blk[blk_find(s, b)] & BLK_LOCK)
			return true;
	return false;
}

int spp_store_check_set(const struct spp_store *s, u64 gfn, u64 n, const u32 *maps, u32 flags)
{
	u64 room = s->capacity - s->entries, add = 0;

	if ((flags & ~SPP_PAGE_TRACK) || !range_ok(gfn, n))
		return -EINVAL;
	if (n == 0)
		return 0;
	/* Fast path: no lock in reach and room even if every page were new. */
	if (n <= room && !range_may_be_locked(s, gfn, n))
		return 0;
	for (u64 k = 0; k < n; k++) {
		u64 t = s->tag[page_find(s, gfn + k)];

		if (t & SLOT_LOCKED)
			return -EPERM;
		add += !t & (maps[k] != SPP_MAP_ALL);
	}
	return add > room ? -ENOMEM : 0;
}

/* The slot of block's counters, inserted with counts 0 if absent (room: see the top). */
static u64 blk_acquire(struct spp_store *s, u64 block)
{
	u64 i = blk_find(s, block);

	if (!s->blk[i])
		s->blk[i] = BLK_USED | block << BLK_SHIFT;
	return i;
}

/* Drops an entry whose counts are 0, restoring "a block entry exists iff a count > 0". */
static void blk_release(struct spp_store *s, u64 i)
{
	if (!(s->blk[i] & BLK_COUNTS))
		slot_delete(s, false, i);
}

static void apply_set(struct spp_store *s, u64 gfn, u64 n, const u32 *maps, u32 flags,
		      void (*cb)(void *ctx, u64 gfn, u32 old_map, u32 new_map, u32 new_flags), void *ctx)
{
	u64 track = (flags & SPP_PAGE_TRACK) ? SLOT_TRACK : 0;
	u32 new_flags = track ? SPP_PAGE_TRACK : 0;
	u64 cur = ~0ULL, ci = 0; /* the block whose counters slot ci holds, if any */
	u64 *tag = s->tag, mask = s->slot_mask;
	u32 *map = s->map, shift = s->hash_shift;

	for (u64 k = 0; k < n; k++) {
		u64 g = gfn + k, i = probe(tag, mask, shift, g), t = tag[i];
		u32 m = maps[k], old = SPP_MAP_ALL, nf = new_flags;
		s64 delta = 0;

		/* An unlocked entry always has map != SPP_MAP_ALL, so "had an entry" is "was
		 * protected" below. */
		if (t) {
			old = map[i];
			if (unlikely(t & SLOT_LOCKED)) {
				/* Excluded by check_set; never let a lock go if a caller skipped it. */
				m = old;
				nf = tag_flags(t);
				goto report;
			}
		}
		if (m != SPP_MAP_ALL) {
			tag[i] = g | SLOT_USED | track;
			map[i] = m;
			if (!t)
				delta = 1;
		} else {
			nf = 0;
			if (t) {
				slot_delete(s, true, i);
				delta = -1;
			}
		}
		if (delta) {
			if (g >> BLK_PAGES_SHIFT != cur) {
				if (cur != ~0ULL)
					blk_release(s, ci);
				cur = g >> BLK_PAGES_SHIFT;
				ci = blk_acquire(s, cur);
			}
			/* Counters per page, not per call: cb may read them. */
			s->blk[ci] += (u64)delta;
			s->entries += (u64)delta;
			s->protected_pages += (u64)delta;
		}
report:
		if (cb)
			cb(ctx, g, old, m, nf);
	}
	if (cur != ~0ULL)
		blk_release(s, ci);
}

void spp_store_apply_set(struct spp_store *s, u64 gfn, u64 n, const u32 *maps, u32 flags,
			 void (*cb)(void *ctx, u64 gfn, u32 old_map, u32 new_map, u32 new_flags),
			 void *ctx)
{
	apply_set(s, gfn, n, maps, flags, cb, ctx);
}

/* Out of line so the bulk loop keeps its values in registers (deletion is the rare path). */
static __attribute__((noinline)) void page_delete(struct spp_store *s, u64 i) { slot_delete(s, true, i); }

/*
 * The hypercall's variant: the same result as apply_set without a callback, in a tighter
 * loop (the SET hot path): no callback, one probe per page, and each block's counters
 * updated once per run of pages instead of once per page (nobody reads them meanwhile).
 */
u32 spp_store_apply_set_bulk(struct spp_store *s, u64 gfn, u64 n, u32 *maps, u32 flags)
{
	u32 narrowed = 0, changed = 0; /* ORs of old & ~new and old ^ new over the pages */
	const u64 track = (flags & SPP_PAGE_TRACK) ? SLOT_TRACK : 0;
	u64 *tag = s->tag;
	u32 *map = s->map;
	const u64 mask = s->slot_mask;
	const u32 shift = s->hash_shift;

	for (u64 k = 0; k < n;) {
		u64 g0 = gfn + k, run = MIN(n - k, (1ULL << BLK_PAGES_SHIFT) - (g0 & ((1ULL << BLK_PAGES_SHIFT) - 1)));
		s64 delta = 0;

		for (u64 j = 0; j < run; j++) {
			u64 g = g0 + j, want = g | SLOT_USED, i = (g * HASH_MUL) >> shift, t;
			u32 m = maps[k + j], o = SPP_MAP_ALL;

			while ((t = tag[i]) && (t & ~(SLOT_LOCKED | SLOT_TRACK)) != want)
				i = (i + 1) & mask;
			if (t) {
				o = map[i];
				if (unlikely(t & SLOT_LOCKED)) {
					/* Excluded by check_set; never let a lock go if a caller skipped it. */
					maps[k + j] = o;
				} else if (m != SPP_MAP_ALL) {
					tag[i] = want | track;
					map[i] = m;
				} else {
					page_delete(s, i);
					delta--;
				}
			} else if (m != SPP_MAP_ALL) {
				tag[i] = want | track;
				map[i] = m;
				delta++;
			}
			narrowed |= o & ~m;
			changed |= o ^ m;
		}
		if (delta) {
			u64 ci = blk_acquire(s, g0 >> BLK_PAGES_SHIFT);

			s->blk[ci] += (u64)delta;
			s->entries += (u64)delta;
			s->protected_pages += (u64)delta;
			blk_release(s, ci);
		}
		k += run;
	}
	return (narrowed ? SPP_APPLY_NARROWED : 0) | (changed ? SPP_APPLY_CHANGED : 0);
}

int spp_store_check_lock(const struct spp_store *s, u64 gfn, u64 n)
{
	u64 add = 0;

	if (!range_ok(gfn, n))
		return -EINVAL;
	for (u64 k = 0; k < n; k++)
		add += !s->tag[page_find(s, gfn + k)];
	return add > s->capacity - s->entries ? -ENOMEM : 0;
}

void spp_store_apply_lock(struct spp_store *s, u64 gfn, u64 n)
{
	u64 cur = ~0ULL, ci = 0;

	for (u64 k = 0; k < n; k++) {
		u64 g = gfn + k, i = page_find(s, g), t = s->tag[i];

		if (t & SLOT_LOCKED)
			continue;
		if (t) {
			s->tag[i] = t | SLOT_LOCKED;
		} else {
			s->tag[i] = g | SLOT_USED | SLOT_LOCKED;
			s->map[i] = SPP_MAP_ALL;
			s->entries++;
		}
		if (g >> BLK_PAGES_SHIFT != cur) {
			if (cur != ~0ULL)
				blk_release(s, ci);
			cur = g >> BLK_PAGES_SHIFT;
			ci = blk_acquire(s, cur);
		}
		s->blk[ci] += 1ULL << BLK_LOCK_SHIFT;
	}
	if (cur != ~0ULL)
		blk_release(s, ci);
}

u64 spp_store_count_2m(const struct spp_store *s, u64 gfn)
{
	if (gfn >= SPP_GFN_LIMIT)
		return 0;
	return s->blk[blk_find(s, gfn >> BLK_PAGES_SHIFT)] & BLK_PROT;
}

void spp_store_get_range(const struct spp_store *s, u64 gfn, u64 n, u32 *out)
{
	const u64 *tag = s->tag;
	const u32 *map = s->map;
	u64 mask = s->slot_mask;
	u32 shift = s->hash_shift;

	if (!range_ok(gfn, n)) {
		for (u64 k = 0; k < n; k++)
			out[k] = spp_store_map(s, gfn + k);
		return;
	}
	for (u64 k = 0; k < n;) {
		u64 g = gfn + k, run = MIN(n - k, (1ULL << BLK_PAGES_SHIFT) - (g & ((1ULL << BLK_PAGES_SHIFT) - 1)));
		u64 j = 0;

		/* One block lookup per 2 MiB, and page lookups only in blocks that count a
		 * protected page. */
		if (s->blk[blk_find(s, g >> BLK_PAGES_SHIFT)] & BLK_PROT)
			for (; j < run; j++) {
				u64 i = probe(tag, mask, shift, g + j);

				out[k + j] = tag[i] ? map[i] : SPP_MAP_ALL;
			}
		for (; j < run; j++)
			out[k + j] = SPP_MAP_ALL;
		k += run;
	}
}

u32 spp_store_map(const struct spp_store *s, u64 gfn)
{
	u64 i;

	if (gfn >= SPP_GFN_LIMIT)
		return SPP_MAP_ALL;
	i = page_find(s, gfn);
	return s->tag[i] ? s->map[i] : SPP_MAP_ALL;
}

int spp_store_grow(struct spp_store *s, u64 want)
{
	struct spp_store n;
	u64 cap = s->capacity;
	int r;

	if (want <= s->capacity)
		return 0;
	if (want > SPP_STORE_MAX_CAPACITY)
		return -ENOMEM;
	while (cap < want)
		cap = cap * 2 > SPP_STORE_MAX_CAPACITY ? SPP_STORE_MAX_CAPACITY : cap * 2;
	/* Doubling keeps the cost of rehashing at O(1) per entry over the store's life; if the
	 * heap has no room for the double, the least that fits the request is tried. */
	r = spp_store_init(&n, cap);
	if (r == -ENOMEM && cap > want)
		r = spp_store_init(&n, want);
	if (r)
		return -ENOMEM;
	for (u64 i = 0; i <= s->slot_mask; i++) {
		u64 t = s->tag[i], w = s->blk[i];

		if (t) {
			u64 j = page_find(&n, t & SLOT_GFN);

			n.tag[j] = t;
			n.map[j] = s->map[i];
		}
		if (w) {
			u64 j = blk_find(&n, (w & ~BLK_USED) >> BLK_SHIFT);

			n.blk[j] = w;
		}
	}
	n.entries = s->entries;
	n.protected_pages = s->protected_pages;
	spp_store_destroy(s);
	*s = n;
	return 0;
}

u64 spp_store_protected_pages(const struct spp_store *s) { return s->protected_pages; }
u64 spp_store_entries(const struct spp_store *s) { return s->entries; }
u64 spp_store_capacity(const struct spp_store *s) { return s->capacity; }
u64 spp_store_bytes(const struct spp_store *s) { return s->mem_pages << PAGE_SHIFT; }

void spp_store_for_each_2m(const struct spp_store *s, u64 gfn,
			   void (*fn)(void *ctx, u64 gfn, u32 map, u32 flags), void *ctx)
{
	u64 left = spp_store_count_2m(s, gfn);
	u64 g = ALIGN_DOWN(gfn, 1ULL << BLK_PAGES_SHIFT), end = g + (1ULL << BLK_PAGES_SHIFT);

	/* 512 lookups at most, and none once every counted page was found. */
	for (; left && g < end; g++) {
		u64 i = page_find(s, g), t = s->tag[i];

		if (t && s->map[i] != SPP_MAP_ALL) {
			fn(ctx, g, s->map[i], tag_flags(t));
			left--;
		}
	}
}
