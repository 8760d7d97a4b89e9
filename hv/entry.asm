; VM-exit entry and VM entry (Intel SDM Vol. 3C chapters 26-27).
;
; HOST_RSP is the top of this CPU's host stack. On an exit the guest's general registers
; are pushed as struct guest_regs (hv/percpu.h: index = x86 register number, the RSP slot
; is a placeholder: RSP lives in the VMCS), vmx_handle_exit(regs) runs, and the registers
; are restored for VMRESUME. 16 slots keep the stack 16-byte aligned for the C call.
bits 64
default rel
section .text

extern vmx_handle_exit
extern vmx_entry_failed
extern vmx_entry_kicked
global vmx_exit_entry
global vmx_entry_check
global vmx_entry_resume
global vmx_launch
global vmx_launch_abort
global vmx_leave_to

vmx_exit_entry:
	push r15
	push r14
	push r13
	push r12
	push r11
	push r10
	push r9
	push r8
	push rdi
	push rsi
	push rbp
	sub rsp, 8		; GPR_SP slot
	push rbx
	push rdx
	push rcx
	push rax
	mov rdi, rsp
	call vmx_handle_exit
vmx_entry_pop:
	pop rax
	pop rcx
	pop rdx
	pop rbx
	add rsp, 8
	pop rbp
	pop rsi
	pop rdi
	pop r8
	pop r9
	pop r10
	pop r11
	pop r12
	pop r13
	pop r14
	pop r15
	; The last check before VM entry (hv/exit.c nmi_entry_rewind): an NMI that left a
	; request set entry_kick (struct percpu, offset 8), and one that interrupts the
	; instructions from here up to VMRESUME returns to this test.
vmx_entry_check:
	cmp dword [gs:8], 0
	jne vmx_entry_kick
vmx_entry_resume:
	vmresume
	; VMRESUME failed: RFLAGS.CF/ZF say how; the C side reads the VM-instruction error.
	sub rsp, 128
	mov rdi, rsp
	call vmx_entry_failed	; does not return

; A request arrived after the exit path last looked: save the guest's registers again,
; serve it (vmx_entry_kicked clears entry_kick first), and test again.
vmx_entry_kick:
	push r15
	push r14
	push r13
	push r12
	push r11
	push r10
	push r9
	push r8
	push rdi
	push rsi
	push rbp
	sub rsp, 8		; GPR_SP slot
	push rbx
	push rdx
	push rcx
	push rax
	mov rdi, rsp
	call vmx_entry_kicked
	jmp vmx_entry_pop

; int vmx_launch(struct launch_jmp *j): records the caller's callee-saved registers, stack
; and return address in *j, then VMLAUNCH. Returns 0 if VMLAUNCH failed (VMfail); returns
; 1 through vmx_launch_abort(j) if the first VM entry failed with a VM exit (an invalid guest
; state: SDM 26.7, basic exit reasons 33/34/41 with bit 31 set), which lands in the exit
; path on the host stack with the host's state loaded.
vmx_launch:
	mov [rdi + 0], rbx
	mov [rdi + 8], rbp
	mov [rdi + 16], r12
	mov [rdi + 24], r13
	mov [rdi + 32], r14
	mov [rdi + 40], r15
	lea rax, [rsp + 8]
	mov [rdi + 48], rax
	mov rax, [rsp]
	mov [rdi + 56], rax
	vmlaunch
	xor eax, eax
	ret

; noreturn void vmx_launch_abort(const struct launch_jmp *j)
vmx_launch_abort:
	mov rbx, [rdi + 0]
	mov rbp, [rdi + 8]
	mov r12, [rdi + 16]
	mov r13, [rdi + 24]
	mov r14, [rdi + 32]
	mov r15, [rdi + 40]
	mov rsp, [rdi + 48]
	mov eax, 1
	jmp [rdi + 56]

; noreturn void vmx_leave_to(const struct guest_regs *regs, u64 rsp, u64 rip): after VMXOFF,
; resume the former guest in root mode at rip with its registers (RAX from regs), stack rsp,
; RFLAGS with IF = 0, on the host's CS/SS; the loader (boot/launch.asm tessel_leave) restores
; its own descriptor tables, segments, CR3 and RFLAGS.
vmx_leave_to:
	mov rax, 0x10		; SS: the host data selector (HOST_SEL_DATA)
	push rax
	push rsi		; RSP
	push 0x2		; RFLAGS: IF = 0
	push 0x08		; CS: the host code selector (HOST_SEL_CODE)
	push rdx		; RIP
	mov rax, [rdi + 0]
	mov rcx, [rdi + 8]
	mov rdx, [rdi + 16]
	mov rbx, [rdi + 24]
	mov rbp, [rdi + 40]
	mov rsi, [rdi + 48]
	mov r8, [rdi + 64]
	mov r9, [rdi + 72]
	mov r10, [rdi + 80]
	mov r11, [rdi + 88]
	mov r12, [rdi + 96]
	mov r13, [rdi + 104]
	mov r14, [rdi + 112]
	mov r15, [rdi + 120]
	mov rdi, [rdi + 56]
	iretq

section .note.GNU-stack noalloc noexec nowrite progbits
