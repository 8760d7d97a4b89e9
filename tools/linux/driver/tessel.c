// SPDX-License-Identifier: GPL-2.0
/*
 * tessel.ko: Linux guest driver for the Tessel hypervisor's sub-page write protection
 * (hypercall ABI 1.0, docs/ABI.md). It brings the ABI to user space through /dev/tessel:
 *
 *  - GET/SET of sub-page permissions on guest-physical ranges and LOCK (ioctls whose layout
 *    mirrors struct kvm_subpage of the KVM SPP series);
 *  - PROTECT_VA/UNPROTECT_VA: sub-page permissions on the caller's own memory, the pages pinned
 *    (FOLL_LONGTERM) while protected and released on UNPROTECT_VA or close;
 *  - the hypervisor's event ring, read with read()/poll(); the ring's notification vector
 *    wakes readers;
 *  - statistics in sysfs.
 *
 * The interface is tools/linux/tessel_ioctl.h; the hypercall wrappers and ABI numbers are
 * tools/tessel.h, shared with the project's UEFI guests.
 *
 * The notification vector. The hypervisor injects the ring's vector straight into the vCPU
 * that caused an event (ABI.md section 7), so the vector must have a handler on every CPU.
 * Linux 6.1 lets a module install no IDT vector of its own; the one system vector with an
 * exported hook is KVM's posted-interrupt wakeup vector (POSTED_INTR_WAKEUP_VECTOR, 0xf1,
 * kvm_set_posted_intr_wakeup_handler()). It is free in a Tessel guest: Tessel hides VMX, so
 * kvm_intel cannot load. The kernel's handler writes EOI to the local APIC; the injected
 * vector sets no in-service bit, and Linux only runs with interrupts enabled when no
 * interrupt is in service, so that EOI is a no-op.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/capability.h>
#include <linux/device.h>
#include <linux/fs.h>
#include <linux/gfp.h>
#include <linux/hashtable.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/poll.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/wait.h>
#include <linux/xarray.h>
#include <asm/io.h>
#include <asm/irq.h>
#include <asm/irq_vectors.h>

#include "tessel.h"
#include "tessel_ioctl.h"
#include "tessel_kapi.h"

#ifndef POSTED_INTR_WAKEUP_VECTOR
#error "the event vector needs CONFIG_HAVE_KVM (POSTED_INTR_WAKEUP_VECTOR)"
#endif

#define TESSEL_RING_ORDER 4 /* 16 pages: 2046 entries */
#define TESSEL_RING_PAGES (1u << TESSEL_RING_ORDER)
#define TESSEL_DRV_MAX_PAGES 4096u /* cap on one call's map buffer: 16 KiB */

/* What the hypervisor reported at load time. */
static u32 tessel_version, tessel_features, tessel_max_pages;

/* The event ring, one per guest, owned by this driver while it is loaded. */
static struct tessel_ring *ring;
static struct page *ring_pages;
static u32 ring_capacity, ring_vector;
static DEFINE_MUTEX(ring_lock); /* serializes consumers (tail) */
static DECLARE_WAIT_QUEUE_HEAD(ring_wait);

static atomic64_t stat_interrupts = ATOMIC64_INIT(0);
static atomic64_t stat_events_read = ATOMIC64_INIT(0);
static atomic64_t stat_pinned = ATOMIC64_INIT(0);
static atomic_t open_files = ATOMIC_INIT(0); /* /dev/tessel files open (the guard's ring use) */

/* Hypercall statuses are negative Linux errno values (ABI.md section 2). */
static long hc_status(s64 st)
{
	if (st >= 0)
		return 0;
	if (st < -4095)
		return -EIO;
	return (long)st;
}

/*
 * One page's map, from a buffer in the kernel's direct map (hypercall buffers are passed by
 * guest-physical address, which stack memory, vmalloc'ed with CONFIG_VMAP_STACK, has not).
 */
static u32 *set_one_buf;
static DEFINE_MUTEX(set_one_lock);

static long spp_set_one(u64 gfn, u32 map, u32 flags)
{
	long ret;

	mutex_lock(&set_one_lock);
	*set_one_buf = map;
	ret = hc_status(tessel_spp_set(gfn, 1, virt_to_phys(set_one_buf), flags));
	mutex_unlock(&set_one_lock);
	return ret;
}

static bool ring_overlaps(u64 gfn, u64 n)
{
	u64 first;

	if (!ring)
		return false;
	first = page_to_pfn(ring_pages);
	return gfn < first + TESSEL_RING_PAGES && first < gfn + n;
}

/* Common bounds of every page-count argument: 0 is EINVAL, above the maximum E2BIG. */
static long check_npages(u32 npages)
{
	if (npages == 0)
		return -EINVAL;
	if (npages > tessel_max_pages)
		return -E2BIG;
	return 0;
}

/* Reads npages maps from user space. */
static u32 *copy_maps(void __user *maps, u32 npages)
{
	return memdup_user(maps, (size_t)npages * sizeof(u32));
}

static DEFINE_MUTEX(prot_lock);  /* PROTECT_VA's records, below */
static DEFINE_XARRAY(ppages);     /* pfn -> struct tessel_ppage */

