/*
 * hostile_pschange.c: EPT page-size changes under a running vCPU (docs/HARDWARE.md, the
 * machine check on page-size change; mm/ept.h ept_split). The group boots the test build
 * with ept_bbm=on, so every split of a 2 MiB leaf (protecting a page) and every merge back
 * (unprotecting its last page) goes the break-before-make way: the leaf is not present
 * while every CPU invalidates, and a vCPU that touches the block meanwhile takes an EPT
 * violation the hypervisor must simply retry.
 *
 *   1. Two 2 MiB blocks of loader-code memory hold a small function (lea rax,[rdi+0x5a];
 *      ret) in 64 of their pages. The AP calls those functions one after the other and
 *      writes and reads back a counter in the upper half of pages of the same blocks, the
 *      whole time.
 *   2. The BSP protects one page of a block (sub-pages 0 and 1) and unprotects it, ROUNDS
 *      times over both blocks. With the test hook HC_TEST_EPT_LEAF it checks the page is
 *      mapped by a 4 KiB leaf while protected and by a 2 MiB leaf again after (the split and
 *      the merge really happened).
 *   3. Every call returned 0; the AP ran all along, every call returned the right value
 *      and every write read back; the AP's EPT violations are shown as a diagnostic.
 *   4. The common hostile post-checks (hostile.h).
 *
 * Bochs does not model the erratum (no machine check on a TLB multi-hit), so this group
 * shows that the break-before-make path holds with a vCPU running in the blocks; the
 * ordering itself is shown by tests/unit/test_bbm.c.
 */
#include "arch.h"
#include "guest.h"
#include "hostile.h"
#include "spp_util.h"
#include <tessel.h>

#define HC_TEST_EPT_LEAF 0x7e02u
#define ROUNDS 40
#define FN_PAGES 64
#define FN_OFF 0x40
#define DATA_OFF 0x800 /* sub-page 16: never protected here */
#define POINTS (3 + HOSTILE_POSTCHECK_POINTS)

static const uint8_t fn_code[] = { 0x48, 0x8d, 0x47, 0x5a, 0xc3 }; /* lea rax,[rdi+0x5a]; ret */

static struct {
	volatile uint64_t stop, started, done, iters, bad_ret, bad_data;
	uint8_t *blk; /* two 2 MiB blocks */
} ps;

#define HC_TEST_TABLE_MEM 0x7e01u /* test build (spp/test_hooks.c): RBX = 1 empties the idle cache */

/* Unprotect, then give the emptied block's tables back at once (spp/spp.c keeps the tables of
 * the last few emptied blocks otherwise): the merge back to a 2 MiB leaf happens now. */
static int64_t unprot_merge(volatile void *page)
{
	int64_t s = unprot(page, 1);
	struct tessel_hc_out o = { 0, 0, 0 };
	int64_t t = tessel_vmcall(HC_TEST_TABLE_MEM, 1, 0, 0, 0, &o);
	return s ? s : t;
}

static unsigned leaf_level(uint64_t gpa)
{
	struct tessel_hc_out o = { 0, 0, 0 };
	int64_t s = tessel_vmcall(HC_TEST_EPT_LEAF, gpa, 0, 0, 0, &o);
	return s ? 0 : (unsigned)o.rcx;
}

static void run_ap(void *arg)
{
	(void)arg;
	ps.started = 1;
	uint64_t n = 0;
	while (!ps.stop) {
		unsigned b = (unsigned)(n & 1), fp = (unsigned)((n >> 1) % FN_PAGES) * 8;
		uint8_t *base = ps.blk + (uint64_t)b * 0x200000u;
		uint64_t (*fn)(uint64_t) = (uint64_t (*)(uint64_t))(void *)(base + (uint64_t)fp * PAGE + FN_OFF);
		if (fn(n) != n + 0x5a)
			ps.bad_ret++;
		volatile uint64_t *d = (volatile uint64_t *)(base + (uint64_t)((n * 7) % 512) * PAGE + DATA_OFF);
		*d = n ^ 0xa5a5a5a5a5a5a5a5ull;
		if (*d != (n ^ 0xa5a5a5a5a5a5a5a5ull))
			ps.bad_data++;
		ps.iters = ++n;
	}
	ps.done = 1;
}

