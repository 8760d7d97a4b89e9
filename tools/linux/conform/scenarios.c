// SPDX-License-Identifier: GPL-2.0
/*
 * tessel-conform: the ABI scenarios (INFO, the selftest, maps, TRACK, GET/SET by address,
 * errors, LOCK, wakeups, vCPUs, release).
 */
#include "conform.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define APIC_MMIO_GFN 0xfee00ull          /* the local APIC: MMIO, not RAM */
#define BEYOND_RAM_GFN ((1ull << 36) - 1) /* far above the guest's RAM */
#define GFN_WINDOW_ALIGN 512u             /* 2 MiB */
#define RESERVED_SET_FLAG (1u << 1)
#define NOBODY 65534
#define UNKNOWN_IOCTL _IO(TESSEL_IOC_MAGIC, 0x7f)
#define SHORT_READ 16 /* bytes: less than one event */
#define READER_DELAY_NS 20000000l /* 20 ms */
#define READER_TIMEOUT_S 5
#define SLEEP_POLLS 1000
#define SLEEP_POLL_NS 1000000l /* 1 ms */

void test_info(void)
{
	const uint32_t needed = TESSEL_F_LOCK | TESSEL_F_EVENTS | TESSEL_F_TRACK;
	uint32_t f, spp;
	char mode[32] = "";

	if (!check(is_err(ioc(g_fd, TESSEL_IOC_INFO, &g_info), 0), "INFO succeeds"))
		bail("no INFO from the driver");
	f = g_info.features;
	spp = f & (TESSEL_F_SPP_HW | TESSEL_F_SPP_SW);
	diag("version 0x%08x features 0x%x max_pages %u vector 0x%x ring_capacity %u",
	     g_info.version, f, g_info.max_pages, g_info.vector, g_info.ring_capacity);
	check(g_info.version == TESSEL_ABI_VERSION, "INFO: ABI version 1.1");
	check(spp == TESSEL_F_SPP_HW || spp == TESSEL_F_SPP_SW,
	      "INFO: exactly one of SPP_HW and SPP_SW");
	check((f & needed) == needed, "INFO: LOCK, EVENTS and TRACK available");
	check(g_info.max_pages >= TESSEL_MIN_MAX_PAGES, "INFO: at least 512 pages per call");
	check(g_info.vector != 0 && g_info.ring_capacity > 0, "INFO: event vector and ring");
	sysfs_read("mode", mode, sizeof(mode));
	diag("mode: %s", mode);
	check(!strcmp(mode, spp == TESSEL_F_SPP_HW ? "hardware" : "software"),
	      "sysfs mode agrees with the feature flags");

	g_req = calloc(1, sizeof(*g_req) + ((size_t)g_info.max_pages + 1) * sizeof(uint32_t));
	if (!g_req)
		bail("out of memory");
}

/* Where the selftest writes into sub-page j: 4-byte aligned, moving through the sub-page. */
static unsigned selftest_offset(unsigned j)
{
	return j * SUBPAGE + (j * 12) % (SUBPAGE - 4);
}

/* The KVM SPP selftest (a write into each protected sub-page), plus memory and counters. */
void test_selftest(void)
{
	struct test_page *tp = fresh_page();
	struct pollfd pfd = { .fd = g_fd, .events = POLLIN };
	uint64_t rip[SUBPAGES], denied;
	bool ok;

	ev_reset();
	check(is_err(protect(tp, 0, MAP_NONE), 0) && map_is(gfn_of(tp), MAP_NONE),
	      "selftest: protect every sub-page of a page");
	denied = stat_read("spp_denied");
	for (unsigned j = 0; j < SUBPAGES; j++)
		rip[j] = probe(tp, selftest_offset(j), 4, MAP_NONE);
	check(grew_by("spp_denied", denied, SUBPAGES),
	      "selftest: spp_denied counts each denied write");
	check(page_matches(tp), "selftest: denied writes change no byte");
	ok = check(ev_count_is(SUBPAGES), "selftest: one event per denied write");
	for (unsigned j = 0; ok && j < SUBPAGES; j++) {
		ok = ev_is(&g_ev.e[j], TESSEL_EV_DENIED, tp, selftest_offset(j), 4);
		if (ok && g_ev.e[j].rip != rip[j]) {
			diag("event %u: rip 0x%llx, expected 0x%llx", j,
			     (unsigned long long)g_ev.e[j].rip, (unsigned long long)rip[j]);
			ok = false;
		}
	}
	check(ok, "selftest: events are DENIED, in order, with each write's gpa, gla, rip, size");

	check(is_err(unprotect(tp), 0) && map_is(gfn_of(tp), MAP_ALL),
	      "selftest: unprotect the page");
	ev_reset();
	denied = stat_read("spp_denied");
	for (unsigned j = 0; j < SUBPAGES; j++)
		probe(tp, selftest_offset(j), 4, MAP_ALL);
	check(page_matches(tp), "selftest: writes land after unprotect");
	check(ev_count_is(0) && poll(&pfd, 1, 0) == 0, "selftest: no events after unprotect");
	check(grew_by("spp_denied", denied, 0), "selftest: spp_denied unchanged after unprotect");
}

