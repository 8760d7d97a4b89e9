/*
 * tessel.h: the public, guest-side view of the Tessel hypercall ABI 1.2 (docs: ABI.md).
 *
 * This header owns every number a guest needs to talk to Tessel: the CPUID discovery leaves,
 * feature flags, call numbers, status codes, the event-ring layout, the HC_STATS counter order
 * and the hypervisor-region configuration table the loader installs. It is standalone (only
 * <stdint.h>), C11, and usable from UEFI programs, the project's guest tests and an OS driver.
 * The static inline wrappers issue VMCALL at CPL 0: without a hypervisor VMCALL raises #UD,
 * so check tessel_present() first.
 */
#ifndef TESSEL_H
#define TESSEL_H

#ifdef __KERNEL__
#include <linux/types.h> /* the Linux guest driver (tools/linux/driver/) */
#else
#include <stdint.h>
#endif

/* ---- Discovery (ABI.md section 1) ---- */
#define TESSEL_CPUID_SIGNATURE 0x40000000u /* EAX = highest leaf, EBX:ECX:EDX = signature */
#define TESSEL_CPUID_FEATURES  0x40000001u /* EAX = version, EBX = flags, ECX = max pages */
#define TESSEL_CPUID_MAX_LEAF  0x40000001u
#define TESSEL_SIG_EBX 0x73736554u /* "Tess" */
#define TESSEL_SIG_ECX 0x56486c65u /* "elHV" */
#define TESSEL_SIG_EDX 0x00000000u
#define TESSEL_SIGNATURE "TesselHV"

#define TESSEL_ABI_VERSION 0x00010004u /* 1.4 */
#define TESSEL_ABI_MAJOR(v) ((uint32_t)(v) >> 16)
#define TESSEL_ABI_MINOR(v) ((uint32_t)(v) & 0xffffu)
#define TESSEL_MIN_MAX_PAGES 512u /* ECX of leaf 0x40000001 is at least this */

#define CPUID1_ECX_HYPERVISOR_BIT (1u << 31)
#define CPUID1_ECX_VMX_BIT        (1u << 5)

/* Feature flags: EBX of leaf 0x40000001 and RCX of HC_QUERY. */
#define TESSEL_F_SPP_HW (1u << 0) /* sub-page permissions enforced by the processor's SPP */
#define TESSEL_F_SPP_SW (1u << 1) /* sub-page permissions enforced in software */
#define TESSEL_F_LOCK   (1u << 2) /* HC_SPP_LOCK is available */
#define TESSEL_F_EVENTS (1u << 3) /* HC_EVENTS_SETUP is available */
#define TESSEL_F_TRACK  (1u << 4) /* HC_SPP_SET accepts TESSEL_SPP_TRACK */
#define TESSEL_F_DMA    (1u << 5) /* 1.1: DMA remapping: device writes into protected pages refused */
#define TESSEL_F_PIN    (1u << 6) /* 1.2: HC_PIN_CR / HC_PIN_MSR (always set in 1.2) */
#define TESSEL_F_PIN_DT (1u << 7) /* 1.3: HC_PIN_DT (needs descriptor-table exiting) */
#define TESSEL_F_SPP_BYTES (1u << 8) /* 1.4: HC_SPP_PROTECT_BYTES (with either SPP mechanism) */
#define TESSEL_F_KNOWN  0x1ffu

/* ---- Calls (ABI.md section 3) ---- */
#define HC_NOP          0x00u
#define HC_QUERY        0x01u /* RBX = version, RCX = flags, RDX = max pages per call */
#define HC_SPP_SET      0x10u /* RBX = gfn, RCX = n, RDX = GPA of u32 map[n], RSI = flags */
#define HC_SPP_GET      0x11u /* RBX = gfn, RCX = n, RDX = GPA of u32 map[n], RSI = 0 */
#define HC_SPP_LOCK     0x12u /* RBX = gfn, RCX = n */
#define HC_SPP_PROTECT_BYTES 0x13u /* 1.4: RBX = GPA of the first byte, RCX = length */
#define TESSEL_MAX_PROTECT_BYTES 0x10000u /* 1.4: HC_SPP_PROTECT_BYTES length limit */
#define HC_EVENTS_SETUP 0x20u /* RBX = ring GPA, RCX = pages (1-64), RDX = vector (0, 32-255) */
#define HC_STATS        0x21u /* RBX = buffer GPA, RCX = size; out RBX = full record size */
#define HC_PIN_CR       0x30u /* 1.2: RBX = CR number (0, 4), RCX = bits; out RBX = pinned mask */
#define HC_PIN_MSR      0x31u /* 1.2: RBX = MSR index (TESSEL_PIN_MSR_*) */
#define HC_PIN_DT       0x32u /* 1.3: RBX = TESSEL_PIN_DT_* mask; out RBX = pinned mask */
#define TESSEL_PIN_DT_IDTR 1u
#define TESSEL_PIN_DT_GDTR 2u

