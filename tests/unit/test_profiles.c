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

static bool setup_runs(const struct vmx_profile *p)
{
	/* The ones without secondary controls get no VMCS (no EPT). */
	return !p->refusal;
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
		ps_teardown();
	}
	ps_vmcs_fill = 0;
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
		cmocka_unit_test(test_other_cpu_capabilities),
		cmocka_unit_test(test_init_sipi_and_mode_switches),
		cmocka_unit_test(test_injection_protected_mode),
		cmocka_unit_test(test_injection_real_mode),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
