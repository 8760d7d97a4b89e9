/*
 * The tables behind tests/fake/hw.h: MSRs, CPUID, control registers, one VMCS, port I/O,
 * invalidation counters and the physical-memory window. Host-only code (uses libc).
 * See tests/fake/hw.h for what each fake models and how tests drive it.
 */
#include <hw.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAKE_MAX_MSRS 1024
#define FAKE_MAX_CPUID 256
#define FAKE_IO_TEXT 65536
#define FAKE_IO_LOG 65536

struct msr_ent { u32 msr; u64 v; };
struct cpuid_ent { u32 leaf, sub, a, b, c, d; };

static struct msr_ent msrs[FAKE_MAX_MSRS];
static size_t nr_msrs;
static u64 msr_gp;

static struct cpuid_ent cpuids[FAKE_MAX_CPUID];
static size_t nr_cpuids;

static u64 crs[FAKE_NR_CR] = { [FAKE_RFLAGS] = 0x2 };
static u16 segs[FAKE_NR_SEG];
static struct desc_ptr gdtr, idtr;
static u64 xcr0 = 1;
static bool vec_fault; /* fake_vec_read_fault() */

static u64 vmcs[FAKE_VMCS_FIELDS];
static hpa_t vmcs_cur = { ~0ULL }, vmxon_reg;

static char io_text[FAKE_IO_TEXT];
static size_t io_text_len;
static struct fake_io_rec io_log[FAKE_IO_LOG];
static size_t io_log_len;
static u8 io_in[65536];
static u16 io_dev_base, io_dev_len;
static u32 (*io_dev_rd)(u16 port, unsigned width);
static void (*io_dev_wr)(u16 port, unsigned width, u32 v);
static bool io_in_set[65536];
static u8 serial_lcr;

static _Thread_local u64 n_invept;
static u64 last_invept_type, last_invept_eptp, n_invvpid, n_invlpg, n_wbinvd, n_halt;
static bool irq_off;
static void (*halt_hook)(void), (*relax_hook)(void);
static u64 tsc;
static _Thread_local void *cpu_local; /* per thread: a test may run a CPU on a thread */
static void (*invept_hook)(void);
static u64 n_vmxoff;

static u8 *phys_mem;
static u64 phys_base, phys_size;

static __attribute__((noreturn)) void fake_die(const char *what)
{
	fprintf(stderr, "fake hw: %s\n", what);
	abort();
}

void fake_reset(void)
{
	nr_msrs = 0;
	msr_gp = 0;
	nr_cpuids = 0;
	memset(crs, 0, sizeof(crs));
	crs[FAKE_RFLAGS] = 0x2; /* bit 1 always reads 1 */
	memset(segs, 0, sizeof(segs));
	memset(&gdtr, 0, sizeof(gdtr));
	memset(&idtr, 0, sizeof(idtr));
	xcr0 = 1;
	vec_fault = false;
	fake_vmcs_clear_all();
	vmcs_cur = hpa(~0ULL);
	vmxon_reg = hpa(0);
	fake_io_output_clear();
	io_log_len = 0;
	memset(io_in_set, 0, sizeof(io_in_set));
	io_dev_rd = NULL;
	serial_lcr = 0;
	n_invept = last_invept_type = last_invept_eptp = n_invvpid = n_invlpg = n_wbinvd = 0;
	n_halt = 0;
	irq_off = false;
	halt_hook = NULL;
	relax_hook = NULL;
	tsc = 0;
	cpu_local = NULL;
	invept_hook = NULL;
	n_vmxoff = 0;
}

/* ---- MSRs ---- */

static struct msr_ent *msr_find(u32 msr)
{
	for (size_t i = 0; i < nr_msrs; i++)
		if (msrs[i].msr == msr)
			return &msrs[i];
	return NULL;
}

void fake_msr_set(u32 msr, u64 v)
{
	struct msr_ent *e = msr_find(msr);

	if (!e) {
		if (nr_msrs == FAKE_MAX_MSRS)
			fake_die("MSR table full");
		e = &msrs[nr_msrs++];
		e->msr = msr;
	}
	e->v = v;
}

u64 fake_msr_get(u32 msr)
{
	struct msr_ent *e = msr_find(msr);
	return e ? e->v : 0;
}

bool fake_msr_isset(u32 msr) { return msr_find(msr) != NULL; }

