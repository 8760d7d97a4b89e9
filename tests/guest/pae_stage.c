/*
 * pae_stage.c (issue 10): MOV to CR0 the hypervisor emulates while the guest enters and
 * leaves 32-bit PAE paging.
 *
 * The hypervisor owns the CR0 bits VMX fixes (hv/vmx.c; NE is fixed to 1), so a MOV to CR0
 * that changes NE exits and hv/exit_cr.c emulates it. When such a write enters PAE paging
 * (CR0.PG = 1, CR4.PAE = 1, EFER.LMA = 0) the processor would load the four PDPTEs from
 * CR3 and raise #GP(0) if a present one has a reserved bit set (SDM Vol. 3A 4.4.1, Table
 * 4-8); with EPT, VM entry takes the PDPTEs from the VMCS guest-state fields (SDM 26.3.2.4),
 * so the hypervisor must load them itself. Stale PDPTEs would translate the guest's
 * addresses through the page directories of an earlier PDPT.
 *
 * The BSP leaves long mode through a trampoline page below 1 GiB (compatibility mode ->
 * paging off -> EFER.LME = 0: legacy 32-bit protected mode, CR4.PAE still 1), then:
 *   0  CR3 = PDPT A, MOV CR0 with PG = 1 (NE unchanged: the processor's own path);
 *   1  a read through A's second PDPTE (PD1a maps 1 GiB + 0..2 MiB onto the data page's
 *      2 MiB region); then CPUID, which exits while A is live, so the VMCS PDPTE fields
 *      hold A's entries from here on (SDM 27.3.4);
 *   2  paging off (PG = 0), CR3 = PDPT B, MOV CR0 with PG = 1 and NE = 0: the write touches
 *      NE and exits, the hypervisor emulates the entry into PAE paging;
 *   3  a read through B's second PDPTE (PD1b maps 1 GiB + 2..4 MiB onto the region; A's PD1a
 *      leaves it not present): stale PDPTEs make it #PF;
 *   4  a write through it, seen at the data page's physical address;
 *   5  a read of A's window (not present in PD1b): #PF;
 *   6  MOV CR0 with PG = 0 and NE = 1 (emulated again: NE changes);
 *   7  CR3 = PDPT C, whose second PDPTE is present with bit 1 (reserved) set, MOV CR0 with
 *      PG = 1 and NE = 0 (emulated): #GP(0), CR0 unchanged;
 *   8  CR3 = PDPT D, whose third PDPTE is not present and has reserved bits set (they only
 *      count in a present entry, SDM 4.4.1), PG = 1 with NE = 0 (emulated): no fault;
 *   9  a read through D's second PDPTE (B's page directory) works;
 *  10  paging off and NE = 1 (emulated) before the way back.
 * A 32-bit IDT in the trampoline records the vector of every exception per step and resumes
 * at the step's end. Then it returns to long mode, restores everything it changed, and the
 * common hostile post-checks follow.
 */
#include "guest.h"
#include "arch.h"
#include "hostile.h"

#define N_TESTS (10 + HOSTILE_POSTCHECK_POINTS)

