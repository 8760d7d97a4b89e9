/*
 * spp_util.h: helpers shared by the sub-page protection tests (tests/guest/spp_*.c), written
 * against tools/tessel.h and ABI.md only.
 *
 * - Suites: each spp_*.c file is one suite with a fixed number of TAP points. sok() counts the
 *   points of the running suite; suite_end() pads a suite that stopped early with failing
 *   points, so a combined program (spp_all.c) always reports exactly the plan it announced.
 * - Pages: allocation, map SET/GET wrappers on single pages, HC_STATS snapshots.
 * - Probes: single-instruction stores of 1/2/4/8 bytes, each preceded by INVLPG of the page.
 *   Bochs 2.7 caches a page as writable after one SPP-allowed write (docs/SPP.md section 10, bug 1);
 *   the INVLPG makes every probe write go through the SPP check again, so a test can neither
 *   pass nor fail because of that emulator bug. Outcomes are always judged by memory contents.
 * - Events: ring setup/drain/inspection, and a counting handler for the notification vector.
 * - AP: a non-blocking start of a function on an AP (EFI_MP_SERVICES_PROTOCOL.StartupThisAP
 *   with a wait event), so that the BSP and the AP can run test code at the same time.
 */
#ifndef SPP_UTIL_H
#define SPP_UTIL_H

#include "guest.h"
#include "arch.h"
#include <tessel.h>

#define PAGE 4096u
#define SUB TESSEL_SPP_SUBPAGE_SIZE

/* ---- environment ---- */
struct spp_env {
	int ok;             /* HC_QUERY worked and exactly one SPP mode is reported */
	int hw, sw;         /* TESSEL_F_SPP_HW / _SW */
	uint32_t flags;     /* HC_QUERY RCX */
	uint32_t cpuid_flags; /* CPUID 0x40000001 EBX */
	uint64_t max_pages; /* HC_QUERY RDX */
	uint32_t cpuid_max; /* CPUID 0x40000001 ECX */
	uint32_t apic_id;   /* of the BSP */
};
extern struct spp_env spp;

/* guest_init, CPUID/HC_QUERY discovery, tap_plan(points). Bails out without Tessel. */
void spp_start(EFI_HANDLE image, EFI_SYSTEM_TABLE *st, int points);
const char *spp_mode(void);
uint32_t cpu_apic_id(void); /* CPUID.1:EBX[31:24] */

/* ---- TAP bookkeeping per suite ---- */
void suite_begin(const char *name, int planned);
int sok(int cond, const char *fmt, ...) GUEST_PRINTF(2, 3);
/* "ok N - desc # SKIP why" */
void sskip(const char *why, const char *fmt, ...) GUEST_PRINTF(2, 3);
void suite_end(void);

/* ---- memory ---- */
void *spp_pages(unsigned n); /* n zeroed 4 KiB pages (EfiBootServicesData), NULL on failure */
void spp_free(void *p, unsigned n);
/* A 2 MiB-aligned block of 512 pages (from a 4 MiB allocation kept for the program's life). */
void *spp_block2m(void);
static inline uint64_t gpa_of(const volatile void *p) { return (uint64_t)(uintptr_t)p; }
static inline uint64_t gfn_of(const volatile void *p) { return (uint64_t)(uintptr_t)p >> 12; }
/* End (exclusive) of the highest RAM range in the firmware memory map. */
uint64_t ram_end(void);
/* The hypervisor region from the TESSEL region table; 0 if absent. */
int hv_region(uint64_t *base, uint64_t *size);

/* ---- map wrappers (one page; map buffer is private, in an unprotected page) ---- */
int64_t set1(volatile void *page, uint32_t mask, uint64_t flags);
int64_t get1(volatile void *page, uint32_t *mask);
/* Removes protection; returns the status. */
int64_t unprot(volatile void *page, unsigned n);
/* The private map buffer (1024 u32, page aligned) for multi-page calls. */
extern uint32_t *spp_map;

/* ---- statistics ---- */
struct stats {
	uint64_t v[TESSEL_STAT_COUNT_1_0];
};
int64_t stats_get(struct stats *s);
static inline uint64_t sdelta(const struct stats *a, const struct stats *b, int i) { return b->v[i] - a->v[i]; }

/* ---- patterns and probes ---- */
static inline uint8_t pat_byte(unsigned i, uint8_t seed) { return (uint8_t)(i * 7u + (i >> 8) * 13u + seed); }
void pat_fill(volatile uint8_t *p, unsigned len, uint8_t seed);
/* Number of bytes where a and b differ; *first = first differing offset. */
unsigned mem_diff(const volatile uint8_t *a, const volatile uint8_t *b, unsigned len, unsigned *first);
/* One MOV of `size` (1, 2, 4, 8) bytes of v to p, after INVLPG of p's page; returns the RIP
 * of the MOV instruction. */
uint64_t probe_store(volatile void *p, uint64_t v, unsigned size);
/* The same without INVLPG (for code that orders writes itself). */
uint64_t raw_store(volatile void *p, uint64_t v, unsigned size);

/* ---- events ---- */
int64_t ev_setup(struct tessel_ring *r, unsigned pages, unsigned vector);
static inline uint32_t ev_pending(const struct tessel_ring *r) { return r->head - r->tail; }
static inline void ev_drain(struct tessel_ring *r) { r->tail = r->head; }
/* k-th unconsumed entry. */
static inline struct tessel_event *ev_at(struct tessel_ring *r, uint32_t k)
{
	return &r->entries[(r->tail + k) % r->capacity];
}
const char *ev_kind(unsigned kind);
/* Describes an event into buf. */
void ev_fmt(char *buf, unsigned size, const struct tessel_event *e);

/* Notification vector: a private IDT copy whose gate `vector` counts invocations. */
extern volatile uint64_t spp_vec_hits;
void vec_install(uint8_t vector);
void vec_remove(void);
/* Spins (pause) until spp_vec_hits >= want or about `spins` iterations pass. */
uint64_t vec_wait(uint64_t want, uint64_t spins);

/* ---- AP ---- */
/* Starts fn(arg) on processor `cpu` without waiting (EFI status). */
EFI_STATUS ap_start(unsigned cpu, mp_fn fn, void *arg);
/* Waits until the firmware reports the AP finished (bounded by about `ms` milliseconds). */
int ap_wait(unsigned ms);
/* Index of some AP (not the BSP) in the MP numbering, or -1. */
int ap_index(void);

#endif
