"""groups_hostile.py: the hostile-guest system-test groups (issue 9), in the dict format of
groups.py (see its docstring); groups.py imports HOSTILE_GROUPS.

Each group boots a guest program (tests/guest/hostile_*.c) that carries out attacks a guest
kernel can make on the hypervisor, then runs the common post-checks of
tests/guest/lib/hostile.h: every vCPU answers HC_NOP, the region reads 0xFF, protected bytes
are unchanged. Groups add 'expect' patterns for the documented log lines of the handling.
"""

HOSTILE_PATTERNS = {
    'started': r'tessel: hypervisor started on [0-9]+ CPUs',
    'vm_stopped': r'E: stopping this vCPU',
    'panic': r'TESSEL PANIC',
    'entry_failed': r'VM entry failed|VMRESUME failed',
}
_P = HOSTILE_PATTERNS

# Every hostile group rejects these: a guest may get an error or a fault, never stop a vCPU
# or the hypervisor.
HOSTILE_REJECT = [('no vCPU stopped', _P['vm_stopped']),
                  ('no hypervisor panic', _P['panic']),
                  ('no failed VM entry', _P['entry_failed'])]


def cfg(*lines):
    return ''.join(line + '\r\n' for line in lines)


HOSTILE_GROUPS = []


# ---- issue 9 part 1: MSRs deny by default (tests/guest/hostile_msr.c, docs/MSR.md) ----
# The log lines of the documented handling (hv/exit_msr.c, docs/MSR.md): once per unlisted
# MSR and direction, once per table row and direction for listed ones.
MSR_LOG = {
    'unlisted_rd': r'msr: guest RDMSR 0x2 \(not listed\): #GP \(logged once per MSR\)',
    'unlisted_wr': r'msr: guest WRMSR 0x33 \(not listed\): #GP \(logged once per MSR\)',
    'outside': r'msr: guest RDMSR 0x40000000 \(not listed\): #GP',
    'cap': r'msr: guest [RW]DMSR 0x[0-9a-f]+ \(not listed\): #GP; 128 unlisted MSRs logged, no more will be',
    'rtit': r'msr: guest WRMSR 0x570 IA32_RTIT_CTL value 0x10d: #GP \(logged once per row of docs/MSR\.md\)',
    'ds': r'msr: guest WRMSR 0x600 IA32_DS_AREA value 0x[0-9a-f]+: #GP',
    'pebs': r'msr: guest WRMSR 0x3f1 IA32_PEBS_ENABLE value 0x1: #GP',
    'debugctl': r'msr: guest WRMSR 0x1d9 IA32_DEBUGCTL value 0x1c0: #GP',
    'ucode': r'msr: guest WRMSR 0x79 IA32_BIOS_UPDT_TRIG value 0x[0-9a-f]+: write ignored',
}


def _hostile_msr(name, model):
    return dict(name=name, emu='bochs', model=model, cpus=2,
                cfg=cfg('next=\\tests\\hostile_msr.efi'),
                tap=True, timeout=600,
                expect=[('hypervisor started', _P['started']),
                        ('an unlisted RDMSR is logged once', MSR_LOG['unlisted_rd']),
                        ('an unlisted WRMSR is logged once', MSR_LOG['unlisted_wr']),
                        ('an MSR outside the bitmap ranges is refused and logged', MSR_LOG['outside']),
                        ('the sweep hits the unlisted-MSR log cap', MSR_LOG['cap']),
                        ('RTIT_CTL write: #GP, logged', MSR_LOG['rtit']),
                        ('DS_AREA write: #GP, logged', MSR_LOG['ds']),
                        ('PEBS_ENABLE write: #GP, logged', MSR_LOG['pebs']),
                        ('DEBUGCTL BTS write: #GP, logged', MSR_LOG['debugctl']),
                        ('microcode update trigger: write ignored, logged', MSR_LOG['ucode'])],
                reject=HOSTILE_REJECT)


HOSTILE_GROUPS += [
    _hostile_msr('hostile-msr-icelake', 'corei7_icelake_u'),
    _hostile_msr('hostile-msr-skylake', 'corei7_skylake_x'),
]

