/*
 * Host tests of byte-precise protection (ABI 1.4, HC_SPP_PROTECT_BYTES; spp/bytes.c and the
 * violation path in spp/violation.c), against the fake hardware layer: guest RAM from 0,
 * the hypervisor's region above it, one CPU, a 32-bit flat CPL-0 guest. Run in software
 * mode and in hardware mode (the same violation path: an SPP-denied write is an EPT
 * violation). Each test plays the processor's part for a store to a protected sub-page and
 * checks what the guest sees: memory, RIP, the event ring, HC_SPP_GET's maps, statuses.
 *
 *  - the bytes asked are protected, the other bytes of their sub-pages land (emulated),
 *    and a store over both lands its unprotected bytes and reports the first protected one;
 *  - argument errors, locked pages, a full table: an error and nothing changed;
 *  - protection that was there before (whole sub-pages) is never weakened;
 *  - HC_SPP_SET on a page leaves byte mode (protected sub-pages whole again);
 *  - TRACK pages: protected bytes land and are reported, the others land silently;
 *  - a range across two pages is all-or-nothing.
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
#define RAM_SIZE MiB(48)
#define HV_BASE RAM_SIZE
#define HV_SIZE MiB(16)
#define PHYS_BITS 36

#define CODE_GPA 0x1000ULL
#define MAP_GPA MiB(1)
#define RING_GPA MiB(2)
#define PAGE_GPA MiB(8) /* the page with guarded bytes; MiB(8) + 4 KiB: the next one */
#define PAGE_GFN (PAGE_GPA >> PAGE_SHIFT)

static struct mtrr_state mtrr;
static struct ept ept;
static struct percpu cpu;
static struct guest_regs regs;
static jmp_buf halted;

