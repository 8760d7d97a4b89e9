/*
 * Host tests of what a hostile guest kernel can make the exit handlers do (issue 9),
 * against the fake hardware layer: a fake machine whose RAM starts at guest-physical 0
 * (as on most PCs), the hypervisor's region above it, SPP in software mode, one CPU.
 * Each test plays the processor's part (the exit and its VMCS fields) and checks what the
 * guest can see: memory, RIP, the injected event, CR2, the event ring, and that the vCPU
 * did not stop (cpu_halt() would longjmp back into the test).
 *
 *  - the processor's own accessed/dirty writes to guest page tables (EPT qualification
 *    bit 8 = 0) are not taken for the instruction at RIP;
 *  - event delivery onto the hypervisor's region gives #DF, the instruction is not skipped;
 *  - task switches fault in the guest instead of stopping the vCPU;
 *  - an emulated instruction whose source is MMIO gets no #PF with a stale CR2;
 *  - an event ring at GPA 0 works;
 *  - a write loop on the hypervisor's region does not flood the log.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include <hw.h>
#include <machine.h>
#include <arch/cpu.h>
#include <arch/ept.h>
#include <arch/msr.h>
#include <arch/vmx.h>
#include <tessel/bootinfo.h>
#include <tessel/config.h>
#include "drivers/uart.h"
#include "hv/abi.h"
#include "hv/exit.h"
#include "hv/hypercall.h"
#include "hv/log.h"
#include "hv/percpu.h"
#include "hv/stats.h"
#include "hv/vmcs.h"
#include "hv/vmx_caps.h"
#include "mm/ept.h"
#include "mm/memmap.h"
#include "mm/mtrr.h"
#include "mm/pmm.h"
#include "spp/spp.h"
#include "spp/step.h"

#define MiB(x) ((u64)(x) << 20)
#define W_BASE 0ULL               /* guest RAM starts at 0 */
#define W_SIZE MiB(64)
#define RAM_SIZE MiB(48)
#define HV_BASE (W_BASE + RAM_SIZE)
#define HV_SIZE (W_SIZE - RAM_SIZE)
#define PHYS_BITS 36

#define CODE_GPA 0x1000ULL        /* the guest's instruction */
#define MAP_GPA MiB(1)
#define RING_GPA MiB(2)
#define PAGE_GPA MiB(8)           /* the protected page: also the guest's page table */
#define PAGE_GFN (PAGE_GPA >> PAGE_SHIFT)
#define PAGE_MAP 0x0000ffffu      /* sub-pages 0-15 writable, 16-31 protected */
#define PD_GPA MiB(9)             /* 32-bit paging: the page directory */
#define DATA_GPA MiB(10)
#define MMIO_GPA 0xfec00000ULL    /* not RAM in the memory map */
#define PTE_A (1U << 5)
#define PTE_D (1U << 6)

static struct mtrr_state mtrr;
static struct ept ept;
static struct percpu cpu;
static struct guest_regs regs;
static jmp_buf halted;

static const struct tessel_mem_range fw_map[] = {
	{ W_BASE, RAM_SIZE >> PAGE_SHIFT, EFI_MT_CONVENTIONAL, 0 },
	{ HV_BASE, HV_SIZE >> PAGE_SHIFT, EFI_MT_LOADER_DATA, 0 },
};
static const struct fake_machine machine = { .hv_base = HV_BASE, .hv_size = HV_SIZE, .phys_bits = PHYS_BITS,
					     .fw_map = fw_map, .fw_count = ARRAY_SIZE(fw_map) };

static u8 *gp(u64 gpa) { return hpa_to_ptr(hpa(gpa)); }
static u32 *u32_at(u64 gpa) { return (u32 *)gp(gpa); }

static s64 hcall(u64 nr, u64 a0, u64 a1, u64 a2, u64 a3)
{
	struct hc_args a = { .nr = nr, .arg = { a0, a1, a2, a3 } };
	return hypercall_dispatch(&cpu, &a, 0);
}

static u64 stat_of(enum stat s)
{
	u64 out[STAT_COUNT];
	stats_snapshot(out);
	return out[s];
}

struct __attribute__((packed)) ring_entry { u64 gpa, rip, gla; u32 vcpu; u16 kind, bytes; };
static struct ring_entry ring_entry(u64 ring, u32 k)
{
	struct ring_entry e;
	memcpy(&e, gp(ring + 64 + (u64)k * 32), sizeof(e));
	return e;
}

static void on_halt(void) { longjmp(halted, 1); }

