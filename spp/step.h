/*
 * Single-stepping, in software mode, the writing instructions the emulator does not cover
 * (FXSAVE, XSAVE, FNSTENV, POP to memory, MMX stores, ...), so that writes to the writable
 * sub-pages of a protected page behave exactly as without protection (ABI.md section 4.4).
 */
#ifndef SPP_STEP_H
#define SPP_STEP_H

#include "hv/percpu.h"

/* Boot: one save page per CPU. */
int spp_step_init(void);
/* MTF self-test result (hv/exit.c records it from the first VM exit of each CPU). */
void spp_step_set_mtf(bool works);
bool spp_step_uses_mtf(void);

/* Start stepping the instruction at RIP (length len) that wrote to page gfn. `writes`: the
 * sub-pages of gfn the instruction can write (bit j = bytes 128j..128j+127; ~0 if not
 * known): only those and the protected ones are saved for the judgement and an undo. Caller
 * holds spp.lock and releases it before VM entry. False: could not step (caller discards). */
bool spp_step_start(struct percpu *c, u64 gfn, u64 len, u64 fault_gpa, u64 gla, bool pushf, u32 writes);
/* An event delivery (vectored event) wrote page gfn at a writable byte: deliver it again
 * with the page writable for this vCPU only (caller holds spp.lock). False: not possible. */
bool spp_step_delivery(struct percpu *c, u64 gfn, u64 fault_gpa, u64 gla);
/* Called for every exit while c->step is set: true if the exit was the end of the step
 * (fully handled); false: the step was undone and the exit must be handled normally. */
bool spp_step_exit(struct percpu *c, u32 reason);
/* Other CPUs: an NMI may be a pause request; spin while the world is stopped. */
bool spp_step_pause_nmi(void);
/* The last lock of this CPU went (include/tessel/spinlock.h) and a pause NMI had come while it
 * held locks: pause now if the request still stands. */
void spp_step_pause_deferred(struct percpu *c);
/* A vCPU leaving wait-for-SIPI (hv/vapic.c): clears its wait_sipi and, if a stop is in
 * effect, pauses until the world resumes, so it never runs guest code while a page is open. */
void spp_step_park_exit(struct percpu *c);

#endif
