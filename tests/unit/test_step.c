/*
 * Host tests of the software-mode single-step (spp/step.c) against the fake hardware layer:
 * a fake machine (physical window, memory map, pmm, EPT identity map, SPP in software mode,
 * one CPU) with a page protected through HC_SPP_SET and an event ring set up through
 * HC_EVENTS_SETUP. Each test starts a step as spp/violation.c does, plays the part of the
 * processor (the stepped instruction's effects on memory and registers, then the exit that
 * ends or interrupts the step) and checks what the guest can see afterwards: page bytes,
 * registers, RIP/RFLAGS, injected events, the EPT leaf, the execution controls, the ring and
 * the statistics.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>
#include <pthread.h>
#include <time.h>

#include <hw.h>
#include <machine.h>
#include <arch/cpu.h>
#include <arch/ept.h>
#include <arch/vmx.h>
#include <tessel/bootinfo.h>
#include <tessel/config.h>
#include "hv/abi.h"
#include "hv/exit.h"
#include "hv/hypercall.h"
#include "hv/percpu.h"
#include "hv/stats.h"
#include "hv/vapic.h"
#include "hv/vmcs.h"
#include "hv/vmx_caps.h"
#include "mm/ept.h"
#include "mm/memmap.h"
#include "mm/mtrr.h"
#include "mm/pmm.h"
#include "spp/spp.h"
#include "spp/step.h"

#define MiB(x) ((u64)(x) << 20)
/* Below 4 GiB: with CR0.PG = 0 and EFER.LMA = 0 a linear address is its low 32 bits. */
#define W_BASE 0x10000000ULL
#define W_SIZE MiB(64)
#define RAM_SIZE MiB(48)
#define HV_BASE (W_BASE + RAM_SIZE)
#define HV_SIZE (W_SIZE - RAM_SIZE)
#define PHYS_BITS 36

#define MAP_GPA (W_BASE + MiB(1))   /* HC_SPP_SET map buffer */
#define RING_GPA (W_BASE + MiB(2))  /* the event ring, one page */
#define RING_VECTOR 0x40
#define PAGE_GPA (W_BASE + MiB(8))  /* the protected page */
#define PAGE_GFN (PAGE_GPA >> PAGE_SHIFT)
#define PAGE_MAP 0x0000ffffu        /* sub-pages 0-15 writable, 16-31 protected */
#define WR_OFF 0x100                /* in a writable sub-page */
#define PROT_OFF 0x900              /* in a protected sub-page (18) */

#define G_RIP (W_BASE + MiB(4) + 0x100) /* in RAM: the step reads the instruction bytes */
#define G_LEN 4ULL
#define G_GLA 0x7f0000900ULL
#define G_RSP (PAGE_GPA + 0x208)    /* the guest stack: a writable sub-page of the page */
#define G_RFLAGS (RFLAGS_FIXED | RFLAGS_IF | RFLAGS_ZF)
#define OLD_PIN 0x16u
#define OLD_PROC 0x84006172u
#define OLD_EXC (1u << 18)          /* #MC only */
#define DR6_INIT 0xffff0ff0ULL
#define DR6_BS (1ULL << 14)
#define QUAL_BS (1ULL << 14)

static struct mtrr_state mtrr;
static struct ept ept;
static struct percpu cpu;
static struct guest_regs regs;
static u8 saved[PAGE_SIZE];

static const struct tessel_mem_range fw_map[] = {
	{ W_BASE, RAM_SIZE >> PAGE_SHIFT, EFI_MT_CONVENTIONAL, 0 },
	{ HV_BASE, HV_SIZE >> PAGE_SHIFT, EFI_MT_LOADER_DATA, 0 },
};
static const struct fake_machine machine = { .hv_base = HV_BASE, .hv_size = HV_SIZE, .phys_bits = PHYS_BITS,
					     .fw_map = fw_map, .fw_count = ARRAY_SIZE(fw_map) };

static u8 *gp(u64 gpa) { return hpa_to_ptr(hpa(gpa)); }
/* The stepped instruction: FXSAVE [RDI] and a NOP (G_LEN bytes). */
static const u8 insn_bytes[] = { 0x0f, 0xae, 0x07, 0x90 };
static u8 *page(void) { return gp(PAGE_GPA); }

static u64 *leaf(void)
{
	int level = 0;
	u64 *e = ept_leaf(&ept, PAGE_GPA, &level);
	assert_non_null(e);
	assert_int_equal(level, 1);
	return e;
}

static s64 hcall(u64 nr, u64 a0, u64 a1, u64 a2, u64 a3)
{
	struct hc_args a = { .nr = nr, .arg = { a0, a1, a2, a3 } };
	return hypercall_dispatch(&cpu, &a, 0);
}

static void protect(u32 map, u64 flags)
{
	*(u32 *)gp(MAP_GPA) = map;
	assert_int_equal(hcall(HC_SPP_SET, PAGE_GFN, 1, MAP_GPA, flags), 0);
}

static u64 stat_of(enum stat s)
{
	u64 out[STAT_COUNT];
	stats_snapshot(out);
	return out[s];
}

static u32 ring_head(void) { return *(u32 *)gp(RING_GPA); }

struct __attribute__((packed)) ring_entry { u64 gpa, rip, gla; u32 vcpu; u16 kind, bytes; };
static struct ring_entry ring_entry(u32 k)
{
	struct ring_entry e;
	memcpy(&e, gp(RING_GPA + 64 + (u64)k * 32), sizeof(e));
	return e;
}

static void set_guest(u64 rflags)
{
	fake_vmcs_set(VMCS_GUEST_RIP, G_RIP);
	fake_vmcs_set(VMCS_GUEST_RSP, G_RSP);
	fake_vmcs_set(VMCS_GUEST_RFLAGS, rflags);
}

