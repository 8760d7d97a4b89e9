// SPDX-License-Identifier: GPL-2.0
/*
 * tessel-conform: the instruction scenarios (REP STOS/MOVS, locked read-modify-write, SSE,
 * PUSH, FXSAVE64) with their asm wrappers, and the ring overflow.
 */
#include "conform.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define OVERFLOW_EXTRA 5 /* denied writes beyond the ring's capacity: each one is dropped */
#define FXSAVE_BYTES 512
#define XMM_BYTES 16

/* ---- the events of one instruction ---- */

/* e names the instruction at rip. */
static bool rip_is(const struct tessel_event_entry *e, uint64_t rip)
{
	if (e->rip != rip)
		diag("event rip 0x%llx, expected 0x%llx", (unsigned long long)e->rip,
		     (unsigned long long)rip);
	return e->rip == rip;
}

/* g_ev is exactly the one event `kind` for tp + off, from the instruction at rip. */
static bool ev_only_from(unsigned kind, const struct test_page *tp, unsigned off, unsigned bytes,
			 uint64_t rip)
{
	return ev_only(kind, tp, off, bytes) && rip_is(&g_ev.e[0], rip);
}

/*
 * g_ev holds at least one event, the first one `kind` for tp + off, all of them of that kind
 * and from the instruction at rip. For a REP string instruction: the hypervisor reports its
 * protected bytes per exit (ABI.md section 7), so neither the number of events nor their
 * sizes are fixed; the first event's size is therefore not checked.
 */
static bool ev_first_is(unsigned kind, const struct test_page *tp, unsigned off, uint64_t rip)
{
	bool ok;

	if (g_ev.n == 0) {
		diag("no event");
		return false;
	}
	diag("%u events, the first for %u bytes", g_ev.n, g_ev.e[0].bytes);
	ok = ev_is(&g_ev.e[0], kind, tp, off, g_ev.e[0].bytes);
	for (unsigned i = 0; i < g_ev.n && i < EVLOG_MAX; i++)
		if (g_ev.e[i].kind != kind || g_ev.e[i].rip != rip) {
			diag("event %u: expected kind %u rip 0x%llx", i, kind, (unsigned long long)rip);
			ev_print(&g_ev.e[i]);
			ok = false;
		}
	return ok;
}

/*
 * After an instruction under test: a VM exit before anything else writes (see hv_nop()), then
 * the instruction's events into g_ev.
 */
static void settle(void)
{
	hv_nop();
	ev_collect(&g_ev);
}

/* ---- instructions under test (each returns its own RIP, as store() does) ---- */

/* REP STOSB of n bytes of al at dst; *rdi and *rcx receive the registers afterwards. */
static uint64_t rep_stosb(void *dst, uint8_t al, uint64_t n, uint64_t *rdi, uint64_t *rcx)
{
	uint64_t rip, di = (uintptr_t)dst, cx = n;

	asm volatile("lea 1f(%%rip), %[rip]\n1:\trep stosb"
		     : [rip] "=&r"(rip), "+D"(di), "+c"(cx)
		     : "a"(al)
		     : "memory");
	*rdi = di;
	*rcx = cx;
	return rip;
}

/* REP MOVSB of n bytes from src to dst; *rsi, *rdi and *rcx receive the registers afterwards. */
static uint64_t rep_movsb(void *dst, const void *src, uint64_t n, uint64_t *rsi, uint64_t *rdi,
			  uint64_t *rcx)
{
	uint64_t rip, si = (uintptr_t)src, di = (uintptr_t)dst, cx = n;

	asm volatile("lea 1f(%%rip), %[rip]\n1:\trep movsb"
		     : [rip] "=&r"(rip), "+S"(si), "+D"(di), "+c"(cx)
		     : : "memory");
	*rsi = si;
	*rdi = di;
	*rcx = cx;
	return rip;
}

/*
 * PUSH of v with RSP at top; *rsp receives RSP right after the PUSH. RSP leaves this
 * process's stack for four instructions and no system call: an interrupt arriving meanwhile
 * is delivered on a kernel stack (CPL 3 -> 0 switches stacks), and signals are only delivered
 * when returning to user space, after the PUSH has completed.
 */
static uint64_t push_at(void *top, uint64_t v, uint64_t *rsp)
{
	uint64_t rip, saved, after;

	asm volatile("mov %%rsp, %[saved]\n\t"
		     "mov %[top], %%rsp\n\t"
		     "lea 1f(%%rip), %[rip]\n"
		     "1:\tpushq %[v]\n\t"
		     "mov %%rsp, %[after]\n\t"
		     "mov %[saved], %%rsp"
		     : [rip] "=&r"(rip), [saved] "=&r"(saved), [after] "=&r"(after)
		     : [top] "r"(top), [v] "r"(v)
		     : "memory");
	*rsp = after;
	return rip;
}

