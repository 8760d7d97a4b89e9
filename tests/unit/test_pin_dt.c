/*
 * Host tests for descriptor-table register pinning (ABI 1.3: HC_PIN_DT; hv/pin.c,
 * hv/exit_dt.c) over the fake hardware layer, in software-SPP mode so the event ring and
 * sub-page protection work. Each test plays the processor's part: it puts an instruction's
 * bytes at the guest's RIP, the guest state in the VMCS, and calls the descriptor-table
 * exit handler as a GDTR/IDTR-access (46) or LDTR/TR-access (47) exit would. It checks what
 * the guest can see: the GDTR/IDTR/LDTR/TR fields, memory an SGDT/SIDT stored, RIP, the
 * injected exception and CR2, HC_PIN_DT's status and registers, HC_STATS pin_denied and the
 * kind-5 (PIN) and kind-1 (DENIED) events.
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
#include "hv/pin.h"
#include "hv/stats.h"
#include "hv/vapic.h"
#include "hv/vcpu.h"
#include "hv/vmcs.h"
#include "hv/vmx_caps.h"
#include "mm/ept.h"
#include "mm/guest_mem.h"
#include "mm/memmap.h"
#include "mm/mtrr.h"
#include "mm/pmm.h"
#include "spp/spp.h"
#include "spp/step.h"

#define MiB(x) ((u64)(x) << 20)
#define RAM_SIZE MiB(48)
#define HV_BASE RAM_SIZE
#define HV_SIZE MiB(16)
#define PHYS_BITS 36
#define RING_GPA MiB(2)
#define STATS_GPA MiB(3)
#define PML4 0x10000ULL /* 64-bit mode: identity map of the first 16 MiB with 2 MiB pages */
#define CODE 0x20000ULL /* instructions */
#define DATA 0x30000ULL /* operands */
#define HOLE MiB(10)    /* not mapped in 64-bit mode (PD entry 5 not present) */

/* The guest's pinned values (as Linux's: idt_table, the fixmap GDT). */
#define IDT_BASE 0xfffffe0000000000ULL
#define IDT_LIMIT 0xfff
#define GDT_BASE 0xfffffe0000001000ULL
#define GDT_LIMIT 0x7f

static struct mtrr_state mtrr;
static struct ept ept;
static struct percpu cpu, ap;
static struct guest_regs regs, ap_regs;

static const struct tessel_mem_range fw_map[] = {
	{ 0, RAM_SIZE >> PAGE_SHIFT, EFI_MT_CONVENTIONAL, 0 },
	{ HV_BASE, HV_SIZE >> PAGE_SHIFT, EFI_MT_LOADER_DATA, 0 },
};
static const struct fake_machine machine = { .hv_base = HV_BASE, .hv_size = HV_SIZE, .phys_bits = PHYS_BITS,
					     .fw_map = fw_map, .fw_count = ARRAY_SIZE(fw_map) };

static u8 *gp(u64 gpa) { return hpa_to_ptr(hpa(gpa)); }

static s64 hcall_out(u64 nr, u64 a0, u64 a1, u64 a2, u64 a3, struct hc_args *out)
{
	struct hc_args a = { .nr = nr, .arg = { a0, a1, a2, a3 } };
	s64 r = hypercall_dispatch(this_cpu(), &a, 0);
	if (out)
		*out = a;
	return r;
}
static s64 hcall(u64 nr, u64 a0, u64 a1, u64 a2, u64 a3) { return hcall_out(nr, a0, a1, a2, a3, NULL); }

static u64 stat_of(enum stat s)
{
	u64 out[STAT_COUNT];
	stats_snapshot(out);
	return out[s];
}

struct __attribute__((packed)) ring_entry { u64 gpa, rip, gla; u32 vcpu; u16 kind, bytes; };
static u32 ring_head(void) { return *(u32 *)gp(RING_GPA); }
static struct ring_entry ring_entry(u32 k)
{
	struct ring_entry e;
	memcpy(&e, gp(RING_GPA + 64 + (u64)k * 32), sizeof(e));
	return e;
}

static void set_dt(u64 idt, u16 idtl, u64 gdt, u16 gdtl)
{
	fake_vmcs_set(VMCS_GUEST_IDTR_BASE, idt);
	fake_vmcs_set(VMCS_GUEST_IDTR_LIMIT, idtl);
	fake_vmcs_set(VMCS_GUEST_GDTR_BASE, gdt);
	fake_vmcs_set(VMCS_GUEST_GDTR_LIMIT, gdtl);
}

static void set_seg(unsigned s, u64 base, u32 limit, u32 ar)
{
	fake_vmcs_set(VMCS_GUEST_ES_BASE + 2 * s, base);
	fake_vmcs_set(VMCS_GUEST_ES_LIMIT + 2 * s, limit);
	fake_vmcs_set(VMCS_GUEST_ES_AR + 2 * s, ar);
}

