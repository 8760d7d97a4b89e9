/*
 * spp_errors.c: every error status of the SPP calls, HC_EVENTS_SETUP and HC_STATS (ABI.md 2,
 * 3): -ENOSYS, -EPERM from CPL 3, -EINVAL, -E2BIG, -EFAULT (including buffers that lie in
 * write-protected bytes: the hypervisor's own writes obey protection and write nothing),
 * -EOPNOTSUPP. After every error the test checks that nothing changed: the maps of its pages
 * (GET), the active event ring, the output buffers. Built alone as spp_errors.efi, or
 * included by spp_all.c.
 */
#include "spp_util.h"

#define SPP_ERRORS_POINTS 32
#define ERR_MASK 0x0000ffffu /* page A: sub-pages 16..31 (bytes 2048..4095) protected */

static struct {
	uint8_t *a, *b;
	struct tessel_ring *ring;
	uint64_t hv_base, hv_size;
	int have_hv;
} er;

/* 1 if page A still has ERR_MASK and page B is unprotected. */
static int err_unchanged(void)
{
	uint32_t ma = 0, mb = 0;
	return get1(er.a, &ma) == 0 && get1(er.b, &mb) == 0 && ma == ERR_MASK && mb == 0xffffffffu;
}

static void err_expect(int64_t got, int64_t want, const char *what)
{
	int same = err_unchanged();
	sok(got == want && same, "%s returns %lld (got %lld)%s", what, (long long)want, (long long)got,
	    same ? "; maps unchanged" : "; MAPS CHANGED");
}

/* Protected-map SET of page B with status expectation. */
static int64_t err_setb(uint64_t gfn, uint64_t n, uint64_t map, uint64_t flags)
{
	spp_map[0] = 0;
	spp_map[1] = 0;
	return tessel_spp_set(gfn, n, map, flags);
}

static void err_cpl3(void)
{
	static const uint8_t code[] = { INSN_VMCALL, INSN_INT80 };
	static const struct {
		uint64_t nr;
		const char *name;
	} calls[] = { { HC_SPP_SET, "HC_SPP_SET" }, { HC_SPP_GET, "HC_SPP_GET" }, { HC_SPP_LOCK, "HC_SPP_LOCK" },
		      { HC_EVENTS_SETUP, "HC_EVENTS_SETUP" }, { HC_STATS, "HC_STATS" } };
	static uint64_t statbuf[TESSEL_STAT_COUNT_1_0] __attribute__((aligned(8)));
	for (unsigned i = 0; i < 5; i++) {
		uint64_t regs[6] = { calls[i].nr, gfn_of(er.b), 1, gpa_of(spp_map), 0, 0 };
		spp_map[0] = 0; /* SET: would protect B; GET would overwrite it */
		if (calls[i].nr == HC_EVENTS_SETUP)
			regs[1] = gpa_of(er.ring), regs[3] = 0;
		if (calls[i].nr == HC_STATS) {
			mem_set(statbuf, 0x5a, sizeof(statbuf));
			regs[1] = gpa_of(statbuf), regs[2] = sizeof(statbuf);
		}
		struct trap_info t;
		int r = ring3_run(code, sizeof(code), regs, &t);
		int64_t st = (int64_t)t.regs[0];
		int ok = r == 0 && t.vector == RING3_INT && st == -TESSEL_EPERM && err_unchanged();
		if (calls[i].nr == HC_SPP_GET)
			ok = ok && spp_map[0] == 0;
		if (calls[i].nr == HC_SPP_LOCK)
			ok = ok && set1(er.b, TESSEL_SPP_ALL_WRITABLE, 0) == 0; /* not locked */
		if (calls[i].nr == HC_STATS)
			ok = ok && statbuf[0] == 0x5a5a5a5a5a5a5a5aull;
		if (calls[i].nr == HC_EVENTS_SETUP) { /* reporting still off: no entry in that ring */
			mem_set(er.ring, 0, PAGE);
			probe_store(er.a + 3000, 0, 1);
			ok = ok && er.ring->head == 0 && er.ring->capacity == 0;
		}
		sok(ok, "%s from CPL 3 returns -EPERM and does nothing (run %d, %s, RAX %lld)", calls[i].name, r,
		    trap_name(t.vector), (long long)st);
	}
}

