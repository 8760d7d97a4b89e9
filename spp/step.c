/*
 * Single-step of an instruction the emulator does not cover, in software mode.
 *
 * The other vCPUs are stopped first (NMI, acknowledged; they spin in root mode), so no other
 * vCPU ever sees the page writable. The page is saved, mapped writable, and the instruction
 * runs once: with the monitor trap flag where the boot self-test showed it works, otherwise
 * with RFLAGS.TF and #DB interception (external interrupts exit meanwhile, so no guest handler
 * runs while the page is writable). Then:
 *  - no protected byte changed: the instruction stands, exactly as without protection (what
 *    hardware SPP would have let through without an exit);
 *  - a protected byte changed: the whole instruction is undone (the page from the saved copy,
 *    registers and flags) and skipped, and reported as discarded (kind 3) - the same outcome
 *    as hardware mode, where the processor stops such a write and the hypervisor cannot
 *    emulate the instruction.
 * TF stays invisible: the guest's own TF is restored, a guest-set TF still gets its
 * single-step #DB (DR6.BS), and the RFLAGS image a stepped PUSHF stored is corrected.
 * Any other exit during the step (an interrupt or NMI before the instruction, a fault, an
 * EPT violation elsewhere) undoes the page and lets the instruction run again later.
 *
 * A hostile guest can make the step run something other than what was decoded: another
 * vCPU (before it was paused) or a DMA-free self-modification can replace the instruction
 * with INT n, POPF or IRET, which in TF mode clear TF and never trap. So every step is
 * bounded by the VMX-preemption timer where the processor has it (SDM 25.5.1), and a step
 * only counts as done if RIP moved by exactly the decoded length and the instruction bytes
 * at RIP are still the decoded ones; anything else undoes the page. Whatever ran, the
 * protected bytes of the opened page are compared with the saved copy before the world
 * resumes, and every other protected page stays closed (a write to one ends the step).
 */
#include <hw.h>
#include <arch/cpu.h>
#include <arch/ept.h>
#include <arch/msr.h>
#include <arch/vmx.h>
#include "drivers/apic.h"
#include "hv/exit.h"
#include "hv/log.h"
#include "hv/stats.h"
#include "hv/vapic.h"
#include "hv/vcpu.h"
#include "hv/vmcs.h"
#include "hv/vmx_caps.h"
#include "lib/string.h"
#include "mm/guest_mem.h"
#include "mm/memmap.h"
#include "mm/pmm.h"
#include "spp/spp.h"
#include "spp/step.h"

#define DR6_BS (1ULL << 14)
#define DEBUGCTL_BTF (1ULL << 1)
/* Preemption-timer budget of an instruction step, in timer units (TSC >> IA32_VMX_MISC[4:0]):
 * ample for one instruction, short enough that a step that escaped (see above) ends soon. */
#define STEP_TIMER_BUDGET 0x10000U
#define NO_GFN (~0ULL)

/* Guest state an event delivery changes (SDM 6.12.1, 6.14.2, 20.1.4): saved before a
 * delivery step so a frame that reached protected bytes can be taken back for a #DF. */
struct delivery_state {
	u64 rip, rsp, rflags, cs_base, ss_base;
	u32 cs_limit, ss_limit, cs_ar, ss_ar, intr;
	u16 cs_sel, ss_sel;
	u32 vectoring;   /* the event being delivered (IDT-vectoring information) */
};

struct spp_step {
	bool delivery;   /* an event delivery, not an instruction (spp_step_delivery) */
	u64 gfn, len, rip, fault_gpa, gla;
	u64 gfn2;        /* delivery: a second page of a straddling frame, or NO_GFN */
	u8 insn[16];     /* the decoded instruction's bytes (len of them), for the check */
	bool insn_ok;    /* insn[] could be read at the start */
	bool timer;      /* the preemption timer bounds this step */
	struct delivery_state ds;
	u64 gpr[16];
	u64 rflags;
	bool guest_tf;   /* RFLAGS.TF the guest had */
	bool used_mtf;
	bool pushf;      /* the instruction is PUSHF: fix the TF bit it stored */
	u32 pin, proc, exc_bitmap;
	u8 *save;        /* the page before the step (the sub-pages in save_mask) */
	u32 save_mask;   /* sub-pages of gfn saved in save: every protected one, and those the
			  * instruction's operand can write (all 32 when that is not known) */
	u8 *save2;       /* gfn2 before the step */
};

static struct spp_step steps[TESSEL_MAX_CPUS];
static bool mtf_works = true;
static volatile bool pause_req[TESSEL_MAX_CPUS];
static volatile bool paused[TESSEL_MAX_CPUS];

