/*
 * Host tests of the cross-CPU paths against the fake hardware layer, with two CPUs: the
 * guest's IA32_APIC_BASE writes (hv/vapic.c), the accounting of the hypervisor's NMIs
 * (hv/vapic.c, hv/exit.c nmi_arrived) and the shootdown handshake (spp/flush.c). The second
 * CPU is played on a second thread where the test needs the two to run at once; the NMI is
 * the fake APIC's ICR write, seen through the MMIO hook.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include <hw.h>
#include <arch/msr.h>
#include "hv/exit.h"
#include "hv/percpu.h"
#include "hv/vapic.h"
#include "hv/vmx_caps.h"
#include <arch/vmcs_fields.h>
#include "spp/spp.h"

#define XAPIC_BASE 0xfee00000ULL
#define ICR_LO (XAPIC_BASE + 0x300)
#define BOOT_BASE (XAPIC_BASE | APIC_BASE_ENABLE | APIC_BASE_BSP)

static struct percpu bsp, ap;
static struct guest_regs regs_bsp, regs_ap;
static volatile int nmis_to_ap; /* NMIs the fake APIC sent (ICR low write, delivery mode NMI) */

static void mmio_hook(u64 addr, u32 v)
{
	if (addr == ICR_LO && ((v >> 8) & 7) == 4)
		__atomic_add_fetch(&nmis_to_ap, 1, __ATOMIC_SEQ_CST);
}

static int setup(void **state)
{
	(void)state;
	fake_reset();
	memset(&bsp, 0, sizeof(bsp));
	memset(&ap, 0, sizeof(ap));
	bsp.self = &bsp;
	bsp.regs = &regs_bsp;
	bsp.index = 0;
	bsp.apic_id = 0;
	bsp.launched = true;
	ap.self = &ap;
	ap.regs = &regs_ap;
	ap.index = 1;
	ap.apic_id = 1;
	ap.launched = true;
	percpu_array[0] = &bsp;
	percpu_array[1] = &ap;
	percpu_count = 2;
	fake_cpu_local_set(&bsp);
	memset(&vmx_caps, 0, sizeof(vmx_caps));
	vmx_caps.phys_bits = 39;
	fake_msr_set(MSR_IA32_APIC_BASE, BOOT_BASE);
	nmis_to_ap = 0;
	fake_mmio_set_hook(mmio_hook);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	fake_mmio_set_hook(NULL);
	fake_set_invept_hook(NULL);
	fake_cpu_local_set(NULL);
	return 0;
}

/* ---- IA32_APIC_BASE ---- */

static void refused(u64 v)
{
	u64 before = fake_msr_get(MSR_IA32_APIC_BASE);
	assert_int_equal(vapic_apic_base_write(&bsp, v), -EINVAL);
	assert_int_equal(fake_msr_get(MSR_IA32_APIC_BASE), before);
}

static void test_apic_base_disable_refused(void **state)
{
	(void)state;
	refused(XAPIC_BASE | APIC_BASE_BSP);                    /* EN = 0 */
	refused(XAPIC_BASE | APIC_BASE_BSP | APIC_BASE_X2APIC); /* EXTD without EN: invalid */
}

static void test_apic_base_relocation_refused(void **state)
{
	(void)state;
	refused(0x80000000ULL | APIC_BASE_ENABLE | APIC_BASE_BSP);
	refused((XAPIC_BASE + 0x1000) | APIC_BASE_ENABLE | APIC_BASE_BSP);
	/* reserved bits: low bits, bit 9, at and above MAXPHYADDR */
	refused(BOOT_BASE | 0x1);
	refused(BOOT_BASE | (1ULL << 9));
	refused(BOOT_BASE | (1ULL << 39));
}

static void test_apic_base_x2apic_transitions(void **state)
{
	(void)state;
	/* The same value, and the BSP flag (kept as it is): accepted. */
	assert_int_equal(vapic_apic_base_write(&bsp, BOOT_BASE), 0);
	assert_int_equal(vapic_apic_base_write(&bsp, BOOT_BASE & ~APIC_BASE_BSP), 0);
	assert_int_equal(fake_msr_get(MSR_IA32_APIC_BASE), BOOT_BASE);
	/* xAPIC -> x2APIC: what Linux does. */
	assert_int_equal(vapic_apic_base_write(&bsp, BOOT_BASE | APIC_BASE_X2APIC), 0);
	assert_int_equal(fake_msr_get(MSR_IA32_APIC_BASE), BOOT_BASE | APIC_BASE_X2APIC);
	/* x2APIC -> xAPIC directly: an invalid transition (#GP on hardware too). */
	refused(BOOT_BASE);
	/* x2APIC -> disabled: legal on hardware, refused (the hypervisor's NMIs need it). */
	refused(XAPIC_BASE | APIC_BASE_BSP);
}

