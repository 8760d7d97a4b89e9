/*
 * ACPI sleep in the loader (boot/acpi_sleep.h, docs/ABI.md section 8). Offsets are those of
 * ACPI 6.5: RSDP section 5.2.5.3, XSDT/RSDT 5.2.7-5.2.8, FADT Table 5.9, the Generic Address
 * Structure 5.2.3.2, the \_Sx packages 7.4.2 (AML encodings 20.2).
 */
#include "boot/acpi_sleep.h"

#define TABLE_MAX (16U << 20) /* larger "tables" are taken as garbage, not read */

static u16 rd16(const u8 *p) { return (u16)(p[0] | p[1] << 8); }
static u32 rd32(const u8 *p) { return rd16(p) | (u32)rd16(p + 2) << 16; }
static u64 rd64(const u8 *p) { return rd32(p) | (u64)rd32(p + 4) << 32; }
static bool sig_is(const u8 *p, const char *s) { return p[0] == s[0] && p[1] == s[1] && p[2] == s[2] && p[3] == s[3]; }

static u8 *ptr(u64 pa) { return (u8 *)(uintptr_t)pa; }

/* A system description table at pa with signature sig (NULL: any), or NULL. */
static u8 *table(u64 pa, const char *sig)
{
	u8 *t = ptr(pa);
	if (!pa || (sig && !sig_is(t, sig)))
		return NULL;
	u32 len = rd32(t + 4);
	return len >= 36 && len <= TABLE_MAX ? t : NULL;
}

/* The XSDT's (or, for an ACPI 1.0 RSDP, the RSDT's) entries: calls fn on each table. */
static void each_table(u64 rsdp, void (*fn)(u8 *t, void *arg), void *arg)
{
	const u8 *r = ptr(rsdp);
	if (!rsdp || !(sig_is(r, "RSD ") && sig_is(r + 4, "PTR ")))
		return;
	u64 xsdt = r[15] >= 2 ? rd64(r + 24) : 0;
	u8 *sdt = xsdt ? table(xsdt, "XSDT") : table(rd32(r + 16), "RSDT");
	if (!sdt)
		return;
	unsigned w = xsdt ? 8 : 4;
	u32 n = (rd32(sdt + 4) - 36) / w;
	for (u32 i = 0; i < n; i++) {
		u64 pa = w == 8 ? rd64(sdt + 36 + 8 * i) : rd32(sdt + 36 + 4 * i);
		u8 *t = table(pa, NULL);
		if (t)
			fn(t, arg);
	}
}

static void find_fadt(u8 *t, void *arg)
{
	u8 **fadt = arg;
	if (!*fadt && sig_is(t, "FACP"))
		*fadt = t;
}

static u8 *fadt_of(u64 rsdp)
{
	u8 *fadt = NULL;
	each_table(rsdp, find_fadt, &fadt);
	return fadt;
}

/* The DSDT the OS uses: X_DSDT when present (ACPI 6.5 Table 5.9: it takes precedence), else DSDT. */
static u8 *dsdt_of(const u8 *fadt)
{
	u32 len = rd32(fadt + 4);
	u64 x = len >= 148 ? rd64(fadt + 140) : 0;
	return table(x ? x : (len >= 44 ? rd32(fadt + 40) : 0), "DSDT");
}

/* One register block: the X_ Generic Address Structure if the FADT has it and it is set,
 * else the legacy 32-bit port (legacy_off 0: none). Returns the I/O port, or 0 (absent, or
 * *mmio set). */
static u16 block(const u8 *fadt, unsigned legacy_off, unsigned gas_off, bool *mmio)
{
	u32 len = rd32(fadt + 4);
	if (gas_off && len >= gas_off + 12) {
		const u8 *g = fadt + gas_off;
		u64 addr = rd64(g + 4);
		if (addr) {
			if (g[0] == 1) /* system I/O space */
				return addr <= 0xffff ? (u16)addr : 0;
			*mmio = true; /* system memory (or another space): not interceptable by port */
			return 0;
		}
	}
	u32 port = legacy_off && len >= legacy_off + 4 ? rd32(fadt + legacy_off) : 0;
	return port <= 0xffff ? (u16)port : 0;
}

