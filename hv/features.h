/* The feature flags Tessel reports (CPUID 0x40000001 EBX and HC_QUERY RCX). */
#ifndef HV_FEATURES_H
#define HV_FEATURES_H
#include <tessel/types.h>
u32 tessel_features(void);
void tessel_features_set(u32 flags);
/* Can a page-size change make an instruction fetch raise a machine check (features.c)? */
bool vmx_pschange_mc_affected(void);
#endif
