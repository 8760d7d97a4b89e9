/*
 * VMX capability profiles (tests/data/vmx_profiles/profiles.c): the capability MSR values
 * of a processor or of KVM's nested VMX, with where they come from. vmx_profile_load()
 * (tests/unit/profile_setup.h) puts them into the fake hardware layer's MSR and CPUID
 * tables, so the real vmx_caps_read() and VMCS setup run against them.
 */
#ifndef TESTS_VMX_PROFILES_H
#define TESTS_VMX_PROFILES_H

#include <stdbool.h>
#include <stddef.h>
#include <tessel/types.h>

struct vmx_profile {
	const char *name;
	const char *source;   /* where the values come from, and what is derived rather than dumped */
	u64 basic;            /* IA32_VMX_BASIC (0x480) */
	u64 pin, proc, exit, entry;                     /* 0x481-0x484 */
	u64 true_pin, true_proc, true_exit, true_entry; /* 0x48d-0x490 */
	u64 misc;             /* 0x485 */
	u64 cr0f0, cr0f1, cr4f0, cr4f1;                 /* 0x486-0x489 */
	u64 vmcs_enum;        /* 0x48a */
	u64 proc2;            /* 0x48b */
	u64 ept_vpid;         /* 0x48c */
	u64 vmfunc;           /* 0x491 */
	u8 phys_bits;         /* CPUID.80000008:EAX[7:0] */
	bool pdpe1gb;         /* CPUID.80000001:EDX[26] */
	/* NULL if Tessel runs on it; else one reason vmx_caps_check() must report. */
	const char *refusal;
};

extern const struct vmx_profile vmx_profiles[];
extern const size_t vmx_profile_count;

#endif