# hostile_smp.efi (tests/guest/hostile_smp.c): IA32_APIC_BASE attacks (disable, move onto the
# hypervisor's region, reserved bits, invalid mode transitions: #GP, register unchanged), then
# shootdowns that need the hypervisor's NMIs while the AP writes, then an exception frame
# across two pages with protected sub-pages. Software mode (every write to such a page exits,
# so the frame goes through spp/step.c's delivery step).
HOSTILE_GROUPS += [
    dict(name='hostile-smp-sw', emu='bochs', model='corei7_skylake_x', cpus=2,
         cfg=cfg('# hostile guest: APIC_BASE, shootdowns, straddling frames; software enforcement',
                 'next=\\tests\\hostile_smp.efi'),
         tap=True, timeout=200,
         expect=[('hypervisor started', _P['started']),
                 ('APIC_BASE writes refused on the log', r'WRMSR IA32_APIC_BASE [0-9a-f]+ \(now [0-9a-f]+\) refused with #GP')],
         reject=HOSTILE_REJECT),
]

# Item a: exceptions injected while the guest is in real mode (unrestricted guest) carry no
# error code (SDM 26.2.1.3), so the VM entry succeeds and the guest's own IVT handler runs.
HOSTILE_GROUPS.append(dict(
    name='hostile-realmode', emu='bochs', cpus=2,
    cfg=cfg('# hostile: faults injected in real mode', 'next=\\tests\\hostile_realmode.efi'),
    tap=True, timeout=240,
    expect=[('hypervisor started', _P['started'])],
    reject=HOSTILE_REJECT))

# Item b: an AP rewrites a MOV store into a VMOVDQU ymm store while the BSP (XCR0 without
# AVX) writes a protected sub-page in software mode: the guest gets #UD, the hypervisor never
# executes an AVX read in the host that faults.
HOSTILE_GROUPS.append(dict(
    name='hostile-avx', emu='bochs', model='corei7_skylake_x', cpus=2,
    cfg=cfg('# hostile: SSE/AVX emulation against the guest XCR0', 'next=\\tests\\hostile_avx.efi'),
    tap=True, timeout=300,
    expect=[('hypervisor started', _P['started']),
            ('software SPP mode', r'sub-page protection: software')],
    reject=HOSTILE_REJECT))

# hostile_churn.efi (tests/guest/hostile_churn.c, issue 9 item m): protect/unprotect churn
# across many 2 MiB blocks on a small heap; table memory (test build hook HC_TEST_TABLE_MEM,
# HC_STATS sppt_pages) must return to its starting level. Hardware SPP (eager and lazy SPPT)
# and the software path.
_CHURN = 'next=\\tests\\hostile_churn.efi'
HOSTILE_GROUPS += [
    dict(name='hostile-churn-hw', emu='bochs', model='corei7_icelake_u', cpus=2, mem=2048,
         boot='build/tessel-test.efi',
         cfg=cfg('# protect/unprotect churn, hardware SPP, eager SPPT, small heap', _CHURN, 'heap=8'),
         tap=True, timeout=240,
         expect=[('hypervisor started', _P['started'])],
         reject=HOSTILE_REJECT),
    dict(name='hostile-churn-lazy', emu='bochs', model='corei7_icelake_u', cpus=2, mem=2048,
         boot='build/tessel-test.efi',
         cfg=cfg('# protect/unprotect churn, hardware SPP, lazy SPPT, small heap', _CHURN, 'heap=8',
                 'sppt=lazy'),
         tap=True, timeout=240,
         expect=[('hypervisor started', _P['started'])],
         reject=HOSTILE_REJECT),
    dict(name='hostile-churn-sw', emu='bochs', model='corei7_skylake_x', cpus=2, mem=2048,
         boot='build/tessel-test.efi',
         cfg=cfg('# protect/unprotect churn, software path, small heap', _CHURN, 'heap=8'),
         tap=True, timeout=240,
         expect=[('hypervisor started', _P['started'])],
         reject=HOSTILE_REJECT),
]

# hostile_mtrr.efi (tests/guest/hostile_mtrr.c, issue 9): virtual MTRRs. Valid writes
# change the EPT memory type (test build hook HC_TEST_EPT_LEAF), invalid ones raise #GP,
# the host is unaffected. Hardware SPP and the software path.
_MTRR = 'next=\\tests\\hostile_mtrr.efi'
HOSTILE_GROUPS += [
    dict(name='hostile-mtrr-hw', emu='bochs', model='corei7_icelake_u', cpus=2,
         boot='build/tessel-test.efi',
         cfg=cfg('# guest MTRR writes, hardware SPP', _MTRR),
         tap=True, timeout=180,
         expect=[('hypervisor started', _P['started'])],
         reject=HOSTILE_REJECT),
    dict(name='hostile-mtrr-sw', emu='bochs', model='corei7_skylake_x', cpus=2,
         boot='build/tessel-test.efi',
         cfg=cfg('# guest MTRR writes, software path', _MTRR),
         tap=True, timeout=180,
         expect=[('hypervisor started', _P['started'])],
         reject=HOSTILE_REJECT),
]


