/*
 * The VM-entry checker (hv/entry_check.c) itself: the VMCS that the real setup builds for
 * KVM's nested VMX on Ice Lake passes, and for every rule a VMCS crafted from it by one
 * small change fails with that rule. A table entry per rule; a test asserts the table
 * covers every rule, so a new rule cannot go untested.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "profile_setup.h"

enum op { END, SET, OR, CLR, CAPS_MISC };
struct change { enum op op; u32 field; u64 v; };
struct crafted {
	enum entry_rule rule;
	const char *how;
	struct change c[4];
};

#define F(n) VMCS_##n
#define NONCANON 0x0100000000000000ULL /* not canonical for 48- or 57-bit linear addresses */

static const struct crafted crafted[] = {
	{ ER_CTL_PIN_ALLOWED, "pin-based bit 8 (not allowed)", { { OR, F(CTRL_PIN_BASED), 1U << 8 } } },
	{ ER_CTL_PROC_ALLOWED, "primary bit 1 (must be 1) clear", { { CLR, F(CTRL_PROC_BASED), 1U << 1 } } },
	{ ER_CTL_PROC2_ALLOWED, "SPP on KVM (not allowed)", { { OR, F(CTRL_PROC_BASED2), PROC2_SUBPAGE_WRITE_PERM } } },
	{ ER_CTL_CR3_TARGETS, "5 CR3 targets (KVM: 0)", { { SET, F(CTRL_CR3_TARGET_COUNT), 5 } } },
	{ ER_CTL_IO_BITMAPS, "I/O bitmap A unaligned", { { OR, F(CTRL_PROC_BASED), PROC_USE_IO_BITMAPS },
							  { SET, F(CTRL_IO_BITMAP_A), 0x1001 } } },
	{ ER_CTL_MSR_BITMAP, "MSR bitmap unaligned", { { SET, F(CTRL_MSR_BITMAP), 0x1234 } } },
	{ ER_CTL_TPR_SHADOW, "virtualize x2APIC without TPR shadow", { { OR, F(CTRL_PROC_BASED2), PROC2_VIRT_X2APIC } } },
	{ ER_CTL_VIRTUAL_NMIS, "virtual NMIs without NMI exiting", { { CLR, F(CTRL_PIN_BASED), PIN_NMI_EXITING } } },
	{ ER_CTL_VPID, "VPID 0", { { SET, F(CTRL_VPID), 0 } } },
	{ ER_CTL_EPTP, "EPTP memory type WC", { { CLR, F(CTRL_EPTP), 7 }, { OR, F(CTRL_EPTP), 1 } } },
	{ ER_CTL_UG_NEEDS_EPT, "unrestricted guest without EPT", { { CLR, F(CTRL_PROC_BASED2), PROC2_ENABLE_EPT } } },
	{ ER_CTL_PML, "PML without EPT", { { CLR, F(CTRL_PROC_BASED2), PROC2_ENABLE_EPT },
					   { OR, F(CTRL_PROC_BASED2), PROC2_ENABLE_PML } } },
	{ ER_CTL_SPP, "SPPTP unaligned", { { OR, F(CTRL_PROC_BASED2), PROC2_SUBPAGE_WRITE_PERM },
					  { SET, F(CTRL_SPPTP), 0x123 } } },
	{ ER_CTL_VMFUNC, "VM function 1 (not offered)", { { OR, F(CTRL_PROC_BASED2), PROC2_ENABLE_VMFUNC },
							   { SET, F(CTRL_VMFUNC_CTRLS), 2 } } },
	{ ER_CTL_EXIT_ALLOWED, "exit bit 0 (must be 1) clear", { { CLR, F(CTRL_EXIT), 1 } } },
	{ ER_CTL_PREEMPT_SAVE, "save timer without the timer", { { OR, F(CTRL_EXIT), 1U << 22 } } },
	{ ER_CTL_EXIT_MSR_AREAS, "MSR-store area unaligned", { { SET, F(CTRL_EXIT_MSR_STORE_COUNT), 1 },
							    { SET, F(CTRL_EXIT_MSR_STORE_ADDR), 0x1008 } } },
	{ ER_CTL_ENTRY_ALLOWED, "entry bit 0 (must be 1) clear", { { CLR, F(CTRL_ENTRY), 1 } } },
	{ ER_CTL_ENTRY_SMM, "entry to SMM", { { OR, F(CTRL_ENTRY), 1U << 10 } } },
	{ ER_CTL_ENTRY_MSR_AREA, "MSR-load area unaligned", { { SET, F(CTRL_ENTRY_MSR_LOAD_COUNT), 1 },
							     { SET, F(CTRL_ENTRY_MSR_LOAD_ADDR), 0x1004 } } },
	{ ER_EVT_RESERVED, "bit 20 of the event", { { SET, F(CTRL_ENTRY_INTR_INFO),
						      INTR_INFO_VALID | INTR_TYPE_HW_EXCEPTION | VEC_UD | (1U << 20) } } },
	{ ER_EVT_TYPE, "type 1", { { SET, F(CTRL_ENTRY_INTR_INFO), INTR_INFO_VALID | (1U << 8) | 32 } } },
	{ ER_EVT_VECTOR, "NMI with vector 5", { { SET, F(CTRL_ENTRY_INTR_INFO), INTR_INFO_VALID | INTR_TYPE_NMI | 5 } } },
	{ ER_EVT_ERRCODE_MODE, "#GP with error code in real mode", {
		{ CLR, F(GUEST_CR0), CR0_PE | CR0_PG },
		{ SET, F(CTRL_ENTRY_INTR_INFO), INTR_INFO_VALID | INTR_TYPE_HW_EXCEPTION | INTR_INFO_DELIVER_CODE | VEC_GP } } },
	{ ER_EVT_ERRCODE_VECTOR, "#UD with an error code", {
		{ SET, F(CTRL_ENTRY_INTR_INFO), INTR_INFO_VALID | INTR_TYPE_HW_EXCEPTION | INTR_INFO_DELIVER_CODE | VEC_UD } } },
	{ ER_EVT_ERRCODE_BITS, "error code 0x10000", {
		{ SET, F(CTRL_ENTRY_INTR_INFO), INTR_INFO_VALID | INTR_TYPE_HW_EXCEPTION | INTR_INFO_DELIVER_CODE | VEC_GP },
		{ SET, F(CTRL_ENTRY_EXC_ERROR_CODE), 0x10000 } } },
	{ ER_EVT_INSN_LEN, "INT n with length 16", { { SET, F(CTRL_ENTRY_INTR_INFO), INTR_INFO_VALID | INTR_TYPE_SW_INTR | 0x80 },
						      { SET, F(CTRL_ENTRY_INSN_LEN), 16 } } },
	{ ER_HOST_CR0, "host CR0.NE clear", { { CLR, F(HOST_CR0), CR0_NE } } },
	{ ER_HOST_CR4, "host CR4.VMXE clear", { { CLR, F(HOST_CR4), CR4_VMXE } } },
	{ ER_HOST_CR3, "host CR3 beyond MAXPHYADDR", { { SET, F(HOST_CR3), 1ULL << 50 } } },
	{ ER_HOST_SYSENTER, "host SYSENTER_EIP non-canonical", { { SET, F(HOST_IA32_SYSENTER_EIP), NONCANON } } },
	{ ER_HOST_PAT, "host PAT type 2", { { SET, F(HOST_IA32_PAT), 2 } } },
	{ ER_HOST_EFER, "host EFER.LMA clear", { { CLR, F(HOST_IA32_EFER), EFER_LMA } } },
	{ ER_HOST_SEL_RPL_TI, "host DS RPL 3", { { SET, F(HOST_DS_SEL), 0x13 } } },
	{ ER_HOST_SEL_NULL, "host TR null", { { SET, F(HOST_TR_SEL), 0 } } },
	{ ER_HOST_BASES, "host GS base non-canonical", { { SET, F(HOST_GS_BASE), NONCANON } } },
	{ ER_HOST_ADDR_SPACE, "32-bit host", { { CLR, F(CTRL_EXIT), EXIT_HOST_ADDR_SPACE_SIZE } } },
	{ ER_HOST_RIP, "host RIP non-canonical", { { SET, F(HOST_RIP), NONCANON } } },
	{ ER_G_CR0_FIXED, "guest CR0.NE clear", { { CLR, F(GUEST_CR0), CR0_NE } } },
	{ ER_G_CR0_PG_PE, "guest PG without PE", { { CLR, F(GUEST_CR0), CR0_PE } } },
	{ ER_G_CR4_FIXED, "guest CR4.VMXE clear", { { CLR, F(GUEST_CR4), CR4_VMXE } } },
	{ ER_G_CR3, "guest CR3 beyond MAXPHYADDR", { { SET, F(GUEST_CR3), 1ULL << 50 } } },
	{ ER_G_DEBUGCTL, "DEBUGCTL bit 2", { { SET, F(GUEST_IA32_DEBUGCTL), 1U << 2 } } },
	{ ER_G_IA32E_MODE, "IA-32e guest without PAE", { { CLR, F(GUEST_CR4), CR4_PAE } } },
	{ ER_G_DR7, "DR7 bit 32", { { SET, F(GUEST_DR7), 1ULL << 32 } } },
	{ ER_G_SYSENTER, "guest SYSENTER_ESP non-canonical", { { SET, F(GUEST_IA32_SYSENTER_ESP), NONCANON } } },
	{ ER_G_PAT, "guest PAT type 2", { { SET, F(GUEST_IA32_PAT), 2 } } },
	{ ER_G_EFER, "guest EFER.LMA clear in an IA-32e guest", { { CLR, F(GUEST_IA32_EFER), EFER_LMA } } },
	{ ER_G_SEG_SEL, "TR.TI set", { { SET, F(GUEST_TR_SEL), 0x4 } } },
	{ ER_G_SEG_BASE, "CS base above 4 GiB", { { SET, F(GUEST_CS_BASE), 1ULL << 32 } } },
	{ ER_G_SEG_V86, "RFLAGS.VM with flat segments", { { OR, F(GUEST_RFLAGS), RFLAGS_VM } } },
	{ ER_G_SEG_TYPE, "SS of code type", { { CLR, F(GUEST_SS_AR), 0xf }, { OR, F(GUEST_SS_AR), 0xb } } },
	{ ER_G_SEG_S, "DS with S = 0", { { CLR, F(GUEST_DS_AR), SEG_AR_S } } },
	{ ER_G_SEG_DPL, "CS DPL 3 with SS DPL 0", { { OR, F(GUEST_CS_AR), 3U << 5 } } },
	{ ER_G_SEG_P, "DS not present", { { CLR, F(GUEST_DS_AR), SEG_AR_P } } },
	{ ER_G_SEG_RSVD, "DS access-rights bit 8", { { OR, F(GUEST_DS_AR), 1U << 8 } } },
	{ ER_G_SEG_LIMIT_G, "4 GiB DS limit with G = 0", { { CLR, F(GUEST_DS_AR), SEG_AR_G } } },
	{ ER_G_CS_L_DB, "CS with L and D", { { OR, F(GUEST_CS_AR), SEG_AR_DB } } },
	{ ER_G_TR, "TR an available TSS", { { CLR, F(GUEST_TR_AR), 2 } } },
	{ ER_G_LDTR, "LDTR of type 3", { { SET, F(GUEST_LDTR_AR), 0x83 } } },
	{ ER_G_DTR, "GDTR limit 0x10000", { { SET, F(GUEST_GDTR_LIMIT), 0x10000 } } },
	{ ER_G_RIP, "RIP non-canonical", { { SET, F(GUEST_RIP), NONCANON } } },
	{ ER_G_RFLAGS_RSVD, "RFLAGS bit 1 clear", { { CLR, F(GUEST_RFLAGS), RFLAGS_FIXED } } },
	{ ER_G_RFLAGS_VM, "RFLAGS.VM in an IA-32e guest", { { OR, F(GUEST_RFLAGS), RFLAGS_VM } } },
	{ ER_G_RFLAGS_IF, "external interrupt with IF = 0", {
		{ CLR, F(GUEST_RFLAGS), RFLAGS_IF },
		{ SET, F(CTRL_ENTRY_INTR_INFO), INTR_INFO_VALID | INTR_TYPE_EXT_INTR | 0x30 } } },
	{ ER_G_ACTIVITY, "shutdown state (KVM: unsupported)", { { SET, F(GUEST_ACTIVITY_STATE), GUEST_ACTIVITY_SHUTDOWN } } },
	{ ER_G_ACTIVITY_HLT_DPL, "HLT with SS.DPL 3", { { SET, F(GUEST_ACTIVITY_STATE), GUEST_ACTIVITY_HLT },
							 { OR, F(GUEST_SS_AR), 3U << 5 } } },
	{ ER_G_ACTIVITY_BLOCKING, "HLT with STI blocking", { { SET, F(GUEST_ACTIVITY_STATE), GUEST_ACTIVITY_HLT },
							     { OR, F(GUEST_RFLAGS), RFLAGS_IF },
							     { SET, F(GUEST_INTERRUPTIBILITY), GUEST_INTR_BLOCK_STI } } },
	{ ER_G_ACTIVITY_EVENT, "#GP injected into HLT", {
		{ SET, F(GUEST_ACTIVITY_STATE), GUEST_ACTIVITY_HLT },
		{ SET, F(CTRL_ENTRY_INTR_INFO), INTR_INFO_VALID | INTR_TYPE_HW_EXCEPTION | INTR_INFO_DELIVER_CODE | VEC_GP } } },
	{ ER_G_INTR_RSVD, "interruptibility bit 5", { { SET, F(GUEST_INTERRUPTIBILITY), 1U << 5 } } },
	{ ER_G_INTR_STI_MOVSS, "STI and MOV-SS blocking", { { OR, F(GUEST_RFLAGS), RFLAGS_IF },
							     { SET, F(GUEST_INTERRUPTIBILITY), 3 } } },
	{ ER_G_INTR_STI_IF, "STI blocking with IF = 0", { { CLR, F(GUEST_RFLAGS), RFLAGS_IF },
							   { SET, F(GUEST_INTERRUPTIBILITY), GUEST_INTR_BLOCK_STI } } },
	{ ER_G_INTR_EVENT, "interrupt under MOV-SS blocking", {
		{ OR, F(GUEST_RFLAGS), RFLAGS_IF },
		{ SET, F(GUEST_INTERRUPTIBILITY), GUEST_INTR_BLOCK_MOV_SS },
		{ SET, F(CTRL_ENTRY_INTR_INFO), INTR_INFO_VALID | INTR_TYPE_EXT_INTR | 0x30 } } },
	{ ER_G_INTR_SMI, "SMI blocking outside SMM", { { SET, F(GUEST_INTERRUPTIBILITY), GUEST_INTR_BLOCK_SMI } } },
	{ ER_G_PENDING_DBG_RSVD, "pending debug bit 4", { { SET, F(GUEST_PENDING_DBG_EXC), 1U << 4 } } },
	{ ER_G_PENDING_DBG_BS, "TF under MOV-SS blocking without BS", {
		{ OR, F(GUEST_RFLAGS), RFLAGS_TF },
		{ SET, F(GUEST_INTERRUPTIBILITY), GUEST_INTR_BLOCK_MOV_SS },
		{ SET, F(GUEST_PENDING_DBG_EXC), 0 } } },
	{ ER_G_LINK_PTR, "VMCS link pointer 0x1000 without shadowing", { { SET, F(GUEST_VMCS_LINK_PTR), 0x1000 } } },
	{ ER_G_PDPTE, "PAE guest with a reserved PDPTE bit", {
		{ CLR, F(CTRL_ENTRY), ENTRY_IA32E_MODE_GUEST },
		{ SET, F(GUEST_IA32_EFER), 0 },
		{ SET, F(GUEST_PDPTE0), 0x1 | (1U << 1) } } },
};

