/*
 * tesselctl_parse.h: the pure half of tesselctl (tools/tesselctl.c): command-line parsing,
 * number and map syntax, the protect arithmetic and every piece of text the tool prints
 * (usage, status names, feature names, counter names, map pictures). Freestanding C11: no
 * libc, no UEFI, only lib/fmt.c, so the host unit test (tests/unit/test_tesselctl.c) checks
 * exactly what runs in the firmware.
 */
#ifndef TESSELCTL_PARSE_H
#define TESSELCTL_PARSE_H

#include <stddef.h>
#include <stdint.h>

#define TC_ERR_MAX 192  /* enough for every one-line error message */
#define TC_LINE_MAX 96  /* a `get` line */
#define TC_ARG_SHOW 40  /* longer arguments are shortened ("...") in error messages */

enum tc_op {
	TC_HELP,     /* `tesselctl` or `tesselctl help` */
	TC_INFO,
	TC_STATS,
	TC_GET,
	TC_SET,
	TC_LOCK,
	TC_PROTECT,
	TC_SELFTEST,
};

struct tc_cmd {
	enum tc_op op;
	uint64_t gpa;   /* get, set, lock, protect */
	uint64_t pages; /* get, set, lock: 1..max_pages */
	uint64_t len;   /* protect: bytes, >= 1 */
	uint32_t map;   /* set */
	uint32_t flags; /* set: 0 or TESSEL_SPP_TRACK */
};

/* Results of the number parsers. */
enum tc_num {
	TC_NUM_OK,
	TC_NUM_EMPTY,    /* "" or a bare "0x" */
	TC_NUM_JUNK,     /* a character that is not a digit of the base */
	TC_NUM_OVERFLOW, /* does not fit (64 bits; 32 for a map) */
};

/*
 * Parses the arguments after the program name (argv[1..argc-1]). max_pages bounds page
 * counts (HC_QUERY / CPUID 0x40000001 ECX). Returns 0 with *cmd filled, or -1 with a one-line
 * message (no newline) in err, naming the command and argument, e.g.
 * "tesselctl: set: <pages>: '0' is not a page count (1-512)".
 */
int tc_parse_args(int argc, const char *const *argv, uint64_t max_pages, struct tc_cmd *cmd, char *err,
		  size_t errsz);

/* Unsigned number: "0x"/"0X" + hex digits, or decimal digits. Nothing else (no sign, no spaces). */
enum tc_num tc_parse_u64(const char *s, uint64_t *out);
/* Map: hex with or without 0x (at most 32 bits), or "all" (0xffffffff) / "none" (0). */
enum tc_num tc_parse_map(const char *s, uint32_t *out);

/* CHAR16 (UCS-2) to ASCII; anything outside 0x20-0x7e becomes '?'. Writes at most outsz-1
 * characters and a NUL; returns the source length (>= outsz means it was cut). */
size_t tc_narrow(const uint16_t *w, char *out, size_t outsz);

/* The protect arithmetic. [gpa, gpa+len) with len >= 1 and gpa+len-1 not overflowing. */
uint64_t tc_span_pages(uint64_t gpa, uint64_t len);
/* Bits of the sub-pages of the page at page_gpa (4 KiB aligned) that [gpa, gpa+len) touches. */
uint32_t tc_covered_bits(uint64_t gpa, uint64_t len, uint64_t page_gpa);
/* The page's new map: `old` with those sub-pages protected as well. */
uint32_t tc_protect_map(uint32_t old, uint64_t gpa, uint64_t len, uint64_t page_gpa);

/* 32 characters + NUL: '.' writable, 'P' protected, sub-page 0 first. */
void tc_picture(uint32_t map, char out[33]);
/* "0x0000000012345000  0xffff0000  PPPPPPPPPPPPPPPP................" */
int tc_map_line(uint64_t page_gpa, uint32_t map, char *buf, size_t n);

/* Hypercalls, for status meanings. */
enum tc_call { TC_CALL_QUERY, TC_CALL_SET, TC_CALL_GET, TC_CALL_LOCK, TC_CALL_STATS };
/* "-EPERM" for -1 etc.; NULL for a value that is not an ABI status. */
const char *tc_errno_name(int64_t st);
/* What the ABI says a status means for `call` ("a page is locked"); never NULL. */
const char *tc_errno_meaning(enum tc_call call, int64_t st);
/* "0 (OK)", "-EPERM (a page is locked)", "-99 (not an ABI status)". */
int tc_status_str(enum tc_call call, int64_t st, char *buf, size_t n);

/* "SPP_HW LOCK EVENTS TRACK", "none", unknown bits as "bit5". */
int tc_flags_str(uint32_t flags, char *buf, size_t n);
/* HC_STATS counter i (ABI.md section 3 order); NULL beyond the 11 of ABI 1.0. */
const char *tc_stat_name(unsigned i);

/* The usage text (several lines, each ending in '\n'). */
const char *tc_usage(void);

#endif
