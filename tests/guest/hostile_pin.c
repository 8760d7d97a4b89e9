/*
 * hostile_pin.c: control-register and MSR pinning (ABI 1.2, HC_PIN_CR / HC_PIN_MSR) as a
 * guest sees it, on both processors.
 *
 * The BSP pins CR0.WP, CR4.SMEP (where the CPU model has SMEP), IA32_LSTAR and EFER.NXE,
 * then tries to undo them: MOV to CR0/CR4 clearing them (also together with a change that
 * must take effect), LMSW and CLTS, WRMSR of another value. Every refused write must leave
 * the bit or value as pinned, add 1 to HC_STATS pin_denied and post one kind-5 event with
 * gpa = the value written, gla = the register (0, 4, or 1_0000_0000H | MSR index), rip = the
 * writing instruction, vcpu = the APIC ID, bytes = 0. Then the same on the AP: once through
 * MP services (the AP was running when the pin was made), and once after an INIT-SIPI into a
 * real-mode trampoline (INIT disarms the CR bits and EFER.NXE; setting them re-arms them;
 * LSTAR stays pinned across INIT). Ends with the common post-checks (lib/hostile.h).
 * Everything the pin tests need from the firmware is allocated before the first pin.
 */
#include "arch.h"
#include "guest.h"
#include "hostile.h"
#include "spp_util.h"
#include <lib/fmt.h>
#include <tessel.h>

#define PIN_POINTS 23
#define POINTS (PIN_POINTS + HOSTILE_POSTCHECK_POINTS)

#define CR0_TS (1ull << 3)
#define CR0_WP (1ull << 16)
#define CR0_AM (1ull << 18)
#define EFER_NXE (1ull << 11)
#define MSR_LSTAR 0xc0000082u
#define MSR_APIC_BASE 0x1bu
#define APIC_EXTD (1ull << 10)
#define X2APIC_ICR 0x830u
#define XAPIC_ICR_LO 0x300u
#define XAPIC_ICR_HI 0x310u
#define ICR_INIT_ASSERT 0x4500u
#define ICR_SIPI 0x4600u
#define LSTAR_PIN 0xffffffff81234000ull /* the BSP never executes SYSCALL */
#define LSTAR_BAD 0xffffffff8badc000ull

static struct tessel_ring *ring;
static uint64_t *statbuf;
static uint32_t bsp_id;

static uint64_t pin_denied(void)
{
	uint64_t full = 0;
	mem_set(statbuf, 0, 4096);
	int64_t st = tessel_stats(gpa_of(statbuf), 4096, &full);
	if (st || full < (TESSEL_STAT_PIN_DENIED + 1) * 8)
		return ~0ull;
	return statbuf[TESSEL_STAT_PIN_DENIED];
}

/* Checks and consumes the next event; "" if it is as expected. */
static char evwhy[160];
static const char *ev_next(uint64_t gpa, uint64_t rip, uint64_t gla, uint32_t vcpu)
{
	if (ev_pending(ring) < 1) {
		fmt_snprintf(evwhy, sizeof(evwhy), "no event");
		return evwhy;
	}
	struct tessel_event e = *ev_at(ring, 0);
	ring->tail++;
	if (e.kind != TESSEL_EV_PIN || e.gpa != gpa || e.rip != rip || e.gla != gla || e.vcpu != vcpu || e.bytes) {
		fmt_snprintf(evwhy, sizeof(evwhy),
			     "got kind %u gpa %llx rip %llx gla %llx vcpu %u bytes %u; want 5 %llx %llx %llx %u 0", e.kind,
			     (unsigned long long)e.gpa, (unsigned long long)e.rip, (unsigned long long)e.gla, e.vcpu,
			     e.bytes, (unsigned long long)gpa, (unsigned long long)rip, (unsigned long long)gla, vcpu);
		return evwhy;
	}
	evwhy[0] = 0;
	return evwhy;
}