/* An AML integer (ACPI 6.5 20.2.3: ZeroOp, OneOp, OnesOp, Byte/Word/DWord/QWordPrefix). */
static bool aml_int(const u8 *p, const u8 *end, u64 *v, const u8 **next)
{
	static const u8 width[] = { [0x0a] = 1, [0x0b] = 2, [0x0c] = 4, [0x0e] = 8 };
	if (p >= end)
		return false;
	if (*p == 0x00 || *p == 0x01 || *p == 0xff) {
		*v = *p == 0xff ? ~0ULL : *p;
		*next = p + 1;
		return true;
	}
	if (*p >= sizeof(width) || !width[*p] || end - p < 1 + width[*p])
		return false;
	u64 x = 0;
	for (unsigned i = width[*p]; i > 0; i--)
		x = x << 8 | p[i];
	*v = x;
	*next = p + 1 + width[*p];
	return true;
}

/* Name (_Sn_, Package () { SLP_TYPa, SLP_TYPb, ... }) at the name segment seg: the two
 * values as ACPICA takes them (acpi_get_sleep_type_data: a one-element package holds both,
 * a in bits 7:0 and b in bits 15:8). */
static bool sx_package(const u8 *start, const u8 *seg, const u8 *end, u8 *a, u8 *b)
{
	const u8 *op = seg - 1;
	if (op > start && *op == '\\')
		op--;
	if (op < start || *op != 0x08) /* NameOp */
		return false;
	const u8 *p = seg + 4;
	if (p >= end || *p++ != 0x12) /* PackageOp */
		return false;
	if (p >= end)
		return false;
	p += 1 + (*p >> 6); /* PkgLength: bits 7:6 of its lead byte count the bytes that follow */
	if (p >= end)
		return false;
	u8 n = *p++;
	u64 x, y;
	if (!n || !aml_int(p, end, &x, &p))
		return false;
	if (n >= 2) {
		if (!aml_int(p, end, &y, &p))
			return false;
	} else {
		y = x >> 8;
	}
	*a = (u8)(x & 7);
	*b = (u8)(y & 7);
	return true;
}

struct aml_walk {
	struct acpi_sleep_scan *scan;
	bool rename;
	unsigned renamed;
};

static void walk_aml(u8 *t, struct aml_walk *w)
{
	u32 len = rd32(t + 4);
	u8 *start = t + 36, *end = t + len;
	bool changed = false;
	if (w->scan)
		w->scan->tables++;
	for (u8 *p = start; p + 4 <= end; p++) {
		if (p[0] != '_' || p[1] != 'S' || p[2] < '0' || p[2] > '5' || p[3] != '_')
			continue;
		unsigned n = p[2] - '0';
		struct acpi_sleep_scan *s = w->scan;
		if (s && !(s->known & (1U << n)) && sx_package(start, p, end, &s->typ_a[n], &s->typ_b[n]))
			s->known |= (u8)(1U << n);
		if (n != 3)
			continue;
		if (s)
			s->s3_names++;
		if (w->rename) {
			p[0] = 'T'; /* TS3_: a name the OS never looks up */
			changed = true;
			w->renamed++;
		}
	}
	if (changed) {
		u8 sum = 0;
		t[9] = 0;
		for (u32 i = 0; i < len; i++)
			sum = (u8)(sum + t[i]);
		t[9] = (u8)-sum;
	}
}

static void walk_ssdt(u8 *t, void *arg)
{
	if (sig_is(t, "SSDT"))
		walk_aml(t, arg);
}

