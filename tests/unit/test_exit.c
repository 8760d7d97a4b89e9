/*
 * Host tests of the exit dispatcher and the handlers that need no guest memory, run
 * against the fake hardware layer (tests/fake): dispatch-table bounds, hypercall
 * validation (CPL, unknown numbers, register preservation), CPUID and MSR policy, CR4.VMXE.
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
#include "hv/abi.h"
#include "hv/emulate.h"
#include "hv/exit.h"
#include "hv/vcpu.h"
#include "hv/hypercall.h"
#include "hv/percpu.h"
#include "hv/vmcs.h"
#include "hv/vmx_caps.h"

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
	fake_vmcs_set(VMCS_GUEST_SS_AR, 0xc093); /* DPL 0 */
	fake_vmcs_set(VMCS_GUEST_RIP, 0x1000);
	fake_vmcs_set(VMCS_RO_EXIT_INSN_LEN, 3);
	return 0;
}

static const unsigned expected_reasons[] = {
	EXIT_REASON_EXCEPTION_NMI, EXIT_REASON_TRIPLE_FAULT, EXIT_REASON_INIT, EXIT_REASON_SIPI, EXIT_REASON_TASK_SWITCH,
	EXIT_REASON_INTR_WINDOW, EXIT_REASON_NMI_WINDOW, EXIT_REASON_CPUID, EXIT_REASON_GETSEC, EXIT_REASON_INVD, EXIT_REASON_VMCALL,
	EXIT_REASON_VMCLEAR, EXIT_REASON_VMLAUNCH, EXIT_REASON_VMPTRLD, EXIT_REASON_VMPTRST, EXIT_REASON_VMREAD,
	EXIT_REASON_VMRESUME, EXIT_REASON_VMWRITE, EXIT_REASON_VMXOFF, EXIT_REASON_VMXON, EXIT_REASON_CR_ACCESS,
	EXIT_REASON_RDMSR, EXIT_REASON_WRMSR, EXIT_REASON_EPT_VIOLATION, EXIT_REASON_EPT_MISCONFIG,
	EXIT_REASON_INVEPT, EXIT_REASON_INVVPID, EXIT_REASON_WBINVD, EXIT_REASON_XSETBV, EXIT_REASON_VMFUNC,
	EXIT_REASON_SPP, EXIT_REASON_PREEMPT_TIMER, EXIT_REASON_IO, EXIT_REASON_GDTR_IDTR, EXIT_REASON_LDTR_TR,
};

static bool is_expected(unsigned r)
{
	for (size_t i = 0; i < sizeof(expected_reasons) / sizeof(expected_reasons[0]); i++)
		if (expected_reasons[i] == r)
			return true;
	return false;
}

static void test_dispatch_bounds(void **state)
{
	(void)state;
	/* Every 16-bit basic reason, plus junk in bits 27:16 (ignored) and the entry-failure bit. */
	for (u32 r = 0; r <= 0xffff; r++) {
		bool want = is_expected(r);
		assert_int_equal(exit_lookup(r) != NULL, want);
		assert_int_equal(exit_lookup(r | (1U << 27)) != NULL, want);
		assert_null(exit_lookup(r | EXIT_REASON_ENTRY_FAILURE));
	}
	assert_null(exit_lookup(EXIT_REASON_MAX));
	assert_null(exit_lookup(0xffffffffU));
	assert_int_equal(ARRAY_SIZE(exit_handlers), EXIT_REASON_MAX);
}

/* ---- the reset ports (hv/exit_io.c) ---- */

static void io_exit(u16 port, unsigned size, bool in, u64 rax)
{
	regs.gpr[GPR_AX] = rax;
	fake_vmcs_set(VMCS_RO_EXIT_QUALIFICATION, ((u64)port << 16) | (size - 1) | (in ? 8U : 0U));
	fake_vmcs_set(VMCS_RO_EXIT_INSN_LEN, 1);
	fake_vmcs_set(VMCS_GUEST_RIP, 0x1000);
	cpu.vinit_pending = false;
	exit_io(&cpu);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_RIP), 0x1001);
}

/* The last value written to port since record `from`; -1 if none. */
static long io_last(u16 port, size_t from)
{
	long v = -1;
	for (size_t i = from; i < fake_io_log_count(); i++)
		if (fake_io_log(i)->port == port)
			v = fake_io_log(i)->value;
	return v;
}