static const struct tessel_mem_range fw_map[] = {
	{ 0, RAM_SIZE >> PAGE_SHIFT, EFI_MT_CONVENTIONAL, 0 },
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

static s64 protect_bytes(u64 gpa, u64 len) { return hcall(HC_SPP_PROTECT_BYTES, gpa, len, 0, 0); }

static u32 map_of(u64 gfn)
{
	*u32_at(MAP_GPA) = 0x12345678;
	assert_int_equal(hcall(HC_SPP_GET, gfn, 1, MAP_GPA, 0), 0);
	return *u32_at(MAP_GPA);
}

static s64 set_map(u64 gfn, u32 map, u64 flags)
{
	*u32_at(MAP_GPA) = map;
	return hcall(HC_SPP_SET, gfn, 1, MAP_GPA, flags);
}

struct __attribute__((packed)) ring_entry { u64 gpa, rip, gla; u32 vcpu; u16 kind, bytes; };
static u32 ring_head(void) { return *u32_at(RING_GPA); }
static struct ring_entry ring_entry(u32 k)
{
	struct ring_entry e;
	memcpy(&e, gp(RING_GPA + 64 + (u64)k * 32), sizeof(e));
	return e;
}

static void on_halt(void) { longjmp(halted, 1); }

static int setup_mode(int cfg_spp)
{
	fake_reset();
	fake_phys_init(0, RAM_SIZE + HV_SIZE);
	memset(gp(0), 0, RAM_SIZE);
	fake_machine_cpu(&cpu, &regs, 0, 2);
	fake_cpu_local_set(&cpu);
	fake_set_halt_hook(on_halt);
	memset(stat_counters, 0, sizeof(u64) * STAT_COUNT * TESSEL_MAX_CPUS);
	memset(&vmx_caps, 0, sizeof(vmx_caps));
	vmx_caps.phys_bits = PHYS_BITS;
	if (cfg_spp == CFG_SPP_HW)
		vmx_caps.proc2 = (u64)PROC2_SUBPAGE_WRITE_PERM << 32;
	log_init(UART_COM1, CFG_LOG_DEBUG);

	fake_vmcs_set(VMCS_GUEST_CR0, CR0_PE | CR0_NE | CR0_ET);
	fake_vmcs_set(VMCS_GUEST_CS_AR, 0xc09b);
	fake_vmcs_set(VMCS_GUEST_SS_AR, 0xc093);
	fake_vmcs_set(VMCS_GUEST_RIP, CODE_GPA);
	fake_vmcs_set(VMCS_GUEST_RSP, 0x8000);
	fake_vmcs_set(VMCS_GUEST_RFLAGS, RFLAGS_FIXED);
	fake_vmcs_set(VMCS_RO_IDT_VECTORING_INFO, 0);

	assert_int_equal(fake_machine_spp(&machine, &mtrr, &ept, cfg_spp), 0);
	assert_int_equal(spp.mode, cfg_spp == CFG_SPP_HW ? SPP_MODE_HW : SPP_MODE_SW);
	assert_int_equal(hcall(HC_EVENTS_SETUP, RING_GPA, 1, 0, 0), 0);
	return 0;
}

static int setup_sw(void **s) { (void)s; return setup_mode(CFG_SPP_SW); }
static int setup_hw(void **s) { (void)s; return setup_mode(CFG_SPP_HW); }

static int teardown(void **state)
{
	(void)state;
	fake_set_halt_hook(NULL);
	fake_cpu_local_set(NULL);
	fake_phys_fini();
	return 0;
}

/*
 * The guest runs `MOV [EBX], EAX` (or with `wide` = false `MOV [EBX], AL`) storing v at gpa,
 * and the write exits as a write to a protected sub-page does (the EPT leaf of the page has
 * no write access in software mode; hardware SPP denied it in hardware mode).
 */
static void guest_store(u64 gpa, u32 v, bool wide)
{
	memcpy(gp(CODE_GPA), wide ? "\x89\x03" : "\x88\x03", 2);
	fake_vmcs_set(VMCS_GUEST_RIP, CODE_GPA);
	regs.gpr[GPR_BX] = gpa;
	regs.gpr[GPR_AX] = v;
	fake_vmcs_set(VMCS_RO_EXIT_REASON, EXIT_REASON_EPT_VIOLATION);
	fake_vmcs_set(VMCS_RO_EXIT_QUALIFICATION,
		      EPT_QUAL_WRITE | EPT_QUAL_READABLE | EPT_QUAL_GLA_VALID | EPT_QUAL_GLA_XLATE);
	fake_vmcs_set(VMCS_RO_GUEST_PHYS_ADDR, gpa);
	fake_vmcs_set(VMCS_RO_GUEST_LINEAR_ADDR, gpa);
	fake_vmcs_set(VMCS_CTRL_ENTRY_INTR_INFO, 0);
	assert_int_equal(setjmp(halted), 0);
	vmx_handle_exit(&regs, EXIT_REASON_EPT_VIOLATION);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_RIP), CODE_GPA + 2); /* the store completed */
}

/* Bytes 0x105-0x107 of the page guarded: the rest of sub-page 2 (0x100-0x17f) stays
 * writable, only sub-page 2 is write-protected in the store. */
