/*
 * VT-d DMA remapping (drivers/vtd.h, docs/IOMMU.md).
 *
 * Register-based invalidation only: the context cache and the IOTLB are invalidated through
 * CCMD and the IOTLB register (VT-d 6.5.1). A unit that the firmware left with queued
 * invalidation enabled has it turned off first (register-based invalidation is not allowed
 * while it is on, VT-d 6.5.2). Every wait for the hardware is bounded; a command that does
 * not complete fails the boot rather than hanging it.
 */
#include <hw.h>
#include "drivers/vtd.h"
#include "hv/abi.h"
#include "hv/features.h"
#include "hv/log.h"
#include "lib/string.h"
#include <arch/ept.h>
#include <arch/cpu.h>
#include "mm/ept.h"
#include "mm/memmap.h"
#include "mm/pmm.h"

struct iommu_state iommu;

#define VTD_POLL_LIMIT 10000000U /* register reads before a command counts as stuck */

/* ---- registers ---- */

static u32 rd32(const struct vtd_unit *u, u32 off) { return mmio_read32(u->base + off); }
static void wr32(const struct vtd_unit *u, u32 off, u32 v) { mmio_write32(u->base + off, v); }
static u64 rd64(const struct vtd_unit *u, u32 off)
{
	u64 lo = rd32(u, off);
	return lo | (u64)rd32(u, off + 4) << 32;
}
static void wr64(const struct vtd_unit *u, u32 off, u64 v)
{
	wr32(u, off, (u32)v);
	wr32(u, off + 4, (u32)(v >> 32));
}

/* Wait until (GSTS & bit) == want. */
static int wait_gsts(const struct vtd_unit *u, u32 bit, bool want)
{
	for (u32 i = 0; i < VTD_POLL_LIMIT; i++) {
		if (!!(rd32(u, VTD_GSTS) & bit) == want)
			return 0;
		cpu_relax();
	}
	return -EIO;
}

/* Issue one global command: the enables now in force, plus or minus `bit` (VT-d 11.4.4:
 * read GSTS, drop the one-shot status bits, set the command, write GCMD). */
static int gcmd(const struct vtd_unit *u, u32 bit, bool set, bool oneshot)
{
	u32 v = rd32(u, VTD_GSTS) & ~VTD_GSTS_ONESHOT;
	v = set ? (v | bit) : (v & ~bit);
	wr32(u, VTD_GCMD, v);
	if (oneshot) /* SRTP/WBF: status reports completion (RTPS set, WBFS clear) */
		return bit == VTD_GCMD_WBF ? wait_gsts(u, bit, false) : wait_gsts(u, bit, true);
	return wait_gsts(u, bit, set);
}

static int wait_clear64(const struct vtd_unit *u, u32 off, u64 bit)
{
	for (u32 i = 0; i < VTD_POLL_LIMIT; i++) {
		if (!(rd64(u, off) & bit))
			return 0;
		cpu_relax();
	}
	return -EIO;
}

/* ---- one unit ---- */

int vtd_unit_probe(struct vtd_unit *u, u64 base, u32 levels, const char **why)
{
	memset(u, 0, sizeof(*u));
	u->base = base;
	u->ver = rd32(u, VTD_VER);
	u->cap = rd64(u, VTD_CAP);
	u->ecap = rd64(u, VTD_ECAP);
	if (u->ver == 0 || u->ver == ~0U || u->cap == ~0ULL) {
		*why = "no VT-d registers at the DMAR's address";
		return -ENODEV;
	}
	/* SAGAW bit 1: 39-bit (3-level) tables, bit 2: 48-bit (4-level) (VT-d 11.4.2). */
	if (!(VTD_CAP_SAGAW(u->cap) & (levels == 4 ? 4 : 2))) {
		*why = levels == 4 ? "no 4-level (48-bit) second-level tables" : "no 3-level (39-bit) second-level tables";
		return -ENODEV;
	}
	u->iotlb = VTD_ECAP_IRO(u->ecap) + 8;
	u->fro = (u32)VTD_CAP_FRO(u->cap);
	u->nfr = (u32)VTD_CAP_NFR(u->cap);
	/* Both register blocks must lie inside the unit's register page(s): offsets from the
	 * hardware are trusted no more than the table's. */
	if (u->iotlb + 8 > 0x1000 || u->fro + u->nfr * 16ULL > 0x1000) {
		*why = "register offsets beyond the register page";
		return -ENODEV;
	}
	return 0;
}

