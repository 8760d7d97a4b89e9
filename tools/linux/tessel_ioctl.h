/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * tessel_ioctl.h: the user-space interface of the Linux guest driver (tools/linux/driver/),
 * /dev/tessel. Shared by the driver and by user programs (tools/linux/conform/).
 *
 * The device is root only (mode 0600, and open needs CAP_SYS_ADMIN). Every ioctl returns 0, or
 * -1 with errno set; errno values the hypervisor returns are passed through unchanged (ABI.md
 * section 2 uses Linux's numbers): EPERM a page is locked, E2BIG too many pages, EINVAL bad
 * flags / npages 0 / a page that is not guest RAM, ENOMEM hypervisor table memory, ENODEV no
 * sub-page protection, EOPNOTSUPP TRACK without TESSEL_F_TRACK. The driver adds: EFAULT
 * bad user pointer, EBUSY (SET_SUBPAGES) a page of the driver's event ring or a page that
 * PROTECT_VA protects (release it first), ENOENT (UNPROTECT_VA) an address this file did not
 * protect from this process.
 *
 * Events: read() returns whole struct tessel_event entries (32 bytes each, the ring's layout,
 * ABI.md section 5); it blocks until at least one is there unless O_NONBLOCK (then EAGAIN); a
 * buffer under 32 bytes is EINVAL. poll() reports POLLIN while entries are unread. The ring is
 * shared: an entry is consumed by whichever reader gets it first.
 */
#ifndef TESSEL_IOCTL_H
#define TESSEL_IOCTL_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define TESSEL_DEVICE "/dev/tessel"

/* Returned by TESSEL_IOC_INFO. */
struct tessel_info {
	__u32 version;       /* ABI version, major << 16 | minor (HC_QUERY RBX) */
	__u32 features;      /* TESSEL_F_* (HC_QUERY RCX) */
	__u32 max_pages;     /* pages per GET/SET/LOCK/PROTECT_VA call (HC_QUERY RDX) */
	__u32 vector;        /* interrupt vector the event ring notifies on, 0 if none */
	__u32 ring_capacity; /* entries in the driver's event ring */
	__u32 reserved[3];   /* 0 */
};

/*
 * GET_SUBPAGES / SET_SUBPAGES on a guest-physical range. The layout mirrors struct kvm_subpage
 * of the KVM SPP patch series: bit j of access_map[i] set makes bytes [128j, 128j + 127] of
 * page gfn_base + i writable; 0 write-protects them; 0xFFFFFFFF is an unprotected page.
 * The ioctl argument is the header followed by npages maps.
 */
struct tessel_subpage {
	__u64 gfn_base;     /* first guest page frame number (guest-physical address >> 12) */
	__u32 npages;       /* 1 .. max_pages */
	__u32 flags;        /* SET: 0 or TESSEL_SUBPAGE_TRACK; GET: 0 */
	__u32 access_map[]; /* npages entries */
};
#define TESSEL_SUBPAGE_TRACK (1u << 0) /* writes to protected sub-pages land and are reported */

/* LOCK: freeze the permissions of a guest-physical range until platform reset. */
struct tessel_range {
	__u64 gfn_base;
	__u32 npages; /* 1 .. max_pages */
	__u32 flags;  /* 0 */
};

/*
 * PROTECT_VA: sub-page permissions for pages of the caller's own memory, by virtual address.
 * addr is page aligned; the pages must be writable private or shared memory of the caller.
 * They are pinned while protected (so their physical pages cannot move or be reused) and the
 * protection is removed and the pins released by UNPROTECT_VA or when the file is closed.
 * Every call resolves its addresses again: a protection holds the physical page the address
 * mapped at the call, and protecting an address again after it was remapped (munmap and
 * mmap, MADV_DONTNEED, exec) protects the page it maps now and releases the old one.
 * Protecting an address this file already protects replaces its map. Each (file, process,
 * address) is one holder of its physical page: the page's map is the intersection of its
 * holders' maps (TRACK only if every holder that protects something asked for it), so one
 * holder's UNPROTECT_VA or close never makes writable what another file, or another address
 * of the same page, still protects. A page is pinned once however many holders it has.
 * UNPROTECT_VA takes the same header (flags 0, access_map absent) and removes this file's
 * holders made through these addresses by this process, whatever page they hold now.
 * Holders made by a process that has exited or exec'd go on the file's next PROTECT_VA or
 * UNPROTECT_VA, or on close.
 */
struct tessel_va {
	__u64 addr;
	__u32 npages; /* 1 .. max_pages */
	__u32 flags;  /* PROTECT_VA: 0 or TESSEL_SUBPAGE_TRACK; UNPROTECT_VA: 0 */
	__u32 access_map[];
};

#define TESSEL_IOC_MAGIC 0xE6
#define TESSEL_IOC_INFO         _IOR(TESSEL_IOC_MAGIC, 0x00, struct tessel_info)
#define TESSEL_IOC_GET_SUBPAGES _IOWR(TESSEL_IOC_MAGIC, 0x01, struct tessel_subpage)
#define TESSEL_IOC_SET_SUBPAGES _IOW(TESSEL_IOC_MAGIC, 0x02, struct tessel_subpage)
#define TESSEL_IOC_LOCK         _IOW(TESSEL_IOC_MAGIC, 0x03, struct tessel_range)
#define TESSEL_IOC_PROTECT_VA   _IOW(TESSEL_IOC_MAGIC, 0x04, struct tessel_va)
#define TESSEL_IOC_UNPROTECT_VA _IOW(TESSEL_IOC_MAGIC, 0x05, struct tessel_va)
#define TESSEL_IOC_NOP          _IO(TESSEL_IOC_MAGIC, 0x06) /* HC_NOP: round-trip measurement */

/* One entry as read() returns it: the ring entry of ABI.md section 5. */
struct tessel_event_entry {
	__u64 gpa;   /* first protected byte the write touched */
	__u64 rip;   /* of the writing instruction */
	__u64 gla;   /* guest-linear address, 0 if unknown */
	__u32 vcpu;  /* APIC ID */
	__u16 kind;  /* 1 DENIED, 2 TRACKED, 3 DISCARDED */
	__u16 bytes; /* protected bytes touched, 0 if unknown */
};

/*
 * sysfs (all 0400), under /sys/class/misc/tessel/:
 *   version features max_pages mode ("hardware" or "software") vector
 *   stats/<counter>: the HC_STATS counters, read from the hypervisor on each read (exits,
 *     hypercalls, spp_denied, spp_tracked, spp_misses, spp_misconfigs, ept_violations,
 *     emulated_writes, pages_protected, sppt_pages, events_dropped)
 *   stats/interrupts stats/events_read stats/ring_dropped stats/pinned_pages: the driver's own
 */

#endif
