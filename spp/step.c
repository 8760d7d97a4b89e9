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
 */
#include <hw.h>
#include <arch/cpu.h>
#include <arch/ept.h>
#include <arch/msr.h>
#include <arch/vmx.h>
#include "drivers/apic.h"
#include "hv/log.h"
#include "hv/stats.h"
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

struct spp_step {
	bool delivery;   /* an event delivery, not an instruction (spp_step_delivery) */
	u64 gfn, len, rip, fault_gpa, gla;
	u64 gpr[16];
	u64 rflags;
	bool guest_tf;   /* RFLAGS.TF the guest had */
	bool used_mtf;
	bool pushf;      /* the instruction is PUSHF: fix the TF bit it stored */
	u32 pin, proc, exc_bitmap;
	u8 *save;        /* the page before the step */
};

static struct spp_step steps[TESSEL_MAX_CPUS];
static bool mtf_works = true;
static volatile bool pause_req[TESSEL_MAX_CPUS];
static volatile bool paused[TESSEL_MAX_CPUS];

int spp_step_init(void)
{
	for (u32 i = 0; i < percpu_count; i++) {
		hpa_t p = pmm_alloc_page();
		if (!p.v)
			return -ENOMEM;
		steps[i].save = hpa_to_ptr(p);
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

static void stop_world(struct percpu *me)
{
	for (u32 i = 0; i < percpu_count; i++) {
		struct percpu *t = percpu_array[i];
		if (t == me || !percpu_runs_guest(t))
			continue;
		__atomic_store_n(&pause_req[i], true, __ATOMIC_RELEASE);
		apic_send_nmi(t->apic_id);
	}
	for (u32 i = 0; i < percpu_count; i++) {
		struct percpu *t = percpu_array[i];
		if (t == me || !percpu_runs_guest(t))
			continue;
		while (!__atomic_load_n(&paused[i], __ATOMIC_ACQUIRE) && percpu_runs_guest(t))
			cpu_relax();
	}
}

static void resume_world(void)
{
	for (u32 i = 0; i < percpu_count; i++)
		__atomic_store_n(&pause_req[i], false, __ATOMIC_RELEASE);
}

bool spp_step_pause_nmi(void)
{
	struct percpu *c = this_cpu();
	if (!__atomic_load_n(&pause_req[c->index], __ATOMIC_ACQUIRE))
		return false;
	__atomic_store_n(&paused[c->index], true, __ATOMIC_RELEASE);
	while (__atomic_load_n(&pause_req[c->index], __ATOMIC_ACQUIRE))
		cpu_relax();
	__atomic_store_n(&paused[c->index], false, __ATOMIC_RELEASE);
	return true;
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

bool spp_step_start(struct percpu *c, u64 gfn, u64 len, u64 fault_gpa, u64 gla, bool pushf)
{
	struct spp_step *st = &steps[c->index];
	if (!st->save || spp.mode != SPP_MODE_SW)
		return false;
	stop_world(c);
	st->gfn = gfn;
	st->len = len;
	st->fault_gpa = fault_gpa;
	st->gla = gla;
	st->pushf = pushf;
	st->rip = vmcs_readl(VMCS_GUEST_RIP);
	st->rflags = vmcs_readl(VMCS_GUEST_RFLAGS);
	st->guest_tf = (st->rflags & RFLAGS_TF) != 0;
	for (unsigned i = 0; i < 16; i++)
		st->gpr[i] = vcpu_gpr(c, i);
	memcpy(st->save, hpa_to_ptr(hpa(gfn << PAGE_SHIFT)), PAGE_SIZE);
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
	}
	/* No guest interrupt handler may run while the page is writable. With IF = 0 none can
	 * (and exiting on an interrupt the guest cannot take yet would never make progress). */
	if (st->rflags & RFLAGS_IF)
		vmcs_write32(VMCS_CTRL_PIN_BASED, st->pin | PIN_EXT_INTR_EXITING);
	set_page_writable(gfn, true);
	c->step = st;
	return true;
}

/*
 * An event delivery (interrupt or exception frame) that wrote a writable sub-page of a page
 * with protected sub-pages, in software mode. The event is re-injected with the page writable
 * (other vCPUs stopped) and the VMX-preemption timer at 0: the exit comes once the event has
 * been delivered, before the handler's first instruction (SDM 25.5.1). The frame stands;
 * protected bytes it reached are restored and reported.
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
	memcpy(st->save, hpa_to_ptr(hpa(gfn << PAGE_SHIFT)), PAGE_SIZE);
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
	for (unsigned sp = 0; sp < 32; sp++) {
		if ((map & (1U << sp)) || !memcmp(now + sp * 128, st->save + sp * 128, 128))
			continue;
		if (!(flags & SPP_PAGE_TRACK)) {
			fx.denied = true;
			return fx;
		}
		for (unsigned b = sp * 128; b < sp * 128 + 128; b++) {
			if (now[b] != st->save[b] && !fx.tracked++)
				fx.first_tracked = (st->gfn << PAGE_SHIFT) + b;
		}
	}
	return fx;
}

static void undo_page(const struct spp_step *st)
{
	memcpy(hpa_to_ptr(hpa(st->gfn << PAGE_SHIFT)), st->save, PAGE_SIZE);
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
	set_page_writable(st->gfn, false);
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
	vmcs_writel(VMCS_GUEST_RFLAGS, st->rflags);
	vmcs_writel(VMCS_GUEST_RIP, st->rip + st->len);
	stat_inc(STAT_SPP_DENIED);
	spp_post_event(c, st->fault_gpa, st->rip, st->gla, TESSEL_EV_DISCARDED, 0);
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
	if (st->delivery) {
		/* The delivery completed if the preemption timer fired; anything else (another
		 * page of the frame, an NMI) leaves the event to be delivered again. */
		spin_lock(&spp.lock);
		const u8 *now = hpa_to_ptr(hpa(st->gfn << PAGE_SHIFT));
		u32 map, flags, restored = 0;
		u64 first = 0;
		spp_store_get(&spp.store, st->gfn, &map, &flags);
		for (unsigned b = 0; b < PAGE_SIZE; b++) {
			if (((map >> (b / 128)) & 1) || (flags & SPP_PAGE_TRACK) || now[b] == st->save[b])
				continue;
			if (!restored++)
				first = (st->gfn << PAGE_SHIFT) + b;
			((u8 *)hpa_to_ptr(hpa(st->gfn << PAGE_SHIFT)))[b] = st->save[b];
		}
		if (restored) {
			stat_inc(STAT_SPP_DENIED);
			spp_post_event(c, first, st->rip, 0, TESSEL_EV_DENIED, (u16)MIN(restored, 0xffffU));
		}
		end_step(c, st);
		spin_unlock(&spp.lock);
		return reason == EXIT_REASON_PREEMPT_TIMER;
	}
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
