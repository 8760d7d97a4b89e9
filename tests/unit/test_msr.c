/*
 * Host tests of the MSR policy (hv/msr_policy.c, hv/exit_msr.c) and the CPUID policy that
 * goes with it (hv/exit_cpuid.c), over the fake hardware layer:
 * - the table is sorted and disjoint, and every handler the table names exists;
 * - the MSR bitmap has exactly the pass-through directions clear, over both architectural
 *   ranges (0-1FFFH, C0000000H-C0001FFFH);
 * - the handler outcome of every listed MSR and of every unlisted one in both ranges (and a
 *   few outside them): value passed, #GP injected (hardware MSR unchanged), write ignored;
 * - the virtualized handlers' rules (DEBUGCTL, XSS, MISC_ENABLE, BIOS_UPDT_TRIG, routing of
 *   APIC_BASE, the MTRRs and the x2APIC ICR to their owners);
 * - the rate limit: an unlisted MSR logs once per direction, a sweep logs a bounded number;
 * - CPUID hides PT, the PMU (leaf 0AH, PDCM, DS), arch LBR, their XSAVE components and VMX;
 * - docs/MSR.md's table is the one generated from the table (MSR_DOC_UPDATE=1 rewrites it).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hw.h>
#include <arch/cpu.h>
#include <arch/msr.h>
#include <arch/vmx.h>
#include "hv/exit.h"
#include "hv/log.h"
#include "hv/msr_policy.h"
#include "hv/percpu.h"
#include "hv/vapic.h"
#include "hv/vmcs.h"
#include "mm/mtrr_guest.h"

static struct percpu cpu;
static struct guest_regs regs;

static int setup(void **state)
{
	(void)state;
	fake_reset();
	memset(&cpu, 0, sizeof(cpu));
	memset(&regs, 0, sizeof(regs));
	cpu.self = &cpu;
	cpu.regs = &regs;
	percpu_array[0] = &cpu;
	percpu_count = 1;
	fake_cpu_local_set(&cpu);
	fake_vmcs_set(VMCS_GUEST_CR0, CR0_PE | CR0_PG | CR0_NE);
	fake_vmcs_set(VMCS_GUEST_RFLAGS, RFLAGS_FIXED);
	fake_vmcs_set(VMCS_GUEST_SS_AR, 0xc093);
	fake_vmcs_set(VMCS_RO_EXIT_INSN_LEN, 2);
	log_init(FAKE_SERIAL_PORT, CFG_LOG_INFO);
	fake_io_output_clear();
	msr_policy_log_reset();
	return 0;
}

/* ---- one access through the exit handlers ---- */

struct outcome {
	bool gp;       /* #GP(0) injected */
	bool advanced; /* RIP moved past the instruction */
	u64 value;     /* RDMSR: EDX:EAX */
};

static struct outcome run(u32 msr, bool write, u64 val)
{
	fake_vmcs_set(VMCS_CTRL_ENTRY_INTR_INFO, 0);
	fake_vmcs_set(VMCS_GUEST_RIP, 0x1000);
	cpu.event_injected = false;
	regs.gpr[GPR_CX] = msr;
	regs.gpr[GPR_AX] = write ? (u32)val : 0xdeadbeef;
	regs.gpr[GPR_DX] = write ? val >> 32 : 0xfeedface;
	if (write)
		exit_wrmsr(&cpu);
	else
		exit_rdmsr(&cpu);
	u32 info = (u32)fake_vmcs_get(VMCS_CTRL_ENTRY_INTR_INFO);
	struct outcome o = {
		.gp = info == (INTR_INFO_VALID | INTR_TYPE_HW_EXCEPTION | INTR_INFO_DELIVER_CODE | VEC_GP),
		.advanced = fake_vmcs_get(VMCS_GUEST_RIP) == 0x1002,
		.value = ((regs.gpr[GPR_DX] & 0xffffffffULL) << 32) | (regs.gpr[GPR_AX] & 0xffffffffULL),
	};
	if (o.gp) {
		assert_int_equal(fake_vmcs_get(VMCS_CTRL_ENTRY_EXC_ERROR_CODE), 0);
		assert_false(o.advanced);
	} else {
		assert_int_equal(info, 0);
	}
	return o;
}

static bool in_bitmap_range(u32 m) { return m <= 0x1fff || (m >= 0xc0000000U && m <= 0xc0001fffU); }

