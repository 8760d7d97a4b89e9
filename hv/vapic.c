/*
 * Virtual INIT and SIPI (see vapic.h for why). ICR fields: SDM Vol. 3A Figure 10-12 (xAPIC)
 * and 10.12.9 (x2APIC: one 64-bit MSR, destination in bits 63:32).
 */
#include <hw.h>
#include <arch/ept.h>
#include <arch/msr.h>
#include "drivers/apic.h"
#include "emulate.h"
#include "exit.h"
#include "insn.h"
#include "log.h"
#include "mm/ept.h"
#include "mm/guest_mem.h"
#include "pin.h"
#include "vapic.h"
#include "vcpu.h"
#include "vmcs.h"
#include "vmx_caps.h"
#include "spp/step.h"

#define ICR_VECTOR(lo)    ((lo) & 0xffU)
#define ICR_MODE(lo)      (((lo) >> 8) & 7U)
#define ICR_LOGICAL       (1U << 11)
#define ICR_LEVEL_ASSERT  (1U << 14)
#define ICR_TRIGGER_LEVEL (1U << 15)
#define ICR_SHORTHAND(lo) (((lo) >> 18) & 3U)
#define MODE_NMI  4U
#define MODE_INIT 5U
#define MODE_SIPI 6U
#define XAPIC_ICR_LO 0x300
#define XAPIC_ICR_HI 0x310

static struct ept *vapic_ept;
static u64 apic_page; /* guest-physical xAPIC page, write-protected in EPT; 0 if none */

int vapic_init(struct ept *ept, u64 apic_base)
{
	vapic_ept = ept;
	apic_page = apic_base & ~0xfffULL;
	spin_lock(&vapic_ept->lock);
	int r = ept_split(vapic_ept, apic_page, 1);
	int level;
	u64 *e = r ? NULL : ept_leaf(vapic_ept, apic_page, &level);
	if (e)
		*e &= ~EPT_W;
	spin_unlock(&vapic_ept->lock);
	if (!e) {
		apic_page = 0;
		return r ? r : -EINVAL;
	}
	return 0;
}

/*
 * The hypervisor's NMIs to other processors (shootdowns, stopping the world, kicks). Each
 * one sent is counted for its target before it is sent, and each NMI the target takes
 * uses up one count: that NMI was the hypervisor's and is not the guest's. Counting, rather
 * than asking "was there a request?", matters because a request can be consumed by an
 * earlier NMI (or by a vCPU leaving wait-for-SIPI) before the NMI that carried it arrives;
 * that late NMI used to be injected into the guest as a phantom.
 *
 * NMIs do not queue: two sent while the target has NMIs blocked arrive as one, and the
 * count then stays one too high. A count older than NMI_STALE_TSC is such a leftover and
 * is dropped (an NMI IPI arrives within microseconds), so at most one NMI that comes soon
 * after a merge is taken for the hypervisor's. The guest's own NMI IPIs are delivered by
 * the hypervisor (vapic_icr_write), so they never merge with the hypervisor's; a
 * platform NMI (LINT1, a performance-counter NMI) that merges with one cannot be told
 * apart in hardware and is not delivered.
 */
#define NMI_STALE_TSC (1ULL << 28)
static volatile u32 nmi_inflight[TESSEL_MAX_CPUS];
static volatile u64 nmi_sent_tsc[TESSEL_MAX_CPUS];
static volatile bool vnmi_req[TESSEL_MAX_CPUS]; /* the guest sent this vCPU an NMI IPI */

bool vapic_send_nmi(struct percpu *t)
{
	__atomic_add_fetch(&nmi_inflight[t->index], 1, __ATOMIC_SEQ_CST);
	__atomic_store_n(&nmi_sent_tsc[t->index], rdtsc(), __ATOMIC_RELAXED);
	if (apic_send_nmi(t->apic_id))
		return true;
	u32 n = __atomic_load_n(&nmi_inflight[t->index], __ATOMIC_RELAXED);
	while (n && !__atomic_compare_exchange_n(&nmi_inflight[t->index], &n, n - 1, false, __ATOMIC_SEQ_CST,
						 __ATOMIC_RELAXED))
		;
	static u32 warned;
	if (warned < 8 && ++warned)
		log_warn("NMI to cpu %u: the local APIC did not accept it", t->index);
	return false;
}

