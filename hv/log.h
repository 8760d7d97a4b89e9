/*
 * Leveled logging to the serial port with a CPU prefix. Disabled levels are checked at
 * run time, so every call site still type-checks its format (Hafnium's approach). The
 * error level is for hypervisor bugs only; per-exit messages belong at debug level.
 */
#ifndef HV_LOG_H
#define HV_LOG_H

#include <tessel/config.h>
#include <tessel/types.h>

void log_init(u16 port, u32 level);
u32 log_level(void);
void log_msg(u32 level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Print without the level/CPU prefix (for multi-line dumps that already have one). */
void log_raw(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define log_error(...) log_msg(CFG_LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(CFG_LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(CFG_LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(CFG_LOG_DEBUG, __VA_ARGS__)

#endif
