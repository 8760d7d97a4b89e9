/*
 * Host tests for mm/mtrr_guest.c, the guest's virtual MTRRs, over the fake MSR table and a
 * real EPT (mm/ept.c) built from the same boot snapshot:
 *
 *   - reads answer from the virtual copy (MTRRCAP with the SMRR bit hidden; MSRs beyond
 *     VCNT #GP);
 *   - a variable range UC over WB memory inside a 1 GiB leaf: the leaves covering it become
 *     UC, split down to 4 KiB as needed, every other leaf keeps its type, every leaf's type
 *     agrees with mtrr_range_uniform() over the new state, permissions and the 0xFF pages
 *     untouched; an INVEPT follows;
 *   - invalid writes (MTRRCAP, reserved bits, reserved types, WC without MTRRCAP.WC, MSRs
 *     beyond VCNT, fixed ranges without MTRRCAP.FIX) return -EINVAL and change nothing: not
 *     the value read back, not one EPT entry, no INVEPT;
 *   - the Linux sequence (E cleared, the same values rewritten, E set) costs no EPT walk and
 *     no INVEPT; a change made while E = 0 is applied when E is set again;
 *   - the host's MTRRs (the fake MSR table) are never written.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include <arch/cpu.h>
#include <arch/ept.h>
#include <arch/msr.h>
#include <hw.h>
#include "hv/percpu.h"
#include "mm/ept.h"
#include "mm/mtrr.h"
#include "mm/mtrr_guest.h"
#include "mm/pmm.h"

#define MiB (1ULL << 20)
#define GiB (1ULL << 30)
#define WIN FAKE_PHYS_BASE /* 4 GiB: the hypervisor's region */
#define WIN_SIZE (8 * MiB)
#define PB 36
#define AMASK (((1ULL << PB) - 1) & ~0xfffULL)
#define NVAR 8

static struct mtrr_state boot;
static struct ept ept;
static hpa_t ff;
static struct percpu cpu;
static u64 host_msrs[0x300];
static const u32 fixed_msrs[11] = { 0x250, 0x258, 0x259, 0x268, 0x269, 0x26a, 0x26b, 0x26c, 0x26d, 0x26e, 0x26f };

static bool is_mtrr_msr(u32 m)
{
	return m == MSR_IA32_MTRRCAP || m == MSR_IA32_MTRR_DEF_TYPE || (m >= 0x200 && m < 0x200 + 2 * NVAR) ||
	       (m >= 0x250 && m <= 0x26f);
}

static void host_msr_snapshot(u64 *out)
{
	for (u32 m = 0; m < 0x300; m++)
		out[m] = is_mtrr_msr(m) && fake_msr_isset(m) ? fake_msr_get(m) : 0;
}

static void check_host_untouched(void)
{
	u64 now[0x300];

	host_msr_snapshot(now);
	for (u32 m = 0; m < 0x300; m++)
		if (now[m] != host_msrs[m])
			fail_msg("host MSR 0x%x changed: 0x%llx -> 0x%llx", m, (unsigned long long)host_msrs[m],
				 (unsigned long long)now[m]);
}

/* The host: 8 variable ranges, fixed ranges on, WC supported, SMRR present; WB by default,
 * UC from 3 GiB to 4 GiB, fixed: WB below 640 KiB, UC A0000-BFFFF, WP C0000-FFFFF. */