static u32 injected(void) { return (u32)fake_vmcs_get(VMCS_CTRL_ENTRY_INTR_INFO); }

/* One VM exit through the dispatcher, as the processor would make it. False if the vCPU
 * stopped (vcpu_stop halts the CPU). */
static bool vm_exit(u32 reason, u64 qual, u64 gpa, u64 gla)
{
	fake_vmcs_set(VMCS_RO_EXIT_REASON, reason);
	fake_vmcs_set(VMCS_RO_EXIT_QUALIFICATION, qual);
	fake_vmcs_set(VMCS_RO_GUEST_PHYS_ADDR, gpa);
	fake_vmcs_set(VMCS_RO_GUEST_LINEAR_ADDR, gla);
	fake_vmcs_set(VMCS_CTRL_ENTRY_INTR_INFO, 0);
	if (setjmp(halted))
		return false;
	vmx_handle_exit(&regs, (u32)fake_vmcs_get(VMCS_RO_EXIT_REASON));
	return true;
}

static int setup(void **state)
{
	(void)state;
	fake_reset();
	fake_phys_init(W_BASE, W_SIZE);
	memset(gp(W_BASE), 0, RAM_SIZE);
	fake_machine_cpu(&cpu, &regs, 0, 3);
	fake_cpu_local_set(&cpu);
	fake_set_halt_hook(on_halt);
	memset(stat_counters, 0, sizeof(u64) * STAT_COUNT * TESSEL_MAX_CPUS);
	memset(&vmx_caps, 0, sizeof(vmx_caps));
	vmx_caps.phys_bits = PHYS_BITS;
	log_init(UART_COM1, CFG_LOG_DEBUG);

	/* The guest: 32-bit protected mode, flat, CPL 0, no paging unless a test turns it on. */
	fake_vmcs_set(VMCS_GUEST_CR0, CR0_PE | CR0_NE | CR0_ET);
	fake_vmcs_set(VMCS_GUEST_CS_AR, 0xc09b);
	fake_vmcs_set(VMCS_GUEST_SS_AR, 0xc093);
	fake_vmcs_set(VMCS_GUEST_RIP, CODE_GPA);
	fake_vmcs_set(VMCS_GUEST_RSP, 0x8000);
	fake_vmcs_set(VMCS_GUEST_RFLAGS, RFLAGS_FIXED);
	fake_cr_set(FAKE_CR2, 0x1111);

	assert_int_equal(fake_machine_spp(&machine, &mtrr, &ept, CFG_SPP_SW), 0);
	assert_int_equal(spp.mode, SPP_MODE_SW);
	assert_int_equal(hcall(HC_EVENTS_SETUP, RING_GPA, 1, 0, 0), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	fake_set_halt_hook(NULL);
	fake_cpu_local_set(NULL);
	fake_phys_fini();
	return 0;
}

static void protect(u32 map, u64 flags)
{
	*u32_at(MAP_GPA) = map;
	assert_int_equal(hcall(HC_SPP_SET, PAGE_GFN, 1, MAP_GPA, flags), 0);
}

static void code(const char *bytes, unsigned len) { memcpy(gp(CODE_GPA), bytes, len); }

/*
 * 32-bit paging with 4 MiB pages (PSE) for 0-4 MiB (the code) and a page table at PAGE_GPA
 * for 4-8 MiB. PTE i sits at PAGE_GPA + 4 * i: i < 512 in writable sub-pages, i >= 512 in
 * protected ones.
 */
#define GLA_OF(i) (0x400000ULL + ((u64)(i) << 12))
#define PTE_GPA(i) (PAGE_GPA + 4 * (u64)(i))
static void paging_on(void)
{
	u32 *pd = u32_at(PD_GPA);
	pd[0] = 0x0 | 0x83;                      /* 4 MiB page, P RW PS, A D set */
	pd[0] |= PTE_A | PTE_D;
	pd[1] = (u32)PAGE_GPA | 0x3 | PTE_A;      /* page table, P RW, accessed */
	for (unsigned i = 0; i < 1024; i++)
		u32_at(PAGE_GPA)[i] = (u32)(DATA_GPA + ((u64)(i & 15) << 12)) | 0x3; /* A = D = 0 */
	fake_vmcs_set(VMCS_GUEST_CR0, CR0_PE | CR0_PG | CR0_NE | CR0_ET);
	fake_vmcs_set(VMCS_GUEST_CR4, CR4_PSE | CR4_VMXE);
	fake_vmcs_set(VMCS_GUEST_CR3, PD_GPA);
}

#define QUAL_AD_WRITE (EPT_QUAL_WRITE | EPT_QUAL_READABLE | EPT_QUAL_GLA_VALID) /* bit 8 = 0 */

static void assert_untouched_insn(void)
{
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_RIP), CODE_GPA);
	assert_int_equal(regs.gpr[GPR_AX], 0);
	assert_null(cpu.step);
}

