/* Host exception handling: the IDT the hypervisor runs with in VMX root mode. */
#ifndef HV_TRAPS_H
#define HV_TRAPS_H

#include <tessel/types.h>

/* Layout pushed by hv/traps.asm (lowest address first). */
struct trap_frame {
	u64 r15, r14, r13, r12, r11, r10, r9, r8, rdi, rsi, rbp, rbx, rdx, rcx, rax;
	u64 vector, error_code;
	u64 rip, cs, rflags, rsp, ss;
};

struct idt_gate { u16 off_lo, sel; u8 ist, type_attr; u16 off_mid; u32 off_hi, rsvd; };
#define IDT_VECTORS 32

extern struct idt_gate host_idt[IDT_VECTORS];

void traps_init(void);
void trap_handler(struct trap_frame *f);
/* Resume address for a faulting instruction covered by the exception table, or 0. */
u64 extable_lookup(u64 rip);

#endif
