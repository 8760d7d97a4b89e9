/*
 * The VM-exit dispatcher: a bounds-checked table with one handler per expected exit
 * reason. An empty slot is an unexpected exit: the VMCS summary is dumped and this vCPU
 * stops; the machine and the other vCPUs go on. After the handler, events are delivered:
 * an event whose delivery the exit interrupted is re-injected (SDM 27.2.4 / 26.6), and an
 * NMI taken while in root mode or by NMI exiting is injected as soon as the guest can
 * take it (virtual NMIs, NMI-window exiting).
 */
#include <arch/vmx.h>
#include "entry_check.h"
#include "exit.h"
#include "log.h"
#include "panic.h"
#include "spp/spp.h"
#include "spp/step.h"
#include "stats.h"
#include "vapic.h"
#include <arch/cpu.h>
#include "vcpu.h"
#include "vmcs.h"

void (*first_entry_failed_hook)(struct percpu *c, u32 reason);

void nmi_arrived(struct percpu *c)
{
	/* Whose NMI it was is decided by the count of the hypervisor's NMIs in flight (see
	 * hv/vapic.c), not by whether a request is waiting: a request may have been consumed
	 * by an earlier NMI. Every request is served whatever carried it (NMIs merge). */
	bool guest = vapic_nmi_arrived(c);
	spp_flush_nmi();
	spp_step_pause_nmi();
	if (guest)
		c->nmi_pending = true;
	/* After the nmi_pending store: the entry path clears entry_kick before it reads the
	 * requests (vmx_entry_requests), so it sees either the request or the kick. */
	if (c->nmi_pending || __atomic_load_n(&c->vinit_pending, __ATOMIC_SEQ_CST))
		__atomic_store_n(&c->entry_kick, 1, __ATOMIC_SEQ_CST);
}

/*
 * The last check before VM entry. A request for this vCPU (an NMI for the guest, an INIT)
 * comes with an NMI; one taken in root mode is remembered by nmi_arrived(), and the exit
 * path serves what is pending before it enters the guest. An NMI after that check and
 * before VMRESUME would leave the request waiting for the next VM exit, which a guest
 * spinning without exits never makes. NMIs cannot be masked in root mode, so instead:
 *
 *   - the exit path clears entry_kick, then checks the requests (vmx_entry_requests);
 *   - hv/entry.asm, with the guest's registers loaded, tests entry_kick (%gs:8) at
 *     vmx_entry_check and executes VMRESUME at vmx_entry_resume; if it is set it saves the
 *     registers again, calls vmx_entry_kicked() (which clears it and serves the requests)
 *     and comes back to the test;
 *   - the NMI handler, after leaving a request, sets entry_kick and, if it interrupted
 *     the instructions from the test up to and including VMRESUME (which has not executed
 *     when its address is the interrupted RIP), moves the return RIP back to the test.
 *
 * So an NMI before the test is seen by the test, and one at the test, at the branch or
 * at VMRESUME makes the test run again; after VMRESUME the NMI is a VM exit. No VMCS
 * field is written from NMI context and nothing depends on optional VMX controls (a
 * VMX-preemption timer of 0 would also force an exit, but spp/step.c owns the timer and
 * not every processor or nested hypervisor offers it).
 */
u64 nmi_entry_rewind(struct percpu *c, u64 rip)
{
	if (__atomic_load_n(&c->entry_kick, __ATOMIC_SEQ_CST) && rip >= (u64)(uintptr_t)vmx_entry_check &&
	    rip <= (u64)(uintptr_t)vmx_entry_resume)
		return (u64)(uintptr_t)vmx_entry_check;
	return rip;
}

static void exit_exception_nmi(struct percpu *c)
{
	u32 info = vmcs_read32(VMCS_RO_EXIT_INTR_INFO);
	if ((info & INTR_TYPE_MASK) == INTR_TYPE_NMI && (info & INTR_VECTOR_MASK) == VEC_NMI) {
		nmi_unblock(); /* or the next NMI (a shootdown request) stays pending forever */
		nmi_arrived(c);
		return;
	}
	vcpu_stop(c, "unexpected exception exit");
}

static void exit_intr_window(struct percpu *c)
{
	(void)c; /* the pending vector is injected below */
	vmcs_write32(VMCS_CTRL_PROC_BASED, vmcs_read32(VMCS_CTRL_PROC_BASED) & ~PROC_INTR_WINDOW_EXITING);
}

/* The preemption timer is only armed for single-steps and event-delivery steps (spp/step.c),
 * which handle its expiry; one left over from an aborted step needs nothing more. */
static void exit_preempt_timer(struct percpu *c)
{
	(void)c;
	vmcs_write32(VMCS_CTRL_PIN_BASED, vmcs_read32(VMCS_CTRL_PIN_BASED) & ~PIN_PREEMPTION_TIMER);
}

static void exit_nmi_window(struct percpu *c)
{
	(void)c; /* the pending NMI is injected below, on the way back in */
	vmcs_write32(VMCS_CTRL_PROC_BASED, vmcs_read32(VMCS_CTRL_PROC_BASED) & ~PROC_NMI_WINDOW_EXITING);
}

