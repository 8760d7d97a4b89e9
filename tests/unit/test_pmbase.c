/*
 * The chipset's ACPI PM base register (hv/pmbase.c, docs/ABI.md section 8), through the I/O
 * exit handler over the fake hardware layer with a PCI host bridge model at 0xCF8-0xCFF
 * (configuration mechanism #1: the address latch takes only 32-bit writes to 0xCF8; the data
 * ports 0xCFC-0xCFF reach bytes (latch & 0xFC) + (port - 0xCFC) onward of the selected
 * function). Which function is guarded (PIIX4 by ID; Intel LPC/PMC by class and a base equal
 * to PM1a_EVT_BLK; nothing otherwise), the I/O bitmap, and for every access width and start
 * port: the guarded bits keep their value, every other bit and every other register or
 * function takes the write unchanged, reads pass, the latch is the hardware's (a 16-bit
 * write to 0xCF8 does not move it), writes across the data window are dropped.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include <hw.h>
#include <arch/vmx.h>
#include "drivers/uart.h"
#include "hv/exit.h"
#include "hv/log.h"
#include "hv/percpu.h"
#include "hv/pm1.h"
#include "hv/pmbase.h"
#include "hv/vcpu.h"
#include "hv/vmcs.h"
#include "hv/vmx.h"

static struct percpu cpu;
static struct guest_regs regs;

/* ---- the host bridge model ---- */
#define FN(dev, fn) (0x80000000u | (dev) << 11 | (fn) << 8)
#define F_PIIX4 FN(1, 3)
#define F_ISA   FN(1, 0)
#define F_LPC   FN(31, 0)
#define F_PMC   FN(31, 2)
static const u32 fns[] = { F_PIIX4, F_ISA, F_LPC, F_PMC };
static u8 cfg[4][256];
static bool present[4];
static u32 latch;
static unsigned data_writes, other_writes;

static int fn_of(u32 a)
{
	for (unsigned i = 0; i < 4; i++)
		if (present[i] && (a & 0x80ffff00u) == fns[i])
			return (int)i;
	return -1;
}

static u32 bridge_rd(u16 port, unsigned w)
{
	if (port == 0xcf8 && w == 4)
		return latch;
	int f = port >= 0xcfc ? fn_of(latch) : -1;
	u32 v = 0;
	for (unsigned i = 0; i < w; i++)
		v |= (u32)(f < 0 ? 0xff : cfg[f][(latch & 0xfc) + (port - 0xcfc) + i]) << 8 * i;
	return v;
}

static void bridge_wr(u16 port, unsigned w, u32 v)
{
	if (port == 0xcf8 && w == 4) {
		latch = v;
		return;
	}
	if (port < 0xcfc || port + w > 0xd00) {
		other_writes++; /* not the latch, not the data window (bytes/words at 0xCF8-0xCFB) */
		return;
	}
	data_writes++;
	int f = fn_of(latch);
	if (f < 0)
		return;
	for (unsigned i = 0; i < w; i++)
		cfg[f][(latch & 0xfc) + (port - 0xcfc) + i] = (u8)(v >> 8 * i);
}

static void put32(int f, unsigned reg, u32 v)
{
	for (unsigned i = 0; i < 4; i++)
		cfg[f][reg + i] = (u8)(v >> 8 * i);
}

static u32 get32(int f, unsigned reg)
{
	return cfg[f][reg] | (u32)cfg[f][reg + 1] << 8 | (u32)cfg[f][reg + 2] << 16 | (u32)cfg[f][reg + 3] << 24;
}

/* ---- the exit handler ---- */
static const struct tessel_acpi_sleep piix4_sleep = {
	.pm1a_cnt = 0xb004, .pm1a_sts = 0xb000, .allow_a = 1U << 0, .s3_a = 1, .s3_b = 0xff,
};

static void platform(void)
{
	memset(cfg, 0, sizeof(cfg));
	memset(present, 0, sizeof(present));
	data_writes = other_writes = 0;
	latch = FN(0, 0) | 0x10; /* whatever the firmware left: pmbase_init must put it back */
}

static void piix4(void)
{
	present[0] = present[1] = true;
	put32(0, 0, 0x71138086);
	put32(0, 0x3c, 0x0000010a);
	put32(0, 0x40, 0x0000b001);
	put32(0, 0x80, 0x00000001);
	put32(1, 0, 0x70008086); /* the PIIX3/4 ISA bridge 00:01.0: not guarded */
	put32(1, 0x40, 0x12345678);
}

