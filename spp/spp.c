/*
 * SPP hypercalls (ABI.md sections 3-4): HC_SPP_SET, HC_SPP_GET, HC_SPP_LOCK, and what a
 * change of permissions does to the EPT and the SPPT.
 *
 * Every call decodes and validates all arguments first, then takes spp.lock, checks what
 * can still fail (locked pages, store capacity, table memory for EPT splits and SPPT paths:
 * splitting a large EPT page and allocating an SPPT path are invisible to the guest), and
 * only then changes permissions, which cannot fail. Narrowing changes are followed by a
 * cross-CPU INVEPT before the call returns.
 *
 * Order of checks (where several errors apply, the first wins): -ENODEV, reserved
 * flags/arguments -EINVAL, -EOPNOTSUPP, n = 0 -EINVAL, n > max -E2BIG, page range -EINVAL,
 * map buffer -EFAULT, locked page -EPERM, table memory -ENOMEM.
 */
#include <hw.h>
#include <arch/ept.h>
#include <arch/vmx.h>
#include "hv/abi.h"
#include "hv/features.h"
#include "hv/hypercall.h"
#include "hv/log.h"
#include "hv/panic.h"
#include "hv/stats.h"
#include "hv/vmcs.h"
#include "hv/vmx_caps.h"
#include "lib/string.h"
#include "mm/guest_mem.h"
#include "mm/memmap.h"
#include "spp/dma.h"
#include "spp/spp.h"

struct spp_state spp = { .lock = SPINLOCK_INIT };

/* Initial room in the permission store (pages with protected sub-pages or locks): 160 KiB.
 * It grows on demand (spp_store_grow, doubling) for as long as the heap has room. */
#define SPP_STORE_CAPACITY 4096
#define GFN_LIMIT (1ULL << 36)         /* 2^48 bytes: the 4-level EPT/SPPT limit */

int spp_init(const struct tessel_config *cfg, struct ept *ept, u8 phys_bits)
{
	u32 features = 0;
	spp.ept = ept;
	spp.lazy = cfg->sppt == CFG_SPPT_LAZY;
	switch (cfg->spp) {
	case CFG_SPP_OFF:
		spp.mode = SPP_MODE_NONE;
		break;
	case CFG_SPP_HW:
		if (!vmx_has_spp()) {
			log_error("spp=hw, but this processor has no sub-page write permissions "
				  "(IA32_VMX_PROCBASED_CTLS2 bit 55 is 0)");
			return -ENODEV;
		}
		spp.mode = SPP_MODE_HW;
		break;
	case CFG_SPP_SW:
		spp.mode = SPP_MODE_SW;
		break;
	default:
		spp.mode = vmx_has_spp() ? SPP_MODE_HW : SPP_MODE_SW;
		break;
	}
	if (spp.mode == SPP_MODE_NONE) {
		tessel_features_set(0);
		return 0;
	}
	if (spp_store_init(&spp.store, SPP_STORE_CAPACITY))
		return -ENOMEM;
	if (spp.mode == SPP_MODE_HW && sppt_init(&spp.sppt, phys_bits))
		return -ENOMEM;
	features = (spp.mode == SPP_MODE_HW ? TESSEL_F_SPP_HW : TESSEL_F_SPP_SW) | TESSEL_F_LOCK |
		   TESSEL_F_EVENTS | TESSEL_F_TRACK | TESSEL_F_SPP_BYTES;
	tessel_features_set(features);
	return 0;
}

const char *spp_mode_name(void)
{
	switch (spp.mode) {
	case SPP_MODE_HW: return spp.lazy ? "hardware SPP (lazy SPPT)" : "hardware SPP (eager SPPT)";
	case SPP_MODE_SW: return "software (EPT write protection + emulation)";
	default: return "off";
	}
}

u32 spp_proc2_bits(void) { return spp.mode == SPP_MODE_HW ? PROC2_SUBPAGE_WRITE_PERM : 0; }