# ---- issue 10: emulated MOV to CR0 entering 32-bit PAE paging (tests/guest/pae_stage.c) ----
# A MOV to CR0 that changes NE (VMX-fixed to 1) exits; when it enters PAE paging the
# hypervisor loads the four PDPTEs into the VMCS (SDM 4.4.1, 26.3.2.4) or raises #GP(0) for
# a reserved bit in a present one (hv/exit_cr.c). On both Bochs models Tessel runs on.
def _pae_stage(name, model):
    return dict(name=name, emu='bochs', model=model, cpus=2,
                cfg=cfg('# issue 10: emulated CR0 writes in a 32-bit PAE stage', 'next=\\tests\\pae_stage.efi'),
                tap=True, timeout=240,
                expect=[('hypervisor started', _P['started'])],
                reject=HOSTILE_REJECT)


HOSTILE_GROUPS += [
    _pae_stage('pae-stage-icelake', 'corei7_icelake_u'),
    _pae_stage('pae-stage-skylake', 'corei7_skylake_x'),
]

# RFLAGS.RF after an instruction the hypervisor completes (tests/guest/debug_rf.c): an exit
# saves RF as it was before the instruction, so completing it must clear RF, or the execute
# breakpoint on the next instruction is lost (SDM 18.3.1.1, 28.3.3). NOP is the native reference.
# Bochs 2.7 clears RF at the instruction boundary, before the instruction runs, so its exits
# save RF = 0 and this stage cannot show a missing clear: test_exit's
# test_completed_instruction_clears_rf models the hardware's saved RF and shows that. This
# group shows the breakpoint after an exiting instruction still fires under Tessel.
def _debug_rf(name, model):
    return dict(name=name, emu='bochs', model=model, cpus=1,
                cfg=cfg('# RF cleared after a completed instruction', 'next=\\tests\\debug_rf.efi'),
                tap=True, timeout=180,
                expect=[('hypervisor started', _P['started'])],
                reject=HOSTILE_REJECT)


HOSTILE_GROUPS += [
    _debug_rf('debug-rf-icelake', 'corei7_icelake_u'),
]

# Issue 10, INIT/SIPI (tests/guest/hostile_sipi.c): the BSP sends the AP INIT, SIPI, SIPI back
# to back through the ICR; the AP must start once, at the first SIPI's vector (a SIPI sent
# before the AP parked is latched, the second is ignored), a SIPI without INIT starts nothing,
# and MP services get the AP back. Under Bochs 2.7 the AP usually parks before the BSP's SIPI
# exit (its NMI is taken within a few instructions), so this group passes on the code before
# the latching fix too: it guards the end-to-end path; the race itself is shown by
# tests/unit/test_vapic.c (test_sipi_before_target_parks_is_latched).
HOSTILE_GROUPS.append(dict(
    name='hostile-sipi', emu='bochs', cpus=2,
    cfg=cfg('# hostile: INIT-SIPI-SIPI with no delays', 'next=\\tests\\hostile_sipi.efi'),
    tap=True, timeout=240,
    expect=[('hypervisor started', _P['started'])],
    reject=HOSTILE_REJECT))

# ACPI S3 (tests/guest/hostile_s3.c, hv/pm1.c, docs/ABI.md section 8): a guest writes
# SLP_TYP = S3 with SLP_EN to PM1a_CNT (16-bit, 8-bit to the high byte, 32-bit from two ports
# below). Bochs 2.7 resets the machine on an S3 request; under Tessel the write is refused and
# logged, PM1a_STS reads WAK_STS until cleared, and the power-off (S5) still goes through.
# The loader has no ACPI tables on OVMF-under-Bochs and finds the PIIX4 PM block itself.
S3_LOG = {
    'loader': r'tessel: ACPI sleep: no FADT; PIIX4 PM1a_CNT b004 PM1a_STS b000; sleep types passed 1; '
              r'S3 \(SLP_TYP 1\) is refused',
    'core': r'I: pm1: PM1a_CNT b004 PM1b_CNT 0 PM1a_STS b000 PM1b_STS 0: sleep types 1/0 pass',
    'refused': r'W: pm1: guest wrote [0-9a-f]+ to port b00[0-9a-f] \(PM1a_CNT\): sleep type 1 \(S3\) refused',
}
HOSTILE_GROUPS.append(dict(
    name='hostile-s3', emu='bochs', cpus=2,
    cfg=cfg('# hostile: ACPI S3 request through PM1a_CNT', 'next=\\tests\\hostile_s3.efi'),
    tap=True, timeout=240,
    expect=[('hypervisor started', _P['started']),
            ('the loader found the PM1 control block and the S3 sleep type', S3_LOG['loader']),
            ('the core took the PM1 registers', S3_LOG['core']),
            ('the S3 request is refused on the log', S3_LOG['refused'])],
    reject=HOSTILE_REJECT))