/* HC_PIN_CR: the bits that may be pinned (ABI.md section 3, 1.2). */
#define TESSEL_CR0_PE   (1u << 0)
#define TESSEL_CR0_WP   (1u << 16)
#define TESSEL_CR0_PG   (1u << 31)
#define TESSEL_CR4_UMIP (1u << 11)
#define TESSEL_CR4_SMEP (1u << 20)
#define TESSEL_CR4_SMAP (1u << 21)
#define TESSEL_CR4_PKE  (1u << 22)
#define TESSEL_CR4_CET  (1u << 23)
#define TESSEL_CR4_PKS  (1u << 24)
#define TESSEL_PIN_CR0_BITS (TESSEL_CR0_PE | TESSEL_CR0_WP | TESSEL_CR0_PG)
#define TESSEL_PIN_CR4_BITS (TESSEL_CR4_UMIP | TESSEL_CR4_SMEP | TESSEL_CR4_SMAP | TESSEL_CR4_PKE | \
			     TESSEL_CR4_CET | TESSEL_CR4_PKS)
/* HC_PIN_MSR: the MSRs that may be pinned (EFER: only its NXE bit is pinned). */
#define TESSEL_MSR_SYSENTER_CS  0x174u
#define TESSEL_MSR_SYSENTER_EIP 0x176u
#define TESSEL_MSR_EFER         0xc0000080u
#define TESSEL_MSR_STAR         0xc0000081u
#define TESSEL_MSR_LSTAR        0xc0000082u
#define TESSEL_MSR_CSTAR        0xc0000083u
#define TESSEL_MSR_FMASK        0xc0000084u

#define TESSEL_SPP_TRACK (1u << 0) /* HC_SPP_SET flag: perform and report protected writes */
#define TESSEL_SPP_ALL_WRITABLE 0xffffffffu /* map value that removes protection from a page */
#define TESSEL_SPP_SUBPAGE_SIZE 128u
#define TESSEL_EVENTS_MAX_PAGES 64u

/* Status codes: RAX holds 0 or the negative of one of these. */
#define TESSEL_EPERM      1
#define TESSEL_E2BIG      7
#define TESSEL_ENOMEM     12
#define TESSEL_EFAULT     14
#define TESSEL_ENODEV     19
#define TESSEL_EINVAL     22
#define TESSEL_ENOSYS     38
#define TESSEL_EOPNOTSUPP 95

/* ---- Event ring (ABI.md section 5) ---- */
#define TESSEL_EV_DENIED    1
#define TESSEL_EV_TRACKED   2
#define TESSEL_EV_DISCARDED 3
#define TESSEL_EV_DMA       4 /* 1.1: gpa = page, gla = PCI source ID, rip = 0, bytes = 0 */
#define TESSEL_EV_PIN       5 /* 1.2: gpa = value written, gla = TESSEL_EV_PIN_CR(n) / _MSR(idx), bytes = 0 */
#define TESSEL_EV_PIN_CR(n)    ((uint64_t)(n))
#define TESSEL_EV_PIN_MSR(idx) (0x100000000ull | (uint32_t)(idx))
/* 1.3: a refused LGDT/LIDT: gpa = base, bytes = limit, gla = TESSEL_EV_PIN_DTR(TESSEL_PIN_DT_*) */
#define TESSEL_EV_PIN_DTR(bit) (0x200000000ull | (uint32_t)(bit))

struct tessel_event {
	uint64_t gpa;   /* first protected byte the write touched */
	uint64_t rip;   /* of the writing instruction */
	uint64_t gla;   /* guest-linear address, 0 if unknown */
	uint32_t vcpu;  /* APIC ID */
	uint16_t kind;  /* TESSEL_EV_* */
	uint16_t bytes; /* protected bytes touched, 0 if unknown */
};

struct tessel_ring {
	volatile uint32_t head; /* entries written (hypervisor), free-running */
	volatile uint32_t tail; /* entries consumed (guest), free-running */
	uint32_t capacity;      /* entries, set at setup */
	uint32_t reserved0;
	volatile uint64_t dropped; /* events lost because the ring was full */
	uint64_t reserved1[5];
	struct tessel_event entries[]; /* entry k lives at index k % capacity */
};

