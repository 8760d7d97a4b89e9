/*
 * Exceptions taken by the hypervisor itself. An NMI in root mode is remembered and
 * delivered to the guest at the next VM entry (hv/exit.c). A fault at an instruction in
 * the exception table (RDMSR/WRMSR/XSETBV done on the guest's behalf) resumes at its
 * fixup. Anything else is a hypervisor bug: panic with the frame.
 */
#include <hw.h>
#include <arch/cpu.h>
#include <arch/vmx.h>
#include "panic.h"
#include "percpu.h"
#include "exit.h"
#include "traps.h"

struct idt_gate host_idt[IDT_VECTORS] __aligned(16);

extern const u64 trap_stubs[IDT_VECTORS];
extern const struct extable_entry __ex_table_start[], __ex_table_end[];

void traps_init(void)
{
	for (unsigned v = 0; v < IDT_VECTORS; v++) {
		u64 off = trap_stubs[v];
		u8 ist = v == VEC_NMI ? IST_NMI : v == VEC_DF ? IST_DF : v == VEC_MC ? IST_MC : 0;
		host_idt[v] = (struct idt_gate){
			.off_lo = (u16)off, .sel = HOST_SEL_CODE, .ist = ist, .type_attr = 0x8E, /* P, DPL0, interrupt gate */
			.off_mid = (u16)(off >> 16), .off_hi = (u32)(off >> 32), .rsvd = 0,
		};
	}
}

u64 extable_lookup(u64 rip)
{
	for (const struct extable_entry *e = __ex_table_start; e < __ex_table_end; e++)
		if (e->insn == rip)
			return e->fixup;
	return 0;
}

void trap_handler(struct trap_frame *f)
{
	if (f->vector == VEC_NMI) {
		struct percpu *c = this_cpu();
		nmi_arrived(c);
		f->rip = nmi_entry_rewind(c, f->rip); /* on the way into the guest: check again */
		return;
	}
	u64 fixup = extable_lookup(f->rip);
	if (fixup) {
		f->rip = fixup;
		return;
	}
	panic("host exception %llu (error code %llx) at RIP %llx, CR2 %llx, RSP %llx",
	      (unsigned long long)f->vector, (unsigned long long)f->error_code, (unsigned long long)f->rip,
	      (unsigned long long)read_cr2(), (unsigned long long)f->rsp);
}