# The PM1 block moved through PCI configuration space (tests/guest/hostile_pmbase.c,
# hv/pmbase.c, docs/ABI.md section 8): the guest rewrites the PIIX4 PM function's base
# register (00:01.3, PMBA 0x40) and enable bit (PMREGMISC 0x80 bit 0) through 0xCF8/0xCFC
# with 32-, 16- and 8-bit writes, then writes an S3 request to the new port. Bochs 2.7 moves
# the block on a PMBA write and resets the machine on S3; under Tessel the base and enable
# keep their values (logged), other bits pass, and the stage runs on. Hardware SPP (Ice
# Lake) and software SPP (Skylake-X) only change the post-checks' protection.
PMBASE_LOG = {
    'core': r'I: pmbase: PCI 00:01\.3 \(PIIX4 PM, 8086:7113\): ACPI PM base register 40 \(b001\) and enable '
            r'\(register 80 bit 0, set\) kept as found',
    'kept': r'W: pmbase: guest wrote [0-9a-f]+ to port cf[c-f] \(PCI 00:01\.3 offset 4[0-3]\): the ACPI PM base '
            r'and its enable keep their value',
}


def _pmbase(name, model):
    return dict(name=name, emu='bochs', model=model, cpus=2,
                cfg=cfg('# hostile: ACPI PM base moved through PCI configuration space',
                        'next=\\tests\\hostile_pmbase.efi'),
                tap=True, timeout=240,
                expect=[('hypervisor started', _P['started']),
                        ('the core guards the PIIX4 PM base', PMBASE_LOG['core']),
                        ('a PMBA write is kept on the log', PMBASE_LOG['kept'])],
                reject=HOSTILE_REJECT)


HOSTILE_GROUPS.append(_pmbase('hostile-pmbase', 'corei7_icelake_u'))
HOSTILE_GROUPS.append(_pmbase('hostile-pmbase-skx', 'corei7_skylake_x'))

# ---- ABI 1.2: control-register and MSR pinning (tests/guest/hostile_pin.c, hv/pin.c) ----
# The guest pins CR0.WP, CR4.SMEP, IA32_LSTAR and EFER.NXE, then tries to undo them on the BSP,
# on the AP under MP services (running when the pins were made) and on the AP after an
# INIT-SIPI into real mode (INIT disarms, setting re-arms). Hardware SPP (Ice Lake) and
# software SPP (Skylake): pinning does not depend on the SPP mechanism.
PIN_LOG = {
    'cr': r'pin: guest write 0x[0-9a-f]+ to CR0 at rip 0x[0-9a-f]+ would clear pinned bits: kept set',
    'msr': r'pin: guest WRMSR 0xc0000082 value 0xffffffff8badc000 at rip 0x[0-9a-f]+ refused \(pinned\)',
}


def _pin(name, model):
    return dict(name=name, emu='bochs', model=model, cpus=2,
                cfg=cfg('# hostile: CR and MSR pinning (ABI 1.2)', 'next=\\tests\\hostile_pin.efi'),
                tap=True, timeout=300,
                expect=[('hypervisor started', _P['started']),
                        ('a refused CR0 write is logged', PIN_LOG['cr']),
                        ('a refused LSTAR write is logged', PIN_LOG['msr'])],
                reject=HOSTILE_REJECT)


