/*
 * Hypervisor-invariant failures. A guest's mistake never reaches here (it gets a status or
 * a fault); a broken invariant panics with CPU, exit reason, guest RIP and registers, and
 * stops this CPU. BUG_ON is always on.
 */
#ifndef HV_PANIC_H
#define HV_PANIC_H

#include <tessel/types.h>

__noreturn void panic(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Stop the calling CPU for good (interrupts off, halted). */
__noreturn void cpu_stop(void);

#define BUG_ON(cond) \
	do { if (unlikely(cond)) panic("BUG_ON(%s) at %s:%d", #cond, __FILE__, __LINE__); } while (0)

#endif
