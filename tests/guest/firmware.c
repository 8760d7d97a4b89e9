/*
 * firmware.c: checks that the firmware keeps working under the hypervisor: file services on
 * the program's own volume (create, write, read back, query, delete), console output, memory
 * allocation, Stall, timer events (one-shot with WaitForEvent, periodic with a notify
 * function, CheckEvent) and GetTime. All points pass without a hypervisor too; the program
 * only reports which case it ran in.
 */
#include "guest.h"
#include "arch.h"
#include <tessel.h>

#define N_TESTS 15
#define S(st) ((unsigned long long)(st)) /* fmt has no %r */
#define FILE_BYTES 8192
#define TEST_FILE L"\\tests\\fwtest.tmp"

static uint8_t wbuf[FILE_BYTES], rbuf[FILE_BYTES];

static void test_files(void)
{
	EFI_LOADED_IMAGE *li = NULL;
	EFI_FILE_IO_INTERFACE *fs = NULL;
	EFI_FILE_HANDLE root = NULL, f = NULL;
	EFI_STATUS st = uefi_call_wrapper(BS->HandleProtocol, 3, guest_image, &LoadedImageProtocol, (void **)&li);
	if (!EFI_ERROR(st))
		st = uefi_call_wrapper(BS->HandleProtocol, 3, li->DeviceHandle, &FileSystemProtocol, (void **)&fs);
	if (!tap_ok(!EFI_ERROR(st), "LoadedImage->DeviceHandle has a simple file system (0x%llx)", S(st))) {
		for (int i = 0; i < 6; i++)
			tap_ok(0, "file check %d (no file system)", i + 2);
		return;
	}
	st = uefi_call_wrapper(fs->OpenVolume, 2, fs, &root);
	tap_ok(!EFI_ERROR(st), "OpenVolume (0x%llx)", S(st));
	if (EFI_ERROR(st)) {
		for (int i = 0; i < 5; i++)
			tap_ok(0, "file check %d (no volume)", i + 3);
		return;
	}
	for (unsigned i = 0; i < FILE_BYTES; i++)
		wbuf[i] = (uint8_t)(i * 7 + (i >> 8));

	st = uefi_call_wrapper(root->Open, 5, root, &f, TEST_FILE,
			       EFI_FILE_MODE_CREATE | EFI_FILE_MODE_READ | EFI_FILE_MODE_WRITE, 0);
	tap_ok(!EFI_ERROR(st), "create \\tests\\fwtest.tmp (0x%llx)", S(st));
	UINTN n = FILE_BYTES;
	if (!EFI_ERROR(st)) {
		st = uefi_call_wrapper(f->Write, 3, f, &n, wbuf);
		uefi_call_wrapper(f->Close, 1, f);
		f = NULL;
	}
	tap_ok(!EFI_ERROR(st) && n == FILE_BYTES, "write %u bytes (0x%llx, wrote %llu)", FILE_BYTES, S(st),
	       (unsigned long long)n);

	n = FILE_BYTES;
	mem_set(rbuf, 0, sizeof(rbuf));
	st = uefi_call_wrapper(root->Open, 5, root, &f, TEST_FILE, EFI_FILE_MODE_READ | EFI_FILE_MODE_WRITE, 0);
	if (!EFI_ERROR(st))
		st = uefi_call_wrapper(f->Read, 3, f, &n, rbuf);
	tap_ok(!EFI_ERROR(st) && n == FILE_BYTES && mem_cmp(rbuf, wbuf, FILE_BYTES) == 0,
	       "read back the same %u bytes (0x%llx, read %llu)", FILE_BYTES, S(st), (unsigned long long)n);

	EFI_FILE_INFO *info = f ? LibFileInfo(f) : NULL;
	tap_ok(info && info->FileSize == FILE_BYTES, "GetInfo reports size %u (%llu)", FILE_BYTES,
	       (unsigned long long)(info ? info->FileSize : 0));
	if (info)
		FreePool(info);

	if (f) {
		st = uefi_call_wrapper(f->Delete, 1, f); /* closes the handle */
		f = NULL;
	}
	EFI_FILE_HANDLE g = NULL;
	EFI_STATUS st2 = uefi_call_wrapper(root->Open, 5, root, &g, TEST_FILE, EFI_FILE_MODE_READ, 0);
	if (!EFI_ERROR(st2))
		uefi_call_wrapper(g->Close, 1, g);
	tap_ok(!EFI_ERROR(st) && st2 == EFI_NOT_FOUND, "delete the file; opening it again fails (0x%llx, 0x%llx)", S(st),
	       S(st2));
	uefi_call_wrapper(root->Close, 1, root);
}

static volatile unsigned ticks;