/* Runs of protected and writable sub-pages, an 8-byte write in the middle of each. */
void test_mixed(void)
{
	const unsigned mid = SUBPAGE / 2 - 4;
	struct test_page *tp = fresh_page();
	unsigned k = 0;
	bool ok;

	ev_reset();
	check(is_err(protect(tp, 0, MAP_MIXED), 0), "mixed map: protect");
	for (unsigned j = 0; j < SUBPAGES; j++)
		probe(tp, j * SUBPAGE + mid, 8, MAP_MIXED);
	check(subpages_match(tp, ~MAP_MIXED), "mixed map: protected sub-pages unchanged");
	check(subpages_match(tp, MAP_MIXED), "mixed map: writable sub-pages hold the writes");
	ok = ev_count_is((unsigned)__builtin_popcount(~MAP_MIXED));
	for (unsigned j = 0; ok && j < SUBPAGES; j++)
		if (!(MAP_MIXED & (1u << j)))
			ok = ev_is(&g_ev.e[k++], TESSEL_EV_DENIED, tp, j * SUBPAGE + mid, 8);
	check(ok, "mixed map: one DENIED event per protected sub-page, none for writable ones");
	check(is_err(unprotect(tp), 0), "mixed map: unprotect");
}

/* 1-, 2-, 4- and 8-byte writes at the start, middle and end of a protected sub-page. */
void test_widths(void)
{
	enum { WIDTHS = 4, PLACES = 3 };
	const unsigned sp = 5, width[WIDTHS] = { 1, 2, 4, 8 };
	struct test_page *tp = fresh_page();
	unsigned off[WIDTHS * PLACES];
	bool ok;

	ev_reset();
	check(is_err(protect(tp, 0, MAP_ONLY(sp)), 0), "widths: protect one sub-page");
	for (unsigned i = 0; i < WIDTHS * PLACES; i++) {
		const unsigned w = width[i / PLACES];
		const unsigned at[PLACES] = { 0, SUBPAGE / 2, SUBPAGE - w };

		off[i] = sp * SUBPAGE + at[i % PLACES];
		probe(tp, off[i], w, MAP_ONLY(sp));
	}
	check(page_matches(tp), "widths: memory unchanged");
	ok = check(ev_count_is(WIDTHS * PLACES), "widths: one event per write");
	for (unsigned i = 0; ok && i < WIDTHS * PLACES; i++)
		ok = ev_is(&g_ev.e[i], TESSEL_EV_DENIED, tp, off[i], width[i / PLACES]);
	check(ok, "widths: each event has the address and size of its write");
	check(is_err(unprotect(tp), 0), "widths: unprotect");
}

/* An 8-byte write whose first 4 bytes are protected and whose last 4 are writable. */
void test_straddle(void)
{
	const unsigned sp = 9, off = (sp + 1) * SUBPAGE - 4;
	struct test_page *tp = fresh_page();

	ev_reset();
	check(is_err(protect(tp, 0, MAP_ONLY(sp)), 0), "straddle: protect one sub-page");
	probe(tp, off, 8, MAP_ONLY(sp));
	check(bytes_match(tp, off, 4), "straddle: protected bytes kept");
	check(bytes_match(tp, off + 4, 4), "straddle: writable bytes written");
	check(ev_only(TESSEL_EV_DENIED, tp, off, 4),
	      "straddle: one DENIED event for the 4 protected bytes");
	check(is_err(unprotect(tp), 0), "straddle: unprotect");
}

