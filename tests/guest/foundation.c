/*
 * foundation.c: the guest-side acceptance test of the hypervisor foundation, written against
 * tools/tessel.h and ABI.md only. Discovery by CPUID on the BSP and every AP, HC_NOP and
 * HC_QUERY (status, results, register preservation), unknown call numbers, VMCALL from
 * CPL 3, VMX instructions and CR4.VMXE in the guest, IA32_FEATURE_CONTROL. Reports TAP on
 * COM1 and powers off. Without a hypervisor every hypervisor check fails cleanly: VMCALL's
 * #UD is caught by trap_call.
 */
#include "guest.h"
#include "arch.h"
#include "lowlevel.h"
#include <tessel.h>

/* ---- discovery ---- */
struct discovery {
	struct tessel_cpuid l1, sig, feat;
	int present;
	int64_t nop, query;
	struct tessel_hc_out q;
};

static void discover(struct discovery *d)
{
	d->l1 = tessel_cpuid(1, 0);
	d->sig = tessel_cpuid(TESSEL_CPUID_SIGNATURE, 0);
	d->feat = tessel_cpuid(TESSEL_CPUID_FEATURES, 0);
	d->present = tessel_present();
}

static void ap_discover(void *arg)
{
	struct discovery *d = arg;
	discover(d);
	/* VMCALL without a hypervisor would #UD on the AP, outside any guard. */
	if (d->present) {
		d->nop = tessel_vmcall(HC_NOP, 0, 0, 0, 0, NULL);
		d->query = tessel_vmcall(HC_QUERY, 0, 0, 0, 0, &d->q);
	}
}

/* A string of the problems with one CPU's discovery leaves ("" if none). */
static const char *discovery_problem(const struct discovery *d, const struct discovery *bsp)
{
	if (!(d->l1.ecx & CPUID1_ECX_HYPERVISOR_BIT))
		return "CPUID.1:ECX[31] = 0";
	if (d->l1.ecx & CPUID1_ECX_VMX_BIT)
		return "CPUID.1:ECX[5] (VMX) = 1";
	if (d->sig.eax != TESSEL_CPUID_MAX_LEAF)
		return "CPUID 0x40000000 EAX wrong";
	if (d->sig.ebx != TESSEL_SIG_EBX || d->sig.ecx != TESSEL_SIG_ECX || d->sig.edx != TESSEL_SIG_EDX)
		return "signature wrong";
	if (d->feat.eax != TESSEL_ABI_VERSION)
		return "version wrong";
	if (d->feat.ecx < TESSEL_MIN_MAX_PAGES)
		return "max pages < 512";
	if (bsp && (d->feat.ebx != bsp->feat.ebx || d->feat.ecx != bsp->feat.ecx))
		return "features differ from the BSP";
	return "";
}

static void report_bsp_discovery(const struct discovery *d)
{
	char sig[13];
	mem_copy(sig, &d->sig.ebx, 4);
	mem_copy(sig + 4, &d->sig.ecx, 4);
	mem_copy(sig + 8, &d->sig.edx, 4);
	sig[12] = 0;
	for (int i = 0; i < 12; i++)
		if (sig[i] && (sig[i] < 0x20 || sig[i] > 0x7e))
			sig[i] = '?';
	tap_ok(d->l1.ecx & CPUID1_ECX_HYPERVISOR_BIT, "CPUID.1:ECX[31] (hypervisor present) = 1");
	tap_ok(!(d->l1.ecx & CPUID1_ECX_VMX_BIT), "CPUID.1:ECX[5] (VMX) = 0");
	tap_ok(d->sig.eax == TESSEL_CPUID_MAX_LEAF, "CPUID 0x40000000 EAX = 0x40000001 (got 0x%x)", d->sig.eax);
	tap_ok(d->sig.ebx == TESSEL_SIG_EBX && d->sig.ecx == TESSEL_SIG_ECX && d->sig.edx == TESSEL_SIG_EDX,
	       "CPUID 0x40000000 signature \"TesselHV\" (got \"%s\")", sig);
	tap_ok(d->feat.eax == TESSEL_ABI_VERSION, "CPUID 0x40000001 EAX = 0x00010004, ABI 1.4 (got 0x%x)", d->feat.eax);
	tap_ok(d->feat.ecx >= TESSEL_MIN_MAX_PAGES, "CPUID 0x40000001 ECX (max pages) >= 512 (got %u)", d->feat.ecx);
	uint32_t f = d->feat.ebx;
	tap_ok(d->present && d->feat.edx == 0 && !(f & ~TESSEL_F_KNOWN) &&
		       (f & (TESSEL_F_SPP_HW | TESSEL_F_SPP_SW)) != (TESSEL_F_SPP_HW | TESSEL_F_SPP_SW),
	       "CPUID 0x40000001 EBX flags known, not both SPP_HW and SPP_SW, EDX = 0 (flags 0x%x)", f);
	tap_ok(f & TESSEL_F_PIN, "CPUID 0x40000001 EBX has TESSEL_F_PIN (always in 1.2; flags 0x%x)", f);
}

