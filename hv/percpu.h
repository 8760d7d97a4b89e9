/*
 * Per-CPU state of the hypervisor: one struct percpu per logical processor, allocated at
 * init from the region. The host GS base points at it; its first member points at itself
 * so this_cpu() is one load from %gs:0.
 */
#ifndef HV_PERCPU_H
#define HV_PERCPU_H

#include <hw.h>
#include <tessel/bootinfo.h>
#include <tessel/types.h>

/* Guest general-purpose registers, indexed by x86 register number. gpr[GPR_SP] is not
 * saved by the exit path: it is read from/written to the VMCS by vcpu_gpr_read/write. */
struct spp_step;

enum gpr { GPR_AX, GPR_CX, GPR_DX, GPR_BX, GPR_SP, GPR_BP, GPR_SI, GPR_DI,
	   GPR_R8, GPR_R9, GPR_R10, GPR_R11, GPR_R12, GPR_R13, GPR_R14, GPR_R15 };
struct guest_regs { u64 gpr[16]; };

/* 64-bit TSS (SDM Vol. 3A Figure 8-11). */
struct __packed tss64 {
	u32 rsvd0;
	u64 rsp[3];
	u64 rsvd1;
	u64 ist[7];
	u64 rsvd2;
	u16 rsvd3;
	u16 iomap_base;
};

#define HOST_STACK_SIZE (16 * 1024)
#define IST_STACK_SIZE  (4 * 1024)
#define IST_NMI 1
#define IST_DF  2
#define IST_MC  3

#define HOST_SEL_CODE 0x08
#define HOST_SEL_DATA 0x10
/* The TSS sits at the end of a 4 KiB GDT: when a start is undone (hv/start.c) a processor
 * whose firmware ran without a TSS keeps this TR selector (a null TR cannot be loaded again),
 * and firmware that saves and reloads TR (EDK II's MP services do) skips a selector beyond
 * its own GDT's limit instead of loading whatever its GDT holds there. */
#define HOST_GDT_ENTRIES 512
#define HOST_SEL_TSS  ((HOST_GDT_ENTRIES - 2) * 8)

/* Where the first VMLAUNCH was made from (hv/entry.asm vmx_launch). */
struct launch_jmp { u64 rbx, rbp, r12, r13, r14, r15, rsp, rip; };

/* An entry of a VM-exit/VM-entry MSR area (SDM 24.7.2, 24.8.2): 16 bytes, 16-byte aligned. */
struct vmx_msr_entry { u32 index, reserved; u64 value; };

