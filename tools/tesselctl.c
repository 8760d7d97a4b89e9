/*
 * tesselctl: a UEFI shell command to look at and drive Tessel's sub-page protection.
 *
 *   tesselctl info | stats | get <gpa> [pages] | set <gpa> <pages> <map> [track]
 *             | lock <gpa> [pages] | protect <gpa> <len> | selftest | help
 *
 * This file owns what needs the firmware or the hypervisor: the shell's arguments, output on
 * the console and COM1, page allocation and the hypercalls. Syntax, messages and the protect
 * arithmetic are in tools/lib/tesselctl_parse.c (host unit-tested). Every line goes to ConOut
 * (what a user at the shell sees, and what shell redirection captures) and to COM1 (what
 * tests read); OVMF mirrors ConOut on COM1 too, so a serial log holds console lines twice.
 * The selftest's TAP lines go to COM1 only, like every guest test's, so that mirror cannot
 * duplicate them.
 *
 * Exit status: EFI_SUCCESS, or EFI_INVALID_PARAMETER for a usage error, EFI_UNSUPPORTED when
 * Tessel is not running, and a status derived from the errno when a hypercall fails.
 */
#include "arch.h"
#include "guest.h"
#include <tessel.h>

#include "lib/tesselctl_parse.h"

#define MAX_ARGS 8 /* more than any command takes, so extra arguments are still seen */
#define NOT_RUNNING "tesselctl: Tessel is not running (no TesselHV signature in CPUID 0x40000000)"

/* ---- output ---- */

static void con_write(const char *s)
{
	CHAR16 buf[128];
	unsigned n = 0;
	for (;; s++) {
		if (*s == '\n')
			buf[n++] = L'\r';
		if (*s)
			buf[n++] = (CHAR16)(unsigned char)*s;
		if (!*s || n >= 126) {
			buf[n] = 0;
			if (n && ST && ST->ConOut)
				uefi_call_wrapper(ST->ConOut->OutputString, 2, ST->ConOut, buf);
			n = 0;
		}
		if (!*s)
			break;
	}
}

static void out(const char *fmt, ...) GUEST_PRINTF(1, 2);
static void out(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	fmt_vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	con_write(buf);
	serial_write(buf);
}

static void out_text(const char *s)
{
	con_write(s);
	serial_write(s);
}

/* ---- memory (UEFI identity-maps RAM, so an address is also the GPA) ---- */

static void *alloc_pages(uint64_t n)
{
	EFI_PHYSICAL_ADDRESS a = 0;
	if (EFI_ERROR(uefi_call_wrapper(BS->AllocatePages, 4, AllocateAnyPages, EfiBootServicesData, (UINTN)n, &a)))
		return NULL;
	mem_set((void *)(uintptr_t)a, 0, n * 4096);
	return (void *)(uintptr_t)a;
}

static void free_pages(void *p, uint64_t n)
{
	if (p)
		uefi_call_wrapper(BS->FreePages, 2, (EFI_PHYSICAL_ADDRESS)(uintptr_t)p, (UINTN)n);
}

static uint64_t map_buf_pages(uint64_t n)
{
	return (n * 4 + 4095) / 4096;
}

static uint64_t gpa_of(const void *p)
{
	return (uint64_t)(uintptr_t)p;
}

/* ---- hypercall failures ---- */

static EFI_STATUS efi_status_of(int64_t st)
{
	switch (st) {
	case -TESSEL_EPERM: return EFI_ACCESS_DENIED;
	case -TESSEL_EINVAL:
	case -TESSEL_EFAULT: return EFI_INVALID_PARAMETER;
	case -TESSEL_E2BIG: return EFI_BAD_BUFFER_SIZE;
	case -TESSEL_ENOMEM: return EFI_OUT_OF_RESOURCES;
	case -TESSEL_ENODEV:
	case -TESSEL_ENOSYS:
	case -TESSEL_EOPNOTSUPP: return EFI_UNSUPPORTED;
	default: return EFI_DEVICE_ERROR;
	}
}

static EFI_STATUS hc_failed(const char *cmd, const char *hc, enum tc_call call, int64_t st)
{
	char s[96];
	tc_status_str(call, st, s, sizeof(s));
	out("tesselctl: %s: %s failed: %s\n", cmd, hc, s);
	return efi_status_of(st);
}

static EFI_STATUS out_of_memory(const char *cmd)
{
	out("tesselctl: %s: out of memory (UEFI AllocatePages failed)\n", cmd);
	return EFI_OUT_OF_RESOURCES;
}