/* The writing instructions, with their addresses. */
static uint64_t mov_cr0(uint64_t v)
{
	uint64_t rip;
	__asm__ __volatile__("lea 1f(%%rip), %0\n1: mov %1, %%cr0" : "=&r"(rip) : "r"(v) : "memory");
	return rip;
}
static uint64_t mov_cr4(uint64_t v)
{
	uint64_t rip;
	__asm__ __volatile__("lea 1f(%%rip), %0\n1: mov %1, %%cr4" : "=&r"(rip) : "r"(v) : "memory");
	return rip;
}
static uint64_t do_wrmsr(uint32_t msr, uint64_t v)
{
	uint64_t rip;
	__asm__ __volatile__("lea 1f(%%rip), %0\n1: wrmsr"
			     : "=&r"(rip)
			     : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32))
			     : "memory");
	return rip;
}

/* ---- the AP, running when the pin was made (MP services) ---- */
struct ap_result {
	uint32_t apic_id;
	uint64_t cr0_after, lstar_before, lstar_bad, lstar_same, rip_cr0, rip_lstar, tried_cr0;
};
static void ap_proc(void *arg)
{
	struct ap_result *r = arg;
	r->apic_id = cpu_apic_id();
	uint64_t cr0 = read_cr0() | CR0_WP;
	mov_cr0(cr0); /* set (arms it if it was clear) */
	r->tried_cr0 = cr0 & ~CR0_WP;
	r->rip_cr0 = mov_cr0(r->tried_cr0);
	r->cr0_after = read_cr0();
	r->lstar_before = rdmsr(MSR_LSTAR); /* its own: a pin does not change other vCPUs' values */
	r->rip_lstar = do_wrmsr(MSR_LSTAR, LSTAR_BAD);
	r->lstar_bad = rdmsr(MSR_LSTAR);
	do_wrmsr(MSR_LSTAR, LSTAR_PIN); /* the pinned value: allowed */
	r->lstar_same = rdmsr(MSR_LSTAR);
}

/* ---- the AP after INIT-SIPI: a real-mode trampoline (nasm source in the comments) ---- */
#define T_CR0 0x800   /* CR0 after setting WP and trying to clear it */
#define T_CR4 0x804   /* CR4 after setting the [T_SMEP] bit and trying to clear it */
#define T_LSTAR_BAD 0x808
#define T_LSTAR_SAME 0x810
#define T_EFER 0x818  /* EFER after setting NXE and trying to clear it */
#define T_DONE 0x81c
#define T_PIN 0x820   /* in: the pinned LSTAR */
#define T_SMEP 0x828  /* in: the CR4 bit to set and try to clear (0: none) */
#define RIP_CR0 0x16  /* offsets (real-mode RIP) of the writing instructions */
#define RIP_CR4 0x36
#define RIP_LSTAR 0x4f
#define RIP_EFER 0x86
static const uint8_t tramp[] = {
	0x8c, 0xc8,                         /* 00 mov ax, cs */
	0x8e, 0xd8,                         /* 02 mov ds, ax */
	0x0f, 0x20, 0xc0,                   /* 04 mov eax, cr0 */
	0x66, 0x0d, 0x00, 0x00, 0x01, 0x00, /* 07 or eax, 0x10000 (WP) */
	0x0f, 0x22, 0xc0,                   /* 0d mov cr0, eax */
	0x66, 0x25, 0xff, 0xff, 0xfe, 0xff, /* 10 and eax, ~WP */
	0x0f, 0x22, 0xc0,                   /* 16 mov cr0, eax (refused) */
	0x0f, 0x20, 0xc0,                   /* 19 mov eax, cr0 */
	0x66, 0xa3, 0x00, 0x08,             /* 1c mov [0x800], eax */
	0x0f, 0x20, 0xe0,                   /* 20 mov eax, cr4 */
	0x66, 0x0b, 0x06, 0x28, 0x08,       /* 23 or eax, [0x828] */
	0x0f, 0x22, 0xe0,                   /* 28 mov cr4, eax */
	0x66, 0x8b, 0x1e, 0x28, 0x08,       /* 2b mov ebx, [0x828] */
	0x66, 0xf7, 0xd3,                   /* 30 not ebx */
	0x66, 0x21, 0xd8,                   /* 33 and eax, ebx */
	0x0f, 0x22, 0xe0,                   /* 36 mov cr4, eax (refused) */
	0x0f, 0x20, 0xe0,                   /* 39 mov eax, cr4 */
	0x66, 0xa3, 0x04, 0x08,             /* 3c mov [0x804], eax */
	0x66, 0xb9, 0x82, 0x00, 0x00, 0xc0, /* 40 mov ecx, 0xc0000082 (LSTAR) */
	0x66, 0xb8, 0x00, 0x10, 0x00, 0x00, /* 46 mov eax, 0x1000 */
	0x66, 0x31, 0xd2,                   /* 4c xor edx, edx */
	0x0f, 0x30,                         /* 4f wrmsr (refused) */
	0x0f, 0x32,                         /* 51 rdmsr */
	0x66, 0xa3, 0x08, 0x08,             /* 53 mov [0x808], eax */
	0x66, 0x89, 0x16, 0x0c, 0x08,       /* 57 mov [0x80c], edx */
	0x66, 0xa1, 0x20, 0x08,             /* 5c mov eax, [0x820] */
	0x66, 0x8b, 0x16, 0x24, 0x08,       /* 60 mov edx, [0x824] */
	0x0f, 0x30,                         /* 65 wrmsr (the pinned value) */
	0x0f, 0x32,                         /* 67 rdmsr */
	0x66, 0xa3, 0x10, 0x08,             /* 69 mov [0x810], eax */
	0x66, 0x89, 0x16, 0x14, 0x08,       /* 6d mov [0x814], edx */
	0x66, 0xb9, 0x80, 0x00, 0x00, 0xc0, /* 72 mov ecx, 0xc0000080 (EFER) */
	0x66, 0xb8, 0x00, 0x08, 0x00, 0x00, /* 78 mov eax, 0x800 (NXE) */
	0x66, 0x31, 0xd2,                   /* 7e xor edx, edx */
	0x0f, 0x30,                         /* 81 wrmsr */
	0x66, 0x31, 0xc0,                   /* 83 xor eax, eax */
	0x0f, 0x30,                         /* 86 wrmsr (refused) */
	0x0f, 0x32,                         /* 88 rdmsr */
	0x66, 0xa3, 0x18, 0x08,             /* 8a mov [0x818], eax */
	0xf0, 0xff, 0x06, 0x1c, 0x08,       /* 8e lock inc word [0x81c] */
	0xfa,                               /* 93 cli */
	0xf4,                               /* 94 hlt */
	0xeb, 0xfd,                         /* 95 jmp 94 */
};