int spp_step_init(void)
{
	for (u32 i = 0; i < percpu_count; i++) {
		hpa_t p = pmm_alloc_page(), q = pmm_alloc_page();
		if (!p.v || !q.v)
			return -ENOMEM;
		steps[i].save = hpa_to_ptr(p);
		steps[i].save2 = hpa_to_ptr(q);
		steps[i].gfn2 = NO_GFN;
	}
	return 0;
}

void spp_step_set_mtf(bool works)
{
	if (!works && mtf_works && vmx_has_mtf())
		log_info("monitor trap flag: advertised, but the self-test saw no MTF exit; single-steps use RFLAGS.TF");
	else if (works && mtf_works)
		log_debug("monitor trap flag: self-test passed");
	if (!works)
		mtf_works = false;
}

bool spp_step_uses_mtf(void) { return mtf_works && vmx_has_mtf(); }

/*
 * Stopping the world. The stopper holds spp.lock (so there is one at a time, and no
 * shootdown meanwhile). Each other CPU gets a pause request; a CPU that can run guest code
 * also gets an NMI and is waited for until it acknowledges (paused[]). A CPU parked in
 * wait-for-SIPI (hv/vapic.c) runs no guest code and is not waited for, but it must not start
 * running guest code while the world is stopped: when its SIPI comes it clears wait_sipi and
 * then looks at its pause request (spp_step_park_exit). The two sides each store and then
 * load the other's flag with sequentially consistent atomics (Dekker), so either the
 * stopper sees the CPU running (and waits for its acknowledgement) or the CPU sees the
 * request (and pauses itself before entering the guest). The wait is robust, not blind:
 * the NMI is sent again from time to time (an NMI can be held off while the target handles
 * another), and a target that went to wait-for-SIPI or stopped no longer counts.
 */
#define RESEND_SPINS (1ULL << 20)

static void stop_world(struct percpu *me)
{
	for (u32 i = 0; i < percpu_count; i++) {
		struct percpu *t = percpu_array[i];
		if (t == me)
			continue;
		__atomic_store_n(&pause_req[i], true, __ATOMIC_SEQ_CST);
		if (percpu_runs_guest(t))
			vapic_send_nmi(t);
	}
	for (u32 i = 0; i < percpu_count; i++) {
		struct percpu *t = percpu_array[i];
		if (t == me)
			continue;
		u64 spins = 0;
		while (!__atomic_load_n(&paused[i], __ATOMIC_SEQ_CST) && percpu_runs_guest(t)) {
			cpu_relax();
			if (++spins % RESEND_SPINS == 0) {
				if (spins == RESEND_SPINS * 64)
					log_warn("single-step: cpu %u does not answer its pause request; still waiting", i);
				vapic_send_nmi(t);
			}
		}
	}
}

static void resume_world(void)
{
	for (u32 i = 0; i < percpu_count; i++)
		__atomic_store_n(&pause_req[i], false, __ATOMIC_SEQ_CST);
}

/* Spin while this CPU's pause request stands. The page a step opened is closed again by
 * then; this CPU ran no guest code while it was open, but it flushes anyway before it
 * enters the guest again (the closing INVEPT was the stepping CPU's only). */
static void pause_here(struct percpu *c)
{
	__atomic_store_n(&paused[c->index], true, __ATOMIC_SEQ_CST);
	while (__atomic_load_n(&pause_req[c->index], __ATOMIC_SEQ_CST))
		cpu_relax();
	__atomic_store_n(&paused[c->index], false, __ATOMIC_SEQ_CST);
	invept(INVEPT_ALL_CONTEXT, 0);
}

bool spp_step_pause_nmi(void)
{
	struct percpu *c = this_cpu();
	if (!__atomic_load_n(&pause_req[c->index], __ATOMIC_SEQ_CST))
		return false;
	/* Interrupted while holding a lock (the EPT's, the ring's, the log's): pausing here would
	 * keep it from the stepping CPU for good. The last unlock pauses instead. */
	if (c->locks_held) {
		c->pause_deferred = true;
		return false;
	}
	pause_here(c);
	return true;
}

void spp_step_pause_deferred(struct percpu *c)
{
	if (__atomic_load_n(&pause_req[c->index], __ATOMIC_SEQ_CST))
		pause_here(c);
}

void spp_step_park_exit(struct percpu *c)
{
	__atomic_store_n(&c->wait_sipi, false, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&pause_req[c->index], __ATOMIC_SEQ_CST))
		pause_here(c);
}


