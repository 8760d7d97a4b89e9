// SPDX-License-Identifier: GPL-2.0
/*
 * tessel_guard.ko: the kernel guard. Linux write-protects its own critical data through the
 * Tessel hypervisor (ABI 1.2 to 1.4, docs/ABI.md) and pins its control registers, then locks it all,
 * so that even code running in the kernel later (a rootkit module) cannot undo it:
 *
 *  - modprobe_path, core_pattern, poweroff_cmd, selinux_state (if present), sys_call_table,
 *    idt_table and the symbols of guard_symbols= (resolved through kallsyms), to the byte
 *    where the hypervisor offers it (ABI 1.4 HC_SPP_PROTECT_BYTES, precise=1), else as the
 *    128-byte sub-pages covering them; the per-CPU GDTs with guard_gdt=1;
 *  - whole pages: the kernel's read-only data (__start_rodata .. __end_rodata, which holds
 *    the system-call table, the __ro_after_init data and with it the LSM hook lists), and the
 *    kernel text with guard_text=1;
 *  - CR0.WP and CR4.SMEP/SMAP/UMIP (those set now) through HC_PIN_CR, and the system-call
 *    entry MSRs and EFER.NXE through HC_PIN_MSR;
 *  - IDTR and GDTR through HC_PIN_DT (ABI 1.3) where the hypervisor offers it (pin_dt=1):
 *    a LIDT/LGDT of other tables is refused;
 *  - HC_SPP_LOCK on every page it protected.
 *
 * Writes the hypervisor refused, and refused control-register/MSR writes, come back as
 * entries of tessel.ko's event ring (tessel_kapi.h); the guard turns them into rate-limited
 * kernel log lines naming the symbol and offset hit, the writing instruction, the CPU and the
 * process:
 *   tessel: denied write to modprobe_path+0x0 by ffffffffc0a1b0c7 (evil_fn+0x17 [evil]) on cpu 1, comm insmod
 *   tessel: denied CR0 write clearing WP (value 0x80040033) by ... on cpu 0, comm insmod
 * /dev/tessel read() still returns every entry (tessel.ko).
 *
 * A write to a guarded sub-page is refused whoever makes it, the kernel's own legitimate
 * writes included (a sysctl write to core_pattern): deny and report is the default;
 * allow_write= names the default objects to leave writable. Bytes of other sub-pages of the
 * same pages stay writable (hardware SPP, or the hypervisor's software emulation), and so do
 * the bytes of other symbols inside a guarded sub-page when the object is guarded to the
 * byte ("byte-precise, neighbours writable: ..." at load; the hypervisor completes each such
 * write). Without byte precision they are frozen too ("also covers: ..."), so an
 * administrator sees what the layout of this kernel costs.
 * tools/linux/README.md, "The kernel guard", says what is guarded and why, and what is not.
 *
 * Once loaded the guard cannot be unloaded (the protection is locked until platform reset).
 */
#define pr_fmt(fmt) "tessel: " fmt

#include <linux/cpuhotplug.h>
#include <linux/cpumask.h>
#include <linux/kallsyms.h>
#include <linux/kprobes.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/percpu.h>
#include <linux/ratelimit.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/string.h>
#include <linux/vmalloc.h>
#include <linux/version.h>
#include <asm/current.h>
#include <asm/desc.h>
#include <asm/io.h>
#include <asm/msr-index.h>
#include <asm/pgtable_types.h>
#include <asm/set_memory.h>
#include <asm/smp.h>
#include <asm/special_insns.h>
#include <asm/tlbflush.h>

#include "tessel.h"
#include "tessel_kapi.h"

static char *guard_symbols;
module_param(guard_symbols, charp, 0400);
MODULE_PARM_DESC(guard_symbols, "more objects to guard: comma-separated symbol or symbol+length (bytes; default: the distance to the next symbol)");
static char *allow_write;
module_param(allow_write, charp, 0400);
MODULE_PARM_DESC(allow_write, "default objects left writable, comma-separated (modprobe_path, core_pattern, poweroff_cmd, selinux_state, aa_g_profile_mode, aa_g_lock_policy, aa_g_audit, kernel_locked_down, ptrace_scope, sys_call_table, ia32_sys_call_table, x32_sys_call_table, idt_table, rodata)");
static bool guard_rodata = true;
module_param(guard_rodata, bool, 0400);
MODULE_PARM_DESC(guard_rodata, "write-protect the kernel's read-only data whole (default 1)");
static bool guard_text;
module_param(guard_text, bool, 0400);
MODULE_PARM_DESC(guard_text, "write-protect the kernel text whole (default 0: breaks static keys, ftrace, kprobes, live patching)");
static bool guard_gdt;
module_param(guard_gdt, bool, 0400);
MODULE_PARM_DESC(guard_gdt, "guard each CPU's GDT (default 0: every context switch rewrites its TLS descriptors)");
static bool pin_cr = true;
module_param(pin_cr, bool, 0400);
MODULE_PARM_DESC(pin_cr, "pin CR0.WP and CR4.SMEP/SMAP/UMIP (default 1)");
static bool pin_dt = true;
module_param(pin_dt, bool, 0400);
MODULE_PARM_DESC(pin_dt, "pin IDTR and GDTR where the hypervisor offers it (ABI 1.3, default 1)");
static bool pin_msrs = true;
module_param(pin_msrs, bool, 0400);
MODULE_PARM_DESC(pin_msrs, "pin the system-call entry MSRs and EFER.NXE (default 1)");
static bool guard_precise = true;
module_param_named(precise, guard_precise, bool, 0400);
MODULE_PARM_DESC(precise, "guard objects to the byte where the hypervisor offers it (ABI 1.4): the rest of their 128-byte sub-pages stays writable (default 1)");
static bool lock = true;
module_param(lock, bool, 0400);
MODULE_PARM_DESC(lock, "HC_SPP_LOCK the protected pages (default 1)");

