/*
 * The guest's view of the MTRR MSRs (IA32_MTRRCAP, IA32_MTRR_DEF_TYPE, the fixed and the
 * variable ranges). The MSR policy (hv/exit_msr.c, docs/MSR.md) routes every MTRR access
 * here. The guest never writes the host's MTRRs: with EPT, guest memory types come from the
 * EPT leaves (combined with the guest's PAT), so a guest write changes the EPT memory types.
 */
#ifndef MM_MTRR_GUEST_H
#define MM_MTRR_GUEST_H

#include <tessel/types.h>

/* Is msr one of the MTRR MSRs (0xFE, 0x200-0x2FF ranges, 0x250-0x26F fixed, 0x2FF)? */
bool mtrr_guest_is_mtrr(u32 msr);
/* RDMSR/WRMSR of an MTRR MSR by the guest. 0, or -EINVAL: the access raises #GP(0). */
int mtrr_guest_read(u32 msr, u64 *val);
int mtrr_guest_write(u32 msr, u64 val);

#endif