const exit_handler_t exit_handlers[EXIT_REASON_MAX] = {
	[EXIT_REASON_EXCEPTION_NMI] = exit_exception_nmi,
	[EXIT_REASON_TRIPLE_FAULT] = exit_triple_fault,
	[EXIT_REASON_INIT] = exit_init_signal,
	[EXIT_REASON_SIPI] = exit_sipi,
	[EXIT_REASON_TASK_SWITCH] = exit_task_switch,
	[EXIT_REASON_IO] = exit_io,
	[EXIT_REASON_INTR_WINDOW] = exit_intr_window,
	[EXIT_REASON_NMI_WINDOW] = exit_nmi_window,
	[EXIT_REASON_CPUID] = exit_cpuid,
	[EXIT_REASON_GETSEC] = exit_vmx_insn,
	[EXIT_REASON_INVD] = exit_invd,
	[EXIT_REASON_VMCALL] = exit_vmcall,
	[EXIT_REASON_VMCLEAR] = exit_vmx_insn,
	[EXIT_REASON_VMLAUNCH] = exit_vmx_insn,
	[EXIT_REASON_VMPTRLD] = exit_vmx_insn,
	[EXIT_REASON_VMPTRST] = exit_vmx_insn,
	[EXIT_REASON_VMREAD] = exit_vmx_insn,
	[EXIT_REASON_VMRESUME] = exit_vmx_insn,
	[EXIT_REASON_VMWRITE] = exit_vmx_insn,
	[EXIT_REASON_VMXOFF] = exit_vmx_insn,
	[EXIT_REASON_VMXON] = exit_vmx_insn,
	[EXIT_REASON_CR_ACCESS] = exit_cr_access,
	[EXIT_REASON_GDTR_IDTR] = exit_gdtr_idtr, /* hv/exit_dt.c, HC_PIN_DT */
	[EXIT_REASON_LDTR_TR] = exit_ldtr_tr,
	[EXIT_REASON_RDMSR] = exit_rdmsr,
	[EXIT_REASON_WRMSR] = exit_wrmsr,
	[EXIT_REASON_EPT_VIOLATION] = exit_ept_violation,
	[EXIT_REASON_EPT_MISCONFIG] = exit_ept_misconfig,
	[EXIT_REASON_INVEPT] = exit_vmx_insn,
	[EXIT_REASON_INVVPID] = exit_vmx_insn,
	[EXIT_REASON_WBINVD] = exit_invd,
	[EXIT_REASON_XSETBV] = exit_xsetbv,
	[EXIT_REASON_VMFUNC] = exit_vmx_insn,
	[EXIT_REASON_SPP] = exit_spp,
	[EXIT_REASON_PREEMPT_TIMER] = exit_preempt_timer,
};

#define DURING_DELIVERY (BIT(EXIT_REASON_EXCEPTION_NMI) | BIT(EXIT_REASON_TRIPLE_FAULT) | \
			 BIT(EXIT_REASON_TASK_SWITCH) | BIT(EXIT_REASON_APIC_ACCESS) | \
			 BIT(EXIT_REASON_EPT_VIOLATION) | BIT(EXIT_REASON_EPT_MISCONFIG) | BIT(EXIT_REASON_PML_FULL))

static inline bool exit_during_delivery(u32 basic)
{
	return basic < 64 ? (DURING_DELIVERY >> basic) & 1 : basic == EXIT_REASON_SPP;
}

exit_handler_t exit_lookup(u32 reason)
{
	if (reason & EXIT_REASON_ENTRY_FAILURE)
		return NULL;
	u32 basic = EXIT_REASON_BASIC(reason);
	if (basic >= ARRAY_SIZE(exit_handlers))
		return NULL;
	return exit_handlers[basic];
}

