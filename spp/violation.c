/*
 * Writes to pages with protected sub-pages, and the SPP-related exits.
 *
 * An EPT violation on such a page (hardware SPP denied the write, or - software path -
 * the page is mapped without write access) is recognised from the permission store, not
 * from the qualification: hardware gives SPP-denied writes no qualification bit of their
 * own (docs/SPP.md section 5). The instruction is decoded and emulated (hv/emulate.c);
 * the backend below applies its stores byte by byte: writable bytes land, protected bytes
 * keep their value (DENY) or land and are reported (TRACK), and the guest continues after
 * the instruction. What the emulator does not cover is discarded and reported (kind 3).
 *
 * SPP misses (lazy SPPT) are filled from the store; SPP misconfigurations are repaired,
 * counted, and logged once.
 */
#include <hw.h>
#include <arch/cpu.h>
#include <arch/ept.h>
#include <arch/vmx.h>
#include "hv/emulate.h"
#include "hv/exit.h"
#include "hv/insn.h"
#include "hv/log.h"
#include "hv/stats.h"
#include "hv/vcpu.h"
#include "hv/vmcs.h"
#include "mm/guest_mem.h"
#include "mm/memmap.h"
#include "spp/spp.h"
#include "spp/step.h"

struct wctx {
	struct guest_paging paging;
	u32 access;            /* GACC_USER at CPL 3 */
	u64 denied_gpa, denied_gla, tracked_gpa, tracked_gla;
	u32 denied_bytes, tracked_bytes;
	u64 fault_la;
	u32 pfec;
	bool mmio;             /* an access reached something that is not RAM: not emulatable */
	/* The exit's own translation (qualification bit 8: GLA -> GPA, SDM 27.2.1 Table 27-7):
	 * a write to the same linear page goes to the same guest-physical page without a walk. */
	bool xlate;
	u64 xla_page, xpa_page;
	/* The store's answer for the exit's page, looked up once under spp.lock, and its
	 * byte mask if it is in byte mode (spp/bytes.h). */
	u64 gfn;
	u32 map, flags;
	const u64 *mask;
};

static int backend_read(void *vctx, u64 la, void *buf, unsigned n)
{
	struct wctx *w = vctx;
	u64 fla = 0;
	int r = guest_read_linear(&w->paging, la, buf, n, w->access, &w->pfec, &fla);
	if (r == -EFAULT) {
		w->fault_la = fla; /* a #PF the guest takes, with this CR2 */
	} else if (r) {
		/* A source that is not RAM (MMIO, a hole) or page tables outside RAM: not a fault
		 * the guest would take, and nothing the emulator may read on its behalf (an MMIO
		 * read can have side effects). Handled as an instruction that cannot be emulated. */
		w->mmio = true;
	}
	return r ? -EFAULT : 0;
}

/* Store one page's worth of bytes at gpa, honouring the page's sub-page map (and, for a
 * page in byte mode, its byte mask inside the protected sub-pages). */
