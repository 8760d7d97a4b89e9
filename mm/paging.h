/*
 * The hypervisor's own address space: all physical memory mapped 1:1 (so a host-physical
 * address is a host pointer, include/arch/hw.h hpa_to_ptr) and the core image at its link
 * address with text RX, rodata R and data RW (NX where EFER.NXE is on).
 */
#ifndef MM_PAGING_H
#define MM_PAGING_H

#include <tessel/types.h>

struct host_map_params {
	u64 identity_top;   /* map [0, identity_top) 1:1, rounded up to the page size used */
	bool use_1g;        /* 1 GiB pages for the identity map (else 2 MiB) */
	bool nx;            /* EFER.NXE is on: mark non-executable where possible */
	u64 image_pa;       /* core image: physical base */
	u64 image_va;       /* link address */
	u64 text_size;      /* [0, text_size) RX */
	u64 rodata_end;     /* [text_size, rodata_end) R */
	u64 image_size;     /* [rodata_end, image_size) RW */
};

/* Builds the tables from pmm pages; returns the PML4's address or hpa(0) when out of memory. */
hpa_t paging_build_host(const struct host_map_params *p);

#define PTE_P   (1ULL << 0)
#define PTE_W   (1ULL << 1)
#define PTE_PS  (1ULL << 7)
#define PTE_G   (1ULL << 8)
#define PTE_NX  (1ULL << 63)
#define PTE_ADDR 0x000ffffffffff000ULL

#endif
