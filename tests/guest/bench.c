/*
 * Benchmarks (make bench), not tests: round-trip costs measured with RDTSC inside the
 * guest. In Bochs with `clock: sync=none` the TSC advances once per emulated instruction,
 * so the figures are exact, repeatable instruction counts of guest + hypervisor work.
 * Prints a table on serial between "BENCH-BEGIN" and "BENCH-END" lines, then powers off.
 */
#include "arch.h"
#include "guest.h"
#include <tessel.h>

#define SAMPLES 1000

static uint64_t samples[SAMPLES];

static void sort(uint64_t *v, int n)
{
	for (int i = 1; i < n; i++) {
		uint64_t x = v[i];
		int j = i - 1;
		while (j >= 0 && v[j] > x) {
			v[j + 1] = v[j];
			j--;
		}
		v[j + 1] = x;
	}
}

struct result { const char *name; uint64_t median, min, max; };

static void *alloc_pages(UINTN n)
{
	EFI_PHYSICAL_ADDRESS a = 0;
	if (EFI_ERROR(uefi_call_wrapper(BS->AllocatePages, 4, AllocateAnyPages, EfiBootServicesData, n, &a)))
		return NULL;
	return (void *)(uintptr_t)a;
}

static uint64_t gfn_of(const void *p) { return (uint64_t)(uintptr_t)p >> 12; }
static uint64_t gpa_of(const void *p) { return (uint64_t)(uintptr_t)p; }

static uint64_t stat_now(int idx)
{
	static uint64_t st[TESSEL_STAT_COUNT_1_0];
	uint64_t full = 0;
	tessel_stats(gpa_of(st), sizeof(st), &full);
	return st[idx];
}

#define SPP_SAMPLES 64
#define MAX_ROWS 16

static struct result summarize(const char *name, uint64_t overhead)
{
	sort(samples, SAMPLES);
	struct result r = { name, samples[SAMPLES / 2], samples[0], samples[SAMPLES - 1] };
	r.median = r.median > overhead ? r.median - overhead : 0;
	r.min = r.min > overhead ? r.min - overhead : 0;
	r.max = r.max > overhead ? r.max - overhead : 0;
	return r;
}

static uint64_t measure_empty(void)
{
	for (int i = 0; i < SAMPLES; i++) {
		uint64_t t0 = rdtsc();
		uint64_t t1 = rdtsc();
		samples[i] = t1 - t0;
	}
	sort(samples, SAMPLES);
	return samples[SAMPLES / 2];
}

/* ---- permission-table rows (the performance issue, SET/GET half) ---- */

#define HC_TEST_TABLE_MEM 0x7e01u /* test build only (spp/test_hooks.c) */

/* Free heap pages after the hypervisor gave back its idle-block cache; ~0 without the
 * test build. */
static uint64_t heap_free(void)
{
	struct tessel_hc_out o = { 0, 0, 0 };
	if (tessel_vmcall(HC_TEST_TABLE_MEM, 1, 0, 0, 0, &o) != 0)
		return ~0ull;
	return o.rbx;
}

static uint32_t pt_maps[512];

static int64_t set_n(uint64_t gfn, uint64_t n, uint32_t map)
{
	for (uint64_t k = 0; k < n; k++)
		pt_maps[k] = map;
	return tessel_spp_set(gfn, n, gpa_of(pt_maps), 0);
}

static void med3(uint64_t *v, int n, uint64_t *first, uint64_t *med, uint64_t *max)
{
	*first = v[0];
	sort(v, n);
	*med = v[n / 2];
	*max = v[n - 1];
}