_Static_assert(sizeof(struct tessel_event) == 32, "event entry is 32 bytes");
_Static_assert(__builtin_offsetof(struct tessel_event, gla) == 16, "event.gla");
_Static_assert(__builtin_offsetof(struct tessel_event, vcpu) == 24, "event.vcpu");
_Static_assert(__builtin_offsetof(struct tessel_event, kind) == 28, "event.kind");
_Static_assert(__builtin_offsetof(struct tessel_event, bytes) == 30, "event.bytes");
_Static_assert(__builtin_offsetof(struct tessel_ring, tail) == 4, "ring.tail");
_Static_assert(__builtin_offsetof(struct tessel_ring, capacity) == 8, "ring.capacity");
_Static_assert(__builtin_offsetof(struct tessel_ring, dropped) == 16, "ring.dropped");
_Static_assert(__builtin_offsetof(struct tessel_ring, entries) == 64, "ring.entries");
_Static_assert(sizeof(struct tessel_ring) == 64, "ring header is 64 bytes");

/* Entries that fit in a ring of `pages` 4 KiB pages. */
#define TESSEL_RING_CAPACITY(pages) ((uint32_t)(((pages) * 4096u - 64u) / 32u))

/* ---- HC_STATS record: u64 counters in this order; new ones are only appended ---- */
enum tessel_stat {
	TESSEL_STAT_EXITS,
	TESSEL_STAT_HYPERCALLS,
	TESSEL_STAT_SPP_DENIED,
	TESSEL_STAT_SPP_TRACKED,
	TESSEL_STAT_SPP_MISSES,
	TESSEL_STAT_SPP_MISCONFIGS,
	TESSEL_STAT_EPT_VIOLATIONS,
	TESSEL_STAT_EMULATED_WRITES,
	TESSEL_STAT_PAGES_PROTECTED,
	TESSEL_STAT_SPPT_PAGES,
	TESSEL_STAT_EVENTS_DROPPED,
	TESSEL_STAT_DMA_FAULTS, /* 1.1 */
	TESSEL_STAT_PIN_DENIED, /* 1.2: guest CR/MSR writes refused by a pin */
	TESSEL_STAT_COUNT_1_2 /* counters defined by ABI 1.2 */
};
#define TESSEL_STAT_COUNT_1_1 12 /* counters defined by ABI 1.1 */
#define TESSEL_STAT_COUNT_1_0 11 /* counters defined by ABI 1.0 */

/* ---- The hypervisor region, published by the loader as a UEFI configuration table ---- */
#define TESSEL_REGION_GUID_INIT \
	{ 0x7e5d3a10, 0x4c1b, 0x4b8e, { 0x9a, 0x6f, 0x2d, 0x51, 0x0c, 0x3e, 0x77, 0x21 } }
#define TESSEL_REGION_MAGIC 0x4e4f494745524c54ull /* "TLREGION" in memory order */

struct tessel_region_info {
	uint64_t magic; /* TESSEL_REGION_MAGIC */
	uint64_t base;  /* physical base of the hypervisor's memory, 4 KiB aligned */
	uint64_t size;  /* bytes */
};
_Static_assert(sizeof(struct tessel_region_info) == 24, "region info is 3 u64");

/* ---- Wrappers ---- */
struct tessel_cpuid {
	uint32_t eax, ebx, ecx, edx;
};

static inline struct tessel_cpuid tessel_cpuid(uint32_t leaf, uint32_t subleaf)
{
	struct tessel_cpuid r;
	__asm__ __volatile__("cpuid"
			     : "=a"(r.eax), "=b"(r.ebx), "=c"(r.ecx), "=d"(r.edx)
			     : "a"(leaf), "c"(subleaf));
	return r;
}

/* 1 if CPUID reports a hypervisor with the Tessel signature. */
static inline int tessel_present(void)
{
	if (!(tessel_cpuid(1, 0).ecx & CPUID1_ECX_HYPERVISOR_BIT))
		return 0;
	struct tessel_cpuid s = tessel_cpuid(TESSEL_CPUID_SIGNATURE, 0);
	return s.eax >= TESSEL_CPUID_MAX_LEAF && s.ebx == TESSEL_SIG_EBX && s.ecx == TESSEL_SIG_ECX &&
	       s.edx == TESSEL_SIG_EDX;
}

/* Values a call returns besides the status (which calls fill what: ABI.md section 3). */
struct tessel_hc_out {
	uint64_t rbx, rcx, rdx;
};

