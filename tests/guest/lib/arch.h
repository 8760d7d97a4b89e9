/*
 * arch.h: the guest test library's small wrappers around single x86 instructions (port I/O,
 * MSRs, control registers, descriptor-table registers, segment selectors, RFLAGS, TSC).
 *
 * All of the library's inline assembly lives here; the few multi-instruction routines that
 * need their own stack discipline (exception entry, the CPL-3 round trip, the register
 * preservation probe) are top-level assembly in stubs.c. Architectural constants are defined
 * here from the Intel SDM rather than taken from the hypervisor's headers, so the tests do
 * not share definitions with the code they test.
 */
#ifndef GUEST_ARCH_H
#define GUEST_ARCH_H

#include <stdint.h>

/* SDM Vol. 3A 2.5: CR4 bits the tests touch */
#define X86_CR4_LA57 (1ull << 12)
#define X86_CR4_VMXE (1ull << 13)
#define X86_CR4_SMEP (1ull << 20)
#define X86_CR4_SMAP (1ull << 21)

/* SDM Vol. 3A 2.3: RFLAGS */
#define X86_RFLAGS_FIXED (1ull << 1)
#define X86_RFLAGS_IF    (1ull << 9)

/* SDM Vol. 3A 6.3.1: exception vectors */
#define X86_DE 0
#define X86_DB 1
#define X86_BP 3
#define X86_UD 6
#define X86_NM 7
#define X86_DF 8
#define X86_TS 10
#define X86_NP 11
#define X86_SS 12
#define X86_GP 13
#define X86_PF 14
#define X86_AC 17

/* MSRs (SDM Vol. 4) */
#define MSR_IA32_FEATURE_CONTROL 0x3aU
#define MSR_IA32_EFER            0xc0000080U
#define MSR_IA32_FS_BASE         0xc0000100U
#define MSR_IA32_GS_BASE         0xc0000101U
#define MSR_IA32_KERNEL_GS_BASE  0xc0000102U

