/* Shared declarations of the loader's files. */
#ifndef BOOT_LOADER_H
#define BOOT_LOADER_H

#include <efi.h>
#include <efilib.h>
#include <tessel/bootinfo.h>

/* Print one line on the console and the serial port (printf-style, ASCII). */
void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Read a whole file from the loader's volume into pool memory. EFI_NOT_FOUND if absent. */
EFI_STATUS read_file(EFI_HANDLE device, const CHAR16 *path, char **data, UINTN *size);

/* boot/launch.asm */
s64 tessel_launch(u64 host_cr3, u64 entry, u64 op, u64 arg, struct tessel_launch *l);
/* Takes the calling processor (a guest of a start that is being undone) out of VMX
 * operation and restores its firmware context: 0, or the hypercall's status. */
s64 tessel_leave(void);

#endif