/* Refusals seen (the log is rate-limited; these are not). */
static atomic_t guard_denied_writes = ATOMIC_INIT(0);
static atomic_t denied_pins = ATOMIC_INIT(0);
static int denied_show(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%d\n", atomic_read(kp->arg));
}
static const struct kernel_param_ops denied_ops = { .get = denied_show };
module_param_cb(denied_writes, &denied_ops, &guard_denied_writes, 0444);
module_param_cb(denied_pins, &denied_ops, &denied_pins, 0444);
/* guard_gdt=1: Linux's own unchanged TLS-slot rewrites refused (not logged; gdt_tls_own()). */
static atomic_t gdt_tls_rewrites = ATOMIC_INIT(0);
module_param_cb(gdt_tls_rewrites, &denied_ops, &gdt_tls_rewrites, 0444);

/* ---- kallsyms ---- */

/*
 * kallsyms_lookup_name() is not exported since Linux 5.7. A kprobe on it resolves its address
 * through kallsyms (register_kprobe() by symbol_name); KPROBE_FLAG_DISABLED keeps the probe
 * from being armed, so no kernel text is patched.
 */
static unsigned long (*lookup_name)(const char *name);

static int kallsyms_init(void)
{
	struct kprobe kp = { .symbol_name = "kallsyms_lookup_name", .flags = KPROBE_FLAG_DISABLED };
	int ret = register_kprobe(&kp);

	if (ret < 0)
		return ret;
	lookup_name = (unsigned long (*)(const char *))kp.addr;
	unregister_kprobe(&kp);
	return lookup_name ? 0 : -ENOENT;
}

/*
 * What kallsyms says of addr: the symbol containing it, the offset into it and its size
 * (the distance to the next symbol). sprint_symbol() prints "name+0xoff/0xsize [module]".
 */
static bool sym_at(unsigned long addr, char *name, size_t nlen, unsigned long *off, unsigned long *size)
{
	char buf[KSYM_SYMBOL_LEN];
	char *plus, *slash;

	sprint_symbol(buf, addr);
	plus = strrchr(buf, '+');
	slash = plus ? strchr(plus, '/') : NULL;
	if (!plus || !slash)
		return false;
	*plus = 0;
	*slash = 0;
	if (kstrtoul(plus + 1, 0, off) || kstrtoul(slash + 1, 0, size) || !*size)
		return false;
	strscpy(name, buf, nlen);
	return true;
}

/* "name+0xoff [module]" (sprint_symbol without the size), or the bare address. */
static void describe(char *buf, size_t len, unsigned long addr)
{
	char tmp[KSYM_SYMBOL_LEN];
	char *slash, *end;

	sprint_symbol(tmp, addr);
	slash = strrchr(tmp, '/');
	if (slash && strchr(tmp, '+') && strchr(tmp, '+') < slash) {
		end = strchr(slash, ' ');
		if (end)
			memmove(slash, end, strlen(end) + 1);
		else
			*slash = 0;
	}
	strscpy(buf, tmp, len);
}

/* ---- what is guarded ---- */

struct gpage {
	u64 gfn;
	u32 map;		/* bit j set: sub-page j holds no guarded byte */
	u32 set_map;		/* what HC_SPP_SET gives the page: map, but for byte-precise objects */
	unsigned long va;	/* a kernel address of the page, for naming */
	const char *label;	/* non-NULL: named label+offset from label_va (no kallsyms name) */
	unsigned long label_va;
};

static struct gpage *gpages;
static unsigned int ngpages, gpages_cap;
static unsigned int nobjects;
static u32 hv_features;

/* A byte-precise object's part in one page (HC_SPP_PROTECT_BYTES, ABI 1.4). */
struct gchunk {
	phys_addr_t pa;
	u32 len;
};
static struct gchunk *gchunks;
static unsigned int ngchunks, gchunks_cap;
static u64 cr0_pinned, cr4_pinned;

static int add_chunk(phys_addr_t pa, u32 len)
{
	struct gchunk *c;

	if (ngchunks == gchunks_cap) {
		unsigned int cap = gchunks_cap ? gchunks_cap * 2 : 64;

		c = kvrealloc(gchunks, gchunks_cap * sizeof(*c), cap * sizeof(*c), GFP_KERNEL);
		if (!c)
			return -ENOMEM;
		gchunks = c;
		gchunks_cap = cap;
	}
	gchunks[ngchunks++] = (struct gchunk){ pa, len };
	return 0;
}

static int add_page(u64 gfn, u32 map, u32 set_map, unsigned long va, const char *label, unsigned long label_va)
{
	struct gpage *p;

	if (ngpages == gpages_cap) {
		unsigned int cap = gpages_cap ? gpages_cap * 2 : 256;

		p = kvrealloc(gpages, gpages_cap * sizeof(*p), cap * sizeof(*p), GFP_KERNEL);
		if (!p)
			return -ENOMEM;
		gpages = p;
		gpages_cap = cap;
	}
	gpages[ngpages++] = (struct gpage){ gfn, map, set_map, va, label, label_va };
	return 0;
}

