/*
 * libFuzzer target: the VM-exit path (issue 9). Each input boots a fresh hypervisor over the
 * fake hardware layer (tests/fake), sets up a guest in the fake VMCS (real mode with
 * unrestricted guest, 32-bit protected, PAE, long mode; CPL 0 or 3; RFLAGS with TF/IF/VM;
 * interruptibility; CR0/CR4 with the shadows and masks hv/vmx.c sets), guest page tables in
 * guest RAM (valid, and hostile: into MMIO, the hypervisor's region, reserved memory,
 * self-referencing, random flag bits, A/D clear), instruction bytes at RIP (random, or biased
 * towards the stores hv/emulate.c covers), and then drives the real dispatcher
 * vmx_handle_exit() with random exit reasons, qualifications, guest-physical and linear
 * addresses and IDT-vectoring information, interleaved with hypercalls (HC_SPP_SET first, so
 * the SPP paths are reached in hardware and software mode). See tests/fuzz/README.md.
 *
 * Invariants, after every exit:
 * - no panic (cpu_halt() without a vcpu_stop: abort). A vcpu_stop ends the input; it is
 *   allowed and counted if the exit could not have happened on a real processor with the
 *   controls in force (an exit reason Tessel never enables, a qualification that does not
 *   match the EPT); a stop on an exit the guest can cause is a finding;
 * - nothing written outside guest RAM: the MMIO hole, the reserved range and the free part
 *   of the hypervisor's region are ASan-poisoned while the hypervisor runs;
 * - protected bytes (DENY pages) unchanged; the region's 0xFF page still 0xFF;
 * - no spin lock left held (spp.lock, the EPT lock);
 * - the VMCS is still enterable where the handler changed it: the event-injection rules of
 *   SDM 26.2.1.3, RIP width, RFLAGS, interruptibility and pending-debug consistency
 *   (SDM 26.3.1.4-5), each checked only if it held before the exit;
 * - a #PF the handler injects names a linear address that faults (independent guest walker);
 * - an EPT violation on a paging-structure access (A/D update) does not run the instruction;
 * - every event posted to the ring names a guest-RAM address.
 *
 * Known findings that other branches fix: FUZZ_EXIT_KNOWN=class,class,... counts them and
 * goes on instead of aborting (the classes are listed in known_classes[] and the README).
 */
#include <sanitizer/asan_interface.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hw.h>
#include <arch/cpu.h>
#include <arch/msr.h>
#include <arch/vmx.h>
#include <tessel/config.h>
#include "fuzz_common.h"
#include "hv/abi.h"
#include "hv/exit.h"
#include "hv/features.h"
#include "hv/percpu.h"
#include "hv/stats.h"
#include "hv/vapic.h"
#include "hv/vmcs.h"
#include "hv/vmx_caps.h"
#include "mm/memmap.h"
#include "mm/pmm.h"
#include "spp/spp.h"
#include "spp/step.h"

#define MAX_STEPS 24
#define APIC_GPA 0xfee00000ULL

/* ---- known findings ---- */

enum known { K_RM_ERRCODE, K_TASK_SWITCH, K_PF_CR2, K_AD_WALK, K_EV_GPA, K_RIP, K_SSE, K_CR, K_INJECT, K_STOP, K_STATE, K_COUNT };
static const char *const known_names[K_COUNT] = {
	"rm-errcode",  /* an exception injected with an error code in real mode (CR0.PE = 0) */
	"task-switch", /* a task-switch exit (unconditional, SDM 25.2) stops the vCPU */
	"pf-cr2",      /* a #PF injected for an address that translates (e.g. a read from MMIO) */
	"ad-walk",     /* an EPT violation on a guest paging-structure write runs the instruction */
	"ev-gpa",      /* an event in the ring names an address that is not guest RAM (e.g. 0) */
	"rip",         /* the handler left a RIP VM entry refuses (e.g. an emulated CALL's target) */
	"sse",         /* an SSE/AVX store completed although CR0.TS/EM or CR4.OSFXSR/OSXSAVE forbid it */
	"cr-write",    /* a CR0/CR4 write left a state VM entry refuses (e.g. CR4.PAE = 0 in long mode) */
	"inject",      /* other event-injection rule (SDM 26.2.1.3) */
	"stop",        /* other vcpu_stop on an exit a guest can cause */
	"state",       /* other guest-state check the handler broke (SDM 26.3.1) */
};
static bool known[K_COUNT];
static u64 known_hits[K_COUNT];

/* ---- run state ---- */

enum { MODE_HW, MODE_SW, MODE_OFF };
enum gmode { G_REAL, G_PROT, G_PROT_PG, G_PAE, G_LONG, G_COMPAT, G_V86, G_NMODES };
static const char *const gmode_names[G_NMODES] = { "real", "prot", "prot+pg", "pae", "long", "compat", "v86" };

static int mode;
static bool lazy, trace;
static enum gmode gm;
static u64 prng;
static jmp_buf exit_jmp, input_jmp; /* out of a stopped exit; out of the input */
static bool in_exit;
static u64 hot[12]; /* gfns the input protects, reads, writes */
static u64 n_inputs, n_exits, n_stops, n_stops_known, n_resets, n_hcalls;

/* What the current step did, for failure reports. */
struct logent { u32 reason; u64 qual, gpa, gla, rip, vect; u8 insn[16]; u64 hc[4]; s64 st; const char *what; };
static struct logent steplog[MAX_STEPS + 2];
static unsigned n_log;

static void print_step(unsigned i)
{
	struct logent *l = &steplog[i];
	if (l->what) {
		fprintf(stderr, "  %2u: %s rax=0x%llx rbx=0x%llx rcx=0x%llx rdx=0x%llx -> %lld\n", i, l->what,
			(unsigned long long)l->hc[0], (unsigned long long)l->hc[1], (unsigned long long)l->hc[2],
			(unsigned long long)l->hc[3], (long long)l->st);
		return;
	}
	fprintf(stderr, "  %2u: exit 0x%x qual 0x%llx gpa 0x%llx gla 0x%llx rip 0x%llx vect 0x%llx insn", i, l->reason,
		(unsigned long long)l->qual, (unsigned long long)l->gpa, (unsigned long long)l->gla,
		(unsigned long long)l->rip, (unsigned long long)l->vect);
	for (int k = 0; k < 8; k++)
		fprintf(stderr, " %02x", l->insn[k]);
	fprintf(stderr, "\n");
}

__attribute__((noreturn, format(printf, 1, 2))) void fail(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "\n==== fuzz_exit: invariant violated: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n  spp mode %s, guest %s, CPL %u; steps so far:\n",
		mode == MODE_OFF ? "off" : mode == MODE_SW ? "sw" : lazy ? "hw-lazy" : "hw-eager", gmode_names[gm],
		SEG_AR_DPL((u32)fake_vmcs_get(VMCS_GUEST_SS_AR)));
	for (unsigned i = 0; i < n_log; i++)
		print_step(i);
	const char *out = fake_io_output();
	if (*out)
		fprintf(stderr, "  hypervisor log of the last exit:\n%s", out);
	abort();
}

/* A finding of a known class is counted and skipped when FUZZ_EXIT_KNOWN names it. Returns
 * true if the caller should go on. */
static bool finding(enum known k, const char *fmt, ...)
{
	if (known[k]) {
		known_hits[k]++;
		return true;
	}
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fail("[%s] %s", known_names[k], msg);
}

static u64 rnd(void)
{
	prng = prng * 6364136223846793005ULL + 1442695040888963407ULL;
	return prng >> 17;
}

struct rd { const u8 *p; size_t n; };
static u8 rd8(struct rd *r)
{
	if (!r->n)
		return (u8)rnd();
	r->n--;
	return *r->p++;
}
static u64 rdn(struct rd *r, int k)
{
	u64 v = 0;
	for (int i = 0; i < k; i++)
		v |= (u64)rd8(r) << (8 * i);
	return v;
}

/* ---- the region: poisoned above what the page allocator has handed out ---- */

/*
 * The pmm's bitmap is the first page of the region (mm/pmm.c); managed page i is at
 * HV_BASE + 4 KiB * (1 + i). Everything above the highest allocated page plus a margin (the
 * allocator hands out lowest-first, and an exit may allocate a few SPPT tables) is poisoned
 * while the hypervisor handles an exit: no write on the guest's behalf may land there.
 */
#define REGION_MARGIN 16
static u64 region_poisoned_from = HV_END;

static u64 region_high_water(void)
{
	const u64 *bm = (const u64 *)gptr(HV_BASE);
	u64 total = pmm_total_count(), top = 0;
	for (u64 w = 0; w * 64 < total; w++) {
		/* bits past the last managed page are marked used: not allocations */
		u64 used = bm[w] & (total - w * 64 >= 64 ? ~0ULL : (1ULL << (total - w * 64)) - 1);
		if (used)
			top = w * 64 + 64 - (u64)__builtin_clzll(used);
	}
	return HV_BASE + PAGE_SIZE * (1 + MIN(top, total));
}

static void region_poison(bool on)
{
	u64 from = on ? MIN(region_high_water() + REGION_MARGIN * PAGE_SIZE, HV_END) : HV_END;
	if (from < region_poisoned_from)
		__asan_poison_memory_region(gptr(from), region_poisoned_from - from);
	else if (from > region_poisoned_from)
		__asan_unpoison_memory_region(gptr(region_poisoned_from), from - region_poisoned_from);
	region_poisoned_from = from;
}

/* ---- guest memory layout the harness builds ---- */

/* Page tables, the instruction page, map buffers: in the first RAM range, away from hot pages. */
#define PT_AREA (W_BASE + MiB(8))
#define PT_PAGES 48
#define SCRATCH (PT_AREA + PT_PAGES * PAGE_SIZE) /* HC_SPP_SET map buffer */
#define RING_GPA (SCRATCH + PAGE_SIZE)           /* the event ring: 2 pages */
static unsigned pt_used;
static u64 pt_root;

/* Linear addresses (below 4 GiB: the same in every paging mode) and what they map. */
#define LA_CODE 0x00401000ULL
#define LA_DATA 0x00800000ULL /* NDATA pages */
#define NDATA 8
#define LA_STACK 0x00c00000ULL
static u64 data_gpa[NDATA], code_gpa, stack_gpa;

static u64 pt_alloc(void)
{
	u64 a = PT_AREA + (u64)(pt_used++ % PT_PAGES) * PAGE_SIZE;
	memset(gptr(a), 0, PAGE_SIZE);
	return a;
}

/* Map la to gpa in the current mode's tables (entries get the flags; non-leaf ones are
 * P|RW|US plus the flags' US/NX choice). */
