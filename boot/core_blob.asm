; The hypervisor core's ELF image, embedded in the loader (see the Makefile).
section .rodata
align 16
global core_elf_start, core_elf_end
core_elf_start:
	incbin CORE_ELF
core_elf_end:

section .note.GNU-stack noalloc noexec nowrite progbits
