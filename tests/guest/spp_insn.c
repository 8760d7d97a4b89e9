/*
 * spp_insn.c: every instruction family against a write-protected sub-page (ABI.md 4.2). The
 * instruction must complete as if the protected bytes were ROM: protected bytes unchanged,
 * registers and flags as the processor computes them from the old memory value, execution
 * continuing with the next instruction, and one DENIED event naming the instruction's RIP.
 * The reference for registers and flags is the same instruction run natively on an
 * unprotected scratch copy of the same bytes. An instruction the hypervisor does not emulate
 * (FXSAVE) must be discarded as a whole and reported as DISCARDED.
 *
 * Page layout: sub-pages 1 and 3 of the test page are protected, the rest writable. The
 * operand T is at +144 (sub-page 1, 16-byte aligned). String tests start in sub-page 1 and
 * run into writable sub-page 2 (never back into a protected one: docs/SPP.md section 10 bug 1 would
 * let Bochs 2.7 skip the check after the first allowed write). Every probe is preceded by
 * INVLPG of the page. Built alone as spp_insn.efi, or included by spp_all.c.
 */
#include "spp_util.h"

#define SPP_INSN_POINTS 58

#define F_CF 0x001u
#define F_PF 0x004u
#define F_AF 0x010u
#define F_ZF 0x040u
#define F_SF 0x080u
#define F_OF 0x800u
#define F_ALL (F_CF | F_PF | F_AF | F_ZF | F_SF | F_OF)
#define F_LOGIC (F_CF | F_PF | F_ZF | F_SF | F_OF) /* AF undefined */
#define F_BT (F_CF | F_ZF)                          /* OF SF AF PF undefined, ZF unaffected */

#define INSN_MASK (~((1u << 1) | (1u << 3)))
#define T_OFF 144u

struct xs {
	uint64_t a, b, c, d, f, rip;
};

#define XFN(name, insn)                                                                                 \
	static void name(volatile void *m, struct xs *s)                                               \
	{                                                                                               \
		__asm__ __volatile__("pushq %[f]\n\tpopfq\n\tleaq 1f(%%rip), %[r]\n1:\t" insn                 \
				     "\n\tpushfq\n\tpopq %[f]"                                                \
				     : "+a"(s->a), "+b"(s->b), "+c"(s->c), "+d"(s->d), [f] "+r"(s->f),        \
				       [r] "=&r"(s->rip)                                                      \
				     : "D"(m)                                                                 \
				     : "memory", "cc");                                                       \
	}

XFN(x_mov64, "movq %%rax, (%%rdi)")
XFN(x_movimm32, "movl $0x11223344, (%%rdi)")
XFN(x_movimm8, "movb $0x5a, (%%rdi)")
XFN(x_mov16, "movw %%ax, (%%rdi)")
XFN(x_add64, "addq %%rax, (%%rdi)")
XFN(x_addimm, "addl $-1, (%%rdi)")
XFN(x_or32, "orl %%eax, (%%rdi)")
XFN(x_adc64, "adcq %%rax, (%%rdi)")
XFN(x_sbb16, "sbbw %%ax, (%%rdi)")
XFN(x_and8, "andb %%al, (%%rdi)")
XFN(x_sub32, "subl %%eax, (%%rdi)")
XFN(x_xor64, "xorq %%rax, (%%rdi)")
XFN(x_lockadd, "lock addq %%rax, (%%rdi)")
XFN(x_inc64, "incq (%%rdi)")
XFN(x_dec32, "decl (%%rdi)")
XFN(x_not16, "notw (%%rdi)")
XFN(x_neg64, "negq (%%rdi)")
XFN(x_xchg64, "xchgq %%rax, (%%rdi)")
XFN(x_cx8, "lock cmpxchgb %%bl, (%%rdi)")
XFN(x_cx16, "lock cmpxchgw %%bx, (%%rdi)")
XFN(x_cx32, "lock cmpxchgl %%ebx, (%%rdi)")
XFN(x_cx64, "lock cmpxchgq %%rbx, (%%rdi)")
XFN(x_cx16b, "lock cmpxchg16b (%%rdi)")
XFN(x_xadd64, "lock xaddq %%rax, (%%rdi)")
XFN(x_xadd32, "xaddl %%eax, (%%rdi)")
XFN(x_btsimm, "btsq $4, (%%rdi)")
XFN(x_btrreg, "btrl %%eax, (%%rdi)")
XFN(x_btcimm, "btcw $2, (%%rdi)")
XFN(x_lockbts, "lock btsq %%rax, (%%rdi)")
XFN(x_sete, "sete (%%rdi)")
XFN(x_setnc, "setnc (%%rdi)")
XFN(x_movnti64, "movntiq %%rax, (%%rdi)")
XFN(x_movnti32, "movntil %%eax, (%%rdi)")

