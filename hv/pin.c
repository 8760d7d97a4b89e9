/*
 * Control-register and MSR pinning (ABI 1.2; see pin.h and docs/ABI.md).
 *
 * CR0/CR4: a pinned bit is owned by the hypervisor on every vCPU (its bit in the CR0/CR4
 * guest/host mask is set, SDM 24.6.6), so any MOV to CR0/CR4 or LMSW that would change it
 * against the read shadow exits (SDM 25.1.3) and hv/exit_cr.c decides: clearing an armed
 * bit is refused, setting it arms it. CLTS only ever changes TS, which is not pinnable.
 * The read shadow of an owned bit is what the guest reads, so it is kept equal to the
 * guest's view; when a bit becomes owned the shadow is first set to the current view.
 * Pinning from one vCPU reaches the others before the call returns: the masks are updated
 * by each target itself (only its own VMCS is current on a CPU) when it serves the NMI of
 * the EPT shootdown (spp/flush.c), which acknowledges only afterwards; a CPU waiting for a
 * SIPI is skipped by the shootdown and syncs before it enters the guest (hv/vapic.c).
 *
 * MSRs: every pinnable MSR exits on WRMSR at all times (hv/msr_policy.c), so a pin needs no
 * bitmap change on running processors (SDM 24.11.4: the bitmap may only be modified while
 * no processor using it is in VMX non-root operation).
 *
 * Pins are only added, under spp.lock; readers on the exit paths load them atomically.
 */
#include <hw.h>
#include <arch/cpu.h>
#include <arch/msr.h>
#include <arch/vmcs_fields.h>
#include "abi.h"
#include "hypercall.h"
#include "log.h"
#include "percpu.h"
#include "pin.h"
#include "spp/spp.h"
#include "stats.h"
#include "vcpu.h"
#include "vmcs.h"
#include "vmx_caps.h"

static u64 pinned_cr0, pinned_cr4;
static u32 pinned_dt; /* PIN_DT_* (ABI 1.3) */

/* The pinnable MSRs (ABI.md, HC_PIN_MSR); EFER is pinned as its NXE bit. */
static const u32 pin_msr_index[] = {
	MSR_IA32_SYSENTER_CS, MSR_IA32_SYSENTER_EIP, MSR_IA32_EFER, MSR_IA32_STAR,
	MSR_IA32_LSTAR, MSR_IA32_CSTAR, MSR_IA32_FMASK,
};
#define PIN_MSRS ARRAY_SIZE(pin_msr_index)
static u64 pin_msr_value[PIN_MSRS];
static bool pin_msr_on[PIN_MSRS];

void pin_reset(void)
{
	pinned_cr0 = pinned_cr4 = 0;
	pinned_dt = 0;
	for (size_t i = 0; i < PIN_MSRS; i++) {
		pin_msr_on[i] = false;
		pin_msr_value[i] = 0;
	}
}

u64 pin_cr_mask(unsigned cr)
{
	return __atomic_load_n(cr == 0 ? &pinned_cr0 : &pinned_cr4, __ATOMIC_SEQ_CST);
}

u64 pin_cr_filter(unsigned cr, u64 old, u64 val)
{
	/* Armed: pinned and set on this vCPU now. An INIT cleared them (SDM Vol. 3A Table 9-1:
	 * CR0 = 60000010H, CR4 = 0), so an AP re-arms them by setting them again. */
	return val | (pin_cr_mask(cr) & old);
}

void pin_report(struct percpu *c, u64 key, u64 val)
{
	u64 rip = vmcs_readl(VMCS_GUEST_RIP);
	stat_inc(STAT_PIN_DENIED);
	spin_lock(&spp.lock);
	spp_post_event(c, val, rip, key, TESSEL_EV_PIN, 0);
	spin_unlock(&spp.lock);
	if (key & PIN_EV_MSR)
		log_warn_rl("pin: guest WRMSR 0x%x value 0x%llx at rip 0x%llx refused (pinned)", (u32)key,
			    (unsigned long long)val, (unsigned long long)rip);
	else
		log_warn_rl("pin: guest write 0x%llx to CR%u at rip 0x%llx would clear pinned bits: kept set",
			    (unsigned long long)val, (unsigned)key, (unsigned long long)rip);
}