static void set_page_writable(u64 gfn, bool writable)
{
	int level;
	spin_lock(&spp.ept->lock);
	u64 *e = ept_leaf(spp.ept, gfn << PAGE_SHIFT, &level);
	if (e && level == 1)
		__atomic_store_n(e, writable ? (*e | EPT_W) : (*e & ~EPT_W), __ATOMIC_RELEASE);
	spin_unlock(&spp.ept->lock);
	invept(INVEPT_ALL_CONTEXT, 0);
}

/* The instruction bytes at guest RIP (n of them) as the guest sees them now; false if they
 * cannot be read. */
static bool read_insn_bytes(u64 rip, u8 *buf, unsigned n)
{
	struct guest_paging p;
	vcpu_guest_paging(&p);
	u64 la = vcpu_long_mode() ? rip : (u32)(vmcs_readl(VMCS_GUEST_CS_BASE) + rip);
	u32 pfec, access = GACC_FETCH | (vcpu_cpl() == 3 ? GACC_USER : 0);
	u64 fla, gpa;
	if ((la & (PAGE_SIZE - 1)) + n <= PAGE_SIZE) {
		/* On one page (the usual case): one walk, then the bytes straight from RAM. */
		if (guest_walk(&p, la, access, &gpa, &pfec))
			return false;
		if (memmap_is_ram(gpa, n)) {
			memcpy(buf, hpa_to_ptr(hpa(gpa)), n);
			return true;
		}
	}
	return guest_read_linear(&p, la, buf, n, access, &pfec, &fla) == 0;
}

/*
 * SDM 26.3.1.5 (checks on the guest non-register state): with blocking by STI or by MOV SS,
 * the BS bit of the pending debug exceptions must be 1 if RFLAGS.TF = 1 and
 * IA32_DEBUGCTL.BTF = 0, and 0 otherwise; VM entry fails if not. The step changes TF, so it
 * makes BS agree each time it sets or restores TF. Without such blocking BS may be either;
 * it is left as it is (except where the caller clears it on purpose).
 */
static void fix_pending_bs(void)
{
	if (!(vmcs_read32(VMCS_GUEST_INTERRUPTIBILITY) & (GUEST_INTR_BLOCK_STI | GUEST_INTR_BLOCK_MOV_SS)))
		return;
	bool want = (vmcs_readl(VMCS_GUEST_RFLAGS) & RFLAGS_TF) && !(vmcs_read64(VMCS_GUEST_IA32_DEBUGCTL) & DEBUGCTL_BTF);
	u64 pd = vmcs_readl(VMCS_GUEST_PENDING_DBG_EXC);
	vmcs_writel(VMCS_GUEST_PENDING_DBG_EXC, want ? (pd | DR6_BS) : (pd & ~DR6_BS));
}

static bool have_timer(void) { return vmx_allows(vmx_caps.pin, PIN_PREEMPTION_TIMER); }

/* 8-byte words that may alias the bytes of a page (guest memory, save areas). */
typedef u64 __attribute__((may_alias)) u64_alias;

/* One 128-byte sub-page, 8 bytes at a time, unrolled (sub-pages are 8-byte aligned). */
static inline void copy_subpage(u8 *dst, const u8 *src)
{
	u64_alias *d = (u64_alias *)(void *)dst;
	const u64_alias *q = (const u64_alias *)(const void *)src;
#define CP4(i) do { u64 a = q[i], b = q[i + 1], c = q[i + 2], e = q[i + 3]; \
		    d[i] = a; d[i + 1] = b; d[i + 2] = c; d[i + 3] = e; } while (0)
	CP4(0); CP4(4); CP4(8); CP4(12);
#undef CP4
}

/* Copies the sub-pages in mask (128 bytes each) between a page and its save area. */
static void copy_subpages(u8 *dst, const u8 *src, u32 mask)
{
	if (mask == ~0U) {
		memcpy(dst, src, PAGE_SIZE);
		return;
	}
	for (; mask; mask &= mask - 1) {
		unsigned off = (unsigned)__builtin_ctz(mask) * 128;
		copy_subpage(dst + off, src + off);
	}
}

/* Whether a 128-byte sub-page differs from its saved copy, a word at a time (unrolled). */
static bool subpage_changed(const u8 *now, const u8 *saved)
{
	const u64_alias *a = (const u64_alias *)(const void *)now, *b = (const u64_alias *)(const void *)saved;
	u64 diff = 0;
#define X4(i) (diff |= (a[i] ^ b[i]) | (a[i + 1] ^ b[i + 1]) | (a[i + 2] ^ b[i + 2]) | (a[i + 3] ^ b[i + 3]))
	X4(0); X4(4); X4(8); X4(12);
#undef X4
	return diff != 0;
}

