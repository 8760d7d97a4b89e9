/*
 * Taken over from the workplace reference recipe (shared/tools/bochs-linux), as that recipe
 * allows; the project carries its own copy.
 *
 * bxacpi loader: BOOTX64.EFI for OVMF-under-Bochs.
 *  1. OVMF gets its ACPI tables from QEMU fw_cfg, which Bochs lacks, so the OS
 *     sees no ACPI at all (no MADT => no SMP, no IOAPIC, no HPET, no poweroff).
 *     We build RSDP/XSDT/RSDT/FADT/FACS/MADT/HPET here, reuse the DSDT of the
 *     Bochs legacy BIOS (describes i440fx/PIIX3/PIIX4 of Bochs, incl. _S5),
 *     and install them as EFI configuration tables.
 *  2. Then LoadImage/StartImage \vmlinuz.efi with the command line taken
 *     from \cmdline.txt (no UEFI shell, no 5 s startup.nsh countdown).
 */
#include <efi.h>
#include <efilib.h>
#include "dsdt.h"   /* generated at build time from the installed Bochs BIOS image, see build.sh */

#pragma pack(1)
typedef struct { char sig[4]; UINT32 len; UINT8 rev; UINT8 csum; char oemid[6]; char oemtid[8];
                 UINT32 oemrev; char creator[4]; UINT32 crev; } SDT;
typedef struct { char sig[8]; UINT8 csum; char oemid[6]; UINT8 rev; UINT32 rsdt; UINT32 len;
                 UINT64 xsdt; UINT8 xcsum; UINT8 res[3]; } RSDP;
typedef struct { UINT8 asid, bitw, bito, accsz; UINT64 addr; } GAS;
typedef struct {
  SDT h;
  UINT32 firmware_ctrl, dsdt;
  UINT8 reserved0, pm_profile;
  UINT16 sci_int;
  UINT32 smi_cmd;
  UINT8 acpi_enable, acpi_disable, s4bios_req, pstate_cnt;
  UINT32 pm1a_evt, pm1b_evt, pm1a_cnt, pm1b_cnt, pm2_cnt, pm_tmr, gpe0, gpe1;
  UINT8 pm1_evt_len, pm1_cnt_len, pm2_cnt_len, pm_tmr_len, gpe0_len, gpe1_len, gpe1_base, cst_cnt;
  UINT16 p_lvl2_lat, p_lvl3_lat, flush_size, flush_stride;
  UINT8 duty_offset, duty_width, day_alrm, mon_alrm, century;
  UINT16 iapc_boot_arch;
  UINT8 reserved1;
  UINT32 flags;
  GAS reset_reg;
  UINT8 reset_value;
  UINT16 arm_boot_arch;
  UINT8 minor_version;
  UINT64 x_firmware_ctrl, x_dsdt;
  GAS x_pm1a_evt, x_pm1b_evt, x_pm1a_cnt, x_pm1b_cnt, x_pm2_cnt, x_pm_tmr, x_gpe0, x_gpe1;
} FADT;
typedef struct { char sig[4]; UINT32 len; UINT32 hw_sig; UINT32 waking; UINT32 global_lock;
                 UINT32 flags; UINT64 x_waking; UINT8 version; UINT8 res[31]; } FACS;
typedef struct { SDT h; UINT32 lapic_addr; UINT32 flags; } MADT;
typedef struct { UINT8 type, len, uid, apic_id; UINT32 flags; } MADT_LAPIC;
typedef struct { UINT8 type, len, id, res; UINT32 addr; UINT32 gsi_base; } MADT_IOAPIC;
typedef struct { UINT8 type, len, bus, src; UINT32 gsi; UINT16 flags; } MADT_ISO;
typedef struct { UINT8 type, len, uid; UINT16 flags; UINT8 lint; } MADT_NMI;
typedef struct { SDT h; UINT32 block_id; GAS base; UINT8 number; UINT16 min_tick; UINT8 prot; } HPET_T;
#pragma pack()

/* PI spec MP services protocol (only what we use) */
static EFI_GUID Acpi20Guid = ACPI_20_TABLE_GUID;
static EFI_GUID MpServicesGuid = { 0x3fdda605, 0xa76e, 0x4f46, { 0xad, 0x29, 0x12, 0xf4, 0x53, 0x1b, 0x3d, 0x08 } };
typedef struct { UINT64 ProcessorId; UINT32 StatusFlag; UINT32 Package, Core, Thread; UINT8 ext[64]; } MP_PROC_INFO;
typedef struct _MP_SERVICES {
  EFI_STATUS (EFIAPI *GetNumberOfProcessors)(struct _MP_SERVICES *, UINTN *, UINTN *);
  EFI_STATUS (EFIAPI *GetProcessorInfo)(struct _MP_SERVICES *, UINTN, MP_PROC_INFO *);
} MP_SERVICES;