static void map_page(u64 la, u64 gpa, u64 flags)
{
	u64 nl = 7 | (flags & (1ULL << 63));
	if (gm == G_PROT_PG) {
		u32 *pd = (u32 *)gptr(pt_root);
		u32 *pde = &pd[(la >> 22) & 1023];
		if (!(*pde & 1))
			*pde = (u32)pt_alloc() | 7;
		u64 t = *pde & 0xfffff000U;
		if (!model_is_ram(t, PAGE_SIZE))
			return;
		((u32 *)gptr(t))[(la >> 12) & 1023] = (u32)((gpa & 0xfffff000U) | (flags & 0xfff));
		return;
	}
	int levels = gm == G_PAE ? 2 : 4;
	u64 t = pt_root;
	if (gm == G_PAE) {
		u64 pdpte = fake_vmcs_get(VMCS_GUEST_PDPTE0 + 2 * ((la >> 30) & 3));
		if (!(pdpte & 1))
			return;
		t = pdpte & 0xffffffffff000ULL;
	}
	for (int l = levels; l > 1; l--) {
		if (!model_is_ram(t, PAGE_SIZE))
			return;
		u64 *e = &((u64 *)gptr(t))[(la >> (12 + 9 * (l - 1))) & 511];
		if (!(*e & 1))
			*e = pt_alloc() | nl;
		t = *e & 0xffffffffff000ULL;
	}
	if (model_is_ram(t, PAGE_SIZE))
		((u64 *)gptr(t))[(la >> 12) & 511] = (gpa & 0xffffffffff000ULL) | flags;
}

/* ---- an independent guest page walker (SDM 4.3-4.5), for the #PF check ---- */

static bool rd_entry(u64 gpa, u64 *e, int size)
{
	if (!model_is_ram(gpa, (u64)size))
		return false; /* a table outside RAM: no verdict */
	*e = size == 8 ? *(u64 *)gptr(gpa) : *(u32 *)gptr(gpa);
	return true;
}

/* 1: translates (no #PF; *gpa set), 0: faults, -1: no verdict (tables outside RAM, modes
 * not modelled). */
static int walk_ok(u64 la, bool write, bool user, bool fetch, u64 *gpa)
{
	u64 cr0 = fake_vmcs_get(VMCS_GUEST_CR0), cr4 = fake_vmcs_get(VMCS_GUEST_CR4);
	u64 efer = fake_vmcs_get(VMCS_GUEST_IA32_EFER), cr3 = fake_vmcs_get(VMCS_GUEST_CR3);
	*gpa = (efer & EFER_LMA) ? la : (u32)la;
	if (!(cr0 & CR0_PG))
		return 1;
	bool rw = true, us = true, nx = false, ok = true;
	u64 size = PAGE_SIZE;
	u64 e = 0, mask = 0xffffffffff000ULL, rsvd_nx = (efer & EFER_NXE) ? 0 : (1ULL << 63);
	if (efer & EFER_LMA) {
		if (cr4 & CR4_LA57)
			return -1;
		u64 t = cr3 & mask;
		for (int l = 4; l >= 1; l--) {
			if (!rd_entry(t + ((la >> (12 + 9 * (l - 1))) & 511) * 8, &e, 8))
				return -1;
			if (!(e & 1))
				return 0;
			if ((e & rsvd_nx) || (e & BITS(51, PHYS_BITS)) || (l == 4 && (e & 0x80)))
				return 0;
			rw &= !!(e & 2);
			us &= !!(e & 4);
			nx |= !!(e >> 63);
			size = 1ULL << (12 + 9 * (l - 1));
			if (l > 1 && l <= 3 && (e & 0x80))
				break;
			t = e & mask;
		}
	} else if (cr4 & CR4_PAE) {
		u64 pdpte = fake_vmcs_get(VMCS_GUEST_PDPTE0 + 2 * ((la >> 30) & 3));
		if (!(pdpte & 1))
			return 0;
		u64 t = pdpte & mask;
		for (int l = 2; l >= 1; l--) {
			if (!rd_entry(t + ((la >> (12 + 9 * (l - 1))) & 511) * 8, &e, 8))
				return -1;
			if (!(e & 1))
				return 0;
			if ((e & rsvd_nx) || (e & BITS(51, PHYS_BITS)))
				return 0;
			rw &= !!(e & 2);
			us &= !!(e & 4);
			nx |= !!(e >> 63);
			size = 1ULL << (12 + 9 * (l - 1));
			if (l == 2 && (e & 0x80))
				break;
			t = e & mask;
		}
	} else {
		if (!rd_entry((cr3 & 0xfffff000U) + ((la >> 22) & 1023) * 4, &e, 4))
			return -1;
		if (!(e & 1))
			return 0;
		rw = e & 2;
		us = e & 4;
		size = 1ULL << 22;
		if ((e & 0x80) && (cr4 & CR4_PSE)) {
			e = (e & 0xffc00000U) | (((e >> 13) & 0xff) << 32);
		} else {
			size = PAGE_SIZE;
			if (!rd_entry((e & 0xfffff000U) + ((la >> 12) & 1023) * 4, &e, 4))
				return -1;
			if (!(e & 1))
				return 0;
			rw &= !!(e & 2);
			us &= !!(e & 4);
		}
	}
	if (user && !us)
		ok = false;
	if (write && !rw && (user || (cr0 & CR0_WP)))
		ok = false;
	if (fetch && nx && (efer & EFER_NXE))
		ok = false;
	*gpa = (e & mask & ~(size - 1)) | (la & (size - 1));
	/* Supervisor-mode protections the walker does not model (SMEP/SMAP/PKE): no verdict. */
	if (ok && !user && (cr4 & ((1ULL << 20) | (1ULL << 21) | (1ULL << 22))))
		return -1;
	return ok ? 1 : 0;
}

/* ---- reinitialisation ---- */

static void halt_hook(void)
{
	if (!in_exit) {
		fprintf(stderr, "fuzz_exit: cpu_halt() outside an exit\n");
		abort();
	}
	longjmp(exit_jmp, 1);
}

/* Spin-waits in root mode: a vCPU after INIT waits for its SIPI, which another vCPU sends
 * (here: after a few spins, with the input's vector). Any other long spin is a hang. */
static u64 spins;
static u8 sipi_vector;
static void relax_hook(void)
{
	spins++;
	if (cpu.wait_sipi && cpu.vsipi_vector < 0 && spins > 3) {
		cpu.vsipi_vector = sipi_vector;
		return;
	}
	if (spins > 1000000)
		fail("hang: the exit handler spins in root mode");
}

static void set_caps(bool has_spp)
{
	memset(&vmx_caps, 0, sizeof(vmx_caps));
	vmx_caps.phys_bits = PHYS_BITS;
	vmx_caps.true_ctls = true;
	/* What an Ice Lake part reports (low dword: must be 1, high dword: may be 1). */
	vmx_caps.pin = 0x000000ff00000016ULL;
	vmx_caps.proc = 0xfff9fffe04006172ULL;
	vmx_caps.proc2 = (0x0053ffffULL | (has_spp ? PROC2_SUBPAGE_WRITE_PERM : 0)) << 32;
	vmx_caps.exit = 0x01ffffff00036dfbULL;
	vmx_caps.entry = 0x0003ffff000011fbULL;
	vmx_caps.ept_vpid = 0xf0106734141ULL;
	vmx_caps.cr0_fixed0 = CR0_PE | CR0_NE | CR0_PG;
	vmx_caps.cr0_fixed1 = 0xffffffffULL;
	vmx_caps.cr4_fixed0 = 1ULL << 13; /* VMXE */
	vmx_caps.cr4_fixed1 = 0x3767ffULL;
	vmx_caps.misc = 0x7004c1e7ULL;
}

static void reinit(u8 cfgbyte)
{
	static const int modes[8] = { MODE_HW, MODE_HW, MODE_HW, MODE_SW, MODE_SW, MODE_SW, MODE_SW, MODE_OFF };
	struct tessel_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	mode = modes[cfgbyte & 7];
	lazy = mode == MODE_HW && (cfgbyte & 8);
	cfg.spp = mode == MODE_HW ? CFG_SPP_HW : mode == MODE_SW ? CFG_SPP_SW : CFG_SPP_OFF;
	cfg.sppt = lazy ? CFG_SPPT_LAZY : CFG_SPPT_EAGER;
	set_caps(mode == MODE_HW);

	memset(&cpu, 0, sizeof(cpu));
	memset(&cpu1, 0, sizeof(cpu1));
	cpu.self = &cpu;
	cpu.regs = &regs;
	cpu.launched = true;
	cpu.vsipi_vector = -1;
	cpu1.self = &cpu1;
	cpu1.index = 1;
	cpu1.apic_id = 2;
	cpu1.launched = true;
	cpu1.wait_sipi = true; /* runs no guest code: stop_world and the shootdown skip it */
	cpu1.vsipi_vector = -1;
	percpu_array[0] = &cpu;
	percpu_array[1] = &cpu1;
	percpu_count = 2;
	fake_cpu_local_set(&cpu);
	memset(stat_counters, 0, sizeof(u64) * STAT_COUNT * TESSEL_MAX_CPUS);

	memset(&spp, 0, sizeof(spp));
	restore_baseline();
	/* In hv/main.c's order. */
	int r = vapic_init(&ept, APIC_GPA);
	if (r)
		fail("init: vapic_init: %d", r);
	r = spp_step_init();
	if (r)
		fail("init: spp_step_init: %d", r);
	r = spp_init(&cfg, &ept, PHYS_BITS);
	if (r)
		fail("init: spp_init: %d", r);
	n_log = 0;
}

/* The controls hv/vmx.c sets (setup_controls), over the capabilities above. */
static void set_controls(bool lma)
{
	u32 pin, proc, proc2, exitc, entry;
	vmx_adjust_ctls(vmx_caps.pin, PIN_NMI_EXITING | PIN_VIRTUAL_NMIS, &pin);
	vmx_adjust_ctls(vmx_caps.proc, PROC_USE_MSR_BITMAPS | PROC_ACTIVATE_SECONDARY, &proc);
	vmx_adjust_ctls(vmx_caps.proc2, PROC2_ENABLE_EPT | PROC2_UNRESTRICTED_GUEST | PROC2_ENABLE_RDTSCP |
				       PROC2_ENABLE_INVPCID | PROC2_ENABLE_XSAVES | PROC2_ENABLE_VPID | spp_proc2_bits(),
			&proc2);
	vmx_adjust_ctls(vmx_caps.exit, EXIT_HOST_ADDR_SPACE_SIZE, &exitc);
	vmx_adjust_ctls(vmx_caps.entry, ENTRY_LOAD_DEBUG_CTLS | ENTRY_LOAD_IA32_PAT | ENTRY_LOAD_IA32_EFER |
				       (lma ? ENTRY_IA32E_MODE_GUEST : 0), &entry);
	fake_vmcs_set(VMCS_CTRL_PIN_BASED, pin);
	fake_vmcs_set(VMCS_CTRL_PROC_BASED, proc);
	fake_vmcs_set(VMCS_CTRL_PROC_BASED2, proc2);
	fake_vmcs_set(VMCS_CTRL_EXIT, exitc);
	fake_vmcs_set(VMCS_CTRL_ENTRY, entry);
	fake_vmcs_set(VMCS_CTRL_EXCEPTION_BITMAP, 0);
	fake_vmcs_set(VMCS_CTRL_ENTRY_INTR_INFO, 0);
	fake_vmcs_set(VMCS_CTRL_VPID, 1);
	cpu.cr0_guest_mask = ((vmx_caps.cr0_fixed0 & ~(CR0_PE | CR0_PG)) | ~vmx_caps.cr0_fixed1) & 0xffffffffULL;
	cpu.cr4_guest_mask = (vmx_caps.cr4_fixed0 | ~vmx_caps.cr4_fixed1) & 0xffffffffULL;
	fake_vmcs_set(VMCS_CTRL_CR0_MASK, cpu.cr0_guest_mask);
	fake_vmcs_set(VMCS_CTRL_CR4_MASK, cpu.cr4_guest_mask);
}