static void store_page(struct wctx *w, u64 gpa, u64 la, const u8 *src, unsigned n)
{
	u32 map, flags;
	const u64 *mask;
	if ((gpa >> PAGE_SHIFT) == w->gfn) {
		map = w->map; /* spp.lock is held since that lookup: still the store's answer */
		flags = w->flags;
		mask = w->mask;
	} else {
		spp_store_get(&spp.store, gpa >> PAGE_SHIFT, &map, &flags);
		mask = map == SPP_MAP_ALL ? NULL : spp_bytes_mask(&spp.bytes, gpa >> PAGE_SHIFT);
	}
	u8 *dst = hpa_to_ptr(hpa(gpa));
	bool all_writable = true;
	for (u64 a = gpa & ~127ULL; a < gpa + n; a += 128)
		if (!(map & (1U << ((a >> 7) & 31))))
			all_writable = false;
	if (all_writable) {
		/* One store where the hardware would have made one (no tearing for readers). */
		switch (n) {
		case 1: __atomic_store_n(dst, src[0], __ATOMIC_RELAXED); return;
		case 2: if (!(gpa & 1)) { u16 v; __builtin_memcpy(&v, src, 2); __atomic_store_n((u16 *)dst, v, __ATOMIC_RELAXED); return; } break;
		case 4: if (!(gpa & 3)) { u32 v; __builtin_memcpy(&v, src, 4); __atomic_store_n((u32 *)dst, v, __ATOMIC_RELAXED); return; } break;
		case 8: if (!(gpa & 7)) { u64 v; __builtin_memcpy(&v, src, 8); __atomic_store_n((u64 *)dst, v, __ATOMIC_RELAXED); return; } break;
		}
		for (unsigned i = 0; i < n; i++)
			((volatile u8 *)dst)[i] = src[i];
		return;
	}
	/* A run at a time: up to the end of the current sub-page (in byte mode, inside a
	 * protected sub-page, up to the next change between masked and unmasked bytes). */
	for (unsigned i = 0; i < n;) {
		u64 b = gpa + i;
		unsigned run = (unsigned)MIN((u64)(n - i), 128 - (b & 127));
		bool writable = map & (1U << ((b >> 7) & 31));
		if (!writable && mask) {
			u64 off = b & (PAGE_SIZE - 1);
			bool prot = spp_bytes_bit(mask, off);
			unsigned k = 1;
			while (k < run && spp_bytes_bit(mask, off + k) == prot)
				k++;
			run = k;
			writable = !prot;
		}
		if (!writable && !(flags & SPP_PAGE_TRACK)) {
			if (!w->denied_bytes) {
				w->denied_gpa = b;
				w->denied_gla = la + i;
			}
			w->denied_bytes += run;
			i += run;
			continue;
		}
		if (!writable) {
			if (!w->tracked_bytes) {
				w->tracked_gpa = b;
				w->tracked_gla = la + i;
			}
			w->tracked_bytes += run;
		}
		for (unsigned k = 0; k < run; k++)
			((volatile u8 *)dst)[i + k] = src[i + k];
		i += run;
	}
}

static int backend_write(void *vctx, u64 la, const void *buf, unsigned n)
{
	struct wctx *w = vctx;
	const u8 *src = buf;
	while (n) {
		unsigned chunk = (unsigned)MIN((u64)n, PAGE_SIZE - (la & (PAGE_SIZE - 1)));
		u64 gpa;
		int r = 0;
		if (w->xlate && (la & ~(u64)(PAGE_SIZE - 1)) == w->xla_page)
			gpa = w->xpa_page | (la & (PAGE_SIZE - 1));
		else
			r = guest_walk(&w->paging, la, GACC_WRITE | w->access, &gpa, &w->pfec);
		if (r == -EFAULT) {
			w->fault_la = la;
			return -EFAULT;
		}
		if (r) {
			w->mmio = true; /* page tables outside RAM: no #PF to give (see backend_read) */
			return -EFAULT;
		}
		if (memmap_is_ram(gpa, chunk)) { /* RAM is never the region: asked first, inline */
			store_page(w, gpa, la, src, chunk);
		} else if (memmap_in_hv(gpa, chunk)) {
			/* hypervisor memory: writes are discarded (ABI.md section 6) */
		} else {
			w->mmio = true;
			return -EFAULT;
		}
		la += chunk;
		src += chunk;
		n -= chunk;
	}
	return 0;
}

static void inject_pf(struct percpu *c, u64 la, u32 pfec)
{
	write_cr2(la); /* VMX does not switch CR2; the host never changes it otherwise */
	vcpu_inject_exception(c, VEC_PF, true, pfec);
}

/*
 * The sub-pages of the exit's page that a stepped instruction can write (spp/step.c saves
 * only those and the protected ones). Known only where the decoder gives the operand's size
 * and the operand is the instruction's only store: 0F-map instructions with a memory operand
 * in 64-bit mode (FXSAVE and the like; none of them also pushes). Everything else: all 32.
 */
