/* The boot a host test starts from when it runs exits (machine.h). */
#include <string.h>
#include <hw.h>
#include <arch/cpu.h>
#include <tessel/config.h>
#include "machine.h"
#include "mm/memmap.h"
#include "mm/pmm.h"
#include "spp/spp.h"
#include "spp/step.h"

int fake_machine_ept(const struct fake_machine *m, struct mtrr_state *mtrr, struct ept *ept)
{
	*mtrr = (struct mtrr_state){ .enabled = true, .def_type = MT_WB, .phys_bits = m->phys_bits };
	pmm_init(hpa(m->hv_base), m->hv_size);
	memmap_init(m->fw_map, m->fw_count, m->hv_base, m->hv_size);
	hpa_t ff = pmm_alloc_page();
	if (!ff.v)
		return FAKE_MACHINE_ENOPAGE;
	memset(hpa_to_ptr(ff), 0xff, PAGE_SIZE);
	struct ept_params ep = { .phys_bits = m->phys_bits, .has_1g = !m->no_1g, .mtrr = mtrr,
				 .hv_base = m->hv_base, .hv_size = m->hv_size, .ff_page = ff };
	memset(ept, 0, sizeof(*ept));
	return ept_build_identity(ept, &ep) ? FAKE_MACHINE_EEPT : 0;
}

int fake_machine_spp(const struct fake_machine *m, struct mtrr_state *mtrr, struct ept *ept, int spp_cfg)
{
	int r = fake_machine_ept(m, mtrr, ept);
	if (r)
		return r;
	struct tessel_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.spp = spp_cfg;
	cfg.sppt = CFG_SPPT_EAGER;
	memset(&spp, 0, sizeof(spp));
	if (spp_init(&cfg, ept, m->phys_bits))
		return FAKE_MACHINE_ESPP;
	return spp_step_init() ? FAKE_MACHINE_ESTEP : 0;
}

void fake_machine_cpu(struct percpu *c, struct guest_regs *regs, u32 index, u32 apic_id)
{
	memset(c, 0, sizeof(*c));
	memset(regs, 0, sizeof(*regs));
	c->self = c;
	c->regs = regs;
	c->index = index;
	c->apic_id = apic_id;
	c->launched = true;
	if (index == 0) { /* a new machine: no other vCPU until the test adds it */
		memset(percpu_array, 0, sizeof(percpu_array));
		percpu_count = 0;
	}
	percpu_array[index] = c;
	if (percpu_count < index + 1)
		percpu_count = index + 1;
}
