/*
 * The event ring (ABI.md section 5) and HC_EVENTS_SETUP. One ring for the guest, written
 * by the hypervisor (head, dropped, entries) and read by the guest (tail). The guest's tail
 * is read once per event and never trusted beyond the arithmetic: head - tail > capacity
 * counts as full. The hypervisor's own writes into the ring obey sub-page protection: an
 * entry that would land on protected bytes is dropped and counted.
 */
#include <hw.h>
#include "hv/abi.h"
#include "hv/hypercall.h"
#include "hv/stats.h"
#include "hv/vmcs.h"
#include "lib/string.h"
#include "mm/memmap.h"
#include "spp/spp.h"

#define RING_HDR 64
#define RING_ENTRY 32

struct __packed ring_entry { u64 gpa, rip, gla; u32 vcpu; u16 kind, bytes; };
BUILD_BUG_ON(sizeof(struct ring_entry) != RING_ENTRY);
BUILD_BUG_ON(__builtin_offsetof(struct ring_entry, vcpu) != 24 || __builtin_offsetof(struct ring_entry, kind) != 28 ||
	     __builtin_offsetof(struct ring_entry, bytes) != 30); /* spp_post_event's fourth word */

static volatile u32 *ring_u32(u64 off) { return hpa_to_ptr(hpa(spp.ring_gpa + off)); }

/* Caller holds spp.lock. A capacity of 0 means no ring: GPA 0 is RAM on most machines
 * and a valid place for one (ABI.md section 3 only reserves RBX = 0 with RCX = 0). */
void spp_post_event(struct percpu *c, u64 gpa, u64 rip, u64 gla, u16 kind, u16 bytes)
{
	if (!spp.ring_capacity)
		return;
	u32 tail = ring_u32(4)[0];
	u32 head = spp.ring_head;
	u64 slot = RING_HDR + (u64)(head % spp.ring_capacity) * RING_ENTRY;
	bool full = (u32)(head - tail) >= spp.ring_capacity;
	/* Whether the ring holds protected bytes only changes with a SET: check once per change. */
	bool ring_clean = spp.ring_checked_gen == spp.store_gen + 1;
	u64 ring_bytes = RING_HDR + (u64)spp.ring_capacity * RING_ENTRY;
	if (!ring_clean && ring_bytes <= 4 * PAGE_SIZE && spp_gpa_writable(spp.ring_gpa, ring_bytes)) {
		spp.ring_checked_gen = spp.store_gen + 1; /* +1: 0 means "never checked" */
		ring_clean = true;
	}
	if (full || (!ring_clean && (!spp_gpa_writable(spp.ring_gpa + slot, RING_ENTRY) ||
				     !spp_gpa_writable(spp.ring_gpa, 24)))) {
		if (spp_gpa_writable(spp.ring_gpa + 16, 8)) {
			volatile u64 *dropped = hpa_to_ptr(hpa(spp.ring_gpa + 16));
			*dropped = *dropped + 1;
		}
		stat_inc(STAT_EVENTS_DROPPED);
		return;
	}
	/* Four 8-byte stores straight into the slot (struct ring_entry, little-endian). */
	volatile u64 *dst = hpa_to_ptr(hpa(spp.ring_gpa + slot));
	dst[0] = gpa;
	dst[1] = rip;
	dst[2] = gla;
	dst[3] = (u64)c->apic_id | (u64)kind << 32 | (u64)bytes << 48;
	__atomic_store_n(&spp.ring_head, head + 1, __ATOMIC_RELAXED);
	__atomic_store_n((u32 *)ring_u32(0), head + 1, __ATOMIC_RELEASE);
	if (spp.ring_vector)
		c->pending_vector = spp.ring_vector;
}

s64 hc_events_setup(struct percpu *c, struct hc_args *a)
{
	(void)c;
	u64 gpa = a->arg[0], pages = a->arg[1], vector = a->arg[2];
	if (spp.mode == SPP_MODE_NONE)
		return -ENODEV;
	if (vector && (vector < 32 || vector > 255))
		return -EINVAL;
	if (gpa == 0 && pages == 0) {
		spin_lock(&spp.lock);
		spp.ring_gpa = 0;
		spp.ring_capacity = 0;
		spp.ring_vector = 0;
		spin_unlock(&spp.lock);
		return 0;
	}
	if (pages < 1 || pages > 64)
		return -EINVAL;
	if ((gpa & (PAGE_SIZE - 1)) || !memmap_is_ram(gpa, pages * PAGE_SIZE))
		return -EFAULT;
	spin_lock(&spp.lock);
	s64 r = 0;
	if (!spp_gpa_writable(gpa, pages * PAGE_SIZE)) {
		r = -EFAULT;
		goto out;
	}
	memset(hpa_to_ptr(hpa(gpa)), 0, RING_HDR);
	spp.ring_capacity = (u32)((pages * PAGE_SIZE - RING_HDR) / RING_ENTRY);
	spp.ring_head = 0;
	spp.ring_vector = (u8)vector;
	spp.ring_checked_gen = 0;
	*(volatile u32 *)hpa_to_ptr(hpa(gpa + 8)) = spp.ring_capacity;
	spp.ring_gpa = gpa;
out:
	spin_unlock(&spp.lock);
	return r;
}
