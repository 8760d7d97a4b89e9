/*
 * The real VMCS setup against the capabilities of real processors and of KVM's nested VMX
 * (tests/data/vmx_profiles): for each profile Tessel either refuses with a clear reason, or
 * the VMCS it builds passes the VM-entry checker (hv/entry_check.c) at the first VMLAUNCH,
 * after INIT and SIPI, after the guest's CR0/CR4 writes (hv/exit_cr.c) through real,
 * protected and long mode, and with exceptions injected in each mode (hv/vcpu.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "profile_setup.h"
#include "hv/exit.h"

static void check_now(const char *what)
{
	struct entry_check_result r;
	entry_check(&vmx_caps, &r);
	assert_entry_ok(&r, what);
}

static const struct vmx_profile *find_profile(const char *name)
{
	for (size_t i = 0; i < vmx_profile_count; i++)
		if (!strcmp(vmx_profiles[i].name, name))
			return &vmx_profiles[i];
	fail_msg("no profile %s", name);
	return NULL;
}

/*
 * Derivations the profiles rely on, checked rather than trusted.
 *
 * 1. IA32_VMX_{PINBASED,PROCBASED,EXIT,ENTRY}_CTLS = the TRUE MSR with the default1 bits
 *    forced to 1 (SDM Vol. 3D A.2, A.3.1-A.5): the allowed-1 words are the same. The Tiger
 *    Lake dump has only the TRUE pin/proc MSRs; its non-TRUE ones are derived by this rule,
 *    which every dumped MSR pair here must obey (Skylake, Skylake-X, Comet Lake, and Tiger
 *    Lake's own exit/entry pairs).
 */
#define DEFAULT1_PIN   0x00000016U
#define DEFAULT1_PROC  0x0401e172U
#define DEFAULT1_EXIT  0x00036dffU
#define DEFAULT1_ENTRY 0x000011ffU

static u64 with_default1(u64 true_msr, u32 default1)
{
	return true_msr | default1 | ((u64)default1 << 32);
}

static void test_derivation_true_ctls(void **state)
{
	(void)state;
	unsigned checked = 0;
	for (size_t i = 0; i < vmx_profile_count; i++) {
		const struct vmx_profile *p = &vmx_profiles[i];
		if (!(p->basic & VMX_BASIC_TRUE_CTLS))
			continue;
		if (p->pin != with_default1(p->true_pin, DEFAULT1_PIN) ||
		    p->proc != with_default1(p->true_proc, DEFAULT1_PROC) ||
		    p->exit != with_default1(p->true_exit, DEFAULT1_EXIT) ||
		    p->entry != with_default1(p->true_entry, DEFAULT1_ENTRY))
			fail_msg("%s: a non-TRUE control MSR is not its TRUE MSR with the default1 bits set", p->name);
		/* TRUE MSRs may only allow clearing default1 bits, never add must-be-1 bits. */
		assert_int_equal((u32)p->true_pin & ~DEFAULT1_PIN, 0);
		assert_int_equal((u32)p->true_proc & ~DEFAULT1_PROC, 0);
		assert_int_equal((u32)p->true_exit & ~DEFAULT1_EXIT, 0);
		assert_int_equal((u32)p->true_entry & ~DEFAULT1_ENTRY, 0);
		checked++;
	}
	assert_true(checked >= 4);
}

/*
 * 2. QEMU named models: QEMU's VMX feature words (target/i386/cpu.c, transcribed here by
 *    SDM bit with QEMU's names) become, for a KVM guest, allowed-1 = features | KVM's
 *    must-be-1 bits, allowed-0 = KVM's must-be-1 bits (make_vmx_msr_value), plus "host
 *    address-space size" for a 64-bit guest. The Alder Lake stand-ins are SapphireRapids /
 *    SierraForest minus exactly the bits their sources remove.
 */
#define B(n) (1U << (n))
/* FEAT_VMX_PINBASED_CTLS: EXT_INTR_MASK, NMI_EXITING, VIRTUAL_NMIS, VMX_PREEMPTION_TIMER,
 * POSTED_INTR */
