// SPDX-License-Identifier: GPL-2.0
/*
 * tessel-conform: PROTECT_VA follows the physical page (issue 9, item n).
 *
 * A protection is made through a virtual address but holds a physical page. These scenarios
 * change what an address maps between calls (munmap and mmap at the same address,
 * MADV_DONTNEED, the exit of the process whose address space a record was made in) and have
 * several holders protect one physical page (two files, two addresses of one file): each call
 * must act on the page the address maps at that moment, a replaced page must be released,
 * and one holder's UNPROTECT_VA or close must not make writable what another still protects
 * (the page's map is the intersection of its holders' maps).
 */
#include "conform.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define REMAP_SEED 101
#define ALIAS_SEED 103
#define HIGH_OFF 3000 /* sub-page 23: protected by MAP_LOW_HALF */
#define SP3_OFF (3 * SUBPAGE + 8) /* sub-page 3: protected by MAP_ONLY(3) */
#define BOTH_MAP (MAP_LOW_HALF & MAP_ONLY(3))

/* A private anonymous page, at `at` (MAP_FIXED) or anywhere, present and filled. */
static bool map_private(struct test_page *tp, void *at, unsigned seed)
{
	void *va = mmap(at, PAGE_BYTES, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE | (at ? MAP_FIXED : 0), -1, 0);

	if (va == MAP_FAILED) {
		diag("mmap: %s", strerror(errno));
		return false;
	}
	tp->va = va;
	fill_pattern(tp, seed);
	tp->gpa = gpa_of(tp->va);
	return true;
}

/* Page gfn is unprotected and pinned_pages is back at `pinned` (both checked, both said). */
static bool released(uint64_t gfn, uint64_t pinned)
{
	bool unprotected = map_is(gfn, MAP_ALL);

	return grew_by("pinned_pages", pinned, 0) && unprotected;
}

/*
 * munmap, then a new page mmapped at the same address: PROTECT_VA there must protect the new
 * page (the old driver found its record for the address and protected the old page again)
 * and let the old one go.
 */
void test_remap(void)
{
	struct test_page tp = { 0 };
	uint64_t old_gfn, pinned = stat_read("pinned_pages");

	ev_reset();
	if (!map_private(&tp, NULL, REMAP_SEED))
		bail("cannot map the remap page");
	check(is_err(protect(&tp, 0, MAP_NONE), 0) && map_is(gfn_of(&tp), MAP_NONE),
	      "remap: protect a page");
	old_gfn = gfn_of(&tp);
	if (munmap(tp.va, PAGE_BYTES) || !map_private(&tp, tp.va, REMAP_SEED + 1))
		bail("cannot map a new page at the same address");
	diag("old page 0x%llx, new page 0x%llx", (unsigned long long)old_gfn,
	     (unsigned long long)gfn_of(&tp));
	check(is_err(protect(&tp, 0, MAP_LOW_HALF), 0) && map_is(gfn_of(&tp), MAP_LOW_HALF),
	      "remap: PROTECT_VA after munmap and mmap protects the new page");
	probe(&tp, HIGH_OFF, 4, MAP_LOW_HALF);
	check(page_matches(&tp) && ev_only(TESSEL_EV_DENIED, &tp, HIGH_OFF, 4),
	      "remap: a write to the new page's protected half is denied and names the new page");
	check(map_is(old_gfn, MAP_ALL) && grew_by("pinned_pages", pinned, 1),
	      "remap: the replaced page is unprotected and unpinned");
	check(is_err(unprotect(&tp), 0) && released(gfn_of(&tp), pinned), "remap: unprotect");
	munmap(tp.va, PAGE_BYTES);
}

/*
 * MADV_DONTNEED on a protected private page: the kernel drops the page from the address
 * space (the driver's pin keeps it alive) and the next touch maps a fresh one. The driver
 * cannot see that happen; its next call for the address must act on the fresh page.
 */