/*
 * Byte-precise (ABI 1.4) where it buys something: the hypervisor offers it, precise=1, and
 * the object does not start and end on sub-page boundaries (else its sub-pages are its own).
 */
static bool bytes_mode(unsigned long va, unsigned long len)
{
	return guard_precise && (hv_features & TESSEL_F_SPP_BYTES) &&
	       ((va | (va + len)) & (TESSEL_SPP_SUBPAGE_SIZE - 1));
}

/*
 * Guards bytes [va, va + len): the 128-byte sub-pages they touch, whole, or (bytes_mode)
 * exactly those bytes, the rest of the sub-pages staying writable.
 */
static int guard_bytes(unsigned long va, unsigned long len, const char *label)
{
	unsigned long a = va & PAGE_MASK, end = va + len;
	bool exact = bytes_mode(va, len);
	int ret;

	for (; a < end; a += PAGE_SIZE) {
		unsigned long lo = max(a, va), hi = min(a + PAGE_SIZE, end);
		u32 first = (lo - a) / TESSEL_SPP_SUBPAGE_SIZE, last = (hi - 1 - a) / TESSEL_SPP_SUBPAGE_SIZE;
		u32 map = ~(u32)GENMASK(last, first);
		phys_addr_t pa = slow_virt_to_phys((void *)a);

		if (!pa)
			return -EFAULT;
		ret = add_page(pa >> PAGE_SHIFT, map, exact ? ~0u : map, a, label, va);
		if (!ret && exact)
			ret = add_chunk(pa + (lo - a), hi - lo);
		if (ret)
			return ret;
	}
	return 0;
}

/*
 * Lists the other symbols that share the 128-byte sub-pages of [va, va + len): frozen with
 * the object ("also covers"), or, byte-precise, still writable ("byte-precise, neighbours
 * writable").
 */
static void report_object(const char *name, unsigned long va, unsigned long len)
{
	const char *intro = bytes_mode(va, len) ? "; byte-precise, neighbours writable: " : "; also covers: ";
	unsigned long a = va & ~(unsigned long)(TESSEL_SPP_SUBPAGE_SIZE - 1);
	unsigned long end = ALIGN(va + len, TESSEL_SPP_SUBPAGE_SIZE);
	char other[512] = "";
	size_t used = 0;
	char sym[KSYM_NAME_LEN];
	unsigned long off, size;
	int n = 0;

	while (a < end && sym_at(a, sym, sizeof(sym), &off, &size)) {
		if (a - off != va && used < sizeof(other) - 1) {
			used += scnprintf(other + used, sizeof(other) - used, "%s%s", n ? ", " : "", sym);
			n++;
		}
		if (a - off + size <= a)
			break;
		a = a - off + size;
	}
	unsigned long last = va + len - 1;

	if (!((va ^ last) & PAGE_MASK))
		pr_info("guard: %s %px-%px (%lu bytes), sub-pages %lu-%lu of pfn 0x%llx%s%s\n", name,
			(void *)va, (void *)last, len, offset_in_page(va) / TESSEL_SPP_SUBPAGE_SIZE,
			offset_in_page(last) / TESSEL_SPP_SUBPAGE_SIZE,
			(u64)(slow_virt_to_phys((void *)va) >> PAGE_SHIFT), n ? intro : "", other);
	else
		pr_info("guard: %s %px-%px (%lu bytes), sub-page %lu of pfn 0x%llx to sub-page %lu of pfn 0x%llx%s%s\n",
			name, (void *)va, (void *)last, len, offset_in_page(va) / TESSEL_SPP_SUBPAGE_SIZE,
			(u64)(slow_virt_to_phys((void *)va) >> PAGE_SHIFT),
			offset_in_page(last) / TESSEL_SPP_SUBPAGE_SIZE,
			(u64)(slow_virt_to_phys((void *)last) >> PAGE_SHIFT), n ? intro : "", other);
}

static bool listed(const char *list, const char *name)
{
	size_t n = strlen(name);
	const char *p = list;

	while (p && *p) {
		const char *e = strchrnul(p, ',');

		if ((size_t)(e - p) == n && !strncmp(p, name, n))
			return true;
		p = *e ? e + 1 : e;
	}
	return false;
}

/* A symbol by name: len 0 takes kallsyms' size. */
static int guard_symbol(const char *name, unsigned long len, bool optional)
{
	unsigned long va = lookup_name(name), off, size;
	char sym[KSYM_NAME_LEN];
	int ret;

	if (!va) {
		if (!optional)
			pr_err("guard: no symbol %s\n", name);
		return optional ? 0 : -ENOENT;
	}
	if (!len) {
		if (!sym_at(va, sym, sizeof(sym), &off, &size) || off) {
			pr_err("guard: no size for %s\n", name);
			return -EINVAL;
		}
		len = size;
	}
	ret = guard_bytes(va, len, NULL);
	if (!ret) {
		report_object(name, va, len);
		nobjects++;
	}
	return ret;
}