/* TRACK: writes to protected sub-pages land and are reported, every time. */
void test_track(void)
{
	const unsigned off = 200;
	struct test_page *tp = fresh_page();
	uint64_t denied, tracked;

	ev_reset();
	check(is_err(protect(tp, TESSEL_SUBPAGE_TRACK, MAP_NONE), 0), "track: protect with TRACK");
	denied = stat_read("spp_denied");
	tracked = stat_read("spp_tracked");
	probe(tp, off, 4, MAP_ALL);
	check(page_matches(tp), "track: the write lands");
	check(ev_only(TESSEL_EV_TRACKED, tp, off, 4), "track: one TRACKED event");
	ev_reset();
	probe(tp, off, 4, MAP_ALL);
	check(page_matches(tp) && ev_only(TESSEL_EV_TRACKED, tp, off, 4),
	      "track: a second write lands and is reported again");
	check(grew_by("spp_denied", denied, 0) && grew_by("spp_tracked", tracked, 2),
	      "track: spp_tracked counts both writes, spp_denied none");
	check(is_err(unprotect(tp), 0), "track: unprotect");
}

/*
 * `want` pages from gfn rounded down to 2 MiB, moved (and shortened if need be) to lie in
 * the "System RAM" range of /proc/iomem that holds gfn. Returns the page count.
 */
static uint32_t ram_window(uint64_t gfn, uint32_t want, uint64_t *base)
{
	FILE *f = fopen("/proc/iomem", "r");
	unsigned long long s, e;
	uint64_t first = 0, last = 0;
	char line[256], name[64];

	*base = gfn & ~(uint64_t)(GFN_WINDOW_ALIGN - 1);
	while (f && !last && fgets(line, sizeof(line), f))
		if (line[0] != ' ' && sscanf(line, "%llx-%llx : %63[^\n]", &s, &e, name) == 3 &&
		    !strcmp(name, "System RAM") && s / PAGE_BYTES <= gfn && gfn <= e / PAGE_BYTES) {
			first = (s + PAGE_BYTES - 1) / PAGE_BYTES;
			last = (e + 1) / PAGE_BYTES - 1;
		}
	if (f)
		fclose(f);
	if (!last) {
		diag("gfn 0x%llx: not System RAM in /proc/iomem", (unsigned long long)gfn);
		return want;
	}
	if (last - first + 1 < want)
		want = (uint32_t)(last - first + 1);
	if (*base < first)
		*base = first;
	if (*base + want - 1 > last)
		*base = last + 1 - want;
	return want;
}

/* GET and SET by guest-physical address, on a page that is only mlocked. */
void test_gpa(void)
{
	const unsigned low = 1000, high = 3000; /* in sub-pages 7 and 23 */
	struct test_page *tp = fresh_page();
	uint32_t n, bad = 0, *maps;
	uint64_t base;
	int err;

	ev_reset();
	check(is_err(spp_set1(gfn_of(tp), MAP_LOW_HALF, 0), 0) && map_is(gfn_of(tp), MAP_LOW_HALF),
	      "gpa: SET a map, GET returns it");
	probe(tp, high, 4, MAP_LOW_HALF);
	check(page_matches(tp) && ev_only(TESSEL_EV_DENIED, tp, high, 4),
	      "gpa: a write to the protected half is denied");
	ev_reset();
	probe(tp, low, 4, MAP_LOW_HALF);
	check(page_matches(tp) && ev_count_is(0), "gpa: a write to the writable half lands");
	check(is_err(spp_set1(gfn_of(tp), MAP_ALL, 0), 0) && map_is(gfn_of(tp), MAP_ALL),
	      "gpa: SET all-writable, GET returns it");
	probe(tp, high, 4, MAP_ALL);
	check(page_matches(tp) && ev_count_is(0), "gpa: writes land once unprotected");

	n = ram_window(gfn_of(tp), g_info.max_pages, &base);
	diag("GET of %u pages from gfn 0x%llx", n, (unsigned long long)base);
	maps = calloc(n, sizeof(*maps));
	err = maps ? spp_call(TESSEL_IOC_GET_SUBPAGES, base, n, 0, maps) : ENOMEM;
	check(is_err(err, 0), "gpa: GET of max_pages pages succeeds");
	for (uint32_t i = 0; !err && i < n; i++)
		if (maps[i] != MAP_ALL && !bad++)
			diag("gfn 0x%llx: map 0x%08x", (unsigned long long)(base + i), maps[i]);
	check(!err && bad == 0, "gpa: every page of the range is unprotected");
	free(maps);
}

