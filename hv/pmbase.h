/*
 * The chipset register that places the ACPI PM1 block in I/O space (hv/pmbase.c): a guest may
 * not move the block away from the ports hv/pm1.c intercepts, docs/ABI.md section 8.
 */
#ifndef HV_PMBASE_H
#define HV_PMBASE_H

#include <tessel/bootinfo.h>
#include <tessel/types.h>

/* Finds the PCI function holding the ACPI PM base (PIIX4 PM 00:01.3; an Intel LPC 00:1f.0 or
 * PMC 00:1f.2 whose base register holds PM1a_EVT_BLK) through configuration mechanism #1,
 * leaving the address latch 0xCF8 as it found it; logs what is guarded. */
void pmbase_init(const struct tessel_acpi_sleep *s);
/* With a function guarded: sets the I/O bitmap bits of 0xCF8 and 0xCFC-0xCFF (bitmap A). */
void pmbase_io_bitmap(u8 *a);
/* An OUT of `size` bytes of v at port. True if it was handled here (done, with the guarded
 * bits kept, or dropped); false if the caller goes on with it (not a configuration access,
 * or no function is guarded). */
bool pmbase_out(u16 port, unsigned size, u32 v);

#endif
