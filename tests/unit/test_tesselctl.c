/*
 * Unit tests for tesselctl's pure half (tools/lib/tesselctl_parse.c): number and map syntax,
 * every command's argument checks with the exact text of each error, the protect arithmetic
 * (sub-page coverage at page and sub-page edges), map pictures, status and flag names, and a
 * deterministic random-argument loop that checks messages stay one bounded line.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/lib/tesselctl_parse.h"
#include "tools/tessel.h"

#define MAXP 512u

/* ---- helpers ---- */

static int parse_v(struct tc_cmd *c, char *err, uint64_t max, int argc, ...)
{
	const char *argv[16] = { "tesselctl" };
	va_list ap;
	va_start(ap, argc);
	for (int i = 1; i < argc; i++)
		argv[i] = va_arg(ap, const char *);
	va_end(ap);
	memset(err, 'X', TC_ERR_MAX);
	return tc_parse_args(argc, argv, max, c, err, TC_ERR_MAX);
}

#define NARGS(...) (int)(sizeof((const char *[]){ "tesselctl", __VA_ARGS__ }) / sizeof(const char *))
#define OK(c, ...)                                                                         \
	do {                                                                               \
		char err_[TC_ERR_MAX];                                                     \
		int r_ = parse_v((c), err_, MAXP, NARGS(__VA_ARGS__), __VA_ARGS__);        \
		if (r_)                                                                    \
			fail_msg("unexpected error: %s", err_);                            \
		assert_string_equal(err_, "");                                             \
	} while (0)
#define ERR(msg, ...)                                                                      \
	do {                                                                               \
		char err_[TC_ERR_MAX];                                                     \
		struct tc_cmd c_;                                                          \
		memset(&c_, 0x5a, sizeof(c_));                                             \
		struct tc_cmd before_ = c_;                                                \
		int r_ = parse_v(&c_, err_, MAXP, NARGS(__VA_ARGS__), __VA_ARGS__);        \
		assert_int_equal(r_, -1);                                                  \
		assert_string_equal(err_, (msg));                                          \
		assert_memory_equal(&c_, &before_, sizeof(c_));                            \
	} while (0)

/* ---- numbers ---- */

static void test_parse_u64(void **state)
{
	(void)state;
	uint64_t v = 7;
	assert_int_equal(tc_parse_u64("0", &v), TC_NUM_OK);
	assert_int_equal(v, 0);
	assert_int_equal(tc_parse_u64("4096", &v), TC_NUM_OK);
	assert_int_equal(v, 4096);
	assert_int_equal(tc_parse_u64("0x1000", &v), TC_NUM_OK);
	assert_int_equal(v, 0x1000);
	assert_int_equal(tc_parse_u64("0XaBcDeF", &v), TC_NUM_OK);
	assert_int_equal(v, 0xabcdef);
	assert_int_equal(tc_parse_u64("007", &v), TC_NUM_OK); /* leading zeros: decimal, not octal */
	assert_int_equal(v, 7);
	assert_int_equal(tc_parse_u64("18446744073709551615", &v), TC_NUM_OK);
	assert_true(v == UINT64_MAX);
	assert_int_equal(tc_parse_u64("0xffffffffffffffff", &v), TC_NUM_OK);
	assert_true(v == UINT64_MAX);
	assert_int_equal(tc_parse_u64("0x0000000000000000001", &v), TC_NUM_OK); /* zeros do not overflow */
	assert_int_equal(v, 1);

	v = 7;
	assert_int_equal(tc_parse_u64("18446744073709551616", &v), TC_NUM_OVERFLOW);
	assert_int_equal(tc_parse_u64("99999999999999999999", &v), TC_NUM_OVERFLOW);
	assert_int_equal(tc_parse_u64("0x10000000000000000", &v), TC_NUM_OVERFLOW);
	assert_int_equal(tc_parse_u64("", &v), TC_NUM_EMPTY);
	assert_int_equal(tc_parse_u64("0x", &v), TC_NUM_EMPTY);
	assert_int_equal(tc_parse_u64("12a", &v), TC_NUM_JUNK);
	assert_int_equal(tc_parse_u64("0x1g", &v), TC_NUM_JUNK);
	assert_int_equal(tc_parse_u64("ff", &v), TC_NUM_JUNK); /* hex needs 0x here */
	assert_int_equal(tc_parse_u64("-1", &v), TC_NUM_JUNK);
	assert_int_equal(tc_parse_u64("+1", &v), TC_NUM_JUNK);
	assert_int_equal(tc_parse_u64(" 1", &v), TC_NUM_JUNK);
	assert_int_equal(tc_parse_u64("1 ", &v), TC_NUM_JUNK);
	assert_int_equal(tc_parse_u64("0x 1", &v), TC_NUM_JUNK);
	assert_int_equal(tc_parse_u64("0b101", &v), TC_NUM_JUNK);
	assert_int_equal(v, 7); /* untouched on error */
}

