/*
 * Host test of the guest write emulator (hv/emulate*.c) against the real processor.
 * Owns: a native-execution oracle (an executable page holding the instruction between a
 * stub that loads the 16 GPRs, RFLAGS and the YMM registers and one that stores them
 * back), random instruction generators per family (fixed seed; every addressing form the
 * decoder reports, FS/GS overrides, 32-bit address size), a flat and a sub-page-protecting
 * memory backend, and the checks: registers, the flags each instruction defines, RIP and
 * memory equal to the processor's (with protected bytes unchanged). 32- and 16-bit modes
 * are checked against a 64-bit equivalent (same operation on [reg] holding the linear
 * address the test built); stack and string forms there, errors and the REP budget by
 * hand-written cases.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <hw.h>
#include <arch/cpu.h>
#include "hv/emulate.h"
#include "hv/insn.h"

/* A guest with SSE and AVX enabled: CR4.OSFXSR, CR4.OSXSAVE, XCR0 = x87 | SSE | AVX. */
#define GUEST_SSE_CR4 (CR4_OSFXSR | CR4_OSXSAVE)
#define GUEST_SSE_XCR0 7ULL

#define ARCH_SET_GS_ 0x1001
#define ARCH_GET_FS_ 0x1003
#define ARCH_GET_GS_ 0x1004

#define F_CF 0x1ULL
#define F_PF 0x4ULL
#define F_AF 0x10ULL
#define F_ZF 0x40ULL
#define F_SF 0x80ULL
#define F_DF 0x400ULL
#define F_OF 0x800ULL
#define F_ARITH (F_CF | F_PF | F_AF | F_ZF | F_SF | F_OF)

/* ---- native execution oracle -------------------------------------------------------- */

struct cpu_state { u64 gpr[16]; u64 rflags; };
struct cpu_state native_st;
u64 native_host_rsp, native_target, native_scratch;
u32 native_use_avx;
u8 native_vec[16][32] __attribute__((aligned(32)));
void native_run(void);
void native_back(void);

#define LD(r, o) "\tmov " #o "(%rax), %" #r "\n"
#define ST(r, o) "\tmov %" #r ", " #o "(%rax)\n"
#define VL(n) "\tvmovdqu " #n "*32(%rax), %ymm" #n "\n"
__asm__(".text\n"
	".globl native_run\n.type native_run,@function\nnative_run:\n"
	"\tpush %rbx\n\tpush %rbp\n\tpush %r12\n\tpush %r13\n\tpush %r14\n\tpush %r15\n"
	"\tmov %rsp, native_host_rsp(%rip)\n"
	"\tcmpl $0, native_use_avx(%rip)\n\tje 1f\n"
	"\tlea native_vec(%rip), %rax\n"
	VL(0) VL(1) VL(2) VL(3) VL(4) VL(5) VL(6) VL(7)
	VL(8) VL(9) VL(10) VL(11) VL(12) VL(13) VL(14) VL(15)
	"1:\tpushq native_st+128(%rip)\n\tpopfq\n"
	"\tlea native_st(%rip), %rax\n"
	LD(rcx, 8) LD(rdx, 16) LD(rbx, 24) LD(rbp, 40) LD(rsi, 48) LD(rdi, 56)
	LD(r8, 64) LD(r9, 72) LD(r10, 80) LD(r11, 88) LD(r12, 96) LD(r13, 104) LD(r14, 112)
	LD(r15, 120) LD(rsp, 32) LD(rax, 0)
	"\tjmp *native_target(%rip)\n"
	".globl native_back\nnative_back:\n"
	"\tmov %rax, native_scratch(%rip)\n"
	"\tlea native_st(%rip), %rax\n"
	ST(rcx, 8) ST(rdx, 16) ST(rbx, 24) ST(rsp, 32) ST(rbp, 40) ST(rsi, 48) ST(rdi, 56)
	ST(r8, 64) ST(r9, 72) ST(r10, 80) ST(r11, 88) ST(r12, 96) ST(r13, 104) ST(r14, 112)
	ST(r15, 120)
	"\tmov native_scratch(%rip), %rcx\n\tmov %rcx, 0(%rax)\n"
	"\tmov native_host_rsp(%rip), %rsp\n"
	"\tpushfq\n\tpopq 128(%rax)\n\tcld\n"
	"\tcmpl $0, native_use_avx(%rip)\n\tje 2f\n\tvzeroupper\n2:\n"
	"\tpop %r15\n\tpop %r14\n\tpop %r13\n\tpop %r12\n\tpop %rbp\n\tpop %rbx\n\tret\n");

#define DATA_SIZE 0x4000UL          /* the data region after the code page */
#define SLED 64                     /* NOPs after the instruction: CALL lands here */

static u8 *code;                    /* executable page, below 2 GiB (MAP_32BIT) */
static u8 *data;                    /* code + 4096 */
static u64 prot_page;               /* data + 0x2000: the page with sub-page protection */
static u64 fs_base, gs_base, gs_orig;
static bool have_avx;

static void native_exec(const u8 *bytes, unsigned len, struct cpu_state *st, bool vec)
{
	u64 back = (u64)(uintptr_t)native_back;
	memcpy(code, bytes, len);
	memset(code + len, 0x90, SLED);
	memcpy(code + len + SLED, "\xff\x25\x00\x00\x00\x00", 6);
	memcpy(code + len + SLED + 6, &back, 8);
	native_st = *st;
	native_target = (u64)(uintptr_t)code;
	native_use_avx = vec && have_avx;
	native_run();
	*st = native_st;
}

/* ---- random ----------------------------------------------------------------------- */

static u64 rng_state = 0x243f6a8885a308d3ULL;

static u64 rnd(void)
{
	u64 x = rng_state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	return x * 0x2545f4914f6cdd1dULL;
}

static u64 rndn(u64 n) { return rnd() % n; }

static u64 msk(unsigned sz) { return sz >= 8 ? ~0ULL : (1ULL << (8 * sz)) - 1; }

/* Values that reach the flag edge cases often. */
static u64 rnd_val(void)
{
	static const u64 edge[] = { 0, 1, 2, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff,
				    0x7fffffff, 0x80000000, 0xffffffff, 0x7fffffffffffffffULL,
				    0x8000000000000000ULL, ~0ULL, 0xf, 0x10 };
	switch (rndn(4)) {
	case 0: return edge[rndn(ARRAY_SIZE(edge))];
	case 1: return edge[rndn(ARRAY_SIZE(edge))] + rndn(3) - 1;
	case 2: return rndn(256);
	default: return rnd();
	}
}

/* ---- memory backends ---------------------------------------------------------------- */

struct backend {
	u8 *mem;        /* stands for linear [base, base + DATA_SIZE) */
	u64 base;
	bool protect;   /* sub-page protection on prot_page */
	u32 map;        /* bit j = 1: sub-page j writable */
	unsigned touched;
	int fail_read, fail_write; /* fail the n-th call (1-based), 0 = never */
	int reads, writes;
};

static int be_read(void *ctx, u64 la, void *buf, unsigned n)
{
	struct backend *b = ctx;
	if (b->fail_read && ++b->reads == b->fail_read)
		return -EFAULT;
	if (la < b->base || la + n > b->base + DATA_SIZE)
		return -EFAULT;
	memcpy(buf, b->mem + (la - b->base), n);
	return 0;
}

static int be_write(void *ctx, u64 la, const void *buf, unsigned n)
{
	struct backend *b = ctx;
	if (b->fail_write && ++b->writes == b->fail_write)
		return -EFAULT;
	if (la < b->base || la + n > b->base + DATA_SIZE)
		return -EFAULT;
	for (unsigned i = 0; i < n; i++) {
		u64 a = la + i;
		if (b->protect && a >= prot_page && a < prot_page + PAGE_SIZE &&
		    !(b->map & (1u << ((a - prot_page) / 128)))) {
			b->touched++;
			continue;
		}
		b->mem[a - b->base] = ((const u8 *)buf)[i];
	}
	return 0;
}

/* ---- test cases ------------------------------------------------------------------- */

enum fam { F_ALU, F_MOV, F_XCHG, F_CMPXCHG, F_XADD, F_CX8, F_BT, F_SETCC, F_MOVNTI, F_PUSH,
	   F_CALL, F_STR, F_SSE, F_MODE32, F_MODE16, F_NFAM };
static const char *const fam_name[F_NFAM] = {
	"ALU/INC/DEC/NOT/NEG", "MOV", "XCHG", "CMPXCHG", "XADD", "CMPXCHG8B/16B", "BTS/BTR/BTC",
	"SETcc", "MOVNTI", "PUSH", "CALL", "MOVS/STOS", "SSE/AVX stores", "32-bit mode",
	"16-bit mode",
};
static unsigned n_cmp[F_NFAM], n_prot_cmp[F_NFAM];

struct tcase {
	enum fam fam;
	u8 mode;                /* mode of bytes[] (the emulated encoding) */
	u8 bytes[16];
	unsigned len;
	u8 nbytes[16];          /* what the processor runs (64-bit); = bytes in 64-bit mode */
	unsigned nlen;
	struct cpu_state st;    /* initial state for the emulator */
	struct cpu_state nst;   /* initial state for the processor */
	u64 seg_base[6];
	u64 rip;                /* emulator RIP */
	u64 want_rip;           /* 0: rip + len */
	u64 flags;              /* flags compared */
	int skip_reg;           /* register not compared (the translation's address), or -1 */
	bool vec;
	bool overlap;           /* MOVS source overlaps the destination: under protection
				 * later reads see the kept bytes, so only the flat run compares */
	u64 target;             /* linear address of the memory operand */
	/* A REP string with a 32-bit address size and ECX = 0: Intel processors clear bits 63:32
	 * of RCX, RDI (and RSI for MOVS) although no iteration runs; AMD processors leave the
	 * registers alone (seen on an AMD EPYC host). The emulator models Intel, so the
	 * reference applies Intel's rule to the native result. 1: STOS, 2: MOVS. */
	unsigned a32_zero_rep;
};

