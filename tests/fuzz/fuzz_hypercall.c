/*
 * libFuzzer target: the hypercall interface (docs/ABI.md sections 2-3 and 7), driven through
 * exit_vmcall() exactly as a VMCALL exit would be, over the real hv/ mm/ spp/ drivers/ code
 * and the fake hardware layer (tests/fake). See tests/fuzz/README.md.
 *
 * Each input re-initialises a fresh hypervisor (pmm, memmap, EPT, SPP in the mode the first
 * byte picks, optionally with the page allocator starved) and then runs up to MAX_CALLS
 * calls decoded from the rest of the input. A reference model (permission store, locks, the
 * event ring, statistics), written from the ABI text and not from spp/, predicts which
 * statuses are acceptable and what a successful call changes; after every call the harness
 * compares the hypervisor's state (store, EPT leaves, SPPT vectors, ring, guest memory,
 * registers) with the model and abort()s on any difference, printing the call sequence.
 *
 * Guest RAM is ASan-poisoned except for the exact buffer the current call may access, so a
 * hypervisor touching any other guest byte (or MMIO, or reserved memory) is reported by
 * AddressSanitizer at the faulting access.
 */
#include <sanitizer/asan_interface.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hw.h>
#include <arch/cpu.h>
#include <arch/vmx.h>
#include <tessel/bootinfo.h>
#include <tessel/config.h>
#include "hv/abi.h"
#include "hv/features.h"
#include "hv/hypercall.h"
#include "hv/percpu.h"
#include "hv/stats.h"
#include "hv/vmcs.h"
#include "hv/vmx_caps.h"
#include "mm/ept.h"
#include "mm/memmap.h"
#include "mm/mtrr.h"
#include "mm/pmm.h"
#include "spp/spp.h"

void exit_vmcall(struct percpu *c); /* hv/hypercall.c (declared in hv/exit.h) */
void exit_spp(struct percpu *c);

#include "fuzz_common.h"

#define MAX_CALLS 16
#define REC_BYTES (STAT_COUNT * 8)

static u64 starve_pages; /* pmm pages the harness took to starve the allocator */

/* ---- the model ---- */

enum { MODE_HW, MODE_SW, MODE_OFF };
static int mode;           /* what the model expects spp_init to have chosen */
static bool lazy, starved; /* starved: the pmm was left with only a few free pages */
static u32 features;
static u32 m_map[W_PAGES];
static u8 m_flags[W_PAGES]; /* SPP_PAGE_LOCKED | SPP_PAGE_TRACK */
static u8 m_ever[W_PAGES];  /* ever protected in this input (an SPPT path exists) */
static u64 m_protected, m_entries;
static u64 m_ring_gpa, m_ring_cap, m_ring_vec;
static u64 m_misses, n_vmcalls;

static u8 touched[W_PAGES];
static u32 touched_list[W_PAGES];
static u32 n_touched;
static u64 recent_gfn[16], recent_prot[16];
static unsigned n_recent, n_recent_prot;
static u64 prng;

static u32 mget(u64 gfn) { return gfn - W_GFN < W_PAGES ? m_map[gfn - W_GFN] : SPP_MAP_ALL; }
static u8 mflags(u64 gfn) { return gfn - W_GFN < W_PAGES ? m_flags[gfn - W_GFN] : 0; }

static void touch(u64 gfn)
{
	u64 i = gfn - W_GFN;
	if (i < W_PAGES && !touched[i]) {
		touched[i] = 1;
		touched_list[n_touched++] = (u32)i;
	}
}

static u64 rnd(void)
{
	prng = prng * 6364136223846793005ULL + 1442695040888963407ULL;
	return prng >> 17;
}

/* ---- call log for failure reports ---- */

struct logent { u64 nr, a[4]; unsigned cpl; s64 status; u32 map0, map1; bool pseudo; };
static struct logent calllog[MAX_CALLS + 1];
static unsigned n_log;

static const char *mode_name(void)
{
	return mode == MODE_OFF ? "off" : mode == MODE_SW ? "sw" : lazy ? "hw-lazy" : "hw-eager";
}

static bool trace; /* FUZZ_TRACE=1 in the environment: print every call */

static void print_call(unsigned i)
{
	struct logent *l = &calllog[i];
	if (l->pseudo) {
		fprintf(stderr, "  %2u: SPP-miss exit at gpa 0x%llx\n", i, (unsigned long long)l->a[0]);
		return;
	}
	fprintf(stderr, "  %2u: cpl %u rax=0x%llx rbx=0x%llx rcx=0x%llx rdx=0x%llx rsi=0x%llx -> %lld", i, l->cpl,
		(unsigned long long)l->nr, (unsigned long long)l->a[0], (unsigned long long)l->a[1],
		(unsigned long long)l->a[2], (unsigned long long)l->a[3], (long long)l->status);
	if (l->nr == HC_SPP_SET)
		fprintf(stderr, " (map[0]=0x%08x map[1]=0x%08x)", l->map0, l->map1);
	fprintf(stderr, "\n");
}

__attribute__((noreturn, format(printf, 1, 2))) void fail(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "\n==== fuzz_hypercall: invariant violated: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n  spp mode %s%s; calls so far (gfn 0x%llx = window start; the last one is "
		"the one checked, its status as returned):\n", mode_name(), starved ? ", pmm starved" : "",
		(unsigned long long)W_GFN);
	for (unsigned i = 0; i < n_log; i++)
		print_call(i);
	abort();
}


enum { SPPT_OK, SPPT_MISS, SPPT_MISCONFIG };