static void err_set(void)
{
	uint64_t map = gpa_of(spp_map);
	err_expect(tessel_vmcall(0x14, 0, 0, 0, 0, NULL), -TESSEL_ENOSYS, "unknown call 0x14");
	err_expect(err_setb(gfn_of(er.b), 0, map, 0), -TESSEL_EINVAL, "SET n = 0");
	int64_t o1 = err_setb(~0ull, 1, map, 0), o2 = err_setb(~0ull - 1, 4, map, 0);
	sok(o1 == -TESSEL_EINVAL && o2 == -TESSEL_EINVAL && err_unchanged(),
	    "SET with gfn + n overflowing (gfn 2^64-1 n 1: %lld; gfn 2^64-2 n 4: %lld) returns -EINVAL", (long long)o1,
	    (long long)o2);
	err_expect(err_setb(0xfee00, 1, map, 0), -TESSEL_EINVAL, "SET of the local APIC page (MMIO, gfn 0xfee00)");
	if (er.have_hv)
		err_expect(err_setb(er.hv_base >> 12, 1, map, 0), -TESSEL_EINVAL, "SET of a hypervisor-region page");
	else
		sok(0, "SET of a hypervisor-region page: no TESSEL region table");
	uint64_t end = ram_end();
	int64_t b1 = err_setb(end >> 12, 1, map, 0), b2 = err_setb(0x8000000, 1, map, 0);
	sok(end && b1 == -TESSEL_EINVAL && b2 == -TESSEL_EINVAL && err_unchanged(),
	    "SET beyond the end of RAM (gfn 0x%llx: %lld; gfn 0x8000000: %lld) returns -EINVAL",
	    (unsigned long long)(end >> 12), (long long)b1, (long long)b2);
	int64_t f1 = err_setb(gfn_of(er.b), 1, map, 2), f2 = err_setb(gfn_of(er.b), 1, map, 1ull << 63);
	sok(f1 == -TESSEL_EINVAL && f2 == -TESSEL_EINVAL && err_unchanged(),
	    "SET with reserved flag bits (bit 1: %lld; bit 63: %lld) returns -EINVAL", (long long)f1, (long long)f2);
	err_expect(err_setb(gfn_of(er.b), spp.max_pages + 1, map, 0), -TESSEL_E2BIG, "SET n = max pages + 1");
	err_expect(err_setb(gfn_of(er.b), 1, map + 2, 0), -TESSEL_EFAULT, "SET with a map not 4-byte aligned");
	err_expect(err_setb(gfn_of(er.b), 1, 0xfee00000ull, 0), -TESSEL_EFAULT, "SET with the map in MMIO");
	if (er.have_hv)
		err_expect(err_setb(gfn_of(er.b), 1, er.hv_base, 0), -TESSEL_EFAULT,
			   "SET with the map in the hypervisor region");
	else
		sok(0, "SET with the map in the hypervisor region: no TESSEL region table");
	/* a range whose last page is not RAM: nothing may change on the first page */
	EFI_PHYSICAL_ADDRESS below = er.have_hv ? er.hv_base - PAGE : 0;
	if (er.have_hv &&
	    !EFI_ERROR(uefi_call_wrapper(BS->AllocatePages, 4, AllocateAddress, EfiBootServicesData, 1, &below))) {
		int64_t s = err_setb(below >> 12, 2, map, 0);
		uint32_t m = 0;
		int64_t g = tessel_spp_get(below >> 12, 1, gpa_of(&spp_map[512]));
		m = spp_map[512];
		sok(s == -TESSEL_EINVAL && g == 0 && m == 0xffffffffu && err_unchanged(),
		    "SET of [last RAM page below the hypervisor, first hypervisor page] returns -EINVAL (%lld) and leaves "
		    "the RAM page unprotected (0x%08x)",
		    (long long)s, m);
		uefi_call_wrapper(BS->FreePages, 2, below, 1);
	} else {
		sskip("the page below the hypervisor region is in use", "SET of a range ending outside RAM is atomic");
	}
	if (spp.flags & TESSEL_F_TRACK) {
		tap_diag("TESSEL_F_TRACK is advertised: -EOPNOTSUPP cannot occur");
		sskip("TRACK is advertised", "SET with TRACK without TESSEL_F_TRACK returns -EOPNOTSUPP");
	} else {
		err_expect(err_setb(gfn_of(er.b), 1, map, TESSEL_SPP_TRACK), -TESSEL_EOPNOTSUPP,
			   "SET with TRACK (not advertised)");
	}
}