static int setup(void **state)
{
	(void)state;
	fake_reset();
	fake_phys_init(W_BASE, W_SIZE);
	memset(gp(W_BASE), 0, RAM_SIZE);
	fake_machine_cpu(&cpu, &regs, 0, 7);
	fake_cpu_local_set(&cpu);
	memset(stat_counters, 0, sizeof(u64) * STAT_COUNT * TESSEL_MAX_CPUS);

	memset(&vmx_caps, 0, sizeof(vmx_caps)); /* no MTF, no preemption timer unless a test grants it */
	vmx_caps.phys_bits = PHYS_BITS;

	/* The guest: flat, CPL 0, no paging (linear = physical), interrupts enabled. */
	fake_vmcs_set(VMCS_GUEST_CR0, CR0_PE | CR0_NE);
	fake_vmcs_set(VMCS_GUEST_SS_AR, 0xc093);
	set_guest(G_RFLAGS);
	fake_vmcs_set(VMCS_CTRL_PIN_BASED, OLD_PIN);
	fake_vmcs_set(VMCS_CTRL_PROC_BASED, OLD_PROC);
	fake_vmcs_set(VMCS_CTRL_EXCEPTION_BITMAP, OLD_EXC);
	fake_dr6 = DR6_INIT;

	assert_int_equal(fake_machine_spp(&machine, &mtrr, &ept, CFG_SPP_SW), 0);
	assert_int_equal(spp.mode, SPP_MODE_SW);

	assert_int_equal(hcall(HC_EVENTS_SETUP, RING_GPA, 1, RING_VECTOR, 0), 0);
	memcpy(gp(G_RIP), insn_bytes, G_LEN);
	for (unsigned i = 0; i < PAGE_SIZE; i++)
		page()[i] = (u8)(i * 7 + 3);
	protect(PAGE_MAP, 0);
	assert_false(*leaf() & EPT_W);
	memcpy(saved, page(), PAGE_SIZE);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	fake_cpu_local_set(NULL);
	fake_phys_fini();
	return 0;
}

/* Start a step the way spp/violation.c does (under spp.lock), for a write at PROT_OFF. */
static void start(bool pushf)
{
	spin_lock(&spp.lock);
	bool ok = spp_step_start(&cpu, PAGE_GFN, G_LEN, PAGE_GPA + PROT_OFF, G_GLA, pushf, ~0U);
	spin_unlock(&spp.lock);
	assert_true(ok);
	assert_non_null(cpu.step);
}

/* The processor's single-step #DB exit (intercepted #DB, DR6-style qualification). */
static bool db_exit(u64 qual)
{
	fake_vmcs_set(VMCS_RO_EXIT_INTR_INFO, INTR_INFO_VALID | INTR_TYPE_HW_EXCEPTION | VEC_DB);
	fake_vmcs_set(VMCS_RO_EXIT_QUALIFICATION, qual);
	return spp_step_exit(&cpu, EXIT_REASON_EXCEPTION_NMI);
}

/* The stepped instruction ran to completion: RIP moved past it. */
static void retire(void) { fake_vmcs_set(VMCS_GUEST_RIP, G_RIP + G_LEN); }

static void assert_controls_restored(void)
{
	assert_int_equal(fake_vmcs_get(VMCS_CTRL_PIN_BASED), OLD_PIN);
	assert_int_equal(fake_vmcs_get(VMCS_CTRL_PROC_BASED), OLD_PROC);
	assert_int_equal(fake_vmcs_get(VMCS_CTRL_EXCEPTION_BITMAP), OLD_EXC);
	assert_false(*leaf() & EPT_W);
	assert_true(*leaf() & EPT_R);
	assert_null(cpu.step);
}

static void assert_nothing_injected(void)
{
	assert_int_equal(fake_vmcs_get(VMCS_CTRL_ENTRY_INTR_INFO), 0);
	assert_false(cpu.event_injected);
	assert_int_equal(fake_dr6, DR6_INIT);
}

/* ---- RFLAGS.TF path ---- */

static void tf_clean_write(u64 guest_rflags)
{
	set_guest(guest_rflags);
	u64 inv = fake_invept_count();
	start(false);

	/* The step is armed: TF, #DB intercepted, interrupts exit, page writable, no MTF. */
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_RFLAGS), guest_rflags | RFLAGS_TF);
	/* Every exception exits during a TF step, so no guest handler runs while the page is
	 * writable (spp/step.c). */
	assert_int_equal(fake_vmcs_get(VMCS_CTRL_EXCEPTION_BITMAP), 0xffffffffu);
	assert_int_equal(fake_vmcs_get(VMCS_CTRL_PIN_BASED),
			 (guest_rflags & RFLAGS_IF) ? (OLD_PIN | PIN_EXT_INTR_EXITING) : OLD_PIN);
	assert_int_equal(fake_vmcs_get(VMCS_CTRL_PROC_BASED), OLD_PROC);
	assert_true(*leaf() & EPT_W);
	assert_true(fake_invept_count() > inv);
	assert_memory_equal(page(), saved, PAGE_SIZE);

	/* The instruction writes writable bytes only (a whole writable sub-page, and the bytes
	 * just below the protected one) and changes a register. */
	memset(page() + 0x80, 0x5a, 128);
	memset(page() + 0x7f8, 0xc3, 8);
	regs.gpr[GPR_AX] = 0x1234;
	retire();
	u8 expect[PAGE_SIZE];
	memcpy(expect, page(), PAGE_SIZE);
	inv = fake_invept_count();

	assert_true(db_exit(QUAL_BS));
	assert_memory_equal(page(), expect, PAGE_SIZE);
	assert_int_equal(regs.gpr[GPR_AX], 0x1234);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_RIP), G_RIP + G_LEN);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_RSP), G_RSP);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_RFLAGS), guest_rflags);
	assert_controls_restored();
	assert_true(fake_invept_count() > inv);
	assert_int_equal(stat_of(STAT_EMULATED_WRITES), 1);
	assert_int_equal(stat_of(STAT_SPP_DENIED), 0);
	assert_int_equal(ring_head(), 0);
	assert_int_equal(cpu.pending_vector, 0);
}

static void test_tf_clean_write_guest_tf0(void **state)
{
	(void)state;
	tf_clean_write(G_RFLAGS);
	assert_nothing_injected();
}

static void test_tf_clean_write_guest_tf1(void **state)
{
	(void)state;
	tf_clean_write(G_RFLAGS | RFLAGS_TF);
	/* The guest's own single-step trap is still delivered, with DR6.BS. */
	assert_int_equal(fake_vmcs_get(VMCS_CTRL_ENTRY_INTR_INFO), INTR_INFO_VALID | INTR_TYPE_HW_EXCEPTION | VEC_DB);
	assert_true(cpu.event_injected);
	assert_int_equal(fake_dr6, (DR6_INIT & ~0x400fULL) | DR6_BS);
}