static u8 init_data[DATA_SIZE], emu_data[DATA_SIZE], expect[DATA_SIZE];

static void hexdump(const struct tcase *t, char *out, size_t n)
{
	size_t o = 0;
	for (unsigned i = 0; i < t->len && o + 4 < n; i++)
		o += (size_t)snprintf(out + o, n - o, "%02x ", t->bytes[i]);
}

/* Runs the emulator from t->st over a copy of init_data and compares with the processor's
 * result (nres, ndata). */
static void check_emu(const struct tcase *t, const struct cpu_state *nres, const u8 *ndata,
		      bool protect)
{
	struct backend be = { .mem = emu_data, .base = (u64)(uintptr_t)data, .protect = protect };
	struct emu_mem mem = { be_read, be_write, &be };
	struct emu_regs r = { 0 };
	struct insn in;
	char hx[64] = "";
	int rc;

	hexdump(t, hx, sizeof(hx));
	memcpy(emu_data, init_data, DATA_SIZE);
	if (protect)
		be.map = (u32)rnd();
	memcpy(r.gpr, t->st.gpr, sizeof(r.gpr));
	r.rflags = t->st.rflags;
	r.rip = t->rip;
	memcpy(r.seg_base, t->seg_base, sizeof(r.seg_base));
	/* The state the reference run had: SSE and AVX enabled (the host ran them). */
	r.cr4 = GUEST_SSE_CR4;
	r.xcr0 = GUEST_SSE_XCR0;
	if (insn_decode(&in, t->bytes, t->len, (enum insn_mode)t->mode))
		fail_msg("%s: decode failed: %s", fam_name[t->fam], hx);
	rc = emu_write_insn(&r, &in, &mem);
	if (rc)
		fail_msg("%s: emu rc %d: %s (mode %u)", fam_name[t->fam], rc, hx, t->mode * 8);
	for (unsigned i = 0; i < 16; i++)
		if ((int)i != t->skip_reg && r.gpr[i] != nres->gpr[i])
			fail_msg("%s: %s: gpr %u emu %#llx cpu %#llx (init %#llx) mode %u", fam_name[t->fam],
				 hx, i, (unsigned long long)r.gpr[i], (unsigned long long)nres->gpr[i],
				 (unsigned long long)t->st.gpr[i], t->mode * 8);
	if ((r.rflags ^ nres->rflags) & t->flags)
		fail_msg("%s: %s: rflags emu %#llx cpu %#llx (init %#llx, compared %#llx)",
			 fam_name[t->fam], hx, (unsigned long long)r.rflags,
			 (unsigned long long)nres->rflags, (unsigned long long)t->st.rflags,
			 (unsigned long long)t->flags);
	if ((r.rflags ^ t->st.rflags) & ~(F_ARITH | F_DF | 0x2ULL))
		fail_msg("%s: %s: non-arithmetic flags changed", fam_name[t->fam], hx);
	u64 want_rip = t->want_rip ? t->want_rip : t->rip + t->len;
	if (r.rip != want_rip)
		fail_msg("%s: %s: rip %#llx want %#llx", fam_name[t->fam], hx,
			 (unsigned long long)r.rip, (unsigned long long)want_rip);
	memcpy(expect, ndata, DATA_SIZE);
	if (protect) {
		u64 p = prot_page - (u64)(uintptr_t)data;
		for (unsigned i = 0; i < PAGE_SIZE; i++)
			if (!(be.map & (1u << (i / 128))))
				expect[p + i] = init_data[p + i];
	}
	if (memcmp(expect, emu_data, DATA_SIZE)) {
		unsigned i = 0;
		while (expect[i] == emu_data[i])
			i++;
		fail_msg("%s: %s: memory differs at data+%#x: emu %02x want %02x (target data+%#llx)%s",
			 fam_name[t->fam], hx, i, emu_data[i], expect[i],
			 (unsigned long long)(t->target - (u64)(uintptr_t)data),
			 protect ? " [protected]" : "");
	}
	if (protect)
		n_prot_cmp[t->fam]++;
	else
		n_cmp[t->fam]++;
}

/* Runs t natively and through the emulator (flat and protecting backends). */
static void run_case(const struct tcase *t)
{
	static u8 ndata[DATA_SIZE];
	struct cpu_state ns = t->nst;

	memcpy(data, init_data, DATA_SIZE);
	if (getenv("EMU_TRACE")) {
		char hx[64] = "";
		hexdump(t, hx, sizeof(hx));
		fprintf(stderr, "%s: %s\n", fam_name[t->fam], hx);
	}
	native_exec(t->nbytes, t->nlen, &ns, t->vec);
	memcpy(ndata, data, DATA_SIZE);
	if (t->a32_zero_rep) {
		ns.gpr[1] = 0;
		ns.gpr[7] &= 0xffffffffULL;
		if (t->a32_zero_rep == 2)
			ns.gpr[6] &= 0xffffffffULL;
	}
	check_emu(t, &ns, ndata, false);
	if (!t->overlap)
		check_emu(t, &ns, ndata, true);
}

/* ---- instruction encoding ----------------------------------------------------------- */

struct enc {
	u8 b[16];
	unsigned n;
	int disp_pos, disp_size; /* for RIP-relative patching */
	bool riprel;
};

static void emit(struct enc *e, u8 b) { e->b[e->n++] = b; }

static void emit_n(struct enc *e, u64 v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		emit(e, (u8)(v >> (8 * i)));
}

/* A 64/32-bit memory operand plan (SDM Vol. 2 Tables 2-2, 2-3). */
struct mplan {
	int kind;   /* 0 [b] 1 [b+d8] 2 [b+d32] 3 [b+i*s+d] 4 [i*s+d32] 5 [rip+d32] 6 [d32] */
	int base, index, scale_log, dsz;
};

static int pick_reg(u32 avoid, bool hi)
{
	for (;;) {
		int r = (int)rndn(hi ? 16 : 8);
		if (!(avoid & (1u << r)))
			return r;
	}
}

static struct mplan plan_mem(u32 avoid, bool hi, bool allow_rip, bool allow_abs)
{
	struct mplan p = { .base = -1, .index = -1 };
	for (;;) {
		p.kind = (int)rndn(7);
		if ((p.kind == 5 && !allow_rip) || ((p.kind == 4 || p.kind == 6) && !allow_abs))
			continue;
		break;
	}
	if (p.kind <= 3)
		p.base = pick_reg(avoid, hi);
	if (p.kind == 3 || p.kind == 4)
		p.index = pick_reg(avoid | (1u << 4) | (p.base >= 0 ? 1u << p.base : 0), hi);
	p.scale_log = (int)rndn(4);
	p.dsz = p.kind == 1 ? 1 : p.kind == 2 || p.kind >= 4 ? 4 :
		p.kind == 3 ? (int)(rndn(3) == 0 ? 0 : rndn(2) ? 1 : 4) : 0;
	if (p.kind == 0 && (p.base & 7) == 5)
		p.dsz = 1, p.kind = 1; /* [rbp]/[r13] need a displacement */
	if (p.kind == 3 && p.dsz == 0 && (p.base & 7) == 5)
		p.dsz = 1;
	return p;
}

static u8 plan_rex(const struct mplan *p)
{
	return (u8)((p->base >= 8 ? 1 : 0) | (p->index >= 8 ? 2 : 0));
}

/* ModRM + SIB + displacement (placeholder) for plan p and reg field. */
static void emit_mem(struct enc *e, const struct mplan *p, unsigned reg)
{
	u8 r = (u8)((reg & 7) << 3);
	unsigned mod = p->dsz == 1 ? 1 : p->dsz == 4 && p->kind != 4 && p->kind != 5 &&
		       p->kind != 6 ? 2 : 0;
	e->riprel = false;
	switch (p->kind) {
	case 5:
		emit(e, (u8)(r | 5));
		e->riprel = true;
		break;
	case 4: case 6:
		emit(e, (u8)(r | 4));
		emit(e, (u8)((p->scale_log << 6) | ((p->kind == 4 ? p->index & 7 : 4) << 3) | 5));
		break;
	default:
		if (p->index >= 0) {
			emit(e, (u8)((mod << 6) | r | 4));
			emit(e, (u8)((p->scale_log << 6) | ((p->index & 7) << 3) | (p->base & 7)));
		} else if ((p->base & 7) == 4) {
			emit(e, (u8)((mod << 6) | r | 4));
			emit(e, 0x24);
		} else {
			emit(e, (u8)((mod << 6) | r | (p->base & 7)));
		}
	}
	e->disp_pos = (int)e->n;
	e->disp_size = p->dsz;
	emit_n(e, 0, (unsigned)p->dsz);
}

/* Chooses register values and the displacement so the operand's offset is `off`;
 * as = address size (4 or 8). Upper register halves are random with as = 4. */
static void resolve_mem(struct enc *e, const struct mplan *p, u64 *gpr, u64 off, unsigned as,
			u64 next_rip_base)
{
	u64 am = as == 8 ? ~0ULL : 0xffffffffULL, idx = 0, disp;
	if (p->index >= 0) {
		idx = (u64)(s64)(rndn(256) - 128);
		if (as == 4)
			idx = (idx & am) | (rnd() << 32);
		gpr[p->index] = idx;
	}
	switch (p->dsz) {
	case 1: disp = (u64)(s64)(s8)rnd(); break;
	case 4: disp = (u64)(s64)(s32)(rndn(0x20000) - 0x10000); break;
	default: disp = 0;
	}
	if (p->kind == 4 || p->kind == 6)
		disp = (off - (p->kind == 4 ? idx << p->scale_log : 0)) & am;
	if (p->kind == 5)
		disp = off - (next_rip_base + e->n);
	if (p->base >= 0) {
		u64 b = (off - disp - (idx << p->scale_log)) & am;
		if (as == 4)
			b |= rnd() << 32;
		gpr[p->base] = b;
	}
	for (int i = 0; i < p->dsz; i++)
		e->b[e->disp_pos + i] = (u8)(disp >> (8 * i));
}