static void test_parse_map(void **state)
{
	(void)state;
	uint32_t m = 7;
	assert_int_equal(tc_parse_map("all", &m), TC_NUM_OK);
	assert_true(m == 0xffffffffu);
	assert_int_equal(tc_parse_map("none", &m), TC_NUM_OK);
	assert_int_equal(m, 0);
	assert_int_equal(tc_parse_map("ALL", &m), TC_NUM_OK);
	assert_true(m == 0xffffffffu);
	assert_int_equal(tc_parse_map("0xffff0000", &m), TC_NUM_OK);
	assert_true(m == 0xffff0000u);
	assert_int_equal(tc_parse_map("ffff0000", &m), TC_NUM_OK); /* plain hex */
	assert_true(m == 0xffff0000u);
	assert_int_equal(tc_parse_map("10", &m), TC_NUM_OK); /* hex, not decimal */
	assert_int_equal(m, 0x10);
	assert_int_equal(tc_parse_map("0x000000000ff", &m), TC_NUM_OK);
	assert_int_equal(m, 0xff);

	m = 7;
	assert_int_equal(tc_parse_map("0x100000000", &m), TC_NUM_OVERFLOW);
	assert_int_equal(tc_parse_map("1ffffffff", &m), TC_NUM_OVERFLOW);
	assert_int_equal(tc_parse_map("", &m), TC_NUM_EMPTY);
	assert_int_equal(tc_parse_map("0x", &m), TC_NUM_EMPTY);
	assert_int_equal(tc_parse_map("alll", &m), TC_NUM_JUNK);
	assert_int_equal(tc_parse_map("0xfz", &m), TC_NUM_JUNK);
	assert_int_equal(tc_parse_map("nonE ", &m), TC_NUM_JUNK);
	assert_int_equal(m, 7);
}

static void test_narrow(void **state)
{
	(void)state;
	char out[8];
	const uint16_t a[] = { 's', 'e', 't', 0 };
	assert_int_equal(tc_narrow(a, out, sizeof(out)), 3);
	assert_string_equal(out, "set");
	const uint16_t b[] = { 'x', 0x00e9, 0x263a, '\t', 'y', 0 };
	assert_int_equal(tc_narrow(b, out, sizeof(out)), 5);
	assert_string_equal(out, "x???y");
	const uint16_t c[] = { '1', '2', '3', '4', '5', '6', '7', '8', '9', 0 };
	assert_int_equal(tc_narrow(c, out, sizeof(out)), 9); /* >= size: cut */
	assert_string_equal(out, "1234567");
	const uint16_t e[] = { 0 };
	assert_int_equal(tc_narrow(e, out, sizeof(out)), 0);
	assert_string_equal(out, "");
}

/* ---- commands: success ---- */

