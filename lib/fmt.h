/* A small freestanding vsnprintf: %d %i %u %x %X %p %s %c %%, flags '-' '0', width, l/ll/z. */
#ifndef LIB_FMT_H
#define LIB_FMT_H

#include <stdarg.h>
#include <tessel/types.h>

int fmt_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int fmt_snprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
