/* A ticket-free test-and-test-and-set spinlock for the core (exit handlers run with IF=0). */
#ifndef TESSEL_SPINLOCK_H
#define TESSEL_SPINLOCK_H

#include <hw.h>

typedef struct { volatile u32 locked; } spinlock_t;
#define SPINLOCK_INIT { 0 }

static inline void spin_lock(spinlock_t *l)
{
	for (;;) {
		if (!__atomic_exchange_n(&l->locked, 1, __ATOMIC_ACQUIRE))
			return;
		while (__atomic_load_n(&l->locked, __ATOMIC_RELAXED))
			cpu_relax();
	}
}

static inline void spin_unlock(spinlock_t *l) { __atomic_store_n(&l->locked, 0, __ATOMIC_RELEASE); }

#endif
