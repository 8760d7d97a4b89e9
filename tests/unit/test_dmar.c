/*
 * Unit tests for the DMAR parser (drivers/dmar.c): three tables captured from QEMU's
 * intel-iommu (dmar_tables.h), a table written by hand after the VT-d specification's
 * description (rev. 4.1 chapter 8: a graphics unit with its own DRHD and RMRR, a catch-all
 * INCLUDE_PCI_ALL unit with IOAPIC and HPET scopes, a USB RMRR, an ATSR), and malformed tables:
 * truncated, bad lengths, overlapping units and RMRRs, bad register bases. Then the ACPI
 * root-table walk over fake physical memory, and a mutation loop (run under ASan/UBSan).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hw.h>
#include "drivers/dmar.h"
#include "dmar_tables.h"

static struct dmar_info info;
static char err[DMAR_ERR_MAX];

/* ---- a small table builder ---- */

struct tb {
	u8 b[2048];
	size_t len;
	size_t open; /* offset of the structure scopes are appended to */
};

static void put16(u8 *p, u16 v) { p[0] = (u8)v; p[1] = (u8)(v >> 8); }
static void put32(u8 *p, u32 v) { put16(p, (u16)v); put16(p + 2, (u16)(v >> 16)); }
static void put64(u8 *p, u64 v) { put32(p, (u32)v); put32(p + 4, (u32)(v >> 32)); }

static void tb_init(struct tb *t, u8 haw, u8 flags)
{
	memset(t, 0, sizeof(*t));
	memcpy(t->b, "DMAR", 4);
	t->b[8] = 1;
	memcpy(t->b + 10, "TESSEL", 6);
	t->b[36] = (u8)(haw - 1);
	t->b[37] = flags;
	t->len = 48;
}

static void tb_grow(struct tb *t, size_t n)
{
	u16 cur = (u16)(t->b[t->open + 2] | t->b[t->open + 3] << 8);
	put16(t->b + t->open + 2, (u16)(cur + n));
	t->len += n;
}

static void tb_drhd(struct tb *t, u8 flags, u8 size, u16 seg, u64 base)
{
	u8 *p = t->b + t->len;
	put16(p, DMAR_TYPE_DRHD);
	put16(p + 2, 16);
	p[4] = flags;
	p[5] = size;
	put16(p + 6, seg);
	put64(p + 8, base);
	t->open = t->len;
	t->len += 16;
}

static void tb_rmrr(struct tb *t, u16 seg, u64 base, u64 limit)
{
	u8 *p = t->b + t->len;
	put16(p, DMAR_TYPE_RMRR);
	put16(p + 2, 24);
	put16(p + 6, seg);
	put64(p + 8, base);
	put64(p + 16, limit);
	t->open = t->len;
	t->len += 24;
}

static void tb_atsr(struct tb *t, u16 seg)
{
	u8 *p = t->b + t->len;
	put16(p, DMAR_TYPE_ATSR);
	put16(p + 2, 8);
	p[4] = 1; /* ALL_PORTS */
	put16(p + 6, seg);
	t->open = t->len;
	t->len += 8;
}

/* A device scope with a path of n (device, function) pairs. */
static void tb_scope(struct tb *t, u8 type, u8 enum_id, u8 bus, int n, ...)
{
	u8 *p = t->b + t->len;
	va_list ap;
	p[0] = type;
	p[1] = (u8)(6 + 2 * n);
	p[4] = enum_id;
	p[5] = bus;
	va_start(ap, n);
	for (int i = 0; i < n; i++) {
		p[6 + 2 * i] = (u8)va_arg(ap, int);
		p[7 + 2 * i] = (u8)va_arg(ap, int);
	}
	va_end(ap);
	tb_grow(t, 6 + 2 * (size_t)n);
}

static void fix_checksum(u8 *b, size_t len)
{
	u8 s = 0;
	b[9] = 0;
	for (size_t i = 0; i < len; i++)
		s = (u8)(s + b[i]);
	b[9] = (u8)(0 - s);
}

