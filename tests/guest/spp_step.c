/*
 * spp_step.c: writes the hypervisor's emulator does not cover (FXSAVE, FXSAVE64, FNSTENV,
 * PUSHF, POP m64) against pages with write-protected sub-pages (ABI.md 4.2, 4.4, 4.5).
 *
 * In software mode Tessel single-steps such an instruction with the page writable for this
 * vCPU only (spp/step.c): if no protected byte changed it stands, else it is undone as a
 * whole and reported as DISCARDED. With hardware SPP a write to writable sub-pages never
 * exits and one that starts in a protected sub-page is discarded. The guest-visible outcome
 * is the same, so this program runs unchanged in every mode:
 *  1. saves into writable sub-pages land exactly as the same save into an unprotected buffer
 *     (done immediately before, in the same asm block, so the FPU/SSE state is identical;
 *     both areas are pre-filled with the same bytes, so the bytes FXSAVE leaves alone, e.g.
 *     464..511, compare equal too), protected sub-pages are untouched, no event;
 *  2. saves overlapping a protected sub-page change nothing in the page, execution goes on
 *     with the next instruction, one DISCARDED event names the instruction;
 *  3. PUSHF onto a stack in a writable sub-page pushes exactly what it pushes on an
 *     unprotected stack (TF = 0: the hypervisor's single-step flag must not show); POP m64;
 *  4. a guest-set TF still gives exactly one single-step #DB right after the FXSAVE, with
 *     DR6.BS, through a private #DB gate that returns to the interrupted code;
 *  5. an AP reading the protected sub-pages never sees a change while the BSP's FXSAVEs are
 *     stepped (and undone) on the same page.
 * Areas that overlap protected sub-pages start in a protected one: Bochs 2.7 checks only the
 * first access of an instruction and then caches the page as writable (docs/SPP.md section 10, bugs 1
 * and 4), so in hardware mode the outcome of a save starting in a writable sub-page is the
 * emulator's (ABI.md 4.2: "the processor decides"); that case is checked in software mode only.
 * Every probe write is preceded by INVLPG of its page. Outcomes are judged by memory contents.
 */
#include "spp_util.h"

#define SPP_STEP_POINTS 20

/* Page P: sub-pages 3, 12, 13 and 31 protected. */
#define P_MASK (~((1u << 3) | (1u << 12) | (1u << 13) | (1u << 31)))
/* Page Q (vCPU test): sub-pages 4, 5 and 12 protected. */
#define Q_MASK (~((1u << 4) | (1u << 5) | (1u << 12)))
#define Q_LOOPS 40

#define RFLAGS_TF 0x100ull
#define DR6_BS (1ull << 14)

enum { K_FXSAVE, K_FXSAVE64, K_FNSTENV };
static const char *const k_name[] = { "FXSAVE", "FXSAVE64", "FNSTENV" };
static const unsigned k_len[] = { 512, 512, 28 };

static struct {
	uint8_t *p, *q;          /* protected pages */
	uint8_t *r, *r2;         /* unprotected reference pages */
	uint8_t *exp, *expq;     /* what P and Q must contain */
	uint8_t *stack;          /* unprotected stack page for the PUSHF reference */
	struct tessel_ring *ring;
	int ready;
} st;

static int is_prot(uint32_t mask, unsigned off)
{
	return !((mask >> (off / SUB)) & 1);
}

/* Compares a page with its expected image; "" or a description of the first difference. */
static unsigned page_diff(const volatile uint8_t *pg, const uint8_t *exp, uint32_t mask, char *buf, unsigned size)
{
	unsigned first = 0, d = mem_diff(pg, exp, PAGE, &first);
	buf[0] = 0;
	if (d)
		fmt_snprintf(buf, size, "%u bytes of the page differ, first +0x%x (%s sub-page %u: 0x%02x, expected 0x%02x)", d,
			     first, is_prot(mask, first) ? "protected" : "writable", first / SUB, pg[first], exp[first]);
	return d;
}

/* Puts a page back to its expected image after a failure, so later points start clean. */
static void resync(uint8_t *pg, const uint8_t *exp, uint32_t mask)
{
	set1(pg, TESSEL_SPP_ALL_WRITABLE, 0);
	mem_copy(pg, exp, PAGE);
	set1(pg, mask, 0);
}

/*
 * Saves the FPU/SSE state with `kind` into ref, then (after INVLPG of tgt's page) into tgt,
 * in one asm block, so both see the same state. XMM0 is loaded with `seed` first. Returns the
 * RIP of the second save; *ran = 1 if the instruction after it ran. FNSTENV masks the x87
 * exceptions after storing: FLDENV of the reference image puts the control word back before
 * the second store and after it, so both images are of the same state.
 */
