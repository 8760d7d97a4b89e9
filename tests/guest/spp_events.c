/*
 * spp_events.c: the event ring and the notification vector (ABI.md 3, 5), and TRACK (4.3).
 * Entry contents (gpa of the first protected byte, RIP of the writing instruction, vCPU APIC
 * ID, kind, bytes), the full-ring rule (dropped counts, nothing is overwritten), consumption
 * through tail, turning reporting off, replacing the ring, one vector invocation per event.
 * Every probe write is preceded by INVLPG (docs/SPP.md section 10, bug 1). Built alone as
 * spp_events.efi, or included by spp_all.c.
 */
#include "spp_util.h"

#define SPP_EVENTS_POINTS 21
#define EV_MASK (~((1u << 5) | (1u << 6))) /* bytes 640..895 protected */
#define EV_VECTOR 0xf0

static struct {
	uint8_t *e, *k;
	struct tessel_ring *r1, *r2;
} evs;

/* Checks the k-th pending event; "" if it matches. */
static const char *ev_check(struct tessel_ring *r, uint32_t k, unsigned kind, uint64_t gpa, uint64_t rip,
			    unsigned bytes, char *buf, unsigned size)
{
	if (ev_pending(r) <= k) {
		fmt_snprintf(buf, size, "only %u events", ev_pending(r));
		return buf;
	}
	struct tessel_event *e = ev_at(r, k);
	if (e->kind == kind && e->gpa == gpa && e->rip == rip && e->vcpu == spp.apic_id &&
	    (e->gla == gpa || e->gla == 0) && e->bytes == bytes)
		return "";
	char ev[160];
	ev_fmt(ev, sizeof(ev), e);
	fmt_snprintf(buf, size, "got %s, expected %s gpa 0x%llx rip 0x%llx vcpu %u bytes %u", ev, ev_kind(kind),
		     (unsigned long long)gpa, (unsigned long long)rip, spp.apic_id, bytes);
	return buf;
}

static void events_entries(void)
{
	char b[300];
	uint8_t *e = evs.e;
	int64_t s = ev_setup(evs.r1, 1, 0);
	sok(s == 0 && evs.r1->capacity == TESSEL_RING_CAPACITY(1) && evs.r1->head == evs.r1->tail &&
		    evs.r1->dropped == 0,
	    "HC_EVENTS_SETUP of a 1-page ring: status %lld, capacity %u (expected %u), head %u tail %u", (long long)s,
	    evs.r1->capacity, TESSEL_RING_CAPACITY(1), evs.r1->head, evs.r1->tail);

	uint8_t old = e[645];
	uint64_t rip = probe_store(e + 645, (uint8_t)~old, 1);
	const char *w = ev_check(evs.r1, 0, TESSEL_EV_DENIED, gpa_of(e + 645), rip, 1, b, sizeof(b));
	sok(!*w && e[645] == old && ev_pending(evs.r1) == 1, "1-byte denied write: memory kept, one DENIED event with "
							      "gpa, rip, gla, vcpu, bytes = 1%s%s",
	    *w ? ": " : "", w);
	ev_drain(evs.r1);

	uint32_t old4 = *(volatile uint32_t *)(e + 700);
	rip = probe_store(e + 700, ~old4, 4);
	w = ev_check(evs.r1, 0, TESSEL_EV_DENIED, gpa_of(e + 700), rip, 4, b, sizeof(b));
	sok(!*w && *(volatile uint32_t *)(e + 700) == old4 && ev_pending(evs.r1) == 1,
	    "4-byte denied write: one DENIED event, bytes = 4%s%s", *w ? ": " : "", w);
	ev_drain(evs.r1);

	if (spp.sw) {
		rip = probe_store(e + 636, 0x1111111111111111ull, 8); /* 636..639 writable, 640..643 protected */
		w = ev_check(evs.r1, 0, TESSEL_EV_DENIED, gpa_of(e + 640), rip, 4, b, sizeof(b));
		sok(!*w && e[636] == 0x11 && e[639] == 0x11 && e[640] == pat_byte(640, 0x17),
		    "software mode: straddling write: 4 writable bytes land, event gpa = first protected byte, "
		    "bytes = 4%s%s",
		    *w ? ": " : "", w);
	} else {
		tap_diag("hardware mode: a write starting in a writable sub-page is decided by the processor on its "
			 "first byte (ABI.md 4.2); the straddling-event check is for software mode");
		sskip("hardware mode", "straddling write reports the first protected byte");
	}
	ev_drain(evs.r1);

	probe_store(e + 100, 0x4242, 2);
	sok(ev_pending(evs.r1) == 0 && e[100] == 0x42 && e[101] == 0x42,
	    "a write to a writable sub-page of the page lands and reports nothing (%u events)", ev_pending(evs.r1));

	struct stats a, c;
	stats_get(&a);
	uint32_t h0 = evs.r1->head;
	for (int i = 0; i < 3; i++)
		probe_store(e + 800 + i, 0, 1);
	stats_get(&c);
	sok(sdelta(&a, &c, TESSEL_STAT_SPP_DENIED) == 3 && evs.r1->head - h0 == 3,
	    "3 denied writes: spp_denied +%llu, head +%u (expected 3, 3)",
	    (unsigned long long)sdelta(&a, &c, TESSEL_STAT_SPP_DENIED), evs.r1->head - h0);
	ev_drain(evs.r1);
}