bool spp_step_start(struct percpu *c, u64 gfn, u64 len, u64 fault_gpa, u64 gla, bool pushf, u32 writes)
{
	struct spp_step *st = &steps[c->index];
	if (!st->save || spp.mode != SPP_MODE_SW)
		return false;
	stop_world(c);
	st->gfn = gfn;
	st->len = len;
	st->fault_gpa = fault_gpa;
	st->gla = gla;
	st->gfn2 = NO_GFN;
	st->pushf = pushf;
	st->rip = vmcs_readl(VMCS_GUEST_RIP);
	st->rflags = vmcs_readl(VMCS_GUEST_RFLAGS);
	st->guest_tf = (st->rflags & RFLAGS_TF) != 0;
	/* Read after the world stopped: no other vCPU can change them until the step ends. */
	st->insn_ok = len <= sizeof(st->insn) && read_insn_bytes(st->rip, st->insn, (unsigned)len);
	for (unsigned i = 0; i < 16; i++)
		st->gpr[i] = c->regs->gpr[i];
	st->gpr[GPR_SP] = vmcs_readl(VMCS_GUEST_RSP); /* not in the saved frame (hv/percpu.h) */
	/* The protected sub-pages (what the judgement and an undo need) and those the operand
	 * writes (so an undone instruction leaves no partial writes); the map cannot change
	 * while the world is stopped and spp.lock held. */
	u32 map, flags;
	spp_store_get(&spp.store, gfn, &map, &flags);
	st->save_mask = ~map | writes;
	copy_subpages(st->save, hpa_to_ptr(hpa(gfn << PAGE_SHIFT)), st->save_mask);
	st->delivery = false;
	st->pin = vmcs_read32(VMCS_CTRL_PIN_BASED);
	st->proc = vmcs_read32(VMCS_CTRL_PROC_BASED);
	st->exc_bitmap = vmcs_read32(VMCS_CTRL_EXCEPTION_BITMAP);
	/* The instruction faulted (EPT violation): no single-step trap can be pending for it.
	 * Bochs 2.7 nevertheless saves BS there on such exits when TF is set; entering with it
	 * would deliver the #DB before the instruction runs (SDM 27.3.4: fault-like exits). */
	vmcs_writel(VMCS_GUEST_PENDING_DBG_EXC, vmcs_readl(VMCS_GUEST_PENDING_DBG_EXC) & ~DR6_BS);
	st->used_mtf = spp_step_uses_mtf();
	if (st->used_mtf) {
		vmcs_write32(VMCS_CTRL_PROC_BASED, st->proc | PROC_MONITOR_TRAP_FLAG);
	} else {
		vmcs_writel(VMCS_GUEST_RFLAGS, st->rflags | RFLAGS_TF);
		/* Every exception exits during the step: no guest handler may run while the page
		 * is writable (the exception is delivered after the page is restored). */
		vmcs_write32(VMCS_CTRL_EXCEPTION_BITMAP, 0xffffffffU);
		fix_pending_bs();
	}
	/* No guest interrupt handler may run while the page is writable. With IF = 0 none can
	 * (and exiting on an interrupt the guest cannot take yet would never make progress). */
	u32 pin = st->pin;
	if (st->rflags & RFLAGS_IF)
		pin |= PIN_EXT_INTR_EXITING;
	/* The bound: whatever runs, an exit comes soon and the world resumes. */
	st->timer = have_timer();
	if (st->timer) {
		pin |= PIN_PREEMPTION_TIMER;
		vmcs_write32(VMCS_GUEST_PREEMPT_TIMER, STEP_TIMER_BUDGET);
	}
	vmcs_write32(VMCS_CTRL_PIN_BASED, pin);
	set_page_writable(gfn, true);
	c->step = st;
	return true;
}

/*
 * An event delivery (interrupt or exception frame) that wrote a writable sub-page of a page
 * with protected sub-pages, in software mode. The event is re-injected with the page writable
 * (other vCPUs stopped) and the VMX-preemption timer at 0: the exit comes once the event has
 * been delivered, before the handler's first instruction (SDM 25.5.1). A frame that also
 * reaches a second page with protected sub-pages (it straddles a page boundary) opens that
 * page too and is delivered again: one step covers both pages, so the two cannot keep
 * reopening each other. If the delivered frame changed a protected byte of either (DENY)
 * page, the delivery is taken back (both pages and the guest state it changed) and the
 * guest gets the #DF that docs/ABI.md section 7 promises, as for a frame whose first byte
 * was protected (spp/violation.c).
 */
