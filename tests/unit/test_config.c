/*
 * Unit tests for the loader's configuration parser (boot/config.c): defaults, every key
 * and value, file syntax (comments, whitespace, CRLF, BOM), the exact text of every error,
 * the "unchanged on error" contract, command-line overrides, config_format round trips
 * and a deterministic mutation fuzz loop.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "boot/config.h"

#define SRC "\\EFI\\BOOT\\tessel.cfg"

/* ---- helpers ---- */

static struct tessel_config parse_ok(const char *text, size_t len)
{
	struct tessel_config cfg;
	char err[CONFIG_ERR_MAX];
	config_defaults(&cfg);
	int rc = config_parse_file(&cfg, text, len, SRC, err, sizeof(err));
	if (rc)
		fail_msg("unexpected error for [%s]: %s", text, err);
	assert_string_equal(err, "");
	return cfg;
}

#define PARSE_OK(s) parse_ok((s), sizeof(s) - 1)

/* Parse `len` bytes expecting exactly `msg`; also checks *cfg is untouched. */
static void expect_file_err_n(const char *text, size_t len, const char *msg)
{
	struct tessel_config cfg, before;
	char err[CONFIG_ERR_MAX];
	config_defaults(&cfg);
	cfg.heap_mib = 77; /* something non-default to notice a partial commit */
	strcpy(cfg.next, "\\keep.efi");
	before = cfg;
	memset(err, 'X', sizeof(err));
	int rc = config_parse_file(&cfg, text, len, SRC, err, sizeof(err));
	assert_int_equal(rc, -EINVAL);
	assert_string_equal(err, msg);
	assert_memory_equal(&cfg, &before, sizeof(cfg));
}

#define FILE_ERR(s, msg) expect_file_err_n((s), sizeof(s) - 1, (msg))

static int parse_args_v(struct tessel_config *cfg, char *err, size_t errlen, int argc, ...)
{
	const char *argv[16];
	va_list ap;
	va_start(ap, argc);
	for (int i = 0; i < argc; i++)
		argv[i] = va_arg(ap, const char *);
	va_end(ap);
	return config_parse_args(cfg, argc, argv, err, errlen);
}

static void expect_args_err(const char *msg, int argc, const char *const argv[])
{
	struct tessel_config cfg, before;
	char err[CONFIG_ERR_MAX];
	config_defaults(&cfg);
	cfg.spp = CFG_SPP_SW;
	before = cfg;
	int rc = config_parse_args(&cfg, argc, argv, err, sizeof(err));
	assert_int_equal(rc, -EINVAL);
	assert_string_equal(err, msg);
	assert_memory_equal(&cfg, &before, sizeof(cfg));
}

static void assert_default_values(const struct tessel_config *cfg)
{
	assert_string_equal(cfg->next, "");
	assert_int_equal(cfg->spp, CFG_SPP_AUTO);
	assert_int_equal(cfg->log_level, CFG_LOG_INFO);
	assert_int_equal(cfg->heap_mib, CFG_HEAP_DEFAULT_MIB);
	assert_int_equal(cfg->no_vmx, CFG_NO_VMX_CONTINUE);
	assert_int_equal(cfg->sppt, CFG_SPPT_EAGER);
	assert_int_equal(cfg->check, CFG_CHECK_OFF);
	assert_int_equal(cfg->iommu, CFG_IOMMU_AUTO);
}

/* ---- defaults and values ---- */

static void test_defaults(void **state)
{
	(void)state;
	struct tessel_config cfg;
	char line[CONFIG_FORMAT_MAX];
	memset(&cfg, 0xa5, sizeof(cfg));
	config_defaults(&cfg);
	assert_default_values(&cfg);
	assert_int_equal(cfg.ept_bbm, CFG_EPT_BBM_AUTO);
	assert_int_equal(cfg.pad2, 0);
	for (size_t i = 0; i < CFG_NEXT_MAX; i++)
		assert_int_equal(cfg.next[i], 0);
	config_format(&cfg, line, sizeof(line));
	assert_string_equal(line, "next= spp=auto log=info heap=32 no_vmx=continue sppt=eager check=off iommu=auto ept_bbm=auto");

	/* Empty text, or only blank lines and comments, changes nothing. */
	cfg = parse_ok("", 0);
	assert_default_values(&cfg);
	cfg = parse_ok(NULL, 0);
	assert_default_values(&cfg);
	cfg = PARSE_OK("\n\n# nothing\n   \n\t# indented\n");
	assert_default_values(&cfg);
}

