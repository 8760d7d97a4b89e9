/*
 * tap.c: TAP 13 reporting on COM1 ("1..N", "ok N - desc", "not ok N - desc", "# diag",
 * "Bail out! reason"). Each line is formatted first and written in one burst, starting on a
 * fresh line, so firmware console output (OVMF mirrors ConOut to COM1) or hypervisor log
 * lines cannot end up in the middle of a TAP line. Nothing is printed on ConOut: the
 * firmware's serial terminal would duplicate every line.
 */
#include "guest.h"
#include <lib/fmt.h>

static int planned = -1;
static int count;
static int failed;

static void tap_line(const char *prefix, const char *fmt, va_list ap)
{
	char buf[600];
	int n = fmt_snprintf(buf, sizeof(buf), "%s", prefix);
	if (n < 0 || n >= (int)sizeof(buf))
		n = 0;
	fmt_vsnprintf(buf + n, sizeof(buf) - (unsigned)n, fmt, ap);
	/* a newline inside a description would break the line structure */
	for (char *p = buf; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	serial_write(buf);
	serial_write("\n");
}

void tap_plan(int n)
{
	planned = n;
	serial_write("\nTAP version 13\n");
	serial_printf("1..%d\n", n);
}

int tap_ok(int cond, const char *fmt, ...)
{
	char prefix[32];
	count++;
	if (!cond)
		failed++;
	fmt_snprintf(prefix, sizeof(prefix), "%sok %d - ", cond ? "" : "not ", count);
	va_list ap;
	va_start(ap, fmt);
	tap_line(prefix, fmt, ap);
	va_end(ap);
	return cond != 0;
}

void tap_diag(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	tap_line("# ", fmt, ap);
	va_end(ap);
}

void tap_bail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	tap_line("Bail out! ", fmt, ap);
	va_end(ap);
	power_off();
}

int tap_failed(void)
{
	return failed;
}

int tap_done(void)
{
	if (planned >= 0 && count != planned) {
		tap_diag("planned %d tests but ran %d", planned, count);
		return failed + 1;
	}
	tap_diag("%d of %d tests failed", failed, count);
	return failed;
}