/* ---- NMIs: whose was it? ---- */

/* The AP takes an NMI (its NMI exit), on this thread. */
static void arrive(struct percpu *c)
{
	fake_cpu_local_set(c);
	nmi_arrived(c);
	fake_cpu_local_set(&bsp);
}

static void test_nmi_whose_request_was_consumed_is_not_injected(void **state)
{
	(void)state;
	/* The BSP sends the AP two virtual INITs (two kicks). The first NMI arrives; the AP
	 * consumes the INIT (vapic_check_init clears vinit_pending) before the second NMI
	 * arrives. Neither NMI is the guest's. */
	assert_true(vapic_icr_write(&bsp, (5U << 8) | (1U << 14), 1, true));
	assert_true(vapic_icr_write(&bsp, (5U << 8) | (1U << 14), 1, true));
	assert_int_equal(nmis_to_ap, 2);
	arrive(&ap);
	assert_false(ap.nmi_pending);
	ap.vinit_pending = false; /* what vapic_check_init does */
	arrive(&ap);
	assert_false(ap.nmi_pending); /* was: a phantom NMI for the guest */
	/* A genuine NMI afterwards is the guest's. */
	arrive(&ap);
	assert_true(ap.nmi_pending);
}

static void test_guest_nmi_ipi_survives_merge(void **state)
{
	(void)state;
	/* The guest on the BSP sends the AP an NMI IPI while a kick of the hypervisor's is on
	 * its way too; the two NMIs merge into one arrival. The guest's NMI must not be lost. */
	assert_true(vapic_icr_write(&bsp, (4U << 8) | (1U << 14), 1, true));
	assert_true(vapic_icr_write(&bsp, (5U << 8) | (1U << 14), 1, true));
	arrive(&ap);
	assert_true(ap.nmi_pending);
	/* An NMI IPI to itself is the guest's at once (no physical NMI). */
	int before = nmis_to_ap;
	bsp.nmi_pending = false;
	assert_true(vapic_icr_write(&bsp, (4U << 8) | (1U << 14) | (1U << 18), 0, true));
	assert_true(bsp.nmi_pending);
	assert_int_equal(nmis_to_ap, before);
}

/* ---- the shootdown waits for the target's INVEPT ---- */

static volatile bool ap_invept_done, ap_stop;

/* The AP's INVEPT takes a while (a busy CPU, an emulator): long enough for an initiator that
 * does not wait for the acknowledgement to return first. */
static void slow_invept(void)
{
	if (cpu_local_self() != &ap)
		return;
	struct timespec ts = { 0, 50 * 1000 * 1000 };
	nanosleep(&ts, NULL);
	__atomic_store_n(&ap_invept_done, true, __ATOMIC_SEQ_CST);
}

static void *ap_thread(void *arg)
{
	(void)arg;
	fake_cpu_local_set(&ap);
	int seen = 0;
	while (!__atomic_load_n(&ap_stop, __ATOMIC_SEQ_CST)) {
		int n = __atomic_load_n(&nmis_to_ap, __ATOMIC_SEQ_CST);
		if (n != seen) {
			seen = n;
			nmi_arrived(&ap); /* the NMI exit */
		}
	}
	return NULL;
}

static void test_shootdown_waits_for_target_invept(void **state)
{
	(void)state;
	ap_invept_done = false;
	ap_stop = false;
	fake_set_invept_hook(slow_invept);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, ap_thread, NULL), 0);
	spp_flush_all_cpus();
	bool done = __atomic_load_n(&ap_invept_done, __ATOMIC_SEQ_CST);
	__atomic_store_n(&ap_stop, true, __ATOMIC_SEQ_CST);
	pthread_join(t, NULL);
	assert_true(done); /* was: returned once the AP had cleared the request */
	assert_false(ap.nmi_pending); /* the shootdown NMI is not the guest's */
}

static void test_shootdown_skips_parked_vcpu(void **state)
{
	(void)state;
	/* A vCPU waiting for its SIPI runs no guest code: not waited for (it flushes before it
	 * enters the guest again), so the shootdown returns without any answer from it. */
	ap.wait_sipi = true;
	spp_flush_all_cpus();
	assert_int_equal(nmis_to_ap, 0);
}

/* ---- INIT and SIPI ---- */