static int setup_caps(u64 cap)
{
	fake_reset();
	fake_phys_init(WIN, WIN_SIZE);
	pmm_init(hpa(WIN), WIN_SIZE);
	fake_msr_set(MSR_IA32_MTRRCAP, cap);
	fake_msr_set(MSR_IA32_MTRR_DEF_TYPE, MTRR_DEF_E | MTRR_DEF_FE | MT_WB);
	for (int i = 0; i < 11; i++) {
		u64 t = i < 2 ? MT_WB : i < 3 ? MT_UC : MT_WP;
		fake_msr_set(fixed_msrs[i], t * 0x0101010101010101ULL);
	}
	for (u32 i = 0; i < NVAR; i++) {
		fake_msr_set(MSR_IA32_MTRR_PHYSBASE0 + 2 * i, i == 0 ? (3 * GiB) | MT_UC : 0);
		fake_msr_set(MSR_IA32_MTRR_PHYSMASK0 + 2 * i, i == 0 ? (~(GiB - 1) & AMASK) | MTRR_PHYSMASK_VALID : 0);
	}
	mtrr_read(&boot, PB);
	ff = pmm_alloc_page();
	memset(hpa_to_ptr(ff), 0xff, PAGE_SIZE);
	struct ept_params p = { .phys_bits = PB, .has_1g = true, .mtrr = &boot, .hv_base = WIN,
				.hv_size = WIN_SIZE, .ff_page = ff };
	if (ept_build_identity(&ept, &p))
		return -1;
	memset(&cpu, 0, sizeof(cpu));
	cpu.self = &cpu;
	cpu.launched = true;
	percpu_array[0] = &cpu;
	percpu_count = 1;
	fake_cpu_local_set(&cpu);
	mtrr_guest_init(&boot, &ept);
	host_msr_snapshot(host_msrs);
	return 0;
}

static int setup(void **s) { (void)s; return setup_caps(NVAR | MTRRCAP_FIX | MTRRCAP_WC | (1ULL << 11)); }
static int setup_nowc_nofix(void **s) { (void)s; return setup_caps(NVAR); }
static int teardown(void **s) { (void)s; ept_destroy(&ept); return 0; }

/* FNV hash of every entry of every table: "nothing changed". */
static u64 ept_hash_table(u64 tab_hpa, int level, u64 h)
{
	const u64 *t = hpa_to_ptr(hpa(tab_hpa));

	for (int i = 0; i < 512; i++) {
		h = (h ^ t[i]) * 0x100000001b3ULL;
		if ((t[i] & EPT_RWX) && level > 1 && !(level <= 3 && (t[i] & EPT_LARGE)))
			h = ept_hash_table(t[i] & EPT_ADDR_MASK, level - 1, h);
	}
	return h;
}
static u64 ept_hash(void) { return ept_hash_table(ept.pml4.v, 4, 0xcbf29ce484222325ULL); }

/* Every identity leaf's type is what the applied state gives its whole range; the region's
 * pages still map the 0xFF page, read-only, IPAT. Returns the number of leaves. */
static u64 check_leaves_table(u64 tab_hpa, int level, u64 base, const struct mtrr_state *s)
{
	const u64 *t = hpa_to_ptr(hpa(tab_hpa));
	u64 sz = EPT_LEVEL_SIZE(level), n = 0;

	for (u64 i = 0; i < 512; i++) {
		u64 a = base + i * sz, e = t[i];
		u8 type;

		if (a >> PB)
			break;
		if (!(e & EPT_RWX))
			fail_msg("gpa 0x%llx not mapped", (unsigned long long)a);
		if (level > 1 && !(level <= 3 && (e & EPT_LARGE))) {
			n += check_leaves_table(e & EPT_ADDR_MASK, level - 1, a, s);
			continue;
		}
		n++;
		if (a >= WIN && a < WIN + WIN_SIZE) {
			assert_int_equal(level, 1);
			assert_int_equal(e & EPT_ADDR_MASK, ff.v);
			assert_int_equal(e & EPT_W, 0);
			assert_true(e & EPT_IGNORE_PAT);
			continue;
		}
		assert_int_equal(e & EPT_ADDR_MASK, a);
		assert_int_equal(e & EPT_RWX, EPT_RWX);
		if (!mtrr_range_uniform(s, a, sz, &type))
			fail_msg("leaf at 0x%llx (level %d) covers a range with mixed types", (unsigned long long)a, level);
		if (((e >> EPT_MT_SHIFT) & 7) != type)
			fail_msg("leaf at 0x%llx (level %d) type %llu, MTRRs say %u", (unsigned long long)a, level,
				 (unsigned long long)((e >> EPT_MT_SHIFT) & 7), type);
	}
	return n;
}
static u64 check_leaves(void) { return check_leaves_table(ept.pml4.v, 4, 0, mtrr_guest_applied()); }