void test_dontneed(void)
{
	struct test_page tp = { 0 };
	uint64_t old_gfn, pinned = stat_read("pinned_pages");
	bool ok;

	ev_reset();
	if (!map_private(&tp, NULL, REMAP_SEED + 2))
		bail("cannot map the MADV_DONTNEED page");
	check(is_err(protect(&tp, 0, MAP_NONE), 0) && map_is(gfn_of(&tp), MAP_NONE),
	      "dontneed: protect a page");
	old_gfn = gfn_of(&tp);
	ok = !madvise(tp.va, PAGE_BYTES, MADV_DONTNEED);
	fill_pattern(&tp, REMAP_SEED + 3); /* faults in a fresh page */
	tp.gpa = gpa_of(tp.va);
	diag("old page 0x%llx, new page 0x%llx", (unsigned long long)old_gfn,
	     (unsigned long long)gfn_of(&tp));
	check(ok && is_err(protect(&tp, 0, MAP_ONLY(3)), 0) && map_is(gfn_of(&tp), MAP_ONLY(3)),
	      "dontneed: PROTECT_VA again protects the page the address now maps");
	probe(&tp, SP3_OFF, 4, MAP_ONLY(3));
	check(page_matches(&tp) && ev_only(TESSEL_EV_DENIED, &tp, SP3_OFF, 4),
	      "dontneed: a write to the fresh page's protected sub-page is denied");
	check(map_is(old_gfn, MAP_ALL) && grew_by("pinned_pages", pinned, 1),
	      "dontneed: the dropped page is unprotected and unpinned");

	old_gfn = gfn_of(&tp);
	ok = !madvise(tp.va, PAGE_BYTES, MADV_DONTNEED);
	fill_pattern(&tp, REMAP_SEED + 4);
	check(ok && is_err(unprotect(&tp), 0) && released(old_gfn, pinned),
	      "dontneed: UNPROTECT_VA after MADV_DONTNEED releases the dropped page");
	munmap(tp.va, PAGE_BYTES);
}

/* One page of a memfd, mapped shared at two addresses: two views of one physical page. */
static bool map_aliases(struct test_page *a, struct test_page *b, unsigned seed)
{
	int fd = memfd_create("tessel-alias", MFD_CLOEXEC);
	bool ok = fd >= 0 && !ftruncate(fd, PAGE_BYTES);

	a->va = b->va = MAP_FAILED;
	if (ok) {
		a->va = mmap(NULL, PAGE_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
			     fd, 0);
		b->va = mmap(NULL, PAGE_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
			     fd, 0);
	}
	if (fd >= 0)
		close(fd);
	if (a->va == MAP_FAILED || b->va == MAP_FAILED) {
		diag("memfd: %s", strerror(errno));
		return false;
	}
	fill_pattern(a, seed);
	memcpy(b->expect, a->expect, PAGE_BYTES);
	a->gpa = gpa_of(a->va);
	b->gpa = gpa_of(b->va);
	diag("aliases %p and %p: page 0x%llx and 0x%llx", (void *)a->va, (void *)b->va,
	     (unsigned long long)gfn_of(a), (unsigned long long)gfn_of(b));
	return a->gpa == b->gpa;
}

static void unmap_aliases(struct test_page *a, struct test_page *b)
{
	munmap(a->va, PAGE_BYTES);
	munmap(b->va, PAGE_BYTES);
}

/*
 * A write through `a` to sub-page 23 (only MAP_LOW_HALF protects it) and one to sub-page 3
 * (only MAP_ONLY(3) protects it); `map` is the map the page must have.
 */
static bool writes_obey(struct test_page *a, uint32_t map)
{
	unsigned want = 0;

	ev_reset();
	probe(a, HIGH_OFF, 4, map);
	probe(a, SP3_OFF, 4, map);
	want = !(map & (1u << (HIGH_OFF / SUBPAGE))) + !(map & (1u << (SP3_OFF / SUBPAGE)));
	return page_matches(a) && ev_count_is(want);
}

