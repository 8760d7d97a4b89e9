/*
 * ring3.c: a minimal, temporary CPL-3 environment for one piece of user code.
 *
 * UEFI runs everything at CPL 0 with supervisor-only page tables and no user segments, so
 * for the duration of ring3_run this builds private copies: a GDT with a 64-bit user code
 * segment, a user data segment and a TSS whose RSP0 is a private kernel stack (SDM Vol. 3A
 * 7.7, 3.4.5); page tables in which the walk to the user code and stack pages has U/S=1 and
 * XD=0 at every level (4.6; large pages on the way are split); an IDT whose INT 0x80 gate
 * has DPL 3 (6.12.1.1). Interrupts stay off and SMEP/SMAP are cleared while the copies are
 * live. Afterwards CR3, CR4, GDTR, TR (when the firmware had one), FS/GS bases and RFLAGS are
 * restored, except a null TR (see below). The arena is allocated once and never freed.
 */
#include "guest.h"
#include "arch.h"
#include "lowlevel.h"

#define PTE_P   (1ull << 0)
#define PTE_W   (1ull << 1)
#define PTE_U   (1ull << 2)
#define PTE_PS  (1ull << 7)
#define PTE_PAT_4K (1ull << 7)
#define PTE_PAT_LARGE (1ull << 12)
#define PTE_XD  (1ull << 63)
#define PTE_ADDR 0x000ffffffffff000ull
#define PTE_ADDR_1G 0x000fffffc0000000ull
#define PTE_ADDR_2M 0x000fffffffe00000ull

/* Arena layout, in 4 KiB pages. */
enum { A_GDT, A_TSS, A_KSTACK0, A_KSTACK1, A_CODE, A_STACK, A_TABLES, A_PAGES = A_TABLES + 12 };

struct __attribute__((packed)) tss64 {
	uint32_t reserved0;
	uint64_t rsp[3];
	uint64_t reserved1;
	uint64_t ist[7];
	uint64_t reserved2;
	uint16_t reserved3;
	uint16_t iomap_base;
};
_Static_assert(sizeof(struct tss64) == 104, "64-bit TSS is 104 bytes");

static uint8_t *arena;
static unsigned tables_used;

static uint8_t *arena_page(unsigned i)
{
	return arena + 4096ull * i;
}

static uint64_t *table_new(void)
{
	if (tables_used >= A_PAGES - A_TABLES)
		return NULL;
	uint64_t *t = (uint64_t *)arena_page(A_TABLES + tables_used++);
	mem_set(t, 0, 4096);
	return t;
}

static int table_private(uint64_t pa)
{
	uint64_t lo = (uint64_t)(uintptr_t)arena_page(A_TABLES), hi = (uint64_t)(uintptr_t)arena_page(A_PAGES);
	return pa >= lo && pa < hi;
}

/* Makes the 4 KiB page at va user-accessible and executable in the private tables. */
static int map_user(uint64_t *pml4, uint64_t va)
{
	uint64_t *table = pml4;
	for (int level = 4; level >= 2; level--) {
		uint64_t *e = &table[(va >> (12 + 9 * (level - 1))) & 511];
		if (!(*e & PTE_P))
			return -1;
		uint64_t *child;
		if (level < 4 && (*e & PTE_PS)) {
			child = table_new();
			if (!child)
				return -1;
			uint64_t flags = *e & 0x1ffull; /* P W U PWT PCD A D PS G */
			uint64_t pat = *e & PTE_PAT_LARGE, xd = *e & PTE_XD;
			if (level == 3) { /* 1 GiB -> 512 x 2 MiB */
				uint64_t base = *e & PTE_ADDR_1G;
				for (uint64_t i = 0; i < 512; i++)
					child[i] = (base + (i << 21)) | flags | pat | xd;
			} else { /* 2 MiB -> 512 x 4 KiB; PAT moves from bit 12 to bit 7 */
				uint64_t base = *e & PTE_ADDR_2M;
				for (uint64_t i = 0; i < 512; i++)
					child[i] = (base + (i << 12)) | (flags & ~PTE_PS) | (pat ? PTE_PAT_4K : 0) | xd;
			}
			*e = (uint64_t)(uintptr_t)child | PTE_P | PTE_W | PTE_U;
		} else {
			uint64_t pa = *e & PTE_ADDR;
			if (table_private(pa)) {
				child = (uint64_t *)(uintptr_t)pa;
			} else {
				child = table_new();
				if (!child)
					return -1;
				mem_copy(child, (const void *)(uintptr_t)pa, 4096);
			}
			*e = (*e & ~PTE_ADDR & ~PTE_XD) | (uint64_t)(uintptr_t)child | PTE_U | PTE_W;
		}
		table = child;
	}
	uint64_t *leaf = &table[(va >> 12) & 511];
	if (!(*leaf & PTE_P))
		return -1;
	*leaf = (*leaf | PTE_U | PTE_W) & ~PTE_XD;
	return 0;
}

static uint64_t seg_desc(uint64_t type_dpl_s, uint64_t flags)
{
	/* base 0, limit 0xfffff; byte 5 = P|DPL|S|type, nibble 52-55 = G D/B L AVL */
	return 0xffffull | (0xfull << 48) | ((0x80ull | type_dpl_s) << 40) | (flags << 52);
}

