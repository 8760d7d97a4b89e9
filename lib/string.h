/* Declarations of the freestanding string functions (lib/string.c, or libc on the host). */
#ifndef LIB_STRING_H
#define LIB_STRING_H
#include <tessel/types.h>
void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
#endif
