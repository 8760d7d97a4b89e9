/*
 * EPT and SPPT entry formats (Intel SDM Vol. 3C section 28.3.2, Tables 28-1..28-6 for EPT;
 * docs/SPP.md sections 2-4 for the SPPT, whose SDM section was not at hand).
 */
#ifndef ARCH_EPT_H
#define ARCH_EPT_H

#define EPT_R            (1ULL << 0)
#define EPT_W            (1ULL << 1)
#define EPT_X            (1ULL << 2)
#define EPT_RWX          (EPT_R | EPT_W | EPT_X)
#define EPT_MT_SHIFT     3
#define EPT_MT_MASK      (7ULL << EPT_MT_SHIFT)
#define EPT_IGNORE_PAT   (1ULL << 6)
#define EPT_LARGE        (1ULL << 7)  /* bit 7 in a PDPTE/PDE: maps 1 GiB / 2 MiB */
#define EPT_ACCESSED     (1ULL << 8)
#define EPT_DIRTY        (1ULL << 9)
#define EPT_SPP          (1ULL << 61) /* 4 KiB leaf only: consult the SPPT on writes */
#define EPT_SUPPRESS_VE  (1ULL << 63)
#define EPT_ADDR_MASK    0x000ffffffffff000ULL

/* Section 24.6.11: EPT pointer */
#define EPTP_MT_WB       6ULL
#define EPTP_WALK_4      (3ULL << 3)
#define EPTP_AD_ENABLE   (1ULL << 6)

/* SPPT: non-leaf entries have a valid bit; leaves hold bit 2i = sub-page i writable. */
#define SPPT_VALID       (1ULL << 0)
#define SPPT_ADDR_MASK   0x000ffffffffff000ULL
#define SPPT_LEAF_ODD_BITS 0xAAAAAAAAAAAAAAAAULL

#define PT_ENTRIES       512
#define PT_INDEX(addr, level) (((addr) >> (12 + 9 * ((level) - 1))) & 511) /* level 1..4 */

#endif
