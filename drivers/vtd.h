/*
 * Intel VT-d DMA remapping owned by the hypervisor (docs/IOMMU.md).
 *
 * Two layers:
 *   - vtd_unit_*: one remapping hardware unit, through its registers (VT-d specification
 *     rev. 4.1 chapter 11) with hw.h's mmio_read32/mmio_write32 only, so the host tests can
 *     put a model of the unit behind tests/fake/;
 *   - iommu_*: the policy: find the DMAR table, build one DMA address space
 *     (drivers/vtd_pt.h) and point every unit's every device at it, keep it in step with
 *     sub-page protection, collect faults.
 *
 * Every device (every bus, device and function under every unit) is in one domain whose
 * second-level tables are the identity map of guest RAM without the hypervisor's region;
 * pages with a protected sub-page are read-only for DMA.
 */
#ifndef DRIVERS_VTD_H
#define DRIVERS_VTD_H

#include <tessel/bootinfo.h>
#include <tessel/config.h>
#include <tessel/spinlock.h>
#include <tessel/types.h>
#include "drivers/dmar.h"
#include "drivers/vtd_pt.h"

/* Register offsets (VT-d 11.4). 64-bit registers are accessed as two dwords, low first;
 * the command registers act on the write of their high dword (VT-d 11.2). */
#define VTD_VER      0x00
#define VTD_CAP      0x08
#define VTD_ECAP     0x10
#define VTD_GCMD     0x18
#define VTD_GSTS     0x1c
#define VTD_RTADDR   0x20
#define VTD_CCMD     0x28
#define VTD_FSTS     0x34
#define VTD_FECTL    0x38
#define VTD_PMEN     0x64

/* Global command and status bits (VT-d 11.4.4, 11.4.5). */
#define VTD_GCMD_TE    BIT(31)
#define VTD_GCMD_SRTP  BIT(30)
#define VTD_GCMD_WBF   BIT(27)
#define VTD_GCMD_QIE   BIT(26)
#define VTD_GCMD_IRE   BIT(25)
/* GSTS bits that report one-shot commands: never written back into GCMD (VT-d 11.4.4). */
#define VTD_GSTS_ONESHOT 0x69000000U /* RTPS, FLS, WBFS, IRTPS */

#define VTD_CAP_RWBF        BIT(4)
#define VTD_CAP_PLMR        BIT(5)
#define VTD_CAP_PHMR        BIT(6)
#define VTD_CAP_SAGAW(c)    (((c) >> 8) & 0x1f)
#define VTD_CAP_FRO(c)      ((((c) >> 24) & 0x3ff) * 16)
#define VTD_CAP_SLLPS(c)    (((c) >> 34) & 0xf)
#define VTD_CAP_NFR(c)      ((((c) >> 40) & 0xff) + 1)
#define VTD_ECAP_C          BIT(0)
#define VTD_ECAP_QI         BIT(1)
#define VTD_ECAP_IR         BIT(3)
#define VTD_ECAP_IRO(e)     ((((e) >> 8) & 0x3ff) * 16)

#define VTD_CCMD_ICC        BIT(63)
#define VTD_CCMD_GLOBAL     (1ULL << 61)
#define VTD_IOTLB_IVT       BIT(63)
#define VTD_IOTLB_GLOBAL    (1ULL << 60)
#define VTD_IOTLB_DOMAIN    (2ULL << 60)
#define VTD_IOTLB_IAIG(v)   (((v) >> 57) & 3)
#define VTD_IOTLB_DR        BIT(49)
#define VTD_IOTLB_DW        BIT(48)

#define VTD_FSTS_PFO        BIT(0)
#define VTD_FSTS_PPF        BIT(1)
#define VTD_FECTL_IM        BIT(31)

#define VTD_DOMAIN_ID       1 /* the one domain; 0 is reserved when CAP.CM is set */

struct vtd_unit {
	u64 base;
	u64 cap, ecap;
	u32 ver;
	u32 iotlb;        /* offset of the IOTLB invalidate register */
	u32 fro, nfr;     /* fault recording registers: offset and count */
	bool enabled;
};