bool spp_step_delivery(struct percpu *c, u64 gfn, u64 fault_gpa, u64 gla)
{
	struct spp_step *st = &steps[c->index];
	if (!st->save || spp.mode != SPP_MODE_SW || !vmx_allows(vmx_caps.pin, PIN_PREEMPTION_TIMER))
		return false;
	stop_world(c);
	st->delivery = true;
	st->gfn = gfn;
	st->len = 0;
	st->fault_gpa = fault_gpa;
	st->gla = gla;
	st->pushf = false;
	st->rip = vmcs_readl(VMCS_GUEST_RIP);
	st->rflags = vmcs_readl(VMCS_GUEST_RFLAGS);
	st->guest_tf = false;
	st->used_mtf = true; /* nothing of TF or #DB is touched */
	st->gfn2 = NO_GFN;
	st->timer = true;
	struct delivery_state *d = &st->ds;
	d->rip = st->rip;
	d->rflags = st->rflags;
	d->rsp = vmcs_readl(VMCS_GUEST_RSP);
	d->cs_base = vmcs_readl(VMCS_GUEST_CS_BASE);
	d->ss_base = vmcs_readl(VMCS_GUEST_SS_BASE);
	d->cs_limit = vmcs_read32(VMCS_GUEST_CS_LIMIT);
	d->ss_limit = vmcs_read32(VMCS_GUEST_SS_LIMIT);
	d->cs_ar = vmcs_read32(VMCS_GUEST_CS_AR);
	d->ss_ar = vmcs_read32(VMCS_GUEST_SS_AR);
	d->cs_sel = vmcs_read16(VMCS_GUEST_CS_SEL);
	d->ss_sel = vmcs_read16(VMCS_GUEST_SS_SEL);
	d->intr = vmcs_read32(VMCS_GUEST_INTERRUPTIBILITY);
	d->vectoring = vmcs_read32(VMCS_RO_IDT_VECTORING_INFO);
	memcpy(st->save, hpa_to_ptr(hpa(gfn << PAGE_SHIFT)), PAGE_SIZE);
	st->save_mask = ~0U;
	st->pin = vmcs_read32(VMCS_CTRL_PIN_BASED);
	st->proc = vmcs_read32(VMCS_CTRL_PROC_BASED);
	st->exc_bitmap = vmcs_read32(VMCS_CTRL_EXCEPTION_BITMAP);
	vmcs_write32(VMCS_GUEST_PREEMPT_TIMER, 0);
	vmcs_write32(VMCS_CTRL_PIN_BASED, st->pin | PIN_PREEMPTION_TIMER);
	set_page_writable(gfn, true);
	c->step = st;
	return true; /* the caller lets the interrupted event be re-injected */
}

/* What the step did to protected bytes of the page: on a DENY page, whether any changed;
 * on a TRACK page, how many changed and the first one (they stand, and are reported). */
struct step_effect { bool denied; u32 tracked; u64 first_tracked; };

static struct step_effect step_effect(const struct spp_step *st)
{
	struct step_effect fx = { false, 0, 0 };
	u32 map, flags;
	spp_store_get(&spp.store, st->gfn, &map, &flags);
	const u8 *now = hpa_to_ptr(hpa(st->gfn << PAGE_SHIFT));
	const u64 *mask = spp_bytes_mask(&spp.bytes, st->gfn); /* byte mode: only its bytes count */
	for (u32 prot = ~map; prot; prot &= prot - 1) { /* the protected sub-pages, in order */
		unsigned sp = (unsigned)__builtin_ctz(prot);
		if (!subpage_changed(now + sp * 128, st->save + sp * 128))
			continue;
		for (unsigned b = sp * 128; b < sp * 128 + 128; b++) {
			if (now[b] == st->save[b] || !spp_byte_protected(map, mask, b))
				continue;
			if (!(flags & SPP_PAGE_TRACK)) {
				fx.denied = true;
				return fx;
			}
			if (!fx.tracked++)
				fx.first_tracked = (st->gfn << PAGE_SHIFT) + b;
		}
	}
	return fx;
}

static void undo_page(const struct spp_step *st)
{
	copy_subpages(hpa_to_ptr(hpa(st->gfn << PAGE_SHIFT)), st->save, st->save_mask);
	if (st->gfn2 != NO_GFN)
		memcpy(hpa_to_ptr(hpa(st->gfn2 << PAGE_SHIFT)), st->save2, PAGE_SIZE);
}