/* 64-bit mode at CPL 0 with 4-level paging (identity, 2 MiB pages, 10-12 MiB not present). */
static void mode64(void)
{
	u64 *pml4 = (u64 *)gp(PML4), *pdpt = (u64 *)gp(PML4 + 0x1000), *pd = (u64 *)gp(PML4 + 0x2000);
	memset(pml4, 0, 3 * 4096);
	pml4[0] = (PML4 + 0x1000) | 3;
	pdpt[0] = (PML4 + 0x2000) | 3;
	for (unsigned i = 0; i < 8; i++)
		pd[i] = ((u64)i << 21) | 0x83;
	pd[0] |= 4; pdpt[0] |= 4; pml4[0] |= 4; /* the first 2 MiB (code, data) is user memory */
	pd[HOLE >> 21] = 0;
	fake_vmcs_set(VMCS_GUEST_CR0, CR0_PE | CR0_PG | CR0_WP | CR0_NE | CR0_ET);
	fake_vmcs_set(VMCS_GUEST_CR4, CR4_PAE | CR4_VMXE);
	fake_vmcs_set(VMCS_GUEST_CR3, PML4);
	fake_vmcs_set(VMCS_GUEST_IA32_EFER, EFER_LME | EFER_LMA);
	set_seg(1, 0, 0xffffffff, 0xa09b);
	set_seg(2, 0, 0xffffffff, 0xc093);
	set_seg(3, 0, 0xffffffff, 0xc093);
	set_seg(0, 0, 0xffffffff, 0xc093);
	fake_vmcs_set(VMCS_GUEST_RIP, CODE);
}

/* 32-bit protected mode without paging, flat segments but DS based at `ds_base`. */
static void mode32(u64 ds_base, u32 ds_limit)
{
	fake_vmcs_set(VMCS_GUEST_CR0, CR0_PE | CR0_NE | CR0_ET);
	fake_vmcs_set(VMCS_GUEST_CR4, CR4_VMXE);
	fake_vmcs_set(VMCS_GUEST_IA32_EFER, 0);
	set_seg(1, 0, 0xffffffff, 0xc09b);
	set_seg(2, 0, 0xffffffff, 0xc093);
	set_seg(3, ds_base, ds_limit, 0xc093);
	set_seg(0, 0, 0xffffffff, 0xc093);
	fake_vmcs_set(VMCS_GUEST_RIP, CODE);
}

/* Real mode: CS = CODE >> 4, IP 0; DS = DATA >> 4. */
static void mode16(void)
{
	fake_vmcs_set(VMCS_GUEST_CR0, CR0_NE | CR0_ET);
	fake_vmcs_set(VMCS_GUEST_CR4, CR4_VMXE);
	fake_vmcs_set(VMCS_GUEST_IA32_EFER, 0);
	set_seg(1, CODE, 0xffff, 0x9b);
	set_seg(2, 0, 0xffff, 0x93);
	set_seg(3, DATA, 0xffff, 0x93);
	set_seg(0, 0, 0xffff, 0x93);
	fake_vmcs_set(VMCS_GUEST_RIP, 0);
}

/* Runs the instruction `bytes` at CS:RIP through its descriptor-table exit. Returns the
 * injected vector, or -1 when none. */
static int run(unsigned reason, const u8 *bytes, unsigned len)
{
	u64 cs = fake_vmcs_get(VMCS_GUEST_CS_BASE), rip = fake_vmcs_get(VMCS_GUEST_RIP);
	memcpy(gp(cs + rip), bytes, len);
	fake_vmcs_set(VMCS_RO_EXIT_INSN_LEN, len);
	fake_vmcs_set(VMCS_CTRL_ENTRY_INTR_INFO, 0);
	struct percpu *c = this_cpu();
	if (reason == EXIT_REASON_GDTR_IDTR)
		exit_gdtr_idtr(c);
	else
		exit_ldtr_tr(c);
	u32 info = (u32)fake_vmcs_get(VMCS_CTRL_ENTRY_INTR_INFO);
	return (info & INTR_INFO_VALID) ? (int)(info & INTR_VECTOR_MASK) : -1;
}

#define DT(...) ({ static const u8 b_[] = { __VA_ARGS__ }; run(EXIT_REASON_GDTR_IDTR, b_, sizeof(b_)); })
#define LT(...) ({ static const u8 b_[] = { __VA_ARGS__ }; run(EXIT_REASON_LDTR_TR, b_, sizeof(b_)); })

/* A pseudo-descriptor at gpa: limit, then a base of `bsize` bytes. */
static void put_desc(u64 gpa, u16 limit, u64 base, unsigned bsize)
{
	memcpy(gp(gpa), &limit, 2);
	memcpy(gp(gpa + 2), &base, bsize);
}

static int setup(void **state)
{
	(void)state;
	fake_reset();
	fake_phys_init(0, RAM_SIZE + HV_SIZE);
	memset(gp(0), 0, RAM_SIZE);
	fake_machine_cpu(&cpu, &regs, 0, 3);
	fake_machine_cpu(&ap, &ap_regs, 1, 5);
	ap.wait_sipi = true; /* the shootdown skips it */
	fake_cpu_local_set(&cpu);
	memset(stat_counters, 0, sizeof(u64) * STAT_COUNT * TESSEL_MAX_CPUS);
	memset(&vmx_caps, 0, sizeof(vmx_caps));
	vmx_caps.phys_bits = PHYS_BITS;
	vmx_caps.cr0_fixed0 = CR0_PE | CR0_NE | CR0_PG;
	vmx_caps.cr0_fixed1 = 0xffffffffULL;
	vmx_caps.cr4_fixed0 = CR4_VMXE;
	vmx_caps.cr4_fixed1 = 0x1ffffffULL & ~CR4_LA57;
	vmx_caps.proc2 = (u64)(PROC2_ENABLE_EPT | PROC2_DESC_TABLE_EXITING | PROC2_UNRESTRICTED_GUEST) << 32;
	log_init(UART_COM1, CFG_LOG_DEBUG);
	pin_reset();

	fake_vmcs_set(VMCS_GUEST_RFLAGS, RFLAGS_FIXED);
	fake_vmcs_set(VMCS_CTRL_PROC_BASED2, PROC2_ENABLE_EPT | PROC2_UNRESTRICTED_GUEST);
	fake_vmcs_set(VMCS_CTRL_CR0_MASK, 0);
	fake_vmcs_set(VMCS_CTRL_CR4_MASK, 0);
	set_dt(IDT_BASE, IDT_LIMIT, GDT_BASE, GDT_LIMIT);
	mode64();

	assert_int_equal(fake_machine_spp(&machine, &mtrr, &ept, CFG_SPP_SW), 0);
	assert_int_equal(hcall(HC_EVENTS_SETUP, RING_GPA, 1, 0, 0), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	fake_cpu_local_set(NULL);
	fake_phys_fini();
	return 0;
}

static void expect_dt(u64 idt, u16 idtl, u64 gdt, u16 gdtl)
{
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_IDTR_BASE), idt);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_IDTR_LIMIT), idtl);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_GDTR_BASE), gdt);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_GDTR_LIMIT), gdtl);
}

