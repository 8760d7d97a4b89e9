/*
 * VMCS field encodings (Intel SDM Vol. 3D, Appendix B "Field Encoding in VMCS").
 *
 * Grouped by width and class as the appendix is. The width of a field is encoded in
 * bits 14:13 of its encoding; vmcs_field_width() recovers it so the typed accessors in
 * hv/vmcs.h can check at build time that a constant field is accessed at its width.
 */
#ifndef ARCH_VMCS_FIELDS_H
#define ARCH_VMCS_FIELDS_H

/* Table B-1: 16-bit control fields */
#define VMCS_CTRL_VPID                 0x0000U
#define VMCS_CTRL_POSTED_INTR_NV       0x0002U
#define VMCS_CTRL_EPTP_INDEX           0x0004U

/* Table B-2: 16-bit guest-state fields */
#define VMCS_GUEST_ES_SEL              0x0800U
#define VMCS_GUEST_CS_SEL              0x0802U
#define VMCS_GUEST_SS_SEL              0x0804U
#define VMCS_GUEST_DS_SEL              0x0806U
#define VMCS_GUEST_FS_SEL              0x0808U
#define VMCS_GUEST_GS_SEL              0x080AU
#define VMCS_GUEST_LDTR_SEL            0x080CU
#define VMCS_GUEST_TR_SEL              0x080EU
#define VMCS_GUEST_INTR_STATUS         0x0810U
#define VMCS_GUEST_PML_INDEX           0x0812U

/* Table B-3: 16-bit host-state fields */
#define VMCS_HOST_ES_SEL               0x0C00U
#define VMCS_HOST_CS_SEL               0x0C02U
#define VMCS_HOST_SS_SEL               0x0C04U
#define VMCS_HOST_DS_SEL               0x0C06U
#define VMCS_HOST_FS_SEL               0x0C08U
#define VMCS_HOST_GS_SEL               0x0C0AU
#define VMCS_HOST_TR_SEL               0x0C0CU

/* Table B-4: 64-bit control fields */
#define VMCS_CTRL_IO_BITMAP_A          0x2000U
#define VMCS_CTRL_IO_BITMAP_B          0x2002U
#define VMCS_CTRL_MSR_BITMAP           0x2004U
#define VMCS_CTRL_EXIT_MSR_STORE_ADDR  0x2006U
#define VMCS_CTRL_EXIT_MSR_LOAD_ADDR   0x2008U
#define VMCS_CTRL_ENTRY_MSR_LOAD_ADDR  0x200AU
#define VMCS_CTRL_TSC_OFFSET           0x2010U
#define VMCS_CTRL_VIRT_APIC_ADDR       0x2012U
#define VMCS_CTRL_APIC_ACCESS_ADDR     0x2014U
#define VMCS_CTRL_VMFUNC_CTRLS         0x2018U
#define VMCS_CTRL_EPTP                 0x201AU
#define VMCS_CTRL_EPTP_LIST_ADDR       0x2024U
#define VMCS_CTRL_VE_INFO_ADDR         0x202AU
#define VMCS_CTRL_XSS_EXIT_BITMAP      0x202CU
#define VMCS_CTRL_SPPTP                0x2030U

/* Table B-5: 64-bit read-only data fields */
#define VMCS_RO_GUEST_PHYS_ADDR        0x2400U

/* Table B-6: 64-bit guest-state fields */
#define VMCS_GUEST_VMCS_LINK_PTR       0x2800U
#define VMCS_GUEST_IA32_DEBUGCTL       0x2802U
#define VMCS_GUEST_IA32_PAT            0x2804U
#define VMCS_GUEST_IA32_EFER           0x2806U
#define VMCS_GUEST_IA32_PERF_GLOBAL    0x2808U
#define VMCS_GUEST_IA32_RTIT_CTL       0x2814U
#define VMCS_GUEST_PDPTE0              0x280AU
#define VMCS_GUEST_PDPTE1              0x280CU
#define VMCS_GUEST_PDPTE2              0x280EU
#define VMCS_GUEST_PDPTE3              0x2810U

/* Table B-7: 64-bit host-state fields */
#define VMCS_HOST_IA32_PAT             0x2C00U
#define VMCS_HOST_IA32_EFER            0x2C02U

/* Table B-8: 32-bit control fields */
#define VMCS_CTRL_PIN_BASED            0x4000U
#define VMCS_CTRL_PROC_BASED           0x4002U
#define VMCS_CTRL_EXCEPTION_BITMAP     0x4004U
#define VMCS_CTRL_PF_ERROR_MASK        0x4006U
#define VMCS_CTRL_PF_ERROR_MATCH       0x4008U
#define VMCS_CTRL_CR3_TARGET_COUNT     0x400AU
#define VMCS_CTRL_EXIT                 0x400CU
#define VMCS_CTRL_EXIT_MSR_STORE_COUNT 0x400EU
#define VMCS_CTRL_EXIT_MSR_LOAD_COUNT  0x4010U
#define VMCS_CTRL_ENTRY                0x4012U
#define VMCS_CTRL_ENTRY_MSR_LOAD_COUNT 0x4014U
#define VMCS_CTRL_ENTRY_INTR_INFO      0x4016U
#define VMCS_CTRL_ENTRY_EXC_ERROR_CODE 0x4018U
#define VMCS_CTRL_ENTRY_INSN_LEN       0x401AU
#define VMCS_CTRL_TPR_THRESHOLD        0x401CU
#define VMCS_CTRL_PROC_BASED2          0x401EU

