/*
 * The hypervisor's own address space: all physical memory mapped 1:1 (so a host-physical
 * address is a host pointer, include/arch/hw.h hpa_to_ptr) and the core image at its link
 * address with text RX, rodata R and data RW (NX where EFER.NXE is on).
 *
 * Memory types of the identity map (SDM Vol. 3A 11.11.9 and 11.12): RAM (the guest's and the
 * hypervisor's region) is mapped with PAT entry 0 (WB), so the MTRRs decide, as for the
 * firmware; everything else (MMIO, holes, reserved ranges) with PCD|PWT (PAT entry 3, UC in
 * the power-on PAT and in every PAT firmware and Linux program). No large page spans MTRR
 * ranges of different types (the processor may then use an undefined type for the whole
 * page) or mixes RAM with other memory, and the local APIC's page is a 4 KiB UC page.
 */
#ifndef MM_PAGING_H
#define MM_PAGING_H

#include <tessel/types.h>

struct mtrr_state;

struct host_map_params {
	u64 identity_top;   /* map [0, identity_top) 1:1, rounded up to the page size used */
	bool use_1g;        /* 1 GiB pages for the identity map (else 2 MiB) */
	bool nx;            /* EFER.NXE is on: mark non-executable where possible */
	u64 image_pa;       /* core image: physical base */
	u64 image_va;       /* link address */
	u64 text_size;      /* [0, text_size) RX */
	u64 rodata_end;     /* [text_size, rodata_end) R */
	u64 image_size;     /* [rodata_end, image_size) RW */
	const struct mtrr_state *mtrr; /* large pages only where the MTRR type is uniform (NULL: any) */
	u64 apic_base;      /* the xAPIC page: always a 4 KiB UC page (0: none) */
	/* What [base, base + len) is: all RAM the host may cache, none of it, or a mix. NULL: all RAM. */
	enum host_mem { HOST_MEM_RAM, HOST_MEM_IO, HOST_MEM_MIXED } (*kind)(u64 base, u64 len);
};

/* Builds the tables from pmm pages; returns the PML4's address or hpa(0) when out of memory. */
hpa_t paging_build_host(const struct host_map_params *p);

#define PTE_P   (1ULL << 0)
#define PTE_W   (1ULL << 1)
#define PTE_PWT (1ULL << 3)
#define PTE_PCD (1ULL << 4)
#define PTE_PS  (1ULL << 7)
#define PTE_G   (1ULL << 8)
#define PTE_NX  (1ULL << 63)
#define PTE_ADDR 0x000ffffffffff000ULL

#endif
