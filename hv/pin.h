/*
 * Control-register and MSR pinning (ABI 1.2, docs/ABI.md: HC_PIN_CR, HC_PIN_MSR). The
 * pinned masks and values are machine-wide and only grow until platform reset; enforcement
 * is per vCPU: a pinned CR bit is armed on a vCPU while it is set there (an INIT clears
 * CR0/CR4, so it disarms; setting the bit again re-arms it).
 */
#ifndef HV_PIN_H
#define HV_PIN_H

#include <tessel/types.h>

struct percpu;
struct hc_args;

#define PIN_CR0_BITS ((1ULL << 0) | (1ULL << 16) | (1ULL << 31)) /* PE, WP, PG */
#define PIN_CR4_BITS ((1ULL << 11) | (7ULL << 20) | (3ULL << 23)) /* UMIP, SMEP, SMAP, PKE, CET, PKS */
#define PIN_EV_MSR 0x100000000ULL /* event gla for an MSR: PIN_EV_MSR | index */
#define PIN_EV_DTR 0x200000000ULL /* event gla for a descriptor-table register: | PIN_DT_IDTR or PIN_DT_GDTR */
#define PIN_DT_IDTR 1U            /* HC_PIN_DT mask bits (ABI 1.3) */
#define PIN_DT_GDTR 2U
#define PIN_DT_ALL (PIN_DT_IDTR | PIN_DT_GDTR)

/* The machine-wide pinned mask of CR0 (cr = 0) or CR4 (cr = 4). */
u64 pin_cr_mask(unsigned cr);

/* A guest write of `val` to CR0/CR4 whose current guest view is `old`: returns the value
 * that takes effect (the armed bits forced on). The caller reports with pin_report when the
 * write took effect and the result differs from `val`. */
u64 pin_cr_filter(unsigned cr, u64 old, u64 val);

/* Count (pin_denied), post a kind-5 event (gpa = attempted value, gla = register key, rip =
 * the guest's RIP now) and log (rate-limited). key: 0, 4, or PIN_EV_MSR | MSR index. */
void pin_report(struct percpu *c, u64 key, u64 val);

/* Bring this vCPU's CR0/CR4 guest/host masks up to the pinned masks: a pinned bit must be
 * owned by the hypervisor (SDM 25.3: a MOV to CR0/CR4 exits only when it changes an owned
 * bit against the read shadow) on every vCPU, so that clearing it, or setting it (arming),
 * exits. Called on this CPU with its VMCS current. */
void pin_sync(struct percpu *c);

/* A guest WRMSR of `val` to a pinnable MSR whose current value is `old`. Returns the value
 * to write and true, or false when the write must be ignored (reported already). EFER: the
 * NXE bit is kept set (reported) and the rest of the write goes through. */
bool pin_msr_filter(struct percpu *c, u32 msr, u64 old, u64 *val);

/* Descriptor-table register pins (ABI 1.3, HC_PIN_DT). The machine-wide mask of pinned
 * registers (PIN_DT_*). */
u32 pin_dt_mask(void);
/* Bring this vCPU up to the machine-wide DTR pins (called by pin_sync): turn on
 * descriptor-table exiting and, for each newly pinned register, take the value it holds now
 * as its pinned value and arm it - unless it holds the reset value (base 0, limit FFFFH:
 * fresh from INIT or waiting for SIPI), then it gets no value. Its VMCS is current. */
void pin_sync_dt(struct percpu *c);
/* A guest LGDT/LIDT (reg: 0 IDTR, 1 GDTR) of base/limit on this vCPU, after the
 * instruction's own checks: true if it may load. False: refused (counted, reported). A
 * load of exactly the vCPU's pinned value re-arms a disarmed register. */
bool pin_dt_filter(struct percpu *c, unsigned reg, u64 base, u16 limit);
/* After the load pin_dt_filter allowed: a pin that reached this vCPU meanwhile (the shootdown
 * NMI can interrupt the exit handler in root mode) took the value from before the load; the
 * load completed first, so the value now in the register is the pinned one. `seen` is
 * c->dt_pin_seen as read before pin_dt_filter. */
void pin_dt_loaded(struct percpu *c, u8 seen);
/* An INIT of this vCPU: its DTR pins are disarmed (the values are kept). */
void pin_dt_init(struct percpu *c);

s64 hc_pin_cr(struct percpu *c, struct hc_args *a);
s64 hc_pin_msr(struct percpu *c, struct hc_args *a);
s64 hc_pin_dt(struct percpu *c, struct hc_args *a);

/* Unit tests: forget every pin (a platform reset does this on real machines). */
void pin_reset(void);

#endif
