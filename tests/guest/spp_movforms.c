/*
 * spp_movforms.c: the encodings of MOV to memory (88 /r, 89 /r, C6 /0, C7 /0) that the
 * hypervisor's store fast path handles on the saved registers in place (spp/violation.c
 * mov_store), against a page with a protected sub-page (ABI.md 4.2). Each form runs natively on
 * an unprotected page first; the same form on the protected page must leave exactly the same
 * bytes in every writable sub-page and change no protected byte. Two targets: inside writable
 * sub-page 1 (software mode: an exit; hardware SPP: no exit) and across the end of protected
 * sub-page 0 (both modes exit: its writable bytes land, its protected ones do not; 1-byte forms
 * at the last protected byte). The forms are the ones whose source register or address takes
 * decoding care: AH (88 without REX), SIL and R9B (with REX), 16-bit operands, R10D, a
 * sign-extended imm32 (REX.W C7), imm16, RSP as the source, RSP as the base, a scaled index,
 * and an FS override with a non-zero FS base.
 */
#include "arch.h"
#include "guest.h"
#include "spp_util.h"
#include <tessel.h>

#define PAGE 4096u
#define MSR_FS_BASE 0xc0000100u
#define FS_DELTA 0x1000u

/* Each form stores to the address in RDI with its source register set to a known value. */
typedef void (*form_fn)(volatile uint8_t *p);

static void f_ah(volatile uint8_t *p)
{
	__asm__ __volatile__("movl $0x1234a5c3, %%eax\n\tmovb %%ah, (%0)" : : "D"(p) : "rax", "memory");
}
static void f_sil(volatile uint8_t *p)
{
	__asm__ __volatile__("movl $0x77, %%esi\n\tmovb %%sil, (%0)" : : "D"(p) : "rsi", "memory");
}
static void f_r9b(volatile uint8_t *p)
{
	__asm__ __volatile__("movq $0x1122334455667788, %%r9\n\tmovb %%r9b, (%0)" : : "D"(p) : "r9", "memory");
}
static void f_ax16(volatile uint8_t *p)
{
	__asm__ __volatile__("movl $0xdeadbeef, %%eax\n\tmovw %%ax, (%0)" : : "D"(p) : "rax", "memory");
}
static void f_r10d(volatile uint8_t *p)
{
	__asm__ __volatile__("movq $0x0102030405060708, %%r10\n\tmovl %%r10d, (%0)" : : "D"(p) : "r10", "memory");
}
static void f_imm32sx(volatile uint8_t *p)
{
	__asm__ __volatile__("movq $-2, (%0)" : : "D"(p) : "memory");
}
static void f_imm16(volatile uint8_t *p)
{
	__asm__ __volatile__("movw $0x4321, (%0)" : : "D"(p) : "memory");
}
static void f_imm8(volatile uint8_t *p)
{
	__asm__ __volatile__("movb $0x9c, (%0)" : : "D"(p) : "memory");
}
/* RSP as the source: RSP is set to a known value (interrupts off around it). */
static void f_rsp_src(volatile uint8_t *p)
{
	__asm__ __volatile__("pushfq\n\tcli\n\tmovq %%rsp, %%r8\n\tmovq $0x0badc0de12345678, %%rsp\n\t"
			     "movq %%rsp, (%0)\n\tmovq %%r8, %%rsp\n\tpopfq" : : "D"(p) : "r8", "memory");
}
/* RSP as the base: RSP points 8 bytes below the target. */
static void f_rsp_base(volatile uint8_t *p)
{
	__asm__ __volatile__("pushfq\n\tcli\n\tmovq %%rsp, %%r8\n\tleaq -8(%0), %%rsp\n\t"
			     "movq $0x5566778899aabbcc, %%rax\n\tmovq %%rax, 8(%%rsp)\n\tmovq %%r8, %%rsp\n\tpopfq"
			     : : "D"(p) : "r8", "rax", "memory");
}
/* Base + index * 8 + displacement. */
static void f_sib(volatile uint8_t *p)
{
	__asm__ __volatile__("movq $3, %%rcx\n\tmovq $0xfedcba9876543210, %%rax\n\t"
			     "movq %%rax, -24(%0,%%rcx,8)" : : "D"(p) : "rcx", "rax", "memory");
}
/* FS override with FS.base = FS_DELTA: the address in RDI is FS_DELTA lower. */
static void f_fs(volatile uint8_t *p)
{
	uint64_t old = rdmsr(MSR_FS_BASE);
	wrmsr(MSR_FS_BASE, FS_DELTA);
	__asm__ __volatile__("movl $0x600dcafe, %%eax\n\tmovl %%eax, %%fs:(%0)" : : "D"(p - FS_DELTA) : "rax", "memory");
	wrmsr(MSR_FS_BASE, old);
}

