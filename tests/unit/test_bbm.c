/*
 * Host tests: EPT page-size changes and the machine-check erratum (CVE-2018-12207, "iTLB
 * multihit"; mm/ept.h ept_split, docs/HARDWARE.md). A whole hypervisor over the fake layer
 * (pmm, memmap, the EPT identity map with 2 MiB leaves, SPP in hardware and software mode)
 * and two CPUs: cpu0 makes HC_SPP_SET calls, cpu1 runs guest code in the same 2 MiB block
 * the whole time. A model of each CPU's instruction TLB records what its fetches could
 * cache: at every point where the hypervisor lets time pass (each INVEPT, each NMI sent,
 * each spin of the shootdown's wait) cpu1 fetches at two pages of the block by walking the
 * EPT as it is, caching the leaf it finds (its page size and base), and its NMI is taken
 * only once cpu0 spins; an INVEPT empties the TLB of the CPU that executes it. Checked:
 *
 *   - with an affected processor (ept->bbm), protecting a page in a 2 MiB leaf (split) and
 *     unprotecting it again (merge): no CPU's walk finds a translation of the new page size
 *     before every CPU has executed INVEPT since a walk last found the old size, and no
 *     model TLB ever holds two entries of different sizes for one address; a walk that finds
 *     the range unlinked meanwhile is an EPT violation the handler retries (no event is
 *     injected, the vCPU is not stopped);
 *   - with a processor that has PSCHANGE_MC_NO, the split keeps its fast path: the leaf is
 *     never seen not present and the call makes one shootdown, not two;
 *   - a guest MTRR write that splits a 2 MiB leaf (new page size and new memory type) on an
 *     affected processor: the same ordering, and its shootdowns run under spp.lock like
 *     every other (spp/flush.c keeps one shootdown's bookkeeping at a time);
 *   - the erratum rule (hv/features.c vmx_pschange_mc_affected) over CPUID and
 *     IA32_ARCH_CAPABILITIES.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include <hw.h>
#include <machine.h>
#include <arch/cpu.h>
#include <arch/ept.h>
#include <arch/msr.h>
#include <arch/vmx.h>
#include <tessel/bootinfo.h>
#include <tessel/config.h>
#include "hv/abi.h"
#include "hv/exit.h"
#include "hv/features.h"
#include "hv/hypercall.h"
#include "hv/percpu.h"
#include "hv/vmcs.h"
#include "hv/vmx_caps.h"
#include "mm/ept.h"
#include "mm/memmap.h"
#include "mm/mtrr.h"
#include "mm/mtrr_guest.h"
#include "mm/pmm.h"
#include "spp/spp.h"

#define MiB(x) ((u64)(x) << 20)
#define GiB (1ULL << 30)
#define W_BASE (5 * GiB - MiB(16))
#define W_SIZE MiB(64)
#define HV_BASE (W_BASE + 0x1000)
#define HV_SIZE (1024 * PAGE_SIZE)
#define MAP_GPA (W_BASE + MiB(8))
#define BLOCK (5 * GiB + MiB(4))    /* a 2 MiB leaf at boot (no 1 GiB leaves here) */
#define PAGE_P (BLOCK + 0x37000)    /* the page protected and unprotected */
#define PAGE_Q (BLOCK + 0x1c5000)   /* another page of the block cpu1 executes */
#define PHYS_BITS 36
#define XAPIC_BASE 0xfee00000ULL
#define NCPU 2
#define TLB_MAX 64

static const struct tessel_mem_range fw_map[] = {
	{ W_BASE, W_SIZE >> 12, EFI_MT_CONVENTIONAL, 0 },
};
static const struct fake_machine machine = { .hv_base = HV_BASE, .hv_size = HV_SIZE, .phys_bits = PHYS_BITS, .no_1g = true,
					     .fw_map = fw_map, .fw_count = ARRAY_SIZE(fw_map) };

static struct mtrr_state mtrr;
static struct ept ept;
static struct percpu cpu0, cpu1;
static struct guest_regs regs;

/* ---- the model ---- */

