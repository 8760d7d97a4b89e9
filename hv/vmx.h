/* VMXON, VMCS setup and the first VM entry on one processor. */
#ifndef HV_VMX_H
#define HV_VMX_H

#include <tessel/bootinfo.h>
#include "percpu.h"

struct vmx_global {
	u64 eptp;
	hpa_t msr_bitmap;
	hpa_t io_bitmap_a, io_bitmap_b;
	hpa_t host_cr3;
};
extern struct vmx_global vmx_global;

/* Enter VMX operation on the calling CPU and launch it as a guest continuing from `l`.
 * Returns only on failure (negative errno). */
s64 vmx_cpu_start(struct percpu *c, const struct tessel_launch *l);

/* Fill the MSR bitmap: which MSR reads/writes exit (hv/exit_msr.c decides what happens). */
void vmx_msr_bitmap_init(u8 *bitmap);
/* Fill the I/O bitmaps A (ports 0-7FFF) and B: only the reset ports exit (hv/exit_io.c). */
void vmx_io_bitmap_init(u8 *a, u8 *b);

/* NASM (hv/entry.asm) */
void vmx_exit_entry(void);
/* Executes VMLAUNCH: 0 if it failed (VMfail); 1 when vmx_launch_abort(j) is called after a
 * failed first entry. Does not return otherwise. */
int vmx_launch(struct launch_jmp *j);
__noreturn void vmx_launch_abort(const struct launch_jmp *j);
__noreturn void vmx_leave_to(const struct guest_regs *regs, u64 rsp, u64 rip);

#endif
