/*
 * The VM-entry checks of Intel SDM Vol. 3C 26.2 and 26.3.1, in software (see
 * entry_check.h for why). Each block below names its SDM sub-section; a rule that fails
 * is recorded with fail(), and checking goes on so one run reports every broken rule.
 */
#include <hw.h>
#include <arch/cpu.h>
#include <arch/msr.h>
#include <arch/vmx.h>
#include "entry_check.h"
#include "lib/fmt.h"
#include "log.h"
#include "percpu.h"
#include "vcpu.h"
#include "vmcs.h"

/* Controls and capability bits the checks need beyond include/arch/vmx.h (SDM Table 24-5
 * .. 24-15, Appendix A). */
#define EXIT_SAVE_PREEMPT_TIMER   (1U << 22) /* VM-exit control "save VMX-preemption timer value" */
#define PROC_USE_TPR_SHADOW       PROC_TPR_SHADOW
#define PROC2_APIC_REG_VIRT       (1U << 8)
#define PROC2_VIRT_INTR_DELIVERY  (1U << 9)
#define PROC2_VMCS_SHADOWING      (1U << 14)
#define PROC2_MODE_BASED_EXEC     (1U << 22)
#define ENTRY_SMM                 (1U << 10)
#define ENTRY_DEACT_DUAL_MONITOR  (1U << 11)
#define VMX_MISC_ACTIVITY_HLT     (1ULL << 6)
#define VMX_MISC_ACTIVITY_SHUTDOWN (1ULL << 7)
#define VMX_MISC_INSN_LEN_ZERO    (1ULL << 30)
#define VMX_MISC_CR3_TARGETS(m)   (((m) >> 16) & 0x1ffU)
#define INTR_TYPE_OTHER           (7U << 8)
#define INTR_TYPE_RESERVED1       (1U << 8)
#define GUEST_INTR_RSVD           (~0x1fU)
#define DEBUGCTL_BTF              (1ULL << 1)
#define DEBUGCTL_RSVD             (~0xffc3ULL) /* bits 5:2 and 63:16 (SDM Vol. 3B 17.4.1) */
#define PENDING_DBG_RSVD          (~0x1500fULL) /* valid: B3-B0 (3:0), 12, BS (14), RTM (16) */
#define EFER_VALID                (EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE)
#define RFLAGS_RSVD               (~0x3f7fd7ULL) /* bits 63:22, 15, 5, 3 must be 0 */

bool entry_check_enabled;

static const struct { const char *name, *sdm; } rules[ER_COUNT] = {
#define ENTRY_RULE_INFO(id, n, s) [ER_##id] = { n, s },
	ENTRY_RULES(ENTRY_RULE_INFO)
#undef ENTRY_RULE_INFO
};

const char *entry_rule_name(enum entry_rule r) { return (u32)r < ER_COUNT ? rules[r].name : "?"; }
const char *entry_rule_sdm(enum entry_rule r) { return (u32)r < ER_COUNT ? rules[r].sdm : "?"; }

static void fail(struct entry_check_result *r, enum entry_rule id)
{
	if (entry_check_failed(r, id))
		return;
	r->failed[id / 64] |= 1ULL << (id % 64);
	if (r->count++ == 0)
		r->first = id;
}

#define CHECK(cond, id) do { if (!(cond)) fail(r, ER_##id); } while (0)

static bool allowed(u64 caps, u32 v) { return (v & (u32)caps) == (u32)caps && (v & ~(u32)(caps >> 32)) == 0; }

static bool canonical(u64 v, unsigned bits) { return (u64)((s64)(v << (64 - bits)) >> (64 - bits)) == v; }

/* The canonical checks use the processor's linear-address width N (26.2.3, 26.3.1): 57 on
 * a processor with 5-level paging (which VMX then allows in CR4, Appendix A.8), whatever
 * CR4.LA57 is, else 48. */
static unsigned la_width(const struct vmx_caps *k) { return (k->cr4_fixed1 & CR4_LA57) ? 57 : 48; }

static bool below_maxphy(u64 a, u8 phys_bits) { return phys_bits >= 64 || (a >> phys_bits) == 0; }

/* Fields that exist only with an optional control (VPID, SPPTP, VM functions, ...): the
 * checker must not panic where the processor lacks them (then the control's allowed-1 rule
 * has failed already), so these are read with vmcs_try_read(), 0 if absent. */
static u64 read_opt(u32 field)
{
	u64 v = 0;
	if (!vmcs_try_read(field, &v))
		return 0;
	return v;
}

static bool addr_ok(u64 a, u64 align, u8 phys_bits) { return IS_ALIGNED(a, align) && below_maxphy(a, phys_bits); }