void pin_sync(struct percpu *c)
{
	pin_sync_dt(c);
	u64 p0 = pin_cr_mask(0), p4 = pin_cr_mask(4);
	if ((c->cr0_guest_mask & p0) != p0) {
		u64 view = vcpu_guest_cr0(c); /* with the old mask */
		c->cr0_guest_mask |= p0;
		vmcs_writel(VMCS_CTRL_CR0_READ_SHADOW, view);
		vmcs_writel(VMCS_CTRL_CR0_MASK, c->cr0_guest_mask);
	}
	if ((c->cr4_guest_mask & p4) != p4) {
		u64 view = vcpu_guest_cr4(c);
		c->cr4_guest_mask |= p4;
		vmcs_writel(VMCS_CTRL_CR4_READ_SHADOW, view);
		vmcs_writel(VMCS_CTRL_CR4_MASK, c->cr4_guest_mask);
	}
}

static int pin_msr_slot(u32 msr)
{
	for (size_t i = 0; i < PIN_MSRS; i++)
		if (pin_msr_index[i] == msr)
			return (int)i;
	return -1;
}

/* The calling vCPU's value. SYSENTER_CS/EIP and EFER are switched by VMX (guest-state
 * fields, SDM 24.4.1); STAR, LSTAR, CSTAR and FMASK are not, and the hypervisor never
 * changes them, so the processor's MSR is the guest's. */
static u64 pin_msr_current(u32 msr)
{
	switch (msr) {
	case MSR_IA32_SYSENTER_CS:
		return vmcs_read32(VMCS_GUEST_IA32_SYSENTER_CS);
	case MSR_IA32_SYSENTER_EIP:
		return vmcs_readl(VMCS_GUEST_IA32_SYSENTER_EIP);
	case MSR_IA32_EFER:
		return vmcs_read64(VMCS_GUEST_IA32_EFER);
	default:
		return rdmsr(msr);
	}
}

bool pin_msr_filter(struct percpu *c, u32 msr, u64 old, u64 *val)
{
	int i = pin_msr_slot(msr);
	if (i < 0 || !__atomic_load_n(&pin_msr_on[i], __ATOMIC_ACQUIRE))
		return true;
	if (msr == MSR_IA32_EFER) {
		/* Pinned as a bit, armed per vCPU like a CR bit (INIT clears EFER). */
		if ((old & EFER_NXE) && !(*val & EFER_NXE)) {
			pin_report(c, PIN_EV_MSR | msr, *val);
			*val |= EFER_NXE;
		}
		return true;
	}
	u64 v = msr == MSR_IA32_SYSENTER_CS ? (u32)*val : *val; /* a 32-bit field (SDM 24.4.1) */
	if (v == pin_msr_value[i])
		return true;
	pin_report(c, PIN_EV_MSR | msr, *val);
	return false;
}

/* HC_PIN_CR: RBX = 0 or 4, RCX = bits, RDX = RSI = 0. Every error is -EINVAL and changes
 * nothing; on success RBX = the whole pinned mask of that register, RCX/RDX preserved. */
s64 hc_pin_cr(struct percpu *c, struct hc_args *a)
{
	u64 cr = a->arg[0], bits = a->arg[1];
	if (a->arg[2] || a->arg[3] || (cr != 0 && cr != 4))
		return -EINVAL;
	u64 allowed = cr == 0 ? PIN_CR0_BITS : PIN_CR4_BITS;
	if (!bits || (bits & ~allowed))
		return -EINVAL;
	u64 view = cr == 0 ? vcpu_guest_cr0(c) : vcpu_guest_cr4(c);
	if ((view & bits) != bits)
		return -EINVAL;
	u64 *m = cr == 0 ? &pinned_cr0 : &pinned_cr4;
	spin_lock(&spp.lock);
	u64 mask = *m | bits;
	if (mask != *m) {
		__atomic_store_n(m, mask, __ATOMIC_SEQ_CST);
		pin_sync(c);
		/* Every other vCPU owns the bits before this call returns (see the top). */
		spp_flush_all_cpus();
		log_info("pin: CR%u pinned mask now 0x%llx", (unsigned)cr, (unsigned long long)mask);
	}
	spin_unlock(&spp.lock);
	a->out[0] = mask;
	a->out[1] = a->arg[1];
	a->out[2] = a->arg[2];
	a->has_out = true;
	return 0;
}