/* ---- the 64-bit ModRM families ---------------------------------------------------- */

struct form {
	enum fam fam;
	u8 map, op;
	s8 ext;       /* ModRM.reg extension, -1: a register operand */
	u8 sizes;     /* 1: byte, 0xe: 2/4/8, 0xc: 4/8 */
	u8 imm;       /* 0, 1 (ib), 4 (iz) */
	u64 flags;    /* defined flags */
	bool lock;
};

#define V 0xe
#define ARITH_NOAF (F_ARITH & ~F_AF)
static const struct form forms[] = {
	{ F_ALU, 0, 0x00, -1, 1, 0, F_ARITH, true }, { F_ALU, 0, 0x01, -1, V, 0, F_ARITH, true },
	{ F_ALU, 0, 0x08, -1, 1, 0, ARITH_NOAF, true }, { F_ALU, 0, 0x09, -1, V, 0, ARITH_NOAF, true },
	{ F_ALU, 0, 0x10, -1, 1, 0, F_ARITH, true }, { F_ALU, 0, 0x11, -1, V, 0, F_ARITH, true },
	{ F_ALU, 0, 0x18, -1, 1, 0, F_ARITH, true }, { F_ALU, 0, 0x19, -1, V, 0, F_ARITH, true },
	{ F_ALU, 0, 0x20, -1, 1, 0, ARITH_NOAF, true }, { F_ALU, 0, 0x21, -1, V, 0, ARITH_NOAF, true },
	{ F_ALU, 0, 0x28, -1, 1, 0, F_ARITH, true }, { F_ALU, 0, 0x29, -1, V, 0, F_ARITH, true },
	{ F_ALU, 0, 0x30, -1, 1, 0, ARITH_NOAF, true }, { F_ALU, 0, 0x31, -1, V, 0, ARITH_NOAF, true },
	{ F_ALU, 0, 0x80, 0, 1, 1, F_ARITH, true }, { F_ALU, 0, 0x80, 1, 1, 1, ARITH_NOAF, true },
	{ F_ALU, 0, 0x80, 2, 1, 1, F_ARITH, true }, { F_ALU, 0, 0x80, 3, 1, 1, F_ARITH, true },
	{ F_ALU, 0, 0x80, 4, 1, 1, ARITH_NOAF, true }, { F_ALU, 0, 0x80, 5, 1, 1, F_ARITH, true },
	{ F_ALU, 0, 0x80, 6, 1, 1, ARITH_NOAF, true },
	{ F_ALU, 0, 0x81, 0, V, 4, F_ARITH, true }, { F_ALU, 0, 0x81, 1, V, 4, ARITH_NOAF, true },
	{ F_ALU, 0, 0x81, 2, V, 4, F_ARITH, true }, { F_ALU, 0, 0x81, 3, V, 4, F_ARITH, true },
	{ F_ALU, 0, 0x81, 4, V, 4, ARITH_NOAF, true }, { F_ALU, 0, 0x81, 5, V, 4, F_ARITH, true },
	{ F_ALU, 0, 0x81, 6, V, 4, ARITH_NOAF, true },
	{ F_ALU, 0, 0x83, 0, V, 1, F_ARITH, true }, { F_ALU, 0, 0x83, 1, V, 1, ARITH_NOAF, true },
	{ F_ALU, 0, 0x83, 2, V, 1, F_ARITH, true }, { F_ALU, 0, 0x83, 3, V, 1, F_ARITH, true },
	{ F_ALU, 0, 0x83, 4, V, 1, ARITH_NOAF, true }, { F_ALU, 0, 0x83, 5, V, 1, F_ARITH, true },
	{ F_ALU, 0, 0x83, 6, V, 1, ARITH_NOAF, true },
	{ F_ALU, 0, 0xf6, 2, 1, 0, F_ARITH, true }, { F_ALU, 0, 0xf6, 3, 1, 0, F_ARITH, true },
	{ F_ALU, 0, 0xf7, 2, V, 0, F_ARITH, true }, { F_ALU, 0, 0xf7, 3, V, 0, F_ARITH, true },
	{ F_ALU, 0, 0xfe, 0, 1, 0, F_ARITH, true }, { F_ALU, 0, 0xfe, 1, 1, 0, F_ARITH, true },
	{ F_ALU, 0, 0xff, 0, V, 0, F_ARITH, true }, { F_ALU, 0, 0xff, 1, V, 0, F_ARITH, true },
	{ F_MOV, 0, 0x88, -1, 1, 0, F_ARITH, false }, { F_MOV, 0, 0x89, -1, V, 0, F_ARITH, false },
	{ F_MOV, 0, 0xc6, 0, 1, 1, F_ARITH, false }, { F_MOV, 0, 0xc7, 0, V, 4, F_ARITH, false },
	{ F_XCHG, 0, 0x86, -1, 1, 0, F_ARITH, true }, { F_XCHG, 0, 0x87, -1, V, 0, F_ARITH, true },
	{ F_CMPXCHG, 1, 0xb0, -1, 1, 0, F_ARITH, true },
	{ F_CMPXCHG, 1, 0xb1, -1, V, 0, F_ARITH, true },
	{ F_XADD, 1, 0xc0, -1, 1, 0, F_ARITH, true }, { F_XADD, 1, 0xc1, -1, V, 0, F_ARITH, true },
	{ F_CX8, 1, 0xc7, 1, 0xc, 0, F_ARITH, true },
	{ F_BT, 1, 0xab, -1, V, 0, F_CF, true }, { F_BT, 1, 0xb3, -1, V, 0, F_CF, true },
	{ F_BT, 1, 0xbb, -1, V, 0, F_CF, true },
	{ F_BT, 1, 0xba, 5, V, 1, F_CF, true }, { F_BT, 1, 0xba, 6, V, 1, F_CF, true },
	{ F_BT, 1, 0xba, 7, V, 1, F_CF, true },
	{ F_SETCC, 1, 0x90, 0, 1, 0, F_ARITH, false }, /* opcode low nibble randomised */
	{ F_MOVNTI, 1, 0xc3, -1, 0xc, 0, F_ARITH, false },
	{ F_PUSH, 0, 0xff, 6, V, 0, F_ARITH, false },   /* PUSH r/m: sizes 2/8 */
	{ F_CALL, 0, 0xff, 2, 8, 0, F_ARITH, false },   /* CALL r/m64 */
};

/* Target offset inside data: anywhere in the middle, or around the sub-page boundaries of
 * the protected page (start, middle, end, straddling). */
static u64 pick_target(unsigned size, unsigned align)
{
	u64 p = prot_page, t;
	if (rndn(3) == 0) {
		t = p - 0x800 + rndn(0x2000);
	} else {
		u64 sp = p + 128 * rndn(32);
		switch (rndn(4)) {
		case 0: t = sp; break;
		case 1: t = sp + 64 - size / 2; break;
		case 2: t = sp + 128 - size; break;
		default: t = sp + 128 - size / 2 - rndn(size ? size : 1); break;
		}
	}
	if (align)
		t &= ~(u64)(align - 1);
	return t;
}

static void fill_data(void)
{
	for (unsigned i = 0; i < DATA_SIZE; i += 8) {
		u64 v = rnd();
		memcpy(init_data + i, &v, 8);
	}
}

static void put_val(u64 la, u64 v, unsigned n)
{
	memcpy(init_data + (la - (u64)(uintptr_t)data), &v, n);
}

static u64 get_val(u64 la, unsigned n)
{
	u64 v = 0;
	memcpy(&v, init_data + (la - (u64)(uintptr_t)data), n);
	return v;
}

static void init_state(struct cpu_state *st, bool df)
{
	for (unsigned i = 0; i < 16; i++)
		st->gpr[i] = rnd_val();
	st->rflags = 0x2 | (rnd() & F_ARITH) | (df && rndn(2) ? F_DF : 0);
}

