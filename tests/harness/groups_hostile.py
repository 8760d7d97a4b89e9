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