/* A memory type the PAT MSR may hold (SDM Vol. 3A 11.12.2): UC, WC, WT, WP, WB, UC-. */
static bool pat_valid(u64 pat)
{
	for (unsigned i = 0; i < 8; i++) {
		u8 t = (u8)(pat >> (i * 8));
		if (t == 2 || t == 3 || t > 7)
			return false;
	}
	return true;
}

struct ctls { u32 pin, proc, proc2, exit, entry; };

/* ---- 26.2.1: VM-execution, VM-exit and VM-entry control fields ---- */
static void check_controls(const struct vmx_caps *k, const struct ctls *x, struct entry_check_result *r)
{
	CHECK(allowed(k->pin, x->pin), CTL_PIN_ALLOWED);
	CHECK(allowed(k->proc, x->proc), CTL_PROC_ALLOWED);
	if (x->proc & PROC_ACTIVATE_SECONDARY)
		CHECK(allowed(k->proc2, x->proc2), CTL_PROC2_ALLOWED);
	CHECK(vmcs_read32(VMCS_CTRL_CR3_TARGET_COUNT) <= VMX_MISC_CR3_TARGETS(k->misc), CTL_CR3_TARGETS);
	if (x->proc & PROC_USE_IO_BITMAPS) {
		CHECK(addr_ok(read_opt(VMCS_CTRL_IO_BITMAP_A), PAGE_SIZE, k->phys_bits) &&
		      addr_ok(read_opt(VMCS_CTRL_IO_BITMAP_B), PAGE_SIZE, k->phys_bits), CTL_IO_BITMAPS);
	}
	if (x->proc & PROC_USE_MSR_BITMAPS)
		CHECK(addr_ok(vmcs_read64(VMCS_CTRL_MSR_BITMAP), PAGE_SIZE, k->phys_bits), CTL_MSR_BITMAP);
	if (!(x->proc & PROC_USE_TPR_SHADOW))
		CHECK(!(x->proc2 & (PROC2_VIRT_X2APIC | PROC2_APIC_REG_VIRT | PROC2_VIRT_INTR_DELIVERY)), CTL_TPR_SHADOW);
	/* NMI exiting 0 -> virtual NMIs 0; virtual NMIs 0 -> NMI-window exiting 0. */
	CHECK((x->pin & PIN_NMI_EXITING) || !(x->pin & PIN_VIRTUAL_NMIS), CTL_VIRTUAL_NMIS);
	CHECK((x->pin & PIN_VIRTUAL_NMIS) || !(x->proc & PROC_NMI_WINDOW_EXITING), CTL_VIRTUAL_NMIS);
	if (x->proc2 & PROC2_ENABLE_VPID)
		CHECK(read_opt(VMCS_CTRL_VPID) != 0, CTL_VPID);
	if (x->proc2 & PROC2_ENABLE_EPT) {
		/* EPTP (24.6.11): memory type UC (0) or WB (6) as supported, page-walk length
		 * 4 (or 5 if supported) minus 1, A/D only if supported, 11:7 and 63:N zero. */
		u64 eptp = vmcs_read64(VMCS_CTRL_EPTP);
		u64 mt = eptp & 7, pwl = (eptp >> 3) & 7;
		bool ok = (mt == 0 && (k->ept_vpid & EPT_CAP_MT_UC)) || (mt == 6 && (k->ept_vpid & EPT_CAP_MT_WB));
		ok &= (pwl == 3 && (k->ept_vpid & EPT_CAP_PWL4)) || (pwl == 4 && (k->ept_vpid & EPT_CAP_PWL5));
		ok &= !(eptp & (1ULL << 6)) || (k->ept_vpid & EPT_CAP_AD);
		ok &= !(eptp & 0xf80ULL) && below_maxphy(eptp, k->phys_bits);
		CHECK(ok, CTL_EPTP);
	}
	bool ept = (x->proc2 & PROC2_ENABLE_EPT) != 0;
	CHECK(ept || !(x->proc2 & PROC2_UNRESTRICTED_GUEST), CTL_UG_NEEDS_EPT);
	CHECK(ept || !(x->proc2 & (PROC2_ENABLE_PML | PROC2_MODE_BASED_EXEC)), CTL_PML);
	if (x->proc2 & PROC2_SUBPAGE_WRITE_PERM) {
		/* SPP needs EPT; the SPPTP is 4-KByte aligned below MAXPHYADDR (docs/SPP.md). */
		CHECK(ept && addr_ok(read_opt(VMCS_CTRL_SPPTP), PAGE_SIZE, k->phys_bits), CTL_SPP);
	}
	if (x->proc2 & PROC2_ENABLE_VMFUNC) {
		u64 f = read_opt(VMCS_CTRL_VMFUNC_CTRLS);
		bool ok = (f & ~k->vmfunc) == 0;
		if (f & 1) /* EPTP switching: EPT on, list 4-KByte aligned */
			ok &= ept && addr_ok(read_opt(VMCS_CTRL_EPTP_LIST_ADDR), PAGE_SIZE, k->phys_bits);
		CHECK(ok, CTL_VMFUNC);
	}

	/* 26.2.1.2 */
	CHECK(allowed(k->exit, x->exit), CTL_EXIT_ALLOWED);
	CHECK((x->pin & PIN_PREEMPTION_TIMER) || !(x->exit & EXIT_SAVE_PREEMPT_TIMER), CTL_PREEMPT_SAVE);
	if (vmcs_read32(VMCS_CTRL_EXIT_MSR_STORE_COUNT))
		CHECK(addr_ok(vmcs_read64(VMCS_CTRL_EXIT_MSR_STORE_ADDR), 16, k->phys_bits), CTL_EXIT_MSR_AREAS);
	if (vmcs_read32(VMCS_CTRL_EXIT_MSR_LOAD_COUNT))
		CHECK(addr_ok(vmcs_read64(VMCS_CTRL_EXIT_MSR_LOAD_ADDR), 16, k->phys_bits), CTL_EXIT_MSR_AREAS);

	/* 26.2.1.3 */
	CHECK(allowed(k->entry, x->entry), CTL_ENTRY_ALLOWED);
	CHECK(!(x->entry & (ENTRY_SMM | ENTRY_DEACT_DUAL_MONITOR)), CTL_ENTRY_SMM); /* not in SMM */
	if (vmcs_read32(VMCS_CTRL_ENTRY_MSR_LOAD_COUNT))
		CHECK(addr_ok(vmcs_read64(VMCS_CTRL_ENTRY_MSR_LOAD_ADDR), 16, k->phys_bits), CTL_ENTRY_MSR_AREA);
}

