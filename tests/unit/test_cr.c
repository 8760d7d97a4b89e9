/*
 * Host tests for the emulated MOV to CR0/CR4 (hv/exit_cr.c) over the fake hardware layer:
 * the #GP(0) conditions of SDM Vol. 2B "MOV - Move to/from Control Registers" that a write
 * reaching the hypervisor must still raise (a VM entry with such a state fails on real
 * processors), and the PDPTE load of PAE paging (SDM Vol. 3A 4.4.1: with EPT the VMCS holds
 * the PDPTEs VM entry uses, so an emulated MOV that (re)enters PAE paging must load them).
 * Every refused write leaves CR0, CR4, their shadows, EFER and the PDPTE fields unchanged.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include <hw.h>
#include <arch/cpu.h>
#include <arch/msr.h>
#include <arch/vmx.h>
#include <tessel/bootinfo.h>
#include "hv/exit.h"
#include "hv/percpu.h"
#include "hv/vcpu.h"
#include "hv/vmcs.h"
#include "hv/vmx_caps.h"
#include "mm/memmap.h"

#define RAM (16ULL << 20)
#define CR3_GPA 0x5000ULL /* PAE: the PDPT (32-byte aligned) */

static struct percpu cpu;
static struct guest_regs regs;

static const struct tessel_mem_range fw_map[] = { { 0, RAM >> PAGE_SHIFT, EFI_MT_CONVENTIONAL, 0 } };

static int setup(void **state)
{
	(void)state;
	fake_reset();
	fake_phys_init(0, RAM);
	memmap_init(fw_map, 1, RAM + (1ULL << 30), 1ULL << 21);
	memset(&cpu, 0, sizeof(cpu));
	memset(&regs, 0, sizeof(regs));
	cpu.self = &cpu;
	cpu.regs = &regs;
	cpu.cr0_guest_mask = CR0_NE;
	cpu.cr4_guest_mask = CR4_VMXE;
	percpu_array[0] = &cpu;
	percpu_count = 1;
	fake_cpu_local_set(&cpu);
	vmx_caps.cr0_fixed0 = CR0_PE | CR0_NE | CR0_PG;
	vmx_caps.cr0_fixed1 = 0xffffffffULL;
	vmx_caps.cr4_fixed0 = CR4_VMXE;
	vmx_caps.cr4_fixed1 = 0x3fffffULL | CR4_CET;
	vmx_caps.phys_bits = 39;
	fake_vmcs_set(VMCS_GUEST_RFLAGS, RFLAGS_FIXED);
	fake_vmcs_set(VMCS_GUEST_SS_AR, 0xc093);
	fake_vmcs_set(VMCS_GUEST_RIP, 0x1000);
	fake_vmcs_set(VMCS_RO_EXIT_INSN_LEN, 3);
	fake_vmcs_set(VMCS_GUEST_CR3, CR3_GPA);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	fake_phys_fini();
	return 0;
}

static void set_mode(u64 cr0, u64 cr4, u64 efer, bool cs_l)
{
	fake_vmcs_set(VMCS_GUEST_CR0, cr0 | CR0_NE);
	fake_vmcs_set(VMCS_CTRL_CR0_READ_SHADOW, cr0);
	fake_vmcs_set(VMCS_GUEST_CR4, cr4 | CR4_VMXE);
	fake_vmcs_set(VMCS_CTRL_CR4_READ_SHADOW, cr4);
	fake_vmcs_set(VMCS_GUEST_IA32_EFER, efer);
	fake_vmcs_set(VMCS_GUEST_CS_AR, cs_l ? 0xa09b : 0xc09b);
}