void spp_cpu_setup(void)
{
	if (spp.mode == SPP_MODE_HW)
		vmcs_write64(VMCS_CTRL_SPPTP, spp.sppt.root.v);
}

u64 stats_gauge(enum stat s)
{
	if (s == STAT_PAGES_PROTECTED)
		return spp.mode != SPP_MODE_NONE ? spp_store_protected_pages(&spp.store) : 0;
	if (s == STAT_SPPT_PAGES)
		return spp.mode == SPP_MODE_HW ? spp.sppt.pages : 0;
	return 0;
}

bool spp_gpa_writable(u64 gpa, u64 len)
{
	if (spp.mode == SPP_MODE_NONE || !len)
		return true;
	for (u64 a = gpa & ~127ULL; a < gpa + len; a += 128) {
		u32 map, flags;
		spp_store_get(&spp.store, a >> PAGE_SHIFT, &map, &flags);
		if (!(map & (1U << ((a >> 7) & 31))))
			return false;
	}
	return true;
}

/* ---- argument validation shared by the calls ---- */

static s64 check_range(u64 gfn, u64 n)
{
	if (n == 0)
		return -EINVAL;
	if (n > TESSEL_MAX_PAGES_PER_CALL)
		return -E2BIG;
	if (gfn >= GFN_LIMIT || gfn + n > GFN_LIMIT || !memmap_is_ram(gfn << PAGE_SHIFT, n << PAGE_SHIFT))
		return -EINVAL;
	return 0;
}

static s64 check_map_buffer(u64 gpa, u64 n)
{
	if ((gpa & 3) || !memmap_is_ram(gpa, n * 4))
		return -EFAULT;
	return 0;
}

/* The page range, then the map buffer of n u32 (SET and GET). */
static s64 check_pages_and_map(u64 gfn, u64 n, u64 map_gpa)
{
	s64 r = check_range(gfn, n);
	return r ? r : check_map_buffer(map_gpa, n);
}

/* ---- EPT leaf of a page whose permissions change ---- */

static u64 *leaf_4k(u64 gfn)
{
	int level;
	u64 *e = ept_leaf(spp.ept, gfn << PAGE_SHIFT, &level);
	return (e && level == 1) ? e : NULL;
}

/* Everything that can fail for a SET, done before any permission changes: one EPT split
 * and one SPPT path per 2 MiB block that gets a protected page. */
static s64 prepare_pages(u64 gfn, u64 n, const u32 *maps)
{
	for (u64 k = 0; k < n;) {
		u64 g = gfn + k, run = MIN(n - k, 512 - (g & 511));
		u32 all = SPP_MAP_ALL;

		for (u64 j = 0; j < run; j++)
			all &= maps[k + j];
		k += run;
		if (all == SPP_MAP_ALL)
			continue; /* nothing protected in this block's part of the call */
		if (!leaf_4k(g)) {
			int r = ept_split(spp.ept, g << PAGE_SHIFT, 1);
			if (r)
				return r == -ENOMEM ? -ENOMEM : -EINVAL;
		}
		if (spp.mode == SPP_MODE_HW && sppt_prepare(&spp.sppt, g))
			return -ENOMEM;
	}
	return 0;
}

/*
 * The EPT leaves and SPPT vectors of [gfn, gfn + n) after the store took the new maps. One
 * EPT walk and one SPPT walk per 2 MiB block, and one map-to-vector conversion per change of
 * map along the range (a call usually sets one map on every page). `changed` (the store
 * said some map changed): in lazy mode the blocks of the range are invalidated.
 */