static void test_neighbours_land(void **state)
{
	(void)state;
	assert_int_equal(protect_bytes(PAGE_GPA + 0x105, 3), 0);
	assert_int_equal(map_of(PAGE_GFN), ~(1U << 2));

	guest_store(PAGE_GPA + 0x100, 0x44332211, true); /* 0x100-0x103: no guarded byte */
	assert_int_equal(*u32_at(PAGE_GPA + 0x100), 0x44332211);
	assert_int_equal(ring_head(), 0);

	guest_store(PAGE_GPA + 0x104, 0xddccbbaa, true); /* 0x104 lands, 0x105-0x107 kept */
	assert_int_equal(*u32_at(PAGE_GPA + 0x104), 0x000000aa);
	assert_int_equal(ring_head(), 1);
	struct ring_entry e = ring_entry(0);
	assert_int_equal(e.kind, TESSEL_EV_DENIED);
	assert_int_equal(e.gpa, PAGE_GPA + 0x105);
	assert_int_equal(e.bytes, 3);
	assert_int_equal(e.vcpu, 2);

	guest_store(PAGE_GPA + 0x107, 0x55, false); /* the last guarded byte */
	assert_int_equal(gp(PAGE_GPA)[0x107], 0);
	assert_int_equal(ring_head(), 2);
	assert_int_equal(ring_entry(1).gpa, PAGE_GPA + 0x107);
	assert_int_equal(ring_entry(1).bytes, 1);

	guest_store(PAGE_GPA + 0x108, 0x66, false); /* right after: lands */
	guest_store(PAGE_GPA + 0x17f, 0x77, false); /* end of the sub-page: lands */
	assert_int_equal(gp(PAGE_GPA)[0x108], 0x66);
	assert_int_equal(gp(PAGE_GPA)[0x17f], 0x77);
	assert_int_equal(ring_head(), 2);

	/* More bytes of the same page, in another sub-page: added to the page's mask. */
	assert_int_equal(protect_bytes(PAGE_GPA + 0x300, 1), 0);
	assert_int_equal(map_of(PAGE_GFN), ~((1U << 2) | (1U << 6)));
	guest_store(PAGE_GPA + 0x300, 0x12345678, true);
	assert_int_equal(*u32_at(PAGE_GPA + 0x300), 0x12345600);
	guest_store(PAGE_GPA + 0x106, 0x99, false); /* the first range still holds */
	assert_int_equal(gp(PAGE_GPA)[0x106], 0);
	assert_int_equal(ring_head(), 4);
}

static void test_errors_change_nothing(void **state)
{
	(void)state;
	assert_int_equal(protect_bytes(PAGE_GPA, 0), -EINVAL);
	assert_int_equal(protect_bytes(PAGE_GPA, TESSEL_MAX_PROTECT_BYTES + 1), -EINVAL);
	assert_int_equal(protect_bytes(~0ULL - 4, 16), -EINVAL);           /* wraps */
	assert_int_equal(hcall(HC_SPP_PROTECT_BYTES, PAGE_GPA, 8, 1, 0), -EINVAL); /* RDX */
	assert_int_equal(hcall(HC_SPP_PROTECT_BYTES, PAGE_GPA, 8, 0, 1), -EINVAL); /* RSI */
	assert_int_equal(protect_bytes(HV_BASE + 0x100, 8), -EINVAL);     /* the hypervisor */
	assert_int_equal(protect_bytes(RAM_SIZE - 4, 8), -EINVAL);        /* runs past RAM */
	assert_int_equal(protect_bytes(0xfec00000ULL, 4), -EINVAL);       /* not RAM */
	assert_int_equal(map_of(PAGE_GFN), SPP_MAP_ALL);
	assert_int_equal(map_of((RAM_SIZE >> PAGE_SHIFT) - 1), SPP_MAP_ALL);
	assert_int_equal(spp.bytes.n, 0);
	/* The largest range is accepted. */
	assert_int_equal(protect_bytes(PAGE_GPA + 0x10, TESSEL_MAX_PROTECT_BYTES), 0);
	assert_int_equal(map_of(PAGE_GFN), 0);
	assert_int_equal(map_of(PAGE_GFN + 16), ~0x1U); /* 0x10 bytes into page 16 */
	/* Not a guest page at CPL 3: the dispatcher's -EPERM. */
	struct hc_args a = { .nr = HC_SPP_PROTECT_BYTES, .arg = { PAGE_GPA + 0x2000 * 16, 1, 0, 0 } };
	assert_int_equal(hypercall_dispatch(&cpu, &a, 3), -EPERM);
}

static void test_no_spp(void **state)
{
	(void)state;
	spp.mode = SPP_MODE_NONE;
	assert_int_equal(protect_bytes(PAGE_GPA, 8), -ENODEV);
	spp.mode = SPP_MODE_SW;
	assert_int_equal(spp.bytes.n, 0);
}

