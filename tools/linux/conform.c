// SPDX-License-Identifier: GPL-2.0
/*
 * tessel-conform: conformance test of Tessel's sub-page write protection (SPP) ABI, run as
 * root in a Linux guest through the guest driver's /dev/tessel (tools/linux/tessel_ioctl.h).
 *
 *   tessel-conform          TAP on stdout; exit status 0 iff every point passed
 *   tessel-conform bench    "bench: <name> <instructions>" lines (medians of RDTSC deltas)
 *   tessel-conform demo     protects half a page of its own memory, writes both halves and
 *                           shows what landed and what the hypervisor reported (make run-linux)
 *   tessel-conform tsc      prints RDTSC (in Bochs: instructions since reset; /init uses it)
 *
 * Built static for the busybox initramfs: gcc -static -O2 -std=gnu11 -I tools/linux -I tools
 * tools/linux/conform.c -o tessel-conform -lpthread.
 *
 * Every check looks at something the guest can see: ioctl statuses and errno, memory
 * contents, the events read() returns and the driver's sysfs counters. The program runs once
 * with hardware SPP and once in software mode and the ok/not ok lines of both runs must be
 * identical, so descriptions are fixed text; addresses, modes and values go to "# " lines.
 *
 * Bochs 2.7 caches the write permission SPP grants for a whole page (SPP-FACTS.md 10.1):
 * after an allowed write into a page, a write to a protected sub-page of that page can land
 * without a VM exit until the next exit. probe() therefore follows every store with a NOP
 * hypercall. Writes stay inside one 128-byte sub-page, except those whose first byte is
 * protected (the straddle test, REP STOS/MOVS, FXSAVE64): both modes then exit on that first
 * byte and the hypervisor handles the whole instruction, checking every byte. A write that
 * started in a writable sub-page and ran into a protected one would differ between the modes
 * on Bochs 2.7 (SPP-FACTS.md 10.1 and 10.4), so no test makes one.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tessel.h"
#include "tessel_ioctl.h"

#define PLAN 124 /* TAP points: every run reports exactly these, in the same order */

#define PAGE_BYTES 4096u
#define SUBPAGE TESSEL_SPP_SUBPAGE_SIZE
#define SUBPAGES (PAGE_BYTES / SUBPAGE)
#define MAP_NONE 0u                     /* every sub-page write-protected */
#define MAP_ALL TESSEL_SPP_ALL_WRITABLE /* unprotected */
#define MAP_MIXED 0xa5a5a5a5u           /* runs of protected and writable sub-pages */
#define MAP_LOW_HALF 0x0000ffffu        /* sub-pages 0-15 writable, 16-31 protected */
#define MAP_WITNESS 0x0f0f0f0fu         /* the error tests check that it survives them */
#define MAP_ONLY(j) (~(1u << (j)))      /* only sub-page j protected */

#define SYSFS_DIR "/sys/class/misc/tessel/"
#define PAGEMAP_PFN_MASK ((1ull << 55) - 1)
#define PAGEMAP_PRESENT (1ull << 63)
#define APIC_MMIO_GFN 0xfee00ull          /* the local APIC: MMIO, not RAM */
#define BEYOND_RAM_GFN ((1ull << 36) - 1) /* far above the guest's RAM */
#define GFN_WINDOW_ALIGN 512u             /* 2 MiB */
#define RESERVED_SET_FLAG (1u << 1)
#define NOBODY 65534
#define UNKNOWN_IOCTL _IO(TESSEL_IOC_MAGIC, 0x7f)
#define SHORT_READ 16 /* bytes: less than one event */
#define STAT_ERR UINT64_MAX
#define ARENA_PAGES 32
#define EVLOG_MAX 64
#define READER_DELAY_NS 20000000l /* 20 ms */
#define READER_TIMEOUT_S 5
#define SLEEP_POLLS 1000
#define SLEEP_POLL_NS 1000000l /* 1 ms */
#define BENCH_ITERATIONS 101
#define OVERFLOW_EXTRA 5 /* denied writes beyond the ring's capacity: each one is dropped */
#define FXSAVE_BYTES 512
#define XMM_BYTES 16

struct test_page {
	uint8_t *va;
	uint64_t gpa;
	uint8_t expect[PAGE_BYTES]; /* what the page must hold */
};

struct evlog {
	unsigned n; /* events read, including those beyond e[] */
	struct tessel_event_entry e[EVLOG_MAX];
};

static int g_fd = -1;   /* blocking; every ioctl goes through it */
static int g_nbfd = -1; /* O_NONBLOCK; collects events */
static int g_pagemap = -1;
static struct tessel_info g_info;
static struct tessel_subpage *g_req; /* room for max_pages + 1 maps */
static struct test_page g_pages[ARENA_PAGES];
static unsigned g_npages;
static struct evlog g_ev; /* the events of the current step */
static unsigned g_tests, g_passed;
static bool g_bench;

/* ---- TAP ---- */

static void __attribute__((format(printf, 1, 2))) diag(const char *fmt, ...)
{
	va_list ap;

	fputs("# ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
}

static bool check(bool ok, const char *desc)
{
	g_tests++;
	g_passed += ok;
	printf("%s %u - %s\n", ok ? "ok" : "not ok", g_tests, desc);
	return ok;
}

/* A status (0 or an errno value) is the expected one; says what it was if not. */
static bool is_err(int got, int want)
{
	if (got != want)
		diag("got %s (%d), expected %s (%d)", got ? strerror(got) : "success", got,
		     want ? strerror(want) : "success", want);
	return got == want;
}

static void cleanup_protection(void);

static void __attribute__((noreturn)) bail(const char *why)
{
	if (g_bench) {
		printf("bench: error %s\n", why);
	} else {
		printf("Bail out! %s\n", why);
		printf("# conform: %u passed, %u failed\n", g_passed, PLAN - g_passed);
	}
	cleanup_protection();
	exit(1);
}

/* ---- memory ---- */

static uint64_t gpa_of(const void *va)
{
	uint64_t entry = 0;
	off_t off = (off_t)((uintptr_t)va / PAGE_BYTES * sizeof(entry));

	if (pread(g_pagemap, &entry, sizeof(entry), off) != sizeof(entry) ||
	    !(entry & PAGEMAP_PRESENT) || !(entry & PAGEMAP_PFN_MASK))
		bail("no physical address in /proc/self/pagemap");
	return (entry & PAGEMAP_PFN_MASK) * PAGE_BYTES + (uintptr_t)va % PAGE_BYTES;
}

static uint64_t gfn_of(const struct test_page *tp)
{
	return tp->gpa / PAGE_BYTES;
}

static void fill_pattern(struct test_page *tp, unsigned seed)
{
	for (unsigned i = 0; i < PAGE_BYTES; i++)
		tp->expect[i] = (uint8_t)(i * 7 + seed);
	memcpy(tp->va, tp->expect, PAGE_BYTES);
}

/*
 * A page of its own: resident, locked, never huge, filled with a pattern of its own, and not
 * inherited by fork (a copy-on-write fault would move it to another physical page).
 */
static struct test_page *fresh_page(void)
{
	const size_t len = ARENA_PAGES * PAGE_BYTES;
	static uint8_t *arena;
	struct test_page *tp;

	if (!arena) {
		arena = mmap(NULL, len, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
		if (arena == MAP_FAILED || madvise(arena, len, MADV_DONTFORK) ||
		    madvise(arena, len, MADV_NOHUGEPAGE) || mlock(arena, len))
			bail("cannot map and lock the test pages");
	}
	if (g_npages == ARENA_PAGES)
		bail("out of test pages");
	tp = &g_pages[g_npages];
	tp->va = arena + (size_t)g_npages * PAGE_BYTES;
	fill_pattern(tp, g_npages * 31 + 1);
	tp->gpa = gpa_of(tp->va);
	g_npages++;
	return tp;
}

/* Bytes [off, off + len) of the page hold what they must. */
static bool bytes_match(const struct test_page *tp, unsigned off, unsigned len)
{
	for (unsigned i = off; i < off + len; i++)
		if (tp->va[i] != tp->expect[i]) {
			diag("page byte 0x%x: 0x%02x, expected 0x%02x", i, tp->va[i],
			     tp->expect[i]);
			return false;
		}
	return true;
}

static bool page_matches(const struct test_page *tp)
{
	return bytes_match(tp, 0, PAGE_BYTES);
}

/* Every sub-page j with bit j of `which` set holds what it must. */
static bool subpages_match(const struct test_page *tp, uint32_t which)
{
	bool ok = true;

	for (unsigned j = 0; j < SUBPAGES; j++)
		if (which & (1u << j))
			ok &= bytes_match(tp, j * SUBPAGE, SUBPAGE);
	return ok;
}

/* A value for `width` bytes at tp + off, every byte of it different from the one there. */
static uint64_t new_value(const struct test_page *tp, unsigned off, unsigned width)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < width; i++)
		v |= (uint64_t)(uint8_t)~tp->expect[off + i] << (8 * i);
	return v;
}