/* ---- guest-physical targets ---- */

static u64 pick_ram_gfn(struct rd *r)
{
	const struct mrange *m = &ram[rd8(r) % NRAM];
	return (m->start >> 12) + rdn(r, 2) % ((m->end - m->start) >> 12);
}

/* A guest-physical page address: hot pages (those the input protects) most of the time. */
static u64 gen_gpa_page(struct rd *r)
{
	u8 s = rd8(r);
	switch (s % 16) {
	case 0: case 1: case 2: case 3: case 4: case 5: case 6: return hot[rd8(r) % ARRAY_SIZE(hot)] << 12;
	case 7: return HV_BASE + ((rdn(r, 2) << 12) % HV_SIZE);
	case 8: return MMIO_BASE + ((rdn(r, 2) << 12) % (MMIO_END - MMIO_BASE));
	case 9: return RSVD_BASE + ((rdn(r, 2) << 12) % (RSVD_END - RSVD_BASE));
	case 10: return PT_AREA + (rd8(r) % PT_PAGES) * PAGE_SIZE; /* the page tables themselves */
	case 11: return 0;
	case 12: return APIC_GPA;
	case 13: return (rd8(r) & 1) ? (1ULL << PHYS_BITS) + (rdn(r, 2) << 12) : (rdn(r, 5) << 12) & BITS(51, 12);
	default: return pick_ram_gfn(r) << 12;
	}
}

/* ---- the guest state ---- */

