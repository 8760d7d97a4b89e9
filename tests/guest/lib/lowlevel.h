/*
 * lowlevel.h: the contract between the assembly routines in stubs.c and their C callers
 * (trap.c, ring3.c, the register probe). Offsets are fixed by _Static_assert because the
 * assembly addresses these fields by number.
 */
#ifndef GUEST_LOWLEVEL_H
#define GUEST_LOWLEVEL_H

#include <stdint.h>

#define HIDDEN __attribute__((visibility("hidden")))

/* One guarded excursion: a call at CPL 0 or an IRETQ to CPL 3, ended by return or exception. */
struct guard {
	uint64_t ksp;         /* 0: RSP to unwind to */
	uint64_t fn;          /* 8: function (mode 0) or user RIP (mode 1) */
	uint64_t arg;         /* 16: argument (mode 0) */
	uint64_t mode;        /* 24: 0 call at CPL 0, 1 IRETQ to CPL 3 */
	uint64_t regs[6];     /* 32: RAX RBX RCX RDX RSI RDI (in for mode 1, out on a trap) */
	uint64_t user_cs;     /* 80 */
	uint64_t user_ss;     /* 88 */
	uint64_t user_rsp;    /* 96 */
	uint64_t user_rflags; /* 104 */
	uint64_t vector;      /* 112 */
	uint64_t error;       /* 120 */
	uint64_t rip;         /* 128 */
	uint64_t cs;          /* 136 */
	uint64_t seg[5];      /* 144: DS ES FS GS SS at entry */
};
_Static_assert(__builtin_offsetof(struct guard, regs) == 32, "guard.regs");
_Static_assert(__builtin_offsetof(struct guard, user_cs) == 80, "guard.user_cs");
_Static_assert(__builtin_offsetof(struct guard, vector) == 112, "guard.vector");
_Static_assert(__builtin_offsetof(struct guard, seg) == 144, "guard.seg");

/* Returns 0 if fn returned (or never: mode 1 always ends in a trap), 1 after a trap. */
HIDDEN uint64_t guard_enter(struct guard *g);
/* 32 exception entry points, 16 bytes apart, then the INT 0x80 entry. */
HIDDEN extern char guard_vectors[];
HIDDEN extern char guard_vec_int80[];
#define GUARD_STUB(v) ((uint64_t)(uintptr_t)(guard_vectors + 16 * (v)))

/* Installs the stubs for `vectors` (and INT 0x80 with DPL 3 if int80) in a private IDT copy
 * on this CPU for the duration of guard_enter(g). */
HIDDEN int guard_run(struct guard *g, uint32_t vectors, int int80);

/* Register probe: loads in[] into RAX RBX RCX RDX RSI RDI RBP R8-R15, executes VMCALL,
 * stores the registers into out[] and RSP before/after. */
enum { RP_RAX, RP_RBX, RP_RCX, RP_RDX, RP_RSI, RP_RDI, RP_RBP, RP_R8, RP_R9, RP_R10, RP_R11,
       RP_R12, RP_R13, RP_R14, RP_R15, RP_COUNT };
struct regprobe {
	uint64_t in[RP_COUNT];  /* 0 */
	uint64_t out[RP_COUNT]; /* 120 */
	uint64_t rsp_before;    /* 240 */
	uint64_t rsp_after;     /* 248 */
};
_Static_assert(__builtin_offsetof(struct regprobe, out) == 120, "regprobe.out");
_Static_assert(__builtin_offsetof(struct regprobe, rsp_before) == 240, "regprobe.rsp_before");
HIDDEN void regprobe_vmcall(struct regprobe *p);

#endif
