/*
 * The loader's configuration, as parsed from tessel.cfg and the UEFI shell command line
 * (boot/config.c) and handed to the core in the boot-information block.
 */
#ifndef TESSEL_CONFIG_H
#define TESSEL_CONFIG_H

#include <tessel/types.h>

enum cfg_spp { CFG_SPP_AUTO, CFG_SPP_HW, CFG_SPP_SW, CFG_SPP_OFF };
enum cfg_log { CFG_LOG_ERROR, CFG_LOG_WARN, CFG_LOG_INFO, CFG_LOG_DEBUG };
enum cfg_no_vmx { CFG_NO_VMX_CONTINUE, CFG_NO_VMX_STOP };
enum cfg_sppt { CFG_SPPT_EAGER, CFG_SPPT_LAZY };
enum cfg_check { CFG_CHECK_OFF, CFG_CHECK_ENTRY };
enum cfg_iommu { CFG_IOMMU_AUTO, CFG_IOMMU_ON, CFG_IOMMU_OFF };
enum cfg_ept_bbm { CFG_EPT_BBM_AUTO, CFG_EPT_BBM_ON, CFG_EPT_BBM_OFF };

#define CFG_NEXT_MAX 256
#define CFG_HEAP_MIN_MIB 8
#define CFG_HEAP_MAX_MIB 4096
#define CFG_HEAP_DEFAULT_MIB 32

struct tessel_config {
	char next[CFG_NEXT_MAX]; /* ESP path of the image to chain-load ("" = return to firmware) */
	u32 spp;                 /* enum cfg_spp */
	u32 log_level;           /* enum cfg_log */
	u32 heap_mib;            /* size of the hypervisor's region */
	u32 no_vmx;              /* enum cfg_no_vmx */
	u32 sppt;                /* enum cfg_sppt */
	u32 check;               /* enum cfg_check: software VM-entry checks (hv/entry_check.c) */
	u32 ept_bbm;             /* enum cfg_ept_bbm: EPT page-size changes break before make */
	u32 iommu;               /* enum cfg_iommu: DMA remapping with VT-d (docs/IOMMU.md) */
	u32 pad2;
};

#endif
