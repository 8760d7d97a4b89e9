/*
 * Host tests of the guest memory map (mm/memmap.c) and of how the loader packs the
 * firmware's map into the boot information (tessel_mem_add, bootinfo.h): a firmware map
 * with thousands of descriptors (boot-services allocations split conventional memory) must
 * not lose RAM, and a map that really has too many RAM runs says so on the log.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include <hw.h>
#include <tessel/bootinfo.h>
#include <tessel/config.h>
#include "drivers/uart.h"
#include "hv/log.h"
#include "mm/memmap.h"

#define NDESC 3000
#define HV_BASE 0x80000000ULL
#define HV_SIZE 0x1000000ULL

static struct tessel_mem_range desc[NDESC + 8];
static struct tessel_boot_info bi;

/* Contiguous 1-page descriptors from 1 MiB, alternating types as a firmware map does. */
static u32 fragmented(void)
{
	static const u32 types[] = { EFI_MT_CONVENTIONAL, EFI_MT_BS_DATA, EFI_MT_BS_CODE, EFI_MT_LOADER_DATA };
	u32 n = 0;
	for (u32 i = 0; i < NDESC; i++)
		desc[n++] = (struct tessel_mem_range){ 0x100000 + (u64)i * 4096, 1, types[i % 4], 0 };
	desc[n++] = (struct tessel_mem_range){ 0xfec00000, 1, EFI_MT_MMIO, 0 };
	desc[n++] = (struct tessel_mem_range){ 0x0, 0x9f, EFI_MT_CONVENTIONAL, 0 };
	return n;
}

static void test_many_descriptors_one_run(void **state)
{
	(void)state;
	u32 n = fragmented();
	memmap_init(desc, n, HV_BASE, HV_SIZE);
	u64 top = 0x100000 + (u64)NDESC * 4096;
	assert_true(memmap_is_ram(0x100000, 4096));
	assert_true(memmap_is_ram(top - 4096, 4096)); /* the last descriptor's page */
	assert_true(memmap_is_ram(0x100000, top - 0x100000));
	assert_false(memmap_is_ram(top, 1));
	assert_false(memmap_is_ram(0xfec00000, 1));
	assert_true(memmap_is_ram(0x9e000, 4096));
	assert_false(memmap_is_ram(0x9f000, 1));
	assert_int_equal(memmap_ram_top(), top);
}

static void test_loader_packs_the_map(void **state)
{
	(void)state;
	u32 n = fragmented();
	memset(&bi, 0, sizeof(bi));
	for (u32 i = 0; i < n; i++)
		tessel_mem_add(&bi, desc[i].base, desc[i].pages, desc[i].type);
	assert_int_equal(bi.mem_dropped, 0);
	assert_int_equal(bi.mem_count, 2); /* the 1 MiB run and the low 636 KiB */
	memmap_init(bi.mem, bi.mem_count, HV_BASE, HV_SIZE);
	assert_true(memmap_is_ram(0x100000 + (u64)(NDESC - 1) * 4096, 4096));
}

/* Separate runs (a hole after each page), in reverse order: beyond the table's size the
 * rest is left out, and the log says so. */
static void test_too_many_runs_is_said(void **state)
{
	(void)state;
	u32 n = 0;
	for (u32 i = 0; i < 600; i++)
		desc[n++] = (struct tessel_mem_range){ 0x100000 + (u64)(599 - i) * 8192, 1, EFI_MT_CONVENTIONAL, 0 };
	fake_reset();
	fake_io_output_clear();
	log_init(UART_COM1, CFG_LOG_INFO);
	memmap_init(desc, n, HV_BASE, HV_SIZE);
	assert_non_null(strstr(fake_io_output(), "88 ranges left out"));
	u32 kept = 0;
	for (u32 i = 0; i < 600; i++) {
		kept += memmap_is_ram(0x100000 + (u64)i * 8192, 4096);
		assert_false(memmap_is_ram(0x100000 + (u64)i * 8192 + 4096, 1)); /* holes stay holes */
	}
	assert_int_equal(kept, TESSEL_MAX_MEM_RANGES);

	memset(&bi, 0, sizeof(bi));
	for (u32 i = 0; i < n; i++)
		tessel_mem_add(&bi, desc[i].base, desc[i].pages, desc[i].type);
	assert_int_equal(bi.mem_count, TESSEL_MAX_MEM_RANGES);
	assert_int_equal(bi.mem_dropped, 600 - TESSEL_MAX_MEM_RANGES);
}

