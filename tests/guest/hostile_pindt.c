/*
 * hostile_pindt.c: descriptor-table register pinning (ABI 1.3, HC_PIN_DT) as a guest sees
 * it: the rootkit's LIDT/LGDT bypass of an IDT guard.
 *
 * The BSP builds a forged copy of the firmware's IDT (vector 0x81 pointing at a handler of
 * its own) and of its GDT, pins IDTR and GDTR, then loads the forged tables. Each load must
 * be refused: SIDT/SGDT still give the original values, HC_STATS pin_denied counts it and a
 * kind-5 event says which register (gla = 2_0000_0000H | 1 for IDTR, | 2 for GDTR), with
 * gpa = the forged base, bytes = the forged limit, rip = the LIDT/LGDT. That the original
 * tables are still in use is checked through the processor itself: INT 0x81 reaches the
 * handler in the original IDT, and a segment load sets the accessed bit of the original
 * GDT's descriptor, not the forged copy's. A reload of the identical values succeeds.
 * The same LIDT on the AP (running under MP services when the pin was made) is refused
 * against the AP's own value. Without HC_PIN_DT (Tessel before 1.3: -ENOSYS) every point
 * after the pin fails: the forged IDT takes effect. Ends with the common post-checks.
 */
#include "arch.h"
#include "guest.h"
#include "hostile.h"
#include "spp_util.h"
#include <lib/fmt.h>
#include <tessel.h>

#define DT_POINTS 14
#define POINTS (DT_POINTS + HOSTILE_POSTCHECK_POINTS)
#define VEC 0x81

static struct tessel_ring *ring;
static uint64_t *statbuf;
static uint32_t bsp_id;

volatile uint32_t pdt_hits_orig, pdt_hits_forged;
void pdt_h_orig(void);
void pdt_h_forged(void);
__asm__(".text\n"
	".globl pdt_h_orig\npdt_h_orig:\n\tlock incl pdt_hits_orig(%rip)\n\tiretq\n"
	".globl pdt_h_forged\npdt_h_forged:\n\tlock incl pdt_hits_forged(%rip)\n\tiretq\n");

static uint64_t pin_denied(void)
{
	uint64_t full = 0;
	mem_set(statbuf, 0, 4096);
	int64_t st = tessel_stats(gpa_of(statbuf), 4096, &full);
	if (st || full < (TESSEL_STAT_PIN_DENIED + 1) * 8)
		return ~0ull;
	return statbuf[TESSEL_STAT_PIN_DENIED];
}

static char evwhy[200];
static const char *ev_next(uint64_t gpa, uint64_t rip, uint64_t gla, uint32_t vcpu, uint16_t bytes)
{
	if (ev_pending(ring) < 1) {
		fmt_snprintf(evwhy, sizeof(evwhy), "no event");
		return evwhy;
	}
	struct tessel_event e = *ev_at(ring, 0);
	ring->tail++;
	if (e.kind != TESSEL_EV_PIN || e.gpa != gpa || e.rip != rip || e.gla != gla || e.vcpu != vcpu || e.bytes != bytes) {
		fmt_snprintf(evwhy, sizeof(evwhy),
			     "got kind %u gpa %llx rip %llx gla %llx vcpu %u bytes %u; want 5 %llx %llx %llx %u %u", e.kind,
			     (unsigned long long)e.gpa, (unsigned long long)e.rip, (unsigned long long)e.gla, e.vcpu,
			     e.bytes, (unsigned long long)gpa, (unsigned long long)rip, (unsigned long long)gla, vcpu, bytes);
		return evwhy;
	}
	evwhy[0] = 0;
	return evwhy;
}

static uint64_t do_lidt(const struct x86_dtr *d)
{
	uint64_t rip;
	__asm__ __volatile__("lea 1f(%%rip), %0\n1: lidt %1" : "=&r"(rip) : "m"(*d) : "memory");
	return rip;
}
static uint64_t do_lgdt(const struct x86_dtr *d)
{
	uint64_t rip;
	__asm__ __volatile__("lea 1f(%%rip), %0\n1: lgdt %1" : "=&r"(rip) : "m"(*d) : "memory");
	return rip;
}