enum { I_PLAIN, I_A_OLD, I_A_OLDX, I_DA_OLD, I_DA_OLDX };

struct itest {
	const char *name;
	void (*fn)(volatile void *, struct xs *);
	uint64_t a, b, c, d;
	uint32_t fin, fmask;
	unsigned size;
	int init;
	int changes; /* the native run changes memory (sanity of the test itself) */
};

static const struct itest insn_tests[] = {
	{ "MOV m64, r64", x_mov64, 0x1111111111111111ull, 0, 0, 0, 0, F_ALL, 8, I_PLAIN, 1 },
	{ "MOV m32, imm32", x_movimm32, 0, 0, 0, 0, 0, F_ALL, 4, I_PLAIN, 1 },
	{ "MOV m8, imm8", x_movimm8, 0, 0, 0, 0, F_CF, F_ALL, 1, I_PLAIN, 1 },
	{ "MOV m16, r16", x_mov16, 0x7777, 0, 0, 0, 0, F_ALL, 2, I_PLAIN, 1 },
	{ "ADD m64, r64", x_add64, 0x8000000000000001ull, 0, 0, 0, 0, F_ALL, 8, I_PLAIN, 1 },
	{ "ADD m32, imm8 (-1)", x_addimm, 0, 0, 0, 0, 0, F_ALL, 4, I_PLAIN, 1 },
	{ "OR m32, r32", x_or32, 0x40000010ull, 0, 0, 0, 0, F_LOGIC, 4, I_PLAIN, 1 },
	{ "ADC m64, r64 (CF=1)", x_adc64, 0x7fffffffffffffffull, 0, 0, 0, F_CF, F_ALL, 8, I_PLAIN, 1 },
	{ "SBB m16, r16 (CF=1)", x_sbb16, 0x1234, 0, 0, 0, F_CF, F_ALL, 2, I_PLAIN, 1 },
	{ "AND m8, r8", x_and8, 0x0f, 0, 0, 0, 0, F_LOGIC, 1, I_PLAIN, 1 },
	{ "SUB m32, r32", x_sub32, 0x90000000ull, 0, 0, 0, 0, F_ALL, 4, I_PLAIN, 1 },
	{ "XOR m64, r64 (result 0: ZF)", x_xor64, 0x0123456789abcdefull, 0, 0, 0, 0, F_LOGIC, 8, I_PLAIN, 1 },
	{ "LOCK ADD m64, r64", x_lockadd, 5, 0, 0, 0, 0, F_ALL, 8, I_PLAIN, 1 },
	{ "INC m64 (CF=1 kept)", x_inc64, 0, 0, 0, 0, F_CF, F_ALL, 8, I_PLAIN, 1 },
	{ "DEC m32", x_dec32, 0, 0, 0, 0, 0, F_ALL, 4, I_PLAIN, 1 },
	{ "NOT m16", x_not16, 0, 0, 0, 0, F_CF | F_ZF, F_ALL, 2, I_PLAIN, 1 },
	{ "NEG m64", x_neg64, 0, 0, 0, 0, 0, F_ALL, 8, I_PLAIN, 1 },
	{ "XCHG m64, r64 (RAX gets the old value)", x_xchg64, 0x2222222222222222ull, 0, 0, 0, 0, F_ALL, 8, I_PLAIN, 1 },
	{ "LOCK CMPXCHG m8 success", x_cx8, 0, 0x99, 0, 0, 0, F_ALL, 1, I_A_OLD, 1 },
	{ "LOCK CMPXCHG m8 failure", x_cx8, 0, 0x99, 0, 0, 0, F_ALL, 1, I_A_OLDX, 0 },
	{ "LOCK CMPXCHG m16 success", x_cx16, 0, 0x9999, 0, 0, 0, F_ALL, 2, I_A_OLD, 1 },
	{ "LOCK CMPXCHG m16 failure", x_cx16, 0, 0x9999, 0, 0, 0, F_ALL, 2, I_A_OLDX, 0 },
	{ "LOCK CMPXCHG m32 success", x_cx32, 0, 0x99999999ull, 0, 0, 0, F_ALL, 4, I_A_OLD, 1 },
	{ "LOCK CMPXCHG m32 failure (RAX zero-extended)", x_cx32, 0xffffffff00000000ull, 0x99999999ull, 0, 0, 0, F_ALL, 4,
	  I_A_OLDX, 0 },
	{ "LOCK CMPXCHG m64 success", x_cx64, 0, 0x9999999999999999ull, 0, 0, 0, F_ALL, 8, I_A_OLD, 1 },
	{ "LOCK CMPXCHG m64 failure", x_cx64, 0, 0x9999999999999999ull, 0, 0, 0, F_ALL, 8, I_A_OLDX, 0 },
	{ "LOCK CMPXCHG16B success", x_cx16b, 0, 0x5555555555555555ull, 0x6666666666666666ull, 0, 0, F_ZF, 16, I_DA_OLD,
	  1 },
	{ "LOCK CMPXCHG16B failure", x_cx16b, 0, 0x5555555555555555ull, 0x6666666666666666ull, 0, 0, F_ZF, 16,
	  I_DA_OLDX, 0 },
	{ "LOCK XADD m64, r64 (RAX gets the old value)", x_xadd64, 0x100, 0, 0, 0, 0, F_ALL, 8, I_PLAIN, 1 },
	{ "XADD m32, r32", x_xadd32, 0xffffffffull, 0, 0, 0, 0, F_ALL, 4, I_PLAIN, 1 },
	{ "BTS m64, imm8 (CF = old bit)", x_btsimm, 0, 0, 0, 0, F_ZF, F_BT, 8, I_PLAIN, 1 },
	{ "BTR m32, r32 (CF = old bit)", x_btrreg, 3, 0, 0, 0, 0, F_BT, 4, I_PLAIN, 1 },
	{ "BTC m16, imm8", x_btcimm, 0, 0, 0, 0, F_ZF, F_BT, 2, I_PLAIN, 1 },
	{ "LOCK BTS m64, r64", x_lockbts, 12, 0, 0, 0, 0, F_BT, 8, I_PLAIN, 1 },
	{ "SETE m8 (ZF=1)", x_sete, 0, 0, 0, 0, F_ZF, F_ALL, 1, I_PLAIN, 1 },
	{ "SETNC m8 (CF=0)", x_setnc, 0, 0, 0, 0, 0, F_ALL, 1, I_PLAIN, 1 },
	{ "MOVNTI m64, r64", x_movnti64, 0x3333333333333333ull, 0, 0, 0, 0, F_ALL, 8, I_PLAIN, 1 },
	{ "MOVNTI m32, r32", x_movnti32, 0x44444444ull, 0, 0, 0, 0, F_ALL, 4, I_PLAIN, 1 },
};
#define N_ITESTS (sizeof(insn_tests) / sizeof(insn_tests[0]))