static int sppt_walk(u64 gpa, u64 *vec, int *level)
{
	u64 addr = spp.sppt.root.v;
	for (int l = 4; l >= 2; l--) {
		u64 e = table_at(addr, "SPPT")[(gpa >> (12 + 9 * (l - 1))) & 511];
		*level = l;
		if (!(e & 1))
			return SPPT_MISS;
		if (e & (BITS(11, 1) | BITS(63, PHYS_BITS)))
			return SPPT_MISCONFIG;
		addr = e & BITS(PHYS_BITS - 1, 12);
	}
	*level = 1;
	*vec = table_at(addr, "SPPT leaf")[(gpa >> 12) & 511];
	return (*vec & 0xAAAAAAAAAAAAAAAAULL) ? SPPT_MISCONFIG : SPPT_OK;
}

static u64 spread(u32 map)
{
	u64 v = 0;
	for (unsigned i = 0; i < 32; i++)
		if (map & (1U << i))
			v |= 1ULL << (2 * i);
	return v;
}

/* ---- state checks ---- */

static void check_gfn(u64 gfn)
{
	u32 map = SPP_MAP_ALL, fl = 0;
	u32 want = mget(gfn), wfl = mflags(gfn);
	if (mode != MODE_OFF && gfn < (1ULL << 52)) {
		spp_store_get(&spp.store, gfn, &map, &fl);
		if (map != want || fl != wfl)
			fail("store: gfn 0x%llx has map 0x%08x flags %u, the model says 0x%08x flags %u",
			     (unsigned long long)gfn, map, fl, want, wfl);
	}
	if (gfn >= (1ULL << (PHYS_BITS - 12)))
		return;
	u64 gpa = gfn << PAGE_SHIFT;
	int level;
	u64 e = ept_walk(gpa, &level);
	if (!e)
		fail("EPT: gfn 0x%llx is not mapped", (unsigned long long)gfn);
	u64 size = 1ULL << (12 + 9 * (level - 1));
	u64 target = (e & BITS(PHYS_BITS - 1, 12) & ~(size - 1)) | (gpa & (size - 1));
	if (gpa >= HV_BASE && gpa < HV_END) {
		if (level != 1 || target != ff_page.v || (e & E_W) || !(e & E_R))
			fail("EPT: region page gfn 0x%llx leaf 0x%llx (level %d) is not the read-only 0xFF page",
			     (unsigned long long)gfn, (unsigned long long)e, level);
		return;
	}
	bool prot = model_is_ram(gpa, PAGE_SIZE) && want != SPP_MAP_ALL;
	const char *why = NULL;
	if (target != gpa)
		why = "not identity";
	else if (!(e & E_R) || !(e & E_X))
		why = "R or X lost";
	else if (((e >> 3) & 7) != model_mt(gpa) || (e & E_IPAT))
		why = "memory type changed";
	else if (prot && level != 1)
		why = "protected page not in a 4 KiB leaf";
	else if (prot && (e & E_W))
		why = "protected page writable";
	else if (!prot && !(e & E_W))
		why = "unprotected page not writable";
	else if (level == 1 && ((e & E_SPP) != 0) != (prot && mode == MODE_HW))
		why = "bit 61 (SPP) wrong";
	if (why)
		fail("EPT: gfn 0x%llx leaf 0x%llx (level %d): %s (model map 0x%08x)", (unsigned long long)gfn,
		     (unsigned long long)e, level, why, want);
	if (mode == MODE_HW && prot) {
		u64 vec = 0;
		int r = sppt_walk(gpa, &vec, &level);
		if (r == SPPT_OK && vec != spread(want))
			fail("SPPT: gfn 0x%llx vector 0x%016llx, want 0x%016llx", (unsigned long long)gfn,
			     (unsigned long long)vec, (unsigned long long)spread(want));
		if (r == SPPT_MISCONFIG || (r == SPPT_MISS && (!lazy || level != 2)))
			fail("SPPT: protected gfn 0x%llx: walk ends in a %s at level %d", (unsigned long long)gfn,
			     r == SPPT_MISS ? "miss" : "misconfiguration", level);
	}
}

/* Does protecting these pages need table memory: an EPT split, or (hardware mode) an SPPT
 * path or leaf table that is not there yet? Without that, -ENOMEM is wrong. Called before the
 * call (a failed call may leave splits and paths behind). */
static bool page_needs_memory(u64 gfn)
{
	int level;
	if (!ept_walk(gfn << PAGE_SHIFT, &level) || level != 1)
		return true;
	if (mode != MODE_HW)
		return false;
	u64 addr = spp.sppt.root.v;
	for (int l = 4; l >= 2; l--) {
		u64 e = table_at(addr, "SPPT")[(gfn >> (9 * (l - 1))) & 511];
		addr = e & BITS(PHYS_BITS - 1, 12);
		if (!addr)
			return true;
	}
	return false;
}

static bool set_needs_memory(u64 gfn, u64 n, const u32 *maps)
{
	for (u64 i = 0; i < n; i++)
		if (maps[i] != SPP_MAP_ALL && page_needs_memory(gfn + i))
			return true;
	return false;
}

static void check_counts(void)
{
	/* Every pmm page in use is accounted for: no table or store memory leaks, also not
	 * on the failure paths. */
	u64 used = base_free - pmm_free_count();
	u64 want = (ept.tables - base_ept.tables) + starve_pages +
		   (mode != MODE_OFF ? spp_store_bytes(&spp.store) / PAGE_SIZE : 0) +
		   (mode == MODE_HW ? spp.sppt.pages : 0);
	if (used != want)
		fail("pmm: %llu pages in use since boot, but EPT + SPPT + store + harness account for %llu",
		     (unsigned long long)used, (unsigned long long)want);
	if (mode == MODE_OFF)
		return;
	if (spp_store_protected_pages(&spp.store) != m_protected || spp_store_entries(&spp.store) != m_entries)
		fail("store counts: %llu protected / %llu entries, the model says %llu / %llu",
		     (unsigned long long)spp_store_protected_pages(&spp.store),
		     (unsigned long long)spp_store_entries(&spp.store), (unsigned long long)m_protected,
		     (unsigned long long)m_entries);
	if (spp.ring_capacity != m_ring_cap || (m_ring_cap && (spp.ring_gpa != m_ring_gpa || spp.ring_vector != m_ring_vec)))
		fail("event ring: gpa 0x%llx capacity %u vector %u, the model says 0x%llx %llu %llu",
		     (unsigned long long)spp.ring_gpa, spp.ring_capacity, spp.ring_vector,
		     (unsigned long long)m_ring_gpa, (unsigned long long)m_ring_cap, (unsigned long long)m_ring_vec);
}


