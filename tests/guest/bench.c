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

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *st)
{
	guest_init(image, st);
	struct result res[4];
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

	serial_printf("BENCH-BEGIN %s\n", tessel_present() ? "under Tessel" : "no hypervisor");
	serial_printf("| %-28s | %8s | %8s | %8s |\n", "operation (Bochs instructions)", "median", "min", "max");
	serial_printf("|------------------------------|----------|----------|----------|\n");
	for (int i = 0; i < n; i++)
		serial_printf("| %-28s | %8llu | %8llu | %8llu |\n", res[i].name, (unsigned long long)res[i].median,
			      (unsigned long long)res[i].min, (unsigned long long)res[i].max);
	serial_printf("(%d samples each; RDTSC-pair overhead of %llu subtracted)\n", SAMPLES,
		      (unsigned long long)overhead);
	serial_printf("BENCH-END\n");
	power_off();
}