/* Overlapping and out-of-order ranges merge into one. */
static void test_overlaps_merge(void **state)
{
	(void)state;
	struct tessel_mem_range r[] = {
		{ 0x300000, 16, EFI_MT_CONVENTIONAL, 0 }, { 0x100000, 16, EFI_MT_CONVENTIONAL, 0 },
		{ 0x200000, 16, EFI_MT_BS_DATA, 0 }, { 0x10f000, 0x100, EFI_MT_CONVENTIONAL, 0 },
		{ 0x20f000, 0xf2, EFI_MT_ACPI_NVS, 0 },
	};
	memmap_init(r, ARRAY_SIZE(r), HV_BASE, HV_SIZE);
	assert_true(memmap_is_ram(0x100000, 0x210000));
	assert_false(memmap_is_ram(0x310000, 1));
	assert_int_equal(memmap_ram_top(), 0x310000);
}

/* The loader refuses to start unless every byte of the region is EfiReservedMemoryType in the
 * firmware's map (boot/main.c fill_memory_map). */
static bool region_ok(const struct tessel_mem_range *m, unsigned n, u64 rbase, u64 rsize)
{
	u64 reserved = 0, other = 0;
	for (unsigned i = 0; i < n; i++)
		tessel_region_cover(rbase, rsize, m[i].base, m[i].pages, m[i].type, &reserved, &other);
	return reserved == rsize && other == 0;
}

static void test_region_must_be_reserved(void **state)
{
	(void)state;
	const u64 R = 0x9e00000, S = 0x2000000;
	const struct tessel_mem_range exact[] = {
		{ 0, 0x9e00, EFI_MT_CONVENTIONAL, 0 }, { R, S >> 12, EFI_MT_RESERVED, 0 },
		{ R + S, 0x100, EFI_MT_BS_DATA, 0 },
	};
	assert_true(region_ok(exact, 3, R, S));
	/* Two reserved descriptors that together cover it (firmware merges or splits freely). */
	const struct tessel_mem_range split[] = {
		{ R - 0x1000, 0x801, EFI_MT_RESERVED, 0 }, { R + 0x800000, (S - 0x800000) >> 12, EFI_MT_RESERVED, 0 },
	};
	assert_true(region_ok(split, 2, R, S));
	/* A page of it left conventional, boot-services or runtime: refused. */
	static const u32 bad_types[] = { EFI_MT_CONVENTIONAL, EFI_MT_BS_DATA, EFI_MT_RT_DATA, EFI_MT_LOADER_DATA };
	for (unsigned t = 0; t < 4; t++) {
		const struct tessel_mem_range m[] = {
			{ R, (S >> 12) - 1, EFI_MT_RESERVED, 0 }, { R + S - 0x1000, 1, bad_types[t], 0 },
		};
		assert_false(region_ok(m, 2, R, S));
	}
	/* Not described at all (a hole in the map): refused. */
	const struct tessel_mem_range hole[] = { { R, (S >> 12) / 2, EFI_MT_RESERVED, 0 } };
	assert_false(region_ok(hole, 1, R, S));
	/* A conventional descriptor overlapping a reserved one (a corrupt map): refused. */
	const struct tessel_mem_range overlap[] = {
		{ R, S >> 12, EFI_MT_RESERVED, 0 }, { R + 0x1000, 1, EFI_MT_CONVENTIONAL, 0 },
	};
	assert_false(region_ok(overlap, 2, R, S));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_many_descriptors_one_run),
		cmocka_unit_test(test_loader_packs_the_map),
		cmocka_unit_test(test_too_many_runs_is_said),
		cmocka_unit_test(test_overlaps_merge),
		cmocka_unit_test(test_region_must_be_reserved),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
