/*
 * Byte-precise protection (ABI 1.4, HC_SPP_PROTECT_BYTES), written against ABI.md: the bytes
 * asked are write-protected, the other bytes of their 128-byte sub-pages stay writable, in
 * hardware mode (the processor's SPP sends every write to those sub-pages to the hypervisor,
 * which completes the unprotected bytes) and in software mode alike.
 *
 * Every probe is one MOV after INVLPG of its page (spp_util.h: Bochs 2.7 caches a page as
 * writable after one SPP-allowed write, docs/SPP.md section 10), every probe starts in a
 * protected sub-page (so the processor never decides a straddling write on its own), and
 * every outcome is judged by memory contents and the events, never by the absence of a
 * fault alone.
 */
#include "spp_util.h"

#define POINTS 14

static struct tessel_ring *ring;

static int64_t pbytes(volatile void *p, uint64_t len)
{
	return tessel_spp_protect_bytes(gpa_of(p), len);
}

/* "" when the only pending event is (kind, gpa, rip, bytes) on this vCPU; drains the ring. */
static const char *one_event(unsigned kind, uint64_t gpa, uint64_t rip, unsigned bytes, char *buf, unsigned size)
{
	const char *w = "";
	if (ev_pending(ring) != 1) {
		fmt_snprintf(buf, size, "%u events pending", ev_pending(ring));
		w = buf;
	} else {
		struct tessel_event *e = ev_at(ring, 0);
		if (e->kind != kind || e->gpa != gpa || e->rip != rip || e->bytes != bytes || e->vcpu != spp.apic_id) {
			char ev[160];
			ev_fmt(ev, sizeof(ev), e);
			fmt_snprintf(buf, size, "got %s, expected %s gpa 0x%llx rip 0x%llx bytes %u", ev, ev_kind(kind),
				     (unsigned long long)gpa, (unsigned long long)rip, bytes);
			w = buf;
		}
	}
	ev_drain(ring);
	return w;
}

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *st)
{
	spp_start(image, st, POINTS);
	suite_begin("bytes", POINTS);
	uint8_t *p = spp_pages(1), *q = spp_pages(1), *t = spp_pages(1), *two = spp_pages(2), *k = spp_pages(1);
	ring = spp_pages(1);
	if (!p || !q || !t || !two || !k || !ring || !spp.ok || ev_setup(ring, 1, 0)) {
		suite_end();
		guest_finish();
	}
	char b[300];
	uint32_t m = 0;
	uint32_t version = 0, flags = 0;
	uint64_t maxp = 0;
	int64_t s = tessel_query(&version, &flags, &maxp);
	sok(s == 0 && version == 0x00010004u && (flags & TESSEL_F_SPP_BYTES),
	    "HC_QUERY: ABI 1.4 (0x%08x) with TESSEL_F_SPP_BYTES (flags 0x%x)", version, flags);

	/* Argument errors: an error, and nothing protected. */
	uint64_t hvb = 0, hvs = 0;
	int have_hv = hv_region(&hvb, &hvs);
	int64_t e0 = pbytes(p, 0), e1 = pbytes(p, TESSEL_MAX_PROTECT_BYTES + 1),
		e2 = tessel_vmcall(HC_SPP_PROTECT_BYTES, gpa_of(p), 8, 1, 0, NULL),
		e3 = tessel_vmcall(HC_SPP_PROTECT_BYTES, gpa_of(p), 8, 0, 1, NULL),
		e4 = tessel_spp_protect_bytes(~0ull - 3, 8),
		e5 = have_hv ? tessel_spp_protect_bytes(hvb + 0x100, 8) : -TESSEL_EINVAL;
	get1(p, &m);
	sok(e0 == -TESSEL_EINVAL && e1 == -TESSEL_EINVAL && e2 == -TESSEL_EINVAL && e3 == -TESSEL_EINVAL &&
		    e4 == -TESSEL_EINVAL && e5 == -TESSEL_EINVAL && m == TESSEL_SPP_ALL_WRITABLE,
	    "-EINVAL for length 0 (%lld), above the limit (%lld), RDX (%lld), RSI (%lld), a wrapping range (%lld), "
	    "the hypervisor's memory (%lld); the page stays unprotected (map 0x%08x)",
	    (long long)e0, (long long)e1, (long long)e2, (long long)e3, (long long)e4, (long long)e5, m);

	/* Bytes 0x105-0x107 and 0x300: sub-pages 2 and 6 are write-protected in the map. */
	pat_fill(p, PAGE, 0x31);
	int64_t s1 = pbytes(p + 0x105, 3), s2 = pbytes(p + 0x300, 1);
	get1(p, &m);
	sok(s1 == 0 && s2 == 0 && m == ~((1u << 2) | (1u << 6)),
	    "PROTECT_BYTES of 3 and 1 bytes: statuses %lld %lld, HC_SPP_GET shows their sub-pages protected (0x%08x)",
	    (long long)s1, (long long)s2, m);

	/* A write to other bytes of the protected sub-page lands, without an event. */
	ev_drain(ring);
	probe_store(p + 0x100, 0x44332211u, 4);
	probe_store(p + 0x108, 0x88776655u, 4);
	probe_store(p + 0x17f, 0x99, 1);
	probe_store(p + 0x301, 0xaa, 1);
	sok(*(volatile uint32_t *)(p + 0x100) == 0x44332211u && *(volatile uint32_t *)(p + 0x108) == 0x88776655u &&
		    p[0x17f] == 0x99 && p[0x301] == 0xaa && ev_pending(ring) == 0,
	    "writes to unprotected bytes of the protected sub-pages land (%08x %08x %02x %02x), %u events",
	    *(volatile uint32_t *)(p + 0x100), *(volatile uint32_t *)(p + 0x108), p[0x17f], p[0x301],
	    ev_pending(ring));

	/* A write over both: its unprotected byte lands, the protected ones keep their value. */
	uint8_t g5 = p[0x105], g6 = p[0x106], g7 = p[0x107];
	uint64_t rip = probe_store(p + 0x104, 0xddccbbaau, 4);
	const char *w = one_event(TESSEL_EV_DENIED, gpa_of(p + 0x105), rip, 3, b, sizeof(b));
	sok(p[0x104] == 0xaa && p[0x105] == g5 && p[0x106] == g6 && p[0x107] == g7 && !*w,
	    "4 bytes at +0x104: +0x104 lands, +0x105..+0x107 kept; one DENIED event, gpa = first protected byte, "
	    "bytes = 3%s%s", *w ? ": " : "", w);

	struct stats s_a, s_b;
	stats_get(&s_a);
	rip = probe_store(p + 0x300, (uint8_t)~p[0x300], 1);
	w = one_event(TESSEL_EV_DENIED, gpa_of(p + 0x300), rip, 1, b, sizeof(b));
	stats_get(&s_b);
	sok(p[0x300] == pat_byte(0x300, 0x31) && !*w && sdelta(&s_a, &s_b, TESSEL_STAT_SPP_DENIED) == 1,
	    "1 byte at +0x300: kept, DENIED, spp_denied +%llu%s%s",
	    (unsigned long long)sdelta(&s_a, &s_b, TESSEL_STAT_SPP_DENIED), *w ? ": " : "", w);

	/* Protection there before is never weakened: a sub-page protected whole stays whole. */
	pat_fill(q, PAGE, 0x52);
	set1(q, ~(1u << 3), 0);
	s = pbytes(q + 0x190, 4);
	rip = probe_store(q + 0x180, 0x1234, 2);
	w = one_event(TESSEL_EV_DENIED, gpa_of(q + 0x180), rip, 2, b, sizeof(b));
	get1(q, &m);
	sok(s == 0 && q[0x180] == pat_byte(0x180, 0x52) && q[0x181] == pat_byte(0x181, 0x52) && !*w &&
		    m == ~(1u << 3),
	    "bytes inside a sub-page protected whole by SET: it stays whole (status %lld, map 0x%08x)%s%s",
	    (long long)s, m, *w ? ": " : "", w);

	/* SET on a byte-precise page ends byte precision: the sub-page is protected whole again. */
	set1(p, ~((1u << 2) | (1u << 6)), 0);
	rip = probe_store(p + 0x100, 0x55555555u, 4);
	w = one_event(TESSEL_EV_DENIED, gpa_of(p + 0x100), rip, 4, b, sizeof(b));
	sok(*(volatile uint32_t *)(p + 0x100) == 0x44332211u && !*w,
	    "HC_SPP_SET with the same map: the whole sub-page is protected again%s%s", *w ? ": " : "", w);
	unprot(p, 1);

	/* TRACK: protected bytes land and are reported, the others land silently. */
	if (spp.flags & TESSEL_F_TRACK) {
		set1(t, ~(1u << 10), TESSEL_SPP_TRACK);
		s = pbytes(t + 0x106, 2);
		probe_store(t + 0x100, 0x01010101u, 4);
		uint32_t quiet = ev_pending(ring);
		rip = probe_store(t + 0x104, 0x04030201u, 4);
		w = one_event(TESSEL_EV_TRACKED, gpa_of(t + 0x106), rip, 2, b, sizeof(b));
		sok(s == 0 && quiet == 0 && *(volatile uint32_t *)(t + 0x104) == 0x04030201u && !*w,
		    "a TRACK page keeps TRACK: the write lands, one TRACKED event for the 2 protected bytes%s%s",
		    *w ? ": " : "", w);
		unprot(t, 1);
	} else {
		sskip("no TESSEL_F_TRACK", "PROTECT_BYTES on a TRACK page");
	}

	/* A range across two pages. */
	pat_fill(two, 2 * PAGE, 0x77);
	s = pbytes(two + PAGE - 2, 4);
	uint32_t m0 = 0, m1 = 0;
	get1(two, &m0);
	get1(two + PAGE, &m1);
	probe_store(two + PAGE - 8, 0x1111111111111111ull, 4);
	probe_store(two + PAGE + 4, 0x22222222u, 4);
	ev_drain(ring);
	rip = probe_store(two + PAGE - 2, 0x3333, 2);
	w = one_event(TESSEL_EV_DENIED, gpa_of(two + PAGE - 2), rip, 2, b, sizeof(b));
	sok(s == 0 && m0 == ~(1u << 31) && m1 == ~1u && two[PAGE - 8] == 0x11 && two[PAGE + 4] == 0x22 &&
		    two[PAGE - 2] == pat_byte(PAGE - 2, 0x77) && !*w,
	    "4 bytes across two pages: both maps (0x%08x 0x%08x), neighbours on both pages land, the bytes hold%s%s",
	    m0, m1, *w ? ": " : "", w);
	unprot(two, 2);

	/* Lock: PROTECT_BYTES and SET are -EPERM, and the page keeps working byte-precisely. */
	pat_fill(k, PAGE, 0x13);
	s = pbytes(k + 0x205, 1);
	int64_t l = tessel_spp_lock(gfn_of(k), 1);
	int64_t again = pbytes(k + 0x400, 1), set = set1(k, TESSEL_SPP_ALL_WRITABLE, 0);
	get1(k, &m);
	sok(s == 0 && l == 0 && again == -TESSEL_EPERM && set == -TESSEL_EPERM && m == ~(1u << 4),
	    "locked: PROTECT_BYTES %lld, SET %lld (both -EPERM), map unchanged 0x%08x", (long long)again,
	    (long long)set, m);
	ev_drain(ring);
	probe_store(k + 0x200, 0xabababababababull, 4);
	rip = probe_store(k + 0x204, 0xcdcdcdcdu, 4);
	w = one_event(TESSEL_EV_DENIED, gpa_of(k + 0x205), rip, 1, b, sizeof(b));
	sok(*(volatile uint32_t *)(k + 0x200) == 0xababababu && k[0x204] == 0xcd && k[0x206] == 0xcd &&
		    k[0x205] == pat_byte(0x205, 0x13) && !*w,
	    "locked page: the neighbours land, the protected byte holds%s%s", *w ? ": " : "", w);

	/* Unprotected again (SET to all-writable), a page forgets its bytes. */
	ev_drain(ring);
	probe_store(p + 0x105, 0x5a, 1);
	get1(p, &m);
	sok(p[0x105] == 0x5a && m == TESSEL_SPP_ALL_WRITABLE && ev_pending(ring) == 0,
	    "after HC_SPP_SET to all-writable the formerly protected byte is writable (map 0x%08x, %u events)", m,
	    ev_pending(ring));

	/* At CPL 3 the call is -EPERM like every call: not testable from boot services; the
	 * statuses of unknown numbers next to it still say -ENOSYS. */
	s = tessel_vmcall(0x14, 0, 0, 0, 0, NULL);
	sok(s == -TESSEL_ENOSYS, "call 0x14 (next to PROTECT_BYTES) is -ENOSYS (%lld)", (long long)s);

	suite_end();
	guest_finish();
}
