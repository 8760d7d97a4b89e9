/*
 * The guest's MSR policy: one table (hv/msr_policy.c) that is the single source for the
 * MSR bitmap (generated from it at boot by vmx_msr_bitmap_init), the RDMSR/WRMSR exit
 * handlers (hv/exit_msr.c dispatch through it) and the table in docs/MSR.md (checked
 * against it by tests/unit/test_msr.c, which also regenerates it: MSR_DOC_UPDATE=1).
 *
 * Deny by default: an MSR the table does not list exits on every access and the guest gets
 * #GP(0), logged once per MSR and direction (listed MSRs: once per row and direction).
 */
#ifndef HV_MSR_POLICY_H
#define HV_MSR_POLICY_H

#include <tessel/types.h>

struct percpu;

/* What one direction (read or write) of an MSR does for the guest. */
enum msr_act {
	MSR_PASS,   /* no exit: the guest reaches the processor's MSR (bitmap bit clear) */
	MSR_VIRT,   /* exit; the entry's handler decides (0: done, -EINVAL: #GP(0)) */
	MSR_GP,     /* exit; #GP(0) (logged once) */
	MSR_IGNORE, /* writes only: exit; the write is dropped, the instruction completes (logged once) */
};

struct msr_policy_entry {
	u32 first, last; /* inclusive range; the table is sorted by first, ranges disjoint */
	u8 rd, wr;       /* enum msr_act */
	int (*read)(struct percpu *c, u32 msr, u64 *val); /* for rd == MSR_VIRT */
	int (*write)(struct percpu *c, u32 msr, u64 val); /* for wr == MSR_VIRT */
	const char *name;
	const char *sdm; /* where the SDM defines it or decides the handling */
	const char *why;
};

#define MSR_POLICY_MAX_ROWS 256 /* bounds the per-row log-once bits (hv/exit_msr.c) */
extern const struct msr_policy_entry msr_policy[];
extern const size_t msr_policy_count;

/* The entry that lists msr, or NULL (unlisted: #GP). Binary search. */
const struct msr_policy_entry *msr_policy_find(u32 msr);
/* Fills the 4-KiB MSR bitmap (SDM 24.6.9): every bit set except the MSR_PASS directions. */
void msr_policy_bitmap(u8 *bitmap);
/* A human name for an action, as used in docs/MSR.md. */
const char *msr_act_name(unsigned act, bool write);

/* The virtualized handlers' write rules, exposed for the unit tests. */
u64 msr_policy_debugctl_allowed(void);
u64 msr_policy_xss_allowed(void);
u64 msr_policy_misc_enable_writable(void);
u64 msr_policy_efer_allowed(void);

/* The exit side (hv/exit_msr.c): forget which MSRs were logged (unit tests). */
void msr_policy_log_reset(void);

#endif