/* ---- HC_PIN_DT: arguments, feature bit ---- */

static void test_unsupported(void **state)
{
	(void)state;
	vmx_caps.proc2 = (u64)(PROC2_ENABLE_EPT | PROC2_UNRESTRICTED_GUEST) << 32;
	struct hc_args a;
	assert_int_equal(hcall_out(HC_QUERY, 0, 0, 0, 0, &a), 0);
	assert_int_equal(a.out[0], 0x00010004);
	assert_false(a.out[1] & TESSEL_F_PIN_DT);
	assert_int_equal(hcall(HC_PIN_DT, PIN_DT_IDTR, 0, 0, 0), -EOPNOTSUPP);
	assert_int_equal(hcall(HC_PIN_DT, 0, 0, 0, 0), -EOPNOTSUPP);
	assert_false(fake_vmcs_get(VMCS_CTRL_PROC_BASED2) & PROC2_DESC_TABLE_EXITING);
	assert_int_equal(pin_dt_mask(), 0);
	vmx_caps.proc2 |= (u64)PROC2_DESC_TABLE_EXITING << 32;
	assert_int_equal(hcall_out(HC_QUERY, 0, 0, 0, 0, &a), 0);
	assert_true(a.out[1] & TESSEL_F_PIN_DT);
	assert_int_equal(TESSEL_F_PIN_DT, 1U << 7);
}

static void test_einval(void **state)
{
	(void)state;
	const struct { u64 a0, a1, a2, a3; } bad[] = {
		{ 0, 0, 0, 0 }, { 4, 0, 0, 0 }, { 7, 0, 0, 0 }, { 1ULL << 32 | 1, 0, 0, 0 }, { ~0ULL, 0, 0, 0 },
		{ 1, 1, 0, 0 }, { 2, 0, 1, 0 }, { 3, 0, 0, 1ULL << 63 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct hc_args a;
		assert_int_equal(hcall_out(HC_PIN_DT, bad[i].a0, bad[i].a1, bad[i].a2, bad[i].a3, &a), -EINVAL);
		assert_false(a.has_out);
	}
	/* The caller holds the reset value (base 0, limit FFFFH): nothing to pin. */
	set_dt(0, 0xffff, GDT_BASE, GDT_LIMIT);
	assert_int_equal(hcall(HC_PIN_DT, PIN_DT_IDTR | PIN_DT_GDTR, 0, 0, 0), -EINVAL);
	assert_int_equal(pin_dt_mask(), 0);
	assert_false(fake_vmcs_get(VMCS_CTRL_PROC_BASED2) & PROC2_DESC_TABLE_EXITING);
	assert_int_equal(ring_head(), 0);
}

/* ---- pin, allowed and refused reloads ---- */

static void test_pin_and_reload(void **state)
{
	(void)state;
	struct hc_args a;
	regs.gpr[GPR_CX] = 0x1234;
	assert_int_equal(hcall_out(HC_PIN_DT, PIN_DT_IDTR, 0, 0, 0, &a), 0);
	assert_int_equal(a.out[0], PIN_DT_IDTR);
	assert_true(fake_vmcs_get(VMCS_CTRL_PROC_BASED2) & PROC2_DESC_TABLE_EXITING);
	assert_int_equal(hcall_out(HC_PIN_DT, PIN_DT_GDTR, 0, 0, 0, &a), 0);
	assert_int_equal(a.out[0], PIN_DT_IDTR | PIN_DT_GDTR);
	assert_int_equal(hcall(HC_PIN_DT, PIN_DT_IDTR | PIN_DT_GDTR, 0, 0, 0), 0); /* again: same values */

	/* LIDT [rax] of the same value: loads (nothing to refuse), RIP moves. */
	regs.gpr[GPR_AX] = DATA;
	put_desc(DATA, IDT_LIMIT, IDT_BASE, 8);
	assert_int_equal(DT(0x0f, 0x01, 0x18), -1);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_RIP), CODE + 3);
	expect_dt(IDT_BASE, IDT_LIMIT, GDT_BASE, GDT_LIMIT);
	assert_int_equal(stat_of(STAT_PIN_DENIED), 0);

	/* LIDT of a forged table: ignored, no fault, RIP moves, counted, kind-5 event. */
	fake_vmcs_set(VMCS_GUEST_RIP, CODE);
	put_desc(DATA, 0xfff, 0xffff888000123000ULL, 8);
	assert_int_equal(DT(0x0f, 0x01, 0x18), -1);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_RIP), CODE + 3);
	expect_dt(IDT_BASE, IDT_LIMIT, GDT_BASE, GDT_LIMIT);
	assert_int_equal(stat_of(STAT_PIN_DENIED), 1);
	assert_int_equal(ring_head(), 1);
	struct ring_entry e = ring_entry(0);
	assert_int_equal(e.kind, TESSEL_EV_PIN);
	assert_int_equal(e.gpa, 0xffff888000123000ULL);
	assert_int_equal(e.gla, PIN_EV_DTR | PIN_DT_IDTR);
	assert_int_equal(e.gla, 0x200000001ULL);
	assert_int_equal(e.bytes, 0xfff);
	assert_int_equal(e.rip, CODE);
	assert_int_equal(e.vcpu, 3);

	/* Same base, other limit: refused too. LGDT [rip+disp32] of a forged GDT: refused. */
	fake_vmcs_set(VMCS_GUEST_RIP, CODE);
	put_desc(DATA, 0xffff, IDT_BASE, 8);
	assert_int_equal(DT(0x0f, 0x01, 0x18), -1);
	fake_vmcs_set(VMCS_GUEST_RIP, CODE);
	put_desc(DATA + 0x40, 0x1f, 0xffff888000200000ULL, 8);
	/* disp32 = DATA + 0x40 - (CODE + 7) */
	u32 disp = (u32)(DATA + 0x40 - (CODE + 7));
	u8 lgdt_rip[7] = { 0x0f, 0x01, 0x15 };
	memcpy(lgdt_rip + 3, &disp, 4);
	assert_int_equal(run(EXIT_REASON_GDTR_IDTR, lgdt_rip, 7), -1);
	expect_dt(IDT_BASE, IDT_LIMIT, GDT_BASE, GDT_LIMIT);
	assert_int_equal(stat_of(STAT_PIN_DENIED), 3);
	e = ring_entry(2);
	assert_int_equal(e.gla, PIN_EV_DTR | PIN_DT_GDTR);
	assert_int_equal(e.gpa, 0xffff888000200000ULL);
	assert_int_equal(e.bytes, 0x1f);

	/* LGDT [rip+disp32] of the pinned value: fine. */
	put_desc(DATA + 0x40, GDT_LIMIT, GDT_BASE, 8);
	fake_vmcs_set(VMCS_GUEST_RIP, CODE);
	assert_int_equal(run(EXIT_REASON_GDTR_IDTR, lgdt_rip, 7), -1);
	assert_int_equal(stat_of(STAT_PIN_DENIED), 3);

	/* Pinning again from a vCPU whose value differs: -EPERM, nothing changes. */
	set_dt(IDT_BASE + 0x1000, IDT_LIMIT, GDT_BASE, GDT_LIMIT);
	assert_int_equal(hcall(HC_PIN_DT, PIN_DT_IDTR, 0, 0, 0), -EPERM);
	assert_int_equal(cpu.dt_pin_base[0], IDT_BASE);
}