static void test_every_value(void **state)
{
	(void)state;
	static const struct {
		const char *key, *value;
		size_t offset;
		u32 expect;
	} cases[] = {
		{ "spp", "auto", offsetof(struct tessel_config, spp), CFG_SPP_AUTO },
		{ "spp", "hw", offsetof(struct tessel_config, spp), CFG_SPP_HW },
		{ "spp", "sw", offsetof(struct tessel_config, spp), CFG_SPP_SW },
		{ "spp", "off", offsetof(struct tessel_config, spp), CFG_SPP_OFF },
		{ "log", "error", offsetof(struct tessel_config, log_level), CFG_LOG_ERROR },
		{ "log", "warn", offsetof(struct tessel_config, log_level), CFG_LOG_WARN },
		{ "log", "info", offsetof(struct tessel_config, log_level), CFG_LOG_INFO },
		{ "log", "debug", offsetof(struct tessel_config, log_level), CFG_LOG_DEBUG },
		{ "heap", "8", offsetof(struct tessel_config, heap_mib), 8 },
		{ "heap", "32", offsetof(struct tessel_config, heap_mib), 32 },
		{ "heap", "4096", offsetof(struct tessel_config, heap_mib), 4096 },
		{ "no_vmx", "continue", offsetof(struct tessel_config, no_vmx), CFG_NO_VMX_CONTINUE },
		{ "no_vmx", "stop", offsetof(struct tessel_config, no_vmx), CFG_NO_VMX_STOP },
		{ "sppt", "eager", offsetof(struct tessel_config, sppt), CFG_SPPT_EAGER },
		{ "sppt", "lazy", offsetof(struct tessel_config, sppt), CFG_SPPT_LAZY },
		{ "iommu", "auto", offsetof(struct tessel_config, iommu), CFG_IOMMU_AUTO },
		{ "iommu", "on", offsetof(struct tessel_config, iommu), CFG_IOMMU_ON },
		{ "iommu", "off", offsetof(struct tessel_config, iommu), CFG_IOMMU_OFF },
		{ "ept_bbm", "auto", offsetof(struct tessel_config, ept_bbm), CFG_EPT_BBM_AUTO },
		{ "ept_bbm", "on", offsetof(struct tessel_config, ept_bbm), CFG_EPT_BBM_ON },
		{ "ept_bbm", "off", offsetof(struct tessel_config, ept_bbm), CFG_EPT_BBM_OFF },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[64], arg[64], err[CONFIG_ERR_MAX];
		struct tessel_config cfg, expect;
		u32 got;

		config_defaults(&expect);
		memcpy((char *)&expect + cases[i].offset, &cases[i].expect, sizeof(u32));

		snprintf(text, sizeof(text), "%s=%s\n", cases[i].key, cases[i].value);
		cfg = parse_ok(text, strlen(text));
		memcpy(&got, (char *)&cfg + cases[i].offset, sizeof(u32));
		assert_int_equal(got, cases[i].expect);
		assert_memory_equal(&cfg, &expect, sizeof(cfg));

		snprintf(arg, sizeof(arg), "%s=%s", cases[i].key, cases[i].value);
		config_defaults(&cfg);
		assert_int_equal(parse_args_v(&cfg, err, sizeof(err), 1, arg), 0);
		assert_memory_equal(&cfg, &expect, sizeof(cfg));
	}

	struct tessel_config cfg = PARSE_OK("next=\\EFI\\tests\\a.efi\n");
	assert_string_equal(cfg.next, "\\EFI\\tests\\a.efi");
	cfg = PARSE_OK("next=\n");
	assert_string_equal(cfg.next, "");

	/* All keys at once. */
	cfg = PARSE_OK("next=\\a.efi\nspp=off\nlog=debug\nheap=100\nno_vmx=stop\nsppt=lazy\ncheck=entry\n");
	assert_string_equal(cfg.next, "\\a.efi");
	assert_int_equal(cfg.spp, CFG_SPP_OFF);
	assert_int_equal(cfg.log_level, CFG_LOG_DEBUG);
	assert_int_equal(cfg.heap_mib, 100);
	assert_int_equal(cfg.no_vmx, CFG_NO_VMX_STOP);
	assert_int_equal(cfg.sppt, CFG_SPPT_LAZY);
	assert_int_equal(cfg.check, CFG_CHECK_ENTRY);
}

