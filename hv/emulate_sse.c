/*
 * Guest write emulator: stores from XMM/YMM registers to memory, legacy SSE and VEX
 * (SDM Vol. 2 "MOVUPS", "MOVAPS", "MOVDQU", "MOVDQA", "MOVSS", "MOVSD", "MOVQ", "MOVD",
 * "MOVLPS", "MOVHPS", "MOVNTPS", "MOVNTDQ" and their PD/VEX forms). The guest registers are
 * live in the CPU and read through hw.h (cpu_read_xmm, cpu_read_ymm_high); MMX sources
 * (NP 0F 7E/7F/E7) and register destinations are not covered.
 */
#include <hw.h>
#include <arch/cpu.h>

#include "hv/emulate_priv.h"

int emu_do_sse(struct emu *e)
{
	const struct insn *in = e->in;
	u8 mp = in->mandatory, vl = in->vex && in->vex_l ? 32 : 16;
	bool np_or_66 = mp == 0 || mp == 0x66, align = false, l0 = false;
	unsigned n, skip = 0;
	u8 buf[32];
	u64 la;

	/* The guest's own state decides whether an instruction of these rows exists at all (SDM
	 * Vol. 2 2.3.10 and Table 2-21 for VEX; the SSE and MMX exception classes): checked
	 * first, for every form of the row (also the ones not emulated below, and register
	 * forms), because the processor checked it before the access that exited, and the bytes
	 * decoded here may not be the ones it ran (another vCPU rewrote them, or a stale TLB
	 * entry fetched other bytes). MMX forms (no 66/F2/F3 prefix on 7E/7F/E7) do not need
	 * CR4.OSFXSR. */
	switch (in->opcode) {
	case 0x11: case 0x13: case 0x17: case 0x29: case 0x2b: case 0x7e: case 0x7f: case 0xd6: case 0xe7:
		break; /* the same list as hv/emulate.c sse_store_row (emu_covers) */
	default:
		return -EOPNOTSUPP; /* not a store row of this file (0F xx reaches here by default) */
	}
	bool mmx = !in->vex && mp == 0 && (in->opcode == 0x7e || in->opcode == 0x7f || in->opcode == 0xe7);
	if (in->vex) {
		if (!(e->r.cr4 & CR4_OSXSAVE) || (e->r.xcr0 & 6) != 6)
			return -EINVAL;
	} else if ((e->r.cr0 & CR0_EM) || (!mmx && !(e->r.cr4 & CR4_OSFXSR))) {
		return -EINVAL;
	}
	if (e->r.cr0 & CR0_TS)
		return -EMU_NM;

	switch (in->opcode) {
	case 0x11: /* MOVUPS/MOVUPD, MOVSS (F3), MOVSD (F2); VEX.L is ignored for the scalars */
		n = np_or_66 ? vl : mp == 0xf3 ? 4 : 8;
		break;
	case 0x29: case 0x2b: /* MOVAPS/MOVAPD, MOVNTPS/MOVNTPD */
		if (!np_or_66)
			return -EINVAL; /* F3/F2: no such instruction on Intel processors (#UD) */
		n = vl;
		align = true;
		break;
	case 0x7f: /* MOVDQU (F3), MOVDQA (66) */
		if (mp != 0xf3 && mp != 0x66)
			return -EOPNOTSUPP;
		n = vl;
		align = mp == 0x66;
		break;
	case 0xe7: /* MOVNTDQ */
		if (mp != 0x66)
			return -EOPNOTSUPP;
		n = vl;
		align = true;
		break;
	case 0xd6: /* MOVQ m64, xmm */
		if (mp != 0x66)
			return -EOPNOTSUPP;
		n = 8;
		l0 = true;
		break;
	case 0x7e: /* MOVD/MOVQ r/m32/64, xmm: W only counts in 64-bit mode */
		if (mp != 0x66)
			return -EOPNOTSUPP;
		n = (in->rex & 0x08) && in->mode == INSN_MODE_64 ? 8 : 4;
		l0 = true;
		break;
	case 0x13: case 0x17: /* MOVLPS/MOVLPD, MOVHPS/MOVHPD: low or high quadword */
		if (!np_or_66)
			return -EINVAL; /* F3/F2: undefined (#UD) */
		n = 8;
		skip = in->opcode == 0x17 ? 8 : 0;
		l0 = true;
		break;
	default:
		return -EOPNOTSUPP;
	}
	/* #UD: LOCK; VEX stores need vvvv = 1111b (SDM Vol. 2 2.3.6) and some need L = 0. */
	if (in->lock || (in->vex && (in->vex_vvvv || (l0 && in->vex_l))))
		return -EINVAL;
	/* A register destination writes no memory: it cannot have caused the exit (the bytes
	 * changed under the decode), and is nothing to emulate. (After the guest-state checks
	 * above, so an instruction the guest could not run at all still gets its fault.) */
	if (!in->has_mem)
		return -EOPNOTSUPP;
	la = emu_mem_la(e);
	if (align && (la & (n - 1)))
		return -EMU_GP;
	/* Faults anyway (a state the checks above do not model): the guest gets #UD, the host
	 * goes on (hw.h exception-table fixup). */
	if (!cpu_read_xmm(in->reg & 15, buf) || (n == 32 && !cpu_read_ymm_high(in->reg & 15, buf + 16)))
		return -EINVAL;
	return emu_write(e, la, buf + skip, n);
}
