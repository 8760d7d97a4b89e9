/*
 * Host tests for control-register and MSR pinning (ABI 1.2: HC_PIN_CR, HC_PIN_MSR; hv/pin.c,
 * hv/exit_cr.c, hv/msr_policy.c) over the fake hardware layer, in software-SPP mode so the
 * event ring works. Each test plays the processor's part (the VMCALL, CR-access and WRMSR
 * exits and their VMCS fields) and checks what the guest can see: the CR0/CR4 value it reads
 * (guest/host mask, read shadow, real register), the MSR values, the injected #GP, the
 * status and result registers of the calls, HC_STATS pin_denied and the kind-5 events.
 *
 * "Would the write exit?" is checked as the processor decides it (SDM 25.1.3: MOV to CR0/CR4
 * exits when a bit set in the mask differs from the read shadow), so a refused write cannot
 * reach the register without the hypervisor seeing it.
 *
 * The hypervisor has no other CR write paths: its instruction emulator (hv/emulate*.c)
 * emulates memory writes only (MOV CR decodes as an instruction it does not emulate), task
 * switches are not emulated (#GP), and the only other writers of CR0/CR4 are VM-entry setup
 * (hv/vmx.c) and INIT (hv/exit_misc.c), both covered here.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include <hw.h>
#include <machine.h>
#include <arch/cpu.h>
#include <arch/ept.h>
#include <arch/msr.h>
#include <arch/vmx.h>
#include <tessel/bootinfo.h>
#include <tessel/config.h>
#include "drivers/uart.h"
#include "hv/abi.h"
#include "hv/exit.h"
#include "hv/hypercall.h"
#include "hv/log.h"
#include "hv/percpu.h"
#include "hv/pin.h"
#include "hv/stats.h"
#include "hv/vapic.h"
#include "hv/vcpu.h"
#include "hv/vmcs.h"
#include "hv/vmx_caps.h"
#include "mm/ept.h"
#include "mm/memmap.h"
#include "mm/mtrr.h"
#include "mm/pmm.h"
#include "spp/spp.h"
#include "spp/step.h"

#define MiB(x) ((u64)(x) << 20)
#define RAM_SIZE MiB(48)
#define HV_BASE RAM_SIZE
#define HV_SIZE MiB(16)
#define PHYS_BITS 36
#define RING_GPA MiB(2)
#define STATS_GPA MiB(3)
#define RIP0 0x1000ULL
#define INSN_LEN 3

static struct mtrr_state mtrr;
static struct ept ept;
static struct percpu cpu, ap;
static struct guest_regs regs, ap_regs;

static const struct tessel_mem_range fw_map[] = {
	{ 0, RAM_SIZE >> PAGE_SHIFT, EFI_MT_CONVENTIONAL, 0 },
	{ HV_BASE, HV_SIZE >> PAGE_SHIFT, EFI_MT_LOADER_DATA, 0 },
};
static const struct fake_machine machine = { .hv_base = HV_BASE, .hv_size = HV_SIZE, .phys_bits = PHYS_BITS,
					     .fw_map = fw_map, .fw_count = ARRAY_SIZE(fw_map) };

static u8 *gp(u64 gpa) { return hpa_to_ptr(hpa(gpa)); }

/* The guest's mode for the CR tests: 32-bit protected mode with 32-bit paging (no PAE, so no
 * PDPTE loads, and PE, PG and WP may all be cleared architecturally). */
#define BASE_CR0 (CR0_PE | CR0_PG | CR0_WP | CR0_ET | CR0_MP)
#define BASE_CR4 (CR4_OSFXSR | CR4_PSE)
#define ALL_CR4_PIN (CR4_UMIP | CR4_SMEP | CR4_SMAP | CR4_PKE | CR4_CET | CR4_PKS)
#define BASE_MASK0 CR0_NE       /* what the VMX fixed bits make the hypervisor own (hv/vmx.c) */
#define BASE_MASK4 CR4_VMXE

static const u64 cr0_bits[] = { CR0_PE, CR0_WP, CR0_PG };
static const u64 cr4_bits[] = { CR4_UMIP, CR4_SMEP, CR4_SMAP, CR4_PKE, CR4_CET, CR4_PKS };

static u64 subset(const u64 *bits, unsigned n, unsigned sel)
{
	u64 m = 0;
	for (unsigned i = 0; i < n; i++)
		if (sel & (1U << i))
			m |= bits[i];
	return m;
}

/* A vCPU's state in the (single) fake VMCS: the tests swap two vCPUs in and out. */
struct vstate { u64 cr0, sh0, m0, cr4, sh4, m4, efer, rip; };
static void save_vstate(struct vstate *s)
{
	*s = (struct vstate){ fake_vmcs_get(VMCS_GUEST_CR0), fake_vmcs_get(VMCS_CTRL_CR0_READ_SHADOW),
			      fake_vmcs_get(VMCS_CTRL_CR0_MASK), fake_vmcs_get(VMCS_GUEST_CR4),
			      fake_vmcs_get(VMCS_CTRL_CR4_READ_SHADOW), fake_vmcs_get(VMCS_CTRL_CR4_MASK),
			      fake_vmcs_get(VMCS_GUEST_IA32_EFER), fake_vmcs_get(VMCS_GUEST_RIP) };
}
static void load_vstate(const struct vstate *s)
{
	fake_vmcs_set(VMCS_GUEST_CR0, s->cr0);
	fake_vmcs_set(VMCS_CTRL_CR0_READ_SHADOW, s->sh0);
	fake_vmcs_set(VMCS_CTRL_CR0_MASK, s->m0);
	fake_vmcs_set(VMCS_GUEST_CR4, s->cr4);
	fake_vmcs_set(VMCS_CTRL_CR4_READ_SHADOW, s->sh4);
	fake_vmcs_set(VMCS_CTRL_CR4_MASK, s->m4);
	fake_vmcs_set(VMCS_GUEST_IA32_EFER, s->efer);
	fake_vmcs_set(VMCS_GUEST_RIP, s->rip);
}

