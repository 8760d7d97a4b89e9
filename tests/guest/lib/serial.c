/*
 * serial.c: polled output on COM1 (16550 at 0x3F8). The firmware has already programmed the
 * UART; this only waits for THR empty (LSR bit 5) before each byte, as Bochs drops bytes
 * otherwise (EMULATORS.md). The wait is bounded so a missing UART cannot hang a test.
 */
#include "guest.h"
#include "arch.h"
#include <lib/fmt.h>

#define COM1 0x3f8
#define UART_LSR 5
#define LSR_THRE 0x20
#define LSR_TEMT 0x40

void serial_putc(char c)
{
	for (unsigned spin = 0; spin < 1000000; spin++) {
		if (inb(COM1 + UART_LSR) & LSR_THRE)
			break;
		cpu_relax();
	}
	outb(COM1, (uint8_t)c);
}

/* Waits until the transmitter is idle: a power-off right after the last byte loses it. */
void serial_flush(void)
{
	for (unsigned spin = 0; spin < 1000000; spin++) {
		if (inb(COM1 + UART_LSR) & LSR_TEMT)
			break;
		cpu_relax();
	}
}

void serial_write(const char *s)
{
	for (; *s; s++) {
		if (*s == '\n')
			serial_putc('\r');
		serial_putc(*s);
	}
}

void serial_printf(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	fmt_vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	serial_write(buf);
}