/* A 64-bit interrupt gate (present, DPL 0) to `fn` through the current CS. */
static void set_gate(volatile uint8_t *idt, unsigned vec, void (*fn)(void))
{
	uint16_t cs;
	__asm__ __volatile__("mov %%cs, %0" : "=r"(cs));
	uint64_t off = (uint64_t)(uintptr_t)fn;
	uint64_t lo = (off & 0xffff) | ((uint64_t)cs << 16) | (0x8eull << 40) | (((off >> 16) & 0xffff) << 48);
	uint64_t hi = off >> 32;
	*(volatile uint64_t *)(idt + vec * 16) = lo;
	*(volatile uint64_t *)(idt + vec * 16 + 8) = hi;
}

static int dt_eq(const struct x86_dtr *a, const struct x86_dtr *b) { return a->limit == b->limit && a->base == b->base; }

/* The data selector to reload (DS, else SS) and its descriptor's accessed bit (bit 40). */
static uint16_t data_sel(void)
{
	uint16_t s;
	__asm__ __volatile__("mov %%ds, %0" : "=r"(s));
	if (s & ~3u)
		return s;
	__asm__ __volatile__("mov %%ss, %0" : "=r"(s));
	return s;
}
static void reload(uint16_t s)
{
	uint16_t ds;
	__asm__ __volatile__("mov %%ds, %0" : "=r"(ds));
	if (ds & ~3u)
		__asm__ __volatile__("mov %0, %%ds" : : "r"(s) : "memory");
	else
		__asm__ __volatile__("mov %0, %%ss" : : "r"(s) : "memory");
}
#define ACCESSED (1ull << 40)

/* ---- the AP (MP services) ---- */
struct ap_result { uint32_t apic_id; struct x86_dtr before, after; uint64_t rip; };
static struct x86_dtr forged_idtr;
static void ap_proc(void *arg)
{
	struct ap_result *r = arg;
	r->apic_id = cpu_apic_id();
	sidt(&r->before);
	r->rip = do_lidt(&forged_idtr);
	sidt(&r->after);
	if (!dt_eq(&r->after, &r->before))
		lidt(&r->before); /* the pin did not hold: put the firmware's IDT back */
}