#define QEMU_PIN_2022 (B(0) | B(3) | B(5) | B(6) | B(7))
/* FEAT_VMX_PROCBASED_CTLS: VIRTUAL_INTR_PENDING, USE_TSC_OFFSETING, HLT, INVLPG, MWAIT,
 * RDPMC, RDTSC, CR3_LOAD, CR3_STORE, CR8_LOAD, CR8_STORE, TPR_SHADOW, VIRTUAL_NMI_PENDING,
 * MOV_DR, UNCOND_IO, USE_IO_BITMAPS, MONITOR_TRAP_FLAG, USE_MSR_BITMAPS, MONITOR, PAUSE,
 * ACTIVATE_SECONDARY_CONTROLS */
#define QEMU_PROC_2022 (B(2) | B(3) | B(7) | B(9) | B(10) | B(11) | B(12) | B(15) | B(16) | B(19) | \
			B(20) | B(21) | B(22) | B(23) | B(24) | B(25) | B(27) | B(28) | B(29) | B(30) | B(31))
/* FEAT_VMX_SECONDARY_CTLS: VIRTUALIZE_APIC_ACCESSES, ENABLE_EPT, DESC, RDTSCP,
 * VIRTUALIZE_X2APIC_MODE, ENABLE_VPID, WBINVD_EXITING, UNRESTRICTED_GUEST,
 * APIC_REGISTER_VIRT, VIRTUAL_INTR_DELIVERY, RDRAND_EXITING, ENABLE_INVPCID, ENABLE_VMFUNC,
 * SHADOW_VMCS, RDSEED_EXITING, ENABLE_PML, XSAVES */
#define QEMU_PROC2_2022 (B(0) | B(1) | B(2) | B(3) | B(4) | B(5) | B(6) | B(7) | B(8) | B(9) | B(11) | \
			 B(12) | B(13) | B(14) | B(16) | B(17) | B(20))
/* FEAT_VMX_EXIT_CTLS: SAVE_DEBUG_CONTROLS, LOAD_IA32_PERF_GLOBAL_CTRL, ACK_INTR_ON_EXIT,
 * SAVE/LOAD_IA32_PAT, SAVE/LOAD_IA32_EFER, SAVE_VMX_PREEMPTION_TIMER; + HOST_ADDR_SPACE_SIZE */
#define QEMU_EXIT_2022 (B(2) | B(12) | B(15) | B(18) | B(19) | B(20) | B(21) | B(22) | B(9))
/* FEAT_VMX_ENTRY_CTLS: LOAD_DEBUG_CONTROLS, IA32E_MODE, LOAD_IA32_PERF_GLOBAL_CTRL,
 * LOAD_IA32_PAT, LOAD_IA32_EFER */
#define QEMU_ENTRY_2022 (B(2) | B(9) | B(13) | B(14) | B(15))
/* FEAT_VMX_EPT_VPID_CAPS: EXECONLY, PAGE_WALK_LENGTH_4, [PAGE_WALK_LENGTH_5], WB, 2MB, 1GB,
 * INVEPT, AD_BITS, INVEPT_SINGLE/ALL_CONTEXT, INVVPID, INVVPID_SINGLE_ADDR / SINGLE_CONTEXT /
 * ALL_CONTEXT / SINGLE_CONTEXT_NOGLOBALS */
#define QEMU_EPT_PWL5 (1ULL << 7)
#define QEMU_EPT_2022 ((1ULL << 0) | (1ULL << 6) | (1ULL << 14) | (1ULL << 16) | (1ULL << 17) | (1ULL << 20) | \
		       (1ULL << 21) | (1ULL << 25) | (1ULL << 26) | (1ULL << 32) | (1ULL << 40) | (1ULL << 41) | \
		       (1ULL << 42) | (1ULL << 43))
/* KVM's must-be-1 bits of the TRUE MSRs (default1 minus CR3-load/store exiting, save/load
 * debug controls). */
#define KVM_TRUE_PIN   0x00000016U
#define KVM_TRUE_PROC  0x04006172U
#define KVM_TRUE_EXIT  0x00036dfbU
#define KVM_TRUE_ENTRY 0x000011fbU

static u64 qemu_msr(u32 features, u32 must1) { return ((u64)(features | must1) << 32) | must1; }