/* A load through a PTE with A = 0, the PTE in a writable sub-page of a page with protected
 * sub-pages: the processor's accessed-flag write exits (the page is read-only in the EPT).
 * The flag lands, the load is not touched (not emulated, stepped, skipped or discarded). */
static void test_paging_write_sets_accessed(void **state)
{
	(void)state;
	paging_on();
	protect(PAGE_MAP, 0);
	code("\x8b\x00", 2); /* MOV EAX, [EAX] */
	regs.gpr[GPR_AX] = 0;
	u64 denied = stat_of(STAT_SPP_DENIED);
	u32 before = *u32_at(PTE_GPA(5));
	assert_true(vm_exit(EXIT_REASON_EPT_VIOLATION, QUAL_AD_WRITE, PTE_GPA(5), GLA_OF(5)));
	assert_int_equal(*u32_at(PTE_GPA(5)), before | PTE_A);
	assert_int_equal(injected(), 0);
	assert_untouched_insn();
	assert_int_equal(*u32_at(RING_GPA), 0); /* no event */
	assert_int_equal(stat_of(STAT_SPP_DENIED), denied);

	/* A store through it exits again for the dirty flag, a leaf's only. */
	assert_true(vm_exit(EXIT_REASON_EPT_VIOLATION, QUAL_AD_WRITE, PTE_GPA(5), GLA_OF(5)));
	assert_int_equal(*u32_at(PTE_GPA(5)), before | PTE_A | PTE_D);
	assert_untouched_insn();

	/* Not a leaf (the PDE): only the accessed flag, never bit 6. */
	u32 *pde = u32_at(PD_GPA + 4);
	*pde &= ~PTE_A;
	protect(SPP_MAP_ALL, 0);
	assert_true(vm_exit(EXIT_REASON_EPT_VIOLATION, QUAL_AD_WRITE, PD_GPA + 4, GLA_OF(5)));
	assert_int_equal(*pde & (PTE_A | PTE_D), PTE_A);
	assert_true(vm_exit(EXIT_REASON_EPT_VIOLATION, QUAL_AD_WRITE, PD_GPA + 4, GLA_OF(5)));
	assert_int_equal(*pde & (PTE_A | PTE_D), PTE_A);
	assert_untouched_insn();

	/* An entry that is not on the walk from CR3 (the processor used a cached PDE that no
	 * longer matches memory): nothing is written, the vCPU's cached translations are
	 * dropped so the access walks again, and the instruction is untouched. */
	fake_vmcs_set(VMCS_CTRL_PROC_BASED2, PROC2_ENABLE_VPID);
	u64 inv = fake_invvpid_count();
	u32 other = *u32_at(DATA_GPA + 0x20);
	assert_true(vm_exit(EXIT_REASON_EPT_VIOLATION, QUAL_AD_WRITE, DATA_GPA + 0x20, GLA_OF(5)));
	assert_int_equal(*u32_at(DATA_GPA + 0x20), other);
	assert_int_equal(fake_invvpid_count(), inv + 1);
	assert_int_equal(injected(), 0);
	assert_untouched_insn();
}

/* The PTE is on protected bytes (DENY): the flag cannot land, the access cannot complete:
 * #DF, reported DENIED; the entry is unchanged and the instruction untouched. */
static void test_paging_write_on_protected_bytes(void **state)
{
	(void)state;
	paging_on();
	protect(PAGE_MAP, 0);
	code("\x8b\x00", 2);
	u32 before = *u32_at(PTE_GPA(600));
	assert_true(vm_exit(EXIT_REASON_EPT_VIOLATION, QUAL_AD_WRITE, PTE_GPA(600), GLA_OF(600)));
	assert_int_equal(*u32_at(PTE_GPA(600)), before);
	assert_int_equal(injected(), INTR_INFO_VALID | INTR_TYPE_HW_EXCEPTION | INTR_INFO_DELIVER_CODE | VEC_DF);
	assert_untouched_insn();
	assert_int_equal(*u32_at(RING_GPA), 1);
	struct ring_entry e = ring_entry(RING_GPA, 0);
	assert_int_equal(e.kind, TESSEL_EV_DENIED);
	assert_int_equal(e.gpa, PTE_GPA(600));
	assert_int_equal(e.rip, CODE_GPA);

	/* With TRACK the flag lands and is reported. */
	protect(PAGE_MAP, TESSEL_SPP_TRACK_FLAG);
	assert_true(vm_exit(EXIT_REASON_EPT_VIOLATION, QUAL_AD_WRITE, PTE_GPA(600), GLA_OF(600)));
	assert_int_equal(*u32_at(PTE_GPA(600)), before | PTE_A);
	assert_int_equal(injected(), 0);
	assert_int_equal(ring_entry(RING_GPA, 1).kind, TESSEL_EV_TRACKED);
	assert_untouched_insn();
}