/* Two files protect one physical page; neither may undo what the other protects. */
void test_two_files(void)
{
	struct test_page a = { 0 }, b = { 0 };
	uint64_t pinned = stat_read("pinned_pages");
	int fd2 = open(TESSEL_DEVICE, O_RDWR | O_CLOEXEC);

	if (fd2 < 0 || !map_aliases(&a, &b, ALIAS_SEED))
		bail("cannot set up the two-file page");
	check(is_err(protect(&a, 0, MAP_LOW_HALF), 0) &&
		      is_err(protect_with(fd2, &b, 0, MAP_ONLY(3)), 0),
	      "two files: each protects the page, through its own address");
	check(map_is(gfn_of(&a), BOTH_MAP) && grew_by("pinned_pages", pinned, 1),
	      "two files: the page's map is the intersection of both maps, the page pinned once");
	check(writes_obey(&a, BOTH_MAP), "two files: writes to what either protects are denied");
	check(is_err(va_call(fd2, TESSEL_IOC_UNPROTECT_VA, b.va, 0, 0), 0) &&
		      map_is(gfn_of(&a), MAP_LOW_HALF) && writes_obey(&a, MAP_LOW_HALF),
	      "two files: UNPROTECT_VA through one file keeps the other file's protection");
	check(is_err(protect_with(fd2, &b, 0, MAP_ONLY(3)), 0) && close(fd2) == 0 &&
		      map_is(gfn_of(&a), MAP_LOW_HALF) && writes_obey(&a, MAP_LOW_HALF),
	      "two files: closing one file keeps the other file's protection");
	check(is_err(unprotect(&a), 0) && released(gfn_of(&a), pinned) && writes_obey(&a, MAP_ALL),
	      "two files: the last holder's UNPROTECT_VA makes the page writable");
	unmap_aliases(&a, &b);
}

/* One file protects one physical page through two addresses. */
void test_alias(void)
{
	struct test_page a = { 0 }, b = { 0 };
	uint64_t pinned = stat_read("pinned_pages");

	if (!map_aliases(&a, &b, ALIAS_SEED + 1))
		bail("cannot set up the aliased page");
	check(is_err(protect(&a, 0, MAP_LOW_HALF), 0) && is_err(protect(&b, 0, MAP_ONLY(3)), 0) &&
		      map_is(gfn_of(&a), BOTH_MAP) && grew_by("pinned_pages", pinned, 1) &&
		      writes_obey(&a, BOTH_MAP),
	      "alias: one file, two addresses of one page: the map is the intersection");
	check(is_err(spp_set1(gfn_of(&a), MAP_ALL, 0), EBUSY) && map_is(gfn_of(&a), BOTH_MAP) &&
		      writes_obey(&a, BOTH_MAP),
	      "alias: SET_SUBPAGES on a page PROTECT_VA holds is EBUSY and changes nothing");
	check(is_err(unprotect(&b), 0) && map_is(gfn_of(&a), MAP_LOW_HALF) &&
		      writes_obey(&a, MAP_LOW_HALF),
	      "alias: UNPROTECT_VA of one address keeps the other address's protection");
	check(is_err(unprotect(&a), 0) && released(gfn_of(&a), pinned) && writes_obey(&a, MAP_ALL),
	      "alias: UNPROTECT_VA of the other makes the page writable");
	unmap_aliases(&a, &b);
}

/*
 * The child of test_exited: protects a page of its own through g_fd, sends its frame number
 * (0 on failure) and exits. Its own pagemap: g_pagemap is the parent's /proc/self.
 */