/* One MOV of `width` bytes; returns the address of that instruction. */
static uint64_t store(void *p, uint64_t v, unsigned width)
{
	uint64_t rip;

	switch (width) {
	case 1:
		asm volatile("lea 1f(%%rip), %0\n1:\tmovb %b2, (%1)"
			     : "=&r"(rip) : "r"(p), "r"(v) : "memory");
		break;
	case 2:
		asm volatile("lea 1f(%%rip), %0\n1:\tmovw %w2, (%1)"
			     : "=&r"(rip) : "r"(p), "r"(v) : "memory");
		break;
	case 4:
		asm volatile("lea 1f(%%rip), %0\n1:\tmovl %k2, (%1)"
			     : "=&r"(rip) : "r"(p), "r"(v) : "memory");
		break;
	default:
		asm volatile("lea 1f(%%rip), %0\n1:\tmovq %q2, (%1)"
			     : "=&r"(rip) : "r"(p), "r"(v) : "memory");
		break;
	}
	return rip;
}

/* ---- the driver ---- */

static int ioc(int fd, unsigned long req, void *arg)
{
	return ioctl(fd, req, arg) ? errno : 0;
}

/*
 * A VM exit. Bochs 2.7 keeps the write permission an SPP-allowed write obtained, for the
 * whole page, until the next VM exit (SPP-FACTS.md 10.1). Without one between an allowed
 * write and a write to a protected sub-page of the same page, the second write could land
 * unseen by the hypervisor: a test could then pass or fail because of Bochs, not Tessel.
 */
static void hv_nop(void)
{
	if (ioctl(g_fd, TESSEL_IOC_NOP))
		diag("NOP: %s", strerror(errno));
}

/* GET_SUBPAGES or SET_SUBPAGES of npages maps, through g_req. */
static int spp_call(unsigned long req, uint64_t gfn, uint32_t npages, uint32_t flags,
		    uint32_t *maps)
{
	int err;

	g_req->gfn_base = gfn;
	g_req->npages = npages;
	g_req->flags = flags;
	if (req == TESSEL_IOC_SET_SUBPAGES)
		memcpy(g_req->access_map, maps, (size_t)npages * sizeof(*maps));
	err = ioc(g_fd, req, g_req);
	if (!err && req == TESSEL_IOC_GET_SUBPAGES)
		memcpy(maps, g_req->access_map, (size_t)npages * sizeof(*maps));
	return err;
}

static int spp_set1(uint64_t gfn, uint32_t map, uint32_t flags)
{
	return spp_call(TESSEL_IOC_SET_SUBPAGES, gfn, 1, flags, &map);
}

/* GET says the page's map is `want`. */
static bool map_is(uint64_t gfn, uint32_t want)
{
	uint32_t map = 0;
	int err = spp_call(TESSEL_IOC_GET_SUBPAGES, gfn, 1, 0, &map);

	if (err)
		diag("GET gfn 0x%llx: %s", (unsigned long long)gfn, strerror(err));
	else if (map != want)
		diag("GET gfn 0x%llx: map 0x%08x, expected 0x%08x", (unsigned long long)gfn,
		     map, want);
	return !err && map == want;
}

/* PROTECT_VA or UNPROTECT_VA of the one page at va. */
static int va_call(int fd, unsigned long req, void *va, uint32_t flags, uint32_t map)
{
	union {
		struct tessel_va h;
		uint8_t room[sizeof(struct tessel_va) + sizeof(uint32_t)];
	} r;

	memset(&r, 0, sizeof(r));
	r.h.addr = (uintptr_t)va;
	r.h.npages = 1;
	r.h.flags = flags;
	memcpy(r.room + sizeof(struct tessel_va), &map, sizeof(map));
	return ioc(fd, req, &r);
}

/*
 * PROTECT_VA through fd. A long-term pin may first migrate the page (out of ZONE_MOVABLE or
 * CMA), even when the call then fails, so the page's address is looked up again.
 */
static int protect_with(int fd, struct test_page *tp, uint32_t flags, uint32_t map)
{
	int err = va_call(fd, TESSEL_IOC_PROTECT_VA, tp->va, flags, map);
	uint64_t old = tp->gpa;

	tp->gpa = gpa_of(tp->va);
	if (tp->gpa != old)
		diag("the pin moved the page from 0x%llx to 0x%llx", (unsigned long long)old,
		     (unsigned long long)tp->gpa);
	return err;
}

static int protect(struct test_page *tp, uint32_t flags, uint32_t map)
{
	return protect_with(g_fd, tp, flags, map);
}

static int unprotect(struct test_page *tp)
{
	return va_call(g_fd, TESSEL_IOC_UNPROTECT_VA, tp->va, 0, 0);
}

/* ---- sysfs ---- */

static bool sysfs_read(const char *name, char *buf, size_t len)
{
	char path[128];
	ssize_t n = -1;
	int fd;

	snprintf(path, sizeof(path), SYSFS_DIR "%s", name);
	fd = open(path, O_RDONLY);
	if (fd >= 0) {
		n = read(fd, buf, len - 1);
		close(fd);
	}
	if (n < 0) {
		diag("%s: %s", path, strerror(errno));
		return false;
	}
	buf[n] = 0;
	buf[strcspn(buf, "\n")] = 0;
	return true;
}

