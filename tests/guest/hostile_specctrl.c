/*
 * hostile_specctrl.c: the guest kernel cannot choose the speculation controls root mode runs
 * with (hv/vmx.c setup_spec_ctrl, docs/SECURITY.md "Side channels"). IA32_SPEC_CTRL passes
 * through to the guest; VMX switches it at every exit and entry, so:
 *
 *   1. the processor has IA32_SPEC_CTRL (the group runs on a model that does);
 *   2. the guest writes STIBP|SSBD (IBRS clear): while the hypervisor handles a call, root
 *      mode's value is the host's (IBRS where the processor has enhanced IBRS, else 0), read
 *      by the test build's HC_TEST_ROOT_MSR, not the guest's;
 *   3. the guest reads its own value back after that call;
 *   4. the guest clears the MSR (a rootkit turning enhanced IBRS off): root mode still runs
 *      with the host's value;
 *   5. the guest's value survives 200 exits of both kinds: HC_NOP (hv/entry.asm's fast path,
 *      which never reaches C) and CPUID (the full exit path);
 *   6. the AP's value is its own: the AP writes STIBP, sees the host's value in root mode on
 *      its CPU and reads STIBP back, while the BSP's 0 stays 0.
 * The guest's value at the start is written back at the end; then the common hostile
 * post-checks (hostile.h).
 */
#include "arch.h"
#include "guest.h"
#include "hostile.h"
#include "spp_util.h"
#include <tessel.h>

#define HC_TEST_ROOT_MSR 0x7e04u
#define MSR_SPEC_CTRL 0x48u
#define MSR_ARCH_CAP 0x10au
#define IBRS 1ull
#define STIBP 2ull
#define SSBD 4ull
#define SUITE_POINTS 6
#define POINTS (SUITE_POINTS + HOSTILE_POSTCHECK_POINTS)

static int64_t root_value(uint64_t *v)
{
	struct tessel_hc_out o = { 0, 0, 0 };
	int64_t s = tessel_vmcall(HC_TEST_ROOT_MSR, MSR_SPEC_CTRL, 0, 0, 0, &o);
	*v = o.rbx;
	return s;
}

static struct {
	uint64_t host;
	volatile int done;
	int64_t status;
	uint64_t root, back;
} ap;

static void on_ap(void *arg)
{
	(void)arg;
	uint64_t saved = rdmsr(MSR_SPEC_CTRL);
	wrmsr(MSR_SPEC_CTRL, STIBP);
	ap.status = root_value(&ap.root);
	ap.back = rdmsr(MSR_SPEC_CTRL);
	wrmsr(MSR_SPEC_CTRL, saved);
	ap.done = 1;
}

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *st)
{
	spp_start(image, st, POINTS);
	struct hostile_guard g;
	hostile_guard_setup(&g);
	suite_begin("hostile-specctrl", SUITE_POINTS);
	struct tessel_cpuid l0 = tessel_cpuid(0, 0), l7 = { 0, 0, 0, 0 };
	if (l0.eax >= 7)
		l7 = tessel_cpuid(7, 0);
	int have = (l7.edx & ((1u << 26) | (1u << 27) | (1u << 31))) != 0;
	if (!sok(have, "IA32_SPEC_CTRL is enumerated (CPUID.(7,0):EDX 0x%x)", l7.edx)) {
		for (int i = 2; i <= SUITE_POINTS; i++)
			sskip("no IA32_SPEC_CTRL", "point %d", i);
		suite_end();
		hostile_postcheck(&g, "no IA32_SPEC_CTRL");
		guest_finish();
	}
	uint64_t host = 0;
	if ((l7.edx & (1u << 29)) && (rdmsr(MSR_ARCH_CAP) & 2))
		host = IBRS;
	ap.host = host;
	tap_diag("expected root-mode value 0x%llx (enhanced IBRS %s)", (unsigned long long)host,
		 host ? "enumerated" : "not enumerated");
	uint64_t start = rdmsr(MSR_SPEC_CTRL), root = ~0ull;

	wrmsr(MSR_SPEC_CTRL, STIBP | SSBD);
	int64_t s = root_value(&root);
	sok(s == 0 && root == host && root != (STIBP | SSBD),
	    "guest writes 0x6: root mode runs with 0x%llx, not the guest's (status %lld)", (unsigned long long)root,
	    (long long)s);
	uint64_t back = rdmsr(MSR_SPEC_CTRL);
	sok(back == (STIBP | SSBD), "the guest reads its 0x6 back after the call (0x%llx)", (unsigned long long)back);

	wrmsr(MSR_SPEC_CTRL, 0);
	s = root_value(&root);
	sok(s == 0 && root == host, "guest clears it: root mode still runs with 0x%llx (status %lld)",
	    (unsigned long long)root, (long long)s);

	wrmsr(MSR_SPEC_CTRL, SSBD);
	int bad = 0;
	for (int i = 0; i < 100; i++) {
		struct tessel_hc_out o = { 0, 0, 0 };
		bad += tessel_vmcall(HC_NOP, 0, 0, 0, 0, &o) != 0;
		(void)tessel_cpuid(0, 0);
		bad += rdmsr(MSR_SPEC_CTRL) != SSBD;
	}
	sok(bad == 0, "the guest's 0x4 survives 100 fast-path HC_NOP and 100 CPUID exits (%d wrong)", bad);

	wrmsr(MSR_SPEC_CTRL, 0);
	int cpu = ap_index();
	if (cpu < 0 || ap_start((unsigned)cpu, on_ap, NULL) != EFI_SUCCESS) {
		sskip("no AP", "the AP's value is its own");
	} else {
		ap_wait(5000);
		uint64_t bsp = rdmsr(MSR_SPEC_CTRL);
		sok(ap.done && ap.status == 0 && ap.root == host && ap.back == STIBP && bsp == 0,
		    "AP: writes 0x2, root mode on the AP 0x%llx, reads back 0x%llx; the BSP's stays 0x%llx",
		    (unsigned long long)ap.root, (unsigned long long)ap.back, (unsigned long long)bsp);
	}
	wrmsr(MSR_SPEC_CTRL, start);
	suite_end();
	hostile_postcheck(&g, "IA32_SPEC_CTRL written 0x6, 0, 0x4 and 0x2 (AP)");
	guest_finish();
}