static void test_tf_guest_if0_keeps_pin_controls(void **state)
{
	(void)state;
	/* With IF = 0 no guest handler can run: interrupt exiting is not turned on. */
	tf_clean_write(RFLAGS_FIXED | RFLAGS_CF);
	assert_nothing_injected();
}

static void test_tf_guest_breakpoint_with_step(void **state)
{
	(void)state;
	start(false);
	memset(page() + WR_OFF, 0x11, 16);
	retire();
	/* A data breakpoint (B1) of the guest's hit together with our single-step. */
	assert_true(db_exit(QUAL_BS | 0x2));
	assert_int_equal(page()[WR_OFF], 0x11);
	assert_controls_restored();
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_RFLAGS), G_RFLAGS);
	assert_int_equal(fake_vmcs_get(VMCS_CTRL_ENTRY_INTR_INFO), INTR_INFO_VALID | INTR_TYPE_HW_EXCEPTION | VEC_DB);
	assert_int_equal(fake_dr6, (DR6_INIT & ~0x400fULL) | 0x2); /* B1, no BS: TF was ours */
}

/* ---- a protected byte changed: the instruction is undone and skipped ---- */

static void protected_write(u64 guest_rflags)
{
	set_guest(guest_rflags);
	for (unsigned r = 0; r < 16; r++)
		regs.gpr[r] = 0x0101010101010101ULL * (r + 1);
	regs.gpr[GPR_SP] = 0xdead; /* not used: RSP lives in the VMCS */
	start(false);

	page()[WR_OFF] ^= 0xff;
	page()[PROT_OFF] ^= 0xff;
	regs.gpr[GPR_AX] = 0;
	regs.gpr[GPR_R15] = 0;
	fake_vmcs_set(VMCS_GUEST_RSP, G_RSP - 16);
	fake_vmcs_set(VMCS_GUEST_RFLAGS, (guest_rflags | RFLAGS_TF | RFLAGS_CF | RFLAGS_OF) & ~RFLAGS_ZF);
	retire();

	assert_true(db_exit(QUAL_BS));
	assert_memory_equal(page(), saved, PAGE_SIZE);
	for (unsigned r = 0; r < 16; r++)
		if (r != GPR_SP)
			assert_int_equal(regs.gpr[r], 0x0101010101010101ULL * (r + 1));
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_RSP), G_RSP);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_RFLAGS), guest_rflags);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_RIP), G_RIP + G_LEN);
	assert_controls_restored();

	assert_int_equal(ring_head(), 1);
	struct ring_entry e = ring_entry(0);
	assert_int_equal(e.gpa, PAGE_GPA + PROT_OFF);
	assert_int_equal(e.rip, G_RIP);
	assert_int_equal(e.gla, G_GLA);
	assert_int_equal(e.vcpu, 7);
	assert_int_equal(e.kind, TESSEL_EV_DISCARDED);
	assert_int_equal(e.bytes, 0);
	assert_int_equal(cpu.pending_vector, RING_VECTOR);
	assert_int_equal(stat_of(STAT_SPP_DENIED), 1);
	assert_int_equal(stat_of(STAT_EMULATED_WRITES), 0);
}

static void test_protected_write_discarded(void **state)
{
	(void)state;
	protected_write(G_RFLAGS);
	assert_nothing_injected();
}

static void test_protected_write_discarded_guest_tf1(void **state)
{
	(void)state;
	/* Skipping the instruction still completes it for the guest's own single-step. */
	protected_write(G_RFLAGS | RFLAGS_TF);
	assert_int_equal(fake_vmcs_get(VMCS_CTRL_ENTRY_INTR_INFO), INTR_INFO_VALID | INTR_TYPE_HW_EXCEPTION | VEC_DB);
	assert_int_equal(fake_dr6, (DR6_INIT & ~0x400fULL) | DR6_BS);
}

/* ---- exits that are not the end of the step ---- */

static void partial_write(void)
{
	page()[WR_OFF] ^= 0xff;
	page()[PROT_OFF] ^= 0xff;
}

static void assert_aborted(void)
{
	assert_memory_equal(page(), saved, PAGE_SIZE);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_RIP), G_RIP);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_RFLAGS), G_RFLAGS);
	assert_controls_restored();
	assert_int_equal(ring_head(), 0);
	assert_int_equal(stat_of(STAT_SPP_DENIED), 0);
	assert_int_equal(stat_of(STAT_EMULATED_WRITES), 0);
}

static void test_abort_external_interrupt(void **state)
{
	(void)state;
	start(false);
	partial_write();
	assert_true(spp_step_exit(&cpu, EXIT_REASON_EXTERNAL_INTR));
	assert_aborted();
	assert_nothing_injected();
}

static void test_abort_ept_violation(void **state)
{
	(void)state;
	start(false);
	partial_write();
	assert_false(spp_step_exit(&cpu, EXIT_REASON_EPT_VIOLATION));
	assert_aborted();
	assert_nothing_injected();
}

static void test_abort_nmi(void **state)
{
	(void)state;
	start(false);
	fake_vmcs_set(VMCS_RO_EXIT_INTR_INFO, INTR_INFO_VALID | INTR_TYPE_NMI | 2);
	fake_vmcs_set(VMCS_RO_EXIT_QUALIFICATION, 0);
	assert_false(spp_step_exit(&cpu, EXIT_REASON_EXCEPTION_NMI));
	assert_aborted();
	assert_nothing_injected();
}

static void test_abort_guest_instruction_breakpoint(void **state)
{
	(void)state;
	/* A guest instruction breakpoint (B0) fires before the instruction runs: the guest gets
	 * its #DB, the instruction runs again after the handler. */
	start(false);
	assert_true(db_exit(0x1));
	assert_aborted();
	assert_int_equal(fake_vmcs_get(VMCS_CTRL_ENTRY_INTR_INFO), INTR_INFO_VALID | INTR_TYPE_HW_EXCEPTION | VEC_DB);
	assert_int_equal(fake_dr6, (DR6_INIT & ~0x400fULL) | 0x1);
}