static void test_syntax(void **state)
{
	(void)state;
	struct tessel_config cfg;

	cfg = PARSE_OK("  spp \t=\t hw  \n");
	assert_int_equal(cfg.spp, CFG_SPP_HW);
	cfg = PARSE_OK("# header\nspp=sw # trailing comment\n\n  # indented comment\nlog=warn\t# tab comment\n");
	assert_int_equal(cfg.spp, CFG_SPP_SW);
	assert_int_equal(cfg.log_level, CFG_LOG_WARN);
	/* '#' not preceded by whitespace is part of the value. */
	cfg = PARSE_OK("next=\\a#b.efi\n");
	assert_string_equal(cfg.next, "\\a#b.efi");
	/* ... and a comment right after '=' leaves an empty value. */
	cfg = PARSE_OK("next=\\x.efi\n");
	cfg = PARSE_OK("next= # firmware\n");
	assert_string_equal(cfg.next, "");
	/* CRLF, a last line without a line end, a UTF-8 BOM. */
	cfg = PARSE_OK("spp=hw\r\nlog=debug\r\nheap=64");
	assert_int_equal(cfg.spp, CFG_SPP_HW);
	assert_int_equal(cfg.log_level, CFG_LOG_DEBUG);
	assert_int_equal(cfg.heap_mib, 64);
	cfg = PARSE_OK("\xef\xbb\xbfspp=off\r\n");
	assert_int_equal(cfg.spp, CFG_SPP_OFF);
	cfg = PARSE_OK("\xef\xbb\xbf");
	assert_default_values(&cfg);
	/* Non-ASCII is fine in comments. */
	cfg = PARSE_OK("# caf\xc3\xa9\nsppt=lazy # \xe2\x9c\x93\n");
	assert_int_equal(cfg.sppt, CFG_SPPT_LAZY);
	/* A 512-byte line is accepted. */
	char line[600];
	memset(line, ' ', sizeof(line));
	memcpy(line, "spp=hw", 6);
	line[512] = '\n';
	cfg = parse_ok(line, 513);
	assert_int_equal(cfg.spp, CFG_SPP_HW);
	/* Error line numbers count CRLF lines and ignore the BOM. */
	FILE_ERR("\xef\xbb\xbf# x\r\n\r\nspp=fast\r\n",
		 SRC ":3: spp: invalid value 'fast' (expected auto, hw, sw or off)");
}

/* ---- errors ---- */

static void test_file_errors(void **state)
{
	(void)state;
	FILE_ERR("log=info\nlog=debug\nspp=fast\n", SRC ":2: log: duplicate key (first set on line 1)");
	FILE_ERR("\n\nspp=fast\n", SRC ":3: spp: invalid value 'fast' (expected auto, hw, sw or off)");
	FILE_ERR("spp=HW\n", SRC ":1: spp: invalid value 'HW' (expected auto, hw, sw or off)");
	FILE_ERR("spp=hw x\n", SRC ":1: spp: invalid value 'hw x' (expected auto, hw, sw or off)");
	FILE_ERR("spp=hw#x\n", SRC ":1: spp: invalid value 'hw#x' (expected auto, hw, sw or off)");
	FILE_ERR("log=verbose\n", SRC ":1: log: invalid value 'verbose' (expected error, warn, info or debug)");
	FILE_ERR("no_vmx=halt\n", SRC ":1: no_vmx: invalid value 'halt' (expected continue or stop)");
	FILE_ERR("sppt=Lazy\n", SRC ":1: sppt: invalid value 'Lazy' (expected eager or lazy)");
	FILE_ERR("check=all\n", SRC ":1: check: invalid value 'all' (expected off or entry)");
	FILE_ERR("iommu=yes\n", SRC ":1: iommu: invalid value 'yes' (expected auto, on or off)");
	FILE_ERR("\n\n\n\ncolour=red\n", SRC ":5: colour: unknown key");
	FILE_ERR("SPP=hw\n", SRC ":1: SPP: unknown key");
	FILE_ERR("s pp=hw\n", SRC ":1: s pp: unknown key");
	FILE_ERR("caf\xc3\xa9=1\n", SRC ":1: caf\\xc3\\xa9: unknown key");
	FILE_ERR("#\nlog=warn\n\n\n\n\nlog=info\n", SRC ":7: log: duplicate key (first set on line 2)");
	FILE_ERR("1\n2\n3\n4\n5\n6\n7\n8\nheapsize 12\n", SRC ":1: missing '=' in '1'");
	FILE_ERR("#\n#\n#\n#\n#\n#\n#\n#\nheapsize 12\n", SRC ":9: missing '=' in 'heapsize 12'");
	FILE_ERR("spp #=hw\n", SRC ":1: missing '=' in 'spp'");
	FILE_ERR("=hw\n", SRC ":1: empty key in '=hw'");
	FILE_ERR("  = hw\n", SRC ":1: empty key in '= hw'");
	FILE_ERR("spp=\n", SRC ":1: spp: empty value");
	FILE_ERR("log = # nothing\n", SRC ":1: log: empty value");
	FILE_ERR("heap=\n", SRC ":1: heap: empty value");
	FILE_ERR("a\0b=1\n", SRC ":1: invalid control character \\x00 at column 2");
	FILE_ERR("# nul \0 in a comment\n", SRC ":1: invalid control character \\x00 at column 7");
	FILE_ERR("spp=hw\rlog=info\n", SRC ":1: invalid control character \\x0d at column 7");
	FILE_ERR("spp=hw\n\x1b[0m\n", SRC ":2: invalid control character \\x1b at column 1");
	FILE_ERR("log=info\x7f\n", SRC ":1: invalid control character \\x7f at column 9");
	/* A BOM anywhere but the start is just bytes: here they make an unknown key. */
	FILE_ERR("\n\xef\xbb\xbfspp=hw\n", SRC ":2: \\xef\\xbb\\xbfspp: unknown key");

	char big[1200];
	memset(big, 'a', sizeof(big));
	memcpy(big, "spp=hw\n", 7);
	memcpy(big + 7, "next=", 5);
	big[7 + 513] = '\n';
	expect_file_err_n(big, 7 + 514, SRC ":2: line too long (513 bytes, maximum 512)");
	memset(big, ' ', sizeof(big));
	memcpy(big, "spp=hw", 6);
	expect_file_err_n(big, sizeof(big), SRC ":1: line too long (1200 bytes, maximum 512)");

	/* Value too long: for every key, at 256 bytes; long tokens are cut in messages. */
	memset(big, 'x', sizeof(big));
	memcpy(big, "spp=", 4);
	expect_file_err_n(big, 4 + 256, SRC ":1: spp: value too long (256 bytes, maximum 255)");
	memcpy(big, "next=", 5);
	expect_file_err_n(big, 5 + 256, SRC ":1: next: value too long (256 bytes, maximum 255)");
	memset(big, 'x', sizeof(big));
	memcpy(big, "spp=", 4);
	expect_file_err_n(big, 4 + 60,
			  SRC ":1: spp: invalid value 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...' "
			      "(expected auto, hw, sw or off)");
	memset(big, 'k', 100);
	expect_file_err_n(big, 100, SRC ":1: missing '=' in 'kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk...'");

	/* The first error wins, later lines are not looked at. */
	FILE_ERR("spp=x\nlog=y\n", SRC ":1: spp: invalid value 'x' (expected auto, hw, sw or off)");
}