void fake_msr_unset(u32 msr)
{
	struct msr_ent *e = msr_find(msr);

	if (e)
		*e = msrs[--nr_msrs];
}

u64 fake_msr_gp_count(void) { return msr_gp; }

u64 fake_rdmsr(u32 msr)
{
	struct msr_ent *e = msr_find(msr);

	if (!e) {
		msr_gp++;
		return 0;
	}
	return e->v;
}

void fake_wrmsr(u32 msr, u64 v)
{
	if (!msr_find(msr))
		msr_gp++;
	fake_msr_set(msr, v);
}

bool fake_rdmsr_safe(u32 msr, u64 *v)
{
	struct msr_ent *e = msr_find(msr);

	*v = e ? e->v : 0;
	return e != NULL;
}

bool fake_wrmsr_safe(u32 msr, u64 v)
{
	struct msr_ent *e = msr_find(msr);

	if (!e)
		return false;
	e->v = v;
	return true;
}

/* ---- CPUID, XCR0 ---- */

void fake_cpuid_set(u32 leaf, u32 sub, u32 a, u32 b, u32 c, u32 d)
{
	struct cpuid_ent *e = NULL;

	for (size_t i = 0; i < nr_cpuids; i++)
		if (cpuids[i].leaf == leaf && cpuids[i].sub == sub)
			e = &cpuids[i];
	if (!e) {
		if (nr_cpuids == FAKE_MAX_CPUID)
			fake_die("CPUID table full");
		e = &cpuids[nr_cpuids++];
	}
	*e = (struct cpuid_ent){ leaf, sub, a, b, c, d };
}

void fake_cpuid_count(u32 leaf, u32 sub, u32 *a, u32 *b, u32 *c, u32 *d)
{
	const struct cpuid_ent *any = NULL;

	for (size_t i = 0; i < nr_cpuids; i++) {
		if (cpuids[i].leaf != leaf)
			continue;
		if (cpuids[i].sub == sub) {
			any = &cpuids[i];
			break;
		}
		if (cpuids[i].sub == FAKE_CPUID_ANY_SUB)
			any = &cpuids[i];
	}
	*a = any ? any->a : 0;
	*b = any ? any->b : 0;
	*c = any ? any->c : 0;
	*d = any ? any->d : 0;
}

bool fake_xsetbv_safe(u32 idx, u64 v)
{
	if (idx != 0 || !(v & 1))
		return false;
	xcr0 = v;
	return true;
}

void fake_xsetbv(u32 idx, u64 v)
{
	if (idx == 0)
		xcr0 = v;
}

u64 fake_xgetbv(u32 idx) { return idx == 0 ? xcr0 : 0; }

/* ---- registers and descriptor tables ---- */

void fake_cr_set(enum fake_cr r, u64 v) { crs[r] = v; }
u64 fake_cr_get(enum fake_cr r) { return crs[r]; }
void fake_seg_set(enum fake_seg s, u16 sel) { segs[s] = sel; }
u16 fake_seg_get(enum fake_seg s) { return segs[s]; }
void fake_sgdt(struct desc_ptr *d) { *d = gdtr; }
void fake_sidt(struct desc_ptr *d) { *d = idtr; }
void fake_lgdt(const struct desc_ptr *d) { gdtr = *d; }
void fake_lidt(const struct desc_ptr *d) { idtr = *d; }

/* ---- VMCS and VMX instructions ---- */

u64 fake_vmcs_get(u64 field)
{
	if (field >= FAKE_VMCS_FIELDS)
		fake_die("fake_vmcs_get: field encoding out of range");
	return vmcs[field];
}

void fake_vmcs_set(u64 field, u64 v)
{
	if (field >= FAKE_VMCS_FIELDS)
		fake_die("fake_vmcs_set: field encoding out of range");
	vmcs[field] = v;
}

void fake_vmcs_clear_all(void) { memset(vmcs, 0, sizeof(vmcs)); }
hpa_t fake_vmcs_current(void) { return vmcs_cur; }
hpa_t fake_vmxon_region(void) { return vmxon_reg; }

bool fake_vmxon(hpa_t region) { vmxon_reg = region; return true; }

bool fake_vmclear(hpa_t v)
{
	if (v.v == vmcs_cur.v)
		vmcs_cur = hpa(~0ULL);
	return true;
}