/* Loads XMM0 from src, stores it with MOVDQU at dst, and stores XMM0 as it then is at back. */
static uint64_t movdqu_store(void *dst, const uint8_t *src, uint8_t *back)
{
	uint64_t rip;

	asm volatile("movdqu (%[s]), %%xmm0\n\t"
		     "lea 1f(%%rip), %[rip]\n"
		     "1:\tmovdqu %%xmm0, (%[m])\n\t"
		     "movdqu %%xmm0, (%[b])"
		     : [rip] "=&r"(rip)
		     : [s] "r"(src), [m] "r"(dst), [b] "r"(back)
		     : "memory", "xmm0");
	return rip;
}

/* LOCK XADD of *reg with the 8 bytes at m; *zf and *cf receive ZF and CF afterwards. */
static uint64_t lock_xadd(void *m, uint64_t *reg, bool *zf, bool *cf)
{
	uint64_t rip;

	asm volatile("lea 1f(%%rip), %[rip]\n1:\tlock xaddq %[reg], (%[m])"
		     : [rip] "=&r"(rip), [reg] "+r"(*reg), "=@ccz"(*zf), "=@ccc"(*cf)
		     : [m] "r"(m)
		     : "memory");
	return rip;
}

/* XCHG of *reg with the 8 bytes at m (locked without a prefix). */
static uint64_t xchg_mem(void *m, uint64_t *reg)
{
	uint64_t rip;

	asm volatile("lea 1f(%%rip), %[rip]\n1:\txchgq %[reg], (%[m])"
		     : [rip] "=&r"(rip), [reg] "+r"(*reg)
		     : [m] "r"(m)
		     : "memory");
	return rip;
}

/* LOCK CMPXCHG of the 8 bytes at m with *rax, storing src if equal; *zf receives ZF. */
static uint64_t lock_cmpxchg(void *m, uint64_t *rax, uint64_t src, bool *zf)
{
	uint64_t rip;

	asm volatile("lea 1f(%%rip), %[rip]\n1:\tlock cmpxchgq %[src], (%[m])"
		     : [rip] "=&r"(rip), "+a"(*rax), "=@ccz"(*zf)
		     : [src] "r"(src), [m] "r"(m)
		     : "memory");
	return rip;
}

/* FXSAVE64 into the 512-byte, 16-byte-aligned area. */
static uint64_t fxsave64_at(void *area)
{
	uint64_t rip;

	asm volatile("lea 1f(%%rip), %[rip]\n1:\tfxsave64 (%[a])"
		     : [rip] "=&r"(rip)
		     : [a] "r"(area)
		     : "memory");
	return rip;
}

/* ---- scenarios ---- */

/*
 * REP STOSB over three sub-pages: protected, writable, protected. Its first byte is protected,
 * so both modes exit there and the hypervisor emulates the whole instruction (up to 4 KiB per
 * exit, ABI.md section 7): the writable sub-page is filled, the protected ones are not, and
 * the guest continues after the instruction with RCX 0. Starting in the writable sub-page
 * instead would let Bochs 2.7's hardware mode run on into the second protected sub-page
 * without an exit (docs/SPP.md section 10.1).
 */
void test_rep_stos(void)
{
	const unsigned sp = 4, off = sp * SUBPAGE, len = 3 * SUBPAGE;
	const uint32_t map = ~(1u << sp | 1u << (sp + 2));
	struct test_page *tp = fresh_page();
	/*
	 * The pattern's bytes i * 7 + seed over 128 consecutive i are 128 different values, and
	 * none of them is another one + 128: so every byte of the writable sub-page changes.
	 */
	const uint8_t al = tp->expect[off + SUBPAGE] ^ 0x80;
	uint64_t rdi, rcx, rip;
	bool ok;

	ev_reset();
	check(is_err(protect(tp, 0, map), 0), "rep stos: protect two sub-pages around a writable one");
	rip = rep_stosb(tp->va + off, al, len, &rdi, &rcx);
	settle();
	memset(tp->expect + off + SUBPAGE, al, SUBPAGE);
	check(subpages_match(tp, ~map), "rep stos: protected bytes kept");
	check(page_matches(tp), "rep stos: the writable sub-page holds AL, no other byte changed");
	ok = rcx == 0 && rdi == (uintptr_t)tp->va + off + len;
	if (!ok)
		diag("RCX %llu RDI +%lld, expected 0 and +%u", (unsigned long long)rcx,
		     (long long)(rdi - (uintptr_t)(tp->va + off)), len);
	check(ok, "rep stos: RCX 0, RDI advanced past the 384 bytes");
	check(ev_first_is(TESSEL_EV_DENIED, tp, off, rip),
	      "rep stos: DENIED events, the first at the first protected byte");
	check(is_err(unprotect(tp), 0), "rep stos: unprotect");
}