static void reinit(u8 cfgbyte, u8 membyte)
{
	static const int modes[8] = { MODE_HW, MODE_HW, MODE_HW, MODE_HW, MODE_SW, MODE_SW, -1, MODE_OFF };
	struct tessel_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	int m = modes[cfgbyte & 7];
	bool has_spp = m == MODE_HW || (m == -1 && (cfgbyte & 0x40));
	lazy = (cfgbyte & 7) == 2 || (cfgbyte & 7) == 3 || (m != MODE_HW && (cfgbyte & 0x80));
	cfg.spp = m == MODE_HW ? CFG_SPP_HW : m == MODE_SW ? CFG_SPP_SW : m == MODE_OFF ? CFG_SPP_OFF : CFG_SPP_AUTO;
	cfg.sppt = lazy ? CFG_SPPT_LAZY : CFG_SPPT_EAGER;
	mode = m == -1 ? (has_spp ? MODE_HW : MODE_SW) : m;
	memset(&vmx_caps, 0, sizeof(vmx_caps));
	vmx_caps.phys_bits = PHYS_BITS;
	vmx_caps.proc2 = has_spp ? (u64)PROC2_SUBPAGE_WRITE_PERM << 32 : 0;

	memset(&cpu, 0, sizeof(cpu));
	memset(&cpu1, 0, sizeof(cpu1));
	cpu.self = &cpu;
	cpu.regs = &regs;
	cpu.launched = true;
	cpu1.self = &cpu1;
	cpu1.index = 1;
	cpu1.apic_id = 2;
	cpu1.launched = true;
	cpu1.wait_sipi = true; /* runs no guest code: the shootdown skips it */
	percpu_array[0] = &cpu;
	percpu_array[1] = &cpu1;
	percpu_count = 2;
	fake_cpu_local_set(&cpu);
	memset(stat_counters, 0, sizeof(u64) * STAT_COUNT * TESSEL_MAX_CPUS);

	memset(&spp, 0, sizeof(spp));
	restore_baseline();
	int r = spp_init(&cfg, &ept, PHYS_BITS);
	if (r)
		fail("init: spp_init: %d", r);
	features = tessel_features();
	starved = (membyte & 3) == 0;
	starve_pages = 0;
	if (starved) {
		u64 keep = (membyte >> 2) % 40, f = pmm_free_count();
		if (f > keep && !pmm_alloc_pages(f - keep).v)
			fail("init: could not starve the pmm");
		starve_pages = f > keep ? f - keep : 0;
	}

	memset(m_map, 0xff, sizeof(m_map));
	memset(m_flags, 0, sizeof(m_flags));
	memset(m_ever, 0, sizeof(m_ever));
	m_protected = m_entries = 0;
	m_ring_gpa = m_ring_cap = m_ring_vec = 0;
	m_misses = n_vmcalls = 0;
	for (u32 i = 0; i < n_touched; i++)
		touched[touched_list[i]] = 0;
	n_touched = 0;
	n_recent = n_recent_prot = 0;
	memset(recent_gfn, 0, sizeof(recent_gfn));
	memset(recent_prot, 0, sizeof(recent_prot));
	n_log = 0;
}

/* ---- input decoding ---- */

struct rd { const u8 *p; size_t n; };
static u8 rd8(struct rd *r)
{
	if (!r->n)
		return 0;
	r->n--;
	return *r->p++;
}
static u64 rdn(struct rd *r, int k)
{
	u64 v = 0;
	for (int i = 0; i < k; i++)
		v |= (u64)rd8(r) << (8 * i);
	return v;
}

static const struct mrange *pick_range(struct rd *r) { return &ram[rd8(r) % NRAM]; }

static u64 pick_ram_gfn(struct rd *r)
{
	const struct mrange *m = pick_range(r);
	return (m->start >> 12) + rdn(r, 2) % ((m->end - m->start) >> 12);
}

static u64 gen_gfn(struct rd *r)
{
	u8 s = rd8(r);
	const struct mrange *m;
	switch (s % 16) {
	case 3: m = pick_range(r); return (m->end >> 12) - 3 + rd8(r) % 6;
	case 4: m = pick_range(r); return (m->start >> 12) - 2 + rd8(r) % 4;
	case 5: return (MMIO_BASE >> 12) - 1 + rd8(r) % 8;
	case 6: return (HV_BASE >> 12) - 1 + rdn(r, 2) % ((HV_SIZE >> 12) + 2);
	case 7: return (RSVD_BASE >> 12) - 1 + rdn(r, 2) % 514;
	case 8: return (RAM_END >> 12) - 4 + rd8(r) % 8;
	case 9: return (1ULL << 36) - 4 + rd8(r) % 8;
	case 10: return (1ULL << 52) - 4 + rd8(r) % 8;
	case 11: return ~0ULL - rd8(r) % 8;
	case 12: { /* around a 2 MiB boundary */
		u64 blk = rd8(r) % 36;
		return W_GFN + blk * 512 + rd8(r) % 3 - 1;
	}
	case 13: { /* near a page named earlier */
		if (!n_recent)
			return W_GFN;
		u64 g = recent_gfn[rd8(r) % MIN(n_recent, 16U)];
		return g + rd8(r) % 5 - 2;
	}
	case 14: return rdn(r, 8);
	case 15: return rd8(r);
	default: return pick_ram_gfn(r);
	}
}