/* stats/<name>, or STAT_ERR. */
static uint64_t stat_read(const char *name)
{
	char path[64], buf[32], *end;
	unsigned long long v;

	snprintf(path, sizeof(path), "stats/%s", name);
	if (!sysfs_read(path, buf, sizeof(buf)))
		return STAT_ERR;
	v = strtoull(buf, &end, 10);
	return end == buf ? STAT_ERR : v;
}

/* Counter `name` read `before` and now reads `before` + min .. `before` + max. */
static bool grew(const char *name, uint64_t before, uint64_t min, uint64_t max)
{
	uint64_t now = stat_read(name);
	bool ok = before != STAT_ERR && now != STAT_ERR && now - before >= min &&
		  now - before <= max;

	if (!ok)
		diag("%s: %llu -> %llu, expected an increase of %llu to %llu", name,
		     (unsigned long long)before, (unsigned long long)now,
		     (unsigned long long)min, (unsigned long long)max);
	return ok;
}

static bool grew_by(const char *name, uint64_t before, uint64_t delta)
{
	return grew(name, before, delta, delta);
}

/* ---- events ---- */

/* Appends every pending event to log, without blocking. */
static void ev_collect(struct evlog *log)
{
	struct tessel_event_entry buf[16];
	ssize_t r;

	while ((r = read(g_nbfd, buf, sizeof(buf))) > 0)
		for (size_t i = 0; i < (size_t)r / sizeof(buf[0]); i++, log->n++)
			if (log->n < EVLOG_MAX)
				log->e[log->n] = buf[i];
	if (r < 0 && errno != EAGAIN)
		diag("read events: %s", strerror(errno));
}

/* Reads and drops every pending event; returns how many there were. */
static unsigned ev_discard(void)
{
	struct evlog stray = { 0 };

	ev_collect(&stray);
	return stray.n;
}

/* No event pending, an empty log. */
static void ev_reset(void)
{
	unsigned n = ev_discard();

	if (n)
		diag("discarded %u stray events", n);
	memset(&g_ev, 0, sizeof(g_ev));
}

static void ev_print(const struct tessel_event_entry *e)
{
	diag("event: kind %u gpa 0x%llx gla 0x%llx rip 0x%llx vcpu %u bytes %u", e->kind,
	     (unsigned long long)e->gpa, (unsigned long long)e->gla,
	     (unsigned long long)e->rip, e->vcpu, e->bytes);
}

/* g_ev holds exactly `want` events. */
static bool ev_count_is(unsigned want)
{
	if (g_ev.n != want) {
		diag("%u events, expected %u", g_ev.n, want);
		for (unsigned i = 0; i < g_ev.n && i < EVLOG_MAX; i++)
			ev_print(&g_ev.e[i]);
	}
	return g_ev.n == want;
}

/* e reports a write of kind `kind` whose first protected byte is tp + off. */
static bool ev_is(const struct tessel_event_entry *e, unsigned kind,
		  const struct test_page *tp, unsigned off, unsigned bytes)
{
	uint64_t gla = (uintptr_t)tp->va + off;
	bool ok = e->kind == kind && e->gpa == tp->gpa + off && e->gla == gla &&
		  e->bytes == bytes;

	if (!ok) {
		diag("expected kind %u gpa 0x%llx gla 0x%llx bytes %u", kind,
		     (unsigned long long)(tp->gpa + off), (unsigned long long)gla, bytes);
		ev_print(e);
	}
	return ok;
}

/* g_ev is exactly the one event `kind` for tp + off. */
static bool ev_only(unsigned kind, const struct test_page *tp, unsigned off, unsigned bytes)
{
	return ev_count_is(1) && ev_is(&g_ev.e[0], kind, tp, off, bytes);
}

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
 * Writes `width` bytes at tp + off, each different from the byte there, makes a VM exit
 * (hv_nop()) and collects the events into g_ev. `map` is the permission the test expects:
 * the bytes in sub-pages it makes writable must land. Returns the writing instruction's RIP.
 */
static uint64_t probe(struct test_page *tp, unsigned off, unsigned width, uint32_t map)
{
	uint64_t v = new_value(tp, off, width);
	uint64_t rip = store(tp->va + off, v, width);

	hv_nop();
	ev_collect(&g_ev);
	for (unsigned i = 0; i < width; i++)
		if (map & (1u << ((off + i) / SUBPAGE)))
			tp->expect[off + i] = (uint8_t)(v >> (8 * i));
	return rip;
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

/* ---- CPUs ---- */

static bool pin_cpu(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) || sched_getcpu() != cpu) {
		diag("cannot run on CPU %d: %s", cpu, strerror(errno));
		return false;
	}
	return true;
}

/* The APIC ID of processor `cpu` in /proc/cpuinfo, or -1. */
static int apic_id_of(int cpu)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[256];
	int cur = -1, id = -1, v;

	while (f && id < 0 && fgets(line, sizeof(line), f))
		if (sscanf(line, "processor : %d", &v) == 1)
			cur = v;
		else if (cur == cpu && sscanf(line, "apicid : %d", &v) == 1)
			id = v;
	if (f)
		fclose(f);
	return id;
}

/* ---- scenarios ---- */