static u8 type_at(u64 gpa, int *level)
{
	u64 *e = ept_leaf(&ept, gpa, level);
	assert_non_null(e);
	return (u8)((*e >> EPT_MT_SHIFT) & 7);
}

static void test_reads(void **state)
{
	(void)state;
	u64 v;

	assert_int_equal(mtrr_guest_read(MSR_IA32_MTRRCAP, &v), 0);
	assert_int_equal(v, NVAR | MTRRCAP_FIX | MTRRCAP_WC); /* SMRR hidden */
	assert_int_equal(mtrr_guest_read(MSR_IA32_MTRR_DEF_TYPE, &v), 0);
	assert_int_equal(v, MTRR_DEF_E | MTRR_DEF_FE | MT_WB);
	assert_int_equal(mtrr_guest_read(MSR_IA32_MTRR_PHYSBASE0, &v), 0);
	assert_int_equal(v, (3 * GiB) | MT_UC);
	assert_int_equal(mtrr_guest_read(MSR_IA32_MTRR_PHYSMASK0, &v), 0);
	assert_int_equal(v, (~(GiB - 1) & AMASK) | MTRR_PHYSMASK_VALID);
	assert_int_equal(mtrr_guest_read(0x259, &v), 0);
	assert_int_equal(v, MT_UC * 0x0101010101010101ULL);
	assert_int_equal(mtrr_guest_read(MSR_IA32_MTRR_PHYSBASE0 + 2 * NVAR, &v), -EINVAL);
	assert_int_equal(mtrr_guest_read(MSR_IA32_MTRR_PHYSMASK0 + 2 * NVAR, &v), -EINVAL);
	assert_true(mtrr_guest_is_mtrr(0x2ff) && mtrr_guest_is_mtrr(0x26f) && !mtrr_guest_is_mtrr(0x277));
	check_leaves();
}

static void test_uc_range_splits(void **state)
{
	(void)state;
	const u64 r = GiB + 6 * MiB + 0x5000; /* one 4 KiB page inside the 1 GiB leaf at 1 GiB */
	int level;
	u64 v, inv0 = fake_invept_count(), t0 = ept.tables;

	assert_int_equal(type_at(r, &level), MT_WB);
	assert_int_equal(level, 3);
	assert_int_equal(type_at(3 * GiB + 5, &level), MT_UC);
	/* Base first (mask not valid yet): nothing to retype, no INVEPT. */
	assert_int_equal(mtrr_guest_write(MSR_IA32_MTRR_PHYSBASE0 + 2, r | MT_UC), 0);
	assert_int_equal(fake_invept_count(), inv0);
	assert_int_equal(mtrr_guest_write(MSR_IA32_MTRR_PHYSMASK0 + 2, (~0xfffULL & AMASK) | MTRR_PHYSMASK_VALID), 0);
	assert_true(fake_invept_count() > inv0);
	assert_int_equal(type_at(r, &level), MT_UC);
	assert_int_equal(level, 1);
	assert_int_equal(type_at(r + 0x1000, &level), MT_WB);
	assert_int_equal(level, 1);
	assert_int_equal(type_at(r - 0x1000, &level), MT_WB);
	assert_int_equal(type_at(GiB + 8 * MiB, &level), MT_WB);
	assert_int_equal(level, 2);
	assert_int_equal(type_at(2 * GiB, &level), MT_WB);
	assert_int_equal(level, 3);
	assert_int_equal(type_at(3 * GiB + 5, &level), MT_UC);
	assert_int_equal(ept.tables, t0 + 2); /* one PD, one PT */
	check_leaves();
	assert_int_equal(mtrr_guest_read(MSR_IA32_MTRR_PHYSBASE0 + 2, &v), 0);
	assert_int_equal(v, r | MT_UC);

	/* A 2 MiB WT range over 2 MiB leaves: retyped without a split. */
	assert_int_equal(mtrr_guest_write(MSR_IA32_MTRR_PHYSBASE0 + 4, (GiB + 20 * MiB) | MT_WT), 0);
	assert_int_equal(mtrr_guest_write(MSR_IA32_MTRR_PHYSMASK0 + 4, (~(2 * MiB - 1) & AMASK) | MTRR_PHYSMASK_VALID), 0);
	assert_int_equal(type_at(GiB + 21 * MiB, &level), MT_WT);
	assert_int_equal(level, 2);
	assert_int_equal(ept.tables, t0 + 2);
	check_leaves();

	/* The default type: everything not covered changes. */
	assert_int_equal(mtrr_guest_write(MSR_IA32_MTRR_DEF_TYPE, MTRR_DEF_E | MTRR_DEF_FE | MT_WT), 0);
	assert_int_equal(type_at(2 * GiB, &level), MT_WT);
	assert_int_equal(type_at(3 * GiB, &level), MT_UC);
	assert_int_equal(type_at(0xa0000, &level), MT_UC); /* fixed range */
	check_leaves();
	/* Fixed ranges off: below 1 MiB the variable ranges and the default decide. */
	assert_int_equal(mtrr_guest_write(MSR_IA32_MTRR_DEF_TYPE, MTRR_DEF_E | MT_WB), 0);
	assert_int_equal(type_at(0xa0000, &level), MT_WB);
	check_leaves();
	/* The range removed: WB again (the leaves stay split). */
	assert_int_equal(mtrr_guest_write(MSR_IA32_MTRR_PHYSMASK0 + 2, 0), 0);
	assert_int_equal(type_at(r, &level), MT_WB);
	check_leaves();
	check_host_untouched();
}