int vtd_unit_flush_iotlb(struct vtd_unit *u)
{
	if (u->cap & VTD_CAP_RWBF) {
		int r = gcmd(u, VTD_GCMD_WBF, true, true);
		if (r)
			return r;
	}
	wr64(u, u->iotlb, VTD_IOTLB_IVT | VTD_IOTLB_DOMAIN | VTD_IOTLB_DR | VTD_IOTLB_DW | (u64)VTD_DOMAIN_ID << 32);
	int r = wait_clear64(u, u->iotlb, VTD_IOTLB_IVT);
	if (r)
		return r;
	/* IAIG = 0: the unit refused the request (VT-d 11.4.8.1). */
	return VTD_IOTLB_IAIG(rd64(u, u->iotlb)) ? 0 : -EIO;
}

static int global_invalidate(struct vtd_unit *u)
{
	wr64(u, VTD_CCMD, VTD_CCMD_ICC | VTD_CCMD_GLOBAL);
	int r = wait_clear64(u, VTD_CCMD, VTD_CCMD_ICC);
	if (r)
		return r;
	wr64(u, u->iotlb, VTD_IOTLB_IVT | VTD_IOTLB_GLOBAL | VTD_IOTLB_DR | VTD_IOTLB_DW);
	return wait_clear64(u, u->iotlb, VTD_IOTLB_IVT);
}

int vtd_unit_enable(struct vtd_unit *u, hpa_t root)
{
	int r = 0;
	u32 gsts = rd32(u, VTD_GSTS);
	if (gsts & VTD_GCMD_QIE)
		r = gcmd(u, VTD_GCMD_QIE, false, false);
	/* Faults are collected by polling (no interrupt handler is ours to install). */
	wr32(u, VTD_FECTL, VTD_FECTL_IM);
	if (!r) {
		wr64(u, VTD_RTADDR, root.v); /* TTM = 00: legacy root/context tables */
		r = gcmd(u, VTD_GCMD_SRTP, true, true);
	}
	if (!r && (u->cap & VTD_CAP_RWBF))
		r = gcmd(u, VTD_GCMD_WBF, true, true);
	if (!r)
		r = global_invalidate(u);
	if (!r && !(gsts & VTD_GCMD_TE))
		r = gcmd(u, VTD_GCMD_TE, true, false);
	/* Protected memory regions (firmware DMA protection) are superseded by translation. */
	if (!r && (u->cap & (VTD_CAP_PLMR | VTD_CAP_PHMR)) && (rd32(u, VTD_PMEN) & BIT(31))) {
		wr32(u, VTD_PMEN, 0);
		for (u32 i = 0; i < VTD_POLL_LIMIT && (rd32(u, VTD_PMEN) & 1); i++)
			cpu_relax();
	}
	u->enabled = !r;
	return r;
}

u32 vtd_unit_faults(struct vtd_unit *u, void (*fn)(void *ctx, const struct vtd_fault *f), void *ctx, bool *overflow)
{
	u32 fsts = rd32(u, VTD_FSTS), n = 0;
	*overflow = fsts & VTD_FSTS_PFO;
	if (fsts & VTD_FSTS_PPF) {
		u32 i = (fsts >> 8) & 0xff;
		for (u32 k = 0; k < u->nfr; k++, i = (i + 1) % u->nfr) {
			u32 off = u->fro + i * 16;
			u32 hi = rd32(u, off + 12);
			if (!(hi & BIT(31)))
				break; /* the records are consumed in order from FRI */
			struct vtd_fault f;
			u32 sidw = rd32(u, off + 8);
			f.sid = (u16)sidw;
			f.reason = (u8)hi;
			f.read = hi & BIT(30);
			f.addr = rd64(u, off) & PAGE_MASK;
			wr32(u, off + 12, BIT(31)); /* F is write-1-to-clear */
			n++;
			if (fn)
				fn(ctx, &f);
		}
	}
	if (*overflow)
		wr32(u, VTD_FSTS, VTD_FSTS_PFO);
	return n;
}

