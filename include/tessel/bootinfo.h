/*
 * The boot-information block: everything the loader (boot/) hands the core (hv/) when it
 * starts it. It lives inside the hypervisor's region, so the guest can never see it.
 */
#ifndef TESSEL_BOOTINFO_H
#define TESSEL_BOOTINFO_H

#include <tessel/config.h>
#include <tessel/types.h>

#define TESSEL_BOOTINFO_MAGIC 0x4f464e49544f4f42ULL /* "BOOTINFO" */
#define TESSEL_BOOTINFO_VERSION 2
#define TESSEL_MAX_CPUS 64
#define TESSEL_MAX_MEM_RANGES 512

/* The link address of the core image (linker.ld). */
#define TESSEL_CORE_VBASE 0xFFFFFFFF80000000ULL

/* UEFI memory types (UEFI spec 2.10 Table 7-5), kept as the firmware reported them. */
enum efi_mem_type {
	EFI_MT_RESERVED = 0, EFI_MT_LOADER_CODE, EFI_MT_LOADER_DATA, EFI_MT_BS_CODE, EFI_MT_BS_DATA,
	EFI_MT_RT_CODE, EFI_MT_RT_DATA, EFI_MT_CONVENTIONAL, EFI_MT_UNUSABLE, EFI_MT_ACPI_RECLAIM,
	EFI_MT_ACPI_NVS, EFI_MT_MMIO, EFI_MT_MMIO_PORT, EFI_MT_PAL_CODE, EFI_MT_PERSISTENT,
};

struct tessel_mem_range {
	u64 base;  /* physical, 4 KiB aligned */
	u64 pages; /* 4 KiB pages */
	u32 type;  /* enum efi_mem_type */
	u32 pad;
};

/* UEFI types that are RAM the OS may use (loader/boot/runtime code and data, conventional,
 * ACPI reclaim/NVS, persistent); reserved, unusable and MMIO are not. */
static inline bool tessel_mem_type_is_ram(u32 t)
{
	switch (t) {
	case EFI_MT_LOADER_CODE: case EFI_MT_LOADER_DATA: case EFI_MT_BS_CODE: case EFI_MT_BS_DATA:
	case EFI_MT_RT_CODE: case EFI_MT_RT_DATA: case EFI_MT_CONVENTIONAL: case EFI_MT_ACPI_RECLAIM:
	case EFI_MT_ACPI_NVS: case EFI_MT_PERSISTENT:
		return true;
	default:
		return false;
	}
}

/* Operations of the core's single entry point (ELF e_entry). */
#define CORE_OP_INIT      1 /* BSP, once: arg = boot info; returns 0 or -errno */
#define CORE_OP_CPU_START 2 /* every CPU: arg = cpu index; does not return on success */
/* Test builds only (include/tessel/iommu_test.h); -ENOSYS otherwise. */
#define CORE_OP_IOMMU_ONLY 3 /* no VMX: arg = boot info; program the IOMMU; 0 or -errno */
#define CORE_OP_IOMMU_TEST 4 /* arg = struct tessel_iommu_test_req */

/* Loader-only hypercalls (boot/launch.asm, hv/main.c), refused with -ENOSYS once the loader
 * has sealed a complete start and never part of the guest ABI: LEAVE takes the calling
 * processor out of VMX operation (it resumes after the VMCALL in root mode with RAX =
 * TESSEL_LEFT_VMX); SEAL ends the start, after which neither call exists. */
#define TESSEL_HC_LOADER_LEAVE 0x7f00
#define TESSEL_HC_LOADER_SEAL  0x7f01
#define TESSEL_LEFT_VMX        0x4c454654 /* "LEFT" */

/* State of the calling processor that the core cannot read itself after the loader has
 * switched to the host page tables (boot/launch.asm fills it). */
struct tessel_launch {
	u64 rsp;    /* guest RSP to resume with */
	u64 rip;    /* guest RIP to resume at (in the loader) */
	u64 rflags; /* RFLAGS before the loader disabled interrupts */
	u64 cr3;    /* the firmware's CR3 */
};