static void test_reset_ports(void **state)
{
	(void)state;
	cpu.launched = true;
	/* Soft reset through 0xCF9: INIT to every vCPU, nothing reaches the chipset. */
	io_exit(0xcf9, 1, false, 0x04);
	assert_true(cpu.vinit_pending);
	assert_int_equal(cpu.vsipi_vector, -1);
	assert_int_equal(io_last(0xcf9, 0), -1);
	/* Other values of 0xCF9, and the PCI configuration address at 0xCF8 (32-bit, overlaps
	 * 0xCF9): to the hardware unchanged. */
	io_exit(0xcf9, 1, false, 0x02);
	assert_false(cpu.vinit_pending);
	io_exit(0xcf8, 4, false, 0x80001234);
	assert_false(cpu.vinit_pending);
	assert_int_equal(io_last(0xcf9, 0), 0x02);
	assert_int_equal(io_last(0xcf8, 0), 0x1234);
	assert_int_equal(io_last(0xcfa, 0), 0x8000);
	/* The keyboard controller's pulse reset: INIT; its status read: passed through. */
	io_exit(0x64, 1, false, 0xfe);
	assert_true(cpu.vinit_pending);
	fake_io_set_in(0x64, 0x1c);
	io_exit(0x64, 1, true, 0xabcdef00ULL);
	assert_int_equal(regs.gpr[GPR_AX], 0xabcdef1cULL);
	assert_false(cpu.vinit_pending);
	/* Port 0x92: bit 0 (fast reset) is an INIT, the other bits (A20) still go out. */
	fake_io_set_in(0x92, 0x02);
	io_exit(0x92, 1, false, 0x03);
	assert_true(cpu.vinit_pending);
	assert_int_equal(io_last(0x92, 0), 0x02);
}

static void test_hypercall_validation(void **state)
{
	(void)state;
	const u64 unknown[] = { 0x2, 0xf, 0x14, 0x1f, 0x22, 0xffff, 1ULL << 32, (1ULL << 32) | HC_QUERY, ~0ULL };
	struct hc_args a;
	for (size_t i = 0; i < ARRAY_SIZE(unknown); i++) {
		a = (struct hc_args){ .nr = unknown[i] };
		assert_int_equal(hypercall_dispatch(&cpu, &a, 0), -ENOSYS);
		assert_false(a.has_out);
	}
	for (unsigned cpl = 1; cpl <= 3; cpl++) {
		for (u64 nr = 0; nr < 0x30; nr++) {
			a = (struct hc_args){ .nr = nr };
			assert_int_equal(hypercall_dispatch(&cpu, &a, cpl), -EPERM);
			assert_false(a.has_out);
		}
	}
	a = (struct hc_args){ .nr = HC_NOP };
	assert_int_equal(hypercall_dispatch(&cpu, &a, 0), 0);
	assert_false(a.has_out);
	a = (struct hc_args){ .nr = HC_QUERY };
	assert_int_equal(hypercall_dispatch(&cpu, &a, 0), 0);
	assert_true(a.has_out);
	assert_int_equal(a.out[0], TESSEL_ABI_VERSION);
	assert_int_equal(a.out[2], TESSEL_MAX_PAGES_PER_CALL);
}

static void test_vmcall_exit_registers(void **state)
{
	(void)state;
	for (unsigned r = 0; r < 16; r++)
		regs.gpr[r] = 0x1111111111111111ULL * (r + 1);
	regs.gpr[GPR_AX] = HC_QUERY;
	exit_vmcall(&cpu);
	assert_int_equal(regs.gpr[GPR_AX], 0);
	assert_int_equal(regs.gpr[GPR_BX], TESSEL_ABI_VERSION);
	assert_int_equal(regs.gpr[GPR_DX], TESSEL_MAX_PAGES_PER_CALL);
	for (unsigned r = GPR_SI; r < 16; r++)
		assert_int_equal(regs.gpr[r], 0x1111111111111111ULL * (r + 1));
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_RIP), 0x1003);

	/* From CPL 3: -EPERM, RBX..RDX untouched, RIP still advances. */
	regs.gpr[GPR_AX] = HC_QUERY;
	regs.gpr[GPR_BX] = 0xabc;
	fake_vmcs_set(VMCS_GUEST_SS_AR, 0xc0f3);
	exit_vmcall(&cpu);
	assert_int_equal((s64)regs.gpr[GPR_AX], -EPERM);
	assert_int_equal(regs.gpr[GPR_BX], 0xabc);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_RIP), 0x1006);

	/* Virtual-8086 mode is CPL 3: VM entry requires SS access rights 0xF3 there. */
	fake_vmcs_set(VMCS_GUEST_SS_AR, 0xf3);
	fake_vmcs_set(VMCS_GUEST_RFLAGS, RFLAGS_FIXED | RFLAGS_VM);
	regs.gpr[GPR_AX] = HC_NOP;
	exit_vmcall(&cpu);
	assert_int_equal((s64)regs.gpr[GPR_AX], -EPERM);
}

