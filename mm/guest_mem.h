/*
 * Access to guest memory on the guest's behalf: guest-linear to guest-physical walks in
 * every paging mode, and physical reads/writes that honour what the guest may see (the
 * hypervisor's region reads as 0xFF and is never written; only RAM is touched).
 */
#ifndef MM_GUEST_MEM_H
#define MM_GUEST_MEM_H

#include <tessel/types.h>

/*
 * The last successful 4/5-level walk of a CPU, kept with the address and the value of every
 * paging-structure entry it read. A walk with the same key (CR3, linear page, access and the
 * control bits the walk looks at) whose entries all still hold those values, read again in
 * the walk's order, is exactly that walk: the same entries at the same addresses give the
 * same translation and permissions. So nothing the guest changes in its tables (with or
 * without INVLPG, which does not exit under EPT) is ever missed: a changed entry is a miss.
 * The entries were RAM when read, and the RAM map does not change while the cache is kept
 * (memmap_gen counts the changes memmap_hide makes).
 */
struct walk_cache {
	u64 cr3, la_page, gpa_page;
	u32 key;       /* access | CR0.WP | EFER.NXE | CR4.LA57 | valid; 0 = empty */
	u32 gen;       /* memmap_gen when filled */
	u32 n;         /* entries read */
	u64 ea[5], ev[5];
};

struct guest_paging {
	u64 cr0, cr3, cr4, efer;
	u64 pdpte[4]; /* PAE paging: the PDPTE registers (VMCS guest PDPTEs) */
	struct walk_cache *wc; /* this CPU's, or NULL (vcpu_guest_paging sets it) */
};

#define GACC_WRITE (1U << 0)
#define GACC_USER  (1U << 1)
#define GACC_FETCH (1U << 2)

/* Page-fault error code bits (SDM Vol. 3A Figure 4-12). */
#define PFEC_P    (1U << 0)
#define PFEC_W    (1U << 1)
#define PFEC_U    (1U << 2)
#define PFEC_RSVD (1U << 3)
#define PFEC_I    (1U << 4)

/* 0 and *gpa, or -EFAULT with *pfec set (a #PF the guest would take), or -EINVAL when a
 * paging structure is not in guest RAM. */
int guest_walk(const struct guest_paging *p, u64 gla, u32 access, u64 *gpa, u32 *pfec);

/* Physical access. Reads of the hypervisor's region give 0xFF bytes; anything else that is
 * not RAM, and any write outside RAM, fails with -EFAULT and touches nothing. */
int guest_read_phys(u64 gpa, void *buf, size_t n);
int guest_write_phys(u64 gpa, const void *buf, size_t n);

/* Linear reads, page by page. On a page fault returns -EFAULT with *pfec and *fault_gla
 * set; -EINVAL when a paging structure is not in guest RAM, -EIO when the data is not
 * (MMIO, a hole): neither is a fault the guest would take, and they leave *fault_gla alone. */
int guest_read_linear(const struct guest_paging *p, u64 gla, void *buf, size_t n, u32 access,
		      u32 *pfec, u64 *fault_gla);

#endif
