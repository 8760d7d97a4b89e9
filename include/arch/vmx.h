/*
 * VMX control bits, exit reasons and exit-qualification layouts (Intel SDM Vol. 3C,
 * chapters 24-27; Vol. 3D Appendix A for the capability MSRs, Appendix C for reasons).
 */
#ifndef ARCH_VMX_H
#define ARCH_VMX_H

/* Table 24-5: pin-based VM-execution controls */
#define PIN_EXT_INTR_EXITING      (1U << 0)
#define PIN_NMI_EXITING           (1U << 3)
#define PIN_VIRTUAL_NMIS          (1U << 5)
#define PIN_PREEMPTION_TIMER      (1U << 6)

/* Table 24-6: primary processor-based VM-execution controls */
#define PROC_INTR_WINDOW_EXITING  (1U << 2)
#define PROC_TSC_OFFSETTING       (1U << 3)
#define PROC_HLT_EXITING          (1U << 7)
#define PROC_INVLPG_EXITING       (1U << 9)
#define PROC_MWAIT_EXITING        (1U << 10)
#define PROC_RDPMC_EXITING        (1U << 11)
#define PROC_RDTSC_EXITING        (1U << 12)
#define PROC_CR3_LOAD_EXITING     (1U << 15)
#define PROC_CR3_STORE_EXITING    (1U << 16)
#define PROC_CR8_LOAD_EXITING     (1U << 19)
#define PROC_CR8_STORE_EXITING    (1U << 20)
#define PROC_TPR_SHADOW           (1U << 21)
#define PROC_NMI_WINDOW_EXITING   (1U << 22)
#define PROC_MOV_DR_EXITING       (1U << 23)
#define PROC_UNCOND_IO_EXITING    (1U << 24)
#define PROC_USE_IO_BITMAPS       (1U << 25)
#define PROC_MONITOR_TRAP_FLAG    (1U << 27)
#define PROC_USE_MSR_BITMAPS      (1U << 28)
#define PROC_MONITOR_EXITING      (1U << 29)
#define PROC_PAUSE_EXITING        (1U << 30)
#define PROC_ACTIVATE_SECONDARY   (1U << 31)

/* Table 24-7: secondary processor-based VM-execution controls */
#define PROC2_VIRT_APIC_ACCESS    (1U << 0)
#define PROC2_ENABLE_EPT          (1U << 1)
#define PROC2_DESC_TABLE_EXITING  (1U << 2)
#define PROC2_ENABLE_RDTSCP       (1U << 3)
#define PROC2_VIRT_X2APIC         (1U << 4)
#define PROC2_ENABLE_VPID         (1U << 5)
#define PROC2_WBINVD_EXITING      (1U << 6)
#define PROC2_UNRESTRICTED_GUEST  (1U << 7)
#define PROC2_ENABLE_INVPCID      (1U << 12)
#define PROC2_ENABLE_VMFUNC       (1U << 13)
#define PROC2_ENABLE_PML          (1U << 17)
#define PROC2_EPT_VE              (1U << 18)
#define PROC2_ENABLE_XSAVES       (1U << 20)
#define PROC2_SUBPAGE_WRITE_PERM  (1U << 23)
#define PROC2_ENABLE_USER_WAIT    (1U << 26)

/* Table 24-13: VM-exit controls */
#define EXIT_SAVE_DEBUG_CTLS      (1U << 2)
#define EXIT_HOST_ADDR_SPACE_SIZE (1U << 9)
#define EXIT_LOAD_PERF_GLOBAL     (1U << 12)
#define EXIT_ACK_INTR_ON_EXIT     (1U << 15)
#define EXIT_SAVE_IA32_PAT        (1U << 18)
#define EXIT_LOAD_IA32_PAT        (1U << 19)
#define EXIT_SAVE_IA32_EFER       (1U << 20)
#define EXIT_LOAD_IA32_EFER       (1U << 21)
#define EXIT_CLEAR_IA32_RTIT_CTL  (1U << 25)

/* Table 24-15: VM-entry controls */
#define ENTRY_LOAD_DEBUG_CTLS     (1U << 2)
#define ENTRY_IA32E_MODE_GUEST    (1U << 9)
#define ENTRY_LOAD_PERF_GLOBAL    (1U << 13)
#define ENTRY_LOAD_IA32_PAT       (1U << 14)
#define ENTRY_LOAD_IA32_EFER      (1U << 15)
#define ENTRY_LOAD_IA32_RTIT_CTL  (1U << 18)

