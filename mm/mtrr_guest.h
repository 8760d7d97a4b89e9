/*
 * The guest's view of the MTRR MSRs (IA32_MTRRCAP, IA32_MTRR_DEF_TYPE, the fixed and the
 * variable ranges), virtualized. The MSR policy (hv/exit_msr.c, docs/MSR.md) routes every
 * MTRR access here. The guest never writes the host's MTRRs: with EPT, guest memory types
 * come from the EPT leaves (combined with the guest's PAT), so a guest write changes the EPT
 * memory types, with the precedence rules and large-page splitting of the boot-time build
 * (mm/mtrr.c, mm/ept.c).
 *
 * One virtual MTRR set for the whole machine. The MTRRs are per logical processor in the
 * architecture, but the EPT is shared by every vCPU, so memory types can only be per
 * machine; every OS programs the same values on every processor (SDM 11.11.8, "MTRR
 * Considerations in MP Systems", requires it), so a write from any vCPU changes the one set
 * and every vCPU reads it back.
 *
 * Cost: Linux (and the SDM 11.11.8 procedure) rewrites the MTRRs on every processor at boot,
 * with MTRRdefType.E cleared around the writes. The EPT is recomputed only when the
 * effective state changes, and not while E = 0: a state with E = 0 is deferred, the EPT
 * keeps the types last applied until E is set again, and then is recomputed only if the
 * state differs from the one applied. (While E = 0 hardware would make all memory UC; the
 * SDM procedure also sets CR0.CD meanwhile, which the processor honours in the guest
 * whatever the EPT says, so a guest following it sees no difference. A guest that clears E
 * and keeps caching on keeps its previous types: its own performance is all it affects.)
 */
#ifndef MM_MTRR_GUEST_H
#define MM_MTRR_GUEST_H

#include <tessel/types.h>
#include "mm/ept.h"
#include "mm/mtrr.h"

/* Boot, after the EPT was built from `boot`: the virtual MTRRs start as a copy of it, with
 * IA32_MTRRCAP read from the processor (VCNT clamped to the snapshot's var_count, the SMRR
 * bit hidden: the guest has no SMRR). Without MTRRs (MTRRCAP unreadable) every MTRR access
 * raises #GP, as on such a processor. Not SMP-safe: call before the guest runs. */
void mtrr_guest_init(const struct mtrr_state *boot, struct ept *ept);

/* Is msr one of the MTRR MSRs (0xFE, 0x200-0x23F variable pairs, the fixed ranges, 0x2FF)? */
bool mtrr_guest_is_mtrr(u32 msr);
/* RDMSR/WRMSR of an MTRR MSR by the guest. 0, or -EINVAL: the access raises #GP(0), and a
 * write changes nothing. A write is checked as the processor checks it (SDM 11.11.2): a
 * reserved bit, a type encoding that is reserved (2, 3, 7, >= 8) or WC without
 * MTRRCAP.WC, an MSR beyond MTRRCAP.VCNT, a fixed range without MTRRCAP.FIX, or any write
 * of MTRRCAP is -EINVAL. A write that changes the effective memory types retypes the EPT
 * (splitting large leaves where the new types are no longer uniform) and executes INVEPT
 * on every CPU (spp_flush_all_cpus) before returning. */
int mtrr_guest_read(u32 msr, u64 *val);
int mtrr_guest_write(u32 msr, u64 val);

/* Tests: the state the EPT memory types were last computed from. */
const struct mtrr_state *mtrr_guest_applied(void);

#endif