static struct {
	uint8_t *p, *exp, *scratch, *src;
	struct tessel_ring *ring;
	int ready;
} ins;

/* Checks the ring for exactly one event of `kind` at rip/gpa; "" if fine, else a reason. */
static const char *insn_event(uint32_t kind, uint64_t rip, uint64_t gpa, unsigned bytes, int exact, char *buf,
			      unsigned size)
{
	uint32_t n = ev_pending(ins.ring);
	if (n == 0)
		return "no event";
	if (exact && n != 1) {
		fmt_snprintf(buf, size, "%u events", n);
		return buf;
	}
	struct tessel_event *e = ev_at(ins.ring, 0);
	if (e->kind != kind || e->rip != rip || e->gpa != gpa || e->vcpu != spp.apic_id ||
	    (bytes && e->bytes != bytes && e->bytes != 0) || (e->gla != gpa && e->gla != 0)) {
		char ev[160];
		ev_fmt(ev, sizeof(ev), e);
		fmt_snprintf(buf, size, "event %s, expected %s rip 0x%llx gpa 0x%llx bytes %u", ev, ev_kind(kind),
			     (unsigned long long)rip, (unsigned long long)gpa, bytes);
		return buf;
	}
	return "";
}

static void insn_prepare(void)
{
	ins.p = spp_pages(1);
	ins.exp = spp_pages(1);
	ins.scratch = spp_pages(1);
	ins.src = spp_pages(1);
	ins.ring = spp_pages(2);
	if (!ins.p || !ins.exp || !ins.scratch || !ins.src || !ins.ring) {
		sok(0, "setup: out of memory");
		return;
	}
	pat_fill(ins.p, PAGE, 0x29);
	*(volatile uint64_t *)(ins.p + T_OFF) = 0x0123456789abcdefull;
	*(volatile uint64_t *)(ins.p + T_OFF + 8) = 0xfedcba9876543210ull;
	mem_copy(ins.exp, ins.p, PAGE);
	pat_fill(ins.src, PAGE, 0xc3);
	int64_t e = ev_setup(ins.ring, 2, 0);
	int64_t s = set1(ins.p, INSN_MASK, 0);
	ins.ready = e == 0 && s == 0;
	sok(ins.ready, "setup: ring of 2 pages (status %lld), sub-pages 1 and 3 protected (status %lld)", (long long)e,
	    (long long)s);
}

