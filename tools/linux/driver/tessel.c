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
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/poll.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/wait.h>
#include <linux/xarray.h>
#include <asm/io.h>
#include <asm/irq.h>
#include <asm/irq_vectors.h>

#include "tessel.h"
#include "tessel_ioctl.h"

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

/* A page of a caller's memory that this file protects (PROTECT_VA). */
struct tessel_pin {
	struct page *page;
	u32 map;
	u32 flags;
};

/* Per open file: the pages it protects, keyed by user virtual page number. */
struct tessel_file {
	struct mutex lock;
	struct xarray pins;
};

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
		if (ring_overlaps(hdr.gfn_base, hdr.npages))
			return -EBUSY;
		maps = copy_maps(uhdr->access_map, hdr.npages);
		if (IS_ERR(maps))
			return PTR_ERR(maps);
		ret = hc_status(tessel_spp_set(hdr.gfn_base, hdr.npages, virt_to_phys(maps), hdr.flags));
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

/* Drops a pin: the page's protection must already be gone. */
static void pin_release(struct tessel_pin *p)
{
	unpin_user_page(p->page);
	atomic64_dec(&stat_pinned);
	kfree(p);
}

/*
 * Pins the user page at vpn for a new record (map: unprotected) and reserves its slot in
 * tf->pins, so that storing the record after the hypercalls cannot fail. All or nothing.
 */
static struct tessel_pin *pin_new(struct tessel_file *tf, unsigned long vpn)
{
	struct tessel_pin *p = kzalloc(sizeof(*p), GFP_KERNEL);

	if (!p)
		return ERR_PTR(-ENOMEM);
	if (pin_user_pages_fast(vpn << PAGE_SHIFT, 1, FOLL_WRITE | FOLL_LONGTERM, &p->page) != 1) {
		kfree(p);
		return ERR_PTR(-EFAULT);
	}
	atomic64_inc(&stat_pinned);
	p->map = TESSEL_SPP_ALL_WRITABLE;
	if (xa_reserve(&tf->pins, vpn, GFP_KERNEL)) {
		pin_release(p);
		return ERR_PTR(-ENOMEM);
	}
	return p;
}

/* Undo after a failed call: pins[0..n) get back the map and flags their records still hold. */
static void restore_maps(struct tessel_pin **pins, u32 n)
{
	while (n-- > 0)
		if (spp_set_one(page_to_pfn(pins[n]->page), pins[n]->map, pins[n]->flags))
			pr_warn_ratelimited("could not restore the map of pfn 0x%lx\n",
					    page_to_pfn(pins[n]->page));
}

/*
 * PROTECT_VA: pin every page first (nothing is protected yet if that fails), then set each
 * page's map; if the hypervisor refuses one, the pages already set get their previous maps
 * back (the records are only updated once every page is set) and the new pins are dropped,
 * so a failed call changes nothing.
 */
static long ioctl_protect_va(struct tessel_file *tf, void __user *arg)
{
	struct tessel_va v;
	struct tessel_va __user *uv = arg;
	struct tessel_pin **pins;
	bool *fresh;
	u32 *maps;
	long ret;
	u32 i, done = 0;

	if (copy_from_user(&v, uv, sizeof(v)))
		return -EFAULT;
	ret = check_va(&v, TESSEL_SUBPAGE_TRACK);
	if (ret)
		return ret;
	maps = copy_maps(uv->access_map, v.npages);
	if (IS_ERR(maps))
		return PTR_ERR(maps);
	pins = kcalloc(v.npages, sizeof(*pins), GFP_KERNEL);
	fresh = kcalloc(v.npages, sizeof(*fresh), GFP_KERNEL);
	if (!pins || !fresh) {
		ret = -ENOMEM;
		goto out_free;
	}

	mutex_lock(&tf->lock);
	for (i = 0; i < v.npages; i++) {
		unsigned long vpn = (unsigned long)(v.addr >> PAGE_SHIFT) + i;
		struct tessel_pin *p = xa_load(&tf->pins, vpn);

		if (!p) {
			p = pin_new(tf, vpn);
			if (IS_ERR(p)) {
				ret = PTR_ERR(p);
				goto undo_pins;
			}
			fresh[i] = true;
		}
		pins[i] = p;
	}
	/* The same page twice in one call (aliases) would make undo ambiguous. */
	for (done = 1; done < v.npages; done++) {
		u32 j;

		for (j = 0; j < done; j++)
			if (pins[j]->page == pins[done]->page) {
				ret = -EINVAL;
				goto undo_pins; /* with i == v.npages: every fresh pin goes */
			}
	}
	for (done = 0; done < v.npages; done++) {
		ret = spp_set_one(page_to_pfn(pins[done]->page), maps[done], v.flags);
		if (ret) {
			restore_maps(pins, done);
			i = v.npages;
			goto undo_pins;
		}
	}
	for (i = 0; i < v.npages; i++) {
		unsigned long vpn = (unsigned long)(v.addr >> PAGE_SHIFT) + i;

		pins[i]->map = maps[i];
		pins[i]->flags = v.flags;
		if (fresh[i])
			xa_store(&tf->pins, vpn, pins[i], GFP_KERNEL); /* into the reserved slot */
	}
	ret = 0;
	goto out_unlock;

undo_pins:
	while (i-- > 0)
		if (fresh[i]) {
			xa_release(&tf->pins, (unsigned long)(v.addr >> PAGE_SHIFT) + i);
			pin_release(pins[i]);
		}
out_unlock:
	mutex_unlock(&tf->lock);
out_free:
	kfree(fresh);
	kfree(pins);
	kfree(maps);
	return ret;
}