static void test_invalid_writes(void **state)
{
	(void)state;
	static const struct { u32 msr; u64 v; } bad[] = {
		{ MSR_IA32_MTRRCAP, NVAR },                                   /* read-only */
		{ MSR_IA32_MTRR_DEF_TYPE, MTRR_DEF_E | 2 },                    /* reserved type */
		{ MSR_IA32_MTRR_DEF_TYPE, MTRR_DEF_E | 7 },
		{ MSR_IA32_MTRR_DEF_TYPE, MTRR_DEF_E | 0x16 },                 /* >= 8 */
		{ MSR_IA32_MTRR_DEF_TYPE, MTRR_DEF_E | (1ULL << 9) | MT_WB },  /* reserved bit */
		{ MSR_IA32_MTRR_DEF_TYPE, MTRR_DEF_E | (1ULL << 12) | MT_WB },
		{ MSR_IA32_MTRR_PHYSBASE0 + 2, (2 * GiB) | 3 },
		{ MSR_IA32_MTRR_PHYSBASE0 + 2, (2 * GiB) | (1ULL << 8) | MT_UC },
		{ MSR_IA32_MTRR_PHYSBASE0 + 2, (1ULL << PB) | MT_UC },         /* above MAXPHYADDR */
		{ MSR_IA32_MTRR_PHYSMASK0 + 2, (~(GiB - 1) & AMASK) | MTRR_PHYSMASK_VALID | 1 },
		{ MSR_IA32_MTRR_PHYSMASK0 + 2, (1ULL << 63) | MTRR_PHYSMASK_VALID },
		{ MSR_IA32_MTRR_PHYSBASE0 + 2 * NVAR, MT_UC },                 /* beyond VCNT */
		{ MSR_IA32_MTRR_PHYSMASK0 + 2 * NVAR, MTRR_PHYSMASK_VALID },
		{ 0x250, 0x0606060606060602ULL },                              /* one reserved field */
		{ 0x26f, 0x0806060606060606ULL },
	};
	u64 h = ept_hash(), inv0 = fake_invept_count(), before[0x300], v;

	for (u32 m = 0; m < 0x300; m++)
		before[m] = is_mtrr_msr(m) && mtrr_guest_read(m, &v) == 0 ? v : 0xdead;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		if (mtrr_guest_write(bad[i].msr, bad[i].v) != -EINVAL)
			fail_msg("write 0x%llx to MSR 0x%x accepted", (unsigned long long)bad[i].v, bad[i].msr);
	for (u32 m = 0; m < 0x300; m++)
		if (is_mtrr_msr(m))
			assert_int_equal(mtrr_guest_read(m, &v) == 0 ? v : 0xdead, before[m]);
	assert_int_equal(ept_hash(), h);
	assert_int_equal(fake_invept_count(), inv0);
	/* WC is valid here (MTRRCAP.WC): accepted. */
	assert_int_equal(mtrr_guest_write(MSR_IA32_MTRR_PHYSBASE0 + 2, (2 * GiB) | MT_WC), 0);
	check_host_untouched();
}

