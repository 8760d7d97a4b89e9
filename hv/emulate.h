/*
 * Guest write emulator: completes one guest instruction that wrote to a page with
 * write-protected sub-pages (ABI.md section 4, "as if the protected bytes were ROM").
 * The caller decodes the instruction (hv/insn.h) and supplies a memory backend; the backend
 * decides per byte what lands, so the emulator itself knows nothing about sub-pages. It
 * updates registers, flags and RIP exactly as the instruction defines (SDM Vol. 2).
 *
 * Covered (hv/emulate.c, emulate_alu.c, emulate_sse.c): MOV stores (88 89 C6 C7 A2 A3);
 * ADD OR ADC SBB AND SUB XOR with a memory destination (00-31, 80-83 /0-/6), INC DEC (FE FF
 * /0 /1), NOT NEG (F6 F7 /2 /3); XCHG (86 87), CMPXCHG (0F B0 B1), CMPXCHG8B/16B (0F C7 /1),
 * XADD (0F C0 C1); BTS BTR BTC (0F AB B3 BB, 0F BA /5-/7); SETcc (0F 90-9F); MOVNTI (0F C3);
 * PUSH (50+r, 68, 6A, FF /6), CALL (E8, FF /2); MOVS/STOS (A4 A5 AA AB, REP); SSE/AVX stores
 * (0F 11 13 17 29 2B 7E 7F D6 E7 with their legacy and VEX.128/256 forms). EVEX, x87, XSAVE,
 * FXSAVE, ENTER, shifts, segment-register stores and the rest: -EOPNOTSUPP.
 *
 * Documented choices:
 * - Undefined flags: AND/OR/XOR clear AF; BTS/BTR/BTC leave OF SF AF PF (and ZF, which is
 *   defined as unaffected) unchanged. Every defined flag follows the SDM exactly.
 * - CMPXCHG/CMPXCHG8B/16B failure writes the old value back, as the processor does: the
 *   write never changes a byte, but the backend sees (and may report) the touched bytes.
 * - BTS/BTR/BTC read and write back the whole operand, as the processor does: the memory
 *   effect is that of the one bit, and every protected operand byte counts as touched
 *   (ABI.md section 5: the event reports the bytes the write touched).
 * - Atomicity (LOCK, XCHG): one read then one write through the backend. This is atomic
 *   only if the caller serialises writes to the page (true while every write to it exits).
 * - Segmentation: bases only; limits, access rights and canonical checks are not made (the
 *   processor checked them before the EPT exit for the access that caused it).
 * - REP MOVS/STOS run in one call up to EMU_REP_MAX_BYTES; past that the registers
 *   reflect the iterations done and RIP stays on the instruction, so the guest re-executes
 *   it (as after an interrupt). F2 (REPNE) on MOVS/STOS acts as REP. On a fault after some
 *   iterations, RCX/RSI/RDI reflect the completed iterations (as the processor leaves them);
 *   everything else is unchanged.
 * - SSE/AVX stores raise what the processor would have raised in the guest's state
 *   (regs->cr0/cr4/xcr0): #UD for legacy SSE with CR0.EM = 1 or CR4.OSFXSR = 0, for VEX
 *   with CR4.OSXSAVE = 0 or XCR0[2:1] != 11b; #NM with CR0.TS = 1 (SDM Vol. 2 2.3.x, Vol. 1
 *   13.x). Then cpu_read_xmm()/cpu_read_ymm_high() (hw.h) read the guest's registers, live
 *   in the CPU while the hypervisor runs; a read that faults anyway (the bytes at RIP are
 *   not what the processor ran) is caught by the exception table and becomes #UD.
 */
#ifndef HV_EMULATE_H
#define HV_EMULATE_H

#include <tessel/types.h>
#include "hv/insn.h"

/* Returned (negated) when the instruction would raise #GP(0): misaligned CMPXCHG16B,
 * MOVAPS/MOVAPD/MOVDQA/MOVNT* (and VEX forms). Distinct from -EINVAL (#UD). */
#define EMU_GP 1013
/* Returned (negated) when the instruction would raise #NM (SSE/AVX with CR0.TS = 1). */
#define EMU_NM 1014

/* Bytes a REP MOVS/STOS may move in one call before leaving RIP on the instruction. */
#define EMU_REP_MAX_BYTES 4096

struct emu_regs {
	u64 gpr[16];     /* RAX,RCX,RDX,RBX,RSP,RBP,RSI,RDI,R8..R15 */
	u64 rip;         /* address of the instruction; set to the next instruction on success */
	u64 rflags;
	u64 seg_base[6]; /* ES,CS,SS,DS,FS,GS bases (64-bit mode: only FS/GS used) */
	/* Stack address size outside 64-bit mode: 4 if SS.B = 1, 2 if 0; 0 means the mode's
	 * default (4 in 32-bit mode, 2 in 16-bit mode). Ignored in 64-bit mode. */
	u8 stack_size;
	/* The guest's CR0, CR4 and XCR0 (0 while its CR4.OSXSAVE is 0): SSE/AVX instructions
	 * check them as the processor would (#UD, #NM) before any vector register is read. */
	u64 cr0, cr4, xcr0;
	/* RSP and RFLAGS as loaded (hv/vcpu.c), not used by the emulator: the commit writes
	 * back only what changed. */
	u64 loaded_rsp, loaded_rflags;
};

struct emu_mem {
	/* Read n bytes at a guest-linear address (source operands, read-modify-write).
	 * 0, or -EFAULT (the backend keeps the faulting address in its ctx if it needs it). */
	int (*read)(void *ctx, u64 la, void *buf, unsigned n);
	/* Write n bytes at a guest-linear address. The backend decides per byte what lands (it
	 * leaves protected bytes alone and records that they were touched). 0 or -EFAULT. */
	int (*write)(void *ctx, u64 la, const void *buf, unsigned n);
	void *ctx;
};

/*
 * Emulate the decoded instruction `in` (decoded at regs->rip in in->mode). Returns
 *   0            done: registers, flags and RIP updated, memory written via mem->write;
 *   -EOPNOTSUPP  not an instruction this emulator covers: nothing changed;
 *   -EFAULT      a read or write faulted: registers unchanged (REP: see above);
 *   -EINVAL      the encoding would #UD (LOCK on a non-lockable form, VEX.vvvv != 1111b,
 *                VEX.L = 1 where it must be 0): nothing changed;
 *   -EMU_GP      the instruction would #GP(0) (alignment): nothing changed;
 *   -EMU_NM      the instruction would #NM (CR0.TS = 1, SSE/AVX): nothing changed.
 * Reads are issued before writes, so on -EFAULT from a read nothing was written.
 */
int emu_write_insn(struct emu_regs *regs, const struct insn *in, const struct emu_mem *mem);
/* False when emu_write_insn would return -EOPNOTSUPP for `in` before looking at anything
 * else (EVEX, 0F38/0F3A, and the 0F opcodes with no store row: FXSAVE, XSAVE and the like),
 * so a caller may skip loading the emulator's state and calling it. */
bool emu_covers(const struct insn *in);

#endif
