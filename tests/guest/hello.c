/*
 * hello.c: the smallest next stage. The no-VMX groups chain-load it to show that the loader
 * went on to the next stage; it reports one TAP point and powers off.
 */
#include "guest.h"
#include <tessel.h>

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *systab)
{
	guest_init(image, systab);
	tap_plan(1);
	tap_diag("hypervisor signature %s", tessel_present() ? "present" : "absent");
	tap_ok(1, "next stage ran");
	guest_finish();
}