static const struct { const char *name; form_fn fn; unsigned size; } forms[] = {
	{ "MOV m8, AH (88, no REX)", f_ah, 1 },
	{ "MOV m8, SIL (REX 88)", f_sil, 1 },
	{ "MOV m8, R9B (REX.R 88)", f_r9b, 1 },
	{ "MOV m8, imm8 (C6)", f_imm8, 1 },
	{ "MOV m16, AX (66 89)", f_ax16, 2 },
	{ "MOV m16, imm16 (66 C7)", f_imm16, 2 },
	{ "MOV m32, R10D (REX.R 89)", f_r10d, 4 },
	{ "MOV m32, EAX with an FS override (FS.base != 0)", f_fs, 4 },
	{ "MOV m64, imm32 sign-extended (REX.W C7)", f_imm32sx, 8 },
	{ "MOV m64, RSP (RSP as the source)", f_rsp_src, 8 },
	{ "MOV [RSP+8], RAX (RSP as the base)", f_rsp_base, 8 },
	{ "MOV [RDI+RCX*8-24], RAX (scaled index)", f_sib, 8 },
};
#define NFORMS (sizeof(forms) / sizeof(forms[0]))
#define MAP 0xfffffffeu /* sub-page 0 protected */

/* Runs form f at offset off on the protected page p (reference run on ref); 0 if right. */
static int check(unsigned f, uint8_t *p, uint8_t *ref, unsigned off, char *why, unsigned wl)
{
	pat_fill(ref, PAGE, (uint8_t)(f * 7 + off));
	pat_fill(p, PAGE, (uint8_t)(f * 7 + off));
	invlpg(ref);
	forms[f].fn(ref + off);
	/* Expected: the native result in writable sub-pages, the old pattern in sub-page 0. */
	uint8_t *exp = ref;
	for (unsigned k = 0; k < 128; k++)
		exp[k] = p[k];
	set1(p, MAP, 0);
	invlpg(p);
	forms[f].fn(p + off);
	unprot(p, 1);
	unsigned first = 0;
	if (mem_diff(p, exp, PAGE, &first)) {
		fmt_snprintf(why, wl, "at +%u: byte %u is %02x, expected %02x", off, first, p[first], exp[first]);
		return 1;
	}
	return 0;
}

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *st)
{
	spp_start(image, st, (int)NFORMS);
	suite_begin("movforms", (int)NFORMS);
	uint8_t *p = spp_pages(1), *ref = spp_pages(1);
	if (!p || !ref || !spp.ok) {
		suite_end();
		guest_finish();
	}
	for (unsigned f = 0; f < NFORMS; f++) {
		char why[120] = "";
		unsigned size = forms[f].size;
		/* inside writable sub-page 1; across the end of protected sub-page 0 (1 byte: its
		 * last byte, denied whole) */
		unsigned across = size == 1 ? 127 : 128 - size / 2;
		int bad = check(f, p, ref, 200, why, sizeof(why)) || check(f, p, ref, across, why, sizeof(why));
		sok(!bad, "%s: the writable bytes as native, the protected ones unchanged (%s mode)%s%s", forms[f].name,
		    spp_mode(), bad ? ": " : "", why);
	}
	suite_end();
	spp_free(p, 1);
	spp_free(ref, 1);
	guest_finish();
}