/*
 * The ACPI sleep registers (PM1 control and status blocks, ACPI 6.5 sections 4.8.3.1-4.8.3.2)
 * the loader found (boot/acpi_sleep.c), for hv/pm1.c. A port of 0 is absent; with no control
 * port at all nothing is intercepted. Bit t of allow_a/allow_b set: a write of SLP_TYP = t with
 * SLP_EN to that control register goes to the chipset; any other sleep request is refused.
 */
struct tessel_acpi_sleep {
	u16 pm1a_cnt, pm1b_cnt; /* PM1a/PM1b_CNT (16-bit registers) */
	u16 pm1a_sts, pm1b_sts; /* PM1a/PM1b_STS (the first half of each PM1 event block) */
	u8 allow_a, allow_b;    /* SLP_TYP values passed through (power off, hibernation, S1) */
	u8 s3_a, s3_b;          /* S3's SLP_TYP values, for the log; 0xff if unknown */
};

struct tessel_boot_info {
	u64 magic;
	u32 version;
	u32 size;
	struct tessel_config config;
	u64 region_base;   /* the hypervisor's whole region (host-physical) */
	u64 region_size;
	u64 image_base;    /* core image inside the region */
	u64 image_size;    /* bytes, page aligned, including .bss */
	u64 free_base;     /* first free byte in the region after what the loader used */
	u64 host_cr3;      /* set by CORE_OP_INIT: the core's page tables */
	u64 acpi_rsdp;     /* 0 if none */
	u16 serial_port;   /* 16550 I/O base */
	u16 pad0;
	u32 cpu_count;
	u32 bsp_index;
	u32 apic_ids[TESSEL_MAX_CPUS];
	u32 mem_count;
	u32 mem_dropped;   /* RAM descriptors that did not fit in mem[] (0 on any sane machine) */
	/* The RAM of the firmware's memory map only (the core needs nothing else from it),
	 * adjacent descriptors merged: see tessel_mem_add(). */
	struct tessel_mem_range mem[TESSEL_MAX_MEM_RANGES];
	struct tessel_acpi_sleep sleep;
};

/*
 * Adds one firmware memory descriptor to the boot information. Only RAM is kept, and a
 * descriptor that continues the previous one is merged into it: firmware maps have
 * hundreds of descriptors (boot-services allocations split conventional memory), but few
 * RAM runs, so TESSEL_MAX_MEM_RANGES is not a cut on real machines. If it is reached
 * anyway, the rest is counted in mem_dropped (and said on the log), never silently lost.
 */
static inline void tessel_mem_add(struct tessel_boot_info *bi, u64 base, u64 pages, u32 type)
{
	if (!tessel_mem_type_is_ram(type) || !pages)
		return;
	if (bi->mem_count) {
		struct tessel_mem_range *last = &bi->mem[bi->mem_count - 1];
		if (last->base + last->pages * 4096 == base) {
			last->pages += pages;
			return;
		}
	}
	if (bi->mem_count == TESSEL_MAX_MEM_RANGES) {
		bi->mem_dropped++;
		return;
	}
	bi->mem[bi->mem_count++] = (struct tessel_mem_range){ base, pages, type, 0 };
}

/*
 * The hypervisor's region must stay out of the OS's hands after ExitBootServices: in the
 * firmware's final memory map every byte of it must be EfiReservedMemoryType (boot-services
 * types are reclaimed by the OS, runtime types get mapped and may be handed to the OS's
 * allocator, conventional memory is the OS's). Called per descriptor: adds the bytes of
 * [rbase, rbase + rsize) the descriptor covers to *reserved or, for any other type, *other.
 * The region is safe when *reserved == rsize and *other == 0.
 */
static inline void tessel_region_cover(u64 rbase, u64 rsize, u64 base, u64 pages, u32 type, u64 *reserved,
				       u64 *other)
{
	u64 end = base + pages * 4096, rend = rbase + rsize;
	if (!pages || end <= rbase || base >= rend)
		return;
	u64 n = (end < rend ? end : rend) - (base > rbase ? base : rbase);
	if (type == EFI_MT_RESERVED)
		*reserved += n;
	else
		*other += n;
}

typedef s64 (*tessel_core_entry_t)(u64 op, u64 arg, struct tessel_launch *launch);

#endif
