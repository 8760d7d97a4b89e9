/*
 * The Tessel UEFI loader. It reads its configuration (tessel.cfg beside it, overridden by
 * the UEFI shell command line), checks for VMX, reserves the hypervisor's region, loads the
 * core into it, starts the core on every processor (UEFI MP services) and then - itself
 * now a guest - chain-loads the next stage. It knows UEFI; it knows nothing of VMX
 * internals beyond the one-line availability check shared with the core.
 */
#include <stdarg.h>
#include <efi.h>
#include <efilib.h>
#include <hw.h>
#include <arch/ept.h>
#include "boot/acpi_sleep.h"
#include "boot/config.h"
#include "boot/efi_mp.h"
#include "boot/loader.h"
#include <tessel/iommu_test.h>
#include "drivers/uart.h"
#include "hv/vmx_caps.h"
#include "lib/fmt.h"

#define TESSEL_REGION_GUID \
	{ 0x7e5d3a10, 0x4c1b, 0x4b8e, { 0x9a, 0x6f, 0x2d, 0x51, 0x0c, 0x3e, 0x77, 0x21 } }
#define TESSEL_REGION_MAGIC 0x4e4f494745524c54ULL /* "TLREGION" */

struct tessel_region_info { u64 magic; u64 base; u64 size; };

extern const u8 core_elf_start[], core_elf_end[];

static EFI_HANDLE image_handle;
static EFI_LOADED_IMAGE *loaded_image;
static struct tessel_config cfg;

void say(const char *fmt, ...)
{
	char buf[320];
	CHAR16 wbuf[322];
	va_list ap;
	va_start(ap, fmt);
	fmt_vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	UINTN n = 0;
	for (; buf[n]; n++)
		wbuf[n] = (CHAR16)(u8)buf[n];
	wbuf[n++] = L'\r';
	wbuf[n++] = L'\n';
	wbuf[n] = 0;
	ST->ConOut->OutputString(ST->ConOut, wbuf);
	uart_write(UART_COM1, buf, n - 2);
	uart_putc(UART_COM1, '\n');
}

EFI_STATUS read_file(EFI_HANDLE device, const CHAR16 *path, char **data, UINTN *size)
{
	EFI_FILE_HANDLE root = LibOpenRoot(device), fh;
	if (!root)
		return EFI_NOT_FOUND;
	EFI_STATUS st = root->Open(root, &fh, (CHAR16 *)path, EFI_FILE_MODE_READ, 0);
	root->Close(root);
	if (EFI_ERROR(st))
		return st;
	EFI_FILE_INFO *info = LibFileInfo(fh);
	if (!info) {
		fh->Close(fh);
		return EFI_DEVICE_ERROR;
	}
	UINTN len = info->FileSize;
	FreePool(info);
	char *buf = AllocatePool(len + 1);
	if (!buf) {
		fh->Close(fh);
		return EFI_OUT_OF_RESOURCES;
	}
	st = fh->Read(fh, &len, buf);
	fh->Close(fh);
	if (EFI_ERROR(st)) {
		FreePool(buf);
		return st;
	}
	buf[len] = 0;
	*data = buf;
	*size = len;
	return EFI_SUCCESS;
}

static void to_ascii(const CHAR16 *w, char *out, size_t len)
{
	size_t i = 0;
	for (; w[i] && i + 1 < len; i++)
		out[i] = w[i] < 0x80 ? (char)w[i] : 0x7f; /* DEL: rejected by the parser, never accepted */
	out[i] = 0;
}

/* "\EFI\BOOT\BOOTX64.EFI" -> "\EFI\BOOT\tessel.cfg" */
static void config_path(CHAR16 *out, size_t len)
{
	CHAR16 *self = DevicePathToStr(loaded_image->FilePath);
	size_t n = 0, slash = 0;
	for (; self && self[n] && n + 12 < len; n++) {
		out[n] = self[n] == L'/' ? L'\\' : self[n];
		if (out[n] == L'\\')
			slash = n + 1;
	}
	const CHAR16 *name = L"tessel.cfg";
	for (size_t i = 0; name[i]; i++)
		out[slash++] = name[i];
	out[slash] = 0;
	if (self)
		FreePool(self);
}

