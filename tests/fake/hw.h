/*
 * The fake hardware layer for host unit tests: the same names and signatures as
 * include/arch/hw.h, implemented over tables in tests/fake/hw_fake.c instead of
 * instructions. The host build puts -Itests/fake first, so `#include <hw.h>` in code under
 * test finds this file; nothing in the code under test knows which one it got.
 *
 * What the tables model (all state is per process; fake_reset() clears it):
 * - MSRs: a table of (index, value). rdmsr() of an unset MSR returns 0 and counts a
 *   "#GP" (fake_msr_gp_count()); rdmsr_safe()/wrmsr_safe() fail for unset MSRs; wrmsr()
 *   sets. Tests declare an MSR with fake_msr_set().
 * - CPUID: (leaf, subleaf) -> a,b,c,d; FAKE_CPUID_ANY_SUB matches every subleaf. Unset leaves
 *   read as zeros.
 * - CR0/CR2/CR3/CR4, DR7, RFLAGS, the segment selectors, GDTR/IDTR/TR/LDTR: plain variables.
 * - One VMCS: an array indexed by field encoding (< FAKE_VMCS_FIELDS); VMREAD/VMWRITE of a
 *   larger encoding fail. VMXON/VMCLEAR/VMPTRLD record their operand and succeed.
 * - Port I/O: every OUTB/OUTW is logged (OUTL as two OUTWs); bytes written to the COM1 data port while the
 *   line-control DLAB bit is clear are also collected as text (fake_io_output()). INB
 *   returns fake_io_set_in()'s value, or 0xFF (a floating bus; LSR "transmitter empty").
 *   A device model (fake_io_set_device) takes every access at its ports whole instead.
 * - Physical memory: a heap buffer standing for host-physical [base, base + size), set up
 *   by fake_phys_init(). hpa_to_ptr()/ptr_to_hpa() translate inside that window and by
 *   identity outside it (so host pointers round-trip and hpa 0 is NULL).
 * - cpu_local_self(): returns the pointer given to fake_cpu_local_set() (NULL at first), per
 *   thread, so a test can play a second CPU on a second thread.
 * - INVEPT/INVVPID/INVLPG/WBINVD/HLT/VMXOFF: counted. cpu_halt() calls the halt hook if one is set
 *   (a test may longjmp out of it), else aborts: a halted hypervisor in a host test is a bug.
 *   cpu_relax() calls the relax hook if one is set (a test can satisfy or end a spin-wait).
 */
/* Same guard as include/arch/hw.h: whichever is seen first wins, never both. */
#ifndef ARCH_HW_H
#define ARCH_HW_H
#define FAKE_HW_H 1

#include <tessel/types.h>

/* ---- test-side controls ---- */

#define FAKE_PHYS_BASE 0x100000000ULL /* a suggested window base: 4 GiB, so hpa 0 is invalid */
#define FAKE_CPUID_ANY_SUB 0xffffffffU
#define FAKE_VMCS_FIELDS 0x8000U
#define FAKE_SERIAL_PORT 0x3f8U

void fake_reset(void); /* everything except physical memory back to its initial state */

void fake_msr_set(u32 msr, u64 v);
u64 fake_msr_get(u32 msr); /* 0 when unset */
bool fake_msr_isset(u32 msr);
void fake_msr_unset(u32 msr);
u64 fake_msr_gp_count(void); /* rdmsr()/wrmsr() of unset MSRs (hardware would #GP) */

void fake_cpuid_set(u32 leaf, u32 sub, u32 a, u32 b, u32 c, u32 d);

enum fake_cr { FAKE_CR0, FAKE_CR2, FAKE_CR3, FAKE_CR4, FAKE_DR7, FAKE_RFLAGS, FAKE_NR_CR };
void fake_cr_set(enum fake_cr r, u64 v);
u64 fake_cr_get(enum fake_cr r);
enum fake_seg { FAKE_CS, FAKE_SS, FAKE_DS, FAKE_ES, FAKE_FS, FAKE_GS, FAKE_TR, FAKE_LDTR, FAKE_NR_SEG };
void fake_seg_set(enum fake_seg s, u16 sel);
u16 fake_seg_get(enum fake_seg s);