static void end_step(struct percpu *c, struct spp_step *st)
{
	vmcs_write32(VMCS_CTRL_PIN_BASED, st->pin);
	vmcs_write32(VMCS_CTRL_PROC_BASED, (vmcs_read32(VMCS_CTRL_PROC_BASED) & ~PROC_MONITOR_TRAP_FLAG) |
					   (st->proc & PROC_MONITOR_TRAP_FLAG));
	vmcs_write32(VMCS_CTRL_EXCEPTION_BITMAP, st->exc_bitmap);
	if (!st->used_mtf) {
		u64 rf = vmcs_readl(VMCS_GUEST_RFLAGS);
		vmcs_writel(VMCS_GUEST_RFLAGS, st->guest_tf ? (rf | RFLAGS_TF) : (rf & ~RFLAGS_TF));
	}
	fix_pending_bs();
	set_page_writable(st->gfn, false);
	if (st->gfn2 != NO_GFN)
		set_page_writable(st->gfn2, false);
	st->gfn2 = NO_GFN;
	resume_world();
	c->step = NULL;
}

/* The byte of the RFLAGS image a stepped PUSHF stored that holds TF (bit 8), as a
 * guest-physical address: SS.base + RSP + 1 outside 64-bit mode (SDM 6.2.1); 0 if unmapped. */
static u64 pushf_tf_byte(void)
{
	struct guest_paging p;
	vcpu_guest_paging(&p);
	u64 rsp = vmcs_readl(VMCS_GUEST_RSP), la, gpa;
	if (vcpu_long_mode()) {
		la = rsp + 1;
	} else {
		u64 mask = (vmcs_read32(VMCS_GUEST_SS_AR) & SEG_AR_DB) ? 0xffffffffULL : 0xffffULL;
		la = (vmcs_readl(VMCS_GUEST_SS_BASE) + ((rsp + 1) & mask)) & 0xffffffffULL;
	}
	u32 pfec;
	if (guest_walk(&p, la, GACC_WRITE, &gpa, &pfec) || !memmap_is_ram(gpa, 1))
		return 0;
	return gpa;
}

static void discard(struct percpu *c, struct spp_step *st)
{
	undo_page(st);
	for (unsigned i = 0; i < 16; i++)
		vcpu_set_gpr(c, i, st->gpr[i]);
	/* The instruction counts as completed (its protected bytes are put back): RF clears, as
	 * at the end of any instruction (vcpu_complete_rflags). */
	vmcs_writel(VMCS_GUEST_RFLAGS, st->rflags & ~RFLAGS_RF);
	vmcs_writel(VMCS_GUEST_RIP, st->rip + st->len);
	stat_inc(STAT_SPP_DENIED);
	spp_post_event(c, st->fault_gpa, st->rip, st->gla, TESSEL_EV_DISCARDED, 0);
}

/* Did the step run the instruction it decoded? RIP moved by exactly its length (no jump,
 * no event delivery: the stepped instructions do neither) and its bytes are unchanged. */
static bool ran_as_decoded(const struct spp_step *st)
{
	u8 now[sizeof(st->insn)];
	if (!st->insn_ok || vmcs_readl(VMCS_GUEST_RIP) != st->rip + st->len)
		return false;
	return read_insn_bytes(st->rip, now, (unsigned)st->len) && !memcmp(now, st->insn, st->len);
}

/* Scans a page of a delivery step: TRACK pages keep what the frame wrote; on a DENY page a
 * changed protected byte is counted (first in *first). Returns the count. */
static u32 frame_denied(u64 gfn, const u8 *save, u64 *first)
{
	u32 map, flags, n = 0;
	spp_store_get(&spp.store, gfn, &map, &flags);
	if (flags & SPP_PAGE_TRACK)
		return 0;
	const u8 *now = hpa_to_ptr(hpa(gfn << PAGE_SHIFT));
	const u64 *mask = spp_bytes_mask(&spp.bytes, gfn);
	for (unsigned b = 0; b < PAGE_SIZE; b++) {
		if (!spp_byte_protected(map, mask, b) || now[b] == save[b])
			continue;
		if (!n++ && first)
			*first = (gfn << PAGE_SHIFT) + b;
	}
	return n;
}

