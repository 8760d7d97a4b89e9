/*
 * The hardware layer: every piece of inline assembly in Tessel lives in this header.
 *
 * This is the seam for host unit tests: tests/fake/hw.h offers the same functions over
 * tables (MSRs, CPUID, a VMCS array, guest memory in a heap buffer), and the include path
 * decides which one a build sees. Code under test never #ifdefs on the host build.
 *
 * The host address space maps all physical memory 1:1 (mm/paging.c), so host-physical
 * addresses convert to pointers by identity.
 */
#ifndef ARCH_HW_H
#define ARCH_HW_H

#include <tessel/types.h>

/* Exception table: a faulting instruction at 'insn' resumes at 'fixup' (see hv/traps.c). */
struct extable_entry { u64 insn; u64 fixup; };

#define EXTABLE(insn_label, fixup_label) \
	".pushsection __ex_table, \"a\"\n\t.balign 8\n\t.quad " insn_label ", " fixup_label "\n\t.popsection\n\t"

static inline void *hpa_to_ptr(hpa_t a) { return (void *)(uintptr_t)a.v; }
static inline hpa_t ptr_to_hpa(const void *p) { return hpa((u64)(uintptr_t)p); }

static inline void cpuid_count(u32 leaf, u32 sub, u32 *a, u32 *b, u32 *c, u32 *d)
{
	__asm__ __volatile__("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d) : "a"(leaf), "c"(sub));
}

static inline u64 rdmsr(u32 msr)
{
	u32 lo, hi;
	__asm__ __volatile__("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return ((u64)hi << 32) | lo;
}

static inline void wrmsr(u32 msr, u64 v)
{
	__asm__ __volatile__("wrmsr" : : "c"(msr), "a"((u32)v), "d"((u32)(v >> 32)) : "memory");
}

/* RDMSR/WRMSR that report a #GP instead of taking it (used on behalf of the guest). */
static inline bool rdmsr_safe(u32 msr, u64 *v)
{
	u32 lo = 0, hi = 0;
	u8 ok = 1;
	__asm__ __volatile__("1: rdmsr\n\t"
		     "jmp 3f\n"
		     "2: movb $0, %2\n"
		     "3:\n\t" EXTABLE("1b", "2b")
		     : "+a"(lo), "+d"(hi), "+r"(ok) : "c"(msr));
	*v = ((u64)hi << 32) | lo;
	return ok;
}

static inline bool wrmsr_safe(u32 msr, u64 v)
{
	u8 ok = 1;
	__asm__ __volatile__("1: wrmsr\n\t"
		     "jmp 3f\n"
		     "2: movb $0, %0\n"
		     "3:\n\t" EXTABLE("1b", "2b")
		     : "+r"(ok) : "c"(msr), "a"((u32)v), "d"((u32)(v >> 32)) : "memory");
	return ok;
}

static inline bool xsetbv_safe(u32 idx, u64 v)
{
	u8 ok = 1;
	__asm__ __volatile__("1: xsetbv\n\t"
		     "jmp 3f\n"
		     "2: movb $0, %0\n"
		     "3:\n\t" EXTABLE("1b", "2b")
		     : "+r"(ok) : "c"(idx), "a"((u32)v), "d"((u32)(v >> 32)) : "memory");
	return ok;
}

static inline u64 xgetbv(u32 idx)
{
	u32 lo, hi;
	__asm__ __volatile__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(idx));
	return ((u64)hi << 32) | lo;
}

#define DEFINE_CR(n) \
	static inline u64 read_cr##n(void) { u64 v; __asm__ __volatile__("mov %%cr" #n ", %0" : "=r"(v)); return v; } \
	static inline void write_cr##n(u64 v) { __asm__ __volatile__("mov %0, %%cr" #n : : "r"(v) : "memory"); }
DEFINE_CR(0)
DEFINE_CR(2)
DEFINE_CR(3)
DEFINE_CR(4)
#undef DEFINE_CR

static inline void mmio_write32(u64 addr, u32 v) { *(volatile u32 *)(uintptr_t)addr = v; }
static inline u32 mmio_read32(u64 addr) { return *(volatile u32 *)(uintptr_t)addr; }

static inline u64 read_dr6(void) { u64 v; __asm__ __volatile__("mov %%dr6, %0" : "=r"(v)); return v; }
static inline void write_dr6(u64 v) { __asm__ __volatile__("mov %0, %%dr6" : : "r"(v)); }

static inline u64 read_dr7(void) { u64 v; __asm__ __volatile__("mov %%dr7, %0" : "=r"(v)); return v; }

/* The breakpoint address registers: the guest's own (MOV DR does not exit), reset by INIT. */
static inline void write_dr0_3(u64 v)
{
	__asm__ __volatile__("mov %0, %%dr0; mov %0, %%dr1; mov %0, %%dr2; mov %0, %%dr3" : : "r"(v));
}

static inline u64 read_rflags(void) { u64 v; __asm__ __volatile__("pushfq; popq %0" : "=r"(v)); return v; }

struct __packed desc_ptr { u16 limit; u64 base; };

static inline void sgdt(struct desc_ptr *d) { __asm__ __volatile__("sgdt %0" : "=m"(*d)); }
static inline void sidt(struct desc_ptr *d) { __asm__ __volatile__("sidt %0" : "=m"(*d)); }
static inline void lgdt(const struct desc_ptr *d) { __asm__ __volatile__("lgdt %0" : : "m"(*d)); }
static inline void lidt(const struct desc_ptr *d) { __asm__ __volatile__("lidt %0" : : "m"(*d)); }
static inline void ltr(u16 sel) { __asm__ __volatile__("ltr %0" : : "r"(sel)); }
static inline u16 str(void) { u16 v; __asm__ __volatile__("str %0" : "=r"(v)); return v; }
static inline u16 sldt(void) { u16 v; __asm__ __volatile__("sldt %0" : "=r"(v)); return v; }

#define DEFINE_SEG(name) \
	static inline u16 read_##name(void) { u16 v; __asm__ __volatile__("mov %%" #name ", %0" : "=r"(v)); return v; }
DEFINE_SEG(cs)
DEFINE_SEG(ss)
DEFINE_SEG(ds)
DEFINE_SEG(es)
DEFINE_SEG(fs)
DEFINE_SEG(gs)
#undef DEFINE_SEG

static inline void outb(u16 port, u8 v) { __asm__ __volatile__("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline u8 inb(u16 port) { u8 v; __asm__ __volatile__("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline u16 inw(u16 port) { u16 v; __asm__ __volatile__("inw %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline void outl(u16 port, u32 v) { __asm__ __volatile__("outl %0, %1" : : "a"(v), "Nd"(port)); }
static inline u32 inl(u16 port) { u32 v; __asm__ __volatile__("inl %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline void outw(u16 port, u16 v) { __asm__ __volatile__("outw %0, %1" : : "a"(v), "Nd"(port)); }

/*
 * A VM exit caused by an NMI leaves NMIs blocked in root mode until the next IRET (SDM Vol.
 * 3C 27.5.5 / 31.7.1.2): IRET to the next instruction on the current stack to unblock them.
 */
static inline void nmi_unblock(void)
{
	u64 tmp;
	__asm__ __volatile__("mov %%rsp, %0\n\t"
			     "pushq %q1\n\t"
			     "pushq %0\n\t"
			     "pushfq\n\t"
			     "pushq %q2\n\t"
			     "leaq 1f(%%rip), %0\n\t"
			     "pushq %0\n\t"
			     "iretq\n"
			     "1:"
			     : "=&r"(tmp)
			     : "r"((u64)read_ss()), "r"((u64)read_cs())
			     : "memory", "cc");
}

static inline void cpu_relax(void) { __asm__ __volatile__("pause" ::: "memory"); }
static inline void cpu_halt(void) { __asm__ __volatile__("hlt" ::: "memory"); }
static inline void irq_disable(void) { __asm__ __volatile__("cli" ::: "memory"); }
static inline void wbinvd(void) { __asm__ __volatile__("wbinvd" ::: "memory"); }
static inline u64 rdtsc(void) { u32 lo, hi; __asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi)); return ((u64)hi << 32) | lo; }
static inline void invlpg(const void *p) { __asm__ __volatile__("invlpg (%0)" : : "r"(p) : "memory"); }
static inline void barrier(void) { __asm__ __volatile__("" ::: "memory"); }

/* The per-CPU area pointer: the host GS base points at a struct whose first member is a
 * pointer to itself (hv/percpu.h). */
static inline void *cpu_local_self(void)
{
	void *p;
	__asm__ __volatile__("mov %%gs:0, %0" : "=r"(p));
	return p;
}

static inline void xsetbv(u32 idx, u64 v)
{
	__asm__ __volatile__("xsetbv" : : "c"(idx), "a"((u32)v), "d"((u32)(v >> 32)) : "memory");
}

/*
 * Guest vector registers, for the write emulator (hv/emulate_sse.c). The hypervisor is
 * built with -mgeneral-regs-only and never touches XMM/YMM, so while it runs they hold the
 * guest's values. Only memory operands are used, so no C object lives in a vector register.
 * The caller checks what makes the read legal (CR4.OSFXSR = 1 for cpu_read_xmm(); CR4.OSXSAVE
 * = 1 and XCR0.YMM (bit 2) = 1 for cpu_read_ymm_high(); XCR0 is the guest's, live in root
 * mode). Each read is still covered by the exception table: if it faults anyway (#UD, #NM:
 * the guest changed state between the check and the read, or the check missed a case), it
 * returns false instead of taking the host down. n is taken modulo 16.
 */
#define HW_VEC_READ(insn) \
	__asm__ __volatile__("1: " insn "\n\t" \
			     "jmp 3f\n" \
			     "2: movb $0, %1\n" \
			     "3:\n\t" EXTABLE("1b", "2b") \
			     : "=m"(*(u8(*)[16])out), "+r"(ok))
#define HW_XMM_CASE(i) case i: HW_VEC_READ("movdqu %%xmm" #i ", %0"); break;
#define HW_YMM_CASE(i) case i: HW_VEC_READ("vextractf128 $1, %%ymm" #i ", %0"); break;
#define HW_VEC_CASES(C) C(0) C(1) C(2) C(3) C(4) C(5) C(6) C(7) \
	C(8) C(9) C(10) C(11) C(12) C(13) C(14) C(15)

static inline bool cpu_read_xmm(unsigned n, u8 out[16])
{
	u8 ok = 1;
	switch (n & 15) { HW_VEC_CASES(HW_XMM_CASE) }
	return ok;
}

/* Bits 255:128 of YMMn. */
static inline bool cpu_read_ymm_high(unsigned n, u8 out[16])
{
	u8 ok = 1;
	switch (n & 15) { HW_VEC_CASES(HW_YMM_CASE) }
	return ok;
}
#undef HW_VEC_READ
#undef HW_XMM_CASE
#undef HW_YMM_CASE
#undef HW_VEC_CASES

/* ---- VMX instructions (Vol. 3C chapter 30). Each returns true on success. ---- */

static inline bool vmxon(hpa_t region)
{
	u8 fail;
	__asm__ __volatile__("vmxon %1; setna %0" : "=qm"(fail) : "m"(region.v) : "cc", "memory");
	return !fail;
}

static inline bool vmclear(hpa_t vmcs)
{
	u8 fail;
	__asm__ __volatile__("vmclear %1; setna %0" : "=qm"(fail) : "m"(vmcs.v) : "cc", "memory");
	return !fail;
}

static inline bool vmptrld(hpa_t vmcs)
{
	u8 fail;
	__asm__ __volatile__("vmptrld %1; setna %0" : "=qm"(fail) : "m"(vmcs.v) : "cc", "memory");
	return !fail;
}

/* VMREAD/VMWRITE branch straight on the failure flags (CF or ZF: "jbe"), so a checked
 * access costs three instructions on the exit path rather than five. */
static inline bool vmx_vmread(u64 field, u64 *v)
{
	__asm__ goto("vmread %[f], %[v]\n\tjbe %l[fail]" : [v] "=r"(*v) : [f] "r"(field) : "cc" : fail);
	return true;
fail:
	return false;
}

static inline bool vmx_vmwrite(u64 field, u64 v)
{
	__asm__ goto("vmwrite %[v], %[f]\n\tjbe %l[fail]" : : [f] "r"(field), [v] "rm"(v) : "cc" : fail);
	return true;
fail:
	return false;
}

static inline void vmxoff(void) { __asm__ __volatile__("vmxoff" ::: "cc", "memory"); }

struct invept_desc { u64 eptp; u64 rsvd; };

static inline bool invept(u64 type, u64 eptp)
{
	struct invept_desc d = { eptp, 0 };
	u8 fail;
	__asm__ __volatile__("invept %1, %2; setna %0" : "=qm"(fail) : "m"(d), "r"(type) : "cc", "memory");
	return !fail;
}

struct invvpid_desc { u64 vpid; u64 gla; };

static inline bool invvpid(u64 type, u16 vpid)
{
	struct invvpid_desc d = { vpid, 0 };
	u8 fail;
	__asm__ __volatile__("invvpid %1, %2; setna %0" : "=qm"(fail) : "m"(d), "r"(type) : "cc", "memory");
	return !fail;
}

/* INVEPT/INVVPID types and atomics: the same in the host fake (tests/fake/hw.h). */
#include "hw_shared.h"

#endif
