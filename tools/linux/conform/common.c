// SPDX-License-Identifier: GPL-2.0
/* tessel-conform: TAP, memory, the driver, sysfs, events, CPUs, cleanup and signals. */
#include "conform.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define SYSFS_DIR "/sys/class/misc/tessel/"
#define PAGEMAP_PFN_MASK ((1ull << 55) - 1)
#define PAGEMAP_PRESENT (1ull << 63)

int g_fd = -1;   /* blocking; every ioctl goes through it */
int g_nbfd = -1; /* O_NONBLOCK; collects events */
static int g_pagemap = -1;
struct tessel_info g_info;
struct tessel_subpage *g_req; /* room for max_pages + 1 maps */
static struct test_page g_pages[ARENA_PAGES];
static unsigned g_npages;
struct evlog g_ev; /* the events of the current step */
unsigned g_tests, g_passed;
bool g_bench;

/* ---- TAP ---- */

void __attribute__((format(printf, 1, 2))) diag(const char *fmt, ...)
{
	va_list ap;

	fputs("# ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
}

bool check(bool ok, const char *desc)
{
	g_tests++;
	g_passed += ok;
	printf("%s %u - %s\n", ok ? "ok" : "not ok", g_tests, desc);
	return ok;
}

/* A status (0 or an errno value) is the expected one; says what it was if not. */
bool is_err(int got, int want)
{
	if (got != want)
		diag("got %s (%d), expected %s (%d)", got ? strerror(got) : "success", got,
		     want ? strerror(want) : "success", want);
	return got == want;
}

void __attribute__((noreturn)) bail(const char *why)
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

uint64_t gpa_of(const void *va)
{
	uint64_t entry = 0;
	off_t off = (off_t)((uintptr_t)va / PAGE_BYTES * sizeof(entry));

	if (pread(g_pagemap, &entry, sizeof(entry), off) != sizeof(entry) ||
	    !(entry & PAGEMAP_PRESENT) || !(entry & PAGEMAP_PFN_MASK))
		bail("no physical address in /proc/self/pagemap");
	return (entry & PAGEMAP_PFN_MASK) * PAGE_BYTES + (uintptr_t)va % PAGE_BYTES;
}

void fill_pattern(struct test_page *tp, unsigned seed)
{
	for (unsigned i = 0; i < PAGE_BYTES; i++)
		tp->expect[i] = (uint8_t)(i * 7 + seed);
	memcpy(tp->va, tp->expect, PAGE_BYTES);
}

/*
 * A page of its own: resident, locked, never huge, filled with a pattern of its own, and not
 * inherited by fork (a copy-on-write fault would move it to another physical page).
 */
struct test_page *fresh_page(void)
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
bool bytes_match(const struct test_page *tp, unsigned off, unsigned len)
{
	for (unsigned i = off; i < off + len; i++)
		if (tp->va[i] != tp->expect[i]) {
			diag("page byte 0x%x: 0x%02x, expected 0x%02x", i, tp->va[i],
			     tp->expect[i]);
			return false;
		}
	return true;
}

bool page_matches(const struct test_page *tp)
{
	return bytes_match(tp, 0, PAGE_BYTES);
}

/* Every sub-page j with bit j of `which` set holds what it must. */
bool subpages_match(const struct test_page *tp, uint32_t which)
{
	bool ok = true;

	for (unsigned j = 0; j < SUBPAGES; j++)
		if (which & (1u << j))
			ok &= bytes_match(tp, j * SUBPAGE, SUBPAGE);
	return ok;
}

/* A value for `width` bytes at tp + off, every byte of it different from the one there. */
uint64_t new_value(const struct test_page *tp, unsigned off, unsigned width)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < width; i++)
		v |= (uint64_t)(uint8_t)~tp->expect[off + i] << (8 * i);
	return v;
}

/* ---- the driver ---- */

int ioc(int fd, unsigned long req, void *arg)
{
	return ioctl(fd, req, arg) ? errno : 0;
}

/*
 * A VM exit. Bochs 2.7 keeps the write permission an SPP-allowed write obtained, for the
 * whole page, until the next VM exit (docs/SPP.md section 10.1). Without one between an allowed
 * write and a write to a protected sub-page of the same page, the second write could land
 * unseen by the hypervisor: a test could then pass or fail because of Bochs, not Tessel.
 */
void hv_nop(void)
{
	if (ioctl(g_fd, TESSEL_IOC_NOP))
		diag("NOP: %s", strerror(errno));
}

