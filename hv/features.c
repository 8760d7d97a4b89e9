/* Feature flags, decided once at boot (the SPP module sets the SPP bits it provides). */
#include "abi.h"
#include "features.h"

static u32 features;

/* Pinning (ABI 1.2) needs no SPP and no IOMMU: always offered. */
u32 tessel_features(void) { return features | TESSEL_F_PIN; }
void tessel_features_set(u32 flags) { features = flags; }
