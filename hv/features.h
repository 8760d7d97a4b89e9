/* The feature flags Tessel reports (CPUID 0x40000001 EBX and HC_QUERY RCX). */
#ifndef HV_FEATURES_H
#define HV_FEATURES_H
#include <tessel/types.h>
u32 tessel_features(void);
void tessel_features_set(u32 flags);
/* Can a page-size change make an instruction fetch raise a machine check (features.c)? */
bool vmx_pschange_mc_affected(void);
/* Does IA32_SPEC_CTRL exist (features.c)? If so, *host is the value root mode runs with. */
bool spec_ctrl_host_value(u64 *host);
#endif