u64 fake_vmcs_get(u64 field);
void fake_vmcs_set(u64 field, u64 v);
void fake_vmcs_clear_all(void);
hpa_t fake_vmcs_current(void); /* last VMPTRLD operand */
hpa_t fake_vmxon_region(void); /* last VMXON operand */

const char *fake_io_output(void); /* NUL-terminated text written to FAKE_SERIAL_PORT */
void fake_io_output_clear(void);
void fake_io_set_in(u16 port, u8 v);
struct fake_io_rec { u16 port; u16 value; u8 width; };
size_t fake_io_log_count(void);
const struct fake_io_rec *fake_io_log(size_t i); /* NULL past the end */

u64 fake_invept_count(void); /* INVEPTs by the calling thread */
void fake_set_invept_hook(void (*hook)(void)); /* called at the start of every INVEPT */
u64 fake_invept_last_type(void);
u64 fake_invept_last_eptp(void);
u64 fake_invvpid_count(void);
u64 fake_invlpg_count(void);
u64 fake_wbinvd_count(void);
bool fake_irq_disabled(void);
void fake_set_halt_hook(void (*hook)(void));
void fake_set_relax_hook(void (*hook)(void)); /* cpu_relax() calls it: a test can end a spin-wait */
u64 fake_halt_count(void);
void fake_tsc_set(u64 v); /* rdtsc() returns it and advances it by 1 */
void fake_cpu_local_set(void *p); /* what cpu_local_self() returns (the GS-based self pointer) */
u64 fake_vmxoff_count(void);

/* Allocates (or replaces) the physical window; fills it with 0xA5 so missed zeroing shows. */
void fake_phys_init(u64 base, u64 size);
void fake_phys_fini(void);
u64 fake_phys_base(void);
u64 fake_phys_size(void);

/* ---- the hw.h surface, implemented in hw_fake.c ---- */

struct extable_entry { u64 insn; u64 fixup; };
struct __packed desc_ptr { u16 limit; u64 base; };
struct invept_desc { u64 eptp; u64 rsvd; };
struct invvpid_desc { u64 vpid; u64 gla; };

void *fake_hpa_to_ptr(u64 a);
u64 fake_ptr_to_hpa(const void *p);
static inline void *hpa_to_ptr(hpa_t a) { return fake_hpa_to_ptr(a.v); }
static inline hpa_t ptr_to_hpa(const void *p) { return hpa(fake_ptr_to_hpa(p)); }

void fake_cpuid_count(u32 leaf, u32 sub, u32 *a, u32 *b, u32 *c, u32 *d);
static inline void cpuid_count(u32 leaf, u32 sub, u32 *a, u32 *b, u32 *c, u32 *d)
{
	fake_cpuid_count(leaf, sub, a, b, c, d);
}

u64 fake_rdmsr(u32 msr);
void fake_wrmsr(u32 msr, u64 v);
bool fake_rdmsr_safe(u32 msr, u64 *v);
bool fake_wrmsr_safe(u32 msr, u64 v);
static inline u64 rdmsr(u32 msr) { return fake_rdmsr(msr); }
static inline void wrmsr(u32 msr, u64 v) { fake_wrmsr(msr, v); }
static inline bool rdmsr_safe(u32 msr, u64 *v) { return fake_rdmsr_safe(msr, v); }
static inline bool wrmsr_safe(u32 msr, u64 v) { return fake_wrmsr_safe(msr, v); }

bool fake_xsetbv_safe(u32 idx, u64 v); /* XCR0 only; bit 0 must be set */
u64 fake_xgetbv(u32 idx);
void fake_xsetbv(u32 idx, u64 v); /* unchecked, as XSETBV without a fixup */
static inline bool xsetbv_safe(u32 idx, u64 v) { return fake_xsetbv_safe(idx, v); }
static inline void xsetbv(u32 idx, u64 v) { fake_xsetbv(idx, v); }
static inline u64 xgetbv(u32 idx) { return fake_xgetbv(idx); }