static void dt_tests(void)
{
	int ap = ap_index();
	ring = spp_pages(1);
	statbuf = spp_pages(1);
	volatile uint8_t *fidt = spp_pages(2), *fgdt = spp_pages(1);
	int64_t evs = ring ? ev_setup(ring, 1, 0) : -1;
	uint32_t version = 0, flags = 0;
	int64_t q = tessel_query(&version, &flags, 0);
	bsp_id = cpu_apic_id();
	sok(q == 0 && version == 0x00010004u && (flags & TESSEL_F_PIN_DT) && evs == 0 && statbuf && fidt && fgdt,
	    "ABI 1.3 with TESSEL_F_PIN_DT (query %lld, version %x, flags %x), event ring (%lld), pages", (long long)q,
	    version, flags, (long long)evs);

	struct x86_dtr idtr, gdtr;
	sidt(&idtr);
	sgdt(&gdtr);
	tap_diag("BSP APIC ID %u, AP index %d, IDTR %llx/%x, GDTR %llx/%x", bsp_id, ap, (unsigned long long)idtr.base,
		 idtr.limit, (unsigned long long)gdtr.base, gdtr.limit);
	/* The forged tables: copies, vector 0x81 to our own handler in the forged IDT. */
	volatile uint8_t *oidt = (volatile uint8_t *)(uintptr_t)idtr.base;
	volatile uint8_t *ogdt = (volatile uint8_t *)(uintptr_t)gdtr.base;
	uint8_t saved_gate[16];
	mem_copy(saved_gate, (const void *)(oidt + VEC * 16), 16);
	mem_copy((void *)fidt, (const void *)oidt, (uint64_t)idtr.limit + 1 <= 8192 ? (uint64_t)idtr.limit + 1 : 8192);
	mem_copy((void *)fgdt, (const void *)ogdt, (uint64_t)gdtr.limit + 1 <= 4096 ? (uint64_t)gdtr.limit + 1 : 4096);
	set_gate(oidt, VEC, pdt_h_orig);
	set_gate(fidt, VEC, pdt_h_forged);
	forged_idtr = (struct x86_dtr){ idtr.limit, (uint64_t)(uintptr_t)fidt };
	struct x86_dtr forged_gdtr = { gdtr.limit, (uint64_t)(uintptr_t)fgdt };

	/* Argument errors: -EINVAL, only RAX changes, nothing pinned. */
	uint64_t d0 = pin_denied();
	struct tessel_hc_out o = { 0x11, 0x22, 0x33 };
	int64_t e1 = tessel_vmcall(HC_PIN_DT, 0, 0, 0, 0, &o);
	int ok = e1 == -TESSEL_EINVAL && o.rbx == 0 && o.rcx == 0 && o.rdx == 0;
	int64_t e2 = tessel_vmcall(HC_PIN_DT, 4, 0, 0, 0, (struct tessel_hc_out *)0);
	int64_t e3 = tessel_vmcall(HC_PIN_DT, 1, 1, 0, 0, (struct tessel_hc_out *)0);
	int64_t e4 = tessel_vmcall(HC_PIN_DT, 0x100000001ull, 0, 0, 0, (struct tessel_hc_out *)0);
	sok(ok && e2 == -TESSEL_EINVAL && e3 == -TESSEL_EINVAL && e4 == -TESSEL_EINVAL,
	    "HC_PIN_DT argument errors: -EINVAL (%lld %lld %lld %lld)", (long long)e1, (long long)e2, (long long)e3,
	    (long long)e4);

	uint64_t mask = 0;
	int64_t p = tessel_pin_dt(TESSEL_PIN_DT_IDTR | TESSEL_PIN_DT_GDTR, &mask);
	sok(p == 0 && mask == 3 && ev_pending(ring) == 0 && pin_denied() == d0,
	    "HC_PIN_DT IDTR|GDTR: 0, pinned mask %llx (status %lld), nothing counted or posted",
	    (unsigned long long)mask, (long long)p);

	struct x86_dtr si, sg;
	sidt(&si);
	sgdt(&sg);
	sok(dt_eq(&si, &idtr) && dt_eq(&sg, &gdtr), "SIDT/SGDT after the pin (emulated): %llx/%x, %llx/%x",
	    (unsigned long long)si.base, si.limit, (unsigned long long)sg.base, sg.limit);

	/* The rootkit's LIDT: refused. */
	uint64_t rip = do_lidt(&forged_idtr);
	sidt(&si);
	sok(dt_eq(&si, &idtr) && pin_denied() == d0 + 1, "LIDT of a forged IDT refused: IDTR still %llx/%x, pin_denied +1",
	    (unsigned long long)si.base, si.limit);
	sok(!ev_next(forged_idtr.base, rip, TESSEL_EV_PIN_DTR(TESSEL_PIN_DT_IDTR), bsp_id, forged_idtr.limit)[0],
	    "its event: kind 5, gpa = forged base, gla = 2_0000_0001, bytes = limit, rip, vcpu %s", evwhy);
	__asm__ __volatile__("int $0x81" ::: "memory");
	sok(pdt_hits_orig == 1 && pdt_hits_forged == 0,
	    "INT 0x81 goes through the original IDT (original handler %u, forged %u)", pdt_hits_orig, pdt_hits_forged);

	/* The rootkit's LGDT: refused, and segment loads still use the original GDT. */
	rip = do_lgdt(&forged_gdtr);
	sgdt(&sg);
	sok(dt_eq(&sg, &gdtr) && pin_denied() == d0 + 2 &&
		    !ev_next(forged_gdtr.base, rip, TESSEL_EV_PIN_DTR(TESSEL_PIN_DT_GDTR), bsp_id, forged_gdtr.limit)[0],
	    "LGDT of a forged GDT refused: GDTR still %llx/%x, pin_denied +1, event %s", (unsigned long long)sg.base,
	    sg.limit, evwhy);
	uint16_t sel = data_sel();
	volatile uint64_t *od = (volatile uint64_t *)(ogdt + (sel & ~7u)), *fd = (volatile uint64_t *)(fgdt + (sel & ~7u));
	*od &= ~ACCESSED;
	*fd &= ~ACCESSED;
	reload(sel);
	sok((sel & ~7u) && (*od & ACCESSED) && !(*fd & ACCESSED),
	    "a segment load (selector %x) uses the original GDT (accessed bit: original %d, forged %d)", sel,
	    (int)((*od >> 40) & 1), (int)((*fd >> 40) & 1));

	/* The identical values: allowed, not counted. */
	do_lidt(&idtr);
	do_lgdt(&gdtr);
	sidt(&si);
	sgdt(&sg);
	sok(dt_eq(&si, &idtr) && dt_eq(&sg, &gdtr) && pin_denied() == d0 + 2 && ev_pending(ring) == 0,
	    "LIDT/LGDT of the pinned values: allowed, not counted");
	uint64_t m2 = 0;
	int64_t again = tessel_pin_dt(TESSEL_PIN_DT_IDTR, &m2);
	sok(again == 0 && m2 == 3, "HC_PIN_DT again with the pinned value: 0, mask %llx", (unsigned long long)m2);

	/* The AP. */
	uint64_t nd = d0 + 2;
	if (ap < 0) {
		sskip("one processor", "AP: LIDT of a forged IDT refused");
	} else {
		static struct ap_result apr;
		mem_set(&apr, 0, sizeof(apr));
		EFI_STATUS s = mp_run_on((unsigned)ap, ap_proc, &apr, 5000000);
		nd++;
		const char *w = ev_next(forged_idtr.base, apr.rip, TESSEL_EV_PIN_DTR(TESSEL_PIN_DT_IDTR), apr.apic_id,
					forged_idtr.limit);
		sok(!EFI_ERROR(s) && dt_eq(&apr.after, &apr.before) && apr.apic_id != bsp_id && pin_denied() == nd && !w[0],
		    "AP (MP services): LIDT of a forged IDT refused (IDTR %llx/%x, stays %llx/%x), counted, event %s",
		    (unsigned long long)apr.before.base, apr.before.limit, (unsigned long long)apr.after.base,
		    apr.after.limit, evwhy);
	}
	sok(pin_denied() == nd && ev_pending(ring) == 0, "pin_denied = %llu, one per refused load (want %llu), no other events",
	    (unsigned long long)pin_denied(), (unsigned long long)nd);

	/* Without the pin (an old Tessel) the forged IDT is in use now: put the original back. */
	sidt(&si);
	if (!dt_eq(&si, &idtr))
		lidt(&idtr);
	sgdt(&sg);
	if (!dt_eq(&sg, &gdtr))
		lgdt(&gdtr);
	mem_copy((void *)(oidt + VEC * 16), saved_gate, 16);
	sok(mem_cmp((const void *)(oidt + VEC * 16), saved_gate, 16) == 0, "the firmware's IDT entry 0x81 restored");
}

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *st)
{
	spp_start(image, st, POINTS);
	struct hostile_guard g;
	hostile_guard_setup(&g);
	suite_begin("pindt", DT_POINTS);
	dt_tests();
	suite_end();
	hostile_postcheck(&g, "descriptor-table register pinning");
	guest_finish();
}
