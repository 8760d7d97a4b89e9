/*
 * hvregion.c: checks that the hypervisor's own memory is invisible to the guest (ABI.md 6).
 * Finds the region the loader publishes as a UEFI configuration table (TESSEL_REGION_GUID),
 * checks the firmware memory map reserves all of it, reads a dense sample expecting 0xFF,
 * writes a byte, a u32 and a u64 to every page with different instructions, reads them back
 * expecting 0xFF, and checks that the hypervisor still answers. Without the table every
 * point fails cleanly.
 */
#include "guest.h"
#include "arch.h"
#include <tessel.h>

#define N_TESTS 9

static const char *const mem_type_names[] = {
	"Reserved",      "LoaderCode",   "LoaderData",         "BootServicesCode",   "BootServicesData",
	"RuntimeCode",   "RuntimeData",  "Conventional",       "Unusable",           "ACPIReclaim",
	"ACPINVS",       "MMIO",         "MMIOPortSpace",      "PalCode",            "Persistent",
};

static const char *mem_type_name(UINT32 t)
{
	return t < sizeof(mem_type_names) / sizeof(mem_type_names[0]) ? mem_type_names[t] : "other";
}

static int usable_ram(UINT32 t)
{
	return t == EfiLoaderCode || t == EfiLoaderData || t == EfiBootServicesCode || t == EfiBootServicesData ||
	       t == EfiConventionalMemory;
}

/* Bytes of [base, base+size) covered by descriptors that are reserved / usable RAM. */
static void check_memmap(uint64_t base, uint64_t size, uint64_t *reserved, uint64_t *usable)
{
	UINTN entries, key, dsize;
	UINT32 dver;
	*reserved = *usable = 0;
	EFI_MEMORY_DESCRIPTOR *map = LibMemoryMap(&entries, &key, &dsize, &dver);
	if (!map) {
		tap_diag("GetMemoryMap failed");
		return;
	}
	uint8_t *p = (uint8_t *)map;
	for (UINTN i = 0; i < entries; i++, p += dsize) {
		EFI_MEMORY_DESCRIPTOR *d = (EFI_MEMORY_DESCRIPTOR *)p;
		uint64_t s = d->PhysicalStart, e = s + d->NumberOfPages * 4096ull;
		uint64_t lo = s > base ? s : base, hi = e < base + size ? e : base + size;
		if (lo >= hi)
			continue;
		tap_diag("memory map: 0x%llx-0x%llx %s overlaps the region", (unsigned long long)s,
			 (unsigned long long)e, mem_type_name(d->Type));
		if (d->Type == EfiReservedMemoryType)
			*reserved += hi - lo;
		if (usable_ram(d->Type))
			*usable += hi - lo;
	}
	FreePool(map);
}

/* Offsets written in page i: one per width, varied so that they land in different sub-pages. */
static uint64_t off8(uint64_t i) { return (i * 131) % 4096; }
static uint64_t off32(uint64_t i) { return (1024 + i * 68) % 4096 & ~3ull; }
static uint64_t off64(uint64_t i) { return (2048 + i * 200) % 4096 & ~7ull; }

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *systab)
{
	guest_init(image, systab);
	tap_plan(N_TESTS);
	static EFI_GUID guid = TESSEL_REGION_GUID_INIT;
	const struct tessel_region_info *ri = config_table(&guid);
	if (!tap_ok(ri != NULL, "the loader installed the TESSEL_REGION_GUID configuration table")) {
		for (int i = 1; i < N_TESTS; i++)
			tap_ok(0, "region check %d (no region table)", i + 1);
		guest_finish();
	}
	uint64_t base = ri->base, size = ri->size;
	tap_diag("region 0x%llx + 0x%llx (%llu MiB)", (unsigned long long)base, (unsigned long long)size,
		 (unsigned long long)(size >> 20));
	int sane = ri->magic == TESSEL_REGION_MAGIC && size && !(base & 4095) && !(size & 4095) && base + size > base;
	if (!tap_ok(sane, "region info: magic \"TLREGION\", non-empty, page-aligned (magic 0x%llx)",
		    (unsigned long long)ri->magic)) {
		for (int i = 2; i < N_TESTS; i++)
			tap_ok(0, "region check %d (bad region info)", i + 1);
		guest_finish();
	}

	uint64_t reserved, usable;
	check_memmap(base, size, &reserved, &usable);
	tap_ok(reserved == size, "memory map marks the whole region EfiReservedMemoryType (0x%llx of 0x%llx bytes)",
	       (unsigned long long)reserved, (unsigned long long)size);
	tap_ok(usable == 0, "no part of the region is usable RAM in the memory map (0x%llx bytes are)",
	       (unsigned long long)usable);

	/* Reads: every 64th byte, and every byte of the first and last pages. */
	volatile const uint8_t *r = (volatile const uint8_t *)(uintptr_t)base;
	uint64_t bad = 0, first_bad = 0, t0 = rdtsc();
	for (uint64_t o = 0; o < size; o += (o < 4096 || o >= size - 4096) ? 1 : 64) {
		if (r[o] != 0xff && !bad++)
			first_bad = o;
	}
	tap_diag("read sample took %llu TSC ticks", (unsigned long long)(rdtsc() - t0));
	tap_ok(!bad, "reads of the region return 0xFF (%llu bad bytes, first at +0x%llx)", (unsigned long long)bad,
	       (unsigned long long)first_bad);

	/* Writes: a byte (immediate), a u32 and a u64 (register) in every page. */
	t0 = rdtsc();
	for (uint64_t i = 0; i < size / 4096; i++) {
		volatile uint8_t *pg = (volatile uint8_t *)(uintptr_t)(base + i * 4096);
		poke8_imm(pg + off8(i));
		poke32((volatile uint32_t *)(pg + off32(i)), 0x12345678u);
		poke64((volatile uint64_t *)(pg + off64(i)), 0x0123456789abcdefull);
	}
	tap_diag("writes took %llu TSC ticks", (unsigned long long)(rdtsc() - t0));
	tap_ok(1, "the guest keeps running after writing every page of the region");
	bad = 0;
	for (uint64_t i = 0; i < size / 4096; i++) {
		volatile const uint8_t *pg = r + i * 4096;
		if (pg[off8(i)] != 0xff || *(volatile const uint32_t *)(pg + off32(i)) != 0xffffffffu ||
		    *(volatile const uint64_t *)(pg + off64(i)) != ~0ull) {
			if (!bad++)
				first_bad = i;
		}
	}
	tap_ok(!bad, "written locations still read 0xFF (%llu pages differ, first %llu)", (unsigned long long)bad,
	       (unsigned long long)first_bad);

	uint32_t version = 0;
	int64_t st = tessel_present() ? tessel_query(&version, NULL, NULL) : -1;
	tap_ok(st == 0 && version == TESSEL_ABI_VERSION, "the hypervisor still answers HC_QUERY (status %lld)",
	       (long long)st);
	tap_ok(tessel_present(), "CPUID still reports the Tessel signature");
	guest_finish();
}