static inline u64 read_cr0(void) { return fake_cr_get(FAKE_CR0); }
static inline u64 read_cr2(void) { return fake_cr_get(FAKE_CR2); }
static inline u64 read_cr3(void) { return fake_cr_get(FAKE_CR3); }
static inline u64 read_cr4(void) { return fake_cr_get(FAKE_CR4); }
static inline void write_cr0(u64 v) { fake_cr_set(FAKE_CR0, v); }
static inline void write_cr2(u64 v) { fake_cr_set(FAKE_CR2, v); }
static inline void write_cr3(u64 v) { fake_cr_set(FAKE_CR3, v); }
static inline void write_cr4(u64 v) { fake_cr_set(FAKE_CR4, v); }
static inline u64 read_dr7(void) { return fake_cr_get(FAKE_DR7); }
static inline u64 read_rflags(void) { return fake_cr_get(FAKE_RFLAGS); }

void fake_sgdt(struct desc_ptr *d);
void fake_sidt(struct desc_ptr *d);
void fake_lgdt(const struct desc_ptr *d);
void fake_lidt(const struct desc_ptr *d);
static inline void sgdt(struct desc_ptr *d) { fake_sgdt(d); }
static inline void sidt(struct desc_ptr *d) { fake_sidt(d); }
static inline void lgdt(const struct desc_ptr *d) { fake_lgdt(d); }
static inline void lidt(const struct desc_ptr *d) { fake_lidt(d); }
static inline void ltr(u16 sel) { fake_seg_set(FAKE_TR, sel); }
static inline u16 str(void) { return fake_seg_get(FAKE_TR); }
static inline u16 sldt(void) { return fake_seg_get(FAKE_LDTR); }
static inline u16 read_cs(void) { return fake_seg_get(FAKE_CS); }
static inline u16 read_ss(void) { return fake_seg_get(FAKE_SS); }
static inline u16 read_ds(void) { return fake_seg_get(FAKE_DS); }
static inline u16 read_es(void) { return fake_seg_get(FAKE_ES); }
static inline u16 read_fs(void) { return fake_seg_get(FAKE_FS); }
static inline u16 read_gs(void) { return fake_seg_get(FAKE_GS); }

void fake_outb(u16 port, u8 v);
u8 fake_inb(u16 port);
void fake_outw(u16 port, u16 v);
u16 fake_inw(u16 port);
u32 fake_inl(u16 port);
void fake_outl(u16 port, u32 v);
static inline void outb(u16 port, u8 v) { fake_outb(port, v); }
static inline u8 inb(u16 port) { return fake_inb(port); }
/* Wider reads: byte by byte, little-endian; wider writes: 32 as two 16-bit writes (logged as
 * such) - except at a device model's ports (fake_io_set_device), which see each access whole. */
static inline u16 inw(u16 port) { return fake_inw(port); }
static inline u32 inl(u16 port) { return fake_inl(port); }
static inline void outw(u16 port, u16 v) { fake_outw(port, v); }
static inline void outl(u16 port, u32 v) { fake_outl(port, v); }
/* A device model behind ports [base, base + len) (e.g. a PCI host bridge at 0xCF8-0xCFF):
 * every IN/OUT that starts there goes to rd/wr with its width (1, 2, 4), unsplit and not in
 * the I/O log; rd = NULL removes it. fake_reset() removes it too. */
void fake_io_set_device(u16 base, u16 len, u32 (*rd)(u16 port, unsigned width),
			void (*wr)(u16 port, unsigned width, u32 v));

void fake_cpu_halt(void);
void fake_irq_disable(void);
void fake_wbinvd(void);
u64 fake_rdtsc(void);
void fake_invlpg(const void *p);
static inline void barrier(void) { __atomic_signal_fence(__ATOMIC_SEQ_CST); }
void fake_cpu_relax(void); /* calls the relax hook if one is set (a spin-wait in a host test) */
static inline void cpu_relax(void) { fake_cpu_relax(); }
static inline void cpu_halt(void) { fake_cpu_halt(); }
static inline void irq_disable(void) { fake_irq_disable(); }
static inline void wbinvd(void) { fake_wbinvd(); }
static inline u64 rdtsc(void) { return fake_rdtsc(); }
static inline void invlpg(const void *p) { fake_invlpg(p); }
void *fake_cpu_local_self(void);
static inline void *cpu_local_self(void) { return fake_cpu_local_self(); }