static u32 step_writes(const struct insn *in, const struct emu_regs *r, u64 rip, u64 gla, u64 qual)
{
	if (in->mode != INSN_MODE_64 || in->map != 1 || in->vex || in->evex || !in->has_mem || !in->memsize ||
	    !(qual & EPT_QUAL_GLA_VALID))
		return ~0U;
	u64 la = insn_mem_offset(in, r->gpr, rip + in->len);
	if (in->seg == INSN_SEG_FS || in->seg == INSN_SEG_GS)
		la += r->seg_base[in->seg];
	u64 page = gla & ~(u64)(PAGE_SIZE - 1);
	u64 lo = MAX(la, page), hi = MIN(la + in->memsize, page + PAGE_SIZE);
	if (la + in->memsize < la || hi <= lo)
		return ~0U; /* wraps, or not on this page: not the access that exited */
	u32 m = 0;
	for (u64 a = lo & ~127ULL; a < hi; a += 128)
		m |= 1U << ((a - page) >> 7);
	return m;
}

/* The events and counters of an emulated store that completed. */
static void report(struct percpu *c, const struct wctx *w, u64 rip)
{
	if (w->denied_bytes) {
		stat_inc(STAT_SPP_DENIED);
		spp_post_event(c, w->denied_gpa, rip, w->denied_gla, TESSEL_EV_DENIED, (u16)MIN(w->denied_bytes, 0xffffU));
	}
	if (w->tracked_bytes) {
		stat_inc(STAT_SPP_TRACKED);
		spp_post_event(c, w->tracked_gpa, rip, w->tracked_gla, TESSEL_EV_TRACKED, (u16)MIN(w->tracked_bytes, 0xffffU));
	}
}

/*
 * The most common store, MOV to memory (88 /r, 89 /r, C6 /0 ib, C7 /0 iw/id; SDM Vol. 2B
 * "MOV"), in 64-bit mode at CPL 0, done on the saved registers in place: it changes no
 * register and no flag, so nothing is loaded into or committed from the emulator's register
 * file. Only when the store stays on the linear page the processor translated for this exit
 * (w->xlate): then there is no canonical, segment, alignment-check or page-permission
 * question the processor has not already answered for it. False: not such a store (the
 * emulator handles it); true: stored through the backend (protected bytes kept, counted).
 */
static bool mov_store(struct percpu *c, struct wctx *w, const struct insn *in, u64 rip)
{
	u8 op = in->opcode;
	if (in->mode != INSN_MODE_64 || in->map != 0 || in->vex || in->evex || !in->has_mem || in->lock ||
	    in->vsib || !(op == 0x88 || op == 0x89 || op == 0xc6 || op == 0xc7))
		return false;
	if ((op == 0xc6 || op == 0xc7) && ((in->modrm >> 3) & 7) != 0)
		return false; /* C6/C7 with reg != 0: not MOV (#UD or XABORT/XBEGIN forms) */
	unsigned n = (op == 0x88 || op == 0xc6) ? 1 : in->opsize;
	u64 *gpr = c->regs->gpr;
	/* The saved-register frame has a slot for RSP that entry.asm neither fills nor restores:
	 * the guest's RSP (VMCS) goes there when the address or the source uses it. */
	if (in->mem_base == GPR_SP || in->mem_index == GPR_SP || ((op == 0x88 || op == 0x89) && in->reg == GPR_SP))
		gpr[GPR_SP] = vmcs_readl(VMCS_GUEST_RSP);
	u64 la = insn_mem_offset(in, gpr, rip + in->len);
	if (in->seg == INSN_SEG_FS)
		la += vmcs_readl(VMCS_GUEST_FS_BASE);
	else if (in->seg == INSN_SEG_GS)
		la += vmcs_readl(VMCS_GUEST_GS_BASE);
	if ((la & ~(u64)(PAGE_SIZE - 1)) != w->xla_page || (la & (PAGE_SIZE - 1)) + n > PAGE_SIZE)
		return false;
	u64 v;
	if (op == 0x88)
		/* Without REX, registers 4-7 are AH, CH, DH, BH (SDM Vol. 2A 3.1.1.1). */
		v = (!in->rex && in->reg >= 4 && in->reg < 8) ? gpr[in->reg - 4] >> 8 : gpr[in->reg];
	else if (op == 0x89)
		v = gpr[in->reg];
	else if (op == 0xc7 && n == 8)
		v = (u64)(s64)(s32)(u32)in->imm; /* imm32 sign-extended to 64 bits */
	else
		v = in->imm;
	u8 buf[8];
	__builtin_memcpy(buf, &v, 8); /* little-endian: the low n bytes are the operand */
	if (backend_write(w, la, buf, n)) {
		w->mmio = false; /* not RAM after all: the emulator's path decides what happens */
		return false;
	}
	return true;
}