/* One DMA fault record (VT-d 11.4.14). */
struct vtd_fault {
	u16 sid;          /* source ID: bus << 8 | device << 3 | function */
	u8 reason;        /* fault reason (VT-d 7.1.3, e.g. 5 = write to a read-only page) */
	bool read;        /* request type: read (else write) */
	u64 addr;         /* page address of the request */
};

/* Reads VER/CAP/ECAP and checks them: 0 or -ENODEV with a reason in *why. */
int vtd_unit_probe(struct vtd_unit *u, u64 base, u32 levels_wanted, const char **why);
/* Points the unit at root (legacy-mode root table), flushes, invalidates, enables
 * translation, and disables the protected memory regions. 0 or -EIO (a command that never
 * completed). */
int vtd_unit_enable(struct vtd_unit *u, hpa_t root);
/* Write-buffer flush (where needed) and a domain-selective IOTLB invalidation, waited for. */
int vtd_unit_flush_iotlb(struct vtd_unit *u);
/* Reads and clears the pending fault records; calls fn for each. Returns how many, and
 * sets *overflow when the unit dropped some (FSTS.PFO). */
u32 vtd_unit_faults(struct vtd_unit *u, void (*fn)(void *ctx, const struct vtd_fault *f), void *ctx,
		    bool *overflow);

/* ---- the policy ---- */

struct iommu_state {
	bool active;              /* translation enabled on every unit */
	u32 nunits;
	struct vtd_unit units[DMAR_MAX_UNITS];
	struct vtd_pt pt;
	hpa_t root, context;      /* root table, and the one context table every bus uses */
	u64 faults;               /* DMA faults seen */
	u64 faults_protected;     /* of which on a page with a protected sub-page (or the region) */
	u64 dropped;              /* fault records the hardware could not keep (overflow) */
	struct vtd_fault last_fault;
	u32 rate_left;            /* fault log lines left before only every 1024th is logged */
	spinlock_t fault_lock;    /* serialises fault collection (any CPU may poll) */
};
extern struct iommu_state iommu;
_Static_assert(__builtin_offsetof(struct iommu_state, active) == 0, "hv/entry.asm tests iommu.active at iommu + 0");

/*
 * Boot (CORE_OP_INIT, after memmap_init and pmm_init): find and validate the DMAR table from
 * the RSDP, and, per cfg->iommu, build the DMA tables and enable every unit. Returns 0 (also
 * when there is no IOMMU and iommu=auto|off: logged in one line), or -EOPNOTSUPP when
 * iommu=on and DMA remapping cannot be set up (reason logged).
 */
int iommu_init(const struct tessel_config *cfg, u64 rsdp);

/* An undone start (hv/start.c): turn translation off on every unit before the region that
 * holds the DMA tables goes back to the firmware. */
void iommu_shutdown(void);

/*
 * Take the units' register pages away from the guest (VMX path, after iommu_init, before any
 * processor runs as a guest): each page maps in the guest's EPT to one read-only page of
 * zeros (a unit that reads VER = 0, translation off, nothing pending: firmware code polling a
 * status bit to clear finishes) and is hidden like the region (memmap_hide), so the guest's
 * writes are discarded. Without this a guest kernel could reprogram or turn off the unit.
 * Returns 0 or -ENOMEM (nothing changed for the page that failed). No-op when not active.
 */
struct ept;
int iommu_hide_registers(struct ept *ept);

/*
 * After HC_SPP_SET changed the permissions of [gfn, gfn + n): make every page with a
 * protected sub-page read-only for DMA and every other page writable again, then invalidate
 * the units' IOTLBs before returning. protected_fn(gfn) says whether a page has a protected
 * sub-page; protected_in_2m(gfn) whether any page of its 2 MiB block has. Cannot fail: when a
 * 2 MiB leaf cannot be split for lack of memory, the whole block becomes read-only for DMA.
 */
void iommu_pages_changed(u64 gfn, u64 n, bool (*protected_fn)(u64 gfn), bool (*protected_in_2m)(u64 gfn));

/*
 * Collect fault records from every unit: log them (rate-limited), count them, and call
 * report(ctx, fault) for a fault on a page for which is_protected(gfn) is true (the caller
 * posts the event). Returns the number of faults collected.
 */
u32 iommu_poll_faults(bool (*is_protected)(u64 gfn), void (*report)(void *ctx, const struct vtd_fault *f),
		      void *ctx);

#endif
