/*
 * hostile.h: the checks every hostile-guest test (tests/guest/hostile_*.c, issue 9) ends
 * with, after it has carried out its attacks: the hypervisor must still hold.
 *
 *   hostile_guard_setup()  protects the odd-numbered sub-pages of a fresh page filled with
 *                          a pattern (call it before the attacks);
 *   hostile_postcheck()    HOSTILE_POSTCHECK_POINTS TAP points:
 *                          1. the BSP still answers HC_NOP,
 *                          2. every AP still answers HC_NOP (run on it through MP services,
 *                             with a timeout: a wedged AP fails the point, not the run),
 *                          3. the hypervisor's region still reads 0xFF (sampled),
 *                          4. the guard page's protected bytes are unchanged after a write
 *                             of the whole page (and its writable bytes took the write).
 */
#ifndef HOSTILE_H
#define HOSTILE_H

#include "spp_util.h"

#define HOSTILE_POSTCHECK_POINTS 4

struct hostile_guard {
	volatile uint8_t *page;
	uint8_t before[PAGE];
	int64_t set_status;
};

/* Protects sub-pages 1, 3, 5, ... of a new page (0 on success). */
int hostile_guard_setup(struct hostile_guard *g);
/* The four points; `what` names the attacks in the descriptions. Returns failed points. */
int hostile_postcheck(struct hostile_guard *g, const char *what);

#endif
