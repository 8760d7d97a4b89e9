/*
 * DMAR parsing and validation (drivers/dmar.h). Every field the firmware wrote is read with
 * explicit little-endian loads at checked offsets, never through a cast of the table to a
 * struct, so an odd length or a misaligned structure cannot make us read outside the buffer.
 */
#include <hw.h>
#include "drivers/dmar.h"
#include "lib/fmt.h"
#include "lib/string.h"

#define ACPI_HDR_LEN 36
#define DMAR_HDR_LEN 48    /* ACPI header + HAW (1) + flags (1) + reserved (10) */
#define DRHD_MIN_LEN 16
#define RMRR_MIN_LEN 24
#define SCOPE_MIN_LEN 8    /* 6 bytes of header and at least one (device, function) entry */

static u16 rd16(const u8 *p) { return (u16)(p[0] | p[1] << 8); }
static u32 rd32(const u8 *p) { return (u32)p[0] | (u32)p[1] << 8 | (u32)p[2] << 16 | (u32)p[3] << 24; }
static u64 rd64(const u8 *p) { return (u64)rd32(p) | (u64)rd32(p + 4) << 32; }

struct dmar_ctx {
	struct dmar_info *out;
	char *err;
	size_t errlen;
};

__attribute__((format(printf, 2, 3))) static int dmar_fail(struct dmar_ctx *c, const char *fmt, ...)
{
	if (c->err && c->errlen) {
		va_list ap;
		va_start(ap, fmt);
		fmt_vsnprintf(c->err, c->errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static u8 checksum(const u8 *p, size_t n)
{
	u8 s = 0;
	for (size_t i = 0; i < n; i++)
		s = (u8)(s + p[i]);
	return s;
}

/* Device scopes in [p, p + n) of the structure at table offset `at`. */
static int parse_scopes(struct dmar_ctx *c, const u8 *p, size_t n, u32 at, u32 *first, u32 *count)
{
	struct dmar_info *d = c->out;
	*first = d->scope_count;
	*count = 0;
	size_t off = 0;
	while (off < n) {
		if (n - off < 2)
			return dmar_fail(c, "DMAR: device scope at offset %u: truncated", (unsigned)(at + off));
		u8 type = p[off], slen = p[off + 1];
		if (slen < SCOPE_MIN_LEN || slen > n - off || (slen - 6) % 2)
			return dmar_fail(c, "DMAR: device scope at offset %u: bad length %u", (unsigned)(at + off), slen);
		if (type < DMAR_SCOPE_ENDPOINT || type > DMAR_SCOPE_ACPI_NS)
			return dmar_fail(c, "DMAR: device scope at offset %u: unknown type %u", (unsigned)(at + off), type);
		u32 entries = (u32)(slen - 6) / 2;
		if (entries > DMAR_MAX_PATH)
			return dmar_fail(c, "DMAR: device scope at offset %u: path of %u entries (at most %u)",
					 (unsigned)(at + off), (unsigned)entries, DMAR_MAX_PATH);
		if (d->scope_count >= DMAR_MAX_SCOPES)
			return dmar_fail(c, "DMAR: more than %u device scopes", DMAR_MAX_SCOPES);
		struct dmar_scope *s = &d->scopes[d->scope_count++];
		s->type = type;
		s->enum_id = p[off + 4];
		s->start_bus = p[off + 5];
		s->path_len = (u8)entries;
		for (u32 i = 0; i < entries; i++) {
			u8 dev = p[off + 6 + 2 * i], fn = p[off + 7 + 2 * i];
			if (dev > 31 || fn > 7)
				return dmar_fail(c, "DMAR: device scope at offset %u: bad path entry %u.%u",
						 (unsigned)(at + off), dev, fn);
			s->path[i][0] = dev;
			s->path[i][1] = fn;
		}
		(*count)++;
		off += slen;
	}
	return 0;
}

static int parse_drhd(struct dmar_ctx *c, const u8 *p, u16 slen, u32 at)
{
	struct dmar_info *d = c->out;
	if (slen < DRHD_MIN_LEN)
		return dmar_fail(c, "DMAR: DRHD at offset %u: length %u is below %u", (unsigned)at, slen, DRHD_MIN_LEN);
	if (d->unit_count >= DMAR_MAX_UNITS)
		return dmar_fail(c, "DMAR: more than %u DRHD units", DMAR_MAX_UNITS);
	struct dmar_unit u = { 0 };
	u.flags = p[4];
	/* Byte 5 (VT-d 3.0+): register set size is 2^N pages in bits 3:0; 0 on older tables. */
	u.reg_size = PAGE_SIZE << (p[5] & 0xf);
	u.segment = rd16(p + 6);
	u.reg_base = rd64(p + 8);
	if (!u.reg_base || !IS_ALIGNED(u.reg_base, u.reg_size))
		return dmar_fail(c, "DMAR: DRHD at offset %u: register base %llx is not aligned to its size %llx",
				 (unsigned)at, (unsigned long long)u.reg_base, (unsigned long long)u.reg_size);
	if (d->haw < 64 && (u.reg_base >> d->haw || (u.reg_base + u.reg_size - 1) >> d->haw))
		return dmar_fail(c, "DMAR: DRHD at offset %u: register base %llx is beyond the %u-bit address width",
				 (unsigned)at, (unsigned long long)u.reg_base, d->haw);
	for (u32 i = 0; i < d->unit_count; i++) {
		const struct dmar_unit *o = &d->units[i];
		if (u.reg_base < o->reg_base + o->reg_size && o->reg_base < u.reg_base + u.reg_size)
			return dmar_fail(c, "DMAR: DRHD at offset %u: register range %llx-%llx overlaps unit %u's",
					 (unsigned)at, (unsigned long long)u.reg_base,
					 (unsigned long long)(u.reg_base + u.reg_size), (unsigned)i);
		/* VT-d 8.3: the INCLUDE_PCI_ALL unit of a segment is reported after the others. */
		if (o->segment == u.segment && (o->flags & DRHD_FLAG_INCLUDE_PCI_ALL))
			return dmar_fail(c, "DMAR: DRHD at offset %u: follows segment %u's INCLUDE_PCI_ALL unit",
					 (unsigned)at, u.segment);
	}
	int r = parse_scopes(c, p + DRHD_MIN_LEN, slen - DRHD_MIN_LEN, at + DRHD_MIN_LEN, &u.scope_first, &u.scope_count);
	if (r)
		return r;
	d->units[d->unit_count++] = u;
	return 0;
}

static int parse_rmrr(struct dmar_ctx *c, const u8 *p, u16 slen, u32 at)
{
	struct dmar_info *d = c->out;
	if (slen < RMRR_MIN_LEN)
		return dmar_fail(c, "DMAR: RMRR at offset %u: length %u is below %u", (unsigned)at, slen, RMRR_MIN_LEN);
	if (d->rmrr_count >= DMAR_MAX_RMRRS)
		return dmar_fail(c, "DMAR: more than %u RMRRs", DMAR_MAX_RMRRS);
	struct dmar_rmrr m = { 0 };
	m.segment = rd16(p + 6);
	m.base = rd64(p + 8);
	u64 limit = rd64(p + 16);
	if (!IS_ALIGNED(m.base, PAGE_SIZE) || !IS_ALIGNED(limit + 1, PAGE_SIZE) || limit < m.base ||
	    limit == ~0ULL)
		return dmar_fail(c, "DMAR: RMRR at offset %u: bad range %llx-%llx", (unsigned)at,
				 (unsigned long long)m.base, (unsigned long long)limit);
	if (d->haw < 64 && limit >> d->haw)
		return dmar_fail(c, "DMAR: RMRR at offset %u: range %llx-%llx is beyond the %u-bit address width",
				 (unsigned)at, (unsigned long long)m.base, (unsigned long long)limit, d->haw);
	m.end = limit + 1;
	for (u32 i = 0; i < d->rmrr_count; i++) {
		const struct dmar_rmrr *o = &d->rmrrs[i];
		if (o->segment == m.segment && m.base < o->end && o->base < m.end)
			return dmar_fail(c, "DMAR: RMRR at offset %u: range %llx-%llx overlaps RMRR %u", (unsigned)at,
					 (unsigned long long)m.base, (unsigned long long)limit, (unsigned)i);
	}
	int r = parse_scopes(c, p + RMRR_MIN_LEN, slen - RMRR_MIN_LEN, at + RMRR_MIN_LEN, &m.scope_first, &m.scope_count);
	if (r)
		return r;
	if (!m.scope_count)
		return dmar_fail(c, "DMAR: RMRR at offset %u: no device scope", (unsigned)at);
	d->rmrrs[d->rmrr_count++] = m;
	return 0;
}

int dmar_parse(const u8 *t, size_t len, struct dmar_info *out, char *err, size_t errlen)
{
	struct dmar_ctx c = { out, err, errlen };
	memset(out, 0, sizeof(*out));
	if (err && errlen)
		err[0] = 0;
	int r = -EINVAL;
	if (!t || len < DMAR_HDR_LEN) {
		r = dmar_fail(&c, "DMAR: table truncated (%llu bytes, header needs %u)", (unsigned long long)len,
			      DMAR_HDR_LEN);
		goto fail;
	}
	if (memcmp(t, "DMAR", 4)) {
		r = dmar_fail(&c, "DMAR: bad signature");
		goto fail;
	}
	u32 tlen = rd32(t + 4);
	if (tlen < DMAR_HDR_LEN || tlen > len) {
		r = dmar_fail(&c, "DMAR: header length %u outside %u..%llu", (unsigned)tlen, DMAR_HDR_LEN,
			      (unsigned long long)len);
		goto fail;
	}
	if (checksum(t, tlen)) {
		r = dmar_fail(&c, "DMAR: bad checksum");
		goto fail;
	}
	/* HAW is stored minus one (VT-d 8.1); below 32 bits no platform could work, above 64 is meaningless. */
	out->haw = (u8)(t[36] + 1);
	if (t[36] < 31 || t[36] > 63) {
		r = dmar_fail(&c, "DMAR: host address width %u is out of range (32..64)", t[36] + 1U);
		goto fail;
	}
	out->flags = t[37];

	u32 off = DMAR_HDR_LEN;
	while (off < tlen) {
		if (tlen - off < 4) {
			r = dmar_fail(&c, "DMAR: structure at offset %u: truncated", (unsigned)off);
			goto fail;
		}
		u16 type = rd16(t + off), slen = rd16(t + off + 2);
		if (slen < 4 || slen > tlen - off) {
			r = dmar_fail(&c, "DMAR: structure at offset %u: bad length %u", (unsigned)off, slen);
			goto fail;
		}
		switch (type) {
		case DMAR_TYPE_DRHD:
			r = parse_drhd(&c, t + off, slen, off);
			break;
		case DMAR_TYPE_RMRR:
			r = parse_rmrr(&c, t + off, slen, off);
			break;
		default:
			out->skipped++;
			r = 0;
			break;
		}
		if (r)
			goto fail;
		off += slen;
	}
	if (!out->unit_count) {
		r = dmar_fail(&c, "DMAR: no DRHD unit");
		goto fail;
	}
	return 0;
fail:
	memset(out, 0, sizeof(*out));
	return r;
}

/* ---- ACPI root tables ---- */

int acpi_find_table(u64 rsdp_pa, const char sig[4], u64 *table_pa, u32 *table_len, char *err, size_t errlen)
{
	struct dmar_ctx c = { NULL, err, errlen };
	if (err && errlen)
		err[0] = 0;
	if (!rsdp_pa)
		return -ENODEV;
	const u8 *rsdp = hpa_to_ptr(hpa(rsdp_pa));
	if (memcmp(rsdp, "RSD PTR ", 8) || checksum(rsdp, 20))
		return dmar_fail(&c, "ACPI: bad RSDP at %llx", (unsigned long long)rsdp_pa);
	u64 root;
	u32 esize;
	if (rsdp[15] >= 2 && rd32(rsdp + 20) >= 36 && !checksum(rsdp, 36) && rd64(rsdp + 24)) {
		root = rd64(rsdp + 24);
		esize = 8;
	} else {
		root = rd32(rsdp + 16);
		esize = 4;
	}
	if (!root)
		return dmar_fail(&c, "ACPI: RSDP has no root table");
	const u8 *rt = hpa_to_ptr(hpa(root));
	u32 rlen = rd32(rt + 4);
	if (memcmp(rt, esize == 8 ? "XSDT" : "RSDT", 4) || rlen < ACPI_HDR_LEN || rlen > SZ_1M || checksum(rt, rlen))
		return dmar_fail(&c, "ACPI: bad %s at %llx", esize == 8 ? "XSDT" : "RSDT", (unsigned long long)root);
	for (u32 off = ACPI_HDR_LEN; off + esize <= rlen; off += esize) {
		u64 pa = esize == 8 ? rd64(rt + off) : rd32(rt + off);
		if (!pa)
			continue;
		const u8 *h = hpa_to_ptr(hpa(pa));
		if (memcmp(h, sig, 4))
			continue;
		*table_pa = pa;
		*table_len = rd32(h + 4);
		return 0;
	}
	return -ENODEV;
}

static u32 hide_in(u8 *rt, u32 esize, const char sig[4])
{
	u32 len = rd32(rt + 4), out = ACPI_HDR_LEN, removed = 0;
	for (u32 off = ACPI_HDR_LEN; off + esize <= len; off += esize) {
		u64 pa = esize == 8 ? rd64(rt + off) : rd32(rt + off);
		if (pa && !memcmp(hpa_to_ptr(hpa(pa)), sig, 4)) {
			removed++;
			continue;
		}
		memmove(rt + out, rt + off, esize);
		out += esize;
	}
	if (!removed)
		return 0;
	memset(rt + out, 0, len - out);
	rt[4] = (u8)out;
	rt[5] = (u8)(out >> 8);
	rt[6] = (u8)(out >> 16);
	rt[7] = (u8)(out >> 24);
	rt[9] = 0;
	rt[9] = (u8)(0 - checksum(rt, out));
	return removed;
}

u32 acpi_hide_table(u64 rsdp_pa, const char sig[4])
{
	if (!rsdp_pa)
		return 0;
	const u8 *rsdp = hpa_to_ptr(hpa(rsdp_pa));
	u32 n = 0;
	u64 xsdt = rsdp[15] >= 2 && rd32(rsdp + 20) >= 36 && !checksum(rsdp, 36) ? rd64(rsdp + 24) : 0;
	u64 rsdt = rd32(rsdp + 16);
	if (xsdt)
		n += hide_in(hpa_to_ptr(hpa(xsdt)), 8, sig);
	if (rsdt) {
		u8 *rt = hpa_to_ptr(hpa(rsdt));
		u32 len = rd32(rt + 4);
		if (!memcmp(rt, "RSDT", 4) && len >= ACPI_HDR_LEN && len <= SZ_1M && !checksum(rt, len))
			n += hide_in(rt, 4, sig);
	}
	return n;
}
