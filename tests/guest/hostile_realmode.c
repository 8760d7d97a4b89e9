/*
 * hostile_realmode.c (issue 9, item a): faults the hypervisor injects while the guest is in
 * real mode. With "unrestricted guest", VM entry fails if an injected exception has
 * "deliver error code" set while guest CR0.PE = 0 (SDM 26.2.1.3); real mode pushes no
 * error code. Before the fix every #GP the hypervisor injected there (WRMSR/RDMSR of a VMX
 * MSR, XSETBV of a bad value, a faulting MOV to CR0) ended in "VMRESUME failed" and a panic.
 *
 * The BSP leaves long mode for real mode through a trampoline below 1 MiB (long mode ->
 * 32-bit compatibility -> paging off -> 16-bit protected -> real mode), installs its own
 * real-mode IVT, runs each faulting instruction with a handler that records the vector and
 * resumes after it, then comes back the same way and restores every register it changed.
 * On the way down, in legacy 32-bit protected mode, it also jumps to a TSS (issue 9, item
 * j): Tessel does not emulate task switches, the guest gets #GP(0) (before, the
 * task-switch exit had no handler and stopped the vCPU). Then the common hostile
 * post-checks.
 */
#include "guest.h"
#include "arch.h"
#include "hostile.h"

#define N_TRIES 6
#define N_TESTS (2 + N_TRIES + HOSTILE_POSTCHECK_POINTS)

/* The trampoline page (offsets from its base B; real mode runs with CS = DS = SS = B >> 4). */
#define RM_BASE    0xe00 /* u32 B */
#define RM_SEG     0xe04 /* u16 B >> 4 */
#define RM_RESUME  0xe06 /* u16 offset the exception handler resumes at */
#define RM_CUR     0xe08 /* u8 index of the current try */
#define RM_TMP     0xe09 /* u8 vector of the exception being handled */
#define RM_VEC     0xe10 /* u8[16] vector per try, 0xff = none */
#define RM_CR0     0xe20
#define RM_CR3     0xe28
#define RM_CR4     0xe30
#define RM_RSP     0xe38
#define RM_RET     0xe40
#define RM_CS      0xe48
#define RM_SS      0xe50
#define RM_DS      0xe58
#define RM_ES      0xe60
#define RM_FS      0xe68
#define RM_GS      0xe70
#define RM_FSBASE  0xe78
#define RM_GSBASE  0xe80
#define RM_GDTR    0xe90 /* 10 bytes: the firmware's */
#define RM_IDTR    0xea0
#define RM_NEWGDTR 0xeb0 /* 10 bytes: ours, in this page */
#define RM_RMIDTR  0xec0 /* 6 bytes: the real-mode IVT */
#define RM_RESUME32 0xed0 /* u32 linear address the 32-bit exception handler resumes at */
#define RM_PMIDTR  0xed8 /* 6 bytes: the 32-bit IDT */
#define TSS_OFF   0xc00 /* a 32-bit TSS (0x68 bytes) the task-switch try jumps to */
#define IDT32_OFF 0xf40 /* 32-bit IDT, PM_VECTORS gates */
#define PM_VECTORS 14
#define RM_GDT     0xf00
#define IVT_OFF   0x800
#define STACK_TOP 0xd00

#define SEL_CODE64 0x08
#define SEL_CODE32 0x10
#define SEL_DATA32 0x18
#define SEL_CODE16 0x20
#define SEL_DATA16 0x28
#define SEL_TSS    0x30

#define S_(x) #x
#define S(x) S_(x)