static long ioctl_unprotect_va(struct tessel_file *tf, void __user *arg)
{
	struct tessel_va v;
	struct tessel_pin **pins;
	u32 i, done;
	long ret;

	if (copy_from_user(&v, arg, sizeof(v)))
		return -EFAULT;
	ret = check_va(&v, 0);
	if (ret)
		return ret;
	pins = kcalloc(v.npages, sizeof(*pins), GFP_KERNEL);
	if (!pins)
		return -ENOMEM;
	mutex_lock(&tf->lock);
	for (i = 0; i < v.npages; i++) {
		pins[i] = xa_load(&tf->pins, (unsigned long)(v.addr >> PAGE_SHIFT) + i);
		if (!pins[i]) {
			ret = -ENOENT;
			goto out;
		}
	}
	for (done = 0; done < v.npages; done++) {
		ret = spp_set_one(page_to_pfn(pins[done]->page), TESSEL_SPP_ALL_WRITABLE, 0);
		if (ret) {
			restore_maps(pins, done);
			goto out;
		}
	}
	for (i = 0; i < v.npages; i++) {
		xa_erase(&tf->pins, (unsigned long)(v.addr >> PAGE_SHIFT) + i);
		pin_release(pins[i]);
	}
	ret = 0;
out:
	mutex_unlock(&tf->lock);
	kfree(pins);
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
	mutex_init(&tf->lock);
	xa_init(&tf->pins);
	file->private_data = tf;
	return stream_open(inode, file);
}

/*
 * Close: every page this file protects becomes writable again and is unpinned. A page whose
 * protection cannot be removed (someone LOCKed it) stays pinned for good: freed, it would
 * come back to the kernel with write-protected bytes.
 */
static int tessel_release(struct inode *inode, struct file *file)
{
	struct tessel_file *tf = file->private_data;
	struct tessel_pin *p;
	unsigned long vpn;

	xa_for_each(&tf->pins, vpn, p) {
		if (spp_set_one(page_to_pfn(p->page), TESSEL_SPP_ALL_WRITABLE, 0)) {
			pr_warn("pfn 0x%lx stays protected (locked); keeping it pinned\n",
				page_to_pfn(p->page));
			kfree(p);
			continue;
		}
		pin_release(p);
	}
	xa_destroy(&tf->pins);
	kfree(tf);
	return 0;
}

/* ---- events ---- */

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
	head = READ_ONCE(ring->head);
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

	rec = kcalloc(TESSEL_STAT_COUNT_1_0, sizeof(u64), GFP_KERNEL);
	if (!rec)
		return -ENOMEM;
	ret = hc_status(tessel_stats(virt_to_phys(rec), TESSEL_STAT_COUNT_1_0 * sizeof(u64), &full));
	if (!ret && full < (idx + 1) * sizeof(u64))
		ret = -EIO;
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
static struct dev_ext_attribute hv_stats[TESSEL_STAT_COUNT_1_0] = {
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
	&hv_stats[9].attr.attr, &hv_stats[10].attr.attr, &dev_attr_interrupts.attr,
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