/* ---- commands ---- */

static EFI_STATUS cmd_info(void)
{
	struct tessel_cpuid sig = tessel_cpuid(TESSEL_CPUID_SIGNATURE, 0);
	struct tessel_cpuid feat = tessel_cpuid(TESSEL_CPUID_FEATURES, 0);
	uint32_t version = 0, flags = 0;
	uint64_t max = 0;
	int64_t st = tessel_query(&version, &flags, &max);
	if (st)
		return hc_failed("info", "HC_QUERY", TC_CALL_QUERY, st);
	char fl[96];
	tc_flags_str(flags, fl, sizeof(fl));
	out("Tessel: running (CPUID 0x40000000: TesselHV, highest leaf 0x%x)\n", sig.eax);
	out("ABI version: %u.%u (0x%08x)\n", TESSEL_ABI_MAJOR(version), TESSEL_ABI_MINOR(version), version);
	out("features: 0x%08x %s\n", flags, fl);
	out("sub-page protection: %s\n", flags & TESSEL_F_SPP_HW ? "hardware SPP" :
					   flags & TESSEL_F_SPP_SW ? "software (hypervisor-checked writes)" :
								    "not available (SPP calls return -ENODEV)");
	out("max pages per call: %llu\n", (unsigned long long)max);
	if (feat.eax != version || feat.ebx != flags || feat.ecx != max)
		out("tesselctl: info: note: CPUID 0x40000001 differs (version 0x%x, flags 0x%x, max pages %u)\n",
		    feat.eax, feat.ebx, feat.ecx);
	return EFI_SUCCESS;
}

static EFI_STATUS cmd_stats(void)
{
	static uint64_t probe[1];
	uint64_t full = 0;
	int64_t st = tessel_stats(gpa_of(probe), 0, &full);
	if (st)
		return hc_failed("stats", "HC_STATS", TC_CALL_STATS, st);
	uint64_t count = full / 8;
	uint64_t npages = (full + 4095) / 4096;
	uint64_t *rec = count ? alloc_pages(npages) : NULL;
	if (count && !rec)
		return out_of_memory("stats");
	if (count) {
		st = tessel_stats(gpa_of(rec), count * 8, &full);
		if (st) {
			free_pages(rec, npages);
			return hc_failed("stats", "HC_STATS", TC_CALL_STATS, st);
		}
	}
	out("HC_STATS: %llu counters (record of %llu bytes; ABI 1.3 defines %u)\n", (unsigned long long)count,
	    (unsigned long long)full, (unsigned)TESSEL_STAT_COUNT_1_2);
	for (uint64_t i = 0; i < count; i++) {
		const char *name = tc_stat_name((unsigned)i);
		char label[24];
		if (!name) {
			fmt_snprintf(label, sizeof(label), "[%llu]", (unsigned long long)i);
			name = label;
		}
		out("  %-16s %llu\n", name, (unsigned long long)rec[i]);
	}
	free_pages(rec, npages);
	return EFI_SUCCESS;
}

static void print_maps(uint64_t gfn, uint64_t n, const uint32_t *maps)
{
	char line[TC_LINE_MAX];
	out("%-18s  %-10s  %s\n", "page", "map", "sub-pages 0-31 ('.' writable, 'P' protected)");
	for (uint64_t i = 0; i < n; i++) {
		tc_map_line((gfn + i) << 12, maps[i], line, sizeof(line));
		out("%s\n", line);
	}
}

static EFI_STATUS cmd_get(const struct tc_cmd *c)
{
	uint64_t gfn = c->gpa >> 12, bp = map_buf_pages(c->pages);
	uint32_t *maps = alloc_pages(bp);
	if (!maps)
		return out_of_memory("get");
	int64_t st = tessel_spp_get(gfn, c->pages, gpa_of(maps));
	EFI_STATUS r = st ? hc_failed("get", "HC_SPP_GET", TC_CALL_GET, st) : EFI_SUCCESS;
	if (!st)
		print_maps(gfn, c->pages, maps);
	free_pages(maps, bp);
	return r;
}