static void test_derivation_qemu_models(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		u64 ept, drop_proc2, drop_ept;
	} models[] = {
		{ "qemu-icelake-server-v5", QEMU_EPT_2022, 0, 0 },
		{ "qemu-sapphirerapids", QEMU_EPT_2022 | QEMU_EPT_PWL5, 0, 0 },
		{ "qemu-graniterapids", QEMU_EPT_2022 | QEMU_EPT_PWL5, 0, 0 },
		{ "qemu-sierraforest", QEMU_EPT_2022, 0, 0 },
		/* SapphireRapids words without PML and 5-level EPT (hybrid P-core reports). */
		{ "alderlake-p", QEMU_EPT_2022 | QEMU_EPT_PWL5, PROC2_ENABLE_PML, QEMU_EPT_PWL5 },
		/* SierraForest words without PML (Gracemont reports). */
		{ "alderlake-e", QEMU_EPT_2022, PROC2_ENABLE_PML, 0 },
	};
	for (size_t i = 0; i < sizeof(models) / sizeof(models[0]); i++) {
		const struct vmx_profile *p = find_profile(models[i].name);
		assert_true(p->basic & VMX_BASIC_TRUE_CTLS);
		if (p->true_pin != qemu_msr(QEMU_PIN_2022, KVM_TRUE_PIN) ||
		    p->true_proc != qemu_msr(QEMU_PROC_2022, KVM_TRUE_PROC) ||
		    p->true_exit != qemu_msr(QEMU_EXIT_2022, KVM_TRUE_EXIT) ||
		    p->true_entry != qemu_msr(QEMU_ENTRY_2022, KVM_TRUE_ENTRY))
			fail_msg("%s: control MSRs are not QEMU's feature words | KVM's must-be-1 bits", p->name);
		if (p->proc2 != ((u64)(QEMU_PROC2_2022 & ~(u32)models[i].drop_proc2) << 32))
			fail_msg("%s: secondary controls 0x%llx", p->name, (unsigned long long)p->proc2);
		if (p->ept_vpid != (models[i].ept & ~models[i].drop_ept))
			fail_msg("%s: EPT/VPID capabilities 0x%llx", p->name, (unsigned long long)p->ept_vpid);
	}
	/* The two stand-ins come out identical in every VMX capability MSR: what their sources
	 * show for shipped hybrid parts (test_hybrid_pair). */
	const struct vmx_profile *pc = find_profile("alderlake-p"), *ec = find_profile("alderlake-e");
	assert_memory_equal(&pc->basic, &ec->basic, offsetof(struct vmx_profile, refusal) - offsetof(struct vmx_profile, basic));
}

/*
 * A hybrid part runs the BSP's VMCS setup on both core types (hv/vmx.c: one setup, one EPT,
 * one SPP mode; vmx_caps_differ() refuses an AP whose capabilities differ). What the sources
 * show for shipped Alder Lake: the same VMX capabilities per core type (ACRN board inspector,
 * Core i7-12700E, Core and Atom lists identical; Linux vmx flags equal on P- and E-cores, PML
 * and 5-level EPT reported by neither), so the P/E stand-ins must start on each other's
 * setup and pass the checker. Differences the sources show elsewhere -- a P-core-only die
 * reporting PML (Core i5-12400), the server models' 5-level EPT on the P-core
 * (SapphireRapids vs SierraForest) -- must be refused before VMXON with the MSR named.
 */
static s64 start_ap(const struct vmx_profile *bsp_p, const struct vmx_profile *ap_p)
{
	ps_setup(bsp_p);
	struct vmx_caps bsp = vmx_caps;
	ps_teardown();
	ps_bsp_caps = &bsp;
	s64 rc = ps_setup(ap_p);
	ps_bsp_caps = NULL;
	return rc;
}