static void restore_delivery_state(const struct delivery_state *d)
{
	vmcs_writel(VMCS_GUEST_RIP, d->rip);
	vmcs_writel(VMCS_GUEST_RSP, d->rsp);
	vmcs_writel(VMCS_GUEST_RFLAGS, d->rflags);
	vmcs_writel(VMCS_GUEST_CS_BASE, d->cs_base);
	vmcs_writel(VMCS_GUEST_SS_BASE, d->ss_base);
	vmcs_write32(VMCS_GUEST_CS_LIMIT, d->cs_limit);
	vmcs_write32(VMCS_GUEST_SS_LIMIT, d->ss_limit);
	vmcs_write32(VMCS_GUEST_CS_AR, d->cs_ar);
	vmcs_write32(VMCS_GUEST_SS_AR, d->ss_ar);
	vmcs_write16(VMCS_GUEST_CS_SEL, d->cs_sel);
	vmcs_write16(VMCS_GUEST_SS_SEL, d->ss_sel);
	vmcs_write32(VMCS_GUEST_INTERRUPTIBILITY, d->intr);
}

static bool delivery_exit(struct percpu *c, struct spp_step *st, u32 reason)
{
	spin_lock(&spp.lock);
	if (reason == EXIT_REASON_EPT_VIOLATION && st->gfn2 == NO_GFN &&
	    (vmcs_read32(VMCS_RO_IDT_VECTORING_INFO) & INTR_INFO_VALID) &&
	    (vmcs_readl(VMCS_RO_EXIT_QUALIFICATION) & EPT_QUAL_WRITE)) {
		u64 gfn2 = vmcs_read64(VMCS_RO_GUEST_PHYS_ADDR) >> PAGE_SHIFT;
		u32 map, flags;
		spp_store_get(&spp.store, gfn2, &map, &flags);
		if (gfn2 != st->gfn && map != SPP_MAP_ALL) {
			/* The frame straddles into a second protected page: open it too and deliver
			 * again (hv/exit.c re-injects the event from the IDT-vectoring information). */
			st->gfn2 = gfn2;
			memcpy(st->save2, hpa_to_ptr(hpa(gfn2 << PAGE_SHIFT)), PAGE_SIZE);
			set_page_writable(gfn2, true);
			vmcs_write32(VMCS_GUEST_PREEMPT_TIMER, 0);
			spin_unlock(&spp.lock);
			return true;
		}
	}
	bool completed = reason == EXIT_REASON_PREEMPT_TIMER;
	u64 first = 0, first2 = 0;
	u32 denied = frame_denied(st->gfn, st->save, &first);
	u32 denied2 = st->gfn2 != NO_GFN ? frame_denied(st->gfn2, st->save2, &first2) : 0;
	bool df = false;
	if (denied || denied2) {
		/* The frame reached protected bytes: nothing of it stands. */
		undo_page(st);
		stat_inc(STAT_SPP_DENIED);
		spp_post_event(c, denied ? first : first2, st->rip, 0, TESSEL_EV_DENIED,
			       (u16)MIN(denied + denied2, 0xffffU));
		if (completed) {
			restore_delivery_state(&st->ds);
			df = true;
		}
	}
	end_step(c, st);
	spin_unlock(&spp.lock);
	if (df) {
		u32 v = st->ds.vectoring;
		if ((v & INTR_TYPE_MASK) == INTR_TYPE_HW_EXCEPTION && (v & INTR_VECTOR_MASK) == VEC_DF) {
			exit_triple_fault(c);
			return true;
		}
		vcpu_inject_exception(c, VEC_DF, true, 0);
		c->event_injected = true;
	}
	return completed;
}