static uint64_t save_pair(int kind, void *ref, volatile void *tgt, uint64_t seed, uint64_t *ran)
{
	uint64_t rip = 0, mk = 0;
	const void *pg = (const void *)((uintptr_t)tgt & ~4095ull);
	switch (kind) {
	case K_FXSAVE:
		__asm__ __volatile__("movq %[s], %%xmm0\n\tfxsave (%[ref])\n\tinvlpg (%[pg])\n\txorl %k[mk], %k[mk]\n\t"
				     "leaq 1f(%%rip), %[r]\n1:\tfxsave (%[t])\n\tmovl $1, %k[mk]"
				     : [r] "=&r"(rip), [mk] "=&r"(mk)
				     : [s] "r"(seed), [ref] "r"(ref), [pg] "r"(pg), [t] "r"(tgt)
				     : "memory");
		break;
	case K_FXSAVE64:
		__asm__ __volatile__("movq %[s], %%xmm0\n\tfxsave64 (%[ref])\n\tinvlpg (%[pg])\n\txorl %k[mk], %k[mk]\n\t"
				     "leaq 1f(%%rip), %[r]\n1:\tfxsave64 (%[t])\n\tmovl $1, %k[mk]"
				     : [r] "=&r"(rip), [mk] "=&r"(mk)
				     : [s] "r"(seed), [ref] "r"(ref), [pg] "r"(pg), [t] "r"(tgt)
				     : "memory");
		break;
	default:
		__asm__ __volatile__("fnstenv (%[ref])\n\tfldenv (%[ref])\n\tinvlpg (%[pg])\n\txorl %k[mk], %k[mk]\n\t"
				     "leaq 1f(%%rip), %[r]\n1:\tfnstenv (%[t])\n\tmovl $1, %k[mk]\n\tfldenv (%[ref])"
				     : [r] "=&r"(rip), [mk] "=&r"(mk)
				     : [ref] "r"(ref), [pg] "r"(pg), [t] "r"(tgt)
				     : "memory");
		(void)seed;
		break;
	}
	*ran = mk;
	return rip;
}

/* Exactly one DISCARDED event from the BSP at `rip` whose gpa lies in [lo, hi). */
static const char *discard_event(uint64_t rip, uint64_t lo, uint64_t hi, char *buf, unsigned size)
{
	uint32_t n = ev_pending(st.ring);
	if (n != 1) {
		fmt_snprintf(buf, size, "%u events, expected 1 DISCARDED", n);
		return buf;
	}
	struct tessel_event *e = ev_at(st.ring, 0);
	if (e->kind != TESSEL_EV_DISCARDED || e->rip != rip || e->gpa < lo || e->gpa >= hi || e->vcpu != spp.apic_id ||
	    e->bytes != 0 || (e->gla != e->gpa && e->gla != 0)) {
		char ev[160];
		ev_fmt(ev, sizeof(ev), e);
		fmt_snprintf(buf, size, "event %s, expected DISCARDED rip 0x%llx gpa in [0x%llx, 0x%llx) vcpu %u bytes 0", ev,
			     (unsigned long long)rip, (unsigned long long)lo, (unsigned long long)hi, spp.apic_id);
		return buf;
	}
	return "";
}

static void step_setup(void)
{
	st.p = spp_pages(1);
	st.q = spp_pages(1);
	st.r = spp_pages(1);
	st.r2 = spp_pages(1);
	st.exp = spp_pages(1);
	st.expq = spp_pages(1);
	st.stack = spp_pages(1);
	st.ring = spp_pages(2);
	if (!st.p || !st.q || !st.r || !st.r2 || !st.exp || !st.expq || !st.stack || !st.ring) {
		sok(0, "setup: out of memory");
		return;
	}
	pat_fill(st.p, PAGE, 0x3b);
	mem_copy(st.exp, st.p, PAGE);
	pat_fill(st.q, PAGE, 0x71);
	mem_copy(st.expq, st.q, PAGE);
	int64_t e = ev_setup(st.ring, 2, 0);
	int64_t s1 = set1(st.p, P_MASK, 0), s2 = set1(st.q, Q_MASK, 0);
	uint32_t g1 = 0, g2 = 0;
	get1(st.p, &g1);
	get1(st.q, &g2);
	st.ready = e == 0 && s1 == 0 && s2 == 0 && g1 == P_MASK && g2 == Q_MASK;
	sok(st.ready,
	    "setup: ring (status %lld); P map 0x%08x (SET %lld, GET 0x%08x), Q map 0x%08x (SET %lld, GET 0x%08x)",
	    (long long)e, P_MASK, (long long)s1, g1, Q_MASK, (long long)s2, g2);
}