static int setup(void **state)
{
	(void)state;
	fake_reset();
	memset(&cpu, 0, sizeof(cpu));
	memset(&regs, 0, sizeof(regs));
	cpu.self = &cpu;
	cpu.regs = &regs;
	cpu.launched = true;
	percpu_array[0] = &cpu;
	percpu_count = 1;
	fake_cpu_local_set(&cpu);
	fake_vmcs_set(VMCS_GUEST_RIP, 0x1000);
	fake_vmcs_set(VMCS_GUEST_RFLAGS, RFLAGS_FIXED);
	log_init(UART_COM1, CFG_LOG_INFO);
	fake_io_set_device(0xcf8, 8, bridge_rd, bridge_wr);
	platform();
	return 0;
}

static u64 io(u16 port, unsigned size, bool in, u64 rax)
{
	regs.gpr[GPR_AX] = rax;
	fake_vmcs_set(VMCS_RO_EXIT_QUALIFICATION, ((u64)port << 16) | (size - 1) | (in ? 8U : 0U));
	fake_vmcs_set(VMCS_RO_EXIT_INSN_LEN, 1);
	u64 rip = fake_vmcs_get(VMCS_GUEST_RIP);
	exit_io(&cpu);
	assert_int_equal(fake_vmcs_get(VMCS_GUEST_RIP), rip + 1);
	return regs.gpr[GPR_AX];
}

static void start_piix4(void)
{
	piix4();
	pm1_init(&piix4_sleep);
	pmbase_init(&piix4_sleep);
}

static bool bit(const u8 *a, u16 port) { return a[port / 8] & (1U << (port % 8)); }

static void test_piix4_found(void **state)
{
	(void)state;
	start_piix4();
	assert_non_null(strstr(fake_io_output(), "pmbase: PCI 00:01.3 (PIIX4 PM, 8086:7113): ACPI PM base register 40 "
						  "(b001) and enable (register 80 bit 0, set) kept as found"));
	assert_int_equal(latch, FN(0, 0) | 0x10); /* the firmware's latch is back */
	assert_int_equal(data_writes, 0);
	static u8 a[4096], b[4096];
	vmx_io_bitmap_init(a, b);
	for (u16 p = 0xcf8; p < 0xd00; p++)
		assert_true(bit(a, p) == (p != 0xcfa && p != 0xcfb));
	assert_false(bit(a, 0xcf7) || bit(a, 0xd00));
}

/* Every width and start port inside the data window, at PMBA (all bits kept), at PMREGMISC
 * (bit 0 kept, the rest written), at the interrupt line (written) and at the same offset of
 * another function (written). */
static void test_every_width_and_port(void **state)
{
	(void)state;
	start_piix4();
	static const struct { u16 port; unsigned size; } acc[] = {
		{ 0xcfc, 1 }, { 0xcfd, 1 }, { 0xcfe, 1 }, { 0xcff, 1 }, { 0xcfc, 2 }, { 0xcfd, 2 }, { 0xcfe, 2 },
		{ 0xcfc, 4 },
	};
	const u32 v = 0xa55a3cc3;
	for (unsigned k = 0; k < ARRAY_SIZE(acc); k++) {
		unsigned at = acc[k].port - 0xcfc, n = acc[k].size;
		u32 mask = (n == 4 ? ~0U : (1U << 8 * n) - 1) << 8 * at, wv = v & (n == 4 ? ~0U : (1U << 8 * n) - 1);
		u32 sv = wv << 8 * at; /* the written bytes where they land in the dword */

		put32(0, 0x40, 0xb001);
		io(0xcf8, 4, false, F_PIIX4 | 0x40);
		unsigned dw = data_writes;
		io(acc[k].port, n, false, 0xffffffff00000000ULL | v);
		assert_int_equal(data_writes, dw + 1); /* one write, same width, same port */
		assert_int_equal(get32(0, 0x40), 0xb001);

		put32(0, 0x80, 0x00000001);
		io(0xcf8, 4, false, F_PIIX4 | 0x80);
		io(acc[k].port, n, false, v);
		u32 want = (0x00000001 & ~mask) | (sv & ~1U) | 1U;
		assert_int_equal(get32(0, 0x80), want);

		put32(0, 0x3c, 0x0000010a);
		io(0xcf8, 4, false, F_PIIX4 | 0x3c);
		io(acc[k].port, n, false, v);
		assert_int_equal(get32(0, 0x3c), (0x0000010a & ~mask) | sv);

		put32(1, 0x40, 0x12345678);
		io(0xcf8, 4, false, F_ISA | 0x40);
		io(acc[k].port, n, false, v);
		assert_int_equal(get32(1, 0x40), (0x12345678 & ~mask) | sv);
	}
	/* The first one on the log (rate-limited per call site: the later ones may not be). */
	assert_non_null(strstr(fake_io_output(), "W: pmbase: guest wrote c3 to port cfc (PCI 00:01.3 offset 40): "
						  "the ACPI PM base and its enable keep their value (1 written)"));
	/* Writing the values it already has is no refusal: nothing more on the log. */
	fake_io_output_clear();
	io(0xcf8, 4, false, F_PIIX4 | 0x40);
	io(0xcfc, 4, false, 0xb001);
	io(0xcf8, 4, false, F_PIIX4 | 0x80);
	io(0xcfc, 1, false, 0x01);
	assert_null(strstr(fake_io_output(), "pmbase"));
}