struct tlb { u64 base[TLB_MAX], size[TLB_MAX]; u32 n; };
static struct {
	struct tlb tlb[NCPU];
	u64 seq;                 /* one tick per recorded event */
	u64 inv_seq[NCPU];       /* last INVEPT by each CPU */
	u64 old_size;            /* the page size the change moves away from */
	u64 last_old_seq;        /* last walk that found the old size */
	u64 first_new_seq;       /* first walk that found the new size (0: none yet) */
	bool new_before_inv;     /* the new size was found while some CPU had not invalidated */
	bool multihit;           /* a model TLB held two sizes for one address */
	u64 not_present;         /* walks that found the range unlinked */
	u64 not_present_unpending; /* ... without a pending change covering it (would not retry) */
	u32 invept_by_cpu0;
	u32 shootdown_unlocked;  /* cpu0 INVEPTs (shootdowns) without spp.lock held */
	bool nmi_pending;        /* sent to cpu1, not yet taken */
	bool armed;
	u64 mt_seen_mask;        /* memory types walks found (bit per type) */
} m;

static u32 cur_index(void) { return this_cpu() == &cpu1 ? 1 : 0; }

static bool pending_covers(u64 gpa)
{
	for (u32 i = 0; i < ept.npending; i++)
		if (gpa - ept.pending[i].gpa < ept.pending[i].size)
			return true;
	return false;
}

/* cpu `c` fetches at gpa: a walk of the EPT as it is now (worst case: a TLB structure that
 * did not hold the address). */
static void fetch(u32 c, u64 gpa)
{
	int level;
	u64 *e = ept_leaf(&ept, gpa, &level);
	struct tlb *t = &m.tlb[c];

	m.seq++;
	if (!e) {
		m.not_present++;
		if (!pending_covers(gpa))
			m.not_present_unpending++;
		return;
	}
	if (!(*e & EPT_X))
		return;
	u64 size = EPT_LEVEL_SIZE(level), base = ALIGN_DOWN(gpa, size);
	m.mt_seen_mask |= 1ULL << ((*e >> EPT_MT_SHIFT) & 7);
	if (size == m.old_size) {
		m.last_old_seq = m.seq;
	} else {
		if (!m.first_new_seq)
			m.first_new_seq = m.seq;
		for (u32 k = 0; k < NCPU; k++)
			if (m.inv_seq[k] < m.last_old_seq)
				m.new_before_inv = true;
	}
	for (u32 i = 0; i < t->n; i++) {
		if (t->base[i] == base && t->size[i] == size)
			return;
		if (t->size[i] != size && base < t->base[i] + t->size[i] && t->base[i] < base + size)
			m.multihit = true;
	}
	if (t->n < TLB_MAX) {
		t->base[t->n] = base;
		t->size[t->n] = size;
		t->n++;
	}
}

static void cpu1_runs(void)
{
	if (!m.armed)
		return;
	fetch(1, PAGE_P);
	fetch(1, PAGE_Q);
}

static void invept_hook(void)
{
	u32 c = cur_index();

	cpu1_runs(); /* cpu1 goes on until the very moment of the invalidation */
	m.tlb[c].n = 0;
	m.inv_seq[c] = ++m.seq;
	if (c == 0) {
		m.invept_by_cpu0++;
		/* spp/flush.c: one shootdown at a time, under spp.lock (its bookkeeping and the
		 * pending EPT changes it finishes depend on that). */
		if (!__atomic_load_n(&spp.lock.locked, __ATOMIC_SEQ_CST))
			m.shootdown_unlocked++;
	}
}

static void mmio_hook(u64 addr, u32 v)
{
	if (addr == XAPIC_BASE + 0x300 && ((v >> 8) & 7) == 4) { /* ICR: an NMI (to cpu1) */
		m.nmi_pending = true;
		cpu1_runs();
	}
}

static void relax_hook(void)
{
	cpu1_runs();
	if (!m.nmi_pending)
		return;
	m.nmi_pending = false;
	fake_cpu_local_set(&cpu1); /* cpu1 takes the NMI in guest mode: NMI exit */
	nmi_arrived(&cpu1);
	fake_cpu_local_set(&cpu0);
}

/* Both CPUs have run code in the block before (their TLBs hold its current translation);
 * the change moves the block away from page size old_size. */
static void model_start(u64 old_size)
{
	memset(&m, 0, sizeof(m));
	m.old_size = old_size;
	m.armed = true;
	fetch(0, PAGE_P);
	fetch(0, PAGE_Q);
	cpu1_runs();
}

/* After the change: both CPUs run the guest again. */
static void model_end(void)
{
	fetch(0, PAGE_P);
	fetch(0, PAGE_Q);
	cpu1_runs();
	m.armed = false;
}

/* ---- the hypervisor ---- */