static u64 gen_count(struct rd *r)
{
	u8 s = rd8(r);
	switch (s % 16) {
	case 0: return 0;
	case 1: return 511;
	case 2: return 512;
	case 3: return 513;
	case 4: return 1 + rdn(r, 2) % 512;
	case 5: return 1ULL << 32;
	case 6: return (1ULL << 52) - rd8(r) % 4;
	case 7: return ~0ULL - rd8(r) % 4;
	case 8: return rdn(r, 8);
	case 9: return 2 + rd8(r) % 64;
	default: return 1 + rd8(r) % 8;
	}
}

/* A guest-physical buffer address. gfn: the call's page argument, for "inside the pages
 * being changed". */
static u64 gen_buf(struct rd *r, u64 gfn)
{
	u8 s = rd8(r);
	u64 ofs = rdn(r, 2) & 0xfff;
	const struct mrange *m;
	switch (s % 16) {
	case 0: case 1: case 2: return (pick_ram_gfn(r) << 12) + (ofs & ~7ULL);
	case 3: return (pick_ram_gfn(r) << 12) + (ofs & ~3ULL);
	case 4: return (pick_ram_gfn(r) << 12);
	case 5: return (pick_ram_gfn(r) << 12) + ofs;
	case 6: /* inside (or next to) a page protected earlier */
		if (!n_recent_prot)
			return (pick_ram_gfn(r) << 12) + (ofs & ~7ULL);
		return (recent_prot[rd8(r) % MIN(n_recent_prot, 16U)] << 12) + (ofs & ~3ULL) - (s & 0x10 ? 8 : 0);
	case 7: m = pick_range(r); return m->end - (ofs & 0x7f8) - (s & 0x10 ? 4 : 0);
	case 8: m = pick_range(r); return m->start - 8 + (ofs & 0xf) * 4;
	case 9: return MMIO_BASE - 4096 + (ofs & ~7ULL) + (s & 0x10 ? 4096 : 0);
	case 10: return HV_BASE + ((rdn(r, 2) << 12) % HV_SIZE) + (ofs & ~7ULL);
	case 11: return 0;
	case 12: return ~0ULL - (ofs & ~7ULL);
	case 13: return rdn(r, 8);
	case 14: return RAM_END - 8 * (1 + (ofs & 0x3ff));
	default: return (gfn << 12) + (ofs & ~7ULL);
	}
}

static u32 gen_map(struct rd *r)
{
	u8 s = rd8(r);
	switch (s % 12) {
	case 0: case 1: return 0;
	case 2: case 3: return SPP_MAP_ALL;
	case 4: return 1U << (rd8(r) % 32);
	case 5: return ~(1U << (rd8(r) % 32));
	case 6: return 0x0000ffffU;
	case 7: return 0xffff0000U;
	case 8: return 0x55555555U;
	default: return (u32)rdn(r, 4);
	}
}

/* ---- one hypercall ---- */

struct snap {
	u64 lo, len;   /* a window range, hypervisor region excluded when comparing */
	u8 before[4096 + 1024];
	u8 expect[4096 + 1024];
	u8 mask[4096 + 1024]; /* 1: this byte may differ (compared separately) */
};
static struct snap snaps[2];

/* Reads [lo, lo + len) of the window into dst; bytes of the hypervisor's region read 0. */
static void gread_guest(u64 lo, u8 *dst, u64 len)
{
	u64 hi = lo + len;
	memset(dst, 0, len);
	if (lo < HV_BASE)
		gread(lo, dst, MIN(hi, HV_BASE) - lo);
	if (hi > HV_END) {
		u64 a = MAX(lo, HV_END);
		gread(a, dst + (a - lo), hi - a);
	}
}

static void snap_take(struct snap *s, u64 gpa, u64 len)
{
	u64 lo = gpa < W_BASE + 512 ? W_BASE : gpa - 512;
	u64 hi = gpa + len < gpa ? ~0ULL : gpa + len;
	hi = hi > W_BASE + W_SIZE - 512 ? W_BASE + W_SIZE : hi + 512;
	s->len = 0;
	if (lo >= W_BASE + W_SIZE || hi <= W_BASE || hi - lo > sizeof(s->before))
		return;
	s->lo = lo;
	s->len = hi - lo;
	gread_guest(lo, s->before, s->len);
	memcpy(s->expect, s->before, s->len);
	memset(s->mask, 0, s->len);
}

static void snap_expect(struct snap *s, u64 gpa, const void *bytes, u64 len)
{
	for (u64 i = 0; i < len; i++)
		if (gpa + i >= s->lo && gpa + i - s->lo < s->len)
			s->expect[gpa + i - s->lo] = ((const u8 *)bytes)[i];
}

static void snap_check(struct snap *s, const char *what)
{
	u8 now[sizeof(s->before)];
	if (!s->len)
		return;
	gread_guest(s->lo, now, s->len);
	for (u64 i = 0; i < s->len; i++)
		if (!s->mask[i] && now[i] != s->expect[i])
			fail("guest memory at 0x%llx (%s): 0x%02x, expected 0x%02x (was 0x%02x)",
			     (unsigned long long)(s->lo + i), what, now[i], s->expect[i], s->before[i]);
}