struct __attribute__((packed)) x86_dtr {
	uint16_t limit;
	uint64_t base;
};

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ __volatile__("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;
	__asm__ __volatile__("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline void outw(uint16_t port, uint16_t v)
{
	__asm__ __volatile__("outw %0, %1" : : "a"(v), "Nd"(port));
}

static inline void cpu_relax(void)
{
	__asm__ __volatile__("pause" ::: "memory");
}

static inline void cpu_cli(void)
{
	__asm__ __volatile__("cli" ::: "memory");
}

static inline void cpu_hlt(void)
{
	__asm__ __volatile__("hlt" ::: "memory");
}

static inline uint64_t read_rflags(void)
{
	uint64_t f;
	__asm__ __volatile__("pushfq; popq %0" : "=r"(f) : : "memory");
	return f;
}

static inline void write_rflags(uint64_t f)
{
	__asm__ __volatile__("pushq %0; popfq" : : "r"(f) : "memory", "cc");
}

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

static inline uint64_t rdmsr(uint32_t msr)
{
	uint32_t lo, hi;
	__asm__ __volatile__("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return ((uint64_t)hi << 32) | lo;
}

static inline void wrmsr(uint32_t msr, uint64_t v)
{
	__asm__ __volatile__("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)) : "memory");
}

static inline uint64_t read_cr0(void)
{
	uint64_t v;
	__asm__ __volatile__("mov %%cr0, %0" : "=r"(v));
	return v;
}

static inline uint64_t read_cr3(void)
{
	uint64_t v;
	__asm__ __volatile__("mov %%cr3, %0" : "=r"(v));
	return v;
}

static inline void write_cr3(uint64_t v)
{
	__asm__ __volatile__("mov %0, %%cr3" : : "r"(v) : "memory");
}

static inline uint64_t read_cr4(void)
{
	uint64_t v;
	__asm__ __volatile__("mov %%cr4, %0" : "=r"(v));
	return v;
}

static inline void write_cr4(uint64_t v)
{
	__asm__ __volatile__("mov %0, %%cr4" : : "r"(v) : "memory");
}

static inline void invlpg(const void *va)
{
	__asm__ __volatile__("invlpg (%0)" : : "r"(va) : "memory");
}

static inline void sidt(struct x86_dtr *d)
{
	__asm__ __volatile__("sidt %0" : "=m"(*d));
}

static inline void lidt(const struct x86_dtr *d)
{
	__asm__ __volatile__("lidt %0" : : "m"(*d) : "memory");
}

static inline void sgdt(struct x86_dtr *d)
{
	__asm__ __volatile__("sgdt %0" : "=m"(*d));
}

static inline void lgdt(const struct x86_dtr *d)
{
	__asm__ __volatile__("lgdt %0" : : "m"(*d) : "memory");
}

static inline uint16_t str(void)
{
	uint16_t sel;
	__asm__ __volatile__("str %0" : "=r"(sel));
	return sel;
}

static inline void ltr(uint16_t sel)
{
	__asm__ __volatile__("ltr %0" : : "r"(sel) : "memory");
}

static inline uint16_t read_cs(void)
{
	uint16_t sel;
	__asm__ __volatile__("mov %%cs, %0" : "=r"(sel));
	return sel;
}

/*
 * VMX instructions (SDM Vol. 3C ch. 31), for checking that a guest gets #UD. Operands are
 * dummies: with CR4.VMXE = 0 or in VMX non-root operation they fault before using them.
 */
static inline void x86_vmxon(uint64_t *pa) { __asm__ __volatile__("vmxon %0" : : "m"(*pa) : "memory", "cc"); }
static inline void x86_vmxoff(void) { __asm__ __volatile__("vmxoff" ::: "memory", "cc"); }
static inline void x86_vmclear(uint64_t *pa) { __asm__ __volatile__("vmclear %0" : : "m"(*pa) : "memory", "cc"); }
static inline void x86_vmptrld(uint64_t *pa) { __asm__ __volatile__("vmptrld %0" : : "m"(*pa) : "memory", "cc"); }
static inline void x86_vmptrst(uint64_t *pa) { __asm__ __volatile__("vmptrst %0" : "=m"(*pa) : : "memory", "cc"); }
static inline uint64_t x86_vmread(uint64_t field)
{
	uint64_t v = 0;
	__asm__ __volatile__("vmread %1, %0" : "+r"(v) : "r"(field) : "memory", "cc");
	return v;
}
static inline void x86_vmwrite(uint64_t field, uint64_t v)
{
	__asm__ __volatile__("vmwrite %1, %0" : : "r"(field), "r"(v) : "memory", "cc");
}
static inline void x86_vmlaunch(void) { __asm__ __volatile__("vmlaunch" ::: "memory", "cc"); }
static inline void x86_vmresume(void) { __asm__ __volatile__("vmresume" ::: "memory", "cc"); }
static inline void x86_invept(uint64_t type, const uint64_t desc[2])
{
	__asm__ __volatile__("invept %0, %1" : : "m"(*(const uint64_t(*)[2])desc), "r"(type) : "memory", "cc");
}
static inline void x86_invvpid(uint64_t type, const uint64_t desc[2])
{
	__asm__ __volatile__("invvpid %0, %1" : : "m"(*(const uint64_t(*)[2])desc), "r"(type) : "memory", "cc");
}
static inline void x86_ud2(void) { __asm__ __volatile__("ud2" ::: "memory"); }

/* Stores of each width, each a distinct instruction (MOV r/m8,imm8; MOV r/m32,r32; MOV r/m64,r64). */
static inline void poke8_imm(volatile uint8_t *p) { __asm__ __volatile__("movb $0x5a, %0" : "=m"(*p) : : "memory"); }
static inline void poke32(volatile uint32_t *p, uint32_t v) { __asm__ __volatile__("movl %1, %0" : "=m"(*p) : "r"(v) : "memory"); }
static inline void poke64(volatile uint64_t *p, uint64_t v) { __asm__ __volatile__("movq %1, %0" : "=m"(*p) : "r"(v) : "memory"); }

/* Instruction bytes for tests that must execute a specific encoding. */
#define INSN_VMCALL 0x0f, 0x01, 0xc1
#define INSN_INT80  0xcd, 0x80
#define INSN_MOV_CS_EAX 0x8c, 0xc8 /* mov %cs, %eax */

#endif
