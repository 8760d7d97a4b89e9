/*
 * The Sub-Page Permission Table (SPPT) the processor walks for SPP-eligible writes
 * (docs/SPP.md section 4): four levels indexed like 4-level EPT (L4 gpa bits 47:39, L3 38:30,
 * L2 29:21, L1 20:12). Non-leaf entries hold bit 0 = valid and bits N-1:12 = host-physical
 * address of the next table (N = MAXPHYADDR); every other bit is reserved. A leaf (L1) entry
 * is a 64-bit vector, bit 2i = write permission of 128-byte sub-page i, odd bits reserved.
 * A not-valid non-leaf entry is an SPP miss, a reserved bit an SPP misconfiguration (both
 * VM exit 66, docs/SPP.md section 5).
 *
 * This module owns the tables (4 KiB pages from the pmm) and their contents; what each
 * page's vector should be comes from the caller (the permission store), passed as maps or
 * through a map_of callback. Two ways to keep it current:
 *   eager: sppt_prepare() (may fail) then sppt_set() (cannot fail) per changed page;
 *   lazy:  sppt_invalidate_2m() after changing a block, sppt_fill_2m() on the SPP miss
 *          (KVM's scheme, docs/SPP.md section 7).
 * A leaf table is created with every vector all-writable, so pages the caller never set read
 * as unprotected. Leaf tables of blocks without protected pages can be unlinked and freed
 * later (sppt_unlink_2m, then INVEPT, then sppt_reclaim), and with them L2/L3 tables left
 * empty. The root stays.
 *
 * None of these functions executes INVEPT: after a change the caller owes an INVEPT on every
 * CPU using the SPPT before relying on it (docs/SPP.md section 7). Not thread-safe: the
 * caller serialises all calls (the processor may walk concurrently; every entry that links a
 * table is written with one store after the table below it is complete).
 * Guest-physical addresses must be below 2^48 (SPPT_GPA_LIMIT); gfn = gpa >> 12.
 */
#ifndef SPP_SPPT_H
#define SPP_SPPT_H

#include <tessel/types.h>

#define SPPT_GPA_LIMIT   (1ULL << 48)
#define SPPT_VECTOR_ALL  0x5555555555555555ULL /* every sub-page writable */
#define SPPT_RETIRE_MAX  32
#define SPPT_DIRTY_MAX   16 /* lazy mode: blocks whose changed pages are remembered */

struct sppt {
	hpa_t root;          /* the L4 table: SPPTP (VMCS 0x2030) = root.v */
	u64 pages;           /* table pages held, retired ones included */
	u8 phys_bits;        /* MAXPHYADDR */
	u64 addr_mask;       /* entry bits phys_bits-1:12 */
	u32 nretired;
	hpa_t retired[SPPT_RETIRE_MAX]; /* unlinked leaf tables awaiting sppt_reclaim() */
	/* Lazy mode: for up to SPPT_DIRTY_MAX invalidated blocks (oldest first), which of their
	 * 512 vectors are stale. An invalidated block with a record is refilled from those
	 * pages only; one without (never recorded, or evicted) is refilled whole. */
	u32 ndirty;
	struct { u64 block; u64 bits[8]; } dirty[SPPT_DIRTY_MAX];
};

/* Allocates an empty root (every L4 entry not valid). 0, -EINVAL (phys_bits outside 32..52)
 * or -ENOMEM. */
int sppt_init(struct sppt *t, u8 phys_bits);
/* Frees every table, retired ones included. No CPU may be using the SPPT. */
void sppt_destroy(struct sppt *t);

u64 sppt_vector(u32 map);   /* spreads map bit i to vector bit 2i */
u32 sppt_map(u64 vector);   /* the inverse; odd bits are ignored */

/*
 * Makes sure the tables down to gfn's leaf table exist, so that sppt_set() on any page of
 * gfn's 2 MiB block cannot fail. A newly created path is valid and its leaf table holds
 * SPPT_VECTOR_ALL everywhere; an existing L2 entry keeps its validity (an invalidated block
 * stays invalid until sppt_fill_2m). 0, -EINVAL (gfn beyond SPPT_GPA_LIMIT) or -ENOMEM
 * (tables created so far stay linked; walks then end in a miss, which is consistent).
 */
