/*
 * A VM-entry consistency checker: the checks a processor makes on VMLAUNCH/VMRESUME
 * (Intel SDM Vol. 3C, 26.2 "Checks on VMX Controls and Host-State Area" and 26.3.1
 * "Checks on the Guest State Area"), applied in software to the current VMCS against a
 * set of VMX capability MSRs (struct vmx_caps).
 *
 * Why: Bochs 2.7 skips most of these checks, so a VMCS that Bochs enters can still fail
 * VM entry on Ice Lake or under KVM. The checker reads the VMCS only through hv/vmcs.h, so
 * the same code runs over the fake VMCS in host unit tests (tests/unit/test_entry_check.c,
 * test_profiles.c: capability profiles of real processors) and over the real VMCS in the
 * hypervisor (config key check=entry: before the first VMLAUNCH and before every
 * VMRESUME; and on any VM-entry failure, to name the rule).
 *
 * Each rule has a stable name and its SDM section (chapter 26 numbering of the SDM
 * editions 2016-2022; later editions renumbered the chapter to 28 with the same
 * sub-sections). Rules that need memory the VMCS points to (the VMCS link pointer's
 * target, the MSR-load areas' contents) are limited to their addresses.
 */
#ifndef HV_ENTRY_CHECK_H
#define HV_ENTRY_CHECK_H

#include <tessel/types.h>
#include "vmx_caps.h"

/* X(id, name, SDM section) */
#define ENTRY_RULES(X) \
	X(CTL_PIN_ALLOWED,      "ctl.pin.allowed",        "26.2.1.1") \
	X(CTL_PROC_ALLOWED,     "ctl.proc.allowed",       "26.2.1.1") \
	X(CTL_PROC2_ALLOWED,    "ctl.proc2.allowed",      "26.2.1.1") \
	X(CTL_CR3_TARGETS,      "ctl.cr3-target-count",   "26.2.1.1") \
	X(CTL_IO_BITMAPS,       "ctl.io-bitmap-address",  "26.2.1.1") \
	X(CTL_MSR_BITMAP,       "ctl.msr-bitmap-address", "26.2.1.1") \
	X(CTL_TPR_SHADOW,       "ctl.tpr-shadow-virt",    "26.2.1.1") \
	X(CTL_VIRTUAL_NMIS,     "ctl.virtual-nmis",       "26.2.1.1") \
	X(CTL_VPID,             "ctl.vpid-nonzero",       "26.2.1.1") \
	X(CTL_EPTP,             "ctl.eptp",               "26.2.1.1") \
	X(CTL_UG_NEEDS_EPT,     "ctl.unrestricted-needs-ept", "26.2.1.1") \
	X(CTL_PML,              "ctl.pml",                "26.2.1.1") \
	X(CTL_SPP,              "ctl.spp",                "26.2.1.1") \
	X(CTL_VMFUNC,           "ctl.vmfunc",             "26.2.1.1") \
	X(CTL_EXIT_ALLOWED,     "ctl.exit.allowed",       "26.2.1.2") \
	X(CTL_PREEMPT_SAVE,     "ctl.exit.save-preemption-timer", "26.2.1.2") \
	X(CTL_EXIT_MSR_AREAS,   "ctl.exit.msr-areas",     "26.2.1.2") \
	X(CTL_ENTRY_ALLOWED,    "ctl.entry.allowed",      "26.2.1.3") \
	X(CTL_ENTRY_SMM,        "ctl.entry.smm",          "26.2.1.3") \
	X(CTL_ENTRY_MSR_AREA,   "ctl.entry.msr-area",     "26.2.1.3") \
	X(EVT_RESERVED,         "event.reserved-bits",    "26.2.1.3") \
	X(EVT_TYPE,             "event.type",             "26.2.1.3") \
	X(EVT_VECTOR,           "event.vector",           "26.2.1.3") \
	X(EVT_ERRCODE_MODE,     "event.error-code.real-mode", "26.2.1.3") \
	X(EVT_ERRCODE_VECTOR,   "event.error-code.vector", "26.2.1.3") \
	X(EVT_ERRCODE_BITS,     "event.error-code.bits-31-16", "26.2.1.3") \
	X(EVT_INSN_LEN,         "event.instruction-length", "26.2.1.3") \
	X(HOST_CR0,             "host.cr0.fixed",         "26.2.2") \
	X(HOST_CR4,             "host.cr4.fixed",         "26.2.2") \
	X(HOST_CR3,             "host.cr3.maxphyaddr",    "26.2.2") \
	X(HOST_SYSENTER,        "host.sysenter.canonical", "26.2.2") \
	X(HOST_PAT,             "host.pat",               "26.2.2") \
	X(HOST_EFER,            "host.efer",              "26.2.2") \
	X(HOST_SEL_RPL_TI,      "host.selector.rpl-ti",   "26.2.3") \
	X(HOST_SEL_NULL,        "host.selector.cs-tr-null", "26.2.3") \
	X(HOST_BASES,           "host.base.canonical",    "26.2.3") \
	X(HOST_ADDR_SPACE,      "host.address-space-size", "26.2.4") \
	X(HOST_RIP,             "host.rip",               "26.2.4") \
	X(G_CR0_FIXED,          "guest.cr0.fixed",        "26.3.1.1") \
	X(G_CR0_PG_PE,          "guest.cr0.pg-needs-pe",  "26.3.1.1") \
	X(G_CR4_FIXED,          "guest.cr4.fixed",        "26.3.1.1") \
	X(G_CR3,                "guest.cr3.maxphyaddr",   "26.3.1.1") \
	X(G_DEBUGCTL,           "guest.debugctl",         "26.3.1.1") \
	X(G_IA32E_MODE,         "guest.ia32e-mode",       "26.3.1.1") \
	X(G_DR7,                "guest.dr7",              "26.3.1.1") \
	X(G_SYSENTER,           "guest.sysenter.canonical", "26.3.1.1") \
	X(G_PAT,                "guest.pat",              "26.3.1.1") \
	X(G_EFER,               "guest.efer",             "26.3.1.1") \
	X(G_SEG_SEL,            "guest.segment.selector", "26.3.1.2") \
	X(G_SEG_BASE,           "guest.segment.base",     "26.3.1.2") \
	X(G_SEG_V86,            "guest.segment.v8086",    "26.3.1.2") \
	X(G_SEG_TYPE,           "guest.segment.type",     "26.3.1.2") \
	X(G_SEG_S,              "guest.segment.s-bit",    "26.3.1.2") \
	X(G_SEG_DPL,            "guest.segment.dpl",      "26.3.1.2") \
	X(G_SEG_P,              "guest.segment.present",  "26.3.1.2") \
	X(G_SEG_RSVD,           "guest.segment.ar-reserved", "26.3.1.2") \
	X(G_SEG_LIMIT_G,        "guest.segment.limit-granularity", "26.3.1.2") \
	X(G_CS_L_DB,            "guest.cs.l-and-db",      "26.3.1.2") \
	X(G_TR,                 "guest.tr",               "26.3.1.2") \
	X(G_LDTR,               "guest.ldtr",             "26.3.1.2") \
	X(G_DTR,                "guest.gdtr-idtr",        "26.3.1.3") \
	X(G_RIP,                "guest.rip",              "26.3.1.4") \
	X(G_RFLAGS_RSVD,        "guest.rflags.reserved",  "26.3.1.4") \
	X(G_RFLAGS_VM,          "guest.rflags.vm",        "26.3.1.4") \
	X(G_RFLAGS_IF,          "guest.rflags.if-for-interrupt", "26.3.1.4") \
	X(G_ACTIVITY,           "guest.activity-state",   "26.3.1.5") \
	X(G_ACTIVITY_HLT_DPL,   "guest.activity.hlt-needs-ss-dpl0", "26.3.1.5") \
	X(G_ACTIVITY_BLOCKING,  "guest.activity.blocking", "26.3.1.5") \
	X(G_ACTIVITY_EVENT,     "guest.activity.event",   "26.3.1.5") \
	X(G_INTR_RSVD,          "guest.interruptibility.reserved", "26.3.1.5") \
	X(G_INTR_STI_MOVSS,     "guest.interruptibility.sti-and-movss", "26.3.1.5") \
	X(G_INTR_STI_IF,        "guest.interruptibility.sti-needs-if", "26.3.1.5") \
	X(G_INTR_EVENT,         "guest.interruptibility.event", "26.3.1.5") \
	X(G_INTR_SMI,           "guest.interruptibility.smi", "26.3.1.5") \
	X(G_PENDING_DBG_RSVD,   "guest.pending-debug.reserved", "26.3.1.5") \
	X(G_PENDING_DBG_BS,     "guest.pending-debug.bs", "26.3.1.5") \
	X(G_LINK_PTR,           "guest.vmcs-link-pointer", "26.3.1.5") \
	X(G_PDPTE,              "guest.pdpte",            "26.3.1.6")