static void test_skip_ends_sti_blocking_and_single_steps(void **state)
{
	(void)state;
	fake_vmcs_set(VMCS_GUEST_INTERRUPTIBILITY, GUEST_INTR_BLOCK_STI | GUEST_INTR_BLOCK_NMI);
	fake_vmcs_set(VMCS_GUEST_RFLAGS, RFLAGS_FIXED | RFLAGS_TF);
	regs.gpr[GPR_AX] = HC_NOP;
	exit_vmcall(&cpu);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_INTERRUPTIBILITY), GUEST_INTR_BLOCK_NMI);
	assert_true(fake_vmcs_get(VMCS_GUEST_PENDING_DBG_EXC) & (1ULL << 14));
}

static void test_cpuid_policy(void **state)
{
	(void)state;
	fake_cpuid_set(1, 0, 0x906ea, 0x10800, 0xfffab223 | CPUID1_ECX_VMX | CPUID1_ECX_OSXSAVE, 0xbfebfbff);
	fake_cpuid_set(7, 0, 0, 0, CPUID7_ECX_OSPKE, 0);
	/* The CR0/CR4 guest/host masks as hv/vmx.c sets them: the hypervisor owns VMXE (a fixed
	 * bit); OSXSAVE and PKE are the guest's. As on hardware, a MOV to CR4 that changes only
	 * guest-owned bits does not exit: GUEST_CR4 changes and the read shadow keeps its old
	 * value (the one from launch, or from the last exit that wrote it). */
	cpu.cr4_guest_mask = CR4_VMXE;
	fake_vmcs_set(VMCS_CTRL_CR4_READ_SHADOW, CR4_PAE);
	fake_vmcs_set(VMCS_GUEST_CR4, CR4_PAE | CR4_VMXE); /* guest has not set OSXSAVE */
	regs.gpr[GPR_AX] = 1;
	exit_cpuid(&cpu);
	assert_int_equal(regs.gpr[GPR_CX] & CPUID1_ECX_VMX, 0);
	assert_int_equal(regs.gpr[GPR_CX] & CPUID1_ECX_OSXSAVE, 0);
	assert_true(regs.gpr[GPR_CX] & CPUID1_ECX_HYPERVISOR);
	assert_int_equal(regs.gpr[GPR_AX], 0x906ea);

	/* The guest sets OSXSAVE and PKE without an exit: the shadow is stale, CPUID must not be. */
	fake_vmcs_set(VMCS_GUEST_CR4, CR4_PAE | CR4_VMXE | CR4_OSXSAVE | CR4_PKE);
	regs.gpr[GPR_AX] = 1;
	exit_cpuid(&cpu);
	assert_true(regs.gpr[GPR_CX] & CPUID1_ECX_OSXSAVE);
	regs.gpr[GPR_AX] = 7;
	regs.gpr[GPR_CX] = 0;
	exit_cpuid(&cpu);
	assert_true(regs.gpr[GPR_CX] & CPUID7_ECX_OSPKE);

	/* ... and clears them again. */
	fake_vmcs_set(VMCS_CTRL_CR4_READ_SHADOW, CR4_PAE | CR4_OSXSAVE | CR4_PKE);
	fake_vmcs_set(VMCS_GUEST_CR4, CR4_PAE | CR4_VMXE);
	regs.gpr[GPR_AX] = 1;
	exit_cpuid(&cpu);
	assert_int_equal(regs.gpr[GPR_CX] & CPUID1_ECX_OSXSAVE, 0);
	regs.gpr[GPR_AX] = 7;
	regs.gpr[GPR_CX] = 0;
	exit_cpuid(&cpu);
	assert_int_equal(regs.gpr[GPR_CX] & CPUID7_ECX_OSPKE, 0);

	regs.gpr[GPR_AX] = 0x40000000;
	exit_cpuid(&cpu);
	assert_int_equal(regs.gpr[GPR_AX], 0x40000001);
	assert_memory_equal(&(u32){ (u32)regs.gpr[GPR_BX] }, "Tess", 4);
	assert_memory_equal(&(u32){ (u32)regs.gpr[GPR_CX] }, "elHV", 4);
	assert_int_equal(regs.gpr[GPR_DX], 0);

	regs.gpr[GPR_AX] = 0x40000001;
	exit_cpuid(&cpu);
	assert_int_equal(regs.gpr[GPR_AX], 0x00010004); /* ABI 1.4 */
	assert_true(regs.gpr[GPR_BX] & (1u << 6)); /* TESSEL_F_PIN: always in 1.2 */
	assert_true(regs.gpr[GPR_CX] >= 512);

	for (u32 leaf = 0x40000002; leaf < 0x40000010; leaf++) {
		regs.gpr[GPR_AX] = leaf;
		regs.gpr[GPR_BX] = regs.gpr[GPR_CX] = regs.gpr[GPR_DX] = 0x55;
		exit_cpuid(&cpu);
		assert_int_equal(regs.gpr[GPR_AX] | regs.gpr[GPR_BX] | regs.gpr[GPR_CX] | regs.gpr[GPR_DX], 0);
	}
}