static void test_hybrid_pair(void **state)
{
	(void)state;
	const struct vmx_profile *pc = find_profile("alderlake-p"), *ec = find_profile("alderlake-e");
	const struct vmx_profile *pairs[][2] = { { pc, ec }, { ec, pc } };
	for (size_t i = 0; i < 2; i++) {
		start_ap(pairs[i][0], pairs[i][1]);
		if (strstr(fake_io_output(), "differ from the bootstrap processor's"))
			fail_msg("%s AP refused under a %s BSP: %s", pairs[i][1]->name, pairs[i][0]->name, fake_io_output());
		assert_int_equal(ps_launches, 1);
		assert_entry_ok(&ps_launch_result, "the AP's first VMLAUNCH on the other core type's setup");
		ps_teardown();
	}
	print_message("alderlake-p + alderlake-e: each starts on the other's setup\n");

	/* Differences in features Tessel never enables do not matter: a P-core-only die's
	 * firmware reporting PML next to a Gracemont core, or 5-level EPT on one core type only.
	 * Each starts and passes the checker. */
	struct vmx_profile p_pml = *pc;
	p_pml.name = "alderlake-p with PML (P-core-only die)";
	p_pml.proc2 |= (u64)PROC2_ENABLE_PML << 32;
	struct vmx_profile p_5l = *pc;
	p_5l.name = "alderlake-p with 5-level EPT";
	p_5l.ept_vpid |= EPT_CAP_PWL5;
	const struct vmx_profile *accepted[][2] = {
		{ &p_pml, ec },
		{ ec, &p_pml },
		{ &p_5l, ec },
		{ ec, &p_5l },
	};
	for (size_t i = 0; i < sizeof(accepted) / sizeof(accepted[0]); i++) {
		start_ap(accepted[i][0], accepted[i][1]);
		if (strstr(fake_io_output(), "differ from the bootstrap processor's"))
			fail_msg("%s AP refused under a %s BSP: %s", accepted[i][1]->name, accepted[i][0]->name,
				 fake_io_output());
		assert_int_equal(ps_launches, 1);
		assert_entry_ok(&ps_launch_result, "the AP's first VMLAUNCH beside an unused-feature difference");
		ps_teardown();
	}

	/* Differences in what the setup uses are refused before VMXON, the MSR named: an E-core
	 * without the VPID control the BSP uses, a different preemption-timer rate (single steps
	 * are bounded with it), no 1 GiB EPT leaves (the EPT is built once, with them); and the
	 * server models SapphireRapids and SierraForest, which differ in the CR4 bits VMX allows
	 * (guest CR4 values valid on one would fail VM entry on the other). */
	struct vmx_profile e_novpid = *ec, e_rate = *ec, e_no1g = *ec;
	e_novpid.name = "alderlake-e without VPID";
	e_novpid.proc2 &= ~((u64)PROC2_ENABLE_VPID << 32);
	e_rate.name = "alderlake-e with another timer rate";
	e_rate.misc ^= 1;
	e_no1g.name = "alderlake-e without 1 GiB EPT pages";
	e_no1g.ept_vpid &= ~EPT_CAP_1G;
	static const char *const what[] = { "secondary processor-based controls", "IA32_VMX_MISC",
					    "EPT and VPID capabilities", "IA32_VMX_CR4_FIXED1",
					    "IA32_VMX_CR4_FIXED1" };
	const struct vmx_profile *spr = find_profile("qemu-sapphirerapids"), *srf = find_profile("qemu-sierraforest");
	const struct vmx_profile *bsps[] = { pc, pc, pc, spr, srf };
	const struct vmx_profile *refused[] = { &e_novpid, &e_rate, &e_no1g, srf, spr };
	if (!(pc->proc2 & ((u64)PROC2_ENABLE_VPID << 32)))
		fail_msg("the alderlake-p stand-in offers no VPID: pick another used control");
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		s64 rc = start_ap(bsps[i], refused[i]);
		assert_int_equal(rc, -ENODEV);
		assert_int_equal(ps_launches, 0);
		assert_int_equal(fake_vmxon_region().v, 0); /* refused before VMXON */
		assert_non_null(strstr(fake_io_output(), "differ from the bootstrap processor's"));
		if (!strstr(fake_io_output(), what[i]))
			fail_msg("%s AP under %s BSP: expected '%s' in: %s", refused[i]->name, bsps[i]->name, what[i],
				 fake_io_output());
		ps_teardown();
	}
}

static bool setup_runs(const struct vmx_profile *p)
{
	/* The ones without secondary controls get no VMCS (no EPT). */
	return !p->refusal;
}

