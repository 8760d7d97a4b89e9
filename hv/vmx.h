/* VMXON, VMCS setup and the first VM entry on one processor. */
#ifndef HV_VMX_H
#define HV_VMX_H

#include <tessel/bootinfo.h>
#include "percpu.h"

struct vmx_global {
	u64 eptp;
	hpa_t msr_bitmap;
	hpa_t host_cr3;
};
extern struct vmx_global vmx_global;

/* Enter VMX operation on the calling CPU and launch it as a guest continuing from `l`.
 * Returns only on failure (negative errno). */
s64 vmx_cpu_start(struct percpu *c, const struct tessel_launch *l);

/* Fill the MSR bitmap: which MSR reads/writes exit (hv/exit_msr.c decides what happens). */
void vmx_msr_bitmap_init(u8 *bitmap);

/* NASM (hv/entry.asm) */
void vmx_exit_entry(void);
/* Executes VMLAUNCH; returns only if it failed. */
void vmx_launch(void);

#endif
