/*
 * The hypervisor sends NMIs to other processors for cross-CPU EPT invalidation. The local
 * APIC belongs to the guest, which may have switched it to x2APIC mode: the mode is read
 * from IA32_APIC_BASE at every use (SDM Vol. 3A 10.12). In xAPIC mode the ICR high half is
 * saved and restored around the send; the sending CPU is inside a VM exit, so its guest is
 * not between its own two ICR writes.
 *
 * Every wait here is bounded: the guest owns the APIC and may have left it in any state the
 * hypervisor still allows (hv/vapic.c keeps it enabled at its boot base). A send that cannot
 * even start (the ICR stays busy) returns false; callers that need the NMI to arrive wait for
 * its effect and send again (spp/flush.c, spp/step.c).
 */
#include <hw.h>
#include <arch/msr.h>
#include "apic.h"

#define XAPIC_ICR_LO 0x300
#define XAPIC_ICR_HI 0x310
#define X2APIC_ICR   0x830
#define ICR_DM_NMI   (4U << 8)
#define ICR_ASSERT   (1U << 14)
#define ICR_PENDING  (1U << 12)

bool apic_send_nmi(u32 apic_id)
{
	u64 base = rdmsr(MSR_IA32_APIC_BASE);
	if (!(base & APIC_BASE_ENABLE))
		return false;
	if (base & APIC_BASE_X2APIC) {
		wrmsr(X2APIC_ICR, ((u64)apic_id << 32) | ICR_DM_NMI | ICR_ASSERT);
		return true;
	}
	u64 mmio = base & 0xfffff000ULL;
	int i = 0;
	for (; i < 100000 && (mmio_read32(mmio + XAPIC_ICR_LO) & ICR_PENDING); i++)
		cpu_relax();
	if (i == 100000)
		return false;
	u32 hi = mmio_read32(mmio + XAPIC_ICR_HI);
	mmio_write32(mmio + XAPIC_ICR_HI, apic_id << 24);
	mmio_write32(mmio + XAPIC_ICR_LO, ICR_DM_NMI | ICR_ASSERT);
	for (i = 0; i < 100000 && (mmio_read32(mmio + XAPIC_ICR_LO) & ICR_PENDING); i++)
		cpu_relax();
	mmio_write32(mmio + XAPIC_ICR_HI, hi);
	return true;
}