static void err_get(void)
{
	spp_map[0] = 0x12345678;
	int64_t s = tessel_vmcall(HC_SPP_GET, gfn_of(er.a), 1, gpa_of(spp_map), 1, NULL);
	sok(s == -TESSEL_EINVAL && spp_map[0] == 0x12345678 && err_unchanged(),
	    "GET with RSI != 0 returns -EINVAL and writes nothing (got %lld)", (long long)s);
	volatile uint32_t *in = (volatile uint32_t *)(er.a + 2048 + 64);
	uint32_t before = *in;
	s = tessel_spp_get(gfn_of(er.b), 1, gpa_of(in));
	sok(s == -TESSEL_EFAULT && *in == before && err_unchanged(),
	    "GET into a buffer in protected bytes returns -EFAULT and writes nothing (got %lld)", (long long)s);
	volatile uint32_t *edge = (volatile uint32_t *)(er.a + 2044); /* [0] writable, [1] protected */
	uint32_t e0 = edge[0], e1 = edge[1];
	spp_map[0] = 0;
	s = tessel_spp_get(gfn_of(er.b), 2, gpa_of(edge));
	sok(s == -TESSEL_EFAULT && edge[0] == e0 && edge[1] == e1 && err_unchanged(),
	    "GET of 2 maps into a buffer whose second word is protected returns -EFAULT and writes neither word "
	    "(got %lld)",
	    (long long)s);
	err_expect(tessel_spp_get(gfn_of(er.b), 1, 0xfee00000ull), -TESSEL_EFAULT, "GET into MMIO");
}

static void err_events(void)
{
	int64_t s = ev_setup(er.ring, 1, 0);
	if (s)
		tap_diag("EVENTS_SETUP of a valid ring failed: %lld", (long long)s);
	int64_t r[8];
	r[0] = tessel_events_setup(gpa_of(er.ring) + 64, 1, 0);
	r[1] = tessel_events_setup(0xfee00000ull, 1, 0);
	sok(r[0] == -TESSEL_EFAULT && r[1] == -TESSEL_EFAULT,
	    "EVENTS_SETUP with a ring not 4 KiB aligned (%lld) or in MMIO (%lld) returns -EFAULT", (long long)r[0],
	    (long long)r[1]);
	r[2] = tessel_events_setup(gpa_of(er.ring), 0, 0);
	r[3] = tessel_events_setup(gpa_of(er.ring), 65, 0);
	sok(r[2] == -TESSEL_EINVAL && r[3] == -TESSEL_EINVAL,
	    "EVENTS_SETUP with 0 pages (%lld) or 65 pages (%lld) returns -EINVAL", (long long)r[2], (long long)r[3]);
	r[4] = tessel_events_setup(gpa_of(er.ring), 1, 1);
	r[5] = tessel_events_setup(gpa_of(er.ring), 1, 31);
	r[6] = tessel_events_setup(gpa_of(er.ring), 1, 256);
	sok(r[4] == -TESSEL_EINVAL && r[5] == -TESSEL_EINVAL && r[6] == -TESSEL_EINVAL,
	    "EVENTS_SETUP with vector 1 (%lld), 31 (%lld), 256 (%lld) returns -EINVAL", (long long)r[4], (long long)r[5],
	    (long long)r[6]);
	uint32_t h = er.ring->head;
	probe_store(er.a + 3001, 0, 1);
	sok(s == 0 && er.ring->head == h + 1 && er.ring->entries[h % er.ring->capacity].gpa == gpa_of(er.a + 3001),
	    "after the failed setups the previous ring is still the active one (head %u -> %u)", h, er.ring->head);
	tessel_events_setup(0, 0, 0);
}