int ring3_run(const void *code, unsigned len, const uint64_t regs_in[6], struct trap_info *out)
{
	mem_set(out, 0, sizeof(*out));
	if (len == 0 || len > 4000)
		return -1;
	if (read_cr4() & X86_CR4_LA57)
		return -2; /* 5-level paging: not handled */
	if (!arena) {
		EFI_PHYSICAL_ADDRESS pa = 0;
		if (EFI_ERROR(uefi_call_wrapper(BS->AllocatePages, 4, AllocateAnyPages, EfiLoaderData, A_PAGES, &pa)))
			return -3;
		arena = (uint8_t *)(uintptr_t)pa;
	}
	tables_used = 0;

	uint8_t *ucode = arena_page(A_CODE);
	mem_set(ucode, 0xcc, 4096); /* INT3 after the code: a runaway ends in #BP */
	mem_copy(ucode, code, len);
	uint8_t *ustack = arena_page(A_STACK);
	mem_set(ustack, 0, 4096);

	/* Page tables */
	uint64_t old_cr3 = read_cr3();
	uint64_t *pml4 = table_new();
	mem_copy(pml4, (const void *)(uintptr_t)(old_cr3 & PTE_ADDR), 4096);
	if (map_user(pml4, (uint64_t)(uintptr_t)ucode) || map_user(pml4, (uint64_t)(uintptr_t)ustack))
		return -4;
	uint64_t new_cr3 = (uint64_t)(uintptr_t)pml4 | (old_cr3 & 0xfff);

	/* GDT: the firmware's descriptors, then user data, user code (64-bit), TSS */
	struct x86_dtr old_gdt, new_gdt;
	sgdt(&old_gdt);
	uint64_t *gdt = (uint64_t *)arena_page(A_GDT);
	unsigned n = ((unsigned)old_gdt.limit + 1 + 7) / 8;
	if (n > 512 - 4)
		return -5;
	mem_set(gdt, 0, 4096);
	mem_copy(gdt, (const void *)(uintptr_t)old_gdt.base, (uint64_t)old_gdt.limit + 1);
	uint16_t udata = (uint16_t)(n << 3), ucs = (uint16_t)((n + 1) << 3), tss_sel = (uint16_t)((n + 2) << 3);
	gdt[n] = seg_desc(0x60 | 0x10 | 0x2, 0xc);     /* DPL 3, data, RW; G, D/B */
	gdt[n + 1] = seg_desc(0x60 | 0x10 | 0xa, 0xa); /* DPL 3, code, XR; G, L */
	struct tss64 *tss = (struct tss64 *)arena_page(A_TSS);
	mem_set(tss, 0, sizeof(*tss));
	tss->rsp[0] = (uint64_t)(uintptr_t)arena_page(A_KSTACK1 + 1) - 16;
	tss->iomap_base = sizeof(*tss);
	uint64_t tb = (uint64_t)(uintptr_t)tss, tl = sizeof(*tss) - 1;
	gdt[n + 2] = (tl & 0xffff) | ((tb & 0xffffff) << 16) | (0x89ull << 40) | (((tl >> 16) & 0xf) << 48) |
		     (((tb >> 24) & 0xff) << 56);
	gdt[n + 3] = tb >> 32;
	new_gdt.limit = (uint16_t)((n + 4) * 8 - 1);
	new_gdt.base = (uint64_t)(uintptr_t)gdt;

	/* Switch */
	uint64_t rflags = read_rflags();
	uint64_t cr4 = read_cr4();
	uint16_t old_tr = str();
	uint64_t fs_base = rdmsr(MSR_IA32_FS_BASE), gs_base = rdmsr(MSR_IA32_GS_BASE);
	cpu_cli();
	lgdt(&new_gdt);
	ltr(tss_sel);
	write_cr3(new_cr3);
	invlpg(ucode);
	invlpg(ustack);
	if (cr4 & (X86_CR4_SMEP | X86_CR4_SMAP))
		write_cr4(cr4 & ~(X86_CR4_SMEP | X86_CR4_SMAP));

	struct guard g;
	mem_set(&g, 0, sizeof(g));
	g.mode = 1;
	g.fn = (uint64_t)(uintptr_t)ucode;
	g.user_cs = ucs | 3;
	g.user_ss = udata | 3;
	g.user_rsp = (uint64_t)(uintptr_t)ustack + 4096 - 64;
	g.user_rflags = X86_RFLAGS_FIXED; /* IF = 0, IOPL = 0 */
	for (int i = 0; i < 6; i++)
		g.regs[i] = regs_in ? regs_in[i] : 0;
	int trapped = guard_run(&g, TRAP_ALL, 1);

	/* Restore */
	if (cr4 & (X86_CR4_SMEP | X86_CR4_SMAP))
		write_cr4(cr4);
	write_cr3(old_cr3);
	invlpg(ucode);
	invlpg(ustack);
	lgdt(&old_gdt);
	/* OVMF runs with TR = 0, which LTR cannot restore: then TR keeps our selector and its
	 * cached base (the arena is never freed), harmless at CPL 0 without IST. */
	if (old_tr && (uint32_t)(old_tr & ~7u) + 15 <= old_gdt.limit) {
		/* LTR faults on a busy TSS descriptor: mark the firmware's one available again. */
		uint8_t *d = (uint8_t *)(uintptr_t)old_gdt.base + (old_tr & ~7u);
		d[5] &= (uint8_t)~0x02;
		ltr(old_tr);
	}
	if (rdmsr(MSR_IA32_FS_BASE) != fs_base)
		wrmsr(MSR_IA32_FS_BASE, fs_base);
	if (rdmsr(MSR_IA32_GS_BASE) != gs_base)
		wrmsr(MSR_IA32_GS_BASE, gs_base);
	write_rflags(rflags);

	out->trapped = trapped;
	out->vector = g.vector;
	out->error = g.error;
	out->rip = g.rip;
	out->cs = g.cs;
	mem_copy(out->regs, g.regs, sizeof(out->regs));
	return trapped ? 0 : -6;
}