static EFI_STATUS cmd_set(const struct tc_cmd *c)
{
	uint64_t gfn = c->gpa >> 12, bp = map_buf_pages(c->pages);
	uint32_t *maps = alloc_pages(bp);
	if (!maps)
		return out_of_memory("set");
	for (uint64_t i = 0; i < c->pages; i++)
		maps[i] = c->map;
	int64_t st = tessel_spp_set(gfn, c->pages, gpa_of(maps), c->flags);
	free_pages(maps, bp);
	if (st)
		return hc_failed("set", "HC_SPP_SET", TC_CALL_SET, st);
	char pic[33], s[96];
	tc_picture(c->map, pic);
	tc_status_str(TC_CALL_SET, st, s, sizeof(s));
	out("set 0x%llx %llu page(s) map 0x%08x %s%s: %s\n", (unsigned long long)(gfn << 12),
	    (unsigned long long)c->pages, c->map, pic, c->flags & TESSEL_SPP_TRACK ? " track" : "", s);
	return EFI_SUCCESS;
}

static EFI_STATUS cmd_lock(const struct tc_cmd *c)
{
	uint64_t gfn = c->gpa >> 12;
	int64_t st = tessel_spp_lock(gfn, c->pages);
	if (st)
		return hc_failed("lock", "HC_SPP_LOCK", TC_CALL_LOCK, st);
	char s[96];
	tc_status_str(TC_CALL_LOCK, st, s, sizeof(s));
	out("lock 0x%llx %llu page(s): %s\n", (unsigned long long)(gfn << 12), (unsigned long long)c->pages, s);
	return EFI_SUCCESS;
}

/*
 * Protects every sub-page [gpa, gpa+len) touches on top of the pages' current protection:
 * GET, clear the covered bits, SET all pages in one call (so it is all or nothing), GET
 * again into maps[] for the caller to show. A page in TRACK mode comes back in DENY mode:
 * HC_SPP_GET does not report the flag. *failed names the call that failed, if one did.
 */
static int64_t do_protect(uint64_t gpa, uint64_t len, uint32_t *maps, const char **failed, enum tc_call *call)
{
	uint64_t gfn = gpa >> 12, n = tc_span_pages(gpa, len);
	int64_t st = tessel_spp_get(gfn, n, gpa_of(maps));
	*failed = "HC_SPP_GET", *call = TC_CALL_GET;
	if (st)
		return st;
	for (uint64_t i = 0; i < n; i++)
		maps[i] = tc_protect_map(maps[i], gpa, len, (gfn + i) << 12);
	st = tessel_spp_set(gfn, n, gpa_of(maps), 0);
	*failed = "HC_SPP_SET", *call = TC_CALL_SET;
	if (st)
		return st;
	*failed = "HC_SPP_GET", *call = TC_CALL_GET;
	return tessel_spp_get(gfn, n, gpa_of(maps));
}

static EFI_STATUS cmd_protect(const struct tc_cmd *c)
{
	uint64_t bp = map_buf_pages(c->pages);
	uint32_t *maps = alloc_pages(bp);
	if (!maps)
		return out_of_memory("protect");
	const char *hc;
	enum tc_call call;
	int64_t st = do_protect(c->gpa, c->len, maps, &hc, &call);
	EFI_STATUS r = EFI_SUCCESS;
	if (st) {
		r = hc_failed("protect", hc, call, st);
	} else {
		out("protect 0x%llx-0x%llx (%llu bytes, %llu page(s)): OK\n", (unsigned long long)c->gpa,
		    (unsigned long long)(c->gpa + (c->len - 1)), (unsigned long long)c->len,
		    (unsigned long long)c->pages);
		print_maps(c->gpa >> 12, c->pages, maps);
	}
	free_pages(maps, bp);
	return r;
}

/* ---- selftest: the commands' code paths on pages of our own, reported as TAP on COM1 ---- */

#define SELFTEST_PLAN 15

static void wr8(volatile uint8_t *p, uint8_t v)
{
	/* Bochs 2.7 may keep a page writable in its TLB after an allowed write (docs/SPP.md
	 * section 10, bug 1): flush the page so the write is checked against the current map. */
	invlpg((const void *)p);
	*p = v;
}

/* Volatile: the compiler must not answer a read with the value it just stored. */
static uint8_t rd8(const volatile uint8_t *p)
{
	return *p;
}