static void test_args_commands(void **state)
{
	(void)state;
	struct tc_cmd c;
	char err[TC_ERR_MAX];
	assert_int_equal(parse_v(&c, err, MAXP, 1), 0);
	assert_int_equal(c.op, TC_HELP);
	OK(&c, "help");
	assert_int_equal(c.op, TC_HELP);
	OK(&c, "info");
	assert_int_equal(c.op, TC_INFO);
	OK(&c, "stats");
	assert_int_equal(c.op, TC_STATS);
	OK(&c, "selftest");
	assert_int_equal(c.op, TC_SELFTEST);

	OK(&c, "get", "0x12345678");
	assert_int_equal(c.op, TC_GET);
	assert_int_equal(c.gpa, 0x12345678);
	assert_int_equal(c.pages, 1);
	OK(&c, "get", "4096", "512");
	assert_int_equal(c.gpa, 4096);
	assert_int_equal(c.pages, 512);

	OK(&c, "set", "0x7000", "2", "0xffff0000");
	assert_int_equal(c.op, TC_SET);
	assert_int_equal(c.gpa, 0x7000);
	assert_int_equal(c.pages, 2);
	assert_true(c.map == 0xffff0000u);
	assert_int_equal(c.flags, 0);
	OK(&c, "set", "0x7000", "1", "none", "track");
	assert_int_equal(c.map, 0);
	assert_int_equal(c.flags, TESSEL_SPP_TRACK);
	OK(&c, "set", "0x7000", "0x1", "all");
	assert_true(c.map == 0xffffffffu);

	OK(&c, "lock", "0x7000");
	assert_int_equal(c.op, TC_LOCK);
	assert_int_equal(c.pages, 1);
	OK(&c, "lock", "0x7000", "3");
	assert_int_equal(c.pages, 3);

	OK(&c, "protect", "0x7080", "0x100");
	assert_int_equal(c.op, TC_PROTECT);
	assert_int_equal(c.gpa, 0x7080);
	assert_int_equal(c.len, 0x100);
	assert_int_equal(c.pages, 1);
	OK(&c, "protect", "0x7fc0", "0x80");
	assert_int_equal(c.pages, 2);
	OK(&c, "protect", "0x1000", "2097152"); /* exactly 512 pages */
	assert_int_equal(c.pages, 512);
	OK(&c, "protect", "0xffffffffffffffff", "1"); /* the last byte of the address space */
	assert_int_equal(c.pages, 1);

	/* the page limit follows max_pages */
	assert_int_equal(parse_v(&c, err, 4096, 4, "get", "0", "4096"), 0);
	assert_int_equal(c.pages, 4096);
}

/* ---- commands: every error, exactly ---- */