static void events_full(void)
{
	uint8_t *e = evs.e;
	struct tessel_ring *r = evs.r1;
	uint32_t cap = r->capacity, t0 = r->tail;
	uint64_t d0 = r->dropped;
	struct stats a, c;
	stats_get(&a);
	for (unsigned i = 0; i < cap + 5; i++)
		probe_store(e + 640 + i, 0, 1);
	stats_get(&c);
	sok(r->head - r->tail == cap && r->dropped - d0 == 5,
	    "%u denied writes into a %u-entry ring: ring full (head - tail = %u), dropped +%llu (expected 5)", cap + 5, cap,
	    r->head - r->tail, (unsigned long long)(r->dropped - d0));
	unsigned bad = 0;
	for (uint32_t k = 0; k < cap; k++)
		bad += ev_at(r, k)->gpa != gpa_of(e + 640 + k) || ev_at(r, k)->kind != TESSEL_EV_DENIED;
	sok(bad == 0, "a full ring is not overwritten: entries hold the first %u events in order (%u wrong)", cap, bad);
	sok(sdelta(&a, &c, TESSEL_STAT_EVENTS_DROPPED) == 5, "HC_STATS events_dropped +%llu (expected 5)",
	    (unsigned long long)sdelta(&a, &c, TESSEL_STAT_EVENTS_DROPPED));
	/* consume 10 entries: room for 10 */
	r->tail = t0 + 10;
	uint32_t h = r->head;
	for (unsigned i = 0; i < 3; i++)
		probe_store(e + 880 + i, 0, 1);
	bad = 0;
	for (unsigned i = 0; i < 3; i++)
		bad += r->entries[(h + i) % cap].gpa != gpa_of(e + 880 + i);
	sok(r->head - h == 3 && r->dropped - d0 == 5 && bad == 0,
	    "after consuming 10 entries (tail += 10) 3 new events are written (head +%u, dropped +%llu, %u wrong)",
	    r->head - h, (unsigned long long)(r->dropped - d0), bad);
	ev_drain(r);
}

static void events_off_replace(void)
{
	char b[300];
	uint8_t *e = evs.e;
	struct tessel_ring *r = evs.r1;
	int64_t s = tessel_events_setup(0, 0, 0);
	uint32_t h = r->head;
	struct stats a, c;
	stats_get(&a);
	probe_store(e + 650, 0, 1);
	stats_get(&c);
	sok(s == 0 && r->head == h && e[650] == pat_byte(650, 0x17) && sdelta(&a, &c, TESSEL_STAT_SPP_DENIED) == 1,
	    "RBX=0,RCX=0 turns reporting off (status %lld): no entry, write still denied and counted", (long long)s);
	s = ev_setup(evs.r2, 4, 0);
	uint64_t rip = probe_store(e + 651, 0, 1);
	const char *w = ev_check(evs.r2, 0, TESSEL_EV_DENIED, gpa_of(e + 651), rip, 1, b, sizeof(b));
	sok(s == 0 && evs.r2->capacity == TESSEL_RING_CAPACITY(4) && !*w && r->head == h,
	    "a new 4-page ring (capacity %u) replaces the old one: the event goes only to it (status %lld)%s%s",
	    evs.r2->capacity, (long long)s, *w ? ": " : "", w);
	ev_drain(evs.r2);
}