/* An IDT or stack pointing into the hypervisor's region: the write is the processor's
 * event frame, not the instruction at RIP. #DF; RIP stays; a #DF that cannot be delivered
 * would reset (not exercised here: platform_reset). */
static void test_delivery_onto_hv_region(void **state)
{
	(void)state;
	code("\x90\x90", 2);
	fake_vmcs_set(VMCS_RO_IDT_VECTORING_INFO, INTR_INFO_VALID | INTR_TYPE_EXT_INTR | 0x30);
	assert_true(vm_exit(EXIT_REASON_EPT_VIOLATION, EPT_QUAL_WRITE | EPT_QUAL_READABLE | EPT_QUAL_GLA_VALID |
			    EPT_QUAL_GLA_XLATE, HV_BASE + 0xff8, HV_BASE + 0xff8));
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_RIP), CODE_GPA);
	assert_int_equal(injected(), INTR_INFO_VALID | INTR_TYPE_HW_EXCEPTION | INTR_INFO_DELIVER_CODE | VEC_DF);

	/* An instruction's own write there is still discarded and skipped (ABI.md 8). */
	fake_vmcs_set(VMCS_RO_IDT_VECTORING_INFO, 0);
	code("\x89\x03", 2); /* MOV [EBX], EAX */
	assert_true(vm_exit(EXIT_REASON_EPT_VIOLATION, EPT_QUAL_WRITE | EPT_QUAL_READABLE | EPT_QUAL_GLA_VALID |
			    EPT_QUAL_GLA_XLATE, HV_BASE + 0x10, HV_BASE + 0x10));
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_RIP), CODE_GPA + 2);
	assert_int_equal(injected(), 0);
}

/* Task switches (exit reason 9) fault in the guest; the vCPU never stops. */
static void test_task_switch(void **state)
{
	(void)state;
	/* CALL to a TSS selector 0x28 (source 0): #GP(0), RIP on the CALL. */
	fake_vmcs_set(VMCS_RO_IDT_VECTORING_INFO, 0);
	assert_true(vm_exit(EXIT_REASON_TASK_SWITCH, 0x28 | (0ULL << 30), 0, 0));
	assert_int_equal(injected(), INTR_INFO_VALID | INTR_TYPE_HW_EXCEPTION | INTR_INFO_DELIVER_CODE | VEC_GP);
	assert_int_equal(fake_vmcs_get(VMCS_CTRL_ENTRY_EXC_ERROR_CODE), 0);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_RIP), CODE_GPA);
	/* IRET with NT (1) and JMP (2) likewise. */
	assert_true(vm_exit(EXIT_REASON_TASK_SWITCH, 0x30 | (1ULL << 30), 0, 0));
	assert_int_equal(injected() & 0xff, VEC_GP);
	assert_true(vm_exit(EXIT_REASON_TASK_SWITCH, 0x30 | (2ULL << 30), 0, 0));
	assert_int_equal(injected() & 0xff, VEC_GP);
	/* An interrupt through a task gate (source 3): it cannot be delivered, #DF, and the
	 * interrupted event is not re-injected. */
	fake_vmcs_set(VMCS_RO_IDT_VECTORING_INFO, INTR_INFO_VALID | INTR_TYPE_EXT_INTR | 0x41);
	assert_true(vm_exit(EXIT_REASON_TASK_SWITCH, 0x38 | (3ULL << 30), 0, 0));
	assert_int_equal(injected(), INTR_INFO_VALID | INTR_TYPE_HW_EXCEPTION | INTR_INFO_DELIVER_CODE | VEC_DF);
}

/* MOVSB from MMIO onto a protected page: the source read is not RAM. Not a #PF (the guest
 * would take none, and CR2 would be whatever the hypervisor's stack held): the instruction
 * cannot be emulated, so it is discarded and reported (kind 3). */