/* ---- 1: saves into writable sub-pages land as on an unprotected buffer ---- */
static void step_writable(void)
{
	static const struct {
		int kind;
		unsigned off;
		const char *where;
	} t[] = {
		{ K_FXSAVE, 512, "+512..1023 (sub-pages 4-7)" },
		{ K_FXSAVE64, 2048, "+2048..2559 (sub-pages 16-19)" },
		{ K_FNSTENV, 1024, "+1024..1051 (sub-page 8)" },
	};
	uint32_t events = 0;
	char evs[200] = "";
	for (unsigned i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		unsigned off = t[i].off, len = k_len[t[i].kind];
		uint8_t *ref = st.r + off;
		volatile uint8_t *a = st.p + off;
		mem_copy(ref, st.exp + off, len);
		ev_drain(st.ring);
		uint64_t ran = 0;
		save_pair(t[i].kind, ref, a, 0x1111111111111111ull * (i + 1), &ran);
		uint32_t n = ev_pending(st.ring);
		if (n && !evs[0])
			ev_fmt(evs, sizeof(evs), ev_at(st.ring, 0));
		events += n;
		/* the area must equal the reference image; the rest of the page the old contents */
		unsigned first = 0, ad = mem_diff(a, ref, len, &first);
		char why[300] = "", pd[200];
		int native = mem_cmp(ref, st.exp + off, len) != 0;
		mem_copy(st.exp + off, ref, len);
		unsigned d = page_diff(st.p, st.exp, P_MASK, pd, sizeof(pd));
		if (!native)
			fmt_snprintf(why, sizeof(why), "test self-check: the reference %s wrote nothing", k_name[t[i].kind]);
		else if (!ran)
			fmt_snprintf(why, sizeof(why), "execution did not continue after the instruction");
		else if (ad)
			fmt_snprintf(why, sizeof(why), "%u bytes of the area differ from the reference, first +%u (0x%02x, reference 0x%02x)",
				     ad, first, a[first], ref[first]);
		else if (d)
			fmt_snprintf(why, sizeof(why), "%s", pd);
		if (d)
			resync(st.p, st.exp, P_MASK);
		sok(!why[0], "%s into writable sub-pages %s of a protected page: area equals the unprotected reference, protected sub-pages unchanged%s%s",
		    k_name[t[i].kind], t[i].where, why[0] ? ": " : "", why);
	}
	sok(events == 0, "saves touching only writable bytes are not reported (%u events%s%s)", events, evs[0] ? ", first " : "",
	    evs);
	ev_drain(st.ring);
}

/* ---- 2: saves overlapping a protected sub-page are discarded as a whole ---- */
static void step_overlap(void)
{
	static const struct {
		int kind;
		unsigned off;
		int hw_defined; /* outcome defined with hardware SPP (starts in a protected sub-page) */
		const char *where;
	} t[] = {
		{ K_FXSAVE, 448, 1, "+448..959 (protected sub-page 3, writable 4-7)" },
		{ K_FXSAVE64, 1536, 1, "+1536..2047 (protected sub-pages 12-13, writable 14-15)" },
		{ K_FNSTENV, 496, 1, "+496..523 (protected sub-page 3, writable 4)" },
		{ K_FXSAVE, 1280, 0, "+1280..1791 (writable sub-pages 10-11, protected 12-13)" },
	};
	for (unsigned i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		unsigned off = t[i].off, len = k_len[t[i].kind];
		if (!t[i].hw_defined && spp.hw) {
			sskip("hardware SPP: a write starting in a writable sub-page is the processor's to judge (ABI.md 4.2)",
			      "%s at %s: discarded as a whole", k_name[t[i].kind], t[i].where);
			continue;
		}
		uint8_t *ref = st.r + off;
		volatile uint8_t *a = st.p + off;
		mem_copy(ref, st.exp + off, len);
		ev_drain(st.ring);
		uint64_t ran = 0;
		uint64_t rip = save_pair(t[i].kind, ref, a, 0x2222222222222222ull * (i + 1), &ran);
		char why[300] = "", pd[200], evb[260];
		unsigned d = page_diff(st.p, st.exp, P_MASK, pd, sizeof(pd));
		const char *ev = discard_event(rip, gpa_of(a), gpa_of(a) + len, evb, sizeof(evb));
		if (!mem_cmp(ref, st.exp + off, len))
			fmt_snprintf(why, sizeof(why), "test self-check: the reference %s wrote nothing", k_name[t[i].kind]);
		else if (!ran)
			fmt_snprintf(why, sizeof(why), "execution did not continue after the instruction");
		else if (d)
			fmt_snprintf(why, sizeof(why), "%s", pd);
		else if (*ev)
			fmt_snprintf(why, sizeof(why), "%s", ev);
		if (d)
			resync(st.p, st.exp, P_MASK);
		sok(!why[0], "%s at %s: discarded as a whole (page unchanged), next instruction ran, one DISCARDED event at its RIP%s%s",
		    k_name[t[i].kind], t[i].where, why[0] ? ": " : "", why);
	}
	ev_drain(st.ring);
}