#define INIT_ICR   ((5U << 8) | (1U << 14))
#define SIPI_ICR(v) ((6U << 8) | (1U << 14) | (v))

static volatile bool target_started;
static volatile u8 target_vector;

/* The target vCPU on its own thread: its way back into the guest after the kick. */
static void *target_thread(void *arg)
{
	struct percpu *t = arg;
	fake_cpu_local_set(t);
	vapic_check_init(t);
	u64 base = fake_vmcs_get(VMCS_GUEST_CS_BASE);
	target_vector = (u8)(base >> 12);
	__atomic_store_n(&target_started, true, __ATOMIC_SEQ_CST);
	return NULL;
}

static bool wait_started(int ms)
{
	for (int i = 0; i < ms; i++) {
		if (__atomic_load_n(&target_started, __ATOMIC_SEQ_CST))
			return true;
		struct timespec ts = { 0, 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	return __atomic_load_n(&target_started, __ATOMIC_SEQ_CST);
}

/* Runs the AP's vapic_check_init on a thread and returns the vector it started at; if it
 * is still waiting after 500 ms, it is released with SIPI 0xee (which a test never sends
 * otherwise) so the test ends either way. */
static u8 run_target(pthread_t *th, bool started_already)
{
	if (!started_already && !wait_started(500))
		assert_true(vapic_icr_write(&bsp, SIPI_ICR(0xee), 1, true));
	assert_true(wait_started(5000));
	pthread_join(*th, NULL);
	return target_vector;
}

static void start_target(pthread_t *th)
{
	target_started = false;
	target_vector = 0;
	assert_int_equal(pthread_create(th, NULL, target_thread, &ap), 0);
}

static void ap_is_not_bsp(void)
{
	/* The fake MSRs are one set for both threads: the AP's view (BSP flag clear). */
	fake_msr_set(MSR_IA32_APIC_BASE, XAPIC_BASE | APIC_BASE_ENABLE);
}

static void test_sipi_before_target_parks_is_latched(void **state)
{
	(void)state;
	ap_is_not_bsp();
	/* INIT, then the SIPI at once: the AP has not taken its kick yet (Linux's ~10 us). */
	assert_true(vapic_icr_write(&bsp, INIT_ICR, 1, true));
	vapic_icr_write(&bsp, SIPI_ICR(0x9a), 1, true);
	pthread_t th;
	start_target(&th);
	assert_int_equal(run_target(&th, false), 0x9a); /* was: the SIPI dropped, AP waits */
	assert_false(ap.wait_sipi);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_CS_SEL), 0x9a00);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_RIP), 0);
}

static void test_two_early_sipis_first_counts(void **state)
{
	(void)state;
	ap_is_not_bsp();
	assert_true(vapic_icr_write(&bsp, INIT_ICR, 1, true));
	vapic_icr_write(&bsp, SIPI_ICR(0x9a), 1, true);
	vapic_icr_write(&bsp, SIPI_ICR(0x9b), 1, true);
	pthread_t th;
	start_target(&th);
	assert_int_equal(run_target(&th, false), 0x9a);
	/* A SIPI once the AP runs again changes nothing. */
	vapic_icr_write(&bsp, SIPI_ICR(0x9c), 1, true);
	assert_int_equal(ap.vsipi_vector, 0x9a);
}

static void test_sipi_without_init_ignored(void **state)
{
	(void)state;
	ap_is_not_bsp();
	/* A SIPI to a running AP, then a whole INIT-SIPI cycle (vector 0x10): neither the
	 * stray SIPI nor the old cycle's vector may start the next INIT cycle. */
	ap.vsipi_vector = -1;
	vapic_icr_write(&bsp, SIPI_ICR(0x55), 1, true);
	assert_true(vapic_icr_write(&bsp, INIT_ICR, 1, true));
	pthread_t th;
	start_target(&th);
	assert_false(wait_started(100)); /* waits: the stray SIPI was not latched */
	assert_true(ap.wait_sipi);
	vapic_icr_write(&bsp, SIPI_ICR(0x10), 1, true);
	assert_int_equal(run_target(&th, true), 0x10);
	/* The next INIT: the AP waits again although vector 0x10 is still recorded. */
	assert_true(vapic_icr_write(&bsp, INIT_ICR, 1, true));
	start_target(&th);
	assert_false(wait_started(100));
	vapic_icr_write(&bsp, SIPI_ICR(0x20), 1, true);
	assert_int_equal(run_target(&th, true), 0x20);
}