/* Without a pin, the loads go through whatever the value (and exiting is off anyway). */
static void test_unpinned_loads(void **state)
{
	(void)state;
	regs.gpr[GPR_AX] = DATA;
	put_desc(DATA, 0x7ff, 0xffff888000123000ULL, 8);
	assert_int_equal(DT(0x0f, 0x01, 0x18), -1);
	expect_dt(0xffff888000123000ULL, 0x7ff, GDT_BASE, GDT_LIMIT);
	assert_int_equal(stat_of(STAT_PIN_DENIED), 0);
}

/* ---- SGDT/SIDT and LGDT/LIDT in every mode ---- */

static void test_store_64(void **state)
{
	(void)state;
	regs.gpr[GPR_BX] = DATA + 0x100;
	memset(gp(DATA + 0x100), 0xcc, 16);
	assert_int_equal(DT(0x0f, 0x01, 0x0b), -1); /* SIDT [rbx] */
	u16 l;
	u64 b;
	memcpy(&l, gp(DATA + 0x100), 2);
	memcpy(&b, gp(DATA + 0x102), 8);
	assert_int_equal(l, IDT_LIMIT);
	assert_int_equal(b, IDT_BASE);
	assert_int_equal(*gp(DATA + 0x10a), 0xcc); /* 10 bytes, no more */
	fake_vmcs_set(VMCS_GUEST_RIP, CODE);
	/* SGDT [rbx+rcx*4+8], with a 66 prefix (ignored in 64-bit mode). */
	regs.gpr[GPR_CX] = 0x10;
	assert_int_equal(DT(0x66, 0x0f, 0x01, 0x44, 0x8b, 0x08), -1);
	memcpy(&l, gp(DATA + 0x148), 2);
	memcpy(&b, gp(DATA + 0x14a), 8);
	assert_int_equal(l, GDT_LIMIT);
	assert_int_equal(b, GDT_BASE);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_RIP), CODE + 6);
	/* At CPL 3 (no UMIP): a user store: to user memory it lands, to supervisor memory #PF
	 * with U|W|P. */
	fake_vmcs_set(VMCS_GUEST_RIP, CODE);
	fake_vmcs_set(VMCS_GUEST_SS_AR, 0xc0f3);
	fake_vmcs_set(VMCS_GUEST_CS_AR, 0xa0fb);
	regs.gpr[GPR_BX] = DATA + 0x200;
	assert_int_equal(DT(0x0f, 0x01, 0x0b), -1);
	memcpy(&b, gp(DATA + 0x202), 8);
	assert_int_equal(b, IDT_BASE);
	fake_vmcs_set(VMCS_GUEST_RIP, CODE);
	regs.gpr[GPR_BX] = MiB(4);
	fake_vmcs_set(VMCS_GUEST_SS_AR, 0xc0f3);
	fake_vmcs_set(VMCS_GUEST_CS_AR, 0xa0fb);
	assert_int_equal(DT(0x0f, 0x01, 0x0b), VEC_PF);
	assert_int_equal(fake_vmcs_get(VMCS_CTRL_ENTRY_EXC_ERROR_CODE), PFEC_P | PFEC_W | PFEC_U);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_RIP), CODE);
	/* ... and LIDT at CPL 3: #GP(0). */
	assert_int_equal(DT(0x0f, 0x01, 0x18), VEC_GP);
}

