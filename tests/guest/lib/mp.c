/*
 * mp.c: running code on application processors through the PI specification's
 * EFI_MP_SERVICES_PROTOCOL (PI 1.7 Vol. 2 ch. 13), which GNU-EFI does not define. Only the
 * members used here are typed precisely; the rest keep their slots. AP procedures must not
 * call UEFI services or print: they fill a result the BSP reports.
 */
#include "guest.h"

#define MP_GUID { 0x3fdda605, 0xa76e, 0x4f46, { 0xad, 0x29, 0x12, 0xf4, 0x53, 0x1b, 0x3d, 0x08 } }

typedef VOID(EFIAPI *EFI_AP_PROCEDURE)(VOID *arg);

typedef struct {
	UINT32 Package, Core, Thread;
} EFI_CPU_PHYSICAL_LOCATION;

typedef struct {
	UINT32 Package, Module, Tile, Die, Core, Thread;
} EFI_CPU_PHYSICAL_LOCATION2;

typedef struct {
	UINT64 ProcessorId; /* APIC ID */
	UINT32 StatusFlag;  /* bit 0 BSP, bit 1 enabled, bit 2 healthy */
	EFI_CPU_PHYSICAL_LOCATION Location;
	EFI_CPU_PHYSICAL_LOCATION2 ExtendedInformation; /* PI 1.7; sized for newer firmware */
} EFI_PROCESSOR_INFORMATION;

typedef struct _EFI_MP_SERVICES_PROTOCOL EFI_MP_SERVICES_PROTOCOL;
struct _EFI_MP_SERVICES_PROTOCOL {
	EFI_STATUS(EFIAPI *GetNumberOfProcessors)(EFI_MP_SERVICES_PROTOCOL *This, UINTN *total, UINTN *enabled);
	EFI_STATUS(EFIAPI *GetProcessorInfo)(EFI_MP_SERVICES_PROTOCOL *This, UINTN cpu, EFI_PROCESSOR_INFORMATION *info);
	EFI_STATUS(EFIAPI *StartupAllAPs)(EFI_MP_SERVICES_PROTOCOL *This, EFI_AP_PROCEDURE proc, BOOLEAN single_thread,
					  EFI_EVENT wait_event, UINTN timeout_us, VOID *arg, UINTN **failed);
	EFI_STATUS(EFIAPI *StartupThisAP)(EFI_MP_SERVICES_PROTOCOL *This, EFI_AP_PROCEDURE proc, UINTN cpu,
					  EFI_EVENT wait_event, UINTN timeout_us, VOID *arg, BOOLEAN *finished);
	EFI_STATUS(EFIAPI *SwitchBSP)(EFI_MP_SERVICES_PROTOCOL *This, UINTN cpu, BOOLEAN enable_old_bsp);
	EFI_STATUS(EFIAPI *EnableDisableAP)(EFI_MP_SERVICES_PROTOCOL *This, UINTN cpu, BOOLEAN enable, UINT32 *health);
	EFI_STATUS(EFIAPI *WhoAmI)(EFI_MP_SERVICES_PROTOCOL *This, UINTN *cpu);
};

static EFI_MP_SERVICES_PROTOCOL *mp;

static EFI_MP_SERVICES_PROTOCOL *mp_get(void)
{
	static EFI_GUID guid = MP_GUID;
	if (!mp && EFI_ERROR(uefi_call_wrapper(BS->LocateProtocol, 3, &guid, NULL, (void **)&mp)))
		mp = NULL;
	return mp;
}

unsigned mp_count(void)
{
	UINTN total = 0, enabled = 0;
	if (!mp_get() || EFI_ERROR(mp->GetNumberOfProcessors(mp, &total, &enabled)))
		return 0;
	return (unsigned)enabled;
}

unsigned mp_bsp(void)
{
	UINTN me = 0;
	if (!mp_get() || EFI_ERROR(mp->WhoAmI(mp, &me)))
		return 0;
	return (unsigned)me;
}

uint32_t mp_apic_id(unsigned cpu)
{
	EFI_PROCESSOR_INFORMATION info;
	if (!mp_get() || EFI_ERROR(mp->GetProcessorInfo(mp, cpu, &info)))
		return ~0u;
	return (uint32_t)info.ProcessorId;
}

/* The AP runs this with the MS ABI; it forwards to the test's SysV function. */
struct ap_call {
	mp_fn fn;
	void *arg;
};

static VOID EFIAPI ap_trampoline(VOID *p)
{
	struct ap_call *c = p;
	c->fn(c->arg);
}

EFI_STATUS mp_run_on(unsigned cpu, mp_fn fn, void *arg, uint64_t timeout_us)
{
	if (!mp_get())
		return EFI_UNSUPPORTED;
	struct ap_call c = { fn, arg };
	return mp->StartupThisAP(mp, ap_trampoline, cpu, NULL, (UINTN)timeout_us, &c, NULL);
}
