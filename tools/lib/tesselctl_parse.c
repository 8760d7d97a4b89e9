/*
 * tesselctl_parse.c: tesselctl's argument syntax, protect arithmetic and output text, with
 * no UEFI and no libc (see the header). Every message names the command and the argument it
 * is about, so a script that runs tesselctl can tell what was wrong from one line.
 */
#include "tesselctl_parse.h"

#include <lib/fmt.h>

#include "../tessel.h"

#define PROG "tesselctl"
#define PAGE 4096u
#define GFN_LIMIT (1ull << 52) /* page frames in a 64-bit address space */

/* ---- small string helpers (no libc) ---- */

static int str_eq(const char *a, const char *b)
{
	while (*a && *a == *b) {
		a++;
		b++;
	}
	return *a == *b;
}

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static int str_eq_nocase(const char *a, const char *b)
{
	while (*a && lower(*a) == lower(*b)) {
		a++;
		b++;
	}
	return lower(*a) == lower(*b);
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = lower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* An argument as it appears in a message: at most TC_ARG_SHOW characters, then "...". */
struct shown {
	char s[TC_ARG_SHOW + 4];
};

static struct shown show(const char *a)
{
	struct shown r;
	size_t i = 0;
	for (; a[i] && i < TC_ARG_SHOW; i++)
		r.s[i] = a[i];
	if (a[i]) {
		r.s[i++] = '.';
		r.s[i++] = '.';
		r.s[i++] = '.';
	}
	r.s[i] = 0;
	return r;
}

/* ---- numbers ---- */

static enum tc_num parse_hex(const char *s, unsigned max_bits, uint64_t *out)
{
	uint64_t v = 0;
	if (!*s)
		return TC_NUM_EMPTY;
	for (; *s; s++) {
		int d = hex_digit(*s);
		if (d < 0)
			return TC_NUM_JUNK;
		if (v >> (max_bits - 4))
			return TC_NUM_OVERFLOW;
		v = v << 4 | (uint64_t)d;
	}
	*out = v;
	return TC_NUM_OK;
}

enum tc_num tc_parse_u64(const char *s, uint64_t *out)
{
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		return parse_hex(s + 2, 64, out);
	if (!*s)
		return TC_NUM_EMPTY;
	uint64_t v = 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return TC_NUM_JUNK;
		uint64_t d = (uint64_t)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return TC_NUM_OVERFLOW;
		v = v * 10 + d;
	}
	*out = v;
	return TC_NUM_OK;
}

enum tc_num tc_parse_map(const char *s, uint32_t *out)
{
	if (str_eq_nocase(s, "all")) {
		*out = TESSEL_SPP_ALL_WRITABLE;
		return TC_NUM_OK;
	}
	if (str_eq_nocase(s, "none")) {
		*out = 0;
		return TC_NUM_OK;
	}
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		s += 2;
	uint64_t v;
	enum tc_num r = parse_hex(s, 32, &v);
	if (r == TC_NUM_OK)
		*out = (uint32_t)v;
	return r;
}

size_t tc_narrow(const uint16_t *w, char *out, size_t outsz)
{
	size_t n = 0;
	for (; w[n]; n++)
		if (n + 1 < outsz)
			out[n] = w[n] >= 0x20 && w[n] <= 0x7e ? (char)w[n] : '?';
	if (outsz)
		out[n < outsz ? n : outsz - 1] = 0;
	return n;
}

/* ---- the command line ---- */

struct cmd_def {
	const char *name;
	enum tc_op op;
	int min, max;           /* arguments after the command name */
	const char *arg[4];     /* their names in messages */
};

static const struct cmd_def cmds[] = {
	{ "help", TC_HELP, 0, 0, { 0 } },
	{ "info", TC_INFO, 0, 0, { 0 } },
	{ "stats", TC_STATS, 0, 0, { 0 } },
	{ "get", TC_GET, 1, 2, { "<gpa>", "[pages]" } },
	{ "set", TC_SET, 3, 4, { "<gpa>", "<pages>", "<map>", "[track]" } },
	{ "lock", TC_LOCK, 1, 2, { "<gpa>", "[pages]" } },
	{ "protect", TC_PROTECT, 2, 2, { "<gpa>", "<len>" } },
	{ "selftest", TC_SELFTEST, 0, 0, { 0 } },
};