/* The controls the real setup writes stay inside the masks vmx_caps_differ() compares (and
 * the must-be-1 bits): a control used without being added there would let a hybrid part's
 * core type without it start, and fail its first VM entry. */
static void test_used_controls(void **state)
{
	(void)state;
	for (size_t i = 0; i < vmx_profile_count; i++) {
		const struct vmx_profile *p = &vmx_profiles[i];
		if (!setup_runs(p))
			continue;
		ps_setup(p);
		const u64 allowed[] = { vmx_caps.pin, vmx_caps.proc, vmx_caps.proc2, vmx_caps.exit, vmx_caps.entry };
		const u32 written[] = { vmcs_read32(VMCS_CTRL_PIN_BASED), vmcs_read32(VMCS_CTRL_PROC_BASED),
					vmcs_read32(VMCS_CTRL_PROC_BASED2), vmcs_read32(VMCS_CTRL_EXIT),
					vmcs_read32(VMCS_CTRL_ENTRY) };
		for (unsigned w = 0; w < 5; w++) {
			u32 v = written[w];
			u32 extra = v & ~vmx_used_ctls(w) & ~(u32)allowed[w];
			if (extra)
				fail_msg("%s: control word %u sets %#x outside vmx_used_ctls()", p->name, w, extra);
		}
		ps_teardown();
	}
}


struct reasons { char text[1024]; int n; };

static void collect(void *ctx, const char *reason)
{
	struct reasons *r = ctx;
	size_t o = strlen(r->text);
	snprintf(r->text + o, sizeof(r->text) - o, "%s; ", reason);
	r->n++;
}

static void test_refusals(void **state)
{
	(void)state;
	for (size_t i = 0; i < vmx_profile_count; i++) {
		const struct vmx_profile *p = &vmx_profiles[i];
		fake_reset();
		ps_load_profile(p);
		struct reasons r = { .text = "", .n = 0 };
		int missing = vmx_caps_check(&vmx_caps, collect, &r);
		assert_int_equal(missing, r.n);
		if (!p->refusal) {
			if (missing)
				fail_msg("%s: refused: %s", p->name, r.text);
			continue;
		}
		if (!missing || !strstr(r.text, p->refusal))
			fail_msg("%s: expected refusal '%s', got '%s'", p->name, p->refusal, r.text);
		print_message("%s: refused: %s\n", p->name, r.text);
	}
}

static void test_first_launch(void **state)
{
	(void)state;
	for (size_t i = 0; i < vmx_profile_count; i++) {
		const struct vmx_profile *p = &vmx_profiles[i];
		s64 rc = ps_setup(p);
		assert_true(rc < 0); /* the stub VMLAUNCH always "fails" */
		if (!setup_runs(p)) {
			/* Refused before any VMLAUNCH, with the reason on the log. */
			assert_int_equal(ps_launches, 0);
			assert_non_null(strstr(fake_io_output(), "required VMX controls not allowed"));
			ps_teardown();
			continue;
		}
		assert_int_equal(ps_launches, 1);
		assert_entry_ok(&ps_launch_result, "the first VMLAUNCH");
		/* What the checker relied on is what the profile allows (sanity of the harness). */
		assert_true(vmcs_read32(VMCS_CTRL_PROC_BASED2) & PROC2_ENABLE_EPT);
		assert_true(vmcs_read32(VMCS_CTRL_ENTRY) & ENTRY_IA32E_MODE_GUEST);
		ps_teardown();
	}
}

/*
 * IA32_SPEC_CTRL passes through, so VMX switches it (hv/vmx.c setup_spec_ctrl): the VM-exit
 * MSR-store and VM-entry MSR-load areas are one 16-byte aligned entry of this vCPU holding the
 * OS's value, the VM-exit MSR-load area the host's (IBRS with enhanced IBRS, else 0); where
 * CPUID does not enumerate the MSR no area is used. The VMCS passes the entry checks.
 */