/* ---- 3: PUSHF and POP m64 on writable sub-pages ---- */
struct pf {
	uint64_t img, after, fl, rip;
};

/* RFLAGS := fin (IF = 0), RSP := top, PUSHF, POP into a register, back to the real stack. */
static void pushf_run(uint64_t top, uint64_t fin, struct pf *o)
{
	__asm__ __volatile__("pushfq\n\tmovq %%rsp, %%r8\n\tpushq %[fin]\n\tpopfq\n\tmovq %[top], %%rsp\n\t"
			     "leaq 1f(%%rip), %[rip]\n1:\tpushfq\n\tpopq %[img]\n\tmovq %%rsp, %[after]\n\t"
			     "movq %%r8, %%rsp\n\tpushfq\n\tpopq %[fl]\n\tpopfq"
			     : [img] "=&r"(o->img), [after] "=&r"(o->after), [fl] "=&r"(o->fl), [rip] "=&r"(o->rip)
			     : [top] "r"(top), [fin] "r"(fin)
			     : "r8", "memory", "cc");
}

static void step_stack(void)
{
	/* CF PF AF SF OF set, IF = 0, TF = 0 */
	const uint64_t fin = 0x897;
	const unsigned top_off = 768; /* the push lands at +760..767, writable sub-page 5 */
	struct pf ref = { 0 }, pro = { 0 };
	invlpg(st.stack);
	pushf_run(gpa_of(st.stack + top_off), fin, &ref);
	ev_drain(st.ring);
	invlpg(st.p);
	pushf_run(gpa_of(st.p + top_off), fin, &pro);
	uint64_t landed = *(volatile uint64_t *)(st.p + top_off - 8);
	mem_copy(st.exp + top_off - 8, &ref.img, 8);
	char why[300] = "", pd[200];
	unsigned d = page_diff(st.p, st.exp, P_MASK, pd, sizeof(pd));
	uint32_t n = ev_pending(st.ring);
	if (ref.img & RFLAGS_TF)
		fmt_snprintf(why, sizeof(why), "test self-check: the reference image 0x%llx has TF", (unsigned long long)ref.img);
	else if (pro.img != ref.img)
		fmt_snprintf(why, sizeof(why), "pushed 0x%llx, reference 0x%llx (TF %s)", (unsigned long long)pro.img,
			     (unsigned long long)ref.img, (pro.img & RFLAGS_TF) ? "SET" : "clear");
	else if (landed != ref.img)
		fmt_snprintf(why, sizeof(why), "the stack slot holds 0x%llx, pushed 0x%llx", (unsigned long long)landed,
			     (unsigned long long)ref.img);
	else if (pro.after != gpa_of(st.p + top_off))
		fmt_snprintf(why, sizeof(why), "RSP after PUSHF/POP is top%lld", (long long)(pro.after - gpa_of(st.p + top_off)));
	else if (pro.fl != ref.fl || (pro.fl & RFLAGS_TF))
		fmt_snprintf(why, sizeof(why), "RFLAGS afterwards 0x%llx, reference 0x%llx", (unsigned long long)pro.fl,
			     (unsigned long long)ref.fl);
	else if (d)
		fmt_snprintf(why, sizeof(why), "%s", pd);
	else if (n)
		fmt_snprintf(why, sizeof(why), "%u events", n);
	if (d)
		resync(st.p, st.exp, P_MASK);
	sok(!why[0], "PUSHF with RSP in writable sub-page 5: image 0x%llx as on an unprotected stack (TF 0), RSP and RFLAGS right, no event%s%s",
	    (unsigned long long)ref.img, why[0] ? ": " : "", why);

	/* POP m64 into writable sub-page 9 */
	const unsigned dst_off = 1160;
	const uint64_t v = 0x0f1e2d3c4b5a6978ull;
	uint64_t before = 0, after = 0, rip = 0;
	ev_drain(st.ring);
	invlpg(st.p);
	__asm__ __volatile__("movq %%rsp, %[b]\n\tpushq %[v]\n\tleaq 1f(%%rip), %[rip]\n1:\tpopq (%[dst])\n\tmovq %%rsp, %[a]"
			     : [b] "=&r"(before), [a] "=&r"(after), [rip] "=&r"(rip)
			     : [v] "r"(v), [dst] "r"(st.p + dst_off)
			     : "memory");
	mem_copy(st.exp + dst_off, &v, 8);
	d = page_diff(st.p, st.exp, P_MASK, pd, sizeof(pd));
	n = ev_pending(st.ring);
	why[0] = 0;
	if (d)
		fmt_snprintf(why, sizeof(why), "%s", pd);
	else if (after != before)
		fmt_snprintf(why, sizeof(why), "RSP moved by %lld", (long long)(after - before));
	else if (n)
		fmt_snprintf(why, sizeof(why), "%u events", n);
	if (d)
		resync(st.p, st.exp, P_MASK);
	sok(!why[0], "POP m64 into writable sub-page 9 of a protected page: value lands, RSP restored, no event%s%s",
	    why[0] ? ": " : "", why);
	ev_drain(st.ring);
}