/* Is any byte of [gpa, gpa + len) in a write-protected sub-page (per the model)? */
static bool model_protected_bytes(u64 gpa, u64 len)
{
	for (u64 a = gpa & ~127ULL; a < gpa + len; a += 128)
		if (!(mget(a >> 12) & (1U << ((a >> 7) & 31))))
			return true;
	return false;
}

/* One bit per ABI status code, for sets of acceptable statuses. */
static const int abi_errs[] = { EPERM, E2BIG, ENOMEM, EFAULT, ENODEV, EINVAL, ENOSYS, EOPNOTSUPP };
static u64 ACC(s64 e)
{
	for (unsigned i = 0; i < ARRAY_SIZE(abi_errs); i++)
		if (abi_errs[i] == e)
			return 1ULL << i;
	return 0;
}

enum kind { K_NOP, K_QUERY, K_SET, K_GET, K_LOCK, K_EVENTS, K_STATS, K_RAW, K_MISS };
static const enum kind kinds[16] = { K_NOP, K_QUERY, K_SET, K_SET, K_SET, K_SET, K_GET, K_GET,
				     K_LOCK, K_LOCK, K_EVENTS, K_EVENTS, K_STATS, K_RAW, K_MISS, K_SET };

static void remember_gfn(u64 gfn) { recent_gfn[n_recent++ % 16] = gfn; }

static void pseudo_miss(struct rd *r)
{
	/* An SPP-miss exit (lazy SPPT): only where the processor could take one, i.e. a page
	 * that had EPT bit 61 (ever protected), or anywhere when table memory is not short. */
	if (mode != MODE_HW)
		return;
	u64 gfn;
	if (n_recent_prot && (rd8(r) & 1))
		gfn = recent_prot[rd8(r) % MIN(n_recent_prot, 16U)];
	else if (!starved)
		gfn = pick_ram_gfn(r);
	else
		return;
	u64 gpa = (gfn << 12) | (rd8(r) * 16ULL % 4096);
	struct logent *l = &calllog[n_log++];
	*l = (struct logent){ .a = { gpa }, .pseudo = true };
	if (trace)
		print_call(n_log - 1);
	fake_vmcs_set(VMCS_RO_EXIT_QUALIFICATION, SPP_QUAL_MISS);
	fake_vmcs_set(VMCS_RO_GUEST_PHYS_ADDR, gpa);
	fake_vmcs_set(VMCS_RO_IDT_VECTORING_INFO, 0);
	cpu.exits++;
	exit_spp(&cpu);
	m_misses++;
	/* The whole 2 MiB block is now valid and current. */
	u64 base = gpa & ~(SZ_2M - 1);
	for (u64 a = base; a < base + SZ_2M; a += PAGE_SIZE) {
		u64 vec = 0;
		int level;
		int st = sppt_walk(a, &vec, &level);
		if (st != SPPT_OK || vec != spread(mget(a >> 12)))
			fail("SPPT after a miss at 0x%llx: gpa 0x%llx walk %d level %d vector 0x%016llx, want 0x%016llx",
			     (unsigned long long)gpa, (unsigned long long)a, st, level, (unsigned long long)vec,
			     (unsigned long long)spread(mget(a >> 12)));
	}
}