static EFI_STATUS load_config(void)
{
	char err[CONFIG_ERR_MAX];
	CHAR16 wpath[256];
	char path[256];
	config_defaults(&cfg);
	config_path(wpath, ARRAY_SIZE(wpath));
	to_ascii(wpath, path, sizeof(path));
	char *text;
	UINTN size;
	EFI_STATUS st = read_file(loaded_image->DeviceHandle, wpath, &text, &size);
	if (st == EFI_SUCCESS) {
		int r = config_parse_file(&cfg, text, size, path, err, sizeof(err));
		FreePool(text);
		if (r) {
			say("tessel: config error: %s", err);
			return EFI_INVALID_PARAMETER;
		}
	} else if (st != EFI_NOT_FOUND) {
		say("tessel: config error: %s: cannot be read (EFI status %lx)", path, (unsigned long)st);
		return EFI_INVALID_PARAMETER;
	}

	CHAR16 **wargv;
	INTN argc = GetShellArgcArgv(image_handle, &wargv);
	if (argc > 1) {
		static char abuf[16][CONFIG_LINE_MAX + 2]; /* +2: an overlong argument reaches the parser */
		const char *argv[16];
		if (argc - 1 > (INTN)ARRAY_SIZE(argv)) {
			say("tessel: config error: command line: too many arguments (at most %u)", (unsigned)ARRAY_SIZE(argv));
			return EFI_INVALID_PARAMETER;
		}
		for (INTN i = 1; i < argc; i++) {
			to_ascii(wargv[i], abuf[i - 1], sizeof(abuf[0]));
			argv[i - 1] = abuf[i - 1];
		}
		if (config_parse_args(&cfg, (int)(argc - 1), argv, err, sizeof(err))) {
			say("tessel: config error: %s", err);
			return EFI_INVALID_PARAMETER;
		}
	}
	char line[CONFIG_FORMAT_MAX];
	config_format(&cfg, line, sizeof(line));
	say("tessel: configuration: %s", line);
	return EFI_SUCCESS;
}

/* ---- loading the core ---- */

#define EI_NIDENT 16
typedef struct { u8 ident[EI_NIDENT]; u16 type, machine; u32 version; u64 entry, phoff, shoff; u32 flags;
		 u16 ehsize, phentsize, phnum, shentsize, shnum, shstrndx; } Elf64_Ehdr;
typedef struct { u32 type, flags; u64 offset, vaddr, paddr, filesz, memsz, align; } Elf64_Phdr;
#define PT_LOAD 1

/* Copies the PT_LOAD segments to region+offset; returns the image size or 0 if malformed. */
static u64 load_core(u64 region, u64 region_size, u64 *entry)
{
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)core_elf_start;
	u64 elf_size = (u64)(core_elf_end - core_elf_start);
	if (elf_size < sizeof(*eh) || eh->ident[0] != 0x7f || eh->ident[1] != 'E' || eh->ident[4] != 2 ||
	    eh->machine != 62 || eh->phentsize != sizeof(Elf64_Phdr) || eh->phoff + eh->phnum * sizeof(Elf64_Phdr) > elf_size)
		return 0;
	u64 end = 0;
	for (u16 i = 0; i < eh->phnum; i++) {
		const Elf64_Phdr *ph = (const Elf64_Phdr *)(core_elf_start + eh->phoff) + i;
		if (ph->type != PT_LOAD)
			continue;
		u64 off = ph->vaddr - TESSEL_CORE_VBASE;
		if (ph->vaddr < TESSEL_CORE_VBASE || off + ph->memsz > region_size / 2 || ph->filesz > ph->memsz ||
		    ph->offset + ph->filesz > elf_size)
			return 0;
		CopyMem((void *)(region + off), (void *)(core_elf_start + ph->offset), ph->filesz);
		ZeroMem((void *)(region + off + ph->filesz), ph->memsz - ph->filesz);
		end = MAX(end, off + ph->memsz);
	}
	*entry = eh->entry;
	return ALIGN_UP(end, PAGE_SIZE);
}