static bool child_exited_0(pid_t pid)
{
	int status = -1;

	if (pid > 0)
		waitpid(pid, &status, 0);
	if (pid <= 0 || !WIFEXITED(status) || WEXITSTATUS(status))
		diag("child: pid %d status 0x%x", (int)pid, status);
	return pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* An unprivileged process cannot open the device. */
static bool unprivileged_open_fails(void)
{
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		if (setgroups(0, NULL) || setgid(NOBODY) || setuid(NOBODY))
			_exit(2);
		if (open(TESSEL_DEVICE, O_RDWR) >= 0)
			_exit(1);
		_exit(errno == EACCES || errno == EPERM ? 0 : 3);
	}
	return child_exited_0(pid);
}

/* Error paths: each one's errno, and after each the witness page's map unchanged. */
void test_errors(void)
{
	struct test_page *w = fresh_page(), *plain = fresh_page();
	const uint64_t wgfn = gfn_of(w);
	const unsigned denied_off = 4 * SUBPAGE; /* protected in MAP_WITNESS */
	const size_t nmaps = (size_t)g_info.max_pages + 1;
	uint32_t *maps = calloc(nmaps, sizeof(*maps));
	struct tessel_event_entry ev;
	uint64_t pinned;
	void *ro;
	int err;

	if (!maps)
		bail("out of memory");
	/* maps[0] is the witness's: a SET that wrongly succeeds protects all of it. */
	for (size_t i = 1; i < nmaps; i++)
		maps[i] = MAP_ALL;
	ev_reset();
	check(is_err(protect(w, 0, MAP_WITNESS), 0) && map_is(wgfn, MAP_WITNESS),
	      "errors: protect a witness page");
	check(is_err(spp_call(TESSEL_IOC_SET_SUBPAGES, wgfn, 0, 0, maps), EINVAL) &&
		      map_is(wgfn, MAP_WITNESS),
	      "errors: SET of 0 pages is EINVAL");
	check(is_err(spp_call(TESSEL_IOC_SET_SUBPAGES, wgfn, (uint32_t)nmaps, 0, maps), E2BIG) &&
		      map_is(wgfn, MAP_WITNESS),
	      "errors: SET of max_pages + 1 pages is E2BIG");
	check(is_err(spp_set1(wgfn, MAP_NONE, RESERVED_SET_FLAG), EINVAL) &&
		      map_is(wgfn, MAP_WITNESS),
	      "errors: SET with a reserved flag is EINVAL");
	check(is_err(spp_call(TESSEL_IOC_GET_SUBPAGES, wgfn, 1, 1, maps), EINVAL) &&
		      map_is(wgfn, MAP_WITNESS),
	      "errors: GET with a flag is EINVAL");
	check(is_err(spp_set1(APIC_MMIO_GFN, MAP_NONE, 0), EINVAL) && map_is(wgfn, MAP_WITNESS),
	      "errors: SET on the local APIC page is EINVAL");
	check(is_err(spp_set1(BEYOND_RAM_GFN, MAP_NONE, 0), EINVAL) && map_is(wgfn, MAP_WITNESS),
	      "errors: SET beyond RAM is EINVAL");
	check(is_err(ioc(g_fd, TESSEL_IOC_SET_SUBPAGES, NULL), EFAULT) &&
		      is_err(ioc(g_fd, TESSEL_IOC_GET_SUBPAGES, NULL), EFAULT) &&
		      is_err(ioc(g_fd, TESSEL_IOC_PROTECT_VA, NULL), EFAULT) &&
		      is_err(ioc(g_fd, TESSEL_IOC_INFO, NULL), EFAULT) && map_is(wgfn, MAP_WITNESS),
	      "errors: a NULL argument is EFAULT");

	pinned = stat_read("pinned_pages");
	err = va_call(g_fd, TESSEL_IOC_PROTECT_VA, plain->va + SUBPAGE, 0, MAP_NONE);
	check(is_err(err, EINVAL) && map_is(gfn_of(plain), MAP_ALL) &&
		      grew_by("pinned_pages", pinned, 0),
	      "errors: PROTECT_VA of an unaligned address is EINVAL");
	ro = mmap(NULL, PAGE_BYTES, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	err = ro == MAP_FAILED ? errno : va_call(g_fd, TESSEL_IOC_PROTECT_VA, ro, 0, MAP_NONE);
	check(is_err(err, EFAULT) && grew_by("pinned_pages", pinned, 0),
	      "errors: PROTECT_VA of read-only memory is EFAULT");
	if (ro != MAP_FAILED)
		munmap(ro, PAGE_BYTES);
	check(is_err(unprotect(plain), ENOENT) && map_is(wgfn, MAP_WITNESS),
	      "errors: UNPROTECT_VA of a page this file did not protect is ENOENT");
	check(is_err(ioc(g_fd, UNKNOWN_IOCTL, NULL), ENOTTY) && map_is(wgfn, MAP_WITNESS),
	      "errors: an unknown ioctl is ENOTTY");
	err = read(g_nbfd, &ev, sizeof(ev)) < 0 ? errno : 0;
	check(is_err(err, EAGAIN), "errors: a non-blocking read with no events is EAGAIN");

	/* With an event pending, so that neither EAGAIN nor blocking can hide the size check. */
	store(w->va + denied_off, new_value(w, denied_off, 4), 4);
	err = read(g_nbfd, &ev, SHORT_READ) < 0 ? errno : 0;
	ev_collect(&g_ev);
	check(is_err(err, EINVAL) && ev_only(TESSEL_EV_DENIED, w, denied_off, 4) && page_matches(w),
	      "errors: read() into 16 bytes is EINVAL and consumes nothing");
	check(unprivileged_open_fails(), "errors: opening the device without privilege fails");
	check(is_err(unprotect(w), 0), "errors: unprotect the witness page");
	free(maps);
}

/* LOCK freezes a page's permissions. */
void test_lock(void)
{
	struct test_page *tp = fresh_page(), *other = fresh_page();
	struct tessel_range r = { .gfn_base = gfn_of(tp), .npages = 1 };
	uint64_t pinned;

	ev_reset();
	check(is_err(ioc(g_fd, TESSEL_IOC_LOCK, &r), 0), "lock: LOCK an unprotected page");
	check(is_err(spp_set1(gfn_of(tp), MAP_ONLY(31), 0), EPERM) && map_is(gfn_of(tp), MAP_ALL),
	      "lock: SET on a locked page is EPERM");
	pinned = stat_read("pinned_pages");
	check(is_err(protect(tp, 0, MAP_ONLY(31)), EPERM) && map_is(gfn_of(tp), MAP_ALL) &&
		      grew_by("pinned_pages", pinned, 0),
	      "lock: PROTECT_VA of a locked page is EPERM and pins nothing");
	check(is_err(ioc(g_fd, TESSEL_IOC_LOCK, &r), 0), "lock: locking again succeeds");
	check(map_is(gfn_of(tp), MAP_ALL), "lock: GET shows the page unprotected");
	probe(tp, PAGE_BYTES - 4, 4, MAP_ALL);
	check(page_matches(tp) && ev_count_is(0), "lock: writes to the locked page land");
	r.gfn_base = gfn_of(other);
	r.flags = 1;
	check(is_err(ioc(g_fd, TESSEL_IOC_LOCK, &r), EINVAL) &&
		      is_err(spp_set1(gfn_of(other), MAP_ALL, 0), 0),
	      "lock: LOCK with a flag is EINVAL and locks nothing");
}

struct reader {
	volatile pid_t tid;
	ssize_t ret;
	int err;
	struct tessel_event_entry e[8];
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;

	r->tid = (pid_t)syscall(SYS_gettid);
	r->ret = read(g_fd, r->e, sizeof(r->e));
	r->err = errno;
	return NULL;
}

/* Waits, a while at most, until thread tid sleeps (in its read()). */
static void wait_until_sleeping(pid_t tid)
{
	char path[64], buf[256], *s;
	int fd;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)tid);
	for (int tries = 0; tries < SLEEP_POLLS; tries++) {
		ssize_t n = -1;

		fd = open(path, O_RDONLY);
		if (fd >= 0) {
			n = read(fd, buf, sizeof(buf) - 1);
			close(fd);
		}
		buf[n > 0 ? n : 0] = 0;
		s = strrchr(buf, ')'); /* "tid (comm) state ..." */
		if (s && s[1] == ' ' && s[2] == 'S')
			return;
		nanosleep(&(struct timespec){ .tv_nsec = SLEEP_POLL_NS }, NULL);
	}
	diag("the reader thread never slept");
}

