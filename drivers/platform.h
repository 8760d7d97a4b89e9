/* Platform reset. */
#ifndef DRIVERS_PLATFORM_H
#define DRIVERS_PLATFORM_H
#include <tessel/types.h>
__noreturn void platform_reset(void);
#endif
