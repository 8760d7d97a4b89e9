/*
 * hostile_mtrr.c: the guest's MTRRs are virtual (issue 9: "MTRRs (fixed, variable, default
 * type): virtualized. Guest writes change the EPT memory types, never the host's MTRRs").
 * Boots the test build (build/tessel-test.efi): HC_TEST_EPT_LEAF shows the EPT leaf (memory
 * type in bits 5:3, level) that maps an address.
 *
 *   1. MTRRCAP and MTRRdefType read; writing MTRRCAP raises #GP;
 *   2. invalid writes raise #GP and change nothing (reserved type encodings, reserved bits,
 *      a base above MAXPHYADDR, a variable range beyond MTRRCAP.VCNT, read or written, a
 *      reserved type in a fixed range);
 *   3. a free variable range programmed UC over one 4 KiB page of WB memory reads back as
 *      written, the page's EPT leaf becomes UC at 4 KiB, its neighbours keep their type;
 *   4. the page still reads and writes correctly;
 *   5. the Linux boot sequence (E cleared, every MTRR rewritten with its value, E set) leaves
 *      every value and the page's type as they were;
 *   6. the range removed: the values read back and the page's type is the original again;
 *   then the common hostile post-checks (hostile.h).
 */
#include "hostile.h"

#define HC_TEST_EPT_LEAF 0x7e02u
#define MTRRCAP 0xfeu
#define DEFTYPE 0x2ffu
#define PHYSBASE(n) (0x200u + 2u * (n))
#define PHYSMASK(n) (0x201u + 2u * (n))
#define DEF_E (1ull << 11)
#define MASK_V (1ull << 11)
#define POINTS (6 + HOSTILE_POSTCHECK_POINTS)

static const uint32_t fixed_msrs[11] = { 0x250, 0x258, 0x259, 0x268, 0x269, 0x26a, 0x26b, 0x26c, 0x26d, 0x26e, 0x26f };

struct msr_op { uint32_t msr; int write; uint64_t v; };

static void do_msr(void *arg)
{
	struct msr_op *o = arg;
	if (o->write)
		wrmsr(o->msr, o->v);
	else
		o->v = rdmsr(o->msr);
}

/* 0 if the access completed, else 1 + the vector it raised. */
static int msr_try(uint32_t msr, int write, uint64_t *v)
{
	struct msr_op o = { msr, write, write ? *v : 0 };
	struct trap_info t;
	if (trap_call(TRAP_ALL, do_msr, &o, &t))
		return 1 + (int)t.vector;
	if (!write)
		*v = o.v;
	return 0;
}

static int gp_write(uint32_t msr, uint64_t v) { return msr_try(msr, 1, &v) == 1 + 13; }