static void __attribute__((noreturn)) exiting_child(const int to_parent[2])
{
	int pm = open("/proc/self/pagemap", O_RDONLY);
	uint64_t entry = 0, gfn = 0;
	uint8_t *va;

	close(to_parent[0]);
	va = mmap(NULL, PAGE_BYTES, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (va != MAP_FAILED && pm >= 0) {
		memset(va, 0x5a, PAGE_BYTES);
		if (!va_call(g_fd, TESSEL_IOC_PROTECT_VA, va, 0, MAP_NONE) &&
		    pread(pm, &entry, sizeof(entry), (off_t)((uintptr_t)va / PAGE_BYTES * 8)) == 8 &&
		    (entry >> 63))
			gfn = entry & ((1ull << 55) - 1);
	}
	_exit(write(to_parent[1], &gfn, sizeof(gfn)) == sizeof(gfn) ? 0 : 1);
}

/*
 * A child protects a page of its own through the file it shares with this process, then
 * exits (exec would do the same: the address space the record was made in is gone). Nothing
 * maps the page any more; the next call through the file releases it.
 */
void test_exited(void)
{
	struct test_page other = { 0 };
	uint64_t pinned = stat_read("pinned_pages"), gfn = 0;
	int to_parent[2];
	pid_t pid;
	int status = -1;

	if (pipe(to_parent) || !map_private(&other, NULL, REMAP_SEED + 5))
		bail("cannot set up the exit scenario");
	fflush(stdout);
	pid = fork();
	if (pid == 0)
		exiting_child(to_parent);
	close(to_parent[1]);
	if (pid < 0 || read(to_parent[0], &gfn, sizeof(gfn)) != sizeof(gfn))
		gfn = 0;
	close(to_parent[0]);
	if (pid > 0)
		waitpid(pid, &status, 0);
	diag("the child's page 0x%llx, exit status 0x%x", (unsigned long long)gfn, status);
	check(gfn && map_is(gfn, MAP_NONE) && grew_by("pinned_pages", pinned, 1),
	      "exited: a child protects a page through the file it shares, then exits");
	check(is_err(protect(&other, 0, MAP_NONE), 0) && is_err(unprotect(&other), 0) && gfn &&
		      released(gfn, pinned),
	      "exited: the next call through the file releases the exited process's page");
	munmap(other.va, PAGE_BYTES);
}

/* PROTECT_VA of two pages through fd: the memfd page at `at`, then `at` + 4096. */
static int protect_two(int fd, uint8_t *at, uint32_t map0, uint32_t map1)
{
	union {
		struct tessel_va h;
		uint8_t room[sizeof(struct tessel_va) + 2 * sizeof(uint32_t)];
	} r;
	uint32_t maps[2] = { map0, map1 };

	memset(&r, 0, sizeof(r));
	r.h.addr = (uintptr_t)at;
	r.h.npages = 2;
	memcpy(r.room + sizeof(struct tessel_va), maps, sizeof(maps));
	return ioc(fd, TESSEL_IOC_PROTECT_VA, &r);
}

/*
 * A call that fails on its second page (LOCKed) changes nothing on its first, a page other
 * holders protect: it keeps the intersection of the maps it had, not the map of a page
 * nobody protected (what the old driver put back).
 */
void test_rollback(void)
{
	struct test_page a = { 0 }, b = { 0 }, locked = { 0 };
	struct tessel_range r = { .npages = 1 };
	uint64_t pinned = stat_read("pinned_pages");
	int fd2 = open(TESSEL_DEVICE, O_RDWR | O_CLOEXEC);
	uint8_t *two;

	/* Two adjacent pages: the memfd page (b), then a private page that gets locked. */
	two = mmap(NULL, 2 * PAGE_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		   -1, 0);
	if (fd2 < 0 || two == MAP_FAILED || !map_aliases(&a, &b, ALIAS_SEED + 2) ||
	    munmap(b.va, PAGE_BYTES) ||
	    mremap(a.va, 0, PAGE_BYTES, MREMAP_MAYMOVE | MREMAP_FIXED, two) != two ||
	    !map_private(&locked, two + PAGE_BYTES, REMAP_SEED + 7))
		bail("cannot set up the rollback pages");
	b.va = two;
	memcpy(b.expect, a.expect, PAGE_BYTES);
	(void)*(volatile uint8_t *)b.va; /* the new mapping is empty until touched */
	b.gpa = gpa_of(b.va);
	r.gfn_base = gfn_of(&locked);
	diag("memfd page 0x%llx at %p and %p, locked page 0x%llx", (unsigned long long)gfn_of(&a),
	     (void *)a.va, (void *)b.va, (unsigned long long)r.gfn_base);
	if (b.gpa != a.gpa || ioc(g_fd, TESSEL_IOC_LOCK, &r))
		bail("cannot set up the rollback pages");

	check(is_err(protect(&a, 0, MAP_LOW_HALF), 0) &&
		      is_err(protect_two(fd2, b.va, MAP_NONE, MAP_ONLY(5)), EPERM) &&
		      map_is(gfn_of(&a), MAP_LOW_HALF) && grew_by("pinned_pages", pinned, 1) &&
		      writes_obey(&a, MAP_LOW_HALF),
	      "rollback: a failed call through a second file leaves the first file's map");
	check(is_err(protect_with(fd2, &b, 0, MAP_ONLY(3)), 0) &&
		      is_err(protect_two(fd2, b.va, MAP_NONE, MAP_ONLY(5)), EPERM) &&
		      map_is(gfn_of(&a), BOTH_MAP) && grew_by("pinned_pages", pinned, 1) &&
		      writes_obey(&a, BOTH_MAP),
	      "rollback: a failed call leaves its own file's earlier map");
	check(close(fd2) == 0 && map_is(gfn_of(&a), MAP_LOW_HALF) && is_err(unprotect(&a), 0) &&
		      released(gfn_of(&a), pinned),
	      "rollback: close and UNPROTECT_VA release the page");
	munmap(a.va, PAGE_BYTES);
	munmap(two, 2 * PAGE_BYTES);
}