int sppt_prepare(struct sppt *t, u64 gfn);

/* Writes gfn's leaf vector from map. Requires sppt_prepare() for gfn's block (else does
 * nothing). In an invalidated block the vector is written but takes effect only with the
 * block's next sppt_fill_2m(), which rewrites it anyway. */
void sppt_set(struct sppt *t, u64 gfn, u32 map);
/* The leaf vector slot of gfn (its table must exist: sppt_prepare), NULL otherwise. The 512
 * slots of a 2 MiB block are contiguous, so a caller updating a run of pages can index
 * from one lookup. */
u64 *sppt_leaf_slot(struct sppt *t, u64 gfn);

/* Lazy mode: clears the valid bit of the L2 entry covering gfn's 2 MiB block, keeping its
 * address (and table) for reuse, so the next eligible write there causes an SPP miss; the
 * block's next fill rewrites all 512 vectors (its dirty record, if any, is dropped). */
void sppt_invalidate_2m(struct sppt *t, u64 gfn);

/* Lazy mode, after the maps of pages [gfn, gfn + n) (all in one 2 MiB block, n >= 1)
 * changed: invalidates the block as sppt_invalidate_2m() does and remembers those pages, so
 * the block's next sppt_fill_2m() rewrites only the pages changed since its last fill. A
 * block already invalid without a record (its stale pages unknown) stays that way: it is
 * refilled whole. When every record is taken, the oldest is dropped (that block is then
 * refilled whole): bounded memory, never a stale vector. A block without a leaf table
 * needs no record (a fill creates and fills the table). */
void sppt_invalidate_range(struct sppt *t, u64 gfn, u64 n);

/*
 * SPP miss (exit 66, qualification bit 11) at gpa: creates the path if needed, writes the
 * leaf vectors of gpa's 2 MiB block from map_of(ctx, gfn) (SPP_MAP_ALL for pages without
 * protection) - only the pages sppt_invalidate_range() recorded, if the block has a record
 * and its table, else all 512 - then makes the L2 entry valid (clearing any reserved bits in
 * it). 0, -EINVAL (gpa beyond SPPT_GPA_LIMIT) or -ENOMEM (the block stays not valid).
 */
int sppt_fill_2m(struct sppt *t, u64 gpa, u32 (*map_of)(void *ctx, u64 gfn), void *ctx);

/*
 * SPP misconfiguration (exit 66, qualification bit 11 = 0) at gpa: walks to gpa and rewrites
 * each valid non-leaf entry with reserved bits set (keeps bit 0 and the address bits, clears
 * the rest) and a leaf vector with odd bits set (rebuilt from map_of). Stops at a not-valid
 * entry (that is a miss, not a misconfiguration). Returns the number of entries repaired,
 * 0 if nothing was wrong, or -EINVAL for a gpa beyond SPPT_GPA_LIMIT.
 */
int sppt_repair(struct sppt *t, u64 gpa, u32 (*map_of)(void *ctx, u64 gfn), void *ctx);

/* Test builds and tests: sets a reserved bit (bit 1) in the L2 entry (level 2) or in the
 * leaf vector (level 1) for gpa. 0, -EINVAL (level, gpa) or -EFAULT (no table there).
 * A reserved bit in a not-valid L2 entry still reads as a miss (docs/SPP.md section 4). */
int sppt_inject_misconfig(struct sppt *t, u64 gpa, int level);

/* Unlinks the leaf table of gfn's 2 MiB block (its L2 entry becomes 0), and the L2 and L3
 * tables above it that this leaves without any table (their L3/L4 entries become 0), and
 * keeps them until sppt_reclaim(). Call only when no page of the block has EPT bit 61 any
 * more. Returns false (nothing changed) if there is no leaf table or fewer than 3 retire
 * slots are free. */
bool sppt_unlink_2m(struct sppt *t, u64 gfn);
/* Frees the unlinked tables; call only after every CPU using the SPPT executed INVEPT.
 * Returns how many pages were freed. */
u64 sppt_reclaim(struct sppt *t);

u64 sppt_bytes(const struct sppt *t); /* pages * 4096 */

#endif