static void tb_finish(struct tb *t)
{
	put32(t->b + 4, (u32)t->len);
	fix_checksum(t->b, t->len);
}

static int parse(const struct tb *t)
{
	return dmar_parse(t->b, t->len, &info, err, sizeof(err));
}

static void expect_err(const struct tb *t, const char *msg)
{
	int r = parse(t);
	if (r != -EINVAL)
		fail_msg("expected '%s', table accepted", msg);
	if (strcmp(err, msg))
		fail_msg("expected '%s'\n     got '%s'", msg, err);
	/* Refused as a whole: nothing of it is left in the output. */
	assert_int_equal(info.unit_count, 0);
	assert_int_equal(info.rmrr_count, 0);
	assert_int_equal(info.scope_count, 0);
}

/* The hand-written table after the specification's chapter 8 description. */
static void spec_table(struct tb *t)
{
	tb_init(t, 46, DMAR_FLAG_INTR_REMAP | DMAR_FLAG_X2APIC_OPT_OUT);
	tb_drhd(t, 0, 0, 0, 0xfed90000);               /* graphics unit */
	tb_scope(t, DMAR_SCOPE_ENDPOINT, 0, 0, 1, 2, 0);
	tb_drhd(t, DRHD_FLAG_INCLUDE_PCI_ALL, 1, 0, 0xfed92000); /* the rest, 2-page register set */
	tb_scope(t, DMAR_SCOPE_IOAPIC, 8, 0xf0, 1, 0x1f, 0);
	tb_scope(t, DMAR_SCOPE_HPET, 0, 0, 1, 0x1f, 7);
	tb_rmrr(t, 0, 0x7b800000, 0x7fffffff);          /* graphics stolen memory */
	tb_scope(t, DMAR_SCOPE_ENDPOINT, 0, 0, 1, 2, 0);
	tb_rmrr(t, 0, 0x7a000000, 0x7a01ffff);          /* USB legacy emulation buffers */
	tb_scope(t, DMAR_SCOPE_ENDPOINT, 0, 0, 1, 0x14, 0);
	tb_scope(t, DMAR_SCOPE_BRIDGE, 0, 0, 2, 0x1c, 0, 0, 0); /* behind a root port */
	tb_atsr(t, 0);
	tb_scope(t, DMAR_SCOPE_BRIDGE, 0, 0, 1, 0x1c, 0);
	tb_finish(t);
}

/* ---- good tables ---- */

