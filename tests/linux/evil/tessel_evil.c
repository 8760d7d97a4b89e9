// SPDX-License-Identifier: GPL-2.0
/*
 * tessel_evil.ko: a deliberately malicious module for the kernel guard's test and demo
 * (tests/linux/evil/, never part of the driver; tools/linux/README.md "The kernel guard").
 * At load it does what kernel rootkits do, in turn, and checks the bytes and registers
 * afterwards, printing one TAP-like line per attempt ("tessel_evil: ok N - ..."):
 *
 *   1. overwrite modprobe_path (so the next request_module runs the attacker's program);
 *   2. clear CR0.WP with a raw MOV to CR0 (Linux's own CR pinning in native_write_cr0() is
 *      bypassed that way) ...
 *   3. ... and patch a sys_call_table entry, directly and through a second mapping;
 *   4. clear CR4.SMEP with a raw MOV to CR4;
 *   5. overwrite an IDT gate (vector 0x80), directly and through a second mapping;
 *   6. write to modprobe_path through a second virtual alias (vmap of its physical page);
 *   7. (not an attack) write to bytes of modprobe_path's page outside the guarded sub-pages,
 *      which must land;
 *   8. LIDT of a forged copy of the IDT (the write-protected idt_table is bypassed by loading
 *      another table; refused where the guard pinned IDTR, ABI 1.3 HC_PIN_DT);
 *   9. plant a DPL-3 call gate to kernel code in a CPU's GDT (slots 10-11) through a vmap
 *      alias of its gdt_page (guard_gdt=1; "ok # skip" when the guard does not guard the GDT);
 *  10. patch the first byte of a kernel function (an INT3 into sys_ni_syscall) through a vmap
 *      alias of its text page (guard_text=1; skipped likewise);
 *  11. the call gate of 9 in the GDT's TLS slots 12-13, which Linux itself rewrites at every
 *      context switch (guard_gdt=1): the guard must still refuse and name it;
 *  12. (not an attack) byte-precise guarding (ABI 1.4): the bytes of other objects that share
 *      modprobe_path's first and last 128-byte sub-pages stay writable, while a write to
 *      modprobe_path by the same instruction is refused;
 *  13. switch AppArmor, the running LSM, to complain mode (aa_g_profile_mode = 1: every
 *      denial becomes a log line) with a plain store ("ok # skip" on a kernel without it).
 * tessel-guard-demo passes the guard's guard_gdt and guard_text settings on as this module's
 * options of the same names.
 *
 * Every attack that succeeds is undone at once (the old bytes or register written back), so
 * a kernel without the guard survives this module too, reporting "not ok". Symbols come from
 * kallsyms through a disabled kprobe, as rootkits find them. The module stays loaded.
 */
#define pr_fmt(fmt) "tessel_evil: " fmt

#include <linux/irqflags.h>
#include <linux/kmod.h>
#include <linux/kprobes.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <linux/vmalloc.h>
#include <asm/desc.h>
#include <asm/desc_defs.h>
#include <asm/io.h>
#include <asm/processor-flags.h>
#include <asm/segment.h>
#include <asm/special_insns.h>

#include "tessel.h"

static bool guard_gdt, guard_text;
module_param(guard_gdt, bool, 0400);
MODULE_PARM_DESC(guard_gdt, "the guard guards the GDTs (else the GDT attack is skipped)");
module_param(guard_text, bool, 0400);
MODULE_PARM_DESC(guard_text, "the guard guards the kernel text (else the text attack is skipped)");

static int test_no;
static bool all_ok = true;

static bool on_demand; /* an attack run through the attack parameter: outside the TAP plan */

static void result(bool ok, const char *what, const char *detail)
{
	if (on_demand) {
		pr_info("on demand: %s - %s%s%s\n", ok ? "ok" : "not ok", what, detail ? ": " : "", detail ? detail : "");
		return;
	}
	all_ok &= ok;
	pr_info("%sok %d - %s%s%s\n", ok ? "" : "not ", ++test_no, what, detail ? ": " : "", detail ? detail : "");
}

static unsigned long (*lookup_name)(const char *name);