static void spec_ctrl_case(u32 edx, u64 arch_cap, u64 os_value, bool switched, u64 host)
{
	const struct vmx_profile *p = find_profile("kvm-nested-icelake");
	ps_cpuid7_edx = edx;
	ps_arch_cap = arch_cap;
	ps_spec_ctrl = os_value;
	assert_true(ps_setup(p) < 0);
	ps_cpuid7_edx = 0;
	assert_int_equal(ps_launches, 1);
	assert_entry_ok(&ps_launch_result, "the first VMLAUNCH with IA32_SPEC_CTRL switched");
	u32 n = switched ? 1 : 0;
	assert_int_equal(vmcs_read32(VMCS_CTRL_EXIT_MSR_STORE_COUNT), n);
	assert_int_equal(vmcs_read32(VMCS_CTRL_EXIT_MSR_LOAD_COUNT), n);
	assert_int_equal(vmcs_read32(VMCS_CTRL_ENTRY_MSR_LOAD_COUNT), n);
	if (switched) {
		u64 guest = vmcs_read64(VMCS_CTRL_EXIT_MSR_STORE_ADDR), hosta = vmcs_read64(VMCS_CTRL_EXIT_MSR_LOAD_ADDR);
		assert_int_equal(vmcs_read64(VMCS_CTRL_ENTRY_MSR_LOAD_ADDR), guest); /* stored at exit, loaded at entry */
		assert_int_equal(guest & 15, 0);
		assert_int_equal(hosta & 15, 0);
		const struct vmx_msr_entry *g = hpa_to_ptr(hpa(guest)), *h = hpa_to_ptr(hpa(hosta));
		assert_int_equal(g->index, MSR_IA32_SPEC_CTRL);
		assert_int_equal(g->reserved, 0);
		assert_int_equal(g->value, os_value);
		assert_int_equal(h->index, MSR_IA32_SPEC_CTRL);
		assert_int_equal(h->reserved, 0);
		assert_int_equal(h->value, host);
		assert_int_equal(guest, ps_cpu.msr_area.v);
	}
	/* The failed start handed the OS its own value back. */
	assert_int_equal(fake_msr_get(MSR_IA32_SPEC_CTRL), os_value);
	ps_teardown();
}

static void test_spec_ctrl_switched(void **state)
{
	(void)state;
	/* Ice Lake: IBRS/IBPB, STIBP, SSBD, ARCH_CAPABILITIES with IBRS_ALL. */
	u32 icl = CPUID7_EDX_IBRS_IBPB | CPUID7_EDX_STIBP | CPUID7_EDX_ARCH_CAP | CPUID7_EDX_SSBD;
	spec_ctrl_case(icl, ARCH_CAP_IBRS_ALL | ARCH_CAP_PSCHANGE_MC_NO, 0x6, true, SPEC_CTRL_IBRS);
	/* The OS cleared IBRS before Tessel loaded: still IBRS in root mode. */
	spec_ctrl_case(icl, ARCH_CAP_IBRS_ALL, 0, true, SPEC_CTRL_IBRS);
	/* Skylake: the MSR without enhanced IBRS (no ARCH_CAPABILITIES, or without IBRS_ALL). */
	spec_ctrl_case(CPUID7_EDX_IBRS_IBPB | CPUID7_EDX_STIBP, 0, 0x1, true, 0);
	spec_ctrl_case(icl, ARCH_CAP_PSCHANGE_MC_NO, 0x4, true, 0);
	/* SSBD alone enumerates the MSR too. */
	spec_ctrl_case(CPUID7_EDX_SSBD, 0, 0x4, true, 0);
	/* No IA32_SPEC_CTRL: no MSR area. */
	spec_ctrl_case(0, 0, 0, false, 0);
}

/* A processor whose capabilities differ from the BSP's (a hybrid part's other core type,
 * firmware that set one up differently) is refused before VMXON, with the difference named;
 * the same capabilities start. */
