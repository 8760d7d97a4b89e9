/*
 * Sub-page write protection: the part above the enforcement mechanism. One permission
 * store, one set of hypercalls, one event ring and one violation path serve both
 * mechanisms: the processor's SPP (EPT bit 61 + SPPT, "hw") and the software path for
 * processors without it ("sw": every page with a protected sub-page is mapped without
 * write access and each write is emulated byte by byte).
 */
#ifndef SPP_SPP_H
#define SPP_SPP_H

#include <tessel/config.h>
#include <tessel/spinlock.h>
#include <tessel/types.h>
#include "mm/ept.h"
#include "spp/bytes.h"
#include "spp/sppt.h"
#include "spp/store.h"

enum spp_mode { SPP_MODE_NONE, SPP_MODE_HW, SPP_MODE_SW };

/* Recently emptied 2 MiB blocks whose tables are kept (at most 2 table pages each: the
 * block's EPT table and, with hardware SPP, its SPPT leaf table; L2/L3 tables above them are
 * shared with other blocks). */
#define SPP_IDLE_BLOCKS 8

struct spp_state {
	spinlock_t lock;          /* store, SPPT, EPT leaves of protected pages, the ring */
	enum spp_mode mode;
	bool lazy;                /* sppt=lazy: SPPT leaves are built on SPP-miss exits */
	struct spp_store store;
	struct sppt sppt;
	struct ept *ept;
	/* event ring (HC_EVENTS_SETUP) */
	u64 ring_gpa;
	u32 ring_capacity;
	u32 ring_head;
	u8 ring_vector;
	u64 store_gen;            /* bumped by every change of the store (SET) */
	u64 ring_checked_gen;     /* store_gen when the ring was last found free of protection */
	bool misconfig_logged;
	/* Hysteresis for table reclamation (spp/spp.c): blocks whose last protected page went
	 * away recently keep their EPT table and SPPT leaf table, oldest first, so protect /
	 * unprotect of one block does not split and merge it every time. Bounded by
	 * SPP_IDLE_BLOCKS and dropped whenever table or store memory runs out. */
	u64 idle[SPP_IDLE_BLOCKS]; /* 2 MiB block numbers (gfn >> 9), idle[0] the oldest */
	u32 nidle;
	/* Pages in byte mode (HC_SPP_PROTECT_BYTES, spp/bytes.h). */
	struct spp_bytes bytes;
};

extern struct spp_state spp;

/* Boot: choose the mechanism from the configuration and the processor; set feature flags.
 * Returns 0, or a negative errno when spp=hw was demanded and cannot be had. */
int spp_init(const struct tessel_config *cfg, struct ept *ept, u8 phys_bits);
const char *spp_mode_name(void);

/* Frees the tables of every block in the idle cache (see struct spp_state). Caller holds
 * spp.lock. Returns the number of blocks it reclaimed. */
u32 spp_reclaim_idle(void);

/* Per-CPU VMCS setup (before launch): secondary control bit 23 and SPPTP in hw mode. */
void spp_cpu_setup(void);
u32 spp_proc2_bits(void);

/* Can the hypervisor write [gpa, gpa+len) on the guest's behalf? False if any byte is in a
 * protected sub-page (ABI.md section 2). Caller holds spp.lock or accepts a racy answer. */
bool spp_gpa_writable(u64 gpa, u64 len);

/* Cross-CPU EPT invalidation after a change that narrows permissions: INVEPT here and on
 * every other processor that can run guest code, before returning (spp/flush.c). */
void spp_flush_all_cpus(void);
/* Called from the NMI exit path: true if the NMI was a flush request (consumed). */
bool spp_flush_nmi(void);

/* Exit handlers (spp/violation.c). */
struct percpu;
bool spp_handle_ept_violation(struct percpu *c, u64 gpa, u64 qual);
/* The processor's accessed/dirty-flag write (bits, in the low 32 bits of the entry) to the
 * guest paging-structure entry of `size` bytes at gpa, for the access to gla: sets the bits
 * if that entry's bytes may be written (a TRACK sub-page reports it), returns false if they
 * are protected or not RAM, reported as DENIED (spp/violation.c). */
bool spp_paging_write(struct percpu *c, u64 gpa, unsigned size, u32 bits, u64 gla);
/* A store of n bytes (n <= 16) at guest-linear la that the hypervisor makes on behalf of an
 * instruction it emulates for another reason (SGDT/SIDT/SLDT/STR, LTR's busy bit;
 * hv/exit_dt.c), under the same rules as an emulated write (ABI.md section 4): protected
 * bytes keep their value (DENY, counted and reported) or land and are reported (TRACK),
 * hypervisor memory discards. Every page is translated (write access, plus GACC_USER in
 * `access` at CPL 3) before any byte lands. 0; -EFAULT: a #PF the guest takes (*pfec,
 * *fault_la), nothing stored; -EIO: a byte is not RAM (MMIO, a hole) or a paging structure
 * is not: nothing stored. `rip` is for the events. */
struct guest_paging;
int spp_emulated_store(struct percpu *c, const struct guest_paging *p, u32 access, u64 la, const void *buf,
		       unsigned n, u64 rip, u32 *pfec, u64 *fault_la);
void exit_spp(struct percpu *c);

/* Events (spp/events.c). */
#define TESSEL_EV_DENIED    1
#define TESSEL_EV_TRACKED   2
#define TESSEL_EV_DISCARDED 3
#define TESSEL_EV_DMA       4 /* ABI 1.1: a device's DMA write was refused (spp/dma.c) */
#define TESSEL_EV_PIN       5 /* ABI 1.2: a guest CR/MSR write a pin refused (hv/pin.c) */
void spp_post_event(struct percpu *c, u64 gpa, u64 rip, u64 gla, u16 kind, u16 bytes);

#endif