static bool bitmap_bit(const u8 *bm, u32 m, bool write)
{
	u32 off = m <= 0x1fff ? m : 0x2000 + (m - 0xc0000000U);
	return (bm[(write ? 2048 : 0) + off / 8] >> (off % 8)) & 1;
}

/* ---- the table itself ---- */

static void test_table_shape(void **state)
{
	(void)state;
	assert_true(msr_policy_count > 40);
	for (size_t i = 0; i < msr_policy_count; i++) {
		const struct msr_policy_entry *e = &msr_policy[i];
		assert_true(e->first <= e->last);
		if (i)
			assert_true(msr_policy[i - 1].last < e->first); /* sorted, disjoint */
		assert_true(e->rd != MSR_IGNORE); /* "ignored" is for writes only */
		assert_int_equal(e->rd == MSR_VIRT, e->read != NULL);
		assert_int_equal(e->wr == MSR_VIRT, e->write != NULL);
		assert_non_null(e->name);
		assert_true(strlen(e->sdm) > 3 && strlen(e->why) > 10);
		assert_ptr_equal(msr_policy_find(e->first), e);
		assert_ptr_equal(msr_policy_find(e->last), e);
	}
	/* Every MTRR MSR is routed to mm/mtrr_guest, and nothing else is. */
	for (u32 m = 0; m <= 0x1fff; m++) {
		const struct msr_policy_entry *e = msr_policy_find(m);
		bool routed = e && e->rd == MSR_VIRT && e->wr == MSR_VIRT && strstr(e->why, "mtrr_guest");
		assert_int_equal(routed, mtrr_guest_is_mtrr(m));
	}
}

static void test_bitmap_matches_table(void **state)
{
	(void)state;
	static u8 bm[PAGE_SIZE];
	memset(bm, 0, sizeof(bm));
	msr_policy_bitmap(bm); /* what vmx_msr_bitmap_init installs */
	unsigned pass_rd = 0, pass_wr = 0;
	for (u32 m = 0;; m++) {
		if (m == 0x2000)
			m = 0xc0000000U;
		const struct msr_policy_entry *e = msr_policy_find(m);
		bool rd_pass = e && e->rd == MSR_PASS, wr_pass = e && e->wr == MSR_PASS;
		assert_int_equal(bitmap_bit(bm, m, false), !rd_pass);
		assert_int_equal(bitmap_bit(bm, m, true), !wr_pass);
		pass_rd += rd_pass;
		pass_wr += wr_pass;
		if (m == 0xc0001fffU)
			break;
	}
	/* The fast ones really are fast. */
	const u32 fast[] = { MSR_IA32_SPEC_CTRL, MSR_IA32_PRED_CMD, MSR_IA32_FLUSH_CMD, MSR_IA32_TSC_DEADLINE,
			     0x80b /* x2APIC EOI */, MSR_IA32_KERNEL_GS_BASE, MSR_IA32_FS_BASE, MSR_IA32_TSC_AUX };
	for (size_t i = 0; i < ARRAY_SIZE(fast); i++) {
		assert_false(bitmap_bit(bm, fast[i], true));
		assert_false(bitmap_bit(bm, fast[i], false));
	}
	/* The ones that matter exit. */
	const u32 trap_wr[] = { MSR_IA32_APIC_BASE, MSR_IA32_DEBUGCTL, MSR_IA32_RTIT_CTL, MSR_IA32_DS_AREA,
				MSR_IA32_PEBS_ENABLE, MSR_IA32_BIOS_UPDT_TRIG, MSR_IA32_MTRR_DEF_TYPE, MSR_X2APIC_ICR,
				MSR_IA32_XSS, MSR_IA32_MISC_ENABLE, MSR_IA32_FEATURE_CONTROL, MSR_IA32_PERF_GLOBAL_CTRL };
	for (size_t i = 0; i < ARRAY_SIZE(trap_wr); i++)
		assert_true(bitmap_bit(bm, trap_wr[i], true));
	print_message("bitmap: %u MSRs read and %u written without an exit\n", pass_rd, pass_wr);
}

/* ---- the handler outcome of every MSR ---- */

#define HW_VAL 0x0000000512345678ULL /* what the "processor" holds */
#define NEW_VAL 0x0000000700000003ULL