static int fail(char *err, size_t errsz, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errsz, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fmt_vsnprintf(err, errsz, fmt, ap);
	va_end(ap);
	return -1;
}

static int parse_gpa(const struct cmd_def *d, const char *a, uint64_t *gpa, char *err, size_t errsz)
{
	enum tc_num r = tc_parse_u64(a, gpa);
	if (r == TC_NUM_OVERFLOW)
		return fail(err, errsz, PROG ": %s: <gpa>: '%s' is too large (more than 64 bits)", d->name,
			    show(a).s);
	if (r != TC_NUM_OK)
		return fail(err, errsz, PROG ": %s: <gpa>: '%s' is not an address (hex with 0x, or decimal)",
			    d->name, show(a).s);
	return 0;
}

static int parse_pages(const struct cmd_def *d, const char *name, const char *a, uint64_t gpa, uint64_t max,
		       uint64_t *pages, char *err, size_t errsz)
{
	if (tc_parse_u64(a, pages) != TC_NUM_OK || *pages < 1 || *pages > max)
		return fail(err, errsz, PROG ": %s: %s: '%s' is not a page count (1-%llu)", d->name, name, show(a).s,
			    (unsigned long long)max);
	if (*pages > GFN_LIMIT - (gpa / PAGE))
		return fail(err, errsz, PROG ": %s: %s: %llu pages from 0x%llx go beyond the 64-bit address space",
			    d->name, name, (unsigned long long)*pages, (unsigned long long)gpa);
	return 0;
}

static int parse_len(const struct cmd_def *d, const char *a, uint64_t gpa, uint64_t max, uint64_t *len, char *err,
		     size_t errsz)
{
	enum tc_num r = tc_parse_u64(a, len);
	if (r == TC_NUM_OVERFLOW)
		return fail(err, errsz, PROG ": %s: <len>: '%s' is too large (more than 64 bits)", d->name, show(a).s);
	if (r != TC_NUM_OK)
		return fail(err, errsz, PROG ": %s: <len>: '%s' is not a length (bytes, hex with 0x, or decimal)",
			    d->name, show(a).s);
	if (*len == 0)
		return fail(err, errsz, PROG ": %s: <len>: '%s' is not a length (1 or more bytes)", d->name, show(a).s);
	if (*len - 1 > UINT64_MAX - gpa)
		return fail(err, errsz, PROG ": %s: <len>: %s bytes from 0x%llx go beyond the 64-bit address space",
			    d->name, show(a).s, (unsigned long long)gpa);
	uint64_t span = tc_span_pages(gpa, *len);
	if (span > max)
		return fail(err, errsz, PROG ": %s: <len>: %s bytes from 0x%llx span %llu pages (at most %llu per call)",
			    d->name, show(a).s, (unsigned long long)gpa, (unsigned long long)span,
			    (unsigned long long)max);
	return 0;
}

int tc_parse_args(int argc, const char *const *argv, uint64_t max_pages, struct tc_cmd *cmd, char *err,
		  size_t errsz)
{
	struct tc_cmd c = { .op = TC_HELP, .pages = 1 };
	if (errsz)
		err[0] = 0;
	if (argc < 2) {
		*cmd = c;
		return 0;
	}
	const struct cmd_def *d = 0;
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (str_eq(argv[1], cmds[i].name))
			d = &cmds[i];
	if (!d)
		return fail(err, errsz, PROG ": unknown command '%s' (try '" PROG " help')", show(argv[1]).s);
	int n = argc - 2;
	const char *const *a = argv + 2;
	if (n < d->min)
		return fail(err, errsz, PROG ": %s: missing argument %s", d->name, d->arg[n]);
	if (n > d->max)
		return fail(err, errsz, PROG ": %s: unexpected argument '%s'", d->name, show(a[d->max]).s);
	c.op = d->op;

	switch (d->op) {
	case TC_GET:
	case TC_LOCK:
		if (parse_gpa(d, a[0], &c.gpa, err, errsz))
			return -1;
		if (n > 1 && parse_pages(d, "[pages]", a[1], c.gpa, max_pages, &c.pages, err, errsz))
			return -1;
		break;
	case TC_SET:
		if (parse_gpa(d, a[0], &c.gpa, err, errsz) ||
		    parse_pages(d, "<pages>", a[1], c.gpa, max_pages, &c.pages, err, errsz))
			return -1;
		if (tc_parse_map(a[2], &c.map) != TC_NUM_OK)
			return fail(err, errsz, PROG ": set: <map>: '%s' is not a map (hex up to 0xffffffff, 'all' or 'none')",
				    show(a[2]).s);
		if (n > 3) {
			if (!str_eq(a[3], "track"))
				return fail(err, errsz, PROG ": set: [track]: '%s' is not 'track'", show(a[3]).s);
			c.flags = TESSEL_SPP_TRACK;
		}
		break;
	case TC_PROTECT:
		if (parse_gpa(d, a[0], &c.gpa, err, errsz) || parse_len(d, a[1], c.gpa, max_pages, &c.len, err, errsz))
			return -1;
		c.pages = tc_span_pages(c.gpa, c.len);
		break;
	default:
		break;
	}
	*cmd = c;
	return 0;
}