/* ---- guarded hypercalls ---- */
struct hc {
	uint64_t nr, a[4];
	int64_t status;
	struct tessel_hc_out out;
};

static void do_hc(void *arg)
{
	struct hc *h = arg;
	h->status = tessel_vmcall(h->nr, h->a[0], h->a[1], h->a[2], h->a[3], &h->out);
}

/* Issues a call; 0 if it returned, else a description of the trap in `why`. */
static int hc_call(struct hc *h, char *why, unsigned size)
{
	struct trap_info t;
	if (trap_call(TRAP_ALL, do_hc, h, &t)) {
		fmt_snprintf(why, size, "%s at VMCALL: no hypervisor", trap_name(t.vector));
		return -1;
	}
	why[0] = 0;
	return 0;
}

static void test_unknown(uint64_t nr)
{
	struct hc h = { .nr = nr };
	char why[64];
	if (hc_call(&h, why, sizeof(why))) {
		tap_ok(0, "call 0x%llx returns -ENOSYS (%s)", (unsigned long long)nr, why);
		return;
	}
	tap_ok(h.status == -TESSEL_ENOSYS, "call 0x%llx returns -ENOSYS (got %lld)", (unsigned long long)nr,
	       (long long)h.status);
}

static void do_probe(void *arg)
{
	regprobe_vmcall(arg);
}

static const char *const rp_names[RP_COUNT] = { "RAX", "RBX", "RCX", "RDX", "RSI", "RDI", "RBP", "R8",
						"R9",  "R10", "R11", "R12", "R13", "R14", "R15" };

/* VMCALL nr with every GPR set to a distinct value; checks the registers in `keep` are intact. */
static void test_preserved(uint64_t nr, uint32_t keep, const char *what)
{
	struct regprobe p;
	mem_set(&p, 0, sizeof(p));
	for (int i = 0; i < RP_COUNT; i++)
		p.in[i] = 0x1111111111111111ull * (uint64_t)(i + 1) ^ 0x8000000000000001ull;
	p.in[RP_RAX] = nr;
	struct trap_info t;
	if (trap_call(TRAP_ALL, do_probe, &p, &t)) {
		tap_ok(0, "%s (%s at VMCALL: no hypervisor)", what, trap_name(t.vector));
		return;
	}
	int bad = -1;
	for (int i = 0; i < RP_COUNT; i++)
		if ((keep & (1u << i)) && p.out[i] != p.in[i])
			bad = i;
	if (p.rsp_after != p.rsp_before) {
		tap_ok(0, "%s (RSP 0x%llx -> 0x%llx)", what, (unsigned long long)p.rsp_before,
		       (unsigned long long)p.rsp_after);
		return;
	}
	if (bad >= 0)
		tap_ok(0, "%s (%s 0x%llx -> 0x%llx)", what, rp_names[bad], (unsigned long long)p.in[bad],
		       (unsigned long long)p.out[bad]);
	else
		tap_ok(1, "%s (status %lld)", what, (long long)p.out[RP_RAX]);
}

