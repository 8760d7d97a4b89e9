/*
 * trap.c: catching exceptions raised by test code. A private copy of the current IDT gets
 * this library's entry stubs for the requested vectors (interrupt gates, so IF is clear in
 * the handler; the unwind restores the caller's RFLAGS); it is loaded with LIDT only for the
 * duration of the guarded call, so firmware interrupt handling is untouched otherwise.
 * SDM Vol. 3A 6.14.1 (64-bit IDT gate descriptors).
 */
#include "guest.h"
#include "arch.h"
#include "lowlevel.h"

struct idt_gate {
	uint16_t off_lo;
	uint16_t sel;
	uint8_t ist;
	uint8_t type_attr; /* P | DPL | 0 | type (0xE = 64-bit interrupt gate) */
	uint16_t off_mid;
	uint32_t off_hi;
	uint32_t zero;
};
_Static_assert(sizeof(struct idt_gate) == 16, "IDT gate is 16 bytes");

#define GATE_INTR_DPL0 0x8e
#define GATE_INTR_DPL3 0xee

static struct idt_gate idt_copy[256] __attribute__((aligned(4096)));

static void gate_set(struct idt_gate *g, uint64_t handler, uint16_t sel, uint8_t type_attr)
{
	g->off_lo = (uint16_t)handler;
	g->sel = sel;
	g->ist = 0;
	g->type_attr = type_attr;
	g->off_mid = (uint16_t)(handler >> 16);
	g->off_hi = (uint32_t)(handler >> 32);
	g->zero = 0;
}

int guard_run(struct guard *g, uint32_t vectors, int int80)
{
	struct x86_dtr old, new;
	sidt(&old);
	uint64_t n = (uint64_t)old.limit + 1;
	if (n > sizeof(idt_copy))
		n = sizeof(idt_copy);
	mem_set(idt_copy, 0, sizeof(idt_copy));
	mem_copy(idt_copy, (const void *)(uintptr_t)old.base, n);
	uint16_t cs = read_cs();
	for (unsigned v = 0; v < 32; v++)
		if (vectors & (1u << v))
			gate_set(&idt_copy[v], GUARD_STUB(v), cs, GATE_INTR_DPL0);
	if (int80)
		gate_set(&idt_copy[RING3_INT], (uint64_t)(uintptr_t)guard_vec_int80, cs, GATE_INTR_DPL3);
	new.limit = sizeof(idt_copy) - 1;
	new.base = (uint64_t)(uintptr_t)idt_copy;
	g->vector = ~0ull;
	lidt(&new);
	int r = (int)guard_enter(g);
	lidt(&old);
	return r;
}

int trap_call(uint32_t vectors, void (*fn)(void *), void *arg, struct trap_info *out)
{
	struct guard g;
	mem_set(&g, 0, sizeof(g));
	g.fn = (uint64_t)(uintptr_t)fn;
	g.arg = (uint64_t)(uintptr_t)arg;
	g.mode = 0;
	int r = guard_run(&g, vectors, 0);
	if (out) {
		mem_set(out, 0, sizeof(*out));
		out->trapped = r;
		if (r) {
			out->vector = g.vector;
			out->error = g.error;
			out->rip = g.rip;
			out->cs = g.cs;
			mem_copy(out->regs, g.regs, sizeof(out->regs));
		}
	}
	return r;
}

const char *trap_name(uint64_t vector)
{
	static const char *const names[32] = {
		"#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "#CSO", "#TS", "#NP", "#SS", "#GP",
		"#PF", "#15", "#MF", "#AC", "#MC", "#XM", "#VE", "#CP",
	};
	if (vector == RING3_INT)
		return "INT 0x80";
	if (vector < 32 && names[vector])
		return names[vector];
	return "?";
}