bool vapic_nmi_arrived(struct percpu *c)
{
	bool guest = __atomic_exchange_n(&vnmi_req[c->index], false, __ATOMIC_SEQ_CST);
	u32 n = __atomic_load_n(&nmi_inflight[c->index], __ATOMIC_SEQ_CST);
	bool hv = false;
	while (n) {
		if (rdtsc() - __atomic_load_n(&nmi_sent_tsc[c->index], __ATOMIC_RELAXED) > NMI_STALE_TSC) {
			/* A leftover of merged NMIs: this one is not the hypervisor's. */
			__atomic_store_n(&nmi_inflight[c->index], 0, __ATOMIC_SEQ_CST);
			break;
		}
		if (__atomic_compare_exchange_n(&nmi_inflight[c->index], &n, n - 1, false, __ATOMIC_SEQ_CST,
						__ATOMIC_SEQ_CST)) {
			hv = true;
			break;
		}
	}
	return guest || !hv;
}

/*
 * The INIT/SIPI handshake between a sender and the target (SDM Vol. 3A 8.4.4.1, 10.4.7.3,
 * 10.6.1): a SIPI is accepted only by a processor in wait-for-SIPI, and only the first one
 * counts. Under Tessel "wait-for-SIPI" starts when the INIT is sent, not when the target has
 * taken its kick NMI and parked (vapic_check_init): Linux sends its first SIPI ~10 us after
 * the INIT (its second one 200 us later, and none at all on some paths), and under nested KVM
 * the target needs an L0 wake-up before it parks, so a SIPI in that window must be latched.
 *
 *   sender, INIT:  vsipi_vector = -1, then vinit_pending = true, then the kick NMI;
 *   sender, SIPI:  if vinit_pending || wait_sipi: vsipi_vector -1 -> vector (first one wins);
 *   target:        wait_sipi = true, then each round vinit_pending = false and read
 *                  vsipi_vector; it starts at the vector once it is >= 0, and takes the INIT
 *                  again if vinit_pending was set anew after it last cleared it.
 *
 * At every moment of a cycle one of vinit_pending or wait_sipi is set (the target sets
 * wait_sipi before it clears vinit_pending), so a SIPI sent after the INIT is never lost. A
 * SIPI with no INIT cycle in progress is dropped; one from an earlier cycle cannot start a
 * later one because each INIT resets vsipi_vector first, and a vector already latched stays
 * until the next INIT, so later SIPIs of the same cycle are ignored. The one ordering this
 * cannot sort out is a SIPI and an INIT sent at the same moment from two other CPUs: the
 * SIPI may count for the new cycle; the hardware gives no ordering between them either.
 */
static void deliver(struct percpu *from, struct percpu *t, u32 mode, u8 vector)
{
	if (mode == MODE_INIT) {
		__atomic_store_n(&t->vsipi_vector, -1, __ATOMIC_SEQ_CST);
		__atomic_store_n(&t->vinit_pending, true, __ATOMIC_SEQ_CST);
		if (t != from)
			vapic_send_nmi(t); /* an NMI always exits: the kick */
		return;
	}
	if (mode == MODE_NMI) {
		if (t == from) {
			t->nmi_pending = true;
		} else {
			__atomic_store_n(&vnmi_req[t->index], true, __ATOMIC_SEQ_CST);
			vapic_send_nmi(t);
		}
		return;
	}
	/* A SIPI only counts for a processor in wait-for-SIPI (SDM 10.6.1), which here
	 * includes an INIT sent and not yet taken. */
	s32 none = -1;
	if (__atomic_load_n(&t->wait_sipi, __ATOMIC_SEQ_CST) || __atomic_load_n(&t->vinit_pending, __ATOMIC_SEQ_CST))
		__atomic_compare_exchange_n(&t->vsipi_vector, &none, (s32)vector, false, __ATOMIC_SEQ_CST,
					    __ATOMIC_SEQ_CST);
}