/* ---- CPL 3 ---- */
static void test_ring3(void)
{
	static const uint8_t read_cs_code[] = { INSN_MOV_CS_EAX, INSN_INT80 };
	static const uint8_t vmcall_code[] = { INSN_VMCALL, INSN_INT80 };
	struct trap_info t;
	uint64_t regs[6] = { 0, 0, 0, 0, 0, 0 };
	int r = ring3_run(read_cs_code, sizeof(read_cs_code), regs, &t);
	tap_ok(r == 0 && t.vector == RING3_INT && (t.regs[0] & 3) == 3 && (t.cs & 3) == 3,
	       "ring-3 helper runs code at CPL 3 and returns (setup %d, %s, CS 0x%llx)", r,
	       r == 0 ? trap_name(t.vector) : "-", (unsigned long long)t.regs[0]);

	regs[0] = HC_QUERY;
	regs[1] = 0xb0b0b0b0b0b0b0b0ull;
	regs[2] = 0xc0c0c0c0c0c0c0c0ull;
	regs[3] = 0xd0d0d0d0d0d0d0d0ull;
	regs[4] = 0x5151515151515151ull;
	r = ring3_run(vmcall_code, sizeof(vmcall_code), regs, &t);
	if (r != 0 || t.vector != RING3_INT) {
		tap_ok(0, "VMCALL (HC_QUERY) at CPL 3 returns -EPERM (%s at CPL %llu, RIP 0x%llx)",
		       r ? "setup failed" : trap_name(t.vector), (unsigned long long)(t.cs & 3),
		       (unsigned long long)t.rip);
		tap_ok(0, "VMCALL at CPL 3 changes no other register (did not return)");
		return;
	}
	tap_ok((int64_t)t.regs[0] == -TESSEL_EPERM, "VMCALL (HC_QUERY) at CPL 3 returns -EPERM (got %lld)",
	       (long long)t.regs[0]);
	tap_ok(t.regs[1] == regs[1] && t.regs[2] == regs[2] && t.regs[3] == regs[3] && t.regs[4] == regs[4],
	       "VMCALL at CPL 3 changes no other register");
}

/* ---- VMX instructions and control registers ---- */
static uint64_t vmx_scratch[4] __attribute__((aligned(4096)));

static void do_vmxon(void *a) { (void)a; x86_vmxon(&vmx_scratch[0]); }
static void do_vmxoff(void *a) { (void)a; x86_vmxoff(); }
static void do_vmclear(void *a) { (void)a; x86_vmclear(&vmx_scratch[0]); }
static void do_vmptrld(void *a) { (void)a; x86_vmptrld(&vmx_scratch[0]); }
static void do_vmptrst(void *a) { (void)a; x86_vmptrst(&vmx_scratch[1]); }
static void do_vmread(void *a) { (void)a; vmx_scratch[2] = x86_vmread(0x681e /* guest RIP */); }
static void do_vmwrite(void *a) { (void)a; x86_vmwrite(0x681e, 0); }
static void do_vmlaunch(void *a) { (void)a; x86_vmlaunch(); }
static void do_vmresume(void *a) { (void)a; x86_vmresume(); }
static void do_invept(void *a) { (void)a; x86_invept(2, vmx_scratch); }
static void do_invvpid(void *a) { (void)a; x86_invvpid(2, vmx_scratch); }

static void expect_fault(void (*fn)(void *), void *arg, uint64_t vector, const char *what)
{
	struct trap_info t;
	if (trap_call(TRAP_ALL, fn, arg, &t))
		tap_ok(t.vector == vector, "%s raises %s (got %s, error 0x%llx)", what, trap_name(vector),
		       trap_name(t.vector), (unsigned long long)t.error);
	else
		tap_ok(0, "%s raises %s (no fault)", what, trap_name(vector));
}

static uint64_t cr4_seen_after_set;

static void do_set_vmxe(void *a)
{
	(void)a;
	uint64_t cr4 = read_cr4();
	write_cr4(cr4 | X86_CR4_VMXE);
	/* Only reached if the write did not fault: undo it at once. */
	cr4_seen_after_set = read_cr4();
	write_cr4(cr4);
}

static uint64_t fc_value;