/* Generates and runs one random case of form f in 64-bit mode. */
static void gen_form64(const struct form *f)
{
	struct tcase t = { .fam = f->fam, .mode = INSN_MODE_64, .flags = f->flags, .skip_reg = -1 };
	struct enc e = { 0 };
	unsigned sz, msz;
	u32 avoid = 0;
	u8 rex = 0, reg = f->ext >= 0 ? (u8)f->ext : (u8)rndn(16), op = f->op;
	int seg = (int)rndn(6);  /* 0: FS, 1: GS, else none */
	bool a32 = rndn(4) == 0;
	struct mplan p;
	u64 segb = 0;

	if (f->sizes == 1)
		sz = 1;
	else if (f->fam == F_PUSH)
		sz = rndn(3) ? 8 : 2;
	else if (f->fam == F_CALL)
		sz = 8;
	else if (f->sizes == 0xc)
		sz = rndn(2) ? 8 : 4;
	else
		sz = 2u << rndn(3);
	if (f->fam == F_SETCC)
		op = (u8)(0x90 + rndn(16));
	msz = f->fam == F_CX8 ? 2 * sz : f->fam == F_SETCC ? 1 : sz;
	if (seg == 0 && a32)
		seg = 2; /* FS base is far away: no 32-bit offsets to it */
	if (seg == 0)
		segb = fs_base;
	else if (seg == 1)
		segb = gs_base;

	/* Registers the memory operand must not use. */
	if (f->ext < 0)
		avoid |= 1u << reg;
	if (f->fam == F_CMPXCHG)
		avoid |= 1u << 0;
	if (f->fam == F_CX8)
		avoid |= 0xf;
	if (f->fam == F_PUSH || f->fam == F_CALL)
		avoid |= 1u << 4;
	if (f->ext < 0 && sz == 1 && reg >= 4 && reg < 8)
		avoid |= 1u << (reg - 4) | 1u << reg;
	/* BT* register offsets: small, or anywhere in the range (then only base forms reach). */
	bool big_bt = f->fam == F_BT && f->op != 0xba && rndn(2);
	p = plan_mem(avoid, true, seg != 0 && !big_bt, seg != 0 && !big_bt);

	if (seg == 0)
		emit(&e, 0x64);
	else if (seg == 1)
		emit(&e, 0x65);
	if (sz == 2)
		emit(&e, 0x66);
	if (a32)
		emit(&e, 0x67);
	if (f->lock && rndn(2))
		emit(&e, 0xf0);
	rex = plan_rex(&p) | (reg >= 8 ? 4 : 0) | (sz == 8 && f->fam != F_PUSH && f->fam != F_CALL ? 8 : 0);
	/* Byte registers: sometimes a REX without bits so 4-7 mean SPL..DIL. */
	if (rex || (sz == 1 && rndn(2)))
		emit(&e, (u8)(0x40 | rex)); /* else byte registers 4-7 are AH..BH */
	if (f->map == 1)
		emit(&e, 0x0f);
	emit(&e, op);
	emit_mem(&e, &p, reg);
	if (f->imm == 1)
		emit_n(&e, rnd(), 1);
	else if (f->imm == 4)
		emit_n(&e, rnd(), sz == 2 ? 2 : 4);

	init_state(&t.st, false);
	fill_data();
	t.target = pick_target(msz, f->fam == F_CX8 && sz == 8 ? 16 : 0);

	/* Family-specific register/memory setup. */
	if (f->fam == F_ALU && rndn(2))
		put_val(t.target, rnd_val(), sz);
	if (f->fam == F_CMPXCHG && rndn(2)) {
		u64 v = get_val(t.target, sz);
		if (sz == 1)
			t.st.gpr[0] = (t.st.gpr[0] & ~0xffULL) | v;
		else
			t.st.gpr[0] = v | (sz < 8 ? t.st.gpr[0] & ~msk(sz) : 0);
	}
	if (f->fam == F_CX8 && rndn(2)) {
		unsigned h = sz;
		t.st.gpr[0] = get_val(t.target, h) | (h == 4 ? rnd() << 32 : 0);
		t.st.gpr[2] = get_val(t.target + h, h) | (h == 4 ? rnd() << 32 : 0);
	}
	u64 delta = 0;
	if (f->fam == F_BT && f->op != 0xba) {
		/* Signed bit offset, small or anywhere in the operand-size range: the operand
		 * moves by size * (offset >> log2(bits)); the base absorbs it so the operand
		 * lands on the target. */
		u64 raw = !big_bt ? (u64)((s64)rndn(0x8000) - 0x4000) : rnd_val() ^ (rnd() & 0xfff);
		s64 bo = sz == 2 ? (s16)raw : sz == 4 ? (s32)raw : (s64)raw;
		unsigned lg = sz == 2 ? 4 : sz == 4 ? 5 : 6;
		t.st.gpr[reg] = (raw & msk(sz)) | (rnd() & ~msk(sz));
		delta = (u64)((bo >> lg) * (s64)sz);
	}
	if (f->fam == F_PUSH) {
		t.st.gpr[4] = pick_target(sz, 0) + sz;
	}
	if (f->fam == F_CALL) {
		t.st.gpr[4] = pick_target(8, 0) + 8;
	}

	u64 off = t.target - segb - delta;
	resolve_mem(&e, &p, t.st.gpr, a32 ? off & 0xffffffff : off, a32 ? 4 : 8,
		    (u64)(uintptr_t)code);
	memcpy(t.bytes, e.b, e.n);
	t.len = e.n;
	memcpy(t.nbytes, e.b, e.n);
	t.nlen = e.n;
	t.rip = (u64)(uintptr_t)code;
	memcpy(t.seg_base, (u64[6]){ 0x1111000, 0x2222000, 0x3333000, 0x4444000, fs_base, gs_base },
	       sizeof(t.seg_base));
	if (f->fam == F_CALL) {
		u64 tgt = (u64)(uintptr_t)code + e.n + rndn(SLED - 4);
		put_val(t.target, tgt, 8);
		t.want_rip = tgt;
	}
	t.nst = t.st;
	run_case(&t);
}

static void set_seg_bases(struct tcase *t)
{
	u64 b[6] = { 0x1111000, 0x2222000, 0x3333000, 0x4444000, fs_base, gs_base };
	memcpy(t->seg_base, b, sizeof(b));
}

static void finish64(struct tcase *t, const struct enc *e)
{
	memcpy(t->bytes, e->b, e->n);
	memcpy(t->nbytes, e->b, e->n);
	t->len = t->nlen = e->n;
	t->rip = (u64)(uintptr_t)code;
	set_seg_bases(t);
	t->nst = t->st;
	run_case(t);
}

/* PUSH r (50+r), PUSH imm (68 6A), CALL rel32 (E8), CALL r64 (FF /2 mod 3). */
static void gen_stack64(void)
{
	struct tcase t = { .mode = INSN_MODE_64, .flags = F_ARITH, .skip_reg = -1 };
	struct enc e = { 0 };
	unsigned kind = (unsigned)rndn(4), sz = rndn(3) ? 8 : 2, r = (unsigned)rndn(16);

	init_state(&t.st, false);
	fill_data();
	t.fam = kind >= 2 ? F_CALL : F_PUSH;
	if (kind >= 2)
		sz = 8;
	t.target = pick_target(sz, 0);
	t.st.gpr[4] = t.target + sz;
	if (sz == 2)
		emit(&e, 0x66);
	switch (kind) {
	case 0:
		if (r >= 8)
			emit(&e, 0x41);
		emit(&e, (u8)(0x50 + (r & 7)));
		break;
	case 1:
		if (rndn(2)) {
			emit(&e, 0x6a);
			emit_n(&e, rnd_val(), 1);
		} else {
			emit(&e, 0x68);
			emit_n(&e, rnd_val(), sz == 2 ? 2 : 4);
		}
		break;
	case 2: {
		u32 rel = (u32)rndn(SLED - 4);
		emit(&e, 0xe8);
		emit_n(&e, rel, 4);
		t.want_rip = (u64)(uintptr_t)code + 5 + rel;
		break;
	}
	default:
		if (r == 4)
			r = 3;
		if (r >= 8)
			emit(&e, 0x41);
		emit(&e, 0xff);
		emit(&e, (u8)(0xd0 | (r & 7)));
		t.st.gpr[r] = (u64)(uintptr_t)code + e.n + rndn(SLED - 4);
		t.want_rip = t.st.gpr[r];
		break;
	}
	finish64(&t, &e);
}

/* MOV moffs, AL/eAX (A2 A3) with 64- or 32-bit moffs and FS/GS overrides. */
static void gen_moffs64(void)
{
	struct tcase t = { .fam = F_MOV, .mode = INSN_MODE_64, .flags = F_ARITH, .skip_reg = -1 };
	struct enc e = { 0 };
	bool byte = rndn(4) == 0, a32 = rndn(3) == 0;
	unsigned sz = byte ? 1 : 2u << rndn(3);
	int seg = (int)rndn(4);
	u64 segb = 0;

	if (seg == 0 && a32)
		seg = 3;
	if (seg == 0)
		emit(&e, 0x64), segb = fs_base;
	else if (seg == 1)
		emit(&e, 0x65), segb = gs_base;
	if (sz == 2)
		emit(&e, 0x66);
	if (a32)
		emit(&e, 0x67);
	if (sz == 8)
		emit(&e, 0x48);
	emit(&e, byte ? 0xa2 : 0xa3);
	init_state(&t.st, false);
	fill_data();
	t.target = pick_target(sz, 0);
	emit_n(&e, t.target - segb, a32 ? 4 : 8);
	finish64(&t, &e);
}

/* MOVS/STOS: REP or not, DF both ways, 66/REX.W, 67, FS/GS on the MOVS source. */
static void gen_string64(void)
{
	struct tcase t = { .fam = F_STR, .mode = INSN_MODE_64, .flags = F_ARITH, .skip_reg = -1 };
	struct enc e = { 0 };
	bool movs = rndn(2), byte = rndn(3) == 0, a32 = rndn(3) == 0, rep = rndn(4) != 0;
	unsigned sz = byte ? 1 : 2u << rndn(3);
	int seg = movs ? (int)rndn(4) : 3;
	u64 segb = 0, am = a32 ? 0xffffffffULL : ~0ULL;

	if (seg == 0 && a32)
		seg = 3;
	if (seg == 0)
		emit(&e, 0x64), segb = fs_base;
	else if (seg == 1)
		emit(&e, 0x65), segb = gs_base;
	if (sz == 2)
		emit(&e, 0x66);
	if (a32)
		emit(&e, 0x67);
	if (rep)
		emit(&e, 0xf3);
	if (sz == 8)
		emit(&e, 0x48);
	emit(&e, (u8)((movs ? 0xa4 : 0xaa) + !byte));
	init_state(&t.st, true);
	fill_data();
	t.target = pick_target(sz, 0);
	if (rep) {
		u64 n = rndn(5) == 0 ? 0 : rndn(24);
		t.st.gpr[1] = (t.st.gpr[1] & ~am) | n;
		if (a32 && !n)
			t.a32_zero_rep = movs ? 2 : 1;
	}
	t.st.gpr[7] = (t.st.gpr[7] & ~am) | (t.target & am);
	if (movs) {
		u64 src = rndn(4) == 0 ? t.target + (rndn(2 * 8 * sz) - 8 * sz) : pick_target(sz, 0);
		t.st.gpr[6] = (t.st.gpr[6] & ~am) | ((src - segb) & am);
		u64 span = 24 * 8 + 8;
		t.overlap = src < t.target + span && t.target < src + span;
	}
	finish64(&t, &e);
}

/* SSE/AVX stores. */
struct sform { u8 pp, op, n; bool align, l0; };
static const struct sform sforms[] = {
	{ 0, 0x11, 0, false, false }, { 1, 0x11, 0, false, false }, { 2, 0x11, 4, false, false },
	{ 3, 0x11, 8, false, false }, { 0, 0x29, 0, true, false }, { 1, 0x29, 0, true, false },
	{ 0, 0x2b, 0, true, false }, { 1, 0x2b, 0, true, false }, { 2, 0x7f, 0, false, false },
	{ 1, 0x7f, 0, true, false }, { 1, 0xe7, 0, true, false }, { 1, 0xd6, 8, false, true },
	{ 1, 0x7e, 4, false, true }, { 0, 0x13, 8, false, true }, { 1, 0x13, 8, false, true },
	{ 0, 0x17, 8, false, true }, { 1, 0x17, 8, false, true },
};