enum entry_rule {
#define ENTRY_RULE_ENUM(id, name, sdm) ER_##id,
	ENTRY_RULES(ENTRY_RULE_ENUM)
#undef ENTRY_RULE_ENUM
	ER_COUNT
};

struct entry_check_result {
	u32 count;              /* failed rules */
	enum entry_rule first;  /* the first failed rule (in check order) when count > 0 */
	u64 failed[(ER_COUNT + 63) / 64];
};

const char *entry_rule_name(enum entry_rule r);
const char *entry_rule_sdm(enum entry_rule r);

/* Applies every rule to the current VMCS against the capabilities `k`. Returns the number
 * of failed rules (0: the processor described by `k` would accept this VM entry, as far
 * as these checks go). */
u32 entry_check(const struct vmx_caps *k, struct entry_check_result *r);

static inline bool entry_check_failed(const struct entry_check_result *r, enum entry_rule id)
{
	return (r->failed[id / 64] >> (id % 64)) & 1;
}

/* The hypervisor's hook (config check=entry): on a failure, logs every failed rule with
 * its section and stops this vCPU naming the first. `when` says which entry ("VMLAUNCH",
 * "VMRESUME"). Does nothing unless entry_check_enabled is set. */
struct percpu;
extern bool entry_check_enabled;
void entry_check_before_entry(struct percpu *c, const char *when);
/* Logs the failed rules without stopping (after a VM-entry failure, to name the cause). */
void entry_check_explain(void);

#endif
