/*
 * The `make run` demo: a UEFI program that shows sub-page protection at work in under a
 * minute. It protects some 128-byte sub-pages of a page, writes a pattern over the whole
 * page, and prints which sub-pages kept their bytes (a 32-cell map), the events the
 * hypervisor reported, and its statistics.
 *
 * Bochs 2.7 caches a page as writable after one SPP-allowed write (docs/SPP.md section 10,
 * bug 1), so the demo INVLPGs the page before each sub-page's writes: what it shows is
 * what the hypervisor enforced, not an emulator artefact.
 */
#include "arch.h"
#include "guest.h"
#include <tessel.h>

static const char *mode_name(uint32_t flags)
{
	if (flags & TESSEL_F_SPP_HW)
		return "hardware SPP (the processor checks each write)";
	if (flags & TESSEL_F_SPP_SW)
		return "software (the hypervisor checks each write to the page)";
	return "none";
}

static void *alloc_pages(UINTN n)
{
	EFI_PHYSICAL_ADDRESS a = 0;
	if (EFI_ERROR(uefi_call_wrapper(BS->AllocatePages, 4, AllocateAnyPages, EfiBootServicesData, n, &a)))
		return NULL;
	return (void *)(uintptr_t)a;
}

static void *alloc_page(void) { return alloc_pages(1); }

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *st)
{
	guest_init(image, st);
	serial_printf("\n=== Tessel demo: 128-byte write protection below the OS ===\n");
	if (!tessel_present()) {
		serial_printf("No Tessel hypervisor underneath (CPUID 0x40000000 has no TesselHV signature).\n");
		power_off();
	}
	uint32_t version = 0, flags = 0;
	uint64_t max_pages = 0;
	tessel_query(&version, &flags, &max_pages);
	serial_printf("Tessel ABI %u.%u, enforcement: %s\n", TESSEL_ABI_MAJOR(version), TESSEL_ABI_MINOR(version),
		      mode_name(flags));
	if (!(flags & (TESSEL_F_SPP_HW | TESSEL_F_SPP_SW))) {
		serial_printf("Sub-page protection is off (spp=off).\n");
		power_off();
	}

	struct tessel_ring *ring = alloc_pages(2);
	uint8_t *page = alloc_page();
	uint32_t *map = alloc_page();
	if (!ring || !page || !map) {
		serial_printf("out of memory\n");
		power_off();
	}
	int64_t r = tessel_events_setup((uint64_t)(uintptr_t)ring, 2, 0);
	serial_printf("HC_EVENTS_SETUP: %lld (ring of %u entries)\n", (long long)r, ring->capacity);

	for (int i = 0; i < 4096; i++)
		page[i] = '.';
	/* Protect sub-pages 4-7, 12, 20-23 and 31: their bits are 0 in the map. */
	uint32_t want = ~(0x000000f0u | 0x00001000u | 0x00f00000u | 0x80000000u);
	map[0] = want;
	uint64_t gfn = (uint64_t)(uintptr_t)page >> 12;
	r = tessel_spp_set(gfn, 1, (uint64_t)(uintptr_t)map, 0);
	map[0] = 0;
	int64_t g = tessel_spp_get(gfn, 1, (uint64_t)(uintptr_t)map);
	serial_printf("HC_SPP_SET page %llx map %08x: %lld; HC_SPP_GET reads back %08x (%lld)\n",
		      (unsigned long long)gfn << 12, want, (long long)r, map[0], (long long)g);

	/* Write 'W' over the whole page, 8 bytes at a time. */
	for (int sp = 0; sp < 32; sp++) {
		invlpg(page);
		volatile uint64_t *q = (volatile uint64_t *)(page + sp * 128);
		for (int k = 0; k < 16; k++)
			q[k] = 0x5757575757575757ull;
	}

	serial_printf("\nThe page after writing 'W' everywhere, one cell per 128-byte sub-page\n");
	serial_printf("(W = written, # = kept its '.' bytes because it is protected):\n\n  ");
	int wrong = 0;
	for (int sp = 0; sp < 32; sp++) {
		int written = 0, kept = 0;
		for (int b = 0; b < 128; b++) {
			if (page[sp * 128 + b] == 'W')
				written++;
			else if (page[sp * 128 + b] == '.')
				kept++;
		}
		int protected_sp = !((want >> sp) & 1);
		char cell = written == 128 ? 'W' : kept == 128 ? '#' : '?';
		if ((protected_sp && cell != '#') || (!protected_sp && cell != 'W'))
			wrong++;
		serial_printf("%c", cell);
		if (sp % 8 == 7)
			serial_printf(" ");
	}
	serial_printf("\n  ");
	for (int sp = 0; sp < 32; sp++) {
		serial_printf("%c", (want >> sp) & 1 ? '-' : 'P');
		if (sp % 8 == 7)
			serial_printf(" ");
	}
	serial_printf("  <- P = protected by HC_SPP_SET\n");
	serial_printf("%s\n\n", wrong ? "MISMATCH: the page does not match the protection map" :
					"Every protected sub-page kept its bytes; every other sub-page was written.");

	uint32_t n = ring->head - ring->tail;
	serial_printf("Events in the ring: %u (dropped %llu)\n", n, (unsigned long long)ring->dropped);
	for (uint32_t k = ring->tail; k != ring->head && k - ring->tail < 6; k++) {
		struct tessel_event *e = &ring->entries[k % ring->capacity];
		serial_printf("  %-9s gpa %llx (sub-page %2llu) rip %llx vcpu %u bytes %u\n",
			      e->kind == TESSEL_EV_DENIED ? "DENIED" : e->kind == TESSEL_EV_TRACKED ? "TRACKED" : "DISCARDED",
			      (unsigned long long)e->gpa, (unsigned long long)((e->gpa & 4095) / 128),
			      (unsigned long long)e->rip, e->vcpu, e->bytes);
	}
	if (n > 6)
		serial_printf("  ... and %u more\n", n - 6);
	ring->tail = ring->head;

	uint64_t stats[TESSEL_STAT_COUNT_1_0] = { 0 }, full = 0;
	tessel_stats((uint64_t)(uintptr_t)stats, sizeof(stats), &full);
	static const char *names[] = { "exits", "hypercalls", "spp_denied", "spp_tracked", "spp_misses",
				       "spp_misconfigs", "ept_violations", "emulated_writes", "pages_protected",
				       "sppt_pages", "events_dropped" };
	serial_printf("\nHypervisor statistics (HC_STATS):\n");
	for (int i = 0; i < TESSEL_STAT_COUNT_1_0; i++)
		serial_printf("  %-16s %llu\n", names[i], (unsigned long long)stats[i]);

	map[0] = TESSEL_SPP_ALL_WRITABLE;
	tessel_spp_set(gfn, 1, (uint64_t)(uintptr_t)map, 0);
	serial_printf("\nProtection removed. Demo finished; powering off.\n");
	power_off();
}