/* The guest's CR state as after hv/vmx.c: the fixed bits owned, shadows = the guest's view,
 * and, like a processor, the guest changed some bits it owns since the last exit (stale
 * shadow bits: here the shadows hold none of the pinnable bits). */
static void set_cr_state(struct percpu *c, u64 cr0, u64 cr4)
{
	c->cr0_guest_mask = BASE_MASK0;
	c->cr4_guest_mask = BASE_MASK4;
	fake_vmcs_set(VMCS_CTRL_CR0_MASK, BASE_MASK0);
	fake_vmcs_set(VMCS_CTRL_CR4_MASK, BASE_MASK4);
	fake_vmcs_set(VMCS_GUEST_CR0, cr0 | CR0_NE);
	fake_vmcs_set(VMCS_CTRL_CR0_READ_SHADOW, cr0 & ~(CR0_PE | CR0_PG | CR0_WP));
	fake_vmcs_set(VMCS_GUEST_CR4, cr4 | CR4_VMXE);
	fake_vmcs_set(VMCS_CTRL_CR4_READ_SHADOW, cr4 & ~ALL_CR4_PIN);
	fake_vmcs_set(VMCS_GUEST_IA32_EFER, 0);
	fake_vmcs_set(VMCS_GUEST_CS_AR, 0xc09b);
	fake_vmcs_set(VMCS_GUEST_RIP, RIP0);
}

static s64 hcall_out(u64 nr, u64 a0, u64 a1, u64 a2, u64 a3, struct hc_args *out)
{
	struct hc_args a = { .nr = nr, .arg = { a0, a1, a2, a3 } };
	s64 r = hypercall_dispatch(&cpu, &a, 0);
	if (out)
		*out = a;
	return r;
}
static s64 hcall(u64 nr, u64 a0, u64 a1, u64 a2, u64 a3) { return hcall_out(nr, a0, a1, a2, a3, NULL); }

static u64 stat_of(enum stat s)
{
	u64 out[STAT_COUNT];
	stats_snapshot(out);
	return out[s];
}

struct __attribute__((packed)) ring_entry { u64 gpa, rip, gla; u32 vcpu; u16 kind, bytes; };
static u32 ring_head(void) { return *(u32 *)gp(RING_GPA); }
static struct ring_entry ring_entry(u32 k)
{
	struct ring_entry e;
	memcpy(&e, gp(RING_GPA + 64 + (u64)k * 32), sizeof(e));
	return e;
}
static void ring_consume(void) { *(u32 *)gp(RING_GPA + 4) = ring_head(); }

static void expect_event(u32 k, u64 gpa, u64 rip, u64 gla, u32 vcpu)
{
	struct ring_entry e = ring_entry(k);
	assert_int_equal(e.kind, TESSEL_EV_PIN);
	assert_int_equal(e.gpa, gpa);
	assert_int_equal(e.rip, rip);
	assert_int_equal(e.gla, gla);
	assert_int_equal(e.vcpu, vcpu);
	assert_int_equal(e.bytes, 0);
}