/* ---- 26.2.1.3: the VM-entry interruption-information field ---- */
static void check_event(const struct vmx_caps *k, const struct ctls *x, u64 guest_cr0, struct entry_check_result *r)
{
	u32 info = vmcs_read32(VMCS_CTRL_ENTRY_INTR_INFO);
	if (!(info & INTR_INFO_VALID))
		return;
	u32 type = info & INTR_TYPE_MASK, vec = info & INTR_VECTOR_MASK;
	CHECK(!(info & 0x7ffff000U), EVT_RESERVED); /* bits 30:12 */
	CHECK(type != INTR_TYPE_RESERVED1 && (type != INTR_TYPE_OTHER || vmx_allows(k->proc, PROC_MONITOR_TRAP_FLAG)),
	      EVT_TYPE);
	if (type == INTR_TYPE_NMI)
		CHECK(vec == VEC_NMI, EVT_VECTOR);
	else if (type == INTR_TYPE_HW_EXCEPTION)
		CHECK(vec <= 31, EVT_VECTOR);
	else if (type == INTR_TYPE_OTHER)
		CHECK(vec == 0, EVT_VECTOR);
	/* Deliver-error-code: 0 when the guest will be in real mode (unrestricted guest with
	 * CR0.PE = 0), else exactly for hardware exceptions #DF, #TS, #NP, #SS, #GP, #PF, #AC. */
	bool real_mode = (x->proc2 & PROC2_UNRESTRICTED_GUEST) && !(guest_cr0 & CR0_PE);
	bool code = (info & INTR_INFO_DELIVER_CODE) != 0;
	if (real_mode) {
		CHECK(!code, EVT_ERRCODE_MODE);
	} else {
		bool wants = type == INTR_TYPE_HW_EXCEPTION &&
			     (vec == VEC_DF || vec == VEC_TS || vec == VEC_NP || vec == VEC_SS || vec == VEC_GP ||
			      vec == VEC_PF || vec == 17);
		CHECK(code == wants, EVT_ERRCODE_VECTOR);
	}
	if (code)
		CHECK(!(vmcs_read32(VMCS_CTRL_ENTRY_EXC_ERROR_CODE) & 0xffff0000U), EVT_ERRCODE_BITS);
	if (type == INTR_TYPE_SW_INTR || type == INTR_TYPE_PRIV_SW_EXC || type == INTR_TYPE_SW_EXCEPTION) {
		u32 len = vmcs_read32(VMCS_CTRL_ENTRY_INSN_LEN);
		CHECK((len >= 1 && len <= 15) || (len == 0 && (k->misc & VMX_MISC_INSN_LEN_ZERO)), EVT_INSN_LEN);
	}
}