static void set_vectors(void)
{
	for (unsigned i = 0; i < 16; i++) {
		for (unsigned j = 0; j < 32; j += 8) {
			u64 v = rnd();
			memcpy(&native_vec[i][j], &v, 8);
		}
		fake_xmm_set(i, native_vec[i]);
		fake_ymm_high_set(i, native_vec[i] + 16);
	}
}

/* Encodes an SSE store (legacy or VEX) with memory plan p, register reg (0-15). Returns the
 * bytes stored. */
static unsigned emit_sse(struct enc *e, const struct sform *f, const struct mplan *p,
			 unsigned reg, bool vex, bool l, bool w, u8 rexmem)
{
	static const u8 pfx[4] = { 0, 0x66, 0xf3, 0xf2 };
	unsigned n = f->n ? f->n : l ? 32 : 16;
	if (f->op == 0x7e && w)
		n = 8;
	if (!vex) {
		u8 rex = (u8)(rexmem | (reg >= 8 ? 4 : 0) | (w ? 8 : 0));
		if (f->pp)
			emit(e, pfx[f->pp]);
		if (rex)
			emit(e, (u8)(0x40 | rex));
		emit(e, 0x0f);
	} else if (!(rexmem & 3) && !w && rndn(2)) {
		emit(e, 0xc5);
		emit(e, (u8)((reg >= 8 ? 0 : 0x80) | 0x78 | (l ? 4 : 0) | f->pp));
	} else {
		emit(e, 0xc4);
		emit(e, (u8)((reg >= 8 ? 0 : 0x80) | (rexmem & 2 ? 0 : 0x40) | (rexmem & 1 ? 0 : 0x20) | 1));
		emit(e, (u8)((w ? 0x80 : 0) | 0x78 | (l ? 4 : 0) | f->pp));
	}
	emit(e, f->op);
	emit_mem(e, p, reg);
	return n;
}

static void gen_sse64(void)
{
	struct tcase t = { .fam = F_SSE, .mode = INSN_MODE_64, .flags = F_ARITH, .skip_reg = -1,
			   .vec = true };
	struct enc e = { 0 };
	const struct sform *f = &sforms[rndn(ARRAY_SIZE(sforms))];
	bool vex = have_avx && rndn(2), l = vex && !f->l0 && rndn(2), w = rndn(2);
	bool a32 = rndn(4) == 0;
	int seg = (int)rndn(5);
	unsigned reg = (unsigned)rndn(16), n;
	u64 segb = 0;
	struct mplan p;

	if (f->op != 0x7e && !vex)
		w = false;
	if (seg == 0 && a32)
		seg = 3;
	p = plan_mem(0, true, seg != 0, seg != 0);
	if (seg == 0)
		emit(&e, 0x64), segb = fs_base;
	else if (seg == 1)
		emit(&e, 0x65), segb = gs_base;
	if (a32)
		emit(&e, 0x67);
	n = emit_sse(&e, f, &p, reg, vex, l, w, plan_rex(&p));
	init_state(&t.st, false);
	fill_data();
	set_vectors();
	t.target = pick_target(n, f->align ? n : 0);
	u64 off = t.target - segb;
	resolve_mem(&e, &p, t.st.gpr, a32 ? off & 0xffffffff : off, a32 ? 4 : 8,
		    (u64)(uintptr_t)code);
	finish64(&t, &e);
}

/* ---- 32- and 16-bit modes: checked against a 64-bit equivalent ---------------------- */

static const u8 seg_pfx[6] = { 0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65 };

/* A random ModRM form of forms[] or an SSE store in `mode`, run natively as the same
 * operation on [X] with X = the linear address the test built. */
static void gen_legacy_mode(u8 mode)
{
	struct tcase t = { .fam = mode == INSN_MODE_32 ? F_MODE32 : F_MODE16, .mode = mode,
			   .skip_reg = -1 };
	struct enc e = { 0 }, ne = { 0 };
	bool sse = rndn(5) == 0, a16 = (mode == INSN_MODE_16) != (rndn(4) == 0);
	const struct form *f = NULL;
	const struct sform *sf = NULL;
	unsigned sz = 0, msz, reg;
	u32 avoid = 0;
	bool vex = false, l = false, lock = false;
	u8 op = 0;
	int seg = (int)rndn(9) - 3; /* <0: none */

	if (sse) {
		sf = &sforms[rndn(ARRAY_SIZE(sforms))];
		vex = have_avx && rndn(2);
		l = vex && !sf->l0 && rndn(2);
		reg = (unsigned)rndn(8);
		t.flags = F_ARITH;
		t.vec = true;
	} else {
		do
			f = &forms[rndn(ARRAY_SIZE(forms))];
		while (f->fam == F_PUSH || f->fam == F_CALL);
		reg = f->ext >= 0 ? (unsigned)f->ext : (unsigned)rndn(8);
		sz = f->sizes == 1 ? 1 : f->sizes == 0xc ? 4 : rndn(2) ? 4 : 2;
		op = f->fam == F_SETCC ? (u8)(0x90 + rndn(16)) : f->op;
		lock = f->lock && rndn(2);
		t.flags = f->flags;
		if (f->ext < 0)
			avoid |= 1u << reg | (sz == 1 && reg >= 4 ? 1u << (reg - 4) : 0);
		if (f->fam == F_CMPXCHG)
			avoid |= 1;
		if (f->fam == F_CX8)
			avoid |= 0xf;
	}
	init_state(&t.st, false);
	fill_data();
	if (sse)
		set_vectors();
	msz = sse ? (sf->n ? sf->n : l ? 32 : 16) : f->fam == F_CX8 ? 8 : f->fam == F_SETCC ? 1 : sz;
	t.target = pick_target(msz, sse && sf->align ? msz : 0);

	/* Segment bases: random, the effective one made to reach the target. */
	for (unsigned i = 0; i < 6; i++)
		t.seg_base[i] = (u32)rnd();
	if (seg >= 0)
		emit(&e, seg_pfx[seg]);
	if (!sse && f->sizes != 0xc && sz == (mode == INSN_MODE_16 ? 4u : 2u))
		emit(&e, 0x66);
	if (a16 != (mode == INSN_MODE_16))
		emit(&e, 0x67);
	if (lock)
		emit(&e, 0xf0);

	u64 delta = 0;
	if (f && f->fam == F_BT && f->op != 0xba) {
		s64 bo = (s64)rndn(0x8000) - 0x4000;
		if (sz == 2)
			bo = (s16)bo;
		t.st.gpr[reg] = ((u64)bo & msk(sz)) | (rnd() & ~msk(sz));
		delta = (u64)((bo >> (sz == 2 ? 4 : 5)) * (s64)sz);
	}
	if (f && f->fam == F_CMPXCHG && rndn(2))
		t.st.gpr[0] = (t.st.gpr[0] & ~msk(sz)) | get_val(t.target, sz);
	if (f && f->fam == F_CX8 && rndn(2)) {
		t.st.gpr[0] = get_val(t.target, 4);
		t.st.gpr[2] = get_val(t.target + 4, 4);
	}
	if (f && f->fam == F_ALU && rndn(2))
		put_val(t.target, rnd_val(), sz);

	/* The memory operand. */
	unsigned eff;
	if (a16) {
		static const u8 b16[8] = { 3, 3, 5, 5, 6, 7, 5, 3 }, i16[8] = { 6, 7, 6, 7, 0xff, 0xff, 0xff, 0xff };
		unsigned rm, mod;
		for (;;) {
			rm = (unsigned)rndn(8);
			mod = (unsigned)rndn(3);
			u8 bb = (mod == 0 && rm == 6) ? 0xff : b16[rm];
			if ((bb != 0xff && (avoid >> bb & 1)) || (i16[rm] != 0xff && (avoid >> i16[rm] & 1)))
				continue;
			break;
		}
		bool abs16 = mod == 0 && rm == 6;
		eff = seg >= 0 ? (unsigned)seg : (!abs16 && (rm == 2 || rm == 3 || rm == 6)) ? 2 : 3;
		u64 off = 0x1000 + rndn(0xe000), disp = mod == 1 ? (u64)(s64)(s8)rnd() :
			  mod == 2 || abs16 ? rnd() & 0xffff : 0;
		if (abs16)
			disp = off;
		t.seg_base[eff] = (u32)(t.target - delta - off);
		u64 idx = 0;
		if (i16[rm] != 0xff) {
			idx = rnd();
			t.st.gpr[i16[rm]] = idx;
		}
		if (!abs16)
			t.st.gpr[b16[rm]] = (rnd() & ~0xffffULL) | ((off - disp - idx) & 0xffff);
		if (sse)
			emit_sse(&e, sf, &(struct mplan){ .kind = 0, .base = 3, .index = -1 }, reg, vex, l, false, 0);
		else {
			if (f->map)
				emit(&e, 0x0f);
			emit(&e, op);
			emit(&e, 0);
		}
		e.b[e.n - 1] = (u8)((mod << 6) | (reg << 3) | rm);
		emit_n(&e, disp, mod == 1 ? 1 : mod == 2 || abs16 ? 2 : 0);
	} else {
		struct mplan p = plan_mem(avoid, false, false, true);
		eff = seg >= 0 ? (unsigned)seg : (p.base == 4 || p.base == 5) ? 2 : 3;
		if (p.kind == 5) { /* [disp32] (no RIP-relative outside 64-bit mode) */
			p.kind = 6;
		}
		if (sse)
			emit_sse(&e, sf, &p, reg, vex, l, false, 0);
		else {
			if (f->map)
				emit(&e, 0x0f);
			emit(&e, op);
			emit_mem(&e, &p, reg);
		}
		u64 off = (u32)rnd();
		t.seg_base[eff] = (u32)(t.target - delta - off);
		resolve_mem(&e, &p, t.st.gpr, off, 4, 0);
	}
	if (!sse) {
		if (f->imm == 1)
			emit_n(&e, rnd(), 1);
		else if (f->imm == 4)
			emit_n(&e, rnd(), sz == 2 ? 2 : 4);
	}

	/* The 64-bit equivalent: same prefixes/opcode/reg, memory [X]. */
	unsigned x;
	do
		x = (unsigned)rndn(8);
	while (x == 4 || x == 5 || (avoid >> x & 1) || (!sse && f->ext < 0 && x == reg));
	if (!sse && f->sizes != 0xc && sz == 2)
		emit(&ne, 0x66);
	if (lock)
		emit(&ne, 0xf0);
	if (sse) {
		emit_sse(&ne, sf, &(struct mplan){ .kind = 0, .base = (int)x, .index = -1 }, reg, vex, l, false, 0);
	} else {
		if (f->map)
			emit(&ne, 0x0f);
		emit(&ne, op);
		emit(&ne, (u8)((reg << 3) | x));
	}
	/* Copy the immediate bytes. */
	unsigned immn = sse ? 0 : f->imm == 1 ? 1 : f->imm == 4 ? (sz == 2 ? 2 : 4) : 0;
	for (unsigned i = 0; i < immn; i++)
		emit(&ne, e.b[e.n - immn + i]);

	memcpy(t.bytes, e.b, e.n);
	t.len = e.n;
	memcpy(t.nbytes, ne.b, ne.n);
	t.nlen = ne.n;
	t.rip = 0x1000 + rndn(0x100);
	t.nst = t.st;
	t.nst.gpr[x] = t.target - delta;
	t.skip_reg = (int)x;
	run_case(&t);
}

