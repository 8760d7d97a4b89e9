/*
 * ACPI sleep requests (docs/ABI.md section 8). The core's side, hv/pm1.c through the I/O exit
 * handler over the fake hardware layer: an S3 request to PM1 control is not forwarded, is
 * logged (rate-limited) and makes PM1a_STS read WAK_STS until the guest clears it; power off
 * (S5), SLP_TYP alone, SCI_EN and every other port pass unchanged; 8-bit and misaligned
 * 32-bit writes that reach the SLP_EN byte are checked too; the I/O bitmap. The loader's
 * side, boot/acpi_sleep.c, on tables built here: the FADT's blocks (X_ fields first, legacy
 * ones as fallback, MMIO not intercepted, hardware-reduced), the \_Sx packages, which sleep
 * types pass, the renaming of _S3_ with a valid checksum, the PIIX4 fallback.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include <hw.h>
#include <arch/vmx.h>
#include "boot/acpi_sleep.h"
#include "drivers/uart.h"
#include "hv/exit.h"
#include "hv/log.h"
#include "hv/percpu.h"
#include "hv/pm1.h"
#include "hv/vcpu.h"
#include "hv/vmcs.h"
#include "hv/vmx.h"

static struct percpu cpu;
static struct guest_regs regs;

#define PMBA 0xb000
#define CNT  (PMBA + 4)
#define STS  PMBA
#define SLP_EN (1U << 13)
#define TYP(t) ((t) << 10)

static const struct tessel_acpi_sleep piix4 = {
	.pm1a_cnt = CNT, .pm1a_sts = STS, .allow_a = 1U << 0, .s3_a = 1, .s3_b = 0xff,
};

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
	pm1_init(&piix4);
	fake_io_output_clear();
	return 0;
}

/* One I/O exit; returns RAX afterwards. RIP must move past the instruction every time. */
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

static size_t writes_to(u16 port)
{
	size_t n = 0;
	for (size_t i = 0; i < fake_io_log_count(); i++)
		n += fake_io_log(i)->port == port;
	return n;
}

/* Writes to the PM1 block (the log's serial output is in the same record). */
static size_t pm1_writes(void)
{
	size_t n = 0;
	for (size_t i = 0; i < fake_io_log_count(); i++)
		n += fake_io_log(i)->port >= PMBA && fake_io_log(i)->port < PMBA + 8;
	return n;
}

static long last_write(u16 port)
{
	long v = -1;
	for (size_t i = 0; i < fake_io_log_count(); i++)
		if (fake_io_log(i)->port == port)
			v = fake_io_log(i)->value;
	return v;
}