static void icr_send(uint32_t apic_id, uint32_t lo)
{
	uint64_t base = rdmsr(MSR_APIC_BASE);
	if (base & APIC_EXTD) {
		wrmsr(X2APIC_ICR, ((uint64_t)apic_id << 32) | lo);
		return;
	}
	volatile uint32_t *mmio = (volatile uint32_t *)(uintptr_t)(base & ~0xfffull & 0xffffffffffull);
	mmio[XAPIC_ICR_HI / 4] = apic_id << 24;
	mmio[XAPIC_ICR_LO / 4] = lo;
}

static uint32_t rd32(uint64_t a) { return *(volatile uint32_t *)(uintptr_t)a; }
static uint64_t rd64(uint64_t a) { return *(volatile uint64_t *)(uintptr_t)a; }

static void pin_tests(void)
{
	int has_smep = (tessel_cpuid(0, 0).eax >= 7) && ((tessel_cpuid(7, 0).ebx >> 7) & 1);
	int ap = ap_index();
	EFI_PHYSICAL_ADDRESS tp = 0x9ffff;
	EFI_STATUS tst = uefi_call_wrapper(BS->AllocatePages, 4, AllocateMaxAddress, EfiBootServicesData, 1, &tp);
	ring = spp_pages(1);
	statbuf = spp_pages(1);
	static struct ap_result apr;
	int64_t evs = ring ? ev_setup(ring, 1, 0) : -1;
	uint32_t version = 0, flags = 0;
	int64_t q = tessel_query(&version, &flags, 0);
	sok(q == 0 && version == 0x00010004u && (flags & TESSEL_F_PIN) && evs == 0 && statbuf && !EFI_ERROR(tst),
	    "ABI 1.3 with TESSEL_F_PIN (query %lld, version %x, flags %x), event ring (%lld), pages", (long long)q,
	    version, flags, (long long)evs);
	bsp_id = cpu_apic_id();
	tap_diag("BSP APIC ID %u, AP index %d, SMEP %s, trampoline at %llx", bsp_id, ap, has_smep ? "yes" : "no",
		 (unsigned long long)tp);

	/* -EINVAL, and nothing pinned or counted. */
	uint64_t d0 = pin_denied();
	struct tessel_hc_out o = { 0x11, 0x22, 0x33 };
	int64_t e1 = tessel_vmcall(HC_PIN_CR, 3, CR0_WP, 0, 0, &o);
	int bad_kept = o.rbx == 3 && o.rcx == CR0_WP && o.rdx == 0;
	int64_t e2 = tessel_pin_cr(0, 0, 0);
	int64_t e3 = tessel_pin_cr(0, CR0_TS, 0);
	int64_t e4 = tessel_vmcall(HC_PIN_CR, 0, CR0_WP, 1, 0, 0);
	int64_t e5 = tessel_pin_msr(0x175); /* SYSENTER_ESP: not pinnable */
	int64_t e6 = tessel_vmcall(HC_PIN_MSR, MSR_LSTAR, 1, 0, 0, 0);
	sok(e1 == -TESSEL_EINVAL && e2 == -TESSEL_EINVAL && e3 == -TESSEL_EINVAL && e4 == -TESSEL_EINVAL &&
		    e5 == -TESSEL_EINVAL && e6 == -TESSEL_EINVAL && bad_kept && pin_denied() == d0 && ev_pending(ring) == 0,
	    "bad HC_PIN_CR/HC_PIN_MSR arguments: -EINVAL, registers kept, nothing counted (%lld %lld %lld %lld %lld %lld)",
	    (long long)e1, (long long)e2, (long long)e3, (long long)e4, (long long)e5, (long long)e6);

	/* ---- pin ---- */
	if (!(read_cr0() & CR0_WP))
		mov_cr0(read_cr0() | CR0_WP);
	uint64_t mask = 0;
	int64_t p0 = tessel_pin_cr(0, CR0_WP, &mask);
	sok(p0 == 0 && mask == CR0_WP, "HC_PIN_CR CR0.WP: 0, pinned mask %llx (status %lld)", (unsigned long long)mask,
	    (long long)p0);
	if (has_smep) {
		if (!(read_cr4() & X86_CR4_SMEP))
			mov_cr4(read_cr4() | X86_CR4_SMEP);
		int64_t p4 = tessel_pin_cr(4, X86_CR4_SMEP, &mask);
		sok(p4 == 0 && mask == X86_CR4_SMEP, "HC_PIN_CR CR4.SMEP: 0, pinned mask %llx (status %lld)",
		    (unsigned long long)mask, (long long)p4);
	} else {
		sskip("the CPU model has no SMEP", "HC_PIN_CR CR4.SMEP");
	}
	wrmsr(MSR_LSTAR, LSTAR_PIN);
	int64_t pl = tessel_pin_msr(MSR_LSTAR);
	uint64_t efer = rdmsr(MSR_IA32_EFER);
	if (!(efer & EFER_NXE))
		wrmsr(MSR_IA32_EFER, efer | EFER_NXE);
	int64_t pe = tessel_pin_msr(MSR_IA32_EFER);
	sok(pl == 0 && pe == 0 && tessel_pin_msr(MSR_LSTAR) == 0,
	    "HC_PIN_MSR IA32_LSTAR (%lld), EFER.NXE (%lld), LSTAR again: 0", (long long)pl, (long long)pe);
	sok(ev_pending(ring) == 0 && pin_denied() == d0, "pinning itself posts and counts nothing");

	/* ---- the BSP tries to undo them ---- */
	uint64_t cr0 = read_cr0();
	uint64_t want = cr0 & ~CR0_WP;
	uint64_t rip = mov_cr0(want);
	uint64_t now = read_cr0();
	sok(now == cr0 && pin_denied() == d0 + 1, "MOV CR0 clearing WP: CR0 still %llx (read %llx), pin_denied +1",
	    (unsigned long long)cr0, (unsigned long long)now);
	sok(!ev_next(want, rip, 0, bsp_id)[0], "its event: kind 5, gpa = value written, gla 0, rip, vcpu %s", evwhy);
	want = (cr0 & ~CR0_WP) ^ CR0_AM;
	rip = mov_cr0(want);
	now = read_cr0();
	int am_ok = now == (cr0 ^ CR0_AM);
	mov_cr0(cr0);
	sok(am_ok && pin_denied() == d0 + 2 && !ev_next(want, rip, 0, bsp_id)[0],
	    "MOV CR0 clearing WP and toggling AM: AM changes, WP stays (read %llx), counted, event %s",
	    (unsigned long long)now, evwhy);
	uint64_t nd = d0 + 2;
	if (has_smep) {
		uint64_t cr4 = read_cr4();
		want = cr4 & ~X86_CR4_SMEP;
		rip = mov_cr4(want);
		now = read_cr4();
		nd++;
		sok(now == cr4 && pin_denied() == nd && !ev_next(want, rip, 4, bsp_id)[0],
		    "MOV CR4 clearing SMEP: CR4 still %llx (read %llx), counted, event gla 4 %s",
		    (unsigned long long)cr4, (unsigned long long)now, evwhy);
	} else {
		sskip("the CPU model has no SMEP", "MOV CR4 clearing SMEP");
	}
	/* LMSW (bits 3:0; it cannot clear PE) and CLTS do not touch pinned bits. */
	__asm__ __volatile__("lmsw %w0" : : "r"((uint16_t)((cr0 & 0xf) | CR0_TS)) : "memory");
	uint64_t after_lmsw = read_cr0();
	__asm__ __volatile__("clts" ::: "memory");
	uint64_t after_clts = read_cr0();
	sok((after_lmsw & CR0_WP) && (after_lmsw & CR0_TS) && (after_clts & CR0_WP) && !(after_clts & CR0_TS) &&
		    pin_denied() == nd && ev_pending(ring) == 0,
	    "LMSW and CLTS work and keep WP (%llx, %llx), nothing refused", (unsigned long long)after_lmsw,
	    (unsigned long long)after_clts);
	mov_cr0(cr0);
	rip = do_wrmsr(MSR_LSTAR, LSTAR_BAD);
	uint64_t l = rdmsr(MSR_LSTAR);
	nd++;
	sok(l == LSTAR_PIN && pin_denied() == nd && !ev_next(LSTAR_BAD, rip, 0x1c0000082ull, bsp_id)[0],
	    "WRMSR LSTAR of another value: ignored, no #GP (reads %llx), counted, event %s", (unsigned long long)l,
	    evwhy);
	do_wrmsr(MSR_LSTAR, LSTAR_PIN);
	sok(rdmsr(MSR_LSTAR) == LSTAR_PIN && pin_denied() == nd && ev_pending(ring) == 0,
	    "WRMSR LSTAR of the pinned value: allowed, not counted");
	efer = rdmsr(MSR_IA32_EFER);
	want = efer & ~EFER_NXE;
	rip = do_wrmsr(MSR_IA32_EFER, want);
	now = rdmsr(MSR_IA32_EFER);
	nd++;
	sok(now == efer && pin_denied() == nd && !ev_next(want, rip, 0x1c0000080ull, bsp_id)[0],
	    "WRMSR EFER clearing NXE: NXE stays (%llx), counted, event %s", (unsigned long long)now, evwhy);

	/* ---- the AP, running guest code when the pins were made ---- */
	if (ap < 0) {
		for (int i = 0; i < 3; i++)
			sskip("one processor", "AP under MP services");
	} else {
		mem_set(&apr, 0, sizeof(apr));
		EFI_STATUS s = mp_run_on((unsigned)ap, ap_proc, &apr, 5000000);
		nd++;
		sok(!EFI_ERROR(s) && (apr.cr0_after & CR0_WP), "AP (MP services): MOV CR0 clearing WP refused (CR0 %llx)",
		    (unsigned long long)apr.cr0_after);
			sok(apr.lstar_before != LSTAR_BAD && apr.lstar_bad == apr.lstar_before && apr.lstar_same == LSTAR_PIN,
		    "AP: WRMSR LSTAR of another value ignored (kept its %llx: %llx), of the pinned value allowed (%llx)",
		    (unsigned long long)apr.lstar_before, (unsigned long long)apr.lstar_bad,
		    (unsigned long long)apr.lstar_same);
		const char *w1 = ev_next(apr.tried_cr0, apr.rip_cr0, 0, apr.apic_id);
		int ok1 = !w1[0];
		char first[160];
		fmt_snprintf(first, sizeof(first), "%s", w1);
		nd++;
		sok(ok1 && !ev_next(LSTAR_BAD, apr.rip_lstar, 0x1c0000082ull, apr.apic_id)[0] && pin_denied() == nd &&
			    apr.apic_id != bsp_id,
		    "AP: two events with its APIC ID %u (%s; %s), pin_denied %llu", apr.apic_id, first, evwhy,
		    (unsigned long long)pin_denied());
	}

	/* ---- the AP after INIT-SIPI: INIT disarms, setting re-arms ---- */
	if (ap < 0 || EFI_ERROR(tst) || tp + 0x1000 > 0xa0000) {
		for (int i = 0; i < 6; i++)
			sskip("no AP or no page below 1 MiB", "AP after INIT-SIPI");
		return;
	}
	uint32_t id = mp_apic_id((unsigned)ap);
	mem_set((void *)(uintptr_t)tp, 0, 0x1000);
	mem_copy((void *)(uintptr_t)tp, tramp, sizeof(tramp));
	*(volatile uint64_t *)(uintptr_t)(tp + T_PIN) = LSTAR_PIN;
	*(volatile uint32_t *)(uintptr_t)(tp + T_SMEP) = has_smep ? (uint32_t)X86_CR4_SMEP : 0;
	__asm__ __volatile__("wbinvd" ::: "memory");
	icr_send(id, ICR_INIT_ASSERT);
	icr_send(id, ICR_SIPI | (uint32_t)(tp >> 12));
	for (unsigned i = 0; i < 3000 && !*(volatile uint16_t *)(uintptr_t)(tp + T_DONE); i++)
		uefi_call_wrapper(BS->Stall, 1, 1000);
	uint32_t c0 = rd32(tp + T_CR0), c4 = rd32(tp + T_CR4), ef = rd32(tp + T_EFER);
	uint64_t lb = rd64(tp + T_LSTAR_BAD), ls = rd64(tp + T_LSTAR_SAME);
	sok(*(volatile uint16_t *)(uintptr_t)(tp + T_DONE) == 1 && (c0 & CR0_WP),
	    "AP after INIT-SIPI (real mode): WP set, then MOV CR0 clearing it refused (CR0 %x)", c0);
	if (has_smep)
		sok(c4 & X86_CR4_SMEP, "AP: SMEP set, then MOV CR4 clearing it refused (CR4 %x)", c4);
	else
		sskip("the CPU model has no SMEP", "AP: CR4.SMEP");
	sok(lb == LSTAR_PIN && ls == LSTAR_PIN, "AP: LSTAR stays pinned across INIT (%llx, %llx)",
	    (unsigned long long)lb, (unsigned long long)ls);
	sok(ef & EFER_NXE, "AP: EFER.NXE set after INIT, then WRMSR clearing it refused (EFER %x)", ef);
	char why[4][160];
	fmt_snprintf(why[0], sizeof(why[0]), "%s", ev_next(c0 & ~CR0_WP, RIP_CR0, 0, id));
	if (has_smep)
		fmt_snprintf(why[1], sizeof(why[1]), "%s", ev_next(c4 & ~X86_CR4_SMEP, RIP_CR4, 4, id));
	else
		why[1][0] = 0;
	fmt_snprintf(why[2], sizeof(why[2]), "%s", ev_next(0x1000, RIP_LSTAR, 0x1c0000082ull, id));
	fmt_snprintf(why[3], sizeof(why[3]), "%s", ev_next(0, RIP_EFER, 0x1c0000080ull, id));
	sok(!why[0][0] && !why[1][0] && !why[2][0] && !why[3][0],
	    "AP: events for CR0 (%s), CR4 (%s), LSTAR (%s), EFER (%s) with rip = the real-mode IP", why[0], why[1],
	    why[2], why[3]);
	nd += has_smep ? 4 : 3;
	uint64_t pd = pin_denied();
	sok(pd == nd && ev_pending(ring) == 0, "pin_denied = %llu, one per refused write (want %llu), no other events",
	    (unsigned long long)pd, (unsigned long long)nd);
}

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *st)
{
	spp_start(image, st, POINTS);
	struct hostile_guard g;
	hostile_guard_setup(&g);
	suite_begin("pin", PIN_POINTS);
	pin_tests();
	suite_end();
	hostile_postcheck(&g, "CR and MSR pinning");
	guest_finish();
}