/* MSRs whose handler has its own test below (the generic sweep skips their VIRT directions). */
static void check_entry_msr(const struct msr_policy_entry *e, u32 m)
{
	/* read */
	fake_msr_set(m, HW_VAL);
	if (e->rd == MSR_PASS) {
		struct outcome o = run(m, false, 0);
		assert_false(o.gp);
		assert_true(o.advanced);
		assert_int_equal(o.value, HW_VAL);
	} else if (e->rd == MSR_GP) {
		struct outcome o = run(m, false, 0);
		assert_true(o.gp);
		assert_int_equal(regs.gpr[GPR_AX], 0xdeadbeef); /* registers untouched */
	}
	/* write */
	if (e->wr == MSR_PASS) {
		struct outcome o = run(m, true, NEW_VAL);
		assert_false(o.gp);
		assert_true(o.advanced);
		assert_int_equal(fake_msr_get(m), NEW_VAL);
	} else if (e->wr == MSR_GP || e->wr == MSR_IGNORE) {
		struct outcome o = run(m, true, NEW_VAL);
		assert_int_equal(o.gp, e->wr == MSR_GP);
		assert_int_equal(o.advanced, e->wr == MSR_IGNORE);
		assert_int_equal(fake_msr_get(m), HW_VAL); /* the processor's MSR never changes */
	}
	fake_msr_unset(m);
}

static void test_every_listed_msr(void **state)
{
	(void)state;
	unsigned n = 0;
	for (size_t i = 0; i < msr_policy_count; i++) {
		const struct msr_policy_entry *e = &msr_policy[i];
		for (u32 m = e->first;; m++) {
			check_entry_msr(e, m);
			n++;
			if (m == e->last)
				break;
		}
	}
	print_message("%u listed MSRs checked\n", n);
}

static void test_unlisted_msrs_gp(void **state)
{
	(void)state;
	unsigned n = 0;
	const u32 outside[] = { 0x2000, 0x3fff, 0x40000000U, 0x40000001U, 0x4b564d00U, 0xbfffffffU,
				0xc0002000U, 0xc0010000U, 0xc0011020U, 0xffffffffU };
	for (u32 m = 0;; m++) {
		if (m == 0x2000)
			m = 0xc0000000U;
		if (!msr_policy_find(m)) {
			fake_msr_set(m, HW_VAL); /* the processor has it: still refused */
			struct outcome r = run(m, false, 0);
			struct outcome w = run(m, true, NEW_VAL);
			assert_true(r.gp);
			assert_true(w.gp);
			assert_int_equal(fake_msr_get(m), HW_VAL);
			fake_msr_unset(m);
			n++;
		}
		if (m == 0xc0001fffU)
			break;
	}
	for (size_t i = 0; i < ARRAY_SIZE(outside); i++) {
		assert_null(msr_policy_find(outside[i]));
		assert_false(in_bitmap_range(outside[i]));
		fake_msr_set(outside[i], HW_VAL);
		assert_true(run(outside[i], false, 0).gp);
		assert_true(run(outside[i], true, NEW_VAL).gp);
		assert_int_equal(fake_msr_get(outside[i]), HW_VAL);
		fake_msr_unset(outside[i]);
	}
	print_message("%u unlisted MSRs in the two ranges refused\n", n);
	assert_true(n > 15000);
}

/* A pass-through MSR the processor lacks: the guest gets the processor's #GP, no log line. */
static void test_pass_through_missing(void **state)
{
	(void)state;
	fake_msr_unset(MSR_IA32_TSC_ADJUST);
	assert_true(run(MSR_IA32_TSC_ADJUST, false, 0).gp);
	assert_true(run(MSR_IA32_TSC_ADJUST, true, 5).gp);
	assert_null(strstr(fake_io_output(), "0x3b"));
}

/* ---- virtualized handlers ---- */

static void test_feature_control(void **state)
{
	(void)state;
	fake_msr_set(MSR_IA32_FEATURE_CONTROL, FEATURE_CONTROL_LOCK | FEATURE_CONTROL_VMX_OUTSIDE_SMX);
	struct outcome o = run(MSR_IA32_FEATURE_CONTROL, false, 0);
	assert_false(o.gp);
	assert_int_equal(o.value, FEATURE_CONTROL_LOCK);
	assert_true(run(MSR_IA32_FEATURE_CONTROL, true, FEATURE_CONTROL_LOCK).gp);
	assert_int_equal(fake_msr_get(MSR_IA32_FEATURE_CONTROL), FEATURE_CONTROL_LOCK | FEATURE_CONTROL_VMX_OUTSIDE_SMX);
}