static void test_error_buffer(void **state)
{
	(void)state;
	struct tessel_config cfg, before;
	char err[16];

	config_defaults(&cfg);
	before = cfg;
	memset(err, 'X', sizeof(err));
	assert_int_equal(config_parse_file(&cfg, "spp=fast", 8, SRC, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "\\EFI\\BOOT\\tesse");
	assert_memory_equal(&cfg, &before, sizeof(cfg));
	/* No buffer at all is allowed. */
	assert_int_equal(config_parse_file(&cfg, "spp=fast", 8, SRC, NULL, 0), -EINVAL);
	err[0] = 'Q';
	assert_int_equal(config_parse_file(&cfg, "spp=fast", 8, SRC, err, 0), -EINVAL);
	assert_int_equal(err[0], 'Q');
	err[1] = 'Q';
	assert_int_equal(config_parse_file(&cfg, "spp=fast", 8, SRC, err, 1), -EINVAL);
	assert_int_equal(err[0], '\0');
	assert_int_equal(err[1], 'Q');
	/* On success err is emptied. */
	strcpy(err, "old");
	assert_int_equal(config_parse_file(&cfg, "spp=hw", 6, SRC, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	/* NULL source has a fallback name; NULL text with a length is an error. */
	char e2[CONFIG_ERR_MAX];
	before = cfg;
	assert_int_equal(config_parse_file(&cfg, "x", 1, NULL, e2, sizeof(e2)), -EINVAL);
	assert_string_equal(e2, "tessel.cfg:1: missing '=' in 'x'");
	assert_int_equal(config_parse_file(&cfg, NULL, 5, SRC, e2, sizeof(e2)), -EINVAL);
	assert_string_equal(e2, SRC ": no text");
	assert_memory_equal(&cfg, &before, sizeof(cfg));
}

/* The longest messages, with a 100-byte source name, still fit CONFIG_ERR_MAX. */
static void test_message_length(void **state)
{
	(void)state;
	char source[101], text[300], err[CONFIG_ERR_MAX];
	struct tessel_config cfg;
	/* Each prefix is followed by 200 filler bytes, then the suffix. */
	static const struct { const char *pre, *post; } cases[] = {
		{ "heap=", "" }, { "spp=", "" }, { "log=", "" }, { "no_vmx=", "" }, { "sppt=", "" }, { "check=", "" },
		{ "iommu=", "" },
		{ "next=\\ ", "" }, { "", "=1" }, { "", "" }, { "=", "" },
	};

	memset(source, 'S', 100);
	source[100] = '\0';
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		for (int fill = 0; fill < 2; fill++) {
			size_t n = strlen(cases[k].pre), m = strlen(cases[k].post);
			memcpy(text, cases[k].pre, n);
			memset(text + n, fill ? 0x80 : 'z', 200);
			memcpy(text + n + 200, cases[k].post, m);
			config_defaults(&cfg);
			assert_int_equal(config_parse_file(&cfg, text, n + 200 + m, source, err, sizeof(err)), -EINVAL);
			size_t len = strlen(err);
			assert_true(len < sizeof(err) - 1);
			assert_non_null(strchr(")'y", err[len - 1])); /* the whole message, up to its end */
		}
	}
	/* Escaped bytes count four characters each against the 48-character cut. */
	memcpy(text, "spp=", 4);
	memset(text + 4, 0x80, 20);
	config_defaults(&cfg);
	assert_int_equal(config_parse_file(&cfg, text, 24, SRC, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, SRC ":1: spp: invalid value '\\x80\\x80\\x80\\x80\\x80\\x80\\x80\\x80"
				 "\\x80\\x80\\x80\\x80...' (expected auto, hw, sw or off)");
}

static void test_unchanged_on_error(void **state)
{
	(void)state;
	struct tessel_config cfg, before;
	char err[CONFIG_ERR_MAX];

	/* Earlier good lines must not leak into *cfg when a later line fails. */
	config_defaults(&cfg);
	strcpy(cfg.next, "\\orig.efi");
	cfg.log_level = CFG_LOG_ERROR;
	before = cfg;
	static const char text[] = "next=\\new.efi\nspp=off\nlog=debug\nheap=4096\nno_vmx=stop\nsppt=lazy\nbad\n";
	assert_int_equal(config_parse_file(&cfg, text, sizeof(text) - 1, SRC, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, SRC ":7: missing '=' in 'bad'");
	assert_memory_equal(&cfg, &before, sizeof(cfg));

	const char *argv[] = { "spp=hw", "next=\\b.efi", "heap=1" };
	assert_int_equal(config_parse_args(&cfg, 3, argv, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "command line: argument 3: heap: '1' is out of range (expected 8..4096 MiB)");
	assert_memory_equal(&cfg, &before, sizeof(cfg));

	/* The pad word is carried through untouched on success too. */
	cfg.pad2 = 0x1234;
	assert_int_equal(config_parse_file(&cfg, "spp=hw", 6, SRC, err, sizeof(err)), 0);
	assert_int_equal(cfg.pad2, 0x1234);
}

/* ---- values with rules ---- */

static void test_heap(void **state)
{
	(void)state;
	struct tessel_config cfg;

	cfg = PARSE_OK("heap=8");
	assert_int_equal(cfg.heap_mib, 8);
	cfg = PARSE_OK("heap=4096");
	assert_int_equal(cfg.heap_mib, 4096);
	cfg = PARSE_OK("heap=0064");
	assert_int_equal(cfg.heap_mib, 64);
	FILE_ERR("heap=7", SRC ":1: heap: '7' is out of range (expected 8..4096 MiB)");
	FILE_ERR("heap=0", SRC ":1: heap: '0' is out of range (expected 8..4096 MiB)");
	FILE_ERR("heap=4097", SRC ":1: heap: '4097' is out of range (expected 8..4096 MiB)");
	FILE_ERR("heap=99999999999999999999",
		 SRC ":1: heap: '99999999999999999999' is out of range (expected 8..4096 MiB)");
	FILE_ERR("heap=18446744073709551648",
		 SRC ":1: heap: '18446744073709551648' is out of range (expected 8..4096 MiB)");
	FILE_ERR("heap=4294967328",
		 SRC ":1: heap: '4294967328' is out of range (expected 8..4096 MiB)");
	static const char *const bad[] = { "-1", "+32", "32M", "32MiB", "0x20", "3 2", "32.0", "1e3", "32 M",
					   "99999999999999999999x" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char text[64], msg[CONFIG_ERR_MAX];
		snprintf(text, sizeof(text), "heap=%s\n", bad[i]);
		snprintf(msg, sizeof(msg),
			 SRC ":1: heap: invalid value '%s' (expected a decimal number of MiB, 8..4096)", bad[i]);
		expect_file_err_n(text, strlen(text), msg);
	}
}

static void test_next(void **state)
{
	(void)state;
	struct tessel_config cfg;

	cfg = PARSE_OK("next=/EFI/tests/a.efi");
	assert_string_equal(cfg.next, "\\EFI\\tests\\a.efi");
	cfg = PARSE_OK("next=a.efi");
	assert_string_equal(cfg.next, "a.efi");
	cfg = PARSE_OK("next=\\EFI\\.hidden\\...\\x..y\\a.efi");
	assert_string_equal(cfg.next, "\\EFI\\.hidden\\...\\x..y\\a.efi");
	cfg = PARSE_OK("next=\\a=b!~{}.efi");
	assert_string_equal(cfg.next, "\\a=b!~{}.efi");

	/* 255 bytes is the maximum, and it is stored NUL-terminated. */
	char text[300];
	memcpy(text, "next=\\", 6);
	memset(text + 6, 'p', 254);
	cfg = parse_ok(text, 5 + 255);
	assert_int_equal(strlen(cfg.next), 255);
	assert_int_equal(cfg.next[0], '\\');

	FILE_ERR("next=\\EFI\\..\\x.efi", SRC ":1: next: '..' is not allowed in a path ('\\EFI\\..\\x.efi')");
	FILE_ERR("next=../x.efi", SRC ":1: next: '..' is not allowed in a path ('../x.efi')");
	FILE_ERR("next=\\EFI/..", SRC ":1: next: '..' is not allowed in a path ('\\EFI/..')");
	FILE_ERR("next=..", SRC ":1: next: '..' is not allowed in a path ('..')");
	FILE_ERR("next=\\my app.efi", SRC ":1: next: path must not contain spaces ('\\my app.efi')");
	FILE_ERR("next=\\a\tb.efi", SRC ":1: next: path must not contain spaces ('\\a\\x09b.efi')");
	FILE_ERR("next=\\caf\xc3\xa9.efi",
		 SRC ":1: next: invalid character \\xc3 in path ('\\caf\\xc3\\xa9.efi')");
	FILE_ERR("next=\\a.efi\nnext=\n", SRC ":2: next: duplicate key (first set on line 1)");
}

/* ---- command line ---- */

static void test_args(void **state)
{
	(void)state;
	struct tessel_config cfg;
	char err[CONFIG_ERR_MAX];
	static const char file[] = "next=\\EFI\\tests\\a.efi\nspp=hw\nlog=warn\nheap=64\n";

	/* The command line overrides the file, key by key. */
	cfg = PARSE_OK(file);
	assert_int_equal(parse_args_v(&cfg, err, sizeof(err), 3, "spp=off", "next=/EFI/tests/b.efi", "sppt=lazy"), 0);
	assert_string_equal(err, "");
	assert_string_equal(cfg.next, "\\EFI\\tests\\b.efi");
	assert_int_equal(cfg.spp, CFG_SPP_OFF);
	assert_int_equal(cfg.log_level, CFG_LOG_WARN);
	assert_int_equal(cfg.heap_mib, 64);
	assert_int_equal(cfg.sppt, CFG_SPPT_LAZY);
	/* "next=" on the command line clears the file's image. */
	assert_int_equal(parse_args_v(&cfg, err, sizeof(err), 1, "next="), 0);
	assert_string_equal(cfg.next, "");
	/* Whitespace around key and value is ignored as in the file; no args is fine. */
	assert_int_equal(parse_args_v(&cfg, err, sizeof(err), 1, " log = debug "), 0);
	assert_int_equal(cfg.log_level, CFG_LOG_DEBUG);
	struct tessel_config before = cfg;
	assert_int_equal(config_parse_args(&cfg, 0, NULL, err, sizeof(err)), 0);
	assert_memory_equal(&cfg, &before, sizeof(cfg));
	/* '#' is not a comment on the command line. */
	assert_int_equal(parse_args_v(&cfg, err, sizeof(err), 1, "next=\\a #b"), -EINVAL);
	assert_string_equal(err, "command line: argument 1: next: path must not contain spaces ('\\a #b')");

	const char *a1[] = { "log=info", "spp=fast" };
	expect_args_err("command line: argument 2: spp: invalid value 'fast' (expected auto, hw, sw or off)", 2, a1);
	const char *a2[] = { "log=info", "heap=64", "log=debug" };
	expect_args_err("command line: argument 3: log: duplicate key (first set in argument 1)", 3, a2);
	const char *a2b[] = { "spp=hw", "spp=hw" };
	expect_args_err("command line: argument 2: spp: duplicate key (first set in argument 1)", 2, a2b);
	const char *a3[] = { "colour=red" };
	expect_args_err("command line: argument 1: colour: unknown key", 1, a3);
	const char *a4[] = { "spp=hw", "verbose" };
	expect_args_err("command line: argument 2: missing '=' in 'verbose'", 2, a4);
	const char *a5[] = { "=hw" };
	expect_args_err("command line: argument 1: empty key in '=hw'", 1, a5);
	const char *a6[] = { "spp=" };
	expect_args_err("command line: argument 1: spp: empty value", 1, a6);
	const char *a7[] = { "spp=hw", "" };
	expect_args_err("command line: argument 2: empty argument", 2, a7);
	const char *a8[] = { "spp=hw", NULL };
	expect_args_err("command line: argument 2: missing argument", 2, a8);
	const char *a9[] = { "log=info\r" };
	expect_args_err("command line: argument 1: invalid control character \\x0d at column 9", 1, a9);
	const char *a10[] = { "heap=99999999999999999999" };
	expect_args_err("command line: argument 1: heap: '99999999999999999999' is out of range (expected 8..4096 MiB)",
			1, a10);
	const char *a11[] = { "next=/x/../y" };
	expect_args_err("command line: argument 1: next: '..' is not allowed in a path ('/x/../y')", 1, a11);

	char longarg[700];
	memset(longarg, 'a', sizeof(longarg) - 1);
	longarg[sizeof(longarg) - 1] = '\0';
	const char *a12[] = { longarg };
	expect_args_err("command line: argument 1: argument too long (more than 512 bytes)", 1, a12);
	longarg[512] = '\0';
	memcpy(longarg, "spp=", 4);
	expect_args_err("command line: argument 1: spp: value too long (508 bytes, maximum 255)", 1, a12);

	/* A file key may be given again on the command line: that is an override, not a duplicate. */
	cfg = PARSE_OK("log=info\n");
	assert_int_equal(parse_args_v(&cfg, err, sizeof(err), 1, "log=error"), 0);
	assert_int_equal(cfg.log_level, CFG_LOG_ERROR);
}

/* ---- config_format ---- */

/* Format cfg, then parse the line back both as arguments and as a file. */
static void check_round_trip(const struct tessel_config *cfg)
{
	char line[CONFIG_FORMAT_MAX], copy[CONFIG_FORMAT_MAX], err[CONFIG_ERR_MAX];
	const char *argv[16];
	int argc = 0;
	struct tessel_config back;

	config_format(cfg, line, sizeof(line));
	assert_true(strlen(line) < sizeof(line) - 1);
	strcpy(copy, line);
	for (char *p = strtok(copy, " "); p; p = strtok(NULL, " "))
		argv[argc++] = p;
	assert_int_equal(argc, 9);
	memset(&back, 0, sizeof(back));
	config_defaults(&back);
	back.pad2 = cfg->pad2;
	if (config_parse_args(&back, argc, argv, err, sizeof(err)))
		fail_msg("round trip of [%s] failed: %s", line, err);
	assert_memory_equal(&back, cfg, sizeof(back));

	strcpy(copy, line);
	for (char *p = copy; *p; p++)
		if (*p == ' ')
			*p = '\n';
	config_defaults(&back);
	back.pad2 = cfg->pad2;
	if (config_parse_file(&back, copy, strlen(copy), SRC, err, sizeof(err)))
		fail_msg("round trip of [%s] as a file failed: %s", line, err);
	assert_memory_equal(&back, cfg, sizeof(back));
}

static void test_format(void **state)
{
	(void)state;
	struct tessel_config cfg;
	char line[CONFIG_FORMAT_MAX];

	cfg = PARSE_OK("next=/EFI/tests/a.efi");
	config_format(&cfg, line, sizeof(line));
	assert_string_equal(line, "next=\\EFI\\tests\\a.efi spp=auto log=info heap=32 no_vmx=continue sppt=eager check=off iommu=auto ept_bbm=auto");
	cfg = PARSE_OK("spp=sw\nlog=error\nheap=4096\nno_vmx=stop\nsppt=lazy\niommu=off\n");
	config_format(&cfg, line, sizeof(line));
	assert_string_equal(line, "next= spp=sw log=error heap=4096 no_vmx=stop sppt=lazy check=off iommu=off ept_bbm=auto");

	/* Truncation keeps the NUL; out-of-range enums print as '?'. */
	config_format(&cfg, line, 10);
	assert_string_equal(line, "next= spp");
	line[0] = 'Z';
	config_format(&cfg, line, 0);
	assert_int_equal(line[0], 'Z');
	cfg.spp = 42;
	config_format(&cfg, line, sizeof(line));
	assert_string_equal(line, "next= spp=? log=error heap=4096 no_vmx=stop sppt=lazy check=off iommu=off ept_bbm=auto");

	/* Every combination of enum values, with and without a next path, round-trips. */
	for (u32 spp = 0; spp <= CFG_SPP_OFF; spp++)
		for (u32 log = 0; log <= CFG_LOG_DEBUG; log++)
			for (u32 nv = 0; nv <= CFG_NO_VMX_STOP; nv++)
				for (u32 sppt = 0; sppt <= CFG_SPPT_LAZY; sppt++) {
					config_defaults(&cfg);
					cfg.spp = spp;
					cfg.log_level = log;
					cfg.no_vmx = nv;
					cfg.sppt = sppt;
					cfg.iommu = (spp + nv + sppt) % (CFG_IOMMU_OFF + 1);
					cfg.heap_mib = 8 + (spp * 1000 + log * 100 + nv * 10 + sppt);
					if ((spp + log) & 1)
						strcpy(cfg.next, "\\EFI\\tests\\x#y.efi");
					check_round_trip(&cfg);
				}
	config_defaults(&cfg);
	memset(cfg.next, 'n', 255);
	check_round_trip(&cfg);
}

/* ---- deterministic fuzzing ---- */

static u64 fuzz_state = 0x9e3779b97f4a7c15ull;

static u32 fuzz_rand(void)
{
	/* xorshift64* */
	fuzz_state ^= fuzz_state >> 12;
	fuzz_state ^= fuzz_state << 25;
	fuzz_state ^= fuzz_state >> 27;
	return (u32)((fuzz_state * 0x2545f4914f6cdd1dull) >> 32);
}

static void check_valid_config(const struct tessel_config *cfg)
{
	size_t n = strnlen(cfg->next, CFG_NEXT_MAX);
	assert_true(n < CFG_NEXT_MAX);
	for (size_t i = 0; i < n; i++) {
		assert_true(cfg->next[i] > 0x20 && cfg->next[i] < 0x7f);
		assert_true(cfg->next[i] != '/');
	}
	assert_true(cfg->spp <= CFG_SPP_OFF);
	assert_true(cfg->log_level <= CFG_LOG_DEBUG);
	assert_true(cfg->heap_mib >= CFG_HEAP_MIN_MIB && cfg->heap_mib <= CFG_HEAP_MAX_MIB);
	assert_true(cfg->no_vmx <= CFG_NO_VMX_STOP);
	assert_true(cfg->sppt <= CFG_SPPT_LAZY);
	assert_true(cfg->iommu <= CFG_IOMMU_OFF);
}

static void check_error_text(const char *err, size_t errlen)
{
	size_t n = strnlen(err, errlen);
	assert_true(n > 0 && n < errlen);
	for (size_t i = 0; i < n; i++)
		assert_true((unsigned char)err[i] >= 0x20 && (unsigned char)err[i] < 0x7f);
}

static void test_fuzz(void **state)
{
	(void)state;
	static const char seed[] = "\xef\xbb\xbf# tessel.cfg\r\n"
				   "next = /EFI/tests/a.efi   # chain\r\n"
				   "spp=hw\n"
				   "\n"
				   "log=debug\n"
				   "heap=64\n"
				   "no_vmx=stop\n"
				   "sppt=lazy\n"
				   "iommu=on\n";
	static const char *const dict[] = { "=", "#", " #", "\r", "\n", "\r\n", "..", "/", "\\", " ", "\t",
					    "next=", "spp=", "log=", "heap=", "no_vmx=", "sppt=", "iommu=", "\0",
					    "\xef\xbb\xbf", "4096", "99999999999", "auto", "lazy" };
	enum { ITER = 100000, MAXLEN = 1024 };
	char buf[MAXLEN];
	unsigned ok = 0, bad = 0;

	for (unsigned it = 0; it < ITER; it++) {
		size_t len = sizeof(seed) - 1;
		memcpy(buf, seed, len);
		unsigned nmut = 1 + fuzz_rand() % 4;
		for (unsigned m = 0; m < nmut; m++) {
			size_t pos = len ? fuzz_rand() % (len + 1) : 0;
			switch (fuzz_rand() % 5) {
			case 0: /* flip a byte */
				if (pos < len)
					buf[pos] = (char)fuzz_rand();
				break;
			case 1: /* delete a run */
				if (pos < len) {
					size_t n = 1 + fuzz_rand() % 8;
					if (n > len - pos)
						n = len - pos;
					memmove(buf + pos, buf + pos + n, len - pos - n);
					len -= n;
				}
				break;
			case 2: { /* insert a dictionary token */
				const char *t = dict[fuzz_rand() % (sizeof(dict) / sizeof(dict[0]))];
				size_t n = *t ? strlen(t) : 1;
				if (len + n <= MAXLEN) {
					memmove(buf + pos + n, buf + pos, len - pos);
					memcpy(buf + pos, t, n);
					len += n;
				}
				break;
			}
			case 3: /* insert a run of one byte (grows lines past the limit now and then) */
				if (len < MAXLEN) {
					size_t n = 1 + fuzz_rand() % 600;
					char c = (fuzz_rand() & 1) ? 'a' : (char)fuzz_rand();
					if (n > MAXLEN - len)
						n = MAXLEN - len;
					memmove(buf + pos + n, buf + pos, len - pos);
					memset(buf + pos, c, n);
					len += n;
				}
				break;
			default: /* truncate */
				len = pos;
				break;
			}
		}

		/* An exact-size heap copy lets ASan catch any read past the end. */
		char *text = malloc(len ? len : 1);
		assert_non_null(text);
		memcpy(text, buf, len);
		struct tessel_config cfg, before;
		char err[CONFIG_ERR_MAX];
		size_t errlen = (fuzz_rand() & 7) ? sizeof(err) : 2 + fuzz_rand() % 40;
		config_defaults(&cfg);
		before = cfg;
		memset(err, 'X', sizeof(err));
		int rc = config_parse_file(&cfg, text, len, SRC, err, errlen);
		if (rc == 0) {
			ok++;
			assert_true(errlen == 0 || err[0] == '\0');
			check_valid_config(&cfg);
			check_round_trip(&cfg);
		} else {
			bad++;
			assert_int_equal(rc, -EINVAL);
			assert_memory_equal(&cfg, &before, sizeof(cfg));
			check_error_text(err, errlen);
			if (errlen == sizeof(err)) {
				assert_memory_equal(err, SRC ":", strlen(SRC ":"));
				assert_true(strlen(err) < sizeof(err) - 1); /* never cut short */
			}
		}
		free(text);
	}
	/* Both outcomes must be exercised for the loop to mean anything. */
	assert_true(ok > ITER / 20);
	assert_true(bad > ITER / 20);
	print_message("fuzz: %u accepted, %u rejected\n", ok, bad);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_every_value),
		cmocka_unit_test(test_syntax),
		cmocka_unit_test(test_file_errors),
		cmocka_unit_test(test_error_buffer),
		cmocka_unit_test(test_message_length),
		cmocka_unit_test(test_unchanged_on_error),
		cmocka_unit_test(test_heap),
		cmocka_unit_test(test_next),
		cmocka_unit_test(test_args),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_fuzz),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
