/*
 * The guest's view of the MTRR MSRs: see mtrr_guest.h. (Interim: reads and writes reach the
 * processor's MTRRs, as before the MSR policy; virtualization replaces this.)
 */
#include <hw.h>
#include <arch/msr.h>
#include "mm/mtrr_guest.h"

bool mtrr_guest_is_mtrr(u32 msr)
{
	return msr == MSR_IA32_MTRRCAP || msr == MSR_IA32_MTRR_DEF_TYPE ||
	       (msr >= MSR_IA32_MTRR_PHYSBASE0 && msr < MSR_IA32_MTRR_PHYSBASE0 + 2 * 32) ||
	       msr == MSR_IA32_MTRR_FIX64K_00000 || msr == MSR_IA32_MTRR_FIX16K_80000 ||
	       msr == MSR_IA32_MTRR_FIX16K_A0000 ||
	       (msr >= MSR_IA32_MTRR_FIX4K_C0000 && msr <= MSR_IA32_MTRR_FIX4K_C0000 + 7);
}

int mtrr_guest_read(u32 msr, u64 *val)
{
	return rdmsr_safe(msr, val) ? 0 : -EINVAL;
}

int mtrr_guest_write(u32 msr, u64 val)
{
	if (msr == MSR_IA32_MTRRCAP)
		return -EINVAL;
	return wrmsr_safe(msr, val) ? 0 : -EINVAL;
}
