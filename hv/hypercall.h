/*
 * Hypercall dispatch (docs/ABI.md sections 2-3). Each call is split seL4-style: decode and
 * validate every argument first, then act; on a negative status nothing has changed.
 */
#ifndef HV_HYPERCALL_H
#define HV_HYPERCALL_H

#include "percpu.h"

struct hc_args {
	u64 nr;
	u64 arg[4];  /* RBX, RCX, RDX, RSI */
	u64 out[3];  /* RBX, RCX, RDX when the call returns values */
	bool has_out;
};

typedef s64 (*hypercall_fn)(struct percpu *c, struct hc_args *a);

/* Run one hypercall as if from CPL `cpl`; returns the status placed in RAX. */
s64 hypercall_dispatch(struct percpu *c, struct hc_args *a, unsigned cpl);

/* The loader-only calls (TESSEL_HC_LOADER_*, include/tessel/bootinfo.h): set by the core's
 * boot code (hv/main.c) while a start is in progress; NULL (-ENOSYS) otherwise and in host
 * builds. */
extern hypercall_fn hc_loader_hook;

/* Handlers provided by other modules (spp/); weak stubs return -ENODEV until present. */
s64 hc_spp_set(struct percpu *c, struct hc_args *a);
s64 hc_spp_get(struct percpu *c, struct hc_args *a);
s64 hc_spp_lock(struct percpu *c, struct hc_args *a);
s64 hc_spp_protect_bytes(struct percpu *c, struct hc_args *a); /* ABI 1.4 */
s64 hc_events_setup(struct percpu *c, struct hc_args *a);
s64 hc_test_sppt_misconfig(struct percpu *c, struct hc_args *a);
s64 hc_test_table_mem(struct percpu *c, struct hc_args *a);
s64 hc_test_ept_leaf(struct percpu *c, struct hc_args *a);
s64 hc_test_vmcs_count(struct percpu *c, struct hc_args *a);
s64 hc_test_root_msr(struct percpu *c, struct hc_args *a);

#endif