static int find_lookup(void)
{
	struct kprobe kp = { .symbol_name = "kallsyms_lookup_name", .flags = KPROBE_FLAG_DISABLED };
	int ret = register_kprobe(&kp);

	if (ret < 0)
		return ret;
	lookup_name = (unsigned long (*)(const char *))kp.addr;
	unregister_kprobe(&kp);
	return lookup_name ? 0 : -ENOENT;
}

/* A second, writable mapping of the page holding addr; *alias_of_addr is addr in it. */
static void *alias(void *addr, void **alias_of_addr)
{
	struct page *pg = pfn_to_page(slow_virt_to_phys(addr) >> PAGE_SHIFT);
	void *a = vmap(&pg, 1, VM_MAP, PAGE_KERNEL);

	if (a)
		*alias_of_addr = a + offset_in_page(addr);
	return a;
}

/* A store that may fault (read-only page): 0 if it was carried out, -EFAULT if it faulted. */
static noinline int try_store(u64 *dst, u64 val)
{
	__put_kernel_nofault(dst, &val, u64, fault);
	return 0;
fault:
	return -EFAULT;
}

/*
 * The attacking store: n bytes (1, 4, 8 or 16) of evil written at a, which maps target (the same
 * address, or a vmap alias of it), with interrupts off and a's TLB entry dropped first. The
 * INVLPG is for Bochs 2.7 only (docs/SPP.md section 10, deviation 1): once a write SPP allowed
 * has gone to another sub-page of the page (the kernel writes its neighbours all the time),
 * Bochs caches the whole linear page as writable until its next TLB flush, and the store would
 * skip the SPP check. Interrupts stay off so that no handler refills the entry first. On
 * silicon, which keeps sub-page permissions apart, the INVLPG changes nothing. Without it the
 * modprobe_path point failed whenever no VM exit happened on this CPU between such a neighbour
 * write and the store (CI, stop 16; made certain by one neighbour write just before).
 * Returns whether target's bytes changed, and then restores them. Inline: the guard must name
 * the attacking function.
 */
static __always_inline bool store_past_bochs_tlb(void *a, const void *target, const void *evil, size_t n)
{
	u8 old[16];
	unsigned long flags;
	bool landed;

	memcpy(old, target, n);
	local_irq_save(flags);
	asm volatile("invlpg (%0)" : : "r"(a) : "memory");
	if (n == 16) {
		WRITE_ONCE(((u64 *)a)[0], ((const u64 *)evil)[0]);
		WRITE_ONCE(((u64 *)a)[1], ((const u64 *)evil)[1]);
	} else if (n == 8) {
		WRITE_ONCE(*(u64 *)a, *(const u64 *)evil);
	} else if (n == 4) {
		WRITE_ONCE(*(u32 *)a, *(const u32 *)evil);
	} else {
		WRITE_ONCE(*(u8 *)a, *(const u8 *)evil);
	}
	landed = memcmp(old, target, n) != 0;
	if (landed)
		memcpy(a, old, n);
	local_irq_restore(flags);
	return landed;
}

static noinline void evil_modprobe(char *modprobe_path)
{
	char detail[64];
	u64 evil;

	memcpy(&evil, "/tmp/x\0\0", 8);
	/* the write a rootkit makes */
	if (store_past_bochs_tlb(modprobe_path, modprobe_path, &evil, sizeof(evil))) {
		result(false, "modprobe_path overwrite refused", "it landed (restored)");
		return;
	}
	scnprintf(detail, sizeof(detail), "still \"%s\"", modprobe_path);
	result(true, "modprobe_path overwrite refused", detail);
}

static noinline bool evil_cr0(void)
{
	unsigned long flags, cr0, after;

	local_irq_save(flags);
	cr0 = read_cr0();
	asm volatile("mov %0, %%cr0" : : "r"(cr0 & ~X86_CR0_WP) : "memory");
	after = read_cr0();
	if (!(after & X86_CR0_WP))
		asm volatile("mov %0, %%cr0" : : "r"(cr0) : "memory"); /* it worked: undo */
	local_irq_restore(flags); /* the hypervisor's event interrupt arrives here */
	result(after & X86_CR0_WP, "CR0.WP clear refused", (after & X86_CR0_WP) ? "WP still set" : "WP was cleared (restored)");
	return after & X86_CR0_WP;
}