static void insn_table(void)
{
	volatile uint8_t *t = ins.p + T_OFF, *sc = ins.scratch + T_OFF;
	uint64_t ifl = (read_rflags() & X86_RFLAGS_IF) | X86_RFLAGS_FIXED;
	for (unsigned i = 0; i < N_ITESTS; i++) {
		const struct itest *x = &insn_tests[i];
		uint64_t old0 = *(volatile uint64_t *)t, old1 = *(volatile uint64_t *)(t + 8);
		uint64_t szmask = x->size >= 8 ? ~0ull : (1ull << (8 * x->size)) - 1;
		struct xs s0 = { x->a, x->b, x->c, x->d, ifl | x->fin, 0 };
		switch (x->init) {
		case I_A_OLD:
			s0.a = old0 & szmask;
			break;
		case I_A_OLDX:
			s0.a = (x->a & ~szmask) | ((old0 ^ 1) & szmask);
			break;
		case I_DA_OLD:
			s0.a = old0;
			s0.d = old1;
			break;
		case I_DA_OLDX:
			s0.a = old0;
			s0.d = old1 ^ 0x100;
			break;
		}
		struct xs nat = s0, pro = s0;
		mem_copy((void *)sc, (const void *)t, 16);
		x->fn(sc, &nat);
		int changed = *(volatile uint64_t *)sc != old0 || *(volatile uint64_t *)(sc + 8) != old1;
		ev_drain(ins.ring);
		invlpg(ins.p);
		x->fn(t, &pro);
		unsigned first = 0, d = mem_diff(ins.p, ins.exp, PAGE, &first);
		char why[240] = "", evbuf[200];
		const char *ev = insn_event(TESSEL_EV_DENIED, pro.rip, gpa_of(t), x->size, 1, evbuf, sizeof(evbuf));
		if (d)
			fmt_snprintf(why, sizeof(why), "%u bytes changed, first +0x%x", d, first);
		else if (pro.a != nat.a || pro.b != nat.b || pro.c != nat.c || pro.d != nat.d)
			fmt_snprintf(why, sizeof(why), "registers a/b/c/d %llx/%llx/%llx/%llx, native %llx/%llx/%llx/%llx",
				     (unsigned long long)pro.a, (unsigned long long)pro.b, (unsigned long long)pro.c,
				     (unsigned long long)pro.d, (unsigned long long)nat.a, (unsigned long long)nat.b,
				     (unsigned long long)nat.c, (unsigned long long)nat.d);
		else if ((pro.f ^ nat.f) & x->fmask)
			fmt_snprintf(why, sizeof(why), "flags 0x%llx, native 0x%llx (mask 0x%x)",
				     (unsigned long long)(pro.f & F_ALL), (unsigned long long)(nat.f & F_ALL), x->fmask);
		else if (changed != x->changes)
			fmt_snprintf(why, sizeof(why), "test self-check: the native run %s memory",
				     changed ? "changed" : "did not change");
		else if (*ev)
			fmt_snprintf(why, sizeof(why), "%s", ev);
		sok(!why[0], "%s on a protected sub-page: memory kept, registers/flags as native%s%s", x->name,
		    why[0] ? ": " : "", why);
	}
}

