/*
 * The core's entry point (ELF e_entry), called by the loader through boot/launch.asm with
 * the loader's bootstrap page tables (CORE_OP_INIT) or the core's own (CORE_OP_CPU_START).
 *
 * INIT runs once on the bootstrap processor, before any CPU is in VMX operation: it checks
 * the processor, takes over the region's free memory, builds the guest's EPT and the host's
 * page tables and per-CPU areas. CPU_START then turns each processor into a guest.
 */
#include <hw.h>
#include <arch/cpu.h>
#include <arch/msr.h>
#include <tessel/bootinfo.h>
#include "entry_check.h"
#include "abi.h"
#include "drivers/vtd.h"
#include "drivers/vtd_test.h"
#include "features.h"
#include "lib/string.h"
#include "log.h"
#include "mm/ept.h"
#include "mm/memmap.h"
#include "mm/mtrr.h"
#include "mm/mtrr_guest.h"
#include "mm/paging.h"
#include "mm/pmm.h"
#include "panic.h"
#include "percpu.h"
#include "pm1.h"
#include "pmbase.h"
#include "spp/spp.h"
#include "spp/step.h"
#include "traps.h"
#include "vapic.h"
#include "start.h"
#include "vmx.h"
#include "vmx_caps.h"

extern char __image_start[], __text_end[], __rodata_end[], __image_end[];

static struct tessel_boot_info *boot_info;
static struct mtrr_state mtrr;
struct ept guest_ept;
hpa_t ff_page;

static void report_missing(void *ctx, const char *what)
{
	(void)ctx;
	log_error("VMX capability missing: %s", what);
}

static void setup_gdt(struct percpu *c)
{
	u64 tss = (u64)(uintptr_t)&c->tss;
	c->gdt[0] = 0;
	c->gdt[1] = 0x00af9b000000ffffULL; /* 64-bit code, DPL 0 */
	c->gdt[2] = 0x00cf93000000ffffULL; /* data */
	c->gdt[HOST_SEL_TSS / 8] = (sizeof(c->tss) - 1) | ((tss & 0xffffff) << 16) | (0x89ULL << 40) |
				   ((tss >> 24 & 0xff) << 56);
	c->gdt[HOST_SEL_TSS / 8 + 1] = tss >> 32;
	c->tss.iomap_base = sizeof(c->tss);
}

static s64 percpu_setup(struct tessel_boot_info *bi)
{
	u64 stack_pages = HOST_STACK_SIZE / PAGE_SIZE;
	for (u32 i = 0; i < bi->cpu_count; i++) {
		hpa_t area = pmm_alloc_pages(ALIGN_UP(sizeof(struct percpu), PAGE_SIZE) / PAGE_SIZE);
		hpa_t stack = pmm_alloc_pages(stack_pages);
		hpa_t ist = pmm_alloc_pages(3);
		hpa_t vmxon = pmm_alloc_page(), vmcs = pmm_alloc_page(), msrs = pmm_alloc_page();
		if (!area.v || !stack.v || !ist.v || !vmxon.v || !vmcs.v || !msrs.v)
			return -ENOMEM;
		struct percpu *c = hpa_to_ptr(area);
		c->self = c;
		c->index = i;
		c->apic_id = bi->apic_ids[i];
		c->vmxon = vmxon;
		c->vmcs = vmcs;
		c->msr_area = msrs;
		c->stack_top = stack.v + HOST_STACK_SIZE;
		setup_gdt(c);
		for (int k = 0; k < 3; k++)
			c->tss.ist[k] = ist.v + (u64)(k + 1) * IST_STACK_SIZE;
		percpu_array[i] = c;
	}
	percpu_count = bi->cpu_count;
	return 0;
}

/* The host's memory types (mm/paging.h): RAM and the region cached, the rest UC. */
static enum host_mem host_mem_kind(u64 base, u64 len)
{
	int k = memmap_host_kind(base, len);
	return k == MEMMAP_ALL_RAM ? HOST_MEM_RAM : k == MEMMAP_NO_RAM ? HOST_MEM_IO : HOST_MEM_MIXED;
}