static void test_qemu_intremap(void **state)
{
	(void)state;
	assert_int_equal(dmar_parse(qemu_q35_intremap, sizeof(qemu_q35_intremap), &info, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	assert_int_equal(info.haw, 39);
	assert_int_equal(info.flags, DMAR_FLAG_INTR_REMAP);
	assert_int_equal(info.unit_count, 1);
	assert_int_equal(info.units[0].reg_base, 0xfed90000);
	assert_int_equal(info.units[0].reg_size, 4096);
	assert_int_equal(info.units[0].flags, 0);
	assert_int_equal(info.units[0].scope_count, 6);
	assert_int_equal(info.scopes[0].type, DMAR_SCOPE_IOAPIC);
	assert_int_equal(info.scopes[0].start_bus, 0xff);
	u16 sid;
	assert_true(dmar_scope_sid(&info.scopes[4], &sid));
	assert_int_equal(sid, 0x00fa); /* 00:1f.2 */
	assert_int_equal(info.rmrr_count, 0);
}

static void test_qemu_edu(void **state)
{
	(void)state;
	assert_int_equal(dmar_parse(qemu_q35_aw48_edu, sizeof(qemu_q35_aw48_edu), &info, err, sizeof(err)), 0);
	assert_int_equal(info.haw, 48);
	assert_int_equal(info.unit_count, 1);
	/* The edu device at 00:02.0 is in the unit's scope: source ID 0x0010. */
	bool found = false;
	for (u32 i = 0; i < info.units[0].scope_count; i++) {
		u16 sid;
		if (dmar_scope_sid(&info.scopes[info.units[0].scope_first + i], &sid) && sid == 0x0010)
			found = true;
	}
	assert_true(found);

	assert_int_equal(dmar_parse(qemu_q35_devtlb_edu, sizeof(qemu_q35_devtlb_edu), &info, err, sizeof(err)), 0);
	assert_int_equal(info.unit_count, 1);
	assert_int_equal(info.skipped, 1); /* the ATSR */
	assert_int_equal(info.haw, 39);
}

static void test_spec_example(void **state)
{
	(void)state;
	struct tb t;
	spec_table(&t);
	assert_int_equal(parse(&t), 0);
	assert_int_equal(info.haw, 46);
	assert_int_equal(info.flags, DMAR_FLAG_INTR_REMAP | DMAR_FLAG_X2APIC_OPT_OUT);
	assert_int_equal(info.unit_count, 2);
	assert_int_equal(info.units[1].flags, DRHD_FLAG_INCLUDE_PCI_ALL);
	assert_int_equal(info.units[1].reg_size, 8192);
	assert_int_equal(info.units[1].scope_count, 2);
	assert_int_equal(info.scopes[info.units[1].scope_first].enum_id, 8);
	assert_int_equal(info.rmrr_count, 2);
	assert_int_equal(info.rmrrs[0].base, 0x7b800000);
	assert_int_equal(info.rmrrs[0].end, 0x80000000);
	assert_int_equal(info.rmrrs[1].scope_count, 2);
	const struct dmar_scope *br = &info.scopes[info.rmrrs[1].scope_first + 1];
	u16 sid;
	assert_int_equal(br->path_len, 2);
	assert_false(dmar_scope_sid(br, &sid)); /* needs the root port's secondary bus */
	assert_int_equal(info.skipped, 1);
}

/* ---- malformed tables ---- */

static void test_truncated(void **state)
{
	(void)state;
	struct tb t;
	spec_table(&t);
	/* Every shorter buffer is refused: the header's length no longer fits. */
	for (size_t n = 0; n < t.len; n++) {
		assert_int_equal(dmar_parse(t.b, n, &info, err, sizeof(err)), -EINVAL);
		assert_int_equal(info.unit_count, 0);
	}
	assert_int_equal(dmar_parse(NULL, 0, &info, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "DMAR: table truncated (0 bytes, header needs 48)");
	/* The header claims a length its own structures overrun: the structure is cut. */
	put32(t.b + 4, (u32)t.len - 4);
	fix_checksum(t.b, t.len - 4);
	t.len -= 4;
	expect_err(&t, "DMAR: structure at offset 178: bad length 16");
	/* Four bytes short of a structure header. */
	spec_table(&t);
	t.len += 2;
	tb_finish(&t);
	expect_err(&t, "DMAR: structure at offset 194: truncated");
}

static void test_header(void **state)
{
	(void)state;
	struct tb t;
	spec_table(&t);
	t.b[0] = 'X';
	fix_checksum(t.b, t.len);
	expect_err(&t, "DMAR: bad signature");

	spec_table(&t);
	t.b[9] ^= 1;
	expect_err(&t, "DMAR: bad checksum");

	spec_table(&t);
	put32(t.b + 4, 47);
	fix_checksum(t.b, t.len);
	expect_err(&t, "DMAR: header length 47 outside 48..194");

	spec_table(&t);
	t.b[36] = 30;
	fix_checksum(t.b, t.len);
	expect_err(&t, "DMAR: host address width 31 is out of range (32..64)");
	t.b[36] = 64;
	fix_checksum(t.b, t.len);
	expect_err(&t, "DMAR: host address width 65 is out of range (32..64)");

	tb_init(&t, 39, 0);
	tb_finish(&t);
	expect_err(&t, "DMAR: no DRHD unit");
}

static void test_bad_lengths(void **state)
{
	(void)state;
	struct tb t;
	tb_init(&t, 39, 0);
	tb_drhd(&t, DRHD_FLAG_INCLUDE_PCI_ALL, 0, 0, 0xfed90000);
	put16(t.b + 48 + 2, 12);
	tb_finish(&t);
	expect_err(&t, "DMAR: DRHD at offset 48: length 12 is below 16");

	tb_init(&t, 39, 0);
	tb_drhd(&t, DRHD_FLAG_INCLUDE_PCI_ALL, 0, 0, 0xfed90000);
	put16(t.b + 48 + 2, 3);
	tb_finish(&t);
	expect_err(&t, "DMAR: structure at offset 48: bad length 3");

	tb_init(&t, 39, 0);
	tb_drhd(&t, DRHD_FLAG_INCLUDE_PCI_ALL, 0, 0, 0xfed90000);
	tb_rmrr(&t, 0, 0x1000, 0x1fff);
	tb_scope(&t, DMAR_SCOPE_ENDPOINT, 0, 0, 1, 2, 0);
	put16(t.b + 64 + 2, 20);
	t.len = 64 + 20;
	tb_finish(&t);
	expect_err(&t, "DMAR: RMRR at offset 64: length 20 is below 24");

	/* Scopes: too short, odd path length, longer than their structure, zero length. */
	static const struct { u8 len; const char *msg; } sc[] = {
		{ 6, "DMAR: device scope at offset 64: bad length 6" },
		{ 9, "DMAR: device scope at offset 64: bad length 9" },
		{ 10, "DMAR: device scope at offset 64: bad length 10" },
		{ 0, "DMAR: device scope at offset 64: bad length 0" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(sc); i++) {
		tb_init(&t, 39, 0);
		tb_drhd(&t, DRHD_FLAG_INCLUDE_PCI_ALL, 0, 0, 0xfed90000);
		tb_scope(&t, DMAR_SCOPE_IOAPIC, 0, 0xff, 1, 0, 0);
		t.b[64 + 1] = sc[i].len;
		tb_finish(&t);
		expect_err(&t, sc[i].msg);
	}
	/* One stray byte after the last scope. */
	tb_init(&t, 39, 0);
	tb_drhd(&t, DRHD_FLAG_INCLUDE_PCI_ALL, 0, 0, 0xfed90000);
	tb_scope(&t, DMAR_SCOPE_IOAPIC, 0, 0xff, 1, 0, 0);
	tb_grow(&t, 1);
	tb_finish(&t);
	expect_err(&t, "DMAR: device scope at offset 72: truncated");
	/* Unknown scope type and an impossible device number. */
	tb_init(&t, 39, 0);
	tb_drhd(&t, DRHD_FLAG_INCLUDE_PCI_ALL, 0, 0, 0xfed90000);
	tb_scope(&t, 9, 0, 0, 1, 0, 0);
	tb_finish(&t);
	expect_err(&t, "DMAR: device scope at offset 64: unknown type 9");
	tb_init(&t, 39, 0);
	tb_drhd(&t, DRHD_FLAG_INCLUDE_PCI_ALL, 0, 0, 0xfed90000);
	tb_scope(&t, DMAR_SCOPE_ENDPOINT, 0, 0, 1, 32, 0);
	tb_finish(&t);
	expect_err(&t, "DMAR: device scope at offset 64: bad path entry 32.0");
}

static void test_register_base(void **state)
{
	(void)state;
	struct tb t;
	static const struct { u64 base; u8 size; const char *msg; } bad[] = {
		{ 0, 0, "DMAR: DRHD at offset 48: register base 0 is not aligned to its size 1000" },
		{ 0xfed90800, 0, "DMAR: DRHD at offset 48: register base fed90800 is not aligned to its size 1000" },
		{ 0xfed91000, 1, "DMAR: DRHD at offset 48: register base fed91000 is not aligned to its size 2000" },
		{ 0x8000000000ULL, 0, "DMAR: DRHD at offset 48: register base 8000000000 is beyond the 39-bit address width" },
		{ 0x7ffffff000ULL, 1, "DMAR: DRHD at offset 48: register base 7ffffff000 is not aligned to its size 2000" },
		{ 0x7fffffe000ULL, 2, "DMAR: DRHD at offset 48: register base 7fffffe000 is not aligned to its size 4000" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		tb_init(&t, 39, 0);
		tb_drhd(&t, DRHD_FLAG_INCLUDE_PCI_ALL, bad[i].size, 0, bad[i].base);
		tb_finish(&t);
		expect_err(&t, bad[i].msg);
	}
	/* A 32-page register set ending exactly at the address width. */
	tb_init(&t, 39, 0);
	tb_drhd(&t, DRHD_FLAG_INCLUDE_PCI_ALL, 4, 0, 0x7ffffe0000ULL);
	tb_finish(&t);
	assert_int_equal(parse(&t), 0);
	tb_init(&t, 39, 0);
	tb_drhd(&t, DRHD_FLAG_INCLUDE_PCI_ALL, 6, 0, 0x7ffffe0000ULL);
	tb_finish(&t);
	expect_err(&t, "DMAR: DRHD at offset 48: register base 7ffffe0000 is not aligned to its size 40000");

	/* Overlapping units: the same base, and a two-page set covering the next unit. */
	tb_init(&t, 39, 0);
	tb_drhd(&t, 0, 0, 0, 0xfed90000);
	tb_scope(&t, DMAR_SCOPE_ENDPOINT, 0, 0, 1, 2, 0);
	tb_drhd(&t, DRHD_FLAG_INCLUDE_PCI_ALL, 0, 0, 0xfed90000);
	tb_finish(&t);
	expect_err(&t, "DMAR: DRHD at offset 72: register range fed90000-fed91000 overlaps unit 0's");
	tb_init(&t, 39, 0);
	tb_drhd(&t, 0, 1, 0, 0xfed90000);
	tb_scope(&t, DMAR_SCOPE_ENDPOINT, 0, 0, 1, 2, 0);
	tb_drhd(&t, DRHD_FLAG_INCLUDE_PCI_ALL, 0, 1, 0xfed91000);
	tb_finish(&t);
	expect_err(&t, "DMAR: DRHD at offset 72: register range fed91000-fed92000 overlaps unit 0's");
	/* Two catch-all units, or a unit after the catch-all, in one segment. */
	tb_init(&t, 39, 0);
	tb_drhd(&t, DRHD_FLAG_INCLUDE_PCI_ALL, 0, 0, 0xfed90000);
	tb_drhd(&t, 0, 0, 0, 0xfed91000);
	tb_scope(&t, DMAR_SCOPE_ENDPOINT, 0, 0, 1, 2, 0);
	tb_finish(&t);
	expect_err(&t, "DMAR: DRHD at offset 64: follows segment 0's INCLUDE_PCI_ALL unit");
	/* ... but another segment may have its own. */
	tb_init(&t, 39, 0);
	tb_drhd(&t, DRHD_FLAG_INCLUDE_PCI_ALL, 0, 0, 0xfed90000);
	tb_drhd(&t, DRHD_FLAG_INCLUDE_PCI_ALL, 0, 1, 0xfed91000);
	tb_finish(&t);
	assert_int_equal(parse(&t), 0);
	assert_int_equal(info.unit_count, 2);
}

static void test_rmrr(void **state)
{
	(void)state;
	struct tb t;
	static const struct { u64 base, limit; const char *msg; } bad[] = {
		{ 0x1800, 0x1fff, "DMAR: RMRR at offset 64: bad range 1800-1fff" },
		{ 0x1000, 0x1ffe, "DMAR: RMRR at offset 64: bad range 1000-1ffe" },
		{ 0x3000, 0x1fff, "DMAR: RMRR at offset 64: bad range 3000-1fff" },
		{ 0, ~0ULL, "DMAR: RMRR at offset 64: bad range 0-ffffffffffffffff" },
		{ 0x8000000000ULL, 0x8000000fffULL, "DMAR: RMRR at offset 64: range 8000000000-8000000fff is beyond the 39-bit address width" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		tb_init(&t, 39, 0);
		tb_drhd(&t, DRHD_FLAG_INCLUDE_PCI_ALL, 0, 0, 0xfed90000);
		tb_rmrr(&t, 0, bad[i].base, bad[i].limit);
		tb_scope(&t, DMAR_SCOPE_ENDPOINT, 0, 0, 1, 0x14, 0);
		tb_finish(&t);
		expect_err(&t, bad[i].msg);
	}
	tb_init(&t, 39, 0);
	tb_drhd(&t, DRHD_FLAG_INCLUDE_PCI_ALL, 0, 0, 0xfed90000);
	tb_rmrr(&t, 0, 0x10000, 0x1ffff);
	tb_scope(&t, DMAR_SCOPE_ENDPOINT, 0, 0, 1, 0x14, 0);
	tb_rmrr(&t, 0, 0x1f000, 0x2ffff);
	tb_scope(&t, DMAR_SCOPE_ENDPOINT, 0, 0, 1, 0x1d, 0);
	tb_finish(&t);
	expect_err(&t, "DMAR: RMRR at offset 96: range 1f000-2ffff overlaps RMRR 0");

	tb_init(&t, 39, 0);
	tb_drhd(&t, DRHD_FLAG_INCLUDE_PCI_ALL, 0, 0, 0xfed90000);
	tb_rmrr(&t, 0, 0x10000, 0x1ffff);
	tb_finish(&t);
	expect_err(&t, "DMAR: RMRR at offset 64: no device scope");
}

static void test_limits(void **state)
{
	(void)state;
	struct tb t;
	tb_init(&t, 39, 0);
	for (u32 i = 0; i <= DMAR_MAX_UNITS; i++) {
		tb_drhd(&t, 0, 0, 0, 0xfed00000 + i * 0x1000ULL);
		tb_scope(&t, DMAR_SCOPE_ENDPOINT, 0, 0, 1, i & 31, 0);
	}
	tb_finish(&t);
	expect_err(&t, "DMAR: more than 16 DRHD units");
}

/* Byte mutations of every good table (checksum repaired so the parser goes deep): each is
 * either accepted or refused with a message; ASan/UBSan catch any read outside the buffer. */
static void test_mutations(void **state)
{
	(void)state;
	struct tb spec;
	spec_table(&spec);
	const struct { const u8 *b; size_t n; } src[] = {
		{ qemu_q35_intremap, sizeof(qemu_q35_intremap) },
		{ qemu_q35_aw48_edu, sizeof(qemu_q35_aw48_edu) },
		{ qemu_q35_devtlb_edu, sizeof(qemu_q35_devtlb_edu) },
		{ spec.b, spec.len },
	};
	unsigned seed = 12345, accepted = 0, refused = 0;
	for (size_t s = 0; s < ARRAY_SIZE(src); s++) {
		for (int iter = 0; iter < 4000; iter++) {
			size_t n = src[s].n;
			u8 *b = malloc(n);
			memcpy(b, src[s].b, n);
			for (int k = 0; k < 1 + iter % 4; k++) {
				seed = seed * 1103515245u + 12345u;
				size_t at = 36 + (seed >> 8) % (n - 36);
				seed = seed * 1103515245u + 12345u;
				b[at] = (u8)(seed >> 16);
			}
			fix_checksum(b, n);
			memset(err, 0, sizeof(err));
			int r = dmar_parse(b, n, &info, err, sizeof(err));
			if (r == 0) {
				accepted++;
				assert_true(info.unit_count >= 1 && info.unit_count <= DMAR_MAX_UNITS);
				for (u32 i = 0; i < info.unit_count; i++)
					assert_true(info.units[i].scope_first + info.units[i].scope_count <= info.scope_count);
			} else {
				refused++;
				assert_int_equal(r, -EINVAL);
				assert_true(strncmp(err, "DMAR: ", 6) == 0);
			}
			free(b);
		}
	}
	assert_true(accepted > 0 && refused > 0);
}

/* ---- the ACPI walk ---- */

#define PHYS 0x100000000ULL

static u8 *phys(u64 pa) { return hpa_to_ptr(hpa(pa)); }

static void acpi_hdr(u64 pa, const char *sig, u32 len)
{
	u8 *p = phys(pa);
	memcpy(p, sig, 4);
	put32(p + 4, len);
	p[8] = 1;
	u8 s = 0;
	p[9] = 0;
	for (u32 i = 0; i < len; i++)
		s = (u8)(s + p[i]);
	p[9] = (u8)(0 - s);
}

static void build_acpi(bool xsdt, bool with_dmar)
{
	fake_phys_init(PHYS, 0x10000);
	memset(phys(PHYS), 0, 0x10000);
	u8 *r = phys(PHYS);
	memcpy(r, "RSD PTR ", 8);
	r[15] = xsdt ? 2 : 0;
	u64 root = PHYS + 0x1000;
	if (xsdt) {
		put32(r + 20, 36);
		put64(r + 24, root);
	} else {
		put32(r + 16, (u32)root); /* a 32-bit RSDT pointer cannot reach the window: test via XSDT only */
	}
	u8 s = 0;
	for (int i = 0; i < 20; i++)
		s = (u8)(s + r[i]);
	r[8] = (u8)(0 - s);
	s = 0;
	for (int i = 0; i < 36; i++)
		s = (u8)(s + r[i]);
	r[32] = (u8)(0 - s);
	acpi_hdr(PHYS + 0x2000, "APIC", 44);
	memcpy(phys(PHYS + 0x3000), qemu_q35_intremap, sizeof(qemu_q35_intremap));
	u8 *x = phys(root);
	put64(x + 36, PHYS + 0x2000);
	put64(x + 44, 0);
	put64(x + 52, with_dmar ? PHYS + 0x3000 : PHYS + 0x2000);
	acpi_hdr(root, "XSDT", 60);
}

static void test_acpi_find(void **state)
{
	(void)state;
	u64 pa = 0;
	u32 len = 0;
	build_acpi(true, true);
	assert_int_equal(acpi_find_table(PHYS, "DMAR", &pa, &len, err, sizeof(err)), 0);
	assert_int_equal(pa, PHYS + 0x3000);
	assert_int_equal(len, sizeof(qemu_q35_intremap));
	assert_int_equal(dmar_parse(phys(pa), len, &info, err, sizeof(err)), 0);

	/* Hiding: the entry goes, the others stay in order, the XSDT stays valid. */
	assert_int_equal(acpi_hide_table(PHYS, "DMAR"), 1);
	assert_int_equal(acpi_find_table(PHYS, "DMAR", &pa, &len, err, sizeof(err)), -ENODEV);
	assert_string_equal(err, "");
	assert_int_equal(acpi_find_table(PHYS, "APIC", &pa, &len, err, sizeof(err)), 0);
	assert_int_equal(pa, PHYS + 0x2000);
	const u8 *x = phys(PHYS + 0x1000);
	assert_int_equal(x[4], 52);
	assert_int_equal(x[52], 0); /* the freed slot is cleared */
	assert_memory_equal(phys(PHYS + 0x3000), qemu_q35_intremap, sizeof(qemu_q35_intremap)); /* table untouched */
	assert_int_equal(acpi_hide_table(PHYS, "DMAR"), 0);
	assert_int_equal(acpi_hide_table(0, "DMAR"), 0);

	build_acpi(true, false);
	assert_int_equal(acpi_find_table(PHYS, "DMAR", &pa, &len, err, sizeof(err)), -ENODEV);
	assert_int_equal(acpi_find_table(0, "DMAR", &pa, &len, err, sizeof(err)), -ENODEV);

	build_acpi(true, true);
	phys(PHYS)[0] = 'X';
	assert_int_equal(acpi_find_table(PHYS, "DMAR", &pa, &len, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "ACPI: bad RSDP at 100000000");
	build_acpi(true, true);
	phys(PHYS + 0x1000)[40] ^= 1; /* XSDT checksum */
	assert_int_equal(acpi_find_table(PHYS, "DMAR", &pa, &len, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "ACPI: bad XSDT at 100001000");
	fake_phys_fini();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_qemu_intremap),
		cmocka_unit_test(test_qemu_edu),
		cmocka_unit_test(test_spec_example),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_header),
		cmocka_unit_test(test_bad_lengths),
		cmocka_unit_test(test_register_base),
		cmocka_unit_test(test_rmrr),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_mutations),
		cmocka_unit_test(test_acpi_find),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