/* ---- 26.2.2 - 26.2.4: host state ---- */
static void check_host(const struct vmx_caps *k, const struct ctls *x, struct entry_check_result *r)
{
	u64 cr0 = vmcs_readl(VMCS_HOST_CR0), cr4 = vmcs_readl(VMCS_HOST_CR4);
	CHECK((cr0 & k->cr0_fixed0) == k->cr0_fixed0 && (cr0 & ~k->cr0_fixed1) == 0, HOST_CR0);
	CHECK((cr4 & k->cr4_fixed0) == k->cr4_fixed0 && (cr4 & ~k->cr4_fixed1) == 0, HOST_CR4);
	CHECK(below_maxphy(vmcs_readl(VMCS_HOST_CR3), k->phys_bits), HOST_CR3);
	unsigned la = la_width(k);
	CHECK(canonical(vmcs_readl(VMCS_HOST_IA32_SYSENTER_ESP), la) &&
	      canonical(vmcs_readl(VMCS_HOST_IA32_SYSENTER_EIP), la), HOST_SYSENTER);
	if (x->exit & EXIT_LOAD_IA32_PAT)
		CHECK(pat_valid(vmcs_read64(VMCS_HOST_IA32_PAT)), HOST_PAT);
	bool host64 = (x->exit & EXIT_HOST_ADDR_SPACE_SIZE) != 0;
	if (x->exit & EXIT_LOAD_IA32_EFER) {
		u64 efer = vmcs_read64(VMCS_HOST_IA32_EFER);
		CHECK(!(efer & ~EFER_VALID) && !!(efer & EFER_LMA) == host64 && !!(efer & EFER_LME) == host64, HOST_EFER);
	}

	static const u32 sels[] = { VMCS_HOST_ES_SEL, VMCS_HOST_CS_SEL, VMCS_HOST_SS_SEL, VMCS_HOST_DS_SEL,
				    VMCS_HOST_FS_SEL, VMCS_HOST_GS_SEL, VMCS_HOST_TR_SEL };
	for (size_t i = 0; i < ARRAY_SIZE(sels); i++)
		CHECK(!(vmcs_read_raw(sels[i]) & 7), HOST_SEL_RPL_TI);
	CHECK(vmcs_read16(VMCS_HOST_CS_SEL) != 0 && vmcs_read16(VMCS_HOST_TR_SEL) != 0 &&
	      (host64 || vmcs_read16(VMCS_HOST_SS_SEL) != 0), HOST_SEL_NULL);
	CHECK(canonical(vmcs_readl(VMCS_HOST_FS_BASE), la) && canonical(vmcs_readl(VMCS_HOST_GS_BASE), la) &&
	      canonical(vmcs_readl(VMCS_HOST_GDTR_BASE), la) && canonical(vmcs_readl(VMCS_HOST_IDTR_BASE), la) &&
	      canonical(vmcs_readl(VMCS_HOST_TR_BASE), la), HOST_BASES);

	/* 26.2.4: Tessel runs in 64-bit mode, so "host address-space size" must be 1 and
	 * CR4.PAE set; a host without it could not enter an IA-32e guest either. */
	CHECK(host64 && (cr4 & CR4_PAE), HOST_ADDR_SPACE);
	CHECK(host64 || !(x->entry & ENTRY_IA32E_MODE_GUEST), HOST_ADDR_SPACE);
	CHECK(canonical(vmcs_readl(VMCS_HOST_RIP), la), HOST_RIP);
}

struct seg { u16 sel; u64 base; u32 limit, ar; bool usable; };

static struct seg read_seg(u32 sel_f, u32 base_f, u32 limit_f, u32 ar_f)
{
	struct seg s = { (u16)vmcs_read_raw(sel_f), vmcs_read_raw(base_f), (u32)vmcs_read_raw(limit_f),
			 (u32)vmcs_read_raw(ar_f), false };
	s.usable = !(s.ar & SEG_AR_UNUSABLE);
	return s;
}
#define READ_SEG(n) read_seg(VMCS_GUEST_##n##_SEL, VMCS_GUEST_##n##_BASE, VMCS_GUEST_##n##_LIMIT, VMCS_GUEST_##n##_AR)

/* Limit bits 11:0 all 1 if G = 1... precisely: any of 11:0 zero -> G = 0; any of 31:20 one -> G = 1. */
static bool limit_g_ok(const struct seg *s)
{
	bool g = (s->ar & SEG_AR_G) != 0;
	if ((s->limit & 0xfff) != 0xfff && g)
		return false;
	if ((s->limit & 0xfff00000U) && !g)
		return false;
	return true;
}