/* Bootstrap page tables for CORE_OP_INIT: the firmware's lower-half mappings plus the core
 * image at its link address. The core replaces them with its own before any CPU starts. */
static u64 bootstrap_tables(u64 *next_free, u64 image_pa, u64 image_size)
{
	u64 *pml4 = (u64 *)*next_free, *pdpt = pml4 + 512, *pd = pdpt + 512, *pt = pd + 512;
	u64 pts = ALIGN_UP(image_size, SZ_2M) / SZ_2M;
	*next_free += (3 + pts) * PAGE_SIZE;
	ZeroMem(pml4, (3 + pts) * PAGE_SIZE);
	const u64 *fw = (const u64 *)(read_cr3() & 0x000ffffffffff000ULL);
	for (int i = 0; i < 256; i++)
		pml4[i] = fw[i];
	pml4[PT_INDEX(TESSEL_CORE_VBASE, 4)] = (u64)(uintptr_t)pdpt | 3;
	pdpt[PT_INDEX(TESSEL_CORE_VBASE, 3)] = (u64)(uintptr_t)pd | 3;
	for (u64 off = 0; off < image_size; off += PAGE_SIZE) {
		u64 *t = pt + (off / SZ_2M) * 512;
		pd[PT_INDEX(TESSEL_CORE_VBASE + off, 2)] = (u64)(uintptr_t)t | 3;
		t[PT_INDEX(TESSEL_CORE_VBASE + off, 1)] = (image_pa + off) | 3;
	}
	return (u64)(uintptr_t)pml4;
}

/* Fills the boot information's RAM ranges; false when the region is not wholly reserved in
 * the firmware's map (tessel_region_cover), which the OS could then reclaim. */
static bool fill_memory_map(struct tessel_boot_info *bi)
{
	UINTN count, key, dsize;
	UINT32 dver;
	EFI_MEMORY_DESCRIPTOR *map = LibMemoryMap(&count, &key, &dsize, &dver);
	u64 reserved = 0, other = 0;
	bi->mem_count = 0;
	bi->mem_dropped = 0;
	for (UINTN i = 0; map && i < count; i++) {
		EFI_MEMORY_DESCRIPTOR *d = (EFI_MEMORY_DESCRIPTOR *)((u8 *)map + i * dsize);
		tessel_mem_add(bi, d->PhysicalStart, d->NumberOfPages, d->Type);
		tessel_region_cover(bi->region_base, bi->region_size, d->PhysicalStart, d->NumberOfPages, d->Type,
				    &reserved, &other);
	}
	if (map)
		FreePool(map);
	if (reserved != bi->region_size || other) {
		say("tessel: the region %lx-%lx is not reserved in the firmware's memory map (%lu bytes reserved, "
		    "%lu of other types): the OS could reclaim it; not starting", (unsigned long)bi->region_base,
		    (unsigned long)(bi->region_base + bi->region_size), (unsigned long)reserved, (unsigned long)other);
		return false;
	}
	if (bi->mem_dropped)
		say("tessel: the memory map has more than %u separate RAM ranges: %u left out "
		    "(the hypervisor treats them as not RAM)", TESSEL_MAX_MEM_RANGES, bi->mem_dropped);
	return true;
}

static u64 find_rsdp(void)
{
	EFI_GUID acpi20 = ACPI_20_TABLE_GUID;
	for (UINTN i = 0; i < ST->NumberOfTableEntries; i++)
		if (!CompareGuid(&ST->ConfigurationTable[i].VendorGuid, &acpi20))
			return (u64)(uintptr_t)ST->ConfigurationTable[i].VendorTable;
	return 0;
}

static u32 pci_cfg_read(unsigned dev, unsigned fn, unsigned reg)
{
	outl(0xcf8, 0x80000000U | dev << 11 | fn << 8 | (reg & 0xfc));
	return inl(0xcfc);
}

/* The ACPI sleep registers and sleep types for the core (boot/acpi_sleep.c, hv/pm1.c,
 * docs/ABI.md section 8): from the FADT and the \_Sx packages, or without an FADT from the
 * PIIX4 power management function (OVMF on Bochs installs no ACPI tables). */