/* Whole pages [start, end) (page aligned): text or read-only data. */
static int guard_range(const char *what, const char *from, const char *to)
{
	unsigned long start = lookup_name(from), end = lookup_name(to), a;
	int ret;

	if (!start || !end || end <= start) {
		pr_err("guard: no %s (%s, %s)\n", what, from, to);
		return -ENOENT;
	}
	start &= PAGE_MASK;
	end = PAGE_ALIGN(end);
	for (a = start; a < end; a += PAGE_SIZE) {
		ret = add_page(slow_virt_to_phys((void *)a) >> PAGE_SHIFT, 0, 0, a, NULL, 0);
		if (ret)
			return ret;
	}
	pr_info("guard: %s %px-%px, %lu pages whole\n", what, (void *)start, (void *)(end - 1),
		(end - start) >> PAGE_SHIFT);
	return 0;
}

static int cmp_gpage(const void *a, const void *b)
{
	const struct gpage *x = a, *y = b;

	return x->gfn < y->gfn ? -1 : x->gfn > y->gfn;
}

/* Sorts by frame and merges entries of one frame (their maps ANDed; the first name kept). */
static void merge_pages(void)
{
	unsigned int i, j = 0;

	sort(gpages, ngpages, sizeof(*gpages), cmp_gpage, NULL);
	for (i = 0; i < ngpages; i++) {
		if (j && gpages[j - 1].gfn == gpages[i].gfn) {
			gpages[j - 1].map &= gpages[i].map;
			gpages[j - 1].set_map &= gpages[i].set_map;
			if (!gpages[j - 1].label)
				continue;
			if (!gpages[i].label)
				gpages[j - 1].label = NULL; /* kallsyms names it */
			continue;
		}
		gpages[j++] = gpages[i];
	}
	ngpages = j;
}

static struct gpage *find_page(u64 gfn)
{
	unsigned int lo = 0, hi = ngpages;

	while (lo < hi) {
		unsigned int mid = lo + (hi - lo) / 2;

		if (gpages[mid].gfn == gfn)
			return &gpages[mid];
		if (gpages[mid].gfn < gfn)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static long hc(s64 st)
{
	return st >= 0 ? 0 : (st < -4095 ? -EIO : (long)st);
}

/*
 * A byte-precise chunk the hypervisor could not take (-ENOMEM: its table of byte-mode pages
 * is full): its sub-pages are guarded whole instead, neighbours frozen, and the log says so.
 */
static long chunk_fallback(const struct gchunk *c, u32 *buf, long why)
{
	u64 gfn = c->pa >> PAGE_SHIFT;
	u32 first = offset_in_page(c->pa) / TESSEL_SPP_SUBPAGE_SIZE;
	u32 last = (offset_in_page(c->pa) + c->len - 1) / TESSEL_SPP_SUBPAGE_SIZE;
	long ret = hc(tessel_spp_get(gfn, 1, virt_to_phys(buf)));

	pr_warn("guard: byte-precise protection of pfn 0x%llx refused (%ld): sub-pages %u-%u guarded whole\n",
		gfn, why, first, last);
	if (ret)
		return ret;
	buf[0] &= ~(u32)GENMASK(last, first);
	return hc(tessel_spp_set(gfn, 1, virt_to_phys(buf), 0));
}

/* The number of consecutive frames from gpages[i], at most max_pages. */
static unsigned int frame_run(unsigned int i, u32 max_pages)
{
	unsigned int n = 1;

	while (i + n < ngpages && n < max_pages && gpages[i + n].gfn == gpages[i].gfn + n)
		n++;
	return n;
}

/*
 * HC_SPP_SET for runs of consecutive frames (whole sub-pages and pages), then
 * HC_SPP_PROTECT_BYTES for the byte-precise objects, then HC_SPP_LOCK of every frame (after
 * a lock, a page's protection cannot grow either).
 */
static int apply_pages(u32 max_pages)
{
	u32 *maps = kmalloc_array(max_pages, sizeof(u32), GFP_KERNEL);
	unsigned int i = 0, n;
	long ret = 0;

	if (!maps)
		return -ENOMEM;
	for (; i < ngpages && !ret; i += n) {
		n = frame_run(i, max_pages);
		for (unsigned int k = 0; k < n; k++)
			maps[k] = gpages[i + k].set_map;
		ret = hc(tessel_spp_set(gpages[i].gfn, n, virt_to_phys(maps), 0));
		if (ret)
			pr_err("guard: HC_SPP_SET of pfn 0x%llx (+%u) failed (%ld)\n", gpages[i].gfn, n, ret);
	}
	for (i = 0; i < ngchunks && !ret; i++) {
		ret = hc(tessel_spp_protect_bytes(gchunks[i].pa, gchunks[i].len));
		if (ret == -ENOMEM)
			ret = chunk_fallback(&gchunks[i], maps, ret);
		if (ret)
			pr_err("guard: HC_SPP_PROTECT_BYTES of 0x%llx (%u bytes) failed (%ld)\n",
			       (u64)gchunks[i].pa, gchunks[i].len, ret);
	}
	for (i = 0; i < ngpages && !ret && lock; i += n) {
		n = frame_run(i, max_pages);
		ret = hc(tessel_spp_lock(gpages[i].gfn, n));
		if (ret)
			pr_err("guard: HC_SPP_LOCK of pfn 0x%llx (+%u) failed (%ld)\n", gpages[i].gfn, n, ret);
	}
	kfree(maps);
	return ret;
}

/* ---- pinning ---- */

struct pin_msr {
	u32 index;
	const char *name;
};
static const struct pin_msr pinned_msrs[] = {
	{ MSR_LSTAR, "LSTAR" },	      { MSR_CSTAR, "CSTAR" },		 { MSR_STAR, "STAR" },
	{ MSR_SYSCALL_MASK, "FMASK" }, { MSR_IA32_SYSENTER_CS, "SYSENTER_CS" },
	{ MSR_IA32_SYSENTER_EIP, "SYSENTER_EIP" }, { MSR_EFER, "EFER" },
};

static const char *msr_name(u32 index)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(pinned_msrs); i++)
		if (pinned_msrs[i].index == index)
			return pinned_msrs[i].name;
	return "?";
}

