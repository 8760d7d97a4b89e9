/*
 * The loader's view of ACPI sleep (docs/ABI.md section 8): which I/O ports request a sleep
 * state, which sleep types may pass, and hiding S3 from the OS. Pure and freestanding (no UEFI
 * and no libc): the tables are read through pointers, as the loader sees physical memory
 * identity-mapped, and the same code runs in the host unit test (tests/unit/test_pm1.c).
 */
#ifndef BOOT_ACPI_SLEEP_H
#define BOOT_ACPI_SLEEP_H

#include <tessel/bootinfo.h>

/* What acpi_sleep_scan found, for the loader's log line. */
struct acpi_sleep_scan {
	bool fadt;          /* an FADT was found */
	bool hw_reduced;    /* FADT flag HW_REDUCED_ACPI: SLEEP_CONTROL_REG instead of PM1 */
	bool mmio;          /* the sleep control register is memory-mapped: not intercepted */
	u8 known;           /* bit n: the value of _Sn_ was read from a Name package (n = 0-5) */
	u8 typ_a[6], typ_b[6];
	unsigned s3_names;  /* _S3_ name segments in the DSDT and SSDTs (renamed by acpi_sleep_hide) */
	unsigned tables;    /* DSDT and SSDTs scanned */
};

/* Reads the FADT behind the ACPI RSDP at `rsdp` (0: none) and the _Sx_ packages of the DSDT
 * and SSDTs; fills *out (nothing guarded if the tables say too little) and *scan. */
void acpi_sleep_scan(u64 rsdp, struct tessel_acpi_sleep *out, struct acpi_sleep_scan *scan);

/* Renames every _S3_ name segment of the DSDT and SSDTs to TS3_ and fixes each table's
 * checksum, so the OS does not find \_S3 and does not offer S3 (ACPI 6.5 section 7.4.2: a
 * sleep state without its \_Sx object is not supported). Returns the number renamed. */
unsigned acpi_sleep_hide(u64 rsdp);

/* Without an FADT (OVMF on Bochs installs no ACPI tables): the PIIX4 power management
 * function, from its PCI identifier (00:01.3, register 0) and I/O base register (0x40) and
 * PMIOSE (register 0x80 bit 0). False if it is not a PIIX4 with its I/O block enabled. */
bool acpi_sleep_piix4(u32 pci_id, u32 pmba, u32 pmregmisc, struct tessel_acpi_sleep *out);

#endif
