/*
 * RDMSR/WRMSR exits (reasons 31/32), dispatched through the MSR policy table
 * (hv/msr_policy.c, docs/MSR.md). An access exits when the table does not pass it through
 * (the bitmap is generated from the same table) or when the MSR lies outside the bitmap's two
 * ranges (SDM 24.6.9). Unlisted MSRs get #GP(0). Every refusal (#GP, ignored write) is
 * logged once: an unlisted MSR once per MSR and direction, at most UNLISTED_LOG_MAX of them
 * in all (a guest can sweep all 2^32 indices); a listed one once per table row and
 * direction (the first MSR of the row that was refused is named), so a sweep over a listed
 * range (32 LBR MSRs, say) costs one line and the lines are bounded by the table.
 */
#include <hw.h>
#include <arch/msr.h>
#include "exit.h"
#include "log.h"
#include "msr_policy.h"
#include "vcpu.h"

#define UNLISTED_LOG_MAX 128U
#define OTHER_SLOTS 64U

/* One bit per MSR of the two architectural ranges (as the bitmap), per direction. */
static u8 logged[2][0x4000 / 8];
/* MSRs outside both ranges: a small open-addressed set (0 = free; stored as msr + 1). */
static u32 logged_other[2][OTHER_SLOTS];
static u32 unlisted_logged;
/* One bit per table row, per direction. */
static u8 logged_row[2][(MSR_POLICY_MAX_ROWS + 7) / 8];

void msr_policy_log_reset(void)
{
	for (size_t d = 0; d < 2; d++) {
		for (size_t i = 0; i < sizeof(logged[d]); i++)
			logged[d][i] = 0;
		for (size_t i = 0; i < OTHER_SLOTS; i++)
			logged_other[d][i] = 0;
	}
	unlisted_logged = 0;
	for (size_t d = 0; d < 2; d++)
		for (size_t i = 0; i < sizeof(logged_row[d]); i++)
			logged_row[d][i] = 0;
}

static bool first_time_row(const struct msr_policy_entry *e, bool write)
{
	size_t row = (size_t)(e - msr_policy);
	u8 bit = (u8)(1U << (row % 8));
	return !(__atomic_fetch_or(&logged_row[write][row / 8], bit, __ATOMIC_RELAXED) & bit);
}

/* True the first time (msr, direction) is seen (races between CPUs resolved atomically). */
static bool first_time(u32 msr, bool write)
{
	u32 off;
	if (msr <= 0x1fffU)
		off = msr;
	else if (msr >= 0xc0000000U && msr <= 0xc0001fffU)
		off = 0x2000U + (msr - 0xc0000000U);
	else {
		u32 key = msr + 1, h = (msr * 2654435761U) % OTHER_SLOTS;
		for (u32 i = 0; i < OTHER_SLOTS; i++) {
			u32 *slot = &logged_other[write][(h + i) % OTHER_SLOTS];
			u32 cur = atomic_load(slot);
			if (cur == key)
				return false;
			if (cur == 0) {
				u32 zero = 0;
				if (atomic_cmpxchg(slot, &zero, key))
					return true;
				if (zero == key)
					return false;
			}
		}
		return false; /* set full: stay quiet */
	}
	u8 bit = (u8)(1U << (off % 8));
	return !(__atomic_fetch_or(&logged[write][off / 8], bit, __ATOMIC_RELAXED) & bit);
}


static void refuse(struct percpu *c, const struct msr_policy_entry *e, u32 msr, bool write, u64 val, bool ignore)
{
	const char *insn = write ? "WRMSR" : "RDMSR";
	if (!ignore)
		vcpu_inject_gp0(c);
	else
		vcpu_skip_insn(c);
	if (e ? !first_time_row(e, write) : !first_time(msr, write))
		return;
	if (!e) {
		u32 n = atomic_inc(&unlisted_logged);
		if (n < UNLISTED_LOG_MAX)
			log_warn("msr: guest %s 0x%x (not listed): #GP (logged once per MSR)", insn, msr);
		else if (n == UNLISTED_LOG_MAX)
			log_warn("msr: guest %s 0x%x (not listed): #GP; %u unlisted MSRs logged, no more will be", insn,
				 msr, UNLISTED_LOG_MAX);
	} else if (write) {
		log_warn("msr: guest WRMSR 0x%x %s value 0x%llx: %s (logged once per row of docs/MSR.md)", msr, e->name,
			 (unsigned long long)val, ignore ? "write ignored" : "#GP");
	} else {
		log_warn("msr: guest RDMSR 0x%x %s: #GP (logged once per row of docs/MSR.md)", msr, e->name);
	}
}

void exit_rdmsr(struct percpu *c)
{
	u32 msr = (u32)c->regs->gpr[GPR_CX];
	const struct msr_policy_entry *e = msr_policy_find(msr);
	u64 v = 0;
	bool ok;
	if (!e || e->rd == MSR_GP || e->rd == MSR_IGNORE)
		ok = false;
	else if (e->rd == MSR_VIRT)
		ok = e->read(c, msr, &v) == 0;
	else
		ok = rdmsr_safe(msr, &v); /* passed through (an MSR above the bitmap ranges) */
	if (!ok) {
		/* A pass-through MSR the processor lacks raises the guest's own #GP: not logged. */
		if (e && e->rd == MSR_PASS)
			vcpu_inject_gp0(c);
		else
			refuse(c, e, msr, false, 0, false);
		return;
	}
	c->regs->gpr[GPR_AX] = (u32)v;
	c->regs->gpr[GPR_DX] = v >> 32;
	vcpu_skip_insn(c);
}

void exit_wrmsr(struct percpu *c)
{
	u32 msr = (u32)c->regs->gpr[GPR_CX];
	u64 v = (c->regs->gpr[GPR_DX] << 32) | (u32)c->regs->gpr[GPR_AX];
	const struct msr_policy_entry *e = msr_policy_find(msr);
	if (e && e->wr == MSR_PASS) {
		if (wrmsr_safe(msr, v))
			vcpu_skip_insn(c);
		else
			vcpu_inject_gp0(c);
		return;
	}
	if (e && e->wr == MSR_VIRT && e->write(c, msr, v) == 0) {
		vcpu_skip_insn(c);
		return;
	}
	refuse(c, e, msr, true, v, e && e->wr == MSR_IGNORE);
}
