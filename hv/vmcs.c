/* VMREAD/VMWRITE with failure checks, and the VMCS summary printed on unexpected exits. */
#include <hw.h>
#include "log.h"
#include "panic.h"
#include "vmcs.h"

__noreturn void vmcs_read_failed(u32 field)
{
	panic("VMREAD of field 0x%x failed", field);
}

bool vmcs_try_read(u32 field, u64 *value)
{
	*value = 0;
	return vmx_vmread(field, value);
}

__noreturn void vmcs_write_failed(u32 field, u64 value)
{
	u64 err = 0;
	vmx_vmread(VMCS_RO_VM_INSN_ERROR, &err);
	panic("VMWRITE of field 0x%x = 0x%llx failed (VM-instruction error %llu)", field,
	      (unsigned long long)value, (unsigned long long)err);
}

void vmcs_dump(void)
{
	static const struct { u32 field; const char *name; } fields[] = {
		{ VMCS_RO_EXIT_REASON, "exit reason" },
		{ VMCS_RO_EXIT_QUALIFICATION, "qualification" },
		{ VMCS_RO_GUEST_PHYS_ADDR, "guest-physical" },
		{ VMCS_RO_GUEST_LINEAR_ADDR, "guest-linear" },
		{ VMCS_RO_EXIT_INTR_INFO, "exit intr info" },
		{ VMCS_RO_IDT_VECTORING_INFO, "IDT vectoring" },
		{ VMCS_RO_EXIT_INSN_LEN, "insn length" },
		{ VMCS_RO_VM_INSN_ERROR, "VM-insn error" },
		{ VMCS_GUEST_RIP, "guest RIP" },
		{ VMCS_GUEST_RSP, "guest RSP" },
		{ VMCS_GUEST_RFLAGS, "guest RFLAGS" },
		{ VMCS_GUEST_CR0, "guest CR0" },
		{ VMCS_GUEST_CR3, "guest CR3" },
		{ VMCS_GUEST_CR4, "guest CR4" },
		{ VMCS_GUEST_IA32_EFER, "guest EFER" },
		{ VMCS_GUEST_CS_SEL, "guest CS" },
		{ VMCS_GUEST_CS_BASE, "guest CS base" },
		{ VMCS_GUEST_CS_AR, "guest CS AR" },
		{ VMCS_GUEST_SS_AR, "guest SS AR" },
		{ VMCS_GUEST_INTERRUPTIBILITY, "interruptibility" },
		{ VMCS_GUEST_ACTIVITY_STATE, "activity" },
		{ VMCS_CTRL_PIN_BASED, "pin controls" },
		{ VMCS_CTRL_PROC_BASED, "proc controls" },
		{ VMCS_CTRL_PROC_BASED2, "proc2 controls" },
		{ VMCS_CTRL_ENTRY, "entry controls" },
		{ VMCS_CTRL_EXIT, "exit controls" },
		{ VMCS_CTRL_EPTP, "EPTP" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(fields); i++) {
		u64 v;
		if (vmcs_try_read(fields[i].field, &v))
			log_raw("  %-17s %016llx\n", fields[i].name, (unsigned long long)v);
		else
			log_raw("  %-17s (unreadable)\n", fields[i].name);
	}
}