static int setup(void **state)
{
	(void)state;
	fake_reset();
	fake_phys_init(0, RAM_SIZE + HV_SIZE);
	memset(gp(0), 0, RAM_SIZE);
	fake_machine_cpu(&cpu, &regs, 0, 3);
	fake_machine_cpu(&ap, &ap_regs, 1, 5);
	ap.wait_sipi = true; /* the shootdown skips it unless a test says otherwise */
	fake_cpu_local_set(&cpu);
	memset(stat_counters, 0, sizeof(u64) * STAT_COUNT * TESSEL_MAX_CPUS);
	memset(&vmx_caps, 0, sizeof(vmx_caps));
	vmx_caps.phys_bits = PHYS_BITS;
	vmx_caps.cr0_fixed0 = CR0_PE | CR0_NE | CR0_PG;
	vmx_caps.cr0_fixed1 = 0xffffffffULL;
	vmx_caps.cr4_fixed0 = CR4_VMXE;
	vmx_caps.cr4_fixed1 = 0x1ffffffULL & ~CR4_LA57; /* up to PKS (bit 24), 4-level paging */
	log_init(UART_COM1, CFG_LOG_DEBUG);
	pin_reset();

	fake_vmcs_set(VMCS_GUEST_SS_AR, 0xc093);
	fake_vmcs_set(VMCS_GUEST_RFLAGS, RFLAGS_FIXED);
	fake_vmcs_set(VMCS_RO_EXIT_INSN_LEN, INSN_LEN);
	fake_vmcs_set(VMCS_GUEST_CR3, 0x5000);
	set_cr_state(&cpu, BASE_CR0, BASE_CR4 | ALL_CR4_PIN);

	assert_int_equal(fake_machine_spp(&machine, &mtrr, &ept, CFG_SPP_SW), 0);
	assert_int_equal(hcall(HC_EVENTS_SETUP, RING_GPA, 1, 0, 0), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	fake_cpu_local_set(NULL);
	fake_phys_fini();
	return 0;
}

/* ---- what the processor does ---- */

/* Would a MOV of `val` to CRn exit (SDM 25.1.3)? */
static bool mov_exits(unsigned cr, u64 val)
{
	u64 mask = fake_vmcs_get(cr == 0 ? VMCS_CTRL_CR0_MASK : VMCS_CTRL_CR4_MASK);
	u64 shadow = fake_vmcs_get(cr == 0 ? VMCS_CTRL_CR0_READ_SHADOW : VMCS_CTRL_CR4_READ_SHADOW);
	return ((val ^ shadow) & mask) != 0;
}

/* What the guest reads from CRn (SDM 25.3: owned bits from the shadow). */
static u64 guest_reads(unsigned cr)
{
	u64 mask = fake_vmcs_get(cr == 0 ? VMCS_CTRL_CR0_MASK : VMCS_CTRL_CR4_MASK);
	u64 shadow = fake_vmcs_get(cr == 0 ? VMCS_CTRL_CR0_READ_SHADOW : VMCS_CTRL_CR4_READ_SHADOW);
	u64 real = fake_vmcs_get(cr == 0 ? VMCS_GUEST_CR0 : VMCS_GUEST_CR4);
	return (real & ~mask) | (shadow & mask);
}

/* MOV to CRn from RBX as the processor does it: either no exit (the guest-owned bits go to
 * the register) or a CR-access exit. Returns true if the guest got #GP(0). */
static bool guest_mov_cr(struct percpu *c, unsigned cr, u64 val)
{
	fake_vmcs_set(VMCS_CTRL_ENTRY_INTR_INFO, 0);
	/* The instruction's own faults come before the exit (SDM 25.1.1); the one these tests
	 * can meet without an exit: PG without PE. */
	if (cr == 0 && (val & CR0_PG) && !(val & CR0_PE) && !mov_exits(cr, val))
		return true;
	if (!mov_exits(cr, val)) {
		u64 mask = fake_vmcs_get(cr == 0 ? VMCS_CTRL_CR0_MASK : VMCS_CTRL_CR4_MASK);
		u64 f = cr == 0 ? VMCS_GUEST_CR0 : VMCS_GUEST_CR4;
		fake_vmcs_set(f, (fake_vmcs_get(f) & mask) | (val & ~mask));
		fake_vmcs_set(VMCS_GUEST_RIP, fake_vmcs_get(VMCS_GUEST_RIP) + INSN_LEN);
		return false;
	}
	c->regs->gpr[GPR_BX] = val;
	fake_vmcs_set(VMCS_RO_EXIT_QUALIFICATION, cr | (0u << 4) | (GPR_BX << 8));
	exit_cr_access(c);
	u32 info = (u32)fake_vmcs_get(VMCS_CTRL_ENTRY_INTR_INFO);
	if (!(info & INTR_INFO_VALID))
		return false;
	assert_int_equal(info & INTR_VECTOR_MASK, 13);
	return true;
}

/* LMSW / CLTS through their exits (the tests make them exit by owning the bits). */
static void guest_lmsw(struct percpu *c, u16 src)
{
	fake_vmcs_set(VMCS_CTRL_ENTRY_INTR_INFO, 0);
	fake_vmcs_set(VMCS_RO_EXIT_QUALIFICATION, 0 | (3u << 4) | ((u64)src << 16));
	exit_cr_access(c);
}
static void guest_clts(struct percpu *c)
{
	fake_vmcs_set(VMCS_CTRL_ENTRY_INTR_INFO, 0);
	fake_vmcs_set(VMCS_RO_EXIT_QUALIFICATION, 0 | (2u << 4));
	exit_cr_access(c);
}

/* WRMSR through its exit. Returns true if the guest got #GP(0). */
static bool guest_wrmsr(u32 msr, u64 v)
{
	fake_vmcs_set(VMCS_CTRL_ENTRY_INTR_INFO, 0);
	regs.gpr[GPR_CX] = msr;
	regs.gpr[GPR_AX] = (u32)v;
	regs.gpr[GPR_DX] = v >> 32;
	exit_wrmsr(&cpu);
	return (u32)fake_vmcs_get(VMCS_CTRL_ENTRY_INTR_INFO) & INTR_INFO_VALID;
}

/* ---- HC_PIN_CR: arguments ---- */

static void test_pin_cr_einval(void **state)
{
	(void)state;
	assert_int_equal(hcall(HC_PIN_CR, 0, CR0_WP, 0, 0), 0); /* something pinned already */
	struct vstate before;
	save_vstate(&before);
	u64 m0 = cpu.cr0_guest_mask, m4 = cpu.cr4_guest_mask;
	const struct { u64 cr, bits, rdx, rsi; } bad[] = {
		{ 1, CR0_WP, 0, 0 }, { 2, CR0_WP, 0, 0 }, { 3, CR0_WP, 0, 0 }, { 8, CR0_WP, 0, 0 },
		{ 0x100000000ULL, CR0_WP, 0, 0 }, { 0x100000004ULL, CR4_SMEP, 0, 0 }, { ~0ULL, CR0_WP, 0, 0 },
		{ 0, 0, 0, 0 }, { 4, 0, 0, 0 },                                    /* RCX = 0 */
		{ 0, CR0_TS, 0, 0 }, { 0, CR0_NE, 0, 0 }, { 0, CR0_ET, 0, 0 },      /* not pinnable */
		{ 0, CR0_WP | CR0_MP, 0, 0 }, { 0, 1ULL << 32 | CR0_WP, 0, 0 },
		{ 4, CR4_PAE, 0, 0 }, { 4, CR4_OSFXSR | CR4_SMEP, 0, 0 }, { 4, CR4_VMXE, 0, 0 },
		{ 4, 1ULL << 25, 0, 0 }, { 4, CR0_WP, 0, 0 }, { 0, CR4_SMEP, 0, 0 }, /* wrong register */
		{ 0, CR0_WP, 1, 0 }, { 0, CR0_WP, 0, 1 }, { 4, CR4_SMEP, 0, 1ULL << 63 }, /* RDX/RSI */
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct hc_args a;
		assert_int_equal(hcall_out(HC_PIN_CR, bad[i].cr, bad[i].bits, bad[i].rdx, bad[i].rsi, &a), -EINVAL);
		assert_false(a.has_out); /* only RAX changes */
	}
	/* Pinnable but not set in the caller's CR: -EINVAL, alone or with set bits. */
	set_cr_state(&cpu, BASE_CR0 & ~CR0_PG, BASE_CR4); /* paging off; no CR4 pinnable bit set */
	save_vstate(&before);
	m0 = cpu.cr0_guest_mask;
	m4 = cpu.cr4_guest_mask;
	assert_int_equal(hcall(HC_PIN_CR, 0, CR0_PG, 0, 0), -EINVAL);
	assert_int_equal(hcall(HC_PIN_CR, 0, CR0_PG | CR0_PE, 0, 0), -EINVAL);
	for (unsigned i = 0; i < ARRAY_SIZE(cr4_bits); i++)
		assert_int_equal(hcall(HC_PIN_CR, 4, cr4_bits[i], 0, 0), -EINVAL);
	/* Nothing changed: masks, VMCS, pinned masks, counters, events. */
	struct vstate after;
	save_vstate(&after);
	assert_memory_equal(&before, &after, sizeof(before));
	assert_int_equal(cpu.cr0_guest_mask, m0);
	assert_int_equal(cpu.cr4_guest_mask, m4);
	assert_int_equal(pin_cr_mask(0), CR0_WP);
	assert_int_equal(pin_cr_mask(4), 0);
	assert_int_equal(stat_of(STAT_PIN_DENIED), 0);
	assert_int_equal(ring_head(), 0);
}

/* Pinning is additive, idempotent, returns the whole mask in RBX and preserves RCX/RDX. */
static void test_pin_cr_additive(void **state)
{
	(void)state;
	struct hc_args a;
	assert_int_equal(hcall_out(HC_PIN_CR, 0, CR0_WP, 0, 0, &a), 0);
	assert_true(a.has_out);
	assert_int_equal(a.out[0], CR0_WP);
	assert_int_equal(a.out[1], CR0_WP);
	assert_int_equal(a.out[2], 0);
	assert_int_equal(hcall_out(HC_PIN_CR, 0, CR0_PG | CR0_PE, 0, 0, &a), 0);
	assert_int_equal(a.out[0], CR0_WP | CR0_PG | CR0_PE);
	assert_int_equal(hcall_out(HC_PIN_CR, 0, CR0_WP, 0, 0, &a), 0); /* again */
	assert_int_equal(a.out[0], CR0_WP | CR0_PG | CR0_PE);
	assert_int_equal(hcall_out(HC_PIN_CR, 4, CR4_SMEP | CR4_SMAP, 0, 0, &a), 0);
	assert_int_equal(a.out[0], CR4_SMEP | CR4_SMAP);
	assert_int_equal(hcall_out(HC_PIN_CR, 4, ALL_CR4_PIN, 0, 0, &a), 0);
	assert_int_equal(a.out[0], ALL_CR4_PIN);
	/* The calling vCPU owns every pinned bit at once; the shadow holds its view. */
	assert_int_equal(fake_vmcs_get(VMCS_CTRL_CR0_MASK) & (CR0_WP | CR0_PG | CR0_PE), CR0_WP | CR0_PG | CR0_PE);
	assert_int_equal(fake_vmcs_get(VMCS_CTRL_CR4_MASK) & ALL_CR4_PIN, ALL_CR4_PIN);
	assert_int_equal(guest_reads(0), BASE_CR0);
	assert_int_equal(guest_reads(4), BASE_CR4 | ALL_CR4_PIN);
	assert_int_equal(fake_vmcs_get(VMCS_CTRL_CR0_MASK) & ~(CR0_WP | CR0_PG | CR0_PE), BASE_MASK0);
	/* And a later pin of an unset bit still fails, without undoing anything. */
	set_cr_state(&cpu, BASE_CR0 & ~CR0_WP, BASE_CR4);
	assert_int_equal(hcall(HC_PIN_CR, 0, CR0_WP, 0, 0), -EINVAL);
	assert_int_equal(pin_cr_mask(0), CR0_WP | CR0_PG | CR0_PE);
}

/* ---- every combination of pinned bits and attempted writes ---- */

/* One MOV to CRn of `want` with `pinned` pinned and every pinnable bit set before. The
 * expected outcome follows the ABI: the armed bits stay set, the rest takes effect, and a
 * refused clear is counted and reported, unless the resulting value faults on its own. */
static void one_write(unsigned cr, u64 pinned, u64 view, u64 want, bool arch_gp)
{
	u64 rip = fake_vmcs_get(VMCS_GUEST_RIP);
	u64 denied = stat_of(STAT_PIN_DENIED);
	u32 head = ring_head();
	u64 eff = want | (pinned & view);
	bool refused = eff != want;
	if (refused)
		assert_true(mov_exits(cr, want)); /* the hypervisor sees every write it must refuse */
	bool gp = guest_mov_cr(&cpu, cr, want);
	assert_int_equal(gp, arch_gp);
	if (gp) {
		assert_int_equal(guest_reads(cr), view);
		assert_int_equal(stat_of(STAT_PIN_DENIED), denied);
		assert_int_equal(ring_head(), head);
		return;
	}
	assert_int_equal(guest_reads(cr), eff);
	u64 real = fake_vmcs_get(cr == 0 ? VMCS_GUEST_CR0 : VMCS_GUEST_CR4);
	assert_int_equal(real & pinned & view, pinned & view); /* the processor keeps them too */
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_RIP), rip + INSN_LEN);
	assert_int_equal(stat_of(STAT_PIN_DENIED), denied + (refused ? 1 : 0));
	assert_int_equal(ring_head(), head + (refused ? 1 : 0));
	if (refused)
		expect_event(head, want, rip, cr, cpu.apic_id);
	ring_consume();
}

