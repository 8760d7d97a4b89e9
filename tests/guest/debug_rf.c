/*
 * debug_rf: RFLAGS.RF after an instruction the hypervisor completes for the guest.
 *
 * RF = 1 suppresses instruction breakpoints for one instruction: the processor clears it when
 * an instruction completes (SDM Vol. 3B 18.3.1.1; IRET with RF = 1 in the image is how a
 * debugger resumes over its own breakpoint). An exit caused by an instruction saves RF as it
 * was before that instruction (SDM Vol. 3C 28.3.3), so a hypervisor that completes the
 * instruction (skips or emulates it) must clear RF itself, as Xen's update_guest_eip does.
 * If it does not, the next instruction's breakpoint is silently lost.
 *
 * Each case: DR0 = execute breakpoint on the instruction after X, IRETQ to X with RF = 1 in the
 * image. Natively X completes, RF clears, and #DB arrives at the breakpoint with DR6.B0.
 *   - X = NOP: no exit; the reference (shows the emulator clears RF itself);
 *   - X = CPUID: always exits; Tessel completes it by moving RIP past it.
 */
#include "arch.h"
#include "guest.h"
#include <tessel.h>

#define DR6_B0 0x1ull
#define DR7_L0 0x1ull
#define DR7_FIXED 0x400ull

__attribute__((visibility("hidden"))) extern char rf_bp_nop[], rf_bp_cpuid[];

/* Arms DR0 at `bp`, then IRETQ with RF = 1 to the instruction before it. */
#define RF_CASE(name, insn, bp)                                                                 \
	static void name(void *arg)                                                              \
	{                                                                                        \
		(void)arg;                                                                       \
		uint64_t a = (uint64_t)(uintptr_t)bp;                                            \
		__asm__ __volatile__("movq %[a], %%dr0\n\t"                                      \
				     "xorl %%eax, %%eax\n\tmovq %%rax, %%dr6\n\t"               \
				     "movq %[d7], %%rax\n\tmovq %%rax, %%dr7\n\t"               \
				     "movq %%rsp, %%r8\n\t"                                     \
				     "movl %%ss, %%r9d\n\tpushq %%r9\n\t"                       \
				     "pushq %%r8\n\t"                                           \
				     "pushfq\n\torq $0x10000, (%%rsp)\n\t"                      \
				     "movl %%cs, %%r9d\n\tpushq %%r9\n\t"                       \
				     "leaq 1f(%%rip), %%r9\n\tpushq %%r9\n\t"                   \
				     "iretq\n"                                                  \
				     "1:\txorl %%eax, %%eax\n\t" insn "\n"                      \
				     ".globl " #bp "\n.hidden " #bp "\n" #bp ":\tnop\n\t"       \
				     "xorl %%eax, %%eax\n\tmovq %%rax, %%dr7"                   \
				     :                                                          \
				     : [a] "r"(a), [d7] "i"(DR7_L0 | DR7_FIXED)                 \
				     : "rax", "rbx", "rcx", "rdx", "r8", "r9", "memory", "cc"); \
	}

/* The xor before the instruction makes CPUID ask leaf 0 (and is not what DR0 points at). */
RF_CASE(case_nop, "nop", rf_bp_nop)
RF_CASE(case_cpuid, "cpuid", rf_bp_cpuid)

static uint64_t read_dr6(void)
{
	uint64_t v;
	__asm__ __volatile__("movq %%dr6, %0" : "=r"(v));
	return v;
}

static void clear_dr7(void)
{
	__asm__ __volatile__("movq %0, %%dr7" : : "r"(DR7_FIXED));
}

static void run(void (*fn)(void *), const char *bp, const char *what)
{
	struct trap_info t;
	trap_call(TRAP_VEC(X86_DB), fn, NULL, &t);
	uint64_t dr6 = read_dr6();
	clear_dr7();
	int ok = t.trapped && t.vector == X86_DB && t.rip == (uint64_t)(uintptr_t)bp && (dr6 & DR6_B0);
	if (!t.trapped)
		tap_diag("%s: no #DB: the breakpoint after the instruction was suppressed (RF left set)", what);
	else if (!ok)
		tap_diag("%s: %s at RIP bp%+lld, DR6 0x%llx", what, trap_name(t.vector),
			 (long long)(t.rip - (uint64_t)(uintptr_t)bp), (unsigned long long)dr6);
	tap_ok(ok, "%s entered with RF=1: the execute breakpoint on the next instruction fires (#DB, DR6.B0)",
	       what);
}

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *st)
{
	guest_init(image, st);
	tap_plan(3);
	tap_ok(tessel_present(), "the hypervisor is present");
	uint64_t fl = read_rflags();
	cpu_cli();
	run(case_nop, rf_bp_nop, "NOP (no exit; the reference)");
	run(case_cpuid, rf_bp_cpuid, "CPUID (exits; the hypervisor completes it)");
	if (fl & X86_RFLAGS_IF)
		__asm__ __volatile__("sti" ::: "memory");
	guest_finish();
}