static void apply_tables(u64 gfn, u64 n, const u32 *maps, bool changed)
{
	const bool hw = spp.mode == SPP_MODE_HW;
	const u64 prot_set = EPT_R | (hw ? EPT_SPP : 0);
	u64 vec = SPPT_VECTOR_ALL;
	u32 vec_map = SPP_MAP_ALL;

	for (u64 k = 0; k < n;) {
		u64 g = gfn + k, run = MIN(n - k, 512 - (g & 511));
		u64 *e = leaf_4k(g), *sl = NULL;
		const u32 *m = maps + k;

		if (hw && !spp.lazy)
			sl = sppt_leaf_slot(&spp.sppt, g);
		k += run;
		if (!e) {
			/* Not split: prepare_pages split every block that gets a protected page. */
			for (u64 j = 0; j < run; j++)
				BUG_ON(m[j] != SPP_MAP_ALL);
			continue;
		}
		/* e and sl index from g: a block's 512 leaves and vectors are contiguous. */
		for (u64 j = 0; j < run; j++) {
			u32 mj = m[j];

			if (mj != SPP_MAP_ALL) {
				__atomic_store_n(e + j, (e[j] | prot_set) & ~EPT_W, __ATOMIC_RELEASE);
				if (sl) {
					if (mj != vec_map) {
						vec_map = mj;
						vec = sppt_vector(mj);
					}
					__atomic_store_n(sl + j, vec, __ATOMIC_RELEASE);
				}
			} else {
				/* (an unprotected page's vector is not consulted: W=1, bit 61 clear) */
				__atomic_store_n(e + j, (e[j] | EPT_W) & ~EPT_SPP, __ATOMIC_RELEASE);
			}
		}
		if (hw && spp.lazy && changed)
			/* The block's SPPT entry goes away: the next write misses, and the miss
			 * rewrites only the pages recorded here (spp/sppt.h). */
			sppt_invalidate_range(&spp.sppt, g, run);
	}
}

/*
 * Gives back the tables of the listed 2 MiB blocks that have no protected page (issue 9 item
 * m): without this, protect/unprotect churn over many blocks would keep one EPT table (and in
 * hardware mode an SPPT leaf table) per block ever protected, and the heap would end in
 * -ENOMEM for good. Caller holds spp.lock (so no SET, violation or SPP miss on another CPU
 * changes these blocks meanwhile). At most SPP_IDLE_BLOCKS + 2 blocks (the SPPT's retire
 * list holds 3 tables per block).
 *
 * EPT: a split block whose 512 leaves are identical again (permissions, memory type,
 * contiguous identity) becomes one 2 MiB leaf, and a GiB whose 512 entries are then equal
 * 2 MiB leaves one 1 GiB leaf, in the order unlink -> INVEPT on every CPU -> install the
 * large leaf and free the table (mm/ept.h explains why). Leaves that differ are never
 * merged: the xAPIC page (write-protected, hv/vapic.c), the region's 0xFF pages (not
 * contiguous), blocks with mixed MTRR types. SPPT (hardware mode): the block's leaf table
 * and any L2/L3 table left empty are unlinked before the same INVEPT and freed after it.
 */
#define RECLAIM_MAX (SPP_IDLE_BLOCKS + 2)
static void reclaim_blocks(const u64 *blocks, u32 nb)
{
	bool merged[RECLAIM_MAX] = { false }, flush = false, again = false;

	BUILD_BUG_ON(3 * RECLAIM_MAX > SPPT_RETIRE_MAX || RECLAIM_MAX > EPT_MERGE_MAX);
	if (nb > RECLAIM_MAX)
		nb = RECLAIM_MAX;
	spin_lock(&spp.ept->lock);
	for (u32 i = 0; i < nb; i++) {
		u64 b = blocks[i];

		if (spp_store_count_2m(&spp.store, b << 9))
			continue;
		if (spp.mode == SPP_MODE_HW && sppt_unlink_2m(&spp.sppt, b << 9))
			flush = true;
		if (ept_try_merge(spp.ept, b << 21, 2, NULL, NULL)) {
			merged[i] = true;
			flush = true;
		}
	}
	spin_unlock(&spp.ept->lock);
	if (!flush)
		return;
	spp_flush_all_cpus();
	spin_lock(&spp.ept->lock);
	ept_merge_finish(spp.ept);
	for (u32 i = 0; i < nb; i++)
		if (merged[i] && ept_try_merge(spp.ept, blocks[i] << 21, 3, NULL, NULL))
			again = true;
	spin_unlock(&spp.ept->lock);
	if (spp.mode == SPP_MODE_HW)
		sppt_reclaim(&spp.sppt);
	if (!again)
		return;
	spp_flush_all_cpus();
	spin_lock(&spp.ept->lock);
	ept_merge_finish(spp.ept);
	spin_unlock(&spp.ept->lock);
}