/* The trampoline page (offsets from its base T, which is below 1 GiB). */
#define PS_CUR     0xd08 /* u8 the current step */
#define PS_VEC     0xd10 /* u8[16] vector per step, 0xff = none */
#define PS_VAL     0xe20 /* u32[16] values the steps read */
#define PS_CR0     0xd40
#define PS_CR3     0xd48
#define PS_CR4     0xd50
#define PS_RSP     0xd58
#define PS_RET     0xd60
#define PS_CS      0xd68
#define PS_SS      0xd70
#define PS_DS      0xd78
#define PS_ES      0xd80
#define PS_FS      0xd88
#define PS_GS      0xd90
#define PS_FSBASE  0xd98
#define PS_GSBASE  0xda0
#define PS_GDTR    0xdb0 /* 10 bytes: the firmware's */
#define PS_IDTR    0xdc0
#define PS_NEWGDTR 0xdd0 /* 10 bytes: ours, in this page */
#define PS_PMIDTR  0xde0 /* 6 bytes: the 32-bit IDT */
#define PS_RESUME  0xde8 /* u32 linear address the exception handler resumes at */
#define PS_PDPT_A  0xdf0 /* u32 */
#define PS_PDPT_B  0xdf4
#define PS_PDPT_C  0xdf8
#define PS_PDPT_D  0xdfc
#define PS_WIN_A   0xe00 /* u32 the data page through A's second PDPTE */
#define PS_WIN_B   0xe04 /* u32 the data page through B's second PDPTE */
#define PS_MAGIC2  0xe08 /* u32 what step 4 writes */
#define PS_GDT     0xf00
#define PS_IDT32   0xf40
#define PM_VECTORS 15
#define STACK_TOP  0xcf0
#define CODE_MAX   0xc00

#define SEL_CODE64 0x08
#define SEL_CODE32 0x10
#define SEL_DATA32 0x18

/* Values (PS_VAL index) */
#define V_READ_A   0 /* step 1 */
#define V_CR0_EMU  1 /* CR0 after step 2 */
#define V_READ_B   2 /* step 3 */
#define V_READ_OLD 3 /* step 5 */
#define V_CR0_OFF  4 /* CR0 after step 6 */
#define V_CR0_GP   5 /* CR0 after step 7 */
#define V_CR0_HW   6 /* CR0 after step 0 */
#define V_CR0_D    7 /* CR0 after step 8 */
#define V_READ_D   8 /* step 9 */
#define N_VALS     9
#define N_STEPS    11
#define SENTINEL   0x5a5a5a5au

#define MAGIC  0x50414531u /* "PAE1" */
#define MAGIC2 0x50414532u

#define CR0_PE (1u << 0)
#define CR0_NE (1u << 5)
#define CR0_PG (1u << 31)

#define S_(x) #x
#define S(x) S_(x)

/* One step: record n as the current step, resume after it on an exception. */
#define STEP(n) \
	"	movb $" #n ", " S(PS_CUR) "(%edi)\n" \
	"	lea (9" #n "9f - ps_blob_start)(%edi), %eax; mov %eax, " S(PS_RESUME) "(%edi)\n"
#define END(n) "9" #n "9:\n"
#define VAL(i) S(PS_VAL) "+4*" #i "(%edi)"

