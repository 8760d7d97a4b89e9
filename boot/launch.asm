; The loader's trampoline into the hypervisor core (SysV ABI):
;
;   s64 tessel_launch(u64 host_cr3, u64 entry, u64 op, u64 arg, struct tessel_launch *l)
;
; It records where the calling processor should resume as a guest (RSP, RIP = .resume,
; RFLAGS, CR3) in *l, disables interrupts, switches to the core's page tables (which map
; this code 1:1 as well) and calls entry(op, arg, l). If the core returns (CORE_OP_INIT,
; or a failed CPU_START) the firmware's CR3 and RFLAGS are restored and its status is
; returned. If CPU_START succeeds, VMLAUNCH resumes the processor - now a guest - at
; .resume with the firmware's CR3, and tessel_launch returns 0.
bits 64
default rel
section .text

; struct tessel_launch offsets (include/tessel/bootinfo.h)
%define L_RSP    0
%define L_RIP    8
%define L_RFLAGS 16
%define L_CR3    24

global tessel_launch
tessel_launch:
	push rbp
	push rbx
	push r12
	push r13
	push r14
	push r15
	mov [r8 + L_RSP], rsp
	lea rax, [rel .resume]
	mov [r8 + L_RIP], rax
	pushfq
	pop rax
	mov [r8 + L_RFLAGS], rax
	mov r12, cr3
	mov [r8 + L_CR3], r12
	mov r13, rax		; firmware RFLAGS
	cli
	mov cr3, rdi
	mov rax, rsi
	mov rdi, rdx
	mov rsi, rcx
	mov rdx, r8
	sub rsp, 8		; 16-byte alignment for the call
	call rax
	add rsp, 8
	mov cr3, r12
	push r13
	popfq
	jmp .out
.resume:
	xor eax, eax
.out:
	pop r15
	pop r14
	pop r13
	pop r12
	pop rbx
	pop rbp
	ret

section .note.GNU-stack noalloc noexec nowrite progbits