/* ---- 4: a guest-set TF over a stepped FXSAVE ---- */
__attribute__((visibility("hidden"))) volatile uint64_t step_db_hits, step_db_rip, step_db_rflags, step_db_dr6;
/* For the diagnostics: the first 8 bytes of the FXSAVE area as the handler found them. */
__attribute__((visibility("hidden"))) volatile uint64_t step_db_area, step_db_seen;
__attribute__((visibility("hidden"))) extern char step_db_entry[];
/* #DB gate: counts, records RIP / RFLAGS / DR6 of the first hit, clears TF in the frame, IRETQ. */
__asm__(".text\n"
	".globl step_db_entry\n"
	".hidden step_db_entry\n"
	".p2align 4\n"
	"step_db_entry:\n"
	"	pushq %rax\n"
	"	cmpq $0, step_db_hits(%rip)\n"
	"	jne 1f\n"
	"	movq %dr6, %rax\n"
	"	movq %rax, step_db_dr6(%rip)\n"
	"	movq 8(%rsp), %rax\n"
	"	movq %rax, step_db_rip(%rip)\n"
	"	movq 24(%rsp), %rax\n"
	"	movq %rax, step_db_rflags(%rip)\n"
	"	movq step_db_area(%rip), %rax\n"
	"	movq (%rax), %rax\n"
	"	movq %rax, step_db_seen(%rip)\n"
	"1:	andq $~0x100, 24(%rsp)\n"
	"	lock incq step_db_hits(%rip)\n"
	"	popq %rax\n"
	"	iretq\n");

struct dgate {
	uint16_t off_lo, sel;
	uint8_t ist, type_attr;
	uint16_t off_mid;
	uint32_t off_hi, zero;
};
static struct dgate db_idt[256] __attribute__((aligned(4096)));

struct tfr {
	uint64_t hits, rip, dr6, fl, after, rflags_in_handler, seen, before;
};

/* Saves into ref (TF = 0), then sets TF and FXSAVEs into tgt; interrupts off throughout. */
static void tf_run(void *ref, volatile void *tgt, struct tfr *o)
{
	const void *pg = (const void *)((uintptr_t)tgt & ~4095ull);
	step_db_hits = 0;
	step_db_rip = step_db_rflags = step_db_dr6 = step_db_seen = 0;
	step_db_area = (uint64_t)(uintptr_t)tgt;
	o->before = *(volatile uint64_t *)tgt;
	__asm__ __volatile__("leaq 2f(%%rip), %[after]\n\tpushfq\n\tcli\n\txorl %%eax, %%eax\n\tmovq %%rax, %%dr6\n\t"
			     "fxsave (%[ref])\n\tinvlpg (%[pg])\n\tpushfq\n\torq $0x100, (%%rsp)\n\tpopfq\n\t"
			     "fxsave (%[t])\n"
			     "2:\tnop\n\tnop\n\tpushfq\n\tpopq %[fl]\n\tnop\n\tnop\n\tnop\n\tpopfq"
			     : [after] "=&r"(o->after), [fl] "=&r"(o->fl)
			     : [ref] "r"(ref), [pg] "r"(pg), [t] "r"(tgt)
			     : "rax", "memory", "cc");
	o->hits = step_db_hits;
	o->rip = step_db_rip;
	o->dr6 = step_db_dr6;
	o->rflags_in_handler = step_db_rflags;
	o->seen = step_db_seen;
}

static void tf_diag(const char *what, const struct tfr *o)
{
	tap_diag("%s: %llu #DB, RIP after%lld, DR6 0x%llx, interrupted RFLAGS 0x%llx, RFLAGS afterwards 0x%llx; area[0..7] "
		 "before 0x%016llx, in the handler 0x%016llx",
		 what, (unsigned long long)o->hits, (long long)(o->rip - o->after), (unsigned long long)o->dr6,
		 (unsigned long long)o->rflags_in_handler, (unsigned long long)o->fl, (unsigned long long)o->before,
		 (unsigned long long)o->seen);
}