/*
 * REP MOVSB from an unprotected page into a protected sub-page followed by a writable one
 * (first byte protected, as in test_rep_stos()).
 */
void test_rep_movs(void)
{
	const unsigned sp = 10, off = sp * SUBPAGE, len = 2 * SUBPAGE;
	struct test_page *tp = fresh_page(), *src = fresh_page();
	const uint8_t *from = src->va + off;
	uint64_t rsi, rdi, rcx, rip;
	bool ok;

	ev_reset();
	check(is_err(protect(tp, 0, MAP_ONLY(sp)), 0), "rep movs: protect one sub-page");
	rip = rep_movsb(tp->va + off, from, len, &rsi, &rdi, &rcx);
	settle();
	memcpy(tp->expect + off + SUBPAGE, from + SUBPAGE, SUBPAGE);
	check(subpages_match(tp, 1u << sp), "rep movs: protected bytes kept");
	check(page_matches(tp) && page_matches(src),
	      "rep movs: the writable sub-page holds the source bytes, no other byte changed");
	ok = rcx == 0 && rsi == (uintptr_t)from + len && rdi == (uintptr_t)tp->va + off + len;
	if (!ok)
		diag("RCX %llu RSI +%lld RDI +%lld, expected 0, +%u, +%u", (unsigned long long)rcx,
		     (long long)(rsi - (uintptr_t)from), (long long)(rdi - (uintptr_t)(tp->va + off)),
		     len, len);
	check(ok, "rep movs: RCX 0, RSI and RDI advanced by 256");
	check(ev_first_is(TESSEL_EV_DENIED, tp, off, rip),
	      "rep movs: DENIED events, the first at the first protected byte");
	check(is_err(unprotect(tp), 0), "rep movs: unprotect");
}

/* The 8 bytes at tp + off as the page must hold them. */
static uint64_t expected_u64(const struct test_page *tp, unsigned off)
{
	uint64_t v;

	memcpy(&v, tp->expect + off, sizeof(v));
	return v;
}

/* LOCK XADD on protected bytes: the register gets the old value, the flags are the sum's. */
static bool xadd_denied(struct test_page *tp, unsigned off)
{
	const uint64_t old = expected_u64(tp, off);
	uint64_t reg = -old, rip; /* old + reg wraps to 0: ZF = 1, and CF = 1 (old is not 0) */
	bool zf, cf;

	ev_reset();
	rip = lock_xadd(tp->va + off, &reg, &zf, &cf);
	settle();
	if (reg != old || !zf || !cf)
		diag("XADD: register 0x%llx ZF %d CF %d, expected 0x%llx 1 1",
		     (unsigned long long)reg, zf, cf, (unsigned long long)old);
	return page_matches(tp) && reg == old && zf && cf &&
	       ev_only_from(TESSEL_EV_DENIED, tp, off, 8, rip);
}

/* XCHG with protected bytes (locked implicitly): the register gets the old value. */
static bool xchg_denied(struct test_page *tp, unsigned off)
{
	const uint64_t old = expected_u64(tp, off);
	uint64_t reg = new_value(tp, off, 8), rip;

	ev_reset();
	rip = xchg_mem(tp->va + off, &reg);
	settle();
	if (reg != old)
		diag("XCHG: register 0x%llx, expected 0x%llx", (unsigned long long)reg,
		     (unsigned long long)old);
	return page_matches(tp) && reg == old && ev_only_from(TESSEL_EV_DENIED, tp, off, 8, rip);
}

/*
 * LOCK CMPXCHG on protected bytes with RAX equal to them: ZF = 1 and RAX unchanged, as
 * natively; only the store of the new value is denied. (A failed CMPXCHG writes its
 * destination back, ABI.md section 7; only the matching case is tested.)
 */