static bool open_device(void)
{
	g_fd = open(TESSEL_DEVICE, O_RDWR | O_CLOEXEC);
	g_nbfd = open(TESSEL_DEVICE, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	g_pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (g_fd < 0 || g_nbfd < 0 || g_pagemap < 0) {
		diag("open %s: %s", g_pagemap < 0 ? "/proc/self/pagemap" : TESSEL_DEVICE,
		     strerror(errno));
		return false;
	}
	return true;
}

static void test_info(void)
{
	const uint32_t needed = TESSEL_F_LOCK | TESSEL_F_EVENTS | TESSEL_F_TRACK;
	uint32_t f, spp;
	char mode[32] = "";

	if (!check(is_err(ioc(g_fd, TESSEL_IOC_INFO, &g_info), 0), "INFO succeeds"))
		bail("no INFO from the driver");
	f = g_info.features;
	spp = f & (TESSEL_F_SPP_HW | TESSEL_F_SPP_SW);
	diag("version 0x%08x features 0x%x max_pages %u vector 0x%x ring_capacity %u",
	     g_info.version, f, g_info.max_pages, g_info.vector, g_info.ring_capacity);
	check(g_info.version == TESSEL_ABI_VERSION, "INFO: ABI version 1.0");
	check(spp == TESSEL_F_SPP_HW || spp == TESSEL_F_SPP_SW,
	      "INFO: exactly one of SPP_HW and SPP_SW");
	check((f & needed) == needed, "INFO: LOCK, EVENTS and TRACK available");
	check(g_info.max_pages >= TESSEL_MIN_MAX_PAGES, "INFO: at least 512 pages per call");
	check(g_info.vector != 0 && g_info.ring_capacity > 0, "INFO: event vector and ring");
	sysfs_read("mode", mode, sizeof(mode));
	diag("mode: %s", mode);
	check(!strcmp(mode, spp == TESSEL_F_SPP_HW ? "hardware" : "software"),
	      "sysfs mode agrees with the feature flags");

	g_req = calloc(1, sizeof(*g_req) + ((size_t)g_info.max_pages + 1) * sizeof(uint32_t));
	if (!g_req)
		bail("out of memory");
}

/* Where the selftest writes into sub-page j: 4-byte aligned, moving through the sub-page. */
static unsigned selftest_offset(unsigned j)
{
	return j * SUBPAGE + (j * 12) % (SUBPAGE - 4);
}

/* The KVM SPP selftest (a write into each protected sub-page), plus memory and counters. */
static void test_selftest(void)
{
	struct test_page *tp = fresh_page();
	struct pollfd pfd = { .fd = g_fd, .events = POLLIN };
	uint64_t rip[SUBPAGES], denied;
	bool ok;

	ev_reset();
	check(is_err(protect(tp, 0, MAP_NONE), 0) && map_is(gfn_of(tp), MAP_NONE),
	      "selftest: protect every sub-page of a page");
	denied = stat_read("spp_denied");
	for (unsigned j = 0; j < SUBPAGES; j++)
		rip[j] = probe(tp, selftest_offset(j), 4, MAP_NONE);
	check(grew_by("spp_denied", denied, SUBPAGES),
	      "selftest: spp_denied counts each denied write");
	check(page_matches(tp), "selftest: denied writes change no byte");
	ok = check(ev_count_is(SUBPAGES), "selftest: one event per denied write");
	for (unsigned j = 0; ok && j < SUBPAGES; j++) {
		ok = ev_is(&g_ev.e[j], TESSEL_EV_DENIED, tp, selftest_offset(j), 4);
		if (ok && g_ev.e[j].rip != rip[j]) {
			diag("event %u: rip 0x%llx, expected 0x%llx", j,
			     (unsigned long long)g_ev.e[j].rip, (unsigned long long)rip[j]);
			ok = false;
		}
	}
	check(ok, "selftest: events are DENIED, in order, with each write's gpa, gla, rip, size");

	check(is_err(unprotect(tp), 0) && map_is(gfn_of(tp), MAP_ALL),
	      "selftest: unprotect the page");
	ev_reset();
	denied = stat_read("spp_denied");
	for (unsigned j = 0; j < SUBPAGES; j++)
		probe(tp, selftest_offset(j), 4, MAP_ALL);
	check(page_matches(tp), "selftest: writes land after unprotect");
	check(ev_count_is(0) && poll(&pfd, 1, 0) == 0, "selftest: no events after unprotect");
	check(grew_by("spp_denied", denied, 0), "selftest: spp_denied unchanged after unprotect");
}

/* Runs of protected and writable sub-pages, an 8-byte write in the middle of each. */
static void test_mixed(void)
{
	const unsigned mid = SUBPAGE / 2 - 4;
	struct test_page *tp = fresh_page();
	unsigned k = 0;
	bool ok;

	ev_reset();
	check(is_err(protect(tp, 0, MAP_MIXED), 0), "mixed map: protect");
	for (unsigned j = 0; j < SUBPAGES; j++)
		probe(tp, j * SUBPAGE + mid, 8, MAP_MIXED);
	check(subpages_match(tp, ~MAP_MIXED), "mixed map: protected sub-pages unchanged");
	check(subpages_match(tp, MAP_MIXED), "mixed map: writable sub-pages hold the writes");
	ok = ev_count_is((unsigned)__builtin_popcount(~MAP_MIXED));
	for (unsigned j = 0; ok && j < SUBPAGES; j++)
		if (!(MAP_MIXED & (1u << j)))
			ok = ev_is(&g_ev.e[k++], TESSEL_EV_DENIED, tp, j * SUBPAGE + mid, 8);
	check(ok, "mixed map: one DENIED event per protected sub-page, none for writable ones");
	check(is_err(unprotect(tp), 0), "mixed map: unprotect");
}

/* 1-, 2-, 4- and 8-byte writes at the start, middle and end of a protected sub-page. */
static void test_widths(void)
{
	enum { WIDTHS = 4, PLACES = 3 };
	const unsigned sp = 5, width[WIDTHS] = { 1, 2, 4, 8 };
	struct test_page *tp = fresh_page();
	unsigned off[WIDTHS * PLACES];
	bool ok;

	ev_reset();
	check(is_err(protect(tp, 0, MAP_ONLY(sp)), 0), "widths: protect one sub-page");
	for (unsigned i = 0; i < WIDTHS * PLACES; i++) {
		const unsigned w = width[i / PLACES];
		const unsigned at[PLACES] = { 0, SUBPAGE / 2, SUBPAGE - w };

		off[i] = sp * SUBPAGE + at[i % PLACES];
		probe(tp, off[i], w, MAP_ONLY(sp));
	}
	check(page_matches(tp), "widths: memory unchanged");
	ok = check(ev_count_is(WIDTHS * PLACES), "widths: one event per write");
	for (unsigned i = 0; ok && i < WIDTHS * PLACES; i++)
		ok = ev_is(&g_ev.e[i], TESSEL_EV_DENIED, tp, off[i], width[i / PLACES]);
	check(ok, "widths: each event has the address and size of its write");
	check(is_err(unprotect(tp), 0), "widths: unprotect");
}

/* An 8-byte write whose first 4 bytes are protected and whose last 4 are writable. */
static void test_straddle(void)
{
	const unsigned sp = 9, off = (sp + 1) * SUBPAGE - 4;
	struct test_page *tp = fresh_page();

	ev_reset();
	check(is_err(protect(tp, 0, MAP_ONLY(sp)), 0), "straddle: protect one sub-page");
	probe(tp, off, 8, MAP_ONLY(sp));
	check(bytes_match(tp, off, 4), "straddle: protected bytes kept");
	check(bytes_match(tp, off + 4, 4), "straddle: writable bytes written");
	check(ev_only(TESSEL_EV_DENIED, tp, off, 4),
	      "straddle: one DENIED event for the 4 protected bytes");
	check(is_err(unprotect(tp), 0), "straddle: unprotect");
}

/* TRACK: writes to protected sub-pages land and are reported, every time. */
static void test_track(void)
{
	const unsigned off = 200;
	struct test_page *tp = fresh_page();
	uint64_t denied, tracked;

	ev_reset();
	check(is_err(protect(tp, TESSEL_SUBPAGE_TRACK, MAP_NONE), 0), "track: protect with TRACK");
	denied = stat_read("spp_denied");
	tracked = stat_read("spp_tracked");
	probe(tp, off, 4, MAP_ALL);
	check(page_matches(tp), "track: the write lands");
	check(ev_only(TESSEL_EV_TRACKED, tp, off, 4), "track: one TRACKED event");
	ev_reset();
	probe(tp, off, 4, MAP_ALL);
	check(page_matches(tp) && ev_only(TESSEL_EV_TRACKED, tp, off, 4),
	      "track: a second write lands and is reported again");
	check(grew_by("spp_denied", denied, 0) && grew_by("spp_tracked", tracked, 2),
	      "track: spp_tracked counts both writes, spp_denied none");
	check(is_err(unprotect(tp), 0), "track: unprotect");
}

/*
 * `want` pages from gfn rounded down to 2 MiB, moved (and shortened if need be) to lie in
 * the "System RAM" range of /proc/iomem that holds gfn. Returns the page count.
 */
static uint32_t ram_window(uint64_t gfn, uint32_t want, uint64_t *base)
{
	FILE *f = fopen("/proc/iomem", "r");
	unsigned long long s, e;
	uint64_t first = 0, last = 0;
	char line[256], name[64];

	*base = gfn & ~(uint64_t)(GFN_WINDOW_ALIGN - 1);
	while (f && !last && fgets(line, sizeof(line), f))
		if (line[0] != ' ' && sscanf(line, "%llx-%llx : %63[^\n]", &s, &e, name) == 3 &&
		    !strcmp(name, "System RAM") && s / PAGE_BYTES <= gfn && gfn <= e / PAGE_BYTES) {
			first = (s + PAGE_BYTES - 1) / PAGE_BYTES;
			last = (e + 1) / PAGE_BYTES - 1;
		}
	if (f)
		fclose(f);
	if (!last) {
		diag("gfn 0x%llx: not System RAM in /proc/iomem", (unsigned long long)gfn);
		return want;
	}
	if (last - first + 1 < want)
		want = (uint32_t)(last - first + 1);
	if (*base < first)
		*base = first;
	if (*base + want - 1 > last)
		*base = last + 1 - want;
	return want;
}

/* GET and SET by guest-physical address, on a page that is only mlocked. */
static void test_gpa(void)
{
	const unsigned low = 1000, high = 3000; /* in sub-pages 7 and 23 */
	struct test_page *tp = fresh_page();
	uint32_t n, bad = 0, *maps;
	uint64_t base;
	int err;

	ev_reset();
	check(is_err(spp_set1(gfn_of(tp), MAP_LOW_HALF, 0), 0) && map_is(gfn_of(tp), MAP_LOW_HALF),
	      "gpa: SET a map, GET returns it");
	probe(tp, high, 4, MAP_LOW_HALF);
	check(page_matches(tp) && ev_only(TESSEL_EV_DENIED, tp, high, 4),
	      "gpa: a write to the protected half is denied");
	ev_reset();
	probe(tp, low, 4, MAP_LOW_HALF);
	check(page_matches(tp) && ev_count_is(0), "gpa: a write to the writable half lands");
	check(is_err(spp_set1(gfn_of(tp), MAP_ALL, 0), 0) && map_is(gfn_of(tp), MAP_ALL),
	      "gpa: SET all-writable, GET returns it");
	probe(tp, high, 4, MAP_ALL);
	check(page_matches(tp) && ev_count_is(0), "gpa: writes land once unprotected");

	n = ram_window(gfn_of(tp), g_info.max_pages, &base);
	diag("GET of %u pages from gfn 0x%llx", n, (unsigned long long)base);
	maps = calloc(n, sizeof(*maps));
	err = maps ? spp_call(TESSEL_IOC_GET_SUBPAGES, base, n, 0, maps) : ENOMEM;
	check(is_err(err, 0), "gpa: GET of max_pages pages succeeds");
	for (uint32_t i = 0; !err && i < n; i++)
		if (maps[i] != MAP_ALL && !bad++)
			diag("gfn 0x%llx: map 0x%08x", (unsigned long long)(base + i), maps[i]);
	check(!err && bad == 0, "gpa: every page of the range is unprotected");
	free(maps);
}

static bool child_exited_0(pid_t pid)
{
	int status = -1;

	if (pid > 0)
		waitpid(pid, &status, 0);
	if (pid <= 0 || !WIFEXITED(status) || WEXITSTATUS(status))
		diag("child: pid %d status 0x%x", (int)pid, status);
	return pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* An unprivileged process cannot open the device. */
static bool unprivileged_open_fails(void)
{
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		if (setgroups(0, NULL) || setgid(NOBODY) || setuid(NOBODY))
			_exit(2);
		if (open(TESSEL_DEVICE, O_RDWR) >= 0)
			_exit(1);
		_exit(errno == EACCES || errno == EPERM ? 0 : 3);
	}
	return child_exited_0(pid);
}

/* Error paths: each one's errno, and after each the witness page's map unchanged. */
static void test_errors(void)
{
	struct test_page *w = fresh_page(), *plain = fresh_page();
	const uint64_t wgfn = gfn_of(w);
	const unsigned denied_off = 4 * SUBPAGE; /* protected in MAP_WITNESS */
	const size_t nmaps = (size_t)g_info.max_pages + 1;
	uint32_t *maps = calloc(nmaps, sizeof(*maps));
	struct tessel_event_entry ev;
	uint64_t pinned;
	void *ro;
	int err;

	if (!maps)
		bail("out of memory");
	/* maps[0] is the witness's: a SET that wrongly succeeds protects all of it. */
	for (size_t i = 1; i < nmaps; i++)
		maps[i] = MAP_ALL;
	ev_reset();
	check(is_err(protect(w, 0, MAP_WITNESS), 0) && map_is(wgfn, MAP_WITNESS),
	      "errors: protect a witness page");
	check(is_err(spp_call(TESSEL_IOC_SET_SUBPAGES, wgfn, 0, 0, maps), EINVAL) &&
		      map_is(wgfn, MAP_WITNESS),
	      "errors: SET of 0 pages is EINVAL");
	check(is_err(spp_call(TESSEL_IOC_SET_SUBPAGES, wgfn, (uint32_t)nmaps, 0, maps), E2BIG) &&
		      map_is(wgfn, MAP_WITNESS),
	      "errors: SET of max_pages + 1 pages is E2BIG");
	check(is_err(spp_set1(wgfn, MAP_NONE, RESERVED_SET_FLAG), EINVAL) &&
		      map_is(wgfn, MAP_WITNESS),
	      "errors: SET with a reserved flag is EINVAL");
	check(is_err(spp_call(TESSEL_IOC_GET_SUBPAGES, wgfn, 1, 1, maps), EINVAL) &&
		      map_is(wgfn, MAP_WITNESS),
	      "errors: GET with a flag is EINVAL");
	check(is_err(spp_set1(APIC_MMIO_GFN, MAP_NONE, 0), EINVAL) && map_is(wgfn, MAP_WITNESS),
	      "errors: SET on the local APIC page is EINVAL");
	check(is_err(spp_set1(BEYOND_RAM_GFN, MAP_NONE, 0), EINVAL) && map_is(wgfn, MAP_WITNESS),
	      "errors: SET beyond RAM is EINVAL");
	check(is_err(ioc(g_fd, TESSEL_IOC_SET_SUBPAGES, NULL), EFAULT) &&
		      is_err(ioc(g_fd, TESSEL_IOC_GET_SUBPAGES, NULL), EFAULT) &&
		      is_err(ioc(g_fd, TESSEL_IOC_PROTECT_VA, NULL), EFAULT) &&
		      is_err(ioc(g_fd, TESSEL_IOC_INFO, NULL), EFAULT) && map_is(wgfn, MAP_WITNESS),
	      "errors: a NULL argument is EFAULT");

	pinned = stat_read("pinned_pages");
	err = va_call(g_fd, TESSEL_IOC_PROTECT_VA, plain->va + SUBPAGE, 0, MAP_NONE);
	check(is_err(err, EINVAL) && map_is(gfn_of(plain), MAP_ALL) &&
		      grew_by("pinned_pages", pinned, 0),
	      "errors: PROTECT_VA of an unaligned address is EINVAL");
	ro = mmap(NULL, PAGE_BYTES, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	err = ro == MAP_FAILED ? errno : va_call(g_fd, TESSEL_IOC_PROTECT_VA, ro, 0, MAP_NONE);
	check(is_err(err, EFAULT) && grew_by("pinned_pages", pinned, 0),
	      "errors: PROTECT_VA of read-only memory is EFAULT");
	if (ro != MAP_FAILED)
		munmap(ro, PAGE_BYTES);
	check(is_err(unprotect(plain), ENOENT) && map_is(wgfn, MAP_WITNESS),
	      "errors: UNPROTECT_VA of a page this file did not protect is ENOENT");
	check(is_err(ioc(g_fd, UNKNOWN_IOCTL, NULL), ENOTTY) && map_is(wgfn, MAP_WITNESS),
	      "errors: an unknown ioctl is ENOTTY");
	err = read(g_nbfd, &ev, sizeof(ev)) < 0 ? errno : 0;
	check(is_err(err, EAGAIN), "errors: a non-blocking read with no events is EAGAIN");

	/* With an event pending, so that neither EAGAIN nor blocking can hide the size check. */
	store(w->va + denied_off, new_value(w, denied_off, 4), 4);
	err = read(g_nbfd, &ev, SHORT_READ) < 0 ? errno : 0;
	ev_collect(&g_ev);
	check(is_err(err, EINVAL) && ev_only(TESSEL_EV_DENIED, w, denied_off, 4) && page_matches(w),
	      "errors: read() into 16 bytes is EINVAL and consumes nothing");
	check(unprivileged_open_fails(), "errors: opening the device without privilege fails");
	check(is_err(unprotect(w), 0), "errors: unprotect the witness page");
	free(maps);
}

/* LOCK freezes a page's permissions. */
static void test_lock(void)
{
	struct test_page *tp = fresh_page(), *other = fresh_page();
	struct tessel_range r = { .gfn_base = gfn_of(tp), .npages = 1 };
	uint64_t pinned;

	ev_reset();
	check(is_err(ioc(g_fd, TESSEL_IOC_LOCK, &r), 0), "lock: LOCK an unprotected page");
	check(is_err(spp_set1(gfn_of(tp), MAP_ONLY(31), 0), EPERM) && map_is(gfn_of(tp), MAP_ALL),
	      "lock: SET on a locked page is EPERM");
	pinned = stat_read("pinned_pages");
	check(is_err(protect(tp, 0, MAP_ONLY(31)), EPERM) && map_is(gfn_of(tp), MAP_ALL) &&
		      grew_by("pinned_pages", pinned, 0),
	      "lock: PROTECT_VA of a locked page is EPERM and pins nothing");
	check(is_err(ioc(g_fd, TESSEL_IOC_LOCK, &r), 0), "lock: locking again succeeds");
	check(map_is(gfn_of(tp), MAP_ALL), "lock: GET shows the page unprotected");
	probe(tp, PAGE_BYTES - 4, 4, MAP_ALL);
	check(page_matches(tp) && ev_count_is(0), "lock: writes to the locked page land");
	r.gfn_base = gfn_of(other);
	r.flags = 1;
	check(is_err(ioc(g_fd, TESSEL_IOC_LOCK, &r), EINVAL) &&
		      is_err(spp_set1(gfn_of(other), MAP_ALL, 0), 0),
	      "lock: LOCK with a flag is EINVAL and locks nothing");
}

struct reader {
	volatile pid_t tid;
	ssize_t ret;
	int err;
	struct tessel_event_entry e[8];
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;

	r->tid = (pid_t)syscall(SYS_gettid);
	r->ret = read(g_fd, r->e, sizeof(r->e));
	r->err = errno;
	return NULL;
}

/* Waits, a while at most, until thread tid sleeps (in its read()). */
static void wait_until_sleeping(pid_t tid)
{
	char path[64], buf[256], *s;
	int fd;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)tid);
	for (int tries = 0; tries < SLEEP_POLLS; tries++) {
		ssize_t n = -1;

		fd = open(path, O_RDONLY);
		if (fd >= 0) {
			n = read(fd, buf, sizeof(buf) - 1);
			close(fd);
		}
		buf[n > 0 ? n : 0] = 0;
		s = strrchr(buf, ')'); /* "tid (comm) state ..." */
		if (s && s[1] == ' ' && s[2] == 'S')
			return;
		nanosleep(&(struct timespec){ .tv_nsec = SLEEP_POLL_NS }, NULL);
	}
	diag("the reader thread never slept");
}