static void test_abort_other_exception(void **state)
{
	(void)state;
	/* An intercepted #MC (in the old bitmap) is not the end of the step. */
	start(false);
	partial_write();
	fake_vmcs_set(VMCS_RO_EXIT_INTR_INFO, INTR_INFO_VALID | INTR_TYPE_HW_EXCEPTION | 18);
	fake_vmcs_set(VMCS_RO_EXIT_QUALIFICATION, 0);
	assert_false(spp_step_exit(&cpu, EXIT_REASON_EXCEPTION_NMI));
	assert_aborted();
	assert_nothing_injected();
}

static void test_start_refused_outside_sw_mode(void **state)
{
	(void)state;
	spp.mode = SPP_MODE_HW;
	assert_false(spp_step_start(&cpu, PAGE_GFN, G_LEN, PAGE_GPA + PROT_OFF, G_GLA, false, ~0U));
	assert_null(cpu.step);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_RFLAGS), G_RFLAGS);
	assert_int_equal(fake_vmcs_get(VMCS_CTRL_EXCEPTION_BITMAP), OLD_EXC);
	assert_false(*leaf() & EPT_W);
	spp.mode = SPP_MODE_SW;
}

/* ---- PUSHF: the stored RFLAGS image carries the guest's TF, not ours ---- */

static void pushf_step(u64 guest_rflags)
{
	set_guest(guest_rflags);
	start(true);
	/* PUSHF (64-bit operand) with our TF set: stores the RFLAGS it sees. */
	u64 image = fake_vmcs_get(VMCS_GUEST_RFLAGS);
	assert_true(image & RFLAGS_TF);
	fake_vmcs_set(VMCS_GUEST_RSP, G_RSP - 8);
	memcpy(gp(G_RSP - 8), &image, 8);
	retire();
	assert_true(db_exit(QUAL_BS));
	assert_controls_restored();
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_RSP), G_RSP - 8);
	assert_int_equal(stat_of(STAT_EMULATED_WRITES), 1);
	assert_int_equal(ring_head(), 0);
}

static u64 stored_image(u64 gpa)
{
	u64 v;
	memcpy(&v, gp(gpa), 8);
	return v;
}

static void test_pushf_guest_tf0(void **state)
{
	(void)state;
	pushf_step(G_RFLAGS);
	assert_int_equal(stored_image(G_RSP - 8), G_RFLAGS);
	assert_nothing_injected();
}

static void test_pushf_guest_tf1(void **state)
{
	(void)state;
	pushf_step(G_RFLAGS | RFLAGS_TF);
	assert_int_equal(stored_image(G_RSP - 8), G_RFLAGS | RFLAGS_TF);
	assert_int_equal(fake_vmcs_get(VMCS_CTRL_ENTRY_INTR_INFO), INTR_INFO_VALID | INTR_TYPE_HW_EXCEPTION | VEC_DB);
}

static void test_pushf_uses_ss_base(void **state)
{
	(void)state;
	/* 32-bit protected mode without paging, SS based at 4 MiB: the PUSHF stored at
	 * SS.base + ESP, and that is the image to correct; nothing at ESP itself may change. */
	const u64 ss_base = MiB(4), esp = G_RSP - ss_base;
	fake_vmcs_set(VMCS_GUEST_SS_BASE, ss_base);
	fake_vmcs_set(VMCS_GUEST_SS_AR, 0xc093); /* 32-bit stack, DPL 0 */
	set_guest(G_RFLAGS);
	fake_vmcs_set(VMCS_GUEST_RSP, esp);
	/* Something that looks like an RFLAGS image where ESP - 4 would point physically. */
	u64 bystander = esp - 4;
	assert_true(bystander >= W_BASE && bystander + 8 <= W_BASE + RAM_SIZE);
	memset(gp(bystander), 0xff, 8);
	start(true);
	u32 image = (u32)fake_vmcs_get(VMCS_GUEST_RFLAGS);
	assert_true(image & RFLAGS_TF);
	fake_vmcs_set(VMCS_GUEST_RSP, esp - 4);
	memcpy(gp(ss_base + esp - 4), &image, 4);
	retire();
	assert_true(db_exit(QUAL_BS));
	for (unsigned i = 0; i < 8; i++)
		assert_int_equal(gp(bystander)[i], 0xff);
	u32 stored;
	memcpy(&stored, gp(ss_base + esp - 4), 4);
	assert_int_equal(stored, (u32)G_RFLAGS);
}

static void test_pushf_fix_never_writes_protected_byte(void **state)
{
	(void)state;
	/* The stack slot is in a protected sub-page that already holds the image PUSHF stores
	 * (with our TF): the step changes no protected byte, so it stands - and then the TF
	 * correction must not change the protected byte either (ABI section 4.5). */
	const u64 slot = PAGE_GPA + PROT_OFF;
	set_guest(G_RFLAGS);
	fake_vmcs_set(VMCS_GUEST_RSP, slot + 8);
	u64 image = G_RFLAGS | RFLAGS_TF;
	memcpy(gp(slot), &image, 8);
	memcpy(saved, page(), PAGE_SIZE);
	start(true);
	fake_vmcs_set(VMCS_GUEST_RSP, slot);
	memcpy(gp(slot), &image, 8); /* PUSHF: same bytes */
	retire();
	assert_true(db_exit(QUAL_BS));
	assert_memory_equal(page() + PROT_OFF - PROT_OFF % 128, saved + PROT_OFF - PROT_OFF % 128, 128);
}

/* ---- TRACK pages: a write to a protected sub-page lands and is reported (ABI 4.3) ---- */

static void test_track_page_write_reported(void **state)
{
	(void)state;
	protect(PAGE_MAP, TESSEL_SPP_TRACK_FLAG);
	start(false);
	page()[PROT_OFF] ^= 0xff;
	retire();
	u8 expect[PAGE_SIZE];
	memcpy(expect, page(), PAGE_SIZE);
	assert_true(db_exit(QUAL_BS));
	assert_memory_equal(page(), expect, PAGE_SIZE);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_RIP), G_RIP + G_LEN);
	assert_controls_restored();
	assert_int_equal(ring_head(), 1);
	assert_int_equal(ring_entry(0).kind, TESSEL_EV_TRACKED);
	assert_int_equal(stat_of(STAT_SPP_TRACKED), 1);
}

/* ---- the monitor trap flag path (these run before the MTF self-test failure below) ---- */

static void grant_mtf(void)
{
	vmx_caps.proc = (u64)PROC_MONITOR_TRAP_FLAG << 32;
	spp_step_set_mtf(true);
	assert_true(spp_step_uses_mtf());
}

