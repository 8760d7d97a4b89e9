/*
 * shellcheck.c: run from the UEFI shell after the hypervisor was started from the shell
 * (group "shell"): checks the signature and two hypercalls, reports TAP and returns to the
 * shell, so the script that ran it can show the shell is still alive.
 */
#include "guest.h"
#include <tessel.h>

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *systab)
{
	guest_init(image, systab);
	tap_plan(3);
	int present = tessel_present();
	tap_ok(present, "CPUID reports the Tessel signature after starting from the shell");
	if (!present) {
		/* VMCALL would #UD without a hypervisor. */
		tap_ok(0, "HC_NOP returns 0 (not called: no hypervisor)");
		tap_ok(0, "HC_QUERY reports version 1.2 (not called: no hypervisor)");
	} else {
		int64_t st = tessel_hc0(HC_NOP);
		tap_ok(st == 0, "HC_NOP returns 0 (got %lld)", (long long)st);
		uint32_t version = 0;
		st = tessel_query(&version, NULL, NULL);
		tap_ok(st == 0 && version == TESSEL_ABI_VERSION, "HC_QUERY reports version 1.2 (status %lld, 0x%x)",
		       (long long)st, version);
	}
	tap_done();
	serial_flush();
	return EFI_SUCCESS;
}