/* One denied write at tp + off while another thread is blocked in read(). */
static bool blocked_reader_wakes(struct test_page *tp, unsigned off)
{
	struct reader r = { .tid = 0, .ret = -1 };
	struct timespec deadline;
	pthread_t th;

	if (pthread_create(&th, NULL, reader_main, &r)) {
		diag("pthread_create failed");
		return false;
	}
	while (!r.tid)
		sched_yield();
	wait_until_sleeping(r.tid);
	nanosleep(&(struct timespec){ .tv_nsec = READER_DELAY_NS }, NULL);
	store(tp->va + off, new_value(tp, off, 4), 4);
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += READER_TIMEOUT_S;
	if (pthread_timedjoin_np(th, NULL, &deadline)) {
		diag("the reader did not wake up; interrupting it");
		pthread_kill(th, SIGUSR1);
		pthread_join(th, NULL);
	}
	if (r.ret != (ssize_t)sizeof(r.e[0])) {
		diag("reader: read() returned %zd (%s)", r.ret, r.ret < 0 ? strerror(r.err) : "");
		return false;
	}
	return ev_is(&r.e[0], TESSEL_EV_DENIED, tp, off, 4);
}

/* poll() and a blocked read() see events; the event interrupt wakes the reader. */
static void test_wakeup(void)
{
	const unsigned off = 1232;
	struct test_page *tp = fresh_page();
	struct pollfd pfd = { .fd = g_fd, .events = POLLIN };
	uint64_t irqs;

	ev_reset();
	check(is_err(protect(tp, 0, MAP_NONE), 0), "wakeup: protect a page");
	check(poll(&pfd, 1, 0) == 0, "wakeup: poll() is quiet with no events");
	store(tp->va + off, new_value(tp, off, 4), 4);
	check(poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLIN),
	      "wakeup: poll() reports POLLIN after a denied write");
	ev_collect(&g_ev);
	check(ev_only(TESSEL_EV_DENIED, tp, off, 4) && page_matches(tp),
	      "wakeup: the event is the denied write");
	irqs = stat_read("interrupts");
	check(blocked_reader_wakes(tp, off + SUBPAGE) && page_matches(tp),
	      "wakeup: a blocked reader wakes with exactly the one event");
	check(grew("interrupts", irqs, 1, UINT64_MAX), "wakeup: the event interrupt arrived");
	check(is_err(unprotect(tp), 0), "wakeup: unprotect");
}

