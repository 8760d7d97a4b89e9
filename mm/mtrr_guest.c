/*
 * The guest's virtual MTRRs (see mtrr_guest.h). Register formats, Intel SDM Vol. 3A 11.11.1
 * (IA32_MTRRCAP, Figure 11-5), 11.11.2.1 (IA32_MTRR_DEF_TYPE, Figure 11-6), 11.11.2.2 (fixed
 * ranges, Table 11-9), 11.11.2.3 (IA32_MTRR_PHYSBASEn/PHYSMASKn, Figure 11-7); a write of a
 * reserved bit or of an undefined type raises #GP (11.11.2.1-3).
 *
 * Retyping the EPT: every leaf that maps its own address (identity) and does not ignore the
 * guest PAT gets the type mtrr_range_uniform() gives its range; where the range is no longer
 * uniform the leaf is split (ept_split, which keeps permissions, so no translation changes;
 * where page-size changes break before make, the new table is retyped while unlinked and
 * linked after a shootdown) and its parts retyped. The region's 0xFF pages (IPAT = 1, not identity) are left alone.
 * Permissions, the SPP bit and accessed/dirty flags are kept. Should a split find no memory,
 * the leaf becomes UC (the type that is never wrong for correctness, only slower), with a
 * rate-limited warning. Split tables are not merged back when types become uniform again:
 * the splits a guest can cause are bounded by its memory size (one table per 2 MiB block and
 * per GiB).
 */
#include <hw.h>
#include <arch/cpu.h>
#include <arch/ept.h>
#include <arch/msr.h>
#include <tessel/spinlock.h>
#include "hv/log.h"
#include "lib/string.h"
#include "mm/mtrr_guest.h"
#include "spp/spp.h"

#define FIXED_MSRS 11
#define DEF_VALID (MTRR_DEF_TYPE_MASK | MTRR_DEF_FE | MTRR_DEF_E)

static struct {
	spinlock_t lock;
	bool ready, present;  /* init done; the processor has MTRRs */
	struct ept *ept;
	u8 phys_bits;
	u64 cap;              /* MTRRCAP as the guest reads it */
	u64 def;              /* IA32_MTRR_DEF_TYPE */
	u64 fixed[FIXED_MSRS];
	u64 base[MTRR_MAX_VAR], mask[MTRR_MAX_VAR];
	struct mtrr_state applied; /* what the EPT's memory types were computed from */
	u32 warned;
} g = { .lock = SPINLOCK_INIT };

static const u32 fixed_msrs[FIXED_MSRS] = {
	MSR_IA32_MTRR_FIX64K_00000, MSR_IA32_MTRR_FIX16K_80000, MSR_IA32_MTRR_FIX16K_A0000,
	MSR_IA32_MTRR_FIX4K_C0000 + 0, MSR_IA32_MTRR_FIX4K_C0000 + 1, MSR_IA32_MTRR_FIX4K_C0000 + 2,
	MSR_IA32_MTRR_FIX4K_C0000 + 3, MSR_IA32_MTRR_FIX4K_C0000 + 4, MSR_IA32_MTRR_FIX4K_C0000 + 5,
	MSR_IA32_MTRR_FIX4K_C0000 + 6, MSR_IA32_MTRR_FIX4K_C0000 + 7,
};

static int fixed_index(u32 msr)
{
	for (int i = 0; i < FIXED_MSRS; i++)
		if (fixed_msrs[i] == msr)
			return i;
	return -1;
}

bool mtrr_guest_is_mtrr(u32 msr)
{
	return msr == MSR_IA32_MTRRCAP || msr == MSR_IA32_MTRR_DEF_TYPE ||
	       (msr >= MSR_IA32_MTRR_PHYSBASE0 && msr < MSR_IA32_MTRR_PHYSBASE0 + 2 * MTRR_MAX_VAR) ||
	       fixed_index(msr) >= 0;
}

/* The resolution state of the current registers, canonical: fields that cannot affect a
 * type are zero, so two states compare equal exactly when they give the same types. */
