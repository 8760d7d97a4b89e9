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

#define SPP_STORE_CAPACITY (64 * 1024) /* pages with protected sub-pages or locks */
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
		   TESSEL_F_EVENTS | TESSEL_F_TRACK;
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

/* Everything that can fail for a SET, done before any permission changes. */
static s64 prepare_pages(u64 gfn, u64 n, const u32 *maps)
{
	u64 prepared_2m = ~0ULL; /* one EPT split and one SPPT path serve a whole 2 MiB block */
	for (u64 i = 0; i < n; i++) {
		if (maps[i] == SPP_MAP_ALL || ((gfn + i) >> 9) == prepared_2m)
			continue;
		if (!leaf_4k(gfn + i)) {
			int r = ept_split(spp.ept, (gfn + i) << PAGE_SHIFT, 1);
			if (r)
				return r == -ENOMEM ? -ENOMEM : -EINVAL;
		}
		if (spp.mode == SPP_MODE_HW && sppt_prepare(&spp.sppt, gfn + i))
			return -ENOMEM;
		prepared_2m = (gfn + i) >> 9;
	}
	return 0;
}

struct apply_ctx {
	bool narrowed;
	u64 last_2m;      /* lazy mode: block whose SPPT entry was invalidated */
	u64 cached_2m;    /* block whose EPT/SPPT leaf tables are cached below */
	u64 *ept_pt;      /* EPT 4 KiB table of cached_2m (NULL: mapped by a large leaf) */
	u64 *sppt_leaves; /* SPPT leaf table of cached_2m (NULL: none) */
};

/* One EPT walk and one SPPT walk per 2 MiB block instead of per page. */
static void cache_block(struct apply_ctx *ctx, u64 gfn)
{
	u64 base = gfn & ~511ULL;
	ctx->cached_2m = gfn >> 9;
	u64 *e = leaf_4k(base);
	ctx->ept_pt = e ? e : NULL;
	ctx->sppt_leaves = (spp.mode == SPP_MODE_HW && !spp.lazy) ? sppt_leaf_slot(&spp.sppt, base) : NULL;
}

static void apply_page(void *vctx, u64 gfn, u32 old_map, u32 new_map, u32 new_flags)
{
	struct apply_ctx *ctx = vctx;
	(void)new_flags;
	if (old_map & ~new_map)
		ctx->narrowed = true;
	if ((gfn >> 9) != ctx->cached_2m)
		cache_block(ctx, gfn);
	u64 *e = ctx->ept_pt ? ctx->ept_pt + (gfn & 511) : NULL;
	if (new_map != SPP_MAP_ALL) {
		BUG_ON(!e); /* prepare_pages split it */
		u64 v = (*e | EPT_R) & ~EPT_W;
		if (spp.mode == SPP_MODE_HW)
			v |= EPT_SPP;
		__atomic_store_n(e, v, __ATOMIC_RELEASE);
	} else if (e) {
		__atomic_store_n(e, (*e | EPT_W) & ~EPT_SPP, __ATOMIC_RELEASE);
	}
	if (spp.mode != SPP_MODE_HW)
		return;
	if (!spp.lazy) {
		if (new_map != SPP_MAP_ALL) {
			BUG_ON(!ctx->sppt_leaves); /* prepare_pages built the path */
			__atomic_store_n(ctx->sppt_leaves + (gfn & 511), sppt_vector(new_map), __ATOMIC_RELEASE);
		}
		/* an unprotected page's leaf is not consulted (EPT W=1, bit 61 clear) */
	} else if ((gfn >> 9) != ctx->last_2m) {
		sppt_invalidate_2m(&spp.sppt, gfn);
		ctx->last_2m = gfn >> 9;
		ctx->narrowed = true; /* the SPPT entry went away: the next write must miss */
	}
}

/*
 * Gives back the tables of every 2 MiB block of [gfn, gfn + n) that has no protected page
 * left (issue 9 item m): without this, protect/unprotect churn over many blocks would keep
 * one EPT table (and in hardware mode an SPPT leaf table) per block ever protected, and the
 * heap would end in -ENOMEM for good. Caller holds spp.lock (so no SET, violation or SPP
 * miss on another CPU changes these blocks meanwhile).
 *
 * EPT: a split block whose 512 leaves are identical again (permissions, memory type,
 * contiguous identity) becomes one 2 MiB leaf, and a GiB whose 512 entries are then equal
 * 2 MiB leaves one 1 GiB leaf, in the order unlink -> INVEPT on every CPU -> install the
 * large leaf and free the table (mm/ept.h explains why). Leaves that differ are never
 * merged: the xAPIC page (write-protected, hv/vapic.c), the region's 0xFF pages (not
 * contiguous), blocks with mixed MTRR types. SPPT (hardware mode): the block's leaf table
 * and any L2/L3 table left empty are unlinked before the same INVEPT and freed after it.
 */
static void reclaim_tables(u64 gfn, u64 n)
{
	u64 first = gfn >> 9, last = (gfn + n - 1) >> 9, merged[2] = { 0, 0 };
	bool flush = false, again = false;

	if (!n || last - first > 1) /* n <= TESSEL_MAX_PAGES_PER_CALL = 512: at most 2 blocks */
		return;
	spin_lock(&spp.ept->lock);
	for (u64 b = first; b <= last; b++) {
		if (spp_store_count_2m(&spp.store, b << 9))
			continue;
		if (spp.mode == SPP_MODE_HW && sppt_unlink_2m(&spp.sppt, b << 9))
			flush = true;
		if (ept_try_merge(spp.ept, b << 21, 2, NULL, NULL)) {
			merged[b - first] = 1;
			flush = true;
		}
	}
	spin_unlock(&spp.ept->lock);
	if (!flush)
		return;
	spp_flush_all_cpus();
	spin_lock(&spp.ept->lock);
	ept_merge_finish(spp.ept);
	for (u64 b = first; b <= last; b++)
		if (merged[b - first] && ept_try_merge(spp.ept, b << 21, 3, NULL, NULL))
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

s64 hc_spp_set(struct percpu *c, struct hc_args *a)
{
	(void)c;
	u64 gfn = a->arg[0], n = a->arg[1], map_gpa = a->arg[2], flags = a->arg[3];
	static u32 maps[TESSEL_MAX_PAGES_PER_CALL]; /* used under spp.lock only */
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
	u32 pflags = (flags & TESSEL_SPP_TRACK_FLAG) ? SPP_PAGE_TRACK : 0;
	r = spp_store_check_set(&spp.store, gfn, n, maps, pflags);
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
	}
	if (r) {
		if (r == -ENOMEM)
			reclaim_tables(gfn, n); /* splits and paths a failed prepare left behind */
		goto out;
	}
	struct apply_ctx ctx = { .narrowed = false, .last_2m = ~0ULL, .cached_2m = ~0ULL };
	spp.store_gen++;
	spin_lock(&spp.ept->lock);
	spp_store_apply_set(&spp.store, gfn, n, maps, pflags, apply_page, &ctx);
	spin_unlock(&spp.ept->lock);
	spp_dma_changed(gfn, n); /* DMA tables and IOTLBs (spp/dma.c); cannot fail */
	if (ctx.narrowed)
		spp_flush_all_cpus();
	reclaim_tables(gfn, n);
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
	u32 *out = hpa_to_ptr(hpa(map_gpa));
	for (u64 i = 0; i < n; i++) {
		u32 map, flags;
		spp_store_get(&spp.store, gfn + i, &map, &flags);
		__atomic_store_n(&out[i], map, __ATOMIC_RELAXED);
	}
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
