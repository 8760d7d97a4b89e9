/*
 * The C library functions GCC may emit calls to in freestanding code (memcpy, memset,
 * memmove, memcmp), plus strlen. Built only into the hypervisor core and guest programs;
 * host unit tests use the C library's.
 */
#include <tessel/types.h>

void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);

void *memcpy(void *dst, const void *src, size_t n)
{
	u8 *d = dst;
	const u8 *s = src;
	for (; n >= 8; n -= 8, d += 8, s += 8) {
		u64 w;
		__builtin_memcpy(&w, s, 8); /* an 8-byte move; never a call with -O2 */
		__builtin_memcpy(d, &w, 8);
	}
	while (n--)
		*d++ = *s++;
	return dst;
}

void *memmove(void *dst, const void *src, size_t n)
{
	u8 *d = dst;
	const u8 *s = src;
	if (d < s) {
		while (n--)
			*d++ = *s++;
	} else {
		while (n--)
			d[n] = s[n];
	}
	return dst;
}

void *memset(void *dst, int c, size_t n)
{
	u8 *d = dst;
	u64 w = 0x0101010101010101ULL * (u8)c;
	for (; n >= 8; n -= 8, d += 8)
		__builtin_memcpy(d, &w, 8);
	while (n--)
		*d++ = (u8)c;
	return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const u8 *x = a, *y = b;
	for (; n; n--, x++, y++)
		if (*x != *y)
			return *x - *y;
	return 0;
}

size_t strlen(const char *s)
{
	size_t n = 0;
	while (s[n])
		n++;
	return n;
}