/* MOV to CRn from RBX. Returns true if it raised #GP(0); then nothing changed. */
static bool mov_to_cr(unsigned cr, u64 val)
{
	u64 before[7] = { fake_vmcs_get(VMCS_GUEST_CR0), fake_vmcs_get(VMCS_CTRL_CR0_READ_SHADOW),
			  fake_vmcs_get(VMCS_GUEST_CR4), fake_vmcs_get(VMCS_CTRL_CR4_READ_SHADOW),
			  fake_vmcs_get(VMCS_GUEST_IA32_EFER), fake_vmcs_get(VMCS_GUEST_PDPTE0),
			  fake_vmcs_get(VMCS_GUEST_RIP) };
	fake_vmcs_set(VMCS_CTRL_ENTRY_INTR_INFO, 0);
	regs.gpr[GPR_BX] = val;
	fake_vmcs_set(VMCS_RO_EXIT_QUALIFICATION, cr | (0u << 4) | (GPR_BX << 8));
	exit_cr_access(&cpu);
	u32 info = (u32)fake_vmcs_get(VMCS_CTRL_ENTRY_INTR_INFO);
	if (!(info & INTR_INFO_VALID))
		return false;
	assert_int_equal(info & INTR_VECTOR_MASK, 13);
	u64 after[7] = { fake_vmcs_get(VMCS_GUEST_CR0), fake_vmcs_get(VMCS_CTRL_CR0_READ_SHADOW),
			 fake_vmcs_get(VMCS_GUEST_CR4), fake_vmcs_get(VMCS_CTRL_CR4_READ_SHADOW),
			 fake_vmcs_get(VMCS_GUEST_IA32_EFER), fake_vmcs_get(VMCS_GUEST_PDPTE0),
			 fake_vmcs_get(VMCS_GUEST_RIP) };
	assert_memory_equal(before, after, sizeof(before));
	return true;
}

static const u64 LONG_CR0 = CR0_PE | CR0_PG | CR0_WP | CR0_ET;
static const u64 LONG_CR4 = CR4_PAE | CR4_OSFXSR;
static const u64 LONG_EFER = EFER_LME | EFER_LMA;

static void test_long_mode_cr4(void **state)
{
	(void)state;
	set_mode(LONG_CR0, LONG_CR4, LONG_EFER, true);
	assert_true(mov_to_cr(4, LONG_CR4 & ~CR4_PAE));         /* clear PAE in IA-32e mode */
	assert_true(mov_to_cr(4, LONG_CR4 | CR4_LA57));         /* change LA57 in IA-32e mode */
	assert_true(mov_to_cr(4, LONG_CR4 | CR4_CET) == false); /* CET with WP: fine */
	set_mode(LONG_CR0 & ~CR0_WP, LONG_CR4, LONG_EFER, true);
	assert_true(mov_to_cr(4, LONG_CR4 | CR4_CET));          /* CET without WP */
	set_mode(LONG_CR0, LONG_CR4, LONG_EFER, true);
	fake_vmcs_set(VMCS_GUEST_CR3, 0x5001);
	assert_true(mov_to_cr(4, LONG_CR4 | CR4_PCIDE));        /* PCIDE with CR3[11:0] != 0 */
	fake_vmcs_set(VMCS_GUEST_CR3, 0x5000);
	assert_false(mov_to_cr(4, LONG_CR4 | CR4_PCIDE));
	assert_true(fake_vmcs_get(VMCS_CTRL_CR4_READ_SHADOW) & CR4_PCIDE);
}

static void test_cr0_rules(void **state)
{
	(void)state;
	set_mode(LONG_CR0, LONG_CR4, LONG_EFER, true);
	assert_true(mov_to_cr(0, LONG_CR0 & ~CR0_PG));          /* clear PG in 64-bit mode */
	set_mode(LONG_CR0, LONG_CR4 | CR4_CET, LONG_EFER, true);
	assert_true(mov_to_cr(0, LONG_CR0 & ~CR0_WP));          /* clear WP with CET */
	set_mode(LONG_CR0, LONG_CR4, LONG_EFER, false);         /* compatibility mode: may leave */
	assert_false(mov_to_cr(0, LONG_CR0 & ~CR0_PG));
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_IA32_EFER) & EFER_LMA, 0);
}

