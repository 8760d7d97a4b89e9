/*
 * Virtual INIT and SIPI. The guest's INIT and start-up IPIs are intercepted at the local
 * APIC's interrupt command register (x2APIC: WRMSR 0x830 through the MSR bitmap; xAPIC:
 * the APIC page is mapped without write access and writes are emulated) and delivered to
 * the target vCPU by the hypervisor: the target is kicked with an NMI, takes the
 * architectural INIT state and waits for its SIPI in root mode, then starts in real mode at
 * the SIPI vector. NMI IPIs (physical destinations) are delivered the same way, as a
 * virtual NMI, so they never merge with the hypervisor's own NMIs. Other IPIs are written
 * to the real APIC unchanged.
 *
 * Why not let INIT reach the processor and use the wait-for-SIPI activity state: that works
 * on hardware, but Bochs 2.7 never clears a pending INIT after an INIT VM exit (fixed
 * upstream in 2022, Bochs commit 88f881c6d), so a vCPU that took one can never run again;
 * and intercepting the ICR is what partitioning hypervisors (Jailhouse, ACRN) do anyway.
 * A real INIT VM exit (another source) takes the same path.
 */
#ifndef HV_VAPIC_H
#define HV_VAPIC_H

#include "percpu.h"

/* Boot: write-protect the xAPIC page in the guest's EPT so ICR writes trap. */
struct ept;
int vapic_init(struct ept *ept, u64 apic_base);
/* The ICR low dword (and destination) the guest is writing: true if it was an INIT or
 * SIPI the hypervisor delivered itself; false: the caller writes the real ICR. */
bool vapic_icr_write(struct percpu *c, u32 icr_lo, u32 dest, bool x2apic);
/* Is gpa in the write-protected xAPIC page? */
bool vapic_is_apic_page(u64 gpa);
/* A guest write that hit the write-protected xAPIC page (EPT violation): emulate it. */
bool vapic_handle_ept_write(struct percpu *c, u64 gpa);
/* On the way back to the guest: a pending virtual INIT puts this vCPU into its INIT state
 * and waits here for the SIPI (returns when the vCPU should enter the guest again). */
void vapic_check_init(struct percpu *c);
/* After an INIT to the BSP, its first VM exit is logged (where it runs: the firmware's reset
 * path), once per INIT: the proof a reset reached the reset vector. Called on every exit. */
extern volatile u32 vapic_reset_traces;
void vapic_exit_trace_slow(struct percpu *c);
static inline void vapic_exit_trace(struct percpu *c)
{
	if (unlikely(vapic_reset_traces))
		vapic_exit_trace_slow(c);
}
/* INIT# to every vCPU, the caller's included (a soft reset, hv/exit_io.c): the BSP restarts
 * at the reset vector, the APs wait for their SIPI. */
void vapic_init_all(struct percpu *c);
/* The local APIC reset an INIT does (SDM 10.4.7.3), on this CPU's APIC; its mode and base
 * are kept (vapic.c). */
void vapic_init_reset_apic(void);
/* WRMSR IA32_APIC_BASE by the guest (the MSR policy routes it here): 0, or -EINVAL: the
 * write raises #GP(0). The hypervisor's NMI/IPI paths depend on the APIC staying enabled at
 * a base it knows: disabling, moving the base and invalid transitions are refused (see
 * vapic.c for the exact rules); xAPIC -> x2APIC is allowed. */
int vapic_apic_base_write(struct percpu *c, u64 val);
/* Send the hypervisor's NMI to CPU t, counted so the target does not mistake it for the
 * guest's (false: the APIC did not accept it; nothing is counted then). */
bool vapic_send_nmi(struct percpu *t);
/* NMI bookkeeping on the receiving CPU (hv/exit.c nmi_arrived): true if the NMI is the
 * guest's (a platform NMI or a guest NMI IPI), false if it was the hypervisor's. */
bool vapic_nmi_arrived(struct percpu *c);

#endif