static bool ar_rsvd_ok(u32 ar) { return !(ar & 0xf00U) && !(ar & 0xfffe0000U); }

/* ---- 26.3.1.2: segment registers ---- */
static void check_segments(unsigned la, bool ug, bool ia32e, u64 cr0, u64 rflags, struct entry_check_result *r)
{
	struct seg cs = READ_SEG(CS), ss = READ_SEG(SS), tr = READ_SEG(TR), ldtr = READ_SEG(LDTR);
	struct seg data[4] = { READ_SEG(DS), READ_SEG(ES), READ_SEG(FS), READ_SEG(GS) };
	bool v86 = (rflags & RFLAGS_VM) != 0;

	CHECK(!(tr.sel & 4), G_SEG_SEL);
	if (ldtr.usable)
		CHECK(!(ldtr.sel & 4), G_SEG_SEL);
	if (!v86 && !ug)
		CHECK((ss.sel & 3) == (cs.sel & 3), G_SEG_SEL);

	if (v86) {
		/* Virtual-8086: base = selector << 4, limit 0xffff, access rights 0xf3. */
		const struct seg *all[6] = { &cs, &ss, &data[0], &data[1], &data[2], &data[3] };
		for (unsigned i = 0; i < 6; i++)
			CHECK(all[i]->base == (u64)all[i]->sel << 4 && all[i]->limit == 0xffff && all[i]->ar == 0xf3, G_SEG_V86);
	}
	CHECK(canonical(tr.base, la) && canonical(data[2].base, la) && canonical(data[3].base, la), G_SEG_BASE);
	if (ldtr.usable)
		CHECK(canonical(ldtr.base, la), G_SEG_BASE);
	CHECK(!(cs.base >> 32), G_SEG_BASE);
	if (ss.usable)
		CHECK(!(ss.base >> 32), G_SEG_BASE);
	for (unsigned i = 0; i < 2; i++) /* DS, ES */
		if (data[i].usable)
			CHECK(!(data[i].base >> 32), G_SEG_BASE);
	if (v86)
		goto system;

	/* CS: accessed code (9, 11, 13, 15), or read/write accessed data (3) with unrestricted
	 * guest; S = 1; DPL per type; present; reserved bits; limit/G. */
	u32 cst = SEG_AR_TYPE(cs.ar);
	CHECK(cst == 9 || cst == 11 || cst == 13 || cst == 15 || (ug && cst == 3), G_SEG_TYPE);
	CHECK(cs.ar & SEG_AR_S, G_SEG_S);
	if (cst == 3)
		CHECK(SEG_AR_DPL(cs.ar) == 0, G_SEG_DPL);
	else if (cst == 9 || cst == 11)
		CHECK(SEG_AR_DPL(cs.ar) == SEG_AR_DPL(ss.ar), G_SEG_DPL);
	else if (cst == 13 || cst == 15)
		CHECK(SEG_AR_DPL(cs.ar) <= SEG_AR_DPL(ss.ar), G_SEG_DPL);
	CHECK(cs.ar & SEG_AR_P, G_SEG_P);
	CHECK(ar_rsvd_ok(cs.ar) && cs.usable, G_SEG_RSVD);
	CHECK(limit_g_ok(&cs), G_SEG_LIMIT_G);
	if (ia32e && (cs.ar & SEG_AR_L))
		CHECK(!(cs.ar & SEG_AR_DB), G_CS_L_DB);

	/* SS: type 3 or 7 when usable; DPL = RPL without unrestricted guest; DPL 0 in real
	 * mode or with a CS of type 3. */
	if (!ug)
		CHECK(SEG_AR_DPL(ss.ar) == (ss.sel & 3U), G_SEG_DPL);
	if (cst == 3 || !(cr0 & CR0_PE))
		CHECK(SEG_AR_DPL(ss.ar) == 0, G_SEG_DPL);
	if (ss.usable) {
		CHECK(SEG_AR_TYPE(ss.ar) == 3 || SEG_AR_TYPE(ss.ar) == 7, G_SEG_TYPE);
		CHECK(ss.ar & SEG_AR_S, G_SEG_S);
		CHECK(ss.ar & SEG_AR_P, G_SEG_P);
		CHECK(ar_rsvd_ok(ss.ar), G_SEG_RSVD);
		CHECK(limit_g_ok(&ss), G_SEG_LIMIT_G);
	}
	/* DS, ES, FS, GS when usable: accessed; readable if code; S = 1; DPL >= RPL for
	 * data and non-conforming code without unrestricted guest. */
	for (unsigned i = 0; i < 4; i++) {
		const struct seg *d = &data[i];
		if (!d->usable)
			continue;
		u32 t = SEG_AR_TYPE(d->ar);
		CHECK((t & 1) && (!(t & 8) || (t & 2)), G_SEG_TYPE);
		CHECK(d->ar & SEG_AR_S, G_SEG_S);
		if (!ug && t <= 11)
			CHECK(SEG_AR_DPL(d->ar) >= (d->sel & 3U), G_SEG_DPL);
		CHECK(d->ar & SEG_AR_P, G_SEG_P);
		CHECK(ar_rsvd_ok(d->ar), G_SEG_RSVD);
		CHECK(limit_g_ok(d), G_SEG_LIMIT_G);
	}
system:
	/* TR: a busy TSS (type 11, or 3 outside IA-32e mode), S = 0, present, usable. */
	{
		u32 t = SEG_AR_TYPE(tr.ar);
		CHECK((t == 11 || (!ia32e && t == 3)) && !(tr.ar & SEG_AR_S) && (tr.ar & SEG_AR_P) && tr.usable &&
		      ar_rsvd_ok(tr.ar) && limit_g_ok(&tr), G_TR);
	}
	if (ldtr.usable) {
		CHECK(SEG_AR_TYPE(ldtr.ar) == 2 && !(ldtr.ar & SEG_AR_S) && (ldtr.ar & SEG_AR_P) &&
		      ar_rsvd_ok(ldtr.ar) && limit_g_ok(&ldtr), G_LDTR);
	}
}

