/*
 * What the libFuzzer harnesses (fuzz_hypercall.c, fuzz_exit.c) share: the fake machine
 * (physical window, firmware memory map, MTRRs, the hypervisor's region), the boot done
 * once and put back before each input, guest-memory access with ASan poisoning, and an
 * independent EPT walker. See tests/fuzz/README.md.
 */
#ifndef TESTS_FUZZ_COMMON_H
#define TESTS_FUZZ_COMMON_H

#include <hw.h>
#include <arch/cpu.h>
#include <arch/vmx.h>
#include <tessel/bootinfo.h>
#include "hv/percpu.h"
#include "mm/ept.h"
#include "mm/mtrr.h"

/* ---- the fake machine ---- */

#define KiB(x) ((u64)(x) << 10)
#define MiB(x) ((u64)(x) << 20)
/* The physical window: all guest RAM lives here. It straddles the 5 GiB line so that the
 * RAM above it starts out in a 1 GiB EPT leaf. */
#define W_BASE (5 * SZ_1G - MiB(32))
#define W_SIZE MiB(72)
#define W_GFN (W_BASE >> PAGE_SHIFT)
#define W_PAGES (W_SIZE >> PAGE_SHIFT)
#define HV_BASE (W_BASE + MiB(26) + KiB(8)) /* the hypervisor's region: not 2 MiB aligned */
#define HV_SIZE (MiB(5) + KiB(8))
#define HV_END (HV_BASE + HV_SIZE)
#define MMIO_BASE (W_BASE + MiB(20) + KiB(16))
#define MMIO_END (W_BASE + MiB(24))
#define RSVD_BASE (W_BASE + MiB(32))
#define RSVD_END (W_BASE + MiB(34))
#define RAM_END (W_BASE + MiB(72) - KiB(4))
#define PHYS_BITS 36
#define UC_BASE (W_BASE + MiB(20))
#define WC_PAGE (W_BASE + MiB(2) + KiB(4))
#define HV_PAGES (HV_SIZE >> PAGE_SHIFT)

/* What the model calls guest RAM: the firmware's ranges, merged, minus the region. */
struct mrange { u64 start, end; };
extern const struct mrange ram[];
#define NRAM 4U

bool model_is_ram(u64 gpa, u64 len);
bool model_pages_ram(u64 gfn, u64 n); /* n pages from gfn, all RAM (overflow-safe) */
unsigned model_mt(u64 gpa);           /* the memory type the MTRRs give gpa */

extern struct mtrr_state mtrr;
extern struct ept ept;
extern hpa_t ff_page;
extern struct percpu cpu, cpu1;
extern struct guest_regs regs;
/* The boot state put back before each input (see restore_baseline). */
extern u8 base_page[HV_PAGES]; /* 1: allocated at the baseline */
extern struct ept base_ept;
extern u64 base_free;

/* Each harness defines this: print the violated invariant (and its own context), abort(). */
__attribute__((noreturn, format(printf, 1, 2))) void fail(const char *fmt, ...);

/* ---- guest memory access by the harness ---- */
u8 *gptr(u64 gpa);
/* ASan-(un)poisons [gpa, gpa + len) clamped to the window, never the hypervisor's region. */
void set_poison(u64 gpa, u64 len, bool poison);
void gread(u64 gpa, void *dst, u64 len);        /* unpoisons around the copy, poisons again */
void gwrite(u64 gpa, const void *src, u64 len); /* likewise */

/* ---- independent EPT walker (SDM 28.3.2) ---- */
#define BITS(hi, lo) ((((hi) >= 63) ? ~0ULL : ((1ULL << ((hi) + 1)) - 1)) & ~((1ULL << (lo)) - 1))
#define E_R (1ULL << 0)
#define E_W (1ULL << 1)
#define E_X (1ULL << 2)
#define E_PS (1ULL << 7)
#define E_IPAT (1ULL << 6)
#define E_SPP (1ULL << 61)
const u64 *table_at(u64 addr, const char *what); /* a page of the region, or fail() */
u64 ept_walk(u64 gpa, int *level);              /* the leaf and its level (1 = 4 KiB), 0 if none */

/* ---- boot ---- */
void init_once(void);        /* pmm, memmap, 0xFF page, EPT identity map; guest memory poisoned */
void restore_baseline(void); /* back to the state init_once left (pmm, EPT tables) */

#endif