static void step_tf(void)
{
	struct x86_dtr old, n;
	sidt(&old);
	uint64_t len = (uint64_t)old.limit + 1;
	if (len > sizeof(db_idt))
		len = sizeof(db_idt);
	mem_set(db_idt, 0, sizeof(db_idt));
	mem_copy(db_idt, (const void *)(uintptr_t)old.base, len);
	uint64_t h = (uint64_t)(uintptr_t)step_db_entry;
	struct dgate *g = &db_idt[X86_DB];
	g->off_lo = (uint16_t)h;
	g->sel = read_cs();
	g->ist = 0;
	g->type_attr = 0x8e;
	g->off_mid = (uint16_t)(h >> 16);
	g->off_hi = (uint32_t)(h >> 32);
	g->zero = 0;
	n.limit = sizeof(db_idt) - 1;
	n.base = (uint64_t)(uintptr_t)db_idt;

	const unsigned off = 2560; /* +2560..3071, writable sub-pages 20-23 */
	struct tfr ref = { 0 }, pro = { 0 };
	uint8_t *cmp = st.r2 + off;
	mem_copy(st.r + off, st.exp + off, 512);
	mem_copy(cmp, st.exp + off, 512);
	lidt(&n);
	tf_run(st.r2 + 512, st.r + off, &ref); /* reference: unprotected page */
	ev_drain(st.ring);
	struct stats s0, s1;
	stats_get(&s0);
	tf_run(cmp, st.p + off, &pro);         /* protected page, writable sub-pages */
	stats_get(&s1);
	lidt(&old);

	char why[300] = "";
	if (ref.hits != 1 || ref.rip != ref.after || !(ref.dr6 & DR6_BS) || (ref.fl & RFLAGS_TF))
		fmt_snprintf(why, sizeof(why), "%llu #DB, RIP after%lld, DR6 0x%llx, TF afterwards %d",
			     (unsigned long long)ref.hits, (long long)(ref.rip - ref.after), (unsigned long long)ref.dr6,
			     !!(ref.fl & RFLAGS_TF));
	sok(!why[0], "reference (unprotected page): TF set before FXSAVE gives one #DB at the next instruction with DR6.BS (DR6 0x%llx)%s%s",
	    (unsigned long long)ref.dr6, why[0] ? ": " : "", why);

	why[0] = 0;
	if (pro.hits != ref.hits)
		fmt_snprintf(why, sizeof(why), "%llu #DB (reference %llu)%s", (unsigned long long)pro.hits,
			     (unsigned long long)ref.hits, pro.hits ? "" : ": the guest's single-step trap was lost");
	else if (pro.rip - pro.after != ref.rip - ref.after)
		fmt_snprintf(why, sizeof(why), "#DB at RIP after%lld (reference after%lld)%s", (long long)(pro.rip - pro.after),
			     (long long)(ref.rip - ref.after),
			     pro.seen == pro.before ? "; the handler found the area unwritten: the #DB came before FXSAVE ran" : "");
	else if (!(pro.dr6 & DR6_BS))
		fmt_snprintf(why, sizeof(why), "DR6 0x%llx without BS", (unsigned long long)pro.dr6);
	else if (pro.dr6 != ref.dr6)
		fmt_snprintf(why, sizeof(why), "DR6 0x%llx, reference 0x%llx", (unsigned long long)pro.dr6,
			     (unsigned long long)ref.dr6);
	else if ((pro.rflags_in_handler ^ ref.rflags_in_handler) & ~0x10ull) /* AF: undefined after XOR */
		fmt_snprintf(why, sizeof(why), "interrupted RFLAGS 0x%llx, reference 0x%llx",
			     (unsigned long long)pro.rflags_in_handler, (unsigned long long)ref.rflags_in_handler);
	else if (pro.fl & RFLAGS_TF)
		fmt_snprintf(why, sizeof(why), "TF still set afterwards (RFLAGS 0x%llx)", (unsigned long long)pro.fl);
	sok(!why[0], "protected page: TF set before FXSAVE gives exactly one #DB after it, DR6 and RFLAGS as in the reference%s%s",
	    why[0] ? ": " : "", why);
	if (why[0]) {
		tf_diag("reference", &ref);
		tf_diag("protected", &pro);
		tap_diag("protected run: exits +%llu, EPT violations +%llu, emulated writes +%llu, denied +%llu",
			 (unsigned long long)sdelta(&s0, &s1, TESSEL_STAT_EXITS),
			 (unsigned long long)sdelta(&s0, &s1, TESSEL_STAT_EPT_VIOLATIONS),
			 (unsigned long long)sdelta(&s0, &s1, TESSEL_STAT_EMULATED_WRITES),
			 (unsigned long long)sdelta(&s0, &s1, TESSEL_STAT_SPP_DENIED));
	}

	unsigned first = 0, ad = mem_diff(st.p + off, cmp, 512, &first);
	mem_copy(st.exp + off, cmp, 512);
	char pd[200];
	unsigned d = page_diff(st.p, st.exp, P_MASK, pd, sizeof(pd));
	uint32_t ne = ev_pending(st.ring);
	why[0] = 0;
	if (ad)
		fmt_snprintf(why, sizeof(why), "%u bytes of the area differ from the reference, first +%u", ad, first);
	else if (d)
		fmt_snprintf(why, sizeof(why), "%s", pd);
	else if (ne)
		fmt_snprintf(why, sizeof(why), "%u events", ne);
	if (d)
		resync(st.p, st.exp, P_MASK);
	sok(!why[0], "the single-stepped FXSAVE under a guest TF landed like the reference, no event%s%s", why[0] ? ": " : "",
	    why);
	ev_drain(st.ring);
}