static const struct vmx_profile *base_profile(void)
{
	for (size_t i = 0; i < vmx_profile_count; i++)
		if (!strcmp(vmx_profiles[i].name, "kvm-nested-icelake"))
			return &vmx_profiles[i];
	fail_msg("no kvm-nested-icelake profile");
	return NULL;
}

static void apply(const struct change *c)
{
	for (unsigned i = 0; i < 4 && c[i].op != END; i++) {
		u64 v = fake_vmcs_get(c[i].field);
		switch (c[i].op) {
		case SET: v = c[i].v; break;
		case OR: v |= c[i].v; break;
		case CLR: v &= ~c[i].v; break;
		default: break;
		}
		fake_vmcs_set(c[i].field, v);
	}
}

static void test_table_covers_every_rule(void **state)
{
	(void)state;
	bool seen[ER_COUNT] = { false };
	for (size_t i = 0; i < ARRAY_SIZE(crafted); i++)
		seen[crafted[i].rule] = true;
	for (u32 r = 0; r < ER_COUNT; r++)
		if (!seen[r])
			fail_msg("rule %s has no crafted VMCS", entry_rule_name((enum entry_rule)r));
	/* Every rule names itself and an SDM section. */
	for (u32 r = 0; r < ER_COUNT; r++) {
		assert_true(strlen(entry_rule_name((enum entry_rule)r)) > 3);
		assert_true(!strncmp(entry_rule_sdm((enum entry_rule)r), "26.", 3));
	}
}

