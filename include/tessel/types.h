/*
 * Basic types shared by the hypervisor core, the loader and the host unit tests.
 *
 * Addresses are typed: a guest-physical, host-physical and host-virtual address are
 * distinct one-member structs, so passing one where another is expected is a compile
 * error (Hafnium's paddr_t/vaddr_t idea).
 */
#ifndef TESSEL_TYPES_H
#define TESSEL_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;
typedef int8_t s8;
typedef int16_t s16;
typedef int32_t s32;
typedef int64_t s64;

typedef struct { u64 v; } gpa_t; /* guest-physical */
typedef struct { u64 v; } hpa_t; /* host-physical */

static inline gpa_t gpa(u64 v) { return (gpa_t){ v }; }
static inline hpa_t hpa(u64 v) { return (hpa_t){ v }; }

#define PAGE_SHIFT 12
#define PAGE_SIZE (1ULL << PAGE_SHIFT)
#define PAGE_MASK (~(PAGE_SIZE - 1))
#define SZ_1M (1ULL << 20)
#define SZ_2M (1ULL << 21)
#define SZ_1G (1ULL << 30)

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define BIT(n) (1ULL << (n))
#define ALIGN_UP(x, a) (((x) + (a) - 1) & ~((u64)(a) - 1))
#define ALIGN_DOWN(x, a) ((x) & ~((u64)(a) - 1))
#define IS_ALIGNED(x, a) (((x) & ((u64)(a) - 1)) == 0)
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

#define __packed __attribute__((packed))
#define __aligned(n) __attribute__((aligned(n)))
#define __noreturn __attribute__((noreturn))
#define __unused __attribute__((unused))
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

#define BUILD_BUG_ON(c) _Static_assert(!(c), #c)

/* Linux-style errno values used by the hypercall ABI (ABI.md section 2). */
#define EPERM 1
#define EIO 5
#define E2BIG 7
#define ENOMEM 12
#define EFAULT 14
#define ENODEV 19
#define EINVAL 22
#define ENOSYS 38
#define EOPNOTSUPP 95

#endif
