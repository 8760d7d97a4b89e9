/*
 * Control registers, RFLAGS, segment descriptors and CPUID bits (Intel SDM Vol. 3A,
 * chapters 2-3; Vol. 2A CPUID).
 */
#ifndef ARCH_CPU_H
#define ARCH_CPU_H

/* Figure 2-7: CR0 */
#define CR0_PE (1ULL << 0)
#define CR0_MP (1ULL << 1)
#define CR0_EM (1ULL << 2)
#define CR0_TS (1ULL << 3)
#define CR0_ET (1ULL << 4)
#define CR0_NE (1ULL << 5)
#define CR0_WP (1ULL << 16)
#define CR0_AM (1ULL << 18)
#define CR0_NW (1ULL << 29)
#define CR0_CD (1ULL << 30)
#define CR0_PG (1ULL << 31)

/* Figure 2-7: CR4 */
#define CR4_VME        (1ULL << 0)
#define CR4_PVI        (1ULL << 1)
#define CR4_TSD        (1ULL << 2)
#define CR4_DE         (1ULL << 3)
#define CR4_PSE        (1ULL << 4)
#define CR4_PAE        (1ULL << 5)
#define CR4_MCE        (1ULL << 6)
#define CR4_PGE        (1ULL << 7)
#define CR4_PCE        (1ULL << 8)
#define CR4_OSFXSR     (1ULL << 9)
#define CR4_OSXMMEXCPT (1ULL << 10)
#define CR4_UMIP       (1ULL << 11)
#define CR4_LA57       (1ULL << 12)
#define CR4_VMXE       (1ULL << 13)
#define CR4_SMXE       (1ULL << 14)
#define CR4_FSGSBASE   (1ULL << 16)
#define CR4_PCIDE      (1ULL << 17)
#define CR4_OSXSAVE    (1ULL << 18)
#define CR4_SMEP       (1ULL << 20)
#define CR4_SMAP       (1ULL << 21)
#define CR4_PKE        (1ULL << 22)
#define CR4_CET        (1ULL << 23)
#define CR4_PKS        (1ULL << 24)

/* Figure 2-5: RFLAGS */
#define RFLAGS_CF   (1ULL << 0)
#define RFLAGS_FIXED (1ULL << 1)
#define RFLAGS_PF   (1ULL << 2)
#define RFLAGS_AF   (1ULL << 4)
#define RFLAGS_ZF   (1ULL << 6)
#define RFLAGS_SF   (1ULL << 7)
#define RFLAGS_TF   (1ULL << 8)
#define RFLAGS_IF   (1ULL << 9)
#define RFLAGS_DF   (1ULL << 10)
#define RFLAGS_OF   (1ULL << 11)
#define RFLAGS_IOPL (3ULL << 12)
#define RFLAGS_RF   (1ULL << 16)
#define RFLAGS_VM   (1ULL << 17)

/* Section 3.4.5: segment descriptor fields, and the VMX access-rights format (Table 24-2) */
#define SEG_AR_TYPE(ar)   ((ar) & 0xfU)
#define SEG_AR_S          (1U << 4)
#define SEG_AR_DPL(ar)    (((ar) >> 5) & 3U)
#define SEG_AR_P          (1U << 7)
#define SEG_AR_L          (1U << 13)
#define SEG_AR_DB         (1U << 14)
#define SEG_AR_G          (1U << 15)
#define SEG_AR_UNUSABLE   (1U << 16)
#define SEG_TYPE_TSS64_BUSY 0xBU

/* CPUID bits used by the hypervisor (Vol. 2A, CPUID) */
#define CPUID1_ECX_DTES64     (1U << 2)
#define CPUID1_ECX_DS_CPL     (1U << 4)
#define CPUID1_ECX_VMX        (1U << 5)
#define CPUID1_ECX_PDCM       (1U << 15)
#define CPUID1_ECX_XSAVE      (1U << 26)
#define CPUID1_ECX_OSXSAVE    (1U << 27)
#define CPUID1_ECX_HYPERVISOR (1U << 31)
#define CPUID1_EDX_MTRR       (1U << 12)
#define CPUID1_EDX_PAT        (1U << 16)
#define CPUID1_EDX_DS         (1U << 21)
#define CPUID7_EBX_PT         (1U << 25)
#define CPUID7_EDX_ARCH_LBR   (1U << 19)
/* Any of these enumerates IA32_SPEC_CTRL (SDM Vol. 4 Table 2-2; Intel, "Speculative Execution
 * Side Channel Mitigations"): IBRS/IBPB, STIBP, SSBD. */
#define CPUID7_EDX_IBRS_IBPB  (1U << 26)
#define CPUID7_EDX_STIBP      (1U << 27)
#define CPUID7_EDX_ARCH_CAP   (1U << 29)
#define CPUID7_EDX_SSBD       (1U << 31)
#define CPUID7_ECX_OSPKE      (1U << 4)
#define CPUID80000001_EDX_PDPE1GB (1U << 26)
#define CPUID80000001_EDX_NX  (1U << 20)

/* Section 11.11: memory types (MTRR / PAT / EPT encodings) */
#define MT_UC 0U
#define MT_WC 1U
#define MT_WT 4U
#define MT_WP 5U
#define MT_WB 6U
#define MT_UC_MINUS 7U /* PAT only */
#define MT_INVALID 0xffU

#endif
