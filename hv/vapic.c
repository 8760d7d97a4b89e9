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
#include "vapic.h"
#include "vcpu.h"
#include "vmcs.h"

#define ICR_VECTOR(lo)    ((lo) & 0xffU)
#define ICR_MODE(lo)      (((lo) >> 8) & 7U)
#define ICR_LOGICAL       (1U << 11)
#define ICR_LEVEL_ASSERT  (1U << 14)
#define ICR_TRIGGER_LEVEL (1U << 15)
#define ICR_SHORTHAND(lo) (((lo) >> 18) & 3U)
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

static void deliver(struct percpu *from, struct percpu *t, u32 mode, u8 vector)
{
	if (mode == MODE_INIT) {
		__atomic_store_n(&t->vinit_pending, true, __ATOMIC_RELEASE);
		if (t != from)
			apic_send_nmi(t->apic_id); /* an NMI always exits: the kick */
		return;
	}
	/* A SIPI only counts for a processor waiting for one (SDM 10.6.1). */
	s32 none = -1;
	if (__atomic_load_n(&t->wait_sipi, __ATOMIC_ACQUIRE))
		__atomic_compare_exchange_n(&t->vsipi_vector, &none, (s32)vector, false, __ATOMIC_SEQ_CST,
					    __ATOMIC_SEQ_CST);
}

bool vapic_icr_write(struct percpu *c, u32 icr_lo, u32 dest, bool x2apic)
{
	u32 mode = ICR_MODE(icr_lo), sh = ICR_SHORTHAND(icr_lo);
	if (mode != MODE_INIT && mode != MODE_SIPI)
		return false;
	if (mode == MODE_INIT && (icr_lo & ICR_TRIGGER_LEVEL) && !(icr_lo & ICR_LEVEL_ASSERT))
		return true; /* INIT level de-assert: no effect on current processors */
	if (sh == 0 && (icr_lo & ICR_LOGICAL))
		return false; /* logical destinations are left to the APIC (not used for INIT/SIPI by OVMF or Linux) */
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
	if (any)
		log_debug("%s IPI (ICR %x, destination %x) delivered by the hypervisor",
			  mode == MODE_INIT ? "INIT" : "SIPI", icr_lo, dest);
	return any;
}

bool vapic_nmi_is_kick(struct percpu *c)
{
	return __atomic_load_n(&c->vinit_pending, __ATOMIC_ACQUIRE);
}

void vapic_check_init(struct percpu *c)
{
	if (likely(!c->vinit_pending))
		return;
	c->vsipi_vector = -1;
	__atomic_store_n(&c->wait_sipi, true, __ATOMIC_RELEASE);
	__atomic_store_n(&c->vinit_pending, false, __ATOMIC_RELEASE);
	vcpu_init_state(c);
	log_debug("INIT: waiting for SIPI");
	/* Wait here, in root mode: NMIs still reach the host handler (shootdowns). A second
	 * INIT while waiting changes nothing. */
	while (__atomic_load_n(&c->vsipi_vector, __ATOMIC_ACQUIRE) < 0) {
		cpu_relax();
		if (c->vinit_pending)
			c->vinit_pending = false;
	}
	u8 vector = (u8)c->vsipi_vector;
	__atomic_store_n(&c->wait_sipi, false, __ATOMIC_RELEASE);
	invept(INVEPT_ALL_CONTEXT, 0); /* shootdowns skipped this CPU while it waited */
	c->nmi_pending = false;
	vcpu_sipi_state(c, vector);
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
	else
		vcpu_skip_bytes(c, in.len); /* not a plain store: dropped, as for read-only MMIO */
	return true;
}

/* ---- IA32_APIC_BASE (interim: the write reaches the processor, as before the MSR policy) ---- */

int vapic_apic_base_write(struct percpu *c, u64 val)
{
	(void)c;
	return wrmsr_safe(MSR_IA32_APIC_BASE, val) ? 0 : -EINVAL;
}
