/*
 * hw_shared.h: the part of the hardware seam that is the same on the target
 * (include/arch/hw.h) and in the host unit tests' fake (tests/fake/hw.h): the INVEPT/INVVPID
 * types (SDM Vol. 3C 30.3) and the atomics, which are GCC builtins on both (they compile to
 * LOCK-prefixed instructions; no asm needed). Included by both hw.h, never directly.
 */
#ifndef TESSEL_ARCH_HW_SHARED_H
#define TESSEL_ARCH_HW_SHARED_H

#define INVEPT_SINGLE_CONTEXT 1
#define INVEPT_ALL_CONTEXT    2
#define INVVPID_SINGLE_CONTEXT 1
#define INVVPID_ALL_CONTEXT    2

#define atomic_load(p)        __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define atomic_store(p, v)    __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define atomic_add(p, v)      __atomic_add_fetch((p), (v), __ATOMIC_SEQ_CST)
#define atomic_inc(p)         __atomic_add_fetch((p), 1, __ATOMIC_RELAXED)
#define atomic_cmpxchg(p, o, n) __atomic_compare_exchange_n((p), (o), (n), false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)

#endif
