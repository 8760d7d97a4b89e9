/*
 * Typed VMCS accessors. For a constant field, the accessor's width is checked against the
 * width encoded in the field number at build time (as KVM does), so a 32-bit read of a
 * natural-width field does not compile. A failing VMREAD/VMWRITE is a hypervisor bug and
 * panics with the field number.
 */
#ifndef HV_VMCS_H
#define HV_VMCS_H

#include <hw.h>
#include <arch/vmcs_fields.h>
#include <tessel/types.h>

__noreturn void vmcs_read_failed(u32 field);
__noreturn void vmcs_write_failed(u32 field, u64 value);

/* Test builds count every VMREAD and VMWRITE (HC_TEST_VMCS_COUNT, spp/test_hooks.c) so the
 * benchmark can show how many each exit path makes. One plain counter for all CPUs: exact
 * with one CPU, approximate with more (the benchmark measures with one). */
#ifdef TESSEL_TEST_HOOKS
extern u64 vmcs_test_reads, vmcs_test_writes;
#define VMCS_TEST_COUNT(n) ((n)++)
#else
#define VMCS_TEST_COUNT(n) ((void)0)
#endif

/* Inline: these are on every exit path; the failure report is out of line. */
static inline u64 vmcs_read_raw(u32 field)
{
	u64 v;
	VMCS_TEST_COUNT(vmcs_test_reads);
	if (unlikely(!vmx_vmread(field, &v)))
		vmcs_read_failed(field);
	return v;
}

static inline void vmcs_write_raw(u32 field, u64 value)
{
	VMCS_TEST_COUNT(vmcs_test_writes);
	if (unlikely(!vmx_vmwrite(field, value)))
		vmcs_write_failed(field, value);
}
/* For diagnostics: false instead of a panic when the field cannot be read. */
bool vmcs_try_read(u32 field, u64 *value);

#define VMCS_WIDTH_CHECK(f, w) \
	_Static_assert(vmcs_field_width(f) == (w), "VMCS field accessed at the wrong width")

#define vmcs_read16(f) ({ VMCS_WIDTH_CHECK(f, VMCS_WIDTH_16); (u16)vmcs_read_raw(f); })
#define vmcs_read32(f) ({ VMCS_WIDTH_CHECK(f, VMCS_WIDTH_32); (u32)vmcs_read_raw(f); })
#define vmcs_read64(f) ({ VMCS_WIDTH_CHECK(f, VMCS_WIDTH_64); vmcs_read_raw(f); })
#define vmcs_readl(f)  ({ VMCS_WIDTH_CHECK(f, VMCS_WIDTH_NATURAL); vmcs_read_raw(f); })
#define vmcs_write16(f, v) do { VMCS_WIDTH_CHECK(f, VMCS_WIDTH_16); vmcs_write_raw(f, (u16)(v)); } while (0)
#define vmcs_write32(f, v) do { VMCS_WIDTH_CHECK(f, VMCS_WIDTH_32); vmcs_write_raw(f, (u32)(v)); } while (0)
#define vmcs_write64(f, v) do { VMCS_WIDTH_CHECK(f, VMCS_WIDTH_64); vmcs_write_raw(f, (u64)(v)); } while (0)
#define vmcs_writel(f, v)  do { VMCS_WIDTH_CHECK(f, VMCS_WIDTH_NATURAL); vmcs_write_raw(f, (u64)(v)); } while (0)

/* Print a summary of the current VMCS (exit information and guest state) to the log. */
void vmcs_dump(void);

#endif
