; Host exception entry stubs. Every vector 0-31 gets a stub that pushes a uniform frame
; (a dummy error code where the CPU pushes none, then the vector number) and jumps to
; trap_common, which saves the general registers and calls trap_handler(frame) in
; hv/traps.c. NMI, #DF and #MC run on their own IST stacks (hv/host.c).
bits 64
default rel
section .text

extern trap_handler
global trap_stubs

; Vectors whose exceptions push an error code (SDM Vol. 3A Table 6-1).
%define HAS_ERR(v) ((v) == 8 || ((v) >= 10 && (v) <= 14) || (v) == 17 || (v) == 21 || (v) == 29 || (v) == 30)

%macro STUB 1
align 16
trap_stub_%1:
%if HAS_ERR(%1) == 0
	push 0
%endif
	push %1
	jmp trap_common
%endmacro

%assign v 0
%rep 32
	STUB v
%assign v v+1
%endrep

trap_common:
	push rax
	push rcx
	push rdx
	push rbx
	push rbp
	push rsi
	push rdi
	push r8
	push r9
	push r10
	push r11
	push r12
	push r13
	push r14
	push r15
	mov rdi, rsp
	mov rbx, rsp
	and rsp, -16
	call trap_handler
	mov rsp, rbx
	pop r15
	pop r14
	pop r13
	pop r12
	pop r11
	pop r10
	pop r9
	pop r8
	pop rdi
	pop rsi
	pop rbp
	pop rbx
	pop rdx
	pop rcx
	pop rax
	add rsp, 16
	iretq

section .rodata
align 8
trap_stubs:
%assign v 0
%rep 32
	dq trap_stub_ %+ v
%assign v v+1
%endrep

section .note.GNU-stack noalloc noexec nowrite progbits