/* A denied write from each vCPU names that vCPU. */
static void test_vcpus(void)
{
	struct test_page *tp = fresh_page();
	int apic[2];
	bool pinned = true, ok;

	ev_reset();
	check(is_err(protect(tp, 0, MAP_NONE), 0), "vcpus: protect a page");
	for (int cpu = 0; cpu < 2; cpu++) {
		apic[cpu] = apic_id_of(cpu);
		diag("CPU %d: APIC ID %d", cpu, apic[cpu]);
		pinned &= pin_cpu(cpu);
		probe(tp, (unsigned)cpu * SUBPAGE, 4, MAP_NONE);
	}
	pin_cpu(0);
	check(pinned && page_matches(tp), "vcpus: a denied write on each vCPU changes nothing");
	ok = pinned && ev_count_is(2);
	for (unsigned i = 0; ok && i < 2; i++) {
		ok = ev_is(&g_ev.e[i], TESSEL_EV_DENIED, tp, i * SUBPAGE, 4);
		if (ok && g_ev.e[i].vcpu != (uint32_t)apic[i]) {
			diag("event %u: vcpu %u, expected %d", i, g_ev.e[i].vcpu, apic[i]);
			ok = false;
		}
	}
	check(ok, "vcpus: each event names the APIC ID of the writing vCPU");
	check(apic[0] >= 0 && apic[1] >= 0 && apic[0] != apic[1],
	      "vcpus: the two vCPUs have different APIC IDs");
	check(is_err(unprotect(tp), 0), "vcpus: unprotect");
}