static void err_stats(void)
{
	static uint64_t buf[TESSEL_STAT_COUNT_1_0 + 1] __attribute__((aligned(8)));
	mem_set(buf, 0x5a, sizeof(buf));
	uint64_t full = 0;
	int64_t s = tessel_stats(gpa_of(buf) + 4, 64, &full);
	sok(s == -TESSEL_EFAULT && ((volatile uint8_t *)buf)[4] == 0x5a && ((volatile uint8_t *)buf)[20] == 0x5a,
	    "STATS with a buffer not 8-byte aligned returns -EFAULT and writes nothing (got %lld)", (long long)s);
	volatile uint64_t *in = (volatile uint64_t *)(er.a + 2048 + 256);
	uint64_t before = in[0];
	s = tessel_stats(gpa_of(in), 88, &full);
	sok(s == -TESSEL_EFAULT && in[0] == before, "STATS into protected bytes returns -EFAULT, nothing written (got %lld)",
	    (long long)s);
	volatile uint64_t *edge = (volatile uint64_t *)(er.a + 2040); /* 8 writable bytes, then protected */
	uint64_t e0 = edge[0];
	s = tessel_stats(gpa_of(edge), 88, &full);
	sok(s == -TESSEL_EFAULT && edge[0] == e0,
	    "STATS into a buffer that runs into protected bytes returns -EFAULT and writes not even its writable "
	    "first 8 bytes (got %lld)",
	    (long long)s);
	full = 0;
	s = tessel_stats(gpa_of(buf), 0, &full);
	sok(s == 0 && full >= 8 * TESSEL_STAT_COUNT_1_0 && buf[0] == 0x5a5a5a5a5a5a5a5aull,
	    "STATS with size 0 writes nothing and returns the record size (%llu, status %lld)", (unsigned long long)full,
	    (long long)s);
}

static void suite_errors(void)
{
	suite_begin("errors", SPP_ERRORS_POINTS);
	er.a = spp_pages(1);
	er.b = spp_pages(1);
	er.ring = spp_pages(1);
	er.have_hv = hv_region(&er.hv_base, &er.hv_size);
	if (!er.a || !er.b || !er.ring) {
		suite_end();
		return;
	}
	pat_fill(er.a, PAGE, 0x3c);
	int64_t s = set1(er.a, ERR_MASK, 0);
	sok(s == 0 && err_unchanged(), "setup: page A protected (upper half), page B unprotected (%lld)", (long long)s);
	err_cpl3();
	err_set();
	err_get();
	err_events();
	err_stats();
	unsigned d = 0;
	for (unsigned i = 2048; i < PAGE; i++)
		d += er.a[i] != pat_byte(i, 0x3c);
	int64_t u = unprot(er.a, 1);
	sok(d == 0 && u == 0, "the protected half of page A never changed (%u bytes differ); protection removed (%lld)", d,
	    (long long)u);
	suite_end();
}

#ifndef SPP_ALL
EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *st)
{
	spp_start(image, st, SPP_ERRORS_POINTS);
	suite_errors();
	guest_finish();
}
#endif