/* Does block b hold tables a reclaim could give back (a 4 KiB EPT table, an SPPT leaf)? */
static bool block_has_tables(u64 b)
{
	if (leaf_4k(b << 9))
		return true;
	return spp.mode == SPP_MODE_HW && sppt_leaf_slot(&spp.sppt, b << 9);
}

static bool idle_remove(u64 b)
{
	for (u32 i = 0; i < spp.nidle; i++)
		if (spp.idle[i] == b) {
			for (u32 j = i; j + 1 < spp.nidle; j++)
				spp.idle[j] = spp.idle[j + 1];
			spp.nidle--;
			return true;
		}
	return false;
}

u32 spp_reclaim_idle(void)
{
	u64 blocks[SPP_IDLE_BLOCKS];
	u32 n = spp.nidle;

	for (u32 i = 0; i < n; i++)
		blocks[i] = spp.idle[i];
	spp.nidle = 0;
	if (n)
		reclaim_blocks(blocks, n);
	return n;
}

/*
 * Hysteresis (the performance issue): after a SET, the blocks of its range that have no
 * protected page any more do not give their tables back at once; they join the idle cache
 * (newest last), and only the oldest block beyond SPP_IDLE_BLOCKS is reclaimed. Protecting
 * a page there again then needs no EPT split, no SPPT path and no merge-back flush. Blocks
 * of the range that hold protected pages leave the cache. The cache holds at most
 * SPP_IDLE_BLOCKS blocks, and every path that runs out of memory empties it and retries
 * (hc_spp_set), so -ENOMEM still depends only on the blocks that hold protected pages.
 */
static void settle_blocks(u64 gfn, u64 n)
{
	u64 evict[2], first = gfn >> 9, last = (gfn + n - 1) >> 9;
	u32 ne = 0;

	for (u64 b = first; b <= last && n; b++) {
		idle_remove(b);
		if (spp_store_count_2m(&spp.store, b << 9) || !block_has_tables(b))
			continue;
		if (spp.nidle == SPP_IDLE_BLOCKS) {
			evict[ne++] = spp.idle[0];
			idle_remove(spp.idle[0]);
		}
		spp.idle[spp.nidle++] = b;
	}
	if (ne)
		reclaim_blocks(evict, ne);
}

/* After a failed SET: the splits and paths its prepare made in blocks without protected
 * pages are given back (blocks of the range that were idle leave the cache with them). */
static void reclaim_range(u64 gfn, u64 n)
{
	u64 blocks[2], first = gfn >> 9, last = (gfn + n - 1) >> 9;
	u32 nb = 0;

	for (u64 b = first; b <= last && nb < 2; b++) {
		idle_remove(b);
		blocks[nb++] = b;
	}
	reclaim_blocks(blocks, nb);
}

/* The store has room for every page of the call (spp_store_check_set said -ENOMEM): grow it,
 * emptying the idle cache first if the heap is short. */
static s64 store_make_room(u64 n)
{
	u64 want = spp_store_entries(&spp.store) + n;

	if (!spp_store_grow(&spp.store, want))
		return 0;
	if (spp_reclaim_idle() && !spp_store_grow(&spp.store, want))
		return 0;
	return -ENOMEM;
}

/*
 * SET of n pages to maps[0..n-1] with store flags pflags (SPP_PAGE_TRACK or 0), everything
 * that can fail checked before anything changes. Caller holds spp.lock; maps is stable.
 */