HOSTILE_GROUPS.append(_pin('pin-icelake', 'corei7_icelake_u'))
HOSTILE_GROUPS.append(_pin('pin-skylake', 'corei7_skylake_x'))
# ABI 1.3: descriptor-table register pinning (tests/guest/hostile_pindt.c, hv/pin.c,
# hv/exit_dt.c): after HC_PIN_DT, LIDT/LGDT of forged tables are refused on the BSP and on
# the AP, SIDT/SGDT (emulated) give the pinned values, INT 0x81 and a segment load still go
# through the original tables. Both SPP mechanisms (hardware on Ice Lake, software on
# Skylake-X): SGDT/SIDT stores go through the emulated-store path of each.
PINDT_LOG = {
    'pinned': r'pin: descriptor-table registers pinned mask now 0x3 \(IDTR GDTR\)',
    'idtr': r'pin: guest load of IDTR base 0x[0-9a-f]+ limit 0x[0-9a-f]+ at rip 0x[0-9a-f]+ refused \(pinned\)',
    'gdtr': r'pin: guest load of GDTR base 0x[0-9a-f]+ limit 0x[0-9a-f]+ at rip 0x[0-9a-f]+ refused \(pinned\)',
}


def _pindt(name, model):
    return dict(name=name, emu='bochs', model=model, cpus=2,
                cfg=cfg('# hostile: descriptor-table register pinning (ABI 1.3)', 'next=\\tests\\hostile_pindt.efi'),
                tap=True, timeout=300,
                expect=[('hypervisor started', _P['started']),
                        ('the pin is logged', PINDT_LOG['pinned']),
                        ('a refused LIDT is logged', PINDT_LOG['idtr']),
                        ('a refused LGDT is logged', PINDT_LOG['gdtr'])],
                reject=HOSTILE_REJECT)


HOSTILE_GROUPS.append(_pindt('pindt-icelake', 'corei7_icelake_u'))
HOSTILE_GROUPS.append(_pindt('pindt-skylake', 'corei7_skylake_x'))
# EPT page-size changes break before make (tests/guest/hostile_pschange.c, docs/HARDWARE.md,
# mm/ept.h ept_split): with ept_bbm=on (the path of a processor with the machine-check
# erratum, forced on Bochs) the BSP splits and merges 2 MiB leaves by protecting and
# unprotecting a page while the AP executes code and writes data in the same blocks. Bochs
# has no multi-hit machine check: the group shows that the not-present windows and the
# retried EPT violations hold with a running vCPU; the ordering is tests/unit/test_bbm.c's.
# ---- IA32_SPEC_CTRL: root mode runs with the host's value, whatever the guest writes
# (tests/guest/hostile_specctrl.c, hv/vmx.c setup_spec_ctrl; HC_TEST_ROOT_MSR needs the test
# build). Bochs' Ice Lake model has the MSR and IBRS_ALL in IA32_ARCH_CAPABILITIES; its
# Skylake-X model has no IA32_SPEC_CTRL (no MSR areas then: tests/unit/test_profiles.c).
def _specctrl(name, model):
    return dict(name=name, emu='bochs', model=model, cpus=2, boot='build/tessel-test.efi',
                cfg=cfg('# IA32_SPEC_CTRL switched at every exit and entry', 'next=\\tests\\hostile_specctrl.efi'),
                tap=True, timeout=240, expect=[('hypervisor started', _P['started'])], reject=HOSTILE_REJECT)


HOSTILE_GROUPS += [_specctrl('hostile-specctrl-icelake', 'corei7_icelake_u')]

_PSCHANGE = 'next=\\tests\\hostile_pschange.efi'
_BBM_LOG = r'EPT page-size changes: break before make \(machine check on page-size change: (not )?affected; set by ept_bbm\)'
HOSTILE_GROUPS += [
    dict(name='hostile-pschange-hw', emu='bochs', model='corei7_icelake_u', cpus=2,
         boot='build/tessel-test.efi',
         cfg=cfg('# EPT split/merge churn, break before make forced, hardware SPP', _PSCHANGE, 'ept_bbm=on'),
         tap=True, timeout=240,
         expect=[('hypervisor started', _P['started']), ('break before make', _BBM_LOG)],
         reject=HOSTILE_REJECT),
    dict(name='hostile-pschange-sw', emu='bochs', model='corei7_skylake_x', cpus=2,
         boot='build/tessel-test.efi',
         cfg=cfg('# EPT split/merge churn, break before make forced, software path', _PSCHANGE, 'ept_bbm=on'),
         tap=True, timeout=240,
         expect=[('hypervisor started', _P['started']), ('break before make', _BBM_LOG)],
         reject=HOSTILE_REJECT),
]