/* void ps_excursion(uint64_t base): runs the blob copied at base (< 1 GiB). */
__asm__(
	".text\n"
	".globl ps_excursion\n"
	".hidden ps_excursion\n"
	"ps_excursion:\n"
	"	push %rbx; push %rbp; push %r12; push %r13; push %r14; push %r15\n"
	"	pushfq\n"
	"	cli\n"
	"	mov %rdi, %rbx\n"
	"	mov %cr0, %rax; mov %rax, " S(PS_CR0) "(%rbx)\n"
	"	mov %cr3, %rax; mov %rax, " S(PS_CR3) "(%rbx)\n"
	"	mov %cr4, %rax; mov %rax, " S(PS_CR4) "(%rbx)\n"
	"	mov %rsp, " S(PS_RSP) "(%rbx)\n"
	"	lea 1f(%rip), %rax; mov %rax, " S(PS_RET) "(%rbx)\n"
	"	xor %eax, %eax\n"
	"	mov %cs, %ax; mov %rax, " S(PS_CS) "(%rbx)\n"
	"	mov %ss, %ax; mov %rax, " S(PS_SS) "(%rbx)\n"
	"	mov %ds, %ax; mov %rax, " S(PS_DS) "(%rbx)\n"
	"	mov %es, %ax; mov %rax, " S(PS_ES) "(%rbx)\n"
	"	mov %fs, %ax; mov %rax, " S(PS_FS) "(%rbx)\n"
	"	mov %gs, %ax; mov %rax, " S(PS_GS) "(%rbx)\n"
	"	mov $0xc0000100, %ecx; rdmsr; mov %eax, " S(PS_FSBASE) "(%rbx); mov %edx, " S(PS_FSBASE) "+4(%rbx)\n"
	"	mov $0xc0000101, %ecx; rdmsr; mov %eax, " S(PS_GSBASE) "(%rbx); mov %edx, " S(PS_GSBASE) "+4(%rbx)\n"
	"	sgdt " S(PS_GDTR) "(%rbx)\n"
	"	sidt " S(PS_IDTR) "(%rbx)\n"
	"	lgdt " S(PS_NEWGDTR) "(%rbx)\n"
	"	mov %ebx, %edi\n"
	"	pushq $" S(SEL_CODE32) "\n"
	"	lea (ps_pm32 - ps_blob_start)(%rbx), %rax\n"
	"	push %rax\n"
	"	lretq\n"
	"1:\n" /* back from the blob, on the firmware's GDT, stack and segments */
	"	popfq\n"
	"	pop %r15; pop %r14; pop %r13; pop %r12; pop %rbp; pop %rbx\n"
	"	ret\n"

	".section .data.psblob, \"aw\"\n"
	".globl ps_blob_start\n.hidden ps_blob_start\n"
	".globl ps_blob_end\n.hidden ps_blob_end\n"
	".globl ps_pm_stubs\n.hidden ps_pm_stubs\n"
	"ps_blob_start:\n"
	".code32\n"
	"ps_pm32:\n" /* compatibility mode, EDI = T */
	"	mov $" S(SEL_DATA32) ", %ax; mov %ax, %ds; mov %ax, %es; mov %ax, %ss\n"
	"	lea " S(STACK_TOP) "(%edi), %esp\n"
	"	mov %cr0, %eax; and $0x7fffffff, %eax; mov %eax, %cr0\n" /* paging off: LMA = 0 */
	"	mov $0xc0000080, %ecx; rdmsr; and $0xfffffeff, %eax; wrmsr\n" /* EFER.LME = 0 */
	"	lidt " S(PS_PMIDTR) "(%edi)\n"
	/* 0: PAE paging with PDPT A, the processor's own MOV to CR0 */
	STEP(0)
	"	mov " S(PS_PDPT_A) "(%edi), %eax; mov %eax, %cr3\n"
	"	mov %cr0, %eax; or $0x80000000, %eax; mov %eax, %cr0\n"
	END(0)
	"	mov %cr0, %eax; mov %eax, " VAL(6) "\n"
	/* 1: read through A's second PDPTE; CPUID exits with A live */
	STEP(1)
	"	mov " S(PS_WIN_A) "(%edi), %esi; mov (%esi), %eax; mov %eax, " VAL(0) "\n"
	"	push %edi; mov $1, %eax; xor %ecx, %ecx; cpuid; pop %edi\n"
	END(1)
	/* 2: paging off, CR3 = B, PG on with NE cleared: the hypervisor emulates it */
	STEP(2)
	"	mov %cr0, %eax; and $0x7fffffff, %eax; mov %eax, %cr0\n"
	"	mov " S(PS_PDPT_B) "(%edi), %eax; mov %eax, %cr3\n"
	"	mov %cr0, %eax; or $0x80000000, %eax; and $0xffffffdf, %eax; mov %eax, %cr0\n"
	END(2)
	"	mov %cr0, %eax; mov %eax, " VAL(1) "\n"
	/* 3: read through B's second PDPTE */
	STEP(3)
	"	mov " S(PS_WIN_B) "(%edi), %esi; mov (%esi), %eax; mov %eax, " VAL(2) "\n"
	END(3)
	/* 4: write through it */
	STEP(4)
	"	mov " S(PS_WIN_B) "(%edi), %esi; mov " S(PS_MAGIC2) "(%edi), %eax; mov %eax, 4(%esi)\n"
	END(4)
	/* 5: A's window is not mapped by B */
	STEP(5)
	"	mov " S(PS_WIN_A) "(%edi), %esi; mov (%esi), %eax; mov %eax, " VAL(3) "\n"
	END(5)
	/* 6: PG off with NE set: emulated */
	STEP(6)
	"	mov %cr0, %eax; and $0x7fffffff, %eax; or $0x20, %eax; mov %eax, %cr0\n"
	END(6)
	"	mov %cr0, %eax; mov %eax, " VAL(4) "\n"
	/* 7: CR3 = C (reserved bit in a present PDPTE), PG on with NE cleared: #GP */
	STEP(7)
	"	mov " S(PS_PDPT_C) "(%edi), %eax; mov %eax, %cr3\n"
	"	mov %cr0, %eax; or $0x80000000, %eax; and $0xffffffdf, %eax; mov %eax, %cr0\n"
	END(7)
	"	mov %cr0, %eax; mov %eax, " VAL(5) "\n"
	/* 8: CR3 = D (reserved bits only in a PDPTE that is not present), PG on with NE
	 * cleared: no fault */
	STEP(8)
	"	mov " S(PS_PDPT_D) "(%edi), %eax; mov %eax, %cr3\n"
	"	mov %cr0, %eax; and $0x7fffffff, %eax; or $0x20, %eax; mov %eax, %cr0\n"
	"	mov %cr0, %eax; or $0x80000000, %eax; and $0xffffffdf, %eax; mov %eax, %cr0\n"
	END(8)
	"	mov %cr0, %eax; mov %eax, " VAL(7) "\n"
	/* 9: read through D's second PDPTE (B's page directory) */
	STEP(9)
	"	mov " S(PS_WIN_B) "(%edi), %esi; mov (%esi), %eax; mov %eax, " VAL(8) "\n"
	END(9)
	/* paging off and NE set, whatever happened above (10 records a fault on the way) */
	STEP(10)
	"	mov %cr0, %eax; and $0x7fffffff, %eax; or $0x20, %eax; mov %eax, %cr0\n"
	END(10)
	/* back to long mode: CR4, CR3, EFER.LME, CR0 as they were */
	"	mov " S(PS_CR4) "(%edi), %eax; mov %eax, %cr4\n"
	"	mov " S(PS_CR3) "(%edi), %eax; mov %eax, %cr3\n"
	"	mov $0xc0000080, %ecx; rdmsr; or $0x100, %eax; wrmsr\n" /* EFER.LME = 1 */
	"	mov " S(PS_CR0) "(%edi), %eax; mov %eax, %cr0\n" /* paging on: LMA = 1 */
	"	mov %edi, %ebx\n"
	"	pushl $" S(SEL_CODE64) "\n"
	"	lea (ps_lm_back - ps_blob_start)(%ebx), %eax\n"
	"	pushl %eax\n"
	"	lretl\n"
	/* 32-bit exception stubs, 16 bytes apart; vectors 8, 10-14 push an error code */
	"	.balign 16\n"
	"ps_pm_stubs:\n"
	"	.irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14\n"
	"	.balign 16\n"
	"	.if \\v == 8 || (\\v >= 10 && \\v <= 14)\n"
	"	add $4, %esp\n"
	"	.endif\n"
	"	mov $\\v, %al\n"
	"	jmp ps_pm_common\n"
	"	.endr\n"
	"ps_pm_common:\n" /* ESP is in the trampoline page: its base is T */
	"	mov %esp, %edi; and $0xfffff000, %edi\n"
	"	movzbl " S(PS_CUR) "(%edi), %ecx\n"
	"	mov %al, " S(PS_VEC) "(%edi,%ecx)\n"
	"	add $12, %esp\n" /* EIP, CS, EFLAGS */
	"	jmp *" S(PS_RESUME) "(%edi)\n"
	".code64\n"
	"ps_lm_back:\n" /* 64-bit, RBX = T (upper half zero) */
	"	mov %ebx, %ebx\n"
	"	lgdt " S(PS_GDTR) "(%rbx)\n"
	"	lidt " S(PS_IDTR) "(%rbx)\n"
	"	mov " S(PS_RSP) "(%rbx), %rsp\n"
	"	mov " S(PS_SS) "(%rbx), %rax; mov %ax, %ss\n"
	"	mov " S(PS_DS) "(%rbx), %rax; mov %ax, %ds\n"
	"	mov " S(PS_ES) "(%rbx), %rax; mov %ax, %es\n"
	"	mov " S(PS_FS) "(%rbx), %rax; mov %ax, %fs\n"
	"	mov " S(PS_GS) "(%rbx), %rax; mov %ax, %gs\n"
	"	mov $0xc0000100, %ecx; mov " S(PS_FSBASE) "(%rbx), %eax; mov " S(PS_FSBASE) "+4(%rbx), %edx; wrmsr\n"
	"	mov $0xc0000101, %ecx; mov " S(PS_GSBASE) "(%rbx), %eax; mov " S(PS_GSBASE) "+4(%rbx), %edx; wrmsr\n"
	"	pushq " S(PS_CS) "(%rbx)\n"
	"	pushq " S(PS_RET) "(%rbx)\n"
	"	lretq\n"
	"ps_blob_end:\n"
	".text\n");

