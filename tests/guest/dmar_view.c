/*
 * dmar_view.c: what the guest sees of the ACPI DMAR table (docs/IOMMU.md). It walks the
 * firmware's XSDT from the ACPI 2.0 RSDP, reports whether a DMAR table is present and dumps
 * its bytes as TAP diagnostics ("# dmar: OFFSET: HEX..."), which is also how the QEMU q35
 * intel-iommu table in tests/data/ was captured.
 */
#include "guest.h"

static int sum8(const uint8_t *p, uint32_t n)
{
	uint8_t s = 0;
	for (uint32_t i = 0; i < n; i++)
		s = (uint8_t)(s + p[i]);
	return s;
}

static const uint8_t *find_dmar(void)
{
	EFI_GUID acpi20 = ACPI_20_TABLE_GUID;
	const uint8_t *rsdp = NULL;
	for (UINTN i = 0; i < ST->NumberOfTableEntries; i++)
		if (!CompareGuid(&ST->ConfigurationTable[i].VendorGuid, &acpi20))
			rsdp = ST->ConfigurationTable[i].VendorTable;
	if (!rsdp)
		return NULL;
	const uint8_t *xsdt = (const uint8_t *)(uintptr_t)*(const uint64_t *)(rsdp + 24);
	uint32_t len = *(const uint32_t *)(xsdt + 4);
	for (uint32_t off = 36; off + 8 <= len; off += 8) {
		const uint8_t *t = (const uint8_t *)(uintptr_t)*(const uint64_t *)(xsdt + off);
		if (t && !CompareMem(t, "DMAR", 4))
			return t;
	}
	return NULL;
}

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *systab)
{
	guest_init(image, systab);
	tap_plan(1);
	const uint8_t *t = find_dmar();
	if (!t) {
		tap_diag("dmar: absent");
	} else {
		uint32_t len = *(const uint32_t *)(t + 4);
		tap_diag("dmar: present, %u bytes at %lx, checksum %s", len, (unsigned long)(uintptr_t)t,
			 sum8(t, len) ? "bad" : "good");
		for (uint32_t off = 0; off < len && off < 4096; off += 16) {
			char line[64];
			int n = 0;
			for (uint32_t i = off; i < len && i < off + 16; i++)
				n += fmt_snprintf(line + n, sizeof(line) - (size_t)n, "%02x", t[i]);
			tap_diag("dmar: %04x: %s", off, line);
		}
	}
	tap_ok(1, "ACPI tables walked");
	guest_finish();
}