static void test_real_setup_passes(void **state)
{
	(void)state;
	ps_setup(base_profile());
	assert_int_equal(ps_launches, 1);
	assert_entry_ok(&ps_launch_result, "the first VMLAUNCH");
	struct entry_check_result r;
	assert_int_equal(entry_check(&vmx_caps, &r), 0);
	ps_teardown();
}

static void test_each_rule_fails(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(crafted); i++) {
		const struct crafted *t = &crafted[i];
		ps_setup(base_profile());
		apply(t->c);
		struct entry_check_result r;
		u32 n = entry_check(&vmx_caps, &r);
		if (!entry_check_failed(&r, t->rule))
			fail_msg("%s: crafted '%s' did not fail %s (failed: %s)", entry_rule_name(t->rule), t->how,
				 entry_rule_name(t->rule), n ? ps_failed_rules(&r) : "nothing");
		assert_true(n >= 1);
		ps_teardown();
	}
}

/* Canonical means the processor's width: a 57-bit canonical FS base is valid on a
 * processor with 5-level paging even while the guest uses 4 levels, not on one without. */
static void test_canonical_width(void **state)
{
	(void)state;
	const u64 base57 = 0x0000800000000000ULL; /* canonical with 57 bits, not with 48 */
	struct entry_check_result r;
	ps_setup(base_profile()); /* CR4_FIXED1 allows LA57 */
	assert_false(fake_vmcs_get(VMCS_GUEST_CR4) & CR4_LA57);
	fake_vmcs_set(VMCS_GUEST_FS_BASE, base57);
	entry_check(&vmx_caps, &r);
	assert_entry_ok(&r, "a 57-bit canonical FS base on an LA57 processor");
	ps_teardown();
	for (size_t i = 0; i < vmx_profile_count; i++) {
		if (strcmp(vmx_profiles[i].name, "skylake-client"))
			continue;
		ps_setup(&vmx_profiles[i]);
		fake_vmcs_set(VMCS_GUEST_FS_BASE, base57);
		entry_check(&vmx_caps, &r);
		assert_true(entry_check_failed(&r, ER_G_SEG_BASE));
		ps_teardown();
		return;
	}
	fail_msg("no skylake-client profile");
}