static void test_cr0_every_combination(void **state)
{
	(void)state;
	for (unsigned p = 1; p < 8; p++) {
		for (unsigned w = 0; w < 8; w++) {
			setup(NULL);
			/* Without CR4.CET, so clearing WP is architecturally allowed. */
			set_cr_state(&cpu, BASE_CR0, BASE_CR4);
			u64 pinned = subset(cr0_bits, 3, p);
			assert_int_equal(hcall(HC_PIN_CR, 0, pinned, 0, 0), 0);
			/* The write clears the bits of w and toggles TS and MP (not pinnable: they
			 * must change whatever the pin does). */
			u64 want = (BASE_CR0 & ~subset(cr0_bits, 3, w)) ^ (CR0_TS | CR0_MP);
			u64 eff = want | pinned;
			bool gp = (eff & CR0_PG) && !(eff & CR0_PE); /* SDM Vol. 2B MOV CR: PG without PE */
			one_write(0, pinned, BASE_CR0, want, gp);
			/* A second attempt is refused again (the pin does not wear off). */
			if (!gp)
				one_write(0, pinned, guest_reads(0), want, false);
			teardown(NULL);
		}
	}
}

static void test_cr4_every_combination(void **state)
{
	(void)state;
	const u64 view = BASE_CR4 | ALL_CR4_PIN;
	for (unsigned p = 1; p < 64; p++) {
		setup(NULL);
		u64 pinned = subset(cr4_bits, 6, p);
		assert_int_equal(hcall(HC_PIN_CR, 4, pinned, 0, 0), 0);
		struct vstate s;
		save_vstate(&s);
		u64 m4 = cpu.cr4_guest_mask;
		for (unsigned w = 0; w < 64; w++) {
			load_vstate(&s);
			cpu.cr4_guest_mask = m4;
			/* Clear the bits of w and toggle OSXMMEXCPT (not pinnable). */
			u64 want = (view & ~subset(cr4_bits, 6, w)) ^ CR4_OSXMMEXCPT;
			one_write(4, pinned, view, want, false);
		}
		teardown(NULL);
	}
}