static void do_read_fc(void *a) { (void)a; fc_value = rdmsr(MSR_IA32_FEATURE_CONTROL); }
static void do_write_fc(void *a) { (void)a; wrmsr(MSR_IA32_FEATURE_CONTROL, fc_value); }
static void do_ud2(void *a) { (void)a; x86_ud2(); }

static void test_vmx_insns(void)
{
	expect_fault(do_ud2, NULL, X86_UD, "UD2 (exception helper self-test)");
	expect_fault(do_vmxon, NULL, X86_UD, "VMXON");
	expect_fault(do_vmxoff, NULL, X86_UD, "VMXOFF");
	expect_fault(do_vmclear, NULL, X86_UD, "VMCLEAR");
	expect_fault(do_vmptrld, NULL, X86_UD, "VMPTRLD");
	expect_fault(do_vmptrst, NULL, X86_UD, "VMPTRST");
	expect_fault(do_vmread, NULL, X86_UD, "VMREAD");
	expect_fault(do_vmwrite, NULL, X86_UD, "VMWRITE");
	expect_fault(do_vmlaunch, NULL, X86_UD, "VMLAUNCH");
	expect_fault(do_vmresume, NULL, X86_UD, "VMRESUME");
	expect_fault(do_invept, NULL, X86_UD, "INVEPT");
	expect_fault(do_invvpid, NULL, X86_UD, "INVVPID");
	tap_ok(!(read_cr4() & X86_CR4_VMXE), "CR4.VMXE reads 0 (CR4 0x%llx)", (unsigned long long)read_cr4());
	cr4_seen_after_set = 0;
	struct trap_info t;
	if (!tessel_present())
		/* QEMU TCG (no VMX) hangs the vCPU on this write instead of raising #GP. */
		tap_ok(0, "setting CR4.VMXE raises #GP (not tried without the hypervisor)");
	else if (trap_call(TRAP_ALL, do_set_vmxe, NULL, &t))
		tap_ok(t.vector == X86_GP, "setting CR4.VMXE raises #GP (got %s)", trap_name(t.vector));
	else
		tap_ok(0, "setting CR4.VMXE raises #GP (no fault; CR4 read back 0x%llx, restored)",
		       (unsigned long long)cr4_seen_after_set);

	int trapped = trap_call(TRAP_ALL, do_read_fc, NULL, &t);
	tap_ok(!trapped, "RDMSR IA32_FEATURE_CONTROL works (%s, value 0x%llx)", trapped ? trap_name(t.vector) : "no fault",
	       (unsigned long long)fc_value);
	expect_fault(do_write_fc, NULL, X86_GP, "WRMSR IA32_FEATURE_CONTROL (same value)");
}

