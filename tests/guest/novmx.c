/*
 * novmx.c: the next stage after a start that failed and was undone (the all-or-nothing start,
 * hv/start.c): no processor may still be a guest of a hypervisor that is no longer there.
 *   1. the BSP sees no hypervisor: CPUID.1:ECX[31] clear, no "TesselHV" signature;
 *   2. neither does any AP (checked on each through MP services);
 *   3. VMCALL on the BSP raises #UD, as outside VMX operation;
 *   4. the region's configuration table is gone (the loader freed the region).
 */
#include "guest.h"
#include <tessel.h>

static int no_hypervisor(void)
{
	struct tessel_cpuid one = tessel_cpuid(1, 0);
	return !(one.ecx & (1u << 31)) && !tessel_present();
}

struct ap_check { volatile int ran, clean; };

static void ap_fn(void *arg)
{
	struct ap_check *r = arg;
	r->clean = no_hypervisor();
	r->ran = 1;
}

static void do_vmcall(void *arg)
{
	(void)arg;
	uint64_t rax = 0;
	__asm__ __volatile__("vmcall" : "+a"(rax) : : "memory", "cc", "rbx", "rcx", "rdx");
}

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *systab)
{
	guest_init(image, systab);
	tap_plan(4);
	tap_ok(no_hypervisor(), "the BSP runs without a hypervisor (CPUID.1:ECX[31] clear, no TesselHV)");

	unsigned n = mp_count(), bsp = mp_bsp(), clean = 0, aps = 0;
	for (unsigned i = 0; i < n; i++) {
		if (i == bsp)
			continue;
		aps++;
		struct ap_check r = { 0, 0 };
		EFI_STATUS st = mp_run_on(i, ap_fn, &r, 2000000);
		if (st == EFI_SUCCESS && r.ran && r.clean)
			clean++;
		else
			tap_diag("cpu %u: EFI status %llx, ran %d, clean %d", i, (unsigned long long)st, r.ran, r.clean);
	}
	tap_ok(aps > 0 && clean == aps, "every AP runs without a hypervisor (%u of %u)", clean, aps);

	struct trap_info t;
	trap_call(TRAP_VEC(6), do_vmcall, NULL, &t);
	tap_ok(t.trapped && t.vector == 6, "VMCALL on the BSP raises #UD (trapped %d, vector %llu)", t.trapped,
	       (unsigned long long)t.vector);

	static EFI_GUID guid = TESSEL_REGION_GUID_INIT;
	tap_ok(config_table(&guid) == NULL, "the hypervisor region's configuration table is gone");
	guest_finish();
}