static noinline void evil_syscall(u64 *table, bool wp_held)
{
	u64 old0 = READ_ONCE(table[0]), old1 = READ_ONCE(table[1]), evil = 0xffffffffdeadbeefull;
	void *map, *a = NULL;
	bool landed = false;
	char detail[96];
	int direct;

	direct = try_store(&table[0], evil); /* with WP still set: a page fault */
	if (READ_ONCE(table[0]) != old0)
		try_store(&table[0], old0);
	map = alias(&table[1], &a); /* a writable second mapping of the table's page */
	if (map) {
		WRITE_ONCE(*(u64 *)a, evil);
		landed = READ_ONCE(table[1]) == evil;
		if (landed)
			WRITE_ONCE(*(u64 *)a, old1);
		vunmap(map);
	}
	scnprintf(detail, sizeof(detail), "direct store %s, through a vmap alias %s",
		  direct ? "faulted (WP)" : "landed", !map ? "(no alias)" : landed ? "landed" : "refused");
	result(wp_held && map && !landed && direct == -EFAULT && READ_ONCE(table[0]) == old0,
	       "sys_call_table entry patch refused", detail);
}

static noinline void evil_cr4(void)
{
	unsigned long flags, cr4, after;

	local_irq_save(flags);
	cr4 = __read_cr4();
	if (!(cr4 & X86_CR4_SMEP)) {
		local_irq_restore(flags);
		result(false, "CR4.SMEP clear refused", "SMEP is not on in this CPU");
		return;
	}
	asm volatile("mov %0, %%cr4" : : "r"(cr4 & ~X86_CR4_SMEP) : "memory");
	after = __read_cr4();
	if (!(after & X86_CR4_SMEP))
		asm volatile("mov %0, %%cr4" : : "r"(cr4) : "memory");
	local_irq_restore(flags);
	result(after & X86_CR4_SMEP, "CR4.SMEP clear refused",
	       (after & X86_CR4_SMEP) ? "SMEP still set" : "SMEP was cleared (restored)");
}

static noinline void evil_idt(gate_desc *idt)
{
	u64 *gate = (u64 *)&idt[0x80], old = READ_ONCE(*gate), evil = 0x4141414141414141ull;
	void *map, *a = NULL;
	unsigned long flags;
	int direct;
	bool landed = false;

	local_irq_save(flags);
	direct = try_store(gate, evil);
	map = alias(gate, &a);
	if (map) {
		WRITE_ONCE(*(u64 *)a, evil);
		landed = READ_ONCE(*gate) == evil;
		if (landed)
			WRITE_ONCE(*(u64 *)a, old);
	}
	if (!direct && READ_ONCE(*gate) != old)
		try_store(gate, old);
	local_irq_restore(flags);
	if (map)
		vunmap(map);
	result(map && !landed && direct == -EFAULT && READ_ONCE(*gate) == old, "IDT gate 0x80 overwrite refused",
	       !map ? "no alias" : landed ? "the alias write landed (restored)" :
	       direct ? "direct store faulted (read-only IDT), through a vmap alias refused" : "direct store landed");
}

static noinline void evil_lidt(gate_desc *idt)
{
	struct desc_ptr before, after, forged;
	gate_desc *copy = kmalloc(PAGE_SIZE, GFP_KERNEL);
	unsigned long flags;
	char detail[96];

	if (!copy) {
		result(false, "LIDT of a forged IDT refused", "no memory");
		return;
	}
	memcpy(copy, idt, PAGE_SIZE);
	local_irq_save(flags);
	store_idt(&before);
	forged.size = before.size;
	forged.address = (unsigned long)copy;
	asm volatile("lidt %0" : : "m"(forged) : "memory");
	store_idt(&after);
	if (after.address != before.address || after.size != before.size)
		asm volatile("lidt %0" : : "m"(before) : "memory");
	local_irq_restore(flags);
	kfree(copy);
	scnprintf(detail, sizeof(detail), "IDTR %s %lx/%x", after.address == before.address ? "still" : "was",
		  after.address, after.size);
	result(after.address == before.address && after.size == before.size, "LIDT of a forged IDT refused", detail);
}

