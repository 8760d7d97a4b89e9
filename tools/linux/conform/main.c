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
 * <every .c file of tools/linux/conform/> -o tessel-conform -lpthread. The files:
 *
 *   conform.h     constants, types, globals and helpers shared by the files
 *   common.c      TAP, the test pages, driver calls, sysfs counters, events, CPUs, cleanup
 *   scenarios.c   the ABI scenarios: INFO, the selftest, map shapes, write widths, straddle,
 *                 TRACK, GET/SET by address, errors, LOCK, wakeups, vCPUs, release
 *   remap.c       protection follows the physical page: munmap and mmap, MADV_DONTNEED,
 *                 an exited process, two files or two addresses protecting one page, and
 *                 the rollback of a failed call on a page other holders protect
 *   insn.c        the instruction scenarios (REP STOS/MOVS, locked RMW, SSE, PUSH, FXSAVE64)
 *                 with their asm wrappers, and the ring overflow
 *   cpu.c         CPUID.1:ECX (OSXSAVE), CPUID.7:ECX (OSPKE), XGETBV and AVX on every CPU
 *   bench.c       the bench and demo modes
 *   main.c        the modes, the order of the scenarios and the plan's bookkeeping
 *
 * Every check looks at something the guest can see: ioctl statuses and errno, memory
 * contents, the events read() returns and the driver's sysfs counters. The program runs once
 * with hardware SPP and once in software mode and the ok/not ok lines of both runs must be
 * identical, so descriptions are fixed text; addresses, modes and values go to "# " lines.
 *
 * Bochs 2.7 caches the write permission SPP grants for a whole page (docs/SPP.md section 10.1):
 * after an allowed write into a page, a write to a protected sub-page of that page can land
 * without a VM exit until the next exit. probe() therefore follows every store with a NOP
 * hypercall. Writes stay inside one 128-byte sub-page, except those whose first byte is
 * protected (the straddle test, REP STOS/MOVS, FXSAVE64): both modes then exit on that first
 * byte and the hypervisor handles the whole instruction, checking every byte. A write that
 * started in a writable sub-page and ran into a protected one would differ between the modes
 * on Bochs 2.7 (docs/SPP.md section 10.1 and 10.4), so no test makes one.
 */
#include "conform.h"

#include <stdio.h>
#include <string.h>

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
	test_cpu_features();
	test_release();
	test_remap();
	test_dontneed();
	test_two_files();
	test_alias();
	test_exited();
	test_rollback();
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
