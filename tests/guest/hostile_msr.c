/*
 * hostile_msr.c: a hostile guest kernel against the MSR policy (issue 9 part 1; docs/MSR.md).
 *
 * (The order below: outside reads, hostile writes, then the sweeps; numbered by topic.)
 * 1. Reads every MSR index of both architectural ranges (0-1FFFH, C0000000H-C0001FFFH) and a
 *    few outside them, each under trap_call; reports how many were readable and how many
 *    raised #GP, and checks samples of every class of the table: pass-through MSRs read,
 *    PT/PMU/DS/VMX/SMM MSRs and unlisted ones #GP.
 * 2. Writes hostile values to the dangerous MSRs: Intel PT aimed at the hypervisor's region,
 *    the DS area and PEBS, the counters, DEBUGCTL's BTS bits, XSS with PT state, XD Bit
 *    Disable, SMM_MONITOR_CTL, FEATURE_CONTROL, a VMX MSR, an unlisted MSR: each must #GP and
 *    (where it is readable at all) keep its value. A microcode-update trigger must be ignored.
 * 3. Writes the current value back to the pass-through and virtualized MSRs a kernel writes
 *    (no #GP, value kept).
 * 4. MTRRs: a free variable MTRR covering the hypervisor's region as UC, a reserved memory
 *    type (#GP), then restored.
 * 5. IA32_APIC_BASE: relocation onto the hypervisor's region and disabling the APIC must not
 *    take (the base reads back unchanged afterwards; restored if they did).
 * Then the common post-checks (hostile.h): every vCPU answers HC_NOP, the region reads 0xFF,
 * the guard page's protected bytes are unchanged.
 */
#include "hostile.h"

#define POINTS (13 + HOSTILE_POSTCHECK_POINTS)

struct msr_op {
	uint32_t msr;
	uint64_t val;
	int write;
};

static void do_msr(void *arg)
{
	struct msr_op *op = arg;
	if (op->write)
		wrmsr(op->msr, op->val);
	else
		op->val = rdmsr(op->msr);
}

/* 0: done (value in *val for reads); otherwise 1000 + the vector it raised. */
static int msr_try(uint32_t msr, int write, uint64_t *val)
{
	struct msr_op op = { msr, val ? *val : 0, write };
	struct trap_info t;
	if (trap_call(TRAP_ALL, do_msr, &op, &t))
		return (int)t.vector + 1000;
	if (val && !write)
		*val = op.val;
	return 0;
}
#define GP_RESULT (13 + 1000)

static int rd(uint32_t msr, uint64_t *v) { return msr_try(msr, 0, v); }
static int wr(uint32_t msr, uint64_t v) { return msr_try(msr, 1, &v); }

struct sweep {
	unsigned readable, gp, other;
};

static void sweep(uint32_t first, uint32_t last, struct sweep *s)
{
	for (uint32_t m = first;; m++) {
		uint64_t v = 0;
		int r = rd(m, &v);
		if (r == 0)
			s->readable++;
		else if (r == GP_RESULT)
			s->gp++;
		else
			s->other++;
		if (m == last)
			break;
	}
}

/* ---- samples of the table's classes (docs/MSR.md) ---- */

/* read passes through (Bochs implements each of these on both CPU models) */
static const uint32_t pass_read[] = { 0x1b /* APIC_BASE */, 0x174 /* SYSENTER_CS */, 0x1a0 /* MISC_ENABLE */,
				      0x1d9 /* DEBUGCTL */, 0x277 /* PAT */, 0xc0000080 /* EFER */,
				      0xc0000082 /* LSTAR */, 0xc0000100 /* FS_BASE */, 0xc0000102 /* KERNEL_GS_BASE */ };
/* listed as #GP for reads */
static const uint32_t gp_read[] = { 0x9b /* SMM_MONITOR_CTL */, 0xc1 /* PMC0 */, 0x186 /* PERFEVTSEL0 */,
				    0x1c9 /* LBR_TOS */, 0x309 /* FIXED_CTR0 */, 0x345 /* PERF_CAPABILITIES */,
				    0x38f /* PERF_GLOBAL_CTRL */, 0x3f1 /* PEBS_ENABLE */, 0x480 /* VMX_BASIC */,
				    0x48b /* VMX_PROCBASED_CTLS2 */, 0x560 /* RTIT_OUTPUT_BASE */, 0x570 /* RTIT_CTL */,
				    0x580 /* RTIT_ADDR0_A */, 0x600 /* DS_AREA */, 0x680 /* LASTBRANCH_0_FROM */,
				    0x79 /* BIOS_UPDT_TRIG (write-only) */ };
