/*
 * Starting and un-starting: what makes the start of the hypervisor all-or-nothing
 * (boot/main.c start_hypervisor). Target-only (it needs hv/entry.asm).
 *
 * - A CPU whose first VM entry fails with a VM exit (invalid guest state, MSR loading, a
 *   machine check: SDM 26.7) comes back to vmx_cpu_start(), which leaves VMX operation and
 *   returns -EIO to the loader, instead of stopping for good inside the exit path (which
 *   would hang the firmware's StartupThisAP on an AP).
 * - Until the loader seals the start, it may ask every CPU that did start to leave VMX
 *   operation again (TESSEL_HC_LOADER_LEAVE) when another CPU failed; the loader then frees
 *   the region and takes its no-VMX path. The seal (TESSEL_HC_LOADER_SEAL) comes before any
 *   code but the firmware's and the loader's has run; afterwards neither call exists, so a
 *   guest can never take the hypervisor out from under itself.
 */
#include <hw.h>
#include <arch/cpu.h>
#include <arch/msr.h>
#include <arch/vmx.h>
#include <tessel/bootinfo.h>
#include "drivers/vtd.h"
#include "exit.h"
#include "hypercall.h"
#include "log.h"
#include "start.h"
#include "vcpu.h"
#include "vmcs.h"
#include "vmx.h"

static __noreturn void vmx_first_entry_failed(struct percpu *c, u32 reason);
static __noreturn void vmx_cpu_leave(struct percpu *c);

static s64 hc_loader(struct percpu *c, struct hc_args *a)
{
	if (a->nr == TESSEL_HC_LOADER_LEAVE)
		vmx_cpu_leave(c);
	/* TESSEL_HC_LOADER_SEAL: from now on neither call exists. */
	__atomic_store_n(&hc_loader_hook, NULL, __ATOMIC_RELEASE);
	log_info("start complete: the loader's calls are closed");
	return 0;
}

void start_hooks_init(void)
{
	first_entry_failed_hook = vmx_first_entry_failed;
	__atomic_store_n(&hc_loader_hook, hc_loader, __ATOMIC_RELEASE);
}

static void vmx_first_entry_failed(struct percpu *c, u32 reason)
{
	u64 qual = vmcs_readl(VMCS_RO_EXIT_QUALIFICATION);
	log_error("cpu %u: the first VM entry failed (exit reason %u%s, qualification %llu): this CPU "
		  "does not start", c->index, EXIT_REASON_BASIC(reason),
		  EXIT_REASON_BASIC(reason) == 33 ? ": invalid guest state" :
		  EXIT_REASON_BASIC(reason) == 34 ? ": MSR loading" :
		  EXIT_REASON_BASIC(reason) == 41 ? ": machine-check event" : "", (unsigned long long)qual);
	vmcs_dump();
	vmx_launch_abort(&c->launch_jmp);
}

static void vmx_cpu_leave(struct percpu *c)
{
	/* The loader resumes after its VMCALL (3 bytes), with its own registers. */
	u64 rip = vmcs_readl(VMCS_GUEST_RIP) + vmcs_read32(VMCS_RO_EXIT_INSN_LEN);
	u64 rsp = vmcs_readl(VMCS_GUEST_RSP);
	/* The control registers as the guest sees them (the bits VMX fixes come from the shadows). */
	u64 cr0 = vcpu_guest_cr0(c), cr4 = vcpu_guest_cr4(c);
	u64 pat = vmcs_read64(VMCS_GUEST_IA32_PAT);
	struct guest_regs regs = *c->regs;
	regs.gpr[GPR_AX] = TESSEL_LEFT_VMX;
	c->launched = false;
	log_info("cpu %u: leaving VMX operation (the start is undone)", c->index);
	/* The loader leaves on the BSP last, then frees the region: DMA must stop using the
	 * tables in it first. */
	bool last = true;
	for (u32 i = 0; i < percpu_count; i++)
		if (__atomic_load_n(&percpu_array[i]->launched, __ATOMIC_ACQUIRE))
			last = false;
	if (last)
		iommu_shutdown();
	vmclear(c->vmcs);
	vmxoff();
	write_cr4(cr4 & ~CR4_VMXE);
	write_cr0(cr0);
	wrmsr(MSR_IA32_PAT, pat);
	vmx_leave_to(&regs, rsp, rip);
}