static void test_debugctl(void **state)
{
	(void)state;
	fake_cpuid_set(0, 0, 7, 0, 0, 0);
	fake_cpuid_set(7, 0, 0, 0, 0, 0); /* no bus-lock detection */
	fake_msr_set(MSR_IA32_DEBUGCTL, 0);
	fake_vmcs_set(VMCS_GUEST_IA32_DEBUGCTL, 0);
	const u64 refused[] = { DEBUGCTL_BTS, DEBUGCTL_BTS | DEBUGCTL_BTINT, DEBUGCTL_TR, DEBUGCTL_BTS_OFF_OS,
				DEBUGCTL_BTS_OFF_USR, DEBUGCTL_FREEZE_PERFMON_ON_PMI, DEBUGCTL_BUS_LOCK_DETECT,
				DEBUGCTL_BTF | (1ULL << 40), 1ULL << 5 };
	for (size_t i = 0; i < ARRAY_SIZE(refused); i++) {
		assert_true(run(MSR_IA32_DEBUGCTL, true, refused[i]).gp);
		assert_int_equal(fake_vmcs_get(VMCS_GUEST_IA32_DEBUGCTL), 0);
	}
	struct outcome o = run(MSR_IA32_DEBUGCTL, true, DEBUGCTL_BTF);
	assert_false(o.gp);
	assert_true(o.advanced);
	/* the guest field, never the MSR (in root mode it is the hypervisor's) */
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_IA32_DEBUGCTL), DEBUGCTL_BTF);
	assert_int_equal(fake_msr_get(MSR_IA32_DEBUGCTL), 0);
	fake_cpuid_set(7, 0, 0, 0, 1U << 24, 0); /* bus-lock detection enumerated */
	assert_false(run(MSR_IA32_DEBUGCTL, true, DEBUGCTL_BUS_LOCK_DETECT | DEBUGCTL_LBR).gp);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_IA32_DEBUGCTL), DEBUGCTL_BUS_LOCK_DETECT | DEBUGCTL_LBR);
	assert_non_null(strstr(fake_io_output(), "WRMSR 0x1d9 IA32_DEBUGCTL value 0x80: #GP"));
}

static void test_xss(void **state)
{
	(void)state;
	fake_msr_set(MSR_IA32_XSS, 0);
	const u64 refused[] = { XSS_PT, XSS_LBR, XSS_HWP, XSS_HDC, XSS_CET_S | XSS_PT, 1ULL << 0 };
	for (size_t i = 0; i < ARRAY_SIZE(refused); i++) {
		assert_true(run(MSR_IA32_XSS, true, refused[i]).gp);
		assert_int_equal(fake_msr_get(MSR_IA32_XSS), 0);
	}
	assert_false(run(MSR_IA32_XSS, true, XSS_CET_U | XSS_CET_S).gp);
	assert_int_equal(fake_msr_get(MSR_IA32_XSS), XSS_CET_U | XSS_CET_S);
}

static void test_misc_enable(void **state)
{
	(void)state;
	const u64 cur = MISC_ENABLE_FAST_STRING | (1ULL << 7) /* perfmon available (RO) */ | (1ULL << 11) |
			MISC_ENABLE_MONITOR;
	fake_msr_set(MSR_IA32_MISC_ENABLE, cur);
	/* setting XD Bit Disable, changing a read-only/status bit, or an undefined one: #GP */
	const u64 refused[] = { cur | MISC_ENABLE_XD_DISABLE, cur & ~(1ULL << 7), cur & ~(1ULL << 11), cur | (1ULL << 12),
				cur | (1ULL << 50) };
	for (size_t i = 0; i < ARRAY_SIZE(refused); i++) {
		assert_true(run(MSR_IA32_MISC_ENABLE, true, refused[i]).gp);
		assert_int_equal(fake_msr_get(MSR_IA32_MISC_ENABLE), cur);
	}
	/* what Linux does: clear the CPUID limit and XD disable, toggle fast strings and turbo */
	assert_false(run(MSR_IA32_MISC_ENABLE, true, cur | MISC_ENABLE_TURBO_DISABLE).gp);
	assert_int_equal(fake_msr_get(MSR_IA32_MISC_ENABLE), cur | MISC_ENABLE_TURBO_DISABLE);
	fake_msr_set(MSR_IA32_MISC_ENABLE, cur | MISC_ENABLE_XD_DISABLE | MISC_ENABLE_LIMIT_CPUID);
	assert_false(run(MSR_IA32_MISC_ENABLE, true, cur).gp);
	assert_int_equal(fake_msr_get(MSR_IA32_MISC_ENABLE), cur);
	/* reads pass through */
	assert_int_equal(run(MSR_IA32_MISC_ENABLE, false, 0).value, cur);
}

