/*
 * spp_util.c: helpers for the sub-page protection tests; see spp_util.h.
 */
#include "spp_util.h"
#include <lib/fmt.h>

struct spp_env spp;
uint32_t *spp_map;

uint32_t cpu_apic_id(void)
{
	return tessel_cpuid(1, 0).ebx >> 24;
}

const char *spp_mode(void)
{
	if (spp.hw && !spp.sw)
		return "hardware SPP";
	if (spp.sw && !spp.hw)
		return "software";
	return "none/invalid";
}

void spp_start(EFI_HANDLE image, EFI_SYSTEM_TABLE *st, int points)
{
	guest_init(image, st);
	tap_plan(points);
	if (!tessel_present())
		tap_bail("no Tessel hypervisor (CPUID 0x40000000 signature missing)");
	struct tessel_cpuid f = tessel_cpuid(TESSEL_CPUID_FEATURES, 0);
	spp.cpuid_flags = f.ebx;
	spp.cpuid_max = f.ecx;
	uint32_t version = 0;
	int64_t q = tessel_query(&version, &spp.flags, &spp.max_pages);
	spp.hw = !!(spp.flags & TESSEL_F_SPP_HW);
	spp.sw = !!(spp.flags & TESSEL_F_SPP_SW);
	spp.ok = q == 0 && (spp.hw ^ spp.sw);
	spp.apic_id = cpu_apic_id();
	spp_map = spp_pages(1);
	if (!spp_map)
		tap_bail("out of memory");
	tap_diag("Tessel flags 0x%x (CPUID 0x%x), max pages %llu: %s mode; BSP APIC ID %u", spp.flags,
		 spp.cpuid_flags, (unsigned long long)spp.max_pages, spp_mode(), spp.apic_id);
	if (!spp.ok)
		tap_diag("no usable sub-page protection (HC_QUERY %lld): every SPP point will fail", (long long)q);
}

/* ---- TAP bookkeeping ---- */
static const char *suite_name = "";
static int suite_planned, suite_count;

void suite_begin(const char *name, int planned)
{
	suite_name = name;
	suite_planned = planned;
	suite_count = 0;
	tap_diag("---- suite %s (%d points) ----", name, planned);
}

int sok(int cond, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	fmt_vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	suite_count++;
	return tap_ok(cond, "%s: %s", suite_name, buf);
}

void sskip(const char *why, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	fmt_vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	suite_count++;
	tap_ok(1, "%s: %s # SKIP %s", suite_name, buf, why);
}

void suite_end(void)
{
	if (suite_count > suite_planned)
		tap_diag("suite %s: BUG in the test: %d points reported, %d planned", suite_name, suite_count,
			 suite_planned);
	while (suite_count < suite_planned) {
		suite_count++;
		tap_ok(0, "%s: point %d not reached (suite stopped early)", suite_name, suite_count);
	}
}

/* ---- memory ---- */
void *spp_pages(unsigned n)
{
	EFI_PHYSICAL_ADDRESS a = 0;
	if (EFI_ERROR(uefi_call_wrapper(BS->AllocatePages, 4, AllocateAnyPages, EfiBootServicesData, n, &a)))
		return NULL;
	mem_set((void *)(uintptr_t)a, 0, (uint64_t)n * PAGE);
	return (void *)(uintptr_t)a;
}

void spp_free(void *p, unsigned n)
{
	if (p)
		uefi_call_wrapper(BS->FreePages, 2, (EFI_PHYSICAL_ADDRESS)(uintptr_t)p, n);
}

void *spp_block2m(void)
{
	static uint8_t *block;
	if (!block) {
		EFI_PHYSICAL_ADDRESS a = 0;
		if (EFI_ERROR(uefi_call_wrapper(BS->AllocatePages, 4, AllocateAnyPages, EfiBootServicesData, 1024, &a)))
			return NULL;
		block = (uint8_t *)(uintptr_t)((a + 0x1fffffull) & ~0x1fffffull);
	}
	return block;
}

uint64_t ram_end(void)
{
	UINTN entries = 0, key = 0, dsize = 0;
	UINT32 dver = 0;
	EFI_MEMORY_DESCRIPTOR *map = LibMemoryMap(&entries, &key, &dsize, &dver);
	uint64_t end = 0;
	if (!map)
		return 0;
	for (UINTN i = 0; i < entries; i++) {
		EFI_MEMORY_DESCRIPTOR *d = (EFI_MEMORY_DESCRIPTOR *)((uint8_t *)map + i * dsize);
		if (d->Type == EfiMemoryMappedIO || d->Type == EfiMemoryMappedIOPortSpace || d->Type == EfiReservedMemoryType ||
		    d->Type == EfiUnusableMemory)
			continue;
		uint64_t e = d->PhysicalStart + d->NumberOfPages * 4096ull;
		if (e > end)
			end = e;
	}
	FreePool(map);
	return end;
}

