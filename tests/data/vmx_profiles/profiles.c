/*
 * VMX capability profiles for tests/unit/test_profiles.c and test_entry_check.c: the
 * capability MSRs (and the CPUID facts vmx_caps_read() uses) of real processors and of
 * KVM's nested VMX, each with its source. Values are transcribed, not measured here; a
 * profile that is reconstructed rather than dumped says so in its source. See
 * docs/HARDWARE.md for what this covers and what it does not.
 */
#include "vmx_profiles.h"

const struct vmx_profile vmx_profiles[] = {
	{
		.name = "skylake-client",
		.source =
			"honorarybot/VmxCaps vmx.html (commit 7b425c2, \"Added Comet Lake cpu\"): rdmsr dump of a "
			"real Skylake client, Core i5-6500 (family 6 model 94); CR0/CR4 fixed MSRs and "
			"IA32_VMX_VMFUNC are not in that table: CR0_FIXED0/1 = 0x80000021/0xffffffff and "
			"CR4_FIXED0 = 0x2000 are the values every dumped Intel part reports (e.g. the VirtualBox "
			"logs in Stichting-MINIX-Research-Foundation/minix#17), CR4_FIXED1 is derived from the "
			"CR4 features of the part (SDM A.8), VMFUNC = EPTP switching only (as on every part with "
			"\"enable VM functions\" allowed)",
		.basic = 0x00da040000000004ULL,
		.pin = 0x0000007f00000016ULL,
		.proc = 0xfff9fffe0401e172ULL,
		.exit = 0x01ffffff00036dffULL,
		.entry = 0x0003ffff000011ffULL,
		.true_pin = 0x0000007f00000016ULL,
		.true_proc = 0xfff9fffe04006172ULL,
		.true_exit = 0x01ffffff00036dfbULL,
		.true_entry = 0x0003ffff000011fbULL,
		.misc = 0x000000007004c1e7ULL,
		.cr0f0 = 0x0000000080000021ULL,
		.cr0f1 = 0x00000000ffffffffULL,
		.cr4f0 = 0x0000000000002000ULL,
		.cr4f1 = 0x00000000003727ffULL,
		.vmcs_enum = 0x000000000000002eULL,
		.proc2 = 0x001ffcff00000000ULL,
		.ept_vpid = 0x00000f0106334141ULL,
		.vmfunc = 0x0000000000000001ULL,
		.phys_bits = 39,
		.pdpe1gb = true,
		.refusal = NULL,
	},
	{
		.name = "skylake-x",
		.source =
			"honorarybot/VmxCaps vmx.html (commit 7b425c2, \"Added Comet Lake cpu\"): rdmsr dump of a "
			"real Skylake-X (Skylake server core), Core i9-9980XE; CR0/CR4 fixed MSRs and "
			"IA32_VMX_VMFUNC are not in that table: CR0_FIXED0/1 = 0x80000021/0xffffffff and "
			"CR4_FIXED0 = 0x2000 are the values every dumped Intel part reports (e.g. the VirtualBox "
			"logs in Stichting-MINIX-Research-Foundation/minix#17), CR4_FIXED1 is derived from the "
			"CR4 features of the part (SDM A.8), VMFUNC = EPTP switching only (as on every part with "
			"\"enable VM functions\" allowed)",
		.basic = 0x00da040000000004ULL,
		.pin = 0x000000ff00000016ULL,
		.proc = 0xfff9fffe0401e172ULL,
		.exit = 0x01ffffff00036dffULL,
		.entry = 0x0003ffff000011ffULL,
		.true_pin = 0x000000ff00000016ULL,
		.true_proc = 0xfff9fffe04006172ULL,
		.true_exit = 0x01ffffff00036dfbULL,
		.true_entry = 0x0003ffff000011fbULL,
		.misc = 0x000000007004c1e7ULL,
		.cr0f0 = 0x0000000080000021ULL,
		.cr0f1 = 0x00000000ffffffffULL,
		.cr4f0 = 0x0000000000002000ULL,
		.cr4f1 = 0x00000000007727ffULL,
		.vmcs_enum = 0x000000000000002eULL,
		.proc2 = 0x025d3fff00000000ULL,
		.ept_vpid = 0x00000f0106734141ULL,
		.vmfunc = 0x0000000000000001ULL,
		.phys_bits = 46,
		.pdpe1gb = true,
		.refusal = NULL,
	},
	{
		.name = "cometlake-client",
		.source =
			"honorarybot/VmxCaps vmx.html (commit 7b425c2, \"Added Comet Lake cpu\"): rdmsr dump of a "
			"real Comet Lake client, Core i5-10110U; CR0/CR4 fixed MSRs and IA32_VMX_VMFUNC are not "
			"in that table: CR0_FIXED0/1 = 0x80000021/0xffffffff and CR4_FIXED0 = 0x2000 are the "
			"values every dumped Intel part reports (e.g. the VirtualBox logs in Stichting-MINIX- "
			"Research-Foundation/minix#17), CR4_FIXED1 is derived from the CR4 features of the part "
			"(SDM A.8), VMFUNC = EPTP switching only (as on every part with \"enable VM functions\" "
			"allowed)",
		.basic = 0x00da040000000004ULL,
		.pin = 0x0000007f00000016ULL,
		.proc = 0xfff9fffe0401e172ULL,
		.exit = 0x01ffffff00036dffULL,
		.entry = 0x0003ffff000011ffULL,
		.true_pin = 0x0000007f00000016ULL,
		.true_proc = 0xfff9fffe04006172ULL,
		.true_exit = 0x01ffffff00036dfbULL,
		.true_entry = 0x0003ffff000011fbULL,
		.misc = 0x000000007004c1e7ULL,
		.cr0f0 = 0x0000000080000021ULL,
		.cr0f1 = 0x00000000ffffffffULL,
		.cr4f0 = 0x0000000000002000ULL,
		.cr4f1 = 0x00000000003727ffULL,
		.vmcs_enum = 0x000000000000002eULL,
		.proc2 = 0x005fbcff00000000ULL,
		.ept_vpid = 0x00000f0106734141ULL,
		.vmfunc = 0x0000000000000001ULL,
		.phys_bits = 39,
		.pdpe1gb = true,
		.refusal = NULL,
	},
	{
		.name = "qemu-icelake-client",
		.source =
			"QEMU target/i386/cpu.c named model \"Icelake-Client (Intel Core Processor (Icelake))\": "
			"VMX feature words as added by \"target/i386: add VMX features to named CPU models\" (P. "
			"Bonzini, qemu-devel, 21 Nov 2019, produced from vmxcap on real hardware), turned into "
			"MSR values the way QEMU does for a KVM guest (target/i386/kvm/kvm.c make_vmx_msr_value "
			"with KVM default1 0x16/0x0401e172/0x36dff/0x11ff; host address-space size allowed for a "
			"64-bit guest; VMCS revision/size/memory type and the preemption-timer rate from KVM, "
			"CR3-target count 0; QEMU leaves out shutdown and wait-for-SIPI activity states and SPP "
			"as unsupported by KVM). CR4_FIXED1 derived from the model's CPUID.",
		.basic = 0x00d8100011e57ed0ULL,
		.pin = 0x0000007f00000016ULL,
		.proc = 0x7ff9fffe0401e172ULL,
		.exit = 0x0057efff00036dffULL,
		.entry = 0x0000f3ff000011ffULL,
		.true_pin = 0x0000007f00000016ULL,
		.true_proc = 0x7ff9fffe04006172ULL,
		.true_exit = 0x0057efff00036dfbULL,
		.true_entry = 0x0000f3ff000011fbULL,
		.misc = 0x0000000020000065ULL,
		.cr0f0 = 0x0000000080000021ULL,
		.cr0f1 = 0x00000000ffffffffULL,
		.cr4f0 = 0x0000000000002000ULL,
		.cr4f1 = 0x0000000000773fffULL,
		.vmcs_enum = 0x000000000000002eULL,
		.proc2 = 0x00037cef00000000ULL,
		.ept_vpid = 0x00000f0106334041ULL,
		.vmfunc = 0x0000000000000001ULL,
		.phys_bits = 39,
		.pdpe1gb = true,
		.refusal = "processor-based control 'activate secondary controls'",
	},
	{
		.name = "qemu-icelake-server",
		.source =
			"QEMU target/i386/cpu.c named model \"Icelake-Server (Intel Xeon Processor (Icelake))\": "
			"VMX feature words as added by \"target/i386: add VMX features to named CPU models\" (P. "
			"Bonzini, qemu-devel, 21 Nov 2019, produced from vmxcap on real hardware), turned into "
			"MSR values the way QEMU does for a KVM guest (target/i386/kvm/kvm.c make_vmx_msr_value "
			"with KVM default1 0x16/0x0401e172/0x36dff/0x11ff; host address-space size allowed for a "
			"64-bit guest; VMCS revision/size/memory type and the preemption-timer rate from KVM, "
			"CR3-target count 0; QEMU leaves out shutdown and wait-for-SIPI activity states and SPP "
			"as unsupported by KVM). CR4_FIXED1 derived from the model's CPUID.",
		.basic = 0x00d8100011e57ed0ULL,
		.pin = 0x000000ff00000016ULL,
		.proc = 0x7ff9fffe0401e172ULL,
		.exit = 0x0057efff00036dffULL,
		.entry = 0x0000f3ff000011ffULL,
		.true_pin = 0x000000ff00000016ULL,
		.true_proc = 0x7ff9fffe04006172ULL,
		.true_exit = 0x0057efff00036dfbULL,
		.true_entry = 0x0000f3ff000011fbULL,
		.misc = 0x0000000020000065ULL,
		.cr0f0 = 0x0000000080000021ULL,
		.cr0f1 = 0x00000000ffffffffULL,
		.cr4f0 = 0x0000000000002000ULL,
		.cr4f1 = 0x0000000000773fffULL,
		.vmcs_enum = 0x000000000000002eULL,
		.proc2 = 0x00007fff00000000ULL,
		.ept_vpid = 0x00000f0106334041ULL,
		.vmfunc = 0x0000000000000001ULL,
		.phys_bits = 46,
		.pdpe1gb = true,
		.refusal = "processor-based control 'activate secondary controls'",
	},
	{
		.name = "qemu-icelake-server-v5",
		.source =
			"QEMU target/i386/cpu.c named model \"Icelake-Server\" as QEMU has it now (qemu/qemu commit "
			"0048035a), version 5 (\"XSAVES\": v4 adds vmx-rdseed-exit, vmx-pml, vmx-eptp-switching; v5 "
			"vmx-xsaves): unlike the 2019 words above, the primary controls now include \"activate "
			"secondary controls\" and the exit controls load PAT/EFER, so this is an Ice Lake (Sunny "
			"Cove, the core of Ice Lake client too) profile Tessel accepts. Turned into MSR values for "
			"a KVM guest as for the other QEMU models; VMX words then equal SierraForest's "
			"(derivation tested). CR4_FIXED1 derived from the model's CPUID (LA57).",
		.basic = 0x00d8100011e57ed0ULL,
		.pin = 0x000000ff00000016ULL,
		.proc = 0xfff9fffe0401e172ULL,
		.exit = 0x007fffff00036dffULL,
		.entry = 0x0000f3ff000011ffULL,
		.true_pin = 0x000000ff00000016ULL,
		.true_proc = 0xfff9fffe04006172ULL,
		.true_exit = 0x007fffff00036dfbULL,
		.true_entry = 0x0000f3ff000011fbULL,
		.misc = 0x0000000020000065ULL,
		.cr0f0 = 0x0000000080000021ULL,
		.cr0f1 = 0x00000000ffffffffULL,
		.cr4f0 = 0x0000000000002000ULL,
		.cr4f1 = 0x0000000000773fffULL,
		.vmcs_enum = 0x000000000000002eULL,
		.proc2 = 0x00137bff00000000ULL,
		.ept_vpid = 0x00000f0106334041ULL,
		.vmfunc = 0x0000000000000001ULL,
		.phys_bits = 46,
		.pdpe1gb = true,
		.refusal = NULL,
	},
	{
		.name = "qemu-sapphirerapids",
		.source =
			"QEMU target/i386/cpu.c named model \"SapphireRapids\" as added by \"i386: Add new CPU model "
			"SapphireRapids\" (2022; VMX words in the patch), turned into MSR values for a KVM guest "
			"as for the other QEMU models (make_vmx_msr_value, KVM default1, host address-space size "
			"allowed, CR3-target count 0, no shutdown/wait-for-SIPI activity states). Golden Cove is "
			"also the P-core of Alder Lake, which QEMU has no model for. CR4_FIXED1 derived from the "
			"model's CPUID (adds LA57).",
		.basic = 0x00d8100011e57ed0ULL,
		.pin = 0x000000ff00000016ULL,
		.proc = 0xfff9fffe0401e172ULL,
		.exit = 0x007fffff00036dffULL,
		.entry = 0x0000f3ff000011ffULL,
		.true_pin = 0x000000ff00000016ULL,
		.true_proc = 0xfff9fffe04006172ULL,
		.true_exit = 0x007fffff00036dfbULL,
		.true_entry = 0x0000f3ff000011fbULL,
		.misc = 0x0000000020000065ULL,
		.cr0f0 = 0x0000000080000021ULL,
		.cr0f1 = 0x00000000ffffffffULL,
		.cr4f0 = 0x0000000000002000ULL,
		.cr4f1 = 0x0000000000773fffULL,
		.vmcs_enum = 0x000000000000002eULL,
		.proc2 = 0x00137bff00000000ULL,
		.ept_vpid = 0x00000f01063340c1ULL,
		.vmfunc = 0x0000000000000001ULL,
		.phys_bits = 46,
		.pdpe1gb = true,
	},
	{
		.name = "kvm-nested-icelake",
		.source =
			"KVM nested VMX as an L1 hypervisor sees it with -cpu host on an Ice Lake host: "
			"arch/x86/kvm/vmx/nested.c nested_vmx_setup_ctls_msrs() "
			"(pin/proc/secondary/exit/entry/misc/EPT-VPID setup functions, Linux 6.x): TRUE_* low "
			"words are default1 minus CR3-load/store exiting (proc), save-debug-controls (exit) and "
			"load-debug-controls (entry); misc = save EFER.LMA | preemption-timer rate 5 | HLT | "
			"wait-for-SIPI | VMWRITE to read-only fields; basic = VMCS12 revision 0x11e57ed0, 4 KiB, "
			"WB, INS/OUTS info, TRUE controls. Reconstructed from the source, not a dump: bits KVM "
			"derives from the host are taken for an Ice Lake server host. KVM offers no SPP to L1.",
		.basic = 0x00d8100011e57ed0ULL,
		.pin = 0x000000ff00000016ULL,
		.proc = 0xfff9fffe0401e172ULL,
		.exit = 0x007fffff00036dffULL,
		.entry = 0x0000f3ff000011ffULL,
		.true_pin = 0x000000ff00000016ULL,
		.true_proc = 0xfff9fffe04006172ULL,
		.true_exit = 0x007fffff00036dfbULL,
		.true_entry = 0x0000f3ff000011fbULL,
		.misc = 0x0000000020000165ULL,
		.cr0f0 = 0x0000000080000021ULL,
		.cr0f1 = 0x00000000ffffffffULL,
		.cr4f0 = 0x0000000000002000ULL,
		.cr4f1 = 0x0000000000773fffULL,
		.vmcs_enum = 0x000000000000002eULL,
		.proc2 = 0x02137fff00000000ULL,
		.ept_vpid = 0x00000f0106334041ULL,
		.vmfunc = 0x0000000000000001ULL,
		.phys_bits = 46,
		.pdpe1gb = true,
		.refusal = NULL,
	},
	{
		.name = "kvm-nested-icelake-old",
		.source =
			"KVM nested VMX as an L1 hypervisor sees it with -cpu host on an Ice Lake host: "
			"arch/x86/kvm/vmx/nested.c nested_vmx_setup_ctls_msrs() "
			"(pin/proc/secondary/exit/entry/misc/EPT-VPID setup functions, Linux 6.x): TRUE_* low "
			"words are default1 minus CR3-load/store exiting (proc), save-debug-controls (exit) and "
			"load-debug-controls (entry); misc = save EFER.LMA | preemption-timer rate 5 | HLT | (no "
			"wait-for-SIPI: KVM before nested wait-for-SIPI support) | VMWRITE to read-only fields; "
			"basic = VMCS12 revision 0x11e57ed0, 4 KiB, WB, INS/OUTS info, TRUE controls. "
			"Reconstructed from the source, not a dump: bits KVM derives from the host are taken for "
			"an Ice Lake server host. KVM offers no SPP to L1.",
		.basic = 0x00d8100011e57ed0ULL,
		.pin = 0x000000ff00000016ULL,
		.proc = 0xfff9fffe0401e172ULL,
		.exit = 0x007fffff00036dffULL,
		.entry = 0x0000f3ff000011ffULL,
		.true_pin = 0x000000ff00000016ULL,
		.true_proc = 0xfff9fffe04006172ULL,
		.true_exit = 0x007fffff00036dfbULL,
		.true_entry = 0x0000f3ff000011fbULL,
		.misc = 0x0000000020000065ULL,
		.cr0f0 = 0x0000000080000021ULL,
		.cr0f1 = 0x00000000ffffffffULL,
		.cr4f0 = 0x0000000000002000ULL,
		.cr4f1 = 0x0000000000773fffULL,
		.vmcs_enum = 0x000000000000002eULL,
		.proc2 = 0x02137fff00000000ULL,
		.ept_vpid = 0x00000f0106334041ULL,
		.vmfunc = 0x0000000000000001ULL,
		.phys_bits = 46,
		.pdpe1gb = true,
	},
	{
		.name = "tigerlake-client",
		.source =
			"PARTIAL DUMP + STAND-INS. Dumped (VirtualBox 6.1 VBox.log of a real Tiger Lake client, "
			"Core i7-1165G7, posted in github.com/myspaghetti/macos-virtualbox issue #480, comment by "
			"srinath-ramanujan, June 2021; the CPU is named by the end of the log's host brand string, "
			"CPUID 0x80000004 '65G7 @ 2.80GHz', and 0x80000008 EAX = 0x3027, i.e. MAXPHYADDR 39): "
			"IA32_VMX_ENTRY_CTLS 0x16ffff000011ff, IA32_VMX_EXIT_CTLS 0x137fffff00036dff, "
			"IA32_VMX_TRUE_PINBASED_CTLS 0xff00000016, IA32_VMX_TRUE_PROCBASED_CTLS "
			"0xfffbfffe04006172, IA32_VMX_TRUE_ENTRY_CTLS 0x16ffff000011fb, IA32_VMX_TRUE_EXIT_CTLS "
			"0x137fffff00036dfb. Derived: IA32_VMX_PINBASED_CTLS/PROCBASED_CTLS = the TRUE MSR with the "
			"default1 bits (SDM A.3.1/A.3.2: 0x16, 0x0401e172) forced to 1, a rule every dumped profile "
			"here obeys (tested). CR4_FIXED1 derived from the CR4 features the same die reports in "
			"projectacrn/acrn-hypervisor misc/config_tools/data/nuc11tnbi5/nuc11tnbi5.xml (Core "
			"i5-1135G7, board-inspector CPUID list: UMIP, FSGSBASE, PCID, XSAVE, KL, SMEP, SMAP, PKU, "
			"CET; no SMX, no LA57, no PKS). STAND-INS (not in the retrievable part of that log, no other "
			"published Tiger Lake dump found): IA32_VMX_BASIC, IA32_VMX_MISC, IA32_VMX_VMCS_ENUM, "
			"IA32_VMX_PROCBASED_CTLS2, IA32_VMX_EPT_VPID_CAP, IA32_VMX_VMFUNC and CR0_FIXED0/1, "
			"CR4_FIXED0 are the Comet Lake client dump's (cometlake-client above; the nearest dumped "
			"client part), so secondary controls Tiger Lake adds (user wait/pause, TSC scaling, SPP if "
			"any) are absent here",
		.basic = 0x00da040000000004ULL,
		.pin = 0x000000ff00000016ULL,
		.proc = 0xfffbfffe0401e172ULL,
		.exit = 0x137fffff00036dffULL,
		.entry = 0x0016ffff000011ffULL,
		.true_pin = 0x000000ff00000016ULL,
		.true_proc = 0xfffbfffe04006172ULL,
		.true_exit = 0x137fffff00036dfbULL,
		.true_entry = 0x0016ffff000011fbULL,
		.misc = 0x000000007004c1e7ULL,
		.cr0f0 = 0x0000000080000021ULL,
		.cr0f1 = 0x00000000ffffffffULL,
		.cr4f0 = 0x0000000000002000ULL,
		.cr4f1 = 0x0000000000ff2fffULL,
		.vmcs_enum = 0x000000000000002eULL,
		.proc2 = 0x005fbcff00000000ULL,
		.ept_vpid = 0x00000f0106734141ULL,
		.vmfunc = 0x0000000000000001ULL,
		.phys_bits = 39,
		.pdpe1gb = true,
		.refusal = NULL,
	},
	{
		.name = "qemu-graniterapids",
		.source =
			"QEMU target/i386/cpu.c named model \"GraniteRapids\" (Redwood Cove P-core server; qemu/qemu "
			"commit 0048035a), VMX feature words turned into MSR values for a KVM guest as for the "
			"other QEMU models (make_vmx_msr_value: allowed-1 = features | KVM must-be-one; host "
			"address-space size allowed for a 64-bit guest; VMCS revision/size/memory type and "
			"preemption-timer rate from KVM, CR3-target count 0, no shutdown/wait-for-SIPI activity "
			"states). Its VMX words equal SapphireRapids' (derivation tested). CR4_FIXED1 derived "
			"from the model's CPUID (LA57). MAXPHYADDR as for the other QEMU profiles (QEMU takes it "
			"from the host).",
		.basic = 0x00d8100011e57ed0ULL,
		.pin = 0x000000ff00000016ULL,
		.proc = 0xfff9fffe0401e172ULL,
		.exit = 0x007fffff00036dffULL,
		.entry = 0x0000f3ff000011ffULL,
		.true_pin = 0x000000ff00000016ULL,
		.true_proc = 0xfff9fffe04006172ULL,
		.true_exit = 0x007fffff00036dfbULL,
		.true_entry = 0x0000f3ff000011fbULL,
		.misc = 0x0000000020000065ULL,
		.cr0f0 = 0x0000000080000021ULL,
		.cr0f1 = 0x00000000ffffffffULL,
		.cr4f0 = 0x0000000000002000ULL,
		.cr4f1 = 0x0000000000773fffULL,
		.vmcs_enum = 0x000000000000002eULL,
		.proc2 = 0x00137bff00000000ULL,
		.ept_vpid = 0x00000f01063340c1ULL,
		.vmfunc = 0x0000000000000001ULL,
		.phys_bits = 46,
		.pdpe1gb = true,
		.refusal = NULL,
	},
	{
		.name = "qemu-sierraforest",
		.source =
			"QEMU target/i386/cpu.c named model \"SierraForest\" (Crestmont E-core server, the E-core "
			"QEMU models nearest to Alder Lake's Gracemont; qemu/qemu commit 0048035a), VMX feature "
			"words turned into MSR values for a KVM guest as for the other QEMU models. Same VMX "
			"words as SapphireRapids except no 5-level EPT page walk (derivation tested). CR4_FIXED1 "
			"derived from the model's CPUID (no LA57).",
		.basic = 0x00d8100011e57ed0ULL,
		.pin = 0x000000ff00000016ULL,
		.proc = 0xfff9fffe0401e172ULL,
		.exit = 0x007fffff00036dffULL,
		.entry = 0x0000f3ff000011ffULL,
		.true_pin = 0x000000ff00000016ULL,
		.true_proc = 0xfff9fffe04006172ULL,
		.true_exit = 0x007fffff00036dfbULL,
		.true_entry = 0x0000f3ff000011fbULL,
		.misc = 0x0000000020000065ULL,
		.cr0f0 = 0x0000000080000021ULL,
		.cr0f1 = 0x00000000ffffffffULL,
		.cr4f0 = 0x0000000000002000ULL,
		.cr4f1 = 0x0000000000772fffULL,
		.vmcs_enum = 0x000000000000002eULL,
		.proc2 = 0x00137bff00000000ULL,
		.ept_vpid = 0x00000f0106334041ULL,
		.vmfunc = 0x0000000000000001ULL,
		.phys_bits = 46,
		.pdpe1gb = true,
		.refusal = NULL,
	},
	{
		.name = "alderlake-p",
		.source =
			"STAND-IN for the P-core (Golden Cove) of a hybrid Alder Lake part: no published raw VMX "
			"MSR dump of an Alder Lake P-core was found. VMX words = QEMU \"SapphireRapids\" (Golden "
			"Cove server, qemu-sapphirerapids above) with two changes the hybrid parts' own reports "
			"show: no PML (secondary bit 17) and no 5-level EPT page walk (EPT_VPID_CAP bit 7) -- Linux "
			"6.18's /proc/cpuinfo 'vmx flags' (which names both) of a hybrid part's P-core (CPU 0 of a "
			"Core i7-1355U, Raptor Lake-U, family 6 model 186, Golden-Cove-class P-cores with Gracemont "
			"E-cores) lists neither 'pml' nor 'ept_5level', while a P-core-only Alder Lake die (Core "
			"i5-12400, model 151) lists 'pml'. "
			"CR4_FIXED1, MAXPHYADDR 46 and 1 GiB pages from the Core-type CPUID list of a real Core "
			"i7-12700E (projectacrn/acrn-hypervisor misc/config_tools/data/adl-asrock/adl-asrock.xml: "
			"UMIP, SMX, FSGSBASE, PCID, XSAVE, KL, SMEP, SMAP, PKU, CET, PKS; linear address bits 48). "
			"VMCS revision/size, MISC, VMCS_ENUM are KVM's (the QEMU model's), not the part's.",
		.basic = 0x00d8100011e57ed0ULL,
		.pin = 0x000000ff00000016ULL,
		.proc = 0xfff9fffe0401e172ULL,
		.exit = 0x007fffff00036dffULL,
		.entry = 0x0000f3ff000011ffULL,
		.true_pin = 0x000000ff00000016ULL,
		.true_proc = 0xfff9fffe04006172ULL,
		.true_exit = 0x007fffff00036dfbULL,
		.true_entry = 0x0000f3ff000011fbULL,
		.misc = 0x0000000020000065ULL,
		.cr0f0 = 0x0000000080000021ULL,
		.cr0f1 = 0x00000000ffffffffULL,
		.cr4f0 = 0x0000000000002000ULL,
		.cr4f1 = 0x0000000001ff6fffULL,
		.vmcs_enum = 0x000000000000002eULL,
		.proc2 = 0x00117bff00000000ULL,
		.ept_vpid = 0x00000f0106334041ULL,
		.vmfunc = 0x0000000000000001ULL,
		.phys_bits = 46,
		.pdpe1gb = true,
		.refusal = NULL,
	},
	{
		.name = "alderlake-e",
		.source =
			"STAND-IN for the E-core (Gracemont) of a hybrid Alder Lake part: no published raw VMX "
			"MSR dump of a Gracemont core was found, and QEMU has no Gracemont model. VMX words = QEMU "
			"\"SierraForest\" (Crestmont, qemu-sierraforest above) without PML (secondary bit 17): "
			"Gracemont reports no 'pml' in Linux's /proc/cpuinfo 'vmx flags', neither alone (Intel "
			"N100, Alder Lake-N) nor as a hybrid part's E-core (Core i7-1255U CPU 11). CR4_FIXED1, "
			"MAXPHYADDR 46 and 1 GiB pages from the Atom-type CPUID list of the same real Core "
			"i7-12700E (adl-asrock.xml above), which is identical to its Core-type list, VMX "
			"capabilities included. VMCS revision/size, MISC, VMCS_ENUM are KVM's (the QEMU model's).",
		.basic = 0x00d8100011e57ed0ULL,
		.pin = 0x000000ff00000016ULL,
		.proc = 0xfff9fffe0401e172ULL,
		.exit = 0x007fffff00036dffULL,
		.entry = 0x0000f3ff000011ffULL,
		.true_pin = 0x000000ff00000016ULL,
		.true_proc = 0xfff9fffe04006172ULL,
		.true_exit = 0x007fffff00036dfbULL,
		.true_entry = 0x0000f3ff000011fbULL,
		.misc = 0x0000000020000065ULL,
		.cr0f0 = 0x0000000080000021ULL,
		.cr0f1 = 0x00000000ffffffffULL,
		.cr4f0 = 0x0000000000002000ULL,
		.cr4f1 = 0x0000000001ff6fffULL,
		.vmcs_enum = 0x000000000000002eULL,
		.proc2 = 0x00117bff00000000ULL,
		.ept_vpid = 0x00000f0106334041ULL,
		.vmfunc = 0x0000000000000001ULL,
		.phys_bits = 46,
		.pdpe1gb = true,
		.refusal = NULL,
	},
};
const size_t vmx_profile_count = sizeof(vmx_profiles) / sizeof(vmx_profiles[0]);