static void test_bios_updt_trig(void **state)
{
	(void)state;
	fake_msr_set(MSR_IA32_BIOS_UPDT_TRIG, 0);
	struct outcome o = run(MSR_IA32_BIOS_UPDT_TRIG, true, 0x12345000);
	assert_false(o.gp);
	assert_true(o.advanced);
	assert_int_equal(fake_msr_get(MSR_IA32_BIOS_UPDT_TRIG), 0);
	assert_true(run(MSR_IA32_BIOS_UPDT_TRIG, false, 0).gp);
	assert_non_null(strstr(fake_io_output(), "WRMSR 0x79 IA32_BIOS_UPDT_TRIG value 0x12345000: write ignored"));
}

/* APIC_BASE writes and the MTRRs: whatever their owners decide is what the guest gets. */
static void test_routing(void **state)
{
	(void)state;
	const u64 apic_vals[] = { 0xfee00900ULL, 0xfee00100ULL /* disable */, 0x10000900ULL /* relocate */,
				  0xfee00d00ULL /* x2APIC */, 0xfee00500ULL /* x2 without enable: illegal */ };
	for (size_t i = 0; i < ARRAY_SIZE(apic_vals); i++) {
		fake_msr_set(MSR_IA32_APIC_BASE, 0xfee00900ULL);
		struct outcome o = run(MSR_IA32_APIC_BASE, true, apic_vals[i]);
		u64 after_exit = fake_msr_get(MSR_IA32_APIC_BASE);
		fake_msr_set(MSR_IA32_APIC_BASE, 0xfee00900ULL);
		int direct = vapic_apic_base_write(&cpu, apic_vals[i]);
		assert_int_equal(o.gp, direct != 0);
		assert_int_equal(o.advanced, direct == 0);
		assert_int_equal(after_exit, fake_msr_get(MSR_IA32_APIC_BASE));
	}
	const u32 mtrrs[] = { MSR_IA32_MTRRCAP, MSR_IA32_MTRR_DEF_TYPE, MSR_IA32_MTRR_PHYSBASE0, 0x213,
			      MSR_IA32_MTRR_FIX64K_00000, MSR_IA32_MTRR_FIX4K_C0000 + 7 };
	const u64 vals[] = { 0xc06, 0x0606060606060606ULL, 0x80000006ULL, 0x7 /* reserved type */ };
	for (size_t i = 0; i < ARRAY_SIZE(mtrrs); i++) {
		for (size_t j = 0; j < ARRAY_SIZE(vals); j++) {
			fake_msr_set(mtrrs[i], 0x606);
			struct outcome o = run(mtrrs[i], true, vals[j]);
			u64 got = 0;
			int rd = mtrr_guest_read(mtrrs[i], &got);
			struct outcome r = run(mtrrs[i], false, 0);
			assert_int_equal(r.gp, rd != 0);
			if (!r.gp)
				assert_int_equal(r.value, got);
			fake_msr_set(mtrrs[i], 0x606);
			(void)o;
		}
	}
	/* x2APIC ICR: a fixed IPI is written to the APIC; INIT is the hypervisor's. */
	fake_msr_set(MSR_X2APIC_ICR, 0);
	assert_false(run(MSR_X2APIC_ICR, true, (3ULL << 32) | 0x40f1).gp);
	assert_int_equal(fake_msr_get(MSR_X2APIC_ICR), (3ULL << 32) | 0x40f1);
}

/* ---- logging ---- */