/* ---- the policy ---- */

/* Root and context tables (VT-d 9.1, 9.3): every bus's root entry points at one context
 * table whose 256 entries all select the shared second-level tables in domain 1. */
static int build_context(u32 levels)
{
	iommu.root = pmm_alloc_page();
	iommu.context = pmm_alloc_page();
	if (!iommu.root.v || !iommu.context.v)
		return -ENOMEM;
	u64 *root = hpa_to_ptr(iommu.root), *ctx = hpa_to_ptr(iommu.context);
	for (u32 bus = 0; bus < 256; bus++) {
		root[bus * 2] = iommu.context.v | 1; /* present */
		root[bus * 2 + 1] = 0;
	}
	/* Context entry: lo = SLPTPTR | TT 00 (untranslated requests only) | P; hi = DID << 8 |
	 * AW (1: 39-bit 3-level, 2: 48-bit 4-level). */
	for (u32 devfn = 0; devfn < 256; devfn++) {
		ctx[devfn * 2] = iommu.pt.root.v | 1;
		ctx[devfn * 2 + 1] = (u64)VTD_DOMAIN_ID << 8 | (levels == 4 ? 2 : 1);
	}
	return 0;
}

static const char *const iommu_mode_names[] = { "auto", "on", "off" };

/* A unit whose register range is RAM or the hypervisor's region is a lie we do not act on. */
static bool regs_plausible(const struct dmar_unit *du)
{
	for (u64 a = du->reg_base; a < du->reg_base + du->reg_size; a += PAGE_SIZE)
		if (memmap_is_ram(a, PAGE_SIZE) || memmap_in_hv(a, PAGE_SIZE))
			return false;
	return true;
}

static struct dmar_info dmar;

/* Turn translation off on every unit (the boot is failing: the region holding the tables
 * goes back to the firmware). */
static void iommu_abort(void)
{
	for (u32 i = 0; i < iommu.nunits; i++)
		if (gcmd(&iommu.units[i], VTD_GCMD_TE, false, false))
			log_error("iommu: unit %u: translation could not be turned off", i);
	iommu.active = false;
}

void iommu_shutdown(void)
{
	if (iommu.active)
		iommu_abort();
}


/* Give up: in auto mode a line and no protection; in on mode a refusal. */
static int unavailable(u32 mode, const char *why)
{
	if (mode == CFG_IOMMU_ON) {
		log_error("iommu=on: %s: refusing to start", why);
		return -EOPNOTSUPP;
	}
	log_info("iommu: %s: DMA is not remapped", why);
	return 0;
}