bool fake_vmptrld(hpa_t v) { vmcs_cur = v; return true; }

bool fake_vmread(u64 field, u64 *v)
{
	if (field >= FAKE_VMCS_FIELDS)
		return false;
	*v = vmcs[field];
	return true;
}

bool fake_vmwrite(u64 field, u64 v)
{
	if (field >= FAKE_VMCS_FIELDS)
		return false;
	vmcs[field] = v;
	return true;
}

bool fake_invept(u64 type, u64 eptp)
{
	if (invept_hook)
		invept_hook();
	n_invept++;
	last_invept_type = type;
	last_invept_eptp = eptp;
	return type == INVEPT_SINGLE_CONTEXT || type == INVEPT_ALL_CONTEXT;
}

bool fake_invvpid(u64 type, u16 vpid)
{
	(void)vpid;
	n_invvpid++;
	return type <= 3;
}

void fake_vmxoff(void)
{
	n_vmxoff++;
	vmxon_reg = hpa(0);
}

u64 fake_vmxoff_count(void) { return n_vmxoff; }

u64 fake_invept_count(void) { return n_invept; }
u64 fake_invept_last_type(void) { return last_invept_type; }
u64 fake_invept_last_eptp(void) { return last_invept_eptp; }
u64 fake_invvpid_count(void) { return n_invvpid; }

/* ---- port I/O ---- */

static void io_record(u16 port, u16 value, u8 width)
{
	if (io_log_len < FAKE_IO_LOG)
		io_log[io_log_len++] = (struct fake_io_rec){ port, value, width };
}

void fake_io_set_device(u16 base, u16 len, u32 (*rd)(u16 port, unsigned width),
			void (*wr)(u16 port, unsigned width, u32 v))
{
	io_dev_base = base;
	io_dev_len = len;
	io_dev_rd = rd;
	io_dev_wr = wr;
}

static bool io_dev(u16 port)
{
	return io_dev_rd && port >= io_dev_base && port - io_dev_base < io_dev_len;
}

void fake_outb(u16 port, u8 v)
{
	if (io_dev(port)) {
		io_dev_wr(port, 1, v);
		return;
	}
	io_record(port, v, 1);
	if (port == FAKE_SERIAL_PORT + 3)
		serial_lcr = v;
	/* With LCR.DLAB (bit 7) set, the data port holds the divisor latch, not text. */
	if (port == FAKE_SERIAL_PORT && !(serial_lcr & 0x80) && io_text_len + 1 < FAKE_IO_TEXT) {
		io_text[io_text_len++] = (char)v;
		io_text[io_text_len] = '\0';
	}
}

void fake_outw(u16 port, u16 v)
{
	if (io_dev(port))
		io_dev_wr(port, 2, v);
	else
		io_record(port, v, 2);
}

void fake_outl(u16 port, u32 v)
{
	if (io_dev(port)) {
		io_dev_wr(port, 4, v);
		return;
	}
	fake_outw(port, (u16)v);
	fake_outw((u16)(port + 2), (u16)(v >> 16));
}

u8 fake_inb(u16 port)
{
	if (io_dev(port))
		return (u8)io_dev_rd(port, 1);
	return io_in_set[port] ? io_in[port] : 0xff;
}

u16 fake_inw(u16 port)
{
	if (io_dev(port))
		return (u16)io_dev_rd(port, 2);
	return (u16)(fake_inb(port) | (fake_inb((u16)(port + 1)) << 8));
}

u32 fake_inl(u16 port)
{
	if (io_dev(port))
		return io_dev_rd(port, 4);
	return fake_inw(port) | ((u32)fake_inw((u16)(port + 2)) << 16);
}

void fake_io_set_in(u16 port, u8 v)
{
	io_in[port] = v;
	io_in_set[port] = true;
}

const char *fake_io_output(void) { return io_text; }

void fake_io_output_clear(void)
{
	io_text_len = 0;
	io_text[0] = '\0';
}

size_t fake_io_log_count(void) { return io_log_len; }
const struct fake_io_rec *fake_io_log(size_t i) { return i < io_log_len ? &io_log[i] : NULL; }

/* ---- miscellaneous instructions ---- */

void fake_cpu_halt(void)
{
	n_halt++;
	if (halt_hook) {
		halt_hook();
		return;
	}
	fake_die("cpu_halt() reached in a host test");
}