/* void rm_excursion(uint64_t base): runs the blob copied at base (< 1 MiB). */
__asm__(
	".text\n"
	".globl rm_excursion\n"
	".hidden rm_excursion\n"
	"rm_excursion:\n"
	"	push %rbx; push %rbp; push %r12; push %r13; push %r14; push %r15\n"
	"	pushfq\n"
	"	cli\n"
	"	mov %rdi, %rbx\n"
	"	mov %cr0, %rax; mov %rax, " S(RM_CR0) "(%rbx)\n"
	"	mov %cr3, %rax; mov %rax, " S(RM_CR3) "(%rbx)\n"
	"	mov %cr4, %rax; mov %rax, " S(RM_CR4) "(%rbx)\n"
	"	mov %rsp, " S(RM_RSP) "(%rbx)\n"
	"	lea 1f(%rip), %rax; mov %rax, " S(RM_RET) "(%rbx)\n"
	"	xor %eax, %eax\n"
	"	mov %cs, %ax; mov %rax, " S(RM_CS) "(%rbx)\n"
	"	mov %ss, %ax; mov %rax, " S(RM_SS) "(%rbx)\n"
	"	mov %ds, %ax; mov %rax, " S(RM_DS) "(%rbx)\n"
	"	mov %es, %ax; mov %rax, " S(RM_ES) "(%rbx)\n"
	"	mov %fs, %ax; mov %rax, " S(RM_FS) "(%rbx)\n"
	"	mov %gs, %ax; mov %rax, " S(RM_GS) "(%rbx)\n"
	"	mov $0xc0000100, %ecx; rdmsr; mov %eax, " S(RM_FSBASE) "(%rbx); mov %edx, " S(RM_FSBASE) "+4(%rbx)\n"
	"	mov $0xc0000101, %ecx; rdmsr; mov %eax, " S(RM_GSBASE) "(%rbx); mov %edx, " S(RM_GSBASE) "+4(%rbx)\n"
	"	sgdt " S(RM_GDTR) "(%rbx)\n"
	"	sidt " S(RM_IDTR) "(%rbx)\n"
	"	lgdt " S(RM_NEWGDTR) "(%rbx)\n"
	"	mov %ebx, %edi\n"
	"	pushq $" S(SEL_CODE32) "\n"
	"	lea (rm_pm32 - rm_blob_start)(%rbx), %rax\n"
	"	push %rax\n"
	"	lretq\n"
	"1:\n" /* back from the blob, on the firmware's GDT, stack and segments */
	"	popfq\n"
	"	pop %r15; pop %r14; pop %r13; pop %r12; pop %rbp; pop %rbx\n"
	"	ret\n"

	".section .data.rmblob, \"aw\"\n"
	".globl rm_blob_start\n.hidden rm_blob_start\n"
	".globl rm_blob_end\n.hidden rm_blob_end\n"
	"rm_blob_start:\n"
	".code32\n"
	"rm_pm32:\n" /* compatibility mode, EDI = B */
	"	mov $" S(SEL_DATA32) ", %ax; mov %ax, %ds; mov %ax, %es; mov %ax, %ss\n"
	"	lea " S(STACK_TOP) "(%edi), %esp\n"
	"	mov %cr0, %eax; and $0x7fffffff, %eax; mov %eax, %cr0\n" /* paging off: LMA = 0 */
	"	mov $0xc0000080, %ecx; rdmsr; and $0xfffffeff, %eax; wrmsr\n" /* EFER.LME = 0 */
	/* legacy 32-bit protected mode: try 5, JMP to a TSS (a task switch): #GP(0) */
	"	lidt " S(RM_PMIDTR) "(%edi)\n"
	"	movb $5, " S(RM_CUR) "(%edi)\n"
	"	lea (3f - rm_blob_start)(%edi), %eax; mov %eax, " S(RM_RESUME32) "(%edi)\n"
	"	ljmp $" S(SEL_TSS) ", $0\n"
	"3:\n"
	"	ljmp $" S(SEL_CODE16) ", $(rm_pm16 - rm_blob_start)\n"
	/* 32-bit exception stubs, 16 bytes apart; vectors 8, 10-13 push an error code */
	"	.balign 16\n"
	"rm_pm_stubs:\n"
	"	.irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13\n"
	"	.balign 16\n"
	"	.if \\v == 8 || (\\v >= 10 && \\v <= 13)\n"
	"	add $4, %esp\n"
	"	.endif\n"
	"	mov $\\v, %al\n"
	"	jmp rm_pm_common\n"
	"	.endr\n"
	"rm_pm_common:\n" /* ESP is in the trampoline page: its base is B */
	"	mov %esp, %ebx; and $0xfffff000, %ebx\n"
	"	movzbl " S(RM_CUR) "(%ebx), %ecx\n"
	"	mov %al, " S(RM_VEC) "(%ebx,%ecx)\n"
	"	add $12, %esp\n" /* EIP, CS, EFLAGS */
	"	mov %ebx, %edi\n"
	"	jmp *" S(RM_RESUME32) "(%ebx)\n"
	".code16\n"
	"rm_pm16:\n"
	"	mov $" S(SEL_DATA16) ", %ax; mov %ax, %ds; mov %ax, %es; mov %ax, %ss\n"
	"	mov $" S(STACK_TOP) ", %sp\n"
	"	mov %cr0, %eax; and $0xfffffffe, %eax; mov %eax, %cr0\n" /* PE = 0 */
	"	pushw " S(RM_SEG) "\n"
	"	pushw $(rm_real - rm_blob_start)\n"
	"	lret\n"
	"rm_real:\n"
	"	mov %cs, %ax; mov %ax, %ds; mov %ax, %es; mov %ax, %ss\n"
	"	mov $" S(STACK_TOP) ", %sp\n"
	"	lidt " S(RM_RMIDTR) "\n"
	/* try 0: WRMSR to IA32_VMX_BASIC (0x480): #GP */
	"	movb $0, " S(RM_CUR) "; movw $(2f - rm_blob_start), " S(RM_RESUME) "\n"
	"	mov $0x480, %ecx; xor %eax, %eax; xor %edx, %edx; wrmsr\n"
	"2:\n"
	/* try 1: RDMSR of IA32_VMX_BASIC: #GP */
	"	movb $1, " S(RM_CUR) "; movw $(2f - rm_blob_start), " S(RM_RESUME) "\n"
	"	mov $0x480, %ecx; rdmsr\n"
	"2:\n"
	/* try 2: XSETBV XCR0 = 0 (x87 bit clear): #GP (or #UD without CR4.OSXSAVE) */
	"	movb $2, " S(RM_CUR) "; movw $(2f - rm_blob_start), " S(RM_RESUME) "\n"
	"	xor %ecx, %ecx; xor %eax, %eax; xor %edx, %edx; xsetbv\n"
	"2:\n"
	/* try 3: MOV to CR0 with PG = 1, PE = 0: #GP */
	"	movb $3, " S(RM_CUR) "; movw $(2f - rm_blob_start), " S(RM_RESUME) "\n"
	"	mov %cr0, %eax; or $0x80000000, %eax; mov %eax, %cr0\n"
	"2:\n"
	/* try 4: CPUID, which exits and does not fault: the handler stays unused */
	"	movb $4, " S(RM_CUR) "; movw $(2f - rm_blob_start), " S(RM_RESUME) "\n"
	"	xor %eax, %eax; xor %ecx, %ecx; cpuid\n"
	"2:\n"
	/* back: protected mode on our GDT, then 32-bit code at B + rm_pm32_back */
	"	cli\n"
	"	mov " S(RM_BASE) ", %ebx\n"
	"	mov %cr0, %eax; or $1, %eax; mov %eax, %cr0\n"
	"	pushl $" S(SEL_CODE32) "\n"
	"	lea (rm_pm32_back - rm_blob_start)(%ebx), %eax\n"
	"	pushl %eax\n"
	"	lretl\n"
	/* exception stubs, 16 bytes apart: record the vector, go to the common part */
	"	.balign 16\n"
	"rm_stubs:\n"
	"	.irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
	"	.balign 16\n"
	"	movb $\\v, %cs:" S(RM_TMP) "\n"
	"	jmp rm_common\n"
	"	.endr\n"
	"rm_common:\n"
	"	push %bx; push %ax\n"
	"	xor %bx, %bx; movb %cs:" S(RM_CUR) ", %bl\n"
	"	movb %cs:" S(RM_TMP) ", %al; movb %al, %cs:" S(RM_VEC) "(%bx)\n"
	"	pop %ax; pop %bx\n"
	"	add $6, %sp\n" /* IP, CS, FLAGS: real mode pushes no error code */
	"	jmp *%cs:" S(RM_RESUME) "\n"
	".code32\n"
	"rm_pm32_back:\n" /* EBX = B */
	"	mov $" S(SEL_DATA32) ", %ax; mov %ax, %ds; mov %ax, %es; mov %ax, %ss\n"
	"	lea " S(STACK_TOP) "(%ebx), %esp\n"
	"	mov " S(RM_CR4) "(%ebx), %eax; mov %eax, %cr4\n"
	"	mov " S(RM_CR3) "(%ebx), %eax; mov %eax, %cr3\n"
	"	mov $0xc0000080, %ecx; rdmsr; or $0x100, %eax; wrmsr\n" /* EFER.LME = 1 */
	"	mov " S(RM_CR0) "(%ebx), %eax; mov %eax, %cr0\n" /* paging on: LMA = 1 */
	"	pushl $" S(SEL_CODE64) "\n"
	"	lea (rm_lm_back - rm_blob_start)(%ebx), %eax\n"
	"	pushl %eax\n"
	"	lretl\n"
	".code64\n"
	"rm_lm_back:\n" /* 64-bit, RBX = B (upper half zero) */
	"	mov %ebx, %ebx\n"
	"	lgdt " S(RM_GDTR) "(%rbx)\n"
	"	lidt " S(RM_IDTR) "(%rbx)\n"
	"	mov " S(RM_RSP) "(%rbx), %rsp\n"
	"	mov " S(RM_SS) "(%rbx), %rax; mov %ax, %ss\n"
	"	mov " S(RM_DS) "(%rbx), %rax; mov %ax, %ds\n"
	"	mov " S(RM_ES) "(%rbx), %rax; mov %ax, %es\n"
	"	mov " S(RM_FS) "(%rbx), %rax; mov %ax, %fs\n"
	"	mov " S(RM_GS) "(%rbx), %rax; mov %ax, %gs\n"
	"	mov $0xc0000100, %ecx; mov " S(RM_FSBASE) "(%rbx), %eax; mov " S(RM_FSBASE) "+4(%rbx), %edx; wrmsr\n"
	"	mov $0xc0000101, %ecx; mov " S(RM_GSBASE) "(%rbx), %eax; mov " S(RM_GSBASE) "+4(%rbx), %edx; wrmsr\n"
	"	pushq " S(RM_CS) "(%rbx)\n"
	"	pushq " S(RM_RET) "(%rbx)\n"
	"	lretq\n"
	"rm_blob_end:\n"
	".text\n");

