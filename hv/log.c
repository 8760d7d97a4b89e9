/*
 * Serial logging for the core. One lock serialises whole lines across CPUs. Lines are
 * "[cpuN] L: text" with L one of E W I D.
 */
#include <stdarg.h>
#include <tessel/spinlock.h>
#include "drivers/uart.h"
#include "lib/fmt.h"
#include "log.h"
#include "percpu.h"

static u16 log_port = UART_COM1;
static u32 log_lvl = CFG_LOG_INFO;
static spinlock_t log_lock = SPINLOCK_INIT;

void log_init(u16 port, u32 level)
{
	log_port = port;
	log_lvl = level;
}

u32 log_level(void) { return log_lvl; }

static void log_vmsg(u32 level, bool prefix, const char *fmt, va_list ap)
{
	static const char tag[] = "EWID";
	char buf[256];
	int n = 0;
	if (prefix) {
		int cpu = percpu_current_index();
		if (cpu >= 0)
			n = fmt_snprintf(buf, sizeof(buf), "[cpu%d] %c: ", cpu, tag[level & 3]);
		else
			n = fmt_snprintf(buf, sizeof(buf), "[tessel] %c: ", tag[level & 3]);
	}
	fmt_vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
	size_t len = 0;
	while (buf[len])
		len++;
	spin_lock(&log_lock);
	uart_write(log_port, buf, len);
	if (prefix && (len == 0 || buf[len - 1] != '\n'))
		uart_putc(log_port, '\n');
	spin_unlock(&log_lock);
}

void log_msg(u32 level, const char *fmt, ...)
{
	if (level > log_lvl)
		return;
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(level, true, fmt, ap);
	va_end(ap);
}

void log_raw(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(CFG_LOG_ERROR, false, fmt, ap);
	va_end(ap);
}

static spinlock_t rl_lock = SPINLOCK_INIT;

bool log_ratelimit_allow(struct log_ratelimit *rl, u32 level)
{
	u64 now = rdtsc();
	u32 suppressed = 0;
	bool ok;
	spin_lock(&rl_lock);
	if (!rl->window_start || now - rl->window_start >= LOG_RL_WINDOW_TSC) {
		rl->window_start = now ? now : 1;
		rl->printed = 0;
	}
	ok = rl->printed < LOG_RL_BURST;
	if (ok) {
		rl->printed++;
		suppressed = rl->suppressed;
		rl->suppressed = 0;
	} else if (rl->suppressed != ~0U) {
		rl->suppressed++;
	}
	spin_unlock(&rl_lock);
	if (suppressed)
		log_msg(level, "(%u similar lines suppressed)", suppressed);
	return ok;
}

void log_ratelimit_reset(struct log_ratelimit *rl)
{
	spin_lock(&rl_lock);
	*rl = (struct log_ratelimit){ 0 };
	spin_unlock(&rl_lock);
}