/* One denied write at tp + off while another thread is blocked in read(). */
static bool blocked_reader_wakes(struct test_page *tp, unsigned off)
{
	struct reader r = { .tid = 0, .ret = -1 };
	struct timespec deadline;
	pthread_t th;

	if (pthread_create(&th, NULL, reader_main, &r)) {
		diag("pthread_create failed");
		return false;
	}
	while (!r.tid)
		sched_yield();
	wait_until_sleeping(r.tid);
	nanosleep(&(struct timespec){ .tv_nsec = READER_DELAY_NS }, NULL);
	store(tp->va + off, new_value(tp, off, 4), 4);
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += READER_TIMEOUT_S;
	if (pthread_timedjoin_np(th, NULL, &deadline)) {
		diag("the reader did not wake up; interrupting it");
		pthread_kill(th, SIGUSR1);
		pthread_join(th, NULL);
	}
	if (r.ret != (ssize_t)sizeof(r.e[0])) {
		diag("reader: read() returned %zd (%s)", r.ret, r.ret < 0 ? strerror(r.err) : "");
		return false;
	}
	return ev_is(&r.e[0], TESSEL_EV_DENIED, tp, off, 4);
}

/* poll() and a blocked read() see events; the event interrupt wakes the reader. */
void test_wakeup(void)
{
	const unsigned off = 1232;
	struct test_page *tp = fresh_page();
	struct pollfd pfd = { .fd = g_fd, .events = POLLIN };
	uint64_t irqs;

	ev_reset();
	check(is_err(protect(tp, 0, MAP_NONE), 0), "wakeup: protect a page");
	check(poll(&pfd, 1, 0) == 0, "wakeup: poll() is quiet with no events");
	store(tp->va + off, new_value(tp, off, 4), 4);
	check(poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLIN),
	      "wakeup: poll() reports POLLIN after a denied write");
	ev_collect(&g_ev);
	check(ev_only(TESSEL_EV_DENIED, tp, off, 4) && page_matches(tp),
	      "wakeup: the event is the denied write");
	irqs = stat_read("interrupts");
	check(blocked_reader_wakes(tp, off + SUBPAGE) && page_matches(tp),
	      "wakeup: a blocked reader wakes with exactly the one event");
	check(grew("interrupts", irqs, 1, UINT64_MAX), "wakeup: the event interrupt arrived");
	check(is_err(unprotect(tp), 0), "wakeup: unprotect");
}

