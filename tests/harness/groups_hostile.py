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
