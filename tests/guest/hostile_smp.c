/*
 * hostile_smp.c: a guest kernel's attacks on the hypervisor's cross-CPU machinery (issue 9).
 *
 *  1. IA32_APIC_BASE: the BSP tries to disable its local APIC, to move the APIC base (onto
 *     the hypervisor's region, and elsewhere), to set reserved bits, and (in x2APIC mode) to
 *     go back to xAPIC directly. Each WRMSR must raise #GP and leave the register as it was
 *     (hv/vapic.c): the hypervisor sends its NMIs through this APIC.
 *  2. Then shootdowns that need those NMIs: the BSP narrows and widens a page's protection
 *     many times while the AP writes the page; every SET returns, and while a protection is
 *     in force the AP's writes to the protected bytes never land.
 *  3. An exception frame that straddles two pages with protected sub-pages (the frame's
 *     bytes are all on writable sub-pages): the handler must run and the frame land. In
 *     software mode each page's frame write exits; a step that could open only one page
 *     made the two reopen each other for ever.
 * Ends with the common post-checks (tests/guest/lib/hostile.h).
 */
#include "arch.h"
#include "guest.h"
#include "hostile.h"
#include "spp_util.h"
#include <tessel.h>

#define APIC_POINTS 5
#define SHOOT_POINTS 2
#define STRADDLE_POINTS 2
#define POINTS (APIC_POINTS + SHOOT_POINTS + STRADDLE_POINTS + HOSTILE_POSTCHECK_POINTS)

#define MSR_APIC_BASE 0x1bu
#define APIC_EN (1ull << 11)
#define APIC_EXTD (1ull << 10)

static volatile uint64_t wr_value;

static void do_wrmsr(void *arg)
{
	(void)arg;
	wrmsr(MSR_APIC_BASE, wr_value);
}

/* One refused write: #GP(0), and the register reads as before. */
static int apic_write_refused(uint64_t v, const char *what)
{
	uint64_t before = rdmsr(MSR_APIC_BASE);
	struct trap_info ti;
	mem_set(&ti, 0, sizeof(ti));
	wr_value = v;
	trap_call(TRAP_VEC(13), do_wrmsr, NULL, &ti);
	uint64_t after = rdmsr(MSR_APIC_BASE);
	return sok(ti.trapped && ti.vector == 13 && ti.error == 0 && after == before,
		   "APIC_BASE: %s (WRMSR %llx) raises #GP(0) and changes nothing (trapped %d, vector %llu, before %llx, "
		   "after %llx)", what, (unsigned long long)v, ti.trapped, (unsigned long long)ti.vector,
		   (unsigned long long)before, (unsigned long long)after);
}

static void apic_attacks(void)
{
	uint64_t cur = rdmsr(MSR_APIC_BASE), hv_base = 0, hv_size = 0;
	tap_diag("IA32_APIC_BASE is %llx", (unsigned long long)cur);
	apic_write_refused(cur & ~APIC_EN & ~APIC_EXTD, "disable the local APIC");
	if (!hv_region(&hv_base, &hv_size))
		hv_base = 0x80000000ull;
	apic_write_refused((hv_base & ~0xfffull) | (cur & 0xfffull), "move the base onto the hypervisor's region");
	apic_write_refused(((cur & ~0xfffull) + 0x100000ull) | (cur & 0xfffull), "move the base by 1 MiB");
	apic_write_refused(cur | 1ull, "set reserved bit 0");
	if (cur & APIC_EXTD)
		apic_write_refused(cur & ~APIC_EXTD, "x2APIC -> xAPIC directly");
	else
		apic_write_refused((cur | APIC_EXTD) & ~APIC_EN, "EXTD without EN (invalid)");
}

/* ---- shootdowns with the AP writing ---- */

#define SHOOT_ROUNDS 60
#define SHOOT_X 600u /* in sub-page 4 */
#define SHOOT_MASK (~(1u << 4))

static struct {
	volatile uint64_t stop, started, done, phase, iters, bad;
	volatile uint8_t *page;
} sh;

static void shoot_ap(void *arg)
{
	(void)arg;
	sh.started = 1;
	uint64_t n = 0;
	while (!sh.stop) {
		uint64_t ph = sh.phase;
		__asm__ __volatile__("" ::: "memory");
		uint64_t v = 0xb000000000000000ull | n;
		probe_store(sh.page + SHOOT_X, v, 8);
		uint64_t got = *(volatile uint64_t *)(sh.page + SHOOT_X);
		__asm__ __volatile__("" ::: "memory");
		if ((ph & 1) && sh.phase == ph && got == v)
			sh.bad++; /* landed on a protected byte while the protection was in force */
		sh.iters = ++n;
	}
	sh.done = 1;
}

