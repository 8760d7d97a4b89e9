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
static inline bool log_enabled(u32 level) { return level <= log_level(); }
void log_msg(u32 level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Print without the level/CPU prefix (for multi-line dumps that already have one). */
void log_raw(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Rate limiting for lines a guest can cause (issue 9: a guest must not be able to flood the
 * serial log, which every CPU serialises on). Each call site owns a struct log_ratelimit:
 * at most LOG_RL_BURST lines per window of LOG_RL_WINDOW_TSC TSC ticks (about a second at
 * a few GHz; the TSC frequency is not needed for a flood bound). Lines over the limit are
 * counted, and the next line the site prints is preceded by "N similar lines suppressed".
 */
#define LOG_RL_BURST 10U
#define LOG_RL_WINDOW_TSC (1ULL << 31)
struct log_ratelimit { u64 window_start; u32 printed; u32 suppressed; };
/* True if this site may print a line now (and prints the suppressed count if any). */
bool log_ratelimit_allow(struct log_ratelimit *rl, u32 level);
void log_ratelimit_reset(struct log_ratelimit *rl);
/* Per-call-site rate-limited logging: log_warn_rl("...", ...) and friends. */
#define log_msg_rl(level, ...) do { \
		static struct log_ratelimit log_rl_site_; \
		if (log_enabled(level) && log_ratelimit_allow(&log_rl_site_, (level))) \
			log_msg((level), __VA_ARGS__); \
	} while (0)
#define log_error_rl(...) log_msg_rl(CFG_LOG_ERROR, __VA_ARGS__)
#define log_warn_rl(...)  log_msg_rl(CFG_LOG_WARN, __VA_ARGS__)
#define log_info_rl(...)  log_msg_rl(CFG_LOG_INFO, __VA_ARGS__)
#define log_debug_rl(...) log_msg_rl(CFG_LOG_DEBUG, __VA_ARGS__)

#define log_error(...) log_msg(CFG_LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(CFG_LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(CFG_LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(CFG_LOG_DEBUG, __VA_ARGS__)

#endif