static u32 injected(void) { return (u32)fake_vmcs_get(VMCS_CTRL_ENTRY_INTR_INFO); }

static void test_msr_policy(void **state)
{
	(void)state;
	fake_msr_set(MSR_IA32_FEATURE_CONTROL, FEATURE_CONTROL_LOCK | FEATURE_CONTROL_VMX_OUTSIDE_SMX);
	regs.gpr[GPR_CX] = MSR_IA32_FEATURE_CONTROL;
	exit_rdmsr(&cpu);
	assert_int_equal(regs.gpr[GPR_AX], FEATURE_CONTROL_LOCK);
	assert_int_equal(regs.gpr[GPR_DX], 0);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_RIP), 0x1003);
	assert_int_equal(injected(), 0);

	exit_wrmsr(&cpu);
	assert_int_equal(injected(), INTR_INFO_VALID | INTR_TYPE_HW_EXCEPTION | INTR_INFO_DELIVER_CODE | VEC_GP);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_RIP), 0x1003); /* not advanced */
	assert_int_equal(fake_msr_get(MSR_IA32_FEATURE_CONTROL), FEATURE_CONTROL_LOCK | FEATURE_CONTROL_VMX_OUTSIDE_SMX);

	for (u32 m = MSR_IA32_VMX_BASIC; m <= MSR_IA32_VMX_LAST; m++) {
		fake_msr_set(m, 0x1234);
		fake_vmcs_set(VMCS_CTRL_ENTRY_INTR_INFO, 0);
		regs.gpr[GPR_CX] = m;
		exit_rdmsr(&cpu);
		assert_int_equal(injected() & 0xff, VEC_GP);
		fake_vmcs_set(VMCS_CTRL_ENTRY_INTR_INFO, 0);
		exit_wrmsr(&cpu);
		assert_int_equal(injected() & 0xff, VEC_GP);
		assert_int_equal(fake_msr_get(m), 0x1234);
	}

	/* An MSR the processor lacks: the guest gets the #GP, the hypervisor does not. */
	fake_vmcs_set(VMCS_CTRL_ENTRY_INTR_INFO, 0);
	regs.gpr[GPR_CX] = 0x4b564d00;
	exit_rdmsr(&cpu);
	assert_int_equal(injected() & 0xff, VEC_GP);
}