/* ---- protect arithmetic ---- */

uint64_t tc_span_pages(uint64_t gpa, uint64_t len)
{
	uint64_t last = gpa + (len - 1);
	return last / PAGE - gpa / PAGE + 1;
}

uint32_t tc_covered_bits(uint64_t gpa, uint64_t len, uint64_t page_gpa)
{
	uint64_t last = gpa + (len - 1);
	uint64_t page_last = page_gpa + (PAGE - 1);
	if (len == 0 || last < page_gpa || gpa > page_last)
		return 0;
	uint64_t lo = gpa > page_gpa ? gpa - page_gpa : 0;
	uint64_t hi = last < page_last ? last - page_gpa : PAGE - 1;
	unsigned first = (unsigned)(lo / TESSEL_SPP_SUBPAGE_SIZE), end = (unsigned)(hi / TESSEL_SPP_SUBPAGE_SIZE);
	uint32_t bits = 0;
	for (unsigned j = first; j <= end; j++)
		bits |= 1u << j;
	return bits;
}

uint32_t tc_protect_map(uint32_t old, uint64_t gpa, uint64_t len, uint64_t page_gpa)
{
	return old & ~tc_covered_bits(gpa, len, page_gpa);
}

/* ---- output text ---- */

void tc_picture(uint32_t map, char out[33])
{
	for (int j = 0; j < 32; j++)
		out[j] = (map >> j) & 1 ? '.' : 'P';
	out[32] = 0;
}

int tc_map_line(uint64_t page_gpa, uint32_t map, char *buf, size_t n)
{
	char pic[33];
	tc_picture(map, pic);
	return fmt_snprintf(buf, n, "0x%016llx  0x%08x  %s", (unsigned long long)page_gpa, map, pic);
}

const char *tc_errno_name(int64_t st)
{
	switch (st) {
	case -TESSEL_EPERM: return "-EPERM";
	case -TESSEL_E2BIG: return "-E2BIG";
	case -TESSEL_ENOMEM: return "-ENOMEM";
	case -TESSEL_EFAULT: return "-EFAULT";
	case -TESSEL_ENODEV: return "-ENODEV";
	case -TESSEL_EINVAL: return "-EINVAL";
	case -TESSEL_ENOSYS: return "-ENOSYS";
	case -TESSEL_EOPNOTSUPP: return "-EOPNOTSUPP";
	default: return 0;
	}
}

/* ABI.md sections 2 and 3: the meaning of each status, per call where the call narrows it. */
const char *tc_errno_meaning(enum tc_call call, int64_t st)
{
	int spp = call == TC_CALL_SET || call == TC_CALL_GET || call == TC_CALL_LOCK;
	switch (st) {
	case 0:
		return "OK";
	case -TESSEL_EPERM:
		return call == TC_CALL_SET ? "a page is locked" : "called from CPL > 0";
	case -TESSEL_E2BIG:
		return "more pages than one call allows";
	case -TESSEL_ENOMEM:
		return "the hypervisor ran out of table memory";
	case -TESSEL_EFAULT:
		if (call == TC_CALL_SET)
			return "the map buffer is not readable guest RAM";
		if (call == TC_CALL_GET)
			return "the map buffer is not writable guest RAM";
		if (call == TC_CALL_STATS)
			return "the buffer is not 8-byte aligned guest RAM";
		return "a buffer is not guest RAM";
	case -TESSEL_ENODEV:
		return "no sub-page protection";
	case -TESSEL_EINVAL:
		return spp ? "a page is not guest RAM, or n = 0, or gfn + n overflows"
			   : "a reserved argument bit or flag is not 0";
	case -TESSEL_ENOSYS:
		return "unknown call: not implemented by this hypervisor";
	case -TESSEL_EOPNOTSUPP:
		return call == TC_CALL_SET ? "TRACK is not supported (no TESSEL_F_TRACK)" : "not supported";
	default:
		return "not an ABI status";
	}
}

