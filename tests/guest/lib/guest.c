/*
 * guest.c: program setup and teardown (GNU-EFI globals, power-off) and small freestanding
 * helpers (memory, GUIDs, configuration tables) shared by the guest test programs.
 */
#include "guest.h"
#include "arch.h"

EFI_HANDLE guest_image;

void guest_init(EFI_HANDLE image, EFI_SYSTEM_TABLE *st)
{
	InitializeLib(image, st);
	guest_image = image;
	/* The UEFI watchdog would reset a long emulated test after 5 minutes. */
	uefi_call_wrapper(BS->SetWatchdogTimer, 4, 0, 0, 0, NULL);
}

void power_off(void)
{
	serial_flush();
	if (BS)
		uefi_call_wrapper(BS->Stall, 1, 20000);
	if (RT)
		uefi_call_wrapper(RT->ResetSystem, 4, EfiResetShutdown, EFI_SUCCESS, 0, NULL);
	/* Bochs: "Shutdown" on port 0x8900 ends the simulation (EMULATORS.md). */
	for (const char *p = "Shutdown"; *p; p++)
		outb(0x8900, (uint8_t)*p);
	serial_write("# power_off: no way to power off, halting\n");
	for (;;) {
		cpu_cli();
		cpu_hlt();
	}
}

void guest_finish(void)
{
	tap_done();
	power_off();
}

void mem_set(void *p, int v, uint64_t n)
{
	volatile uint8_t *b = p;
	while (n--)
		*b++ = (uint8_t)v;
}

void mem_copy(void *d, const void *s, uint64_t n)
{
	volatile uint8_t *db = d;
	const volatile uint8_t *sb = s;
	while (n--)
		*db++ = *sb++;
}

int mem_cmp(const void *a, const void *b, uint64_t n)
{
	const uint8_t *x = a, *y = b;
	for (; n; n--, x++, y++)
		if (*x != *y)
			return *x < *y ? -1 : 1;
	return 0;
}

int guid_eq(const EFI_GUID *a, const EFI_GUID *b)
{
	return mem_cmp(a, b, sizeof(*a)) == 0;
}

void *config_table(const EFI_GUID *guid)
{
	for (UINTN i = 0; i < ST->NumberOfTableEntries; i++)
		if (guid_eq(&ST->ConfigurationTable[i].VendorGuid, guid))
			return ST->ConfigurationTable[i].VendorTable;
	return NULL;
}