static inline void outl(UINT16 p, UINT32 v) { __asm__ volatile("outl %0,%1" :: "a"(v), "Nd"(p)); }
static inline UINT32 inl(UINT16 p) { UINT32 v; __asm__ volatile("inl %1,%0" : "=a"(v) : "Nd"(p)); return v; }
static inline void outw(UINT16 p, UINT16 v) { __asm__ volatile("outw %0,%1" :: "a"(v), "Nd"(p)); }
static inline UINT16 inw(UINT16 p) { UINT16 v; __asm__ volatile("inw %1,%0" : "=a"(v) : "Nd"(p)); return v; }
static UINT32 pci_read32(int bus, int dev, int fn, int reg) {
  outl(0xcf8, 0x80000000u | (bus << 16) | (dev << 11) | (fn << 8) | (reg & 0xfc));
  return inl(0xcfc);
}

static void cpy(void *d, const void *s, UINTN n) { UINT8 *a = d; const UINT8 *b = s; while (n--) *a++ = *b++; }
static void fill(void *d, UINT8 v, UINTN n) { UINT8 *a = d; while (n--) *a++ = v; }
static UINT8 csum(const void *p, UINTN n) { const UINT8 *b = p; UINT8 s = 0; while (n--) s += *b++; return (UINT8)(0 - s); }
static void hdr(SDT *h, const char *sig, UINT32 len, UINT8 rev) {
  cpy(h->sig, sig, 4); h->len = len; h->rev = rev; h->csum = 0;
  cpy(h->oemid, "BXPC  ", 6); cpy(h->oemtid, "BXEFIACP", 8); h->oemrev = 1;
  cpy(h->creator, "BXLD", 4); h->crev = 1;
}
static void fin(SDT *h) { h->csum = 0; h->csum = csum(h, h->len); }
static GAS io_gas(UINT64 port, UINT8 bits) { GAS g; g.asid = 1; g.bitw = bits; g.bito = 0; g.accsz = 0; g.addr = port; return g; }

#define MAXCPU 64

static UINTN parse_uint(const CHAR8 *s) { UINTN v = 0; while (*s >= '0' && *s <= '9') v = v * 10 + (*s++ - '0'); return v; }