/* A page of gfn .. gfn + n - 1 is protected through PROTECT_VA (prot_lock held). */
static bool ppages_overlap(u64 gfn, u64 n)
{
	unsigned long idx = (unsigned long)gfn;

	if (gfn > ULONG_MAX - n)
		return false; /* not RAM: the hypervisor refuses it */
	return xa_find(&ppages, &idx, (unsigned long)(gfn + n - 1), XA_PRESENT) != NULL;
}

static long ioctl_subpages(void __user *arg, bool set)
{
	struct tessel_subpage hdr;
	struct tessel_subpage __user *uhdr = arg;
	u32 *maps;
	long ret;

	if (copy_from_user(&hdr, uhdr, sizeof(hdr)))
		return -EFAULT;
	ret = check_npages(hdr.npages);
	if (ret)
		return ret;
	if (set) {
		/* Reserved flags are EINVAL before EBUSY, as the hypervisor would say. */
		if (hdr.flags & ~TESSEL_SUBPAGE_TRACK)
			return -EINVAL;
		if (ring_overlaps(hdr.gfn_base, hdr.npages))
			return -EBUSY;
		maps = copy_maps(uhdr->access_map, hdr.npages);
		if (IS_ERR(maps))
			return PTR_ERR(maps);
		/* A raw SET would silently replace the intersection PROTECT_VA's holders set. */
		mutex_lock(&prot_lock);
		if (ppages_overlap(hdr.gfn_base, hdr.npages))
			ret = -EBUSY;
		else
			ret = hc_status(tessel_spp_set(hdr.gfn_base, hdr.npages, virt_to_phys(maps),
						       hdr.flags));
		mutex_unlock(&prot_lock);
	} else {
		maps = kcalloc(hdr.npages, sizeof(u32), GFP_KERNEL);
		if (!maps)
			return -ENOMEM;
		/* flags go to the hypervisor as RSI, which must be 0: it checks them. */
		ret = hc_status(tessel_vmcall(HC_SPP_GET, hdr.gfn_base, hdr.npages, virt_to_phys(maps),
					      hdr.flags, NULL));
		if (!ret && copy_to_user(uhdr->access_map, maps, (size_t)hdr.npages * sizeof(u32)))
			ret = -EFAULT;
	}
	kfree(maps);
	return ret;
}

static long ioctl_lock(void __user *arg)
{
	struct tessel_range r;
	long ret;

	if (copy_from_user(&r, arg, sizeof(r)))
		return -EFAULT;
	if (r.flags)
		return -EINVAL;
	ret = check_npages(r.npages);
	if (ret)
		return ret;
	return hc_status(tessel_spp_lock(r.gfn_base, r.npages));
}

static long check_va(const struct tessel_va *v, u32 allowed_flags)
{
	long ret;

	if (v->flags & ~allowed_flags)
		return -EINVAL;
	ret = check_npages(v->npages);
	if (ret)
		return ret;
	if (!PAGE_ALIGNED(v->addr) || v->addr + ((u64)v->npages << PAGE_SHIFT) < v->addr)
		return -EINVAL;
	if (!access_ok((void __user *)(unsigned long)v->addr, (u64)v->npages << PAGE_SHIFT))
		return -EFAULT;
	return 0;
}

/*
 * Protection by virtual address (PROTECT_VA). A protection is asked for through an address
 * but holds a physical page, so the records are keyed by page frame:
 *
 *  - struct tessel_ppage: a physical page at least one holder protects. It holds the page's
 *    one long-term pin (so the page can neither move nor be reused while protected) and
 *    remembers the map and flags the hypervisor has for it.
 *  - struct tessel_hold: one holder's protection of that page: the file, the address space
 *    (mm) and the virtual page it was made through, its map and flags.
 *
 * The hypervisor gets the intersection of the holders' maps (a sub-page is writable only if
 * every holder lets it be), and TRACK only if every holder that protects something asked for
 * it (denying is the stricter). So no holder's UNPROTECT_VA or close makes writable what
 * another still protects, whether the other is another file or another address of the same
 * page in the same file.
 *
 * Every call resolves each address again (pin_user_pages_fast): what an address maps can
 * change behind the driver's back (munmap and mmap at the same address, MADV_DONTNEED,
 * mremap, exec). A holder made through an address that now maps another page is stale: the
 * call moves it to the page the address maps now, and the old page loses it (unprotected and
 * unpinned when it was the last holder). Holders whose address space is gone (the process
 * exited or exec'd) are released by the file's next PROTECT_VA or UNPROTECT_VA, or on close.
 *
 * One mutex, prot_lock (defined above ioctl_subpages(), which also takes it), covers all of
 * it: a page's holders can be in any file. SET_SUBPAGES refuses a page that has holders
 * (EBUSY): a raw SET would silently replace their intersection.
 */
struct tessel_ppage {
	struct page *page;	/* pinned by this record */
	struct list_head holds; /* struct tessel_hold.pp_node */
	u32 hv_map, hv_flags;	/* what the hypervisor has for the page */
	/* The call in progress (prot_lock held): */
	struct list_head touched; /* on the call's list of pages to recompute and push */
	bool is_touched, target, fresh, pushed;
	u32 next_map, next_flags;
};

struct tessel_hold {
	struct tessel_file *tf;
	struct mm_struct *mm; /* mmgrab()bed: no other address space gets this pointer meanwhile */
	unsigned long vpn;
	struct tessel_ppage *pp;
	struct list_head pp_node;  /* in pp->holds */
	struct list_head tf_node;  /* in tf->holds */
	struct hlist_node va_node; /* in hold_by_va */
	u32 map, flags;
	bool busy; /* the call in progress replaces or removes this holder's map */
};