/* Without MTRRCAP.WC and .FIX: WC is a reserved type, the fixed-range MSRs do not exist. */
static void test_invalid_without_wc_fix(void **state)
{
	(void)state;
	u64 v, h = ept_hash();

	assert_int_equal(mtrr_guest_read(MSR_IA32_MTRRCAP, &v), 0);
	assert_int_equal(v, NVAR);
	assert_int_equal(mtrr_guest_write(MSR_IA32_MTRR_PHYSBASE0 + 2, (2 * GiB) | MT_WC), -EINVAL);
	assert_int_equal(mtrr_guest_write(MSR_IA32_MTRR_DEF_TYPE, MTRR_DEF_E | MT_WC), -EINVAL);
	assert_int_equal(mtrr_guest_read(0x250, &v), -EINVAL);
	assert_int_equal(mtrr_guest_write(0x250, 0x0606060606060606ULL), -EINVAL);
	assert_int_equal(ept_hash(), h);
	check_leaves();
	check_host_untouched();
}

/* Linux at boot, on every CPU: E cleared, the same values rewritten, E set again. */
static void test_linux_sequence_and_deferral(void **state)
{
	(void)state;
	u64 v, def, h = ept_hash(), inv0 = fake_invept_count();
	int level;

	assert_int_equal(mtrr_guest_read(MSR_IA32_MTRR_DEF_TYPE, &def), 0);
	for (int cpu_n = 0; cpu_n < 4; cpu_n++) {
		assert_int_equal(mtrr_guest_write(MSR_IA32_MTRR_DEF_TYPE, def & ~MTRR_DEF_E), 0);
		for (u32 i = 0; i < 2 * NVAR; i++) {
			assert_int_equal(mtrr_guest_read(MSR_IA32_MTRR_PHYSBASE0 + i, &v), 0);
			assert_int_equal(mtrr_guest_write(MSR_IA32_MTRR_PHYSBASE0 + i, v), 0);
		}
		for (int i = 0; i < 11; i++) {
			assert_int_equal(mtrr_guest_read(fixed_msrs[i], &v), 0);
			assert_int_equal(mtrr_guest_write(fixed_msrs[i], v), 0);
		}
		assert_int_equal(mtrr_guest_write(MSR_IA32_MTRR_DEF_TYPE, def), 0);
	}
	assert_int_equal(ept_hash(), h);
	assert_int_equal(fake_invept_count(), inv0);

	/* A change made while E = 0 is deferred, then applied when E is set. */
	assert_int_equal(mtrr_guest_write(MSR_IA32_MTRR_DEF_TYPE, def & ~MTRR_DEF_E), 0);
	assert_int_equal(mtrr_guest_write(MSR_IA32_MTRR_PHYSBASE0 + 2, (2 * GiB) | MT_WP), 0);
	assert_int_equal(mtrr_guest_write(MSR_IA32_MTRR_PHYSMASK0 + 2, (~(GiB - 1) & AMASK) | MTRR_PHYSMASK_VALID), 0);
	assert_int_equal(ept_hash(), h);
	assert_int_equal(fake_invept_count(), inv0);
	assert_int_equal(mtrr_guest_read(MSR_IA32_MTRR_DEF_TYPE, &v), 0);
	assert_int_equal(v, def & ~MTRR_DEF_E); /* reads back what was written */
	assert_int_equal(type_at(2 * GiB, &level), MT_WB);
	assert_int_equal(mtrr_guest_write(MSR_IA32_MTRR_DEF_TYPE, def), 0);
	assert_int_equal(type_at(2 * GiB, &level), MT_WP);
	assert_int_equal(level, 3);
	assert_true(fake_invept_count() > inv0);
	check_leaves();
	check_host_untouched();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_reads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_uc_range_splits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_invalid_writes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_invalid_without_wc_fix, setup_nowc_nofix, teardown),
		cmocka_unit_test_setup_teardown(test_linux_sequence_and_deferral, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
