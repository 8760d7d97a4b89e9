/*
 * guest.h: the library every guest test program links (the .c files beside it, plus lib/fmt.c).
 *
 * It owns what a UEFI test program needs besides the code under test: output on COM1,
 * TAP 13 reporting, running a function on an AP through EFI_MP_SERVICES_PROTOCOL, powering
 * the machine off, catching an exception raised by a piece of code (trap_call), and running a
 * few bytes of code at CPL 3 and coming back (ring3_run). Programs call guest_init() first
 * and guest_finish() last. Trap and ring-3 helpers are for the BSP only, one at a time.
 */
#ifndef GUEST_H
#define GUEST_H

#include <efi.h>
#include <efilib.h>
#include <stdarg.h>
#include <stdint.h>
#include <lib/fmt.h>

#define GUEST_PRINTF(a, b) __attribute__((format(printf, a, b)))

/* ---- setup / teardown ---- */
void guest_init(EFI_HANDLE image, EFI_SYSTEM_TABLE *st);
/* tap_done(), then power off. */
__attribute__((noreturn)) void guest_finish(void);
/* ResetSystem(EfiResetShutdown), then the Bochs port-0x8900 fallback, then halt. */
__attribute__((noreturn)) void power_off(void);

/* ---- COM1 (16550 at 0x3F8), polled ---- */
void serial_putc(char c);
void serial_write(const char *s);
void serial_flush(void);
void serial_printf(const char *fmt, ...) GUEST_PRINTF(1, 2);

/* ---- TAP 13 on COM1 ---- */
void tap_plan(int n);
/* Prints "ok N - desc" or "not ok N - desc"; returns cond != 0. */
int tap_ok(int cond, const char *fmt, ...) GUEST_PRINTF(2, 3);
void tap_diag(const char *fmt, ...) GUEST_PRINTF(1, 2);
__attribute__((noreturn)) void tap_bail(const char *fmt, ...) GUEST_PRINTF(1, 2);
/* Reports a count mismatch as a diagnostic; returns the number of failed points. */
int tap_done(void);
int tap_failed(void);

/* ---- exceptions ---- */
struct trap_info {
	int trapped;        /* 1 if an exception ended the call */
	uint64_t vector;    /* exception vector */
	uint64_t error;     /* error code (0 if the vector has none) */
	uint64_t rip;       /* RIP of the faulting instruction */
	uint64_t cs;        /* CS at the fault */
	uint64_t regs[6];   /* RAX RBX RCX RDX RSI RDI at the fault / at INT 0x80 */
};
#define TRAP_VEC(v) (1u << (v))
/* Vectors trap_call can catch: everything but NMI (2), #DF (8), #MC (18) and the reserved ones. */
#define TRAP_ALL 0x003b7cfbu

/*
 * Calls fn(arg) with handlers for the vectors in `vectors` (bit v = vector v, v < 32) in a
 * private copy of the IDT. If one of them is raised, fn is abandoned (no unwinding of its
 * frames: keep fn small and leaf-like) and execution resumes here; *out says what happened.
 * Returns 1 if trapped. The firmware IDT is restored before returning.
 */
int trap_call(uint32_t vectors, void (*fn)(void *), void *arg, struct trap_info *out);
const char *trap_name(uint64_t vector);

/* ---- CPL 3 ---- */
#define RING3_INT 0x80 /* user code ends with INT 0x80 to come back */
/*
 * Copies `len` bytes of position-independent code to a user page and runs it at CPL 3 with
 * interrupts off, RAX..RDI from regs_in[0..5], RSP at the top of a user stack page. The code
 * must end with INT 0x80; any exception ends it too. Private copies of GDT (user segments +
 * TSS), IDT and page tables (U=1 on the path to the user pages) are used for the duration;
 * everything is restored afterwards. Returns 0 if the round trip happened (see out->trapped,
 * out->vector == RING3_INT for a clean return, out->cs for the CPL), negative on setup error.
 */
int ring3_run(const void *code, unsigned len, const uint64_t regs_in[6], struct trap_info *out);

/* ---- MP services ---- */
typedef void (*mp_fn)(void *arg);
/* Number of enabled processors (>= 1); 0 if the protocol is missing. */
unsigned mp_count(void);
/* Index of the BSP in the MP numbering (usually 0). */
unsigned mp_bsp(void);
/* APIC ID of processor `cpu`, or ~0u. */
uint32_t mp_apic_id(unsigned cpu);
/* Runs fn(arg) on AP `cpu` (blocking, with a timeout in microseconds); EFI status. */
EFI_STATUS mp_run_on(unsigned cpu, mp_fn fn, void *arg, uint64_t timeout_us);

/* ---- small helpers ---- */
void mem_set(void *p, int v, uint64_t n);
void mem_copy(void *d, const void *s, uint64_t n);
int mem_cmp(const void *a, const void *b, uint64_t n);
int guid_eq(const EFI_GUID *a, const EFI_GUID *b);
/* Finds a UEFI configuration table; NULL if absent. */
void *config_table(const EFI_GUID *guid);

extern EFI_HANDLE guest_image;

#endif
