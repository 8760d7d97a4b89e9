/*
 * hostile_churn.c: protect/unprotect churn across many 2 MiB blocks must not use up the
 * hypervisor's heap (issue 9 item m, issue 12). Before table memory was given back, every
 * block ever protected kept an EPT table (and with hardware SPP an SPPT leaf table) for good,
 * so a guest cycling protection over its memory ended in -ENOMEM for every later SET.
 *
 * The group boots the test build (build/tessel-test.efi) with a small heap=. The program
 *   1. protects one page in each of nb 2 MiB blocks of a fresh buffer (as large as the guest
 *      can allocate, up to NB_MAX: with 2 GiB of RAM, more blocks than a heap=8 could keep
 *      tables for in hardware mode, where each costs an EPT and an SPPT leaf table) and
 *      unprotects it again, block after block, ROUNDS times: every call must succeed;
 *   2. reads table memory with the test hook HC_TEST_TABLE_MEM (free heap pages, EPT table
 *      pages, SPPT table pages; RBX = 1 has the hook first empty the hypervisor's bounded
 *      cache of recently emptied blocks) and HC_STATS sppt_pages before and after: back at
 *      the starting level;
 *   3. protects SPREAD pages in each of SB blocks (memory must grow: the check can fail),
 *      checks a protected write is denied, then unprotects everything with whole-block calls:
 *      back at the starting level, and the formerly protected bytes are writable;
 *   4. ends with the common hostile post-checks (hostile.h).
 * Without the test build the hook answers -ENOSYS and the memory points fail.
 */
#include "hostile.h"

#define HC_TEST_TABLE_MEM 0x7e01u
#define NB_MAX 960 /* blocks churned: as many as the guest can allocate, up to this */
#define ROUNDS 3
#define SB 24      /* blocks protected at once */
#define SPREAD 4   /* pages per block */
#define POINTS (7 + HOSTILE_POSTCHECK_POINTS)

struct tmem { int64_t st; uint64_t free, ept, sppt, stat_sppt; };

static void tmem_get(struct tmem *m)
{
	struct tessel_hc_out o = { 0, 0, 0 };
	struct stats s;
	/* RBX = 1: the hook first empties the idle-block cache (the reclamation hysteresis keeps
	 * up to SPP_IDLE_BLOCKS recently emptied blocks' tables), so the counts compare what
	 * live protection holds. */
	m->st = tessel_vmcall(HC_TEST_TABLE_MEM, 1, 0, 0, 0, &o);
	m->free = o.rbx;
	m->ept = o.rcx;
	m->sppt = o.rdx;
	m->stat_sppt = stats_get(&s) == 0 ? s.v[TESSEL_STAT_SPPT_PAGES] : ~0ull;
}

static void tmem_diag(const char *when, const struct tmem *m)
{
	tap_diag("%s: hook %lld, %llu heap pages free, %llu EPT table pages, %llu SPPT table pages "
		 "(HC_STATS sppt_pages %llu)", when, (long long)m->st, (unsigned long long)m->free,
		 (unsigned long long)m->ept, (unsigned long long)m->sppt, (unsigned long long)m->stat_sppt);
}

static int tmem_same(const struct tmem *a, const struct tmem *b)
{
	return a->st == 0 && b->st == 0 && a->free == b->free && a->ept == b->ept && a->sppt == b->sppt &&
	       a->stat_sppt == b->stat_sppt;
}

/* One SET of the whole 2 MiB block at p, every page unprotected. */
static int64_t unprot_block(uint8_t *p)
{
	static uint32_t *maps;
	if (!maps) {
		maps = spp_pages(1);
		if (!maps)
			return -1;
		for (unsigned i = 0; i < 512; i++)
			maps[i] = TESSEL_SPP_ALL_WRITABLE;
	}
	return tessel_spp_set(gfn_of(p), 512, gpa_of(maps), 0);
}