static void test_faults_64(void **state)
{
	(void)state;
	/* An operand on a not-present page: #PF with CR2, nothing loaded, RIP stays. */
	regs.gpr[GPR_AX] = HOLE + 0x10;
	assert_int_equal(DT(0x0f, 0x01, 0x18), VEC_PF);
	assert_int_equal(fake_cr_get(FAKE_CR2), HOLE + 0x10);
	assert_int_equal(fake_vmcs_get(VMCS_CTRL_ENTRY_EXC_ERROR_CODE), 0);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_RIP), CODE);
	assert_int_equal(DT(0x0f, 0x01, 0x0b), -1); /* SIDT [rbx] with rbx = 0: mapped: fine */
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_RIP), CODE + 3);
	/* A non-canonical operand address: #GP(0); with RSP as base: #SS(0). */
	fake_vmcs_set(VMCS_GUEST_RIP, CODE);
	regs.gpr[GPR_AX] = 0x0000800000000000ULL;
	assert_int_equal(DT(0x0f, 0x01, 0x18), VEC_GP);
	fake_vmcs_set(VMCS_GUEST_RSP, 0x0000800000000000ULL);
	assert_int_equal(DT(0x0f, 0x01, 0x1c, 0x24), VEC_SS); /* LIDT [rsp] */
	/* A non-canonical base: #GP(0), nothing loaded. */
	regs.gpr[GPR_AX] = DATA;
	put_desc(DATA, 0xfff, 0x0000800000000000ULL, 8);
	assert_int_equal(DT(0x0f, 0x01, 0x18), VEC_GP);
	expect_dt(IDT_BASE, IDT_LIMIT, GDT_BASE, GDT_LIMIT);
	/* A register operand is not one of these instructions any more (#UD came first on the
	 * processor): nothing happens, the guest runs what is at RIP. */
	assert_int_equal(DT(0x0f, 0x01, 0xd8), -1);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_RIP), CODE);
}

/* The SGDT store obeys sub-page protection: a protected sub-page keeps its bytes, counted
 * and reported as DENIED; the writable part lands. */
static void test_store_spp(void **state)
{
	(void)state;
	u64 page = DATA + 0x1000;
	u32 map = ~1U; /* sub-page 0 (bytes 0-127) protected */
	memcpy(gp(STATS_GPA), &map, 4);
	assert_int_equal(hcall(HC_SPP_SET, page >> 12, 1, STATS_GPA, 0), 0);
	memset(gp(page), 0xaa, 256);
	regs.gpr[GPR_AX] = page + 124; /* 4 bytes protected, 6 writable */
	assert_int_equal(DT(0x0f, 0x01, 0x00), -1); /* SGDT [rax] */
	for (unsigned i = 124; i < 128; i++)
		assert_int_equal(*gp(page + i), 0xaa);
	u64 b = 0;
	memcpy(&b, gp(page + 128), 6);
	assert_int_equal(b, GDT_BASE >> 16 & 0xffffffffffffULL);
	assert_int_equal(stat_of(STAT_SPP_DENIED), 1);
	struct ring_entry e = ring_entry(0);
	assert_int_equal(e.kind, TESSEL_EV_DENIED);
	assert_int_equal(e.gpa, page + 124);
	assert_int_equal(e.bytes, 4);
}

