/*
 * Benchmarks (make bench), not tests: round-trip costs measured with RDTSC inside the
 * guest. In Bochs with `clock: sync=none` the TSC advances once per emulated instruction,
 * so the figures are exact, repeatable instruction counts of guest + hypervisor work.
 * Prints a table on serial between "BENCH-BEGIN" and "BENCH-END" lines, then powers off.
 */
#include "arch.h"
#include "guest.h"
#include "spp_util.h"
#include "lib/fmt.h"
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

/* first: the first sample (cold caches, first exit of its kind); native: the median of the
 * same operation on an unprotected page (write rows only, else -1); reads/writes: VMREADs
 * and VMWRITEs the hypervisor made for one operation (test build only, else -1). */
struct result { const char *name; uint64_t median, min, max, first; int64_t native, reads, writes; };

static void *alloc_pages(UINTN n)
{
	EFI_PHYSICAL_ADDRESS a = 0;
	if (EFI_ERROR(uefi_call_wrapper(BS->AllocatePages, 4, AllocateAnyPages, EfiBootServicesData, n, &a)))
		return NULL;
	return (void *)(uintptr_t)a;
}

#define BENCH_VECTOR 0xe5
#define HC_TEST_VMCS_COUNT 0x7e03u /* hv/abi.h: test builds only */

/* VMREADs and VMWRITEs so far (build/tessel-test.efi); false in the shipped build. */
static int vmcs_count(uint64_t *reads, uint64_t *writes)
{
	struct tessel_hc_out o = { 0, 0, 0 };
	if (tessel_vmcall(HC_TEST_VMCS_COUNT, 0, 0, 0, 0, &o))
		return 0;
	*reads = o.rbx;
	*writes = o.rcx;
	return 1;
}

static uint64_t stat_now(int idx)
{
	static uint64_t st[TESSEL_STAT_COUNT_1_0];
	uint64_t full = 0;
	tessel_stats(gpa_of(st), sizeof(st), &full);
	return st[idx];
}

#define SPP_SAMPLES 64
#define MAX_ROWS 24

static uint64_t sub0(uint64_t v, uint64_t o) { return v > o ? v - o : 0; }

static struct result summarize_n(const char *name, uint64_t overhead, int n)
{
	uint64_t first = samples[0];
	sort(samples, n);
	struct result r = { name, sub0(samples[n / 2], overhead), sub0(samples[0], overhead),
			    sub0(samples[n - 1], overhead), sub0(first, overhead), -1, -1, -1 };
	return r;
}

static struct result summarize(const char *name, uint64_t overhead)
{
	return summarize_n(name, overhead, SAMPLES);
}

/* The VMREAD/VMWRITE counts of the last row: around one more run of the operation, less
 * what two counter calls in a row show (the counter calls' own share). */
static uint64_t cnt_r0, cnt_w0, cnt_r1, cnt_w1, cnt_er, cnt_ew;

/* One write row: `nsamp` samples of `op` (with `p` the address and `i` the sample) after
 * `prep` and an INVLPG of p's page (Bochs' TLB otherwise remembers an allowed write:
 * docs/SPP.md section 10, bug 1): first on the unprotected page `nat` (native column), then
 * on `prot`, then once between two counter calls. */