static void test_other_cpu_capabilities(void **state)
{
	(void)state;
	for (size_t i = 0; i < vmx_profile_count; i++) {
		const struct vmx_profile *p = &vmx_profiles[i];
		if (!setup_runs(p))
			continue;
		ps_setup(p); /* the BSP's capabilities are vmx_caps now */
		ps_teardown();
		static const struct { u32 msr; u64 flip; const char *name; } diffs[] = {
			{ MSR_IA32_VMX_PROCBASED_CTLS2, 1ULL << 33 /* allowed-1: enable EPT */, "secondary" },
			{ MSR_IA32_VMX_EPT_VPID_CAP, 1ULL << 17 /* 1 GiB EPT pages */, "EPT and VPID" },
			{ MSR_IA32_VMX_MISC, 0x1f /* preemption-timer rate */, "IA32_VMX_MISC" },
			{ MSR_IA32_VMX_CR4_FIXED1, 1ULL << 23 /* CET */, "CR4_FIXED1" },
		};
		for (size_t k = 0; k < sizeof(diffs) / sizeof(diffs[0]); k++) {
			fake_reset();
			ps_load_profile(p);
			struct vmx_caps bsp = vmx_caps;
			fake_phys_init(PS_PHYS_BASE, PS_PHYS_SIZE);
			pmm_init(hpa(PS_PHYS_BASE), PS_PHYS_SIZE);
			memset(&ps_cpu, 0, sizeof(ps_cpu));
			ps_cpu.self = &ps_cpu;
			ps_cpu.regs = &ps_regs;
			ps_cpu.index = 1;
			ps_cpu.vmxon = pmm_alloc_page();
			ps_cpu.vmcs = pmm_alloc_page();
			fake_msr_set(diffs[k].msr, fake_msr_get(diffs[k].msr) ^ diffs[k].flip);
			fake_io_output_clear();
			s64 rc = vmx_cpu_start(&ps_cpu, &ps_launch);
			assert_int_equal(rc, -ENODEV);
			assert_int_equal(fake_vmxon_region().v, 0); /* refused before VMXON */
			assert_non_null(strstr(fake_io_output(), "differ from the bootstrap processor's"));
			assert_non_null(strstr(fake_io_output(), diffs[k].name));
			assert_memory_equal(&vmx_caps, &bsp, sizeof(bsp)); /* the BSP's view is unchanged */
			ps_teardown();
		}
	}
}

/* Guest MOV to CR0/CR4 through the real exit handler (qualification Table 27-3). */
static void mov_to_cr(unsigned cr, u64 v)
{
	ps_regs.gpr[GPR_AX] = v;
	fake_vmcs_set(VMCS_RO_EXIT_QUALIFICATION, cr | (0U << 4) | (GPR_AX << 8));
	fake_vmcs_set(VMCS_RO_EXIT_INSN_LEN, 3);
	ps_cpu.event_injected = false;
	exit_cr_access(&ps_cpu);
	assert_false(ps_cpu.event_injected); /* accepted, no #GP */
}

/* The same first launch over a VMCS full of junk: nothing the processor reads may be left
 * to a zeroed region. */
static void test_first_launch_over_junk(void **state)
{
	(void)state;
	ps_vmcs_fill = 0xa5a5a5a5a5a5a5a5ULL;
	unsigned rtit = 0;
	for (size_t i = 0; i < vmx_profile_count; i++) {
		const struct vmx_profile *p = &vmx_profiles[i];
		if (!setup_runs(p))
			continue;
		ps_setup(p);
		assert_int_equal(ps_launches, 1);
		assert_entry_ok(&ps_launch_result, "the first VMLAUNCH over a junk VMCS");
		/* Read by every guest XSAVES/XRSTORS when "enable XSAVES/XRSTORS" is 1
		 * (SDM 25.1.3): junk there makes them exit, and Tessel has no handler. */
		if (vmcs_read32(VMCS_CTRL_PROC_BASED2) & PROC2_ENABLE_XSAVES)
			assert_int_equal(vmcs_read64(VMCS_CTRL_XSS_EXIT_BITMAP), 0);
		/* Where the part offers them (Tiger Lake's dumped controls do; the older dumps
		 * and QEMU's words do not), Intel PT is cleared on exit and loaded as 0 on entry,
		 * and the loaded value is written, not left to the junk. */
		if (vmx_allows(vmx_caps.exit, EXIT_CLEAR_IA32_RTIT_CTL))
			assert_true(vmcs_read32(VMCS_CTRL_EXIT) & EXIT_CLEAR_IA32_RTIT_CTL);
		if (vmx_allows(vmx_caps.entry, ENTRY_LOAD_IA32_RTIT_CTL)) {
			assert_true(vmcs_read32(VMCS_CTRL_ENTRY) & ENTRY_LOAD_IA32_RTIT_CTL);
			assert_int_equal(vmcs_read64(VMCS_GUEST_IA32_RTIT_CTL), 0);
			rtit++;
		}
		ps_teardown();
	}
	ps_vmcs_fill = 0;
	assert_true(rtit > 0); /* some profile exercises the PT controls */
}

