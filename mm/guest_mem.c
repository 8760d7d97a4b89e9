/*
 * Guest page walks (Intel SDM Vol. 3A chapter 4: 32-bit paging 4.3, PAE 4.4, 4/5-level 4.5)
 * and guest-physical access. Accessed/dirty flags are not updated by these walks: callers
 * that perform a write on the guest's behalf are responsible for the architectural effect
 * they need (documented in docs/ARCHITECTURE.md).
 */
#include <hw.h>
#include <arch/cpu.h>
#include <arch/msr.h>
#include "guest_mem.h"
#include "lib/string.h"
#include "memmap.h"

#define PTE_P  (1ULL << 0)
#define PTE_RW (1ULL << 1)
#define PTE_US (1ULL << 2)
#define PTE_PS (1ULL << 7)
#define PTE_NX (1ULL << 63)
#define ADDR_MASK_64 0x000ffffffffff000ULL

/* Paging-structure entries are naturally aligned, so one load reads one (and atomically,
 * as the processor's walk does). */
static int read_entry(u64 gpa, u64 *e, size_t size)
{
	*e = 0;
	if (!memmap_is_ram(gpa, size))
		return -EINVAL;
	if (size == 8)
		*e = __atomic_load_n((const u64 *)hpa_to_ptr(hpa(gpa)), __ATOMIC_RELAXED);
	else
		*e = __atomic_load_n((const u32 *)hpa_to_ptr(hpa(gpa)), __ATOMIC_RELAXED);
	return 0;
}

static int fault(u32 *pfec, u32 bits, u32 access)
{
	*pfec = bits | ((access & GACC_WRITE) ? PFEC_W : 0) | ((access & GACC_USER) ? PFEC_U : 0) |
		((access & GACC_FETCH) ? PFEC_I : 0);
	return -EFAULT;
}

/* Accumulated permissions of a walk, checked once at the leaf (SDM 4.6). */
static int check_perm(const struct guest_paging *p, bool rw, bool us, bool nx, u32 access, u32 *pfec)
{
	if ((access & GACC_USER) && !us)
		return fault(pfec, PFEC_P, access);
	if ((access & GACC_WRITE) && !rw && ((access & GACC_USER) || (p->cr0 & CR0_WP)))
		return fault(pfec, PFEC_P, access);
	if ((access & GACC_FETCH) && nx && (p->efer & EFER_NXE))
		return fault(pfec, PFEC_P, access);
	return 0;
}

/* CR0.WP only counts for writes (check_perm): a fetch's key leaves it out. */
static u32 walk_key(const struct guest_paging *p, u32 access)
{
	return access | (((access & GACC_WRITE) && (p->cr0 & CR0_WP)) ? 0x100 : 0) | ((p->efer & EFER_NXE) ? 0x200 : 0) |
	       ((p->cr4 & CR4_LA57) ? 0x400 : 0) | 0x80000000U;
}

/* The cached walk (struct walk_cache), if every entry it read still holds its value. */
static bool walk_cached(const struct walk_cache *wc, const struct guest_paging *p, u64 gla, u32 access, u64 *gpa)
{
	if (wc->key != walk_key(p, access) || wc->cr3 != p->cr3 || wc->la_page != (gla >> 12) ||
	    wc->gen != __atomic_load_n(&memmap_gen, __ATOMIC_RELAXED))
		return false;
	for (u32 i = 0; i < wc->n; i++)
		if (__atomic_load_n((const u64 *)hpa_to_ptr(hpa(wc->ea[i])), __ATOMIC_RELAXED) != wc->ev[i])
			return false;
	*gpa = wc->gpa_page | (gla & 0xfff);
	return true;
}

static void walk_cache_fill(struct walk_cache *wc, const struct guest_paging *p, u64 gla, u32 access, u64 gpa,
			    const u64 *ea, const u64 *ev, u32 n, u32 gen)
{
	wc->key = 0;
	for (u32 i = 0; i < n; i++) {
		wc->ea[i] = ea[i];
		wc->ev[i] = ev[i];
	}
	wc->n = n;
	wc->cr3 = p->cr3;
	wc->la_page = gla >> 12;
	wc->gpa_page = gpa & ~0xfffULL;
	wc->gen = gen;
	wc->key = walk_key(p, access);
}

static int walk_long(const struct guest_paging *p, u64 gla, u32 access, u64 *gpa, u32 *pfec)
{
	if (p->wc && walk_cached(p->wc, p, gla, access, gpa))
		return 0;
	u32 gen = __atomic_load_n(&memmap_gen, __ATOMIC_RELAXED);
	int levels = (p->cr4 & CR4_LA57) ? 5 : 4;
	u64 table = p->cr3 & ADDR_MASK_64;
	bool rw = true, us = true, nx = false;
	u64 ea[5], ev[5];
	u32 n = 0;
	for (int level = levels; level >= 1; level--) {
		u64 idx = (gla >> (12 + 9 * (level - 1))) & 511;
		u64 e;
		if (read_entry(table + idx * 8, &e, 8))
			return -EINVAL;
		ea[n] = table + idx * 8;
		ev[n++] = e;
		if (!(e & PTE_P))
			return fault(pfec, 0, access);
		rw &= (e & PTE_RW) != 0;
		us &= (e & PTE_US) != 0;
		nx |= (e & PTE_NX) != 0;
		if (level <= 3 && (e & PTE_PS) && level > 1) {
			u64 size = 1ULL << (12 + 9 * (level - 1));
			int r = check_perm(p, rw, us, nx, access, pfec);
			if (r)
				return r;
			*gpa = ((e & ADDR_MASK_64) & ~(size - 1)) | (gla & (size - 1));
			if (p->wc)
				walk_cache_fill(p->wc, p, gla, access, *gpa, ea, ev, n, gen);
			return 0;
		}
		table = e & ADDR_MASK_64;
	}
	int r = check_perm(p, rw, us, nx, access, pfec);
	if (r)
		return r;
	*gpa = table | (gla & 0xfff);
	if (p->wc)
		walk_cache_fill(p->wc, p, gla, access, *gpa, ea, ev, n, gen);
	return 0;
}