/* Per open file: its holders. */
struct tessel_file {
	struct list_head holds;
};

static DEFINE_HASHTABLE(hold_by_va, 10); /* (file, mm, vpn) -> struct tessel_hold */

static unsigned long va_key(struct tessel_file *tf, struct mm_struct *mm, unsigned long vpn)
{
	return (unsigned long)tf ^ (unsigned long)mm ^ vpn;
}

static struct tessel_hold *hold_find(struct tessel_file *tf, struct mm_struct *mm,
				     unsigned long vpn)
{
	struct tessel_hold *h;

	hash_for_each_possible(hold_by_va, h, va_node, va_key(tf, mm, vpn))
		if (h->tf == tf && h->mm == mm && h->vpn == vpn)
			return h;
	return NULL;
}

static unsigned long pp_pfn(const struct tessel_ppage *pp)
{
	return page_to_pfn(pp->page);
}

/*
 * Puts pp on the call's list of pages whose map is recomputed and pushed. A target must get
 * its new map or the call fails; the others only lose holders (best effort, see push_maps()).
 */
static void touch(struct list_head *touched, struct tessel_ppage *pp, bool target)
{
	if (!pp->is_touched) {
		pp->is_touched = true;
		pp->target = false;
		list_add_tail(&pp->touched, touched);
	}
	pp->target |= target;
}

/* Marks every holder of tf whose address space is gone for removal by this call. */
static void mark_dead(struct tessel_file *tf, struct list_head *touched)
{
	struct tessel_hold *h;

	/* mm_users only drops to 0 once: exit_mmap() has run or is running. */
	list_for_each_entry(h, &tf->holds, tf_node)
		if (!h->busy && atomic_read(&h->mm->mm_users) == 0) {
			h->busy = true;
			touch(touched, h->pp, false);
		}
}

static void fold(struct tessel_ppage *pp, u32 map, u32 flags)
{
	pp->next_map &= map;
	if (map != TESSEL_SPP_ALL_WRITABLE && !(flags & TESSEL_SUBPAGE_TRACK))
		pp->next_flags = 0;
}

/*
 * The map each touched page gets: the intersection of its holders' maps, leaving out the
 * busy holders (replaced or removed by the call) and adding maps[i] for the call's pp[i].
 */
static void recompute(struct list_head *touched, struct tessel_ppage **pp, const u32 *maps,
		      u32 n, u32 flags)
{
	struct tessel_ppage *p;
	struct tessel_hold *h;
	u32 i;

	list_for_each_entry(p, touched, touched) {
		p->next_map = TESSEL_SPP_ALL_WRITABLE;
		p->next_flags = TESSEL_SUBPAGE_TRACK;
		list_for_each_entry(h, &p->holds, pp_node)
			if (!h->busy)
				fold(p, h->map, h->flags);
	}
	for (i = 0; i < n; i++)
		fold(pp[i], maps[i], flags);
	list_for_each_entry(p, touched, touched)
		if (p->next_map == TESSEL_SPP_ALL_WRITABLE)
			p->next_flags = 0;
}

/*
 * Gives the hypervisor each touched page's new map. Targets first: if one is refused, the
 * targets already set get their maps back and the call fails having changed nothing. Then the
 * pages that only lose holders, best effort: one the hypervisor refuses (a LOCKed page) keeps
 * its stricter map, and once it has no holder left it stays pinned for good (freed, it would
 * return to the kernel with write-protected bytes).
 */
static long push_maps(struct list_head *touched)
{
	struct tessel_ppage *p, *q;
	long ret;

	list_for_each_entry(p, touched, touched)
		p->pushed = false;
	list_for_each_entry(p, touched, touched) {
		if (!p->target)
			continue;
		ret = spp_set_one(pp_pfn(p), p->next_map, p->next_flags);
		if (ret) {
			list_for_each_entry(q, touched, touched) {
				if (q == p)
					break;
				if (q->pushed && spp_set_one(pp_pfn(q), q->hv_map, q->hv_flags))
					pr_warn_ratelimited("could not restore the map of pfn 0x%lx\n",
							    pp_pfn(q));
				q->pushed = false;
			}
			return ret;
		}
		p->pushed = true;
	}
	list_for_each_entry(p, touched, touched)
		if (!p->target)
			p->pushed = !spp_set_one(pp_pfn(p), p->next_map, p->next_flags);
	return 0;
}

static void hold_free(struct tessel_hold *h)
{
	list_del(&h->pp_node);
	list_del(&h->tf_node);
	hash_del(&h->va_node);
	mmdrop(h->mm);
	kfree(h);
}

/*
 * After a successful push: removes tf's busy holders, records what the hypervisor now has,
 * and frees the pages left without holders.
 */
static void settle(struct tessel_file *tf, struct list_head *touched)
{
	struct tessel_ppage *p, *q;
	struct tessel_hold *h, *g;

	list_for_each_entry_safe(h, g, &tf->holds, tf_node)
		if (h->busy)
			hold_free(h);
	list_for_each_entry_safe(p, q, touched, touched) {
		list_del(&p->touched);
		p->is_touched = false;
		if (p->pushed) {
			p->hv_map = p->next_map;
			p->hv_flags = p->next_flags;
		}
		if (p->fresh) {
			p->fresh = false;
			atomic64_inc(&stat_pinned);
		}
		if (!list_empty(&p->holds))
			continue;
		xa_erase(&ppages, pp_pfn(p));
		if (p->hv_map == TESSEL_SPP_ALL_WRITABLE) {
			unpin_user_page(p->page);
			atomic64_dec(&stat_pinned);
		} else {
			pr_warn_ratelimited("pfn 0x%lx stays protected (locked); keeping it pinned\n",
					    pp_pfn(p));
		}
		kfree(p);
	}
}

