/* The VM-exit dispatcher and the handler signature shared by hv/exit_*.c. */
#ifndef HV_EXIT_H
#define HV_EXIT_H

#include <arch/vmx.h>
#include "percpu.h"

typedef void (*exit_handler_t)(struct percpu *c);

/* Handlers, one file per family. */
void exit_cpuid(struct percpu *c);
void exit_rdmsr(struct percpu *c);
void exit_wrmsr(struct percpu *c);
void exit_cr_access(struct percpu *c);
void exit_gdtr_idtr(struct percpu *c); /* hv/exit_dt.c */
void exit_ldtr_tr(struct percpu *c);
void exit_xsetbv(struct percpu *c);
void exit_invd(struct percpu *c);
void exit_init_signal(struct percpu *c);
void vcpu_init_state(struct percpu *c);
void vcpu_sipi_state(struct percpu *c, u8 vector);
void exit_sipi(struct percpu *c);
void exit_triple_fault(struct percpu *c);
void exit_io(struct percpu *c);
void exit_task_switch(struct percpu *c);
void exit_vmx_insn(struct percpu *c);
void exit_vmcall(struct percpu *c);
void exit_ept_violation(struct percpu *c);
void exit_ept_misconfig(struct percpu *c);

/* Number of entries of the dispatch table (for the unit test of its bounds). */
extern const exit_handler_t exit_handlers[EXIT_REASON_MAX];
/* Look up the handler for a full exit-reason value; NULL when unexpected. */
exit_handler_t exit_lookup(u32 reason);

/* hv/entry.asm calls it with the exit reason it read (VMCS_RO_EXIT_REASON). */
void vmx_handle_exit(struct guest_regs *regs, u32 reason);
/* Called for the first VM exit of a CPU when it reports that the first VM entry failed
 * (hv/start.c sets it; NULL in host builds: such an exit is then unexpected). */
extern void (*first_entry_failed_hook)(struct percpu *c, u32 reason);
/* An NMI reached this CPU (by NMI exit or in root mode): serve the hypervisor's own requests
 * carried by NMIs (shootdown, stop-the-world, INIT kick); otherwise it is the guest's. */
void nmi_arrived(struct percpu *c);
/* For the root-mode NMI handler (hv/traps.c): the RIP to return to, moved back to
 * vmx_entry_check when the NMI left a request and interrupted the last check before VM
 * entry (hv/exit.c explains). */
u64 nmi_entry_rewind(struct percpu *c, u64 rip);
/* hv/entry.asm: the test of entry_kick and the VMRESUME instruction. */
extern const char vmx_entry_check[], vmx_entry_resume[];
/* hv/entry.asm calls it when entry_kick was set: serves the requests and returns. */
void vmx_entry_kicked(struct guest_regs *regs);

#endif