static unsigned count(const char *text, const char *needle)
{
	unsigned n = 0;
	for (const char *p = text; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

static void test_s3_refused_wak_sts(void **state)
{
	(void)state;
	fake_io_set_in(STS, 0x01); /* PM1a_STS: TMR_STS, WAK_STS clear */
	fake_io_set_in(STS + 1, 0x00);
	assert_int_equal(io(STS, 2, true, 0), 0x0001);

	/* ACPICA's first write: SLP_TYP alone goes to the chipset. */
	io(CNT, 2, false, TYP(1) | 1);
	assert_int_equal(last_write(CNT), TYP(1) | 1);
	size_t before = writes_to(CNT);
	/* The second, with SLP_EN: refused, nothing written. */
	io(CNT, 2, false, TYP(1) | SLP_EN | 1);
	assert_int_equal(writes_to(CNT), before);
	assert_int_equal(writes_to(CNT + 1), 0);
	assert_non_null(strstr(fake_io_output(), "pm1: guest wrote 2401 to port b004 (PM1a_CNT): sleep type 1 (S3) refused"));

	/* WAK_STS reads set, in every width that covers bit 15 of PM1a_STS; RAX's other bits kept. */
	assert_int_equal(io(STS, 2, true, 0xabcd0000), 0xabcd8001);
	assert_int_equal(io(STS + 1, 1, true, 0), 0x80);
	assert_int_equal(io(STS, 1, true, 0), 0x01);
	assert_int_equal(io(STS, 4, true, 0) & 0xffff, 0x8001);
	/* Writing 0 to it leaves it; writing 1 clears it (and goes to the chipset). */
	io(STS, 2, false, 0x0001);
	assert_int_equal(io(STS, 2, true, 0), 0x8001);
	io(STS, 2, false, 0x8000);
	assert_int_equal(last_write(STS), 0x8000);
	assert_int_equal(io(STS, 2, true, 0), 0x0001);

	/* The SLP_EN byte alone, and a 32-bit write from PM1_EN whose upper half is PM1a_CNT. */
	before = pm1_writes();
	io(CNT + 1, 1, false, (TYP(1) | SLP_EN) >> 8);
	assert_int_equal(pm1_writes(), before);
	assert_int_equal(io(STS, 2, true, 0), 0x8001);
	io(STS + 1, 1, false, 0x80); /* an 8-bit write-1-to-clear */
	assert_int_equal(io(STS, 2, true, 0), 0x0001);
	io(PMBA + 2, 4, false, ((u32)(TYP(1) | SLP_EN) << 16) | 0x0120);
	assert_int_equal(pm1_writes(), before + 1); /* only the STS write-1-to-clear went out */
	assert_int_equal(io(STS, 2, true, 0), 0x8001);

	/* Sleep types that are not listed as passing are refused too (S2, reserved values). */
	io(STS, 2, false, 0x8000);
	before = pm1_writes();
	io(CNT, 2, false, TYP(2) | SLP_EN);
	io(CNT, 2, false, TYP(7) | SLP_EN);
	assert_int_equal(pm1_writes(), before);
	assert_non_null(strstr(fake_io_output(), "sleep type 2 (not a state that passes) refused"));
}

static void test_other_writes_pass(void **state)
{
	(void)state;
	/* SCI_EN, the low byte, SLP_TYP alone: to the chipset unchanged, no WAK_STS. */
	fake_io_set_in(STS, 0x00);
	fake_io_set_in(STS + 1, 0x00);
	io(CNT, 2, false, 0x0001);
	assert_int_equal(last_write(CNT), 0x0001);
	io(CNT, 1, false, 0x01);
	io(CNT + 1, 1, false, TYP(1) >> 8);
	io(PMBA + 2, 4, false, 0x01200120);
	assert_int_equal(last_write(CNT), 0x0120);
	assert_int_equal(io(STS, 2, true, 0), 0);
	/* Power off (S5, SLP_TYP 0 here) with SLP_EN: written as it is; so is a 32-bit one. */
	io(CNT, 2, false, TYP(0) | SLP_EN | 1);
	assert_int_equal(last_write(CNT), SLP_EN | 1);
	io(PMBA + 2, 4, false, (u32)SLP_EN << 16);
	assert_int_equal(last_write(CNT), SLP_EN);
	assert_int_equal(io(STS, 2, true, 0), 0);
	assert_null(strstr(fake_io_output(), "refused"));
	/* Ports next to the registers are not touched by the PM1 logic. */
	io(CNT + 2, 2, false, SLP_EN | TYP(1));
	assert_int_equal(last_write(CNT + 2), SLP_EN | TYP(1));
}

static void test_refusals_rate_limited(void **state)
{
	(void)state;
	fake_tsc_set(1000);
	for (int i = 0; i < 200; i++)
		io(CNT, 2, false, TYP(1) | SLP_EN);
	unsigned lines = count(fake_io_output(), "(PM1a_CNT): sleep type 1 (S3) refused");
	assert_true(lines >= 1 && lines <= LOG_RL_BURST);
	assert_int_equal(writes_to(CNT), 0);
}

static void test_pm1b(void **state)
{
	(void)state;
	/* Two control registers with their own encodings (S3 = 5 on A, 3 on B; S5 = 7 / 2). */
	struct tessel_acpi_sleep s = { .pm1a_cnt = 0x404, .pm1b_cnt = 0x504, .pm1a_sts = 0x400, .pm1b_sts = 0x500,
				       .allow_a = 1U << 7, .allow_b = 1U << 2, .s3_a = 5, .s3_b = 3 };
	pm1_init(&s);
	io(0x504, 2, false, TYP(2) | SLP_EN);
	assert_int_equal(last_write(0x504), TYP(2) | SLP_EN);
	io(0x504, 2, false, TYP(3) | SLP_EN);
	assert_int_equal(last_write(0x504), TYP(2) | SLP_EN);
	assert_non_null(strstr(fake_io_output(), "(PM1b_CNT): sleep type 3 (S3) refused"));
	/* B's S5 value on A is not A's S5: refused there. */
	io(0x404, 2, false, TYP(2) | SLP_EN);
	assert_int_equal(writes_to(0x404), 0);
	io(0x404, 2, false, TYP(7) | SLP_EN);
	assert_int_equal(last_write(0x404), TYP(7) | SLP_EN);
	/* WAK_STS shows in PM1a_STS (ACPICA ORs A and B); B's own status register reads as it is. */
	fake_io_set_in(0x400, 0);
	fake_io_set_in(0x401, 0);
	fake_io_set_in(0x500, 0);
	fake_io_set_in(0x501, 0);
	assert_int_equal(io(0x400, 2, true, 0), 0x8000);
	assert_int_equal(io(0x500, 2, true, 0), 0);
	io(0x500, 2, false, 0x8000); /* clearing through B clears it too */
	assert_int_equal(io(0x400, 2, true, 0), 0);
}

static bool bit(const u8 *a, const u8 *b, u16 port)
{
	const u8 *m = port < 0x8000 ? a : b;
	return m[(port & 0x7fff) / 8] & (1U << (port % 8));
}

static void test_io_bitmap(void **state)
{
	(void)state;
	static u8 a[4096], b[4096];
	memset(a, 0xee, sizeof(a));
	memset(b, 0xee, sizeof(b));
	vmx_io_bitmap_init(a, b);
	unsigned set = 0;
	for (u32 p = 0; p <= 0xffff; p++)
		set += bit(a, b, (u16)p);
	assert_int_equal(set, 3 + 4);
	assert_true(bit(a, b, 0xcf9) && bit(a, b, 0x92) && bit(a, b, 0x64));
	assert_true(bit(a, b, CNT) && bit(a, b, CNT + 1) && bit(a, b, STS) && bit(a, b, STS + 1));
	/* Nothing known: only the reset ports, and a warning. */
	fake_io_output_clear();
	struct tessel_acpi_sleep none = { .s3_a = 0xff, .s3_b = 0xff };
	pm1_init(&none);
	assert_non_null(strstr(fake_io_output(), "sleep requests (S3) are not intercepted"));
	vmx_io_bitmap_init(a, b);
	set = 0;
	for (u32 p = 0; p <= 0xffff; p++)
		set += bit(a, b, (u16)p);
	assert_int_equal(set, 3);
	/* And then nothing is refused: an S3 request reaches the chipset (an OS without ACPI
	 * tables at the loader's time and no PIIX4 is not guarded; docs/ABI.md section 8). */
	io(CNT, 2, false, TYP(1) | SLP_EN);
	assert_int_equal(last_write(CNT), TYP(1) | SLP_EN);
}

/* ---- the loader's side: boot/acpi_sleep.c over tables built here ---- */

static u8 mem[3][8192] __attribute__((aligned(16)));
static u8 *rsdp_b, *xsdt_b, *fadt_b, *dsdt_b, *ssdt_b;

static void w16(u8 *p, u16 v) { p[0] = (u8)v; p[1] = (u8)(v >> 8); }
static void w32(u8 *p, u32 v) { w16(p, (u16)v); w16(p + 2, (u16)(v >> 16)); }
static void w64(u8 *p, u64 v) { w32(p, (u32)v); w32(p + 4, (u32)(v >> 32)); }
static u64 pa(const void *p) { return (u64)(uintptr_t)p; }

static u8 sum(const u8 *p, u32 n)
{
	u8 s = 0;
	while (n--)
		s = (u8)(s + *p++);
	return s;
}

static void header(u8 *t, const char *sig, u32 len)
{
	memcpy(t, sig, 4);
	w32(t + 4, len);
	t[8] = 2;
	t[9] = 0;
	t[9] = (u8)-sum(t, len);
}

static void gas(u8 *g, u8 space, u64 addr)
{
	g[0] = space;
	g[1] = 16;
	w64(g + 4, addr);
}

/* DSDT body: Name (\_S3_, Package (4) { One, One, Zero, Zero }), a reference to it,
 * Name (_S4_, Package (4) { 0x0A 2, ... }) and Name (_S5_, Package (4) { Zero, ... }). */
static const u8 dsdt_aml[] = {
	0x08, 0x5c, '_', 'S', '3', '_', 0x12, 0x06, 0x04, 0x01, 0x01, 0x00, 0x00,
	0x5b, 0x12, '_', 'S', '3', '_', 0x00,                 /* CondRefOf (_S3_) */
	0x08, '_', 'S', '4', '_', 0x12, 0x07, 0x04, 0x0a, 0x02, 0x0a, 0x02, 0x00, 0x00,
	0x08, '_', 'S', '5', '_', 0x12, 0x06, 0x04, 0x00, 0x00, 0x00, 0x00,
};

static void build(bool x_fields, bool with_s5)
{
	memset(mem, 0, sizeof(mem));
	rsdp_b = mem[0];
	xsdt_b = mem[0] + 64;
	fadt_b = mem[0] + 256;
	dsdt_b = mem[1];
	ssdt_b = mem[2];

	u32 dl = 36 + sizeof(dsdt_aml);
	memcpy(dsdt_b + 36, dsdt_aml, sizeof(dsdt_aml));
	if (!with_s5)
		dsdt_b[36 + sizeof(dsdt_aml) - 12 + 3] = '6'; /* _S5_ -> _S6_: not a state */
	header(dsdt_b, "DSDT", dl);
	/* SSDT: Name (_S3_, Package (1) { 0x0105 }): one element, a in bits 7:0, b in 15:8. */
	const u8 ssdt_aml[] = { 0x08, '_', 'S', '3', '_', 0x12, 0x05, 0x01, 0x0b, 0x05, 0x01 };
	memcpy(ssdt_b + 36, ssdt_aml, sizeof(ssdt_aml));
	header(ssdt_b, "SSDT", 36 + sizeof(ssdt_aml));

	w32(fadt_b + 40, (u32)0xdead0000); /* legacy DSDT pointer: unused when X_DSDT is set */
	w64(fadt_b + 140, pa(dsdt_b));
	w32(fadt_b + 56, 0x1800);
	w32(fadt_b + 64, 0x1804);
	fadt_b[88] = 4;
	fadt_b[89] = 2;
	if (x_fields) {
		gas(fadt_b + 148, 1, 0xb000);
		gas(fadt_b + 172, 1, 0xb004);
	}
	header(fadt_b, "FACP", 276);

	w64(xsdt_b + 36, pa(fadt_b));
	w64(xsdt_b + 44, pa(ssdt_b));
	header(xsdt_b, "XSDT", 36 + 16);

	memcpy(rsdp_b, "RSD PTR ", 8);
	rsdp_b[15] = 2;
	w64(rsdp_b + 24, pa(xsdt_b));
}

static void test_loader_scan_and_hide(void **state)
{
	(void)state;
	struct tessel_acpi_sleep s;
	struct acpi_sleep_scan sc;
	build(true, true);
	acpi_sleep_scan(pa(rsdp_b), &s, &sc);
	assert_true(sc.fadt);
	assert_false(sc.hw_reduced);
	assert_int_equal(s.pm1a_cnt, 0xb004); /* X_PM1a_CNT_BLK over PM1a_CNT_BLK */
	assert_int_equal(s.pm1a_sts, 0xb000);
	assert_int_equal(s.pm1b_cnt, 0);
	assert_int_equal(sc.known, (1U << 3) | (1U << 4) | (1U << 5));
	assert_int_equal(sc.s3_names, 3); /* the DSDT's Name and reference, the SSDT's Name */
	assert_int_equal(sc.tables, 2);
	assert_int_equal(s.s3_a, 1); /* the DSDT's package comes first */
	assert_int_equal(s.s3_b, 1);
	assert_int_equal(s.allow_a, (1U << 0) | (1U << 2)); /* S5 = 0, S4 = 2 */
	assert_int_equal(s.allow_b, (1U << 0) | (1U << 2));

	assert_int_equal(acpi_sleep_hide(pa(rsdp_b)), 3);
	assert_int_equal(sum(dsdt_b, 36 + sizeof(dsdt_aml)), 0);
	assert_int_equal(sum(ssdt_b, 47), 0);
	assert_memory_equal(dsdt_b + 38, "TS3_", 4);
	assert_memory_equal(dsdt_b + 51, "TS3_", 4);
	assert_memory_equal(ssdt_b + 37, "TS3_", 4);
	/* Hidden: a second scan finds no \_S3 (what the OS sees), the other states unchanged. */
	acpi_sleep_scan(pa(rsdp_b), &s, &sc);
	assert_int_equal(sc.known, (1U << 4) | (1U << 5));
	assert_int_equal(sc.s3_names, 0);
	assert_int_equal(acpi_sleep_hide(pa(rsdp_b)), 0);
}

static void test_loader_fallbacks(void **state)
{
	(void)state;
	struct tessel_acpi_sleep s;
	struct acpi_sleep_scan sc;
	/* Legacy port fields when the X_ ones are zero. */
	build(false, true);
	acpi_sleep_scan(pa(rsdp_b), &s, &sc);
	assert_int_equal(s.pm1a_cnt, 0x1804);
	assert_int_equal(s.pm1a_sts, 0x1800);

	/* No \_S5 package: every type but S3's passes (power off must keep working). */
	build(true, false);
	acpi_sleep_scan(pa(rsdp_b), &s, &sc);
	assert_int_equal(s.pm1a_cnt, 0xb004);
	assert_int_equal(s.allow_a, (u8)~(1U << 1));
	assert_int_equal(s.allow_b, (u8)~(1U << 1));

	/* MMIO control block: not intercepted, said so. */
	build(true, true);
	gas(fadt_b + 172, 0, 0xfed80004);
	header(fadt_b, "FACP", 276);
	acpi_sleep_scan(pa(rsdp_b), &s, &sc);
	assert_true(sc.mmio);
	assert_int_equal(s.pm1a_cnt, 0);

	/* Hardware-reduced: SLEEP_CONTROL_REG at port 0x600 is the high byte of a "PM1a_CNT" at
	 * 0x5ff, SLEEP_STATUS_REG at 0x601 that of a "PM1a_STS" at 0x600. */
	build(true, true);
	w32(fadt_b + 112, 1U << 20);
	gas(fadt_b + 244, 1, 0x600);
	gas(fadt_b + 256, 1, 0x601);
	header(fadt_b, "FACP", 276);
	acpi_sleep_scan(pa(rsdp_b), &s, &sc);
	assert_true(sc.hw_reduced);
	assert_int_equal(s.pm1a_cnt, 0x5ff);
	assert_int_equal(s.pm1a_sts, 0x600);

	/* No RSDP, a bad signature: nothing. */
	acpi_sleep_scan(0, &s, &sc);
	assert_false(sc.fadt);
	assert_int_equal(s.pm1a_cnt, 0);
	build(true, true);
	rsdp_b[0] = 'X';
	acpi_sleep_scan(pa(rsdp_b), &s, &sc);
	assert_false(sc.fadt);
	assert_int_equal(acpi_sleep_hide(pa(rsdp_b)), 0);

	/* PIIX4 without ACPI tables (Bochs): only with its I/O block enabled. */
	assert_true(acpi_sleep_piix4(0x71138086, 0xb001, 1, &s));
	assert_int_equal(s.pm1a_cnt, 0xb004);
	assert_int_equal(s.pm1a_sts, 0xb000);
	assert_int_equal(s.allow_a, 1);
	assert_int_equal(s.s3_a, 1);
	assert_false(acpi_sleep_piix4(0x71138086, 0xb001, 0, &s));
	assert_int_equal(s.pm1a_cnt, 0);
	assert_false(acpi_sleep_piix4(0x29188086, 0xb001, 1, &s));
	assert_false(acpi_sleep_piix4(0xffffffff, 0xffffffff, 0xffffffff, &s));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_s3_refused_wak_sts, setup),
		cmocka_unit_test_setup(test_other_writes_pass, setup),
		cmocka_unit_test_setup(test_refusals_rate_limited, setup),
		cmocka_unit_test_setup(test_pm1b, setup),
		cmocka_unit_test_setup(test_io_bitmap, setup),
		cmocka_unit_test(test_loader_scan_and_hide),
		cmocka_unit_test(test_loader_fallbacks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