static void cleared_bits(char *buf, size_t len, u64 reg, u64 value);

static int pin_registers(void)
{
	u64 cr0, cr4, mask;
	unsigned int i;
	char done[128] = "";
	size_t used = 0;
	long ret;

	if (pin_cr) {
		preempt_disable(); /* read and pin on one CPU (every CPU has the same bits) */
		cr0 = read_cr0() & TESSEL_CR0_WP;
		cr4 = __read_cr4() & (TESSEL_CR4_SMEP | TESSEL_CR4_SMAP | TESSEL_CR4_UMIP);
		ret = cr0 ? hc(tessel_pin_cr(0, cr0, &mask)) : 0;
		if (!ret && cr0)
			cr0_pinned = mask;
		if (!ret && cr4) {
			ret = hc(tessel_pin_cr(4, cr4, &mask));
			if (!ret)
				cr4_pinned = mask;
		}
		preempt_enable();
		if (ret) {
			pr_err("guard: HC_PIN_CR failed (%ld)\n", ret);
			return ret;
		}
		cleared_bits(done, sizeof(done), 4, 0); /* the names of the pinned CR4 bits */
		pr_info("guard: pinned CR0 0x%llx (WP), CR4 0x%llx (%s)\n", cr0_pinned, cr4_pinned, done);
		done[0] = 0;
	}
	if (pin_msrs) {
		for (i = 0; i < ARRAY_SIZE(pinned_msrs); i++) {
			ret = hc(tessel_pin_msr(pinned_msrs[i].index));
			if (ret) /* EFER without NXE, an MSR this CPU lacks: not fatal */
				pr_warn("guard: HC_PIN_MSR %s failed (%ld)\n", pinned_msrs[i].name, ret);
			else
				used += scnprintf(done + used, sizeof(done) - used, " %s", pinned_msrs[i].name);
		}
		pr_info("guard: pinned MSRs:%s\n", done);
	}
	return 0;
}

/*
 * IDTR and GDTR (ABI 1.3, HC_PIN_DT): each CPU's current value is pinned (the hypervisor
 * takes it on every CPU before the call returns), so a LIDT/LGDT of other tables is refused:
 * the write-protected idt_table cannot be bypassed by loading another IDT. The guard loads
 * long after boot, when every online CPU runs on idt_table and its read-only fixmap GDT
 * (load_fixmap_gdt); a CPU brought up later (INIT-SIPI) is disarmed until its bring-up loads
 * those same values again (docs/ABI.md, HC_PIN_DT).
 */
/*
 * A CPU that comes online after the guard loaded: HC_PIN_DT gives a vCPU that was not running
 * guest code at the pin (never brought up: maxcpus=, a hot-added CPU) no pinned value until it
 * calls itself, so every CPU does, on its way online (its final IDT and GDT are loaded by then).
 * A CPU that had a value (offlined and onlined again: INIT disarmed it, loading the same
 * tables re-armed it) gets 0 back, the same value. One parked when the guard pinned (by the
 * firmware, or early in boot with maxcpus=) holds the tables it was parked on as its value:
 * its INIT disarmed them, and this call pins the ones it runs on now instead (docs/ABI.md HC_PIN_DT; seen with maxcpus=1).
 */
static int guard_cpu_online(unsigned int cpu)
{
	long ret = hc(tessel_pin_dt(TESSEL_PIN_DT_IDTR | TESSEL_PIN_DT_GDTR, NULL));

	if (ret)
		pr_warn("guard: HC_PIN_DT on cpu %u coming online failed (%ld)\n", cpu, ret);
	return 0; /* never stop the CPU from coming up */
}

static void pin_dtrs(u32 features)
{
	u64 mask = 0;
	long ret;

	if (!pin_dt)
		return;
	if (!(features & TESSEL_F_PIN_DT)) {
		pr_info("guard: IDTR/GDTR not pinned: the hypervisor has no HC_PIN_DT (features 0x%x)\n", features);
		return;
	}
	ret = hc(tessel_pin_dt(TESSEL_PIN_DT_IDTR | TESSEL_PIN_DT_GDTR, &mask));
	if (ret) {
		pr_warn("guard: HC_PIN_DT failed (%ld)\n", ret);
		return;
	}
	pr_info("guard: pinned IDTR GDTR (mask 0x%llx)\n", mask);
	/* Not undone: the guard never unloads. */
	ret = cpuhp_setup_state_nocalls(CPUHP_AP_ONLINE_DYN, "tessel/guard:pin_dt", guard_cpu_online, NULL);
	if (ret < 0)
		pr_warn("guard: no CPU-online hook (%ld): CPUs brought up later are not pinned\n", ret);
}

/* ---- events -> log ---- */

static DEFINE_RATELIMIT_STATE(log_rs, 5 * HZ, 20);

static int apic_to_cpu(u32 apic)
{
	int cpu;

	for_each_possible_cpu(cpu)
		if (per_cpu(x86_cpu_to_apicid, cpu) == apic)
			return cpu;
	return -1;
}

