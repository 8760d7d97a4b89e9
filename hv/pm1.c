/*
 * ACPI sleep requests (PM1 control registers, ACPI 6.5 section 4.8.3.2.1). Writing SLP_EN with
 * a sleep type to PM1a/PM1b_CNT makes the chipset enter that sleep state. In S3 (suspend to
 * RAM) the processors lose power: on wake the firmware jumps to the OS's waking vector, in
 * real mode, outside VMX operation - the OS then runs with no hypervisor underneath and the
 * hypervisor's region is plain RAM to it. Tessel does not take that path back (it would have
 * to own the FACS waking vector, redo VMXON and every VMCS on every processor, and restore
 * the IOMMU, all before the OS's code runs): it refuses the request, docs/ABI.md section 8.
 *
 * Refused: a write that reaches the byte holding SLP_EN (bits 8-15 of a control register, port
 * PMx_CNT + 1) with SLP_EN set and a SLP_TYP that the loader did not list as passed (power off
 * S5, hibernation S4, S1, which keeps the processors' context; boot/acpi_sleep.c). The whole
 * write is dropped; the guest sees the sleep fail and come straight back: PM1a_STS reads
 * WAK_STS (bit 15) set, as after a wake, until the guest writes 1 to it. ACPICA waits for
 * WAK_STS after the write (acpi_hw_legacy_sleep) and returns; Linux's do_suspend_lowlevel then
 * continues at its resume point and the kernel resumes as after a wake. Everything else written
 * to or read from these ports (SCI_EN, SLP_TYP alone, power off) reaches the hardware
 * unchanged.
 *
 * The I/O bitmap exits on every access that touches a port whose bit is set (SDM Vol. 3C
 * 25.1.3), so a 32-bit write from two ports below the control register, or an 8-bit write to
 * its high byte, exits too and is checked byte by byte.
 */
#include "pm1.h"
#include "log.h"

#define PM1_SLP_EN   0x20u /* bit 13 of PMx_CNT, in its high byte */
#define PM1_SLP_TYP(hb) (((hb) >> 2) & 7u) /* bits 12:10 */
#define PM1_WAK_STS  0x80u /* bit 15 of PMx_STS, in its high byte */

static struct tessel_acpi_sleep pm1;
/* A sleep request was refused and the guest has not yet cleared WAK_STS. One flag for the
 * platform (the status register is a platform register, not a vCPU's). */
static volatile bool wak_pending;

void pm1_init(const struct tessel_acpi_sleep *s)
{
	pm1 = *s;
	wak_pending = false;
	if (!pm1.pm1a_cnt && !pm1.pm1b_cnt) {
		log_warn("pm1: no ACPI PM1 control register known: sleep requests (S3) are not intercepted");
		return;
	}
	log_info("pm1: PM1a_CNT %x PM1b_CNT %x PM1a_STS %x PM1b_STS %x: sleep types %x/%x pass, others "
		 "(S3 = %x/%x) are refused", pm1.pm1a_cnt, pm1.pm1b_cnt, pm1.pm1a_sts, pm1.pm1b_sts, pm1.allow_a,
		 pm1.allow_b, pm1.s3_a, pm1.s3_b);
}

static void set_port(u8 *a, u8 *b, u16 port)
{
	u8 *map = port < 0x8000 ? a : b;
	u16 bit = port & 0x7fff;
	map[bit / 8] |= (u8)(1U << (bit % 8));
}

void pm1_io_bitmap(u8 *a, u8 *b)
{
	const u16 ports[] = { pm1.pm1a_cnt, pm1.pm1b_cnt, pm1.pm1a_sts, pm1.pm1b_sts };
	for (unsigned i = 0; i < ARRAY_SIZE(ports); i++) {
		if (!ports[i] || ports[i] == 0xffff)
			continue;
		set_port(a, b, ports[i]);
		set_port(a, b, (u16)(ports[i] + 1));
	}
}

/* The byte of an access of `size` bytes at port that lands on port `reg`, or -1. */
static int byte_at(u16 port, unsigned size, u16 reg)
{
	if (!reg || reg < port || (unsigned)(reg - port) >= size)
		return -1;
	return reg - port;
}

static bool refused(u16 port, unsigned size, u32 v, u16 cnt, u8 allow, u8 s3, const char *name)
{
	int off = byte_at(port, size, (u16)(cnt + 1));
	if (off < 0)
		return false;
	u8 hb = (u8)(v >> (8 * off));
	if (!(hb & PM1_SLP_EN) || (allow & (1U << PM1_SLP_TYP(hb))))
		return false;
	unsigned typ = PM1_SLP_TYP(hb);
	log_warn_rl("pm1: guest wrote %x to port %x (%s): sleep type %u (%s) refused: the hypervisor does not "
		    "survive it; WAK_STS set", v, port, name, typ, typ == s3 ? "S3" : "not a state that passes");
	return true;
}

bool pm1_out(u16 port, unsigned size, u32 v)
{
	if (refused(port, size, v, pm1.pm1a_cnt, pm1.allow_a, pm1.s3_a, "PM1a_CNT") ||
	    refused(port, size, v, pm1.pm1b_cnt, pm1.allow_b, pm1.s3_b, "PM1b_CNT")) {
		wak_pending = true;
		return true;
	}
	/* WAK_STS is write-1-to-clear (ACPI 6.5 section 4.8.3.1.1). */
	const u16 sts[] = { pm1.pm1a_sts, pm1.pm1b_sts };
	for (unsigned i = 0; i < ARRAY_SIZE(sts); i++) {
		int off = byte_at(port, size, (u16)(sts[i] + 1));
		if (off >= 0 && ((v >> (8 * off)) & PM1_WAK_STS))
			wak_pending = false;
	}
	return false;
}

u32 pm1_in(u16 port, unsigned size, u32 v)
{
	if (!wak_pending)
		return v;
	/* PM1a only: ACPICA reads PM1a_STS and PM1b_STS and ORs them, other readers use PM1a. */
	int off = byte_at(port, size, (u16)(pm1.pm1a_sts + 1));
	if (off >= 0 && pm1.pm1a_sts)
		v |= PM1_WAK_STS << (8 * off);
	return v;
}
