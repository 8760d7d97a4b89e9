/*
 * Polled 16550 UART. Every byte waits for LSR bit 5 (transmit holding register empty):
 * Bochs, like real UARTs, drops bytes written while it is busy (EMULATORS.md).
 * "\n" is sent as "\r\n".
 */
#include <hw.h>
#include "uart.h"

#define UART_THR 0
#define UART_IER 1
#define UART_FCR 2
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_DLL 0
#define UART_DLM 1
#define LSR_THRE (1U << 5)
#define LCR_DLAB (1U << 7)
#define LCR_8N1  0x03U

void uart_init(u16 port)
{
	outb(port + UART_IER, 0);
	outb(port + UART_LCR, LCR_DLAB);
	outb(port + UART_DLL, 1); /* 115200 baud */
	outb(port + UART_DLM, 0);
	outb(port + UART_LCR, LCR_8N1);
	outb(port + UART_FCR, 0x07); /* enable and clear FIFOs */
	outb(port + UART_MCR, 0x03); /* DTR, RTS */
}

static void uart_tx(u16 port, char c)
{
	for (unsigned spin = 0; spin < 1000000U; spin++) {
		if (inb(port + UART_LSR) & LSR_THRE)
			break;
		cpu_relax();
	}
	outb(port + UART_THR, (u8)c);
}

void uart_putc(u16 port, char c)
{
	if (c == '\n')
		uart_tx(port, '\r');
	uart_tx(port, c);
}

void uart_write(u16 port, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		uart_putc(port, s[i]);
}