bool vapic_icr_write(struct percpu *c, u32 icr_lo, u32 dest, bool x2apic)
{
	u32 mode = ICR_MODE(icr_lo), sh = ICR_SHORTHAND(icr_lo);
	if (mode != MODE_INIT && mode != MODE_SIPI && mode != MODE_NMI)
		return false;
	if (mode == MODE_INIT && (icr_lo & ICR_TRIGGER_LEVEL) && !(icr_lo & ICR_LEVEL_ASSERT))
		return true; /* INIT level de-assert: no effect on current processors */
	if (sh == 0 && (icr_lo & ICR_LOGICAL))
		return false; /* logical destinations are left to the APIC (not used for INIT/SIPI/NMI by OVMF or Linux) */
	u32 id = x2apic ? dest : (dest & 0xff);
	if (sh == 0) {
		/* A processor that is not (yet) a guest - the start brings the BSP under the
		 * hypervisor first, then the APs (boot/main.c) - takes its INIT and SIPI from the
		 * hardware: the caller writes the real ICR. */
		for (u32 i = 0; i < percpu_count; i++)
			if (percpu_array[i]->apic_id == id && !__atomic_load_n(&percpu_array[i]->launched, __ATOMIC_ACQUIRE))
				return false;
	}
	bool any = false;
	for (u32 i = 0; i < percpu_count; i++) {
		struct percpu *t = percpu_array[i];
		bool match = sh == 1 ? t == c : sh == 2 ? true : sh == 3 ? t != c : t->apic_id == id;
		if (!match || t->halted)
			continue;
		deliver(c, t, mode, (u8)ICR_VECTOR(icr_lo));
		any = true;
	}
	if (any && mode != MODE_NMI)
		log_debug("%s IPI (ICR %x, destination %x) delivered by the hypervisor",
			  mode == MODE_INIT ? "INIT" : "SIPI", icr_lo, dest);
	return any;
}

/*
 * The local APIC part of INIT (SDM Vol. 3A 10.4.7.3: after INIT the APIC is in its power-up
 * state except for its ID, arbitration ID and, 10.12.5.1, its xAPIC/x2APIC mode and
 * IA32_APIC_BASE). The guest's INIT is virtual, so the hypervisor resets what software sees,
 * on the target itself: TPR 0, every LVT entry masked, the timer stopped, SVR 0xFF (software
 * disabled), xAPIC DFR/LDR, ESR, and the in-service bits (EOIs). A software-disabled APIC
 * still sends and takes NMIs and INIT/SIPI (10.4.7.2), so the hypervisor's kicks and
 * shootdowns keep working; IA32_APIC_BASE is not touched. Not reset: IRR (software cannot
 * clear it; a request pending there is delivered once the guest enables the APIC again).
 */
#define APIC_TPR    0x080
#define APIC_EOI    0x0b0
#define APIC_LDR    0x0d0
#define APIC_DFR    0x0e0
#define APIC_SVR    0x0f0
#define APIC_ISR    0x100
#define APIC_ESR    0x280
#define APIC_CMCI   0x2f0
#define APIC_LVTT   0x320
#define APIC_TMICT  0x380
#define APIC_TDCR   0x3e0
#define APIC_LVT_MASKED (1U << 16)
static const u16 apic_lvts[] = { APIC_CMCI, APIC_LVTT, 0x330, 0x340, 0x350, 0x360, 0x370 };

static void apic_write_reg(u64 base, u32 off, u32 v)
{
	if (base & APIC_BASE_X2APIC)
		(void)wrmsr_safe(0x800 + (off >> 4), v); /* an absent LVT (CMCI, thermal) is #GP */
	else
		mmio_write32((base & 0xfffff000ULL) + off, v);
}

static u32 apic_read_reg(u64 base, u32 off)
{
	if (base & APIC_BASE_X2APIC)
		return (u32)rdmsr(0x800 + (off >> 4));
	return mmio_read32((base & 0xfffff000ULL) + off);
}

void vapic_init_reset_apic(void)
{
	u64 base = rdmsr(MSR_IA32_APIC_BASE);
	if (!(base & APIC_BASE_ENABLE))
		return;
	for (unsigned i = 0; i < sizeof(apic_lvts) / sizeof(apic_lvts[0]); i++)
		apic_write_reg(base, apic_lvts[i], APIC_LVT_MASKED);
	apic_write_reg(base, APIC_TMICT, 0);
	apic_write_reg(base, APIC_TDCR, 0);
	apic_write_reg(base, APIC_TPR, 0);
	if (!(base & APIC_BASE_X2APIC)) { /* x2APIC: LDR is read-only, DFR gone (10.12.1.2) */
		apic_write_reg(base, APIC_DFR, 0xffffffffU);
		apic_write_reg(base, APIC_LDR, 0);
	}
	/* One EOI clears the highest in-service bit; at most 256 of them. */
	for (int n = 0; n < 256; n++) {
		bool any = false;
		for (u32 r = 0; r < 8 && !any; r++)
			any = apic_read_reg(base, APIC_ISR + r * 0x10) != 0;
		if (!any)
			break;
		apic_write_reg(base, APIC_EOI, 0);
	}
	apic_write_reg(base, APIC_ESR, 0);
	apic_write_reg(base, APIC_SVR, 0xff);
}