/* The first SET of one page in each of nb fresh 2 MiB blocks (EPT split, SPPT path). */
static void bench_first_set(uint8_t *blocks, int nb, uint64_t overhead)
{
	static uint64_t v[64];
	uint64_t f, m, x;
	for (int b = 0; b < nb; b++) {
		uint64_t g = gfn_of(blocks) + (uint64_t)b * 512 + 3;
		pt_maps[0] = 0xfffffffeu;
		uint64_t t0 = rdtsc();
		tessel_spp_set(g, 1, gpa_of(pt_maps), 0);
		v[b] = rdtsc() - t0 - overhead;
	}
	for (int b = 0; b < nb; b++)
		set_n(gfn_of(blocks) + (uint64_t)b * 512 + 3, 1, TESSEL_SPP_ALL_WRITABLE);
	med3(v, nb, &f, &m, &x);
	serial_printf("PT first SET of 1 page in a fresh 2 MiB block (%d blocks): first %llu median %llu max %llu\n",
		      nb, (unsigned long long)f, (unsigned long long)m, (unsigned long long)x);
}

/* Hypervisor memory per protected page (test build: free heap pages before and after). */
static void bench_memory(uint8_t *blocks, int nb)
{
	uint64_t f0 = heap_free();
	if (f0 == ~0ull) {
		serial_printf("PT memory per protected page: needs the test build (HC_TEST_TABLE_MEM)\n");
		return;
	}
	/* scattered first: the dense run grows the store, which stays grown */
	for (int b = 0; b < nb; b++)
		set_n(gfn_of(blocks) + (uint64_t)b * 512 + 100, 1, 0xfffffffeu);
	uint64_t f2 = heap_free();
	for (int b = 0; b < nb; b++)
		set_n(gfn_of(blocks) + (uint64_t)b * 512 + 100, 1, TESSEL_SPP_ALL_WRITABLE);
	uint64_t f0b = heap_free();
	for (int b = 0; b < nb; b++)
		set_n(gfn_of(blocks) + (uint64_t)b * 512, 512, 0xfffffffeu);
	uint64_t f1 = heap_free();
	for (int b = 0; b < nb; b++)
		set_n(gfn_of(blocks) + (uint64_t)b * 512, 512, TESSEL_SPP_ALL_WRITABLE);
	serial_printf("PT memory per protected page (store growth included): dense (%d full blocks) %llu bytes, scattered (1 page in each of "
		      "%d blocks) %llu bytes\n", nb, (unsigned long long)((f0b - f1) * 4096 / (512ull * nb)), nb,
		      (unsigned long long)((f0 - f2) * 4096 / nb));
}

/* SET/GET per page and a denied write on a probe block while 1 .. 1,000,000 other pages are
 * protected (as far as guest RAM and the heap go). */
