; The loader's trampolines into and out of the hypervisor core (SysV ABI).
;
;   s64 tessel_launch(u64 host_cr3, u64 entry, u64 op, u64 arg, struct tessel_launch *l)
;
; It records where the calling processor should resume as a guest (RSP, RIP = .resume,
; RFLAGS, CR3) in *l, disables interrupts, switches to the core's page tables (which map
; this code 1:1 as well) and calls entry(op, arg, l). If the core returns (CORE_OP_INIT,
; or a failed CPU_START) the firmware's context is restored and the core's status is
; returned: CR3 and RFLAGS, and, because a failed first VM entry comes back through a VM
; exit that loaded the core's host state, also GDTR, IDTR, the segment registers, TR (when
; the firmware had a TSS; otherwise the core's stays, see hv/percpu.h HOST_SEL_TSS) and the
; FS/GS bases. If CPU_START succeeds, VMLAUNCH resumes the processor - now a guest - at
; .resume with the firmware's context, and tessel_launch returns 0.
;
;   s64 tessel_leave(void)
;
; Asks the core, by the loader-only hypercall TESSEL_HC_LOADER_LEAVE, to take the calling
; processor out of VMX operation (an all-or-nothing start that failed on another processor).
; The core returns to the instruction after VMCALL in root mode, outside VMX, with its own
; page tables, descriptor tables and segments and interrupts off, RAX = TESSEL_LEFT_VMX;
; this code then restores the firmware's context and returns 0. Any other RAX is the
; hypercall's status: the processor is still a guest.
bits 64
default rel
section .text

; struct tessel_launch offsets (include/tessel/bootinfo.h)
%define L_RSP    0
%define L_RIP    8
%define L_RFLAGS 16
%define L_CR3    24

%define MSR_FS_BASE 0xC0000100
%define MSR_GS_BASE 0xC0000101
%define HC_LOADER_LEAVE 0x7f00
%define LEFT_VMX 0x4c454654	; "LEFT"

; The firmware context, saved on the stack below the callee-saved registers:
%define C_GDTR   0	; 10 bytes
%define C_IDTR   16	; 10 bytes
%define C_CS     32
%define C_SS     34
%define C_DS     36
%define C_ES     38
%define C_FS     40
%define C_GS     42
%define C_TR     44
%define C_FSBASE 48
%define C_GSBASE 56
%define C_CR3    64
%define C_RFLAGS 72
%define C_SIZE   80

; save_context: fills the C_* frame at [rsp] (rdx, rcx, rax clobbered)
%macro save_context 0
	sgdt [rsp + C_GDTR]
	sidt [rsp + C_IDTR]
	mov [rsp + C_CS], cs
	mov [rsp + C_SS], ss
	mov [rsp + C_DS], ds
	mov [rsp + C_ES], es
	mov [rsp + C_FS], fs
	mov [rsp + C_GS], gs
	str word [rsp + C_TR]
	mov ecx, MSR_FS_BASE
	rdmsr
	mov [rsp + C_FSBASE], eax
	mov [rsp + C_FSBASE + 4], edx
	mov ecx, MSR_GS_BASE
	rdmsr
	mov [rsp + C_GSBASE], eax
	mov [rsp + C_GSBASE + 4], edx
	mov rax, cr3
	mov [rsp + C_CR3], rax
	pushfq
	pop rax
	mov [rsp + C_RFLAGS], rax
%endmacro

; restore_context: the inverse (interrupts stay off until RFLAGS is restored last)
%macro restore_context 0
	cli
	mov rax, [rsp + C_CR3]
	mov cr3, rax
	lgdt [rsp + C_GDTR]
	lidt [rsp + C_IDTR]
	movzx eax, word [rsp + C_TR]	; TR: the firmware's TSS again, if it had one (LTR needs
	test eax, eax			; the descriptor "available": clear its busy bit first)
	jz %%no_tr
	and eax, ~7
	mov rdx, [rsp + C_GDTR + 2]
	and byte [rdx + rax + 5], ~2
	ltr word [rsp + C_TR]
%%no_tr:
	mov ss, [rsp + C_SS]
	mov ds, [rsp + C_DS]
	mov es, [rsp + C_ES]
	mov fs, [rsp + C_FS]
	mov gs, [rsp + C_GS]
	mov ecx, MSR_FS_BASE
	mov eax, [rsp + C_FSBASE]
	mov edx, [rsp + C_FSBASE + 4]
	wrmsr
	mov ecx, MSR_GS_BASE
	mov eax, [rsp + C_GSBASE]
	mov edx, [rsp + C_GSBASE + 4]
	wrmsr
	movzx eax, word [rsp + C_CS]	; reload CS: far return to the next instruction
	push rax
	lea rax, [rel %%cs_reloaded]
	push rax
	retfq
%%cs_reloaded:
	push qword [rsp + C_RFLAGS]
	popfq
%endmacro

global tessel_launch
tessel_launch:
	push rbp
	push rbx
	push r12
	push r13
	push r14
	push r15
	sub rsp, C_SIZE
	mov r12, rdi		; host_cr3
	mov r13, rsi		; entry
	mov r14, rdx		; op
	mov r15, rcx		; arg
	mov rbx, r8		; l
	save_context
	mov [rbx + L_RSP], rsp
	lea rax, [rel .resume]
	mov [rbx + L_RIP], rax
	mov rax, [rsp + C_RFLAGS]
	mov [rbx + L_RFLAGS], rax
	mov rax, [rsp + C_CR3]
	mov [rbx + L_CR3], rax
	cli
	mov cr3, r12
	mov rdi, r14
	mov rsi, r15
	mov rdx, rbx
	mov rax, r13
	call rax		; rsp is 16-byte aligned here: 8 (return) + 48 + 80
	mov rbx, rax		; the core's status
	restore_context
	mov rax, rbx
	jmp .out
.resume:
	xor eax, eax
.out:
	add rsp, C_SIZE
	pop r15
	pop r14
	pop r13
	pop r12
	pop rbx
	pop rbp
	ret

global tessel_leave
tessel_leave:
	push rbx
	sub rsp, C_SIZE
	save_context
	mov eax, HC_LOADER_LEAVE
	vmcall
	cmp rax, LEFT_VMX
	jne .still_guest
	restore_context
	xor eax, eax
.still_guest:
	add rsp, C_SIZE
	pop rbx
	ret

section .note.GNU-stack noalloc noexec nowrite progbits