static int setup_mode(int cfg_spp, bool bbm)
{
	struct tessel_config cfg;

	fake_reset();
	fake_phys_init(W_BASE, W_SIZE);
	if (fake_machine_ept(&machine, &mtrr, &ept))
		return -1;
	ept.bbm = bbm;

	memset(&vmx_caps, 0, sizeof(vmx_caps));
	vmx_caps.phys_bits = PHYS_BITS;
	vmx_caps.proc2 = (u64)PROC2_SUBPAGE_WRITE_PERM << 32;
	memset(&cpu0, 0, sizeof(cpu0));
	memset(&cpu1, 0, sizeof(cpu1));
	cpu0.self = &cpu0;
	cpu0.regs = &regs;
	cpu0.launched = true;
	cpu1.self = &cpu1;
	cpu1.index = 1;
	cpu1.apic_id = 1;
	cpu1.launched = true; /* and running guest code: the shootdown waits for it */
	cpu1.regs = &regs;
	percpu_array[0] = &cpu0;
	percpu_array[1] = &cpu1;
	percpu_count = 2;
	fake_cpu_local_set(&cpu0);
	fake_msr_set(MSR_IA32_APIC_BASE, XAPIC_BASE | APIC_BASE_ENABLE | APIC_BASE_BSP);
	fake_mmio_set_hook(mmio_hook);
	fake_set_invept_hook(invept_hook);
	fake_set_relax_hook(relax_hook);

	memset(&cfg, 0, sizeof(cfg));
	cfg.spp = cfg_spp;
	cfg.sppt = CFG_SPPT_EAGER;
	memset(&spp, 0, sizeof(spp));
	spp.lock = (spinlock_t)SPINLOCK_INIT;
	if (spp_init(&cfg, &ept, PHYS_BITS))
		return -1;
	return 0;
}

static int setup_hw_bbm(void **s) { (void)s; return setup_mode(CFG_SPP_HW, true); }
static int setup_sw_bbm(void **s) { (void)s; return setup_mode(CFG_SPP_SW, true); }
static int setup_hw_fast(void **s) { (void)s; return setup_mode(CFG_SPP_HW, false); }

static int teardown(void **s)
{
	(void)s;
	fake_mmio_set_hook(NULL);
	fake_set_invept_hook(NULL);
	fake_set_relax_hook(NULL);
	if (spp.mode == SPP_MODE_HW)
		sppt_destroy(&spp.sppt);
	spp_store_destroy(&spp.store);
	ept_destroy(&ept);
	return 0;
}

static s64 set_pages(u64 gfn, u64 n, u32 map)
{
	u32 *buf = hpa_to_ptr(hpa(MAP_GPA));
	struct hc_args a = { .nr = HC_SPP_SET, .arg = { gfn, n, MAP_GPA, 0 } };

	for (u64 i = 0; i < n; i++)
		buf[i] = map;
	return hc_spp_set(&cpu0, &a);
}

/* Merge-back of emptied blocks happens when the idle cache gives them up (spp/spp.c). */
static void reclaim_idle(void)
{
	spin_lock(&spp.lock);
	spp_reclaim_idle();
	spin_unlock(&spp.lock);
}

static int level_at(u64 gpa)
{
	int level = 0;

	assert_non_null(ept_leaf(&ept, gpa, &level));
	return level;
}

static void check_ordering(const char *what)
{
	if (!m.first_new_seq)
		fail_msg("%s: no walk found the new page size", what);
	if (m.new_before_inv)
		fail_msg("%s: a walk found the new page size (event %llu) while a CPU had not invalidated "
			 "since the old one was last found (event %llu; INVEPT cpu0 %llu, cpu1 %llu)", what,
			 (unsigned long long)m.first_new_seq, (unsigned long long)m.last_old_seq,
			 (unsigned long long)m.inv_seq[0], (unsigned long long)m.inv_seq[1]);
	if (m.multihit)
		fail_msg("%s: a model TLB held two page sizes for one address", what);
	assert_int_equal(m.not_present_unpending, 0);
	assert_false(m.nmi_pending);
}

/* Protect (split) and unprotect (merge) a page of a 2 MiB leaf on an affected processor,
 * three times. */