/* After a failed call: the records as they were; pages this call created go. */
static void unwind(struct tessel_file *tf, struct list_head *touched)
{
	struct tessel_ppage *p, *q;
	struct tessel_hold *h;

	list_for_each_entry(h, &tf->holds, tf_node)
		h->busy = false;
	list_for_each_entry_safe(p, q, touched, touched) {
		list_del(&p->touched);
		p->is_touched = false;
		if (p->fresh) { /* its pin is the call's, dropped by the caller */
			xa_erase(&ppages, pp_pfn(p));
			kfree(p);
		}
	}
}

/* The record of the page pinned at `page`, created (fresh) if there is none. */
static struct tessel_ppage *ppage_get(struct page *page, bool *created)
{
	struct tessel_ppage *p = xa_load(&ppages, page_to_pfn(page));

	*created = false;
	if (p)
		return p;
	p = kzalloc(sizeof(*p), GFP_KERNEL);
	if (!p)
		return ERR_PTR(-ENOMEM);
	p->page = page;
	INIT_LIST_HEAD(&p->holds);
	p->hv_map = TESSEL_SPP_ALL_WRITABLE;
	p->fresh = true;
	if (xa_insert(&ppages, page_to_pfn(page), p, GFP_KERNEL)) {
		kfree(p);
		return ERR_PTR(-ENOMEM);
	}
	*created = true;
	return p;
}

/* One page of a PROTECT_VA call. */
struct va_op {
	struct page *page;	 /* this call's pin of the page the address maps now */
	struct tessel_hold *old; /* the holder made through this address before, if any */
	struct tessel_hold *nh;	 /* a new holder, if there was none */
	bool pin_kept;		 /* a record this call created keeps the pin */
};

/*
 * PROTECT_VA: pin every page (that resolves each address now; nothing is protected yet if it
 * fails), plan the new holders, push the new maps (undone if the hypervisor refuses one), and
 * only then change the records: a failed call changes nothing. The pins of pages that already
 * had a record are dropped at the end: the record's pin holds them.
 */
static long ioctl_protect_va(struct tessel_file *tf, void __user *arg)
{
	struct tessel_va v;
	struct tessel_va __user *uv = arg;
	struct mm_struct *mm = current->mm;
	struct tessel_ppage **pp = NULL;
	struct va_op *ops = NULL;
	LIST_HEAD(touched);
	unsigned long vpn0;
	u32 *maps;
	long ret;
	u32 i, pinned = 0;

	if (copy_from_user(&v, uv, sizeof(v)))
		return -EFAULT;
	ret = check_va(&v, TESSEL_SUBPAGE_TRACK);
	if (ret)
		return ret;
	maps = copy_maps(uv->access_map, v.npages);
	if (IS_ERR(maps))
		return PTR_ERR(maps);
	ops = kvcalloc(v.npages, sizeof(*ops), GFP_KERNEL);
	pp = kvcalloc(v.npages, sizeof(*pp), GFP_KERNEL);
	if (!ops || !pp) {
		ret = -ENOMEM;
		goto out_free;
	}
	vpn0 = (unsigned long)(v.addr >> PAGE_SHIFT);
	for (; pinned < v.npages; pinned++)
		if (pin_user_pages_fast((vpn0 + pinned) << PAGE_SHIFT, 1, FOLL_WRITE | FOLL_LONGTERM,
					&ops[pinned].page) != 1) {
			ret = -EFAULT;
			goto out_unpin;
		}

	mutex_lock(&prot_lock);
	mark_dead(tf, &touched);
	for (i = 0; i < v.npages; i++) {
		struct va_op *op = &ops[i];

		pp[i] = ppage_get(op->page, &op->pin_kept);
		if (IS_ERR(pp[i])) {
			ret = PTR_ERR(pp[i]);
			goto undo;
		}
		touch(&touched, pp[i], true);
		op->old = hold_find(tf, mm, vpn0 + i);
		if (op->old) {
			op->old->busy = true;
			touch(&touched, op->old->pp, false); /* the page it may leave */
			continue;
		}
		op->nh = kzalloc(sizeof(*op->nh), GFP_KERNEL);
		if (!op->nh) {
			ret = -ENOMEM;
			goto undo;
		}
	}
	recompute(&touched, pp, maps, v.npages, v.flags);
	ret = push_maps(&touched);
	if (ret)
		goto undo;

	for (i = 0; i < v.npages; i++) {
		struct va_op *op = &ops[i];
		struct tessel_hold *h = op->old;

		if (!h) {
			h = op->nh;
			op->nh = NULL;
			h->tf = tf;
			h->mm = mm;
			mmgrab(mm);
			h->vpn = vpn0 + i;
			hash_add(hold_by_va, &h->va_node, va_key(tf, mm, h->vpn));
			list_add_tail(&h->tf_node, &tf->holds);
		}
		if (h->pp != pp[i]) { /* new, or stale: the address maps another page now */
			if (h->pp)
				list_del(&h->pp_node);
			h->pp = pp[i];
			list_add_tail(&h->pp_node, &pp[i]->holds);
		}
		h->map = maps[i];
		h->flags = v.flags;
		h->busy = false;
		if (!op->pin_kept)
			unpin_user_page(op->page);
	}
	settle(tf, &touched);
	mutex_unlock(&prot_lock);
	ret = 0;
	goto out_free;

undo:
	unwind(tf, &touched);
	mutex_unlock(&prot_lock);
	for (i = 0; i < v.npages; i++)
		kfree(ops[i].nh);
out_unpin:
	while (pinned-- > 0)
		unpin_user_page(ops[pinned].page);
out_free:
	kvfree(pp);
	kvfree(ops);
	kfree(maps);
	return ret;
}

