/*
 * spp_smp.c: protection changes on one vCPU against writes on another (ABI.md 2: "when
 * SPP_SET returns, the new permissions are in force on every vCPU"; 4.5). The BSP protects
 * and unprotects sub-page 3 of a page in a loop; the AP writes it (and a writable sub-page)
 * and reads it back in a loop, INVLPG before every write. Phases (mod 4):
 *   0 unprotected (SET 0xFFFFFFFF returned)  1 BSP is protecting
 *   2 protected (SET returned)               3 BSP is unprotecting
 * An AP sample counts only if the phase was the same before and after it, so a sample in
 * phase 2 ran wholly while the protection was in force: the protected bytes must read what
 * the BSP read right after SET returned. The BSP reads them too during phase 2. Events caused
 * by the AP must carry the AP's APIC ID. Built alone as spp_smp.efi, or included by spp_all.c.
 */
#include "spp_util.h"

#define SPP_SMP_POINTS 8
#define SMP_PHASES 40 /* 10 protected phases */
#define SMP_MASK (~(1u << 3)) /* bytes 384..511 protected */
#define SMP_X 400u            /* protected target */
#define SMP_Y 1024u           /* writable target */

static struct smp_shared {
	volatile uint64_t phase, stop, started, done, iters;
	volatile uint64_t expect; /* protected bytes at the start of the current phase 2 */
	volatile uint64_t prot_samples, prot_changed, unprot_samples, unprot_lost, y_lost, get_samples, get_bad;
	volatile uint32_t apic;
	uint8_t *page;
	uint32_t *map; /* the AP's GET buffer */
} sm;

static void smp_ap(void *arg)
{
	(void)arg;
	sm.apic = cpu_apic_id();
	sm.started = 1;
	volatile uint8_t *p = sm.page;
	uint64_t n = 0;
	while (!sm.stop) {
		uint64_t ph = sm.phase;
		__asm__ __volatile__("" ::: "memory");
		uint64_t ex = sm.expect;
		uint64_t v = 0xa000000000000000ull | (ph << 20) | (n & 0xfffff);
		probe_store(p + SMP_X, v, 8);
		uint64_t got = *(volatile uint64_t *)(p + SMP_X);
		int get_ok = 1;
		if ((ph & 3) == 2) {
			sm.map[0] = 0;
			get_ok = tessel_spp_get(gfn_of(p), 1, gpa_of(sm.map)) == 0 && sm.map[0] == SMP_MASK;
		}
		probe_store(p + SMP_Y, v, 8);
		if (*(volatile uint64_t *)(p + SMP_Y) != v)
			sm.y_lost++;
		__asm__ __volatile__("" ::: "memory");
		if (sm.phase == ph) {
			if ((ph & 3) == 2) {
				sm.prot_samples++;
				if (got != ex)
					sm.prot_changed++;
				sm.get_samples++;
				if (!get_ok)
					sm.get_bad++;
			} else if ((ph & 3) == 0) {
				sm.unprot_samples++;
				if (got != v)
					sm.unprot_lost++;
			}
		}
		sm.iters = ++n;
	}
	sm.done = 1;
}

/* Waits for the AP to make `k` more iterations; the BSP reads the protected bytes meanwhile
 * when `watch` (returns the number of reads that saw them changed). */
static uint64_t smp_progress(uint64_t k, int watch, uint64_t expect, int *stalled)
{
	uint64_t start = sm.iters, changed = 0;
	for (uint64_t spin = 0; sm.iters < start + k; spin++) {
		if (watch && *(volatile uint64_t *)(sm.page + SMP_X) != expect)
			changed++;
		if (spin > 50000000ull) {
			*stalled = 1;
			break;
		}
		cpu_relax();
	}
	return changed;
}