__attribute__((visibility("hidden"))) void rm_excursion(uint64_t base);
__attribute__((visibility("hidden"))) extern char rm_blob_start[], rm_blob_end[], rm_stubs[], rm_pm_stubs[];

static const char *const try_names[N_TRIES] = {
	"WRMSR IA32_VMX_BASIC", "RDMSR IA32_VMX_BASIC", "XSETBV XCR0 = 0", "MOV CR0 with PG = 1, PE = 0", "CPUID",
	"JMP to a TSS",
};

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)v); put16(p + 2, (uint16_t)(v >> 16)); }
static void put64(uint8_t *p, uint64_t v) { put32(p, (uint32_t)v); put32(p + 4, (uint32_t)(v >> 32)); }

/* A 16-bit code or data segment with base b, limit 0xffff (SDM 3.4.5). */
static uint64_t seg16(uint32_t b, int code)
{
	return 0xffffULL | ((uint64_t)(b & 0xffffff) << 16) | ((uint64_t)(code ? 0x9a : 0x92) << 40) |
	       ((uint64_t)(b >> 24) << 56);
}

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *systab)
{
	guest_init(image, systab);
	tap_plan(N_TESTS);
	struct hostile_guard g;
	hostile_guard_setup(&g);

	EFI_PHYSICAL_ADDRESS b = 0x9ffff;
	EFI_STATUS st = uefi_call_wrapper(BS->AllocatePages, 4, AllocateMaxAddress, EfiBootServicesData, 1, &b);
	uint64_t cr3 = read_cr3(), cr4 = read_cr4();
	int ok = !EFI_ERROR(st) && b < 0xa0000 && !(cr3 >> 32) && !(cr4 & (1u << 17)) /* PCIDE */ &&
		 (uint64_t)(rm_blob_end - rm_blob_start) <= IVT_OFF;
	tap_ok(ok, "a trampoline page below 1 MiB (0x%llx, status %llx), CR3 below 4 GiB (%llx), no PCIDE",
	       (unsigned long long)b, (unsigned long long)st, (unsigned long long)cr3);
	if (ok) {
		uint8_t *p = (uint8_t *)(uintptr_t)b;
		mem_set(p, 0, 4096);
		mem_copy(p, rm_blob_start, (uint64_t)(rm_blob_end - rm_blob_start));
		put32(p + RM_BASE, (uint32_t)b);
		put16(p + RM_SEG, (uint16_t)(b >> 4));
		mem_set(p + RM_VEC, 0xff, 16);
		uint8_t *gdt = p + RM_GDT;
		put64(gdt + SEL_CODE64, 0x00af9a000000ffffULL);
		put64(gdt + SEL_CODE32, 0x00cf9a000000ffffULL);
		put64(gdt + SEL_DATA32, 0x00cf92000000ffffULL);
		put64(gdt + SEL_CODE16, seg16((uint32_t)b, 1));
		put64(gdt + SEL_DATA16, seg16((uint32_t)b, 0));
		put64(p + RM_NEWGDTR + 2, b + RM_GDT);
		/* An available 32-bit TSS (type 9) at B + TSS_OFF, limit 0x67 (SDM 8.2.2). */
		uint32_t tss = (uint32_t)b + TSS_OFF;
		put64(gdt + SEL_TSS, 0x67ULL | ((uint64_t)(tss & 0xffffff) << 16) | (0x89ULL << 40) |
					    ((uint64_t)(tss >> 24) << 56));
		put16(p + RM_NEWGDTR, 0x37);
		/* 32-bit interrupt gates (SDM 6.11) to the stubs for vectors 0-13. */
		uint32_t pm_stubs = (uint32_t)b + (uint32_t)(rm_pm_stubs - rm_blob_start);
		for (unsigned v = 0; v < PM_VECTORS; v++) {
			uint32_t off = pm_stubs + 16 * v;
			uint8_t *gate = p + IDT32_OFF + 8 * v;
			put16(gate, (uint16_t)off);
			put16(gate + 2, SEL_CODE32);
			put16(gate + 4, 0x8e00);
			put16(gate + 6, (uint16_t)(off >> 16));
		}
		put16(p + RM_PMIDTR, 8 * PM_VECTORS - 1);
		put32(p + RM_PMIDTR + 2, (uint32_t)b + IDT32_OFF);
		put16(p + RM_RMIDTR, 0x3ff);
		put32(p + RM_RMIDTR + 2, (uint32_t)(b + IVT_OFF));
		/* IVT: every vector to its stub (segment B >> 4); vectors >= 32 to stub 31. */
		uint16_t stubs = (uint16_t)(rm_stubs - rm_blob_start);
		for (unsigned v = 0; v < 256; v++) {
			put16(p + IVT_OFF + 4 * v, (uint16_t)(stubs + 16 * (v < 32 ? v : 31)));
			put16(p + IVT_OFF + 4 * v + 2, (uint16_t)(b >> 4));
		}
		rm_excursion(b);
	}
	tap_ok(ok, "the BSP went to real mode and came back to long mode");
	for (unsigned i = 0; i < N_TRIES; i++) {
		uint8_t v = ok ? ((volatile uint8_t *)(uintptr_t)b)[RM_VEC + i] : 0xee;
		if (i == 5) {
			tap_ok(ok && v == 13, "32-bit protected mode: %s raises #GP, task switches are not emulated "
			       "(vector %s%u)", try_names[i], v == 0xff ? "none " : "", v == 0xff ? 0 : v);
			continue;
		}
		int want_fault = i < 4;
		int good = want_fault ? (v == 13 || (i == 2 && v == 6)) : v == 0xff;
		tap_ok(ok && good, "real mode: %s %s (vector %s%u)", try_names[i],
		       want_fault ? "faults, delivered through the real-mode IVT without an error code" : "does not fault",
		       v == 0xff ? "none " : "", v == 0xff ? 0 : v);
	}
	if (ok)
		uefi_call_wrapper(BS->FreePages, 2, b, 1);
	hostile_postcheck(&g, "real-mode faults");
	guest_finish();
}