/*
 * UNPROTECT_VA: removes the holders this file made through these addresses in this address
 * space, whatever page each pins now (the address may map another page since). A page
 * another holder still protects keeps the intersection of the remaining maps.
 */
static long ioctl_unprotect_va(struct tessel_file *tf, void __user *arg)
{
	struct tessel_va v;
	LIST_HEAD(touched);
	unsigned long vpn0;
	long ret;
	u32 i;

	if (copy_from_user(&v, arg, sizeof(v)))
		return -EFAULT;
	ret = check_va(&v, 0);
	if (ret)
		return ret;
	vpn0 = (unsigned long)(v.addr >> PAGE_SHIFT);
	mutex_lock(&prot_lock);
	mark_dead(tf, &touched);
	for (i = 0; i < v.npages; i++) {
		struct tessel_hold *h = hold_find(tf, current->mm, vpn0 + i);

		if (!h) {
			ret = -ENOENT;
			goto undo;
		}
		h->busy = true;
		touch(&touched, h->pp, true);
	}
	recompute(&touched, NULL, NULL, 0, 0);
	ret = push_maps(&touched);
	if (ret)
		goto undo;
	settle(tf, &touched);
	mutex_unlock(&prot_lock);
	return 0;
undo:
	unwind(tf, &touched);
	mutex_unlock(&prot_lock);
	return ret;
}

static long ioctl_info(void __user *arg)
{
	struct tessel_info info = {
		.version = tessel_version,
		.features = tessel_features,
		.max_pages = tessel_max_pages,
		.vector = ring ? ring_vector : 0,
		.ring_capacity = ring ? ring_capacity : 0,
	};

	return copy_to_user(arg, &info, sizeof(info)) ? -EFAULT : 0;
}

static long tessel_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct tessel_file *tf = file->private_data;
	void __user *uarg = (void __user *)arg;

	switch (cmd) {
	case TESSEL_IOC_INFO:
		return ioctl_info(uarg);
	case TESSEL_IOC_GET_SUBPAGES:
		return ioctl_subpages(uarg, false);
	case TESSEL_IOC_SET_SUBPAGES:
		return ioctl_subpages(uarg, true);
	case TESSEL_IOC_LOCK:
		return ioctl_lock(uarg);
	case TESSEL_IOC_PROTECT_VA:
		return ioctl_protect_va(tf, uarg);
	case TESSEL_IOC_UNPROTECT_VA:
		return ioctl_unprotect_va(tf, uarg);
	case TESSEL_IOC_NOP:
		return hc_status(tessel_hc0(HC_NOP));
	default:
		return -ENOTTY;
	}
}

static int tessel_open(struct inode *inode, struct file *file)
{
	struct tessel_file *tf;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	tf = kzalloc(sizeof(*tf), GFP_KERNEL);
	if (!tf)
		return -ENOMEM;
	INIT_LIST_HEAD(&tf->holds);
	file->private_data = tf;
	atomic_inc(&open_files);
	return stream_open(inode, file);
}

/*
 * Close: every holder of this file goes; its pages become writable again and are unpinned
 * unless another holder still protects them. A page whose protection cannot be removed
 * (someone LOCKed it) stays pinned for good (push_maps()).
 */
static int tessel_release(struct inode *inode, struct file *file)
{
	struct tessel_file *tf = file->private_data;
	struct tessel_hold *h;
	LIST_HEAD(touched);

	mutex_lock(&prot_lock);
	list_for_each_entry(h, &tf->holds, tf_node) {
		h->busy = true;
		touch(&touched, h->pp, false);
	}
	recompute(&touched, NULL, NULL, 0, 0);
	push_maps(&touched); /* nothing is a target: it cannot fail */
	settle(tf, &touched);
	mutex_unlock(&prot_lock);
	kfree(tf);
	atomic_dec(&open_files);
	return 0;
}

/* ---- events ---- */

/*
 * The kernel guard (tessel_guard.ko, tessel_kapi.h) sees every entry once, before any reader
 * consumes it: from the ring's interrupt (on the vCPU that caused the event, so the guard can
 * name the interrupted process) and, for entries the interrupt has not reached yet, from
 * read() before it hands entries out. feed_next is the next entry to show it; it never falls
 * behind tail. With the guard attached and no /dev/tessel file open, the entries are consumed
 * here once shown (a work item), so the ring cannot fill up with nobody reading it.
 */
static const struct tessel_guard_ops __rcu *guard_ops;
static DEFINE_SPINLOCK(feed_lock);
static u32 feed_next;
static void guard_consume(struct work_struct *w);
static DECLARE_WORK(guard_consume_work, guard_consume);