/*
 * A child protects the shared page through a file of its own, reports on `report`, waits
 * for `go` to close and exits without closing the file.
 */
static void __attribute__((noreturn)) protecting_child(void *page, int report, int go)
{
	int fd = open(TESSEL_DEVICE, O_RDWR);
	char st = fd >= 0 && !va_call(fd, TESSEL_IOC_PROTECT_VA, page, 0, MAP_NONE) ? 0 : 1;

	if (write(report, &st, 1) != 1 || read(go, &st, 1) < 0)
		_exit(2);
	_exit(0);
}

/* Closing a file, or the exit of the process that owns it, removes its protection. */
static void test_release(void)
{
	struct test_page *tp = fresh_page(), shared = { 0 };
	uint64_t pinned = stat_read("pinned_pages");
	int fd2 = open(TESSEL_DEVICE, O_RDWR | O_CLOEXEC);
	int to_child[2], to_parent[2];
	char st = 1;
	pid_t pid;

	ev_reset();
	check(fd2 >= 0 && is_err(protect_with(fd2, tp, 0, MAP_NONE), 0) &&
		      map_is(gfn_of(tp), MAP_NONE) && grew_by("pinned_pages", pinned, 1),
	      "release: a second file protects a page");
	if (fd2 >= 0)
		close(fd2);
	check(map_is(gfn_of(tp), MAP_ALL) && grew_by("pinned_pages", pinned, 0),
	      "release: closing the file unprotects and unpins the page");
	probe(tp, SUBPAGE / 2, 4, MAP_ALL);
	check(page_matches(tp) && ev_count_is(0), "release: writes land after close");

	shared.va = mmap(NULL, PAGE_BYTES, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (shared.va == MAP_FAILED || mlock(shared.va, PAGE_BYTES) || pipe(to_child) ||
	    pipe(to_parent))
		bail("cannot set up the shared page");
	fill_pattern(&shared, ARENA_PAGES * 31 + 1);
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		close(to_parent[0]);
		close(to_child[1]);
		protecting_child(shared.va, to_parent[1], to_child[0]);
	}
	close(to_parent[1]);
	close(to_child[0]);
	if (pid < 0 || read(to_parent[0], &st, 1) != 1)
		st = 1;
	shared.gpa = gpa_of(shared.va); /* after the child's pin, which may move it */
	check(st == 0 && map_is(gfn_of(&shared), MAP_NONE) && grew_by("pinned_pages", pinned, 1),
	      "release: a child process protects a shared page");
	probe(&shared, 2 * SUBPAGE, 4, MAP_NONE);
	check(page_matches(&shared) && ev_only(TESSEL_EV_DENIED, &shared, 2 * SUBPAGE, 4),
	      "release: the child's protection holds for the parent");
	close(to_child[1]);
	check(child_exited_0(pid) && map_is(gfn_of(&shared), MAP_ALL) &&
		      grew_by("pinned_pages", pinned, 0),
	      "release: the child's exit unprotects and unpins the page");
	close(to_parent[0]);
	ev_reset();
	probe(&shared, 2 * SUBPAGE, 4, MAP_ALL);
	check(page_matches(&shared) && ev_count_is(0),
	      "release: writes land after the child exits");
	munmap(shared.va, PAGE_BYTES);
}

/*
 * REP STOSB over three sub-pages: protected, writable, protected. Its first byte is protected,
 * so both modes exit there and the hypervisor emulates the whole instruction (up to 4 KiB per
 * exit, ABI.md section 7): the writable sub-page is filled, the protected ones are not, and
 * the guest continues after the instruction with RCX 0. Starting in the writable sub-page
 * instead would let Bochs 2.7's hardware mode run on into the second protected sub-page
 * without an exit (SPP-FACTS.md 10.1).
 */
static void test_rep_stos(void)
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
static void test_rep_movs(void)
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
static void test_locked_rmw(void)
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
static void test_sse_store(void)
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
static void test_push(void)
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
static void test_fxsave(void)
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