static EFI_STATUS cmd_selftest(uint64_t max_pages, uint32_t flags)
{
	tap_plan(SELFTEST_PLAN);
	int t = 0;
	/* pages 0-1: protect/set/track targets; page 2: locked (unprotected); page 3: maps */
	uint8_t *pg = alloc_pages(4);
	if (!pg)
		tap_bail("tesselctl selftest: AllocatePages(4) failed");
	uint32_t *maps = (uint32_t *)(pg + 3 * 4096);
	uint64_t gfn = gpa_of(pg) >> 12, mg = gpa_of(maps);
	tap_diag("tesselctl selftest: pages at 0x%llx, max pages per call %llu", (unsigned long long)gpa_of(pg),
		 (unsigned long long)max_pages);

	if (!(flags & (TESSEL_F_SPP_HW | TESSEL_F_SPP_SW))) {
		for (; t < SELFTEST_PLAN; t++)
			tap_ok(1, "# SKIP no sub-page protection (feature flags 0x%x)", flags);
		goto done;
	}

	/* 1-2: fresh pages read unprotected; set + get round trip */
	int64_t st = tessel_spp_get(gfn, 2, mg);
	tap_ok(st == 0 && maps[0] == 0xffffffffu && maps[1] == 0xffffffffu,
	       "get: fresh pages read 0xffffffff (status %lld, %08x %08x)", (long long)st, maps[0], maps[1]);
	maps[0] = 0xffff0000u;
	st = tessel_spp_set(gfn, 1, mg, 0);
	maps[0] = 0;
	int64_t g = tessel_spp_get(gfn, 1, mg);
	tap_ok(st == 0 && g == 0 && maps[0] == 0xffff0000u, "set 0xffff0000 then get reads it back (%lld, %lld, %08x)",
	       (long long)st, (long long)g, maps[0]);

	/* 3-4: protect merges with the existing map, within a page and across a page boundary */
	const char *hc;
	enum tc_call call;
	st = do_protect(gpa_of(pg) + 0x880, 0x81, maps, &hc, &call);
	tap_ok(st == 0 && maps[0] == 0xfff90000u, "protect [+0x880, +0x901) adds sub-pages 17-18: %08x (%s %lld)",
	       maps[0], hc, (long long)st);
	st = do_protect(gpa_of(pg) + 0xfc0, 0x80, maps, &hc, &call);
	tap_ok(st == 0 && maps[0] == 0x7ff90000u && maps[1] == 0xfffffffeu,
	       "protect [+0xfc0, +0x1040) covers sub-page 31 of page 0 and 0 of page 1: %08x %08x (%s %lld)", maps[0],
	       maps[1], hc, (long long)st);

	/* 5-6: writes: a protected sub-page keeps its byte, a writable one takes it */
	wr8(pg + 0x10, 0xa5);
	uint8_t b = rd8(pg + 0x10);
	tap_ok(b == 0, "write to protected sub-page 0 is denied (byte %02x)", b);
	wr8(pg + 0x800, 0xa5);
	b = rd8(pg + 0x800);
	tap_ok(b == 0xa5, "write to writable sub-page 16 is performed (byte %02x)", b);

	/* 7-8: TRACK performs the write */
	if (flags & TESSEL_F_TRACK) {
		maps[0] = 0;
		st = tessel_spp_set(gfn + 1, 1, mg, TESSEL_SPP_TRACK);
		tap_ok(st == 0, "set page 1 map 0 track: %lld", (long long)st);
		wr8(pg + 4096 + 0x100, 0x5a);
		b = rd8(pg + 4096 + 0x100);
		tap_ok(b == 0x5a, "write to a tracked protected sub-page is performed (byte %02x)", b);
	} else {
		tap_ok(1, "# SKIP no TESSEL_F_TRACK");
		tap_ok(1, "# SKIP no TESSEL_F_TRACK");
	}

	/* 9-10: argument errors the hypervisor reports */
	st = tessel_spp_set(gfn, 0, mg, 0);
	tap_ok(st == -TESSEL_EINVAL, "set with 0 pages: -EINVAL (%lld)", (long long)st);
	st = tessel_spp_get(gfn, max_pages + 1, mg);
	tap_ok(st == -TESSEL_E2BIG, "get with max pages + 1: -E2BIG (%lld)", (long long)st);

	/* 11-13: lock an unprotected page; set on it fails with -EPERM; get still works */
	if (flags & TESSEL_F_LOCK) {
		st = tessel_spp_lock(gfn + 2, 1);
		tap_ok(st == 0, "lock page 2: %lld", (long long)st);
		maps[0] = 0;
		st = tessel_spp_set(gfn + 2, 1, mg, 0);
		char s[96];
		tc_status_str(TC_CALL_SET, st, s, sizeof(s));
		tap_ok(st == -TESSEL_EPERM, "set on a locked page: %s", s);
		st = tessel_spp_get(gfn + 2, 1, mg);
		tap_ok(st == 0 && maps[0] == 0xffffffffu, "locked page still reads 0xffffffff (%lld, %08x)", (long long)st,
		       maps[0]);
	} else {
		for (int k = 0; k < 3; k++)
			tap_ok(1, "# SKIP no TESSEL_F_LOCK");
	}

	/* 14: the parser runs on the target as on the host */
	{
		static const char *const argv[] = { "tesselctl", "set", "0x1000", "0", "0" };
		struct tc_cmd c;
		char err[TC_ERR_MAX], want[TC_ERR_MAX];
		int r = tc_parse_args(5, argv, max_pages, &c, err, sizeof(err));
		fmt_snprintf(want, sizeof(want), "tesselctl: set: <pages>: '0' is not a page count (1-%llu)",
			     (unsigned long long)max_pages);
		int same = 1;
		for (unsigned k = 0; same && (err[k] || want[k]); k++)
			same = err[k] == want[k];
		tap_ok(r == -1 && same, "parser on target: %s", err);
	}

	/* 15: restore: both pages unprotected */
	maps[0] = maps[1] = 0xffffffffu;
	st = tessel_spp_set(gfn, 2, mg, 0);
	g = tessel_spp_get(gfn, 2, mg);
	tap_ok(st == 0 && g == 0 && maps[0] == 0xffffffffu && maps[1] == 0xffffffffu,
	       "set all on both pages restores them (%lld, %lld, %08x %08x)", (long long)st, (long long)g, maps[0],
	       maps[1]);

done:;
	int failed = tap_done();
	free_pages(pg, 4);
	out("selftest: %d of %d checks failed (TAP on COM1)\n", failed, SELFTEST_PLAN);
	return failed ? EFI_ABORTED : EFI_SUCCESS;
}