static void mtf_step(u64 guest_rflags)
{
	grant_mtf();
	set_guest(guest_rflags);
	start(false);
	assert_int_equal(fake_vmcs_get(VMCS_CTRL_PROC_BASED), OLD_PROC | PROC_MONITOR_TRAP_FLAG);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_RFLAGS), guest_rflags);
	assert_int_equal(fake_vmcs_get(VMCS_CTRL_EXCEPTION_BITMAP), OLD_EXC);
	assert_int_equal(fake_vmcs_get(VMCS_CTRL_PIN_BASED), OLD_PIN | PIN_EXT_INTR_EXITING);
	assert_true(*leaf() & EPT_W);
	memset(page() + WR_OFF, 0x77, 32);
	retire();
}

static void test_mtf_clean_write(void **state)
{
	(void)state;
	mtf_step(G_RFLAGS);
	u8 expect[PAGE_SIZE];
	memcpy(expect, page(), PAGE_SIZE);
	assert_true(spp_step_exit(&cpu, EXIT_REASON_MTF));
	assert_memory_equal(page(), expect, PAGE_SIZE);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_RIP), G_RIP + G_LEN);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_RFLAGS), G_RFLAGS);
	assert_controls_restored();
	assert_nothing_injected();
	assert_int_equal(stat_of(STAT_EMULATED_WRITES), 1);
}

static void test_mtf_guest_tf1_not_injected(void **state)
{
	(void)state;
	/* With MTF the guest's TF was live: the processor delivered its #DB itself. */
	mtf_step(G_RFLAGS | RFLAGS_TF);
	assert_true(spp_step_exit(&cpu, EXIT_REASON_MTF));
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_RFLAGS), G_RFLAGS | RFLAGS_TF);
	assert_controls_restored();
	assert_nothing_injected();
}

static void test_mtf_protected_write_discarded(void **state)
{
	(void)state;
	mtf_step(G_RFLAGS);
	page()[PROT_OFF] ^= 0xff;
	assert_true(spp_step_exit(&cpu, EXIT_REASON_MTF));
	assert_memory_equal(page(), saved, PAGE_SIZE);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_RIP), G_RIP + G_LEN);
	assert_controls_restored();
	assert_int_equal(ring_head(), 1);
	assert_int_equal(ring_entry(0).kind, TESSEL_EV_DISCARDED);
	assert_int_equal(stat_of(STAT_SPP_DENIED), 1);
}

static void test_mtf_db_exit_is_not_the_end(void **state)
{
	(void)state;
	/* With MTF, a #DB exit is someone else's: the step is undone, the caller handles it. */
	mtf_step(G_RFLAGS);
	fake_vmcs_set(VMCS_GUEST_RIP, G_RIP);
	assert_false(db_exit(QUAL_BS));
	assert_memory_equal(page(), saved, PAGE_SIZE);
	assert_controls_restored();
	assert_nothing_injected();
}

static void test_mtf_keeps_callers_mtf(void **state)
{
	(void)state;
	/* MTF already on before the step (self-test entry): left on afterwards. */
	fake_vmcs_set(VMCS_CTRL_PROC_BASED, OLD_PROC | PROC_MONITOR_TRAP_FLAG);
	grant_mtf();
	start(false);
	retire();
	assert_true(spp_step_exit(&cpu, EXIT_REASON_MTF));
	assert_int_equal(fake_vmcs_get(VMCS_CTRL_PROC_BASED), OLD_PROC | PROC_MONITOR_TRAP_FLAG);
	assert_null(cpu.step);
}

/* Last: spp_step_set_mtf(false) is one-way for the life of the hypervisor. */
static void test_mtf_selftest_failure_uses_tf(void **state)
{
	(void)state;
	vmx_caps.proc = (u64)PROC_MONITOR_TRAP_FLAG << 32;
	spp_step_set_mtf(false);
	assert_false(spp_step_uses_mtf());
	spp_step_set_mtf(true); /* another CPU's self-test passing does not undo it */
	assert_false(spp_step_uses_mtf());
	start(false);
	assert_int_equal(fake_vmcs_get(VMCS_CTRL_PROC_BASED), OLD_PROC);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_RFLAGS), G_RFLAGS | RFLAGS_TF);
	retire();
	assert_true(db_exit(QUAL_BS));
	assert_controls_restored();
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_RFLAGS), G_RFLAGS);
}


/* ---- TF with blocking by STI / MOV SS (SDM 26.3.1.5) ---- */

static void test_tf_step_with_sti_blocking_sets_bs(void **state)
{
	(void)state;
	/* The instruction right after STI: VM entry with TF = 1 and STI blocking needs BS = 1
	 * in the pending debug exceptions (BTF = 0), or it fails. */
	fake_vmcs_set(VMCS_GUEST_INTERRUPTIBILITY, GUEST_INTR_BLOCK_STI);
	fake_vmcs_set(VMCS_GUEST_PENDING_DBG_EXC, 0);
	fake_vmcs_set(VMCS_GUEST_IA32_DEBUGCTL, 0);
	start(false);
	assert_true(fake_vmcs_get(VMCS_GUEST_PENDING_DBG_EXC) & DR6_BS);
	/* An NMI exit before the instruction: TF goes back to the guest's 0 with the blocking
	 * still there, so BS must be 0 again. */
	fake_vmcs_set(VMCS_RO_EXIT_INTR_INFO, INTR_INFO_VALID | INTR_TYPE_NMI | 2);
	assert_false(spp_step_exit(&cpu, EXIT_REASON_EXCEPTION_NMI));
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_RFLAGS), G_RFLAGS);
	assert_false(fake_vmcs_get(VMCS_GUEST_PENDING_DBG_EXC) & DR6_BS);
}

static void test_tf_step_with_mov_ss_blocking_and_btf(void **state)
{
	(void)state;
	/* With IA32_DEBUGCTL.BTF = 1 the rule is the other way round: BS must be 0. */
	fake_vmcs_set(VMCS_GUEST_INTERRUPTIBILITY, GUEST_INTR_BLOCK_MOV_SS);
	fake_vmcs_set(VMCS_GUEST_PENDING_DBG_EXC, DR6_BS);
	fake_vmcs_set(VMCS_GUEST_IA32_DEBUGCTL, 2);
	start(false);
	assert_false(fake_vmcs_get(VMCS_GUEST_PENDING_DBG_EXC) & DR6_BS);
}