static void find_sleep(struct tessel_boot_info *bi)
{
	struct tessel_acpi_sleep *o = &bi->sleep;
	struct acpi_sleep_scan s;
	acpi_sleep_scan(bi->acpi_rsdp, o, &s);
	if (!s.fadt) {
		if (acpi_sleep_piix4(pci_cfg_read(1, 3, 0), pci_cfg_read(1, 3, 0x40), pci_cfg_read(1, 3, 0x80), o))
			say("tessel: ACPI sleep: no FADT; PIIX4 PM1a_CNT %x PM1a_STS %x; sleep types passed %x; "
			    "S3 (SLP_TYP %u) is refused", o->pm1a_cnt, o->pm1a_sts, o->allow_a, o->s3_a);
		else
			say("tessel: ACPI sleep: no FADT and no PIIX4: sleep requests (S3) are not intercepted");
		return;
	}
	char sx[64];
	size_t n = 0;
	sx[0] = 0;
	for (unsigned i = 0; i <= 5; i++)
		if (s.known & (1U << i))
			n += fmt_snprintf(sx + n, sizeof(sx) - n, " S%u=%u/%u", i, s.typ_a[i], s.typ_b[i]);
	say("tessel: ACPI sleep: FADT%s PM1a_CNT %x PM1b_CNT %x PM1a_STS %x PM1b_STS %x; %u tables, \\_Sx packages:%s",
	    s.hw_reduced ? " (hardware-reduced: sleep control/status registers)" : "", o->pm1a_cnt, o->pm1b_cnt,
	    o->pm1a_sts, o->pm1b_sts, s.tables, n ? sx : " none");
	if (!o->pm1a_cnt && !o->pm1b_cnt)
		say("tessel: ACPI sleep: %s: sleep requests (S3) are not intercepted",
		    s.mmio ? "the sleep control register is memory-mapped" :
		    !(s.known & 0x28) ? "neither \\_S3 nor \\_S5 could be read" : "no sleep control register");
	else
		say("tessel: ACPI sleep: sleep types passed %x/%x; %s", o->allow_a, o->allow_b,
		    o->s3_a != 0xff ? "S3 is refused" : "S3's type is unknown, every type but those is refused");
}

/* ---- starting the processors ---- */

static struct tessel_launch launch_state[TESSEL_MAX_CPUS];
static volatile s64 launch_result[TESSEL_MAX_CPUS];
static u64 host_cr3, core_entry_va;

static EFIAPI void ap_start(void *arg)
{
	UINTN i = (UINTN)arg;
	launch_result[i] = tessel_launch(host_cr3, core_entry_va, CORE_OP_CPU_START, i, &launch_state[i]);
}

static EFIAPI void ap_leave(void *arg)
{
	UINTN i = (UINTN)arg;
	launch_result[i] = tessel_leave();
}

/* A loader-only hypercall (include/tessel/bootinfo.h), from the guest the loader now is. */
static s64 tessel_vmcall(u64 nr)
{
	u64 rax = nr;
	__asm__ __volatile__("vmcall" : "+a"(rax) : : "memory", "cc");
	return (s64)rax;
}

static const char *status_name(s64 r)
{
	switch (-r) {
	case ENODEV: return "the processor lacks a required VMX feature (see the log)";
	case ENOMEM: return "the region is too small (raise heap=)";
	case EINVAL: return "the loader and the core disagree on the boot information";
	case EIO: return "VMX operation could not be entered (see the log)";
	case EOPNOTSUPP: return "iommu=on and DMA remapping cannot be set up (see the log)";
	default: return "unknown error";
	}
}

/* The hypervisor's region with the core loaded into it and its boot information. */
struct core_region {
	u64 region, pages;
	struct tessel_boot_info *bi;
	u64 boot_cr3;
};

static const EFI_GUID region_guid = TESSEL_REGION_GUID;