__attribute__((visibility("hidden"))) void ps_excursion(uint64_t base);
__attribute__((visibility("hidden"))) extern char ps_blob_start[], ps_blob_end[], ps_pm_stubs[];

/* Pages, all below 1 GiB so that PD0 maps them identically. */
enum { P_TRAMP, P_PDPT, P_PD0, P_PD1A, P_PD1B, P_DATA, P_COUNT };

#define PDPTE_P   1ull
#define PDPTE_RSVD_RW (1ull << 1) /* reserved in a PAE PDPTE (SDM Table 4-8) */
#define PDPTE_RSVD_NP 0x1e6ull  /* bits 2:1 and 8:5, P = 0 */
#define PDE_2M    0x83ull         /* P, R/W, PS */
#define GIB       0x40000000u
#define MIB2      0x200000u

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)v); put16(p + 2, (uint16_t)(v >> 16)); }
static void put64(uint8_t *p, uint64_t v) { put32(p, (uint32_t)v); put32(p + 4, (uint32_t)(v >> 32)); }

static const char *vec_name(uint8_t v)
{
	static char buf[8];
	if (v == 0xff)
		return "none";
	buf[0] = '#';
	buf[1] = 'v';
	buf[2] = (char)('0' + v / 10);
	buf[3] = (char)('0' + v % 10);
	buf[4] = 0;
	return buf;
}

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *systab)
{
	guest_init(image, systab);
	tap_plan(N_TESTS);
	struct hostile_guard g;
	hostile_guard_setup(&g);

	EFI_PHYSICAL_ADDRESS base = GIB - 1;
	EFI_STATUS st = uefi_call_wrapper(BS->AllocatePages, 4, AllocateMaxAddress, EfiBootServicesData, P_COUNT, &base);
	uint64_t cr3 = read_cr3(), cr4 = read_cr4();
	int ok = !EFI_ERROR(st) && base + P_COUNT * 4096ull <= GIB && !(cr3 >> 32) &&
		 !(cr4 & (1u << 17)) /* PCIDE */ && !(cr4 & X86_CR4_LA57) && (cr4 & (1u << 5)) /* PAE */ &&
		 (uint64_t)(ps_blob_end - ps_blob_start) <= CODE_MAX;
	tap_ok(ok, "setup: %u pages below 1 GiB at 0x%llx (status %llx), CR3 0x%llx, CR4 0x%llx, blob %u bytes",
	       P_COUNT, (unsigned long long)base, (unsigned long long)st, (unsigned long long)cr3,
	       (unsigned long long)cr4, (unsigned)(ps_blob_end - ps_blob_start));

	uint8_t *pg[P_COUNT];
	for (unsigned i = 0; i < P_COUNT; i++)
		pg[i] = (uint8_t *)(uintptr_t)(base + 4096ull * i);
	volatile uint32_t *data = (volatile uint32_t *)pg[P_DATA];
	uint32_t data_pa = (uint32_t)(uintptr_t)pg[P_DATA], region = data_pa & ~(MIB2 - 1);
	uint32_t win_a = GIB + (data_pa - region), win_b = GIB + MIB2 + (data_pa - region);
	uint8_t *t = pg[P_TRAMP];
	if (ok) {
		for (unsigned i = 0; i < P_COUNT; i++)
			mem_set(pg[i], 0, 4096);
		mem_copy(t, ps_blob_start, (uint64_t)(ps_blob_end - ps_blob_start));
		mem_set(t + PS_VEC, 0xff, 16);
		for (unsigned i = 0; i < N_VALS; i++)
			put32(t + PS_VAL + 4 * i, SENTINEL);
		uint8_t *gdt = t + PS_GDT;
		put64(gdt + SEL_CODE64, 0x00af9a000000ffffULL);
		put64(gdt + SEL_CODE32, 0x00cf9a000000ffffULL);
		put64(gdt + SEL_DATA32, 0x00cf92000000ffffULL);
		put16(t + PS_NEWGDTR, 0x1f);
		put64(t + PS_NEWGDTR + 2, (uint64_t)(uintptr_t)gdt);
		/* 32-bit interrupt gates (SDM 6.11) to the stubs for vectors 0-14. */
		uint32_t stubs = (uint32_t)(uintptr_t)t + (uint32_t)(ps_pm_stubs - ps_blob_start);
		for (unsigned v = 0; v < PM_VECTORS; v++) {
			uint32_t off = stubs + 16 * v;
			uint8_t *gate = t + PS_IDT32 + 8 * v;
			put16(gate, (uint16_t)off);
			put16(gate + 2, SEL_CODE32);
			put16(gate + 4, 0x8e00);
			put16(gate + 6, (uint16_t)(off >> 16));
		}
		put16(t + PS_PMIDTR, 8 * PM_VECTORS - 1);
		put32(t + PS_PMIDTR + 2, (uint32_t)(uintptr_t)t + PS_IDT32);

		/* PD0: 0..1 GiB identity in 2 MiB pages. PD1a: the data page's 2 MiB region at
		 * 1 GiB; PD1b: the same region at 1 GiB + 2 MiB. Nothing else in the second GiB. */
		uint64_t *pd0 = (uint64_t *)pg[P_PD0], *pd1a = (uint64_t *)pg[P_PD1A], *pd1b = (uint64_t *)pg[P_PD1B];
		for (uint64_t i = 0; i < 512; i++)
			pd0[i] = (i << 21) | PDE_2M;
		pd1a[0] = region | PDE_2M;
		pd1b[1] = region | PDE_2M;
		/* Four PDPTs in one page, 32 bytes each (CR3 bits 31:5 in PAE paging, SDM 4.4). */
		uint64_t *a = (uint64_t *)pg[P_PDPT], *b = a + 4, *c = a + 8, *d = a + 12;
		a[0] = (uint64_t)(uintptr_t)pd0 | PDPTE_P;
		a[1] = (uint64_t)(uintptr_t)pd1a | PDPTE_P;
		b[0] = a[0];
		b[1] = (uint64_t)(uintptr_t)pd1b | PDPTE_P;
		c[0] = a[0];
		c[1] = (uint64_t)(uintptr_t)pd1b | PDPTE_P | PDPTE_RSVD_RW;
		d[0] = a[0];
		d[1] = b[1];
		d[2] = PDPTE_RSVD_NP; /* not present: its other bits are ignored */
		put32(t + PS_PDPT_A, (uint32_t)(uintptr_t)a);
		put32(t + PS_PDPT_B, (uint32_t)(uintptr_t)b);
		put32(t + PS_PDPT_C, (uint32_t)(uintptr_t)c);
		put32(t + PS_PDPT_D, (uint32_t)(uintptr_t)d);
		put32(t + PS_WIN_A, win_a);
		put32(t + PS_WIN_B, win_b);
		put32(t + PS_MAGIC2, MAGIC2);
		data[0] = MAGIC;
		data[1] = 0;
		ps_excursion((uint64_t)(uintptr_t)t);
	}
	tap_ok(ok, "the BSP went to 32-bit PAE paging and came back to long mode");

	uint8_t vec[N_STEPS];
	uint32_t val[N_VALS];
	for (unsigned i = 0; i < N_STEPS; i++)
		vec[i] = ok ? t[PS_VEC + i] : 0xee;
	for (unsigned i = 0; i < N_VALS; i++)
		val[i] = ok ? *(volatile uint32_t *)(t + PS_VAL + 4 * i) : 0;
	for (unsigned i = 0; i < N_STEPS; i++)
		tap_diag("step %u: exception %s", i, vec_name(vec[i]));
	tap_diag("data page 0x%x, windows A 0x%x B 0x%x; CR0 after step 0 %x, 2 %x, 6 %x, 7 %x, 8 %x", data_pa,
		 win_a, win_b, val[V_CR0_HW], val[V_CR0_EMU], val[V_CR0_OFF], val[V_CR0_GP], val[V_CR0_D]);
	tap_diag("read through A 0x%x, through B 0x%x, A's window under B 0x%x, through D 0x%x (0x%x = not read)",
		 val[V_READ_A], val[V_READ_B], val[V_READ_OLD], val[V_READ_D], SENTINEL);

	tap_ok(ok && vec[0] == 0xff && vec[1] == 0xff && (val[V_CR0_HW] & CR0_PG) && val[V_READ_A] == MAGIC,
	       "the processor's MOV to CR0 entered PAE paging; a read through the second PDPTE works");
	tap_ok(ok && vec[2] == 0xff && (val[V_CR0_EMU] & (CR0_PG | CR0_NE | CR0_PE)) == (CR0_PG | CR0_PE),
	       "an emulated MOV to CR0 (NE cleared) entered PAE paging; CR0 reads PG = 1, NE = 0");
	tap_ok(ok && vec[3] == 0xff && val[V_READ_B] == MAGIC,
	       "after the emulated MOV, a read through the new PDPT's second PDPTE works (PDPTEs loaded)");
	tap_ok(ok && vec[4] == 0xff && data[1] == MAGIC2,
	       "a write through the new PDPT's second PDPTE lands in the data page");
	tap_ok(ok && vec[5] == 14 && val[V_READ_OLD] == SENTINEL,
	       "the old PDPT's mapping is gone after the emulated MOV: #PF");
	tap_ok(ok && vec[6] == 0xff && (val[V_CR0_OFF] & (CR0_PG | CR0_NE)) == CR0_NE,
	       "an emulated MOV to CR0 (NE set) left paging: CR0 reads PG = 0, NE = 1");
	tap_ok(ok && vec[7] == 13 && (val[V_CR0_GP] & (CR0_PG | CR0_NE)) == CR0_NE,
	       "an emulated MOV to CR0 into PAE paging with a reserved bit in a present PDPTE: #GP, CR0 unchanged");
	tap_ok(ok && vec[8] == 0xff && vec[9] == 0xff && vec[10] == 0xff && (val[V_CR0_D] & CR0_PG) &&
		       val[V_READ_D] == MAGIC,
	       "reserved bits in a PDPTE that is not present do not fault; its PDPT translates");
	if (ok)
		uefi_call_wrapper(BS->FreePages, 2, base, P_COUNT);
	hostile_postcheck(&g, "PAE stage");
	guest_finish();
}
