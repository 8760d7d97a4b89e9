/* 16550 UART output (polled). Used by the loader and the hypervisor core. */
#ifndef DRIVERS_UART_H
#define DRIVERS_UART_H
#include <tessel/types.h>

#define UART_COM1 0x3F8

void uart_init(u16 port);
void uart_putc(u16 port, char c);
void uart_write(u16 port, const char *s, size_t n);
#endif