/* ---- main ---- */
#define N_BSP_DISCOVERY 8
#define N_MP 1
#define N_PER_AP 2
#define N_HC 4
#define N_QUERY 4
#define N_UNKNOWN 8
#define N_RING3 3
#define N_VMX 16

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *systab)
{
	guest_init(image, systab);
	unsigned ncpu = mp_count(), bsp = mp_bsp();
	unsigned naps = ncpu > 1 ? ncpu - 1 : 0;
	tap_plan(N_BSP_DISCOVERY + N_MP + N_PER_AP * (int)naps + N_HC + N_QUERY + N_UNKNOWN + N_RING3 + N_VMX);

	struct discovery bspd;
	mem_set(&bspd, 0, sizeof(bspd));
	discover(&bspd);
	tap_diag("BSP: CPUID.1:ECX 0x%x, 0x40000000 0x%x/0x%x/0x%x/0x%x, 0x40000001 0x%x/0x%x/0x%x/0x%x", bspd.l1.ecx,
		 bspd.sig.eax, bspd.sig.ebx, bspd.sig.ecx, bspd.sig.edx, bspd.feat.eax, bspd.feat.ebx, bspd.feat.ecx,
		 bspd.feat.edx);
	report_bsp_discovery(&bspd);

	/* HC_NOP */
	struct hc h = { .nr = HC_NOP };
	char why[64];
	if (hc_call(&h, why, sizeof(why)))
		tap_ok(0, "HC_NOP returns 0 (%s)", why);
	else
		tap_ok(h.status == 0, "HC_NOP returns 0 (got %lld)", (long long)h.status);
	test_preserved(HC_NOP, 0x7ffeu, "HC_NOP preserves RBX RCX RDX RSI RDI RBP R8-R15 and RSP");
	test_preserved(HC_QUERY, 0x7ff0u, "HC_QUERY preserves RSI RDI RBP R8-R15 and RSP");
	test_preserved(0x7777, 0x7ffeu, "an unknown call preserves RBX..R15 and RSP");

	/* HC_QUERY */
	h = (struct hc){ .nr = HC_QUERY };
	if (hc_call(&h, why, sizeof(why))) {
		for (int i = 0; i < N_QUERY; i++)
			tap_ok(0, "HC_QUERY check %d (%s)", i + 1, why);
	} else {
		tap_ok(h.status == 0, "HC_QUERY returns 0 (got %lld)", (long long)h.status);
		tap_ok(h.out.rbx == TESSEL_ABI_VERSION && h.out.rbx == bspd.feat.eax,
		       "HC_QUERY version = CPUID 0x40000001 EAX = 0x00010004 (got 0x%llx)", (unsigned long long)h.out.rbx);
		tap_ok(h.out.rcx == bspd.feat.ebx, "HC_QUERY flags = CPUID 0x40000001 EBX (got 0x%llx, CPUID 0x%x)",
		       (unsigned long long)h.out.rcx, bspd.feat.ebx);
		tap_ok(h.out.rdx == bspd.feat.ecx && h.out.rdx >= TESSEL_MIN_MAX_PAGES,
		       "HC_QUERY max pages = CPUID 0x40000001 ECX, >= 512 (got %llu)", (unsigned long long)h.out.rdx);
	}

	/* Unknown calls */
	test_unknown(0x02);
	test_unknown(0x14);
	test_unknown(0x22);
	test_unknown(0xffff);
	test_unknown(1ull << 32);
	test_unknown(~0ull);
	/* The loader's calls (take a CPU out of VMX, seal the start) are closed once the start
	 * is sealed, before any next stage runs: a guest can never undo the hypervisor. */
	test_unknown(0x7f00);
	test_unknown(0x7f01);

	test_ring3();
	test_vmx_insns();

	/* Every AP: the same discovery, and HC_NOP / HC_QUERY there. Last, because a broken AP
	 * can hang StartupThisAP despite its timeout, and the BSP results are in by then. */
	tap_ok(ncpu >= 1, "MP services report %u enabled CPUs (BSP is #%u)", ncpu, bsp);
	for (unsigned cpu = 0; cpu < ncpu; cpu++) {
		if (cpu == bsp)
			continue;
		struct discovery d;
		mem_set(&d, 0, sizeof(d));
		d.nop = d.query = -9999;
		EFI_STATUS st = mp_run_on(cpu, ap_discover, &d, 5000000);
		uint32_t apic = mp_apic_id(cpu);
		if (EFI_ERROR(st)) {
			tap_ok(0, "cpu %u (APIC %u): discovery leaves as ABI.md says (StartupThisAP: 0x%llx)", cpu, apic,
			       (unsigned long long)st);
			tap_ok(0, "cpu %u: HC_NOP and HC_QUERY work there (not run)", cpu);
			continue;
		}
		const char *why = discovery_problem(&d, &bspd);
		tap_ok(!*why, "cpu %u (APIC %u): discovery leaves as ABI.md says%s%s", cpu, apic, *why ? ": " : "", why);
		tap_ok(d.present && d.nop == 0 && d.query == 0 && d.q.rbx == TESSEL_ABI_VERSION &&
			       d.q.rcx == bspd.feat.ebx && d.q.rdx == bspd.feat.ecx,
		       "cpu %u: HC_NOP and HC_QUERY work there (%s, NOP %lld, QUERY %lld)", cpu,
		       d.present ? "present" : "no signature: not called", (long long)d.nop, (long long)d.query);
	}
	guest_finish();
}