static s64 load_region(struct core_region *cr, UINTN ncpu, UINTN bsp, EFI_MP_SERVICES_PROTOCOL *mp)
{
	u64 pages = (u64)cfg.heap_mib * (SZ_1M / PAGE_SIZE);
	EFI_PHYSICAL_ADDRESS raw = 0;
	u64 slack = SZ_2M / PAGE_SIZE;
	if (EFI_ERROR(BS->AllocatePages(AllocateAnyPages, EfiReservedMemoryType, pages + slack, &raw))) {
		say("tessel: cannot reserve %u MiB for the hypervisor", cfg.heap_mib);
		return -ENOMEM;
	}
	u64 region = ALIGN_UP(raw, SZ_2M), size = pages * PAGE_SIZE;
	if (region > raw)
		BS->FreePages(raw, (region - raw) / PAGE_SIZE);
	if (raw + (pages + slack) * PAGE_SIZE > region + size)
		BS->FreePages(region + size, (raw + (pages + slack) * PAGE_SIZE - region - size) / PAGE_SIZE);

	u64 image_size = load_core(region, size, &core_entry_va);
	if (!image_size) {
		say("tessel: the embedded core image is malformed");
		BS->FreePages(region, pages);
		return -EINVAL;
	}
	u64 next = region + image_size;
	struct tessel_boot_info *bi = (struct tessel_boot_info *)next;
	next += ALIGN_UP(sizeof(*bi), PAGE_SIZE);
	ZeroMem(bi, sizeof(*bi));
	bi->magic = TESSEL_BOOTINFO_MAGIC;
	bi->version = TESSEL_BOOTINFO_VERSION;
	bi->size = sizeof(*bi);
	bi->config = cfg;
	bi->region_base = region;
	bi->region_size = size;
	bi->image_base = region;
	bi->image_size = image_size;
	bi->serial_port = UART_COM1;
	bi->acpi_rsdp = find_rsdp();
	bi->cpu_count = (u32)ncpu;
	bi->bsp_index = (u32)bsp;
	for (UINTN i = 0; i < ncpu; i++) {
		EFI_PROCESSOR_INFORMATION info;
		bi->apic_ids[i] = (mp && !EFI_ERROR(mp->GetProcessorInfo(mp, i, &info))) ? (u32)info.ProcessorId : 0;
	}
	u64 boot_cr3 = bootstrap_tables(&next, region, image_size);
	bi->free_base = next;

	/* Publish the region before taking the map, so the OS sees it reserved. */
	struct tessel_region_info *ri = NULL;
	if (!EFI_ERROR(BS->AllocatePool(EfiRuntimeServicesData, sizeof(*ri), (void **)&ri))) {
		*ri = (struct tessel_region_info){ TESSEL_REGION_MAGIC, region, size };
		BS->InstallConfigurationTable((EFI_GUID *)&region_guid, ri);
	}
	if (!fill_memory_map(bi)) {
		BS->InstallConfigurationTable((EFI_GUID *)&region_guid, NULL);
		BS->FreePages(region, pages);
		return -EINVAL;
	}

	cr->region = region;
	cr->pages = pages;
	cr->bi = bi;
	cr->boot_cr3 = boot_cr3;
	return 0;
}

static void unload_region(const struct core_region *cr)
{
	BS->InstallConfigurationTable((EFI_GUID *)&region_guid, NULL);
	BS->FreePages(cr->region, cr->pages);
}

