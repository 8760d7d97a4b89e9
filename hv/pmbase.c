/*
 * The chipset register that places the ACPI PM1 block in I/O space (docs/ABI.md section 8).
 * hv/pm1.c refuses S3 at the PM1 ports the loader found; a guest kernel that owns PCI
 * configuration space could move the whole block elsewhere by rewriting the base register
 * of the function that decodes it, and write its sleep request there. This file keeps that
 * register, and the bit that enables the block's decoding, at the values found at start.
 *
 * Guarded functions (at most one, found at start through configuration mechanism #1):
 * - PIIX4 power management, 00:01.3 with ID 8086:7113 (Bochs, QEMU i440FX): PMBA, offsets
 *   40h-43h, all bits; PMIOSE, bit 0 of PMREGMISC (80h). PIIX4 datasheet, function 3.
 * - Intel LPC/eSPI bridge 00:1f.0 (vendor 8086, class 0601h: ICH, PCH up to the 9 series,
 *   QEMU q35's ICH9) or power management controller 00:1f.2 (vendor 8086, class 0580h: the
 *   PCHs since the 100 series, ABASE): the base at 40h-43h (bits 15:7, bit 0 reads 1) and
 *   ACPI_EN, bit 7 of 44h (ACPI_CNTL / ACTL) - only if that register's base is the FADT's
 *   PM1a_EVT_BLK (PM1_STS is at offset 0 of the ACPI block), so no unrelated register is
 *   ever held.
 *
 * What a write does: an OUT to the data ports 0xCFC-0xCFF while the address latch 0xCF8
 * (read from the hardware, so it is the one the chipset will use; only a 32-bit write to
 * 0xCF8 sets it) has its enable bit set and selects the guarded function - whatever bits
 * 30:24, so the check errs towards holding - has each guarded bit of the bytes it writes
 * replaced by the register's current value; every other bit goes to the hardware as the guest
 * wrote it, with the same width and port. Reads are not touched (they exit and pass through):
 * they return the real register, i.e. the kept value. The latch is system-wide, as on the
 * hardware: 32-bit writes to 0xCF8 and the data-port writes are done under one lock, so no
 * other vCPU re-aims the latch between the check and the write. A write that touches the
 * data ports and also a port outside 0xCFC-0xCFF (a misaligned OUT across 0xCFB/0xCFC or
 * 0xCFF/0xD00, which no configuration-space user issues) is dropped whole and logged.
 *
 * Not covered here: PCI Express memory-mapped configuration (ECAM, the MCFG table) reaches
 * the same registers and is not intercepted; chipsets other than those above; a PMC hidden
 * from configuration space (its base is then set and locked by the firmware, if at all).
 */
#include <hw.h>
#include <tessel/spinlock.h>
#include "log.h"
#include "pmbase.h"

#define CFG_ADDR  0xcf8
#define CFG_DATA  0xcfc
#define CFG_END   0xd00 /* first port past the data window */
#define CFG_EN    0x80000000u
#define CFG_FN(dev, fn) (CFG_EN | (u32)(dev) << 11 | (u32)(fn) << 8)
#define CFG_FN_MASK 0x80ffff00u /* enable, bus, device, function */

static u32 guarded;        /* CFG_FN of the guarded function (bus 0), 0 for none */
static u8 keep[256];       /* per configuration byte: the bits a write leaves as they are */
static spinlock_t cfg_lock = SPINLOCK_INIT;

static u32 cfg_read(u32 fn, unsigned reg)
{
	outl(CFG_ADDR, fn | (reg & 0xfc));
	return inl(CFG_DATA);
}

static void guard(u32 fn, const char *what, u32 id, unsigned en_off, u8 en_bit)
{
	guarded = fn;
	for (unsigned i = 0x40; i < 0x44; i++)
		keep[i] = 0xff;
	keep[en_off] = en_bit;
	u32 base = cfg_read(fn, 0x40), en = cfg_read(fn, en_off) >> 8 * (en_off & 3);
	log_info("pmbase: PCI 00:%02x.%x (%s, %04x:%04x): ACPI PM base register 40 (%x) and enable (register %x "
		 "bit %u, %s) kept as found", (fn >> 11) & 0x1f, (fn >> 8) & 7, what, id & 0xffff, id >> 16, base,
		 en_off, __builtin_ctz(en_bit), (en & en_bit) ? "set" : "clear");
}