void fake_set_halt_hook(void (*hook)(void)) { halt_hook = hook; }
void fake_set_relax_hook(void (*hook)(void)) { relax_hook = hook; }

void fake_cpu_relax(void)
{
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	if (relax_hook)
		relax_hook();
}
u64 fake_halt_count(void) { return n_halt; }
void fake_irq_disable(void) { irq_off = true; }
bool fake_irq_disabled(void) { return irq_off; }
void fake_wbinvd(void) { n_wbinvd++; }
u64 fake_wbinvd_count(void) { return n_wbinvd; }
void fake_invlpg(const void *p) { (void)p; n_invlpg++; }
u64 fake_invlpg_count(void) { return n_invlpg; }
u64 fake_rdtsc(void) { return tsc++; }
void fake_tsc_set(u64 v) { tsc = v; }
void fake_cpu_local_set(void *p) { cpu_local = p; }
void fake_set_invept_hook(void (*hook)(void)) { invept_hook = hook; }
void *fake_cpu_local_self(void) { return cpu_local; }

/* ---- physical memory ---- */

void fake_phys_init(u64 base, u64 size)
{
	fake_phys_fini();
	if (!IS_ALIGNED(base, PAGE_SIZE) || !size || !IS_ALIGNED(size, PAGE_SIZE))
		fake_die("fake_phys_init: base and size must be page-aligned and non-zero");
	phys_mem = aligned_alloc(PAGE_SIZE, size);
	if (!phys_mem)
		fake_die("fake_phys_init: out of host memory");
	memset(phys_mem, 0xa5, size);
	phys_base = base;
	phys_size = size;
}

void fake_phys_fini(void)
{
	free(phys_mem);
	phys_mem = NULL;
	phys_base = phys_size = 0;
}

u64 fake_phys_base(void) { return phys_base; }
u64 fake_phys_size(void) { return phys_size; }

void *fake_hpa_to_ptr(u64 a)
{
	if (phys_mem && a >= phys_base && a - phys_base < phys_size)
		return phys_mem + (a - phys_base);
	return (void *)(uintptr_t)a;
}

u64 fake_ptr_to_hpa(const void *p)
{
	const u8 *b = p;

	if (phys_mem && b >= phys_mem && b < phys_mem + phys_size)
		return phys_base + (u64)(b - phys_mem);
	return (u64)(uintptr_t)p;
}

/* ---- guest vector registers (write emulator) ---- */

static u8 fake_xmm[16][16], fake_ymm_hi[16][16];

void fake_xmm_set(unsigned n, const u8 v[16]) { memcpy(fake_xmm[n & 15], v, 16); }
void fake_ymm_high_set(unsigned n, const u8 v[16]) { memcpy(fake_ymm_hi[n & 15], v, 16); }
void fake_vec_read_fault(bool fault) { vec_fault = fault; }
bool fake_cpu_read_xmm(unsigned n, u8 out[16])
{
	if (vec_fault)
		return false;
	memcpy(out, fake_xmm[n & 15], 16);
	return true;
}
bool fake_cpu_read_ymm_high(unsigned n, u8 out[16])
{
	if (vec_fault)
		return false;
	memcpy(out, fake_ymm_hi[n & 15], 16);
	return true;
}

/* hv/entry.asm's last check before VM entry, as addresses only (hv/exit.c
 * nmi_entry_rewind compares the interrupted RIP with them): the 9-byte CMP at
 * vmx_entry_check, the 2-byte JNE at fake_entry_jne, VMRESUME at vmx_entry_resume, with a
 * POP just before (fake_entry_pop). */
__asm__(".pushsection .rodata\n"
	".globl fake_entry_pop, vmx_entry_check, fake_entry_jne, vmx_entry_resume\n"
	"fake_entry_pop: .skip 2\n"
	"vmx_entry_check: .skip 9\n"
	"fake_entry_jne: .skip 2\n"
	"vmx_entry_resume: .skip 3\n"
	".skip 16\n"
	/* hv/traps.c: no exception-table entries and no stubs on the host (weak: the tests
	 * that include profile_setup.h define their own) */
	".weak __ex_table_start, __ex_table_end, trap_stubs\n"
	"__ex_table_start:\n"
	"__ex_table_end:\n"
	".balign 8\n"
	"trap_stubs: .skip 8 * 32\n"
	".popsection\n");