static s64 set_locked(u64 gfn, u64 n, u32 *maps, u32 pflags)
{
	s64 r = spp_store_check_set(&spp.store, gfn, n, maps, pflags);
	if (r == -ENOMEM) {
		/* Room for n more entries is more than the call may need (pages already
		 * protected take none): growing is invisible to the guest, and the check
		 * repeated afterwards still decides -EPERM first. */
		r = store_make_room(n);
		if (!r)
			r = spp_store_check_set(&spp.store, gfn, n, maps, pflags);
	}
	if (!r) {
		spin_lock(&spp.ept->lock);
		r = prepare_pages(gfn, n, maps);
		/* Splits that broke before making (ept->bbm, mm/ept.h ept_split): every CPU
		 * invalidates before the 4 KiB tables are linked. The lock is kept, so nobody
		 * unlinks or finishes anything meanwhile; other CPUs acknowledge from their NMI
		 * handler whatever they wait for. */
		if (spp.ept->npending) {
			spp_flush_all_cpus();
			ept_merge_finish(spp.ept);
		}
		spin_unlock(&spp.ept->lock);
		if (r == -ENOMEM && spp.nidle) {
			/* Idle blocks' tables are a cache: give them back and try once more. */
			reclaim_range(gfn, n);
			spp_reclaim_idle();
			spin_lock(&spp.ept->lock);
			r = prepare_pages(gfn, n, maps);
			spin_unlock(&spp.ept->lock);
		}
	}
	if (r) {
		if (r == -ENOMEM)
			reclaim_range(gfn, n); /* splits and paths a failed prepare left behind */
		return r;
	}
	spp.store_gen++;
	spin_lock(&spp.ept->lock);
	u32 how = spp_store_apply_set_bulk(&spp.store, gfn, n, maps, pflags);
	apply_tables(gfn, n, maps, how & SPP_APPLY_CHANGED);
	/* Narrowed: INVEPT everywhere. Lazy mode: an invalidated SPPT entry must not stay
	 * cached valid either. */
	bool narrowed = (how & SPP_APPLY_NARROWED) ||
			(spp.mode == SPP_MODE_HW && spp.lazy && (how & SPP_APPLY_CHANGED));
	spin_unlock(&spp.ept->lock);
	spp_dma_changed(gfn, n); /* DMA tables and IOTLBs (spp/dma.c); cannot fail */
	if (narrowed)
		spp_flush_all_cpus();
	settle_blocks(gfn, n);
	return 0;
}

s64 hc_spp_set(struct percpu *c, struct hc_args *a)
{
	(void)c;
	u64 gfn = a->arg[0], n = a->arg[1], map_gpa = a->arg[2], flags = a->arg[3];
	/* used under spp.lock only */
	static u32 maps[TESSEL_MAX_PAGES_PER_CALL];
	if (spp.mode == SPP_MODE_NONE)
		return -ENODEV;
	if (flags & ~(u64)TESSEL_SPP_TRACK_FLAG)
		return -EINVAL;
	if ((flags & TESSEL_SPP_TRACK_FLAG) && !(tessel_features() & TESSEL_F_TRACK))
		return -EOPNOTSUPP;
	s64 r = check_pages_and_map(gfn, n, map_gpa);
	if (r)
		return r;
	spin_lock(&spp.lock);
	if (guest_read_phys(map_gpa, maps, n * 4)) {
		r = -EFAULT;
		goto out;
	}
	r = set_locked(gfn, n, maps, (flags & TESSEL_SPP_TRACK_FLAG) ? SPP_PAGE_TRACK : 0);
	/* SET speaks in sub-pages: a page in byte mode leaves it (ABI.md, HC_SPP_PROTECT_BYTES). */
	if (!r && spp.bytes.n)
		for (u64 i = 0; i < n; i++)
			spp_bytes_drop(&spp.bytes, gfn + i);
out:
	spin_unlock(&spp.lock);
	return r;
}

/*
 * HC_SPP_PROTECT_BYTES (ABI 1.4): write-protect exactly the bytes [gpa, gpa + len). The
 * sub-pages holding them are write-protected in the store and the tables (so every write to
 * them reaches the hypervisor), the pages enter byte mode, and the violation path completes
 * the writes to the other bytes of those sub-pages (spp/violation.c store_page). Each page
 * keeps its TRACK flag. All-or-nothing: locks and table room are checked first; a page whose
 * SET fails undoes the pages set before it (back to maps that were in force, which need no
 * new table memory).
 */
