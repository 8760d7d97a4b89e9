/* panic(): print what is known about the CPU and the guest, then stop this CPU. */
#include <stdarg.h>
#include <hw.h>
#include "lib/fmt.h"
#include "log.h"
#include "panic.h"
#include "percpu.h"
#include "vmcs.h"

__noreturn void cpu_stop(void)
{
	for (;;) {
		irq_disable();
		cpu_halt();
	}
}

__noreturn void panic(const char *fmt, ...)
{
	char msg[192];
	va_list ap;
	va_start(ap, fmt);
	fmt_vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	int cpu = percpu_current_index();
	log_raw("\n*** TESSEL PANIC on cpu %d: %s\n", cpu, msg);
	if (cpu >= 0) {
		struct percpu *c = percpu_array[cpu];
		if (c->launched) {
			log_raw("  last exit reason %u, qualification %llx\n", c->exit_reason,
				(unsigned long long)c->exit_qual);
			vmcs_dump();
		}
		if (c->regs) {
			static const char *names[16] = { "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
							 "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15" };
			for (int i = 0; i < 16; i += 2)
				log_raw("  guest %-3s %016llx  %-3s %016llx\n", names[i],
					(unsigned long long)c->regs->gpr[i], names[i + 1],
					(unsigned long long)c->regs->gpr[i + 1]);
		}
	}
	cpu_stop();
}
