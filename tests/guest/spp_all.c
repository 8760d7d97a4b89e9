/*
 * spp_all.c: all sub-page protection suites in one boot (the SPP groups chain-load only this
 * program; each suite also builds alone as spp_<suite>.efi). The SMP suite runs last: it
 * depends on the firmware starting a function on an AP.
 */
#define SPP_ALL
#include "spp_basic.c"
#include "spp_insn.c"
#include "spp_events.c"
#include "spp_errors.c"
#include "spp_large.c"
#include "spp_smp.c"

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *st)
{
	spp_start(image, st,
		  SPP_BASIC_POINTS + SPP_INSN_POINTS + SPP_EVENTS_POINTS + SPP_ERRORS_POINTS + SPP_LARGE_POINTS +
			  SPP_SMP_POINTS);
	suite_basic();
	suite_insn();
	suite_events();
	suite_errors();
	suite_large();
	suite_smp();
	guest_finish();
}
