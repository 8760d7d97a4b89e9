/*
 * The ACPI PM1 sleep registers (hv/pm1.c): sleep requests that would take the processors
 * out from under the hypervisor (S3) are refused, docs/ABI.md section 8.
 */
#ifndef HV_PM1_H
#define HV_PM1_H

#include <tessel/bootinfo.h>
#include <tessel/types.h>

/* Takes the loader's findings (copied); logs what is guarded. */
void pm1_init(const struct tessel_acpi_sleep *s);
/* Sets the I/O bitmap bits (A: ports 0-7FFF, B: 8000-FFFF) of the PM1 registers. */
void pm1_io_bitmap(u8 *a, u8 *b);
/* An OUT of `size` bytes of v at port: true if it is a refused sleep request (the caller
 * drops the whole write); false if it goes to the hardware as it is. */
bool pm1_out(u16 port, unsigned size, u32 v);
/* An IN of `size` bytes from port that read v from the hardware: v as the guest sees it
 * (WAK_STS set after a refused request until the guest clears it). */
u32 pm1_in(u16 port, unsigned size, u32 v);

#endif