static void test_reads_pass(void **state)
{
	(void)state;
	start_piix4();
	io(0xcf8, 4, false, F_PIIX4 | 0x40);
	assert_int_equal(io(0xcfc, 4, true, 0), 0xb001);
	assert_int_equal(io(0xcfd, 1, true, 0x1234), 0x12b0);
	io(0xcf8, 4, false, F_PIIX4);
	assert_int_equal(io(0xcfe, 2, true, 0), 0x7113);
	assert_int_equal(io(0xcf8, 4, true, 0), F_PIIX4);
}

/* Only a 32-bit write to 0xCF8 aims the data ports; the filter follows the hardware's latch. */
static void test_latch_semantics(void **state)
{
	(void)state;
	start_piix4();
	/* Aimed at PMBA, then a 16-bit and an 8-bit write to 0xCF8 that would aim elsewhere. */
	io(0xcf8, 4, false, F_PIIX4 | 0x40);
	io(0xcf8, 2, false, (u16)(F_ISA | 0x40));
	io(0xcf8, 1, false, 0x3c);
	assert_int_equal(latch, F_PIIX4 | 0x40);
	io(0xcfc, 4, false, 0x9001);
	assert_int_equal(get32(0, 0x40), 0xb001);
	/* Aimed at the ISA bridge; a 16-bit write of the PM function's address is not a latch. */
	io(0xcf8, 4, false, F_ISA | 0x40);
	io(0xcf8, 2, false, (u16)(F_PIIX4 | 0x40));
	io(0xcfc, 4, false, 0x9001);
	assert_int_equal(get32(1, 0x40), 0x9001);
	assert_int_equal(get32(0, 0x40), 0xb001);
	/* The enable bit clear: no configuration cycle (the bridge model drops it), nothing held. */
	io(0xcf8, 4, false, (F_PIIX4 & ~0x80000000u) | 0x40);
	io(0xcfc, 4, false, 0x9001);
	assert_int_equal(get32(0, 0x40), 0xb001);
	/* Bits 30:24 set (reserved on Intel, AMD's extended register number): still held. */
	io(0xcf8, 4, false, F_PIIX4 | 0x0f000000u | 0x40);
	assert_int_equal(latch, F_PIIX4 | 0x0f000000u | 0x40);
	u32 before = data_writes;
	io(0xcfc, 2, false, 0x9001);
	assert_int_equal(data_writes, before + 1);
	/* (the model ignores bits 30:24, as Intel's does) */
	assert_int_equal(get32(0, 0x40), 0xb001);
}

static void test_across_window_dropped(void **state)
{
	(void)state;
	start_piix4();
	io(0xcf8, 4, false, F_PIIX4 | 0x40);
	unsigned dw = data_writes, ow = other_writes;
	io(0xcfa, 4, false, 0x90019001);
	io(0xcfb, 2, false, 0x9090);
	io(0xcfe, 4, false, 0x90019001);
	io(0xcff, 2, false, 0x9090);
	assert_int_equal(data_writes, dw);
	assert_int_equal(other_writes, ow);
	assert_int_equal(get32(0, 0x40), 0xb001);
	assert_int_equal(latch, F_PIIX4 | 0x40);
	assert_non_null(strstr(fake_io_output(), "pmbase: guest wrote 90019001 to port cfa (4 bytes, across the PCI "
						  "configuration data ports): dropped"));
	/* A word at 0xCFA-0xCFB touches neither the latch nor the data ports: passed on. */
	io(0xcfa, 2, false, 0x1234);
	assert_int_equal(other_writes, ow + 1);
}