static void test_args_errors(void **state)
{
	(void)state;
	ERR("tesselctl: unknown command 'frob' (try 'tesselctl help')", "frob");
	ERR("tesselctl: unknown command 'GET' (try 'tesselctl help')", "GET");
	ERR("tesselctl: unknown command '' (try 'tesselctl help')", "");
	ERR("tesselctl: help: unexpected argument 'me'", "help", "me");
	ERR("tesselctl: info: unexpected argument '1'", "info", "1");
	ERR("tesselctl: stats: unexpected argument 'x'", "stats", "x");
	ERR("tesselctl: selftest: unexpected argument 'now'", "selftest", "now");

	ERR("tesselctl: get: missing argument <gpa>", "get");
	ERR("tesselctl: get: unexpected argument 'extra'", "get", "0", "1", "extra");
	ERR("tesselctl: get: <gpa>: '0x12zz' is not an address (hex with 0x, or decimal)", "get", "0x12zz");
	ERR("tesselctl: get: <gpa>: '' is not an address (hex with 0x, or decimal)", "get", "");
	ERR("tesselctl: get: <gpa>: '0x' is not an address (hex with 0x, or decimal)", "get", "0x");
	ERR("tesselctl: get: <gpa>: 'abc' is not an address (hex with 0x, or decimal)", "get", "abc");
	ERR("tesselctl: get: <gpa>: '0x10000000000000000' is too large (more than 64 bits)", "get",
	    "0x10000000000000000");
	ERR("tesselctl: get: [pages]: '0' is not a page count (1-512)", "get", "0", "0");
	ERR("tesselctl: get: [pages]: '513' is not a page count (1-512)", "get", "0", "513");
	ERR("tesselctl: get: [pages]: '1x' is not a page count (1-512)", "get", "0", "1x");
	ERR("tesselctl: get: [pages]: '-1' is not a page count (1-512)", "get", "0", "-1");
	ERR("tesselctl: get: [pages]: '18446744073709551617' is not a page count (1-512)", "get", "0",
	    "18446744073709551617");
	ERR("tesselctl: get: [pages]: 2 pages from 0xfffffffffffff000 go beyond the 64-bit address space", "get",
	    "0xfffffffffffff000", "2");

	ERR("tesselctl: set: missing argument <pages>", "set", "0x1000");
	ERR("tesselctl: set: missing argument <map>", "set", "0x1000", "1");
	ERR("tesselctl: set: missing argument <gpa>", "set");
	ERR("tesselctl: set: unexpected argument 'again'", "set", "0x1000", "1", "0", "track", "again");
	ERR("tesselctl: set: <pages>: '0' is not a page count (1-512)", "set", "0x1000", "0", "0");
	ERR("tesselctl: set: <gpa>: '1k' is not an address (hex with 0x, or decimal)", "set", "1k", "1", "0");
	ERR("tesselctl: set: <map>: 'some' is not a map (hex up to 0xffffffff, 'all' or 'none')", "set", "0x1000",
	    "1", "some");
	ERR("tesselctl: set: <map>: '0x100000000' is not a map (hex up to 0xffffffff, 'all' or 'none')", "set",
	    "0x1000", "1", "0x100000000");
	ERR("tesselctl: set: <map>: '' is not a map (hex up to 0xffffffff, 'all' or 'none')", "set", "0x1000", "1",
	    "");
	ERR("tesselctl: set: [track]: 'TRACK' is not 'track'", "set", "0x1000", "1", "0", "TRACK");
	ERR("tesselctl: set: [track]: 'tracks' is not 'track'", "set", "0x1000", "1", "0", "tracks");

	ERR("tesselctl: lock: missing argument <gpa>", "lock");
	ERR("tesselctl: lock: [pages]: '1000' is not a page count (1-512)", "lock", "0", "1000");
	ERR("tesselctl: lock: unexpected argument '2'", "lock", "0", "1", "2");

	ERR("tesselctl: protect: missing argument <len>", "protect", "0x1000");
	ERR("tesselctl: protect: missing argument <gpa>", "protect");
	ERR("tesselctl: protect: unexpected argument 'x'", "protect", "0", "1", "x");
	ERR("tesselctl: protect: <len>: '0' is not a length (1 or more bytes)", "protect", "0x1000", "0");
	ERR("tesselctl: protect: <len>: '0x' is not a length (bytes, hex with 0x, or decimal)", "protect", "0x1000",
	    "0x");
	ERR("tesselctl: protect: <len>: '99999999999999999999' is too large (more than 64 bits)", "protect", "0",
	    "99999999999999999999");
	ERR("tesselctl: protect: <len>: 2 bytes from 0xffffffffffffffff go beyond the 64-bit address space",
	    "protect", "0xffffffffffffffff", "2");
	ERR("tesselctl: protect: <len>: 2097153 bytes from 0x1000 span 513 pages (at most 512 per call)", "protect",
	    "0x1000", "2097153");
	ERR("tesselctl: protect: <len>: 0x200000 bytes from 0x1001 span 513 pages (at most 512 per call)", "protect",
	    "0x1001", "0x200000");

	/* long arguments are shortened in the message */
	ERR("tesselctl: unknown command '0123456789012345678901234567890123456789...' (try 'tesselctl help')",
	    "01234567890123456789012345678901234567890123456789");
}

static void test_args_error_buffer(void **state)
{
	(void)state;
	/* a small error buffer is filled and terminated, never overrun */
	const char *argv[] = { "tesselctl", "frob" };
	char err[16 + 4];
	memset(err, 'X', sizeof(err));
	struct tc_cmd c;
	assert_int_equal(tc_parse_args(2, argv, MAXP, &c, err, 16), -1);
	assert_int_equal(strlen(err), 15);
	assert_memory_equal(err + 16, "XXXX", 4);
}

/* ---- protect arithmetic ---- */

