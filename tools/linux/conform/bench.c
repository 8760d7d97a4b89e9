// SPDX-License-Identifier: GPL-2.0
/* tessel-conform: the bench and demo modes. */
#include "conform.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define BENCH_ITERATIONS 101

/* ---- bench ---- */

enum bench_op { B_NOP, B_GET, B_DENIED, B_ALLOWED, B_PLAIN, B_OPS };

static const char *const bench_name[B_OPS] = {
	"ioctl-nop", "ioctl-get-1", "denied-write", "allowed-write", "plain-write",
};

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

/*
 * The start bench and demo share: the device and its INFO, room for one map, CPU 0, no stale
 * events, and one page protected with MAP_LOW_HALF (sub-pages 0-15 writable, 16-31 not).
 */
static struct test_page *setup_low_half_page(void)
{
	struct test_page *tp;

	if (!open_device() || ioc(g_fd, TESSEL_IOC_INFO, &g_info))
		bail("cannot open " TESSEL_DEVICE);
	g_req = calloc(1, sizeof(*g_req) + sizeof(uint32_t));
	if (!g_req)
		bail("out of memory");
	pin_cpu(0);
	tp = fresh_page();
	ev_discard();
	if (protect(tp, 0, MAP_LOW_HALF))
		bail("cannot protect the page");
	return tp;
}

int run_bench(void)
{
	struct test_page *spp = setup_low_half_page(), *plain = fresh_page();

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

	hv_nop(); /* docs/SPP.md section 10.1, as in probe() */
	printf("demo: 8-byte write at +0x%03x (%s sub-page %2u), insn at 0x%llx: %s\n", off, what,
	       off / SUBPAGE, (unsigned long long)rip,
	       landed ? "landed" : "memory unchanged (write denied)");
}

int run_demo(void)
{
	struct test_page *tp = setup_low_half_page();
	struct tessel_event_entry e;
	static const char *const kind[] = { "?", "DENIED", "TRACKED", "DISCARDED" };

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