/* ---- string instructions ---- */
enum { S_MOVSB, S_MOVSQ, S_STOSB, S_STOSQ, S_REP_STOSB, S_REP_MOVSB, S_REP_STOSQ, S_REP_MOVSQ };

static uint64_t str_run(int which, uint64_t *di, uint64_t *si, uint64_t *cx, uint64_t ax)
{
	uint64_t rip;
#define SRUN(insn)                                                                                        \
	__asm__ __volatile__("leaq 1f(%%rip), %[r]\n1:\t" insn                                            \
			     : "+D"(*di), "+S"(*si), "+c"(*cx), [r] "=&r"(rip)                            \
			     : "a"(ax)                                                                    \
			     : "memory")
	switch (which) {
	case S_MOVSB: SRUN("movsb"); break;
	case S_MOVSQ: SRUN("movsq"); break;
	case S_STOSB: SRUN("stosb"); break;
	case S_STOSQ: SRUN("stosq"); break;
	case S_REP_STOSB: SRUN("rep stosb"); break;
	case S_REP_MOVSB: SRUN("rep movsb"); break;
	case S_REP_STOSQ: SRUN("rep stosq"); break;
	default: SRUN("rep movsq"); break;
	}
#undef SRUN
	return rip;
}

static void insn_strings(void)
{
	static const struct {
		const char *name;
		int which;
		unsigned off, count, unit; /* destination offset, RCX, element size */
		int rep;
	} st[] = {
		{ "MOVSB", S_MOVSB, T_OFF, 1, 1, 0 },
		{ "MOVSQ", S_MOVSQ, T_OFF, 1, 8, 0 },
		{ "STOSB", S_STOSB, T_OFF, 1, 1, 0 },
		{ "STOSQ", S_STOSQ, T_OFF, 1, 8, 0 },
		{ "REP STOSB 228..383 (protected -> writable)", S_REP_STOSB, 228, 156, 1, 1 },
		{ "REP MOVSB 200..299 (protected -> writable)", S_REP_MOVSB, 200, 100, 1, 1 },
		{ "REP STOSQ 224..287 (protected -> writable)", S_REP_STOSQ, 224, 8, 8, 1 },
		{ "REP MOVSQ 240..271 (protected -> writable)", S_REP_MOVSQ, 240, 4, 8, 1 },
	};
	for (unsigned i = 0; i < sizeof(st) / sizeof(st[0]); i++) {
		unsigned len = st[i].count * st[i].unit;
		int movs = st[i].which == S_MOVSB || st[i].which == S_MOVSQ || st[i].which == S_REP_MOVSB ||
			   st[i].which == S_REP_MOVSQ;
		uint64_t ax = 0xa5a5a5a5a5a5a5a5ull - i;
		uint8_t *src = ins.src + 64 * i;
		uint64_t di = gpa_of(ins.p + st[i].off), si = gpa_of(src), cx = st[i].rep ? st[i].count : 0x77;
		uint64_t di0 = di, si0 = si;
		/* writable bytes of the destination get the new values in exp */
		for (unsigned b = 0; b < len; b++) {
			unsigned o = st[i].off + b;
			if ((INSN_MASK >> (o / SUB)) & 1)
				ins.exp[o] = movs ? src[b] : (uint8_t)(ax >> (8 * (b % st[i].unit)));
		}
		ev_drain(ins.ring);
		invlpg(ins.p);
		uint64_t rip = str_run(st[i].which, &di, &si, &cx, ax);
		unsigned first = 0, d = mem_diff(ins.p, ins.exp, PAGE, &first);
		char why[240] = "", evbuf[200];
		const char *ev = insn_event(TESSEL_EV_DENIED, rip, gpa_of(ins.p + st[i].off), 0, !st[i].rep, evbuf,
					    sizeof(evbuf));
		uint64_t cx_want = st[i].rep ? 0 : 0x77;
		if (d)
			fmt_snprintf(why, sizeof(why), "%u bytes differ from expected, first +0x%x (0x%02x, expected 0x%02x)",
				     d, first, ins.p[first], ins.exp[first]);
		else if (di != di0 + len || (movs && si != si0 + len) || (!movs && si != si0) || cx != cx_want)
			fmt_snprintf(why, sizeof(why), "RDI +%lld RSI +%lld RCX %llu (expected +%u, %s, %llu)",
				     (long long)(di - di0), (long long)(si - si0), (unsigned long long)cx, len,
				     movs ? "same" : "0", (unsigned long long)cx_want);
		else if (*ev)
			fmt_snprintf(why, sizeof(why), "%s", ev);
		if (d) { /* resynchronise the page with exp */
			set1(ins.p, TESSEL_SPP_ALL_WRITABLE, 0);
			mem_copy(ins.p, ins.exp, PAGE);
			set1(ins.p, INSN_MASK, 0);
		}
		sok(!why[0], "%s: protected bytes kept, writable bytes written, RSI/RDI/RCX advanced%s%s", st[i].name,
		    why[0] ? ": " : "", why);
	}
}