static void test_cr4_vmxe_is_refused(void **state)
{
	(void)state;
	vmx_caps.cr4_fixed0 = CR4_VMXE;
	vmx_caps.cr4_fixed1 = 0x3fffffULL & ~CR4_LA57;
	vmx_caps.cr0_fixed0 = CR0_PE | CR0_NE | CR0_PG;
	vmx_caps.cr0_fixed1 = 0xffffffffULL;
	fake_vmcs_set(VMCS_GUEST_CR4, CR4_PAE | CR4_VMXE);
	fake_vmcs_set(VMCS_CTRL_CR4_READ_SHADOW, CR4_PAE);
	regs.gpr[GPR_BX] = CR4_PAE | CR4_VMXE;
	fake_vmcs_set(VMCS_RO_EXIT_QUALIFICATION, 4 | (0 << 4) | (GPR_BX << 8)); /* MOV CR4, RBX */
	exit_cr_access(&cpu);
	assert_int_equal(injected() & 0xff, VEC_GP);
	assert_int_equal(fake_vmcs_get(VMCS_CTRL_CR4_READ_SHADOW), CR4_PAE);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_RIP), 0x1000);

	/* An unsupported bit (LA57 here) is refused the same way; a supported one is taken. */
	fake_vmcs_set(VMCS_CTRL_ENTRY_INTR_INFO, 0);
	regs.gpr[GPR_BX] = CR4_PAE | CR4_LA57;
	exit_cr_access(&cpu);
	assert_int_equal(injected() & 0xff, VEC_GP);
	fake_vmcs_set(VMCS_CTRL_ENTRY_INTR_INFO, 0);
	regs.gpr[GPR_BX] = CR4_PAE | CR4_OSXSAVE;
	exit_cr_access(&cpu);
	assert_int_equal(injected(), 0);
	assert_int_equal(fake_vmcs_get(VMCS_CTRL_CR4_READ_SHADOW), CR4_PAE | CR4_OSXSAVE);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_CR4), CR4_PAE | CR4_OSXSAVE | CR4_VMXE);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_RIP), 0x1003);
}

/* SDM 26.2.1.3: with "unrestricted guest" and guest CR0.PE = 0 the deliver-error-code bit
 * must be 0, or the VM entry fails (vmx_entry_failed panics). Every fault a real-mode guest
 * can provoke in these handlers must come without an error code, and with one in protected
 * mode. */
static void real_mode(void)
{
	fake_vmcs_set(VMCS_GUEST_CR0, CR0_ET | CR0_NE);
	fake_vmcs_set(VMCS_CTRL_CR0_READ_SHADOW, CR0_ET);
	fake_vmcs_set(VMCS_CTRL_PROC_BASED2, PROC2_UNRESTRICTED_GUEST);
	fake_vmcs_set(VMCS_GUEST_SS_AR, 0x93);
	fake_vmcs_set(VMCS_GUEST_CS_AR, 0x9b);
	fake_vmcs_set(VMCS_CTRL_ENTRY_INTR_INFO, 0);
	fake_vmcs_set(VMCS_CTRL_ENTRY_EXC_ERROR_CODE, 0);
}

static void assert_gp_for_mode(void)
{
	u32 info = injected();
	bool pe = fake_vmcs_get(VMCS_GUEST_CR0) & CR0_PE;
	assert_int_equal(info & ~INTR_INFO_DELIVER_CODE, INTR_INFO_VALID | INTR_TYPE_HW_EXCEPTION | VEC_GP);
	assert_int_equal(!!(info & INTR_INFO_DELIVER_CODE), pe);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_RIP), 0x1000); /* a fault: RIP stays */
	fake_vmcs_set(VMCS_CTRL_ENTRY_INTR_INFO, 0);
}

/* An instruction skipped past the end of the code segment's address space: EIP wraps at 2^32,
 * IP at 2^16; only 64-bit mode has a 64-bit RIP (a RIP above 2^32 outside it fails VM entry). */