static unsigned count(const char *hay, const char *needle)
{
	unsigned n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

static void test_log_once(void **state)
{
	(void)state;
	for (int i = 0; i < 5; i++) {
		assert_true(run(0x2, false, 0).gp);
		assert_true(run(0x2, true, 1).gp);
		assert_true(run(0x40000123U, false, 0).gp);
		assert_true(run(MSR_IA32_RTIT_CTL, true, 1).gp);
	}
	const char *out = fake_io_output();
	assert_int_equal(count(out, "RDMSR 0x2 (not listed): #GP (logged once per MSR)"), 1);
	assert_int_equal(count(out, "WRMSR 0x2 (not listed): #GP (logged once per MSR)"), 1);
	assert_int_equal(count(out, "RDMSR 0x40000123 (not listed)"), 1);
	assert_int_equal(count(out, "WRMSR 0x570 IA32_RTIT_CTL value 0x1: #GP"), 1);

	/* A sweep logs a bounded number of lines, then says it stops; listed MSRs still log. */
	fake_io_output_clear();
	for (u32 m = 0; m <= 0x1fff; m++)
		run(m, false, 0);
	for (u32 m = 0x50000000U; m < 0x50000100U; m++)
		run(m, true, 0);
	out = fake_io_output();
	unsigned unlisted = count(out, "(not listed)");
	assert_true(unlisted >= 100 && unlisted <= 130);
	assert_int_equal(count(out, "no more will be"), 1);
	assert_int_equal(count(out, "RDMSR 0x600 IA32_DS_AREA: #GP"), 1);
	/* a listed range logs once per row: the first MSR of it refused is named */
	assert_int_equal(count(out, "IA32_LBR_0..31_TO_IP"), 1);
	assert_int_equal(count(out, "RDMSR 0x1600 IA32_LBR_0..31_TO_IP: #GP (logged once per row of docs/MSR.md)"), 1);
}

/* ---- CPUID ---- */

static void cpuid(u32 leaf, u32 sub, u32 r[4])
{
	regs.gpr[GPR_AX] = leaf;
	regs.gpr[GPR_CX] = sub;
	exit_cpuid(&cpu);
	for (int i = 0; i < 4; i++)
		r[i] = (u32)regs.gpr[(int[]){ GPR_AX, GPR_BX, GPR_CX, GPR_DX }[i]];
}

static void test_cpuid_hides(void **state)
{
	(void)state;
	fake_cpuid_set(0, 0, 0x23, 0x756e6547, 0x6c65746e, 0x49656e69);
	fake_cpuid_set(1, 0, 0x706e5, 0x100800, 0x7ffafbff, 0xbfebfbff); /* VMX, PDCM, DTES64, DS-CPL; DS */
	fake_cpuid_set(7, 0, 0, 0xf0bf67ebU | CPUID7_EBX_PT, 0x40405f5e, 0xbc000410U | CPUID7_EDX_ARCH_LBR);
	fake_cpuid_set(0xa, 0, 0x08300805, 0, 0xf, 0x8603);
	fake_cpuid_set(0x14, 0, 1, 0xf, 7, 0);
	fake_cpuid_set(0x14, 1, 0x02490002, 0x003f3fff, 0, 0);
	fake_cpuid_set(0x1c, 0, 0x4000000f, 7, 7, 0);
	fake_cpuid_set(0xd, 1, 0xf, 0x240, 0x1d900, 0); /* XSS: PT(8), CET(11,12), UINTR(14), LBR(15), HWP(16) */
	fake_cpuid_set(0xd, 8, 0x80, 0, 1, 0);
	fake_cpuid_set(0xd, 11, 0x10, 0, 1, 0);
	fake_cpuid_set(0xd, 15, 0x328, 0, 1, 0);
	u32 r[4];
	cpuid(1, 0, r);
	assert_int_equal(r[2] & (CPUID1_ECX_VMX | CPUID1_ECX_PDCM | CPUID1_ECX_DTES64 | CPUID1_ECX_DS_CPL), 0);
	assert_int_equal(r[3] & CPUID1_EDX_DS, 0);
	assert_int_equal(r[3], 0xbfebfbff & ~CPUID1_EDX_DS); /* nothing else touched */
	assert_true(r[2] & CPUID1_ECX_HYPERVISOR);
	cpuid(7, 0, r);
	assert_int_equal(r[1], 0xf0bf67ebU);
	assert_int_equal(r[3], 0xbc000410U);
	for (u32 sub = 0; sub < 2; sub++) {
		cpuid(0x14, sub, r);
		assert_int_equal(r[0] | r[1] | r[2] | r[3], 0);
	}
	cpuid(0xa, 0, r);
	assert_int_equal(r[0] | r[1] | r[2] | r[3], 0);
	cpuid(0x1c, 0, r);
	assert_int_equal(r[0] | r[1] | r[2] | r[3], 0);
	cpuid(0xd, 1, r);
	assert_int_equal(r[2], (1U << 11) | (1U << 12) | (1U << 14)); /* CET and UINTR stay */
	assert_int_equal(r[1], 0x240);
	cpuid(0xd, 8, r);
	assert_int_equal(r[0] | r[1] | r[2] | r[3], 0);
	cpuid(0xd, 15, r);
	assert_int_equal(r[0] | r[1] | r[2] | r[3], 0);
	cpuid(0xd, 11, r);
	assert_int_equal(r[0], 0x10); /* CET_U state stays */
}

/* ---- docs/MSR.md ---- */

#define DOC "docs/MSR.md"
#define BEGIN "<!-- msr-table: generated by tests/unit/test_msr.c from hv/msr_policy.c; do not edit -->\n"
#define END "<!-- msr-table end -->\n"

static void fmt_range(char *b, size_t n, const struct msr_policy_entry *e)
{
	if (e->first == e->last)
		snprintf(b, n, "0x%x", e->first);
	else
		snprintf(b, n, "0x%x-0x%x", e->first, e->last);
}

static char *generate_table(void)
{
	size_t cap = 64 * 1024, len = 0;
	char *out = malloc(cap);
	assert_non_null(out);
	len += snprintf(out + len, cap - len, "| MSR | Name | Read | Write | SDM | Why |\n|---|---|---|---|---|---|\n");
	for (size_t i = 0; i < msr_policy_count; i++) {
		const struct msr_policy_entry *e = &msr_policy[i];
		char range[32];
		fmt_range(range, sizeof(range), e);
		len += snprintf(out + len, cap - len, "| %s | %s | %s | %s | %s | %s |\n", range, e->name,
				msr_act_name(e->rd, false), msr_act_name(e->wr, true), e->sdm, e->why);
		assert_true(len < cap);
	}
	len += snprintf(out + len, cap - len, "| any other | (not listed) | #GP | #GP | | deny by default; logged once per MSR |\n");
	return out;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *b = malloc((size_t)n + 1);
	size_t got = fread(b, 1, (size_t)n, f);
	b[got] = 0;
	fclose(f);
	return b;
}

static void test_doc_matches_table(void **state)
{
	(void)state;
	char *doc = slurp(DOC);
	if (!doc)
		fail_msg("%s not found (run from the repository root)", DOC);
	char *b = strstr(doc, BEGIN), *e = b ? strstr(b, END) : NULL;
	if (!b || !e)
		fail_msg("%s lacks the generated-table markers", DOC);
	b += strlen(BEGIN);
	char *want = generate_table();
	size_t have_len = (size_t)(e - b);
	bool same = have_len == strlen(want) && !memcmp(b, want, have_len);
	if (!same && getenv("MSR_DOC_UPDATE")) {
		FILE *f = fopen(DOC, "wb");
		assert_non_null(f);
		fwrite(doc, 1, (size_t)(b - doc), f);
		fputs(want, f);
		fputs(e, f);
		fclose(f);
		print_message("%s: table regenerated\n", DOC);
		same = true;
	}
	if (!same)
		fail_msg("%s disagrees with hv/msr_policy.c: regenerate with MSR_DOC_UPDATE=1 build/unit/test_msr", DOC);
	free(want);
	free(doc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_table_shape, setup),
		cmocka_unit_test_setup(test_bitmap_matches_table, setup),
		cmocka_unit_test_setup(test_every_listed_msr, setup),
		cmocka_unit_test_setup(test_unlisted_msrs_gp, setup),
		cmocka_unit_test_setup(test_pass_through_missing, setup),
		cmocka_unit_test_setup(test_feature_control, setup),
		cmocka_unit_test_setup(test_debugctl, setup),
		cmocka_unit_test_setup(test_xss, setup),
		cmocka_unit_test_setup(test_misc_enable, setup),
		cmocka_unit_test_setup(test_bios_updt_trig, setup),
		cmocka_unit_test_setup(test_routing, setup),
		cmocka_unit_test_setup(test_log_once, setup),
		cmocka_unit_test_setup(test_cpuid_hides, setup),
		cmocka_unit_test_setup(test_doc_matches_table, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