static void test_modes_32_16(void **state)
{
	(void)state;
	/* Pinned in 64-bit mode; the vCPU then runs 32-bit code (a test of the emulation). */
	mode32(0x100000, 0xfffff);
	set_dt(0x00c01000, 0x7ff, 0x00c02000, 0x3f);
	assert_int_equal(hcall(HC_PIN_DT, PIN_DT_IDTR | PIN_DT_GDTR, 0, 0, 0), 0);
	/* SIDT [eax]: 6 bytes, DS-based. */
	regs.gpr[GPR_AX] = DATA;
	memset(gp(0x100000 + DATA), 0xcc, 8);
	assert_int_equal(DT(0x0f, 0x01, 0x08), -1);
	u16 l;
	u32 b;
	memcpy(&l, gp(0x100000 + DATA), 2);
	memcpy(&b, gp(0x100000 + DATA + 2), 4);
	assert_int_equal(l, 0x7ff);
	assert_int_equal(b, 0x00c01000);
	assert_int_equal(*gp(0x100000 + DATA + 6), 0xcc);
	/* SGDT with a 16-bit operand size stores the full 32-bit base too. */
	fake_vmcs_set(VMCS_GUEST_RIP, CODE);
	assert_int_equal(DT(0x66, 0x0f, 0x01, 0x00), -1);
	memcpy(&b, gp(0x100000 + DATA + 2), 4);
	assert_int_equal(b, 0x00c02000);
	/* A segment-limit violation: #GP(0). */
	fake_vmcs_set(VMCS_GUEST_RIP, CODE);
	regs.gpr[GPR_AX] = 0xffffc;
	assert_int_equal(DT(0x0f, 0x01, 0x08), VEC_GP);
	/* LIDT with a 16-bit operand size: 24 bits of base; 0x12c01000 loads as 0x00c01000,
	 * the pinned value. */
	fake_vmcs_set(VMCS_GUEST_RIP, CODE);
	regs.gpr[GPR_AX] = DATA;
	put_desc(0x100000 + DATA, 0x7ff, 0x12c01000, 4);
	assert_int_equal(DT(0x66, 0x0f, 0x01, 0x18), -1);
	assert_int_equal(stat_of(STAT_PIN_DENIED), 0);
	/* With a 32-bit operand size, the same bytes are a forged table: refused. */
	fake_vmcs_set(VMCS_GUEST_RIP, CODE);
	assert_int_equal(DT(0x0f, 0x01, 0x18), -1);
	assert_int_equal(stat_of(STAT_PIN_DENIED), 1);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_IDTR_BASE), 0x00c01000);

	/* Real mode: LIDT [bx+si] with a 32-bit operand size (66), DS-based; SIDT [bx]. */
	mode16();
	regs.gpr[GPR_BX] = 0x10;
	regs.gpr[GPR_SI] = 0x20;
	put_desc(DATA + 0x30, 0x7ff, 0x00c01000, 4);
	assert_int_equal(DT(0x66, 0x0f, 0x01, 0x18), -1);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_RIP), 4);
	assert_int_equal(stat_of(STAT_PIN_DENIED), 1);
	fake_vmcs_set(VMCS_GUEST_RIP, 0);
	put_desc(DATA + 0x30, 0x3ff, 0, 4); /* the real-mode IVT: refused while armed */
	assert_int_equal(DT(0x66, 0x0f, 0x01, 0x18), -1);
	assert_int_equal(stat_of(STAT_PIN_DENIED), 2);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_IDTR_BASE), 0x00c01000);
	fake_vmcs_set(VMCS_GUEST_RIP, 0);
	memset(gp(DATA + 0x10), 0xcc, 8);
	assert_int_equal(DT(0x0f, 0x01, 0x0f), -1); /* SIDT [bx] */
	memcpy(&l, gp(DATA + 0x10), 2);
	memcpy(&b, gp(DATA + 0x12), 4);
	assert_int_equal(l, 0x7ff);
	assert_int_equal(b, 0x00c01000);
	assert_int_equal(*gp(DATA + 0x16), 0xcc);
	/* Past the 64 KiB real-mode limit: #GP. */
	fake_vmcs_set(VMCS_GUEST_RIP, 0);
	regs.gpr[GPR_BX] = 0xfffc;
	assert_int_equal(DT(0x0f, 0x01, 0x0f), VEC_GP);
}

/* ---- other vCPUs, INIT and re-arming ---- */

static void test_other_vcpu_and_init(void **state)
{
	(void)state;
	/* The AP is running (not waiting for SIPI): the pin reaches it through the shootdown's
	 * NMI (spp/flush.c spp_flush_nmi -> pin_sync), which takes its own value. */
	assert_int_equal(hcall(HC_PIN_DT, PIN_DT_IDTR | PIN_DT_GDTR, 0, 0, 0), 0);
	fake_cpu_local_set(&ap);
	set_dt(IDT_BASE, IDT_LIMIT, GDT_BASE + 0x10000, GDT_LIMIT); /* its own GDT */
	fake_vmcs_set(VMCS_CTRL_PROC_BASED2, PROC2_ENABLE_EPT);
	pin_sync(&ap);
	assert_true(fake_vmcs_get(VMCS_CTRL_PROC_BASED2) & PROC2_DESC_TABLE_EXITING);
	assert_int_equal(ap.dt_pin_armed, 3);
	assert_int_equal(ap.dt_pin_base[1], GDT_BASE + 0x10000);
	/* The BSP's GDT is not the AP's: refused there. */
	mode64();
	ap_regs.gpr[GPR_AX] = DATA;
	put_desc(DATA, GDT_LIMIT, GDT_BASE, 8);
	assert_int_equal(DT(0x0f, 0x01, 0x10), -1);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_GDTR_BASE), GDT_BASE + 0x10000);
	assert_int_equal(stat_of(STAT_PIN_DENIED), 1);
	assert_int_equal(ring_entry(0).vcpu, 5);

	/* INIT and SIPI: the AP starts in real mode with the reset values, disarmed. */
	fake_msr_set(MSR_IA32_APIC_BASE, 0xfee00000ULL);
	ap.vinit_pending = true;
	ap.vsipi_vector = 0x9a;
	vapic_check_init(&ap);
	assert_int_equal(ap.dt_pin_armed, 0);
	assert_int_equal(ap.dt_pin_have, 3);
	expect_dt(0, 0xffff, 0, 0xffff);
	assert_true(fake_vmcs_get(VMCS_CTRL_PROC_BASED2) & PROC2_DESC_TABLE_EXITING);
	/* The bring-up loads a trampoline GDT and an empty IDT: allowed (disarmed). */
	mode16();
	ap_regs.gpr[GPR_BX] = 0;
	ap_regs.gpr[GPR_SI] = 0;
	put_desc(DATA, 0x17, 0x9a100, 4);
	assert_int_equal(DT(0x66, 0x0f, 0x01, 0x10), -1);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_GDTR_BASE), 0x9a100);
	fake_vmcs_set(VMCS_GUEST_RIP, 0);
	put_desc(DATA, 0, 0, 4);
	assert_int_equal(DT(0x66, 0x0f, 0x01, 0x18), -1);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_IDTR_LIMIT), 0);
	assert_int_equal(stat_of(STAT_PIN_DENIED), 1);
	/* In 64-bit mode it loads its pinned IDTR: re-armed; then a forged one is refused. */
	mode64();
	ap_regs.gpr[GPR_AX] = DATA; /* INIT cleared the registers */
	put_desc(DATA, IDT_LIMIT, IDT_BASE, 8);
	assert_int_equal(DT(0x0f, 0x01, 0x18), -1);
	assert_int_equal(ap.dt_pin_armed, PIN_DT_IDTR);
	fake_vmcs_set(VMCS_GUEST_RIP, CODE);
	put_desc(DATA, IDT_LIMIT, 0xffff888000123000ULL, 8);
	assert_int_equal(DT(0x0f, 0x01, 0x18), -1);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_IDTR_BASE), IDT_BASE);
	assert_int_equal(stat_of(STAT_PIN_DENIED), 2);
	/* GDTR still disarmed: the vCPU's direct GDT loads, then its pinned one re-arms it. */
	fake_vmcs_set(VMCS_GUEST_RIP, CODE);
	put_desc(DATA, GDT_LIMIT, 0xffff888000300000ULL, 8);
	assert_int_equal(DT(0x0f, 0x01, 0x10), -1);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_GDTR_BASE), 0xffff888000300000ULL);
	fake_vmcs_set(VMCS_GUEST_RIP, CODE);
	put_desc(DATA, GDT_LIMIT, GDT_BASE + 0x10000, 8);
	assert_int_equal(DT(0x0f, 0x01, 0x10), -1);
	assert_int_equal(ap.dt_pin_armed, 3);
	fake_vmcs_set(VMCS_GUEST_RIP, CODE);
	put_desc(DATA, GDT_LIMIT, 0xffff888000300000ULL, 8);
	assert_int_equal(DT(0x0f, 0x01, 0x10), -1);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_GDTR_BASE), GDT_BASE + 0x10000);
	assert_int_equal(stat_of(STAT_PIN_DENIED), 3);
	fake_cpu_local_set(&cpu);
}