static VOID EFIAPI tick(EFI_EVENT ev, VOID *ctx)
{
	(void)ev;
	(void)ctx;
	ticks++;
}

static void test_timers(void)
{
	uint64_t t0 = rdtsc();
	EFI_STATUS st = uefi_call_wrapper(BS->Stall, 1, 10000);
	uint64_t dt = rdtsc() - t0;
	tap_ok(!EFI_ERROR(st) && dt > 0, "Stall(10 ms) returns (0x%llx, %llu TSC ticks)", S(st), (unsigned long long)dt);

	EFI_EVENT ev = NULL;
	st = uefi_call_wrapper(BS->CreateEvent, 5, EVT_TIMER, TPL_CALLBACK, NULL, NULL, &ev);
	if (!EFI_ERROR(st))
		st = uefi_call_wrapper(BS->SetTimer, 3, ev, TimerRelative, 500000); /* 50 ms */
	EFI_STATUS early = EFI_ERROR(st) ? st : uefi_call_wrapper(BS->CheckEvent, 1, ev);
	tap_ok(early == EFI_NOT_READY, "CheckEvent on a fresh 50 ms timer says not ready (0x%llx)", S(early));
	UINTN idx = 99;
	if (!EFI_ERROR(st))
		st = uefi_call_wrapper(BS->WaitForEvent, 3, 1, &ev, &idx);
	tap_ok(!EFI_ERROR(st) && idx == 0, "one-shot timer event fires (WaitForEvent 0x%llx, index %llu)", S(st),
	       (unsigned long long)idx);
	if (ev)
		uefi_call_wrapper(BS->CloseEvent, 1, ev);

	ev = NULL;
	ticks = 0;
	st = uefi_call_wrapper(BS->CreateEvent, 5, EVT_TIMER | EVT_NOTIFY_SIGNAL, TPL_CALLBACK, tick, NULL, &ev);
	if (!EFI_ERROR(st))
		st = uefi_call_wrapper(BS->SetTimer, 3, ev, TimerPeriodic, 100000); /* 10 ms */
	for (int i = 0; i < 200 && ticks < 3 && !EFI_ERROR(st); i++)
		uefi_call_wrapper(BS->Stall, 1, 5000);
	tap_ok(!EFI_ERROR(st) && ticks >= 3, "periodic timer notify function runs (0x%llx, %u ticks)", S(st), ticks);
	if (ev) {
		uefi_call_wrapper(BS->SetTimer, 3, ev, TimerCancel, 0);
		uefi_call_wrapper(BS->CloseEvent, 1, ev);
	}
}

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *systab)
{
	guest_init(image, systab);
	tap_plan(N_TESTS);
	tap_diag("running %s the Tessel hypervisor", tessel_present() ? "under" : "without");

	test_files();

	EFI_STATUS st = uefi_call_wrapper(ST->ConOut->OutputString, 2, ST->ConOut,
					  L"firmware.efi: console output works\r\n");
	tap_ok(!EFI_ERROR(st), "ConOut->OutputString (0x%llx)", S(st));

	void *pool = NULL;
	st = uefi_call_wrapper(BS->AllocatePool, 3, EfiLoaderData, 1 << 20, &pool);
	if (!EFI_ERROR(st)) {
		mem_set(pool, 0xa5, 1 << 20);
		st = uefi_call_wrapper(BS->FreePool, 1, pool);
	}
	tap_ok(!EFI_ERROR(st), "AllocatePool / FreePool 1 MiB (0x%llx)", S(st));
	EFI_PHYSICAL_ADDRESS pa = 0;
	st = uefi_call_wrapper(BS->AllocatePages, 4, AllocateAnyPages, EfiLoaderData, 16, &pa);
	if (!EFI_ERROR(st))
		st = uefi_call_wrapper(BS->FreePages, 2, pa, 16);
	tap_ok(!EFI_ERROR(st), "AllocatePages / FreePages 16 pages (0x%llx)", S(st));

	test_timers();

	EFI_TIME tm;
	mem_set(&tm, 0, sizeof(tm));
	st = uefi_call_wrapper(RT->GetTime, 2, &tm, NULL);
	tap_ok(!EFI_ERROR(st) && tm.Year >= 2000 && tm.Year < 2200 && tm.Month >= 1 && tm.Month <= 12 && tm.Day >= 1 &&
		       tm.Day <= 31 && tm.Hour < 24 && tm.Minute < 60 && tm.Second < 60,
	       "GetTime returns a plausible date (0x%llx, %u-%02u-%02u %02u:%02u:%02u)", S(st), tm.Year, tm.Month, tm.Day,
	       tm.Hour, tm.Minute, tm.Second);
	guest_finish();
}