/* Table B-9: 32-bit read-only data fields */
#define VMCS_RO_VM_INSN_ERROR          0x4400U
#define VMCS_RO_EXIT_REASON            0x4402U
#define VMCS_RO_EXIT_INTR_INFO         0x4404U
#define VMCS_RO_EXIT_INTR_ERROR_CODE   0x4406U
#define VMCS_RO_IDT_VECTORING_INFO     0x4408U
#define VMCS_RO_IDT_VECTORING_ERROR    0x440AU
#define VMCS_RO_EXIT_INSN_LEN          0x440CU
#define VMCS_RO_EXIT_INSN_INFO         0x440EU

/* Table B-10: 32-bit guest-state fields */
#define VMCS_GUEST_ES_LIMIT            0x4800U
#define VMCS_GUEST_CS_LIMIT            0x4802U
#define VMCS_GUEST_SS_LIMIT            0x4804U
#define VMCS_GUEST_DS_LIMIT            0x4806U
#define VMCS_GUEST_FS_LIMIT            0x4808U
#define VMCS_GUEST_GS_LIMIT            0x480AU
#define VMCS_GUEST_LDTR_LIMIT          0x480CU
#define VMCS_GUEST_TR_LIMIT            0x480EU
#define VMCS_GUEST_GDTR_LIMIT          0x4810U
#define VMCS_GUEST_IDTR_LIMIT          0x4812U
#define VMCS_GUEST_ES_AR               0x4814U
#define VMCS_GUEST_CS_AR               0x4816U
#define VMCS_GUEST_SS_AR               0x4818U
#define VMCS_GUEST_DS_AR               0x481AU
#define VMCS_GUEST_FS_AR               0x481CU
#define VMCS_GUEST_GS_AR               0x481EU
#define VMCS_GUEST_LDTR_AR             0x4820U
#define VMCS_GUEST_TR_AR               0x4822U
#define VMCS_GUEST_INTERRUPTIBILITY    0x4824U
#define VMCS_GUEST_ACTIVITY_STATE      0x4826U
#define VMCS_GUEST_SMBASE              0x4828U
#define VMCS_GUEST_IA32_SYSENTER_CS    0x482AU
#define VMCS_GUEST_PREEMPT_TIMER       0x482EU

/* Table B-11: 32-bit host-state field */
#define VMCS_HOST_IA32_SYSENTER_CS     0x4C00U

/* Table B-12: natural-width control fields */
#define VMCS_CTRL_CR0_MASK             0x6000U
#define VMCS_CTRL_CR4_MASK             0x6002U
#define VMCS_CTRL_CR0_READ_SHADOW      0x6004U
#define VMCS_CTRL_CR4_READ_SHADOW      0x6006U

/* Table B-13: natural-width read-only data fields */
#define VMCS_RO_EXIT_QUALIFICATION     0x6400U
#define VMCS_RO_GUEST_LINEAR_ADDR      0x640AU

/* Table B-14: natural-width guest-state fields */
#define VMCS_GUEST_CR0                 0x6800U
#define VMCS_GUEST_CR3                 0x6802U
#define VMCS_GUEST_CR4                 0x6804U
#define VMCS_GUEST_ES_BASE             0x6806U
#define VMCS_GUEST_CS_BASE             0x6808U
#define VMCS_GUEST_SS_BASE             0x680AU
#define VMCS_GUEST_DS_BASE             0x680CU
#define VMCS_GUEST_FS_BASE             0x680EU
#define VMCS_GUEST_GS_BASE             0x6810U
#define VMCS_GUEST_LDTR_BASE           0x6812U
#define VMCS_GUEST_TR_BASE             0x6814U
#define VMCS_GUEST_GDTR_BASE           0x6816U
#define VMCS_GUEST_IDTR_BASE           0x6818U
#define VMCS_GUEST_DR7                 0x681AU
#define VMCS_GUEST_RSP                 0x681CU
#define VMCS_GUEST_RIP                 0x681EU
#define VMCS_GUEST_RFLAGS              0x6820U
#define VMCS_GUEST_PENDING_DBG_EXC     0x6822U
#define VMCS_GUEST_IA32_SYSENTER_ESP   0x6824U
#define VMCS_GUEST_IA32_SYSENTER_EIP   0x6826U

/* Table B-15: natural-width host-state fields */
#define VMCS_HOST_CR0                  0x6C00U
#define VMCS_HOST_CR3                  0x6C02U
#define VMCS_HOST_CR4                  0x6C04U
#define VMCS_HOST_FS_BASE              0x6C06U
#define VMCS_HOST_GS_BASE              0x6C08U
#define VMCS_HOST_TR_BASE              0x6C0AU
#define VMCS_HOST_GDTR_BASE            0x6C0CU
#define VMCS_HOST_IDTR_BASE            0x6C0EU
#define VMCS_HOST_IA32_SYSENTER_ESP    0x6C10U
#define VMCS_HOST_IA32_SYSENTER_EIP    0x6C12U
#define VMCS_HOST_RSP                  0x6C14U
#define VMCS_HOST_RIP                  0x6C16U

/* Section 24.11.2 / Appendix B: bits 14:13 of an encoding give the field width. */
#define VMCS_WIDTH_16      0U
#define VMCS_WIDTH_64      1U
#define VMCS_WIDTH_32      2U
#define VMCS_WIDTH_NATURAL 3U
#define vmcs_field_width(f) (((f) >> 13) & 3U)

#endif