/* A vCPU that was waiting for its SIPI when the pin was made gets no value (its registers
 * hold the reset values): it stays unarmed until it calls HC_PIN_DT itself. */
static void test_waiting_vcpu(void **state)
{
	(void)state;
	assert_int_equal(hcall(HC_PIN_DT, PIN_DT_IDTR, 0, 0, 0), 0);
	fake_cpu_local_set(&ap);
	fake_msr_set(MSR_IA32_APIC_BASE, 0xfee00000ULL);
	ap.vinit_pending = true;
	ap.vsipi_vector = 0x9a;
	vapic_check_init(&ap); /* syncs the pins before entering (pin_sync) */
	assert_int_equal(ap.dt_pin_seen, PIN_DT_IDTR);
	assert_int_equal(ap.dt_pin_have, 0);
	mode64();
	ap_regs.gpr[GPR_AX] = DATA;
	put_desc(DATA, 0xfff, 0xffff888000123000ULL, 8);
	assert_int_equal(DT(0x0f, 0x01, 0x18), -1);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_IDTR_BASE), 0xffff888000123000ULL);
	assert_int_equal(hcall(HC_PIN_DT, PIN_DT_IDTR, 0, 0, 0), 0);
	assert_int_equal(ap.dt_pin_armed, PIN_DT_IDTR);
	fake_vmcs_set(VMCS_GUEST_RIP, CODE);
	put_desc(DATA, 0xfff, IDT_BASE, 8);
	assert_int_equal(DT(0x0f, 0x01, 0x18), -1);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_IDTR_BASE), 0xffff888000123000ULL);
	assert_int_equal(stat_of(STAT_PIN_DENIED), 1);
	fake_cpu_local_set(&cpu);
}

/*
 * An AP parked on other tables (the firmware's loop; Linux's early park with maxcpus=) when
 * the pin was made:
 * it got the firmware's values. The OS brings it up with INIT-SIPI and its own tables, which
 * never match: without more it would stay disarmed for good. Its own HC_PIN_DT after the
 * INIT (Linux's CPU-online hook) pins its current tables and arms them; on an armed vCPU a
 * different value is still -EPERM. (A Linux boot with maxcpus=1 showed this: docs/SECURITY.md.)
 */
static void test_parked_vcpu_pinned_again(void **state)
{
	(void)state;
	const u64 fw_idt = 0x7f000000ULL, fw_gdt = 0x7f001000ULL, os_idt = 0xffff888000420000ULL;
	assert_int_equal(hcall(HC_PIN_DT, PIN_DT_IDTR | PIN_DT_GDTR, 0, 0, 0), 0);
	fake_cpu_local_set(&ap);
	set_dt(fw_idt, 0xfff, fw_gdt, 0x47); /* the firmware's tables */
	fake_vmcs_set(VMCS_CTRL_PROC_BASED2, PROC2_ENABLE_EPT);
	pin_sync(&ap);
	assert_int_equal(ap.dt_pin_armed, 3);
	assert_int_equal(ap.dt_pin_base[0], fw_idt);
	/* The OS starts it: INIT disarms; in 64-bit mode it loads its own IDT (allowed). */
	fake_msr_set(MSR_IA32_APIC_BASE, 0xfee00000ULL);
	ap.vinit_pending = true;
	ap.vsipi_vector = 0x9a;
	vapic_check_init(&ap);
	assert_int_equal(ap.dt_pin_armed, 0);
	mode64();
	set_dt(os_idt, 0xfff, GDT_BASE + 0x20000, GDT_LIMIT);
	/* Its CPU-online call pins what it holds now. */
	assert_int_equal(hcall(HC_PIN_DT, PIN_DT_IDTR | PIN_DT_GDTR, 0, 0, 0), 0);
	assert_int_equal(ap.dt_pin_armed, 3);
	assert_int_equal(ap.dt_pin_base[0], os_idt);
	assert_int_equal(ap.dt_pin_base[1], GDT_BASE + 0x20000);
	/* A forged IDT is refused now, and so is the firmware's old one. */
	ap_regs.gpr[GPR_AX] = DATA;
	put_desc(DATA, 0xfff, 0xffff888000123000ULL, 8);
	assert_int_equal(DT(0x0f, 0x01, 0x18), -1);
	fake_vmcs_set(VMCS_GUEST_RIP, CODE);
	put_desc(DATA, 0xfff, fw_idt, 8);
	assert_int_equal(DT(0x0f, 0x01, 0x18), -1);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_IDTR_BASE), os_idt);
	assert_int_equal(stat_of(STAT_PIN_DENIED), 2);
	/* Armed: a call holding another value (not reachable by a load) is -EPERM, nothing changes. */
	set_dt(fw_idt, 0xfff, GDT_BASE + 0x20000, GDT_LIMIT);
	assert_int_equal(hcall(HC_PIN_DT, PIN_DT_IDTR, 0, 0, 0), -EPERM);
	assert_int_equal(ap.dt_pin_base[0], os_idt);
	fake_cpu_local_set(&cpu);
}