static s64 core_init(struct tessel_boot_info *bi)
{
	if (bi->magic != TESSEL_BOOTINFO_MAGIC || bi->version != TESSEL_BOOTINFO_VERSION ||
	    bi->size != sizeof(*bi) || bi->cpu_count == 0 || bi->cpu_count > TESSEL_MAX_CPUS)
		return -EINVAL;
	boot_info = bi;
	log_init(bi->serial_port, bi->config.log_level);
	entry_check_enabled = bi->config.check == CFG_CHECK_ENTRY;
	log_info("Tessel core: region %llx-%llx (%llu MiB), %u CPUs",
		 (unsigned long long)bi->region_base, (unsigned long long)(bi->region_base + bi->region_size),
		 (unsigned long long)(bi->region_size >> 20), bi->cpu_count);

	vmx_caps_read(&vmx_caps);
	if (vmx_caps_check(&vmx_caps, report_missing, NULL))
		return -ENODEV;

	u64 region_end = bi->region_base + bi->region_size;
	pmm_init(hpa(bi->free_base), region_end - bi->free_base);
	memmap_init(bi->mem, bi->mem_count, bi->region_base, bi->region_size);

	ff_page = pmm_alloc_page();
	hpa_t bitmap = pmm_alloc_page();
	if (!ff_page.v || !bitmap.v)
		return -ENOMEM;
	memset(hpa_to_ptr(ff_page), 0xff, PAGE_SIZE);
	vmx_msr_bitmap_init(hpa_to_ptr(bitmap));
	vmx_global.msr_bitmap = bitmap;
	vmx_global.io_bitmap_a = pmm_alloc_page();
	vmx_global.io_bitmap_b = pmm_alloc_page();
	if (!vmx_global.io_bitmap_a.v || !vmx_global.io_bitmap_b.v)
		return -ENOMEM;
	pm1_init(&bi->sleep);
	pmbase_init(&bi->sleep);
	vmx_io_bitmap_init(hpa_to_ptr(vmx_global.io_bitmap_a), hpa_to_ptr(vmx_global.io_bitmap_b));

	mtrr_read(&mtrr, vmx_caps.phys_bits);
	struct ept_params ep = {
		.phys_bits = vmx_caps.phys_bits, .has_1g = vmx_has_ept_1g(), .mtrr = &mtrr,
		.hv_base = bi->region_base, .hv_size = bi->region_size, .ff_page = ff_page,
	};
	int er = ept_build_identity(&guest_ept, &ep);
	if (er)
		return er;
	vmx_global.eptp = guest_ept.eptp;
	mtrr_guest_init(&mtrr, &guest_ept); /* the guest's virtual MTRRs start from the same snapshot */
	log_info("EPT: identity map of 2^%u bytes in %llu table pages (1 GiB leaves: %s)", vmx_caps.phys_bits,
		 (unsigned long long)guest_ept.tables, ep.has_1g ? "yes" : "no");

	u64 top = vmx_caps.has_1g_host_pages ? (1ULL << MIN(vmx_caps.phys_bits, 46)) : MAX(memmap_ram_top(), 1ULL << 32);
	u64 image_pa = bi->image_base;
	struct host_map_params hp = {
		.identity_top = top, .use_1g = vmx_caps.has_1g_host_pages,
		.nx = (rdmsr(MSR_IA32_EFER) & EFER_NXE) != 0,
		.image_pa = image_pa, .image_va = (u64)(uintptr_t)__image_start,
		.text_size = (u64)(__text_end - __image_start), .rodata_end = (u64)(__rodata_end - __image_start),
		.image_size = bi->image_size,
	};
	hp.mtrr = &mtrr;
	hp.apic_base = rdmsr(MSR_IA32_APIC_BASE) & ~0xfffULL;
	hp.kind = host_mem_kind;
	hpa_t cr3 = paging_build_host(&hp);
	if (!cr3.v)
		return -ENOMEM;
	vmx_global.host_cr3 = cr3;
	bi->host_cr3 = cr3.v;
	write_cr3(cr3.v);

	s64 r = vapic_init(&guest_ept, rdmsr(MSR_IA32_APIC_BASE));
	if (r)
		return r;
	traps_init();
	r = percpu_setup(bi);
	if (r)
		return r;
	r = spp_step_init();
	if (r)
		return r;
	r = spp_init(&bi->config, &guest_ept, vmx_caps.phys_bits);
	if (r)
		return r;
	start_hooks_init();
	log_info("sub-page protection: %s (processor SPP: %s)", spp_mode_name(), vmx_has_spp() ? "yes" : "no");
	/* DMA remapping (docs/IOMMU.md): before any processor runs as a guest. */
	r = iommu_init(&bi->config, bi->acpi_rsdp);
	if (!r)
		r = iommu_hide_registers(&guest_ept);
	if (r)
		return r;
	/* From here on every page-size change of the EPT may meet another CPU's cached
	 * translations (until now no processor has used it: the splits above, vapic_init's and
	 * iommu_hide_registers', are made in place): break before make where the processor has
	 * the machine-check erratum (mm/ept.h ept_split, docs/HARDWARE.md). */
	bool affected = vmx_pschange_mc_affected();
	guest_ept.bbm = bi->config.ept_bbm == CFG_EPT_BBM_ON ||
			(bi->config.ept_bbm == CFG_EPT_BBM_AUTO && affected);
	log_info("EPT page-size changes: %s (machine check on page-size change: %s%s)",
		 guest_ept.bbm ? "break before make" : "in place", affected ? "affected" : "not affected",
		 bi->config.ept_bbm == CFG_EPT_BBM_AUTO ? "" : "; set by ept_bbm");
	log_info("core ready: %llu of %llu region pages free", (unsigned long long)pmm_free_count(),
		 (unsigned long long)pmm_total_count());
	return 0;
}

__attribute__((section(".text.entry"))) s64 core_entry(u64 op, u64 arg, struct tessel_launch *launch);
__attribute__((section(".text.entry"))) s64 core_entry(u64 op, u64 arg, struct tessel_launch *launch)
{
	switch (op) {
	case CORE_OP_INIT:
		return core_init((struct tessel_boot_info *)(uintptr_t)arg);
	case CORE_OP_CPU_START:
		if (!boot_info || arg >= percpu_count)
			return -EINVAL;
		return vmx_cpu_start(percpu_array[arg], launch);
	case CORE_OP_IOMMU_ONLY:
		/* No CPU runs the hypervisor (none started, or the start was undone): this CPU's GS
		 * is the firmware's, so locks are not counted per CPU. */
		__atomic_store_n(&percpu_gs_ready, false, __ATOMIC_SEQ_CST);
		return iommu_only_init((struct tessel_boot_info *)(uintptr_t)arg);
	case CORE_OP_IOMMU_TEST:
		__atomic_store_n(&percpu_gs_ready, false, __ATOMIC_SEQ_CST);
		return iommu_test_op((struct tessel_iommu_test_req *)(uintptr_t)arg);
	default:
		return -EINVAL;
	}
}