bool spp_handle_ept_violation(struct percpu *c, u64 gpa, u64 qual)
{
	if (spp.mode == SPP_MODE_NONE || !(qual & EPT_QUAL_WRITE) || !memmap_is_ram(gpa, 1))
		return false;
	spin_lock(&spp.lock);
	u32 map, flags;
	spp_store_get(&spp.store, gpa >> PAGE_SHIFT, &map, &flags);
	if (map == SPP_MAP_ALL) {
		/* Unprotected meanwhile (another vCPU's SET): retry if the EPT now allows it. */
		int level;
		u64 *e = ept_leaf(spp.ept, gpa, &level);
		bool ok = e && (*e & EPT_W);
		spin_unlock(&spp.lock);
		if (ok)
			invept(INVEPT_ALL_CONTEXT, 0);
		return ok;
	}

	struct insn in;
	u64 rip = vmcs_readl(VMCS_GUEST_RIP);
	u64 gla = (qual & EPT_QUAL_GLA_VALID) ? vmcs_readl(VMCS_RO_GUEST_LINEAR_ADDR) : 0;
	u32 vectoring = vcpu_idt_vectoring(c);
	if (vectoring & INTR_INFO_VALID) {
		/* The processor was delivering an event (pushing its frame), not executing the
		 * instruction at RIP. */
		bool byte_writable = !spp_byte_protected(map, spp_bytes_mask(&spp.bytes, gpa >> PAGE_SHIFT),
							 (unsigned)(gpa & (PAGE_SIZE - 1)));
		if (byte_writable && spp_step_delivery(c, gpa >> PAGE_SHIFT, gpa, gla)) {
			spin_unlock(&spp.lock);
			return true; /* the event is re-injected (hv/exit.c) with the page open */
		}
		/* The frame would land on protected bytes: the delivery cannot complete, as on
		 * hardware when a frame write faults: a double fault (or, delivering one, a
		 * triple fault). */
		stat_inc(STAT_SPP_DENIED);
		spp_post_event(c, gpa, rip, gla, TESSEL_EV_DENIED, 0);
		spin_unlock(&spp.lock);
		if ((vectoring & INTR_TYPE_MASK) == INTR_TYPE_HW_EXCEPTION && (vectoring & INTR_VECTOR_MASK) == VEC_DF) {
			exit_triple_fault(c);
			return true;
		}
		vcpu_inject_exception(c, VEC_DF, true, 0);
		return true;
	}
	/* What the fetch walk, the decoding mode and the CPL need, each field read once. */
	u32 cs_ar = vmcs_read32(VMCS_GUEST_CS_AR);
	unsigned cpl = vcpu_cpl_cs(cs_ar);
	struct wctx w = { .access = cpl == 3 ? GACC_USER : 0, .gfn = gpa >> PAGE_SHIFT, .map = map, .flags = flags,
			  .mask = spp_bytes_mask(&spp.bytes, gpa >> PAGE_SHIFT) };
	bool cr0_stand_in = vcpu_guest_paging_fetch(&w.paging, vmcs_read64(VMCS_GUEST_IA32_EFER));
	if (vcpu_decode_at(&in, &w.paging, vcpu_insn_mode_cs(&w.paging, cs_ar), rip, cpl)) {
		/* Without a length the instruction cannot even be skipped. */
		spp_post_event(c, gpa, rip, gla, TESSEL_EV_DISCARDED, 0);
		spin_unlock(&spp.lock);
		vcpu_inject_ud(c);
		return true;
	}
	/* The processor translated the exit's linear address for this write and found it
	 * writable in the guest's paging structures (an EPT violation on the final access is
	 * only reached once the guest's page walk and its permission checks passed; bit 8 of
	 * the qualification says the GPA is that walk's result, SDM Vol. 3C "Exit Qualification
	 * for EPT Violations"): writes to the same linear page need no walk. The translation is
	 * the one in force at the write, as a TLB entry would be.
	 * At CPL 0 only: a CPL-3 instruction's exit can come from an implicit supervisor access
	 * (a descriptor's accessed flag), whose permission says nothing about a user write. */
	if ((qual & EPT_QUAL_GLA_VALID) && (qual & EPT_QUAL_GLA_XLATE) && cpl == 0) {
		w.xlate = true;
		w.xla_page = gla & ~(u64)(PAGE_SIZE - 1);
		w.xpa_page = gpa & ~(u64)(PAGE_SIZE - 1);
	}
	if (w.xlate && mov_store(c, &w, &in, rip)) {
		vcpu_skip_from(c, rip, in.len);
		stat_inc(STAT_EMULATED_WRITES);
		report(c, &w, rip);
		spin_unlock(&spp.lock);
		return true;
	}
	/* The emulator's writes off the exit's page walk the guest's tables: CR0.WP counts. */
	if (cr0_stand_in)
		w.paging.cr0 = vmcs_readl(VMCS_GUEST_CR0);
	struct emu_regs regs = { 0 };
	vcpu_emu_load_for(c, &regs, &in, rip);
	struct emu_mem mem = { backend_read, backend_write, &w };
	int r = emu_covers(&in) ? emu_write_insn(&regs, &in, &mem) : -EOPNOTSUPP;
	if (r == 0) {
		vcpu_emu_commit(c, &regs, rip);
		stat_inc(STAT_EMULATED_WRITES);
		report(c, &w, rip);
	} else if (r == -EFAULT && !w.mmio) {
		vcpu_emu_commit_gprs(c, &regs); /* a REP keeps the progress it made before the fault */
		inject_pf(c, w.fault_la, w.pfec);
	} else if (vcpu_inject_emu_fault(c, r)) {
		/* the instruction faults natively (#UD, #GP, #NM): nothing stored */
	} else if (spp.mode == SPP_MODE_SW && !w.mmio &&
		   spp_step_start(c, gpa >> PAGE_SHIFT, in.len, gpa, gla, in.map == 0 && in.opcode == 0x9c,
				  step_writes(&in, &regs, rip, gla, qual))) {
		/* Not emulatable: run it once with the page writable (spp/step.c). */
	} else {
		/* Not emulatable (or it stores to MMIO): discard the whole instruction. */
		stat_inc(STAT_SPP_DENIED);
		spp_post_event(c, gpa, rip, gla, TESSEL_EV_DISCARDED, 0);
		vcpu_skip_bytes(c, in.len);
	}
	spin_unlock(&spp.lock);
	return true;
}