/* Returns the number of processors now running as guests, or a negative status. */
static s64 start_hypervisor(void)
{
	EFI_GUID mp_guid = EFI_MP_SERVICES_PROTOCOL_GUID;
	EFI_MP_SERVICES_PROTOCOL *mp = NULL;
	UINTN ncpu = 1, nenabled = 1, bsp = 0;
	if (EFI_ERROR(BS->LocateProtocol(&mp_guid, NULL, (void **)&mp)))
		mp = NULL;
	if (mp) {
		mp->GetNumberOfProcessors(mp, &ncpu, &nenabled);
		mp->WhoAmI(mp, &bsp);
	}
	if (ncpu > TESSEL_MAX_CPUS) {
		say("tessel: %lu processors; this build supports %u", (unsigned long)ncpu, TESSEL_MAX_CPUS);
		return -EINVAL;
	}
	if (read_cr4() & (1ULL << 12)) {
		say("tessel: the firmware uses 5-level paging, which the loader does not support yet");
		return -EINVAL;
	}

	struct core_region cr;
	s64 lr = load_region(&cr, ncpu, bsp, mp);
	if (lr)
		return lr;
	struct tessel_boot_info *bi = cr.bi;
	u64 boot_cr3 = cr.boot_cr3;
	find_sleep(bi);
	u64 rsdp = bi->acpi_rsdp; /* bi is in the region: it reads 0xFF once the loader is a guest */

	s64 r = tessel_launch(boot_cr3, core_entry_va, CORE_OP_INIT, (u64)(uintptr_t)bi, &launch_state[bsp]);
	if (r) {
		say("tessel: hypervisor core failed to initialise: %s", status_name(r));
		unload_region(&cr);
		return r;
	}
	host_cr3 = bi->host_cr3;

	/* All or nothing: every processor starts, or none stays a guest (hv/start.c). The BSP
	 * goes first: if it cannot start, nothing has; once it runs as a guest, the firmware's
	 * MP services start each AP (its INIT and SIPI reach the hardware while the AP is not yet
	 * a guest, hv/vapic.c) and, should one fail, ask the others to leave again. */
	r = tessel_launch(host_cr3, core_entry_va, CORE_OP_CPU_START, bsp, &launch_state[bsp]);
	if (r) {
		say("tessel: the bootstrap processor did not start: %s", status_name(r));
		say("tessel: the start failed; no processor is running the hypervisor");
		unload_region(&cr);
		return r;
	}
	bool ap_started[TESSEL_MAX_CPUS] = { false };
	s64 started = 1, failure = 0;
	for (UINTN i = 0; i < ncpu && !failure; i++) {
		if (i == bsp)
			continue;
		launch_result[i] = -EIO;
		EFI_STATUS st = mp->StartupThisAP(mp, ap_start, i, NULL, 0, (void *)i, NULL);
		if (EFI_ERROR(st) || launch_result[i]) {
			say("tessel: processor %lu did not start: %s", (unsigned long)i,
			    EFI_ERROR(st) ? "MP services refused" : status_name(launch_result[i]));
			failure = EFI_ERROR(st) ? -EIO : launch_result[i];
			continue;
		}
		ap_started[i] = true;
		started++;
	}
	if (!failure) {
		s64 sealed = tessel_vmcall(TESSEL_HC_LOADER_SEAL);
		if (!sealed) {
			/* The hypervisor refuses S3 (hv/pm1.c); the OS should not offer it either. */
			unsigned hidden = acpi_sleep_hide(rsdp);
			if (hidden)
				say("tessel: ACPI sleep: \\_S3 hidden from the OS (%u name segment%s renamed to TS3_)", hidden,
				    hidden == 1 ? "" : "s");
			return started;
		}
		say("tessel: the core refused to seal the start (status %ld)", (long)sealed);
		failure = -EIO;
	}
	/* Undo: every AP that started leaves VMX operation again, then the BSP, then the region
	 * goes. A processor that cannot leave keeps the region reserved: it still runs on it. */
	bool stuck = false;
	for (UINTN i = 0; i < ncpu; i++) {
		if (!ap_started[i])
			continue;
		launch_result[i] = -EIO;
		EFI_STATUS st = mp->StartupThisAP(mp, ap_leave, i, NULL, 0, (void *)i, NULL);
		if (EFI_ERROR(st) || launch_result[i]) {
			say("tessel: processor %lu cannot leave VMX operation (%s)", (unsigned long)i,
			    EFI_ERROR(st) ? "MP services refused" : "the core refused");
			stuck = true;
		}
	}
	if (stuck || tessel_leave()) {
		say("tessel: the start failed and could not be undone on every processor; stopping here");
		return failure;
	}
	say("tessel: the start failed; %ld processor%s left VMX operation again; the hypervisor is not running",
	    (long)started, started == 1 ? "" : "s");
	unload_region(&cr);
	return failure;
}

