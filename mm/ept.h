/*
 * The guest's EPT: an identity map of guest-physical memory with MTRR memory types and the
 * largest uniform leaves, the hypervisor's region hidden behind a shared read-only "0xFF
 * page", and the operations that later reshape it (split a large leaf, merge a table back).
 * Entry formats are those of include/arch/ept.h (Intel SDM Vol. 3C 28.3.2).
 *
 * Locking: ept_leaf(), ept_split(), ept_try_merge() and ept_merge_finish() expect the caller
 * to hold ept->lock (it usually must anyway, to change the leaf it looked up or split to).
 * ept_build_identity() and ept_destroy() need no lock: no other CPU can be using the EPT.
 * None of these functions executes INVEPT; see each one for what its caller owes.
 */
#ifndef MM_EPT_H
#define MM_EPT_H

#include <tessel/types.h>
#include <tessel/spinlock.h>
#include "mm/mtrr.h"

/* 4-level EPT translates guest-physical bits 47:0 (SDM 28.3.2): 256 TiB. A larger
 * MAXPHYADDR is clamped here; guest accesses above 2^48 cause EPT violations. */
#define EPT_MAX_PHYS_BITS 48
#define EPT_LEVEL_SIZE(level) (1ULL << (12 + 9 * ((level) - 1))) /* 1=4K 2=2M 3=1G 4=512G */

#define EPT_MERGE_MAX 32 /* merges one ept_merge_finish() completes */

struct ept_params {
	u8 phys_bits;    /* MAXPHYADDR; 12..52, mapped up to 2^min(phys_bits, 48) */
	bool has_1g;     /* IA32_VMX_EPT_VPID_CAP bit 17: 1 GiB EPT leaves */
	const struct mtrr_state *mtrr;
	u64 hv_base;     /* the hypervisor's region, 4 KiB aligned; hv_size 0 = none */
	u64 hv_size;
	hpa_t ff_page;   /* a page inside the region that the caller has filled with 0xFF */
};

struct ept {
	hpa_t pml4;
	u64 eptp;
	spinlock_t lock;
	u64 tables;      /* table pages in use (unlinked ones count until ept_merge_finish) */
	bool has_1g;     /* copied from the build parameters: may ept_try_merge make 1 GiB leaves */
	/* Page-size changes break before make (ept_split below): set by the owner when the
	 * processor may take a machine check on a page-size change (hv/vmx_caps.h
	 * vmx_pschange_mc_affected), before the EPT is used by a second CPU. */
	bool bbm;
	u32 npending;    /* merges and splits unlinked, awaiting ept_merge_finish */
	struct {
		u64 *entry;  /* the entry that held the table or leaf: not present until finished */
		u64 leaf;    /* what it becomes: the large leaf (merge) or the new table (split) */
		u64 gpa;     /* start of the range it maps */
		u64 size;
		hpa_t table; /* merge: the unlinked table, freed when finished; split: the new one */
		bool split;
	} pending[EPT_MERGE_MAX];
};

/*
 * Builds the identity map described at the top of this file. Every guest-physical address
 * below the limit maps to itself, RWX, with its MTRR type in leaf bits 5:3 and IPAT = 0 (so
 * the guest's PAT still combines), as a 1 GiB leaf (if has_1g) or 2 MiB leaf wherever the
 * whole leaf has one MTRR type and does not touch the hypervisor's region, else as 4 KiB
 * leaves. Every 4 KiB page of the region maps instead to ff_page, R+X without W, WB with
 * IPAT = 1: guest reads see 0xFF, guest writes are EPT violations.
 * Tables come from the pmm. Returns 0, -EINVAL for bad parameters (unaligned region or
 * ff_page, ff_page outside the region, phys_bits out of range, no MTRR state), or -ENOMEM
 * (after freeing whatever it had allocated). Without 1 GiB leaves the tables grow with
 * 2^phys_bits (4 KiB per GiB): 256 MiB for phys_bits 46.
 */
int ept_build_identity(struct ept *ept, const struct ept_params *p);

/* Frees every table (including unlinked ones). No CPU may be using the EPT. */
void ept_destroy(struct ept *ept);

/* The leaf entry that maps gpa and its level (1 = 4 KiB, 2 = 2 MiB, 3 = 1 GiB), or NULL
 * when gpa is not mapped. level may be NULL. */
u64 *ept_leaf(struct ept *ept, u64 gpa, int *level);