bool spp_paging_write(struct percpu *c, u64 gpa, unsigned size, u32 bits, u64 gla)
{
	(void)gla; /* the event reports the entry's address; its linear address is unknown */
	if (!memmap_is_ram(gpa, size))
		return false;
	/* A and D are in the low 32 bits of every entry format (SDM Tables 4-4 to 4-20); a
	 * locked OR, as the processor's own update is (SDM 4.8). */
	u32 *low = hpa_to_ptr(hpa(gpa));
	if (spp.mode == SPP_MODE_NONE) {
		__atomic_fetch_or(low, bits, __ATOMIC_SEQ_CST);
		return true;
	}
	spin_lock(&spp.lock); /* serialises with emulated stores to the same page */
	u32 map, flags;
	spp_store_get(&spp.store, gpa >> PAGE_SHIFT, &map, &flags);
	const u64 *mask = map == SPP_MAP_ALL ? NULL : spp_bytes_mask(&spp.bytes, gpa >> PAGE_SHIFT);
	bool writable = true, track = flags & SPP_PAGE_TRACK;
	for (unsigned k = 0; k < size; k++) /* an entry never crosses a page (it is aligned) */
		if (spp_byte_protected(map, mask, (unsigned)((gpa + k) & (PAGE_SIZE - 1))))
			writable = false;
	u64 rip = vmcs_readl(VMCS_GUEST_RIP);
	if (writable || track) {
		__atomic_fetch_or(low, bits, __ATOMIC_SEQ_CST);
		if (!writable) {
			stat_inc(STAT_SPP_TRACKED);
			spp_post_event(c, gpa, rip, 0, TESSEL_EV_TRACKED, (u16)size);
		}
	} else {
		stat_inc(STAT_SPP_DENIED);
		spp_post_event(c, gpa, rip, 0, TESSEL_EV_DENIED, (u16)size);
	}
	spin_unlock(&spp.lock);
	return writable || track;
}