static noinline void evil_alias(char *modprobe_path)
{
	char before[32];
	void *map, *a = NULL;
	bool landed;

	memcpy(before, modprobe_path, sizeof(before));
	map = alias(modprobe_path, &a);
	if (!map) {
		result(false, "modprobe_path write through a vmap alias refused", "vmap failed");
		return;
	}
	WRITE_ONCE(*(u64 *)((char *)a + 16), 0x2f6c6976652f2fULL);
	WRITE_ONCE(*(u64 *)a, 0x0078652f706d742fULL); /* "/tmp/ex" */
	landed = memcmp(before, modprobe_path, sizeof(before)) != 0;
	if (landed)
		memcpy(a, before, sizeof(before));
	vunmap(map);
	result(!landed, "modprobe_path write through a vmap alias refused",
	       landed ? "it landed (restored)" : "unchanged through the kernel's own mapping");
}

/*
 * A write to modprobe_path's page outside the guarded sub-pages lands: the hypervisor's map of
 * the page (HC_SPP_GET) says which sub-pages are writable; the last 8 bytes of the writable
 * sub-page farthest from modprobe_path are changed and changed back (CMPXCHG both times, so a
 * concurrent writer of those bytes is never overwritten).
 */
static noinline void neighbour(char *modprobe_path)
{
	u64 pa = slow_virt_to_phys(modprobe_path);
	u32 *map = kmalloc(sizeof(*map), GFP_KERNEL);
	int here = offset_in_page(modprobe_path) / TESSEL_SPP_SUBPAGE_SIZE, j, best = -1;
	char detail[96];
	u64 *p, old, flipped;
	bool landed;
	s64 st;

	if (!map) {
		result(false, "a write to unguarded bytes of modprobe_path's page lands", "no memory");
		return;
	}
	st = tessel_spp_get(pa >> PAGE_SHIFT, 1, virt_to_phys(map));
	for (j = 0; !st && j < 32; j++)
		if ((*map >> j & 1) && (best < 0 || abs(j - here) > abs(best - here)))
			best = j;
	if (st || best < 0 || *map == TESSEL_SPP_ALL_WRITABLE) {
		scnprintf(detail, sizeof(detail), "HC_SPP_GET %lld, map 0x%08x: %s", st, st ? 0 : *map,
			  *map == TESSEL_SPP_ALL_WRITABLE ? "the page is not guarded" : "no writable sub-page");
		kfree(map);
		result(false, "a write to unguarded bytes of modprobe_path's page lands", detail);
		return;
	}
	p = (u64 *)(((unsigned long)modprobe_path & PAGE_MASK) + best * TESSEL_SPP_SUBPAGE_SIZE + 120);
	old = READ_ONCE(*p);
	flipped = old ^ 0x5a5a5a5a5a5a5a5aull;
	landed = cmpxchg(p, old, flipped) == old && READ_ONCE(*p) == flipped;
	if (landed)
		cmpxchg(p, flipped, old);
	scnprintf(detail, sizeof(detail), "sub-page %d of the page (map 0x%08x), %s", best, *map,
		  landed ? "changed and changed back" : "unchanged");
	kfree(map);
	result(landed, "a write to unguarded bytes of modprobe_path's page lands", detail);
}

static void skip(const char *what, const char *why)
{
	pr_info("ok %d # skip %s: %s\n", ++test_no, what, why);
}

/*
 * A 64-bit call gate (SDM Vol. 3A 5.8.3.1, type 0xC), DPL 3, selector __KERNEL_CS, to a
 * kernel function: a far CALL through it from user space would enter ring 0 there. Written
 * to slots first, first + 1 of this CPU's GDT through a vmap alias of gdt_page (the GDT the
 * CPU uses is a read-only fixmap alias): 10-11 (the LDT descriptor's; no process here has an
 * LDT), or 12-13 (TLS slots, which Linux rewrites at every context switch).
 */