static void test_mmio_source_no_page_fault(void **state)
{
	(void)state;
	protect(PAGE_MAP, 0);
	code("\xa4", 1); /* MOVSB */
	regs.gpr[GPR_SI] = MMIO_GPA;
	regs.gpr[GPR_DI] = PAGE_GPA + 0x900;
	u8 before = *gp(PAGE_GPA + 0x900);
	fake_vmcs_set(VMCS_RO_IDT_VECTORING_INFO, 0);
	assert_true(vm_exit(EXIT_REASON_EPT_VIOLATION, EPT_QUAL_WRITE | EPT_QUAL_READABLE | EPT_QUAL_GLA_VALID |
			    EPT_QUAL_GLA_XLATE, PAGE_GPA + 0x900, PAGE_GPA + 0x900));
	assert_int_not_equal(injected() & 0xff, VEC_PF);
	assert_int_equal(fake_cr_get(FAKE_CR2), 0x1111);
	assert_int_equal(*gp(PAGE_GPA + 0x900), before);
	assert_int_equal(*u32_at(RING_GPA), 1);
	assert_int_equal(ring_entry(RING_GPA, 0).kind, TESSEL_EV_DISCARDED);
}

/*
 * The per-CPU guest-walk cache (mm/guest_mem.h struct walk_cache) must never decode bytes
 * the guest no longer maps at RIP: the guest remaps its code page by editing a PTE (no exit,
 * as INVLPG has none under EPT), and the next emulated store at the same RIP, CR3 and
 * access is the new instruction's. Then the same with an upper-level entry changed.
 */
#define LM_TABLES MiB(12) /* PML4, PDPT, PD, PT, PT2 at +0, +4K, +8K, +12K, +16K */
static void test_walk_cache_sees_remap(void **state)
{
	(void)state;
	u64 *pml4 = (u64 *)gp(LM_TABLES), *pdpt = (u64 *)gp(LM_TABLES + 0x1000), *pd = (u64 *)gp(LM_TABLES + 0x2000);
	u64 *pt = (u64 *)gp(LM_TABLES + 0x3000), *pt2 = (u64 *)gp(LM_TABLES + 0x4000);
	pml4[0] = (LM_TABLES + 0x1000) | 3;
	pdpt[0] = (LM_TABLES + 0x2000) | 3;
	pd[0] = (LM_TABLES + 0x3000) | 3;
	for (u64 i = 1; i < 16; i++)
		pd[i] = (i << 21) | 0x83; /* 2 MiB pages, identity (the protected page is in pd[4]) */
	for (u64 i = 0; i < 512; i++)
		pt[i] = pt2[i] = (i << 12) | 3;
	pt[5] = 0x6000 | 3;   /* code at 0x5000: MOV [RDI], EAX */
	pt2[5] = 0x6000 | 3;
	memcpy(gp(0x6000), "\x89\x07", 2);
	memcpy(gp(0x7000), "\x89\x0f", 2); /* MOV [RDI], ECX */
	fake_vmcs_set(VMCS_GUEST_CR0, CR0_PE | CR0_NE | CR0_ET | CR0_WP | CR0_PG);
	fake_vmcs_set(VMCS_GUEST_CR4, CR4_PAE);
	fake_vmcs_set(VMCS_GUEST_CR3, LM_TABLES);
	fake_vmcs_set(VMCS_GUEST_IA32_EFER, EFER_LME | EFER_LMA);
	fake_vmcs_set(VMCS_GUEST_CS_AR, 0xa09b); /* 64-bit code, DPL 0 */
	fake_vmcs_set(VMCS_RO_IDT_VECTORING_INFO, 0);
	protect(PAGE_MAP, 0);
	regs.gpr[GPR_AX] = 0x11111111;
	regs.gpr[GPR_CX] = 0x22222222;
	regs.gpr[GPR_DI] = PAGE_GPA + 0x100; /* a writable sub-page */
	const u64 q = EPT_QUAL_WRITE | EPT_QUAL_READABLE | EPT_QUAL_GLA_VALID | EPT_QUAL_GLA_XLATE;
	static const struct { u64 *entry; u64 value; u32 want; } steps[] = {
		{ NULL, 0, 0x11111111 },                        /* fills the cache */
		{ NULL, 0, 0x11111111 },                        /* a hit */
		{ (u64 *)0, 0x7000 | 3, 0x22222222 },           /* the PTE now maps the other code */
		{ (u64 *)1, (LM_TABLES + 0x4000) | 3, 0x11111111 }, /* the PDE: another table */
	};
	for (unsigned k = 0; k < ARRAY_SIZE(steps); k++) {
		if (steps[k].entry == (u64 *)0 && steps[k].value)
			pt[5] = steps[k].value;
		else if (steps[k].entry == (u64 *)1)
			pd[0] = steps[k].value;
		*u32_at(PAGE_GPA + 0x100) = 0;
		fake_vmcs_set(VMCS_GUEST_RIP, 0x5000);
		assert_true(vm_exit(EXIT_REASON_EPT_VIOLATION, q, PAGE_GPA + 0x100, PAGE_GPA + 0x100));
		assert_int_equal(*u32_at(PAGE_GPA + 0x100), steps[k].want);
		assert_int_equal(fake_vmcs_get(VMCS_GUEST_RIP), 0x5002);
	}
}