static const struct tessel_acpi_sleep intel_sleep = {
	.pm1a_cnt = 0x1804, .pm1a_sts = 0x1800, .allow_a = 0xff & ~(1U << 5), .s3_a = 5, .s3_b = 0xff,
};

static void intel(int f, u32 class_rev, u32 base)
{
	present[f] = true;
	put32(f, 0, 0xa3a18086);
	put32(f, 8, class_rev);
	put32(f, 0x40, base);
	put32(f, 0x44, 0x000000a0); /* ACPI_EN (bit 7) set, SCI_IRQ_SEL 0 */
}

static void test_intel_pmc_and_lpc(void **state)
{
	(void)state;
	/* The PMC (00:1f.2, class 0580h) holding PM1a_EVT_BLK 1800h. */
	intel(3, 0x05800000, 0x1801);
	pm1_init(&intel_sleep);
	pmbase_init(&intel_sleep);
	assert_non_null(strstr(fake_io_output(), "pmbase: PCI 00:1f.2 (Intel PMC, 8086:a3a1): ACPI PM base register 40 "
						  "(1801) and enable (register 44 bit 7, set) kept as found"));
	io(0xcf8, 4, false, F_PMC | 0x44);
	io(0xcfc, 1, false, 0x03); /* ACPI_EN cleared, SCI_IRQ_SEL 3: only the IRQ select takes */
	assert_int_equal(get32(3, 0x44), 0x83);
	io(0xcf8, 4, false, F_PMC | 0x40);
	io(0xcfc, 2, false, 0x0501);
	assert_int_equal(get32(3, 0x40), 0x1801);

	/* The LPC bridge (00:1f.0, class 0601h) on an older PCH. */
	setup(NULL);
	intel(2, 0x06010000, 0x1801);
	present[3] = false;
	pmbase_init(&intel_sleep);
	assert_non_null(strstr(fake_io_output(), "pmbase: PCI 00:1f.0 (Intel LPC, 8086:a3a1): ACPI PM base register 40"));
	io(0xcf8, 4, false, F_LPC | 0x40);
	io(0xcfc, 4, false, 0x0501);
	assert_int_equal(get32(2, 0x40), 0x1801);
}

/* A base that is not PM1a_EVT_BLK, or the wrong class: nothing guarded, nothing intercepted. */
static void test_nothing_guarded(void **state)
{
	(void)state;
	const struct { int f; u32 class_rev; u32 base; } cases[] = {
		{ 3, 0x05800000, 0x0401 }, /* another base */
		{ 3, 0x05800000, 0x1800 }, /* bit 0 (I/O space) clear */
		{ 2, 0x06040000, 0x1801 }, /* a PCI bridge's class at 00:1f.0 */
	};
	for (unsigned k = 0; k < ARRAY_SIZE(cases); k++) {
		setup(NULL);
		intel(cases[k].f, cases[k].class_rev, cases[k].base);
		pmbase_init(&intel_sleep);
		assert_non_null(strstr(fake_io_output(), "pmbase: no chipset ACPI base register known"));
		static u8 a[4096], b[4096];
		vmx_io_bitmap_init(a, b);
		assert_false(bit(a, 0xcfc) || bit(a, 0xcfd) || bit(a, 0xcfe) || bit(a, 0xcff));
		io(0xcf8, 4, false, fns[cases[k].f] | 0x40);
		io(0xcfc, 4, false, 0x0501);
		assert_int_equal(get32(cases[k].f, 0x40), 0x0501); /* exit_io passes it: no guard */
	}
	/* No PM1a_EVT_BLK known at all: no Intel function is taken either. */
	setup(NULL);
	intel(3, 0x05800000, 0x0001);
	struct tessel_acpi_sleep none = intel_sleep;
	none.pm1a_sts = 0;
	pmbase_init(&none);
	assert_non_null(strstr(fake_io_output(), "pmbase: no chipset ACPI base register known"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_piix4_found, setup),
		cmocka_unit_test_setup(test_every_width_and_port, setup),
		cmocka_unit_test_setup(test_reads_pass, setup),
		cmocka_unit_test_setup(test_latch_semantics, setup),
		cmocka_unit_test_setup(test_across_window_dropped, setup),
		cmocka_unit_test_setup(test_intel_pmc_and_lpc, setup),
		cmocka_unit_test_setup(test_nothing_guarded, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