static void derive(struct mtrr_state *s)
{
	memset(s, 0, sizeof(*s));
	s->phys_bits = g.phys_bits;
	s->enabled = g.def & MTRR_DEF_E;
	s->def_type = (u8)(g.def & MTRR_DEF_TYPE_MASK);
	s->fixed_enabled = (g.def & MTRR_DEF_FE) && (g.cap & MTRRCAP_FIX);
	for (int m = 0; s->fixed_enabled && m < FIXED_MSRS; m++)
		for (int j = 0; j < 8; j++)
			s->fixed[m * 8 + j] = (u8)(g.fixed[m] >> (8 * j));
	s->var_count = (u32)(g.cap & MTRRCAP_VCNT_MASK);
	for (u32 i = 0; i < s->var_count; i++)
		if (g.mask[i] & MTRR_PHYSMASK_VALID) {
			s->var[i].base = g.base[i];
			s->var[i].mask = g.mask[i];
		}
}

static void canonical(struct mtrr_state *s)
{
	if (!s->fixed_enabled)
		memset(s->fixed, 0, sizeof(s->fixed));
	for (u32 i = 0; i < MTRR_MAX_VAR; i++)
		if (i >= s->var_count || !(s->var[i].mask & MTRR_PHYSMASK_VALID))
			s->var[i].base = s->var[i].mask = 0;
}

void mtrr_guest_init(const struct mtrr_state *boot, struct ept *ept)
{
	u64 cap;

	g.ept = ept;
	g.phys_bits = boot->phys_bits;
	g.present = rdmsr_safe(MSR_IA32_MTRRCAP, &cap);
	g.cap = g.present ? (cap & (MTRRCAP_FIX | MTRRCAP_WC)) | boot->var_count : 0;
	g.def = (boot->enabled ? MTRR_DEF_E : 0) | (boot->fixed_enabled ? MTRR_DEF_FE : 0) | boot->def_type;
	memset(g.fixed, 0, sizeof(g.fixed));
	for (int m = 0; m < FIXED_MSRS; m++)
		for (int j = 0; j < 8; j++)
			g.fixed[m] |= (u64)boot->fixed[m * 8 + j] << (8 * j);
	for (u32 i = 0; i < MTRR_MAX_VAR; i++) {
		g.base[i] = i < boot->var_count ? boot->var[i].base : 0;
		g.mask[i] = i < boot->var_count ? boot->var[i].mask : 0;
	}
	g.applied = *boot;
	canonical(&g.applied);
	g.ready = true;
}

const struct mtrr_state *mtrr_guest_applied(void) { return &g.applied; }

static bool type_ok(u64 t)
{
	switch (t) {
	case MT_UC: case MT_WT: case MT_WP: case MT_WB:
		return true;
	case MT_WC:
		return g.cap & MTRRCAP_WC;
	default:
		return false;
	}
}

static u64 addr_bits(void) { return (BIT(MIN((u32)g.phys_bits, 52U)) - 1) & PAGE_MASK; }

/* The register msr names: its storage, or NULL if the guest's processor has no such MSR. */
static u64 *reg(u32 msr)
{
	int f;

	if (!g.ready || !g.present)
		return NULL;
	if (msr == MSR_IA32_MTRR_DEF_TYPE)
		return &g.def;
	if (msr >= MSR_IA32_MTRR_PHYSBASE0 && msr < MSR_IA32_MTRR_PHYSBASE0 + 2 * MTRR_MAX_VAR) {
		u32 n = (msr - MSR_IA32_MTRR_PHYSBASE0) / 2;

		if (n >= (g.cap & MTRRCAP_VCNT_MASK))
			return NULL;
		return (msr & 1) ? &g.mask[n] : &g.base[n];
	}
	f = fixed_index(msr);
	if (f >= 0 && (g.cap & MTRRCAP_FIX))
		return &g.fixed[f];
	return NULL;
}

int mtrr_guest_read(u32 msr, u64 *val)
{
	u64 *r;

	if (msr == MSR_IA32_MTRRCAP && g.ready && g.present) {
		*val = g.cap;
		return 0;
	}
	spin_lock(&g.lock);
	r = reg(msr);
	if (r)
		*val = *r;
	spin_unlock(&g.lock);
	return r ? 0 : -EINVAL;
}

/* Would the processor accept val for msr (SDM 11.11.2.1-3)? */
static bool value_ok(u32 msr, u64 val)
{
	if (msr == MSR_IA32_MTRR_DEF_TYPE)
		return !(val & ~DEF_VALID) && type_ok(val & MTRR_DEF_TYPE_MASK);
	if (msr >= MSR_IA32_MTRR_PHYSBASE0 && msr < MSR_IA32_MTRR_PHYSBASE0 + 2 * MTRR_MAX_VAR) {
		if (msr & 1)
			return !(val & ~(addr_bits() | MTRR_PHYSMASK_VALID));
		return !(val & ~(addr_bits() | MTRR_PHYSBASE_TYPE_MASK)) && type_ok(val & MTRR_PHYSBASE_TYPE_MASK);
	}
	for (int j = 0; j < 8; j++) /* a fixed-range MSR: eight type fields */
		if (!type_ok((val >> (8 * j)) & 0xff))
			return false;
	return true;
}