/* GPA 0 is RAM here, and a ring there must work like anywhere else. */
static void test_ring_at_gpa0(void **state)
{
	(void)state;
	code("\x89\x03", 2); /* MOV [EBX], EAX */
	assert_int_equal(hcall(HC_EVENTS_SETUP, 0, 1, 0, 0), 0);
	assert_int_equal(*u32_at(8), (PAGE_SIZE - 64) / 32);
	protect(PAGE_MAP, 0);
	regs.gpr[GPR_BX] = PAGE_GPA + 0x900;
	regs.gpr[GPR_AX] = 0xdeadbeef;
	fake_vmcs_set(VMCS_RO_IDT_VECTORING_INFO, 0);
	assert_true(vm_exit(EXIT_REASON_EPT_VIOLATION, EPT_QUAL_WRITE | EPT_QUAL_READABLE | EPT_QUAL_GLA_VALID |
			    EPT_QUAL_GLA_XLATE, PAGE_GPA + 0x900, PAGE_GPA + 0x900));
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_RIP), CODE_GPA + 2);
	assert_int_equal(*u32_at(0), 1); /* head */
	struct ring_entry e = ring_entry(0, 0);
	assert_int_equal(e.kind, TESSEL_EV_DENIED);
	assert_int_equal(e.gpa, PAGE_GPA + 0x900);
	assert_int_equal(e.bytes, 4);
	/* RBX = 0, RCX = 0 still turns it off. */
	assert_int_equal(hcall(HC_EVENTS_SETUP, 0, 0, 0, 0), 0);
	assert_true(vm_exit(EXIT_REASON_EPT_VIOLATION, EPT_QUAL_WRITE | EPT_QUAL_READABLE | EPT_QUAL_GLA_VALID |
			    EPT_QUAL_GLA_XLATE, PAGE_GPA + 0x900, PAGE_GPA + 0x900));
	assert_int_equal(*u32_at(0), 1);
}

static unsigned count(const char *text, const char *needle)
{
	unsigned n = 0;
	for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle))
		n++;
	return n;
}

/* A guest writing the hypervisor's region in a loop (at debug level every write is a
 * line): the log gets a bounded number of lines, not one per exit. */
static void test_hv_region_write_loop_is_rate_limited(void **state)
{
	(void)state;
	code("\x89\x03", 2);
	fake_vmcs_set(VMCS_RO_IDT_VECTORING_INFO, 0);
	fake_io_output_clear();
	fake_tsc_set(1ULL << 44);
	for (unsigned i = 0; i < 500; i++) {
		fake_vmcs_set(VMCS_GUEST_RIP, CODE_GPA);
		assert_true(vm_exit(EXIT_REASON_EPT_VIOLATION, EPT_QUAL_WRITE | EPT_QUAL_READABLE |
				    EPT_QUAL_GLA_VALID | EPT_QUAL_GLA_XLATE, HV_BASE + 0x10, HV_BASE + 0x10));
		assert_int_equal(fake_vmcs_get(VMCS_GUEST_RIP), CODE_GPA + 2);
	}
	unsigned lines = count(fake_io_output(), "hypervisor memory");
	assert_true(lines >= 1);
	assert_true(lines <= LOG_RL_BURST);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_paging_write_sets_accessed),
		T(test_paging_write_on_protected_bytes),
		T(test_delivery_onto_hv_region),
		T(test_task_switch),
		T(test_mmio_source_no_page_fault),
		T(test_ring_at_gpa0),
		T(test_hv_region_write_loop_is_rate_limited),
		T(test_walk_cache_sees_remap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