/* Returns how far the guard has seen (the ring's head when no guard is attached). */
static u32 guard_feed(bool from_irq)
{
	const struct tessel_guard_ops *ops;
	unsigned long flags;
	u32 head = READ_ONCE(ring->head);

	rcu_read_lock();
	ops = rcu_dereference(guard_ops);
	if (ops) {
		spin_lock_irqsave(&feed_lock, flags);
		head = READ_ONCE(ring->head);
		smp_rmb(); /* entries are written before head */
		if (head - feed_next > ring_capacity) /* never: entries are not overwritten */
			feed_next = head - ring_capacity;
		for (; feed_next != head; feed_next++)
			ops->event((const struct tessel_event_entry *)&ring->entries[feed_next % ring_capacity],
				   from_irq);
		spin_unlock_irqrestore(&feed_lock, flags);
		if (atomic_read(&open_files) == 0)
			schedule_work(&guard_consume_work);
	}
	rcu_read_unlock();
	return head;
}

static void guard_consume(struct work_struct *w)
{
	unsigned long flags;
	u32 upto;

	mutex_lock(&ring_lock);
	if (ring && atomic_read(&open_files) == 0) {
		spin_lock_irqsave(&feed_lock, flags);
		upto = feed_next;
		spin_unlock_irqrestore(&feed_lock, flags);
		smp_mb(); /* entries are read before the slots are handed back */
		WRITE_ONCE(ring->tail, upto);
	}
	mutex_unlock(&ring_lock);
}

int tessel_guard_attach(const struct tessel_guard_ops *ops)
{
	unsigned long flags;

	if (!ring)
		return -ENODEV;
	spin_lock_irqsave(&feed_lock, flags);
	if (rcu_access_pointer(guard_ops)) {
		spin_unlock_irqrestore(&feed_lock, flags);
		return -EBUSY;
	}
	feed_next = READ_ONCE(ring->head); /* what happened before the guard is not its business */
	rcu_assign_pointer(guard_ops, ops);
	spin_unlock_irqrestore(&feed_lock, flags);
	return 0;
}
EXPORT_SYMBOL_GPL(tessel_guard_attach);

void tessel_guard_detach(void)
{
	RCU_INIT_POINTER(guard_ops, NULL);
	synchronize_rcu();
	flush_work(&guard_consume_work);
}
EXPORT_SYMBOL_GPL(tessel_guard_detach);

/* For the guard's hypercall buffers: the features HC_QUERY reported. */
u32 tessel_guard_features(void)
{
	return tessel_features;
}
EXPORT_SYMBOL_GPL(tessel_guard_features);

static bool ring_pending(void)
{
	return ring && READ_ONCE(ring->head) != READ_ONCE(ring->tail);
}

static ssize_t tessel_read(struct file *file, char __user *buf, size_t len, loff_t *off)
{
	const size_t esz = sizeof(struct tessel_event_entry);
	u32 head, tail, n, i;

	if (len < esz)
		return -EINVAL;
	if (!ring)
		return -ENODEV;
	for (;;) {
		if (mutex_lock_interruptible(&ring_lock))
			return -ERESTARTSYS;
		if (ring_pending())
			break;
		mutex_unlock(&ring_lock);
		if (file->f_flags & O_NONBLOCK)
			return -EAGAIN;
		if (wait_event_interruptible(ring_wait, ring_pending()))
			return -ERESTARTSYS;
	}
	head = guard_feed(false); /* the guard sees each entry before it is consumed */
	tail = ring->tail;
	smp_rmb(); /* entries are written before head */
	n = min3(head - tail, ring_capacity, (u32)(len / esz));
	for (i = 0; i < n; i++)
		if (copy_to_user(buf + i * esz, &ring->entries[(tail + i) % ring_capacity], esz))
			break;
	smp_mb(); /* entries are read before the slots are handed back */
	WRITE_ONCE(ring->tail, tail + i);
	mutex_unlock(&ring_lock);
	atomic64_add(i, &stat_events_read);
	return i ? (ssize_t)(i * esz) : -EFAULT;
}

static __poll_t tessel_poll(struct file *file, poll_table *wait)
{
	poll_wait(file, &ring_wait, wait);
	return ring_pending() ? EPOLLIN | EPOLLRDNORM : 0;
}

/* Runs in interrupt context on the vCPU that caused an event. */
static void tessel_notify(void)
{
	atomic64_inc(&stat_interrupts);
	if (ring)
		guard_feed(true);
	wake_up_interruptible(&ring_wait);
}

static const struct file_operations tessel_fops = {
	.owner = THIS_MODULE,
	.open = tessel_open,
	.release = tessel_release,
	.read = tessel_read,
	.poll = tessel_poll,
	.unlocked_ioctl = tessel_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = no_llseek,
};

/* ---- sysfs ---- */

static ssize_t version_show(struct device *d, struct device_attribute *a, char *buf)
{
	return sysfs_emit(buf, "%u.%u\n", TESSEL_ABI_MAJOR(tessel_version), TESSEL_ABI_MINOR(tessel_version));
}

static ssize_t features_show(struct device *d, struct device_attribute *a, char *buf)
{
	return sysfs_emit(buf, "0x%x\n", tessel_features);
}