/* Entering PAE paging (32-bit protected mode, CR4.PAE set, then CR0.PG) loads the PDPTEs. */
static void test_pae_pdptes(void **state)
{
	(void)state;
	u64 *pdpt = hpa_to_ptr(hpa(CR3_GPA));
	const u64 good[4] = { 0x10001, 0x20001, 0, 0x30001 | (1ULL << 11) };
	memcpy(pdpt, good, sizeof(good));
	set_mode(CR0_PE | CR0_ET, CR4_PAE, 0, false);
	assert_false(mov_to_cr(0, CR0_PE | CR0_ET | CR0_PG));
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_PDPTE0), good[0]);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_PDPTE1), good[1]);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_PDPTE2), good[2]);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_PDPTE3), good[3]);

	/* A present PDPTE with a reserved bit (bit 5, or above MAXPHYADDR): #GP, nothing loaded. */
	static const u64 bad_bits[] = { 1ULL << 1, 1ULL << 5, 1ULL << 8, 1ULL << 45, 1ULL << 63 };
	for (unsigned i = 0; i < sizeof(bad_bits) / sizeof(bad_bits[0]); i++) {
		set_mode(CR0_PE | CR0_ET, CR4_PAE, 0, false);
		fake_vmcs_set(VMCS_GUEST_PDPTE0, 0x777);
		pdpt[2] = 0x40001 | bad_bits[i];
		assert_true(mov_to_cr(0, CR0_PE | CR0_ET | CR0_PG));
		assert_int_equal(fake_vmcs_get(VMCS_GUEST_PDPTE0), 0x777);
	}
	/* Not present: its other bits are ignored. */
	pdpt[2] = 0x40000 | (1ULL << 5);
	set_mode(CR0_PE | CR0_ET, CR4_PAE, 0, false);
	assert_false(mov_to_cr(0, CR0_PE | CR0_ET | CR0_PG));
	/* In PAE paging, a CR4 write that changes PGE reloads them too. */
	pdpt[0] = 0x50001;
	assert_false(mov_to_cr(4, CR4_PAE | CR4_PGE));
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_PDPTE0), 0x50001);
	/* A PDPT outside RAM cannot be loaded: #GP. */
	set_mode(CR0_PE | CR0_ET, CR4_PAE, 0, false);
	fake_vmcs_set(VMCS_GUEST_CR3, RAM + 0x1000);
	assert_true(mov_to_cr(0, CR0_PE | CR0_ET | CR0_PG));
}

/* LMSW and CLTS change bits 3:0 of CR0; every other bit is the guest's view, which for the
 * bits the guest owns is in the real register, not in the read shadow (the guest changes them
 * without an exit, SDM 25.3). Here the hypervisor owns PE (as without unrestricted guest, or
 * with CR0.PE pinned) and TS, so LMSW and CLTS exit; the guest had set WP and AM since the
 * last exit: both must survive. */
static void test_lmsw_clts_keep_guest_bits(void **state)
{
	(void)state;
	set_mode(CR0_PE | CR0_ET | CR0_TS, 0, 0, false);
	cpu.cr0_guest_mask = CR0_NE | CR0_PE | CR0_TS;
	fake_vmcs_set(VMCS_GUEST_CR0, fake_vmcs_get(VMCS_GUEST_CR0) | CR0_WP | CR0_AM); /* no exit */
	fake_vmcs_set(VMCS_CTRL_ENTRY_INTR_INFO, 0);
	fake_vmcs_set(VMCS_RO_EXIT_QUALIFICATION, 0 | (3u << 4) | ((u64)(CR0_PE | CR0_MP | CR0_TS) << 16)); /* LMSW */
	exit_cr_access(&cpu);
	assert_int_equal(vcpu_guest_cr0(&cpu), CR0_PE | CR0_ET | CR0_TS | CR0_MP | CR0_WP | CR0_AM);
	fake_vmcs_set(VMCS_RO_EXIT_QUALIFICATION, 0 | (2u << 4)); /* CLTS */
	exit_cr_access(&cpu);
	assert_int_equal(vcpu_guest_cr0(&cpu), CR0_PE | CR0_ET | CR0_MP | CR0_WP | CR0_AM);
	assert_false(fake_vmcs_get(VMCS_CTRL_ENTRY_INTR_INFO) & INTR_INFO_VALID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_long_mode_cr4, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cr0_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pae_pdptes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lmsw_clts_keep_guest_bits, setup, teardown),
	};
	return cmocka_run_group_tests_name("cr", tests, NULL, NULL);
}