static void test_init_sipi_and_mode_switches(void **state)
{
	(void)state;
	for (size_t i = 0; i < vmx_profile_count; i++) {
		const struct vmx_profile *p = &vmx_profiles[i];
		if (!setup_runs(p))
			continue;
		ps_setup(p);

		vcpu_init_state(&ps_cpu);
		check_now("the INIT state");
		vcpu_sipi_state(&ps_cpu, 0x9a);
		check_now("the SIPI state");

		/* Real mode -> protected mode (PE) -> PAE paging -> long mode, as an AP
		 * trampoline does; the CPU itself updates the VMCS EFER on WRMSR (saved on exit). */
		mov_to_cr(0, CR0_ET | CR0_PE);
		check_now("protected mode after MOV CR0");
		mov_to_cr(4, CR4_PAE);
		check_now("CR4.PAE");
		fake_vmcs_set(VMCS_GUEST_IA32_EFER, EFER_LME);
		mov_to_cr(0, CR0_ET | CR0_PE | CR0_PG | CR0_NE);
		assert_true(fake_vmcs_get(VMCS_GUEST_IA32_EFER) & EFER_LMA);
		check_now("IA-32e mode after MOV CR0.PG");
		mov_to_cr(0, CR0_ET | CR0_PE | CR0_NE); /* paging off again: LMA clears */
		check_now("paging off");
		mov_to_cr(0, CR0_ET);                   /* back to real mode */
		check_now("real mode after MOV CR0");
		ps_teardown();
	}
}

static void test_injection_protected_mode(void **state)
{
	(void)state;
	for (size_t i = 0; i < vmx_profile_count; i++) {
		const struct vmx_profile *p = &vmx_profiles[i];
		if (!setup_runs(p))
			continue;
		ps_setup(p);
		/* Long mode (the launch state) and 32-bit protected mode. */
		vcpu_inject_gp0(&ps_cpu);
		check_now("#GP(0) injected in long mode");
		vcpu_inject_ud(&ps_cpu);
		check_now("#UD injected in long mode");
		vcpu_init_state(&ps_cpu);
		mov_to_cr(0, CR0_ET | CR0_PE);
		vcpu_inject_gp0(&ps_cpu);
		check_now("#GP(0) injected in protected mode");
		vcpu_inject_exception(&ps_cpu, VEC_PF, true, 2);
		check_now("#PF injected in protected mode");
		ps_teardown();
	}
}

static void test_injection_real_mode(void **state)
{
	(void)state;
	for (size_t i = 0; i < vmx_profile_count; i++) {
		const struct vmx_profile *p = &vmx_profiles[i];
		if (!setup_runs(p))
			continue;
		ps_setup(p);
		vcpu_init_state(&ps_cpu);
		vcpu_inject_ud(&ps_cpu);
		check_now("#UD injected in real mode");
		/* A real-mode guest has no error codes (SDM 26.2.1.3): the injection must not
		 * deliver one, or VM entry fails on every processor with unrestricted guest. */
		vcpu_inject_gp0(&ps_cpu);
		struct entry_check_result r;
		entry_check(&vmx_caps, &r);
		assert_entry_ok(&r, "#GP injected in real mode");
		ps_teardown();
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_first_launch),
		cmocka_unit_test(test_first_launch_over_junk),
		cmocka_unit_test(test_spec_ctrl_switched),
		cmocka_unit_test(test_other_cpu_capabilities),
		cmocka_unit_test(test_init_sipi_and_mode_switches),
		cmocka_unit_test(test_injection_protected_mode),
		cmocka_unit_test(test_injection_real_mode),
		cmocka_unit_test(test_derivation_true_ctls),
		cmocka_unit_test(test_derivation_qemu_models),
		cmocka_unit_test(test_hybrid_pair),
		cmocka_unit_test(test_used_controls),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