/* Guest XMM/YMM registers as the write emulator reads them: an array the test sets
 * (zero at start; fake_reset() leaves it alone). */
void fake_xmm_set(unsigned n, const u8 v[16]);
void fake_ymm_high_set(unsigned n, const u8 v[16]);
bool fake_cpu_read_xmm(unsigned n, u8 out[16]);
bool fake_cpu_read_ymm_high(unsigned n, u8 out[16]);
/* Make the vector-register reads fault (as the exception-table fixup reports a host #UD). */
void fake_vec_read_fault(bool fault);
static inline bool cpu_read_xmm(unsigned n, u8 out[16]) { return fake_cpu_read_xmm(n, out); }
static inline bool cpu_read_ymm_high(unsigned n, u8 out[16]) { return fake_cpu_read_ymm_high(n, out); }

/* ---- VMX instructions: each returns true on success ---- */
bool fake_vmxon(hpa_t region);
bool fake_vmclear(hpa_t vmcs);
bool fake_vmptrld(hpa_t vmcs);
bool fake_vmread(u64 field, u64 *v);
bool fake_vmwrite(u64 field, u64 v);
bool fake_invept(u64 type, u64 eptp);
bool fake_invvpid(u64 type, u16 vpid);
void fake_vmxoff(void);
static inline bool vmxon(hpa_t region) { return fake_vmxon(region); }
static inline bool vmclear(hpa_t vmcs) { return fake_vmclear(vmcs); }
static inline bool vmptrld(hpa_t vmcs) { return fake_vmptrld(vmcs); }
static inline bool vmx_vmread(u64 field, u64 *v) { return fake_vmread(field, v); }
static inline bool vmx_vmwrite(u64 field, u64 v) { return fake_vmwrite(field, v); }
static inline bool invept(u64 type, u64 eptp) { return fake_invept(type, eptp); }
static inline bool invvpid(u64 type, u16 vpid) { return fake_invvpid(type, vpid); }
static inline void vmxoff(void) { fake_vmxoff(); }

/* INVEPT/INVVPID types and atomics: the same on target and host. */
#include <arch/hw_shared.h>

/* MMIO (local APIC): recorded by tests/fake/fake_mmio.c; the hook (if set) sees every write. */
void fake_mmio_write32(u64 addr, u32 v);
void fake_mmio_set_hook(void (*hook)(u64 addr, u32 v));
u32 fake_mmio_read32(u64 addr);
static inline void mmio_write32(u64 addr, u32 v) { fake_mmio_write32(addr, v); }
static inline u32 mmio_read32(u64 addr) { return fake_mmio_read32(addr); }
/* A device model (e.g. a VT-d unit) behind [base, base + size); rd = NULL removes it. */
void fake_mmio_set_device(u64 base, u64 size, u32 (*rd)(u64 off), void (*wr)(u64 off, u32 v));

/* The instruction addresses of hv/entry.asm's last check before VM entry (hw_fake.c):
 * a POP before it, the JNE after the CMP at vmx_entry_check. */
extern const char fake_entry_pop[], fake_entry_jne[];

/* Root-mode NMI unblocking (IRET to self): nothing to do on the host. */
static inline void nmi_unblock(void) {}

/* Debug register 6 (single-step reporting): a plain variable on the host. */
extern u64 fake_dr6;
static inline u64 read_dr6(void) { return fake_dr6; }
static inline void write_dr6(u64 v) { fake_dr6 = v; }
extern u64 fake_dr0_3[4];
static inline void write_dr0_3(u64 v) { for (int i = 0; i < 4; i++) fake_dr0_3[i] = v; }

#endif