static bool cmpxchg_denied(struct test_page *tp, unsigned off)
{
	const uint64_t old = expected_u64(tp, off), src = new_value(tp, off, 8);
	uint64_t rax = old, rip;
	bool zf;

	ev_reset();
	rip = lock_cmpxchg(tp->va + off, &rax, src, &zf);
	settle();
	if (rax != old || !zf)
		diag("CMPXCHG: RAX 0x%llx ZF %d, expected 0x%llx 1", (unsigned long long)rax, zf,
		     (unsigned long long)old);
	return page_matches(tp) && rax == old && zf &&
	       ev_only_from(TESSEL_EV_DENIED, tp, off, 8, rip);
}

/* Locked read-modify-write instructions on protected bytes, each in a sub-page of its own. */
void test_locked_rmw(void)
{
	struct test_page *tp = fresh_page();

	ev_reset();
	check(is_err(protect(tp, 0, MAP_NONE), 0), "locked rmw: protect a page");
	check(xadd_denied(tp, 1 * SUBPAGE + 40),
	      "locked rmw: LOCK XADD: memory kept, the register gets the old value, one event");
	check(xchg_denied(tp, 2 * SUBPAGE + 48),
	      "locked rmw: XCHG: memory kept, the register gets the old value, one event");
	check(cmpxchg_denied(tp, 3 * SUBPAGE + 56),
	      "locked rmw: LOCK CMPXCHG matching RAX: memory kept, ZF set, one event");
	check(is_err(unprotect(tp), 0), "locked rmw: unprotect");
}

/* A 16-byte SSE store (MOVDQU from XMM0) into a protected sub-page. */
void test_sse_store(void)
{
	const unsigned sp = 14, off = sp * SUBPAGE + 48;
	struct test_page *tp = fresh_page();
	uint8_t src[XMM_BYTES], back[XMM_BYTES] = { 0 };
	uint64_t rip;

	for (unsigned i = 0; i < XMM_BYTES; i++)
		src[i] = (uint8_t)~tp->expect[off + i];
	ev_reset();
	check(is_err(protect(tp, 0, MAP_ONLY(sp)), 0), "sse: protect one sub-page");
	rip = movdqu_store(tp->va + off, src, back);
	settle();
	if (memcmp(back, src, XMM_BYTES))
		diag("XMM0 changed by the store");
	check(page_matches(tp) && !memcmp(back, src, XMM_BYTES),
	      "sse: MOVDQU to a protected sub-page changes no byte, XMM0 intact");
	check(ev_only_from(TESSEL_EV_DENIED, tp, off, XMM_BYTES, rip),
	      "sse: one DENIED event of 16 bytes");
	check(is_err(unprotect(tp), 0), "sse: unprotect");
}

/*
 * PUSH with RSP in a protected sub-page: RSP drops as natively, the value does not land. The
 * stack top is 16 bytes below the sub-page's end, so the 8 pushed bytes lie inside it.
 */
void test_push(void)
{
	const unsigned sp = 20, slack = 16, top = (sp + 1) * SUBPAGE - slack, off = top - 8;
	struct test_page *tp = fresh_page();
	uint64_t rsp, rip;
	bool ok;

	ev_reset();
	check(is_err(protect(tp, 0, MAP_ONLY(sp)), 0), "push: protect one sub-page");
	rip = push_at(tp->va + top, new_value(tp, off, 8), &rsp);
	settle();
	ok = rsp == (uintptr_t)tp->va + off;
	if (!ok)
		diag("RSP moved by %lld, expected -8", (long long)(rsp - (uintptr_t)(tp->va + top)));
	check(page_matches(tp) && ok, "push: RSP drops by 8, the stack memory is unchanged");
	check(ev_only_from(TESSEL_EV_DENIED, tp, off, 8, rip),
	      "push: one DENIED event of 8 bytes at the new RSP");
	check(is_err(unprotect(tp), 0), "push: unprotect");
}

/*
 * FXSAVE64, which the hypervisor does not emulate, into an area whose first sub-page is
 * protected and whose other three are writable. Hardware mode: Bochs writes the area from its
 * start, so the first store exits and the instruction is discarded. Software mode: the
 * instruction is single-stepped with the page open, changes protected bytes and is therefore
 * undone and discarded (spp/step.c). Both: nothing of the area lands, one DISCARDED event at
 * its start (tests/guest/spp_insn.c expects the same). An area starting in a writable
 * sub-page would differ: hardware mode would let the first stores through (ABI.md 4.2).
 */