/* ---- every step is bounded, and must have run what was decoded ---- */

static void grant_timer(void) { vmx_caps.pin = (u64)PIN_PREEMPTION_TIMER << 32; }

static void test_step_bounded_by_preemption_timer(void **state)
{
	(void)state;
	grant_timer();
	start(false);
	assert_true(fake_vmcs_get(VMCS_CTRL_PIN_BASED) & PIN_PREEMPTION_TIMER);
	assert_true(fake_vmcs_get(VMCS_GUEST_PREEMPT_TIMER) != 0);
	/* The instruction was replaced by a POPF that cleared TF: no #DB comes; the guest ran
	 * on elsewhere and wrote a protected byte. The timer ends it. */
	partial_write();
	fake_vmcs_set(VMCS_GUEST_RIP, G_RIP + 0x200);
	fake_vmcs_set(VMCS_GUEST_RFLAGS, G_RFLAGS);
	assert_false(spp_step_exit(&cpu, EXIT_REASON_PREEMPT_TIMER));
	assert_memory_equal(page(), saved, PAGE_SIZE);
	assert_controls_restored();
	assert_int_equal(stat_of(STAT_EMULATED_WRITES), 0);
}

static void test_step_timer_after_completion_counts(void **state)
{
	(void)state;
	/* The timer fired right after the instruction completed (before its trap): the write to
	 * a writable sub-page stands, and the trap left pending does not reach the guest. */
	grant_timer();
	start(false);
	memset(page() + WR_OFF, 0x33, 16);
	retire();
	fake_vmcs_set(VMCS_GUEST_PENDING_DBG_EXC, DR6_BS);
	assert_true(spp_step_exit(&cpu, EXIT_REASON_PREEMPT_TIMER));
	assert_int_equal(page()[WR_OFF], 0x33);
	assert_int_equal(stat_of(STAT_EMULATED_WRITES), 1);
	assert_false(fake_vmcs_get(VMCS_GUEST_PENDING_DBG_EXC) & DR6_BS);
	assert_controls_restored();
	assert_nothing_injected();
}

static void test_step_replaced_instruction_undone(void **state)
{
	(void)state;
	start(false);
	/* Another vCPU replaced the instruction with POPF (1 byte) and it kept TF: the #DB comes
	 * after one byte. What ran is not what was decoded: nothing of it may stand. */
	gp(G_RIP)[0] = 0x9d;
	memset(page() + WR_OFF, 0x11, 16);
	fake_vmcs_set(VMCS_GUEST_RIP, G_RIP + 1);
	assert_true(db_exit(QUAL_BS));
	assert_memory_equal(page(), saved, PAGE_SIZE);
	assert_controls_restored();
	assert_int_equal(stat_of(STAT_EMULATED_WRITES), 0);
	assert_nothing_injected();
}

static void test_step_replaced_same_length_undone(void **state)
{
	(void)state;
	start(false);
	/* Same length, other bytes (an INT3 in the middle of a 4-byte MOV, say): undone. */
	gp(G_RIP)[3] = 0xcc;
	memset(page() + WR_OFF, 0x22, 16);
	retire();
	assert_true(db_exit(QUAL_BS));
	assert_memory_equal(page(), saved, PAGE_SIZE);
	assert_int_equal(stat_of(STAT_EMULATED_WRITES), 0);
}

/* ---- event delivery ---- */

#define VEC_INFO_EXT(v) (INTR_INFO_VALID | INTR_TYPE_EXT_INTR | (v))
#define HANDLER_RIP 0xffff800000001000ULL

static void set_delivering(u32 info)
{
	fake_vmcs_set(VMCS_RO_IDT_VECTORING_INFO, info);
	fake_vmcs_set(VMCS_GUEST_CS_SEL, 0x33);
	fake_vmcs_set(VMCS_GUEST_SS_SEL, 0x2b);
	fake_vmcs_set(VMCS_GUEST_CS_AR, 0xa0fb);
}

static void delivered(u64 rsp)
{
	/* The processor delivered the event: the handler's first instruction is next. */
	fake_vmcs_set(VMCS_RO_IDT_VECTORING_INFO, 0);
	fake_vmcs_set(VMCS_GUEST_RIP, HANDLER_RIP);
	fake_vmcs_set(VMCS_GUEST_RSP, rsp);
	fake_vmcs_set(VMCS_GUEST_RFLAGS, RFLAGS_FIXED);
	fake_vmcs_set(VMCS_GUEST_CS_SEL, 0x10);
	fake_vmcs_set(VMCS_GUEST_SS_SEL, 0);
	fake_vmcs_set(VMCS_GUEST_CS_AR, 0xa09b);
}

static void start_delivery(u64 gfn, u64 gpa)
{
	spin_lock(&spp.lock);
	bool ok = spp_step_delivery(&cpu, gfn, gpa, 0);
	spin_unlock(&spp.lock);
	assert_true(ok);
}

static void test_delivery_partly_on_protected_bytes_gets_df(void **state)
{
	(void)state;
	grant_timer();
	set_delivering(VEC_INFO_EXT(0x30));
	/* The frame's first write is in writable sub-page 15; the frame runs on into protected
	 * sub-page 16. */
	start_delivery(PAGE_GFN, PAGE_GPA + 0x7f8);
	memset(page() + 0x7d8, 0xee, 0x30);
	delivered(PAGE_GPA + 0x7d8);
	assert_true(spp_step_exit(&cpu, EXIT_REASON_PREEMPT_TIMER));
	/* Nothing of the frame stands, the guest is back where the event came, and gets #DF. */
	assert_memory_equal(page(), saved, PAGE_SIZE);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_RIP), G_RIP);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_RSP), G_RSP);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_RFLAGS), G_RFLAGS);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_CS_SEL), 0x33);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_SS_SEL), 0x2b);
	assert_int_equal(fake_vmcs_get(VMCS_CTRL_ENTRY_INTR_INFO) & (INTR_INFO_VALID | INTR_TYPE_MASK | INTR_VECTOR_MASK),
			 INTR_INFO_VALID | INTR_TYPE_HW_EXCEPTION | VEC_DF);
	assert_int_equal(ring_head(), 1);
	assert_int_equal(ring_entry(0).kind, TESSEL_EV_DENIED);
	assert_int_equal(ring_entry(0).gpa, PAGE_GPA + 0x800);
	assert_false(*leaf() & EPT_W);
	assert_null(cpu.step);
}