void pmbase_init(const struct tessel_acpi_sleep *s)
{
	guarded = 0;
	for (unsigned i = 0; i < ARRAY_SIZE(keep); i++)
		keep[i] = 0;
	spin_lock(&cfg_lock);
	u32 latch = inl(CFG_ADDR);
	u32 piix4 = CFG_FN(1, 3), lpc = CFG_FN(31, 0), pmc = CFG_FN(31, 2);
	u32 id = cfg_read(piix4, 0);
	u16 evt = s->pm1a_sts;
	if (id == 0x71138086) {
		guard(piix4, "PIIX4 PM", id, 0x80, 0x01);
	} else {
		const u32 fns[] = { lpc, pmc };
		const u32 class[] = { 0x0601, 0x0580 };
		for (unsigned i = 0; i < ARRAY_SIZE(fns) && evt; i++) {
			id = cfg_read(fns[i], 0);
			u32 base = cfg_read(fns[i], 0x40);
			if ((id & 0xffff) == 0x8086 && cfg_read(fns[i], 8) >> 16 == class[i] && (base & 1) &&
			    (base & 0xff80) == evt) {
				guard(fns[i], i ? "Intel PMC" : "Intel LPC", id, 0x44, 0x80);
				break;
			}
		}
	}
	outl(CFG_ADDR, latch);
	spin_unlock(&cfg_lock);
	if (!guarded)
		log_warn("pmbase: no chipset ACPI base register known (PIIX4 PM 00:01.3, or an Intel LPC 00:1f.0 / PMC "
			 "00:1f.2 holding PM1a_EVT_BLK %x): a guest that moves the PM1 block through PCI configuration "
			 "space is not stopped", evt);
}

static void set_bit(u8 *a, u16 port)
{
	a[port / 8] |= (u8)(1U << (port % 8));
}

void pmbase_io_bitmap(u8 *a)
{
	if (!guarded)
		return;
	set_bit(a, CFG_ADDR); /* 0xCF9 (reset control) is intercepted anyway; explicit here */
	for (u16 p = CFG_DATA; p < CFG_END; p++)
		set_bit(a, p);
}

bool pmbase_out(u16 port, unsigned size, u32 v)
{
	unsigned end = (unsigned)port + size;
	if (!guarded || end <= CFG_ADDR || port >= CFG_END)
		return false;
	if (size < 4)
		v &= (1U << 8 * size) - 1;
	bool latch = port == CFG_ADDR && size == 4;
	if (!latch && end <= CFG_DATA)
		return false; /* bytes or words at 0xCF8-0xCFB: not the latch (0xCF9 is the reset port) */
	if (latch) {
		spin_lock(&cfg_lock);
		outl(CFG_ADDR, v);
		spin_unlock(&cfg_lock);
		return true;
	}
	if (port < CFG_DATA || end > CFG_END) {
		log_warn_rl("pmbase: guest wrote %x to port %x (%u bytes, across the PCI configuration data ports): "
			    "dropped", v, port, size);
		return true;
	}
	u32 w = v, reg = 0;
	bool held = false;
	spin_lock(&cfg_lock);
	u32 a = inl(CFG_ADDR);
	if ((a & CFG_FN_MASK) == guarded) {
		unsigned at = port - CFG_DATA; /* byte of the dword the write starts at */
		reg = (a & 0xfc) + at;
		u32 cur = 0;
		bool have = false;
		for (unsigned i = 0; i < size; i++) {
			u8 m = keep[reg + i];
			if (!m)
				continue;
			if (!have) {
				cur = inl(CFG_DATA);
				have = true;
			}
			u8 b = (u8)(w >> 8 * i), now = (u8)(cur >> 8 * (at + i));
			u8 nb = (u8)((b & ~m) | (now & m));
			if (nb != b) {
				w = (w & ~(0xffU << 8 * i)) | (u32)nb << 8 * i;
				held = true;
			}
		}
	}
	port_out(port, size, w);
	spin_unlock(&cfg_lock);
	if (held)
		log_warn_rl("pmbase: guest wrote %x to port %x (PCI 00:%02x.%x offset %x): the ACPI PM base and its "
			    "enable keep their value (%x written)", v, port, (guarded >> 11) & 0x1f, (guarded >> 8) & 7,
			    reg, w);
	return true;
}