/* ---- random differential tests -------------------------------------------------------- */

#define N_FORM_CASES 300 /* per form */
#define N_OTHER_CASES 5000

static void test_modrm_forms(void **state)
{
	(void)state;
	for (unsigned i = 0; i < ARRAY_SIZE(forms); i++)
		for (unsigned k = 0; k < N_FORM_CASES; k++)
			gen_form64(&forms[i]);
}

static void test_stack(void **state)
{
	(void)state;
	for (unsigned k = 0; k < N_OTHER_CASES; k++)
		gen_stack64();
}

static void test_moffs(void **state)
{
	(void)state;
	for (unsigned k = 0; k < N_OTHER_CASES / 3; k++)
		gen_moffs64();
}

static void test_string(void **state)
{
	(void)state;
	for (unsigned k = 0; k < N_OTHER_CASES; k++)
		gen_string64();
}

static void test_sse(void **state)
{
	(void)state;
	for (unsigned k = 0; k < N_OTHER_CASES; k++)
		gen_sse64();
}

static void test_mode32(void **state)
{
	(void)state;
	for (unsigned k = 0; k < N_OTHER_CASES; k++)
		gen_legacy_mode(INSN_MODE_32);
}

static void test_mode16(void **state)
{
	(void)state;
	for (unsigned k = 0; k < N_OTHER_CASES; k++)
		gen_legacy_mode(INSN_MODE_16);
}

/* ---- hand-written cases ------------------------------------------------------------ */

struct flat {
	u8 mem[0x20000];    /* linear [0x10000, 0x30000) */
	int fail_read, fail_write, reads, writes;
};

static int flat_read(void *ctx, u64 la, void *buf, unsigned n)
{
	struct flat *f = ctx;
	if ((f->fail_read && ++f->reads >= f->fail_read) || la < 0x10000 || la + n > 0x30000)
		return -EFAULT;
	memcpy(buf, f->mem + la - 0x10000, n);
	return 0;
}

static int flat_write(void *ctx, u64 la, const void *buf, unsigned n)
{
	struct flat *f = ctx;
	if ((f->fail_write && ++f->writes >= f->fail_write) || la < 0x10000 || la + n > 0x30000)
		return -EFAULT;
	memcpy(f->mem + la - 0x10000, buf, n);
	return 0;
}

static struct flat fl;


static int emu_bytes(const char *hex_bytes, unsigned len, u8 mode, struct emu_regs *r)
{
	struct emu_mem m = { flat_read, flat_write, &fl };
	struct insn in;
	if (insn_decode(&in, (const u8 *)hex_bytes, len, (enum insn_mode)mode))
		return -1000;
	return emu_write_insn(r, &in, &m);
}

#define EMU(s, mode, r) emu_bytes(s, sizeof(s) - 1, mode, r)

static u64 flat_get(u64 la, unsigned n)
{
	u64 v = 0;
	memcpy(&v, fl.mem + la - 0x10000, n);
	return v;
}

static void test_unsupported_and_errors(void **state)
{
	struct emu_regs r = { .gpr = { [0] = 0x20000, [3] = 0x20000, [7] = 0x20000 }, .rip = 0x5000,
			      .rflags = 0x2, .cr4 = GUEST_SSE_CR4, .xcr0 = GUEST_SSE_XCR0 };
	struct emu_regs r0;
	struct emu_mem m = { flat_read, flat_write, &fl };
	struct insn in;
	(void)state;

	memset(&fl, 0, sizeof(fl));
	r0 = r;
	/* FXSAVE [rax], XSAVE [rax], FNSTENV [rax], XSAVEOPT, FSTP m80, ENTER, RET, CMP, BT,
	 * ADD r, r/m, shifts, EVEX VMOVDQU64. */
	assert_int_equal(EMU("\x0f\xae\x00", INSN_MODE_64, &r), -EOPNOTSUPP);
	assert_int_equal(EMU("\x0f\xae\x20", INSN_MODE_64, &r), -EOPNOTSUPP);
	assert_int_equal(EMU("\x48\x0f\xae\x20", INSN_MODE_64, &r), -EOPNOTSUPP);
	assert_int_equal(EMU("\xd9\x30", INSN_MODE_64, &r), -EOPNOTSUPP);
	assert_int_equal(EMU("\x0f\xae\x30", INSN_MODE_64, &r), -EOPNOTSUPP);
	assert_int_equal(EMU("\xdb\x38", INSN_MODE_64, &r), -EOPNOTSUPP);
	assert_int_equal(EMU("\xc8\x10\x00\x00", INSN_MODE_64, &r), -EOPNOTSUPP);
	assert_int_equal(EMU("\xc3", INSN_MODE_64, &r), -EOPNOTSUPP);
	assert_int_equal(EMU("\x39\x00", INSN_MODE_64, &r), -EOPNOTSUPP);
	assert_int_equal(EMU("\x83\x38\x01", INSN_MODE_64, &r), -EOPNOTSUPP);
	assert_int_equal(EMU("\x0f\xa3\x00", INSN_MODE_64, &r), -EOPNOTSUPP);
	assert_int_equal(EMU("\x03\x00", INSN_MODE_64, &r), -EOPNOTSUPP);
	assert_int_equal(EMU("\x01\xc0", INSN_MODE_64, &r), -EOPNOTSUPP);
	assert_int_equal(EMU("\xd1\x20", INSN_MODE_64, &r), -EOPNOTSUPP);
	assert_int_equal(EMU("\x62\xf1\xfe\x08\x7f\x00", INSN_MODE_64, &r), -EOPNOTSUPP);
	assert_int_equal(EMU("\x0f\x7f\x00", INSN_MODE_64, &r), -EOPNOTSUPP); /* MOVQ from MMX */
	assert_memory_equal(&r, &r0, sizeof(r));

	/* LOCK on MOV (the decoder rejects it; a hand-made insn must be refused too). */
	assert_int_equal(insn_decode(&in, (const u8 *)"\x89\x03", 2, INSN_MODE_64), 0);
	in.lock = true;
	assert_int_equal(emu_write_insn(&r, &in, &m), -EINVAL);
	assert_int_equal(insn_decode(&in, (const u8 *)"\x0f\x11\x03", 3, INSN_MODE_64), 0);
	in.lock = true;
	assert_int_equal(emu_write_insn(&r, &in, &m), -EINVAL);
	assert_int_equal(insn_decode(&in, (const u8 *)"\x0f\x94\x03", 3, INSN_MODE_64), 0);
	in.lock = true;
	assert_int_equal(emu_write_insn(&r, &in, &m), -EINVAL);
	/* VEX store with vvvv != 1111b; VMOVQ with L = 1. */
	assert_int_equal(EMU("\xc5\xf0\x11\x03", INSN_MODE_64, &r), -EINVAL);
	assert_int_equal(EMU("\xc5\xfd\xd6\x03", INSN_MODE_64, &r), -EINVAL);
	/* Alignment: MOVAPS, MOVDQA, VMOVAPS ymm (16-aligned only), CMPXCHG16B. */
	r.gpr[3] = 0x20008;
	assert_int_equal(EMU("\x0f\x29\x03", INSN_MODE_64, &r), -EMU_GP);
	assert_int_equal(EMU("\x66\x0f\x7f\x03", INSN_MODE_64, &r), -EMU_GP);
	r.gpr[3] = 0x20010;
	assert_int_equal(EMU("\xc5\xfc\x29\x03", INSN_MODE_64, &r), -EMU_GP);
	r.gpr[3] = 0x20008;
	assert_int_equal(EMU("\x48\x0f\xc7\x0b", INSN_MODE_64, &r), -EMU_GP);
	assert_int_equal(EMU("\x0f\xc7\x0b", INSN_MODE_64, &r), 0); /* CMPXCHG8B: no alignment */
	r = r0;
	assert_memory_equal(&r, &r0, sizeof(r));

	/* -EFAULT from the backend leaves the registers alone: on the read and on the write. */
	for (int which = 0; which < 2; which++) {
		static const char *const ins[] = { "\x01\x03", "\x48\x0f\xc1\x03", "\x0f\xb1\x0b",
						   "\x48\x87\x03", "\x0f\xab\x03", "\x53", "\xe8\0\0\0\0",
						   "\xff\x33", "\xf3\xab", "\xf3\xa4" };
		static const unsigned lens[] = { 2, 4, 3, 4, 3, 1, 5, 2, 2, 2 };
		for (unsigned i = 0; i < ARRAY_SIZE(ins); i++) {
			r = r0;
			r.gpr[1] = 5;
			r.gpr[4] = 0x20100;
			r.gpr[6] = 0x20200;
			r.rflags = 0x2 | F_CF | F_ZF;
			struct emu_regs before = r;
			fl.reads = fl.writes = 0;
			fl.fail_read = which == 0;
			fl.fail_write = which == 1;
			int rc = emu_bytes(ins[i], lens[i], INSN_MODE_64, &r);
			fl.fail_read = fl.fail_write = 0;
			if (which == 0 && (i == 5 || i == 6 || i == 8))
				assert_int_equal(rc, 0);       /* writes only */
			else
				assert_int_equal(rc, -EFAULT);
			if (rc)
				assert_memory_equal(&r, &before, sizeof(r));
		}
	}
}