static void test_affected_split_merge(void **state)
{
	(void)state;
	for (int round = 0; round < 3; round++) {
		assert_int_equal(level_at(PAGE_P), 2);
		model_start(SZ_2M);
		assert_int_equal(set_pages(PAGE_P >> PAGE_SHIFT, 1, 0x0000ffff), 0);
		model_end();
		assert_int_equal(level_at(PAGE_P), 1);
		check_ordering("split");
		assert_true(m.not_present > 0); /* cpu1 did run into the unlinked block */
		assert_int_equal(m.shootdown_unlocked, 0);
		assert_int_equal(ept.npending, 0);

		model_start(PAGE_SIZE);
		assert_int_equal(set_pages(PAGE_P >> PAGE_SHIFT, 1, SPP_MAP_ALL), 0);
		reclaim_idle(); /* the emptied block's tables wait in the idle cache until then */
		model_end();
		assert_int_equal(level_at(PAGE_P), 2);
		check_ordering("merge");
		assert_int_equal(ept.npending, 0);
	}
}

/* PSCHANGE_MC_NO: the split links the table at once, and the call makes one shootdown
 * (for the write permission it takes away), as before. */
static void test_unaffected_fast_path(void **state)
{
	(void)state;
	model_start(SZ_2M);
	assert_int_equal(set_pages(PAGE_P >> PAGE_SHIFT, 1, 0x0000ffff), 0);
	model_end();
	assert_int_equal(level_at(PAGE_P), 1);
	assert_int_equal(m.not_present, 0);
	assert_int_equal(m.invept_by_cpu0, 1);

	/* The same on an affected processor: two shootdowns, one for the split. */
	assert_int_equal(set_pages(PAGE_P >> PAGE_SHIFT, 1, SPP_MAP_ALL), 0);
	reclaim_idle();
	assert_int_equal(level_at(PAGE_P), 2);
	ept.bbm = true;
	model_start(SZ_2M);
	assert_int_equal(set_pages(PAGE_P >> PAGE_SHIFT, 1, 0x0000ffff), 0);
	model_end();
	assert_int_equal(m.invept_by_cpu0, 2);
	check_ordering("split");
}

/* While a split waits for its shootdown, an access to the range is an EPT violation that is
 * retried: nothing injected, the vCPU goes on. */
static void test_violation_while_unlinked(void **state)
{
	(void)state;
	spin_lock(&ept.lock);
	assert_int_equal(ept_split(&ept, PAGE_P, 1), 0);
	assert_null(ept_leaf(&ept, PAGE_Q, NULL));
	assert_int_equal(ept.npending, 1);
	spin_unlock(&ept.lock);

	static const u64 quals[] = { EPT_QUAL_FETCH, EPT_QUAL_READ, EPT_QUAL_WRITE,
				     EPT_QUAL_WRITE | EPT_QUAL_GLA_VALID | EPT_QUAL_GLA_XLATE };
	for (unsigned i = 0; i < ARRAY_SIZE(quals); i++) {
		assert_true(ept_violation_stale(&ept, PAGE_Q + 8, quals[i] & 7));
		fake_vmcs_set(VMCS_RO_EXIT_QUALIFICATION, quals[i]);
		fake_vmcs_set(VMCS_RO_GUEST_PHYS_ADDR, PAGE_Q + 8);
		fake_vmcs_set(VMCS_RO_GUEST_LINEAR_ADDR, 0x400000 + 8);
		fake_vmcs_set(VMCS_RO_IDT_VECTORING_INFO, 0);
		fake_vmcs_set(VMCS_CTRL_ENTRY_INTR_INFO, 0);
		fake_vmcs_set(VMCS_GUEST_RIP, 0x1000);
		cpu1.event_injected = false;
		fake_cpu_local_set(&cpu1);
		exit_ept_violation(&cpu1);
		fake_cpu_local_set(&cpu0);
		assert_false(cpu1.halted);
		assert_false(cpu1.event_injected);
		assert_int_equal(fake_vmcs_get(VMCS_CTRL_ENTRY_INTR_INFO), 0);
		assert_int_equal(fake_vmcs_get(VMCS_GUEST_RIP), 0x1000);
	}
	spin_lock(&ept.lock);
	assert_int_equal(ept_merge_finish(&ept), 1);
	spin_unlock(&ept.lock);
	assert_int_equal(level_at(PAGE_Q), 1);
	assert_int_equal(level_at(BLOCK), 1);
}

/* A split of a 1 GiB leaf down to 4 KiB is one pending change (the new PD and PT are built
 * unlinked); destroying the EPT with it pending frees both. */