static void events_vector(void)
{
	char b[300];
	uint8_t *e = evs.e;
	struct tessel_ring *r = evs.r2;
	vec_install(EV_VECTOR);
	__asm__ __volatile__("sti" ::: "memory");
	spp_vec_hits = 0;
	int64_t s = tessel_events_setup(gpa_of(r), 4, EV_VECTOR);
	ev_drain(r);
	uint64_t rip = probe_store(e + 660, 0, 1);
	uint64_t hits = vec_wait(1, 100000);
	const char *w = ev_check(r, 0, TESSEL_EV_DENIED, gpa_of(e + 660), rip, 1, b, sizeof(b));
	sok(s == 0 && hits == 1 && !*w, "vector 0x%x: a denied write invokes the handler once (%llu) after writing the "
					"entry (status %lld)%s%s",
	    EV_VECTOR, (unsigned long long)hits, (long long)s, *w ? ": " : "", w);
	ev_drain(r);
	for (int i = 0; i < 5; i++)
		probe_store(e + 661 + i, 0, 1);
	hits = vec_wait(6, 100000);
	vec_wait(1000, 20000); /* give a spurious extra invocation time to show up */
	hits = spp_vec_hits;
	sok(hits == 6 && ev_pending(r) == 5, "5 more denied writes: 5 more invocations (total %llu, expected 6), %u events",
	    (unsigned long long)hits, ev_pending(r));
	ev_drain(r);
	probe_store(e + 10, 0x33, 1);
	vec_wait(1000, 20000);
	sok(spp_vec_hits == 6 && ev_pending(r) == 0, "a writable write invokes nothing (hits %llu)",
	    (unsigned long long)spp_vec_hits);

	/* TRACK: sub-page 2 of page k */
	uint8_t *k = evs.k;
	pat_fill(k, PAGE, 0x44);
	struct stats a, c;
	uint32_t m = 0;
	s = set1(k, ~(1u << 2), TESSEL_SPP_TRACK);
	int64_t g = get1(k, &m);
	stats_get(&a);
	uint64_t h0 = spp_vec_hits;
	rip = probe_store(k + 300, 0x0102030405060708ull, 8);
	vec_wait(h0 + 1, 100000);
	w = ev_check(r, 0, TESSEL_EV_TRACKED, gpa_of(k + 300), rip, 8, b, sizeof(b));
	sok(s == 0 && g == 0 && m == ~(1u << 2) && *(volatile uint64_t *)(k + 300) == 0x0102030405060708ull && !*w,
	    "TRACK: a write to a protected sub-page lands and is reported as TRACKED (SET %lld, GET 0x%08x)%s%s",
	    (long long)s, m, *w ? ": " : "", w);
	ev_drain(r);
	rip = probe_store(k + 300, 0x1112131415161718ull, 8);
	vec_wait(h0 + 2, 100000);
	w = ev_check(r, 0, TESSEL_EV_TRACKED, gpa_of(k + 300), rip, 8, b, sizeof(b));
	sok(*(volatile uint64_t *)(k + 300) == 0x1112131415161718ull && !*w,
	    "TRACK: the next write lands and is reported again%s%s", *w ? ": " : "", w);
	ev_drain(r);
	stats_get(&c);
	vec_wait(h0 + 3, 20000);
	sok(sdelta(&a, &c, TESSEL_STAT_SPP_TRACKED) == 2 && sdelta(&a, &c, TESSEL_STAT_SPP_DENIED) == 0 &&
		    spp_vec_hits - h0 == 2,
	    "TRACK: spp_tracked +%llu, spp_denied +%llu, vector invoked %llu times (expected 2, 0, 2)",
	    (unsigned long long)sdelta(&a, &c, TESSEL_STAT_SPP_TRACKED),
	    (unsigned long long)sdelta(&a, &c, TESSEL_STAT_SPP_DENIED), (unsigned long long)(spp_vec_hits - h0));

	/* vector 0: events without interrupts */
	s = tessel_events_setup(gpa_of(r), 4, 0);
	ev_drain(r);
	h0 = spp_vec_hits;
	probe_store(e + 670, 0, 1);
	vec_wait(h0 + 1, 20000);
	sok(s == 0 && spp_vec_hits == h0 && ev_pending(r) == 1,
	    "with vector 0 an event is written but no interrupt is injected (hits +%llu, %u events)",
	    (unsigned long long)(spp_vec_hits - h0), ev_pending(r));
	ev_drain(r);
	int64_t v32 = tessel_events_setup(gpa_of(r), 4, 32), v255 = tessel_events_setup(gpa_of(r), 4, 255);
	sok(v32 == 0 && v255 == 0, "vectors 32 and 255 are accepted (%lld, %lld)", (long long)v32, (long long)v255);
	vec_remove();
}

static void suite_events(void)
{
	suite_begin("events", SPP_EVENTS_POINTS);
	evs.e = spp_pages(1);
	evs.k = spp_pages(1);
	evs.r1 = spp_pages(1);
	evs.r2 = spp_pages(4);
	if (!evs.e || !evs.k || !evs.r1 || !evs.r2) {
		suite_end();
		return;
	}
	pat_fill(evs.e, PAGE, 0x17);
	int64_t s = set1(evs.e, EV_MASK, 0);
	if (s)
		tap_diag("SET failed: %lld", (long long)s);
	events_entries();
	events_full();
	events_off_replace();
	events_vector();
	int64_t off = tessel_events_setup(0, 0, 0);
	int64_t u = unprot(evs.e, 1) | unprot(evs.k, 1);
	sok(off == 0 && u == 0, "cleanup: reporting off (%lld), protection removed (%lld)", (long long)off, (long long)u);
	suite_end();
}

#ifndef SPP_ALL
EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *st)
{
	spp_start(image, st, SPP_EVENTS_POINTS);
	suite_events();
	guest_finish();
}
#endif