static void walk_all(u64 rsdp, struct aml_walk *w)
{
	u8 *fadt = fadt_of(rsdp);
	u8 *dsdt = fadt ? dsdt_of(fadt) : NULL;
	if (dsdt)
		walk_aml(dsdt, w);
	each_table(rsdp, walk_ssdt, w);
}

void acpi_sleep_scan(u64 rsdp, struct tessel_acpi_sleep *out, struct acpi_sleep_scan *scan)
{
	*out = (struct tessel_acpi_sleep){ .s3_a = 0xff, .s3_b = 0xff };
	*scan = (struct acpi_sleep_scan){ 0 };
	u8 *fadt = fadt_of(rsdp);
	if (!fadt)
		return;
	scan->fadt = true;
	u32 len = rd32(fadt + 4);
	scan->hw_reduced = len >= 116 && (rd32(fadt + 112) & (1U << 20));
	if (scan->hw_reduced) {
		/* SLEEP_CONTROL_REG / SLEEP_STATUS_REG (8-bit): SLP_TYP in bits 4:2, SLP_EN bit 5,
		 * WAK_STS bit 7 - the layout of PM1 CNT's and STS's high bytes, so hv/pm1.c treats
		 * them as the high bytes of registers one port below. */
		u16 ctl = block(fadt, 0, 244, &scan->mmio);
		u16 sts = block(fadt, 0, 256, &scan->mmio);
		out->pm1a_cnt = ctl ? (u16)(ctl - 1) : 0;
		out->pm1a_sts = sts ? (u16)(sts - 1) : 0;
	} else {
		out->pm1a_cnt = block(fadt, 64, 172, &scan->mmio);
		out->pm1b_cnt = block(fadt, 68, 184, &scan->mmio);
		out->pm1a_sts = block(fadt, 56, 148, &scan->mmio);
		out->pm1b_sts = block(fadt, 60, 160, &scan->mmio);
	}

	struct aml_walk w = { scan, false, 0 };
	walk_all(rsdp, &w);
	u8 k = scan->known;
	if (k & (1U << 5)) {
		/* Known power-off value: only the states that keep the hypervisor or restart it through
		 * the firmware pass (S0, S1 keeps the processors' context, S4 and S5 boot again). */
		for (unsigned n = 0; n <= 5; n++) {
			if ((k & (1U << n)) && n != 2 && n != 3) {
				out->allow_a |= (u8)(1U << scan->typ_a[n]);
				out->allow_b |= (u8)(1U << scan->typ_b[n]);
			}
		}
	} else if (k & (1U << 3)) {
		out->allow_a = (u8)~(1U << scan->typ_a[3]);
		out->allow_b = (u8)~(1U << scan->typ_b[3]);
	} else {
		out->pm1a_cnt = out->pm1b_cnt = 0; /* nothing known: nothing to refuse */
	}
	if (k & (1U << 3)) {
		out->s3_a = scan->typ_a[3];
		out->s3_b = scan->typ_b[3];
	}
}

unsigned acpi_sleep_hide(u64 rsdp)
{
	struct aml_walk w = { NULL, true, 0 };
	walk_all(rsdp, &w);
	return w.renamed;
}

bool acpi_sleep_piix4(u32 pci_id, u32 pmba, u32 pmregmisc, struct tessel_acpi_sleep *out)
{
	*out = (struct tessel_acpi_sleep){ .s3_a = 0xff, .s3_b = 0xff };
	u16 base = (u16)(pmba & 0xffc0);
	if (pci_id != 0x71138086 || !(pmregmisc & 1) || !base)
		return false;
	/* PIIX4 datasheet, PMCNTRL: SUS_TYP 000 soft off, 001 suspend to RAM (Bochs 2.7's
	 * iodev/acpi.cc resets the machine for it); nothing else is used. */
	out->pm1a_sts = base;
	out->pm1a_cnt = (u16)(base + 4);
	out->allow_a = 1U << 0;
	out->s3_a = 1;
	return true;
}