static void churn(void)
{
	EFI_PHYSICAL_ADDRESS a = 0;
	int ap = ap_index();
	/* Loader code: executable whatever the firmware's NX policy for data. 6 MiB give two
	 * aligned 2 MiB blocks. */
	if (ap < 0 || EFI_ERROR(uefi_call_wrapper(BS->AllocatePages, 4, AllocateAnyPages, EfiLoaderCode, 1536, &a))) {
		sskip("no AP or no memory", "split/merge churn");
		sskip("no AP or no memory", "AP ran throughout");
		sskip("no AP or no memory", "AP results");
		return;
	}
	ps.blk = (uint8_t *)(uintptr_t)((a + 0x1fffffull) & ~0x1fffffull);
	for (unsigned b = 0; b < 2; b++)
		for (unsigned p = 0; p < FN_PAGES; p++)
			mem_copy(ps.blk + (uint64_t)b * 0x200000u + (uint64_t)p * 8 * PAGE + FN_OFF, fn_code,
				 sizeof(fn_code));
	/* Start from large leaves: a protect/unprotect merges a block that is split. */
	for (unsigned b = 0; b < 2; b++) {
		uint8_t *pg = ps.blk + (uint64_t)b * 0x200000u;
		set1(pg, ~3u, 0);
		unprot_merge(pg);
	}
	tap_diag("blocks at %llx: EPT leaf levels %u and %u", (unsigned long long)gpa_of(ps.blk),
		 leaf_level(gpa_of(ps.blk)), leaf_level(gpa_of(ps.blk) + 0x200000u));

	if (ap_start((unsigned)ap, run_ap, NULL) != EFI_SUCCESS) {
		sskip("could not start the AP", "split/merge churn");
		sskip("could not start the AP", "AP ran throughout");
		sskip("could not start the AP", "AP results");
		return;
	}
	for (uint64_t spin = 0; !ps.started && spin < 100000000ull; spin++)
		cpu_relax();
	struct stats s0, s1;
	stats_get(&s0);
	unsigned ok = 0, split = 0, merged = 0, progressed = 0;
	for (unsigned r = 0; r < ROUNDS; r++) {
		uint8_t *pg = ps.blk + (uint64_t)(r & 1) * 0x200000u + (uint64_t)((r * 37u) % 512) * PAGE;
		uint64_t it = ps.iters;
		int64_t s1s = set1(pg, ~3u, 0);
		split += leaf_level(gpa_of(pg)) == 1;
		int64_t s2s = unprot_merge(pg);
		merged += leaf_level(gpa_of(pg)) == 2;
		ok += s1s == 0 && s2s == 0;
		/* Let the AP run some more in the block before the next change. */
		for (uint64_t spin = 0; ps.iters < it + 4 && spin < 20000000ull; spin++)
			cpu_relax();
		progressed += ps.iters >= it + 4;
	}
	stats_get(&s1);
	ps.stop = 1;
	ap_wait(5000);
	sok(ok == ROUNDS && split == ROUNDS && merged == ROUNDS,
	    "%u rounds: %u protect/unprotect pairs returned 0, %u protects split the 2 MiB leaf, %u unprotects merged "
	    "it back", ROUNDS, ok, split, merged);
	sok(ps.started && ps.done && progressed == ROUNDS,
	    "the AP executed and wrote in the blocks throughout (%u of %u rounds saw it progress, %llu iterations, %s)",
	    progressed, ROUNDS, (unsigned long long)ps.iters, ps.done ? "finished" : "did not finish");
	sok(ps.bad_ret == 0 && ps.bad_data == 0,
	    "every call returned its value and every write read back (%llu wrong returns, %llu lost writes)",
	    (unsigned long long)ps.bad_ret, (unsigned long long)ps.bad_data);
	tap_diag("EPT violations during the churn: %llu", (unsigned long long)sdelta(&s0, &s1, TESSEL_STAT_EPT_VIOLATIONS));
}

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *st)
{
	spp_start(image, st, POINTS);
	struct hostile_guard g;
	hostile_guard_setup(&g);
	suite_begin("hostile-pschange", 3);
	churn();
	suite_end();
	hostile_postcheck(&g, "EPT split/merge churn under a running vCPU");
	guest_finish();
}