static int walk_pae(const struct guest_paging *p, u64 gla, u32 access, u64 *gpa, u32 *pfec)
{
	u64 pdpte = p->pdpte[(gla >> 30) & 3];
	if (!(pdpte & PTE_P))
		return fault(pfec, 0, access);
	bool rw = true, us = true, nx = false;
	u64 table = pdpte & ADDR_MASK_64;
	for (int level = 2; level >= 1; level--) {
		u64 idx = (gla >> (12 + 9 * (level - 1))) & 511;
		u64 e;
		if (read_entry(table + idx * 8, &e, 8))
			return -EINVAL;
		if (!(e & PTE_P))
			return fault(pfec, 0, access);
		rw &= (e & PTE_RW) != 0;
		us &= (e & PTE_US) != 0;
		nx |= (e & PTE_NX) != 0;
		if (level == 2 && (e & PTE_PS)) {
			int r = check_perm(p, rw, us, nx, access, pfec);
			if (r)
				return r;
			*gpa = (e & ADDR_MASK_64 & ~(SZ_2M - 1)) | (gla & (SZ_2M - 1));
			return 0;
		}
		table = e & ADDR_MASK_64;
	}
	int r = check_perm(p, rw, us, nx, access, pfec);
	if (r)
		return r;
	*gpa = table | (gla & 0xfff);
	return 0;
}

static int walk_32(const struct guest_paging *p, u64 gla, u32 access, u64 *gpa, u32 *pfec)
{
	u32 la = (u32)gla;
	u64 pde;
	if (read_entry((p->cr3 & 0xfffff000ULL) + ((la >> 22) & 1023) * 4, &pde, 4))
		return -EINVAL;
	if (!(pde & PTE_P))
		return fault(pfec, 0, access);
	bool rw = pde & PTE_RW, us = pde & PTE_US;
	if ((pde & PTE_PS) && (p->cr4 & CR4_PSE)) {
		int r = check_perm(p, rw, us, false, access, pfec);
		if (r)
			return r;
		u64 base = (pde & 0xffc00000ULL) | ((pde >> 13) & 0xffULL) << 32; /* PSE-36/40 */
		*gpa = base | (la & 0x3fffff);
		return 0;
	}
	u64 pte;
	if (read_entry((pde & 0xfffff000ULL) + ((la >> 12) & 1023) * 4, &pte, 4))
		return -EINVAL;
	if (!(pte & PTE_P))
		return fault(pfec, 0, access);
	int r = check_perm(p, rw && (pte & PTE_RW), us && (pte & PTE_US), false, access, pfec);
	if (r)
		return r;
	*gpa = (pte & 0xfffff000ULL) | (la & 0xfff);
	return 0;
}

int guest_walk(const struct guest_paging *p, u64 gla, u32 access, u64 *gpa, u32 *pfec)
{
	*pfec = 0;
	if (!(p->cr0 & CR0_PG) || !(p->cr0 & CR0_PE)) {
		*gpa = (p->efer & EFER_LMA) ? gla : (u32)gla;
		return 0;
	}
	if (p->efer & EFER_LMA)
		return walk_long(p, gla, access, gpa, pfec);
	if (p->cr4 & CR4_PAE)
		return walk_pae(p, gla, access, gpa, pfec);
	return walk_32(p, gla, access, gpa, pfec);
}

int guest_read_phys(u64 gpa, void *buf, size_t n)
{
	u8 *out = buf;
	while (n) {
		size_t chunk = MIN(n, PAGE_SIZE - (gpa & (PAGE_SIZE - 1)));
		if (memmap_in_hv(gpa, chunk))
			memset(out, 0xff, chunk);
		else if (memmap_is_ram(gpa, chunk))
			memcpy(out, hpa_to_ptr(hpa(gpa)), chunk);
		else
			return -EFAULT;
		out += chunk;
		gpa += chunk;
		n -= chunk;
	}
	return 0;
}

int guest_write_phys(u64 gpa, const void *buf, size_t n)
{
	if (!memmap_is_ram(gpa, n))
		return -EFAULT;
	memcpy(hpa_to_ptr(hpa(gpa)), buf, n);
	return 0;
}

int guest_read_linear(const struct guest_paging *p, u64 gla, void *buf, size_t n, u32 access,
		      u32 *pfec, u64 *fault_gla)
{
	u8 *out = buf;
	while (n) {
		size_t chunk = MIN(n, PAGE_SIZE - (gla & (PAGE_SIZE - 1)));
		u64 gpa;
		int r = guest_walk(p, gla, access, &gpa, pfec);
		if (r) {
			*fault_gla = gla;
			return r;
		}
		if (guest_read_phys(gpa, out, chunk))
			return -EIO; /* not RAM: no #PF, and *pfec, *fault_gla say nothing */
		out += chunk;
		gla += chunk;
		n -= chunk;
	}
	return 0;
}