static noinline void evil_gdt(int first, const char *what)
{
	unsigned long target = lookup_name("sys_ni_syscall");
	int cpu = raw_smp_processor_id();
	u64 *slot = (u64 *)&get_cpu_gdt_rw(cpu)[first], gate[2], before[2];
	void *map, *a = NULL;
	char detail[96];
	bool landed;

	if (!guard_gdt) {
		skip(what, "the guard does not guard the GDT (guard_gdt=0)");
		return;
	}
	gate[0] = (target & 0xffff) | ((u64)__KERNEL_CS << 16) | (0xecull << 40) |
		  ((u64)(target >> 16 & 0xffff) << 48);
	gate[1] = target >> 32;
	before[0] = READ_ONCE(slot[0]);
	before[1] = READ_ONCE(slot[1]);
	map = alias(slot, &a);
	if (!map) {
		result(false, what, "vmap failed");
		return;
	}
	landed = store_past_bochs_tlb(a, slot, gate, sizeof(gate));
	vunmap(map);
	scnprintf(detail, sizeof(detail), "gdt_page[cpu%d] slots %d-%d %s", cpu, first, first + 1,
		  landed ? "changed (restored)" : "unchanged");
	result(!landed && READ_ONCE(slot[0]) == before[0] && READ_ONCE(slot[1]) == before[1], what, detail);
}

/* An INT3 over the first byte of sys_ni_syscall, through a vmap alias of its text page. */
static noinline void evil_text(void)
{
	const char *what = "kernel text patch refused";
	u8 *fn = (u8 *)lookup_name("sys_ni_syscall"), before, evil;
	void *map, *a = NULL;
	char detail[96];
	bool landed;

	if (!guard_text) {
		skip(what, "the guard does not guard the kernel text (guard_text=0)");
		return;
	}
	if (!fn) {
		result(false, what, "no sys_ni_syscall");
		return;
	}
	before = READ_ONCE(*fn);
	evil = before == 0xcc ? 0x90 : 0xcc;
	map = alias(fn, &a);
	if (!map) {
		result(false, what, "vmap failed");
		return;
	}
	landed = store_past_bochs_tlb(a, fn, &evil, 1);
	vunmap(map);
	scnprintf(detail, sizeof(detail), "sys_ni_syscall's first byte %s (0x%02x)",
		  landed ? "changed (restored)" : "unchanged", READ_ONCE(*fn));
	result(!landed && READ_ONCE(*fn) == before, what, detail);
}

/*
 * A locked OR of 0 into one byte: a real write (the processor writes the byte back; SPP and
 * the hypervisor judge it like any other), which changes no value, so no concurrent user of
 * the byte is disturbed. With interrupts off and the TLB entry dropped first, as in
 * store_past_bochs_tlb, and the hypervisor's event interrupt delivered before it returns.
 */
static __always_inline void lock_or0(void *p)
{
	unsigned long flags;

	local_irq_save(flags);
	asm volatile("invlpg (%0)" : : "r"(p) : "memory");
	asm volatile("lock orb $0, %0" : "+m"(*(u8 *)p) : : "memory");
	local_irq_restore(flags);
}

/*
 * Point 12. Judged by the guard's own refusal counter (tessel_guard's guard_denied_writes, found
 * through kallsyms like everything else here): the write to modprobe_path[0] must add one
 * refusal, the writes to its neighbours' bytes none. Without byte-precise protection (a
 * hypervisor before ABI 1.4, or the guard's precise=0) the whole sub-pages are guarded and
 * the point is skipped, saying so.
 */
static noinline void evil_subpage(char *modprobe_path)
{
	const char *what = "bytes sharing modprobe_path's guarded sub-pages stay writable";
	unsigned long va = (unsigned long)modprobe_path, end = va + KMOD_PATH_LEN;
	atomic_t *denied = (atomic_t *)lookup_name("guard_denied_writes");
	bool *precise = (bool *)lookup_name("guard_precise");
	int before, mid, after, n = 0;
	char detail[160];
	u32 version, features;
	u64 max_pages;

	if (tessel_query(&version, &features, &max_pages) || !(features & TESSEL_F_SPP_BYTES)) {
		skip(what, "the hypervisor has no byte-precise protection (ABI 1.4)");
		return;
	}
	if (!denied || !precise) {
		result(false, what, "tessel_guard's denied_writes or precise not found");
		return;
	}
	if (!READ_ONCE(*precise)) {
		skip(what, "the guard runs with precise=0 (whole sub-pages)");
		return;
	}
	if (!(va & (TESSEL_SPP_SUBPAGE_SIZE - 1)) && !(end & (TESSEL_SPP_SUBPAGE_SIZE - 1))) {
		skip(what, "modprobe_path fills its sub-pages: no neighbour shares them");
		return;
	}
	before = atomic_read(denied);
	lock_or0(modprobe_path);
	mid = atomic_read(denied);
	n = scnprintf(detail, sizeof(detail), "modprobe_path[0] refusals +%d", mid - before);
	if (va & (TESSEL_SPP_SUBPAGE_SIZE - 1)) {
		lock_or0((void *)(va - 1));
		n += scnprintf(detail + n, sizeof(detail) - n, ", %pS", (void *)(va - 1));
	}
	if (end & (TESSEL_SPP_SUBPAGE_SIZE - 1)) {
		lock_or0((void *)end);
		n += scnprintf(detail + n, sizeof(detail) - n, ", %pS", (void *)end);
	}
	after = atomic_read(denied);
	scnprintf(detail + n, sizeof(detail) - n, " refusals +%d", after - mid);
	result(mid - before == 1 && after == mid, what, detail);
}

