; VM-exit entry and VM entry (Intel SDM Vol. 3C chapters 26-27).
;
; HOST_RSP is the top of this CPU's host stack. On an exit the guest's general registers
; are stored as struct guest_regs (hv/percpu.h: index = x86 register number, the RSP slot
; is a placeholder: RSP lives in the VMCS), vmx_handle_exit(regs, exit reason) runs, and
; the registers are restored for VMRESUME. 16 slots keep the stack 16-byte aligned for the
; C call. An HC_NOP takes a fast path without the C code (vmx_fast_nop below).
bits 64
default rel
section .text

extern vmx_handle_exit
extern vmx_entry_failed
extern vmx_entry_kicked
extern vmcs_read_failed
extern vapic_reset_traces
extern iommu
extern stat_counters
%ifdef TESSEL_TEST_HOOKS
extern vmcs_test_reads
extern vmcs_test_writes
%endif

; struct percpu offsets (hv/percpu.h asserts them) and the statistics row (hv/stats.h).
%define PERCPU_INDEX		12
%define PERCPU_FLAGS		20	; nmi_pending, pending_vector, mtf_selftest, entered
%define PERCPU_FLAGS_IDLE	0x01000000 ; only entered set
%define PERCPU_STEP		56
%define PERCPU_EXITS		64
%define PERCPU_EXIT_REASON	72
%define PERCPU_EVENT_FLAGS	76	; event_injected, idt_vectoring_read
%define STAT_ROW_BYTES		104	; STAT_COUNT * 8
%define STAT_HYPERCALLS_OFF	8	; STAT_HYPERCALLS * 8
%define EXIT_REASON_VMCALL	18
%define VMCS_RO_EXIT_REASON	0x4402
%define VMCS_RO_EXIT_INSN_LEN	0x440c
%define VMCS_GUEST_SS_AR	0x4818
%define VMCS_GUEST_INTERRUPTIBILITY 0x4824
%define VMCS_GUEST_RIP		0x681e
%define VMCS_GUEST_RFLAGS	0x6820

; The test build counts VMREAD/VMWRITE as hv/vmcs.h does (HC_TEST_VMCS_COUNT).
%macro COUNT_READ 0
%ifdef TESSEL_TEST_HOOKS
	inc qword [rel vmcs_test_reads]
%endif
%endmacro
%macro COUNT_WRITE 0
%ifdef TESSEL_TEST_HOOKS
	inc qword [rel vmcs_test_writes]
%endif
%endmacro
global vmx_exit_entry
global vmx_entry_check
global vmx_entry_resume
global vmx_launch
global vmx_launch_abort
global vmx_leave_to

vmx_exit_entry:
	; The frame is struct guest_regs (slot = register number). RCX and RDX go first: they
	; carry the exit reason, read here once and passed to vmx_handle_exit.
	sub rsp, 128
	mov [rsp + 8], rcx
	mov [rsp + 16], rdx
	mov edx, VMCS_RO_EXIT_REASON
	COUNT_READ
	vmread rcx, rdx
	jbe vmx_exit_reason_failed
	test rax, rax			; HC_NOP?
	jnz vmx_exit_full
	cmp ecx, EXIT_REASON_VMCALL
	je vmx_fast_nop
vmx_exit_full:
	mov [rsp], rax
	mov [rsp + 24], rbx
	mov [rsp + 40], rbp		; (slot 4, GPR_SP, is not saved: RSP lives in the VMCS)
	mov [rsp + 48], rsi
	mov [rsp + 56], rdi
	mov [rsp + 64], r8
	mov [rsp + 72], r9
	mov [rsp + 80], r10
	mov [rsp + 88], r11
	mov [rsp + 96], r12
	mov [rsp + 104], r13
	mov [rsp + 112], r14
	mov [rsp + 120], r15
	mov rdi, rsp
	mov esi, ecx
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

; The HC_NOP fast path: a VMCALL with RAX = 0 from CPL 0, when the full exit path would do
; nothing but what is done here (hv/hypercall.c exit_vmcall's lean path): RAX = 0, RIP past
; the VMCALL, the exit and hypercall counters. Anything else goes to the full path with the
; registers as they were: another exit reason; a first exit, the MTF self-test, a single step,
; a pending NMI or ring notification (the flags at PERCPU_FLAGS, PERCPU_STEP); the post-INIT
; trace (vapic_reset_traces); an active IOMMU (the DMA-fault poll); CPL > 0 (-EPERM); STI or
; MOV-SS blocking to end or RFLAGS.TF set (the single-step trap to raise); a RIP that would
; cross a 64 KiB boundary (the wrap and canonical rules of vcpu_rip_wrap); a failing VMREAD
; or VMWRITE (the full path repeats it and panics). Only RIP moves, within the same 64 KiB,
; so the VMCS meets every VM-entry check it met before (check=entry is not repeated here).
; Requests that arrive meanwhile are seen by the test at vmx_entry_check, as on every entry.
vmx_fast_nop:
	cmp dword [gs:PERCPU_FLAGS], PERCPU_FLAGS_IDLE
	jne .slow
	cmp qword [gs:PERCPU_STEP], 0
	jne .slow
	cmp dword [rel vapic_reset_traces], 0
	jne .slow
	cmp byte [rel iommu], 0		; iommu.active (drivers/vtd.h asserts offset 0)
	jne .slow
	mov edx, VMCS_GUEST_SS_AR
	COUNT_READ
	vmread rcx, rdx
	jbe .slow
	test ecx, 0x60			; SS.DPL = CPL
	jnz .slow
	mov edx, VMCS_GUEST_INTERRUPTIBILITY
	COUNT_READ
	vmread rcx, rdx
	jbe .slow
	test ecx, 3			; blocking by STI / by MOV SS
	jnz .slow
	mov edx, VMCS_GUEST_RFLAGS
	COUNT_READ
	vmread rcx, rdx
	jbe .slow
	test ecx, 0x100			; TF
	jnz .slow
	mov edx, VMCS_RO_EXIT_INSN_LEN
	COUNT_READ
	vmread rax, rdx
	jbe .slow_rax
	mov edx, VMCS_GUEST_RIP
	COUNT_READ
	vmread rcx, rdx
	jbe .slow_rax
	add rax, rcx
	xor rcx, rax
	shr rcx, 16
	jnz .slow_rax
	COUNT_WRITE
	vmwrite rdx, rax
	jbe .slow_rax
	xor eax, eax			; HC_NOP's status
	mov ecx, [gs:PERCPU_INDEX]
	imul ecx, ecx, STAT_ROW_BYTES
	lea rdx, [rel stat_counters]
	inc qword [rdx + rcx + STAT_HYPERCALLS_OFF]
	inc qword [gs:PERCPU_EXITS]
	mov dword [gs:PERCPU_EXIT_REASON], EXIT_REASON_VMCALL
	mov word [gs:PERCPU_EVENT_FLAGS], 0
	mov rcx, [rsp + 8]
	mov rdx, [rsp + 16]
	add rsp, 128
	jmp vmx_entry_check
.slow_rax:
	xor eax, eax			; RAX was 0
.slow:
	mov ecx, EXIT_REASON_VMCALL	; the exit reason again for vmx_exit_full
	jmp vmx_exit_full

; The exit-reason VMREAD failed: a hypervisor bug (hv/vmcs.h), reported as every other.
vmx_exit_reason_failed:
	mov edi, VMCS_RO_EXIT_REASON
	call vmcs_read_failed		; does not return

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
