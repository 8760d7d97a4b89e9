/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tessel_kapi.h: what tessel.ko exports to the kernel guard (tessel_guard.ko, guard.c).
 * tessel.ko owns the hypervisor's one event ring; the guard attaches a callback that sees every
 * entry once, before /dev/tessel readers consume it (who still get every entry).
 */
#ifndef TESSEL_KAPI_H
#define TESSEL_KAPI_H

#include "tessel_ioctl.h"

struct tessel_guard_ops {
	/*
	 * Called with interrupts off for each new ring entry, in order. from_irq: called from the
	 * ring's notification interrupt, which the hypervisor injects into the vCPU that caused
	 * the event, so current is (normally) the task that wrote. Must not sleep.
	 */
	void (*event)(const struct tessel_event_entry *e, bool from_irq);
};

/* 0, -ENODEV (no event ring), -EBUSY (a guard is attached). Entries before the call are not shown. */
int tessel_guard_attach(const struct tessel_guard_ops *ops);
void tessel_guard_detach(void);
u32 tessel_guard_features(void);

#endif