static void deliver_events(struct percpu *c)
{
	if (!c->event_injected) {
		u32 vec = vcpu_idt_vectoring(c);
		if (vec & INTR_INFO_VALID) {
			u32 type = vec & INTR_TYPE_MASK;
			u32 err = (vec & INTR_INFO_DELIVER_CODE) ? vmcs_read32(VMCS_RO_IDT_VECTORING_ERROR) : 0;
			if (type == INTR_TYPE_SW_INTR || type == INTR_TYPE_PRIV_SW_EXC || type == INTR_TYPE_SW_EXCEPTION)
				vmcs_write32(VMCS_CTRL_ENTRY_INSN_LEN, vmcs_read32(VMCS_RO_EXIT_INSN_LEN));
			vcpu_inject_event(c, vec & ~INTR_INFO_NMI_UNBLOCKING, err);
		}
	}
	if (c->pending_vector && !c->nmi_pending) {
		u64 rflags = vmcs_readl(VMCS_GUEST_RFLAGS);
		u32 intr = vmcs_read32(VMCS_GUEST_INTERRUPTIBILITY);
		if (!c->event_injected && (rflags & RFLAGS_IF) &&
		    !(intr & (GUEST_INTR_BLOCK_STI | GUEST_INTR_BLOCK_MOV_SS))) {
			vmcs_write32(VMCS_CTRL_ENTRY_INTR_INFO, INTR_INFO_VALID | INTR_TYPE_EXT_INTR | c->pending_vector);
			c->pending_vector = 0;
		} else {
			vmcs_write32(VMCS_CTRL_PROC_BASED, vmcs_read32(VMCS_CTRL_PROC_BASED) | PROC_INTR_WINDOW_EXITING);
		}
		return;
	}
	if (!c->nmi_pending)
		return;
	u32 intr = vmcs_read32(VMCS_GUEST_INTERRUPTIBILITY);
	bool blocked = intr & (GUEST_INTR_BLOCK_STI | GUEST_INTR_BLOCK_MOV_SS | GUEST_INTR_BLOCK_NMI);
	if (c->event_injected || blocked) {
		vmcs_write32(VMCS_CTRL_PROC_BASED, vmcs_read32(VMCS_CTRL_PROC_BASED) | PROC_NMI_WINDOW_EXITING);
		return;
	}
	vmcs_write32(VMCS_CTRL_ENTRY_INTR_INFO, INTR_INFO_VALID | INTR_TYPE_NMI | VEC_NMI);
	c->nmi_pending = false;
}

/* The requests served before every VM entry (see nmi_entry_rewind above). */
static void vmx_entry_requests(struct percpu *c, bool during_delivery)
{
	__atomic_store_n(&c->entry_kick, 0, __ATOMIC_SEQ_CST);
	/* Not while a step is in progress: this vCPU stopped the world and must end the step
	 * (at its next exit) before it can wait for a SIPI, or every CPU would wait for ever. */
	if (unlikely(__atomic_load_n(&c->vinit_pending, __ATOMIC_SEQ_CST)) && !c->step)
		vapic_check_init(c);
	/* IDT-vectoring information can only be valid for exits that occur during event
	 * delivery (SDM 27.2.4); instruction exits such as VMCALL and CPUID skip the VMREAD. */
	if (unlikely(c->nmi_pending || c->pending_vector) || during_delivery)
		deliver_events(c);
}

void vmx_entry_kicked(struct guest_regs *regs)
{
	struct percpu *c = this_cpu();
	c->regs = regs;
	vmx_entry_requests(c, false); /* the exit's own events were handled by vmx_handle_exit */
	if (unlikely(entry_check_enabled))
		entry_check_before_entry(c, "VMRESUME");
}

void vmx_handle_exit(struct guest_regs *regs, u32 reason)
{
	struct percpu *c = this_cpu();
	c->regs = regs;
	c->exit_reason = EXIT_REASON_BASIC(reason);
	c->event_injected = false;
	c->idt_vectoring_read = false;
	c->exits++;
	vapic_exit_trace(c);

	if (unlikely(!c->entered)) {
		/* The first exit on this CPU: was the first VM entry itself the failure? */
		if ((reason & EXIT_REASON_ENTRY_FAILURE) && first_entry_failed_hook)
			first_entry_failed_hook(c, reason);
		c->entered = true;
	}
	if (unlikely(c->mtf_selftest)) {
		/* The first entry was made with MTF set; its first exit must be the MTF exit. */
		c->mtf_selftest = false;
		vmcs_write32(VMCS_CTRL_PROC_BASED, vmcs_read32(VMCS_CTRL_PROC_BASED) & ~PROC_MONITOR_TRAP_FLAG);
		spp_step_set_mtf(c->exit_reason == EXIT_REASON_MTF);
		if (c->exit_reason == EXIT_REASON_MTF)
			goto check;
	}
	if (unlikely(c->step) && spp_step_exit(c, c->exit_reason))
		goto out;

	exit_handler_t h = exit_lookup(reason);
	if (unlikely(!h)) {
		c->exit_qual = vmcs_readl(VMCS_RO_EXIT_QUALIFICATION);
		if (reason & EXIT_REASON_ENTRY_FAILURE) {
			entry_check_explain(); /* which guest-state rule the processor refused */
			vcpu_stop(c, "VM entry failed");
		}
		vcpu_stop(c, "unexpected VM exit");
	}
	h(c);
out:
	vmx_entry_requests(c, exit_during_delivery(c->exit_reason));
check:
	/* check=entry: every handler's changes to guest state and controls meet the checks a
	 * real processor makes on VMRESUME (hv/entry_check.c). */
	if (unlikely(entry_check_enabled))
		entry_check_before_entry(c, "VMRESUME");
}

__noreturn void vmx_entry_failed(struct guest_regs *regs);
__noreturn void vmx_entry_failed(struct guest_regs *regs)
{
	struct percpu *c = this_cpu();
	c->regs = regs;
	entry_check_explain();
	panic("VMRESUME failed: VM-instruction error %u", vmcs_read32(VMCS_RO_VM_INSN_ERROR));
}