static void cleared_bits(char *buf, size_t len, u64 reg, u64 value)
{
	static const struct {
		u64 reg, bit;
		const char *name;
	} bits[] = {
		{ 0, TESSEL_CR0_PE, "PE" },	{ 0, TESSEL_CR0_WP, "WP" },	{ 0, TESSEL_CR0_PG, "PG" },
		{ 4, TESSEL_CR4_UMIP, "UMIP" }, { 4, TESSEL_CR4_SMEP, "SMEP" }, { 4, TESSEL_CR4_SMAP, "SMAP" },
		{ 4, TESSEL_CR4_PKE, "PKE" },	{ 4, TESSEL_CR4_CET, "CET" },	{ 4, TESSEL_CR4_PKS, "PKS" },
	};
	u64 pinned = reg == 0 ? cr0_pinned : cr4_pinned;
	size_t used = 0;
	unsigned int i;

	buf[0] = 0;
	for (i = 0; i < ARRAY_SIZE(bits); i++)
		if (bits[i].reg == reg && (pinned & bits[i].bit) && !(value & bits[i].bit))
			used += scnprintf(buf + used, len - used, "%s%s", used ? "," : "", bits[i].name);
	if (!used)
		strscpy(buf, "pinned bits", len);
}

/*
 * One instruction writing a run of bytes (a byte-wise copy loop, REP MOVSB) gives one event
 * per store; the log names the first and then says how many more followed at the next
 * addresses from the same instruction (flushed a tenth of a second after the last).
 */
static DEFINE_SPINLOCK(run_lock);
static struct {
	u64 rip, next_gpa;
	int cpu;
	unsigned int more;
	char what[KSYM_SYMBOL_LEN];
} run;
static void run_flush(struct work_struct *w);
static DECLARE_DELAYED_WORK(run_work, run_flush);

static void run_report(void)
{
	if (run.more)
		pr_warn("denied %u more writes to the bytes after %s by the same instruction at %px on cpu %d\n",
			run.more, run.what, (void *)run.rip, run.cpu);
	run.more = 0;
	run.rip = 0;
}

static void run_flush(struct work_struct *w)
{
	unsigned long flags;

	spin_lock_irqsave(&run_lock, flags);
	run_report();
	spin_unlock_irqrestore(&run_lock, flags);
}

static char gdt_labels[NR_CPUS < 64 ? NR_CPUS : 64][24];

/*
 * The task running on another CPU (interrupts are off here, an RCU read-side section: a task
 * seen as some CPU's current is not freed before it ends).
 */
static struct task_struct *cpu_task(int cpu)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 2, 0)
	return READ_ONCE(per_cpu(pcpu_hot.current_task, cpu));
#else
	return READ_ONCE(per_cpu(current_task, cpu));
#endif
}

/*
 * guard_gdt=1: Linux rewrites the three TLS descriptors of the CPU's GDT (slots 12-14) at every
 * context switch (__switch_to -> load_TLS: native_load_tls, or inline in __switch_to), one
 * 8-byte store each, which the guard's protection refuses like any other. For a 64-bit process
 * the slots hold zeros and the task's TLS array too: the refused store would not have changed
 * a byte. Such a refusal is counted in gdt_tls_rewrites and not logged. It is recognised by
 * all of: an 8-byte store to one TLS slot, made by an instruction of the TLS-loading function,
 * whose bytes (the TLS array of the task now running on that CPU, which is the task switched
 * in) equal the slot's bytes, which the refusal kept. Anything else is logged by name: a
 * descriptor written into any other slot, a TLS slot written from elsewhere, and a rewrite
 * that would have changed the slot (a 32-bit program's set_thread_area TLS, whose segments
 * the guard then refuses, or a task whose TLS array a rootkit filled with a call gate).
 */
static unsigned long tls_writer_lo, tls_writer_hi;

static void gdt_tls_init(void)
{
	static const char *const writers[] = { "native_load_tls", "__switch_to" };
	char sym[KSYM_NAME_LEN];
	unsigned long va, off, size;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(writers); i++) {
		va = lookup_name(writers[i]);
		if (va && sym_at(va, sym, sizeof(sym), &off, &size) && !off) {
			tls_writer_lo = va;
			tls_writer_hi = va + size;
			pr_info("guard: the GDT's TLS slots: rewrites by %s that change nothing are counted (gdt_tls_rewrites), not logged\n",
				writers[i]);
			return;
		}
	}
	pr_warn("guard: no TLS-loading function found: each context switch's TLS rewrite will be logged\n");
}

static bool gdt_tls_own(const struct tessel_event_entry *e, const struct gpage *p, int cpu)
{
	long off = (long)(e->gpa & ~PAGE_MASK) - (long)offset_in_page(p->label_va);
	long slot = off / 8 - GDT_ENTRY_TLS_MIN;
	struct task_struct *t;
	struct desc_struct *gdt;

	if (p->label < gdt_labels[0] || p->label >= gdt_labels[ARRAY_SIZE(gdt_labels)] ||
	    e->rip < tls_writer_lo || e->rip >= tls_writer_hi || e->bytes != 8 || off < 0 || off % 8 ||
	    slot < 0 || slot >= GDT_ENTRY_TLS_ENTRIES || cpu < 0 || cpu >= nr_cpu_ids)
		return false;
	t = cpu == smp_processor_id() ? current : cpu_task(cpu);
	gdt = get_cpu_gdt_rw(cpu);
	return !memcmp(&t->thread.tls_array[slot], &gdt[GDT_ENTRY_TLS_MIN + slot], sizeof(*gdt));
}