static void test_init_after_sipi_runs_again(void **state)
{
	(void)state;
	ap_is_not_bsp();
	/* INIT, SIPI, INIT before the AP parked: the AP must wait for a SIPI of the second
	 * INIT, not start at the first cycle's vector. */
	assert_true(vapic_icr_write(&bsp, INIT_ICR, 1, true));
	vapic_icr_write(&bsp, SIPI_ICR(0x30), 1, true);
	assert_true(vapic_icr_write(&bsp, INIT_ICR, 1, true));
	pthread_t th;
	start_target(&th);
	assert_false(wait_started(100));
	vapic_icr_write(&bsp, SIPI_ICR(0x40), 1, true);
	assert_int_equal(run_target(&th, true), 0x40);
}

static void test_init_state_resets_debug_and_apic(void **state)
{
	(void)state;
	ap_is_not_bsp();
	for (int i = 0; i < 4; i++)
		fake_dr0_3[i] = 0x1000 * (i + 1);
	fake_dr6 = 0xffff4ff1ULL;
	fake_mmio_write32(XAPIC_BASE + 0xf0, 0x1ff);     /* SVR: enabled, spurious vector 0xff */
	fake_mmio_write32(XAPIC_BASE + 0x350, 0x700);    /* LINT0 ExtINT, unmasked */
	fake_mmio_write32(XAPIC_BASE + 0x320, 0x200ec);  /* timer periodic, vector 0xec */
	fake_mmio_write32(XAPIC_BASE + 0x80, 0x20);      /* TPR */
	assert_true(vapic_icr_write(&bsp, INIT_ICR, 1, true));
	vapic_icr_write(&bsp, SIPI_ICR(0x9a), 1, true);
	pthread_t th;
	start_target(&th);
	assert_int_equal(run_target(&th, false), 0x9a);
	for (int i = 0; i < 4; i++)
		assert_int_equal(fake_dr0_3[i], 0);
	assert_int_equal(fake_dr6, 0xffff0ff0ULL);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_DR7), 0x400);
	assert_int_equal(fake_mmio_read32(XAPIC_BASE + 0xf0), 0xff); /* software-disabled */
	assert_int_equal(fake_mmio_read32(XAPIC_BASE + 0x350), 1U << 16);
	assert_int_equal(fake_mmio_read32(XAPIC_BASE + 0x320), 1U << 16);
	assert_int_equal(fake_mmio_read32(XAPIC_BASE + 0x80), 0);
	/* The mode and base are kept (SDM 10.12.5.1). */
	assert_int_equal(fake_msr_get(MSR_IA32_APIC_BASE), XAPIC_BASE | APIC_BASE_ENABLE);
}

static void *bsp_target_thread(void *arg)
{
	(void)arg;
	fake_cpu_local_set(&bsp);
	vapic_check_init(&bsp);
	__atomic_store_n(&target_started, true, __ATOMIC_SEQ_CST);
	return NULL;
}

static void test_init_to_bsp_goes_to_reset_vector(void **state)
{
	(void)state;
	/* The AP sends the BSP an INIT (BOOT_BASE: the BSP flag is set): the BSP does not wait
	 * for a SIPI, it starts at the reset vector. */
	fake_vmcs_set(VMCS_GUEST_RIP, 0x1234);
	fake_cpu_local_set(&ap);
	assert_true(vapic_icr_write(&ap, INIT_ICR, 0, true));
	fake_cpu_local_set(&bsp);
	target_started = false;
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, bsp_target_thread, NULL), 0);
	bool started = wait_started(500);
	if (!started) /* release it so the test ends: was the old behaviour */
		vapic_icr_write(&ap, SIPI_ICR(0xee), 0, true);
	assert_true(wait_started(5000));
	pthread_join(th, NULL);
	assert_true(started);
	assert_false(bsp.wait_sipi);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_CS_SEL), 0xf000);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_CS_BASE), 0xffff0000ULL);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_RIP), 0xfff0);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_apic_base_disable_refused),
		T(test_apic_base_relocation_refused),
		T(test_apic_base_x2apic_transitions),
		T(test_nmi_whose_request_was_consumed_is_not_injected),
		T(test_guest_nmi_ipi_survives_merge),
		T(test_shootdown_waits_for_target_invept),
		T(test_shootdown_skips_parked_vcpu),
		T(test_sipi_before_target_parks_is_latched),
		T(test_two_early_sipis_first_counts),
		T(test_sipi_without_init_ignored),
		T(test_init_after_sipi_runs_again),
		T(test_init_state_resets_debug_and_apic),
		T(test_init_to_bsp_goes_to_reset_vector),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