/* HC_PIN_MSR: RBX = MSR index, RCX = RDX = RSI = 0. Pins the calling vCPU's current value
 * (EFER: NXE, which must be set). Pinning again succeeds when the caller's value is the
 * pinned one and is -EPERM otherwise: a pin is never changed. */
s64 hc_pin_msr(struct percpu *c, struct hc_args *a)
{
	(void)c;
	if (a->arg[1] || a->arg[2] || a->arg[3] || a->arg[0] > 0xffffffffULL)
		return -EINVAL;
	u32 msr = (u32)a->arg[0];
	int i = pin_msr_slot(msr);
	if (i < 0)
		return -EINVAL;
	u64 cur = pin_msr_current(msr);
	if (msr == MSR_IA32_EFER) {
		if (!(cur & EFER_NXE))
			return -EINVAL;
		cur = EFER_NXE;
	}
	s64 r = 0;
	spin_lock(&spp.lock);
	if (pin_msr_on[i]) {
		if (pin_msr_value[i] != cur)
			r = -EPERM;
	} else {
		pin_msr_value[i] = cur;
		__atomic_store_n(&pin_msr_on[i], true, __ATOMIC_RELEASE);
		log_info("pin: MSR 0x%x pinned to 0x%llx", msr, (unsigned long long)cur);
	}
	spin_unlock(&spp.lock);
	return r;
}

/* ---- descriptor-table registers (ABI 1.3, HC_PIN_DT) ----
 *
 * With descriptor-table exiting on (secondary control bit 2, SDM 25.1.3), LGDT, LIDT,
 * SGDT, SIDT (exit 46) and LLDT, LTR, SLDT, STR (exit 47) exit on that vCPU; hv/exit_dt.c
 * emulates all eight and asks pin_dt_filter before it loads GDTR or IDTR. The control is
 * turned on per vCPU as the pin reaches it (its own VMCS only, like the CR masks) and stays
 * on until platform reset, also while a register is disarmed after an INIT: the re-arming
 * load must be seen. Each vCPU has its own pinned value (Linux has a GDT per CPU).
 */

static const u32 dt_base_field[2] = { VMCS_GUEST_IDTR_BASE, VMCS_GUEST_GDTR_BASE };
static const u32 dt_limit_field[2] = { VMCS_GUEST_IDTR_LIMIT, VMCS_GUEST_GDTR_LIMIT };

u32 pin_dt_mask(void)
{
	return __atomic_load_n(&pinned_dt, __ATOMIC_SEQ_CST);
}

/* Take the current value as the pinned one (false: the reset value, nothing to pin). */
static bool dt_capture(struct percpu *c, unsigned i)
{
	u64 base = vmcs_read_raw(dt_base_field[i]);
	u16 limit = (u16)vmcs_read_raw(dt_limit_field[i]);
	if (base == 0 && limit == 0xffff)
		return false;
	c->dt_pin_base[i] = base;
	c->dt_pin_limit[i] = limit;
	c->dt_pin_have |= (u8)(1U << i);
	c->dt_pin_armed |= (u8)(1U << i);
	return true;
}

void pin_sync_dt(struct percpu *c)
{
	u32 m = pin_dt_mask(), fresh = m & ~(u32)c->dt_pin_seen;
	if (!fresh)
		return;
	u32 p2 = vmcs_read32(VMCS_CTRL_PROC_BASED2);
	if (!(p2 & PROC2_DESC_TABLE_EXITING))
		vmcs_write32(VMCS_CTRL_PROC_BASED2, p2 | PROC2_DESC_TABLE_EXITING);
	for (unsigned i = 0; i < 2; i++)
		if (fresh & (1U << i))
			(void)dt_capture(c, i);
	c->dt_pin_seen |= (u8)fresh;
}

void pin_dt_loaded(struct percpu *c, u8 seen)
{
	u8 fresh = (u8)(__atomic_load_n(&c->dt_pin_seen, __ATOMIC_SEQ_CST) & ~seen);
	for (unsigned i = 0; i < 2; i++)
		if (fresh & (1U << i) & c->dt_pin_have)
			(void)dt_capture(c, i);
}

void pin_dt_init(struct percpu *c)
{
	c->dt_pin_armed = 0;
}

static const char *const dt_name[2] = { "IDTR", "GDTR" };

