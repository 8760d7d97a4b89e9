/*
 * Helpers exit handlers use on the current vCPU: guest registers, instruction skipping,
 * event injection, CPL. Handlers decide whether RIP advances.
 */
#ifndef HV_VCPU_H
#define HV_VCPU_H

#include "percpu.h"

u64 vcpu_gpr(struct percpu *c, unsigned reg);
void vcpu_set_gpr(struct percpu *c, unsigned reg, u64 v);
/* Advance RIP past the exiting instruction (VM-exit instruction length), ending
 * STI/MOV-SS blocking and raising a single-step #DB when RFLAGS.TF is set, as the
 * instruction itself would have. */
void vcpu_skip_insn(struct percpu *c);
void vcpu_skip_bytes(struct percpu *c, u64 len);
void vcpu_inject_exception(struct percpu *c, u8 vector, bool has_error, u32 error);
static inline void vcpu_inject_ud(struct percpu *c) { vcpu_inject_exception(c, 6, false, 0); }
static inline void vcpu_inject_gp0(struct percpu *c) { vcpu_inject_exception(c, 13, true, 0); }
/* Current privilege level of the guest (0 in real mode, 3 in virtual-8086 mode). */
unsigned vcpu_cpl(void);
/* Stop this vCPU after an unexpected exit: dump the VMCS, halt the CPU forever. */
__noreturn void vcpu_stop(struct percpu *c, const char *why);

/* Guest paging state and instruction decoding at the current RIP (hv/exit_ept.c). */
struct guest_paging;
struct insn;
void vcpu_guest_paging(struct guest_paging *p);
int vcpu_decode_current(struct insn *in);

#endif