static void suite_smp(void)
{
	suite_begin("smp", SPP_SMP_POINTS);
	int ap = ap_index();
	struct tessel_ring *ring = spp_pages(4);
	sm.page = spp_pages(1);
	sm.map = spp_pages(1);
	if (ap < 0 || !ring || !sm.page || !sm.map) {
		tap_diag("no AP (%d processors) or out of memory", (int)mp_count());
		suite_end();
		return;
	}
	uint32_t ap_apic = mp_apic_id((unsigned)ap);
	pat_fill(sm.page, PAGE, 0x99);
	int64_t es = ev_setup(ring, 4, 0);
	EFI_STATUS st = ap_start((unsigned)ap, smp_ap, NULL);
	for (uint64_t spin = 0; !sm.started && spin < 100000000ull && !EFI_ERROR(st); spin++)
		cpu_relax();
	if (!sok(!EFI_ERROR(st) && sm.started && es == 0,
		 "the writer runs on AP #%d (APIC ID %u) while the BSP goes on (StartupThisAP %lx, ring %lld)", ap, ap_apic,
		 (unsigned long)st, (long long)es)) {
		sm.stop = 1;
		tessel_events_setup(0, 0, 0);
		suite_end();
		return;
	}
	int stalled = 0;
	uint64_t bsp_changed = 0, set_bad = 0;
	int64_t last_bad = 0;
	for (unsigned k = 0; k < SMP_PHASES / 4 && !stalled; k++) {
		smp_progress(3, 0, 0, &stalled);
		sm.phase++; /* 1: protecting */
		int64_t s = set1(sm.page, SMP_MASK, 0);
		if (s)
			set_bad++, last_bad = s;
		uint64_t ex = *(volatile uint64_t *)(sm.page + SMP_X);
		sm.expect = ex;
		__asm__ __volatile__("" ::: "memory");
		sm.phase++; /* 2: protected */
		bsp_changed += smp_progress(4, 1, ex, &stalled);
		sm.phase++; /* 3: unprotecting */
		s = set1(sm.page, TESSEL_SPP_ALL_WRITABLE, 0);
		if (s)
			set_bad++, last_bad = s;
		sm.phase++; /* 0: unprotected */
	}
	smp_progress(3, 0, 0, &stalled);
	sm.stop = 1;
	for (uint64_t spin = 0; !sm.done && spin < 100000000ull; spin++)
		cpu_relax();
	int fw_done = ap_wait(5000);
	tap_diag("AP: %llu iterations, %llu protected samples, %llu unprotected samples; stalled %d",
		 (unsigned long long)sm.iters, (unsigned long long)sm.prot_samples, (unsigned long long)sm.unprot_samples,
		 stalled);
	sok(set_bad == 0 && !stalled, "%u phases: every SET returned 0 (%llu failed, last %lld), the AP kept running",
	    SMP_PHASES, (unsigned long long)set_bad, (long long)last_bad);
	sok(sm.prot_samples > 0 && sm.prot_changed == 0,
	    "AP: in protected phases its writes never changed the protected bytes (%llu of %llu samples did)",
	    (unsigned long long)sm.prot_changed, (unsigned long long)sm.prot_samples);
	sok(bsp_changed == 0, "BSP: in protected phases the protected bytes never changed under its reads (%llu reads did)",
	    (unsigned long long)bsp_changed);
	sok(sm.unprot_samples > 0 && sm.unprot_lost == 0 && sm.y_lost == 0,
	    "AP: writes in unprotected phases land (%llu of %llu lost), writable sub-page writes always land (%llu lost)",
	    (unsigned long long)sm.unprot_lost, (unsigned long long)sm.unprot_samples, (unsigned long long)sm.y_lost);
	sok(sm.get_samples > 0 && sm.get_bad == 0, "AP: HC_SPP_GET from the AP sees the BSP's map (%llu of %llu wrong)",
	    (unsigned long long)sm.get_bad, (unsigned long long)sm.get_samples);
	uint32_t n = ev_pending(ring), wrong = 0;
	if (n > ring->capacity)
		n = ring->capacity;
	for (uint32_t i = 0; i < n; i++) {
		struct tessel_event *e = ev_at(ring, i);
		wrong += e->vcpu != ap_apic || e->kind != TESSEL_EV_DENIED || e->gpa != gpa_of(sm.page + SMP_X);
	}
	sok(n > 0 && wrong == 0 && sm.apic == ap_apic,
	    "events caused by the AP name its APIC ID %u (%u events, %u wrong; AP CPUID says %u)", ap_apic, n, wrong,
	    sm.apic);
	int64_t off = tessel_events_setup(0, 0, 0), u = unprot(sm.page, 1);
	sok(sm.done && fw_done && off == 0 && u == 0,
	    "the AP finished (flag %d, firmware %d); cleanup (reporting off %lld, unprotect %lld)", (int)sm.done, fw_done,
	    (long long)off, (long long)u);
	suite_end();
}

#ifndef SPP_ALL
EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *st)
{
	spp_start(image, st, SPP_SMP_POINTS);
	suite_smp();
	guest_finish();
}
#endif