/*
 * An entry of another CPU seen first from this CPU's ring interrupt (the writer's CPU had
 * interrupts off; with guard_gdt=1 the other CPU takes ring interrupts at each context
 * switch): the task running on the writing CPU now, which is the writer unless that CPU has
 * switched tasks since.
 */
static const char *remote_comm(int cpu, char *buf)
{
	struct task_struct *t;

	if (cpu < 0 || cpu >= nr_cpu_ids)
		return "?";
	t = cpu_task(cpu);
	memcpy(buf, t->comm, TASK_COMM_LEN);
	buf[TASK_COMM_LEN - 1] = 0;
	return buf;
}

static void guard_event(const struct tessel_event_entry *e, bool from_irq)
{
	char who[KSYM_SYMBOL_LEN], what[KSYM_SYMBOL_LEN], bits[48], comm_buf[TASK_COMM_LEN];
	int cpu = apic_to_cpu(e->vcpu);
	const char *comm = "?";
	struct gpage *p;
	u64 bytes = e->bytes ? e->bytes : 1;

	if (from_irq && cpu == smp_processor_id())
		comm = current->comm;
	else if (from_irq)
		comm = remote_comm(cpu, comm_buf);
	if (e->kind == TESSEL_EV_PIN) {
		atomic_inc(&denied_pins);
		if (!__ratelimit(&log_rs))
			return;
		describe(who, sizeof(who), e->rip);
		if (e->gla == TESSEL_EV_PIN_DTR(TESSEL_PIN_DT_IDTR) || e->gla == TESSEL_EV_PIN_DTR(TESSEL_PIN_DT_GDTR)) {
			pr_warn("denied load of %s base 0x%llx limit 0x%x by %px (%s) on cpu %d, comm %s\n",
				e->gla == TESSEL_EV_PIN_DTR(TESSEL_PIN_DT_IDTR) ? "IDTR" : "GDTR", e->gpa, e->bytes,
				(void *)e->rip, who, cpu, comm);
		} else if (e->gla == TESSEL_EV_PIN_CR(0) || e->gla == TESSEL_EV_PIN_CR(4)) {
			cleared_bits(bits, sizeof(bits), e->gla, e->gpa);
			pr_warn("denied CR%llu write clearing %s (value 0x%llx) by %px (%s) on cpu %d, comm %s\n",
				e->gla, bits, e->gpa, (void *)e->rip, who, cpu, comm);
		} else {
			pr_warn("denied write of 0x%llx to MSR %s by %px (%s) on cpu %d, comm %s\n", e->gpa,
				msr_name((u32)e->gla), (void *)e->rip, who, cpu, comm);
		}
		return;
	}
	if (e->kind != TESSEL_EV_DENIED && e->kind != TESSEL_EV_DISCARDED)
		return;
	p = find_page(e->gpa >> PAGE_SHIFT);
	if (!p || (p->map >> ((e->gpa & ~PAGE_MASK) / TESSEL_SPP_SUBPAGE_SIZE) & 1))
		return; /* not the guard's (a /dev/tessel user's protection) */
	if (guard_gdt && gdt_tls_own(e, p, cpu)) {
		atomic_inc(&gdt_tls_rewrites);
		return;
	}
	atomic_inc(&guard_denied_writes);
	spin_lock(&run_lock); /* interrupts are off here */
	if (run.rip && e->rip == run.rip && cpu == run.cpu && e->gpa == run.next_gpa) {
		run.more++;
		run.next_gpa += bytes;
		spin_unlock(&run_lock);
		mod_delayed_work(system_wq, &run_work, HZ / 10);
		return;
	}
	run_report();
	spin_unlock(&run_lock);
	if (!__ratelimit(&log_rs))
		return;
	if (p->label)
		scnprintf(what, sizeof(what), "%s+0x%lx", p->label,
			  p->va + (unsigned long)(e->gpa & ~PAGE_MASK) - p->label_va);
	else
		describe(what, sizeof(what), p->va + (unsigned long)(e->gpa & ~PAGE_MASK));
	describe(who, sizeof(who), e->rip);
	pr_warn("denied %swrite to %s by %px (%s) on cpu %d, comm %s\n",
		e->kind == TESSEL_EV_DISCARDED ? "(discarded) " : "", what, (void *)e->rip, who, cpu, comm);
	spin_lock(&run_lock);
	run.rip = e->rip;
	run.next_gpa = e->gpa + bytes;
	run.cpu = cpu;
	run.more = 0;
	strscpy(run.what, what, sizeof(run.what));
	spin_unlock(&run_lock);
}

static const struct tessel_guard_ops ops = { .event = guard_event };

/* ---- load ---- */

/*
 * What is guarded by default (allow_write= names any of them). Optional: only if this kernel
 * has the symbol. The LSM switches: SELinux's state (enforcing, policy); AppArmor's global
 * profile mode (enforce/complain/kill/unconfined: "complain" turns every denial into a log
 * line), its policy lock and audit mode; the lockdown LSM's level; Yama's ptrace scope. Their
 * hook lists are __ro_after_init, in the read-only data guarded whole.
 */