static void test_split_from_1g_pending(void **state)
{
	(void)state;
	struct ept e2;
	hpa_t ff = pmm_alloc_page();
	u64 free0 = pmm_free_count();

	memset(hpa_to_ptr(ff), 0xff, PAGE_SIZE);
	struct ept_params ep = { .phys_bits = PHYS_BITS, .has_1g = true, .mtrr = &mtrr,
				 .hv_base = HV_BASE, .hv_size = HV_SIZE, .ff_page = ff };
	assert_int_equal(ept_build_identity(&e2, &ep), 0);
	e2.bbm = true;
	u64 t0 = e2.tables;
	int level;
	assert_non_null(ept_leaf(&e2, 6 * GiB, &level));
	assert_int_equal(level, 3);
	assert_int_equal(ept_split(&e2, 6 * GiB + 0x5000, 1), 0);
	assert_null(ept_leaf(&e2, 6 * GiB + GiB - 1, NULL)); /* the whole GiB is unlinked */
	assert_int_equal(e2.npending, 1);
	assert_int_equal(e2.pending[0].size, GiB);
	assert_int_equal(e2.tables, t0 + 2);
	assert_non_null(ept_pending_table(&e2, e2.pending[0].entry));
	ept_merge_cancel(&e2); /* a split stays pending */
	assert_int_equal(e2.npending, 1);
	assert_int_equal(ept_merge_finish(&e2), 1);
	assert_non_null(ept_leaf(&e2, 6 * GiB + 0x5000, &level));
	assert_int_equal(level, 1);
	assert_non_null(ept_leaf(&e2, 6 * GiB + MiB(6), &level));
	assert_int_equal(level, 2);
	/* Pending at destroy: nothing leaks. */
	assert_int_equal(ept_split(&e2, 7 * GiB + 0x5000, 1), 0);
	assert_int_equal(e2.npending, 1);
	ept_destroy(&e2);
	assert_int_equal(e2.tables, 0);
	assert_int_equal(pmm_free_count(), free0);
	pmm_free_page(ff);
}

/* A guest MTRR write that makes part of a 2 MiB leaf UC: the leaf is split and its pages
 * retyped (page size and memory type change together, the erratum's case). */
static void test_affected_mtrr_split(void **state)
{
	(void)state;
	struct mtrr_state boot = mtrr; /* WB everywhere, two variable ranges unused */

	boot.var_count = 2;
	fake_msr_set(MSR_IA32_MTRRCAP, 2);
	mtrr_guest_init(&boot, &ept);
	assert_int_equal(level_at(PAGE_P), 2);
	model_start(SZ_2M);
	const u64 amask = ((1ULL << PHYS_BITS) - 1) & ~0xfffULL;
	assert_int_equal(mtrr_guest_write(MSR_IA32_MTRR_PHYSBASE0, (PAGE_P & ~0xfffULL) | MT_UC), 0);
	assert_int_equal(mtrr_guest_write(MSR_IA32_MTRR_PHYSMASK0, amask | MTRR_PHYSMASK_VALID), 0);
	model_end();
	assert_int_equal(level_at(PAGE_P), 1);
	assert_int_equal((*ept_leaf(&ept, PAGE_P, NULL) >> EPT_MT_SHIFT) & 7, MT_UC);
	assert_int_equal((*ept_leaf(&ept, PAGE_Q, NULL) >> EPT_MT_SHIFT) & 7, MT_WB);
	assert_int_equal(ept.npending, 0);
	check_ordering("MTRR split");
	assert_true(m.invept_by_cpu0 >= 2); /* the split's shootdown and the retype's */
	if (m.shootdown_unlocked)
		fail_msg("%u of %u shootdowns of the MTRR write ran without spp.lock", m.shootdown_unlocked,
			 m.invept_by_cpu0);
}

/* One MTRR write that makes 64 2 MiB leaves non-uniform (a mask that repeats the range in
 * every block of 128 MiB): more splits than wait for one shootdown (EPT_MERGE_MAX); each is
 * still made, none falls back to UC for the whole block. */