static void test_protect_math(void **state)
{
	(void)state;
	assert_int_equal(tc_span_pages(0x1000, 1), 1);
	assert_int_equal(tc_span_pages(0x1000, 0x1000), 1);
	assert_int_equal(tc_span_pages(0x1000, 0x1001), 2);
	assert_int_equal(tc_span_pages(0x1fff, 2), 2);
	assert_int_equal(tc_span_pages(0x1fc0, 0x80), 2);
	assert_int_equal(tc_span_pages(0xffffffffffffffffull, 1), 1);
	assert_int_equal(tc_span_pages(0xfffffffffffff000ull, 0x1000), 1);

	/* within one sub-page, at its edges */
	assert_int_equal(tc_covered_bits(0x1000, 1, 0x1000), 0x1);
	assert_int_equal(tc_covered_bits(0x1000, 128, 0x1000), 0x1);
	assert_int_equal(tc_covered_bits(0x1000, 129, 0x1000), 0x3);
	assert_int_equal(tc_covered_bits(0x107f, 1, 0x1000), 0x1);
	assert_int_equal(tc_covered_bits(0x107f, 2, 0x1000), 0x3);
	assert_int_equal(tc_covered_bits(0x1080, 1, 0x1000), 0x2);
	assert_int_equal(tc_covered_bits(0x1880, 0x81, 0x1000), 0x60000);
	assert_true(tc_covered_bits(0x1fff, 1, 0x1000) == 0x80000000u);
	assert_true(tc_covered_bits(0x1000, 0x1000, 0x1000) == 0xffffffffu);
	assert_true(tc_covered_bits(0x0, 0x3000, 0x1000) == 0xffffffffu);
	/* crossing a page: each page sees its own part; others see nothing */
	assert_true(tc_covered_bits(0x1fc0, 0x80, 0x1000) == 0x80000000u);
	assert_int_equal(tc_covered_bits(0x1fc0, 0x80, 0x2000), 0x1);
	assert_int_equal(tc_covered_bits(0x1fc0, 0x80, 0x3000), 0);
	assert_int_equal(tc_covered_bits(0x1fc0, 0x80, 0x0000), 0);
	assert_int_equal(tc_covered_bits(0x1fc0, 0x41, 0x2000), 0x1);
	assert_int_equal(tc_covered_bits(0x1fc0, 0x40, 0x2000), 0);
	/* the top of the address space */
	assert_true(tc_covered_bits(0xffffffffffffff80ull, 0x80, 0xfffffffffffff000ull) == 0x80000000u);

	/* merging keeps existing protection */
	assert_true(tc_protect_map(0xffffffffu, 0x1000, 1, 0x1000) == 0xfffffffeu);
	assert_true(tc_protect_map(0xffff0000u, 0x1880, 0x81, 0x1000) == 0xfff90000u);
	assert_true(tc_protect_map(0xfff90000u, 0x1fc0, 0x80, 0x1000) == 0x7ff90000u);
	assert_true(tc_protect_map(0xffffffffu, 0x1fc0, 0x80, 0x2000) == 0xfffffffeu);
	assert_int_equal(tc_protect_map(0, 0x1000, 0x80, 0x1000), 0);

	/* exhaustive against a byte-by-byte model on a few pages */
	for (uint64_t gpa = 0x1f00; gpa < 0x2100; gpa += 0x3f)
		for (uint64_t len = 1; len < 0x1200; len += 0x41)
			for (uint64_t page = 0x1000; page <= 0x3000; page += 0x1000) {
				uint32_t want = 0;
				for (uint64_t b = gpa; b < gpa + len; b++)
					if (b >= page && b < page + 0x1000)
						want |= 1u << ((b - page) / 128);
				assert_true(tc_covered_bits(gpa, len, page) == want);
			}
}

/* ---- output text ---- */

static void test_picture(void **state)
{
	(void)state;
	char pic[33];
	tc_picture(0xffffffffu, pic);
	assert_string_equal(pic, "................................");
	tc_picture(0, pic);
	assert_string_equal(pic, "PPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPP");
	tc_picture(0xffff0000u, pic);
	assert_string_equal(pic, "PPPPPPPPPPPPPPPP................");
	tc_picture(0x7ffffffeu, pic);
	assert_string_equal(pic, "P..............................P");

	char line[TC_LINE_MAX];
	tc_map_line(0x7f3e000, 0xfff90000u, line, sizeof(line));
	assert_string_equal(line, "0x0000000007f3e000  0xfff90000  PPPPPPPPPPPPPPPP.PP.............");
	tc_map_line(0xfffffffffffff000ull, 0x1, line, sizeof(line));
	assert_string_equal(line, "0xfffffffffffff000  0x00000001  .PPPPPPPPPPPPPPPPPPPPPPPPPPPPPPP");
}