volatile u32 vapic_reset_traces;
static volatile bool reset_trace[TESSEL_MAX_CPUS];

void vapic_exit_trace_slow(struct percpu *c)
{
	if (!__atomic_exchange_n(&reset_trace[c->index], false, __ATOMIC_SEQ_CST))
		return;
	__atomic_sub_fetch(&vapic_reset_traces, 1, __ATOMIC_SEQ_CST);
	log_info_rl("BSP after INIT: first VM exit (reason %u) at CS %x base %llx, RIP %llx",
		    (unsigned)c->exit_reason, (unsigned)vmcs_read16(VMCS_GUEST_CS_SEL),
		    (unsigned long long)vmcs_readl(VMCS_GUEST_CS_BASE), (unsigned long long)vmcs_readl(VMCS_GUEST_RIP));
}

void vapic_init_all(struct percpu *c)
{
	for (u32 i = 0; i < percpu_count; i++) {
		struct percpu *t = percpu_array[i];
		if (__atomic_load_n(&t->launched, __ATOMIC_ACQUIRE) && !t->halted)
			deliver(c, t, MODE_INIT, 0);
	}
}

void vapic_check_init(struct percpu *c)
{
	while (unlikely(__atomic_load_n(&c->vinit_pending, __ATOMIC_SEQ_CST))) {
		if (rdmsr(MSR_IA32_APIC_BASE) & APIC_BASE_BSP) {
			/* The bootstrap processor does not wait for a SIPI: after INIT it starts at
			 * the reset vector, CS.base 0xFFFF0000 and IP 0xFFF0 (SDM Vol. 3A 9.1, 8.4.1),
			 * which vcpu_init_state sets. The firmware then runs again from its start. */
			__atomic_store_n(&c->vinit_pending, false, __ATOMIC_SEQ_CST);
			vcpu_init_state(c);
			vapic_init_reset_apic();
			log_info_rl("INIT to the bootstrap processor: it restarts at the reset vector FFFFFFF0");
			if (!__atomic_exchange_n(&reset_trace[c->index], true, __ATOMIC_SEQ_CST))
				__atomic_add_fetch(&vapic_reset_traces, 1, __ATOMIC_SEQ_CST);
			return;
		}
		__atomic_store_n(&c->wait_sipi, true, __ATOMIC_SEQ_CST);
		vcpu_init_state(c);
		vapic_init_reset_apic();
		log_debug("INIT: waiting for SIPI");
		/* Wait here, in root mode: NMIs still reach the host handler (shootdowns). An INIT
		 * while waiting only restarts the wait: its sender reset vsipi_vector. */
		s32 v;
		for (;;) {
			__atomic_store_n(&c->vinit_pending, false, __ATOMIC_SEQ_CST);
			v = __atomic_load_n(&c->vsipi_vector, __ATOMIC_SEQ_CST);
			if (v >= 0)
				break;
			cpu_relax();
		}
		/* Not into the guest while another CPU has the world stopped (spp/step.c). */
		spp_step_park_exit(c);
		invept(INVEPT_ALL_CONTEXT, 0); /* shootdowns skipped this CPU while it waited */
		pin_sync(c); /* and so did CR pins (hv/pin.c) */
		c->nmi_pending = false;
		vcpu_sipi_state(c, (u8)v);
		/* An INIT that came after the SIPI: the loop takes it before any guest code runs. */
	}
}

/* ---- the write-protected xAPIC page ---- */

struct apic_wctx { struct guest_paging paging; };

static int apic_read(void *vctx, u64 la, void *buf, unsigned n)
{
	(void)vctx;
	(void)la;
	(void)buf;
	(void)n;
	return -EFAULT; /* APIC registers are only written by plain MOV stores */
}

static int apic_write(void *vctx, u64 la, const void *buf, unsigned n)
{
	struct apic_wctx *w = vctx;
	u64 gpa;
	u32 pfec;
	if (guest_walk(&w->paging, la, GACC_WRITE, &gpa, &pfec))
		return -EFAULT;
	if ((gpa & ~0xfffULL) != apic_page || n != 4 || (gpa & 3))
		return 0; /* APIC registers take aligned 32-bit accesses only (SDM 10.4.1) */
	if (rdmsr(MSR_IA32_APIC_BASE) & APIC_BASE_X2APIC)
		return 0; /* x2APIC mode: the MMIO interface is gone (SDM 10.12.2); nothing to write */
	u32 v;
	__builtin_memcpy(&v, buf, 4);
	u32 off = (u32)(gpa & 0xfff);
	if (off == XAPIC_ICR_LO) {
		u32 dest = mmio_read32(apic_page + XAPIC_ICR_HI) >> 24;
		if (vapic_icr_write(this_cpu(), v, dest, false))
			return 0;
	}
	mmio_write32(gpa, v);
	return 0;
}