/* EPT memory type of gpa (0xff if the hook failed), and the leaf's level. */
static unsigned ept_type(uint64_t gpa, unsigned *level)
{
	struct tessel_hc_out o = { 0, 0, 0 };
	int64_t s = tessel_vmcall(HC_TEST_EPT_LEAF, gpa, 0, 0, 0, &o);
	*level = (unsigned)o.rcx;
	return s ? 0xffu : (unsigned)((o.rbx >> 3) & 7);
}

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *st)
{
	struct hostile_guard g;
	uint64_t cap = 0, def = 0, v, var_save[64], fix_save[11];
	unsigned vcnt, fix, lv = 0, lv2 = 0, lv3 = 0;

	spp_start(image, st, POINTS);
	hostile_guard_setup(&g);
	uint32_t eax = 0x80000008u, ebx, ecx = 0, edx;
	__asm__ __volatile__("cpuid" : "+a"(eax), "=b"(ebx), "+c"(ecx), "=d"(edx));
	unsigned pb = eax & 0xff; /* MAXPHYADDR */
	uint64_t amask = ((1ull << pb) - 1) & ~0xfffull;

	int r1 = msr_try(MTRRCAP, 0, &cap), r2 = msr_try(DEFTYPE, 0, &def);
	vcnt = (unsigned)(cap & 0xff);
	fix = (cap >> 8) & 1;
	if (vcnt > 32)
		vcnt = 32;
	for (unsigned i = 0; i < 2 * vcnt; i++)
		msr_try(0x200 + i, 0, &var_save[i]);
	for (unsigned i = 0; fix && i < 11; i++)
		msr_try(fixed_msrs[i], 0, &fix_save[i]);
	tap_diag("MTRRCAP 0x%llx (VCNT %u, FIX %u, WC %u), MTRRdefType 0x%llx, MAXPHYADDR %u",
		 (unsigned long long)cap, vcnt, fix, (unsigned)((cap >> 10) & 1), (unsigned long long)def, pb);
	v = cap ^ 0x1;
	int capw = msr_try(MTRRCAP, 1, &v);
	uint64_t cap2 = 0;
	msr_try(MTRRCAP, 0, &cap2);
	tap_ok(r1 == 0 && r2 == 0 && vcnt >= 1 && (def & DEF_E) && capw == 1 + 13 && cap2 == cap,
	       "MTRRCAP and MTRRdefType read (%d, %d); writing MTRRCAP raises #GP (got %s) and changes nothing",
	       r1, r2, capw ? trap_name((uint64_t)capw - 1) : "no fault");

	/* A free variable range for the valid writes. */
	unsigned k = vcnt;
	for (unsigned i = 0; i < vcnt && k == vcnt; i++)
		if (!(var_save[2 * i + 1] & MASK_V))
			k = i;
	unsigned kk = k < vcnt ? k : 0;

	int bad = 0;
	struct { uint32_t msr; uint64_t v; const char *what; } inv[] = {
		{ DEFTYPE, (def & ~0xffull) | 2, "MTRRdefType type 2" },
		{ DEFTYPE, (def & ~0xffull) | 7, "MTRRdefType type 7" },
		{ DEFTYPE, def | (1ull << 9), "MTRRdefType bit 9" },
		{ DEFTYPE, def | (1ull << 12), "MTRRdefType bit 12" },
		{ PHYSBASE(kk), 0x3, "PHYSBASE type 3" },
		{ PHYSBASE(kk), (1ull << 8) | 6, "PHYSBASE bit 8" },
		{ PHYSBASE(kk), (1ull << pb) | 6, "PHYSBASE above MAXPHYADDR" },
		{ PHYSMASK(kk), 1, "PHYSMASK bit 0" },
		{ PHYSMASK(kk), (1ull << 63) | MASK_V, "PHYSMASK bit 63" },
		{ PHYSBASE(vcnt), 6, "PHYSBASE beyond VCNT" },
		{ PHYSMASK(vcnt), MASK_V, "PHYSMASK beyond VCNT" },
		{ 0x250, 0x0606060606060602ull, "FIX64K with type 2" },
	};
	for (unsigned i = 0; i < sizeof(inv) / sizeof(inv[0]); i++) {
		if (inv[i].msr == 0x250 && !fix)
			continue;
		if (!gp_write(inv[i].msr, inv[i].v)) {
			bad++;
			tap_diag("%s (0x%llx to MSR 0x%x) did not raise #GP", inv[i].what, (unsigned long long)inv[i].v,
				 inv[i].msr);
		}
	}
	if (msr_try(PHYSBASE(vcnt), 0, &v) != 1 + 13) {
		bad++;
		tap_diag("reading PHYSBASE%u (beyond VCNT) did not raise #GP", vcnt);
	}
	int same = 1;
	msr_try(DEFTYPE, 0, &v);
	same &= v == def;
	for (unsigned i = 0; i < 2 * vcnt; i++) {
		msr_try(0x200 + i, 0, &v);
		same &= v == var_save[i];
	}
	for (unsigned i = 0; fix && i < 11; i++) {
		msr_try(fixed_msrs[i], 0, &v);
		same &= v == fix_save[i];
	}
	tap_ok(bad == 0 && same, "invalid MTRR writes raise #GP (%d did not) and change nothing (%s)", bad,
	       same ? "every value as before" : "a value changed");

	/* Valid: one 4 KiB page of a 2 MiB block of RAM made UC. */
	uint8_t *blk = spp_block2m();
	uint8_t *page = blk ? blk + 0x100000 : 0;
	uint64_t pg = gpa_of(page);
	unsigned t_before = page ? ept_type(pg, &lv) : 0xff, lv_before = lv;
	unsigned t_next_before = page ? ept_type(pg + 0x1000, &lv) : 0xff;
	tap_diag("free variable range %u; page 0x%llx: EPT type %u at level %u before", k, (unsigned long long)pg,
		 t_before, lv_before);
	int ok3 = 0;
	if (page && k < vcnt) {
		uint64_t b = pg | 0 /* UC */, m = (~0xfffull & amask) | MASK_V, rb = 1, rm = 1;
		int w1 = msr_try(PHYSBASE(k), 1, &b), w2 = msr_try(PHYSMASK(k), 1, &m);
		msr_try(PHYSBASE(k), 0, &rb);
		msr_try(PHYSMASK(k), 0, &rm);
		unsigned t = ept_type(pg, &lv), tn = ept_type(pg + 0x1000, &lv2), tp = ept_type(pg - 0x1000, &lv3);
		tap_diag("after: page type %u level %u, next page %u level %u, previous %u", t, lv, tn, lv2, tp);
		ok3 = w1 == 0 && w2 == 0 && rb == b && rm == m && t == 0 && lv == 1 && tn == t_next_before &&
		      tp == t_next_before;
	}
	tap_ok(ok3, "a variable range UC over one page of WB memory reads back, and the page's EPT leaf is UC at "
	       "4 KiB, its neighbours unchanged (type %u)", t_next_before);
	int mem_ok = 0;
	if (page) {
		pat_fill(page, PAGE, 0x3c);
		mem_ok = 1;
		for (unsigned i = 0; i < PAGE; i++)
			mem_ok &= page[i] == pat_byte(i, 0x3c);
	}
	tap_ok(mem_ok, "the UC page reads back what was written");

	/* Linux at boot: E cleared, everything rewritten with its value, E set. */
	int lin = 0;
	v = def & ~DEF_E;
	lin |= msr_try(DEFTYPE, 1, &v);
	uint64_t now[64];
	for (unsigned i = 0; i < 2 * vcnt; i++) {
		msr_try(0x200 + i, 0, &now[i]);
		lin |= msr_try(0x200 + i, 1, &now[i]);
	}
	for (unsigned i = 0; fix && i < 11; i++)
		lin |= msr_try(fixed_msrs[i], 1, &fix_save[i]);
	v = def;
	lin |= msr_try(DEFTYPE, 1, &v);
	int lsame = 1;
	for (unsigned i = 0; i < 2 * vcnt; i++) {
		msr_try(0x200 + i, 0, &v);
		lsame &= v == now[i];
	}
	msr_try(DEFTYPE, 0, &v);
	lsame &= v == def;
	unsigned t_after_linux = page ? ept_type(pg, &lv) : 0xff;
	tap_ok(lin == 0 && lsame && (k >= vcnt || t_after_linux == 0),
	       "the Linux sequence (E cleared, every MTRR rewritten, E set) keeps every value and the page's type (%u)",
	       t_after_linux);

	/* Restore. */
	int rs = 0;
	if (k < vcnt) {
		rs |= msr_try(PHYSMASK(k), 1, &var_save[2 * k + 1]);
		rs |= msr_try(PHYSBASE(k), 1, &var_save[2 * k]);
	}
	int rsame = 1;
	for (unsigned i = 0; i < 2 * vcnt; i++) {
		msr_try(0x200 + i, 0, &v);
		rsame &= v == var_save[i];
	}
	unsigned t_end = page ? ept_type(pg, &lv) : 0xff;
	tap_ok(rs == 0 && rsame && t_end == t_before, "after restoring, every MTRR reads as at the start and the page's "
	       "EPT type is the original again (%u, was %u)", t_end, t_before);

	hostile_postcheck(&g, "MTRR writes");
	guest_finish();
}
