/*
 * hostile_avx.c (issue 9, item b): the bytes the hypervisor decodes after a write exit are
 * not necessarily the ones the processor ran. The BSP, with AVX turned off in its XCR0,
 * stores with a MOV to a protected sub-page over and over; meanwhile an AP rewrites that
 * MOV into a VMOVDQU ymm store and back. When the exit's decode sees the VMOVDQU, the
 * emulator must not read YMM0 in the host (the guest's XCR0 is live there, so the read
 * takes #UD; before the fix that panicked the hypervisor with spp.lock held): the guest
 * gets #UD, as it would natively for a VMOVDQU with XCR0.AVX = 0.
 *
 * Points: setup; every iteration ended with the write handled (protected bytes unchanged)
 * or with #UD, no other exception; the hypervisor took write exits it did not emulate
 * (diagnostic count of the race); then the common hostile post-checks.
 */
#include "guest.h"
#include "arch.h"
#include "hostile.h"

#define ITERATIONS 4000
#define N_TESTS (3 + HOSTILE_POSTCHECK_POINTS)

static const uint8_t mov_bytes[4] = { 0x89, 0x03, 0x90, 0x90 };     /* MOV [RBX], EAX; NOP; NOP */
static const uint8_t vmovdqu_bytes[4] = { 0xc5, 0xfe, 0x7f, 0x03 }; /* VMOVDQU [RBX], YMM0 */

static volatile uint32_t *site;
static volatile int stop_flipping;
static volatile uint64_t flips;

static uint32_t le32(const uint8_t b[4]) { return b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24; }

static void flipper(void *arg)
{
	(void)arg;
	uint32_t a = le32(mov_bytes), b = le32(vmovdqu_bytes);
	uint64_t n = 0;
	while (!stop_flipping) {
		*site = b;
		*site = a;
		n++;
	}
	flips = n;
}

static inline uint64_t xgetbv0(void)
{
	uint32_t lo, hi;
	__asm__ __volatile__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	return ((uint64_t)hi << 32) | lo;
}

static inline void xsetbv0(uint64_t v)
{
	__asm__ __volatile__("xsetbv" : : "c"(0), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)) : "memory");
}

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *systab)
{
	guest_init(image, systab);
	tap_plan(N_TESTS);
	struct hostile_guard g;
	hostile_guard_setup(&g);

	uint32_t a, b, c, d;
	__asm__ __volatile__("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(1), "c"(0));
	int have_avx = (c >> 26 & 1) && (c >> 28 & 1);
	EFI_PHYSICAL_ADDRESS code = 0;
	EFI_STATUS st = uefi_call_wrapper(BS->AllocatePages, 4, AllocateAnyPages, EfiLoaderCode, 1, &code);
	volatile uint8_t *target = spp_pages(1);
	int ap = ap_index();
	int64_t set = target ? set1(target, 0xfffffffdu, 0) : -1; /* sub-page 1 protected */
	int ok = have_avx && !EFI_ERROR(st) && target && ap >= 0 && set == 0;
	tap_ok(ok, "setup: AVX %d, code page %llx, protected page %p (SET %lld), AP %d", have_avx,
	       (unsigned long long)code, (void *)target, (long long)set, ap);

	unsigned handled = 0, ud = 0, other = 0, changed = 0;
	uint64_t unemulated = 0;
	if (ok) {
		uint8_t *p = (uint8_t *)(uintptr_t)code;
		/* NOP; MOV RBX, RDI; <4 rewritable bytes at offset 4>; RET */
		static const uint8_t prologue[4] = { 0x90, 0x48, 0x89, 0xfb };
		mem_copy(p, prologue, 4);
		mem_copy(p + 4, mov_bytes, 4);
		p[8] = 0xc3;
		site = (volatile uint32_t *)(p + 4);
		pat_fill(target, PAGE, 0x3c);
		uint8_t before[PAGE];
		mem_copy(before, (const void *)target, PAGE);

		uint64_t cr4 = read_cr4(), xcr0 = 0;
		write_cr4(cr4 | (1u << 18)); /* OSXSAVE, for XSETBV */
		xcr0 = xgetbv0();
		struct stats s0, s1;
		stats_get(&s0);
		stop_flipping = 0;
		EFI_STATUS as = ap_start((unsigned)ap, flipper, NULL);
		xsetbv0(3); /* x87 | SSE: VMOVDQU ymm is #UD from here on */
		for (unsigned i = 0; i < ITERATIONS && !EFI_ERROR(as); i++) {
			struct trap_info ti;
			trap_call(TRAP_ALL, (void (*)(void *))(uintptr_t)code, (void *)(target + 0x80), &ti);
			if (!ti.trapped)
				handled++;
			else if (ti.vector == 6)
				ud++;
			else if (other++ < 4)
				tap_diag("iteration %u: %s at %llx", i, trap_name(ti.vector), (unsigned long long)ti.rip);
		}
		xsetbv0(xcr0);
		stop_flipping = 1;
		ap_wait(2000);
		stats_get(&s1);
		write_cr4(cr4);
		unsigned first;
		changed = mem_diff(before, target, PAGE, &first);
		uint64_t v = sdelta(&s0, &s1, TESSEL_STAT_EPT_VIOLATIONS), e = sdelta(&s0, &s1, TESSEL_STAT_EMULATED_WRITES);
		unemulated = v > e ? v - e : 0;
		tap_diag("AP start %llx, %llu flips; %u handled, %u #UD, %u other; %llu write exits, %llu emulated",
			 (unsigned long long)as, (unsigned long long)flips, handled, ud, other, (unsigned long long)v,
			 (unsigned long long)e);
		unprot(target, 1);
	}
	tap_ok(ok && other == 0 && handled + ud == ITERATIONS && changed == 0,
	       "every MOV/VMOVDQU either had its write handled or raised #UD, protected bytes unchanged "
	       "(%u handled, %u #UD, %u other, %u bytes changed)", handled, ud, other, changed);
	tap_ok(ok && handled > 0 && ud > 0,
	       "both forms ran (%llu write exits not emulated: the decode saw other bytes than the processor ran)",
	       (unsigned long long)unemulated);
	hostile_postcheck(&g, "rewritten AVX stores");
	guest_finish();
}