/* GET_SUBPAGES or SET_SUBPAGES of npages maps, through g_req. */
int spp_call(unsigned long req, uint64_t gfn, uint32_t npages, uint32_t flags,
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

int spp_set1(uint64_t gfn, uint32_t map, uint32_t flags)
{
	return spp_call(TESSEL_IOC_SET_SUBPAGES, gfn, 1, flags, &map);
}

/* GET says the page's map is `want`. */
bool map_is(uint64_t gfn, uint32_t want)
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
int va_call(int fd, unsigned long req, void *va, uint32_t flags, uint32_t map)
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
int protect_with(int fd, struct test_page *tp, uint32_t flags, uint32_t map)
{
	int err = va_call(fd, TESSEL_IOC_PROTECT_VA, tp->va, flags, map);
	uint64_t old = tp->gpa;

	tp->gpa = gpa_of(tp->va);
	if (tp->gpa != old)
		diag("the pin moved the page from 0x%llx to 0x%llx", (unsigned long long)old,
		     (unsigned long long)tp->gpa);
	return err;
}

int protect(struct test_page *tp, uint32_t flags, uint32_t map)
{
	return protect_with(g_fd, tp, flags, map);
}

int unprotect(struct test_page *tp)
{
	return va_call(g_fd, TESSEL_IOC_UNPROTECT_VA, tp->va, 0, 0);
}

bool open_device(void)
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

/* ---- sysfs ---- */

bool sysfs_read(const char *name, char *buf, size_t len)
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
uint64_t stat_read(const char *name)
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
bool grew(const char *name, uint64_t before, uint64_t min, uint64_t max)
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

bool grew_by(const char *name, uint64_t before, uint64_t delta)
{
	return grew(name, before, delta, delta);
}

/* ---- events ---- */

/*
 * Reads every pending event without blocking: the first max into buf, the others read and
 * dropped. Returns how many there were.
 */
unsigned ev_read_all(struct tessel_event_entry *buf, unsigned max)
{
	struct tessel_event_entry spill[16];
	unsigned n = 0;
	ssize_t r;

	for (;;) {
		bool keep = n < max;
		struct tessel_event_entry *dst = keep ? buf + n : spill;
		size_t room = keep ? max - n : sizeof(spill) / sizeof(spill[0]);

		r = read(g_nbfd, dst, room * sizeof(*dst));
		if (r <= 0)
			break;
		n += (unsigned)((size_t)r / sizeof(*dst));
	}
	if (r < 0 && errno != EAGAIN)
		diag("read events: %s", strerror(errno));
	return n;
}

/* Appends every pending event to log (counting those beyond EVLOG_MAX), without blocking. */
void ev_collect(struct evlog *log)
{
	unsigned kept = log->n < EVLOG_MAX ? log->n : EVLOG_MAX;

	log->n += ev_read_all(log->e + kept, EVLOG_MAX - kept);
}

/* Reads and drops every pending event; returns how many there were. */
unsigned ev_discard(void)
{
	return ev_read_all(NULL, 0);
}

/* No event pending, an empty log. */
void ev_reset(void)
{
	unsigned n = ev_discard();

	if (n)
		diag("discarded %u stray events", n);
	memset(&g_ev, 0, sizeof(g_ev));
}

void ev_print(const struct tessel_event_entry *e)
{
	diag("event: kind %u gpa 0x%llx gla 0x%llx rip 0x%llx vcpu %u bytes %u", e->kind,
	     (unsigned long long)e->gpa, (unsigned long long)e->gla,
	     (unsigned long long)e->rip, e->vcpu, e->bytes);
}

/* g_ev holds exactly `want` events. */
bool ev_count_is(unsigned want)
{
	if (g_ev.n != want) {
		diag("%u events, expected %u", g_ev.n, want);
		for (unsigned i = 0; i < g_ev.n && i < EVLOG_MAX; i++)
			ev_print(&g_ev.e[i]);
	}
	return g_ev.n == want;
}

/* e reports a write of kind `kind` whose first protected byte is tp + off. */
bool ev_is(const struct tessel_event_entry *e, unsigned kind,
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
bool ev_only(unsigned kind, const struct test_page *tp, unsigned off, unsigned bytes)
{
	return ev_count_is(1) && ev_is(&g_ev.e[0], kind, tp, off, bytes);
}

/*
 * Writes `width` bytes at tp + off, each different from the byte there, makes a VM exit
 * (hv_nop()) and collects the events into g_ev. `map` is the permission the test expects:
 * the bytes in sub-pages it makes writable must land. Returns the writing instruction's RIP.
 */
uint64_t probe(struct test_page *tp, unsigned off, unsigned width, uint32_t map)
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

/* ---- CPUs ---- */

bool pin_cpu(int cpu)
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

/* ---- cleanup and signals ---- */

/*
 * Every test page back to ordinary write access, whatever the tests left behind; safe in a
 * signal handler. The locked page refuses (EPERM), which is harmless: it was locked unprotected.
 */
void cleanup_protection(void)
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

void install_signal_handlers(void)
{
	static const int fatal[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT };
	struct sigaction sa = { .sa_handler = on_fatal_signal, .sa_flags = SA_RESETHAND };

	for (size_t i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++)
		sigaction(fatal[i], &sa, NULL);
	sa.sa_handler = on_sigusr1;
	sa.sa_flags = 0; /* no SA_RESTART: it interrupts a read() that never returns */
	sigaction(SIGUSR1, &sa, NULL);
}