/*
 * Makes gpa mapped by a leaf of at most `level` (1..3), splitting larger leaves on the way;
 * each new table repeats the old leaf's address range, permissions, memory type and IPAT
 * (the SPP bit, meaningless in a large leaf, is not copied), so no address, permission or
 * type changes. Each split table is filled before it is linked (one atomic store), so a
 * concurrent walk sees the old leaf or the complete new table.
 *
 * The page size does change, though, and on processors with the machine-check erratum
 * (Intel's "machine check error on page size change", CVE-2018-12207, iTLB multihit;
 * SKX/CLX and client parts up to Comet Lake without IA32_ARCH_CAPABILITIES.PSCHANGE_MC_NO)
 * an instruction fetch through a translation whose size changed while another TLB entry of
 * the old size may still be used can raise a machine check. So with ept->bbm set the
 * split breaks before it makes: the first large leaf on the way (the highest level split)
 * becomes not present, its new table (split further down as needed, while nothing can
 * reach it) is recorded as pending, and the caller owes exactly what it owes after
 * ept_try_merge(): a shootdown (every CPU using this EPT executes INVEPT and acknowledges),
 * then ept_merge_finish(), which links the table. Until then ept_leaf() finds nothing for
 * the range, and an access to it is an EPT violation that ept_violation_stale() calls
 * stale (the guest retries). Without ept->bbm the table is linked at once: no INVEPT is
 * owed, the old leaf stays usable until the caller's next INVEPT, which is harmless.
 *
 * Returns 0, -EINVAL (bad level), -EFAULT (gpa not mapped, or unlinked and pending) or
 * -ENOMEM (no table memory, or, with ept->bbm, EPT_MERGE_MAX changes pending; nothing
 * changed at the level that failed; levels already split stay split, which is harmless).
 */
int ept_split(struct ept *ept, u64 gpa, int level);
/* The table a pending split (ept->bbm) will link at *entry, or NULL: callers that must
 * change leaves below an entry they just split (mm/mtrr_guest.c) change them there. */
u64 *ept_pending_table(struct ept *ept, const u64 *entry);

/*
 * Merging a split region back into one large leaf, in two steps, because a freed table page
 * must not be reused while another CPU may still walk it, and because some processors
 * (Skylake-era machine-check erratum, "iTLB multihit", CVE-2018-12207) must not see a page's
 * size change without an invalidation in between: KVM zaps the entry, flushes, and only then
 * lets the large mapping be built. Here:
 *
 *   ept_try_merge()    unlinks: the level-`level` entry (2 or 3) covering gpa becomes not
 *                      present, if the table below it can be replaced by one leaf: its 512
 *                      entries are leaves with identical attributes (accessed/dirty are
 *                      ORed), addresses contiguous from an aligned start, no SPP bit, and
 *                      keep(ctx, gpa of each entry) returns 0 for all (keep may be NULL).
 *                      A level-3 merge also needs 1 GiB leaves. Returns true if unlinked;
 *                      false (nothing changed) otherwise or when EPT_MERGE_MAX merges wait.
 *   (the caller)       makes every CPU using this EPT execute INVEPT (spp_flush_all_cpus),
 *                      releasing ept->lock meanwhile if the shootdown needs it;
 *   ept_merge_finish() installs each large leaf and frees each unlinked table, and links
 *                      the table of each pending split (ept_split with ept->bbm). Returns
 *                      the number of changes finished. Installing is a widening change
 *                      (not present -> present, same permissions): no further INVEPT is
 *                      owed. Only a shootdown that started after an entry was unlinked
 *                      allows finishing it: a caller that releases ept->lock for its
 *                      shootdown must make sure nobody else unlinks meanwhile (spp.lock in
 *                      spp/spp.c) or hold the lock throughout (mm/mtrr_guest.c).
 *
 * Between the two, a guest access to an unlinked range is an EPT violation: the exit path
 * asks ept_violation_stale() and, if so, lets the guest retry the access.
 */
bool ept_try_merge(struct ept *ept, u64 gpa, int level, u64 (*keep)(void *ctx, u64 gpa), void *ctx);
u64 ept_merge_finish(struct ept *ept);
/* Undoes every unlinked merge: each table is linked back as it was (a widening change: no
 * INVEPT owed). Pending splits are left pending: their callers link them. For a caller that must change leaves under an unlinked range before the merge
 * finishes (the guest's MTRR writes retype the EPT, mm/mtrr_guest.c): the large leaf computed
 * at unlink time could carry stale attributes. */
void ept_merge_cancel(struct ept *ept);
/* For the EPT-violation exit: is the violation at gpa for `access` (EPT_R/W/X bits, as in the
 * exit qualification's bits 2:0) stale, so that the guest should simply retry? True if gpa
 * lies in a range unlinked by ept_try_merge or ept_split and not yet finished, or is now mapped by a leaf
 * granting every access bit (the merge finished since; this CPU then executes INVEPT, so a
 * stale cached translation cannot make the retry loop). Takes ept->lock. */
bool ept_violation_stale(struct ept *ept, u64 gpa, u64 access);

/* EPTP for a 4-level table at pml4, memory type WB, A/D flags if ad (SDM 24.6.11). */
u64 ept_make_eptp(hpa_t pml4, bool ad);

#endif
