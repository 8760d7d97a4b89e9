/* Feature flags, decided once at boot (the SPP module sets the SPP bits it provides). */
#include "features.h"

static u32 features;

u32 tessel_features(void) { return features; }
void tessel_features_set(u32 flags) { features = flags; }