struct percpu {
	struct percpu *self;         /* must be first: read through %gs:0 */
	/* Set by the root-mode NMI handler when it leaves a request for this vCPU (an NMI to
	 * deliver, an INIT); read by hv/entry.asm as %gs:8 just before VMRESUME (hv/exit.c,
	 * "the last check before VM entry"). Must stay at offset 8. */
	volatile u32 entry_kick;
	u32 index;                   /* 0 .. cpu_count-1, the loader's processor number */
	u32 apic_id;
	/* Offsets 20-23: the four flags hv/entry.asm's HC_NOP fast path tests with one compare
	 * (all 0 but entered = 1: nothing for the full exit path to do). */
	volatile bool nmi_pending;   /* an NMI arrived in root mode or must be re-delivered */
	u8 pending_vector;           /* event-ring notification to inject (0 = none) */
	bool mtf_selftest;           /* first entry made with MTF set: does MTF fire? */
	bool entered;                /* the first VM entry succeeded (a VM exit other than entry failure) */
	struct guest_regs *regs;     /* the guest's registers during an exit */
	hpa_t vmxon;                 /* VMXON region */
	hpa_t vmcs;                  /* this CPU's VMCS */
	u64 stack_top;               /* HOST_RSP */
	/* Offsets 56-77, also used by hv/entry.asm's fast path. */
	struct spp_step *step;       /* software-SPP single step in progress (spp/step.c) */
	u64 exits;                   /* exits taken on this CPU */
	u32 exit_reason;             /* basic exit reason of the current exit */
	bool event_injected;         /* a handler queued an event for the next entry */
	bool idt_vectoring_read;     /* the exit's IDT-vectoring information was read (below) */
	u64 gdt[HOST_GDT_ENTRIES] __aligned(16); /* null, code, data, ..., TSS (the last 2 slots) */
	struct tss64 tss __aligned(16);
	bool launched;
	bool halted;                 /* stopped after an unexpected exit */
	bool wait_sipi;              /* waiting for a SIPI: runs no guest code */
	volatile bool vinit_pending; /* a virtual INIT was sent to this vCPU (hv/vapic.c) */
	volatile s32 vsipi_vector;   /* the SIPI vector it received, -1 while none */
	u64 exit_qual;
	u32 idt_vectoring;           /* the exit's IDT-vectoring information (vcpu_idt_vectoring) */
	u64 cr0_guest_mask;          /* CR0 bits the hypervisor owns (guest sees the shadow) */
	u64 cr4_guest_mask;
	/* Descriptor-table register pins (HC_PIN_DT, hv/pin.c); bit 0 IDTR, bit 1 GDTR. */
	u8 dt_pin_seen;              /* machine-wide pins this vCPU has synced */
	u8 dt_pin_have;              /* ... for which it holds a pinned value */
	u8 dt_pin_armed;             /* ... armed now (an INIT disarms) */
	u16 dt_pin_limit[2];
	u64 dt_pin_base[2];
	volatile u32 locks_held;     /* spinlocks held (include/tessel/spinlock.h) */
	volatile bool pause_deferred; /* a pause NMI came while locks_held != 0 (spp/step.c) */
	struct launch_jmp launch_jmp;
	/* A page for this vCPU's VMX MSR areas (hv/vmx.c setup_spec_ctrl): entry 0 holds the
	 * guest's IA32_SPEC_CTRL (VM-exit MSR-store, VM-entry MSR-load area), entry 1 the host's
	 * (VM-exit MSR-load area). */
	hpa_t msr_area;
	bool spec_ctrl_switched;     /* the areas are in use (the MSR exists) */
};

_Static_assert(__builtin_offsetof(struct percpu, entry_kick) == 8, "hv/entry.asm reads entry_kick at %gs:8");
/* hv/entry.asm's HC_NOP fast path (PERCPU_* there). */
_Static_assert(__builtin_offsetof(struct percpu, index) == 12, "hv/entry.asm: index");
_Static_assert(__builtin_offsetof(struct percpu, nmi_pending) == 20 &&
	       __builtin_offsetof(struct percpu, pending_vector) == 21 &&
	       __builtin_offsetof(struct percpu, mtf_selftest) == 22 &&
	       __builtin_offsetof(struct percpu, entered) == 23, "hv/entry.asm: the flags dword at 20");
_Static_assert(__builtin_offsetof(struct percpu, step) == 56 && __builtin_offsetof(struct percpu, exits) == 64 &&
	       __builtin_offsetof(struct percpu, exit_reason) == 72 &&
	       __builtin_offsetof(struct percpu, event_injected) == 76 &&
	       __builtin_offsetof(struct percpu, idt_vectoring_read) == 77, "hv/entry.asm: step, exits, exit_reason");

extern struct percpu *percpu_array[TESSEL_MAX_CPUS];
/* Set once every CPU that runs core code reaches its per-CPU area through GS (hv/main.c):
 * from then on spinlocks are counted per CPU. */
extern volatile bool percpu_gs_ready;
extern u32 percpu_count;

static inline struct percpu *this_cpu(void) { return (struct percpu *)cpu_local_self(); }

/* Can this CPU be running guest code right now? (Cross-CPU requests skip the others: a CPU
 * waiting for its SIPI or stopped runs none, and flushes before it enters the guest again.) */
static inline bool percpu_runs_guest(const struct percpu *t)
{
	return t->launched && !t->halted && !__atomic_load_n(&t->wait_sipi, __ATOMIC_ACQUIRE);
}

/* Index of the calling CPU, or -1 before its per-CPU area is in use (for log prefixes). */
int percpu_current_index(void);

#endif