int spp_emulated_store(struct percpu *c, const struct guest_paging *p, u32 access, u64 la, const void *buf,
		       unsigned n, u64 rip, u32 *pfec, u64 *fault_la)
{
	/* Translate every page first: a fault on the second page stores nothing. */
	u64 gpa[2];
	unsigned pages = 0;
	for (u64 a = la; pages < 2;) {
		u64 end = la + n;
		int r = guest_walk(p, a, GACC_WRITE | access, &gpa[pages], pfec);
		if (r == -EFAULT) {
			*fault_la = a;
			return -EFAULT;
		}
		if (r)
			return -EIO;
		unsigned chunk = (unsigned)MIN(end - a, PAGE_SIZE - (a & (PAGE_SIZE - 1)));
		if (!memmap_is_ram(gpa[pages], chunk) && !memmap_in_hv(gpa[pages], chunk))
			return -EIO;
		pages++;
		a += chunk;
		if (a == end)
			break;
	}
	if (spp.mode == SPP_MODE_NONE) {
		const u8 *src = buf;
		for (unsigned k = 0, off = 0; k < pages; k++) {
			unsigned chunk = (unsigned)MIN((u64)(n - off), PAGE_SIZE - ((la + off) & (PAGE_SIZE - 1)));
			if (memmap_is_ram(gpa[k], chunk))
				(void)guest_write_phys(gpa[k], src + off, chunk);
			off += chunk;
		}
		return 0;
	}
	struct wctx w = { .paging = *p, .access = access, .gfn = ~0ULL };
	spin_lock(&spp.lock);
	int r = backend_write(&w, la, buf, n);
	if (!r)
		report(c, &w, rip);
	spin_unlock(&spp.lock);
	if (r && !w.mmio) {
		*pfec = w.pfec;
		*fault_la = w.fault_la;
		return -EFAULT;
	}
	return r ? -EIO : 0;
}

static u32 map_of(void *ctx, u64 gfn)
{
	(void)ctx;
	u32 map, flags;
	spp_store_get(&spp.store, gfn, &map, &flags);
	return map;
}

void exit_spp(struct percpu *c)
{
	u64 q = vmcs_readl(VMCS_RO_EXIT_QUALIFICATION);
	u64 gpa = vmcs_read64(VMCS_RO_GUEST_PHYS_ADDR);
	c->exit_qual = q;
	if (spp.mode != SPP_MODE_HW)
		vcpu_stop(c, "SPP exit without hardware SPP in use");
	if ((q & SPP_QUAL_NMI_UNBLOCK) && !(vcpu_idt_vectoring(c) & INTR_INFO_VALID))
		vmcs_write32(VMCS_GUEST_INTERRUPTIBILITY, vmcs_read32(VMCS_GUEST_INTERRUPTIBILITY) | GUEST_INTR_BLOCK_NMI);
	spin_lock(&spp.lock);
	if (q & SPP_QUAL_MISS) {
		stat_inc(STAT_SPP_MISSES);
		if (sppt_fill_2m(&spp.sppt, gpa, map_of, NULL)) {
			spin_unlock(&spp.lock);
			vcpu_stop(c, "SPP miss: no table memory (prepared paths should make this impossible)");
		}
	} else {
		stat_inc(STAT_SPP_MISCONFIGS);
		int n = sppt_repair(&spp.sppt, gpa, map_of, NULL);
		if (!spp.misconfig_logged) {
			spp.misconfig_logged = true;
			log_warn("SPP misconfiguration at GPA %llx: %d SPPT entr%s repaired (logged once)",
				 (unsigned long long)gpa, n, n == 1 ? "y" : "ies");
		}
	}
	spin_unlock(&spp.lock);
}
