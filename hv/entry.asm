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
global vmx_exit_entry
global vmx_launch

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
	vmresume
	; VMRESUME failed: RFLAGS.CF/ZF say how; the C side reads the VM-instruction error.
	sub rsp, 128
	mov rdi, rsp
	call vmx_entry_failed	; does not return

vmx_launch:
	vmlaunch
	ret			; only reached when VMLAUNCH failed

section .note.GNU-stack noalloc noexec nowrite progbits