/* Retypes the leaves of the table tab at `level` covering [base, ...) for s (see the top of
 * this file). Returns how many entries changed. ept->lock held. */
static u64 retype_table(struct ept *ept, u64 *tab, int level, u64 base, const struct mtrr_state *s)
{
	u64 sz = EPT_LEVEL_SIZE(level), changed = 0;

	for (u64 i = 0; i < PT_ENTRIES; i++) {
		u64 a = base + i * sz, e = tab[i], ne;
		bool leaf = level == 1 || (e & EPT_LARGE);
		u8 t;

		if (!(e & EPT_RWX)) {
			u64 *pt = ept_pending_table(ept, &tab[i]);

			if (pt && level > 1) /* split, linked after the shootdown (below) */
				changed += retype_table(ept, pt, level - 1, a, s);
			continue;
		}
		if (!leaf) {
			changed += retype_table(ept, hpa_to_ptr(hpa(e & EPT_ADDR_MASK)), level - 1, a, s);
			continue;
		}
		if ((e & EPT_IGNORE_PAT) || (e & EPT_ADDR_MASK) != a)
			continue; /* the 0xFF page, or nothing of ours */
		if (!mtrr_range_uniform(s, a, sz, &t)) {
			/* Splits that break before make wait for one shootdown together; when
			 * their list is full, that shootdown comes now (spp.lock is held). */
			if (level > 1 && ept->bbm && ept->npending == EPT_MERGE_MAX) {
				spp_flush_all_cpus();
				ept_merge_finish(ept);
			}
			if (level > 1 && ept_split(ept, a, level - 1) == 0) {
				u64 *pt = ept_pending_table(ept, &tab[i]);

				changed++;
				changed += retype_table(ept, pt ? pt : hpa_to_ptr(hpa(tab[i] & EPT_ADDR_MASK)),
							level - 1, a, s);
				continue;
			}
			if (g.warned++ < 4)
				log_warn("MTRR write: no memory to split the EPT leaf at %llx: made UC",
					 (unsigned long long)a);
			t = MT_UC;
		}
		ne = (e & ~EPT_MT_MASK) | ((u64)t << EPT_MT_SHIFT);
		if (ne != e) {
			atomic_store(&tab[i], ne);
			changed++;
		}
	}
	return changed;
}

int mtrr_guest_write(u32 msr, u64 val)
{
	struct mtrr_state s;
	u64 *r, changed = 0;

	spin_lock(&g.lock);
	r = reg(msr);
	if (!r || !value_ok(msr, val)) {
		spin_unlock(&g.lock);
		return -EINVAL;
	}
	*r = val;
	derive(&s);
	canonical(&s);
	/* Deferred while E = 0; otherwise only a change of the effective state costs a walk. */
	if (s.enabled && memcmp(&s, &g.applied, sizeof(s)) != 0) {
		g.applied = s;
		if (g.ept && g.ept->pml4.v) {
			/* Every shootdown runs under spp.lock (spp/flush.c keeps one at a time), and
			 * holding it here also keeps out a single-step's stop-the-world (spp/step.c)
			 * while this CPU holds the EPT lock. Order: g.lock, spp.lock, ept->lock. */
			spin_lock(&spp.lock);
			spin_lock(&g.ept->lock);
			/* A merge unlinked meanwhile (spp/spp.c reclaim_tables) would install a
			 * large leaf of the old type: link its table back and retype it too. */
			ept_merge_cancel(g.ept);
			changed = retype_table(g.ept, hpa_to_ptr(g.ept->pml4), 4, 0, &g.applied);
			/* Splits that broke before making (mm/ept.h ept_split, ept->bbm): linked
			 * only after every CPU has invalidated; the lock is held throughout, so
			 * what is finished here was unlinked before this shootdown started. */
			if (g.ept->npending) {
				spp_flush_all_cpus();
				ept_merge_finish(g.ept);
			}
			spin_unlock(&g.ept->lock);
			if (changed)
				spp_flush_all_cpus(); /* SDM 28.4.3: cached translations carry the old types */
			spin_unlock(&spp.lock);
		}
	}
	spin_unlock(&g.lock);
	return 0;
}