void test_fxsave(void)
{
	static uint8_t native[FXSAVE_BYTES] __attribute__((aligned(16)));
	const unsigned sp = 24, off = sp * SUBPAGE;
	struct test_page *tp = fresh_page();
	uint64_t rip;
	bool changes;

	/* Natively FXSAVE64 changes the protected bytes: otherwise nothing would be discarded. */
	memcpy(native, tp->expect + off, FXSAVE_BYTES);
	fxsave64_at(native);
	changes = memcmp(native, tp->expect + off, SUBPAGE) != 0;
	if (!changes)
		diag("test self-check: FXSAVE64 does not change the protected sub-page's bytes");
	ev_reset();
	check(is_err(protect(tp, 0, MAP_ONLY(sp)), 0), "fxsave: protect the area's first sub-page");
	rip = fxsave64_at(tp->va + off);
	settle();
	check(changes && page_matches(tp),
	      "fxsave: the whole 512-byte area is unchanged, its writable sub-pages too");
	check(ev_only_from(TESSEL_EV_DISCARDED, tp, off, 0, rip),
	      "fxsave: one DISCARDED event at the area's start");
	check(is_err(unprotect(tp), 0), "fxsave: unprotect");
}

/* Where the overflow test's i-th write goes: one byte after the other, around the page. */
static unsigned overflow_off(unsigned i)
{
	return i % PAGE_BYTES;
}

/* The events read are the first `n` of the overflow test's writes, in order. */
static bool overflow_events_in_order(const struct test_page *tp,
				     const struct tessel_event_entry *ev, unsigned n)
{
	unsigned bad = 0;

	for (unsigned k = 0; k < n; k++) {
		const unsigned off = overflow_off(k);

		if (ev[k].kind != TESSEL_EV_DENIED || ev[k].gla != (uintptr_t)tp->va + off ||
		    ev[k].gpa != tp->gpa + off || ev[k].bytes != 1) {
			if (!bad)
				ev_is(&ev[k], TESSEL_EV_DENIED, tp, off, 1);
			bad++;
		}
	}
	if (bad)
		diag("%u of %u events are not the write of their position", bad, n);
	return bad == 0;
}

/*
 * A full ring: with nobody reading, ring_capacity + 5 denied writes. The ring keeps the first
 * ring_capacity events, the 5 others are dropped and counted (ABI.md section 5: nothing is
 * overwritten), and once the ring is read it reports again. Nothing else reads the ring
 * meanwhile: g_nbfd is only read through ev_collect()/ev_discard(), and no reader thread runs.
 */
void test_overflow(void)
{
	const unsigned cap = g_info.ring_capacity, writes = cap + OVERFLOW_EXTRA;
	struct test_page *tp = fresh_page();
	struct tessel_event_entry *ev = calloc((size_t)writes, sizeof(*ev));
	uint64_t ring_dropped, hv_dropped, denied;
	unsigned n = 0;

	if (!ev)
		diag("out of memory for %u events", writes);
	ev_reset();
	check(is_err(protect(tp, 0, MAP_NONE), 0), "overflow: protect a page");
	ring_dropped = stat_read("ring_dropped");
	hv_dropped = stat_read("events_dropped");
	denied = stat_read("spp_denied");
	for (unsigned i = 0; i < writes; i++) {
		const unsigned off = overflow_off(i);

		store(tp->va + off, new_value(tp, off, 1), 1);
		hv_nop(); /* as probe() does; without reading the events */
	}
	check(page_matches(tp) && grew_by("spp_denied", denied, writes),
	      "overflow: ring_capacity + 5 denied writes change no byte, spp_denied counts all");
	check(grew_by("ring_dropped", ring_dropped, OVERFLOW_EXTRA),
	      "overflow: stats/ring_dropped grew by exactly 5");
	check(grew_by("events_dropped", hv_dropped, OVERFLOW_EXTRA),
	      "overflow: stats/events_dropped grew by exactly 5");
	if (ev)
		n = ev_read_all(ev, writes);
	if (n != cap)
		diag("read %u events, ring_capacity %u", n, cap);
	check(ev && n == cap, "overflow: reading returns exactly ring_capacity events");
	check(ev && n >= cap && overflow_events_in_order(tp, ev, cap),
	      "overflow: the events are the first ring_capacity writes, in order");
	ev_reset();
	probe(tp, overflow_off(writes), 1, MAP_NONE);
	check(ev_only(TESSEL_EV_DENIED, tp, overflow_off(writes), 1) && page_matches(tp) &&
		      grew_by("ring_dropped", ring_dropped, OVERFLOW_EXTRA),
	      "overflow: once read, the ring reports the next denied write, nothing more dropped");
	check(is_err(unprotect(tp), 0), "overflow: unprotect");
	free(ev);
}