/* The hypervisor's hook: with check=entry a failed rule stops the vCPU naming it (on the
 * log and in the stop reason); without it nothing is checked. */
static jmp_buf halted;
static void on_halt(void) { longjmp(halted, 1); }

static void test_hook_stops_with_rule_name(void **state)
{
	(void)state;
	ps_setup(base_profile());
	fake_vmcs_set(VMCS_GUEST_RIP, NONCANON);
	fake_io_output_clear();
	entry_check_enabled = false;
	entry_check_before_entry(&ps_cpu, "VMRESUME");
	assert_false(ps_cpu.halted);
	assert_string_equal(fake_io_output(), "");

	entry_check_enabled = true;
	fake_set_halt_hook(on_halt);
	if (!setjmp(halted))
		entry_check_before_entry(&ps_cpu, "VMRESUME");
	entry_check_enabled = false;
	assert_true(ps_cpu.halted);
	assert_non_null(strstr(fake_io_output(), "VM-entry check failed: guest.rip (SDM Vol. 3C 26.3.1.4)"));
	assert_non_null(strstr(fake_io_output(), "stopping this vCPU: VM-entry check guest.rip (SDM Vol. 3C 26.3.1.4) failed before VMRESUME"));
	ps_teardown();
}

/* check=entry before the first VMLAUNCH: a VMCS that fails is never launched, and the
 * start fails with the rule on the log. The crafted fault: a firmware DR7 with bits
 * 63:32 set (which hv/vmx.c copies into the guest state unchanged). */
static void test_prelaunch_check_refuses(void **state)
{
	(void)state;
	entry_check_enabled = true;
	fake_reset();
	ps_setup(base_profile());
	assert_int_equal(ps_launches, 1); /* the normal state passes and launches */
	ps_teardown();

	fake_cr_set(FAKE_DR7, 0x400 | (1ULL << 32));
	s64 rc = ps_setup_keep_regs(base_profile());
	entry_check_enabled = false;
	assert_true(rc < 0);
	assert_int_equal(ps_launches, 0);
	assert_non_null(strstr(fake_io_output(), "not launching: VM-entry check guest.dr7 (SDM Vol. 3C 26.3.1.1)"));
	ps_teardown();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table_covers_every_rule),
		cmocka_unit_test(test_real_setup_passes),
		cmocka_unit_test(test_each_rule_fails),
		cmocka_unit_test(test_canonical_width),
		cmocka_unit_test(test_hook_stops_with_rule_name),
		cmocka_unit_test(test_prelaunch_check_refuses),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