/* REP with a count beyond the per-call budget: the emulator stops with RIP on the
 * instruction and the guest (here: the loop) re-executes it; the end state equals the
 * processor's. Also a fault in the middle of a REP: registers reflect the finished
 * iterations. */
static void test_rep_budget(void **state)
{
	(void)state;
	static const char *const ins[] = { "\xf3\x48\xab", "\xf3\xa4", "\xf3\x66\xa5", "\xf3\xaa" };
	static const unsigned lens[] = { 3, 2, 3, 2 };
	static u8 ndata[DATA_SIZE];
	for (unsigned i = 0; i < ARRAY_SIZE(ins); i++) {
		for (int df = 0; df < 2; df++) {
			struct tcase t = { .fam = F_STR, .mode = INSN_MODE_64, .flags = F_ARITH,
					   .skip_reg = -1 };
			struct cpu_state ns;
			struct backend be = { .mem = emu_data, .base = (u64)(uintptr_t)data };
			struct emu_mem mem = { be_read, be_write, &be };
			struct emu_regs r = { 0 };
			struct insn in;
			unsigned sz = i == 0 ? 8 : i == 2 ? 2 : 1, calls = 0;
			u64 count = 5000 / sz;

			init_state(&t.st, false);
			t.st.rflags = (t.st.rflags & ~F_DF) | (df ? F_DF : 0);
			fill_data();
			t.st.gpr[1] = count;
			u64 lo = (u64)(uintptr_t)data + 0x100, hi = lo + 0x3000;
			t.st.gpr[7] = df ? hi + 0xc00 : lo;
			t.st.gpr[6] = df ? hi - 0x400 : lo + 0x1800;
			memcpy(t.bytes, ins[i], lens[i]);
			t.len = lens[i];
			ns = t.st;
			memcpy(data, init_data, DATA_SIZE);
			native_exec(t.bytes, t.len, &ns, false);
			memcpy(ndata, data, DATA_SIZE);

			memcpy(emu_data, init_data, DATA_SIZE);
			memcpy(r.gpr, t.st.gpr, sizeof(r.gpr));
			r.rflags = t.st.rflags;
			r.rip = 0x1000;
			assert_int_equal(insn_decode(&in, t.bytes, t.len, INSN_MODE_64), 0);
			do {
				assert_int_equal(emu_write_insn(&r, &in, &mem), 0);
				calls++;
			} while (r.rip == 0x1000 && calls < 100);
			assert_true(calls >= count * sz / EMU_REP_MAX_BYTES);
			assert_int_equal(r.rip, 0x1000 + t.len);
			assert_memory_equal(r.gpr, ns.gpr, sizeof(r.gpr));
			assert_memory_equal(emu_data, ndata, DATA_SIZE);
			n_cmp[F_STR]++;
		}
	}

	/* Fault part way: REP STOSD running off the end of the flat window at 0x30000. */
	struct emu_regs r = { .gpr = { [0] = 0xabcdef01, [1] = 100, [7] = 0x30000 - 40 },
			      .rip = 0x7000, .rflags = 0x2 };
	memset(&fl, 0, sizeof(fl));
	assert_int_equal(EMU("\xf3\xab", INSN_MODE_64, &r), -EFAULT);
	assert_int_equal(r.rip, 0x7000);
	assert_int_equal(r.gpr[1], 90);
	assert_int_equal(r.gpr[7], 0x30000);
	assert_int_equal(flat_get(0x30000 - 4, 4), 0xabcdef01);
}

/* SSE/AVX stores check the guest's CR0/CR4/XCR0 as the processor does, before reading a
 * vector register: the bytes at RIP may not be what the processor ran (another vCPU
 * rewrote a MOV into a VMOVDQU, a stale TLB entry), and reading YMM with the guest's XCR0
 * lacking AVX would #UD in the host. Nothing is written in any of these cases. */
static void test_sse_guest_state(void **state)
{
	static const struct { const char *bytes; unsigned len; bool vex; } stores[] = {
		{ "\xc5\xfe\x7f\x03", 4, true },   /* VMOVDQU [rbx], ymm0 */
		{ "\xc5\xfa\x7f\x03", 4, true },   /* VMOVDQU [rbx], xmm0 */
		{ "\xf3\x0f\x7f\x03", 4, false },  /* MOVDQU [rbx], xmm0 */
		{ "\x0f\x11\x03", 3, false },       /* MOVUPS [rbx], xmm0 */
	};
	struct emu_mem m = { flat_read, flat_write, &fl };
	(void)state;
	for (unsigned i = 0; i < ARRAY_SIZE(stores); i++) {
		struct insn in;
		assert_int_equal(insn_decode(&in, (const u8 *)stores[i].bytes, stores[i].len, INSN_MODE_64), 0);
		struct emu_regs base = { .gpr = { [3] = 0x20000 }, .rip = 0x5000, .rflags = 0x2,
					 .cr4 = GUEST_SSE_CR4, .xcr0 = GUEST_SSE_XCR0 };
		struct { u64 cr0, cr4, xcr0; int want; } cases[] = {
			{ 0, GUEST_SSE_CR4, 3, stores[i].vex ? -EINVAL : 0 },           /* XCR0 without AVX */
			{ 0, CR4_OSFXSR, 0, stores[i].vex ? -EINVAL : 0 },              /* no OSXSAVE */
			{ 0, CR4_OSXSAVE, GUEST_SSE_XCR0, stores[i].vex ? 0 : -EINVAL }, /* no OSFXSR */
			{ CR0_EM, GUEST_SSE_CR4, GUEST_SSE_XCR0, stores[i].vex ? 0 : -EINVAL },
			{ CR0_TS, GUEST_SSE_CR4, GUEST_SSE_XCR0, -EMU_NM },
			{ 0, GUEST_SSE_CR4, GUEST_SSE_XCR0, 0 },
		};
		for (unsigned k = 0; k < ARRAY_SIZE(cases); k++) {
			struct emu_regs r = base;
			r.cr0 = cases[k].cr0;
			r.cr4 = cases[k].cr4;
			r.xcr0 = cases[k].xcr0;
			memset(&fl, 0, sizeof(fl));
			int rc = emu_write_insn(&r, &in, &m);
			if (rc != cases[k].want)
				fail_msg("store %u case %u: rc %d, want %d", i, k, rc, cases[k].want);
			if (rc) {
				assert_int_equal(r.rip, 0x5000);
				assert_int_equal(flat_get(0x20000, 8), 0);
			}
		}
		/* A read of the vector register that faults in the host anyway (the exception
		 * table caught it) is the guest's #UD, not the hypervisor's end. */
		struct emu_regs r = base;
		memset(&fl, 0, sizeof(fl));
		fake_vec_read_fault(true);
		int rc = emu_write_insn(&r, &in, &m);
		fake_vec_read_fault(false);
		assert_int_equal(rc, -EINVAL);
		assert_int_equal(r.rip, 0x5000);
	}
}

/* Stack, string and moffs forms in 32- and 16-bit modes (segment bases, SP/SI/DI wrap,
 * stack size), checked against values worked out from the SDM. */
