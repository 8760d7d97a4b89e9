/*
 * machine.h: the boot a host test starts from when it runs exits, built the way hv/main.c
 * builds it before the first VM entry: the page allocator over the hypervisor's region, the
 * firmware memory map, the 0xFF page, the EPT identity map under a write-back MTRR state,
 * and (for tests that take SPP exits) SPP in the asked mode with the single-step area. Also
 * the per-CPU record of a vCPU. The test owns the objects (its `mtrr`, `ept`, `percpu`s) and
 * the fake physical window (fake_phys_init) they live in; each function returns 0, or a
 * negative number naming the step that failed, for the test to assert on.
 */
#ifndef TESTS_FAKE_MACHINE_H
#define TESTS_FAKE_MACHINE_H

#include <tessel/bootinfo.h>
#include <tessel/types.h>
#include "hv/percpu.h"
#include "mm/ept.h"
#include "mm/mtrr.h"

struct fake_machine {
	u64 hv_base, hv_size;              /* the hypervisor's region, inside the fake window */
	u8 phys_bits;
	bool no_1g;                        /* the EPT may not use 1 GiB leaves */
	const struct tessel_mem_range *fw_map; /* the firmware's memory map */
	size_t fw_count;
};

enum {
	FAKE_MACHINE_ENOPAGE = -1,         /* no page for the 0xFF page */
	FAKE_MACHINE_EEPT = -2,            /* ept_build_identity failed */
	FAKE_MACHINE_ESPP = -3,            /* spp_init failed */
	FAKE_MACHINE_ESTEP = -4,           /* spp_step_init failed */
};

/* pmm, memmap, the 0xFF page and the EPT identity map (ept is cleared first). */
int fake_machine_ept(const struct fake_machine *m, struct mtrr_state *mtrr, struct ept *ept);

/* fake_machine_ept, then spp_init with cfg.spp = spp_cfg (CFG_SPP_SW / CFG_SPP_HW; hardware
 * mode needs vmx_caps to offer SPP) and an eager SPPT, then spp_step_init. */
int fake_machine_spp(const struct fake_machine *m, struct mtrr_state *mtrr, struct ept *ept, int spp_cfg);

/* A launched vCPU with this index and APIC ID whose guest registers are *regs; both are
 * cleared first. Enters it in percpu_array and raises percpu_count to cover it; index 0
 * starts a new machine (percpu_array emptied first), so set it up before the others. */
void fake_machine_cpu(struct percpu *c, struct guest_regs *regs, u32 index, u32 apic_id);

#endif