/* ---- 26.3.1: guest state ---- */
static void check_guest(const struct vmx_caps *k, const struct ctls *x, struct entry_check_result *r)
{
	bool ug = (x->proc & PROC_ACTIVATE_SECONDARY) && (x->proc2 & PROC2_UNRESTRICTED_GUEST);
	bool ia32e = (x->entry & ENTRY_IA32E_MODE_GUEST) != 0;
	u64 cr0 = vmcs_readl(VMCS_GUEST_CR0), cr4 = vmcs_readl(VMCS_GUEST_CR4);
	unsigned la = la_width(k);

	/* 26.3.1.1: CR0/CR4 fixed bits (PE and PG are free with unrestricted guest). */
	u64 f0 = k->cr0_fixed0 & (ug ? ~(CR0_PE | CR0_PG) : ~0ULL);
	CHECK((cr0 & f0) == f0 && (cr0 & ~k->cr0_fixed1) == 0, G_CR0_FIXED);
	CHECK(!(cr0 & CR0_PG) || (cr0 & CR0_PE), G_CR0_PG_PE);
	CHECK((cr4 & k->cr4_fixed0) == k->cr4_fixed0 && (cr4 & ~k->cr4_fixed1) == 0, G_CR4_FIXED);
	CHECK(below_maxphy(vmcs_readl(VMCS_GUEST_CR3), k->phys_bits), G_CR3);
	if (x->entry & ENTRY_LOAD_DEBUG_CTLS) {
		CHECK(!(vmcs_read64(VMCS_GUEST_IA32_DEBUGCTL) & DEBUGCTL_RSVD), G_DEBUGCTL);
		CHECK(!(vmcs_readl(VMCS_GUEST_DR7) >> 32), G_DR7);
	}
	if (ia32e)
		CHECK((cr0 & CR0_PG) && (cr4 & CR4_PAE), G_IA32E_MODE);
	else
		CHECK(!(cr4 & CR4_PCIDE), G_IA32E_MODE);
	CHECK(canonical(vmcs_readl(VMCS_GUEST_IA32_SYSENTER_ESP), la) &&
	      canonical(vmcs_readl(VMCS_GUEST_IA32_SYSENTER_EIP), la), G_SYSENTER);
	if (x->entry & ENTRY_LOAD_IA32_PAT)
		CHECK(pat_valid(vmcs_read64(VMCS_GUEST_IA32_PAT)), G_PAT);
	if (x->entry & ENTRY_LOAD_IA32_EFER) {
		u64 efer = vmcs_read64(VMCS_GUEST_IA32_EFER);
		bool ok = !(efer & ~EFER_VALID) && !!(efer & EFER_LMA) == ia32e;
		if (cr0 & CR0_PG)
			ok &= !!(efer & EFER_LMA) == !!(efer & EFER_LME);
		CHECK(ok, G_EFER);
	}

	u64 rflags = vmcs_readl(VMCS_GUEST_RFLAGS);
	check_segments(la, ug, ia32e, cr0, rflags, r);

	/* 26.3.1.3 */
	CHECK(canonical(vmcs_readl(VMCS_GUEST_GDTR_BASE), la) && canonical(vmcs_readl(VMCS_GUEST_IDTR_BASE), la) &&
	      !(vmcs_read32(VMCS_GUEST_GDTR_LIMIT) >> 16) && !(vmcs_read32(VMCS_GUEST_IDTR_LIMIT) >> 16), G_DTR);

	/* 26.3.1.4 */
	u64 rip = vmcs_readl(VMCS_GUEST_RIP);
	bool cs_l = (vmcs_read32(VMCS_GUEST_CS_AR) & SEG_AR_L) != 0;
	if (ia32e && cs_l)
		CHECK(canonical(rip, la), G_RIP);
	else
		CHECK(!(rip >> 32), G_RIP);
	CHECK(!(rflags & RFLAGS_RSVD) && (rflags & RFLAGS_FIXED), G_RFLAGS_RSVD);
	if (ia32e || !(cr0 & CR0_PE))
		CHECK(!(rflags & RFLAGS_VM), G_RFLAGS_VM);
	u32 info = vmcs_read32(VMCS_CTRL_ENTRY_INTR_INFO);
	bool inject = (info & INTR_INFO_VALID) != 0;
	u32 type = info & INTR_TYPE_MASK, vec = info & INTR_VECTOR_MASK;
	if (inject && type == INTR_TYPE_EXT_INTR)
		CHECK(rflags & RFLAGS_IF, G_RFLAGS_IF);

	/* 26.3.1.5: activity state */
	u32 act = vmcs_read32(VMCS_GUEST_ACTIVITY_STATE);
	u32 intr = vmcs_read32(VMCS_GUEST_INTERRUPTIBILITY);
	bool act_ok = act == GUEST_ACTIVITY_ACTIVE || (act == GUEST_ACTIVITY_HLT && (k->misc & VMX_MISC_ACTIVITY_HLT)) ||
		      (act == GUEST_ACTIVITY_SHUTDOWN && (k->misc & VMX_MISC_ACTIVITY_SHUTDOWN)) ||
		      (act == GUEST_ACTIVITY_WAIT_SIPI && (k->misc & VMX_MISC_ACTIVITY_WAIT_SIPI));
	CHECK(act_ok, G_ACTIVITY);
	if (act == GUEST_ACTIVITY_HLT)
		CHECK(SEG_AR_DPL(vmcs_read32(VMCS_GUEST_SS_AR)) == 0, G_ACTIVITY_HLT_DPL);
	if (intr & (GUEST_INTR_BLOCK_STI | GUEST_INTR_BLOCK_MOV_SS))
		CHECK(act == GUEST_ACTIVITY_ACTIVE, G_ACTIVITY_BLOCKING);
	if (inject && act != GUEST_ACTIVITY_ACTIVE) {
		bool ok;
		if (act == GUEST_ACTIVITY_HLT)
			ok = type == INTR_TYPE_EXT_INTR || type == INTR_TYPE_NMI || type == INTR_TYPE_OTHER ||
			     (type == INTR_TYPE_HW_EXCEPTION && (vec == VEC_DB || vec == VEC_MC));
		else if (act == GUEST_ACTIVITY_SHUTDOWN)
			ok = type == INTR_TYPE_NMI || (type == INTR_TYPE_HW_EXCEPTION && vec == VEC_MC);
		else
			ok = false;
		CHECK(ok, G_ACTIVITY_EVENT);
	}

	/* Interruptibility state */
	CHECK(!(intr & GUEST_INTR_RSVD), G_INTR_RSVD);
	CHECK((intr & (GUEST_INTR_BLOCK_STI | GUEST_INTR_BLOCK_MOV_SS)) != (GUEST_INTR_BLOCK_STI | GUEST_INTR_BLOCK_MOV_SS),
	      G_INTR_STI_MOVSS);
	if (intr & GUEST_INTR_BLOCK_STI)
		CHECK(rflags & RFLAGS_IF, G_INTR_STI_IF);
	if (inject && type == INTR_TYPE_EXT_INTR)
		CHECK(!(intr & (GUEST_INTR_BLOCK_STI | GUEST_INTR_BLOCK_MOV_SS)), G_INTR_EVENT);
	if (inject && type == INTR_TYPE_NMI) {
		/* MOV-SS blocking must be 0; some processors also refuse STI blocking (26.3.1.5:
		 * "a processor may require"), so both are checked. With virtual NMIs, blocking
		 * by NMI must be 0 too. */
		CHECK(!(intr & (GUEST_INTR_BLOCK_STI | GUEST_INTR_BLOCK_MOV_SS)), G_INTR_EVENT);
		if (x->pin & PIN_VIRTUAL_NMIS)
			CHECK(!(intr & GUEST_INTR_BLOCK_NMI), G_INTR_EVENT);
	}
	CHECK(!(intr & GUEST_INTR_BLOCK_SMI), G_INTR_SMI); /* not in SMM */

	/* Pending debug exceptions */
	u64 pdbg = vmcs_readl(VMCS_GUEST_PENDING_DBG_EXC);
	CHECK(!(pdbg & PENDING_DBG_RSVD), G_PENDING_DBG_RSVD);
	if ((intr & (GUEST_INTR_BLOCK_STI | GUEST_INTR_BLOCK_MOV_SS)) || act == GUEST_ACTIVITY_HLT) {
		bool btf = (vmcs_read64(VMCS_GUEST_IA32_DEBUGCTL) & DEBUGCTL_BTF) != 0; /* the field, loaded or not */
		bool want_bs = (rflags & RFLAGS_TF) && !btf;
		CHECK(!!(pdbg & PENDING_DBG_BS) == want_bs, G_PENDING_DBG_BS);
	}

	/* VMCS link pointer: Tessel uses no VMCS shadowing, so ~0 (anything else must be a
	 * 4-KByte aligned address below MAXPHYADDR whose revision the processor checks). */
	u64 link = vmcs_read64(VMCS_GUEST_VMCS_LINK_PTR);
	CHECK(link == ~0ULL || (addr_ok(link, PAGE_SIZE, k->phys_bits) && (x->proc2 & PROC2_VMCS_SHADOWING)), G_LINK_PTR);

	/* 26.3.1.6: PAE paging with EPT: the PDPTEs come from the VMCS. */
	if ((x->proc2 & PROC2_ENABLE_EPT) && (cr0 & CR0_PG) && (cr4 & CR4_PAE) && !ia32e) {
		static const u32 f[4] = { VMCS_GUEST_PDPTE0, VMCS_GUEST_PDPTE1, VMCS_GUEST_PDPTE2, VMCS_GUEST_PDPTE3 };
		for (unsigned i = 0; i < 4; i++) {
			u64 e = read_opt(f[i]);
			if (e & 1)
				CHECK(!(e & 0x1e6ULL) && below_maxphy(e & ~(1ULL << 63), k->phys_bits) && !(e >> 63), G_PDPTE);
		}
	}
}

