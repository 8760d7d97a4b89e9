/* hostile.c: see hostile.h. */
#include "hostile.h"

#define GUARD_MASK 0x55555555u /* even sub-pages writable, odd ones protected */

int hostile_guard_setup(struct hostile_guard *g)
{
	g->page = spp_pages(1);
	if (!g->page) {
		g->set_status = -1;
		return -1;
	}
	pat_fill(g->page, PAGE, 0x5a);
	mem_copy(g->before, (const void *)g->page, PAGE);
	g->set_status = set1(g->page, GUARD_MASK, 0);
	return g->set_status ? -1 : 0;
}

struct nop_result { volatile int64_t status; volatile int ran; };

static void nop_on_ap(void *arg)
{
	struct nop_result *r = arg;
	r->status = tessel_hc0(HC_NOP);
	r->ran = 1;
}

int hostile_postcheck(struct hostile_guard *g, const char *what)
{
	int failed = 0;
	int64_t s = tessel_hc0(HC_NOP);
	failed += !tap_ok(s == 0, "after %s: the BSP answers HC_NOP (status %lld)", what, (long long)s);

	unsigned n = mp_count(), bsp = mp_bsp(), answered = 0, aps = 0;
	for (unsigned i = 0; i < n; i++) {
		if (i == bsp)
			continue;
		aps++;
		struct nop_result r = { -1, 0 };
		EFI_STATUS st = mp_run_on(i, nop_on_ap, &r, 2000000);
		if (st == EFI_SUCCESS && r.ran && r.status == 0)
			answered++;
		else
			tap_diag("cpu %u: EFI status %llx, ran %d, HC_NOP %lld", i, (unsigned long long)st, r.ran,
				 (long long)r.status);
	}
	if (aps == 0)
		tap_diag("MP services report %u enabled processor(s) (BSP index %u): no AP to ask", n, bsp);
	failed += !tap_ok(aps > 0 && answered == aps, "after %s: every AP answers HC_NOP (%u of %u)", what,
			  answered, aps);

	uint64_t base = 0, size = 0;
	unsigned bad = 0, sampled = 0;
	if (hv_region(&base, &size)) {
		const volatile uint8_t *r = (const volatile uint8_t *)(uintptr_t)base;
		for (uint64_t off = 0; off < size; off += 4096 * 7 + 64, sampled++)
			if (r[off] != 0xff || r[size - 1 - (off % size)] != 0xff)
				bad++;
	}
	failed += !tap_ok(sampled > 0 && bad == 0, "after %s: the hypervisor region still reads 0xFF (%u of %u samples bad)",
			  what, bad, sampled);

	unsigned kept = 0, landed = 0;
	if (g && g->page && !g->set_status) {
		for (unsigned i = 0; i < PAGE; i += 8)
			probe_store(g->page + i, 0xeeeeeeeeeeeeeeeeull, 8);
		kept = 1;
		landed = 1;
		for (unsigned i = 0; i < PAGE; i++) {
			int prot = (GUARD_MASK >> (i / SUB)) & 1 ? 0 : 1;
			if (prot && g->page[i] != g->before[i])
				kept = 0;
			if (!prot && g->page[i] != 0xee)
				landed = 0;
		}
	}
	failed += !tap_ok(kept && landed, "after %s: protected bytes of the guard page unchanged, writable ones written "
			  "(SET %lld, kept %u, landed %u)", what, g ? (long long)g->set_status : -1LL, kept, landed);
	return failed;
}
