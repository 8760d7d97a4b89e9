/*
 * VMX capability discovery. The capability MSRs are read once into struct vmx_caps at
 * boot; the rest of the hypervisor asks predicates (vmx_has_spp()), never the MSRs.
 * vmx_basic_check() is also used by the loader, before anything is allocated, to say in
 * one line why a processor cannot run Tessel at all.
 */
#ifndef HV_VMX_CAPS_H
#define HV_VMX_CAPS_H

#include <tessel/types.h>

struct vmx_caps {
	u32 revision;
	bool true_ctls;
	u64 basic, misc, ept_vpid, vmfunc;
	u64 cr0_fixed0, cr0_fixed1, cr4_fixed0, cr4_fixed1;
	/* Allowed settings: low dword = bits that must be 1, high dword = bits that may be 1. */
	u64 pin, proc, proc2, exit, entry;
	u8 phys_bits;
	bool has_1g_host_pages; /* CPUID.80000001:EDX[26] */
};

/* NULL when VMX can be used on this processor, else a one-line reason. Sets
 * IA32_FEATURE_CONTROL (lock + VMX outside SMX) when the firmware left it unlocked. */
const char *vmx_basic_check(void);

void vmx_caps_read(struct vmx_caps *c);

/* Calls report() once per missing requirement; returns how many are missing. */
int vmx_caps_check(const struct vmx_caps *c, void (*report)(void *ctx, const char *reason), void *ctx);

/* NULL when two processors' capabilities agree in everything Tessel's setup depends on, else
 * the first capability MSR that differs. One VMCS setup, one EPT and one set of decisions
 * serve every processor: a processor (a hybrid part's other core type, a firmware that set
 * one up differently) that differs there is refused rather than run on the BSP's assumptions.
 * Features Tessel never enables (PML, 5-level EPT, VM functions, CR3-target and MSR-list
 * counts) may differ: a hybrid part's core types do not have to agree on them. */
const char *vmx_caps_differ(const struct vmx_caps *a, const struct vmx_caps *b);

/* The may-be-1 bits of a control word Tessel ever sets (0 pin, 1 primary, 2 secondary,
 * 3 exit, 4 entry). */
u32 vmx_used_ctls(unsigned word);

/* Adjust a desired control value to the allowed settings; false if a desired bit is not allowed. */
bool vmx_adjust_ctls(u64 allowed, u32 desired, u32 *out);

static inline bool vmx_allows(u64 allowed, u32 bit) { return ((allowed >> 32) & bit) == bit; }

extern struct vmx_caps vmx_caps;
bool vmx_has_spp(void);
bool vmx_has_vpid(void);
bool vmx_has_ept_1g(void);
bool vmx_has_mtf(void);
bool vmx_has_desc_exiting(void); /* secondary control bit 2 (HC_PIN_DT, hv/pin.c) */

#endif