/* ---- PUSH and CALL onto a protected stack ---- */
static void insn_stack(void)
{
	volatile uint8_t *t = ins.p + T_OFF;
	uint64_t top = gpa_of(t + 8), after = 0, rip = 0, old = *(volatile uint64_t *)t;
	char why[240], evbuf[200];
	for (int k = 0; k < 2; k++) {
		ev_drain(ins.ring);
		invlpg(ins.p);
		if (k == 0)
			__asm__ __volatile__("pushfq\n\tcli\n\tmovq %%rsp, %%r8\n\tmovq %[top], %%rsp\n\t"
					     "leaq 1f(%%rip), %[rip]\n1:\tpushq %[v]\n\tmovq %%rsp, %[after]\n\t"
					     "movq %%r8, %%rsp\n\tpopfq"
					     : [after] "=&r"(after), [rip] "=&r"(rip)
					     : [top] "r"(top), [v] "r"(0x1234567812345678ull)
					     : "r8", "memory");
		else
			__asm__ __volatile__("pushfq\n\tcli\n\tmovq %%rsp, %%r8\n\tmovq %[top], %%rsp\n\t"
					     "leaq 1f(%%rip), %[rip]\n1:\tpushq $0x5a5a5a5a\n\tmovq %%rsp, %[after]\n\t"
					     "movq %%r8, %%rsp\n\tpopfq"
					     : [after] "=&r"(after), [rip] "=&r"(rip)
					     : [top] "r"(top)
					     : "r8", "memory");
		unsigned d = mem_diff(ins.p, ins.exp, PAGE, NULL);
		const char *ev = insn_event(TESSEL_EV_DENIED, rip, gpa_of(t), 8, 1, evbuf, sizeof(evbuf));
		why[0] = 0;
		if (d)
			fmt_snprintf(why, sizeof(why), "%u bytes changed", d);
		else if (after != top - 8)
			fmt_snprintf(why, sizeof(why), "RSP moved by %lld", (long long)(after - top));
		else if (*ev)
			fmt_snprintf(why, sizeof(why), "%s", ev);
		sok(!why[0], "PUSH %s onto a protected stack: RSP -= 8, the value does not land%s%s",
		    k ? "imm32" : "r64", why[0] ? ": " : "", why);
	}
	/* CALL: the callee records RSP and the stack top, then leaves by a jump (no RET: the
	 * return address was never stored). */
	uint64_t called = 0, topval = 0;
	ev_drain(ins.ring);
	invlpg(ins.p);
	__asm__ __volatile__("pushfq\n\tcli\n\tmovq %%rsp, %%r8\n\tmovq %[top], %%rsp\n\txorl %%r11d, %%r11d\n\t"
			     "leaq 1f(%%rip), %[rip]\n1:\tcall 2f\n\tjmp 3f\n"
			     "2:\tmovq %%rsp, %[after]\n\tmovq (%%rsp), %[tv]\n\tmovl $1, %%r11d\n"
			     "3:\tmovq %%r8, %%rsp\n\tpopfq\n\tmovq %%r11, %[called]"
			     : [after] "=&r"(after), [rip] "=&r"(rip), [tv] "=&r"(topval), [called] "=&r"(called)
			     : [top] "r"(top)
			     : "r8", "r11", "memory");
	unsigned d = mem_diff(ins.p, ins.exp, PAGE, NULL);
	const char *ev = insn_event(TESSEL_EV_DENIED, rip, gpa_of(t), 8, 1, evbuf, sizeof(evbuf));
	why[0] = 0;
	if (!called)
		fmt_snprintf(why, sizeof(why), "the call target did not run");
	else if (d)
		fmt_snprintf(why, sizeof(why), "%u bytes changed", d);
	else if (after != top - 8 || topval != old)
		fmt_snprintf(why, sizeof(why), "RSP moved by %lld, stack top 0x%llx (old 0x%llx)", (long long)(after - top),
			     (unsigned long long)topval, (unsigned long long)old);
	else if (*ev)
		fmt_snprintf(why, sizeof(why), "%s", ev);
	sok(!why[0], "CALL with a protected stack: the call happens, RSP -= 8, the return address does not land%s%s",
	    why[0] ? ": " : "", why);
}

