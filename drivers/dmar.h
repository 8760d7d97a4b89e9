/*
 * The ACPI DMA Remapping Reporting table (DMAR, Intel VT-d specification rev. 4.1, chapter 8)
 * and the ACPI root tables that lead to it (ACPI 6.5 section 5.2). The firmware wrote these
 * tables; Tessel treats them as untrusted input: every length, offset, alignment and range is
 * checked before it is used, and a table that fails a check is refused as a whole with a
 * one-line reason (nothing of it is used).
 *
 * Pure code over byte buffers (dmar_parse) plus one walker over physical memory through
 * hpa_to_ptr() (acpi_find_table), so both run in the host unit tests.
 */
#ifndef DRIVERS_DMAR_H
#define DRIVERS_DMAR_H

#include <tessel/types.h>

#define DMAR_MAX_UNITS 16
#define DMAR_MAX_RMRRS 32
#define DMAR_MAX_SCOPES 128
#define DMAR_MAX_PATH 8      /* path entries kept per device scope */
#define DMAR_ERR_MAX 160

/* DMAR header flags (VT-d 8.1). */
#define DMAR_FLAG_INTR_REMAP       BIT(0)
#define DMAR_FLAG_X2APIC_OPT_OUT   BIT(1)
#define DMAR_FLAG_DMA_CTRL_OPT_IN  BIT(2)

/* Remapping structure types (VT-d 8.2). */
#define DMAR_TYPE_DRHD 0
#define DMAR_TYPE_RMRR 1
#define DMAR_TYPE_ATSR 2
#define DMAR_TYPE_RHSA 3
#define DMAR_TYPE_ANDD 4
#define DMAR_TYPE_SATC 5

/* DRHD flags (VT-d 8.3). */
#define DRHD_FLAG_INCLUDE_PCI_ALL BIT(0)

/* Device scope entry types (VT-d 8.3.1). */
#define DMAR_SCOPE_ENDPOINT   1
#define DMAR_SCOPE_BRIDGE     2
#define DMAR_SCOPE_IOAPIC     3
#define DMAR_SCOPE_HPET       4
#define DMAR_SCOPE_ACPI_NS    5

struct dmar_scope {
	u8 type;       /* DMAR_SCOPE_* */
	u8 enum_id;    /* IOAPIC/HPET/ACPI enumeration ID */
	u8 start_bus;
	u8 path_len;   /* entries in path[] */
	u8 path[DMAR_MAX_PATH][2]; /* (device, function) from start_bus down through bridges */
};

/* For a one-entry path the source ID (VT-d 3.4.1: bus << 8 | dev << 3 | fn) is known without
 * reading PCI bridges; longer paths need the bridges' secondary bus numbers. */
static inline bool dmar_scope_sid(const struct dmar_scope *s, u16 *sid)
{
	if (s->path_len != 1)
		return false;
	*sid = (u16)((u16)s->start_bus << 8 | (u16)(s->path[0][0] & 0x1f) << 3 | (s->path[0][1] & 7));
	return true;
}

struct dmar_unit {
	u64 reg_base;     /* register set, 4 KiB aligned */
	u64 reg_size;     /* bytes: 2^N pages from the Size field, at least one page */
	u16 segment;
	u8 flags;         /* DRHD_FLAG_* */
	u8 pad;
	u32 scope_first;  /* index into dmar_info.scopes */
	u32 scope_count;
};

struct dmar_rmrr {
	u64 base;         /* 4 KiB aligned */
	u64 end;          /* exclusive, 4 KiB aligned (the table stores the inclusive limit) */
	u16 segment;
	u16 pad;
	u32 scope_first;
	u32 scope_count;
};

struct dmar_info {
	u8 haw;           /* host address width in bits (the table stores it minus one) */
	u8 flags;         /* DMAR_FLAG_* */
	u32 unit_count;
	u32 rmrr_count;
	u32 scope_count;
	u32 skipped;      /* structures of other types (ATSR, RHSA, ANDD, SATC, unknown): not used */
	struct dmar_unit units[DMAR_MAX_UNITS];
	struct dmar_rmrr rmrrs[DMAR_MAX_RMRRS];
	struct dmar_scope scopes[DMAR_MAX_SCOPES];
};

/*
 * Parse and validate a whole DMAR table of `len` bytes (the bytes as found in memory; the
 * header's length must not exceed len). Returns 0 and fills *out, or -EINVAL with a one-line
 * reason in err (never NULL-terminated beyond errlen) and *out zeroed. Checks: signature,
 * header length, checksum, host address width, every structure's length against its type's
 * minimum and against what is left, device scopes, register bases (aligned, non-zero, below
 * 2^HAW, no two units overlapping, at most one INCLUDE_PCI_ALL unit per segment and it comes
 * last for its segment), RMRRs (aligned, non-empty, below 2^HAW, not overlapping each other,
 * at least one device scope), and the implementation limits above.
 */
int dmar_parse(const u8 *table, size_t len, struct dmar_info *out, char *err, size_t errlen);

/*
 * Find an ACPI table by signature from the RSDP's physical address (XSDT if the RSDP has one,
 * else the RSDT). Checks the RSDP and root table checksums and lengths. Returns 0 with the
 * table's physical address and header length, -ENODEV if there is no such table, -EINVAL (with
 * err) if the root tables are malformed.
 */
int acpi_find_table(u64 rsdp_pa, const char sig[4], u64 *table_pa, u32 *table_len, char *err, size_t errlen);

/*
 * Remove every entry pointing at a table with signature sig from the XSDT and the RSDT (the
 * entries after it move up, the length shrinks, the checksum is recomputed), so that an
 * operating system walking the root tables no longer finds it. The table itself is left
 * where it is. Returns the number of entries removed. The root tables must have passed
 * acpi_find_table() (lengths and checksums checked).
 */
u32 acpi_hide_table(u64 rsdp_pa, const char sig[4]);

#endif