/* Setting a pinned bit that is clear (not armed) is allowed and arms it; the pin applies
 * to a bit only while it is set on that vCPU. */
static void test_arm_by_setting(void **state)
{
	(void)state;
	assert_int_equal(hcall(HC_PIN_CR, 4, CR4_SMEP, 0, 0), 0);
	assert_int_equal(hcall(HC_PIN_CR, 0, CR0_WP, 0, 0), 0);
	/* The guest cannot have cleared them meanwhile: but on an INIT'd vCPU they are clear
	 * (test_init_disarm_rearm); here, model a vCPU whose bits are clear and owned. */
	set_cr_state(&cpu, BASE_CR0 & ~CR0_WP, BASE_CR4);
	pin_sync(&cpu);
	assert_int_equal(guest_reads(0), BASE_CR0 & ~CR0_WP);
	assert_true(mov_exits(0, BASE_CR0)); /* setting WP exits: that is when it arms */
	assert_false(guest_mov_cr(&cpu, 0, BASE_CR0 & ~CR0_WP));
	assert_int_equal(stat_of(STAT_PIN_DENIED), 0); /* clearing a clear bit is no attempt */
	assert_false(guest_mov_cr(&cpu, 0, BASE_CR0));
	assert_false(guest_mov_cr(&cpu, 4, BASE_CR4 | CR4_SMEP));
	assert_int_equal(stat_of(STAT_PIN_DENIED), 0);
	assert_int_equal(ring_head(), 0);
	assert_false(guest_mov_cr(&cpu, 0, BASE_CR0 & ~CR0_WP));
	assert_false(guest_mov_cr(&cpu, 4, BASE_CR4));
	assert_int_equal(guest_reads(0), BASE_CR0);
	assert_int_equal(guest_reads(4), BASE_CR4 | CR4_SMEP);
	assert_int_equal(stat_of(STAT_PIN_DENIED), 2);
	expect_event(0, BASE_CR0 & ~CR0_WP, RIP0 + 3 * INSN_LEN, 0, cpu.apic_id);
	expect_event(1, BASE_CR4, RIP0 + 4 * INSN_LEN, 4, cpu.apic_id);
}

/* LMSW (bits 3:0, cannot clear PE) and CLTS never clear a pinnable bit: with every CR0 bit
 * pinned, every LMSW source and CLTS take effect and keep PE, WP and PG. */
static void test_lmsw_clts(void **state)
{
	(void)state;
	assert_int_equal(hcall(HC_PIN_CR, 0, CR0_PE | CR0_WP | CR0_PG, 0, 0), 0);
	/* Make LMSW and CLTS exit as they would with these bits owned (SDM 25.1.3). */
	cpu.cr0_guest_mask |= 0xf;
	fake_vmcs_set(VMCS_CTRL_CR0_MASK, cpu.cr0_guest_mask);
	for (unsigned src = 0; src < 16; src++) {
		guest_lmsw(&cpu, (u16)(src | 0xfff0)); /* LMSW ignores bits 15:4 */
		u64 want = (BASE_CR0 & ~0xfULL) | src | CR0_PE;
		assert_int_equal(guest_reads(0), want);
		assert_false(fake_vmcs_get(VMCS_CTRL_ENTRY_INTR_INFO) & INTR_INFO_VALID);
		/* back to the base */
		guest_lmsw(&cpu, (u16)(BASE_CR0 & 0xf));
		assert_int_equal(guest_reads(0), BASE_CR0);
	}
	guest_lmsw(&cpu, CR0_TS | CR0_MP | CR0_PE);
	assert_true(guest_reads(0) & CR0_TS);
	guest_clts(&cpu);
	assert_int_equal(guest_reads(0), BASE_CR0);
	assert_int_equal(stat_of(STAT_PIN_DENIED), 0);
	assert_int_equal(ring_head(), 0);
}

/* ---- other vCPUs, INIT and SIPI ---- */

/* A vCPU running guest code when the pin is made takes the masks when it serves the
 * shootdown NMI (spp/flush.c calls pin_sync before its acknowledgement): bits set there
 * are armed at once, bits clear there arm when it sets them. */