#define WROW(label, nsamp, prep, op, prot, nat)                                                        \
	do {                                                                                           \
		volatile uint8_t *p = (nat);                                                           \
		for (int i = 0; i < (nsamp); i++) {                                                    \
			prep;                                                                          \
			invlpg((void *)p);                                                             \
			uint64_t t0 = rdtsc();                                                         \
			op;                                                                            \
			samples[i] = rdtsc() - t0;                                                     \
		}                                                                                      \
		sort(samples, (nsamp));                                                                \
		int64_t nat_med = (int64_t)sub0(samples[(nsamp) / 2], overhead);                       \
		p = (prot);                                                                            \
		for (int i = 0; i < (nsamp); i++) {                                                    \
			prep;                                                                          \
			invlpg((void *)p);                                                             \
			uint64_t t0 = rdtsc();                                                         \
			op;                                                                            \
			samples[i] = rdtsc() - t0;                                                     \
		}                                                                                      \
		res[n] = summarize_n(label, overhead, (nsamp));                                        \
		res[n].native = nat_med;                                                               \
		{                                                                                      \
			int i = 0;                                                                     \
			prep;                                                                          \
			invlpg((void *)p);                                                             \
			if (vmcs_count(&cnt_r0, &cnt_w0)) {                                            \
				op;                                                                    \
				vmcs_count(&cnt_r1, &cnt_w1);                                          \
				res[n].reads = (int64_t)(cnt_r1 - cnt_r0) - (int64_t)cnt_er;           \
				res[n].writes = (int64_t)(cnt_w1 - cnt_w0) - (int64_t)cnt_ew;          \
			}                                                                              \
			(void)i;                                                                       \
		}                                                                                      \
		n++;                                                                                   \
	} while (0)

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
		if (vmcs_count(&cnt_r0, &cnt_w0)) {
			vmcs_count(&cnt_r1, &cnt_w1);
			cnt_er = cnt_r1 - cnt_r0;
			cnt_ew = cnt_w1 - cnt_w0;
			vmcs_count(&cnt_r0, &cnt_w0);
			tessel_hc0(HC_NOP);
			vmcs_count(&cnt_r1, &cnt_w1);
			res[n - 1].reads = (int64_t)(cnt_r1 - cnt_r0 - cnt_er);
			res[n - 1].writes = (int64_t)(cnt_w1 - cnt_w0 - cnt_ew);
		}
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
	uint64_t sppt_dense = 0, sppt_scattered = 0, vec_hits = 0;
	int have_spp = (flags & (TESSEL_F_SPP_HW | TESSEL_F_SPP_SW)) != 0;
	uint32_t *maps = alloc_pages(1);
	uint8_t *region = alloc_pages(1024 + 512); /* holds one whole aligned 2 MiB block */
	if (have_spp && maps && region) {
		uint8_t *blk = (uint8_t *)(((uintptr_t)region + 0x1fffff) & ~(uintptr_t)0x1fffff);
		volatile uint8_t *probe = blk + 4096;
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
		/* The write rows. Page 1 of the block: sub-page 0 protected (map 0xfffffffe); page 3
		 * of the next block (never protected) gives each row its native column (the same
		 * instruction, same INVLPG, no protection). With the event ring set up, as a guest
		 * that uses protection has it; the ring is drained outside the timed part. */
		volatile uint8_t *plain = blk + 0x200000 + 3 * 4096; /* the next 2 MiB block: unprotected */
		struct tessel_ring *ring = alloc_pages(1);
		if (!ring) {
			serial_printf("BENCH-BEGIN\nbench: no memory for the ring\nBENCH-END\n");
			power_off();
		}
		ev_setup(ring, 1, 0);
		WROW("denied write, ring (8 bytes)", SAMPLES, ev_drain(ring), poke64((volatile uint64_t *)(p), (uint64_t)i), probe, plain);
		ev_drain(ring);
		/* The same with the ring's notification vector: the time includes the injected
		 * interrupt and the guest's handler (count and IRET). */
		{
			uint64_t if_was = read_rflags() & (1u << 9);
			vec_install(BENCH_VECTOR);
			__asm__ __volatile__("sti" ::: "memory");
			ev_setup(ring, 1, BENCH_VECTOR);
			WROW("denied write, ring + vector", SAMPLES, ev_drain(ring), poke64((volatile uint64_t *)(p), (uint64_t)i),
			     probe, plain);
			if (!if_was)
				__asm__ __volatile__("cli" ::: "memory");
			vec_hits = spp_vec_hits;
			vec_remove();
			ev_drain(ring);
			ev_setup(ring, 1, 0);
		}
		/* An 8-byte write across the end of protected sub-page 0: 4 bytes denied, 4 land. */
		WROW("straddling write (4 denied)", SAMPLES, ev_drain(ring), poke64((volatile uint64_t *)(p + 124), (uint64_t)i),
		     probe, plain);
		ev_drain(ring);
		tessel_events_setup(0, 0, 0);
		WROW("denied write, no ring", SAMPLES, (void)0, poke64((volatile uint64_t *)(p), (uint64_t)i), probe, plain);
		/* An allowed write to the same page (sub-page 1): INVLPG first so Bochs' TLB does
		 * not remember an earlier allowed write (docs/SPP.md section 10, bug 1). */
		WROW("allowed write, protected page", SAMPLES, (void)0, poke64((volatile uint64_t *)(p + 128), (uint64_t)i),
		     probe, plain);
		/* Across two writable sub-pages (1 and 2) of that page. */
		WROW("allowed write across sub-pages", SAMPLES, (void)0, poke64((volatile uint64_t *)(p + 252), (uint64_t)i),
		     probe, plain);
		/* An instruction the emulator does not cover (FXSAVE, 512 bytes into writable
		 * sub-pages 8-11): software mode single-steps it; hardware SPP lets it through. */
		WROW("FXSAVE to writable sub-pages", SPP_SAMPLES, (void)0,
		     __asm__ __volatile__("fxsave64 (%0)" : : "r"(p + 1024) : "memory"), probe, plain);
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
				((volatile uint64_t *)probe)[16] = (uint64_t)i;
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
	serial_printf("| %-30s | %8s | %8s | %8s | %8s | %8s | %6s | %6s |\n", "operation (Bochs instructions)", "median",
		      "min", "max", "first", "native", "VMREAD", "VMWRIT");
	serial_printf("|--------------------------------|----------|----------|----------|----------|----------|--------|--------|\n");
	for (int i = 0; i < n; i++) {
		char nat[24] = "-", rd[24] = "-", wr[24] = "-";
		if (res[i].native >= 0)
			fmt_snprintf(nat, sizeof(nat), "%lld", (long long)res[i].native);
		if (res[i].reads >= 0) {
			fmt_snprintf(rd, sizeof(rd), "%lld", (long long)res[i].reads);
			fmt_snprintf(wr, sizeof(wr), "%lld", (long long)res[i].writes);
		}
		serial_printf("| %-30s | %8llu | %8llu | %8llu | %8llu | %8s | %6s | %6s |\n", res[i].name,
			      (unsigned long long)res[i].median, (unsigned long long)res[i].min,
			      (unsigned long long)res[i].max, (unsigned long long)res[i].first, nat, rd, wr);
	}
	serial_printf("(%d samples each, %d for SPP calls; RDTSC-pair overhead of %llu subtracted)\n", SAMPLES,
		      SPP_SAMPLES, (unsigned long long)overhead);
	if (vec_hits)
		serial_printf("(native: the same instruction on an unprotected page; ring + vector: handler invoked %llu "
			      "times)\n", (unsigned long long)vec_hits);
	if (have_spp && (flags & TESSEL_F_SPP_HW))
		serial_printf("SPPT bytes per protected page: dense 2 MiB block %llu.%02llu (total SPPT after protecting "
			      "512 pages: %llu pages), scattered (24 pages 64 KiB apart) %llu\n",
			      (unsigned long long)(sppt_dense * 4096 / 512), (unsigned long long)(sppt_dense * 4096 % 512 * 100 / 512),
			      (unsigned long long)sppt_dense, (unsigned long long)(sppt_scattered * 4096 / 24));
	serial_printf("BENCH-END\n");
	power_off();
}