static ssize_t max_pages_show(struct device *d, struct device_attribute *a, char *buf)
{
	return sysfs_emit(buf, "%u\n", tessel_max_pages);
}

static ssize_t mode_show(struct device *d, struct device_attribute *a, char *buf)
{
	return sysfs_emit(buf, "%s\n", (tessel_features & TESSEL_F_SPP_HW) ? "hardware" : "software");
}

static ssize_t vector_show(struct device *d, struct device_attribute *a, char *buf)
{
	return sysfs_emit(buf, "0x%x\n", ring ? ring_vector : 0);
}

static DEVICE_ATTR_ADMIN_RO(version);
static DEVICE_ATTR_ADMIN_RO(features);
static DEVICE_ATTR_ADMIN_RO(max_pages);
static DEVICE_ATTR_ADMIN_RO(mode);
static DEVICE_ATTR_ADMIN_RO(vector);

static struct attribute *tessel_attrs[] = {
	&dev_attr_version.attr, &dev_attr_features.attr, &dev_attr_max_pages.attr,
	&dev_attr_mode.attr,	&dev_attr_vector.attr,	 NULL,
};

static const struct attribute_group tessel_group = {
	.attrs = tessel_attrs,
};

/* stats/<counter>: the HC_STATS record, read from the hypervisor on each read. */
static ssize_t hv_stat_show(struct device *d, struct device_attribute *a, char *buf)
{
	unsigned long idx = (unsigned long)container_of(a, struct dev_ext_attribute, attr)->var;
	u64 *rec;
	u64 full = 0;
	ssize_t ret;

	rec = kcalloc(TESSEL_STAT_COUNT_1_2, sizeof(u64), GFP_KERNEL);
	if (!rec)
		return -ENOMEM;
	ret = hc_status(tessel_stats(virt_to_phys(rec), TESSEL_STAT_COUNT_1_2 * sizeof(u64), &full));
	if (!ret && full < (idx + 1) * sizeof(u64))
		ret = -ENODATA; /* a counter of a later ABI than the hypervisor's */
	if (!ret)
		ret = sysfs_emit(buf, "%llu\n", rec[idx]);
	kfree(rec);
	return ret;
}

#define HV_STAT(i, nm)                                                                        \
	{                                                                                     \
		.attr = { .attr = { .name = nm, .mode = 0400 }, .show = hv_stat_show },       \
		.var = (void *)(unsigned long)(i),                                            \
	}
static struct dev_ext_attribute hv_stats[TESSEL_STAT_COUNT_1_2] = {
	HV_STAT(TESSEL_STAT_EXITS, "exits"),
	HV_STAT(TESSEL_STAT_HYPERCALLS, "hypercalls"),
	HV_STAT(TESSEL_STAT_SPP_DENIED, "spp_denied"),
	HV_STAT(TESSEL_STAT_SPP_TRACKED, "spp_tracked"),
	HV_STAT(TESSEL_STAT_SPP_MISSES, "spp_misses"),
	HV_STAT(TESSEL_STAT_SPP_MISCONFIGS, "spp_misconfigs"),
	HV_STAT(TESSEL_STAT_EPT_VIOLATIONS, "ept_violations"),
	HV_STAT(TESSEL_STAT_EMULATED_WRITES, "emulated_writes"),
	HV_STAT(TESSEL_STAT_PAGES_PROTECTED, "pages_protected"),
	HV_STAT(TESSEL_STAT_SPPT_PAGES, "sppt_pages"),
	HV_STAT(TESSEL_STAT_EVENTS_DROPPED, "events_dropped"),
	HV_STAT(TESSEL_STAT_DMA_FAULTS, "dma_faults"),   /* ABI 1.1 */
	HV_STAT(TESSEL_STAT_PIN_DENIED, "pin_denied"),   /* ABI 1.2 */
};

/* The driver's own counters. */
static ssize_t interrupts_show(struct device *d, struct device_attribute *a, char *buf)
{
	return sysfs_emit(buf, "%lld\n", (long long)atomic64_read(&stat_interrupts));
}

static ssize_t events_read_show(struct device *d, struct device_attribute *a, char *buf)
{
	return sysfs_emit(buf, "%lld\n", (long long)atomic64_read(&stat_events_read));
}

static ssize_t pinned_pages_show(struct device *d, struct device_attribute *a, char *buf)
{
	return sysfs_emit(buf, "%lld\n", (long long)atomic64_read(&stat_pinned));
}

static ssize_t ring_dropped_show(struct device *d, struct device_attribute *a, char *buf)
{
	return sysfs_emit(buf, "%llu\n", ring ? (unsigned long long)READ_ONCE(ring->dropped) : 0ull);
}

static DEVICE_ATTR_ADMIN_RO(interrupts);
static DEVICE_ATTR_ADMIN_RO(events_read);
static DEVICE_ATTR_ADMIN_RO(pinned_pages);
static DEVICE_ATTR_ADMIN_RO(ring_dropped);

static struct attribute *stats_attrs[] = {
	&hv_stats[0].attr.attr, &hv_stats[1].attr.attr, &hv_stats[2].attr.attr,
	&hv_stats[3].attr.attr, &hv_stats[4].attr.attr, &hv_stats[5].attr.attr,
	&hv_stats[6].attr.attr, &hv_stats[7].attr.attr, &hv_stats[8].attr.attr,
	&hv_stats[9].attr.attr, &hv_stats[10].attr.attr, &hv_stats[11].attr.attr,
	&hv_stats[12].attr.attr, &dev_attr_interrupts.attr,
	&dev_attr_events_read.attr, &dev_attr_pinned_pages.attr, &dev_attr_ring_dropped.attr,
	NULL,
};