u32 entry_check(const struct vmx_caps *k, struct entry_check_result *r)
{
	*r = (struct entry_check_result){ 0 };
	struct ctls x = { .pin = vmcs_read32(VMCS_CTRL_PIN_BASED), .proc = vmcs_read32(VMCS_CTRL_PROC_BASED),
			  .exit = vmcs_read32(VMCS_CTRL_EXIT), .entry = vmcs_read32(VMCS_CTRL_ENTRY) };
	/* Without "activate secondary controls" the secondary controls act as 0 (24.6.2). */
	if (x.proc & PROC_ACTIVATE_SECONDARY)
		x.proc2 = vmcs_read32(VMCS_CTRL_PROC_BASED2);
	check_controls(k, &x, r);
	check_event(k, &x, vmcs_readl(VMCS_GUEST_CR0), r);
	check_host(k, &x, r);
	check_guest(k, &x, r);
	return r->count;
}

/* ---- the hypervisor's hooks ---- */

void entry_check_explain(void)
{
	struct entry_check_result res;
	if (!entry_check(&vmx_caps, &res))
		return;
	for (u32 i = 0; i < ER_COUNT; i++)
		if (entry_check_failed(&res, (enum entry_rule)i))
			log_error("VM-entry check failed: %s (SDM Vol. 3C %s)", rules[i].name, rules[i].sdm);
}

void entry_check_before_entry(struct percpu *c, const char *when)
{
	if (!entry_check_enabled)
		return;
	struct entry_check_result res;
	if (!entry_check(&vmx_caps, &res))
		return;
	log_error("cpu %u: the VMCS fails %u VM-entry check(s) before %s", c->index, res.count, when);
	entry_check_explain();
	/* The first rule names the stop; the others are on the lines above. vcpu_stop() does
	 * not return, so the message can live on this CPU's stack. */
	char why[96];
	fmt_snprintf(why, sizeof(why), "VM-entry check %s (SDM Vol. 3C %s) failed before %s",
		     rules[res.first].name, rules[res.first].sdm, when);
	vcpu_stop(c, why);
}
