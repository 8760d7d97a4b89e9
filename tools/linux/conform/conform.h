/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tessel-conform (main.c says what it does): what its files share. Every .c file includes
 * this header first. common.c defines the globals and the helpers declared here.
 */
#ifndef TESSEL_CONFORM_H
#define TESSEL_CONFORM_H

#define _GNU_SOURCE
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tessel.h"
#include "tessel_ioctl.h"

#define PLAN 157 /* TAP points: every run reports exactly these, in the same order */

#define PAGE_BYTES 4096u
#define SUBPAGE TESSEL_SPP_SUBPAGE_SIZE
#define SUBPAGES (PAGE_BYTES / SUBPAGE)
#define MAP_NONE 0u                     /* every sub-page write-protected */
#define MAP_ALL TESSEL_SPP_ALL_WRITABLE /* unprotected */
#define MAP_MIXED 0xa5a5a5a5u           /* runs of protected and writable sub-pages */
#define MAP_LOW_HALF 0x0000ffffu        /* sub-pages 0-15 writable, 16-31 protected */
#define MAP_WITNESS 0x0f0f0f0fu         /* the error tests check that it survives them */
#define MAP_ONLY(j) (~(1u << (j)))      /* only sub-page j protected */

#define STAT_ERR UINT64_MAX
#define ARENA_PAGES 32
#define EVLOG_MAX 64

struct test_page {
	uint8_t *va;
	uint64_t gpa;
	uint8_t expect[PAGE_BYTES]; /* what the page must hold */
};

struct evlog {
	unsigned n; /* events read, including those beyond e[] */
	struct tessel_event_entry e[EVLOG_MAX];
};

/* ---- globals (common.c) ---- */

extern int g_fd;   /* blocking; every ioctl goes through it */
extern int g_nbfd; /* O_NONBLOCK; collects events */
extern struct tessel_info g_info;
extern struct tessel_subpage *g_req; /* room for max_pages + 1 maps */
extern struct evlog g_ev;            /* the events of the current step */
extern unsigned g_tests, g_passed;
extern bool g_bench;

/*
 * ---- inline helpers ----
 * Inline, as they were when the program was one file: bench.c times store() and gfn_of(), and
 * a call would add instructions to what it measures.
 */

static inline uint64_t gfn_of(const struct test_page *tp)
{
	return tp->gpa / PAGE_BYTES;
}

/* One MOV of `width` bytes; returns the address of that instruction. */
static inline uint64_t store(void *p, uint64_t v, unsigned width)
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

static inline uint64_t rdtsc_fenced(void)
{
	uint32_t lo, hi;

	asm volatile("lfence\n\trdtsc\n\tlfence" : "=a"(lo), "=d"(hi) : : "memory");
	return (uint64_t)hi << 32 | lo;
}

/* ---- common.c ---- */

/* TAP */
void __attribute__((format(printf, 1, 2))) diag(const char *fmt, ...);
bool check(bool ok, const char *desc);
bool is_err(int got, int want);
void __attribute__((noreturn)) bail(const char *why);

/* memory */
uint64_t gpa_of(const void *va);
void fill_pattern(struct test_page *tp, unsigned seed);
struct test_page *fresh_page(void);
bool bytes_match(const struct test_page *tp, unsigned off, unsigned len);
bool page_matches(const struct test_page *tp);
bool subpages_match(const struct test_page *tp, uint32_t which);
uint64_t new_value(const struct test_page *tp, unsigned off, unsigned width);

/* the driver */
int ioc(int fd, unsigned long req, void *arg);
void hv_nop(void);
int spp_call(unsigned long req, uint64_t gfn, uint32_t npages, uint32_t flags, uint32_t *maps);
int spp_set1(uint64_t gfn, uint32_t map, uint32_t flags);
bool map_is(uint64_t gfn, uint32_t want);
int va_call(int fd, unsigned long req, void *va, uint32_t flags, uint32_t map);
int protect_with(int fd, struct test_page *tp, uint32_t flags, uint32_t map);
int protect(struct test_page *tp, uint32_t flags, uint32_t map);
int unprotect(struct test_page *tp);
bool open_device(void);

/* sysfs */
bool sysfs_read(const char *name, char *buf, size_t len);
uint64_t stat_read(const char *name);
bool grew(const char *name, uint64_t before, uint64_t min, uint64_t max);
bool grew_by(const char *name, uint64_t before, uint64_t delta);

/* events */
unsigned ev_read_all(struct tessel_event_entry *buf, unsigned max);
void ev_collect(struct evlog *log);
unsigned ev_discard(void);
void ev_reset(void);
void ev_print(const struct tessel_event_entry *e);
bool ev_count_is(unsigned want);
bool ev_is(const struct tessel_event_entry *e, unsigned kind, const struct test_page *tp,
	   unsigned off, unsigned bytes);
bool ev_only(unsigned kind, const struct test_page *tp, unsigned off, unsigned bytes);
uint64_t probe(struct test_page *tp, unsigned off, unsigned width, uint32_t map);

/* CPUs, cleanup, signals */
bool pin_cpu(int cpu);
void cleanup_protection(void);
void install_signal_handlers(void);

/* ---- scenarios.c: the ABI ---- */

void test_info(void);
void test_selftest(void);
void test_mixed(void);
void test_widths(void);
void test_straddle(void);
void test_track(void);
void test_gpa(void);
void test_errors(void);
void test_lock(void);
void test_wakeup(void);
void test_vcpus(void);
void test_release(void);

/* ---- remap.c: protection follows the physical page ---- */

void test_remap(void);
void test_dontneed(void);
void test_two_files(void);
void test_alias(void);
void test_exited(void);
void test_rollback(void);

/* ---- insn.c: instructions ---- */

void test_rep_stos(void);
void test_rep_movs(void);
void test_locked_rmw(void);
void test_sse_store(void);
void test_push(void);
void test_fxsave(void);
void test_overflow(void);

/* ---- cpu.c: CPUID, XCR0 and AVX on every vCPU ---- */

void test_cpu_features(void);

/* ---- bench.c ---- */

int run_bench(void);
int run_demo(void);

#endif