static void test_delivery_on_writable_bytes_stands(void **state)
{
	(void)state;
	grant_timer();
	set_delivering(VEC_INFO_EXT(0x30));
	start_delivery(PAGE_GFN, PAGE_GPA + 0x7f8);
	memset(page() + 0x7c8, 0xee, 0x30);
	u8 expect[PAGE_SIZE];
	memcpy(expect, page(), PAGE_SIZE);
	delivered(PAGE_GPA + 0x7c8);
	assert_true(spp_step_exit(&cpu, EXIT_REASON_PREEMPT_TIMER));
	assert_memory_equal(page(), expect, PAGE_SIZE);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_RIP), HANDLER_RIP);
	assert_int_equal(fake_vmcs_get(VMCS_CTRL_ENTRY_INTR_INFO), 0);
	assert_int_equal(ring_head(), 0);
	assert_false(*leaf() & EPT_W);
}

/* Two more protected pages: A's last sub-page and B's first are the only writable ones. */
#define PAGE_A (W_BASE + MiB(9))
#define PAGE_B (PAGE_A + PAGE_SIZE)

static u64 *leaf_at(u64 gpa)
{
	int level = 0;
	u64 *e = ept_leaf(&ept, gpa, &level);
	assert_non_null(e);
	assert_int_equal(level, 1);
	return e;
}

static void test_delivery_straddling_two_protected_pages(void **state)
{
	(void)state;
	grant_timer();
	u32 *maps = (u32 *)gp(MAP_GPA);
	maps[0] = 1u << 31;
	maps[1] = 1u << 0;
	assert_int_equal(hcall(HC_SPP_SET, PAGE_A >> PAGE_SHIFT, 2, MAP_GPA, 0), 0);
	set_delivering(VEC_INFO_EXT(0x30));
	start_delivery(PAGE_A >> PAGE_SHIFT, PAGE_A + 0xff8);
	assert_true(*leaf_at(PAGE_A) & EPT_W);
	/* The frame goes on into B, which is not writable: an EPT violation during delivery.
	 * One step must open both (it used to give up, and the next delivery opened B and
	 * faulted on A: for ever). */
	fake_vmcs_set(VMCS_RO_EXIT_QUALIFICATION, EPT_QUAL_WRITE);
	fake_vmcs_set(VMCS_RO_GUEST_PHYS_ADDR, PAGE_B + 0x8);
	assert_true(spp_step_exit(&cpu, EXIT_REASON_EPT_VIOLATION));
	assert_non_null(cpu.step);
	assert_true(*leaf_at(PAGE_A) & EPT_W);
	assert_true(*leaf_at(PAGE_B) & EPT_W);
	memset(gp(PAGE_A + 0xfe0), 0xee, 0x20);
	memset(gp(PAGE_B), 0xee, 0x10);
	delivered(PAGE_A + 0xfe0);
	assert_true(spp_step_exit(&cpu, EXIT_REASON_PREEMPT_TIMER));
	assert_null(cpu.step);
	assert_false(*leaf_at(PAGE_A) & EPT_W);
	assert_false(*leaf_at(PAGE_B) & EPT_W);
	assert_int_equal(gp(PAGE_A + 0xfe0)[0], 0xee);
	assert_int_equal(gp(PAGE_B + 0xf)[0], 0xee);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_RIP), HANDLER_RIP);
	assert_int_equal(ring_head(), 0);
}

/* ---- a second vCPU: wait-for-SIPI against a stopped world ---- */

static struct percpu ap;
static struct guest_regs ap_regs;
static volatile bool ap_returned;

static void add_ap(void)
{
	memset(&ap, 0, sizeof(ap));
	ap.self = &ap;
	ap.regs = &ap_regs;
	ap.index = 1;
	ap.apic_id = 9;
	ap.launched = true;
	percpu_array[1] = &ap;
	percpu_count = 2;
	ap_returned = false;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static bool wait_for(volatile bool *flag, long ms)
{
	for (long i = 0; i < ms && !__atomic_load_n(flag, __ATOMIC_SEQ_CST); i++)
		sleep_ms(1);
	return __atomic_load_n(flag, __ATOMIC_SEQ_CST);
}

static void *ap_park(void *arg)
{
	(void)arg;
	fake_cpu_local_set(&ap);
	vapic_check_init(&ap);
	__atomic_store_n(&ap_returned, true, __ATOMIC_SEQ_CST);
	return NULL;
}

static void test_sipi_while_world_stopped_waits_for_resume(void **state)
{
	(void)state;
	add_ap();
	ap.vsipi_vector = -1; /* what the INIT's sender does first (hv/vapic.c deliver) */
	ap.vinit_pending = true;
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, ap_park, NULL), 0);
	assert_true(wait_for((volatile bool *)&ap.wait_sipi, 2000));
	sleep_ms(20); /* past vcpu_init_state (the fake VMCS is shared) */
	set_guest(G_RFLAGS);
	start(false); /* stops the world: the parked AP is not waited for */
	ap.vsipi_vector = 0x9a; /* its SIPI arrives */
	sleep_ms(100);
	bool entered_early = __atomic_load_n(&ap_returned, __ATOMIC_SEQ_CST);
	fake_vmcs_set(VMCS_RO_EXIT_INTR_INFO, INTR_INFO_VALID | INTR_TYPE_NMI | 2);
	spp_step_exit(&cpu, EXIT_REASON_EXCEPTION_NMI); /* the step ends: the world resumes */
	bool entered = wait_for(&ap_returned, 2000);
	pthread_join(t, NULL);
	assert_false(entered_early); /* was: it went on into the guest with the page open */
	assert_true(entered);
	assert_false(ap.wait_sipi);
}

static void *bsp_exit(void *arg)
{
	fake_cpu_local_set(&cpu);
	vmx_handle_exit(arg, (u32)fake_vmcs_get(VMCS_RO_EXIT_REASON));
	__atomic_store_n(&ap_returned, true, __ATOMIC_SEQ_CST);
	return NULL;
}