int iommu_init(const struct tessel_config *cfg, u64 rsdp)
{
	u32 mode = cfg->iommu <= CFG_IOMMU_OFF ? cfg->iommu : CFG_IOMMU_AUTO;
	char err[DMAR_ERR_MAX];
	memset(&iommu, 0, sizeof(iommu));
	if (mode == CFG_IOMMU_OFF) {
		log_warn("iommu=off: DMA is not remapped: any bus-master device can write anywhere, "
			 "the hypervisor's memory and protected sub-pages included");
		return 0;
	}
	u64 pa;
	u32 len;
	int r = acpi_find_table(rsdp, "DMAR", &pa, &len, err, sizeof(err));
	if (r == -ENODEV)
		return unavailable(mode, "no DMAR table (no VT-d)");
	if (r)
		return unavailable(mode, err);
	if (len > SZ_1M)
		return unavailable(mode, "DMAR table longer than 1 MiB");
	if (dmar_parse(hpa_to_ptr(hpa(pa)), len, &dmar, err, sizeof(err)))
		return unavailable(mode, err);

	/* 4-level tables cover 256 TiB; use 3 levels only where a unit lacks 4. */
	u32 levels = 4;
	for (u32 i = 0; i < dmar.unit_count; i++) {
		const struct dmar_unit *du = &dmar.units[i];
		const char *why = NULL;
		if (!regs_plausible(du))
			return unavailable(mode, "a DRHD's registers overlap RAM or the hypervisor's region");
		if (vtd_unit_probe(&iommu.units[i], du->reg_base, 4, &why)) {
			if (!why || vtd_unit_probe(&iommu.units[i], du->reg_base, 3, &why))
				return unavailable(mode, why);
			levels = 3;
		}
	}
	bool large = true;
	for (u32 i = 0; i < dmar.unit_count; i++) {
		/* Re-probe every unit with the common level count. */
		const char *why = NULL;
		if (vtd_unit_probe(&iommu.units[i], dmar.units[i].reg_base, levels, &why))
			return unavailable(mode, why);
		large = large && (VTD_CAP_SLLPS(iommu.units[i].cap) & 1);
	}
	iommu.nunits = dmar.unit_count;

	struct vtd_pt_params pp = { levels, large, dmar.rmrrs, dmar.rmrr_count };
	u64 lost = 0;
	r = vtd_pt_build(&iommu.pt, &pp, &lost);
	if (r == -EINVAL)
		return unavailable(mode, "an RMRR overlaps the hypervisor's region");
	if (r)
		return -ENOMEM;
	if (lost)
		log_warn("iommu: %llu pages of RAM above 512 GiB are not reachable by DMA (3-level tables)",
			 (unsigned long long)lost);
	r = build_context(levels);
	if (r)
		return r;
	/* Units that do not snoop their table walks would read stale tables from memory. */
	for (u32 i = 0; i < iommu.nunits; i++)
		if (!(iommu.units[i].ecap & VTD_ECAP_C))
			iommu.pt.flush = true;
	if (iommu.pt.flush)
		wbinvd();

	for (u32 i = 0; i < iommu.nunits; i++) {
		if (vtd_unit_enable(&iommu.units[i], iommu.root)) {
			/* The tables live in the region, which the loader frees when the core fails:
			 * no unit may go on translating through them. */
			log_error("iommu: unit %u at %llx did not complete a command", i,
				  (unsigned long long)iommu.units[i].base);
			iommu.nunits = i + 1;
			iommu_abort();
			return unavailable(mode, "a VT-d unit did not complete a command");
		}
	}
	/* The guest OS does not get the IOMMU (docs/IOMMU.md): its DMAR table disappears from the
	 * root tables, so the OS finds no VT-d unit, as on a machine without one. */
	u32 hidden = acpi_hide_table(rsdp, "DMAR");
	iommu.active = true;
	iommu.rate_left = 32;
	tessel_features_set(tessel_features() | TESSEL_F_DMA);
	log_info("iommu: DMA remapping on %u unit%s (%s, %u-level tables, %llu table pages, %u RMRR%s, "
		 "interrupt remapping %s by the firmware; DMAR %s)",
		 iommu.nunits, iommu.nunits == 1 ? "" : "s", iommu_mode_names[mode], levels,
		 (unsigned long long)iommu.pt.tables + 2, dmar.rmrr_count, dmar.rmrr_count == 1 ? "" : "s",
		 (rd32(&iommu.units[0], VTD_GSTS) & VTD_GCMD_IRE) ? "left on" : "not enabled",
		 hidden ? "hidden from the guest" : "not found in the root tables again");
	return 0;
}

static int hide_registers(struct ept *ept);

int iommu_hide_registers(struct ept *ept)
{
	if (!iommu.active)
		return 0;
	int r = hide_registers(ept);
	if (r) {
		log_error("iommu: the units' registers could not be hidden from the guest");
		iommu_abort();
	}
	return r;
}