static void test_other_vcpu(void **state)
{
	(void)state;
	struct vstate bsp, other;
	/* The other vCPU: WP set, SMEP clear. */
	save_vstate(&bsp);
	set_cr_state(&ap, BASE_CR0, BASE_CR4);
	save_vstate(&other);
	load_vstate(&bsp);
	assert_int_equal(hcall(HC_PIN_CR, 0, CR0_WP, 0, 0), 0);
	assert_int_equal(hcall(HC_PIN_CR, 4, CR4_SMEP, 0, 0), 0);
	save_vstate(&bsp);
	/* On the other CPU, as its NMI exit does. */
	load_vstate(&other);
	fake_cpu_local_set(&ap);
	pin_sync(&ap);
	assert_int_equal(guest_reads(0), BASE_CR0);
	assert_int_equal(guest_reads(4), BASE_CR4);
	assert_true(mov_exits(0, BASE_CR0 & ~CR0_WP));
	assert_true(mov_exits(4, BASE_CR4 | CR4_SMEP));
	u64 rip = fake_vmcs_get(VMCS_GUEST_RIP);
	assert_false(guest_mov_cr(&ap, 0, BASE_CR0 & ~CR0_WP)); /* armed there: refused */
	assert_int_equal(guest_reads(0), BASE_CR0);
	expect_event(0, BASE_CR0 & ~CR0_WP, rip, 0, ap.apic_id);
	assert_false(guest_mov_cr(&ap, 4, BASE_CR4 | CR4_SMEP)); /* arms */
	assert_false(guest_mov_cr(&ap, 4, BASE_CR4));            /* refused */
	assert_int_equal(guest_reads(4), BASE_CR4 | CR4_SMEP);
	assert_int_equal(stat_of(STAT_PIN_DENIED), 2);
	expect_event(1, BASE_CR4, rip + 2 * INSN_LEN, 4, ap.apic_id);
	fake_cpu_local_set(&cpu);
}

/* INIT resets CR0/CR4 (SDM Vol. 3A Table 9-1): the bits are disarmed, the pinned masks stay,
 * and the AP that a SIPI restarts owns the pinned bits, so they re-arm as it sets them.
 * The AP here was waiting for its SIPI when the pin was made (the shootdown skips it). */
static void test_init_disarm_rearm(void **state)
{
	(void)state;
	struct vstate bsp;
	assert_int_equal(hcall(HC_PIN_CR, 0, CR0_WP | CR0_PG | CR0_PE, 0, 0), 0);
	assert_int_equal(hcall(HC_PIN_CR, 4, CR4_SMEP | CR4_SMAP, 0, 0), 0);
	save_vstate(&bsp);

	/* The AP: its VMCS as it was before the pin (masks without the pinned bits), then an
	 * INIT and a SIPI (hv/vapic.c vapic_check_init), as the guest's INIT-SIPI does. */
	set_cr_state(&ap, BASE_CR0, BASE_CR4 | CR4_SMEP | CR4_SMAP);
	fake_cpu_local_set(&ap);
	fake_msr_set(MSR_IA32_APIC_BASE, 0xfee00000ULL); /* not the BSP; APIC off: no MMIO */
	ap.vinit_pending = true;
	ap.vsipi_vector = 0x9a;
	vapic_check_init(&ap);
	assert_false(ap.wait_sipi);
	/* Real mode at 9A00:0000, CR0 = 60000010H, CR4 = 0 as the guest sees them. */
	assert_int_equal(guest_reads(0), CR0_ET | CR0_CD | CR0_NW);
	assert_int_equal(guest_reads(4), 0);
	/* ... and it owns the pinned bits, so setting them exits. */
	assert_int_equal(fake_vmcs_get(VMCS_CTRL_CR0_MASK) & (CR0_WP | CR0_PG | CR0_PE), CR0_WP | CR0_PG | CR0_PE);
	assert_int_equal(fake_vmcs_get(VMCS_CTRL_CR4_MASK) & (CR4_SMEP | CR4_SMAP), CR4_SMEP | CR4_SMAP);
	u64 cr0 = CR0_ET | CR0_PE;
	assert_true(mov_exits(0, cr0));
	/* Disarmed: nothing to refuse while the bits are clear. */
	assert_false(guest_mov_cr(&ap, 0, CR0_ET));
	assert_false(guest_mov_cr(&ap, 0, cr0)); /* PE: armed */
	assert_false(guest_mov_cr(&ap, 0, CR0_ET));
	assert_int_equal(guest_reads(0), cr0);
	assert_int_equal(stat_of(STAT_PIN_DENIED), 1);
	assert_false(guest_mov_cr(&ap, 4, CR4_PSE | CR4_SMEP)); /* SMEP armed, SMAP not yet */
	assert_false(guest_mov_cr(&ap, 4, CR4_PSE));
	assert_int_equal(guest_reads(4), CR4_PSE | CR4_SMEP);
	assert_int_equal(stat_of(STAT_PIN_DENIED), 2);
	assert_false(guest_mov_cr(&ap, 0, cr0 | CR0_PG | CR0_WP));
	assert_false(guest_mov_cr(&ap, 0, cr0 & ~CR0_PE));     /* all three armed now */
	assert_int_equal(guest_reads(0), cr0 | CR0_PG | CR0_WP);
	assert_int_equal(stat_of(STAT_PIN_DENIED), 3);
	expect_event(2, cr0 & ~CR0_PE, fake_vmcs_get(VMCS_GUEST_RIP) - INSN_LEN, 0, ap.apic_id);

	/* A second INIT disarms again: after it, the vCPU can run with the bits clear. */
	ap.vinit_pending = true;
	ap.vsipi_vector = 0x10;
	vapic_check_init(&ap);
	assert_int_equal(guest_reads(0), CR0_ET | CR0_CD | CR0_NW);
	assert_false(guest_mov_cr(&ap, 0, CR0_ET | CR0_PE));
	assert_int_equal(stat_of(STAT_PIN_DENIED), 3);
	/* The pinned masks are untouched by INIT. */
	assert_int_equal(pin_cr_mask(0), CR0_WP | CR0_PG | CR0_PE);
	assert_int_equal(pin_cr_mask(4), CR4_SMEP | CR4_SMAP);
	fake_cpu_local_set(&cpu);
	load_vstate(&bsp);
}

/* ---- MSRs ---- */

static const u32 value_msrs[] = { MSR_IA32_SYSENTER_CS, MSR_IA32_SYSENTER_EIP, MSR_IA32_STAR,
				  MSR_IA32_LSTAR, MSR_IA32_CSTAR, MSR_IA32_FMASK };

static u64 msr_now(u32 msr)
{
	if (msr == MSR_IA32_SYSENTER_CS)
		return fake_vmcs_get(VMCS_GUEST_IA32_SYSENTER_CS);
	if (msr == MSR_IA32_SYSENTER_EIP)
		return fake_vmcs_get(VMCS_GUEST_IA32_SYSENTER_EIP);
	return fake_msr_get(msr);
}