/* not listed: #GP whatever the processor has */
static const uint32_t unlisted[] = { 0x0, 0x1, 0x2, 0x33 /* TEST_CTRL */, 0x1a4, 0x1fc /* POWER_CTL */, 0x606,
				     0x611, 0xc80 /* DEBUG_INTERFACE */, 0x1fff, 0xc0000000, 0xc0000104,
				     0xc0001fff };
static const uint32_t outside[] = { 0x2000, 0x40000000, 0x40000001, 0x4b564d00, 0xc0010000, 0xc0011020,
				    0xffffffff };

static unsigned count_gp(const uint32_t *m, unsigned n, int write, uint64_t val, char *first_bad, unsigned sz)
{
	unsigned gp = 0;
	first_bad[0] = 0;
	for (unsigned i = 0; i < n; i++) {
		uint64_t v = val;
		int r = write ? wr(m[i], v) : rd(m[i], &v);
		if (r == GP_RESULT)
			gp++;
		else if (!first_bad[0])
			fmt_snprintf(first_bad, sz, " (first exception: 0x%x gave %d)", m[i], r);
	}
	return gp;
}

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *st)
{
	spp_start(image, st, POINTS);
	struct hostile_guard g;
	int gs = hostile_guard_setup(&g);
	tap_ok(gs == 0, "guard page protected before the attacks (SET %lld)", (long long)g.set_status);
	uint64_t hv_base = 0, hv_size = 0;
	if (!hv_region(&hv_base, &hv_size))
		tap_diag("no hypervisor region table: hostile addresses fall back to 0x100000");
	if (!hv_base)
		hv_base = 0x100000;
	tap_diag("hypervisor region 0x%llx + 0x%llx", (unsigned long long)hv_base, (unsigned long long)hv_size);
	char why[96];

	/* outside both bitmap ranges: always an exit, always refused */
	struct sweep lo = { 0 }, hi = { 0 }, out = { 0 };
	for (unsigned i = 0; i < ARRAY_SIZE(outside); i++)
		sweep(outside[i], outside[i], &out);

	/* ---- 2. hostile writes ---- */
	struct { uint32_t msr; uint64_t val; const char *what; } hostile[] = {
		{ 0x560, hv_base, "RTIT_OUTPUT_BASE = hypervisor region" },
		{ 0x561, 0x7f, "RTIT_OUTPUT_MASK_PTRS" },
		{ 0x570, (1ull << 0) | (1ull << 2) | (1ull << 3) | (1ull << 8), "RTIT_CTL TraceEn|OS|User|ToPA" },
		{ 0x600, hv_base, "DS_AREA = hypervisor region" },
		{ 0x3f1, 1, "PEBS_ENABLE" },
		{ 0x186, (1ull << 22) | (1ull << 17) | 0x3c, "PERFEVTSEL0 enabled" },
		{ 0xc1, 0xfffffffffff0ull, "PMC0 near overflow" },
		{ 0x38f, 0xff, "PERF_GLOBAL_CTRL" },
		{ 0x38d, 0x333, "FIXED_CTR_CTRL" },
		{ 0x1d9, (1ull << 6) | (1ull << 7) | (1ull << 8), "DEBUGCTL TR|BTS|BTINT" },
		{ 0xda0, 1ull << 8, "XSS with PT state" },
		{ 0x9b, hv_base | 1, "SMM_MONITOR_CTL" },
		{ 0x3a, 5, "FEATURE_CONTROL" },
		{ 0x481, 0, "VMX_PINBASED_CTLS" },
		{ 0x33, 1ull << 29, "TEST_CTRL split-lock detect (unlisted)" },
		{ 0xc80, 1, "DEBUG_INTERFACE (unlisted)" },
		{ 0xc0010015, 0, "AMD HWCR (unlisted)" },
	};
	unsigned gp = 0, kept = 0, readable = 0;
	for (unsigned i = 0; i < ARRAY_SIZE(hostile); i++) {
		uint64_t before = 0, after = 0;
		int rb = rd(hostile[i].msr, &before);
		int w = wr(hostile[i].msr, hostile[i].val);
		int ra = rd(hostile[i].msr, &after);
		if (w == GP_RESULT)
			gp++;
		else
			tap_diag("hostile WRMSR %s (0x%x) gave %d", hostile[i].what, hostile[i].msr, w);
		if (rb == 0) {
			readable++;
			if (ra == 0 && after == before)
				kept++;
		}
	}
	tap_ok(gp == ARRAY_SIZE(hostile) && kept == readable,
	       "hostile WRMSRs (PT at the region, DS/PEBS, counters, BTS, XSS.PT, SMM, VMX, unlisted): all #GP (%u of %u), "
	       "readable ones unchanged (%u of %u)", gp, (unsigned)ARRAY_SIZE(hostile), kept, readable);
	uint64_t misc = 0;
	int r = rd(0x1a0, &misc);
	int w = wr(0x1a0, misc | (1ull << 34));
	uint64_t misc_after = 0;
	rd(0x1a0, &misc_after);
	tap_ok(r == 0 && w == GP_RESULT && misc_after == misc,
	       "MISC_ENABLE: setting XD Bit Disable #GP, value kept (0x%llx)", (unsigned long long)misc_after);
	w = wr(0x79, gpa_of(g.page));
	tap_ok(w == 0, "microcode update trigger (0x79) ignored: no fault (got %d)", w);

	/* ---- 1. read sweeps ---- */
	/* (after the hostile writes: their log lines come before the sweep reaches the cap on
	 * logged unlisted MSRs) */
	sweep(0x0, 0x1fff, &lo);
	sweep(0xc0000000u, 0xc0001fffu, &hi);
	tap_diag("RDMSR 0x0-0x1fff: %u readable, %u #GP, %u other", lo.readable, lo.gp, lo.other);
	tap_diag("RDMSR 0xc0000000-0xc0001fff: %u readable, %u #GP, %u other", hi.readable, hi.gp, hi.other);
	tap_diag("RDMSR outside both ranges: %u readable, %u #GP, %u other", out.readable, out.gp, out.other);
	/* Deny by default: the readable ones are only what the table passes through (about 480
	 * in the low range, 9 in the high one), never the thousands a processor answers. */
	tap_ok(lo.other == 0 && hi.other == 0 && lo.readable > 20 && lo.readable <= 500 && hi.readable >= 3 &&
		       hi.readable <= 9 && out.readable == 0 && out.gp == ARRAY_SIZE(outside),
	       "read sweeps: only listed MSRs readable, the rest #GP, nothing else raised");

	unsigned ok = 0;
	for (unsigned i = 0; i < ARRAY_SIZE(pass_read); i++) {
		uint64_t v = 0;
		if (rd(pass_read[i], &v) == 0)
			ok++;
		else
			tap_diag("pass-through MSR 0x%x did not read", pass_read[i]);
	}
	tap_ok(ok == ARRAY_SIZE(pass_read), "pass-through MSRs read (%u of %u)", ok, (unsigned)ARRAY_SIZE(pass_read));
	uint64_t fc = 0;
	r = rd(0x3a, &fc);
	tap_ok(r == 0 && fc == 1, "IA32_FEATURE_CONTROL reads as locked, VMX off (got %d, 0x%llx)", r,
	       (unsigned long long)fc);
	unsigned n = count_gp(gp_read, ARRAY_SIZE(gp_read), 0, 0, why, sizeof(why));
	tap_ok(n == ARRAY_SIZE(gp_read), "PT, PMU, PEBS, DS area, LBR, VMX, SMM MSRs: RDMSR #GP (%u of %u)%s", n,
	       (unsigned)ARRAY_SIZE(gp_read), why);
	n = count_gp(unlisted, ARRAY_SIZE(unlisted), 0, 0, why, sizeof(why));
	tap_ok(n == ARRAY_SIZE(unlisted), "unlisted MSRs: RDMSR #GP (%u of %u)%s", n, (unsigned)ARRAY_SIZE(unlisted), why);

	/* ---- 3. write-back of what a kernel writes ---- */
	const uint32_t writeback[] = { 0x1b, 0x174, 0x175, 0x176, 0x1a0, 0x1d9, 0x277, 0x2ff, 0xc0000080, 0xc0000081,
				       0xc0000082, 0xc0000084, 0xc0000100, 0xc0000102 };
	unsigned wb_ok = 0;
	for (unsigned i = 0; i < ARRAY_SIZE(writeback); i++) {
		uint64_t v = 0, v2 = 0;
		if (rd(writeback[i], &v) == 0 && wr(writeback[i], v) == 0 && rd(writeback[i], &v2) == 0 && v2 == v)
			wb_ok++;
		else
			tap_diag("write-back of MSR 0x%x failed", writeback[i]);
	}
	tap_ok(wb_ok == ARRAY_SIZE(writeback), "current values written back to %u of %u pass-through/virtualized MSRs",
	       wb_ok, (unsigned)ARRAY_SIZE(writeback));

	/* ---- 4. MTRRs ---- */
	uint64_t cap = 0, deftype = 0;
	int mr = rd(0xfe, &cap) | rd(0x2ff, &deftype);
	unsigned vcnt = (unsigned)(cap & 0xff), free_idx = ~0u;
	for (unsigned i = 0; i < vcnt && mr == 0; i++) {
		uint64_t mask = 0;
		if (rd(0x201 + 2 * i, &mask) == 0 && !(mask & (1ull << 11))) {
			free_idx = i;
			break;
		}
	}
	int mtrr_ok = mr == 0 && free_idx != ~0u;
	if (mtrr_ok) {
		uint32_t base_msr = 0x200 + 2 * free_idx, mask_msr = base_msr + 1;
		uint64_t ob = 0, om = 0;
		rd(base_msr, &ob);
		rd(mask_msr, &om);
		uint64_t size = 0x200000, mask = ~(size - 1) & ((1ull << 36) - 1);
		/* UC over the hypervisor's region, then a reserved type, then restore */
		int w1 = wr(base_msr, (hv_base & ~(size - 1)) | 0);
		int w2 = wr(mask_msr, mask | (1ull << 11));
		int w3 = wr(base_msr, (hv_base & ~(size - 1)) | 2); /* type 2 is reserved */
		int w4 = wr(0x2ff, (deftype & ~0xffull) | 3);        /* reserved default type */
		int w5 = wr(mask_msr, om) | wr(base_msr, ob) | wr(0x2ff, deftype);
		uint64_t nb = 0, nm = 0, nd = 0;
		rd(base_msr, &nb);
		rd(mask_msr, &nm);
		rd(0x2ff, &nd);
		tap_diag("MTRR %u: UC over the region %d/%d, reserved type %d, reserved default %d, restore %d", free_idx, w1,
			 w2, w3, w4, w5);
		mtrr_ok = w1 == 0 && w2 == 0 && w3 == GP_RESULT && w4 == GP_RESULT && w5 == 0 && nb == ob && nm == om &&
			  nd == deftype;
	}
	tap_ok(mtrr_ok, "MTRR writes (UC over the hypervisor region; reserved types #GP; restored) handled");

	/* ---- 5. IA32_APIC_BASE ---- */
	uint64_t apic = 0;
	r = rd(0x1b, &apic);
	uint64_t relocated = (hv_base & ~0xfffull) | (apic & 0xfff);
	w = wr(0x1b, relocated);
	uint64_t now = 0;
	rd(0x1b, &now);
	if (now != apic)
		wr(0x1b, apic);
	tap_ok(r == 0 && (now & ~0xfffull) != (hv_base & ~0xfffull),
	       "APIC_BASE relocation onto the hypervisor region does not take (WRMSR %d, base now 0x%llx)", w,
	       (unsigned long long)now);
	w = wr(0x1b, apic & ~(1ull << 11));
	rd(0x1b, &now);
	if (now != apic)
		wr(0x1b, apic);
	tap_ok((now & (1ull << 11)) != 0, "APIC disable does not take (WRMSR %d, APIC_BASE now 0x%llx)", w,
	       (unsigned long long)now);

	hostile_postcheck(&g, "the MSR attacks");
	guest_finish();
}
