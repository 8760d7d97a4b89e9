/*
 * The hypervisor's side of the hypercall ABI (docs/ABI.md). The guest-side header is
 * tools/tessel.h; both are written from the same document and the system tests check
 * that they agree.
 */
#ifndef HV_ABI_H
#define HV_ABI_H

#define TESSEL_ABI_VERSION      0x00010004U /* 1.4 */
#define TESSEL_CPUID_BASE       0x40000000U
#define TESSEL_CPUID_FEATURES   0x40000001U
#define TESSEL_CPUID_MAX        TESSEL_CPUID_FEATURES
#define TESSEL_SIG_EBX          0x73736554U /* "Tess" */
#define TESSEL_SIG_ECX          0x56486c65U /* "elHV" */
#define TESSEL_SIG_EDX          0U
#define TESSEL_MAX_PAGES_PER_CALL 512U
#define TESSEL_MAX_PROTECT_BYTES  0x10000U /* 1.4: HC_SPP_PROTECT_BYTES length limit */

#define TESSEL_F_SPP_HW  (1U << 0)
#define TESSEL_F_SPP_SW  (1U << 1)
#define TESSEL_F_LOCK    (1U << 2)
#define TESSEL_F_EVENTS  (1U << 3)
#define TESSEL_F_TRACK   (1U << 4)
#define TESSEL_F_DMA     (1U << 5) /* 1.1: DMA remapping on (docs/IOMMU.md) */
#define TESSEL_F_PIN     (1U << 6) /* 1.2: HC_PIN_CR and HC_PIN_MSR (hv/pin.c); always set */
#define TESSEL_F_PIN_DT  (1U << 7) /* 1.3: HC_PIN_DT (descriptor-table exiting available) */
#define TESSEL_F_SPP_BYTES (1U << 8) /* 1.4: HC_SPP_PROTECT_BYTES (with either SPP mechanism) */

#define TESSEL_SPP_TRACK_FLAG (1U << 0) /* HC_SPP_SET flags bit 0 */

#define HC_NOP          0x00
#define HC_QUERY        0x01
#define HC_SPP_SET      0x10
#define HC_SPP_GET      0x11
#define HC_SPP_LOCK     0x12
#define HC_SPP_PROTECT_BYTES 0x13 /* 1.4 */
#define HC_EVENTS_SETUP 0x20
#define HC_STATS        0x21
#define HC_PIN_CR       0x30 /* 1.2 */
#define HC_PIN_MSR      0x31 /* 1.2 */
#define HC_PIN_DT       0x32 /* 1.3 */
#define HC_TABLE_SIZE   0x33
/* Test builds only (spp/test_hooks.c); -ENOSYS otherwise. */
#define HC_TEST_SPPT_MISCONFIG 0x7e00
#define HC_TEST_TABLE_MEM      0x7e01
#define HC_TEST_EPT_LEAF       0x7e02
#define HC_TEST_VMCS_COUNT     0x7e03
#define HC_TEST_ROOT_MSR       0x7e04

#endif