/* Locked pages: -EPERM, on either page of a range, and the other page is not changed. */
static void test_locked(void **state)
{
	(void)state;
	assert_int_equal(protect_bytes(PAGE_GPA + 0x105, 3), 0);
	assert_int_equal(hcall(HC_SPP_LOCK, PAGE_GFN, 1, 0, 0), 0);
	assert_int_equal(protect_bytes(PAGE_GPA + 0x400, 3), -EPERM);
	assert_int_equal(map_of(PAGE_GFN), ~(1U << 2));
	assert_int_equal(set_map(PAGE_GFN, SPP_MAP_ALL, 0), -EPERM);
	/* A range over page+1 (unlocked) and page (locked): nothing happens to page+1 either. */
	assert_int_equal(protect_bytes(PAGE_GPA - 8, 16), -EPERM);
	assert_int_equal(map_of(PAGE_GFN - 1), SPP_MAP_ALL);
	assert_int_equal(spp.bytes.n, 1);
	/* Locked, the neighbours still land and the guarded bytes still hold. */
	guest_store(PAGE_GPA + 0x100, 0x01020304, true);
	assert_int_equal(*u32_at(PAGE_GPA + 0x100), 0x01020304);
	guest_store(PAGE_GPA + 0x104, 0xffffffff, true);
	assert_int_equal(*u32_at(PAGE_GPA + 0x104), 0x000000ff);
}

/* Whole sub-pages protected before stay whole; SET puts a byte-mode page back to whole
 * sub-pages (and setting it unprotected drops it from the table). */
static void test_whole_subpages_and_set(void **state)
{
	(void)state;
	assert_int_equal(set_map(PAGE_GFN, ~(1U << 3), 0), 0);          /* 0x180-0x1ff whole */
	assert_int_equal(protect_bytes(PAGE_GPA + 0x105, 3), 0);
	assert_int_equal(map_of(PAGE_GFN), ~((1U << 2) | (1U << 3)));
	guest_store(PAGE_GPA + 0x1f0, 0x11111111, true);                  /* still whole */
	assert_int_equal(*u32_at(PAGE_GPA + 0x1f0), 0);
	guest_store(PAGE_GPA + 0x100, 0x22222222, true);                  /* neighbour: lands */
	assert_int_equal(*u32_at(PAGE_GPA + 0x100), 0x22222222);
	/* Bytes inside a sub-page that was protected whole: it stays whole. */
	assert_int_equal(protect_bytes(PAGE_GPA + 0x180, 1), 0);
	guest_store(PAGE_GPA + 0x1f0, 0x11111111, true);
	assert_int_equal(*u32_at(PAGE_GPA + 0x1f0), 0);

	/* SET with the same map: byte mode ends, sub-page 2 is protected whole again. */
	assert_int_equal(set_map(PAGE_GFN, ~((1U << 2) | (1U << 3)), 0), 0);
	assert_int_equal(spp.bytes.n, 0);
	guest_store(PAGE_GPA + 0x100, 0x33333333, true);
	assert_int_equal(*u32_at(PAGE_GPA + 0x100), 0x22222222);
	/* Unprotected, then bytes again: a fresh mask (no memory of the old one). */
	assert_int_equal(set_map(PAGE_GFN, SPP_MAP_ALL, 0), 0);
	assert_int_equal(protect_bytes(PAGE_GPA + 0x1f8, 1), 0);
	guest_store(PAGE_GPA + 0x1f0, 0x44444444, true);
	assert_int_equal(*u32_at(PAGE_GPA + 0x1f0), 0x44444444);
	assert_int_equal(map_of(PAGE_GFN), ~(1U << 3));
}