static void set_seg(u32 sel_f, u32 base_f, u32 limit_f, u32 ar_f, u16 sel, u64 base, u32 limit, u32 ar)
{
	fake_vmcs_set(sel_f, sel);
	fake_vmcs_set(base_f, base);
	fake_vmcs_set(limit_f, limit);
	fake_vmcs_set(ar_f, ar);
}
#define SEG(n, sel, base, limit, ar) \
	set_seg(VMCS_GUEST_##n##_SEL, VMCS_GUEST_##n##_BASE, VMCS_GUEST_##n##_LIMIT, VMCS_GUEST_##n##_AR, sel, base, limit, ar)

static void setup_guest(struct rd *r)
{
	u8 s = rd8(r), f = rd8(r);
	gm = (enum gmode)(s % G_NMODES);
	bool v86 = gm == G_V86;
	unsigned cpl = gm == G_REAL ? 0 : v86 ? 3 : (s & 0x80) ? 3 : 0;
	bool lma = gm == G_LONG || gm == G_COMPAT;
	u64 cr0 = CR0_ET | ((f & 1) ? CR0_WP : 0) | ((f & 2) ? CR0_MP : 0) | ((f & 4) ? CR0_TS : 0) |
		  ((f & 7) == 3 ? CR0_EM : 0);
	u64 cr4 = ((f & 8) ? CR4_PSE : 0) | ((f & 16) ? (1ULL << 9) /* OSFXSR */ : 0) | ((f & 32) ? (1ULL << 18) : 0);
	u64 efer = (f & 64) ? EFER_NXE : 0;
	if (gm != G_REAL)
		cr0 |= CR0_PE;
	if (gm == G_PROT_PG || gm == G_PAE || lma || (v86 && (f & 128)))
		cr0 |= CR0_PG;
	if (gm == G_PAE || lma)
		cr4 |= CR4_PAE;
	if (lma)
		efer |= EFER_LME | EFER_LMA;
	if (v86 && (cr0 & CR0_PG))
		gm = G_PROT_PG; /* virtual-8086 mode under 32-bit paging: 32-bit tables */
	set_controls(lma);
	fake_vmcs_set(VMCS_CTRL_CR0_READ_SHADOW, cr0);
	fake_vmcs_set(VMCS_CTRL_CR4_READ_SHADOW, cr4);
	fake_vmcs_set(VMCS_GUEST_CR0, (cr0 | (vmx_caps.cr0_fixed0 & ~(CR0_PE | CR0_PG))) & vmx_caps.cr0_fixed1);
	fake_vmcs_set(VMCS_GUEST_CR4, cr4 | vmx_caps.cr4_fixed0);
	fake_vmcs_set(VMCS_GUEST_IA32_EFER, efer);
	fake_vmcs_set(VMCS_GUEST_IA32_DEBUGCTL, 0);
	fake_vmcs_set(VMCS_GUEST_ACTIVITY_STATE, 0);
	fake_vmcs_set(VMCS_GUEST_VMCS_LINK_PTR, ~0ULL);
	u32 dpl = cpl << 5;
	if (gm == G_REAL || v86) {
		/* Real mode (unrestricted guest) and virtual-8086 mode: 64 KiB segments. */
		u32 ar = v86 ? 0xf3 : 0x93;
		SEG(CS, 0, 0, 0xffff, v86 ? 0xf3 : 0x9b);
		SEG(SS, 0, 0, 0xffff, ar);
		SEG(DS, 0, 0, 0xffff, ar);
		SEG(ES, 0, 0, 0xffff, ar);
		SEG(FS, 0, 0, 0xffff, ar);
		SEG(GS, 0, 0, 0xffff, ar);
	} else {
		u32 code = gm == G_LONG ? 0xa09b : 0xc09b;
		SEG(CS, 0x10 | cpl, 0, 0xffffffff, code | dpl);
		SEG(SS, 0x18 | cpl, 0, 0xffffffff, 0xc093 | dpl);
		SEG(DS, 0x18 | cpl, 0, 0xffffffff, 0xc093 | dpl);
		SEG(ES, 0x18 | cpl, 0, 0xffffffff, 0xc093 | dpl);
		SEG(FS, 0, (rd8(r) & 7) == 0 ? LA_DATA : 0, 0xffffffff, 0xc093 | dpl);
		SEG(GS, 0, 0, 0xffffffff, 0xc093 | dpl);
	}
	SEG(TR, 0x28, 0, 0x67, 0x8b);
	SEG(LDTR, 0, 0, 0, SEG_AR_UNUSABLE);
	u64 rflags = RFLAGS_FIXED | (rdn(r, 2) & (RFLAGS_CF | RFLAGS_PF | RFLAGS_AF | RFLAGS_ZF | RFLAGS_SF | RFLAGS_TF |
						   RFLAGS_IF | RFLAGS_DF | RFLAGS_OF));
	if (v86)
		rflags |= RFLAGS_VM;
	fake_vmcs_set(VMCS_GUEST_RFLAGS, rflags);
	u32 intr = rd8(r);
	intr = (intr & 0xf0) ? 0 : (intr & (GUEST_INTR_BLOCK_STI | GUEST_INTR_BLOCK_MOV_SS | GUEST_INTR_BLOCK_NMI));
	if ((intr & GUEST_INTR_BLOCK_STI) && ((intr & GUEST_INTR_BLOCK_MOV_SS) || !(rflags & RFLAGS_IF)))
		intr &= ~GUEST_INTR_BLOCK_STI;
	fake_vmcs_set(VMCS_GUEST_INTERRUPTIBILITY, intr);
	/* SDM 26.3.1.5: BS pending exactly when TF and STI/MOV-SS blocking. */
	fake_vmcs_set(VMCS_GUEST_PENDING_DBG_EXC,
		      ((rflags & RFLAGS_TF) && (intr & (GUEST_INTR_BLOCK_STI | GUEST_INTR_BLOCK_MOV_SS))) ? (1ULL << 14) : 0);

	/* Page tables. */
	pt_used = 0;
	code_gpa = (rd8(r) & 3) ? pick_ram_gfn(r) << 12 : hot[rd8(r) % ARRAY_SIZE(hot)] << 12;
	if (code_gpa >= PT_AREA && code_gpa < RING_GPA + 2 * PAGE_SIZE)
		code_gpa = W_BASE;
	stack_gpa = gen_gpa_page(r);
	for (int i = 0; i < NDATA; i++)
		data_gpa[i] = gen_gpa_page(r);
	/* Always one hot page and one MMIO page among them (MOVS from MMIO, RMW on MMIO). */
	data_gpa[0] = hot[rd8(r) % ARRAY_SIZE(hot)] << 12;
	data_gpa[NDATA - 1] = MMIO_BASE + PAGE_SIZE * (rd8(r) % 4);
	if (cr0 & CR0_PG) {
		pt_root = pt_alloc();
		u64 cr3 = pt_root;
		if (gm == G_PAE) {
			/* PDPTEs: in the VMCS (loaded at MOV CR3) and in memory. */
			u64 *pdpt = (u64 *)gptr(pt_root);
			for (int i = 0; i < 4; i++) {
				pdpt[i] = pt_alloc() | 1;
				fake_vmcs_set(VMCS_GUEST_PDPTE0 + 2 * i, pdpt[i]);
			}
		}
		fake_vmcs_set(VMCS_GUEST_CR3, cr3 | (rd8(r) & 0x18));
		u64 us = cpl == 3 ? 4 : (rd8(r) & 4);
		u8 fl = rd8(r);
		map_page(LA_CODE, code_gpa, 1 | us | ((fl & 1) ? 0 : 2));
		map_page(LA_CODE + PAGE_SIZE, gen_gpa_page(r), 1 | us | 2);
		map_page(LA_STACK, stack_gpa, 1 | us | 2);
		/* Linear page 0 is mapped (to plain RAM): a #PF naming address 0 is then wrong. */
		map_page(0, W_BASE + MiB(1), 7);
		for (int i = 0; i < NDATA; i++) {
			u8 e = rd8(r);
			/* mostly present and writable; A/D clear unless chosen; sometimes NX, 2 MiB
			 * (PS in a PTE is PAT: harmless) */
			u64 flags = ((e & 7) ? 1 : 0) | ((e & 0x18) ? 2 : 0) | us | ((e & 0x20) ? 0x60 : 0) |
				    ((e & 0x40) && gm != G_PROT_PG ? (1ULL << 63) : 0);
			map_page(LA_DATA + i * PAGE_SIZE, data_gpa[i], flags);
		}
		/* Hostile corruption: entries of the tables pointing at MMIO, the region, reserved
		 * memory, themselves, or random bits. */
		unsigned nc = rd8(r) % 8;
		nc = nc < 5 ? 0 : nc - 4;
		for (unsigned i = 0; i < nc && pt_used; i++) {
			u64 t = PT_AREA + (rd8(r) % pt_used) * PAGE_SIZE;
			unsigned idx = rdn(r, 2) % (gm == G_PROT_PG ? 1024 : 512);
			u64 tgt;
			switch (rd8(r) % 5) {
			case 0: tgt = t; break; /* self-referencing */
			case 1: tgt = gen_gpa_page(r); break;
			case 2: tgt = HV_BASE + ((rdn(r, 2) << 12) % HV_SIZE); break;
			case 3: tgt = MMIO_BASE; break;
			default: tgt = rdn(r, 8); break;
			}
			u64 v = (tgt & ~0xfffULL) | (rd8(r) & 0x87) | 1;
			if (gm == G_PROT_PG)
				((u32 *)gptr(t))[idx] = (u32)v;
			else
				((u64 *)gptr(t))[idx] = v;
		}
	} else {
		fake_vmcs_set(VMCS_GUEST_CR3, 0);
	}
}

/* Instruction bytes at RIP, and the registers. */
static const u8 store_ops[][4] = {
	{ 1, 0x89 }, { 1, 0x88 }, { 1, 0xc7 }, { 1, 0xc6 }, { 1, 0xa3 }, { 1, 0x01 }, { 1, 0x31 }, { 1, 0x83 },
	{ 1, 0x81 }, { 1, 0xff }, { 1, 0xfe }, { 1, 0xf7 }, { 1, 0x87 }, { 1, 0x86 }, { 2, 0x0f, 0xb1 },
	{ 2, 0x0f, 0xc1 }, { 2, 0x0f, 0xc7 }, { 2, 0x0f, 0xab }, { 2, 0x0f, 0xba }, { 2, 0x0f, 0x95 },
	{ 2, 0x0f, 0xc3 }, { 1, 0x50 }, { 1, 0x6a }, { 1, 0x68 }, { 1, 0xe8 }, { 1, 0xab }, { 1, 0xaa },
	{ 1, 0xa5 }, { 1, 0xa4 }, { 2, 0x0f, 0x11 }, { 2, 0x0f, 0x29 }, { 2, 0x0f, 0x7f }, { 2, 0x0f, 0x2b },
	{ 2, 0x0f, 0xe7 }, { 2, 0x0f, 0xd6 }, { 2, 0x0f, 0x13 }, { 2, 0x0f, 0xae }, { 1, 0x9c }, { 1, 0xc8 },
	{ 3, 0xc5, 0xf8, 0x11 }, { 3, 0xc5, 0xfc, 0x29 }, { 3, 0xc5, 0xf9, 0x7f }, { 2, 0x0f, 0x90 }, { 1, 0x8c },
	{ 2, 0x0f, 0x01 }, { 1, 0xd1 },
};
static const u8 prefixes[] = { 0x66, 0x67, 0xf3, 0xf2, 0xf0, 0x2e, 0x36, 0x3e, 0x26, 0x64, 0x65, 0x48, 0x41, 0x4c, 0x66, 0xf3 };

static void gen_insn(struct rd *r, u8 *b)
{
	u8 s = rd8(r);
	for (int i = 0; i < 16; i++)
		b[i] = rd8(r);
	if ((s & 3) == 0)
		return; /* random bytes */
	int n = 0;
	for (int p = (s >> 2) & 3; p > 0; p--)
		if (rd8(r) & 1)
			b[n++] = prefixes[rd8(r) % sizeof(prefixes)];
	const u8 *op = store_ops[rd8(r) % ARRAY_SIZE(store_ops)];
	for (int i = 0; i < op[0]; i++)
		b[n++] = op[1 + i];
	/* ModRM: mostly a memory operand through a register (no SIB/disp32 absolute). */
	u8 m = b[n];
	if (s & 0x10)
		m = (u8)((m & 0x3f) | ((s & 0x20) ? 0x40 : 0x00));
	if ((s & 0x10) && ((m & 7) == 4 || (m & 7) == 5))
		m = (u8)((m & ~7) | 6); /* no SIB, no disp32/RIP-relative: through rSI */
	b[n] = m;
}

/* Interesting register values: pointers into the data/stack pages, small counts, junk. */
static u64 gen_reg(struct rd *r)
{
	u8 s = rd8(r);
	switch (s % 8) {
	case 0: case 1: case 2: return LA_DATA + (rd8(r) % NDATA) * PAGE_SIZE + (rdn(r, 2) & 0xfff);
	case 3: return LA_DATA + (rd8(r) % NDATA) * PAGE_SIZE + PAGE_SIZE - (rd8(r) & 15);
	case 4: return rd8(r) % 9;
	case 5: return rdn(r, 8);
	case 6: return 0;
	default: return LA_DATA + (rd8(r) % NDATA) * PAGE_SIZE + (rd8(r) & 0x7f) * 32;
	}
}

/* ---- protected bytes ---- */

struct psnap { u64 gfn; u32 map; u8 data[PAGE_SIZE]; };
static struct psnap psnaps[ARRAY_SIZE(hot) + 2];
static unsigned n_psnaps;

static void psnap_add(u64 gfn)
{
	if (mode == MODE_OFF || !model_pages_ram(gfn, 1) || n_psnaps == ARRAY_SIZE(psnaps))
		return;
	for (unsigned i = 0; i < n_psnaps; i++)
		if (psnaps[i].gfn == gfn)
			return;
	u32 map, flags;
	spp_store_get(&spp.store, gfn, &map, &flags);
	if (map == SPP_MAP_ALL || (flags & SPP_PAGE_TRACK))
		return;
	struct psnap *p = &psnaps[n_psnaps++];
	p->gfn = gfn;
	p->map = map;
	memcpy(p->data, gptr(gfn << 12), PAGE_SIZE);
}

static void psnap_take(u64 gpa)
{
	n_psnaps = 0;
	for (unsigned i = 0; i < ARRAY_SIZE(hot); i++)
		psnap_add(hot[i]);
	psnap_add(gpa >> 12);
}

static void psnap_check(void)
{
	for (unsigned i = 0; i < n_psnaps; i++) {
		const struct psnap *p = &psnaps[i];
		const u8 *now = gptr(p->gfn << 12);
		for (unsigned b = 0; b < PAGE_SIZE; b++)
			if (!((p->map >> (b / 128)) & 1) && now[b] != p->data[b])
				fail("protected byte at gpa 0x%llx changed: 0x%02x -> 0x%02x (map 0x%08x)",
				     (unsigned long long)((p->gfn << 12) + b), p->data[b], now[b], p->map);
	}
}

/* ---- VM-entry checks on what the handler left (SDM 26.2.1.3, 26.3.1.4-5) ---- */

enum { C_RIP = 1, C_RFLAGS = 2, C_INTR = 4, C_PDBG = 8, C_CR = 16 };

static bool long_mode_guest(void)
{
	return (fake_vmcs_get(VMCS_CTRL_ENTRY) & ENTRY_IA32E_MODE_GUEST) && (fake_vmcs_get(VMCS_GUEST_CS_AR) & SEG_AR_L);
}

/* The guest-state checks that hold, as a bit set (a handler may only break none of them). */
static unsigned state_checks(void)
{
	unsigned ok = 0;
	u64 rip = fake_vmcs_get(VMCS_GUEST_RIP), rf = fake_vmcs_get(VMCS_GUEST_RFLAGS);
	u64 cr0 = fake_vmcs_get(VMCS_GUEST_CR0), cr4 = fake_vmcs_get(VMCS_GUEST_CR4);
	u64 efer = fake_vmcs_get(VMCS_GUEST_IA32_EFER);
	bool ia32e = fake_vmcs_get(VMCS_CTRL_ENTRY) & ENTRY_IA32E_MODE_GUEST;
	u32 intr = (u32)fake_vmcs_get(VMCS_GUEST_INTERRUPTIBILITY);
	u64 pdbg = fake_vmcs_get(VMCS_GUEST_PENDING_DBG_EXC);
	if (long_mode_guest() ? ((s64)(rip << 16) >> 16) == (s64)rip : !(rip >> 32))
		ok |= C_RIP;
	if ((rf & 2) && !(rf & (BITS(63, 22) | (1ULL << 15) | (1ULL << 5) | (1ULL << 3))) &&
	    !((rf & RFLAGS_VM) && (ia32e || !(cr0 & CR0_PE))))
		ok |= C_RFLAGS;
	if (!(intr & ~0x1fU) && (intr & 3) != 3 && !((intr & GUEST_INTR_BLOCK_STI) && !(rf & RFLAGS_IF)))
		ok |= C_INTR;
	bool bs = pdbg & (1ULL << 14), tf = rf & RFLAGS_TF;
	if (!(intr & 3) || bs == tf)
		ok |= C_PDBG;
	if (!((cr0 & CR0_PG) && !(cr0 & CR0_PE)) && (cr0 & CR0_NE) && (cr4 & (1ULL << 13)) &&
	    (!ia32e || ((cr0 & CR0_PG) && (cr4 & CR4_PAE))) && (!!(efer & EFER_LMA) == ia32e) &&
	    (!(cr0 & CR0_PG) || !!(efer & EFER_LME) == !!(efer & EFER_LMA)))
		ok |= C_CR;
	return ok;
}

static const char *const check_names[] = { "RIP width", "RFLAGS", "interruptibility", "pending debug (BS)", "CR0/CR4/EFER" };

static bool has_error_code(unsigned vec)
{
	return vec == 8 || (vec >= 10 && vec <= 14) || vec == 17 || vec == 21;
}

static void check_injection(void)
{
	u32 info = (u32)fake_vmcs_get(VMCS_CTRL_ENTRY_INTR_INFO);
	if (!(info & INTR_INFO_VALID))
		return;
	unsigned type = (info >> 8) & 7, vec = info & 0xff;
	bool code = info & INTR_INFO_DELIVER_CODE;
	u64 cr0 = fake_vmcs_get(VMCS_GUEST_CR0), rf = fake_vmcs_get(VMCS_GUEST_RFLAGS);
	u32 intr = (u32)fake_vmcs_get(VMCS_GUEST_INTERRUPTIBILITY);
	bool ug = fake_vmcs_get(VMCS_CTRL_PROC_BASED2) & PROC2_UNRESTRICTED_GUEST;
	if (info & 0x7ffff000U)
		finding(K_INJECT, "injection 0x%08x: reserved bits 30:12 set", info);
	if (type == 1 || (type == 7 && vec != 0))
		finding(K_INJECT, "injection 0x%08x: reserved type %u / vector %u", info, type, vec);
	if (type == INTR_TYPE_NMI >> 8 && vec != 2)
		finding(K_INJECT, "injection 0x%08x: NMI with vector %u", info, vec);
	if (type == INTR_TYPE_HW_EXCEPTION >> 8 && vec > 31)
		finding(K_INJECT, "injection 0x%08x: hardware exception vector %u", info, vec);
	if (code && ug && !(cr0 & CR0_PE))
		finding(K_RM_ERRCODE, "injection 0x%08x: deliver-error-code with CR0.PE = 0 (SDM 26.2.1.3)", info);
	else if (code && (type != INTR_TYPE_HW_EXCEPTION >> 8 || !has_error_code(vec)))
		finding(K_INJECT, "injection 0x%08x: deliver-error-code for type %u vector %u", info, type, vec);
	else if (code && (fake_vmcs_get(VMCS_CTRL_ENTRY_EXC_ERROR_CODE) >> 16))
		finding(K_INJECT, "injection 0x%08x: error code 0x%llx has bits 31:16 set", info,
			(unsigned long long)fake_vmcs_get(VMCS_CTRL_ENTRY_EXC_ERROR_CODE));
	else if (!code && type == INTR_TYPE_HW_EXCEPTION >> 8 && has_error_code(vec) && (cr0 & CR0_PE) &&
		 !(rf & RFLAGS_VM) && vec != 8)
		finding(K_INJECT, "injection 0x%08x: exception %u without its error code in protected mode", info, vec);
	if (type >= 4 && type <= 6) {
		u64 len = fake_vmcs_get(VMCS_CTRL_ENTRY_INSN_LEN);
		if (len < 1 || len > 15)
			finding(K_INJECT, "injection 0x%08x: software event with instruction length %llu", info,
				(unsigned long long)len);
	}
	if (type == 0 && (!(rf & RFLAGS_IF) || (intr & 3)))
		finding(K_INJECT, "injection 0x%08x: external interrupt with IF = 0 or STI/MOV-SS blocking", info);
	if (type == INTR_TYPE_NMI >> 8 && ((intr & GUEST_INTR_BLOCK_MOV_SS) || (intr & GUEST_INTR_BLOCK_NMI)))
		finding(K_INJECT, "injection 0x%08x: NMI with MOV-SS or (virtual-)NMI blocking", info);
}

/* ---- can a real processor produce this exit with the controls in force? ---- */

struct pre { u32 pin, proc, proc2, bitmap; u64 rip; };

static bool reason_possible(u32 basic, const struct pre *p)
{
	switch (basic) {
	case EXIT_REASON_EXCEPTION_NMI: case EXIT_REASON_TRIPLE_FAULT: case EXIT_REASON_INIT:
	case EXIT_REASON_TASK_SWITCH: case EXIT_REASON_CPUID: case EXIT_REASON_GETSEC: case EXIT_REASON_INVD:
	case EXIT_REASON_CR_ACCESS: case EXIT_REASON_RDMSR: case EXIT_REASON_WRMSR: case EXIT_REASON_EPT_VIOLATION:
	case EXIT_REASON_INVEPT: case EXIT_REASON_INVVPID: case EXIT_REASON_XSETBV:
		return true;
	case EXIT_REASON_ENTRY_FAIL_MC: /* hardware, not the guest */
		return false;
	case EXIT_REASON_EXTERNAL_INTR: return p->pin & PIN_EXT_INTR_EXITING;
	case EXIT_REASON_INTR_WINDOW: return p->proc & PROC_INTR_WINDOW_EXITING;
	case EXIT_REASON_NMI_WINDOW: return p->proc & PROC_NMI_WINDOW_EXITING;
	case EXIT_REASON_HLT: return p->proc & PROC_HLT_EXITING;
	case EXIT_REASON_INVLPG: return p->proc & PROC_INVLPG_EXITING;
	case EXIT_REASON_RDPMC: return p->proc & PROC_RDPMC_EXITING;
	case EXIT_REASON_RDTSC: return p->proc & PROC_RDTSC_EXITING;
	case EXIT_REASON_DR_ACCESS: return p->proc & PROC_MOV_DR_EXITING;
	case EXIT_REASON_IO: return p->proc & (PROC_UNCOND_IO_EXITING | PROC_USE_IO_BITMAPS);
	case EXIT_REASON_MWAIT: return p->proc & PROC_MWAIT_EXITING;
	case EXIT_REASON_MTF: return p->proc & PROC_MONITOR_TRAP_FLAG;
	case EXIT_REASON_MONITOR: return p->proc & PROC_MONITOR_EXITING;
	case EXIT_REASON_PAUSE: return p->proc & PROC_PAUSE_EXITING;
	case EXIT_REASON_TPR_BELOW: return p->proc & PROC_TPR_SHADOW;
	case EXIT_REASON_APIC_ACCESS: return p->proc2 & PROC2_VIRT_APIC_ACCESS;
	case EXIT_REASON_GDTR_IDTR: case EXIT_REASON_LDTR_TR: return p->proc2 & PROC2_DESC_TABLE_EXITING;
	case EXIT_REASON_RDTSCP: return (p->proc & PROC_RDTSC_EXITING) && (p->proc2 & PROC2_ENABLE_RDTSCP);
	case EXIT_REASON_PREEMPT_TIMER: return p->pin & PIN_PREEMPTION_TIMER;
	case EXIT_REASON_WBINVD: return p->proc2 & PROC2_WBINVD_EXITING;
	case EXIT_REASON_INVPCID: return (p->proc & PROC_INVLPG_EXITING) && (p->proc2 & PROC2_ENABLE_INVPCID);
	case EXIT_REASON_VMFUNC: return p->proc2 & PROC2_ENABLE_VMFUNC;
	case EXIT_REASON_PML_FULL: return p->proc2 & PROC2_ENABLE_PML;
	case EXIT_REASON_SPP: return p->proc2 & PROC2_SUBPAGE_WRITE_PERM;
	case EXIT_REASON_UMWAIT: case EXIT_REASON_TPAUSE:
		return (p->proc & PROC_RDTSC_EXITING) && (p->proc2 & PROC2_ENABLE_USER_WAIT);
	case EXIT_REASON_VMCALL: case 19: case 20: case 21: case 22: case 23: case 24: case 25: case 26: case 27:
		return true;
	default: /* SIPI (wait-for-SIPI is never used), SMIs, RSM, EOI/APIC-write virtualization,
		  * RDRAND/RDSEED/ENCLS/XSAVES exiting, undefined numbers */
		return false;
	}
}

/* Does the qualification of an EPT violation match the EPT (SDM 27.2.1 Table 27-7)? */
static bool ept_violation_possible(u64 gpa, u64 q)
{
	if (gpa >> PHYS_BITS || (q & BITS(63, 13)) || (q & (1ULL << 6)) || !(q & 7))
		return false;
	if (!(q & EPT_QUAL_GLA_VALID) && (q & EPT_QUAL_GLA_XLATE))
		return false;
	int level;
	u64 e = ept_walk(gpa, &level);
	u64 perm = e & 7;
	if (((q >> 3) & 7) != perm || !(q & 7 & ~perm))
		return false;
	/* A paging-structure access (bit 8 clear) to the region: the 0xFF bytes are reserved-bit
	 * entries, so the processor faults before it would set A/D bits there. */
	if ((q & EPT_QUAL_GLA_VALID) && !(q & EPT_QUAL_GLA_XLATE) && memmap_in_hv(gpa, 1))
		return false;
	return true;
}

/* Was this vcpu_stop for an exit a guest can cause? */
static bool stop_guest_caused(const char *why, u32 reason, const struct pre *p, u64 q, u64 gpa, u32 intr_info)
{
	u32 basic = reason & 0xffff;
	if (strstr(why, "VM entry failed"))
		return false;
	if (strstr(why, "unexpected VM exit"))
		return !(reason & EXIT_REASON_ENTRY_FAILURE) && reason_possible(basic, p);
	if (strstr(why, "unexpected exception exit")) {
		unsigned type = (intr_info >> 8) & 7, vec = intr_info & 0xff;
		return (intr_info & INTR_INFO_VALID) && (type == 3 || type == 5 || type == 6) && vec < 32 &&
		       ((p->bitmap >> vec) & 1);
	}
	if (strstr(why, "MOV to control register"))
		return ((q & 15) == 3 && (p->proc & PROC_CR3_LOAD_EXITING)) || ((q & 15) == 8 && (p->proc & PROC_CR8_LOAD_EXITING));
	if (strstr(why, "MOV from control register"))
		return ((q >> 4) & 3) == 1 && (((q & 15) == 3 && (p->proc & PROC_CR3_STORE_EXITING)) ||
					      ((q & 15) == 8 && (p->proc & PROC_CR8_STORE_EXITING)));
	if (strstr(why, "EPT violation outside"))
		return ept_violation_possible(gpa, q);
	if (strstr(why, "EPT misconfiguration"))
		return false; /* only a bad EPT entry of Tessel's own; the EPT checks cover that */
	if (strstr(why, "SPP exit without hardware SPP"))
		return p->proc2 & PROC2_SUBPAGE_WRITE_PERM;
	if (strstr(why, "SPP miss")) {
		/* SPPT lookups happen only for writes through EPT leaves with bit 61 set. */
		int level;
		return !(gpa >> PHYS_BITS) && (ept_walk(gpa, &level) & E_SPP) && level == 1;
	}
	return true;
}

/* ---- one exit ---- */

static void check_locks(const char *when)
{
	if (spp.lock.locked)
		fail("spp.lock left held %s", when);
	if (ept.lock.locked)
		fail("the EPT lock left held %s", when);
}

static u32 ring_head(void)
{
	return spp.ring_gpa ? *(volatile u32 *)gptr(spp.ring_gpa) : 0;
}

static void check_ring(u32 head0)
{
	if (!spp.ring_gpa)
		return;
	u32 head = ring_head();
	for (u32 h = head0; h != head && h - head0 < 64; h++) {
		u64 slot = spp.ring_gpa + 64 + (u64)(h % spp.ring_capacity) * 32;
		u64 egpa = *(u64 *)gptr(slot);
		u16 kind = *(u16 *)gptr(slot + 28);
		if (kind < 1 || kind > 3)
			fail("event %u has kind %u", h, kind);
		if (!model_is_ram(egpa, 1) && !memmap_in_hv(egpa, 1))
			finding(K_EV_GPA, "event %u (kind %u) names gpa 0x%llx, not guest memory", h, kind,
				(unsigned long long)egpa);
	}
}

/* If the instruction at RIP is MOVS (A4/A5 after prefixes): its source and destination
 * linear addresses (DS or the override : rSI, ES : rDI, by address size). */
static bool movs_operands(u64 *src, u64 *dst)
{
	bool lm = long_mode_guest();
	u64 cs_ar = fake_vmcs_get(VMCS_GUEST_CS_AR);
	unsigned asz = lm ? 8 : (cs_ar & SEG_AR_DB) && (fake_vmcs_get(VMCS_GUEST_CR0) & CR0_PE) &&
				    !(fake_vmcs_get(VMCS_GUEST_RFLAGS) & RFLAGS_VM) ? 4 : 2;
	u64 rip = fake_vmcs_get(VMCS_GUEST_RIP), la = lm ? rip : (u32)(fake_vmcs_get(VMCS_GUEST_CS_BASE) + rip), g;
	u64 seg = fake_vmcs_get(VMCS_GUEST_DS_BASE);
	unsigned asz0 = asz;
	for (int i = 0; i < 15; i++, la++) {
		if (walk_ok(la, false, false, true, &g) != 1 || !model_is_ram(g, 1))
			return false;
		u8 b = *gptr(g);
		if (b == 0x67) /* repeated prefixes count once (SDM Vol. 2 2.1.1) */
			asz = lm ? 4 : asz0 ^ 6;
		else if (b == 0x2e || b == 0x36 || b == 0x3e || b == 0x26 || b == 0x64 || b == 0x65) {
			static const u32 f[] = { VMCS_GUEST_ES_BASE, VMCS_GUEST_CS_BASE, VMCS_GUEST_SS_BASE, VMCS_GUEST_DS_BASE };
			seg = b >= 0x64 ? fake_vmcs_get(b == 0x64 ? VMCS_GUEST_FS_BASE : VMCS_GUEST_GS_BASE)
					: fake_vmcs_get(f[(b >> 3) & 3]);
		} else if (b == 0x66 || b == 0xf2 || b == 0xf3 || b == 0xf0 || (lm && (b & 0xf0) == 0x40))
			;
		else if (b == 0xa4 || b == 0xa5) {
			u64 m = asz == 8 ? ~0ULL : asz == 4 ? 0xffffffffULL : 0xffffULL;
			if (lm && seg != fake_vmcs_get(VMCS_GUEST_FS_BASE) && seg != fake_vmcs_get(VMCS_GUEST_GS_BASE))
				seg = 0;
			*src = seg + (regs.gpr[GPR_SI] & m);
			*dst = (lm ? 0 : fake_vmcs_get(VMCS_GUEST_ES_BASE)) + (regs.gpr[GPR_DI] & m);
			if (!lm) {
				*src = (u32)*src;
				*dst = (u32)*dst;
			}
			return true;
		} else
			return false;
	}
	return false;
}

/* Is the instruction at RIP an SSE/AVX store the emulator covers (0F 11 13 17 29 2B 7E 7F D6 E7,
 * legacy or VEX)? *vex says which. */
static bool sse_store_at_rip(bool *vex)
{
	bool lm = long_mode_guest();
	u64 rip = fake_vmcs_get(VMCS_GUEST_RIP), la = lm ? rip : (u32)(fake_vmcs_get(VMCS_GUEST_CS_BASE) + rip), g;
	u8 b[16];
	for (int i = 0; i < 16; i++) {
		if (walk_ok(la + i, false, false, true, &g) != 1 || !model_is_ram(g, 1))
			return false;
		b[i] = *gptr(g);
	}
	int i = 0;
	bool mandatory = false; /* a 66, F2 or F3 prefix: the SSE forms; without one, MMX */
	while (i < 14 && (b[i] == 0x66 || b[i] == 0xf2 || b[i] == 0xf3 || b[i] == 0x2e || b[i] == 0x36 || b[i] == 0x3e ||
			  b[i] == 0x26 || b[i] == 0x64 || b[i] == 0x65 || b[i] == 0x67 || (lm && (b[i] & 0xf0) == 0x40))) {
		mandatory |= b[i] == 0x66 || b[i] == 0xf2 || b[i] == 0xf3;
		i++;
	}
	u8 op;
	if (lm && (b[i] == 0xc5 || b[i] == 0xc4)) {
		if (b[i] == 0xc4 && (b[i + 1] & 0x1f) != 1)
			return false;
		op = b[i + (b[i] == 0xc5 ? 2 : 3)];
		*vex = true;
	} else if (b[i] == 0x0f) {
		op = b[i + 1];
		*vex = false;
		/* MMX forms (no 66/F3 prefix) of 7E 7F E7, and D6 without 66, are not SSE stores */
		if ((op == 0x7e || op == 0x7f || op == 0xe7 || op == 0xd6) && !mandatory)
			return false;
	} else {
		return false;
	}
	return op == 0x11 || op == 0x13 || op == 0x17 || op == 0x29 || op == 0x2b || op == 0x7e || op == 0x7f ||
	       op == 0xd6 || op == 0xe7;
}

/* FUZZ_EXIT_SELFTEST=region|protected|lock: the harness itself does, "inside the exit", what the
 * hypervisor must never do, to show that the invariant catches it (each run must fail). */
static int selftest;
static void selftest_write(void)
{
	if (selftest == 1)
		*(volatile u8 *)gptr(HV_END - 8) = 0; /* ASan: the poisoned region */
	if (selftest == 2)
		for (unsigned i = 0; i < n_psnaps; i++)
			for (unsigned b = 0; b < PAGE_SIZE; b++)
				if (!((psnaps[i].map >> (b / 128)) & 1)) {
					gptr(psnaps[i].gfn << 12)[b] ^= 1;
					return;
				}
	if (selftest == 3)
		spp.lock.locked = 1;
}

/* Documented stops by message and exit reason, for the report (FUZZ_EXIT_STATS=1). */
static struct { char why[48]; u32 reason; u64 n; } stop_hist[64];
static void stop_hist_add(const char *why, u32 reason)
{
	char w[48];
	size_t n = strcspn(why, "(\n");
	snprintf(w, sizeof(w), "%.*s", (int)MIN(n, sizeof(w) - 1), why);
	for (unsigned i = 0; i < ARRAY_SIZE(stop_hist); i++) {
		if (!stop_hist[i].n) {
			snprintf(stop_hist[i].why, sizeof(stop_hist[i].why), "%s", w);
			stop_hist[i].reason = reason;
		}
		if (stop_hist[i].reason == reason && !strcmp(stop_hist[i].why, w)) {
			stop_hist[i].n++;
			return;
		}
	}
}

/* Run vmx_handle_exit() with the fake VMCS as it is; returns false if the vCPU stopped (or
 * the platform was reset), which ends the input. */
static bool run_exit(u32 reason, const struct pre *p, u64 q, u64 gpa, u32 intr_info)
{
	unsigned before = state_checks();
	u64 rip0 = fake_vmcs_get(VMCS_GUEST_RIP);
	u32 head0 = ring_head();
	u64 cr2_0 = fake_cr_get(FAKE_CR2);
	bool stepping0 = cpu.step != NULL;
	bool vex = false;
	u64 cr0g = fake_vmcs_get(VMCS_GUEST_CR0), cr4g = fake_vmcs_get(VMCS_GUEST_CR4);
	bool sse_forbidden = (reason & 0xffff) == EXIT_REASON_EPT_VIOLATION && sse_store_at_rip(&vex) &&
			     ((cr0g & CR0_TS) || (vex ? !(cr4g & (1ULL << 18)) : ((cr0g & CR0_EM) || !(cr4g & (1ULL << 9)))));
	fake_vmcs_set(VMCS_RO_EXIT_REASON, reason);
	fake_vmcs_set(VMCS_CTRL_ENTRY_INTR_INFO, 0); /* VM exit clears the valid bit (SDM 27.2.5) */
	fake_io_output_clear();
	spins = 0;
	n_exits++;
	region_poison(true);
	in_exit = true;
	if (setjmp(exit_jmp)) {
		in_exit = false;
		region_poison(false);
		const char *out = fake_io_output();
		if (strstr(out, "TESSEL PANIC"))
			fail("panic");
		check_locks("after the vCPU stopped");
		if (!cpu.halted) {
			if (strstr(out, "triple fault")) {
				n_resets++;
				return false;
			}
			fail("cpu_halt() without vcpu_stop, panic or reset");
		}
		const char *why = strstr(out, "stopping this vCPU: ");
		why = why ? why + 20 : "(no reason logged)";
		n_stops++;
		stop_hist_add(why, reason);
		if (stop_guest_caused(why, reason, p, q, gpa, intr_info)) {
			enum known k = (reason & 0xffff) == EXIT_REASON_TASK_SWITCH ? K_TASK_SWITCH : K_STOP;
			finding(k, "vcpu_stop on an exit the guest can cause: %.120s", why);
			n_stops_known++;
		}
		return false;
	}
	vmx_handle_exit(&regs, (u32)fake_vmcs_get(VMCS_RO_EXIT_REASON));
	selftest_write();
	in_exit = false;
	region_poison(false);
	check_locks("after the exit");
	unsigned after = state_checks();
	for (unsigned i = 0; i < ARRAY_SIZE(check_names); i++)
		if ((before & ~after) & (1U << i))
			finding(i == 0 ? K_RIP : (1U << i) == C_CR ? K_CR : K_STATE, "the handler broke a VM-entry check: %s (RIP 0x%llx RFLAGS 0x%llx intr 0x%llx pdbg 0x%llx)",
			     check_names[i], (unsigned long long)fake_vmcs_get(VMCS_GUEST_RIP),
			     (unsigned long long)fake_vmcs_get(VMCS_GUEST_RFLAGS),
			     (unsigned long long)fake_vmcs_get(VMCS_GUEST_INTERRUPTIBILITY),
			     (unsigned long long)fake_vmcs_get(VMCS_GUEST_PENDING_DBG_EXC));
	check_injection();
	u32 info = (u32)fake_vmcs_get(VMCS_CTRL_ENTRY_INTR_INFO);
	if ((info & INTR_INFO_VALID) && (info & 0x7ff) == ((INTR_TYPE_HW_EXCEPTION) | 14) &&
	    (fake_cr_get(FAKE_CR2) != cr2_0 || !(fake_vmcs_get(VMCS_RO_IDT_VECTORING_INFO) & INTR_INFO_VALID))) {
		u32 pfec = (u32)fake_vmcs_get(VMCS_CTRL_ENTRY_EXC_ERROR_CODE);
		u64 la = fake_cr_get(FAKE_CR2);
		u64 g;
		if (walk_ok(la, pfec & 2, pfec & 4, pfec & 16, &g) == 1)
			finding(K_PF_CR2, "#PF injected (error code 0x%x) for linear 0x%llx, which translates", pfec,
				(unsigned long long)la);
		/* A MOVS whose source translates to MMIO: the read cannot fault (the #PF is for a
		 * bus error the guest's page tables do not explain), unless the destination does. */
		u64 src, dst;
		if (movs_operands(&src, &dst) && walk_ok(src, false, pfec & 4, false, &g) == 1 && !model_is_ram(g, 1) &&
		    !memmap_in_hv(g, 1) && walk_ok(dst, true, pfec & 4, false, &g) == 1)
			finding(K_PF_CR2, "#PF injected (error code 0x%x, CR2 0x%llx) for a MOVS whose source 0x%llx "
				"is MMIO", pfec, (unsigned long long)la, (unsigned long long)src);
	}
	if ((reason & 0xffff) == EXIT_REASON_EPT_VIOLATION && !stepping0 && ept_violation_possible(gpa, q) &&
	    (q & EPT_QUAL_GLA_VALID) && !(q & EPT_QUAL_GLA_XLATE) && (q & EPT_QUAL_WRITE) &&
	    fake_vmcs_get(VMCS_GUEST_RIP) != rip0 && !(fake_vmcs_get(VMCS_RO_IDT_VECTORING_INFO) & INTR_INFO_VALID))
		finding(K_AD_WALK, "EPT violation on a paging-structure write (qual 0x%llx, gpa 0x%llx): the instruction "
			"at 0x%llx was run or skipped", (unsigned long long)q, (unsigned long long)gpa,
			(unsigned long long)rip0);
	if (sse_forbidden && fake_vmcs_get(VMCS_GUEST_RIP) != rip0 && !stepping0)
		finding(K_SSE, "an SSE/AVX store at 0x%llx completed with CR0 0x%llx CR4 0x%llx (SDM: #NM if CR0.TS, #UD if "
			"CR0.EM or !CR4.OSFXSR; VEX: #UD if !CR4.OSXSAVE)", (unsigned long long)rip0,
			(unsigned long long)cr0g, (unsigned long long)cr4g);
	if ((reason & 0xffff) != EXIT_REASON_VMCALL) /* HC_EVENTS_SETUP starts a new ring */
		check_ring(head0);
	const u8 *ff = hpa_to_ptr(ff_page);
	for (unsigned i = 0; i < PAGE_SIZE; i += 8)
		if (*(const u64 *)(ff + i) != ~0ULL)
			fail("the 0xFF page changed at offset %u", i);
	return true;
}

/* A hypercall through the dispatcher (VMCALL exit), at CPL 0. */
static s64 hypercall(u64 nr, u64 b, u64 c, u64 d, u64 si)
{
	u64 ss = fake_vmcs_get(VMCS_GUEST_SS_AR), rip = fake_vmcs_get(VMCS_GUEST_RIP);
	u64 save[5] = { regs.gpr[GPR_AX], regs.gpr[GPR_BX], regs.gpr[GPR_CX], regs.gpr[GPR_DX], regs.gpr[GPR_SI] };
	fake_vmcs_set(VMCS_GUEST_SS_AR, ss & ~0x60ULL);
	regs.gpr[GPR_AX] = nr;
	regs.gpr[GPR_BX] = b;
	regs.gpr[GPR_CX] = c;
	regs.gpr[GPR_DX] = d;
	regs.gpr[GPR_SI] = si;
	fake_vmcs_set(VMCS_RO_EXIT_INSN_LEN, 3);
	fake_vmcs_set(VMCS_RO_IDT_VECTORING_INFO, 0);
	struct logent *l = &steplog[n_log++];
	*l = (struct logent){ .what = "hypercall", .hc = { nr, b, c, d } };
	n_hcalls++;
	static const struct pre none;
	bool alive = run_exit(EXIT_REASON_VMCALL, &none, 0, 0, 0);
	if (!alive)
		fail("the vCPU stopped on a VMCALL");
	l->st = (s64)regs.gpr[GPR_AX];
	if (trace)
		print_step(n_log - 1);
	fake_vmcs_set(VMCS_GUEST_SS_AR, ss);
	fake_vmcs_set(VMCS_GUEST_RIP, rip);
	regs.gpr[GPR_AX] = save[0];
	regs.gpr[GPR_BX] = save[1];
	regs.gpr[GPR_CX] = save[2];
	regs.gpr[GPR_DX] = save[3];
	regs.gpr[GPR_SI] = save[4];
	return l->st;
}

static void do_hypercall(struct rd *r)
{
	u8 s = rd8(r);
	if (mode == MODE_OFF && (s & 3) != 3)
		return;
	switch (s & 3) {
	case 0: case 1: { /* protect 1-3 hot pages */
		u64 gfn = hot[rd8(r) % ARRAY_SIZE(hot)], n = 1 + rd8(r) % 3;
		u32 maps[3];
		for (unsigned i = 0; i < 3; i++) {
			u8 m = rd8(r);
			maps[i] = m % 4 == 0 ? 0 : m % 4 == 1 ? SPP_MAP_ALL : m % 4 == 2 ? 0x55555555U : (u32)rdn(r, 4);
		}
		memcpy(gptr(SCRATCH), maps, sizeof(maps));
		hypercall(HC_SPP_SET, gfn, n, SCRATCH, (s & 4) && (tessel_features() & TESSEL_F_TRACK));
		break;
	}
	case 2: /* the event ring, with or without a notification vector */
		hypercall(HC_EVENTS_SETUP, RING_GPA, 2, (s & 4) ? 0x40 : 0, 0);
		break;
	default:
		if (s & 4)
			hypercall(HC_SPP_LOCK, hot[rd8(r) % ARRAY_SIZE(hot)], 1, 0, 0);
		else
			hypercall(HC_QUERY, 0, 0, 0, 0);
		break;
	}
}

/* Exit reasons, biased towards the ones with handlers that read guest memory. */
static u32 gen_reason(struct rd *r)
{
	/* The handled reasons (most inputs should live for several exits); any other number, or
	 * the entry-failure bit, ends the input with a vcpu_stop. */
	static const u16 common[] = { 48, 48, 48, 48, 48, 48, 48, 48, 66, 66, 0, 0, 10, 28, 28, 31, 32, 37, 37, 52,
				      55, 7, 8, 3, 13, 54, 19, 18, 48, 48, 66, 0 };
	static const u16 rare[] = { 2, 4, 9, 49, 33, 1, 12, 30 };
	u8 s = rd8(r);
	u32 reason = (s & 15) ? common[rd8(r) % ARRAY_SIZE(common)] : (s & 16) ? rare[rd8(r) % ARRAY_SIZE(rare)]
			      : (s & 32) ? rd8(r) % 80 : (u32)rdn(r, 2);
	/* Mostly exits the controls in force allow (SPP with hardware SPP, MTF while stepping). */
	if (((reason == EXIT_REASON_SPP && mode != MODE_HW) ||
	     (reason == EXIT_REASON_MTF && !(fake_vmcs_get(VMCS_CTRL_PROC_BASED) & PROC_MONITOR_TRAP_FLAG))) &&
	    (rd8(r) & 7))
		reason = EXIT_REASON_EPT_VIOLATION;
	if ((s & 0xf0) == 0xf0 && !(s & 15))
		reason |= EXIT_REASON_ENTRY_FAILURE;
	return reason;
}

/* IDT-vectoring information as a processor reports it: valid events only. */
static u32 gen_vectoring(struct rd *r, u32 *err, u64 cr0)
{
	u8 s = rd8(r);
	if (s & 3)
		return 0;
	unsigned type = (s >> 2) & 7, vec;
	switch (type) {
	case 0: vec = 32 + rd8(r) % 224; break;
	case 2: vec = 2; break;
	case 4: vec = rd8(r); break;
	case 5: vec = 1; break;
	case 6: vec = (s & 0x80) ? 3 : 4; break;
	default: type = 3; vec = rd8(r) % 32; break;
	}
	/* Only events the guest state allows: an external interrupt needs IF = 1 and no STI/MOV-SS
	 * blocking, an NMI no NMI/MOV-SS blocking (RFLAGS and interruptibility are saved as they
	 * were before the delivery, SDM 27.3.4). */
	u64 rf = fake_vmcs_get(VMCS_GUEST_RFLAGS);
	u32 intr = (u32)fake_vmcs_get(VMCS_GUEST_INTERRUPTIBILITY);
	if ((type == 0 && (!(rf & RFLAGS_IF) || (intr & 3))) || (type == 2 && (intr & (GUEST_INTR_BLOCK_MOV_SS | GUEST_INTR_BLOCK_NMI))))
		return 0;
	u32 info = INTR_INFO_VALID | (type << 8) | vec;
	if (type == 3 && has_error_code(vec) && (cr0 & CR0_PE)) {
		info |= INTR_INFO_DELIVER_CODE;
		*err = (u32)rdn(r, 2);
	}
	return info;
}

static void one_exit(struct rd *r)
{
	struct logent *l = &steplog[n_log++];
	*l = (struct logent){ 0 };
	bool stepping = cpu.step != NULL;
	u8 s = rd8(r);
	/* The guest runs between exits: new registers, RIP and instruction (not during a step). */
	if (!stepping && (s & 1)) {
		for (int i = 0; i < 16; i++)
			if (i != GPR_SP && (rd8(r) & 1))
				regs.gpr[i] = gen_reg(r);
		u64 ofs = (rd8(r) & 0x10) ? PAGE_SIZE - 1 - rd8(r) % 15 : rdn(r, 2) & 0xfff;
		bool paged = fake_vmcs_get(VMCS_GUEST_CR0) & CR0_PG;
		u64 cs_base = fake_vmcs_get(VMCS_GUEST_CS_BASE);
		u64 rip = paged ? LA_CODE + ofs - cs_base : (code_gpa + ofs) & 0xffff;
		fake_vmcs_set(VMCS_GUEST_RIP, rip);
		fake_vmcs_set(VMCS_GUEST_RSP, paged ? LA_STACK + (rdn(r, 2) & 0xfff) : rdn(r, 2));
		u8 insn[16];
		gen_insn(r, insn);
		memcpy(l->insn, insn, 16);
		/* Instruction bytes as the guest wrote them (RAM, not protected sub-pages). */
		for (unsigned i = 0; i < 16; i++) {
			u64 a = code_gpa + ofs + i;
			if (i + ofs >= PAGE_SIZE)
				break;
			u32 map = SPP_MAP_ALL, fl;
			if (mode != MODE_OFF)
				spp_store_get(&spp.store, a >> 12, &map, &fl);
			if (model_is_ram(a, 1) && ((map >> ((a >> 7) & 31)) & 1))
				*gptr(a) = insn[i];
		}
		u8 xmm[16];
		for (int i = 0; i < 16; i++)
			xmm[i] = rd8(r);
		fake_xmm_set(rd8(r) & 15, xmm);
	}
	if (stepping && (s & 2) && mode == MODE_SW) {
		/* The stepped instruction runs on the page made writable: it may write anything. */
		u64 gfn = 0;
		int level;
		for (unsigned i = 0; i < ARRAY_SIZE(hot); i++) {
			u64 e = ept_walk(hot[i] << 12, &level);
			u32 map, fl;
			spp_store_get(&spp.store, hot[i], &map, &fl);
			if (map != SPP_MAP_ALL && (e & E_W))
				gfn = hot[i];
		}
		if (gfn) {
			u64 a = (gfn << 12) + (rdn(r, 2) & 0xff8);
			u64 v = rdn(r, 8);
			memcpy(gptr(a), &v, 8);
		}
	}

	u32 reason = gen_reason(r);
	/* Privileged instructions fault at CPL > 0 before they could exit (SDM 25.1.1). */
	u32 basic = reason & 0xffff;
	if (SEG_AR_DPL((u32)fake_vmcs_get(VMCS_GUEST_SS_AR)) && (basic == EXIT_REASON_CR_ACCESS || basic == EXIT_REASON_RDMSR ||
	    basic == EXIT_REASON_WRMSR || basic == EXIT_REASON_INVD || basic == EXIT_REASON_WBINVD))
		reason = EXIT_REASON_CPUID;
	u64 q = 0, gpa = 0, gla = 0;
	u32 intr_info = 0, err = 0;
	u64 cr0 = fake_vmcs_get(VMCS_GUEST_CR0);
	u8 k = rd8(r);
	switch (reason & 0xffff) {
	case EXIT_REASON_EPT_VIOLATION: {
		unsigned d = rd8(r) % NDATA;
		gpa = (k & 0xc0) ? data_gpa[d] + (rdn(r, 2) & 0xfff) : gen_gpa_page(r) + (rdn(r, 2) & 0xfff);
		if ((k & 0xc0) == 0xc0) { /* the data page at a write-protected address */
			for (unsigned i = 0; i < NDATA; i++) {
				int level;
				u64 g = data_gpa[(d + i) % NDATA];
				if (!(g >> PHYS_BITS) && (ept_walk(g, &level) & 7) != 7) {
					d = (d + i) % NDATA;
					gpa = g + (gpa & 0xfff);
					break;
				}
			}
		}
		gla = LA_DATA + d * PAGE_SIZE + (gpa & 0xfff);
		if ((k & 0x30) == 0x30) {
			q = rdn(r, 2) & 0x1fff; /* anything: mostly not what the EPT allows */
		} else {
			/* What a processor reports: an access the leaf denies (mostly a write to a
			 * protected page, the region or the APIC page), with the leaf's permissions. */
			int level;
			u64 perm = gpa >> PHYS_BITS ? 0 : ept_walk(gpa, &level) & 7;
			for (unsigned i = 0; perm == 7 && !(k & 8) && i < ARRAY_SIZE(hot); i++) {
				/* nothing denied here: a hot page that is write-protected instead */
				u64 g = hot[(rd8(r) + i) % ARRAY_SIZE(hot)] << 12;
				if ((ept_walk(g, &level) & 7) != 7) {
					gpa = g + (gpa & 0xfff);
					perm = ept_walk(g, &level) & 7;
				}
			}
			u64 denied = 7 & ~perm;
			if (!(k & 0x20) && denied && !(denied & ((k & 3) == 3 ? EPT_QUAL_READ : (k & 3) == 2 ? EPT_QUAL_FETCH : EPT_QUAL_WRITE)))
				k = (u8)((k & ~3) | ((denied & EPT_QUAL_WRITE) ? 0 : (denied & EPT_QUAL_FETCH) ? 2 : 3));
			q = (perm << 3) | ((k & 3) == 3 ? EPT_QUAL_READ : (k & 3) == 2 ? EPT_QUAL_FETCH : EPT_QUAL_WRITE);
			if (k & 4)
				q |= EPT_QUAL_GLA_VALID | ((k & 8) ? 0 : EPT_QUAL_GLA_XLATE);
			if ((k & 0x10) && !(rd8(r) & 7))
				q |= EPT_QUAL_NMI_UNBLOCK;
		}
		break;
	}
	case EXIT_REASON_SPP:
		gpa = (hot[rd8(r) % ARRAY_SIZE(hot)] << 12) + (rdn(r, 2) & 0xff8);
		q = (k & 1) ? SPP_QUAL_MISS : 0;
		if (k & 2)
			q |= SPP_QUAL_NMI_UNBLOCK;
		if (k & 4)
			gpa = gen_gpa_page(r);
		break;
	case EXIT_REASON_CR_ACCESS: {
		static const u8 crs[] = { 0, 0, 4, 4, 3, 8, 2 };
		q = crs[k % ARRAY_SIZE(crs)] | ((u64)(rd8(r) & 3) << 4) | ((u64)(rd8(r) & 15) << 8) | (rdn(r, 2) << 16);
		regs.gpr[(q >> 8) & 15] = (k & 0x80) ? rdn(r, 8) : (rd8(r) & 1 ? CR0_PE | CR0_PG | CR0_NE | CR0_ET : rdn(r, 4));
		break;
	}
	case EXIT_REASON_EXCEPTION_NMI: {
		static const u32 infos[] = { INTR_INFO_VALID | INTR_TYPE_NMI | 2, INTR_INFO_VALID | INTR_TYPE_HW_EXCEPTION | 1,
					     INTR_INFO_VALID | INTR_TYPE_HW_EXCEPTION | 14 | INTR_INFO_DELIVER_CODE,
					     INTR_INFO_VALID | INTR_TYPE_SW_EXCEPTION | 3 };
		intr_info = (k & 0x38) == 0x38 ? (u32)rdn(r, 4) : infos[k & 3];
		fake_vmcs_set(VMCS_RO_EXIT_INTR_INFO, intr_info);
		fake_vmcs_set(VMCS_RO_EXIT_INTR_ERROR_CODE, rdn(r, 2));
		q = (k & 0x10) ? 0x4000 : rdn(r, 8);
		break;
	}
	case EXIT_REASON_RDMSR: case EXIT_REASON_WRMSR: {
		static const u32 msrs[] = { 0x3a, 0x480, 0x48f, 0x830, 0x10, 0x1b, 0xc0000080, 0x40000000, 0x6e0 };
		regs.gpr[GPR_CX] = (k & 1) ? msrs[rd8(r) % ARRAY_SIZE(msrs)] : rdn(r, 4);
		regs.gpr[GPR_AX] = rdn(r, 4);
		regs.gpr[GPR_DX] = (k & 2) ? 0 : rdn(r, 4);
		break;
	}
	case EXIT_REASON_XSETBV:
		regs.gpr[GPR_CX] = (k & 1) ? 0 : rd8(r);
		regs.gpr[GPR_AX] = (k & 2) ? 7 : rdn(r, 4);
		regs.gpr[GPR_DX] = 0;
		break;
	case EXIT_REASON_CPUID:
		regs.gpr[GPR_AX] = (k & 1) ? 0x40000000 + rd8(r) % 3 : rd8(r) % 16;
		break;
	case EXIT_REASON_VMCALL:
		regs.gpr[GPR_AX] = rd8(r) % 0x24;
		break;
	default:
		q = rdn(r, (k & 1) ? 8 : 1);
		gpa = (k & 2) ? gen_gpa_page(r) : 0;
		break;
	}
	u32 vect = 0;
	switch (reason & 0xffff) {
	case EXIT_REASON_EXCEPTION_NMI: case EXIT_REASON_TASK_SWITCH: case EXIT_REASON_EPT_VIOLATION:
	case EXIT_REASON_EPT_MISCONFIG: case EXIT_REASON_SPP: case EXIT_REASON_APIC_ACCESS:
		vect = gen_vectoring(r, &err, cr0);
		break;
	}
	fake_vmcs_set(VMCS_RO_EXIT_QUALIFICATION, q);
	fake_vmcs_set(VMCS_RO_GUEST_PHYS_ADDR, gpa);
	fake_vmcs_set(VMCS_RO_GUEST_LINEAR_ADDR, gla);
	fake_vmcs_set(VMCS_RO_IDT_VECTORING_INFO, vect);
	fake_vmcs_set(VMCS_RO_IDT_VECTORING_ERROR, err);
	unsigned vtype = (vect >> 8) & 7;
	fake_vmcs_set(VMCS_RO_EXIT_INSN_LEN, (vect && vtype >= 4) ? ((vect & 0xff) == 3 || vtype == 5 ? 1 : 2)
								  : 1 + rd8(r) % 15);
	l->reason = reason;
	l->qual = q;
	l->gpa = gpa;
	l->gla = gla;
	l->rip = fake_vmcs_get(VMCS_GUEST_RIP);
	l->vect = vect;
	if (trace)
		print_step(n_log - 1);

	struct pre p = { (u32)fake_vmcs_get(VMCS_CTRL_PIN_BASED), (u32)fake_vmcs_get(VMCS_CTRL_PROC_BASED),
			 (u32)fake_vmcs_get(VMCS_CTRL_PROC_BASED2), (u32)fake_vmcs_get(VMCS_CTRL_EXCEPTION_BITMAP),
			 fake_vmcs_get(VMCS_GUEST_RIP) };
	if (!stepping)
		psnap_take(gpa);
	if (!run_exit(reason, &p, q, gpa, intr_info))
		longjmp(input_jmp, 1); /* the vCPU stopped (or the platform reset): the input ends */
	if (cpu.step == NULL)
		psnap_check();
}

/* ---- libFuzzer entry points ---- */

static void report(void)
{
	fprintf(stderr, "fuzz_exit: %llu inputs, %llu exits (%llu hypercalls), %llu documented vcpu_stops, %llu resets",
		(unsigned long long)n_inputs, (unsigned long long)n_exits, (unsigned long long)n_hcalls,
		(unsigned long long)(n_stops - n_stops_known), (unsigned long long)n_resets);
	for (int k = 0; k < K_COUNT; k++)
		if (known[k])
			fprintf(stderr, ", known %s: %llu", known_names[k], (unsigned long long)known_hits[k]);
	fprintf(stderr, "\n");
	if (getenv("FUZZ_EXIT_STATS"))
		for (unsigned i = 0; i < ARRAY_SIZE(stop_hist) && stop_hist[i].n; i++)
			fprintf(stderr, "  stop: %-48s exit 0x%x: %llu\n", stop_hist[i].why, stop_hist[i].reason,
				(unsigned long long)stop_hist[i].n);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	trace = getenv("FUZZ_TRACE") != NULL;
	const char *st = getenv("FUZZ_EXIT_SELFTEST");
	selftest = !st ? 0 : !strcmp(st, "region") ? 1 : !strcmp(st, "protected") ? 2 : !strcmp(st, "lock") ? 3 : 0;
	const char *kn = getenv("FUZZ_EXIT_KNOWN");
	for (int k = 0; kn && k < K_COUNT; k++) {
		const char *s = strstr(kn, known_names[k]);
		size_t n = strlen(known_names[k]);
		known[k] = s && (s == kn || s[-1] == ',') && (s[n] == 0 || s[n] == ',');
	}
	init_once();
	set_poison(W_BASE, W_SIZE, false);
	/* Guest RAM is the hypervisor's to read (page tables, instructions) and, under the ABI's
	 * rules, to write; what is not RAM stays poisoned. */
	set_poison(MMIO_BASE, MMIO_END - MMIO_BASE, true);
	set_poison(RSVD_BASE, RSVD_END - RSVD_BASE, true);
	fake_set_halt_hook(halt_hook);
	fake_set_relax_hook(relax_hook);
	atexit(report);
	return 0;
}

int LLVMFuzzerTestOneInput(const u8 *data, size_t size)
{
	struct rd r = { data, size };
	prng = 0x9e3779b97f4a7c15ULL ^ size;
	for (size_t i = 0; i < size; i++)
		prng = (prng ^ data[i]) * 0x100000001b3ULL;
	n_inputs++;
	reinit(rd8(&r));
	/* Hot pages: both sides of 2 MiB boundaries, next to the region, the MMIO hole and the
	 * reserved range, the end of RAM, and a few random ones. */
	static const u64 fixed[] = { W_GFN + 511, W_GFN + 512, (HV_BASE >> 12) - 1, HV_END >> 12, (MMIO_BASE >> 12) - 1,
				     (RSVD_BASE >> 12) - 1, (RAM_END >> 12) - 1, (MMIO_END >> 12) };
	for (unsigned i = 0; i < ARRAY_SIZE(hot); i++)
		hot[i] = i < ARRAY_SIZE(fixed) && (rd8(&r) & 1) ? fixed[i] : pick_ram_gfn(&r);
	for (unsigned i = 0; i < ARRAY_SIZE(hot); i++)
		if ((hot[i] << 12) >= PT_AREA && (hot[i] << 12) < RING_GPA + 2 * PAGE_SIZE)
			hot[i] += 64;
	memset(&regs, 0, sizeof(regs));
	fake_cr_set(FAKE_CR2, 0);
	sipi_vector = rd8(&r);
	setup_guest(&r);
	if (trace)
		fprintf(stderr, "input of %zu bytes: spp %s, guest %s; region poisoned from 0x%llx (pmm high water + %d pages)\n",
			size, mode == MODE_OFF ? "off" : mode == MODE_SW ? "sw" : lazy ? "hw-lazy" : "hw-eager", gmode_names[gm],
			(unsigned long long)MIN(region_high_water() + REGION_MARGIN * PAGE_SIZE, HV_END), REGION_MARGIN);
	/* Protect some hot pages first. */
	unsigned npre = 1 + rd8(&r) % 4;
	for (unsigned i = 0; i < npre; i++) {
		u64 gfn = hot[rd8(&r) % ARRAY_SIZE(hot)];
		u32 map = (rd8(&r) & 1) ? 0 : (u32)rdn(&r, 4);
		u32 maps[2] = { map, map };
		if (mode == MODE_OFF)
			break;
		memcpy(gptr(SCRATCH), maps, sizeof(maps));
		hypercall(HC_SPP_SET, gfn, 1 + (rd8(&r) & 1), SCRATCH, 0);
	}
	if (setjmp(input_jmp))
		return 0;
	for (unsigned i = 0; i < MAX_STEPS && r.n; i++) {
		if (n_log >= MAX_STEPS)
			break;
		if ((rd8(&r) & 7) == 0 && !cpu.step)
			do_hypercall(&r);
		else
			one_exit(&r);
	}
	check_locks("at the end of the input");
	return 0;
}