/* Reads every pending event; keeps the first max in buf and returns how many there were. */
static unsigned ev_read_all(struct tessel_event_entry *buf, unsigned max)
{
	unsigned n = 0;
	ssize_t r = 0;

	while (n < max && (r = read(g_nbfd, buf + n, (size_t)(max - n) * sizeof(*buf))) > 0)
		n += (unsigned)((size_t)r / sizeof(*buf));
	if (r < 0 && errno != EAGAIN)
		diag("read events: %s", strerror(errno));
	return n == max ? n + ev_discard() : n;
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
static void test_overflow(void)
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

/*
 * Every test page back to ordinary write access, whatever the tests left behind; safe in a
 * signal handler. The locked page refuses (EPERM), which is harmless: it was locked unprotected.
 */
static void cleanup_protection(void)
{
	if (g_fd < 0 || !g_req)
		return;
	for (unsigned i = 0; i < g_npages; i++) {
		unprotect(&g_pages[i]);
		spp_set1(gfn_of(&g_pages[i]), MAP_ALL, 0);
	}
}

static void on_fatal_signal(int sig)
{
	static const char msg[] = "Bail out! fatal signal\n";

	(void)sig;
	if (write(STDOUT_FILENO, msg, sizeof(msg) - 1) >= 0)
		cleanup_protection();
	_exit(1);
}

static void on_sigusr1(int sig)
{
	(void)sig;
}

static void install_signal_handlers(void)
{
	static const int fatal[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT };
	struct sigaction sa = { .sa_handler = on_fatal_signal, .sa_flags = SA_RESETHAND };

	for (size_t i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++)
		sigaction(fatal[i], &sa, NULL);
	sa.sa_handler = on_sigusr1;
	sa.sa_flags = 0; /* no SA_RESTART: it interrupts a read() that never returns */
	sigaction(SIGUSR1, &sa, NULL);
}

/* ---- bench ---- */

enum bench_op { B_NOP, B_GET, B_DENIED, B_ALLOWED, B_PLAIN, B_OPS };

static const char *const bench_name[B_OPS] = {
	"ioctl-nop", "ioctl-get-1", "denied-write", "allowed-write", "plain-write",
};

static inline uint64_t rdtsc_fenced(void)
{
	uint32_t lo, hi;

	asm volatile("lfence\n\trdtsc\n\tlfence" : "=a"(lo), "=d"(hi) : : "memory");
	return (uint64_t)hi << 32 | lo;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/*
 * Median instructions (Bochs' RDTSC counts them) of one operation. Stores are preceded,
 * outside the timed region, by a VM exit (see hv_nop()) and a drained ring.
 */
static uint64_t bench_median(enum bench_op op, struct test_page *spp, struct test_page *plain)
{
	uint8_t *const target[B_OPS] = {
		[B_DENIED] = spp->va + 3 * PAGE_BYTES / 4, /* protected in MAP_LOW_HALF */
		[B_ALLOWED] = spp->va + PAGE_BYTES / 4,    /* writable in MAP_LOW_HALF */
		[B_PLAIN] = plain->va + PAGE_BYTES / 4,
	};
	uint64_t t[BENCH_ITERATIONS], t0;
	uint32_t map;

	for (unsigned k = 0; k < BENCH_ITERATIONS; k++) {
		if (target[op]) {
			hv_nop();
			ev_discard();
		}
		t0 = rdtsc_fenced();
		if (op == B_NOP)
			ioctl(g_fd, TESSEL_IOC_NOP);
		else if (op == B_GET)
			spp_call(TESSEL_IOC_GET_SUBPAGES, gfn_of(spp), 1, 0, &map);
		else
			store(target[op], k, 4);
		t[k] = rdtsc_fenced() - t0;
	}
	qsort(t, BENCH_ITERATIONS, sizeof(t[0]), cmp_u64);
	return t[BENCH_ITERATIONS / 2];
}

static int run_bench(void)
{
	struct test_page *spp, *plain;

	if (!open_device())
		bail("cannot open " TESSEL_DEVICE);
	g_req = calloc(1, sizeof(*g_req) + sizeof(uint32_t));
	if (!g_req)
		bail("out of memory");
	pin_cpu(0);
	spp = fresh_page();
	plain = fresh_page();
	if (protect(spp, 0, MAP_LOW_HALF))
		bail("cannot protect the benchmark page");
	for (int op = 0; op < B_OPS; op++)
		printf("bench: %s %llu\n", bench_name[op],
		       (unsigned long long)bench_median(op, spp, plain));
	cleanup_protection();
	printf("bench: done\n");
	return 0;
}

/* ---- demo ---- */

static void demo_write(struct test_page *tp, unsigned off, const char *what)
{
	uint64_t v = new_value(tp, off, 8);
	uint64_t rip = store(tp->va + off, v, 8);
	bool landed = !memcmp(tp->va + off, &v, 8);

	hv_nop(); /* SPP-FACTS.md 10.1, as in probe() */
	printf("demo: 8-byte write at +0x%03x (%s sub-page %2u), insn at 0x%llx: %s\n", off, what,
	       off / SUBPAGE, (unsigned long long)rip,
	       landed ? "landed" : "memory unchanged (write denied)");
}

static int run_demo(void)
{
	struct test_page *tp;
	struct tessel_event_entry e;
	static const char *const kind[] = { "?", "DENIED", "TRACKED", "DISCARDED" };

	if (!open_device() || ioc(g_fd, TESSEL_IOC_INFO, &g_info))
		bail("cannot open " TESSEL_DEVICE);
	g_req = calloc(1, sizeof(*g_req) + sizeof(uint32_t));
	if (!g_req)
		bail("out of memory");
	pin_cpu(0);
	tp = fresh_page();
	ev_discard();
	if (protect(tp, 0, MAP_LOW_HALF))
		bail("cannot protect the demo page");
	printf("demo: %s SPP; page %p (guest-physical 0x%llx): sub-pages 0-15 writable, 16-31 "
	       "write-protected (PROTECT_VA, map 0x%08x)\n",
	       (g_info.features & TESSEL_F_SPP_HW) ? "hardware" : "software", (void *)tp->va,
	       (unsigned long long)tp->gpa, MAP_LOW_HALF);
	demo_write(tp, 0x100, "writable");
	demo_write(tp, 0x900, "protected");
	while (read(g_nbfd, &e, sizeof(e)) == (ssize_t)sizeof(e))
		printf("demo: event from read(/dev/tessel): %s, gpa 0x%llx, gla 0x%llx, rip 0x%llx, "
		       "vCPU %u, %u bytes\n", e.kind < 4 ? kind[e.kind] : "?",
		       (unsigned long long)e.gpa, (unsigned long long)e.gla,
		       (unsigned long long)e.rip, e.vcpu, e.bytes);
	printf("demo: hypervisor counters: spp_denied %llu, pages_protected %llu\n",
	       (unsigned long long)stat_read("spp_denied"),
	       (unsigned long long)stat_read("pages_protected"));
	cleanup_protection();
	printf("demo: protection removed\n");
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	install_signal_handlers();
	if (argc > 1 && !strcmp(argv[1], "tsc")) {
		printf("%llu\n", (unsigned long long)rdtsc_fenced());
		return 0;
	}
	g_bench = argc > 1 && !strcmp(argv[1], "bench");
	if (g_bench)
		return run_bench();
	if (argc > 1 && !strcmp(argv[1], "demo"))
		return run_demo();
	if (argc > 1) {
		fprintf(stderr, "usage: tessel-conform [bench|demo|tsc]\n");
		return 2;
	}

	printf("1..%d\n", PLAN);
	if (!check(open_device(), "open the device"))
		bail("cannot open " TESSEL_DEVICE);
	pin_cpu(0); /* one vCPU throughout, except where a test moves on purpose */
	test_info();
	test_selftest();
	test_mixed();
	test_widths();
	test_straddle();
	test_track();
	test_gpa();
	test_errors();
	test_lock();
	test_wakeup();
	test_vcpus();
	test_release();
	test_rep_stos();
	test_rep_movs();
	test_locked_rmw();
	test_sse_store();
	test_push();
	test_fxsave();
	test_overflow();
	cleanup_protection();

	if (g_tests != PLAN) {
		diag("%u points reported, the plan says %d", g_tests, PLAN);
		g_tests = g_tests > PLAN ? g_tests : PLAN;
	}
	printf("# conform: %u passed, %u failed\n", g_passed, g_tests - g_passed);
	return g_passed == g_tests ? 0 : 1;
}
