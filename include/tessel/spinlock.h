/* A ticket-free test-and-test-and-set spinlock for the core (exit handlers run with IF=0). */
#ifndef TESSEL_SPINLOCK_H
#define TESSEL_SPINLOCK_H

#include <hw.h>

typedef struct { volatile u32 locked; } spinlock_t;
#define SPINLOCK_INIT { 0 }

/*
 * Each CPU counts the locks it holds (hv/percpu.c, once every CPU's per-CPU area is reachable
 * through GS). A stop-the-world pause NMI (spp/step.c) that lands while the count is not 0 is
 * deferred to the unlock that brings it to 0: a paused CPU never holds a lock the stepping
 * CPU needs (the EPT lock, the event ring's, the log's). The count is raised before each try
 * and lowered again when the try fails, so a CPU spinning for a lock that the stepping CPU
 * holds counts none and pauses at once.
 */
void lock_depth_add(int d);

static inline void spin_lock(spinlock_t *l)
{
	for (;;) {
		lock_depth_add(1);
		if (!__atomic_exchange_n(&l->locked, 1, __ATOMIC_ACQUIRE))
			return;
		lock_depth_add(-1);
		while (__atomic_load_n(&l->locked, __ATOMIC_RELAXED))
			cpu_relax();
	}
}

static inline void spin_unlock(spinlock_t *l)
{
	__atomic_store_n(&l->locked, 0, __ATOMIC_RELEASE);
	lock_depth_add(-1);
}

#endif