static void msr_init_values(void)
{
	fake_vmcs_set(VMCS_GUEST_IA32_SYSENTER_CS, 0x10);
	fake_vmcs_set(VMCS_GUEST_IA32_SYSENTER_EIP, 0xffffffff81a00000ULL);
	fake_msr_set(MSR_IA32_STAR, 0x0023001000000000ULL);
	fake_msr_set(MSR_IA32_LSTAR, 0xffffffff81c00000ULL);
	fake_msr_set(MSR_IA32_CSTAR, 0xffffffff81c00100ULL);
	fake_msr_set(MSR_IA32_FMASK, 0x47700);
	/* CPUID.80000001H:EDX: SYSCALL, XD, Intel 64 (EFER's writable bits). */
	fake_cpuid_set(0x80000000U, 0, 0x80000008U, 0, 0, 0);
	fake_cpuid_set(0x80000001U, 0, 0, 0, 0, (1U << 11) | (1U << 20) | (1U << 29));
}

static void test_msr_values(void **state)
{
	(void)state;
	msr_init_values();
	/* Before the pin every write goes through. */
	for (size_t i = 0; i < ARRAY_SIZE(value_msrs); i++) {
		u64 v = msr_now(value_msrs[i]);
		assert_false(guest_wrmsr(value_msrs[i], v + 0x40));
		assert_int_equal(msr_now(value_msrs[i]), v + 0x40);
		assert_false(guest_wrmsr(value_msrs[i], v));
	}
	assert_int_equal(stat_of(STAT_PIN_DENIED), 0);
	u32 ev = 0;
	for (size_t i = 0; i < ARRAY_SIZE(value_msrs); i++) {
		u32 msr = value_msrs[i];
		u64 v = msr_now(msr);
		assert_int_equal(hcall(HC_PIN_MSR, msr, 0, 0, 0), 0);
		assert_int_equal(hcall(HC_PIN_MSR, msr, 0, 0, 0), 0); /* again: same value */
		/* The same value: allowed (APs coming online write it), not counted. */
		u64 rip = fake_vmcs_get(VMCS_GUEST_RIP);
		assert_false(guest_wrmsr(msr, v));
		assert_int_equal(fake_vmcs_get(VMCS_GUEST_RIP), rip + INSN_LEN);
		assert_int_equal(msr_now(msr), v);
		assert_int_equal(stat_of(STAT_PIN_DENIED), ev);
		/* Another value: ignored, no #GP, the instruction completes, counted, reported. */
		rip = fake_vmcs_get(VMCS_GUEST_RIP);
		u64 bad = v ^ 0x1000;
		assert_false(guest_wrmsr(msr, bad));
		assert_int_equal(fake_vmcs_get(VMCS_GUEST_RIP), rip + INSN_LEN);
		assert_int_equal(msr_now(msr), v);
		assert_int_equal(stat_of(STAT_PIN_DENIED), ev + 1);
		expect_event(ev, bad, rip, PIN_EV_MSR | msr, cpu.apic_id);
		ev++;
		/* The other pinned MSRs are unaffected by this one (next iteration pins them). */
	}
	/* Re-pinning from a vCPU whose value differs: -EPERM, the pin is unchanged. */
	u64 l = fake_msr_get(MSR_IA32_LSTAR);
	fake_msr_set(MSR_IA32_LSTAR, 0xffffffff80000000ULL);
	assert_int_equal(hcall(HC_PIN_MSR, MSR_IA32_LSTAR, 0, 0, 0), -EPERM);
	fake_msr_set(MSR_IA32_LSTAR, l);
	assert_false(guest_wrmsr(MSR_IA32_LSTAR, 0xffffffff80000000ULL));
	assert_int_equal(fake_msr_get(MSR_IA32_LSTAR), l);
	assert_int_equal(stat_of(STAT_PIN_DENIED), ev + 1);
	/* SYSENTER_ESP is not pinnable and still passes through. */
	assert_int_equal(hcall(HC_PIN_MSR, MSR_IA32_SYSENTER_ESP, 0, 0, 0), -EINVAL);
}

/* A write the processor itself refuses raises #GP as without a pin, and is not counted. */
static void test_msr_invalid_write_faults(void **state)
{
	(void)state;
	msr_init_values();
	assert_int_equal(hcall(HC_PIN_MSR, MSR_IA32_SYSENTER_EIP, 0, 0, 0), 0);
	assert_true(guest_wrmsr(MSR_IA32_SYSENTER_EIP, 0x0000800000000000ULL)); /* non-canonical */
	assert_int_equal(msr_now(MSR_IA32_SYSENTER_EIP), 0xffffffff81a00000ULL);
	assert_int_equal(stat_of(STAT_PIN_DENIED), 0);
	assert_int_equal(ring_head(), 0);
}