int hv_region(uint64_t *base, uint64_t *size)
{
	static EFI_GUID guid = TESSEL_REGION_GUID_INIT;
	const struct tessel_region_info *ri = config_table(&guid);
	if (!ri || ri->magic != TESSEL_REGION_MAGIC || !ri->size)
		return 0;
	*base = ri->base;
	*size = ri->size;
	return 1;
}

/* ---- maps ---- */
static uint32_t *map1(void)
{
	/* last word of the map page: separate from spp_map[0..n) used by multi-page calls */
	return &spp_map[1023];
}

int64_t set1(volatile void *page, uint32_t mask, uint64_t flags)
{
	*map1() = mask;
	return tessel_spp_set(gfn_of(page), 1, gpa_of(map1()), flags);
}

int64_t get1(volatile void *page, uint32_t *mask)
{
	*map1() = 0x5a5a5a5a;
	int64_t r = tessel_spp_get(gfn_of(page), 1, gpa_of(map1()));
	*mask = *map1();
	return r;
}

int64_t unprot(volatile void *page, unsigned n)
{
	int64_t worst = 0;
	for (unsigned i = 0; i < n; i++) {
		int64_t r = set1((volatile uint8_t *)page + (uint64_t)i * PAGE, TESSEL_SPP_ALL_WRITABLE, 0);
		if (r)
			worst = r;
	}
	return worst;
}

int64_t stats_get(struct stats *s)
{
	static uint64_t buf[TESSEL_STAT_COUNT_1_0] __attribute__((aligned(8)));
	uint64_t full = 0;
	int64_t r = tessel_stats(gpa_of(buf), sizeof(buf), &full);
	for (int i = 0; i < TESSEL_STAT_COUNT_1_0; i++)
		s->v[i] = r == 0 ? buf[i] : 0;
	return r;
}

/* ---- patterns and probes ---- */
void pat_fill(volatile uint8_t *p, unsigned len, uint8_t seed)
{
	for (unsigned i = 0; i < len; i++)
		p[i] = pat_byte(i, seed);
}

unsigned mem_diff(const volatile uint8_t *a, const volatile uint8_t *b, unsigned len, unsigned *first)
{
	unsigned n = 0;
	if (first)
		*first = ~0u;
	for (unsigned i = 0; i < len; i++)
		if (a[i] != b[i]) {
			if (!n && first)
				*first = i;
			n++;
		}
	return n;
}

uint64_t raw_store(volatile void *p, uint64_t v, unsigned size)
{
	uint64_t rip;
	switch (size) {
	case 1:
		__asm__ __volatile__("leaq 1f(%%rip), %0\n1:\tmovb %b2, (%1)" : "=&r"(rip) : "r"(p), "q"(v) : "memory");
		break;
	case 2:
		__asm__ __volatile__("leaq 1f(%%rip), %0\n1:\tmovw %w2, (%1)" : "=&r"(rip) : "r"(p), "r"(v) : "memory");
		break;
	case 4:
		__asm__ __volatile__("leaq 1f(%%rip), %0\n1:\tmovl %k2, (%1)" : "=&r"(rip) : "r"(p), "r"(v) : "memory");
		break;
	default:
		__asm__ __volatile__("leaq 1f(%%rip), %0\n1:\tmovq %2, (%1)" : "=&r"(rip) : "r"(p), "r"(v) : "memory");
		break;
	}
	return rip;
}

uint64_t probe_store(volatile void *p, uint64_t v, unsigned size)
{
	invlpg((const void *)((uintptr_t)p & ~4095ull));
	return raw_store(p, v, size);
}

/* ---- events ---- */
int64_t ev_setup(struct tessel_ring *r, unsigned pages, unsigned vector)
{
	if (r)
		mem_set(r, 0, (uint64_t)pages * PAGE);
	return tessel_events_setup(gpa_of(r), pages, vector);
}

const char *ev_kind(unsigned kind)
{
	switch (kind) {
	case TESSEL_EV_DENIED:
		return "DENIED";
	case TESSEL_EV_TRACKED:
		return "TRACKED";
	case TESSEL_EV_DISCARDED:
		return "DISCARDED";
	}
	return "?";
}

void ev_fmt(char *buf, unsigned size, const struct tessel_event *e)
{
	fmt_snprintf(buf, size, "{%s gpa 0x%llx rip 0x%llx gla 0x%llx vcpu %u bytes %u}", ev_kind(e->kind),
		     (unsigned long long)e->gpa, (unsigned long long)e->rip, (unsigned long long)e->gla, e->vcpu,
		     e->bytes);
}

/* ---- notification vector ----
 * The handler only counts. It deliberately sends no EOI to the local APIC: the hypervisor
 * injects the vector as an event on VM entry, not through the (virtual) local APIC, so no ISR
 * bit is set for it; an EOI would retire some other in-service interrupt (e.g. the firmware
 * timer) instead. */
