/*
 * Guest write emulator: MOVS and STOS with and without REP (SDM Vol. 2 "MOVS", "STOS",
 * "REP"). The source is seg:rSI (DS unless overridden), the destination ES:rDI (never
 * overridden); rSI, rDI and rCX are used and updated in the address size; DF selects the
 * direction. Iterations are batched into chunks that stay inside one 4 KiB page on each
 * side, do not wrap the address size and (MOVS) do not overlap, so each chunk is one
 * backend call and faults at page granularity still leave exact iteration counts.
 */
#include "hv/emulate_priv.h"

#define CHUNK_BYTES 256

/* Elements (1..max) from offset `off` / linear `la` that stay in la's page and inside the
 * address size; `down` walks towards lower addresses. */
static u64 span(u64 off, u64 la, unsigned sz, bool down, u64 am, u64 max)
{
	u64 pg = la & (PAGE_SIZE - 1), k;

	if (!down) {
		u64 room = PAGE_SIZE - pg, oroom = am - off; /* bytes after the first one */
		k = room / sz;
		if (oroom < ~0ULL && (oroom + 1) / sz < k)
			k = (oroom + 1) / sz;
	} else {
		if (pg + sz > PAGE_SIZE)
			return 1;
		k = MIN(pg, off) / sz + 1;
	}
	if (k == 0)
		k = 1;
	return MIN(k, max);
}

/* Set rSI/rDI/rCX in the address size (a 32-bit address size writes the 32-bit register,
 * which zero-extends in 64-bit mode). */
static void set_areg(struct emu *e, unsigned n, unsigned as, u64 v)
{
	emu_set_reg(e, n, as, v);
}

int emu_do_string(struct emu *e)
{
	const struct insn *in = e->in;
	bool movs = in->opcode < 0xaa, rep = in->rep || in->repne, down = e->r.rflags & FL_DF;
	unsigned sz = in->opsize, as = in->addrsize;
	u64 am = emu_mask(as), count = rep ? e->r.gpr[GPR_RCX] & am : 1;
	u64 budget = EMU_REP_MAX_BYTES, done = 0;
	u64 buf[CHUNK_BYTES / 8];
	unsigned src_seg = in->seg != INSN_REG_NONE ? in->seg : INSN_SEG_DS;

	if (in->lock)
		return -EINVAL;
	if (!movs) { /* the STOS pattern, as far as this call can use it */
		u64 v = emu_reg(e, GPR_RAX, sz);
		unsigned fill = count >= CHUNK_BYTES / sz ? CHUNK_BYTES : (unsigned)count * sz;
		for (unsigned sh = 8 * sz; sh < 64; sh *= 2)
			v |= v << sh;
		for (unsigned i = 0; i < fill; i += 8)
			buf[i / 8] = v;
	}
	/* A REP with a 32-bit address size and ECX = 0 does no iteration but still writes its
	 * 32-bit registers, clearing bits 63:32 of RCX, RDI (and RSI for MOVS). Intel processors
	 * do this (Linux's KVM emulator carries the same rule as an Intel quirk); AMD processors
	 * leave the registers alone, so tests/unit/test_emulate.c applies this rule to its native
	 * reference run instead of taking the host's result. */
	if (rep && !count && as == 4) {
		set_areg(e, GPR_RCX, as, 0);
		set_areg(e, GPR_RDI, as, e->r.gpr[GPR_RDI]);
		if (movs)
			set_areg(e, GPR_RSI, as, e->r.gpr[GPR_RSI]);
	}
	while (count) {
		u64 di = e->r.gpr[GPR_RDI] & am, si = e->r.gpr[GPR_RSI] & am;
		u64 dla = emu_linear(e, INSN_SEG_ES, di), sla = 0;
		u64 k = span(di, dla, sz, down, am, MIN(count, CHUNK_BYTES / sz));
		u64 back, n;

		if (movs) {
			sla = emu_linear(e, src_seg, si);
			k = span(si, sla, sz, down, am, k);
		}
		back = down ? (k - 1) * sz : 0; /* the chunk starts below the current element */
		n = k * sz;
		if (movs) {
			u64 s0 = sla - back, d0 = dla - back;
			if (k > 1 && s0 < d0 + n && d0 < s0 + n) {
				k = 1; /* overlapping: one element at a time keeps the order */
				back = 0;
				n = sz;
				s0 = sla;
				d0 = dla;
			}
			if (emu_read(e, s0, buf, (unsigned)n) || emu_write(e, d0, buf, (unsigned)n))
				goto fault;
		} else if (emu_write(e, dla - back, buf, (unsigned)n)) {
			goto fault;
		}
		done += k;
		count -= k;
		set_areg(e, GPR_RDI, as, down ? di - n : di + n);
		if (movs)
			set_areg(e, GPR_RSI, as, down ? si - n : si + n);
		if (rep)
			set_areg(e, GPR_RCX, as, count);
		if (n >= budget && count) {
			e->rip_set = true; /* resume: the guest re-executes with the rest */
			break;
		}
		budget -= n;
	}
	return 0;
fault:
	e->partial = done != 0;
	return -EFAULT;
}