static void one_call(struct rd *r)
{
	u8 op = rd8(r);
	enum kind k = kinds[op & 15];
	if (k == K_MISS) {
		pseudo_miss(r);
		return;
	}
	unsigned cpl = (op >> 4) == 15 ? 3 : (op >> 4) == 14 ? 1 + (op & 1) : 0;
	u64 nr = 0, a[4] = { 0, 0, 0, 0 };
	u8 junk = rd8(r); /* bit 0..3: garbage in registers the call does not use */
	switch (k) {
	case K_NOP: nr = HC_NOP; break;
	case K_QUERY: nr = HC_QUERY; break;
	case K_SET:
	case K_GET:
		nr = k == K_SET ? HC_SPP_SET : HC_SPP_GET;
		a[0] = gen_gfn(r);
		a[1] = gen_count(r);
		a[2] = gen_buf(r, a[0]);
		a[3] = (junk & 8) ? (rd8(r) & 1 ? rdn(r, 8) : 1ULL << (rd8(r) % 64)) : (k == K_SET && (junk & 4));
		break;
	case K_LOCK:
		nr = HC_SPP_LOCK;
		a[0] = gen_gfn(r);
		a[1] = gen_count(r);
		break;
	case K_EVENTS: {
		nr = HC_EVENTS_SETUP;
		u8 s = rd8(r);
		if ((s & 7) == 0) {
			a[0] = 0;
			a[1] = 0;
		} else {
			a[0] = (s & 7) == 1 ? gen_buf(r, 0) : (pick_ram_gfn(r) << 12);
			a[1] = (s & 0x18) == 0 ? gen_count(r) : 1 + rd8(r) % 64;
		}
		static const u64 vecs[8] = { 0, 0, 32, 255, 31, 256, 0x40, ~0ULL };
		a[2] = (s & 0xe0) == 0xe0 ? rdn(r, 8) : vecs[s >> 5];
		break;
	}
	case K_STATS:
		nr = HC_STATS;
		a[0] = gen_buf(r, 0);
		a[1] = (junk & 0x30) == 0 ? gen_count(r) : (u64)(rd8(r) % 100);
		break;
	default: {
		u8 s = rd8(r);
		static const u64 raw_nr[8] = { 0x02, 0x14, 0x22, 0x7e00, 1ULL << 32, (1ULL << 32) | HC_SPP_SET,
					      ~0ULL, 0x0f };
		nr = (s & 1) ? raw_nr[(s >> 1) & 7] : (s & 2) ? (u64)(s >> 2) : rdn(r, 8);
		if (nr == HC_NOP || nr == HC_QUERY || nr == HC_SPP_SET || nr == HC_SPP_GET || nr == HC_SPP_LOCK ||
		    nr == HC_EVENTS_SETUP || nr == HC_STATS || nr == HC_PIN_CR || nr == HC_PIN_MSR || nr == HC_PIN_DT ||
		    nr == HC_SPP_PROTECT_BYTES)
			nr += 0x100; /* the other kinds cover the known numbers (the pin calls: tests/unit/test_pin.c,
				      * test_pin_dt.c; PROTECT_BYTES: test_spp_bytes.c) */
		a[0] = rdn(r, 2);
		break;
	}
	}
	if (k == K_NOP || k == K_QUERY || k == K_LOCK || k == K_STATS || k == K_RAW || k == K_EVENTS)
		for (int i = 0; i < 4; i++)
			if ((junk >> i) & 1 && ((k == K_NOP || k == K_QUERY || k == K_RAW) ||
						(k == K_LOCK && i >= 2) || (k == K_STATS && i >= 2) ||
						(k == K_EVENTS && i == 3)))
				a[i] = 0x5a5a0000ULL + i;

	/* SET: the guest writes the maps first (only where the buffer is RAM). */
	u32 maps[520];
	u64 nmaps = a[1] < 520 ? a[1] : 520;
	bool filled = k == K_SET && cpl == 0;
	if (filled) {
		u32 pat[8];
		u8 ps = rd8(r);
		unsigned np = 1 + (ps & 7);
		for (unsigned i = 0; i < np; i++)
			pat[i] = gen_map(r);
		for (u64 i = 0; i < nmaps; i++)
			maps[i] = (ps & 0x80) ? pat[i % np] : pat[(i * 7 / (nmaps ? nmaps : 1)) % np];
		for (u64 i = 0; i < nmaps; i++) {
			u64 g = a[2] + 4 * i;
			if (g >= a[2] && model_is_ram(g, 4))
				gwrite(g, &maps[i], 4);
		}
		/* what the guest's buffer holds now (RAM parts) */
		for (u64 i = 0; i < nmaps; i++) {
			u64 g = a[2] + 4 * i;
			if (g >= a[2] && model_is_ram(g, 4))
				gread(g, &maps[i], 4);
		}
	}
	if (k == K_SET || k == K_LOCK || k == K_GET)
		remember_gfn(a[0]);

	struct logent *l = &calllog[n_log++];
	*l = (struct logent){ .nr = nr, .a = { a[0], a[1], a[2], a[3] }, .cpl = cpl,
			      .map0 = filled && nmaps > 0 ? maps[0] : 0, .map1 = filled && nmaps > 1 ? maps[1] : 0 };

	/* What the call may touch, per the ABI, and the neighbourhood we compare byte by byte. */
	u64 buf = 0, buflen = 0;
	bool may_touch = false;
	if (k == K_SET || k == K_GET) {
		buf = a[2];
		buflen = 4 * nmaps;
		may_touch = a[1] <= TESSEL_MAX_PAGES_PER_CALL && model_is_ram(buf, 4 * a[1]);
	} else if (k == K_STATS) {
		buf = a[0];
		buflen = MIN(a[1], (u64)REC_BYTES);
		may_touch = buflen && model_is_ram(buf, a[1]);
	} else if (k == K_EVENTS) {
		buf = a[0];
		buflen = 64;
		may_touch = a[1] >= 1 && a[1] <= 64 && model_is_ram(buf, a[1] * PAGE_SIZE);
	}
	if (cpl)
		may_touch = false;
	snap_take(&snaps[0], buf, buflen);
	snap_take(&snaps[1], m_ring_gpa, m_ring_cap ? 64 : 0); /* capacity 0: no ring (GPA 0 is a valid ring) */

	/* Registers as the guest left them. */
	u64 before[16];
	for (int i = 0; i < 16; i++)
		regs.gpr[i] = before[i] = 0x0101010101010101ULL * (u64)(i + 1) ^ rnd();
	regs.gpr[GPR_AX] = before[GPR_AX] = nr;
	regs.gpr[GPR_BX] = before[GPR_BX] = a[0];
	regs.gpr[GPR_CX] = before[GPR_CX] = a[1];
	regs.gpr[GPR_DX] = before[GPR_DX] = a[2];
	regs.gpr[GPR_SI] = before[GPR_SI] = a[3];
	fake_vmcs_set(VMCS_GUEST_RIP, 0x1000);
	fake_vmcs_set(VMCS_GUEST_RFLAGS, 2);
	fake_vmcs_set(VMCS_GUEST_INTERRUPTIBILITY, 0);
	fake_vmcs_set(VMCS_GUEST_SS_AR, cpl == 3 ? 0xc0f3 : 0xc093 | (cpl << 5));
	u64 invept0 = fake_invept_count();
	bool need_mem = k == K_SET && cpl == 0 && mode != MODE_OFF && a[1] && a[1] <= TESSEL_MAX_PAGES_PER_CALL &&
			model_pages_ram(a[0], a[1]) && set_needs_memory(a[0], a[1], maps);

	cpu.exits++;
	n_vmcalls++;
	if (may_touch)
		set_poison(buf, k == K_EVENTS ? a[1] * PAGE_SIZE : buflen, false);
	exit_vmcall(&cpu);
	if (may_touch)
		set_poison(buf, k == K_EVENTS ? a[1] * PAGE_SIZE : buflen, true);

	s64 st = (s64)regs.gpr[GPR_AX];
	l->status = st;
	if (trace)
		print_call(n_log - 1);
	if (fake_vmcs_get(VMCS_GUEST_RIP) != 0x1003)
		fail("RIP did not move past VMCALL (0x%llx)", (unsigned long long)fake_vmcs_get(VMCS_GUEST_RIP));

	/* Which statuses the ABI allows here. */
	u64 acc = 0;
	bool ok0 = true; /* 0 is allowed */
	bool range_ok = false;
	u32 flags_arg = 0;
#define COND(c, e) do { if (c) { acc |= ACC(e); ok0 = false; } } while (0)
	if (cpl != 0) {
		COND(true, EPERM);
	} else if (k == K_RAW) {
		COND(true, ENOSYS);
	} else if ((k == K_SET || k == K_GET || k == K_LOCK) && mode == MODE_OFF) {
		COND(true, ENODEV);
	} else if (k == K_SET || k == K_GET || k == K_LOCK) {
		u64 gfn = a[0], n = a[1];
		if (k == K_SET) {
			COND(a[3] & ~1ULL, EINVAL);
			COND((a[3] & 1) && !(features & TESSEL_F_TRACK), EOPNOTSUPP);
			flags_arg = (a[3] & 1) ? SPP_PAGE_TRACK : 0;
		}
		if (k == K_GET)
			COND(a[3] != 0, EINVAL);
		if (k == K_LOCK && (a[2] || a[3]))
			acc |= ACC(EINVAL); /* unused registers: ignoring them is fine, so is -EINVAL */
		COND(n == 0, EINVAL);
		COND(n > TESSEL_MAX_PAGES_PER_CALL, E2BIG);
		COND(!model_pages_ram(gfn, n), EINVAL);
		range_ok = n && n <= TESSEL_MAX_PAGES_PER_CALL && model_pages_ram(gfn, n);
		if (k != K_LOCK) {
			bool bad = (a[2] & 3) || !model_is_ram(a[2], n <= (1ULL << 60) ? 4 * n : ~0ULL);
			COND(bad, EFAULT);
			if (k == K_GET && !bad && n <= TESSEL_MAX_PAGES_PER_CALL)
				COND(model_protected_bytes(a[2], 4 * n), EFAULT);
		}
		if (k == K_SET && range_ok)
			for (u64 i = 0; i < n; i++)
				COND(mflags(gfn + i) & SPP_PAGE_LOCKED, EPERM);
		if (k == K_SET && starved && need_mem)
			acc |= ACC(ENOMEM);
	} else if (k == K_EVENTS) {
		if (mode == MODE_OFF) {
			COND(true, ENODEV);
			acc |= ACC(ENOSYS);
		} else {
			u64 g = a[0], pages = a[1], v = a[2];
			bool off = g == 0 && pages == 0;
			if (off && v && (v < 32 || v > 255))
				acc |= ACC(EINVAL); /* a vector with "off": ignoring it is fine too */
			else
				COND(v && (v < 32 || v > 255), EINVAL);
			if (a[3])
				acc |= ACC(EINVAL);
			if (!off) {
				COND(pages < 1 || pages > 64, EINVAL);
				COND((g & 0xfff) || !model_is_ram(g, pages <= 64 ? pages * PAGE_SIZE : ~0ULL), EFAULT);
				if (pages >= 1 && pages <= 64 && !(g & 0xfff) && model_is_ram(g, pages * PAGE_SIZE)) {
					COND(model_protected_bytes(g, 64), EFAULT);
					if (model_protected_bytes(g, pages * PAGE_SIZE))
						acc |= ACC(EFAULT); /* entries would land on protected bytes */
				}
			}
		}
	} else if (k == K_STATS) {
		COND(a[0] & 7, EFAULT);
		COND(a[1] && !model_is_ram(a[0], a[1]), EFAULT);
		if (!(a[0] & 7) && a[1] && model_is_ram(a[0], a[1]))
			COND(model_protected_bytes(a[0], MIN(a[1], (u64)REC_BYTES)), EFAULT);
	}
#undef COND
	if (st != 0 && !ACC(-st))
		fail("status %lld is not 0 or a negative errno of the ABI", (long long)st);
	if (st == 0 ? !ok0 : !(acc & ACC(-st)))
		fail("status %lld not allowed here (allowed: %s0x%llx as bits of -errno)", (long long)st,
		     ok0 ? "0 or " : "", (unsigned long long)acc);

	/* Registers: only RAX changes unless the call returns values. */
	u64 want[16];
	memcpy(want, before, sizeof(want));
	want[GPR_AX] = (u64)st;
	if (st == 0 && k == K_QUERY) {
		want[GPR_BX] = TESSEL_ABI_VERSION;
		want[GPR_CX] = features;
		want[GPR_DX] = TESSEL_MAX_PAGES_PER_CALL;
	}
	if (st == 0 && k == K_STATS)
		want[GPR_BX] = REC_BYTES;
	for (int i = 0; i < 16; i++)
		if (i != GPR_SP && regs.gpr[i] != want[i])
			fail("register %d is 0x%llx after the call, expected 0x%llx", i, (unsigned long long)regs.gpr[i],
			     (unsigned long long)want[i]);
	if (k == K_QUERY && st == 0) {
		u32 spp_bits = features & (TESSEL_F_SPP_HW | TESSEL_F_SPP_SW);
		/* ABI 1.2: TESSEL_F_PIN is set in every mode, spp=off included. */
		if (!(features & TESSEL_F_PIN) || (mode == MODE_OFF ? features != TESSEL_F_PIN
				     : spp_bits != (mode == MODE_HW ? TESSEL_F_SPP_HW : TESSEL_F_SPP_SW)))
			fail("HC_QUERY features 0x%x do not match the SPP mode", features);
	}

	/* Apply the success to the model; say which guest bytes the call wrote. */
	bool narrowed = false;
	if (st == 0 && k == K_SET) {
		for (u64 i = 0; i < a[1]; i++) {
			u64 gi = a[0] + i - W_GFN;
			u32 old = m_map[gi], nw = maps[i];
			bool had = old != SPP_MAP_ALL || (m_flags[gi] & SPP_PAGE_LOCKED);
			narrowed |= (old & ~nw) != 0;
			m_protected += (nw != SPP_MAP_ALL) - (old != SPP_MAP_ALL);
			m_map[gi] = nw;
			m_flags[gi] = (m_flags[gi] & SPP_PAGE_LOCKED) | (nw != SPP_MAP_ALL ? flags_arg : 0);
			bool has = nw != SPP_MAP_ALL || (m_flags[gi] & SPP_PAGE_LOCKED);
			m_entries += has - had;
			if (nw != SPP_MAP_ALL && !m_ever[gi]) {
				m_ever[gi] = 1;
				recent_prot[n_recent_prot++ % 16] = a[0] + i;
			}
		}
		if (narrowed && fake_invept_count() == invept0)
			fail("HC_SPP_SET narrowed permissions but executed no INVEPT");
	}
	if (st == 0 && k == K_LOCK) {
		for (u64 i = 0; i < a[1]; i++) {
			u64 gi = a[0] + i - W_GFN;
			if (m_map[gi] == SPP_MAP_ALL && !(m_flags[gi] & SPP_PAGE_LOCKED))
				m_entries++;
			m_flags[gi] |= SPP_PAGE_LOCKED;
		}
	}
	if (st == 0 && k == K_GET) {
		for (u64 i = 0; i < a[1]; i++) {
			u32 v = mget(a[0] + i);
			snap_expect(&snaps[0], a[2] + 4 * i, &v, 4);
			snap_expect(&snaps[1], a[2] + 4 * i, &v, 4);
		}
	}
	if (st == 0 && k == K_STATS) {
		u64 rec[STAT_COUNT] = { 0 };
		rec[STAT_EXITS] = cpu.exits + cpu1.exits;
		rec[STAT_HYPERCALLS] = n_vmcalls;
		rec[STAT_SPP_MISSES] = m_misses;
		rec[STAT_PAGES_PROTECTED] = mode == MODE_OFF ? 0 : m_protected;
		rec[STAT_SPPT_PAGES] = mode == MODE_HW ? spp.sppt.pages : 0;
		snap_expect(&snaps[0], a[0], rec, MIN(a[1], (u64)REC_BYTES));
		snap_expect(&snaps[1], a[0], rec, MIN(a[1], (u64)REC_BYTES));
		if (mode == MODE_HW && !spp.sppt.pages)
			fail("sppt_pages is 0 in hardware mode");
	}
	if (st == 0 && k == K_EVENTS) {
		if (a[0] == 0 && a[1] == 0) {
			m_ring_gpa = m_ring_cap = m_ring_vec = 0;
		} else {
			m_ring_gpa = a[0];
			m_ring_cap = (a[1] * PAGE_SIZE - 64) / 32;
			m_ring_vec = a[2];
			u8 hdr[64] = { 0 };
			u32 cap = (u32)m_ring_cap;
			memcpy(hdr + 8, &cap, 4);
			for (int s = 0; s < 2; s++) {
				snap_expect(&snaps[s], a[0], hdr, 64);
				for (int b = 4; b < 8; b++) /* tail: 0 or left as it was */
					if (a[0] + b >= snaps[s].lo && a[0] + b - snaps[s].lo < snaps[s].len)
						snaps[s].mask[a[0] + b - snaps[s].lo] = 1;
			}
			u32 tail;
			gread(a[0] + 4, &tail, 4);
			u32 old_tail;
			memcpy(&old_tail, &snaps[0].before[a[0] + 4 - snaps[0].lo], 4);
			if (tail != 0 && tail != old_tail)
				fail("event ring tail is %u after setup", tail);
		}
	}
	snap_check(&snaps[0], "the call's buffer");
	snap_check(&snaps[1], "the event ring header");

	/* The store, EPT and SPPT of every page the call named (and a few others). */
	if (k == K_SET || k == K_GET || k == K_LOCK) {
		u64 n = MIN(a[1], 520ULL);
		for (u64 i = 0; i < n && a[0] + i >= a[0]; i++) {
			touch(a[0] + i);
			check_gfn(a[0] + i);
		}
		if (a[0] > 0)
			check_gfn(a[0] - 1);
	}
	for (int i = 0; i < 4; i++)
		check_gfn(W_GFN + rnd() % W_PAGES);
	check_counts();
}