static void shootdowns(void)
{
	sh.page = spp_pages(1);
	int ap = ap_index();
	if (!sh.page || ap < 0) {
		sskip("no page or no AP", "shootdowns with the AP writing");
		sskip("no page or no AP", "protected bytes never written while protected");
		return;
	}
	if (ap_start((unsigned)ap, shoot_ap, NULL) != EFI_SUCCESS) {
		sskip("could not start the AP", "shootdowns");
		sskip("could not start the AP", "protected bytes");
		return;
	}
	for (uint64_t spin = 0; !sh.started && spin < 100000000ull; spin++)
		cpu_relax();
	unsigned ok = 0;
	for (unsigned r = 0; r < SHOOT_ROUNDS; r++) {
		sh.phase = 2 * r; /* even: unprotected */
		if (set1(sh.page, SHOOT_MASK, 0) == 0)
			ok++;
		/* The SET returned: the protection is in force on every vCPU. Snapshot, then
		 * let the AP's samples count. */
		sh.phase = 2 * r + 1;
		uint64_t start = sh.iters;
		for (uint64_t spin = 0; sh.iters < start + 3 && spin < 20000000ull; spin++)
			cpu_relax();
		sh.phase = 2 * r + 2;
		set1(sh.page, TESSEL_SPP_ALL_WRITABLE, 0);
	}
	sh.stop = 1;
	ap_wait(5000);
	sok(ok == SHOOT_ROUNDS && sh.started && sh.done,
	    "%u of %u narrowing SETs returned while the AP wrote the page (AP %s, %llu iterations)", ok, SHOOT_ROUNDS,
	    sh.done ? "finished" : "did not finish", (unsigned long long)sh.iters);
	sok(sh.bad == 0, "the AP's writes never landed on the protected sub-page while it was protected (%llu did)",
	    (unsigned long long)sh.bad);
}

/* ---- an exception frame across two protected pages ---- */

static uint8_t *pages2;
static volatile uint64_t ud2_rip;

static void fault_straddling(void *arg)
{
	(void)arg;
	/* RSP 16 bytes into the second page: the #UD frame (40 bytes, 16-byte aligned) starts
	 * 24 bytes before the end of the first page. */
	uint64_t top = (uint64_t)(uintptr_t)(pages2 + 4096 + 16);
	__asm__ __volatile__("leaq 1f(%%rip), %%rax\n\t"
			     "movq %%rax, %0\n\t"
			     "movq %1, %%rsp\n"
			     "1: ud2"
			     : "=m"(ud2_rip) : "r"(top) : "rax", "memory");
}

static void straddle(void)
{
	pages2 = spp_pages(2);
	uint8_t *exp = spp_pages(2);
	if (!pages2 || !exp) {
		sskip("out of memory", "straddling frame");
		sskip("out of memory", "straddling frame: canaries");
		return;
	}
	pat_fill(pages2, 8192, 0x71);
	mem_copy(exp, pages2, 8192);
	/* First page: sub-page 30 protected (a canary below the frame), 31 writable.
	 * Second page: sub-page 0 writable, sub-page 1 protected (a canary above the frame). */
	int64_t s1 = set1(pages2, ~(1u << 30), 0), s2 = set1(pages2 + 4096, ~(1u << 1), 0);
	invlpg(pages2);
	invlpg(pages2 + 4096);
	struct trap_info ti;
	mem_set(&ti, 0, sizeof(ti));
	trap_call(TRAP_VEC(6), fault_straddling, NULL, &ti);
	sok(s1 == 0 && s2 == 0 && ti.trapped && ti.vector == 6 && ti.rip == ud2_rip,
	    "#UD with its frame across two pages with protected sub-pages reached its handler (SET %lld %lld, trapped "
	    "%d, vector %llu, rip %llx, expected %llx)", (long long)s1, (long long)s2, ti.trapped,
	    (unsigned long long)ti.vector, (unsigned long long)ti.rip, (unsigned long long)ud2_rip);
	unsigned f1 = 0, f2 = 0;
	unsigned d1 = mem_diff(pages2 + 30 * 128, exp + 30 * 128, 128, &f1);
	unsigned d2 = mem_diff(pages2 + 4096 + 128, exp + 4096 + 128, 128, &f2);
	uint64_t rip_slot = *(volatile uint64_t *)(pages2 + 4096 + 16 - 40);
	sok(d1 == 0 && d2 == 0 && rip_slot == ud2_rip,
	    "the frame landed (saved RIP %llx) and both canary sub-pages are intact (%u and %u bytes changed)",
	    (unsigned long long)rip_slot, d1, d2);
	unprot(pages2, 2);
}

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *st)
{
	spp_start(image, st, POINTS);
	struct hostile_guard g;
	hostile_guard_setup(&g);
	suite_begin("hostile-smp", APIC_POINTS + SHOOT_POINTS + STRADDLE_POINTS);
	apic_attacks();
	shootdowns();
	straddle();
	suite_end();
	hostile_postcheck(&g, "APIC_BASE attacks, shootdowns, a straddling frame");
	guest_finish();
}