int tc_status_str(enum tc_call call, int64_t st, char *buf, size_t n)
{
	const char *name = tc_errno_name(st);
	if (name)
		return fmt_snprintf(buf, n, "%s (%s)", name, tc_errno_meaning(call, st));
	return fmt_snprintf(buf, n, "%lld (%s)", (long long)st, tc_errno_meaning(call, st));
}

int tc_flags_str(uint32_t flags, char *buf, size_t n)
{
	static const char *const names[] = { "SPP_HW", "SPP_SW", "LOCK", "EVENTS", "TRACK", "DMA", "PIN", "PIN_DT", "SPP_BYTES" };
	size_t len = 0;
	if (n)
		buf[0] = 0;
	if (!flags)
		return fmt_snprintf(buf, n, "none");
	for (unsigned b = 0; b < 32; b++) {
		if (!((flags >> b) & 1))
			continue;
		const char *sep = len ? " " : "";
		int w = b < sizeof(names) / sizeof(names[0]) ? fmt_snprintf(buf + (len < n ? len : n), len < n ? n - len : 0, "%s%s", sep, names[b])
			      : fmt_snprintf(buf + (len < n ? len : n), len < n ? n - len : 0, "%sbit%u", sep, b);
		len += (size_t)w;
	}
	return (int)len;
}

const char *tc_stat_name(unsigned i)
{
	static const char *const names[TESSEL_STAT_COUNT_1_2] = {
		[TESSEL_STAT_EXITS] = "exits",
		[TESSEL_STAT_HYPERCALLS] = "hypercalls",
		[TESSEL_STAT_SPP_DENIED] = "spp_denied",
		[TESSEL_STAT_SPP_TRACKED] = "spp_tracked",
		[TESSEL_STAT_SPP_MISSES] = "spp_misses",
		[TESSEL_STAT_SPP_MISCONFIGS] = "spp_misconfigs",
		[TESSEL_STAT_EPT_VIOLATIONS] = "ept_violations",
		[TESSEL_STAT_EMULATED_WRITES] = "emulated_writes",
		[TESSEL_STAT_PAGES_PROTECTED] = "pages_protected",
		[TESSEL_STAT_SPPT_PAGES] = "sppt_pages",
		[TESSEL_STAT_EVENTS_DROPPED] = "events_dropped",
		[TESSEL_STAT_DMA_FAULTS] = "dma_faults",
		[TESSEL_STAT_PIN_DENIED] = "pin_denied",
	};
	return i < TESSEL_STAT_COUNT_1_2 ? names[i] : 0;
}

const char *tc_usage(void)
{
	return "usage: " PROG " <command> [arguments]   (numbers: hex with 0x, or decimal)\n"
	       "  info                          Tessel present?, ABI version, features, max pages per call\n"
	       "  stats                         the hypervisor's HC_STATS counters\n"
	       "  get <gpa> [pages]             sub-page maps of the pages from the one holding gpa\n"
	       "  set <gpa> <pages> <map> [track]\n"
	       "                                set one map on each page; map: hex (bit j = 1: sub-page j\n"
	       "                                writable), 'all' (unprotected) or 'none' (all protected)\n"
	       "  lock <gpa> [pages]            freeze the pages' permissions until reset\n"
	       "  protect <gpa> <len>           also protect every sub-page [gpa, gpa+len) touches\n"
	       "  selftest                      allocate pages and check set/get/protect/lock (TAP)\n"
	       "  help                          this text\n"
	       "maps print as 32 characters, sub-page 0 first: '.' writable, 'P' protected\n";
}