/* ---- LLDT, LTR, SLDT, STR (exit 47, on with the same control) ---- */

static void test_ldtr_tr(void **state)
{
	(void)state;
	/* A GDT at 1 MiB (identity mapped): an LDT descriptor at 0x30 and a TSS at 0x40, both
	 * 16-byte system descriptors in IA-32e mode. */
	u64 gdt = 0x100000;
	set_dt(IDT_BASE, IDT_LIMIT, gdt, 0x7f);
	u64 ldt_lo = 0x0000820000000000ULL | 0xffff | (0x5000ULL << 16) | (0x12ULL << 56);
	u64 tss_lo = 0x0000890000000000ULL | 0x67 | (0x6000ULL << 16);
	memcpy(gp(gdt + 0x30), &ldt_lo, 8);
	u64 hi = 0xffffffffULL;
	memcpy(gp(gdt + 0x38), &hi, 8);
	memcpy(gp(gdt + 0x40), &tss_lo, 8);
	memcpy(gp(gdt + 0x48), &hi, 8);
	regs.gpr[GPR_AX] = 0x30;
	assert_int_equal(LT(0x0f, 0x00, 0xd0), -1); /* LLDT ax */
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_LDTR_SEL), 0x30);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_LDTR_BASE), 0xffffffff12005000ULL);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_LDTR_LIMIT), 0xffff);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_LDTR_AR), 0x82);
	fake_vmcs_set(VMCS_GUEST_RIP, CODE);
	regs.gpr[GPR_AX] = 0;
	assert_int_equal(LT(0x0f, 0x00, 0xd0), -1); /* LLDT of a null selector: unusable */
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_LDTR_AR), SEG_AR_UNUSABLE);
	fake_vmcs_set(VMCS_GUEST_RIP, CODE);
	regs.gpr[GPR_AX] = 0x40;
	assert_int_equal(LT(0x0f, 0x00, 0xd0), VEC_GP); /* a TSS is not an LDT: #GP(sel) */
	assert_int_equal(fake_vmcs_get(VMCS_CTRL_ENTRY_EXC_ERROR_CODE), 0x40);
	assert_int_equal(LT(0x0f, 0x00, 0xd8), -1); /* LTR ax: loads and marks busy */
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_TR_SEL), 0x40);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_TR_BASE), 0xffffffff00006000ULL);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_TR_AR), 0x8b);
	assert_int_equal(*gp(gdt + 0x45), 0x8b);
	fake_vmcs_set(VMCS_GUEST_RIP, CODE);
	assert_int_equal(LT(0x0f, 0x00, 0xd8), VEC_GP); /* busy now */
	regs.gpr[GPR_AX] = 0x80;
	assert_int_equal(LT(0x0f, 0x00, 0xd8), VEC_GP); /* beyond the GDT limit */
	/* STR [rbx] and SLDT ecx (zero-extends); SLDT cx keeps the upper bits. */
	regs.gpr[GPR_BX] = DATA;
	assert_int_equal(LT(0x0f, 0x00, 0x0b), -1);
	assert_int_equal(*(u16 *)gp(DATA), 0x40);
	fake_vmcs_set(VMCS_GUEST_RIP, CODE);
	fake_vmcs_set(VMCS_GUEST_LDTR_SEL, 0x30);
	regs.gpr[GPR_CX] = ~0ULL;
	assert_int_equal(LT(0x0f, 0x00, 0xc1), -1);
	assert_int_equal(regs.gpr[GPR_CX], 0x30);
	fake_vmcs_set(VMCS_GUEST_RIP, CODE);
	regs.gpr[GPR_CX] = ~0ULL;
	assert_int_equal(LT(0x66, 0x0f, 0x00, 0xc1), -1);
	assert_int_equal(regs.gpr[GPR_CX], 0xffffffffffff0030ULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_unsupported, setup, teardown),
		cmocka_unit_test_setup_teardown(test_einval, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pin_and_reload, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unpinned_loads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_64, setup, teardown),
		cmocka_unit_test_setup_teardown(test_faults_64, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_spp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_modes_32_16, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_vcpu_and_init, setup, teardown),
		cmocka_unit_test_setup_teardown(test_waiting_vcpu, setup, teardown),
cmocka_unit_test_setup_teardown(test_parked_vcpu_pinned_again, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ldtr_tr, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