/* A TRACK page keeps TRACK: guarded bytes land and are reported, the others land silently. */
static void test_track(void **state)
{
	(void)state;
	assert_int_equal(set_map(PAGE_GFN, ~(1U << 10), TESSEL_SPP_TRACK_FLAG), 0);
	assert_int_equal(protect_bytes(PAGE_GPA + 0x106, 2), 0);
	guest_store(PAGE_GPA + 0x100, 0x01010101, true);
	assert_int_equal(ring_head(), 0);
	guest_store(PAGE_GPA + 0x104, 0x04030201, true);
	assert_int_equal(*u32_at(PAGE_GPA + 0x104), 0x04030201);
	assert_int_equal(ring_head(), 1);
	assert_int_equal(ring_entry(0).kind, TESSEL_EV_TRACKED);
	assert_int_equal(ring_entry(0).gpa, PAGE_GPA + 0x106);
	assert_int_equal(ring_entry(0).bytes, 2);
}

/* A range over two pages: both enter byte mode, or (table full) neither does. */
static void test_two_pages_and_full_table(void **state)
{
	(void)state;
	assert_int_equal(protect_bytes(PAGE_GPA + 0xffe, 4), 0);
	assert_int_equal(map_of(PAGE_GFN), ~(1U << 31));
	assert_int_equal(map_of(PAGE_GFN + 1), ~1U);
	guest_store(PAGE_GPA + 0xff8, 0xaaaaaaaa, true);
	guest_store(PAGE_GPA + 0x1004, 0xbbbbbbbb, true);
	assert_int_equal(*u32_at(PAGE_GPA + 0xff8), 0xaaaaaaaa);
	assert_int_equal(*u32_at(PAGE_GPA + 0x1004), 0xbbbbbbbb);
	assert_int_equal(ring_head(), 0);
	assert_int_equal(spp.bytes.n, 2);

	/* Fill the table to one short of full, one page at a time. */
	u64 g = MiB(16) >> PAGE_SHIFT;
	while (spp.bytes.n < SPP_BYTES_PAGES - 1)
		assert_int_equal(protect_bytes((g++ << PAGE_SHIFT) + 8, 1), 0);
	/* Two more pages do not fit: -ENOMEM, and neither page changed. */
	u64 at = (g << PAGE_SHIFT) + PAGE_SIZE - 2;
	assert_int_equal(protect_bytes(at, 4), -ENOMEM);
	assert_int_equal(map_of(g), SPP_MAP_ALL);
	assert_int_equal(map_of(g + 1), SPP_MAP_ALL);
	/* A page already in byte mode needs no room. */
	assert_int_equal(protect_bytes(PAGE_GPA + 0x10, 1), 0);
	assert_int_equal(protect_bytes(at, 2), 0); /* the last free slot */
	assert_int_equal(spp.bytes.n, SPP_BYTES_PAGES);
	assert_int_equal(protect_bytes((g + 5) << PAGE_SHIFT, 1), -ENOMEM);
	/* SET back to unprotected frees slots. */
	assert_int_equal(set_map(PAGE_GFN, SPP_MAP_ALL, 0), 0);
	assert_int_equal(protect_bytes((g + 5) << PAGE_SHIFT, 1), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_neighbours_land, setup_sw, teardown),
		cmocka_unit_test_setup_teardown(test_errors_change_nothing, setup_sw, teardown),
		cmocka_unit_test_setup_teardown(test_no_spp, setup_sw, teardown),
		cmocka_unit_test_setup_teardown(test_locked, setup_sw, teardown),
		cmocka_unit_test_setup_teardown(test_whole_subpages_and_set, setup_sw, teardown),
		cmocka_unit_test_setup_teardown(test_track, setup_sw, teardown),
		cmocka_unit_test_setup_teardown(test_two_pages_and_full_table, setup_sw, teardown),
		cmocka_unit_test_setup_teardown(test_neighbours_land, setup_hw, teardown),
		cmocka_unit_test_setup_teardown(test_locked, setup_hw, teardown),
		cmocka_unit_test_setup_teardown(test_whole_subpages_and_set, setup_hw, teardown),
		cmocka_unit_test_setup_teardown(test_two_pages_and_full_table, setup_hw, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