/*
 * Issue call `nr` with arguments in RBX, RCX, RDX, RSI. Returns the status (0 or -TESSEL_E*);
 * RBX, RCX, RDX come back in *out when out is not NULL. RSI and all other registers are
 * preserved by the hypervisor. Memory is clobbered: calls read and write guest buffers.
 */
static inline int64_t tessel_vmcall(uint64_t nr, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
				    struct tessel_hc_out *out)
{
	uint64_t rax = nr, rbx = a1, rcx = a2, rdx = a3;
	__asm__ __volatile__("vmcall"
			     : "+a"(rax), "+b"(rbx), "+c"(rcx), "+d"(rdx)
			     : "S"(a4)
			     : "memory", "cc");
	if (out) {
		out->rbx = rbx;
		out->rcx = rcx;
		out->rdx = rdx;
	}
	return (int64_t)rax;
}

static inline int64_t tessel_hc0(uint64_t nr)
{
	return tessel_vmcall(nr, 0, 0, 0, 0, (struct tessel_hc_out *)0);
}

static inline int64_t tessel_query(uint32_t *version, uint32_t *flags, uint64_t *max_pages)
{
	struct tessel_hc_out o = { 0, 0, 0 };
	int64_t st = tessel_vmcall(HC_QUERY, 0, 0, 0, 0, &o);
	if (st == 0) {
		if (version)
			*version = (uint32_t)o.rbx;
		if (flags)
			*flags = (uint32_t)o.rcx;
		if (max_pages)
			*max_pages = o.rdx;
	}
	return st;
}

static inline int64_t tessel_spp_set(uint64_t gfn, uint64_t n, uint64_t map_gpa, uint64_t flags)
{
	return tessel_vmcall(HC_SPP_SET, gfn, n, map_gpa, flags, (struct tessel_hc_out *)0);
}

static inline int64_t tessel_spp_get(uint64_t gfn, uint64_t n, uint64_t map_gpa)
{
	return tessel_vmcall(HC_SPP_GET, gfn, n, map_gpa, 0, (struct tessel_hc_out *)0);
}

static inline int64_t tessel_spp_lock(uint64_t gfn, uint64_t n)
{
	return tessel_vmcall(HC_SPP_LOCK, gfn, n, 0, 0, (struct tessel_hc_out *)0);
}

/* HC_SPP_PROTECT_BYTES (1.4): write-protects exactly the bytes [gpa, gpa + len). */
static inline int64_t tessel_spp_protect_bytes(uint64_t gpa, uint64_t len)
{
	return tessel_vmcall(HC_SPP_PROTECT_BYTES, gpa, len, 0, 0, (struct tessel_hc_out *)0);
}

static inline int64_t tessel_events_setup(uint64_t ring_gpa, uint64_t pages, uint64_t vector)
{
	return tessel_vmcall(HC_EVENTS_SETUP, ring_gpa, pages, vector, 0, (struct tessel_hc_out *)0);
}

/* HC_PIN_CR: pins `bits` of CR`cr`; *pinned receives the whole pinned mask of that register. */
static inline int64_t tessel_pin_cr(uint64_t cr, uint64_t bits, uint64_t *pinned)
{
	struct tessel_hc_out o = { 0, 0, 0 };
	int64_t st = tessel_vmcall(HC_PIN_CR, cr, bits, 0, 0, &o);
	if (st == 0 && pinned)
		*pinned = o.rbx;
	return st;
}

/* HC_PIN_DT (1.3): pins the descriptor-table registers in `mask` (TESSEL_PIN_DT_*); *pinned
 * receives the whole pinned mask. */
static inline int64_t tessel_pin_dt(uint64_t mask, uint64_t *pinned)
{
	struct tessel_hc_out o = { 0, 0, 0 };
	int64_t st = tessel_vmcall(HC_PIN_DT, mask, 0, 0, 0, &o);
	if (st == 0 && pinned)
		*pinned = o.rbx;
	return st;
}

/* HC_PIN_MSR: pins the calling vCPU's current value of `msr` (EFER: its NXE bit). */
static inline int64_t tessel_pin_msr(uint64_t msr)
{
	return tessel_vmcall(HC_PIN_MSR, msr, 0, 0, 0, (struct tessel_hc_out *)0);
}

/* Fills min(size, record) bytes at buf_gpa; *full_size receives the full record size. */
static inline int64_t tessel_stats(uint64_t buf_gpa, uint64_t size, uint64_t *full_size)
{
	struct tessel_hc_out o = { 0, 0, 0 };
	int64_t st = tessel_vmcall(HC_STATS, buf_gpa, size, 0, 0, &o);
	if (st == 0 && full_size)
		*full_size = o.rbx;
	return st;
}

#endif