static void test_affected_mtrr_many_splits(void **state)
{
	(void)state;
	struct mtrr_state boot = mtrr;
	const u64 base = 8 * GiB, amask = ((1ULL << PHYS_BITS) - 1) & ~0xfffULL;
	const u64 mask = (amask & ~(MiB(128) - 1)) | (SZ_2M - PAGE_SIZE); /* bits 12-20, 27+ */

	boot.var_count = 2;
	fake_msr_set(MSR_IA32_MTRRCAP, 2);
	mtrr_guest_init(&boot, &ept);
	assert_int_equal(mtrr_guest_write(MSR_IA32_MTRR_PHYSBASE0, (base + 0x5000) | MT_UC), 0);
	assert_int_equal(mtrr_guest_write(MSR_IA32_MTRR_PHYSMASK0, mask | MTRR_PHYSMASK_VALID), 0);
	assert_int_equal(ept.npending, 0);
	for (u64 b = 0; b < 64; b++) {
		u64 a = base + b * SZ_2M;
		int level;
		u64 *e = ept_leaf(&ept, a + 0x5000, &level);

		assert_non_null(e);
		if (level != 1 || ((*e >> EPT_MT_SHIFT) & 7) != MT_UC)
			fail_msg("block %llu: level %d type %llu, expected a 4 KiB UC leaf", (unsigned long long)b, level,
				 (unsigned long long)((*e >> EPT_MT_SHIFT) & 7));
		e = ept_leaf(&ept, a + 0x6000, &level);
		assert_int_equal((*e >> EPT_MT_SHIFT) & 7, MT_WB);
	}
}

/* ---- the erratum rule ---- */

static void cpu_is(const char vendor[12], u32 max, u32 fms, bool has_arch_cap)
{
	u32 w[3];

	fake_reset();
	memcpy(w, vendor, 12);
	fake_cpuid_set(0, 0, max, w[0], w[2], w[1]);
	fake_cpuid_set(1, 0, fms, 0, 0, 0);
	fake_cpuid_set(7, 0, 0, 0, 0, has_arch_cap ? 1U << 29 : 0);
}

static void test_erratum_rule(void **state)
{
	(void)state;
	/* Skylake-SP (family 6 model 0x55), no ARCH_CAPABILITIES: affected. */
	cpu_is("GenuineIntel", 0x16, 0x50654, false);
	assert_true(vmx_pschange_mc_affected());
	/* Cascade Lake with ARCH_CAPABILITIES, PSCHANGE_MC_NO clear: affected. */
	cpu_is("GenuineIntel", 0x16, 0x50657, true);
	fake_msr_set(MSR_IA32_ARCH_CAPABILITIES, 0x2b);
	assert_true(vmx_pschange_mc_affected());
	/* Enumerated but unreadable: affected. */
	cpu_is("GenuineIntel", 0x16, 0x50657, true);
	assert_true(vmx_pschange_mc_affected());
	/* Ice Lake client (model 0x7e), PSCHANGE_MC_NO set: not affected. */
	cpu_is("GenuineIntel", 0x1b, 0x706e5, true);
	fake_msr_set(MSR_IA32_ARCH_CAPABILITIES, ARCH_CAP_PSCHANGE_MC_NO | 0xeb);
	assert_false(vmx_pschange_mc_affected());
	/* The bit without the CPUID enumeration does not count. */
	cpu_is("GenuineIntel", 0x16, 0x706e5, false);
	fake_msr_set(MSR_IA32_ARCH_CAPABILITIES, ARCH_CAP_PSCHANGE_MC_NO);
	assert_true(vmx_pschange_mc_affected());
	/* Goldmont (model 0x5c): documented as not affected. */
	cpu_is("GenuineIntel", 0x15, 0x506c9, false);
	assert_false(vmx_pschange_mc_affected());
	/* Max leaf below 7: no ARCH_CAPABILITIES; a Core part is affected. */
	cpu_is("GenuineIntel", 0x5, 0x206a7, true);
	fake_msr_set(MSR_IA32_ARCH_CAPABILITIES, ARCH_CAP_PSCHANGE_MC_NO);
	assert_true(vmx_pschange_mc_affected());
	/* Not Intel. */
	cpu_is("AuthenticAMD", 0x10, 0x800f12, false);
	assert_false(vmx_pschange_mc_affected());
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_affected_split_merge, setup_hw_bbm, teardown),
		cmocka_unit_test_setup_teardown(test_affected_split_merge, setup_sw_bbm, teardown),
		cmocka_unit_test_setup_teardown(test_unaffected_fast_path, setup_hw_fast, teardown),
		cmocka_unit_test_setup_teardown(test_violation_while_unlinked, setup_hw_bbm, teardown),
		cmocka_unit_test_setup_teardown(test_split_from_1g_pending, setup_hw_bbm, teardown),
		cmocka_unit_test_setup_teardown(test_affected_mtrr_split, setup_hw_bbm, teardown),
		cmocka_unit_test_setup_teardown(test_affected_mtrr_many_splits, setup_hw_bbm, teardown),
		cmocka_unit_test(test_erratum_rule),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