static noinline void evil_lsm(void)
{
	const char *what = "AppArmor complain mode refused";
	u32 *mode = (u32 *)lookup_name("aa_g_profile_mode"), complain = 1, before;
	char detail[64];

	if (!mode) {
		skip(what, "no AppArmor in this kernel");
		return;
	}
	before = READ_ONCE(*mode);
	if (store_past_bochs_tlb(mode, mode, &complain, sizeof(complain)) || READ_ONCE(*mode) != before) {
		result(false, what, "aa_g_profile_mode changed (restored)");
		return;
	}
	scnprintf(detail, sizeof(detail), "aa_g_profile_mode still %u", before);
	result(true, what, detail);
}

/*
 * Later attacks on demand, on the CPU the writer runs on: `echo lidt >
 * /sys/module/tessel_evil/parameters/attack` runs point 8 again, reported as "on demand: ok - ..."
 * (outside the load's TAP plan), e.g. on a CPU that was offlined and onlined since the guard pinned IDTR (the init
 * script's hotplug step, pinned to that CPU with taskset).
 */
static int attack_set(const char *val, const struct kernel_param *kp)
{
	gate_desc *idt = (gate_desc *)lookup_name("idt_table");

	if (!sysfs_streq(val, "lidt") || !idt)
		return -EINVAL;
	pr_info("attack on cpu %d\n", raw_smp_processor_id());
	on_demand = true;
	evil_lidt(idt);
	on_demand = false;
	return 0;
}
static const struct kernel_param_ops attack_ops = { .set = attack_set };
module_param_cb(attack, &attack_ops, NULL, 0200);

static int __init evil_init(void)
{
	char *modprobe_path;
	u64 *sys_call_table;
	gate_desc *idt;
	bool wp;

	if (!tessel_present()) {
		pr_err("no Tessel hypervisor: the attacks would land; not loading\n");
		return -ENODEV;
	}
	if (find_lookup()) {
		pr_err("no kallsyms_lookup_name\n");
		return -ENOENT;
	}
	modprobe_path = (char *)lookup_name("modprobe_path");
	sys_call_table = (u64 *)lookup_name("sys_call_table");
	idt = (gate_desc *)lookup_name("idt_table");
	if (!modprobe_path || !sys_call_table || !idt) {
		pr_err("symbols missing\n");
		return -ENOENT;
	}
	pr_info("1..13\n");
	evil_modprobe(modprobe_path);
	wp = evil_cr0();
	evil_syscall(sys_call_table, wp);
	evil_cr4();
	evil_idt(idt);
	evil_alias(modprobe_path);
	neighbour(modprobe_path);
	evil_lidt(idt);
	evil_gdt(GDT_ENTRY_LDT, "call gate in the GDT refused");
	evil_text();
	evil_gdt(GDT_ENTRY_TLS_MIN, "call gate in the GDT's TLS slots refused");
	evil_subpage(modprobe_path);
	evil_lsm();
	pr_info("done: %s\n", all_ok ? "every attack refused" : "SOME ATTACKS LANDED");
	return 0;
}

static void __exit evil_exit(void)
{
}

module_init(evil_init);
module_exit(evil_exit);
MODULE_DESCRIPTION("Tessel kernel guard test: a deliberately malicious module (tests only)");
MODULE_LICENSE("GPL");