static void test_legacy_modes_by_hand(void **state)
{
	struct emu_regs r;
	(void)state;
	memset(&fl, 0, sizeof(fl));

	/* 32-bit: PUSH EAX with SS base 0x10000, ESP 0x1000 -> [0x10ffc], ESP = 0xffc. */
	r = (struct emu_regs){ .gpr = { [0] = 0x1122334455667788ULL, [4] = 0xdead00001000ULL },
			       .rip = 0x400, .rflags = 0x2, .seg_base = { [2] = 0x10000 } };
	assert_int_equal(EMU("\x50", INSN_MODE_32, &r), 0);
	assert_int_equal(flat_get(0x10ffc, 4), 0x55667788);
	assert_int_equal(r.gpr[4], 0xffc);
	assert_int_equal(r.rip, 0x401);
	/* 66 6A FF: PUSH imm8 as 16 bits. */
	assert_int_equal(EMU("\x66\x6a\xff", INSN_MODE_32, &r), 0);
	assert_int_equal(flat_get(0x10ffa, 2), 0xffff);
	assert_int_equal(r.gpr[4], 0xffa);
	/* 16-bit stack (SS.B = 0) in 32-bit mode: SP wraps, upper ESP bits kept. */
	r.gpr[4] = 0x12340002;
	r.stack_size = 2;
	assert_int_equal(EMU("\x68\x78\x56\x34\x12", INSN_MODE_32, &r), 0);
	assert_int_equal(r.gpr[4], 0x1234fffe);
	assert_int_equal(flat_get(0x10000 + 0xfffe, 4), 0x12345678);
	/* 32-bit CALL rel32 wraps EIP. */
	r = (struct emu_regs){ .gpr = { [4] = 0x2000 }, .rip = 0xfffffff0, .rflags = 0x2,
			       .seg_base = { [2] = 0x10000 } };
	assert_int_equal(EMU("\xe8\x20\x00\x00\x00", INSN_MODE_32, &r), 0);
	assert_int_equal(r.rip, 0x15);
	assert_int_equal(flat_get(0x11ffc, 4), 0xfffffff5);
	/* 16-bit mode: CALL rel16 with SP = 0 wraps to 0xfffe; IP wraps. */
	r = (struct emu_regs){ .gpr = { [4] = 0 }, .rip = 0xfffe, .rflags = 0x2,
			       .seg_base = { [2] = 0x10000 } };
	assert_int_equal(EMU("\xe8\x10\x00", INSN_MODE_16, &r), 0);
	assert_int_equal(r.rip, 0x11);
	assert_int_equal(r.gpr[4], 0xfffe);
	assert_int_equal(flat_get(0x1fffe, 2), 0x0001);
	/* 16-bit mode: CALL [bx] (FF /2) reads the target through DS; 66 = 32-bit. */
	r = (struct emu_regs){ .gpr = { [3] = 0x100, [4] = 0x200 }, .rip = 0x50, .rflags = 0x2,
			       .seg_base = { [2] = 0x20000, [3] = 0x18000 } };
	memcpy(fl.mem + 0x18100 - 0x10000, "\x34\x12\x00\x00", 4);
	assert_int_equal(EMU("\xff\x17", INSN_MODE_16, &r), 0);
	assert_int_equal(r.rip, 0x1234);
	assert_int_equal(flat_get(0x201fe, 2), 0x52);
	/* 64-bit mode: CALL rax (FF D0) to a non-canonical address is #GP(0) with nothing
	 * pushed and nothing changed; with CR4.LA57 the 57-bit form is canonical. */
	r = (struct emu_regs){ .gpr = { [0] = 0x0000800000000000ULL, [4] = 0x20000 }, .rip = 0x50,
			       .rflags = 0x2 };
	memset(fl.mem + 0x1fff0 - 0x10000, 0x5a, 16);
	struct emu_regs r0 = r;
	assert_int_equal(EMU("\xff\xd0", INSN_MODE_64, &r), -EMU_GP);
	assert_memory_equal(&r, &r0, sizeof(r));
	assert_int_equal(flat_get(0x1fff8, 8), 0x5a5a5a5a5a5a5a5aULL);
	r.gpr[0] = 0xffff7fffffffffffULL;
	assert_int_equal(EMU("\xff\xd0", INSN_MODE_64, &r), -EMU_GP);
	r.gpr[0] = 0x00007ffffffff000ULL;
	assert_int_equal(EMU("\xff\xd0", INSN_MODE_64, &r), 0);
	assert_int_equal(r.rip, 0x00007ffffffff000ULL);
	r = r0;
	r.cr4 = CR4_LA57;
	assert_int_equal(EMU("\xff\xd0", INSN_MODE_64, &r), 0);
	assert_int_equal(r.rip, 0x0000800000000000ULL);
	/* F3/F2 0F 2B and 0F 29/13/17 have no Intel instruction (MOVNTSS/SD are AMD's SSE4a):
	 * #UD, nothing written, whatever the memory operand. */
	r = (struct emu_regs){ .gpr = { [0] = 0x20000 }, .rip = 0x50, .rflags = 0x2, .cr4 = GUEST_SSE_CR4,
			       .xcr0 = GUEST_SSE_XCR0 };
	/* (-1000: the decoder already refuses the form; the hypervisor raises #UD for that too.) */
	int ud[4] = { EMU("\xf3\x0f\x2b\x00", INSN_MODE_64, &r), EMU("\xf2\x0f\x2b\x00", INSN_MODE_64, &r),
		      EMU("\xf3\x0f\x29\x00", INSN_MODE_64, &r), EMU("\xf2\x0f\x17\x00", INSN_MODE_64, &r) };
	for (unsigned k = 0; k < 4; k++)
		assert_true(ud[k] == -EINVAL || ud[k] == -1000);
	assert_int_equal(ud[0], -EINVAL); /* decoded (the form exists on AMD), refused here */
	assert_int_equal(r.rip, 0x50);
	/* 16-bit mode: PUSH [bp+2] defaults to SS. */
	r = (struct emu_regs){ .gpr = { [5] = 0x10, [4] = 0x200 }, .rip = 0x50, .rflags = 0x2,
			       .seg_base = { [2] = 0x20000, [3] = 0x18000 } };
	memcpy(fl.mem + 0x20012 - 0x10000, "\xcd\xab", 2);
	assert_int_equal(EMU("\xff\x76\x02", INSN_MODE_16, &r), 0);
	assert_int_equal(flat_get(0x201fe, 2), 0xabcd);

	/* 16-bit mode MOVSW: DS:SI -> ES:DI, SI wraps at 64 KiB, upper bits kept. */
	r = (struct emu_regs){ .gpr = { [6] = 0xabcdffff, [7] = 0x10 }, .rip = 0x50, .rflags = 0x2,
			       .seg_base = { [0] = 0x20000, [3] = 0x10000 } };
	memcpy(fl.mem + 0xffff, "\x5a\xa5", 2);
	assert_int_equal(EMU("\xa5", INSN_MODE_16, &r), 0);
	assert_int_equal(flat_get(0x20010, 2), 0xa55a);
	assert_int_equal(r.gpr[6], 0xabcd0001);
	assert_int_equal(r.gpr[7], 0x12);
	/* 32-bit mode REP STOSD, DF = 1, ES base, 16-bit address size (67): CX/DI. */
	r = (struct emu_regs){ .gpr = { [0] = 0x01020304, [1] = 0xffff0003, [7] = 0x777700f0 },
			       .rip = 0x50, .rflags = 0x2 | F_DF, .seg_base = { [0] = 0x21000 } };
	assert_int_equal(EMU("\x67\xf3\xab", INSN_MODE_32, &r), 0);
	assert_int_equal(r.gpr[1], 0xffff0000);
	assert_int_equal(r.gpr[7], 0x777700e4);
	assert_int_equal(flat_get(0x210e8, 4), 0x01020304);
	assert_int_equal(flat_get(0x210f0, 4), 0x01020304);
	assert_int_equal(flat_get(0x210e4, 4), 0);
	/* 32-bit MOVSB with an FS override on the source. */
	r = (struct emu_regs){ .gpr = { [6] = 0x10, [7] = 0x20 }, .rip = 0x50, .rflags = 0x2,
			       .seg_base = { [0] = 0x22000, [3] = 0x0, [4] = 0x23000 } };
	fl.mem[0x23010 - 0x10000] = 0x99;
	assert_int_equal(EMU("\x64\xa4", INSN_MODE_32, &r), 0);
	assert_int_equal(flat_get(0x22020, 1), 0x99);
	/* moffs: 32-bit A3 with DS base; 16-bit A2 with ES override. */
	r = (struct emu_regs){ .gpr = { [0] = 0xcafef00d }, .rip = 0x50, .rflags = 0x2,
			       .seg_base = { [0] = 0x24000, [3] = 0x25000 } };
	assert_int_equal(EMU("\xa3\x10\x00\x00\x00", INSN_MODE_32, &r), 0);
	assert_int_equal(flat_get(0x25010, 4), 0xcafef00d);
	assert_int_equal(EMU("\x26\xa2\x20\x00", INSN_MODE_16, &r), 0);
	assert_int_equal(flat_get(0x24020, 1), 0x0d);
	/* Linear addresses wrap at 4 GiB outside 64-bit mode: 0xfffff000 + 0x27100. */
	r = (struct emu_regs){ .gpr = { [0] = 0x77, [3] = 0x27100 }, .rip = 0x50, .rflags = 0x2,
			       .seg_base = { [3] = 0xfffff000ULL } };
	assert_int_equal(EMU("\x88\x03", INSN_MODE_32, &r), 0);
	assert_int_equal(flat_get(0x26100, 1), 0x77);
	/* 16-bit offsets wrap before the base is added: [bx+si+2] = 0xffff + 0x3 -> 0x2. */
	r = (struct emu_regs){ .gpr = { [0] = 0x66, [3] = 0xffff, [6] = 0x1 }, .rip = 0x50,
			       .rflags = 0x2, .seg_base = { [3] = 0x27000 } };
	assert_int_equal(EMU("\x88\x40\x02", INSN_MODE_16, &r), 0);
	assert_int_equal(flat_get(0x27002, 1), 0x66);
}

static void test_summary(void **state)
{
	unsigned tot = 0, ptot = 0;
	(void)state;
	for (unsigned i = 0; i < F_NFAM; i++) {
		print_message("  %-22s %6u processor comparisons, %6u with sub-page protection\n",
			      fam_name[i], n_cmp[i], n_prot_cmp[i]);
		tot += n_cmp[i];
		ptot += n_prot_cmp[i];
	}
	print_message("  total                  %6u, %6u\n", tot, ptot);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unsupported_and_errors),
		cmocka_unit_test(test_modrm_forms),
		cmocka_unit_test(test_stack),
		cmocka_unit_test(test_moffs),
		cmocka_unit_test(test_string),
		cmocka_unit_test(test_sse),
		cmocka_unit_test(test_mode32),
		cmocka_unit_test(test_mode16),
		cmocka_unit_test(test_rep_budget),
		cmocka_unit_test(test_legacy_modes_by_hand),
		cmocka_unit_test(test_sse_guest_state),
		cmocka_unit_test(test_summary),
	};
	void *m = mmap(NULL, 4096 + DATA_SIZE, PROT_READ | PROT_WRITE | PROT_EXEC,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
	int rc;

	if (m == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	code = m;
	data = code + 4096;
	prot_page = (u64)(uintptr_t)data + 0x2000;
	have_avx = __builtin_cpu_supports("avx");
	syscall(SYS_arch_prctl, ARCH_GET_FS_, &fs_base);
	syscall(SYS_arch_prctl, ARCH_GET_GS_, &gs_orig);
	gs_base = (u64)(uintptr_t)data - 0x10000;
	if (syscall(SYS_arch_prctl, ARCH_SET_GS_, gs_base))
		gs_base = gs_orig;
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	syscall(SYS_arch_prctl, ARCH_SET_GS_, gs_orig);
	return rc;
}