bool vapic_is_apic_page(u64 gpa)
{
	return apic_page && (gpa & ~0xfffULL) == apic_page;
}

bool vapic_handle_ept_write(struct percpu *c, u64 gpa)
{
	if (!apic_page || (gpa & ~0xfffULL) != apic_page)
		return false;
	struct insn in;
	if (vcpu_decode_current(&in)) {
		vcpu_inject_ud(c);
		return true;
	}
	struct apic_wctx w;
	vcpu_guest_paging(&w.paging);
	struct emu_regs regs = { 0 };
	vcpu_emu_load(c, &regs);
	u64 rip = regs.rip;
	struct emu_mem mem = { apic_read, apic_write, &w };
	int r = emu_write_insn(&regs, &in, &mem);
	if (r == 0)
		vcpu_emu_commit(c, &regs, rip);
	else if (!vcpu_inject_emu_fault(c, r)) /* a native fault (LOCK, SSE state): nothing stored */
		vcpu_skip_bytes(c, in.len); /* not a plain store: dropped, as for read-only MMIO */
	return true;
}

/*
 * ---- IA32_APIC_BASE ----
 *
 * The hypervisor sends its NMIs (shootdowns, stopping the world, kicks) through the local
 * APIC of whichever CPU needs to, so every local APIC must stay enabled at the base it had
 * at boot. What the guest may do (SDM Vol. 3A 10.12.5, Figure 10-27 "Local x2APIC State
 * Transitions"):
 *  - rewrite the current value (bit 8, BSP, is kept as it is);
 *  - switch an enabled xAPIC to x2APIC mode (EN = 1, EXTD 0 -> 1), which is what Linux
 *    does; the processor itself refuses it (#GP) if it has no x2APIC.
 * Refused with #GP(0), the register unchanged, a rate-limited warning:
 *  - reserved bits (0-7, 9, at or above MAXPHYADDR): #GP on hardware too;
 *  - x2APIC -> xAPIC directly, and EXTD = 1 with EN = 0: invalid transitions, #GP on
 *    hardware too;
 *  - disabling the APIC (EN 1 -> 0), from either mode: legal on hardware, refused here
 *    because it would leave the hypervisor without its NMIs;
 *  - moving the base: legal on hardware, refused because the hypervisor and the
 *    write-protected xAPIC page (vapic_init) know the boot base; so the base can never be
 *    placed on the hypervisor's region either.
 * #GP rather than ignoring the write: a guest that checks (WRMSR with an exception fixup,
 * Linux's wrmsr_safe) learns the write did not happen, and the warning on the log says why;
 * Linux's plain WRMSR reports the #GP as an unchecked MSR access and carries on.
 */
int vapic_apic_base_write(struct percpu *c, u64 val)
{
	(void)c;
	u64 cur = rdmsr(MSR_IA32_APIC_BASE);
	u8 pb = vmx_caps.phys_bits ? vmx_caps.phys_bits : 36;
	u64 reserved = 0x2ffULL | (pb < 64 ? ~((1ULL << pb) - 1) : 0);
	u64 base_mask = ~0xfffULL & ~reserved;
	const char *why = NULL;
	if (val & reserved)
		why = "reserved bits";
	else if (!(val & APIC_BASE_ENABLE))
		why = (val & APIC_BASE_X2APIC) ? "invalid state (x2APIC without enable)" : "disabling the local APIC";
	else if ((val & base_mask) != (cur & base_mask))
		why = "moving the APIC base";
	else if ((cur & APIC_BASE_X2APIC) && !(val & APIC_BASE_X2APIC))
		why = "x2APIC to xAPIC without disabling first (invalid transition)";
	if (why) {
		static u32 warned;
		if (warned < 8 && ++warned)
			log_warn("WRMSR IA32_APIC_BASE %llx (now %llx) refused with #GP: %s", (unsigned long long)val,
				 (unsigned long long)cur, why);
		return -EINVAL;
	}
	val = (val & ~APIC_BASE_BSP) | (cur & APIC_BASE_BSP);
	if (val == cur)
		return 0;
	return wrmsr_safe(MSR_IA32_APIC_BASE, val) ? 0 : -EINVAL; /* x2APIC the processor lacks: #GP */
}