static void test_status(void **state)
{
	(void)state;
	char s[96];
	assert_string_equal(tc_errno_name(-1), "-EPERM");
	assert_string_equal(tc_errno_name(-7), "-E2BIG");
	assert_string_equal(tc_errno_name(-12), "-ENOMEM");
	assert_string_equal(tc_errno_name(-14), "-EFAULT");
	assert_string_equal(tc_errno_name(-19), "-ENODEV");
	assert_string_equal(tc_errno_name(-22), "-EINVAL");
	assert_string_equal(tc_errno_name(-38), "-ENOSYS");
	assert_string_equal(tc_errno_name(-95), "-EOPNOTSUPP");
	assert_null(tc_errno_name(0));
	assert_null(tc_errno_name(1));
	assert_null(tc_errno_name(-2));

	tc_status_str(TC_CALL_SET, 0, s, sizeof(s));
	assert_string_equal(s, "0 (OK)");
	tc_status_str(TC_CALL_SET, -TESSEL_EPERM, s, sizeof(s));
	assert_string_equal(s, "-EPERM (a page is locked)");
	tc_status_str(TC_CALL_LOCK, -TESSEL_EPERM, s, sizeof(s));
	assert_string_equal(s, "-EPERM (called from CPL > 0)");
	tc_status_str(TC_CALL_SET, -TESSEL_EINVAL, s, sizeof(s));
	assert_string_equal(s, "-EINVAL (a page is not guest RAM, or n = 0, or gfn + n overflows)");
	tc_status_str(TC_CALL_SET, -TESSEL_EOPNOTSUPP, s, sizeof(s));
	assert_string_equal(s, "-EOPNOTSUPP (TRACK is not supported (no TESSEL_F_TRACK))");
	tc_status_str(TC_CALL_GET, -TESSEL_EFAULT, s, sizeof(s));
	assert_string_equal(s, "-EFAULT (the map buffer is not writable guest RAM)");
	tc_status_str(TC_CALL_SET, -TESSEL_EFAULT, s, sizeof(s));
	assert_string_equal(s, "-EFAULT (the map buffer is not readable guest RAM)");
	tc_status_str(TC_CALL_STATS, -TESSEL_EFAULT, s, sizeof(s));
	assert_string_equal(s, "-EFAULT (the buffer is not 8-byte aligned guest RAM)");
	tc_status_str(TC_CALL_GET, -TESSEL_ENODEV, s, sizeof(s));
	assert_string_equal(s, "-ENODEV (no sub-page protection)");
	tc_status_str(TC_CALL_GET, -TESSEL_E2BIG, s, sizeof(s));
	assert_string_equal(s, "-E2BIG (more pages than one call allows)");
	tc_status_str(TC_CALL_SET, -TESSEL_ENOMEM, s, sizeof(s));
	assert_string_equal(s, "-ENOMEM (the hypervisor ran out of table memory)");
	tc_status_str(TC_CALL_QUERY, -TESSEL_ENOSYS, s, sizeof(s));
	assert_string_equal(s, "-ENOSYS (unknown call: not implemented by this hypervisor)");
	tc_status_str(TC_CALL_QUERY, -TESSEL_EINVAL, s, sizeof(s));
	assert_string_equal(s, "-EINVAL (a reserved argument bit or flag is not 0)");
	tc_status_str(TC_CALL_SET, -99, s, sizeof(s));
	assert_string_equal(s, "-99 (not an ABI status)");
	tc_status_str(TC_CALL_SET, 5, s, sizeof(s));
	assert_string_equal(s, "5 (not an ABI status)");
}