/* Appendix A.1: IA32_VMX_BASIC */
#define VMX_BASIC_REVISION(v)     ((u32)(v) & 0x7fffffffU)
#define VMX_BASIC_TRUE_CTLS       (1ULL << 55)

/* Appendix A.6: IA32_VMX_MISC */
#define VMX_MISC_UG_STORES_LMA    (1ULL << 5)
#define VMX_MISC_ACTIVITY_WAIT_SIPI (1ULL << 8)

/* Appendix A.10: IA32_VMX_EPT_VPID_CAP */
#define EPT_CAP_EXEC_ONLY         (1ULL << 0)
#define EPT_CAP_PWL4              (1ULL << 6)
#define EPT_CAP_PWL5              (1ULL << 7)
#define EPT_CAP_MT_UC             (1ULL << 8)
#define EPT_CAP_MT_WB             (1ULL << 14)
#define EPT_CAP_2M                (1ULL << 16)
#define EPT_CAP_1G                (1ULL << 17)
#define EPT_CAP_INVEPT            (1ULL << 20)
#define EPT_CAP_AD                (1ULL << 21)
#define EPT_CAP_INVEPT_SINGLE     (1ULL << 25)
#define EPT_CAP_INVEPT_ALL        (1ULL << 26)
#define VPID_CAP_INVVPID          (1ULL << 32)
#define VPID_CAP_INVVPID_SINGLE   (1ULL << 41)
#define VPID_CAP_INVVPID_ALL      (1ULL << 42)

/* Table 24-3 / 24.4.2: activity state and interruptibility state */
#define GUEST_ACTIVITY_ACTIVE     0U
#define GUEST_ACTIVITY_HLT        1U
#define GUEST_ACTIVITY_SHUTDOWN   2U
#define GUEST_ACTIVITY_WAIT_SIPI  3U
#define GUEST_INTR_BLOCK_STI      (1U << 0)
#define GUEST_INTR_BLOCK_MOV_SS   (1U << 1)
#define GUEST_INTR_BLOCK_SMI      (1U << 2)
#define GUEST_INTR_BLOCK_NMI      (1U << 3)

/* Table 24-16 / 24.8.3: VM-entry interruption-information field */
#define INTR_INFO_VALID           (1U << 31)
#define INTR_INFO_DELIVER_CODE    (1U << 11)
#define INTR_INFO_NMI_UNBLOCKING  (1U << 12)
#define INTR_TYPE_EXT_INTR        (0U << 8)
#define INTR_TYPE_NMI             (2U << 8)
#define INTR_TYPE_HW_EXCEPTION    (3U << 8)
#define INTR_TYPE_SW_INTR         (4U << 8)
#define INTR_TYPE_PRIV_SW_EXC     (5U << 8)
#define INTR_TYPE_SW_EXCEPTION    (6U << 8)
#define INTR_TYPE_MASK            (7U << 8)
#define INTR_VECTOR_MASK          0xffU

/* Exception vectors (Vol. 3A Table 6-1) */
#define VEC_DE 0
#define VEC_DB 1
#define VEC_NMI 2
#define VEC_BP 3
#define VEC_UD 6
#define VEC_NM 7
#define VEC_DF 8
#define VEC_TS 10
#define VEC_NP 11
#define VEC_SS 12
#define VEC_GP 13
#define VEC_PF 14
#define VEC_MC 18

