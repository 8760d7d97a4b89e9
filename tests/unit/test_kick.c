/*
 * Host tests: a request that reaches a vCPU by NMI while it is on its way into the guest is
 * served at that VM entry (hv/exit.c nmi_entry_rewind, hv/entry.asm vmx_entry_check).
 *
 * The vCPU (ap) takes a VM exit; the exit path runs (vmx_handle_exit, real code); then the
 * instructions of hv/entry.asm after it are modelled: the POPs of the guest's registers, the
 * test of entry_kick (CMP, at vmx_entry_check), its branch (JNE) to the path that calls
 * vmx_entry_kicked (real code) and comes back to the POPs, and VMRESUME (vmx_entry_resume).
 * Another CPU (bsp) sends the request, and its NMI is taken in root mode through the real
 * NMI handler (trap_handler with vector 2) at one of these points:
 *
 *   - during the exit handler, before the exit path's check of the requests;
 *   - at a POP, at the CMP, at the JNE, at VMRESUME (not yet executed).
 *
 * Requests: an NMI IPI from the guest's other processor, and INIT then SIPI. At the
 * modelled VM entry the request must have been served: the NMI in the VM-entry
 * interruption field; the INIT taken and the vCPU started at the SIPI vector. Before the
 * fix the request stayed pending until the vCPU's next VM exit (which a guest that spins
 * without exits never makes) at every point after the exit path's check.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include <hw.h>
#include <arch/cpu.h>
#include <arch/msr.h>
#include <arch/vmx.h>
#include "hv/exit.h"
#include "hv/percpu.h"
#include "hv/traps.h"
#include "hv/vapic.h"
#include "hv/vmcs.h"
#include "hv/vmx_caps.h"

#define XAPIC_BASE 0xfee00000ULL
#define INIT_ICR ((5U << 8) | (1U << 14))
#define SIPI_ICR(v) ((6U << 8) | (1U << 14) | (v))
#define NMI_ICR ((4U << 8) | (1U << 14))

static struct percpu bsp, ap;
static struct guest_regs regs_bsp, regs_ap;

enum point { AT_HANDLER, AT_POP, AT_CMP, AT_JNE, AT_VMRESUME, NPOINTS };
static const char *const point_name[] = { "exit handler", "POP", "CMP", "JNE", "VMRESUME" };
enum request { REQ_NMI, REQ_INIT_SIPI };

static enum point nmi_point;
static enum request req;
static bool sent;
static u32 kicked_calls;

static int setup(void **state)
{
	(void)state;
	fake_reset();
	memset(&bsp, 0, sizeof(bsp));
	memset(&ap, 0, sizeof(ap));
	bsp.self = &bsp;
	bsp.regs = &regs_bsp;
	bsp.launched = true;
	bsp.entered = true;
	ap.self = &ap;
	ap.regs = &regs_ap;
	ap.index = 1;
	ap.apic_id = 1;
	ap.launched = true;
	ap.entered = true;
	ap.vsipi_vector = -1;
	percpu_array[0] = &bsp;
	percpu_array[1] = &ap;
	percpu_count = 2;
	memset(&vmx_caps, 0, sizeof(vmx_caps));
	vmx_caps.phys_bits = 39;
	/* The AP's view of IA32_APIC_BASE (the fake MSRs are one set): not the BSP. */
	fake_msr_set(MSR_IA32_APIC_BASE, XAPIC_BASE | APIC_BASE_ENABLE);
	fake_cpu_local_set(&ap);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	fake_cpu_local_set(NULL);
	return 0;
}

/* The other processor sends the request (its NMI to ap is counted, not yet taken). */
static void send_request(void)
{
	if (sent)
		return;
	sent = true;
	if (req == REQ_NMI) {
		assert_true(vapic_icr_write(&bsp, NMI_ICR, 1, true));
	} else {
		assert_true(vapic_icr_write(&bsp, INIT_ICR, 1, true));
		assert_true(vapic_icr_write(&bsp, SIPI_ICR(0x9a), 1, true));
	}
}

/* ap takes the NMI in root mode at an instruction whose address is rip; returns where it
 * resumes. */
static u64 nmi_at(u64 rip)
{
	struct trap_frame f;

	send_request();
	memset(&f, 0, sizeof(f));
	f.vector = VEC_NMI;
	f.rip = rip;
	trap_handler(&f);
	return f.rip;
}

/* The NMI during the exit handler (a preemption-timer exit: its handler only writes the
 * pin-based controls). */
static void exit_with_nmi_in_handler(void)
{
	fake_vmcs_set(VMCS_RO_EXIT_REASON, EXIT_REASON_PREEMPT_TIMER);
	fake_vmcs_set(VMCS_CTRL_PIN_BASED, PIN_PREEMPTION_TIMER);
	if (nmi_point == AT_HANDLER)
		nmi_at(0x1234); /* somewhere in the hypervisor's C code */
	vmx_handle_exit(&regs_ap, (u32)fake_vmcs_get(VMCS_RO_EXIT_REASON));
}