/* ---- SSE stores ---- */
static uint64_t sse_run(int which, volatile void *m, const void *src, void *back)
{
	uint64_t rip;
#define SSE(insn)                                                                                      \
	__asm__ __volatile__("movdqu (%[s]), %%xmm0\n\tleaq 1f(%%rip), %[r]\n1:\t" insn " %%xmm0, (%[m])\n\t" \
			     "movdqu %%xmm0, (%[b])"                                                   \
			     : [r] "=&r"(rip)                                                          \
			     : [s] "r"(src), [m] "r"(m), [b] "r"(back)                                 \
			     : "memory")
	switch (which) {
	case 0: SSE("movups"); break;
	case 1: SSE("movaps"); break;
	case 2: SSE("movdqu"); break;
	case 3: SSE("movdqa"); break;
	case 4: SSE("movq"); break;
	default: SSE("movd"); break;
	}
#undef SSE
	return rip;
}

static void insn_sse(void)
{
	static const char *const names[] = { "MOVUPS", "MOVAPS", "MOVDQU", "MOVDQA", "MOVQ m64, xmm", "MOVD m32, xmm" };
	static const unsigned sizes[] = { 16, 16, 16, 16, 8, 4 };
	uint8_t *src = ins.src + 1024, *back = ins.src + 2048;
	volatile uint8_t *t = ins.p + T_OFF;
	for (int i = 0; i < 6; i++) {
		for (int b = 0; b < 16; b++)
			src[b] = (uint8_t)(0x40 + 16 * i + b);
		mem_set(back, 0, 16);
		ev_drain(ins.ring);
		invlpg(ins.p);
		uint64_t rip = sse_run(i, t, src, back);
		unsigned d = mem_diff(ins.p, ins.exp, PAGE, NULL);
		char why[240] = "", evbuf[200];
		const char *ev = insn_event(TESSEL_EV_DENIED, rip, gpa_of(t), sizes[i], 1, evbuf, sizeof(evbuf));
		if (d)
			fmt_snprintf(why, sizeof(why), "%u bytes changed", d);
		else if (mem_cmp(back, src, 16))
			fmt_snprintf(why, sizeof(why), "XMM0 changed");
		else if (*ev)
			fmt_snprintf(why, sizeof(why), "%s", ev);
		sok(!why[0], "%s to a protected sub-page: memory kept, XMM0 intact%s%s", names[i], why[0] ? ": " : "", why);
	}
}