bool pin_dt_filter(struct percpu *c, unsigned reg, u64 base, u16 limit)
{
	u8 bit = (u8)(1U << reg);
	if (!(c->dt_pin_seen & bit) || !(c->dt_pin_have & bit))
		return true;
	bool same = base == c->dt_pin_base[reg] && limit == c->dt_pin_limit[reg];
	if (!(c->dt_pin_armed & bit)) {
		if (same) {
			c->dt_pin_armed |= bit;
			log_info_rl("pin: %s re-armed on cpu %u (its pinned value loaded again)", dt_name[reg],
				    (unsigned)c->index);
		}
		return true;
	}
	if (same)
		return true;
	u64 rip = vmcs_readl(VMCS_GUEST_RIP);
	stat_inc(STAT_PIN_DENIED);
	spin_lock(&spp.lock);
	spp_post_event(c, base, rip, PIN_EV_DTR | bit, TESSEL_EV_PIN, limit);
	spin_unlock(&spp.lock);
	log_warn_rl("pin: guest load of %s base 0x%llx limit 0x%x at rip 0x%llx refused (pinned)", dt_name[reg],
		    (unsigned long long)base, (unsigned)limit, (unsigned long long)rip);
	return false;
}

/* HC_PIN_DT: RBX = mask (bit 0 IDTR, bit 1 GDTR), RCX = RDX = RSI = 0. -EOPNOTSUPP without
 * descriptor-table exiting; -EINVAL for argument errors and when the caller holds the reset
 * value of an asked register; -EPERM when an asked register is armed on the caller and its
 * current value is not the pinned one. A register an INIT disarmed takes the caller's current
 * value as its pinned value: an AP parked when the pin was made (by the firmware, or by Linux
 * early in boot with maxcpus=) held other tables then than the ones the OS brings it up with
 * (docs/ABI.md). This
 * gives a caller nothing a disarmed vCPU does not have already (it can load any table).
 * On success RBX = the whole pinned mask, RCX/RDX preserved. */
s64 hc_pin_dt(struct percpu *c, struct hc_args *a)
{
	if (!vmx_has_desc_exiting())
		return -EOPNOTSUPP;
	u64 mask = a->arg[0];
	if (a->arg[1] || a->arg[2] || a->arg[3] || !mask || (mask & ~(u64)PIN_DT_ALL))
		return -EINVAL;
	for (unsigned i = 0; i < 2; i++) {
		if (!(mask & (1U << i)))
			continue;
		u64 base = vmcs_read_raw(dt_base_field[i]);
		u16 limit = (u16)vmcs_read_raw(dt_limit_field[i]);
		if (base == 0 && limit == 0xffff)
			return -EINVAL;
		if ((c->dt_pin_have & c->dt_pin_armed & (1U << i)) &&
		    (base != c->dt_pin_base[i] || limit != c->dt_pin_limit[i]))
			return -EPERM;
	}
	spin_lock(&spp.lock);
	u32 old = pinned_dt, now = old | (u32)mask;
	if (now != old)
		__atomic_store_n(&pinned_dt, now, __ATOMIC_SEQ_CST);
	pin_sync_dt(c);
	/* A register pinned before this vCPU had a value (it was starting up), or disarmed on it
	 * by an INIT since: it takes the caller's current value now, and is armed. (An armed
	 * register holds its pinned value: the check above.) */
	for (unsigned i = 0; i < 2; i++) {
		u8 bit = (u8)(1U << i);
		if (!(mask & bit) || (c->dt_pin_have & c->dt_pin_armed & bit))
			continue;
		bool had = c->dt_pin_have & bit;
		u64 was = c->dt_pin_base[i];
		(void)dt_capture(c, i);
		if (had && was != c->dt_pin_base[i])
			log_info("pin: %s on cpu %u pinned again after its INIT, base 0x%llx", dt_name[i],
				 (unsigned)c->index, (unsigned long long)c->dt_pin_base[i]);
	}
	if (now != old) {
		/* Every other running vCPU takes its value before this call returns (see pin_sync). */
		spp_flush_all_cpus();
		log_info("pin: descriptor-table registers pinned mask now 0x%x (%s%s)", now,
			 (now & PIN_DT_IDTR) ? "IDTR " : "", (now & PIN_DT_GDTR) ? "GDTR" : "");
	}
	spin_unlock(&spp.lock);
	a->out[0] = now;
	a->out[1] = a->arg[1];
	a->out[2] = a->arg[2];
	a->has_out = true;
	return 0;
}
