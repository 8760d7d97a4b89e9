/*
 * Software path: writes that straddle sub-page boundaries are byte-precise (issue 4; ABI.md
 * section 4.2: "in software mode every byte is checked"). With alternating maps every one of
 * the 31 boundaries of a page is a protected/writable boundary, in one direction or the other;
 * writes of 2, 4, 8 and 16 bytes (MOV and MOVDQU) at every offset that crosses a boundary must
 * change exactly their writable bytes. With hardware SPP the processor decides such writes
 * (Bochs 2.7 checks the first byte's sub-page only), so there the byte-precise checks are
 * skipped, and for writes that start in a protected sub-page "no protected byte changes" is
 * asserted.
 */
#include "arch.h"
#include "guest.h"
#include "spp_util.h"
#include <tessel.h>

#define PAGE 4096u
#define POINTS 9

static void store16(volatile uint8_t *p, const uint8_t v[16])
{
	__asm__ __volatile__("movdqu (%1), %%xmm0\n\t"
			     "movdqu %%xmm0, (%0)" : : "r"(p), "r"(v) : "memory"); /* xmm0: no C code here uses SSE (-mgeneral-regs-only) */
}

/* Run every straddling write of `size` bytes under `map`; returns the number of wrong pages and
 * describes the first in why. protected_only: only check that no protected byte changed. */
static unsigned run(uint8_t *p, uint8_t *exp, uint32_t map, unsigned size, int protected_only, char *why, unsigned wl)
{
	unsigned bad = 0, writes = 0;
	uint8_t val[16];
	for (unsigned i = 0; i < 16; i++)
		val[i] = (uint8_t)(0xa0 + i + size);
	for (unsigned b = 1; b < 32; b++) {
		unsigned edge = b * 128;
		for (unsigned off = edge - size + 1; off < edge; off++) {
			/* Hardware mode: the processor decides a write whose first byte is writable
			 * (Bochs 2.7 checks only that byte's sub-page, docs/SPP.md section 10); one
			 * that starts in a protected sub-page exits and must change no protected byte. */
			if (protected_only && ((map >> (off / 128)) & 1))
				continue;
			pat_fill(exp, PAGE, (uint8_t)(b + off));
			/* The page itself may have protected bytes: reset it through an unprotected
			 * window: unprotect, fill, protect again. */
			unprot(p, 1);
			for (unsigned k = 0; k < PAGE; k++)
				p[k] = exp[k];
			set1(p, map, 0);
			invlpg(p);
			if (size == 16)
				store16(p + off, val);
			else
				raw_store(p + off, *(uint64_t *)val, size);
			writes++;
			for (unsigned k = 0; k < size; k++) {
				unsigned at = off + k;
				if ((map >> (at / 128)) & 1)
					exp[at] = val[k];
			}
			unsigned first = 0;
			int wrong;
			if (protected_only) {
				wrong = 0;
				for (unsigned k = 0; k < PAGE; k++)
					if (!((map >> (k / 128)) & 1) && p[k] != exp[k])
						wrong = 1, first = k;
			} else {
				wrong = mem_diff(p, exp, PAGE, &first) != 0;
			}
			if (wrong && !bad++)
				fmt_snprintf(why, wl, "map %08x, %u bytes at %u: byte %u is %02x, expected %02x", map, size, off,
					     first, p[first], exp[first]);
		}
	}
	unprot(p, 1);
	if (!bad)
		fmt_snprintf(why, wl, "%u writes", writes);
	return bad;
}

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *st)
{
	spp_start(image, st, POINTS);
	suite_begin("straddle", POINTS);
	uint8_t *p = spp_pages(1), *exp = spp_pages(1);
	if (!p || !exp || !spp.ok) {
		suite_end();
		guest_finish();
	}
	static const uint32_t maps[2] = { 0x55555555u, 0xaaaaaaaau };
	static const unsigned sizes[4] = { 2, 4, 8, 16 };
	char why[160];
	unsigned hw_bad = 0;
	for (int m = 0; m < 2; m++) {
		for (int s = 0; s < 4; s++) {
			if (spp.sw) {
				unsigned bad = run(p, exp, maps[m], sizes[s], 0, why, sizeof(why));
				sok(!bad, "software mode: %u-byte writes across every boundary of map %08x are byte-precise (%s)",
				    sizes[s], maps[m], why);
			} else {
				hw_bad += run(p, exp, maps[m], sizes[s], 1, why, sizeof(why));
				sskip("hardware mode", "%u-byte straddling writes under map %08x: the processor decides "
						       "(ABI.md 4.2)", sizes[s], maps[m]);
			}
		}
	}
	sok(!hw_bad, "no straddling write starting in a protected sub-page changed a protected byte (%s mode)",
	    spp_mode());
	suite_end();
	spp_free(p, 1);
	spp_free(exp, 1);
	guest_finish();
}