/* ---- entry ---- */

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *systab)
{
	guest_init(image, systab);

	CHAR16 **wargv = NULL;
	INTN wargc = GetShellArgcArgv(image, &wargv);
	int argc = wargc > 0 && wargv ? (int)(wargc > MAX_ARGS ? MAX_ARGS : wargc) : 0;
	static char abuf[MAX_ARGS][128];
	const char *argv[MAX_ARGS];
	for (int i = 0; i < argc; i++) {
		if (tc_narrow(wargv[i], abuf[i], sizeof(abuf[i])) >= sizeof(abuf[i])) {
			/* a cut argument could parse as something else: refuse it */
			out("tesselctl: argument %d is longer than %u characters\n", i, (unsigned)sizeof(abuf[i]) - 1);
			out_text(tc_usage());
			serial_flush();
			return EFI_INVALID_PARAMETER;
		}
		argv[i] = abuf[i];
	}

	/* CPUID is safe without a hypervisor; VMCALL is not (#UD). */
	int present = tessel_present();
	uint64_t max_pages = TESSEL_MIN_MAX_PAGES;
	uint32_t flags = 0;
	if (present) {
		uint32_t v;
		uint64_t m = 0;
		if (tessel_query(&v, &flags, &m) != 0 || !m) {
			struct tessel_cpuid f = tessel_cpuid(TESSEL_CPUID_FEATURES, 0);
			flags = f.ebx;
			m = f.ecx;
		}
		if (m)
			max_pages = m;
	}

	struct tc_cmd c;
	char err[TC_ERR_MAX];
	EFI_STATUS r;
	if (tc_parse_args(argc, argv, max_pages, &c, err, sizeof(err))) {
		out("%s\n", err);
		out_text(tc_usage());
		r = EFI_INVALID_PARAMETER;
	} else if (c.op == TC_HELP) {
		out_text(tc_usage());
		r = EFI_SUCCESS;
	} else if (!present) {
		out("%s\n", NOT_RUNNING);
		r = EFI_UNSUPPORTED;
	} else {
		switch (c.op) {
		case TC_INFO: r = cmd_info(); break;
		case TC_STATS: r = cmd_stats(); break;
		case TC_GET: r = cmd_get(&c); break;
		case TC_SET: r = cmd_set(&c); break;
		case TC_LOCK: r = cmd_lock(&c); break;
		case TC_PROTECT: r = cmd_protect(&c); break;
		case TC_SELFTEST: r = cmd_selftest(max_pages, flags); break;
		default: r = EFI_INVALID_PARAMETER; break;
		}
	}
	serial_flush();
	return r;
}