/* ---- DMA remapping without VMX (test builds; docs/IOMMU.md "Testing without VMX") ---- */

static struct core_region iommu_cr;
static struct tessel_launch iommu_launch;

static int64_t iommu_test_call(struct tessel_iommu_test_req *req)
{
	return tessel_launch(iommu_cr.boot_cr3, core_entry_va, CORE_OP_IOMMU_TEST, (u64)(uintptr_t)req, &iommu_launch);
}

static struct tessel_iommu_test_table iommu_test_table = { TESSEL_IOMMU_TEST_MAGIC, NULL };

/* iommu=on without VMX: a test build's core programs the IOMMU and stays resident for the
 * test channel; a release core refuses (-ENOSYS) and the region is given back. */
static void iommu_without_vmx(void)
{
	if (load_region(&iommu_cr, 1, 0, NULL))
		return;
	s64 r = tessel_launch(iommu_cr.boot_cr3, core_entry_va, CORE_OP_IOMMU_ONLY, (u64)(uintptr_t)iommu_cr.bi,
			      &iommu_launch);
	if (r) {
		say("tessel: iommu=on: %s", r == -ENOSYS ? "the IOMMU is only owned by a running hypervisor (no VMX)" :
			"DMA remapping could not be set up (see the log)");
		unload_region(&iommu_cr);
		return;
	}
	EFI_GUID guid = TESSEL_IOMMU_TEST_GUID;
	iommu_test_table.call = iommu_test_call;
	BS->InstallConfigurationTable(&guid, &iommu_test_table);
	say("tessel: DMA remapping on without a hypervisor (test build, no VMX)");
}

static EFI_STATUS chain_load(void)
{
	CHAR16 wpath[CFG_NEXT_MAX];
	size_t i = 0;
	for (; cfg.next[i] && i + 1 < ARRAY_SIZE(wpath); i++)
		wpath[i] = (CHAR16)cfg.next[i];
	wpath[i] = 0;
	say("tessel: chain-loading %s", cfg.next);
	EFI_DEVICE_PATH *dp = FileDevicePath(loaded_image->DeviceHandle, wpath);
	EFI_HANDLE child;
	EFI_STATUS st = BS->LoadImage(FALSE, image_handle, dp, NULL, 0, &child);
	if (dp)
		FreePool(dp);
	if (EFI_ERROR(st)) {
		say("tessel: cannot load %s (EFI status %lx)", cfg.next, (unsigned long)st);
		return st;
	}
	return BS->StartImage(child, NULL, NULL);
}

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *systab)
{
	InitializeLib(image, systab);
	image_handle = image;
	uart_init(UART_COM1);
	if (EFI_ERROR(BS->HandleProtocol(image, &LoadedImageProtocol, (void **)&loaded_image)))
		return EFI_LOAD_ERROR;
	EFI_STATUS st = load_config();
	if (EFI_ERROR(st))
		return st;

	const char *why = vmx_basic_check();
	if (why) {
		say("tessel: no VMX: %s", why);
		if (cfg.iommu == CFG_IOMMU_ON)
			iommu_without_vmx();
		if (cfg.no_vmx == CFG_NO_VMX_STOP) {
			say("tessel: no_vmx=stop: not starting the next stage");
			return EFI_UNSUPPORTED;
		}
	} else {
		s64 n = start_hypervisor();
		if (n > 0) {
			say("tessel: hypervisor started on %ld CPUs", (long)n);
		} else if (cfg.no_vmx == CFG_NO_VMX_STOP) {
			say("tessel: no_vmx=stop: not starting the next stage");
			return EFI_UNSUPPORTED;
		}
	}
	if (!cfg.next[0]) {
		/* The test channel's function lives in this image, which is unloaded on return;
		 * the IOMMU itself stays on (its tables are in the reserved region). */
		if (iommu_test_table.call) {
			EFI_GUID guid = TESSEL_IOMMU_TEST_GUID;
			BS->InstallConfigurationTable(&guid, NULL);
		}
		return EFI_SUCCESS;
	}
	return chain_load();
}