EFI_STATUS EFIAPI efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *systab)
{
  EFI_STATUS st;
  InitializeLib(image, systab);
  Print(L"bxacpi loader\n");

  EFI_LOADED_IMAGE *li;
  st = uefi_call_wrapper(BS->HandleProtocol, 3, image, &LoadedImageProtocol, (void **)&li);
  if (EFI_ERROR(st)) { Print(L"no loaded image: %r\n", st); return st; }

  /* ---- read \cmdline.txt ---- */
  static CHAR8 cmd[4096]; UINTN cmdlen = 0;
  EFI_FILE_HANDLE root = LibOpenRoot(li->DeviceHandle), fh;
  if (root && !EFI_ERROR(uefi_call_wrapper(root->Open, 5, root, &fh, L"\\cmdline.txt", EFI_FILE_MODE_READ, 0))) {
    cmdlen = sizeof(cmd) - 1;
    uefi_call_wrapper(fh->Read, 3, fh, &cmdlen, cmd);
    uefi_call_wrapper(fh->Close, 1, fh);
  }
  while (cmdlen && (cmd[cmdlen - 1] == '\n' || cmd[cmdlen - 1] == '\r' || cmd[cmdlen - 1] == ' ')) cmdlen--;
  cmd[cmdlen] = 0;

  /* optional "bxacpi.ncpus=N" / "bxacpi.off" in the command line */
  UINTN force_ncpu = 0; BOOLEAN acpi_off = FALSE;
  for (UINTN i = 0; i < cmdlen; i++) {
    if (!CompareMem(cmd + i, "bxacpi.ncpus=", 13)) force_ncpu = parse_uint(cmd + i + 13);
    if (!CompareMem(cmd + i, "bxacpi.off", 10)) acpi_off = TRUE;
  }

  /* ---- CPUs: from PI MP services (OVMF's CpuDxe found the APs by INIT-SIPI-SIPI) ---- */
  UINT32 apic_ids[MAXCPU]; UINTN ncpu = 0;
  MP_SERVICES *mp = NULL;
  if (!EFI_ERROR(uefi_call_wrapper(BS->LocateProtocol, 3, &MpServicesGuid, NULL, (void **)&mp)) && mp) {
    UINTN n = 0, en = 0;
    if (!EFI_ERROR(uefi_call_wrapper(mp->GetNumberOfProcessors, 3, mp, &n, &en))) {
      for (UINTN i = 0; i < n && ncpu < MAXCPU; i++) {
        MP_PROC_INFO pi;
        if (!EFI_ERROR(uefi_call_wrapper(mp->GetProcessorInfo, 3, mp, i, &pi)))
          apic_ids[ncpu++] = (UINT32)pi.ProcessorId;
      }
    }
  }
  if (ncpu == 0) { apic_ids[0] = (*(volatile UINT32 *)(UINTN)0xfee00020) >> 24; ncpu = 1; }
  if (force_ncpu) { for (UINTN i = 0; i < force_ncpu && i < MAXCPU; i++) apic_ids[i] = i; ncpu = force_ncpu; }
  Print(L"bxacpi: %d CPU(s), APIC ids:", ncpu);
  for (UINTN i = 0; i < ncpu; i++) Print(L" %d", apic_ids[i]);
  Print(L"\n");

  if (!acpi_off) {
    /* ---- platform facts ---- */
    UINT32 pmba = pci_read32(0, 1, 3, 0x40) & 0xffc0;          /* PIIX4 PM base (OVMF: 0xb000) */
    if (!pmba) pmba = 0xb000;
    UINT32 sci = pci_read32(0, 1, 3, 0x3c) & 0xff;             /* IRQ line OVMF gave the PM function */
    if (sci == 0 || sci >= 16) sci = 9;
    volatile UINT32 *ioapic = (volatile UINT32 *)(UINTN)0xfec00000;
    ioapic[0] = 0; UINT8 ioapic_id = (ioapic[4] >> 24) & 0xf;
    ioapic[0] = 1; UINT32 ioapic_maxred = (ioapic[4] >> 16) & 0xff;
    UINT32 hpet_id = *(volatile UINT32 *)(UINTN)0xfed00000;
    /* SMI_CMD=0 in FADT means "always in ACPI mode"; make it true (Bochs: SCI_EN in PM1_CNT) */
    outw(pmba + 4, inw(pmba + 4) | 1);
    Print(L"bxacpi: PMBA=0x%x SCI=%d IOAPIC id=%d pins=%d HPET id=0x%x\n", pmba, sci, ioapic_id, ioapic_maxred + 1, hpet_id);

    /* ---- allocate & lay out ---- */
    EFI_PHYSICAL_ADDRESS base = 0xffffffff;
    UINTN pages = 4;
    st = uefi_call_wrapper(BS->AllocatePages, 4, AllocateMaxAddress, EfiACPIReclaimMemory, pages, &base);
    if (EFI_ERROR(st)) { Print(L"AllocatePages: %r\n", st); return st; }
    UINT8 *m = (UINT8 *)(UINTN)base; fill(m, 0, pages * 4096);
    RSDP *rsdp = (RSDP *)(m + 0);          /* 36 */
    FACS *facs = (FACS *)(m + 64);          /* 64, 64-aligned */
    SDT *xsdt  = (SDT *)(m + 128);          /* 36 + 3*8 */
    SDT *rsdt  = (SDT *)(m + 192);          /* 36 + 3*4 */
    HPET_T *hpet = (HPET_T *)(m + 256);     /* 56 */
    FADT *fadt = (FADT *)(m + 320);         /* 244 */
    MADT *madt = (MADT *)(m + 576);         /* <= 44 + 64*8 + 12 + 2*10 + 6 */
    SDT *dsdt  = (SDT *)(m + 4096);

    cpy(dsdt, dsdt_aml, sizeof(dsdt_aml));

    cpy(facs->sig, "FACS", 4); facs->len = 64; facs->version = 1;

    hdr(&fadt->h, "FACP", sizeof(FADT), 4);
    fadt->firmware_ctrl = (UINT32)(UINTN)facs; fadt->dsdt = (UINT32)(UINTN)dsdt;
    fadt->x_firmware_ctrl = (UINTN)facs; fadt->x_dsdt = (UINTN)dsdt;
    fadt->pm_profile = 0;
    fadt->sci_int = sci;
    fadt->smi_cmd = 0;                      /* no SMM in OVMF here: never poke 0xb2 */
    fadt->pm1a_evt = pmba; fadt->pm1a_cnt = pmba + 4; fadt->pm_tmr = pmba + 8;
    fadt->pm1_evt_len = 4; fadt->pm1_cnt_len = 2; fadt->pm_tmr_len = 4;
    fadt->p_lvl2_lat = 0xfff; fadt->p_lvl3_lat = 0xffff;  /* no C2/C3 */
    fadt->century = 0x32;
    fadt->iapc_boot_arch = 0x3;             /* legacy devices + 8042 */
    fadt->flags = (1 << 0) | (1 << 2) | (1 << 4) | (1 << 5) | (1 << 10); /* WBINVD, C1, PWR/SLP btn as ctl method, RESET_REG */
    fadt->reset_reg = io_gas(0xcf9, 8); fadt->reset_value = 0x06;
    fadt->x_pm1a_evt = io_gas(pmba, 32); fadt->x_pm1a_cnt = io_gas(pmba + 4, 16); fadt->x_pm_tmr = io_gas(pmba + 8, 32);
    fin(&fadt->h);

    UINT8 *p = (UINT8 *)(madt + 1);
    for (UINTN i = 0; i < ncpu; i++) {
      MADT_LAPIC *l = (MADT_LAPIC *)p; l->type = 0; l->len = 8; l->uid = i; l->apic_id = apic_ids[i]; l->flags = 1; p += 8;
    }
    { MADT_IOAPIC *io = (MADT_IOAPIC *)p; io->type = 1; io->len = 12; io->id = ioapic_id; io->addr = 0xfec00000; io->gsi_base = 0; p += 12; }
    { MADT_ISO *o = (MADT_ISO *)p; o->type = 2; o->len = 10; o->bus = 0; o->src = 0; o->gsi = 2; o->flags = 0; p += 10; }
    { MADT_ISO *o = (MADT_ISO *)p; o->type = 2; o->len = 10; o->bus = 0; o->src = sci; o->gsi = sci; o->flags = 0xd; p += 10; }
    { MADT_NMI *n = (MADT_NMI *)p; n->type = 4; n->len = 6; n->uid = 0xff; n->flags = 0; n->lint = 1; p += 6; }
    hdr(&madt->h, "APIC", (UINT32)(p - (UINT8 *)madt), 1);
    madt->lapic_addr = 0xfee00000; madt->flags = 1; /* PCAT_COMPAT */
    fin(&madt->h);

    hdr(&hpet->h, "HPET", sizeof(HPET_T), 1);
    hpet->block_id = hpet_id; hpet->base.asid = 0; hpet->base.bitw = 64; hpet->base.addr = 0xfed00000;
    hpet->number = 0; hpet->min_tick = 0x80; hpet->prot = 0;
    fin(&hpet->h);

    UINT64 tabs[3] = { (UINTN)fadt, (UINTN)madt, (UINTN)hpet };
    hdr(xsdt, "XSDT", 36 + 3 * 8, 1); cpy(xsdt + 1, tabs, sizeof(tabs)); fin(xsdt);
    hdr(rsdt, "RSDT", 36 + 3 * 4, 1);
    for (int i = 0; i < 3; i++) ((UINT32 *)(rsdt + 1))[i] = (UINT32)tabs[i];
    fin(rsdt);

    cpy(rsdp->sig, "RSD PTR ", 8); cpy(rsdp->oemid, "BXPC  ", 6); rsdp->rev = 2;
    rsdp->rsdt = (UINT32)(UINTN)rsdt; rsdp->len = sizeof(RSDP); rsdp->xsdt = (UINTN)xsdt;
    rsdp->csum = csum(rsdp, 20); rsdp->xcsum = csum(rsdp, sizeof(RSDP));

    st = uefi_call_wrapper(BS->InstallConfigurationTable, 2, &Acpi20Guid, rsdp);
    if (!EFI_ERROR(st)) st = uefi_call_wrapper(BS->InstallConfigurationTable, 2, &AcpiTableGuid, rsdp);
    Print(L"bxacpi: RSDP at 0x%lx installed: %r\n", (UINT64)(UINTN)rsdp, st);
  }

  /* ---- chain-load the kernel ---- */
  static CHAR16 wcmd[4096];
  for (UINTN i = 0; i <= cmdlen; i++) wcmd[i] = cmd[i];
  EFI_DEVICE_PATH *dp = FileDevicePath(li->DeviceHandle, L"\\vmlinuz.efi");
  EFI_HANDLE kh;
  st = uefi_call_wrapper(BS->LoadImage, 6, FALSE, image, dp, NULL, 0, &kh);
  if (EFI_ERROR(st)) { Print(L"LoadImage \\vmlinuz.efi: %r\n", st); return st; }
  EFI_LOADED_IMAGE *kli;
  uefi_call_wrapper(BS->HandleProtocol, 3, kh, &LoadedImageProtocol, (void **)&kli);
  kli->LoadOptions = wcmd; kli->LoadOptionsSize = (UINT32)((cmdlen + 1) * sizeof(CHAR16));
  Print(L"bxacpi: starting vmlinuz.efi %a\n", cmd);
  st = uefi_call_wrapper(BS->StartImage, 3, kh, NULL, NULL);
  Print(L"StartImage returned %r\n", st);
  return st;
}