/* The APIC ID of processor `cpu` in /proc/cpuinfo, or -1. */
static int apic_id_of(int cpu)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[256];
	int cur = -1, id = -1, v;

	while (f && id < 0 && fgets(line, sizeof(line), f))
		if (sscanf(line, "processor : %d", &v) == 1)
			cur = v;
		else if (cur == cpu && sscanf(line, "apicid : %d", &v) == 1)
			id = v;
	if (f)
		fclose(f);
	return id;
}

/* A denied write from each vCPU names that vCPU. */
void test_vcpus(void)
{
	struct test_page *tp = fresh_page();
	int apic[2];
	bool pinned = true, ok;

	ev_reset();
	check(is_err(protect(tp, 0, MAP_NONE), 0), "vcpus: protect a page");
	for (int cpu = 0; cpu < 2; cpu++) {
		apic[cpu] = apic_id_of(cpu);
		diag("CPU %d: APIC ID %d", cpu, apic[cpu]);
		pinned &= pin_cpu(cpu);
		probe(tp, (unsigned)cpu * SUBPAGE, 4, MAP_NONE);
	}
	pin_cpu(0);
	check(pinned && page_matches(tp), "vcpus: a denied write on each vCPU changes nothing");
	ok = pinned && ev_count_is(2);
	for (unsigned i = 0; ok && i < 2; i++) {
		ok = ev_is(&g_ev.e[i], TESSEL_EV_DENIED, tp, i * SUBPAGE, 4);
		if (ok && g_ev.e[i].vcpu != (uint32_t)apic[i]) {
			diag("event %u: vcpu %u, expected %d", i, g_ev.e[i].vcpu, apic[i]);
			ok = false;
		}
	}
	check(ok, "vcpus: each event names the APIC ID of the writing vCPU");
	check(apic[0] >= 0 && apic[1] >= 0 && apic[0] != apic[1],
	      "vcpus: the two vCPUs have different APIC IDs");
	check(is_err(unprotect(tp), 0), "vcpus: unprotect");
}

