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

/* Port I/O of an exit's width (1, 2 or 4 bytes), over either layer's inb..outl. */
static inline void port_out(u16 port, unsigned size, u32 v)
{
	if (size == 1)
		outb(port, (u8)v);
	else if (size == 2)
		outw(port, (u16)v);
	else
		outl(port, v);
}

static inline u32 port_in(u16 port, unsigned size)
{
	return size == 1 ? inb(port) : size == 2 ? inw(port) : inl(port);
}

#endif