/* ---- 5: a reader on the AP while the BSP's FXSAVEs are stepped ---- */
static struct {
	volatile uint64_t stop, started, done, iters, changes, first_off, first_val;
	volatile uint32_t apic;
	uint8_t *snap; /* the protected sub-pages of Q as set up */
} rd;

static const unsigned q_prot[][2] = { { 512, 256 }, { 1536, 128 } }; /* offset, length */

static void reader(void *arg)
{
	(void)arg;
	rd.apic = cpu_apic_id();
	rd.started = 1;
	const volatile uint64_t *q = (const volatile uint64_t *)st.q;
	const uint64_t *s = (const uint64_t *)rd.snap;
	uint64_t n = 0;
	while (!rd.stop) {
		for (unsigned r = 0; r < 2; r++)
			for (unsigned w = q_prot[r][0] / 8; w < (q_prot[r][0] + q_prot[r][1]) / 8; w++) {
				uint64_t v = q[w];
				if (v != s[w]) {
					if (!rd.changes) {
						rd.first_off = w * 8;
						rd.first_val = v;
					}
					rd.changes++;
				}
			}
		rd.iters = ++n;
	}
	rd.done = 1;
}

/* Waits until the reader made `k` more iterations; 0 if it did not within the bound. */
static int reader_progress(uint64_t k)
{
	uint64_t start = rd.iters;
	for (uint64_t spin = 0; rd.iters < start + k; spin++) {
		if (spin > 20000000ull)
			return 0;
		cpu_relax();
	}
	return 1;
}