/*
 * A child protects the shared page through a file of its own, reports on `report`, waits
 * for `go` to close and exits without closing the file.
 */
static void __attribute__((noreturn)) protecting_child(void *page, int report, int go)
{
	int fd = open(TESSEL_DEVICE, O_RDWR);
	char st = fd >= 0 && !va_call(fd, TESSEL_IOC_PROTECT_VA, page, 0, MAP_NONE) ? 0 : 1;

	if (write(report, &st, 1) != 1 || read(go, &st, 1) < 0)
		_exit(2);
	_exit(0);
}

/* Closing a file, or the exit of the process that owns it, removes its protection. */
void test_release(void)
{
	struct test_page *tp = fresh_page(), shared = { 0 };
	uint64_t pinned = stat_read("pinned_pages");
	int fd2 = open(TESSEL_DEVICE, O_RDWR | O_CLOEXEC);
	int to_child[2], to_parent[2];
	char st = 1;
	pid_t pid;

	ev_reset();
	check(fd2 >= 0 && is_err(protect_with(fd2, tp, 0, MAP_NONE), 0) &&
		      map_is(gfn_of(tp), MAP_NONE) && grew_by("pinned_pages", pinned, 1),
	      "release: a second file protects a page");
	if (fd2 >= 0)
		close(fd2);
	check(map_is(gfn_of(tp), MAP_ALL) && grew_by("pinned_pages", pinned, 0),
	      "release: closing the file unprotects and unpins the page");
	probe(tp, SUBPAGE / 2, 4, MAP_ALL);
	check(page_matches(tp) && ev_count_is(0), "release: writes land after close");

	shared.va = mmap(NULL, PAGE_BYTES, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (shared.va == MAP_FAILED || mlock(shared.va, PAGE_BYTES) || pipe(to_child) ||
	    pipe(to_parent))
		bail("cannot set up the shared page");
	fill_pattern(&shared, ARENA_PAGES * 31 + 1);
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		close(to_parent[0]);
		close(to_child[1]);
		protecting_child(shared.va, to_parent[1], to_child[0]);
	}
	close(to_parent[1]);
	close(to_child[0]);
	if (pid < 0 || read(to_parent[0], &st, 1) != 1)
		st = 1;
	shared.gpa = gpa_of(shared.va); /* after the child's pin, which may move it */
	check(st == 0 && map_is(gfn_of(&shared), MAP_NONE) && grew_by("pinned_pages", pinned, 1),
	      "release: a child process protects a shared page");
	probe(&shared, 2 * SUBPAGE, 4, MAP_NONE);
	check(page_matches(&shared) && ev_only(TESSEL_EV_DENIED, &shared, 2 * SUBPAGE, 4),
	      "release: the child's protection holds for the parent");
	close(to_child[1]);
	check(child_exited_0(pid) && map_is(gfn_of(&shared), MAP_ALL) &&
		      grew_by("pinned_pages", pinned, 0),
	      "release: the child's exit unprotects and unpins the page");
	close(to_parent[0]);
	ev_reset();
	probe(&shared, 2 * SUBPAGE, 4, MAP_ALL);
	check(page_matches(&shared) && ev_count_is(0),
	      "release: writes land after the child exits");
	munmap(shared.va, PAGE_BYTES);
}