static void test_rip_wraps_outside_64bit(void **state)
{
	(void)state;
	static const struct { u64 efer; u32 cs_ar; u64 rip, want; } cases[] = {
		{ 0, 0xc09b, 0xfffffffeULL, 0x1 },                        /* 32-bit code */
		{ 0, 0x009b, 0xfffeULL, 0x1 },                            /* 16-bit code */
		{ EFER_LMA | EFER_LME, 0xa09b, 0xfffffffeULL, 0x100000001ULL }, /* 64-bit */
		{ EFER_LMA | EFER_LME, 0xc09b, 0xfffffffeULL, 0x1 },      /* compatibility mode */
		{ 0, 0xc09b, 0x1fffeULL, 0x20001ULL },                    /* 32-bit, crossing 64 KiB */
	};
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		fake_vmcs_set(VMCS_GUEST_IA32_EFER, cases[i].efer);
		fake_vmcs_set(VMCS_GUEST_CS_AR, cases[i].cs_ar);
		fake_vmcs_set(VMCS_GUEST_RIP, cases[i].rip);
		regs.gpr[GPR_AX] = HC_NOP;
		exit_vmcall(&cpu);
		assert_int_equal(fake_vmcs_get(VMCS_GUEST_RIP), cases[i].want);
	}
}

/* A fault the hypervisor injects pushes RFLAGS with RF = 1, as the processor's own faults do
 * (SDM 17.3.1.1); traps, aborts, NMIs and interrupts leave RF as it was. */
static void test_faults_push_rf(void **state)
{
	(void)state;
	static const struct { u8 vec; bool rf; } cases[] = {
		{ 13, true }, { 6, true }, { 14, true }, { 7, true }, { 0, true }, { 17, true },
		{ 8, false }, { 3, false }, { 4, false }, { 18, false }, { 1, false },
	};
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		fake_vmcs_set(VMCS_GUEST_RFLAGS, RFLAGS_FIXED | RFLAGS_IF);
		vcpu_inject_exception(&cpu, cases[i].vec, cases[i].vec == 13 || cases[i].vec == 14 || cases[i].vec == 8, 0);
		assert_int_equal(!!(fake_vmcs_get(VMCS_GUEST_RFLAGS) & RFLAGS_RF), cases[i].rf);
	}
	/* Through a handler: WRMSR of an unlisted MSR raises #GP with RF set. */
	fake_vmcs_set(VMCS_GUEST_RFLAGS, RFLAGS_FIXED);
	regs.gpr[GPR_CX] = 0x4b564d00;
	exit_wrmsr(&cpu);
	assert_int_equal((u32)fake_vmcs_get(VMCS_CTRL_ENTRY_INTR_INFO) & INTR_VECTOR_MASK, 13);
	assert_true(fake_vmcs_get(VMCS_GUEST_RFLAGS) & RFLAGS_RF);
	/* An external interrupt or NMI: RF untouched. */
	fake_vmcs_set(VMCS_GUEST_RFLAGS, RFLAGS_FIXED | RFLAGS_IF);
	vcpu_inject_event(&cpu, INTR_INFO_VALID | INTR_TYPE_EXT_INTR | 0x40, 0);
	vcpu_inject_event(&cpu, INTR_INFO_VALID | INTR_TYPE_NMI | 2, 0);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_RFLAGS) & RFLAGS_RF, 0);
}

/* An instruction the hypervisor completes clears RF, as the processor does at the end of
 * every instruction (SDM 18.3.1.1): an instruction-caused exit saves RF as it was before the
 * instruction (SDM 28.3.3; Bochs 2.7 clears RF before executing, so only this model of the
 * hardware shows it). Left set, RF would suppress the next instruction's breakpoint. An
 * unfinished REP iteration (RIP unchanged) leaves RF alone. */
static void test_completed_instruction_clears_rf(void **state)
{
	(void)state;
	fake_vmcs_set(VMCS_GUEST_RFLAGS, RFLAGS_FIXED | RFLAGS_RF | RFLAGS_IF);
	exit_cpuid(&cpu);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_RIP), 0x1003);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_RFLAGS), RFLAGS_FIXED | RFLAGS_IF);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_PENDING_DBG_EXC) & PENDING_DBG_BS, 0);
	/* With TF: RF clears and the single-step trap is pending. */
	fake_vmcs_set(VMCS_GUEST_RFLAGS, RFLAGS_FIXED | RFLAGS_RF | RFLAGS_TF);
	exit_cpuid(&cpu);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_RIP), 0x1006);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_RFLAGS), RFLAGS_FIXED | RFLAGS_TF);
	assert_true(fake_vmcs_get(VMCS_GUEST_PENDING_DBG_EXC) & PENDING_DBG_BS);
	/* The emulator's commit: completed clears RF, an unfinished REP iteration keeps it. */
	struct emu_regs r;
	memset(&r, 0, sizeof(r));
	fake_vmcs_set(VMCS_GUEST_PENDING_DBG_EXC, 0);
	fake_vmcs_set(VMCS_GUEST_RFLAGS, RFLAGS_FIXED | RFLAGS_RF);
	r.rflags = r.loaded_rflags = RFLAGS_FIXED | RFLAGS_RF;
	r.rip = 0x1006;
	vcpu_emu_commit(&cpu, &r, 0x1006);
	assert_true(fake_vmcs_get(VMCS_GUEST_RFLAGS) & RFLAGS_RF);
	r.rip = 0x1008;
	vcpu_emu_commit(&cpu, &r, 0x1006);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_RIP), 0x1008);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_RFLAGS), RFLAGS_FIXED);
}