static void step_smp(void)
{
	int ap = ap_index();
	rd.snap = spp_pages(1);
	if (ap < 0 || !rd.snap) {
		tap_diag("no AP (%u processors) or out of memory", mp_count());
		return;
	}
	mem_copy(rd.snap, st.expq, PAGE);
	uint32_t ap_apic = mp_apic_id((unsigned)ap);
	EFI_STATUS s = ap_start((unsigned)ap, reader, NULL);
	for (uint64_t spin = 0; !rd.started && spin < 100000000ull && !EFI_ERROR(s); spin++)
		cpu_relax();
	int running = !EFI_ERROR(s) && rd.started && reader_progress(2);
	if (!sok(running, "reader runs on AP #%d (APIC ID %u) while the BSP goes on (StartupThisAP %lx, started %d)", ap,
		 ap_apic, (unsigned long)s, (int)rd.started)) {
		rd.stop = 1;
		return;
	}
	static const unsigned straddle[2] = { 576, 1536 }; /* start in protected sub-page 4 / 12 */
	static const unsigned wonly[2] = { 2048, 3072 };   /* sub-pages 16-19 / 24-27 */
	unsigned bad_discard = 0, bad_land = 0, stalls = 0;
	char first_bad[300] = "", pd[200];
	uint64_t strip = 0;
	int rip_varies = 0;
	ev_drain(st.ring);
	uint64_t it0 = rd.iters, ch0 = rd.changes;
	for (unsigned i = 0; i < Q_LOOPS; i++) {
		/* straddling: discarded as a whole */
		unsigned off = straddle[i & 1];
		uint64_t ran = 0;
		mem_copy(st.r + off, st.expq + off, 512);
		uint64_t rip = save_pair(K_FXSAVE, st.r + off, st.q + off, 0x5150000000000000ull + i, &ran);
		if (i == 0)
			strip = rip;
		else if (rip != strip)
			rip_varies = 1;
		if (page_diff(st.q, st.expq, Q_MASK, pd, sizeof(pd)) || !ran) {
			if (!bad_discard++)
				fmt_snprintf(first_bad, sizeof(first_bad), "straddling FXSAVE #%u at +%u: %s", i, off,
					     ran ? pd : "next instruction did not run");
			resync(st.q, st.expq, Q_MASK);
		}
		if (!reader_progress(2))
			stalls++;
		/* writable only: lands */
		off = wonly[i & 1];
		mem_copy(st.r + off, st.expq + off, 512);
		save_pair(K_FXSAVE, st.r + off, st.q + off, 0xa1a0000000000000ull + i, &ran);
		unsigned first = 0, ad = mem_diff(st.q + off, st.r + off, 512, &first);
		mem_copy(st.expq + off, st.r + off, 512);
		unsigned d = page_diff(st.q, st.expq, Q_MASK, pd, sizeof(pd));
		if (ad || d || !ran) {
			if (!bad_land++ && !first_bad[0])
				fmt_snprintf(first_bad, sizeof(first_bad), "writable FXSAVE #%u at +%u: %s", i, off,
					     ad ? "area differs from the reference" : d ? pd : "next instruction did not run");
			if (d)
				resync(st.q, st.expq, Q_MASK);
		}
		if (!reader_progress(2))
			stalls++;
	}
	uint64_t it1 = rd.iters, ch1 = rd.changes;
	/* the events of the loop: one DISCARDED per straddling FXSAVE */
	uint32_t ne = ev_pending(st.ring), wrong = 0;
	char evs[200] = "";
	for (uint32_t k = 0; k < ne && k < st.ring->capacity; k++) {
		struct tessel_event *e = ev_at(st.ring, k);
		if (e->kind != TESSEL_EV_DISCARDED || e->rip != strip || e->vcpu != spp.apic_id || e->gpa < gpa_of(st.q) ||
		    e->gpa >= gpa_of(st.q) + PAGE) {
			if (!wrong++)
				ev_fmt(evs, sizeof(evs), e);
		}
	}
	ev_drain(st.ring);
	rd.stop = 1;
	for (uint64_t spin = 0; !rd.done && spin < 100000000ull; spin++)
		cpu_relax();
	int fw_done = ap_wait(5000);
	tap_diag("reader: %llu iterations during the BSP's %u FXSAVEs (%llu before), %llu changes seen; %u stalls",
		 (unsigned long long)(it1 - it0), 2 * Q_LOOPS, (unsigned long long)it0, (unsigned long long)rd.changes, stalls);
	char why[300] = "";
	if (bad_discard)
		fmt_snprintf(why, sizeof(why), "%u of %u changed the page or did not continue; first: %s", bad_discard, Q_LOOPS,
			     first_bad);
	else if (ne != Q_LOOPS || wrong || rip_varies)
		fmt_snprintf(why, sizeof(why), "%u events (%u not a DISCARDED from the BSP at the FXSAVE with gpa in Q%s%s)%s",
			     ne, wrong, evs[0] ? ", first " : "", evs, rip_varies ? "; test self-check: RIP varied" : "");
	sok(!why[0], "%u FXSAVEs straddling protected and writable sub-pages of Q: each discarded, one DISCARDED event each%s%s",
	    Q_LOOPS, why[0] ? ": " : "", why);
	why[0] = 0;
	if (bad_land)
		fmt_snprintf(why, sizeof(why), "%u of %u wrong; first: %s", bad_land, Q_LOOPS, first_bad);
	sok(!why[0], "%u FXSAVEs into writable-only areas of Q between them: each lands as the reference%s%s", Q_LOOPS,
	    why[0] ? ": " : "", why);
	why[0] = 0;
	if (ch1 != ch0 || rd.changes)
		fmt_snprintf(why, sizeof(why), "%llu changed reads, first at +%llu: 0x%016llx (expected 0x%016llx)",
			     (unsigned long long)rd.changes, (unsigned long long)rd.first_off,
			     (unsigned long long)rd.first_val, (unsigned long long)*(uint64_t *)(rd.snap + rd.first_off));
	else if (it1 - it0 < 4 * Q_LOOPS || stalls)
		fmt_snprintf(why, sizeof(why), "the reader ran only %llu iterations during the loop (%u stalls)",
			     (unsigned long long)(it1 - it0), stalls);
	sok(!why[0], "reader on the AP (APIC ID %u): never saw a protected byte of Q change, %llu reads of %u protected sub-pages during the loop%s%s",
	    rd.apic, (unsigned long long)(it1 - it0), 3, why[0] ? ": " : "", why);
	unsigned d = page_diff(st.q, st.expq, Q_MASK, pd, sizeof(pd));
	sok(rd.done && fw_done && !d, "reader stopped (flag %d, firmware %d); Q holds exactly the expected bytes%s%s",
	    (int)rd.done, fw_done, d ? ": " : "", pd);
}

static void suite_step(void)
{
	suite_begin("step", SPP_STEP_POINTS);
	step_setup();
	if (st.ready) {
		step_writable();
		step_overlap();
		step_stack();
		step_tf();
		step_smp();
		int64_t u1 = unprot(st.p, 1), u2 = unprot(st.q, 1);
		int64_t e = tessel_events_setup(0, 0, 0);
		uint32_t g1 = 0, g2 = 0;
		get1(st.p, &g1);
		get1(st.q, &g2);
		sok(u1 == 0 && u2 == 0 && e == 0 && g1 == TESSEL_SPP_ALL_WRITABLE && g2 == TESSEL_SPP_ALL_WRITABLE,
		    "cleanup: protection removed (%lld, %lld; maps 0x%08x 0x%08x), reporting off (%lld)", (long long)u1,
		    (long long)u2, g1, g2, (long long)e);
	}
	suite_end();
}

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *systab)
{
	spp_start(image, systab, SPP_STEP_POINTS);
	suite_step();
	guest_finish();
}