/* Appendix C: basic exit reasons */
#define EXIT_REASON_EXCEPTION_NMI      0
#define EXIT_REASON_EXTERNAL_INTR      1
#define EXIT_REASON_TRIPLE_FAULT       2
#define EXIT_REASON_INIT               3
#define EXIT_REASON_SIPI               4
#define EXIT_REASON_IO_SMI             5
#define EXIT_REASON_OTHER_SMI          6
#define EXIT_REASON_INTR_WINDOW        7
#define EXIT_REASON_NMI_WINDOW         8
#define EXIT_REASON_TASK_SWITCH        9
#define EXIT_REASON_CPUID              10
#define EXIT_REASON_GETSEC             11
#define EXIT_REASON_HLT                12
#define EXIT_REASON_INVD               13
#define EXIT_REASON_INVLPG             14
#define EXIT_REASON_RDPMC              15
#define EXIT_REASON_RDTSC              16
#define EXIT_REASON_RSM                17
#define EXIT_REASON_VMCALL             18
#define EXIT_REASON_VMCLEAR            19
#define EXIT_REASON_VMLAUNCH           20
#define EXIT_REASON_VMPTRLD            21
#define EXIT_REASON_VMPTRST            22
#define EXIT_REASON_VMREAD             23
#define EXIT_REASON_VMRESUME           24
#define EXIT_REASON_VMWRITE            25
#define EXIT_REASON_VMXOFF             26
#define EXIT_REASON_VMXON              27
#define EXIT_REASON_CR_ACCESS          28
#define EXIT_REASON_DR_ACCESS          29
#define EXIT_REASON_IO                 30
#define EXIT_REASON_RDMSR              31
#define EXIT_REASON_WRMSR              32
#define EXIT_REASON_ENTRY_FAIL_GUEST   33
#define EXIT_REASON_ENTRY_FAIL_MSR     34
#define EXIT_REASON_MWAIT              36
#define EXIT_REASON_MTF                37
#define EXIT_REASON_MONITOR            39
#define EXIT_REASON_PAUSE              40
#define EXIT_REASON_ENTRY_FAIL_MC      41
#define EXIT_REASON_TPR_BELOW          43
#define EXIT_REASON_APIC_ACCESS        44
#define EXIT_REASON_VIRT_EOI           45
#define EXIT_REASON_GDTR_IDTR          46
#define EXIT_REASON_LDTR_TR            47
#define EXIT_REASON_EPT_VIOLATION      48
#define EXIT_REASON_EPT_MISCONFIG      49
#define EXIT_REASON_INVEPT             50
#define EXIT_REASON_RDTSCP             51
#define EXIT_REASON_PREEMPT_TIMER      52
#define EXIT_REASON_INVVPID            53
#define EXIT_REASON_WBINVD             54
#define EXIT_REASON_XSETBV             55
#define EXIT_REASON_APIC_WRITE         56
#define EXIT_REASON_RDRAND             57
#define EXIT_REASON_INVPCID            58
#define EXIT_REASON_VMFUNC             59
#define EXIT_REASON_ENCLS              60
#define EXIT_REASON_RDSEED             61
#define EXIT_REASON_PML_FULL           62
#define EXIT_REASON_XSAVES             63
#define EXIT_REASON_XRSTORS            64
#define EXIT_REASON_SPP                66
#define EXIT_REASON_UMWAIT             67
#define EXIT_REASON_TPAUSE             68
#define EXIT_REASON_MAX                69 /* size of the dispatch table */

#define EXIT_REASON_BASIC(r)           ((r) & 0xffffU)
#define EXIT_REASON_ENTRY_FAILURE      (1U << 31)

/* Table 27-3: exit qualification for control-register accesses */
#define CR_QUAL_NUM(q)        ((q) & 0xfU)
#define CR_QUAL_TYPE(q)       (((q) >> 4) & 3U) /* 0 mov to, 1 mov from, 2 clts, 3 lmsw */
#define CR_QUAL_GPR(q)        (((q) >> 8) & 0xfU)
#define CR_QUAL_LMSW_SRC(q)   (((q) >> 16) & 0xffffU)

/* Table 27-7: exit qualification for EPT violations */
#define EPT_QUAL_READ         (1ULL << 0)
#define EPT_QUAL_WRITE        (1ULL << 1)
#define EPT_QUAL_FETCH        (1ULL << 2)
#define EPT_QUAL_READABLE     (1ULL << 3)
#define EPT_QUAL_WRITABLE     (1ULL << 4)
#define EPT_QUAL_EXECUTABLE   (1ULL << 5)
#define EPT_QUAL_GLA_VALID    (1ULL << 7)
#define EPT_QUAL_GLA_XLATE    (1ULL << 8)
#define EPT_QUAL_NMI_UNBLOCK  (1ULL << 12)

/* SPP-related event (exit reason 66) qualification, docs/SPP.md section 5 */
#define SPP_QUAL_MISS         (1ULL << 11)
#define SPP_QUAL_NMI_UNBLOCK  (1ULL << 12)

/* Section 30.4: VM-instruction error numbers used in diagnostics */
#define VMXERR_INVALID_CTRL        7
#define VMXERR_INVALID_HOST_STATE  8
#define VMXERR_UNSUPPORTED_FIELD   12

#endif