static void test_real_mode_faults_have_no_error_code(void **state)
{
	(void)state;
	vmx_caps.cr0_fixed0 = CR0_PE | CR0_NE | CR0_PG;
	vmx_caps.cr0_fixed1 = 0xffffffffULL;
	fake_cpuid_set(0xd, 0, 0x7, 0, 0, 0);
	for (int pass = 0; pass < 2; pass++) {
		if (pass == 0)
			real_mode(); /* first real mode, then the same faults in protected mode */
		else
			fake_vmcs_set(VMCS_GUEST_CR0, CR0_PE | CR0_ET | CR0_NE);
		regs.gpr[GPR_CX] = MSR_IA32_VMX_BASIC; /* RDMSR of a VMX MSR */
		exit_rdmsr(&cpu);
		assert_gp_for_mode();
		regs.gpr[GPR_CX] = 0x4b564d00; /* WRMSR of an MSR the processor lacks */
		exit_wrmsr(&cpu);
		assert_gp_for_mode();
		regs.gpr[GPR_CX] = 0; /* XSETBV XCR0 = 0 (x87 bit clear) */
		regs.gpr[GPR_AX] = regs.gpr[GPR_DX] = 0;
		exit_xsetbv(&cpu);
		assert_gp_for_mode();
		regs.gpr[GPR_BX] = CR0_PG | CR0_ET; /* MOV CR0 with PG = 1, PE = 0 */
		fake_vmcs_set(VMCS_RO_EXIT_QUALIFICATION, 0 | (0 << 4) | (GPR_BX << 8));
		exit_cr_access(&cpu);
		assert_gp_for_mode();
	}

	/* An event whose delivery an exit interrupted is re-injected as it was, but in real
	 * mode never with an error code (a guest can make the processor report one). */
	real_mode();
	fake_vmcs_set(VMCS_RO_EXIT_REASON, EXIT_REASON_EXCEPTION_NMI);
	fake_vmcs_set(VMCS_RO_EXIT_INTR_INFO, INTR_INFO_VALID | INTR_TYPE_NMI | VEC_NMI);
	fake_vmcs_set(VMCS_RO_IDT_VECTORING_INFO, INTR_INFO_VALID | INTR_TYPE_HW_EXCEPTION | INTR_INFO_DELIVER_CODE | VEC_GP);
	fake_vmcs_set(VMCS_RO_IDT_VECTORING_ERROR, 0x18);
	vmx_handle_exit(&regs, (u32)fake_vmcs_get(VMCS_RO_EXIT_REASON));
	assert_int_equal(injected(), INTR_INFO_VALID | INTR_TYPE_HW_EXCEPTION | VEC_GP);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_dispatch_bounds, setup),
		cmocka_unit_test_setup(test_hypercall_validation, setup),
		cmocka_unit_test_setup(test_reset_ports, setup),
		cmocka_unit_test_setup(test_vmcall_exit_registers, setup),
		cmocka_unit_test_setup(test_skip_ends_sti_blocking_and_single_steps, setup),
		cmocka_unit_test_setup(test_cpuid_policy, setup),
		cmocka_unit_test_setup(test_msr_policy, setup),
		cmocka_unit_test_setup(test_cr4_vmxe_is_refused, setup),
		cmocka_unit_test_setup(test_real_mode_faults_have_no_error_code, setup),
		cmocka_unit_test_setup(test_faults_push_rf, setup),
		cmocka_unit_test_setup(test_completed_instruction_clears_rf, setup),
		cmocka_unit_test_setup(test_rip_wraps_outside_64bit, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
