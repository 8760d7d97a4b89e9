/*
 * Event delivery onto a page with protected sub-pages: an exception frame pushed onto a
 * stack whose page has a protected "canary" sub-page below the frame. With hardware SPP the
 * frame's writes go to writable sub-pages and never exit; in software mode every write to the
 * page exits, including the processor's frame pushes while it delivers the exception, and the
 * hypervisor must let the delivery complete (spp/step.c, spp_step_delivery). Guest-visible
 * outcome in every mode: the handler runs, the frame is in memory, the canary is intact, no
 * event is reported.
 */
#include "arch.h"
#include "guest.h"
#include "spp_util.h"
#include <tessel.h>

#define POINTS 6
#define FRAME_TOP 0x800u /* RSP at the fault: the frame is pushed into sub-page 15 */
#define CANARY_SP 14u

static uint8_t *stack_page;
static volatile uint64_t ud2_rip;

static void fault_on_page(void *arg)
{
	(void)arg;
	uint64_t top = (uint64_t)(uintptr_t)(stack_page + FRAME_TOP);
	/* Switch to the page, fault; trap_call's handler unwinds (it does not return here). */
	__asm__ __volatile__("leaq 1f(%%rip), %%rax\n\t"
			     "movq %%rax, %0\n\t"
			     "movq %1, %%rsp\n"
			     "1: ud2"
			     : "=m"(ud2_rip) : "r"(top) : "rax", "memory");
}

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *st)
{
	spp_start(image, st, POINTS);
	suite_begin("deliver", POINTS);
	uint8_t *exp = spp_pages(1);
	stack_page = spp_pages(1);
	struct tessel_ring *ring = spp_pages(1);
	if (!exp || !stack_page || !ring || !spp.ok) {
		suite_end();
		guest_finish();
	}
	pat_fill(stack_page, 4096, 0x3c);
	mem_copy(exp, stack_page, 4096);
	int64_t e = ev_setup(ring, 1, 0);
	int64_t s = set1(stack_page, ~(1u << CANARY_SP), 0);
	sok(s == 0 && e == 0, "protect the canary sub-page %u of the stack page (SET %lld, EVENTS_SETUP %lld)", CANARY_SP,
	    (long long)s, (long long)e);
	struct stats a, b;
	stats_get(&a);
	struct trap_info ti;
	mem_set(&ti, 0, sizeof(ti));
	invlpg(stack_page);
	trap_call(TRAP_VEC(6), fault_on_page, NULL, &ti);
	stats_get(&b);
	sok(ti.trapped && ti.vector == 6 && ti.rip == ud2_rip,
	    "#UD raised on the page was delivered to its handler (trapped %d, vector %llu, rip %llx, expected %llx)",
	    ti.trapped, (unsigned long long)ti.vector, (unsigned long long)ti.rip, (unsigned long long)ud2_rip);
	uint64_t slot_rip;
	mem_copy(&slot_rip, stack_page + FRAME_TOP - 40, 8);
	sok(slot_rip == ud2_rip, "the frame landed in the writable sub-page: its RIP slot holds %llx (expected %llx)",
	    (unsigned long long)slot_rip, (unsigned long long)ud2_rip);
	unsigned first = 0;
	unsigned diff = mem_diff(stack_page + CANARY_SP * 128, exp + CANARY_SP * 128, 128, &first);
	sok(diff == 0, "the protected canary sub-page is unchanged (%u bytes differ)", diff);
	/* The handler (tests/guest/lib) keeps using the stack below the frame, inside sub-page 15. */
	diff = mem_diff(stack_page, exp, (CANARY_SP + 1) * 128, &first) +
	       mem_diff(stack_page + FRAME_TOP, exp + FRAME_TOP, 4096 - FRAME_TOP, NULL);
	sok(diff == 0, "nothing outside sub-page 15 (the frame and the handler's stack) changed (%u bytes differ)", diff);
	/* In software mode the frame pushes themselves exit (the page is not writable): proof that
	 * the delivery path ran; with hardware SPP they are writes to writable sub-pages. */
	uint64_t viol = sdelta(&a, &b, TESSEL_STAT_EPT_VIOLATIONS);
	sok(ev_pending(ring) == 0 && sdelta(&a, &b, TESSEL_STAT_SPP_DENIED) == 0 && (!spp.sw || viol >= 1),
	    "no event and no denial: the frame touched only writable bytes (%u events, denied +%llu, EPT violations "
	    "+%llu, %s mode)", ev_pending(ring), (unsigned long long)sdelta(&a, &b, TESSEL_STAT_SPP_DENIED),
	    (unsigned long long)viol, spp_mode());
	unprot(stack_page, 1);
	ev_setup(NULL, 0, 0);
	suite_end();
	guest_finish();
}