static void test_flags(void **state)
{
	(void)state;
	char s[96];
	assert_int_equal(tc_flags_str(0, s, sizeof(s)), 4);
	assert_string_equal(s, "none");
	tc_flags_str(TESSEL_F_SPP_HW | TESSEL_F_LOCK | TESSEL_F_EVENTS | TESSEL_F_TRACK, s, sizeof(s));
	assert_string_equal(s, "SPP_HW LOCK EVENTS TRACK");
	tc_flags_str(TESSEL_F_SPP_SW, s, sizeof(s));
	assert_string_equal(s, "SPP_SW");
	tc_flags_str(TESSEL_F_KNOWN | (1u << 9) | (1u << 31), s, sizeof(s));
	assert_string_equal(s, "SPP_HW SPP_SW LOCK EVENTS TRACK DMA PIN PIN_DT SPP_BYTES bit9 bit31");
	/* a short buffer is terminated, and the return value is the full length */
	char t[8];
	assert_int_equal(tc_flags_str(TESSEL_F_KNOWN, t, sizeof(t)), (int)strlen("SPP_HW SPP_SW LOCK EVENTS TRACK DMA PIN PIN_DT SPP_BYTES"));
	assert_string_equal(t, "SPP_HW ");
}

static void test_stat_names(void **state)
{
	(void)state;
	static const char *const want[] = { "exits", "hypercalls", "spp_denied", "spp_tracked", "spp_misses",
					    "spp_misconfigs", "ept_violations", "emulated_writes",
					    "pages_protected", "sppt_pages", "events_dropped", "dma_faults",
					    "pin_denied" };
	assert_int_equal(sizeof(want) / sizeof(want[0]), TESSEL_STAT_COUNT_1_2);
	for (unsigned i = 0; i < TESSEL_STAT_COUNT_1_2; i++)
		assert_string_equal(tc_stat_name(i), want[i]);
	assert_null(tc_stat_name(13));
	assert_null(tc_stat_name(1000));
}

static void test_usage(void **state)
{
	(void)state;
	const char *u = tc_usage();
	assert_non_null(strstr(u, "usage: tesselctl"));
	static const char *const cmds[] = { "info", "stats", "get <gpa> [pages]", "set <gpa> <pages> <map> [track]",
					    "lock <gpa> [pages]", "protect <gpa> <len>", "selftest", "help" };
	for (unsigned i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		assert_non_null(strstr(u, cmds[i]));
	assert_int_equal(u[strlen(u) - 1], '\n');
}

/* ---- random arguments: never a crash, always one bounded line or a sane command ---- */

static void test_random_args(void **state)
{
	(void)state;
	static const char *const words[] = { "get", "set", "lock", "protect", "info", "stats", "help", "selftest",
					     "track", "all", "none", "0", "1", "512", "513", "0x", "0x1000",
					     "0xffffffffffffffff", "18446744073709551616", "ffff0000", "-1", "" };
	const unsigned nw = sizeof(words) / sizeof(words[0]);
	uint64_t seed = 12345;
	for (int iter = 0; iter < 200000; iter++) {
		const char *argv[8] = { "tesselctl" };
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		int argc = 1 + (int)((seed >> 33) % 7);
		for (int i = 1; i < argc; i++) {
			seed = seed * 6364136223846793005ull + 1442695040888963407ull;
			argv[i] = words[(seed >> 33) % nw];
		}
		struct tc_cmd c;
		char err[TC_ERR_MAX];
		int r = tc_parse_args(argc, argv, MAXP, &c, err, sizeof(err));
		size_t n = strnlen(err, sizeof(err));
		assert_true(n < sizeof(err));
		assert_null(strchr(err, '\n'));
		if (r) {
			assert_int_equal(r, -1);
			assert_true(strncmp(err, "tesselctl: ", 11) == 0);
			assert_true(n < 150);
			continue;
		}
		assert_int_equal(n, 0);
		if (c.op == TC_GET || c.op == TC_SET || c.op == TC_LOCK || c.op == TC_PROTECT)
			assert_true(c.pages >= 1 && c.pages <= MAXP);
		if (c.op == TC_PROTECT)
			assert_true(c.len >= 1 && tc_span_pages(c.gpa, c.len) == c.pages);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_u64),     cmocka_unit_test(test_parse_map),
		cmocka_unit_test(test_narrow),        cmocka_unit_test(test_args_commands),
		cmocka_unit_test(test_args_errors),   cmocka_unit_test(test_args_error_buffer),
		cmocka_unit_test(test_protect_math),  cmocka_unit_test(test_picture),
		cmocka_unit_test(test_status),        cmocka_unit_test(test_flags),
		cmocka_unit_test(test_stat_names),    cmocka_unit_test(test_usage),
		cmocka_unit_test(test_random_args),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