static const struct { const char *name; bool optional; } default_objects[] = {
	{ "modprobe_path", false },	  { "core_pattern", false },	   { "poweroff_cmd", false },
	{ "selinux_state", true },	  { "aa_g_profile_mode", true },   { "aa_g_lock_policy", true },
	{ "aa_g_audit", true },		  { "kernel_locked_down", true },  { "ptrace_scope", true },
	{ "sys_call_table", false },	  { "ia32_sys_call_table", true }, { "x32_sys_call_table", true },
	{ "idt_table", false },
};

static int collect(void)
{
	unsigned int i;
	char **lsm;
	int ret = 0, cpu;

	for (i = 0; i < ARRAY_SIZE(default_objects); i++) {
		const char *name = default_objects[i].name;

		if (allow_write && listed(allow_write, name)) {
			pr_info("guard: %s left writable (allow_write)\n", name);
			continue;
		}
		ret = guard_symbol(name, 0, default_objects[i].optional);
		if (ret)
			return ret;
	}
	lsm = (char **)lookup_name("lsm_names");
	if (lookup_name("selinux_state") && lsm && *lsm && strstr(*lsm, "selinux") &&
	    !(allow_write && listed(allow_write, "selinux_state")))
		pr_warn("guard: SELinux is active: its policy loads write selinux_state, now refused (allow_write=selinux_state)\n");
	if (guard_symbols) {
		char *list = kstrdup(guard_symbols, GFP_KERNEL), *p = list, *tok;

		if (!list)
			return -ENOMEM;
		while ((tok = strsep(&p, ",")) && !ret) {
			char *plus = strchr(tok, '+');
			unsigned long len = 0;

			if (!*tok)
				continue;
			if (plus) {
				*plus = 0;
				if (kstrtoul(plus + 1, 0, &len) || !len) {
					pr_err("guard: bad length in guard_symbols entry %s+%s\n", tok, plus + 1);
					ret = -EINVAL;
					break;
				}
			}
			ret = guard_symbol(tok, len, false);
		}
		kfree(list);
		if (ret)
			return ret;
	}
	if (guard_gdt) {
		for_each_possible_cpu(cpu) {
			struct desc_struct *gdt = get_cpu_gdt_rw(cpu);

			if (cpu >= ARRAY_SIZE(gdt_labels))
				break;
			scnprintf(gdt_labels[cpu], sizeof(gdt_labels[cpu]), "gdt_page[cpu%d]", cpu);
			ret = guard_bytes((unsigned long)gdt, GDT_SIZE, gdt_labels[cpu]);
			if (ret)
				return ret;
			nobjects++;
		}
		pr_info("guard: the GDT of each CPU (%d bytes each)\n", (int)GDT_SIZE);
		gdt_tls_init();
	}
	if (guard_rodata && !(allow_write && listed(allow_write, "rodata"))) {
		ret = guard_range("read-only data", "__start_rodata", "__end_rodata");
		if (ret)
			return ret;
	}
	if (guard_text) {
		ret = guard_range("kernel text", "_stext", "_etext");
		if (ret)
			return ret;
	}
	return 0;
}

static int __init guard_init(void)
{
	u32 version, features;
	u64 max_pages;
	int ret;

	if (!tessel_present() || tessel_query(&version, &features, &max_pages)) {
		pr_err("guard: the Tessel hypervisor is not present; not loading\n");
		return -ENODEV;
	}
	hv_features = features;
	if (!(features & TESSEL_F_PIN) || !(features & TESSEL_F_LOCK) ||
	    !(features & (TESSEL_F_SPP_HW | TESSEL_F_SPP_SW))) {
		pr_err("guard: the hypervisor lacks sub-page protection, LOCK or pinning (features 0x%x, ABI %u.%u); not loading\n",
		       features, TESSEL_ABI_MAJOR(version), TESSEL_ABI_MINOR(version));
		return -ENODEV;
	}
	ret = kallsyms_init();
	if (ret) {
		pr_err("guard: cannot resolve kallsyms_lookup_name (%d); not loading\n", ret);
		return ret;
	}
	ret = collect();
	if (ret)
		goto fail;
	merge_pages();
	ret = tessel_guard_attach(&ops);
	if (ret) {
		pr_err("guard: tessel.ko has no event ring for the guard (%d); not loading\n", ret);
		goto fail;
	}
	ret = apply_pages((u32)min_t(u64, max_pages, 512));
	if (!ret)
		ret = pin_registers();
	if (!ret)
		pin_dtrs(features);
	if (ret) {
		/* Whatever went in is locked: stay loaded so the log keeps naming refusals. */
		pr_err("guard: incomplete (%d); staying loaded\n", ret);
	}
	__module_get(THIS_MODULE); /* locked until platform reset: no unloading */
	pr_info("guard: active: %u objects, %u pages (%s), %s sub-page protection; refusals are logged here\n",
		nobjects, ngpages, lock ? "locked" : "not locked",
		(features & TESSEL_F_SPP_HW) ? "hardware" : "software");
	return 0;
fail:
	kvfree(gpages);
	kvfree(gchunks);
	return ret;
}

static void __exit guard_exit(void)
{
	/* Not reached: the module holds a reference to itself once loaded. */
	tessel_guard_detach();
	cancel_delayed_work_sync(&run_work);
	kvfree(gpages);
	kvfree(gchunks);
}

module_init(guard_init);
module_exit(guard_exit);
MODULE_DESCRIPTION("Tessel kernel guard: kernel objects and control registers write-protected through the hypervisor");
MODULE_LICENSE("GPL");
