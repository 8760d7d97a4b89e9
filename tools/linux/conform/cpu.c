// SPDX-License-Identifier: GPL-2.0
/*
 * tessel-conform: what user space sees of the CPU on every vCPU (issue 10).
 *
 * The hypervisor computes CPUID.1:ECX.OSXSAVE (bit 27) and CPUID.(7,0):ECX.OSPKE (bit 4) from
 * the guest's CR4 (hv/exit_cpuid.c), as the processor does (SDM Vol. 2A, CPUID: "OSXSAVE: a
 * value of 1 indicates that the OS has set CR4.OSXSAVE[bit 18] to enable XSETBV/XGETBV").
 * Linux sets CR4.OSXSAVE on every CPU where XSAVE exists, so every CPU must report it, and the
 * same everywhere: a user-space program reads CPUID once, on whatever CPU it happens to run,
 * and picks its code paths (AVX in libc) from it. An AP whose OSXSAVE read 0 while the BSP's
 * read 1 is the bug this scenario catches: glibc on that AP would pick the SSE2 paths, or,
 * worse, a program started on it would think AVX unusable while one started on the BSP
 * uses it.
 *
 * XGETBV(0) (XCR0) must work (it #UDs unless CR4.OSXSAVE is set, SDM Vol. 2B XGETBV) and be
 * the same on every CPU (Linux programs one XCR0 everywhere). And when CPUID says AVX with
 * OSXSAVE and XCR0 enables SSE and AVX state (bits 2:1 = 11b), a VEX instruction must run
 * (SDM Vol. 1, 14.3 "Detection of Intel AVX instructions"): a VMOVDQU between registers.
 *
 * Fixed descriptions; the values go to "# " lines (both modes must give identical ok lines).
 */
#include "conform.h"

#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define MAX_CPUS 64
#define ECX1_XSAVE (1u << 26)
#define ECX1_OSXSAVE (1u << 27)
#define ECX1_AVX (1u << 28)
#define ECX7_PKU (1u << 3)
#define ECX7_OSPKE (1u << 4)
#define XCR0_SSE_AVX 0x6u

struct cpu_view {
	uint32_t ecx1;
	uint32_t ecx7;
	uint64_t xcr0;
	bool xgetbv_ok; /* XGETBV(0) ran without SIGILL */
	bool avx_ok;    /* VMOVDQU ran without SIGILL */
};

static sigjmp_buf g_ud_jmp;

static void on_sigill(int sig)
{
	(void)sig;
	siglongjmp(g_ud_jmp, 1);
}

static void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
	asm volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
}

/*
 * Runs fn under a SIGILL handler; false if it raised #UD. The process's fatal handler is put
 * back afterwards.
 */
static bool runs_without_ud(void (*fn)(void *), void *arg)
{
	struct sigaction sa = { .sa_handler = on_sigill }, old;
	volatile bool ok = false;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGILL, &sa, &old);
	if (!sigsetjmp(g_ud_jmp, 1)) {
		fn(arg);
		ok = true;
	}
	sigaction(SIGILL, &old, NULL);
	return ok;
}

static void do_xgetbv(void *arg)
{
	uint32_t lo, hi;

	asm volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	*(uint64_t *)arg = (uint64_t)hi << 32 | lo;
}

/* A VEX-encoded move between registers; its result shows the instruction did run. */
static void do_vmovdqu(void *arg)
{
	static const uint8_t in[32] __attribute__((aligned(32))) = {
		1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
		17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32
	};
	uint8_t out[32] __attribute__((aligned(32)));

	memset(out, 0, sizeof(out));
	asm volatile("vmovdqu (%0), %%ymm1\n\t"
		     "vmovdqu %%ymm1, %%ymm2\n\t"
		     "vmovdqu %%ymm2, (%1)\n\t"
		     "vzeroupper"
		     : : "r"(in), "r"(out) : "xmm1", "xmm2", "memory");
	*(bool *)arg = !memcmp(in, out, sizeof(out));
}

static void view_this_cpu(struct cpu_view *v)
{
	uint32_t r[4];
	bool moved = false;

	memset(v, 0, sizeof(*v));
	cpuid(1, 0, r);
	v->ecx1 = r[2];
	cpuid(0, 0, r);
	if (r[0] >= 7) {
		cpuid(7, 0, r);
		v->ecx7 = r[2];
	}
	v->xgetbv_ok = runs_without_ud(do_xgetbv, &v->xcr0);
	if ((v->ecx1 & (ECX1_AVX | ECX1_OSXSAVE)) == (ECX1_AVX | ECX1_OSXSAVE) && v->xgetbv_ok &&
	    (v->xcr0 & XCR0_SSE_AVX) == XCR0_SSE_AVX)
		v->avx_ok = runs_without_ud(do_vmovdqu, &moved) && moved;
}

void test_cpu_features(void)
{
	static struct cpu_view v[MAX_CPUS];
	long online = sysconf(_SC_NPROCESSORS_ONLN);
	int n = 0;
	bool pinned = true, osxsave = true, same = true, xgetbv = true, xsame = true;
	bool avx_claimed = true, avx = true, ospke_same = true;

	if (online > MAX_CPUS)
		online = MAX_CPUS;
	for (int cpu = 0; cpu < online; cpu++) {
		if (!pin_cpu(cpu)) {
			pinned = false;
			continue;
		}
		view_this_cpu(&v[n]);
		diag("CPU %d: CPUID.1:ECX 0x%08x CPUID.7:ECX 0x%08x XGETBV(0) %s 0x%llx AVX %s", cpu,
		     v[n].ecx1, v[n].ecx7, v[n].xgetbv_ok ? "ok" : "#UD",
		     (unsigned long long)v[n].xcr0, v[n].avx_ok ? "runs" : "not run");
		n++;
	}
	pin_cpu(0);
	for (int i = 0; i < n; i++) {
		/* Every CPU Tessel offers has XSAVE (the hypervisor needs it for the AVX state). */
		osxsave &= (v[i].ecx1 & (ECX1_XSAVE | ECX1_OSXSAVE)) == (ECX1_XSAVE | ECX1_OSXSAVE);
		same &= v[i].ecx1 == v[0].ecx1;
		ospke_same &= (v[i].ecx7 & (ECX7_PKU | ECX7_OSPKE)) ==
			      (v[0].ecx7 & (ECX7_PKU | ECX7_OSPKE));
		xgetbv &= v[i].xgetbv_ok;
		xsame &= v[i].xgetbv_ok && v[i].xcr0 == v[0].xcr0;
		avx_claimed &= (v[i].ecx1 & ECX1_AVX) && (v[i].xcr0 & XCR0_SSE_AVX) == XCR0_SSE_AVX;
		avx &= v[i].avx_ok;
	}
	check(pinned && n >= 2, "cpu: ran on every online CPU (at least two)");
	check(n > 0 && osxsave, "cpu: CPUID.1:ECX.OSXSAVE is set on every CPU");
	check(n > 0 && same, "cpu: CPUID.1:ECX is the same on every CPU");
	check(n > 0 && ospke_same, "cpu: CPUID.7:ECX PKU and OSPKE are the same on every CPU");
	check(n > 0 && xgetbv, "cpu: XGETBV(0) runs on every CPU");
	check(n > 0 && xsame, "cpu: XCR0 is the same on every CPU");
	/* The Bochs models (Ice Lake, Skylake-X) and every silicon target have AVX. */
	check(n > 0 && avx_claimed, "cpu: CPUID and XCR0 say AVX is usable on every CPU");
	check(n > 0 && avx, "cpu: a VEX instruction (VMOVDQU) runs on every CPU");
}