__attribute__((visibility("hidden"))) volatile uint64_t spp_vec_hits;
__attribute__((visibility("hidden"))) extern char spp_vec_entry[];
__asm__(".text\n"
	".globl spp_vec_entry\n"
	".hidden spp_vec_entry\n"
	".p2align 4\n"
	"spp_vec_entry:\n"
	"	lock incq spp_vec_hits(%rip)\n"
	"	iretq\n");

struct vgate {
	uint16_t off_lo, sel;
	uint8_t ist, type_attr;
	uint16_t off_mid;
	uint32_t off_hi, zero;
};
static struct vgate vec_idt[256] __attribute__((aligned(4096)));
static struct x86_dtr vec_old;
static int vec_live;

void vec_install(uint8_t vector)
{
	struct x86_dtr n;
	sidt(&vec_old);
	uint64_t len = (uint64_t)vec_old.limit + 1;
	if (len > sizeof(vec_idt))
		len = sizeof(vec_idt);
	mem_set(vec_idt, 0, sizeof(vec_idt));
	mem_copy(vec_idt, (const void *)(uintptr_t)vec_old.base, len);
	uint64_t h = (uint64_t)(uintptr_t)spp_vec_entry;
	struct vgate *g = &vec_idt[vector];
	g->off_lo = (uint16_t)h;
	g->sel = read_cs();
	g->ist = 0;
	g->type_attr = 0x8e; /* present, DPL 0, 64-bit interrupt gate */
	g->off_mid = (uint16_t)(h >> 16);
	g->off_hi = (uint32_t)(h >> 32);
	g->zero = 0;
	n.limit = sizeof(vec_idt) - 1;
	n.base = (uint64_t)(uintptr_t)vec_idt;
	lidt(&n);
	vec_live = 1;
}

void vec_remove(void)
{
	if (vec_live)
		lidt(&vec_old);
	vec_live = 0;
}

uint64_t vec_wait(uint64_t want, uint64_t spins)
{
	while (spp_vec_hits < want && spins--)
		cpu_relax();
	return spp_vec_hits;
}

/* ---- AP, non-blocking (PI 1.7 Vol. 2 13.4, EFI_MP_SERVICES_PROTOCOL) ---- */
typedef VOID(EFIAPI *ap_proc_t)(VOID *arg);
struct mp_proto {
	EFI_STATUS(EFIAPI *GetNumberOfProcessors)(struct mp_proto *This, UINTN *total, UINTN *enabled);
	EFI_STATUS(EFIAPI *GetProcessorInfo)(struct mp_proto *This, UINTN cpu, VOID *info);
	EFI_STATUS(EFIAPI *StartupAllAPs)(struct mp_proto *This, ap_proc_t proc, BOOLEAN single, EFI_EVENT ev,
					  UINTN timeout_us, VOID *arg, UINTN **failed);
	EFI_STATUS(EFIAPI *StartupThisAP)(struct mp_proto *This, ap_proc_t proc, UINTN cpu, EFI_EVENT ev,
					  UINTN timeout_us, VOID *arg, BOOLEAN *finished);
	VOID *SwitchBSP, *EnableDisableAP;
	EFI_STATUS(EFIAPI *WhoAmI)(struct mp_proto *This, UINTN *cpu);
};

static struct mp_proto *mpp;
static EFI_EVENT ap_event;
static struct {
	mp_fn fn;
	void *arg;
} ap_call;

static VOID EFIAPI ap_tramp(VOID *p)
{
	(void)p;
	ap_call.fn(ap_call.arg);
}

int ap_index(void)
{
	unsigned n = mp_count(), bsp = mp_bsp();
	for (unsigned i = 0; i < n; i++)
		if (i != bsp)
			return (int)i;
	return -1;
}

EFI_STATUS ap_start(unsigned cpu, mp_fn fn, void *arg)
{
	static EFI_GUID guid = { 0x3fdda605, 0xa76e, 0x4f46, { 0xad, 0x29, 0x12, 0xf4, 0x53, 0x1b, 0x3d, 0x08 } };
	EFI_STATUS s;
	if (!mpp) {
		s = uefi_call_wrapper(BS->LocateProtocol, 3, &guid, NULL, (void **)&mpp);
		if (EFI_ERROR(s)) {
			mpp = NULL;
			return s;
		}
	}
	if (!ap_event) {
		s = uefi_call_wrapper(BS->CreateEvent, 5, 0, 0, NULL, NULL, &ap_event);
		if (EFI_ERROR(s))
			return s;
	}
	ap_call.fn = fn;
	ap_call.arg = arg;
	return mpp->StartupThisAP(mpp, ap_tramp, cpu, ap_event, 0, NULL, NULL);
}

int ap_wait(unsigned ms)
{
	for (unsigned i = 0; i < ms; i++) {
		if (uefi_call_wrapper(BS->CheckEvent, 1, ap_event) == EFI_SUCCESS)
			return 1;
		uefi_call_wrapper(BS->Stall, 1, 1000);
	}
	return 0;
}