static const struct attribute_group stats_group = {
	.name = "stats",
	.attrs = stats_attrs,
};

static const struct attribute_group *tessel_groups[] = { &tessel_group, &stats_group, NULL };

static struct miscdevice tessel_dev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "tessel",
	.fops = &tessel_fops,
	.mode = 0600,
	.groups = tessel_groups,
};

/* ---- load / unload ---- */

static int ring_setup(void)
{
	long ret;

	ring_pages = alloc_pages(GFP_KERNEL | __GFP_ZERO, TESSEL_RING_ORDER);
	if (!ring_pages)
		return -ENOMEM;
	ring = page_address(ring_pages);
	ring_vector = POSTED_INTR_WAKEUP_VECTOR;
	kvm_set_posted_intr_wakeup_handler(tessel_notify);
	ret = hc_status(tessel_events_setup(page_to_phys(ring_pages), TESSEL_RING_PAGES, ring_vector));
	if (ret) {
		kvm_set_posted_intr_wakeup_handler(NULL);
		ring = NULL;
		__free_pages(ring_pages, TESSEL_RING_ORDER);
		return ret;
	}
	ring_capacity = READ_ONCE(ring->capacity);
	if (ring_capacity != TESSEL_RING_CAPACITY(TESSEL_RING_PAGES))
		pr_warn("ring capacity %u, expected %u\n", ring_capacity, TESSEL_RING_CAPACITY(TESSEL_RING_PAGES));
	return 0;
}

static void ring_teardown(void)
{
	if (!ring)
		return;
	tessel_events_setup(0, 0, 0);
	kvm_set_posted_intr_wakeup_handler(NULL); /* waits for running handlers (RCU) */
	ring = NULL;
	__free_pages(ring_pages, TESSEL_RING_ORDER);
}

static void describe_absence(void)
{
	struct tessel_cpuid s;
	char sig[13];

	if (!(tessel_cpuid(1, 0).ecx & CPUID1_ECX_HYPERVISOR_BIT)) {
		pr_err("the Tessel hypervisor is not present (no hypervisor: CPUID.1:ECX[31] = 0); not loading\n");
		return;
	}
	s = tessel_cpuid(TESSEL_CPUID_SIGNATURE, 0);
	memcpy(sig, &s.ebx, 4);
	memcpy(sig + 4, &s.ecx, 4);
	memcpy(sig + 8, &s.edx, 4);
	sig[12] = 0;
	pr_err("the Tessel hypervisor is not present (CPUID 0x40000000 signature \"%s\", not \"%s\"); not loading\n",
	       sig, TESSEL_SIGNATURE);
}

static int __init tessel_init(void)
{
	u64 max_pages = 0;
	s64 st;
	int ret;

	if (!tessel_present()) {
		describe_absence();
		return -ENODEV;
	}
	st = tessel_query(&tessel_version, &tessel_features, &max_pages);
	if (st) {
		pr_err("HC_QUERY failed (%lld); not loading\n", st);
		return -EIO;
	}
	if (TESSEL_ABI_MAJOR(tessel_version) != TESSEL_ABI_MAJOR(TESSEL_ABI_VERSION)) {
		pr_err("hypervisor ABI %u.%u, this driver speaks %u.x; not loading\n",
		       TESSEL_ABI_MAJOR(tessel_version), TESSEL_ABI_MINOR(tessel_version),
		       TESSEL_ABI_MAJOR(TESSEL_ABI_VERSION));
		return -ENODEV;
	}
	if (!(tessel_features & (TESSEL_F_SPP_HW | TESSEL_F_SPP_SW))) {
		pr_err("the hypervisor offers no sub-page protection; not loading\n");
		return -ENODEV;
	}
	tessel_max_pages = (u32)min_t(u64, max_pages, TESSEL_DRV_MAX_PAGES);
	set_one_buf = kmalloc(sizeof(*set_one_buf), GFP_KERNEL);
	if (!set_one_buf)
		return -ENOMEM;
	if (tessel_features & TESSEL_F_EVENTS) {
		ret = ring_setup();
		if (ret) {
			pr_err("HC_EVENTS_SETUP failed (%d); not loading\n", ret);
			kfree(set_one_buf);
			return ret;
		}
	}
	ret = misc_register(&tessel_dev);
	if (ret) {
		ring_teardown();
		kfree(set_one_buf);
		return ret;
	}
	pr_info("Tessel ABI %u.%u, %s sub-page protection, %u pages per call, events on vector 0x%x\n",
		TESSEL_ABI_MAJOR(tessel_version), TESSEL_ABI_MINOR(tessel_version),
		(tessel_features & TESSEL_F_SPP_HW) ? "hardware" : "software", tessel_max_pages,
		ring ? ring_vector : 0);
	return 0;
}

static void __exit tessel_exit(void)
{
	misc_deregister(&tessel_dev);
	ring_teardown();
	kfree(set_one_buf);
}

module_init(tessel_init);
module_exit(tessel_exit);
MODULE_DESCRIPTION("Tessel hypervisor guest driver: sub-page write protection for user space");
MODULE_LICENSE("GPL");