/* ---- FXSAVE: not emulated, must be discarded ---- */
static void insn_fxsave(void)
{
	/* 512-byte area at +448: 448..511 in protected sub-page 3, 512..959 writable */
	volatile uint8_t *area = ins.p + 448;
	uint8_t *sc = ins.scratch + 448;
	mem_set(sc, 0xee, 512);
	__asm__ __volatile__("fxsave (%0)" : : "r"(sc) : "memory");
	unsigned native = 0;
	for (int b = 0; b < 160; b++)
		native += sc[b] != 0xee;
	uint64_t rip = 0, marker = 0;
	ev_drain(ins.ring);
	invlpg(ins.p);
	__asm__ __volatile__("xorl %k[mk], %k[mk]\n\tleaq 1f(%%rip), %[r]\n1:\tfxsave (%[m])\n\tmovl $1, %k[mk]"
			     : [r] "=&r"(rip), [mk] "=&r"(marker)
			     : [m] "r"(area)
			     : "memory");
	unsigned first = 0, d = mem_diff(ins.p, ins.exp, PAGE, &first);
	char why[240] = "", evbuf[200];
	const char *ev = insn_event(TESSEL_EV_DISCARDED, rip, gpa_of(area), 0, 1, evbuf, sizeof(evbuf));
	if (!native)
		fmt_snprintf(why, sizeof(why), "test self-check: native FXSAVE wrote nothing");
	else if (!marker)
		fmt_snprintf(why, sizeof(why), "execution did not continue after FXSAVE");
	else if (d)
		fmt_snprintf(why, sizeof(why), "%u bytes changed, first +0x%x (%s sub-page)", d, first,
			     ((INSN_MASK >> (first / SUB)) & 1) ? "writable" : "protected");
	else if (*ev)
		fmt_snprintf(why, sizeof(why), "%s", ev);
	if (d) {
		set1(ins.p, TESSEL_SPP_ALL_WRITABLE, 0);
		mem_copy(ins.p, ins.exp, PAGE);
		set1(ins.p, INSN_MASK, 0);
	}
	sok(!why[0], "FXSAVE starting in a protected sub-page is discarded: whole area unchanged, DISCARDED event%s%s",
	    why[0] ? ": " : "", why);
}

static void suite_insn(void)
{
	suite_begin("insn", SPP_INSN_POINTS);
	insn_prepare();
	if (ins.ready) {
		insn_table();
		insn_strings();
		insn_stack();
		insn_sse();
		insn_fxsave();
		int64_t s = set1(ins.p, TESSEL_SPP_ALL_WRITABLE, 0);
		int64_t e = tessel_events_setup(0, 0, 0);
		sok(s == 0 && e == 0, "cleanup: protection removed (%lld), reporting off (%lld)", (long long)s, (long long)e);
	}
	suite_end();
}

#ifndef SPP_ALL
EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *st)
{
	spp_start(image, st, SPP_INSN_POINTS);
	suite_insn();
	guest_finish();
}
#endif