bool spp_step_exit(struct percpu *c, u32 reason)
{
	struct spp_step *st = c->step;
	bool done = false, handled = false;
	u64 db_qual = 0;
	u32 info = 0;
	if (st->used_mtf && reason == EXIT_REASON_MTF) {
		done = true;
	} else if (reason == EXIT_REASON_EXCEPTION_NMI) {
		info = vmcs_read32(VMCS_RO_EXIT_INTR_INFO);
		if (!st->used_mtf && (info & INTR_TYPE_MASK) == INTR_TYPE_HW_EXCEPTION && (info & INTR_VECTOR_MASK) == VEC_DB) {
			db_qual = vmcs_readl(VMCS_RO_EXIT_QUALIFICATION);
			/* The step's trap comes after the instruction: RIP has moved. */
			done = (db_qual & DR6_BS) && vmcs_readl(VMCS_GUEST_RIP) != st->rip;
		}
	}
	if (reason == EXIT_REASON_PREEMPT_TIMER && !st->delivery && ran_as_decoded(st)) {
		/* The budget ran out right after the instruction, before its trap could come (the
		 * SDM gives debug traps priority over the timer, so this is the MTF case, or a
		 * processor that does not): the instruction completed, judge it as such. A TF trap
		 * still pending for it must not reach the guest. */
		done = true;
		if (!st->used_mtf)
			vmcs_writel(VMCS_GUEST_PENDING_DBG_EXC, vmcs_readl(VMCS_GUEST_PENDING_DBG_EXC) & ~DR6_BS);
	}
	bool replaced = false;
	if (done && !st->delivery && !ran_as_decoded(st)) {
		/* The step ended, but not after the decoded instruction (its bytes were replaced
		 * under the step, or it jumped): whatever ran is not judged, the page is undone
		 * below, and the guest goes on from where it got to. */
		static u32 warned;
		if (warned < 8 && ++warned)
			log_warn("single-step at %llx: the instruction was replaced while it was stepped; page undone",
				 (unsigned long long)st->rip);
		done = false;
		replaced = true;
	}
	if (st->delivery)
		return delivery_exit(c, st, reason);
	spin_lock(&spp.lock);
	if (done) {
		struct step_effect fx = step_effect(st);
		u64 tf_byte = st->pushf ? pushf_tf_byte() : 0;
		if (fx.denied || (st->pushf && tf_byte && !spp_gpa_writable(tf_byte - 1, 2))) {
			/* It wrote protected bytes (a PUSHF slot in a protected sub-page counts even
			 * if the bytes did not change): the whole instruction is discarded. */
			discard(c, st);
		} else {
			stat_inc(STAT_EMULATED_WRITES);
			if (tf_byte) {
				u8 *b = hpa_to_ptr(hpa(tf_byte));
				*b = (u8)((*b & ~1U) | (st->guest_tf ? 1U : 0U));
			}
			if (fx.tracked) {
				stat_inc(STAT_SPP_TRACKED);
				spp_post_event(c, fx.first_tracked, st->rip, 0, TESSEL_EV_TRACKED, (u16)MIN(fx.tracked, 0xffffU));
			}
		}
		handled = true;
	} else if (reason == EXIT_REASON_EPT_VIOLATION) {
		u64 gpa = vmcs_read64(VMCS_RO_GUEST_PHYS_ADDR);
		u32 map, flags;
		spp_store_get(&spp.store, gpa >> PAGE_SHIFT, &map, &flags);
		if ((gpa >> PAGE_SHIFT) != st->gfn && map != SPP_MAP_ALL) {
			/* It also writes another protected page: one step can open only one page, so
			 * the instruction can never complete this way: discard it. */
			discard(c, st);
			handled = true;
		} else {
			undo_page(st);
		}
	} else {
		undo_page(st); /* the instruction did not complete: it runs again later */
		handled = replaced; /* the step's own exit (#DB or MTF): nothing else to handle */
	}
	end_step(c, st);
	spin_unlock(&spp.lock);

	if (done) {
		/* Only the guest's own debug conditions reach its DR6: breakpoints always, BS only if
		 * the guest itself had TF set. */
		bool guest_bp = (db_qual & 0xfULL) != 0;
		if (!st->used_mtf && (st->guest_tf || guest_bp)) {
			write_dr6((read_dr6() & ~0x400fULL) | (db_qual & 0xfULL) | (st->guest_tf ? DR6_BS : 0));
			vcpu_inject_exception(c, VEC_DB, false, 0);
		}
		return true;
	}
	if (handled)
		return true;
	if (reason == EXIT_REASON_EXCEPTION_NMI && (info & INTR_TYPE_MASK) == INTR_TYPE_HW_EXCEPTION &&
	    !st->used_mtf && !(st->exc_bitmap & (1U << (info & 31)))) {
		/* An exception that exited only because the step intercepts them all (the
		 * instruction faulted, or a guest breakpoint): deliver it to the guest now that
		 * the page is restored. One the hypervisor intercepts anyway is the caller's. */
		u8 vec = (u8)(info & INTR_VECTOR_MASK);
		if (vec == VEC_PF)
			write_cr2(vmcs_readl(VMCS_RO_EXIT_QUALIFICATION));
		if (vec == VEC_DB)
			write_dr6((read_dr6() & ~0x400fULL) | (vmcs_readl(VMCS_RO_EXIT_QUALIFICATION) & 0xfULL));
		vcpu_inject_exception(c, vec, (info & INTR_INFO_DELIVER_CODE) != 0,
				      (info & INTR_INFO_DELIVER_CODE) ? vmcs_read32(VMCS_RO_EXIT_INTR_ERROR_CODE) : 0);
		return true;
	}
	/* An external interrupt that arrived during the step stays pending in the APIC (no
	 * acknowledge on exit) and is delivered now that interrupt exiting is off again. */
	return reason == EXIT_REASON_EXTERNAL_INTR;
}