static void test_msr_efer_nxe(void **state)
{
	(void)state;
	msr_init_values();
	const u64 efer = EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE;
	/* NXE clear: nothing to pin, -EINVAL, nothing changes. */
	fake_vmcs_set(VMCS_GUEST_IA32_EFER, efer & ~EFER_NXE);
	assert_int_equal(hcall(HC_PIN_MSR, MSR_IA32_EFER, 0, 0, 0), -EINVAL);
	assert_false(guest_wrmsr(MSR_IA32_EFER, efer));
	assert_false(guest_wrmsr(MSR_IA32_EFER, efer & ~EFER_NXE)); /* not pinned: allowed */
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_IA32_EFER), efer & ~EFER_NXE);
	fake_vmcs_set(VMCS_GUEST_IA32_EFER, efer);
	assert_int_equal(hcall(HC_PIN_MSR, MSR_IA32_EFER, 0, 0, 0), 0);
	assert_int_equal(hcall(HC_PIN_MSR, MSR_IA32_EFER, 0, 0, 0), 0);
	/* Same value, and other bits, go through. */
	assert_false(guest_wrmsr(MSR_IA32_EFER, efer));
	assert_false(guest_wrmsr(MSR_IA32_EFER, efer & ~EFER_SCE));
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_IA32_EFER), efer & ~EFER_SCE);
	assert_int_equal(stat_of(STAT_PIN_DENIED), 0);
	/* Clearing NXE: NXE stays, the rest of the write (SCE back on) takes effect. */
	u64 rip = fake_vmcs_get(VMCS_GUEST_RIP);
	assert_false(guest_wrmsr(MSR_IA32_EFER, efer & ~EFER_NXE));
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_IA32_EFER), efer);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_RIP), rip + INSN_LEN);
	assert_int_equal(stat_of(STAT_PIN_DENIED), 1);
	expect_event(0, efer & ~EFER_NXE, rip, PIN_EV_MSR | MSR_IA32_EFER, cpu.apic_id);
	/* A reserved bit or an LME change with paging on still #GPs, pinned or not. */
	assert_true(guest_wrmsr(MSR_IA32_EFER, efer | (1ULL << 1)));
	assert_true(guest_wrmsr(MSR_IA32_EFER, (efer & ~EFER_LME) & ~EFER_NXE));
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_IA32_EFER), efer);
	assert_int_equal(stat_of(STAT_PIN_DENIED), 1);
	/* INIT clears EFER (SDM Vol. 3A Table 9-1): NXE disarmed until it is set again. */
	fake_vmcs_set(VMCS_GUEST_IA32_EFER, 0);
	set_cr_state(&cpu, CR0_ET, 0);
	assert_false(guest_wrmsr(MSR_IA32_EFER, EFER_LME));
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_IA32_EFER), EFER_LME);
	assert_false(guest_wrmsr(MSR_IA32_EFER, EFER_LME | EFER_NXE));
	assert_false(guest_wrmsr(MSR_IA32_EFER, EFER_LME));
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_IA32_EFER), EFER_LME | EFER_NXE);
	assert_int_equal(stat_of(STAT_PIN_DENIED), 2);
	/* LMA is the processor's: a WRMSR leaves it as it is. */
	assert_false(guest_wrmsr(MSR_IA32_EFER, EFER_LME | EFER_NXE | EFER_LMA));
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_IA32_EFER), EFER_LME | EFER_NXE);
}

static void test_pin_msr_einval(void **state)
{
	(void)state;
	msr_init_values();
	fake_vmcs_set(VMCS_GUEST_IA32_EFER, EFER_NXE | EFER_LME | EFER_LMA);
	const struct { u64 msr, rcx, rdx, rsi; } bad[] = {
		{ MSR_IA32_SYSENTER_ESP, 0, 0, 0 }, { MSR_IA32_FS_BASE, 0, 0, 0 }, { MSR_IA32_KERNEL_GS_BASE, 0, 0, 0 },
		{ 0, 0, 0, 0 }, { MSR_IA32_APIC_BASE, 0, 0, 0 }, { MSR_IA32_DEBUGCTL, 0, 0, 0 },
		{ 0x100000000ULL | MSR_IA32_LSTAR, 0, 0, 0 }, { ~0ULL, 0, 0, 0 },
		{ MSR_IA32_LSTAR, 1, 0, 0 }, { MSR_IA32_LSTAR, 0, 1, 0 }, { MSR_IA32_LSTAR, 0, 0, 1 },
		{ MSR_IA32_EFER, EFER_NXE, 0, 0 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct hc_args a;
		assert_int_equal(hcall_out(HC_PIN_MSR, bad[i].msr, bad[i].rcx, bad[i].rdx, bad[i].rsi, &a), -EINVAL);
		assert_false(a.has_out);
	}
	/* Nothing was pinned: every write still goes through. */
	assert_false(guest_wrmsr(MSR_IA32_LSTAR, 0xffffffff80001000ULL));
	assert_int_equal(fake_msr_get(MSR_IA32_LSTAR), 0xffffffff80001000ULL);
	assert_false(guest_wrmsr(MSR_IA32_EFER, EFER_LME | EFER_LMA));
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_IA32_EFER), EFER_LME | EFER_LMA);
	assert_int_equal(stat_of(STAT_PIN_DENIED), 0);
	assert_int_equal(ring_head(), 0);
}

/* ---- discovery and statistics ---- */

static void test_query_and_stats(void **state)
{
	(void)state;
	struct hc_args a;
	assert_int_equal(hcall_out(HC_QUERY, 0, 0, 0, 0, &a), 0);
	assert_int_equal(a.out[0], 0x00010004); /* 1.4 */
	assert_true(a.out[1] & (1U << 6));      /* TESSEL_F_PIN */
	assert_int_equal(hcall(HC_PIN_CR, 0, CR0_WP, 0, 0), 0);
	assert_false(guest_mov_cr(&cpu, 0, BASE_CR0 & ~CR0_WP));
	assert_false(guest_mov_cr(&cpu, 0, BASE_CR0 & ~CR0_WP));
	u64 *rec = (u64 *)gp(STATS_GPA);
	memset(rec, 0xee, 128);
	assert_int_equal(hcall_out(HC_STATS, STATS_GPA, 128, 0, 0, &a), 0);
	assert_int_equal(a.out[0], 13 * 8); /* 1.2: 13 counters */
	assert_int_equal(rec[12], 2);       /* pin_denied, after dma_faults */
	assert_int_equal(rec[13], 0xeeeeeeeeeeeeeeeeULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_pin_cr_einval, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pin_cr_additive, setup, teardown),
		cmocka_unit_test(test_cr0_every_combination),
		cmocka_unit_test(test_cr4_every_combination),
		cmocka_unit_test_setup_teardown(test_arm_by_setting, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lmsw_clts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_vcpu, setup, teardown),
		cmocka_unit_test_setup_teardown(test_init_disarm_rearm, setup, teardown),
		cmocka_unit_test_setup_teardown(test_msr_values, setup, teardown),
		cmocka_unit_test_setup_teardown(test_msr_invalid_write_faults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_msr_efer_nxe, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pin_msr_einval, setup, teardown),
		cmocka_unit_test_setup_teardown(test_query_and_stats, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