static void test_init_right_after_step_start_does_not_park(void **state)
{
	(void)state;
	ap_returned = false;
	/* An EPT violation by FXSAVE [EDI] (32-bit code) on a writable sub-page: a step starts
	 * in the exit handler; a virtual INIT for this vCPU is pending at the same time. */
	const u8 fxsave[] = { 0x0f, 0xae, 0x07, 0x90 };
	memcpy(gp(G_RIP), fxsave, sizeof(fxsave));
	fake_vmcs_set(VMCS_GUEST_CS_AR, 0xc09b);
	regs.gpr[GPR_DI] = PAGE_GPA + WR_OFF;
	fake_vmcs_set(VMCS_RO_EXIT_REASON, EXIT_REASON_EPT_VIOLATION);
	fake_vmcs_set(VMCS_RO_EXIT_QUALIFICATION, EPT_QUAL_WRITE);
	fake_vmcs_set(VMCS_RO_GUEST_PHYS_ADDR, PAGE_GPA + WR_OFF);
	cpu.vinit_pending = true;
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, bsp_exit, &regs), 0);
	bool returned = wait_for(&ap_returned, 1000);
	if (!returned)
		cpu.vsipi_vector = 0; /* release it: it parked with the world stopped */
	pthread_join(t, NULL);
	assert_true(returned); /* was: parked for a SIPI with every other CPU paused */
	assert_non_null(cpu.step);
	assert_true(cpu.vinit_pending); /* taken at the exit that ends the step */
	assert_false(cpu.wait_sipi);
}

/* ---- a pause NMI that lands while the other CPU holds a lock ---- */

static volatile bool lock_held, stepper_done, step_started, ap_done;

static void *ap_holding_ept_lock(void *arg)
{
	(void)arg;
	fake_cpu_local_set(&ap);
	spin_lock(&spp.ept->lock); /* e.g. ept_violation_stale on an exit of its own */
	__atomic_store_n(&lock_held, true, __ATOMIC_SEQ_CST);
	sleep_ms(50);              /* the stepper has asked it to pause by now */
	spp_step_pause_nmi();      /* the pause NMI lands here, inside the critical section */
	spin_unlock(&spp.ept->lock);
	__atomic_store_n(&ap_done, true, __ATOMIC_SEQ_CST);
	return NULL;
}

static void *stepper(void *arg)
{
	(void)arg;
	fake_cpu_local_set(&cpu);
	spin_lock(&spp.lock);
	bool ok = spp_step_start(&cpu, PAGE_GFN, G_LEN, PAGE_GPA + PROT_OFF, G_GLA, false, ~0U);
	spin_unlock(&spp.lock);
	__atomic_store_n(&step_started, ok, __ATOMIC_SEQ_CST);
	__atomic_store_n(&stepper_done, true, __ATOMIC_SEQ_CST);
	return NULL;
}

/* The stepping CPU stops the world and then needs the EPT lock to open the page. A CPU whose
 * pause NMI interrupted it inside that lock must not pause there (it would keep the lock for
 * good: both CPUs spin for ever); it pauses at its unlock instead. */
static void test_pause_deferred_while_holding_a_lock(void **state)
{
	(void)state;
	add_ap();
	lock_held = stepper_done = step_started = ap_done = false;
	percpu_gs_ready = true;
	pthread_t ta, ts;
	assert_int_equal(pthread_create(&ta, NULL, ap_holding_ept_lock, NULL), 0);
	assert_true(wait_for(&lock_held, 2000));
	assert_int_equal(pthread_create(&ts, NULL, stepper, NULL), 0);
	bool done = wait_for(&stepper_done, 3000);
	if (!done) {
		percpu_gs_ready = false;
		fail_msg("the step never started: the paused CPU kept the EPT lock (deadlock)");
	}
	pthread_join(ts, NULL);
	assert_true(step_started);
	assert_true(*leaf() & EPT_W); /* the page is open for the step */
	bool early = __atomic_load_n(&ap_done, __ATOMIC_SEQ_CST);
	assert_false(early);          /* the AP is paused (at its unlock) while the page is open */
	assert_int_equal(ap.locks_held, 0);
	fake_vmcs_set(VMCS_RO_EXIT_INTR_INFO, INTR_INFO_VALID | INTR_TYPE_NMI | 2);
	spp_step_exit(&cpu, EXIT_REASON_EXCEPTION_NMI); /* the step ends: the world resumes */
	assert_true(wait_for(&ap_done, 2000));
	pthread_join(ta, NULL);
	assert_false(*leaf() & EPT_W);
	percpu_gs_ready = false;
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_tf_clean_write_guest_tf0),
		T(test_tf_clean_write_guest_tf1),
		T(test_tf_guest_if0_keeps_pin_controls),
		T(test_tf_guest_breakpoint_with_step),
		T(test_protected_write_discarded),
		T(test_protected_write_discarded_guest_tf1),
		T(test_abort_external_interrupt),
		T(test_abort_ept_violation),
		T(test_abort_nmi),
		T(test_abort_guest_instruction_breakpoint),
		T(test_abort_other_exception),
		T(test_start_refused_outside_sw_mode),
		T(test_pushf_guest_tf0),
		T(test_pushf_guest_tf1),
		T(test_pushf_uses_ss_base),
		T(test_pushf_fix_never_writes_protected_byte),
		T(test_track_page_write_reported),
		T(test_mtf_clean_write),
		T(test_mtf_guest_tf1_not_injected),
		T(test_mtf_protected_write_discarded),
		T(test_mtf_db_exit_is_not_the_end),
		T(test_mtf_keeps_callers_mtf),
		T(test_tf_step_with_sti_blocking_sets_bs),
		T(test_tf_step_with_mov_ss_blocking_and_btf),
		T(test_step_bounded_by_preemption_timer),
		T(test_step_timer_after_completion_counts),
		T(test_step_replaced_instruction_undone),
		T(test_step_replaced_same_length_undone),
		T(test_delivery_partly_on_protected_bytes_gets_df),
		T(test_delivery_on_writable_bytes_stands),
		T(test_delivery_straddling_two_protected_pages),
		T(test_sipi_while_world_stopped_waits_for_resume),
		T(test_init_right_after_step_start_does_not_park),
		T(test_pause_deferred_while_holding_a_lock),
		T(test_mtf_selftest_failure_uses_tf),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