static void bench_scaling(uint8_t *probe_blk, uint64_t overhead)
{
	static const uint64_t marks[] = { 0, 1000, 10000, 65536, 100000, 262144, 500000, 1000000 };
	static uint64_t v[16];
	uint64_t done = 0, fstart = heap_free();
	uint8_t *chunk = NULL;
	uint64_t chunk_pages = 0, chunk_used = 0;
	serial_printf("PT scaling: | protected pages | SET/page (512) | GET/page (512) | denied write | bytes/page |\n");
	for (unsigned mi = 0; mi < sizeof(marks) / sizeof(marks[0]); mi++) {
		int64_t st = 0;
		while (done < marks[mi]) {
			if (chunk_used == chunk_pages) {
				chunk_pages = 16384; /* 64 MiB at a time */
				chunk = alloc_pages(chunk_pages + 512);
				if (!chunk) {
					chunk_pages = 2048;
					chunk = alloc_pages(chunk_pages + 512);
				}
				if (!chunk)
					break;
				chunk = (uint8_t *)(((uintptr_t)chunk + 0x1fffff) & ~(uintptr_t)0x1fffff);
				chunk_used = 0;
			}
			uint64_t n = marks[mi] - done;
			if (n > 512)
				n = 512;
			if (n > chunk_pages - chunk_used)
				n = chunk_pages - chunk_used;
			st = set_n(gfn_of(chunk) + chunk_used, n, 0xfffffff0u);
			if (st)
				break;
			chunk_used += n;
			done += n;
		}
		if (done < marks[mi]) {
			serial_printf("PT scaling: stopped at %llu protected pages (%s, SET status %lld)\n",
				      (unsigned long long)done, chunk ? "heap" : "guest RAM", (long long)st);
			break;
		}
		for (int i = 0; i < 9; i++) {
			uint64_t t0 = rdtsc();
			set_n(gfn_of(probe_blk), 512, 0xfffffffeu);
			v[i] = (rdtsc() - t0) / 512;
			set_n(gfn_of(probe_blk), 512, TESSEL_SPP_ALL_WRITABLE);
		}
		sort(v, 9);
		uint64_t setp = v[4];
		set_n(gfn_of(probe_blk), 512, 0xfffffffeu);
		for (int i = 0; i < 9; i++) {
			uint64_t t0 = rdtsc();
			tessel_spp_get(gfn_of(probe_blk), 512, gpa_of(pt_maps));
			v[i] = (rdtsc() - t0) / 512;
		}
		sort(v, 9);
		uint64_t getp = v[4];
		volatile uint64_t *pw = (volatile uint64_t *)(probe_blk + 8192);
		for (int i = 0; i < 9; i++) {
			uint64_t t0 = rdtsc();
			pw[0] = (uint64_t)i;
			v[i] = rdtsc() - t0 - overhead;
		}
		sort(v, 9);
		uint64_t den = v[4];
		set_n(gfn_of(probe_blk), 512, TESSEL_SPP_ALL_WRITABLE);
		uint64_t fnow = heap_free();
		if (fnow == ~0ull || !done)
			serial_printf("PT scaling: | %llu | %llu | %llu | %llu | - |\n", (unsigned long long)done,
				      (unsigned long long)setp, (unsigned long long)getp, (unsigned long long)den);
		else
			serial_printf("PT scaling: | %llu | %llu | %llu | %llu | %llu |\n", (unsigned long long)done,
				      (unsigned long long)setp, (unsigned long long)getp, (unsigned long long)den,
				      (unsigned long long)((fstart - fnow) * 4096 / done));
	}
}

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *st)
{
	guest_init(image, st);
	struct result res[MAX_ROWS];
	int n = 0;
	uint64_t overhead = measure_empty();

	if (tessel_present()) {
		for (int i = 0; i < SAMPLES; i++) {
			uint64_t t0 = rdtsc();
			tessel_hc0(HC_NOP);
			samples[i] = rdtsc() - t0;
		}
		res[n++] = summarize("HC_NOP round trip", overhead);
	}
	for (int i = 0; i < SAMPLES; i++) {
		uint64_t t0 = rdtsc();
		struct tessel_cpuid c = tessel_cpuid(0, 0);
		(void)c;
		samples[i] = rdtsc() - t0;
	}
	res[n++] = summarize("CPUID(0) round trip", overhead);

	uint32_t version = 0, flags = 0;
	uint64_t maxp = 0;
	if (tessel_present())
		tessel_query(&version, &flags, &maxp);
	uint64_t sppt_dense = 0, sppt_scattered = 0;
	int have_spp = (flags & (TESSEL_F_SPP_HW | TESSEL_F_SPP_SW)) != 0;
	uint32_t *maps = alloc_pages(1);
	uint8_t *region = alloc_pages(1024 + 512); /* holds one whole aligned 2 MiB block */
	if (have_spp && maps && region) {
		uint8_t *blk = (uint8_t *)(((uintptr_t)region + 0x1fffff) & ~(uintptr_t)0x1fffff);
		volatile uint64_t *probe = (volatile uint64_t *)(blk + 4096);
		/* SPP_SET of 1 page (protect; the unprotect in between is not measured) */
		for (int i = 0; i < SPP_SAMPLES; i++) {
			maps[0] = 0xfffffffeu;
			uint64_t t0 = rdtsc();
			tessel_spp_set(gfn_of(blk), 1, gpa_of(maps), 0);
			samples[i] = rdtsc() - t0;
			maps[0] = TESSEL_SPP_ALL_WRITABLE;
			tessel_spp_set(gfn_of(blk), 1, gpa_of(maps), 0);
		}
		for (int i = SPP_SAMPLES; i < SAMPLES; i++)
			samples[i] = samples[i % SPP_SAMPLES];
		res[n++] = summarize("SPP_SET, 1 page", overhead);
		/* SPP_SET of 512 pages, per page; the block's EPT split happened in the first call */
		for (int i = 0; i < SPP_SAMPLES; i++) {
			for (int k = 0; k < 512; k++)
				maps[k] = 0xfffffffeu;
			uint64_t t0 = rdtsc();
			tessel_spp_set(gfn_of(blk), 512, gpa_of(maps), 0);
			samples[i] = (rdtsc() - t0) / 512;
			if (i == 0)
				sppt_dense = stat_now(TESSEL_STAT_SPPT_PAGES);
			for (int k = 0; k < 512; k++)
				maps[k] = TESSEL_SPP_ALL_WRITABLE;
			if (i + 1 < SPP_SAMPLES)
				tessel_spp_set(gfn_of(blk), 512, gpa_of(maps), 0);
		}
		for (int i = SPP_SAMPLES; i < SAMPLES; i++)
			samples[i] = samples[i % SPP_SAMPLES];
		res[n++] = summarize("SPP_SET, 512 pages, per page", 0);
		/* SPP_GET of 512 pages (still protected) */
		for (int i = 0; i < SPP_SAMPLES; i++) {
			uint64_t t0 = rdtsc();
			tessel_spp_get(gfn_of(blk), 512, gpa_of(maps));
			samples[i] = rdtsc() - t0;
		}
		for (int i = SPP_SAMPLES; i < SAMPLES; i++)
			samples[i] = samples[i % SPP_SAMPLES];
		res[n++] = summarize("SPP_GET, 512 pages", overhead);
		/* A denied write: sub-page 0 of page 1 is protected (map 0xfffffffe). */
		for (int i = 0; i < SAMPLES; i++) {
			uint64_t t0 = rdtsc();
			probe[0] = (uint64_t)i;
			samples[i] = rdtsc() - t0;
		}
		res[n++] = summarize("denied write (8 bytes)", overhead);
		/* An allowed write to the same page (sub-page 1): INVLPG first so Bochs' TLB does
		 * not remember an earlier allowed write (docs/SPP.md section 10, bug 1). */
		for (int i = 0; i < SAMPLES; i++) {
			invlpg((void *)probe);
			uint64_t t0 = rdtsc();
			probe[16] = (uint64_t)i;
			samples[i] = rdtsc() - t0;
		}
		res[n++] = summarize("allowed write, protected page", overhead);
		/* An instruction the emulator does not cover (FXSAVE, 512 bytes into writable
		 * sub-pages 8-11): software mode single-steps it; hardware SPP lets it through. */
		for (int i = 0; i < SPP_SAMPLES; i++) {
			invlpg((void *)probe);
			uint8_t *area = (uint8_t *)probe + 1024;
			uint64_t t0 = rdtsc();
			__asm__ __volatile__("fxsave64 (%0)" : : "r"(area) : "memory");
			samples[i] = rdtsc() - t0;
		}
		for (int i = SPP_SAMPLES; i < SAMPLES; i++)
			samples[i] = samples[i % SPP_SAMPLES];
		res[n++] = summarize("FXSAVE to writable sub-pages", overhead);
		/* Lazy-mode SPP miss: a SET invalidates the block's SPPT entry; the next write misses. */
		if (flags & TESSEL_F_SPP_HW) {
			uint64_t misses0 = stat_now(TESSEL_STAT_SPP_MISSES);
			for (int i = 0; i < SPP_SAMPLES; i++) {
				/* a real change of the map each time (sub-page 31 protected or not):
				 * a SET that changes nothing need not invalidate the block */
				maps[0] = (i & 1) ? 0x7ffffffeu : 0xfffffffeu;
				tessel_spp_set(gfn_of(blk) + 1, 1, gpa_of(maps), 0);
				invlpg((void *)probe);
				uint64_t t0 = rdtsc();
				probe[16] = (uint64_t)i;
				samples[i] = rdtsc() - t0;
			}
			for (int i = SPP_SAMPLES; i < SAMPLES; i++)
				samples[i] = samples[i % SPP_SAMPLES];
			if (stat_now(TESSEL_STAT_SPP_MISSES) > misses0)
				res[n++] = summarize("allowed write after SET (miss)", overhead);
		}
		for (int k = 0; k < 512; k++)
			maps[k] = TESSEL_SPP_ALL_WRITABLE;
		tessel_spp_set(gfn_of(blk), 512, gpa_of(maps), 0);
		/* Scattered: one page in each of 32 different 2 MiB blocks is not possible inside
		 * this allocation; use one page per 64 KiB instead (24 pages, distinct leaves). */
		uint64_t before = stat_now(TESSEL_STAT_SPPT_PAGES);
		maps[0] = 0xfffffffeu;
		for (int k = 0; k < 24; k++)
			tessel_spp_set(gfn_of(region) + (uint64_t)k * 64, 1, gpa_of(maps), 0);
		sppt_scattered = stat_now(TESSEL_STAT_SPPT_PAGES) - before;
		maps[0] = TESSEL_SPP_ALL_WRITABLE;
		for (int k = 0; k < 24; k++)
			tessel_spp_set(gfn_of(region) + (uint64_t)k * 64, 1, gpa_of(maps), 0);
	}

	/* Permission-table rows: fresh blocks for the first-SET and memory rows, then (with
	 * the test build, which bench.sh boots with a large heap and RAM) the scaling table. */
	uint8_t *fresh = have_spp && maps ? alloc_pages(17 * 512) : NULL;
	if (fresh) {
		fresh = (uint8_t *)(((uintptr_t)fresh + 0x1fffff) & ~(uintptr_t)0x1fffff);
		serial_printf("PT-BEGIN\n");
		bench_first_set(fresh, 16, overhead);
		bench_memory(fresh, 16);
		if (heap_free() != ~0ull)
			bench_scaling(region && maps ? (uint8_t *)(((uintptr_t)region + 0x1fffff) & ~(uintptr_t)0x1fffff) : fresh,
				      overhead);
		serial_printf("PT-END\n");
	}

	serial_printf("BENCH-BEGIN %s\n", !tessel_present() ? "no hypervisor" :
		      (flags & TESSEL_F_SPP_HW) ? "under Tessel, hardware SPP" :
		      (flags & TESSEL_F_SPP_SW) ? "under Tessel, software SPP" : "under Tessel, SPP off");
	serial_printf("| %-28s | %8s | %8s | %8s |\n", "operation (Bochs instructions)", "median", "min", "max");
	serial_printf("|------------------------------|----------|----------|----------|\n");
	for (int i = 0; i < n; i++)
		serial_printf("| %-28s | %8llu | %8llu | %8llu |\n", res[i].name, (unsigned long long)res[i].median,
			      (unsigned long long)res[i].min, (unsigned long long)res[i].max);
	serial_printf("(%d samples each, %d for SPP calls; RDTSC-pair overhead of %llu subtracted)\n", SAMPLES,
		      SPP_SAMPLES, (unsigned long long)overhead);
	if (have_spp && (flags & TESSEL_F_SPP_HW))
		serial_printf("SPPT bytes per protected page: dense 2 MiB block %llu.%02llu (total SPPT after protecting "
			      "512 pages: %llu pages), scattered (24 pages 64 KiB apart) %llu\n",
			      (unsigned long long)(sppt_dense * 4096 / 512), (unsigned long long)(sppt_dense * 4096 % 512 * 100 / 512),
			      (unsigned long long)sppt_dense, (unsigned long long)(sppt_scattered * 4096 / 24));
	serial_printf("BENCH-END\n");
	power_off();
}