static int hide_registers(struct ept *ept)
{
	hpa_t zero = pmm_alloc_page(); /* zeroed */
	if (!zero.v)
		return -ENOMEM;
	for (u32 i = 0; i < iommu.nunits; i++) {
		const struct dmar_unit *du = &dmar.units[i];
		for (u64 a = du->reg_base; a < du->reg_base + du->reg_size; a += PAGE_SIZE) {
			spin_lock(&ept->lock);
			int r = ept_split(ept, a, 1);
			/* A split that breaks before make (ept->bbm) waits for a shootdown; no
			 * processor runs as a guest yet, so none is owed: link it now. */
			if (ept->npending)
				ept_merge_finish(ept);
			int level = 0;
			u64 *leaf = r ? NULL : ept_leaf(ept, a, &level);
			if (leaf && level == 1) /* R+X, WB, IPAT: the same kind of leaf as the region's */
				__atomic_store_n(leaf, zero.v | EPT_R | EPT_X | ((u64)MT_WB << EPT_MT_SHIFT) | EPT_IGNORE_PAT,
						 __ATOMIC_RELEASE);
			spin_unlock(&ept->lock);
			if (!leaf || level != 1)
				return r ? r : -EINVAL;
		}
		if (!memmap_hide(du->reg_base, du->reg_size))
			return -ENOMEM;
	}
	return 0;
}

void iommu_pages_changed(u64 gfn, u64 n, bool (*protected_fn)(u64 gfn), bool (*protected_in_2m)(u64 gfn))
{
	if (!iommu.active || !n)
		return;
	bool changed = false;
	for (u64 i = 0; i < n; i++) {
		u64 g = gfn + i, a = g << PAGE_SHIFT;
		bool prot = protected_fn(g);
		int r = prot ? vtd_pt_prepare(&iommu.pt, a) : 0;
		if (r == -ENOMEM) {
			/* No memory to split: the whole block becomes read-only (safe, coarser). */
			changed |= vtd_pt_set_block_writable(&iommu.pt, a, false);
			continue;
		}
		if (r)
			continue; /* not DMA-mapped: nothing to protect */
		changed |= vtd_pt_set_writable(&iommu.pt, a, !prot);
		if (!prot && !protected_in_2m(g))
			changed |= vtd_pt_set_block_writable(&iommu.pt, a, true);
	}
	if (!changed)
		return;
	if (iommu.pt.flush)
		wbinvd();
	for (u32 i = 0; i < iommu.nunits; i++)
		if (vtd_unit_flush_iotlb(&iommu.units[i]))
			log_error("iommu: unit %u: IOTLB invalidation did not complete", i);
}

struct poll_ctx {
	bool (*is_protected)(u64 gfn);
	void (*report)(void *ctx, const struct vtd_fault *f);
	void *ctx;
};

static void one_fault(void *vctx, const struct vtd_fault *f)
{
	struct poll_ctx *p = vctx;
	iommu.faults++;
	iommu.last_fault = *f;
	bool hv = memmap_in_hv(f->addr, PAGE_SIZE);
	bool prot = !hv && p->is_protected && p->is_protected(f->addr >> PAGE_SHIFT);
	if (hv || prot)
		iommu.faults_protected++;
	/* Device-caused, hence guest-caused: rate-limited (the first 32, then every 1024th). */
	if (iommu.rate_left || (iommu.faults & 1023) == 0) {
		if (iommu.rate_left)
			iommu.rate_left--;
		log_warn("iommu: DMA %s fault: source %02x:%02x.%u address %llx reason %u%s (%llu so far)",
			 f->read ? "read" : "write", f->sid >> 8, (f->sid >> 3) & 0x1f, f->sid & 7,
			 (unsigned long long)f->addr, f->reason,
			 hv ? " (hypervisor region)" : prot ? " (protected sub-page)" : "", (unsigned long long)iommu.faults);
	}
	if (prot && p->report)
		p->report(p->ctx, f);
}

u32 iommu_poll_faults(bool (*is_protected)(u64 gfn), void (*report)(void *ctx, const struct vtd_fault *f), void *ctx)
{
	if (!iommu.active)
		return 0;
	struct poll_ctx p = { is_protected, report, ctx };
	u32 n = 0;
	spin_lock(&iommu.fault_lock);
	for (u32 i = 0; i < iommu.nunits; i++) {
		bool overflow = false;
		n += vtd_unit_faults(&iommu.units[i], one_fault, &p, &overflow);
		if (overflow) {
			iommu.dropped++;
			if (iommu.rate_left)
				log_warn("iommu: unit %u dropped fault records (overflow)", i);
		}
	}
	spin_unlock(&iommu.fault_lock);
	return n;
}