s64 hc_spp_protect_bytes(struct percpu *c, struct hc_args *a)
{
	(void)c;
	u64 gpa = a->arg[0], len = a->arg[1];
	enum { MAXP = TESSEL_MAX_PROTECT_BYTES / PAGE_SIZE + 1 };
	u32 maps[MAXP], old[MAXP], pflags[MAXP], off[MAXP], cnt[MAXP]; /* cnt: bytes of page i */
	if (spp.mode == SPP_MODE_NONE)
		return -ENODEV;
	if (a->arg[2] || a->arg[3] || !len || len > TESSEL_MAX_PROTECT_BYTES || gpa + len < gpa)
		return -EINVAL;
	u64 gfn = gpa >> PAGE_SHIFT, n = ((gpa + len - 1) >> PAGE_SHIFT) - gfn + 1;
	s64 r = check_range(gfn, n);
	if (r)
		return r;
	spin_lock(&spp.lock);
	u32 fresh = 0;
	for (u64 i = 0; i < n; i++) {
		u64 page = (gfn + i) << PAGE_SHIFT;
		u64 lo = MAX(gpa, page), hi = MIN(gpa + len, page + PAGE_SIZE);
		u32 covered = 0;
		off[i] = (u32)(lo - page);
		cnt[i] = (u32)(hi - lo);
		for (u64 b = lo & ~127ULL; b < hi; b += 128)
			covered |= 1U << ((b - page) >> 7);
		spp_store_get(&spp.store, gfn + i, &old[i], &pflags[i]);
		if (pflags[i] & SPP_PAGE_LOCKED) {
			r = -EPERM;
			goto out;
		}
		pflags[i] &= SPP_PAGE_TRACK;
		maps[i] = old[i] & ~covered;
		fresh += !spp_bytes_mask(&spp.bytes, gfn + i);
	}
	if (!spp_bytes_room(&spp.bytes, fresh)) {
		r = -ENOMEM;
		goto out;
	}
	for (u64 i = 0; i < n; i++) {
		r = set_locked(gfn + i, 1, &maps[i], pflags[i]);
		if (r) {
			while (i--)
				BUG_ON(set_locked(gfn + i, 1, &old[i], pflags[i]));
			goto out;
		}
	}
	for (u64 i = 0; i < n; i++)
		BUG_ON(spp_bytes_add(&spp.bytes, gfn + i, old[i], off[i], cnt[i]));
out:
	spin_unlock(&spp.lock);
	return r;
}

s64 hc_spp_get(struct percpu *c, struct hc_args *a)
{
	(void)c;
	u64 gfn = a->arg[0], n = a->arg[1], map_gpa = a->arg[2];
	if (spp.mode == SPP_MODE_NONE)
		return -ENODEV;
	if (a->arg[3])
		return -EINVAL;
	s64 r = check_pages_and_map(gfn, n, map_gpa);
	if (r)
		return r;
	spin_lock(&spp.lock);
	if (!spp_gpa_writable(map_gpa, n * 4)) {
		r = -EFAULT;
		goto out;
	}
	/* Straight into the guest's buffer (RAM, checked above; aligned u32 stores). */
	spp_store_get_range(&spp.store, gfn, n, hpa_to_ptr(hpa(map_gpa)));
out:
	spin_unlock(&spp.lock);
	return r;
}

s64 hc_spp_lock(struct percpu *c, struct hc_args *a)
{
	(void)c;
	u64 gfn = a->arg[0], n = a->arg[1];
	if (spp.mode == SPP_MODE_NONE)
		return -ENODEV;
	s64 r = check_range(gfn, n);
	if (r)
		return r;
	spin_lock(&spp.lock);
	r = spp_store_check_lock(&spp.store, gfn, n);
	if (!r)
		spp_store_apply_lock(&spp.store, gfn, n);
	spin_unlock(&spp.lock);
	return r;
}