static uint8_t *page_in(uint8_t *base, unsigned block, unsigned k)
{
	return base + (uint64_t)block * 0x200000ull + (uint64_t)((block * 37u + k * 101u) % 512u) * PAGE;
}

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *st)
{
	struct hostile_guard g;
	struct tmem t0, t1, t2, t3;
	EFI_PHYSICAL_ADDRESS a = 0;

	spp_start(image, st, POINTS);
	hostile_guard_setup(&g);
	unsigned NB = NB_MAX;
	while (NB >= SB && EFI_ERROR(uefi_call_wrapper(BS->AllocatePages, 4, AllocateAnyPages, EfiBootServicesData,
						       (UINTN)(NB + 1) * 512, &a)))
		NB -= NB / 8;
	if (NB < SB)
		tap_bail("cannot allocate %u MiB for the churn", (SB + 1) * 2);
	uint8_t *base = (uint8_t *)(uintptr_t)((a + 0x1fffffull) & ~0x1fffffull);
	tap_diag("churn buffer at 0x%llx: %u blocks x %u rounds; guard SET %lld", (unsigned long long)gpa_of(base),
		 NB, ROUNDS, (long long)g.set_status);

	tmem_get(&t0);
	tmem_diag("start", &t0);
	tap_diag("without reclamation the churn would keep %u table pages (%s mode), %s the %llu free at the start",
		 spp.hw ? 2 * NB : NB, spp_mode(), (spp.hw ? 2 * NB : NB) > t0.free ? "more than" : "fewer than",
		 (unsigned long long)t0.free);
	unsigned calls = 0, bad = 0;
	int64_t first_bad = 0;
	for (unsigned r = 0; r < ROUNDS; r++)
		for (unsigned b = 0; b < NB; b++) {
			uint8_t *p = page_in(base, b, r);
			int64_t s1 = set1(p, 0xffff0000u, 0), s2 = set1(p, TESSEL_SPP_ALL_WRITABLE, 0);
			calls += 2;
			if (s1 || s2) {
				if (!bad++)
					first_bad = s1 ? s1 : s2;
			}
		}
	tap_ok(bad == 0, "%u SET calls over %u blocks (protect, unprotect) all succeed (%u failed, first %lld)",
	       calls, NB, bad, (long long)first_bad);
	tmem_get(&t1);
	tmem_diag("after churn", &t1);
	tap_ok(t0.st == 0 && t1.st == 0 && t1.free == t0.free,
	       "after the churn the heap has as many free pages as at the start (%llu, %llu)",
	       (unsigned long long)t0.free, (unsigned long long)t1.free);
	tap_ok(tmem_same(&t0, &t1), "after the churn EPT and SPPT table pages and HC_STATS sppt_pages are at their "
	       "starting level");

	/* Many blocks protected at once: memory grows, protection holds, then all returns. */
	unsigned sbad = 0;
	for (unsigned b = 0; b < SB; b++)
		for (unsigned k = 0; k < SPREAD; k++) {
			uint8_t *p = page_in(base, b, k);
			p[0] = 0x11;
			if (set1(p, 0xfffffffeu, 0)) /* bytes 0..127 protected */
				sbad++;
		}
	tmem_get(&t2);
	tmem_diag("with protection", &t2);
	uint8_t *q = page_in(base, SB - 1, SPREAD - 1);
	probe_store(q, 0x22, 1);
	tap_ok(sbad == 0 && t2.st == 0 && t2.free < t0.free && q[0] == 0x11,
	       "%u pages over %u blocks protected (%u failed): tables in use (%llu heap pages), a protected write "
	       "is denied", SB * SPREAD, SB, sbad, (unsigned long long)(t0.free - t2.free));
	unsigned ubad = 0;
	for (unsigned b = 0; b < SB; b++)
		if (unprot_block(base + (uint64_t)b * 0x200000ull))
			ubad++;
	tmem_get(&t3);
	tmem_diag("after unprotecting", &t3);
	tap_ok(ubad == 0 && t3.free == t0.free, "after unprotecting every block (%u failed) the heap is back at its "
	       "starting level (%llu, %llu)", ubad, (unsigned long long)t0.free, (unsigned long long)t3.free);
	tap_ok(tmem_same(&t0, &t3), "EPT and SPPT table pages and HC_STATS sppt_pages are back at their starting level");
	probe_store(q, 0x33, 1);
	tap_ok(q[0] == 0x33, "the formerly protected byte is writable again (0x%02x)", q[0]);

	hostile_postcheck(&g, "protect/unprotect churn");
	guest_finish();
}