/* hv/entry.asm from the return of vmx_handle_exit to VMRESUME, with the NMI at
 * nmi_point. Returns once VMRESUME executes. */
static void run_entry_tail(void)
{
	u64 pc = (u64)(uintptr_t)fake_entry_pop;
	bool nmi_done = nmi_point == AT_HANDLER, flag = false;
	const u64 addr[NPOINTS] = { 0, (u64)(uintptr_t)fake_entry_pop, (u64)(uintptr_t)vmx_entry_check,
				    (u64)(uintptr_t)fake_entry_jne, (u64)(uintptr_t)vmx_entry_resume };

	for (int steps = 0; steps < 100; steps++) {
		if (!nmi_done && pc == addr[nmi_point]) {
			nmi_done = true;
			pc = nmi_at(pc);
			continue;
		}
		if (pc == addr[AT_POP]) {
			pc = addr[AT_CMP];
		} else if (pc == addr[AT_CMP]) {
			flag = __atomic_load_n((volatile u32 *)((char *)&ap + 8), __ATOMIC_SEQ_CST) != 0;
			pc = addr[AT_JNE];
		} else if (pc == addr[AT_JNE]) {
			if (flag) {
				kicked_calls++;
				vmx_entry_kicked(&regs_ap);
				pc = addr[AT_POP];
			} else {
				pc = addr[AT_VMRESUME];
			}
		} else if (pc == addr[AT_VMRESUME]) {
			return;
		} else {
			fail_msg("the NMI handler returned to %llx, not an instruction of the entry path",
				 (unsigned long long)pc);
		}
	}
	fail_msg("the entry path did not reach VMRESUME");
}

static void one_case(enum request r, enum point p)
{
	setup(NULL);
	req = r;
	nmi_point = p;
	sent = false;
	kicked_calls = 0;
	fake_vmcs_set(VMCS_GUEST_INTERRUPTIBILITY, 0);
	fake_vmcs_set(VMCS_CTRL_ENTRY_INTR_INFO, 0);
	fake_vmcs_set(VMCS_GUEST_CS_SEL, 0x10);
	exit_with_nmi_in_handler();
	run_entry_tail();
	/* At the VM entry: */
	if (r == REQ_NMI) {
		u32 info = (u32)fake_vmcs_get(VMCS_CTRL_ENTRY_INTR_INFO);
		if (info != (INTR_INFO_VALID | INTR_TYPE_NMI | VEC_NMI))
			fail_msg("guest NMI, kick NMI at %s: entry interruption info %x (NMI %s pending)",
				 point_name[p], info, ap.nmi_pending ? "still" : "not");
	} else {
		if (ap.vinit_pending || fake_vmcs_get(VMCS_GUEST_CS_SEL) != 0x9a00)
			fail_msg("INIT-SIPI, kick NMI at %s: INIT %s, CS %llx", point_name[p],
				 ap.vinit_pending ? "still pending" : "taken",
				 (unsigned long long)fake_vmcs_get(VMCS_GUEST_CS_SEL));
	}
	/* Served once, not again and again. */
	assert_true(kicked_calls <= 1);
	assert_int_equal(ap.entry_kick, 0);
}

static void test_guest_nmi_at_every_point(void **state)
{
	(void)state;
	for (enum point p = AT_HANDLER; p < NPOINTS; p++)
		one_case(REQ_NMI, p);
}

static void test_init_sipi_at_every_point(void **state)
{
	(void)state;
	for (enum point p = AT_HANDLER; p < NPOINTS; p++)
		one_case(REQ_INIT_SIPI, p);
}

/* An NMI with no request for the vCPU (a shootdown) does not move RIP and does not make
 * the entry path go round again. */
static void test_shootdown_nmi_does_not_kick(void **state)
{
	(void)state;
	for (enum point p = AT_POP; p < NPOINTS; p++) {
		const u64 addr[NPOINTS] = { 0, (u64)(uintptr_t)fake_entry_pop, (u64)(uintptr_t)vmx_entry_check,
					    (u64)(uintptr_t)fake_entry_jne, (u64)(uintptr_t)vmx_entry_resume };
		struct trap_frame f;

		setup(NULL);
		vapic_send_nmi(&ap); /* the hypervisor's own NMI, counted */
		memset(&f, 0, sizeof(f));
		f.vector = VEC_NMI;
		f.rip = addr[p];
		trap_handler(&f);
		assert_int_equal(f.rip, addr[p]);
		assert_int_equal(ap.entry_kick, 0);
		assert_false(ap.nmi_pending);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_guest_nmi_at_every_point, setup, teardown),
		cmocka_unit_test_setup_teardown(test_init_sipi_at_every_point, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shootdown_nmi_does_not_kick, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