/* ---- libFuzzer entry points ---- */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	trace = getenv("FUZZ_TRACE") != NULL;
	init_once();
	return 0;
}

int LLVMFuzzerTestOneInput(const u8 *data, size_t size)
{
	struct rd r = { data, size };
	u8 cfg = rd8(&r), mem = rd8(&r);
	reinit(cfg, mem);
	if (trace)
		fprintf(stderr, "input of %zu bytes: spp mode %s%s\n", size, mode_name(), starved ? ", pmm starved" : "");
	prng = 0x9e3779b97f4a7c15ULL ^ size;
	for (size_t i = 0; i < size; i++)
		prng = (prng ^ data[i]) * 0x100000001b3ULL;
	for (unsigned i = 0; i < MAX_CALLS && r.n; i++)
		one_call(&r);
	/* The 0xFF page the region's EPT leaves point to still reads 0xFF everywhere. */
	const u8 *ff = hpa_to_ptr(ff_page);
	for (unsigned i = 0; i < PAGE_SIZE; i++)
		if (ff[i] != 0xff)
			fail("the 0xFF page has 0x%02x at offset %u", ff[i], i);
	/* Everything touched by this input, once more, at the end. */
	for (u32 i = 0; i < n_touched; i++)
		check_gfn(W_GFN + touched_list[i]);
	check_counts();
	return 0;
}
